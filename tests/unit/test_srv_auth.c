/*
 * test_srv_auth.c — member request signing (DESIGN.md section 4): known-answer signatures
 * computed independently with `openssl dgst -sha256 -hmac`, the header checks with their
 * boundaries (nonce 15/16/128/129 characters, skew 299 999 / 300 000 / 300 001 ms both
 * ways), constant-time verification that refuses upper-case hex, and kw_auth_member
 * against a real store: every failure token 31..37 in order, the nonce stored only after
 * the signature verified, the 90-day session expiry, and the caller it fills.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "db.h"
#include "db_members.h"
#include "keywave/request_sign.h"
#include "kwtest.h"
#include "server.h"

#define NOW 1763800000000LL

/* ---- known answers ------------------------------------------------------------------ */

/*
 * Computed with OpenSSL's command line, not with this code, e.g.:
 *   B=$(printf '%s' "$BODY" | openssl dgst -sha256 -r | cut -d' ' -f1)
 *   printf '%s' "$CID:$TS:$NONCE:$METHOD:$TARGET:$B" | openssl dgst -sha256 -hmac "$SECRET"
 */
#define KAT_SECRET "kJ3pZ9x_Qw-2mN8vB5cR7tY1uI4oP6aS0dF3gH5jK7l"
#define KAT_CID    "0123456789abcdef0123456789abcdef"
#define KAT_TS     "1700000000000"
#define KAT_NONCE  "nonce-0123456789abcdef"

static const struct {
    const char *secret, *client_id, *timestamp, *nonce, *method, *target;
    const char *body;
    size_t body_len;
    const char *want;
} kats[] = {
    {KAT_SECRET, KAT_CID, KAT_TS, KAT_NONCE, "PUT", "/api/keys/identity",
     "{\"identity_key\":\"BQ==\",\"registration_id\":1}", 43,
     "e015ca54a130072a904d578ec182e3ec1644b27301c589807e15bcdb839cb144"},
    /* Empty body, and a query that belongs to the target. */
    {KAT_SECRET, KAT_CID, KAT_TS, KAT_NONCE, "GET", "/api/meetings?filter=my", NULL, 0,
     "73c25c3e5ce1e9fefd548e5c15c90cd1ac18411f2fec39703608a8c71ea6a3ad"},
    /* What Socket.IO CONNECT auth signs. */
    {KAT_SECRET, KAT_CID, KAT_TS, KAT_NONCE, "GET", "/socket.io/auth", "", 0,
     "c059eb8d42c09ca6b6c40d3bcc93e0501cf56ca099b3a05fa25c71a035d2fa90"},
    /* The path as sent, still percent-encoded. */
    {KAT_SECRET, KAT_CID, KAT_TS, KAT_NONCE, "GET", "/api/keys/al%20ice/1", NULL, 0,
     "796f8ce22fe29329bbc094ad3a52ae2294f0d6f6ec5b5e84dafde3e40d235d0a"},
    /* Raw body bytes, a NUL included. */
    {"s", "c", "1", "nonce-0123456789abcdef", "POST", "/x", "a\0b", 3,
     "31ec44c7777f05406fc50acad3950c94f3ba7da3bce9900cc226f209cf57828e"},
};

static void signatures_match_openssl(void)
{
    for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
        char sig[KW_REQUEST_SIGNATURE_CHARS + 1];
        KWT_ERR(kw_request_sign(kats[i].secret, kats[i].client_id, kats[i].timestamp, kats[i].nonce,
                                kats[i].method, kats[i].target, (const uint8_t *)kats[i].body,
                                kats[i].body_len, sig),
                KW_OK);
        KWT_STREQ(sig, kats[i].want);
    }
    KWT_EQ(kw_request_signature_chars(), 64);
}

static void sign_refuses_null_strings(void)
{
    char sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    KWT_ERR(kw_request_sign(NULL, "c", "1", "n", "GET", "/", NULL, 0, sig),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_request_sign("s", "c", "1", "n", "GET", NULL, NULL, 0, sig),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_request_sign("s", "c", "1", "n", "GET", "/", NULL, 5, sig), KW_ERR_INVALID_ARGUMENT);
    KWT_STREQ(sig, "");
}

/* ---- header checks ---------------------------------------------------------------- */

#define GOOD_SIG "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define N16      "abcdefghijklmnop"
#define N128                                                                                       \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"   \
    "abcdef0123456789abcdef0123456789abcdef"
#define C128 N128

static void header_checks_and_boundaries(void)
{
    char ts_now[32], ts[8][32];
    snprintf(ts_now, sizeof ts_now, "%lld", NOW);
    const long long offsets[8] = {299999, 300000, 300001, -299999, -300000, -300001, 0, 0};
    for (int i = 0; i < 8; i++)
        snprintf(ts[i], sizeof ts[i], "%lld", NOW + offsets[i]);
    static char n129[130], n15[16], c129[130];
    memset(n129, 'a', 129);
    memset(n15, 'a', 15);
    memset(c129, 'c', 129);
    const struct {
        const char *cid, *ts, *nonce, *sig;
        kw_err want;
    } cases[] = {
        {"cid", ts_now, N16, GOOD_SIG, KW_OK},
        {NULL, ts_now, N16, GOOD_SIG, KW_ERR_MISSING_AUTH_HEADERS},
        {"cid", NULL, N16, GOOD_SIG, KW_ERR_MISSING_AUTH_HEADERS},
        {"cid", ts_now, NULL, GOOD_SIG, KW_ERR_MISSING_AUTH_HEADERS},
        {"cid", ts_now, N16, NULL, KW_ERR_MISSING_AUTH_HEADERS},
        /* client id: 1..128 of [A-Za-z0-9_-] */
        {"", ts_now, N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {C128, ts_now, N16, GOOD_SIG, KW_OK},
        {c129, ts_now, N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"ci d", ts_now, N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid:x", ts_now, N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        /* timestamp: plain decimal */
        {"cid", "", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", "-1", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", "+1763800000000", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", "01763800000000", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", "1763800000000.0", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", " 1763800000000", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", "1763800000000000", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS}, /* 16 digits */
        {"cid", "99999999999999999999999", N16, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", "1763800000", N16, GOOD_SIG, KW_ERR_REQUEST_EXPIRED}, /* seconds, not ms */
        {"cid", "0", N16, GOOD_SIG, KW_ERR_REQUEST_EXPIRED},
        /* nonce: 16..128 of [A-Za-z0-9_-] */
        {"cid", ts_now, n15, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, N128, GOOD_SIG, KW_OK},
        {"cid", ts_now, n129, GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, "abcdefghijklmno=", GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, "abcdefghijklmno.", GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, "aB3_-aB3_-aB3_-x", GOOD_SIG, KW_OK},
        /* signature: 64 hex digits of either case (upper case fails verification later) */
        {"cid", ts_now, N16, "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
         KW_OK},
        {"cid", ts_now, N16, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
         KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, N16, GOOD_SIG "0", KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, N16, "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         KW_ERR_INVALID_AUTH_HEADERS},
        {"cid", ts_now, N16, "", KW_ERR_INVALID_AUTH_HEADERS},
        /* skew: 300 000 ms either way is accepted, one more is not */
        {"cid", ts[0], N16, GOOD_SIG, KW_OK},
        {"cid", ts[1], N16, GOOD_SIG, KW_OK},
        {"cid", ts[2], N16, GOOD_SIG, KW_ERR_REQUEST_EXPIRED},
        {"cid", ts[3], N16, GOOD_SIG, KW_OK},
        {"cid", ts[4], N16, GOOD_SIG, KW_OK},
        {"cid", ts[5], N16, GOOD_SIG, KW_ERR_REQUEST_EXPIRED},
        /* the format is checked before the skew */
        {"cid", "0", "short", GOOD_SIG, KW_ERR_INVALID_AUTH_HEADERS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_request_auth h = {cases[i].cid, cases[i].ts, cases[i].nonce, cases[i].sig};
        kw_error err;
        kw_error_clear(&err);
        int64_t got_ts = -1;
        kw_err rc = kw_request_auth_check(&h, NOW, &got_ts, &err);
        int before = kwt_checks_failed;
        KWT_ERR(rc, cases[i].want);
        if (rc != KW_OK)
            KWT_CHECK(err.detail[0] != '\0');
        else
            KWT_CHECK(got_ts > 0);
        if (kwt_checks_failed != before)
            printf("    case %zu\n", i);
    }
}

static void verify_is_exact_and_lower_case(void)
{
    char sig[KW_REQUEST_SIGNATURE_CHARS + 1], upper[KW_REQUEST_SIGNATURE_CHARS + 1];
    const uint8_t *body = (const uint8_t *)"{}";
    KWT_ERR(kw_request_sign("secret", "cid", KAT_TS, N16, "POST", "/api/x", body, 2, sig), KW_OK);
    kw_request_auth h = {"cid", KAT_TS, N16, sig};
    kw_error err;
    KWT_ERR(kw_request_verify("secret", &h, "POST", "/api/x", body, 2, &err), KW_OK);
    /* Anything else signed differently fails. */
    KWT_ERR(kw_request_verify("secreT", &h, "POST", "/api/x", body, 2, &err),
            KW_ERR_AUTH_SIGNATURE);
    KWT_ERR(kw_request_verify("secret", &h, "PUT", "/api/x", body, 2, &err), KW_ERR_AUTH_SIGNATURE);
    KWT_ERR(kw_request_verify("secret", &h, "POST", "/api/x?", body, 2, &err),
            KW_ERR_AUTH_SIGNATURE);
    KWT_ERR(kw_request_verify("secret", &h, "POST", "/api/x", body, 1, &err),
            KW_ERR_AUTH_SIGNATURE);
    kw_request_auth other_nonce = {"cid", KAT_TS, N16 "x", sig};
    KWT_ERR(kw_request_verify("secret", &other_nonce, "POST", "/api/x", body, 2, &err),
            KW_ERR_AUTH_SIGNATURE);
    /* The same digits in upper case are invalid_signature. */
    for (size_t i = 0; i <= KW_REQUEST_SIGNATURE_CHARS; i++)
        upper[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ? sig[i] - 32 : sig[i]);
    KWT_CHECK(strcmp(upper, sig) != 0);
    kw_request_auth up = {"cid", KAT_TS, N16, upper};
    KWT_ERR(kw_request_verify("secret", &up, "POST", "/api/x", body, 2, &err),
            KW_ERR_AUTH_SIGNATURE);
    KWT_STREQ(kw_err_name(KW_ERR_AUTH_SIGNATURE), "invalid_signature");
    /* One flipped digit. */
    sig[63] = sig[63] == '0' ? '1' : '0';
    KWT_ERR(kw_request_verify("secret", &h, "POST", "/api/x", body, 2, &err),
            KW_ERR_AUTH_SIGNATURE);
}

static void nonces_made_are_valid(void)
{
    char a[KW_REQUEST_NONCE_NEW_CHARS + 1], b[KW_REQUEST_NONCE_NEW_CHARS + 1];
    KWT_ERR(kw_request_nonce_new(kw_random_system(), a), KW_OK);
    KWT_ERR(kw_request_nonce_new(kw_random_system(), b), KW_OK);
    KWT_EQ(strlen(a), KW_REQUEST_NONCE_NEW_CHARS);
    KWT_CHECK(strcmp(a, b) != 0);
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", NOW);
    kw_request_auth h = {"cid", ts, a, GOOD_SIG};
    KWT_ERR(kw_request_auth_check(&h, NOW, NULL, NULL), KW_OK);
}

/* ---- against the store -------------------------------------------------------------- */

static char dir[256];
static kw_db *db;
static kw_db_enrollment dev; /* alice's device 1 */

/* Signs a request of dev at ts with nonce into h (sig is the caller's buffer). */
static void sign_as(const char *secret, const char *cid, const char *ts, const char *nonce,
                    const char *method, const char *target, const char *body,
                    char sig[KW_REQUEST_SIGNATURE_CHARS + 1], kw_request_auth *h)
{
    if (kw_request_sign(secret, cid, ts, nonce, method, target, (const uint8_t *)body,
                        body ? strlen(body) : 0, sig) != KW_OK)
        sig[0] = '\0';
    h->client_id = cid;
    h->timestamp = ts;
    h->nonce = nonce;
    h->signature = sig;
}

static kw_err check(const kw_request_auth *h, const char *method, const char *target,
                    const char *body, int64_t now, kw_caller *caller)
{
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kw_auth_member_check(db, h, method, target, (const uint8_t *)body,
                                     body ? strlen(body) : 0, now, caller, &err);
    /* INV-8: no failure detail carries the secret. */
    if (strstr(err.detail, dev.session_secret) != NULL)
        KWT_CHECK(!"secret in detail");
    return rc;
}

static void member_failures_in_order(void)
{
    char ts[32], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    snprintf(ts, sizeof ts, "%lld", NOW);
    kw_request_auth h;
    kw_caller c;
    const char *body = "{\"a\":1}";

    /* 31, 32, 33 come before any lookup. */
    kw_request_auth missing = {dev.client_id, ts, "nonce-missing-0001", NULL};
    KWT_ERR(check(&missing, "POST", "/p", body, NOW, &c), KW_ERR_MISSING_AUTH_HEADERS);
    kw_request_auth bad = {dev.client_id, ts, "short", GOOD_SIG};
    KWT_ERR(check(&bad, "POST", "/p", body, NOW, &c), KW_ERR_INVALID_AUTH_HEADERS);
    sign_as(dev.session_secret, dev.client_id, ts, "nonce-expired-0001", "POST", "/p", body, sig,
            &h);
    KWT_ERR(check(&h, "POST", "/p", body, NOW + 300001, &c), KW_ERR_REQUEST_EXPIRED);
    KWT_ERR(check(&h, "POST", "/p", body, NOW - 300001, &c), KW_ERR_REQUEST_EXPIRED);

    /* 34: an unknown client id, even with a well-formed signature. */
    sign_as(dev.session_secret, "ffffffffffffffffffffffffffffffff", ts, "nonce-unknown-0001",
            "POST", "/p", body, sig, &h);
    KWT_ERR(check(&h, "POST", "/p", body, NOW, &c), KW_ERR_UNKNOWN_CLIENT);
    KWT_STREQ(kw_err_name(KW_ERR_UNKNOWN_CLIENT), "no_session");

    /* 36: a wrong signature does not store the nonce ... */
    sign_as("not-the-secret", dev.client_id, ts, "nonce-forged-00001", "POST", "/p", body, sig, &h);
    KWT_ERR(check(&h, "POST", "/p", body, NOW, &c), KW_ERR_AUTH_SIGNATURE);
    KWT_EQ(c.kind, KW_CALLER_ANON);
    /* ... so the real client can still use it. */
    sign_as(dev.session_secret, dev.client_id, ts, "nonce-forged-00001", "POST", "/p", body, sig,
            &h);
    KWT_ERR(check(&h, "POST", "/p", body, NOW, &c), KW_OK);
    KWT_EQ(c.kind, KW_CALLER_MEMBER);
    KWT_STREQ(c.user_id, dev.user_id);
    KWT_STREQ(c.device_id, "1");
    /* 37: the same request again. */
    KWT_ERR(check(&h, "POST", "/p", body, NOW + 1, &c), KW_ERR_DUPLICATE_REQUEST);
    KWT_EQ(c.kind, KW_CALLER_ANON);
    /* The body is part of what is signed. */
    sign_as(dev.session_secret, dev.client_id, ts, "nonce-body-000001", "POST", "/p", body, sig,
            &h);
    KWT_ERR(check(&h, "POST", "/p", "{\"a\":2}", NOW, &c), KW_ERR_AUTH_SIGNATURE);
    KWT_ERR(check(&h, "POST", "/p", body, NOW, &c), KW_OK);

    /* 35: 90 days without use. The last use above was at NOW. */
    char late[32];
    snprintf(late, sizeof late, "%lld", NOW + KW_SESSION_IDLE_MS);
    sign_as(dev.session_secret, dev.client_id, late, "nonce-late-000001", "GET", "/p", NULL, sig,
            &h);
    KWT_ERR(check(&h, "GET", "/p", NULL, NOW + KW_SESSION_IDLE_MS, &c), KW_ERR_SESSION_EXPIRED);
    snprintf(late, sizeof late, "%lld", NOW + KW_SESSION_IDLE_MS - 1);
    sign_as(dev.session_secret, dev.client_id, late, "nonce-late-000002", "GET", "/p", NULL, sig,
            &h);
    KWT_ERR(check(&h, "GET", "/p", NULL, NOW + KW_SESSION_IDLE_MS - 1, &c), KW_OK);
}

static void skew_boundary_against_the_store(void)
{
    static const struct {
        long long offset;
        kw_err want;
    } cases[] = {{299999, KW_OK},  {300000, KW_OK},  {300001, KW_ERR_REQUEST_EXPIRED},
                 {-299999, KW_OK}, {-300000, KW_OK}, {-300001, KW_ERR_REQUEST_EXPIRED}};
    int64_t now = NOW + KW_SESSION_IDLE_MS; /* the session was last used just before */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ts[32], nonce[32], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
        snprintf(ts, sizeof ts, "%lld", (long long)now + cases[i].offset);
        snprintf(nonce, sizeof nonce, "nonce-skew-%06zu", i);
        kw_request_auth h;
        kw_caller c;
        sign_as(dev.session_secret, dev.client_id, ts, nonce, "GET", "/api/keys/count", NULL, sig,
                &h);
        KWT_ERR(check(&h, "GET", "/api/keys/count", NULL, now, &c), cases[i].want);
    }
}

static void socket_io_auth_uses_the_same_check(void)
{
    char ts[32], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    int64_t now = NOW + KW_SESSION_IDLE_MS + 1000;
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    kw_request_auth h;
    kw_caller c;
    sign_as(dev.session_secret, dev.client_id, ts, "nonce-socket-00001", "GET", "/socket.io/auth",
            "", sig, &h);
    KWT_ERR(check(&h, "GET", "/socket.io/auth", "", now, &c), KW_OK);
    /* The nonce store is shared: the same nonce over HTTP is a replay. */
    sign_as(dev.session_secret, dev.client_id, ts, "nonce-socket-00001", "GET", "/api/keys/count",
            NULL, sig, &h);
    KWT_ERR(check(&h, "GET", "/api/keys/count", NULL, now, &c), KW_ERR_DUPLICATE_REQUEST);
}

static void auth_member_fills_the_request(void)
{
    kw_server srv;
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    int64_t now = NOW + KW_SESSION_IDLE_MS + 2000;
    char ts[32], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    const char *body = "{\"pre_keys\":[]}";
    kw_request_auth h;
    sign_as(dev.session_secret, dev.client_id, ts, "nonce-request-0001", "POST",
            "/api/keys/prekeys", body, sig, &h);
    kw_request req;
    memset(&req, 0, sizeof req);
    req.method = KW_POST;
    req.method_name = "POST";
    req.path = "/api/keys/prekeys";
    req.query = "";
    req.target = "/api/keys/prekeys";
    req.body = (const uint8_t *)body;
    req.body_len = strlen(body);
    req.client_id = h.client_id;
    req.timestamp = h.timestamp;
    req.nonce = h.nonce;
    req.signature = h.signature;
    req.now_ms = now;
    kw_error err;
    KWT_ERR(kw_auth_member(&srv, &req, &err), KW_OK);
    KWT_EQ(req.caller.kind, KW_CALLER_MEMBER);
    KWT_STREQ(req.caller.user_id, dev.user_id);
    KWT_STREQ(req.caller.device_id, "1");
    memset(&req.caller, 0, sizeof req.caller);
    KWT_ERR(kw_auth_member(&srv, &req, &err), KW_ERR_DUPLICATE_REQUEST);
    KWT_EQ(req.caller.kind, KW_CALLER_ANON);
    srv.db = NULL;
    KWT_ERR(kw_auth_member(&srv, &req, &err), KW_ERR_INTERNAL);
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char sub[600];
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

int main(void)
{
    KWT_RUN(signatures_match_openssl);
    KWT_RUN(sign_refuses_null_strings);
    KWT_RUN(header_checks_and_boundaries);
    KWT_RUN(verify_is_exact_and_lower_case);
    KWT_RUN(nonces_made_are_valid);

    snprintf(dir, sizeof dir, "/tmp/keywave-test-auth-XXXXXX");
    kw_error err;
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    if (mkdtemp(dir) == NULL || kw_db_open_sqlite(dir, &db, &err) != KW_OK ||
        db->members->user_add(db->ctx, "alice", NOW, user_id, code, &err) != KW_OK ||
        db->members->enroll(db->ctx, code, "laptop", NOW, &dev, &err) != KW_OK) {
        printf("FAIL store setup: %s\n", err.detail);
        kwt_cases_failed++;
    } else {
        KWT_RUN(member_failures_in_order);
        KWT_RUN(skew_boundary_against_the_store);
        KWT_RUN(socket_io_auth_uses_the_same_check);
        KWT_RUN(auth_member_fills_the_request);
    }
    kw_db_close(db);
    remove_dir(dir);
    return kwt_finish();
}
