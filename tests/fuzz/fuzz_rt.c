/*
 * fuzz_rt.c — libFuzzer target for the realtime layer (server/rt.h): Engine.IO framing,
 * namespaces and CONNECT auth, the event dispatcher and every event table (video,
 * items, relays), rooms, presence and the outbound queues, run against a real SQLite
 * store in a temporary directory and the memory presence, as test_srv_rt.c does.
 *
 * The store holds fixtures made once per process: members alice (owner) and bob of a
 * webrtc channel and of a meeting that allows guests, a waiting guest and an admitted
 * one. Each input gets a fresh kw_rt and up to four connections, and is read as records
 * separated by '\n'; the first byte of a record is the operation, the rest its body:
 *
 *   '0'-'3' text message body on connection N      '4'-'7' binary message on N-4
 *   'a'-'d' first fragment (not final) on N        'e'-'h' middle fragment on N
 *   'i'-'l' last fragment on N
 *   'm'-'p' CONNECT "/" signed as alice on N       'q'-'t' the same as bob
 *   'u'-'x' CONNECT "/external" as the waiting guest, 'I'-'L' as the admitted guest
 *   'A'-'D' the connection closes                  'E'-'H' its timer fires
 *   'T' the clock advances by body (decimal ms, at most 10 minutes), every timer fires
 *   'W' every queue is written out (a connection closing once written closes)
 *   'w' body[0] % 4 writes body[1] bytes of its head frame
 *   'y' body[0] % 4 is sent template body[1] % count (a well-formed event of every table,
 *       so the fuzzer reaches the handlers without a corpus: `make test` passes none)
 *   'Y' the same as 'y', body[2] times (full queues, a stored backlog sent in passes)
 *
 * In bodies, $C $M $S $s $U $V stand for the channel id, the meeting id, the waiting and
 * the admitted guest's session ids, alice's and bob's user ids (the store makes fresh ids
 * per process, so the seed corpus spells them this way), $n for a number counting up
 * (fresh item ids). A closed connection reopens on its next use. Signed CONNECTs use a
 * fresh nonce and the current clock, so they succeed. The adapter's rules are kept: no
 * reading while rx is paused, close on KW_RT_CLOSE. Items stored by an input are deleted
 * after it, so inputs do not depend on each other (nonces are unique and purged).
 *
 * Besides the sanitizers (and the leak check: everything is freed per input) it traps when
 * presence still lists a socket after every connection closed, when rt's count of open
 * connections or a queue's frame count disagrees with the connections, when a closed
 * connection keeps a buffer, or when a timer's next due time lies in the past.
 *
 * Build: make build/fuzz/fuzz_rt (clang -fsanitize=fuzzer, the lib and server sources
 * without http_lws.c). Run: build/fuzz/fuzz_rt -max_total_time=10 -max_len=4096 NEW_DIR
 * tests/fuzz/corpus_rt (libFuzzer adds inputs to the first directory; `make fuzz` does
 * this). FUZZ_RT_TRACE=1 build/fuzz/fuzz_rt FILE prints each step, verdict and frame.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "db.h"
#include "db_guests.h"
#include "db_items.h"
#include "db_meetings.h"
#include "db_members.h"
#include "keywave/identity.h"
#include "keywave/request_sign.h"
#include "keywave/store.h"
#include "log.h"
#include "presence.h"
#include "rate_limit.h"
#include "rt.h"
#include "server.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define NOW      1763800000000LL
#define HEADROOM 16
#define CONNS    4
#define MAX_STEP (10LL * 60 * 1000)

/* The server log would flood the fuzzer's output: its lines are formatted and dropped. */
void kw_log(kw_log_level level, const char *event, const char *fmt, ...)
{
    char line[KW_LOG_LINE_MAX];
    (void)level;
    (void)event;
    if (fmt == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
}

const char *kw_log_value(char *buf, size_t cap, const char *s)
{
    snprintf(buf, cap, "%s", s ? s : "");
    return buf;
}

/* ---- fixtures (once per process) --------------------------------------------------------- */

static char dir[64];
static kw_db *db;
static kw_server srv;
static kw_db_enrollment alice, bob;
static char channel_id[KW_DB_ID_MAX + 1], meeting_id[KW_DB_ID_MAX + 1];
static kw_db_guest_created waiting, admitted;
static unsigned nonce_counter;
static unsigned long inputs;
static int trace; /* FUZZ_RT_TRACE set: frames written are printed (to check seeds) */

static int enroll(const char *name, kw_db_enrollment *out)
{
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    return db->members->user_add(db->ctx, name, NOW, user_id, code, &err) == KW_OK &&
           db->members->enroll(db->ctx, code, "phone", NOW, out, &err) == KW_OK;
}

/* Registers a guest of the meeting with a real identity (the store verifies the bundle). */
static int guest(const char *token, const char *name, kw_db_guest_created *out)
{
    kw_store *store = NULL;
    kw_identity *id = NULL;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    static kw_db_prekey pre[KW_GUEST_PREKEYS_AT_REGISTRATION];
    kw_identity_config cfg = {KW_ROLE_GUEST, NULL, NULL, NULL, 0};
    for (uint32_t i = 0; i < KW_GUEST_PREKEYS_AT_REGISTRATION; i++) {
        pre[i].id = 100 + i;
        memset(pre[i].public_key, (int)(0x20 + i), KW_PUBKEY_BYTES);
        pre[i].public_key[0] = 0x05;
    }
    int ok = kw_store_mem_new(&store) == KW_OK;
    cfg.store = store;
    ok = ok && kw_identity_open(&cfg, &id, NULL) == KW_OK &&
         kw_keys_setup(id, NOW, NULL, NULL, NULL, NULL) == KW_OK &&
         kw_keys_identity(id, &pub, NULL) == KW_OK &&
         kw_keys_signed_pre_key(id, &spk, NULL) == KW_OK;
    if (ok) {
        kw_db_guest_registration r;
        memset(&r, 0, sizeof r);
        r.invitation_token = token;
        r.display_name = name;
        memcpy(r.identity_key, pub.identity_key, KW_PUBKEY_BYTES);
        r.registration_id = pub.registration_id;
        r.signed_pre_key_id = spk.id;
        memcpy(r.signed_pre_key, spk.public_key, KW_PUBKEY_BYTES);
        memcpy(r.signed_pre_key_signature, spk.signature, KW_SIGNATURE_BYTES);
        r.pre_keys = pre;
        r.n_pre_keys = KW_GUEST_PREKEYS_AT_REGISTRATION;
        kw_error err;
        ok = db->guests->register_guest(db->ctx, &r, NOW, out, &err) == KW_OK;
    }
    kw_identity_free(id);
    kw_store_free(store);
    return ok;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void at_exit(void)
{
    kw_rate_limit_free(srv.bundle_limit);
    kw_presence_free(srv.presence);
    kw_db_close(db);
    remove_dir();
    kw_wipe(&alice, sizeof alice);
    kw_wipe(&bob, sizeof bob);
    kw_wipe(&waiting, sizeof waiting);
    kw_wipe(&admitted, sizeof admitted);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/keywave-fuzz-rt-XXXXXX");
    kw_error err;
    memset(&err, 0, sizeof err);
    CHECK(mkdtemp(dir) != NULL);
    CHECK(kw_crypto_init() == KW_OK && kw_db_open_sqlite(dir, &db, &err) == KW_OK);
    atexit(at_exit);
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    CHECK(kw_presence_memory_new(&srv.presence) == KW_OK);
    CHECK(kw_rate_limit_new(KW_BUNDLE_FETCH_LIMIT, KW_BUNDLE_FETCH_WINDOW_MS, KW_BUNDLE_FETCH_PAIRS,
                            &srv.bundle_limit) == KW_OK);
    CHECK(enroll("alice", &alice) && enroll("bob", &bob));
    kw_db_channel ch;
    CHECK(db->meetings->channel_create(db->ctx, alice.user_id, "room", "webrtc", NOW, &ch, &err) ==
              KW_OK &&
          db->meetings->channel_member_add(db->ctx, ch.channel_id, bob.user_id, NOW, &err) ==
              KW_OK);
    snprintf(channel_id, sizeof channel_id, "%s", ch.channel_id);
    kw_db_meeting in, m;
    memset(&in, 0, sizeof in);
    snprintf(in.title, sizeof in.title, "Weekly");
    in.start_ms = NOW;
    in.end_ms = NOW + 86400000LL;
    in.allow_external = 1;
    snprintf(in.created_by, sizeof in.created_by, "%s", alice.user_id);
    CHECK(db->meetings->meeting_create(db->ctx, &in, NOW, &m, &err) == KW_OK);
    snprintf(meeting_id, sizeof meeting_id, "%s", m.meeting_id);
    CHECK(db->meetings->participant_add(db->ctx, meeting_id, bob.user_id, KW_MEETING_ROLE_MEMBER,
                                        NOW, &err) == KW_OK);
    kw_db_invitation inv;
    CHECK(db->meetings->invitation_create(db->ctx, meeting_id, alice.user_id, NULL,
                                          NOW + 86400000LL, 0, NOW, &inv, &err) == KW_OK);
    CHECK(guest(inv.token, "Waiting", &waiting) && guest(inv.token, "Admitted", &admitted));
    kw_db_guest g;
    CHECK(db->guests->decide(db->ctx, meeting_id, admitted.session_id, 1, alice.user_id, NULL, NOW,
                             &g, &err) == KW_OK);
}

/* ---- one input ------------------------------------------------------------------------- */

static void on_wake(void *arg, void *handle)
{
    (void)arg;
    (void)handle;
}

typedef struct run {
    kw_rt *rt;
    kw_rt_conn conns[CONNS];
    int64_t now;
    char *buf;        /* owned; a record's body with the placeholders replaced */
    unsigned counter; /* the next $n */
    size_t cap;
} run;

static void conn_close(run *r, kw_rt_conn *c)
{
    if (!c->open)
        return;
    kw_rt_conn_closed(r->rt, c, r->now);
    CHECK(c->rx == NULL && c->q_head == NULL && !c->open);
}

/* The connection numbered i, opened if it is not (a new WebSocket). NULL: cannot open. */
static kw_rt_conn *conn_get(run *r, unsigned i)
{
    kw_rt_conn *c = &r->conns[i % CONNS];
    if (c->open)
        return c;
    memset(c, 0, sizeof *c);
    int64_t next;
    if (kw_rt_conn_open(r->rt, c, c, r->now, &next) != KW_OK)
        return NULL;
    CHECK(next >= r->now);
    return c;
}

/* What the adapter does after a call: flow control, and the close on KW_RT_CLOSE. */
static void after(run *r, kw_rt_conn *c, kw_rt_verdict v)
{
    if (trace)
        fprintf(stderr, "conn %d verdict %d close_code %u\n", (int)(c - r->conns), (int)v,
                kw_rt_conn_close_code(c));
    if (v == KW_RT_CLOSE) {
        conn_close(r, c);
        return;
    }
    c->rx_paused = (uint8_t)kw_rt_conn_rx_paused(c);
}

static void receive(run *r, kw_rt_conn *c, const char *data, size_t len, int first, int final,
                    int binary)
{
    if (c == NULL || c->rx_paused)
        return;
    after(r, c, kw_rt_conn_receive(r->rt, c, data, len, first, final, binary, r->now));
}

/* Writes out c's queue (up to limit bytes); closes it if it was waiting for that. */
static void write_out(run *r, kw_rt_conn *c, size_t limit)
{
    char *text;
    size_t len;
    int whole;
    while (c->open && limit > 0 && kw_rt_conn_peek(r->rt, c, &text, &len, &whole)) {
        CHECK(len > 0);
        if (whole)
            memset(text - HEADROOM, 0xA5, HEADROOM); /* the headroom is the adapter's */
        size_t n = len < limit ? len : limit;
        if (trace)
            fprintf(stderr, "conn %d <- %.*s\n", (int)(c - r->conns), (int)n, text);
        kw_rt_conn_written(r->rt, c, n);
        limit -= n;
    }
    if (c->open && !kw_rt_conn_peek(r->rt, c, &text, &len, &whole) && kw_rt_conn_close_code(c))
        conn_close(r, c);
    else if (c->open)
        c->rx_paused = (uint8_t)kw_rt_conn_rx_paused(c);
}

static void tick(run *r, kw_rt_conn *c)
{
    if (!c->open)
        return;
    int64_t next;
    kw_rt_verdict v = kw_rt_conn_tick(r->rt, c, r->now, &next);
    if (v == KW_RT_CLOSE)
        CHECK(next == INT64_MAX);
    else
        CHECK(next >= r->now);
    after(r, c, v);
}

/* Copies body into r->buf with the placeholders replaced. *out_len gets the length. */
static const char *expand(run *r, const char *body, size_t len, size_t *out_len)
{
    size_t need = len * (KW_DB_ID_MAX + 1) + 1; /* every byte a placeholder, at worst */
    if (need > r->cap) {
        char *b = realloc(r->buf, need);
        if (b == NULL)
            return NULL;
        r->buf = b;
        r->cap = need;
    }
    size_t o = 0;
    char counter[16];
    for (size_t i = 0; i < len; i++) {
        const char *sub = NULL;
        if (body[i] == '$' && i + 1 < len) {
            switch (body[i + 1]) {
            case 'C':
                sub = channel_id;
                break;
            case 'M':
                sub = meeting_id;
                break;
            case 'S':
                sub = waiting.session_id;
                break;
            case 's':
                sub = admitted.session_id;
                break;
            case 'U':
                sub = alice.user_id;
                break;
            case 'V':
                sub = bob.user_id;
                break;
            case 'n':
                snprintf(counter, sizeof counter, "%u", r->counter++);
                sub = counter;
                break;
            default:
                break;
            }
        }
        if (sub != NULL) {
            size_t n = strlen(sub);
            memcpy(r->buf + o, sub, n);
            o += n;
            i++;
        } else {
            r->buf[o++] = body[i];
        }
    }
    r->buf[o] = '\0';
    *out_len = o;
    return r->buf;
}

static void connect_member(run *r, kw_rt_conn *c, const kw_db_enrollment *m)
{
    char ts[24], nonce[40], sig[KW_REQUEST_SIGNATURE_CHARS + 1], frame[512];
    snprintf(ts, sizeof ts, "%lld", (long long)r->now);
    snprintf(nonce, sizeof nonce, "fuzz-nonce-%010u", nonce_counter++);
    CHECK(kw_request_sign(m->session_secret, m->client_id, ts, nonce, "GET", "/socket.io/auth",
                          NULL, 0, sig) == KW_OK);
    int n =
        snprintf(frame, sizeof frame,
                 "40{\"client_id\":\"%s\",\"timestamp\":%s,\"nonce\":\"%s\",\"signature\":\"%s\"}",
                 m->client_id, ts, nonce, sig);
    CHECK(n > 0 && (size_t)n < sizeof frame);
    receive(r, c, frame, (size_t)n, 1, 1, 0);
}

static void connect_guest(run *r, kw_rt_conn *c, const kw_db_guest_created *g)
{
    char frame[256];
    int n =
        snprintf(frame, sizeof frame, "40/external,{\"session_id\":\"%s\",\"guest_secret\":\"%s\"}",
                 g->session_id, g->guest_secret);
    CHECK(n > 0 && (size_t)n < sizeof frame);
    receive(r, c, frame, (size_t)n, 1, 1, 0);
}

static int64_t parse_ms(const char *s, size_t len)
{
    int64_t v = 0;
    for (size_t i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > MAX_STEP)
            return MAX_STEP;
    }
    return v;
}

/* Well-formed events ('y'): every handler of every table, with the ids of the fixtures. */
static const char *const templates[] = {
    "42[\"video:check-participants\",{\"channelId\":\"$C\"}]",
    "421[\"video:register-participant\",{\"channelId\":\"$C\"}]",
    "422[\"video:confirm-e2ee-key\",{\"channelId\":\"$C\"}]",
    "423[\"video:leave-channel\",{\"channelId\":\"$C\"}]",
    "424[\"video:register-participant\",{\"channelId\":\"$M\"}]",
    "425[\"video:check-participants\",{\"channelId\":\"$M\"}]",
    "426[\"video:leave-channel\",{\"channelId\":\"$M\"}]",
    "427[\"meeting:join-room\",{\"meeting_id\":\"$M\"}]",
    "428[\"meeting:leave-room\",{\"meeting_id\":\"$M\"}]",
    "429[\"sendItem\",{\"recipient\":\"$V\",\"recipientDeviceId\":1,\"type\":\"m\","
    "\"payload\":\"AAAA\",\"cipherType\":3,\"itemId\":\"i$n\"}]",
    "4210[\"sendItem\",{\"recipient\":\"$U\",\"recipientDeviceId\":\"1\",\"type\":\"m\","
    "\"payload\":\"AAAA\",\"cipherType\":1,\"itemId\":\"j$n\"}]",
    "4211[\"sendGroupItem\",{\"channelId\":\"$C\",\"itemId\":\"g$n\",\"type\":\"m\","
    "\"payload\":\"AAAA\",\"cipherType\":7,\"timestamp\":1}]",
    "4212[\"sendGroupItem\",{\"channelId\":\"$M\",\"itemId\":\"h$n\",\"type\":\"m\","
    "\"payload\":\"AAAA\",\"cipherType\":7,\"timestamp\":2}]",
    "4213[\"participant:signal_message_to_guest\",{\"guest_session_id\":\"$s\","
    "\"encrypted_message\":\"AAAA\",\"message_type\":3}]",
    "4214[\"participant:signal_message_to_guest\",{\"guest_session_id\":\"$S\","
    "\"encrypted_message\":\"AAAA\",\"message_type\":3}]",
    "4215[\"meeting:distributeSenderKeyToGuest\",{\"meetingId\":\"$M\",\"guestSessionId\":"
    "\"$s\",\"senderDeviceId\":1,\"encryptedSenderKey\":\"AAAA\"}]",
    "4216[\"participant:meeting_e2ee_key_response\",{\"guest_session_id\":\"$s\","
    "\"encrypted_message\":\"AAAA\",\"message_type\":3}]",
    "42/external,17[\"guest:signal_message\",{\"recipient_user_id\":\"$U\","
    "\"recipient_device_id\":\"1\",\"encrypted_message\":\"AAAA\",\"message_type\":3}]",
    "42/external,18[\"guest:meeting_e2ee_key_request\",{\"participant_user_id\":\"$U\","
    "\"participant_device_id\":\"1\",\"ciphertext\":\"AAAA\",\"messageType\":3,"
    "\"request_id\":\"req_1\"}]",
    "42/external,19[\"meeting:sender_key\",{\"meetingId\":\"$M\",\"guestSessionId\":\"$s\","
    "\"senderDeviceId\":1,\"encryptedSenderKey\":\"AAAA\"}]",
    "41",
    "41/external,",
    "3",
    "1",
};
#define TEMPLATES (sizeof templates / sizeof templates[0])

static void step(run *r, const char *rec, size_t len)
{
    char op = rec[0];
    if (trace)
        fprintf(stderr, "step %.*s\n", (int)len, rec);
    const char *body = rec + 1;
    size_t blen = len - 1;
    size_t n = 0;
    const char *text;
    if (op >= '0' && op <= '7') {
        text = expand(r, body, blen, &n);
        if (text != NULL)
            receive(r, conn_get(r, (unsigned)(op - '0')), text, n, 1, 1, op >= '4');
    } else if (op >= 'a' && op <= 'l') {
        unsigned k = (unsigned)(op - 'a');
        text = expand(r, body, blen, &n);
        if (text != NULL)
            receive(r, conn_get(r, k), text, n, k < 4, k >= 8, 0);
    } else if (op >= 'm' && op <= 't') {
        unsigned k = (unsigned)(op - 'm');
        kw_rt_conn *c = conn_get(r, k);
        if (c != NULL)
            connect_member(r, c, k < 4 ? &alice : &bob);
    } else if (op >= 'u' && op <= 'x') {
        kw_rt_conn *c = conn_get(r, (unsigned)(op - 'u'));
        if (c != NULL)
            connect_guest(r, c, &waiting);
    } else if (op >= 'I' && op <= 'L') {
        kw_rt_conn *c = conn_get(r, (unsigned)(op - 'I'));
        if (c != NULL)
            connect_guest(r, c, &admitted);
    } else if (op >= 'A' && op <= 'D') {
        conn_close(r, &r->conns[op - 'A']);
    } else if (op >= 'E' && op <= 'H') {
        tick(r, &r->conns[op - 'E']);
    } else if (op == 'T') {
        r->now += parse_ms(body, blen);
        for (unsigned i = 0; i < CONNS; i++)
            tick(r, &r->conns[i]);
    } else if (op == 'W') {
        for (unsigned i = 0; i < CONNS; i++)
            write_out(r, &r->conns[i], SIZE_MAX);
    } else if ((op == 'y' && blen >= 2) || (op == 'Y' && blen >= 3)) {
        const char *t = templates[(unsigned char)body[1] % TEMPLATES];
        unsigned times = op == 'y' ? 1 : (unsigned char)body[2];
        for (unsigned i = 0; i < times; i++) {
            text = expand(r, t, strlen(t), &n); /* again: $n differs */
            if (text != NULL)
                receive(r, conn_get(r, (unsigned char)body[0]), text, n, 1, 1, 0);
        }
    } else if (op == 'w' && blen >= 2) {
        write_out(r, &r->conns[(unsigned char)body[0] % CONNS], (unsigned char)body[1]);
    }
}

/* Open connections must match rt's count; queues stay near their limits. */
static void invariants(run *r)
{
    size_t open = 0;
    for (unsigned i = 0; i < CONNS; i++) {
        const kw_rt_conn *c = &r->conns[i];
        if (!c->open)
            continue;
        open++;
        CHECK((c->q_head == NULL) == (c->q_frames == 0));
        CHECK(c->q_frames > 0 || c->q_bytes == 0);
    }
    CHECK(kw_rt_connections(r->rt) == open);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    trace = getenv("FUZZ_RT_TRACE") != NULL;
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run r;
    memset(&r, 0, sizeof r);
    r.now = NOW;
    if (kw_rt_new(&srv, HEADROOM, on_wake, NULL, &r.rt) != KW_OK)
        return 0;
    srv.rt = r.rt;
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len > 0)
            step(&r, p, len);
        invariants(&r);
        p += len + 1;
    }
    for (unsigned i = 0; i < CONNS; i++)
        conn_close(&r, &r.conns[i]);
    CHECK(kw_rt_connections(r.rt) == 0);
    /* Every registration went with its socket (disconnect is a leave). */
    kw_presence *pr = srv.presence;
    CHECK(pr->ops->video_list(pr->ctx, channel_id, NULL, 0) == 0);
    CHECK(pr->ops->video_list(pr->ctx, meeting_id, NULL, 0) == 0);
    srv.rt = NULL;
    kw_rt_free(r.rt);
    free(r.buf);
    /* Stored items and used nonces would make the next input depend on this one. */
    kw_error err;
    CHECK(db->items->delete_upto(db->ctx, alice.user_id, alice.device_id, INT64_MAX, &err) ==
          KW_OK);
    CHECK(db->items->delete_upto(db->ctx, bob.user_id, bob.device_id, INT64_MAX, &err) == KW_OK);
    if (++inputs % 1024 == 0) /* nonces are never reused (a counter): forget them */
        CHECK(db->members->purge(db->ctx, NOW + 365LL * 86400000, 1u << 20, NULL, &err) == KW_OK);
    return 0;
}
