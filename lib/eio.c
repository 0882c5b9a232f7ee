/*
 * eio.c — Engine.IO v4 over WebSocket (eio.h): frame decoding and encoding, the open
 * handshake, the query check of GET /socket.io/, and the heartbeat clock of a session.
 * Pure: the caller brings the frames and the time.
 */
#include "keywave/eio.h"

#include <jansson.h>
#include <string.h>

#include "textbuf.h"

size_t kw_eio_max_payload(void)
{
    return KW_EIO_MAX_PAYLOAD;
}

size_t kw_eio_sid_max(void)
{
    return KW_EIO_SID_MAX;
}

static const char *type_name(kw_eio_type t)
{
    switch (t) {
    case KW_EIO_OPEN:
        return "open";
    case KW_EIO_CLOSE:
        return "close";
    case KW_EIO_PING:
        return "ping";
    case KW_EIO_PONG:
        return "pong";
    case KW_EIO_MESSAGE:
        return "message";
    case KW_EIO_UPGRADE:
        return "upgrade";
    case KW_EIO_NOOP:
        return "noop";
    }
    return "?";
}

/* Printable ASCII without space: what a v3-style probe ("probe") may contain. */
static int ping_data_ok(const char *p, size_t n)
{
    if (n > KW_EIO_PING_DATA_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return 0;
    return 1;
}

kw_err kw_eio_decode(const char *frame, size_t len, int binary, size_t max_payload,
                     kw_eio_packet *out, kw_error *err)
{
    if ((frame == NULL && len > 0) || out == NULL || max_payload == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "eio decode: NULL or zero limit");
    /* The limit comes first, so an oversized frame costs nothing more. */
    if (len > max_payload)
        return kw_error_set(err, KW_ERR_PAYLOAD_TOO_LARGE, "frame of %zu bytes over maxPayload %zu",
                            len, max_payload);
    if (binary)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                            "binary frames are not supported (keywave speaks JSON text only)");
    if (len == 0)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "empty Engine.IO packet");
    if (frame[0] < '0' || frame[0] > '6')
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "unknown Engine.IO packet type");
    kw_eio_type type = (kw_eio_type)(frame[0] - '0');
    const char *data = frame + 1;
    size_t n = len - 1;
    switch (type) {
    case KW_EIO_OPEN:
        if (n == 0 || data[0] != '{')
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "open packet without a JSON object");
        break;
    case KW_EIO_CLOSE:
    case KW_EIO_NOOP:
        if (n != 0)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "%s packet with data",
                                type_name(type));
        break;
    case KW_EIO_PING:
    case KW_EIO_PONG:
        if (!ping_data_ok(data, n))
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                                "%s data: at most %d printable ASCII bytes", type_name(type),
                                KW_EIO_PING_DATA_MAX);
        break;
    case KW_EIO_MESSAGE:
        break;
    case KW_EIO_UPGRADE:
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                            "upgrade packet: a WebSocket-only session has no transport upgrade");
    }
    out->type = type;
    out->data = data;
    out->data_len = n;
    return KW_OK;
}

kw_err kw_eio_encode(kw_eio_type type, const char *data, size_t data_len, char *buf, size_t cap,
                     size_t *out_len, kw_error *err)
{
    if (out_len == NULL || (data == NULL && data_len > 0) || (int)type < KW_EIO_OPEN ||
        (int)type > KW_EIO_NOOP)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "eio encode: bad type or NULL");
    kw_textbuf b = {buf, cap, 0};
    kw_textbuf_putc(&b, (char)('0' + (int)type));
    kw_textbuf_put(&b, data, data_len);
    return kw_textbuf_finish(&b, out_len, err);
}

/* Session ids: the base64url alphabet, like Engine.IO's own ids. */
kw_err kw_eio_check_sid(const char *sid, size_t n)
{
    if (sid == NULL || n == 0 || n > KW_EIO_SID_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        char c = sid[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok)
            return KW_ERR_INVALID_ARGUMENT;
    }
    return KW_OK;
}

static int timing_ok(uint32_t ms)
{
    return ms >= 1 && ms <= KW_EIO_TIMING_MAX_MS;
}

kw_err kw_eio_encode_open(const kw_eio_open *open, char *buf, size_t cap, size_t *out_len,
                          kw_error *err)
{
    if (open == NULL || out_len == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "eio open: NULL");
    size_t sid_len = strnlen(open->sid, sizeof open->sid);
    if (sid_len == sizeof open->sid || kw_eio_check_sid(open->sid, sid_len) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sid: 1..%d of [A-Za-z0-9_-]",
                            KW_EIO_SID_MAX);
    if (!timing_ok(open->ping_interval_ms) || !timing_ok(open->ping_timeout_ms) ||
        !timing_ok(open->max_payload))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "pingInterval, pingTimeout, maxPayload: 1..%u", KW_EIO_TIMING_MAX_MS);
    /* Written by hand rather than through jansson: every value is checked above to need
     * no escaping, and this frame goes out once per connection. */
    kw_textbuf b = {buf, cap, 0};
    static const char a[] = "0{\"sid\":\"", c[] = "\",\"upgrades\":[],\"pingInterval\":",
                      d[] = ",\"pingTimeout\":", e[] = ",\"maxPayload\":";
    kw_textbuf_put(&b, a, sizeof a - 1);
    kw_textbuf_put(&b, open->sid, sid_len);
    kw_textbuf_put(&b, c, sizeof c - 1);
    kw_textbuf_put_u32(&b, open->ping_interval_ms);
    kw_textbuf_put(&b, d, sizeof d - 1);
    kw_textbuf_put_u32(&b, open->ping_timeout_ms);
    kw_textbuf_put(&b, e, sizeof e - 1);
    kw_textbuf_put_u32(&b, open->max_payload);
    kw_textbuf_putc(&b, '}');
    return kw_textbuf_finish(&b, out_len, err);
}

/* An integer field of the open handshake in 1..KW_EIO_TIMING_MAX_MS. */
static int open_number(json_t *obj, const char *key, uint32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return 0;
    json_int_t i = json_integer_value(v);
    if (i < 1 || i > (json_int_t)KW_EIO_TIMING_MAX_MS)
        return 0;
    *out = (uint32_t)i;
    return 1;
}

kw_err kw_eio_decode_open(const char *data, size_t len, kw_eio_open *out, kw_error *err)
{
    if ((data == NULL && len > 0) || out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "eio open: NULL");
    /* As in sio.c: no whitespace around the object, which jansson alone would allow. */
    if (len < 2 || data[0] != '{' || data[len - 1] != '}')
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "open packet: not a JSON object");
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "open packet: invalid JSON near byte %d",
                            jerr.position);
    kw_err rc = KW_ERR_INVALID_MESSAGE;
    const char *what = "not an object";
    kw_eio_open o;
    memset(&o, 0, sizeof o);
    if (!json_is_object(root))
        goto fail;
    what = "fields other than sid, upgrades, pingInterval, pingTimeout, maxPayload";
    if (json_object_size(root) != 5)
        goto fail;
    json_t *sid = json_object_get(root, "sid");
    what = "sid: not a string of 1..64 [A-Za-z0-9_-]";
    if (!json_is_string(sid) ||
        kw_eio_check_sid(json_string_value(sid), json_string_length(sid)) != KW_OK)
        goto fail;
    memcpy(o.sid, json_string_value(sid), json_string_length(sid));
    json_t *upgrades = json_object_get(root, "upgrades");
    what = "upgrades: not an array of strings";
    if (!json_is_array(upgrades))
        goto fail;
    size_t i;
    json_t *u;
    json_array_foreach(upgrades, i, u)
    {
        if (!json_is_string(u))
            goto fail;
    }
    what = "pingInterval, pingTimeout, maxPayload: not integers in 1..2147483647";
    if (!open_number(root, "pingInterval", &o.ping_interval_ms) ||
        !open_number(root, "pingTimeout", &o.ping_timeout_ms) ||
        !open_number(root, "maxPayload", &o.max_payload))
        goto fail;
    *out = o;
    rc = KW_OK;
fail:
    json_decref(root);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "open packet: %s", what);
    return KW_OK;
}

/* The detail of a refused polling request: it becomes the body of the HTTP 400. */
#define POLLING_DETAIL "polling transport is not supported; use transports: ['websocket']"

kw_err kw_eio_check_query(const char *query, size_t len, kw_error *err)
{
    if (query == NULL && len > 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "query: NULL");
    if (query == NULL)
        query = ""; /* no arithmetic on a NULL pointer, even + 0 */
    size_t pos = 0;
    if (len > 0 && query[0] == '?')
        pos = 1;
    int eio_seen = 0, eio_ok = 0, transport_seen = 0, transport = 0; /* 1 ws, 2 polling */
    while (pos <= len) {
        const char *end = len > pos ? memchr(query + pos, '&', len - pos) : NULL;
        size_t stop = end ? (size_t)(end - query) : len;
        const char *p = query + pos;
        size_t n = stop - pos;
        const char *eq = n > 0 ? memchr(p, '=', n) : NULL;
        size_t klen = eq ? (size_t)(eq - p) : n;
        const char *v = eq ? eq + 1 : p + n;
        size_t vlen = eq ? n - klen - 1 : 0;
        if (klen == 3 && memcmp(p, "EIO", 3) == 0) {
            if (eio_seen++)
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "EIO: given twice");
            eio_ok = vlen == 1 && v[0] == '0' + KW_EIO_PROTOCOL;
        } else if (klen == 9 && memcmp(p, "transport", 9) == 0) {
            if (transport_seen++)
                return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "transport: given twice");
            if (vlen == 9 && memcmp(v, "websocket", 9) == 0)
                transport = 1;
            else if (vlen == 7 && memcmp(v, "polling", 7) == 0)
                transport = 2;
        } else if (klen == 3 && memcmp(p, "sid", 3) == 0) {
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "sid: no such session (keywave has no polling sessions to "
                                "upgrade; use transports: ['websocket'])");
        }
        pos = stop + 1;
    }
    /* The transport is judged first: a polling client gets the one detail it can act on. */
    if (transport == 2)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, POLLING_DETAIL);
    if (!transport_seen)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "transport: missing; use transports: ['websocket']");
    if (transport != 1)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "transport: must be websocket");
    if (!eio_seen)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "EIO: missing (must be 4)");
    if (!eio_ok)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "EIO: must be 4 (Engine.IO v4, socket.io-client 3 and later)");
    return KW_OK;
}

/* The first late millisecond of a deadline of `ms` after `base`, saturating. */
static int64_t late_from(int64_t base, uint32_t ms)
{
    int64_t add = (int64_t)ms + 1;
    return base > INT64_MAX - add ? INT64_MAX : base + add;
}

static int64_t due_at(int64_t base, uint32_t ms)
{
    return base > INT64_MAX - (int64_t)ms ? INT64_MAX : base + (int64_t)ms;
}

kw_err kw_eio_session_init(kw_eio_session *s, int64_t now_ms, uint32_t ping_interval_ms,
                           uint32_t ping_timeout_ms, uint32_t connect_timeout_ms)
{
    if (s == NULL || !timing_ok(ping_interval_ms) || !timing_ok(ping_timeout_ms) ||
        !timing_ok(connect_timeout_ms))
        return KW_ERR_INVALID_ARGUMENT;
    memset(s, 0, sizeof *s);
    s->opened_ms = now_ms;
    s->ping_sent_ms = now_ms;
    s->ping_interval_ms = ping_interval_ms;
    s->ping_timeout_ms = ping_timeout_ms;
    s->connect_timeout_ms = connect_timeout_ms;
    return KW_OK;
}

kw_err kw_eio_session_on_pong(kw_eio_session *s, int64_t now_ms, kw_error *err)
{
    if (s == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "session: NULL");
    if (s->closed)
        return kw_error_set(err, KW_ERR_STATE, "pong on a closed session");
    if (!s->awaiting_pong)
        return kw_error_set(err, KW_ERR_STATE, "pong without a ping");
    if (now_ms >= late_from(s->ping_sent_ms, s->ping_timeout_ms)) {
        s->closed = KW_EIO_CLOSE_PONG_TIMEOUT;
        return kw_error_set(err, KW_ERR_STATE, "pong after pingTimeout (%u ms)",
                            s->ping_timeout_ms);
    }
    s->awaiting_pong = 0;
    return KW_OK;
}

kw_err kw_eio_session_on_connect(kw_eio_session *s, int64_t now_ms, kw_error *err)
{
    if (s == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "session: NULL");
    if (s->closed)
        return kw_error_set(err, KW_ERR_STATE, "connect on a closed session");
    if (!s->connected && now_ms >= late_from(s->opened_ms, s->connect_timeout_ms)) {
        s->closed = KW_EIO_CLOSE_CONNECT_TIMEOUT;
        return kw_error_set(err, KW_ERR_STATE, "CONNECT after the connect timeout (%u ms)",
                            s->connect_timeout_ms);
    }
    s->connected = 1;
    return KW_OK;
}

kw_err kw_eio_session_tick(kw_eio_session *s, int64_t now_ms, kw_eio_action *action,
                           int64_t *next_ms)
{
    if (s == NULL || action == NULL || next_ms == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    if (!s->closed && !s->connected && now_ms >= late_from(s->opened_ms, s->connect_timeout_ms))
        s->closed = KW_EIO_CLOSE_CONNECT_TIMEOUT;
    if (!s->closed && s->awaiting_pong && now_ms >= late_from(s->ping_sent_ms, s->ping_timeout_ms))
        s->closed = KW_EIO_CLOSE_PONG_TIMEOUT;
    if (s->closed) {
        *action = (kw_eio_action)s->closed;
        *next_ms = INT64_MAX;
        return KW_OK;
    }
    *action = KW_EIO_NOTHING;
    if (!s->awaiting_pong && now_ms >= due_at(s->ping_sent_ms, s->ping_interval_ms)) {
        *action = KW_EIO_SEND_PING;
        s->ping_sent_ms = now_ms;
        s->awaiting_pong = 1;
    }
    int64_t next = s->awaiting_pong ? late_from(s->ping_sent_ms, s->ping_timeout_ms)
                                    : due_at(s->ping_sent_ms, s->ping_interval_ms);
    if (!s->connected) {
        int64_t c = late_from(s->opened_ms, s->connect_timeout_ms);
        next = c < next ? c : next;
    }
    *next_ms = next;
    return KW_OK;
}
