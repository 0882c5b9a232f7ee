/*
 * signal_glue.h — internal: how libkeywave plugs into libsignal-protocol-c. The crypto
 * provider runs on lib/crypto.h, and the five store callback sets run on a kw_store, so
 * the Signal library never sees OpenSSL, files or a clock.
 */
#ifndef KEYWAVE_LIB_SIGNAL_GLUE_H
#define KEYWAVE_LIB_SIGNAL_GLUE_H

#include <signal_protocol.h>

#include "keywave/random.h"
#include "keywave/store.h"

/*
 * A signal_context whose crypto provider uses lib/crypto.h and rnd (borrowed; must
 * outlive the context). *out is owned by the caller (signal_context_destroy).
 */
kw_err kw_signal_context_new(const kw_random *rnd, signal_context **out);

/*
 * A store context whose callbacks keep every record in store (borrowed; must outlive the
 * result). *out is owned by the caller (signal_protocol_store_context_destroy).
 */
kw_err kw_signal_store_new(signal_context *ctx, kw_store *store,
                           signal_protocol_store_context **out);

/* Maps a libsignal-protocol-c result code to a kw_err. */
kw_err kw_from_signal(int sg_result);

/* Store key layout, shared by the glue and the key lifecycle. */
#define KW_KEY_IDENTITY      "identity/keypair"
#define KW_KEY_REGISTRATION  "identity/registration_id"
#define KW_KEY_PREKEY_PREFIX "prekey/"
#define KW_KEY_SPK_PREFIX    "signed_prekey/"

/* "prekey/<id>" / "signed_prekey/<id>" into buf. */
void kw_key_prekey(char *buf, size_t size, uint32_t id);
void kw_key_signed_prekey(char *buf, size_t size, uint32_t id);

/*
 * A name's fixed-length store id: the first 16 bytes of SHA-256(name) in hex (32 chars).
 * Names are up to KW_NAME_MAX bytes of any text; hashing keeps every record key short and
 * file-name safe while one name's records still share an exact prefix. buf must hold 33.
 */
kw_err kw_key_name_id(char buf[33], const char *name, size_t name_len);

#endif
