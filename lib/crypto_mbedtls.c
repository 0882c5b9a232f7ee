/*
 * crypto_mbedtls.c — the browser backend of lib/crypto.h on mbedtls 2.28 (the wasm build).
 *
 * Browsers have no synchronous WebCrypto, and the Signal library calls its crypto provider
 * synchronously, so the symmetric primitives are compiled into the module (NOTES.md). The
 * native build compiles every C file of lib/: this whole file is inside KW_CRYPTO_MBEDTLS, which
 * only scripts/build-web.sh defines. Randomness is injected: kw_random_system() reads
 * kw_web_random_fill, which the embedding (web/wasm/keywave_web.c) implements with
 * crypto.getRandomValues.
 */
#ifdef KW_CRYPTO_MBEDTLS

#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/cipher.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>

#include "keywave/random.h"

/* Supplied by the embedding: fills buf with len bytes from the platform's CSPRNG. */
kw_err kw_web_random_fill(void *ctx, uint8_t *buf, size_t len);

static const mbedtls_md_info_t *md256;

kw_err kw_crypto_init(void)
{
    if (md256 == NULL)
        md256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return md256 != NULL ? KW_OK : KW_ERR_CRYPTO;
}

void kw_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        mbedtls_platform_zeroize(p, len);
}

int kw_ct_memcmp(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff != 0;
}

const kw_random *kw_random_system(void)
{
    static const kw_random sys = {kw_web_random_fill, NULL};
    return &sys;
}

kw_err kw_random_fill(const kw_random *rnd, uint8_t *buf, size_t len)
{
    return rnd->fill(rnd->ctx, buf, len);
}

kw_err kw_sha256(const uint8_t *in, size_t len, uint8_t out[KW_SHA256_BYTES])
{
    return mbedtls_sha256_ret(in, len, out, 0) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

struct kw_hmac {
    mbedtls_md_context_t md;
};

kw_hmac *kw_hmac_new(const uint8_t *key, size_t key_len)
{
    if (kw_crypto_init() != KW_OK)
        return NULL;
    kw_hmac *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    mbedtls_md_init(&h->md);
    if (mbedtls_md_setup(&h->md, md256, 1) != 0 || mbedtls_md_hmac_starts(&h->md, key, key_len)) {
        kw_hmac_free(h);
        return NULL;
    }
    return h;
}

kw_err kw_hmac_update(kw_hmac *h, const uint8_t *in, size_t len)
{
    return mbedtls_md_hmac_update(&h->md, in, len) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

kw_err kw_hmac_final(kw_hmac *h, uint8_t out[KW_SHA256_BYTES])
{
    return mbedtls_md_hmac_finish(&h->md, out) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

void kw_hmac_free(kw_hmac *h)
{
    if (h == NULL)
        return;
    mbedtls_md_free(&h->md); /* zeroizes the inner and outer pads (the key) */
    free(h);
}

kw_err kw_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len,
                      uint8_t out[KW_SHA256_BYTES])
{
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    return mbedtls_md_hmac(md256, key, key_len, in, len, out) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

struct kw_sha512 {
    mbedtls_sha512_context c;
};

kw_sha512 *kw_sha512_new(void)
{
    kw_sha512 *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    mbedtls_sha512_init(&s->c);
    if (mbedtls_sha512_starts_ret(&s->c, 0) != 0) {
        kw_sha512_free(s);
        return NULL;
    }
    return s;
}

kw_err kw_sha512_update(kw_sha512 *s, const uint8_t *in, size_t len)
{
    return mbedtls_sha512_update_ret(&s->c, in, len) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

kw_err kw_sha512_final(kw_sha512 *s, uint8_t out[KW_SHA512_BYTES])
{
    if (mbedtls_sha512_finish_ret(&s->c, out) != 0)
        return KW_ERR_CRYPTO;
    /* libsignal-protocol-c reuses the context after final (NOTES.md): start it over. */
    return mbedtls_sha512_starts_ret(&s->c, 0) == 0 ? KW_OK : KW_ERR_CRYPTO;
}

void kw_sha512_free(kw_sha512 *s)
{
    if (s == NULL)
        return;
    mbedtls_sha512_free(&s->c);
    free(s);
}

/* CBC with PKCS#7 on whole blocks; decrypt checks the padding in constant time over the
 * last block's pad bytes. */
static kw_err aes_cbc(mbedtls_aes_context *aes, int encrypt, const uint8_t iv_in[KW_AES_BLOCK],
                      const uint8_t *in, size_t len, uint8_t *buf, size_t *out_len)
{
    uint8_t iv[KW_AES_BLOCK];
    memcpy(iv, iv_in, sizeof iv);
    kw_err rc = KW_ERR_CRYPTO;
    if (encrypt) {
        size_t pad = KW_AES_BLOCK - len % KW_AES_BLOCK, total = len + pad;
        if (len > 0)
            memcpy(buf, in, len);
        memset(buf + len, (int)pad, pad);
        if (mbedtls_aes_crypt_cbc(aes, MBEDTLS_AES_ENCRYPT, total, iv, buf, buf) == 0) {
            *out_len = total;
            rc = KW_OK;
        }
    } else {
        if (len == 0 || len % KW_AES_BLOCK != 0) {
            rc = KW_ERR_DECRYPT;
        } else if (mbedtls_aes_crypt_cbc(aes, MBEDTLS_AES_DECRYPT, len, iv, in, buf) == 0) {
            uint8_t pad = buf[len - 1], bad = (uint8_t)(pad == 0 || pad > KW_AES_BLOCK);
            for (size_t i = 1; i <= KW_AES_BLOCK; i++) {
                uint8_t in_pad = (uint8_t)(i <= pad);
                bad |= (uint8_t)(in_pad & (buf[len - i] != pad));
            }
            if (bad)
                rc = KW_ERR_DECRYPT;
            else {
                *out_len = len - pad;
                rc = KW_OK;
            }
        }
    }
    kw_wipe(iv, sizeof iv);
    return rc;
}

kw_err kw_aes(kw_aes_mode mode, int encrypt, const uint8_t *key, size_t key_len,
              const uint8_t iv[KW_AES_BLOCK], const uint8_t *in, size_t len, uint8_t **out,
              size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if ((key_len != 16 && key_len != 24 && key_len != 32) ||
        (mode != KW_AES_CBC && mode != KW_AES_CTR) ||
        len > (size_t)INT32_MAX - (size_t)(2 * KW_AES_BLOCK))
        return KW_ERR_INVALID_ARGUMENT;
    size_t cap = len + KW_AES_BLOCK;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return KW_ERR_NOMEM;
    mbedtls_aes_context aes;
    mbedtls_aes_init(&aes);
    kw_err rc = KW_ERR_CRYPTO;
    /* CTR and CBC encryption both use the forward key schedule. */
    int use_dec = mode == KW_AES_CBC && !encrypt;
    int krc = use_dec ? mbedtls_aes_setkey_dec(&aes, key, (unsigned)key_len * 8)
                      : mbedtls_aes_setkey_enc(&aes, key, (unsigned)key_len * 8);
    if (krc == 0) {
        if (mode == KW_AES_CBC) {
            rc = aes_cbc(&aes, encrypt, iv, in, len, buf, out_len);
        } else {
            uint8_t nonce[KW_AES_BLOCK], stream[KW_AES_BLOCK];
            size_t off = 0;
            memcpy(nonce, iv, sizeof nonce);
            if (mbedtls_aes_crypt_ctr(&aes, len, &off, nonce, stream, in, buf) == 0) {
                *out_len = len;
                rc = KW_OK;
            }
            kw_wipe(nonce, sizeof nonce);
            kw_wipe(stream, sizeof stream);
        }
    }
    mbedtls_aes_free(&aes);
    if (rc != KW_OK) {
        kw_wipe(buf, cap);
        free(buf);
        *out_len = 0;
        return rc;
    }
    *out = buf;
    return KW_OK;
}

kw_err kw_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    if (out_len == 0 || out_len > 255 * KW_SHA256_BYTES)
        return KW_ERR_INVALID_ARGUMENT;
    return mbedtls_hkdf(md256, salt, salt_len, ikm, ikm_len, info, info_len, out, out_len) == 0
               ? KW_OK
               : KW_ERR_CRYPTO;
}

kw_err kw_pbkdf2_sha256(const uint8_t *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
                        uint32_t iterations, uint8_t *out, size_t out_len)
{
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    if (iterations == 0)
        return KW_ERR_INVALID_ARGUMENT;
    /* RFC 8018 section 5.2 on one HMAC context (mbedtls's pkcs5.c would pull in ASN.1). */
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    uint8_t u[KW_SHA256_BYTES], t[KW_SHA256_BYTES], counter[4];
    kw_err rc = KW_ERR_CRYPTO;
    if (mbedtls_md_setup(&md, md256, 1) != 0 || mbedtls_md_hmac_starts(&md, pass, pass_len) != 0)
        goto done;
    for (uint32_t block = 1; out_len > 0; block++) {
        counter[0] = (uint8_t)(block >> 24);
        counter[1] = (uint8_t)(block >> 16);
        counter[2] = (uint8_t)(block >> 8);
        counter[3] = (uint8_t)block;
        if (mbedtls_md_hmac_reset(&md) != 0 || mbedtls_md_hmac_update(&md, salt, salt_len) != 0 ||
            mbedtls_md_hmac_update(&md, counter, 4) != 0 || mbedtls_md_hmac_finish(&md, u) != 0)
            goto done;
        memcpy(t, u, sizeof t);
        for (uint32_t i = 1; i < iterations; i++) {
            if (mbedtls_md_hmac_reset(&md) != 0 || mbedtls_md_hmac_update(&md, u, sizeof u) != 0 ||
                mbedtls_md_hmac_finish(&md, u) != 0)
                goto done;
            for (size_t j = 0; j < sizeof t; j++)
                t[j] ^= u[j];
        }
        size_t n = out_len < sizeof t ? out_len : sizeof t;
        memcpy(out, t, n);
        out += n;
        out_len -= n;
    }
    rc = KW_OK;
done:
    mbedtls_md_free(&md);
    kw_wipe(u, sizeof u);
    kw_wipe(t, sizeof t);
    return rc;
}

struct kw_gcm {
    mbedtls_gcm_context ctx; /* key set once */
};

kw_gcm *kw_gcm_new(const uint8_t *key, size_t key_len)
{
    if (key_len != 16 && key_len != 32)
        return NULL;
    kw_gcm *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    mbedtls_gcm_init(&g->ctx);
    if (mbedtls_gcm_setkey(&g->ctx, MBEDTLS_CIPHER_ID_AES, key, (unsigned)key_len * 8) != 0) {
        kw_gcm_free(g);
        return NULL;
    }
    return g;
}

kw_err kw_gcm_seal(kw_gcm *g, const uint8_t iv[KW_GCM_IV_BYTES], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[KW_GCM_TAG_BYTES])
{
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    return mbedtls_gcm_crypt_and_tag(&g->ctx, MBEDTLS_GCM_ENCRYPT, len, iv, KW_GCM_IV_BYTES, aad,
                                     aad_len, in, out, KW_GCM_TAG_BYTES, tag) == 0
               ? KW_OK
               : KW_ERR_CRYPTO;
}

kw_err kw_gcm_open(kw_gcm *g, const uint8_t iv[KW_GCM_IV_BYTES], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, const uint8_t tag[KW_GCM_TAG_BYTES], uint8_t *out)
{
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    int r = mbedtls_gcm_auth_decrypt(&g->ctx, len, iv, KW_GCM_IV_BYTES, aad, aad_len, tag,
                                     KW_GCM_TAG_BYTES, in, out);
    if (r == MBEDTLS_ERR_GCM_AUTH_FAILED)
        return KW_ERR_DECRYPT; /* mbedtls has already zeroed out */
    return r == 0 ? KW_OK : KW_ERR_CRYPTO;
}

void kw_gcm_free(kw_gcm *g)
{
    if (g == NULL)
        return;
    mbedtls_gcm_free(&g->ctx); /* zeroizes the key schedule */
    free(g);
}

#endif /* KW_CRYPTO_MBEDTLS */
