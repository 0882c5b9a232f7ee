/*
 * rate_limit.h — an in-memory sliding-window rate limiter with bounded memory: at most
 * `limit` hits per (subject, object) pair within any `window_ms`.
 *
 * keywaved uses one for bundle fetches (INV-2: 3 per minute per fetcher and target
 * device, in both directions) and the guest routes reuse it (request-admission once per
 * 5 s). A pair is named by two strings, e.g. subject "m:<user_id>:<device_id>" or
 * "g:<session_id>" and object the target in the same form; they are hashed together
 * (SHA-256, first 128 bits), so the table holds no caller text and a collision is out of
 * reach.
 *
 * Memory is fixed at creation: a table for `capacity` pairs, each keeping its last
 * `limit` hit times (about 32 + 8 * limit bytes per pair, times two for the load factor).
 * Pairs whose hits all left the window are dropped when the room is needed. When all
 * `capacity` pairs are active inside one window, a new pair is refused as rate limited
 * (failing closed) until the oldest frees up: size capacity above the number of pairs
 * that can be active in one window.
 *
 * Single-threaded, like the rest of the server; time is passed in (ms).
 */
#ifndef KEYWAVE_SERVER_RATE_LIMIT_H
#define KEYWAVE_SERVER_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_RATE_LIMIT_HITS_MAX     128     /* largest limit a limiter accepts */
#define KW_RATE_LIMIT_CAPACITY_MAX 1048576 /* largest capacity (pairs) */

/* INV-2: bundle fetches per (fetcher, target device) pair per minute. */
#define KW_BUNDLE_FETCH_LIMIT     3
#define KW_BUNDLE_FETCH_WINDOW_MS 60000
#define KW_BUNDLE_FETCH_PAIRS     16384 /* pairs active in one minute before failing closed */

typedef struct kw_rate_limit kw_rate_limit;

/*
 * Creates a limiter allowing limit (1..KW_RATE_LIMIT_HITS_MAX) hits per pair in any
 * window_ms (> 0), for up to capacity (1..KW_RATE_LIMIT_CAPACITY_MAX) active pairs.
 * *out is owned by the caller (kw_rate_limit_free). Errors: KW_ERR_INVALID_ARGUMENT,
 * KW_ERR_NOMEM.
 */
kw_err kw_rate_limit_new(uint32_t limit, int64_t window_ms, size_t capacity,
                         kw_rate_limit **out) KW_MUST_CHECK;

/* Frees the limiter. Accepts NULL. */
void kw_rate_limit_free(kw_rate_limit *rl);

/*
 * Counts one hit of (subject, object) at now_ms if fewer than limit hits of that pair
 * fall in (now_ms - window_ms, now_ms]; a hit at t stops counting at t + window_ms.
 * Returns KW_OK (counted), or KW_ERR_RATE_LIMITED with *retry_after_s (>= 1) the whole
 * seconds until a hit would be allowed (nothing counted). subject and object are
 * NUL-terminated strings (may be empty). retry_after_s may be NULL.
 */
kw_err kw_rate_limit_take(kw_rate_limit *rl, const char *subject, const char *object,
                          int64_t now_ms, int64_t *retry_after_s) KW_MUST_CHECK;

/*
 * Takes back the newest hit of (subject, object), for an operation that failed after
 * kw_rate_limit_take counted it (so only accepted operations use up the allowance).
 * Does nothing if the pair has no hit.
 */
void kw_rate_limit_refund(kw_rate_limit *rl, const char *subject, const char *object);

#endif
