/*
 * net_lws.c — client/net.h over libwebsockets 4.1 in client mode: one lws_context per
 * kwc_net (no listening vhost), one lws client connection per HTTP request, and at most
 * one WebSocket carrying one Socket.IO namespace. The only client file that sees lws.
 *
 * The lws callback only moves bytes: it collects HTTP bodies, reassembles WebSocket
 * messages, decodes them with libkeywave's Engine.IO/Socket.IO codec, answers pings and
 * queues events and acks in the kwc_net. The public calls run lws_service until what they
 * wait for is there or their deadline (monotonic clock) passes; a sorted-usec-list timer
 * at the nearer of that deadline and the ping watchdog bounds each lws_service (lws 4.1
 * ignores lws_service's own timeout argument).
 *
 * Anything the callback can point at is detached (lws opaque user data set to NULL)
 * before it goes away, so a connection abandoned at a timeout never calls back into freed
 * or out-of-scope memory.
 */
#include "net.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>

#include "keywave/eio.h"
#include "keywave/sio.h"

#define KWC_HTTP_BODY_MAX ((size_t)4 * 1024 * 1024) /* bytes of an answer body (net.h) */
#define KWC_HTTP_CHUNK    4096                 /* bytes of request body per lws_write */
#define KWC_HOST_MAX      255                  /* bytes of a host name or address */
#define KWC_EMIT_FLUSH_MS 5000                 /* how long emit waits for its frame to go */
#define KWC_CLOSE_WAIT_MS 1000                 /* how long close waits for the socket (net.h) */
#define KWC_LWS_TIMEOUT_S 86400                /* lws' own timeouts: ours come first */
#define KWC_WS_PATH       "/socket.io/?EIO=4&transport=websocket"

/* What an lws connection's opaque user data points at: an HTTP transfer or the socket. */
typedef enum conn_kind { CONN_HTTP = 1, CONN_WS = 2 } conn_kind;

typedef struct conn_tag {
    conn_kind kind;
    kwc_net *net;
} conn_tag;

/* One HTTP request in flight; lives on kwc_http_request's stack. */
typedef struct http_xfer {
    conn_tag tag;              /* first: the callback's opaque user data */
    struct lws *wsi;           /* NULL once detached */
    const kwc_header *headers; /* borrowed from the caller */
    size_t n_headers;
    const unsigned char *body; /* request body, borrowed */
    size_t body_len, body_sent;
    int done; /* 1: answer complete; -1: failed (code, detail) */
    kw_err code;
    char detail[KW_DETAIL_MAX];
    int status;      /* HTTP status once the headers arrived, else 0 */
    int has_length;  /* the answer has a Content-Length */
    char *buf;       /* answer body so far (NUL-terminated when complete) */
    size_t len, cap; /* bytes in buf, bytes allocated */
} http_xfer;

/* One outbound WebSocket text frame, LWS_PRE bytes of headroom before the data. */
typedef struct out_frame {
    struct out_frame *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len + 1 */
} out_frame;

typedef struct ev_node {
    struct ev_node *next;
    kwc_event ev;
} ev_node;

typedef enum sio_state {
    SIO_NONE = 0,   /* never connected, or closed by kwc_sio_close */
    SIO_OPENING,    /* WebSocket connecting, waiting for the Engine.IO open packet */
    SIO_CONNECTING, /* CONNECT sent, waiting for the answer */
    SIO_CONNECTED,  /* CONNECT accepted */
    SIO_LOST,       /* the connection ended: lost_code / lost_detail say why */
} sio_state;

struct kwc_net {
    struct lws_context *ctx;
    lws_sorted_usec_list_t wake; /* bounds one lws_service to the current deadline */
    char base_url[KWC_HOST_MAX + 32];
    char host[KWC_HOST_MAX + 1];        /* address to connect to (no IPv6 brackets) */
    char host_header[KWC_HOST_MAX + 9]; /* Host: as in the URL, with its port if given */
    int port;
    int tls;

    /* Socket.IO */
    conn_tag ws_tag;
    struct lws *ws; /* NULL when there is no WebSocket */
    sio_state state;
    char nsp[KW_SIO_NSP_MAX + 1];
    out_frame *connect_frame; /* CONNECT, sent when the open packet arrives */
    uint32_t max_payload;     /* the open packet's, KW_EIO_MAX_PAYLOAD before it */
    int64_t watchdog_ms;      /* monotonic ms by which the next ping is due; 0: none */
    uint32_t ping_window_ms;  /* pingInterval + pingTimeout */
    char *rx;                 /* the message being reassembled */
    size_t rx_len, rx_cap;
    int rx_binary;
    out_frame *out_head, *out_tail; /* frames waiting for WRITEABLE */
    int closing;                    /* close the socket once out_head is sent */
    ev_node *ev_head, *ev_tail;     /* events for kwc_sio_next */
    uint32_t next_ack_id;
    int awaiting_ack; /* an ack with await_id is wanted */
    uint32_t await_id;
    json_t *ack;           /* the awaited ack's first argument, once it came */
    kw_err connect_code;   /* KW_OK until CONNECT is answered */
    json_t *connect_error; /* CONNECT_ERROR's data */
    char connect_detail[KW_DETAIL_MAX];
    kw_err lost_code; /* why the connection ended (SIO_LOST) */
    char lost_detail[KW_DETAIL_MAX];
};

/* ---- small helpers ------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Formats a detail into a KW_DETAIL_MAX buffer (truncating). */
static void set_detail_v(char *out, const char *fmt, va_list ap)
{
    vsnprintf(out, KW_DETAIL_MAX, fmt, ap);
}

/* A frame with room for len bytes (and a NUL) after LWS_PRE; NULL when out of memory. */
static out_frame *frame_new(size_t len)
{
    out_frame *f = malloc(sizeof *f + LWS_PRE + len + 1);
    if (f != NULL) {
        f->next = NULL;
        f->len = len;
    }
    return f;
}

/* Wipes and frees a list of frames. */
static void frames_free(out_frame *f)
{
    while (f != NULL) {
        out_frame *next = f->next;
        OPENSSL_cleanse(f->buf, LWS_PRE + f->len); /* CONNECT carries the auth */
        free(f);
        f = next;
    }
}

/* Drops every queued event. */
static void events_free(kwc_net *n)
{
    while (n->ev_head != NULL) {
        ev_node *next = n->ev_head->next;
        kwc_event_clear(&n->ev_head->ev);
        free(n->ev_head);
        n->ev_head = next;
    }
    n->ev_tail = NULL;
}

/* Appends a frame to the outbound queue and asks lws for a WRITEABLE. */
static void queue_frame(kwc_net *n, out_frame *f)
{
    if (n->out_tail != NULL)
        n->out_tail->next = f;
    else
        n->out_head = f;
    n->out_tail = f;
    if (n->ws != NULL)
        lws_callback_on_writable(n->ws);
}

/* Queues an Engine.IO frame of a fixed type (pong, ...). Returns 0 when out of memory. */
static int queue_eio(kwc_net *n, kw_eio_type type, const char *data, size_t data_len)
{
    size_t len = 0;
    if (kw_eio_encode(type, data, data_len, NULL, 0, &len, NULL) != KW_ERR_BUFFER_TOO_SMALL)
        return 0;
    out_frame *f = frame_new(len);
    if (f == NULL)
        return 0;
    if (kw_eio_encode(type, data, data_len, (char *)f->buf + LWS_PRE, len + 1, &f->len, NULL) !=
        KW_OK) {
        free(f);
        return 0;
    }
    queue_frame(n, f);
    return 1;
}

/* Marks the connection ended (the first reason wins) and stops the watchdog. */
static void sio_lost(kwc_net *n, kw_err code, const char *fmt, ...) KW_PRINTF(3, 4);
static void sio_lost(kwc_net *n, kw_err code, const char *fmt, ...)
{
    if (n->state != SIO_LOST && n->state != SIO_NONE) {
        n->state = SIO_LOST;
        n->lost_code = code;
        va_list ap;
        va_start(ap, fmt);
        set_detail_v(n->lost_detail, fmt, ap);
        va_end(ap);
    }
    n->watchdog_ms = 0;
    n->awaiting_ack = 0;
}

/* Forgets the WebSocket without a callback: the lws connection is closed synchronously. */
static void ws_kill(kwc_net *n)
{
    struct lws *wsi = n->ws;
    n->ws = NULL;
    if (wsi != NULL) {
        lws_set_opaque_user_data(wsi, NULL);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
}

/* Drops everything of the Socket.IO connection but the lost reason and the events. */
static void sio_reset_io(kwc_net *n)
{
    ws_kill(n);
    frames_free(n->out_head);
    n->out_head = n->out_tail = NULL;
    frames_free(n->connect_frame);
    n->connect_frame = NULL;
    free(n->rx);
    n->rx = NULL;
    n->rx_len = n->rx_cap = 0;
    json_decref(n->ack);
    n->ack = NULL;
    json_decref(n->connect_error);
    n->connect_error = NULL;
    n->awaiting_ack = 0;
    n->closing = 0;
    n->watchdog_ms = 0;
}

/* ---- the event loop ------------------------------------------------------------------- */

/*
 * Ends lws_service's poll wait. lws runs ripe timers *before* it polls and then waits
 * for the next timer, so a wake timer already due on entry (a deadline of now, or a late
 * entry) would let the poll sleep until the next packet; re-arming 1 ms ahead keeps the
 * wait bounded. run_until re-arms it for every pass and cancels it when done.
 */
static void on_wake(lws_sorted_usec_list_t *sul)
{
    kwc_net *n = (kwc_net *)(void *)((char *)sul - offsetof(kwc_net, wake));
    lws_sul_schedule(n->ctx, 0, sul, on_wake, LWS_US_PER_MS);
}

/* Ends a connection whose pings stopped (checked outside callbacks, so it may kill). */
static void watchdog(kwc_net *n, int64_t now)
{
    if (n->watchdog_ms != 0 && now > n->watchdog_ms &&
        (n->state == SIO_CONNECTING || n->state == SIO_CONNECTED)) {
        sio_lost(n, KW_ERR_IO, "ping timeout: no ping from the server in %u ms", n->ping_window_ms);
        ws_kill(n);
    }
}

typedef int (*done_fn)(kwc_net *n, const void *arg);

/*
 * Services the loop until done(n, arg) or the monotonic deadline passes; at least one
 * lws_service pass runs, so a deadline of now services what is already there.
 * Returns 1 when done, 0 at the deadline, -1 when lws failed.
 */
static int run_until(kwc_net *n, int64_t deadline, done_fn done, const void *arg)
{
    int serviced = 0;
    for (;;) {
        int64_t now = mono_ms();
        watchdog(n, now);
        if (done(n, arg) || (serviced && now >= deadline)) {
            lws_sul_cancel(&n->wake);
            return done(n, arg) ? 1 : 0;
        }
        int64_t wake = deadline;
        if (n->watchdog_ms != 0 && n->watchdog_ms + 1 < wake)
            wake = n->watchdog_ms + 1;
        int64_t wait_ms = wake > now ? wake - now : 0;
        lws_sul_schedule(n->ctx, 0, &n->wake, on_wake, (lws_usec_t)wait_ms * LWS_US_PER_MS);
        if (lws_service(n->ctx, 0) < 0) {
            lws_sul_cancel(&n->wake);
            return -1;
        }
        serviced = 1;
    }
}

static int64_t deadline_after(int timeout_ms)
{
    return mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}

/* ---- HTTP callbacks ------------------------------------------------------------------- */

/* Names what an lws connection error string is about, for the detail. */
static const char *connect_error_kind(const void *in)
{
    const char *s = in;
    if (s != NULL && (strstr(s, "SSL") != NULL || strstr(s, "ssl") != NULL ||
                      strstr(s, "tls") != NULL || strstr(s, "TLS") != NULL))
        return "TLS failed (server certificate not trusted, or not for this host name?)";
    return "connect failed";
}

/* Ends a transfer with an error and detaches it from its connection. */
static void http_fail(http_xfer *x, kw_err code, const char *fmt, ...) KW_PRINTF(3, 4);
static void http_fail(http_xfer *x, kw_err code, const char *fmt, ...)
{
    if (x->done == 0) {
        x->done = -1;
        x->code = code;
        va_list ap;
        va_start(ap, fmt);
        set_detail_v(x->detail, fmt, ap);
        va_end(ap);
    }
    if (x->wsi != NULL)
        lws_set_opaque_user_data(x->wsi, NULL);
    x->wsi = NULL;
}

/* Marks the answer whole and detaches the transfer from its connection. */
static void http_complete(http_xfer *x)
{
    if (x->done == 0)
        x->done = 1;
    if (x->wsi != NULL)
        lws_set_opaque_user_data(x->wsi, NULL);
    x->wsi = NULL;
}

/* Appends answer bytes; -1 (transfer failed: too large, no memory) closes the connection. */
static int http_append(http_xfer *x, const void *data, size_t len)
{
    if (len > KWC_HTTP_BODY_MAX - x->len) {
        http_fail(x, KW_ERR_PAYLOAD_TOO_LARGE, "the answer body is over 4 MiB");
        return -1;
    }
    if (x->len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + len + 1)
            cap *= 2;
        char *p = realloc(x->buf, cap);
        if (p == NULL) {
            http_fail(x, KW_ERR_NOMEM, "out of memory reading the answer");
            return -1;
        }
        x->buf = p;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    return 0;
}

/* Adds the caller's headers, Content-Type and Content-Length to the request. */
static int http_headers(struct lws *wsi, http_xfer *x, unsigned char **p, unsigned char *end)
{
    char name[128];
    for (size_t i = 0; i < x->n_headers; i++) {
        const kwc_header *h = &x->headers[i];
        int k = snprintf(name, sizeof name, "%s:", h->name);
        if (k <= 0 || (size_t)k >= sizeof name ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)h->value, (int)strlen(h->value), p,
                                        end) != 0)
            return -1;
    }
    if (x->body != NULL) {
        static const char type[] = "application/json";
        char length[32];
        int k = snprintf(length, sizeof length, "%zu", x->body_len);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)type, (int)sizeof type - 1, p,
                                         end) != 0 ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)length, k, p, end) != 0)
            return -1;
        if (x->body_len > 0) {
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
    }
    return 0;
}

/* Sends the next slice of the request body. */
static int http_write_body(struct lws *wsi, http_xfer *x)
{
    unsigned char buf[LWS_PRE + KWC_HTTP_CHUNK];
    size_t left = x->body_len - x->body_sent;
    size_t k = left < KWC_HTTP_CHUNK ? left : KWC_HTTP_CHUNK;
    int last = k == left;
    memcpy(buf + LWS_PRE, x->body + x->body_sent, k);
    if (last)
        lws_client_http_body_pending(wsi, 0);
    int wrote = lws_write(wsi, buf + LWS_PRE, k, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    OPENSSL_cleanse(buf + LWS_PRE, k);
    if (wrote < 0 || (size_t)wrote != k) {
        http_fail(x, KW_ERR_IO, "connection lost sending the request body");
        return -1;
    }
    x->body_sent += k;
    if (!last)
        lws_callback_on_writable(wsi);
    return 0;
}

/* lws callbacks of an HTTP request in flight; nonzero closes the connection. */
static int http_callback(struct lws *wsi, int reason, http_xfer *x, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        http_fail(x, KW_ERR_IO, "%s: %s", connect_error_kind(in),
                  in ? (const char *)in : "unknown error");
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (http_headers(wsi, x, (unsigned char **)in, *(unsigned char **)in + len) != 0) {
            http_fail(x, KW_ERR_INVALID_ARGUMENT, "the request headers are too long");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (x->body == NULL || x->body_sent >= x->body_len)
            return 0;
        return http_write_body(wsi, x);
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        x->status = (int)lws_http_client_http_response(wsi);
        x->has_length = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 4096];
        char *p = buf + LWS_PRE;
        int n = (int)sizeof buf - LWS_PRE;
        if (lws_http_client_read(wsi, &p, &n) < 0) {
            /* No-op when the answer completed (or failed) inside the read. */
            http_fail(x, KW_ERR_IO, "connection lost reading the answer");
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return http_append(x, in, len);
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        http_complete(x);
        return -1; /* keywaved closes anyway; nothing more to read */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        /* Without a Content-Length the body ends where the connection does. */
        if (x->status != 0 && !x->has_length)
            http_complete(x);
        else
            http_fail(x, KW_ERR_IO, "connection lost before the whole answer");
        return 0;
    default:
        return 0;
    }
}

/* ---- WebSocket callbacks -------------------------------------------------------------- */

/* A protocol error: the connection ends with KW_ERR_INVALID_MESSAGE. Returns -1 (close). */
static int ws_protocol_error(kwc_net *n, const char *what, const kw_error *e)
{
    if (n->state == SIO_OPENING || n->state == SIO_CONNECTING)
        n->connect_code = KW_ERR_INVALID_MESSAGE;
    sio_lost(n, KW_ERR_INVALID_MESSAGE, "the server spoke nonsense: %s%s%s", what,
             e && e->detail[0] ? ": " : "", e ? e->detail : "");
    return -1;
}

/* The Engine.IO open packet: starts the ping watchdog and sends the pending CONNECT. */
static int ws_on_open(kwc_net *n, const kw_eio_packet *p)
{
    kw_error e = {0};
    kw_eio_open open;
    if (n->state != SIO_OPENING)
        return ws_protocol_error(n, "a second open packet", NULL);
    kw_err rc = kw_eio_decode_open(p->data, p->data_len, &open, &e);
    if (rc == KW_ERR_NOMEM) {
        sio_lost(n, KW_ERR_NOMEM, "out of memory");
        return -1;
    }
    if (rc != KW_OK)
        return ws_protocol_error(n, "open packet", &e);
    n->max_payload = open.max_payload;
    n->ping_window_ms = open.ping_interval_ms + open.ping_timeout_ms; /* both < 2^31 */
    n->watchdog_ms = mono_ms() + n->ping_window_ms;
    n->state = SIO_CONNECTING;
    out_frame *f = n->connect_frame;
    n->connect_frame = NULL;
    queue_frame(n, f);
    return 0;
}

/* Queues an EVENT packet's name and arguments for kwc_sio_next. */
static int ws_on_event(kwc_net *n, const kw_sio_packet *p)
{
    json_t *all = json_loadb(p->data, p->data_len, JSON_REJECT_DUPLICATES, NULL);
    ev_node *node = calloc(1, sizeof *node);
    json_t *args = json_array();
    if (all == NULL || node == NULL || args == NULL) {
        json_decref(all);
        json_decref(args);
        free(node);
        sio_lost(n, KW_ERR_NOMEM, "out of memory queueing an event");
        return -1;
    }
    for (size_t i = 1; i < json_array_size(all); i++)
        json_array_append(args, json_array_get(all, i));
    json_decref(all);
    node->ev.name = strdup(p->event);
    node->ev.args = args;
    if (node->ev.name == NULL) {
        kwc_event_clear(&node->ev);
        free(node);
        sio_lost(n, KW_ERR_NOMEM, "out of memory queueing an event");
        return -1;
    }
    if (n->ev_tail != NULL)
        n->ev_tail->next = node;
    else
        n->ev_head = node;
    n->ev_tail = node;
    return 0;
}

/* An ACK: keeps its first argument (owned by n) when it is the one kwc_sio_call awaits. */
static int ws_on_ack(kwc_net *n, const kw_sio_packet *p)
{
    if (!n->awaiting_ack || p->ack_id != n->await_id)
        return 0; /* a late ack of a call that timed out */
    json_t *all = json_loadb(p->data, p->data_len, JSON_REJECT_DUPLICATES, NULL);
    if (all == NULL) {
        sio_lost(n, KW_ERR_NOMEM, "out of memory reading an ack");
        return -1;
    }
    json_t *first = json_array_size(all) > 0 ? json_incref(json_array_get(all, 0)) : json_null();
    json_decref(all);
    n->ack = first;
    n->awaiting_ack = 0;
    return 0;
}

/* CONNECT_ERROR: keeps its data (owned by n until kwc_sio_connect hands it out). */
static int ws_on_connect_error(kwc_net *n, const kw_sio_packet *p)
{
    json_t *data = json_loadb(p->data, p->data_len, JSON_REJECT_DUPLICATES, NULL);
    const char *message = json_string_value(json_object_get(data, "message"));
    n->connect_code = KW_ERR_UNAUTHORIZED;
    size_t m = message ? strlen(message) : 0;
    if (m >= sizeof n->connect_detail)
        m = sizeof n->connect_detail - 1;
    memcpy(n->connect_detail, message ? message : "", m);
    n->connect_detail[m] = '\0';
    json_decref(n->connect_error);
    n->connect_error = data;
    sio_lost(n, KW_ERR_UNAUTHORIZED, "CONNECT refused: %s", n->connect_detail);
    return -1; /* the server closes the connection too */
}

/* An Engine.IO message: one Socket.IO packet; packets of other namespaces are ignored. */
static int ws_on_message(kwc_net *n, const kw_eio_packet *ep)
{
    kw_error e = {0};
    kw_sio_packet p;
    kw_err rc = kw_sio_decode(ep->data, ep->data_len, &p, &e);
    if (rc == KW_ERR_NOMEM) {
        sio_lost(n, KW_ERR_NOMEM, "out of memory");
        return -1;
    }
    if (rc != KW_OK)
        return ws_protocol_error(n, "Socket.IO packet", &e);
    if (p.nsp_len != strlen(n->nsp) || memcmp(p.nsp, n->nsp, p.nsp_len) != 0)
        return 0; /* another namespace on a shared connection: not ours */
    switch (p.type) {
    case KW_SIO_CONNECT:
        if (n->state != SIO_CONNECTING)
            return ws_protocol_error(n, "an unexpected CONNECT", NULL);
        n->state = SIO_CONNECTED;
        return 0;
    case KW_SIO_CONNECT_ERROR:
        if (n->state != SIO_CONNECTING)
            return ws_protocol_error(n, "an unexpected CONNECT_ERROR", NULL);
        return ws_on_connect_error(n, &p);
    case KW_SIO_DISCONNECT:
        sio_lost(n, KW_ERR_IO, "the server disconnected the namespace (DISCONNECT)");
        return -1;
    case KW_SIO_EVENT:
        return n->state == SIO_CONNECTED ? ws_on_event(n, &p) : 0;
    case KW_SIO_ACK:
        return n->state == SIO_CONNECTED ? ws_on_ack(n, &p) : 0;
    }
    return ws_protocol_error(n, "an unknown packet type", NULL);
}

/* Handles one whole WebSocket message: one Engine.IO packet. Returns -1 to close. */
static int ws_on_frame(kwc_net *n, const char *frame, size_t len, int binary)
{
    kw_error e = {0};
    kw_eio_packet p;
    if (kw_eio_decode(frame, len, binary, n->max_payload, &p, &e) != KW_OK)
        return ws_protocol_error(n, "Engine.IO packet", &e);
    if (p.type != KW_EIO_OPEN && n->state == SIO_OPENING)
        return ws_protocol_error(n, "a packet before the open packet", NULL);
    switch (p.type) {
    case KW_EIO_OPEN:
        return ws_on_open(n, &p);
    case KW_EIO_PING:
        n->watchdog_ms = mono_ms() + n->ping_window_ms;
        if (!queue_eio(n, KW_EIO_PONG, p.data, p.data_len)) {
            sio_lost(n, KW_ERR_NOMEM, "out of memory");
            return -1;
        }
        return 0;
    case KW_EIO_CLOSE:
        sio_lost(n, KW_ERR_IO, "the server closed the Engine.IO session");
        return -1;
    case KW_EIO_MESSAGE:
        return ws_on_message(n, &p);
    case KW_EIO_PONG:
    case KW_EIO_NOOP:
    case KW_EIO_UPGRADE:
        return 0;
    }
    return 0;
}

/* Collects a fragment; a whole message goes to ws_on_frame. */
static int ws_receive(struct lws *wsi, kwc_net *n, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        n->rx_len = 0;
        n->rx_binary = lws_frame_is_binary(wsi);
    }
    if (len > (size_t)n->max_payload - n->rx_len) { /* rx_len <= max_payload always */
        kw_error e;
        kw_error_set(&e, KW_ERR_PAYLOAD_TOO_LARGE, "a message over %u bytes", n->max_payload);
        return ws_protocol_error(n, "WebSocket message", &e);
    }
    if (n->rx_len + len > n->rx_cap) {
        size_t cap = n->rx_cap ? n->rx_cap : 4096;
        while (cap < n->rx_len + len)
            cap *= 2;
        char *p = realloc(n->rx, cap);
        if (p == NULL) {
            sio_lost(n, KW_ERR_NOMEM, "out of memory");
            return -1;
        }
        n->rx = p;
        n->rx_cap = cap;
    }
    memcpy(n->rx + n->rx_len, in, len);
    n->rx_len += len;
    if (!lws_is_final_fragment(wsi))
        return 0;
    size_t whole = n->rx_len;
    n->rx_len = 0;
    return ws_on_frame(n, n->rx, whole, n->rx_binary);
}

/* Sends the oldest queued frame; closes once the queue is empty and a close was asked. */
static int ws_writeable(struct lws *wsi, kwc_net *n)
{
    out_frame *f = n->out_head;
    if (f == NULL) {
        if (n->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        return 0;
    }
    n->out_head = f->next;
    if (n->out_head == NULL)
        n->out_tail = NULL;
    int wrote = lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
    f->next = NULL;
    frames_free(f);
    if (wrote < 0) {
        sio_lost(n, KW_ERR_IO, "the socket failed while sending");
        return -1;
    }
    if (n->out_head != NULL || n->closing)
        lws_callback_on_writable(wsi);
    return 0;
}

/* The WebSocket went away: forget it. */
static void ws_gone(struct lws *wsi, kwc_net *n, const char *why)
{
    sio_lost(n, KW_ERR_IO, "%s", why);
    lws_set_opaque_user_data(wsi, NULL);
    if (n->ws == wsi)
        n->ws = NULL;
}

/* lws callbacks of the WebSocket; nonzero closes it. */
static int ws_callback(struct lws *wsi, int reason, kwc_net *n, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        sio_lost(n, KW_ERR_IO, "WebSocket %s: %s", connect_error_kind(in),
                 in ? (const char *)in : "unknown error");
        ws_gone(wsi, n, "");
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return ws_receive(wsi, n, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return ws_writeable(wsi, n);
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        ws_gone(wsi, n, "the socket closed");
        return 0;
    default:
        return 0;
    }
}

/* The one lws callback: routes by the connection's tag; detached connections are ignored. */
static int net_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    (void)user;
    conn_tag *tag = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (tag == NULL)
        return 0; /* a detached connection, or the context's own callbacks */
    if (tag->kind == CONN_HTTP)
        return http_callback(wsi, (int)reason, (http_xfer *)tag, in, len);
    return ws_callback(wsi, (int)reason, tag->net, in, len);
}

static const struct lws_protocols net_protocols[] = {
    {"keywave-client", net_callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- kwc_net --------------------------------------------------------------------------- */

/* Parses "http[s]://host[:port][/]" into n. Returns KW_OK or KW_ERR_INVALID_ARGUMENT. */
static kw_err parse_base_url(kwc_net *n, const char *url, kw_error *err)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        n->tls = 0;
        n->port = 80;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        n->tls = 1;
        n->port = 443;
        p = url + 8;
    } else {
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "server URL must start with http:// or https://");
    }
    size_t total = strlen(url);
    if (total > 0 && url[total - 1] == '/')
        total--;
    if (total >= sizeof n->base_url)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "server URL is too long");
    const char *end = url + total; /* the authority is p..end */
    const char *host = p, *host_end;
    if (*p == '[') { /* IPv6 literal */
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "server URL: unclosed '['");
        for (const char *c = host; c < host_end; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
                  (*c >= 'A' && *c <= 'F') || *c == ':' || *c == '.'))
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "server URL: bad IPv6 address");
        p = host_end + 1;
    } else {
        while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            p++;
        host_end = p;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len > KWC_HOST_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "server URL has no host");
    if (p < end && *p == ':') {
        long port = 0;
        const char *d = ++p;
        while (p < end && *p >= '0' && *p <= '9' && p - d < 6)
            port = port * 10 + (*p++ - '0');
        if (p == d || port < 1 || port > 65535 || (p < end && *p >= '0' && *p <= '9'))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "server URL: port must be 1-65535");
        n->port = (int)port;
    }
    if (p != end)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "server URL must be scheme://host[:port] without path, query, user "
                            "or fragment (unexpected '%c')",
                            *p);
    memcpy(n->host, host, host_len);
    n->host[host_len] = '\0';
    memcpy(n->base_url, url, total);
    n->base_url[total] = '\0';
    /* Host: the authority as written (brackets and port included). */
    size_t auth_len = (size_t)(end - (url + (n->tls ? 8 : 7)));
    if (auth_len >= sizeof n->host_header)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "server URL is too long");
    memcpy(n->host_header, url + (n->tls ? 8 : 7), auth_len);
    n->host_header[auth_len] = '\0';
    return KW_OK;
}

kw_err kwc_net_new(const char *base_url, kwc_net **out, kw_error *err)
{
    if (out == NULL || base_url == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kwc_net *n = calloc(1, sizeof *n);
    if (n == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    kw_err rc = parse_base_url(n, base_url, err);
    if (rc != KW_OK) {
        free(n);
        return rc;
    }
    n->ws_tag.kind = CONN_WS;
    n->ws_tag.net = n;
    n->max_payload = KW_EIO_MAX_PAYLOAD;

    lws_set_log_level(0, NULL); /* library noise must not reach the CLI's output */
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = net_protocols;
    info.user = n;
    info.timeout_secs = KWC_LWS_TIMEOUT_S;
    if (n->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        const char *ca = getenv("KEYWAVE_CA_FILE");
        if (ca != NULL && ca[0] != '\0') {
            /* lws only logs an unreadable CA file; every connection would then fail. */
            FILE *f = fopen(ca, "r");
            if (f == NULL) {
                int e = errno;
                free(n);
                return kw_error_set(err, KW_ERR_IO, "KEYWAVE_CA_FILE %.100s: %s", ca, strerror(e));
            }
            fclose(f);
            info.client_ssl_ca_filepath = ca;
        }
    }
    n->ctx = lws_create_context(&info);
    if (n->ctx == NULL) {
        int tls = n->tls;
        free(n);
        return kw_error_set(err, KW_ERR_IO, "cannot create the lws client context%s",
                            tls ? " (TLS setup or KEYWAVE_CA_FILE failed?)" : "");
    }
    *out = n;
    return KW_OK;
}

void kwc_net_free(kwc_net *n)
{
    if (n == NULL)
        return;
    kwc_sio_close(n);
    sio_reset_io(n);
    events_free(n);
    lws_sul_cancel(&n->wake);
    lws_context_destroy(n->ctx);
    free(n);
}

const char *kwc_net_base_url(const kwc_net *n)
{
    return n ? n->base_url : NULL;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static int http_done(kwc_net *n, const void *arg)
{
    (void)n;
    return ((const http_xfer *)arg)->done != 0;
}

/* A header name keywave uses: letters, digits, '-', '_'; not empty. */
static int is_token(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* No control characters (CR/LF could inject headers); tab allowed in values. */
static int is_header_text(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    return 1;
}

/* Checks kwc_http_request's arguments; KW_ERR_INVALID_ARGUMENT says which is wrong. */
static kw_err http_check_args(const char *method, const char *target, const kwc_header *headers,
                              size_t n_headers, const void *body, size_t body_len, kw_error *err)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    int known = 0;
    for (size_t i = 0; method != NULL && i < sizeof methods / sizeof methods[0]; i++)
        known |= strcmp(method, methods[i]) == 0;
    if (!known)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "method must be GET, POST, PUT, PATCH or DELETE");
    if (target == NULL || target[0] != '/' || !is_header_text(target) || strchr(target, ' '))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "target must start with '/' and hold no space or control character");
    if (n_headers > 0 && headers == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL headers");
    for (size_t i = 0; i < n_headers; i++)
        if (!is_token(headers[i].name) || headers[i].value == NULL ||
            !is_header_text(headers[i].value))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "header %zu is malformed", i);
    if (body == NULL && body_len > 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL body with a length");
    return KW_OK;
}

kw_err kwc_http_request(kwc_net *n, const char *method, const char *target,
                        const kwc_header *headers, size_t n_headers, const void *body,
                        size_t body_len, int timeout_ms, kwc_http_response *out, kw_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (n == NULL || out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL argument");
    kw_err rc = http_check_args(method, target, headers, n_headers, body, body_len, err);
    if (rc != KW_OK)
        return rc;

    http_xfer x;
    memset(&x, 0, sizeof x);
    x.tag.kind = CONN_HTTP;
    x.tag.net = n;
    x.headers = headers;
    x.n_headers = n_headers;
    x.body = body;
    x.body_len = body_len;

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = n->ctx;
    ci.address = n->host;
    ci.port = n->port;
    ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (n->tls ? LCCSCF_USE_SSL : 0);
    ci.path = target;
    ci.host = n->host_header;
    ci.origin = NULL; /* not a browser: no Origin (lws would write http:// even for TLS) */
    ci.method = method;
    ci.protocol = net_protocols[0].name;
    ci.alpn = "http/1.1";
    ci.opaque_user_data = &x;
    ci.pwsi = &x.wsi;
    if (lws_client_connect_via_info(&ci) == NULL && x.done == 0)
        http_fail(&x, KW_ERR_IO, "connect to %s failed", n->base_url);

    int got = run_until(n, deadline_after(timeout_ms), http_done, &x);
    if (got <= 0) {
        struct lws *wsi = x.wsi;
        if (got < 0)
            http_fail(&x, KW_ERR_IO, "the event loop failed");
        else
            http_fail(&x, KW_ERR_TIMEOUT, "no whole answer from %s in %d ms", n->base_url,
                      timeout_ms);
        if (wsi != NULL)
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
    if (x.done != 1) {
        if (x.buf != NULL)
            OPENSSL_cleanse(x.buf, x.len);
        free(x.buf);
        return kw_error_set(err, x.code, "%s", x.detail);
    }
    if (x.buf == NULL && http_append(&x, "", 0) != 0) /* an empty body is "" */
        return kw_error_set(err, x.code, "%s", x.detail);
    x.buf[x.len] = '\0';
    out->status = x.status;
    out->body = x.buf;
    out->body_len = x.len;
    return KW_OK;
}

void kwc_http_response_clear(kwc_http_response *out)
{
    if (out == NULL)
        return;
    if (out->body != NULL) {
        OPENSSL_cleanse(out->body, out->body_len);
        free(out->body);
    }
    memset(out, 0, sizeof *out);
}

/* ---- Socket.IO ----------------------------------------------------------------------- */

void kwc_event_clear(kwc_event *e)
{
    if (e == NULL)
        return;
    free(e->name);
    json_decref(e->args);
    memset(e, 0, sizeof *e);
}

int kwc_sio_connected(const kwc_net *n)
{
    return n != NULL && n->state == SIO_CONNECTED;
}

/* run_until conditions: connect answered, queue sent, ack in, event in, socket gone. */
static int connect_done(kwc_net *n, const void *arg)
{
    (void)arg;
    return n->state != SIO_OPENING && n->state != SIO_CONNECTING;
}

/* Encodes CONNECT for nsp with auth into n->connect_frame. */
static kw_err make_connect_frame(kwc_net *n, json_t *auth, kw_error *err)
{
    char *text = NULL;
    if (auth != NULL) {
        if (!json_is_object(auth))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "auth must be a JSON object");
        text = json_dumps(auth, JSON_COMPACT);
        if (text == NULL)
            return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    }
    kw_sio_packet p;
    memset(&p, 0, sizeof p);
    p.type = KW_SIO_CONNECT;
    p.nsp = n->nsp;
    p.nsp_len = strlen(n->nsp);
    p.data = text;
    p.data_len = text ? strlen(text) : 0;
    size_t len = 0;
    kw_err rc = kw_sio_encode(&p, NULL, 0, &len, err);
    out_frame *f = NULL;
    if (rc == KW_ERR_BUFFER_TOO_SMALL) {
        f = frame_new(len);
        rc = f == NULL ? kw_error_set(err, KW_ERR_NOMEM, "out of memory")
                       : kw_sio_encode(&p, (char *)f->buf + LWS_PRE, len + 1, &f->len, err);
    } else if (rc == KW_OK) {
        rc = kw_error_set(err, KW_ERR_INTERNAL, "CONNECT encoded to nothing");
    }
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    if (rc != KW_OK) {
        free(f);
        return rc == KW_ERR_INVALID_ARGUMENT ? kw_error_set(err, rc, "bad namespace: %s", n->nsp)
                                             : rc;
    }
    n->connect_frame = f;
    return KW_OK;
}

kw_err kwc_sio_connect(kwc_net *n, const char *nsp, json_t *auth, int timeout_ms,
                       json_t **connect_error, kw_error *err)
{
    if (connect_error != NULL)
        *connect_error = NULL;
    if (n == NULL || nsp == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL argument");
    if (n->state == SIO_OPENING || n->state == SIO_CONNECTING || n->state == SIO_CONNECTED)
        return kw_error_set(err, KW_ERR_STATE, "already connected to namespace %s", n->nsp);
    if (nsp[0] != '/' || strlen(nsp) > KW_SIO_NSP_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "bad namespace");
    /* A new connection: whatever the last one left is dropped. */
    sio_reset_io(n);
    events_free(n);
    n->state = SIO_NONE;
    snprintf(n->nsp, sizeof n->nsp, "%s", nsp);
    kw_err rc = make_connect_frame(n, auth, err);
    if (rc != KW_OK)
        return rc;
    n->max_payload = KW_EIO_MAX_PAYLOAD;
    n->connect_code = KW_OK;
    n->connect_detail[0] = '\0';
    n->lost_code = KW_OK;
    n->lost_detail[0] = '\0';
    n->next_ack_id = 0;
    n->state = SIO_OPENING;

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = n->ctx;
    ci.address = n->host;
    ci.port = n->port;
    ci.ssl_connection = n->tls ? LCCSCF_USE_SSL : 0;
    ci.path = KWC_WS_PATH;
    ci.host = n->host_header;
    ci.origin = NULL;
    ci.protocol = NULL; /* no Sec-WebSocket-Protocol */
    ci.local_protocol_name = net_protocols[0].name;
    ci.alpn = "http/1.1";
    ci.opaque_user_data = &n->ws_tag;
    ci.pwsi = &n->ws;
    if (lws_client_connect_via_info(&ci) == NULL && n->state == SIO_OPENING)
        sio_lost(n, KW_ERR_IO, "WebSocket connect to %s failed", n->base_url);

    int got = run_until(n, deadline_after(timeout_ms), connect_done, NULL);
    if (got > 0 && n->state == SIO_CONNECTED)
        return KW_OK;
    if (got <= 0) {
        rc = got < 0 ? kw_error_set(err, KW_ERR_IO, "the event loop failed")
                     : kw_error_set(err, KW_ERR_TIMEOUT, "no %s from %s in %d ms",
                                    n->state == SIO_OPENING ? "Engine.IO open packet"
                                                            : "CONNECT answer",
                                    n->base_url, timeout_ms);
    } else if (n->connect_code == KW_ERR_UNAUTHORIZED) {
        rc = kw_error_set(err, KW_ERR_UNAUTHORIZED, "%s", n->connect_detail);
        if (connect_error != NULL) {
            *connect_error = n->connect_error;
            n->connect_error = NULL;
        }
    } else {
        rc = kw_error_set(err, n->lost_code != KW_OK ? n->lost_code : KW_ERR_IO, "%s",
                          n->lost_detail);
    }
    /* A connection that never came up leaves nothing behind: next says KW_ERR_STATE. */
    sio_reset_io(n);
    events_free(n);
    n->state = SIO_NONE;
    return rc;
}

/* Why the socket cannot be used now: KW_ERR_STATE (none) or KW_ERR_IO (it ended). */
static kw_err not_connected(const kwc_net *n, kw_error *err)
{
    if (n->state == SIO_LOST)
        return kw_error_set(err, n->lost_code == KW_ERR_NOMEM ? KW_ERR_NOMEM : KW_ERR_IO, "%s",
                            n->lost_detail);
    return kw_error_set(err, KW_ERR_STATE, "not connected");
}

/* Queues EVENT [event, payload] with ack_id (KW_SIO_NO_ACK: none). */
static kw_err queue_event(kwc_net *n, const char *event, json_t *payload, int64_t ack_id,
                          kw_error *err)
{
    if (event == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL event name");
    char *args = NULL;
    if (payload != NULL) {
        args = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        if (args == NULL)
            return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    }
    size_t args_len = args ? strlen(args) : 0;
    const char *nsp = n->nsp;
    size_t len = 0;
    kw_err rc = kw_sio_encode_event(nsp, ack_id, event, args, args_len, NULL, 0, &len, err);
    out_frame *f = NULL;
    if (rc == KW_ERR_BUFFER_TOO_SMALL) {
        if (len > n->max_payload)
            rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                              "event is %zu bytes; the server takes at most %u", len,
                              n->max_payload);
        else if ((f = frame_new(len)) == NULL)
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        else
            rc = kw_sio_encode_event(nsp, ack_id, event, args, args_len, (char *)f->buf + LWS_PRE,
                                     len + 1, &f->len, err);
    } else if (rc == KW_OK) {
        rc = kw_error_set(err, KW_ERR_INTERNAL, "EVENT encoded to nothing");
    }
    if (args != NULL) {
        OPENSSL_cleanse(args, args_len); /* payloads may carry key material */
        free(args);
    }
    if (rc != KW_OK) {
        free(f);
        return rc;
    }
    queue_frame(n, f);
    return KW_OK;
}

static int flushed(kwc_net *n, const void *arg)
{
    (void)arg;
    return n->out_head == NULL || n->state != SIO_CONNECTED;
}

kw_err kwc_sio_emit(kwc_net *n, const char *event, json_t *payload, kw_error *err)
{
    if (n == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL argument");
    if (n->state != SIO_CONNECTED)
        return not_connected(n, err);
    kw_err rc = queue_event(n, event, payload, KW_SIO_NO_ACK, err);
    if (rc != KW_OK)
        return rc;
    /* Wait (briefly) until it is on the wire, so a command that emits and exits sends. */
    if (run_until(n, deadline_after(KWC_EMIT_FLUSH_MS), flushed, NULL) < 0)
        return kw_error_set(err, KW_ERR_IO, "the event loop failed");
    if (n->state != SIO_CONNECTED)
        return not_connected(n, err);
    return KW_OK;
}

static int ack_done(kwc_net *n, const void *arg)
{
    (void)arg;
    return n->ack != NULL || n->state != SIO_CONNECTED;
}

kw_err kwc_sio_call(kwc_net *n, const char *event, json_t *payload, int timeout_ms, json_t **ack,
                    kw_error *err)
{
    if (ack != NULL)
        *ack = NULL;
    if (n == NULL || ack == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL argument");
    if (n->state != SIO_CONNECTED)
        return not_connected(n, err);
    uint32_t id = n->next_ack_id;
    kw_err rc = queue_event(n, event, payload, (int64_t)id, err);
    if (rc != KW_OK)
        return rc;
    n->next_ack_id = id == KW_SIO_ACK_ID_MAX ? 0 : id + 1;
    json_decref(n->ack);
    n->ack = NULL;
    n->awaiting_ack = 1;
    n->await_id = id;
    int got = run_until(n, deadline_after(timeout_ms), ack_done, NULL);
    n->awaiting_ack = 0;
    if (n->ack != NULL) {
        *ack = n->ack;
        n->ack = NULL;
        return KW_OK;
    }
    if (got < 0)
        return kw_error_set(err, KW_ERR_IO, "the event loop failed");
    if (n->state != SIO_CONNECTED)
        return not_connected(n, err);
    return kw_error_set(err, KW_ERR_TIMEOUT, "no ack for %s in %d ms", event, timeout_ms);
}

static int event_ready(kwc_net *n, const void *arg)
{
    (void)arg;
    return n->ev_head != NULL || n->state != SIO_CONNECTED;
}

kw_err kwc_sio_next(kwc_net *n, int timeout_ms, kwc_event *out, kw_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (n == NULL || out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "NULL argument");
    if (n->state == SIO_NONE && n->ev_head == NULL)
        return kw_error_set(err, KW_ERR_STATE, "not connected");
    if (n->ev_head == NULL && n->state == SIO_CONNECTED &&
        run_until(n, deadline_after(timeout_ms), event_ready, NULL) < 0)
        return kw_error_set(err, KW_ERR_IO, "the event loop failed");
    if (n->ev_head != NULL) {
        ev_node *node = n->ev_head;
        n->ev_head = node->next;
        if (n->ev_head == NULL)
            n->ev_tail = NULL;
        *out = node->ev;
        free(node);
        return KW_OK;
    }
    if (n->state != SIO_CONNECTED)
        return not_connected(n, err);
    return kw_error_set(err, KW_ERR_TIMEOUT, "no event in %d ms", timeout_ms);
}

static int ws_closed(kwc_net *n, const void *arg)
{
    (void)arg;
    return n->ws == NULL;
}

void kwc_sio_close(kwc_net *n)
{
    if (n == NULL)
        return;
    if (n->ws != NULL) {
        if (n->state == SIO_CONNECTED) {
            kw_sio_packet p;
            memset(&p, 0, sizeof p);
            p.type = KW_SIO_DISCONNECT;
            p.nsp = n->nsp;
            p.nsp_len = strlen(n->nsp);
            size_t len = 0;
            out_frame *f = NULL;
            if (kw_sio_encode(&p, NULL, 0, &len, NULL) == KW_ERR_BUFFER_TOO_SMALL &&
                (f = frame_new(len)) != NULL) {
                if (kw_sio_encode(&p, (char *)f->buf + LWS_PRE, len + 1, &f->len, NULL) == KW_OK)
                    queue_frame(n, f);
                else
                    free(f);
            }
        }
        n->state = SIO_NONE; /* nothing the socket says now matters */
        n->closing = 1;
        lws_callback_on_writable(n->ws);
        if (run_until(n, deadline_after(KWC_CLOSE_WAIT_MS), ws_closed, NULL) != 1)
            ws_kill(n);
    }
    sio_reset_io(n);
    events_free(n);
    n->state = SIO_NONE;
}
