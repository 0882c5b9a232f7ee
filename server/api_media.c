/*
 * api_media.c — media tokens for members (DESIGN.md section 7; seed 004): a LiveKit token
 * for a channel member, a LiveKit token for a meeting participant's device, and a Jitsi
 * JWT for a meeting participant. The grants themselves are decided in tokens.c; here we
 * only find out who is asking and whether they belong. The guests' LiveKit route lives
 * with the guest routes.
 *
 * Order of checks: the feature configured (else 503 not_configured, before reading the
 * body), the body, then the channel or meeting (404 unknown, 403 not a member).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "api_meetings.h"
#include "db.h"
#include "db_members.h"
#include "server.h"
#include "tokens.h"

static int set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static kw_err livekit_configured(const kw_server *srv, kw_error *err)
{
    const kw_config *c = &srv->config;
    if (!set(c->livekit_url) || !set(c->livekit_api_key) || !set(c->livekit_api_secret))
        return kw_error_set(err, KW_ERR_NOT_CONFIGURED,
                            "LiveKit is not configured on this server (LIVEKIT_URL, "
                            "LIVEKIT_API_KEY, LIVEKIT_API_SECRET)");
    return KW_OK;
}

static kw_err reply_livekit(kw_server *srv, kw_response *res, kw_livekit_token *t, kw_error *err)
{
    kw_err rc = kw_response_take_json(res, 200,
                                      json_pack("{s:s, s:s, s:s, s:s}", "token", t->jwt, "url",
                                                srv->config.livekit_url, "roomName", t->room,
                                                "identity", t->identity));
    kw_livekit_token_free(t);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

/*
 * The common part of both LiveKit routes: LiveKit configured, the body {<field>: id},
 * and the caller's user name for the token. *body owns what *id points into
 * (json_decref it whatever is returned).
 */
static kw_err livekit_request(kw_server *srv, const kw_request *req, const char *field,
                              json_t **body, const char **id, kw_db_user *user, kw_error *err)
{
    const char *const fields[] = {field, NULL};
    *body = NULL;
    kw_err rc = livekit_configured(srv, err);
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, body, err);
    if (rc == KW_OK)
        rc = kw_api_string(*body, "", field, 1, KW_DB_ID_MAX, id, err);
    if (rc == KW_OK)
        rc = srv->db->members->user_get(srv->db->ctx, req->caller.user_id, user, err);
    return rc;
}

static kw_err post_livekit_channel(kw_server *srv, const kw_request *req, kw_response *res,
                                   kw_error *err)
{
    json_t *body = NULL;
    const char *channel_id = NULL;
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    kw_db_user user;
    kw_livekit_token t = {0};
    kw_err rc = livekit_request(srv, req, "channelId", &body, &channel_id, &user, err);
    if (rc == KW_OK)
        rc = srv->db->meetings->channel_role(srv->db->ctx, channel_id, req->caller.user_id, &role,
                                             err);
    if (rc == KW_OK && role == KW_MEETING_ROLE_NONE)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "you are not a member of this channel");
    if (rc == KW_OK)
        rc = kw_token_livekit_channel(srv->config.livekit_api_key, srv->config.livekit_api_secret,
                                      req->caller.user_id, user.name, channel_id,
                                      role == KW_MEETING_ROLE_OWNER, req->now_ms, &t, err);
    json_decref(body);
    return rc == KW_OK ? reply_livekit(srv, res, &t, err) : rc;
}

static kw_err post_livekit_meeting(kw_server *srv, const kw_request *req, kw_response *res,
                                   kw_error *err)
{
    json_t *body = NULL;
    const char *meeting_id = NULL;
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    kw_db_user user;
    kw_livekit_token t = {0};
    kw_err rc = livekit_request(srv, req, "meetingId", &body, &meeting_id, &user, err);
    if (rc == KW_OK)
        rc = kw_api_meeting_access(srv, req, meeting_id, KW_MEETING_ROLE_MEMBER, &role, NULL, err);
    if (rc == KW_OK)
        rc = kw_token_livekit_meeting(srv->config.livekit_api_key, srv->config.livekit_api_secret,
                                      req->caller.user_id, req->caller.device_id, user.name,
                                      meeting_id, role == KW_MEETING_ROLE_OWNER, req->now_ms, &t,
                                      err);
    json_decref(body);
    return rc == KW_OK ? reply_livekit(srv, res, &t, err) : rc;
}

static kw_err post_jitsi_join(kw_server *srv, const kw_request *req, kw_response *res,
                              kw_error *err)
{
    static const char *const fields[] = {"name", "email", "audio", "video", NULL};
    const kw_config *c = &srv->config;
    json_t *body = NULL;
    const char *name = NULL, *email = NULL;
    int audio = 1, video = 1;
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    kw_db_user user;
    kw_jitsi_token t = {0};
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_err rc = KW_OK;
    if (!set(c->jitsi_server_url) || !set(c->jitsi_app_id) || !set(c->jitsi_app_secret))
        rc = kw_error_set(err, KW_ERR_NOT_CONFIGURED,
                          "Jitsi is not configured on this server (JITSI_SERVER_URL, "
                          "JITSI_APP_ID, JITSI_APP_SECRET)");
    if (rc == KW_OK)
        rc = kw_api_body_optional(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_opt_string(body, "name", 1, 128, &name, err);
    if (rc == KW_OK)
        rc = kw_api_opt_string(body, "email", 3, 254, &email, err);
    if (rc == KW_OK && email != NULL && strchr(email, '@') == NULL)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "email: not an e-mail address");
    if (rc == KW_OK)
        rc = kw_api_opt_bool(body, "audio", &audio, err);
    if (rc == KW_OK)
        rc = kw_api_opt_bool(body, "video", &video, err);
    if (rc == KW_OK)
        rc = kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_MEMBER, &role, NULL,
                                   err);
    if (rc == KW_OK && name == NULL) {
        rc = srv->db->members->user_get(srv->db->ctx, req->caller.user_id, &user, err);
        name = user.name;
    }
    if (rc == KW_OK) {
        kw_jitsi_claims claims = {
            .meeting_id = req->params[0],
            .user_id = req->caller.user_id, /* the server decides who, never the body */
            .name = name,
            .email = email,
            .moderator = role >= KW_MEETING_ROLE_MANAGER,
            .audio = audio != 0,
            .video = video != 0,
        };
        rc = kw_token_jitsi(&claims, c->jitsi_app_id, c->jitsi_app_secret, c->jitsi_server_url,
                            c->jitsi_jwt_expiration_s, req->now_ms, &t, err);
    }
    json_decref(body);
    if (rc != KW_OK)
        return rc;
    rc = kw_response_take_json(
        res, 200,
        json_pack("{s:s, s:s, s:s}", "token", t.jwt, "url", t.url, "room_name", t.room_name));
    kw_jitsi_token_free(&t);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

const kw_route kw_routes_media[] = {
    {KW_POST, "/api/livekit/token", KW_AUTH_MEMBER, post_livekit_channel},
    {KW_POST, "/api/livekit/meeting-token", KW_AUTH_MEMBER, post_livekit_meeting},
    {KW_POST, "/api/v1/live/streams/:stream_id/join", KW_AUTH_MEMBER, post_jitsi_join},
    {0, NULL, 0, NULL},
};
