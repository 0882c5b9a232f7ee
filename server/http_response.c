/*
 * http_response.c — the kw_response helpers handlers fill their replies with. Bodies are
 * always a private malloc'd copy, so a handler never has to think about lifetimes: the
 * HTTP layer frees the body once the last byte is written.
 */
#include "http.h"

#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void kw_response_init(kw_response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 200;
}

void kw_response_free(kw_response *res)
{
    if (res == NULL)
        return;
    /* Bodies may carry secrets (an enrollment's session_secret, a guest_secret). */
    if (res->body != NULL)
        kw_wipe(res->body, res->body_len);
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}

kw_err kw_response_bytes(kw_response *res, unsigned status, const char *content_type,
                         const void *body, size_t len)
{
    kw_response_free(res);
    /* One spare byte so a text body is NUL-terminated for whoever reads it in a test. */
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return KW_ERR_NOMEM;
    if (len > 0)
        memcpy(copy, body, len);
    copy[len] = '\0';
    res->body = copy;
    res->body_len = len;
    res->status = status;
    res->content_type = content_type;
    res->html = 0;
    return KW_OK;
}

kw_err kw_response_json(kw_response *res, unsigned status, const char *json)
{
    return kw_response_bytes(res, status, NULL, json, json ? strlen(json) : 0);
}

kw_err kw_response_html(kw_response *res, unsigned status, const char *html, size_t len)
{
    kw_err rc = kw_response_bytes(res, status, KW_CONTENT_TYPE_HTML, html, len);
    if (rc == KW_OK)
        res->html = 1;
    return rc;
}

kw_err kw_response_take_json(kw_response *res, unsigned status, json_t *obj)
{
    kw_response_free(res);
    if (obj == NULL)
        return KW_ERR_NOMEM; /* what a failed json_pack / json_object means */
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        return KW_ERR_NOMEM;
    res->body = text;
    res->body_len = strlen(text);
    res->status = status;
    res->content_type = NULL;
    res->html = 0;
    return KW_OK;
}

kw_err kw_response_error(kw_response *res, kw_err code, const char *detail)
{
    if (detail == NULL || detail[0] == '\0')
        detail = kw_strerror(code);
    /* Details may quote input: keep them printable ASCII, so valid JSON strings too. */
    char clean[KW_DETAIL_MAX];
    size_t n = 0;
    for (; detail[n] != '\0' && n + 1 < sizeof clean; n++) {
        unsigned char c = (unsigned char)detail[n];
        clean[n] = (char)c;
        if (c < 0x20 || c > 0x7e)
            clean[n] = '?';
    }
    clean[n] = '\0';
    return kw_response_take_json(
        res, kw_http_status(code),
        json_pack("{s:s, s:s}", "error", kw_err_name(code), "detail", clean));
}
