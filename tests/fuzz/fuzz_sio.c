/*
 * fuzz_sio.c — libFuzzer target for the Engine.IO / Socket.IO codec (eio.h, sio.h).
 *
 * One input feeds every parser: kw_eio_decode (then kw_sio_decode or kw_eio_decode_open on
 * what it returns), kw_sio_decode and its jansson variant on the raw bytes, the open
 * handshake parser, the query check, the encoders with the input as event name and
 * CONNECT_ERROR message, and the session clock driven by the bytes as events. Besides
 * the sanitizers' checks it traps on broken properties: a decoded packet re-encodes and
 * decodes to the same packet, borrowed pointers stay inside the input, an encoded name or
 * message decodes back to the same bytes, and the session never pings twice at once nor
 * reports a deadline in the past.
 *
 * Build (clang 14 here, libclang-rt-14-dev provides the runtime):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Ilib \
 *     tests/fuzz/fuzz_sio.c lib/eio.c lib/sio.c lib/err.c -ljansson -o build/fuzz/fuzz_sio
 * Run: build/fuzz/fuzz_sio -max_total_time=10 -max_len=4096 [corpus dir]
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keywave/eio.h"
#include "keywave/sio.h"
#include "sio_json.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static int inside(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && n <= len && p - base <= (ptrdiff_t)(len - n);
}

static int same_packet(const kw_sio_packet *a, const kw_sio_packet *b)
{
    return a->type == b->type && a->nsp_len == b->nsp_len &&
           memcmp(a->nsp, b->nsp, a->nsp_len) == 0 && a->has_ack == b->has_ack &&
           a->ack_id == b->ack_id && a->data_len == b->data_len &&
           (a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0) &&
           a->event_len == b->event_len && strcmp(a->event, b->event) == 0 && a->argc == b->argc;
}

/* Encodes p (size query, then exact buffer) and checks it decodes to the same packet. */
static void sio_reencode(const kw_sio_packet *p)
{
    size_t need = 0, n = 0;
    CHECK(kw_sio_encode(p, NULL, 0, &need, NULL) == KW_ERR_BUFFER_TOO_SMALL);
    char *buf = malloc(need + 1);
    if (buf == NULL)
        return;
    CHECK(kw_sio_encode(p, buf, need + 1, &n, NULL) == KW_OK && n == need);
    CHECK(buf[0] == '4' && buf[n] == '\0');
    kw_eio_packet ep;
    CHECK(kw_eio_decode(buf, n, 0, SIZE_MAX, &ep, NULL) == KW_OK && ep.type == KW_EIO_MESSAGE);
    kw_sio_packet q;
    CHECK(kw_sio_decode(ep.data, ep.data_len, &q, NULL) == KW_OK);
    CHECK(same_packet(p, &q));
    free(buf);
}

static void sio_decode_checked(const char *text, size_t len)
{
    kw_sio_packet p;
    kw_error err;
    json_t *payload = NULL;
    kw_err rc = kw_sio_decode_json(text, len, &p, &payload, &err);
    kw_sio_packet p2;
    CHECK(kw_sio_decode(text, len, &p2, NULL) == rc); /* both entry points agree */
    if (rc != KW_OK) {
        CHECK(payload == NULL);
        CHECK(rc == KW_ERR_INVALID_MESSAGE || rc == KW_ERR_NOMEM);
        CHECK(memchr(err.detail, '\0', sizeof err.detail) != NULL);
        return;
    }
    CHECK(same_packet(&p, &p2));
    CHECK(p.nsp_len >= 1 && p.nsp_len <= KW_SIO_NSP_MAX && p.nsp[0] == '/');
    CHECK((p.nsp_len == 1) || inside(p.nsp, p.nsp_len, text, len));
    CHECK(p.event_len <= KW_SIO_EVENT_MAX && p.event[p.event_len] == '\0');
    CHECK(!p.has_ack || p.type == KW_SIO_EVENT || p.type == KW_SIO_ACK);
    CHECK(p.type != KW_SIO_ACK || p.has_ack);
    if (p.data != NULL) {
        CHECK(inside(p.data, p.data_len, text, len));
        CHECK(p.data + p.data_len == text + len); /* the payload runs to the end */
        CHECK(payload != NULL);
        if (p.type == KW_SIO_EVENT || p.type == KW_SIO_ACK)
            CHECK(json_is_array(payload));
        else
            CHECK(json_is_object(payload));
    } else {
        CHECK(payload == NULL && p.data_len == 0);
    }
    if (p.type == KW_SIO_EVENT)
        CHECK(p.event_len > 0 && json_array_size(payload) == p.argc + 1);
    json_decref(payload);
    sio_reencode(&p);
}

static void eio_decode_checked(const char *frame, size_t len)
{
    kw_eio_packet ep;
    CHECK(kw_eio_decode(frame, len, 1, 1 << 20, &ep, NULL) != KW_OK); /* binary: never */
    kw_err rc = kw_eio_decode(frame, len, 0, 1 << 20, &ep, NULL);
    if (rc != KW_OK)
        return;
    CHECK(ep.data == frame + 1 && ep.data_len == len - 1);
    if (ep.type == KW_EIO_MESSAGE) {
        sio_decode_checked(ep.data, ep.data_len);
    } else if (ep.type == KW_EIO_OPEN) {
        kw_eio_open o, back;
        if (kw_eio_decode_open(ep.data, ep.data_len, &o, NULL) == KW_OK) {
            char buf[256];
            size_t n;
            CHECK(kw_eio_encode_open(&o, buf, sizeof buf, &n, NULL) == KW_OK);
            CHECK(kw_eio_decode_open(buf + 1, n - 1, &back, NULL) == KW_OK);
            CHECK(strcmp(o.sid, back.sid) == 0 && o.ping_interval_ms == back.ping_interval_ms &&
                  o.ping_timeout_ms == back.ping_timeout_ms && o.max_payload == back.max_payload);
        }
    }
}

/* The input as an event name and as a CONNECT_ERROR message: what goes in comes back. */
static void encoders_checked(const char *data, size_t size)
{
    size_t n = strnlen(data, size);
    char *s = malloc(n + 1);
    if (s == NULL)
        return;
    memcpy(s, data, n);
    s[n] = '\0';
    char buf[1024];
    size_t len;
    kw_sio_packet p;
    json_t *payload = NULL;
    if (kw_sio_encode_event("/external", 7, s, "{}", 2, buf, sizeof buf, &len, NULL) == KW_OK) {
        CHECK(kw_sio_decode_json(buf + 1, len - 1, &p, &payload, NULL) == KW_OK);
        CHECK(p.type == KW_SIO_EVENT && p.event_len == n && memcmp(p.event, s, n) == 0);
        CHECK(p.argc == 1 && p.has_ack && p.ack_id == 7);
        json_decref(payload);
    }
    if (n < 512 && kw_sio_encode_connect_error(NULL, s, buf, sizeof buf, &len, NULL) == KW_OK) {
        CHECK(kw_sio_decode_json(buf + 1, len - 1, &p, &payload, NULL) == KW_OK);
        json_t *m = json_object_get(payload, "message");
        CHECK(json_string_length(m) == n && memcmp(json_string_value(m), s, n) == 0);
        json_decref(payload);
    }
    free(s);
}

/* Bytes as session events: low 2 bits pick tick / pong / connect, the rest advances time. */
static void session_checked(const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    kw_eio_session s;
    uint32_t interval = 1u + data[0] % 64, timeout = 1u + data[1] % 64,
             connect = 1u + data[2] % 128;
    int64_t now = (int64_t)data[0] << 40;
    CHECK(kw_eio_session_init(&s, now, interval, timeout, connect) == KW_OK);
    for (size_t i = 3; i < size; i++) {
        now += data[i] >> 2;
        kw_eio_action a;
        int64_t next;
        int awaiting = s.awaiting_pong;
        switch (data[i] & 3) {
        case 1:
            (void)kw_eio_session_on_pong(&s, now, NULL);
            break;
        case 2:
            (void)kw_eio_session_on_connect(&s, now, NULL);
            break;
        default:
            CHECK(kw_eio_session_tick(&s, now, &a, &next) == KW_OK);
            CHECK(a != KW_EIO_SEND_PING || !awaiting);
            if (a == KW_EIO_NOTHING || a == KW_EIO_SEND_PING)
                CHECK(next > now && !s.closed);
            else
                CHECK(next == INT64_MAX && s.closed == (uint8_t)a);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    eio_decode_checked(text, size);
    sio_decode_checked(text, size);
    kw_eio_open o;
    (void)kw_eio_decode_open(text, size, &o, NULL);
    (void)kw_eio_check_query(text, size, NULL);
    encoders_checked(text, size);
    session_checked(data, size);
    return 0;
}
