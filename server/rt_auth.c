/*
 * rt_auth.c — who connects to a namespace (DESIGN.md section 4, "Socket.IO").
 *
 * Members connect to "/" with CONNECT auth {client_id, timestamp (number, ms), nonce,
 * signature} signed exactly like `GET /socket.io/auth` with an empty body, so the same
 * check as HTTP runs (kw_auth_member_check: skew, session, constant-time HMAC, then the
 * nonce, in the store HTTP uses). Guests connect to "/external" with {session_id,
 * guest_secret}, checked by the bearer code of auth_guest.c (kw_auth_guest_secret); the
 * secret must belong to the session named. Neither secret reaches a log or a detail.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "rt.h"
#include "server.h"

/* The string field name of obj, or NULL; *bad = 1 when present but not a string. */
static const char *string_field(json_t *obj, const char *name, int *bad)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* 1 when obj has a key outside allowed[0..n). */
static int has_unknown(json_t *obj, const char *const *allowed, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(key, allowed[i]) != 0)
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

kw_err kw_rt_auth_member(struct kw_server *srv, json_t *auth, int64_t now_ms, kw_rt_member *m,
                         kw_error *err)
{
    static const char *const fields[] = {"client_id", "timestamp", "nonce", "signature"};
    memset(m, 0, sizeof *m);
    if (auth == NULL)
        return kw_error_set(err, KW_ERR_MISSING_AUTH_HEADERS,
                            "CONNECT needs auth {client_id, timestamp, nonce, signature}");
    if (!json_is_object(auth) || has_unknown(auth, fields, 4))
        return kw_error_set(err, KW_ERR_INVALID_AUTH_HEADERS,
                            "auth holds only client_id, timestamp, nonce and signature");
    int bad = 0;
    kw_request_auth h = {string_field(auth, "client_id", &bad), NULL,
                         string_field(auth, "nonce", &bad), string_field(auth, "signature", &bad)};
    json_t *ts = json_object_get(auth, "timestamp");
    char ts_text[24];
    if (ts != NULL) {
        if (!json_is_integer(ts) || json_integer_value(ts) < 0) {
            bad = 1;
        } else {
            snprintf(ts_text, sizeof ts_text, "%lld", (long long)json_integer_value(ts));
            h.timestamp = ts_text;
        }
    }
    if (bad)
        return kw_error_set(err, KW_ERR_INVALID_AUTH_HEADERS,
                            "auth: client_id, nonce and signature are strings, timestamp an "
                            "integer (ms)");
    if (srv == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "authentication is not set up");
    kw_caller caller;
    kw_err rc =
        kw_auth_member_check(srv->db, &h, "GET", "/socket.io/auth", NULL, 0, now_ms, &caller, err);
    if (rc != KW_OK)
        return rc;
    if (strlen(caller.device_id) > KW_RT_DEVICE_ID_MAX)
        return kw_error_set(err, KW_ERR_INTERNAL, "device id too long");
    snprintf(m->user_id, sizeof m->user_id, "%s", caller.user_id);
    snprintf(m->device_id, sizeof m->device_id, "%s", caller.device_id);
    return KW_OK;
}

kw_err kw_rt_auth_guest(struct kw_server *srv, json_t *auth, int64_t now_ms, kw_rt_guest *g,
                        kw_error *err)
{
    static const char *const fields[] = {"session_id", "guest_secret"};
    memset(g, 0, sizeof *g);
    int bad = 0;
    const char *sid = NULL, *secret = NULL;
    if (json_is_object(auth) && !has_unknown(auth, fields, 2)) {
        sid = string_field(auth, "session_id", &bad);
        secret = string_field(auth, "guest_secret", &bad);
    }
    if (bad || sid == NULL || secret == NULL)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED,
                            "CONNECT needs auth {session_id, guest_secret} (strings)");
    if (srv == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "authentication is not set up");
    kw_caller caller;
    kw_err rc = kw_auth_guest_secret(srv->db, secret, strlen(secret), now_ms, &caller, err);
    if (rc != KW_OK)
        return rc;
    /* A secret alone decides who the guest is; the session id must name the same one. */
    if (strcmp(caller.session_id, sid) != 0)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED, "the secret is not that session's");
    snprintf(g->session_id, sizeof g->session_id, "%s", caller.session_id);
    snprintf(g->meeting_id, sizeof g->meeting_id, "%s", caller.meeting_id);
    return KW_OK;
}
