/*
 * request_sign.h — member request signing (DESIGN.md section 4), as pure functions shared
 * by keywaved (verification), the CLI and the tests (signing).
 *
 * A signed request carries four headers: X-Client-ID, X-Timestamp (ms since the epoch,
 * decimal), X-Nonce (16..128 characters of [A-Za-z0-9_-]) and X-Signature, the lower-case
 * hex HMAC-SHA256 keyed by the bytes of the session_secret string over
 *
 *   client_id ":" timestamp ":" nonce ":" METHOD ":" target ":" hex(sha256(body))
 *
 * where target is the path exactly as sent (still percent-encoded), plus "?query" only
 * when the query is non-empty, and the body hash is of the raw bytes (empty body: the hash
 * of ""). Socket.IO CONNECT auth signs `GET /socket.io/auth` with an empty body the same
 * way. Nothing here reads a clock, a random source or a store: the caller passes the time
 * and keeps the nonces (a nonce is remembered only after its signature verified).
 */
#ifndef KEYWAVE_REQUEST_SIGN_H
#define KEYWAVE_REQUEST_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"
#include "keywave/random.h"

#define KW_REQUEST_SIGNATURE_CHARS 64     /* lower-case hex of HMAC-SHA256 */
#define KW_REQUEST_NONCE_MIN       16     /* shortest X-Nonce */
#define KW_REQUEST_NONCE_MAX       128    /* longest X-Nonce */
#define KW_REQUEST_NONCE_NEW_CHARS 32     /* length of a nonce kw_request_nonce_new makes */
#define KW_REQUEST_CLIENT_ID_MAX   128    /* longest well-formed X-Client-ID */
#define KW_REQUEST_TIMESTAMP_MAX   15     /* most digits in X-Timestamp (year 33658) */
#define KW_REQUEST_SKEW_MAX_MS     300000 /* |now - timestamp| above this: request_expired */

size_t kw_request_signature_chars(void); /* KW_REQUEST_SIGNATURE_CHARS */

/* The four header values of a signed request, as received (NULL when absent). Borrowed. */
typedef struct kw_request_auth {
    const char *client_id; /* X-Client-ID: 1..128 chars of [A-Za-z0-9_-] */
    const char *timestamp; /* X-Timestamp: decimal ms, no sign, no leading zero */
    const char *nonce;     /* X-Nonce: 16..128 chars of [A-Za-z0-9_-] */
    const char *signature; /* X-Signature: 64 hex digits */
} kw_request_auth;

/*
 * Computes the signature of a request: writes 64 lower-case hex digits and a NUL to out.
 * secret: the session_secret string (its bytes are the HMAC key); client_id, timestamp,
 * nonce, method and target: the exact strings that go on the wire; body: body_len raw
 * bytes (NULL allowed when body_len is 0). Nothing is validated here: the signer signs
 * what it is given. Errors: KW_ERR_INVALID_ARGUMENT (a NULL string), KW_ERR_CRYPTO,
 * KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_request_sign(const char *secret, const char *client_id,
                                     const char *timestamp, const char *nonce, const char *method,
                                     const char *target, const uint8_t *body, size_t body_len,
                                     char out[KW_REQUEST_SIGNATURE_CHARS + 1]);

/*
 * Checks the headers before any lookup, in this order: all four present
 * (KW_ERR_MISSING_AUTH_HEADERS), each well-formed (KW_ERR_INVALID_AUTH_HEADERS; the
 * signature must be 64 hex digits of either case here — an upper-case one is well-formed
 * but never verifies), and the timestamp within KW_REQUEST_SKEW_MAX_MS of now_ms either
 * way (KW_ERR_REQUEST_EXPIRED; exactly 300000 ms off is accepted). On success
 * *timestamp_ms (may be NULL) is the parsed timestamp. err->detail names the header.
 */
KW_MUST_CHECK kw_err kw_request_auth_check(const kw_request_auth *h, int64_t now_ms,
                                           int64_t *timestamp_ms, kw_error *err);

/*
 * Verifies h->signature over (h, method, target, body) with secret, comparing in constant
 * time against the lower-case hex the server computes. Call kw_request_auth_check first.
 * Errors: KW_ERR_AUTH_SIGNATURE (no match, including any upper-case digit),
 * KW_ERR_MISSING_AUTH_HEADERS (a NULL header), KW_ERR_CRYPTO, KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_request_verify(const char *secret, const kw_request_auth *h,
                                       const char *method, const char *target, const uint8_t *body,
                                       size_t body_len, kw_error *err);

/*
 * Makes a fresh nonce for a signer: KW_REQUEST_NONCE_NEW_CHARS lower-case hex digits of
 * random bytes from rnd, NUL-terminated in out. Errors: the random source's error.
 */
KW_MUST_CHECK kw_err kw_request_nonce_new(const kw_random *rnd,
                                          char out[KW_REQUEST_NONCE_NEW_CHARS + 1]);

#endif
