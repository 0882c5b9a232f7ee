/*
 * test_srv_presence.c — the in-memory presence: registration order, several sockets per
 * device, a disconnect removing only its own socket, empty channels forgotten, growth.
 */
#include <stdio.h>
#include <string.h>

#include "kwtest.h"
#include "presence.h"

static kw_presence *p;

#define REG(ch, sock, user, dev, t) p->ops->video_register(p->ctx, ch, sock, user, dev, t)

static void test_register_list_oldest_first(void)
{
    KWT_ERR(REG("mtg_a", 1, "alice", "1", 100), KW_OK);
    KWT_ERR(REG("mtg_a", 2, "bob", "1", 200), KW_OK);
    KWT_ERR(REG("mtg_a", 1, "alice", "1", 900), KW_OK); /* idempotent: keeps joined 100 */
    kw_video_participant out[4];
    KWT_EQ(p->ops->video_list(p->ctx, "mtg_a", out, 4), 2);
    KWT_STREQ(out[0].user_id, "alice");
    KWT_EQ(out[0].joined_ms, 100);
    KWT_STREQ(out[1].user_id, "bob");
    KWT_EQ(p->ops->video_list(p->ctx, "mtg_a", out, 1), 2); /* total, even when cut */
    KWT_EQ(p->ops->video_list(p->ctx, "nope", out, 4), 0);
    KWT_CHECK(p->ops->device_present(p->ctx, "mtg_a", "alice", "1"));
    KWT_CHECK(!p->ops->device_present(p->ctx, "mtg_a", "alice", "2"));
    KWT_CHECK(!p->ops->device_present(p->ctx, "mtg_b", "alice", "1"));
    KWT_ERR(p->ops->video_confirm_key(p->ctx, "mtg_a", 2), KW_OK);
    KWT_ERR(p->ops->video_confirm_key(p->ctx, "mtg_a", 3), KW_ERR_NOT_FOUND);
    p->ops->video_list(p->ctx, "mtg_a", out, 4);
    KWT_CHECK(!out[0].has_e2ee_key && out[1].has_e2ee_key);
    KWT_ERR(p->ops->video_leave(p->ctx, "mtg_a", 1), KW_OK);
    KWT_ERR(p->ops->video_leave(p->ctx, "mtg_a", 1), KW_ERR_NOT_FOUND);
    KWT_ERR(p->ops->video_leave(p->ctx, "mtg_a", 2), KW_OK);
    KWT_EQ(p->ops->video_list(p->ctx, "mtg_a", out, 4), 0); /* empty: forgotten */
}

static int left_count;
static void on_left(void *arg, const char *channel_id, const kw_video_participant *part)
{
    (void)arg;
    (void)channel_id;
    KWT_EQ(part->socket_id, 7);
    left_count++;
}

static void test_disconnect_removes_only_its_socket(void)
{
    KWT_ERR(REG("mtg_x", 7, "alice", "1", 1), KW_OK); /* two sockets of one device */
    KWT_ERR(REG("mtg_x", 8, "alice", "1", 2), KW_OK);
    KWT_ERR(REG("mtg_y", 7, "alice", "1", 3), KW_OK);
    left_count = 0;
    p->ops->video_leave_all(p->ctx, 7, on_left, NULL);
    KWT_EQ(left_count, 2);
    KWT_CHECK(p->ops->device_present(p->ctx, "mtg_x", "alice", "1")); /* socket 8 remains */
    kw_video_participant out[2];
    KWT_EQ(p->ops->video_list(p->ctx, "mtg_y", out, 2), 0);
    p->ops->video_leave_all(p->ctx, 8, NULL, NULL);
    KWT_CHECK(!p->ops->device_present(p->ctx, "mtg_x", "alice", "1"));
}

static void test_bad_ids(void)
{
    char long_id[KW_PRESENCE_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    KWT_ERR(REG("", 1, "a", "1", 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(REG(long_id, 1, "a", "1", 0), KW_ERR_INVALID_ARGUMENT);
    long_id[KW_PRESENCE_ID_MAX] = '\0'; /* exactly the maximum is fine */
    KWT_ERR(REG(long_id, 1, "a", "1", 0), KW_OK);
    KWT_ERR(p->ops->video_leave(p->ctx, long_id, 1), KW_OK);
    KWT_ERR(REG("c", 1, "", "1", 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(REG("c", 1, "a", NULL, 0), KW_ERR_INVALID_ARGUMENT);
}

static void test_many_channels_grow(void)
{
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "ch%d", i);
        KWT_ERR(REG(id, (uint64_t)i, "u", "1", i), KW_OK);
    }
    int all = 1;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "ch%d", i);
        all &= p->ops->device_present(p->ctx, id, "u", "1");
    }
    KWT_CHECK(all);
    for (int i = 0; i < 5000; i++)
        p->ops->video_leave_all(p->ctx, (uint64_t)i, NULL, NULL);
    KWT_CHECK(!p->ops->device_present(p->ctx, "ch42", "u", "1"));
}

/* The relay's lookup: a device's sockets in one channel, oldest first, nothing else's. */
static void test_device_sockets(void)
{
    uint64_t ids[4];
    for (uint64_t s = 1; s <= 12; s++) /* alice:1 on sockets 1,4,7,10; others between */
        KWT_ERR(
            REG("mtg_d", 100 + s, s % 3 == 1 ? "alice" : "bob", s % 3 == 2 ? "2" : "1", (int64_t)s),
            KW_OK);
    KWT_ERR(REG("mtg_e", 999, "alice", "1", 5), KW_OK);
    size_t n = p->ops->device_sockets(p->ctx, "mtg_d", "alice", "1", ids, 4);
    KWT_EQ(n, 4);
    KWT_CHECK(ids[0] == 101 && ids[1] == 104 && ids[2] == 107 && ids[3] == 110);
    KWT_EQ(p->ops->device_sockets(p->ctx, "mtg_d", "alice", "1", ids, 2), 4); /* total */
    KWT_CHECK(ids[0] == 101 && ids[1] == 104);
    KWT_EQ(p->ops->device_sockets(p->ctx, "mtg_d", "bob", "2", ids, 4), 4);
    KWT_EQ(p->ops->device_sockets(p->ctx, "mtg_d", "alice", "2", ids, 4), 0);
    KWT_EQ(p->ops->device_sockets(p->ctx, "mtg_e", "alice", "1", ids, 4), 1);
    KWT_EQ(ids[0], 999u);
    KWT_EQ(p->ops->device_sockets(p->ctx, "nope", "alice", "1", ids, 4), 0);
    KWT_EQ(p->ops->device_sockets(p->ctx, "", "alice", "1", ids, 4), 0);
    KWT_EQ(p->ops->device_sockets(p->ctx, "mtg_d", NULL, "1", ids, 4), 0);
    for (uint64_t s = 1; s <= 12; s++)
        KWT_ERR(p->ops->video_leave(p->ctx, "mtg_d", 100 + s), KW_OK);
    KWT_ERR(p->ops->video_leave(p->ctx, "mtg_e", 999), KW_OK);
}

int main(void)
{
    if (kw_presence_memory_new(&p) != KW_OK)
        return 1;
    KWT_RUN(test_register_list_oldest_first);
    KWT_RUN(test_disconnect_removes_only_its_socket);
    KWT_RUN(test_bad_ids);
    KWT_RUN(test_many_channels_grow);
    KWT_RUN(test_device_sockets);
    kw_presence_free(p);
    return kwt_finish();
}
