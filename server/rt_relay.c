/*
 * rt_relay.c — the guest <-> member relays of DESIGN.md section 8 and the guests' event
 * rate limit.
 *
 * On "/" (members): participant:signal_message_to_guest, participant:meeting_e2ee_key_response
 * and meeting:distributeSenderKeyToGuest (alias meeting:sender_key) go to the sockets of
 * one guest session, only when the sender is a participant of that guest's meeting
 * (else forbidden) and the guest is not declined; a sender key only to an admitted guest.
 * On "/external" (guests): guest:signal_message and guest:meeting_e2ee_key_request go to
 * the sockets of one member device present in the guest's meeting (registered as a video
 * participant there); a device not present is recipient_offline (INV-7: nothing is
 * dropped silently). Sender keys from a guest are forbidden (INV-5).
 *
 * Payloads are checked strictly (exact field set, types, sizes) and everything —
 * including the recipients' queue room — is checked before anything is queued, so a
 * failed event relays nothing. Ciphertexts are opaque to the server: only their form
 * (standard base64) and size are checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_guests.h"
#include "db_meetings.h"
#include "rt.h"
#include "server.h"

#define RELAY_CIPHERTEXT_MAX ((size_t)64 * 1024) /* base64 characters of one relayed message */
#define RELAY_REQUEST_ID_MAX 128                 /* request_id: printable ASCII */
#define RATE_WINDOW_MS       60000

/* ---- the guests' rate limit ------------------------------------------------------------- */

kw_err kw_rt_guest_rate(kw_rt_guest *g, int64_t now_ms, kw_error *err)
{
    return kw_rt_guest_rate_limit(g, KW_RT_GUEST_EVENTS_PER_MIN, now_ms, err);
}

kw_err kw_rt_guest_rate_limit(kw_rt_guest *g, uint32_t per_minute, int64_t now_ms, kw_error *err)
{
    if (per_minute == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "a limit of 0 events per minute");
    if (g->rate_start_ms == 0 || now_ms < g->rate_start_ms) {
        g->rate_start_ms = now_ms > 0 ? now_ms : 1;
        g->rate_prev = g->rate_cur = 0;
    } else if (now_ms - g->rate_start_ms >= RATE_WINDOW_MS) {
        int64_t windows = (now_ms - g->rate_start_ms) / RATE_WINDOW_MS;
        g->rate_prev = windows == 1 ? g->rate_cur : 0;
        g->rate_cur = 0;
        g->rate_start_ms += windows * RATE_WINDOW_MS;
    }
    /* Events in the last minute ~ the previous window's count weighted by the share of it
     * still inside the minute, plus the current window's: refuse when one more exceeds. */
    int64_t elapsed = now_ms - g->rate_start_ms;
    int64_t estimate = (int64_t)g->rate_prev * (RATE_WINDOW_MS - elapsed) +
                       ((int64_t)g->rate_cur + 1) * RATE_WINDOW_MS;
    if (estimate > (int64_t)per_minute * RATE_WINDOW_MS)
        return kw_error_set(err, KW_ERR_RATE_LIMITED, "at most %u events per minute",
                            (unsigned)per_minute);
    g->rate_cur++;
    return KW_OK;
}

/* ---- payload fields -------------------------------------------------------------------------- */

/* arg must be an object holding exactly the fields names[0..n). */
static kw_err exact_fields(json_t *arg, const char *const *names, size_t n, kw_error *err)
{
    if (!json_is_object(arg))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "the payload must be an object");
    for (size_t i = 0; i < n; i++)
        if (json_object_get(arg, names[i]) == NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s is missing", names[i]);
    if (json_object_size(arg) != n)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "the payload has an unknown field");
    return KW_OK;
}

/* A string of 1..max bytes of printable ASCII without spaces. */
static kw_err token_field(json_t *arg, const char *key, size_t max, const char **out, kw_error *err)
{
    json_t *v = json_object_get(arg, key);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be a string", key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be 1..%zu bytes", key, max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s holds a character ids never do",
                                key);
    *out = s;
    return KW_OK;
}

/* A guest session id: 32 lower-case hex. */
static kw_err session_field(json_t *arg, const char *key, const char **out, kw_error *err)
{
    json_t *v = json_object_get(arg, key);
    const char *s = json_string_value(v);
    int ok = json_is_string(v) && json_string_length(v) == KW_GUEST_SESSION_ID_CHARS;
    for (size_t i = 0; ok && i < KW_GUEST_SESSION_ID_CHARS; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be 32 lower-case hex", key);
    *out = s;
    return KW_OK;
}

/* A non-empty standard padded base64 string of at most RELAY_CIPHERTEXT_MAX characters. */
static kw_err cipher_field(json_t *arg, const char *key, const char **out, kw_error *err)
{
    json_t *v = json_object_get(arg, key);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be a base64 string", key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > RELAY_CIPHERTEXT_MAX || n % 4 != 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "%s must be padded base64 of 4..%zu characters", key,
                            RELAY_CIPHERTEXT_MAX);
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s is not standard base64", key);
    }
    *out = s;
    return KW_OK;
}

/* A Signal message type: 1 or 2 (a normal message), 3 (a pre-key message). */
static kw_err type_field(json_t *arg, const char *key, int *out, kw_error *err)
{
    json_t *v = json_object_get(arg, key);
    json_int_t t = json_is_integer(v) ? json_integer_value(v) : 0;
    if (t < 1 || t > 3)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be 1, 2 or 3", key);
    *out = (int)t;
    return KW_OK;
}

/* A member device id, as a string or a number: 1..4294967295, decimal without a leading
 * zero, normalised into out. */
static kw_err device_field(json_t *arg, const char *key, char out[KW_RT_DEVICE_ID_MAX + 1],
                           kw_error *err)
{
    json_t *v = json_object_get(arg, key);
    uint64_t d = 0;
    int ok = 0;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        ok = i >= 1 && i <= 0xffffffffLL;
        d = ok ? (uint64_t)i : 0;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        ok = n >= 1 && n <= 10 && s[0] != '0';
        for (size_t i = 0; ok && i < n; i++) {
            ok = s[i] >= '0' && s[i] <= '9';
            d = d * 10 + (uint64_t)(s[i] - '0');
        }
        ok = ok && d <= 0xffffffffULL;
    }
    if (!ok)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be a device id", key);
    snprintf(out, KW_RT_DEVICE_ID_MAX + 1, "%llu", (unsigned long long)d);
    return KW_OK;
}

/* ---- delivery ---------------------------------------------------------------------------------
 */

/*
 * Encodes event(payload) on nsp (takes payload), checks every socket of b has room, then
 * queues it to all. Errors: KW_ERR_NOMEM, KW_ERR_RATE_LIMITED (a queue is full: nothing
 * queued).
 */
static kw_err deliver(kw_rt *rt, kw_rt_nsp nsp, const kw_rt_batch *b, const char *event,
                      json_t *payload, kw_error *err)
{
    if (payload == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    kw_err rc = kw_rt_encode_event(nsp, event, payload, &text, &len);
    json_decref(payload);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot encode %s", event);
    rc = kw_rt_batch_check(rt, b, len, err);
    if (rc == KW_OK)
        kw_rt_batch_send(rt, b, text, len);
    free(text);
    return rc;
}

/* ---- member -> guest ------------------------------------------------------------------------ */

typedef enum to_guest_kind {
    TO_GUEST_SIGNAL,     /* participant:signal_message_to_guest */
    TO_GUEST_KEY_REPLY,  /* participant:meeting_e2ee_key_response */
    TO_GUEST_SENDER_KEY, /* meeting:distributeSenderKeyToGuest, meeting:sender_key */
} to_guest_kind;

/*
 * The guest session_id as a member may address it: the session exists and is unexpired
 * (else not_found), the caller is a participant of its meeting (else forbidden: a guest
 * of another meeting), it is not declined, and for a sender key it is admitted.
 */
static kw_err guest_target(kw_rt_call *call, const char *session_id, to_guest_kind kind,
                           kw_db_guest *g, kw_error *err)
{
    kw_db *db = call->srv->db;
    if (db == NULL || db->guests == NULL || db->meetings == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "no store");
    kw_err rc = db->guests->get(db->ctx, session_id, g, err);
    if (rc == KW_OK && call->now_ms >= g->expires_ms)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such guest session");
    if (rc != KW_OK)
        return rc;
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    rc = db->meetings->meeting_role(db->ctx, g->meeting_id, call->conn->member.user_id, &role, err);
    if (rc == KW_ERR_NOT_FOUND || (rc == KW_OK && role == KW_MEETING_ROLE_NONE))
        return kw_error_set(err, KW_ERR_FORBIDDEN, "that guest belongs to a meeting of others");
    if (rc != KW_OK)
        return rc;
    if (g->status == KW_GUEST_DECLINED)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "that guest was declined");
    if (kind == TO_GUEST_SENDER_KEY && g->status != KW_GUEST_ADMITTED)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "sender keys go only to admitted guests");
    return KW_OK;
}

/* Checks the target, collects the guest's sockets and delivers event(payload). */
static kw_err to_guest(kw_rt_call *call, const char *session_id, const kw_db_guest *g,
                       const char *event, json_t *payload, kw_error *err)
{
    kw_rt_batch b = {0};
    kw_err rc = kw_rt_guest_collect(call->rt, g->meeting_id, session_id, &b);
    if (rc != KW_OK)
        rc = kw_error_set(err, rc, "out of memory");
    else if (b.n == 0)
        rc = kw_error_set(err, KW_ERR_NOT_PRESENT, "the guest is not connected"); /* INV-7 */
    if (rc == KW_OK) {
        rc = deliver(call->rt, KW_RT_NSP_GUEST, &b, event, payload, err);
        payload = NULL;
    }
    json_decref(payload);
    kw_rt_batch_free(&b);
    return rc;
}

static kw_err on_signal_to_guest(kw_rt_call *call, kw_error *err)
{
    static const char *const fields[] = {"guest_session_id", "encrypted_message", "message_type"};
    const char *sid = NULL, *msg = NULL;
    int type = 0;
    kw_db_guest g;
    kw_err rc = exact_fields(call->arg, fields, 3, err);
    if (rc == KW_OK)
        rc = session_field(call->arg, "guest_session_id", &sid, err);
    if (rc == KW_OK)
        rc = cipher_field(call->arg, "encrypted_message", &msg, err);
    if (rc == KW_OK)
        rc = type_field(call->arg, "message_type", &type, err);
    if (rc == KW_OK)
        rc = guest_target(call, sid, TO_GUEST_SIGNAL, &g, err);
    if (rc != KW_OK)
        return rc;
    const kw_rt_member *me = &call->conn->member;
    return to_guest(call, sid, &g, "participant:signal_message",
                    json_pack("{s:s, s:s, s:s, s:s, s:i}", "meeting_id", g.meeting_id,
                              "participant_user_id", me->user_id, "participant_device_id",
                              me->device_id, "encrypted_message", msg, "message_type", type),
                    err);
}

static kw_err on_key_response(kw_rt_call *call, kw_error *err)
{
    static const char *const fields[] = {"guest_session_id", "ciphertext", "messageType",
                                         "request_id"};
    const char *sid = NULL, *ct = NULL, *req_id = NULL;
    int type = 0;
    kw_db_guest g;
    kw_err rc = exact_fields(call->arg, fields, 4, err);
    if (rc == KW_OK)
        rc = session_field(call->arg, "guest_session_id", &sid, err);
    if (rc == KW_OK)
        rc = cipher_field(call->arg, "ciphertext", &ct, err);
    if (rc == KW_OK)
        rc = type_field(call->arg, "messageType", &type, err);
    if (rc == KW_OK)
        rc = token_field(call->arg, "request_id", RELAY_REQUEST_ID_MAX, &req_id, err);
    if (rc == KW_OK)
        rc = guest_target(call, sid, TO_GUEST_KEY_REPLY, &g, err);
    if (rc != KW_OK)
        return rc;
    const kw_rt_member *me = &call->conn->member;
    return to_guest(call, sid, &g, "participant:meeting_e2ee_key_response",
                    json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "meeting_id", g.meeting_id,
                              "participant_user_id", me->user_id, "participant_device_id",
                              me->device_id, "ciphertext", ct, "messageType", type, "request_id",
                              req_id),
                    err);
}

static kw_err on_sender_key(kw_rt_call *call, kw_error *err)
{
    static const char *const fields[] = {"meetingId", "guestSessionId", "senderDeviceId",
                                         "encryptedSenderKey"};
    const char *mid = NULL, *sid = NULL, *key = NULL;
    char device[KW_RT_DEVICE_ID_MAX + 1];
    kw_db_guest g;
    const kw_rt_member *me = &call->conn->member;
    kw_err rc = exact_fields(call->arg, fields, 4, err);
    if (rc == KW_OK)
        rc = token_field(call->arg, "meetingId", KW_DB_ID_MAX, &mid, err);
    if (rc == KW_OK)
        rc = session_field(call->arg, "guestSessionId", &sid, err);
    if (rc == KW_OK)
        rc = device_field(call->arg, "senderDeviceId", device, err);
    if (rc == KW_OK)
        rc = cipher_field(call->arg, "encryptedSenderKey", &key, err);
    if (rc == KW_OK && strcmp(device, me->device_id) != 0)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "senderDeviceId must be the sender's own device");
    if (rc == KW_OK)
        rc = guest_target(call, sid, TO_GUEST_SENDER_KEY, &g, err);
    if (rc == KW_OK && strcmp(g.meeting_id, mid) != 0)
        rc = kw_error_set(err, KW_ERR_FORBIDDEN, "that guest is not in meetingId");
    if (rc != KW_OK)
        return rc;
    return to_guest(call, sid, &g, "meeting:receiveSenderKey",
                    json_pack("{s:s, s:s, s:s, s:s}", "meetingId", g.meeting_id, "senderId",
                              me->user_id, "senderDeviceId", me->device_id, "encryptedSenderKey",
                              key),
                    err);
}

/* INV-5: guests are receive-only for group keys. */
static kw_err on_sender_key_from_guest(kw_rt_call *call, kw_error *err)
{
    (void)call;
    return kw_error_set(err, KW_ERR_FORBIDDEN, "guests do not distribute sender keys");
}

/* ---- guest -> member ------------------------------------------------------------------------ */

/*
 * The calling guest's session as it may relay now (unexpired, not declined: else
 * forbidden), and the sockets of member device (user_id, device) present in its meeting
 * (none, or not a participant: recipient_offline).
 */
static kw_err member_target(kw_rt_call *call, const char *user_id, const char *device,
                            kw_db_guest *g, kw_rt_batch *b, kw_error *err)
{
    kw_db *db = call->srv->db;
    const kw_rt_guest *me = &call->conn->guest;
    if (db == NULL || db->guests == NULL || db->meetings == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "no store");
    kw_err rc = db->guests->get(db->ctx, me->session_id, g, err);
    if (rc == KW_ERR_NOT_FOUND || (rc == KW_OK && call->now_ms >= g->expires_ms))
        return kw_error_set(err, KW_ERR_FORBIDDEN, "this guest session has ended");
    if (rc != KW_OK)
        return rc;
    if (g->status == KW_GUEST_DECLINED)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "a declined guest relays nothing");
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    rc = db->meetings->meeting_role(db->ctx, g->meeting_id, user_id, &role, err);
    if (rc != KW_OK && rc != KW_ERR_NOT_FOUND)
        return rc;
    if (rc == KW_OK && role != KW_MEETING_ROLE_NONE &&
        kw_rt_present_collect(call->rt, g->meeting_id, user_id, device, b) != KW_OK)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (b->n == 0) /* INV-7 */
        return kw_error_set(err, KW_ERR_NOT_PRESENT,
                            "that member device is not present in this meeting");
    return KW_OK;
}

static kw_err on_guest_signal(kw_rt_call *call, kw_error *err)
{
    static const char *const fields[] = {"recipient_user_id", "recipient_device_id",
                                         "encrypted_message", "message_type"};
    const char *user_id = NULL, *msg = NULL;
    char device[KW_RT_DEVICE_ID_MAX + 1];
    int type = 0;
    kw_db_guest g;
    kw_rt_batch b = {0};
    kw_err rc = exact_fields(call->arg, fields, 4, err);
    if (rc == KW_OK)
        rc = token_field(call->arg, "recipient_user_id", KW_DB_ID_MAX, &user_id, err);
    if (rc == KW_OK)
        rc = device_field(call->arg, "recipient_device_id", device, err);
    if (rc == KW_OK)
        rc = cipher_field(call->arg, "encrypted_message", &msg, err);
    if (rc == KW_OK)
        rc = type_field(call->arg, "message_type", &type, err);
    if (rc == KW_OK)
        rc = member_target(call, user_id, device, &g, &b, err);
    if (rc == KW_OK)
        rc = deliver(call->rt, KW_RT_NSP_MEMBER, &b, "guest:signal_message",
                     json_pack("{s:s, s:s, s:s, s:s, s:i}", "meeting_id", g.meeting_id,
                               "from_guest_session_id", g.session_id, "display_name",
                               g.display_name, "encrypted_message", msg, "message_type", type),
                     err);
    kw_rt_batch_free(&b);
    return rc;
}

static kw_err on_guest_key_request(kw_rt_call *call, kw_error *err)
{
    static const char *const fields[] = {"participant_user_id", "participant_device_id",
                                         "ciphertext", "messageType", "request_id"};
    const char *user_id = NULL, *ct = NULL, *req_id = NULL;
    char device[KW_RT_DEVICE_ID_MAX + 1];
    int type = 0;
    kw_db_guest g;
    kw_rt_batch b = {0};
    kw_err rc = exact_fields(call->arg, fields, 5, err);
    if (rc == KW_OK)
        rc = token_field(call->arg, "participant_user_id", KW_DB_ID_MAX, &user_id, err);
    if (rc == KW_OK)
        rc = device_field(call->arg, "participant_device_id", device, err);
    if (rc == KW_OK)
        rc = cipher_field(call->arg, "ciphertext", &ct, err);
    if (rc == KW_OK)
        rc = type_field(call->arg, "messageType", &type, err);
    if (rc == KW_OK)
        rc = token_field(call->arg, "request_id", RELAY_REQUEST_ID_MAX, &req_id, err);
    if (rc == KW_OK)
        rc = member_target(call, user_id, device, &g, &b, err);
    if (rc == KW_OK)
        rc = deliver(call->rt, KW_RT_NSP_MEMBER, &b, "guest:meeting_e2ee_key_request",
                     json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "meeting_id", g.meeting_id,
                               "guest_session_id", g.session_id, "guest_display_name",
                               g.display_name, "ciphertext", ct, "messageType", type, "request_id",
                               req_id),
                     err);
    kw_rt_batch_free(&b);
    return rc;
}

const kw_rt_event kw_rt_events_relay[] = {
    {KW_RT_NSP_MEMBER, "participant:signal_message_to_guest", on_signal_to_guest},
    {KW_RT_NSP_MEMBER, "participant:meeting_e2ee_key_response", on_key_response},
    {KW_RT_NSP_MEMBER, "meeting:distributeSenderKeyToGuest", on_sender_key},
    {KW_RT_NSP_MEMBER, "meeting:sender_key", on_sender_key},
    {KW_RT_NSP_GUEST, "meeting:distributeSenderKeyToGuest", on_sender_key_from_guest}, /* INV-5 */
    {KW_RT_NSP_GUEST, "meeting:sender_key", on_sender_key_from_guest},                 /* INV-5 */
    {KW_RT_NSP_GUEST, "guest:signal_message", on_guest_signal},
    {KW_RT_NSP_GUEST, "guest:meeting_e2ee_key_request", on_guest_key_request},
    {KW_RT_NSP_MEMBER, NULL, NULL},
};
