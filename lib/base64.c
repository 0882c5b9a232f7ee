/*
 * base64.c — strict standard base64. Hand-written because it is not cryptography and
 * must build without OpenSSL for the wasm target; the decoder rejects every
 * non-canonical form so that signatures over keys compare byte-for-byte.
 */
#include "keywave/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t kw_base64_encoded_len(size_t n)
{
    if (n > (SIZE_MAX - 1) / 4 * 3) /* would not fit in size_t: no buffer is that big */
        return SIZE_MAX - 1;
    return (n + 2) / 3 * 4;
}

kw_err kw_base64_encode(const uint8_t *in, size_t n, char *out, size_t out_size)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 || out_size < kw_base64_encoded_len(n) + 1)
        return KW_ERR_BUFFER_TOO_SMALL;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return KW_OK;
}

static int sextet(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

kw_err kw_base64_decode(const char *text, size_t len, uint8_t *out, size_t out_size,
                        size_t *out_len)
{
    *out_len = 0;
    if (len % 4 != 0)
        return KW_ERR_BASE64;
    size_t pad = 0;
    if (len > 0 && text[len - 1] == '=')
        pad = (len > 1 && text[len - 2] == '=') ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    if (n > out_size)
        return KW_ERR_BUFFER_TOO_SMALL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = (i + 4 == len);
        int s[4];
        for (int k = 0; k < 4; k++) {
            if (last && text[i + k] == '=' && k >= 4 - (int)pad)
                s[k] = 0;
            else if ((s[k] = sextet(text[i + k])) < 0)
                return KW_ERR_BASE64;
        }
        uint32_t v =
            (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
        out[o++] = (uint8_t)(v >> 16);
        if (!last || pad < 2)
            out[o++] = (uint8_t)(v >> 8);
        if (!last || pad < 1)
            out[o++] = (uint8_t)v;
        /* Canonical form: the bits that padding hides must be zero. */
        if (last && ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))))
            return KW_ERR_BASE64;
    }
    *out_len = o;
    return KW_OK;
}
