/*
 * member_keys.h — a member device's public keys on the server: the first upload after
 * enrollment, and keeping them fresh (signed pre-key at most 7 days old, one-time
 * pre-keys topped up by 30 when fewer than 10 remain: DESIGN.md §6).
 */
#ifndef KEYWAVE_CLIENT_MEMBER_KEYS_H
#define KEYWAVE_CLIENT_MEMBER_KEYS_H

#include <stddef.h>

#include "api.h"
#include "keywave/identity.h"

/* Makes missing keys (kw_keys_setup) and uploads identity, signed pre-key and the latest
 * pre-key batch. Errors: the library's and kwc_api_call's. */
kw_err kwc_member_keys_publish(kwc_api *api, kw_identity *id, kw_error *err) KW_MUST_CHECK;

/* Regenerates an expired signed pre-key (and uploads it), asks the server how many one-time
 * pre-keys remain and uploads a batch when below 10. *server_count (may be NULL) gets the
 * count after, *uploaded (may be NULL) how many were uploaded. */
kw_err kwc_member_keys_refresh(kwc_api *api, kw_identity *id, size_t *server_count,
                               size_t *uploaded, kw_error *err) KW_MUST_CHECK;

#endif
