/*
 * signal_store.c — the five store callback sets libsignal-protocol-c needs, written once
 * on top of kw_store. Records are the library's own serialized forms; names and group ids
 * in keys are hashed to a fixed 32-hex id (kw_key_name_id), so any name up to KW_NAME_MAX
 * bytes gives a short file-name-safe key and one name's records share an exact prefix
 * ("session/<name id>/").
 *
 * Identity trust is trust-on-first-use per address: the first identity key seen for an
 * address is saved; a different key later is untrusted (KW_ERR_UNTRUSTED_IDENTITY) until
 * the application deletes the trust record.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "identity_internal.h"
#include "signal_glue.h"

/* Returned by our callbacks when the kw_store fails; below SG_ERR_MINIMUM on purpose. */
#define SG_STORE_FAILED (SG_ERR_MINIMUM - 1)

#define KEY_BUF (KW_STORE_KEY_MAX + 1)

void kw_key_prekey(char *buf, size_t size, uint32_t id)
{
    snprintf(buf, size, KW_KEY_PREKEY_PREFIX "%" PRIu32, id);
}

void kw_key_signed_prekey(char *buf, size_t size, uint32_t id)
{
    snprintf(buf, size, KW_KEY_SPK_PREFIX "%" PRIu32, id);
}

kw_err kw_key_name_id(char buf[33], const char *name, size_t name_len)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t md[KW_SHA256_BYTES];
    if (kw_sha256((const uint8_t *)name, name_len, md) != KW_OK)
        return KW_ERR_CRYPTO;
    for (size_t i = 0; i < 16; i++) {
        buf[2 * i] = digits[md[i] >> 4];
        buf[2 * i + 1] = digits[md[i] & 15];
    }
    buf[32] = '\0';
    return KW_OK;
}

/* "<prefix><name id>/<device>" */
static int address_key(char *buf, const char *prefix, const signal_protocol_address *a)
{
    char hex[33];
    if (kw_key_name_id(hex, a->name, a->name_len) != KW_OK)
        return -1;
    int n = snprintf(buf, KEY_BUF, "%s%s/%" PRId32, prefix, hex, a->device_id);
    return n > 0 && n < KEY_BUF ? 0 : -1;
}

static int status(kw_err rc)
{
    return rc == KW_OK ? SG_SUCCESS : rc == KW_ERR_NOMEM ? SG_ERR_NOMEM : SG_STORE_FAILED;
}

/* Loads key into a new signal_buffer: 1 found, 0 absent, <0 error. */
static int load_buffer(kw_store *s, const char *key, signal_buffer **out)
{
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(s, key, &val, &len);
    if (rc == KW_ERR_NOT_FOUND)
        return 0;
    if (rc != KW_OK)
        return status(rc);
    *out = signal_buffer_create(val, len);
    kw_wipe(val, len);
    free(val);
    return *out ? 1 : SG_ERR_NOMEM;
}

static int contains(kw_store *s, const char *key)
{
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(s, key, &val, &len);
    if (rc != KW_OK)
        return rc == KW_ERR_NOT_FOUND ? 0 : status(rc);
    kw_wipe(val, len);
    free(val);
    return 1;
}

/* Sessions: the record and the (unused) user record, length-prefixed. */
static int session_load(signal_buffer **record, signal_buffer **user_record,
                        const signal_protocol_address *a, void *user)
{
    (void)user_record;
    char key[KEY_BUF];
    if (address_key(key, "session/", a) != 0)
        return SG_ERR_INVAL;
    return load_buffer(user, key, record);
}

typedef struct device_walk {
    signal_int_list *list;
    size_t prefix_len;
    int rc;
} device_walk;

static kw_err collect_device(void *arg, const char *key)
{
    device_walk *w = arg;
    uint32_t v = 0;
    if (kw_parse_decimal(key + w->prefix_len, INT32_MAX, &v) != KW_OK || v == 0)
        return KW_OK; /* not one of ours: skip */
    if (signal_int_list_push_back(w->list, (int)v) < 0) {
        w->rc = SG_ERR_NOMEM;
        return KW_ERR_NOMEM;
    }
    return KW_OK;
}

static int session_sub_devices(signal_int_list **sessions, const char *name, size_t name_len,
                               void *user)
{
    char hex[33], prefix[KEY_BUF];
    if (kw_key_name_id(hex, name, name_len) != KW_OK)
        return SG_ERR_UNKNOWN;
    int n = snprintf(prefix, sizeof prefix, "session/%s/", hex);
    if (n <= 0 || n >= (int)sizeof prefix)
        return SG_ERR_INVAL;
    device_walk w = {signal_int_list_alloc(), (size_t)n, 0};
    if (w.list == NULL)
        return SG_ERR_NOMEM;
    kw_err rc = kw_store_list(user, prefix, collect_device, &w);
    if (rc != KW_OK) {
        signal_int_list_free(w.list);
        return w.rc ? w.rc : status(rc);
    }
    *sessions = w.list;
    return (int)signal_int_list_size(w.list);
}

static int session_store(const signal_protocol_address *a, uint8_t *record, size_t len,
                         uint8_t *user_record, size_t user_len, void *user)
{
    (void)user_record;
    (void)user_len;
    char key[KEY_BUF];
    if (address_key(key, "session/", a) != 0)
        return SG_ERR_INVAL;
    return status(kw_store_put(user, key, record, len));
}

static int session_contains(const signal_protocol_address *a, void *user)
{
    char key[KEY_BUF];
    if (address_key(key, "session/", a) != 0)
        return 0;
    return contains(user, key);
}

static int session_delete(const signal_protocol_address *a, void *user)
{
    char key[KEY_BUF];
    if (address_key(key, "session/", a) != 0)
        return SG_ERR_INVAL;
    return status(kw_store_del(user, key)) == SG_SUCCESS ? 1 : SG_STORE_FAILED;
}

static int session_delete_all(const char *name, size_t name_len, void *user)
{
    signal_int_list *devices = NULL;
    int n = session_sub_devices(&devices, name, name_len, user);
    if (n < 0)
        return n;
    int deleted = 0;
    for (unsigned i = 0; i < signal_int_list_size(devices); i++) {
        signal_protocol_address a = {name, name_len, signal_int_list_at(devices, i)};
        if (session_delete(&a, user) < 0) {
            signal_int_list_free(devices);
            return SG_STORE_FAILED;
        }
        deleted++;
    }
    signal_int_list_free(devices);
    return deleted;
}

/* One-time and signed pre-keys share their shape. */
static int prekey_load(signal_buffer **record, uint32_t id, void *user)
{
    char key[KEY_BUF];
    kw_key_prekey(key, sizeof key, id);
    int r = load_buffer(user, key, record);
    return r == 1 ? SG_SUCCESS : r == 0 ? SG_ERR_INVALID_KEY_ID : r;
}

static int prekey_store(uint32_t id, uint8_t *record, size_t len, void *user)
{
    char key[KEY_BUF];
    kw_key_prekey(key, sizeof key, id);
    return status(kw_store_put(user, key, record, len));
}

static int prekey_contains(uint32_t id, void *user)
{
    char key[KEY_BUF];
    kw_key_prekey(key, sizeof key, id);
    return contains(user, key);
}

/* Called by the library after the first successful decrypt that used the pre-key. */
static int prekey_remove(uint32_t id, void *user)
{
    char key[KEY_BUF];
    kw_key_prekey(key, sizeof key, id);
    return status(kw_store_del(user, key));
}

static int spk_load(signal_buffer **record, uint32_t id, void *user)
{
    char key[KEY_BUF];
    kw_key_signed_prekey(key, sizeof key, id);
    int r = load_buffer(user, key, record);
    return r == 1 ? SG_SUCCESS : r == 0 ? SG_ERR_INVALID_KEY_ID : r;
}

static int spk_store(uint32_t id, uint8_t *record, size_t len, void *user)
{
    char key[KEY_BUF];
    kw_key_signed_prekey(key, sizeof key, id);
    return status(kw_store_put(user, key, record, len));
}

static int spk_contains(uint32_t id, void *user)
{
    char key[KEY_BUF];
    kw_key_signed_prekey(key, sizeof key, id);
    return contains(user, key);
}

static int spk_remove(uint32_t id, void *user)
{
    char key[KEY_BUF];
    kw_key_signed_prekey(key, sizeof key, id);
    return status(kw_store_del(user, key));
}

/* Identity: "identity/keypair" = 1 byte public length, public, private. */
static int identity_key_pair(signal_buffer **public_data, signal_buffer **private_data, void *user)
{
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(user, KW_KEY_IDENTITY, &val, &len);
    if (rc != KW_OK)
        return rc == KW_ERR_NOT_FOUND ? SG_ERR_INVALID_KEY : status(rc);
    int r = SG_ERR_INVALID_KEY;
    if (len >= 1 && (size_t)val[0] + 1 < len) {
        *public_data = signal_buffer_create(val + 1, val[0]);
        *private_data = signal_buffer_create(val + 1 + val[0], len - 1 - val[0]);
        r = (*public_data && *private_data) ? SG_SUCCESS : SG_ERR_NOMEM;
        if (r != SG_SUCCESS) {
            signal_buffer_free(*public_data);
            signal_buffer_bzero_free(*private_data);
            *public_data = *private_data = NULL;
        }
    }
    kw_wipe(val, len);
    free(val);
    return r;
}

static int identity_registration_id(void *user, uint32_t *registration_id)
{
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(user, KW_KEY_REGISTRATION, &val, &len);
    if (rc != KW_OK)
        return rc == KW_ERR_NOT_FOUND ? SG_ERR_INVALID_KEY_ID : status(rc);
    int r = SG_ERR_INVALID_KEY_ID;
    if (len == 4) {
        *registration_id =
            (uint32_t)val[0] << 24 | (uint32_t)val[1] << 16 | (uint32_t)val[2] << 8 | val[3];
        r = SG_SUCCESS;
    }
    free(val);
    return r;
}

static int identity_save(const signal_protocol_address *a, uint8_t *key_data, size_t key_len,
                         void *user)
{
    char key[KEY_BUF];
    if (address_key(key, "trust/", a) != 0)
        return SG_ERR_INVAL;
    if (key_data == NULL)
        return status(kw_store_del(user, key));
    return status(kw_store_put(user, key, key_data, key_len));
}

static int identity_is_trusted(const signal_protocol_address *a, uint8_t *key_data, size_t key_len,
                               void *user)
{
    char key[KEY_BUF];
    if (address_key(key, "trust/", a) != 0)
        return SG_ERR_INVAL;
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(user, key, &val, &len);
    if (rc == KW_ERR_NOT_FOUND)
        return 1; /* first use */
    if (rc != KW_OK)
        return status(rc);
    int same = len == key_len && kw_ct_memcmp(val, key_data, len) == 0;
    free(val);
    return same ? 1 : 0;
}

/* Sender keys: "sender_key/<group id>/<name id>/<device>". */
static int sender_key_key(char *buf, const signal_protocol_sender_key_name *n)
{
    char group[33];
    if (kw_key_name_id(group, n->group_id, n->group_id_len) != KW_OK)
        return -1;
    char prefix[KEY_BUF];
    int len = snprintf(prefix, sizeof prefix, "sender_key/%s/", group);
    if (len <= 0 || len >= (int)sizeof prefix)
        return -1;
    return address_key(buf, prefix, &n->sender);
}

static int sender_key_store(const signal_protocol_sender_key_name *n, uint8_t *record, size_t len,
                            uint8_t *user_record, size_t user_len, void *user)
{
    (void)user_record;
    (void)user_len;
    char key[KEY_BUF];
    if (sender_key_key(key, n) != 0)
        return SG_ERR_INVAL;
    return status(kw_store_put(user, key, record, len));
}

static int sender_key_load(signal_buffer **record, signal_buffer **user_record,
                           const signal_protocol_sender_key_name *n, void *user)
{
    (void)user_record;
    char key[KEY_BUF];
    if (sender_key_key(key, n) != 0)
        return SG_ERR_INVAL;
    return load_buffer(user, key, record);
}

kw_err kw_signal_store_new(signal_context *ctx, kw_store *store,
                           signal_protocol_store_context **out)
{
    *out = NULL;
    signal_protocol_store_context *sc = NULL;
    if (signal_protocol_store_context_create(&sc, ctx) != SG_SUCCESS)
        return KW_ERR_NOMEM;
    signal_protocol_session_store ss = {
        session_load,   session_sub_devices, session_store, session_contains,
        session_delete, session_delete_all,  NULL,          store};
    signal_protocol_pre_key_store ps = {prekey_load,   prekey_store, prekey_contains,
                                        prekey_remove, NULL,         store};
    signal_protocol_signed_pre_key_store sps = {spk_load,   spk_store, spk_contains,
                                                spk_remove, NULL,      store};
    signal_protocol_identity_key_store is = {identity_key_pair,
                                             identity_registration_id,
                                             identity_save,
                                             identity_is_trusted,
                                             NULL,
                                             store};
    signal_protocol_sender_key_store sks = {sender_key_store, sender_key_load, NULL, store};
    if (signal_protocol_store_context_set_session_store(sc, &ss) != 0 ||
        signal_protocol_store_context_set_pre_key_store(sc, &ps) != 0 ||
        signal_protocol_store_context_set_signed_pre_key_store(sc, &sps) != 0 ||
        signal_protocol_store_context_set_identity_key_store(sc, &is) != 0 ||
        signal_protocol_store_context_set_sender_key_store(sc, &sks) != 0) {
        signal_protocol_store_context_destroy(sc);
        return KW_ERR_INTERNAL;
    }
    *out = sc;
    return KW_OK;
}
