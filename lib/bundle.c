/*
 * bundle.c — key bundle JSON (DESIGN.md section 6): strict decoding with a detail that
 * names the failing field, encoding, and the public-key and signature checks the server
 * also runs on upload (invariant 1).
 */
#include "keywave/bundle.h"

#include <stdlib.h>
#include <string.h>

#include <curve.h>
#include <jansson.h>
#include <session_pre_key.h>

#include "identity_internal.h"
#include "json_strict.h"
#include "keywave/base64.h"

/* Signal registration ids are 14-bit (libsignal key_helper without extended range). */
#define REGISTRATION_ID_MAX 0x3FFF

kw_err kw_pubkey_check(const uint8_t *key, size_t len)
{
    if (len != KW_PUBKEY_BYTES || key[0] != 0x05)
        return KW_ERR_INVALID_KEY;
    return KW_OK;
}

kw_err kw_signature_verify(const uint8_t identity_key[KW_PUBKEY_BYTES], const uint8_t *signed_key,
                           size_t signed_key_len, const uint8_t *signature, size_t signature_len)
{
    if (kw_pubkey_check(identity_key, KW_PUBKEY_BYTES) != KW_OK)
        return KW_ERR_INVALID_KEY;
    if (signature_len != KW_SIGNATURE_BYTES)
        return KW_ERR_INVALID_SIGNATURE;
    /* Decoding a point needs no context for a 33-byte 0x05 key. */
    ec_public_key *ik = NULL;
    if (curve_decode_point(&ik, identity_key, KW_PUBKEY_BYTES, NULL) < 0)
        return KW_ERR_INVALID_KEY;
    int ok = curve_verify_signature(ik, signed_key, signed_key_len, signature, signature_len);
    SIGNAL_UNREF(ik);
    return ok == 1 ? KW_OK : KW_ERR_INVALID_SIGNATURE;
}

/* Decodes a base64 field of exactly want bytes. */
static kw_err b64_field(json_t *obj, const char *field, const char *path, uint8_t *out, size_t want,
                        kw_err wrong_len, kw_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_JSON, "%s: missing or not a string", path);
    uint8_t buf[128];
    size_t n = 0;
    kw_err rc = kw_base64_decode(json_string_value(v), json_string_length(v), buf, sizeof buf, &n);
    if (rc == KW_ERR_BUFFER_TOO_SMALL)
        return kw_error_set(err, wrong_len, "%s: too long", path);
    if (rc != KW_OK)
        return kw_error_set(err, KW_ERR_BASE64, "%s: not standard padded base64", path);
    if (n != want)
        return kw_error_set(err, wrong_len, "%s: %zu bytes, want %zu", path, n, want);
    if (want == KW_PUBKEY_BYTES && wrong_len == KW_ERR_INVALID_KEY && buf[0] != 0x05)
        return kw_error_set(err, KW_ERR_INVALID_KEY, "%s: prefix is not 0x05", path);
    memcpy(out, buf, want);
    return KW_OK;
}

/* An integer field in [min, max]. */
static kw_err int_field(json_t *obj, const char *field, const char *path, uint32_t min,
                        uint32_t max, uint32_t *out, kw_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (!json_is_integer(v))
        return kw_error_set(err, KW_ERR_JSON, "%s: missing or not an integer", path);
    json_int_t i = json_integer_value(v);
    if (i < (json_int_t)min || i > (json_int_t)max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: out of range", path);
    *out = (uint32_t)i;
    return KW_OK;
}

static kw_err owner_field(json_t *root, kw_bundle *b, kw_error *err)
{
    json_t *user = json_object_get(root, "user_id");
    json_t *guest = json_object_get(root, "session_id");
    if ((user == NULL) == (guest == NULL))
        return kw_error_set(err, KW_ERR_JSON, "bundle: exactly one of user_id, session_id");
    json_t *v = user ? user : guest;
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_JSON, "%s: not a string", user ? "user_id" : "session_id");
    const char *s = json_string_value(v);
    if (json_string_length(v) != strlen(s) || kw_name_check(s, NULL) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: empty, too long or not text",
                            user ? "user_id" : "session_id");
    memcpy(b->owner, s, strlen(s) + 1);
    b->owner_is_guest = guest != NULL;
    return KW_OK;
}

/* device_id is a string of decimal digits (ids are strings, DESIGN.md section 7). */
static kw_err device_field(json_t *root, uint32_t *out, kw_error *err)
{
    json_t *v = json_object_get(root, "device_id");
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_JSON, "device_id: missing or not a string");
    const char *s = json_string_value(v);
    if (json_string_length(v) != strlen(s) || kw_parse_decimal(s, INT32_MAX, out) != KW_OK ||
        *out == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "device_id: not a decimal in 1..2147483647");
    return KW_OK;
}

static kw_err parse_signed(json_t *root, kw_bundle *b, kw_error *err)
{
    static const char *const fields[] = {"id", "public_key", "signature", NULL};
    json_t *spk = json_object_get(root, "signed_pre_key");
    if (!json_is_object(spk))
        return kw_error_set(err, KW_ERR_JSON, "signed_pre_key: missing or not an object");
    kw_err rc = kw_json_only_fields(spk, fields, "signed_pre_key", err);
    if (rc == KW_OK)
        rc = int_field(spk, "id", "signed_pre_key.id", 0, KW_PREKEY_ID_MAX, &b->signed_pre_key_id,
                       err);
    if (rc == KW_OK)
        rc = b64_field(spk, "public_key", "signed_pre_key.public_key", b->signed_pre_key,
                       KW_PUBKEY_BYTES, KW_ERR_INVALID_KEY, err);
    if (rc == KW_OK)
        rc = b64_field(spk, "signature", "signed_pre_key.signature", b->signed_pre_key_signature,
                       KW_SIGNATURE_BYTES, KW_ERR_INVALID_SIGNATURE, err);
    return rc;
}

static kw_err parse_one_time(json_t *root, kw_bundle *b, kw_error *err)
{
    static const char *const fields[] = {"id", "public_key", NULL};
    json_t *otk = json_object_get(root, "one_time_pre_key");
    if (otk == NULL)
        return kw_error_set(err, KW_ERR_JSON, "one_time_pre_key: missing (use null)");
    if (json_is_null(otk))
        return KW_OK;
    if (!json_is_object(otk))
        return kw_error_set(err, KW_ERR_JSON, "one_time_pre_key: not an object or null");
    b->has_one_time_pre_key = 1;
    kw_err rc = kw_json_only_fields(otk, fields, "one_time_pre_key", err);
    if (rc == KW_OK)
        rc = int_field(otk, "id", "one_time_pre_key.id", 0, KW_PREKEY_ID_MAX,
                       &b->one_time_pre_key_id, err);
    if (rc == KW_OK)
        rc = b64_field(otk, "public_key", "one_time_pre_key.public_key", b->one_time_pre_key,
                       KW_PUBKEY_BYTES, KW_ERR_INVALID_KEY, err);
    return rc;
}

static kw_err parse_root(json_t *root, kw_bundle *b, kw_error *err)
{
    static const char *const fields[] = {
        "user_id",      "session_id",     "device_id",        "registration_id",
        "identity_key", "signed_pre_key", "one_time_pre_key", NULL};
    if (!json_is_object(root))
        return kw_error_set(err, KW_ERR_JSON, "bundle: not a JSON object");
    kw_err rc = kw_json_only_fields(root, fields, "bundle", err);
    if (rc == KW_OK)
        rc = owner_field(root, b, err);
    if (rc == KW_OK)
        rc = device_field(root, &b->device_id, err);
    if (rc == KW_OK)
        rc = int_field(root, "registration_id", "registration_id", 0, REGISTRATION_ID_MAX,
                       &b->registration_id, err);
    if (rc == KW_OK)
        rc = b64_field(root, "identity_key", "identity_key", b->identity_key, KW_PUBKEY_BYTES,
                       KW_ERR_INVALID_KEY, err);
    if (rc == KW_OK)
        rc = parse_signed(root, b, err);
    if (rc == KW_OK)
        rc = parse_one_time(root, b, err);
    if (rc == KW_OK &&
        kw_signature_verify(b->identity_key, b->signed_pre_key, KW_PUBKEY_BYTES,
                            b->signed_pre_key_signature, KW_SIGNATURE_BYTES) != KW_OK)
        rc = kw_error_set(err, KW_ERR_INVALID_SIGNATURE,
                          "signed_pre_key.signature: does not verify against identity_key");
    return rc;
}

kw_err kw_bundle_from_json(const char *json, size_t len, kw_bundle *out, kw_error *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kw_error_set(err, KW_ERR_JSON, "bundle: not JSON (line %d column %d)", jerr.line,
                            jerr.column);
    kw_err rc = parse_root(root, out, err);
    json_decref(root);
    if (rc != KW_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

static json_t *b64(const uint8_t *data, size_t len)
{
    char buf[128];
    if (kw_base64_encode(data, len, buf, sizeof buf) != KW_OK)
        return NULL;
    return json_string(buf);
}

/* The range and key-shape rules of parse_root, for encoding (the signature is verified
 * on upload and decode, not again here). */
static kw_err bundle_check(const kw_bundle *b, kw_error *err)
{
    if (memchr(b->owner, '\0', sizeof b->owner) == NULL || kw_name_check(b->owner, err) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "owner: empty, too long or not text");
    if (b->device_id == 0 || b->device_id > INT32_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "device_id: out of range");
    if (b->registration_id > REGISTRATION_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "registration_id: out of range");
    if (b->signed_pre_key_id > KW_PREKEY_ID_MAX ||
        (b->has_one_time_pre_key && b->one_time_pre_key_id > KW_PREKEY_ID_MAX))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre-key id: out of range");
    if (kw_pubkey_check(b->identity_key, KW_PUBKEY_BYTES) != KW_OK ||
        kw_pubkey_check(b->signed_pre_key, KW_PUBKEY_BYTES) != KW_OK ||
        (b->has_one_time_pre_key && kw_pubkey_check(b->one_time_pre_key, KW_PUBKEY_BYTES) != KW_OK))
        return kw_error_set(err, KW_ERR_INVALID_KEY, "bundle: a key lacks the 0x05 prefix");
    return KW_OK;
}

kw_err kw_bundle_to_json(const kw_bundle *b, char **json, kw_error *err)
{
    *json = NULL;
    kw_err rc = bundle_check(b, err);
    if (rc != KW_OK)
        return rc;
    char device[16];
    snprintf(device, sizeof device, "%u", b->device_id);
    json_t *otk = b->has_one_time_pre_key
                      ? json_pack("{s:I,s:o}", "id", (json_int_t)b->one_time_pre_key_id,
                                  "public_key", b64(b->one_time_pre_key, KW_PUBKEY_BYTES))
                      : json_null();
    json_t *doc = json_pack(
        "{s:s,s:s,s:I,s:o,s:{s:I,s:o,s:o},s:o}", b->owner_is_guest ? "session_id" : "user_id",
        b->owner, "device_id", device, "registration_id", (json_int_t)b->registration_id,
        "identity_key", b64(b->identity_key, KW_PUBKEY_BYTES), "signed_pre_key", "id",
        (json_int_t)b->signed_pre_key_id, "public_key", b64(b->signed_pre_key, KW_PUBKEY_BYTES),
        "signature", b64(b->signed_pre_key_signature, KW_SIGNATURE_BYTES), "one_time_pre_key", otk);
    *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (*json == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "bundle: out of memory");
    return KW_OK;
}

typedef struct lowest_walk {
    uint32_t lowest;
    int found;
} lowest_walk;

static kw_err find_lowest(void *arg, const char *key)
{
    lowest_walk *w = arg;
    uint32_t v = 0;
    if (kw_parse_decimal(key + strlen(KW_KEY_PREKEY_PREFIX), KW_PREKEY_ID_MAX, &v) != KW_OK)
        return KW_OK;
    if (!w->found || v < w->lowest) {
        w->lowest = v;
        w->found = 1;
    }
    return KW_OK;
}

kw_err kw_bundle_self(kw_identity *id, const char *owner, int owner_is_guest, uint32_t device_id,
                      kw_bundle *out, kw_error *err)
{
    memset(out, 0, sizeof *out);
    kw_err rc = kw_name_check(owner, err);
    if (rc != KW_OK)
        return rc;
    memcpy(out->owner, owner, strlen(owner) + 1);
    out->owner_is_guest = owner_is_guest;
    out->device_id = device_id;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    if ((rc = kw_keys_identity(id, &pub, err)) != KW_OK ||
        (rc = kw_keys_signed_pre_key(id, &spk, err)) != KW_OK)
        return rc;
    out->registration_id = pub.registration_id;
    memcpy(out->identity_key, pub.identity_key, KW_PUBKEY_BYTES);
    out->signed_pre_key_id = spk.id;
    memcpy(out->signed_pre_key, spk.public_key, KW_PUBKEY_BYTES);
    memcpy(out->signed_pre_key_signature, spk.signature, KW_SIGNATURE_BYTES);
    lowest_walk w = {0, 0};
    if (kw_store_list(id->store, KW_KEY_PREKEY_PREFIX, find_lowest, &w) != KW_OK)
        return kw_error_set(err, KW_ERR_STORE, "pre-keys: store list failed");
    if (!w.found)
        return KW_OK;
    session_pre_key *pk = NULL;
    if (signal_protocol_pre_key_load_key(id->sc, &pk, w.lowest) != SG_SUCCESS)
        return kw_error_set(err, KW_ERR_STORE, "pre-key %u: unreadable", w.lowest);
    signal_buffer *pb = NULL;
    int r = ec_public_key_serialize(&pb, ec_key_pair_get_public(session_pre_key_get_key_pair(pk)));
    SIGNAL_UNREF(pk);
    if (r < 0 || signal_buffer_len(pb) != KW_PUBKEY_BYTES) {
        signal_buffer_free(pb);
        return kw_error_set(err, KW_ERR_INTERNAL, "pre-key %u: bad public key", w.lowest);
    }
    memcpy(out->one_time_pre_key, signal_buffer_data(pb), KW_PUBKEY_BYTES);
    signal_buffer_free(pb);
    out->has_one_time_pre_key = 1;
    out->one_time_pre_key_id = w.lowest;
    return KW_OK;
}
