/*
 * bundle.h — the key bundle JSON of DESIGN.md section 6: what one device publishes so that
 * another can start a Signal session with it.
 *
 *   {"user_id"|"session_id": "<id>", "device_id": "<decimal>", "registration_id": N,
 *    "identity_key": "<b64 33 bytes, 0x05...>",
 *    "signed_pre_key": {"id": N, "public_key": "<b64 33>", "signature": "<b64 64>"},
 *    "one_time_pre_key": {"id": N, "public_key": "<b64 33>"} | null}
 *
 * Decoding is strict: unknown fields, wrong types, non-canonical base64, keys that are not
 * 33 bytes with prefix 0x05, signatures that are not 64 bytes, and a signed pre-key whose
 * signature does not verify against the identity key are all rejected.
 */
#ifndef KEYWAVE_BUNDLE_H
#define KEYWAVE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"
#include "keywave/identity.h"

typedef struct kw_bundle {
    char owner[KW_NAME_MAX + 1]; /* user id, or guest session id */
    int owner_is_guest;          /* 1: the field was "session_id" */
    uint32_t device_id;
    uint32_t registration_id;
    uint8_t identity_key[KW_PUBKEY_BYTES];
    uint32_t signed_pre_key_id;
    uint8_t signed_pre_key[KW_PUBKEY_BYTES];
    uint8_t signed_pre_key_signature[KW_SIGNATURE_BYTES];
    int has_one_time_pre_key;
    uint32_t one_time_pre_key_id;
    uint8_t one_time_pre_key[KW_PUBKEY_BYTES];
} kw_bundle;

/*
 * Parses and validates json[0..len) into *out. On failure *out is zeroed and err->detail
 * names the field. Errors: KW_ERR_JSON (not an object, missing field, wrong type),
 * KW_ERR_UNKNOWN_FIELD, KW_ERR_BASE64, KW_ERR_INVALID_KEY, KW_ERR_INVALID_SIGNATURE
 * (wrong length or does not verify), KW_ERR_INVALID_ARGUMENT (id out of range, empty or
 * too long owner).
 */
KW_MUST_CHECK kw_err kw_bundle_from_json(const char *json, size_t len, kw_bundle *out,
                                         kw_error *err);

/* Encodes b as JSON; *json is malloc'd and owned by the caller. Refuses what
 * kw_bundle_from_json would reject for range or key shape (it does not re-verify the
 * signature). Errors: KW_ERR_NOMEM, KW_ERR_INVALID_ARGUMENT, KW_ERR_INVALID_KEY. */
KW_MUST_CHECK kw_err kw_bundle_to_json(const kw_bundle *b, char **json, kw_error *err);

/*
 * Checks a public key (33 bytes, 0x05 prefix) and a signed pre-key signature: the checks
 * the server runs on upload (DESIGN.md invariant 1). Errors: KW_ERR_INVALID_KEY,
 * KW_ERR_INVALID_SIGNATURE.
 */
KW_MUST_CHECK kw_err kw_pubkey_check(const uint8_t *key, size_t len);
KW_MUST_CHECK kw_err kw_signature_verify(const uint8_t identity_key[KW_PUBKEY_BYTES],
                                         const uint8_t *signed_key, size_t signed_key_len,
                                         const uint8_t *signature, size_t signature_len);

/* Fills *out with this identity's own bundle (owner/device from self, one_time_pre_key =
 * the pre-key with the lowest id held, if any) — what a server would hand out. */
KW_MUST_CHECK kw_err kw_bundle_self(kw_identity *id, const char *owner, int owner_is_guest,
                                    uint32_t device_id, kw_bundle *out, kw_error *err);

#endif
