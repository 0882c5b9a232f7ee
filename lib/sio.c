/*
 * sio.c — Socket.IO v5 packets (sio.h): a strict decoder whose payload check is one
 * jansson parse, and encoders that write whole WebSocket text frames into caller buffers.
 */
#include "keywave/sio.h"

#include <string.h>

#include "keywave/eio.h"
#include "sio_json.h"
#include "textbuf.h"

size_t kw_sio_nsp_max(void)
{
    return KW_SIO_NSP_MAX;
}

size_t kw_sio_event_max(void)
{
    return KW_SIO_EVENT_MAX;
}

static const char root_nsp[] = "/";

/* Event names socket.io-parser refuses: they name the libraries' own events. */
static const char *const reserved_events[] = {
    "connect",     "connect_error",  "disconnect", "disconnecting",
    "newListener", "removeListener", NULL,
};

static const char *type_name(kw_sio_type t)
{
    switch (t) {
    case KW_SIO_CONNECT:
        return "CONNECT";
    case KW_SIO_DISCONNECT:
        return "DISCONNECT";
    case KW_SIO_EVENT:
        return "EVENT";
    case KW_SIO_ACK:
        return "ACK";
    case KW_SIO_CONNECT_ERROR:
        return "CONNECT_ERROR";
    }
    return "?";
}

/* The reserved name equal to s[0..n), or NULL. */
static const char *reserved_event(const char *s, size_t n)
{
    for (const char *const *r = reserved_events; *r; r++)
        if (strlen(*r) == n && memcmp(*r, s, n) == 0)
            return *r;
    return NULL;
}

/* URL-path characters (RFC 3986 pchar and '/') except ','; '%' is taken as is. */
static int nsp_char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+;=:@/%", c) != NULL;
}

static int nsp_ok(const char *p, size_t n)
{
    if (n == 0 || n > KW_SIO_NSP_MAX || p[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!nsp_char_ok((unsigned char)p[i]))
            return 0;
    return 1;
}

/*
 * Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF, no NUL), for the
 * strings the encoders escape; jansson would refuse the same but could not tell it apart
 * from running out of memory.
 */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp, min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* ---- decoding ------------------------------------------------------------------------- */

/* Checks the parsed payload against its packet type; fills the event fields. */
static kw_err check_payload(kw_sio_packet *p, json_t *v, kw_error *err)
{
    switch (p->type) {
    case KW_SIO_EVENT: {
        size_t n = json_array_size(v);
        if (n == 0)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "EVENT payload: empty array");
        json_t *name = json_array_get(v, 0);
        if (!json_is_string(name))
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "event name: not a string");
        size_t len = json_string_length(name);
        if (len == 0)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "event name: empty");
        if (len > KW_SIO_EVENT_MAX)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "event name: over %d bytes",
                                KW_SIO_EVENT_MAX);
        const char *r = reserved_event(json_string_value(name), len);
        if (r != NULL)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "event name: \"%s\" is reserved", r);
        memcpy(p->event, json_string_value(name), len);
        p->event[len] = '\0';
        p->event_len = len;
        p->argc = n - 1;
        return KW_OK;
    }
    case KW_SIO_ACK:
        p->argc = json_array_size(v);
        return KW_OK;
    case KW_SIO_CONNECT:
        return KW_OK;
    case KW_SIO_CONNECT_ERROR: {
        json_t *msg = json_object_get(v, "message");
        size_t want = 1 + (json_object_get(v, "data") != NULL);
        if (!json_is_string(msg) || json_object_size(v) != want)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                                "CONNECT_ERROR payload: must be {\"message\": string[, \"data\"]}");
        return KW_OK;
    }
    case KW_SIO_DISCONNECT:
        break;
    }
    return kw_error_set(err, KW_ERR_INTERNAL, "payload check of a packet without payload");
}

/*
 * Reads `<type>[<nsp>,][<ack id>]` and returns the offset of the payload in *pos.
 * Scanning is one pass over the header bytes; nothing is allocated.
 */
static kw_err decode_header(const char *text, size_t len, kw_sio_packet *p, size_t *pos,
                            kw_error *err)
{
    if (len == 0)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "empty Socket.IO packet");
    if (text[0] == '5' || text[0] == '6')
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                            "binary packets (BINARY_EVENT, BINARY_ACK) are not supported");
    if (text[0] < '0' || text[0] > '4')
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "unknown Socket.IO packet type");
    p->type = (kw_sio_type)(text[0] - '0');
    size_t i = 1;
    p->nsp = root_nsp;
    p->nsp_len = 1;
    if (i < len && text[i] == '/') {
        size_t start = i;
        while (i < len && text[i] != ',') {
            if (!nsp_char_ok((unsigned char)text[i]))
                return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                                    "namespace: invalid character (is its ',' missing?)");
            if (i - start >= KW_SIO_NSP_MAX)
                return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "namespace: over %d bytes",
                                    KW_SIO_NSP_MAX);
            i++;
        }
        p->nsp = text + start;
        p->nsp_len = i - start;
        if (i < len)
            i++; /* the ',' */
    }
    if (i < len && text[i] >= '0' && text[i] <= '9') {
        size_t start = i;
        uint64_t id = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            /* 11 digits are over the limit whatever they say; stop before uint64 wraps. */
            if (i - start >= 10)
                return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "ack id: over %u",
                                    KW_SIO_ACK_ID_MAX);
            id = id * 10 + (uint64_t)(text[i] - '0');
            i++;
        }
        if (id > KW_SIO_ACK_ID_MAX)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "ack id: over %u", KW_SIO_ACK_ID_MAX);
        if (text[start] == '0' && i - start > 1)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "ack id: leading zero");
        if (p->type != KW_SIO_EVENT && p->type != KW_SIO_ACK)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "ack id on a %s packet",
                                type_name(p->type));
        p->has_ack = 1;
        p->ack_id = (uint32_t)id;
    }
    if (p->type == KW_SIO_ACK && !p->has_ack)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "ACK without an ack id");
    *pos = i;
    return KW_OK;
}

kw_err kw_sio_decode_json(const char *text, size_t len, kw_sio_packet *out, json_t **payload,
                          kw_error *err)
{
    if (payload != NULL)
        *payload = NULL;
    if ((text == NULL && len > 0) || out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sio decode: NULL");
    kw_sio_packet p;
    memset(&p, 0, sizeof p);
    size_t pos = 0;
    kw_err rc = decode_header(text, len, &p, &pos, err);
    if (rc != KW_OK)
        return rc;
    const char *rest = text + pos;
    size_t rlen = len - pos;
    if (rlen == 0) {
        if (p.type != KW_SIO_CONNECT && p.type != KW_SIO_DISCONNECT)
            return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "%s without payload",
                                type_name(p.type));
        *out = p;
        return KW_OK;
    }
    if (p.type == KW_SIO_DISCONNECT)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "DISCONNECT with a payload");
    /* Checking both ends first refuses surrounding whitespace, which jansson would skip,
     * and garbage after a namespace, before any parsing. */
    int array = p.type == KW_SIO_EVENT || p.type == KW_SIO_ACK;
    if (rest[0] != (array ? '[' : '{') || rest[rlen - 1] != (array ? ']' : '}'))
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "%s payload: not a JSON %s",
                            type_name(p.type), array ? "array" : "object");
    json_error_t jerr;
    json_t *v = json_loadb(rest, rlen, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) /* jansson's text may quote the input: give the position only */
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE,
                            "%s payload: invalid JSON or UTF-8 near byte %d", type_name(p.type),
                            jerr.position);
    rc = check_payload(&p, v, err);
    if (rc != KW_OK) {
        json_decref(v);
        return rc;
    }
    p.data = rest;
    p.data_len = rlen;
    *out = p;
    if (payload != NULL)
        *payload = v;
    else
        json_decref(v);
    return KW_OK;
}

kw_err kw_sio_decode(const char *text, size_t len, kw_sio_packet *out, kw_error *err)
{
    return kw_sio_decode_json(text, len, out, NULL, err);
}

/* ---- encoding ------------------------------------------------------------------------- */

/* `4<type>[<nsp>,][<ack id>]`: the Engine.IO message digit and the Socket.IO header. */
static kw_err put_header(kw_textbuf *b, kw_sio_type type, const char *nsp, size_t nsp_len,
                         int has_ack, uint32_t ack_id, kw_error *err)
{
    int root = nsp == NULL || (nsp_len == 1 && nsp[0] == '/');
    if (!root && !nsp_ok(nsp, nsp_len))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "namespace: '/' then up to %d URL-path bytes, no ','",
                            KW_SIO_NSP_MAX - 1);
    kw_textbuf_putc(b, '0' + KW_EIO_MESSAGE);
    kw_textbuf_putc(b, (char)('0' + (int)type));
    if (!root) {
        kw_textbuf_put(b, nsp, nsp_len);
        kw_textbuf_putc(b, ',');
    }
    if (has_ack)
        kw_textbuf_put_u32(b, ack_id);
    return KW_OK;
}

static size_t nsp_length(const char *nsp)
{
    return nsp == NULL ? 0 : strnlen(nsp, KW_SIO_NSP_MAX + 1);
}

/* Appends s[0..n) as a JSON string: copied when nothing needs escaping, else by jansson. */
static kw_err put_json_string(kw_textbuf *b, const char *s, size_t n, const char *what,
                              kw_error *err)
{
    if (!utf8_ok((const unsigned char *)s, n))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: not UTF-8", what);
    int plain = 1;
    for (size_t i = 0; i < n && plain; i++)
        plain = s[i] >= 0x20 && s[i] <= 0x7e && s[i] != '"' && s[i] != '\\';
    if (plain) {
        kw_textbuf_putc(b, '"');
        kw_textbuf_put(b, s, n);
        kw_textbuf_putc(b, '"');
        return KW_OK;
    }
    json_t *js = json_stringn(s, n);
    if (js == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "%s: out of memory", what);
    size_t room = kw_textbuf_room(b);
    /* Writes in place when it fits; otherwise only the size needed is used. */
    size_t need = json_dumpb(js, room > 0 ? b->buf + b->len : NULL, room, JSON_ENCODE_ANY);
    json_decref(js);
    if (need == 0)
        return kw_error_set(err, KW_ERR_NOMEM, "%s: out of memory", what);
    kw_textbuf_advance(b, need);
    return KW_OK;
}

static kw_err check_ack_arg(int64_t ack_id, int allow_none, kw_error *err)
{
    if ((ack_id == KW_SIO_NO_ACK && allow_none) || (ack_id >= 0 && ack_id <= KW_SIO_ACK_ID_MAX))
        return KW_OK;
    return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "ack id: 0..%u%s", KW_SIO_ACK_ID_MAX,
                        allow_none ? " or none" : "");
}

kw_err kw_sio_encode(const kw_sio_packet *p, char *buf, size_t cap, size_t *out_len, kw_error *err)
{
    if (p == NULL || out_len == NULL || (p->data == NULL && p->data_len > 0) ||
        (p->nsp == NULL && p->nsp_len > 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sio encode: NULL");
    if ((int)p->type < KW_SIO_CONNECT || (int)p->type > KW_SIO_CONNECT_ERROR)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "type: 0..4 (binary types refused)");
    int wants_ack = p->type == KW_SIO_EVENT || p->type == KW_SIO_ACK;
    if ((p->has_ack && !wants_ack) || (p->type == KW_SIO_ACK && !p->has_ack))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "ack id: only on EVENT, required on ACK");
    char open = wants_ack ? '[' : '{';
    int none_ok = p->type == KW_SIO_CONNECT || p->type == KW_SIO_DISCONNECT;
    int shape_ok = p->data_len == 0 ? none_ok : p->type != KW_SIO_DISCONNECT && p->data[0] == open;
    if (!shape_ok)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s data: %s", type_name(p->type),
                            p->type == KW_SIO_DISCONNECT ? "none allowed"
                            : wants_ack                  ? "a JSON array"
                                                         : "a JSON object");
    kw_textbuf b = {buf, cap, 0};
    kw_err rc = put_header(&b, p->type, p->nsp, p->nsp_len, p->has_ack, p->ack_id, err);
    if (rc != KW_OK)
        return rc;
    kw_textbuf_put(&b, p->data, p->data_len);
    return kw_textbuf_finish(&b, out_len, err);
}

kw_err kw_sio_encode_event(const char *nsp, int64_t ack_id, const char *name, const char *args,
                           size_t args_len, char *buf, size_t cap, size_t *out_len, kw_error *err)
{
    if (name == NULL || out_len == NULL || (args == NULL && args_len > 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sio event: NULL");
    kw_err rc = check_ack_arg(ack_id, 1, err);
    if (rc != KW_OK)
        return rc;
    size_t n = strnlen(name, KW_SIO_EVENT_MAX + 1);
    if (n == 0 || n > KW_SIO_EVENT_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "event name: 1..%d bytes",
                            KW_SIO_EVENT_MAX);
    if (reserved_event(name, n) != NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "event name: reserved by Socket.IO");
    kw_textbuf b = {buf, cap, 0};
    int has_ack = ack_id != KW_SIO_NO_ACK;
    rc = put_header(&b, KW_SIO_EVENT, nsp, nsp_length(nsp), has_ack, has_ack ? (uint32_t)ack_id : 0,
                    err);
    if (rc != KW_OK)
        return rc;
    kw_textbuf_putc(&b, '[');
    rc = put_json_string(&b, name, n, "event name", err);
    if (rc != KW_OK)
        return rc;
    if (args_len > 0) {
        kw_textbuf_putc(&b, ',');
        kw_textbuf_put(&b, args, args_len);
    }
    kw_textbuf_putc(&b, ']');
    return kw_textbuf_finish(&b, out_len, err);
}

kw_err kw_sio_encode_ack(const char *nsp, int64_t ack_id, const char *args, size_t args_len,
                         char *buf, size_t cap, size_t *out_len, kw_error *err)
{
    if (out_len == NULL || (args == NULL && args_len > 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sio ack: NULL");
    kw_err rc = check_ack_arg(ack_id, 0, err);
    if (rc != KW_OK)
        return rc;
    kw_textbuf b = {buf, cap, 0};
    rc = put_header(&b, KW_SIO_ACK, nsp, nsp_length(nsp), 1, (uint32_t)ack_id, err);
    if (rc != KW_OK)
        return rc;
    kw_textbuf_putc(&b, '[');
    kw_textbuf_put(&b, args, args_len);
    kw_textbuf_putc(&b, ']');
    return kw_textbuf_finish(&b, out_len, err);
}

kw_err kw_sio_encode_connect_ok(const char *nsp, const char *sid, char *buf, size_t cap,
                                size_t *out_len, kw_error *err)
{
    if (sid == NULL || out_len == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sio connect: NULL");
    size_t n = strnlen(sid, KW_EIO_SID_MAX + 1);
    if (kw_eio_check_sid(sid, n) != KW_OK)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sid: 1..%d of [A-Za-z0-9_-]",
                            KW_EIO_SID_MAX);
    kw_textbuf b = {buf, cap, 0};
    kw_err rc = put_header(&b, KW_SIO_CONNECT, nsp, nsp_length(nsp), 0, 0, err);
    if (rc != KW_OK)
        return rc;
    static const char head[] = "{\"sid\":\"";
    kw_textbuf_put(&b, head, sizeof head - 1);
    kw_textbuf_put(&b, sid, n);
    kw_textbuf_put(&b, "\"}", 2);
    return kw_textbuf_finish(&b, out_len, err);
}

kw_err kw_sio_encode_connect_error(const char *nsp, const char *message, char *buf, size_t cap,
                                   size_t *out_len, kw_error *err)
{
    if (message == NULL || out_len == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "sio connect_error: NULL");
    kw_textbuf b = {buf, cap, 0};
    kw_err rc = put_header(&b, KW_SIO_CONNECT_ERROR, nsp, nsp_length(nsp), 0, 0, err);
    if (rc != KW_OK)
        return rc;
    static const char head[] = "{\"message\":";
    kw_textbuf_put(&b, head, sizeof head - 1);
    rc = put_json_string(&b, message, strlen(message), "message", err);
    if (rc != KW_OK)
        return rc;
    kw_textbuf_putc(&b, '}');
    return kw_textbuf_finish(&b, out_len, err);
}
