/*
 * auth.h — who is calling (DESIGN.md section 4): the two authenticators the router runs
 * before a handler, per the route's kw_auth column.
 *
 * kw_auth_member is implemented in server/auth.c, kw_auth_guest with the guest routes.
 * The router does not call them by name: it calls srv->auth_member and srv->auth_guest
 * (server.h), which main() points at these two once the server starts, so the HTTP
 * layer links and is testable without auth.c and a test can plug in its own. A NULL pointer answers
 * 401 unauthorized.
 *
 * Contract for both: read only req's headers, method_name, target, body and now_ms; on
 * success fill req->caller completely (kind set to KW_CALLER_MEMBER, resp. GUEST; the
 * router answers 500 otherwise) and return KW_OK; on failure return the code (31..38 for
 * a bad or unknown credential, which kw_http_status maps to 401; KW_ERR_STORE and the
 * like for a server fault) with err->detail one short sentence without secrets. A member
 * request's nonce is stored only after its signature verified.
 */
#ifndef KEYWAVE_SERVER_AUTH_H
#define KEYWAVE_SERVER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "keywave/err.h"
#include "keywave/request_sign.h"

struct kw_server;
struct kw_db;

/* A signed member request (X-Client-ID, X-Timestamp, X-Nonce, X-Signature). */
kw_err kw_auth_member(struct kw_server *srv, kw_request *req, kw_error *err);

/*
 * The member check itself, shared by kw_auth_member (HTTP) and the Socket.IO CONNECT of
 * namespace "/" (which passes method "GET", target "/socket.io/auth" and an empty body).
 * Order: headers present and well-formed and the timestamp within 5 minutes
 * (kw_request_auth_check: 31, 32, 33), the session known (34) and not expired (35), the
 * signature (36, constant time), then the nonce is stored and the session's last use slid
 * to now_ms (37 if the nonce was seen). On KW_OK *caller is a member (user_id, device_id
 * as decimal). The session secret is wiped before returning and never reaches err.
 * Errors: 31..37 above, KW_ERR_STORE, KW_ERR_CRYPTO, KW_ERR_NOMEM, KW_ERR_INTERNAL (db NULL).
 */
kw_err kw_auth_member_check(struct kw_db *db, const kw_request_auth *h, const char *method,
                            const char *target, const uint8_t *body, size_t body_len,
                            int64_t now_ms, kw_caller *caller, kw_error *err) KW_MUST_CHECK;

/* A guest: Authorization: Bearer <guest_secret>. */
kw_err kw_auth_guest(struct kw_server *srv, kw_request *req, kw_error *err);

/*
 * The guest check itself (auth_guest.c), shared by kw_auth_guest (HTTP bearer) and the
 * Socket.IO CONNECT of "/external": secret[0..len) must be the 43 base64url characters
 * registration returned; it is hashed and looked up, never compared. On KW_OK *caller is
 * the guest (session_id, meeting_id). Errors: KW_ERR_UNAUTHORIZED (malformed or unknown),
 * KW_ERR_SESSION_EXPIRED, KW_ERR_STORE, KW_ERR_CRYPTO, KW_ERR_INTERNAL (db NULL).
 */
kw_err kw_auth_guest_secret(struct kw_db *db, const char *secret, size_t len, int64_t now_ms,
                            kw_caller *caller, kw_error *err) KW_MUST_CHECK;

#endif
