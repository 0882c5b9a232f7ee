/*
 * web_test_crypto.c — test builds only (KW_WEB_TEST): exposes lib/crypto.h to the
 * known-answer tests (tests/web/wasm_kat.test.mjs) through kww_call's "crypto" command, so
 * that crypto_mbedtls.c is checked against fixed vectors and against OpenSSL (node:crypto).
 * Hex in, hex out: {op:"sha256"|"sha512"|"hmac"|"hkdf"|"pbkdf2"|"aes"|"gcm_seal"|"gcm_open",
 * in?, key?, iv?, salt?, info?, aad?, tag?, len?, iter?, mode?:"cbc"|"ctr", encrypt?}.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "keywave/err.h"

json_t *kww_test_crypto(json_t *req);

typedef struct hexbuf {
    uint8_t *p;
    size_t n;
} hexbuf;

static int unhex(json_t *req, const char *k, hexbuf *out)
{
    const char *s = json_string_value(json_object_get(req, k));
    size_t len = s != NULL ? strlen(s) : 0;
    out->n = len / 2;
    out->p = calloc(out->n + 1, 1);
    if (out->p == NULL || len % 2 != 0)
        return -1;
    for (size_t i = 0; i < out->n; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
        }
        out->p[i] = (uint8_t)v;
    }
    return 0;
}

static json_t *hexstr(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    json_t *o = json_string(s);
    free(s);
    return o;
}

static json_t *answer(kw_err rc, const uint8_t *out, size_t n)
{
    if (rc != KW_OK)
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", kw_err_name(rc), "detail", "");
    return json_pack("{s:b, s:o}", "ok", 1, "out", hexstr(out, n));
}

json_t *kww_test_crypto(json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    hexbuf in = {0}, key = {0}, iv = {0}, salt = {0}, info = {0}, aad = {0}, tag = {0};
    size_t len = (size_t)json_integer_value(json_object_get(req, "len"));
    json_t *ans = NULL;
    uint8_t *out = NULL;
    if (op == NULL || len > 1024 || unhex(req, "in", &in) || unhex(req, "key", &key) ||
        unhex(req, "iv", &iv) || unhex(req, "salt", &salt) || unhex(req, "info", &info) ||
        unhex(req, "aad", &aad) || unhex(req, "tag", &tag) ||
        (out = calloc(len + in.n + 64, 1)) == NULL)
        ans = answer(KW_ERR_INVALID_ARGUMENT, NULL, 0);
    else if (strcmp(op, "sha256") == 0)
        ans = answer(kw_sha256(in.p, in.n, out), out, KW_SHA256_BYTES);
    else if (strcmp(op, "sha512") == 0) {
        /* Twice on one context: the second digest checks the reuse after final. */
        kw_sha512 *s = kw_sha512_new();
        uint8_t first[KW_SHA512_BYTES];
        kw_err rc = s == NULL ? KW_ERR_NOMEM : kw_sha512_update(s, in.p, in.n);
        if (rc == KW_OK)
            rc = kw_sha512_final(s, first);
        if (rc == KW_OK)
            rc = kw_sha512_update(s, in.p, in.n);
        if (rc == KW_OK)
            rc = kw_sha512_final(s, out);
        if (rc == KW_OK && memcmp(first, out, sizeof first) != 0)
            rc = KW_ERR_CRYPTO;
        kw_sha512_free(s);
        ans = answer(rc, out, KW_SHA512_BYTES);
    } else if (strcmp(op, "hmac") == 0) {
        /* One-shot and streaming (two updates) must agree. */
        uint8_t one[KW_SHA256_BYTES];
        kw_err rc = kw_hmac_sha256(key.p, key.n, in.p, in.n, one);
        kw_hmac *h = rc == KW_OK ? kw_hmac_new(key.p, key.n) : NULL;
        if (rc == KW_OK && h == NULL)
            rc = KW_ERR_CRYPTO;
        if (rc == KW_OK)
            rc = kw_hmac_update(h, in.p, in.n / 2);
        if (rc == KW_OK)
            rc = kw_hmac_update(h, in.p + in.n / 2, in.n - in.n / 2);
        if (rc == KW_OK)
            rc = kw_hmac_final(h, out);
        if (rc == KW_OK && memcmp(one, out, sizeof one) != 0)
            rc = KW_ERR_CRYPTO;
        kw_hmac_free(h);
        ans = answer(rc, out, KW_SHA256_BYTES);
    } else if (strcmp(op, "hkdf") == 0)
        ans = answer(kw_hkdf_sha256(salt.p, salt.n, key.p, key.n, info.p, info.n, out, len), out,
                     len);
    else if (strcmp(op, "pbkdf2") == 0)
        ans = answer(kw_pbkdf2_sha256(key.p, key.n, salt.p, salt.n,
                                      (uint32_t)json_integer_value(json_object_get(req, "iter")),
                                      out, len),
                     out, len);
    else if (strcmp(op, "aes") == 0) {
        const char *mode = json_string_value(json_object_get(req, "mode"));
        int enc = json_is_true(json_object_get(req, "encrypt"));
        uint8_t *res = NULL;
        size_t n = 0;
        kw_err rc = iv.n != KW_AES_BLOCK
                        ? KW_ERR_INVALID_ARGUMENT
                        : kw_aes(mode != NULL && strcmp(mode, "ctr") == 0 ? KW_AES_CTR : KW_AES_CBC,
                                 enc, key.p, key.n, iv.p, in.p, in.n, &res, &n);
        ans = answer(rc, res, n);
        free(res);
    } else if (strcmp(op, "gcm_seal") == 0 || strcmp(op, "gcm_open") == 0) {
        kw_gcm *g = kw_gcm_new(key.p, key.n);
        uint8_t t[KW_GCM_TAG_BYTES];
        kw_err rc = g == NULL || iv.n != KW_GCM_IV_BYTES ? KW_ERR_INVALID_ARGUMENT : KW_OK;
        if (rc == KW_OK && op[4] == 's') {
            rc = kw_gcm_seal(g, iv.p, aad.p, aad.n, in.p, in.n, out, t);
            memcpy(out + in.n, t, sizeof t); /* ciphertext || tag */
            ans = answer(rc, out, in.n + sizeof t);
        } else {
            if (rc == KW_OK)
                rc = tag.n != KW_GCM_TAG_BYTES
                         ? KW_ERR_INVALID_ARGUMENT
                         : kw_gcm_open(g, iv.p, aad.p, aad.n, in.p, in.n, tag.p, out);
            ans = answer(rc, out, in.n);
        }
        kw_gcm_free(g);
    } else
        ans = answer(KW_ERR_INVALID_ARGUMENT, NULL, 0);
    free(in.p), free(key.p), free(iv.p), free(salt.p), free(info.p), free(aad.p), free(tag.p);
    free(out);
    return ans;
}
