/*
 * test_http.c — keywaved's HTTP layer from outside, over raw sockets: 404 JSON for
 * unknown paths and any method, 405 with Allow, HEAD, the 64 KiB body limit at its
 * boundary (Content-Length and chunked, and an oversized Content-Length answered before
 * the body is sent), malformed framing, keep-alive pipelining, many pipelined replies
 * that outrun the socket buffer, requests lws cannot parse, 200 concurrent connections,
 * the headers every response carries (CSP with the LiveKit origin), /metrics, the access
 * log, what lws does to paths, and a SIGTERM stop that still answers a request in flight.
 *
 * KEYWAVED names the binary (tests/run.sh sets it); without it, ./build/keywaved.
 */
#include <jansson.h>

#include "keywave/err.h"
#include "kwserver.h"

#define BODY_MAX    65536
#define CONCURRENCY 200

static const char csp_base[] =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'%s; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

static kws_server srv; /* shared by most tests */

/* Checks a body is exactly {"error": token, "detail": <non-empty string>} in JSON. */
static void check_error_body(const kws_reply *r, const char *token)
{
    char type[128] = "";
    kws_header(r, "content-type", type, sizeof type);
    KWT_STREQ(type, "application/json");
    json_error_t jerr;
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    if (!KWT_CHECK(j != NULL && json_is_object(j))) {
        printf("    body: %s\n", r->body ? r->body : "(none)");
        json_decref(j);
        return;
    }
    KWT_EQ(json_object_size(j), 2);
    KWT_STREQ(json_string_value(json_object_get(j, "error")), token);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    KWT_CHECK(detail != NULL && detail[0] != '\0');
    json_decref(j);
}

/* Sends raw bytes on a fresh connection and reads one reply. */
static bool raw_once(const void *req, size_t len, kws_reply *r)
{
    int fd = kws_connect(srv.port);
    if (fd < 0)
        return false;
    bool ok = kws_exchange(fd, req, len, false, r);
    close(fd);
    return ok;
}

static bool healthz_ok(void)
{
    kws_reply r;
    bool ok = kws_request(srv.port, "GET", "/healthz", NULL, NULL, 0, &r) && r.status == 200 &&
              strcmp(r.body, "{\"status\":\"ok\"}") == 0;
    kws_reply_free(&r);
    return ok;
}

/* A POST /healthz head with Content-Length n, keeping the connection open. */
static int post_head(char *out, size_t cap, size_t n)
{
    return snprintf(out, cap,
                    "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n", n);
}

/* ---- tests ---------------------------------------------------------------------- */

static void server_starts(void)
{
    KWT_CHECK(kws_start(&srv, "main", NULL));
}

static void unknown_paths_are_404_json_for_every_method(void)
{
    static const struct {
        const char *method, *target;
        bool body;
    } cases[] = {
        {"GET", "/nope", false},          {"POST", "/nope", true},
        {"POST", "/api/nope", true},      {"PUT", "/api/nope/x", true},
        {"DELETE", "/api/x/y", false},    {"PATCH", "/", true},
        {"GET", "/healthz/", false},      {"GET", "/HEALTHZ", false},
        {"GET", "/healthz/extra", false}, {"HEAD", "/nope", false},
        {"OPTIONS", "/nope", false},      {"GET", "/nope?secret=x", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kws_reply r;
        const char *body = cases[i].body ? "{\"a\":1}" : NULL;
        if (!KWT_CHECK(kws_request(srv.port, cases[i].method, cases[i].target, NULL, body,
                                   body ? strlen(body) : 0, &r)))
            continue;
        if (r.status != 404)
            printf("    %s %s\n", cases[i].method, cases[i].target);
        KWT_EQ(r.status, 404);
        if (strcmp(cases[i].method, "HEAD") == 0)
            KWT_EQ(r.body_len, 0);
        else
            check_error_body(&r, "not_found");
        kws_reply_free(&r);
    }
}

static void wrong_method_is_405_with_allow(void)
{
    static const char *const paths[] = {"/healthz", "/metrics"};
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t p = 0; p < 2; p++)
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            kws_reply r;
            bool with_body =
                strcmp(methods[m], "DELETE") != 0 && strcmp(methods[m], "OPTIONS") != 0;
            if (!KWT_CHECK(kws_request(srv.port, methods[m], paths[p], NULL,
                                       with_body ? "{}" : NULL, with_body ? 2 : 0, &r)))
                continue;
            KWT_EQ(r.status, 405);
            char allow[64] = "";
            KWT_CHECK(kws_header(&r, "allow", allow, sizeof allow));
            KWT_STREQ(allow, "GET, HEAD");
            check_error_body(&r, "method_not_allowed");
            kws_reply_free(&r);
        }
}

/* HEAD gives GET's status and headers without a body, and the connection stays usable. */
static void head_works_where_get_does(void)
{
    static const char *const paths[] = {"/healthz", "/metrics"};
    for (size_t i = 0; i < 2; i++) {
        int fd = kws_connect(srv.port);
        if (!KWT_CHECK(fd >= 0))
            return;
        char req[256];
        int n = snprintf(req, sizeof req,
                         "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                         paths[i], paths[i]);
        kws_buf b = {0};
        kws_reply head, get;
        memset(&head, 0, sizeof head);
        memset(&get, 0, sizeof get);
        if (KWT_CHECK(kws_send_all(fd, req, (size_t)n)) &&
            KWT_CHECK(kws_read_reply(fd, &b, true, &head)) &&
            KWT_CHECK(kws_read_reply(fd, &b, false, &get))) {
            KWT_EQ(head.status, 200);
            KWT_EQ(get.status, 200);
            KWT_CHECK(head.content_length > 0);
            if (i == 0) /* /metrics changes between the two */
                KWT_EQ(head.content_length, get.content_length);
            char t1[128] = "", t2[128] = "";
            kws_header(&head, "content-type", t1, sizeof t1);
            kws_header(&get, "content-type", t2, sizeof t2);
            KWT_STREQ(t1, t2);
            KWT_EQ(b.off, b.n); /* nothing after the GET body: HEAD sent no body */
        }
        kws_reply_free(&head);
        kws_reply_free(&get);
        kws_buf_free(&b);
        close(fd);
    }
}

/*
 * INV-11 at the boundary: a body of exactly 65536 bytes is read (POST /healthz then
 * answers 405) and the connection is reused; 65537 bytes is 413 and the connection ends.
 */
static void inv_11_body_of_65536_is_read_65537_is_413(void)
{
    char *body = malloc(BODY_MAX + 1);
    if (!KWT_CHECK(body != NULL))
        return;
    memset(body, 'x', BODY_MAX + 1);
    char head[256];

    int fd = kws_connect(srv.port);
    if (KWT_CHECK(fd >= 0)) {
        int n = post_head(head, sizeof head, BODY_MAX);
        kws_buf b = {0};
        kws_reply r;
        memset(&r, 0, sizeof r);
        if (KWT_CHECK(kws_send_all(fd, head, (size_t)n) && kws_send_all(fd, body, BODY_MAX) &&
                      kws_read_reply(fd, &b, false, &r))) {
            KWT_EQ(r.status, 405);
            check_error_body(&r, "method_not_allowed");
        }
        kws_reply_free(&r);
        /* Same connection, next request. */
        const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        if (KWT_CHECK(kws_send_all(fd, get, sizeof get - 1) && kws_read_reply(fd, &b, false, &r)))
            KWT_EQ(r.status, 200);
        kws_reply_free(&r);
        kws_buf_free(&b);
        close(fd);
    }

    fd = kws_connect(srv.port);
    if (KWT_CHECK(fd >= 0)) {
        int n = post_head(head, sizeof head, BODY_MAX + 1);
        kws_reply r;
        memset(&r, 0, sizeof r);
        kws_buf b = {0};
        if (KWT_CHECK(kws_send_all(fd, head, (size_t)n) && kws_send_all(fd, body, BODY_MAX + 1) &&
                      kws_read_reply(fd, &b, false, &r))) {
            KWT_EQ(r.status, 413);
            check_error_body(&r, "payload_too_large");
            char conn[32] = "";
            kws_header(&r, "connection", conn, sizeof conn);
            KWT_STREQ(conn, "close");
            KWT_CHECK(kws_peer_closed(fd, 2000));
        }
        kws_reply_free(&r);
        kws_buf_free(&b);
        close(fd);
    }
    free(body);
}

/* A Content-Length over the limit is answered at once, without waiting for the body. */
static void content_length_over_limit_is_413_before_the_body(void)
{
    static const char *const lengths[] = {"65537", "1000000000", "999999999999999999"};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        char head[256];
        int n =
            snprintf(head, sizeof head,
                     "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n", lengths[i]);
        int fd = kws_connect(srv.port);
        if (!KWT_CHECK(fd >= 0))
            return;
        int64_t t0 = kws_now_ms();
        kws_reply r;
        if (KWT_CHECK(kws_exchange(fd, head, (size_t)n, false, &r))) {
            KWT_EQ(r.status, 413);
            check_error_body(&r, "payload_too_large");
            KWT_CHECK(kws_now_ms() - t0 < 2000);
            KWT_CHECK(kws_peer_closed(fd, 2000));
        }
        kws_reply_free(&r);
        close(fd);
    }
    /* A huge announced length on an unknown path is 413 too: the size is checked first. */
    const char req[] = "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n";
    kws_reply r;
    if (KWT_CHECK(raw_once(req, sizeof req - 1, &r)))
        KWT_EQ(r.status, 413);
    kws_reply_free(&r);
}

/* Appends a chunked encoding of n bytes of 'y' in chunks of `size` to out; returns length. */
static size_t chunked(char *out, size_t n, size_t size)
{
    size_t used = 0;
    while (n > 0) {
        size_t k = n < size ? n : size;
        used += (size_t)snprintf(out + used, 32, "%zx;ext=1\r\n", k);
        memset(out + used, 'y', k);
        used += k;
        memcpy(out + used, "\r\n", 2);
        used += 2;
        n -= k;
    }
    used += (size_t)snprintf(out + used, 32, "0\r\nX-Trailer: t\r\n\r\n");
    return used;
}

static void chunked_body_limit_and_framing(void)
{
    static const char head[] =
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    char *req = malloc(2 * BODY_MAX + 4096);
    if (!KWT_CHECK(req != NULL))
        return;
    static const struct {
        size_t total, chunk;
        int status;
        const char *error;
    } cases[] = {
        {BODY_MAX, 1000, 405, "method_not_allowed"},
        {BODY_MAX, BODY_MAX, 405, "method_not_allowed"},
        {BODY_MAX + 1, 1000, 413, "payload_too_large"},
        {BODY_MAX + 1, BODY_MAX + 1, 413, "payload_too_large"},
        {2 * BODY_MAX, 4096, 413, "payload_too_large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = sizeof head - 1;
        memcpy(req, head, n);
        n += chunked(req + n, cases[i].total, cases[i].chunk);
        kws_reply r;
        if (KWT_CHECK(raw_once(req, n, &r))) {
            if (r.status != cases[i].status)
                printf("    case %zu\n", i);
            KWT_EQ(r.status, cases[i].status);
            check_error_body(&r, cases[i].error);
        }
        kws_reply_free(&r);
    }
    free(req);

    /* Malformed chunked framing, and the smuggling-prone header combinations. */
    static const char *const bad[] = {
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
        "\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "DELETE /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kws_reply r;
        if (KWT_CHECK(raw_once(bad[i], strlen(bad[i]), &r))) {
            if (r.status != 400)
                printf("    bad case %zu: %d\n", i, r.status);
            KWT_EQ(r.status, 400);
            check_error_body(&r, "invalid_message");
        }
        kws_reply_free(&r);
    }
    KWT_CHECK(healthz_ok());
}

/* Requests in one write come back as replies, in order, on one connection. */
static void keep_alive_pipelining(void)
{
    int fd = kws_connect(srv.port);
    if (!KWT_CHECK(fd >= 0))
        return;
    const char reqs[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                        "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    static const int want[] = {200, 405, 404, 200, 200};
    kws_buf b = {0};
    if (KWT_CHECK(kws_send_all(fd, reqs, sizeof reqs - 1)))
        for (size_t i = 0; i < 5; i++) {
            kws_reply r;
            if (!KWT_CHECK(kws_read_reply(fd, &b, i == 3, &r)))
                break;
            KWT_EQ(r.status, want[i]);
            kws_reply_free(&r);
        }
    kws_buf_free(&b);
    close(fd);
}

/*
 * A request pipelined behind one with a body: lws 4.1 cannot parse it in that state
 * (http_lws.c), so the body's request is answered and the connection closes, as
 * HTTP/1.1 allows; the client resends the rest. Whichever request came first.
 */
static void pipelining_after_a_body_answers_it_then_closes(void)
{
    static const char *const cases[] = {
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        int fd = kws_connect(srv.port);
        if (!KWT_CHECK(fd >= 0))
            return;
        kws_buf b = {0};
        kws_reply r;
        memset(&r, 0, sizeof r);
        KWT_CHECK(kws_send_all(fd, cases[i], strlen(cases[i])));
        if (i == 1 && KWT_CHECK(kws_read_reply(fd, &b, false, &r)))
            KWT_EQ(r.status, 200);
        kws_reply_free(&r);
        if (KWT_CHECK(kws_read_reply(fd, &b, false, &r))) {
            KWT_EQ(r.status, 405);
            char conn[32] = "";
            kws_header(&r, "connection", conn, sizeof conn);
            KWT_STREQ(conn, "close");
        }
        kws_reply_free(&r);
        KWT_CHECK(kws_peer_closed(fd, 2000));
        kws_buf_free(&b);
        close(fd);
    }
    KWT_CHECK(healthz_ok());
}

/*
 * Many pipelined requests whose replies outrun the socket buffers while the client does
 * not read: the server must queue and write them as the client drains, in order.
 */
static void pipelined_replies_outrun_the_socket_buffer(void)
{
    enum { N = 400 };
    const char one[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    char *reqs = malloc(N * (sizeof one - 1));
    if (!KWT_CHECK(reqs != NULL))
        return;
    for (size_t i = 0; i < N; i++)
        memcpy(reqs + i * (sizeof one - 1), one, sizeof one - 1);
    int fd = kws_connect(srv.port);
    if (!KWT_CHECK(fd >= 0)) {
        free(reqs);
        return;
    }
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    bool sent = kws_send_all(fd, reqs, N * (sizeof one - 1));
    KWT_CHECK(sent);
    kws_sleep_ms(300); /* let the server fill the pipe and find it full */
    kws_buf b = {0};
    size_t total = 0;
    int ok = 0;
    for (size_t i = 0; sent && i < N; i++) {
        kws_reply r;
        if (!kws_read_reply(fd, &b, false, &r))
            break;
        if (r.status == 200 && strstr(r.body, "keywave_uptime_seconds ") != NULL &&
            r.body_len == (size_t)r.content_length)
            ok++;
        total += r.body_len;
        kws_reply_free(&r);
    }
    KWT_EQ(ok, N);
    KWT_CHECK(total > 256 * 1024); /* far more than any socket buffer here */
    kws_buf_free(&b);
    close(fd);
    free(reqs);
}

/* Requests lws cannot parse are refused (403 from lws, or a closed connection). */
static void malformed_requests_do_not_hurt_the_server(void)
{
    char long_uri[6000];
    snprintf(long_uri, sizeof long_uri, "GET /%05000d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    const struct {
        const char *data;
        size_t len; /* 0: strlen */
    } cases[] = {
        {"garbage\r\n\r\n", 0},
        {"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0},
        {"GET /x%zz HTTP/1.1\r\nHost: x\r\n\r\n", 0},
        {"GET http://h/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00\x00", 15},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", 0},
        {long_uri, 0},
        {"\r\n\r\n\r\n", 0},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \x01\x02\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = kws_connect(srv.port);
        if (!KWT_CHECK(fd >= 0))
            return;
        kws_reply r;
        memset(&r, 0, sizeof r);
        kws_buf b = {0};
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].data);
        bool sent = kws_send_all(fd, cases[i].data, len);
        bool replied = sent && kws_read_reply(fd, &b, false, &r);
        /* Either a 4xx reply or the connection closed; never a success. */
        if (replied) {
            if (!(r.status >= 400 && r.status < 500))
                printf("    case %zu: status %d\n", i, r.status);
            KWT_CHECK(r.status >= 400 && r.status < 500);
        }
        kws_reply_free(&r);
        kws_buf_free(&b);
        close(fd);
        KWT_CHECK(healthz_ok());
    }
}

/* A client that connects and goes away, or sends half a request, costs nothing lasting. */
static void abandoned_connections(void)
{
    for (int i = 0; i < 20; i++) {
        int fd = kws_connect(srv.port);
        if (fd < 0)
            continue;
        if (i % 3 == 1)
            kws_send_all(fd, "GET /heal", 9);
        if (i % 3 == 2)
            kws_send_all(fd, "POST /healthz HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc", 49);
        close(fd);
    }
    KWT_CHECK(healthz_ok());
}

static void concurrent_connections(void)
{
    int fds[CONCURRENCY];
    int opened = 0;
    for (int i = 0; i < CONCURRENCY; i++) {
        fds[i] = kws_connect(srv.port);
        if (fds[i] >= 0)
            opened++;
    }
    KWT_EQ(opened, CONCURRENCY);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int sent = 0, ok = 0;
    for (int i = 0; i < CONCURRENCY; i++)
        if (fds[i] >= 0 && kws_send_all(fds[i], req, sizeof req - 1))
            sent++;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < CONCURRENCY; i++) {
            if (fds[i] < 0)
                continue;
            kws_reply r;
            kws_buf b = {0};
            if (kws_read_reply(fds[i], &b, false, &r) && r.status == 200 &&
                strcmp(r.body, "{\"status\":\"ok\"}") == 0)
                ok++;
            kws_reply_free(&r);
            kws_buf_free(&b);
            /* Second round on the same kept-alive connections. */
            if (round == 0 && !kws_send_all(fds[i], req, sizeof req - 1))
                printf("    resend %d failed\n", i);
        }
    KWT_EQ(sent, CONCURRENCY);
    KWT_EQ(ok, 2 * CONCURRENCY);
    for (int i = 0; i < CONCURRENCY; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void every_response_carries_the_security_headers(void)
{
    char csp[512];
    snprintf(csp, sizeof csp, csp_base, "");
    static const char *const targets[] = {"/healthz", "/nope", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        kws_reply r;
        if (!KWT_CHECK(kws_request(srv.port, "GET", targets[i], NULL, NULL, 0, &r)))
            continue;
        char v[512] = "";
        KWT_CHECK(kws_header(&r, "cache-control", v, sizeof v) && strcmp(v, "no-store") == 0);
        KWT_CHECK(kws_header(&r, "x-content-type-options", v, sizeof v) &&
                  strcmp(v, "nosniff") == 0);
        KWT_CHECK(kws_header(&r, "content-security-policy", v, sizeof v));
        KWT_STREQ(v, csp);
        KWT_CHECK(kws_header(&r, "referrer-policy", v, sizeof v) && strcmp(v, "no-referrer") == 0);
        KWT_CHECK(kws_header(&r, "content-length", v, sizeof v));
        kws_reply_free(&r);
    }
    /* lws's own refusal page carries them too. */
    kws_reply r;
    if (KWT_CHECK(raw_once("FOO / HTTP/1.1\r\n\r\n", 18, &r))) {
        char v[512] = "";
        KWT_CHECK(kws_header(&r, "content-security-policy", v, sizeof v) && strcmp(v, csp) == 0);
    }
    kws_reply_free(&r);
}

/* The leading decimal digits of s (the integer part of a sample), or -1. */
static long long leading_number(const char *s)
{
    long long v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9' && n < 18; n++)
        v = v * 10 + (s[n] - '0');
    return n > 0 ? v : -1;
}

/* Reads one sample of /metrics (its integer part); -1 if absent. */
static long long metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            return leading_number(line + n + 1);
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

static void metrics_is_prometheus_text_and_counts(void)
{
    kws_reply a, b;
    if (!KWT_CHECK(kws_request(srv.port, "GET", "/metrics", NULL, NULL, 0, &a)))
        return;
    KWT_EQ(a.status, 200);
    char type[128] = "";
    kws_header(&a, "content-type", type, sizeof type);
    KWT_STREQ(type, "text/plain; version=0.0.4; charset=utf-8");
    /* Every line is a comment or `name{labels} value`, and ends with a newline. */
    KWT_CHECK(a.body_len > 0 && a.body[a.body_len - 1] == '\n');
    for (const char *line = a.body; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        if (!KWT_CHECK(nl != NULL))
            break;
        if (line[0] != '#') {
            const char *sp = memchr(line, ' ', (size_t)(nl - line));
            KWT_CHECK(sp != NULL && sp > line && strncmp(line, "keywave_", 8) == 0);
        } else {
            KWT_CHECK(strncmp(line, "# HELP keywave_", 15) == 0 ||
                      strncmp(line, "# TYPE keywave_", 15) == 0);
        }
        line = nl + 1;
    }
    long long ok1 = metric(a.body, "keywave_http_requests_total{class=\"2xx\"}");
    long long nf1 = metric(a.body, "keywave_http_requests_total{class=\"4xx\"}");
    KWT_CHECK(ok1 > 0);
    KWT_EQ(metric(a.body, "keywave_http_requests_in_flight"), 1); /* this request */
    KWT_CHECK(metric(a.body, "keywave_uptime_seconds") >= 0);
    KWT_CHECK(metric(a.body, "keywave_start_time_seconds") > 1600000000);

    for (int i = 0; i < 3; i++)
        KWT_CHECK(healthz_ok());
    kws_reply r;
    if (KWT_CHECK(kws_request(srv.port, "GET", "/nope", NULL, NULL, 0, &r)))
        KWT_EQ(r.status, 404);
    kws_reply_free(&r);

    if (KWT_CHECK(kws_request(srv.port, "GET", "/metrics", NULL, NULL, 0, &b))) {
        /* The first /metrics and three /healthz are 2xx; one 404. */
        KWT_EQ(metric(b.body, "keywave_http_requests_total{class=\"2xx\"}"), ok1 + 4);
        KWT_EQ(metric(b.body, "keywave_http_requests_total{class=\"4xx\"}"), nf1 + 1);
    }
    kws_reply_free(&a);
    kws_reply_free(&b);
}

/* What lws does to paths before keywave sees them (pinned: see http_lws.c). */
static void lws_decodes_and_normalises_paths(void)
{
    static const struct {
        const char *target;
        int status;
    } cases[] = {
        {"/%68ealthz", 200},                           /* %68 is 'h' */
        {"//healthz", 200},                            /* "//" collapses */
        {"/a/../healthz", 200},                        /* dot segments are resolved */
        {"/./healthz", 200},     {"/healthz?", 200},   /* an empty query */
        {"/healthz?a=1&b", 200}, {"/healthz%2F", 404}, /* %2F decodes to '/': "/healthz/" */
        {"/healthz%3Fa=1", 404},                       /* an escaped '?' stays in the path */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kws_reply r;
        if (!KWT_CHECK(kws_request(srv.port, "GET", cases[i].target, NULL, NULL, 0, &r)))
            continue;
        if (r.status != cases[i].status)
            printf("    %s: %d\n", cases[i].target, r.status);
        KWT_EQ(r.status, cases[i].status);
        kws_reply_free(&r);
    }
}

static void access_log_has_method_path_status_ms_bytes_and_no_query(void)
{
    kws_reply r;
    if (KWT_CHECK(kws_request(srv.port, "GET", "/healthz?token=s3cr3t-value", NULL, NULL, 0, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    if (KWT_CHECK(kws_request(srv.port, "HEAD", "/metrics?k=s3cr3t-value", NULL, NULL, 0, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    KWT_CHECK(
        kws_wait_for_text(srv.log, "event=http method=GET path=/healthz status=200 ms=", 1000));
    KWT_CHECK(kws_wait_for_text(srv.log, " bytes=15\n", 1000));
    KWT_CHECK(
        kws_wait_for_text(srv.log, "event=http method=HEAD path=/metrics status=200 ms=", 1000));
    KWT_CHECK(kws_wait_for_text(srv.log, "method=POST path=/healthz status=413 ms=", 1000));
    char *log = kws_read_file(srv.log);
    KWT_CHECK(log != NULL && strstr(log, "s3cr3t") == NULL);
    free(log);
}

static void main_server_stops_on_sigterm(void)
{
    KWT_EQ(kws_stop(&srv, SIGTERM), 0);
    KWT_CHECK(kws_wait_for_text(srv.log, "event=stop signal=SIGTERM", 100));
}

static void csp_names_the_livekit_origin(void)
{
    kws_server s;
    const char *env[] = {"LIVEKIT_URL=wss://LK.Example.com:7880/rtc", NULL};
    if (!KWT_CHECK(kws_start(&s, "livekit", env)))
        return;
    kws_reply r;
    if (KWT_CHECK(kws_request(s.port, "GET", "/healthz", NULL, NULL, 0, &r))) {
        char want[512], v[512] = "";
        snprintf(want, sizeof want, csp_base,
                 " wss://lk.example.com:7880 https://lk.example.com:7880");
        KWT_CHECK(kws_header(&r, "content-security-policy", v, sizeof v));
        KWT_STREQ(v, want);
    }
    kws_reply_free(&r);
    KWT_EQ(kws_stop(&s, SIGTERM), 0);
}

/*
 * SIGTERM while a slow client is halfway through its body: the server stops taking
 * connections, waits, answers the request once the body is complete, then exits 0.
 */
static void sigterm_finishes_a_request_in_flight(void)
{
    kws_server s;
    if (!KWT_CHECK(kws_start(&s, "drain", NULL)))
        return;
    int slow = kws_connect(s.port);
    int idle = kws_connect(s.port);
    kws_reply r;
    memset(&r, 0, sizeof r);
    /* An idle kept-alive connection must not hold the stop up. */
    const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    if (KWT_CHECK(idle >= 0) && KWT_CHECK(kws_exchange(idle, get, sizeof get - 1, false, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    const char part1[] = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello";
    if (!KWT_CHECK(slow >= 0) || !KWT_CHECK(kws_send_all(slow, part1, sizeof part1 - 1))) {
        kws_stop(&s, SIGKILL);
        return;
    }
    kws_sleep_ms(200); /* the request is in flight */
    KWT_CHECK(kill(s.pid, SIGTERM) == 0);
    kws_sleep_ms(300);
    int status = 0;
    KWT_CHECK(waitpid(s.pid, &status, WNOHANG) == 0); /* still running: waiting for us */

    /* A new connection gets no answer. */
    int late = kws_connect(s.port);
    if (late >= 0) {
        bool sent = kws_send_all(late, get, sizeof get - 1);
        KWT_CHECK(!sent || kws_peer_closed(late, 2000));
        close(late);
    }

    kws_buf b = {0};
    if (KWT_CHECK(kws_send_all(slow, "world", 5)) &&
        KWT_CHECK(kws_read_reply(slow, &b, false, &r))) {
        KWT_EQ(r.status, 405);
        check_error_body(&r, "method_not_allowed");
    }
    kws_reply_free(&r);
    kws_buf_free(&b);
    if (KWT_CHECK(kws_wait_exit(s.pid, 3000, &status))) {
        KWT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        s.pid = 0;
    }
    KWT_CHECK(kws_wait_for_text(s.log, "event=stop signal=SIGTERM", 100));
    KWT_CHECK(kws_wait_for_text(s.log, "method=POST path=/healthz status=405", 100));
    char *log = kws_read_file(s.log);
    KWT_CHECK(log != NULL && strstr(log, "drain_timeout") == NULL);
    free(log);
    close(slow);
    close(idle);
    kws_stop(&s, SIGKILL);
}

/*
 * A client that trickles its body too slowly to finish does not hold the stop up for
 * more than the 5 s the drain allows (it keeps lws's own idle timeout from firing).
 */
static void sigterm_gives_up_on_a_stalled_request(void)
{
    kws_server s;
    if (!KWT_CHECK(kws_start(&s, "stalled", NULL)))
        return;
    int fd = kws_connect(s.port);
    const char part[] = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhel";
    if (!KWT_CHECK(fd >= 0) || !KWT_CHECK(kws_send_all(fd, part, sizeof part - 1))) {
        kws_stop(&s, SIGKILL);
        return;
    }
    kws_sleep_ms(200);
    int64_t t0 = kws_now_ms();
    KWT_CHECK(kill(s.pid, SIGTERM) == 0);
    int status = 0;
    bool ended = false;
    while (!ended && kws_now_ms() - t0 < 9000) {
        kws_send_all(fd, "x", 1);
        ended = kws_wait_exit(s.pid, 300, &status);
    }
    int64_t took = kws_now_ms() - t0;
    if (KWT_CHECK(ended)) {
        s.pid = 0;
        KWT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!KWT_CHECK(took >= 4500 && took < 7000))
            printf("    took %lld ms\n", (long long)took);
        KWT_CHECK(kws_wait_for_text(s.log, "event=drain_timeout in_flight=1", 100));
        KWT_CHECK(kws_wait_for_text(s.log, "event=stop signal=SIGTERM", 100));
    }
    close(fd);
    kws_stop(&s, SIGKILL);
}

int main(void)
{
    if (!kws_init("test-http")) {
        kwt_cases_failed++;
        return kws_finish();
    }
    KWT_RUN(server_starts);
    if (srv.pid > 0) {
        KWT_RUN(unknown_paths_are_404_json_for_every_method);
        KWT_RUN(wrong_method_is_405_with_allow);
        KWT_RUN(head_works_where_get_does);
        KWT_RUN(inv_11_body_of_65536_is_read_65537_is_413);
        KWT_RUN(content_length_over_limit_is_413_before_the_body);
        KWT_RUN(chunked_body_limit_and_framing);
        KWT_RUN(keep_alive_pipelining);
        KWT_RUN(pipelining_after_a_body_answers_it_then_closes);
        KWT_RUN(pipelined_replies_outrun_the_socket_buffer);
        KWT_RUN(malformed_requests_do_not_hurt_the_server);
        KWT_RUN(abandoned_connections);
        KWT_RUN(concurrent_connections);
        KWT_RUN(every_response_carries_the_security_headers);
        KWT_RUN(metrics_is_prometheus_text_and_counts);
        KWT_RUN(lws_decodes_and_normalises_paths);
        KWT_RUN(access_log_has_method_path_status_ms_bytes_and_no_query);
        KWT_RUN(main_server_stops_on_sigterm);
    }
    KWT_RUN(csp_names_the_livekit_origin);
    KWT_RUN(sigterm_finishes_a_request_in_flight);
    KWT_RUN(sigterm_gives_up_on_a_stalled_request);
    return kws_finish();
}
