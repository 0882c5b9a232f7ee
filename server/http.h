/*
 * http.h — keywaved's HTTP layer as handlers see it: a request, a response, a route table.
 *
 * http_lws.c turns lws callbacks into a kw_request (method, raw target, the headers keywave
 * uses, the whole body up to KW_HTTP_BODY_MAX), router.c matches it against the route
 * tables of the api_*.c files (path parameters included), runs the route's authentication,
 * then calls its handler. Handlers see only keywave types and never a socket: they fill a
 * kw_response, or return a kw_err whose HTTP status comes from one switch
 * (kw_http_status) and whose body is {error, detail}.
 */
#ifndef KEYWAVE_SERVER_HTTP_H
#define KEYWAVE_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_HTTP_BODY_MAX   65536 /* request bodies above this are 413 (INV-11) */
#define KW_HTTP_PARAMS_MAX 4     /* path parameters in one route */
#define KW_HTTP_ID_MAX     128   /* longest id kept for a caller */

typedef enum kw_method {
    KW_GET = 1,
    KW_POST = 2,
    KW_PUT = 3,
    KW_PATCH = 4,
    KW_DELETE = 5,
    KW_HEAD = 6,
    KW_OTHER_METHOD = 7,
} kw_method;

/* Who a route admits; the router checks it before the handler runs. */
typedef enum kw_auth {
    KW_AUTH_NONE = 0,   /* anyone */
    KW_AUTH_MEMBER = 1, /* a signed member request (DESIGN.md section 4) */
    KW_AUTH_GUEST = 2,  /* Authorization: Bearer <guest_secret> */
    KW_AUTH_EITHER = 3, /* member or guest; the handler looks at caller.kind */
} kw_auth;

typedef enum kw_caller_kind {
    KW_CALLER_ANON = 0,
    KW_CALLER_MEMBER = 1,
    KW_CALLER_GUEST = 2
} kw_caller_kind;

/* The authenticated caller, filled by the router. */
typedef struct kw_caller {
    kw_caller_kind kind;
    char user_id[KW_HTTP_ID_MAX + 1];    /* member */
    char device_id[KW_HTTP_ID_MAX + 1];  /* member: decimal string */
    char session_id[KW_HTTP_ID_MAX + 1]; /* guest */
    char meeting_id[KW_HTTP_ID_MAX + 1]; /* guest: the meeting of its session */
} kw_caller;

typedef struct kw_request {
    kw_method method;
    const char *method_name; /* "GET", ... as sent */
    const char *path;        /* path as sent, still percent-encoded */
    const char *query;       /* query string without '?', "" when none */
    const char *target;      /* path, plus "?query" when the query is non-empty (signing) */
    const uint8_t *body;     /* raw body bytes (not NUL-terminated); NULL when empty */
    size_t body_len;
    /* Headers keywave uses; NULL when absent. */
    const char *client_id, *timestamp, *nonce, *signature; /* X-Client-ID ... X-Signature */
    const char *authorization;                             /* Authorization */
    const char *accept;                                    /* Accept */
    /* Path parameters in route order, percent-decoded; validated by the router to be
     * 1..KW_HTTP_ID_MAX printable ASCII bytes. */
    const char *params[KW_HTTP_PARAMS_MAX];
    size_t n_params;
    int64_t now_ms; /* wall clock at the start of the request, ms since the epoch */
    kw_caller caller;
} kw_request;

/* What a handler answers. body is malloc'd and owned by the response (kw_response_free). */
typedef struct kw_response {
    unsigned status;          /* 200 unless set */
    const char *content_type; /* static; NULL means application/json */
    char *body;               /* owned */
    size_t body_len;
    int html;              /* 1: add the Content-Security-Policy of DESIGN.md section 10 */
    int64_t retry_after_s; /* > 0: a Retry-After header */
    const char *location;  /* static or owned by the server: a Location header (302) */
    const char *allow;     /* static: an Allow header (405) */
} kw_response;

struct kw_server;
struct json_t; /* jansson's json_t: handlers build replies with jansson */

/*
 * One handler signature for every route. The caller's identity is already checked and in
 * req->caller. On KW_OK the response is sent as filled; on an error the router answers
 * {error: kw_err_name(code), detail: err->detail} with kw_http_status(code), unless the
 * handler already put a body in res (for 409s that carry extra fields).
 */
typedef kw_err (*kw_handler)(struct kw_server *srv, const kw_request *req, kw_response *res,
                             kw_error *err);

/*
 * A row of a route table. pattern is a path with ":name" segments for parameters
 * ("/api/meetings/:id/external/:sid/admit"); a table ends with a row whose pattern is NULL.
 */
typedef struct kw_route {
    kw_method method;
    const char *pattern;
    kw_auth auth;
    kw_handler handler;
} kw_route;

/* The HTTP status of a code: exactly one per code. */
unsigned kw_http_status(kw_err code);

/* Sets res to status with a copy of the JSON text json (body owned by res). */
kw_err kw_response_json(kw_response *res, unsigned status, const char *json);

/*
 * Sets res to {error, detail} for code with kw_http_status(code). detail NULL or "" means
 * kw_strerror(code); bytes outside printable ASCII become '?'. retry_after_s, location
 * and allow are kept (a 429 keeps its Retry-After); any previous body is freed.
 */
kw_err kw_response_error(kw_response *res, kw_err code, const char *detail);

/* Frees the body. */
void kw_response_free(kw_response *res);

/* ---- additions (http_response.c) ------------------------------------------------------ */

/* Content types the helpers below set (static strings). */
#define KW_CONTENT_TYPE_JSON "application/json"
#define KW_CONTENT_TYPE_HTML "text/html; charset=utf-8"
#define KW_CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

/* Sets res to an empty 200 response (what the router hands a handler). */
void kw_response_init(kw_response *res);

/*
 * Sets res to status with obj (a jansson json_t) serialised as compact JSON. Takes obj:
 * its reference is dropped on every path, success or not, so
 * `return kw_response_take_json(res, 201, json_pack(...));` is safe even when json_pack
 * returned NULL. Any previous body is freed.
 * Errors: KW_ERR_NOMEM (obj NULL or serialising failed; res keeps no body).
 */
kw_err kw_response_take_json(kw_response *res, unsigned status, struct json_t *obj);

/*
 * Sets res to status with a copy of len bytes of body and the given content type
 * (static; NULL means application/json). Any previous body is freed. Errors: KW_ERR_NOMEM.
 */
kw_err kw_response_bytes(kw_response *res, unsigned status, const char *content_type,
                         const void *body, size_t len);

/*
 * Sets res to an HTML page: a copy of len bytes of html, text/html; charset=utf-8, and
 * res->html = 1 so the Content-Security-Policy of DESIGN.md section 10 and
 * Referrer-Policy: no-referrer go with it. Errors: KW_ERR_NOMEM.
 */
kw_err kw_response_html(kw_response *res, unsigned status, const char *html, size_t len);

#endif
