/*
 * test_srv_rt.c — the realtime module (server/rt.h) without sockets: connections are
 * kw_rt_conn blocks fed with WebSocket message bytes and a controlled clock, and their
 * queued frames are read back as the adapter would write them. A real SQLite store in a
 * temporary directory and the memory presence stand behind it, so CONNECT auth and the
 * video events run for real.
 *
 * Covered: the upgrade check and polling's 400; the open packet; the heartbeat (ping due
 * at exactly pingInterval, pong on time at exactly pingTimeout, late by 1 ms closes) and
 * the connect timeout; CONNECT to an unknown namespace, without auth, with a signed auth;
 * protocol errors and their close codes; reassembly of fragments and the maxPayload
 * boundary; the outbound queue limit (rate_limited, nothing changed, rx paused); rooms
 * and their per-socket limit; the socket index under many connects and disconnects;
 * video register/leave/disconnect notices between two connections.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "db.h"
#include "db_meetings.h"
#include "db_members.h"
#include "keywave/request_sign.h"
#include "kwtest.h"
#include "presence.h"
#include "rt.h"
#include "server.h"

#define NOW      1763800000000LL
#define HEADROOM 16

static char dir[256];
static kw_db *db;
static kw_server srv;
static kw_rt *rt;
static int wakes;
static kw_db_enrollment alice, bob;
static char channel_id[KW_DB_ID_MAX + 1];

static void on_wake(void *arg, void *handle)
{
    (void)arg;
    (void)handle;
    wakes++;
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* Pops the next queued frame into out (NUL-terminated, cut to cap); 0 when none. */
static int pop(kw_rt_conn *c, char *out, size_t cap)
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

/* Pops frames until one starts with prefix; 1 if found (copied to out). */
static int pop_until(kw_rt_conn *c, const char *prefix, char *out, size_t cap)
{
    while (pop(c, out, cap))
        if (strncmp(out, prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static void drain(kw_rt_conn *c)
{
    char buf[64];
    while (pop(c, buf, sizeof buf))
        ;
}

static kw_rt_verdict send_text(kw_rt_conn *c, const char *text, int64_t now)
{
    return kw_rt_conn_receive(rt, c, text, strlen(text), 1, 1, 0, now);
}

static void open_conn(kw_rt_conn *c, int64_t now)
{
    memset(c, 0, sizeof *c);
    int64_t next;
    KWT_ERR(kw_rt_conn_open(rt, c, c, now, &next), KW_OK);
    drain(c);
}

/* Sends CONNECT to "/" signed for m at now (a fresh nonce each call). */
static kw_rt_verdict connect_member(kw_rt_conn *c, const kw_db_enrollment *m, int64_t now)
{
    static unsigned counter;
    char ts[24], nonce[40], sig[KW_REQUEST_SIGNATURE_CHARS + 1], frame[512];
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    snprintf(nonce, sizeof nonce, "nonce-%08u-abcdefgh", counter++);
    if (kw_request_sign(m->session_secret, m->client_id, ts, nonce, "GET", "/socket.io/auth", NULL,
                        0, sig) != KW_OK)
        return KW_RT_CLOSE;
    snprintf(frame, sizeof frame,
             "40{\"client_id\":\"%s\",\"timestamp\":%s,\"nonce\":\"%s\",\"signature\":\"%s\"}",
             m->client_id, ts, nonce, sig);
    return send_text(c, frame, now);
}

static void open_member(kw_rt_conn *c, const kw_db_enrollment *m)
{
    open_conn(c, NOW);
    KWT_EQ(connect_member(c, m, NOW), KW_RT_CONTINUE);
    char buf[256];
    KWT_CHECK(pop(c, buf, sizeof buf) && strncmp(buf, "40{\"sid\":\"s", 11) == 0);
    KWT_CHECK(c->member.socket_id != 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void upgrade_and_polling(void)
{
    static const struct {
        const char *path, *query;
        kw_err want;
    } cases[] = {
        {"/socket.io/", "EIO=4&transport=websocket", KW_OK},
        {"/socket.io/", "EIO=4&transport=websocket&t=abc", KW_OK},
        {"/socket.io/", "EIO=4&transport=polling", KW_ERR_INVALID_ARGUMENT},
        {"/socket.io/", "EIO=3&transport=websocket", KW_ERR_INVALID_ARGUMENT},
        {"/socket.io/", "", KW_ERR_INVALID_ARGUMENT},
        {"/socket.io", "EIO=4&transport=websocket", KW_ERR_INVALID_ARGUMENT},
        {"/other/", "EIO=4&transport=websocket", KW_ERR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_error err;
        KWT_ERR(kw_rt_check_upgrade(cases[i].path, cases[i].query, &err), cases[i].want);
    }
    kw_request req;
    memset(&req, 0, sizeof req);
    req.path = "/socket.io/";
    req.query = "EIO=4&transport=polling&t=x";
    kw_response res;
    kw_response_init(&res);
    KWT_EQ(kw_rt_http(&req, &res), 1);
    KWT_EQ(res.status, 400u);
    KWT_CHECK(res.body != NULL && strstr(res.body, "polling transport is not supported") != NULL);
    kw_response_free(&res);
    kw_response_init(&res);
    req.query = "EIO=4&transport=websocket";
    KWT_EQ(kw_rt_http(&req, &res), 1);
    KWT_EQ(res.status, 400u);
    KWT_CHECK(res.body != NULL && strstr(res.body, "WebSocket upgrade") != NULL);
    kw_response_free(&res);
    req.path = "/healthz";
    KWT_EQ(kw_rt_http(&req, &res), 0);
}

static void open_packet_and_heartbeat(void)
{
    kw_rt_conn c;
    memset(&c, 0, sizeof c);
    int64_t next;
    int before = wakes;
    KWT_ERR(kw_rt_conn_open(rt, &c, &c, NOW, &next), KW_OK);
    KWT_EQ(wakes, before + 1);
    KWT_EQ(next, NOW + 25000);
    char buf[256];
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_CHECK(strncmp(buf, "0{\"sid\":\"", 9) == 0);
    KWT_CHECK(strstr(buf, "\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
                          "\"maxPayload\":1000000}") != NULL);
    KWT_EQ(connect_member(&c, &alice, NOW + 1000), KW_RT_CONTINUE);
    drain(&c);
    /* Ping due at exactly pingInterval, not a millisecond before. */
    KWT_EQ(kw_rt_conn_tick(rt, &c, NOW + 24999, &next), KW_RT_CONTINUE);
    KWT_EQ(pop(&c, buf, sizeof buf), 0);
    KWT_EQ(kw_rt_conn_tick(rt, &c, NOW + 25000, &next), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf) && strcmp(buf, "2") == 0);
    /* A pong at exactly pingTimeout is on time. */
    KWT_EQ(send_text(&c, "3", NOW + 45000), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_tick(rt, &c, NOW + 50000, &next), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf) && strcmp(buf, "2") == 0);
    /* No pong: 1 ms past pingTimeout closes. */
    KWT_EQ(kw_rt_conn_tick(rt, &c, NOW + 70000, &next), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_tick(rt, &c, NOW + 70001, &next), KW_RT_CLOSE);
    KWT_EQ(kw_rt_conn_close_code(&c), 1008u);
    kw_rt_conn_closed(rt, &c, NOW + 70001);
}

static void connect_timeout(void)
{
    /* Engine.IO time never goes back (rt.c): start after the previous test's clock. */
    const int64_t T = NOW + 100000;
    kw_rt_conn c;
    open_conn(&c, T);
    int64_t next;
    char buf[64];
    /* Pings keep going while no namespace is connected; the connect timeout still ends it. */
    KWT_EQ(kw_rt_conn_tick(rt, &c, T + 25000, &next), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf) && strcmp(buf, "2") == 0);
    KWT_EQ(send_text(&c, "3", T + 25001), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_tick(rt, &c, T + 45000, &next), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_tick(rt, &c, T + 45001, &next), KW_RT_CLOSE);
    kw_rt_conn_closed(rt, &c, T + 45001);
}

static void connect_errors(void)
{
    kw_rt_conn c;
    char buf[256];
    open_conn(&c, NOW);
    KWT_EQ(send_text(&c, "40/nope,{}", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "44/nope,{\"message\":\"Invalid namespace\"}");
    KWT_EQ(kw_rt_conn_close_code(&c), 0u); /* the connection stays */
    KWT_EQ(send_text(&c, "40", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "44{\"message\":\"missing_auth_headers\"}");
    KWT_EQ(kw_rt_conn_close_code(&c), 1008u); /* closes once that is written */
    kw_rt_conn_closed(rt, &c, NOW);

    open_conn(&c, NOW);
    KWT_EQ(send_text(&c, "40/external,{\"session_id\":\"x\",\"guest_secret\":\"y\"}", NOW),
           KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "44/external,{\"message\":\"unauthorized\"}");
    kw_rt_conn_closed(rt, &c, NOW);

    /* A bad CONNECT on a second namespace keeps the connection of the first. */
    open_member(&c, &alice);
    KWT_EQ(send_text(&c, "40/external,{}", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "44/external,{\"message\":\"unauthorized\"}");
    KWT_EQ(kw_rt_conn_close_code(&c), 0u);
    /* Events before CONNECT on a namespace are ignored; on a connected one they are acked. */
    KWT_EQ(send_text(&c, "42/external,1[\"guest:signal_message\",{}]", NOW), KW_RT_CONTINUE);
    KWT_EQ(pop(&c, buf, sizeof buf), 0);
    KWT_EQ(send_text(&c, "427[\"no:such\",{}]", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "437[{\"error\":\"not_found\"}]");
    KWT_EQ(send_text(&c, "428[\"guest:signal_message\",{}]", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "438[{\"error\":\"forbidden\"}]");
    KWT_EQ(send_text(&c, "429[\"sendItem\",{}]", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "439[{\"error\":\"invalid_payload\"}]"); /* built: rt_items.c */
    /* An event without an ack id gets no answer. */
    KWT_EQ(send_text(&c, "42[\"no:such\",{}]", NOW), KW_RT_CONTINUE);
    KWT_EQ(pop(&c, buf, sizeof buf), 0);
    /* A second CONNECT to the same namespace is refused; the first stays. */
    uint64_t id = c.member.socket_id;
    KWT_EQ(connect_member(&c, &alice, NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "44{\"message\":\"invalid_state\"}");
    KWT_EQ(c.member.socket_id, id);
    /* DISCONNECT of "/" leaves the connection open with no socket. */
    KWT_EQ(send_text(&c, "41", NOW), KW_RT_CONTINUE);
    KWT_EQ(c.member.socket_id, 0u);
    KWT_CHECK(kw_rt_find(rt, id, NULL) == NULL);
    kw_rt_conn_closed(rt, &c, NOW);
}

static void protocol_errors(void)
{
    static const struct {
        const char *text;
        int binary;
        unsigned code;
    } cases[] = {
        {"42[\"x\"]", 1, 1003}, /* binary frames: JSON text only */
        {"9", 0, 1002},         /* unknown Engine.IO type */
        {"5", 0, 1002},         /* upgrade */
        {"0{}", 0, 1002},       /* open from a client */
        {"4x", 0, 1002},        /* not a Socket.IO packet */
        {"42{\"a\":1}", 0, 1002},
        {"45[\"x\"]", 0, 1002}, /* binary event */
        {"44{\"message\":\"x\"}", 0, 1002},
        {"1", 0, 1000}, /* client close */
        {"3", 0, 1008}, /* pong with no ping out */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_rt_conn c;
        open_conn(&c, NOW);
        kw_rt_verdict v = kw_rt_conn_receive(rt, &c, cases[i].text, strlen(cases[i].text), 1, 1,
                                             cases[i].binary, NOW);
        if (!KWT_CHECK(v == KW_RT_CLOSE && kw_rt_conn_close_code(&c) == cases[i].code))
            printf("    case %zu: %s -> %u\n", i, cases[i].text, kw_rt_conn_close_code(&c));
        kw_rt_conn_closed(rt, &c, NOW);
    }
    /* Noop is ignored; a client ping gets a pong with its data. */
    kw_rt_conn c;
    char buf[64];
    open_conn(&c, NOW);
    KWT_EQ(send_text(&c, "6", NOW), KW_RT_CONTINUE);
    KWT_EQ(send_text(&c, "2probe", NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "3probe");
    kw_rt_conn_closed(rt, &c, NOW);
}

static void fragments_and_max_payload(void)
{
    kw_rt_conn c;
    char buf[256];
    open_member(&c, &alice);
    const char *parts[] = {"421[\"video:check-", "participants\",{\"chann", "elId\":5}]"};
    KWT_EQ(kw_rt_conn_receive(rt, &c, parts[0], strlen(parts[0]), 1, 0, 0, NOW), KW_RT_CONTINUE);
    KWT_CHECK(c.rx != NULL); /* allocated only while a message is in pieces */
    KWT_EQ(kw_rt_conn_receive(rt, &c, parts[1], strlen(parts[1]), 0, 0, 0, NOW), KW_RT_CONTINUE);
    KWT_EQ(pop(&c, buf, sizeof buf), 0);
    KWT_EQ(kw_rt_conn_receive(rt, &c, parts[2], strlen(parts[2]), 0, 1, 0, NOW), KW_RT_CONTINUE);
    KWT_CHECK(c.rx == NULL);
    KWT_CHECK(pop(&c, buf, sizeof buf));
    KWT_STREQ(buf, "431[{\"error\":\"invalid_payload\"}]");

    /* Exactly maxPayload bytes are read (and refused by the codec as a packet, not as
     * too large); one more byte closes with 1009. */
    size_t max = KW_EIO_MAX_PAYLOAD;
    char *big = malloc(max + 1);
    KWT_CHECK(big != NULL);
    if (big == NULL)
        return;
    memset(big, ' ', max + 1);
    memcpy(big, "42[\"x\",\"", 8);
    big[max - 2] = '"';
    big[max - 1] = ']';
    KWT_EQ(kw_rt_conn_receive(rt, &c, big, max / 2, 1, 0, 0, NOW), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_receive(rt, &c, big + max / 2, max - max / 2, 0, 1, 0, NOW), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_close_code(&c), 0u);
    KWT_EQ(kw_rt_conn_receive(rt, &c, big, max / 2, 1, 0, 0, NOW), KW_RT_CONTINUE);
    KWT_EQ(kw_rt_conn_receive(rt, &c, big + max / 2, max + 1 - max / 2, 0, 1, 0, NOW), KW_RT_CLOSE);
    KWT_EQ(kw_rt_conn_close_code(&c), 1009u);
    /* Unfragmented, the codec refuses it the same way. */
    kw_rt_conn d;
    open_conn(&d, NOW);
    KWT_EQ(kw_rt_conn_receive(rt, &d, big, max + 1, 1, 1, 0, NOW), KW_RT_CLOSE);
    KWT_EQ(kw_rt_conn_close_code(&d), 1009u);
    free(big);
    kw_rt_conn_closed(rt, &c, NOW);
    kw_rt_conn_closed(rt, &d, NOW);
}

static void video_between_two_connections(void)
{
    kw_rt_conn a, b;
    char buf[512], frame[256];
    open_member(&a, &alice);
    open_member(&b, &bob);
    snprintf(frame, sizeof frame, "421[\"video:register-participant\",{\"channelId\":\"%s\"}]",
             channel_id);
    KWT_EQ(send_text(&a, frame, NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&a, buf, sizeof buf) && strncmp(buf, "431[{\"ok\":true", 14) == 0);
    KWT_EQ(send_text(&b, frame, NOW + 5), KW_RT_CONTINUE);
    drain(&b);
    KWT_CHECK(pop_until(&a, "42[\"video:participant-joined\"", buf, sizeof buf));
    KWT_CHECK(strstr(buf, bob.user_id) != NULL &&
              strstr(buf, "\"joinedAt\":1763800000005") != NULL);

    /* A recipient whose queue is full: the event fails as a whole and changes nothing. */
    kw_rt_batch one = {0};
    KWT_ERR(kw_rt_batch_add(&one, a.member.socket_id), KW_OK);
    for (int i = 0; i < KW_RT_QUEUE_FRAMES; i++)
        kw_rt_batch_send(rt, &one, "2", 1);
    KWT_CHECK(kw_rt_conn_rx_paused(&a));
    kw_error err;
    KWT_ERR(kw_rt_batch_check(rt, &one, 1, &err), KW_ERR_RATE_LIMITED);
    snprintf(frame, sizeof frame, "422[\"video:leave-channel\",{\"channelId\":\"%s\"}]",
             channel_id);
    KWT_EQ(send_text(&b, frame, NOW), KW_RT_CONTINUE);
    KWT_CHECK(pop(&b, buf, sizeof buf));
    KWT_STREQ(buf, "432[{\"error\":\"rate_limited\"}]");
    KWT_EQ(srv.presence->ops->device_present(srv.presence->ctx, channel_id, bob.user_id, "1"), 1);
    drain(&a);
    KWT_CHECK(!kw_rt_conn_rx_paused(&a));
    KWT_ERR(kw_rt_batch_check(rt, &one, 1, &err), KW_OK);
    kw_rt_batch_free(&one);

    /* Bob's connection goes away without leaving: alice is told. */
    kw_rt_conn_closed(rt, &b, NOW + 10);
    KWT_EQ(srv.presence->ops->device_present(srv.presence->ctx, channel_id, bob.user_id, "1"), 0);
    KWT_CHECK(pop_until(&a, "42[\"video:participant-left\"", buf, sizeof buf));
    KWT_CHECK(strstr(buf, bob.user_id) != NULL);
    kw_rt_conn_closed(rt, &a, NOW + 10);
    KWT_EQ(srv.presence->ops->video_list(srv.presence->ctx, channel_id, NULL, 0), 0u);
}

static void rooms_limit(void)
{
    kw_rt_conn c;
    open_member(&c, &alice);
    kw_error err;
    char name[32];
    for (int i = 0; i < KW_RT_ROOMS_PER_SOCKET; i++) {
        snprintf(name, sizeof name, "m:room%d", i);
        KWT_ERR(kw_rt_member_join(rt, &c, name, &err), KW_OK);
    }
    KWT_ERR(kw_rt_member_join(rt, &c, "m:room0", &err), KW_OK); /* already in: no change */
    KWT_ERR(kw_rt_member_join(rt, &c, "m:one-too-many", &err), KW_ERR_RATE_LIMITED);
    kw_rt_batch b = {0};
    KWT_ERR(kw_rt_room_collect(rt, "m:room3", &b), KW_OK);
    KWT_CHECK(b.n == 1 && b.ids[0] == c.member.socket_id);
    kw_rt_batch_free(&b);
    KWT_ERR(kw_rt_member_leave(rt, &c, "m:room3", &err), KW_OK);
    KWT_ERR(kw_rt_member_leave(rt, &c, "m:room3", &err), KW_ERR_NOT_FOUND);
    KWT_ERR(kw_rt_room_collect(rt, "m:room3", &b), KW_OK);
    KWT_EQ(b.n, 0u); /* an empty room is gone */
    kw_rt_batch_free(&b);
    kw_rt_conn_closed(rt, &c, NOW);
    KWT_ERR(kw_rt_room_collect(rt, "m:room0", &b), KW_OK);
    KWT_EQ(b.n, 0u); /* closing left every room */
    kw_rt_batch_free(&b);
}

static void socket_index_many(void)
{
    enum { N = 300 };
    kw_rt_conn *c = calloc(N, sizeof *c);
    KWT_CHECK(c != NULL);
    if (c == NULL)
        return;
    for (int i = 0; i < N; i++)
        open_member(&c[i], i % 2 ? &alice : &bob);
    KWT_EQ(kw_rt_connections(rt), (size_t)N);
    /* Close every third, in an order that exercises the index's deletions. */
    for (int i = N - 1; i >= 0; i -= 3)
        kw_rt_conn_closed(rt, &c[i], NOW);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        int closed = (N - 1 - i) % 3 == 0;
        kw_rt_nsp nsp;
        kw_rt_conn *found = kw_rt_find(rt, c[i].member.socket_id, &nsp);
        if (closed ? found != NULL : (found != &c[i] || nsp != KW_RT_NSP_MEMBER))
            ok = 0;
    }
    KWT_CHECK(ok);
    for (int i = 0; i < N; i++)
        kw_rt_conn_closed(rt, &c[i], NOW);
    KWT_EQ(kw_rt_connections(rt), 0u);
    free(c);
}

static void error_tokens(void)
{
    KWT_STREQ(kw_rt_error_token(KW_ERR_INVALID_ARGUMENT), "invalid_payload");
    KWT_STREQ(kw_rt_error_token(KW_ERR_UNKNOWN_FIELD), "invalid_payload");
    KWT_STREQ(kw_rt_error_token(KW_ERR_FORBIDDEN), "forbidden");
    KWT_STREQ(kw_rt_error_token(KW_ERR_NOT_FOUND), "not_found");
    KWT_STREQ(kw_rt_error_token(KW_ERR_RATE_LIMITED), "rate_limited");
    KWT_STREQ(kw_rt_error_token(KW_ERR_NOT_PRESENT), "recipient_offline");
}

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

static int enroll(const char *name, kw_db_enrollment *out)
{
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    return db->members->user_add(db->ctx, name, NOW, user_id, code, &err) == KW_OK &&
           db->members->enroll(db->ctx, code, "phone", NOW, out, &err) == KW_OK;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/keywave-test-rt-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    kw_error err;
    memset(&err, 0, sizeof err);
    kw_db_channel ch;
    if (kw_crypto_init() != KW_OK || kw_db_open_sqlite(dir, &db, &err) != KW_OK) {
        printf("FAIL cannot open the store: %s\n", err.detail);
        return 1;
    }
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    if (kw_presence_memory_new(&srv.presence) != KW_OK ||
        kw_rt_new(&srv, HEADROOM, on_wake, NULL, &rt) != KW_OK || !enroll("alice", &alice) ||
        !enroll("bob", &bob) ||
        db->meetings->channel_create(db->ctx, alice.user_id, "room", "webrtc", NOW, &ch, &err) !=
            KW_OK ||
        db->meetings->channel_member_add(db->ctx, ch.channel_id, bob.user_id, NOW, &err) != KW_OK) {
        printf("FAIL fixtures: %s\n", err.detail);
        return 1;
    }
    snprintf(channel_id, sizeof channel_id, "%s", ch.channel_id);
    KWT_RUN(upgrade_and_polling);
    KWT_RUN(open_packet_and_heartbeat);
    KWT_RUN(connect_timeout);
    KWT_RUN(connect_errors);
    KWT_RUN(protocol_errors);
    KWT_RUN(fragments_and_max_payload);
    KWT_RUN(video_between_two_connections);
    KWT_RUN(rooms_limit);
    KWT_RUN(socket_index_many);
    KWT_RUN(error_tokens);
    kw_rt_free(rt);
    kw_presence_free(srv.presence);
    kw_db_close(db);
    remove_dir(dir);
    kw_wipe(&alice, sizeof alice);
    kw_wipe(&bob, sizeof bob);
    return kwt_finish();
}
