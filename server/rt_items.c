/*
 * rt_items.c — sendItem and sendGroupItem on "/" (DESIGN.md section 8, INV-7).
 *
 * sendItem goes to every "/" socket of the recipient device; when it has none, the
 * receiveItem event is stored (db_items.h) and delivered when the device next connects.
 * sendGroupItem goes to every other device of the channel's (or meeting's) members: to
 * the online ones now, stored for the others. Everything is checked (payload, access,
 * recipients' queue room, the store's per-device cap) before anything is sent or stored,
 * so a failed event changes nothing; storing comes before sending, so a store failure
 * relays nothing.
 *
 * Delivery: a stored item is deleted only after it was queued to the socket, never
 * before, so a failed delete (or a crash between the two) delivers it again: at least
 * once up to the socket's queue, duplicates possible (clients deduplicate on itemId). The
 * queue is memory: a connection that dies before writing a queued frame loses that item,
 * as it would lose a live one. A backlog larger than one queue's room goes out in passes:
 * rt.c calls kw_rt_items_deliver again whenever that socket's queue has drained, and
 * while a backlog is pending new items for that device are stored behind it (order kept).
 *
 * Device lookups scan the socket index (kw_rt_device_collect): O(connections) per
 * device, fine for 1:1 items and small groups; a device index in rt.c would make large
 * groups cheap.
 */
#include "rt_items.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_items.h"
#include "db_meetings.h"
#include "db_members.h"
#include "log.h"
#include "presence.h"
#include "server.h"

#define ITEM_TYPE_MAX   64               /* type: 1..64 printable ASCII */
#define CIPHER_TYPE_MAX 255              /* cipherType: an integer 0..255 */
#define TIMESTAMP_MAX   9007199254740991 /* 2^53 - 1: what every JSON client keeps exact */

/* ---- payload checks ------------------------------------------------------------------- */

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* obj[key] as a string of 1..max bytes (printable ASCII when ids). */
static kw_err str_field(json_t *obj, const char *key, size_t max, int ids, const char **out,
                        kw_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be a string", key);
    size_t n = json_string_length(v);
    if (n == 0 || n > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be 1..%zu bytes", key, max);
    if (ids && !printable(json_string_value(v), n))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s holds a character it may not", key);
    if (!ids && strlen(json_string_value(v)) != n)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s holds a NUL", key);
    *out = json_string_value(v);
    return KW_OK;
}

/* obj[key] as an integer lo..hi. */
static kw_err int_field(json_t *obj, const char *key, json_int_t lo, json_int_t hi, json_int_t *out,
                        kw_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be an integer %lld..%lld", key,
                            (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return KW_OK;
}

/* Parses a decimal device id 1..KW_DEVICE_ID_MAX without sign or leading zero. */
static int device_id_parse(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10 || s[0] == '0')
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > KW_DEVICE_ID_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* obj[key] as a device id: an integer or a decimal string (clients send either). */
static kw_err device_field(json_t *obj, const char *key, uint32_t *out, kw_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) >= 1 &&
        json_integer_value(v) <= KW_DEVICE_ID_MAX) {
        *out = (uint32_t)json_integer_value(v);
        return KW_OK;
    }
    if (json_is_string(v) && device_id_parse(json_string_value(v), json_string_length(v), out))
        return KW_OK;
    return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be a device id 1..%d", key,
                        KW_DEVICE_ID_MAX);
}

/* arg is an object with exactly the n keys of names (each present, nothing else). */
static kw_err exact_keys(json_t *arg, const char *const *names, size_t n, kw_error *err)
{
    if (!json_is_object(arg))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "the payload must be an object");
    for (size_t i = 0; i < n; i++)
        if (json_object_get(arg, names[i]) == NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s is missing", names[i]);
    if (json_object_size(arg) != n)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "the payload has an unknown field");
    return KW_OK;
}

/* What both events carry. */
typedef struct item_common {
    const char *item_id, *type, *payload;
    json_int_t cipher_type;
} item_common;

static kw_err common_fields(json_t *arg, item_common *f, kw_error *err)
{
    kw_err rc = str_field(arg, "itemId", KW_ITEM_ID_MAX, 1, &f->item_id, err);
    if (rc == KW_OK)
        rc = str_field(arg, "type", ITEM_TYPE_MAX, 1, &f->type, err);
    if (rc == KW_OK)
        rc = str_field(arg, "payload", KW_ITEM_PAYLOAD_MAX, 0, &f->payload, err);
    if (rc == KW_OK)
        rc = int_field(arg, "cipherType", 0, CIPHER_TYPE_MAX, &f->cipher_type, err);
    return rc;
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* The caller's own device id as a number (the socket's is decimal text). */
static kw_err own_device(const kw_rt_member *me, uint32_t *out, kw_error *err)
{
    if (!device_id_parse(me->device_id, strlen(me->device_id), out))
        return kw_error_set(err, KW_ERR_INTERNAL, "the socket's device id is malformed");
    return KW_OK;
}

/* 1 when some socket of b has a stored backlog still being delivered. */
static int backlog_pending(kw_rt *rt, const kw_rt_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        kw_rt_conn *c = kw_rt_find(rt, b->ids[i], NULL);
        if (c != NULL && c->member.items_pending)
            return 1;
    }
    return 0;
}

/*
 * May user_id use channel_id (a channel or a meeting)? *is_meeting tells which it is.
 * Errors: KW_ERR_NOT_FOUND, KW_ERR_FORBIDDEN, KW_ERR_STORE.
 */
static kw_err channel_access(kw_db *db, const char *channel_id, const char *user_id,
                             int *is_meeting, kw_error *err)
{
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    *is_meeting = 0;
    kw_err rc = db->meetings->channel_role(db->ctx, channel_id, user_id, &role, err);
    if (rc == KW_ERR_NOT_FOUND) {
        *is_meeting = 1;
        rc = db->meetings->meeting_role(db->ctx, channel_id, user_id, &role, err);
        if (rc == KW_ERR_NOT_FOUND)
            return kw_error_set(err, KW_ERR_NOT_FOUND, "no such channel or meeting");
    }
    if (rc != KW_OK)
        return rc;
    if (role == KW_MEETING_ROLE_NONE)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "not a member of that channel or meeting");
    return KW_OK;
}

static kw_db *items_db(kw_rt_call *call, kw_error *err)
{
    kw_db *db = call->srv->db;
    if (db == NULL || db->items == NULL || db->members == NULL || db->meetings == NULL) {
        kw_error_set(err, KW_ERR_INTERNAL, "no store");
        return NULL;
    }
    return db;
}

/* ---- sendItem -------------------------------------------------------------------------- */

static const char *const direct_keys[] = {"recipient", "recipientDeviceId", "type",
                                          "payload",   "cipherType",        "itemId"};

static kw_err on_send_item(kw_rt_call *call, kw_error *err)
{
    json_t *arg = call->arg;
    const kw_rt_member *me = &call->conn->member;
    item_common f;
    const char *recipient = NULL;
    uint32_t rdev = 0, mydev = 0;
    kw_err rc = exact_keys(arg, direct_keys, sizeof direct_keys / sizeof direct_keys[0], err);
    if (rc == KW_OK)
        rc = str_field(arg, "recipient", KW_DB_ID_MAX, 1, &recipient, err);
    if (rc == KW_OK)
        rc = device_field(arg, "recipientDeviceId", &rdev, err);
    if (rc == KW_OK)
        rc = common_fields(arg, &f, err);
    if (rc == KW_OK)
        rc = own_device(me, &mydev, err);
    if (rc != KW_OK)
        return rc;
    kw_db *db = items_db(call, err);
    if (db == NULL)
        return err->code;
    rc = db->members->device_exists(db->ctx, recipient, rdev, err);
    if (rc == KW_ERR_NOT_FOUND)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such user or device");
    if (rc != KW_OK)
        return rc;

    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "sender", me->user_id,
                           "senderDeviceId", me->device_id, "type", f.type, "payload", f.payload,
                           "cipherType", f.cipher_type, "itemId", f.item_id);
    char dev_text[16], *text = NULL, *stored_json = NULL;
    size_t len = 0, stored = 0;
    kw_rt_batch online = {0};
    snprintf(dev_text, sizeof dev_text, "%u", (unsigned)rdev);
    if (ev == NULL)
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (rc == KW_OK && kw_rt_device_collect(call->rt, recipient, dev_text, &online) != KW_OK)
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    int live = rc == KW_OK && online.n > 0 && !backlog_pending(call->rt, &online);
    if (rc == KW_OK && live) {
        rc = kw_rt_encode_event(KW_RT_NSP_MEMBER, "receiveItem", ev, &text, &len);
        if (rc != KW_OK)
            kw_error_set(err, rc, "cannot encode receiveItem");
        else
            rc = kw_rt_batch_check(call->rt, &online, len, err);
        if (rc == KW_OK)
            kw_rt_batch_send(call->rt, &online, text, len);
    } else if (rc == KW_OK) {
        /* INV-7: offline (or behind a backlog): stored until delivered. */
        kw_db_device_ref to;
        snprintf(to.user_id, sizeof to.user_id, "%s", recipient);
        to.device_id = rdev;
        stored_json = json_dumps(ev, JSON_COMPACT);
        if (stored_json == NULL)
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        else
            rc = db->items->store(db->ctx, &to, 1, me->user_id, mydev, KW_ITEM_DIRECT, f.item_id,
                                  stored_json, call->now_ms, &stored, NULL, err);
    }
    json_decref(ev);
    free(text);
    free(stored_json);
    kw_rt_batch_free(&online);
    if (rc != KW_OK)
        return rc;
    if (json_object_set_new(call->ack, "delivered", json_boolean(live)) != 0 ||
        json_object_set_new(call->ack, "stored", json_boolean(!live)) != 0)
        return KW_OK; /* done; the ack only lacks its extras */
    return KW_OK;
}

/* ---- sendGroupItem ----------------------------------------------------------------------- */

/*
 * A meeting's group item also goes to its admitted guests that are connected now: they hold
 * the members' sender keys (seed 002) and this is how group messages reach them. Live only
 * (a guest has no store-and-forward: its session ends with its tab); waiting and declined
 * guests never get it (INV-6). Adds their sockets to b; *n_guests gets how many guests
 * have one. Errors: KW_ERR_STORE, KW_ERR_NOMEM.
 */
static kw_err admitted_guest_sockets(kw_rt_call *call, kw_db *db, const char *meeting_id,
                                     kw_rt_batch *b, size_t *n_guests, kw_error *err)
{
    kw_db_admitted_guest *guests = NULL;
    size_t n = 0;
    *n_guests = 0;
    if (db->meetings == NULL)
        return KW_OK;
    kw_err rc = db->meetings->admitted_guests(db->ctx, meeting_id, call->now_ms, &guests, &n, err);
    for (size_t i = 0; rc == KW_OK && i < n; i++) {
        size_t before = b->n;
        if (kw_rt_guest_collect(call->rt, meeting_id, guests[i].session_id, b) != KW_OK)
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        else if (b->n > before)
            (*n_guests)++;
    }
    free(guests);
    return rc;
}

static const char *const group_keys[] = {"channelId", "itemId",     "type",
                                         "payload",   "cipherType", "timestamp"};

static kw_err on_send_group_item(kw_rt_call *call, kw_error *err)
{
    json_t *arg = call->arg;
    const kw_rt_member *me = &call->conn->member;
    item_common f;
    const char *channel_id = NULL;
    json_int_t timestamp = 0;
    uint32_t mydev = 0;
    int is_meeting = 0;
    kw_err rc = exact_keys(arg, group_keys, sizeof group_keys / sizeof group_keys[0], err);
    if (rc == KW_OK)
        rc = str_field(arg, "channelId", KW_PRESENCE_ID_MAX, 1, &channel_id, err);
    if (rc == KW_OK)
        rc = common_fields(arg, &f, err);
    if (rc == KW_OK)
        rc = int_field(arg, "timestamp", 0, TIMESTAMP_MAX, &timestamp, err);
    if (rc == KW_OK)
        rc = own_device(me, &mydev, err);
    if (rc != KW_OK)
        return rc;
    kw_db *db = items_db(call, err);
    if (db == NULL)
        return err->code;
    rc = channel_access(db, channel_id, me->user_id, &is_meeting, err);
    if (rc != KW_OK)
        return rc;
    kw_db_device_ref *devs = NULL;
    size_t n = 0;
    rc = db->items->group_devices(db->ctx, channel_id, is_meeting, &devs, &n, err);
    if (rc != KW_OK)
        return rc;
    if (n > KW_ITEMS_GROUP_MAX) {
        free(devs);
        return kw_error_set(err, KW_ERR_RATE_LIMITED, "the group has over %d devices",
                            KW_ITEMS_GROUP_MAX);
    }

    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "channel", channel_id, "sender",
                  me->user_id, "senderDevice", me->device_id, "itemId", f.item_id, "type", f.type,
                  "payload", f.payload, "cipherType", f.cipher_type, "timestamp", timestamp);
    kw_rt_batch online = {0};
    size_t n_online = 0, n_offline = 0, n_full = 0, stored = 0, len = 0;
    char *text = NULL, *stored_json = NULL;
    if (ev == NULL)
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    /* Split the devices, keeping the offline ones at the front of devs. */
    for (size_t i = 0; rc == KW_OK && i < n; i++) {
        if (devs[i].device_id == mydev && strcmp(devs[i].user_id, me->user_id) == 0)
            continue; /* the sender's own device */
        char dev_text[16];
        snprintf(dev_text, sizeof dev_text, "%u", (unsigned)devs[i].device_id);
        kw_rt_batch one = {0};
        if (kw_rt_device_collect(call->rt, devs[i].user_id, dev_text, &one) != KW_OK) {
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        } else if (one.n > 0 && !backlog_pending(call->rt, &one)) {
            for (size_t k = 0; rc == KW_OK && k < one.n; k++)
                if (kw_rt_batch_add(&online, one.ids[k]) != KW_OK)
                    rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
            n_online++;
        } else {
            devs[n_offline++] = devs[i];
        }
        kw_rt_batch_free(&one);
    }
    if (rc == KW_OK && online.n > 0) {
        rc = kw_rt_encode_event(KW_RT_NSP_MEMBER, "groupItem", ev, &text, &len);
        if (rc != KW_OK)
            kw_error_set(err, rc, "cannot encode groupItem");
        else
            rc = kw_rt_batch_check(call->rt, &online, len, err);
    }
    /* The admitted guests' queues are checked with the members': a refused item reaches no
     * one (INV-7). */
    kw_rt_batch guests = {0};
    size_t n_guests = 0, glen = 0;
    char *gtext = NULL;
    if (rc == KW_OK && is_meeting)
        rc = admitted_guest_sockets(call, db, channel_id, &guests, &n_guests, err);
    if (rc == KW_OK && guests.n > 0) {
        rc = kw_rt_encode_event(KW_RT_NSP_GUEST, "groupItem", ev, &gtext, &glen);
        if (rc != KW_OK)
            kw_error_set(err, rc, "cannot encode groupItem");
        else
            rc = kw_rt_batch_check(call->rt, &guests, glen, err);
    }
    if (rc == KW_OK && n_offline > 0) {
        /* INV-7: the offline devices get it on their next connect. */
        stored_json = json_dumps(ev, JSON_COMPACT);
        if (stored_json == NULL)
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        else
            rc = db->items->store(db->ctx, devs, n_offline, me->user_id, mydev, KW_ITEM_GROUP,
                                  f.item_id, stored_json, call->now_ms, &stored, &n_full, err);
    }
    if (rc == KW_OK && text != NULL)
        kw_rt_batch_send(call->rt, &online, text, len);
    if (rc == KW_OK && gtext != NULL)
        kw_rt_batch_send(call->rt, &guests, gtext, glen);
    free(gtext);
    kw_rt_batch_free(&guests);
    json_decref(ev);
    free(devs);
    free(text);
    free(stored_json);
    kw_rt_batch_free(&online);
    if (rc != KW_OK)
        return rc;
    if (n_full > 0) /* INV-7: not silent: the sender is told who cannot get it */
        kw_log(KW_LOG_INFO, "rt_group_item_full", "socket=%llu devices=%zu",
               (unsigned long long)me->socket_id, n_full);
    if (json_object_set_new(call->ack, "delivered", json_integer((json_int_t)n_online)) != 0 ||
        json_object_set_new(call->ack, "stored", json_integer((json_int_t)(n_offline - n_full))) !=
            0 ||
        json_object_set_new(call->ack, "full", json_integer((json_int_t)n_full)) != 0 ||
        json_object_set_new(call->ack, "guests", json_integer((json_int_t)n_guests)) != 0)
        return KW_OK; /* done; the ack only lacks its extras */
    return KW_OK;
}

/* ---- delivery on connect ------------------------------------------------------------------ */

void kw_rt_items_deliver(kw_rt *rt, kw_rt_conn *c, int64_t now_ms)
{
    kw_rt_member *me = &c->member;
    struct kw_server *srv = kw_rt_server(rt);
    kw_db *db = srv->db;
    uint32_t dev = 0;
    kw_error e;
    kw_error_clear(&e);
    me->items_pending = 0;
    if (me->socket_id == 0 || db == NULL || db->items == NULL || own_device(me, &dev, &e) != KW_OK)
        return;
    kw_db_item *items = NULL;
    size_t n = 0, sent = 0;
    if (db->items->pending(db->ctx, me->user_id, dev, now_ms, KW_RT_ITEMS_DELIVER_BATCH, &items, &n,
                           &e) != KW_OK) {
        kw_log(KW_LOG_WARN, "rt_items_deliver_failed", "socket=%llu error=%s",
               (unsigned long long)me->socket_id, kw_err_name(e.code));
        return;
    }
    kw_rt_batch one = {0};
    int stopped = kw_rt_batch_add(&one, me->socket_id) != KW_OK;
    int64_t last_seq = 0;
    for (size_t i = 0; !stopped && i < n; i++) {
        json_t *payload = json_loads(items[i].json, 0, NULL);
        char *text = NULL;
        size_t len = 0;
        const char *name = items[i].kind == KW_ITEM_GROUP ? "groupItem" : "receiveItem";
        kw_err rc = payload ? kw_rt_encode_event(KW_RT_NSP_MEMBER, name, payload, &text, &len)
                            : KW_ERR_JSON;
        json_decref(payload);
        if (rc == KW_OK && kw_rt_batch_check(rt, &one, len, &e) != KW_OK) {
            stopped = 1; /* the rest waits until this queue has drained */
            free(text);
            break;
        }
        if (rc == KW_OK && kw_rt_batch_send(rt, &one, text, len) == 1)
            sent++;
        else if (rc == KW_OK)
            rc = KW_ERR_NOMEM;
        free(text);
        if (rc == KW_ERR_NOMEM) {
            stopped = 1; /* kept stored: delivered later */
            break;
        }
        last_seq = items[i].seq; /* queued, or unreadable (dropped: it never will be) */
    }
    if (last_seq > 0 && db->items->delete_upto(db->ctx, me->user_id, dev, last_seq, &e) != KW_OK)
        kw_log(KW_LOG_WARN, "rt_items_delete_failed", "socket=%llu error=%s",
               (unsigned long long)me->socket_id, kw_err_name(e.code));
    if (stopped || n == KW_RT_ITEMS_DELIVER_BATCH)
        me->items_pending = 1; /* more: rt.c calls again once the queue is empty */
    if (sent > 0)
        kw_log(KW_LOG_INFO, "rt_items_delivered", "socket=%llu items=%zu more=%d",
               (unsigned long long)me->socket_id, sent, me->items_pending);
    kw_rt_batch_free(&one);
    kw_db_items_free(items, n);
}

const kw_rt_event kw_rt_events_items[] = {
    {KW_RT_NSP_MEMBER, "sendItem", on_send_item},
    {KW_RT_NSP_MEMBER, "sendGroupItem", on_send_group_item},
    {KW_RT_NSP_MEMBER, NULL, NULL},
};
