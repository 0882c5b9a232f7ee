/*
 * sio_tool.c — drives libkeywave's Engine.IO / Socket.IO codec (eio.h, sio.h) for
 * tests/interop/sio_codec.test.mjs, which checks it against npm's engine.io-parser and
 * socket.io-parser (the parsers inside socket.io-client).
 *
 * Protocol: one JSON object per line on stdin, exactly one JSON object per line on stdout.
 * Every answer is {"ok":true, ...} or {"ok":false,"error":<kw_err_name>,"detail":<text>}.
 * Frames travel as lowercase hex (they may be any bytes); other strings as JSON strings.
 * A null or absent "nsp" means the default namespace, a null or absent "ack" no ack id.
 *
 *   {"cmd":"decode","hex":h}  -> {"eio":n, "data_hex":h}, plus for a message
 *        "sio":{"type":n,"nsp":s,"ack":n|null,"data":s|null,"event":s|null,"argc":n}
 *        and for an open packet "open":{"sid","pingInterval","pingTimeout","maxPayload"}
 *   {"cmd":"event","nsp"?,"ack"?,"name"?:s,"name_hex"?:h,"args":s}   -> {"hex":h}
 *   {"cmd":"ack","nsp"?,"ack":n,"args":s}                             -> {"hex":h}
 *   {"cmd":"connect_ok","nsp"?,"sid":s}                               -> {"hex":h}
 *   {"cmd":"connect_error","nsp"?,"message":s}                        -> {"hex":h}
 *   {"cmd":"encode","type":n,"nsp"?,"ack"?,"data"?:s}                 -> {"hex":h}
 *   {"cmd":"open","sid":s,"pingInterval":n,"pingTimeout":n,"maxPayload":n} -> {"hex":h}
 *   {"cmd":"eio","type":n,"data"?:s}                                  -> {"hex":h}
 *   {"cmd":"query","q":s}                                             -> {} or an error
 *   {"cmd":"quit"}                                                    -> {} and exit 0
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keywave/eio.h"
#include "keywave/sio.h"

#define LINE_MAX_BYTES ((size_t)4 << 20)

static void reply(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    if (s == NULL) {
        puts("{\"ok\":false,\"error\":\"internal\",\"detail\":\"dump failed\"}");
    } else {
        puts(s);
        free(s);
    }
    fflush(stdout);
    json_decref(obj);
}

static void reply_err(kw_err rc, const char *detail)
{
    reply(json_pack("{s:b,s:s,s:s}", "ok", 0, "error", kw_err_name(rc), "detail", detail));
}

static char *to_hex(const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *h = malloc(2 * n + 1);
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[(unsigned char)p[i] >> 4];
        h[2 * i + 1] = digits[(unsigned char)p[i] & 15];
    }
    h[2 * n] = '\0';
    return h;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a hex string into a malloc'd buffer (one spare byte); NULL when malformed. */
static char *from_hex(const char *h, size_t *len)
{
    size_t n = strlen(h);
    if (n % 2 != 0)
        return NULL;
    char *b = malloc(n / 2 + 1);
    if (b == NULL)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(h[2 * i]), lo = hex_val(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return NULL;
        }
        b[i] = (char)(hi << 4 | lo);
    }
    b[n / 2] = '\0';
    *len = n / 2;
    return b;
}

/* Encoders write into a buffer sized by a first call (exercising the size query). */
typedef kw_err (*encode_fn)(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err);

static void run_encoder(json_t *req, encode_fn fn)
{
    kw_error err;
    kw_error_clear(&err);
    size_t need = 0, len = 0;
    kw_err rc = fn(req, NULL, 0, &need, &err);
    if (rc != KW_ERR_BUFFER_TOO_SMALL) {
        reply_err(rc, rc == KW_OK ? "size query succeeded with no buffer" : err.detail);
        return;
    }
    char *buf = malloc(need + 1);
    if (buf == NULL) {
        reply_err(KW_ERR_NOMEM, "tool: out of memory");
        return;
    }
    rc = fn(req, buf, need + 1, &len, &err);
    if (rc != KW_OK) {
        reply_err(rc, err.detail);
    } else if (len != need || buf[len] != '\0') {
        reply_err(KW_ERR_INTERNAL, "length differs from the size query");
    } else {
        char *h = to_hex(buf, len);
        reply(json_pack("{s:b,s:s}", "ok", 1, "hex", h ? h : ""));
        free(h);
    }
    free(buf);
}

static const char *opt_str(json_t *req, const char *key)
{
    return json_string_value(json_object_get(req, key));
}

static int64_t opt_ack(json_t *req)
{
    json_t *v = json_object_get(req, "ack");
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : KW_SIO_NO_ACK;
}

static const char *args_of(json_t *req, size_t *len)
{
    json_t *v = json_object_get(req, "args");
    *len = json_string_length(v);
    return json_string_value(v);
}

static kw_err enc_event(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    size_t alen;
    const char *args = args_of(req, &alen);
    const char *name_hex = opt_str(req, "name_hex");
    if (name_hex != NULL) {
        size_t n;
        char *name = from_hex(name_hex, &n);
        if (name == NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "tool: bad name_hex");
        kw_err rc = kw_sio_encode_event(opt_str(req, "nsp"), opt_ack(req), name, args, alen, buf,
                                        cap, len, err);
        free(name);
        return rc;
    }
    const char *name = opt_str(req, "name");
    return kw_sio_encode_event(opt_str(req, "nsp"), opt_ack(req), name ? name : "", args, alen, buf,
                               cap, len, err);
}

static kw_err enc_ack(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    size_t alen;
    const char *args = args_of(req, &alen);
    return kw_sio_encode_ack(opt_str(req, "nsp"), opt_ack(req), args, alen, buf, cap, len, err);
}

static kw_err enc_connect_ok(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    const char *sid = opt_str(req, "sid");
    return kw_sio_encode_connect_ok(opt_str(req, "nsp"), sid ? sid : "", buf, cap, len, err);
}

static kw_err enc_connect_error(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    const char *m = opt_str(req, "message");
    return kw_sio_encode_connect_error(opt_str(req, "nsp"), m ? m : "", buf, cap, len, err);
}

static kw_err enc_generic(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    kw_sio_packet p;
    memset(&p, 0, sizeof p);
    p.type = (kw_sio_type)json_integer_value(json_object_get(req, "type"));
    p.nsp = opt_str(req, "nsp");
    p.nsp_len = p.nsp ? strlen(p.nsp) : 0;
    int64_t ack = opt_ack(req);
    if (ack != KW_SIO_NO_ACK) {
        if (ack < 0 || ack > (int64_t)KW_SIO_ACK_ID_MAX)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "tool: ack out of range");
        p.has_ack = 1;
        p.ack_id = (uint32_t)ack;
    }
    json_t *d = json_object_get(req, "data");
    if (json_is_string(d)) {
        p.data = json_string_value(d);
        p.data_len = json_string_length(d);
    }
    return kw_sio_encode(&p, buf, cap, len, err);
}

static kw_err enc_open(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    kw_eio_open o;
    memset(&o, 0, sizeof o);
    const char *sid = opt_str(req, "sid");
    if (sid == NULL || strlen(sid) > KW_EIO_SID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "tool: sid");
    memcpy(o.sid, sid, strlen(sid));
    o.ping_interval_ms = (uint32_t)json_integer_value(json_object_get(req, "pingInterval"));
    o.ping_timeout_ms = (uint32_t)json_integer_value(json_object_get(req, "pingTimeout"));
    o.max_payload = (uint32_t)json_integer_value(json_object_get(req, "maxPayload"));
    return kw_eio_encode_open(&o, buf, cap, len, err);
}

static kw_err enc_eio(json_t *req, char *buf, size_t cap, size_t *len, kw_error *err)
{
    json_t *d = json_object_get(req, "data");
    kw_eio_type t = (kw_eio_type)json_integer_value(json_object_get(req, "type"));
    return kw_eio_encode(t, json_string_value(d), json_string_length(d), buf, cap, len, err);
}

static json_t *str_or_null(const char *p, size_t n)
{
    return p ? json_stringn(p, n) : json_null();
}

static void cmd_decode(json_t *req)
{
    const char *h = opt_str(req, "hex");
    size_t len = 0;
    char *frame = h ? from_hex(h, &len) : NULL;
    if (frame == NULL) {
        reply_err(KW_ERR_INVALID_ARGUMENT, "tool: hex missing or malformed");
        return;
    }
    kw_error err;
    kw_error_clear(&err);
    kw_eio_packet ep;
    kw_err rc = kw_eio_decode(frame, len, 0, KW_EIO_MAX_PAYLOAD, &ep, &err);
    if (rc != KW_OK) {
        reply_err(rc, err.detail);
        free(frame);
        return;
    }
    char *dh = to_hex(ep.data, ep.data_len);
    json_t *ans =
        json_pack("{s:b,s:i,s:s}", "ok", 1, "eio", (int)ep.type, "data_hex", dh ? dh : "");
    free(dh);
    if (ep.type == KW_EIO_MESSAGE) {
        kw_sio_packet p;
        rc = kw_sio_decode(ep.data, ep.data_len, &p, &err);
        if (rc != KW_OK) {
            json_decref(ans);
            reply_err(rc, err.detail);
            free(frame);
            return;
        }
        json_t *sio = json_pack("{s:i,s:o,s:o,s:o,s:o,s:I}", "type", (int)p.type, "nsp",
                                json_stringn(p.nsp, p.nsp_len), "ack",
                                p.has_ack ? json_integer(p.ack_id) : json_null(), "data",
                                str_or_null(p.data, p.data_len), "event",
                                p.type == KW_SIO_EVENT ? json_string(p.event) : json_null(), "argc",
                                (json_int_t)p.argc);
        json_object_set_new(ans, "sio", sio);
    } else if (ep.type == KW_EIO_OPEN) {
        kw_eio_open o;
        rc = kw_eio_decode_open(ep.data, ep.data_len, &o, &err);
        if (rc != KW_OK) {
            json_decref(ans);
            reply_err(rc, err.detail);
            free(frame);
            return;
        }
        json_object_set_new(ans, "open",
                            json_pack("{s:s,s:I,s:I,s:I}", "sid", o.sid, "pingInterval",
                                      (json_int_t)o.ping_interval_ms, "pingTimeout",
                                      (json_int_t)o.ping_timeout_ms, "maxPayload",
                                      (json_int_t)o.max_payload));
    }
    reply(ans);
    free(frame);
}

static void cmd_query(json_t *req)
{
    json_t *q = json_object_get(req, "q");
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kw_eio_check_query(json_string_value(q), json_string_length(q), &err);
    if (rc != KW_OK)
        reply_err(rc, err.detail);
    else
        reply(json_pack("{s:b}", "ok", 1));
}

int main(void)
{
    char *line = malloc(LINE_MAX_BYTES);
    if (line == NULL)
        return 1;
    while (fgets(line, (int)LINE_MAX_BYTES, stdin) != NULL) {
        json_error_t jerr;
        json_t *req = json_loads(line, 0, &jerr);
        const char *cmd = req ? opt_str(req, "cmd") : NULL;
        if (cmd == NULL)
            reply_err(KW_ERR_INVALID_ARGUMENT, "tool: request is not an object with cmd");
        else if (strcmp(cmd, "quit") == 0) {
            reply(json_pack("{s:b}", "ok", 1));
            json_decref(req);
            break;
        } else if (strcmp(cmd, "decode") == 0)
            cmd_decode(req);
        else if (strcmp(cmd, "query") == 0)
            cmd_query(req);
        else if (strcmp(cmd, "event") == 0)
            run_encoder(req, enc_event);
        else if (strcmp(cmd, "ack") == 0)
            run_encoder(req, enc_ack);
        else if (strcmp(cmd, "connect_ok") == 0)
            run_encoder(req, enc_connect_ok);
        else if (strcmp(cmd, "connect_error") == 0)
            run_encoder(req, enc_connect_error);
        else if (strcmp(cmd, "encode") == 0)
            run_encoder(req, enc_generic);
        else if (strcmp(cmd, "open") == 0)
            run_encoder(req, enc_open);
        else if (strcmp(cmd, "eio") == 0)
            run_encoder(req, enc_eio);
        else
            reply_err(KW_ERR_INVALID_ARGUMENT, "tool: unknown cmd");
        json_decref(req);
    }
    free(line);
    return 0;
}
