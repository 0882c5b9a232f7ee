/*
 * crypto_openssl.c — the native backend of lib/crypto.h on OpenSSL 3, EVP APIs only.
 *
 * Algorithm objects (EVP_MD, EVP_MAC, EVP_CIPHER) are fetched once by kw_crypto_init:
 * an implicit fetch per call costs a provider lookup each time, which the per-frame path
 * cannot afford. This is the only file in lib/ that includes OpenSSL headers.
 */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "keywave/random.h"

static struct {
    int ready;
    EVP_MD *sha256, *sha512;
    EVP_MAC *hmac;
    EVP_CIPHER *cbc[3], *ctr[3], *gcm128, *gcm256;
    EVP_KDF *hkdf, *pbkdf2;
} algs;

kw_err kw_crypto_init(void)
{
    if (algs.ready)
        return KW_OK;
    static const char *cbc[3] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
    static const char *ctr[3] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"};
    algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    algs.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
    algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    for (int i = 0; i < 3; i++) {
        algs.cbc[i] = EVP_CIPHER_fetch(NULL, cbc[i], NULL);
        algs.ctr[i] = EVP_CIPHER_fetch(NULL, ctr[i], NULL);
        if (!algs.cbc[i] || !algs.ctr[i])
            return KW_ERR_CRYPTO;
    }
    algs.gcm128 = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    algs.gcm256 = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    algs.hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    algs.pbkdf2 = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
    if (!algs.sha256 || !algs.sha512 || !algs.hmac || !algs.gcm128 || !algs.gcm256 || !algs.hkdf ||
        !algs.pbkdf2)
        return KW_ERR_CRYPTO;
    algs.ready = 1;
    return KW_OK;
}

void kw_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        OPENSSL_cleanse(p, len);
}

int kw_ct_memcmp(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len);
}

static kw_err system_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        int chunk = len > (1u << 20) ? (1 << 20) : (int)len;
        if (RAND_bytes(buf, chunk) != 1)
            return KW_ERR_CRYPTO;
        buf += chunk;
        len -= (size_t)chunk;
    }
    return KW_OK;
}

const kw_random *kw_random_system(void)
{
    static const kw_random sys = {system_fill, NULL};
    return &sys;
}

kw_err kw_random_fill(const kw_random *rnd, uint8_t *buf, size_t len)
{
    return rnd->fill(rnd->ctx, buf, len);
}

kw_err kw_sha256(const uint8_t *in, size_t len, uint8_t out[KW_SHA256_BYTES])
{
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    unsigned int n = 0;
    if (EVP_Digest(in, len, out, &n, algs.sha256, NULL) != 1 || n != KW_SHA256_BYTES)
        return KW_ERR_CRYPTO;
    return KW_OK;
}

struct kw_hmac {
    EVP_MAC_CTX *ctx;
};

kw_hmac *kw_hmac_new(const uint8_t *key, size_t key_len)
{
    if (kw_crypto_init() != KW_OK)
        return NULL;
    kw_hmac *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->ctx = EVP_MAC_CTX_new(algs.hmac);
    if (h->ctx == NULL)
        goto fail;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    /* A zero-length HMAC key is legal; OpenSSL wants a non-NULL pointer for it. */
    static const uint8_t empty[1];
    if (EVP_MAC_init(h->ctx, key_len ? key : empty, key_len, params) != 1)
        goto fail;
    return h;
fail:
    kw_hmac_free(h);
    return NULL;
}

kw_err kw_hmac_update(kw_hmac *h, const uint8_t *in, size_t len)
{
    return EVP_MAC_update(h->ctx, in, len) == 1 ? KW_OK : KW_ERR_CRYPTO;
}

kw_err kw_hmac_final(kw_hmac *h, uint8_t out[KW_SHA256_BYTES])
{
    size_t n = 0;
    if (EVP_MAC_final(h->ctx, out, &n, KW_SHA256_BYTES) != 1 || n != KW_SHA256_BYTES)
        return KW_ERR_CRYPTO;
    return KW_OK;
}

void kw_hmac_free(kw_hmac *h)
{
    if (h == NULL)
        return;
    EVP_MAC_CTX_free(h->ctx); /* cleanses the key schedule */
    free(h);
}

kw_err kw_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len,
                      uint8_t out[KW_SHA256_BYTES])
{
    kw_hmac *h = kw_hmac_new(key, key_len);
    if (h == NULL)
        return KW_ERR_CRYPTO;
    kw_err rc = kw_hmac_update(h, in, len);
    if (rc == KW_OK)
        rc = kw_hmac_final(h, out);
    kw_hmac_free(h);
    return rc;
}

struct kw_sha512 {
    EVP_MD_CTX *ctx;
};

kw_sha512 *kw_sha512_new(void)
{
    if (kw_crypto_init() != KW_OK)
        return NULL;
    kw_sha512 *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->ctx = EVP_MD_CTX_new();
    if (s->ctx == NULL || EVP_DigestInit_ex(s->ctx, algs.sha512, NULL) != 1) {
        kw_sha512_free(s);
        return NULL;
    }
    return s;
}

kw_err kw_sha512_update(kw_sha512 *s, const uint8_t *in, size_t len)
{
    return EVP_DigestUpdate(s->ctx, in, len) == 1 ? KW_OK : KW_ERR_CRYPTO;
}

kw_err kw_sha512_final(kw_sha512 *s, uint8_t out[KW_SHA512_BYTES])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != KW_SHA512_BYTES)
        return KW_ERR_CRYPTO;
    /* libsignal-protocol-c reuses the context after final (NOTES.md): start it over. */
    if (EVP_DigestInit_ex(s->ctx, algs.sha512, NULL) != 1)
        return KW_ERR_CRYPTO;
    return KW_OK;
}

void kw_sha512_free(kw_sha512 *s)
{
    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}

static const EVP_CIPHER *aes_cipher(kw_aes_mode mode, size_t key_len)
{
    int i = key_len == 16 ? 0 : key_len == 24 ? 1 : key_len == 32 ? 2 : -1;
    if (i < 0)
        return NULL;
    if (mode == KW_AES_CBC)
        return algs.cbc[i];
    if (mode == KW_AES_CTR)
        return algs.ctr[i];
    return NULL;
}

kw_err kw_aes(kw_aes_mode mode, int encrypt, const uint8_t *key, size_t key_len,
              const uint8_t iv[KW_AES_BLOCK], const uint8_t *in, size_t len, uint8_t **out,
              size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    const EVP_CIPHER *cipher = aes_cipher(mode, key_len);
    if (cipher == NULL || len > (size_t)INT32_MAX - (size_t)(2 * KW_AES_BLOCK))
        return KW_ERR_INVALID_ARGUMENT;
    kw_err rc = KW_ERR_CRYPTO;
    size_t cap = len + KW_AES_BLOCK;
    uint8_t *buf = malloc(cap);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    if (buf == NULL || ctx == NULL) {
        rc = KW_ERR_NOMEM;
        goto fail;
    }
    if (EVP_CipherInit_ex(ctx, cipher, NULL, key, iv, encrypt ? 1 : 0) != 1)
        goto fail;
    if (EVP_CipherUpdate(ctx, buf, &n1, in, (int)len) != 1)
        goto fail;
    if (EVP_CipherFinal_ex(ctx, buf + n1, &n2) != 1) {
        rc = encrypt ? KW_ERR_CRYPTO : KW_ERR_DECRYPT; /* bad padding */
        goto fail;
    }
    EVP_CIPHER_CTX_free(ctx);
    *out = buf;
    *out_len = (size_t)n1 + (size_t)n2;
    return KW_OK;
fail:
    EVP_CIPHER_CTX_free(ctx);
    if (buf != NULL) {
        kw_wipe(buf, cap);
        free(buf);
    }
    return rc;
}

kw_err kw_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(algs.hkdf);
    if (ctx == NULL)
        return KW_ERR_NOMEM;
    static const uint8_t empty[1];
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(ikm_len ? ikm : empty),
                                          ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(salt_len ? salt : empty),
                                          salt_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(info_len ? info : empty),
                                          info_len),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_free(ctx);
    return ok == 1 ? KW_OK : KW_ERR_CRYPTO;
}

kw_err kw_pbkdf2_sha256(const uint8_t *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
                        uint32_t iterations, uint8_t *out, size_t out_len)
{
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    if (iterations == 0)
        return KW_ERR_INVALID_ARGUMENT;
    /* PBKDF2-HMAC-SHA256 via the one-shot EVP call (SP 800-132 lower bounds off). */
    if (PKCS5_PBKDF2_HMAC((const char *)pass, (int)pass_len, salt, (int)salt_len, (int)iterations,
                          algs.sha256, (int)out_len, out) != 1)
        return KW_ERR_CRYPTO;
    return KW_OK;
}

struct kw_gcm {
    EVP_CIPHER_CTX *enc, *dec; /* owned; key set once */
};

kw_gcm *kw_gcm_new(const uint8_t *key, size_t key_len)
{
    if (kw_crypto_init() != KW_OK)
        return NULL;
    const EVP_CIPHER *c = key_len == 16 ? algs.gcm128 : key_len == 32 ? algs.gcm256 : NULL;
    if (c == NULL)
        return NULL;
    kw_gcm *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->enc = EVP_CIPHER_CTX_new();
    g->dec = EVP_CIPHER_CTX_new();
    if (g->enc == NULL || g->dec == NULL)
        goto fail;
    if (EVP_EncryptInit_ex(g->enc, c, NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(g->dec, c, NULL, key, NULL) != 1)
        goto fail;
    return g;
fail:
    kw_gcm_free(g);
    return NULL;
}

kw_err kw_gcm_seal(kw_gcm *g, const uint8_t iv[KW_GCM_IV_BYTES], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[KW_GCM_TAG_BYTES])
{
    int n = 0;
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    if (EVP_EncryptInit_ex(g->enc, NULL, NULL, NULL, iv) != 1)
        return KW_ERR_CRYPTO;
    if (aad_len && EVP_EncryptUpdate(g->enc, NULL, &n, aad, (int)aad_len) != 1)
        return KW_ERR_CRYPTO;
    if (len && EVP_EncryptUpdate(g->enc, out, &n, in, (int)len) != 1)
        return KW_ERR_CRYPTO;
    if (EVP_EncryptFinal_ex(g->enc, out + (len ? (size_t)n : 0), &n) != 1)
        return KW_ERR_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(g->enc, EVP_CTRL_GCM_GET_TAG, KW_GCM_TAG_BYTES, tag) != 1)
        return KW_ERR_CRYPTO;
    return KW_OK;
}

kw_err kw_gcm_open(kw_gcm *g, const uint8_t iv[KW_GCM_IV_BYTES], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, const uint8_t tag[KW_GCM_TAG_BYTES], uint8_t *out)
{
    int n = 0;
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    if (EVP_DecryptInit_ex(g->dec, NULL, NULL, NULL, iv) != 1)
        return KW_ERR_CRYPTO;
    if (aad_len && EVP_DecryptUpdate(g->dec, NULL, &n, aad, (int)aad_len) != 1)
        return KW_ERR_CRYPTO;
    if (len && EVP_DecryptUpdate(g->dec, out, &n, in, (int)len) != 1)
        return KW_ERR_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(g->dec, EVP_CTRL_GCM_SET_TAG, KW_GCM_TAG_BYTES, (void *)tag) != 1)
        return KW_ERR_CRYPTO;
    if (EVP_DecryptFinal_ex(g->dec, out + (len ? (size_t)n : 0), &n) != 1) {
        kw_wipe(out, len);
        return KW_ERR_DECRYPT;
    }
    return KW_OK;
}

void kw_gcm_free(kw_gcm *g)
{
    if (g == NULL)
        return;
    EVP_CIPHER_CTX_free(g->enc); /* frees and cleanses the key schedule */
    EVP_CIPHER_CTX_free(g->dec);
    free(g);
}
