/*
 * session.h — 1:1 Signal sessions (X3DH + Double Ratchet, classic v3 wire format).
 *
 * An address is a name (user id, or "guest_<session id>") and a device id. Message types
 * on the wire: KW_MSG_PREKEY (3) until the peer has answered, then KW_MSG_NORMAL (2);
 * JavaScript libraries number the normal message 1, so decrypt accepts 1 or 2. Bodies are
 * standard padded base64 of the serialized message.
 */
#ifndef KEYWAVE_SESSION_H
#define KEYWAVE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/identity.h"

#define KW_MSG_NORMAL    2 /* SignalMessage ("whisper"); 1 accepted on input */
#define KW_MSG_NORMAL_JS 1
#define KW_MSG_PREKEY    3 /* PreKeySignalMessage */

/* Limits shared by 1:1 and group messages, so that whatever one side can encrypt the
 * other can decrypt: plaintext at most 256 KiB, a base64 body at most 512 KiB. */
#define KW_MESSAGE_PLAINTEXT_MAX ((size_t)256 * 1024)
#define KW_MESSAGE_BODY_MAX      ((size_t)512 * 1024)

/*
 * Starts a session with (name, device_id) from a validated bundle (X3DH). Replaces an
 * existing session with that address. Errors: KW_ERR_UNTRUSTED_IDENTITY (the address had
 * another identity key), KW_ERR_INVALID_KEY, KW_ERR_INVALID_SIGNATURE, KW_ERR_STORE.
 */
KW_MUST_CHECK kw_err kw_session_process_bundle(kw_identity *id, const char *name,
                                               uint32_t device_id, const kw_bundle *b,
                                               kw_error *err);

/* 1 when a session with the address exists, else 0. */
int kw_session_exists(kw_identity *id, const char *name, uint32_t device_id);

/* Forgets the session with the address (KW_OK also when there was none). */
KW_MUST_CHECK kw_err kw_session_delete(kw_identity *id, const char *name, uint32_t device_id);

/*
 * Encrypts pt[0..len) for the address. *type is KW_MSG_PREKEY or KW_MSG_NORMAL; *body is
 * base64, malloc'd, owned by the caller. Errors: KW_ERR_INVALID_ARGUMENT (plaintext over
 * KW_MESSAGE_PLAINTEXT_MAX), KW_ERR_NO_SESSION, KW_ERR_STORE.
 */
KW_MUST_CHECK kw_err kw_session_encrypt(kw_identity *id, const char *name, uint32_t device_id,
                                        const uint8_t *pt, size_t len, int *type, char **body,
                                        kw_error *err);

/*
 * Decrypts a message from the address. type is 3 (PreKey) or 1/2 (normal). On success *pt
 * is malloc'd (owned by the caller, who should wipe it) with *pt_len bytes; a PreKey
 * message creates the session and deletes the one-time pre-key it used. Errors:
 * KW_ERR_INVALID_ARGUMENT (type), KW_ERR_BASE64, KW_ERR_INVALID_MESSAGE (does not parse,
 * or does not authenticate: libsignal-protocol-c reports a bad MAC with the same code as a
 * parse failure, so a tampered message lands here; KW_ERR_DECRYPT is kept for a bad MAC
 * should the library ever tell them apart), KW_ERR_DUPLICATE_MESSAGE (replay), KW_ERR_NO_SESSION,
 * KW_ERR_INVALID_PREKEY_ID (the pre-key was already used or never existed),
 * KW_ERR_UNTRUSTED_IDENTITY, KW_ERR_LEGACY_MESSAGE, KW_ERR_INVALID_VERSION, KW_ERR_STORE.
 */
KW_MUST_CHECK kw_err kw_session_decrypt(kw_identity *id, const char *name, uint32_t device_id,
                                        int type, const char *body, uint8_t **pt, size_t *pt_len,
                                        kw_error *err);

#endif
