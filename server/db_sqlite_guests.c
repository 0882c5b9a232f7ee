/*
 * db_sqlite_guests.c — the guest sessions ops table (db_guests.h) on SQLite (tables of
 * migration 4, "guests").
 *
 * Registration reads the invitation and its meeting itself, in the same BEGIN IMMEDIATE
 * transaction that replaces or creates the session and counts the use, so two concurrent
 * registrations can never both take the last use of an invitation. Admission decisions
 * are one conditional UPDATE ... WHERE status IN ('registered','waiting') RETURNING, so
 * exactly one of concurrent deciders changes the row (INV-3); a guest pre-key is handed
 * out by DELETE ... RETURNING inside the transaction that reads the bundle (INV-2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "db_guests.h"
#include "db_sqlite.h"
#include "keywave/base64.h"

/* ---- statements ------------------------------------------------------------------ */

#define GUEST_COLUMNS                                                                              \
    "session_id, meeting_id, display_name, status, requested_ms, decided_by, decided_ms,"          \
    " created_ms, expires_ms"

static const char SQL_INVITATION_GET[] =
    "SELECT i.meeting_id, i.expires_ms, i.max_uses, i.uses, i.revoked_ms, m.allow_external"
    " FROM invitations i JOIN meetings m ON m.meeting_id = i.meeting_id WHERE i.token = ?1";
static const char SQL_INVITATION_USE[] = "UPDATE invitations SET uses = uses + 1 WHERE token = ?1";
static const char SQL_REPLACE_WAITING[] =
    "DELETE FROM guest_sessions WHERE meeting_id = ?1 AND identity_key = ?2"
    " AND status IN ('registered','waiting') AND expires_ms > ?3";
static const char SQL_SESSION_INSERT[] =
    "INSERT INTO guest_sessions (session_id, secret_hash, meeting_id, invitation_token,"
    " display_name, identity_key, registration_id, signed_prekey_id, signed_prekey,"
    " signed_prekey_signature, status, created_ms, expires_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'registered', ?11, ?12)";
static const char SQL_PREKEY_INSERT[] =
    "INSERT INTO guest_prekeys (session_id, key_id, public_key) VALUES (?1, ?2, ?3)";
static const char SQL_BY_SECRET[] =
    "SELECT " GUEST_COLUMNS " FROM guest_sessions WHERE secret_hash = ?1";
static const char SQL_BY_ID[] =
    "SELECT " GUEST_COLUMNS " FROM guest_sessions WHERE session_id = ?1";
static const char SQL_REMOVE[] = "DELETE FROM guest_sessions WHERE session_id = ?1";
static const char SQL_PREKEY_COUNT[] = "SELECT count(*) FROM guest_prekeys WHERE session_id = ?1";
static const char SQL_BUNDLE_GET[] =
    "SELECT registration_id, identity_key, signed_prekey_id, signed_prekey,"
    " signed_prekey_signature FROM guest_sessions WHERE session_id = ?1";
static const char SQL_PREKEY_TAKE[] =
    "DELETE FROM guest_prekeys WHERE session_id = ?1 AND key_id ="
    " (SELECT min(key_id) FROM guest_prekeys WHERE session_id = ?1) RETURNING key_id, public_key";
static const char SQL_REQUEST[] =
    "UPDATE guest_sessions SET status = 'waiting', requested_ms = ?2"
    " WHERE session_id = ?1 AND status IN ('registered','waiting') RETURNING " GUEST_COLUMNS;
static const char SQL_DECIDE[] =
    "UPDATE guest_sessions SET status = ?3, decided_by = ?4, decided_ms = ?5, decline_reason = ?6"
    " WHERE session_id = ?1 AND meeting_id = ?2 AND expires_ms > ?5"
    " AND status IN ('registered','waiting') RETURNING " GUEST_COLUMNS;
static const char SQL_WAITING[] =
    "SELECT session_id, display_name, coalesce(requested_ms, created_ms) AS r"
    " FROM guest_sessions WHERE meeting_id = ?1 AND status IN ('registered','waiting')"
    " AND expires_ms > ?2 ORDER BY r, session_id LIMIT ?3";
static const char SQL_HAS_GUESTS[] =
    "SELECT EXISTS (SELECT 1 FROM guest_sessions WHERE meeting_id = ?1"
    " AND status IN ('registered','waiting','admitted') AND expires_ms > ?2)";
static const char SQL_PURGE[] =
    "DELETE FROM guest_sessions WHERE rowid IN"
    " (SELECT rowid FROM guest_sessions WHERE expires_ms <= ?1 LIMIT ?2)";

/* ---- helpers --------------------------------------------------------------------- */

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* A fresh session id and secret, and the secret's hash. */
static kw_err new_credentials(kw_sqlite *s, kw_db_guest_created *out, uint8_t hash[KW_SHA256_BYTES])
{
    uint8_t raw[32];
    char b64[48];
    kw_err rc = kw_random_fill(s->rnd, raw, KW_GUEST_SESSION_ID_CHARS / 2);
    if (rc != KW_OK)
        return rc;
    hex(raw, KW_GUEST_SESSION_ID_CHARS / 2, out->session_id);
    rc = kw_random_fill(s->rnd, raw, sizeof raw);
    if (rc == KW_OK)
        rc = kw_base64_encode(raw, sizeof raw, b64, sizeof b64);
    if (rc == KW_OK) {
        /* base64url without padding: 32 bytes are 43 characters plus one '='. */
        for (size_t i = 0; i < KW_GUEST_SECRET_CHARS; i++) {
            char c = b64[i];
            if (c == '+')
                c = '-';
            else if (c == '/')
                c = '_';
            out->guest_secret[i] = c;
        }
        out->guest_secret[KW_GUEST_SECRET_CHARS] = '\0';
        rc = kw_sha256((const uint8_t *)out->guest_secret, KW_GUEST_SECRET_CHARS, hash);
    }
    kw_wipe(raw, sizeof raw);
    kw_wipe(b64, sizeof b64);
    return rc == KW_OK ? KW_OK : KW_ERR_CRYPTO;
}

/* 1..64 characters of UTF-8 (jansson has checked the encoding), no control characters. */
static int display_name_ok(const char *name)
{
    size_t bytes = strlen(name), chars = 0;
    if (bytes == 0 || bytes > KW_GUEST_NAME_BYTES_MAX)
        return 0;
    for (size_t i = 0; i < bytes; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if ((c & 0xc0) != 0x80) /* not a continuation byte: a new character */
            chars++;
        /* C1 controls U+0080..U+009F are 0xC2 0x80..0x9F. */
        if (c == 0xc2 && i + 1 < bytes && (unsigned char)name[i + 1] <= 0x9f)
            return 0;
    }
    return chars <= KW_GUEST_NAME_CHARS_MAX;
}

static int column_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t n)
{
    const void *b = sqlite3_column_blob(st, col);
    if (b == NULL || sqlite3_column_bytes(st, col) != (int)n)
        return 0;
    memcpy(out, b, n);
    return 1;
}

static void column_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static kw_guest_status status_of(const char *text)
{
    if (strcmp(text, "waiting") == 0)
        return KW_GUEST_WAITING;
    if (strcmp(text, "admitted") == 0)
        return KW_GUEST_ADMITTED;
    if (strcmp(text, "declined") == 0)
        return KW_GUEST_DECLINED;
    return KW_GUEST_REGISTERED;
}

/* Reads a GUEST_COLUMNS row. */
static void read_guest(sqlite3_stmt *st, kw_db_guest *g)
{
    char status[16];
    memset(g, 0, sizeof *g);
    column_text(st, 0, g->session_id, sizeof g->session_id);
    column_text(st, 1, g->meeting_id, sizeof g->meeting_id);
    column_text(st, 2, g->display_name, sizeof g->display_name);
    column_text(st, 3, status, sizeof status);
    g->status = status_of(status);
    g->requested_ms = sqlite3_column_int64(st, 4);
    column_text(st, 5, g->decided_by, sizeof g->decided_by);
    g->decided_ms = sqlite3_column_int64(st, 6);
    g->created_ms = sqlite3_column_int64(st, 7);
    g->expires_ms = sqlite3_column_int64(st, 8);
}

/* Runs a one-text-parameter query returning GUEST_COLUMNS; *found 0 or 1. */
static kw_err guest_query(kw_sqlite *s, const char *sql, const void *key, int key_len,
                          kw_db_guest *out, int *found, kw_error *err)
{
    *found = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, sql, err);
    if (st == NULL)
        return err->code;
    if (key_len < 0)
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 1, key, key_len, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_ROW) {
        read_guest(st, out);
        *found = 1;
    } else if (r != SQLITE_DONE) {
        rc = kw_sqlite_fail(s, "read guest session", err);
    }
    kw_sqlite_reset(st);
    return rc;
}

/* The bundle rules that need no storage (INV-1). */
static kw_err registration_check(const kw_db_guest_registration *reg, kw_error *err)
{
    if (reg->invitation_token == NULL || reg->display_name == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "registration incomplete");
    if (!display_name_ok(reg->display_name))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "display_name: 1..64 characters without control characters");
    if (reg->registration_id > KW_REGISTRATION_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "registration_id: not in 0..16383");
    if (reg->signed_pre_key_id > KW_PREKEY_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "signed_pre_key.id: not in 0..16777215");
    if (kw_pubkey_check(reg->identity_key, KW_PUBKEY_BYTES) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_KEY, "identity_key: not 33 bytes with 0x05");
    if (kw_pubkey_check(reg->signed_pre_key, KW_PUBKEY_BYTES) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_KEY,
                            "signed_pre_key.public_key: not 33 bytes with 0x05");
    if (reg->n_pre_keys != KW_GUEST_PREKEYS_AT_REGISTRATION || reg->pre_keys == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre_keys: exactly 30 keys, got %zu",
                            reg->n_pre_keys);
    for (size_t i = 0; i < reg->n_pre_keys; i++) {
        if (reg->pre_keys[i].id > KW_PREKEY_ID_MAX)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "pre_keys[%zu].id: not in 0..16777215", i);
        if (kw_pubkey_check(reg->pre_keys[i].public_key, KW_PUBKEY_BYTES) != KW_OK)
            return kw_error_set(err, KW_ERR_INVALID_KEY,
                                "pre_keys[%zu].public_key: not 33 bytes with 0x05", i);
        for (size_t j = 0; j < i; j++)
            if (reg->pre_keys[j].id == reg->pre_keys[i].id)
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre_keys[%zu].id: repeats id %u",
                                    i, reg->pre_keys[i].id);
    }
    /* INV-1: the signed pre-key must be signed by this identity. */
    if (kw_signature_verify(reg->identity_key, reg->signed_pre_key, KW_PUBKEY_BYTES,
                            reg->signed_pre_key_signature, KW_SIGNATURE_BYTES) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_SIGNATURE,
                            "signed_pre_key.signature: does not verify against identity_key");
    return KW_OK;
}

/* Inserts n pre-keys of session_id (inside the caller's transaction). */
static kw_err insert_prekeys(kw_sqlite *s, const char *session_id, const kw_db_prekey *keys,
                             size_t n, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PREKEY_INSERT, err);
    if (st == NULL)
        return err->code;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, keys[i].id);
        sqlite3_bind_blob(st, 3, keys[i].public_key, KW_PUBKEY_BYTES, SQLITE_STATIC);
        int r = sqlite3_step(st);
        kw_sqlite_reset(st);
        if (r == SQLITE_CONSTRAINT_PRIMARYKEY)
            return kw_error_set(err, KW_ERR_CONFLICT,
                                "pre_keys[%zu].id: %u is already stored unused", i, keys[i].id);
        if (r == SQLITE_CONSTRAINT_FOREIGNKEY)
            return kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest session");
        if (r != SQLITE_DONE)
            return kw_sqlite_fail(s, "insert guest pre-key", err);
    }
    return KW_OK;
}

static kw_err count_prekeys(kw_sqlite *s, const char *session_id, size_t *count, kw_error *err)
{
    *count = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PREKEY_COUNT, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *count = (size_t)sqlite3_column_int64(st, 0);
    kw_sqlite_reset(st);
    return r == SQLITE_ROW ? KW_OK : kw_sqlite_fail(s, "count guest pre-keys", err);
}

/* ---- registration ------------------------------------------------------------------ */

typedef struct invitation_row {
    char meeting_id[KW_DB_ID_MAX + 1];
    int exhausted;
} invitation_row;

/*
 * Checks the invitation inside the transaction: the same order as the join info
 * (unknown, revoked, expired), then the meeting's allow_external; exhaustion is noted,
 * not refused, because a replacing registration counts no use.
 */
static kw_err invitation_read(kw_sqlite *s, const char *token, int64_t now_ms, invitation_row *inv,
                              kw_error *err)
{
    memset(inv, 0, sizeof *inv);
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_INVITATION_GET, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE) {
        rc = kw_error_set(err, KW_ERR_UNKNOWN_INVITATION, "invitation_token: no such invitation");
    } else if (r != SQLITE_ROW) {
        rc = kw_sqlite_fail(s, "read invitation", err);
    } else {
        column_text(st, 0, inv->meeting_id, sizeof inv->meeting_id);
        int has_expiry = sqlite3_column_type(st, 1) != SQLITE_NULL;
        int has_max = sqlite3_column_type(st, 2) != SQLITE_NULL;
        int64_t expires = sqlite3_column_int64(st, 1), max_uses = sqlite3_column_int64(st, 2);
        int64_t uses = sqlite3_column_int64(st, 3);
        int revoked = sqlite3_column_type(st, 4) != SQLITE_NULL;
        int allow_external = sqlite3_column_int(st, 5);
        if (revoked)
            rc = kw_error_set(err, KW_ERR_INVITATION_REVOKED, "invitation_token: revoked");
        else if (has_expiry && now_ms >= expires)
            rc = kw_error_set(err, KW_ERR_INVITATION_EXPIRED, "invitation_token: expired");
        else if (!allow_external)
            rc = kw_error_set(err, KW_ERR_FORBIDDEN, "this meeting does not admit external guests");
        inv->exhausted = has_max && max_uses > 0 && uses >= max_uses;
    }
    kw_sqlite_reset(st);
    return rc;
}

static kw_err exec_changes(kw_sqlite *s, const char *sql, const char *what, const char *text1,
                           const void *blob2, int blob2_len, int64_t int3, int *changes,
                           kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, sql, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, text1, -1, SQLITE_STATIC);
    if (blob2 != NULL)
        sqlite3_bind_blob(st, 2, blob2, blob2_len, SQLITE_STATIC);
    if (blob2 != NULL) /* the statements with a blob take an int too */
        sqlite3_bind_int64(st, 3, int3);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, what, err);
    if (changes != NULL)
        *changes = sqlite3_changes(s->db);
    return KW_OK;
}

static kw_err session_insert(kw_sqlite *s, const kw_db_guest_registration *reg,
                             const kw_db_guest_created *c, const uint8_t hash[KW_SHA256_BYTES],
                             int64_t now_ms, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_SESSION_INSERT, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, c->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, KW_SHA256_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, reg->invitation_token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, reg->display_name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, reg->identity_key, KW_PUBKEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, reg->registration_id);
    sqlite3_bind_int64(st, 8, reg->signed_pre_key_id);
    sqlite3_bind_blob(st, 9, reg->signed_pre_key, KW_PUBKEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, reg->signed_pre_key_signature, KW_SIGNATURE_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, now_ms);
    sqlite3_bind_int64(st, 12, c->expires_ms);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    return r == SQLITE_DONE ? KW_OK : kw_sqlite_fail(s, "insert guest session", err);
}

static kw_err register_guest(void *ctx, const kw_db_guest_registration *reg, int64_t now_ms,
                             kw_db_guest_created *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    uint8_t hash[KW_SHA256_BYTES];
    invitation_row inv;
    int replaced = 0;
    memset(out, 0, sizeof *out);
    kw_err rc = registration_check(reg, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = kw_sqlite_begin(s, err)) != KW_OK)
        return rc;
    if ((rc = invitation_read(s, reg->invitation_token, now_ms, &inv, err)) != KW_OK)
        goto fail;
    /* This identity's own waiting session is replaced; nobody else's (seed 000). */
    rc = exec_changes(s, SQL_REPLACE_WAITING, "replace guest session", inv.meeting_id,
                      reg->identity_key, KW_PUBKEY_BYTES, now_ms, &replaced, err);
    if (rc != KW_OK)
        goto fail;
    if (!replaced) { /* INV-9: a new session counts against max_uses */
        if (inv.exhausted) {
            rc = kw_error_set(err, KW_ERR_INVITATION_EXHAUSTED,
                              "invitation_token: reached its max_uses");
            goto fail;
        }
        rc = exec_changes(s, SQL_INVITATION_USE, "count invitation use", reg->invitation_token,
                          NULL, 0, 0, NULL, err);
        if (rc != KW_OK)
            goto fail;
    }
    snprintf(out->meeting_id, sizeof out->meeting_id, "%s", inv.meeting_id);
    /* Whole seconds, so expires_at reads "...:SSZ" and equals what is stored. */
    out->expires_ms = (now_ms + KW_GUEST_SESSION_TTL_MS) / 1000 * 1000;
    out->replaced = replaced > 0;
    if ((rc = new_credentials(s, out, hash)) != KW_OK) {
        kw_error_set(err, rc, "no randomness for the guest secret");
        goto fail;
    }
    if ((rc = session_insert(s, reg, out, hash, now_ms, err)) != KW_OK ||
        (rc = insert_prekeys(s, out->session_id, reg->pre_keys, reg->n_pre_keys, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    kw_wipe(hash, sizeof hash);
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    kw_wipe(hash, sizeof hash);
    kw_wipe(out, sizeof *out);
    return rc;
}

/* ---- sessions ---------------------------------------------------------------------- */

static kw_err authenticate(void *ctx, const uint8_t secret_hash[32], int64_t now_ms,
                           kw_db_guest *out, kw_error *err)
{
    int found = 0;
    kw_db_guest g;
    kw_err rc = guest_query(ctx, SQL_BY_SECRET, secret_hash, KW_SHA256_BYTES, &g, &found, err);
    if (rc != KW_OK)
        return rc;
    if (!found)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED, "unknown guest secret");
    if (now_ms >= g.expires_ms)
        return kw_error_set(err, KW_ERR_SESSION_EXPIRED, "the guest session expired");
    *out = g;
    return KW_OK;
}

static kw_err get(void *ctx, const char *session_id, kw_db_guest *out, kw_error *err)
{
    int found = 0;
    kw_err rc = guest_query(ctx, SQL_BY_ID, session_id, -1, out, &found, err);
    if (rc == KW_OK && !found)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest session");
    return rc;
}

static kw_err remove_session(void *ctx, const char *session_id, kw_error *err)
{
    int changes = 0;
    kw_err rc = exec_changes(ctx, SQL_REMOVE, "delete guest session", session_id, NULL, 0, 0,
                             &changes, err);
    if (rc == KW_OK && changes == 0)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest session");
    return rc;
}

static kw_err prekeys_add(void *ctx, const char *session_id, const kw_db_prekey *keys, size_t n,
                          size_t *count, kw_error *err)
{
    kw_sqlite *s = ctx;
    *count = 0;
    if (n < 1 || n > KW_PREKEYS_PER_UPLOAD_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre_keys: 1..100 keys, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        if (keys[i].id > KW_PREKEY_ID_MAX)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "pre_keys[%zu].id: not in 0..16777215", i);
        if (kw_pubkey_check(keys[i].public_key, KW_PUBKEY_BYTES) != KW_OK) /* INV-1 */
            return kw_error_set(err, KW_ERR_INVALID_KEY,
                                "pre_keys[%zu].public_key: not 33 bytes with 0x05", i);
        for (size_t j = 0; j < i; j++)
            if (keys[j].id == keys[i].id)
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "pre_keys[%zu].id: repeats id %u",
                                    i, keys[i].id);
    }
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = insert_prekeys(s, session_id, keys, n, err)) != KW_OK ||
        (rc = count_prekeys(s, session_id, count, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK) {
        kw_sqlite_rollback(s);
        *count = 0;
        return rc;
    }
    return KW_OK;
}

static kw_err prekeys_count(void *ctx, const char *session_id, size_t *count, kw_error *err)
{
    return count_prekeys(ctx, session_id, count, err);
}

static kw_err bundle_read(kw_sqlite *s, const char *session_id, kw_bundle *out, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_BUNDLE_GET, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE) {
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest session");
    } else if (r != SQLITE_ROW) {
        rc = kw_sqlite_fail(s, "read guest bundle", err);
    } else {
        out->registration_id = (uint32_t)sqlite3_column_int64(st, 0);
        out->signed_pre_key_id = (uint32_t)sqlite3_column_int64(st, 2);
        if (!column_blob(st, 1, out->identity_key, KW_PUBKEY_BYTES) ||
            !column_blob(st, 3, out->signed_pre_key, KW_PUBKEY_BYTES) ||
            !column_blob(st, 4, out->signed_pre_key_signature, KW_SIGNATURE_BYTES))
            rc = kw_error_set(err, KW_ERR_STORE, "storage failed (guest bundle row malformed)");
    }
    kw_sqlite_reset(st);
    return rc;
}

static kw_err prekey_take(kw_sqlite *s, const char *session_id, kw_bundle *out, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PREKEY_TAKE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_ROW) {
        out->has_one_time_pre_key = 1;
        out->one_time_pre_key_id = (uint32_t)sqlite3_column_int64(st, 0);
        if (!column_blob(st, 1, out->one_time_pre_key, KW_PUBKEY_BYTES))
            rc = kw_error_set(err, KW_ERR_STORE, "storage failed (guest pre-key row malformed)");
        r = sqlite3_step(st); /* finish the DELETE */
    }
    kw_sqlite_reset(st);
    if (rc == KW_OK && r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "take guest pre-key", err);
    return rc;
}

static kw_err bundle_take(void *ctx, const char *session_id, kw_bundle *out, size_t *remaining,
                          kw_error *err)
{
    kw_sqlite *s = ctx;
    size_t left = 0, n = strlen(session_id);
    memset(out, 0, sizeof *out);
    if (n == 0 || n > KW_NAME_MAX)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest session");
    memcpy(out->owner, session_id, n + 1);
    out->owner_is_guest = 1;
    out->device_id = KW_GUEST_DEVICE_ID;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc == KW_OK) {
        /* INV-2: read and consume in one write transaction. */
        if ((rc = bundle_read(s, session_id, out, err)) != KW_OK ||
            (rc = prekey_take(s, session_id, out, err)) != KW_OK ||
            (rc = count_prekeys(s, session_id, &left, err)) != KW_OK ||
            (rc = kw_sqlite_commit(s, err)) != KW_OK)
            kw_sqlite_rollback(s);
    }
    if (rc != KW_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (remaining != NULL)
        *remaining = left;
    return KW_OK;
}

/* ---- admission ---------------------------------------------------------------------- */

/* Why a conditional update found nothing to change. */
static kw_err decided_already(const kw_db_guest *g, kw_error *err)
{
    if (g->status == KW_GUEST_ADMITTED)
        return kw_error_set(err, KW_ERR_ALREADY_ADMITTED, "the guest was already admitted");
    if (g->status == KW_GUEST_DECLINED)
        return kw_error_set(err, KW_ERR_ALREADY_DECLINED, "the guest was already declined");
    return kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest session");
}

/*
 * Runs a bound UPDATE ... WHERE status IN ('registered','waiting') RETURNING GUEST_COLUMNS
 * and reads the session after it. When no row changed, tells why: no such session (in
 * meeting_id and unexpired at now_ms, when meeting_id is given), or the decision already
 * made (*out then holds the session, decided_by included).
 */
static kw_err conditional_update(kw_sqlite *s, sqlite3_stmt *st, const char *what,
                                 const char *session_id, const char *meeting_id, int64_t now_ms,
                                 kw_db_guest *out, kw_error *err)
{
    kw_db_guest g;
    int r = sqlite3_step(st);
    int updated = r == SQLITE_ROW;
    if (updated) {
        read_guest(st, &g);
        r = sqlite3_step(st); /* finish the UPDATE */
    }
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, what, err);
    kw_err rc = KW_OK;
    if (!updated) {
        int found = 0;
        rc = guest_query(s, SQL_BY_ID, session_id, -1, &g, &found, err);
        if (rc != KW_OK)
            return rc;
        if (!found || (meeting_id != NULL &&
                       (strcmp(g.meeting_id, meeting_id) != 0 || now_ms >= g.expires_ms)))
            return kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest in this meeting");
        rc = decided_already(&g, err);
    }
    if (out != NULL)
        *out = g;
    return rc;
}

static kw_err request_admission(void *ctx, const char *session_id, int64_t now_ms, kw_db_guest *out,
                                kw_error *err)
{
    kw_sqlite *s = ctx;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_REQUEST, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    return conditional_update(s, st, "request admission", session_id, NULL, now_ms, out, err);
}

static kw_err decide(void *ctx, const char *meeting_id, const char *session_id, int admit,
                     const char *user_id, const char *reason, int64_t now_ms, kw_db_guest *out,
                     kw_error *err)
{
    kw_sqlite *s = ctx;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_DECIDE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, admit ? "admitted" : "declined", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    if (!admit && reason != NULL)
        sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
    /* INV-3: the WHERE makes the first decision the only one. */
    return conditional_update(s, st, "decide admission", session_id, meeting_id, now_ms, out, err);
}

static kw_err waiting_list(void *ctx, const char *meeting_id, int64_t now_ms,
                           kw_db_waiting_guest **out, size_t *n, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_WAITING, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, KW_GUEST_WAITING_MAX);
    kw_db_waiting_guest *rows = NULL;
    size_t count = 0, cap = 0;
    kw_err rc = KW_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            kw_db_waiting_guest *bigger = realloc(rows, ncap * sizeof *rows);
            if (bigger == NULL) {
                rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
                break;
            }
            rows = bigger;
            cap = ncap;
        }
        column_text(st, 0, rows[count].session_id, sizeof rows[count].session_id);
        column_text(st, 1, rows[count].display_name, sizeof rows[count].display_name);
        rows[count].requested_ms = sqlite3_column_int64(st, 2);
        count++;
    }
    if (rc == KW_OK && r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "list waiting guests", err);
    kw_sqlite_reset(st);
    if (rc != KW_OK) {
        free(rows);
        return rc;
    }
    *out = rows;
    *n = count;
    return KW_OK;
}

static kw_err meeting_has_guests(void *ctx, const char *meeting_id, int64_t now_ms, int *active,
                                 kw_error *err)
{
    kw_sqlite *s = ctx;
    *active = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_HAS_GUESTS, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *active = sqlite3_column_int(st, 0) != 0;
    kw_sqlite_reset(st);
    return r == SQLITE_ROW ? KW_OK : kw_sqlite_fail(s, "look for guests", err);
}

static kw_err purge(void *ctx, int64_t now_ms, size_t max_rows, size_t *removed, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (removed != NULL)
        *removed = 0;
    if (max_rows > INT32_MAX)
        max_rows = INT32_MAX;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PURGE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max_rows);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, "purge guest sessions", err);
    if (removed != NULL)
        *removed = (size_t)sqlite3_changes(s->db);
    return KW_OK;
}

const kw_db_guests_ops kw_sqlite_guests_ops = {
    .register_guest = register_guest,
    .authenticate = authenticate,
    .get = get,
    .remove = remove_session,
    .prekeys_add = prekeys_add,
    .prekeys_count = prekeys_count,
    .bundle_take = bundle_take,
    .request_admission = request_admission,
    .decide = decide,
    .waiting_list = waiting_list,
    .meeting_has_guests = meeting_has_guests,
    .purge = purge,
};
