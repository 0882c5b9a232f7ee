/*
 * http_lws.c — the thin adapter between libwebsockets and keywaved; the only file that
 * includes libwebsockets.h.
 *
 * It owns the lws context and the listening vhost, turns lws callbacks into a reply
 * held in the connection's per-session block, and sends that reply from the WRITEABLE
 * callback only (headers in one callback, body in the next: one lws_write each, as lws
 * requires). For now the only route is GET /healthz; the routing table of the full HTTP
 * layer replaces answer() below and keeps the rest of this file.
 */
#include "server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "log.h"

/* Wake the loop this often, so a stop flag set by a signal handler is seen promptly. */
#define TICK_US (1 * LWS_USEC_PER_SEC)
/* A reply body built here: a small JSON object. */
#define BODY_MAX 256
/* Longest path quoted back in an error detail. */
#define DETAIL_PATH_MAX 64
/* Longest path kept for the access log. */
#define LOG_PATH_MAX 128

struct kw_http {
    struct lws_context *context; /* owned */
    struct lws_vhost *vhost;     /* owned by context */
    lws_sorted_usec_list_t tick; /* periodic wake-up, cancelled in kw_http_stop */
};

typedef enum reply_state {
    REPLY_NONE = 0, /* nothing queued: a WRITEABLE callback now is spurious */
    REPLY_HEADERS,  /* status and headers to send next */
    REPLY_BODY,     /* body to send next */
} reply_state;

/*
 * Per-connection state, allocated and zeroed by lws (protocol table below) and reset for
 * each request on a kept-alive connection. Fixed-size, no pointers to free.
 */
typedef struct http_session {
    int64_t started_us;      /* CLOCK_MONOTONIC when the request headers were complete */
    int method;              /* LWSHUMETH_*, or -1 when lws reports none */
    char path[LOG_PATH_MAX]; /* request path (no query string), cut for the log */
    bool awaiting_body;      /* reply only after the request body has been read */
    bool head;               /* HEAD: send headers only */
    reply_state state;
    unsigned status;     /* HTTP status of the reply */
    const char *allow;   /* value of an Allow header (405), or NULL; static */
    char body[BODY_MAX]; /* JSON reply body */
    size_t body_len;
} http_session;

static const char *method_name(int method)
{
    switch (method) {
    case LWSHUMETH_GET:
        return "GET";
    case LWSHUMETH_POST:
        return "POST";
    case LWSHUMETH_OPTIONS:
        return "OPTIONS";
    case LWSHUMETH_PUT:
        return "PUT";
    case LWSHUMETH_PATCH:
        return "PATCH";
    case LWSHUMETH_DELETE:
        return "DELETE";
    case LWSHUMETH_CONNECT:
        return "CONNECT";
    case LWSHUMETH_HEAD:
        return "HEAD";
    default:
        return "OTHER";
    }
}

static int64_t monotonic_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static kw_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/*
 * Fills the reply with `{"error": token, "detail": detail}`. detail must be valid UTF-8
 * (callers pass fixed text or input already reduced to printable ASCII).
 */
static void reply_error(http_session *s, unsigned status, const char *token, const char *detail)
{
    s->status = status;
    json_t *obj = json_pack("{s:s, s:s}", "error", token, "detail", detail);
    size_t n = obj ? json_dumpb(obj, s->body, sizeof s->body, JSON_COMPACT) : 0;
    json_decref(obj);
    if (n == 0 || n > sizeof s->body) {
        /* Cannot happen for the short texts above; still answer something well-formed. */
        n = (size_t)snprintf(s->body, sizeof s->body,
                             "{\"error\":\"internal\",\"detail\":\"Internal error.\"}");
        s->status = 500;
    }
    s->body_len = n;
}

static void reply_json(http_session *s, unsigned status, const char *json)
{
    s->status = status;
    s->body_len = (size_t)snprintf(s->body, sizeof s->body, "%s", json);
}

/*
 * Decides the reply to one request. Temporary: a single route, until the routing table
 * of the HTTP layer takes over (it will match the route before any authentication, so an
 * unknown path stays a 404 for everyone).
 */
static void answer(http_session *s)
{
    if (strcmp(s->path, "/healthz") == 0) {
        /* HEAD is GET without the body (RFC 9110 §9.3.2); monitors use either. */
        if (s->method == LWSHUMETH_GET || s->method == LWSHUMETH_HEAD) {
            reply_json(s, 200, "{\"status\":\"ok\"}");
        } else {
            reply_error(s, 405, "method_not_allowed", "/healthz only answers GET and HEAD.");
            s->allow = "GET, HEAD";
        }
        return;
    }
    /* Quote the path back without control or non-ASCII bytes, shortened. */
    char shown[DETAIL_PATH_MAX + 4];
    size_t n = 0;
    for (const char *p = s->path; *p != '\0' && n < DETAIL_PATH_MAX; p++) {
        char c = *p;
        if (c <= 0x20 || c >= 0x7f)
            c = '?';
        shown[n++] = c;
    }
    shown[n] = '\0';
    if (strlen(s->path) > DETAIL_PATH_MAX)
        snprintf(shown + n, sizeof shown - n, "...");
    char detail[KW_DETAIL_MAX];
    snprintf(detail, sizeof detail, "No route for %s.", shown);
    reply_error(s, 404, "not_found", detail);
}

static void queue_reply(struct lws *wsi, http_session *s)
{
    answer(s);
    s->state = REPLY_HEADERS;
    lws_callback_on_writable(wsi);
}

/* Starts a request: records what the access log needs and whether a body follows. */
static void begin_request(struct lws *wsi, http_session *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->started_us = monotonic_us();
    char *uri = NULL;
    int uri_len = 0;
    s->method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    s->head = s->method == LWSHUMETH_HEAD;
    snprintf(s->path, sizeof s->path, "%s", path ? path : "");

    /* A request body is read (and for now dropped) before answering, so the reply is
     * not sent while the client is still writing and the connection can be reused. */
    char cl[24];
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 && strcmp(cl, "0") != 0)
        s->awaiting_body = true;
}

static void log_access(const http_session *s)
{
    char path[KW_LOG_VALUE_MAX];
    int64_t us = monotonic_us() - s->started_us;
    kw_log(KW_LOG_INFO, "http", "method=%s path=%s status=%u ms=%.3f", method_name(s->method),
           kw_log_value(path, sizeof path, s->path), s->status, (double)us / 1000.0);
}

static int write_headers(struct lws *wsi, http_session *s)
{
    uint8_t buf[LWS_PRE + 512];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, s->status, "application/json", s->body_len, &p, end) ||
        lws_add_http_header_by_name(
            wsi, (const uint8_t *)"cache-control:", (const uint8_t *)"no-store", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const uint8_t *)"x-content-type-options:",
                                    (const uint8_t *)"nosniff", 7, &p, end))
        return -1;
    if (s->allow != NULL &&
        lws_add_http_header_by_name(wsi, (const uint8_t *)"allow:", (const uint8_t *)s->allow,
                                    (int)strlen(s->allow), &p, end))
        return -1;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* Ends the transaction: logs it, then keeps the connection for the next request or not. */
static int finish_reply(struct lws *wsi, http_session *s)
{
    s->state = REPLY_NONE;
    server_of(wsi)->http_requests++;
    log_access(s);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_writeable(struct lws *wsi, http_session *s)
{
    switch (s->state) {
    case REPLY_NONE:
        return 0; /* spurious wake-up: nothing queued */
    case REPLY_HEADERS:
        if (write_headers(wsi, s) != 0)
            return -1;
        if (s->head || s->body_len == 0)
            return finish_reply(wsi, s);
        s->state = REPLY_BODY;
        lws_callback_on_writable(wsi);
        return 0;
    case REPLY_BODY: {
        uint8_t buf[LWS_PRE + BODY_MAX];
        memcpy(buf + LWS_PRE, s->body, s->body_len);
        if (lws_write(wsi, buf + LWS_PRE, s->body_len, LWS_WRITE_HTTP_FINAL) != (int)s->body_len)
            return -1;
        return finish_reply(wsi, s);
    }
    }
    return -1;
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    http_session *s = user;
    /* Switch on int: lws has some hundred reasons and -Wswitch-enum would want each. */
    switch ((int)reason) {
    case LWS_CALLBACK_HTTP:
        begin_request(wsi, s, in);
        if (!s->awaiting_body)
            queue_reply(wsi, s);
        return 0;
    case LWS_CALLBACK_HTTP_BODY:
        return 0; /* no route takes a body yet: drop it */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (s->awaiting_body) {
            s->awaiting_body = false;
            queue_reply(wsi, s);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, s);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(http_session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws's own warnings and errors become keywave log lines; everything else is off. */
static void emit_lws_log(int level, const char *line)
{
    char msg[KW_LOG_VALUE_MAX];
    char trimmed[KW_LOG_VALUE_MAX];
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    if (n >= sizeof trimmed)
        n = sizeof trimmed - 1;
    memcpy(trimmed, line, n);
    trimmed[n] = '\0';
    kw_log(level & LLL_ERR ? KW_LOG_ERROR : KW_LOG_WARN, "lws", "msg=%s",
           kw_log_value(msg, sizeof msg, trimmed));
}

/* Re-arms itself: its only job is to make lws_service return so the loop checks flags. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct kw_http *http = (struct kw_http *)(void *)((char *)sul - offsetof(struct kw_http, tick));
    lws_sul_schedule(http->context, 0, &http->tick, on_tick, TICK_US);
}

kw_err kw_http_start(kw_server *srv, kw_error *err)
{
    if (srv->http != NULL)
        return kw_error_set(err, KW_ERR_STATE, "the HTTP layer is already started");
    const kw_config *cfg = &srv->config;
    kw_err rc;
    struct kw_http *http = calloc(1, sizeof *http);
    if (http == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");

    lws_set_log_level(LLL_ERR | LLL_WARN, emit_lws_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (cfg->tls_cert != NULL)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.user = srv;
    http->context = lws_create_context(&info);
    if (http->context == NULL) {
        rc = kw_error_set(err, KW_ERR_IO, "cannot create the event loop (lws context)");
        goto fail;
    }

    memset(&info, 0, sizeof info);
    info.vhost_name = "keywave";
    info.port = cfg->listen_port;
    info.iface = cfg->listen_host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (!cfg->listen_ipv6)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    else
        info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
    if (cfg->tls_cert != NULL) {
        /* lws enables TLS on a vhost only if the vhost's own options ask for it too. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    http->vhost = lws_create_vhost(http->context, &info);
    if (http->vhost == NULL) {
        rc = kw_error_set(err, KW_ERR_IO,
                          "cannot listen on %.64s%s (address in use, not local, or bad "
                          "TLS files?)",
                          cfg->listen, cfg->tls_cert ? " with TLS" : "");
        goto fail;
    }

    lws_sul_schedule(http->context, 0, &http->tick, on_tick, TICK_US);
    srv->http = http;
    return KW_OK;

fail:
    if (http->context != NULL)
        lws_context_destroy(http->context);
    free(http);
    return rc;
}

kw_err kw_http_service(kw_server *srv, kw_error *err)
{
    if (srv->http == NULL)
        return kw_error_set(err, KW_ERR_STATE, "the HTTP layer is not started");
    if (lws_service(srv->http->context, 0) < 0)
        return kw_error_set(err, KW_ERR_IO, "the event loop failed");
    return KW_OK;
}

void kw_http_stop(kw_server *srv)
{
    if (srv == NULL || srv->http == NULL)
        return;
    lws_sul_cancel(&srv->http->tick);
    lws_context_destroy(srv->http->context);
    free(srv->http);
    srv->http = NULL;
}
