/*
 * router.h — from a parsed request to a response: finds the route, authenticates the
 * caller, runs the handler, and turns a failure into {error, detail}.
 *
 * Route tables. Each api_<name>.c exports `const kw_route kw_routes_<name>[]`, ended by a
 * row whose pattern is NULL; router.c lists them in one place (its `tables[]`, one line
 * per table, plus one extern line). srv->routes, when set, replaces that list (tests).
 * Rows are checked at start-up by kw_router_check.
 *
 * Matching, in this order, before any authentication:
 *   1. The path is split at '/' into segments. A pattern segment "name" matches the same
 *      bytes (case-sensitive); ":name" matches one segment whose percent-decoding is
 *      1..KW_HTTP_ID_MAX bytes of printable ASCII (0x20..0x7e) without '/'. A segment that
 *      fails this does not match, so a malformed id is a 404 like an unknown path (it
 *      cannot name a stored resource). Empty segments ("//", a trailing '/') never match.
 *   2. No pattern matches the path: 404 not_found, for every method and every caller.
 *   3. Patterns match but no row has the method: 405 method_not_allowed with an Allow
 *      header listing every method of those rows. A GET row also answers HEAD (the
 *      handler runs with req->method == KW_HEAD; the adapter sends only the headers).
 *   4. Several rows match path and method: the most specific wins — comparing segment by
 *      segment, a literal beats a parameter at the first difference; then table order.
 * Authentication by the row's auth column:
 *   KW_AUTH_NONE   caller.kind = KW_CALLER_ANON.
 *   KW_AUTH_MEMBER srv->auth_member(srv, req, err).
 *   KW_AUTH_GUEST  srv->auth_guest(srv, req, err).
 *   KW_AUTH_EITHER member when any of X-Client-ID, X-Timestamp, X-Nonce, X-Signature is
 *                  present, else guest when Authorization is present, else 401
 *                  unauthorized.
 *   A NULL authenticator (auth.c not plugged in) answers 401 unauthorized. An
 *   authenticator that returns KW_OK without setting caller.kind to the expected kind is
 *   a bug: 500 internal.
 * Then the handler runs with res initialised by kw_response_init (200, no body). On an
 * error it answers {error: kw_err_name(code), detail} with kw_http_status(code) (detail:
 * err->detail, or kw_strerror(code) when empty) keeping res's retry_after_s and location;
 * if the handler already put a body in res, that body is sent, with kw_http_status(code)
 * as status unless the handler set one of 400 or more.
 *
 * Secrets in paths (INV-8): a parameter whose name ends in "token" or "secret"
 * (":token", ":invitationToken") is shown as its pattern name in the access-log path.
 */
#ifndef KEYWAVE_SERVER_ROUTER_H
#define KEYWAVE_SERVER_ROUTER_H

#include <stddef.h>

#include "http.h"
#include "keywave/err.h"

struct kw_server;

#define KW_ROUTER_ALLOW_MAX    48  /* "GET, HEAD, POST, PUT, PATCH, DELETE" and a NUL */
#define KW_ROUTER_LOG_PATH_MAX 160 /* the access-log path, cut with "..." beyond this */
#define KW_ROUTER_SEGMENTS_MAX 16  /* a path with more segments matches nothing */

/* What the router tells the HTTP adapter besides the response. */
typedef struct kw_dispatch {
    char allow[KW_ROUTER_ALLOW_MAX]; /* Allow of a 405 ("" otherwise); res->allow points here */
    char log_path[KW_ROUTER_LOG_PATH_MAX]; /* path for the access log: no query, secret
                                              parameters replaced by their names */
    const kw_route *route;                 /* the row that ran, or NULL (404, 405) */
} kw_dispatch;

/*
 * Answers one request with the route tables in effect (srv->routes, or router.c's list).
 * req: filled by the adapter (method, method_name, path, query, target, headers, body,
 * now_ms); the router sets params/n_params for the handler's call (and clears them after,
 * since they point into its own stack) and caller. res: set by the router and the handler;
 * always holds a status afterwards (a body too, unless allocation failed — then 500 and
 * no body); the caller frees it with kw_response_free. out: see kw_dispatch; res->allow
 * may point into out, so keep out alive as long as res.
 */
void kw_router_dispatch(struct kw_server *srv, kw_request *req, kw_response *res, kw_dispatch *out);

/*
 * Writes the access-log form of path (see kw_dispatch.log_path) for a request answered
 * without dispatch (413, or a malformed body): secret parameters of the first route
 * whose pattern matches are replaced by their names; an unmatched path is cut only.
 */
void kw_router_log_path(struct kw_server *srv, const char *path, char out[KW_ROUTER_LOG_PATH_MAX]);

/*
 * Checks route tables (a NULL-terminated list of tables; NULL means router.c's): every
 * pattern starts with '/', has no empty segment, at most KW_ROUTER_SEGMENTS_MAX segments
 * and KW_HTTP_PARAMS_MAX parameters, each ":name" non-empty; the method is GET, POST, PUT,
 * PATCH or DELETE (HEAD comes with GET); auth is one of kw_auth; a handler is set; no two
 * rows share method and pattern. kw_http_start refuses to start otherwise.
 * Errors: KW_ERR_INTERNAL (detail names the pattern and the rule).
 */
kw_err kw_router_check(const kw_route *const *tables, kw_error *err) KW_MUST_CHECK;

/* The built-in list of route tables (router.c), NULL-terminated. */
const kw_route *const *kw_router_tables(void);

#endif
