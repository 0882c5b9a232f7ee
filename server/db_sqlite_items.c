/*
 * db_sqlite_items.c — the SQLite implementation of db_items.h: stored realtime items for
 * offline member devices (table `items`, migration 5).
 *
 * Idempotency is the table's UNIQUE key (recipient, sender device, kind, item_id); the
 * per-device cap is counted inside the same write transaction as the insert, so two
 * writers cannot both slip under it. Delivery reads in seq order and deletes by seq.
 */
#include <stdlib.h>
#include <string.h>

#include "db_items.h"
#include "db_sqlite.h"

static const char SQL_DUP[] =
    "SELECT 1 FROM items WHERE user_id = ?1 AND device_id = ?2 AND sender_user = ?3"
    " AND sender_device = ?4 AND kind = ?5 AND item_id = ?6";
static const char SQL_COUNT[] = "SELECT count(*) FROM items WHERE user_id = ?1 AND device_id = ?2";
static const char SQL_DEVICE[] = "SELECT 1 FROM devices WHERE user_id = ?1 AND device_id = ?2";
static const char SQL_INSERT[] =
    "INSERT INTO items (user_id, device_id, sender_user, sender_device, kind, item_id, json,"
    " created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_PENDING[] =
    "SELECT seq, kind, json FROM items WHERE user_id = ?1 AND device_id = ?2 AND expires_ms > ?3"
    " ORDER BY seq LIMIT ?4";
static const char SQL_DELETE_UPTO[] =
    "DELETE FROM items WHERE user_id = ?1 AND device_id = ?2 AND seq <= ?3";
static const char SQL_CHANNEL_DEVICES[] =
    "SELECT d.user_id, d.device_id FROM channel_members m JOIN devices d ON d.user_id = m.user_id"
    " WHERE m.channel_id = ?1 ORDER BY d.user_id, d.device_id LIMIT ?2";
static const char SQL_MEETING_DEVICES[] =
    "SELECT d.user_id, d.device_id FROM meeting_participants p JOIN devices d"
    " ON d.user_id = p.user_id WHERE p.meeting_id = ?1 ORDER BY d.user_id, d.device_id LIMIT ?2";
static const char SQL_PURGE[] = "DELETE FROM items WHERE seq IN"
                                " (SELECT seq FROM items WHERE expires_ms <= ?1 LIMIT ?2)";

void kw_db_items_free(kw_db_item *items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i].json);
    free(items);
}

/* Runs a one-row query on (user_id, device_id [, ...bound by the caller]); *row = got one. */
static kw_err step_row(kw_sqlite *s, sqlite3_stmt *st, const char *what, int *row, int64_t *value,
                       kw_error *err)
{
    int r = sqlite3_step(st);
    *row = r == SQLITE_ROW;
    if (r == SQLITE_ROW && value != NULL)
        *value = sqlite3_column_int64(st, 0);
    kw_sqlite_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return kw_sqlite_fail(s, what, err);
    return KW_OK;
}

/* Stores one row for dev inside the caller's transaction; *added = 1 when inserted. */
static kw_err store_one(kw_sqlite *s, const kw_db_device_ref *dev, const char *sender_user,
                        uint32_t sender_device, kw_item_kind kind, const char *item_id,
                        const char *json, int64_t now_ms, int *added, kw_error *err)
{
    *added = 0;
    int row = 0;
    int64_t count = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_DEVICE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, dev->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev->device_id);
    kw_err rc = step_row(s, st, "items device", &row, NULL, err);
    if (rc != KW_OK)
        return rc;
    if (!row)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such device");
    if ((st = kw_sqlite_stmt(s, SQL_DUP, err)) == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, dev->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev->device_id);
    sqlite3_bind_text(st, 3, sender_user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, sender_device);
    sqlite3_bind_int(st, 5, (int)kind);
    sqlite3_bind_text(st, 6, item_id, -1, SQLITE_STATIC);
    if ((rc = step_row(s, st, "items duplicate", &row, NULL, err)) != KW_OK)
        return rc;
    if (row)
        return KW_OK; /* already stored: idempotent */
    if ((st = kw_sqlite_stmt(s, SQL_COUNT, err)) == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, dev->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev->device_id);
    if ((rc = step_row(s, st, "items count", &row, &count, err)) != KW_OK)
        return rc;
    if (count >= KW_ITEMS_PER_DEVICE_MAX)
        return kw_error_set(err, KW_ERR_RATE_LIMITED,
                            "the recipient device holds %d stored items already",
                            KW_ITEMS_PER_DEVICE_MAX);
    if ((st = kw_sqlite_stmt(s, SQL_INSERT, err)) == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, dev->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev->device_id);
    sqlite3_bind_text(st, 3, sender_user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, sender_device);
    sqlite3_bind_int(st, 5, (int)kind);
    sqlite3_bind_text(st, 6, item_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now_ms);
    sqlite3_bind_int64(st, 9, now_ms + KW_ITEMS_TTL_MS);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE)
        return kw_sqlite_fail(s, "items insert", err);
    *added = 1;
    return KW_OK;
}

static kw_err store(void *ctx, const kw_db_device_ref *to, size_t n, const char *sender_user,
                    uint32_t sender_device, kw_item_kind kind, const char *item_id,
                    const char *json, int64_t now_ms, size_t *stored, size_t *full, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (stored != NULL)
        *stored = 0;
    if (full != NULL)
        *full = 0;
    if (n > KW_ITEMS_GROUP_MAX || (n > 0 && to == NULL))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "at most %d devices", KW_ITEMS_GROUP_MAX);
    size_t id_len = item_id ? strlen(item_id) : 0;
    if (id_len == 0 || id_len > KW_ITEM_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "itemId must be 1..%d bytes",
                            KW_ITEM_ID_MAX);
    if (json == NULL || strlen(json) > KW_ITEM_JSON_MAX || sender_user == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "item too large");
    if (kind != KW_ITEM_DIRECT && kind != KW_ITEM_GROUP)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "unknown item kind");
    if (n == 0)
        return KW_OK;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    size_t added = 0, skipped = 0;
    for (size_t i = 0; i < n && rc == KW_OK; i++) {
        int one = 0;
        rc = store_one(s, &to[i], sender_user, sender_device, kind, item_id, json, now_ms, &one,
                       err);
        if (rc == KW_ERR_RATE_LIMITED && full != NULL) {
            rc = KW_OK; /* that device is full: skipped, counted */
            skipped++;
        }
        added += (size_t)one;
    }
    if (rc != KW_OK) {
        kw_sqlite_rollback(s);
        return rc;
    }
    if ((rc = kw_sqlite_commit(s, err)) != KW_OK)
        return rc;
    if (stored != NULL)
        *stored = added;
    if (full != NULL)
        *full = skipped;
    return KW_OK;
}

static kw_err pending(void *ctx, const char *user_id, uint32_t device_id, int64_t now_ms,
                      size_t max, kw_db_item **out, size_t *n, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = NULL;
    *n = 0;
    if (max == 0)
        return KW_OK;
    if (max > KW_ITEMS_PER_DEVICE_MAX)
        max = KW_ITEMS_PER_DEVICE_MAX;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PENDING, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    kw_db_item *items = NULL;
    size_t count = 0, cap = 0;
    kw_err rc = KW_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t c2 = cap ? cap * 2 : 16;
            kw_db_item *grown = realloc(items, c2 * sizeof *grown);
            if (grown == NULL) {
                rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
                break;
            }
            items = grown;
            cap = c2;
        }
        const unsigned char *text = sqlite3_column_text(st, 2);
        int len = sqlite3_column_bytes(st, 2);
        char *json = malloc((size_t)len + 1);
        if (json == NULL) {
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
            break;
        }
        if (len > 0)
            memcpy(json, text, (size_t)len);
        json[len] = '\0';
        items[count].seq = sqlite3_column_int64(st, 0);
        items[count].kind =
            sqlite3_column_int(st, 1) == KW_ITEM_GROUP ? KW_ITEM_GROUP : KW_ITEM_DIRECT;
        items[count].json = json;
        count++;
    }
    kw_sqlite_reset(st);
    if (rc == KW_OK && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "items pending", err);
    if (rc != KW_OK) {
        kw_db_items_free(items, count);
        return rc;
    }
    *out = items;
    *n = count;
    return KW_OK;
}

static kw_err delete_upto(void *ctx, const char *user_id, uint32_t device_id, int64_t upto_seq,
                          kw_error *err)
{
    kw_sqlite *s = ctx;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_DELETE_UPTO, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    sqlite3_bind_int64(st, 3, upto_seq);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    return r == SQLITE_DONE ? KW_OK : kw_sqlite_fail(s, "items delete", err);
}

static kw_err count(void *ctx, const char *user_id, uint32_t device_id, size_t *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_COUNT, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    int row = 0;
    int64_t v = 0;
    kw_err rc = step_row(s, st, "items count", &row, &v, err);
    if (rc == KW_OK && v > 0)
        *out = (size_t)v;
    return rc;
}

static kw_err group_devices(void *ctx, const char *channel_id, int is_meeting,
                            kw_db_device_ref **out, size_t *n, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st =
        kw_sqlite_stmt(s, is_meeting ? SQL_MEETING_DEVICES : SQL_CHANNEL_DEVICES, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, channel_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, KW_ITEMS_GROUP_MAX + 1);
    kw_db_device_ref *devs = NULL;
    size_t got = 0, cap = 0;
    kw_err rc = KW_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (got == cap) {
            size_t c2 = cap ? cap * 2 : 16;
            kw_db_device_ref *grown = realloc(devs, c2 * sizeof *grown);
            if (grown == NULL) {
                rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
                break;
            }
            devs = grown;
            cap = c2;
        }
        const char *uid = (const char *)sqlite3_column_text(st, 0);
        size_t len = uid ? strlen(uid) : 0;
        if (len > KW_DB_ID_MAX)
            len = KW_DB_ID_MAX; /* cannot happen: ids are checked on the way in */
        if (len > 0)
            memcpy(devs[got].user_id, uid, len);
        devs[got].user_id[len] = '\0';
        devs[got].device_id = (uint32_t)sqlite3_column_int64(st, 1);
        got++;
    }
    kw_sqlite_reset(st);
    if (rc == KW_OK && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, "items group devices", err);
    if (rc != KW_OK) {
        free(devs);
        return rc;
    }
    *out = devs;
    *n = got;
    return KW_OK;
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
        return kw_sqlite_fail(s, "items purge", err);
    if (removed != NULL)
        *removed = (size_t)sqlite3_changes(s->db);
    return KW_OK;
}

const kw_db_items_ops kw_sqlite_items_ops = {
    .store = store,
    .pending = pending,
    .delete_upto = delete_upto,
    .count = count,
    .group_devices = group_devices,
    .purge = purge,
};
