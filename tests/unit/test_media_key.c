/*
 * test_media_key.c — the meeting media-key agreement (media_key.h): the payload codec and
 * its strict failures, the "better key" order at its boundaries, each state-machine rule
 * driven by hand, and the six scenarios of seed 003 (plus rotation, the seed-001 timeout
 * path and a random "chaos" run) over the simulated meeting of mka_bus.h, 200 seeds each,
 * with messages delayed and reordered at random.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "keywave/base64.h"
#include "keywave/media_key.h"
#include "kwtest.h"
#include "mka_bus.h"

#define SEEDS 200

/* ---- helpers -------------------------------------------------------------------------- */

/* A deterministic kw_random that can be told to fail on its Nth call (0 = never). */
typedef struct test_rng {
    uint64_t state;
    int calls;
    int fail_at;
} test_rng;

static kw_err test_fill(void *ctx, uint8_t *buf, size_t len)
{
    test_rng *r = ctx;
    if (r->fail_at && ++r->calls == r->fail_at)
        return KW_ERR_CRYPTO;
    return bus_random_fill(&r->state, buf, len);
}

static kw_random make_rnd(test_rng *r, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->state = seed;
    return (kw_random){test_fill, r};
}

#define MAX_CAPTURE 64
typedef struct captured {
    kw_mka_action a[MAX_CAPTURE];
    int n;
} captured;

/* Drains m's queue into c (beyond MAX_CAPTURE: counted, not kept). */
static int drain(kw_mka *m, captured *c)
{
    kw_mka_action a;
    c->n = 0;
    while (kw_mka_next_action(m, &a)) {
        if (c->n < MAX_CAPTURE)
            c->a[c->n] = a;
        c->n++;
        kw_mka_action_wipe(&a);
    }
    return c->n;
}

/* Decodes a SEND action's payload. */
static kw_mka_msg payload_of(const kw_mka_action *a)
{
    kw_mka_msg msg;
    if (kw_mka_msg_decode(a->payload, a->payload_len, &msg, NULL) != KW_OK)
        memset(&msg, 0, sizeof msg);
    return msg;
}

/* Index of the SEND to `to` in c, or -1. */
static int send_to(const captured *c, const char *to)
{
    for (int i = 0; i < c->n && i < MAX_CAPTURE; i++)
        if (c->a[i].type == KW_MKA_ACTION_SEND && strcmp(c->a[i].to, to) == 0)
            return i;
    return -1;
}

static int count_type(const captured *c, kw_mka_action_type t)
{
    int k = 0;
    for (int i = 0; i < c->n && i < MAX_CAPTURE; i++)
        k += c->a[i].type == t;
    return k;
}

static kw_media_key key_of(uint32_t epoch, int64_t created, uint64_t id, uint8_t fill)
{
    kw_media_key k;
    memset(&k, 0, sizeof k);
    memset(k.key, fill, sizeof k.key);
    k.epoch = epoch;
    k.created_ms = created;
    k.key_id = id;
    return k;
}

/* Encodes a key payload (request_id "" = null) into buf. */
static const char *key_json(const kw_media_key *k, const char *request_id, char *buf, size_t cap)
{
    kw_mka_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = KW_MKA_MSG_KEY;
    snprintf(msg.request_id, sizeof msg.request_id, "%s", request_id);
    msg.key = *k;
    size_t n = 0;
    if (kw_mka_msg_encode(&msg, buf, cap, &n) != KW_OK)
        buf[0] = '\0';
    return buf;
}

static const char *short_json(kw_mka_msg_type t, const char *request_id, char *buf, size_t cap)
{
    kw_mka_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = t;
    snprintf(msg.request_id, sizeof msg.request_id, "%s", request_id);
    size_t n = 0;
    if (kw_mka_msg_encode(&msg, buf, cap, &n) != KW_OK)
        buf[0] = '\0';
    return buf;
}

static kw_err recv_str(kw_mka *m, int64_t now, const char *from, const char *json)
{
    return kw_mka_receive(m, now, from, json, strlen(json), NULL);
}

static bool same_key(const kw_media_key *a, const kw_media_key *b)
{
    return kw_media_key_compare(a, b) == 0 && memcmp(a->key, b->key, sizeof a->key) == 0;
}

/* True when a SEND action carries key k. */
static bool sent_is(const kw_mka_action *a, const kw_media_key *k)
{
    kw_mka_msg msg = payload_of(a);
    return a->type == KW_MKA_ACTION_SEND && msg.type == KW_MKA_MSG_KEY && same_key(&msg.key, k);
}

/* ---- codec ---------------------------------------------------------------------------- */

static void codec_known_answer(void)
{
    kw_media_key k;
    for (int i = 0; i < KW_MEDIA_KEY_BYTES; i++)
        k.key[i] = (uint8_t)i;
    k.epoch = 3;
    k.created_ms = 1700000000000;
    k.key_id = 0x0123456789abcdefULL;
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    KWT_STREQ(key_json(&k, "00112233445566778899aabbccddeeff", buf, sizeof buf),
              "{\"type\":\"media_key\",\"request_id\":\"00112233445566778899aabbccddeeff\","
              "\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"epoch\":3,"
              "\"created_ms\":1700000000000,\"key_id\":\"0123456789abcdef\"}");
    KWT_STREQ(key_json(&k, "", buf, sizeof buf),
              "{\"type\":\"media_key\",\"request_id\":null,"
              "\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"epoch\":3,"
              "\"created_ms\":1700000000000,\"key_id\":\"0123456789abcdef\"}");
    KWT_STREQ(short_json(KW_MKA_MSG_REQUEST, "0123456789abcdef", buf, sizeof buf),
              "{\"type\":\"media_key_request\",\"request_id\":\"0123456789abcdef\"}");
    KWT_STREQ(short_json(KW_MKA_MSG_UNAVAILABLE, "0123456789abcdef", buf, sizeof buf),
              "{\"type\":\"media_key_unavailable\",\"request_id\":\"0123456789abcdef\"}");
}

static void codec_round_trip(void)
{
    static const kw_mka_msg_type types[] = {KW_MKA_MSG_REQUEST, KW_MKA_MSG_KEY,
                                            KW_MKA_MSG_UNAVAILABLE};
    static const char *const rids[] = {"0123456789abcdef",
                                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                                       "abcdef",
                                       ""};
    static const kw_media_key extremes[] = {
        {{0}, 0, 0, 0},
        {{0}, UINT32_MAX, INT64_MAX, UINT64_MAX},
        {{0}, 7, 1234567, 0x00000000000000ffULL},
    };
    for (size_t t = 0; t < 3; t++)
        for (size_t r = 0; r < 3; r++)
            for (size_t e = 0; e < 3; e++) {
                kw_mka_msg in, out;
                memset(&in, 0, sizeof in);
                in.type = types[t];
                snprintf(in.request_id, sizeof in.request_id, "%s", rids[r]);
                if (in.type == KW_MKA_MSG_KEY) {
                    in.key = extremes[e];
                    memset(in.key.key, 0xa5 + (int)e, sizeof in.key.key);
                }
                char buf[KW_MKA_PAYLOAD_MAX + 1];
                size_t n = 0;
                kw_err rc = kw_mka_msg_encode(&in, buf, sizeof buf, &n);
                if (rids[r][0] == '\0' && in.type != KW_MKA_MSG_KEY) {
                    KWT_ERR(rc, KW_ERR_INVALID_ARGUMENT); /* only a key may answer nothing */
                    continue;
                }
                KWT_ERR(rc, KW_OK);
                KWT_EQ(n, strlen(buf));
                KWT_ERR(kw_mka_msg_decode(buf, n, &out, NULL), KW_OK);
                KWT_EQ(out.type, in.type);
                KWT_STREQ(out.request_id, in.request_id);
                if (in.type == KW_MKA_MSG_KEY)
                    KWT_CHECK(same_key(&out.key, &in.key));
            }
}

static void codec_encode_errors(void)
{
    kw_mka_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = KW_MKA_MSG_KEY;
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    size_t n = 0;
    /* Exactly fitting vs one byte short. */
    KWT_ERR(kw_mka_msg_encode(&msg, buf, sizeof buf, &n), KW_OK);
    size_t need = n + 1;
    KWT_ERR(kw_mka_msg_encode(&msg, buf, need, &n), KW_OK);
    KWT_ERR(kw_mka_msg_encode(&msg, buf, need - 1, &n), KW_ERR_BUFFER_TOO_SMALL);
    KWT_EQ(buf[0], 0); /* a truncated key payload is wiped */
    msg.key.created_ms = -1;
    KWT_ERR(kw_mka_msg_encode(&msg, buf, sizeof buf, &n), KW_ERR_INVALID_ARGUMENT);
    msg.key.created_ms = 0;
    snprintf(msg.request_id, sizeof msg.request_id, "0123456789ABCDEF");
    KWT_ERR(kw_mka_msg_encode(&msg, buf, sizeof buf, &n), KW_ERR_INVALID_ARGUMENT);
    snprintf(msg.request_id, sizeof msg.request_id, "0123456789abcde"); /* 15 */
    KWT_ERR(kw_mka_msg_encode(&msg, buf, sizeof buf, &n), KW_ERR_INVALID_ARGUMENT);
    msg.type = (kw_mka_msg_type)9;
    snprintf(msg.request_id, sizeof msg.request_id, "0123456789abcdef");
    KWT_ERR(kw_mka_msg_encode(&msg, buf, sizeof buf, &n), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_msg_encode(NULL, buf, sizeof buf, &n), KW_ERR_INVALID_ARGUMENT);
}

#define K44 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define RID "0123456789abcdef"
#define KEYMSG(rid, key, epoch, created, kid)                                                      \
    "{\"type\":\"media_key\",\"request_id\":" rid ",\"key\":" key ",\"epoch\":" epoch              \
    ",\"created_ms\":" created ",\"key_id\":" kid "}"

static void codec_strict_table(void)
{
    static const struct {
        const char *json;
        kw_err want;
    } cases[] = {
        /* shape */
        {"", KW_ERR_JSON},
        {"[]", KW_ERR_JSON},
        {"null", KW_ERR_JSON},
        {"{}", KW_ERR_JSON},
        {"{\"type\":1,\"request_id\":\"" RID "\"}", KW_ERR_JSON},
        {"{\"type\":\"media_key_requests\",\"request_id\":\"" RID "\"}", KW_ERR_INVALID_ARGUMENT},
        {"{\"type\":\"media_key_request\"}", KW_ERR_JSON},
        {"{\"type\":\"media_key_request\",\"request_id\":null}", KW_ERR_JSON},
        {"{\"type\":\"media_key_request\",\"request_id\":\"" RID "\",\"x\":1}",
         KW_ERR_UNKNOWN_FIELD},
        {"{\"type\":\"media_key_unavailable\",\"request_id\":\"" RID "\",\"key\":\"" K44 "\"}",
         KW_ERR_UNKNOWN_FIELD},
        {"{\"type\":\"media_key_request\",\"request_id\":\"" RID "\",\"request_id\":\"" RID "\"}",
         KW_ERR_JSON},
        {"{\"type\":\"media_key_request\",\"request_id\":\"" RID "\"} x", KW_ERR_JSON},
        {"{\"type\":\"media_key_request\",\"request_id\":\"" RID "\"}", KW_OK},
        {" {\"request_id\" : \"" RID "\",\n\"type\":\"media_key_request\"} ", KW_OK},
        /* request_id length and alphabet: 15 / 16 / 64 / 65, upper case */
        {"{\"type\":\"media_key_request\",\"request_id\":\"0123456789abcde\"}",
         KW_ERR_INVALID_ARGUMENT},
        {"{\"type\":\"media_key_request\",\"request_id\":\"0123456789abcdef0123456789abcdef"
         "0123456789abcdef0123456789abcdef\"}",
         KW_OK},
        {"{\"type\":\"media_key_request\",\"request_id\":\"0123456789abcdef0123456789abcdef"
         "0123456789abcdef0123456789abcdef0\"}",
         KW_ERR_INVALID_ARGUMENT},
        {"{\"type\":\"media_key_request\",\"request_id\":\"0123456789ABCDEF\"}",
         KW_ERR_INVALID_ARGUMENT},
        /* key messages */
        {KEYMSG("null", "\"" K44 "\"", "0", "0", "\"0000000000000000\""), KW_OK},
        {KEYMSG("\"" RID "\"", "\"" K44 "\"", "4294967295", "9223372036854775807",
                "\"ffffffffffffffff\""),
         KW_OK},
        {KEYMSG("null", "\"" K44 "\"", "4294967296", "0", "\"0000000000000000\""),
         KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"" K44 "\"", "-1", "0", "\"0000000000000000\""), KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"" K44 "\"", "1.0", "0", "\"0000000000000000\""), KW_ERR_JSON},
        {KEYMSG("null", "\"" K44 "\"", "\"1\"", "0", "\"0000000000000000\""), KW_ERR_JSON},
        {KEYMSG("null", "\"" K44 "\"", "0", "-1", "\"0000000000000000\""), KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"" K44 "\"", "0", "9223372036854775808", "\"0000000000000000\""),
         KW_ERR_JSON},
        {KEYMSG("null", "\"" K44 "\"", "0", "0", "\"000000000000000\""), KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"" K44 "\"", "0", "0", "\"00000000000000000\""), KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"" K44 "\"", "0", "0", "\"000000000000000A\""), KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"" K44 "\"", "0", "0", "0"), KW_ERR_JSON},
        {KEYMSG("null", "\"" K44 "\"", "0", "0", "null"), KW_ERR_JSON},
        /* key bytes: 31 / 33 bytes, unpadded, URL-safe letters, whitespace, not a string */
        {KEYMSG("null", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"", "0", "0",
                "\"0000000000000000\""),
         KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\"", "0", "0",
                "\"0000000000000000\""),
         KW_ERR_INVALID_ARGUMENT},
        {KEYMSG("null", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"", "0", "0",
                "\"0000000000000000\""),
         KW_ERR_BASE64},
        {KEYMSG("null", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-=\"", "0", "0",
                "\"0000000000000000\""),
         KW_ERR_BASE64},
        {KEYMSG("null", "\" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"", "0", "0",
                "\"0000000000000000\""),
         KW_ERR_BASE64},
        {KEYMSG("null", "32", "0", "0", "\"0000000000000000\""), KW_ERR_JSON},
        {"{\"type\":\"media_key\",\"request_id\":null,\"epoch\":0,\"created_ms\":0,"
         "\"key_id\":\"0000000000000000\"}",
         KW_ERR_JSON},
        {"{\"type\":\"media_key\",\"key\":\"" K44 "\",\"epoch\":0,\"created_ms\":0,"
         "\"key_id\":\"0000000000000000\"}",
         KW_ERR_JSON},
        {"{\"type\":\"media_key\",\"request_id\":null,\"key\":\"" K44 "\",\"epoch\":0,"
         "\"created_ms\":0,\"key_id\":\"0000000000000000\",\"meeting_id\":\"m\"}",
         KW_ERR_UNKNOWN_FIELD},
        {"{\"type\":\"media_key\",\"request_id\":\"\",\"key\":\"" K44 "\",\"epoch\":0,"
         "\"created_ms\":0,\"key_id\":\"0000000000000000\"}",
         KW_ERR_INVALID_ARGUMENT},
        {"{\"type\":\"media_key_request\",\"request_id\":\"0123456789abcdef\\u0000\"}",
         KW_ERR_JSON},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_mka_msg msg;
        kw_error e;
        kw_error_clear(&e);
        kw_err rc = kw_mka_msg_decode(cases[i].json, strlen(cases[i].json), &msg, &e);
        if (rc != cases[i].want)
            printf("    case %zu: %s (%s)\n", i, cases[i].json, e.detail);
        KWT_ERR(rc, cases[i].want);
        if (rc != KW_OK) {
            KWT_CHECK(e.detail[0] != '\0');
            KWT_CHECK(strstr(e.detail, K44) == NULL); /* no secret in the detail */
        }
    }
    /* Length: exactly KW_MKA_PAYLOAD_MAX parses (padded with spaces), one more does not. */
    char big[KW_MKA_PAYLOAD_MAX + 2];
    const char *base = "{\"type\":\"media_key_request\",\"request_id\":\"" RID "\"}";
    size_t bl = strlen(base);
    memcpy(big, base, bl); /* NOLINT(bugprone-not-null-terminated-result): padded below */
    memset(big + bl, ' ', sizeof big - bl);
    kw_mka_msg msg;
    KWT_ERR(kw_mka_msg_decode(big, KW_MKA_PAYLOAD_MAX, &msg, NULL), KW_OK);
    KWT_ERR(kw_mka_msg_decode(big, KW_MKA_PAYLOAD_MAX + 1, &msg, NULL), KW_ERR_INVALID_ARGUMENT);
    /* Not NUL-terminated input: only len bytes are read. */
    KWT_ERR(kw_mka_msg_decode(base, bl - 1, &msg, NULL), KW_ERR_JSON);
    KWT_ERR(kw_mka_msg_decode(NULL, 0, &msg, NULL), KW_ERR_INVALID_ARGUMENT);
}

/* ---- the order of keys ---------------------------------------------------------------- */

static void order_key_id_breaks_created_tie(void)
{
    kw_media_key a = key_of(0, 1000, 5, 0xff), b = key_of(0, 1000, 6, 0x00);
    KWT_CHECK(kw_media_key_compare(&a, &b) < 0); /* smaller key_id, despite larger bytes */
    KWT_CHECK(kw_media_key_compare(&b, &a) > 0);
    kw_media_key c = key_of(0, 1000, UINT64_MAX, 0), d = key_of(0, 1000, UINT64_MAX - 1, 0);
    KWT_CHECK(kw_media_key_compare(&d, &c) < 0); /* unsigned, full range */
}

static void order_created_differs_by_one(void)
{
    kw_media_key a = key_of(0, 999, UINT64_MAX, 0xff), b = key_of(0, 1000, 0, 0);
    KWT_CHECK(kw_media_key_compare(&a, &b) < 0); /* older wins over any key_id */
    KWT_CHECK(kw_media_key_compare(&b, &a) > 0);
    kw_media_key z = key_of(0, 0, 1, 0), big = key_of(0, INT64_MAX, 0, 0);
    KWT_CHECK(kw_media_key_compare(&z, &big) < 0);
}

static void order_epoch_beats_age(void)
{
    kw_media_key old0 = key_of(0, 1, 0, 0), new1 = key_of(1, INT64_MAX, UINT64_MAX, 0xff);
    KWT_CHECK(kw_media_key_compare(&new1, &old0) < 0);
    KWT_CHECK(kw_media_key_compare(&old0, &new1) > 0);
    kw_media_key top = key_of(UINT32_MAX, 5, 5, 5), below = key_of(UINT32_MAX - 1, 0, 0, 0);
    KWT_CHECK(kw_media_key_compare(&top, &below) < 0);
}

static void order_bytes_last_and_identical(void)
{
    kw_media_key a = key_of(2, 50, 9, 0x10), b = key_of(2, 50, 9, 0x10);
    KWT_EQ(kw_media_key_compare(&a, &b), 0);
    b.key[KW_MEDIA_KEY_BYTES - 1] = 0x11; /* only the last byte differs */
    KWT_CHECK(kw_media_key_compare(&a, &b) < 0);
    KWT_CHECK(kw_media_key_compare(&b, &a) > 0);
    b = a;
    b.key[0] = 0x0f; /* the first difference decides, not a later one */
    b.key[1] = 0xff;
    KWT_CHECK(kw_media_key_compare(&b, &a) < 0);
    KWT_CHECK(kw_media_key_compare(&a, &b) > 0);
}

static void key_generate(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 42);
    kw_media_key a, b;
    KWT_ERR(kw_media_key_generate(&rnd, 4, 77, &a), KW_OK);
    KWT_ERR(kw_media_key_generate(&rnd, 4, 77, &b), KW_OK);
    KWT_EQ(a.epoch, 4);
    KWT_EQ(a.created_ms, 77);
    KWT_CHECK(memcmp(a.key, b.key, sizeof a.key) != 0);
    KWT_CHECK(a.key_id != b.key_id);
    KWT_ERR(kw_media_key_generate(&rnd, 0, -1, &a), KW_ERR_INVALID_ARGUMENT);
    r.fail_at = r.calls + 1;
    KWT_ERR(kw_media_key_generate(&rnd, 0, 1, &a), KW_ERR_CRYPTO);
    KWT_EQ(a.created_ms, 0); /* wiped */
    KWT_EQ(kw_media_key_bytes(), 32);
    KWT_EQ(kw_mka_request_timeout_ms(), 5000);
}

/* ---- the state machine, by hand ------------------------------------------------------- */

static void sm_first_creates_key(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 1);
    kw_mka *m = NULL;
    captured c;
    KWT_ERR(kw_mka_new("alice:1", &rnd, &m), KW_OK);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_IDLE);
    kw_media_key k;
    KWT_ERR(kw_mka_current_key(m, &k), KW_ERR_NO_KEY);
    KWT_ERR(kw_mka_start(m, 1000, NULL, 0), KW_OK);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_HAVE_KEY);
    KWT_EQ(kw_mka_deadline(m), INT64_MAX);
    KWT_EQ(drain(m, &c), 1);
    KWT_EQ(c.a[0].type, KW_MKA_ACTION_KEY);
    KWT_EQ(c.a[0].key.epoch, 0);
    KWT_EQ(c.a[0].key.created_ms, 1000);
    KWT_ERR(kw_mka_current_key(m, &k), KW_OK);
    KWT_CHECK(same_key(&k, &c.a[0].key));
    KWT_ERR(kw_mka_start(m, 1001, NULL, 0), KW_ERR_STATE); /* already started */
    kw_mka_leave(m);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_IDLE);
    KWT_ERR(kw_mka_current_key(m, &k), KW_ERR_NO_KEY);
    KWT_EQ(kw_mka_next_action(m, &c.a[0]), 0);
    kw_mka_free(m);
    kw_mka_free(NULL);
    kw_mka_leave(NULL);
}

static void sm_argument_checks(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 2);
    kw_mka *m = NULL;
    char id128[KW_MKA_PEER_ID_MAX + 2];
    memset(id128, 'a', sizeof id128);
    id128[KW_MKA_PEER_ID_MAX] = '\0';
    KWT_ERR(kw_mka_new(id128, &rnd, &m), KW_OK); /* 128 bytes: the maximum */
    kw_mka_free(m);
    id128[KW_MKA_PEER_ID_MAX] = 'a';
    id128[KW_MKA_PEER_ID_MAX + 1] = '\0';
    KWT_ERR(kw_mka_new(id128, &rnd, &m), KW_ERR_INVALID_ARGUMENT); /* 129 */
    KWT_CHECK(m == NULL);
    KWT_ERR(kw_mka_new("", &rnd, &m), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_new("a b", &rnd, &m), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_new("a\n", &rnd, &m), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_new(NULL, &rnd, &m), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_new("me", NULL, &m), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);

    kw_mka_peer self[] = {{"me", 1}};
    kw_mka_peer dup[] = {{"p", 1}, {"p", 2}};
    kw_mka_peer neg[] = {{"p", -1}};
    kw_mka_peer unknown[] = {{"p", INT64_MAX}};
    kw_mka_peer bad[] = {{"p\x7f", 1}};
    KWT_ERR(kw_mka_start(m, 1, self, 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, 1, dup, 2), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, 1, neg, 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, 1, unknown, 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, 1, bad, 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, -1, NULL, 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, 1, NULL, 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_start(m, 1, NULL, KW_MKA_PEERS_MAX + 1), KW_ERR_INVALID_ARGUMENT);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_IDLE);
    KWT_EQ(kw_mka_next_action(m, &(kw_mka_action){0}), 0);

    /* IDLE: nothing but requests is taken. */
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    kw_media_key k = key_of(0, 5, 5, 5);
    KWT_ERR(recv_str(m, 1, "p", key_json(&k, "", buf, sizeof buf)), KW_ERR_STATE);
    KWT_ERR(kw_mka_peer_joined(m, 1, "p", 1), KW_ERR_STATE);
    KWT_ERR(kw_mka_peer_left(m, 1, "p"), KW_ERR_STATE);
    KWT_ERR(kw_mka_rotate(m, 1), KW_ERR_STATE);
    KWT_ERR(kw_mka_tick(m, 1), KW_OK);
    KWT_EQ(kw_mka_next_action(m, &(kw_mka_action){0}), 0);
    captured c;
    KWT_ERR(recv_str(m, 1, "p", short_json(KW_MKA_MSG_REQUEST, RID, buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_EQ(payload_of(&c.a[0]).type, KW_MKA_MSG_UNAVAILABLE);
    KWT_STREQ(payload_of(&c.a[0]).request_id, RID);

    /* Peer inputs: bad ids and our own id. */
    KWT_ERR(kw_mka_start(m, 1, NULL, 0), KW_OK);
    drain(m, &c);
    KWT_ERR(kw_mka_peer_joined(m, 1, "me", 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_peer_joined(m, 1, "", 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_peer_joined(m, 1, "p", -1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_peer_left(m, 1, NULL), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_peer_left(m, 1, "never-seen"), KW_OK);
    KWT_ERR(recv_str(m, 1, "me", short_json(KW_MKA_MSG_REQUEST, RID, buf, sizeof buf)),
            KW_ERR_INVALID_ARGUMENT);
    KWT_EQ(drain(m, &c), 0);
    kw_mka_free(m);
}

static void sm_request_goes_to_longest_present(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 3);
    kw_mka *m = NULL;
    captured c;
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
    /* Given out of order; joined_ms ties are broken by id. */
    kw_mka_peer peers[] = {{"p3", 300}, {"p1b", 100}, {"p1a", 100}, {"p2", 200}};
    KWT_ERR(kw_mka_start(m, 10000, peers, 4), KW_OK);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_REQUESTING);
    KWT_EQ(kw_mka_deadline(m), 15000);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "p1a");
    kw_mka_msg req = payload_of(&c.a[0]);
    KWT_EQ(req.type, KW_MKA_MSG_REQUEST);
    KWT_EQ(strlen(req.request_id), 32);
    kw_mka_free(m);
}

static void sm_timeout_tries_next_then_fails(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 4);
    kw_mka *m = NULL;
    captured c;
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
    kw_mka_peer peers[] = {{"p3", 300}, {"p1", 100}, {"p2", 200}};
    KWT_ERR(kw_mka_start(m, 10000, peers, 3), KW_OK);
    drain(m, &c);
    KWT_STREQ(c.a[0].to, "p1");
    char rid1[KW_MKA_REQUEST_ID_MAX + 1];
    snprintf(rid1, sizeof rid1, "%s", payload_of(&c.a[0]).request_id);

    /* 4999 ms: still waiting. 5000 ms: p1 failed, p2 asked with a new request id. */
    KWT_ERR(kw_mka_tick(m, 14999), KW_OK);
    KWT_EQ(drain(m, &c), 0);
    KWT_ERR(kw_mka_tick(m, 15000), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "p2");
    char rid2[KW_MKA_REQUEST_ID_MAX + 1];
    snprintf(rid2, sizeof rid2, "%s", payload_of(&c.a[0]).request_id);
    KWT_CHECK(strcmp(rid1, rid2) != 0);
    KWT_EQ(kw_mka_deadline(m), 20000);

    /* Unavailable from someone else, or for an older request: ignored. */
    KWT_ERR(recv_str(m, 16000, "p3", short_json(KW_MKA_MSG_UNAVAILABLE, rid2, buf, sizeof buf)),
            KW_OK);
    KWT_ERR(recv_str(m, 16000, "p2", short_json(KW_MKA_MSG_UNAVAILABLE, rid1, buf, sizeof buf)),
            KW_OK);
    KWT_EQ(drain(m, &c), 0);
    KWT_EQ(kw_mka_deadline(m), 20000);
    /* The real answer: p2 has no key -> p3 is asked at once. */
    KWT_ERR(recv_str(m, 16000, "p2", short_json(KW_MKA_MSG_UNAVAILABLE, rid2, buf, sizeof buf)),
            KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "p3");
    KWT_EQ(kw_mka_deadline(m), 21000);
    /* p3 leaves: the third failure, at once. */
    KWT_ERR(kw_mka_peer_left(m, 17000, "p3"), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_EQ(c.a[0].type, KW_MKA_ACTION_FAILED);
    KWT_ERR(c.a[0].error, KW_ERR_KEY_EXCHANGE_FAILED);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_FAILED);
    KWT_EQ(kw_mka_deadline(m), INT64_MAX);
    kw_media_key k = key_of(0, 1, 1, 1);
    KWT_ERR(kw_mka_current_key(m, &k), KW_ERR_NO_KEY);
    /* FAILED takes no key (a late answer), still answers requests, and can be retried. */
    KWT_ERR(recv_str(m, 18000, "p1", key_json(&k, rid1, buf, sizeof buf)), KW_ERR_STATE);
    KWT_ERR(recv_str(m, 18000, "p1", short_json(KW_MKA_MSG_REQUEST, RID, buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_EQ(payload_of(&c.a[0]).type, KW_MKA_MSG_UNAVAILABLE);
    kw_mka_peer again[] = {{"p1", 100}};
    KWT_ERR(kw_mka_start(m, 20000, again, 1), KW_OK);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_REQUESTING);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "p1");
    KWT_EQ(kw_mka_deadline(m), 25000);
    kw_mka_free(m);
}

static void sm_timeout_cycles_fewer_than_three(void)
{
    /* One silent peer: asked three times, FAILED after 15 s. Two: p1, p2, p1. */
    for (int npeers = 1; npeers <= 2; npeers++) {
        test_rng r;
        kw_random rnd = make_rnd(&r, 5);
        kw_mka *m = NULL;
        captured c;
        KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
        kw_mka_peer peers[] = {{"p1", 1}, {"p2", 2}};
        KWT_ERR(kw_mka_start(m, 0, peers, (size_t)npeers), KW_OK);
        const char *want[] = {"p1", npeers == 1 ? "p1" : "p2", "p1"};
        for (int i = 0; i < 3; i++) {
            KWT_EQ(drain(m, &c), 1);
            KWT_STREQ(c.a[0].to, want[i]);
            KWT_EQ(kw_mka_deadline(m), (i + 1) * 5000);
            KWT_ERR(kw_mka_tick(m, kw_mka_deadline(m)), KW_OK);
        }
        KWT_EQ(drain(m, &c), 1);
        KWT_EQ(c.a[0].type, KW_MKA_ACTION_FAILED);
        KWT_EQ(kw_mka_get_state(m), KW_MKA_FAILED);
        kw_mka_free(m);
    }
}

static void sm_target_leaving_counts_at_once(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 6);
    kw_mka *m = NULL;
    captured c;
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
    kw_mka_peer peers[] = {{"p1", 1}, {"p2", 2}};
    KWT_ERR(kw_mka_start(m, 0, peers, 2), KW_OK);
    drain(m, &c);
    KWT_ERR(kw_mka_peer_left(m, 1000, "p2"), KW_OK); /* not the target: nothing */
    KWT_EQ(drain(m, &c), 0);
    KWT_EQ(kw_mka_deadline(m), 5000);
    KWT_ERR(kw_mka_peer_joined(m, 1200, "p9", 50), KW_OK); /* a joiner can be asked too */
    KWT_EQ(drain(m, &c), 0);
    KWT_ERR(kw_mka_peer_left(m, 1500, "p1"), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "p9");
    KWT_EQ(kw_mka_deadline(m), 6500);
    /* The last peer leaves: we are alone, so we make the key. */
    KWT_ERR(kw_mka_peer_left(m, 2000, "p9"), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_EQ(c.a[0].type, KW_MKA_ACTION_KEY);
    KWT_EQ(c.a[0].key.epoch, 0);
    KWT_EQ(c.a[0].key.created_ms, 2000);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_HAVE_KEY);
    kw_mka_free(m);
}

static void sm_any_key_ends_request_and_owed_peers(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 7);
    kw_mka *m = NULL;
    captured c;
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
    kw_mka_peer peers[] = {{"p1", 1}, {"p2", 2}};
    KWT_ERR(kw_mka_start(m, 0, peers, 2), KW_OK);
    drain(m, &c);
    /* While we have no key: a request is told "unavailable", a joiner gets nothing yet. */
    KWT_ERR(recv_str(m, 10, "q", short_json(KW_MKA_MSG_REQUEST, RID, buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "q");
    KWT_EQ(payload_of(&c.a[0]).type, KW_MKA_MSG_UNAVAILABLE);
    KWT_ERR(kw_mka_peer_joined(m, 20, "j", 20), KW_OK);
    KWT_EQ(drain(m, &c), 0);
    /* A key from p2 (not the target) ends the request; q and j get it, p1 and p2 not. */
    kw_media_key k = key_of(0, 5, 9, 0x42);
    KWT_ERR(recv_str(m, 30, "p2", key_json(&k, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(kw_mka_get_state(m), KW_MKA_HAVE_KEY);
    KWT_EQ(kw_mka_deadline(m), INT64_MAX);
    KWT_EQ(drain(m, &c), 3);
    KWT_EQ(c.a[0].type, KW_MKA_ACTION_KEY);
    KWT_CHECK(same_key(&c.a[0].key, &k));
    KWT_CHECK(send_to(&c, "q") >= 0 && send_to(&c, "j") >= 0);
    KWT_CHECK(send_to(&c, "p1") < 0 && send_to(&c, "p2") < 0);
    kw_mka_msg sent = payload_of(&c.a[send_to(&c, "q")]);
    KWT_CHECK(same_key(&sent.key, &k));
    KWT_STREQ(sent.request_id, "");
    /* The late answer of p1, identical: ignored. A timeout no longer fires. */
    KWT_ERR(recv_str(m, 40, "p1", key_json(&k, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 0);
    KWT_ERR(kw_mka_tick(m, 100000), KW_OK);
    KWT_EQ(drain(m, &c), 0);
    kw_mka_free(m);
}

static void sm_have_key_rules(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 8);
    kw_mka *m = NULL;
    captured c;
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
    KWT_ERR(kw_mka_start(m, 1000, NULL, 0), KW_OK);
    drain(m, &c);
    kw_media_key ours;
    KWT_ERR(kw_mka_current_key(m, &ours), KW_OK);

    /* Joiners get our key at once. */
    KWT_ERR(kw_mka_peer_joined(m, 1100, "x", 1100), KW_OK);
    KWT_ERR(kw_mka_peer_joined(m, 1200, "y", 1200), KW_OK);
    KWT_EQ(drain(m, &c), 2);
    KWT_CHECK(sent_is(&c.a[0], &ours));
    KWT_STREQ(c.a[1].to, "y");

    /* A worse key (created 1 ms later): the sender is answered with ours. */
    kw_media_key worse = key_of(0, 1001, 0, 0);
    KWT_ERR(recv_str(m, 1300, "x", key_json(&worse, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_STREQ(c.a[0].to, "x");
    KWT_CHECK(sent_is(&c.a[0], &ours));
    kw_media_key now;
    KWT_ERR(kw_mka_current_key(m, &now), KW_OK);
    KWT_CHECK(same_key(&now, &ours));

    /* Identical: nothing. */
    KWT_ERR(recv_str(m, 1300, "y", key_json(&ours, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 0);

    /* A better key (created 1 ms earlier) from x: adopted, passed to y only. */
    kw_media_key better = key_of(0, 999, UINT64_MAX, 0x77);
    KWT_ERR(recv_str(m, 1400, "x", key_json(&better, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 2);
    KWT_EQ(c.a[0].type, KW_MKA_ACTION_KEY);
    KWT_CHECK(same_key(&c.a[0].key, &better));
    KWT_STREQ(c.a[1].to, "y");
    KWT_CHECK(sent_is(&c.a[1], &better));

    /* A request from someone unknown: answered with the key and its request id; from now
     * on that peer hears about improvements. */
    KWT_ERR(recv_str(m, 1500, "w", short_json(KW_MKA_MSG_REQUEST, RID, buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    kw_mka_msg ans = payload_of(&c.a[0]);
    KWT_EQ(ans.type, KW_MKA_MSG_KEY);
    KWT_STREQ(ans.request_id, RID);
    KWT_CHECK(same_key(&ans.key, &better));
    /* A higher epoch from a stranger z: adopted and sent to x, y and w. */
    kw_media_key e1 = key_of(1, 5000, 1, 0x99);
    KWT_ERR(recv_str(m, 1600, "z", key_json(&e1, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 4);
    KWT_EQ(count_type(&c, KW_MKA_ACTION_SEND), 3);
    KWT_CHECK(send_to(&c, "x") >= 0 && send_to(&c, "y") >= 0 && send_to(&c, "w") >= 0);
    KWT_CHECK(send_to(&c, "z") < 0);
    /* z is now known: a late epoch-0 key from x is answered, and does not win. */
    KWT_ERR(recv_str(m, 1700, "x", key_json(&better, "", buf, sizeof buf)), KW_OK);
    KWT_EQ(drain(m, &c), 1);
    KWT_CHECK(sent_is(&c.a[0], &e1));
    KWT_ERR(kw_mka_current_key(m, &now), KW_OK);
    KWT_CHECK(same_key(&now, &e1));
    kw_mka_free(m);
}

static void sm_rotation(void)
{
    test_rng r1, r2;
    kw_random rnd1 = make_rnd(&r1, 9), rnd2 = make_rnd(&r2, 10);
    kw_mka *a = NULL, *b = NULL;
    captured c;
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    KWT_ERR(kw_mka_new("a", &rnd1, &a), KW_OK);
    KWT_ERR(kw_mka_new("b", &rnd2, &b), KW_OK);
    KWT_ERR(kw_mka_rotate(a, 0), KW_ERR_STATE); /* no key */
    KWT_ERR(kw_mka_start(a, 1000, NULL, 0), KW_OK);
    drain(a, &c);
    kw_media_key k0 = c.a[0].key;
    kw_mka_peer pa[] = {{"a", 1000}};
    KWT_ERR(kw_mka_start(b, 2000, pa, 1), KW_OK);
    drain(b, &c);
    KWT_ERR(recv_str(b, 2100, "a", key_json(&k0, payload_of(&c.a[0]).request_id, buf, sizeof buf)),
            KW_OK);
    drain(b, &c);
    KWT_ERR(kw_mka_peer_joined(a, 2200, "b", 2200), KW_OK);
    drain(a, &c);

    /* b joined after a: b may not rotate, a may. */
    KWT_ERR(kw_mka_rotate(b, 3000), KW_ERR_NOT_ROTATOR);
    KWT_EQ(drain(b, &c), 0);
    KWT_ERR(kw_mka_rotate(a, 3000), KW_OK);
    KWT_EQ(drain(a, &c), 2);
    KWT_EQ(c.a[0].type, KW_MKA_ACTION_KEY);
    kw_media_key k1 = c.a[0].key;
    KWT_EQ(k1.epoch, 1);
    KWT_EQ(k1.created_ms, 3000);
    KWT_CHECK(memcmp(k1.key, k0.key, sizeof k0.key) != 0);
    KWT_STREQ(c.a[1].to, "b");
    KWT_ERR(kw_mka_receive(b, 3100, "a", c.a[1].payload, c.a[1].payload_len, NULL), KW_OK);
    KWT_EQ(drain(b, &c), 1);
    KWT_CHECK(same_key(&c.a[0].key, &k1));
    /* a leaves: now b is the longest present. */
    KWT_ERR(kw_mka_peer_left(b, 4000, "a"), KW_OK);
    KWT_ERR(kw_mka_rotate(b, 4000), KW_OK);
    KWT_EQ(drain(b, &c), 1); /* no peers: only the KEY */
    KWT_EQ(c.a[0].key.epoch, 2);
    /* The epoch cannot pass its maximum. */
    kw_media_key top = key_of(UINT32_MAX, 1, 1, 1);
    KWT_ERR(recv_str(b, 5000, "a", key_json(&top, "", buf, sizeof buf)), KW_OK);
    drain(b, &c);
    KWT_ERR(kw_mka_peer_left(b, 5000, "a"), KW_OK);
    KWT_ERR(kw_mka_rotate(b, 5001), KW_ERR_STATE);
    KWT_EQ(drain(b, &c), 0);
    kw_mka_free(a);
    kw_mka_free(b);
}

/* Every bad payload is refused with its code and changes nothing, in every state. */
static void sm_bad_payloads_change_nothing(void)
{
    static const struct {
        const char *json;
        kw_err want;
    } bad[] = {
        {"not json", KW_ERR_JSON},
        {"{\"type\":\"media_key_request\",\"request_id\":\"" RID "\",\"extra\":true}",
         KW_ERR_UNKNOWN_FIELD},
        {KEYMSG("null", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"", "9", "0",
                "\"0000000000000000\""),
         KW_ERR_BASE64},
        {KEYMSG("null", "\"" K44 "\"", "9", "-5", "\"0000000000000000\""), KW_ERR_INVALID_ARGUMENT},
        {"{\"type\":\"media_key_unavailable\",\"request_id\":\"xyz\"}", KW_ERR_INVALID_ARGUMENT},
    };
    for (int st = 0; st < 2; st++) {
        test_rng r;
        kw_random rnd = make_rnd(&r, 11);
        kw_mka *m = NULL;
        captured c;
        KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
        kw_mka_peer peers[] = {{"p1", 1}};
        KWT_ERR(kw_mka_start(m, 0, peers, st == 0 ? 1 : 0), KW_OK);
        drain(m, &c);
        kw_mka_state state = kw_mka_get_state(m);
        int64_t deadline = kw_mka_deadline(m);
        kw_media_key before, after;
        kw_err had = kw_mka_current_key(m, &before);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            kw_error e;
            KWT_ERR(kw_mka_receive(m, 100, "p1", bad[i].json, strlen(bad[i].json), &e),
                    bad[i].want);
            KWT_CHECK(e.detail[0] != '\0');
            KWT_EQ(drain(m, &c), 0);
            KWT_EQ(kw_mka_get_state(m), state);
            KWT_EQ(kw_mka_deadline(m), deadline);
            KWT_ERR(kw_mka_current_key(m, &after), had);
            if (had == KW_OK)
                KWT_CHECK(same_key(&before, &after));
        }
        kw_mka_free(m);
    }
}

/* Randomness fails on its Nth call: the input fails with that error and changes nothing. */
static void sm_random_failure_changes_nothing(void)
{
    for (int n = 1; n <= 2; n++) {
        test_rng r;
        kw_random rnd = make_rnd(&r, 12);
        kw_mka *m = NULL;
        captured c;
        KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
        r.fail_at = n;
        KWT_ERR(kw_mka_start(m, 0, NULL, 0), KW_ERR_CRYPTO);
        KWT_EQ(kw_mka_get_state(m), KW_MKA_IDLE);
        KWT_EQ(drain(m, &c), 0);
        r.fail_at = 0;
        KWT_ERR(kw_mka_start(m, 0, NULL, 0), KW_OK);
        KWT_EQ(drain(m, &c), 1);
        kw_mka_free(m);
    }
    /* A timeout whose next request cannot get a request id: nothing moves until it can. */
    for (int n = 1; n <= 3; n++) {
        test_rng r;
        kw_random rnd = make_rnd(&r, 13);
        kw_mka *m = NULL;
        captured c;
        KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
        kw_mka_peer peers[] = {{"p1", 1}, {"p2", 2}};
        KWT_ERR(kw_mka_start(m, 0, peers, 2), KW_OK);
        drain(m, &c);
        r.fail_at = r.calls + n; /* key bytes, key id, then request id */
        KWT_ERR(kw_mka_tick(m, 5000), KW_ERR_CRYPTO);
        KWT_EQ(drain(m, &c), 0);
        KWT_EQ(kw_mka_deadline(m), 5000);
        KWT_EQ(kw_mka_get_state(m), KW_MKA_REQUESTING);
        r.fail_at = 0;
        KWT_ERR(kw_mka_tick(m, 5001), KW_OK);
        KWT_EQ(drain(m, &c), 1);
        KWT_STREQ(c.a[0].to, "p2");
        kw_mka_free(m);
    }
}

/* The peer limit and the undrained-queue limit, at their boundaries. */
static void sm_limits(void)
{
    test_rng r;
    kw_random rnd = make_rnd(&r, 14);
    kw_mka *m = NULL;
    KWT_ERR(kw_mka_new("me", &rnd, &m), KW_OK);
    KWT_ERR(kw_mka_start(m, 0, NULL, 0), KW_OK);
    char id[32];
    for (int i = 0; i < KW_MKA_PEERS_MAX; i++) {
        snprintf(id, sizeof id, "p%d", i);
        if (kw_mka_peer_joined(m, 1, id, 1 + i) != KW_OK) {
            KWT_CHECK(!"peer_joined failed below the limit");
            break;
        }
    }
    KWT_ERR(kw_mka_peer_joined(m, 1, "one-too-many", 5000), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_mka_peer_joined(m, 1, "p7", 5000), KW_OK); /* a known one re-joining is fine */
    char buf[KW_MKA_PAYLOAD_MAX + 1];
    KWT_ERR(recv_str(m, 1, "stranger", short_json(KW_MKA_MSG_REQUEST, RID, buf, sizeof buf)),
            KW_ERR_INVALID_ARGUMENT);
    /* 1 KEY + 1025 sends queued (undrained); one more rotation would pass the limit. */
    KWT_ERR(kw_mka_rotate(m, 2), KW_OK);
    kw_media_key k;
    KWT_ERR(kw_mka_current_key(m, &k), KW_OK);
    KWT_ERR(kw_mka_rotate(m, 3), KW_ERR_STATE);
    kw_media_key k2;
    KWT_ERR(kw_mka_current_key(m, &k2), KW_OK);
    KWT_CHECK(same_key(&k, &k2));
    long n = 0;
    kw_mka_action a;
    while (kw_mka_next_action(m, &a)) {
        n++;
        kw_mka_action_wipe(&a);
    }
    /* start's KEY, the joins, the re-join, rotation's KEY and its sends */
    KWT_EQ(n, 1 + KW_MKA_PEERS_MAX + 1 + 1 + KW_MKA_PEERS_MAX);
    KWT_ERR(kw_mka_rotate(m, 3), KW_OK); /* drained: fine again */
    kw_mka_free(m);
}

/* ---- scenarios over the simulated meeting (seed 003, PHASE 5) ------------------------- */

#define SEED_CHECK(cond, seed)                                                                     \
    if (!KWT_CHECK(cond)) {                                                                        \
        printf("    seed %d\n", (int)(seed));                                                      \
        bus_free(&b);                                                                              \
        break;                                                                                     \
    }

static int64_t delay_for(int seed)
{
    static const int64_t d[] = {0, 40, 300, 1500};
    return d[seed % 4];
}

/* Scenario 1: the first participant makes the key alone, at once, with its timestamp. */
static void scenario1_first_participant(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 100, delay_for(seed));
        int a = bus_add(&b, "userA:1");
        b.now = 1000 + seed;
        SEED_CHECK(bus_start(&b, a) == KW_OK, seed);
        SEED_CHECK(kw_mka_get_state(b.p[a].m) == KW_MKA_HAVE_KEY, seed);
        SEED_CHECK(b.p[a].keys_seen == 1 && b.p[a].last_key.created_ms == 1000 + seed, seed);
        SEED_CHECK(b.p[a].last_key.epoch == 0 && b.sent == 0, seed); /* no exchange */
        SEED_CHECK(bus_quiesce(&b) && b.p[a].present && b.unexpected == 0, seed);
        bus_free(&b);
    }
}

/* Starts i, lets the meeting settle. */
static void settle_start(bus *b, int i)
{
    if (bus_start(b, i) != KW_OK)
        b->unexpected++;
    bus_quiesce(b);
}

/* Scenario 2: B gets A's key: same bytes, same timestamp. */
static void scenario2_two_users(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 200, delay_for(seed));
        int a = bus_add(&b, "userA:1"), bb = bus_add(&b, "userB:1");
        settle_start(&b, a);
        b.now += 1000;
        SEED_CHECK(bus_start(&b, bb) == KW_OK, seed);
        SEED_CHECK(kw_mka_get_state(b.p[bb].m) == KW_MKA_REQUESTING, seed);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && b.p[bb].present, seed);
        SEED_CHECK(same_key(&k, &b.p[a].last_key) && k.created_ms == 1000, seed);
        SEED_CHECK(b.p[a].keys_seen == 1 && b.p[bb].keys_seen == 1, seed); /* no churn */
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/*
 * Scenario 3: n participants open the meeting at once, all see nobody and make a key at
 * their own time (A 1000, B 1005, C 1010 ... or all at 1000 when tie), then register in a
 * random order at random times. All must end with the best key: the oldest, or on a
 * created_ms tie the smallest key_id.
 */
static void simultaneous(int n, bool tie)
{
    static const char *const ids[] = {"userA:1", "userB:1", "userC:1", "userD:1", "userE:1"};
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 300 + (uint64_t)n * 1000 + tie, delay_for(seed));
        kw_media_key best = key_of(0, 0, 0, 0);
        bool ok = true;
        for (int i = 0; i < n; i++) {
            int p = bus_add(&b, ids[i]);
            b.p[p].auto_register = false;
            b.now = 1000 + (tie ? 0 : 5 * i);
            ok = ok && bus_start(&b, p) == KW_OK && b.p[p].keys_seen == 1;
            if (i == 0 || kw_media_key_compare(&b.p[p].last_key, &best) < 0)
                best = b.p[p].last_key;
        }
        SEED_CHECK(ok, seed);
        if (!tie)
            SEED_CHECK(same_key(&best, &b.p[0].last_key), seed); /* A's is the oldest */
        for (int i = 0; i < n; i++)
            bus_register_later(&b, i, 2 * b.max_delay + 50);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k), seed);
        SEED_CHECK(same_key(&k, &best), seed);
        bool all = true;
        for (int i = 0; i < n; i++)
            all = all && b.p[i].present && same_key(&b.p[i].last_key, &best);
        SEED_CHECK(all, seed);
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

static void scenario3_three_simultaneous_oldest_wins(void)
{
    simultaneous(3, false);
}

static void scenario3_created_tie_key_id_decides(void)
{
    simultaneous(3, true);
}

static void scenario3_five_simultaneous(void)
{
    simultaneous(5, false);
    simultaneous(5, true);
}

/* Scenario 4: A (first) leaves; B keeps the key and hands the original to C. */
static void scenario4_first_leaves_key_continues(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 400, delay_for(seed));
        int a = bus_add(&b, "userA:1"), bb = bus_add(&b, "userB:1"), c = bus_add(&b, "userC:1");
        settle_start(&b, a);
        kw_media_key original = b.p[a].last_key;
        b.now += 500;
        settle_start(&b, bb);
        b.now += 500;
        bus_leave(&b, a);
        if (seed % 2) /* sometimes C checks before B has even heard that A left */
            bus_quiesce(&b);
        b.now += 10;
        SEED_CHECK(bus_start(&b, c) == KW_OK, seed);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && b.p[c].present && !b.p[a].present, seed);
        SEED_CHECK(same_key(&k, &original) && k.created_ms == 1000, seed);
        SEED_CHECK(b.p[bb].keys_seen == 1, seed); /* never regenerated */
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/* Scenario 5: everyone left; the next participant starts a new session with a new key. */
static void scenario5_all_left_new_key(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 500, delay_for(seed));
        int ids[4] = {bus_add(&b, "userA:1"), bus_add(&b, "userB:1"), bus_add(&b, "userC:1"),
                      bus_add(&b, "userD:1")};
        for (int i = 0; i < 3; i++) {
            settle_start(&b, ids[i]);
            b.now += 100;
        }
        kw_media_key old;
        SEED_CHECK(bus_agree(&b, &old) && old.created_ms == 1000, seed);
        for (int i = 0; i < 3; i++)
            bus_leave(&b, ids[(i + seed) % 3]);
        bus_quiesce(&b);
        b.now += 1000 + seed; /* later */
        SEED_CHECK(bus_start(&b, ids[3]) == KW_OK, seed);
        SEED_CHECK(kw_mka_get_state(b.p[ids[3]].m) == KW_MKA_HAVE_KEY, seed); /* first again */
        kw_media_key fresh = b.p[ids[3]].last_key;
        SEED_CHECK(memcmp(fresh.key, old.key, sizeof old.key) != 0 && fresh.key_id != old.key_id,
                   seed);
        SEED_CHECK(fresh.created_ms == b.now && fresh.epoch == 0, seed);
        /* A returns later: it joins the new session's key, not its old one. */
        b.now += 100;
        settle_start(&b, ids[0]);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && same_key(&k, &fresh) && b.p[ids[0]].present, seed);
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/* Scenario 6: A loses the connection (reset), comes back and gets the same key from B. */
static void scenario6_reconnection(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 600, delay_for(seed));
        int a = bus_add(&b, "userA:1"), bb = bus_add(&b, "userB:1");
        settle_start(&b, a);
        kw_media_key original = b.p[a].last_key;
        b.now += 300;
        settle_start(&b, bb);
        bus_leave(&b, a);
        if (seed % 2)
            bus_quiesce(&b); /* else A is back before B has processed the leave */
        b.now += 50;
        kw_media_key gone;
        SEED_CHECK(kw_mka_current_key(b.p[a].m, &gone) == KW_ERR_NO_KEY, seed);
        b.p[a].keys_seen = 0;
        SEED_CHECK(bus_start(&b, a) == KW_OK, seed);
        SEED_CHECK(kw_mka_get_state(b.p[a].m) == KW_MKA_REQUESTING, seed);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && b.p[a].present, seed);
        SEED_CHECK(same_key(&k, &original) && b.p[a].keys_seen == 1, seed);
        SEED_CHECK(b.p[bb].keys_seen == 1, seed); /* no key mismatch, no change at B */
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/* Rotation: only the longest present may; all converge on epoch + 1; a stale epoch loses. */
static void scenario_rotation(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 700, delay_for(seed));
        int a = bus_add(&b, "userA:1"), bb = bus_add(&b, "userB:1"), c = bus_add(&b, "userC:1"),
            d = bus_add(&b, "userD:1");
        settle_start(&b, a);
        b.now += 100;
        settle_start(&b, bb);
        b.now += 100;
        settle_start(&b, c);
        kw_media_key k0;
        SEED_CHECK(bus_agree(&b, &k0), seed);
        char stale[KW_MKA_PAYLOAD_MAX + 1];
        key_json(&k0, "", stale, sizeof stale);

        SEED_CHECK(bus_rotate(&b, bb) == KW_ERR_NOT_ROTATOR, seed);
        SEED_CHECK(bus_rotate(&b, c) == KW_ERR_NOT_ROTATOR, seed);
        b.now += 100;
        /* D starts while the rotation is in flight. */
        SEED_CHECK(bus_rotate(&b, a) == KW_OK, seed);
        kw_media_key k1 = b.p[a].last_key;
        SEED_CHECK(k1.epoch == 1, seed);
        SEED_CHECK(bus_start(&b, d) == KW_OK, seed);
        /* The old epoch-0 key reaches C late, from B. */
        bus_inject(&b, bb, c, stale, 3 * b.max_delay + 7);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && same_key(&k, &k1) && b.p[d].present, seed);
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);

        /* A leaves: B (now longest present) may rotate, C still may not. */
        bus_leave(&b, a);
        bus_quiesce(&b);
        SEED_CHECK(bus_rotate(&b, c) == KW_ERR_NOT_ROTATOR, seed);
        SEED_CHECK(bus_rotate(&b, bb) == KW_OK, seed);
        bus_quiesce(&b);
        SEED_CHECK(bus_agree(&b, &k) && k.epoch == 2 && same_key(&k, &b.p[bb].last_key), seed);
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/*
 * The case the lead's "only the creator announces to a joiner" rule misses: A, B, C all
 * see an empty meeting. A and B register, B adopts A's key; A leaves; then C registers.
 * B (not the creator) must still send C its key, or B and C never agree.
 */
static void scenario_creator_left_before_late_simultaneous_joiner(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 800, delay_for(seed));
        int a = bus_add(&b, "userA:1"), bb = bus_add(&b, "userB:1"), c = bus_add(&b, "userC:1");
        bool ok = true;
        for (int i = 0; i < 3; i++) {
            b.p[i].auto_register = false;
            b.now = 1000 + 5 * ((i + seed) % 3); /* who is oldest varies */
            ok = ok && bus_start(&b, i) == KW_OK;
        }
        SEED_CHECK(ok, seed);
        bus_register(&b, a);
        bus_register(&b, bb);
        bus_quiesce(&b);
        bus_leave(&b, a);
        bus_quiesce(&b);
        bus_register(&b, c);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && b.p[bb].present && b.p[c].present, seed);
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/*
 * Why a participant passes on a better key it adopts: C made the oldest key and told X
 * (slowly); X, holding its own simultaneous key, gave that one to Z; C left. Only X
 * forwarding C's key when it finally arrives brings Z along.
 */
static void scenario_improvement_is_passed_on(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 850, 0);
        b.server_delay = 0;
        int c = bus_add(&b, "userC:1"), x = bus_add(&b, "userX:1"), z = bus_add(&b, "userZ:1");
        b.p[c].auto_register = b.p[x].auto_register = false;
        bool ok = bus_start(&b, c) == KW_OK; /* 1000: the oldest key */
        b.now += 5;
        ok = ok && bus_start(&b, x) == KW_OK; /* 1005: sees nobody either */
        kw_media_key kc = b.p[c].last_key, kx = b.p[x].last_key;
        b.now += 5;
        bus_register(&b, c);
        b.now += 10;
        b.min_delay = b.max_delay = 4000 + seed; /* C's announce to X is slow */
        bus_register(&b, x);
        bus_run_until(&b, b.now);
        b.min_delay = b.max_delay = seed % 50;
        bus_leave(&b, c);
        b.now += 10;
        ok = ok && bus_start(&b, z) == KW_OK; /* asks X, gets X's own key first */
        SEED_CHECK(ok, seed);
        bus_run_until(&b, b.now + 1000);
        SEED_CHECK(same_key(&b.p[z].last_key, &kx) && b.p[z].present, seed);
        bus_quiesce(&b);
        kw_media_key k;
        SEED_CHECK(bus_agree(&b, &k) && same_key(&k, &kc), seed);
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/*
 * Seed 001: the asked member's device vanished without a leave (the server still lists
 * it): after 5 s the next member is tried. With both members silent: A, B, A, then
 * FAILED at 15 s.
 */
static void scenario_timeout_next_member(void)
{
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 900, delay_for(seed));
        int a = bus_add(&b, "userA:1"), bb = bus_add(&b, "userB:1"), c = bus_add(&b, "userC:1");
        settle_start(&b, a);
        b.now += 100;
        settle_start(&b, bb);
        bool both = seed % 2;
        b.p[a].muted = true;
        b.p[bb].muted = both;
        int64_t t0 = b.now;
        SEED_CHECK(bus_start(&b, c) == KW_OK, seed);
        SEED_CHECK(kw_mka_deadline(b.p[c].m) == t0 + 5000, seed);
        bus_quiesce(&b);
        kw_media_key k;
        if (!both) {
            SEED_CHECK(kw_mka_current_key(b.p[c].m, &k) == KW_OK, seed);
            SEED_CHECK(same_key(&k, &b.p[bb].last_key) && b.p[c].failed_seen == 0, seed);
            SEED_CHECK(b.p[c].key_at >= t0 + 5000 && b.p[c].present, seed);
        } else {
            SEED_CHECK(kw_mka_current_key(b.p[c].m, &k) == KW_ERR_NO_KEY, seed);
            SEED_CHECK(kw_mka_get_state(b.p[c].m) == KW_MKA_FAILED, seed);
            SEED_CHECK(b.p[c].failed_seen == 1 && b.p[c].failed_at == t0 + 15000, seed);
            SEED_CHECK(!b.p[c].present, seed);
        }
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
}

/*
 * Random chaos: six participants start (sometimes several at once), leave, come back,
 * rotate or give up, with messages delayed up to 7 s (longer than the request timeout,
 * so answers also arrive after their request was given up). After quiescence everyone
 * present holds the same key.
 */
static void chaos_run(bool register_first)
{
    static const int64_t delays[] = {20, 300, 2000, 7000};
    int failed_total = 0, rotations = 0, keyless = 0;
    for (int seed = 0; seed < SEEDS; seed++) {
        bus b;
        bus_init(&b, (uint64_t)seed + 5000 + (register_first ? 100000 : 0), delays[seed % 4]);
        char id[16];
        for (int i = 0; i < 6; i++) {
            snprintf(id, sizeof id, "p%d:%d", i, seed % 3);
            b.p[bus_add(&b, id)].register_first = register_first;
        }
        int64_t t = b.now;
        bool ok = true;
        for (int step = 0; step < 60 && ok; step++) {
            t += bus_uniform(&b.rng, 3000);
            bus_run_until(&b, t);
            int i = (int)bus_uniform(&b.rng, b.np - 1);
            int64_t r = bus_uniform(&b.rng, 99);
            bus_part *p = &b.p[i];
            kw_mka_state st = kw_mka_get_state(p->m);
            if (!p->started) {
                ok = bus_start(&b, i) == KW_OK;
                for (int j = 0; j < b.np && r < 30; j++) /* simultaneous starts */
                    if (!b.p[j].started)
                        ok = ok && bus_start(&b, j) == KW_OK;
            } else if (st == KW_MKA_FAILED && r < 50) {
                ok = bus_start(&b, i) == KW_OK; /* the user presses "retry" */
            } else if (p->present) {
                if (r < 35)
                    bus_leave(&b, i);
                else if (r < 55) {
                    kw_err rc = bus_rotate(&b, i);
                    /* register_first: a present participant may still have no key */
                    ok = rc == KW_OK || rc == KW_ERR_NOT_ROTATOR ||
                         (rc == KW_ERR_STATE && st != KW_MKA_HAVE_KEY);
                    rotations += rc == KW_OK;
                }
            } else if (r < 30) {
                bus_leave(&b, i); /* gives up while waiting */
            }
        }
        SEED_CHECK(ok, seed);
        SEED_CHECK(bus_quiesce(&b), seed);
        kw_media_key k;
        /* Registered before having a key, a participant may end FAILED while present. */
        SEED_CHECK(bus_agree_some(&b, register_first, &k), seed);
        for (int i = 0; i < b.np; i++) {
            failed_total += b.p[i].failed_seen;
            keyless += b.p[i].present && kw_mka_get_state(b.p[i].m) != KW_MKA_HAVE_KEY;
        }
        SEED_CHECK(b.unexpected == 0 && b.steps_exceeded == 0, seed);
        bus_free(&b);
    }
    printf("    chaos: %d seeds, %d rotations, %d FAILED outcomes, %d present without key\n", SEEDS,
           rotations, failed_total, keyless);
    KWT_CHECK(rotations > 0); /* the run did exercise rotation */
}

static void chaos(void)
{
    chaos_run(false);
}

/* The same with participants that register before they have a key (not the seed's flow,
 * but a caller may do it): joins then reach participants that are still requesting. */
static void chaos_register_first(void)
{
    chaos_run(true);
}

/* The fingerprint is SHA-256 of the key bytes, first 8 bytes, grouped by 2 bytes:
 * SHA-256 of 32 zero bytes is 66687aadf862bd77 6c8fc1... (computed with sha256sum). */
static void fingerprint_known_value_and_sensitivity(void)
{
    kw_media_key k;
    memset(&k, 0, sizeof k);
    char fp[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1];
    KWT_ERR(kw_media_key_fingerprint(&k, fp), KW_OK);
    KWT_STREQ(fp, "6668 7aad f862 bd77");
    KWT_EQ(strlen(fp), (size_t)KW_MEDIA_KEY_FINGERPRINT_CHARS);
    k.epoch = 5; /* metadata is not part of it: same bytes, same fingerprint */
    char fp2[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1];
    KWT_ERR(kw_media_key_fingerprint(&k, fp2), KW_OK);
    KWT_STREQ(fp2, fp);
    k.key[31] ^= 1;
    KWT_ERR(kw_media_key_fingerprint(&k, fp2), KW_OK);
    KWT_CHECK(strcmp(fp2, fp) != 0);
    KWT_ERR(kw_media_key_fingerprint(NULL, fp2), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_media_key_fingerprint(&k, NULL), KW_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    KWT_RUN(codec_known_answer);
    KWT_RUN(codec_round_trip);
    KWT_RUN(codec_encode_errors);
    KWT_RUN(codec_strict_table);
    KWT_RUN(order_key_id_breaks_created_tie);
    KWT_RUN(order_created_differs_by_one);
    KWT_RUN(order_epoch_beats_age);
    KWT_RUN(order_bytes_last_and_identical);
    KWT_RUN(key_generate);
    KWT_RUN(sm_first_creates_key);
    KWT_RUN(sm_argument_checks);
    KWT_RUN(sm_request_goes_to_longest_present);
    KWT_RUN(sm_timeout_tries_next_then_fails);
    KWT_RUN(sm_timeout_cycles_fewer_than_three);
    KWT_RUN(sm_target_leaving_counts_at_once);
    KWT_RUN(sm_any_key_ends_request_and_owed_peers);
    KWT_RUN(sm_have_key_rules);
    KWT_RUN(sm_rotation);
    KWT_RUN(sm_bad_payloads_change_nothing);
    KWT_RUN(sm_random_failure_changes_nothing);
    KWT_RUN(sm_limits);
    KWT_RUN(scenario1_first_participant);
    KWT_RUN(scenario2_two_users);
    KWT_RUN(scenario3_three_simultaneous_oldest_wins);
    KWT_RUN(scenario3_created_tie_key_id_decides);
    KWT_RUN(scenario3_five_simultaneous);
    KWT_RUN(scenario4_first_leaves_key_continues);
    KWT_RUN(scenario5_all_left_new_key);
    KWT_RUN(scenario6_reconnection);
    KWT_RUN(scenario_rotation);
    KWT_RUN(scenario_creator_left_before_late_simultaneous_joiner);
    KWT_RUN(scenario_improvement_is_passed_on);
    KWT_RUN(scenario_timeout_next_member);
    KWT_RUN(chaos);
    KWT_RUN(chaos_register_first);
    KWT_RUN(fingerprint_known_value_and_sensitivity);
    return kwt_finish();
}
