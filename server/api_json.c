/*
 * api_json.c — strict request-body reading shared by the api_*.c handlers (api_json.h).
 */
#include "api_json.h"

#include <ctype.h>
#include <string.h>

#include "json_strict.h"
#include "keywave/base64.h"

/* Case-insensitive substring test for the short ASCII needles below. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++) {
        size_t i = 0;
        while (i < n && hay[i] != '\0' &&
               tolower((unsigned char)hay[i]) == (unsigned char)needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int private_key_name(const char *name)
{
    return contains_ci(name, "priv") || contains_ci(name, "keypair") ||
           contains_ci(name, "key_pair");
}

/* INV-1: no field anywhere may look like it carries a private key. */
static kw_err refuse_private_fields(json_t *v, int depth, kw_error *err)
{
    if (depth > KW_API_JSON_DEPTH_MAX)
        return kw_error_set(err, KW_ERR_JSON, "body: nested more than %d levels",
                            KW_API_JSON_DEPTH_MAX);
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            if (private_key_name(key))
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                    "body: a field is named like a private key; private keys "
                                    "never leave the device");
            kw_err rc = refuse_private_fields(child, depth + 1, err);
            if (rc != KW_OK)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            kw_err rc = refuse_private_fields(child, depth + 1, err);
            if (rc != KW_OK)
                return rc;
        }
    }
    return KW_OK;
}

kw_err kw_api_body_object(const kw_request *req, const char *const *allowed, json_t **out,
                          kw_error *err)
{
    *out = NULL;
    if (req->body == NULL || req->body_len == 0)
        return kw_error_set(err, KW_ERR_JSON, "body: a JSON object is required");
    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kw_error_set(err, KW_ERR_JSON, "body: not JSON (line %d column %d)", jerr.line,
                            jerr.column);
    kw_err rc = KW_OK;
    if (!json_is_object(root))
        rc = kw_error_set(err, KW_ERR_JSON, "body: not a JSON object");
    if (rc == KW_OK)
        rc = refuse_private_fields(root, 0, err);
    if (rc == KW_OK)
        rc = kw_api_only_fields(root, allowed, "body", err);
    if (rc != KW_OK) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return KW_OK;
}

kw_err kw_api_only_fields(json_t *obj, const char *const *allowed, const char *path, kw_error *err)
{
    return kw_json_only_fields(obj, allowed, path, err);
}

kw_err kw_api_string(json_t *obj, const char *path, const char *field, size_t min, size_t max,
                     const char **out, kw_error *err)
{
    const char *dot = path[0] != '\0' ? "." : "";
    *out = NULL;
    json_t *v = json_object_get(obj, field);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s%s%s: missing or not a string", path,
                            dot, field);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n != strlen(s) || n < min || n > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s%s%s: must be %zu..%zu bytes", path,
                            dot, field, min, max);
    *out = s;
    return KW_OK;
}

kw_err kw_api_int(json_t *obj, const char *path, const char *field, int64_t min, int64_t max,
                  int64_t *out, kw_error *err)
{
    const char *dot = path[0] != '\0' ? "." : "";
    json_t *v = json_object_get(obj, field);
    if (!json_is_integer(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s%s%s: missing or not an integer", path,
                            dot, field);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s%s%s: not in %lld..%lld", path, dot,
                            field, (long long)min, (long long)max);
    *out = i;
    return KW_OK;
}

/* Decodes a base64 field of exactly want bytes; wrong_len is the code for another size. */
static kw_err b64_field(json_t *obj, const char *path, const char *field, uint8_t *out, size_t want,
                        kw_err wrong_len, kw_error *err)
{
    const char *dot = path[0] != '\0' ? "." : "";
    json_t *v = json_object_get(obj, field);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s%s%s: missing or not a string", path,
                            dot, field);
    uint8_t buf[96];
    size_t n = 0;
    kw_err rc = kw_base64_decode(json_string_value(v), json_string_length(v), buf, sizeof buf, &n);
    if (rc == KW_ERR_BUFFER_TOO_SMALL)
        return kw_error_set(err, wrong_len, "%s%s%s: too long, want %zu bytes", path, dot, field,
                            want);
    if (rc != KW_OK)
        return kw_error_set(err, KW_ERR_BASE64, "%s%s%s: not standard padded base64", path, dot,
                            field);
    if (n != want)
        return kw_error_set(err, wrong_len, "%s%s%s: %zu bytes, want %zu", path, dot, field, n,
                            want);
    memcpy(out, buf, want);
    return KW_OK;
}

kw_err kw_api_pubkey(json_t *obj, const char *path, const char *field, uint8_t out[KW_PUBKEY_BYTES],
                     kw_error *err)
{
    kw_err rc = b64_field(obj, path, field, out, KW_PUBKEY_BYTES, KW_ERR_INVALID_KEY, err);
    if (rc == KW_OK && out[0] != 0x05) /* INV-1: Curve25519 public keys only */
        return kw_error_set(err, KW_ERR_INVALID_KEY, "%s%s%s: prefix is not 0x05", path,
                            path[0] != '\0' ? "." : "", field);
    return rc;
}

kw_err kw_api_signature(json_t *obj, const char *path, const char *field,
                        uint8_t out[KW_SIGNATURE_BYTES], kw_error *err)
{
    return b64_field(obj, path, field, out, KW_SIGNATURE_BYTES, KW_ERR_INVALID_SIGNATURE, err);
}
