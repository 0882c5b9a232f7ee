/*
 * test_srv_tokens.c — the media tokens of server/tokens.c (DESIGN.md section 7, "LiveKit
 * JWT" and "Jitsi JWT"; seed 004).
 *
 * Every token is taken apart again here without libjwt: split at the dots, base64url
 * decoded, parsed with jansson, and its HS256 signature recomputed with libkeywave's HMAC.
 * The whole header and payload are compared with json_equal, so a missing, extra or
 * mistyped claim fails. Also: exp/nbf arithmetic and the guest's session cap (INV-4),
 * roomAdmin only when asked, the Jitsi room-name and host tables, the 31/32 secret
 * boundary, and that every failure leaves the outputs empty.
 *
 * Tool mode, for tests/interop/tokens.test.mjs (KW_TOKEN_TOOL=1 in the environment): the
 * binary runs no tests; it reads one JSON request per line on stdin and answers one JSON
 * object per line on stdout, signing with the real tokens.c, so the node test can hand the
 * tokens to livekit-server-sdk and jsonwebtoken. Requests (unknown fields are refused):
 *
 *   {"cmd":"livekit_channel","api_key","api_secret","now_ms","user_id","user_name"?,
 *    "channel_id","owner"}                 -> {"ok":true,"token","room","identity"}
 *   {"cmd":"livekit_meeting", ... "user_id","device_id","user_name"?,"meeting_id","owner"}
 *   {"cmd":"livekit_guest", ... "session_id","display_name"?,"meeting_id",
 *    "session_expires_ms"}
 *   {"cmd":"jitsi","app_id","app_secret","server_url","expiration_s","now_ms","meeting_id",
 *    "user_id","name"?,"email"?,"moderator","audio","video"} -> {"ok":true,"token",
 *    "room_name","url"}
 *   {"cmd":"quit"}                         -> {"ok":true} and exit 0
 *
 * A failure answers {"ok":false,"error":<kw_err_name>,"detail"}.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h" /* kw_hmac_sha256, the independent signature check */
#include "keywave/base64.h"
#include "kwtest.h"
#include "tokens.h"

#define NOW_MS  INT64_C(1700000000123) /* 2023-11-14T22:13:20.123Z */
#define NOW_S   INT64_C(1700000000)
#define LK_KEY  "APIkeywave"
#define LK_SEC  "livekit-secret-0123456789abcdefghijklmnop"
#define JT_ID   "keywave-app"
#define JT_SEC  "jitsi-secret-0123456789abcdefghijklmnop" /* 39 chars */
#define JT_URL  "https://Meet.Example.com:8443/"
#define JT_HOST "meet.example.com"

/* ---- taking a JWT apart ------------------------------------------------------------------ */

/* base64url without padding (RFC 7515 section 2) -> bytes, through the strict decoder. */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if (n % 4 == 1 || n > 8192)
        return 0;
    char std[8200];
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' || c == '/' || c == '=')
            return 0;
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        std[i] = c;
    }
    size_t m = n;
    while (m % 4 != 0)
        std[m++] = '=';
    return kw_base64_decode(std, m, out, cap, out_len) == KW_OK;
}

static json_t *decode_part(const char *s, size_t n)
{
    uint8_t raw[6200];
    size_t len;
    if (!b64url_decode(s, n, raw, sizeof raw, &len))
        return NULL;
    return json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
}

/*
 * Splits jwt into header and payload objects (new references) and checks its HS256
 * signature with secret. Returns 1 when the token is well formed and the signature matches.
 */
static int jwt_open(const char *jwt, const char *secret, json_t **header, json_t **payload)
{
    *header = *payload = NULL;
    if (jwt == NULL)
        return 0;
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || strchr(d2 + 1, '.') != NULL)
        return 0;
    *header = decode_part(jwt, (size_t)(d1 - jwt));
    *payload = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    uint8_t sig[64], mac[KW_SHA256_BYTES];
    size_t sig_len = 0;
    if (*header == NULL || *payload == NULL ||
        !b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig, &sig_len))
        return 0;
    if (kw_hmac_sha256((const uint8_t *)secret, strlen(secret), (const uint8_t *)jwt,
                       (size_t)(d2 - jwt), mac) != KW_OK)
        return 0;
    return sig_len == sizeof mac && memcmp(sig, mac, sizeof mac) == 0;
}

/* Checks got equals the JSON text want exactly (same keys, types and values). */
static void check_json(const json_t *got, const char *want_text, const char *what)
{
    json_error_t je;
    json_t *want = json_loads(want_text, JSON_REJECT_DUPLICATES, &je);
    if (!KWT_CHECK(want != NULL)) {
        printf("    bad expected JSON for %s: %s\n", what, je.text);
        return;
    }
    if (!KWT_CHECK(got != NULL && json_equal(got, want))) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
        printf("    %s\n      got  %s\n      want %s\n", what, g ? g : "(null)", w ? w : "");
        free(g);
        free(w);
    }
    json_decref(want);
}

/* Removes the string claim `metadata` from payload and checks it parses to want_text. */
static void check_metadata(json_t *payload, const char *want_text)
{
    json_t *m = json_object_get(payload, "metadata");
    if (!KWT_CHECK(json_is_string(m)))
        return;
    json_t *parsed = json_loads(json_string_value(m), JSON_REJECT_DUPLICATES, NULL);
    check_json(parsed, want_text, "metadata");
    json_decref(parsed);
    json_object_del(payload, "metadata");
}

static const char *const want_header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* ---- LiveKit ------------------------------------------------------------------------------ */

static void test_livekit_channel_member_claims(void)
{
    kw_livekit_token t;
    kw_error err;
    KWT_ERR(kw_token_livekit_channel(LK_KEY, LK_SEC, "u_alice", "Alice", "ch42", false, NOW_MS, &t,
                                     &err),
            KW_OK);
    KWT_STREQ(t.identity, "u_alice");
    KWT_STREQ(t.room, "channel-ch42");
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, LK_SEC, &h, &p));
    check_json(h, want_header, "header");
    check_metadata(p, "{\"user_id\":\"u_alice\",\"channel_id\":\"ch42\"}");
    check_json(p,
               "{\"iss\":\"APIkeywave\",\"sub\":\"u_alice\",\"nbf\":1700000000,"
               "\"exp\":1700021600,\"name\":\"Alice\",\"video\":{\"room\":\"channel-ch42\","
               "\"roomJoin\":true,\"canPublish\":true,\"canSubscribe\":true,"
               "\"canPublishData\":true}}",
               "payload");
    json_decref(h);
    json_decref(p);
    kw_livekit_token_free(&t);
    KWT_CHECK(t.jwt == NULL && t.room == NULL && t.identity == NULL);
}

/* roomAdmin appears exactly for the owner, as true; it is absent (not false) otherwise. */
static void test_livekit_room_admin_only_when_asked(void)
{
    for (int owner = 0; owner <= 1; owner++) {
        kw_livekit_token c, m;
        KWT_ERR(kw_token_livekit_channel(LK_KEY, LK_SEC, "u1", "U", "c1", owner, NOW_MS, &c, NULL),
                KW_OK);
        KWT_ERR(kw_token_livekit_meeting(LK_KEY, LK_SEC, "u1", "2", "U", "mtg_a", owner, NOW_MS, &m,
                                         NULL),
                KW_OK);
        const char *jwts[2] = {c.jwt, m.jwt};
        for (int i = 0; i < 2; i++) {
            json_t *h, *p;
            KWT_CHECK(jwt_open(jwts[i], LK_SEC, &h, &p));
            json_t *admin = json_object_get(json_object_get(p, "video"), "roomAdmin");
            if (owner)
                KWT_CHECK(json_is_true(admin));
            else
                KWT_CHECK(admin == NULL);
            json_decref(h);
            json_decref(p);
        }
        kw_livekit_token_free(&c);
        kw_livekit_token_free(&m);
    }
}

static void test_livekit_meeting_member_claims(void)
{
    kw_livekit_token t;
    KWT_ERR(kw_token_livekit_meeting(LK_KEY, LK_SEC, "u_bob", "3", "Bob \xc3\x9f",
                                     "mtg_0a1b2c3d4e5f", true, NOW_MS, &t, NULL),
            KW_OK);
    KWT_STREQ(t.identity, "u_bob:3");
    KWT_STREQ(t.room, "mtg_0a1b2c3d4e5f");
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, LK_SEC, &h, &p));
    check_json(h, want_header, "header");
    check_metadata(p, "{\"user_id\":\"u_bob\",\"device_id\":\"3\",\"meeting_id\":"
                      "\"mtg_0a1b2c3d4e5f\",\"is_guest\":false}");
    check_json(p,
               "{\"iss\":\"APIkeywave\",\"sub\":\"u_bob:3\",\"nbf\":1700000000,"
               "\"exp\":1700021600,\"name\":\"Bob \\u00df\",\"video\":{\"room\":"
               "\"mtg_0a1b2c3d4e5f\",\"roomJoin\":true,\"canPublish\":true,"
               "\"canSubscribe\":true,\"canPublishData\":true,\"roomAdmin\":true}}",
               "payload");
    json_decref(h);
    json_decref(p);
    kw_livekit_token_free(&t);
}

/* INV-4: guest_<session_id>, canPublishData false, never roomAdmin, 6 h when the session
 * lasts longer. */
static void test_inv_4_guest_token_claims(void)
{
    kw_livekit_token t;
    int64_t session_end = NOW_MS + INT64_C(24) * 3600 * 1000;
    KWT_ERR(kw_token_livekit_guest(LK_KEY, LK_SEC, "0123456789abcdef0123456789abcdef", "Guest G",
                                   "call_00aa11bb22cc", session_end, NOW_MS, &t, NULL),
            KW_OK);
    KWT_STREQ(t.identity, "guest_0123456789abcdef0123456789abcdef");
    KWT_STREQ(t.room, "call_00aa11bb22cc");
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, LK_SEC, &h, &p));
    check_json(h, want_header, "header");
    check_metadata(p, "{\"session_id\":\"0123456789abcdef0123456789abcdef\",\"meeting_id\":"
                      "\"call_00aa11bb22cc\",\"is_guest\":true}");
    check_json(p,
               "{\"iss\":\"APIkeywave\",\"sub\":\"guest_0123456789abcdef0123456789abcdef\","
               "\"nbf\":1700000000,\"exp\":1700021600,\"name\":\"Guest G\",\"video\":{"
               "\"room\":\"call_00aa11bb22cc\",\"roomJoin\":true,\"canPublish\":true,"
               "\"canSubscribe\":true,\"canPublishData\":false}}",
               "payload");
    json_decref(h);
    json_decref(p);
    kw_livekit_token_free(&t);
}

/* INV-4: a guest's token never outlives its session; exp is the session end rounded down,
 * and a session ending within the current second gets no token. */
static void test_inv_4_guest_exp_capped_by_session(void)
{
    static const struct {
        int64_t session_end_ms;
        kw_err want;
        int64_t want_exp;
    } cases[] = {
        {(NOW_S + 3600) * 1000 + 999, KW_OK, NOW_S + 3600}, /* rounded down */
        {(NOW_S + 21600) * 1000, KW_OK, NOW_S + 21600},     /* exactly 6 h */
        {(NOW_S + 21601) * 1000, KW_OK, NOW_S + 21600},     /* 6 h wins */
        {NOW_S * 1000 + 2000, KW_OK, NOW_S + 2},
        {NOW_S * 1000 + 1000, KW_OK, NOW_S + 1}, /* one whole second left */
        {NOW_S * 1000 + 999, KW_ERR_SESSION_EXPIRED, 0},
        {NOW_MS, KW_ERR_SESSION_EXPIRED, 0},
        {NOW_MS - 1, KW_ERR_SESSION_EXPIRED, 0},
        {1, KW_ERR_SESSION_EXPIRED, 0},
        {0, KW_ERR_INVALID_ARGUMENT, 0},
        {-5, KW_ERR_INVALID_ARGUMENT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_livekit_token t;
        kw_error err;
        kw_err rc = kw_token_livekit_guest(LK_KEY, LK_SEC, "s1", "G", "mtg_x",
                                           cases[i].session_end_ms, NOW_MS, &t, &err);
        KWT_ERR(rc, cases[i].want);
        if (rc != KW_OK) {
            KWT_CHECK(t.jwt == NULL && t.room == NULL && t.identity == NULL);
            KWT_EQ(err.code, cases[i].want);
            continue;
        }
        json_t *h, *p;
        KWT_CHECK(jwt_open(t.jwt, LK_SEC, &h, &p));
        KWT_EQ(json_integer_value(json_object_get(p, "nbf")), NOW_S);
        KWT_EQ(json_integer_value(json_object_get(p, "exp")), cases[i].want_exp);
        json_decref(h);
        json_decref(p);
        kw_livekit_token_free(&t);
    }
}

/* exp - nbf is the lifetime; nbf is now rounded down; 0 means 6 h. */
static void test_livekit_exp_nbf_arithmetic(void)
{
    static const struct {
        int64_t now_ms, ttl_s;
        kw_err want;
        int64_t nbf, exp;
    } cases[] = {
        {NOW_MS, 0, KW_OK, NOW_S, NOW_S + KW_LIVEKIT_TTL_S},
        {NOW_MS, 1, KW_OK, NOW_S, NOW_S + 1},
        {NOW_MS, 3600, KW_OK, NOW_S, NOW_S + 3600},
        {NOW_MS, KW_TOKEN_TTL_MAX_S, KW_OK, NOW_S, NOW_S + KW_TOKEN_TTL_MAX_S},
        {NOW_S * 1000 + 999, 60, KW_OK, NOW_S, NOW_S + 60},
        {NOW_S * 1000, 60, KW_OK, NOW_S, NOW_S + 60},
        {0, 60, KW_OK, 0, 60},
        {NOW_MS, KW_TOKEN_TTL_MAX_S + 1, KW_ERR_INVALID_ARGUMENT, 0, 0},
        {NOW_MS, -1, KW_ERR_INVALID_ARGUMENT, 0, 0},
        {-1, 60, KW_ERR_INVALID_ARGUMENT, 0, 0},
        {INT64_MAX, 60, KW_ERR_INVALID_ARGUMENT, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_livekit_grant g = {.identity = "id", .room = "r", .ttl_s = cases[i].ttl_s};
        char *jwt = (char *)"sentinel";
        KWT_ERR(kw_token_livekit(&g, LK_KEY, LK_SEC, cases[i].now_ms, &jwt, NULL), cases[i].want);
        if (cases[i].want != KW_OK) {
            KWT_CHECK(jwt == NULL);
            continue;
        }
        json_t *h, *p;
        KWT_CHECK(jwt_open(jwt, LK_SEC, &h, &p));
        KWT_EQ(json_integer_value(json_object_get(p, "nbf")), cases[i].nbf);
        KWT_EQ(json_integer_value(json_object_get(p, "exp")), cases[i].exp);
        json_decref(h);
        json_decref(p);
        free(jwt);
    }
}

/* The low-level grant: optional claims are left out, not null; grants as given. */
static void test_livekit_grant_optional_claims(void)
{
    kw_livekit_grant g = {.identity = "bot", .room = "r1", .can_subscribe = true};
    char *jwt;
    KWT_ERR(kw_token_livekit(&g, LK_KEY, LK_SEC, NOW_MS, &jwt, NULL), KW_OK);
    json_t *h, *p;
    KWT_CHECK(jwt_open(jwt, LK_SEC, &h, &p));
    check_json(p,
               "{\"iss\":\"APIkeywave\",\"sub\":\"bot\",\"nbf\":1700000000,\"exp\":1700021600,"
               "\"video\":{\"room\":\"r1\",\"roomJoin\":true,\"canPublish\":false,"
               "\"canSubscribe\":true,\"canPublishData\":false}}",
               "payload");
    json_decref(h);
    json_decref(p);
    free(jwt);

    /* metadata given as text reaches the token as that exact string */
    g.metadata = "{\"k\":[1,2,{\"x\":\"\\u00e9\"}]}";
    KWT_ERR(kw_token_livekit(&g, LK_KEY, LK_SEC, NOW_MS, &jwt, NULL), KW_OK);
    KWT_CHECK(jwt_open(jwt, LK_SEC, &h, &p));
    KWT_STREQ(json_string_value(json_object_get(p, "metadata")), g.metadata);
    json_decref(h);
    json_decref(p);
    free(jwt);
}

/* A token signed with one secret does not verify with another (nor when altered). */
static void test_livekit_signature_is_hs256_with_the_secret(void)
{
    kw_livekit_token t;
    KWT_ERR(kw_token_livekit_channel(LK_KEY, LK_SEC, "u", "U", "c", false, NOW_MS, &t, NULL),
            KW_OK);
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, LK_SEC, &h, &p));
    json_decref(h);
    json_decref(p);
    KWT_CHECK(!jwt_open(t.jwt, LK_SEC "x", &h, &p));
    json_decref(h);
    json_decref(p);
    /* flip one payload character */
    char *dot = strchr(t.jwt, '.');
    dot[1] = dot[1] == 'e' ? 'f' : 'e';
    KWT_CHECK(!jwt_open(t.jwt, LK_SEC, &h, &p));
    json_decref(h);
    json_decref(p);
    kw_livekit_token_free(&t);
}

static void test_livekit_rejects_bad_input(void)
{
    char long_id[KW_TOKEN_FIELD_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0'; /* 1025 bytes */
    char max_id[KW_TOKEN_FIELD_MAX + 1];
    memset(max_id, 'b', sizeof max_id - 1);
    max_id[sizeof max_id - 1] = '\0'; /* 1024 bytes */
    static const char *const bad_metadata[] = {"[1]", "nope", "{\"a\":1,\"a\":2}", "\"s\"",
                                               "{\"a\":1} x"};
    const struct {
        kw_livekit_grant g;
        const char *key, *secret;
        kw_err want;
    } cases[] = {
        {{.identity = "i", .room = "r"}, LK_KEY, LK_SEC, KW_OK},
        {{.identity = max_id, .room = max_id, .name = max_id}, LK_KEY, LK_SEC, KW_OK},
        {{.identity = long_id, .room = "r"}, LK_KEY, LK_SEC, KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = long_id}, LK_KEY, LK_SEC, KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r", .name = long_id}, LK_KEY, LK_SEC, KW_ERR_INVALID_ARGUMENT},
        {{.identity = NULL, .room = "r"}, LK_KEY, LK_SEC, KW_ERR_INVALID_ARGUMENT},
        {{.identity = "", .room = "r"}, LK_KEY, LK_SEC, KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = NULL}, LK_KEY, LK_SEC, KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r", .name = "bad \xff"},
         LK_KEY,
         LK_SEC,
         KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r", .name = "overlong \xc0\xaf"},
         LK_KEY,
         LK_SEC,
         KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r", .name = "surrogate \xed\xa0\x80"},
         LK_KEY,
         LK_SEC,
         KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r", .name = "cut \xe2\x82"},
         LK_KEY,
         LK_SEC,
         KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r", .name = "ok \xf0\x9f\x8e\xa7"}, LK_KEY, LK_SEC, KW_OK},
        {{.identity = "i", .room = "r", .not_after_ms = -1},
         LK_KEY,
         LK_SEC,
         KW_ERR_INVALID_ARGUMENT},
        {{.identity = "i", .room = "r"}, NULL, LK_SEC, KW_ERR_NOT_CONFIGURED},
        {{.identity = "i", .room = "r"}, "", LK_SEC, KW_ERR_NOT_CONFIGURED},
        {{.identity = "i", .room = "r"}, LK_KEY, NULL, KW_ERR_NOT_CONFIGURED},
        {{.identity = "i", .room = "r"}, LK_KEY, "", KW_ERR_NOT_CONFIGURED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *jwt = (char *)"sentinel";
        kw_error err = {0};
        kw_err rc =
            kw_token_livekit(&cases[i].g, cases[i].key, cases[i].secret, NOW_MS, &jwt, &err);
        KWT_ERR(rc, cases[i].want);
        if (rc == KW_OK) {
            free(jwt);
        } else {
            KWT_CHECK(jwt == NULL);
            KWT_CHECK(err.detail[0] != '\0');
        }
    }
    for (size_t i = 0; i < sizeof bad_metadata / sizeof bad_metadata[0]; i++) {
        kw_livekit_grant g = {.identity = "i", .room = "r", .metadata = bad_metadata[i]};
        char *jwt = (char *)"sentinel";
        KWT_ERR(kw_token_livekit(&g, LK_KEY, LK_SEC, NOW_MS, &jwt, NULL), KW_ERR_INVALID_ARGUMENT);
        KWT_CHECK(jwt == NULL);
    }
    /* the secret's own value never appears in a detail */
    kw_error err;
    kw_livekit_grant g = {.identity = "", .room = "r"};
    char *jwt;
    KWT_ERR(kw_token_livekit(&g, LK_KEY, LK_SEC, NOW_MS, &jwt, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(strstr(err.detail, LK_SEC) == NULL);
    KWT_ERR(kw_token_livekit(NULL, LK_KEY, LK_SEC, NOW_MS, &jwt, NULL), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_token_livekit(&g, LK_KEY, LK_SEC, NOW_MS, NULL, NULL), KW_ERR_INVALID_ARGUMENT);

    /* the wrappers refuse missing ids and leave their output zeroed */
    kw_livekit_token t;
    KWT_ERR(kw_token_livekit_channel(LK_KEY, LK_SEC, NULL, "U", "c", false, NOW_MS, &t, NULL),
            KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(t.jwt == NULL && t.room == NULL && t.identity == NULL);
    KWT_ERR(kw_token_livekit_meeting(LK_KEY, LK_SEC, "u", "", "U", "m", false, NOW_MS, &t, NULL),
            KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(t.jwt == NULL && t.room == NULL && t.identity == NULL);
    KWT_ERR(
        kw_token_livekit_guest(LK_KEY, LK_SEC, "s", "G", NULL, NOW_MS + 1000000, NOW_MS, &t, NULL),
        KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_token_livekit_meeting(NULL, LK_SEC, "u", "1", "U", "m", false, NOW_MS, &t, NULL),
            KW_ERR_NOT_CONFIGURED);
    KWT_CHECK(t.jwt == NULL && t.room == NULL && t.identity == NULL);
    /* an identity built from two ids at the limit is itself over the limit */
    KWT_ERR(
        kw_token_livekit_meeting(LK_KEY, LK_SEC, max_id, "1", "U", "m", false, NOW_MS, &t, NULL),
        KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(t.jwt == NULL && t.room == NULL && t.identity == NULL);
    kw_livekit_token_free(NULL);
}

/* ---- Jitsi -------------------------------------------------------------------------------- */

static const kw_jitsi_claims base_jitsi = {
    .meeting_id = "mtg_ABC-def_12",
    .user_id = "u_carol",
    .name = "Carol",
    .email = "carol@example.com",
    .moderator = true,
    .audio = true,
    .video = false,
};

static void test_jitsi_claims(void)
{
    kw_jitsi_token t;
    kw_error err;
    KWT_ERR(kw_token_jitsi(&base_jitsi, JT_ID, JT_SEC, JT_URL, 7200, NOW_MS, &t, &err), KW_OK);
    KWT_STREQ(t.room_name, "mtg_abc-def_12");
    KWT_STREQ(t.url, "https://Meet.Example.com:8443/mtg_abc-def_12");
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, JT_SEC, &h, &p));
    check_json(h, want_header, "header");
    check_json(p,
               "{\"iss\":\"keywave-app\",\"aud\":\"keywave-app\",\"sub\":\"meet.example.com\","
               "\"room\":\"mtg_abc-def_12\",\"nbf\":1700000000,\"exp\":1700007200,"
               "\"moderator\":true,\"context\":{\"user\":{\"id\":\"u_carol\",\"name\":"
               "\"Carol\",\"email\":\"carol@example.com\",\"moderator\":true},\"features\":{"
               "\"audio\":true,\"video\":false}}}",
               "payload");
    json_decref(h);
    json_decref(p);
    kw_jitsi_token_free(&t);
    KWT_CHECK(t.jwt == NULL && t.room_name == NULL && t.url == NULL);
    kw_jitsi_token_free(NULL);
}

/* name and email are optional: absent, not null; a participant is not a moderator. */
static void test_jitsi_participant_without_name_or_email(void)
{
    kw_jitsi_claims c = base_jitsi;
    c.name = NULL;
    c.email = NULL;
    c.moderator = false;
    c.audio = false;
    c.video = true;
    kw_jitsi_token t;
    KWT_ERR(kw_token_jitsi(&c, JT_ID, JT_SEC, "http://jitsi.local", 60, NOW_MS, &t, NULL), KW_OK);
    KWT_STREQ(t.url, "http://jitsi.local/mtg_abc-def_12");
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, JT_SEC, &h, &p));
    check_json(p,
               "{\"iss\":\"keywave-app\",\"aud\":\"keywave-app\",\"sub\":\"jitsi.local\","
               "\"room\":\"mtg_abc-def_12\",\"nbf\":1700000000,\"exp\":1700000060,"
               "\"moderator\":false,\"context\":{\"user\":{\"id\":\"u_carol\","
               "\"moderator\":false},\"features\":{\"audio\":false,\"video\":true}}}",
               "payload");
    json_decref(h);
    json_decref(p);
    kw_jitsi_token_free(&t);
}

static void test_jitsi_exp_is_now_plus_expiration(void)
{
    static const struct {
        int64_t now_ms, expiration_s;
        kw_err want;
    } cases[] = {
        {NOW_MS, 7200, KW_OK},
        {NOW_MS, 1, KW_OK},
        {NOW_S * 1000 + 999, 60, KW_OK},
        {NOW_MS, KW_TOKEN_TTL_MAX_S, KW_OK},
        {NOW_MS, KW_TOKEN_TTL_MAX_S + 1, KW_ERR_INVALID_ARGUMENT},
        {NOW_MS, 0, KW_ERR_INVALID_ARGUMENT},
        {NOW_MS, -7200, KW_ERR_INVALID_ARGUMENT},
        {-1, 7200, KW_ERR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_jitsi_token t;
        kw_err rc = kw_token_jitsi(&base_jitsi, JT_ID, JT_SEC, JT_URL, cases[i].expiration_s,
                                   cases[i].now_ms, &t, NULL);
        KWT_ERR(rc, cases[i].want);
        if (rc != KW_OK) {
            KWT_CHECK(t.jwt == NULL && t.room_name == NULL && t.url == NULL);
            continue;
        }
        json_t *h, *p;
        KWT_CHECK(jwt_open(t.jwt, JT_SEC, &h, &p));
        int64_t nbf = json_integer_value(json_object_get(p, "nbf"));
        KWT_EQ(nbf, cases[i].now_ms / 1000);
        KWT_EQ(json_integer_value(json_object_get(p, "exp")) - nbf, cases[i].expiration_s);
        json_decref(h);
        json_decref(p);
        kw_jitsi_token_free(&t);
    }
}

/* DESIGN 7: lower-case, then drop every character outside [a-z0-9_-]. */
static void test_jitsi_room_name_table(void)
{
    static const struct {
        const char *in;
        kw_err want;
        const char *out;
    } cases[] = {
        {"mtg_ABC-def_12", KW_OK, "mtg_abc-def_12"},
        {"mtg_0a1b2c3d4e5f", KW_OK, "mtg_0a1b2c3d4e5f"},
        {"call_00AA11bb22CC", KW_OK, "call_00aa11bb22cc"},
        {"MiXeD CaSe", KW_OK, "mixedcase"},
        {"  spaces  in\tside ", KW_OK, "spacesinside"},
        {"dots.and/slashes:colons", KW_OK, "dotsandslashescolons"},
        {"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x8e\xa7", KW_OK, "caf--"}, /* UTF-8 goes whole */
        {"\xc3\x84rger", KW_OK, "rger"},                               /* Ä is not A */
        {"Z", KW_OK, "z"},
        {"-_-", KW_OK, "-_-"},
        {"0123456789", KW_OK, "0123456789"},
        {"!!!", KW_ERR_INVALID_ARGUMENT, ""},
        {"\xc3\xa9\xc3\xa9", KW_ERR_INVALID_ARGUMENT, ""},
        {" \t.", KW_ERR_INVALID_ARGUMENT, ""},
        {"", KW_ERR_INVALID_ARGUMENT, ""},
        {NULL, KW_ERR_INVALID_ARGUMENT, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64] = "sentinel";
        kw_error err;
        KWT_ERR(kw_jitsi_room_name(cases[i].in, out, sizeof out, &err), cases[i].want);
        KWT_STREQ(out, cases[i].out);

        /* the Jitsi token refuses a meeting id that sanitises to nothing */
        kw_jitsi_claims c = base_jitsi;
        c.meeting_id = cases[i].in;
        kw_jitsi_token t;
        KWT_ERR(kw_token_jitsi(&c, JT_ID, JT_SEC, JT_URL, 7200, NOW_MS, &t, NULL), cases[i].want);
        if (cases[i].want == KW_OK)
            KWT_STREQ(t.room_name, cases[i].out);
        else
            KWT_CHECK(t.jwt == NULL && t.room_name == NULL && t.url == NULL);
        kw_jitsi_token_free(&t);
    }
    /* output buffer boundary: "MiXeD" needs 6 bytes */
    char out[8];
    KWT_ERR(kw_jitsi_room_name("MiXeD", out, 6, NULL), KW_OK);
    KWT_STREQ(out, "mixed");
    KWT_ERR(kw_jitsi_room_name("MiXeD", out, 5, NULL), KW_ERR_BUFFER_TOO_SMALL);
    KWT_ERR(kw_jitsi_room_name("MiXeD", NULL, 0, NULL), KW_ERR_BUFFER_TOO_SMALL);
    /* length limit of the input */
    char longest[KW_TOKEN_FIELD_MAX + 2], big[KW_TOKEN_FIELD_MAX + 2];
    memset(longest, 'A', sizeof longest - 1);
    longest[KW_TOKEN_FIELD_MAX] = '\0';
    KWT_ERR(kw_jitsi_room_name(longest, big, sizeof big, NULL), KW_OK);
    KWT_EQ(strlen(big), KW_TOKEN_FIELD_MAX);
    longest[KW_TOKEN_FIELD_MAX] = 'A';
    longest[KW_TOKEN_FIELD_MAX + 1] = '\0';
    KWT_ERR(kw_jitsi_room_name(longest, big, sizeof big, NULL), KW_ERR_INVALID_ARGUMENT);
}

static void test_jitsi_host_name_table(void)
{
    static const struct {
        const char *url;
        kw_err want;
        const char *host;
    } cases[] = {
        {"https://meet.example.com", KW_OK, "meet.example.com"},
        {"https://meet.example.com/", KW_OK, "meet.example.com"},
        {"https://Meet.Example.COM:8443/path/x", KW_OK, "meet.example.com"},
        {"http://user:pw@jitsi.local:80/", KW_OK, "jitsi.local"},
        {"http://a@b@host.example", KW_OK, "host.example"},
        {"https://[::1]:8443/", KW_OK, "::1"},
        {"https://[2001:DB8::1]", KW_OK, "2001:db8::1"},
        {"https://10.0.0.5:443", KW_OK, "10.0.0.5"},
        {"https://", KW_ERR_INVALID_ARGUMENT, ""},
        {"https:///path", KW_ERR_INVALID_ARGUMENT, ""},
        {"https://:443", KW_ERR_INVALID_ARGUMENT, ""},
        {"https://user@", KW_ERR_INVALID_ARGUMENT, ""},
        {"https://[::1", KW_ERR_INVALID_ARGUMENT, ""},
        {"https://[]:80", KW_ERR_INVALID_ARGUMENT, ""},
        {"meet.example.com", KW_ERR_INVALID_ARGUMENT, ""},
        {"://meet.example.com", KW_ERR_INVALID_ARGUMENT, ""},
        {NULL, KW_ERR_INVALID_ARGUMENT, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64] = "sentinel";
        KWT_ERR(kw_jitsi_host_name(cases[i].url, out, sizeof out, NULL), cases[i].want);
        KWT_STREQ(out, cases[i].host);
    }
    char out[17];
    KWT_ERR(kw_jitsi_host_name("https://meet.example.com", out, 17, NULL), KW_OK);
    KWT_ERR(kw_jitsi_host_name("https://meet.example.com", out, 16, NULL), KW_ERR_BUFFER_TOO_SMALL);
    /* a Jitsi token with a host-less server URL is refused */
    kw_jitsi_token t;
    KWT_ERR(kw_token_jitsi(&base_jitsi, JT_ID, JT_SEC, "https://:8443", 7200, NOW_MS, &t, NULL),
            KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(t.jwt == NULL && t.room_name == NULL && t.url == NULL);
}

/* DESIGN 7: JITSI_APP_SECRET needs 32 characters; 31 is refused, at start and when signing. */
static void test_jitsi_secret_length_boundary(void)
{
    static const char s31[] = "0123456789abcdef0123456789abcde";
    static const char s32[] = "0123456789abcdef0123456789abcdef";
    static const char s33[] = "0123456789abcdef0123456789abcdefg";
    KWT_EQ(strlen(s31), 31);
    KWT_CHECK(!kw_jitsi_secret_ok(s31));
    KWT_CHECK(kw_jitsi_secret_ok(s32));
    KWT_CHECK(kw_jitsi_secret_ok(s33));
    KWT_CHECK(!kw_jitsi_secret_ok(""));
    KWT_CHECK(!kw_jitsi_secret_ok(NULL));

    kw_jitsi_token t;
    kw_error err;
    KWT_ERR(kw_token_jitsi(&base_jitsi, JT_ID, s31, JT_URL, 7200, NOW_MS, &t, &err),
            KW_ERR_NOT_CONFIGURED);
    KWT_CHECK(strstr(err.detail, s31) == NULL);
    KWT_CHECK(t.jwt == NULL);
    KWT_ERR(kw_token_jitsi(&base_jitsi, JT_ID, s32, JT_URL, 7200, NOW_MS, &t, NULL), KW_OK);
    json_t *h, *p;
    KWT_CHECK(jwt_open(t.jwt, s32, &h, &p));
    json_decref(h);
    json_decref(p);
    KWT_CHECK(!jwt_open(t.jwt, s33, &h, &p));
    json_decref(h);
    json_decref(p);
    kw_jitsi_token_free(&t);
}

static void test_jitsi_rejects_bad_input(void)
{
    const struct {
        const char *app_id, *secret, *url, *user_id, *name, *email;
        kw_err want;
    } cases[] = {
        {JT_ID, JT_SEC, JT_URL, "u", "N", "e@x", KW_OK},
        {NULL, JT_SEC, JT_URL, "u", "N", "e@x", KW_ERR_NOT_CONFIGURED},
        {"", JT_SEC, JT_URL, "u", "N", "e@x", KW_ERR_NOT_CONFIGURED},
        {JT_ID, NULL, JT_URL, "u", "N", "e@x", KW_ERR_NOT_CONFIGURED},
        {JT_ID, JT_SEC, NULL, "u", "N", "e@x", KW_ERR_NOT_CONFIGURED},
        {JT_ID, JT_SEC, "", "u", "N", "e@x", KW_ERR_NOT_CONFIGURED},
        {JT_ID, JT_SEC, "no-scheme", "u", "N", "e@x", KW_ERR_INVALID_ARGUMENT},
        {JT_ID, JT_SEC, JT_URL, NULL, "N", "e@x", KW_ERR_INVALID_ARGUMENT},
        {JT_ID, JT_SEC, JT_URL, "", "N", "e@x", KW_ERR_INVALID_ARGUMENT},
        {JT_ID, JT_SEC, JT_URL, "u", "bad \x80", "e@x", KW_ERR_INVALID_ARGUMENT},
        {JT_ID, JT_SEC, JT_URL, "u", "N", "bad \xc3", KW_ERR_INVALID_ARGUMENT},
        {JT_ID, JT_SEC, JT_URL, "u", "", "e@x", KW_ERR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_jitsi_claims c = base_jitsi;
        c.user_id = cases[i].user_id;
        c.name = cases[i].name;
        c.email = cases[i].email;
        kw_jitsi_token t;
        kw_error err = {0};
        kw_err rc = kw_token_jitsi(&c, cases[i].app_id, cases[i].secret, cases[i].url, 7200, NOW_MS,
                                   &t, &err);
        KWT_ERR(rc, cases[i].want);
        if (rc != KW_OK) {
            KWT_CHECK(t.jwt == NULL && t.room_name == NULL && t.url == NULL);
            KWT_CHECK(err.detail[0] != '\0');
        }
        kw_jitsi_token_free(&t);
    }
    kw_jitsi_token t;
    KWT_ERR(kw_token_jitsi(NULL, JT_ID, JT_SEC, JT_URL, 7200, NOW_MS, &t, NULL),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_token_jitsi(&base_jitsi, JT_ID, JT_SEC, JT_URL, 7200, NOW_MS, NULL, NULL),
            KW_ERR_INVALID_ARGUMENT);
}

/* ---- tool mode ---------------------------------------------------------------------------- */

/* Writes one answer line and frees it. */
static void tool_answer(json_t *ans)
{
    char *line = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
    printf("%s\n", line ? line : "{\"ok\":false,\"error\":\"nomem\",\"detail\":\"out of memory\"}");
    fflush(stdout);
    free(line);
    json_decref(ans);
}

static json_t *tool_error(kw_err code, const char *detail)
{
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", kw_err_name(code), "detail", detail);
}

/* One request -> one answer object (never NULL unless memory runs out). Sets *quit. */
static json_t *tool_handle(const char *line, int *quit)
{
    json_error_t je;
    json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    json_t *ans = NULL;
    const char *cmd = NULL;
    if (req == NULL || json_unpack(req, "{s:s}", "cmd", &cmd) != 0) {
        ans = tool_error(KW_ERR_JSON, req ? "no cmd" : je.text);
        goto done;
    }
    kw_error err = {0};
    kw_err rc;
    const char *key = NULL, *secret = NULL, *name = NULL, *a = NULL, *b = NULL, *c = NULL;
    json_int_t now_ms = 0, expires = 0;
    int flag = 0, audio = 0, video = 0;
    if (strcmp(cmd, "quit") == 0) {
        *quit = 1;
        ans = json_pack("{s:b}", "ok", 1);
    } else if (strcmp(cmd, "livekit_channel") == 0 || strcmp(cmd, "livekit_meeting") == 0 ||
               strcmp(cmd, "livekit_guest") == 0) {
        kw_livekit_token t = {0};
        int unpacked;
        if (cmd[8] == 'c')
            unpacked = json_unpack_ex(
                req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:s, s?:s, s:s, s:b}", "cmd", &cmd,
                "api_key", &key, "api_secret", &secret, "now_ms", &now_ms, "user_id", &a,
                "user_name", &name, "channel_id", &c, "owner", &flag);
        else if (cmd[8] == 'm')
            unpacked = json_unpack_ex(
                req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:s, s:s, s?:s, s:s, s:b}", "cmd",
                &cmd, "api_key", &key, "api_secret", &secret, "now_ms", &now_ms, "user_id", &a,
                "device_id", &b, "user_name", &name, "meeting_id", &c, "owner", &flag);
        else
            unpacked = json_unpack_ex(
                req, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:s, s?:s, s:s, s:I}", "cmd", &cmd,
                "api_key", &key, "api_secret", &secret, "now_ms", &now_ms, "session_id", &a,
                "display_name", &name, "meeting_id", &c, "session_expires_ms", &expires);
        if (unpacked != 0) {
            ans = tool_error(KW_ERR_JSON, je.text);
            goto done;
        }
        if (cmd[8] == 'c')
            rc = kw_token_livekit_channel(key, secret, a, name, c, flag, now_ms, &t, &err);
        else if (cmd[8] == 'm')
            rc = kw_token_livekit_meeting(key, secret, a, b, name, c, flag, now_ms, &t, &err);
        else
            rc = kw_token_livekit_guest(key, secret, a, name, c, expires, now_ms, &t, &err);
        ans = rc != KW_OK ? tool_error(rc, err.detail)
                          : json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "token", t.jwt, "room",
                                      t.room, "identity", t.identity);
        kw_livekit_token_free(&t);
    } else if (strcmp(cmd, "jitsi") == 0) {
        kw_jitsi_claims jc = {0};
        kw_jitsi_token t = {0};
        const char *url = NULL;
        json_int_t expiration = 0;
        if (json_unpack_ex(req, &je, JSON_STRICT,
                           "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s?:s, s?:s, s:b, s:b, s:b}",
                           "cmd", &cmd, "app_id", &key, "app_secret", &secret, "server_url", &url,
                           "expiration_s", &expiration, "now_ms", &now_ms, "meeting_id",
                           &jc.meeting_id, "user_id", &jc.user_id, "name", &jc.name, "email",
                           &jc.email, "moderator", &flag, "audio", &audio, "video", &video) != 0) {
            ans = tool_error(KW_ERR_JSON, je.text);
            goto done;
        }
        jc.moderator = flag;
        jc.audio = audio;
        jc.video = video;
        rc = kw_token_jitsi(&jc, key, secret, url, expiration, now_ms, &t, &err);
        ans = rc != KW_OK ? tool_error(rc, err.detail)
                          : json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "token", t.jwt, "room_name",
                                      t.room_name, "url", t.url);
        kw_jitsi_token_free(&t);
    } else {
        ans = tool_error(KW_ERR_INVALID_ARGUMENT, "unknown cmd");
    }
done:
    json_decref(req);
    return ans;
}

static int tool_main(void)
{
    char *line = NULL;
    size_t cap = 0;
    int quit = 0;
    while (!quit && getline(&line, &cap, stdin) > 0)
        tool_answer(tool_handle(line, &quit));
    free(line);
    return 0;
}

int main(void)
{
    const char *tool = getenv("KW_TOKEN_TOOL");
    if (tool != NULL && strcmp(tool, "1") == 0)
        return tool_main();
    KWT_RUN(test_livekit_channel_member_claims);
    KWT_RUN(test_livekit_room_admin_only_when_asked);
    KWT_RUN(test_livekit_meeting_member_claims);
    KWT_RUN(test_inv_4_guest_token_claims);
    KWT_RUN(test_inv_4_guest_exp_capped_by_session);
    KWT_RUN(test_livekit_exp_nbf_arithmetic);
    KWT_RUN(test_livekit_grant_optional_claims);
    KWT_RUN(test_livekit_signature_is_hs256_with_the_secret);
    KWT_RUN(test_livekit_rejects_bad_input);
    KWT_RUN(test_jitsi_claims);
    KWT_RUN(test_jitsi_participant_without_name_or_email);
    KWT_RUN(test_jitsi_exp_is_now_plus_expiration);
    KWT_RUN(test_jitsi_room_name_table);
    KWT_RUN(test_jitsi_host_name_table);
    KWT_RUN(test_jitsi_secret_length_boundary);
    KWT_RUN(test_jitsi_rejects_bad_input);
    return kwt_finish();
}
