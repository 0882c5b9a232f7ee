/*
 * db_keys.h — storage of member device keys (DESIGN.md sections 6, 7; INV-1, INV-2): each
 * device's identity key and registration id, its current signed pre-key, and its unused
 * one-time pre-keys. Called as db->keys->op(db->ctx, ...) (db.h).
 *
 * Only public keys are stored: 33 bytes with the 0x05 prefix, signatures of 64 bytes
 * (INV-1). A one-time pre-key is deleted in the same transaction that hands it out, so
 * concurrent fetches, even from other processes, never get the same one (INV-2).
 */
#ifndef KEYWAVE_SERVER_DB_KEYS_H
#define KEYWAVE_SERVER_DB_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/identity.h"

#define KW_PREKEYS_PER_UPLOAD_MAX 100    /* one-time pre-keys in one upload: 1..100 */
#define KW_REGISTRATION_ID_MAX    0x3FFF /* Signal registration ids are 14-bit */

/* One uploaded one-time pre-key. */
typedef struct kw_db_prekey {
    uint32_t id; /* 0..KW_PREKEY_ID_MAX */
    uint8_t public_key[KW_PUBKEY_BYTES];
} kw_db_prekey;

typedef struct kw_db_keys_ops {
    /*
     * Sets the device's identity key and registration id. Uploading the same pair again
     * is a no-op; any change of an existing identity is refused. Errors:
     * KW_ERR_INVALID_KEY, KW_ERR_INVALID_ARGUMENT (registration id out of range),
     * KW_ERR_NOT_FOUND (no such device), KW_ERR_CONFLICT (a different identity is stored),
     * KW_ERR_STORE.
     */
    kw_err (*identity_put)(void *ctx, const char *user_id, uint32_t device_id,
                           const uint8_t identity_key[KW_PUBKEY_BYTES], uint32_t registration_id,
                           kw_error *err);
    /*
     * Sets (or replaces) the device's signed pre-key after verifying signature over
     * public_key with the stored identity key. Errors: KW_ERR_INVALID_KEY,
     * KW_ERR_INVALID_ARGUMENT (id out of range), KW_ERR_INVALID_SIGNATURE (does not
     * verify), KW_ERR_CONFLICT (no identity key uploaded yet), KW_ERR_STORE.
     */
    kw_err (*signed_prekey_put)(void *ctx, const char *user_id, uint32_t device_id, uint32_t id,
                                const uint8_t public_key[KW_PUBKEY_BYTES],
                                const uint8_t signature[KW_SIGNATURE_BYTES], kw_error *err);
    /*
     * Adds n (1..KW_PREKEYS_PER_UPLOAD_MAX) one-time pre-keys, all or none; *count gets
     * the number of unused pre-keys after. Errors: KW_ERR_INVALID_ARGUMENT (n out of
     * range, an id out of range or repeated in keys), KW_ERR_INVALID_KEY,
     * KW_ERR_CONFLICT (an id is already stored unused), KW_ERR_NOT_FOUND (no such
     * device), KW_ERR_STORE.
     */
    kw_err (*prekeys_add)(void *ctx, const char *user_id, uint32_t device_id,
                          const kw_db_prekey *keys, size_t n, size_t *count, kw_error *err);
    /* *count = unused one-time pre-keys of the device (0 for an unknown device).
     * Errors: KW_ERR_STORE. */
    kw_err (*prekeys_count)(void *ctx, const char *user_id, uint32_t device_id, size_t *count,
                            kw_error *err);
    /*
     * Reads the device's bundle and consumes its one-time pre-key with the lowest id, in
     * one write transaction; with none left the bundle has no one-time pre-key and is
     * still served. *out is filled (owner = user_id, user form); *remaining (may be NULL)
     * gets the unused pre-keys left, so the caller can send prekeys:low. Errors:
     * KW_ERR_NOT_FOUND (no such device, or it has no identity or signed pre-key yet),
     * KW_ERR_STORE.
     */
    kw_err (*bundle_take)(void *ctx, const char *user_id, uint32_t device_id, kw_bundle *out,
                          size_t *remaining, kw_error *err);
} kw_db_keys_ops;

#endif
