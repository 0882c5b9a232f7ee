/*
 * identity.c — opening and closing a kw_identity: the Signal context, its crypto provider
 * and store callbacks, and the handle's role and own address.
 */
#include <stdlib.h>
#include <string.h>

#include "identity_internal.h"

size_t kw_pubkey_bytes(void)
{
    return KW_PUBKEY_BYTES;
}

size_t kw_signature_bytes(void)
{
    return KW_SIGNATURE_BYTES;
}

void kw_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t kw_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void kw_put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    kw_put_u32(p, (uint32_t)(u >> 32));
    kw_put_u32(p + 4, (uint32_t)u);
}

int64_t kw_get_i64(const uint8_t *p)
{
    uint64_t u = (uint64_t)kw_get_u32(p) << 32 | kw_get_u32(p + 4);
    return (int64_t)u;
}

kw_err kw_parse_decimal(const char *s, uint32_t max, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
        return KW_ERR_INVALID_ARGUMENT;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KW_ERR_INVALID_ARGUMENT;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return KW_ERR_INVALID_ARGUMENT;
    *out = (uint32_t)v;
    return KW_OK;
}

kw_err kw_name_check(const char *name, kw_error *err)
{
    if (name == NULL || name[0] == '\0')
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "name: empty");
    size_t n = strlen(name);
    if (n > KW_NAME_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "name: %zu bytes, at most %d", n,
                            KW_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "name: control character");
    return KW_OK;
}

kw_err kw_identity_open(const kw_identity_config *cfg, kw_identity **out, kw_error *err)
{
    *out = NULL;
    if (cfg->role != KW_ROLE_MEMBER && cfg->role != KW_ROLE_GUEST)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "role: must be member or guest");
    if (cfg->store == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "store: missing");
    kw_identity *id = calloc(1, sizeof *id);
    if (id == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "identity: out of memory");
    id->role = cfg->role;
    id->store = cfg->store;
    id->rnd = cfg->random ? cfg->random : kw_random_system();
    kw_err rc = KW_OK;
    if (cfg->self_name != NULL) {
        rc = kw_identity_set_self(id, cfg->self_name, cfg->self_device_id);
        if (rc != KW_OK) {
            kw_error_set(err, rc, "self_name: invalid");
            goto fail;
        }
    }
    rc = kw_signal_context_new(id->rnd, &id->sg);
    if (rc != KW_OK) {
        kw_error_set(err, rc, "signal context: %s", kw_strerror(rc));
        goto fail;
    }
    rc = kw_signal_store_new(id->sg, id->store, &id->sc);
    if (rc != KW_OK) {
        kw_error_set(err, rc, "signal store: %s", kw_strerror(rc));
        goto fail;
    }
    *out = id;
    return KW_OK;
fail:
    kw_identity_free(id);
    return rc;
}

void kw_identity_free(kw_identity *id)
{
    if (id == NULL)
        return;
    if (id->sc)
        signal_protocol_store_context_destroy(id->sc);
    if (id->sg)
        signal_context_destroy(id->sg);
    free(id);
}

kw_role kw_identity_role(const kw_identity *id)
{
    return id->role;
}

kw_err kw_identity_set_self(kw_identity *id, const char *name, uint32_t device_id)
{
    if (kw_name_check(name, NULL) != KW_OK || device_id == 0 || device_id > INT32_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    memcpy(id->self_name, name, strlen(name) + 1);
    id->self_device_id = device_id;
    return KW_OK;
}
