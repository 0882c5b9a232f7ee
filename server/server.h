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

#include <stdint.h>

#include "config.h"
#include "keywave/err.h"

struct kw_http; /* the lws context and listener; private to http_lws.c */
struct kw_db;   /* the storage interface (db.h) */

typedef struct kw_server {
    /* Configuration */
    kw_config config; /* owned; read-only once the server listens */

    /* Listeners */
    struct kw_http *http; /* owned; NULL until kw_http_start succeeds */

    /* Storage */
    struct kw_db *db; /* owned; opened by main() before listening (db.h) */

    /* Counters (since start) */
    uint64_t http_requests; /* HTTP responses completed */
} kw_server;

/*
 * Creates the lws context and starts listening on srv->config's address (HTTPS when a
 * certificate is configured). Logs nothing itself except through lws's own error lines.
 * On success srv->http is set; stop it with kw_http_stop.
 * Errors: KW_ERR_IO (the address cannot be bound, or TLS setup failed), KW_ERR_NOMEM,
 * KW_ERR_STATE (already started).
 */
kw_err kw_http_start(kw_server *srv, kw_error *err) KW_MUST_CHECK;

/*
 * Runs one turn of the event loop: waits for activity (at most about a second, so a
 * caller polling a stop flag sees it soon) and runs every ready callback to completion.
 * Errors: KW_ERR_STATE (not started), KW_ERR_IO (the loop failed; stop the server).
 */
kw_err kw_http_service(kw_server *srv, kw_error *err) KW_MUST_CHECK;

/* Closes every connection and the listener and frees srv->http. Safe if not started. */
void kw_http_stop(kw_server *srv);

#endif
