/*
 * err.h — error codes of libkeywave.
 *
 * Every function that can fail returns a kw_err (KW_OK == 0). A code's number never
 * changes and is never reused: the CLI, the wasm glue and the tests depend on it, so new
 * codes go at the end. kw_err_name() gives the JSON `error` token, kw_strerror() an
 * English sentence; a kw_error carries one call's own detail text in a fixed buffer, so
 * reporting an error never allocates.
 */
#ifndef KEYWAVE_ERR_H
#define KEYWAVE_ERR_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define KW_MUST_CHECK   __attribute__((warn_unused_result))
#define KW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KW_MUST_CHECK
#define KW_PRINTF(a, b)
#endif

typedef enum kw_err {
    KW_OK = 0,
    KW_ERR_INTERNAL = 1,             /* a "cannot happen" case, failed safely */
    KW_ERR_NOMEM = 2,                /* allocation failed */
    KW_ERR_INVALID_ARGUMENT = 3,     /* a field has the wrong type, size or range */
    KW_ERR_BASE64 = 4,               /* not standard padded base64 */
    KW_ERR_JSON = 5,                 /* not JSON, or not the expected shape */
    KW_ERR_UNKNOWN_FIELD = 6,        /* a JSON object holds a field we do not know */
    KW_ERR_INVALID_KEY = 7,          /* a public key is not 33 bytes with prefix 0x05 */
    KW_ERR_INVALID_SIGNATURE = 8,    /* a signature is not 64 bytes or does not verify */
    KW_ERR_STORE = 9,                /* the key store failed to read or write */
    KW_ERR_NOT_FOUND = 10,           /* no such record */
    KW_ERR_CRYPTO = 11,              /* the crypto provider failed */
    KW_ERR_DECRYPT = 12,             /* authentication of a ciphertext failed */
    KW_ERR_NO_SESSION = 13,          /* no Signal session with that address */
    KW_ERR_DUPLICATE_MESSAGE = 14,   /* a message was already decrypted (replay) */
    KW_ERR_INVALID_MESSAGE = 15,     /* a message does not parse */
    KW_ERR_UNTRUSTED_IDENTITY = 16,  /* a peer's identity key changed */
    KW_ERR_INVALID_PREKEY_ID = 17,   /* the message names a pre-key we do not hold (reused) */
    KW_ERR_FORBIDDEN = 18,           /* the handle's role may not do this (guest sender key) */
    KW_ERR_NO_SENDER_KEY = 19,       /* no sender key state for that group and sender */
    KW_ERR_FRAME_TOO_SHORT = 20,     /* a media frame is too short to hold a trailer */
    KW_ERR_FRAME_AUTH = 21,          /* a media frame's GCM tag did not verify */
    KW_ERR_NO_KEY = 22,              /* no key is set (at that key index, or yet) */
    KW_ERR_KEY_EXCHANGE_FAILED = 23, /* three key requests failed (seed 001) */
    KW_ERR_STATE = 24,               /* the call does not fit the object's current state */
    KW_ERR_NOT_BUILT = 25,           /* that part was switched off at build time */
    KW_ERR_BUFFER_TOO_SMALL = 26,    /* the caller's output buffer is too small */
    KW_ERR_IO = 27,                  /* an operating-system call failed */
    KW_ERR_NOT_ROTATOR = 28,         /* only the longest-present member rotates the key */
    KW_ERR_LEGACY_MESSAGE = 29,      /* a message of an older protocol version */
    KW_ERR_INVALID_VERSION = 30,     /* a message of an unknown protocol version */
    /* Server-side codes (keywaved); each maps to one HTTP status in server/http_status.c. */
    KW_ERR_MISSING_AUTH_HEADERS = 31, /* a signed-request header is missing */
    KW_ERR_INVALID_AUTH_HEADERS = 32, /* a signed-request header is malformed */
    KW_ERR_REQUEST_EXPIRED = 33,      /* X-Timestamp more than 5 minutes off */
    KW_ERR_UNKNOWN_CLIENT = 34,       /* no device session with that client id */
    KW_ERR_SESSION_EXPIRED = 35,      /* the device session expired (90 days unused) */
    KW_ERR_AUTH_SIGNATURE = 36,       /* the request signature does not verify */
    KW_ERR_DUPLICATE_REQUEST = 37,    /* the nonce was already used */
    KW_ERR_UNAUTHORIZED = 38,         /* missing or unknown bearer secret */
    KW_ERR_RATE_LIMITED = 39,         /* too many requests; retry later */
    KW_ERR_CONFLICT = 40,             /* the request conflicts with stored state */
    KW_ERR_ALREADY_ADMITTED = 41,     /* another member admitted the guest first */
    KW_ERR_ALREADY_DECLINED = 42,     /* another member declined the guest first */
    KW_ERR_NO_HOST_PRESENT = 43,      /* no member of the meeting is present */
    KW_ERR_UNKNOWN_INVITATION = 44,   /* no such invitation token */
    KW_ERR_INVITATION_EXPIRED = 45,   /* the invitation's expires_at has passed */
    KW_ERR_INVITATION_REVOKED = 46,   /* the invitation was revoked */
    KW_ERR_INVITATION_EXHAUSTED = 47, /* the invitation reached max_uses */
    KW_ERR_NOT_PRESENT = 48,          /* the member device is not present in the meeting */
    KW_ERR_PAYLOAD_TOO_LARGE = 49,    /* request body over the limit */
    KW_ERR_METHOD_NOT_ALLOWED = 50,   /* the path exists, not with this method */
    KW_ERR_NOT_CONFIGURED = 51,       /* the feature needs configuration it lacks */

    /* Client (client/) codes. */
    KW_ERR_TIMEOUT = 52, /* no answer in time (a request, an ack, a wait) */
} kw_err;

#define KW_DETAIL_MAX 160

/* One failure: its code and this call's detail text (no secrets, never allocates). */
typedef struct kw_error {
    kw_err code;
    char detail[KW_DETAIL_MAX];
} kw_error;

/* The JSON `error` token of a code, e.g. "invalid_signature". Never NULL. */
const char *kw_err_name(kw_err code);

/*
 * The lowest code whose kw_err_name is name (e.g. a server's JSON `error` token; two
 * server codes share their library twin's token), or KW_ERR_INTERNAL for a name no code
 * has (also NULL). "ok" gives KW_OK.
 */
kw_err kw_err_from_name(const char *name);

/* An English sentence describing a code. Never NULL. */
const char *kw_strerror(kw_err code);

/*
 * Fills err (which may be NULL) with code and a printf-style detail, truncated to
 * KW_DETAIL_MAX - 1 bytes, and returns code, so a failure path reads
 * `return kw_error_set(err, KW_ERR_INVALID_KEY, "identity_key: %zu bytes", n);`.
 */
kw_err kw_error_set(kw_error *err, kw_err code, const char *fmt, ...) KW_PRINTF(3, 4);

/* Clears err (may be NULL) to KW_OK with an empty detail. */
void kw_error_clear(kw_error *err);

#endif
