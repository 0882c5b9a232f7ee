/*
 * auth_guest.c — guest authentication (DESIGN.md section 4): `Authorization: Bearer
 * <guest_secret>`, where the secret is the 43-character base64url text registration
 * returned once.
 *
 * The store keeps only SHA-256 of the secret and looks the session up by that hash, so
 * no secret is ever compared byte by byte (nothing to time) and a database leak gives no
 * usable credential. The secret is hashed from the header in place and the hash wiped;
 * neither reaches a log line or an error detail (INV-8).
 *
 * Answers: no or malformed Authorization, or an unknown secret -> 401 unauthorized; a
 * session past its expiry (24 h after registration, until cleanup deletes it) -> 401
 * session_expired, so a guest app can tell "register again" from "wrong secret".
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "crypto.h"
#include "db.h"
#include "db_guests.h"
#include "server.h"

static int base64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* The secret of "Bearer <secret>" (scheme case-insensitive, RFC 7235), or NULL. */
static const char *bearer_secret(const char *header)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    const char *p = header + 7;
    while (*p == ' ')
        p++;
    size_t n = 0;
    while (base64url_char(p[n]))
        n++;
    const char *end = p + n;
    while (*end == ' ' || *end == '\t')
        end++;
    return n == KW_GUEST_SECRET_CHARS && *end == '\0' ? p : NULL;
}

kw_err kw_auth_guest_secret(struct kw_db *db, const char *secret, size_t len, int64_t now_ms,
                            kw_caller *caller, kw_error *err)
{
    memset(caller, 0, sizeof *caller);
    if (db == NULL || db->guests == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "guest authentication is not set up");
    int ok = secret != NULL && len == KW_GUEST_SECRET_CHARS;
    for (size_t i = 0; ok && i < len; i++)
        ok = base64url_char(secret[i]);
    if (!ok)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED, "the guest secret is missing or malformed");
    uint8_t hash[KW_SHA256_BYTES];
    if (kw_sha256((const uint8_t *)secret, KW_GUEST_SECRET_CHARS, hash) != KW_OK)
        return kw_error_set(err, KW_ERR_CRYPTO, "hashing failed");
    kw_db_guest g;
    kw_err rc = db->guests->authenticate(db->ctx, hash, now_ms, &g, err);
    kw_wipe(hash, sizeof hash);
    if (rc != KW_OK)
        return rc;
    caller->kind = KW_CALLER_GUEST;
    snprintf(caller->session_id, sizeof caller->session_id, "%s", g.session_id);
    snprintf(caller->meeting_id, sizeof caller->meeting_id, "%s", g.meeting_id);
    return KW_OK;
}

kw_err kw_auth_guest(struct kw_server *srv, kw_request *req, kw_error *err)
{
    memset(&req->caller, 0, sizeof req->caller);
    if (srv == NULL || srv->db == NULL || srv->db->guests == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "guest authentication is not set up");
    const char *secret = bearer_secret(req->authorization);
    if (secret == NULL)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED,
                            "Authorization: Bearer <guest_secret> is missing or malformed");
    return kw_auth_guest_secret(srv->db, secret, KW_GUEST_SECRET_CHARS, req->now_ms, &req->caller,
                                err);
}
