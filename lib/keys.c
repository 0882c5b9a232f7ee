/*
 * keys.c — the key lifecycle of DESIGN.md section 6 and seed 000: identity, signed
 * pre-key with its creation time (regenerated when older than 7 days), batches of 30
 * one-time pre-keys with a persistent next_pre_key_id, and the replenishment rule.
 *
 * Crash safety with a store that replaces one record at a time: every multi-record change
 * writes in an order whose every prefix is usable. A batch reserves its ids (advances
 * next_pre_key_id) before it writes a key, so a crash can skip ids but never reuse one; a
 * new signed pre-key is stored before the metadata points at it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curve.h>
#include <key_helper.h>
#include <ratchet.h>
#include <session_pre_key.h>

#include <jansson.h>

#include "crypto.h"
#include "identity_internal.h"
#include "keywave/base64.h"
#include "keywave/bundle.h"

#define META_NEXT_PREKEY "meta/next_pre_key_id"
#define META_SPK         "meta/signed_pre_key" /* id u32 || created_ms i64 */
#define META_NEXT_SPK    "meta/next_signed_pre_key_id"
#define META_BATCH       "meta/pre_key_batch" /* first id u32 || count u32 */
#define SPK_ID_MAX       0xFFFFFF

const char *kw_setup_step_label(kw_setup_step step)
{
    switch (step) {
    case KW_SETUP_CHECKING:
        return "Checking existing keys...";
    case KW_SETUP_IDENTITY:
        return "Generating identity keys...";
    case KW_SETUP_SIGNED_PRE_KEY:
        return "Generating signed pre-key...";
    case KW_SETUP_PRE_KEYS:
        return "Generating pre-keys...";
    case KW_SETUP_VALIDATING:
        return "Validating keys...";
    }
    return "";
}

/* Reads a fixed-size metadata record: KW_OK, KW_ERR_NOT_FOUND, KW_ERR_STORE. */
static kw_err meta_get(kw_identity *id, const char *key, uint8_t *buf, size_t len)
{
    uint8_t *val = NULL;
    size_t n = 0;
    kw_err rc = kw_store_get(id->store, key, &val, &n);
    if (rc != KW_OK)
        return rc == KW_ERR_NOT_FOUND ? rc : KW_ERR_STORE;
    if (n != len) {
        free(val);
        return KW_ERR_STORE;
    }
    memcpy(buf, val, len);
    free(val);
    return KW_OK;
}

static kw_err meta_get_u32(kw_identity *id, const char *key, uint32_t *v)
{
    uint8_t b[4];
    kw_err rc = meta_get(id, key, b, sizeof b);
    if (rc == KW_OK)
        *v = kw_get_u32(b);
    return rc;
}

static kw_err meta_put_u32(kw_identity *id, const char *key, uint32_t v)
{
    uint8_t b[4];
    kw_put_u32(b, v);
    return kw_store_put(id->store, key, b, sizeof b) == KW_OK ? KW_OK : KW_ERR_STORE;
}

static kw_err count_one(void *arg, const char *key)
{
    (void)key;
    (*(size_t *)arg)++;
    return KW_OK;
}

kw_err kw_keys_local_pre_key_count(kw_identity *id, size_t *count, kw_error *err)
{
    *count = 0;
    if (kw_store_list(id->store, KW_KEY_PREKEY_PREFIX, count_one, count) != KW_OK)
        return kw_error_set(err, KW_ERR_STORE, "pre-keys: store list failed");
    return KW_OK;
}

kw_err kw_keys_next_pre_key_id(kw_identity *id, uint32_t *next, kw_error *err)
{
    kw_err rc = meta_get_u32(id, META_NEXT_PREKEY, next);
    if (rc == KW_ERR_NOT_FOUND) {
        *next = 1;
        return KW_OK;
    }
    if (rc != KW_OK)
        return kw_error_set(err, rc, "next_pre_key_id: unreadable");
    return KW_OK;
}

static uint32_t prekey_id_add(uint32_t id, uint32_t n)
{
    return (uint32_t)(((uint64_t)id - 1 + n) % KW_PREKEY_ID_MAX) + 1;
}

static kw_err serialize_pub(const ec_public_key *key, uint8_t out[KW_PUBKEY_BYTES])
{
    signal_buffer *b = NULL;
    if (ec_public_key_serialize(&b, key) < 0)
        return KW_ERR_NOMEM;
    kw_err rc = KW_ERR_INVALID_KEY;
    if (signal_buffer_len(b) == KW_PUBKEY_BYTES) {
        memcpy(out, signal_buffer_data(b), KW_PUBKEY_BYTES);
        rc = KW_OK;
    }
    signal_buffer_free(b);
    return rc;
}

/* Identity: "identity/keypair" = public length byte, public, private. */
static kw_err make_identity(kw_identity *id, kw_error *err)
{
    ec_key_pair *pair = NULL;
    signal_buffer *pub = NULL, *priv = NULL;
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    kw_err rc = KW_ERR_CRYPTO;
    if (curve_generate_key_pair(id->sg, &pair) < 0)
        goto fail;
    if (ec_public_key_serialize(&pub, ec_key_pair_get_public(pair)) < 0 ||
        ec_private_key_serialize(&priv, ec_key_pair_get_private(pair)) < 0)
        goto fail;
    rec_len = 1 + signal_buffer_len(pub) + signal_buffer_len(priv);
    rec = malloc(rec_len);
    if (rec == NULL) {
        rc = KW_ERR_NOMEM;
        goto fail;
    }
    rec[0] = (uint8_t)signal_buffer_len(pub);
    memcpy(rec + 1, signal_buffer_data(pub), signal_buffer_len(pub));
    memcpy(rec + 1 + rec[0], signal_buffer_data(priv), signal_buffer_len(priv));
    rc = kw_store_put(id->store, KW_KEY_IDENTITY, rec, rec_len) == KW_OK ? KW_OK : KW_ERR_STORE;
fail:
    if (rc != KW_OK)
        kw_error_set(err, rc, "identity: %s", kw_strerror(rc));
    if (rec) {
        kw_wipe(rec, rec_len);
        free(rec);
    }
    signal_buffer_free(pub);
    if (priv)
        signal_buffer_bzero_free(priv);
    SIGNAL_UNREF(pair);
    return rc;
}

static kw_err make_registration_id(kw_identity *id, kw_error *err)
{
    uint32_t reg = 0;
    if (signal_protocol_key_helper_generate_registration_id(&reg, 0, id->sg) < 0)
        return kw_error_set(err, KW_ERR_CRYPTO, "registration_id: generation failed");
    if (meta_put_u32(id, KW_KEY_REGISTRATION, reg) != KW_OK)
        return kw_error_set(err, KW_ERR_STORE, "registration_id: store failed");
    return KW_OK;
}

static kw_err load_identity_pair(kw_identity *id, ratchet_identity_key_pair **pair)
{
    int r = signal_protocol_identity_get_key_pair(id->sc, pair);
    if (r == SG_ERR_INVALID_KEY)
        return KW_ERR_NOT_FOUND;
    return kw_from_signal(r);
}

kw_err kw_keys_identity(kw_identity *id, kw_public_identity *out, kw_error *err)
{
    ratchet_identity_key_pair *pair = NULL;
    kw_err rc = load_identity_pair(id, &pair);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "identity: %s",
                            rc == KW_ERR_NOT_FOUND ? "none yet, run setup" : kw_strerror(rc));
    rc = serialize_pub(ratchet_identity_key_pair_get_public(pair), out->identity_key);
    SIGNAL_UNREF(pair);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "identity: public key");
    rc = meta_get_u32(id, KW_KEY_REGISTRATION, &out->registration_id);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "registration_id: %s", kw_strerror(rc));
    return KW_OK;
}

typedef struct spk_meta {
    uint32_t id;
    int64_t created_ms;
} spk_meta;

static kw_err spk_meta_get(kw_identity *id, spk_meta *m)
{
    uint8_t b[12];
    kw_err rc = meta_get(id, META_SPK, b, sizeof b);
    if (rc == KW_OK) {
        m->id = kw_get_u32(b);
        m->created_ms = kw_get_i64(b + 4);
    }
    return rc;
}

kw_err kw_keys_signed_pre_key(kw_identity *id, kw_signed_pre_key_pub *out, kw_error *err)
{
    spk_meta m;
    kw_err rc = spk_meta_get(id, &m);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "signed_pre_key: %s", kw_strerror(rc));
    session_signed_pre_key *spk = NULL;
    rc = kw_from_signal(signal_protocol_signed_pre_key_load_key(id->sc, &spk, m.id));
    if (rc != KW_OK)
        return kw_error_set(err, rc == KW_ERR_INVALID_PREKEY_ID ? KW_ERR_NOT_FOUND : rc,
                            "signed_pre_key %u: not in store", m.id);
    out->id = m.id;
    out->created_ms = m.created_ms;
    rc = serialize_pub(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk)),
                       out->public_key);
    if (rc == KW_OK && session_signed_pre_key_get_signature_len(spk) == KW_SIGNATURE_BYTES)
        memcpy(out->signature, session_signed_pre_key_get_signature(spk), KW_SIGNATURE_BYTES);
    else if (rc == KW_OK)
        rc = KW_ERR_INVALID_SIGNATURE;
    SIGNAL_UNREF(spk);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "signed_pre_key: %s", kw_strerror(rc));
    return KW_OK;
}

static kw_err make_signed_pre_key(kw_identity *id, int64_t now_ms, kw_error *err)
{
    uint32_t spk_id = 1;
    kw_err rc = meta_get_u32(id, META_NEXT_SPK, &spk_id);
    if (rc != KW_OK && rc != KW_ERR_NOT_FOUND)
        return kw_error_set(err, rc, "next_signed_pre_key_id: unreadable");
    spk_meta old = {0, 0};
    rc = spk_meta_get(id, &old);
    if (rc != KW_OK && rc != KW_ERR_NOT_FOUND)
        return kw_error_set(err, rc, "signed_pre_key: metadata unreadable");
    int had_old = rc == KW_OK;
    ratchet_identity_key_pair *pair = NULL;
    rc = load_identity_pair(id, &pair);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "identity: missing while making signed pre-key");
    session_signed_pre_key *spk = NULL;
    int r = signal_protocol_key_helper_generate_signed_pre_key(&spk, pair, spk_id, (uint64_t)now_ms,
                                                               id->sg);
    SIGNAL_UNREF(pair);
    if (r < 0)
        return kw_error_set(err, KW_ERR_CRYPTO, "signed_pre_key: generation failed");
    r = signal_protocol_signed_pre_key_store_key(id->sc, spk);
    SIGNAL_UNREF(spk);
    if (r < 0)
        return kw_error_set(err, KW_ERR_STORE, "signed_pre_key: store failed");
    uint8_t b[12];
    kw_put_u32(b, spk_id);
    kw_put_i64(b + 4, now_ms);
    if (meta_put_u32(id, META_NEXT_SPK, spk_id % SPK_ID_MAX + 1) != KW_OK ||
        kw_store_put(id->store, META_SPK, b, sizeof b) != KW_OK)
        return kw_error_set(err, KW_ERR_STORE, "signed_pre_key: metadata store failed");
    /* Keep the previous signed pre-key (messages in flight may use it), drop older ones. */
    if (had_old) {
        uint32_t keep = old.id;
        for (uint32_t back = 1; back <= 3; back++) {
            uint32_t stale = (keep + SPK_ID_MAX - 1 - back) % SPK_ID_MAX + 1;
            if (stale != spk_id && stale != keep)
                (void)signal_protocol_signed_pre_key_remove_key(id->sc, stale);
        }
    }
    return KW_OK;
}

/* Makes count one-time pre-keys from next_pre_key_id, reserving the ids first. */
static kw_err make_pre_keys(kw_identity *id, uint32_t count, kw_setup_progress_fn progress,
                            void *arg, kw_error *err)
{
    uint32_t first = 1;
    kw_err rc = kw_keys_next_pre_key_id(id, &first, err);
    if (rc != KW_OK)
        return rc;
    if (meta_put_u32(id, META_NEXT_PREKEY, prekey_id_add(first, count)) != KW_OK)
        return kw_error_set(err, KW_ERR_STORE, "next_pre_key_id: store failed");
    for (uint32_t i = 0; i < count; i++) {
        ec_key_pair *pair = NULL;
        session_pre_key *pk = NULL;
        if (curve_generate_key_pair(id->sg, &pair) < 0)
            return kw_error_set(err, KW_ERR_CRYPTO, "pre-key: generation failed");
        int r = session_pre_key_create(&pk, prekey_id_add(first, i), pair);
        SIGNAL_UNREF(pair);
        if (r < 0)
            return kw_error_set(err, KW_ERR_NOMEM, "pre-key: out of memory");
        r = signal_protocol_pre_key_store_key(id->sc, pk);
        SIGNAL_UNREF(pk);
        if (r < 0)
            return kw_error_set(err, KW_ERR_STORE, "pre-key: store failed");
        if (progress)
            progress(arg, KW_SETUP_PRE_KEYS, (int)i + 1, (int)count, 0);
    }
    uint8_t b[8];
    kw_put_u32(b, first);
    kw_put_u32(b + 4, count);
    if (kw_store_put(id->store, META_BATCH, b, sizeof b) != KW_OK)
        return kw_error_set(err, KW_ERR_STORE, "pre-key batch: store failed");
    return KW_OK;
}

/* Verifies the current signed pre-key against the identity key. */
static kw_err validate(kw_identity *id, int64_t now_ms, kw_error *err)
{
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    kw_err rc = kw_keys_identity(id, &pub, err);
    if (rc == KW_OK)
        rc = kw_keys_signed_pre_key(id, &spk, err);
    if (rc != KW_OK)
        return rc;
    if (kw_signature_verify(pub.identity_key, spk.public_key, KW_PUBKEY_BYTES, spk.signature,
                            KW_SIGNATURE_BYTES) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_SIGNATURE,
                            "signed_pre_key %u: signature does not verify", spk.id);
    if (now_ms - spk.created_ms > KW_SIGNED_PREKEY_MAX_AGE_MS)
        return kw_error_set(err, KW_ERR_STATE, "signed_pre_key: older than 7 days");
    return KW_OK;
}

/* The closing event of a one-unit step: done == total, whether work was done or skipped. */
static void report(kw_setup_progress_fn progress, void *arg, kw_setup_step step, int skipped)
{
    if (progress)
        progress(arg, step, 1, 1, skipped);
}

/*
 * Does the stored signed pre-key need replacing: missing, older than 7 days, or not
 * verifying? A store that fails to read is an error, never a reason to make new keys.
 */
static kw_err signed_pre_key_stale(kw_identity *id, int64_t now_ms, int *stale, kw_error *err)
{
    kw_signed_pre_key_pub spk;
    kw_public_identity pub;
    *stale = 1;
    kw_err rc = kw_keys_signed_pre_key(id, &spk, err);
    if (rc == KW_ERR_NOT_FOUND)
        return KW_OK;
    if (rc == KW_OK)
        rc = kw_keys_identity(id, &pub, err);
    if (rc != KW_OK)
        return rc;
    if (now_ms - spk.created_ms > KW_SIGNED_PREKEY_MAX_AGE_MS)
        return KW_OK;
    rc = kw_signature_verify(pub.identity_key, spk.public_key, KW_PUBKEY_BYTES, spk.signature,
                             KW_SIGNATURE_BYTES);
    if (rc == KW_ERR_INVALID_SIGNATURE || rc == KW_ERR_INVALID_KEY)
        return KW_OK;
    if (rc != KW_OK)
        return kw_error_set(err, rc, "signed_pre_key: %s", kw_strerror(rc));
    *stale = 0;
    return KW_OK;
}

kw_err kw_keys_setup(kw_identity *id, int64_t now_ms, kw_setup_progress_fn progress, void *arg,
                     kw_setup_result *res, kw_error *err)
{
    kw_setup_result local = {0, 0, 0};
    if (progress)
        progress(arg, KW_SETUP_CHECKING, 0, 1, 0);
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(id->store, KW_KEY_IDENTITY, &val, &len);
    if (rc != KW_OK && rc != KW_ERR_NOT_FOUND)
        return kw_error_set(err, KW_ERR_STORE, "identity: unreadable");
    int need_identity = rc == KW_ERR_NOT_FOUND;
    if (val) {
        kw_wipe(val, len);
        free(val);
    }
    uint32_t reg;
    rc = meta_get_u32(id, KW_KEY_REGISTRATION, &reg);
    if (rc != KW_OK && rc != KW_ERR_NOT_FOUND)
        return kw_error_set(err, KW_ERR_STORE, "registration_id: unreadable");
    int need_registration = rc == KW_ERR_NOT_FOUND;
    size_t held = 0;
    rc = kw_keys_local_pre_key_count(id, &held, err);
    if (rc != KW_OK)
        return rc;
    if (progress)
        progress(arg, KW_SETUP_CHECKING, 1, 1, 0);

    if (progress)
        progress(arg, KW_SETUP_IDENTITY, 0, 1, !(need_identity || need_registration));
    if (need_identity && (rc = make_identity(id, err)) != KW_OK)
        return rc;
    if (need_registration && (rc = make_registration_id(id, err)) != KW_OK)
        return rc;
    local.made_identity = need_identity;
    report(progress, arg, KW_SETUP_IDENTITY, !(need_identity || need_registration));

    int need_spk = 1;
    if (!need_identity && (rc = signed_pre_key_stale(id, now_ms, &need_spk, err)) != KW_OK)
        return rc;
    if (progress)
        progress(arg, KW_SETUP_SIGNED_PRE_KEY, 0, 1, !need_spk);
    if (need_spk && (rc = make_signed_pre_key(id, now_ms, err)) != KW_OK)
        return rc;
    local.made_signed_pre_key = need_spk;
    report(progress, arg, KW_SETUP_SIGNED_PRE_KEY, !need_spk);

    int need_pre_keys = held < KW_PREKEY_BATCH;
    if (progress)
        progress(arg, KW_SETUP_PRE_KEYS, 0, KW_PREKEY_BATCH, !need_pre_keys);
    if (need_pre_keys && (rc = make_pre_keys(id, KW_PREKEY_BATCH, progress, arg, err)) != KW_OK)
        return rc;
    local.made_pre_keys = need_pre_keys ? KW_PREKEY_BATCH : 0;
    if (!need_pre_keys)
        report(progress, arg, KW_SETUP_PRE_KEYS, 1);

    if (progress)
        progress(arg, KW_SETUP_VALIDATING, 0, 1, 0);
    if ((rc = validate(id, now_ms, err)) != KW_OK)
        return rc;
    if (progress)
        progress(arg, KW_SETUP_VALIDATING, 1, 1, 0);
    if (res)
        *res = local;
    return KW_OK;
}

static json_t *b64_json(const uint8_t *data, size_t len)
{
    char buf[128];
    if (kw_base64_encode(data, len, buf, sizeof buf) != KW_OK)
        return NULL;
    return json_string(buf);
}

/* {"id":N,"public_key":"<b64>"} for a stored one-time pre-key, or NULL when absent. */
static json_t *pre_key_json(kw_identity *id, uint32_t pk_id)
{
    session_pre_key *pk = NULL;
    if (signal_protocol_pre_key_load_key(id->sc, &pk, pk_id) != SG_SUCCESS)
        return NULL;
    uint8_t pub[KW_PUBKEY_BYTES];
    kw_err rc = serialize_pub(ec_key_pair_get_public(session_pre_key_get_key_pair(pk)), pub);
    SIGNAL_UNREF(pk);
    if (rc != KW_OK)
        return NULL;
    return json_pack("{s:I,s:o}", "id", (json_int_t)pk_id, "public_key", b64_json(pub, sizeof pub));
}

static kw_err batch_json(kw_identity *id, uint32_t first, uint32_t count, json_t **out)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return KW_ERR_NOMEM;
    for (uint32_t i = 0; i < count; i++) {
        json_t *pk = pre_key_json(id, prekey_id_add(first, i));
        if (pk != NULL && json_array_append_new(arr, pk) != 0) {
            json_decref(arr);
            return KW_ERR_NOMEM;
        }
    }
    *out = arr;
    return KW_OK;
}

static kw_err dump(json_t *doc, char **json, kw_error *err)
{
    *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (*json == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "json: out of memory");
    return KW_OK;
}

kw_err kw_keys_export_json(kw_identity *id, char **json, kw_error *err)
{
    *json = NULL;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    kw_err rc = kw_keys_identity(id, &pub, err);
    if (rc == KW_OK)
        rc = kw_keys_signed_pre_key(id, &spk, err);
    if (rc != KW_OK)
        return rc;
    uint8_t b[8];
    uint32_t first = 1, count = 0;
    if (meta_get(id, META_BATCH, b, sizeof b) == KW_OK) {
        first = kw_get_u32(b);
        count = kw_get_u32(b + 4);
    }
    json_t *pre_keys = NULL;
    if ((rc = batch_json(id, first, count, &pre_keys)) != KW_OK)
        return kw_error_set(err, rc, "pre_keys: %s", kw_strerror(rc));
    json_t *doc =
        json_pack("{s:o,s:I,s:{s:I,s:o,s:o},s:o}", "identity_key",
                  b64_json(pub.identity_key, KW_PUBKEY_BYTES), "registration_id",
                  (json_int_t)pub.registration_id, "signed_pre_key", "id", (json_int_t)spk.id,
                  "public_key", b64_json(spk.public_key, KW_PUBKEY_BYTES), "signature",
                  b64_json(spk.signature, KW_SIGNATURE_BYTES), "pre_keys", pre_keys);
    return dump(doc, json, err);
}

kw_err kw_keys_replenish(kw_identity *id, size_t server_count, char **json, kw_error *err)
{
    *json = NULL;
    if (server_count >= KW_PREKEY_LOW_WATER)
        return KW_OK;
    uint32_t first = 1;
    kw_err rc = kw_keys_next_pre_key_id(id, &first, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = make_pre_keys(id, KW_PREKEY_BATCH, NULL, NULL, err)) != KW_OK)
        return rc;
    json_t *pre_keys = NULL;
    if ((rc = batch_json(id, first, KW_PREKEY_BATCH, &pre_keys)) != KW_OK)
        return kw_error_set(err, rc, "pre_keys: %s", kw_strerror(rc));
    return dump(json_pack("{s:o}", "pre_keys", pre_keys), json, err);
}
