/*
 * test_client_net.c — client/net_lws.c against the real keywaved: base URL forms, HTTP
 * GET/POST/PUT/PATCH/DELETE with bodies and 4xx answers, connection refused, a server
 * that accepts but never answers (timeouts), argument checks; Socket.IO CONNECT refused on
 * /external (bad secret) and / (bad signature) with the CONNECT_ERROR data, a member
 * CONNECT signed like DESIGN.md section 4, video:check-participants (ack and the queued
 * video:participants-info event), an error ack for a channel the member is not in,
 * kwc_sio_next timeouts, HTTP while the socket is up, close and reconnect, and a server
 * that stops under a connected socket (kwc_sio_next: KW_ERR_IO).
 *
 * KEYWAVED names the binary (tests/run.sh sets it); without it, ./build/keywaved.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "keywave/err.h"
#include "keywave/random.h"
#include "keywave/request_sign.h"
#include "kwserver.h"
#include "net.h"

static kws_server srv;
static char url[64]; /* http://127.0.0.1:<port> of srv */

typedef struct member {
    char user_id[130], client_id[130], secret[64];
} member;

static member alice, bob;
static char alice_channel[64], bob_channel[64];

/* ---- helpers ------------------------------------------------------------------------ */

/* Runs `keywaved <args>` on srv's data directory; stdout into out. Returns the status. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    return kws_admin(&srv, args, out, cap);
}

/* A new user's enrollment code (without the newline), or 0. */
static int user_add(const char *name, char code[32])
{
    const char *args[] = {"user", "add", name, NULL};
    char out[256];
    if (run_cli(args, out, sizeof out) != 0 || strlen(out) != 21)
        return 0;
    memcpy(code, out, 20);
    code[20] = '\0';
    return 1;
}

static kwc_net *net_for(const char *base)
{
    kwc_net *n = NULL;
    kw_error e = {0};
    if (kwc_net_new(base, &n, &e) != KW_OK)
        printf("    kwc_net_new(%s): %s\n", base, e.detail);
    return n;
}

/* Parses a response body as JSON (NULL if it is not). */
static json_t *body_json(const kwc_http_response *r)
{
    return r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

/* The "error" token of a JSON error body equals token. */
static void check_error_body(const kwc_http_response *r, int status, const char *token)
{
    KWT_EQ(r->status, status);
    json_t *j = body_json(r);
    KWT_STREQ(json_string_value(json_object_get(j, "error")), token);
    json_decref(j);
}

/* One request signed as m (DESIGN.md section 4) through kwc_http_request. */
static kw_err signed_request(kwc_net *n, const member *m, const char *method, const char *target,
                             const char *body, kwc_http_response *r, kw_error *e)
{
    char ts[32], nonce[KW_REQUEST_NONCE_NEW_CHARS + 1], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    snprintf(ts, sizeof ts, "%lld", (long long)kws_now_ms());
    if (kw_request_nonce_new(kw_random_system(), nonce) != KW_OK ||
        kw_request_sign(m->secret, m->client_id, ts, nonce, method, target,
                        (const uint8_t *)(body ? body : ""), body ? strlen(body) : 0, sig) != KW_OK)
        return KW_ERR_INTERNAL;
    kwc_header h[4] = {{"X-Client-ID", m->client_id},
                       {"X-Timestamp", ts},
                       {"X-Nonce", nonce},
                       {"X-Signature", sig}};
    return kwc_http_request(n, method, target, h, 4, body, body ? strlen(body) : 0, 5000, r, e);
}

/* The CONNECT auth of a member: GET /socket.io/auth signed with an empty body. */
static json_t *member_auth(const member *m, int spoil)
{
    char ts[32], nonce[KW_REQUEST_NONCE_NEW_CHARS + 1], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    long long now = (long long)kws_now_ms();
    snprintf(ts, sizeof ts, "%lld", now);
    if (kw_request_nonce_new(kw_random_system(), nonce) != KW_OK ||
        kw_request_sign(spoil ? "not-the-secret" : m->secret, m->client_id, ts, nonce, "GET",
                        "/socket.io/auth", (const uint8_t *)"", 0, sig) != KW_OK)
        return NULL;
    return json_pack("{s:s, s:I, s:s, s:s}", "client_id", m->client_id, "timestamp",
                     (json_int_t)now, "nonce", nonce, "signature", sig);
}

static int enroll(kwc_net *n, const char *name, member *m)
{
    char code[32], body[128];
    if (!user_add(name, code))
        return 0;
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"device_name\":\"%s laptop\"}", code, name);
    kwc_http_response r;
    kw_error e = {0};
    int ok = 0;
    if (kwc_http_request(n, "POST", "/api/auth/enroll", NULL, 0, body, strlen(body), 5000, &r,
                         &e) == KW_OK &&
        r.status == 201) {
        json_t *j = body_json(&r);
        const char *u = NULL, *c = NULL, *s = NULL;
        if (json_unpack(j, "{s:s, s:s, s:s}", "user_id", &u, "client_id", &c, "session_secret",
                        &s) == 0) {
            snprintf(m->user_id, sizeof m->user_id, "%s", u);
            snprintf(m->client_id, sizeof m->client_id, "%s", c);
            snprintf(m->secret, sizeof m->secret, "%s", s);
            ok = 1;
        }
        json_decref(j);
    }
    kwc_http_response_clear(&r);
    return ok;
}

/* Creates a channel owned by m; its id into out. */
static int create_channel(kwc_net *n, const member *m, const char *name, char out[64])
{
    char body[128];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"type\":\"webrtc\"}", name);
    kwc_http_response r;
    kw_error e = {0};
    int ok = 0;
    if (signed_request(n, m, "POST", "/api/channels", body, &r, &e) == KW_OK && r.status == 201) {
        json_t *j = body_json(&r);
        const char *id = json_string_value(json_object_get(j, "channel_id"));
        if (id != NULL) {
            snprintf(out, 64, "%s", id);
            ok = 1;
        }
        json_decref(j);
    }
    kwc_http_response_clear(&r);
    return ok;
}

/* A socket listening on 127.0.0.1 that never accepts (the kernel completes the handshake). */
static int silent_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- tests ------------------------------------------------------------------------- */

static void server_starts(void)
{
    if (KWT_CHECK(kws_start(&srv, "main", NULL)))
        snprintf(url, sizeof url, "http://127.0.0.1:%u", srv.port);
}

static void base_url_forms(void)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:8080",
        "ftp://host",
        "http://",
        "http:///",
        "http://host/path",
        "http://host:8080/api",
        "http://host:0",
        "http://host:65536",
        "http://host:99999999",
        "http://host:",
        "http://host:80x",
        "http://user@host",
        "http://host?x=1",
        "http://host#frag",
        "http://ho st",
        "http://[::1",
        "http://[zz]",
        "HTTP://host",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kwc_net *n = (kwc_net *)1;
        kw_error e = {0};
        kw_err rc = kwc_net_new(bad[i], &n, &e);
        if (rc != KW_ERR_INVALID_ARGUMENT)
            printf("    accepted or misreported: \"%s\"\n", bad[i]);
        KWT_ERR(rc, KW_ERR_INVALID_ARGUMENT);
        KWT_CHECK(n == NULL);
        KWT_CHECK(e.detail[0] != '\0');
    }
    kwc_net *n = NULL;
    KWT_ERR(kwc_net_new(NULL, &n, NULL), KW_ERR_INVALID_ARGUMENT);

    static const char *const good[][2] = {
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
        {"http://localhost", "http://localhost"},
        {"http://[::1]:9000", "http://[::1]:9000"},
        {"https://keywave.example.org", "https://keywave.example.org"},
        {"https://keywave.example.org:8443/", "https://keywave.example.org:8443"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        n = net_for(good[i][0]);
        if (KWT_CHECK(n != NULL))
            KWT_STREQ(kwc_net_base_url(n), good[i][1]);
        kwc_net_free(n);
    }
    kwc_net_free(NULL);
}

static void get_healthz(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    kwc_http_response r;
    kw_error e = {0};
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", NULL, 0, NULL, 0, 5000, &r, &e), KW_OK);
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.body, "{\"status\":\"ok\"}");
    KWT_EQ(r.body_len, strlen("{\"status\":\"ok\"}"));
    kwc_http_response_clear(&r);
    KWT_CHECK(r.body == NULL && r.status == 0);
    kwc_http_response_clear(NULL);
    /* A second request on the same kwc_net; and a 404 with an empty query string. */
    KWT_ERR(kwc_http_request(n, "GET", "/no/such/path?x=1", NULL, 0, NULL, 0, 5000, &r, &e), KW_OK);
    KWT_EQ(r.status, 404);
    kwc_http_response_clear(&r);
    /* 405 for a method the route does not take is a status, not an error. */
    KWT_ERR(kwc_http_request(n, "DELETE", "/healthz", NULL, 0, NULL, 0, 5000, &r, &e), KW_OK);
    check_error_body(&r, 405, "method_not_allowed");
    kwc_http_response_clear(&r);
    kwc_net_free(n);
}

static void post_with_body_and_error_answers(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    kwc_http_response r;
    kw_error e = {0};
    static const char unknown[] = "{\"code\":\"aaaaaaaaaaaaaaaaaaaa\",\"device_name\":\"x\"}";
    KWT_ERR(kwc_http_request(n, "POST", "/api/auth/enroll", NULL, 0, unknown, strlen(unknown), 5000,
                             &r, &e),
            KW_OK);
    check_error_body(&r, 401, "unauthorized");
    kwc_http_response_clear(&r);
    static const char notjson[] = "{\"code\":";
    KWT_ERR(kwc_http_request(n, "POST", "/api/auth/enroll", NULL, 0, notjson, strlen(notjson), 5000,
                             &r, &e),
            KW_OK);
    check_error_body(&r, 400, "invalid_json");
    kwc_http_response_clear(&r);
    /* POST without a body: no Content-Type, and the server sees none. */
    KWT_ERR(kwc_http_request(n, "POST", "/api/auth/enroll", NULL, 0, NULL, 0, 5000, &r, &e), KW_OK);
    check_error_body(&r, 400, "invalid_json");
    kwc_http_response_clear(&r);
    /* A body of several write slices arrives whole: the server reads all of it and
     * answers on its shape (a short body would be a different error). */
    size_t big_len = 20000;
    char *big = malloc(big_len + 1);
    if (KWT_CHECK(big != NULL)) {
        memset(big, ' ', big_len);
        memcpy(big, "{\"code\":\"aaaaaaaaaaaaaaaaaaaa\",\"device_name\":\"", 46);
        memset(big + 46, 'd', 15000);
        memcpy(big + 46 + 15000, "\"}", 2);
        KWT_ERR(
            kwc_http_request(n, "POST", "/api/auth/enroll", NULL, 0, big, big_len, 5000, &r, &e),
            KW_OK);
        check_error_body(&r, 400, "invalid_field");
        kwc_http_response_clear(&r);
        /* Over the server's 64 KiB: it answers 413 from the headers and closes, which
         * races the rest of the body; either outcome is a clean one. */
        big = realloc(big, 100000);
        if (KWT_CHECK(big != NULL)) {
            memset(big, ' ', 100000);
            big[0] = '{';
            big[99999] = '}';
            kw_err rc =
                kwc_http_request(n, "POST", "/api/auth/enroll", NULL, 0, big, 100000, 5000, &r, &e);
            KWT_CHECK(rc == KW_OK || rc == KW_ERR_IO);
            if (rc == KW_OK)
                check_error_body(&r, 413, "payload_too_large");
            kwc_http_response_clear(&r);
        }
        free(big);
    }
    /* Two members, enrolled through the client; each owns a channel. */
    KWT_CHECK(enroll(n, "alice", &alice));
    KWT_CHECK(enroll(n, "bob", &bob));
    KWT_CHECK(create_channel(n, &alice, "Alice team", alice_channel));
    KWT_CHECK(create_channel(n, &bob, "Bob team", bob_channel));
    kwc_net_free(n);
}

static void put_patch_delete(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    kwc_http_response r;
    kw_error e = {0};
    KWT_ERR(signed_request(n, &alice, "PUT", "/api/keys/identity",
                           "{\"identity_key\":\"AAAA\",\"registration_id\":1}", &r, &e),
            KW_OK);
    check_error_body(&r, 400, "invalid_key");
    kwc_http_response_clear(&r);

    static const char meeting[] = "{\"title\":\"Weekly\",\"start_time\":\"2026-11-23T10:00:00Z\","
                                  "\"end_time\":\"2026-11-23T11:00:00Z\"}";
    char id[64] = "", target[128];
    KWT_ERR(signed_request(n, &alice, "POST", "/api/meetings", meeting, &r, &e), KW_OK);
    KWT_EQ(r.status, 201);
    json_t *j = body_json(&r);
    const char *mid = json_string_value(json_object_get(j, "meeting_id"));
    if (mid != NULL)
        snprintf(id, sizeof id, "%s", mid);
    json_decref(j);
    kwc_http_response_clear(&r);
    if (!KWT_CHECK(id[0] != '\0')) {
        kwc_net_free(n);
        return;
    }
    snprintf(target, sizeof target, "/api/meetings/%s", id);
    KWT_ERR(signed_request(n, &alice, "PATCH", target, "{\"title\":\"Renamed\"}", &r, &e), KW_OK);
    KWT_EQ(r.status, 200);
    j = body_json(&r);
    KWT_STREQ(json_string_value(json_object_get(j, "title")), "Renamed");
    json_decref(j);
    kwc_http_response_clear(&r);
    /* Bob may not delete it; alice may, once. */
    KWT_ERR(signed_request(n, &bob, "DELETE", target, NULL, &r, &e), KW_OK);
    check_error_body(&r, 403, "forbidden");
    kwc_http_response_clear(&r);
    KWT_ERR(signed_request(n, &alice, "DELETE", target, NULL, &r, &e), KW_OK);
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.body, "{\"ok\":true}");
    kwc_http_response_clear(&r);
    KWT_ERR(signed_request(n, &alice, "DELETE", target, NULL, &r, &e), KW_OK);
    check_error_body(&r, 404, "not_found");
    kwc_http_response_clear(&r);
    kwc_net_free(n);
}

static void connection_refused_is_io(void)
{
    char closed[64];
    snprintf(closed, sizeof closed, "http://127.0.0.1:%u", kws_free_port());
    kwc_net *n = net_for(closed);
    if (!KWT_CHECK(n != NULL))
        return;
    kwc_http_response r = {.status = 7};
    kw_error e = {0};
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", NULL, 0, NULL, 0, 5000, &r, &e), KW_ERR_IO);
    KWT_CHECK(e.detail[0] != '\0');
    KWT_CHECK(r.status == 0 && r.body == NULL);
    json_t *cerr = (json_t *)1;
    KWT_ERR(kwc_sio_connect(n, "/", NULL, 5000, &cerr, &e), KW_ERR_IO);
    KWT_CHECK(cerr == NULL);
    KWT_EQ(kwc_sio_connected(n), 0);
    kwc_event ev;
    KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_STATE);
    kwc_net_free(n);
}

static void silent_server_times_out(void)
{
    uint16_t port = 0;
    int fd = silent_listener(&port);
    if (!KWT_CHECK(fd >= 0))
        return;
    char silent[64];
    snprintf(silent, sizeof silent, "http://127.0.0.1:%u", port);
    kwc_net *n = net_for(silent);
    if (KWT_CHECK(n != NULL)) {
        kwc_http_response r;
        kw_error e = {0};
        KWT_ERR(kwc_http_request(n, "POST", "/api/x", NULL, 0, "{}", 2, 300, &r, &e),
                KW_ERR_TIMEOUT);
        KWT_CHECK(strstr(e.detail, "300 ms") != NULL);
        KWT_CHECK(r.body == NULL);
        KWT_ERR(kwc_sio_connect(n, "/", NULL, 300, NULL, &e), KW_ERR_TIMEOUT);
        KWT_EQ(kwc_sio_connected(n), 0);
        kwc_event ev;
        KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_STATE);
    }
    kwc_net_free(n);
    close(fd);
}

static void bad_arguments(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    kwc_http_response r;
    kw_error e = {0};
    KWT_ERR(kwc_http_request(n, "HEAD", "/healthz", NULL, 0, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, NULL, "/healthz", NULL, 0, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, "GET", "healthz", NULL, 0, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, "GET", "/a b", NULL, 0, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, "GET", "/a\r\nX: y", NULL, 0, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    kwc_header inject = {"X-Client-ID", "a\r\nX-Evil: 1"};
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", &inject, 1, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    kwc_header badname = {"X Client", "a"};
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", &badname, 1, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", NULL, 1, NULL, 0, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, "POST", "/healthz", NULL, 0, NULL, 3, 1000, &r, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", NULL, 0, NULL, 0, 1000, NULL, &e),
            KW_ERR_INVALID_ARGUMENT);
    /* Socket.IO calls before any connection. */
    json_t *ack = NULL, *p = json_object();
    kwc_event ev;
    KWT_ERR(kwc_sio_emit(n, "video:check-participants", p, &e), KW_ERR_STATE);
    KWT_ERR(kwc_sio_call(n, "video:check-participants", p, 100, &ack, &e), KW_ERR_STATE);
    KWT_CHECK(ack == NULL);
    KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_STATE);
    KWT_ERR(kwc_sio_connect(n, "noslash", NULL, 1000, NULL, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_sio_connect(n, "/", p, 5000, NULL, &e), KW_ERR_UNAUTHORIZED); /* {}: no auth */
    KWT_STREQ(e.detail, "missing_auth_headers");
    json_t *arr = json_array();
    KWT_ERR(kwc_sio_connect(n, "/", arr, 1000, NULL, &e), KW_ERR_INVALID_ARGUMENT);
    json_decref(arr);
    json_decref(p);
    kwc_sio_close(n);
    kwc_sio_close(NULL);
    kwc_event_clear(NULL);
    kwc_net_free(n);
}

static void external_bad_secret_is_unauthorized(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    json_t *auth = json_pack("{s:s, s:s}", "session_id", "0123456789abcdef0123456789abcdef",
                             "guest_secret", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    json_t *cerr = NULL;
    kw_error e = {0};
    KWT_ERR(kwc_sio_connect(n, "/external", auth, 5000, &cerr, &e), KW_ERR_UNAUTHORIZED);
    KWT_STREQ(e.detail, "unauthorized");
    KWT_CHECK(json_is_object(cerr));
    KWT_STREQ(json_string_value(json_object_get(cerr, "message")), "unauthorized");
    KWT_EQ(kwc_sio_connected(n), 0);
    json_decref(cerr);
    /* Without a place for the data, the code is the same. */
    KWT_ERR(kwc_sio_connect(n, "/external", NULL, 5000, NULL, &e), KW_ERR_UNAUTHORIZED);
    kwc_event ev;
    KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_STATE);
    json_decref(auth);
    kwc_net_free(n);
}

static void member_bad_signature_is_unauthorized(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    json_t *auth = member_auth(&alice, 1);
    json_t *cerr = NULL;
    kw_error e = {0};
    KWT_ERR(kwc_sio_connect(n, "/", auth, 5000, &cerr, &e), KW_ERR_UNAUTHORIZED);
    KWT_STREQ(json_string_value(json_object_get(cerr, "message")), "invalid_signature");
    KWT_STREQ(e.detail, "invalid_signature");
    json_decref(cerr);
    json_decref(auth);
    kwc_net_free(n);
}

/* Connects n as m on "/"; 1 on success. */
static int connect_member(kwc_net *n, const member *m)
{
    json_t *auth = member_auth(m, 0);
    json_t *cerr = NULL;
    kw_error e = {0};
    kw_err rc = kwc_sio_connect(n, "/", auth, 5000, &cerr, &e);
    if (rc != KW_OK)
        printf("    connect: %s: %s\n", kw_err_name(rc), e.detail);
    KWT_CHECK(cerr == NULL);
    json_decref(auth);
    return rc == KW_OK;
}

/* check-participants on alice's channel: ack {ok:true...} and the queued event. */
static void check_participants(kwc_net *n)
{
    kw_error e = {0};
    json_t *payload = json_pack("{s:s}", "channelId", alice_channel), *ack = NULL;
    KWT_ERR(kwc_sio_call(n, "video:check-participants", payload, 5000, &ack, &e), KW_OK);
    KWT_CHECK(json_is_true(json_object_get(ack, "ok")));
    KWT_STREQ(json_string_value(json_object_get(ack, "channelId")), alice_channel);
    KWT_EQ(json_integer_value(json_object_get(ack, "participantCount")), 0);
    KWT_CHECK(json_is_true(json_object_get(ack, "isFirstParticipant")));
    json_decref(ack);
    kwc_event ev;
    KWT_ERR(kwc_sio_next(n, 5000, &ev, &e), KW_OK);
    KWT_STREQ(ev.name, "video:participants-info");
    KWT_EQ(json_array_size(ev.args), 1);
    json_t *info = json_array_get(ev.args, 0);
    KWT_STREQ(json_string_value(json_object_get(info, "channelId")), alice_channel);
    KWT_CHECK(json_is_array(json_object_get(info, "participants")));
    kwc_event_clear(&ev);
    KWT_CHECK(ev.name == NULL && ev.args == NULL);
    json_decref(payload);
}

static void member_socket_calls_and_events(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    if (!KWT_CHECK(connect_member(n, &alice))) {
        kwc_net_free(n);
        return;
    }
    KWT_EQ(kwc_sio_connected(n), 1);
    kw_error e = {0};
    json_t *auth = member_auth(&alice, 0);
    KWT_ERR(kwc_sio_connect(n, "/", auth, 1000, NULL, &e), KW_ERR_STATE);
    KWT_EQ(kwc_sio_connected(n), 1);
    json_decref(auth);

    kwc_event ev = {0};
    KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_TIMEOUT);
    KWT_CHECK(ev.name == NULL);
    KWT_ERR(kwc_sio_next(n, 200, &ev, &e), KW_ERR_TIMEOUT);

    check_participants(n);

    /* Bob's channel: alice is no member, so the ack is an error and nothing is queued. */
    json_t *payload = json_pack("{s:s}", "channelId", bob_channel), *ack = NULL;
    KWT_ERR(kwc_sio_call(n, "video:check-participants", payload, 5000, &ack, &e), KW_OK);
    KWT_STREQ(json_string_value(json_object_get(ack, "error")), "forbidden");
    json_decref(ack);
    KWT_ERR(kwc_sio_next(n, 200, &ev, &e), KW_ERR_TIMEOUT);
    /* An unknown event: not_found; a bad payload: invalid_payload. */
    KWT_ERR(kwc_sio_call(n, "no:such-event", payload, 5000, &ack, &e), KW_OK);
    KWT_STREQ(json_string_value(json_object_get(ack, "error")), "not_found");
    json_decref(ack);
    KWT_ERR(kwc_sio_call(n, "video:check-participants", NULL, 5000, &ack, &e), KW_OK);
    KWT_STREQ(json_string_value(json_object_get(ack, "error")), "invalid_payload");
    json_decref(ack);
    /* Reserved or empty event names never reach the wire. */
    KWT_ERR(kwc_sio_call(n, "connect", payload, 5000, &ack, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_sio_emit(n, "", payload, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kwc_sio_call(n, NULL, payload, 5000, &ack, &e), KW_ERR_INVALID_ARGUMENT);
    json_decref(payload);

    /* emit without an ack: the server's event still comes, in order after an HTTP call. */
    payload = json_pack("{s:s}", "channelId", alice_channel);
    KWT_ERR(kwc_sio_emit(n, "video:check-participants", payload, &e), KW_OK);
    json_decref(payload);
    kwc_http_response r;
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", NULL, 0, NULL, 0, 5000, &r, &e), KW_OK);
    KWT_EQ(r.status, 200);
    kwc_http_response_clear(&r);
    KWT_ERR(kwc_sio_next(n, 5000, &ev, &e), KW_OK);
    KWT_STREQ(ev.name, "video:participants-info");
    kwc_event_clear(&ev);

    /* Registering makes alice a participant; the next check still excludes her device. */
    payload = json_pack("{s:s}", "channelId", alice_channel);
    KWT_ERR(kwc_sio_call(n, "video:register-participant", payload, 5000, &ack, &e), KW_OK);
    KWT_CHECK(json_is_true(json_object_get(ack, "ok")));
    json_decref(ack);
    json_decref(payload);
    check_participants(n);

    /* Close, then a new connection works; events of the old one are gone. */
    payload = json_pack("{s:s}", "channelId", alice_channel);
    KWT_ERR(kwc_sio_emit(n, "video:check-participants", payload, &e), KW_OK);
    json_decref(payload);
    kwc_sio_close(n);
    KWT_EQ(kwc_sio_connected(n), 0);
    KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_STATE);
    KWT_ERR(kwc_sio_call(n, "video:check-participants", NULL, 100, &ack, &e), KW_ERR_STATE);
    kwc_sio_close(n); /* twice is fine */
    if (KWT_CHECK(connect_member(n, &alice))) {
        KWT_ERR(kwc_sio_next(n, 100, &ev, &e), KW_ERR_TIMEOUT);
        check_participants(n);
    }
    kwc_net_free(n); /* closes the socket */
}

/* The server stops under a connected socket: queued events first, then KW_ERR_IO. */
static void server_stop_is_io(void)
{
    kwc_net *n = net_for(url);
    if (!KWT_CHECK(n != NULL))
        return;
    if (!KWT_CHECK(connect_member(n, &bob))) {
        kwc_net_free(n);
        return;
    }
    kw_error e = {0};
    json_t *payload = json_pack("{s:s}", "channelId", bob_channel);
    KWT_ERR(kwc_sio_emit(n, "video:check-participants", payload, &e), KW_OK);
    json_decref(payload);
    /* Wait until the server's answer is queued (an HTTP call services the socket). */
    kwc_http_response r;
    KWT_ERR(kwc_http_request(n, "GET", "/healthz", NULL, 0, NULL, 0, 5000, &r, &e), KW_OK);
    kwc_http_response_clear(&r);
    KWT_EQ(kws_stop(&srv, SIGTERM), 0); /* a clean stop, with the socket still open */
    kwc_event ev;
    KWT_ERR(kwc_sio_next(n, 10000, &ev, &e), KW_OK);
    KWT_STREQ(ev.name, "video:participants-info");
    kwc_event_clear(&ev);
    kw_err rc = kwc_sio_next(n, 10000, &ev, &e);
    KWT_ERR(rc, KW_ERR_IO);
    if (!KWT_CHECK(strstr(e.detail, "closed") != NULL))
        printf("    detail: %s\n", e.detail);
    KWT_EQ(kwc_sio_connected(n), 0);
    KWT_ERR(kwc_sio_emit(n, "video:check-participants", NULL, &e), KW_ERR_IO);
    KWT_ERR(kwc_sio_next(n, 0, &ev, &e), KW_ERR_IO); /* stays lost */
    kwc_net_free(n);
}

/* ---- a scripted fake server: one WebSocket, raw frames ----------------------------------- */

/*
 * What the fake server does after the handshake, the Engine.IO open packet (pingInterval
 * 300, pingTimeout 200) and a CONNECT answer sent in two WebSocket fragments: it pings and
 * checks the pong, then sends "pong-ok" (or "no-pong"), a 100 000-byte event in three
 * fragments, and ends as the script says.
 */
typedef enum fake_end {
    FAKE_SILENT,     /* stop pinging: the client's watchdog must end the connection */
    FAKE_NONSENSE,   /* a frame that is not Engine.IO */
    FAKE_DISCONNECT, /* Socket.IO DISCONNECT for the namespace */
    FAKE_BINARY,     /* a binary frame */
} fake_end;

static int fake_read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = recv(fd, p, n, 0);
        if (k <= 0)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

/* Sends one unmasked frame: opcode (1 text, 2 binary, 0 continuation), fin. */
static int fake_send_frame(int fd, int opcode, int fin, const char *data, size_t len)
{
    unsigned char h[10];
    size_t hl = 2;
    h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    return kws_send_all(fd, h, hl) && (len == 0 || kws_send_all(fd, data, len));
}

static int fake_send_text(int fd, const char *text)
{
    return fake_send_frame(fd, 1, 1, text, strlen(text));
}

/* Reads one client frame (masked) into buf (NUL-terminated); returns its opcode or -1. */
static int fake_read_frame(int fd, char *buf, size_t cap, size_t *len)
{
    unsigned char h[2], ext[8], mask[4];
    if (!fake_read_all(fd, h, 2))
        return -1;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        if (!fake_read_all(fd, ext, 2))
            return -1;
        n = (uint64_t)ext[0] << 8 | ext[1];
    } else if (n == 127) {
        if (!fake_read_all(fd, ext, 8))
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | ext[i];
    }
    if (!(h[1] & 0x80) || n + 1 > cap || !fake_read_all(fd, mask, 4) ||
        (n > 0 && !fake_read_all(fd, buf, (size_t)n)))
        return -1;
    for (uint64_t i = 0; i < n; i++)
        buf[i] ^= (char)mask[i % 4];
    buf[n] = '\0';
    *len = (size_t)n;
    return h[0] & 0x0f;
}

/* The WebSocket handshake: reads the request, answers 101 with the right accept key. */
static int fake_handshake(int fd)
{
    kws_buf b = {0};
    kws_reply r;
    memset(&r, 0, sizeof r);
    int ok = 0;
    char key[128], accept_in[192];
    unsigned char sha[SHA_DIGEST_LENGTH];
    char accept[64], reply[256];
    for (;;) {
        int end = 0;
        for (size_t i = 0; i + 4 <= b.n && !end; i++)
            end = memcmp(b.p + i, "\r\n\r\n", 4) == 0;
        if (end)
            break;
        if (kws_buf_fill(fd, &b) <= 0)
            goto out;
    }
    r.head = strndup(b.p, b.n);
    if (r.head == NULL || !kws_header(&r, "sec-websocket-key", key, sizeof key) ||
        strstr(r.head, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1") != r.head)
        goto out;
    snprintf(accept_in, sizeof accept_in, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((const unsigned char *)accept_in, strlen(accept_in), sha);
    EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
    int k = snprintf(reply, sizeof reply,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    ok = kws_send_all(fd, reply, (size_t)k);
out:
    free(r.head);
    kws_buf_free(&b);
    return ok;
}

/* The child: serves one connection by the script, exits 0 when the client did its part. */
static void fake_serve(int lfd, fake_end end)
{
    int fd = accept(lfd, NULL, NULL);
    static char buf[200000];
    size_t len = 0;
    if (fd < 0 || !fake_handshake(fd) ||
        !fake_send_text(fd, "0{\"sid\":\"fakesid\",\"upgrades\":[],\"pingInterval\":300,"
                            "\"pingTimeout\":200,\"maxPayload\":1000000}") ||
        fake_read_frame(fd, buf, sizeof buf, &len) != 1 || strcmp(buf, "40") != 0)
        _exit(2);
    /* The CONNECT answer in two fragments. */
    if (!fake_send_frame(fd, 1, 0, "40{\"sid\":", 9) ||
        !fake_send_frame(fd, 0, 1, "\"sfake\"}", 8) || !fake_send_text(fd, "2"))
        _exit(3);
    int pong = fake_read_frame(fd, buf, sizeof buf, &len) == 1 && strcmp(buf, "3") == 0;
    if (!fake_send_text(fd, pong ? "42[\"pong-ok\",{}]" : "42[\"no-pong\",{}]"))
        _exit(4);
    /* 42["big","xxx..."] of 100 000 bytes in three fragments; another namespace's event,
     * which the client must ignore, before it. */
    memset(buf, 'x', 100000);
    memcpy(buf, "42[\"big\",\"", 10);
    memcpy(buf + 100000 - 2, "\"]", 2);
    if (!fake_send_text(fd, "42/other,[\"elsewhere\",{}]") ||
        !fake_send_frame(fd, 1, 0, buf, 30000) || !fake_send_frame(fd, 0, 0, buf + 30000, 30000) ||
        !fake_send_frame(fd, 0, 1, buf + 60000, 40000))
        _exit(5);
    switch (end) {
    case FAKE_SILENT:
        break;
    case FAKE_NONSENSE:
        fake_send_text(fd, "9nonsense");
        break;
    case FAKE_DISCONNECT:
        fake_send_text(fd, "41");
        break;
    case FAKE_BINARY:
        fake_send_frame(fd, 2, 1, "42[\"bin\"]", 9);
        break;
    }
    /* Wait for the client to close (it must, in every script). */
    int op;
    while ((op = fake_read_frame(fd, buf, sizeof buf, &len)) >= 0 && op != 8)
        ;
    _exit(pong ? 0 : 6);
}

/* Runs one script against the client: what kwc_sio_next says after the events. */
static void fake_script(fake_end end, const char *want_detail)
{
    uint16_t port = 0;
    int lfd = silent_listener(&port);
    if (!KWT_CHECK(lfd >= 0))
        return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        fake_serve(lfd, end);
    close(lfd);
    if (!KWT_CHECK(pid > 0))
        return;
    kws_track(pid);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", port);
    kwc_net *n = net_for(base);
    kw_error e = {0};
    kw_err rc = n ? kwc_sio_connect(n, "/", NULL, 5000, NULL, &e) : KW_ERR_INTERNAL;
    if (rc != KW_OK)
        printf("    connect: %s\n", e.detail);
    if (KWT_CHECK(rc == KW_OK)) {
        kwc_event ev;
        KWT_ERR(kwc_sio_next(n, 5000, &ev, &e), KW_OK);
        KWT_STREQ(ev.name, "pong-ok"); /* the ping was answered */
        kwc_event_clear(&ev);
        KWT_ERR(kwc_sio_next(n, 5000, &ev, &e), KW_OK);
        KWT_STREQ(ev.name, "big"); /* reassembled; /other's event skipped */
        const char *big = json_string_value(json_array_get(ev.args, 0));
        KWT_EQ(big ? strlen(big) : 0, 100000 - 12);
        kwc_event_clear(&ev);
        KWT_ERR(kwc_sio_next(n, 5000, &ev, &e), KW_ERR_IO);
        if (!KWT_CHECK(strstr(e.detail, want_detail) != NULL))
            printf("    detail: %s\n", e.detail);
        KWT_EQ(kwc_sio_connected(n), 0);
    }
    kwc_net_free(n);
    int status = -1;
    KWT_CHECK(kws_wait_exit(pid, 5000, &status));
    KWT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

static void fake_ping_timeout(void)
{
    fake_script(FAKE_SILENT, "ping timeout");
}

static void fake_nonsense(void)
{
    fake_script(FAKE_NONSENSE, "nonsense");
}

static void fake_binary_frame(void)
{
    fake_script(FAKE_BINARY, "binary");
}

static void fake_disconnect(void)
{
    fake_script(FAKE_DISCONNECT, "DISCONNECT");
}

/* A one-shot HTTP server: reads one request head, sends head and body_len bytes, closes. */
static pid_t fake_http(const char *head, size_t body_len, uint16_t *port)
{
    int lfd = silent_listener(port);
    if (lfd < 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = accept(lfd, NULL, NULL);
        kws_buf b = {0};
        for (int end = 0; fd >= 0 && !end;) {
            if (kws_buf_fill(fd, &b) <= 0)
                _exit(2);
            for (size_t i = 0; i + 4 <= b.n && !end; i++)
                end = memcmp(b.p + i, "\r\n\r\n", 4) == 0;
        }
        static char body[65536];
        memset(body, 'a', sizeof body);
        int ok = kws_send_all(fd, head, strlen(head));
        for (size_t sent = 0; ok && sent < body_len; sent += sizeof body)
            ok = kws_send_all(fd, body,
                              body_len - sent < sizeof body ? body_len - sent : sizeof body);
        _exit(ok ? 0 : 3);
    }
    close(lfd);
    if (pid > 0)
        kws_track(pid);
    return pid;
}

static void answer_bodies(void)
{
    static const struct {
        const char *head;
        size_t body_len;
        kw_err want;
    } cases[] = {
        /* No Content-Length: the body ends with the connection. */
        {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n", 70000, KW_OK},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0, KW_OK},
        /* Exactly 4 MiB is allowed; one byte more is not. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\nConnection: close\r\n\r\n", 4194304, KW_OK},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4194305\r\nConnection: close\r\n\r\n", 4194305,
         KW_ERR_PAYLOAD_TOO_LARGE},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 4194305, KW_ERR_PAYLOAD_TOO_LARGE},
        /* The connection ends before Content-Length bytes: lost. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n", 10, KW_ERR_IO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t port = 0;
        pid_t pid = fake_http(cases[i].head, cases[i].body_len, &port);
        if (!KWT_CHECK(pid > 0))
            return;
        char base[64];
        snprintf(base, sizeof base, "http://127.0.0.1:%u", port);
        kwc_net *n = net_for(base);
        kwc_http_response r;
        kw_error e = {0};
        kw_err rc =
            n ? kwc_http_request(n, "GET", "/x", NULL, 0, NULL, 0, 10000, &r, &e) : KW_ERR_INTERNAL;
        if (rc != cases[i].want)
            printf("    case %zu: %s\n", i, e.detail);
        KWT_ERR(rc, cases[i].want);
        if (rc == KW_OK) {
            KWT_EQ(r.body_len, cases[i].body_len);
            KWT_CHECK(r.body != NULL && r.body[r.body_len] == '\0');
        } else {
            KWT_CHECK(r.body == NULL && r.status == 0);
        }
        kwc_http_response_clear(&r);
        kwc_net_free(n);
        int status;
        if (!kws_wait_exit(pid, 5000, &status))
            kws_kill(pid);
    }
}

static void ca_file_must_be_readable(void)
{
    kwc_net *n = NULL;
    kw_error e = {0};
    setenv("KEYWAVE_CA_FILE", "/nonexistent/keywave-ca.pem", 1);
    KWT_ERR(kwc_net_new("https://keywave.example.org", &n, &e), KW_ERR_IO);
    KWT_CHECK(strstr(e.detail, "KEYWAVE_CA_FILE") != NULL);
    KWT_CHECK(n == NULL);
    /* Plain http never reads it. */
    KWT_ERR(kwc_net_new("http://127.0.0.1:1", &n, &e), KW_OK);
    kwc_net_free(n);
    unsetenv("KEYWAVE_CA_FILE");
}

int main(void)
{
    if (!kws_init("client-net"))
        return 1;
    KWT_RUN(server_starts);
    KWT_RUN(base_url_forms);
    KWT_RUN(get_healthz);
    KWT_RUN(post_with_body_and_error_answers);
    KWT_RUN(put_patch_delete);
    KWT_RUN(connection_refused_is_io);
    KWT_RUN(silent_server_times_out);
    KWT_RUN(bad_arguments);
    KWT_RUN(external_bad_secret_is_unauthorized);
    KWT_RUN(member_bad_signature_is_unauthorized);
    KWT_RUN(member_socket_calls_and_events);
    KWT_RUN(server_stop_is_io);
    KWT_RUN(fake_ping_timeout);
    KWT_RUN(fake_nonsense);
    KWT_RUN(fake_binary_frame);
    KWT_RUN(fake_disconnect);
    KWT_RUN(answer_bodies);
    KWT_RUN(ca_file_must_be_readable);
    return kws_finish();
}
