/*
 * textbuf.h — internal: building a text frame into a caller's buffer, snprintf-style.
 *
 * The encoders of eio.c and sio.c append pieces here; a piece is written only if it fits
 * whole at its place, and the length keeps counting either way, so one pass both fills a
 * large enough buffer and measures the length a too-small one would need.
 */
#ifndef KEYWAVE_LIB_TEXTBUF_H
#define KEYWAVE_LIB_TEXTBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "keywave/err.h"

typedef struct kw_textbuf {
    char *buf;  /* borrowed from the caller; may be NULL when cap is 0 */
    size_t cap; /* bytes of buf */
    size_t len; /* bytes appended so far (may exceed cap) */
} kw_textbuf;

/* Room left at the current end, 0 once the text no longer fits. */
static inline size_t kw_textbuf_room(const kw_textbuf *b)
{
    return b->buf != NULL && b->len < b->cap ? b->cap - b->len : 0;
}

static inline void kw_textbuf_put(kw_textbuf *b, const char *s, size_t n)
{
    if (n > 0 && n <= kw_textbuf_room(b))
        memcpy(b->buf + b->len, s, n);
    /* Saturate instead of wrapping: a SIZE_MAX length can never fit any buffer. */
    b->len = n > SIZE_MAX - b->len ? SIZE_MAX : b->len + n;
}

/* Counts n bytes that something else wrote at the current end (or would have). */
static inline void kw_textbuf_advance(kw_textbuf *b, size_t n)
{
    b->len = n > SIZE_MAX - b->len ? SIZE_MAX : b->len + n;
}

static inline void kw_textbuf_putc(kw_textbuf *b, char c)
{
    kw_textbuf_put(b, &c, 1);
}

static inline void kw_textbuf_put_u32(kw_textbuf *b, uint32_t v)
{
    char digits[10];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    kw_textbuf_put(b, digits + sizeof digits - n, n);
}

/*
 * NUL-terminates and reports: KW_OK with *out_len = length, or KW_ERR_BUFFER_TOO_SMALL
 * with *out_len = the length needed (the buffer's contents are then unspecified).
 */
static inline kw_err kw_textbuf_finish(kw_textbuf *b, size_t *out_len, kw_error *err)
{
    *out_len = b->len;
    if (kw_textbuf_room(b) < 1)
        return kw_error_set(err, KW_ERR_BUFFER_TOO_SMALL, "frame needs %zu bytes plus NUL", b->len);
    b->buf[b->len] = '\0';
    return KW_OK;
}

#endif
