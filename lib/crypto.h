/*
 * crypto.h — the symmetric primitives libkeywave needs, behind one internal interface.
 *
 * Two backends implement it: crypto_openssl.c (native, OpenSSL 3 EVP only) and, for the
 * browser, an mbedtls one. Everything above — the Signal crypto provider, frame
 * encryption, key derivation — calls only these functions, so no other file includes an
 * OpenSSL header. Secrets passed in are borrowed; contexts that hold keys wipe them in
 * their _free. All functions are safe to call from one thread at a time per context.
 */
#ifndef KEYWAVE_LIB_CRYPTO_H
#define KEYWAVE_LIB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_SHA256_BYTES  32
#define KW_SHA512_BYTES  64
#define KW_AES_BLOCK     16
#define KW_GCM_IV_BYTES  12
#define KW_GCM_TAG_BYTES 16

/* Fetches algorithm objects once. Idempotent; called by every constructor below. */
kw_err kw_crypto_init(void);

/* Wipes len bytes at p in a way the compiler keeps (OPENSSL_cleanse natively). */
void kw_wipe(void *p, size_t len);

/* Constant-time comparison: 0 when equal. */
int kw_ct_memcmp(const void *a, const void *b, size_t len);

/* One-shot digests and MAC. */
kw_err kw_sha256(const uint8_t *in, size_t len, uint8_t out[KW_SHA256_BYTES]);
kw_err kw_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *in, size_t len,
                      uint8_t out[KW_SHA256_BYTES]);

/* Streaming HMAC-SHA256 (the Signal provider's hmac_sha256_* callbacks). */
typedef struct kw_hmac kw_hmac;
/* Returns a new context owned by the caller (free with kw_hmac_free), or NULL. */
kw_hmac *kw_hmac_new(const uint8_t *key, size_t key_len);
kw_err kw_hmac_update(kw_hmac *h, const uint8_t *in, size_t len);
kw_err kw_hmac_final(kw_hmac *h, uint8_t out[KW_SHA256_BYTES]);
void kw_hmac_free(kw_hmac *h);

/* Streaming SHA-512; final re-initialises the context so it can be reused. */
typedef struct kw_sha512 kw_sha512;
kw_sha512 *kw_sha512_new(void); /* owned by caller, or NULL */
kw_err kw_sha512_update(kw_sha512 *s, const uint8_t *in, size_t len);
kw_err kw_sha512_final(kw_sha512 *s, uint8_t out[KW_SHA512_BYTES]);
void kw_sha512_free(kw_sha512 *s);

/*
 * AES-CBC with PKCS#7 padding (encrypt != 0) or unpadding, or AES-CTR (pkcs7 ignored),
 * key of 16, 24 or 32 bytes, iv of 16. *out is malloc'd and owned by the caller; it has
 * room for len + 16 bytes; *out_len is set. KW_ERR_DECRYPT on bad padding.
 */
typedef enum { KW_AES_CBC = 1, KW_AES_CTR = 2 } kw_aes_mode;
kw_err kw_aes(kw_aes_mode mode, int encrypt, const uint8_t *key, size_t key_len,
              const uint8_t iv[KW_AES_BLOCK], const uint8_t *in, size_t len, uint8_t **out,
              size_t *out_len);

/* HKDF-SHA256 (RFC 5869, extract then expand) of out_len bytes. */
kw_err kw_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* PBKDF2-HMAC-SHA256 of out_len bytes. */
kw_err kw_pbkdf2_sha256(const uint8_t *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
                        uint32_t iterations, uint8_t *out, size_t out_len);

/*
 * AES-GCM with a key fixed at creation (16 or 32 bytes), for many messages: per call
 * only the IV is set, so a frame costs no key schedule and no allocation.
 */
typedef struct kw_gcm kw_gcm;
/* Returns a context owned by the caller (free with kw_gcm_free, which wipes), or NULL. */
kw_gcm *kw_gcm_new(const uint8_t *key, size_t key_len);
/* Encrypts in[0..len) to out (len bytes; may equal in) and writes the 16-byte tag. */
kw_err kw_gcm_seal(kw_gcm *g, const uint8_t iv[KW_GCM_IV_BYTES], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[KW_GCM_TAG_BYTES]);
/* Decrypts and verifies; KW_ERR_DECRYPT when the tag does not match (out then wiped). */
kw_err kw_gcm_open(kw_gcm *g, const uint8_t iv[KW_GCM_IV_BYTES], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, const uint8_t tag[KW_GCM_TAG_BYTES],
                   uint8_t *out);
void kw_gcm_free(kw_gcm *g);

#endif
