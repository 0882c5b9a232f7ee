/*
 * media_key.c — the meeting media-key agreement (media_key.h): key ordering, the payload
 * codec and the per-participant state machine.
 *
 * Every input is applied in two steps so that a failing input changes nothing: first
 * everything that can fail (validation, random bytes, room in the peer list and in the
 * action queue, encoding the payloads into queued actions, which a failure rolls back),
 * then the state change itself, which cannot fail. Payloads are encoded with snprintf
 * into the action's own buffer rather than with jansson, so no copy of a key is left in
 * freed heap memory on the way out; decoding uses jansson and wipes its copy of the key
 * text before freeing (the parser's own scratch buffer is beyond our reach).
 */
#include "keywave/media_key.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "json_strict.h"
#include "keywave/base64.h"

#define REQUEST_ID_RANDOM_BYTES 16 /* our request ids: 32 hex characters */
#define KEY_B64_LEN             44 /* base64 of 32 bytes, padded */

size_t kw_media_key_bytes(void)
{
    return KW_MEDIA_KEY_BYTES;
}

size_t kw_mka_peer_id_max(void)
{
    return KW_MKA_PEER_ID_MAX;
}

size_t kw_mka_payload_max(void)
{
    return KW_MKA_PAYLOAD_MAX;
}

int64_t kw_mka_request_timeout_ms(void)
{
    return KW_MKA_REQUEST_TIMEOUT_MS;
}

/* ---- Keys ----------------------------------------------------------------------------- */

/*
 * Lexicographic comparison without data-dependent branches: the last resort of the order
 * only decides between two keys with equal metadata, but one of them is ours and secret.
 */
static int ct_lex_compare(const uint8_t *a, const uint8_t *b, size_t n)
{
    int result = 0;
    for (size_t i = n; i-- > 0;) {
        int d = (int)a[i] - (int)b[i];
        int mask = -(int)((unsigned)(d | -d) >> (sizeof(unsigned) * 8 - 1)); /* -1 iff d != 0 */
        result = (result & ~mask) | (d & mask); /* the earliest difference wins */
    }
    return result;
}

int kw_media_key_compare(const kw_media_key *a, const kw_media_key *b)
{
    if (a->epoch != b->epoch)
        return a->epoch > b->epoch ? -1 : 1;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    if (a->key_id != b->key_id)
        return a->key_id < b->key_id ? -1 : 1;
    int c = ct_lex_compare(a->key, b->key, KW_MEDIA_KEY_BYTES);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

kw_err kw_media_key_generate(const kw_random *rnd, uint32_t epoch, int64_t created_ms,
                             kw_media_key *out)
{
    if (rnd == NULL || out == NULL || created_ms < 0)
        return KW_ERR_INVALID_ARGUMENT;
    uint8_t id[8];
    kw_err rc = kw_random_fill(rnd, out->key, sizeof out->key);
    if (rc == KW_OK)
        rc = kw_random_fill(rnd, id, sizeof id);
    if (rc != KW_OK) {
        kw_media_key_wipe(out);
        return rc;
    }
    out->key_id = 0;
    for (size_t i = 0; i < sizeof id; i++)
        out->key_id = (out->key_id << 8) | id[i];
    out->epoch = epoch;
    out->created_ms = created_ms;
    return KW_OK;
}

kw_err kw_media_key_fingerprint(const kw_media_key *k,
                                char out[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1])
{
    if (k == NULL || out == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    uint8_t digest[KW_SHA256_BYTES];
    kw_err rc = kw_sha256(k->key, sizeof k->key, digest);
    if (rc != KW_OK)
        return rc;
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 8; i++) {
        if (i > 0 && i % 2 == 0)
            out[o++] = ' ';
        out[o++] = hex[digest[i] >> 4];
        out[o++] = hex[digest[i] & 15];
    }
    out[o] = '\0';
    return KW_OK;
}

void kw_media_key_wipe(kw_media_key *k)
{
    if (k != NULL)
        kw_wipe(k, sizeof *k);
}

/* ---- Payload codec -------------------------------------------------------------------- */

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool request_id_ok(const char *s, size_t n)
{
    return n >= KW_MKA_REQUEST_ID_MIN && n <= KW_MKA_REQUEST_ID_MAX && is_lower_hex(s, n);
}

static const char *type_name(kw_mka_msg_type t)
{
    switch (t) {
    case KW_MKA_MSG_REQUEST:
        return "media_key_request";
    case KW_MKA_MSG_KEY:
        return "media_key";
    case KW_MKA_MSG_UNAVAILABLE:
        return "media_key_unavailable";
    }
    return NULL;
}

kw_err kw_mka_msg_encode(const kw_mka_msg *msg, char *out, size_t out_size, size_t *out_len)
{
    if (msg == NULL || out == NULL || out_len == NULL || out_size == 0)
        return KW_ERR_INVALID_ARGUMENT;
    const char *type = type_name(msg->type);
    size_t rid_len = strnlen(msg->request_id, sizeof msg->request_id);
    if (type == NULL || rid_len == sizeof msg->request_id)
        return KW_ERR_INVALID_ARGUMENT;
    bool rid_null = rid_len == 0;
    if (rid_null ? msg->type != KW_MKA_MSG_KEY : !request_id_ok(msg->request_id, rid_len))
        return KW_ERR_INVALID_ARGUMENT;

    int n;
    if (msg->type == KW_MKA_MSG_KEY) {
        if (msg->key.created_ms < 0)
            return KW_ERR_INVALID_ARGUMENT;
        char rid[KW_MKA_REQUEST_ID_MAX + 3];
        char b64[KEY_B64_LEN + 1];
        if (rid_null)
            n = snprintf(rid, sizeof rid, "null");
        else
            n = snprintf(rid, sizeof rid, "\"%s\"", msg->request_id);
        if (n < 0 || (size_t)n >= sizeof rid)
            return KW_ERR_INTERNAL; /* cannot happen: rid_len <= KW_MKA_REQUEST_ID_MAX */
        if (kw_base64_encode(msg->key.key, KW_MEDIA_KEY_BYTES, b64, sizeof b64) != KW_OK)
            return KW_ERR_INTERNAL; /* cannot happen: b64 is sized for 32 bytes */
        n = snprintf(out, out_size,
                     "{\"type\":\"%s\",\"request_id\":%s,\"key\":\"%s\",\"epoch\":%" PRIu32
                     ",\"created_ms\":%" PRId64 ",\"key_id\":\"%016" PRIx64 "\"}",
                     type, rid, b64, msg->key.epoch, msg->key.created_ms, msg->key.key_id);
        kw_wipe(b64, sizeof b64);
    } else {
        n = snprintf(out, out_size, "{\"type\":\"%s\",\"request_id\":\"%s\"}", type,
                     msg->request_id);
    }
    if (n < 0) {
        kw_wipe(out, out_size);
        return KW_ERR_INTERNAL;
    }
    if ((size_t)n >= out_size) {
        kw_wipe(out, out_size); /* a truncated key payload is still a secret */
        return KW_ERR_BUFFER_TOO_SMALL;
    }
    *out_len = (size_t)n;
    return KW_OK;
}

/* request_id: a hex string, or (null_ok) JSON null giving "". */
static kw_err parse_request_id(json_t *root, bool null_ok, char out[KW_MKA_REQUEST_ID_MAX + 1],
                               kw_error *err)
{
    json_t *v = json_object_get(root, "request_id");
    if (v == NULL)
        return kw_error_set(err, KW_ERR_JSON, "request_id: missing");
    if (null_ok && json_is_null(v)) {
        out[0] = '\0';
        return KW_OK;
    }
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_JSON, "request_id: not a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!request_id_ok(s, n))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "request_id: not %d..%d lowercase hex characters",
                            KW_MKA_REQUEST_ID_MIN, KW_MKA_REQUEST_ID_MAX);
    memcpy(out, s, n);
    out[n] = '\0';
    return KW_OK;
}

static kw_err parse_key_bytes(json_t *root, uint8_t out[KW_MEDIA_KEY_BYTES], kw_error *err)
{
    json_t *v = json_object_get(root, "key");
    if (v == NULL)
        return kw_error_set(err, KW_ERR_JSON, "key: missing");
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_JSON, "key: not a string");
    size_t n = json_string_length(v);
    if (n > (size_t)KEY_B64_LEN * 2) /* cheap bound before decoding */
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "key: too long");
    uint8_t buf[KEY_B64_LEN];
    size_t got = 0;
    kw_err rc = kw_base64_decode(json_string_value(v), n, buf, sizeof buf, &got);
    if (rc == KW_OK && got != KW_MEDIA_KEY_BYTES)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "key: %zu bytes, want %d", got,
                          KW_MEDIA_KEY_BYTES);
    else if (rc == KW_ERR_BUFFER_TOO_SMALL)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "key: too long");
    else if (rc != KW_OK)
        rc = kw_error_set(err, KW_ERR_BASE64, "key: not standard padded base64");
    else
        memcpy(out, buf, KW_MEDIA_KEY_BYTES);
    kw_wipe(buf, sizeof buf);
    return rc;
}

/* An integer field in [min, max]. */
static kw_err parse_int(json_t *root, const char *field, json_int_t min, json_int_t max,
                        json_int_t *out, kw_error *err)
{
    json_t *v = json_object_get(root, field);
    if (v == NULL)
        return kw_error_set(err, KW_ERR_JSON, "%s: missing", field);
    if (!json_is_integer(v))
        return kw_error_set(err, KW_ERR_JSON, "%s: not an integer", field);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: out of range", field);
    *out = i;
    return KW_OK;
}

static kw_err parse_key_id(json_t *root, uint64_t *out, kw_error *err)
{
    json_t *v = json_object_get(root, "key_id");
    if (v == NULL)
        return kw_error_set(err, KW_ERR_JSON, "key_id: missing");
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_JSON, "key_id: not a string");
    const char *s = json_string_value(v);
    if (json_string_length(v) != KW_MEDIA_KEY_ID_HEX || !is_lower_hex(s, KW_MEDIA_KEY_ID_HEX))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "key_id: not %d lowercase hex",
                            KW_MEDIA_KEY_ID_HEX);
    uint64_t id = 0;
    for (size_t i = 0; i < KW_MEDIA_KEY_ID_HEX; i++)
        id = (id << 4) | (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    *out = id;
    return KW_OK;
}

static kw_err parse_root(json_t *root, kw_mka_msg *out, kw_error *err)
{
    static const char *const short_fields[] = {"type", "request_id", NULL};
    static const char *const key_fields[] = {"type",       "request_id", "key", "epoch",
                                             "created_ms", "key_id",     NULL};
    if (!json_is_object(root))
        return kw_error_set(err, KW_ERR_JSON, "media key payload: not a JSON object");
    json_t *t = json_object_get(root, "type");
    if (t == NULL)
        return kw_error_set(err, KW_ERR_JSON, "type: missing");
    if (!json_is_string(t))
        return kw_error_set(err, KW_ERR_JSON, "type: not a string");
    const char *ts = json_string_value(t);
    if (strcmp(ts, "media_key_request") == 0)
        out->type = KW_MKA_MSG_REQUEST;
    else if (strcmp(ts, "media_key") == 0)
        out->type = KW_MKA_MSG_KEY;
    else if (strcmp(ts, "media_key_unavailable") == 0)
        out->type = KW_MKA_MSG_UNAVAILABLE;
    else
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "type: unknown value");

    bool is_key = out->type == KW_MKA_MSG_KEY;
    kw_err rc =
        kw_json_only_fields(root, is_key ? key_fields : short_fields, "media key payload", err);
    if (rc == KW_OK)
        rc = parse_request_id(root, is_key, out->request_id, err);
    if (rc != KW_OK || !is_key)
        return rc;
    json_int_t epoch = 0, created = 0;
    rc = parse_key_bytes(root, out->key.key, err);
    if (rc == KW_OK)
        rc = parse_int(root, "epoch", 0, (json_int_t)UINT32_MAX, &epoch, err);
    if (rc == KW_OK)
        rc = parse_int(root, "created_ms", 0, (json_int_t)INT64_MAX, &created, err);
    if (rc == KW_OK)
        rc = parse_key_id(root, &out->key.key_id, err);
    out->key.epoch = (uint32_t)epoch;
    out->key.created_ms = (int64_t)created;
    return rc;
}

kw_err kw_mka_msg_decode(const char *json, size_t len, kw_mka_msg *out, kw_error *err)
{
    if (out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "media key payload: no output");
    memset(out, 0, sizeof *out);
    if (json == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "media key payload: missing");
    if (len > KW_MKA_PAYLOAD_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "media key payload: over %d bytes",
                            KW_MKA_PAYLOAD_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kw_error_set(err, KW_ERR_JSON, "media key payload: not JSON");
    kw_err rc = parse_root(root, out, err);
    /*
     * jansson frees without wiping: clear its copy of the key text first. The string is
     * ours to overwrite (nothing else references this tree).
     */
    json_t *k = json_is_object(root) ? json_object_get(root, "key") : NULL;
    if (json_is_string(k))
        kw_wipe((char *)json_string_value(k), json_string_length(k));
    json_decref(root);
    if (rc != KW_OK)
        kw_mka_msg_wipe(out);
    return rc;
}

void kw_mka_msg_wipe(kw_mka_msg *msg)
{
    if (msg != NULL)
        kw_wipe(msg, sizeof *msg);
}

void kw_mka_action_wipe(kw_mka_action *a)
{
    if (a != NULL)
        kw_wipe(a, sizeof *a);
}

/* ---- State machine -------------------------------------------------------------------- */

#define JOINED_UNKNOWN INT64_MAX /* a peer we know only from a message: sorts last */
#define NO_PEER        ((size_t)-1)

typedef struct mka_peer {
    char id[KW_MKA_PEER_ID_MAX + 1];
    int64_t joined_ms; /* server joinedAt, or JOINED_UNKNOWN */
    bool older;        /* listed at start: present before us, outranks us for rotation */
    bool owed;         /* joined or asked while we had no key: gets our first key */
} mka_peer;

struct kw_mka {
    char self_id[KW_MKA_PEER_ID_MAX + 1];
    const kw_random *rnd; /* borrowed */
    kw_mka_state state;
    bool has_key;
    kw_media_key key; /* current key when has_key, else wiped */

    mka_peer *peers; /* owned; n_peers used of cap_peers */
    size_t n_peers, cap_peers;

    /* The outstanding request (REQUESTING only). */
    char target[KW_MKA_PEER_ID_MAX + 1];        /* the peer asked */
    int64_t target_joined_ms;                   /* its joined_ms when asked: the cycle position */
    char request_id[KW_MKA_REQUEST_ID_MAX + 1]; /* ours, 32 hex */
    int64_t deadline_ms;                        /* now_ms clock */
    unsigned failures;                          /* failed requests so far */

    /* Pending actions q[q_head..q_len) of cap q_cap; owned, wiped when dropped. */
    kw_mka_action *q;
    size_t q_head, q_len, q_cap;
};

/* Fresh random values an input may need, drawn before anything changes. */
typedef struct mka_fresh {
    kw_media_key key;
    char request_id[KW_MKA_REQUEST_ID_MAX + 1];
} mka_fresh;

static kw_err id_check(const char *id)
{
    if (id == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    size_t n = strnlen(id, KW_MKA_PEER_ID_MAX + 1);
    if (n == 0 || n > KW_MKA_PEER_ID_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
            return KW_ERR_INVALID_ARGUMENT;
    return KW_OK;
}

static kw_err fresh_make(kw_mka *m, uint32_t epoch, int64_t now_ms, mka_fresh *f)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[REQUEST_ID_RANDOM_BYTES];
    kw_err rc = kw_media_key_generate(m->rnd, epoch, now_ms, &f->key);
    if (rc == KW_OK)
        rc = kw_random_fill(m->rnd, r, sizeof r);
    if (rc != KW_OK) {
        kw_wipe(f, sizeof *f);
        return rc;
    }
    for (size_t i = 0; i < sizeof r; i++) {
        f->request_id[2 * i] = hex[r[i] >> 4];
        f->request_id[2 * i + 1] = hex[r[i] & 15];
    }
    f->request_id[2 * sizeof r] = '\0';
    return KW_OK;
}

static size_t peer_find(const kw_mka *m, const char *id)
{
    for (size_t i = 0; i < m->n_peers; i++)
        if (strcmp(m->peers[i].id, id) == 0)
            return i;
    return NO_PEER;
}

/* Order of presence: smaller joined_ms first, then smaller id. */
static int presence_compare(int64_t ja, const char *ida, int64_t jb, const char *idb)
{
    if (ja != jb)
        return ja < jb ? -1 : 1;
    return strcmp(ida, idb);
}

/* Makes room for extra more peers. */
static kw_err peers_reserve(kw_mka *m, size_t extra)
{
    if (extra > KW_MKA_PEERS_MAX || m->n_peers > KW_MKA_PEERS_MAX - extra)
        return KW_ERR_INVALID_ARGUMENT;
    size_t need = m->n_peers + extra;
    if (need <= m->cap_peers)
        return KW_OK;
    size_t cap = m->cap_peers ? m->cap_peers : 8;
    while (cap < need)
        cap *= 2;
    if (cap > KW_MKA_PEERS_MAX)
        cap = KW_MKA_PEERS_MAX;
    mka_peer *p = realloc(m->peers, cap * sizeof *p);
    if (p == NULL)
        return KW_ERR_NOMEM;
    m->peers = p;
    m->cap_peers = cap;
    return KW_OK;
}

/* Room for a sender we may not know yet (no-op when known). */
static kw_err peer_prepare(kw_mka *m, const char *id)
{
    return peer_find(m, id) != NO_PEER ? KW_OK : peers_reserve(m, 1);
}

/* Adds id (capacity reserved) or updates it; returns its index. */
static size_t peer_put(kw_mka *m, const char *id, int64_t joined_ms, bool older)
{
    size_t i = peer_find(m, id);
    if (i == NO_PEER) {
        i = m->n_peers++;
        memset(&m->peers[i], 0, sizeof m->peers[i]);
        memcpy(m->peers[i].id, id, strlen(id) + 1);
    }
    m->peers[i].joined_ms = joined_ms;
    m->peers[i].older = older;
    return i;
}

/* Adds a peer known only from a message; a known one keeps what we know of it. */
static size_t peer_note_sender(kw_mka *m, const char *id)
{
    size_t i = peer_find(m, id);
    return i != NO_PEER ? i : peer_put(m, id, JOINED_UNKNOWN, false);
}

static void peer_remove(kw_mka *m, size_t i)
{
    m->peers[i] = m->peers[--m->n_peers];
}

static size_t queue_pending(const kw_mka *m)
{
    return m->q_len - m->q_head;
}

/* Makes room for extra more actions; KW_ERR_STATE when the caller has not drained. */
static kw_err queue_reserve(kw_mka *m, size_t extra)
{
    size_t pending = queue_pending(m);
    if (extra > KW_MKA_QUEUE_MAX || pending > KW_MKA_QUEUE_MAX - extra)
        return KW_ERR_STATE;
    if (m->q_len + extra <= m->q_cap)
        return KW_OK;
    if (pending + extra <= m->q_cap) { /* room at the front: compact */
        memmove(m->q, m->q + m->q_head, pending * sizeof *m->q);
        kw_wipe(m->q + pending, (m->q_cap - pending) * sizeof *m->q);
        m->q_head = 0;
        m->q_len = pending;
        return KW_OK;
    }
    size_t cap = m->q_cap ? m->q_cap : 8;
    while (cap < pending + extra)
        cap *= 2;
    /* Not realloc: the old block holds keys and must be wiped before it is freed. */
    kw_mka_action *q = calloc(cap, sizeof *q);
    if (q == NULL)
        return KW_ERR_NOMEM;
    if (pending)
        memcpy(q, m->q + m->q_head, pending * sizeof *q);
    if (m->q) {
        kw_wipe(m->q, m->q_cap * sizeof *m->q);
        free(m->q);
    }
    m->q = q;
    m->q_cap = cap;
    m->q_head = 0;
    m->q_len = pending;
    return KW_OK;
}

/* Drops actions queued after mark (a failed input's). */
static void queue_truncate(kw_mka *m, size_t mark)
{
    if (m->q_len <= mark)
        return;
    kw_wipe(m->q + mark, (m->q_len - mark) * sizeof *m->q);
    m->q_len = mark;
}

static void queue_clear(kw_mka *m)
{
    if (m->q)
        kw_wipe(m->q, m->q_cap * sizeof *m->q);
    m->q_head = m->q_len = 0;
}

/* Appends an action (room reserved) and returns it zeroed. */
static kw_mka_action *queue_push(kw_mka *m, kw_mka_action_type type)
{
    kw_mka_action *a = &m->q[m->q_len++];
    memset(a, 0, sizeof *a);
    a->type = type;
    return a;
}

static kw_err push_msg(kw_mka *m, const char *to, kw_mka_msg_type type, const char *request_id,
                       const kw_media_key *key)
{
    kw_mka_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = type;
    memcpy(msg.request_id, request_id, strlen(request_id) + 1);
    if (key != NULL)
        msg.key = *key;
    kw_mka_action *a = queue_push(m, KW_MKA_ACTION_SEND);
    memcpy(a->to, to, strlen(to) + 1);
    kw_err rc = kw_mka_msg_encode(&msg, a->payload, sizeof a->payload, &a->payload_len);
    kw_mka_msg_wipe(&msg);
    return rc == KW_OK ? KW_OK : KW_ERR_INTERNAL; /* cannot fail: our own valid fields */
}

static void push_key(kw_mka *m, const kw_media_key *key)
{
    queue_push(m, KW_MKA_ACTION_KEY)->key = *key;
}

/* Sends key to every peer except `except` (NO_PEER for none) and, if owed_only, only to
 * peers still waiting for our first key. */
static kw_err push_key_to_peers(kw_mka *m, const kw_media_key *key, size_t except, bool owed_only)
{
    for (size_t i = 0; i < m->n_peers; i++) {
        if (i == except || (owed_only && !m->peers[i].owed))
            continue;
        kw_err rc = push_msg(m, m->peers[i].id, KW_MKA_MSG_KEY, "", key);
        if (rc != KW_OK)
            return rc;
    }
    return KW_OK;
}

static void set_key(kw_mka *m, const kw_media_key *key)
{
    m->key = *key;
    m->has_key = true;
    m->state = KW_MKA_HAVE_KEY;
    m->failures = 0;
    m->deadline_ms = INT64_MAX;
    m->target[0] = m->request_id[0] = '\0';
    for (size_t i = 0; i < m->n_peers; i++)
        m->peers[i].owed = false;
}

/*
 * Our first key (created, or received from peer index `from`, NO_PEER for none): a KEY
 * action and the key for every peer that joined or asked while we had none. Queue room
 * for n_peers + 1 actions must be reserved; on error the caller truncates the queue.
 */
static kw_err become_holder(kw_mka *m, const kw_media_key *key, size_t from)
{
    push_key(m, key);
    kw_err rc = push_key_to_peers(m, key, from, true);
    if (rc == KW_OK)
        set_key(m, key);
    return rc;
}

/* The presence-order successor of the last target among peers other than `skip`. */
static size_t next_target(const kw_mka *m, size_t skip)
{
    size_t after = NO_PEER, first = NO_PEER;
    for (size_t i = 0; i < m->n_peers; i++) {
        if (i == skip)
            continue;
        const mka_peer *p = &m->peers[i];
        if (first == NO_PEER || presence_compare(p->joined_ms, p->id, m->peers[first].joined_ms,
                                                 m->peers[first].id) < 0)
            first = i;
        if (presence_compare(p->joined_ms, p->id, m->target_joined_ms, m->target) > 0 &&
            (after == NO_PEER || presence_compare(p->joined_ms, p->id, m->peers[after].joined_ms,
                                                  m->peers[after].id) < 0))
            after = i;
    }
    return after != NO_PEER ? after : first;
}

static int64_t deadline_after(int64_t now_ms)
{
    return now_ms > INT64_MAX - 1 - KW_MKA_REQUEST_TIMEOUT_MS ? INT64_MAX - 1
                                                              : now_ms + KW_MKA_REQUEST_TIMEOUT_MS;
}

/* Queues a request to peer index t and makes it the outstanding one. Room reserved. */
static kw_err request_from(kw_mka *m, size_t t, int64_t now_ms, const mka_fresh *f)
{
    kw_err rc = push_msg(m, m->peers[t].id, KW_MKA_MSG_REQUEST, f->request_id, NULL);
    if (rc != KW_OK)
        return rc;
    memcpy(m->target, m->peers[t].id, sizeof m->target);
    m->target_joined_ms = m->peers[t].joined_ms;
    memcpy(m->request_id, f->request_id, sizeof m->request_id);
    m->deadline_ms = deadline_after(now_ms);
    m->state = KW_MKA_REQUESTING;
    return KW_OK;
}

/*
 * The outstanding request failed (timeout, unavailable, or the target — peer index
 * `departed`, NO_PEER if it stays — left). Alone now: create a key. Third failure: FAILED.
 * Else ask the next peer. All-or-nothing: on error the queue is rolled back and the peers
 * are untouched.
 */
static kw_err request_failed(kw_mka *m, int64_t now_ms, size_t departed)
{
    kw_err rc = queue_reserve(m, 1);
    if (rc != KW_OK)
        return rc;
    mka_fresh f;
    rc = fresh_make(m, 0, now_ms, &f);
    if (rc != KW_OK)
        return rc;
    size_t mark = m->q_len;
    size_t remaining = m->n_peers - (departed != NO_PEER ? 1 : 0);
    size_t next = next_target(m, departed);
    if (remaining == 0) {
        /* Nobody left to ask: we are alone (the owed peers left too). */
        push_key(m, &f.key);
        set_key(m, &f.key);
    } else if (m->failures + 1 >= KW_MKA_MAX_FAILURES) {
        queue_push(m, KW_MKA_ACTION_FAILED)->error = KW_ERR_KEY_EXCHANGE_FAILED;
        m->state = KW_MKA_FAILED;
        m->failures++;
        m->deadline_ms = INT64_MAX;
        m->target[0] = m->request_id[0] = '\0';
    } else {
        rc = request_from(m, next, now_ms, &f);
        if (rc != KW_OK) {
            queue_truncate(m, mark);
            kw_wipe(&f, sizeof f);
            return rc;
        }
        m->failures++;
    }
    if (departed != NO_PEER)
        peer_remove(m, departed); /* after request_from: next may have been its index */
    kw_wipe(&f, sizeof f);
    return KW_OK;
}

kw_err kw_mka_new(const char *self_id, const kw_random *rnd, kw_mka **out)
{
    if (out == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (rnd == NULL || id_check(self_id) != KW_OK)
        return KW_ERR_INVALID_ARGUMENT;
    kw_mka *m = calloc(1, sizeof *m);
    if (m == NULL)
        goto fail;
    memcpy(m->self_id, self_id, strlen(self_id) + 1);
    m->rnd = rnd;
    m->state = KW_MKA_IDLE;
    m->deadline_ms = INT64_MAX;
    *out = m;
    return KW_OK;
fail:
    kw_mka_free(m);
    return KW_ERR_NOMEM;
}

void kw_mka_free(kw_mka *m)
{
    if (m == NULL)
        return;
    queue_clear(m);
    free(m->q);
    free(m->peers);
    kw_wipe(m, sizeof *m);
    free(m);
}

/* Back to IDLE with nothing: no key, no peers, no request. The queue is left alone. */
static void reset_session(kw_mka *m)
{
    kw_media_key_wipe(&m->key);
    m->has_key = false;
    m->n_peers = 0;
    m->state = KW_MKA_IDLE;
    m->failures = 0;
    m->deadline_ms = INT64_MAX;
    m->target[0] = m->request_id[0] = '\0';
}

void kw_mka_leave(kw_mka *m)
{
    if (m == NULL)
        return;
    reset_session(m);
    queue_clear(m);
}

static kw_err check_peer_list(const kw_mka *m, const kw_mka_peer *peers, size_t n)
{
    if (n > KW_MKA_PEERS_MAX || (n > 0 && peers == NULL))
        return KW_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        if (id_check(peers[i].id) != KW_OK || strcmp(peers[i].id, m->self_id) == 0 ||
            peers[i].joined_ms < 0 || peers[i].joined_ms == JOINED_UNKNOWN)
            return KW_ERR_INVALID_ARGUMENT;
        /* Quadratic, but bounded by KW_MKA_PEERS_MAX and run once per start. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(peers[i].id, peers[j].id) == 0)
                return KW_ERR_INVALID_ARGUMENT;
    }
    return KW_OK;
}

kw_err kw_mka_start(kw_mka *m, int64_t now_ms, const kw_mka_peer *peers, size_t n)
{
    if (m == NULL || now_ms < 0)
        return KW_ERR_INVALID_ARGUMENT;
    if (m->state != KW_MKA_IDLE && m->state != KW_MKA_FAILED)
        return KW_ERR_STATE;
    kw_err rc = check_peer_list(m, peers, n);
    if (rc != KW_OK)
        return rc;
    /* Room first: peers_reserve counts from the current list, which start replaces. */
    size_t old_n = m->n_peers;
    m->n_peers = 0;
    rc = peers_reserve(m, n);
    m->n_peers = old_n;
    if (rc == KW_OK)
        rc = queue_reserve(m, 1);
    if (rc != KW_OK)
        return rc;
    mka_fresh f;
    rc = fresh_make(m, 0, now_ms, &f);
    if (rc != KW_OK)
        return rc;

    /* Nothing below fails except a "cannot happen" encoding error, rolled back. */
    size_t mark = m->q_len;
    reset_session(m);
    for (size_t i = 0; i < n; i++)
        peer_put(m, peers[i].id, peers[i].joined_ms, true);
    if (n == 0) {
        rc = become_holder(m, &f.key, NO_PEER); /* first participant: our own key */
    } else {
        m->target[0] = '\0';
        m->target_joined_ms = INT64_MIN; /* so the longest-present peer comes first */
        rc = request_from(m, next_target(m, NO_PEER), now_ms, &f);
    }
    if (rc != KW_OK) {
        queue_truncate(m, mark);
        reset_session(m);
    }
    kw_wipe(&f, sizeof f);
    return rc;
}

kw_err kw_mka_peer_joined(kw_mka *m, int64_t now_ms, const char *id, int64_t joined_ms)
{
    (void)now_ms; /* part of every input's signature; joining starts no timer */
    if (m == NULL || id_check(id) != KW_OK || strcmp(id, m->self_id) == 0 || joined_ms < 0 ||
        joined_ms == JOINED_UNKNOWN)
        return KW_ERR_INVALID_ARGUMENT;
    if (m->state == KW_MKA_IDLE)
        return KW_ERR_STATE;
    kw_err rc = peer_prepare(m, id);
    if (rc == KW_OK && m->has_key)
        rc = queue_reserve(m, 1);
    if (rc != KW_OK)
        return rc;
    size_t mark = m->q_len;
    if (m->has_key) {
        /* Any holder sends, not just the creator: it may have left meanwhile. */
        rc = push_msg(m, id, KW_MKA_MSG_KEY, "", &m->key);
        if (rc != KW_OK) {
            queue_truncate(m, mark);
            return rc;
        }
    }
    size_t i = peer_put(m, id, joined_ms, false);
    m->peers[i].owed = !m->has_key;
    return KW_OK;
}

kw_err kw_mka_peer_left(kw_mka *m, int64_t now_ms, const char *id)
{
    if (m == NULL || now_ms < 0 || id_check(id) != KW_OK)
        return KW_ERR_INVALID_ARGUMENT;
    if (m->state == KW_MKA_IDLE)
        return KW_ERR_STATE;
    size_t i = peer_find(m, id);
    if (i == NO_PEER)
        return KW_OK;
    if (m->state == KW_MKA_REQUESTING && strcmp(id, m->target) == 0)
        return request_failed(m, now_ms, i); /* target leaving counts at once */
    peer_remove(m, i);
    return KW_OK;
}

kw_err kw_mka_tick(kw_mka *m, int64_t now_ms)
{
    if (m == NULL || now_ms < 0)
        return KW_ERR_INVALID_ARGUMENT;
    if (m->state != KW_MKA_REQUESTING || now_ms < m->deadline_ms)
        return KW_OK;
    return request_failed(m, now_ms, NO_PEER);
}

kw_err kw_mka_rotate(kw_mka *m, int64_t now_ms)
{
    if (m == NULL || now_ms < 0)
        return KW_ERR_INVALID_ARGUMENT;
    if (m->state != KW_MKA_HAVE_KEY || m->key.epoch == UINT32_MAX)
        return KW_ERR_STATE;
    for (size_t i = 0; i < m->n_peers; i++)
        if (m->peers[i].older)
            return KW_ERR_NOT_ROTATOR;
    kw_err rc = queue_reserve(m, m->n_peers + 1);
    if (rc != KW_OK)
        return rc;
    mka_fresh f;
    rc = fresh_make(m, m->key.epoch + 1, now_ms, &f);
    if (rc != KW_OK)
        return rc;
    size_t mark = m->q_len;
    push_key(m, &f.key);
    rc = push_key_to_peers(m, &f.key, NO_PEER, false);
    if (rc == KW_OK)
        set_key(m, &f.key);
    else
        queue_truncate(m, mark);
    kw_wipe(&f, sizeof f);
    return rc;
}

/* A media_key_request from `from`. */
static kw_err on_request(kw_mka *m, const char *from, const kw_mka_msg *msg)
{
    bool track = m->state != KW_MKA_IDLE; /* IDLE: not in the meeting, nobody to track */
    kw_err rc = track ? peer_prepare(m, from) : KW_OK;
    if (rc == KW_OK)
        rc = queue_reserve(m, 1);
    if (rc != KW_OK)
        return rc;
    size_t mark = m->q_len;
    if (m->has_key)
        rc = push_msg(m, from, KW_MKA_MSG_KEY, msg->request_id, &m->key);
    else
        rc = push_msg(m, from, KW_MKA_MSG_UNAVAILABLE, msg->request_id, NULL);
    if (rc != KW_OK) {
        queue_truncate(m, mark);
        return rc;
    }
    if (track) {
        size_t i = peer_note_sender(m, from);
        m->peers[i].owed = !m->has_key; /* it gets our first key when we have one */
    }
    return KW_OK;
}

/* A media_key from `from`. */
static kw_err on_key(kw_mka *m, const char *from, const kw_media_key *key)
{
    if (m->state == KW_MKA_IDLE || m->state == KW_MKA_FAILED)
        return KW_ERR_STATE; /* not started, or given up: take no key */
    kw_err rc = peer_prepare(m, from);
    if (rc == KW_OK)
        rc = queue_reserve(m, m->n_peers + 2);
    if (rc != KW_OK)
        return rc;
    size_t mark = m->q_len;
    size_t known = peer_find(m, from); /* NO_PEER: added below, so no send goes to it */

    if (!m->has_key) {
        rc = become_holder(m, key, known); /* any key ends a request */
    } else {
        int c = kw_media_key_compare(key, &m->key);
        if (c < 0) {
            /* A better key replaces ours: pass it on, it only ever improves. */
            push_key(m, key);
            rc = push_key_to_peers(m, key, known, false);
            if (rc == KW_OK)
                set_key(m, key);
        } else if (c > 0) {
            rc = push_msg(m, from, KW_MKA_MSG_KEY, "", &m->key); /* the sender converges */
        }
    }
    if (rc != KW_OK) {
        queue_truncate(m, mark);
        return rc;
    }
    peer_note_sender(m, from);
    return KW_OK;
}

kw_err kw_mka_receive(kw_mka *m, int64_t now_ms, const char *from_id, const char *json, size_t len,
                      kw_error *err)
{
    if (m == NULL || now_ms < 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "receive: no state or bad time");
    if (id_check(from_id) != KW_OK || strcmp(from_id, m->self_id) == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "from_id: bad peer id");
    kw_mka_msg msg;
    kw_err rc = kw_mka_msg_decode(json, len, &msg, err);
    if (rc != KW_OK)
        return rc;
    switch (msg.type) {
    case KW_MKA_MSG_REQUEST:
        rc = on_request(m, from_id, &msg);
        break;
    case KW_MKA_MSG_KEY:
        rc = on_key(m, from_id, &msg.key);
        break;
    case KW_MKA_MSG_UNAVAILABLE:
        /* Counts only as the answer to our outstanding request; stale ones are ignored. */
        if (m->state == KW_MKA_REQUESTING && strcmp(from_id, m->target) == 0 &&
            strcmp(msg.request_id, m->request_id) == 0)
            rc = request_failed(m, now_ms, NO_PEER);
        break;
    }
    kw_mka_msg_wipe(&msg);
    if (rc == KW_ERR_STATE)
        kw_error_set(err, rc, "media key payload: not accepted in this state");
    else if (rc != KW_OK)
        kw_error_set(err, rc, "media key payload: could not be applied");
    return rc;
}

int kw_mka_next_action(kw_mka *m, kw_mka_action *out)
{
    if (m == NULL || out == NULL || m->q_head == m->q_len)
        return 0;
    *out = m->q[m->q_head];
    kw_wipe(&m->q[m->q_head], sizeof m->q[m->q_head]);
    m->q_head++;
    if (m->q_head == m->q_len)
        m->q_head = m->q_len = 0;
    return 1;
}

int64_t kw_mka_deadline(const kw_mka *m)
{
    return m != NULL && m->state == KW_MKA_REQUESTING ? m->deadline_ms : INT64_MAX;
}

kw_err kw_mka_current_key(const kw_mka *m, kw_media_key *out)
{
    if (m == NULL || out == NULL || !m->has_key)
        return KW_ERR_NO_KEY;
    *out = m->key;
    return KW_OK;
}

kw_mka_state kw_mka_get_state(const kw_mka *m)
{
    return m != NULL ? m->state : KW_MKA_IDLE;
}
