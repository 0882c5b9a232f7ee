/*
 * media_key.h — the meeting media-key agreement (DESIGN.md section 6, seeds 001 and 003).
 *
 * Every participant of a meeting must end up holding the same 32-byte media key (LiveKit
 * frame encryption, frame.h) without the server ever seeing it. The key travels only
 * inside Signal messages between participants; this file is the protocol those messages
 * speak, as a pure state machine: no sockets, no clock, no entropy source of its own.
 * The caller feeds it what happens (start, a peer joined or left, a decrypted payload
 * arrived, time passed) with the current time in ms, and drains the actions it asks for
 * (send this payload to that peer, here is the new key, the exchange failed).
 *
 * Which key wins: a higher epoch (a rotation) beats a lower one; within an epoch the key
 * created first (smaller created_ms) wins, so participants who all joined an empty meeting
 * at once and each made a key converge on the oldest one; then the smaller key_id, then
 * the smaller key bytes, so any two different keys are ordered. Every rule below only ever
 * moves a participant to a better key, which is why the message flood ends.
 *
 * Rules, per participant:
 *   - start with nobody present: create an epoch-0 key (we are first). Otherwise request
 *     the key from the longest-present peer (smallest joined_ms, then id); the request
 *     fails after KW_MKA_REQUEST_TIMEOUT_MS, on a media_key_unavailable answer, or when
 *     that peer leaves, and the next peer in that order is asked (the list is cycled);
 *     the third failure ends in KW_MKA_FAILED. If every peer leaves meanwhile we are
 *     alone and create a fresh key. A key from anyone ends the request.
 *   - a received key that is better than ours (or our first) is adopted (a KEY action);
 *     when it replaces a key we had, it is sent on to every known peer but its sender.
 *     A worse key is answered with ours, so its sender converges; an identical one is
 *     ignored.
 *   - a peer that joins while we hold a key gets our key at once (any holder sends, not
 *     only the key's creator: the creator may have left, and the joiner may hold a key of
 *     its own from a simultaneous start). A peer that joins, or asks us, while we have no
 *     key yet gets our first key when we have one.
 *   - a request is answered with our key, or media_key_unavailable while we have none.
 *   - rotation (a new epoch) is made by a participant that no present peer outranks.
 *
 * TRUST: the state machine believes every payload it is given. The caller must feed only
 * payloads that were decrypted from an authenticated Signal session with a device the
 * server reports as a present participant of this meeting (a payload from anyone else
 * could replace the key with one its sender knows). The meeting id is not part of the
 * payloads: the caller keeps one kw_mka per meeting and routes by the Signal relay event's
 * meeting/channel id.
 *
 * TIME: now_ms is the caller's monotonic-enough clock in ms (it becomes created_ms of the
 * keys we create and drives the request deadline); peer joined_ms values are the
 * server's joinedAt and are only compared with each other.
 *
 * THREAD SAFETY: a kw_mka is not thread-safe; use it from one thread (the event loop).
 */
#ifndef KEYWAVE_MEDIA_KEY_H
#define KEYWAVE_MEDIA_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"
#include "keywave/random.h"

#define KW_MEDIA_KEY_BYTES        32   /* the raw media key */
#define KW_MEDIA_KEY_ID_HEX       16   /* key_id as lowercase hex in JSON */
#define KW_MKA_PEER_ID_MAX        128  /* longest peer id in bytes, without the NUL */
#define KW_MKA_PEERS_MAX          1024 /* most peers one participant tracks */
#define KW_MKA_REQUEST_ID_MIN     16   /* request_id: 16..64 lowercase hex characters */
#define KW_MKA_REQUEST_ID_MAX     64
#define KW_MKA_PAYLOAD_MAX        512  /* longest payload accepted or produced, bytes */
#define KW_MKA_REQUEST_TIMEOUT_MS 5000 /* per asked peer (seed 001, question 14) */
#define KW_MKA_MAX_FAILURES       3    /* failed requests before KW_MKA_FAILED */
#define KW_MKA_QUEUE_MAX          (2 * KW_MKA_PEERS_MAX + 16) /* undrained actions */

/* Function forms of the constants above, for the wasm glue. */
size_t kw_media_key_bytes(void);
size_t kw_mka_peer_id_max(void);
size_t kw_mka_payload_max(void);
int64_t kw_mka_request_timeout_ms(void);

/* A meeting media key and what orders it. Holds a secret: wipe with kw_media_key_wipe. */
typedef struct kw_media_key {
    uint8_t key[KW_MEDIA_KEY_BYTES]; /* the secret */
    uint32_t epoch;                  /* 0 for a session's first key, +1 per rotation */
    int64_t created_ms;              /* creator's clock when it was made, ms, >= 0 */
    uint64_t key_id;                 /* random; 16 lowercase hex digits in JSON */
} kw_media_key;

/*
 * Orders two keys: negative when a is better (a wins), positive when b is better, 0 only
 * when both are identical (same bytes and metadata). Better = higher epoch; then smaller
 * created_ms; then smaller key_id; then smaller key bytes (compared in constant time).
 */
int kw_media_key_compare(const kw_media_key *a, const kw_media_key *b);

/*
 * Makes a fresh key: KW_MEDIA_KEY_BYTES random bytes and a random key_id from rnd.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (created_ms < 0), or rnd's error (out wiped).
 */
KW_MUST_CHECK kw_err kw_media_key_generate(const kw_random *rnd, uint32_t epoch, int64_t created_ms,
                                           kw_media_key *out);

/* Wipes a key in place. Accepts NULL. */
void kw_media_key_wipe(kw_media_key *k);

#define KW_MEDIA_KEY_FINGERPRINT_CHARS 19 /* "xxxx xxxx xxxx xxxx" */

/*
 * A short fingerprint people compare to see they hold the same key: the first 8 bytes of
 * SHA-256(key bytes) as four space-separated groups of 4 lowercase hex digits, written
 * with a NUL into out. It reveals nothing usable about the key (a 64-bit hash prefix).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL), KW_ERR_CRYPTO.
 */
KW_MUST_CHECK kw_err kw_media_key_fingerprint(const kw_media_key *k,
                                              char out[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1]);

/* ---- Payloads (JSON inside a Signal message) ------------------------------------------ */

typedef enum kw_mka_msg_type {
    KW_MKA_MSG_REQUEST = 1,     /* {"type":"media_key_request","request_id":"<hex>"} */
    KW_MKA_MSG_KEY = 2,         /* {"type":"media_key","request_id":"<hex>"|null,"key":"<b64>",
                                    "epoch":N,"created_ms":N,"key_id":"<16 hex>"} */
    KW_MKA_MSG_UNAVAILABLE = 3, /* {"type":"media_key_unavailable","request_id":"<hex>"} */
} kw_mka_msg_type;

/* One decoded payload. Holds a secret for KW_MKA_MSG_KEY: wipe with kw_mka_msg_wipe. */
typedef struct kw_mka_msg {
    kw_mka_msg_type type;
    char request_id[KW_MKA_REQUEST_ID_MAX + 1]; /* "" = JSON null (an unsolicited key) */
    kw_media_key key;                           /* KW_MKA_MSG_KEY only */
} kw_mka_msg;

/*
 * Encodes msg as compact JSON into out (capacity out_size, KW_MKA_PAYLOAD_MAX + 1 always
 * suffices), NUL-terminated; *out_len gets the length without the NUL. The caller owns out
 * and should wipe it after sending a KW_MKA_MSG_KEY. request_id must be 16..64 lowercase
 * hex, or "" for a key that answers no request.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (bad type, request_id or created_ms),
 * KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_mka_msg_encode(const kw_mka_msg *msg, char *out, size_t out_size,
                                       size_t *out_len);

/*
 * Decodes one payload strictly: a JSON object of exactly the fields of its type (field
 * order and whitespace free; duplicate keys rejected). On failure out is wiped and err
 * (may be NULL) names the field. Returns KW_OK;
 * KW_ERR_INVALID_ARGUMENT: longer than KW_MKA_PAYLOAD_MAX, unknown "type" value,
 *   request_id not 16..64 lowercase hex, key not 32 bytes, epoch outside 0..2^32-1,
 *   created_ms negative, key_id not 16 lowercase hex;
 * KW_ERR_JSON: not a JSON object, a field missing or of the wrong JSON type;
 * KW_ERR_UNKNOWN_FIELD: a field the type does not have;
 * KW_ERR_BASE64: key is not standard padded base64.
 */
KW_MUST_CHECK kw_err kw_mka_msg_decode(const char *json, size_t len, kw_mka_msg *out,
                                       kw_error *err);

/* Wipes a message in place. Accepts NULL. */
void kw_mka_msg_wipe(kw_mka_msg *msg);

/* ---- The agreement state machine ------------------------------------------------------ */

typedef enum kw_mka_state {
    KW_MKA_IDLE = 0,       /* not started, or after kw_mka_leave */
    KW_MKA_REQUESTING = 1, /* waiting for a key from a peer */
    KW_MKA_HAVE_KEY = 2,   /* holds a current key */
    KW_MKA_FAILED = 3,     /* three requests failed; kw_mka_start retries */
} kw_mka_state;

/* A present peer as video:check-participants reports it. */
typedef struct kw_mka_peer {
    const char *id;    /* borrowed; 1..KW_MKA_PEER_ID_MAX bytes of printable ASCII (0x21-0x7e) */
    int64_t joined_ms; /* server joinedAt, 0..INT64_MAX-1 */
} kw_mka_peer;

typedef enum kw_mka_action_type {
    KW_MKA_ACTION_SEND = 1,   /* send payload to peer `to` over Signal */
    KW_MKA_ACTION_KEY = 2,    /* `key` is now the current key: give it to the frame cryptor */
    KW_MKA_ACTION_FAILED = 3, /* the key exchange failed (`error`); tell the user */
} kw_mka_action_type;

/*
 * One thing the caller must do. Everything is inline: the action owns its payload and
 * key bytes, and the caller owns the action it passed to kw_mka_next_action. SEND
 * payloads and KEY actions hold the secret key: call kw_mka_action_wipe when done.
 */
typedef struct kw_mka_action {
    kw_mka_action_type type;
    char to[KW_MKA_PEER_ID_MAX + 1];      /* SEND: recipient peer id */
    char payload[KW_MKA_PAYLOAD_MAX + 1]; /* SEND: NUL-terminated JSON */
    size_t payload_len;                   /* SEND: strlen(payload) */
    kw_media_key key;                     /* KEY: the new current key */
    kw_err error;                         /* FAILED: KW_ERR_KEY_EXCHANGE_FAILED */
} kw_mka_action;

/* Wipes an action in place (payload and key). Accepts NULL. */
void kw_mka_action_wipe(kw_mka_action *a);

/* One participant's view of one meeting. */
typedef struct kw_mka kw_mka;

/*
 * Creates a state machine for participant self_id (a peer id as in kw_mka_peer, e.g.
 * "<user_id>:<device_id>" or "guest_<session_id>"), in KW_MKA_IDLE. rnd is borrowed and
 * must outlive the object. *out is owned by the caller (kw_mka_free).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (bad self_id, NULL rnd or out), KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_mka_new(const char *self_id, const kw_random *rnd, kw_mka **out);

/* Frees m, wiping its key and queued actions. Accepts NULL. */
void kw_mka_free(kw_mka *m);

/*
 * Starts (or, from KW_MKA_FAILED, retries) the agreement with the peers present now, as
 * video:check-participants lists them (ourselves excluded). They count as present before
 * us (they outrank us for rotation). No peers: a fresh epoch-0 key is created (a KEY
 * action); else a request goes to the longest-present peer (a SEND action) and the state
 * is KW_MKA_REQUESTING with a deadline of now_ms + KW_MKA_REQUEST_TIMEOUT_MS.
 * Pass the peers that can answer: those with hasE2EEKey when the server reports it. A peer
 * still waiting for a key answers "unavailable", and if every key holder has left, asking
 * only keyless peers ends in KW_MKA_FAILED; with no key holder listed, we create the key.
 * Returns KW_OK; KW_ERR_STATE (not IDLE or FAILED, or the action queue is full);
 * KW_ERR_INVALID_ARGUMENT (n > KW_MKA_PEERS_MAX, a bad or duplicate id, our own id, a
 * joined_ms out of range, now_ms < 0); KW_ERR_NOMEM; rnd's error. On error nothing changed.
 */
KW_MUST_CHECK kw_err kw_mka_start(kw_mka *m, int64_t now_ms, const kw_mka_peer *peers, size_t n);

/*
 * A peer joined (video:participant-joined), or re-joined: it now counts as present after
 * us. While we hold a key it is sent to the joiner at once; otherwise the joiner gets our
 * first key. Returns KW_OK; KW_ERR_STATE (IDLE, or the queue is full);
 * KW_ERR_INVALID_ARGUMENT (bad id, our own id, joined_ms out of range, too many peers);
 * KW_ERR_NOMEM. On error nothing changed.
 */
KW_MUST_CHECK kw_err kw_mka_peer_joined(kw_mka *m, int64_t now_ms, const char *id,
                                        int64_t joined_ms);

/*
 * A peer left (video:participant-left, or its disconnect). If it was the peer we were
 * asking, that request failed now (the next peer is asked, or we fail, or — with no peer
 * left — we create a key). Unknown ids are ignored. Returns KW_OK; KW_ERR_STATE (IDLE,
 * or the queue is full); KW_ERR_INVALID_ARGUMENT (bad id); rnd's error. On error nothing
 * changed.
 */
KW_MUST_CHECK kw_err kw_mka_peer_left(kw_mka *m, int64_t now_ms, const char *id);

/*
 * A payload arrived from peer from_id (decrypted by the caller from a Signal message:
 * see TRUST above). json[0..len) need not be NUL-terminated; it is borrowed. An unknown
 * sender is added to the peers (as present after us). A request gets an answer in every
 * state (IDLE and FAILED answer media_key_unavailable). Returns KW_OK;
 * KW_ERR_STATE: a key arrived while IDLE or FAILED (ignored), or the queue is full;
 * the kw_mka_msg_decode errors; KW_ERR_INVALID_ARGUMENT also for a bad from_id, our own
 * id or too many peers; KW_ERR_NOMEM. On error nothing changed. err (may be NULL) gets a
 * detail.
 */
KW_MUST_CHECK kw_err kw_mka_receive(kw_mka *m, int64_t now_ms, const char *from_id,
                                    const char *json, size_t len, kw_error *err);

/*
 * Lets time pass: when the request deadline has come (now_ms >= kw_mka_deadline), that
 * request failed (see kw_mka_peer_left). Call it at kw_mka_deadline, or whenever; early
 * calls do nothing. The third failure queues a FAILED action and enters KW_MKA_FAILED;
 * the call itself still returns KW_OK. Returns KW_OK; KW_ERR_STATE (queue full); rnd's
 * error. On error nothing changed.
 */
KW_MUST_CHECK kw_err kw_mka_tick(kw_mka *m, int64_t now_ms);

/*
 * Rotates: a fresh key of epoch current + 1, created now, becomes current (a KEY action)
 * and is sent to every known peer. Only a participant that no present peer outranks may
 * rotate (peers listed at start are present before us; peers that joined or wrote later
 * are not). Returns KW_OK; KW_ERR_NOT_ROTATOR; KW_ERR_STATE (no key, the epoch is at its
 * maximum, or the queue is full); rnd's error. On error nothing changed.
 */
KW_MUST_CHECK kw_err kw_mka_rotate(kw_mka *m, int64_t now_ms);

/*
 * We left the meeting: the key and queued actions are wiped, the peers forgotten, and the
 * state is KW_MKA_IDLE. A later kw_mka_start begins afresh (with nobody present, a new
 * key: a new session never reuses the old one).
 */
void kw_mka_leave(kw_mka *m);

/*
 * Dequeues the oldest pending action into *out (the caller's; wipe it when done).
 * Returns 1 when one was dequeued, 0 when the queue is empty (*out untouched). Drain the
 * queue after every input: an input that could overflow KW_MKA_QUEUE_MAX is refused.
 */
int kw_mka_next_action(kw_mka *m, kw_mka_action *out);

/* When kw_mka_tick must next be called (ms, the now_ms clock), or INT64_MAX for never. */
int64_t kw_mka_deadline(const kw_mka *m);

/* Copies the current key into *out. Returns KW_OK or KW_ERR_NO_KEY (*out untouched). */
KW_MUST_CHECK kw_err kw_mka_current_key(const kw_mka *m, kw_media_key *out);

/* The current state. */
kw_mka_state kw_mka_get_state(const kw_mka *m);

#endif
