/*
 * test_base64.c — strict standard base64: RFC 4648 section 10 round trips, every
 * non-canonical form rejected (so a value has exactly one text form), and the exact
 * buffer-size boundaries of encode and decode.
 */
#include <stdlib.h>
#include <string.h>

#include "keywave/base64.h"
#include "kwtest.h"

typedef struct b64_case {
    const char *bytes; /* raw input */
    size_t n;
    const char *text;
} b64_case;

static const b64_case round_trips[] = {
    /* RFC 4648 section 10 */
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    /* '+' and '/' (the letters URL-safe base64 replaces), NUL and high bytes */
    {"\xfb\xef\xbe", 3, "++++"},
    {"\xff\xff\xff", 3, "////"},
    {"\xfb\xff", 2, "+/8="},
    {"\x00", 1, "AA=="},
    {"\x00\x00\x00\x00", 4, "AAAAAA=="},
    {"\x05\x80\x7f", 3, "BYB/"},
};

static void test_rfc4648_round_trips(void)
{
    for (size_t i = 0; i < sizeof round_trips / sizeof round_trips[0]; i++) {
        const b64_case *c = &round_trips[i];
        KWT_EQ(kw_base64_encoded_len(c->n), strlen(c->text));
        char text[32];
        KWT_ERR(kw_base64_encode((const uint8_t *)c->bytes, c->n, text, sizeof text), KW_OK);
        KWT_STREQ(text, c->text);
        uint8_t raw[32];
        size_t n = 99;
        KWT_ERR(kw_base64_decode(c->text, strlen(c->text), raw, sizeof raw, &n), KW_OK);
        KWT_EQ(n, c->n);
        KWT_CHECK(n == c->n && memcmp(raw, c->bytes, n) == 0);
    }
}

/* Every byte value survives, at each of the three positions within a group. */
static void test_all_byte_values_round_trip(void)
{
    uint8_t in[258], back[258];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    char text[400];
    for (size_t len = 256; len <= 258; len++) {
        KWT_ERR(kw_base64_encode(in, len, text, sizeof text), KW_OK);
        KWT_EQ(strlen(text), kw_base64_encoded_len(len));
        size_t n = 0;
        KWT_ERR(kw_base64_decode(text, strlen(text), back, sizeof back, &n), KW_OK);
        KWT_EQ(n, len);
        KWT_CHECK(n == len && memcmp(in, back, len) == 0);
    }
}

static const struct {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
} rejects[] = {
    /* length not a multiple of 4 */
    {"1 char", "Z", 0},
    {"2 chars, missing padding", "Zg", 0},
    {"3 chars, missing one pad", "Zg=", 0},
    {"3 chars, unpadded fo", "Zm8", 0},
    {"5 chars", "Zm9vY", 0},
    {"7 chars", "Zm9vYmE", 0},
    /* padding in the wrong place */
    {"= in the middle", "Zg==Zg==", 0},
    {"= inside a quad", "Z=g=", 0},
    {"= at position 2 only", "Zm=v", 0},
    {"= then letter", "Zg=A", 0},
    {"three =", "Z===", 0},
    {"four =", "====", 0},
    {"= before letter in last quad", "Zm9vA=A=", 0},
    /* letters outside the standard alphabet */
    {"url-safe -", "-_8=", 0},
    {"url-safe _", "Zm_v", 0},
    {"url-safe - alone", "Zm-v", 0},
    {"dot", "Zm.v", 0},
    {"newline at end", "Zm9vYmF\n", 0},
    {"newline inside", "Zm\n9", 0},
    {"space", "Zm 9", 0},
    {"tab", "\tZm9", 0},
    {"CR LF", "Zm9vYm\r\n", 0},
    {"NUL byte", "Zg\0=", 4},
    {"high-bit byte", "Zg\xff=", 0},
    /* non-zero bits hidden by the padding: one value, one text form */
    {"Zh== (f with a stray bit)", "Zh==", 0},
    {"Zm9= (fo with a stray bit)", "Zm9=", 0},
    {"Z/== (stray bits)", "Z/==", 0},
    {"AB== (low bits set)", "AB==", 0},
    {"AAB= (low bits set)", "AAB=", 0},
};

static void test_non_canonical_rejected(void)
{
    for (size_t i = 0; i < sizeof rejects / sizeof rejects[0]; i++) {
        size_t len = rejects[i].len ? rejects[i].len : strlen(rejects[i].text);
        uint8_t out[32];
        size_t n = 99;
        kw_err rc = kw_base64_decode(rejects[i].text, len, out, sizeof out, &n);
        if (rc != KW_ERR_BASE64)
            printf("    case \"%s\"\n", rejects[i].name);
        KWT_ERR(rc, KW_ERR_BASE64);
        KWT_EQ(n, 0);
    }
    /* The canonical twins of the stray-bit cases are accepted. */
    uint8_t out[4];
    size_t n = 0;
    KWT_ERR(kw_base64_decode("Zg==", 4, out, sizeof out, &n), KW_OK);
    KWT_ERR(kw_base64_decode("Zm8=", 4, out, sizeof out, &n), KW_OK);
    KWT_ERR(kw_base64_decode("AA==", 4, out, sizeof out, &n), KW_OK);
}

/* Encode needs encoded_len + 1 (the NUL); one byte less fails and writes nothing. */
static void test_encode_buffer_boundaries(void)
{
    static const struct {
        const char *in;
        size_t n;
    } cases[] = {{"", 0}, {"f", 1}, {"fo", 2}, {"foo", 3}, {"foobar", 6}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t need = kw_base64_encoded_len(cases[i].n) + 1;
        char buf[16];
        memset(buf, '#', sizeof buf);
        KWT_ERR(kw_base64_encode((const uint8_t *)cases[i].in, cases[i].n, buf, need), KW_OK);
        KWT_EQ(strlen(buf), need - 1);
        memset(buf, '#', sizeof buf);
        KWT_ERR(kw_base64_encode((const uint8_t *)cases[i].in, cases[i].n, buf, need - 1),
                KW_ERR_BUFFER_TOO_SMALL);
        KWT_EQ(buf[0], '#');
    }
    static const struct {
        size_t n, len;
    } lens[] = {{0, 0}, {1, 4}, {2, 4}, {3, 4}, {4, 8}, {32, 44}, {33, 44}, {64, 88}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        KWT_EQ(kw_base64_encoded_len(lens[i].n), lens[i].len);
}

/* Decode needs room for exactly the decoded bytes; one less is KW_ERR_BUFFER_TOO_SMALL. */
static void test_decode_buffer_boundaries(void)
{
    static const struct {
        const char *text;
        size_t bytes;
    } cases[] = {{"Zg==", 1}, {"Zm8=", 2}, {"Zm9v", 3}, {"Zm9vYg==", 4}, {"Zm9vYmFy", 6}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[8];
        size_t n = 99;
        KWT_ERR(kw_base64_decode(cases[i].text, strlen(cases[i].text), buf, cases[i].bytes, &n),
                KW_OK);
        KWT_EQ(n, cases[i].bytes);
        n = 99;
        KWT_ERR(kw_base64_decode(cases[i].text, strlen(cases[i].text), buf, cases[i].bytes - 1, &n),
                KW_ERR_BUFFER_TOO_SMALL);
        KWT_EQ(n, 0);
    }
    /* Empty text decodes to nothing, even into an empty buffer. */
    uint8_t one[1];
    size_t n = 99;
    KWT_ERR(kw_base64_decode("", 0, one, 0, &n), KW_OK);
    KWT_EQ(n, 0);
    /* Only len bytes of text count: a prefix of a longer string. */
    uint8_t out[8];
    KWT_ERR(kw_base64_decode("Zm9vYmFy", 4, out, sizeof out, &n), KW_OK);
    KWT_EQ(n, 3);
    KWT_MEMEQ(out, "foo", 3);
}

int main(void)
{
    KWT_RUN(test_rfc4648_round_trips);
    KWT_RUN(test_all_byte_values_round_trip);
    KWT_RUN(test_non_canonical_rejected);
    KWT_RUN(test_encode_buffer_boundaries);
    KWT_RUN(test_decode_buffer_boundaries);
    return kwt_finish();
}
