/*
 * db_members.h — storage of members (DESIGN.md section 4): users, their devices, one-time
 * enrollment codes, device sessions (the HMAC key of signed requests) and the nonces of
 * signed requests. Called as db->members->op(db->ctx, ...) (db.h).
 *
 * Secrets: enrollment codes are stored only as their SHA-256; a session secret is stored
 * as is because it is the HMAC key that verifies each request. Structs that carry a
 * secret out (kw_db_enrollment, kw_db_session) must be wiped by the caller (kw_wipe)
 * once used, and no secret is ever put in an error detail (INV-8).
 */
#ifndef KEYWAVE_SERVER_DB_MEMBERS_H
#define KEYWAVE_SERVER_DB_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_DB_ID_MAX            128 /* longest id string (user ids are "usr_" + 16 hex) */
#define KW_USER_NAME_MAX        64  /* user names: 1..64 of [A-Za-z0-9._@-] */
#define KW_DEVICE_NAME_MAX      64  /* device names: 1..64 bytes of UTF-8, no control chars */
#define KW_ENROLL_CODE_CHARS    20  /* lower-case RFC 4648 base32 (a-z2-7), 100 bits */
#define KW_ENROLL_CODE_TTL_MS   (24LL * 60 * 60 * 1000)
#define KW_CLIENT_ID_CHARS      32 /* lower-case hex of 16 random bytes */
#define KW_SESSION_SECRET_CHARS 43 /* base64url without padding of 32 random bytes */
#define KW_SESSION_IDLE_MS      (90LL * 24 * 60 * 60 * 1000) /* sliding expiry */
#define KW_NONCE_TTL_MS         (10LL * 60 * 1000)
#define KW_DEVICE_ID_MAX        0x7FFFFFFF

typedef struct kw_db_user {
    char user_id[KW_DB_ID_MAX + 1];
    char name[KW_USER_NAME_MAX + 1];
    int64_t created_ms;
} kw_db_user;

/* What a successful enrollment returns. Holds the session secret: wipe after use. */
typedef struct kw_db_enrollment {
    char user_id[KW_DB_ID_MAX + 1];
    uint32_t device_id; /* 1, 2, 3, ... per user, never reused */
    char client_id[KW_CLIENT_ID_CHARS + 1];
    char session_secret[KW_SESSION_SECRET_CHARS + 1]; /* secret */
} kw_db_enrollment;

/* A device session as the verifier needs it. Holds the secret: wipe after use. */
typedef struct kw_db_session {
    char user_id[KW_DB_ID_MAX + 1];
    uint32_t device_id;
    char session_secret[KW_SESSION_SECRET_CHARS + 1]; /* secret */
    int64_t last_used_ms;
} kw_db_session;

typedef struct kw_db_members_ops {
    /*
     * Creates user name and its first enrollment code in one transaction. user_id gets the
     * new id ("usr_" + 16 hex) and code the code text (KW_ENROLL_CODE_CHARS, valid until
     * now_ms + KW_ENROLL_CODE_TTL_MS); on failure both are "". Errors:
     * KW_ERR_INVALID_ARGUMENT (name breaks its rule), KW_ERR_CONFLICT (a user has that
     * name), KW_ERR_STORE, KW_ERR_CRYPTO.
     */
    kw_err (*user_add)(void *ctx, const char *name, int64_t now_ms, char user_id[KW_DB_ID_MAX + 1],
                       char code[KW_ENROLL_CODE_CHARS + 1], kw_error *err);
    /*
     * Issues another enrollment code for the existing user name (another device); earlier
     * codes stay valid until used or expired. On failure user_id and code are "".
     * Errors: KW_ERR_INVALID_ARGUMENT,
     * KW_ERR_NOT_FOUND (no such user), KW_ERR_STORE, KW_ERR_CRYPTO.
     */
    kw_err (*code_issue)(void *ctx, const char *name, int64_t now_ms,
                         char user_id[KW_DB_ID_MAX + 1], char code[KW_ENROLL_CODE_CHARS + 1],
                         kw_error *err);
    /*
     * Redeems a code in one transaction: the code is consumed, the user's next device id
     * allocated, the device (named device_name) and a fresh session created. A code is
     * valid while now_ms < issued + KW_ENROLL_CODE_TTL_MS and only once.
     * Errors: KW_ERR_INVALID_ARGUMENT (code or device_name malformed), KW_ERR_NOT_FOUND
     * (unknown, used or expired code: one answer for all three), KW_ERR_STORE,
     * KW_ERR_CRYPTO.
     */
    kw_err (*enroll)(void *ctx, const char *code, const char *device_name, int64_t now_ms,
                     kw_db_enrollment *out, kw_error *err);
    /*
     * Looks up the session of client_id. A session is expired when now_ms - last_used_ms >=
     * KW_SESSION_IDLE_MS. Errors: KW_ERR_UNKNOWN_CLIENT (no such session),
     * KW_ERR_SESSION_EXPIRED (*out is then not filled), KW_ERR_STORE.
     */
    kw_err (*session_get)(void *ctx, const char *client_id, int64_t now_ms, kw_db_session *out,
                          kw_error *err);
    /*
     * Remembers nonce for client_id until now_ms + KW_NONCE_TTL_MS and slides the
     * session's last use to now_ms, in one transaction. Call it only after the signature
     * verified. A nonce whose earlier use has expired may be used again (its timestamp
     * can no longer pass the 5-minute skew check). Shared by HTTP and Socket.IO auth.
     * Errors: KW_ERR_DUPLICATE_REQUEST (seen within its TTL), KW_ERR_UNKNOWN_CLIENT,
     * KW_ERR_STORE.
     */
    kw_err (*nonce_use)(void *ctx, const char *client_id, const char *nonce, int64_t now_ms,
                        kw_error *err);
    /* Reads the user user_id. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*user_get)(void *ctx, const char *user_id, kw_db_user *out, kw_error *err);
    /* KW_OK if the device exists. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*device_exists)(void *ctx, const char *user_id, uint32_t device_id, kw_error *err);
    /*
     * Housekeeping (INV-10): deletes up to max_rows stale nonces and used-up or expired
     * enrollment codes; *removed (may be NULL) gets how many. Call again next tick while
     * it returns max_rows. Errors: KW_ERR_STORE.
     */
    kw_err (*purge)(void *ctx, int64_t now_ms, size_t max_rows, size_t *removed, kw_error *err);
} kw_db_members_ops;

#endif
