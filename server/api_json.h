/*
 * api_json.h — strict request-body reading for the api_*.c handlers, so every route
 * validates the same way (INV-11): not JSON -> 400 invalid_json (KW_ERR_JSON); a field
 * named like a private key anywhere in the body -> 400 invalid_field (INV-1); a field the
 * route does not know -> 400 unknown_field; a missing field, a wrong type or a value out
 * of range -> 400 invalid_field (KW_ERR_INVALID_ARGUMENT); keys and signatures are
 * standard padded base64 (KW_ERR_BASE64), keys 33 bytes with 0x05 (KW_ERR_INVALID_KEY),
 * signatures 64 bytes (KW_ERR_INVALID_SIGNATURE). Details name the field and the rule,
 * never the value (it may be a secret).
 */
#ifndef KEYWAVE_SERVER_API_JSON_H
#define KEYWAVE_SERVER_API_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"
#include "keywave/err.h"
#include "keywave/identity.h"

#define KW_API_JSON_DEPTH_MAX 32 /* deeper bodies are invalid_json */

/*
 * Parses req's body as one JSON object (duplicate keys refused), refuses any field at any
 * depth whose name contains "priv", "keypair" or "key_pair" in any case (INV-1), then any
 * top-level field not in allowed (NULL-terminated). *out is owned by the caller
 * (json_decref); NULL on failure. Errors: KW_ERR_JSON, KW_ERR_INVALID_ARGUMENT,
 * KW_ERR_UNKNOWN_FIELD.
 */
kw_err kw_api_body_object(const kw_request *req, const char *const *allowed, json_t **out,
                          kw_error *err) KW_MUST_CHECK;

/* Refuses fields of obj not in allowed; path names obj in the detail ("pre_keys[3]").
 * Errors: KW_ERR_UNKNOWN_FIELD. */
kw_err kw_api_only_fields(json_t *obj, const char *const *allowed, const char *path,
                          kw_error *err) KW_MUST_CHECK;

/*
 * Reads the required string field of obj: min..max bytes, no NUL inside; *out borrows
 * from obj. path prefixes field in the detail ("" for none). Errors:
 * KW_ERR_INVALID_ARGUMENT (missing, not a string, length).
 */
kw_err kw_api_string(json_t *obj, const char *path, const char *field, size_t min, size_t max,
                     const char **out, kw_error *err) KW_MUST_CHECK;

/* Reads the required integer field of obj in min..max (a JSON integer, not a real or a
 * boolean). Errors: KW_ERR_INVALID_ARGUMENT. path prefixes field in the detail ("" none). */
kw_err kw_api_int(json_t *obj, const char *path, const char *field, int64_t min, int64_t max,
                  int64_t *out, kw_error *err) KW_MUST_CHECK;

/* Reads the required base64 field holding a public key (33 bytes, 0x05 prefix). Errors:
 * KW_ERR_INVALID_ARGUMENT (missing or not a string), KW_ERR_BASE64, KW_ERR_INVALID_KEY. */
kw_err kw_api_pubkey(json_t *obj, const char *path, const char *field, uint8_t out[KW_PUBKEY_BYTES],
                     kw_error *err) KW_MUST_CHECK;

/* Reads the required base64 field holding a 64-byte signature. Errors:
 * KW_ERR_INVALID_ARGUMENT, KW_ERR_BASE64, KW_ERR_INVALID_SIGNATURE (not 64 bytes). */
kw_err kw_api_signature(json_t *obj, const char *path, const char *field,
                        uint8_t out[KW_SIGNATURE_BYTES], kw_error *err) KW_MUST_CHECK;

#endif
