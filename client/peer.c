/*
 * peer.c — Signal sessions and messages with meeting peers (peer.h).
 */
#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keywave/bundle.h"
#include "keywave/session.h"

int kwc_peer_member(const char *user_id, const char *device_id, kwc_peer *out)
{
    long long dev;
    memset(out, 0, sizeof *out);
    if (!kwc_id_ok(user_id) || kwc_parse_int(device_id, 1, 2147483647, &dev) != 0 ||
        device_id[0] == '0')
        return -1;
    snprintf(out->user_id, sizeof out->user_id, "%s", user_id);
    snprintf(out->device_str, sizeof out->device_str, "%s", device_id);
    snprintf(out->name, sizeof out->name, "%s", user_id);
    out->device = (uint32_t)dev;
    return 0;
}

int kwc_peer_guest(const char *session_id, kwc_peer *out)
{
    memset(out, 0, sizeof *out);
    if (!kwc_id_ok(session_id))
        return -1;
    out->is_guest = 1;
    snprintf(out->session_id, sizeof out->session_id, "%s", session_id);
    snprintf(out->name, sizeof out->name, "guest_%s", session_id);
    out->device = 1;
    return 0;
}

int kwc_peer_parse(const char *peer_id, kwc_peer *out)
{
    if (strncmp(peer_id, "guest_", 6) == 0)
        return kwc_peer_guest(peer_id + 6, out);
    const char *colon = strrchr(peer_id, ':');
    if (colon == NULL || (size_t)(colon - peer_id) > KWC_ID_MAX)
        return -1;
    char user[KWC_ID_MAX + 1];
    memcpy(user, peer_id, (size_t)(colon - peer_id));
    user[colon - peer_id] = '\0';
    return kwc_peer_member(user, colon + 1, out);
}

void kwc_peer_id(const kwc_peer *p, char *out, size_t cap)
{
    if (p->is_guest)
        snprintf(out, cap, "%s", p->name);
    else
        snprintf(out, cap, "%s:%s", p->user_id, p->device_str);
}

kw_err kwc_peer_ensure_session(kwc_api *api, kw_identity *id, const kwc_peer *p,
                               const char *bundle_target, kw_error *err)
{
    if (kw_session_exists(id, p->name, p->device))
        return KW_OK;
    json_t *doc = NULL;
    kw_err rc = kwc_api_call(api, "GET", bundle_target, NULL, &doc, NULL, err);
    if (rc != KW_OK)
        return rc;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "bundle");
    kw_bundle b;
    rc = kw_bundle_from_json(text, strlen(text), &b, err);
    free(text);
    if (rc == KW_OK)
        rc = kw_session_process_bundle(id, p->name, p->device, &b, err);
    return rc;
}

kw_err kwc_peer_encrypt(kw_identity *id, const kwc_peer *p, const char *text, char **body,
                        int *type, kw_error *err)
{
    return kw_session_encrypt(id, p->name, p->device, (const uint8_t *)text, strlen(text), type,
                              body, err);
}

kw_err kwc_peer_decrypt(kw_identity *id, const kwc_peer *p, int type, const char *body, char **text,
                        size_t *len, kw_error *err)
{
    uint8_t *pt = NULL;
    size_t n = 0;
    kw_err rc;
    *text = NULL;
    if (type == 0) {
        rc = kw_session_decrypt(id, p->name, p->device, KW_MSG_PREKEY, body, &pt, &n, err);
        if (rc == KW_ERR_INVALID_MESSAGE)
            rc = kw_session_decrypt(id, p->name, p->device, KW_MSG_NORMAL, body, &pt, &n, err);
    } else
        rc = kw_session_decrypt(id, p->name, p->device, type, body, &pt, &n, err);
    if (rc != KW_OK)
        return rc;
    char *s = malloc(n + 1);
    if (s == NULL) {
        memset(pt, 0, n);
        free(pt);
        return kw_error_set(err, KW_ERR_NOMEM, "plaintext");
    }
    if (n > 0)
        memcpy(s, pt, n);
    s[n] = '\0';
    memset(pt, 0, n);
    free(pt);
    *text = s;
    if (len != NULL)
        *len = n;
    return KW_OK;
}

void kwc_free_secret(char *s)
{
    if (s != NULL) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

void kwc_payload_kind(const char *json, char *type, size_t tcap, char *request_id, size_t rcap)
{
    type[0] = '\0';
    request_id[0] = '\0';
    json_t *doc = json_loads(json, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "type"));
    const char *r = json_string_value(json_object_get(doc, "request_id"));
    if (t != NULL)
        snprintf(type, tcap, "%s", t);
    if (r != NULL)
        snprintf(request_id, rcap, "%s", r);
    /* The tree may hold the key (type media_key): jansson frees it without wiping, the
     * same as the library's own decode path; the plaintext copy is what we wipe. */
    json_decref(doc);
}
