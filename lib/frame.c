/*
 * frame.c — LiveKit-compatible media frame encryption (see include/keywave/frame.h).
 *
 * The layout and derivations follow livekit-client 2.23's FrameCryptor and deriveKeys
 * (NOTES.md); tests/interop/frame.test.mjs checks both directions against that code.
 * The per-frame path touches only fixed-size state inside the cryptor: a slot's ready
 * kw_gcm context and a small linear table of per-SSRC send counts.
 */
#include "keywave/frame.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define FRAME_SALT            "LKFrameEncryptionKey"
#define FRAME_HKDF_INFO_BYTES 128 /* LiveKit passes `new ArrayBuffer(128)` as info */
#define FRAME_PBKDF2_ROUNDS   100000

typedef struct ssrc_count {
    uint32_t ssrc;
    uint32_t count;     /* send count, already reduced mod 0xffff */
    uint64_t last_used; /* value of the cryptor's tick at the last frame, for LRU */
    bool used;
} ssrc_count;

struct kw_frame_cryptor {
    size_t aes_key_bytes;                 /* 16 or 32, fixed at creation */
    kw_gcm *slots[KW_FRAME_KEYRING_SIZE]; /* owned; NULL = empty slot */
    unsigned send_index;                  /* < KW_FRAME_KEYRING_SIZE */
    const kw_random *rnd;                 /* borrowed */
    ssrc_count counts[KW_FRAME_SSRC_SLOTS];
    uint64_t tick; /* frames encrypted with a table count */
};

size_t kw_frame_media_key_bytes(void)
{
    return KW_FRAME_MEDIA_KEY_BYTES;
}

size_t kw_frame_keyring_size(void)
{
    return KW_FRAME_KEYRING_SIZE;
}

size_t kw_frame_iv_bytes(void)
{
    return KW_FRAME_IV_BYTES;
}

size_t kw_frame_tag_bytes(void)
{
    return KW_FRAME_TAG_BYTES;
}

size_t kw_frame_trailer_bytes(void)
{
    return KW_FRAME_TRAILER_BYTES;
}

size_t kw_frame_overhead(void)
{
    return KW_FRAME_OVERHEAD;
}

size_t kw_frame_header_bytes(kw_frame_kind kind)
{
    switch (kind) {
    case KW_FRAME_VP8_KEY:
        return 10;
    case KW_FRAME_VP8_DELTA:
        return 3;
    case KW_FRAME_AUDIO:
        return 1;
    }
    return 0; /* not a kind: callers reject it */
}

static bool valid_aes_size(size_t n)
{
    return n == KW_FRAME_AES128_KEY_BYTES || n == KW_FRAME_AES256_KEY_BYTES;
}

kw_err kw_frame_derive_key_raw(const uint8_t media_key[KW_FRAME_MEDIA_KEY_BYTES], uint8_t *aes_key,
                               size_t aes_key_bytes)
{
    static const uint8_t info[FRAME_HKDF_INFO_BYTES]; /* all zero */
    if (media_key == NULL || aes_key == NULL || !valid_aes_size(aes_key_bytes))
        return KW_ERR_INVALID_ARGUMENT;
    kw_err rc = kw_hkdf_sha256((const uint8_t *)FRAME_SALT, sizeof FRAME_SALT - 1, media_key,
                               KW_FRAME_MEDIA_KEY_BYTES, info, sizeof info, aes_key, aes_key_bytes);
    if (rc != KW_OK)
        kw_wipe(aes_key, aes_key_bytes);
    return rc;
}

kw_err kw_frame_derive_key_string(const char *text, size_t text_len, uint8_t *aes_key,
                                  size_t aes_key_bytes)
{
    if (text == NULL || text_len == 0 || aes_key == NULL || !valid_aes_size(aes_key_bytes))
        return KW_ERR_INVALID_ARGUMENT;
    kw_err rc =
        kw_pbkdf2_sha256((const uint8_t *)text, text_len, (const uint8_t *)FRAME_SALT,
                         sizeof FRAME_SALT - 1, FRAME_PBKDF2_ROUNDS, aes_key, aes_key_bytes);
    if (rc != KW_OK)
        kw_wipe(aes_key, aes_key_bytes);
    return rc;
}

kw_err kw_frame_cryptor_create(size_t aes_key_bytes, const kw_random *rnd, kw_frame_cryptor **out)
{
    if (out == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (rnd == NULL || !valid_aes_size(aes_key_bytes))
        return KW_ERR_INVALID_ARGUMENT;
    if (kw_crypto_init() != KW_OK)
        return KW_ERR_CRYPTO;
    kw_frame_cryptor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return KW_ERR_NOMEM;
    c->aes_key_bytes = aes_key_bytes;
    c->rnd = rnd;
    *out = c;
    return KW_OK;
}

void kw_frame_cryptor_free(kw_frame_cryptor *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < KW_FRAME_KEYRING_SIZE; i++)
        kw_gcm_free(c->slots[i]); /* wipes the key schedule */
    kw_wipe(c, sizeof *c);
    free(c);
}

/* Puts a ready GCM context for aes_key into slot index; the old one goes only on success. */
static kw_err install_key(kw_frame_cryptor *c, unsigned index, const uint8_t *aes_key)
{
    kw_gcm *g = kw_gcm_new(aes_key, c->aes_key_bytes);
    if (g == NULL)
        return KW_ERR_CRYPTO; /* kw_gcm_new does not say which; the key size is valid */
    kw_gcm_free(c->slots[index]);
    c->slots[index] = g;
    return KW_OK;
}

kw_err kw_frame_cryptor_set_key_raw(kw_frame_cryptor *c, unsigned index,
                                    const uint8_t media_key[KW_FRAME_MEDIA_KEY_BYTES])
{
    if (c == NULL || media_key == NULL || index >= KW_FRAME_KEYRING_SIZE)
        return KW_ERR_INVALID_ARGUMENT;
    uint8_t aes_key[KW_FRAME_AES256_KEY_BYTES];
    kw_err rc = kw_frame_derive_key_raw(media_key, aes_key, c->aes_key_bytes);
    if (rc == KW_OK)
        rc = install_key(c, index, aes_key);
    kw_wipe(aes_key, sizeof aes_key);
    return rc;
}

kw_err kw_frame_cryptor_set_key_string(kw_frame_cryptor *c, unsigned index, const char *text,
                                       size_t text_len)
{
    if (c == NULL || text == NULL || text_len == 0 || index >= KW_FRAME_KEYRING_SIZE)
        return KW_ERR_INVALID_ARGUMENT;
    uint8_t aes_key[KW_FRAME_AES256_KEY_BYTES];
    kw_err rc = kw_frame_derive_key_string(text, text_len, aes_key, c->aes_key_bytes);
    if (rc == KW_OK)
        rc = install_key(c, index, aes_key);
    kw_wipe(aes_key, sizeof aes_key);
    return rc;
}

kw_err kw_frame_cryptor_clear_key(kw_frame_cryptor *c, unsigned index)
{
    if (c == NULL || index >= KW_FRAME_KEYRING_SIZE)
        return KW_ERR_INVALID_ARGUMENT;
    kw_gcm_free(c->slots[index]);
    c->slots[index] = NULL;
    return KW_OK;
}

kw_err kw_frame_cryptor_set_send_index(kw_frame_cryptor *c, unsigned index)
{
    if (c == NULL || index >= KW_FRAME_KEYRING_SIZE)
        return KW_ERR_INVALID_ARGUMENT;
    c->send_index = index;
    return KW_OK;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/*
 * Checks the arguments shared by both encrypt calls. Returns KW_OK when the frame must be
 * sealed, with *header set; sets *pass_through for an empty frame (nothing to do).
 */
static kw_err check_encrypt(const kw_frame_cryptor *c, kw_frame_kind kind, const uint8_t *in,
                            size_t len, const uint8_t *out, size_t out_size, size_t *out_len,
                            size_t *header, bool *pass_through)
{
    *pass_through = false;
    if (out_len == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    *header = kw_frame_header_bytes(kind);
    if (c == NULL || *header == 0)
        return KW_ERR_INVALID_ARGUMENT;
    if (len == 0) {
        /* LiveKit forwards empty (DTX) frames untouched before looking at keys. */
        *pass_through = true;
        return KW_OK;
    }
    if (in == NULL || out == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    if (len < *header)
        return KW_ERR_FRAME_TOO_SHORT;
    if (c->slots[c->send_index] == NULL)
        return KW_ERR_NO_KEY;
    if (len > SIZE_MAX - KW_FRAME_OVERHEAD || out_size < len + KW_FRAME_OVERHEAD)
        return KW_ERR_BUFFER_TOO_SMALL;
    return KW_OK;
}

/* Seals a checked frame: header copy, GCM over the rest, then tag, IV and trailer. */
static kw_err seal(kw_frame_cryptor *c, size_t header, uint32_t ssrc, uint32_t timestamp,
                   uint32_t count, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
    uint8_t iv[KW_FRAME_IV_BYTES];
    put_be32(iv, ssrc);
    put_be32(iv + 4, timestamp);
    put_be32(iv + 8, timestamp - count % KW_FRAME_SEND_COUNT_MOD); /* wraps like setUint32 */

    size_t body = len - header;
    if (out != in)
        memcpy(out, in, header);
    uint8_t *tag = out + header + body;
    kw_err rc =
        kw_gcm_seal(c->slots[c->send_index], iv, in, header, in + header, body, out + header, tag);
    if (rc != KW_OK)
        return rc;
    uint8_t *trailer = tag + KW_FRAME_TAG_BYTES;
    memcpy(trailer, iv, KW_FRAME_IV_BYTES);
    trailer[KW_FRAME_IV_BYTES] = KW_FRAME_IV_BYTES;
    trailer[KW_FRAME_IV_BYTES + 1] = (uint8_t)c->send_index;
    *out_len = len + KW_FRAME_OVERHEAD;
    return KW_OK;
}

/*
 * Returns this SSRC's counter entry, making one (random start, LRU eviction) when it is
 * new. Linear search: the table has KW_FRAME_SSRC_SLOTS entries.
 */
static kw_err ssrc_entry(kw_frame_cryptor *c, uint32_t ssrc, ssrc_count **entry)
{
    ssrc_count *victim = &c->counts[0];
    for (size_t i = 0; i < KW_FRAME_SSRC_SLOTS; i++) {
        ssrc_count *e = &c->counts[i];
        if (e->used && e->ssrc == ssrc) {
            *entry = e;
            return KW_OK;
        }
        if (victim->used && (!e->used || e->last_used < victim->last_used))
            victim = e;
    }
    uint8_t r[4];
    if (kw_random_fill(c->rnd, r, sizeof r) != KW_OK)
        return KW_ERR_CRYPTO;
    uint32_t v = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
    victim->ssrc = ssrc;
    victim->count = v % KW_FRAME_SEND_COUNT_MOD; /* LiveKit: floor(random * 0xffff) */
    victim->used = true;
    *entry = victim;
    return KW_OK;
}

kw_err kw_frame_encrypt(kw_frame_cryptor *c, kw_frame_kind kind, uint32_t ssrc, uint32_t timestamp,
                        const uint8_t *in, size_t len, uint8_t *out, size_t out_size,
                        size_t *out_len)
{
    size_t header;
    bool pass;
    kw_err rc = check_encrypt(c, kind, in, len, out, out_size, out_len, &header, &pass);
    if (rc != KW_OK || pass)
        return rc;
    ssrc_count *e;
    rc = ssrc_entry(c, ssrc, &e);
    if (rc != KW_OK)
        return rc;
    uint32_t count = e->count;
    /* Advance before sealing so a failed seal never leaves an IV to be used again. */
    e->count = (count + 1) % KW_FRAME_SEND_COUNT_MOD;
    e->last_used = ++c->tick;
    return seal(c, header, ssrc, timestamp, count, in, len, out, out_len);
}

kw_err kw_frame_encrypt_with_count(kw_frame_cryptor *c, kw_frame_kind kind, uint32_t ssrc,
                                   uint32_t timestamp, uint32_t send_count, const uint8_t *in,
                                   size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t header;
    bool pass;
    kw_err rc = check_encrypt(c, kind, in, len, out, out_size, out_len, &header, &pass);
    if (rc != KW_OK || pass)
        return rc;
    return seal(c, header, ssrc, timestamp, send_count, in, len, out, out_len);
}

kw_err kw_frame_decrypt(kw_frame_cryptor *c, kw_frame_kind kind, const uint8_t *in, size_t len,
                        uint8_t *out, size_t out_size, size_t *out_len)
{
    if (out_len == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    size_t header = kw_frame_header_bytes(kind);
    if (c == NULL || header == 0)
        return KW_ERR_INVALID_ARGUMENT;
    if (len == 0)
        return KW_OK; /* empty (DTX) frames pass through, as in LiveKit */
    if (in == NULL || out == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    if (len < header + KW_FRAME_OVERHEAD)
        return KW_ERR_FRAME_TOO_SHORT;

    /* The trailer is read, never rebuilt: the sender's counter is its own business. */
    const uint8_t *trailer = in + len - KW_FRAME_TRAILER_BYTES;
    if (trailer[KW_FRAME_IV_BYTES] != KW_FRAME_IV_BYTES)
        return KW_ERR_INVALID_MESSAGE;
    unsigned index = trailer[KW_FRAME_IV_BYTES + 1];
    if (index >= KW_FRAME_KEYRING_SIZE || c->slots[index] == NULL)
        return KW_ERR_NO_KEY;
    size_t body = len - header - KW_FRAME_OVERHEAD;
    if (out_size < header + body)
        return KW_ERR_BUFFER_TOO_SMALL;

    /* Copy the IV first: with out == in the plaintext must not overwrite it mid-call. */
    uint8_t iv[KW_FRAME_IV_BYTES];
    uint8_t tag[KW_FRAME_TAG_BYTES];
    memcpy(iv, trailer, KW_FRAME_IV_BYTES);
    memcpy(tag, in + header + body, KW_FRAME_TAG_BYTES);
    kw_err rc = kw_gcm_open(c->slots[index], iv, in, header, in + header, body, tag, out + header);
    if (rc != KW_OK) {
        kw_wipe(out + header, body); /* never hand back unauthenticated plaintext */
        return rc == KW_ERR_DECRYPT ? KW_ERR_FRAME_AUTH : rc;
    }
    if (out != in)
        memcpy(out, in, header);
    *out_len = header + body;
    return KW_OK;
}
