/*
 * request_sign.c — member request signing and its header checks (DESIGN.md section 4).
 *
 * The signed string is fed to a streaming HMAC piece by piece, so a long target or body
 * costs no copy; the body is hashed first because the string carries its hex digest.
 */
#include "keywave/request_sign.h"

#include <string.h>

#include "crypto.h"

size_t kw_request_signature_chars(void)
{
    return KW_REQUEST_SIGNATURE_CHARS;
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

kw_err kw_request_sign(const char *secret, const char *client_id, const char *timestamp,
                       const char *nonce, const char *method, const char *target,
                       const uint8_t *body, size_t body_len,
                       char out[KW_REQUEST_SIGNATURE_CHARS + 1])
{
    out[0] = '\0';
    if (secret == NULL || client_id == NULL || timestamp == NULL || nonce == NULL ||
        method == NULL || target == NULL || (body == NULL && body_len > 0))
        return KW_ERR_INVALID_ARGUMENT;
    static const uint8_t empty[1] = {0};
    uint8_t digest[KW_SHA256_BYTES];
    char body_hex[2 * KW_SHA256_BYTES + 1];
    kw_err rc = kw_sha256(body_len > 0 ? body : empty, body_len, digest);
    if (rc != KW_OK)
        return rc;
    to_hex(digest, sizeof digest, body_hex);

    kw_hmac *h = kw_hmac_new((const uint8_t *)secret, strlen(secret));
    if (h == NULL)
        return KW_ERR_NOMEM;
    const char *parts[] = {client_id, timestamp, nonce, method, target, body_hex};
    size_t n_parts = sizeof parts / sizeof parts[0];
    for (size_t i = 0; i < n_parts && rc == KW_OK; i++) {
        rc = kw_hmac_update(h, (const uint8_t *)parts[i], strlen(parts[i]));
        if (rc == KW_OK && i + 1 < n_parts)
            rc = kw_hmac_update(h, (const uint8_t *)":", 1);
    }
    uint8_t mac[KW_SHA256_BYTES];
    if (rc == KW_OK)
        rc = kw_hmac_final(h, mac);
    kw_hmac_free(h);
    if (rc == KW_OK)
        to_hex(mac, sizeof mac, out);
    kw_wipe(mac, sizeof mac);
    return rc;
}

/* 1..max characters of [A-Za-z0-9_-] (the nonce and client id alphabet). */
static int token_ok(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok || n >= max)
            return 0;
    }
    return n >= min;
}

/* Decimal digits only, no leading zero unless "0", at most KW_REQUEST_TIMESTAMP_MAX. */
static int timestamp_parse(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > KW_REQUEST_TIMESTAMP_MAX || (s[0] == '0' && n > 1))
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0'); /* at most 15 digits: no overflow */
    }
    *out = v;
    return 1;
}

static int hex_ok(const char *s, size_t want)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= want ||
            !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return n == want;
}

kw_err kw_request_auth_check(const kw_request_auth *h, int64_t now_ms, int64_t *timestamp_ms,
                             kw_error *err)
{
    if (h->client_id == NULL || h->timestamp == NULL || h->nonce == NULL || h->signature == NULL)
        return kw_error_set(err, KW_ERR_MISSING_AUTH_HEADERS,
                            "X-Client-ID, X-Timestamp, X-Nonce and X-Signature are required");
    if (!token_ok(h->client_id, 1, KW_REQUEST_CLIENT_ID_MAX))
        return kw_error_set(err, KW_ERR_INVALID_AUTH_HEADERS,
                            "X-Client-ID: 1..128 characters of [A-Za-z0-9_-]");
    int64_t ts = 0;
    if (!timestamp_parse(h->timestamp, &ts))
        return kw_error_set(err, KW_ERR_INVALID_AUTH_HEADERS,
                            "X-Timestamp: milliseconds since the epoch, in decimal");
    if (!token_ok(h->nonce, KW_REQUEST_NONCE_MIN, KW_REQUEST_NONCE_MAX))
        return kw_error_set(err, KW_ERR_INVALID_AUTH_HEADERS,
                            "X-Nonce: 16..128 characters of [A-Za-z0-9_-]");
    if (!hex_ok(h->signature, KW_REQUEST_SIGNATURE_CHARS))
        return kw_error_set(err, KW_ERR_INVALID_AUTH_HEADERS, "X-Signature: 64 hex digits");
    /* ts < 10^15; a clock within +-10^15 ms keeps the difference far from overflow. */
    if (now_ms < -1000000000000000LL || now_ms > 1000000000000000LL)
        return kw_error_set(err, KW_ERR_INTERNAL, "clock out of range");
    int64_t skew = now_ms - ts;
    if (skew > KW_REQUEST_SKEW_MAX_MS || skew < -KW_REQUEST_SKEW_MAX_MS)
        return kw_error_set(err, KW_ERR_REQUEST_EXPIRED,
                            "X-Timestamp: more than 5 minutes from the server's clock");
    if (timestamp_ms != NULL)
        *timestamp_ms = ts;
    return KW_OK;
}

kw_err kw_request_verify(const char *secret, const kw_request_auth *h, const char *method,
                         const char *target, const uint8_t *body, size_t body_len, kw_error *err)
{
    if (h->client_id == NULL || h->timestamp == NULL || h->nonce == NULL || h->signature == NULL)
        return kw_error_set(err, KW_ERR_MISSING_AUTH_HEADERS, "a signed-request header is missing");
    char want[KW_REQUEST_SIGNATURE_CHARS + 1];
    kw_err rc = kw_request_sign(secret, h->client_id, h->timestamp, h->nonce, method, target, body,
                                body_len, want);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot compute the request signature");
    /* Length first (public), then the digits in constant time. */
    int match = strlen(h->signature) == KW_REQUEST_SIGNATURE_CHARS &&
                kw_ct_memcmp(want, h->signature, KW_REQUEST_SIGNATURE_CHARS) == 0;
    kw_wipe(want, sizeof want);
    if (!match)
        return kw_error_set(err, KW_ERR_AUTH_SIGNATURE,
                            "X-Signature: does not match (lower-case hex HMAC-SHA256)");
    return KW_OK;
}

kw_err kw_request_nonce_new(const kw_random *rnd, char out[KW_REQUEST_NONCE_NEW_CHARS + 1])
{
    uint8_t raw[KW_REQUEST_NONCE_NEW_CHARS / 2];
    out[0] = '\0';
    kw_err rc = kw_random_fill(rnd, raw, sizeof raw);
    if (rc != KW_OK)
        return rc;
    to_hex(raw, sizeof raw, out);
    return KW_OK;
}
