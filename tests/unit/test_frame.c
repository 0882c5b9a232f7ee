/*
 * test_frame.c — LiveKit-compatible frame encryption (lib/frame.c).
 *
 * Known answers for both key derivations (NOTES.md) and for whole frames; the frames are
 * the same bytes tests/interop/frame.test.mjs gets from livekit-client's own frame cryptor.
 * Then round trips, tampering, key slots, IV layout and send counts, boundaries, and
 * garbage that must be refused without a crash.
 */
#include <stdlib.h>

#include "keywave/frame.h"
#include "kwtest.h"

static const char *KEY_00_1F = "000102030405060708090a0b0c0d0e0f"
                               "101112131415161718191a1b1c1d1e1f";
static const char *HORSE = "correct horse battery staple";

/* ---- a scripted random source: hands out queued 32-bit values, or fails ---------------- */
typedef struct script_rnd {
    uint32_t values[16];
    size_t n, next;
    int fail;
    unsigned calls;
} script_rnd;

static kw_err script_fill(void *ctx, uint8_t *buf, size_t len)
{
    script_rnd *s = ctx;
    s->calls++;
    if (s->fail)
        return KW_ERR_CRYPTO;
    uint32_t v = s->next < s->n ? s->values[s->next++] : 0x01020304;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(v >> (8 * (3 - i % 4)));
    return KW_OK;
}

static uint8_t key00[KW_FRAME_MEDIA_KEY_BYTES];

static kw_frame_cryptor *new_cryptor(size_t aes_bytes, const kw_random *rnd)
{
    kw_frame_cryptor *c = NULL;
    if (kw_frame_cryptor_create(aes_bytes, rnd ? rnd : kw_random_system(), &c) != KW_OK)
        return NULL;
    return c;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A frame of a kind, header-like first byte, body of deterministic bytes. */
static size_t make_plain(kw_frame_kind kind, size_t body, uint8_t *p)
{
    size_t n = kw_frame_header_bytes(kind) + body;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 37 + 11);
    return n;
}

static void test_constants(void)
{
    KWT_EQ(kw_frame_media_key_bytes(), 32);
    KWT_EQ(kw_frame_keyring_size(), 16);
    KWT_EQ(kw_frame_iv_bytes(), 12);
    KWT_EQ(kw_frame_tag_bytes(), 16);
    KWT_EQ(kw_frame_trailer_bytes(), 14);
    KWT_EQ(kw_frame_overhead(), KW_FRAME_TAG_BYTES + KW_FRAME_TRAILER_BYTES);
    KWT_EQ(kw_frame_header_bytes(KW_FRAME_VP8_KEY), 10);
    KWT_EQ(kw_frame_header_bytes(KW_FRAME_VP8_DELTA), 3);
    KWT_EQ(kw_frame_header_bytes(KW_FRAME_AUDIO), 1);
    KWT_EQ(kw_frame_header_bytes((kw_frame_kind)0), 0);
    KWT_EQ(kw_frame_header_bytes((kw_frame_kind)4), 0);
}

/* NOTES.md: HKDF of 00..1f and PBKDF2 of "correct horse battery staple". */
static void test_derive_known_answers(void)
{
    uint8_t got[32], want[32];
    KWT_ERR(kw_frame_derive_key_raw(key00, got, 16), KW_OK);
    kwt_hex("6d0dd7b3d6f4efde47ab9a9e15abde76", want, sizeof want);
    KWT_MEMEQ(got, want, 16);
    KWT_ERR(kw_frame_derive_key_raw(key00, got, 32), KW_OK);
    kwt_hex("6d0dd7b3d6f4efde47ab9a9e15abde7635c45a13bddf5da15eed01f40178d328", want, sizeof want);
    KWT_MEMEQ(got, want, 32);
    KWT_ERR(kw_frame_derive_key_string(HORSE, strlen(HORSE), got, 16), KW_OK);
    kwt_hex("dee9745ab873685c2579655a7296d1a4", want, sizeof want);
    KWT_MEMEQ(got, want, 16);
    /* 256-bit: Node's crypto.pbkdf2Sync(text, salt, 100000, 32, 'sha256'). */
    KWT_ERR(kw_frame_derive_key_string(HORSE, strlen(HORSE), got, 32), KW_OK);
    kwt_hex("dee9745ab873685c2579655a7296d1a47c2d34c778b87d179c4d30df09c7049d", want, sizeof want);
    KWT_MEMEQ(got, want, 32);
}

static void test_derive_bad_arguments(void)
{
    uint8_t out[32];
    KWT_ERR(kw_frame_derive_key_raw(NULL, out, 16), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_derive_key_raw(key00, NULL, 16), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_derive_key_raw(key00, out, 24), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_derive_key_raw(key00, out, 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_derive_key_string("", 0, out, 16), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_derive_key_string(NULL, 3, out, 16), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_derive_key_string("abc", 3, out, 17), KW_ERR_INVALID_ARGUMENT);
}

static void test_create_and_slots_bad_arguments(void)
{
    kw_frame_cryptor *c = (kw_frame_cryptor *)&c; /* must be reset to NULL on failure */
    KWT_ERR(kw_frame_cryptor_create(24, kw_random_system(), &c), KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(c == NULL);
    KWT_ERR(kw_frame_cryptor_create(16, NULL, &c), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_create(16, kw_random_system(), NULL), KW_ERR_INVALID_ARGUMENT);
    kw_frame_cryptor_free(NULL);

    c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 16, key00), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, NULL), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_key_raw(NULL, 0, key00), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_key_string(c, 16, "abc", 3), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_key_string(c, 0, "", 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_send_index(c, 16), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_send_index(NULL, 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_clear_key(c, 16), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_clear_key(NULL, 0), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 15, key00), KW_OK);
    KWT_ERR(kw_frame_cryptor_set_send_index(c, 15), KW_OK);
    KWT_ERR(kw_frame_cryptor_clear_key(c, 15), KW_OK);
    KWT_ERR(kw_frame_cryptor_clear_key(c, 15), KW_OK); /* clearing an empty slot is fine */
    kw_frame_cryptor_free(c);
}

/*
 * Whole frames with fixed key, SSRC, timestamp and send count. The expected bytes are what
 * livekit-client 2.23 produces for the same input (frame.test.mjs pins its random starting
 * send count and compares), so they also pin LiveKit's layout.
 */
typedef struct frame_kat {
    const char *name;
    size_t aes_bytes;
    int string_key; /* 1: HORSE through PBKDF2; 0: 00..1f through HKDF */
    unsigned index;
    kw_frame_kind kind;
    uint32_t ssrc, ts, count;
    const char *plain, *frame;
} frame_kat;

static const frame_kat KATS[] = {
    {"vp8 key, hkdf, aes-128, ts - count wraps", 16, 0, 1, KW_FRAME_VP8_KEY, 0x11223344, 100,
     0x1234, "1002009d012a8002e001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "1002009d012a8002e001903ae0753bdd0e057f996a6df7f8e84bb3c999fa7918f6b6fc4b8cd6da1b40ed2e86"
     "ec0ba5017e5cfa6422894926337c1122334400000064ffffee300c01"},
    {"opus, pbkdf2, aes-128", 16, 1, 2, KW_FRAME_AUDIO, 0xdeadbeef, 0xfffffff0, 7,
     "786b657977617665206f707573206672616d65",
     "7872d25a274ff9dfcff9f0426911ebd4f5eb8f39617d13e27f6b40a90fbbe63480e12edeadbeeffffffff0ff"
     "ffffe90c02"},
    {"vp8 delta, hkdf, aes-256, count 0xfffe", 32, 0, 15, KW_FRAME_VP8_DELTA, 1, 3000, 0xfffe,
     "3102000102030405",
     "3102008a2f5ad0a622f6c96846f92a29ff05a4ac2a36e7c30000000100000bb8ffff0bba0c0f"},
};

static void test_frame_known_answers(void)
{
    for (size_t k = 0; k < sizeof KATS / sizeof KATS[0]; k++) {
        const frame_kat *t = &KATS[k];
        uint8_t plain[128], want[160], out[160], back[160];
        int pn = kwt_hex(t->plain, plain, sizeof plain);
        int wn = kwt_hex(t->frame, want, sizeof want);
        kw_frame_cryptor *c = new_cryptor(t->aes_bytes, NULL);
        if (!KWT_CHECK(c != NULL && pn > 0 && wn == pn + KW_FRAME_OVERHEAD)) {
            kw_frame_cryptor_free(c);
            continue;
        }
        kw_err rc = t->string_key
                        ? kw_frame_cryptor_set_key_string(c, t->index, HORSE, strlen(HORSE))
                        : kw_frame_cryptor_set_key_raw(c, t->index, key00);
        KWT_ERR(rc, KW_OK);
        KWT_ERR(kw_frame_cryptor_set_send_index(c, t->index), KW_OK);
        size_t n = 0;
        KWT_ERR(kw_frame_encrypt_with_count(c, t->kind, t->ssrc, t->ts, t->count, plain, (size_t)pn,
                                            out, sizeof out, &n),
                KW_OK);
        KWT_EQ(n, wn);
        if (!KWT_CHECK(memcmp(out, want, (size_t)wn) == 0))
            printf("    KAT %s differs\n", t->name);
        KWT_ERR(kw_frame_decrypt(c, t->kind, want, (size_t)wn, back, sizeof back, &n), KW_OK);
        KWT_EQ(n, pn);
        KWT_MEMEQ(back, plain, (size_t)pn);
        kw_frame_cryptor_free(c);
    }
}

/* Every kind, both derivations, both key sizes, several body lengths, via own counters. */
static void test_round_trips(void)
{
    static const kw_frame_kind kinds[] = {KW_FRAME_VP8_KEY, KW_FRAME_VP8_DELTA, KW_FRAME_AUDIO};
    static const size_t bodies[] = {0, 1, 15, 16, 17, 1024, 5000};
    static uint8_t plain[6000], enc[6100], dec[6100];
    for (int aes = 16; aes <= 32; aes += 16) {
        kw_frame_cryptor *tx = new_cryptor((size_t)aes, NULL);
        kw_frame_cryptor *rx = new_cryptor((size_t)aes, NULL);
        if (!KWT_CHECK(tx != NULL && rx != NULL))
            goto next;
        /* Slot 3: raw key; slot 9: string key (the base64 text of a key, as Flutter). */
        const char *text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        KWT_ERR(kw_frame_cryptor_set_key_raw(tx, 3, key00), KW_OK);
        KWT_ERR(kw_frame_cryptor_set_key_raw(rx, 3, key00), KW_OK);
        KWT_ERR(kw_frame_cryptor_set_key_string(tx, 9, text, strlen(text)), KW_OK);
        KWT_ERR(kw_frame_cryptor_set_key_string(rx, 9, text, strlen(text)), KW_OK);
        for (unsigned slot = 3; slot <= 9; slot += 6) {
            KWT_ERR(kw_frame_cryptor_set_send_index(tx, slot), KW_OK);
            for (size_t k = 0; k < 3; k++) {
                for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
                    size_t h = kw_frame_header_bytes(kinds[k]);
                    size_t n = make_plain(kinds[k], bodies[b], plain), en = 0, dn = 0;
                    KWT_ERR(kw_frame_encrypt(tx, kinds[k], 0xabcdef01, 90000, plain, n, enc,
                                             sizeof enc, &en),
                            KW_OK);
                    KWT_EQ(en, n + KW_FRAME_OVERHEAD);
                    KWT_MEMEQ(enc, plain, h); /* header stays readable */
                    /* the body is encrypted (could match by chance only for tiny bodies) */
                    if (bodies[b] >= 16)
                        KWT_CHECK(memcmp(enc + h, plain + h, bodies[b]) != 0);
                    KWT_EQ(enc[en - 2], 0x0C);
                    KWT_EQ(enc[en - 1], slot);
                    KWT_ERR(kw_frame_decrypt(rx, kinds[k], enc, en, dec, sizeof dec, &dn), KW_OK);
                    KWT_EQ(dn, n);
                    KWT_MEMEQ(dec, plain, n);
                }
            }
        }
    next:
        kw_frame_cryptor_free(tx);
        kw_frame_cryptor_free(rx);
    }
}

/* out == in for both directions (the buffer holds len + overhead). */
static void test_in_place(void)
{
    uint8_t buf[200], plain[200];
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, key00), KW_OK);
    size_t n = make_plain(KW_FRAME_VP8_KEY, 100, plain), en = 0, dn = 0;
    memcpy(buf, plain, n);
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_VP8_KEY, 5, 6, buf, n, buf, sizeof buf, &en), KW_OK);
    KWT_EQ(en, n + 30);
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_VP8_KEY, buf, en, buf, sizeof buf, &dn), KW_OK);
    KWT_EQ(dn, n);
    KWT_MEMEQ(buf, plain, n);
    kw_frame_cryptor_free(c);
}

/*
 * Flipping any one bit anywhere: header, ciphertext, tag or IV fail authentication; the
 * IV-length byte is a malformed frame; the key index points at an empty slot.
 */
static void test_tamper_every_byte(void)
{
    static const kw_frame_kind kinds[] = {KW_FRAME_VP8_KEY, KW_FRAME_VP8_DELTA, KW_FRAME_AUDIO};
    uint8_t plain[64], enc[128], bad[128], out[128];
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 4, key00), KW_OK);
    KWT_ERR(kw_frame_cryptor_set_send_index(c, 4), KW_OK);
    for (size_t k = 0; k < 3; k++) {
        size_t n = make_plain(kinds[k], 20, plain), en = 0, on = 0;
        KWT_ERR(kw_frame_encrypt(c, kinds[k], 77, 88, plain, n, enc, sizeof enc, &en), KW_OK);
        int wrong = 0;
        for (size_t i = 0; i < en; i++) {
            memcpy(bad, enc, en);
            bad[i] ^= 0x01;
            kw_err want = i == en - 2   ? KW_ERR_INVALID_MESSAGE
                          : i == en - 1 ? KW_ERR_NO_KEY /* slot 5 is empty */
                                        : KW_ERR_FRAME_AUTH;
            memset(out, 0xAA, sizeof out);
            kw_err got = kw_frame_decrypt(c, kinds[k], bad, en, out, sizeof out, &on);
            if (got != want || on != 0) {
                wrong++;
                printf("    kind %d byte %zu: %s\n", (int)kinds[k], i, kw_err_name(got));
            }
            /* no unauthenticated plaintext is left behind */
            if (got == KW_ERR_FRAME_AUTH) {
                uint8_t zero[64] = {0};
                KWT_MEMEQ(out + kw_frame_header_bytes(kinds[k]), zero, 20);
            }
        }
        KWT_EQ(wrong, 0);
    }
    kw_frame_cryptor_free(c);
}

/* Decrypting as another kind changes the AAD length: authentication fails. */
static void test_wrong_kind_fails(void)
{
    uint8_t plain[64], enc[128], out[128];
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, key00), KW_OK);
    size_t n = make_plain(KW_FRAME_VP8_KEY, 30, plain), en = 0, on = 0;
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_VP8_KEY, 1, 2, plain, n, enc, sizeof enc, &en), KW_OK);
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_VP8_DELTA, enc, en, out, sizeof out, &on),
            KW_ERR_FRAME_AUTH);
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_FRAME_AUTH);
    KWT_ERR(kw_frame_decrypt(c, (kw_frame_kind)9, enc, en, out, sizeof out, &on),
            KW_ERR_INVALID_ARGUMENT);
    kw_frame_cryptor_free(c);
}

/* Key slots: another key, an empty slot, an index past the ring, replacing and clearing. */
static void test_key_slots(void)
{
    uint8_t plain[64], enc[128], out[128], other[32];
    memset(other, 0x5a, sizeof other);
    kw_frame_cryptor *tx = new_cryptor(16, NULL), *rx = new_cryptor(16, NULL);
    kw_frame_cryptor *big = new_cryptor(32, NULL);
    if (!KWT_CHECK(tx != NULL && rx != NULL && big != NULL))
        goto done;
    size_t n = make_plain(KW_FRAME_AUDIO, 40, plain), en = 0, on = 0;

    /* no key at the send index yet */
    KWT_ERR(kw_frame_encrypt(tx, KW_FRAME_AUDIO, 1, 2, plain, n, enc, sizeof enc, &en),
            KW_ERR_NO_KEY);
    KWT_EQ(en, 0);
    /* setting a key never moves the send index (still 0) */
    KWT_ERR(kw_frame_cryptor_set_key_raw(tx, 6, key00), KW_OK);
    KWT_ERR(kw_frame_encrypt(tx, KW_FRAME_AUDIO, 1, 2, plain, n, enc, sizeof enc, &en),
            KW_ERR_NO_KEY);
    KWT_ERR(kw_frame_cryptor_set_send_index(tx, 6), KW_OK);
    KWT_ERR(kw_frame_encrypt(tx, KW_FRAME_AUDIO, 1, 2, plain, n, enc, sizeof enc, &en), KW_OK);
    KWT_EQ(enc[en - 1], 6);

    /* receiver: slot empty, then another key there, then the right one */
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_NO_KEY);
    KWT_ERR(kw_frame_cryptor_set_key_raw(rx, 6, other), KW_OK);
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_FRAME_AUTH);
    KWT_ERR(kw_frame_cryptor_set_key_raw(rx, 6, key00), KW_OK); /* replaces */
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_OK);
    KWT_MEMEQ(out, plain, n);
    /* the same key through the string form is a different AES key */
    KWT_ERR(kw_frame_cryptor_set_key_string(rx, 6, "AAECAwQF", 8), KW_OK);
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_FRAME_AUTH);
    /* a 256-bit cryptor derives another key from the same media key */
    KWT_ERR(kw_frame_cryptor_set_key_raw(big, 6, key00), KW_OK);
    KWT_ERR(kw_frame_decrypt(big, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on),
            KW_ERR_FRAME_AUTH);
    /* cleared slot */
    KWT_ERR(kw_frame_cryptor_clear_key(rx, 6), KW_OK);
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_NO_KEY);
    /* key index past the keyring (16, 255) is no key, even if every slot is set */
    for (unsigned i = 0; i < KW_FRAME_KEYRING_SIZE; i++)
        KWT_ERR(kw_frame_cryptor_set_key_raw(rx, i, key00), KW_OK);
    enc[en - 1] = 16;
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_NO_KEY);
    enc[en - 1] = 255;
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_ERR_NO_KEY);
    /* another index with the same key: the key index is not authenticated, GCM still is */
    enc[en - 1] = 0;
    KWT_ERR(kw_frame_decrypt(rx, KW_FRAME_AUDIO, enc, en, out, sizeof out, &on), KW_OK);
    /* the sender's cleared send slot */
    KWT_ERR(kw_frame_cryptor_clear_key(tx, 6), KW_OK);
    KWT_ERR(kw_frame_encrypt(tx, KW_FRAME_AUDIO, 1, 2, plain, n, enc, sizeof enc, &en),
            KW_ERR_NO_KEY);
done:
    kw_frame_cryptor_free(tx);
    kw_frame_cryptor_free(rx);
    kw_frame_cryptor_free(big);
}

/* IV = SSRC || ts || ts - count (BE); counts per SSRC from a random start, mod 0xffff. */
static void test_iv_layout_and_counters(void)
{
    script_rnd s = {.values = {0x0000fffe, 0x00010005, 0xffffffff}, .n = 3};
    kw_random rnd = {script_fill, &s};
    uint8_t plain[16], enc[64];
    kw_frame_cryptor *c = new_cryptor(16, &rnd);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, key00), KW_OK);
    size_t n = make_plain(KW_FRAME_AUDIO, 3, plain), en = 0;

    /* SSRC A starts at 0xfffe: counts 0xfffe, 0, 1 (wraps at 0xffff like LiveKit's %). */
    static const uint32_t want_a[] = {0xfffe, 0, 1};
    for (int i = 0; i < 3; i++) {
        uint32_t ts = 1000000 + 960 * (uint32_t)i;
        KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 0xa1a2a3a4, ts, plain, n, enc, sizeof enc, &en),
                KW_OK);
        const uint8_t *iv = enc + en - KW_FRAME_TRAILER_BYTES;
        KWT_EQ(be32(iv), 0xa1a2a3a4);
        KWT_EQ(be32(iv + 4), ts);
        KWT_EQ(be32(iv + 8), ts - want_a[i]);
    }
    /* SSRC B: start 0x00010005 mod 0xffff = 6; a timestamp of 2 wraps ts - count. */
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 7, 2, plain, n, enc, sizeof enc, &en), KW_OK);
    KWT_EQ(be32(enc + en - 14 + 8), 0xfffffffc); /* 2 - 6 */
    /* A keeps its own count (2), B continues (7) */
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 0xa1a2a3a4, 50, plain, n, enc, sizeof enc, &en),
            KW_OK);
    KWT_EQ(be32(enc + en - 14 + 8), 48);
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 7, 50, plain, n, enc, sizeof enc, &en), KW_OK);
    KWT_EQ(be32(enc + en - 14 + 8), 43);
    /* SSRC C: 0xffffffff mod 0xffff = 0 */
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 9, 0, plain, n, enc, sizeof enc, &en), KW_OK);
    KWT_EQ(be32(enc + en - 14 + 8), 0);
    KWT_EQ(s.calls, 3); /* one draw per new SSRC, none per frame */

    /* With an explicit count only count mod 0xffff matters. */
    uint8_t e0[64], e1[64];
    size_t n0 = 0, n1 = 0;
    KWT_ERR(kw_frame_encrypt_with_count(c, KW_FRAME_AUDIO, 1, 10, 0, plain, n, e0, 64, &n0), KW_OK);
    KWT_ERR(kw_frame_encrypt_with_count(c, KW_FRAME_AUDIO, 1, 10, 0xffff, plain, n, e1, 64, &n1),
            KW_OK);
    KWT_CHECK(n0 == n1 && memcmp(e0, e1, n0) == 0);
    KWT_ERR(kw_frame_encrypt_with_count(c, KW_FRAME_AUDIO, 1, 10, 0x10000, plain, n, e1, 64, &n1),
            KW_OK);
    KWT_EQ(be32(e1 + n1 - 14 + 8), 9);
    KWT_ERR(
        kw_frame_encrypt_with_count(c, KW_FRAME_AUDIO, 1, 10, 0xffffffff, plain, n, e1, 64, &n1),
        KW_OK);
    KWT_EQ(be32(e1 + n1 - 14 + 8), 10); /* 0xffffffff mod 0xffff == 0 */
    KWT_EQ(s.calls, 3);                 /* the explicit form never touches the table */
    kw_frame_cryptor_free(c);
}

/* A full SSRC table gives up the least recently used entry; a failing random source. */
static void test_ssrc_table_eviction(void)
{
    script_rnd s = {.n = 16};
    for (uint32_t i = 0; i < 16; i++)
        s.values[i] = 100 * (i + 1); /* SSRC number i starts at count 100 * (i + 1) */
    kw_random rnd = {script_fill, &s};
    uint8_t plain[8], enc[64];
    kw_frame_cryptor *c = new_cryptor(16, &rnd);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, key00), KW_OK);
    size_t n = make_plain(KW_FRAME_AUDIO, 2, plain), en = 0;
#define COUNT_OF(ssrc)                                                                             \
    (kw_frame_encrypt(c, KW_FRAME_AUDIO, (ssrc), 100000, plain, n, enc, sizeof enc, &en) == KW_OK  \
         ? 100000 - be32(enc + en - 6)                                                             \
         : 0xdeadu)
    for (uint32_t i = 0; i < KW_FRAME_SSRC_SLOTS; i++)
        KWT_EQ(COUNT_OF(1000 + i), 100 * (i + 1));
    KWT_EQ(COUNT_OF(1000), 101);  /* SSRC 1000 is now the most recent; 1001 the least */
    KWT_EQ(COUNT_OF(2000), 900);  /* a ninth SSRC takes 1001's entry */
    KWT_EQ(COUNT_OF(1000), 102);  /* kept */
    KWT_EQ(COUNT_OF(1002), 301);  /* kept */
    KWT_EQ(COUNT_OF(1001), 1000); /* came back: a fresh random start */
    KWT_EQ(s.calls, 10);

    /* The random source fails: a new SSRC cannot start, a known one still works. */
    s.fail = 1;
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 3000, 1, plain, n, enc, sizeof enc, &en),
            KW_ERR_CRYPTO);
    KWT_EQ(en, 0);
    KWT_EQ(COUNT_OF(1000), 103);
#undef COUNT_OF
    kw_frame_cryptor_free(c);
}

/* Lengths at the edges, for each kind, in both directions. */
static void test_boundaries(void)
{
    static const kw_frame_kind kinds[] = {KW_FRAME_VP8_KEY, KW_FRAME_VP8_DELTA, KW_FRAME_AUDIO};
    uint8_t plain[64], enc[128], out[128];
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, key00), KW_OK);
    for (size_t k = 0; k < 3; k++) {
        kw_frame_kind kind = kinds[k];
        size_t h = kw_frame_header_bytes(kind), en = 0, on = 0;
        make_plain(kind, 0, plain);
        /* encrypt: exactly the header (empty body) works; header - 1 is too short */
        KWT_ERR(kw_frame_encrypt(c, kind, 1, 1, plain, h, enc, h + 30, &en), KW_OK);
        KWT_EQ(en, h + 30);
        if (h > 1)
            KWT_ERR(kw_frame_encrypt(c, kind, 1, 1, plain, h - 1, enc, sizeof enc, &en),
                    KW_ERR_FRAME_TOO_SHORT);
        KWT_ERR(kw_frame_encrypt(c, kind, 1, 1, plain, h, enc, h + 29, &en),
                KW_ERR_BUFFER_TOO_SMALL);
        KWT_EQ(en, 0);
        /* re-encrypt to have a good minimal frame, then decrypt at the edges */
        KWT_ERR(kw_frame_encrypt(c, kind, 1, 1, plain, h, enc, sizeof enc, &en), KW_OK);
        KWT_ERR(kw_frame_decrypt(c, kind, enc, h + 30, out, h, &on), KW_OK);
        KWT_EQ(on, h);
        KWT_MEMEQ(out, plain, h);
        if (h > 0)
            KWT_ERR(kw_frame_decrypt(c, kind, enc, h + 30, out, h - 1, &on),
                    KW_ERR_BUFFER_TOO_SMALL);
        /* header + trailer + tag - 1: too short; so is only a trailer */
        KWT_ERR(kw_frame_decrypt(c, kind, enc + 1, h + 29, out, sizeof out, &on),
                KW_ERR_FRAME_TOO_SHORT);
        KWT_ERR(kw_frame_decrypt(c, kind, enc + en - 14, 14, out, sizeof out, &on),
                KW_ERR_FRAME_TOO_SHORT);
        KWT_ERR(kw_frame_decrypt(c, kind, enc + en - 1, 1, out, sizeof out, &on),
                KW_ERR_FRAME_TOO_SHORT);
        KWT_EQ(on, 0);
    }
    kw_frame_cryptor_free(c);
}

/* Empty frames pass through both ways, as LiveKit does for DTX, with or without a key. */
static void test_empty_frames_pass_through(void)
{
    uint8_t buf[32] = {0};
    size_t n = 99;
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_VP8_KEY, 1, 2, buf, 0, buf, sizeof buf, &n), KW_OK);
    KWT_EQ(n, 0);
    n = 99;
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_AUDIO, buf, 0, buf, 0, &n), KW_OK);
    KWT_EQ(n, 0);
    n = 99;
    KWT_ERR(kw_frame_encrypt_with_count(c, KW_FRAME_AUDIO, 1, 2, 3, buf, 0, buf, 0, &n), KW_OK);
    KWT_EQ(n, 0);
    kw_frame_cryptor_free(c);
}

static void test_null_arguments(void)
{
    uint8_t buf[64] = {0}, out[128];
    size_t n = 0;
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    KWT_ERR(kw_frame_cryptor_set_key_raw(c, 0, key00), KW_OK);
    KWT_ERR(kw_frame_encrypt(NULL, KW_FRAME_AUDIO, 1, 2, buf, 5, out, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 1, 2, NULL, 5, out, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 1, 2, buf, 5, NULL, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_encrypt(c, KW_FRAME_AUDIO, 1, 2, buf, 5, out, sizeof out, NULL),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_encrypt(c, (kw_frame_kind)0, 1, 2, buf, 5, out, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_decrypt(NULL, KW_FRAME_AUDIO, buf, 40, out, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_AUDIO, NULL, 40, out, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_AUDIO, buf, 40, NULL, sizeof out, &n),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_frame_decrypt(c, KW_FRAME_AUDIO, buf, 40, out, sizeof out, NULL),
            KW_ERR_INVALID_ARGUMENT);
    kw_frame_cryptor_free(c);
}

/*
 * Garbage never crashes and never decrypts: random lengths 0..100 of random bytes (half of
 * them with a well-formed trailer so they reach GCM), then every truncation of a good frame
 * from either end. Run under ASan + UBSan this also proves no read outside the input.
 */
static void test_garbage_and_truncations(void)
{
    static const kw_frame_kind kinds[] = {KW_FRAME_VP8_KEY, KW_FRAME_VP8_DELTA, KW_FRAME_AUDIO};
    uint32_t x = 0x9e3779b9;
    kw_frame_cryptor *c = new_cryptor(16, NULL);
    if (!KWT_CHECK(c != NULL))
        return;
    for (unsigned i = 0; i < 8; i++) /* half the keyring set */
        KWT_ERR(kw_frame_cryptor_set_key_raw(c, i, key00), KW_OK);
    int unexpected = 0;
    for (int round = 0; round < 3000; round++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t len = x % 101;
        kw_frame_kind kind = kinds[(x >> 8) % 3];
        /* exact-size heap buffers so ASan sees any overread */
        uint8_t *in = malloc(len ? len : 1), *out = malloc(len ? len : 1);
        if (!KWT_CHECK(in != NULL && out != NULL)) {
            free(in);
            free(out);
            return;
        }
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            in[j] = (uint8_t)x;
        }
        if (round % 2 == 0 && len >= 2) {
            in[len - 2] = 0x0C;
            in[len - 1] = (uint8_t)(x % 20); /* 0..7 set, 8..19 not */
        }
        size_t on = 77;
        kw_err rc = kw_frame_decrypt(c, kind, in, len, out, len, &on);
        size_t h = kw_frame_header_bytes(kind);
        int ok = len == 0       ? rc == KW_OK && on == 0
                 : len < h + 30 ? rc == KW_ERR_FRAME_TOO_SHORT
                                : (rc == KW_ERR_INVALID_MESSAGE || rc == KW_ERR_NO_KEY ||
                                   rc == KW_ERR_FRAME_AUTH);
        if (!ok || (len > 0 && on != 0)) {
            unexpected++;
            printf("    len %zu kind %d: %s\n", len, (int)kind, kw_err_name(rc));
        }
        free(in);
        free(out);
    }
    KWT_EQ(unexpected, 0);

    for (size_t k = 0; k < 3; k++) {
        uint8_t plain[64], enc[128];
        size_t n = make_plain(kinds[k], 17, plain), en = 0;
        KWT_ERR(kw_frame_encrypt(c, kinds[k], 3, 4, plain, n, enc, sizeof enc, &en), KW_OK);
        unexpected = 0;
        for (size_t len = 0; len < en; len++) {
            for (int from_front = 0; from_front <= 1; from_front++) {
                uint8_t *in = malloc(len ? len : 1), out[128];
                if (!KWT_CHECK(in != NULL))
                    return;
                memcpy(in, from_front ? enc + (en - len) : enc, len);
                size_t on = 0;
                kw_err rc = kw_frame_decrypt(c, kinds[k], in, len, out, sizeof out, &on);
                if (len == 0 ? rc != KW_OK : rc == KW_OK)
                    unexpected++;
                free(in);
            }
        }
        KWT_EQ(unexpected, 0);
    }
    kw_frame_cryptor_free(c);
}

int main(void)
{
    kwt_hex(KEY_00_1F, key00, sizeof key00);
    KWT_RUN(test_constants);
    KWT_RUN(test_derive_known_answers);
    KWT_RUN(test_derive_bad_arguments);
    KWT_RUN(test_create_and_slots_bad_arguments);
    KWT_RUN(test_frame_known_answers);
    KWT_RUN(test_round_trips);
    KWT_RUN(test_in_place);
    KWT_RUN(test_tamper_every_byte);
    KWT_RUN(test_wrong_kind_fails);
    KWT_RUN(test_key_slots);
    KWT_RUN(test_iv_layout_and_counters);
    KWT_RUN(test_ssrc_table_eviction);
    KWT_RUN(test_boundaries);
    KWT_RUN(test_empty_frames_pass_through);
    KWT_RUN(test_null_arguments);
    KWT_RUN(test_garbage_and_truncations);
    return kwt_finish();
}
