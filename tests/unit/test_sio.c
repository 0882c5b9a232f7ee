/*
 * test_sio.c — the Engine.IO v4 / Socket.IO v5 codec (eio.h, sio.h, lib/sio_json.h).
 *
 * Vectors: the "Packet encoding" examples of the Socket.IO v5 protocol document and the
 * frames its compliance test suite sends (socketio/socket.io docs/socket.io-protocol/
 * v5-current.md and v5-test-suite/test-suite.js), the open-packet example of the Engine.IO
 * v4 document (docs/engine.io-protocol/v4-current.md), keywave's own events, then tables
 * of malformed packets and the boundaries of every limit and timer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keywave/eio.h"
#include "keywave/sio.h"
#include "kwtest.h"
#include "sio_json.h"

#define LIT(s) (s), (sizeof(s) - 1)

/* ---- Engine.IO frames ------------------------------------------------------------------ */

struct eio_vec {
    const char *frame;
    size_t len; /* 0: strlen(frame) */
    int binary;
    kw_err want;
    kw_eio_type type;
    const char *data;
};

static void eio_decode_table(void)
{
    static const struct eio_vec v[] = {
        {"0{\"sid\":\"a\"}", 0, 0, KW_OK, KW_EIO_OPEN, "{\"sid\":\"a\"}"},
        {"1", 0, 0, KW_OK, KW_EIO_CLOSE, ""},
        {"2", 0, 0, KW_OK, KW_EIO_PING, ""},
        {"2probe", 0, 0, KW_OK, KW_EIO_PING, "probe"},
        {"3", 0, 0, KW_OK, KW_EIO_PONG, ""},
        {"3probe", 0, 0, KW_OK, KW_EIO_PONG, "probe"},
        {"4hello", 0, 0, KW_OK, KW_EIO_MESSAGE, "hello"},
        {"42[\"foo\"]", 0, 0, KW_OK, KW_EIO_MESSAGE, "2[\"foo\"]"},
        {"4", 0, 0, KW_OK, KW_EIO_MESSAGE, ""},
        {"6", 0, 0, KW_OK, KW_EIO_NOOP, ""},
        /* ping data: 32 printable bytes pass, 33 do not */
        {"3abcdefghijklmnopqrstuvwxyz012345", 0, 0, KW_OK, KW_EIO_PONG,
         "abcdefghijklmnopqrstuvwxyz012345"},
        {"3abcdefghijklmnopqrstuvwxyz0123456", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"5", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"7", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"x4", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"b4AQID", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL}, /* polling's base64 form */
        {"1x", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"6x", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"2pro be", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"3\x01", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"2\xc3\xa9", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"0", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"0[]", 0, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"4\x01\x02\x03", 0, 1, KW_ERR_INVALID_MESSAGE, 0, NULL}, /* a binary frame */
        {"42[\"foo\"]", 0, 1, KW_ERR_INVALID_MESSAGE, 0, NULL},
        {"\0", 1, 0, KW_ERR_INVALID_MESSAGE, 0, NULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = v[i].len ? v[i].len : strlen(v[i].frame);
        kw_eio_packet p;
        kw_error e;
        kw_err rc = kw_eio_decode(v[i].frame, len, v[i].binary, KW_EIO_MAX_PAYLOAD, &p, &e);
        if (rc != v[i].want)
            printf("  eio vector %zu: \"%s\"\n", i, v[i].frame);
        KWT_ERR(rc, v[i].want);
        if (rc == KW_OK && v[i].want == KW_OK) {
            KWT_EQ(p.type, v[i].type);
            KWT_EQ(p.data_len, strlen(v[i].data));
            KWT_MEMEQ(p.data, v[i].data, p.data_len);
            KWT_CHECK(p.data == v[i].frame + 1); /* borrowed, not copied */
        }
        if (rc != KW_OK)
            KWT_CHECK(e.detail[0] != '\0');
    }
}

/* maxPayload: a frame of exactly the limit passes, one byte more does not. */
static void eio_max_payload_boundary(void)
{
    size_t max = KW_EIO_MAX_PAYLOAD;
    char *f = malloc(max + 1);
    if (!KWT_CHECK(f != NULL))
        return;
    memset(f, 'x', max + 1);
    f[0] = '4';
    kw_eio_packet p;
    kw_error e;
    KWT_ERR(kw_eio_decode(f, max, 0, max, &p, &e), KW_OK);
    KWT_EQ(p.data_len, max - 1);
    KWT_ERR(kw_eio_decode(f, max + 1, 0, max, &p, &e), KW_ERR_PAYLOAD_TOO_LARGE);
    /* The limit is checked before anything else, binary or not. */
    KWT_ERR(kw_eio_decode(f, max + 1, 1, max, &p, &e), KW_ERR_PAYLOAD_TOO_LARGE);
    KWT_ERR(kw_eio_decode("4ab", 3, 0, 3, &p, &e), KW_OK);
    KWT_ERR(kw_eio_decode("4abc", 4, 0, 3, &p, &e), KW_ERR_PAYLOAD_TOO_LARGE);
    KWT_ERR(kw_eio_decode("4", 1, 0, 0, &p, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_decode(NULL, 1, 0, max, &p, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_decode("4", 1, 0, max, NULL, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_EQ(kw_eio_max_payload(), 1000000);
    free(f);
}

static void eio_encode_frames(void)
{
    char buf[16];
    size_t n = 0;
    kw_error e;
    KWT_ERR(kw_eio_encode(KW_EIO_PING, NULL, 0, buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "2");
    KWT_EQ(n, 1);
    KWT_ERR(kw_eio_encode(KW_EIO_PONG, LIT("probe"), buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "3probe");
    KWT_ERR(kw_eio_encode(KW_EIO_CLOSE, NULL, 0, buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "1");
    /* Size query, then the exact capacity (length + NUL), then one byte short. */
    KWT_ERR(kw_eio_encode(KW_EIO_MESSAGE, LIT("hello"), NULL, 0, &n, &e), KW_ERR_BUFFER_TOO_SMALL);
    KWT_EQ(n, 6);
    memset(buf, '#', sizeof buf);
    KWT_ERR(kw_eio_encode(KW_EIO_MESSAGE, LIT("hello"), buf, 7, &n, &e), KW_OK);
    KWT_STREQ(buf, "4hello");
    KWT_EQ(buf[7], '#');
    memset(buf, '#', sizeof buf);
    KWT_ERR(kw_eio_encode(KW_EIO_MESSAGE, LIT("hello"), buf, 6, &n, &e), KW_ERR_BUFFER_TOO_SMALL);
    KWT_EQ(n, 6);
    KWT_EQ(buf[6], '#'); /* nothing written past cap */
    KWT_ERR(kw_eio_encode((kw_eio_type)7, NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_encode(KW_EIO_PING, NULL, 0, buf, sizeof buf, NULL, &e),
            KW_ERR_INVALID_ARGUMENT);
}

/* ---- the open handshake ---------------------------------------------------------------- */

static void eio_open_round_trip(void)
{
    kw_eio_open o = {"lv_VI97HAXpY6yYWAAAC", KW_EIO_PING_INTERVAL_MS, KW_EIO_PING_TIMEOUT_MS,
                     KW_EIO_MAX_PAYLOAD};
    char buf[256];
    size_t n = 0;
    kw_error e;
    KWT_ERR(kw_eio_encode_open(&o, buf, sizeof buf, &n, &e), KW_OK);
    /* DESIGN.md section 8's open packet, with the sid of the protocol document. */
    static const char want[] = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[],"
                               "\"pingInterval\":25000,\"pingTimeout\":20000,"
                               "\"maxPayload\":1000000}";
    KWT_STREQ(buf, want);
    KWT_EQ(n, sizeof want - 1);
    kw_eio_packet p;
    KWT_ERR(kw_eio_decode(buf, n, 0, KW_EIO_MAX_PAYLOAD, &p, &e), KW_OK);
    KWT_EQ(p.type, KW_EIO_OPEN);
    kw_eio_open back;
    KWT_ERR(kw_eio_decode_open(p.data, p.data_len, &back, &e), KW_OK);
    KWT_STREQ(back.sid, o.sid);
    KWT_EQ(back.ping_interval_ms, 25000);
    KWT_EQ(back.ping_timeout_ms, 20000);
    KWT_EQ(back.max_payload, 1000000);
    /* The document's own example, which offers the websocket upgrade from polling. */
    static const char doc[] = "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
                              "\"pingInterval\":25000,\"pingTimeout\":5000,\"maxPayload\":1000000}";
    KWT_ERR(kw_eio_decode_open(LIT(doc), &back, &e), KW_OK);
    KWT_EQ(back.ping_timeout_ms, 5000);
    /* 64-character sid and the largest numbers. */
    memset(o.sid, 'Z', KW_EIO_SID_MAX);
    o.sid[KW_EIO_SID_MAX] = '\0';
    o.ping_interval_ms = o.ping_timeout_ms = o.max_payload = KW_EIO_TIMING_MAX_MS;
    KWT_ERR(kw_eio_encode_open(&o, buf, sizeof buf, &n, &e), KW_OK);
    KWT_ERR(kw_eio_decode_open(buf + 1, n - 1, &back, &e), KW_OK);
    KWT_STREQ(back.sid, o.sid);
    KWT_EQ(back.max_payload, KW_EIO_TIMING_MAX_MS);
    /* Size query gives the length; one byte short fails. */
    KWT_ERR(kw_eio_encode_open(&o, NULL, 0, &n, &e), KW_ERR_BUFFER_TOO_SMALL);
    KWT_ERR(kw_eio_encode_open(&o, buf, n, &n, &e), KW_ERR_BUFFER_TOO_SMALL);
    KWT_ERR(kw_eio_encode_open(&o, buf, n + 1, &n, &e), KW_OK);
}

static void eio_open_rejects(void)
{
    char buf[256];
    size_t n;
    kw_error e;
    kw_eio_open bad[] = {
        {"", 25000, 20000, 1000000},        {"a\"b", 25000, 20000, 1000000},
        {"a b", 25000, 20000, 1000000},     {"abc", 0, 20000, 1000000},
        {"abc", 25000, 0, 1000000},         {"abc", 25000, 20000, 0},
        {"abc", 25000, 20000, 2147483648u},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        KWT_ERR(kw_eio_encode_open(&bad[i], buf, sizeof buf, &n, &e), KW_ERR_INVALID_ARGUMENT);
    kw_eio_open unterminated;
    memset(&unterminated, 'a', sizeof unterminated);
    unterminated.ping_interval_ms = unterminated.ping_timeout_ms = 1;
    unterminated.max_payload = 1;
    KWT_ERR(kw_eio_encode_open(&unterminated, buf, sizeof buf, &n, &e), KW_ERR_INVALID_ARGUMENT);

#define OPEN_TAIL "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"
    static const char *const bad_json[] = {
        "",
        "[]",
        "{}",
        "not json",
        "{\"sid\":\"a\",\"upgrades\":[]," OPEN_TAIL " ",
        "{\"upgrades\":[]," OPEN_TAIL,                             /* no sid */
        "{\"sid\":\"a\",\"upgrades\":[],\"x\":1," OPEN_TAIL,       /* unknown field */
        "{\"sid\":1,\"upgrades\":[]," OPEN_TAIL,                   /* sid not a string */
        "{\"sid\":\"a/b\",\"upgrades\":[]," OPEN_TAIL,             /* sid charset */
        "{\"sid\":\"a\",\"upgrades\":{}," OPEN_TAIL,               /* upgrades not array */
        "{\"sid\":\"a\",\"upgrades\":[1]," OPEN_TAIL,              /* upgrade not string */
        "{\"sid\":\"a\",\"sid\":\"b\",\"upgrades\":[]," OPEN_TAIL, /* duplicate key */
        "{\"sid\":\"a\",\"upgrades\":[],\"pingInterval\":0,\"pingTimeout\":20000,"
        "\"maxPayload\":1000000}",
        "{\"sid\":\"a\",\"upgrades\":[],\"pingInterval\":25000.5,\"pingTimeout\":20000,"
        "\"maxPayload\":1000000}",
        "{\"sid\":\"a\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":-1,"
        "\"maxPayload\":1000000}",
        "{\"sid\":\"a\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
        "\"maxPayload\":2147483648}",
        "{\"sid\":\"a\",\"upgrades\":[],\"pingInterval\":\"25000\",\"pingTimeout\":20000,"
        "\"maxPayload\":1000000}",
    };
    kw_eio_open o;
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        kw_err rc = kw_eio_decode_open(bad_json[i], strlen(bad_json[i]), &o, &e);
        if (rc != KW_ERR_INVALID_MESSAGE)
            printf("  open vector %zu: %s\n", i, bad_json[i]);
        KWT_ERR(rc, KW_ERR_INVALID_MESSAGE);
    }
    static const char ok[] = "{\"sid\":\"a\",\"upgrades\":[]," OPEN_TAIL;
    KWT_ERR(kw_eio_decode_open(LIT(ok), &o, &e), KW_OK);
    KWT_ERR(kw_eio_decode_open(LIT(ok), NULL, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_check_sid(LIT("AZaz09_-")), KW_OK);
    KWT_ERR(kw_eio_check_sid(LIT("a=")), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_check_sid(NULL, 0), KW_ERR_INVALID_ARGUMENT);
}

/* ---- the query of GET /socket.io/ ------------------------------------------------------ */

#define POLLING_DETAIL "polling transport is not supported; use transports: ['websocket']"

static void eio_query_table(void)
{
    static const struct {
        const char *q;
        kw_err want;
        const char *detail; /* exact detail when set */
    } v[] = {
        {"EIO=4&transport=websocket", KW_OK, NULL},
        {"?EIO=4&transport=websocket", KW_OK, NULL},
        {"transport=websocket&EIO=4", KW_OK, NULL},
        {"EIO=4&transport=websocket&t=N8hyd6w&token=x", KW_OK, NULL},
        {"EIO=4&&transport=websocket&", KW_OK, NULL},
        {"EIO=4&transport=polling", KW_ERR_INVALID_ARGUMENT, POLLING_DETAIL},
        {"EIO=4&transport=polling&t=N8hyd6w", KW_ERR_INVALID_ARGUMENT, POLLING_DETAIL},
        {"EIO=3&transport=polling", KW_ERR_INVALID_ARGUMENT, POLLING_DETAIL},
        {"EIO=3&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=44&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=abc&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"eio=4&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4&transport=abc", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4&transport=websocketx", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4&transport=", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4&EIO=4&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4&transport=websocket&transport=websocket", KW_ERR_INVALID_ARGUMENT, NULL},
        {"EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC", KW_ERR_INVALID_ARGUMENT, NULL},
        {"", KW_ERR_INVALID_ARGUMENT, NULL},
        {"?", KW_ERR_INVALID_ARGUMENT, NULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        kw_error e;
        kw_error_clear(&e);
        kw_err rc = kw_eio_check_query(v[i].q, strlen(v[i].q), &e);
        if (rc != v[i].want)
            printf("  query %zu: \"%s\" (%s)\n", i, v[i].q, e.detail);
        KWT_ERR(rc, v[i].want);
        if (v[i].detail)
            KWT_STREQ(e.detail, v[i].detail);
        if (rc != KW_OK)
            KWT_CHECK(e.detail[0] != '\0');
    }
    kw_error e;
    KWT_ERR(kw_eio_check_query(NULL, 0, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_check_query(NULL, 3, &e), KW_ERR_INVALID_ARGUMENT);
    /* The query ends where len says, not at a NUL. */
    KWT_ERR(kw_eio_check_query("EIO=4&transport=websocketXX", 25, &e), KW_OK);
}

/* ---- Socket.IO packets ----------------------------------------------------------------- */

struct sio_vec {
    const char *text;
    kw_sio_type type;
    const char *nsp;
    int has_ack;
    uint32_t ack;
    const char *data;  /* NULL: none */
    const char *event; /* EVENT only */
    size_t argc;
    int canonical; /* re-encoding gives '4' + text exactly */
};

static const struct sio_vec sio_vectors[] = {
    /* The protocol document's "Packet encoding" examples. */
    {"0", KW_SIO_CONNECT, "/", 0, 0, NULL, NULL, 0, 1},
    {"0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", KW_SIO_CONNECT, "/admin", 0, 0,
     "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", NULL, 0, 1},
    {"4{\"message\":\"Not authorized\"}", KW_SIO_CONNECT_ERROR, "/", 0, 0,
     "{\"message\":\"Not authorized\"}", NULL, 0, 1},
    {"2[\"foo\"]", KW_SIO_EVENT, "/", 0, 0, "[\"foo\"]", "foo", 0, 1},
    {"2/admin,[\"bar\"]", KW_SIO_EVENT, "/admin", 0, 0, "[\"bar\"]", "bar", 0, 1},
    {"212[\"foo\"]", KW_SIO_EVENT, "/", 1, 12, "[\"foo\"]", "foo", 0, 1},
    {"3/admin,13[\"bar\"]", KW_SIO_ACK, "/admin", 1, 13, "[\"bar\"]", NULL, 1, 1},
    {"1", KW_SIO_DISCONNECT, "/", 0, 0, NULL, NULL, 0, 1},
    {"1/admin,", KW_SIO_DISCONNECT, "/admin", 0, 0, NULL, NULL, 0, 1},
    /* From the document's prose and sample session. */
    {"0{\"token\":\"123\"}", KW_SIO_CONNECT, "/", 0, 0, "{\"token\":\"123\"}", NULL, 0, 1},
    {"0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", KW_SIO_CONNECT, "/", 0, 0,
     "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", NULL, 0, 1},
    {"0/admin,", KW_SIO_CONNECT, "/admin", 0, 0, NULL, NULL, 0, 1},
    {"2[\"hey\",\"Jude\"]", KW_SIO_EVENT, "/", 0, 0, "[\"hey\",\"Jude\"]", "hey", 1, 1},
    {"2/admin,1[\"tellme\"]", KW_SIO_EVENT, "/admin", 1, 1, "[\"tellme\"]", "tellme", 0, 1},
    {"312[]", KW_SIO_ACK, "/", 1, 12, "[]", NULL, 0, 1},
    /* Frames of the protocol's compliance test suite. */
    {"0/custom,{\"token\":\"abc\"}", KW_SIO_CONNECT, "/custom", 0, 0, "{\"token\":\"abc\"}", NULL,
     0, 1},
    {"0/custom", KW_SIO_CONNECT, "/custom", 0, 0, NULL, NULL, 0, 0}, /* no comma: to the end */
    {"1/custom", KW_SIO_DISCONNECT, "/custom", 0, 0, NULL, NULL, 0, 0},
    {"4/random,{\"message\":\"Invalid namespace\"}", KW_SIO_CONNECT_ERROR, "/random", 0, 0,
     "{\"message\":\"Invalid namespace\"}", NULL, 0, 1},
    {"2[\"message\",1,\"2\",{\"3\":[true]}]", KW_SIO_EVENT, "/", 0, 0,
     "[\"message\",1,\"2\",{\"3\":[true]}]", "message", 3, 1},
    {"2456[\"message-with-ack\",1,\"2\",{\"3\":[true]}]", KW_SIO_EVENT, "/", 1, 456,
     "[\"message-with-ack\",1,\"2\",{\"3\":[true]}]", "message-with-ack", 3, 1},
    {"3456[1,\"2\",{\"3\":[true]}]", KW_SIO_ACK, "/", 1, 456, "[1,\"2\",{\"3\":[true]}]", NULL, 3,
     1},
    /* keywave's events (DESIGN.md section 8). */
    {"2/external,7[\"guest:signal_message\",{\"recipient_user_id\":\"u1\","
     "\"recipient_device_id\":2,\"encrypted_message\":\"AAEC\",\"message_type\":3}]",
     KW_SIO_EVENT, "/external", 1, 7,
     "[\"guest:signal_message\",{\"recipient_user_id\":\"u1\",\"recipient_device_id\":2,"
     "\"encrypted_message\":\"AAEC\",\"message_type\":3}]",
     "guest:signal_message", 1, 1},
    {"3/external,7[{\"error\":\"recipient_offline\"}]", KW_SIO_ACK, "/external", 1, 7,
     "[{\"error\":\"recipient_offline\"}]", NULL, 1, 1},
    {"0/external,{\"token\":\"s3cr3t\"}", KW_SIO_CONNECT, "/external", 0, 0,
     "{\"token\":\"s3cr3t\"}", NULL, 0, 1},
    {"4/external,{\"message\":\"unauthorized\",\"data\":{\"error\":\"unauthorized\"}}",
     KW_SIO_CONNECT_ERROR, "/external", 0, 0,
     "{\"message\":\"unauthorized\",\"data\":{\"error\":\"unauthorized\"}}", NULL, 0, 1},
    /* Boundaries that must pass. */
    {"20[\"x\"]", KW_SIO_EVENT, "/", 1, 0, "[\"x\"]", "x", 0, 1},
    {"24294967295[\"x\"]", KW_SIO_EVENT, "/", 1, 4294967295u, "[\"x\"]", "x", 0, 1},
    {"34294967295[]", KW_SIO_ACK, "/", 1, 4294967295u, "[]", NULL, 0, 1},
    {"2/,[\"x\"]", KW_SIO_EVENT, "/", 0, 0, "[\"x\"]", "x", 0, 0}, /* "/" spelled out */
    {"2[\"caf\\u00e9\"]", KW_SIO_EVENT, "/", 0, 0, "[\"caf\\u00e9\"]", "caf\xc3\xa9", 0, 1},
    {"2[\"\xe2\x82\xac\",null]", KW_SIO_EVENT, "/", 0, 0, "[\"\xe2\x82\xac\",null]", "\xe2\x82\xac",
     1, 1},
    {"2[\"connected\"]", KW_SIO_EVENT, "/", 0, 0, "[\"connected\"]", "connected", 0, 1},
    {"2/a-b.c~d!$&'()*+;=:@%2F/e,[\"x\"]", KW_SIO_EVENT, "/a-b.c~d!$&'()*+;=:@%2F/e", 0, 0,
     "[\"x\"]", "x", 0, 1},
    {"0{}", KW_SIO_CONNECT, "/", 0, 0, "{}", NULL, 0, 1},
};

static void check_packet(const struct sio_vec *v, const kw_sio_packet *p)
{
    KWT_EQ(p->type, v->type);
    KWT_EQ(p->nsp_len, strlen(v->nsp));
    KWT_MEMEQ(p->nsp, v->nsp, p->nsp_len);
    KWT_EQ(p->has_ack, v->has_ack);
    KWT_EQ(p->ack_id, v->ack);
    if (v->data == NULL) {
        KWT_CHECK(p->data == NULL);
        KWT_EQ(p->data_len, 0);
    } else {
        KWT_EQ(p->data_len, strlen(v->data));
        KWT_CHECK(p->data != NULL && memcmp(p->data, v->data, p->data_len) == 0);
    }
    KWT_STREQ(p->event, v->event ? v->event : "");
    KWT_EQ(p->event_len, strlen(p->event));
    KWT_EQ(p->argc, v->argc);
}

static void sio_decode_vectors(void)
{
    for (size_t i = 0; i < sizeof sio_vectors / sizeof sio_vectors[0]; i++) {
        const struct sio_vec *v = &sio_vectors[i];
        kw_sio_packet p;
        kw_error e;
        kw_err rc = kw_sio_decode(v->text, strlen(v->text), &p, &e);
        if (rc != KW_OK)
            printf("  vector %zu \"%s\": %s\n", i, v->text, e.detail);
        KWT_ERR(rc, KW_OK);
        if (rc == KW_OK)
            check_packet(v, &p);
    }
}

/* decode -> encode -> decode gives the same packet; canonical texts come back byte-exact. */
static void sio_round_trips(void)
{
    for (size_t i = 0; i < sizeof sio_vectors / sizeof sio_vectors[0]; i++) {
        const struct sio_vec *v = &sio_vectors[i];
        kw_sio_packet p, q;
        kw_error e;
        if (kw_sio_decode(v->text, strlen(v->text), &p, &e) != KW_OK) {
            KWT_CHECK(!"decodes");
            continue;
        }
        char buf[512];
        size_t n = 0;
        KWT_ERR(kw_sio_encode(&p, buf, sizeof buf, &n, &e), KW_OK);
        KWT_EQ(buf[0], '4');
        if (v->canonical) {
            KWT_EQ(n, strlen(v->text) + 1);
            KWT_STREQ(buf + 1, v->text);
        }
        KWT_ERR(kw_sio_decode(buf + 1, n - 1, &q, &e), KW_OK);
        check_packet(v, &q);
        /* Through the Engine.IO layer too, as the server sees it. */
        kw_eio_packet ep;
        KWT_ERR(kw_eio_decode(buf, n, 0, KW_EIO_MAX_PAYLOAD, &ep, &e), KW_OK);
        KWT_EQ(ep.type, KW_EIO_MESSAGE);
        KWT_ERR(kw_sio_decode(ep.data, ep.data_len, &q, &e), KW_OK);
        check_packet(v, &q);
    }
}

static void sio_malformed_table(void)
{
    char fill[129], long_nsp[160], long_event[128], nsp_128[160], event_64[128];
    memset(fill, 'n', 128);
    fill[128] = '\0';
    /* A namespace of 129 bytes ('/' + 128) and an event name of 65; then the largest
     * passing forms, 128 and 64. */
    snprintf(long_nsp, sizeof long_nsp, "2/%s,[\"x\"]", fill);
    snprintf(nsp_128, sizeof nsp_128, "2/%.127s,[\"x\"]", fill);
    snprintf(long_event, sizeof long_event, "2[\"%.65s\"]", fill);
    snprintf(event_64, sizeof event_64, "2[\"%.64s\"]", fill);

    const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *why;
    } v[] = {
        {"", 0, "empty"},
        {"7", 0, "unknown type digit"},
        {"9[\"x\"]", 0, "unknown type digit"},
        {"x", 0, "not a digit"},
        {"-1", 0, "not a digit"},
        {"5", 0, "BINARY_EVENT"},
        {"51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", 0, "BINARY_EVENT from the document"},
        {"52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
         0, "BINARY_EVENT with two attachments"},
        {"61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", 0, "BINARY_ACK"},
        {"2/admin[\"foo\"]", 0, "namespace without comma before the payload"},
        {"0/admin{\"token\":\"1\"}", 0, "namespace without comma before the payload"},
        {"2/admin12[\"foo\"]", 0, "namespace without comma before the ack id (runs to '[')"},
        {"2admin,[\"x\"]", 0, "namespace without '/'"},
        {"2/ad min,[\"x\"]", 0, "space in namespace"},
        {"2/ad\"min,[\"x\"]", 0, "quote in namespace"},
        {"2/ad\0min,[\"x\"]", 14, "NUL in namespace"},
        {"2/caf\xc3\xa9,[\"x\"]", 0, "non-ASCII namespace"},
        {long_nsp, 0, "namespace of 129 bytes"},
        {"24294967296[\"x\"]", 0, "ack id 2^32"},
        {"29999999999[\"x\"]", 0, "ack id of 10 digits over 2^32"},
        {"212345678901234567890[\"x\"]", 0, "ack id of 20 digits (uint64 wrap)"},
        {"2012[\"x\"]", 0, "ack id with a leading zero"},
        {"200[\"x\"]", 0, "ack id 00"},
        {"01", 0, "ack id on CONNECT"},
        {"01{}", 0, "ack id on CONNECT"},
        {"11", 0, "ack id on DISCONNECT"},
        {"41{\"message\":\"x\"}", 0, "ack id on CONNECT_ERROR"},
        {"3[]", 0, "ACK without ack id"},
        {"3/admin,[\"bar\"]", 0, "ACK without ack id"},
        {"312", 0, "ACK without payload"},
        {"3", 0, "ACK without anything"},
        {"2", 0, "EVENT without payload"},
        {"212", 0, "EVENT with ack id, without payload"},
        {"2/admin,", 0, "EVENT with namespace, without payload"},
        {"2{\"a\":1}", 0, "EVENT payload an object"},
        {"2\"foo\"", 0, "EVENT payload a string"},
        {"21", 0, "EVENT payload a number (read as ack id, then nothing)"},
        {"2[]", 0, "EVENT payload empty"},
        {"2[1]", 0, "event name a number"},
        {"2[null]", 0, "event name null"},
        {"2[[\"x\"]]", 0, "event name an array"},
        {"2[\"\"]", 0, "event name empty"},
        {long_event, 0, "event name of 65 bytes"},
        {"2[\"connect\"]", 0, "reserved event name"},
        {"2[\"connect_error\",{}]", 0, "reserved event name"},
        {"2[\"disconnect\"]", 0, "reserved event name"},
        {"2[\"disconnecting\"]", 0, "reserved event name"},
        {"2[\"newListener\"]", 0, "reserved event name"},
        {"2[\"removeListener\"]", 0, "reserved event name"},
        {"2[\"foo\"]x", 0, "trailing garbage"},
        {"2[\"foo\"]]", 0, "trailing bracket"},
        {"2[\"foo\"][\"bar\"]", 0, "two JSON values"},
        {"2[\"foo\"] ", 0, "trailing whitespace"},
        {"2[\"foo\"]\n", 0, "trailing newline"},
        {"2 [\"foo\"]", 0, "leading whitespace"},
        {"2[\"foo\",]", 0, "invalid JSON (trailing comma)"},
        {"2[\"foo\",undefined]", 0, "invalid JSON (undefined)"},
        {"2['foo']", 0, "invalid JSON (single quotes)"},
        {"2[\"fo\xff\"]", 0, "invalid UTF-8"},
        {"2[\"x\",\"\xc0\xaf\"]", 0, "overlong UTF-8"},
        {"2[\"x\",\"\xed\xa0\x80\"]", 0, "UTF-8 surrogate"},
        {"2[\"a\\u0000b\"]", 0, "escaped NUL in the event name"},
        {"2[\"a\",\"\0\"]", 10, "raw NUL in the payload"},
        {"2[\"x\",{\"a\":1,\"a\":2}]", 0, "duplicate keys"},
        {"2[\"x\",99999999999999999999]", 0, "integer beyond int64"},
        {"0[]", 0, "CONNECT payload an array"},
        {"0\"x\"", 0, "CONNECT payload a string"},
        {"0x", 0, "CONNECT garbage"},
        {"0/admin,x", 0, "CONNECT garbage after namespace"},
        {"0{\"a\":1,\"a\":2}", 0, "CONNECT duplicate keys"},
        {"1{}", 0, "DISCONNECT with payload"},
        {"1/admin,{}", 0, "DISCONNECT with payload"},
        {"1/admin,x", 0, "DISCONNECT with garbage"},
        {"4", 0, "CONNECT_ERROR without payload"},
        {"4\"Not authorized\"", 0, "CONNECT_ERROR as a string (protocol v4)"},
        {"4{}", 0, "CONNECT_ERROR without message"},
        {"4{\"message\":1}", 0, "CONNECT_ERROR message a number"},
        {"4{\"message\":\"x\",\"extra\":1}", 0, "CONNECT_ERROR unknown field"},
        {"4{\"data\":1}", 0, "CONNECT_ERROR data without message"},
        {"4[\"x\"]", 0, "CONNECT_ERROR an array"},
        {"3/admin,13{\"a\":1}", 0, "ACK payload an object"},
        {"3/admin,13\"bar\"", 0, "ACK payload a string"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = v[i].len ? v[i].len : strlen(v[i].text);
        kw_sio_packet p;
        memset(&p, 0x5a, sizeof p);
        kw_error e;
        kw_error_clear(&e);
        json_t *payload = (json_t *)&p; /* must be reset to NULL */
        kw_err rc = kw_sio_decode_json(v[i].text, len, &p, &payload, &e);
        if (rc != KW_ERR_INVALID_MESSAGE)
            printf("  malformed %zu (%s) gave %s\n", i, v[i].why, kw_err_name(rc));
        KWT_ERR(rc, KW_ERR_INVALID_MESSAGE);
        KWT_CHECK(payload == NULL);
        KWT_CHECK(e.detail[0] != '\0');
        KWT_EQ(p.type, 0x5a5a5a5a); /* out untouched on failure */
    }
    /* The passing side of the two length limits. */
    kw_sio_packet p;
    kw_error e;
    KWT_ERR(kw_sio_decode(nsp_128, strlen(nsp_128), &p, &e), KW_OK);
    KWT_EQ(p.nsp_len, 128);
    KWT_ERR(kw_sio_decode(event_64, strlen(event_64), &p, &e), KW_OK);
    KWT_EQ(p.event_len, 64);
    /* Argument errors. */
    KWT_ERR(kw_sio_decode(NULL, 1, &p, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_decode("0", 1, NULL, &e), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_decode(NULL, 0, &p, &e), KW_ERR_INVALID_MESSAGE);
}

/* The details a server might log say which rule failed, without quoting the input. */
static void sio_malformed_details(void)
{
    kw_sio_packet p;
    kw_error e;
    KWT_ERR(kw_sio_decode(LIT("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]"), &p, &e),
            KW_ERR_INVALID_MESSAGE);
    KWT_STREQ(e.detail, "binary packets (BINARY_EVENT, BINARY_ACK) are not supported");
    KWT_ERR(kw_sio_decode(LIT("24294967296[\"x\"]"), &p, &e), KW_ERR_INVALID_MESSAGE);
    KWT_STREQ(e.detail, "ack id: over 4294967295");
    KWT_ERR(kw_sio_decode(LIT("2[\"disconnect\"]"), &p, &e), KW_ERR_INVALID_MESSAGE);
    KWT_STREQ(e.detail, "event name: \"disconnect\" is reserved");
    KWT_ERR(kw_sio_decode(LIT("2[\"secret-token\",]"), &p, &e), KW_ERR_INVALID_MESSAGE);
    KWT_CHECK(strstr(e.detail, "secret") == NULL);
    kw_eio_packet ep;
    KWT_ERR(kw_eio_decode(LIT("4abc"), 1, KW_EIO_MAX_PAYLOAD, &ep, &e), KW_ERR_INVALID_MESSAGE);
    KWT_CHECK(strstr(e.detail, "binary") != NULL);
}

static void sio_decode_json_payload(void)
{
    kw_sio_packet p;
    kw_error e;
    json_t *v = NULL;
    KWT_ERR(kw_sio_decode_json(LIT("2/external,3[\"sendItem\",{\"itemId\":\"i1\"}]"), &p, &v, &e),
            KW_OK);
    KWT_CHECK(json_is_array(v) && json_array_size(v) == 2);
    KWT_STREQ(json_string_value(json_array_get(v, 0)), "sendItem");
    KWT_STREQ(json_string_value(json_object_get(json_array_get(v, 1), "itemId")), "i1");
    json_decref(v);
    KWT_ERR(kw_sio_decode_json(LIT("0{\"token\":\"t\"}"), &p, &v, &e), KW_OK);
    KWT_CHECK(json_is_object(v));
    json_decref(v);
    v = (json_t *)&p;
    KWT_ERR(kw_sio_decode_json(LIT("0/admin,"), &p, &v, &e), KW_OK);
    KWT_CHECK(v == NULL);
    KWT_ERR(kw_sio_decode_json(LIT("1"), &p, NULL, &e), KW_OK);
}

/* A payload near maxPayload decodes; the frame one byte over is refused by Engine.IO. */
static void sio_large_event(void)
{
    size_t max = KW_EIO_MAX_PAYLOAD;
    char *f = malloc(max + 2);
    if (!KWT_CHECK(f != NULL))
        return;
    static const char head[] = "42[\"sendItem\",\"";
    memcpy(f, head, sizeof head - 1);
    memset(f + sizeof head - 1, 'A', max - (sizeof head - 1) - 2);
    memcpy(f + max - 2, "\"]", 2);
    kw_eio_packet ep;
    kw_sio_packet p;
    kw_error e;
    KWT_ERR(kw_eio_decode(f, max, 0, max, &ep, &e), KW_OK);
    KWT_ERR(kw_sio_decode(ep.data, ep.data_len, &p, &e), KW_OK);
    KWT_STREQ(p.event, "sendItem");
    KWT_EQ(p.argc, 1);
    memcpy(f + max - 2, "A\"]", 3);
    KWT_ERR(kw_eio_decode(f, max + 1, 0, max, &ep, &e), KW_ERR_PAYLOAD_TOO_LARGE);
    free(f);
}

/* ---- Socket.IO encoders ---------------------------------------------------------------- */

static void sio_encode_exact(void)
{
    char buf[256];
    size_t n = 0;
    kw_error e;
    KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, "foo", NULL, 0, buf, sizeof buf, &n, &e),
            KW_OK);
    KWT_STREQ(buf, "42[\"foo\"]");
    KWT_EQ(n, 9);
    KWT_ERR(
        kw_sio_encode_event("/", KW_SIO_NO_ACK, "hey", LIT("\"Jude\""), buf, sizeof buf, &n, &e),
        KW_OK);
    KWT_STREQ(buf, "42[\"hey\",\"Jude\"]");
    KWT_ERR(kw_sio_encode_event("/admin", 12, "foo", NULL, 0, buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "42/admin,12[\"foo\"]");
    KWT_ERR(
        kw_sio_encode_event(NULL, 0, "x", LIT("1,\"2\",{\"3\":[true]}"), buf, sizeof buf, &n, &e),
        KW_OK);
    KWT_STREQ(buf, "420[\"x\",1,\"2\",{\"3\":[true]}]");
    KWT_ERR(kw_sio_encode_event("/external", 4294967295, "meeting:receiveSenderKey",
                                LIT("{\"meetingId\":\"m\"}"), buf, sizeof buf, &n, &e),
            KW_OK);
    KWT_STREQ(buf, "42/external,4294967295[\"meeting:receiveSenderKey\",{\"meetingId\":\"m\"}]");
    /* Names that need escaping go through jansson; non-ASCII stays UTF-8. */
    KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, "a\"b\\c\n", NULL, 0, buf, sizeof buf, &n, &e),
            KW_OK);
    KWT_STREQ(buf, "42[\"a\\\"b\\\\c\\n\"]");
    KWT_ERR(
        kw_sio_encode_event(NULL, KW_SIO_NO_ACK, "caf\xc3\xa9", NULL, 0, buf, sizeof buf, &n, &e),
        KW_OK);
    KWT_STREQ(buf, "42[\"caf\xc3\xa9\"]");
    kw_sio_packet p;
    KWT_ERR(kw_sio_decode(buf + 1, n - 1, &p, &e), KW_OK);
    KWT_STREQ(p.event, "caf\xc3\xa9");

    KWT_ERR(kw_sio_encode_ack(NULL, 12, NULL, 0, buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "4312[]");
    KWT_ERR(kw_sio_encode_ack("/admin", 13, LIT("\"bar\""), buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "43/admin,13[\"bar\"]");
    KWT_ERR(kw_sio_encode_ack(NULL, 0, LIT("{\"ok\":true}"), buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "430[{\"ok\":true}]");

    KWT_ERR(kw_sio_encode_connect_ok(NULL, "wZX3oN0bSVIhsaknAAAI", buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "40{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}");
    KWT_ERR(kw_sio_encode_connect_ok("/admin", "oSO0OpakMV_3jnilAAAA", buf, sizeof buf, &n, &e),
            KW_OK);
    KWT_STREQ(buf, "40/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    KWT_ERR(kw_sio_encode_connect_ok(NULL, "a\"b", buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_connect_ok(NULL, "", buf, sizeof buf, &n, &e), KW_ERR_INVALID_ARGUMENT);

    KWT_ERR(kw_sio_encode_connect_error(NULL, "Not authorized", buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "44{\"message\":\"Not authorized\"}");
    KWT_ERR(kw_sio_encode_connect_error("/random", "Invalid namespace", buf, sizeof buf, &n, &e),
            KW_OK);
    KWT_STREQ(buf, "44/random,{\"message\":\"Invalid namespace\"}");
    KWT_ERR(kw_sio_encode_connect_error(NULL, "say \"no\"\t", buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "44{\"message\":\"say \\\"no\\\"\\t\"}");
    KWT_ERR(kw_sio_decode(buf + 1, n - 1, &p, &e), KW_OK);
    KWT_EQ(p.type, KW_SIO_CONNECT_ERROR);
    KWT_ERR(kw_sio_encode_connect_error(NULL, "", buf, sizeof buf, &n, &e), KW_OK);
    KWT_STREQ(buf, "44{\"message\":\"\"}");
    KWT_ERR(kw_sio_encode_connect_error(NULL, "bad \xff", buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
}

static void sio_encode_rejects(void)
{
    char buf[256];
    size_t n;
    kw_error e;
    /* namespaces */
    static const char *const bad_nsp[] = {"admin", "", "/ad,min", "/ad min", "/a\"b", "/[x]"};
    for (size_t i = 0; i < sizeof bad_nsp / sizeof bad_nsp[0]; i++) {
        KWT_ERR(
            kw_sio_encode_event(bad_nsp[i], KW_SIO_NO_ACK, "x", NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
        KWT_ERR(kw_sio_encode_ack(bad_nsp[i], 1, NULL, 0, buf, sizeof buf, &n, &e),
                KW_ERR_INVALID_ARGUMENT);
        KWT_ERR(kw_sio_encode_connect_ok(bad_nsp[i], "s", buf, sizeof buf, &n, &e),
                KW_ERR_INVALID_ARGUMENT);
        KWT_ERR(kw_sio_encode_connect_error(bad_nsp[i], "m", buf, sizeof buf, &n, &e),
                KW_ERR_INVALID_ARGUMENT);
    }
    char nsp[KW_SIO_NSP_MAX + 2];
    memset(nsp, 'n', sizeof nsp);
    nsp[0] = '/';
    nsp[KW_SIO_NSP_MAX] = '\0'; /* 128 bytes: fine */
    KWT_ERR(kw_sio_encode_event(nsp, KW_SIO_NO_ACK, "x", NULL, 0, buf, sizeof buf, &n, &e), KW_OK);
    nsp[KW_SIO_NSP_MAX] = 'n';
    nsp[KW_SIO_NSP_MAX + 1] = '\0'; /* 129 bytes */
    KWT_ERR(kw_sio_encode_event(nsp, KW_SIO_NO_ACK, "x", NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    /* ack ids */
    KWT_ERR(kw_sio_encode_event(NULL, -2, "x", NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_event(NULL, 4294967296, "x", NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_ack(NULL, KW_SIO_NO_ACK, NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_ack(NULL, 4294967296, NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_ack(NULL, 4294967295, NULL, 0, buf, sizeof buf, &n, &e), KW_OK);
    /* event names */
    char name[KW_SIO_EVENT_MAX + 2];
    memset(name, 'e', sizeof name);
    name[KW_SIO_EVENT_MAX] = '\0';
    KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, name, NULL, 0, buf, sizeof buf, &n, &e),
            KW_OK);
    name[KW_SIO_EVENT_MAX] = 'e';
    name[KW_SIO_EVENT_MAX + 1] = '\0';
    KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, name, NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    static const char *const bad_names[] = {"",      "connect", "disconnect", "newListener",
                                            "x\xff", "\xc0\xaf"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, bad_names[i], NULL, 0, buf, sizeof buf, &n,
                                    &e),
                KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, NULL, NULL, 0, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_sio_encode_event(NULL, KW_SIO_NO_ACK, "x", NULL, 3, buf, sizeof buf, &n, &e),
            KW_ERR_INVALID_ARGUMENT);

    /* The generic encoder's shape checks. */
    struct {
        kw_sio_packet p;
    } bad[] = {
        {{.type = KW_SIO_CONNECT, .has_ack = 1}},
        {{.type = KW_SIO_DISCONNECT, .has_ack = 1}},
        {{.type = KW_SIO_CONNECT_ERROR, .has_ack = 1, .data = "{}", .data_len = 2}},
        {{.type = KW_SIO_ACK, .data = "[]", .data_len = 2}},
        {{.type = KW_SIO_EVENT}},
        {{.type = KW_SIO_EVENT, .data = "{}", .data_len = 2}},
        {{.type = KW_SIO_ACK, .has_ack = 1, .data = "{}", .data_len = 2}},
        {{.type = KW_SIO_CONNECT, .data = "[]", .data_len = 2}},
        {{.type = KW_SIO_CONNECT_ERROR}},
        {{.type = KW_SIO_DISCONNECT, .data = "{}", .data_len = 2}},
        {{.type = (kw_sio_type)5, .data = "[]", .data_len = 2}},
        {{.type = KW_SIO_EVENT, .data = NULL, .data_len = 2}},
        {{.type = KW_SIO_EVENT, .nsp = "admin", .nsp_len = 5, .data = "[\"x\"]", .data_len = 5}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kw_err rc = kw_sio_encode(&bad[i].p, buf, sizeof buf, &n, &e);
        if (rc != KW_ERR_INVALID_ARGUMENT)
            printf("  encode case %zu\n", i);
        KWT_ERR(rc, KW_ERR_INVALID_ARGUMENT);
    }
    KWT_ERR(kw_sio_encode(NULL, buf, sizeof buf, &n, &e), KW_ERR_INVALID_ARGUMENT);
}

/* Every encoder: size query, exact fit, one short; nothing written past cap. */
static void sio_encode_buffer_sizes(void)
{
    kw_error e;
    for (int which = 0; which < 5; which++) {
        char buf[128];
        size_t need = 0, n = 0;
        kw_err rc = KW_ERR_INTERNAL;
        for (int step = 0; step < 3; step++) {
            size_t cap = step == 0 ? 0 : step == 1 ? need : need + 1;
            char *b = step == 0 ? NULL : buf;
            memset(buf, '#', sizeof buf);
            kw_sio_packet p = {.type = KW_SIO_ACK,
                               .nsp = "/x",
                               .nsp_len = 2,
                               .has_ack = 1,
                               .ack_id = 7,
                               .data = "[1]",
                               .data_len = 3};
            switch (which) {
            case 0:
                rc = kw_sio_encode_event("/x", 7, "a\nb", LIT("{}"), b, cap, &n, &e);
                break;
            case 1:
                rc = kw_sio_encode_ack("/x", 7, LIT("{}"), b, cap, &n, &e);
                break;
            case 2:
                rc = kw_sio_encode_connect_ok("/x", "sid", b, cap, &n, &e);
                break;
            case 3:
                rc = kw_sio_encode_connect_error("/x", "t\"oo", b, cap, &n, &e);
                break;
            default:
                rc = kw_sio_encode(&p, b, cap, &n, &e);
                break;
            }
            if (step == 0) {
                KWT_ERR(rc, KW_ERR_BUFFER_TOO_SMALL);
                need = n;
                KWT_CHECK(need > 4 && need < 64);
            } else if (step == 1) {
                KWT_ERR(rc, KW_ERR_BUFFER_TOO_SMALL);
                KWT_EQ(n, need);
                KWT_EQ(buf[need], '#');
            } else {
                KWT_ERR(rc, KW_OK);
                KWT_EQ(n, need);
                KWT_EQ(strlen(buf), need);
                KWT_EQ(buf[need + 1], '#');
            }
        }
    }
}

/* ---- the heartbeat and connect-timeout clock ------------------------------------------- */

static void session_defaults_timeline(void)
{
    kw_eio_session s;
    kw_eio_action a;
    int64_t next;
    kw_error e;
    const int64_t t0 = 1000;
    KWT_ERR(kw_eio_session_init(&s, t0, KW_EIO_PING_INTERVAL_MS, KW_EIO_PING_TIMEOUT_MS,
                                KW_EIO_CONNECT_TIMEOUT_MS),
            KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, t0, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    KWT_EQ(next, t0 + 25000);
    KWT_ERR(kw_eio_session_tick(&s, t0 + 24999, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    /* The first ping is due pingInterval after the open packet. */
    KWT_ERR(kw_eio_session_tick(&s, t0 + 25000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    KWT_EQ(next, t0 + 25000 + 20001); /* = the connect deadline t0 + 45001 as well */
    KWT_ERR(kw_eio_session_tick(&s, t0 + 25001, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING); /* one ping at a time */
    /* A CONNECT exactly at the connect timeout is on time. */
    KWT_ERR(kw_eio_session_on_connect(&s, t0 + 45000, &e), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, t0 + 45000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    KWT_EQ(next, t0 + 45001); /* the pong deadline */
    /* A pong exactly pingTimeout after the ping is on time. */
    KWT_ERR(kw_eio_session_on_pong(&s, t0 + 45000, &e), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, t0 + 45001, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    KWT_EQ(next, t0 + 50000); /* next ping: pingInterval after the last one */
    KWT_ERR(kw_eio_session_tick(&s, t0 + 50000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    KWT_EQ(next, t0 + 70001); /* connected: only the pong deadline is left */
    KWT_ERR(kw_eio_session_on_pong(&s, t0 + 50010, &e), KW_OK);
    /* A second pong for the same ping is unsolicited. */
    KWT_ERR(kw_eio_session_on_pong(&s, t0 + 50020, &e), KW_ERR_STATE);
}

static void session_pong_one_ms_late(void)
{
    kw_eio_session s;
    kw_eio_action a;
    int64_t next;
    kw_error e;
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 20000, 45000), KW_OK);
    KWT_ERR(kw_eio_session_on_connect(&s, 10, &e), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, 25000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    /* At exactly pingTimeout the pong may still come: no close yet. */
    KWT_ERR(kw_eio_session_tick(&s, 45000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    KWT_EQ(next, 45001);
    /* 1 ms after pingTimeout the pong is late and the session closes. */
    KWT_ERR(kw_eio_session_on_pong(&s, 45001, &e), KW_ERR_STATE);
    KWT_CHECK(strstr(e.detail, "pingTimeout") != NULL);
    KWT_ERR(kw_eio_session_tick(&s, 45001, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_CLOSE_PONG_TIMEOUT);
    KWT_EQ(next, INT64_MAX);
    KWT_ERR(kw_eio_session_on_pong(&s, 45002, &e), KW_ERR_STATE);
}

static void session_pong_timeout_by_tick(void)
{
    kw_eio_session s;
    kw_eio_action a;
    int64_t next;
    kw_error e;
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 20000, 45000), KW_OK);
    KWT_ERR(kw_eio_session_on_connect(&s, 0, &e), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, 25000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    KWT_ERR(kw_eio_session_tick(&s, next, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_CLOSE_PONG_TIMEOUT);
    /* Sticky. */
    KWT_ERR(kw_eio_session_tick(&s, 90000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_CLOSE_PONG_TIMEOUT);
    KWT_EQ(next, INT64_MAX);
    KWT_ERR(kw_eio_session_on_connect(&s, 90000, &e), KW_ERR_STATE);
}

static void session_connect_timeout(void)
{
    kw_eio_session s;
    kw_eio_action a;
    int64_t next;
    kw_error e;
    /* By tick: no CONNECT by 45 000 ms; the ping cycle runs meanwhile. */
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 20000, 45000), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, 25000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    KWT_ERR(kw_eio_session_on_pong(&s, 25005, &e), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, 25005, &a, &next), KW_OK);
    KWT_EQ(next, 45001);
    KWT_ERR(kw_eio_session_tick(&s, 45000, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    KWT_ERR(kw_eio_session_tick(&s, 45001, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_CLOSE_CONNECT_TIMEOUT);
    /* By a late CONNECT: 1 ms after the timeout. */
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 20000, 45000), KW_OK);
    KWT_ERR(kw_eio_session_on_connect(&s, 45001, &e), KW_ERR_STATE);
    KWT_ERR(kw_eio_session_tick(&s, 45001, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_CLOSE_CONNECT_TIMEOUT);
    /* Both deadlines passed: the connect timeout is reported. */
    KWT_ERR(kw_eio_session_init(&s, 0, 10, 10, 15), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, 10, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    KWT_EQ(next, 16);
    KWT_ERR(kw_eio_session_tick(&s, 100, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_CLOSE_CONNECT_TIMEOUT);
    /* A second CONNECT (another namespace) after the deadline is fine once connected. */
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 20000, 45000), KW_OK);
    KWT_ERR(kw_eio_session_on_connect(&s, 5, &e), KW_OK);
    KWT_ERR(kw_eio_session_on_connect(&s, 60000, &e), KW_OK);
}

static void session_edges(void)
{
    kw_eio_session s;
    kw_eio_action a;
    int64_t next;
    kw_error e;
    KWT_ERR(kw_eio_session_init(&s, 0, 0, 20000, 45000), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 0, 45000), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_init(&s, 0, 25000, 20000, 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_init(&s, 0, 2147483648u, 20000, 45000), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_init(NULL, 0, 1, 1, 1), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_init(&s, 0, 1, 1, 1), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, 0, NULL, &next), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_tick(&s, 0, &a, NULL), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_eio_session_on_pong(NULL, 0, &e), KW_ERR_INVALID_ARGUMENT);
    /* A pong before any ping. */
    KWT_ERR(kw_eio_session_on_pong(&s, 0, &e), KW_ERR_STATE);
    /* Near the end of int64 time the deadlines saturate instead of overflowing. */
    const int64_t end = INT64_MAX - 5;
    KWT_ERR(kw_eio_session_init(&s, end, KW_EIO_TIMING_MAX_MS, KW_EIO_TIMING_MAX_MS,
                                KW_EIO_TIMING_MAX_MS),
            KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, end, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_NOTHING);
    KWT_EQ(next, INT64_MAX);
    KWT_ERR(kw_eio_session_on_connect(&s, end, &e), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, INT64_MAX, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
    KWT_EQ(next, INT64_MAX);
    /* Negative times work too (a monotonic clock may start anywhere). */
    KWT_ERR(kw_eio_session_init(&s, INT64_MIN, 10, 10, 10), KW_OK);
    KWT_ERR(kw_eio_session_tick(&s, INT64_MIN + 10, &a, &next), KW_OK);
    KWT_EQ(a, KW_EIO_SEND_PING);
}

int main(void)
{
    KWT_RUN(eio_decode_table);
    KWT_RUN(eio_max_payload_boundary);
    KWT_RUN(eio_encode_frames);
    KWT_RUN(eio_open_round_trip);
    KWT_RUN(eio_open_rejects);
    KWT_RUN(eio_query_table);
    KWT_RUN(sio_decode_vectors);
    KWT_RUN(sio_round_trips);
    KWT_RUN(sio_malformed_table);
    KWT_RUN(sio_malformed_details);
    KWT_RUN(sio_decode_json_payload);
    KWT_RUN(sio_large_event);
    KWT_RUN(sio_encode_exact);
    KWT_RUN(sio_encode_rejects);
    KWT_RUN(sio_encode_buffer_sizes);
    KWT_RUN(session_defaults_timeline);
    KWT_RUN(session_pong_one_ms_late);
    KWT_RUN(session_pong_timeout_by_tick);
    KWT_RUN(session_connect_timeout);
    KWT_RUN(session_edges);
    return kwt_finish();
}
