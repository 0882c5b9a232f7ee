/*
 * eio.h — Engine.IO v4 over WebSocket: packet framing, the open handshake, the query check
 * of GET /socket.io/, and the heartbeat / connect-timeout clock of one session.
 *
 * keywave speaks Engine.IO only over WebSocket (DESIGN.md section 8): every packet is one
 * WebSocket *text* frame `<type digit>[<data>]`, with no payload concatenation, no base64
 * and no upgrade. The Socket.IO packets ride inside `message` (4) packets; see sio.h.
 *
 *   type     dir              keywave's rule
 *   0 open   server -> client `0{"sid":..,"upgrades":[],"pingInterval":..,"pingTimeout":..,
 *                             "maxPayload":..}`; kw_eio_encode_open / kw_eio_decode_open
 *   1 close  either           no data
 *   2 ping   server -> client no data (the server pings; v4 reversed v3's direction)
 *   3 pong   client -> server no data; feeds kw_eio_session_on_pong
 *   4 message either          a Socket.IO packet (sio.h)
 *   5 upgrade                 refused: a WebSocket-only session offers no upgrades
 *   6 noop   either           decoded (no data) so that the caller can ignore it
 *
 * Ping and pong may carry short printable-ASCII data (the v3 "probe"), which the decoder
 * accepts up to KW_EIO_PING_DATA_MAX bytes. Binary frames are refused: keywave sends JSON
 * text only, and Socket.IO binary attachments (sio.h) are refused as well.
 *
 * Everything here is pure: no I/O, no clock (time comes in as now_ms), no allocation
 * except inside kw_eio_decode_open. Decoded packets borrow their data from the input.
 * THREAD SAFETY: no shared state; a kw_eio_session belongs to one connection.
 */
#ifndef KEYWAVE_EIO_H
#define KEYWAVE_EIO_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_EIO_PROTOCOL           4           /* the EIO= query value */
#define KW_EIO_PING_INTERVAL_MS   25000u      /* DESIGN.md section 8 */
#define KW_EIO_PING_TIMEOUT_MS    20000u      /* DESIGN.md section 8 */
#define KW_EIO_CONNECT_TIMEOUT_MS 45000u      /* Socket.IO's default connectTimeout */
#define KW_EIO_MAX_PAYLOAD        1000000     /* bytes of one frame, type digit included */
#define KW_EIO_SID_MAX            64          /* bytes of a session id, [A-Za-z0-9_-] */
#define KW_EIO_PING_DATA_MAX      32          /* bytes of ping/pong data ("probe") */
#define KW_EIO_TIMING_MAX_MS      2147483647u /* largest interval/timeout (JS setTimeout) */

/* Function forms of the constants above, for the wasm glue. */
size_t kw_eio_max_payload(void);
size_t kw_eio_sid_max(void);

typedef enum kw_eio_type {
    KW_EIO_OPEN = 0,
    KW_EIO_CLOSE = 1,
    KW_EIO_PING = 2,
    KW_EIO_PONG = 3,
    KW_EIO_MESSAGE = 4,
    KW_EIO_UPGRADE = 5, /* never decoded: refused */
    KW_EIO_NOOP = 6,
} kw_eio_type;

/* One decoded frame. data points into the caller's frame (borrowed), never NUL-terminated. */
typedef struct kw_eio_packet {
    kw_eio_type type;
    const char *data; /* borrowed; the bytes after the type digit (data_len may be 0) */
    size_t data_len;
} kw_eio_packet;

/*
 * Decodes one WebSocket frame of len bytes. binary: nonzero when it arrived as a binary
 * frame. max_payload: the largest frame accepted (KW_EIO_MAX_PAYLOAD, as advertised in
 * the open packet), compared with len before anything else is looked at.
 * Rules: a known type digit; close and noop carry no data; ping and pong carry at most
 * KW_EIO_PING_DATA_MAX printable-ASCII bytes; open carries data starting with '{'
 * (kw_eio_decode_open checks the rest); message data is left to kw_sio_decode.
 * *out is filled only on success; its data points into frame.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL pointer, max_payload 0),
 * KW_ERR_PAYLOAD_TOO_LARGE (len > max_payload), KW_ERR_INVALID_MESSAGE (empty frame,
 * binary frame, unknown type, upgrade packet, data where none belongs).
 */
KW_MUST_CHECK kw_err kw_eio_decode(const char *frame, size_t len, int binary, size_t max_payload,
                                   kw_eio_packet *out, kw_error *err);

/*
 * Writes the text frame `<type>[data]` into buf (capacity cap), NUL-terminated, and sets
 * *out_len to its length without the NUL. data may be NULL when data_len is 0. The data
 * is copied as given (for message packets prefer the sio.h encoders, which add the '4').
 * When cap < length + 1, returns KW_ERR_BUFFER_TOO_SMALL with *out_len set to the length
 * needed (buf may then be NULL with cap 0, to ask for the size).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL out_len, a type outside 0..6),
 * KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_eio_encode(kw_eio_type type, const char *data, size_t data_len, char *buf,
                                   size_t cap, size_t *out_len, kw_error *err);

/*
 * Checks a session id (Engine.IO's, or a Socket.IO socket id): 1..KW_EIO_SID_MAX bytes of
 * [A-Za-z0-9_-], so that it needs no escaping in JSON or URLs.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT.
 */
KW_MUST_CHECK kw_err kw_eio_check_sid(const char *sid, size_t len);

/* The handshake of an open packet (upgrades is always [] for keywave). */
typedef struct kw_eio_open {
    char sid[KW_EIO_SID_MAX + 1]; /* NUL-terminated, 1..64 of [A-Za-z0-9_-] */
    uint32_t ping_interval_ms;    /* 1..KW_EIO_TIMING_MAX_MS */
    uint32_t ping_timeout_ms;     /* 1..KW_EIO_TIMING_MAX_MS */
    uint32_t max_payload;         /* bytes, 1..2147483647 */
} kw_eio_open;

/*
 * Writes the open frame
 * `0{"sid":"<sid>","upgrades":[],"pingInterval":<n>,"pingTimeout":<n>,"maxPayload":<n>}`
 * into buf, with the same buffer rules as kw_eio_encode.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL, a sid outside the charset or length, a
 * zero or too large number), KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_eio_encode_open(const kw_eio_open *open, char *buf, size_t cap,
                                        size_t *out_len, kw_error *err);

/*
 * Parses the data of an open packet (kw_eio_packet.data of a KW_EIO_OPEN), for a client.
 * Strict: a JSON object with exactly sid, upgrades (an array of strings), pingInterval,
 * pingTimeout and maxPayload, each within the ranges of kw_eio_open. Parses with jansson
 * (allocates, frees before returning). *out is filled only on success.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL pointer), KW_ERR_INVALID_MESSAGE (not JSON,
 * a field missing, unknown, of the wrong type or out of range), KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_eio_decode_open(const char *data, size_t len, kw_eio_open *out,
                                        kw_error *err);

/*
 * Checks the query string of a `GET /socket.io/` request (with or without its leading
 * '?'; the path is the caller's business). It must hold EIO=4 and transport=websocket,
 * each once, and no sid (keywave has no polling sessions to upgrade); other parameters
 * (t, or a client's own query) are ignored. Values are compared as sent, not
 * percent-decoded. The detail is written to be the body of the HTTP 400:
 *   transport=polling -> "polling transport is not supported; use transports: ['websocket']"
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL query with len > 0, or any rule above).
 */
KW_MUST_CHECK kw_err kw_eio_check_query(const char *query, size_t len, kw_error *err);

/* What kw_eio_session_tick asks the caller to do now. */
typedef enum kw_eio_action {
    KW_EIO_NOTHING = 0,
    KW_EIO_SEND_PING = 1,             /* send the frame "2" (the session counts it as sent) */
    KW_EIO_CLOSE_PONG_TIMEOUT = 2,    /* no pong within pingTimeout: close the connection */
    KW_EIO_CLOSE_CONNECT_TIMEOUT = 3, /* no namespace CONNECT within the connect timeout */
} kw_eio_action;

/*
 * The heartbeat and connect-timeout clock of one connection (about 40 bytes, held in the
 * per-connection block). The server pings pingInterval after the open packet and
 * pingInterval after each ping; a pong is on time up to and including
 * ping_sent_ms + pingTimeout, and the connection closes from the millisecond after.
 * The connect timeout is the same: a CONNECT at exactly opened_ms + connect_timeout_ms is
 * on time. Fields are read-only for callers (set by the functions below).
 */
typedef struct kw_eio_session {
    int64_t opened_ms;           /* ms, when the open packet went out */
    int64_t ping_sent_ms;        /* ms, when the last ping went out; opened_ms before that */
    uint32_t ping_interval_ms;   /* ms */
    uint32_t ping_timeout_ms;    /* ms */
    uint32_t connect_timeout_ms; /* ms */
    uint8_t awaiting_pong;       /* 1 while a ping is out without its pong */
    uint8_t connected;           /* 1 once a namespace CONNECT was accepted */
    uint8_t closed;              /* a kw_eio_action of a close, sticky; 0 while open */
} kw_eio_session;

/*
 * Starts the clock of a connection whose open packet goes out at now_ms, with the same
 * ping_interval_ms / ping_timeout_ms the open packet advertises and the Socket.IO
 * connect timeout (KW_EIO_PING_INTERVAL_MS, KW_EIO_PING_TIMEOUT_MS,
 * KW_EIO_CONNECT_TIMEOUT_MS by default). Each must be in 1..KW_EIO_TIMING_MAX_MS.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL s, a value out of range).
 */
KW_MUST_CHECK kw_err kw_eio_session_init(kw_eio_session *s, int64_t now_ms,
                                         uint32_t ping_interval_ms, uint32_t ping_timeout_ms,
                                         uint32_t connect_timeout_ms);

/*
 * Records a pong received at now_ms. On time (now_ms <= ping_sent_ms + ping_timeout_ms):
 * the next ping is due ping_sent_ms + ping_interval_ms. A late pong closes the session
 * (its tick then says KW_EIO_CLOSE_PONG_TIMEOUT); a pong with no ping out is a protocol
 * error (stock clients only answer pings). The caller closes the connection on an error.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL s), KW_ERR_STATE (late, unsolicited, or the
 * session is already closed).
 */
KW_MUST_CHECK kw_err kw_eio_session_on_pong(kw_eio_session *s, int64_t now_ms, kw_error *err);

/*
 * Records that a namespace CONNECT was accepted at now_ms, which stops the connect timeout
 * (a CONNECT at exactly opened_ms + connect_timeout_ms is on time).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL s), KW_ERR_STATE (the connect came late,
 * which closes the session with KW_EIO_CLOSE_CONNECT_TIMEOUT, or it was already closed).
 */
KW_MUST_CHECK kw_err kw_eio_session_on_connect(kw_eio_session *s, int64_t now_ms, kw_error *err);

/*
 * Says what is due at now_ms and when to call again. *action: a close when its deadline
 * has passed (the connect timeout is reported before the pong timeout when both have),
 * else KW_EIO_SEND_PING when a ping is due and none is out (the session then counts the
 * ping as sent at now_ms), else KW_EIO_NOTHING. Once a close was returned, every later
 * tick returns the same close. *next_ms: the earliest time at which the answer can change
 * (INT64_MAX after a close); a timer at *next_ms never fires early, as every deadline is
 * the first millisecond that is late. Time must not go backwards between calls.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (a NULL pointer).
 */
KW_MUST_CHECK kw_err kw_eio_session_tick(kw_eio_session *s, int64_t now_ms, kw_eio_action *action,
                                         int64_t *next_ms);

#endif
