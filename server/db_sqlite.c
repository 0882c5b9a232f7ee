/*
 * db_sqlite.c — the SQLite implementation of the storage interface (db.h): opening
 * keywave.db, its pragmas, the numbered schema migrations, a prepared-statement cache and
 * transaction helpers shared by the files implementing each ops table (db_sqlite.h).
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction is in the WAL file
 * before COMMIT returns, so it survives the process being killed (kill -9); a power loss
 * may lose the last transactions since the last checkpoint sync, never corrupt the file
 * (docs/deploy.md says how to choose FULL).
 *
 * MIGRATIONS. The schema is a list of numbered steps below (`migrations[]`). At open,
 * every step whose number is above the file's `PRAGMA user_version` runs, in order, inside
 * one BEGIN IMMEDIATE transaction that also sets user_version to the last number, so two
 * processes starting at once cannot both migrate and a failed step leaves the file as it
 * was. To change the schema, append a row { next number, "name", "SQL;" }: numbers are
 * 1, 2, 3, ... without gaps; a row that has shipped is never edited or removed (write a
 * new step that alters it instead). Meetings and guests get their own rows after the
 * members and keys ones. A file whose user_version is above the last step was written by
 * a newer keywaved and is refused.
 */
#include "db_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

typedef struct migration {
    int version;      /* 1, 2, 3, ... in order */
    const char *name; /* for the log line */
    const char *sql;  /* one or more statements */
} migration;

static const migration migrations[] = {
    {1, "members",
     /* device_id counts from 1 per user via users.next_device_id, so an id is never
      * reused even if a device is deleted. Enrollment codes are kept only as SHA-256. */
     "CREATE TABLE users ("
     "  user_id TEXT PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE,"
     "  created_ms INTEGER NOT NULL,"
     "  next_device_id INTEGER NOT NULL DEFAULT 1"
     ");"
     "CREATE TABLE devices ("
     "  user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
     "  device_id INTEGER NOT NULL,"
     "  name TEXT NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (user_id, device_id)"
     ") WITHOUT ROWID;"
     "CREATE TABLE enrollment_codes ("
     "  code_hash BLOB PRIMARY KEY,"
     "  user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
     "  expires_ms INTEGER NOT NULL"
     ");"
     "CREATE INDEX enrollment_codes_expiry ON enrollment_codes(expires_ms);"
     "CREATE TABLE device_sessions ("
     "  client_id TEXT PRIMARY KEY,"
     "  user_id TEXT NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  session_secret TEXT NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  last_used_ms INTEGER NOT NULL,"
     "  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)"
     "    ON DELETE CASCADE"
     ");"
     "CREATE INDEX device_sessions_device ON device_sessions(user_id, device_id);"
     "CREATE TABLE nonces ("
     "  client_id TEXT NOT NULL,"
     "  nonce TEXT NOT NULL,"
     "  expires_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (client_id, nonce)"
     ") WITHOUT ROWID;"
     "CREATE INDEX nonces_expiry ON nonces(expires_ms);"},
    {2, "member_keys",
     "CREATE TABLE member_identity_keys ("
     "  user_id TEXT NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  identity_key BLOB NOT NULL,"
     "  registration_id INTEGER NOT NULL,"
     "  PRIMARY KEY (user_id, device_id),"
     "  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)"
     "    ON DELETE CASCADE"
     ") WITHOUT ROWID;"
     "CREATE TABLE member_signed_prekeys ("
     "  user_id TEXT NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  key_id INTEGER NOT NULL,"
     "  public_key BLOB NOT NULL,"
     "  signature BLOB NOT NULL,"
     "  PRIMARY KEY (user_id, device_id),"
     "  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)"
     "    ON DELETE CASCADE"
     ") WITHOUT ROWID;"
     "CREATE TABLE member_prekeys ("
     "  user_id TEXT NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  key_id INTEGER NOT NULL,"
     "  public_key BLOB NOT NULL,"
     "  PRIMARY KEY (user_id, device_id, key_id),"
     "  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)"
     "    ON DELETE CASCADE"
     ") WITHOUT ROWID;"},
    {3, "meetings",
     /* Channels and meetings with their members; invitations belong to one meeting and go
      * with it (ON DELETE CASCADE). Times are ms since the epoch. */
     "CREATE TABLE channels ("
     "  channel_id TEXT PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  type TEXT NOT NULL CHECK (type IN ('signal','webrtc')),"
     "  owner_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
     "  created_ms INTEGER NOT NULL"
     ");"
     "CREATE TABLE channel_members ("
     "  channel_id TEXT NOT NULL REFERENCES channels(channel_id) ON DELETE CASCADE,"
     "  user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
     "  added_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (channel_id, user_id)"
     ") WITHOUT ROWID;"
     "CREATE TABLE meetings ("
     "  meeting_id TEXT PRIMARY KEY,"
     "  title TEXT NOT NULL,"
     "  description TEXT NOT NULL DEFAULT '',"
     "  start_ms INTEGER NOT NULL,"
     "  end_ms INTEGER NOT NULL,"
     "  is_instant_call INTEGER NOT NULL DEFAULT 0,"
     "  allow_external INTEGER NOT NULL DEFAULT 0,"
     "  created_by TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
     "  created_ms INTEGER NOT NULL,"
     "  last_active_ms INTEGER NOT NULL"
     ");"
     "CREATE INDEX meetings_instant ON meetings(is_instant_call, last_active_ms);"
     "CREATE TABLE meeting_participants ("
     "  meeting_id TEXT NOT NULL REFERENCES meetings(meeting_id) ON DELETE CASCADE,"
     "  user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,"
     "  role TEXT NOT NULL CHECK (role IN ('owner','manager','member')),"
     "  added_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (meeting_id, user_id)"
     ") WITHOUT ROWID;"
     "CREATE INDEX meeting_participants_user ON meeting_participants(user_id);"
     "CREATE TABLE invitations ("
     "  token TEXT PRIMARY KEY,"
     "  meeting_id TEXT NOT NULL REFERENCES meetings(meeting_id) ON DELETE CASCADE,"
     "  label TEXT NOT NULL DEFAULT '',"
     "  created_by TEXT NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  expires_ms INTEGER,"
     "  max_uses INTEGER,"
     "  uses INTEGER NOT NULL DEFAULT 0,"
     "  revoked_ms INTEGER"
     ");"
     "CREATE INDEX invitations_meeting ON invitations(meeting_id);"},
    {4, "guests",
     /* A guest session is created by registering with an invitation; its public keys live
      * with it and go with it (and with its meeting). guest_secret is kept as SHA-256. */
     "CREATE TABLE guest_sessions ("
     "  session_id TEXT PRIMARY KEY,"
     "  secret_hash BLOB NOT NULL UNIQUE,"
     "  meeting_id TEXT NOT NULL REFERENCES meetings(meeting_id) ON DELETE CASCADE,"
     "  invitation_token TEXT REFERENCES invitations(token) ON DELETE SET NULL,"
     "  display_name TEXT NOT NULL,"
     "  identity_key BLOB NOT NULL,"
     "  registration_id INTEGER NOT NULL,"
     "  signed_prekey_id INTEGER NOT NULL,"
     "  signed_prekey BLOB NOT NULL,"
     "  signed_prekey_signature BLOB NOT NULL,"
     "  status TEXT NOT NULL CHECK (status IN ('registered','waiting','admitted','declined')),"
     "  requested_ms INTEGER,"
     "  decided_by TEXT,"
     "  decided_ms INTEGER,"
     "  decline_reason TEXT,"
     "  created_ms INTEGER NOT NULL,"
     "  expires_ms INTEGER NOT NULL"
     ");"
     "CREATE INDEX guest_sessions_meeting ON guest_sessions(meeting_id, status);"
     "CREATE INDEX guest_sessions_identity ON guest_sessions(meeting_id, identity_key);"
     "CREATE INDEX guest_sessions_expiry ON guest_sessions(expires_ms);"
     "CREATE TABLE guest_prekeys ("
     "  session_id TEXT NOT NULL REFERENCES guest_sessions(session_id) ON DELETE CASCADE,"
     "  key_id INTEGER NOT NULL,"
     "  public_key BLOB NOT NULL,"
     "  PRIMARY KEY (session_id, key_id)"
     ") WITHOUT ROWID;"},
    {5, "items",
     /* Items for member devices that are offline (sendItem, sendGroupItem): the event's
      * JSON, kept until delivered or expired; one copy per (recipient, sender device,
      * kind, item_id). */
     "CREATE TABLE items ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  user_id TEXT NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  sender_user TEXT NOT NULL,"
     "  sender_device INTEGER NOT NULL,"
     "  kind INTEGER NOT NULL CHECK (kind IN (0, 1)),"
     "  item_id TEXT NOT NULL,"
     "  json TEXT NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  expires_ms INTEGER NOT NULL,"
     "  UNIQUE (user_id, device_id, sender_user, sender_device, kind, item_id),"
     "  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id)"
     "    ON DELETE CASCADE"
     ");"
     "CREATE INDEX items_expiry ON items(expires_ms);"},
    /* Append new steps here: {6, "...", "..."}, ... */
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* Copies a text column into out (cap bytes); 0 if NULL or too long. */
int kw_sqlite_column_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (t == NULL || n < 0 || (size_t)n >= cap)
        return 0;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return 1;
}

int kw_sqlite_schema_version(void)
{
    return (int)N_MIGRATIONS;
}

kw_err kw_sqlite_fail(kw_sqlite *s, const char *what, kw_error *err)
{
    char msg[KW_LOG_VALUE_MAX];
    kw_log(KW_LOG_ERROR, "db_error", "what=%s sqlite=%s", what,
           kw_log_value(msg, sizeof msg, s && s->db ? sqlite3_errmsg(s->db) : "no connection"));
    return kw_error_set(err, KW_ERR_STORE, "storage failed (%s)", what);
}

sqlite3_stmt *kw_sqlite_stmt(kw_sqlite *s, const char *sql, kw_error *err)
{
    for (size_t i = 0; i < s->n_cached; i++)
        if (s->cache[i].sql == sql)
            return s->cache[i].stmt;
    if (s->n_cached == KW_SQLITE_STMT_CACHE) {
        /* Cannot happen: statements are static strings, far fewer than the cache. */
        kw_error_set(err, KW_ERR_INTERNAL, "statement cache full");
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        kw_sqlite_fail(s, "prepare", err);
        return NULL;
    }
    s->cache[s->n_cached].sql = sql;
    s->cache[s->n_cached].stmt = st;
    s->n_cached++;
    return st;
}

void kw_sqlite_reset(sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static kw_err exec_cached(kw_sqlite *s, const char *sql, const char *what, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, sql, err);
    if (st == NULL)
        return err ? err->code : KW_ERR_STORE;
    int rc = sqlite3_step(st);
    kw_sqlite_reset(st);
    return rc == SQLITE_DONE ? KW_OK : kw_sqlite_fail(s, what, err);
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

kw_err kw_sqlite_begin(kw_sqlite *s, kw_error *err)
{
    return exec_cached(s, SQL_BEGIN, "begin", err);
}

kw_err kw_sqlite_commit(kw_sqlite *s, kw_error *err)
{
    kw_err rc = exec_cached(s, SQL_COMMIT, "commit", err);
    if (rc != KW_OK)
        kw_sqlite_rollback(s);
    return rc;
}

void kw_sqlite_rollback(kw_sqlite *s)
{
    if (!sqlite3_get_autocommit(s->db))
        (void)exec_cached(s, SQL_ROLLBACK, "rollback", NULL);
}

/* Runs one pragma-like statement, optionally reading one text result into out. */
static int exec_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    int rc = sqlite3_step(st);
    if (out != NULL) {
        out[0] = '\0';
        if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

static kw_err set_pragmas(kw_sqlite *s, kw_error *err)
{
    char mode[16];
    if (sqlite3_busy_timeout(s->db, KW_SQLITE_BUSY_TIMEOUT_MS) != SQLITE_OK)
        return kw_sqlite_fail(s, "busy_timeout", err);
    if (!exec_text(s->db, "PRAGMA journal_mode=WAL", mode, sizeof mode) || strcmp(mode, "wal") != 0)
        return kw_sqlite_fail(s, "journal_mode=WAL", err);
    if (!exec_text(s->db, "PRAGMA synchronous=NORMAL", NULL, 0))
        return kw_sqlite_fail(s, "synchronous=NORMAL", err);
    if (!exec_text(s->db, "PRAGMA foreign_keys=ON", NULL, 0))
        return kw_sqlite_fail(s, "foreign_keys=ON", err);
    return KW_OK;
}

static kw_err user_version(kw_sqlite *s, int *out, kw_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return kw_sqlite_fail(s, "user_version", err);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? KW_OK : kw_sqlite_fail(s, "user_version", err);
}

static kw_err migrate(kw_sqlite *s, kw_error *err)
{
    for (size_t i = 0; i < N_MIGRATIONS; i++)
        if (migrations[i].version != (int)i + 1) /* a broken list is a build mistake */
            return kw_error_set(err, KW_ERR_INTERNAL, "migration %zu is numbered %d", i + 1,
                                migrations[i].version);
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    int current = 0;
    rc = user_version(s, &current, err);
    if (rc == KW_OK && current > (int)N_MIGRATIONS)
        rc = kw_error_set(err, KW_ERR_STATE,
                          "keywave.db has schema version %d; this keywaved knows up to %zu",
                          current, N_MIGRATIONS);
    for (size_t i = (size_t)(current > 0 ? current : 0); rc == KW_OK && i < N_MIGRATIONS; i++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %d", migrations[i].version);
        if (sqlite3_exec(s->db, migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(s->db, set, NULL, NULL, NULL) != SQLITE_OK) {
            rc = kw_sqlite_fail(s, migrations[i].name, err);
            break;
        }
        kw_log(KW_LOG_INFO, "db_migrated", "version=%d name=%s", migrations[i].version,
               migrations[i].name);
    }
    if (rc != KW_OK) {
        kw_sqlite_rollback(s);
        return rc;
    }
    return kw_sqlite_commit(s, err);
}

static void sqlite_close(void *ctx)
{
    kw_sqlite *s = ctx;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_cached; i++)
        sqlite3_finalize(s->cache[i].stmt);
    sqlite3_close_v2(s->db);
    free(s);
}

kw_err kw_db_open_sqlite(const char *data_dir, kw_db **out, kw_error *err)
{
    *out = NULL;
    kw_err rc = KW_ERR_NOMEM;
    kw_sqlite *s = NULL;
    kw_db *db = calloc(1, sizeof *db);
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", data_dir, KW_DB_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof path) {
        rc = kw_error_set(err, KW_ERR_IO, "KEYWAVE_DATA_DIR: path too long");
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (db == NULL || s == NULL) {
        kw_error_set(err, rc, "out of memory");
        goto fail;
    }
    s->rnd = kw_random_system();
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        char shown[KW_LOG_VALUE_MAX];
        rc = kw_error_set(err, KW_ERR_IO, "cannot open %s: %s",
                          kw_log_value(shown, sizeof shown, path),
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    if ((rc = set_pragmas(s, err)) != KW_OK || (rc = migrate(s, err)) != KW_OK)
        goto fail;
    db->ctx = s;
    db->members = &kw_sqlite_members_ops;
    db->keys = &kw_sqlite_keys_ops;
    db->meetings = &kw_sqlite_meetings_ops;
    db->guests = &kw_sqlite_guests_ops;
    db->items = &kw_sqlite_items_ops;
    db->close = sqlite_close;
    *out = db;
    return KW_OK;
fail:
    sqlite_close(s);
    free(db);
    return rc;
}

void kw_db_close(kw_db *db)
{
    if (db == NULL)
        return;
    if (db->close != NULL)
        db->close(db->ctx);
    free(db);
}
