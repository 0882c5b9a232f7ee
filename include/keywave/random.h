/*
 * random.h — the randomness interface of libkeywave.
 *
 * Library code never reads an entropy source itself: every function that needs random
 * bytes takes a kw_random, so tests can make runs repeatable and the wasm build can
 * fill bytes from crypto.getRandomValues.
 */
#ifndef KEYWAVE_RANDOM_H
#define KEYWAVE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

typedef struct kw_random {
    /* Fills buf with len random bytes; returns KW_OK or KW_ERR_CRYPTO. */
    kw_err (*fill)(void *ctx, uint8_t *buf, size_t len);
    void *ctx; /* borrowed; passed to fill */
} kw_random;

/* Fills buf from rnd. Returns KW_OK, or the source's error (buf then undefined). */
KW_MUST_CHECK kw_err kw_random_fill(const kw_random *rnd, uint8_t *buf, size_t len);

/*
 * The platform's cryptographic random source (OpenSSL RAND_bytes natively). Returns a
 * pointer to a static, immutable object; never NULL.
 */
const kw_random *kw_random_system(void);

#endif
