/*
 * db_guests.h — storage of guest sessions (DESIGN.md sections 4, 7; INV-1..3, 8..10): a
 * guest registers with an invitation and its public keys, gets a session (public id and
 * bearer secret), asks to be admitted, and is admitted or declined by a member. Called as
 * db->guests->op(db->ctx, ...) (db.h).
 *
 * Secrets: the guest secret is stored only as its SHA-256 (a lookup by hash needs no
 * constant-time comparison: an attacker timing it learns about hashes, not the secret).
 * The secret leaves the store once, in kw_db_guest_created, which the caller wipes
 * (kw_wipe) after answering. Invitation tokens and secrets never go into a detail (INV-8).
 *
 * States: registered (never accepted an admission request) -> waiting (an accepted
 * request-admission) -> admitted | declined. "Waiting" in the API means registered or
 * waiting: neither admitted nor declined. A session expires KW_GUEST_SESSION_TTL_MS after
 * it was created and is then refused by auth and removed by purge (INV-10). Everything
 * goes with the meeting (ON DELETE CASCADE, INV-9).
 *
 * Every op that writes runs in one transaction and changes nothing when it fails.
 */
#ifndef KEYWAVE_SERVER_DB_GUESTS_H
#define KEYWAVE_SERVER_DB_GUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "db_keys.h"
#include "db_members.h"
#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/identity.h"

#define KW_GUEST_SESSION_ID_CHARS        32 /* lower-case hex of 16 random bytes */
#define KW_GUEST_SECRET_CHARS            43 /* base64url without padding of 32 random bytes */
#define KW_GUEST_SESSION_TTL_MS          (24LL * 60 * 60 * 1000)
#define KW_GUEST_NAME_CHARS_MAX          64  /* display names: 1..64 characters of UTF-8 */
#define KW_GUEST_NAME_BYTES_MAX          256 /* 64 characters of at most 4 bytes */
#define KW_GUEST_REASON_MAX              500 /* decline reason: bytes of UTF-8 */
#define KW_GUEST_PREKEYS_AT_REGISTRATION 30
#define KW_GUEST_DEVICE_ID               1    /* a guest has one device; its bundle says "1" */
#define KW_GUEST_WAITING_MAX             1000 /* waiting list rows returned at most */

typedef enum kw_guest_status {
    KW_GUEST_REGISTERED = 1, /* never accepted an admission request */
    KW_GUEST_WAITING = 2,    /* an admission request was accepted */
    KW_GUEST_ADMITTED = 3,
    KW_GUEST_DECLINED = 4,
} kw_guest_status;

/* What a registration carries (validated by the handler; the store checks keys again). */
typedef struct kw_db_guest_registration {
    const char *invitation_token; /* borrowed; secret */
    const char *display_name;     /* borrowed; 1..64 characters */
    uint8_t identity_key[KW_PUBKEY_BYTES];
    uint32_t registration_id;
    uint32_t signed_pre_key_id;
    uint8_t signed_pre_key[KW_PUBKEY_BYTES];
    uint8_t signed_pre_key_signature[KW_SIGNATURE_BYTES];
    const kw_db_prekey *pre_keys; /* borrowed; exactly KW_GUEST_PREKEYS_AT_REGISTRATION */
    size_t n_pre_keys;
} kw_db_guest_registration;

/* A new session. Holds the secret: wipe after use. */
typedef struct kw_db_guest_created {
    char session_id[KW_GUEST_SESSION_ID_CHARS + 1];
    char guest_secret[KW_GUEST_SECRET_CHARS + 1]; /* secret, shown once */
    char meeting_id[KW_DB_ID_MAX + 1];
    int64_t expires_ms;
    int replaced; /* 1: an earlier waiting session of this identity was replaced */
} kw_db_guest_created;

/* A stored session (no secret). */
typedef struct kw_db_guest {
    char session_id[KW_GUEST_SESSION_ID_CHARS + 1];
    char meeting_id[KW_DB_ID_MAX + 1];
    char display_name[KW_GUEST_NAME_BYTES_MAX + 1];
    kw_guest_status status;
    int64_t requested_ms;              /* last accepted admission request; 0: none */
    char decided_by[KW_DB_ID_MAX + 1]; /* admitting or declining user; "" while waiting */
    int64_t decided_ms;                /* 0 while waiting */
    int64_t created_ms, expires_ms;
} kw_db_guest;

/* One row of the waiting list. */
typedef struct kw_db_waiting_guest {
    char session_id[KW_GUEST_SESSION_ID_CHARS + 1];
    char display_name[KW_GUEST_NAME_BYTES_MAX + 1];
    int64_t requested_ms; /* last accepted request, else the registration time */
} kw_db_waiting_guest;

typedef struct kw_db_guests_ops {
    /*
     * Registers a guest, in one write transaction: the invitation is checked (order:
     * unknown, revoked, expired at now_ms >= expires, then meeting allows guests, then
     * exhausted), the bundle verified (INV-1: keys 33 bytes with 0x05, signed pre-key
     * signature against the identity key, 30 pre-keys with unique ids), and then either
     * this identity's unexpired waiting session in the meeting is replaced (new id and
     * secret, old ones gone, no use counted) or a new session is created and one use of
     * the invitation counted. *out is filled on KW_OK, zeroed on failure.
     * Errors: KW_ERR_INVALID_ARGUMENT (name, counts, ids), KW_ERR_INVALID_KEY,
     * KW_ERR_INVALID_SIGNATURE, KW_ERR_UNKNOWN_INVITATION, KW_ERR_INVITATION_REVOKED,
     * KW_ERR_INVITATION_EXPIRED, KW_ERR_INVITATION_EXHAUSTED, KW_ERR_FORBIDDEN (the
     * meeting does not allow external guests), KW_ERR_STORE, KW_ERR_CRYPTO.
     */
    kw_err (*register_guest)(void *ctx, const kw_db_guest_registration *reg, int64_t now_ms,
                             kw_db_guest_created *out, kw_error *err);
    /*
     * Finds the session whose secret hashes to secret_hash (SHA-256 of the 43 characters).
     * Errors: KW_ERR_UNAUTHORIZED (no such session), KW_ERR_SESSION_EXPIRED (now_ms >=
     * expires; *out not filled), KW_ERR_STORE.
     */
    kw_err (*authenticate)(void *ctx, const uint8_t secret_hash[32], int64_t now_ms,
                           kw_db_guest *out, kw_error *err);
    /* Reads a session (expired ones too: callers compare expires_ms). Errors:
     * KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*get)(void *ctx, const char *session_id, kw_db_guest *out, kw_error *err);
    /* Deletes a session with its keys and secret. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*remove)(void *ctx, const char *session_id, kw_error *err);
    /*
     * Adds n (1..KW_PREKEYS_PER_UPLOAD_MAX) one-time pre-keys, all or none; *count gets the
     * unused pre-keys after. Errors: KW_ERR_INVALID_ARGUMENT, KW_ERR_INVALID_KEY,
     * KW_ERR_CONFLICT (an id is stored unused), KW_ERR_NOT_FOUND, KW_ERR_STORE.
     */
    kw_err (*prekeys_add)(void *ctx, const char *session_id, const kw_db_prekey *keys, size_t n,
                          size_t *count, kw_error *err);
    /* *count = unused one-time pre-keys of the session. Errors: KW_ERR_STORE. */
    kw_err (*prekeys_count)(void *ctx, const char *session_id, size_t *count, kw_error *err);
    /*
     * Reads the guest's bundle (session_id form, device 1) and consumes its lowest pre-key
     * in one write transaction (INV-2); with none left the bundle has none. *remaining
     * (may be NULL) gets the pre-keys left. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE.
     */
    kw_err (*bundle_take)(void *ctx, const char *session_id, kw_bundle *out, size_t *remaining,
                          kw_error *err);
    /*
     * Marks an accepted admission request: status becomes waiting and requested_ms now_ms,
     * only while the session is registered or waiting. Errors: KW_ERR_ALREADY_ADMITTED,
     * KW_ERR_ALREADY_DECLINED (then *out holds the session, decided_by included),
     * KW_ERR_NOT_FOUND, KW_ERR_STORE. out may be NULL.
     */
    kw_err (*request_admission)(void *ctx, const char *session_id, int64_t now_ms, kw_db_guest *out,
                                kw_error *err);
    /*
     * Admits (admit = 1) or declines the session of meeting_id by user_id at now_ms, with
     * one conditional UPDATE (status still registered or waiting), so of concurrent
     * deciders exactly one wins (INV-3). reason (decline only; NULL: none) is kept.
     * On KW_OK and on the two ALREADY codes *out holds the session after (decided_by is
     * the winner). Errors: KW_ERR_ALREADY_ADMITTED, KW_ERR_ALREADY_DECLINED,
     * KW_ERR_NOT_FOUND (no such session in that meeting, or expired), KW_ERR_STORE.
     */
    kw_err (*decide)(void *ctx, const char *meeting_id, const char *session_id, int admit,
                     const char *user_id, const char *reason, int64_t now_ms, kw_db_guest *out,
                     kw_error *err);
    /*
     * Lists the meeting's unexpired sessions that are neither admitted nor declined, by
     * requested_ms then session id, at most KW_GUEST_WAITING_MAX. *out is malloc'd (free();
     * NULL when *n is 0). Errors: KW_ERR_STORE, KW_ERR_NOMEM.
     */
    kw_err (*waiting_list)(void *ctx, const char *meeting_id, int64_t now_ms,
                           kw_db_waiting_guest **out, size_t *n, kw_error *err);
    /* *active = 1 when the meeting has an unexpired session that is not declined.
     * Errors: KW_ERR_STORE. */
    kw_err (*meeting_has_guests)(void *ctx, const char *meeting_id, int64_t now_ms, int *active,
                                 kw_error *err);
    /*
     * Housekeeping (INV-10): deletes up to max_rows sessions with expires_ms <= now_ms
     * (their keys go with them); *removed (may be NULL) gets how many. Errors: KW_ERR_STORE.
     */
    kw_err (*purge)(void *ctx, int64_t now_ms, size_t max_rows, size_t *removed, kw_error *err);
} kw_db_guests_ops;

#endif
