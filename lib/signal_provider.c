/*
 * signal_provider.c — the crypto provider libsignal-protocol-c calls, on lib/crypto.h.
 * Each callback maps our kw_err to the library's SG_ERR_* convention.
 */
#include <stdlib.h>

#include "crypto.h"
#include "signal_glue.h"

static int provider_random(uint8_t *data, size_t len, void *user)
{
    return kw_random_fill(user, data, len) == KW_OK ? SG_SUCCESS : SG_ERR_UNKNOWN;
}

static int hmac_init(void **hctx, const uint8_t *key, size_t key_len, void *user)
{
    (void)user;
    *hctx = kw_hmac_new(key, key_len);
    return *hctx ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int hmac_update(void *hctx, const uint8_t *data, size_t len, void *user)
{
    (void)user;
    return kw_hmac_update(hctx, data, len) == KW_OK ? SG_SUCCESS : SG_ERR_UNKNOWN;
}

static int hmac_final(void *hctx, signal_buffer **output, void *user)
{
    (void)user;
    uint8_t md[KW_SHA256_BYTES];
    if (kw_hmac_final(hctx, md) != KW_OK)
        return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(md, sizeof md);
    kw_wipe(md, sizeof md);
    return *output ? SG_SUCCESS : SG_ERR_NOMEM;
}

static void hmac_cleanup(void *hctx, void *user)
{
    (void)user;
    kw_hmac_free(hctx);
}

static int sha512_init(void **dctx, void *user)
{
    (void)user;
    *dctx = kw_sha512_new();
    return *dctx ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int sha512_update(void *dctx, const uint8_t *data, size_t len, void *user)
{
    (void)user;
    return kw_sha512_update(dctx, data, len) == KW_OK ? SG_SUCCESS : SG_ERR_UNKNOWN;
}

static int sha512_final(void *dctx, signal_buffer **output, void *user)
{
    (void)user;
    uint8_t md[KW_SHA512_BYTES];
    if (kw_sha512_final(dctx, md) != KW_OK)
        return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(md, sizeof md);
    kw_wipe(md, sizeof md);
    return *output ? SG_SUCCESS : SG_ERR_NOMEM;
}

static void sha512_cleanup(void *dctx, void *user)
{
    (void)user;
    kw_sha512_free(dctx);
}

static int cipher_run(signal_buffer **output, int cipher, int encrypt, const uint8_t *key,
                      size_t key_len, const uint8_t *iv, size_t iv_len, const uint8_t *in,
                      size_t len)
{
    kw_aes_mode mode;
    if (cipher == SG_CIPHER_AES_CBC_PKCS5)
        mode = KW_AES_CBC;
    else if (cipher == SG_CIPHER_AES_CTR_NOPADDING)
        mode = KW_AES_CTR;
    else
        return SG_ERR_UNKNOWN;
    if (iv_len != KW_AES_BLOCK)
        return SG_ERR_UNKNOWN;
    uint8_t *out = NULL;
    size_t out_len = 0;
    kw_err rc = kw_aes(mode, encrypt, key, key_len, iv, in, len, &out, &out_len);
    if (rc != KW_OK)
        return rc == KW_ERR_NOMEM ? SG_ERR_NOMEM : SG_ERR_UNKNOWN;
    *output = signal_buffer_create(out, out_len);
    kw_wipe(out, out_len);
    free(out);
    return *output ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int provider_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                            const uint8_t *iv, size_t iv_len, const uint8_t *plaintext, size_t len,
                            void *user)
{
    (void)user;
    return cipher_run(output, cipher, 1, key, key_len, iv, iv_len, plaintext, len);
}

static int provider_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                            const uint8_t *iv, size_t iv_len, const uint8_t *ciphertext, size_t len,
                            void *user)
{
    (void)user;
    return cipher_run(output, cipher, 0, key, key_len, iv, iv_len, ciphertext, len);
}

kw_err kw_signal_context_new(const kw_random *rnd, signal_context **out)
{
    *out = NULL;
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    signal_context *ctx = NULL;
    if (signal_context_create(&ctx, NULL) != SG_SUCCESS)
        return KW_ERR_NOMEM;
    signal_crypto_provider p = {
        .random_func = provider_random,
        .hmac_sha256_init_func = hmac_init,
        .hmac_sha256_update_func = hmac_update,
        .hmac_sha256_final_func = hmac_final,
        .hmac_sha256_cleanup_func = hmac_cleanup,
        .sha512_digest_init_func = sha512_init,
        .sha512_digest_update_func = sha512_update,
        .sha512_digest_final_func = sha512_final,
        .sha512_digest_cleanup_func = sha512_cleanup,
        .encrypt_func = provider_encrypt,
        .decrypt_func = provider_decrypt,
        .user_data = (void *)rnd,
    };
    if (signal_context_set_crypto_provider(ctx, &p) != SG_SUCCESS) {
        signal_context_destroy(ctx);
        return KW_ERR_CRYPTO;
    }
    *out = ctx;
    return KW_OK;
}

kw_err kw_from_signal(int r)
{
    if (r >= 0)
        return KW_OK;
    switch (r) {
    case SG_ERR_NOMEM:
        return KW_ERR_NOMEM;
    case SG_ERR_INVAL:
        return KW_ERR_INVALID_ARGUMENT;
    case SG_ERR_INVALID_KEY:
        return KW_ERR_INVALID_KEY;
    case SG_ERR_INVALID_MAC:
        return KW_ERR_DECRYPT;
    case SG_ERR_INVALID_MESSAGE:
        return KW_ERR_INVALID_MESSAGE;
    case SG_ERR_INVALID_VERSION:
        return KW_ERR_INVALID_VERSION;
    case SG_ERR_LEGACY_MESSAGE:
        return KW_ERR_LEGACY_MESSAGE;
    case SG_ERR_NO_SESSION:
        return KW_ERR_NO_SESSION;
    case SG_ERR_DUPLICATE_MESSAGE:
        return KW_ERR_DUPLICATE_MESSAGE;
    case SG_ERR_UNTRUSTED_IDENTITY:
        return KW_ERR_UNTRUSTED_IDENTITY;
    case SG_ERR_INVALID_KEY_ID:
        return KW_ERR_INVALID_PREKEY_ID;
    case SG_ERR_INVALID_PROTO_BUF:
    case SG_ERR_STALE_KEY_EXCHANGE:
    case SG_ERR_FP_VERSION_MISMATCH:
    case SG_ERR_FP_IDENT_MISMATCH:
        return KW_ERR_INVALID_MESSAGE;
    case SG_ERR_VRF_SIG_VERIF_FAILED:
        return KW_ERR_INVALID_SIGNATURE;
    case SG_ERR_UNKNOWN:
        return KW_ERR_CRYPTO;
    default:
        return KW_ERR_STORE; /* our store callbacks return below SG_ERR_MINIMUM */
    }
}
