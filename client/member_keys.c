/*
 * member_keys.c — uploading and refreshing a member device's keys (member_keys.h).
 */
#include "member_keys.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Parses a JSON text the library made; frees (after wiping) the text. */
static json_t *load_owned(char *text, kw_error *err)
{
    json_t *doc = json_loads(text, 0, NULL);
    memset(text, 0, strlen(text));
    free(text);
    if (doc == NULL)
        kw_error_set(err, KW_ERR_JSON, "key export is not JSON");
    return doc;
}

kw_err kwc_member_keys_publish(kwc_api *api, kw_identity *id, kw_error *err)
{
    kw_err rc = kw_keys_setup(id, kwc_now_ms(), NULL, NULL, NULL, err);
    char *text = NULL;
    if (rc == KW_OK)
        rc = kw_keys_export_json(id, &text, err);
    if (rc != KW_OK)
        return rc;
    json_t *doc = load_owned(text, err);
    if (doc == NULL)
        return KW_ERR_JSON;
    json_t *ident = json_pack("{s:O, s:O}", "identity_key", json_object_get(doc, "identity_key"),
                              "registration_id", json_object_get(doc, "registration_id"));
    json_t *pre = json_pack("{s:O}", "pre_keys", json_object_get(doc, "pre_keys"));
    if (ident == NULL || pre == NULL)
        rc = kw_error_set(err, KW_ERR_NOMEM, "key upload");
    if (rc == KW_OK)
        rc = kwc_api_call(api, "PUT", "/api/keys/identity", ident, NULL, NULL, err);
    if (rc == KW_OK)
        rc = kwc_api_call(api, "PUT", "/api/keys/signed-prekey",
                          json_object_get(doc, "signed_pre_key"), NULL, NULL, err);
    if (rc == KW_OK && json_array_size(json_object_get(doc, "pre_keys")) > 0)
        rc = kwc_api_call(api, "POST", "/api/keys/prekeys", pre, NULL, NULL, err);
    json_decref(ident);
    json_decref(pre);
    json_decref(doc);
    return rc;
}

static kw_err server_count(kwc_api *api, size_t *count, kw_error *err)
{
    json_t *doc = NULL;
    kw_err rc = kwc_api_call(api, "GET", "/api/keys/count", NULL, &doc, NULL, err);
    if (rc != KW_OK)
        return rc;
    json_t *c = json_object_get(doc, "count");
    if (!json_is_integer(c) || json_integer_value(c) < 0)
        rc = kw_error_set(err, KW_ERR_JSON, "/api/keys/count: no count");
    else
        *count = (size_t)json_integer_value(c);
    json_decref(doc);
    return rc;
}

kw_err kwc_member_keys_refresh(kwc_api *api, kw_identity *id, size_t *count_out, size_t *uploaded,
                               kw_error *err)
{
    kw_setup_result res;
    memset(&res, 0, sizeof res);
    if (uploaded != NULL)
        *uploaded = 0;
    kw_err rc = kw_keys_setup(id, kwc_now_ms(), NULL, NULL, &res, err);
    if (rc == KW_OK && res.made_signed_pre_key) {
        char *text = NULL;
        rc = kw_keys_export_json(id, &text, err);
        json_t *doc = rc == KW_OK ? load_owned(text, err) : NULL;
        if (rc == KW_OK && doc == NULL)
            rc = KW_ERR_JSON;
        if (rc == KW_OK)
            rc = kwc_api_call(api, "PUT", "/api/keys/signed-prekey",
                              json_object_get(doc, "signed_pre_key"), NULL, NULL, err);
        json_decref(doc);
    }
    size_t count = 0;
    if (rc == KW_OK)
        rc = server_count(api, &count, err);
    char *batch = NULL;
    if (rc == KW_OK)
        rc = kw_keys_replenish(id, count, &batch, err);
    if (rc == KW_OK && batch != NULL) {
        json_t *doc = load_owned(batch, err);
        json_t *resp = NULL;
        rc = doc == NULL ? KW_ERR_JSON
                         : kwc_api_call(api, "POST", "/api/keys/prekeys", doc, &resp, NULL, err);
        if (rc == KW_OK) {
            if (uploaded != NULL)
                *uploaded = json_array_size(json_object_get(doc, "pre_keys"));
            count = (size_t)json_integer_value(json_object_get(resp, "count"));
        }
        json_decref(resp);
        json_decref(doc);
    }
    if (rc == KW_OK && count_out != NULL)
        *count_out = count;
    return rc;
}
