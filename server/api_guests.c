/*
 * api_guests.c — the guest routes of DESIGN.md section 7: registration with an
 * invitation, the guest's own pre-keys and leaving, asking to be admitted, the members'
 * waiting list and admit/decline, bundle fetches in both directions, and the admitted
 * guest's LiveKit token.
 *
 * Who may do what is decided here, once per route, by three checks: the guest's own
 * session (the bearer's session id must be the one in the path, and its meeting the one
 * in the path: else 403; a session id alone authorises nothing), a member of the meeting
 * (meeting_role: no such meeting 404, not a participant 403), and presence (a member
 * device is present in a meeting while registered as video participant there).
 * Admission is a member action (INV-3): the decider is the authenticated caller, never a
 * body field, and of concurrent deciders one wins, the others get 409 with who won.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "api_keys.h"
#include "api_meetings.h"
#include "cleanup.h"
#include "crypto.h"
#include "db.h"
#include "db_guests.h"
#include "db_meetings.h"
#include "presence.h"
#include "rate_limit.h"
#include "rt.h"
#include "server.h"
#include "tokens.h"

#define ADMISSION_REQUEST_WINDOW_MS 5000 /* one accepted request-admission per 5 s */

/* ---- replies ---------------------------------------------------------------------------- */

static kw_err reply(kw_response *res, unsigned status, json_t *obj, kw_error *err)
{
    kw_err rc = kw_response_take_json(res, status, obj);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err reply_count(kw_response *res, size_t count, kw_error *err)
{
    return reply(res, 200, json_pack("{s:I}", "count", (json_int_t)count), err);
}

/*
 * The 409 of a decision someone else made first, with who made it (http.h: a handler may
 * fill the body of its error). Returns code so the router keeps the status.
 */
static kw_err reply_decided(kw_response *res, kw_err code, const kw_db_guest *g, kw_error *err)
{
    const char *status = g->status == KW_GUEST_ADMITTED ? "admitted" : "declined";
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "error", kw_err_name(code), "detail",
                             err->detail[0] ? err->detail : kw_strerror(code), "status", status,
                             "by", g->decided_by);
    if (kw_response_take_json(res, kw_http_status(code), body) != KW_OK)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    return code;
}

/* ---- who is calling ---------------------------------------------------------------------- */

/* A body that carries nothing: empty, or the empty object (fields are refused). */
static kw_err empty_body(const kw_request *req, kw_error *err)
{
    static const char *const none[] = {NULL};
    if (req->body == NULL || req->body_len == 0)
        return KW_OK;
    json_t *body = NULL;
    kw_err rc = kw_api_body_object(req, none, &body, err);
    json_decref(body);
    return rc;
}

/* The bearer's own session: the id in the path must be its own (a session id alone
 * authorises nothing). */
static kw_err guest_own(kw_server *srv, const kw_request *req, const char *session_id,
                        kw_db_guest *g, kw_error *err)
{
    if (req->caller.kind != KW_CALLER_GUEST ||
        srv->db == NULL) /* cannot happen behind the router */
        return kw_error_set(err, KW_ERR_INTERNAL, "no authenticated guest");
    if (strcmp(req->caller.session_id, session_id) != 0)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "a guest may act only on its own session");
    return srv->db->guests->get(srv->db->ctx, session_id, g, err);
}

/* The member caller must be a participant of meeting_id (any role). INV-3 */
static kw_err member_of(kw_server *srv, const kw_request *req, const char *meeting_id,
                        kw_error *err)
{
    return kw_api_meeting_access(srv, req, meeting_id, KW_MEETING_ROLE_MEMBER, NULL, NULL, err);
}

/* 1 when user_id is a participant of meeting_id. */
static int is_participant(kw_server *srv, const char *meeting_id, const char *user_id)
{
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    kw_error ignored;
    return srv->db->meetings->meeting_role(srv->db->ctx, meeting_id, user_id, &role, &ignored) ==
               KW_OK &&
           role != KW_MEETING_ROLE_NONE;
}

/* A decimal device id 1..KW_DEVICE_ID_MAX without sign or leading zero. */
static int parse_device_id(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    uint64_t v = 0;
    if (n == 0 || n > 10 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > KW_DEVICE_ID_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

static kw_err params(const kw_request *req, size_t n, kw_error *err)
{
    return req->n_params == n ? KW_OK
                              : kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
}

/* HEAD on a bundle route would consume a pre-key that nobody receives. */
static kw_err get_only(const kw_request *req, kw_response *res, kw_error *err)
{
    if (req->method == KW_GET)
        return KW_OK;
    res->allow = "GET";
    return kw_error_set(err, KW_ERR_METHOD_NOT_ALLOWED, "a bundle fetch is a GET");
}

/* ---- registration, pre-keys, leaving -------------------------------------------------------- */

static kw_err post_register(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"invitation_token",
                                         "display_name",
                                         "identity_key",
                                         "registration_id",
                                         "signed_pre_key",
                                         "pre_keys",
                                         NULL};
    kw_db_guest_registration reg;
    kw_db_prekey keys[KW_GUEST_PREKEYS_AT_REGISTRATION];
    kw_db_guest_created out;
    json_t *body = NULL;
    int64_t reg_id = 0;
    memset(&reg, 0, sizeof reg);
    memset(&out, 0, sizeof out);
    if (srv->db == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "no store");
    /* INV-1: private-key-like fields are refused by kw_api_body_object. */
    kw_err rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "invitation_token", 1, 256, &reg.invitation_token, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "display_name", 1, KW_GUEST_NAME_BYTES_MAX, &reg.display_name,
                           err);
    if (rc == KW_OK)
        rc = kw_api_pubkey(body, "", "identity_key", reg.identity_key, err);
    if (rc == KW_OK)
        rc = kw_api_int(body, "", "registration_id", 0, KW_REGISTRATION_ID_MAX, &reg_id, err);
    if (rc == KW_OK)
        rc = kw_api_keys_parse_signed_prekey(json_object_get(body, "signed_pre_key"),
                                             "signed_pre_key", &reg.signed_pre_key_id,
                                             reg.signed_pre_key, reg.signed_pre_key_signature, err);
    if (rc == KW_OK)
        rc =
            kw_api_keys_parse_prekeys(body, "pre_keys", KW_GUEST_PREKEYS_AT_REGISTRATION,
                                      KW_GUEST_PREKEYS_AT_REGISTRATION, keys, &reg.n_pre_keys, err);
    if (rc == KW_OK) {
        reg.registration_id = (uint32_t)reg_id;
        reg.pre_keys = keys;
        /* The store verifies the signed pre-key (INV-1) and checks and counts the
         * invitation in the transaction that creates the session (INV-9). */
        rc = srv->db->guests->register_guest(srv->db->ctx, &reg, req->now_ms, &out, err);
    }
    if (rc == KW_OK)
        rc = reply(res, 201,
                   json_pack("{s:s, s:s, s:s, s:o}", "session_id", out.session_id, "guest_secret",
                             out.guest_secret, "meeting_id", out.meeting_id, "expires_at",
                             kw_api_time_json(out.expires_ms)),
                   err);
    json_decref(body); /* after the reply: reg borrows strings from body */
    kw_wipe(&out, sizeof out);
    return rc;
}

static kw_err get_prekey_count(kw_server *srv, const kw_request *req, kw_response *res,
                               kw_error *err)
{
    kw_db_guest g;
    size_t count = 0;
    kw_err rc = params(req, 1, err);
    if (rc == KW_OK)
        rc = guest_own(srv, req, req->params[0], &g, err);
    if (rc == KW_OK)
        rc = srv->db->guests->prekeys_count(srv->db->ctx, g.session_id, &count, err);
    return rc == KW_OK ? reply_count(res, count, err) : rc;
}

static kw_err post_prekeys(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"pre_keys", NULL};
    kw_db_guest g;
    kw_db_prekey keys[KW_PREKEYS_PER_UPLOAD_MAX];
    size_t n = 0, count = 0;
    json_t *body = NULL;
    kw_err rc = params(req, 1, err);
    if (rc == KW_OK)
        rc = guest_own(srv, req, req->params[0], &g, err);
    if (rc == KW_OK && g.status == KW_GUEST_DECLINED) /* nobody fetches its keys any more */
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "a declined guest uploads no keys");
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_keys_parse_prekeys(body, "pre_keys", 1, KW_PREKEYS_PER_UPLOAD_MAX, keys, &n,
                                       err);
    json_decref(body);
    if (rc == KW_OK)
        rc = srv->db->guests->prekeys_add(srv->db->ctx, g.session_id, keys, n, &count, err);
    return rc == KW_OK ? reply_count(res, count, err) : rc;
}

static kw_err delete_session(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    kw_db_guest g;
    kw_err rc = params(req, 1, err);
    if (rc == KW_OK)
        rc = guest_own(srv, req, req->params[0], &g, err);
    if (rc == KW_OK)
        rc = empty_body(req, err);
    if (rc == KW_OK)
        rc = srv->db->guests->remove(srv->db->ctx, g.session_id, err);
    return rc == KW_OK ? reply(res, 200, json_pack("{s:b}", "ok", 1), err) : rc;
}

/* ---- admission ------------------------------------------------------------------------------ */

static kw_err post_request_admission(kw_server *srv, const kw_request *req, kw_response *res,
                                     kw_error *err)
{
    kw_db_guest g;
    kw_err rc = params(req, 2, err);
    if (rc == KW_OK)
        rc = guest_own(srv, req, req->params[1], &g, err);
    if (rc == KW_OK && strcmp(g.meeting_id, req->params[0]) != 0)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "this session belongs to another meeting");
    if (rc == KW_OK)
        rc = empty_body(req, err);
    if (rc != KW_OK)
        return rc;
    if (g.status == KW_GUEST_ADMITTED || g.status == KW_GUEST_DECLINED) {
        kw_err code =
            g.status == KW_GUEST_ADMITTED ? KW_ERR_ALREADY_ADMITTED : KW_ERR_ALREADY_DECLINED;
        kw_error_set(err, code, "the guest was already %s",
                     code == KW_ERR_ALREADY_ADMITTED ? "admitted" : "declined");
        return reply_decided(res, code, &g, err);
    }
    /* Only an accepted request starts the 5 s window (a 409 or 429 does not). */
    if (g.requested_ms > 0 && req->now_ms - g.requested_ms < ADMISSION_REQUEST_WINDOW_MS &&
        req->now_ms >= g.requested_ms) {
        int64_t wait_ms = g.requested_ms + ADMISSION_REQUEST_WINDOW_MS - req->now_ms;
        res->retry_after_s = (wait_ms + 999) / 1000;
        return kw_error_set(err, KW_ERR_RATE_LIMITED,
                            "at most one admission request per 5 seconds");
    }
    if (!kw_meeting_host_present(srv, g.meeting_id))
        return kw_error_set(err, KW_ERR_NO_HOST_PRESENT,
                            "no member of the meeting is present; wait for meeting:host_present");
    rc = srv->db->guests->request_admission(srv->db->ctx, g.session_id, req->now_ms, &g, err);
    if (rc == KW_ERR_ALREADY_ADMITTED || rc == KW_ERR_ALREADY_DECLINED)
        return reply_decided(res, rc, &g, err);
    if (rc != KW_OK)
        return rc;
    kw_rt_emit_to_meeting_members(
        srv, g.meeting_id, "meeting:guest_admission_request",
        json_pack("{s:s, s:s, s:s, s:o}", "meeting_id", g.meeting_id, "session_id", g.session_id,
                  "display_name", g.display_name, "requested_at", kw_api_time_json(req->now_ms)));
    return reply(res, 200, json_pack("{s:b}", "ok", 1), err);
}

static kw_err get_waiting(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    kw_db_waiting_guest *rows = NULL;
    size_t n = 0;
    kw_err rc = params(req, 1, err);
    if (rc == KW_OK)
        rc = member_of(srv, req, req->params[0], err); /* INV-3 */
    if (rc == KW_OK)
        rc = srv->db->guests->waiting_list(srv->db->ctx, req->params[0], req->now_ms, &rows, &n,
                                           err);
    if (rc != KW_OK)
        return rc;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        if (json_array_append_new(list,
                                  json_pack("{s:s, s:s, s:o}", "session_id", rows[i].session_id,
                                            "display_name", rows[i].display_name, "requested_at",
                                            kw_api_time_json(rows[i].requested_ms))) != 0) {
            json_decref(list);
            list = NULL;
        }
    free(rows);
    return reply(res, 200, list ? json_pack("{s:o}", "waiting", list) : NULL, err);
}

/* admit and decline: the same checks, one conditional update (INV-3). */
static kw_err decide(kw_server *srv, const kw_request *req, kw_response *res, int admit,
                     kw_error *err)
{
    static const char *const decline_fields[] = {"reason", NULL};
    kw_db_guest g;
    json_t *body = NULL;
    const char *reason = NULL;
    kw_err rc = params(req, 2, err);
    if (rc == KW_OK)
        rc = member_of(srv, req, req->params[0], err);
    if (rc == KW_OK && admit)
        rc = empty_body(req, err); /* INV-3: no admitted_by or any other field */
    if (rc == KW_OK && !admit && req->body_len > 0) {
        rc = kw_api_body_object(req, decline_fields, &body, err);
        if (rc == KW_OK)
            rc = kw_api_opt_string(body, "reason", 0, KW_GUEST_REASON_MAX, &reason, err);
    }
    if (rc == KW_OK)
        rc = srv->db->guests->decide(srv->db->ctx, req->params[0], req->params[1], admit,
                                     req->caller.user_id, reason, req->now_ms, &g, err);
    if (rc == KW_OK) { /* INV-6: the members, and this guest alone */
        const char *by = admit ? "admitted_by" : "declined_by";
        kw_rt_emit_to_meeting_members(
            srv, g.meeting_id, admit ? "meeting:guest_admitted" : "meeting:guest_declined",
            json_pack("{s:s, s:s, s:s}", "meeting_id", g.meeting_id, "session_id", g.session_id, by,
                      req->caller.user_id));
        json_t *to_guest = json_pack("{s:s, s:s, s:s}", "meeting_id", g.meeting_id, "session_id",
                                     g.session_id, by, req->caller.user_id);
        if (to_guest != NULL && !admit &&
            json_object_set_new(to_guest, "reason", reason ? json_string(reason) : json_null()) !=
                0) {
            json_decref(to_guest);
            to_guest = NULL;
        }
        kw_rt_emit_to_guest(srv, g.meeting_id, g.session_id,
                            admit ? "meeting:admission_granted" : "meeting:admission_denied",
                            to_guest);
    }
    json_decref(body); /* after the notices: reason borrows from body */
    if (rc == KW_ERR_ALREADY_ADMITTED || rc == KW_ERR_ALREADY_DECLINED)
        return reply_decided(res, rc, &g, err);
    if (rc != KW_OK)
        return rc;
    return reply(res, 200,
                 json_pack("{s:b, s:s}", "ok", 1, admit ? "admitted_by" : "declined_by",
                           req->caller.user_id),
                 err);
}

static kw_err post_admit(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    return decide(srv, req, res, 1, err);
}

static kw_err post_decline(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    return decide(srv, req, res, 0, err);
}

/* ---- bundles (INV-2) ---------------------------------------------------------------------- */

/* Counts the fetch, takes the bundle, gives the hit back if nothing was served. */
static kw_err serve_bundle(kw_server *srv, const kw_request *req, kw_response *res,
                           const char *subject, const char *object, const char *meeting_id,
                           const char *session_id, const char *user_id, uint32_t device_id,
                           kw_error *err)
{
    kw_err rc = kw_api_keys_bundle_limit(srv, subject, object, req->now_ms, res, err);
    if (rc != KW_OK)
        return rc;
    kw_bundle b;
    size_t remaining = 0;
    rc = session_id != NULL
             ? srv->db->guests->bundle_take(srv->db->ctx, session_id, &b, &remaining, err)
             : srv->db->keys->bundle_take(srv->db->ctx, user_id, device_id, &b, &remaining, err);
    if (rc != KW_OK) {
        kw_rate_limit_refund(srv->bundle_limit, subject, object);
        return rc;
    }
    if (remaining < KW_PREKEY_LOW_WATER) { /* INV-2: the owner is told */
        json_t *low = json_pack("{s:I}", "count", (json_int_t)remaining);
        if (session_id != NULL) {
            kw_rt_emit_to_guest(srv, meeting_id, session_id, "prekeys:low", low);
        } else {
            char device[16];
            snprintf(device, sizeof device, "%u", device_id);
            kw_rt_emit_to_device(srv, user_id, device, "prekeys:low", low);
        }
    }
    return kw_api_keys_bundle_reply(res, &b, err);
}

static kw_err get_guest_bundle(kw_server *srv, const kw_request *req, kw_response *res,
                               kw_error *err)
{
    kw_db_guest g;
    kw_err rc = params(req, 2, err);
    if (rc == KW_OK)
        rc = member_of(srv, req, req->params[0], err);
    if (rc == KW_OK)
        rc = get_only(req, res, err);
    if (rc == KW_OK)
        rc = srv->db->guests->get(srv->db->ctx, req->params[1], &g, err);
    if (rc == KW_OK && (strcmp(g.meeting_id, req->params[0]) != 0 || req->now_ms >= g.expires_ms))
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "session: no such guest in this meeting");
    if (rc != KW_OK)
        return rc;
    char subject[2 * KW_HTTP_ID_MAX + 8], object[KW_HTTP_ID_MAX + 8];
    snprintf(subject, sizeof subject, "m:%s:%s", req->caller.user_id, req->caller.device_id);
    snprintf(object, sizeof object, "g:%s", g.session_id);
    return serve_bundle(srv, req, res, subject, object, g.meeting_id, g.session_id, NULL, 0, err);
}

static kw_err get_member_bundle(kw_server *srv, const kw_request *req, kw_response *res,
                                kw_error *err)
{
    kw_db_guest g;
    uint32_t device_id = 0;
    kw_err rc = params(req, 3, err);
    if (rc == KW_OK)
        rc = guest_own(srv, req, req->params[0], &g, err);
    if (rc == KW_OK && g.status == KW_GUEST_DECLINED)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "a declined guest fetches no keys");
    if (rc == KW_OK)
        rc = get_only(req, res, err);
    if (rc != KW_OK)
        return rc;
    const char *user_id = req->params[1];
    if (!parse_device_id(req->params[2], &device_id) || srv->presence == NULL ||
        !srv->presence->ops->device_present(srv->presence->ctx, g.meeting_id, user_id,
                                            req->params[2]) ||
        !is_participant(srv, g.meeting_id, user_id))
        return kw_error_set(err, KW_ERR_NOT_PRESENT,
                            "that member device is not present in this meeting");
    char subject[KW_HTTP_ID_MAX + 8], object[2 * KW_HTTP_ID_MAX + 8];
    snprintf(subject, sizeof subject, "g:%s", g.session_id);
    snprintf(object, sizeof object, "m:%s:%u", user_id, device_id);
    return serve_bundle(srv, req, res, subject, object, NULL, NULL, user_id, device_id, err);
}

/* ---- media token (INV-4) -------------------------------------------------------------------- */

static kw_err post_livekit_token(kw_server *srv, const kw_request *req, kw_response *res,
                                 kw_error *err)
{
    static const char *const fields[] = {"sessionId", "meetingId", NULL};
    const char *sid = NULL, *mid = NULL;
    json_t *body = NULL;
    kw_db_guest g;
    kw_livekit_token tok;
    memset(&tok, 0, sizeof tok);
    kw_err rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "sessionId", 1, KW_HTTP_ID_MAX, &sid, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "meetingId", 1, KW_HTTP_ID_MAX, &mid, err);
    if (rc == KW_OK)
        rc = guest_own(srv, req, sid, &g, err);
    if (rc == KW_OK && strcmp(g.meeting_id, mid) != 0)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "meetingId: not this session's meeting");
    json_decref(body);
    if (rc != KW_OK)
        return rc;
    if (g.status != KW_GUEST_ADMITTED) /* INV-4 */
        return kw_error_set(err, KW_ERR_FORBIDDEN, "only an admitted guest gets a media token");
    rc = kw_token_livekit_guest(srv->config.livekit_api_key, srv->config.livekit_api_secret,
                                g.session_id, g.display_name, g.meeting_id, g.expires_ms,
                                req->now_ms, &tok, err);
    if (rc != KW_OK)
        return rc;
    rc = reply(res, 200,
               json_pack("{s:s, s:s, s:s, s:s}", "token", tok.jwt, "url",
                         srv->config.livekit_url ? srv->config.livekit_url : "", "roomName",
                         tok.room, "identity", tok.identity),
               err);
    kw_livekit_token_free(&tok);
    return rc;
}

const kw_route kw_routes_guests[] = {
    {KW_POST, "/api/meetings/external/register", KW_AUTH_NONE, post_register},
    {KW_GET, "/api/meetings/external/session/:sid/prekeys", KW_AUTH_GUEST, get_prekey_count},
    {KW_POST, "/api/meetings/external/session/:sid/prekeys", KW_AUTH_GUEST, post_prekeys},
    {KW_DELETE, "/api/meetings/external/session/:sid", KW_AUTH_GUEST, delete_session},
    {KW_POST, "/api/meetings/:id/external/:sid/request-admission", KW_AUTH_GUEST,
     post_request_admission},
    {KW_GET, "/api/meetings/:id/external/waiting", KW_AUTH_MEMBER, get_waiting},
    {KW_POST, "/api/meetings/:id/external/:sid/admit", KW_AUTH_MEMBER, post_admit},
    {KW_POST, "/api/meetings/:id/external/:sid/decline", KW_AUTH_MEMBER, post_decline},
    {KW_GET, "/api/meetings/:id/external/:sid/keys", KW_AUTH_MEMBER, get_guest_bundle},
    {KW_GET, "/api/meetings/external/:sid/participant/:userId/:deviceId/keys", KW_AUTH_GUEST,
     get_member_bundle},
    {KW_POST, "/api/livekit/external-token", KW_AUTH_GUEST, post_livekit_token},
    {KW_POST, "/api/livekit/guest-token", KW_AUTH_GUEST, post_livekit_token},
    {0, NULL, 0, NULL},
};
