/*
 * db.h — keywaved's storage interface (DESIGN.md section 9).
 *
 * One kw_db is opened by main() before the server listens (and by `keywaved user ...`)
 * and closed at exit. It is a set of ops tables, one per concept, each a struct of
 * function pointers called with db->ctx:
 *
 *   db->members->enroll(db->ctx, code, device_name, now_ms, &out, &err);
 *
 * so handlers never see SQLite and a second implementation (Postgres) can slot in. The
 * SQLite implementation keeps keywave.db under the data directory in WAL mode with
 * synchronous=NORMAL (an acknowledged write survives a crash of the process), foreign
 * keys on and a busy timeout, so the CLI can write while the server runs. Each op that
 * writes runs in one transaction and changes nothing when it fails (INV-11). Time is
 * always passed in (now_ms), never read by the store, so tests control it.
 *
 * Calls are synchronous and short (prepared statements); one kw_db is used from one
 * thread. Two processes may each open their own kw_db on the same directory.
 */
#ifndef KEYWAVE_SERVER_DB_H
#define KEYWAVE_SERVER_DB_H

#include "keywave/err.h"

#define KW_DB_FILE_NAME "keywave.db"

struct kw_db_members_ops;  /* db_members.h */
struct kw_db_keys_ops;     /* db_keys.h */
struct kw_db_meetings_ops; /* db_meetings.h */
struct kw_db_guests_ops;   /* db_guests.h */

typedef struct kw_db {
    void *ctx;                                 /* the implementation's state; owned */
    const struct kw_db_members_ops *members;   /* users, devices, enrollment, sessions, nonces */
    const struct kw_db_keys_ops *keys;         /* member device keys and bundles */
    const struct kw_db_meetings_ops *meetings; /* channels, meetings, participants, invitations */
    const struct kw_db_guests_ops *guests;     /* guest sessions, their keys, admission */
    const struct kw_db_items_ops *items;       /* stored items for offline devices */
    void (*close)(void *ctx);                  /* frees ctx */
} kw_db;

/*
 * Opens (creating if needed) data_dir/keywave.db, sets the pragmas and runs every
 * pending schema migration in one transaction. data_dir must exist. *out is owned by the
 * caller (kw_db_close). Errors: KW_ERR_IO (cannot open or create the file), KW_ERR_STORE
 * (a pragma or migration failed; nothing of that migration run is kept), KW_ERR_STATE
 * (the file's schema is newer than this keywaved knows), KW_ERR_NOMEM.
 */
kw_err kw_db_open_sqlite(const char *data_dir, kw_db **out, kw_error *err) KW_MUST_CHECK;

/* Closes the database and frees db. Accepts NULL. */
void kw_db_close(kw_db *db);

#endif
