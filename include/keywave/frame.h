/*
 * frame.h — media frame encryption compatible with LiveKit's E2EE shared-key mode.
 *
 * A meeting's 32-byte media key (DESIGN.md section 6) becomes an AES-GCM key exactly as
 * livekit-client derives it, and every encoded audio/video frame is sealed in LiveKit's
 * wire format, so keywave clients and LiveKit web/Flutter clients decrypt each other:
 *
 *     header || ciphertext || tag(16) || IV(12) || 0x0C || key_index
 *
 * The header (the first 10 bytes of a VP8 key frame, 3 of a VP8 delta frame, 1 of an
 * Opus frame) stays readable for the SFU and is authenticated as AAD. The IV is
 * SSRC(4) || RTP timestamp(4) || (timestamp - send_count mod 0xffff)(4), big-endian with
 * wrapping uint32 arithmetic; a receiver reads it from the trailer and never rebuilds it.
 *
 * A kw_frame_cryptor holds a keyring of KW_FRAME_KEYRING_SIZE slots (keywave puts the key
 * of epoch e at slot e mod 16), the slot used for sending, and one send counter per SSRC.
 * Each slot keeps a ready AES-GCM context, so a frame costs one IV setup and one GCM pass:
 * no allocation and no key schedule. Setting a key is the slow part (PBKDF2 with 100 000
 * iterations for the string form, tens of milliseconds).
 *
 * THREAD SAFETY: a cryptor is not thread-safe (encrypt advances counters, and each slot's
 * GCM context is reused by encrypt and decrypt); use it from one thread at a time, or one
 * cryptor per thread.
 */
#ifndef KEYWAVE_FRAME_H
#define KEYWAVE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"
#include "keywave/random.h"

#define KW_FRAME_MEDIA_KEY_BYTES  32     /* the meeting's raw media key */
#define KW_FRAME_AES128_KEY_BYTES 16     /* LiveKit's default keySize 128 */
#define KW_FRAME_AES256_KEY_BYTES 32     /* keySize 256 */
#define KW_FRAME_KEYRING_SIZE     16     /* LiveKit's default keyringSize */
#define KW_FRAME_IV_BYTES         12     /* also the value of the trailer's IV-length byte */
#define KW_FRAME_TAG_BYTES        16     /* GCM tag */
#define KW_FRAME_TRAILER_BYTES    14     /* IV(12) || 0x0C || key_index */
#define KW_FRAME_OVERHEAD         30     /* tag + trailer: encrypted = plain + 30 bytes */
#define KW_FRAME_SEND_COUNT_MOD   0xffff /* send counts are taken modulo this (LiveKit) */
#define KW_FRAME_SSRC_SLOTS       8      /* SSRCs with their own send counter at once */

/* Function forms of the constants above, for the wasm glue. */
size_t kw_frame_media_key_bytes(void);
size_t kw_frame_keyring_size(void);
size_t kw_frame_iv_bytes(void);
size_t kw_frame_tag_bytes(void);
size_t kw_frame_trailer_bytes(void);
size_t kw_frame_overhead(void);

/*
 * The kind of a frame decides how many leading bytes stay unencrypted. The receiver
 * knows it from RTP (a VP8 key frame has bit 0 of its first byte clear; Opus is audio).
 */
typedef enum kw_frame_kind {
    KW_FRAME_VP8_KEY = 1,   /* VP8 key frame: 10 header bytes */
    KW_FRAME_VP8_DELTA = 2, /* VP8 delta frame: 3 header bytes */
    KW_FRAME_AUDIO = 3,     /* Opus (any audio): 1 header byte, the TOC */
} kw_frame_kind;

/* Unencrypted header bytes of a kind (10, 3 or 1); 0 for a value that is no kind. */
size_t kw_frame_header_bytes(kw_frame_kind kind);

/*
 * Derives the AES-GCM frame key from a raw media key as LiveKit does for an ArrayBuffer
 * key: HKDF-SHA256, salt "LKFrameEncryptionKey", info = 128 zero bytes.
 * aes_key receives aes_key_bytes bytes (KW_FRAME_AES128_KEY_BYTES or
 * KW_FRAME_AES256_KEY_BYTES); the caller owns and should wipe it.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL or a bad size), KW_ERR_CRYPTO.
 */
KW_MUST_CHECK kw_err kw_frame_derive_key_raw(const uint8_t media_key[KW_FRAME_MEDIA_KEY_BYTES],
                                             uint8_t *aes_key, size_t aes_key_bytes);

/*
 * Derives the AES-GCM frame key from a key given as text, as LiveKit does for a string
 * key (the Flutter SDK passes the media key's base64 text): PBKDF2-HMAC-SHA256 over the
 * text's bytes (UTF-8), same salt, 100 000 iterations. Slow on purpose (~tens of ms).
 * text[0..text_len) need not be NUL-terminated and must not be empty.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL, empty text or a bad size), KW_ERR_CRYPTO.
 */
KW_MUST_CHECK kw_err kw_frame_derive_key_string(const char *text, size_t text_len, uint8_t *aes_key,
                                                size_t aes_key_bytes);

typedef struct kw_frame_cryptor kw_frame_cryptor;

/*
 * Creates a cryptor with an empty keyring and send index 0.
 * aes_key_bytes: KW_FRAME_AES128_KEY_BYTES (LiveKit's default) or
 * KW_FRAME_AES256_KEY_BYTES; it must match the peers' keySize.
 * rnd: borrowed, must outlive the cryptor; used only to pick the random starting send
 * count of each new SSRC (as LiveKit does).
 * *out receives a cryptor owned by the caller (free with kw_frame_cryptor_free).
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT, KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_frame_cryptor_create(size_t aes_key_bytes, const kw_random *rnd,
                                             kw_frame_cryptor **out);

/* Frees a cryptor and wipes every key it holds. Accepts NULL. */
void kw_frame_cryptor_free(kw_frame_cryptor *c);

/*
 * Sets slot `index` (0..15; keywave uses epoch mod 16) to the key derived from a raw
 * media key (kw_frame_derive_key_raw). Replaces any key in that slot; on failure the slot
 * keeps its old key. Does not change the send index. The media key is only read.
 * Returns KW_OK, KW_ERR_INVALID_ARGUMENT (NULL or index >= 16), KW_ERR_CRYPTO,
 * KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_frame_cryptor_set_key_raw(
    kw_frame_cryptor *c, unsigned index, const uint8_t media_key[KW_FRAME_MEDIA_KEY_BYTES]);

/*
 * Sets slot `index` to the key derived from text (kw_frame_derive_key_string), for peers
 * that pass the key as a string. Same rules and errors as kw_frame_cryptor_set_key_raw,
 * plus KW_ERR_INVALID_ARGUMENT for empty text.
 */
KW_MUST_CHECK kw_err kw_frame_cryptor_set_key_string(kw_frame_cryptor *c, unsigned index,
                                                     const char *text, size_t text_len);

/*
 * Empties slot `index` (wiping its key): frames naming it then fail with KW_ERR_NO_KEY.
 * Returns KW_OK or KW_ERR_INVALID_ARGUMENT (NULL or index >= 16).
 */
kw_err kw_frame_cryptor_clear_key(kw_frame_cryptor *c, unsigned index);

/*
 * Chooses the slot that encrypt uses (and writes as key_index). The slot may still be
 * empty; encrypt then fails with KW_ERR_NO_KEY until it is set. Unlike LiveKit's setKey,
 * setting a key never moves the send index, so a new epoch's key can be installed for
 * receiving before anyone sends with it.
 * Returns KW_OK or KW_ERR_INVALID_ARGUMENT (NULL or index >= 16).
 */
kw_err kw_frame_cryptor_set_send_index(kw_frame_cryptor *c, unsigned index);

/*
 * Encrypts one frame with the send slot's key, using and advancing this SSRC's send count.
 * The cryptor keeps a count for up to KW_FRAME_SSRC_SLOTS SSRCs (a publisher has audio,
 * up to three simulcast layers and a screen share); a new SSRC starts at a random count
 * below 0xffff, as in LiveKit, and when the table is full it takes the slot of the SSRC
 * used least recently (which restarts at a new random count if it comes back: its IVs
 * still differ because its RTP timestamps have moved on).
 *
 * kind: the frame's kind; ssrc and timestamp: the frame's RTP SSRC and RTP timestamp.
 * in[0..len): the encoded frame. out: room for out_size bytes, at least
 * len + KW_FRAME_OVERHEAD; out may equal in (in-place, when that buffer has room),
 * otherwise the two must not overlap. *out_len receives the encrypted length.
 * An empty frame (len 0) passes through unencrypted with *out_len = 0, as LiveKit does
 * for DTX frames, even when no key is set.
 *
 * Returns KW_OK; KW_ERR_INVALID_ARGUMENT (NULL pointer, unknown kind);
 * KW_ERR_FRAME_TOO_SHORT (0 < len < the kind's header length); KW_ERR_NO_KEY (send slot
 * empty); KW_ERR_BUFFER_TOO_SMALL; KW_ERR_CRYPTO (random source or cipher failed).
 * On failure *out_len is 0 and out's contents are unspecified.
 */
KW_MUST_CHECK kw_err kw_frame_encrypt(kw_frame_cryptor *c, kw_frame_kind kind, uint32_t ssrc,
                                      uint32_t timestamp, const uint8_t *in, size_t len,
                                      uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Like kw_frame_encrypt, but with the caller's own send count (only send_count mod 0xffff
 * is used) and without touching the cryptor's counter table: for callers that keep their
 * own counters, known-answer tests and interop checks. The caller must never use the same
 * (ssrc, timestamp, send_count mod 0xffff) twice under one key.
 * Same parameters, errors and pass-through of empty frames as kw_frame_encrypt.
 */
KW_MUST_CHECK kw_err kw_frame_encrypt_with_count(kw_frame_cryptor *c, kw_frame_kind kind,
                                                 uint32_t ssrc, uint32_t timestamp,
                                                 uint32_t send_count, const uint8_t *in, size_t len,
                                                 uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Decrypts one frame: reads the IV and key_index from its trailer and uses that slot.
 * kind: the frame's kind (decides the header length; the header is checked as AAD).
 * in[0..len): the received frame. out: room for out_size bytes, at least
 * len - KW_FRAME_OVERHEAD; out may equal in, otherwise no overlap. *out_len receives the
 * plaintext length (header included). An empty frame passes through (*out_len = 0).
 *
 * Returns KW_OK; KW_ERR_INVALID_ARGUMENT (NULL pointer, unknown kind);
 * KW_ERR_FRAME_TOO_SHORT (0 < len < header + KW_FRAME_OVERHEAD); KW_ERR_INVALID_MESSAGE
 * (the IV-length byte is not 0x0C); KW_ERR_NO_KEY (key_index >= 16 or its slot empty);
 * KW_ERR_BUFFER_TOO_SMALL; KW_ERR_FRAME_AUTH (the tag does not verify: tampered, or
 * another key); KW_ERR_CRYPTO. On failure *out_len is 0 and no plaintext is left in out.
 */
KW_MUST_CHECK kw_err kw_frame_decrypt(kw_frame_cryptor *c, kw_frame_kind kind, const uint8_t *in,
                                      size_t len, uint8_t *out, size_t out_size, size_t *out_len);

#endif
