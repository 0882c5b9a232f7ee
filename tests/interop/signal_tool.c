/*
 * signal_tool.c — drives libkeywave's 1:1 Signal API (identity.h, bundle.h, session.h) for
 * the interop tests in tests/interop/signal.test.mjs, which pit it against real JavaScript
 * Signal libraries.
 *
 * Protocol: one JSON object per line on stdin, exactly one JSON object per line on stdout.
 * Every answer is {"ok":true, ...} or {"ok":false,"error":<kw_err_name>,"detail":<text>};
 * bad input is answered, never a crash. Identities live in memory (kw_store_mem_new), by
 * name. Requests (all fields required unless marked optional; no other fields allowed):
 *
 *   {"cmd":"new","name":s,"device":n,"now_ms":n,"role"?:"member"|"guest"}
 *       -> {"bundle":{...}, "registration":{...}, "prekey_count":n}
 *   {"cmd":"bundle","as":s}                      -> {"bundle":{...}} (kw_bundle_self)
 *   {"cmd":"check_bundle","bundle":{...}}        -> {"bundle":{...}} (parsed, re-encoded)
 *   {"cmd":"process_bundle","as":s,"peer":s,"device":n,"bundle":{...}} -> {}
 *   {"cmd":"encrypt","as":s,"peer":s,"device":n,"plaintext_b64":s} -> {"type":n,"body":s}
 *   {"cmd":"decrypt","as":s,"peer":s,"device":n,"type":n,"body":s} -> {"plaintext_b64":s}
 *   {"cmd":"prekey_count","as":s}                -> {"count":n}
 *   {"cmd":"has_session","as":s,"peer":s,"device":n} -> {"exists":bool}
 *   {"cmd":"group_dist","as":s,"group":s}        -> {"dist":s} (our sender key's distribution)
 *   {"cmd":"group_process","as":s,"group":s,"sender":s,"device":n,"dist":s} -> {}
 *   {"cmd":"group_encrypt","as":s,"group":s,"plaintext_b64":s} -> {"ct":s}
 *   {"cmd":"group_decrypt","as":s,"group":s,"sender":s,"device":n,"ct":s} -> {"plaintext_b64":s}
 *   {"cmd":"drop","name":s}                      -> {} (frees the identity)
 *   {"cmd":"quit"}                               -> {} and exit 0
 *
 * Time comes only from "now_ms"; randomness from kw_random_system().
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/group.h"
#include "keywave/identity.h"
#include "keywave/random.h"
#include "keywave/session.h"
#include "keywave/store.h"

#include "crypto.h" /* kw_wipe */

#define TOOL_MAX_IDENTITIES 32
#define TOOL_LINE_MAX       ((size_t)1024 * 1024) /* longest request line */
#define TOOL_PLAINTEXT_MAX  ((size_t)64 * 1024)   /* longest plaintext accepted by encrypt */

typedef struct tool_identity {
    char name[KW_NAME_MAX + 1]; /* "" = free slot */
    uint32_t device_id;
    int is_guest;
    kw_store *store; /* owned */
    kw_identity *id; /* owned */
} tool_identity;

typedef struct tool {
    tool_identity ids[TOOL_MAX_IDENTITIES];
} tool;

/* One answer under construction: ok fields go into `out`, a failure into `err`. */
typedef struct answer {
    json_t *out; /* owned */
    kw_error err;
} answer;

static kw_err fail(answer *a, kw_err code, const char *detail)
{
    return kw_error_set(&a->err, code, "%s", detail);
}

/* json_object_set_new that reports allocation failure as a kw_err. */
static kw_err put(answer *a, const char *key, json_t *val)
{
    if (val == NULL || json_object_set_new(a->out, key, val) != 0)
        return fail(a, KW_ERR_NOMEM, "out of memory building the answer");
    return KW_OK;
}

static kw_err unpack_failed(answer *a, const json_error_t *je)
{
    /* JSON_STRICT reports leftover keys as "... object item(s) left unpacked: <keys>" */
    kw_err code = strstr(je->text, "left unpacked") ? KW_ERR_UNKNOWN_FIELD : KW_ERR_JSON;
    return kw_error_set(&a->err, code, "%s", je->text);
}

static tool_identity *find(tool *t, const char *name)
{
    for (size_t i = 0; i < TOOL_MAX_IDENTITIES; i++)
        if (t->ids[i].name[0] != '\0' && strcmp(t->ids[i].name, name) == 0)
            return &t->ids[i];
    return NULL;
}

static kw_err find_as(tool *t, answer *a, const char *name, tool_identity **out)
{
    *out = find(t, name);
    if (*out == NULL)
        return kw_error_set(&a->err, KW_ERR_NOT_FOUND, "no identity named in \"as\"");
    return KW_OK;
}

static void slot_clear(tool_identity *s)
{
    kw_identity_free(s->id);
    kw_store_free(s->store);
    memset(s, 0, sizeof *s);
}

static kw_err device_check(answer *a, json_int_t device, uint32_t *out)
{
    if (device < 0 || device > INT32_MAX)
        return fail(a, KW_ERR_INVALID_ARGUMENT, "device: out of range");
    *out = (uint32_t)device;
    return KW_OK;
}

/* Parses a library-produced JSON text and puts it under key. */
static kw_err put_json_text(answer *a, const char *key, const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL)
        return kw_error_set(&a->err, KW_ERR_INTERNAL, "library JSON does not parse: %s", je.text);
    return put(a, key, v);
}

static kw_err put_bundle(answer *a, const kw_bundle *b)
{
    char *text = NULL;
    kw_err rc = kw_bundle_to_json(b, &text, &a->err);
    if (rc == KW_OK)
        rc = put_json_text(a, "bundle", text);
    free(text);
    return rc;
}

static kw_err self_bundle(tool_identity *s, answer *a)
{
    kw_bundle b;
    kw_err rc = kw_bundle_self(s->id, s->name, s->is_guest, s->device_id, &b, &a->err);
    if (rc != KW_OK)
        return rc;
    return put_bundle(a, &b);
}

static kw_err put_prekey_count(tool_identity *s, answer *a, const char *key)
{
    size_t count = 0;
    kw_err rc = kw_keys_local_pre_key_count(s->id, &count, &a->err);
    if (rc != KW_OK)
        return rc;
    return put(a, key, json_integer((json_int_t)count));
}

/* Encodes a bundle object given in a request and parses it with kw_bundle_from_json. */
static kw_err bundle_from_request(answer *a, json_t *obj, kw_bundle *b)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text == NULL)
        return fail(a, KW_ERR_NOMEM, "bundle: cannot serialize");
    kw_err rc = kw_bundle_from_json(text, strlen(text), b, &a->err);
    free(text);
    return rc;
}

static kw_err cmd_new(tool *t, json_t *req, answer *a)
{
    const char *name = NULL, *role = "member";
    json_int_t device = 0, now_ms = 0;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:I, s:I, s?:s}", "cmd",
                       &(const char *){0}, "name", &name, "device", &device, "now_ms", &now_ms,
                       "role", &role) != 0)
        return unpack_failed(a, &je);
    uint32_t dev = 0;
    kw_err rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    kw_role kr;
    if (strcmp(role, "member") == 0)
        kr = KW_ROLE_MEMBER;
    else if (strcmp(role, "guest") == 0)
        kr = KW_ROLE_GUEST;
    else
        return fail(a, KW_ERR_INVALID_ARGUMENT, "role: not member or guest");
    if (name[0] == '\0' || strlen(name) > KW_NAME_MAX)
        return fail(a, KW_ERR_INVALID_ARGUMENT, "name: empty or too long");
    if (find(t, name) != NULL)
        return fail(a, KW_ERR_INVALID_ARGUMENT, "name: already in use");
    tool_identity *s = NULL;
    for (size_t i = 0; i < TOOL_MAX_IDENTITIES && s == NULL; i++)
        if (t->ids[i].name[0] == '\0')
            s = &t->ids[i];
    if (s == NULL)
        return fail(a, KW_ERR_INVALID_ARGUMENT, "too many identities");

    rc = kw_store_mem_new(&s->store);
    if (rc != KW_OK) {
        fail(a, rc, "kw_store_mem_new failed");
        goto fail;
    }
    kw_identity_config cfg = {
        .role = kr,
        .store = s->store,
        .random = kw_random_system(),
        .self_name = name,
        .self_device_id = dev,
    };
    rc = kw_identity_open(&cfg, &s->id, &a->err);
    if (rc != KW_OK)
        goto fail;
    rc = kw_keys_setup(s->id, (int64_t)now_ms, NULL, NULL, NULL, &a->err);
    if (rc != KW_OK)
        goto fail;
    memcpy(s->name, name, strlen(name) + 1);
    s->device_id = dev;
    s->is_guest = kr == KW_ROLE_GUEST;

    char *reg = NULL;
    rc = kw_keys_export_json(s->id, &reg, &a->err);
    if (rc == KW_OK)
        rc = put_json_text(a, "registration", reg);
    free(reg);
    if (rc == KW_OK)
        rc = self_bundle(s, a);
    if (rc == KW_OK)
        rc = put_prekey_count(s, a, "prekey_count");
    if (rc != KW_OK)
        goto fail;
    return KW_OK;
fail:
    slot_clear(s);
    return rc;
}

static kw_err cmd_bundle(tool *t, json_t *req, answer *a)
{
    const char *as = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s}", "cmd", &(const char *){0}, "as", &as) !=
        0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    kw_err rc = find_as(t, a, as, &s);
    if (rc != KW_OK)
        return rc;
    return self_bundle(s, a);
}

static kw_err cmd_check_bundle(tool *t, json_t *req, answer *a)
{
    (void)t;
    json_t *obj = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:o}", "cmd", &(const char *){0}, "bundle",
                       &obj) != 0)
        return unpack_failed(a, &je);
    kw_bundle b;
    kw_err rc = bundle_from_request(a, obj, &b);
    if (rc != KW_OK)
        return rc;
    return put_bundle(a, &b);
}

static kw_err cmd_process_bundle(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *peer = NULL;
    json_int_t device = 0;
    json_t *obj = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:o}", "cmd",
                       &(const char *){0}, "as", &as, "peer", &peer, "device", &device, "bundle",
                       &obj) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    uint32_t dev = 0;
    kw_err rc = find_as(t, a, as, &s);
    if (rc == KW_OK)
        rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    kw_bundle b;
    rc = bundle_from_request(a, obj, &b);
    if (rc != KW_OK)
        return rc;
    return kw_session_process_bundle(s->id, peer, dev, &b, &a->err);
}

static kw_err cmd_encrypt(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *peer = NULL, *pt_b64 = NULL;
    json_int_t device = 0;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:s}", "cmd",
                       &(const char *){0}, "as", &as, "peer", &peer, "device", &device,
                       "plaintext_b64", &pt_b64) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    uint32_t dev = 0;
    kw_err rc = find_as(t, a, as, &s);
    if (rc == KW_OK)
        rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    size_t b64_len = strlen(pt_b64);
    if (b64_len > kw_base64_encoded_len(TOOL_PLAINTEXT_MAX))
        return fail(a, KW_ERR_INVALID_ARGUMENT, "plaintext_b64: too long");
    uint8_t *pt = malloc(TOOL_PLAINTEXT_MAX);
    if (pt == NULL)
        return fail(a, KW_ERR_NOMEM, "out of memory");
    size_t pt_len = 0;
    int type = 0;
    char *body = NULL;
    rc = kw_base64_decode(pt_b64, b64_len, pt, TOOL_PLAINTEXT_MAX, &pt_len);
    if (rc != KW_OK)
        fail(a, rc, "plaintext_b64: not standard padded base64");
    else
        rc = kw_session_encrypt(s->id, peer, dev, pt, pt_len, &type, &body, &a->err);
    if (rc == KW_OK)
        rc = put(a, "type", json_integer(type));
    if (rc == KW_OK)
        rc = put(a, "body", json_string(body));
    free(body);
    free(pt);
    return rc;
}

static kw_err cmd_decrypt(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *peer = NULL, *body = NULL;
    json_int_t device = 0;
    int type = 0;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:i, s:s}", "cmd",
                       &(const char *){0}, "as", &as, "peer", &peer, "device", &device, "type",
                       &type, "body", &body) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    uint32_t dev = 0;
    kw_err rc = find_as(t, a, as, &s);
    if (rc == KW_OK)
        rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    rc = kw_session_decrypt(s->id, peer, dev, type, body, &pt, &pt_len, &a->err);
    if (rc != KW_OK)
        return rc;
    size_t out_size = kw_base64_encoded_len(pt_len) + 1;
    char *out = malloc(out_size);
    if (out == NULL)
        rc = fail(a, KW_ERR_NOMEM, "out of memory");
    else if (kw_base64_encode(pt, pt_len, out, out_size) != KW_OK)
        rc = fail(a, KW_ERR_INTERNAL, "base64 encode failed");
    else
        rc = put(a, "plaintext_b64", json_string(out));
    free(out);
    if (pt != NULL)
        kw_wipe(pt, pt_len); /* session.h: the caller wipes the plaintext */
    free(pt);
    return rc;
}

/* Puts pt[0..len) as base64 under key. */
static kw_err put_b64(answer *a, const char *key, const uint8_t *pt, size_t len)
{
    size_t out_size = kw_base64_encoded_len(len) + 1;
    char *out = malloc(out_size);
    kw_err rc;
    if (out == NULL)
        rc = fail(a, KW_ERR_NOMEM, "out of memory");
    else if (kw_base64_encode(pt, len, out, out_size) != KW_OK)
        rc = fail(a, KW_ERR_INTERNAL, "base64 encode failed");
    else
        rc = put(a, key, json_string(out));
    free(out);
    return rc;
}

static kw_err cmd_group_dist(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *group = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s}", "cmd", &(const char *){0}, "as",
                       &as, "group", &group) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    kw_err rc = find_as(t, a, as, &s);
    if (rc != KW_OK)
        return rc;
    char *dist = NULL;
    rc = kw_group_create_distribution(s->id, group, &dist, &a->err);
    if (rc == KW_OK)
        rc = put(a, "dist", json_string(dist));
    free(dist);
    return rc;
}

static kw_err cmd_group_process(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *group = NULL, *sender = NULL, *dist = NULL;
    json_int_t device = 0;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:s, s:I, s:s}", "cmd",
                       &(const char *){0}, "as", &as, "group", &group, "sender", &sender, "device",
                       &device, "dist", &dist) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    uint32_t dev = 0;
    kw_err rc = find_as(t, a, as, &s);
    if (rc == KW_OK)
        rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    return kw_group_process_distribution(s->id, group, sender, dev, dist, &a->err);
}

static kw_err cmd_group_encrypt(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *group = NULL, *pt_b64 = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:s}", "cmd", &(const char *){0},
                       "as", &as, "group", &group, "plaintext_b64", &pt_b64) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    kw_err rc = find_as(t, a, as, &s);
    if (rc != KW_OK)
        return rc;
    size_t b64_len = strlen(pt_b64);
    if (b64_len > kw_base64_encoded_len(TOOL_PLAINTEXT_MAX))
        return fail(a, KW_ERR_INVALID_ARGUMENT, "plaintext_b64: too long");
    uint8_t *pt = malloc(TOOL_PLAINTEXT_MAX);
    if (pt == NULL)
        return fail(a, KW_ERR_NOMEM, "out of memory");
    size_t pt_len = 0;
    char *ct = NULL;
    rc = kw_base64_decode(pt_b64, b64_len, pt, TOOL_PLAINTEXT_MAX, &pt_len);
    if (rc != KW_OK)
        fail(a, rc, "plaintext_b64: not standard padded base64");
    else
        rc = kw_group_encrypt(s->id, group, pt, pt_len, &ct, &a->err);
    if (rc == KW_OK)
        rc = put(a, "ct", json_string(ct));
    free(ct);
    free(pt);
    return rc;
}

static kw_err cmd_group_decrypt(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *group = NULL, *sender = NULL, *ct = NULL;
    json_int_t device = 0;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:s, s:I, s:s}", "cmd",
                       &(const char *){0}, "as", &as, "group", &group, "sender", &sender, "device",
                       &device, "ct", &ct) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    uint32_t dev = 0;
    kw_err rc = find_as(t, a, as, &s);
    if (rc == KW_OK)
        rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    rc = kw_group_decrypt(s->id, group, sender, dev, ct, &pt, &pt_len, &a->err);
    if (rc != KW_OK)
        return rc;
    rc = put_b64(a, "plaintext_b64", pt, pt_len);
    kw_wipe(pt, pt_len); /* group.h: the caller wipes the plaintext */
    free(pt);
    return rc;
}

static kw_err cmd_prekey_count(tool *t, json_t *req, answer *a)
{
    const char *as = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s}", "cmd", &(const char *){0}, "as", &as) !=
        0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    kw_err rc = find_as(t, a, as, &s);
    if (rc != KW_OK)
        return rc;
    return put_prekey_count(s, a, "count");
}

static kw_err cmd_has_session(tool *t, json_t *req, answer *a)
{
    const char *as = NULL, *peer = NULL;
    json_int_t device = 0;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I}", "cmd", &(const char *){0},
                       "as", &as, "peer", &peer, "device", &device) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    uint32_t dev = 0;
    kw_err rc = find_as(t, a, as, &s);
    if (rc == KW_OK)
        rc = device_check(a, device, &dev);
    if (rc != KW_OK)
        return rc;
    return put(a, "exists", json_boolean(kw_session_exists(s->id, peer, dev)));
}

static kw_err cmd_drop(tool *t, json_t *req, answer *a)
{
    const char *name = NULL;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:s}", "cmd", &(const char *){0}, "name",
                       &name) != 0)
        return unpack_failed(a, &je);
    tool_identity *s = NULL;
    kw_err rc = find_as(t, a, name, &s);
    if (rc != KW_OK)
        return rc;
    slot_clear(s);
    return KW_OK;
}

static kw_err cmd_quit(tool *t, json_t *req, answer *a)
{
    (void)t;
    json_error_t je;
    if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s}", "cmd", &(const char *){0}) != 0)
        return unpack_failed(a, &je);
    return KW_OK;
}

typedef struct command {
    const char *name;
    kw_err (*run)(tool *t, json_t *req, answer *a);
} command;

static const command commands[] = {
    {"new", cmd_new},
    {"bundle", cmd_bundle},
    {"check_bundle", cmd_check_bundle},
    {"process_bundle", cmd_process_bundle},
    {"encrypt", cmd_encrypt},
    {"decrypt", cmd_decrypt},
    {"prekey_count", cmd_prekey_count},
    {"has_session", cmd_has_session},
    {"group_dist", cmd_group_dist},
    {"group_process", cmd_group_process},
    {"group_encrypt", cmd_group_encrypt},
    {"group_decrypt", cmd_group_decrypt},
    {"drop", cmd_drop},
    {"quit", cmd_quit},
};

/* Runs one request line; returns the answer object (owned by the caller, never NULL
 * unless out of memory) and sets *quit on a successful quit. */
static json_t *handle_line(tool *t, const char *line, size_t len, int *quit)
{
    answer a = {.out = json_object()};
    if (a.out == NULL)
        return NULL;
    kw_error_clear(&a.err);
    kw_err rc;
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    const char *cmd = NULL;
    const command *c = NULL;
    if (req == NULL) {
        rc = kw_error_set(&a.err, KW_ERR_JSON, "request: %s", je.text);
    } else if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
        rc = fail(&a, KW_ERR_JSON, "request: not an object with a string \"cmd\"");
    } else {
        cmd = json_string_value(json_object_get(req, "cmd"));
        for (size_t i = 0; i < sizeof commands / sizeof commands[0] && c == NULL; i++)
            if (strcmp(commands[i].name, cmd) == 0)
                c = &commands[i];
        if (c == NULL)
            rc = fail(&a, KW_ERR_INVALID_ARGUMENT, "cmd: unknown command");
        else
            rc = c->run(t, req, &a);
    }
    if (rc == KW_OK) {
        if (json_object_set_new(a.out, "ok", json_true()) != 0)
            rc = fail(&a, KW_ERR_NOMEM, "out of memory");
        else if (c != NULL && c->run == cmd_quit)
            *quit = 1;
    }
    if (rc != KW_OK) {
        /* a failed command answers only the error, whatever it had put so far */
        json_object_clear(a.out);
        json_object_set_new(a.out, "ok", json_false());
        json_object_set_new(a.out, "error", json_string(kw_err_name(rc)));
        json_object_set_new(a.out, "detail", json_string(a.err.detail));
    }
    json_decref(req);
    return a.out;
}

static int write_answer(json_t *out)
{
    if (out == NULL) {
        fputs("{\"ok\":false,\"error\":\"out_of_memory\",\"detail\":\"answer\"}\n", stdout);
    } else {
        if (json_dumpf(out, stdout, JSON_COMPACT) != 0)
            return -1;
        fputc('\n', stdout);
    }
    return fflush(stdout) == 0 ? 0 : -1;
}

int main(void)
{
    static tool t; /* zeroed; large, so not on the stack */
    char *line = NULL;
    size_t cap = 0;
    int quit = 0;
    int status = 0;
    while (!quit) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            status = errno != 0 ? 1 : 0;
            break;
        }
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n == 0)
            continue; /* blank lines are ignored */
        json_t *out;
        if ((size_t)n > TOOL_LINE_MAX) {
            answer a = {.out = json_object()};
            out = a.out;
            if (out != NULL) {
                json_object_set_new(out, "ok", json_false());
                json_object_set_new(out, "error", json_string(kw_err_name(KW_ERR_JSON)));
                json_object_set_new(out, "detail", json_string("request: line too long"));
            }
        } else {
            out = handle_line(&t, line, (size_t)n, &quit);
        }
        int wrc = write_answer(out);
        json_decref(out);
        if (wrc != 0) {
            status = 1;
            break;
        }
    }
    free(line);
    for (size_t i = 0; i < TOOL_MAX_IDENTITIES; i++)
        slot_clear(&t.ids[i]);
    return status;
}
