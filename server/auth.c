/*
 * auth.c — member authentication (DESIGN.md section 4): the signed-request check that the
 * router runs for KW_AUTH_MEMBER routes and Socket.IO runs for CONNECT on "/".
 *
 * The cheap checks that need no storage come first (headers, skew), then the session
 * lookup, then the HMAC in constant time, and only then is the nonce stored, so a forged
 * request cannot burn a legitimate client's nonce (INV-8: the session secret stays in a
 * stack buffer that is wiped on every path and is never logged or put in a detail).
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "db.h"
#include "db_members.h"
#include "server.h"

kw_err kw_auth_member_check(struct kw_db *db, const kw_request_auth *h, const char *method,
                            const char *target, const uint8_t *body, size_t body_len,
                            int64_t now_ms, kw_caller *caller, kw_error *err)
{
    memset(caller, 0, sizeof *caller);
    if (db == NULL || method == NULL || target == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "authentication is not set up");
    kw_err rc = kw_request_auth_check(h, now_ms, NULL, err);
    if (rc != KW_OK)
        return rc;
    kw_db_session session;
    rc = db->members->session_get(db->ctx, h->client_id, now_ms, &session, err);
    if (rc == KW_OK)
        rc = kw_request_verify(session.session_secret, h, method, target, body, body_len, err);
    kw_wipe(session.session_secret, sizeof session.session_secret);
    if (rc != KW_OK)
        return rc;
    /* Only now that the signature verified may the nonce be remembered. */
    rc = db->members->nonce_use(db->ctx, h->client_id, h->nonce, now_ms, err);
    if (rc != KW_OK)
        return rc;
    caller->kind = KW_CALLER_MEMBER;
    snprintf(caller->user_id, sizeof caller->user_id, "%s", session.user_id);
    snprintf(caller->device_id, sizeof caller->device_id, "%u", session.device_id);
    return KW_OK;
}

kw_err kw_auth_member(struct kw_server *srv, kw_request *req, kw_error *err)
{
    kw_request_auth h = {req->client_id, req->timestamp, req->nonce, req->signature};
    return kw_auth_member_check(srv->db, &h, req->method_name, req->target, req->body,
                                req->body_len, req->now_ms, &req->caller, err);
}
