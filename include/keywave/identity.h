/*
 * identity.h — a local Signal identity and its key lifecycle (DESIGN.md section 6, seed 000).
 *
 * A kw_identity is what one device (a member's CLI, a headless guest, a browser tab) holds:
 * its identity key pair and registration id, its signed pre-key (regenerated when older
 * than 7 days; the previous one is kept so messages already in flight still decrypt), and
 * its one-time pre-keys (made in batches of 30 with ids continuing from a persistent
 * next_pre_key_id; each is deleted after the first successful decrypt that used it). All
 * state lives in the kw_store given at open; time comes in as now_ms arguments.
 *
 * The role matters for group keys: a guest handle refuses to create or use a sender key of
 * its own (seed 002: guests are receive-only).
 *
 * THREAD SAFETY: a kw_identity and its store are used from one thread at a time.
 */
#ifndef KEYWAVE_IDENTITY_H
#define KEYWAVE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"
#include "keywave/random.h"
#include "keywave/store.h"

#define KW_PUBKEY_BYTES             33 /* 0x05 || Curve25519 public key */
#define KW_SIGNATURE_BYTES          64 /* XEdDSA */
#define KW_PREKEY_BATCH             30 /* one-time pre-keys made at once */
#define KW_PREKEY_LOW_WATER         10 /* the server holding fewer than this triggers a batch */
#define KW_SIGNED_PREKEY_MAX_AGE_MS (7LL * 24 * 60 * 60 * 1000)
#define KW_PREKEY_ID_MAX            0xFFFFFF /* Signal pre-key ids are 24-bit */
#define KW_NAME_MAX                 128 /* longest address name (user id or guest session id) */

size_t kw_pubkey_bytes(void);
size_t kw_signature_bytes(void);

typedef enum kw_role { KW_ROLE_MEMBER = 1, KW_ROLE_GUEST = 2 } kw_role;

typedef struct kw_identity kw_identity;

typedef struct kw_identity_config {
    kw_role role;
    kw_store *store;         /* borrowed; must outlive the identity */
    const kw_random *random; /* borrowed; NULL means kw_random_system() */
    const char *self_name;   /* own address name (user id or "guest_<sid>"), may be NULL */
    uint32_t self_device_id; /* own device id; used for sender keys */
} kw_identity_config;

/*
 * Opens a handle on the identity kept in cfg->store (which may still be empty: call
 * kw_keys_setup next). *out is owned by the caller (kw_identity_free).
 * Errors: KW_ERR_INVALID_ARGUMENT (bad role, name too long), KW_ERR_NOMEM, KW_ERR_CRYPTO.
 */
KW_MUST_CHECK kw_err kw_identity_open(const kw_identity_config *cfg, kw_identity **out,
                                      kw_error *err);

/* Frees the handle (not the store). Accepts NULL. */
void kw_identity_free(kw_identity *id);

kw_role kw_identity_role(const kw_identity *id);

/* Sets the own address used for sender keys (e.g. once enrollment returned ids). */
KW_MUST_CHECK kw_err kw_identity_set_self(kw_identity *id, const char *name, uint32_t device_id);

/* The five named setup steps of seed 000, in order. */
typedef enum kw_setup_step {
    KW_SETUP_CHECKING = 1,       /* "Checking existing keys..." */
    KW_SETUP_IDENTITY = 2,       /* "Generating identity keys..." */
    KW_SETUP_SIGNED_PRE_KEY = 3, /* "Generating signed pre-key..." */
    KW_SETUP_PRE_KEYS = 4,       /* "Generating pre-keys..." */
    KW_SETUP_VALIDATING = 5,     /* "Validating keys..." */
} kw_setup_step;

/* The English label of a step, as the progress display shows it. */
const char *kw_setup_step_label(kw_setup_step step);

/*
 * Progress: called at the start of every step (done = 0) and as work completes within it
 * (pre-keys: done counts up to total). skipped != 0 means the step had nothing to do
 * (valid keys were reused).
 */
typedef void (*kw_setup_progress_fn)(void *arg, kw_setup_step step, int done, int total,
                                     int skipped);

typedef struct kw_setup_result {
    int made_identity;       /* a new identity key pair was generated */
    int made_signed_pre_key; /* a new signed pre-key was generated (missing or expired) */
    int made_pre_keys;       /* how many one-time pre-keys were generated */
} kw_setup_result;

/*
 * Makes whatever is missing, reusing valid keys: identity + registration id if absent, a
 * signed pre-key if absent or older than 7 days at now_ms, a batch of 30 one-time pre-keys
 * if fewer than 30 are held. Then validates (signed pre-key signature against the identity
 * key, ages). progress may be NULL; res may be NULL.
 * Errors: KW_ERR_STORE, KW_ERR_CRYPTO, KW_ERR_NOMEM, KW_ERR_INVALID_SIGNATURE (a stored
 * signed pre-key does not verify: the store is corrupt).
 */
KW_MUST_CHECK kw_err kw_keys_setup(kw_identity *id, int64_t now_ms, kw_setup_progress_fn progress,
                                   void *arg, kw_setup_result *res, kw_error *err);

/* The public half of the identity. */
typedef struct kw_public_identity {
    uint8_t identity_key[KW_PUBKEY_BYTES];
    uint32_t registration_id;
} kw_public_identity;

typedef struct kw_signed_pre_key_pub {
    uint32_t id;
    uint8_t public_key[KW_PUBKEY_BYTES];
    uint8_t signature[KW_SIGNATURE_BYTES];
    int64_t created_ms;
} kw_signed_pre_key_pub;

/* Errors: KW_ERR_NOT_FOUND (no identity yet: run kw_keys_setup), KW_ERR_STORE. */
KW_MUST_CHECK kw_err kw_keys_identity(kw_identity *id, kw_public_identity *out, kw_error *err);
KW_MUST_CHECK kw_err kw_keys_signed_pre_key(kw_identity *id, kw_signed_pre_key_pub *out,
                                            kw_error *err);

/* Number of one-time pre-keys held locally (not yet used). */
KW_MUST_CHECK kw_err kw_keys_local_pre_key_count(kw_identity *id, size_t *count, kw_error *err);

/* next_pre_key_id as stored (the id the next batch starts at). */
KW_MUST_CHECK kw_err kw_keys_next_pre_key_id(kw_identity *id, uint32_t *next, kw_error *err);

/*
 * The upload document for a new registration or key upload, as JSON (DESIGN.md section 7):
 * {"identity_key","registration_id","signed_pre_key":{"id","public_key","signature"},
 *  "pre_keys":[{"id","public_key"}...]} with the pre-keys of the latest batch.
 * *json is malloc'd and owned by the caller. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE,
 * KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_keys_export_json(kw_identity *id, char **json, kw_error *err);

/*
 * The replenishment rule: if server_count < KW_PREKEY_LOW_WATER, makes a batch of 30 new
 * one-time pre-keys (ids from next_pre_key_id, which is advanced first, so a crash never
 * reuses an id) and sets *json to {"pre_keys":[...]} to upload (malloc'd, caller owns);
 * otherwise sets *json = NULL and changes nothing.
 */
KW_MUST_CHECK kw_err kw_keys_replenish(kw_identity *id, size_t server_count, char **json,
                                       kw_error *err);

#endif
