/*
 * net.h — the client's one network layer: HTTP requests and one Socket.IO connection to a
 * keywaved, over one libwebsockets client context (DESIGN.md sections 2 and 8). No other
 * client file sees an lws type.
 *
 * The model is synchronous, made for a command-line program written as straight-line code:
 * every call runs the event loop until its own answer arrives (or its timeout passes), and
 * whatever else arrives meanwhile on the Socket.IO connection — server events, pings — is
 * handled (pings answered) or queued (events) for kwc_sio_next. So a flow can do an HTTP
 * request in the middle of a meeting without missing an event, and nothing is re-entrant:
 * no callback ever runs user code.
 *
 * Packets are made and parsed with libkeywave's codec (keywave/eio.h, keywave/sio.h).
 *
 * THREADS: one kwc_net per thread; not thread-safe.
 */
#ifndef KEYWAVE_CLIENT_NET_H
#define KEYWAVE_CLIENT_NET_H

#include <stddef.h>

#include <jansson.h>

#include "keywave/err.h"

typedef struct kwc_net kwc_net;

/*
 * Creates a client for the server at base_url: "http://host[:port]" or
 * "https://host[:port]" (a trailing "/" is allowed; no path). https verifies the server's
 * certificate against the system store, unless the environment variable
 * KEYWAVE_CA_FILE names a PEM file to trust instead. *out owned by the caller
 * (kwc_net_free). Errors: KW_ERR_INVALID_ARGUMENT (bad URL: detail says why),
 * KW_ERR_NOMEM, KW_ERR_IO (the lws context could not be made).
 */
kw_err kwc_net_new(const char *base_url, kwc_net **out, kw_error *err) KW_MUST_CHECK;

/* Closes the Socket.IO connection if any, then frees n. Accepts NULL. */
void kwc_net_free(kwc_net *n);

/* The base URL as given, without a trailing "/". Borrowed from n. */
const char *kwc_net_base_url(const kwc_net *n);

/* ---- HTTP ----------------------------------------------------------------------------- */

typedef struct kwc_header {
    const char *name;  /* e.g. "X-Client-ID" */
    const char *value; /* borrowed */
} kwc_header;

typedef struct kwc_http_response {
    int status;      /* HTTP status, e.g. 200 */
    char *body;      /* owned, NUL-terminated (the NUL is not counted); never NULL on KW_OK */
    size_t body_len; /* bytes of body */
} kwc_http_response;

/*
 * Sends one request and waits for the whole answer: method ("GET", "POST", "PUT",
 * "PATCH", "DELETE"), target (path and query, "/api/meetings?x=1", sent exactly as given),
 * extra headers (n_headers of them; Content-Type: application/json is added when body is
 * not NULL), body[0..body_len) or NULL. Any HTTP status is KW_OK: the caller reads
 * out->status. Meanwhile the Socket.IO connection (if any) is serviced.
 * out is filled on KW_OK and zeroed on error; release it with kwc_http_response_clear.
 * Errors: KW_ERR_INVALID_ARGUMENT, KW_ERR_NOMEM, KW_ERR_IO (connect failed, connection
 * lost, TLS failed: detail says which), KW_ERR_TIMEOUT (no whole answer in timeout_ms),
 * KW_ERR_PAYLOAD_TOO_LARGE (answer body over 4 MiB).
 */
kw_err kwc_http_request(kwc_net *n, const char *method, const char *target,
                        const kwc_header *headers, size_t n_headers, const void *body,
                        size_t body_len, int timeout_ms, kwc_http_response *out,
                        kw_error *err) KW_MUST_CHECK;

/* Frees out->body (wiped first: bodies may hold secrets) and zeroes out. Accepts NULL. */
void kwc_http_response_clear(kwc_http_response *out);

/* ---- Socket.IO ------------------------------------------------------------------------ */

/* One event the server sent, queued until kwc_sio_next takes it. */
typedef struct kwc_event {
    char *name;   /* owned: the event name */
    json_t *args; /* owned: JSON array of the event's arguments (usually one object) */
} kwc_event;

/* Frees what e holds and zeroes it. Accepts NULL. */
void kwc_event_clear(kwc_event *e);

/*
 * Opens the WebSocket to /socket.io/?EIO=4&transport=websocket, waits for the Engine.IO
 * open packet, sends CONNECT for namespace nsp ("/" or "/external") with auth (borrowed;
 * NULL for none) and waits for the server's CONNECT answer. One namespace per kwc_net:
 * calling it while connected is KW_ERR_STATE. From then on server pings are answered
 * while any call of this file runs.
 * Errors: KW_ERR_STATE; KW_ERR_IO (connect/upgrade failed, connection lost);
 * KW_ERR_TIMEOUT; KW_ERR_UNAUTHORIZED — the server answered CONNECT_ERROR: when
 * connect_error is not NULL, *connect_error gets its data object (owned by the caller,
 * e.g. {"message":"invalid_signature"}), and err's detail holds the message;
 * KW_ERR_INVALID_MESSAGE (the server spoke something that is not Engine.IO/Socket.IO);
 * KW_ERR_NOMEM.
 */
kw_err kwc_sio_connect(kwc_net *n, const char *nsp, json_t *auth, int timeout_ms,
                       json_t **connect_error, kw_error *err) KW_MUST_CHECK;

/* 1 while the Socket.IO connection is up (CONNECT accepted, not closed), else 0. */
int kwc_sio_connected(const kwc_net *n);

/*
 * Sends EVENT [event, payload] without an ack. payload is borrowed (NULL: no argument).
 * Errors: KW_ERR_STATE (not connected), KW_ERR_INVALID_ARGUMENT, KW_ERR_NOMEM,
 * KW_ERR_IO (the connection is gone).
 */
kw_err kwc_sio_emit(kwc_net *n, const char *event, json_t *payload, kw_error *err) KW_MUST_CHECK;

/*
 * Sends EVENT [event, payload] with a fresh ack id and waits for its ACK; *ack gets the
 * ack's first argument (owned by the caller; JSON null when the ack has none). Events that
 * arrive meanwhile are queued. Errors: those of kwc_sio_emit, KW_ERR_TIMEOUT (no ack in
 * timeout_ms; a late ack is dropped).
 */
kw_err kwc_sio_call(kwc_net *n, const char *event, json_t *payload, int timeout_ms, json_t **ack,
                    kw_error *err) KW_MUST_CHECK;

/*
 * Takes the oldest queued event into *out (the caller's; kwc_event_clear it), waiting up
 * to timeout_ms (0: do not wait, only service what is already there) for one to arrive.
 * Errors: KW_ERR_TIMEOUT (none arrived; *out zeroed); KW_ERR_IO (the connection closed —
 * queued events are still handed out first; detail says why: server DISCONNECT, ping
 * timeout, socket closed); KW_ERR_STATE (never connected); KW_ERR_NOMEM.
 */
kw_err kwc_sio_next(kwc_net *n, int timeout_ms, kwc_event *out, kw_error *err) KW_MUST_CHECK;

/* Sends DISCONNECT and closes the WebSocket (waits at most 1 s for it to go). Queued events
 * are dropped. A later kwc_sio_connect opens a new connection. Accepts NULL / not connected. */
void kwc_sio_close(kwc_net *n);

#endif
