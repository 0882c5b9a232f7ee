/*
 * db_sqlite_members.c — the members ops table (db_members.h) on SQLite: users, devices,
 * one-time enrollment codes (stored as SHA-256 only), device sessions and request nonces.
 *
 * Every op that writes runs in one BEGIN IMMEDIATE transaction and rolls back on any
 * failure, so a failed call changes nothing; device ids are allocated inside the
 * enrollment transaction from users.next_device_id.
 */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "db_sqlite.h"
#include "keywave/base64.h"

static const char CODE_ALPHABET[] = "abcdefghijklmnopqrstuvwxyz234567"; /* RFC 4648 base32 */

/* ---- input rules ---------------------------------------------------------------- */

static int user_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '-';
        if (!ok || n >= KW_USER_NAME_MAX)
            return 0;
    }
    return n > 0;
}

static int device_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        unsigned char c = (unsigned char)name[n];
        if (c < 0x20 || c == 0x7f || n >= KW_DEVICE_NAME_MAX)
            return 0;
    }
    return n > 0;
}

static int code_ok(const char *code)
{
    size_t n = 0;
    for (; code[n] != '\0'; n++)
        if (n >= KW_ENROLL_CODE_CHARS || strchr(CODE_ALPHABET, code[n]) == NULL)
            return 0;
    return n == KW_ENROLL_CODE_CHARS;
}

/* ---- fresh values ---------------------------------------------------------------- */

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static kw_err new_user_id(kw_sqlite *s, char out[KW_DB_ID_MAX + 1])
{
    uint8_t raw[8];
    kw_err rc = kw_random_fill(s->rnd, raw, sizeof raw);
    if (rc != KW_OK)
        return rc;
    memcpy(out, "usr_", 4);
    hex(raw, sizeof raw, out + 4);
    return KW_OK;
}

/* 20 characters of base32: each random byte's low 5 bits (256 is a multiple of 32). */
static kw_err new_code(kw_sqlite *s, char out[KW_ENROLL_CODE_CHARS + 1])
{
    uint8_t raw[KW_ENROLL_CODE_CHARS];
    kw_err rc = kw_random_fill(s->rnd, raw, sizeof raw);
    if (rc == KW_OK) {
        for (size_t i = 0; i < sizeof raw; i++)
            out[i] = CODE_ALPHABET[raw[i] & 31];
        out[KW_ENROLL_CODE_CHARS] = '\0';
    }
    kw_wipe(raw, sizeof raw);
    return rc;
}

static kw_err new_session(kw_sqlite *s, char client_id[KW_CLIENT_ID_CHARS + 1],
                          char secret[KW_SESSION_SECRET_CHARS + 1])
{
    uint8_t raw[32];
    char b64[48];
    kw_err rc = kw_random_fill(s->rnd, raw, KW_CLIENT_ID_CHARS / 2);
    if (rc != KW_OK)
        return rc;
    hex(raw, KW_CLIENT_ID_CHARS / 2, client_id);
    rc = kw_random_fill(s->rnd, raw, sizeof raw);
    if (rc == KW_OK)
        rc = kw_base64_encode(raw, sizeof raw, b64, sizeof b64);
    if (rc == KW_OK) {
        /* base64url without padding: 32 bytes are 43 characters plus one '='. */
        for (size_t i = 0; i < KW_SESSION_SECRET_CHARS; i++) {
            char c = b64[i];
            if (c == '+')
                c = '-';
            else if (c == '/')
                c = '_';
            secret[i] = c;
        }
        secret[KW_SESSION_SECRET_CHARS] = '\0';
    }
    kw_wipe(raw, sizeof raw);
    kw_wipe(b64, sizeof b64);
    return rc;
}

static kw_err code_hash(const char *code, uint8_t out[KW_SHA256_BYTES])
{
    return kw_sha256((const uint8_t *)code, strlen(code), out);
}

/* ---- statements ------------------------------------------------------------------ */

static const char SQL_USER_INSERT[] =
    "INSERT INTO users (user_id, name, created_ms) VALUES (?1, ?2, ?3)";
static const char SQL_USER_BY_NAME[] = "SELECT user_id FROM users WHERE name = ?1";
static const char SQL_USER_GET[] = "SELECT name, created_ms FROM users WHERE user_id = ?1";
static const char SQL_CODE_INSERT[] =
    "INSERT INTO enrollment_codes (code_hash, user_id, expires_ms) VALUES (?1, ?2, ?3)";
static const char SQL_CODE_REDEEM[] = "DELETE FROM enrollment_codes"
                                      " WHERE code_hash = ?1 AND expires_ms > ?2 RETURNING user_id";
static const char SQL_DEVICE_ALLOC[] = "UPDATE users SET next_device_id = next_device_id + 1"
                                       " WHERE user_id = ?1 RETURNING next_device_id - 1";
static const char SQL_DEVICE_INSERT[] =
    "INSERT INTO devices (user_id, device_id, name, created_ms) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DEVICE_EXISTS[] =
    "SELECT 1 FROM devices WHERE user_id = ?1 AND device_id = ?2";
static const char SQL_SESSION_INSERT[] =
    "INSERT INTO device_sessions (client_id, user_id, device_id, session_secret, created_ms,"
    " last_used_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_SESSION_GET[] = "SELECT user_id, device_id, session_secret, last_used_ms"
                                      " FROM device_sessions WHERE client_id = ?1";
static const char SQL_SESSION_TOUCH[] =
    "UPDATE device_sessions SET last_used_ms = max(last_used_ms, ?2) WHERE client_id = ?1";
/* A nonce row that has expired may be taken over: its timestamp can no longer pass. */
static const char SQL_NONCE_INSERT[] =
    "INSERT INTO nonces (client_id, nonce, expires_ms) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (client_id, nonce) DO UPDATE SET expires_ms = excluded.expires_ms"
    " WHERE nonces.expires_ms <= ?4";
static const char SQL_NONCE_PURGE[] =
    "DELETE FROM nonces WHERE (client_id, nonce) IN"
    " (SELECT client_id, nonce FROM nonces WHERE expires_ms <= ?1 LIMIT ?2)";
static const char SQL_CODE_PURGE[] =
    "DELETE FROM enrollment_codes WHERE rowid IN"
    " (SELECT rowid FROM enrollment_codes WHERE expires_ms <= ?1 LIMIT ?2)";

/* Inserts a fresh code for user_id (inside the caller's transaction). */
static kw_err insert_code(kw_sqlite *s, const char *user_id, int64_t now_ms,
                          char code[KW_ENROLL_CODE_CHARS + 1], kw_error *err)
{
    uint8_t h[KW_SHA256_BYTES];
    kw_err rc = new_code(s, code);
    if (rc == KW_OK)
        rc = code_hash(code, h);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot make an enrollment code");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CODE_INSERT, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_blob(st, 1, h, sizeof h, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms + KW_ENROLL_CODE_TTL_MS);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    return r == SQLITE_DONE ? KW_OK : kw_sqlite_fail(s, "insert enrollment code", err);
}

/* ---- ops ------------------------------------------------------------------------- */

static kw_err user_add(void *ctx, const char *name, int64_t now_ms, char user_id[KW_DB_ID_MAX + 1],
                       char code[KW_ENROLL_CODE_CHARS + 1], kw_error *err)
{
    kw_sqlite *s = ctx;
    user_id[0] = code[0] = '\0';
    if (name == NULL || !user_name_ok(name))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "name: 1..64 characters of A-Z a-z 0-9 . _ @ -");
    kw_err rc = new_user_id(s, user_id);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot make a user id");
    if ((rc = kw_sqlite_begin(s, err)) != KW_OK)
        return rc;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_USER_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r == SQLITE_CONSTRAINT_UNIQUE) {
        rc = kw_error_set(err, KW_ERR_CONFLICT, "name: a user with that name exists");
        goto fail;
    }
    if (r != SQLITE_DONE) {
        rc = kw_sqlite_fail(s, "insert user", err);
        goto fail;
    }
    if ((rc = insert_code(s, user_id, now_ms, code, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    kw_wipe(code, KW_ENROLL_CODE_CHARS + 1);
    user_id[0] = '\0';
    return rc;
}

static kw_err code_issue(void *ctx, const char *name, int64_t now_ms,
                         char user_id[KW_DB_ID_MAX + 1], char code[KW_ENROLL_CODE_CHARS + 1],
                         kw_error *err)
{
    kw_sqlite *s = ctx;
    user_id[0] = code[0] = '\0';
    if (name == NULL || !user_name_ok(name))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "name: 1..64 characters of A-Z a-z 0-9 . _ @ -");
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_USER_BY_NAME, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int found = r == SQLITE_ROW && kw_sqlite_column_text(st, 0, user_id, KW_DB_ID_MAX + 1);
    kw_sqlite_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = kw_sqlite_fail(s, "find user", err);
        goto fail;
    }
    if (!found) {
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "name: no such user");
        goto fail;
    }
    if ((rc = insert_code(s, user_id, now_ms, code, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    kw_wipe(code, KW_ENROLL_CODE_CHARS + 1);
    user_id[0] = '\0';
    return rc;
}

/* Steps the redeem, allocation and insert statements of one enrollment (in a transaction). */
static kw_err enroll_steps(kw_sqlite *s, const uint8_t hash[KW_SHA256_BYTES],
                           const char *device_name, int64_t now_ms, kw_db_enrollment *out,
                           kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CODE_REDEEM, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_blob(st, 1, hash, KW_SHA256_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    int r = sqlite3_step(st);
    int found = r == SQLITE_ROW && kw_sqlite_column_text(st, 0, out->user_id, sizeof out->user_id);
    if (r == SQLITE_ROW)
        r = sqlite3_step(st); /* finish the DELETE */
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, "redeem enrollment code", err);
    if (!found)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "code: unknown, already used or expired");

    if ((st = kw_sqlite_stmt(s, SQL_DEVICE_ALLOC, err)) == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, out->user_id, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    int64_t device_id = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (r == SQLITE_ROW)
        r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, "allocate device id", err);
    if (device_id < 1 || device_id > KW_DEVICE_ID_MAX) /* a foreign key keeps the user */
        return kw_error_set(err, KW_ERR_INTERNAL, "device id out of range");
    out->device_id = (uint32_t)device_id;

    if ((st = kw_sqlite_stmt(s, SQL_DEVICE_INSERT, err)) == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, out->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    sqlite3_bind_text(st, 3, device_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, "insert device", err);

    kw_err rc = new_session(s, out->client_id, out->session_secret);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot make a session");
    if ((st = kw_sqlite_stmt(s, SQL_SESSION_INSERT, err)) == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, out->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, out->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, device_id);
    sqlite3_bind_text(st, 4, out->session_secret, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    r = sqlite3_step(st);
    kw_sqlite_reset(st);
    return r == SQLITE_DONE ? KW_OK : kw_sqlite_fail(s, "insert session", err);
}

static kw_err enroll(void *ctx, const char *code, const char *device_name, int64_t now_ms,
                     kw_db_enrollment *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    if (code == NULL || !code_ok(code))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "code: 20 characters of lower-case base32 (a-z, 2-7)");
    if (device_name == NULL || !device_name_ok(device_name))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "device_name: 1..64 bytes without control characters");
    uint8_t h[KW_SHA256_BYTES];
    kw_err rc = code_hash(code, h);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot hash the code");
    if ((rc = kw_sqlite_begin(s, err)) != KW_OK)
        return rc;
    rc = enroll_steps(s, h, device_name, now_ms, out, err);
    if (rc == KW_OK)
        rc = kw_sqlite_commit(s, err);
    if (rc != KW_OK) {
        kw_sqlite_rollback(s);
        kw_wipe(out, sizeof *out);
    }
    return rc;
}

static kw_err session_get(void *ctx, const char *client_id, int64_t now_ms, kw_db_session *out,
                          kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_SESSION_GET, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE) {
        rc = kw_error_set(err, KW_ERR_UNKNOWN_CLIENT, "X-Client-ID: no such device session");
    } else if (r != SQLITE_ROW) {
        rc = kw_sqlite_fail(s, "read session", err);
    } else {
        int64_t device_id = sqlite3_column_int64(st, 1);
        out->last_used_ms = sqlite3_column_int64(st, 3);
        if (!kw_sqlite_column_text(st, 0, out->user_id, sizeof out->user_id) ||
            !kw_sqlite_column_text(st, 2, out->session_secret, sizeof out->session_secret) ||
            device_id < 1 || device_id > KW_DEVICE_ID_MAX)
            rc = kw_error_set(err, KW_ERR_STORE, "storage failed (session row malformed)");
        else if (now_ms - out->last_used_ms >= KW_SESSION_IDLE_MS)
            rc = kw_error_set(err, KW_ERR_SESSION_EXPIRED,
                              "the device session expired after 90 days unused; enroll again");
        out->device_id = (uint32_t)device_id;
    }
    kw_sqlite_reset(st);
    if (rc != KW_OK)
        kw_wipe(out, sizeof *out);
    return rc;
}

static kw_err nonce_use(void *ctx, const char *client_id, const char *nonce, int64_t now_ms,
                        kw_error *err)
{
    kw_sqlite *s = ctx;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_NONCE_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nonce, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms + KW_NONCE_TTL_MS);
    sqlite3_bind_int64(st, 4, now_ms);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE) {
        rc = kw_sqlite_fail(s, "insert nonce", err);
        goto fail;
    }
    if (sqlite3_changes(s->db) == 0) {
        rc = kw_error_set(err, KW_ERR_DUPLICATE_REQUEST, "X-Nonce: already used");
        goto fail;
    }
    if ((st = kw_sqlite_stmt(s, SQL_SESSION_TOUCH, err)) == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE) {
        rc = kw_sqlite_fail(s, "touch session", err);
        goto fail;
    }
    if (sqlite3_changes(s->db) == 0) {
        rc = kw_error_set(err, KW_ERR_UNKNOWN_CLIENT, "X-Client-ID: no such device session");
        goto fail;
    }
    if ((rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err user_get(void *ctx, const char *user_id, kw_db_user *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    size_t id_len = strlen(user_id);
    if (id_len == 0 || id_len > KW_DB_ID_MAX)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "user: no such user");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_USER_GET, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "user: no such user");
    else if (r != SQLITE_ROW)
        rc = kw_sqlite_fail(s, "read user", err);
    else if (!kw_sqlite_column_text(st, 0, out->name, sizeof out->name))
        rc = kw_error_set(err, KW_ERR_STORE, "storage failed (user row malformed)");
    if (rc == KW_OK) {
        memcpy(out->user_id, user_id, id_len + 1);
        out->created_ms = sqlite3_column_int64(st, 1);
    }
    kw_sqlite_reset(st);
    return rc;
}

static kw_err device_exists(void *ctx, const char *user_id, uint32_t device_id, kw_error *err)
{
    kw_sqlite *s = ctx;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_DEVICE_EXISTS, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r == SQLITE_ROW)
        return KW_OK;
    if (r == SQLITE_DONE)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "device: no such device");
    return kw_sqlite_fail(s, "read device", err);
}

/* Deletes up to max rows with one of the purge statements; adds the count to *removed. */
static kw_err purge_with(kw_sqlite *s, const char *sql, int64_t now_ms, size_t max, size_t *removed,
                         kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, sql, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, "purge", err);
    *removed += (size_t)sqlite3_changes(s->db);
    return KW_OK;
}

static kw_err purge(void *ctx, int64_t now_ms, size_t max_rows, size_t *removed, kw_error *err)
{
    kw_sqlite *s = ctx;
    size_t n = 0;
    if (max_rows > INT32_MAX)
        max_rows = INT32_MAX;
    kw_err rc = purge_with(s, SQL_NONCE_PURGE, now_ms, max_rows, &n, err);
    if (rc == KW_OK && n < max_rows)
        rc = purge_with(s, SQL_CODE_PURGE, now_ms, max_rows - n, &n, err);
    if (removed != NULL)
        *removed = n;
    return rc;
}

const kw_db_members_ops kw_sqlite_members_ops = {
    .user_add = user_add,
    .code_issue = code_issue,
    .enroll = enroll,
    .session_get = session_get,
    .nonce_use = nonce_use,
    .user_get = user_get,
    .device_exists = device_exists,
    .purge = purge,
};
