/*
 * server.h — keywaved's state and the HTTP layer's entry points.
 *
 * All server state lives in one struct kw_server, created by main() and reached from lws
 * callbacks through the context's user pointer (never a global), so a test could run two.
 * The HTTP layer (http_lws.c) is the only file that includes libwebsockets.h; what it
 * exposes here names no lws type.
 */
#ifndef KEYWAVE_SERVER_SERVER_H
#define KEYWAVE_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "keywave/err.h"

struct kw_server;
struct kw_http;    /* the lws context and listener; private to http_lws.c */
struct kw_db;      /* the storage interface (db.h) */
struct kw_request; /* http.h */
struct kw_route;   /* http.h */

struct kw_rate_limit; /* rate_limit.h */
struct kw_rt;         /* rt.h */

/*
 * How the router authenticates a request (router.h): fills req->caller or fails with a
 * kw_err whose status is 401 (or 500 when the store fails). See auth.h.
 */
typedef kw_err (*kw_authenticate_fn)(struct kw_server *srv, struct kw_request *req, kw_error *err);

typedef struct kw_server {
    /* Configuration */
    kw_config config; /* owned; read-only once the server listens */

    /* Listeners */
    struct kw_http *http; /* owned; NULL until kw_http_start succeeds */

    /* Storage */
    struct kw_db *db; /* owned; opened by main() before listening (db.h) */

    /* Presence (presence.h): who is in which video channel now; in memory on one node */
    struct kw_presence *presence; /* owned; created by main() before listening */

    /* Realtime (rt.h): Socket.IO connections, namespaces, rooms */
    struct kw_rt *rt; /* owned; created by main() before listening; NULL: no WebSocket */

    /* Rate limits (rate_limit.h) */
    struct kw_rate_limit *bundle_limit; /* owned; INV-2, shared by every bundle route */

    /* Routing and authentication (router.h) */
    const struct kw_route *const *routes; /* NULL: router.c's tables; tests set their own */
    kw_authenticate_fn auth_member;       /* kw_auth_member once auth.c exists; NULL: 401 */
    kw_authenticate_fn auth_guest;        /* kw_auth_guest likewise */

    /* Counters (since start) */
    uint64_t http_requests;          /* HTTP responses completed */
    uint64_t http_status_classes[5]; /* of those, by class: [0] 1xx .. [4] 5xx */
    uint32_t http_connections;       /* HTTP connections open now */
    uint32_t http_in_flight;         /* requests received and not yet fully answered */
    int64_t started_ms;              /* wall clock when kw_http_start succeeded, ms */
} kw_server;

/*
 * Checks the route tables (kw_router_check), creates the lws context and starts
 * listening on srv->config's address (HTTPS when a certificate is configured). Logs
 * nothing itself except through lws's own error lines (and a warning when LIVEKIT_URL
 * has no usable origin for the Content-Security-Policy). On success srv->http is set and
 * srv->started_ms is the wall clock; stop it with kw_http_stop.
 * Errors: KW_ERR_IO (the address cannot be bound, or TLS setup failed), KW_ERR_NOMEM,
 * KW_ERR_STATE (already started), KW_ERR_INTERNAL (a route table is malformed).
 */
kw_err kw_http_start(kw_server *srv, kw_error *err) KW_MUST_CHECK;

/*
 * Runs one turn of the event loop: waits for activity (at most about a second, so a
 * caller polling a stop flag sees it soon) and runs every ready callback to completion.
 * Errors: KW_ERR_STATE (not started), KW_ERR_IO (the loop failed; stop the server).
 */
kw_err kw_http_service(kw_server *srv, kw_error *err) KW_MUST_CHECK;

/*
 * Graceful stop, after the loop was asked to end: takes no new connections (they are
 * accepted and closed at once) and services the loop until every request already
 * received has been answered and its reply handed to the kernel, or timeout_ms passed.
 * A connection whose request finished is closed rather than kept alive. Logs a warning
 * with the number of requests cut off when the time runs out. Safe if not started.
 */
void kw_http_drain(kw_server *srv, int64_t timeout_ms);

/*
 * For kw_rt_new (rt.h): the bytes a queued WebSocket frame keeps free before its text
 * (LWS_PRE), and the wake function asking for a WRITEABLE callback on a connection
 * (arg unused; handle is the connection the realtime module was given at open).
 */
size_t kw_http_ws_headroom(void);
void kw_http_ws_wake(void *arg, void *handle);

/* Closes every connection and the listener and frees srv->http. Safe if not started. */
void kw_http_stop(kw_server *srv);

#endif
