/*
 * test_members.c — members end to end against the real keywaved: `keywaved user add` and
 * `user code` (the code alone on stdout, while the server runs), POST /api/auth/enroll
 * (201, one-time codes, strict bodies), every signed-request failure token of DESIGN.md
 * section 4 over HTTP, and the key directory: identity (409 on change), signed pre-key
 * (signature verified, INV-1), one-time pre-keys and their count, bundle fetches that
 * consume one pre-key each and stop at 3 per minute per device pair with 429 and
 * Retry-After (INV-2), a bundle with no pre-key left, private-key fields refused (INV-1),
 * and no secret in the log (INV-8).
 *
 * Requests are signed with lib/request_sign.c, the code the CLI uses. KEYWAVED names the
 * binary (tests/run.sh sets it); without it, ./build/keywaved.
 */
#include <jansson.h>

#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/identity.h"
#include "keywave/request_sign.h"
#include "keywave/store.h"
#include "kwserver.h"

static kws_server srv;

/* ---- the CLI ---------------------------------------------------------------------- */

/* Runs `keywaved <args>` on srv's data directory; stdout into out. Returns the status. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    return kws_admin(&srv, args, out, cap);
}

static int is_code_line(const char *s)
{
    size_t n = strlen(s);
    if (n != 21 || s[20] != '\n')
        return 0;
    for (size_t i = 0; i < 20; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
            return 0;
    return 1;
}

/* A fresh code for name via the CLI (verb "add" or "code"), without the newline. */
static int cli_code(const char *verb, const char *name, char code[32])
{
    const char *args[] = {"user", verb, name, NULL};
    char out[256];
    int st = run_cli(args, out, sizeof out);
    if (st != 0 || !is_code_line(out))
        return 0;
    memcpy(code, out, 20);
    code[20] = '\0';
    return 1;
}

/* ---- members and signed requests ------------------------------------------------------ */

typedef struct member {
    char user_id[130], device_id[16], client_id[130], secret[64];
} member;

static member alice1, alice2, bob1, bob2; /* alice's devices 1 and 2, bob's 1 and 2 */
static char codes_seen[8][32];            /* every enrollment code, for the log check */
static int n_codes;

/* Checks a body is exactly {"error": token, "detail": <non-empty string>}. */
static void check_error(const kws_reply *r, int status, const char *token)
{
    KWT_EQ(r->status, status);
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    if (!KWT_CHECK(j != NULL && json_is_object(j))) {
        printf("    body: %s\n", r->body ? r->body : "(none)");
        json_decref(j);
        return;
    }
    KWT_EQ(json_object_size(j), 2);
    KWT_STREQ(json_string_value(json_object_get(j, "error")), token);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    KWT_CHECK(detail != NULL && detail[0] != '\0');
    json_decref(j);
}

static int enroll(const char *code, const char *device_name, member *m)
{
    char body[256];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"device_name\":\"%s\"}", code, device_name);
    kws_reply r;
    int ok = 0;
    if (kws_request(srv.port, "POST", "/api/auth/enroll", NULL, body, strlen(body), &r) &&
        r.status == 201) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *u = NULL, *d = NULL, *c = NULL, *s = NULL;
        if (j != NULL && json_object_size(j) == 4 &&
            json_unpack(j, "{s:s, s:s, s:s, s:s}", "user_id", &u, "device_id", &d, "client_id", &c,
                        "session_secret", &s) == 0) {
            snprintf(m->user_id, sizeof m->user_id, "%s", u);
            snprintf(m->device_id, sizeof m->device_id, "%s", d);
            snprintf(m->client_id, sizeof m->client_id, "%s", c);
            snprintf(m->secret, sizeof m->secret, "%s", s);
            ok = 1;
        }
        json_decref(j);
    }
    kws_reply_free(&r);
    return ok;
}

/* Ways to spoil a signed request, one failure token each. */
typedef enum spoil {
    SPOIL_NONE,
    SPOIL_NO_SIGNATURE,   /* missing_auth_headers */
    SPOIL_SHORT_NONCE,    /* invalid_auth_headers */
    SPOIL_BAD_TIMESTAMP,  /* invalid_auth_headers */
    SPOIL_OLD,            /* request_expired */
    SPOIL_UNKNOWN_CLIENT, /* no_session */
    SPOIL_WRONG_SECRET,   /* invalid_signature */
    SPOIL_UPPER_CASE,     /* invalid_signature */
    SPOIL_OTHER_BODY,     /* invalid_signature */
} spoil;

/*
 * Sends a request signed as m (nonce: fresh unless given), spoiled as asked, and reads the
 * reply. Returns false if the exchange failed.
 */
static bool call(const member *m, const char *method, const char *target, const char *body,
                 const char *nonce, spoil how, kws_reply *r)
{
    char ts[32], fresh[KW_REQUEST_NONCE_NEW_CHARS + 1], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    int64_t now = kws_now_ms();
    snprintf(ts, sizeof ts, "%lld", (long long)(how == SPOIL_OLD ? now - 300001 - 2000 : now));
    if (nonce == NULL) {
        if (kw_request_nonce_new(kw_random_system(), fresh) != KW_OK)
            return false;
        nonce = fresh;
    }
    const char *cid =
        how == SPOIL_UNKNOWN_CLIENT ? "ffffffffffffffffffffffffffffffff" : m->client_id;
    const char *secret = how == SPOIL_WRONG_SECRET ? "not-the-session-secret" : m->secret;
    const char *signed_body = how == SPOIL_OTHER_BODY ? "{}" : (body ? body : "");
    if (kw_request_sign(secret, cid, ts, nonce, method, target, (const uint8_t *)signed_body,
                        strlen(signed_body), sig) != KW_OK)
        return false;
    if (how == SPOIL_UPPER_CASE)
        for (char *p = sig; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 32);
    char headers[1024];
    snprintf(headers, sizeof headers, "X-Client-ID: %s\r\nX-Timestamp: %s\r\nX-Nonce: %s\r\n%s%s%s",
             cid, how == SPOIL_BAD_TIMESTAMP ? "12e12" : ts,
             how == SPOIL_SHORT_NONCE ? "short" : nonce,
             how == SPOIL_NO_SIGNATURE ? "" : "X-Signature: ", how == SPOIL_NO_SIGNATURE ? "" : sig,
             how == SPOIL_NO_SIGNATURE ? "" : "\r\n");
    return kws_request(srv.port, method, target, headers, body, body ? strlen(body) : 0, r);
}

/* ---- keys ------------------------------------------------------------------------- */

typedef struct keyset {
    kw_store *store;
    kw_identity *id;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
} keyset;

static keyset keys_a1, keys_a2, keys_other;

static int keyset_open(keyset *k)
{
    memset(k, 0, sizeof *k);
    kw_identity_config cfg = {KW_ROLE_MEMBER, NULL, NULL, NULL, 0};
    if (kw_store_mem_new(&k->store) != KW_OK)
        return 0;
    cfg.store = k->store;
    return kw_identity_open(&cfg, &k->id, NULL) == KW_OK &&
           kw_keys_setup(k->id, kws_now_ms(), NULL, NULL, NULL, NULL) == KW_OK &&
           kw_keys_identity(k->id, &k->pub, NULL) == KW_OK &&
           kw_keys_signed_pre_key(k->id, &k->spk, NULL) == KW_OK;
}

static void keyset_close(keyset *k)
{
    kw_identity_free(k->id);
    kw_store_free(k->store);
}

static const char *b64(const uint8_t *data, size_t n, char *out, size_t cap)
{
    if (kw_base64_encode(data, n, out, cap) != KW_OK)
        out[0] = '\0';
    return out;
}

static void identity_body(const keyset *k, char *out, size_t cap)
{
    char key[64];
    snprintf(out, cap, "{\"identity_key\":\"%s\",\"registration_id\":%u}",
             b64(k->pub.identity_key, KW_PUBKEY_BYTES, key, sizeof key), k->pub.registration_id);
}

static void signed_prekey_body(const kw_signed_pre_key_pub *spk, char *out, size_t cap)
{
    char key[64], sig[128];
    snprintf(out, cap, "{\"id\":%u,\"public_key\":\"%s\",\"signature\":\"%s\"}", spk->id,
             b64(spk->public_key, KW_PUBKEY_BYTES, key, sizeof key),
             b64(spk->signature, KW_SIGNATURE_BYTES, sig, sizeof sig));
}

/* {"pre_keys":[...]} with n keys, ids first..first+n-1 (0x05 + filler bytes). */
static char *prekeys_body(uint32_t first, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        uint8_t key[KW_PUBKEY_BYTES];
        char text[64];
        memset(key, (int)(0x40 + i % 50), sizeof key);
        key[0] = 0x05;
        json_array_append_new(arr,
                              json_pack("{s:I, s:s}", "id", (json_int_t)(first + i), "public_key",
                                        b64(key, sizeof key, text, sizeof text)));
    }
    json_t *doc = json_pack("{s:o}", "pre_keys", arr);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static long long reply_count(const kws_reply *r)
{
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    long long v = -1;
    if (j != NULL && json_object_size(j) == 1 && json_is_integer(json_object_get(j, "count")))
        v = json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    return v;
}

static void expect_ok_true(const kws_reply *r)
{
    KWT_EQ(r->status, 200);
    KWT_STREQ(r->body, "{\"ok\":true}");
}

/* ---- tests ---------------------------------------------------------------------------- */

static void server_starts(void)
{
    KWT_CHECK(kws_start(&srv, "main", NULL));
}

static void cli_prints_the_code_alone_while_the_server_runs(void)
{
    char out[256];
    const char *add[] = {"user", "add", "alice", NULL};
    KWT_EQ(run_cli(add, out, sizeof out), 0);
    KWT_CHECK(is_code_line(out));
    memcpy(codes_seen[n_codes++], out, 20);
    KWT_EQ(run_cli(add, out, sizeof out), 1); /* alice exists */
    KWT_STREQ(out, "");
    const char *code_nobody[] = {"user", "code", "nobody", NULL};
    KWT_EQ(run_cli(code_nobody, out, sizeof out), 1);
    KWT_STREQ(out, "");
    const char *bad_name[] = {"user", "add", "no spaces", NULL};
    KWT_EQ(run_cli(bad_name, out, sizeof out), 1);
    static const char *const usage[][4] = {{"user", NULL},
                                           {"user", "add", NULL},
                                           {"user", "remove", "x", NULL},
                                           {"user", "add", "a", "b"}};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        const char *args[5] = {usage[i][0], usage[i][1], usage[i][2], usage[i][3], NULL};
        KWT_EQ(run_cli(args, out, sizeof out), 2);
        KWT_STREQ(out, "");
    }
}

static void enroll_gives_a_device_session_once(void)
{
    if (!KWT_CHECK(n_codes == 1))
        return;
    char *code = codes_seen[0];
    KWT_CHECK(enroll(code, "alice laptop", &alice1));
    KWT_STREQ(alice1.device_id, "1");
    KWT_CHECK(strncmp(alice1.user_id, "usr_", 4) == 0);
    KWT_EQ(strlen(alice1.client_id), 32);
    KWT_EQ(strlen(alice1.secret), 43);
    /* The same code again: used up. */
    char body[128];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"device_name\":\"again\"}", code);
    kws_reply r;
    if (KWT_CHECK(kws_request(srv.port, "POST", "/api/auth/enroll", NULL, body, strlen(body), &r)))
        check_error(&r, 401, "unauthorized");
    kws_reply_free(&r);
    /* Another code for alice is her device 2; bob starts at 1. */
    char c2[32], c3[32], c4[32];
    if (KWT_CHECK(cli_code("code", "alice", c2))) {
        memcpy(codes_seen[n_codes++], c2, 21);
        KWT_CHECK(enroll(c2, "alice phone", &alice2));
        KWT_STREQ(alice2.device_id, "2");
        KWT_STREQ(alice2.user_id, alice1.user_id);
    }
    if (KWT_CHECK(cli_code("add", "bob", c3)) && KWT_CHECK(cli_code("code", "bob", c4))) {
        memcpy(codes_seen[n_codes++], c3, 21);
        memcpy(codes_seen[n_codes++], c4, 21);
        KWT_CHECK(enroll(c4, "bob desk", &bob1)); /* codes are independent */
        KWT_CHECK(enroll(c3, "bob phone", &bob2));
        KWT_STREQ(bob1.device_id, "1");
        KWT_STREQ(bob2.device_id, "2");
        KWT_CHECK(strcmp(bob1.user_id, alice1.user_id) != 0);
    }
}

static void enroll_validates_its_body(void)
{
    char code[32];
    if (!KWT_CHECK(cli_code("code", "alice", code)))
        return;
    memcpy(codes_seen[n_codes++], code, 21);
    char upper[32];
    for (size_t i = 0; i <= 20; i++)
        upper[i] = (char)(code[i] >= 'a' && code[i] <= 'z' ? code[i] - 32 : code[i]);
    char b[12][256];
    snprintf(b[0], sizeof b[0], "{\"code\":\"%s\",\"device_name\":\"x\",\"extra\":1}", code);
    snprintf(b[1], sizeof b[1], "{\"code\":\"%s\",\"device_name\":\"x\"", code);
    snprintf(b[2], sizeof b[2], "{\"code\":\"%s\"}", code);
    snprintf(b[3], sizeof b[3], "{\"code\":\"%s\",\"device_name\":7}", code);
    snprintf(b[4], sizeof b[4], "{\"code\":\"%s\",\"device_name\":\"\"}", code);
    snprintf(b[5], sizeof b[5], "{\"code\":\"%s\",\"device_name\":\"x\"}", upper);
    snprintf(b[6], sizeof b[6], "{\"code\":\"%.19s\",\"device_name\":\"x\"}", code);
    snprintf(b[7], sizeof b[7], "[\"%s\",\"x\"]", code);
    snprintf(b[8], sizeof b[8], "{\"code\":\"%s\",\"device_name\":\"x\",\"privateKey\":\"AA==\"}",
             code);
    snprintf(b[9], sizeof b[9], "{\"code\":\"%s\",\"code\":\"%s\",\"device_name\":\"x\"}", code,
             code);
    snprintf(b[10], sizeof b[10], "{\"code\":\"%s\",\"device_name\":\"a\\u0000b\"}", code);
    snprintf(b[11], sizeof b[11], "{\"code\":\"%s\",\"device_name\":\"line\\nbreak\"}", code);
    static const struct {
        int status;
        const char *error;
    } want[12] = {
        {400, "unknown_field"}, {400, "invalid_json"},  {400, "invalid_field"},
        {400, "invalid_field"}, {400, "invalid_field"}, {400, "invalid_field"},
        {400, "invalid_field"}, {400, "invalid_json"},  {400, "invalid_field"},
        {400, "invalid_json"},  {400, "invalid_json"},  {400, "invalid_field"},
    };
    for (size_t i = 0; i < 12; i++) {
        kws_reply r;
        int before = kwt_checks_failed;
        if (KWT_CHECK(
                kws_request(srv.port, "POST", "/api/auth/enroll", NULL, b[i], strlen(b[i]), &r)))
            check_error(&r, want[i].status, want[i].error);
        if (kwt_checks_failed != before)
            printf("    body %zu: %s\n", i, b[i]);
        kws_reply_free(&r);
    }
    kws_reply r;
    if (KWT_CHECK(kws_request(srv.port, "POST", "/api/auth/enroll", NULL, NULL, 0, &r)))
        check_error(&r, 400, "invalid_json");
    kws_reply_free(&r);
    /* None of those used the code up (INV-11: a failure changes nothing). */
    member m;
    KWT_CHECK(enroll(code, "alice tablet", &m));
    KWT_STREQ(m.device_id, "3");
}

static void every_auth_failure_has_its_token(void)
{
    static const struct {
        spoil how;
        const char *error;
    } cases[] = {
        {SPOIL_NO_SIGNATURE, "missing_auth_headers"},  {SPOIL_SHORT_NONCE, "invalid_auth_headers"},
        {SPOIL_BAD_TIMESTAMP, "invalid_auth_headers"}, {SPOIL_OLD, "request_expired"},
        {SPOIL_UNKNOWN_CLIENT, "no_session"},          {SPOIL_WRONG_SECRET, "invalid_signature"},
        {SPOIL_UPPER_CASE, "invalid_signature"},       {SPOIL_OTHER_BODY, "invalid_signature"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kws_reply r;
        const char *body = cases[i].how == SPOIL_OTHER_BODY ? "{\"pre_keys\":[]}" : NULL;
        const char *method = body ? "POST" : "GET";
        const char *target = body ? "/api/keys/prekeys" : "/api/keys/count";
        if (KWT_CHECK(call(&alice1, method, target, body, NULL, cases[i].how, &r)))
            check_error(&r, 401, cases[i].error);
        kws_reply_free(&r);
    }
    /* No headers at all. */
    kws_reply r;
    if (KWT_CHECK(kws_request(srv.port, "GET", "/api/keys/count", NULL, NULL, 0, &r)))
        check_error(&r, 401, "missing_auth_headers");
    kws_reply_free(&r);
    /* A replayed request, and a forged one that does not burn the nonce. */
    const char *nonce = "replay-nonce-0000000001";
    if (KWT_CHECK(call(&alice1, "GET", "/api/keys/count", NULL, "forged-then-real-0001",
                       SPOIL_WRONG_SECRET, &r)))
        check_error(&r, 401, "invalid_signature");
    kws_reply_free(&r);
    if (KWT_CHECK(
            call(&alice1, "GET", "/api/keys/count", NULL, "forged-then-real-0001", SPOIL_NONE, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    if (KWT_CHECK(call(&alice1, "GET", "/api/keys/count", NULL, nonce, SPOIL_NONE, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    if (KWT_CHECK(call(&alice1, "GET", "/api/keys/count", NULL, nonce, SPOIL_NONE, &r)))
        check_error(&r, 401, "duplicate_request");
    kws_reply_free(&r);
    /* The signature covers the query. */
    if (KWT_CHECK(call(&alice1, "GET", "/api/keys/count?x=1", NULL, NULL, SPOIL_NONE, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
}

/*
 * session_expired needs a session unused for 90 days: the test moves the last use back
 * with the sqlite3 shell on the live database (WAL lets it write while the server runs).
 */
static void session_expires_after_90_days_unused(void)
{
    if (system("command -v sqlite3 >/dev/null 2>&1") != 0) {
        const char *ci = getenv("CI");
        printf("    sqlite3 shell not installed: session_expired over HTTP not checked%s\n",
               ci && strcmp(ci, "true") == 0 ? " (a failure under CI)" : "");
        KWT_CHECK(!(ci && strcmp(ci, "true") == 0));
        return;
    }
    char code[32];
    member m;
    if (!KWT_CHECK(cli_code("add", "carol", code)) || !KWT_CHECK(enroll(code, "old", &m)))
        return;
    memcpy(codes_seen[n_codes++], code, 21);
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd,
             "sqlite3 -cmd '.timeout 5000' '%s/keywave.db' \"UPDATE device_sessions SET "
             "last_used_ms = last_used_ms - 7776000000 WHERE client_id = '%s'\"",
             srv.data_dir, m.client_id);
    KWT_EQ(system(cmd), 0);
    kws_reply r;
    if (KWT_CHECK(call(&m, "GET", "/api/keys/count", NULL, NULL, SPOIL_NONE, &r)))
        check_error(&r, 401, "session_expired");
    kws_reply_free(&r);
    /* One day less than 90 is fine, and the use slides the window. */
    snprintf(cmd, sizeof cmd,
             "sqlite3 -cmd '.timeout 5000' '%s/keywave.db' \"UPDATE device_sessions SET "
             "last_used_ms = last_used_ms + 86400000 WHERE client_id = '%s'\"",
             srv.data_dir, m.client_id);
    KWT_EQ(system(cmd), 0);
    if (KWT_CHECK(call(&m, "GET", "/api/keys/count", NULL, NULL, SPOIL_NONE, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
}

static void identity_upload(void)
{
    char body[512], other[512];
    identity_body(&keys_a1, body, sizeof body);
    identity_body(&keys_other, other, sizeof other);
    kws_reply r;
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/identity", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r);
    kws_reply_free(&r);
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/identity", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r); /* the same identity again */
    kws_reply_free(&r);
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/identity", other, NULL, SPOIL_NONE, &r)))
        check_error(&r, 409, "conflict");
    kws_reply_free(&r);
    identity_body(&keys_a2, body, sizeof body);
    if (KWT_CHECK(call(&alice2, "PUT", "/api/keys/identity", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r);
    kws_reply_free(&r);
}

/* INV-1: only public keys, in their exact shape; private-key fields refused by name. */
static void inv_1_only_public_keys_are_accepted(void)
{
    char key[64], k32[64], k04[64];
    uint8_t raw[KW_PUBKEY_BYTES];
    memcpy(raw, keys_other.pub.identity_key, sizeof raw);
    b64(raw, sizeof raw, key, sizeof key);
    b64(raw, 32, k32, sizeof k32);
    raw[0] = 0x04;
    b64(raw, sizeof raw, k04, sizeof k04);
    char b[9][512];
    snprintf(b[0], sizeof b[0],
             "{\"identity_key\":\"%s\",\"registration_id\":1,"
             "\"identity_private_key\":\"%s\"}",
             key, key);
    snprintf(b[1], sizeof b[1],
             "{\"identity_key\":\"%s\",\"registration_id\":1,"
             "\"privKey\":\"%s\"}",
             key, key);
    snprintf(b[2], sizeof b[2],
             "{\"identity_key\":\"%s\",\"registration_id\":1,"
             "\"identityKeyPair\":{\"pub\":\"%s\"}}",
             key, key);
    snprintf(b[3], sizeof b[3], "{\"identity_key\":\"%s\",\"registration_id\":1}", k32);
    snprintf(b[4], sizeof b[4], "{\"identity_key\":\"%s\",\"registration_id\":1}", k04);
    snprintf(b[5], sizeof b[5], "{\"identity_key\":\"%.43s\",\"registration_id\":1}", key);
    snprintf(b[6], sizeof b[6], "{\"identity_key\":\"%s\",\"registration_id\":16384}", key);
    snprintf(b[7], sizeof b[7], "{\"identity_key\":\"%s\",\"registration_id\":\"1\"}", key);
    snprintf(b[8], sizeof b[8], "{\"identity_key\":\"%s\",\"registration_id\":1,\"x\":0}", key);
    static const struct {
        int status;
        const char *error;
    } want[9] = {
        {400, "invalid_field"}, {400, "invalid_field"}, {400, "invalid_field"},
        {400, "invalid_key"},   {400, "invalid_key"},   {400, "invalid_base64"},
        {400, "invalid_field"}, {400, "invalid_field"}, {400, "unknown_field"},
    };
    for (size_t i = 0; i < 9; i++) {
        kws_reply r;
        int before = kwt_checks_failed;
        /* bob2 has no identity yet: every refusal must leave it so. */
        if (KWT_CHECK(call(&bob2, "PUT", "/api/keys/identity", b[i], NULL, SPOIL_NONE, &r)))
            check_error(&r, want[i].status, want[i].error);
        if (kwt_checks_failed != before)
            printf("    body %zu: %s\n", i, b[i]);
        kws_reply_free(&r);
    }
    /* A private-key field inside a pre-key list is refused too. */
    char pk[256];
    snprintf(pk, sizeof pk,
             "{\"pre_keys\":[{\"id\":1,\"public_key\":\"%s\",\"private_key\":\"x\"}]}", key);
    kws_reply r;
    if (KWT_CHECK(call(&bob2, "POST", "/api/keys/prekeys", pk, NULL, SPOIL_NONE, &r)))
        check_error(&r, 400, "invalid_field");
    kws_reply_free(&r);
    /* Nothing was stored by any of them: a first real upload still succeeds. */
    char body[512];
    identity_body(&keys_other, body, sizeof body);
    if (KWT_CHECK(call(&bob2, "PUT", "/api/keys/identity", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r);
    kws_reply_free(&r);
}

static void signed_prekey_signature_is_verified(void)
{
    char body[512];
    kws_reply r;
    /* Signed by another identity: 400 invalid_signature (a body error, not auth's 401). */
    signed_prekey_body(&keys_other.spk, body, sizeof body);
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        check_error(&r, 400, "invalid_signature");
    kws_reply_free(&r);
    kw_signed_pre_key_pub bad = keys_a1.spk;
    bad.signature[0] ^= 1;
    signed_prekey_body(&bad, body, sizeof body);
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        check_error(&r, 400, "invalid_signature");
    kws_reply_free(&r);
    /* A signature of the wrong size. */
    char key[64];
    snprintf(body, sizeof body, "{\"id\":1,\"public_key\":\"%s\",\"signature\":\"AAAA\"}",
             b64(keys_a1.spk.public_key, KW_PUBKEY_BYTES, key, sizeof key));
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        check_error(&r, 400, "invalid_signature");
    kws_reply_free(&r);
    /* bob1 has no identity yet. */
    signed_prekey_body(&keys_a1.spk, body, sizeof body);
    if (KWT_CHECK(call(&bob1, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        check_error(&r, 409, "conflict");
    kws_reply_free(&r);
    if (KWT_CHECK(call(&alice1, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r);
    kws_reply_free(&r);
    signed_prekey_body(&keys_a2.spk, body, sizeof body);
    if (KWT_CHECK(call(&alice2, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r);
    kws_reply_free(&r);
}

static void prekeys_upload_and_count(void)
{
    kws_reply r;
    char *body = prekeys_body(100, 30);
    if (KWT_CHECK(call(&alice1, "POST", "/api/keys/prekeys", body, NULL, SPOIL_NONE, &r))) {
        KWT_EQ(r.status, 200);
        KWT_EQ(reply_count(&r), 30);
    }
    kws_reply_free(&r);
    free(body);
    /* An id already stored unused is 409, and nothing of that batch is kept. */
    body = prekeys_body(129, 5);
    if (KWT_CHECK(call(&alice1, "POST", "/api/keys/prekeys", body, NULL, SPOIL_NONE, &r)))
        check_error(&r, 409, "conflict");
    kws_reply_free(&r);
    free(body);
    static const struct {
        uint32_t first;
        size_t n;
    } bad_counts[] = {{500, 0}, {500, 101}};
    for (size_t i = 0; i < 2; i++) {
        body = prekeys_body(bad_counts[i].first, bad_counts[i].n);
        if (KWT_CHECK(call(&alice1, "POST", "/api/keys/prekeys", body, NULL, SPOIL_NONE, &r)))
            check_error(&r, 400, "invalid_field");
        kws_reply_free(&r);
        free(body);
    }
    body = prekeys_body(600, 100); /* exactly 100 is fine (on alice2) */
    if (KWT_CHECK(call(&alice2, "POST", "/api/keys/prekeys", body, NULL, SPOIL_NONE, &r)))
        KWT_EQ(reply_count(&r), 100);
    kws_reply_free(&r);
    free(body);
    char key[64];
    b64(keys_a1.pub.identity_key, KW_PUBKEY_BYTES, key, sizeof key);
    char b[5][512];
    snprintf(b[0], sizeof b[0],
             "{\"pre_keys\":[{\"id\":7,\"public_key\":\"%s\"},"
             "{\"id\":7,\"public_key\":\"%s\"}]}",
             key, key);
    snprintf(b[1], sizeof b[1], "{\"pre_keys\":[{\"id\":16777216,\"public_key\":\"%s\"}]}", key);
    snprintf(b[2], sizeof b[2], "{\"pre_keys\":[{\"id\":1,\"public_key\":\"%s\",\"x\":1}]}", key);
    snprintf(b[3], sizeof b[3], "{\"pre_keys\":{\"id\":1}}");
    snprintf(b[4], sizeof b[4], "{\"pre_keys\":[{\"id\":1.5,\"public_key\":\"%s\"}]}", key);
    static const char *const want[5] = {"invalid_field", "invalid_field", "unknown_field",
                                        "invalid_field", "invalid_field"};
    for (size_t i = 0; i < 5; i++) {
        if (KWT_CHECK(call(&alice1, "POST", "/api/keys/prekeys", b[i], NULL, SPOIL_NONE, &r)))
            check_error(&r, 400, want[i]);
        kws_reply_free(&r);
    }
    if (KWT_CHECK(call(&alice1, "GET", "/api/keys/count", NULL, NULL, SPOIL_NONE, &r))) {
        KWT_EQ(r.status, 200);
        KWT_EQ(reply_count(&r), 30);
    }
    kws_reply_free(&r);
}

/* Fetches alice1's bundle as m; returns the reply's status, the pre-key id in *otk. */
static int fetch(const member *m, const member *target, long long *otk, kws_reply *r)
{
    char path[300];
    snprintf(path, sizeof path, "/api/keys/%s/%s", target->user_id, target->device_id);
    *otk = -2;
    if (!call(m, "GET", path, NULL, NULL, SPOIL_NONE, r))
        return -1;
    if (r->status == 200) {
        /* What a client accepts: strict JSON, keys of the right shape, signature verified. */
        kw_bundle b;
        kw_error err;
        kw_err rc = kw_bundle_from_json(r->body, r->body_len, &b, &err);
        KWT_ERR(rc, KW_OK);
        if (rc == KW_OK) {
            *otk = b.has_one_time_pre_key ? (long long)b.one_time_pre_key_id : -1;
            KWT_STREQ(b.owner, target->user_id);
            KWT_CHECK(!b.owner_is_guest);
        }
    }
    return r->status;
}

/* INV-2: each fetch consumes one pre-key, lowest first; the 4th in a minute is 429. */
static void inv_2_bundle_fetches_consume_and_are_limited(void)
{
    kws_reply r;
    long long otk = 0;
    for (int i = 0; i < 3; i++) {
        KWT_EQ(fetch(&bob1, &alice1, &otk, &r), 200);
        KWT_EQ(otk, 100 + i);
        kws_reply_free(&r);
    }
    KWT_EQ(fetch(&bob1, &alice1, &otk, &r), 429);
    check_error(&r, 429, "rate_limited");
    char retry_after[32] = "";
    KWT_CHECK(kws_header(&r, "retry-after", retry_after, sizeof retry_after));
    long long retry = atoll(retry_after);
    KWT_CHECK(retry >= 1 && retry <= 60);
    kws_reply_free(&r);
    /* The refused fetch consumed nothing. */
    if (KWT_CHECK(call(&alice1, "GET", "/api/keys/count", NULL, NULL, SPOIL_NONE, &r)))
        KWT_EQ(reply_count(&r), 27);
    kws_reply_free(&r);
    /* The limit is per (fetcher device, target device). */
    KWT_EQ(fetch(&bob2, &alice1, &otk, &r), 200);
    KWT_EQ(otk, 103);
    kws_reply_free(&r);
    KWT_EQ(fetch(&bob1, &alice2, &otk, &r), 200);
    KWT_EQ(otk, 600);
    kws_reply_free(&r);
    KWT_EQ(fetch(&alice2, &alice1, &otk, &r), 200); /* another device of the same user */
    kws_reply_free(&r);
}

static void bundle_errors(void)
{
    kws_reply r;
    long long otk;
    member ghost = alice1;
    snprintf(ghost.device_id, sizeof ghost.device_id, "99");
    KWT_EQ(fetch(&bob2, &ghost, &otk, &r), 404);
    check_error(&r, 404, "not_found");
    kws_reply_free(&r);
    static const char *const bad_ids[] = {"0", "01", "-1", "x", "4294967296"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(ghost.device_id, sizeof ghost.device_id, "%s", bad_ids[i]);
        KWT_EQ(fetch(&bob2, &ghost, &otk, &r), 404);
        kws_reply_free(&r);
    }
    /* Repeated 404s are not rate limited: only served bundles count. */
    snprintf(ghost.device_id, sizeof ghost.device_id, "99");
    KWT_EQ(fetch(&bob2, &ghost, &otk, &r), 404);
    kws_reply_free(&r);
    /* A device has no use for its own bundle. */
    KWT_EQ(fetch(&alice1, &alice1, &otk, &r), 400);
    kws_reply_free(&r);
    /* bob1 has an identity? No: no keys published is 404 too. */
    KWT_EQ(fetch(&alice1, &bob1, &otk, &r), 404);
    kws_reply_free(&r);
    /* HEAD would consume a pre-key nobody sees. */
    char path[300];
    snprintf(path, sizeof path, "/api/keys/%s/%s", alice2.user_id, alice2.device_id);
    if (KWT_CHECK(call(&bob2, "HEAD", path, NULL, NULL, SPOIL_NONE, &r)))
        KWT_EQ(r.status, 405);
    kws_reply_free(&r);
}

/* INV-2: with no one-time pre-key left the bundle is still served, signed pre-key only. */
static void bundle_without_prekeys_is_still_served(void)
{
    char body[512];
    kws_reply r;
    signed_prekey_body(&keys_other.spk, body, sizeof body);
    if (KWT_CHECK(call(&bob2, "PUT", "/api/keys/signed-prekey", body, NULL, SPOIL_NONE, &r)))
        expect_ok_true(&r);
    kws_reply_free(&r);
    long long otk = 0;
    KWT_EQ(fetch(&alice1, &bob2, &otk, &r), 200);
    KWT_EQ(otk, -1);
    KWT_CHECK(strstr(r.body, "\"one_time_pre_key\":null") != NULL);
    kws_reply_free(&r);
}

/* INV-8: the log holds no session secret, enrollment code or signature. */
static void inv_8_no_secrets_in_the_log(void)
{
    char *log = kws_read_file(srv.log);
    if (!KWT_CHECK(log != NULL))
        return;
    KWT_CHECK(strstr(log, "event=device_enrolled") != NULL);
    KWT_CHECK(strstr(log, "path=/api/keys/identity status=200") != NULL);
    const member *all[] = {&alice1, &alice2, &bob1, &bob2};
    for (size_t i = 0; i < 4; i++)
        KWT_CHECK(all[i]->secret[0] != '\0' && strstr(log, all[i]->secret) == NULL);
    for (int i = 0; i < n_codes; i++)
        KWT_CHECK(strstr(log, codes_seen[i]) == NULL);
    KWT_CHECK(strstr(log, "X-Signature") == NULL && strstr(log, "x-signature") == NULL);
    free(log);
}

static void server_stops(void)
{
    KWT_EQ(kws_stop(&srv, SIGTERM), 0);
}

int main(void)
{
    if (!kws_init("test-members")) {
        kwt_cases_failed++;
        return kws_finish();
    }
    if (!keyset_open(&keys_a1) || !keyset_open(&keys_a2) || !keyset_open(&keys_other)) {
        printf("FAIL cannot make test keys\n");
        kwt_cases_failed++;
        return kws_finish();
    }
    KWT_RUN(server_starts);
    if (srv.pid > 0) {
        KWT_RUN(cli_prints_the_code_alone_while_the_server_runs);
        KWT_RUN(enroll_gives_a_device_session_once);
        KWT_RUN(enroll_validates_its_body);
        KWT_RUN(every_auth_failure_has_its_token);
        KWT_RUN(session_expires_after_90_days_unused);
        KWT_RUN(identity_upload);
        KWT_RUN(inv_1_only_public_keys_are_accepted);
        KWT_RUN(signed_prekey_signature_is_verified);
        KWT_RUN(prekeys_upload_and_count);
        KWT_RUN(inv_2_bundle_fetches_consume_and_are_limited);
        KWT_RUN(bundle_errors);
        KWT_RUN(bundle_without_prekeys_is_still_served);
        KWT_RUN(inv_8_no_secrets_in_the_log);
        KWT_RUN(server_stops);
    }
    keyset_close(&keys_a1);
    keyset_close(&keys_a2);
    keyset_close(&keys_other);
    return kws_finish();
}
