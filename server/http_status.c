/*
 * http_status.c — the one place a kw_err becomes an HTTP status (STYLE §2): a switch
 * with no default, so -Wswitch flags a code added to err.h and not decided here.
 *
 * Rules: the caller's input is wrong -> 400; a credential is missing or wrong -> 401;
 * allowed to be known but not to act -> 403; no such thing -> 404; the stored state
 * disagrees (another member won, the key exists, the object is in another state) -> 409;
 * the invitation existed but is no longer usable -> 410; the server itself failed ->
 * 500. Library codes that a handler could only see by relaying a client's protocol data
 * (decryption, Signal messages, frames) count as bad input: 400.
 */
#include "http.h"

unsigned kw_http_status(kw_err code)
{
    switch (code) {
    case KW_OK:
        return 200;

    /* The request is malformed or a field breaks its rule. */
    case KW_ERR_INVALID_ARGUMENT:
    case KW_ERR_BASE64:
    case KW_ERR_JSON:
    case KW_ERR_UNKNOWN_FIELD:
    case KW_ERR_INVALID_KEY:
    case KW_ERR_INVALID_SIGNATURE:
    case KW_ERR_DECRYPT:
    case KW_ERR_NO_SESSION:
    case KW_ERR_DUPLICATE_MESSAGE:
    case KW_ERR_INVALID_MESSAGE:
    case KW_ERR_UNTRUSTED_IDENTITY:
    case KW_ERR_INVALID_PREKEY_ID:
    case KW_ERR_NO_SENDER_KEY:
    case KW_ERR_FRAME_TOO_SHORT:
    case KW_ERR_FRAME_AUTH:
    case KW_ERR_NO_KEY:
    case KW_ERR_KEY_EXCHANGE_FAILED:
    case KW_ERR_NOT_ROTATOR:
    case KW_ERR_LEGACY_MESSAGE:
    case KW_ERR_INVALID_VERSION:
        return 400;

    /* Authentication (DESIGN.md section 4). */
    case KW_ERR_MISSING_AUTH_HEADERS:
    case KW_ERR_INVALID_AUTH_HEADERS:
    case KW_ERR_REQUEST_EXPIRED:
    case KW_ERR_UNKNOWN_CLIENT:
    case KW_ERR_SESSION_EXPIRED:
    case KW_ERR_AUTH_SIGNATURE:
    case KW_ERR_DUPLICATE_REQUEST:
    case KW_ERR_UNAUTHORIZED:
        return 401;

    case KW_ERR_FORBIDDEN:
        return 403;

    case KW_ERR_NOT_FOUND:
    case KW_ERR_UNKNOWN_INVITATION:
    case KW_ERR_NOT_PRESENT:
        return 404;

    case KW_ERR_METHOD_NOT_ALLOWED:
        return 405;

    /* The stored state disagrees with the request. */
    case KW_ERR_CONFLICT:
    case KW_ERR_ALREADY_ADMITTED:
    case KW_ERR_ALREADY_DECLINED:
    case KW_ERR_NO_HOST_PRESENT:
    case KW_ERR_STATE:
        return 409;

    case KW_ERR_INVITATION_EXPIRED:
    case KW_ERR_INVITATION_REVOKED:
    case KW_ERR_INVITATION_EXHAUSTED:
        return 410;

    case KW_ERR_PAYLOAD_TOO_LARGE:
        return 413;

    case KW_ERR_RATE_LIMITED:
        return 429;

    /* The server failed; the client can only retry. BUFFER_TOO_SMALL is the server's own
     * buffer, never the client's. */
    case KW_ERR_INTERNAL:
    case KW_ERR_NOMEM:
    case KW_ERR_STORE:
    case KW_ERR_CRYPTO:
    case KW_ERR_IO:
    case KW_ERR_BUFFER_TOO_SMALL:
        return 500;

    /* A part this keywaved was built without. */
    case KW_ERR_NOT_BUILT:
        return 501;

    /* A feature that needs configuration this server lacks (LiveKit, Jitsi). */
    case KW_ERR_NOT_CONFIGURED:
        return 503;

    /* Something the server waited on did not answer in time. */
    case KW_ERR_TIMEOUT:
        return 504;
    }
    return 500; /* a value outside the enum: a bug, failed safely */
}
