/*
 * base64.h — standard base64 (RFC 4648 section 4, '+' '/', '=' padding), strict.
 *
 * Keys and signatures travel in JSON as standard padded base64 (DESIGN.md section 6).
 * The decoder accepts only canonical input: the right padding, no whitespace, no
 * URL-safe letters and zero unused bits, so one value has exactly one text form.
 */
#ifndef KEYWAVE_BASE64_H
#define KEYWAVE_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

/* Length of the encoding of n bytes, without the terminating NUL. */
size_t kw_base64_encoded_len(size_t n);

/*
 * Encodes in[0..n) into out, which must hold kw_base64_encoded_len(n) + 1 bytes; writes
 * a NUL-terminated string. Returns KW_OK or KW_ERR_BUFFER_TOO_SMALL.
 */
kw_err kw_base64_encode(const uint8_t *in, size_t n, char *out, size_t out_size);

/*
 * Decodes text[0..len) into out (capacity out_size), sets *out_len. Returns KW_OK,
 * KW_ERR_BASE64 for any non-canonical input, KW_ERR_BUFFER_TOO_SMALL.
 */
KW_MUST_CHECK kw_err kw_base64_decode(const char *text, size_t len, uint8_t *out, size_t out_size,
                                      size_t *out_len);

#endif
