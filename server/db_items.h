/*
 * db_items.h — storage of realtime items for member devices that are offline
 * (DESIGN.md section 8: sendItem / sendGroupItem, INV-7). Called as
 * db->items->op(db->ctx, ...) (db.h).
 *
 * An item is the complete event a device will receive (receiveItem or groupItem) as JSON
 * text, kept until the device connects on "/" and it has been queued to its socket, then
 * deleted (never before: a crash between queueing and deleting delivers it again; clients
 * deduplicate on itemId). Storage is idempotent on (recipient device, sender device, kind,
 * itemId): storing the same item again stores nothing. Each device holds at most
 * KW_ITEMS_PER_DEVICE_MAX items; stored items expire after KW_ITEMS_TTL_MS and are purged
 * by the cleanup pass. Rows go with their recipient device (foreign key, ON DELETE
 * CASCADE). Payloads are end-to-end ciphertexts: never logged.
 */
#ifndef KEYWAVE_SERVER_DB_ITEMS_H
#define KEYWAVE_SERVER_DB_ITEMS_H

#include <stddef.h>
#include <stdint.h>

#include "db_members.h"
#include "keywave/err.h"

#define KW_ITEMS_PER_DEVICE_MAX 1000                             /* stored items per device */
#define KW_ITEMS_TTL_MS         (30LL * 24 * 60 * 60 * 1000)     /* stored items live 30 days */
#define KW_ITEM_ID_MAX          128                              /* itemId: 1..128 bytes */
#define KW_ITEM_PAYLOAD_MAX     65536                            /* payload: at most 64 KiB */
#define KW_ITEM_JSON_MAX        (KW_ITEM_PAYLOAD_MAX * 6 + 4096) /* a stored event's JSON (escaped) */
#define KW_ITEMS_GROUP_MAX      1000 /* devices one group item may be stored for */

/* What an item is: a 1:1 receiveItem or a groupItem (part of the idempotency key). */
typedef enum kw_item_kind {
    KW_ITEM_DIRECT = 0, /* receiveItem */
    KW_ITEM_GROUP = 1,  /* groupItem */
} kw_item_kind;

/* A member device. */
typedef struct kw_db_device_ref {
    char user_id[KW_DB_ID_MAX + 1];
    uint32_t device_id;
} kw_db_device_ref;

/* A stored item as delivery reads it. */
typedef struct kw_db_item {
    int64_t seq;       /* storage order; delete_upto takes it */
    kw_item_kind kind; /* which event to emit */
    char *json;        /* owned (free()); the event's payload object as JSON text */
} kw_db_item;

typedef struct kw_db_items_ops {
    /*
     * Stores the item json (kind, from sender_user/sender_device, item_id) for each of the
     * n devices in to[], in one transaction, to expire at now_ms + KW_ITEMS_TTL_MS. A
     * device that already holds that item (same sender device, kind and item_id) is
     * skipped. *stored (may be NULL) gets how many rows were added. A device that already
     * holds KW_ITEMS_PER_DEVICE_MAX items: with full NULL the whole call fails
     * (KW_ERR_RATE_LIMITED, nothing stored for anyone); with full non-NULL that device is
     * skipped and counted in *full (group items: one abandoned device must not block a
     * channel). Errors: KW_ERR_INVALID_ARGUMENT (n over KW_ITEMS_GROUP_MAX, item_id or
     * json out of bounds), KW_ERR_RATE_LIMITED, KW_ERR_NOT_FOUND (a device does not
     * exist; nothing stored), KW_ERR_STORE.
     */
    kw_err (*store)(void *ctx, const kw_db_device_ref *to, size_t n, const char *sender_user,
                    uint32_t sender_device, kw_item_kind kind, const char *item_id,
                    const char *json, int64_t now_ms, size_t *stored, size_t *full, kw_error *err);
    /*
     * Lists up to max unexpired items of (user_id, device_id), oldest first. *out malloc'd
     * (free with kw_db_items_free; NULL when *n is 0). Errors: KW_ERR_STORE, KW_ERR_NOMEM.
     */
    kw_err (*pending)(void *ctx, const char *user_id, uint32_t device_id, int64_t now_ms,
                      size_t max, kw_db_item **out, size_t *n, kw_error *err);
    /* Deletes the items of (user_id, device_id) with seq <= upto_seq (delivered).
     * Errors: KW_ERR_STORE. */
    kw_err (*delete_upto)(void *ctx, const char *user_id, uint32_t device_id, int64_t upto_seq,
                          kw_error *err);
    /* How many items (expired or not) (user_id, device_id) holds. Errors: KW_ERR_STORE. */
    kw_err (*count)(void *ctx, const char *user_id, uint32_t device_id, size_t *out, kw_error *err);
    /*
     * Every device of every member of a channel (is_meeting 0) or participant of a meeting
     * (1), at most KW_ITEMS_GROUP_MAX + 1 (so a caller sees "too many"). *out malloc'd
     * (free(); NULL when *n is 0). Errors: KW_ERR_STORE, KW_ERR_NOMEM.
     */
    kw_err (*group_devices)(void *ctx, const char *channel_id, int is_meeting,
                            kw_db_device_ref **out, size_t *n, kw_error *err);
    /*
     * Housekeeping: deletes up to max_rows items expired at now_ms; *removed (may be NULL)
     * gets how many. Errors: KW_ERR_STORE.
     */
    kw_err (*purge)(void *ctx, int64_t now_ms, size_t max_rows, size_t *removed, kw_error *err);
} kw_db_items_ops;

/* Frees n items from pending (and their json). Accepts NULL. */
void kw_db_items_free(kw_db_item *items, size_t n);

#endif
