/*
 * api.c — signed JSON requests and server errors (api.h).
 */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keywave/random.h"
#include "keywave/request_sign.h"

typedef struct signed_headers {
    char timestamp[24];
    char nonce[KW_REQUEST_NONCE_NEW_CHARS + 1];
    char signature[KW_REQUEST_SIGNATURE_CHARS + 1];
} signed_headers;

static kw_err sign(const kwc_device *dev, const char *method, const char *target, const char *body,
                   size_t body_len, signed_headers *h, kw_error *err)
{
    snprintf(h->timestamp, sizeof h->timestamp, "%" PRId64, kwc_now_ms());
    kw_err rc = kw_request_nonce_new(kw_random_system(), h->nonce);
    if (rc == KW_OK)
        rc = kw_request_sign(dev->session_secret, dev->client_id, h->timestamp, h->nonce, method,
                             target, (const uint8_t *)body, body_len, h->signature);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "cannot sign the request");
}

/* Turns a non-2xx answer into a code and a one-line detail. */
static kw_err server_error(const kwc_http_response *r, kw_error *err)
{
    json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
    const char *token = json_string_value(json_object_get(doc, "error"));
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    kw_err code = token != NULL ? kw_err_from_name(token) : KW_ERR_INTERNAL;
    if (token == NULL)
        kw_error_set(err, code, "%d (no error token)", r->status);
    else if (detail != NULL)
        kw_error_set(err, code, "%d %s: %s", r->status, token, detail);
    else
        kw_error_set(err, code, "%d %s", r->status, token);
    json_decref(doc);
    return code;
}

kw_err kwc_api_call(kwc_api *api, const char *method, const char *target, json_t *body,
                    json_t **out, int *status, kw_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (status != NULL)
        *status = 0;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body != NULL && text == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "request body");
    size_t len = text != NULL ? strlen(text) : 0;
    kwc_header hs[4];
    size_t n = 0;
    signed_headers sh;
    char bearer[KWC_SECRET_MAX + 16];
    kw_err rc = KW_OK;
    if (api->member != NULL) {
        rc = sign(api->member, method, target, text, len, &sh, err);
        hs[n++] = (kwc_header){"X-Client-ID", api->member->client_id};
        hs[n++] = (kwc_header){"X-Timestamp", sh.timestamp};
        hs[n++] = (kwc_header){"X-Nonce", sh.nonce};
        hs[n++] = (kwc_header){"X-Signature", sh.signature};
    } else if (api->guest_secret != NULL) {
        snprintf(bearer, sizeof bearer, "Bearer %s", api->guest_secret);
        hs[n++] = (kwc_header){"Authorization", bearer};
    }
    kwc_http_response r = {0, NULL, 0};
    if (rc == KW_OK)
        rc = kwc_http_request(api->net, method, target, hs, n, text, len, KWC_HTTP_TIMEOUT_MS, &r,
                              err);
    memset(bearer, 0, sizeof bearer);
    if (text != NULL) {
        memset(text, 0, len);
        free(text);
    }
    if (rc != KW_OK)
        return rc;
    if (status != NULL)
        *status = r.status;
    if (r.status < 200 || r.status > 299) {
        rc = server_error(&r, err);
        kwc_http_response_clear(&r);
        return rc;
    }
    if (out != NULL) {
        json_error_t jerr;
        *out = r.body_len == 0 ? json_null() : json_loadb(r.body, r.body_len, 0, &jerr);
        if (*out == NULL)
            rc = kw_error_set(err, KW_ERR_JSON, "%s %s: answer is not JSON: %s", method, target,
                              jerr.text);
    }
    kwc_http_response_clear(&r);
    return rc;
}

kw_err kwc_api_member_auth(const kwc_device *dev, json_t **out, kw_error *err)
{
    signed_headers sh;
    *out = NULL;
    kw_err rc = sign(dev, "GET", "/socket.io/auth", NULL, 0, &sh, err);
    if (rc != KW_OK)
        return rc;
    json_int_t ts = (json_int_t)strtoll(sh.timestamp, NULL, 10);
    *out = json_pack("{s:s, s:I, s:s, s:s}", "client_id", dev->client_id, "timestamp", ts, "nonce",
                     sh.nonce, "signature", sh.signature);
    return *out != NULL ? KW_OK : kw_error_set(err, KW_ERR_NOMEM, "auth");
}
