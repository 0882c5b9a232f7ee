/*
 * err.c — names and sentences for kw_err codes. Both are switches with no default so
 * that -Wswitch flags a code added to err.h and forgotten here.
 */
#include "keywave/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *kw_err_name(kw_err code)
{
    switch (code) {
    case KW_OK:
        return "ok";
    case KW_ERR_INTERNAL:
        return "internal";
    case KW_ERR_NOMEM:
        return "out_of_memory";
    case KW_ERR_INVALID_ARGUMENT:
        return "invalid_field";
    case KW_ERR_BASE64:
        return "invalid_base64";
    case KW_ERR_JSON:
        return "invalid_json";
    case KW_ERR_UNKNOWN_FIELD:
        return "unknown_field";
    case KW_ERR_INVALID_KEY:
        return "invalid_key";
    case KW_ERR_INVALID_SIGNATURE:
        return "invalid_signature";
    case KW_ERR_STORE:
        return "store_error";
    case KW_ERR_NOT_FOUND:
        return "not_found";
    case KW_ERR_CRYPTO:
        return "crypto_error";
    case KW_ERR_DECRYPT:
        return "decrypt_failed";
    case KW_ERR_NO_SESSION:
        return "no_session";
    case KW_ERR_DUPLICATE_MESSAGE:
        return "duplicate_message";
    case KW_ERR_INVALID_MESSAGE:
        return "invalid_message";
    case KW_ERR_UNTRUSTED_IDENTITY:
        return "untrusted_identity";
    case KW_ERR_INVALID_PREKEY_ID:
        return "unknown_pre_key";
    case KW_ERR_FORBIDDEN:
        return "forbidden";
    case KW_ERR_NO_SENDER_KEY:
        return "no_sender_key";
    case KW_ERR_FRAME_TOO_SHORT:
        return "frame_too_short";
    case KW_ERR_FRAME_AUTH:
        return "frame_auth_failed";
    case KW_ERR_NO_KEY:
        return "no_key";
    case KW_ERR_KEY_EXCHANGE_FAILED:
        return "key_exchange_failed";
    case KW_ERR_STATE:
        return "invalid_state";
    case KW_ERR_NOT_BUILT:
        return "not_built";
    case KW_ERR_BUFFER_TOO_SMALL:
        return "buffer_too_small";
    case KW_ERR_IO:
        return "io_error";
    case KW_ERR_NOT_ROTATOR:
        return "not_rotator";
    case KW_ERR_LEGACY_MESSAGE:
        return "legacy_message";
    case KW_ERR_INVALID_VERSION:
        return "invalid_version";
    case KW_ERR_MISSING_AUTH_HEADERS:
        return "missing_auth_headers";
    case KW_ERR_INVALID_AUTH_HEADERS:
        return "invalid_auth_headers";
    case KW_ERR_REQUEST_EXPIRED:
        return "request_expired";
    case KW_ERR_UNKNOWN_CLIENT:
        return "no_session";
    case KW_ERR_SESSION_EXPIRED:
        return "session_expired";
    case KW_ERR_AUTH_SIGNATURE:
        return "invalid_signature";
    case KW_ERR_DUPLICATE_REQUEST:
        return "duplicate_request";
    case KW_ERR_UNAUTHORIZED:
        return "unauthorized";
    case KW_ERR_RATE_LIMITED:
        return "rate_limited";
    case KW_ERR_CONFLICT:
        return "conflict";
    case KW_ERR_ALREADY_ADMITTED:
        return "already_admitted";
    case KW_ERR_ALREADY_DECLINED:
        return "already_declined";
    case KW_ERR_NO_HOST_PRESENT:
        return "no_host_present";
    case KW_ERR_UNKNOWN_INVITATION:
        return "unknown_invitation";
    case KW_ERR_INVITATION_EXPIRED:
        return "invitation_expired";
    case KW_ERR_INVITATION_REVOKED:
        return "invitation_revoked";
    case KW_ERR_INVITATION_EXHAUSTED:
        return "invitation_exhausted";
    case KW_ERR_NOT_PRESENT:
        return "not_present";
    case KW_ERR_PAYLOAD_TOO_LARGE:
        return "payload_too_large";
    case KW_ERR_METHOD_NOT_ALLOWED:
        return "method_not_allowed";
    case KW_ERR_NOT_CONFIGURED:
        return "not_configured";
    case KW_ERR_TIMEOUT:
        return "timeout";
    }
    return "unknown_error";
}

kw_err kw_err_from_name(const char *name)
{
    if (name == NULL)
        return KW_ERR_INTERNAL;
    /* Codes are dense from 0 to KW_ERR_TIMEOUT (err.h never renumbers or skips). */
    for (int c = KW_OK; c <= KW_ERR_TIMEOUT; c++)
        if (strcmp(kw_err_name((kw_err)c), name) == 0)
            return (kw_err)c;
    return KW_ERR_INTERNAL;
}

const char *kw_strerror(kw_err code)
{
    switch (code) {
    case KW_OK:
        return "No error.";
    case KW_ERR_INTERNAL:
        return "Internal error.";
    case KW_ERR_NOMEM:
        return "Out of memory.";
    case KW_ERR_INVALID_ARGUMENT:
        return "A field has the wrong type, size or range.";
    case KW_ERR_BASE64:
        return "A value is not standard padded base64.";
    case KW_ERR_JSON:
        return "The input is not JSON of the expected shape.";
    case KW_ERR_UNKNOWN_FIELD:
        return "The input holds a field that is not known.";
    case KW_ERR_INVALID_KEY:
        return "A public key is not 33 bytes starting with 0x05.";
    case KW_ERR_INVALID_SIGNATURE:
        return "A signature is malformed or does not verify.";
    case KW_ERR_STORE:
        return "The key store failed.";
    case KW_ERR_NOT_FOUND:
        return "No such record.";
    case KW_ERR_CRYPTO:
        return "The crypto provider failed.";
    case KW_ERR_DECRYPT:
        return "A ciphertext failed authentication.";
    case KW_ERR_NO_SESSION:
        return "There is no session with that address.";
    case KW_ERR_DUPLICATE_MESSAGE:
        return "The message was already received.";
    case KW_ERR_INVALID_MESSAGE:
        return "The message does not parse.";
    case KW_ERR_UNTRUSTED_IDENTITY:
        return "The peer's identity key changed.";
    case KW_ERR_INVALID_PREKEY_ID:
        return "The message uses a pre-key that is not held.";
    case KW_ERR_FORBIDDEN:
        return "This role may not do that.";
    case KW_ERR_NO_SENDER_KEY:
        return "No sender key for that group and sender.";
    case KW_ERR_FRAME_TOO_SHORT:
        return "The frame is too short.";
    case KW_ERR_FRAME_AUTH:
        return "The frame failed authentication.";
    case KW_ERR_NO_KEY:
        return "No key is set.";
    case KW_ERR_KEY_EXCHANGE_FAILED:
        return "Key exchange failed after three attempts.";
    case KW_ERR_STATE:
        return "The call does not fit the current state.";
    case KW_ERR_NOT_BUILT:
        return "That part was not built.";
    case KW_ERR_BUFFER_TOO_SMALL:
        return "The output buffer is too small.";
    case KW_ERR_IO:
        return "An operating-system call failed.";
    case KW_ERR_NOT_ROTATOR:
        return "Only the longest-present participant rotates the key.";
    case KW_ERR_LEGACY_MESSAGE:
        return "The message uses an older protocol version.";
    case KW_ERR_INVALID_VERSION:
        return "The message uses an unknown protocol version.";
    case KW_ERR_MISSING_AUTH_HEADERS:
        return "A request-signing header is missing.";
    case KW_ERR_INVALID_AUTH_HEADERS:
        return "A request-signing header is malformed.";
    case KW_ERR_REQUEST_EXPIRED:
        return "The request timestamp is more than 5 minutes off.";
    case KW_ERR_UNKNOWN_CLIENT:
        return "No device session has that client id.";
    case KW_ERR_SESSION_EXPIRED:
        return "The device session has expired.";
    case KW_ERR_AUTH_SIGNATURE:
        return "The request signature does not verify.";
    case KW_ERR_DUPLICATE_REQUEST:
        return "The request nonce was already used.";
    case KW_ERR_UNAUTHORIZED:
        return "Authentication is missing or unknown.";
    case KW_ERR_RATE_LIMITED:
        return "Too many requests; retry later.";
    case KW_ERR_CONFLICT:
        return "The request conflicts with stored state.";
    case KW_ERR_ALREADY_ADMITTED:
        return "The guest was already admitted.";
    case KW_ERR_ALREADY_DECLINED:
        return "The guest was already declined.";
    case KW_ERR_NO_HOST_PRESENT:
        return "No member of the meeting is present.";
    case KW_ERR_UNKNOWN_INVITATION:
        return "No invitation has that token.";
    case KW_ERR_INVITATION_EXPIRED:
        return "The invitation has expired.";
    case KW_ERR_INVITATION_REVOKED:
        return "The invitation was revoked.";
    case KW_ERR_INVITATION_EXHAUSTED:
        return "The invitation has been used up.";
    case KW_ERR_NOT_PRESENT:
        return "That device is not present in the meeting.";
    case KW_ERR_PAYLOAD_TOO_LARGE:
        return "The request body is too large.";
    case KW_ERR_METHOD_NOT_ALLOWED:
        return "That method is not allowed on this path.";
    case KW_ERR_NOT_CONFIGURED:
        return "The server is not configured for this.";
    case KW_ERR_TIMEOUT:
        return "No answer in time.";
    }
    return "Unknown error.";
}

kw_err kw_error_set(kw_error *err, kw_err code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        err->detail[0] = '\0';
    return code;
}

void kw_error_clear(kw_error *err)
{
    if (err == NULL)
        return;
    err->code = KW_OK;
    err->detail[0] = '\0';
}
