/*
 * test_srv_http.c — keywaved's HTTP layer in process: the router on its own (matching,
 * parameters and their limits, 404/405/Allow, HEAD, specificity, authentication hooks,
 * error bodies, access-log redaction, the start-up check of route tables), the status
 * of every kw_err, the response helpers, and then the lws adapter serving test routes in
 * a child process: a reply of 1 MiB written in slices to a slow reader, HEAD on it, HTML
 * with the CSP, Retry-After, Location, request bodies delivered intact (Content-Length
 * and chunked) up to exactly 65536 bytes, path parameters and the signed target as the
 * adapter rebuilds them, and the request headers handlers see.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http.h"
#include "kwtest.h"
#include "router.h"
#include "server.h"

/* ---- test handlers --------------------------------------------------------------- */

static int calls; /* handler invocations */

static kw_err h_ok(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)err;
    calls++;
    json_t *params = json_array();
    for (size_t i = 0; i < req->n_params; i++)
        json_array_append_new(params, json_string(req->params[i]));
    return kw_response_take_json(res, 200,
                                 json_pack("{s:o, s:s, s:s, s:s, s:i, s:s}", "params", params,
                                           "path", req->path, "query", req->query, "target",
                                           req->target, "method", (int)req->method, "user",
                                           req->caller.user_id));
}

static kw_err h_literal(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    (void)err;
    calls++;
    return kw_response_json(res, 200, "{\"literal\":true}");
}

static kw_err h_fail(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    calls++;
    res->retry_after_s = 7;
    return kw_error_set(err, KW_ERR_RATE_LIMITED, "Slow down, \x01\xff please.");
}

static kw_err h_fail_no_detail(kw_server *srv, const kw_request *req, kw_response *res,
                               kw_error *err)
{
    (void)srv;
    (void)req;
    (void)res;
    (void)err;
    calls++;
    return KW_ERR_FORBIDDEN;
}

static kw_err h_conflict(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    calls++;
    kw_err rc = kw_response_json(
        res, 200,
        "{\"error\":\"already_admitted\",\"detail\":\"x\",\"status\":\"admitted\",\"by\":\"u1\"}");
    if (rc != KW_OK)
        return rc;
    return kw_error_set(err, KW_ERR_ALREADY_ADMITTED, "Another member admitted the guest.");
}

static kw_err h_big(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err);
static kw_err h_page(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err);
static kw_err h_redirect(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err);
static kw_err h_echo_body(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err);
static kw_err h_headers(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err);

static const kw_route routes_a[] = {
    {KW_GET, "/items/:id", KW_AUTH_NONE, h_ok},
    {KW_DELETE, "/items/:id", KW_AUTH_NONE, h_ok},
    {KW_GET, "/items/special", KW_AUTH_NONE, h_literal},
    {KW_POST, "/m/:meeting/x/:sid/admit", KW_AUTH_NONE, h_ok},
    {KW_GET, "/join/:token", KW_AUTH_NONE, h_ok},
    {KW_GET, "/fail", KW_AUTH_NONE, h_fail},
    {KW_GET, "/forbidden", KW_AUTH_NONE, h_fail_no_detail},
    {KW_POST, "/conflict", KW_AUTH_NONE, h_conflict},
    {0, NULL, 0, NULL},
};

static const kw_route routes_b[] = {
    {KW_PUT, "/items/:id", KW_AUTH_NONE, h_ok},
    {KW_GET, "/member", KW_AUTH_MEMBER, h_ok},
    {KW_GET, "/guest", KW_AUTH_GUEST, h_ok},
    {KW_GET, "/either", KW_AUTH_EITHER, h_ok},
    {KW_GET, "/a/:p1/:p2/:p3/:p4", KW_AUTH_NONE, h_ok},
    {KW_GET, "/big", KW_AUTH_NONE, h_big},
    {KW_GET, "/page", KW_AUTH_NONE, h_page},
    {KW_GET, "/go", KW_AUTH_NONE, h_redirect},
    {KW_POST, "/echo", KW_AUTH_NONE, h_echo_body},
    {KW_GET, "/headers", KW_AUTH_NONE, h_headers},
    {0, NULL, 0, NULL},
};

static const kw_route *const test_tables[] = {routes_a, routes_b, NULL};

/* ---- fake authenticators ---------------------------------------------------------- */

static kw_err auth_member_ok(kw_server *srv, kw_request *req, kw_error *err)
{
    (void)srv;
    if (req->client_id == NULL || strcmp(req->client_id, "good") != 0)
        return kw_error_set(err, KW_ERR_AUTH_SIGNATURE, "Bad signature.");
    req->caller.kind = KW_CALLER_MEMBER;
    snprintf(req->caller.user_id, sizeof req->caller.user_id, "alice");
    return KW_OK;
}

static kw_err auth_guest_ok(kw_server *srv, kw_request *req, kw_error *err)
{
    (void)srv;
    if (req->authorization == NULL || strcmp(req->authorization, "Bearer g") != 0)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED, "Unknown bearer.");
    req->caller.kind = KW_CALLER_GUEST;
    snprintf(req->caller.user_id, sizeof req->caller.user_id, "guest");
    return KW_OK;
}

/* A broken authenticator: says yes without naming the caller. */
static kw_err auth_forgets_caller(kw_server *srv, kw_request *req, kw_error *err)
{
    (void)srv;
    (void)req;
    (void)err;
    return KW_OK;
}

/* ---- router unit tests ------------------------------------------------------------ */

typedef struct outcome {
    kw_response res;
    kw_dispatch out;
    json_t *body; /* parsed res.body when it is JSON */
} outcome;

static void outcome_free(outcome *o)
{
    kw_response_free(&o->res);
    json_decref(o->body);
    memset(o, 0, sizeof *o);
}

static kw_server router_srv;

static void dispatch(kw_method m, const char *method_name, const char *path, outcome *o,
                     kw_request *req_in)
{
    kw_request req;
    if (req_in != NULL)
        req = *req_in;
    else
        memset(&req, 0, sizeof req);
    req.method = m;
    req.method_name = method_name;
    req.path = path;
    req.query = "";
    req.target = path;
    memset(o, 0, sizeof *o);
    kw_router_dispatch(&router_srv, &req, &o->res, &o->out);
    KWT_CHECK(req.n_params == 0); /* cleared: they pointed into the router's frame */
    if (o->res.body != NULL)
        o->body = json_loadb(o->res.body, o->res.body_len, 0, NULL);
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void router_matches_literals_and_parameters(void)
{
    outcome o;
    calls = 0;
    dispatch(KW_GET, "GET", "/items/abc", &o, NULL);
    KWT_EQ(o.res.status, 200);
    KWT_STREQ(json_string_value(json_array_get(json_object_get(o.body, "params"), 0)), "abc");
    KWT_CHECK(o.out.route == &routes_a[0]);
    outcome_free(&o);

    /* A literal beats a parameter, whatever the table order. */
    dispatch(KW_GET, "GET", "/items/special", &o, NULL);
    KWT_EQ(o.res.status, 200);
    KWT_CHECK(json_is_true(json_object_get(o.body, "literal")));
    outcome_free(&o);

    /* Percent-decoding and several parameters. */
    dispatch(KW_POST, "POST", "/m/mtg_1/x/a%20b%25c/admit", &o, NULL);
    KWT_EQ(o.res.status, 200);
    json_t *p = json_object_get(o.body, "params");
    KWT_EQ(json_array_size(p), 2);
    KWT_STREQ(json_string_value(json_array_get(p, 0)), "mtg_1");
    KWT_STREQ(json_string_value(json_array_get(p, 1)), "a b%c");
    outcome_free(&o);
    /* A decoded '/' is not a valid parameter: the route does not match. */
    dispatch(KW_POST, "POST", "/m/mtg_1/x/a%2Fb/admit", &o, NULL);
    KWT_EQ(o.res.status, 404);
    outcome_free(&o);
    KWT_EQ(calls, 3);
}

static void router_parameter_limits(void)
{
    char path[1024];
    char id[KW_HTTP_ID_MAX + 2];
    memset(id, 'a', sizeof id);
    static const struct {
        size_t len;
        int status;
    } lens[] = {{1, 200}, {KW_HTTP_ID_MAX, 200}, {KW_HTTP_ID_MAX + 1, 404}};
    for (size_t i = 0; i < 3; i++) {
        id[lens[i].len] = '\0';
        snprintf(path, sizeof path, "/items/%s", id);
        outcome o;
        dispatch(KW_GET, "GET", path, &o, NULL);
        KWT_EQ(o.res.status, lens[i].status);
        outcome_free(&o);
        id[lens[i].len] = 'a';
    }
    /* 128 bytes once decoded: three times as many on the wire is fine. */
    char enc[3 * KW_HTTP_ID_MAX + 1] = "";
    for (size_t i = 0; i < KW_HTTP_ID_MAX; i++)
        memcpy(enc + 3 * i, "%41", 4);
    snprintf(path, sizeof path, "/items/%s", enc);
    outcome o;
    dispatch(KW_GET, "GET", path, &o, NULL);
    KWT_EQ(o.res.status, 200);
    outcome_free(&o);

    static const char *const bad[] = {
        "/items/",       "/items//",   "/items/%00", "/items/%1F", "/items/%7F",
        "/items/%C3%A9", "/items/%zz", "/items/%4",  "/items/a/b", "/items/%2F",
        "/items",        "//items/a",  "items/a",    "",           "/items/a%0Ab",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dispatch(KW_GET, "GET", bad[i], &o, NULL);
        if (o.res.status != 404)
            printf("    path '%s': %u\n", bad[i], o.res.status);
        KWT_EQ(o.res.status, 404);
        KWT_STREQ(jstr(o.body, "error"), "not_found");
        outcome_free(&o);
    }
    /* Printable ASCII includes the space and '~'. */
    dispatch(KW_GET, "GET", "/items/%20~", &o, NULL);
    KWT_EQ(o.res.status, 200);
    outcome_free(&o);
}

static void router_404_405_and_head(void)
{
    outcome o;
    calls = 0;
    dispatch(KW_POST, "POST", "/nowhere", &o, NULL);
    KWT_EQ(o.res.status, 404);
    KWT_STREQ(jstr(o.body, "error"), "not_found");
    KWT_CHECK(o.out.route == NULL);
    outcome_free(&o);

    /* 405 lists the methods of every matching row, across tables; GET brings HEAD. */
    dispatch(KW_POST, "POST", "/items/abc", &o, NULL);
    KWT_EQ(o.res.status, 405);
    KWT_STREQ(o.res.allow, "GET, HEAD, PUT, DELETE");
    KWT_STREQ(jstr(o.body, "error"), "method_not_allowed");
    outcome_free(&o);
    dispatch(KW_OTHER_METHOD, "OPTIONS", "/items/special", &o, NULL);
    KWT_EQ(o.res.status, 405);
    KWT_STREQ(o.res.allow, "GET, HEAD, PUT, DELETE");
    outcome_free(&o);
    dispatch(KW_GET, "GET", "/conflict", &o, NULL);
    KWT_EQ(o.res.status, 405);
    KWT_STREQ(o.res.allow, "POST");
    outcome_free(&o);

    /* HEAD runs the GET handler, which sees KW_HEAD. */
    dispatch(KW_HEAD, "HEAD", "/items/x", &o, NULL);
    KWT_EQ(o.res.status, 200);
    KWT_EQ(json_integer_value(json_object_get(o.body, "method")), KW_HEAD);
    outcome_free(&o);
    dispatch(KW_DELETE, "DELETE", "/items/x", &o, NULL);
    KWT_EQ(o.res.status, 200);
    outcome_free(&o);
    KWT_EQ(calls, 2);
}

static void router_authentication(void)
{
    outcome o;
    kw_request req;
    calls = 0;
    router_srv.auth_member = NULL;
    router_srv.auth_guest = NULL;
    dispatch(KW_GET, "GET", "/member", &o, NULL);
    KWT_EQ(o.res.status, 401);
    KWT_STREQ(jstr(o.body, "error"), "unauthorized");
    outcome_free(&o);
    dispatch(KW_GET, "GET", "/guest", &o, NULL);
    KWT_EQ(o.res.status, 401);
    outcome_free(&o);
    KWT_EQ(calls, 0);

    router_srv.auth_member = auth_member_ok;
    router_srv.auth_guest = auth_guest_ok;
    memset(&req, 0, sizeof req);
    req.client_id = "bad";
    dispatch(KW_GET, "GET", "/member", &o, &req);
    KWT_EQ(o.res.status, 401);
    KWT_STREQ(jstr(o.body, "error"), "invalid_signature");
    KWT_STREQ(jstr(o.body, "detail"), "Bad signature.");
    outcome_free(&o);
    KWT_EQ(calls, 0);

    req.client_id = "good";
    dispatch(KW_GET, "GET", "/member", &o, &req);
    KWT_EQ(o.res.status, 200);
    KWT_STREQ(jstr(o.body, "user"), "alice");
    outcome_free(&o);

    /* EITHER: signing headers mean member, else a bearer means guest, else 401. */
    dispatch(KW_GET, "GET", "/either", &o, &req);
    KWT_STREQ(jstr(o.body, "user"), "alice");
    outcome_free(&o);
    memset(&req, 0, sizeof req);
    req.authorization = "Bearer g";
    dispatch(KW_GET, "GET", "/either", &o, &req);
    KWT_STREQ(jstr(o.body, "user"), "guest");
    outcome_free(&o);
    req.nonce = "n"; /* any signing header: member, and this one fails */
    dispatch(KW_GET, "GET", "/either", &o, &req);
    KWT_EQ(o.res.status, 401);
    KWT_STREQ(jstr(o.body, "error"), "invalid_signature");
    outcome_free(&o);
    memset(&req, 0, sizeof req);
    dispatch(KW_GET, "GET", "/either", &o, &req);
    KWT_EQ(o.res.status, 401);
    KWT_STREQ(jstr(o.body, "error"), "unauthorized");
    outcome_free(&o);
    /* A guest cannot use a member route with its bearer. */
    req.authorization = "Bearer g";
    dispatch(KW_GET, "GET", "/member", &o, &req);
    KWT_EQ(o.res.status, 401);
    outcome_free(&o);

    /* An authenticator that does not name the caller is a server bug: 500. */
    router_srv.auth_guest = auth_forgets_caller;
    dispatch(KW_GET, "GET", "/guest", &o, &req);
    KWT_EQ(o.res.status, 500);
    KWT_STREQ(jstr(o.body, "error"), "internal");
    outcome_free(&o);
    KWT_EQ(calls, 3);

    /* 404 and 405 come before authentication. */
    router_srv.auth_member = NULL;
    dispatch(KW_POST, "POST", "/member", &o, NULL);
    KWT_EQ(o.res.status, 405);
    outcome_free(&o);
    router_srv.auth_guest = NULL;
}

static void router_errors_become_json(void)
{
    outcome o;
    dispatch(KW_GET, "GET", "/fail", &o, NULL);
    KWT_EQ(o.res.status, 429);
    KWT_EQ(o.res.retry_after_s, 7);
    KWT_STREQ(jstr(o.body, "error"), "rate_limited");
    KWT_STREQ(jstr(o.body, "detail"), "Slow down, ?? please.");
    KWT_EQ(json_object_size(o.body), 2);
    outcome_free(&o);

    dispatch(KW_GET, "GET", "/forbidden", &o, NULL);
    KWT_EQ(o.res.status, 403);
    KWT_STREQ(jstr(o.body, "error"), "forbidden");
    KWT_STREQ(jstr(o.body, "detail"), kw_strerror(KW_ERR_FORBIDDEN));
    outcome_free(&o);

    /* A handler's own error body is kept, with the code's status. */
    dispatch(KW_POST, "POST", "/conflict", &o, NULL);
    KWT_EQ(o.res.status, 409);
    KWT_STREQ(jstr(o.body, "by"), "u1");
    outcome_free(&o);
}

static void router_log_path_hides_secret_parameters(void)
{
    outcome o;
    dispatch(KW_GET, "GET", "/join/0123456789abcdef0123456789abcdef", &o, NULL);
    KWT_EQ(o.res.status, 200);
    KWT_STREQ(o.out.log_path, "/join/:token");
    outcome_free(&o);
    dispatch(KW_POST, "POST", "/join/0123456789abcdef0123456789abcdef", &o, NULL);
    KWT_EQ(o.res.status, 405);
    KWT_STREQ(o.out.log_path, "/join/:token");
    outcome_free(&o);
    dispatch(KW_GET, "GET", "/items/abc", &o, NULL);
    KWT_STREQ(o.out.log_path, "/items/abc");
    outcome_free(&o);
    char out[KW_ROUTER_LOG_PATH_MAX];
    kw_router_log_path(&router_srv, "/join/s3cr3t", out);
    KWT_STREQ(out, "/join/:token");
    /* Long unmatched paths are cut. */
    char longp[400];
    memset(longp, 'a', sizeof longp);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    kw_router_log_path(&router_srv, longp, out);
    KWT_EQ(strlen(out), KW_ROUTER_LOG_PATH_MAX - 1);
    KWT_STREQ(out + strlen(out) - 3, "...");
}

static void router_check_refuses_bad_tables(void)
{
    kw_error err;
    KWT_ERR(kw_router_check(NULL, &err), KW_OK); /* the built-in tables */
    KWT_ERR(kw_router_check(test_tables, &err), KW_OK);
    static const kw_route bad[][2] = {
        {{KW_GET, "nope", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a//b", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a/", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a/:", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/:a/:b/:c/:d/:e", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_HEAD, "/a", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_OTHER_METHOD, "/a", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a", KW_AUTH_NONE, NULL}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a", (kw_auth)9, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a b", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a?b", KW_AUTH_NONE, h_ok}, {0, NULL, 0, NULL}},
        {{KW_GET, "/a", KW_AUTH_NONE, h_ok}, {KW_GET, "/a", KW_AUTH_MEMBER, h_ok}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kw_route table[3];
        memcpy(table, bad[i], sizeof bad[i]);
        memset(&table[2], 0, sizeof table[2]);
        const kw_route *const list[] = {table, NULL};
        kw_error_clear(&err);
        if (kw_router_check(list, &err) != KW_ERR_INTERNAL)
            printf("    bad table %zu accepted\n", i);
        KWT_ERR(err.code, KW_ERR_INTERNAL);
    }
    /* A duplicate across two tables is found too. */
    const kw_route *const dup[] = {routes_a, routes_a, NULL};
    KWT_ERR(kw_router_check(dup, &err), KW_ERR_INTERNAL);
}

/* ---- statuses and response helpers -------------------------------------------------- */

static void every_code_has_one_status(void)
{
    static const unsigned allowed[] = {200, 400, 401, 403, 404, 405, 409,
                                       410, 413, 429, 500, 501, 503};
    for (int c = 0; c <= KW_ERR_NOT_CONFIGURED; c++) {
        unsigned s = kw_http_status((kw_err)c);
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok = ok || s == allowed[i];
        if (!KWT_CHECK(ok))
            printf("    %s -> %u\n", kw_err_name((kw_err)c), s);
    }
    static const struct {
        kw_err code;
        unsigned status;
    } want[] = {
        {KW_OK, 200},
        {KW_ERR_INVALID_ARGUMENT, 400},
        {KW_ERR_JSON, 400},
        {KW_ERR_UNKNOWN_FIELD, 400},
        {KW_ERR_BASE64, 400},
        {KW_ERR_INVALID_KEY, 400},
        {KW_ERR_INVALID_SIGNATURE, 400},
        {KW_ERR_NOT_FOUND, 404},
        {KW_ERR_UNKNOWN_INVITATION, 404},
        {KW_ERR_NOT_PRESENT, 404},
        {KW_ERR_FORBIDDEN, 403},
        {KW_ERR_MISSING_AUTH_HEADERS, 401},
        {KW_ERR_INVALID_AUTH_HEADERS, 401},
        {KW_ERR_REQUEST_EXPIRED, 401},
        {KW_ERR_UNKNOWN_CLIENT, 401},
        {KW_ERR_SESSION_EXPIRED, 401},
        {KW_ERR_AUTH_SIGNATURE, 401},
        {KW_ERR_DUPLICATE_REQUEST, 401},
        {KW_ERR_UNAUTHORIZED, 401},
        {KW_ERR_RATE_LIMITED, 429},
        {KW_ERR_CONFLICT, 409},
        {KW_ERR_ALREADY_ADMITTED, 409},
        {KW_ERR_ALREADY_DECLINED, 409},
        {KW_ERR_NO_HOST_PRESENT, 409},
        {KW_ERR_INVITATION_EXPIRED, 410},
        {KW_ERR_INVITATION_REVOKED, 410},
        {KW_ERR_INVITATION_EXHAUSTED, 410},
        {KW_ERR_PAYLOAD_TOO_LARGE, 413},
        {KW_ERR_METHOD_NOT_ALLOWED, 405},
        {KW_ERR_NOT_CONFIGURED, 503},
        {KW_ERR_INTERNAL, 500},
        {KW_ERR_STORE, 500},
        {KW_ERR_CRYPTO, 500},
        {KW_ERR_IO, 500},
        {KW_ERR_NOMEM, 500},
        {KW_ERR_INVALID_MESSAGE, 400},
        {KW_ERR_STATE, 409},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (kw_http_status(want[i].code) != want[i].status) {
            KWT_EQ(kw_http_status(want[i].code), want[i].status);
            printf("    code %s\n", kw_err_name(want[i].code));
        }
    KWT_EQ(kw_http_status((kw_err)999), 500);
}

static void response_helpers(void)
{
    kw_response res;
    kw_response_init(&res);
    KWT_EQ(res.status, 200);
    KWT_CHECK(res.body == NULL);
    KWT_ERR(kw_response_take_json(&res, 201, NULL), KW_ERR_NOMEM);
    KWT_CHECK(res.body == NULL);
    KWT_ERR(kw_response_take_json(&res, 201, json_pack("{s:i}", "a", 1)), KW_OK);
    KWT_EQ(res.status, 201);
    KWT_STREQ(res.body, "{\"a\":1}");
    KWT_EQ(res.body_len, 7);
    res.retry_after_s = 3;
    res.location = "/x";
    KWT_ERR(kw_response_error(&res, KW_ERR_NOT_FOUND, ""), KW_OK);
    KWT_EQ(res.status, 404);
    KWT_EQ(res.retry_after_s, 3);
    KWT_STREQ(res.location, "/x");
    json_t *j = json_loads(res.body, 0, NULL);
    KWT_STREQ(jstr(j, "detail"), kw_strerror(KW_ERR_NOT_FOUND));
    json_decref(j);
    KWT_ERR(kw_response_html(&res, 400, "<p>x</p>", 8), KW_OK);
    KWT_EQ(res.html, 1);
    KWT_STREQ(res.content_type, "text/html; charset=utf-8");
    KWT_ERR(kw_response_bytes(&res, 200, "application/octet-stream", "\0a", 2), KW_OK);
    KWT_EQ(res.body_len, 2);
    KWT_EQ(res.html, 0);
    KWT_ERR(kw_response_json(&res, 200, "{}"), KW_OK);
    KWT_CHECK(res.content_type == NULL);
    kw_response_free(&res);
    KWT_CHECK(res.body == NULL && res.body_len == 0);
    kw_response_free(&res); /* twice is fine */
    kw_response_free(NULL);
}

/* ---- the adapter, in a child process ------------------------------------------------ */

#define BIG_LEN (1024 * 1024 + 123)

static kw_err h_big(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    (void)err;
    char *b = malloc(BIG_LEN);
    if (b == NULL)
        return KW_ERR_NOMEM;
    for (size_t i = 0; i < BIG_LEN; i++)
        b[i] = (char)(i * 7 + i / 4096);
    kw_err rc = kw_response_bytes(res, 200, "application/octet-stream", b, BIG_LEN);
    free(b);
    return rc;
}

static kw_err h_page(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    (void)err;
    static const char page[] = "<!doctype html><p>hello</p>";
    return kw_response_html(res, 200, page, sizeof page - 1);
}

static kw_err h_redirect(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    (void)err;
    res->status = 302;
    res->location = "/app/meetings";
    return KW_OK;
}

static kw_err h_echo_body(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)err;
    return kw_response_bytes(res, 200, "application/octet-stream", req->body, req->body_len);
}

static kw_err h_headers(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)err;
    return kw_response_take_json(res, 200,
                                 json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "client_id",
                                           req->client_id, "timestamp", req->timestamp, "nonce",
                                           req->nonce, "signature", req->signature, "authorization",
                                           req->authorization, "accept", req->accept, "method",
                                           req->method_name));
}

static volatile sig_atomic_t child_stop;

static void on_child_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

static pid_t child_pid;
static uint16_t child_port;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int connect_child(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(child_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Runs the server with the test routes until SIGTERM; never returns. */
static void run_child(void)
{
    signal(SIGTERM, on_child_term);
    kw_server srv;
    memset(&srv, 0, sizeof srv);
    srv.routes = test_tables;
    srv.auth_member = auth_member_ok;
    snprintf(srv.config.listen_host, sizeof srv.config.listen_host, "127.0.0.1");
    srv.config.listen_port = child_port;
    srv.config.listen = "127.0.0.1";
    srv.config.livekit_url = "https://user:pw@Media.Example.org/x";
    kw_error err;
    if (kw_http_start(&srv, &err) != KW_OK) {
        printf("child: %s\n", err.detail);
        _exit(3);
    }
    while (!child_stop)
        if (kw_http_service(&srv, &err) != KW_OK)
            _exit(4);
    kw_http_drain(&srv, 2000);
    kw_http_stop(&srv);
    _exit(0);
}

static void adapter_starts(void)
{
    child_port = free_port();
    if (!KWT_CHECK(child_port != 0))
        return;
    fflush(stdout);
    child_pid = fork();
    if (child_pid == 0)
        run_child();
    if (!KWT_CHECK(child_pid > 0))
        return;
    for (int i = 0; i < 250; i++) {
        int fd = connect_child();
        if (fd >= 0) {
            close(fd);
            return;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    KWT_CHECK(!"the child server did not start");
    kill(child_pid, SIGKILL);
    waitpid(child_pid, NULL, 0);
    child_pid = 0;
}

/* The leading decimal digits of s, or -1. */
static long leading_number(const char *s)
{
    long v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9' && n < 18; n++)
        v = v * 10 + (s[n] - '0');
    return n > 0 ? v : -1;
}

typedef struct reply {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
} reply;

static bool header_of(const reply *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *l = strstr(r->head, "\r\n"); l != NULL; l = strstr(l + 2, "\r\n")) {
        const char *line = l + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

/*
 * Sends req (len bytes) on a fresh connection asking to close, reads the whole reply to
 * EOF, reading at most `chunk` bytes at a time with a pause of pause_us between reads
 * (a slow reader).
 */
static bool fetch(const char *req, size_t len, size_t chunk, long pause_us, reply *r)
{
    memset(r, 0, sizeof *r);
    int fd = connect_child();
    if (fd < 0)
        return false;
    size_t sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0) {
            close(fd);
            return false;
        }
        sent += (size_t)w;
    }
    size_t cap = 4 * 1024 * 1024, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return false;
    }
    for (;;) {
        ssize_t got = recv(fd, buf + n, chunk < cap - n ? chunk : cap - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
        if (pause_us > 0) {
            struct timespec ts = {0, pause_us * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    close(fd);
    char *end = NULL;
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    if (end == NULL || (size_t)(end - buf) >= sizeof r->head) {
        free(buf);
        return false;
    }
    memcpy(r->head, buf, (size_t)(end - buf));
    r->head[end - buf] = '\0';
    r->status = (int)leading_number(r->head + 9);
    r->body_len = n - (size_t)(end - buf) - 4;
    r->body = malloc(r->body_len + 1);
    if (r->body != NULL) {
        memcpy(r->body, end + 4, r->body_len);
        r->body[r->body_len] = '\0';
    }
    free(buf);
    return r->body != NULL;
}

static bool get(const char *target, const char *extra, reply *r)
{
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n",
                     target, extra ? extra : "");
    return fetch(req, (size_t)n, 65536, 0, r);
}

static void adapter_writes_a_large_reply_to_a_slow_reader(void)
{
    reply r;
    const char req[] = "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    /* 1 MiB in 16 KiB reads, pausing: the server must wait for the reader, not block. */
    if (!KWT_CHECK(fetch(req, sizeof req - 1, 16384, 2000, &r)))
        return;
    KWT_EQ(r.status, 200);
    char v[64];
    KWT_CHECK(header_of(&r, "content-length", v, sizeof v) && leading_number(v) == BIG_LEN);
    KWT_EQ(r.body_len, BIG_LEN);
    size_t bad = 0;
    for (size_t i = 0; i < r.body_len && i < BIG_LEN; i++)
        bad += r.body[i] != (char)(i * 7 + i / 4096);
    KWT_EQ(bad, 0);
    free(r.body);

    /* Meanwhile another client is served: run a slow read and a quick one together. */
    int slow = connect_child();
    if (KWT_CHECK(slow >= 0)) {
        KWT_CHECK(send(slow, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1));
        reply q;
        if (KWT_CHECK(get("/page", NULL, &q)))
            KWT_EQ(q.status, 200);
        free(q.body);
        close(slow); /* gone mid-reply: the server must cope */
    }
    reply h;
    const char head[] = "HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (KWT_CHECK(fetch(head, sizeof head - 1, 65536, 0, &h))) {
        KWT_EQ(h.status, 200);
        KWT_CHECK(header_of(&h, "content-length", v, sizeof v) && leading_number(v) == BIG_LEN);
        KWT_EQ(h.body_len, 0);
    }
    free(h.body);
}

static void adapter_headers_html_retry_after_location(void)
{
    reply r;
    char v[512];
    if (KWT_CHECK(get("/page", NULL, &r))) {
        KWT_EQ(r.status, 200);
        KWT_CHECK(header_of(&r, "content-type", v, sizeof v));
        KWT_STREQ(v, "text/html; charset=utf-8");
        KWT_CHECK(header_of(&r, "content-security-policy", v, sizeof v));
        KWT_STREQ(v, "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
                     "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' "
                     "https://media.example.org wss://media.example.org; frame-ancestors 'none'; "
                     "base-uri 'none'; "
                     "form-action 'self'");
        KWT_CHECK(header_of(&r, "referrer-policy", v, sizeof v) && strcmp(v, "no-referrer") == 0);
        KWT_CHECK(strstr(r.head, "pw") == NULL); /* the URL's user-info never leaks */
        KWT_STREQ(r.body, "<!doctype html><p>hello</p>");
    }
    free(r.body);
    if (KWT_CHECK(get("/fail", NULL, &r))) {
        KWT_EQ(r.status, 429);
        KWT_CHECK(header_of(&r, "retry-after", v, sizeof v) && strcmp(v, "7") == 0);
    }
    free(r.body);
    if (KWT_CHECK(get("/go", NULL, &r))) {
        KWT_EQ(r.status, 302);
        KWT_CHECK(header_of(&r, "location", v, sizeof v) && strcmp(v, "/app/meetings") == 0);
        KWT_CHECK(header_of(&r, "content-length", v, sizeof v) && strcmp(v, "0") == 0);
    }
    free(r.body);
    if (KWT_CHECK(get("/member", "X-Client-ID: good\r\n", &r))) {
        KWT_EQ(r.status, 200);
        KWT_CHECK(strstr(r.body, "\"user\":\"alice\"") != NULL);
    }
    free(r.body);
    if (KWT_CHECK(get("/guest", "Authorization: Bearer g\r\n", &r)))
        KWT_EQ(r.status, 401); /* no guest authenticator plugged in */
    free(r.body);
}

/* Bodies reach the handler byte for byte, up to exactly the limit, both framings. */
static void adapter_delivers_bodies_intact(void)
{
    enum { N = KW_HTTP_BODY_MAX };
    char *body = malloc(N);
    char *req = malloc(2 * N + 4096);
    if (!KWT_CHECK(body != NULL && req != NULL)) {
        free(body);
        free(req);
        return;
    }
    for (size_t i = 0; i < N; i++)
        body[i] = (char)(i * 13 + 5);
    static const size_t sizes[] = {1, 4095, 4096, 4097, N - 1, N};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int h = snprintf(req, 256,
                         "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         n);
        memcpy(req + h, body, n);
        reply r;
        if (KWT_CHECK(fetch(req, (size_t)h + n, 65536, 0, &r))) {
            KWT_EQ(r.status, 200);
            KWT_EQ(r.body_len, n);
            KWT_CHECK(r.body_len == n && memcmp(r.body, body, n) == 0);
        }
        free(r.body);

        /* The same body chunked, in uneven chunks with extensions and a trailer. */
        size_t used = (size_t)snprintf(req, 256,
                                       "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 + 1) {
            size_t c = n - off < step ? n - off : step;
            used += (size_t)snprintf(req + used, 32, "%zX%s\r\n", c, (step & 1) ? ";x=y" : "");
            memcpy(req + used, body + off, c);
            used += c;
            memcpy(req + used, "\r\n", 2);
            used += 2;
        }
        used += (size_t)snprintf(req + used, 64, "0\r\nX-Sum: 1\r\n\r\n");
        if (KWT_CHECK(fetch(req, used, 65536, 0, &r))) {
            KWT_EQ(r.status, 200);
            KWT_CHECK(r.body_len == n && memcmp(r.body, body, n) == 0);
            char v[32] = "";
            KWT_CHECK(header_of(&r, "connection", v, sizeof v) && strcmp(v, "close") == 0);
        }
        free(r.body);
    }
    free(body);
    free(req);
}

/* Path parameters and the rebuilt target, end to end through lws. */
static void adapter_paths_parameters_and_target(void)
{
    static const struct {
        const char *target;
        const char *param0, *path, *query;
    } cases[] = {
        {"/items/abc", "abc", "/items/abc", ""},
        {"/items/a%20b", "a b", "/items/a%20b", ""},
        {"/items/%41%42", "AB", "/items/AB", ""},
        {"/items/x~y_z-1.2", "x~y_z-1.2", "/items/x~y_z-1.2", ""},
        {"/items/a:b@c!$'()*,=", "a:b@c!$'()*,=", "/items/a:b@c!$'()*,=", ""},
        /* lws reads a raw '+' in a path as a space, raw '&' and ';' as separators */
        {"/items/a+b", "a b", "/items/a%20b", ""},
        {"/items/a;b&c", "a&b&c", "/items/a&b&c", ""},
        {"/items/a%2Bb%26c%3B", "a+b&c;", "/items/a%2Bb%26c%3B", ""},
        {"/items/a%3Fb", "a?b", "/items/a%3Fb", ""},
        {"/items/a%25b", "a%b", "/items/a%25b", ""},
        {"/items/q?filter=my&status=joined", "q", "/items/q", "filter=my&status=joined"},
        {"/items/q?a=b+c&d=%26", "q", "/items/q", "a=b%20c&d=%26"},
        {"/items/q?", "q", "/items/q", ""},
        {"/items/q?a=1&", "q", "/items/q", "a=1&"},
        {"/items/q?x=a%2Fb", "q", "/items/q", "x=a/b"},
        {"/a/1/2/3/4", "1", "/a/1/2/3/4", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply r;
        if (!KWT_CHECK(get(cases[i].target, NULL, &r)))
            continue;
        json_t *j = json_loads(r.body, 0, NULL);
        const char *p0 = json_string_value(json_array_get(json_object_get(j, "params"), 0));
        bool ok = r.status == 200 && p0 != NULL && strcmp(p0, cases[i].param0) == 0 &&
                  strcmp(jstr(j, "path"), cases[i].path) == 0 &&
                  strcmp(jstr(j, "query"), cases[i].query) == 0;
        char target[256];
        snprintf(target, sizeof target, "%s%s%s", cases[i].path, cases[i].query[0] ? "?" : "",
                 cases[i].query);
        ok = ok && strcmp(jstr(j, "target"), target) == 0;
        if (!KWT_CHECK(ok))
            printf("    %s -> %d %s\n", cases[i].target, r.status, r.body);
        json_decref(j);
        free(r.body);
    }
}

static void adapter_passes_the_request_headers(void)
{
    reply r;
    const char *extra = "X-Client-ID: cid-1\r\nX-Timestamp: 1795000000000\r\n"
                        "X-Nonce: nonce_nonce_nonce_1\r\nX-Signature: abcdef\r\n"
                        "Authorization: Bearer sekret\r\nAccept: text/html\r\n";
    if (!KWT_CHECK(get("/headers", extra, &r)))
        return;
    json_t *j = json_loads(r.body, 0, NULL);
    KWT_STREQ(jstr(j, "client_id"), "cid-1");
    KWT_STREQ(jstr(j, "timestamp"), "1795000000000");
    KWT_STREQ(jstr(j, "nonce"), "nonce_nonce_nonce_1");
    KWT_STREQ(jstr(j, "signature"), "abcdef");
    KWT_STREQ(jstr(j, "authorization"), "Bearer sekret");
    KWT_STREQ(jstr(j, "accept"), "text/html");
    KWT_STREQ(jstr(j, "method"), "GET");
    json_decref(j);
    free(r.body);
    /* Absent headers are NULL. */
    if (KWT_CHECK(get("/headers", NULL, &r))) {
        j = json_loads(r.body, 0, NULL);
        KWT_CHECK(json_object_get(j, "client_id") == NULL ||
                  json_is_null(json_object_get(j, "client_id")));
        KWT_CHECK(json_object_get(j, "authorization") == NULL ||
                  json_is_null(json_object_get(j, "authorization")));
        json_decref(j);
    }
    free(r.body);
}

static void adapter_stops(void)
{
    if (!KWT_CHECK(kill(child_pid, SIGTERM) == 0))
        return;
    int status = 0;
    KWT_CHECK(waitpid(child_pid, &status, 0) == child_pid);
    KWT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    child_pid = 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(120);
    router_srv.routes = test_tables;
    KWT_RUN(router_matches_literals_and_parameters);
    KWT_RUN(router_parameter_limits);
    KWT_RUN(router_404_405_and_head);
    KWT_RUN(router_authentication);
    KWT_RUN(router_errors_become_json);
    KWT_RUN(router_log_path_hides_secret_parameters);
    KWT_RUN(router_check_refuses_bad_tables);
    KWT_RUN(every_code_has_one_status);
    KWT_RUN(response_helpers);
    KWT_RUN(adapter_starts);
    if (child_pid > 0) {
        KWT_RUN(adapter_writes_a_large_reply_to_a_slow_reader);
        KWT_RUN(adapter_headers_html_retry_after_location);
        KWT_RUN(adapter_delivers_bodies_intact);
        KWT_RUN(adapter_paths_parameters_and_target);
        KWT_RUN(adapter_passes_the_request_headers);
        KWT_RUN(adapter_stops);
    }
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
    }
    return kwt_finish();
}
