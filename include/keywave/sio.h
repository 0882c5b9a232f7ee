/*
 * sio.h — Socket.IO v5 packets, as carried in Engine.IO message packets (eio.h).
 *
 * Wire form (the default socket.io-parser encoding, without binary attachments):
 *
 *     <type digit>[<namespace>,][<ack id>][<JSON payload>]
 *
 *   0 CONNECT        payload: an object (the client's auth, or the server's {"sid":..}),
 *                    or none
 *   1 DISCONNECT     no payload
 *   2 EVENT          an array: a string event name, then its arguments; optional ack id
 *   3 ACK            an array (possibly empty); ack id required
 *   4 CONNECT_ERROR  an object {"message": string[, "data": any]}
 *   5/6 BINARY_EVENT / BINARY_ACK: refused (keywave sends JSON text only)
 *
 * The namespace is present only when it is not "/"; it starts with '/' and ends at the
 * ',' (socket.io-parser also ends it at the end of the packet, so `0/admin` is CONNECT to
 * /admin; keywave accepts that form and always writes the comma). Examples from the
 * protocol document: `0`, `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`,
 * `4{"message":"Not authorized"}`, `2["foo"]`, `2/admin,["bar"]`, `212["foo"]`,
 * `3/admin,13["bar"]`, `1/admin,`. On the WebSocket each is one Engine.IO message
 * packet, so the frame text is '4' followed by the packet: `42["foo"]`.
 *
 * Decoding is strict, so that a handler never sees a packet a stock client would not
 * send: a namespace is 1..KW_SIO_NSP_MAX bytes of URL-path characters (letters, digits,
 * and -._~!$&'()*+;=:@/% ; no ',', quotes, brackets or braces, so a missing comma before
 * the payload is caught); an ack id is 0..4294967295 without leading zeros, and only on
 * EVENT and ACK; the payload directly follows (no surrounding whitespace), is valid JSON
 * in valid UTF-8 (jansson: no duplicate keys, no \u0000, integers within int64), and has
 * the shape of its type; an event name is 1..KW_SIO_EVENT_MAX bytes and not one of
 * Socket.IO's reserved names (connect, connect_error, disconnect, disconnecting,
 * newListener, removeListener). The size limit is Engine.IO's maxPayload, checked on the
 * whole frame by kw_eio_decode before this decoder runs.
 *
 * Encoders write the whole WebSocket text frame, Engine.IO '4' included, into a caller
 * buffer: NUL-terminated, *out_len = length without the NUL; if cap < length + 1 they
 * return KW_ERR_BUFFER_TOO_SMALL with *out_len = the length needed (pass buf NULL, cap 0
 * to ask for the size, e.g. to allocate LWS_PRE + length). JSON text handed to an encoder
 * (args, data) is copied as given, not re-parsed: it must come from a JSON serializer.
 *
 * THREAD SAFETY: no shared state.
 */
#ifndef KEYWAVE_SIO_H
#define KEYWAVE_SIO_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_SIO_PROTOCOL   5           /* Socket.IO protocol revision */
#define KW_SIO_NSP_MAX    128         /* bytes of a namespace, its '/' included */
#define KW_SIO_EVENT_MAX  64          /* bytes of an event name (UTF-8) */
#define KW_SIO_ACK_ID_MAX 4294967295u /* largest ack id (uint32) */
#define KW_SIO_NO_ACK     (-1)        /* ack_id argument of an encoder: no ack id */

/* Function forms of the constants above, for the wasm glue. */
size_t kw_sio_nsp_max(void);
size_t kw_sio_event_max(void);

typedef enum kw_sio_type {
    KW_SIO_CONNECT = 0,
    KW_SIO_DISCONNECT = 1,
    KW_SIO_EVENT = 2,
    KW_SIO_ACK = 3,
    KW_SIO_CONNECT_ERROR = 4,
} kw_sio_type;

/*
 * One decoded packet. Pointers borrow from the decoder's input (or, for the default
 * namespace, a static "/"); nothing here is owned or NUL-terminated except event.
 */
typedef struct kw_sio_packet {
    kw_sio_type type;
    const char *nsp;  /* borrowed; "/" when the packet names none */
    size_t nsp_len;   /* bytes */
    int has_ack;      /* 1 when ack_id is set (always for ACK) */
    uint32_t ack_id;  /* 0 when has_ack is 0 */
    const char *data; /* borrowed JSON payload text (array or object); NULL when absent */
    size_t data_len;  /* bytes; 0 when absent */
    char event[KW_SIO_EVENT_MAX + 1]; /* EVENT: the event name, NUL-terminated; else "" */
    size_t event_len;                 /* bytes of event */
    size_t argc; /* EVENT: arguments after the name; ACK: array length; else 0 */
} kw_sio_packet;

/*
 * Decodes one Socket.IO packet: text is the data of an Engine.IO message packet (the
 * frame without its leading '4', i.e. kw_eio_packet.data). Validates the payload by
 * parsing it with jansson once and freeing it (lib/sio_json.h offers the same decode
 * that hands the parsed payload to the caller instead, so a server parses it only once).
 * *out is filled only on success; its pointers point into text.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL text with len > 0, NULL out),
 * KW_ERR_INVALID_MESSAGE (any rule of the header comment; the detail names it, e.g.
 * "binary packets are not supported"), KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_sio_decode(const char *text, size_t len, kw_sio_packet *out, kw_error *err);

/*
 * Encodes a packet from its parts: type, nsp[0..nsp_len) (NULL or "/" for the default
 * namespace), has_ack/ack_id, data[0..data_len) (the JSON payload, copied as given);
 * event and argc are ignored. Re-encoding a decoded packet gives a frame that decodes to
 * the same packet. Shape checks are cheap ones: EVENT and ACK data must start with '[',
 * CONNECT data (optional) and CONNECT_ERROR data with '{', DISCONNECT has none; an ack id
 * only on EVENT (optional) and ACK (required).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL p or out_len, an invalid namespace, type,
 * ack id or data shape), KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_sio_encode(const kw_sio_packet *p, char *buf, size_t cap, size_t *out_len,
                                   kw_error *err);

/*
 * Encodes EVENT `42[<nsp>,][<ack id>]["<name>"[,<args>]]`. nsp: NULL or "/" for the
 * default namespace, else a valid namespace (NUL-terminated). ack_id: KW_SIO_NO_ACK or
 * 0..KW_SIO_ACK_ID_MAX. name: NUL-terminated UTF-8, 1..KW_SIO_EVENT_MAX bytes, not
 * reserved; JSON-escaped here. args[0..args_len): the arguments as JSON text separated by
 * commas, without brackets (`{"a":1}` or `1,"x"`); NULL or empty for none.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL name or out_len, an invalid namespace,
 * ack id or name), KW_ERR_BUFFER_TOO_SMALL, KW_ERR_NOMEM (escaping a non-ASCII name).
 */
KW_MUST_CHECK kw_err kw_sio_encode_event(const char *nsp, int64_t ack_id, const char *name,
                                         const char *args, size_t args_len, char *buf, size_t cap,
                                         size_t *out_len, kw_error *err);

/*
 * Encodes ACK `43[<nsp>,]<ack id>[<args>]`, args as for kw_sio_encode_event (e.g.
 * `{"ok":true}`). ack_id: 0..KW_SIO_ACK_ID_MAX.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL out_len, an invalid namespace or ack id),
 * KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_sio_encode_ack(const char *nsp, int64_t ack_id, const char *args,
                                       size_t args_len, char *buf, size_t cap, size_t *out_len,
                                       kw_error *err);

/*
 * Encodes the server's CONNECT reply `40[<nsp>,]{"sid":"<sid>"}`; sid: NUL-terminated,
 * 1..64 of [A-Za-z0-9_-] (the Socket.IO socket id, distinct from the Engine.IO sid).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL sid or out_len, invalid namespace or sid),
 * KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_sio_encode_connect_ok(const char *nsp, const char *sid, char *buf,
                                              size_t cap, size_t *out_len, kw_error *err);

/*
 * Encodes CONNECT_ERROR `44[<nsp>,]{"message":"<message>"}` (what socket.io-client shows
 * as connect_error's err.message); message: NUL-terminated UTF-8, JSON-escaped here.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL message or out_len, invalid namespace,
 * message not UTF-8), KW_ERR_BUFFER_TOO_SMALL, KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_sio_encode_connect_error(const char *nsp, const char *message, char *buf,
                                                 size_t cap, size_t *out_len, kw_error *err);

#endif
