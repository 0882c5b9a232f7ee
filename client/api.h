/*
 * api.h — keywaved's JSON API over net.h: member requests signed as DESIGN.md §4 says,
 * guest requests with the bearer secret, Socket.IO CONNECT auth for both namespaces, and
 * server errors turned into kw_err codes with a one-line detail.
 */
#ifndef KEYWAVE_CLIENT_API_H
#define KEYWAVE_CLIENT_API_H

#include <jansson.h>

#include "keywave/err.h"
#include "net.h"
#include "state.h"

#define KWC_HTTP_TIMEOUT_MS 15000

typedef struct kwc_api {
    kwc_net *net;             /* borrowed */
    const kwc_device *member; /* borrowed: sign as this device; NULL for none */
    const char *guest_secret; /* borrowed: Authorization: Bearer; NULL for none */
} kwc_api;

/*
 * One request: body is borrowed (NULL: none). On a 2xx answer *out (may be NULL) gets the
 * parsed JSON body (owned by the caller; JSON null for an empty body). Any other status
 * returns the code of the server's `error` token (kw_err_from_name; KW_ERR_INTERNAL when
 * unknown) with err's detail "<status> <token>[: <server detail>]"; *status (may be
 * NULL) gets the HTTP status (0 when no answer came). Errors: as said, plus net.h's
 * KW_ERR_IO / KW_ERR_TIMEOUT, KW_ERR_JSON (a 2xx body that is not JSON), KW_ERR_NOMEM.
 */
kw_err kwc_api_call(kwc_api *api, const char *method, const char *target, json_t *body,
                    json_t **out, int *status, kw_error *err) KW_MUST_CHECK;

/* The CONNECT auth object of namespace "/" for the member device (a fresh nonce and the
 * current time). *out owned by the caller. Errors: KW_ERR_NOMEM, KW_ERR_CRYPTO. */
kw_err kwc_api_member_auth(const kwc_device *dev, json_t **out, kw_error *err) KW_MUST_CHECK;

#endif
