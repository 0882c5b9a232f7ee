/*
 * api_channels.c — channels (DESIGN.md section 7): a member creates a channel, of type
 * "signal" (messages) or "webrtc" (video), and becomes its owner; the owner adds members.
 * A channel member gets a LiveKit token for it (api_media.c). Unknown channel 404; a
 * caller who is not the owner 403 (api_meetings.h).
 */
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "api_meetings.h"
#include "db.h"
#include "server.h"

static kw_err post_channel(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"name", "type", NULL};
    json_t *body = NULL;
    const char *name = NULL, *type = NULL;
    kw_db_channel c;
    kw_err rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "name", 1, KW_CHANNEL_NAME_MAX, &name, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "type", 1, 16, &type, err);
    if (rc == KW_OK)
        rc = srv->db->meetings->channel_create(srv->db->ctx, req->caller.user_id, name, type,
                                               req->now_ms, &c, err);
    json_decref(body);
    if (rc != KW_OK)
        return rc;
    rc = kw_response_take_json(res, 201,
                               json_pack("{s:s, s:s, s:s, s:s, s:o?}", "channel_id", c.channel_id,
                                         "name", c.name, "type", c.type, "owner_id", c.owner_id,
                                         "created_at", kw_api_time_json(c.created_ms)));
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err post_channel_member(kw_server *srv, const kw_request *req, kw_response *res,
                                  kw_error *err)
{
    static const char *const fields[] = {"user_id", NULL};
    json_t *body = NULL;
    const char *user_id = NULL;
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_err rc = srv->db->meetings->channel_role(srv->db->ctx, req->params[0], req->caller.user_id,
                                                &role, err);
    if (rc == KW_OK && role != KW_MEETING_ROLE_OWNER)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "only the channel's owner adds members");
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "user_id", 1, KW_DB_ID_MAX, &user_id, err);
    if (rc == KW_OK)
        rc = srv->db->meetings->channel_member_add(srv->db->ctx, req->params[0], user_id,
                                                   req->now_ms, err);
    json_decref(body);
    return rc == KW_OK ? kw_api_reply_ok(res, err) : rc;
}

const kw_route kw_routes_channels[] = {
    {KW_POST, "/api/channels", KW_AUTH_MEMBER, post_channel},
    {KW_POST, "/api/channels/:id/members", KW_AUTH_MEMBER, post_channel_member},
    {0, NULL, 0, NULL},
};
