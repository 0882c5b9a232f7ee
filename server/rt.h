/*
 * rt.h — keywaved's realtime module: Socket.IO v5 over Engine.IO v4 on WebSocket
 * (DESIGN.md section 8), with no lws type in sight.
 *
 * http_lws.c is a thin adapter: it turns WebSocket callbacks into the kw_rt_conn_* calls
 * below (open, receive, tick, closed) and writes the frames this module queues from its
 * WRITEABLE callback. Everything else — the Engine.IO heartbeat, namespaces, CONNECT auth,
 * the event table, rooms, the outbound queues — is here and in rt_auth.c / rt_video.c,
 * testable without sockets.
 *
 * One connection (kw_rt_conn, the lws per-session block, fixed size, zeroed by lws) may
 * carry two Socket.IO sockets at once, one per namespace: "/" (a member device) and
 * "/external" (a guest), as a stock client multiplexes namespaces on one manager. Each
 * socket gets a number (socket id, never reused while the process runs) that presence
 * (presence.h) and rooms key on. Buffers exist only while needed: a receive buffer while
 * a fragmented WebSocket message arrives, queued frames until written.
 *
 * Outbound queue (STYLE section 4): each connection queues at most KW_RT_QUEUE_FRAMES
 * frames / KW_RT_QUEUE_BYTES bytes addressed to it by *others*; an event whose delivery
 * would overflow a recipient's queue fails as a whole with the ack {error:"rate_limited"}
 * and changes nothing. Replies to the caller itself (its acks, video:participants-info)
 * always go in; the adapter pauses reading from a connection whose queue is over the
 * limit (kw_rt_conn_rx_paused), so the caller's own backlog stays bounded too.
 *
 * All functions run on the event loop (one thread, no locks).
 */
#ifndef KEYWAVE_SERVER_RT_H
#define KEYWAVE_SERVER_RT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db_members.h"
#include "http.h"
#include "keywave/eio.h"
#include "keywave/err.h"

struct kw_server;

#define KW_RT_QUEUE_FRAMES     256                /* frames queued to one connection by others */
#define KW_RT_QUEUE_BYTES      (2u << 20)         /* bytes queued to one connection by others */
#define KW_RT_ROOMS_PER_SOCKET 8                  /* meeting rooms one member socket may join */
#define KW_RT_ROOM_NAME_MAX    (KW_DB_ID_MAX + 2) /* "m:" or "g:" + a meeting id */
#define KW_RT_DEVICE_ID_MAX    20                 /* a member device id: decimal uint64 */

/* The two namespaces. */
typedef enum kw_rt_nsp {
    KW_RT_NSP_MEMBER = 0, /* "/" */
    KW_RT_NSP_GUEST = 1,  /* "/external" */
} kw_rt_nsp;
#define KW_RT_NSP_COUNT 2

typedef struct kw_rt kw_rt;
typedef struct kw_rt_room kw_rt_room;
typedef struct kw_rt_frame kw_rt_frame;

/* A member device connected on "/". */
typedef struct kw_rt_member {
    uint64_t socket_id; /* 0: not connected */
    char user_id[KW_DB_ID_MAX + 1];
    char device_id[KW_RT_DEVICE_ID_MAX + 1];   /* decimal */
    kw_rt_room *rooms[KW_RT_ROOMS_PER_SOCKET]; /* meeting rooms joined; borrowed from rt */
    uint8_t items_pending; /* stored items left to deliver once the queue drains (rt_items.c) */
} kw_rt_member;

/* A guest connected on "/external". */
typedef struct kw_rt_guest {
    uint64_t socket_id; /* 0: not connected */
    char session_id[KW_DB_ID_MAX + 1];
    char meeting_id[KW_DB_ID_MAX + 1];
    kw_rt_room *room; /* the meeting's guest room; borrowed from rt */
    /* Events per minute (kw_rt_guest_rate): a sliding-window estimate in fixed space. */
    int64_t rate_start_ms;        /* start of the current one-minute window; 0: none yet */
    uint32_t rate_prev, rate_cur; /* events accepted in the previous / current window */
} kw_rt_guest;

/*
 * One WebSocket connection: the lws per-session block (zeroed by lws before open). Fields
 * are the module's (the adapter touches only rx_paused), read through the functions below.
 */
typedef struct kw_rt_conn {
    void *handle;        /* the adapter's connection (the wsi); borrowed */
    uint64_t conn_id;    /* Engine.IO session number; 0 before open */
    kw_eio_session eio;  /* heartbeat and connect-timeout clock */
    kw_rt_member member; /* namespace "/" */
    kw_rt_guest guest;   /* namespace "/external" */

    char *rx;      /* owned; a fragmented message being reassembled, else NULL */
    size_t rx_len; /* bytes in rx */
    size_t rx_cap; /* bytes allocated */

    kw_rt_frame *q_head, *q_tail; /* owned; frames to write, oldest first */
    uint32_t q_frames;            /* frames queued */
    size_t q_bytes;               /* bytes queued (frame text) */
    size_t q_sent;                /* bytes of q_head already written */

    uint16_t close_code; /* nonzero: close with this WebSocket code once the queue is out */
    uint8_t rx_paused;   /* the adapter's: 1 while it holds reading (kw_rt_conn_rx_paused) */
    uint8_t open;        /* 1 between kw_rt_conn_open and kw_rt_conn_closed */

    /* The adapter's: one list of open connections walked by a shared heartbeat, so that
     * 19 000 idle sockets do not each keep a timer in lws's sorted list (insertion there
     * is linear in the number of timers). */
    struct kw_rt_conn *hb_prev, *hb_next;
    int64_t hb_due_ms; /* when kw_rt_conn_tick is due; INT64_MAX: never */
} kw_rt_conn;

/* What the adapter must do after a call. */
typedef enum kw_rt_verdict {
    KW_RT_CONTINUE = 0, /* keep the connection */
    KW_RT_CLOSE = 1,    /* close it now, with kw_rt_conn_close_code() */
} kw_rt_verdict;

/*
 * Creates the realtime state of srv. headroom: bytes each queued frame keeps free before
 * its text (the adapter's LWS_PRE), so the frame is written without a copy. wake(arg,
 * handle) is called when a connection has something to write (the adapter asks for a
 * WRITEABLE callback); it must not call back into this module. *out owned by the caller
 * (kw_rt_free). Errors: KW_ERR_INVALID_ARGUMENT (NULL srv, wake or out), KW_ERR_NOMEM.
 */
kw_err kw_rt_new(struct kw_server *srv, size_t headroom, void (*wake)(void *arg, void *handle),
                 void *arg, kw_rt **out) KW_MUST_CHECK;

/*
 * From now on closing connections frees them without telling anyone (the server is
 * going down and the other connections with it). Accepts NULL.
 */
void kw_rt_shutdown(kw_rt *rt);

/* Frees rt. Every connection must have been closed (kw_rt_conn_closed). Accepts NULL. */
void kw_rt_free(kw_rt *rt);

/* Connections open now. */
size_t kw_rt_connections(const kw_rt *rt);

/*
 * Checks a WebSocket upgrade before it is accepted: path must be "/socket.io/" and the
 * query EIO=4 with transport=websocket (kw_eio_check_query). Errors:
 * KW_ERR_INVALID_ARGUMENT with the detail.
 */
kw_err kw_rt_check_upgrade(const char *path, const char *query, kw_error *err) KW_MUST_CHECK;

/*
 * A WebSocket was accepted at now_ms: numbers the connection, starts its Engine.IO clock
 * and queues the open packet. c must be zeroed (as lws hands it over). *next_ms gets when
 * to call kw_rt_conn_tick. Errors: KW_ERR_NOMEM (close the connection).
 */
kw_err kw_rt_conn_open(kw_rt *rt, kw_rt_conn *c, void *handle, int64_t now_ms,
                       int64_t *next_ms) KW_MUST_CHECK;

/*
 * Bytes of one WebSocket message arrived: data[0..len) is the piece, first/final say
 * whether it starts/ends the message, binary that it is a binary message. Complete
 * messages are decoded and acted upon (answers queued). Returns KW_RT_CLOSE on a protocol
 * violation (the close code says which: 1002 protocol, 1003 binary, 1009 too big), a
 * client close packet, or a bad CONNECT that leaves no namespace connected (after its
 * CONNECT_ERROR is written: then close_code is set and the adapter closes once the
 * queue is out; the verdict is KW_RT_CONTINUE).
 */
kw_rt_verdict kw_rt_conn_receive(kw_rt *rt, kw_rt_conn *c, const char *data, size_t len, int first,
                                 int final, int binary, int64_t now_ms);

/*
 * The connection's timer fired (or any time): sends a due ping, or says the connection
 * timed out (KW_RT_CLOSE: no pong within pingTimeout, or no CONNECT within the connect
 * timeout). *next_ms gets the next due time (INT64_MAX when closing).
 */
kw_rt_verdict kw_rt_conn_tick(kw_rt *rt, kw_rt_conn *c, int64_t now_ms, int64_t *next_ms);

/*
 * The next frame to write: *text points at its unsent bytes (with the module's headroom
 * free before text when *whole is 1, i.e. nothing of it was written yet), *len their
 * count. Returns 0 when the queue is empty.
 */
int kw_rt_conn_peek(const kw_rt *rt, const kw_rt_conn *c, char **text, size_t *len, int *whole);

/* n bytes of the head frame were written; frees it once all are. */
void kw_rt_conn_written(kw_rt *rt, kw_rt_conn *c, size_t n);

/* The queue is over its limit: the adapter should stop reading until it is not. */
int kw_rt_conn_rx_paused(const kw_rt_conn *c);

/* Nonzero when the connection should close once its queue is written: the WebSocket
 * close code to send (1000 normal, 1002 protocol error, 1003 binary, 1008 policy, 1009
 * too big). */
unsigned kw_rt_conn_close_code(const kw_rt_conn *c);

/*
 * The connection is gone at now_ms (whatever the reason): each of its sockets
 * disconnects (leaves presence, telling the others, and its rooms), and its buffers are
 * freed. Safe on a connection that never opened.
 */
void kw_rt_conn_closed(kw_rt *rt, kw_rt_conn *c, int64_t now_ms);

/*
 * Answers a plain HTTP request for the Socket.IO endpoint: when req->path is
 * "/socket.io/" (a polling client, or a GET without Upgrade), sets res to 400
 * {error:"invalid_field", detail} (kw_eio_check_query's sentence, e.g. "polling
 * transport is not supported; use transports: ['websocket']") and returns 1; otherwise
 * returns 0 and leaves res alone. The HTTP layer asks this before routing, since the
 * endpoint's path ends in '/', which route patterns do not.
 */
int kw_rt_http(const kw_request *req, kw_response *res);

/* ---- for event handlers (rt_video.c, rt_auth.c) ------------------------------------ */

/* One call of an event handler. */
typedef struct kw_rt_call {
    struct kw_server *srv; /* borrowed */
    kw_rt *rt;             /* borrowed */
    kw_rt_conn *conn;      /* the caller's connection */
    kw_rt_nsp nsp;         /* the caller's namespace */
    json_t *arg;           /* the event's first argument (borrowed); NULL when none */
    json_t *ack;           /* {ok:true} to extend on success (borrowed; the dispatcher acks) */
    int64_t now_ms;        /* wall clock, ms */
} kw_rt_call;

/*
 * An event handler: on KW_OK the dispatcher acks call->ack; on an error it acks
 * {error: kw_rt_error_token(code)} and the handler must have changed nothing.
 */
typedef kw_err (*kw_rt_handler)(kw_rt_call *call, kw_error *err);

/* A row of an event table; a table ends with a row whose name is NULL. */
typedef struct kw_rt_event {
    kw_rt_nsp nsp;         /* the namespace it is received on */
    const char *name;      /* the event name */
    kw_rt_handler handler; /* NULL: defined by DESIGN.md but not built yet (not_built) */
} kw_rt_event;

extern const kw_rt_event kw_rt_events_video[]; /* rt_video.c */

/* The ack error token of a code: forbidden, invalid_payload, not_found, rate_limited... */
const char *kw_rt_error_token(kw_err code);

/* The connection holding socket_id and which namespace it is on; NULL if it is gone. */
kw_rt_conn *kw_rt_find(kw_rt *rt, uint64_t socket_id, kw_rt_nsp *nsp);

/*
 * A set of recipient sockets for one event, filled by a handler, checked for queue room
 * before anything changes (kw_rt_batch_check), then sent (kw_rt_batch_send).
 */
typedef struct kw_rt_batch {
    uint64_t *ids; /* owned; socket ids */
    size_t n, cap;
} kw_rt_batch;

/* Adds a socket id (duplicates are kept once). Errors: KW_ERR_NOMEM. */
kw_err kw_rt_batch_add(kw_rt_batch *b, uint64_t socket_id) KW_MUST_CHECK;

/* Frees the ids. Accepts a zeroed batch. */
void kw_rt_batch_free(kw_rt_batch *b);

/*
 * Encodes the event name(payload) for nsp into a frame text (malloc'd, *text owned by the
 * caller, free()). payload NULL: no argument. Errors: KW_ERR_NOMEM, KW_ERR_INTERNAL.
 */
kw_err kw_rt_encode_event(kw_rt_nsp nsp, const char *name, json_t *payload, char **text,
                          size_t *len) KW_MUST_CHECK;

/* KW_ERR_RATE_LIMITED when a recipient's queue has no room for len more bytes, else KW_OK.
 * Sockets that are gone are skipped. */
kw_err kw_rt_batch_check(kw_rt *rt, const kw_rt_batch *b, size_t len, kw_error *err) KW_MUST_CHECK;

/*
 * Queues text to every socket of b that is still there (after kw_rt_batch_check, so it
 * fits). Returns how many got it. A frame that cannot be allocated is logged and skipped.
 */
size_t kw_rt_batch_send(kw_rt *rt, const kw_rt_batch *b, const char *text, size_t len);

/*
 * Queues an event to the caller's own socket (no queue limit: see the top of this file).
 * Errors: KW_ERR_NOMEM, KW_ERR_INTERNAL.
 */
kw_err kw_rt_emit_self(kw_rt_call *call, const char *name, json_t *payload) KW_MUST_CHECK;

/* Rooms: sets of socket ids by name ("m:<meeting_id>" members, "g:<meeting_id>" guests). */

/* Adds every socket of room name to b (none when the room does not exist). */
kw_err kw_rt_room_collect(kw_rt *rt, const char *name, kw_rt_batch *b) KW_MUST_CHECK;

/*
 * Joins the member socket of c to room name. Already in it: KW_OK, no change.
 * Errors: KW_ERR_RATE_LIMITED (KW_RT_ROOMS_PER_SOCKET rooms already), KW_ERR_NOMEM,
 * KW_ERR_INVALID_ARGUMENT (name too long), KW_ERR_STATE (no member socket).
 */
kw_err kw_rt_member_join(kw_rt *rt, kw_rt_conn *c, const char *name, kw_error *err) KW_MUST_CHECK;

/* Takes the member socket of c out of room name. Errors: KW_ERR_NOT_FOUND (not in it). */
kw_err kw_rt_member_leave(kw_rt *rt, kw_rt_conn *c, const char *name, kw_error *err) KW_MUST_CHECK;

/* ---- CONNECT auth (rt_auth.c) ------------------------------------------------------- */

/*
 * Checks a member CONNECT auth object {client_id, timestamp (integer ms), nonce,
 * signature} as a signed `GET /socket.io/auth` with an empty body (kw_auth_member_check,
 * the nonce store shared with HTTP). On KW_OK fills m->user_id and m->device_id.
 * Errors: KW_ERR_MISSING_AUTH_HEADERS (no auth or a field missing),
 * KW_ERR_INVALID_AUTH_HEADERS (not an object, a field of the wrong type, an unknown
 * field), and every error of kw_auth_member_check.
 */
kw_err kw_rt_auth_member(struct kw_server *srv, json_t *auth, int64_t now_ms, kw_rt_member *m,
                         kw_error *err) KW_MUST_CHECK;

/*
 * Checks a guest CONNECT auth object {session_id, guest_secret} (kw_auth_guest_secret)
 * and that the secret belongs to that session. On KW_OK fills g->session_id and
 * g->meeting_id. Errors: KW_ERR_UNAUTHORIZED (no auth, malformed, unknown secret, or the
 * secret of another session), KW_ERR_SESSION_EXPIRED, KW_ERR_STORE, KW_ERR_CRYPTO.
 */
kw_err kw_rt_auth_guest(struct kw_server *srv, json_t *auth, int64_t now_ms, kw_rt_guest *g,
                        kw_error *err) KW_MUST_CHECK;

/*
 * After a guest socket connected: if a member of its meeting is present and the guest is
 * waiting, tells it meeting:host_present (it may have missed the moment). Implemented in
 * rt_video.c. Errors: KW_ERR_NOMEM (nothing sent).
 */
kw_err kw_rt_video_guest_connected(kw_rt *rt, kw_rt_conn *c, int64_t now_ms) KW_MUST_CHECK;

/*
 * A member socket disconnects: leaves every video channel (presence video_leave_all) and
 * tells the others video:participant-left. Implemented in rt_video.c.
 */
void kw_rt_video_disconnect(kw_rt *rt, uint64_t socket_id, int64_t now_ms);

/* The server the module belongs to. */
struct kw_server *kw_rt_server(kw_rt *rt);

/* ---- relays (rt_relay.c) and notices (rt_notify.c) ------------------------------------- */

#define KW_RT_GUEST_EVENTS_PER_MIN 100 /* events one guest socket may send per minute */

extern const kw_rt_event kw_rt_events_relay[]; /* rt_relay.c */

/*
 * Counts one event of guest socket g at now_ms: KW_OK while it has sent fewer than
 * KW_RT_GUEST_EVENTS_PER_MIN in the last minute (estimated from two fixed windows, no
 * allocation), else KW_ERR_RATE_LIMITED (not counted). Called by the dispatcher for every
 * event received on "/external".
 */
kw_err kw_rt_guest_rate(kw_rt_guest *g, int64_t now_ms, kw_error *err) KW_MUST_CHECK;

/*
 * kw_rt_guest_rate with a limit of per_minute events (1..10000000; the configured
 * KEYWAVE_GUEST_EVENTS_PER_MINUTE, config.h) instead of KW_RT_GUEST_EVENTS_PER_MIN.
 * Errors: KW_ERR_RATE_LIMITED (not counted), KW_ERR_INVALID_ARGUMENT (per_minute 0).
 */
kw_err kw_rt_guest_rate_limit(kw_rt_guest *g, uint32_t per_minute, int64_t now_ms,
                              kw_error *err) KW_MUST_CHECK;

/* Adds every "/" socket of member device (user_id, device_id) to b (a scan of the socket
 * index: for rare notices). Errors: KW_ERR_NOMEM. */
kw_err kw_rt_device_collect(kw_rt *rt, const char *user_id, const char *device_id,
                            kw_rt_batch *b) KW_MUST_CHECK;

/* Adds the "/external" sockets of guest session_id of meeting_id to b. Errors: KW_ERR_NOMEM. */
kw_err kw_rt_guest_collect(kw_rt *rt, const char *meeting_id, const char *session_id,
                           kw_rt_batch *b) KW_MUST_CHECK;

/*
 * Adds the sockets registered as video participants in meeting_id (present, presence.h)
 * to b: all of them when user_id is NULL, else those of device (user_id, device_id).
 * Errors: KW_ERR_NOMEM.
 */
kw_err kw_rt_present_collect(kw_rt *rt, const char *meeting_id, const char *user_id,
                             const char *device_id, kw_rt_batch *b) KW_MUST_CHECK;

/*
 * Notices for REST handlers (admission, prekeys:low). Each encodes event(payload) once
 * and queues it to the recipients that have queue room; a recipient whose queue is full
 * is skipped and logged (the REST change is already made: there is no one to refuse).
 * Each takes payload (decref'd; NULL sends nothing) and returns how many sockets got
 * it. All are no-ops returning 0 when srv->rt is NULL (handler tests run without
 * realtime).
 */

/* To the members of meeting_id: sockets joined to its room "m:<id>" or present in it.
 * Never to guests (INV-6). */
size_t kw_rt_emit_to_meeting_members(struct kw_server *srv, const char *meeting_id,
                                     const char *event, json_t *payload);

/* To every guest socket of meeting_id (its room "g:<id>" on "/external"), for news that
 * concerns all of them alike (meeting:ended). */
size_t kw_rt_emit_to_meeting_guests(struct kw_server *srv, const char *meeting_id,
                                    const char *event, json_t *payload);

/* To guest session_id of meeting_id only, on "/external" (INV-6). */
size_t kw_rt_emit_to_guest(struct kw_server *srv, const char *meeting_id, const char *session_id,
                           const char *event, json_t *payload);

/* To every "/" socket of member device (user_id, device_id decimal). */
size_t kw_rt_emit_to_device(struct kw_server *srv, const char *user_id, const char *device_id,
                            const char *event, json_t *payload);

#endif
