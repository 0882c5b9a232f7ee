/*
 * keywave_web.c — the browser's door into libkeywave: one JSON-in/JSON-out call.
 *
 * The page (web/src) does UI and I/O only; every protocol step — key setup, bundles,
 * Signal sessions, sender keys, the media-key agreement — runs here, in the same C core
 * the native client uses. One module instance is one tab's guest: one in-memory store,
 * one identity (role guest), one kw_mka. The store can be written out as JSON (a
 * snapshot) so the page keeps it in sessionStorage and a reload in the same tab reuses
 * the keys.
 *
 * kww_call(request) takes {"cmd":"<name>", ...} and returns a malloc'd JSON text that the
 * caller frees with kww_free (which wipes it: answers may hold key material). Every
 * answer is {"ok":true, ...} or {"ok":false,"error":"<kw_err_name>","detail":"..."}.
 * Commands (fields required unless marked "?"):
 *   init {snapshot?:{records:{key:b64}}}           -> {has_identity}
 *   keys_setup {now_ms}  (progress: Module.kwProgress(step, label, done, total, skipped))
 *                                                  -> {made_identity, made_signed_pre_key,
 *                                                      made_pre_keys}
 *   keys_export                                    -> {keys:{...upload document...}}
 *   keys_replenish {server_count}                  -> {batch:{pre_keys:[...]}|null}
 *   identity                                       -> {identity_key, registration_id}
 *   set_self {name, device}                        -> {}
 *   session_exists {name, device}                  -> {exists}
 *   process_bundle {name, device, bundle:{...}}    -> {}
 *   encrypt {name, device, plaintext}              -> {type, body}
 *   decrypt {name, device, type, body}  (type 0: PreKey, else normal) -> {plaintext}
 *   group_process {group, sender, device, dist}    -> {}
 *   group_decrypt {group, sender, device, ct}      -> {plaintext}
 *   mka_new {self}; mka_start {now_ms, peers:[{id, joined_ms}]};
 *   mka_peer_joined {now_ms, id, joined_ms}; mka_peer_left {now_ms, id};
 *   mka_receive {now_ms, from, payload}; mka_tick {now_ms}; mka_leave
 *       -> {state, deadline|null, actions:[{type:"send", to, payload, kind, request_id} |
 *           {type:"key", epoch, created_ms, key_id, key, fingerprint} |
 *           {type:"failed", error}]}
 *   mka_key                                        -> {epoch, fingerprint} | error no_key
 *   snapshot                                       -> {records:{key:b64}}
 *   crypto {op, ...} (KW_WEB_TEST builds only: the known-answer tests' door to crypto.h)
 */
#include <emscripten/emscripten.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/group.h"
#include "keywave/identity.h"
#include "keywave/media_key.h"
#include "keywave/random.h"
#include "keywave/session.h"
#include "keywave/store.h"

/* Random bytes from crypto.getRandomValues, at most 65 536 per call (its limit); emscripten
 * 3.1.6's getentropy would ask one byte at a time (NOTES.md). */
EM_JS(int, kww_js_random, (uint8_t * buf, size_t len), {
    try {
        for (let off = 0; off < len; off += 65536) {
            const n = Math.min(65536, len - off);
            crypto.getRandomValues(HEAPU8.subarray(buf + off, buf + off + n));
        }
        return 0;
    } catch (e) {
        return -1;
    }
});

EM_JS(void, kww_js_progress, (int step, const char *label, int done, int total, int skipped), {
    if (typeof Module.kwProgress == 'function')
        Module.kwProgress(step, UTF8ToString(label), done, total, skipped != 0);
});

kw_err kw_web_random_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return len == 0 || kww_js_random(buf, len) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

static struct {
    kw_store *store;
    kw_identity *id;
    kw_mka *mka;
} tab;

/* ---- answers ------------------------------------------------------------------------- */

static json_t *fail(kw_err code, const char *detail)
{
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", kw_err_name(code), "detail",
                     detail != NULL && detail[0] != '\0' ? detail : kw_strerror(code));
}

static json_t *fail_err(const kw_error *err, kw_err rc)
{
    return fail(rc, err->code == rc ? err->detail : "");
}

static json_t *ok(json_t *fields)
{
    json_t *o = fields != NULL ? fields : json_object();
    json_object_set_new(o, "ok", json_true());
    return o;
}

static const char *sfield(json_t *req, const char *k)
{
    return json_string_value(json_object_get(req, k));
}

static int64_t ifield(json_t *req, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(req, k));
}

/* The address fields every session command has; NULL name = bad request. */
static const char *address(json_t *req, uint32_t *device)
{
    json_int_t d = json_integer_value(json_object_get(req, "device"));
    *device = (uint32_t)d;
    const char *name = sfield(req, "name");
    return d >= 1 && d <= 0x7fffffff ? name : NULL;
}

/* A NUL-terminated copy of pt for a JSON string, wiping pt. */
static json_t *plaintext_answer(uint8_t *pt, size_t len)
{
    json_t *o = json_pack("{s:s%}", "plaintext", (const char *)pt, len);
    kw_wipe(pt, len);
    free(pt);
    return o != NULL ? ok(o) : fail(KW_ERR_INVALID_MESSAGE, "plaintext is not UTF-8");
}

/* ---- store snapshot ------------------------------------------------------------------ */

static kw_err snap_each(void *arg, const char *key)
{
    json_t *records = arg;
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(tab.store, key, &val, &len);
    if (rc != KW_OK)
        return rc;
    size_t cap = kw_base64_encoded_len(len) + 1;
    char *text = malloc(cap);
    if (text == NULL)
        rc = KW_ERR_NOMEM;
    else if ((rc = kw_base64_encode(val, len, text, cap)) == KW_OK)
        json_object_set_new(records, key, json_string(text));
    if (text != NULL) {
        kw_wipe(text, cap);
        free(text);
    }
    kw_wipe(val, len);
    free(val);
    return rc;
}

static kw_err snapshot_load(json_t *snap, kw_error *err)
{
    json_t *records = json_object_get(snap, "records");
    if (!json_is_object(records))
        return kw_error_set(err, KW_ERR_JSON, "snapshot.records");
    const char *key;
    json_t *v;
    json_object_foreach(records, key, v)
    {
        const char *text = json_string_value(v);
        if (text == NULL)
            return kw_error_set(err, KW_ERR_JSON, "snapshot record %s", key);
        size_t tlen = strlen(text), cap = tlen / 4 * 3 + 3, n = 0;
        uint8_t *val = malloc(cap);
        if (val == NULL)
            return kw_error_set(err, KW_ERR_NOMEM, "snapshot");
        kw_err rc = kw_base64_decode(text, tlen, val, cap, &n);
        if (rc == KW_OK)
            rc = kw_store_put(tab.store, key, val, n);
        kw_wipe(val, cap);
        free(val);
        if (rc != KW_OK)
            return kw_error_set(err, rc, "snapshot record %s", key);
    }
    return KW_OK;
}

/* ---- media-key agreement ------------------------------------------------------------- */

static json_t *action_json(const kw_mka_action *a)
{
    switch (a->type) {
    case KW_MKA_ACTION_SEND: {
        json_t *doc = json_loadb(a->payload, a->payload_len, 0, NULL);
        const char *kind = json_string_value(json_object_get(doc, "type"));
        const char *rid = json_string_value(json_object_get(doc, "request_id"));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "type", "send", "to", a->to, "payload",
                              a->payload, "kind", kind != NULL ? kind : "", "request_id", rid);
        json_decref(doc); /* may hold the key, as in the CLI; the text copy is wiped by kww_free */
        return o;
    }
    case KW_MKA_ACTION_KEY: {
        char fp[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1] = "";
        char key[64], id[KW_MEDIA_KEY_ID_HEX + 1];
        if (kw_media_key_fingerprint(&a->key, fp) != KW_OK ||
            kw_base64_encode(a->key.key, KW_MEDIA_KEY_BYTES, key, sizeof key) != KW_OK)
            return json_pack("{s:s, s:s}", "type", "failed", "error", kw_err_name(KW_ERR_CRYPTO));
        snprintf(id, sizeof id, "%016" PRIx64, a->key.key_id);
        json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "type", "key", "epoch",
                              (json_int_t)a->key.epoch, "created_ms", (json_int_t)a->key.created_ms,
                              "key_id", id, "key", key, "fingerprint", fp);
        kw_wipe(key, sizeof key);
        return o;
    }
    case KW_MKA_ACTION_FAILED:
        return json_pack("{s:s, s:s}", "type", "failed", "error", kw_err_name(a->error));
    }
    return json_pack("{s:s}", "type", "unknown");
}

static const char *state_name(kw_mka_state s)
{
    switch (s) {
    case KW_MKA_IDLE:
        return "idle";
    case KW_MKA_REQUESTING:
        return "requesting";
    case KW_MKA_HAVE_KEY:
        return "have_key";
    case KW_MKA_FAILED:
        return "failed";
    }
    return "unknown";
}

/* The answer of every mka command: its result, the drained actions and the deadline. */
static json_t *mka_answer(kw_err rc, const kw_error *err)
{
    json_t *actions = json_array();
    kw_mka_action a;
    while (kw_mka_next_action(tab.mka, &a)) {
        json_array_append_new(actions, action_json(&a));
        kw_mka_action_wipe(&a);
    }
    int64_t deadline = kw_mka_deadline(tab.mka);
    json_t *o = rc == KW_OK ? ok(NULL) : fail_err(err, rc);
    json_object_set_new(o, "actions", actions);
    json_object_set_new(o, "state", json_string(state_name(kw_mka_get_state(tab.mka))));
    json_object_set_new(o, "deadline",
                        deadline == INT64_MAX ? json_null() : json_integer((json_int_t)deadline));
    return o;
}

static json_t *cmd_mka(const char *cmd, json_t *req)
{
    kw_error err;
    kw_error_clear(&err);
    int64_t now = ifield(req, "now_ms");
    kw_err rc = KW_OK;
    if (strcmp(cmd, "mka_new") == 0) {
        const char *self = sfield(req, "self");
        if (self == NULL)
            return fail(KW_ERR_INVALID_ARGUMENT, "self");
        kw_mka_free(tab.mka);
        tab.mka = NULL;
        rc = kw_mka_new(self, kw_random_system(), &tab.mka);
        return rc == KW_OK ? ok(NULL) : fail(rc, "mka_new");
    }
    if (tab.mka == NULL)
        return fail(KW_ERR_STATE, "mka_new first");
    if (strcmp(cmd, "mka_start") == 0) {
        json_t *list = json_object_get(req, "peers");
        size_t n = json_array_size(list), i;
        kw_mka_peer *peers = calloc(n + 1, sizeof *peers);
        if (peers == NULL)
            return fail(KW_ERR_NOMEM, "peers");
        json_t *p;
        json_array_foreach(list, i, p)
        {
            peers[i].id = sfield(p, "id") != NULL ? sfield(p, "id") : "";
            peers[i].joined_ms = ifield(p, "joined_ms");
        }
        rc = kw_mka_start(tab.mka, now, peers, n);
        free(peers);
    } else if (strcmp(cmd, "mka_peer_joined") == 0)
        rc = kw_mka_peer_joined(tab.mka, now, sfield(req, "id") ? sfield(req, "id") : "",
                                ifield(req, "joined_ms"));
    else if (strcmp(cmd, "mka_peer_left") == 0)
        rc = kw_mka_peer_left(tab.mka, now, sfield(req, "id") ? sfield(req, "id") : "");
    else if (strcmp(cmd, "mka_receive") == 0) {
        const char *from = sfield(req, "from"), *payload = sfield(req, "payload");
        if (from == NULL || payload == NULL)
            return fail(KW_ERR_INVALID_ARGUMENT, "from, payload");
        rc = kw_mka_receive(tab.mka, now, from, payload, strlen(payload), &err);
    } else if (strcmp(cmd, "mka_tick") == 0)
        rc = kw_mka_tick(tab.mka, now);
    else if (strcmp(cmd, "mka_leave") == 0)
        kw_mka_leave(tab.mka);
    else if (strcmp(cmd, "mka_key") == 0) {
        kw_media_key k;
        char fp[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1];
        rc = kw_mka_current_key(tab.mka, &k);
        if (rc == KW_OK)
            rc = kw_media_key_fingerprint(&k, fp);
        json_int_t epoch = (json_int_t)k.epoch;
        kw_media_key_wipe(&k);
        return rc == KW_OK ? ok(json_pack("{s:I, s:s}", "epoch", epoch, "fingerprint", fp))
                           : fail(rc, "mka_key");
    } else
        return fail(KW_ERR_INVALID_ARGUMENT, "unknown command");
    return mka_answer(rc, &err);
}

/* ---- keys and sessions --------------------------------------------------------------- */

static void on_progress(void *arg, kw_setup_step step, int done, int total, int skipped)
{
    (void)arg;
    kww_js_progress((int)step, kw_setup_step_label(step), done, total, skipped);
}

static json_t *cmd_init(json_t *req)
{
    kw_error err;
    kw_error_clear(&err);
    kw_mka_free(tab.mka);
    kw_identity_free(tab.id);
    kw_store_free(tab.store);
    memset(&tab, 0, sizeof tab);
    kw_err rc = kw_store_mem_new(&tab.store);
    if (rc != KW_OK)
        return fail(rc, "store");
    json_t *snap = json_object_get(req, "snapshot");
    if (json_is_object(snap) && (rc = snapshot_load(snap, &err)) != KW_OK)
        return fail_err(&err, rc);
    kw_identity_config cfg = {KW_ROLE_GUEST, tab.store, NULL, NULL, 0};
    if ((rc = kw_identity_open(&cfg, &tab.id, &err)) != KW_OK)
        return fail_err(&err, rc);
    kw_public_identity pub;
    int has = kw_keys_identity(tab.id, &pub, &err) == KW_OK;
    return ok(json_pack("{s:b}", "has_identity", has));
}

static json_t *cmd_keys(const char *cmd, json_t *req)
{
    kw_error err;
    kw_error_clear(&err);
    kw_err rc;
    if (strcmp(cmd, "keys_setup") == 0) {
        kw_setup_result res;
        rc = kw_keys_setup(tab.id, ifield(req, "now_ms"), on_progress, NULL, &res, &err);
        if (rc != KW_OK)
            return fail_err(&err, rc);
        return ok(json_pack("{s:b, s:b, s:i}", "made_identity", res.made_identity,
                            "made_signed_pre_key", res.made_signed_pre_key, "made_pre_keys",
                            res.made_pre_keys));
    }
    if (strcmp(cmd, "identity") == 0) {
        kw_public_identity pub;
        char key[64];
        if ((rc = kw_keys_identity(tab.id, &pub, &err)) != KW_OK)
            return fail_err(&err, rc);
        if (kw_base64_encode(pub.identity_key, KW_PUBKEY_BYTES, key, sizeof key) != KW_OK)
            return fail(KW_ERR_INTERNAL, "identity");
        return ok(json_pack("{s:s, s:I}", "identity_key", key, "registration_id",
                            (json_int_t)pub.registration_id));
    }
    char *text = NULL;
    if (strcmp(cmd, "keys_export") == 0)
        rc = kw_keys_export_json(tab.id, &text, &err);
    else {
        json_int_t n = json_integer_value(json_object_get(req, "server_count"));
        rc = n < 0 ? KW_ERR_INVALID_ARGUMENT : kw_keys_replenish(tab.id, (size_t)n, &text, &err);
    }
    if (rc != KW_OK)
        return fail_err(&err, rc);
    json_t *doc = text != NULL ? json_loads(text, 0, NULL) : json_null();
    if (text != NULL) {
        kw_wipe(text, strlen(text));
        free(text);
    }
    if (doc == NULL)
        return fail(KW_ERR_JSON, "key export");
    json_t *o = json_object();
    json_object_set_new(o, strcmp(cmd, "keys_export") == 0 ? "keys" : "batch", doc);
    return ok(o);
}

static json_t *cmd_session(const char *cmd, json_t *req)
{
    kw_error err;
    kw_error_clear(&err);
    uint32_t dev = 0;
    const char *name = address(req, &dev);
    kw_err rc;
    if (name == NULL)
        return fail(KW_ERR_INVALID_ARGUMENT, "name, device");
    if (strcmp(cmd, "set_self") == 0) {
        rc = kw_identity_set_self(tab.id, name, dev);
        return rc == KW_OK ? ok(NULL) : fail(rc, "set_self");
    }
    if (strcmp(cmd, "session_exists") == 0)
        return ok(json_pack("{s:b}", "exists", kw_session_exists(tab.id, name, dev)));
    if (strcmp(cmd, "process_bundle") == 0) {
        char *text = json_dumps(json_object_get(req, "bundle"), JSON_COMPACT);
        kw_bundle b;
        if (text == NULL)
            return fail(KW_ERR_JSON, "bundle");
        rc = kw_bundle_from_json(text, strlen(text), &b, &err);
        free(text);
        if (rc == KW_OK)
            rc = kw_session_process_bundle(tab.id, name, dev, &b, &err);
        return rc == KW_OK ? ok(NULL) : fail_err(&err, rc);
    }
    if (strcmp(cmd, "encrypt") == 0) {
        const char *pt = sfield(req, "plaintext");
        char *body = NULL;
        int type = 0;
        if (pt == NULL)
            return fail(KW_ERR_INVALID_ARGUMENT, "plaintext");
        rc = kw_session_encrypt(tab.id, name, dev, (const uint8_t *)pt, strlen(pt), &type, &body,
                                &err);
        if (rc != KW_OK)
            return fail_err(&err, rc);
        json_t *o = json_pack("{s:i, s:s}", "type", type, "body", body);
        free(body);
        return ok(o);
    }
    /* decrypt; type 0 = unknown (a sender-key envelope): PreKey first, then normal. */
    const char *body = sfield(req, "body");
    int type = (int)ifield(req, "type");
    uint8_t *pt = NULL;
    size_t len = 0;
    if (body == NULL)
        return fail(KW_ERR_INVALID_ARGUMENT, "body");
    if (type == 0) {
        rc = kw_session_decrypt(tab.id, name, dev, KW_MSG_PREKEY, body, &pt, &len, &err);
        if (rc == KW_ERR_INVALID_MESSAGE)
            rc = kw_session_decrypt(tab.id, name, dev, KW_MSG_NORMAL, body, &pt, &len, &err);
    } else
        rc = kw_session_decrypt(tab.id, name, dev, type, body, &pt, &len, &err);
    return rc == KW_OK ? plaintext_answer(pt, len) : fail_err(&err, rc);
}

static json_t *cmd_group(const char *cmd, json_t *req)
{
    kw_error err;
    kw_error_clear(&err);
    const char *group = sfield(req, "group"), *sender = sfield(req, "sender");
    json_int_t dev = json_integer_value(json_object_get(req, "device"));
    if (group == NULL || sender == NULL || dev < 1 || dev > 0x7fffffff)
        return fail(KW_ERR_INVALID_ARGUMENT, "group, sender, device");
    kw_err rc;
    if (strcmp(cmd, "group_process") == 0) {
        const char *dist = sfield(req, "dist");
        rc = dist != NULL
                 ? kw_group_process_distribution(tab.id, group, sender, (uint32_t)dev, dist, &err)
                 : KW_ERR_INVALID_ARGUMENT;
        return rc == KW_OK ? ok(NULL) : fail_err(&err, rc);
    }
    const char *ct = sfield(req, "ct");
    uint8_t *pt = NULL;
    size_t len = 0;
    rc = ct != NULL ? kw_group_decrypt(tab.id, group, sender, (uint32_t)dev, ct, &pt, &len, &err)
                    : KW_ERR_INVALID_ARGUMENT;
    return rc == KW_OK ? plaintext_answer(pt, len) : fail_err(&err, rc);
}

#ifdef KW_WEB_TEST
/* web_test_crypto.c: the known-answer tests' door to crypto.h (test builds only). */
json_t *kww_test_crypto(json_t *req);
#endif

static json_t *dispatch(json_t *req)
{
    const char *cmd = sfield(req, "cmd");
    if (cmd == NULL)
        return fail(KW_ERR_JSON, "cmd");
    if (strcmp(cmd, "init") == 0)
        return cmd_init(req);
#ifdef KW_WEB_TEST
    if (strcmp(cmd, "crypto") == 0)
        return kww_test_crypto(req);
#endif
    if (strncmp(cmd, "mka_", 4) == 0)
        return cmd_mka(cmd, req);
    if (tab.id == NULL)
        return fail(KW_ERR_STATE, "init first");
    if (strcmp(cmd, "snapshot") == 0) {
        json_t *records = json_object();
        kw_err rc = kw_store_list(tab.store, "", snap_each, records);
        if (rc != KW_OK) {
            json_decref(records);
            return fail(rc, "snapshot");
        }
        return ok(json_pack("{s:o}", "records", records));
    }
    if (strncmp(cmd, "keys_", 5) == 0 || strcmp(cmd, "identity") == 0)
        return cmd_keys(cmd, req);
    if (strncmp(cmd, "group_", 6) == 0)
        return cmd_group(cmd, req);
    if (strcmp(cmd, "set_self") == 0 || strcmp(cmd, "session_exists") == 0 ||
        strcmp(cmd, "process_bundle") == 0 || strcmp(cmd, "encrypt") == 0 ||
        strcmp(cmd, "decrypt") == 0)
        return cmd_session(cmd, req);
    return fail(KW_ERR_INVALID_ARGUMENT, "unknown command");
}

/*
 * Runs one request (a NUL-terminated JSON text, borrowed). Returns a malloc'd JSON answer
 * owned by the caller (free with kww_free), or NULL when out of memory.
 */
EMSCRIPTEN_KEEPALIVE char *kww_call(const char *request)
{
    json_error_t jerr;
    json_t *req = json_loads(request, 0, &jerr);
    json_t *ans = req != NULL ? dispatch(req) : fail(KW_ERR_JSON, jerr.text);
    json_decref(req);
    if (ans == NULL)
        ans = fail(KW_ERR_NOMEM, "answer");
    char *text = ans != NULL ? json_dumps(ans, JSON_COMPACT) : NULL;
    json_decref(ans);
    return text;
}

/* Wipes and frees an answer of kww_call. Accepts NULL. */
EMSCRIPTEN_KEEPALIVE void kww_free(char *answer)
{
    if (answer != NULL) {
        kw_wipe(answer, strlen(answer));
        free(answer);
    }
}
