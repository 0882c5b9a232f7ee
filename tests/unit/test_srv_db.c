/*
 * test_srv_db.c — keywaved's storage through its interface (db.h, db_members.h,
 * db_keys.h) on a real SQLite file in a temporary directory: migrations that are
 * idempotent on reopen and refuse a newer schema, users and their names, one-time
 * enrollment codes (stored hashed, single use, the 24 h boundary), device ids 1, 2, 3 per
 * user, device sessions and their 90-day sliding expiry, nonces, key upload rules (INV-1)
 * and one-time pre-key consumption, including concurrent consumers in separate processes
 * that never get the same pre-key (INV-2).
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "db_keys.h"
#include "db_members.h"
#include "db_sqlite.h"
#include "keywave/bundle.h"
#include "keywave/identity.h"
#include "keywave/store.h"
#include "kwtest.h"

#define NOW    1763800000000LL
#define DAY_MS (24LL * 60 * 60 * 1000)

static char dir[256]; /* the temporary data directory of this run */
static kw_db *db;

#define M (db->members)
#define K (db->keys)

/* ---- helpers --------------------------------------------------------------------- */

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

static int reopen(void)
{
    kw_db_close(db);
    db = NULL;
    kw_error err;
    kw_err rc = kw_db_open_sqlite(dir, &db, &err);
    KWT_ERR(rc, KW_OK);
    return rc == KW_OK;
}

/* Runs one SQL statement on a separate raw connection; returns its first integer. */
static long long raw_int(const char *sql)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/keywave.db", dir);
    sqlite3 *c = NULL;
    long long v = -1;
    if (sqlite3_open(path, &c) == SQLITE_OK) {
        sqlite3_busy_timeout(c, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK) {
            int r = sqlite3_step(st);
            if (r == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
            else if (r == SQLITE_DONE)
                v = 0;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(c);
    return v;
}

/* 1 if needle occurs in any file of the data directory (db, WAL, shm). */
static int bytes_on_disk(const char *needle)
{
    int found = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && !found) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        static char buf[1 << 22];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        found = memmem(buf, n, needle, strlen(needle)) != NULL;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

static int all_in(const char *s, const char *alphabet)
{
    for (; *s; s++)
        if (strchr(alphabet, *s) == NULL)
            return 0;
    return 1;
}

/* Adds a user and enrolls n devices; returns the user id in user_id and sessions in out. */
static int add_user_devices(const char *name, int n, char user_id[KW_DB_ID_MAX + 1],
                            kw_db_enrollment *out)
{
    char code[KW_ENROLL_CODE_CHARS + 1], uid[KW_DB_ID_MAX + 1];
    kw_error err;
    if (M->user_add(db->ctx, name, NOW, user_id, code, &err) != KW_OK)
        return 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && M->code_issue(db->ctx, name, NOW, uid, code, &err) != KW_OK)
            return 0;
        if (M->enroll(db->ctx, code, "device", NOW, &out[i], &err) != KW_OK)
            return 0;
    }
    return 1;
}

/* ---- migrations -------------------------------------------------------------------- */

static void migrations_are_idempotent_on_reopen(void)
{
    KWT_EQ(raw_int("PRAGMA user_version"), kw_sqlite_schema_version());
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    KWT_ERR(M->user_add(db->ctx, "persisted", NOW, user_id, code, &err), KW_OK);
    for (int i = 0; i < 3; i++)
        if (!reopen())
            return;
    KWT_EQ(raw_int("PRAGMA user_version"), kw_sqlite_schema_version());
    KWT_EQ(raw_int("SELECT count(*) FROM users WHERE name = 'persisted'"), 1);
    KWT_EQ(raw_int("SELECT count(*) FROM sqlite_master WHERE name = 'member_prekeys'"), 1);
    kw_db_user u;
    KWT_ERR(M->user_get(db->ctx, user_id, &u, &err), KW_OK);
    KWT_STREQ(u.name, "persisted");
    KWT_EQ(u.created_ms, NOW);
    KWT_ERR(M->user_get(db->ctx, "usr_nobody", &u, &err), KW_ERR_NOT_FOUND);
}

static void wal_and_pragmas_are_set(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/keywave.db", dir);
    sqlite3 *c = NULL;
    KWT_CHECK(sqlite3_open(path, &c) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    KWT_CHECK(sqlite3_prepare_v2(c, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    KWT_CHECK(sqlite3_step(st) == SQLITE_ROW);
    KWT_STREQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(c);
}

static void newer_schema_is_refused(void)
{
    kw_db_close(db);
    db = NULL;
    KWT_EQ(raw_int("PRAGMA user_version = 99"), 0);
    kw_error err;
    kw_db *d = NULL;
    KWT_ERR(kw_db_open_sqlite(dir, &d, &err), KW_ERR_STATE);
    KWT_CHECK(d == NULL);
    KWT_CHECK(strstr(err.detail, "99") != NULL);
    char restore[64];
    snprintf(restore, sizeof restore, "PRAGMA user_version = %d", kw_sqlite_schema_version());
    KWT_EQ(raw_int(restore), 0);
    reopen();
}

static void unusable_dir_is_an_io_error(void)
{
    kw_db *d = NULL;
    kw_error err;
    KWT_ERR(kw_db_open_sqlite("/nonexistent-keywave-dir/sub", &d, &err), KW_ERR_IO);
    KWT_CHECK(d == NULL);
}

/* ---- users and enrollment codes --------------------------------------------------- */

static void user_names_follow_their_rule(void)
{
    static const struct {
        const char *name;
        kw_err want;
    } cases[] = {
        {"", KW_ERR_INVALID_ARGUMENT},
        {"has space", KW_ERR_INVALID_ARGUMENT},
        {"tab\there", KW_ERR_INVALID_ARGUMENT},
        {"\xc3\xa9", KW_ERR_INVALID_ARGUMENT},
        {"a", KW_OK},
        {"bob.smith@example-org_1", KW_OK},
        {"1234567890123456789012345678901234567890123456789012345678901234", KW_OK}, /* 64 */
        {"12345678901234567890123456789012345678901234567890123456789012345",
         KW_ERR_INVALID_ARGUMENT}, /* 65 */
        {"a", KW_ERR_CONFLICT},    /* taken */
        {"A", KW_OK},              /* names are case-sensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
        kw_error err;
        kw_err rc = M->user_add(db->ctx, cases[i].name, NOW, user_id, code, &err);
        KWT_ERR(rc, cases[i].want);
        if (rc == KW_OK) {
            KWT_EQ(strlen(user_id), 20);
            KWT_CHECK(strncmp(user_id, "usr_", 4) == 0);
            KWT_CHECK(all_in(user_id + 4, "0123456789abcdef"));
        } else {
            KWT_STREQ(code, "");
        }
    }
    KWT_EQ(raw_int("SELECT count(*) FROM users WHERE name = 'a'"), 1);
}

static void codes_are_base32_and_stored_hashed(void)
{
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1], again[KW_ENROLL_CODE_CHARS + 1];
    char uid2[KW_DB_ID_MAX + 1];
    kw_error err;
    KWT_ERR(M->user_add(db->ctx, "carol", NOW, user_id, code, &err), KW_OK);
    KWT_EQ(strlen(code), KW_ENROLL_CODE_CHARS);
    KWT_CHECK(all_in(code, "abcdefghijklmnopqrstuvwxyz234567"));
    KWT_ERR(M->code_issue(db->ctx, "carol", NOW, uid2, again, &err), KW_OK);
    KWT_STREQ(uid2, user_id);
    KWT_CHECK(strcmp(code, again) != 0);
    char none[KW_ENROLL_CODE_CHARS + 1];
    KWT_ERR(M->code_issue(db->ctx, "nobody", NOW, uid2, none, &err), KW_ERR_NOT_FOUND);
    KWT_STREQ(none, ""); /* nothing handed out on failure */
    KWT_ERR(M->code_issue(db->ctx, "bad name", NOW, uid2, none, &err), KW_ERR_INVALID_ARGUMENT);
    /* Only SHA-256 of a code is kept: the text is nowhere in the files. */
    kw_db_close(db); /* checkpoint so the WAL is folded in too */
    db = NULL;
    KWT_CHECK(!bytes_on_disk(code));
    KWT_CHECK(!bytes_on_disk(again));
    reopen();
    kw_db_enrollment e;
    KWT_ERR(M->enroll(db->ctx, code, "phone", NOW, &e, &err), KW_OK);
    KWT_ERR(M->enroll(db->ctx, again, "tablet", NOW, &e, &err), KW_OK); /* both stay valid */
}

static void code_is_one_time(void)
{
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    kw_db_enrollment e;
    KWT_ERR(M->user_add(db->ctx, "dave", NOW, user_id, code, &err), KW_OK);
    KWT_ERR(M->enroll(db->ctx, code, "laptop", NOW, &e, &err), KW_OK);
    KWT_STREQ(e.user_id, user_id);
    KWT_ERR(M->enroll(db->ctx, code, "laptop", NOW, &e, &err), KW_ERR_NOT_FOUND);
    KWT_STREQ(e.session_secret, ""); /* nothing handed out on failure */
    KWT_EQ(raw_int("SELECT count(*) FROM devices WHERE name = 'laptop'"), 1);
}

static void code_expiry_boundary(void)
{
    char user_id[KW_DB_ID_MAX + 1], c1[KW_ENROLL_CODE_CHARS + 1], c2[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    kw_db_enrollment e;
    KWT_ERR(M->user_add(db->ctx, "erin", NOW, user_id, c1, &err), KW_OK);
    KWT_ERR(M->code_issue(db->ctx, "erin", NOW, user_id, c2, &err), KW_OK);
    /* Valid while now < issued + 24 h. */
    KWT_ERR(M->enroll(db->ctx, c1, "d", NOW + KW_ENROLL_CODE_TTL_MS - 1, &e, &err), KW_OK);
    KWT_ERR(M->enroll(db->ctx, c2, "d", NOW + KW_ENROLL_CODE_TTL_MS, &e, &err), KW_ERR_NOT_FOUND);
    KWT_EQ(KW_ENROLL_CODE_TTL_MS, DAY_MS);
    /* The expired code is purged by housekeeping. */
    size_t removed = 0;
    long long before = raw_int("SELECT count(*) FROM enrollment_codes");
    KWT_ERR(M->purge(db->ctx, NOW + DAY_MS, 1000, &removed, &err), KW_OK);
    KWT_CHECK(removed >= 1);
    KWT_EQ(raw_int("SELECT count(*) FROM enrollment_codes"), before - (long long)removed);
}

static void enroll_input_rules(void)
{
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    kw_db_enrollment e;
    KWT_ERR(M->user_add(db->ctx, "frank", NOW, user_id, code, &err), KW_OK);
    char upper[KW_ENROLL_CODE_CHARS + 1];
    for (size_t i = 0; i <= KW_ENROLL_CODE_CHARS; i++)
        upper[i] = (char)(code[i] >= 'a' && code[i] <= 'z' ? code[i] - 32 : code[i]);
    char long_name[KW_DEVICE_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    KWT_ERR(M->enroll(db->ctx, upper, "d", NOW, &e, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(M->enroll(db->ctx, "abc", "d", NOW, &e, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(M->enroll(db->ctx, "aaaaaaaaaaaaaaaaaaaa1", "d", NOW, &e, &err),
            KW_ERR_INVALID_ARGUMENT); /* 21, and '1' is not base32 */
    KWT_ERR(M->enroll(db->ctx, "aaaaaaaaaaaaaaaaaaa1", "d", NOW, &e, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(M->enroll(db->ctx, "aaaaaaaaaaaaaaaaaaaa", "d", NOW, &e, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(M->enroll(db->ctx, code, "", NOW, &e, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(M->enroll(db->ctx, code, "a\nb", NOW, &e, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(M->enroll(db->ctx, code, long_name, NOW, &e, &err), KW_ERR_INVALID_ARGUMENT);
    long_name[KW_DEVICE_NAME_MAX] = '\0';
    KWT_ERR(M->enroll(db->ctx, code, long_name, NOW, &e, &err), KW_OK); /* 64 is fine */
}

static void device_ids_count_per_user(void)
{
    char u1[KW_DB_ID_MAX + 1], u2[KW_DB_ID_MAX + 1];
    kw_db_enrollment a[3], b[2];
    KWT_CHECK(add_user_devices("gina", 3, u1, a));
    KWT_CHECK(add_user_devices("hank", 2, u2, b));
    KWT_EQ(a[0].device_id, 1);
    KWT_EQ(a[1].device_id, 2);
    KWT_EQ(a[2].device_id, 3);
    KWT_EQ(b[0].device_id, 1);
    KWT_EQ(b[1].device_id, 2);
    KWT_STREQ(a[2].user_id, u1);
    kw_error err;
    KWT_ERR(M->device_exists(db->ctx, u1, 3, &err), KW_OK);
    KWT_ERR(M->device_exists(db->ctx, u1, 4, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(M->device_exists(db->ctx, u2, 3, &err), KW_ERR_NOT_FOUND);
    /* Client ids and secrets are fresh and well-formed. */
    for (int i = 0; i < 3; i++) {
        KWT_EQ(strlen(a[i].client_id), KW_CLIENT_ID_CHARS);
        KWT_CHECK(all_in(a[i].client_id, "0123456789abcdef"));
        KWT_EQ(strlen(a[i].session_secret), KW_SESSION_SECRET_CHARS);
        KWT_CHECK(all_in(a[i].session_secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789-_"));
        for (int j = 0; j < i; j++) {
            KWT_CHECK(strcmp(a[i].client_id, a[j].client_id) != 0);
            KWT_CHECK(strcmp(a[i].session_secret, a[j].session_secret) != 0);
        }
    }
}

/* ---- sessions and nonces ----------------------------------------------------------- */

static void sessions_slide_and_expire(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    kw_error err;
    kw_db_session s;
    if (!KWT_CHECK(add_user_devices("ivy", 1, u, &e)))
        return;
    KWT_ERR(M->session_get(db->ctx, e.client_id, NOW, &s, &err), KW_OK);
    KWT_STREQ(s.user_id, u);
    KWT_EQ(s.device_id, 1);
    KWT_STREQ(s.session_secret, e.session_secret);
    KWT_EQ(s.last_used_ms, NOW);
    KWT_ERR(M->session_get(db->ctx, "00000000000000000000000000000000", NOW, &s, &err),
            KW_ERR_UNKNOWN_CLIENT);
    /* Expired when now - last_used >= 90 days. */
    KWT_ERR(M->session_get(db->ctx, e.client_id, NOW + KW_SESSION_IDLE_MS - 1, &s, &err), KW_OK);
    KWT_ERR(M->session_get(db->ctx, e.client_id, NOW + KW_SESSION_IDLE_MS, &s, &err),
            KW_ERR_SESSION_EXPIRED);
    KWT_STREQ(s.session_secret, ""); /* an expired session hands out nothing */
    /* A use slides the window. */
    int64_t t = NOW + KW_SESSION_IDLE_MS - 1;
    KWT_ERR(M->nonce_use(db->ctx, e.client_id, "slide-nonce-000001", t, &err), KW_OK);
    KWT_ERR(M->session_get(db->ctx, e.client_id, t + KW_SESSION_IDLE_MS - 1, &s, &err), KW_OK);
    KWT_EQ(s.last_used_ms, t);
    KWT_ERR(M->session_get(db->ctx, e.client_id, t + KW_SESSION_IDLE_MS, &s, &err),
            KW_ERR_SESSION_EXPIRED);
    /* An older request time never moves last use back. */
    KWT_ERR(M->nonce_use(db->ctx, e.client_id, "slide-nonce-000002", NOW, &err), KW_OK);
    KWT_ERR(M->session_get(db->ctx, e.client_id, t, &s, &err), KW_OK);
    KWT_EQ(s.last_used_ms, t);
    KWT_EQ(KW_SESSION_IDLE_MS, 90 * DAY_MS);
}

static void nonces_are_single_use_per_client(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e[2];
    kw_error err;
    if (!KWT_CHECK(add_user_devices("jack", 2, u, e)))
        return;
    const char *n = "nonce-aaaaaaaaaaaa";
    KWT_ERR(M->nonce_use(db->ctx, e[0].client_id, n, NOW, &err), KW_OK);
    KWT_ERR(M->nonce_use(db->ctx, e[0].client_id, n, NOW + 1, &err), KW_ERR_DUPLICATE_REQUEST);
    KWT_ERR(M->nonce_use(db->ctx, e[1].client_id, n, NOW, &err), KW_OK); /* per client */
    /* Remembered 10 minutes: one ms before, still a duplicate; at the end, usable again. */
    KWT_ERR(M->nonce_use(db->ctx, e[0].client_id, n, NOW + KW_NONCE_TTL_MS - 1, &err),
            KW_ERR_DUPLICATE_REQUEST);
    KWT_ERR(M->nonce_use(db->ctx, e[0].client_id, n, NOW + KW_NONCE_TTL_MS, &err), KW_OK);
    KWT_ERR(M->nonce_use(db->ctx, e[0].client_id, n, NOW + KW_NONCE_TTL_MS + 1, &err),
            KW_ERR_DUPLICATE_REQUEST);
    /* A nonce for an unknown client is refused and not kept. */
    KWT_ERR(
        M->nonce_use(db->ctx, "ffffffffffffffffffffffffffffffff", "nonce-bbbbbbbbbbbb", NOW, &err),
        KW_ERR_UNKNOWN_CLIENT);
    KWT_EQ(raw_int("SELECT count(*) FROM nonces WHERE nonce = 'nonce-bbbbbbbbbbbb'"), 0);
    KWT_EQ(KW_NONCE_TTL_MS, 600000);
}

static void purge_is_bounded(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    kw_error err;
    if (!KWT_CHECK(add_user_devices("kate", 1, u, &e)))
        return;
    int64_t t = NOW + 1000 * DAY_MS; /* far after everything else in this file */
    for (int i = 0; i < 25; i++) {
        char n[32];
        snprintf(n, sizeof n, "purge-nonce-%06d", i);
        KWT_ERR(M->nonce_use(db->ctx, e.client_id, n, t, &err), KW_OK);
    }
    size_t removed = 99;
    KWT_ERR(M->purge(db->ctx, t + KW_NONCE_TTL_MS - 1, 1000, &removed, &err), KW_OK);
    long long left = raw_int("SELECT count(*) FROM nonces WHERE nonce LIKE 'purge-nonce-%'");
    KWT_EQ(left, 25); /* none stale yet */
    KWT_ERR(M->purge(db->ctx, t + KW_NONCE_TTL_MS, 10, &removed, &err), KW_OK);
    KWT_EQ(removed, 10); /* one batch of at most max_rows */
    KWT_EQ(raw_int("SELECT count(*) FROM nonces WHERE nonce LIKE 'purge-nonce-%'"), 15);
    int rounds = 0;
    while (removed == 10 && rounds++ < 100) /* go on next tick while batches are full */
        KWT_ERR(M->purge(db->ctx, t + KW_NONCE_TTL_MS, 10, &removed, &err), KW_OK);
    KWT_CHECK(removed < 10);
    KWT_EQ(raw_int("SELECT count(*) FROM nonces WHERE nonce LIKE 'purge-nonce-%'"), 0);
}

/* ---- keys --------------------------------------------------------------------------- */

typedef struct keyset {
    kw_store *store;
    kw_identity *id;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
} keyset;

static int keyset_open(keyset *k)
{
    memset(k, 0, sizeof *k);
    kw_error err;
    kw_identity_config cfg = {KW_ROLE_MEMBER, NULL, NULL, NULL, 0};
    if (kw_store_mem_new(&k->store) != KW_OK)
        return 0;
    cfg.store = k->store;
    return kw_identity_open(&cfg, &k->id, &err) == KW_OK &&
           kw_keys_setup(k->id, NOW, NULL, NULL, NULL, &err) == KW_OK &&
           kw_keys_identity(k->id, &k->pub, &err) == KW_OK &&
           kw_keys_signed_pre_key(k->id, &k->spk, &err) == KW_OK;
}

static void keyset_close(keyset *k)
{
    kw_identity_free(k->id);
    kw_store_free(k->store);
}

static void fake_prekeys(kw_db_prekey *out, size_t n, uint32_t first_id)
{
    for (size_t i = 0; i < n; i++) {
        out[i].id = first_id + (uint32_t)i;
        memset(out[i].public_key, (int)(i & 0xff), KW_PUBKEY_BYTES);
        out[i].public_key[0] = 0x05;
        memcpy(out[i].public_key + 1, &out[i].id, sizeof out[i].id);
    }
}

static void identity_upload_rules(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    keyset a, b;
    kw_error err;
    if (!KWT_CHECK(add_user_devices("liam", 1, u, &e)) || !KWT_CHECK(keyset_open(&a)))
        return;
    if (!KWT_CHECK(keyset_open(&b))) {
        keyset_close(&a);
        return;
    }
    uint8_t bad[KW_PUBKEY_BYTES];
    memcpy(bad, a.pub.identity_key, sizeof bad);
    bad[0] = 0x04;
    KWT_ERR(K->identity_put(db->ctx, u, 1, bad, 1, &err), KW_ERR_INVALID_KEY);
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, KW_REGISTRATION_ID_MAX + 1, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(K->identity_put(db->ctx, u, 2, a.pub.identity_key, 7, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, KW_REGISTRATION_ID_MAX, &err),
            KW_OK);
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, KW_REGISTRATION_ID_MAX, &err),
            KW_OK); /* the same again: fine */
    KWT_ERR(K->identity_put(db->ctx, u, 1, b.pub.identity_key, KW_REGISTRATION_ID_MAX, &err),
            KW_ERR_CONFLICT);
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, 5, &err), KW_ERR_CONFLICT);
    keyset_close(&a);
    keyset_close(&b);
}

static void signed_prekey_is_verified(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    keyset a, b;
    kw_error err;
    if (!KWT_CHECK(add_user_devices("mona", 1, u, &e)) || !KWT_CHECK(keyset_open(&a)))
        return;
    if (!KWT_CHECK(keyset_open(&b))) {
        keyset_close(&a);
        return;
    }
    /* No identity yet: nothing to verify against. */
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, a.spk.id, a.spk.public_key, a.spk.signature, &err),
            KW_ERR_CONFLICT);
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, a.pub.registration_id, &err), KW_OK);
    /* Signed by another identity (INV-1). */
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, b.spk.id, b.spk.public_key, b.spk.signature, &err),
            KW_ERR_INVALID_SIGNATURE);
    uint8_t sig[KW_SIGNATURE_BYTES];
    memcpy(sig, a.spk.signature, sizeof sig);
    sig[10] ^= 1;
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, a.spk.id, a.spk.public_key, sig, &err),
            KW_ERR_INVALID_SIGNATURE);
    uint8_t key[KW_PUBKEY_BYTES];
    memcpy(key, a.spk.public_key, sizeof key);
    key[0] = 0x06;
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, a.spk.id, key, a.spk.signature, &err),
            KW_ERR_INVALID_KEY);
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, KW_PREKEY_ID_MAX + 1, a.spk.public_key,
                                 a.spk.signature, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_EQ(raw_int("SELECT count(*) FROM member_signed_prekeys"), 0);
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, a.spk.id, a.spk.public_key, a.spk.signature, &err),
            KW_OK);
    KWT_ERR(
        K->signed_prekey_put(db->ctx, u, 1, a.spk.id + 1, a.spk.public_key, a.spk.signature, &err),
        KW_OK); /* a replacement (rotation) */
    kw_bundle bundle;
    KWT_ERR(K->bundle_take(db->ctx, u, 1, &bundle, NULL, &err), KW_OK);
    KWT_EQ(bundle.signed_pre_key_id, a.spk.id + 1);
    KWT_EQ(bundle.registration_id, a.pub.registration_id);
    KWT_MEMEQ(bundle.identity_key, a.pub.identity_key, KW_PUBKEY_BYTES);
    KWT_CHECK(!bundle.has_one_time_pre_key);
    keyset_close(&a);
    keyset_close(&b);
}

static void prekey_upload_rules(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    kw_error err;
    if (!KWT_CHECK(add_user_devices("nina", 1, u, &e)))
        return;
    kw_db_prekey keys[KW_PREKEYS_PER_UPLOAD_MAX + 1];
    size_t count = 99;
    fake_prekeys(keys, KW_PREKEYS_PER_UPLOAD_MAX + 1, 1);
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, keys, 0, &count, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, keys, KW_PREKEYS_PER_UPLOAD_MAX + 1, &count, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, keys, KW_PREKEYS_PER_UPLOAD_MAX, &count, &err), KW_OK);
    KWT_EQ(count, 100);
    /* Ids unique within one upload. */
    kw_db_prekey dup[3];
    fake_prekeys(dup, 3, 500);
    dup[2].id = 500;
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, dup, 3, &count, &err), KW_ERR_INVALID_ARGUMENT);
    /* An id already stored unused: 409, and nothing of the batch is kept. */
    fake_prekeys(dup, 3, 200);
    dup[2].id = 50;
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, dup, 3, &count, &err), KW_ERR_CONFLICT);
    KWT_CHECK(strstr(err.detail, "50") != NULL);
    KWT_ERR(K->prekeys_count(db->ctx, u, 1, &count, &err), KW_OK);
    KWT_EQ(count, 100);
    /* Range and shape of each key. */
    fake_prekeys(dup, 1, KW_PREKEY_ID_MAX + 1);
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, dup, 1, &count, &err), KW_ERR_INVALID_ARGUMENT);
    fake_prekeys(dup, 1, KW_PREKEY_ID_MAX);
    dup[0].public_key[0] = 0x04;
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, dup, 1, &count, &err), KW_ERR_INVALID_KEY);
    dup[0].public_key[0] = 0x05;
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, dup, 1, &count, &err), KW_OK);
    KWT_EQ(count, 101);
    KWT_ERR(K->prekeys_add(db->ctx, u, 2, dup, 1, &count, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(K->prekeys_count(db->ctx, u, 2, &count, &err), KW_OK);
    KWT_EQ(count, 0);
}

static void bundles_consume_lowest_prekey_once(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    keyset a;
    kw_error err;
    if (!KWT_CHECK(add_user_devices("omar", 1, u, &e)) || !KWT_CHECK(keyset_open(&a)))
        return;
    kw_bundle b;
    size_t remaining = 99;
    KWT_ERR(K->bundle_take(db->ctx, u, 1, &b, &remaining, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(K->bundle_take(db->ctx, "usr_unknown", 1, &b, &remaining, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, a.pub.registration_id, &err), KW_OK);
    KWT_ERR(K->bundle_take(db->ctx, u, 1, &b, &remaining, &err), KW_ERR_NOT_FOUND); /* no spk */
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, a.spk.id, a.spk.public_key, a.spk.signature, &err),
            KW_OK);
    kw_db_prekey keys[3];
    fake_prekeys(keys, 3, 7);
    keys[0].id = 9; /* upload out of order: handed out lowest first anyway */
    keys[2].id = 3;
    size_t count = 0;
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, keys, 3, &count, &err), KW_OK);
    static const uint32_t want[] = {3, 8, 9};
    for (int i = 0; i < 3; i++) {
        KWT_ERR(K->bundle_take(db->ctx, u, 1, &b, &remaining, &err), KW_OK);
        KWT_CHECK(b.has_one_time_pre_key);
        KWT_EQ(b.one_time_pre_key_id, want[i]);
        KWT_EQ(remaining, 2 - i);
        KWT_STREQ(b.owner, u);
        KWT_EQ(b.device_id, 1);
        KWT_CHECK(!b.owner_is_guest);
        /* The bundle is what a client accepts: JSON round trip with signature check. */
        char *json = NULL;
        KWT_ERR(kw_bundle_to_json(&b, &json, &err), KW_OK);
        kw_bundle back;
        KWT_ERR(kw_bundle_from_json(json, json ? strlen(json) : 0, &back, &err), KW_OK);
        free(json);
    }
    /* None left: still served, without a one-time pre-key (INV-2). */
    KWT_ERR(K->bundle_take(db->ctx, u, 1, &b, &remaining, &err), KW_OK);
    KWT_CHECK(!b.has_one_time_pre_key);
    KWT_EQ(remaining, 0);
    /* A consumed id may be uploaded again. */
    KWT_ERR(K->prekeys_add(db->ctx, u, 1, keys, 1, &count, &err), KW_OK);
    KWT_EQ(count, 1);
    keyset_close(&a);
}

/*
 * INV-2 under concurrency: CHILDREN processes, each with its own connection, take bundles
 * until none has a one-time pre-key left; every pre-key is handed out exactly once.
 */
#define CHILDREN 6
#define PREKEYS  300

static void inv_2_concurrent_fetches_never_share_a_prekey(void)
{
    char u[KW_DB_ID_MAX + 1];
    kw_db_enrollment e;
    keyset a;
    kw_error err;
    if (!KWT_CHECK(add_user_devices("pat", 1, u, &e)) || !KWT_CHECK(keyset_open(&a)))
        return;
    KWT_ERR(K->identity_put(db->ctx, u, 1, a.pub.identity_key, a.pub.registration_id, &err), KW_OK);
    KWT_ERR(K->signed_prekey_put(db->ctx, u, 1, a.spk.id, a.spk.public_key, a.spk.signature, &err),
            KW_OK);
    keyset_close(&a);
    kw_db_prekey keys[100];
    size_t count = 0;
    for (uint32_t batch = 0; batch < PREKEYS / 100; batch++) {
        fake_prekeys(keys, 100, 1000 + batch * 100);
        KWT_ERR(K->prekeys_add(db->ctx, u, 1, keys, 100, &count, &err), KW_OK);
    }
    KWT_EQ(count, PREKEYS);

    int fds[2];
    if (!KWT_CHECK(pipe(fds) == 0))
        return;
    fflush(stdout);
    pid_t kids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        kids[c] = fork();
        if (kids[c] == 0) {
            close(fds[0]);
            kw_db *mine = NULL;
            kw_error cerr;
            if (kw_db_open_sqlite(dir, &mine, &cerr) != KW_OK)
                _exit(2);
            for (;;) {
                kw_bundle b;
                if (mine->keys->bundle_take(mine->ctx, u, 1, &b, NULL, &cerr) != KW_OK)
                    _exit(3);
                if (!b.has_one_time_pre_key)
                    break;
                uint32_t id = b.one_time_pre_key_id;
                if (write(fds[1], &id, sizeof id) != (ssize_t)sizeof id) /* atomic: < PIPE_BUF */
                    _exit(4);
            }
            kw_db_close(mine);
            _exit(0);
        }
    }
    close(fds[1]);
    static unsigned seen[PREKEYS];
    memset(seen, 0, sizeof seen);
    size_t total = 0, outside = 0;
    uint32_t id;
    while (read(fds[0], &id, sizeof id) == (ssize_t)sizeof id) {
        total++;
        if (id < 1000 || id >= 1000 + PREKEYS)
            outside++;
        else
            seen[id - 1000]++;
    }
    close(fds[0]);
    for (int c = 0; c < CHILDREN; c++) {
        int status = -1;
        if (kids[c] > 0)
            waitpid(kids[c], &status, 0);
        KWT_CHECK(kids[c] > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    KWT_EQ(total, PREKEYS);
    KWT_EQ(outside, 0);
    size_t twice = 0, never = 0;
    for (int i = 0; i < PREKEYS; i++) {
        twice += seen[i] > 1;
        never += seen[i] == 0;
    }
    KWT_EQ(twice, 0);
    KWT_EQ(never, 0);
    KWT_ERR(K->prekeys_count(db->ctx, u, 1, &count, &err), KW_OK);
    KWT_EQ(count, 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/keywave-test-db-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        kwt_cases_failed++;
        return kwt_finish();
    }
    kw_error err;
    if (kw_db_open_sqlite(dir, &db, &err) != KW_OK) {
        printf("FAIL open: %s\n", err.detail);
        kwt_cases_failed++;
        remove_dir(dir);
        return kwt_finish();
    }
    KWT_RUN(migrations_are_idempotent_on_reopen);
    KWT_RUN(wal_and_pragmas_are_set);
    KWT_RUN(newer_schema_is_refused);
    KWT_RUN(unusable_dir_is_an_io_error);
    if (db != NULL) {
        KWT_RUN(user_names_follow_their_rule);
        KWT_RUN(codes_are_base32_and_stored_hashed);
        KWT_RUN(code_is_one_time);
        KWT_RUN(code_expiry_boundary);
        KWT_RUN(enroll_input_rules);
        KWT_RUN(device_ids_count_per_user);
        KWT_RUN(sessions_slide_and_expire);
        KWT_RUN(nonces_are_single_use_per_client);
        KWT_RUN(purge_is_bounded);
        KWT_RUN(identity_upload_rules);
        KWT_RUN(signed_prekey_is_verified);
        KWT_RUN(prekey_upload_rules);
        KWT_RUN(bundles_consume_lowest_prekey_once);
        KWT_RUN(inv_2_concurrent_fetches_never_share_a_prekey);
    }
    kw_db_close(db);
    remove_dir(dir);
    return kwt_finish();
}
