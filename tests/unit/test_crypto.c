/*
 * test_crypto.c — known-answer tests for lib/crypto.h (one group per primitive, inputs and
 * expected bytes from the RFCs and NIST documents named at each table), and for the
 * Signal crypto provider built on it (lib/signal_provider.c): a deterministic random
 * source gives a known Curve25519 key, signatures verify, HKDF and the fingerprint
 * (which reuses one SHA-512 context across finals) match values computed independently.
 */
#include <stdlib.h>
#include <string.h>

#include <curve.h>
#include <fingerprint.h>
#include <hkdf.h>

#include "crypto.h"
#include "kwtest.h"
#include "signal_glue.h"

/* Decodes hex into a buffer the caller frees; *n gets the length. NULL hex means empty. */
static uint8_t *unhex(const char *hex, size_t *n)
{
    size_t len = hex ? strlen(hex) / 2 : 0;
    uint8_t *b = malloc(len ? len : 1);
    int got = hex ? kwt_hex(hex, b, len) : 0;
    KWT_EQ(got, (int)len);
    *n = len;
    return b;
}

/* Checks out[0..n) equals the hex string want, printing both on mismatch. */
static void check_hex(const uint8_t *out, size_t n, const char *want, const char *what)
{
    size_t wn = 0;
    uint8_t *w = unhex(want, &wn);
    int ok = wn == n && memcmp(out, w, n) == 0;
    if (!KWT_CHECK(ok)) {
        printf("    %s: got ", what);
        for (size_t i = 0; i < n; i++)
            printf("%02x", out[i]);
        printf("\n    want %s\n", want);
    }
    free(w);
}

/* ---- SHA-256 / SHA-512 (FIPS 180-2 appendix examples) ---- */

static void test_sha256_abc(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[KW_SHA256_BYTES];
        KWT_ERR(kw_sha256((const uint8_t *)cases[i].in, strlen(cases[i].in), out), KW_OK);
        check_hex(out, sizeof out, cases[i].want, cases[i].in);
    }
}

#define SHA512_ABC                                                                                 \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c"       \
    "23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define SHA512_EMPTY                                                                               \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318"       \
    "d2877eec2f63b931bd47417a81a538327af927da3e"

/* The Signal library calls final and then keeps updating the same context. */
static void test_sha512_abc_and_reuse_after_final(void)
{
    kw_sha512 *s = kw_sha512_new();
    if (!KWT_CHECK(s != NULL))
        return;
    uint8_t out[KW_SHA512_BYTES];
    KWT_ERR(kw_sha512_update(s, (const uint8_t *)"abc", 3), KW_OK);
    KWT_ERR(kw_sha512_final(s, out), KW_OK);
    check_hex(out, sizeof out, SHA512_ABC, "first use");
    /* Second use, split across updates: nothing of the first message may remain. */
    KWT_ERR(kw_sha512_update(s, (const uint8_t *)"a", 1), KW_OK);
    KWT_ERR(kw_sha512_update(s, (const uint8_t *)"bc", 2), KW_OK);
    KWT_ERR(kw_sha512_final(s, out), KW_OK);
    check_hex(out, sizeof out, SHA512_ABC, "after final");
    /* A final with no update since the last final is the digest of "". */
    KWT_ERR(kw_sha512_final(s, out), KW_OK);
    check_hex(out, sizeof out, SHA512_EMPTY, "empty after final");
    kw_sha512_free(s);
    kw_sha512_free(NULL);
}

/* ---- HMAC-SHA256 (RFC 4231 test cases 1, 2, 6; empty key and message) ---- */

static const struct {
    const char *name;
    const char *key_hex; /* NULL: empty key */
    const char *msg;
    const char *want;
} hmac_cases[] = {
    {"rfc4231 tc1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"rfc4231 tc2", "4a656665", "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"rfc4231 tc6 key > block",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"empty key, empty message", NULL, "",
     "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"},
};

static void test_hmac_sha256_one_shot(void)
{
    for (size_t i = 0; i < sizeof hmac_cases / sizeof hmac_cases[0]; i++) {
        size_t kn = 0;
        uint8_t *key = unhex(hmac_cases[i].key_hex, &kn);
        uint8_t out[KW_SHA256_BYTES];
        KWT_ERR(kw_hmac_sha256(key, kn, (const uint8_t *)hmac_cases[i].msg,
                               strlen(hmac_cases[i].msg), out),
                KW_OK);
        check_hex(out, sizeof out, hmac_cases[i].want, hmac_cases[i].name);
        free(key);
    }
}

static void test_hmac_sha256_streaming(void)
{
    for (size_t i = 0; i < sizeof hmac_cases / sizeof hmac_cases[0]; i++) {
        size_t kn = 0;
        uint8_t *key = unhex(hmac_cases[i].key_hex, &kn);
        kw_hmac *h = kw_hmac_new(key, kn);
        free(key);
        if (!KWT_CHECK(h != NULL))
            continue;
        /* Byte by byte, so every split point of the message is an update boundary. */
        const char *m = hmac_cases[i].msg;
        for (size_t j = 0; m[j] != '\0'; j++)
            KWT_ERR(kw_hmac_update(h, (const uint8_t *)m + j, 1), KW_OK);
        uint8_t out[KW_SHA256_BYTES];
        KWT_ERR(kw_hmac_final(h, out), KW_OK);
        check_hex(out, sizeof out, hmac_cases[i].want, hmac_cases[i].name);
        kw_hmac_free(h);
    }
    kw_hmac_free(NULL);
}

/* ---- AES-128 CBC and CTR (NIST SP 800-38A F.2.1 and F.5.1) ---- */

#define AES_KEY "2b7e151628aed2a6abf7158809cf4f3c"
#define AES_PT                                                                                     \
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1"       \
    "191a0a52eff69f2445df4f9b17ad2b417be66c3710"
#define CBC_IV "000102030405060708090a0b0c0d0e0f"
#define CBC_CT                                                                                     \
    "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e6"       \
    "9e222295163ff1caa1681fac09120eca307586e1a7"
#define CTR_IV "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
#define CTR_CT                                                                                     \
    "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09"       \
    "020db03eab1e031dda2fbe03d1792170a0f3009cee"

static void test_aes_cbc_nist(void)
{
    size_t kn, ivn, pn, cn;
    uint8_t *key = unhex(AES_KEY, &kn), *iv = unhex(CBC_IV, &ivn);
    uint8_t *pt = unhex(AES_PT, &pn), *nist = unhex(CBC_CT, &cn);
    uint8_t *ct = NULL, *back = NULL;
    size_t ct_len = 0, back_len = 0;
    /* 64 bytes + PKCS#7 = 80 bytes; the first 64 are NIST's (the padding block follows). */
    KWT_ERR(kw_aes(KW_AES_CBC, 1, key, kn, iv, pt, pn, &ct, &ct_len), KW_OK);
    KWT_EQ(ct_len, 80);
    if (ct_len == 80) {
        check_hex(ct, 64, CBC_CT, "cbc ciphertext");
        check_hex(ct + 64, 16, "8cb82807230e1321d3fae00d18cc2012", "cbc padding block");
    }
    KWT_ERR(kw_aes(KW_AES_CBC, 0, key, kn, iv, ct, ct_len, &back, &back_len), KW_OK);
    KWT_EQ(back_len, 64);
    KWT_CHECK(back_len == pn && memcmp(back, pt, pn) == 0);
    free(ct);
    free(back);
    free(key);
    free(iv);
    free(pt);
    free(nist);
}

/* PKCS#7 boundaries: the padded length is the next multiple of 16 strictly above len. */
static void test_aes_cbc_padding_lengths(void)
{
    static const struct {
        size_t len, want;
    } cases[] = {{0, 16}, {1, 16}, {15, 16}, {16, 32}, {17, 32}, {31, 32}, {32, 48}};
    uint8_t key[16] = {1}, iv[16] = {2}, pt[32];
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *ct = NULL, *back = NULL;
        size_t ct_len = 0, back_len = 0;
        KWT_ERR(kw_aes(KW_AES_CBC, 1, key, 16, iv, pt, cases[i].len, &ct, &ct_len), KW_OK);
        KWT_EQ(ct_len, cases[i].want);
        KWT_ERR(kw_aes(KW_AES_CBC, 0, key, 16, iv, ct, ct_len, &back, &back_len), KW_OK);
        KWT_EQ(back_len, cases[i].len);
        KWT_CHECK(back_len == cases[i].len && memcmp(back, pt, back_len) == 0);
        free(ct);
        free(back);
    }
}

static void test_aes_cbc_bad_padding_and_lengths(void)
{
    size_t kn, ivn, cn;
    uint8_t *key = unhex(AES_KEY, &kn), *iv = unhex(CBC_IV, &ivn);
    uint8_t *nist = unhex(CBC_CT, &cn);
    uint8_t *out = (uint8_t *)"sentinel";
    size_t out_len = 99;
    /*
     * NIST's ciphertext without our padding block decrypts to a last block ending in
     * ...37 10: 0x10 asks for 16 bytes of 0x10, which are not there.
     */
    KWT_ERR(kw_aes(KW_AES_CBC, 0, key, kn, iv, nist, cn, &out, &out_len), KW_ERR_DECRYPT);
    KWT_CHECK(out == NULL);
    KWT_EQ(out_len, 0);
    /* Not a whole number of blocks, or nothing at all, cannot carry padding. */
    KWT_ERR(kw_aes(KW_AES_CBC, 0, key, kn, iv, nist, cn - 1, &out, &out_len), KW_ERR_DECRYPT);
    KWT_ERR(kw_aes(KW_AES_CBC, 0, key, kn, iv, nist, 0, &out, &out_len), KW_ERR_DECRYPT);
    KWT_CHECK(out == NULL);
    /* Key lengths: 16, 24, 32 accepted, anything else refused before any work. */
    static const struct {
        size_t len;
        kw_err want;
    } keys[] = {{0, KW_ERR_INVALID_ARGUMENT},
                {15, KW_ERR_INVALID_ARGUMENT},
                {16, KW_OK},
                {17, KW_ERR_INVALID_ARGUMENT},
                {24, KW_OK},
                {31, KW_ERR_INVALID_ARGUMENT},
                {32, KW_OK},
                {33, KW_ERR_INVALID_ARGUMENT}};
    uint8_t big_key[33] = {0};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        for (int mode = KW_AES_CBC; mode <= KW_AES_CTR; mode++) {
            out = NULL;
            KWT_ERR(
                kw_aes((kw_aes_mode)mode, 1, big_key, keys[i].len, iv, nist, 16, &out, &out_len),
                keys[i].want);
            KWT_CHECK((out != NULL) == (keys[i].want == KW_OK));
            free(out);
        }
    }
    free(key);
    free(iv);
    free(nist);
}

static void test_aes_ctr_nist(void)
{
    size_t kn, ivn, pn, cn;
    uint8_t *key = unhex(AES_KEY, &kn), *iv = unhex(CTR_IV, &ivn);
    uint8_t *pt = unhex(AES_PT, &pn), *nist = unhex(CTR_CT, &cn);
    /* Full 64 bytes, then lengths that end inside a block: CTR never pads. */
    static const size_t lens[] = {64, 17, 1, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *ct = NULL, *back = NULL;
        size_t ct_len = 99, back_len = 99;
        KWT_ERR(kw_aes(KW_AES_CTR, 1, key, kn, iv, pt, lens[i], &ct, &ct_len), KW_OK);
        KWT_EQ(ct_len, lens[i]);
        KWT_CHECK(ct_len == lens[i] && memcmp(ct, nist, lens[i]) == 0);
        KWT_ERR(kw_aes(KW_AES_CTR, 0, key, kn, iv, ct, ct_len, &back, &back_len), KW_OK);
        KWT_EQ(back_len, lens[i]);
        KWT_CHECK(back_len == lens[i] && memcmp(back, pt, lens[i]) == 0);
        free(ct);
        free(back);
    }
    free(key);
    free(iv);
    free(pt);
    free(nist);
}

/* ---- HKDF-SHA256 (RFC 5869 A.1 and A.3) ---- */

static const struct {
    const char *name, *ikm, *salt, *info, *okm;
} hkdf_cases[] = {
    {"rfc5869 tc1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
     "f0f1f2f3f4f5f6f7f8f9",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"rfc5869 tc3 (no salt, no info)", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", NULL, NULL,
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

static void test_hkdf_sha256_rfc5869(void)
{
    for (size_t i = 0; i < sizeof hkdf_cases / sizeof hkdf_cases[0]; i++) {
        size_t in, sn, fn, on;
        uint8_t *ikm = unhex(hkdf_cases[i].ikm, &in), *salt = unhex(hkdf_cases[i].salt, &sn);
        uint8_t *info = unhex(hkdf_cases[i].info, &fn), *okm = unhex(hkdf_cases[i].okm, &on);
        uint8_t out[64];
        KWT_ERR(kw_hkdf_sha256(salt, sn, ikm, in, info, fn, out, on), KW_OK);
        check_hex(out, on, hkdf_cases[i].okm, hkdf_cases[i].name);
        /* A shorter output is a prefix of the longer one (expand is a stream). */
        KWT_ERR(kw_hkdf_sha256(salt, sn, ikm, in, info, fn, out, 16), KW_OK);
        KWT_MEMEQ(out, okm, 16);
        free(ikm);
        free(salt);
        free(info);
        free(okm);
    }
}

/* ---- PBKDF2-HMAC-SHA256 (RFC 7914 section 11) ---- */

static void test_pbkdf2_sha256_rfc7914(void)
{
    static const struct {
        const char *pass, *salt;
        uint32_t iterations;
        const char *want;
    } cases[] = {
        {"passwd", "salt", 1,
         "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664"
         "b39d77ef317c71b845b1e30bd509112041d3a19783"},
        {"Password", "NaCl", 80000,
         "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb84"
         "1b51c9b3176a272bdebba1d078478f62b397f33c8d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[64];
        KWT_ERR(kw_pbkdf2_sha256((const uint8_t *)cases[i].pass, strlen(cases[i].pass),
                                 (const uint8_t *)cases[i].salt, strlen(cases[i].salt),
                                 cases[i].iterations, out, sizeof out),
                KW_OK);
        check_hex(out, sizeof out, cases[i].want, cases[i].pass);
    }
    uint8_t out[32];
    KWT_ERR(kw_pbkdf2_sha256((const uint8_t *)"p", 1, (const uint8_t *)"s", 1, 0, out, sizeof out),
            KW_ERR_INVALID_ARGUMENT);
}

/* ---- AES-GCM (McGrew & Viega, "The Galois/Counter Mode of Operation", test cases) ---- */

#define GCM_K3  "feffe9928665731c6d6a8f9467308308"
#define GCM_IV3 "cafebabefacedbaddecaf888"
#define GCM_P3                                                                                     \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e"       \
    "2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define GCM_C3                                                                                     \
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a"       \
    "5aac84aa051ba30b396a0aac973d58e091473f5985"

static const struct {
    const char *name, *key, *iv, *aad, *pt, *ct, *tag;
} gcm_cases[] = {
    {"tc1 empty", "00000000000000000000000000000000", "000000000000000000000000", NULL, NULL, NULL,
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"tc2", "00000000000000000000000000000000", "000000000000000000000000", NULL,
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"tc3", GCM_K3, GCM_IV3, NULL, GCM_P3, GCM_C3, "4d5c2af327cd64a62cf35abd2ba6fab4"},
    /* tc4: the first 60 bytes of tc3's plaintext, with AAD. */
    {"tc4 aad", GCM_K3, GCM_IV3, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e"
     "2449a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a"
     "5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"tc13 aes-256 empty", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", NULL, NULL, NULL, "530f8afbc74536b9a963b4f1c4cb738b"},
    {"tc14 aes-256", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", NULL, "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
};

static void test_gcm_known_answers(void)
{
    for (size_t i = 0; i < sizeof gcm_cases / sizeof gcm_cases[0]; i++) {
        size_t kn, ivn, an, pn, cn, tn;
        uint8_t *key = unhex(gcm_cases[i].key, &kn), *iv = unhex(gcm_cases[i].iv, &ivn);
        uint8_t *aad = unhex(gcm_cases[i].aad, &an), *pt = unhex(gcm_cases[i].pt, &pn);
        uint8_t *ct = unhex(gcm_cases[i].ct, &cn), *tag = unhex(gcm_cases[i].tag, &tn);
        kw_gcm *g = kw_gcm_new(key, kn);
        KWT_CHECK(g != NULL);
        uint8_t out[64] = {0}, back[64] = {0}, got_tag[KW_GCM_TAG_BYTES];
        if (g != NULL) {
            /* Seal twice on one context: the key is set once, only the IV per message. */
            for (int round = 0; round < 2; round++) {
                KWT_ERR(kw_gcm_seal(g, iv, aad, an, pt, pn, out, got_tag), KW_OK);
                check_hex(out, pn, gcm_cases[i].ct ? gcm_cases[i].ct : "", gcm_cases[i].name);
                check_hex(got_tag, sizeof got_tag, gcm_cases[i].tag, gcm_cases[i].name);
            }
            KWT_ERR(kw_gcm_open(g, iv, aad, an, ct, cn, tag, back), KW_OK);
            KWT_CHECK(memcmp(back, pt, pn) == 0);
            /* In place: out may equal in. */
            memcpy(out, pt, pn);
            KWT_ERR(kw_gcm_seal(g, iv, aad, an, out, pn, out, got_tag), KW_OK);
            KWT_CHECK(memcmp(out, ct, cn) == 0);
            KWT_ERR(kw_gcm_open(g, iv, aad, an, out, pn, got_tag, out), KW_OK);
            KWT_CHECK(memcmp(out, pt, pn) == 0);
        }
        kw_gcm_free(g);
        free(key);
        free(iv);
        free(aad);
        free(pt);
        free(ct);
        free(tag);
    }
}

/* Each input that the tag covers, changed by one bit, must fail; the output is wiped. */
static void test_gcm_tamper_rejected(void)
{
    const size_t c = 3; /* tc4: has ciphertext and AAD */
    size_t kn, ivn, an, pn, cn, tn;
    uint8_t *key = unhex(gcm_cases[c].key, &kn), *iv = unhex(gcm_cases[c].iv, &ivn);
    uint8_t *aad = unhex(gcm_cases[c].aad, &an), *pt = unhex(gcm_cases[c].pt, &pn);
    uint8_t *ct = unhex(gcm_cases[c].ct, &cn), *tag = unhex(gcm_cases[c].tag, &tn);
    kw_gcm *g = kw_gcm_new(key, kn);
    if (!KWT_CHECK(g != NULL))
        goto done;
    enum {
        FLIP_TAG_FIRST,
        FLIP_TAG_LAST,
        FLIP_CT_FIRST,
        FLIP_CT_LAST,
        FLIP_AAD,
        FLIP_IV,
        DROP_AAD,
        SHORT_CT
    };
    for (int what = FLIP_TAG_FIRST; what <= SHORT_CT; what++) {
        uint8_t t[16], ivb[12], ctb[64], ab[32], out[64];
        memcpy(t, tag, 16);
        memcpy(ivb, iv, 12);
        memcpy(ctb, ct, cn);
        memcpy(ab, aad, an);
        size_t a_len = an, c_len = cn;
        if (what == FLIP_TAG_FIRST)
            t[0] ^= 1;
        if (what == FLIP_TAG_LAST)
            t[15] ^= 0x80;
        if (what == FLIP_CT_FIRST)
            ctb[0] ^= 1;
        if (what == FLIP_CT_LAST)
            ctb[cn - 1] ^= 0x80;
        if (what == FLIP_AAD)
            ab[an - 1] ^= 1;
        if (what == FLIP_IV)
            ivb[11] ^= 1;
        if (what == DROP_AAD)
            a_len = 0;
        if (what == SHORT_CT)
            c_len = cn - 1;
        memset(out, 0xAA, sizeof out);
        KWT_ERR(kw_gcm_open(g, ivb, ab, a_len, ctb, c_len, t, out), KW_ERR_DECRYPT);
        int wiped = 1;
        for (size_t i = 0; i < c_len; i++)
            wiped &= out[i] == 0;
        if (!KWT_CHECK(wiped))
            printf("    case %d: output not wiped\n", what);
    }
    /* The context still works after failures. */
    uint8_t out[64];
    KWT_ERR(kw_gcm_open(g, iv, aad, an, ct, cn, tag, out), KW_OK);
    KWT_CHECK(memcmp(out, pt, pn) == 0);
done:
    kw_gcm_free(g);
    free(key);
    free(iv);
    free(aad);
    free(pt);
    free(ct);
    free(tag);
}

static void test_gcm_key_lengths(void)
{
    static const struct {
        size_t len;
        int ok;
    } cases[] = {{0, 0}, {15, 0}, {16, 1}, {17, 0}, {24, 0}, {31, 0}, {32, 1}, {33, 0}};
    uint8_t key[33] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_gcm *g = kw_gcm_new(key, cases[i].len);
        if (!KWT_CHECK((g != NULL) == cases[i].ok))
            printf("    key of %zu bytes\n", cases[i].len);
        kw_gcm_free(g);
    }
    kw_gcm_free(NULL);
}

/* ---- kw_ct_memcmp, kw_wipe ---- */

static void test_ct_memcmp_and_wipe(void)
{
    static const struct {
        const char *a, *b;
        size_t len;
        int equal;
    } cases[] = {
        {"abcdef", "abcdef", 6, 1}, {"abcdef", "xbcdef", 6, 0},
        {"abcdef", "abcdex", 6, 0}, {"abcdef", "abcdex", 5, 1}, /* only len bytes count */
        {"a", "b", 0, 1},                                       /* nothing to compare */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r = kw_ct_memcmp(cases[i].a, cases[i].b, cases[i].len);
        if (!KWT_CHECK((r == 0) == cases[i].equal))
            printf("    case %zu\n", i);
    }
    uint8_t buf[40];
    memset(buf, 0x5A, sizeof buf);
    kw_wipe(buf + 4, 32);
    int ok = buf[3] == 0x5A && buf[36] == 0x5A;
    for (size_t i = 4; i < 36; i++)
        ok &= buf[i] == 0;
    KWT_CHECK(ok);
    kw_wipe(NULL, 16); /* harmless */
    kw_wipe(buf, 0);
    KWT_EQ(buf[0], 0x5A);
}

/* ---- The Signal crypto provider (lib/signal_provider.c) ---- */

/* A random source that counts 0, 1, 2, ... from where it left off, or fails. */
typedef struct counting_random {
    uint8_t next;
    int fail;
    size_t calls;
} counting_random;

static kw_err counting_fill(void *ctx, uint8_t *buf, size_t len)
{
    counting_random *r = ctx;
    r->calls++;
    if (r->fail)
        return KW_ERR_CRYPTO;
    for (size_t i = 0; i < len; i++)
        buf[i] = r->next++;
    return KW_OK;
}

/* X25519 of the clamped scalar 00 01 .. 1f (computed independently with Python). */
#define PUB_OF_COUNTING "058f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f"

static void test_signal_provider_random_key_and_signature(void)
{
    counting_random cr = {0, 0, 0};
    kw_random rnd = {counting_fill, &cr};
    signal_context *ctx = NULL;
    KWT_ERR(kw_signal_context_new(&rnd, &ctx), KW_OK);
    if (!KWT_CHECK(ctx != NULL))
        return;
    ec_key_pair *pair = NULL;
    KWT_EQ(curve_generate_key_pair(ctx, &pair), 0);
    KWT_CHECK(cr.calls > 0);
    signal_buffer *pub = NULL, *sig = NULL;
    if (pair != NULL) {
        KWT_EQ(ec_public_key_serialize(&pub, ec_key_pair_get_public(pair)), 0);
        KWT_EQ(signal_buffer_len(pub), 33);
        if (pub && signal_buffer_len(pub) == 33)
            check_hex(signal_buffer_data(pub), 33, PUB_OF_COUNTING, "public key");
        static const uint8_t msg[] = "signed pre-key bytes";
        KWT_EQ(curve_calculate_signature(ctx, &sig, ec_key_pair_get_private(pair), msg, sizeof msg),
               0);
        if (KWT_CHECK(sig != NULL && signal_buffer_len(sig) == 64)) {
            const ec_public_key *pk = ec_key_pair_get_public(pair);
            KWT_EQ(curve_verify_signature(pk, msg, sizeof msg, signal_buffer_data(sig), 64), 1);
            KWT_EQ(curve_verify_signature(pk, msg, sizeof msg - 1, signal_buffer_data(sig), 64), 0);
            signal_buffer_data(sig)[10] ^= 1;
            KWT_EQ(curve_verify_signature(pk, msg, sizeof msg, signal_buffer_data(sig), 64), 0);
        }
    }
    signal_buffer_free(pub);
    signal_buffer_free(sig);
    SIGNAL_UNREF(pair);

    /* A failing random source fails key generation cleanly. */
    cr.fail = 1;
    pair = NULL;
    int r = curve_generate_key_pair(ctx, &pair);
    KWT_CHECK(r < 0);
    KWT_ERR(kw_from_signal(r), KW_ERR_CRYPTO);
    KWT_CHECK(pair == NULL);
    signal_context_destroy(ctx);
}

/*
 * The library's fingerprint runs SHA-512 `iterations` times on one digest context, calling
 * final and then update again (hash = SHA-512(hash || key)); without the re-init in
 * kw_sha512_final the second round would continue the first. Expected strings computed
 * independently (Python hashlib) for the key above and the identifier "alice".
 */
static void test_signal_provider_sha512_reuse_fingerprint(void)
{
    static const struct {
        int iterations;
        const char *want;
    } cases[] = {{1, "114583611302056571259910306055"}, {3, "621416190555916302639243603270"}};
    counting_random cr = {0, 0, 0};
    kw_random rnd = {counting_fill, &cr};
    signal_context *ctx = NULL;
    KWT_ERR(kw_signal_context_new(&rnd, &ctx), KW_OK);
    if (ctx == NULL)
        return;
    uint8_t raw[33];
    kwt_hex(PUB_OF_COUNTING, raw, sizeof raw);
    ec_public_key *key = NULL;
    KWT_EQ(curve_decode_point(&key, raw, sizeof raw, ctx), 0);
    for (size_t i = 0; key && i < sizeof cases / sizeof cases[0]; i++) {
        fingerprint_generator *gen = NULL;
        fingerprint *fp = NULL;
        KWT_EQ(fingerprint_generator_create(&gen, cases[i].iterations, 0, ctx), 0);
        KWT_EQ(fingerprint_generator_create_for(gen, "alice", key, "alice", key, &fp), 0);
        if (fp != NULL) {
            displayable_fingerprint *d = fingerprint_get_displayable(fp);
            KWT_STREQ(displayable_fingerprint_local(d), cases[i].want);
        }
        SIGNAL_UNREF(fp);
        fingerprint_generator_free(gen);
    }
    SIGNAL_UNREF(key);
    signal_context_destroy(ctx);
}

/* The library's HKDF runs on the provider's streaming HMAC: RFC 5869 test case 1 again. */
static void test_signal_provider_hkdf(void)
{
    signal_context *ctx = NULL;
    KWT_ERR(kw_signal_context_new(kw_random_system(), &ctx), KW_OK);
    if (ctx == NULL)
        return;
    hkdf_context *kdf = NULL;
    KWT_EQ(hkdf_create(&kdf, 3, ctx), 0);
    size_t in, sn, fn, on;
    uint8_t *ikm = unhex(hkdf_cases[0].ikm, &in), *salt = unhex(hkdf_cases[0].salt, &sn);
    uint8_t *info = unhex(hkdf_cases[0].info, &fn), *okm = unhex(hkdf_cases[0].okm, &on);
    uint8_t *out = NULL;
    ssize_t n = kdf ? hkdf_derive_secrets(kdf, &out, ikm, in, salt, sn, info, fn, on) : -1;
    KWT_EQ(n, (ssize_t)on);
    if (n == (ssize_t)on)
        check_hex(out, on, hkdf_cases[0].okm, "signal hkdf");
    free(out);
    free(ikm);
    free(salt);
    free(info);
    free(okm);
    SIGNAL_UNREF(kdf);
    signal_context_destroy(ctx);
}

static void test_from_signal_mapping(void)
{
    static const struct {
        int sg;
        kw_err want;
    } cases[] = {
        {0, KW_OK},
        {1, KW_OK},
        {SG_ERR_NOMEM, KW_ERR_NOMEM},
        {SG_ERR_INVALID_MAC, KW_ERR_DECRYPT},
        {SG_ERR_DUPLICATE_MESSAGE, KW_ERR_DUPLICATE_MESSAGE},
        {SG_ERR_INVALID_KEY_ID, KW_ERR_INVALID_PREKEY_ID},
        {SG_ERR_UNTRUSTED_IDENTITY, KW_ERR_UNTRUSTED_IDENTITY},
        {SG_ERR_NO_SESSION, KW_ERR_NO_SESSION},
        {SG_ERR_UNKNOWN, KW_ERR_CRYPTO},
        {SG_ERR_MINIMUM - 1, KW_ERR_STORE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        KWT_ERR(kw_from_signal(cases[i].sg), cases[i].want);
}

int main(void)
{
    KWT_RUN(test_sha256_abc);
    KWT_RUN(test_sha512_abc_and_reuse_after_final);
    KWT_RUN(test_hmac_sha256_one_shot);
    KWT_RUN(test_hmac_sha256_streaming);
    KWT_RUN(test_aes_cbc_nist);
    KWT_RUN(test_aes_cbc_padding_lengths);
    KWT_RUN(test_aes_cbc_bad_padding_and_lengths);
    KWT_RUN(test_aes_ctr_nist);
    KWT_RUN(test_hkdf_sha256_rfc5869);
    KWT_RUN(test_pbkdf2_sha256_rfc7914);
    KWT_RUN(test_gcm_known_answers);
    KWT_RUN(test_gcm_tamper_rejected);
    KWT_RUN(test_gcm_key_lengths);
    KWT_RUN(test_ct_memcmp_and_wipe);
    KWT_RUN(test_signal_provider_random_key_and_signature);
    KWT_RUN(test_signal_provider_sha512_reuse_fingerprint);
    KWT_RUN(test_signal_provider_hkdf);
    KWT_RUN(test_from_signal_mapping);
    return kwt_finish();
}
