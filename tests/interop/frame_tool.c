/*
 * frame_tool.c — a line-oriented driver of kw_frame_cryptor for tests/interop/frame.test.mjs.
 *
 * Reads one command per line on stdin and answers each with one line on stdout, `ok ...`
 * or `err <error token>`, so the node test can hand frames made by livekit-client to C and
 * back. Bytes travel as lowercase hex; "-" stands for zero bytes. Kinds: key, delta, audio.
 *
 *   create <16|32>                      new cryptor with that AES key size (default 16)
 *   keyraw <index> <hex media key>      set a slot from a raw 32-byte key (HKDF)
 *   keystr <index> <hex of text>        set a slot from a text key (PBKDF2)
 *   clear <index> | send <index>        empty a slot | choose the send slot
 *   derive raw|str <16|32> <hex>        -> ok <hex AES key>
 *   enc <kind> <ssrc> <ts> <count> <hex>  encrypt with the given send count
 *   encc <kind> <ssrc> <ts> <hex>         encrypt with the cryptor's own per-SSRC count
 *   dec <kind> <hex>                      decrypt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keywave/frame.h"

#define MAX_ARGS 8

static int hex_val(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes hex (or "-") into a malloc'd buffer (with `extra` spare bytes); NULL when bad. */
static uint8_t *hex_decode(const char *hex, size_t extra, size_t *len)
{
    size_t n = strcmp(hex, "-") == 0 ? 0 : strlen(hex);
    if (n % 2 != 0)
        return NULL;
    uint8_t *buf = malloc(n / 2 + extra + 1);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(buf);
            return NULL;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return buf;
}

static void print_ok_hex(const uint8_t *p, size_t n)
{
    fputs("ok ", stdout);
    if (n == 0)
        fputc('-', stdout);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    fputc('\n', stdout);
}

/* Parses a decimal uint32 (1..10 digits, no sign, no overflow). Returns 0 on success. */
static int parse_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_kind(const char *s, kw_frame_kind *kind)
{
    if (strcmp(s, "key") == 0)
        *kind = KW_FRAME_VP8_KEY;
    else if (strcmp(s, "delta") == 0)
        *kind = KW_FRAME_VP8_DELTA;
    else if (strcmp(s, "audio") == 0)
        *kind = KW_FRAME_AUDIO;
    else
        return -1;
    return 0;
}

static void reply_err(kw_err rc)
{
    printf("err %s\n", kw_err_name(rc));
}

/* Runs one command; returns 0, or -1 for a malformed command (answered `err usage`). */
static int run(kw_frame_cryptor **cp, char **argv, int argc)
{
    kw_frame_cryptor *c = *cp;
    uint32_t a = 0, b = 0, d = 0;
    kw_frame_kind kind;
    size_t len = 0;
    kw_err rc;

    if (strcmp(argv[0], "create") == 0 && argc == 2) {
        kw_frame_cryptor *n = NULL;
        if (parse_u32(argv[1], &a) != 0)
            return -1;
        rc = kw_frame_cryptor_create(a, kw_random_system(), &n);
        if (rc != KW_OK) {
            reply_err(rc);
            return 0;
        }
        kw_frame_cryptor_free(c);
        *cp = n;
        puts("ok");
        return 0;
    }
    if ((strcmp(argv[0], "keyraw") == 0 || strcmp(argv[0], "keystr") == 0) && argc == 3) {
        if (parse_u32(argv[1], &a) != 0)
            return -1;
        uint8_t *key = hex_decode(argv[2], 0, &len);
        if (key == NULL)
            return -1;
        if (argv[0][3] == 'r')
            rc = len == KW_FRAME_MEDIA_KEY_BYTES ? kw_frame_cryptor_set_key_raw(c, a, key)
                                                 : KW_ERR_INVALID_ARGUMENT;
        else
            rc = kw_frame_cryptor_set_key_string(c, a, (const char *)key, len);
        free(key);
        if (rc != KW_OK)
            reply_err(rc);
        else
            puts("ok");
        return 0;
    }
    if ((strcmp(argv[0], "clear") == 0 || strcmp(argv[0], "send") == 0) && argc == 2) {
        if (parse_u32(argv[1], &a) != 0)
            return -1;
        rc = argv[0][0] == 'c' ? kw_frame_cryptor_clear_key(c, a)
                               : kw_frame_cryptor_set_send_index(c, a);
        if (rc != KW_OK)
            reply_err(rc);
        else
            puts("ok");
        return 0;
    }
    if (strcmp(argv[0], "derive") == 0 && argc == 4) {
        uint8_t out[KW_FRAME_AES256_KEY_BYTES];
        if (parse_u32(argv[2], &a) != 0 || a > sizeof out)
            return -1;
        uint8_t *in = hex_decode(argv[3], 0, &len);
        if (in == NULL)
            return -1;
        if (strcmp(argv[1], "raw") == 0)
            rc = len == KW_FRAME_MEDIA_KEY_BYTES ? kw_frame_derive_key_raw(in, out, a)
                                                 : KW_ERR_INVALID_ARGUMENT;
        else
            rc = kw_frame_derive_key_string((const char *)in, len, out, a);
        free(in);
        if (rc != KW_OK)
            reply_err(rc);
        else
            print_ok_hex(out, a);
        return 0;
    }
    int with_count = strcmp(argv[0], "enc") == 0 && argc == 6;
    int own_count = strcmp(argv[0], "encc") == 0 && argc == 5;
    if (with_count || own_count) {
        if (parse_kind(argv[1], &kind) != 0 || parse_u32(argv[2], &a) != 0 ||
            parse_u32(argv[3], &b) != 0 || (with_count && parse_u32(argv[4], &d) != 0))
            return -1;
        uint8_t *buf = hex_decode(argv[argc - 1], KW_FRAME_OVERHEAD, &len);
        if (buf == NULL)
            return -1;
        size_t out_len = 0;
        /* In place: the buffer has room for the overhead. */
        if (with_count)
            rc = kw_frame_encrypt_with_count(c, kind, a, b, d, buf, len, buf,
                                             len + KW_FRAME_OVERHEAD, &out_len);
        else
            rc = kw_frame_encrypt(c, kind, a, b, buf, len, buf, len + KW_FRAME_OVERHEAD, &out_len);
        if (rc != KW_OK)
            reply_err(rc);
        else
            print_ok_hex(buf, out_len);
        free(buf);
        return 0;
    }
    if (strcmp(argv[0], "dec") == 0 && argc == 3) {
        if (parse_kind(argv[1], &kind) != 0)
            return -1;
        uint8_t *in = hex_decode(argv[2], 0, &len);
        if (in == NULL)
            return -1;
        uint8_t *out = malloc(len + 1);
        size_t out_len = 0;
        if (out == NULL) {
            free(in);
            reply_err(KW_ERR_NOMEM);
            return 0;
        }
        rc = kw_frame_decrypt(c, kind, in, len, out, len, &out_len);
        if (rc != KW_OK)
            reply_err(rc);
        else
            print_ok_hex(out, out_len);
        free(in);
        free(out);
        return 0;
    }
    return -1;
}

/* Splits line in place at spaces into at most MAX_ARGS words; returns how many. */
static int split(char *line, char *argv[MAX_ARGS])
{
    int argc = 0;
    char *p = line;
    while (*p != '\0') {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (argc == MAX_ARGS)
            return -1;
        argv[argc++] = p;
        while (*p != '\0' && *p != ' ')
            p++;
    }
    return argc;
}

int main(void)
{
    kw_frame_cryptor *c = NULL;
    if (kw_frame_cryptor_create(KW_FRAME_AES128_KEY_BYTES, kw_random_system(), &c) != KW_OK) {
        fputs("frame_tool: cannot create a cryptor\n", stderr);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *argv[MAX_ARGS];
        int argc = split(line, argv);
        if (argc == 0)
            continue;
        if (argc < 0) {
            puts("err usage");
            fflush(stdout);
            continue;
        }
        if (run(&c, argv, argc) != 0)
            puts("err usage");
        fflush(stdout);
    }
    free(line);
    kw_frame_cryptor_free(c);
    return 0;
}
