/*
 * api_keys.h — the member key directory routes (api_keys.c, table kw_routes_keys) and the
 * key-upload parsing they share with the guest routes (registration, guest pre-keys), so
 * both validate keys the same way (INV-1).
 */
#ifndef KEYWAVE_SERVER_API_KEYS_H
#define KEYWAVE_SERVER_API_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db_keys.h"
#include "http.h"
#include "keywave/bundle.h"
#include "keywave/err.h"

struct kw_server;

/*
 * Reads obj[field] as an array of min..max pre-keys {id, public_key} (no other fields),
 * ids in 0..KW_PREKEY_ID_MAX and unique within the array, into out (room for max);
 * *n gets the count. Errors: KW_ERR_INVALID_ARGUMENT (not an array, count, id range or
 * repeat, element not an object), KW_ERR_UNKNOWN_FIELD, KW_ERR_BASE64, KW_ERR_INVALID_KEY.
 */
kw_err kw_api_keys_parse_prekeys(json_t *obj, const char *field, size_t min, size_t max,
                                 kw_db_prekey *out, size_t *n, kw_error *err) KW_MUST_CHECK;

/*
 * Reads a signed pre-key object {id, public_key, signature} (no other fields; path names
 * it in details, e.g. "signed_pre_key" or "body"). The signature is checked for size only;
 * verifying it against the identity key is the caller's (or the store's) job.
 * Errors: KW_ERR_INVALID_ARGUMENT, KW_ERR_UNKNOWN_FIELD, KW_ERR_BASE64, KW_ERR_INVALID_KEY,
 * KW_ERR_INVALID_SIGNATURE.
 */
kw_err kw_api_keys_parse_signed_prekey(json_t *spk, const char *path, uint32_t *id,
                                       uint8_t public_key[KW_PUBKEY_BYTES],
                                       uint8_t signature[KW_SIGNATURE_BYTES],
                                       kw_error *err) KW_MUST_CHECK;

/*
 * INV-2: counts one bundle fetch of object by subject in srv's bundle limiter (3 per
 * minute per pair). Names: "m:<user_id>:<device_id>" for a member device,
 * "g:<session_id>" for a guest session. On KW_ERR_RATE_LIMITED, res->retry_after_s is
 * set (the router keeps it on the error reply). If the fetch then fails, give the hit
 * back with kw_rate_limit_refund(srv->bundle_limit, subject, object), so only served
 * bundles count. Errors: KW_ERR_RATE_LIMITED, KW_ERR_INTERNAL (no limiter), KW_ERR_NOMEM.
 */
kw_err kw_api_keys_bundle_limit(struct kw_server *srv, const char *subject, const char *object,
                                int64_t now_ms, kw_response *res, kw_error *err) KW_MUST_CHECK;

/* Sets res to 200 with the bundle JSON of DESIGN.md section 6. Errors: those of
 * kw_bundle_to_json. */
kw_err kw_api_keys_bundle_reply(kw_response *res, const kw_bundle *b, kw_error *err) KW_MUST_CHECK;

#endif
