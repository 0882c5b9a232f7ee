/*
 * http_lws.c — the thin adapter between libwebsockets and keywaved; the only file that
 * includes libwebsockets.h.
 *
 * One lws callback switch turns a request into a kw_request (router.h takes it from
 * there) and sends the kw_response back from the WRITEABLE callback: the status and
 * headers in one callback, then the body in slices of SLICE_BYTES, one lws_write per
 * callback, so a large reply to a slow reader never blocks the loop. (One exception,
 * forced by lws 4.1, is in on_body_complete.)
 *
 * Memory per connection: the per-session block is one pointer. A transaction (http_txn:
 * the request's strings, its body, the reply) is allocated when the request headers are
 * complete and freed when the reply is out or the connection goes; the body buffer only
 * exists while a request has a body, and never grows past KW_HTTP_BODY_MAX (INV-11).
 *
 * What lws 4.1 hands over, and so what req->path, req->query and req->target are. lws
 * keeps no raw request line. It decodes %XX escapes in the target, normalises the path
 * ("//" -> "/", "/./" -> "/", "/x/../" -> "/"), turns a raw '+' into a space and splits
 * both path and query into fragments at raw '&' and ';' (in the query it also turns an
 * escaped '=' in a name into '_'). The adapter rebuilds one canonical form: fragments
 * joined with '&', each byte outside RFC 3986 unreserved and "!$'()*,=:@/" (plus '?' in
 * the query) written as upper-case %XX — so '&', ';', '+', '%' and space inside a
 * fragment come out escaped. A client whose ids are unreserved characters and that
 * writes no needless escapes sends exactly this form, so what it signed is what the
 * server verifies; any other spelling of a target fails the signature check (401)
 * rather than being accepted. "%2F" ends up as a segment separator. Requests lws cannot
 * parse (unknown method, malformed escape, absolute-form target, headers over 4 KiB) it
 * answers itself with 403 and a small HTML page, or closes, before keywave code runs.
 *
 * Bodies. lws 4.1 does not decode a chunked request body: this file does, and closes the
 * connection after answering (lws would read what follows the last chunk as more body).
 * lws also reads a POST, PUT or PATCH without Content-Length as up to 100 MB of body, so
 * such a request is answered as bodiless and the connection closed. TLS offers only
 * http/1.1 in ALPN, so every request takes the paths above.
 */
#include "server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>

#include "http.h"
#include "log.h"
#include "router.h"
#include "rt.h"

/* Wake the loop this often, so a stop flag set by a signal handler is seen promptly. */
#define TICK_US (1 * LWS_USEC_PER_SEC)
/* While draining, wake more often so the deadline is kept closely. */
#define DRAIN_TICK_US (50 * LWS_USEC_PER_SEC / 1000)
/* Body bytes per lws_write: a few KiB keeps one callback short and the loop fair. */
#define SLICE_BYTES 4096
/* Status line and the headers added here (the canned ones are added by lws). */
#define HEADERS_MAX 2048
/* First allocation for a chunked body; it doubles up to KW_HTTP_BODY_MAX. */
#define CHUNKED_INITIAL 4096
/* The Content-Security-Policy with the longest LiveKit origin config.c allows. */
#define CSP_MAX    1024
#define ORIGIN_MAX 200

/* ---- the HTTP layer's own state -------------------------------------------------- */

struct kw_http {
    struct lws_context *context; /* owned */
    struct lws_vhost *vhost;     /* owned by context */
    lws_sorted_usec_list_t tick; /* periodic wake-up, cancelled in kw_http_stop */
    lws_sorted_usec_list_t hb;   /* the WebSocket heartbeat walk, cancelled in kw_http_stop */
    kw_rt_conn *hb_head;         /* open WebSocket connections (kw_rt_conn hb_* links) */
    bool draining;               /* kw_http_drain: no new connections, no keep-alive */
    char csp[CSP_MAX];           /* Content-Security-Policy value */
    struct lws_protocol_vhost_options headers[4]; /* canned headers on every response */
};

/* ---- one request ----------------------------------------------------------------- */

typedef enum phase {
    PHASE_READING = 0, /* request headers parsed, body still arriving */
    PHASE_HEADERS,     /* reply queued: status line and headers next */
    PHASE_BODY,        /* reply body slices next */
    PHASE_FLUSH,       /* reply written, lws still holds some of it; close once flushed */
} phase;

/* Incremental decoder of a chunked body (RFC 9112 section 7.1). */
typedef enum chunk_state {
    CHUNK_SIZE = 0,     /* hex digits of a chunk size */
    CHUNK_EXT,          /* chunk extension up to CR: ignored */
    CHUNK_SIZE_LF,      /* LF after the size line */
    CHUNK_DATA,         /* data bytes */
    CHUNK_DATA_CR,      /* CR after the data */
    CHUNK_DATA_LF,      /* LF after the data */
    CHUNK_TRAILER,      /* start of a trailer line (or of the final empty line) */
    CHUNK_TRAILER_LINE, /* inside a trailer line */
    CHUNK_TRAILER_LF,   /* LF ending a trailer line */
    CHUNK_FINAL_LF,     /* LF of the final empty line */
    CHUNK_DONE,
} chunk_state;

typedef struct http_txn {
    kw_server *srv; /* borrowed */
    phase phase;
    bool head;        /* HEAD: send the headers only */
    bool close_after; /* close the connection once the reply is out */
    bool chunked;     /* the body comes chunked */
    int64_t started_us;

    /* Request */
    kw_request req;
    uint8_t *body;        /* owned; NULL while there is no body */
    size_t body_cap;      /* allocated bytes of body */
    size_t body_expected; /* Content-Length; 0 when chunked */
    chunk_state chunk;
    size_t chunk_left;    /* data bytes left in the current chunk */
    unsigned completions; /* BODY_COMPLETION callbacks seen (see on_body_complete) */
    unsigned chunk_digits;

    /* Reply */
    kw_response res;
    kw_dispatch dispatch;
    size_t sent; /* body bytes written */

    char text[]; /* the request's strings (path, query, target, header values) */
} http_txn;

/* Per connection: just the transaction under way, so an idle socket costs 8 bytes here. */
typedef struct http_session {
    http_txn *txn; /* owned; NULL between requests */
} http_session;

static int64_t monotonic_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static kw_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static void txn_free(http_txn *t)
{
    if (t == NULL)
        return;
    if (t->srv->http_in_flight > 0)
        t->srv->http_in_flight--;
    free(t->body);
    kw_response_free(&t->res);
    free(t);
}

static void session_end_txn(http_session *s)
{
    if (s != NULL) {
        txn_free(s->txn);
        s->txn = NULL;
    }
}

/* ---- canonical percent-encoding (see the top of this file) ------------------------ */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* '&', ';' and '+' are escaped: raw, lws took them as separators or a space. */
static bool keep_in_path(unsigned char c)
{
    return is_unreserved(c) || (c != 0 && strchr("!$'()*,=:@/", c) != NULL);
}

static bool keep_in_query(unsigned char c)
{
    return is_unreserved(c) || (c != 0 && strchr("!$'()*,=:@/?", c) != NULL);
}

/* Appends n bytes of s to out, escaping what keep() rejects; returns the new end. */
static char *encode(char *out, const char *s, size_t n, bool (*keep)(unsigned char))
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (keep(c)) {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

/* ---- reading the request ------------------------------------------------------------ */

static kw_method method_of(int lws_method, const char **name)
{
    switch (lws_method) {
    case LWSHUMETH_GET:
        *name = "GET";
        return KW_GET;
    case LWSHUMETH_POST:
        *name = "POST";
        return KW_POST;
    case LWSHUMETH_PUT:
        *name = "PUT";
        return KW_PUT;
    case LWSHUMETH_PATCH:
        *name = "PATCH";
        return KW_PATCH;
    case LWSHUMETH_DELETE:
        *name = "DELETE";
        return KW_DELETE;
    case LWSHUMETH_HEAD:
        *name = "HEAD";
        return KW_HEAD;
    case LWSHUMETH_OPTIONS:
        *name = "OPTIONS";
        return KW_OTHER_METHOD;
    case LWSHUMETH_CONNECT:
        *name = "CONNECT";
        return KW_OTHER_METHOD;
    default:
        *name = "OTHER";
        return KW_OTHER_METHOD;
    }
}

/* The headers kept for handlers: lws token or custom name, and where the value goes. */
typedef struct header_spec {
    int token;          /* lws token, or -1 for a custom header */
    const char *custom; /* lower-case name with ':' */
    size_t offset;      /* of the const char * in kw_request */
} header_spec;

static const header_spec wanted_headers[] = {
    {-1, "x-client-id:", offsetof(kw_request, client_id)},
    {-1, "x-timestamp:", offsetof(kw_request, timestamp)},
    {-1, "x-nonce:", offsetof(kw_request, nonce)},
    {-1, "x-signature:", offsetof(kw_request, signature)},
    {WSI_TOKEN_HTTP_AUTHORIZATION, NULL, offsetof(kw_request, authorization)},
    {WSI_TOKEN_HTTP_ACCEPT, NULL, offsetof(kw_request, accept)},
};
#define N_WANTED (sizeof wanted_headers / sizeof wanted_headers[0])

static int header_length(struct lws *wsi, const header_spec *h)
{
    if (h->token < 0)
        return lws_hdr_custom_length(wsi, h->custom, (int)strlen(h->custom));
    return lws_hdr_total_length(wsi, (enum lws_token_indexes)h->token);
}

/* The lws token holding the request target, by LWSHUMETH_* index (lws's own order). */
static const enum lws_token_indexes uri_tokens[] = {
    WSI_TOKEN_GET_URI, WSI_TOKEN_POST_URI,  WSI_TOKEN_OPTIONS_URI,
    WSI_TOKEN_PUT_URI, WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI,
    WSI_TOKEN_CONNECT, WSI_TOKEN_HEAD_URI,  WSI_TOKEN_HTTP_COLON_PATH,
};

/*
 * How many fragments lws holds for a URI token: it splits the path and the query at raw
 * '&' and ';'. lws_hdr_fragment_length cannot tell an empty fragment from a missing one,
 * but the total length is the fragments plus one separator between each two, which gives
 * the count. -1 if that does not add up.
 */
static int count_fragments(struct lws *wsi, enum lws_token_indexes token, size_t *bytes)
{
    *bytes = 0;
    int total = lws_hdr_total_length(wsi, token);
    if (total <= 0)
        return 0; /* none, or one empty fragment: the same "" */
    int sum = 0;
    for (int i = 0; i < 64; i++) {
        sum += lws_hdr_fragment_length(wsi, token, i);
        if (sum + i == total) {
            *bytes = (size_t)total;
            return i + 1;
        }
        if (sum + i > total)
            break;
    }
    return -1;
}

/*
 * Writes the fragments of token joined with '&', each encoded with keep(), and a NUL;
 * returns the new end, or NULL if a fragment cannot be read. lws reports an empty
 * fragment at the end of the target as "/" (it makes every URI token start with '/'):
 * a last fragment of exactly "/" after the first is read as empty, and a query of only
 * "/" too.
 */
static char *append_fragments(char *p, struct lws *wsi, enum lws_token_indexes token, int n_frags,
                              bool query, bool (*keep)(unsigned char))
{
    char frag[4096]; /* lws keeps at most 4 KiB of headers in all */
    for (int i = 0; i < n_frags; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, token, i);
        if (n < 0)
            return NULL;
        if (i == n_frags - 1 && (i > 0 || query) && n == 1 && frag[0] == '/')
            n = 0;
        if (i > 0)
            *p++ = '&';
        p = encode(p, frag, (size_t)n, keep);
    }
    *p++ = '\0';
    return p;
}

/*
 * Builds the transaction for a request whose headers are complete: rebuilds path, query
 * and target (see the top of this file), copies the wanted headers. NULL when out of
 * memory or when lws holds no usable request target.
 */
static http_txn *txn_new(struct lws *wsi, kw_server *srv)
{
    char *uri = NULL;
    int uri_len = 0;
    int m = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    if (m < 0 || (size_t)m >= sizeof uri_tokens / sizeof uri_tokens[0])
        return NULL;
    size_t path_raw, query_raw;
    int path_frags = count_fragments(wsi, uri_tokens[m], &path_raw);
    int query_frags = count_fragments(wsi, WSI_TOKEN_HTTP_URI_ARGS, &query_raw);
    if (path_frags <= 0 || query_frags < 0)
        return NULL;

    /* Room: each byte may triple when encoded; one NUL per string. */
    size_t path_cap = 3 * path_raw + 1, query_cap = 3 * query_raw + 1;
    size_t cap = path_cap + query_cap + path_cap + query_cap + 1;
    int lens[N_WANTED];
    for (size_t i = 0; i < N_WANTED; i++) {
        lens[i] = header_length(wsi, &wanted_headers[i]); /* <= 0: absent (or empty) */
        if (lens[i] > 0)
            cap += (size_t)lens[i] + 1;
    }

    http_txn *t = calloc(1, sizeof *t + cap);
    if (t == NULL)
        return NULL;
    t->srv = srv;
    srv->http_in_flight++; /* until txn_free */
    t->started_us = monotonic_us();
    t->req.method = method_of(m, &t->req.method_name);
    t->req.now_ms = wall_clock_ms();
    t->head = t->req.method == KW_HEAD;
    kw_response_init(&t->res);

    char *p = t->text;
    t->req.path = p;
    p = append_fragments(p, wsi, uri_tokens[m], path_frags, false, keep_in_path);
    if (p != NULL) {
        t->req.query = p;
        p = append_fragments(p, wsi, WSI_TOKEN_HTTP_URI_ARGS, query_frags, true, keep_in_query);
    }
    if (p == NULL) {
        /* Cannot happen: every fragment fits in lws's header space and in the buffer. */
        txn_free(t);
        return NULL;
    }

    t->req.target = p;
    size_t path_len = strlen(t->req.path), query_len = strlen(t->req.query);
    memcpy(p, t->req.path, path_len);
    p += path_len;
    if (query_len > 0) {
        *p++ = '?';
        memcpy(p, t->req.query, query_len);
        p += query_len;
    }
    *p++ = '\0';

    for (size_t i = 0; i < N_WANTED; i++) {
        if (lens[i] <= 0)
            continue;
        const header_spec *h = &wanted_headers[i];
        int n = h->token < 0
                    ? lws_hdr_custom_copy(wsi, p, lens[i] + 1, h->custom, (int)strlen(h->custom))
                    : lws_hdr_copy(wsi, p, lens[i] + 1, (enum lws_token_indexes)h->token);
        if (n < 0)
            continue;
        p[n] = '\0';
        *(const char **)(void *)((char *)&t->req + h->offset) = p;
        p += n + 1;
    }
    return t;
}

/* Parses a Content-Length value: decimal digits only, no sign, at most 18 digits. */
static bool parse_content_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n == 18)
            return false;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    *out = v;
    return n > 0;
}

/* ---- answering ------------------------------------------------------------------------ */

static bool header_value_ok(const char *v)
{
    for (; *v != '\0'; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

/* Queues the reply in t->res for writing. */
static void queue_reply(struct lws *wsi, http_txn *t)
{
    /* A handler's Location must not split the header block. */
    if (t->res.location != NULL && !header_value_ok(t->res.location)) {
        t->res.location = NULL;
        if (kw_response_error(&t->res, KW_ERR_INTERNAL, "Bad redirect target.") != KW_OK)
            t->res.status = 500;
    }
    if (t->res.status < 100 || t->res.status > 599)
        t->res.status = 500;
    t->phase = PHASE_HEADERS;
    lws_callback_on_writable(wsi);
}

/* Answers without dispatching (413, a malformed body) and closes after. */
static void answer_early(struct lws *wsi, http_txn *t, kw_err code, const char *detail)
{
    kw_router_log_path(t->srv, t->req.path, t->dispatch.log_path);
    if (kw_response_error(&t->res, code, detail) != KW_OK) {
        kw_response_free(&t->res);
        t->res.status = 500;
    }
    t->close_after = true;
    free(t->body);
    t->body = NULL;
    queue_reply(wsi, t);
}

static void dispatch(struct lws *wsi, http_txn *t)
{
    t->req.body = t->body;
    if (kw_rt_http(&t->req, &t->res)) /* /socket.io/ without an upgrade: polling's 400 */
        kw_router_log_path(t->srv, t->req.path, t->dispatch.log_path);
    else
        kw_router_dispatch(t->srv, &t->req, &t->res, &t->dispatch);
    queue_reply(wsi, t);
}

/* Decides, once the headers are in, whether a body follows and how; may answer at once. */
static void begin_request(struct lws *wsi, http_txn *t)
{
    char value[32];
    bool has_te = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    bool has_cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (has_te) {
        /* Both headers is how request smuggling starts: refuse rather than pick one. */
        if (has_cl ||
            lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HTTP_TRANSFER_ENCODING) < 0 ||
            strcasecmp(value, "chunked") != 0) {
            answer_early(wsi, t, KW_ERR_INVALID_MESSAGE,
                         "Transfer-Encoding must be chunked alone, without Content-Length.");
            return;
        }
        /* lws reads a body after headers only for these methods (or a Content-Length). */
        if (t->req.method != KW_POST && t->req.method != KW_PUT && t->req.method != KW_PATCH) {
            answer_early(wsi, t, KW_ERR_INVALID_MESSAGE,
                         "A chunked body is only read with POST, PUT or PATCH.");
            return;
        }
        t->chunked = true;
        t->close_after = true;
        return; /* body follows */
    }
    uint64_t length = 0;
    if (has_cl && (lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
                   !parse_content_length(value, &length))) {
        answer_early(wsi, t, KW_ERR_INVALID_MESSAGE, "Content-Length is not a number.");
        return;
    }
    if (length > KW_HTTP_BODY_MAX) {
        /* INV-11: answered before the body is read; the connection closes after. */
        answer_early(wsi, t, KW_ERR_PAYLOAD_TOO_LARGE, "The request body is over 65536 bytes.");
        return;
    }
    if (length == 0) {
        /* lws 4.1 reads a POST, PUT or PATCH without Content-Length as a body of up to
         * 100 MB: the connection cannot carry another request after this one. */
        if (!has_cl &&
            (t->req.method == KW_POST || t->req.method == KW_PUT || t->req.method == KW_PATCH))
            t->close_after = true;
        dispatch(wsi, t);
        return;
    }
    t->body = malloc((size_t)length);
    if (t->body == NULL) {
        answer_early(wsi, t, KW_ERR_NOMEM, "Out of memory.");
        return;
    }
    t->body_cap = (size_t)length;
    t->body_expected = (size_t)length;
}

/* Appends body bytes, growing the buffer up to KW_HTTP_BODY_MAX; false when over it. */
static bool body_append(http_txn *t, const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    if (n > KW_HTTP_BODY_MAX - t->req.body_len)
        return false;
    size_t need = t->req.body_len + n;
    if (need > t->body_cap) {
        size_t cap = t->body_cap ? t->body_cap : CHUNKED_INITIAL;
        while (cap < need)
            cap *= 2;
        if (cap > KW_HTTP_BODY_MAX)
            cap = KW_HTTP_BODY_MAX;
        uint8_t *grown = realloc(t->body, cap);
        if (grown == NULL)
            return false;
        t->body = grown;
        t->body_cap = cap;
    }
    memcpy(t->body + t->req.body_len, p, n);
    t->req.body_len += n;
    return true;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

typedef enum chunk_result {
    CHUNK_MORE,
    CHUNK_COMPLETE,
    CHUNK_MALFORMED,
    CHUNK_TOO_LARGE
} chunk_result;

/* Feeds received bytes to the chunked decoder; bytes after the last chunk are ignored. */
static chunk_result chunk_feed(http_txn *t, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && t->chunk != CHUNK_DONE; i++) {
        uint8_t c = p[i];
        switch (t->chunk) {
        case CHUNK_SIZE: {
            int d = hex_digit(c);
            if (d >= 0) {
                /* Seven hex digits already exceed the body limit: stop counting there. */
                if (t->chunk_digits == 7)
                    return CHUNK_TOO_LARGE;
                t->chunk_left = t->chunk_left * 16 + (size_t)d;
                t->chunk_digits++;
                if (t->chunk_left > KW_HTTP_BODY_MAX - t->req.body_len)
                    return CHUNK_TOO_LARGE;
            } else if (t->chunk_digits > 0 && (c == ';' || c == ' ' || c == '\t')) {
                t->chunk = CHUNK_EXT;
            } else if (t->chunk_digits > 0 && c == '\r') {
                t->chunk = CHUNK_SIZE_LF;
            } else {
                return CHUNK_MALFORMED;
            }
            break;
        }
        case CHUNK_EXT:
            if (c == '\r')
                t->chunk = CHUNK_SIZE_LF;
            else if (c == '\n')
                return CHUNK_MALFORMED;
            break;
        case CHUNK_SIZE_LF:
            if (c != '\n')
                return CHUNK_MALFORMED;
            t->chunk_digits = 0;
            t->chunk = t->chunk_left == 0 ? CHUNK_TRAILER : CHUNK_DATA;
            break;
        case CHUNK_DATA: {
            size_t take = n - i < t->chunk_left ? n - i : t->chunk_left;
            if (!body_append(t, p + i, take))
                return CHUNK_TOO_LARGE;
            t->chunk_left -= take;
            i += take - 1;
            if (t->chunk_left == 0)
                t->chunk = CHUNK_DATA_CR;
            break;
        }
        case CHUNK_DATA_CR:
            if (c != '\r')
                return CHUNK_MALFORMED;
            t->chunk = CHUNK_DATA_LF;
            break;
        case CHUNK_DATA_LF:
            if (c != '\n')
                return CHUNK_MALFORMED;
            t->chunk = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER:
            if (c == '\r')
                t->chunk = CHUNK_FINAL_LF;
            else if (c == '\n')
                return CHUNK_MALFORMED;
            else
                t->chunk = CHUNK_TRAILER_LINE;
            break;
        case CHUNK_TRAILER_LINE:
            if (c == '\r')
                t->chunk = CHUNK_TRAILER_LF;
            else if (c == '\n')
                return CHUNK_MALFORMED;
            break;
        case CHUNK_TRAILER_LF:
            if (c != '\n')
                return CHUNK_MALFORMED;
            t->chunk = CHUNK_TRAILER;
            break;
        case CHUNK_FINAL_LF:
            if (c != '\n')
                return CHUNK_MALFORMED;
            t->chunk = CHUNK_DONE;
            break;
        case CHUNK_DONE:
            break;
        }
    }
    return t->chunk == CHUNK_DONE ? CHUNK_COMPLETE : CHUNK_MORE;
}

static void on_body(struct lws *wsi, http_txn *t, const uint8_t *p, size_t n)
{
    if (t->phase != PHASE_READING)
        return; /* already answered (413 or malformed): the rest is dropped */
    if (!t->chunked) {
        if (!body_append(t, p, n) || t->req.body_len > t->body_expected)
            answer_early(wsi, t, KW_ERR_INVALID_MESSAGE, "More body than Content-Length.");
        return;
    }
    switch (chunk_feed(t, p, n)) {
    case CHUNK_MORE:
        return;
    case CHUNK_COMPLETE:
        dispatch(wsi, t);
        return;
    case CHUNK_MALFORMED:
        answer_early(wsi, t, KW_ERR_INVALID_MESSAGE, "Malformed chunked request body.");
        return;
    case CHUNK_TOO_LARGE:
        answer_early(wsi, t, KW_ERR_PAYLOAD_TOO_LARGE, "The request body is over 65536 bytes.");
        return;
    }
}

/* ---- writing the reply ---------------------------------------------------------------- */

static int add_header(struct lws *wsi, const char *name, const char *value, uint8_t **p,
                      uint8_t *end)
{
    return lws_add_http_header_by_name(wsi, (const uint8_t *)name, (const uint8_t *)value,
                                       (int)strlen(value), p, end);
}

static int write_headers(struct lws *wsi, http_txn *t)
{
    uint8_t buf[LWS_PRE + HEADERS_MAX];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    const kw_response *res = &t->res;
    const char *type = res->content_type ? res->content_type : KW_CONTENT_TYPE_JSON;
    if (lws_add_http_common_headers(wsi, res->status, type, res->body_len, &p, end))
        return -1;
    if (res->retry_after_s > 0) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)res->retry_after_s);
        if (add_header(wsi, "retry-after:", v, &p, end))
            return -1;
    }
    if (res->location != NULL && add_header(wsi, "location:", res->location, &p, end))
        return -1;
    if (res->allow != NULL && add_header(wsi, "allow:", res->allow, &p, end))
        return -1;
    if ((t->close_after || server_of(wsi)->http->draining) &&
        add_header(wsi, "connection:", "close", &p, end))
        return -1;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

static void log_access(const http_txn *t)
{
    char path[KW_LOG_VALUE_MAX];
    int64_t us = monotonic_us() - t->started_us;
    kw_log(KW_LOG_INFO, "http", "method=%s path=%s status=%u ms=%.3f bytes=%zu", t->req.method_name,
           kw_log_value(path, sizeof path, t->dispatch.log_path), t->res.status,
           (double)us / 1000.0, t->sent);
}

/*
 * The reply is out: count and log it, then keep the connection for the next request, or
 * close it. can_wait: closing may wait for a WRITEABLE callback until lws has flushed
 * what it still holds (so kw_http_drain does not cut it off); otherwise lws flushes it
 * on its own before closing (up to 5 s).
 */
static int finish_reply(struct lws *wsi, http_session *s, bool can_wait)
{
    http_txn *t = s->txn;
    kw_server *srv = t->srv;
    srv->http_requests++;
    unsigned cls = t->res.status / 100;
    if (cls >= 1 && cls <= 5)
        srv->http_status_classes[cls - 1]++;
    log_access(t);
    bool close = t->close_after || srv->http->draining;
    if (close && can_wait && lws_partial_buffered(wsi)) {
        t->phase = PHASE_FLUSH;
        lws_callback_on_writable(wsi);
        return 0;
    }
    session_end_txn(s);
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

typedef enum step { STEP_MORE, STEP_DONE, STEP_ERROR } step;

/* Writes the next piece of the reply: the headers, or one body slice. */
static step write_step(struct lws *wsi, http_txn *t)
{
    if (t->phase == PHASE_HEADERS) {
        if (write_headers(wsi, t) != 0)
            return STEP_ERROR;
        if (t->head || t->res.body_len == 0)
            return STEP_DONE;
        t->phase = PHASE_BODY;
        return STEP_MORE;
    }
    uint8_t buf[LWS_PRE + SLICE_BYTES];
    size_t left = t->res.body_len - t->sent;
    size_t n = left < SLICE_BYTES ? left : SLICE_BYTES;
    bool last = n == left;
    memcpy(buf + LWS_PRE, t->res.body + t->sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
        return STEP_ERROR;
    t->sent += n;
    return last ? STEP_DONE : STEP_MORE;
}

static int on_writeable(struct lws *wsi, http_session *s)
{
    http_txn *t = s->txn;
    if (t == NULL || t->phase == PHASE_READING)
        return 0; /* spurious wake-up: nothing queued */
    if (t->phase == PHASE_FLUSH) {
        if (lws_partial_buffered(wsi)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        session_end_txn(s);
        return -1;
    }
    switch (write_step(wsi, t)) {
    case STEP_MORE:
        lws_callback_on_writable(wsi);
        return 0;
    case STEP_DONE:
        return finish_reply(wsi, s, true);
    case STEP_ERROR:
        return -1;
    }
    return -1;
}

/*
 * The end of a Content-Length body. The reply normally goes out from WRITEABLE like any
 * other. But lws 4.1 stays in its body state until the transaction completes, and when
 * the client has pipelined another request behind this one it announces the end of the
 * body again and again, from a loop that never returns to the event loop (and that
 * completing the transaction here would not end either). So a second announcement means
 * "pipelined after a body": the reply is written at once (lws keeps what the socket does
 * not take and flushes it before closing) and the connection closes; HTTP/1.1 clients
 * retry unanswered pipelined requests on a new connection.
 */
static int on_body_complete(struct lws *wsi, http_session *s)
{
    http_txn *t = s->txn;
    if (++t->completions == 1) {
        if (t->phase != PHASE_READING || t->chunked)
            return 0; /* already answered; a chunked end is found by chunk_feed */
        if (t->req.body_len != t->body_expected)
            answer_early(wsi, t, KW_ERR_INVALID_MESSAGE,
                         "The body is shorter than Content-Length.");
        else
            dispatch(wsi, t);
        return 0;
    }
    t->close_after = true;
    if (t->phase == PHASE_READING) {
        /* Cannot happen: the first announcement dispatched it. */
        session_end_txn(s);
        return -1;
    }
    for (;;) {
        switch (t->phase == PHASE_FLUSH ? STEP_DONE : write_step(wsi, t)) {
        case STEP_MORE:
            continue;
        case STEP_DONE:
            if (t->phase == PHASE_FLUSH) {
                session_end_txn(s);
                return -1;
            }
            return finish_reply(wsi, s, false);
        case STEP_ERROR:
            return -1;
        }
    }
}

/* ---- the callback --------------------------------------------------------------------- */

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    http_session *s = user;
    kw_server *srv;
    /* Switch on int: lws has some hundred reasons and -Wswitch-enum would want each. */
    switch ((int)reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* Draining: the kernel accepted it, lws closes it at once. */
        srv = server_of(wsi);
        return srv->http != NULL && srv->http->draining ? 1 : 0;
    case LWS_CALLBACK_WSI_CREATE:
        server_of(wsi)->http_connections++;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        srv = server_of(wsi);
        if (srv->http_connections > 0)
            srv->http_connections--;
        return 0;
    case LWS_CALLBACK_HTTP:
        if (s == NULL)
            return -1;
        session_end_txn(s); /* cannot be set: a new request starts after the last ended */
        s->txn = txn_new(wsi, server_of(wsi));
        if (s->txn == NULL)
            return -1; /* out of memory: drop the connection rather than answer wrongly */
        begin_request(wsi, s->txn);
        return 0;
    case LWS_CALLBACK_HTTP_BODY:
        if (s != NULL && s->txn != NULL)
            on_body(wsi, s->txn, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return s != NULL && s->txn != NULL ? on_body_complete(wsi, s) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return s != NULL ? on_writeable(wsi, s) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        /* lws frees the per-session block after these: the transaction goes with it. */
        session_end_txn(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- WebSocket: the Socket.IO endpoint (rt.h does the work) ---------------------------- */

/* Bytes of a large frame per lws_write; a frame up to this size goes out without a copy. */
#define WS_SLICE_BYTES 16384
/* lws reads WebSocket data in pieces of this size (rt.c reassembles larger messages). */
#define WS_RX_BYTES 4096

size_t kw_http_ws_headroom(void)
{
    return LWS_PRE;
}

void kw_http_ws_wake(void *arg, void *handle)
{
    (void)arg;
    lws_callback_on_writable((struct lws *)handle);
}

/* ---- the WebSocket heartbeat --------------------------------------------------------
 * One timer for all connections: every HB_TICK_US the open connections whose Engine.IO
 * clock is due are ticked (pings, pong and connect timeouts). A walk is a comparison per
 * connection; per-connection lws timers cost a sorted-list insertion each, linear in the
 * number of connections (86 % of a core at 19 000 idle sockets, bench/README.md). */
#define HB_TICK_US (250 * LWS_USEC_PER_SEC / 1000)

static void hb_link(struct kw_http *http, kw_rt_conn *c, int64_t next_ms)
{
    c->hb_due_ms = next_ms;
    c->hb_prev = NULL;
    c->hb_next = http->hb_head;
    if (http->hb_head != NULL)
        http->hb_head->hb_prev = c;
    http->hb_head = c;
}

static void hb_unlink(struct kw_http *http, kw_rt_conn *c)
{
    if (c->hb_prev != NULL)
        c->hb_prev->hb_next = c->hb_next;
    else if (http->hb_head == c)
        http->hb_head = c->hb_next;
    else
        return; /* never linked */
    if (c->hb_next != NULL)
        c->hb_next->hb_prev = c->hb_prev;
    c->hb_prev = c->hb_next = NULL;
}

/* A connection the heartbeat found dead or failing: closed at the next service, with its
 * close code when it has one. */
static void hb_close(kw_rt_conn *c)
{
    struct lws *wsi = c->handle;
    unsigned code = kw_rt_conn_close_code(c);
    lws_close_reason(wsi, (enum lws_close_status)(code != 0 ? code : 1011), NULL, 0);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    c->hb_due_ms = INT64_MAX;
}

static void on_heartbeat(lws_sorted_usec_list_t *sul)
{
    struct kw_http *http = (struct kw_http *)(void *)((char *)sul - offsetof(struct kw_http, hb));
    kw_server *srv = lws_context_user(http->context);
    int64_t now = wall_clock_ms();
    for (kw_rt_conn *c = http->hb_head; c != NULL && srv != NULL && srv->rt != NULL;
         c = c->hb_next) {
        if (c->hb_due_ms > now)
            continue;
        int64_t next_ms;
        if (kw_rt_conn_tick(srv->rt, c, now, &next_ms) == KW_RT_CLOSE)
            hb_close(c);
        else
            c->hb_due_ms = next_ms;
    }
    lws_sul_schedule(http->context, 0, &http->hb, on_heartbeat, HB_TICK_US);
}

/* Rebuilds path and query as txn_new does and asks rt.c whether the upgrade is ours. */
static bool ws_upgrade_ok(struct lws *wsi)
{
    size_t path_raw, query_raw;
    int path_frags = count_fragments(wsi, WSI_TOKEN_GET_URI, &path_raw);
    int query_frags = count_fragments(wsi, WSI_TOKEN_HTTP_URI_ARGS, &query_raw);
    if (path_frags <= 0 || query_frags < 0)
        return false;
    char *buf = malloc(3 * path_raw + 1 + 3 * query_raw + 1);
    if (buf == NULL)
        return false;
    char *query = append_fragments(buf, wsi, WSI_TOKEN_GET_URI, path_frags, false, keep_in_path);
    bool ok = query != NULL && append_fragments(query, wsi, WSI_TOKEN_HTTP_URI_ARGS, query_frags,
                                                true, keep_in_query) != NULL;
    kw_error err;
    ok = ok && kw_rt_check_upgrade(buf, query, &err) == KW_OK;
    free(buf);
    return ok;
}

static int ws_close(struct lws *wsi, const kw_rt_conn *c)
{
    unsigned code = kw_rt_conn_close_code(c);
    if (code != 0)
        lws_close_reason(wsi, (enum lws_close_status)code, NULL, 0);
    return -1;
}

/* Holds reading while the connection's queue is over its limit (rt.h), resumes after. */
static void ws_flow(struct lws *wsi, kw_rt_conn *c)
{
    int want_paused = kw_rt_conn_rx_paused(c);
    if (want_paused != c->rx_paused) {
        c->rx_paused = (uint8_t)want_paused;
        lws_rx_flow_control(wsi, !want_paused);
    }
}

/* One lws_write per callback: a whole small frame, or one slice of a large one. */
static int ws_writeable(struct lws *wsi, kw_rt *rt, kw_rt_conn *c)
{
    char *text;
    size_t len;
    int whole;
    if (!kw_rt_conn_peek(rt, c, &text, &len, &whole))
        return kw_rt_conn_close_code(c) ? ws_close(wsi, c) : 0; /* spurious, or closing */
    if (whole && len <= WS_SLICE_BYTES) {
        if (lws_write(wsi, (unsigned char *)text, len, LWS_WRITE_TEXT) < (int)len)
            return -1;
        kw_rt_conn_written(rt, c, len);
    } else {
        /* The frame may be shared by no one, but its bytes before a slice are not ours to
         * overwrite with a header: slices go through a buffer with headroom. */
        unsigned char buf[LWS_PRE + WS_SLICE_BYTES];
        size_t n = len < WS_SLICE_BYTES ? len : WS_SLICE_BYTES;
        memcpy(buf + LWS_PRE, text, n);
        int flags = whole ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
        if (n < len)
            flags |= LWS_WRITE_NO_FIN;
        if (lws_write(wsi, buf + LWS_PRE, n, (enum lws_write_protocol)flags) < (int)n)
            return -1;
        kw_rt_conn_written(rt, c, n);
    }
    ws_flow(wsi, c);
    if (kw_rt_conn_peek(rt, c, &text, &len, &whole) || kw_rt_conn_close_code(c))
        lws_callback_on_writable(wsi); /* more to write, or the close after the last */
    return 0;
}

static int callback_socketio(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    if (wsi == NULL)
        return 0; /* vhost-level callbacks without a connection: nothing of ours */
    kw_rt_conn *c = user;
    kw_server *srv = server_of(wsi);
    kw_rt *rt = srv->rt;
    int64_t next_ms;
    switch ((int)reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (rt == NULL || c == NULL || (srv->http != NULL && srv->http->draining))
            return -1;
        return ws_upgrade_ok(wsi) ? 0 : -1;
    case LWS_CALLBACK_ESTABLISHED:
        if (rt == NULL || c == NULL || srv->http == NULL ||
            kw_rt_conn_open(rt, c, wsi, wall_clock_ms(), &next_ms) != KW_OK)
            return -1;
        hb_link(srv->http, c, next_ms);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (rt == NULL || c == NULL)
            return -1;
        if (kw_rt_conn_receive(rt, c, in, len, lws_is_first_fragment(wsi),
                               lws_is_final_fragment(wsi), lws_frame_is_binary(wsi),
                               wall_clock_ms()) == KW_RT_CLOSE)
            return ws_close(wsi, c);
        ws_flow(wsi, c);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return rt != NULL && c != NULL ? ws_writeable(wsi, rt, c) : -1;
    case LWS_CALLBACK_CLOSED:
        if (c != NULL && srv->http != NULL)
            hb_unlink(srv->http, c);
        if (rt != NULL && c != NULL)
            kw_rt_conn_closed(rt, c, wall_clock_ms());
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(http_session), 0, 0, NULL, 0},
    /* Socket.IO clients send no Sec-WebSocket-Protocol: "default" (below) picks this one. */
    {"socket.io", callback_socketio, sizeof(kw_rt_conn), WS_RX_BYTES, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Makes "socket.io" the vhost's protocol for WebSocket upgrades without a protocol name. */
static const struct lws_protocol_vhost_options ws_default = {NULL, NULL, "default", ""};
static const struct lws_protocol_vhost_options ws_pvo = {NULL, &ws_default, "socket.io", ""};

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
    lws_sul_schedule(http->context, 0, &http->tick, on_tick,
                     http->draining ? DRAIN_TICK_US : TICK_US);
}

/* ---- Content-Security-Policy (DESIGN.md section 10) ---------------------------------- */

/*
 * The origin (scheme://host[:port]) of a URL config.c accepted, lower-cased, or false
 * when it has characters an origin cannot (a user-info part is dropped, never copied
 * into a header).
 */
static bool url_origin(const char *url, char *out, size_t cap)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return false;
    const char *host = sep + 3;
    size_t auth_len = strcspn(host, "/");
    for (size_t i = auth_len; i > 0; i--)
        if (host[i - 1] == '@') {
            auth_len -= i;
            host += i;
            break;
        }
    size_t scheme_len = (size_t)(sep - url);
    if (auth_len == 0 || scheme_len + 3 + auth_len + 1 > cap)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < scheme_len; i++) {
        char c = url[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
        out[n++] = (char)(c | 0x20);
    }
    memcpy(out + n, "://", 3);
    n += 3;
    for (size_t i = 0; i < auth_len; i++) {
        char c = host[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']'))
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

static void build_csp(const kw_config *cfg, char out[CSP_MAX])
{
    char origin[ORIGIN_MAX] = "";
    if (cfg->livekit_url != NULL && !url_origin(cfg->livekit_url, origin, sizeof origin)) {
        origin[0] = '\0';
        kw_log(KW_LOG_WARN, "csp_origin_skipped",
               "detail=\"LIVEKIT_URL has no plain scheme://host[:port] origin; connect-src "
               "stays 'self'\"");
    }
    /* livekit-client talks to one LiveKit host both ways: WebSocket for signalling and
     * fetch for /rtc/validate, so the origin is allowed under both schemes. */
    char twin[ORIGIN_MAX + 2] = "";
    static const char *const pairs[][2] = {
        {"wss://", "https://"}, {"ws://", "http://"}, {"https://", "wss://"}, {"http://", "ws://"}};
    for (size_t i = 0; origin[0] && i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t n = strlen(pairs[i][0]);
        if (strncmp(origin, pairs[i][0], n) == 0) {
            snprintf(twin, sizeof twin, " %s%s", pairs[i][1], origin + n);
            break;
        }
    }
    snprintf(out, CSP_MAX,
             "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
             "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'%s%s%s; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
             origin[0] ? " " : "", origin, twin);
}

/* ---- start, loop, drain, stop --------------------------------------------------------- */

kw_err kw_http_start(kw_server *srv, kw_error *err)
{
    if (srv->http != NULL)
        return kw_error_set(err, KW_ERR_STATE, "the HTTP layer is already started");
    kw_err rc = kw_router_check(srv->routes, err);
    if (rc != KW_OK)
        return rc;
    const kw_config *cfg = &srv->config;
    struct kw_http *http = calloc(1, sizeof *http);
    if (http == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");

    lws_set_log_level(LLL_ERR | LLL_WARN, emit_lws_log);

    /* Headers lws adds to every response, its own error pages included. The policy and
     * the referrer rule are DESIGN.md section 10's for HTML; a JSON reply ignores them. */
    build_csp(cfg, http->csp);
    static const char *const names[] = {"cache-control:", "x-content-type-options:",
                                        "content-security-policy:", "referrer-policy:"};
    const char *values[] = {"no-store", "nosniff", http->csp, "no-referrer"};
    for (size_t i = 0; i < 4; i++) {
        http->headers[i].next = i + 1 < 4 ? &http->headers[i + 1] : NULL;
        http->headers[i].name = names[i];
        http->headers[i].value = values[i];
    }

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
    info.pvo = &ws_pvo;
    info.headers = &http->headers[0];
    /* HTTP/1.1 only: every request goes through the path and header handling above. */
    info.alpn = "http/1.1";
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
    /* Callbacks during vhost creation may already look for srv->http. */
    srv->http = http;
    http->vhost = lws_create_vhost(http->context, &info);
    if (http->vhost == NULL) {
        srv->http = NULL;
        rc = kw_error_set(err, KW_ERR_IO,
                          "cannot listen on %.64s%s (address in use, not local, or bad "
                          "TLS files?)",
                          cfg->listen, cfg->tls_cert ? " with TLS" : "");
        goto fail;
    }

    lws_sul_schedule(http->context, 0, &http->tick, on_tick, TICK_US);
    lws_sul_schedule(http->context, 0, &http->hb, on_heartbeat, HB_TICK_US);
    srv->started_ms = wall_clock_ms();
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

void kw_http_drain(kw_server *srv, int64_t timeout_ms)
{
    if (srv == NULL || srv->http == NULL)
        return;
    struct kw_http *http = srv->http;
    http->draining = true;
    lws_sul_schedule(http->context, 0, &http->tick, on_tick, DRAIN_TICK_US);
    int64_t deadline_us = monotonic_us() + timeout_ms * 1000;
    while (srv->http_in_flight > 0 && monotonic_us() < deadline_us)
        if (lws_service(http->context, 0) < 0)
            break;
    if (srv->http_in_flight > 0)
        kw_log(KW_LOG_WARN, "drain_timeout", "in_flight=%u timeout_ms=%lld",
               (unsigned)srv->http_in_flight, (long long)timeout_ms);
}

void kw_http_stop(kw_server *srv)
{
    if (srv == NULL || srv->http == NULL)
        return;
    lws_sul_cancel(&srv->http->tick);
    lws_sul_cancel(&srv->http->hb);
    kw_rt_shutdown(srv->rt); /* the connections close together: nobody to tell */
    lws_context_destroy(srv->http->context);
    free(srv->http);
    srv->http = NULL;
}
