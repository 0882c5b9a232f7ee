/*
 * db_sqlite.h — internal to the SQLite store: the connection state shared by
 * db_sqlite.c (open, pragmas, migrations, statement cache, transactions) and the files
 * implementing each ops table (db_sqlite_members.c, db_sqlite_keys.c, ...). Nothing
 * outside db_sqlite*.c includes this header; handlers see only db.h and the ops headers.
 */
#ifndef KEYWAVE_SERVER_DB_SQLITE_H
#define KEYWAVE_SERVER_DB_SQLITE_H

#include <stddef.h>

#include <sqlite3.h>

#include "db_guests.h"
#include "db_keys.h"
#include "db_meetings.h"
#include "db_members.h"
#include "keywave/err.h"
#include "keywave/random.h"

#define KW_SQLITE_BUSY_TIMEOUT_MS 5000 /* wait this long for another writer (the CLI) */
#define KW_SQLITE_STMT_CACHE      128  /* distinct statements kept prepared */

typedef struct kw_sqlite_cached {
    const char *sql; /* static text; its address is the cache key */
    sqlite3_stmt *stmt;
} kw_sqlite_cached;

typedef struct kw_sqlite {
    sqlite3 *db;          /* owned */
    const kw_random *rnd; /* borrowed; kw_random_system() */
    kw_sqlite_cached cache[KW_SQLITE_STMT_CACHE];
    size_t n_cached;
} kw_sqlite;

/*
 * Returns the prepared statement for sql, reset and with no bindings, preparing it on
 * first use. sql must be a static string: its address is the key, so each statement
 * is written once as `static const char SQL_X[] = "...";`. The statement stays owned by
 * the cache; call kw_sqlite_reset when done. NULL on failure (err: KW_ERR_STORE).
 */
sqlite3_stmt *kw_sqlite_stmt(kw_sqlite *s, const char *sql, kw_error *err);

/* Resets st and clears its bindings, so no bound secret lingers. Accepts NULL. */
void kw_sqlite_reset(sqlite3_stmt *st);

/* BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy timeout), COMMIT,
 * ROLLBACK. begin/commit errors: KW_ERR_STORE. rollback ignores failures. */
kw_err kw_sqlite_begin(kw_sqlite *s, kw_error *err);
kw_err kw_sqlite_commit(kw_sqlite *s, kw_error *err);
void kw_sqlite_rollback(kw_sqlite *s);

/*
 * Reports an SQLite failure: logs the library's message with what (never values, which
 * SQLite does not put in its messages anyway) and sets err to KW_ERR_STORE with a detail
 * naming what. Returns KW_ERR_STORE.
 */
kw_err kw_sqlite_fail(kw_sqlite *s, const char *what, kw_error *err);

/* Copies text column col of st into out (cap bytes, NUL-terminated); 0 when the value is
 * NULL or does not fit, out then unchanged. */
int kw_sqlite_column_text(sqlite3_stmt *st, int col, char *out, size_t cap);

/* The schema version this keywaved writes: the number of the last migration. */
int kw_sqlite_schema_version(void);

/* The ops tables of db_sqlite_members.c and db_sqlite_keys.c. */
extern const kw_db_members_ops kw_sqlite_members_ops;
extern const kw_db_keys_ops kw_sqlite_keys_ops;
extern const kw_db_meetings_ops kw_sqlite_meetings_ops;
extern const kw_db_guests_ops kw_sqlite_guests_ops;
extern const struct kw_db_items_ops kw_sqlite_items_ops;

#endif
