/*
 * state.h — what `keywave` keeps between runs, under $XDG_DATA_HOME/keywave (default
 * ~/.local/share/keywave; KEYWAVE_DATA_DIR or --data-dir override it), directory 0700,
 * files 0600:
 *   device.json   the enrolled device: server URL, user id, device id, client id and the
 *                 session secret (the secret is why the file is 0600)
 *   keys/         the device's Signal key store (libkeywave's file store)
 * A headless guest keeps nothing: its keys live in memory for the process (DESIGN.md §6).
 */
#ifndef KEYWAVE_CLIENT_STATE_H
#define KEYWAVE_CLIENT_STATE_H

#include <stdint.h>

#include "cli.h"
#include "keywave/identity.h"
#include "keywave/store.h"

#define KWC_URL_MAX    512
#define KWC_ID_MAX     128
#define KWC_SECRET_MAX 128

/* An enrolled device. Holds the session secret: kwc_device_wipe it. */
typedef struct kwc_device {
    char server[KWC_URL_MAX + 1];
    char user_id[KWC_ID_MAX + 1];
    uint32_t device_id;
    char client_id[KWC_ID_MAX + 1];
    char session_secret[KWC_SECRET_MAX + 1];
} kwc_device;

/* Fills ctx->data_dir from override (may be NULL), KEYWAVE_DATA_DIR, XDG_DATA_HOME or HOME
 * and creates it 0700. Errors: KW_ERR_IO (detail names the path), KW_ERR_INVALID_ARGUMENT
 * (no HOME, path too long). */
kw_err kwc_state_init(kwc_ctx *ctx, const char *override, kw_error *err) KW_MUST_CHECK;

/* Reads device.json. Errors: KW_ERR_NOT_FOUND (not enrolled), KW_ERR_IO, KW_ERR_JSON. */
kw_err kwc_device_load(const kwc_ctx *ctx, kwc_device *out, kw_error *err) KW_MUST_CHECK;

/* Writes device.json atomically, 0600. Errors: KW_ERR_IO, KW_ERR_NOMEM. */
kw_err kwc_device_save(const kwc_ctx *ctx, const kwc_device *dev, kw_error *err) KW_MUST_CHECK;

/* Removes device.json and the key store (a re-enrollment starts clean). */
kw_err kwc_device_forget(const kwc_ctx *ctx, kw_error *err) KW_MUST_CHECK;

void kwc_device_wipe(kwc_device *dev);

/* Opens the device's key store and identity (member role, self = user id / device id).
 * *store and *id are the caller's (kw_identity_free then kw_store_free). */
kw_err kwc_member_identity(const kwc_ctx *ctx, const kwc_device *dev, kw_store **store,
                           kw_identity **id, kw_error *err) KW_MUST_CHECK;

/* 1 when s is 1..128 characters of [A-Za-z0-9_-] (safe in a path without escaping). */
int kwc_id_ok(const char *s);

#endif
