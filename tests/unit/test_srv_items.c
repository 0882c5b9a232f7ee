/*
 * test_srv_items.c — stored realtime items (server/db_items.h) on a real SQLite file in a
 * temporary directory: store and read back in order, idempotency on (sender device, kind,
 * itemId) per recipient, the per-device cap at exactly KW_ITEMS_PER_DEVICE_MAX (over it:
 * rate_limited and nothing stored for anyone, or with `full` asked for the full device
 * skipped and counted; duplicates still fine), an unknown device
 * (not_found, nothing stored), deletion up to a seq, expiry (not pending after the TTL,
 * purged in batches by the cleanup op and by kw_cleanup_tick), argument bounds, the group
 * device lists of channels and meetings, and rows going with their device's user. Then
 * delivery on connect through the realtime module without sockets (rt_items.c): a backlog
 * larger than one pass and one outbound queue arrives whole, in order, in passes as the
 * queue drains, and a row is deleted only once its frame was queued.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "crypto.h"
#include "db.h"
#include "db_items.h"
#include "db_meetings.h"
#include "db_members.h"
#include "keywave/request_sign.h"
#include "kwtest.h"
#include "presence.h"
#include "rt.h"
#include "rt_items.h"
#include "server.h"

#define NOW 1763800000000LL

static char dir[256];
static kw_db *db;
static kw_db_enrollment alice, bob, bob2, carol;

#define IT (db->items)

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

static int enroll_new(const char *name, kw_db_enrollment *out)
{
    char uid[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    return db->members->user_add(db->ctx, name, NOW, uid, code, &err) == KW_OK &&
           db->members->enroll(db->ctx, code, "phone", NOW, out, &err) == KW_OK;
}

static int enroll_more(const char *name, kw_db_enrollment *out)
{
    char uid[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    return db->members->code_issue(db->ctx, name, NOW, uid, code, &err) == KW_OK &&
           db->members->enroll(db->ctx, code, "laptop", NOW, out, &err) == KW_OK;
}

static kw_db_device_ref ref(const kw_db_enrollment *e)
{
    kw_db_device_ref r;
    memset(&r, 0, sizeof r);
    snprintf(r.user_id, sizeof r.user_id, "%s", e->user_id);
    r.device_id = e->device_id;
    return r;
}

static size_t count_of(const kw_db_enrollment *e)
{
    size_t n = 0;
    kw_error err;
    KWT_ERR(IT->count(db->ctx, e->user_id, e->device_id, &n, &err), KW_OK);
    return n;
}

/* Stores item id for e from alice's device at now; returns the kw_err, *added rows. */
static kw_err put(const kw_db_enrollment *e, kw_item_kind kind, const char *id, const char *json,
                  int64_t now, size_t *added)
{
    kw_db_device_ref r = ref(e);
    kw_error err;
    return IT->store(db->ctx, &r, 1, alice.user_id, alice.device_id, kind, id, json, now, added,
                     NULL, &err);
}

/* Deletes everything bob holds. */
static void clear_bob(void)
{
    kw_error err;
    KWT_ERR(IT->delete_upto(db->ctx, bob.user_id, bob.device_id, INT64_MAX, &err), KW_OK);
}

/* ---- tests ------------------------------------------------------------------------- */

static void store_and_read_in_order(void)
{
    size_t added = 9;
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "m1", "{\"n\":1}", NOW, &added), KW_OK);
    KWT_EQ(added, 1u);
    KWT_ERR(put(&bob, KW_ITEM_GROUP, "m2", "{\"n\":2}", NOW + 1, &added), KW_OK);
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "m3", "{\"n\":3}", NOW + 2, &added), KW_OK);
    kw_db_item *items = NULL;
    size_t n = 0;
    kw_error err;
    KWT_ERR(IT->pending(db->ctx, bob.user_id, bob.device_id, NOW + 3, 10, &items, &n, &err), KW_OK);
    KWT_EQ(n, 3u);
    if (n == 3) {
        KWT_STREQ(items[0].json, "{\"n\":1}");
        KWT_EQ(items[0].kind, KW_ITEM_DIRECT);
        KWT_STREQ(items[1].json, "{\"n\":2}");
        KWT_EQ(items[1].kind, KW_ITEM_GROUP);
        KWT_STREQ(items[2].json, "{\"n\":3}");
        KWT_CHECK(items[0].seq < items[1].seq && items[1].seq < items[2].seq);
        /* max limits the read; delete_upto the first two leaves the third. */
        kw_db_item *two = NULL;
        size_t n2 = 0;
        KWT_ERR(IT->pending(db->ctx, bob.user_id, bob.device_id, NOW + 3, 2, &two, &n2, &err),
                KW_OK);
        KWT_EQ(n2, 2u);
        kw_db_items_free(two, n2);
        KWT_ERR(IT->delete_upto(db->ctx, bob.user_id, bob.device_id, items[1].seq, &err), KW_OK);
        KWT_EQ(count_of(&bob), 1u);
    }
    kw_db_items_free(items, n);
    /* Other devices hold nothing: items are per device, not per user. */
    KWT_EQ(count_of(&bob2), 0u);
    KWT_ERR(IT->pending(db->ctx, bob2.user_id, bob2.device_id, NOW, 10, &items, &n, &err), KW_OK);
    KWT_EQ(n, 0u);
    KWT_CHECK(items == NULL);
    clear_bob();
    KWT_EQ(count_of(&bob), 0u);
}

static void idempotent_on_sender_kind_and_item_id(void)
{
    size_t added = 9;
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "same", "{\"v\":1}", NOW, &added), KW_OK);
    KWT_EQ(added, 1u);
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "same", "{\"v\":2}", NOW, &added), KW_OK);
    KWT_EQ(added, 0u);
    KWT_EQ(count_of(&bob), 1u);
    /* Another kind with the same id is another item. */
    KWT_ERR(put(&bob, KW_ITEM_GROUP, "same", "{\"v\":3}", NOW, &added), KW_OK);
    KWT_EQ(added, 1u);
    /* Another sender device with the same id too. */
    kw_db_device_ref r = ref(&bob);
    kw_error err;
    KWT_ERR(IT->store(db->ctx, &r, 1, carol.user_id, carol.device_id, KW_ITEM_DIRECT, "same",
                      "{\"v\":4}", NOW, &added, NULL, &err),
            KW_OK);
    KWT_EQ(added, 1u);
    KWT_EQ(count_of(&bob), 3u);
    /* The first copy is kept, not replaced. */
    kw_db_item *items = NULL;
    size_t n = 0;
    KWT_ERR(IT->pending(db->ctx, bob.user_id, bob.device_id, NOW, 10, &items, &n, &err), KW_OK);
    KWT_CHECK(n == 3 && strcmp(items[0].json, "{\"v\":1}") == 0);
    kw_db_items_free(items, n);
    clear_bob();
}

static void cap_per_device(void)
{
    char id[32];
    size_t added = 0;
    for (int i = 0; i < KW_ITEMS_PER_DEVICE_MAX; i++) {
        snprintf(id, sizeof id, "cap-%d", i);
        if (put(&bob, KW_ITEM_DIRECT, id, "{}", NOW, &added) != KW_OK || added != 1) {
            KWT_CHECK(!"store below the cap failed");
            break;
        }
    }
    KWT_EQ(count_of(&bob), (size_t)KW_ITEMS_PER_DEVICE_MAX);
    /* One more: rate_limited, nothing stored. */
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "one-more", "{}", NOW, &added), KW_ERR_RATE_LIMITED);
    KWT_EQ(count_of(&bob), (size_t)KW_ITEMS_PER_DEVICE_MAX);
    /* A duplicate of a stored one is still fine (idempotent, adds nothing). */
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "cap-0", "{}", NOW, &added), KW_OK);
    KWT_EQ(added, 0u);
    /* A group store where one device is full stores for no one (one transaction). */
    kw_db_device_ref two[2] = {ref(&bob2), ref(&bob)};
    kw_error err;
    KWT_ERR(IT->store(db->ctx, two, 2, alice.user_id, alice.device_id, KW_ITEM_GROUP, "g-full",
                      "{}", NOW, &added, NULL, &err),
            KW_ERR_RATE_LIMITED);
    KWT_EQ(count_of(&bob2), 0u);
    /* With full asked for, the full device is skipped and counted; the others get it. */
    size_t full = 9;
    KWT_ERR(IT->store(db->ctx, two, 2, alice.user_id, alice.device_id, KW_ITEM_GROUP, "g-skip",
                      "{}", NOW, &added, &full, &err),
            KW_OK);
    KWT_EQ(added, 1u);
    KWT_EQ(full, 1u);
    KWT_EQ(count_of(&bob2), 1u);
    KWT_EQ(count_of(&bob), (size_t)KW_ITEMS_PER_DEVICE_MAX);
    KWT_ERR(IT->delete_upto(db->ctx, bob2.user_id, bob2.device_id, INT64_MAX, &err), KW_OK);
    clear_bob();
}

static void unknown_device_and_bounds(void)
{
    kw_db_device_ref ghost = ref(&bob);
    ghost.device_id = 77;
    kw_db_device_ref mixed[2] = {ref(&bob2), ghost};
    size_t added = 9;
    kw_error err;
    KWT_ERR(IT->store(db->ctx, mixed, 2, alice.user_id, alice.device_id, KW_ITEM_GROUP, "g1", "{}",
                      NOW, &added, NULL, &err),
            KW_ERR_NOT_FOUND);
    KWT_EQ(count_of(&bob2), 0u); /* rolled back */
    char long_id[KW_ITEM_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, long_id, "{}", NOW, &added), KW_ERR_INVALID_ARGUMENT);
    long_id[KW_ITEM_ID_MAX] = '\0'; /* exactly the limit */
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, long_id, "{}", NOW, &added), KW_OK);
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "", "{}", NOW, &added), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(IT->store(db->ctx, mixed, KW_ITEMS_GROUP_MAX + 1, alice.user_id, alice.device_id,
                      KW_ITEM_GROUP, "g2", "{}", NOW, &added, NULL, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(IT->store(db->ctx, mixed, 1, alice.user_id, alice.device_id, (kw_item_kind)7, "g3",
                      "{}", NOW, &added, NULL, &err),
            KW_ERR_INVALID_ARGUMENT);
    /* n = 0 stores nothing and succeeds. */
    KWT_ERR(IT->store(db->ctx, NULL, 0, alice.user_id, alice.device_id, KW_ITEM_GROUP, "g4", "{}",
                      NOW, &added, NULL, &err),
            KW_OK);
    KWT_EQ(added, 0u);
    clear_bob();
}

static void expiry_and_purge(void)
{
    size_t added = 0, removed = 9;
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "old1", "{}", NOW, &added), KW_OK);
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "old2", "{}", NOW, &added), KW_OK);
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "old3", "{}", NOW, &added), KW_OK);
    KWT_ERR(put(&bob, KW_ITEM_DIRECT, "new", "{}", NOW + 1000, &added), KW_OK);
    kw_db_item *items = NULL;
    size_t n = 0;
    kw_error err;
    /* One ms before the TTL all four are pending; at the TTL the old ones are not. */
    KWT_ERR(IT->pending(db->ctx, bob.user_id, bob.device_id, NOW + KW_ITEMS_TTL_MS - 1, 10, &items,
                        &n, &err),
            KW_OK);
    KWT_EQ(n, 4u);
    kw_db_items_free(items, n);
    KWT_ERR(IT->pending(db->ctx, bob.user_id, bob.device_id, NOW + KW_ITEMS_TTL_MS, 10, &items, &n,
                        &err),
            KW_OK);
    KWT_EQ(n, 1u);
    kw_db_items_free(items, n);
    /* Purge in batches: 2, then 1, then none; the unexpired one stays. */
    KWT_ERR(IT->purge(db->ctx, NOW + KW_ITEMS_TTL_MS - 1, 10, &removed, &err), KW_OK);
    KWT_EQ(removed, 0u);
    KWT_ERR(IT->purge(db->ctx, NOW + KW_ITEMS_TTL_MS, 2, &removed, &err), KW_OK);
    KWT_EQ(removed, 2u);
    KWT_ERR(IT->purge(db->ctx, NOW + KW_ITEMS_TTL_MS, 2, &removed, &err), KW_OK);
    KWT_EQ(removed, 1u);
    KWT_EQ(count_of(&bob), 1u);
    /* The cleanup pass purges too (INV-10's timer, one call in cleanup.c). */
    kw_server srv;
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    KWT_ERR(kw_cleanup_tick(&srv, NOW + 1000 + KW_ITEMS_TTL_MS), KW_OK);
    KWT_EQ(count_of(&bob), 0u);
}

static void group_devices_of_channels_and_meetings(void)
{
    kw_error err;
    kw_db_channel ch;
    KWT_ERR(
        db->meetings->channel_create(db->ctx, alice.user_id, "general", "signal", NOW, &ch, &err),
        KW_OK);
    KWT_ERR(db->meetings->channel_member_add(db->ctx, ch.channel_id, bob.user_id, NOW, &err),
            KW_OK);
    kw_db_device_ref *devs = NULL;
    size_t n = 0;
    KWT_ERR(IT->group_devices(db->ctx, ch.channel_id, 0, &devs, &n, &err), KW_OK);
    /* alice's one device and bob's two; not carol's. */
    KWT_EQ(n, 3u);
    int bobs = 0, carols = 0;
    for (size_t i = 0; i < n; i++) {
        bobs += strcmp(devs[i].user_id, bob.user_id) == 0;
        carols += strcmp(devs[i].user_id, carol.user_id) == 0;
    }
    KWT_EQ(bobs, 2);
    KWT_EQ(carols, 0);
    free(devs);
    KWT_ERR(IT->group_devices(db->ctx, "chn_000000000000", 0, &devs, &n, &err), KW_OK);
    KWT_EQ(n, 0u);
    KWT_CHECK(devs == NULL);
    kw_db_meeting in, out;
    memset(&in, 0, sizeof in);
    snprintf(in.title, sizeof in.title, "sync");
    in.start_ms = NOW;
    in.end_ms = NOW + 3600000;
    snprintf(in.created_by, sizeof in.created_by, "%s", carol.user_id);
    KWT_ERR(db->meetings->meeting_create(db->ctx, &in, NOW, &out, &err), KW_OK);
    KWT_ERR(db->meetings->participant_add(db->ctx, out.meeting_id, alice.user_id,
                                          KW_MEETING_ROLE_MEMBER, NOW, &err),
            KW_OK);
    KWT_ERR(IT->group_devices(db->ctx, out.meeting_id, 1, &devs, &n, &err), KW_OK);
    KWT_EQ(n, 2u); /* carol's and alice's */
    free(devs);
}

static void reopen_keeps_items(void)
{
    size_t added = 0;
    KWT_ERR(put(&bob2, KW_ITEM_DIRECT, "durable", "{\"k\":true}", NOW, &added), KW_OK);
    kw_db_close(db);
    db = NULL;
    kw_error err;
    KWT_ERR(kw_db_open_sqlite(dir, &db, &err), KW_OK);
    if (db == NULL)
        return;
    KWT_EQ(count_of(&bob2), 1u);
    KWT_ERR(IT->delete_upto(db->ctx, bob2.user_id, bob2.device_id, INT64_MAX, &err), KW_OK);
}

/* ---- delivery through the realtime module ---------------------------------------------- */

static void on_wake(void *arg, void *handle)
{
    (void)arg;
    (void)handle;
}

/* Pops the next queued frame into out (cut to cap); 0 when none. */
static int pop(kw_rt *rt, kw_rt_conn *c, char *out, size_t cap)
{
    char *text;
    size_t len;
    int whole;
    if (!kw_rt_conn_peek(rt, c, &text, &len, &whole))
        return 0;
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(out, text, n);
    out[n] = '\0';
    kw_rt_conn_written(rt, c, len);
    return 1;
}

/* Opens c and sends a CONNECT to "/" signed for m; 1 when the socket connected. */
static int connect_device(kw_rt *rt, kw_rt_conn *c, const kw_db_enrollment *m, int n)
{
    char ts[24], nonce[40], sig[KW_REQUEST_SIGNATURE_CHARS + 1], frame[512], buf[128];
    int64_t next;
    memset(c, 0, sizeof *c);
    if (kw_rt_conn_open(rt, c, c, NOW, &next) != KW_OK || !pop(rt, c, buf, sizeof buf))
        return 0;
    snprintf(ts, sizeof ts, "%lld", (long long)NOW);
    snprintf(nonce, sizeof nonce, "items-nonce-%08d-abcdefgh", n);
    if (kw_request_sign(m->session_secret, m->client_id, ts, nonce, "GET", "/socket.io/auth", NULL,
                        0, sig) != KW_OK)
        return 0;
    snprintf(frame, sizeof frame,
             "40{\"client_id\":\"%s\",\"timestamp\":%s,\"nonce\":\"%s\",\"signature\":\"%s\"}",
             m->client_id, ts, nonce, sig);
    if (kw_rt_conn_receive(rt, c, frame, strlen(frame), 1, 1, 0, NOW) != KW_RT_CONTINUE)
        return 0;
    return pop(rt, c, buf, sizeof buf) && strncmp(buf, "40{\"sid\"", 8) == 0;
}

/* Stores n items for e, item i being {"n":i,"pad":"<pad bytes>"}. */
static int store_numbered(const kw_db_enrollment *e, int n, size_t pad)
{
    char *json = malloc(pad + 64);
    if (json == NULL)
        return 0;
    int ok = 1;
    for (int i = 0; ok && i < n; i++) {
        char id[32];
        int k = snprintf(json, 64, "{\"n\":%d,\"pad\":\"", i);
        memset(json + k, 'p', pad);
        memcpy(json + k + pad, "\"}", 3);
        snprintf(id, sizeof id, "num-%d", i);
        size_t added = 0;
        ok = put(e, KW_ITEM_DIRECT, id, json, NOW, &added) == KW_OK && added == 1;
    }
    free(json);
    return ok;
}

/* Reads every frame of c, draining passes; checks items arrive as 0..n-1. Returns count. */
static int read_all(kw_rt *rt, kw_rt_conn *c, int n)
{
    static char frame[80000];
    int next = 0;
    while (pop(rt, c, frame, sizeof frame)) {
        char want[48];
        snprintf(want, sizeof want, "42[\"receiveItem\",{\"n\":%d,", next);
        if (strncmp(frame, want, strlen(want)) != 0) {
            KWT_CHECK(!"an item arrived out of order");
            return next;
        }
        next++;
    }
    KWT_EQ(next, n);
    return next;
}

static void delivery_in_passes(void)
{
    kw_server srv;
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    kw_rt *rt = NULL;
    KWT_ERR(kw_presence_memory_new(&srv.presence), KW_OK);
    KWT_ERR(kw_rt_new(&srv, 16, on_wake, NULL, &rt), KW_OK);
    if (rt == NULL || srv.presence == NULL)
        return;
    static kw_rt_conn c;
    /* Small items: more than one pass (KW_RT_ITEMS_DELIVER_BATCH) but one queue's room. */
    KWT_CHECK(store_numbered(&bob2, 150, 10));
    KWT_CHECK(connect_device(rt, &c, &bob2, 1));
    KWT_EQ(c.q_frames, (uint32_t)KW_RT_ITEMS_DELIVER_BATCH); /* the first pass is queued */
    KWT_EQ(count_of(&bob2), (size_t)(150 - KW_RT_ITEMS_DELIVER_BATCH)); /* and deleted */
    KWT_EQ(c.member.items_pending, 1);
    read_all(rt, &c, 150); /* each drained queue brings the next pass */
    KWT_EQ(count_of(&bob2), 0u);
    KWT_EQ(c.member.items_pending, 0);
    kw_rt_conn_closed(rt, &c, NOW);
    /* Large items: the outbound queue (KW_RT_QUEUE_BYTES) stops a pass early. */
    KWT_CHECK(store_numbered(&bob2, 40, 60000));
    KWT_CHECK(connect_device(rt, &c, &bob2, 2));
    uint32_t queued = c.q_frames;
    KWT_CHECK(queued > 0 && queued < 40);
    KWT_CHECK(c.q_bytes <= KW_RT_QUEUE_BYTES);
    KWT_EQ(count_of(&bob2), (size_t)(40 - queued)); /* only queued rows are deleted */
    KWT_EQ(c.member.items_pending, 1);
    read_all(rt, &c, 40);
    KWT_EQ(count_of(&bob2), 0u);
    kw_rt_conn_closed(rt, &c, NOW);
    /* A closed connection with a backlog: what was not queued stays stored. */
    KWT_CHECK(store_numbered(&bob2, 100, 10));
    KWT_CHECK(connect_device(rt, &c, &bob2, 3));
    kw_rt_conn_closed(rt, &c, NOW);
    KWT_EQ(count_of(&bob2), (size_t)(100 - KW_RT_ITEMS_DELIVER_BATCH));
    KWT_ERR(IT->delete_upto(db->ctx, bob2.user_id, bob2.device_id, INT64_MAX, NULL), KW_OK);
    kw_rt_free(rt);
    kw_presence_free(srv.presence);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/keywave-test-items-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        kwt_cases_failed++;
        return kwt_finish();
    }
    kw_error err;
    if (kw_crypto_init() != KW_OK || kw_db_open_sqlite(dir, &db, &err) != KW_OK ||
        db->items == NULL || !enroll_new("alice", &alice) || !enroll_new("bob", &bob) ||
        !enroll_more("bob", &bob2) || !enroll_new("carol", &carol)) {
        printf("FAIL setup\n");
        kwt_cases_failed++;
        kw_db_close(db);
        remove_dir(dir);
        return kwt_finish();
    }
    KWT_RUN(store_and_read_in_order);
    KWT_RUN(idempotent_on_sender_kind_and_item_id);
    KWT_RUN(cap_per_device);
    KWT_RUN(unknown_device_and_bounds);
    KWT_RUN(expiry_and_purge);
    KWT_RUN(group_devices_of_channels_and_meetings);
    KWT_RUN(reopen_keeps_items);
    KWT_RUN(delivery_in_passes);
    kw_db_close(db);
    remove_dir(dir);
    return kwt_finish();
}
