/*
 * api_invitations.c — invitations of external guests to one meeting (DESIGN.md section 7,
 * INV-9): the owner or a manager creates, lists and revokes them. A token is 32 lower-case
 * hex characters of 16 random bytes; it is a secret (INV-8): the router shows the
 * ":token" path parameter by its name in the access log, and no detail carries it.
 * An invitation may carry expires_at (must be in the future) and max_uses; the meeting
 * must allow external guests (409 conflict otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "api_meetings.h"
#include "crypto.h"
#include "db.h"
#include "server.h"

static kw_err post_invitation(kw_server *srv, const kw_request *req, kw_response *res,
                              kw_error *err)
{
    static const char *const fields[] = {"label", "expires_at", "max_uses", NULL};
    json_t *body = NULL;
    const char *label = NULL;
    int64_t expires_ms = 0, max_uses = 0;
    kw_db_invitation inv;
    memset(&inv, 0, sizeof inv);
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_err rc =
        kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_MANAGER, NULL, NULL, err);
    if (rc == KW_OK)
        rc = kw_api_body_optional(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_opt_string(body, "label", 0, KW_INVITATION_LABEL_MAX, &label, err);
    if (rc == KW_OK && json_object_get(body, "expires_at") != NULL)
        rc = kw_api_time_field(body, "expires_at", &expires_ms, err);
    if (rc == KW_OK && json_object_get(body, "max_uses") != NULL)
        rc = kw_api_int(body, "", "max_uses", 1, KW_INVITATION_MAX_USES_MAX, &max_uses, err);
    if (rc == KW_OK && json_object_get(body, "expires_at") != NULL && expires_ms <= req->now_ms)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "expires_at: must be in the future");
    if (rc == KW_OK)
        rc = srv->db->meetings->invitation_create(srv->db->ctx, req->params[0], req->caller.user_id,
                                                  label, expires_ms, max_uses, req->now_ms, &inv,
                                                  err);
    json_decref(body);
    if (rc != KW_OK)
        return rc;
    size_t url_len =
        strlen(srv->config.public_url) + sizeof "/join/meeting/" + KW_INVITATION_TOKEN_CHARS;
    char *url = malloc(url_len);
    if (url != NULL)
        snprintf(url, url_len, "%s/join/meeting/%s", srv->config.public_url, inv.token);
    rc = kw_response_take_json(
        res, 201,
        url == NULL ? NULL
                    : json_pack("{s:s, s:s, s:o?, s:o?}", "token", inv.token, "url", url,
                                "expires_at", kw_api_time_json(inv.expires_ms), "max_uses",
                                inv.max_uses ? json_integer(inv.max_uses) : json_null()));
    if (url != NULL) {
        kw_wipe(url, url_len);
        free(url);
    }
    kw_wipe(&inv, sizeof inv);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err get_invitations(kw_server *srv, const kw_request *req, kw_response *res,
                              kw_error *err)
{
    kw_db_invitation *list = NULL;
    size_t n = 0;
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_err rc =
        kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_MANAGER, NULL, NULL, err);
    if (rc == KW_OK)
        rc = srv->db->meetings->invitation_list(srv->db->ctx, req->params[0], &list, &n, err);
    if (rc != KW_OK)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        const kw_db_invitation *v = &list[i];
        json_t *item = json_pack("{s:s, s:s, s:o?, s:o?, s:o?, s:I, s:b}", "token", v->token,
                                 "label", v->label, "created_at", kw_api_time_json(v->created_ms),
                                 "expires_at", kw_api_time_json(v->expires_ms), "max_uses",
                                 v->max_uses ? json_integer(v->max_uses) : json_null(), "uses",
                                 (json_int_t)v->uses, "revoked", v->revoked_ms != 0);
        if (json_array_append_new(arr, item) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (list != NULL)
        kw_wipe(list, n * sizeof *list);
    free(list);
    rc = kw_response_take_json(res, 200, arr ? json_pack("{s:o}", "invitations", arr) : NULL);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err delete_invitation(kw_server *srv, const kw_request *req, kw_response *res,
                                kw_error *err)
{
    if (req->n_params != 2)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_err rc =
        kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_MANAGER, NULL, NULL, err);
    if (rc == KW_OK) /* INV-9: a revoked token stops working at once */
        rc = srv->db->meetings->invitation_revoke(srv->db->ctx, req->params[0], req->params[1],
                                                  req->now_ms, err);
    return rc == KW_OK ? kw_api_reply_ok(res, err) : rc;
}

const kw_route kw_routes_invitations[] = {
    {KW_POST, "/api/meetings/:id/invitations", KW_AUTH_MEMBER, post_invitation},
    {KW_GET, "/api/meetings/:id/invitations", KW_AUTH_MEMBER, get_invitations},
    {KW_DELETE, "/api/meetings/:id/invitations/:token", KW_AUTH_MEMBER, delete_invitation},
    {0, NULL, 0, NULL},
};
