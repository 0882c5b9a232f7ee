/*
 * api_keys.c — the member key directory (DESIGN.md section 7): a device publishes its
 * identity key, signed pre-key and one-time pre-keys, and fetches another member device's
 * bundle, which consumes one of its one-time pre-keys (INV-2).
 *
 * Only public keys are accepted (INV-1): a body field named like a private key is refused
 * before anything else, keys must be 33 bytes with 0x05, signatures 64 bytes, and the
 * signed pre-key must verify against the stored identity key (the store checks it inside
 * its transaction). Bundle fetches are limited to 3 per minute per (fetcher device,
 * target device), counted only when a bundle is served.
 */
#include "api_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "db.h"
#include "db_members.h"
#include "rate_limit.h"
#include "rt.h"
#include "server.h"

/* ---- shared parsing ---------------------------------------------------------------- */

kw_err kw_api_keys_parse_prekeys(json_t *obj, const char *field, size_t min, size_t max,
                                 kw_db_prekey *out, size_t *n, kw_error *err)
{
    static const char *const fields[] = {"id", "public_key", NULL};
    *n = 0;
    json_t *arr = json_object_get(obj, field);
    if (!json_is_array(arr))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: missing or not an array", field);
    size_t count = json_array_size(arr);
    if (count < min || count > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: %zu..%zu keys, got %zu", field, min,
                            max, count);
    for (size_t i = 0; i < count; i++) {
        char path[64];
        snprintf(path, sizeof path, "%.32s[%zu]", field, i);
        json_t *item = json_array_get(arr, i);
        int64_t id = 0;
        if (!json_is_object(item))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: not an object", path);
        kw_err rc = kw_api_only_fields(item, fields, path, err);
        if (rc == KW_OK)
            rc = kw_api_int(item, path, "id", 0, KW_PREKEY_ID_MAX, &id, err);
        if (rc == KW_OK)
            rc = kw_api_pubkey(item, path, "public_key", out[i].public_key, err);
        if (rc != KW_OK)
            return rc;
        out[i].id = (uint32_t)id;
        for (size_t j = 0; j < i; j++) /* at most 100: quadratic is fine */
            if (out[j].id == out[i].id)
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s.id: repeats id %u", path,
                                    out[i].id);
    }
    *n = count;
    return KW_OK;
}

kw_err kw_api_keys_parse_signed_prekey(json_t *spk, const char *path, uint32_t *id,
                                       uint8_t public_key[KW_PUBKEY_BYTES],
                                       uint8_t signature[KW_SIGNATURE_BYTES], kw_error *err)
{
    static const char *const fields[] = {"id", "public_key", "signature", NULL};
    int64_t v = 0;
    if (!json_is_object(spk))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: missing or not an object", path);
    /* The body itself has been checked for unknown fields already; a nested one has not. */
    kw_err rc = kw_api_only_fields(spk, fields, path, err);
    const char *prefix = strcmp(path, "body") == 0 ? "" : path;
    if (rc == KW_OK)
        rc = kw_api_int(spk, prefix, "id", 0, KW_PREKEY_ID_MAX, &v, err);
    if (rc == KW_OK)
        rc = kw_api_pubkey(spk, prefix, "public_key", public_key, err);
    if (rc == KW_OK)
        rc = kw_api_signature(spk, prefix, "signature", signature, err);
    if (rc == KW_OK)
        *id = (uint32_t)v;
    return rc;
}

kw_err kw_api_keys_bundle_limit(struct kw_server *srv, const char *subject, const char *object,
                                int64_t now_ms, kw_response *res, kw_error *err)
{
    if (srv->bundle_limit == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "the bundle rate limiter is not set up");
    int64_t retry_s = 0;
    kw_err rc = kw_rate_limit_take(srv->bundle_limit, subject, object, now_ms, &retry_s);
    if (rc == KW_ERR_RATE_LIMITED) { /* INV-2 */
        res->retry_after_s = retry_s;
        return kw_error_set(err, rc, "at most 3 bundle fetches per minute for this device pair");
    }
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "rate limiter failed");
}

kw_err kw_api_keys_bundle_reply(kw_response *res, const kw_bundle *b, kw_error *err)
{
    char *json = NULL;
    kw_err rc = kw_bundle_to_json(b, &json, err);
    if (rc != KW_OK)
        return rc;
    rc = kw_response_json(res, 200, json);
    free(json);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

/* ---- the caller ----------------------------------------------------------------------- */

/* A decimal device id 1..KW_DEVICE_ID_MAX without sign or leading zero. */
static int parse_device_id(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10 || s[0] == '0')
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > KW_DEVICE_ID_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* The authenticated member device of req (the router has set it) and the store. */
static kw_err caller_device(kw_server *srv, const kw_request *req, uint32_t *device_id,
                            kw_error *err)
{
    /* Cannot happen behind the router (KW_AUTH_MEMBER rows): fail safely anyway. */
    if (srv->db == NULL || req->caller.kind != KW_CALLER_MEMBER ||
        !parse_device_id(req->caller.device_id, device_id))
        return kw_error_set(err, KW_ERR_INTERNAL, "no authenticated member device");
    return KW_OK;
}

static kw_err reply_ok(kw_response *res, kw_error *err)
{
    kw_err rc = kw_response_json(res, 200, "{\"ok\":true}");
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err reply_count(kw_response *res, size_t count, kw_error *err)
{
    kw_err rc = kw_response_take_json(res, 200, json_pack("{s:I}", "count", (json_int_t)count));
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

/* ---- handlers -------------------------------------------------------------------------- */

static kw_err put_identity(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"identity_key", "registration_id", NULL};
    uint32_t device_id = 0;
    json_t *body = NULL;
    uint8_t key[KW_PUBKEY_BYTES];
    int64_t reg = 0;
    kw_err rc = caller_device(srv, req, &device_id, err);
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_pubkey(body, "", "identity_key", key, err);
    if (rc == KW_OK)
        rc = kw_api_int(body, "", "registration_id", 0, KW_REGISTRATION_ID_MAX, &reg, err);
    json_decref(body);
    if (rc == KW_OK)
        rc = srv->db->keys->identity_put(srv->db->ctx, req->caller.user_id, device_id, key,
                                         (uint32_t)reg, err);
    return rc == KW_OK ? reply_ok(res, err) : rc;
}

static kw_err put_signed_prekey(kw_server *srv, const kw_request *req, kw_response *res,
                                kw_error *err)
{
    static const char *const fields[] = {"id", "public_key", "signature", NULL};
    uint32_t device_id = 0, id = 0;
    json_t *body = NULL;
    uint8_t key[KW_PUBKEY_BYTES], sig[KW_SIGNATURE_BYTES];
    kw_err rc = caller_device(srv, req, &device_id, err);
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_keys_parse_signed_prekey(body, "body", &id, key, sig, err);
    json_decref(body);
    if (rc == KW_OK) /* the store verifies the signature against the identity (INV-1) */
        rc = srv->db->keys->signed_prekey_put(srv->db->ctx, req->caller.user_id, device_id, id, key,
                                              sig, err);
    return rc == KW_OK ? reply_ok(res, err) : rc;
}

static kw_err post_prekeys(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"pre_keys", NULL};
    uint32_t device_id = 0;
    json_t *body = NULL;
    kw_db_prekey keys[KW_PREKEYS_PER_UPLOAD_MAX];
    size_t n = 0, count = 0;
    kw_err rc = caller_device(srv, req, &device_id, err);
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_keys_parse_prekeys(body, "pre_keys", 1, KW_PREKEYS_PER_UPLOAD_MAX, keys, &n,
                                       err);
    json_decref(body);
    if (rc == KW_OK)
        rc = srv->db->keys->prekeys_add(srv->db->ctx, req->caller.user_id, device_id, keys, n,
                                        &count, err);
    return rc == KW_OK ? reply_count(res, count, err) : rc;
}

static kw_err get_count(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    uint32_t device_id = 0;
    size_t count = 0;
    kw_err rc = caller_device(srv, req, &device_id, err);
    if (rc == KW_OK)
        rc =
            srv->db->keys->prekeys_count(srv->db->ctx, req->caller.user_id, device_id, &count, err);
    return rc == KW_OK ? reply_count(res, count, err) : rc;
}

static kw_err get_bundle(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    uint32_t device_id = 0, target_device = 0;
    kw_err rc = caller_device(srv, req, &device_id, err);
    if (rc != KW_OK)
        return rc;
    /* HEAD would consume a pre-key that nobody receives. */
    if (req->method != KW_GET) {
        res->allow = "GET";
        return kw_error_set(err, KW_ERR_METHOD_NOT_ALLOWED, "a bundle fetch is a GET");
    }
    if (req->n_params != 2)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    const char *target_user = req->params[0];
    if (!parse_device_id(req->params[1], &target_device) || strlen(target_user) > KW_DB_ID_MAX)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such member device");
    if (strcmp(target_user, req->caller.user_id) == 0 && target_device == device_id)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "deviceId: a device does not fetch its own bundle");
    char subject[KW_DB_ID_MAX + 16], object[KW_DB_ID_MAX + 16];
    snprintf(subject, sizeof subject, "m:%s:%u", req->caller.user_id, device_id);
    snprintf(object, sizeof object, "m:%s:%u", target_user, target_device);
    if ((rc = kw_api_keys_bundle_limit(srv, subject, object, req->now_ms, res, err)) != KW_OK)
        return rc;
    kw_bundle b;
    size_t remaining = 0;
    rc = srv->db->keys->bundle_take(srv->db->ctx, target_user, target_device, &b, &remaining, err);
    if (rc != KW_OK) {
        kw_rate_limit_refund(srv->bundle_limit, subject, object); /* nothing was served */
        return rc;
    }
    if (remaining < KW_PREKEY_LOW_WATER) { /* INV-2: the owner is told, on "/" */
        char device[16];
        snprintf(device, sizeof device, "%u", target_device);
        kw_rt_emit_to_device(srv, target_user, device, "prekeys:low",
                             json_pack("{s:I}", "count", (json_int_t)remaining));
    }
    return kw_api_keys_bundle_reply(res, &b, err);
}

const kw_route kw_routes_keys[] = {
    {KW_PUT, "/api/keys/identity", KW_AUTH_MEMBER, put_identity},
    {KW_PUT, "/api/keys/signed-prekey", KW_AUTH_MEMBER, put_signed_prekey},
    {KW_POST, "/api/keys/prekeys", KW_AUTH_MEMBER, post_prekeys},
    {KW_GET, "/api/keys/count", KW_AUTH_MEMBER, get_count},
    {KW_GET, "/api/keys/:userId/:deviceId", KW_AUTH_MEMBER, get_bundle},
    {0, NULL, 0, NULL},
};
