/*
 * db_sqlite_keys.c — the member keys ops table (db_keys.h) on SQLite: identity keys,
 * signed pre-keys (verified against the stored identity before they are kept, INV-1) and
 * one-time pre-keys, handed out by a DELETE ... RETURNING inside the same write
 * transaction that reads the bundle (INV-2): BEGIN IMMEDIATE takes SQLite's single write
 * lock first, so two connections, even in two processes, cannot read the same pre-key.
 */
#include <stdio.h>
#include <string.h>

#include "db_sqlite.h"

static const char SQL_IDENTITY_GET[] = "SELECT identity_key, registration_id"
                                       " FROM member_identity_keys"
                                       " WHERE user_id = ?1 AND device_id = ?2";
static const char SQL_IDENTITY_INSERT[] =
    "INSERT INTO member_identity_keys (user_id, device_id, identity_key, registration_id)"
    " VALUES (?1, ?2, ?3, ?4)";
static const char SQL_SIGNED_UPSERT[] =
    "INSERT INTO member_signed_prekeys (user_id, device_id, key_id, public_key, signature)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, device_id) DO UPDATE SET"
    " key_id = excluded.key_id, public_key = excluded.public_key,"
    " signature = excluded.signature";
static const char SQL_PREKEY_INSERT[] =
    "INSERT INTO member_prekeys (user_id, device_id, key_id, public_key) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_PREKEY_COUNT[] =
    "SELECT count(*) FROM member_prekeys WHERE user_id = ?1 AND device_id = ?2";
static const char SQL_BUNDLE_GET[] =
    "SELECT i.registration_id, i.identity_key, s.key_id, s.public_key, s.signature"
    " FROM member_identity_keys i JOIN member_signed_prekeys s"
    " ON s.user_id = i.user_id AND s.device_id = i.device_id"
    " WHERE i.user_id = ?1 AND i.device_id = ?2";
static const char SQL_PREKEY_TAKE[] =
    "DELETE FROM member_prekeys WHERE user_id = ?1 AND device_id = ?2 AND key_id ="
    " (SELECT min(key_id) FROM member_prekeys WHERE user_id = ?1 AND device_id = ?2)"
    " RETURNING key_id, public_key";

/* Copies a blob column of exactly n bytes; 0 if it has another size. */
static int column_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t n)
{
    const void *b = sqlite3_column_blob(st, col);
    if (b == NULL || sqlite3_column_bytes(st, col) != (int)n)
        return 0;
    memcpy(out, b, n);
    return 1;
}

static void bind_device(sqlite3_stmt *st, const char *user_id, uint32_t device_id)
{
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
}

/* Reads the stored identity: KW_OK with *found 0 or 1. */
static kw_err identity_read(kw_sqlite *s, const char *user_id, uint32_t device_id, int *found,
                            uint8_t key[KW_PUBKEY_BYTES], uint32_t *registration_id, kw_error *err)
{
    *found = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_IDENTITY_GET, err);
    if (st == NULL)
        return err->code;
    bind_device(st, user_id, device_id);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_ROW) {
        *found = 1;
        *registration_id = (uint32_t)sqlite3_column_int64(st, 1);
        if (!column_blob(st, 0, key, KW_PUBKEY_BYTES))
            rc = kw_error_set(err, KW_ERR_STORE, "storage failed (identity row malformed)");
    } else if (r != SQLITE_DONE) {
        rc = kw_sqlite_fail(s, "read identity", err);
    }
    kw_sqlite_reset(st);
    return rc;
}

static kw_err identity_put(void *ctx, const char *user_id, uint32_t device_id,
                           const uint8_t identity_key[KW_PUBKEY_BYTES], uint32_t registration_id,
                           kw_error *err)
{
    kw_sqlite *s = ctx;
    if (kw_pubkey_check(identity_key, KW_PUBKEY_BYTES) != KW_OK) /* INV-1 */
        return kw_error_set(err, KW_ERR_INVALID_KEY, "identity_key: not 33 bytes with 0x05");
    if (registration_id > KW_REGISTRATION_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "registration_id: not in 0..16383");
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    int found = 0;
    uint8_t stored[KW_PUBKEY_BYTES];
    uint32_t stored_reg = 0;
    if ((rc = identity_read(s, user_id, device_id, &found, stored, &stored_reg, err)) != KW_OK)
        goto fail;
    if (found) {
        if (memcmp(stored, identity_key, KW_PUBKEY_BYTES) != 0 || stored_reg != registration_id) {
            rc = kw_error_set(err, KW_ERR_CONFLICT,
                              "identity_key: this device already has another identity");
            goto fail;
        }
        kw_sqlite_rollback(s); /* the same identity again: nothing to write */
        return KW_OK;
    }
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_IDENTITY_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    bind_device(st, user_id, device_id);
    sqlite3_bind_blob(st, 3, identity_key, KW_PUBKEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, registration_id);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "device: no such device");
    else if (r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "insert identity", err);
    if (rc != KW_OK || (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err signed_prekey_put(void *ctx, const char *user_id, uint32_t device_id, uint32_t id,
                                const uint8_t public_key[KW_PUBKEY_BYTES],
                                const uint8_t signature[KW_SIGNATURE_BYTES], kw_error *err)
{
    kw_sqlite *s = ctx;
    if (kw_pubkey_check(public_key, KW_PUBKEY_BYTES) != KW_OK) /* INV-1 */
        return kw_error_set(err, KW_ERR_INVALID_KEY, "public_key: not 33 bytes with 0x05");
    if (id > KW_PREKEY_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "id: not in 0..16777215");
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    int found = 0;
    uint8_t identity[KW_PUBKEY_BYTES];
    uint32_t reg = 0;
    if ((rc = identity_read(s, user_id, device_id, &found, identity, &reg, err)) != KW_OK)
        goto fail;
    if (!found) {
        rc = kw_error_set(err, KW_ERR_CONFLICT, "identity_key: upload the identity key first");
        goto fail;
    }
    /* INV-1: the signature must verify against this device's identity key. */
    if (kw_signature_verify(identity, public_key, KW_PUBKEY_BYTES, signature, KW_SIGNATURE_BYTES) !=
        KW_OK) {
        rc = kw_error_set(err, KW_ERR_INVALID_SIGNATURE,
                          "signature: does not verify against the identity key");
        goto fail;
    }
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_SIGNED_UPSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    bind_device(st, user_id, device_id);
    sqlite3_bind_int64(st, 3, id);
    sqlite3_bind_blob(st, 4, public_key, KW_PUBKEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, signature, KW_SIGNATURE_BYTES, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "store signed pre-key", err);
    if (rc != KW_OK || (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err count_prekeys(kw_sqlite *s, const char *user_id, uint32_t device_id, size_t *count,
                            kw_error *err)
{
    *count = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PREKEY_COUNT, err);
    if (st == NULL)
        return err->code;
    bind_device(st, user_id, device_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *count = (size_t)sqlite3_column_int64(st, 0);
    kw_sqlite_reset(st);
    return r == SQLITE_ROW ? KW_OK : kw_sqlite_fail(s, "count pre-keys", err);
}

/* The rules of an upload that need no storage: count, id range and uniqueness, key shape. */
static kw_err prekeys_check(const kw_db_prekey *keys, size_t n, kw_error *err)
{
    if (n < 1 || n > KW_PREKEYS_PER_UPLOAD_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre_keys: 1..100 keys, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        if (keys[i].id > KW_PREKEY_ID_MAX)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "pre_keys[%zu].id: not in 0..16777215", i);
        if (kw_pubkey_check(keys[i].public_key, KW_PUBKEY_BYTES) != KW_OK) /* INV-1 */
            return kw_error_set(err, KW_ERR_INVALID_KEY,
                                "pre_keys[%zu].public_key: not 33 bytes with 0x05", i);
        for (size_t j = 0; j < i; j++) /* n <= 100: quadratic is cheaper than sorting */
            if (keys[j].id == keys[i].id)
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre_keys[%zu].id: repeats id %u",
                                    i, keys[i].id);
    }
    return KW_OK;
}

static kw_err prekeys_add(void *ctx, const char *user_id, uint32_t device_id,
                          const kw_db_prekey *keys, size_t n, size_t *count, kw_error *err)
{
    kw_sqlite *s = ctx;
    *count = 0;
    kw_err rc = prekeys_check(keys, n, err);
    if (rc != KW_OK || (rc = kw_sqlite_begin(s, err)) != KW_OK)
        return rc;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PREKEY_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        bind_device(st, user_id, device_id);
        sqlite3_bind_int64(st, 3, keys[i].id);
        sqlite3_bind_blob(st, 4, keys[i].public_key, KW_PUBKEY_BYTES, SQLITE_STATIC);
        int r = sqlite3_step(st);
        kw_sqlite_reset(st);
        if (r == SQLITE_CONSTRAINT_PRIMARYKEY) {
            rc = kw_error_set(err, KW_ERR_CONFLICT, "pre_keys[%zu].id: %u is already stored unused",
                              i, keys[i].id);
            goto fail;
        }
        if (r == SQLITE_CONSTRAINT_FOREIGNKEY) {
            rc = kw_error_set(err, KW_ERR_NOT_FOUND, "device: no such device");
            goto fail;
        }
        if (r != SQLITE_DONE) {
            rc = kw_sqlite_fail(s, "insert pre-key", err);
            goto fail;
        }
    }
    if ((rc = count_prekeys(s, user_id, device_id, count, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    *count = 0;
    return rc;
}

static kw_err prekeys_count(void *ctx, const char *user_id, uint32_t device_id, size_t *count,
                            kw_error *err)
{
    return count_prekeys(ctx, user_id, device_id, count, err);
}

/* Reads identity and signed pre-key into out (inside the caller's transaction). */
static kw_err bundle_read(kw_sqlite *s, const char *user_id, uint32_t device_id, kw_bundle *out,
                          kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_BUNDLE_GET, err);
    if (st == NULL)
        return err->code;
    bind_device(st, user_id, device_id);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE) {
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "device: no such device or no keys published");
    } else if (r != SQLITE_ROW) {
        rc = kw_sqlite_fail(s, "read bundle", err);
    } else {
        out->registration_id = (uint32_t)sqlite3_column_int64(st, 0);
        out->signed_pre_key_id = (uint32_t)sqlite3_column_int64(st, 2);
        if (!column_blob(st, 1, out->identity_key, KW_PUBKEY_BYTES) ||
            !column_blob(st, 3, out->signed_pre_key, KW_PUBKEY_BYTES) ||
            !column_blob(st, 4, out->signed_pre_key_signature, KW_SIGNATURE_BYTES))
            rc = kw_error_set(err, KW_ERR_STORE, "storage failed (bundle row malformed)");
    }
    kw_sqlite_reset(st);
    return rc;
}

/* Deletes and returns the lowest unused pre-key, if any (inside the caller's transaction). */
static kw_err prekey_take(kw_sqlite *s, const char *user_id, uint32_t device_id, kw_bundle *out,
                          kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PREKEY_TAKE, err);
    if (st == NULL)
        return err->code;
    bind_device(st, user_id, device_id);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_ROW) {
        out->has_one_time_pre_key = 1;
        out->one_time_pre_key_id = (uint32_t)sqlite3_column_int64(st, 0);
        if (!column_blob(st, 1, out->one_time_pre_key, KW_PUBKEY_BYTES))
            rc = kw_error_set(err, KW_ERR_STORE, "storage failed (pre-key row malformed)");
        r = sqlite3_step(st); /* finish the DELETE */
    }
    kw_sqlite_reset(st);
    if (rc == KW_OK && r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "take pre-key", err);
    return rc;
}

static kw_err bundle_take(void *ctx, const char *user_id, uint32_t device_id, kw_bundle *out,
                          size_t *remaining, kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    size_t left = 0;
    size_t id_len = strlen(user_id);
    if (id_len == 0 || id_len > KW_NAME_MAX)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "device: no such device");
    memcpy(out->owner, user_id, id_len + 1);
    out->device_id = device_id;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        goto fail_early;
    if ((rc = bundle_read(s, user_id, device_id, out, err)) != KW_OK ||
        (rc = prekey_take(s, user_id, device_id, out, err)) != KW_OK ||
        (rc = count_prekeys(s, user_id, device_id, &left, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK) {
        kw_sqlite_rollback(s);
        goto fail_early;
    }
    if (remaining != NULL)
        *remaining = left;
    return KW_OK;
fail_early:
    memset(out, 0, sizeof *out);
    return rc;
}

const kw_db_keys_ops kw_sqlite_keys_ops = {
    .identity_put = identity_put,
    .signed_prekey_put = signed_prekey_put,
    .prekeys_add = prekeys_add,
    .prekeys_count = prekeys_count,
    .bundle_take = bundle_take,
};
