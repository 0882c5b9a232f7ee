/*
 * rt_video.c — video participant tracking and meeting rooms on "/" (DESIGN.md section 8,
 * seed 003): video:check-participants, video:register-participant, video:confirm-e2ee-key,
 * video:leave-channel, disconnect as a leave, meeting:join-room, meeting:leave-room.
 *
 * A channel id names a channel (its members may use it) or a meeting (its participants
 * may); anything else is not_found, a non-member forbidden. Presence (presence.h) is per
 * socket; what the others are told is per *device*: participant-joined when a device gets
 * its first socket in the channel, participant-left when its last one goes, so a device
 * that reconnects on a new socket before the old one timed out is not seen leaving. Every
 * handler checks everything, including the recipients' queue room, before it changes
 * presence, so a failed event changes nothing and tells no one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "db.h"
#include "db_guests.h"
#include "db_meetings.h"
#include "log.h"
#include "presence.h"
#include "rt.h"
#include "server.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Reads arg = {key: "<id>"} (that field only; 1..KW_PRESENCE_ID_MAX printable ASCII). */
static kw_err id_arg(json_t *arg, const char *key, const char **out, kw_error *err)
{
    *out = NULL;
    if (!json_is_object(arg) || json_object_size(arg) != 1)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "the payload is {%s} alone", key);
    json_t *v = json_object_get(arg, key);
    if (!json_is_string(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be a string", key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > KW_PRESENCE_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s must be 1..%d bytes", key,
                            KW_PRESENCE_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s holds a character ids never do",
                                key);
    *out = s;
    return KW_OK;
}

/*
 * May user_id use channel_id (a channel or a meeting)? *is_meeting tells which it is.
 * Errors: KW_ERR_NOT_FOUND, KW_ERR_FORBIDDEN, KW_ERR_STORE.
 */
static kw_err channel_access(struct kw_server *srv, const char *channel_id, const char *user_id,
                             int *is_meeting, kw_error *err)
{
    kw_db *db = srv->db;
    if (db == NULL || db->meetings == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "no store");
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    *is_meeting = 0;
    kw_err rc = db->meetings->channel_role(db->ctx, channel_id, user_id, &role, err);
    if (rc == KW_ERR_NOT_FOUND) {
        *is_meeting = 1;
        rc = db->meetings->meeting_role(db->ctx, channel_id, user_id, &role, err);
        if (rc == KW_ERR_NOT_FOUND)
            return kw_error_set(err, KW_ERR_NOT_FOUND, "no such channel or meeting");
    }
    if (rc != KW_OK)
        return rc;
    if (role == KW_MEETING_ROLE_NONE)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "not a member of that channel or meeting");
    return KW_OK;
}

/* Every participant entry of channel_id (*out malloc'd, NULL when *n is 0). */
static kw_err list_channel(struct kw_server *srv, const char *channel_id,
                           kw_video_participant **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    kw_presence *p = srv->presence;
    if (p == NULL)
        return KW_OK;
    size_t total = p->ops->video_list(p->ctx, channel_id, NULL, 0);
    if (total == 0)
        return KW_OK;
    *out = malloc(total * sizeof **out);
    if (*out == NULL)
        return KW_ERR_NOMEM;
    size_t got = p->ops->video_list(p->ctx, channel_id, *out, total);
    *n = got < total ? got : total;
    return KW_OK;
}

static int same_device(const kw_video_participant *p, const kw_rt_member *m)
{
    return strcmp(p->user_id, m->user_id) == 0 && strcmp(p->device_id, m->device_id) == 0;
}

/* Adds the sockets of every entry that is not m's device. */
static kw_err add_others(kw_rt_batch *b, const kw_video_participant *list, size_t n,
                         const kw_rt_member *m)
{
    for (size_t i = 0; i < n; i++)
        if (!same_device(&list[i], m) && kw_rt_batch_add(b, list[i].socket_id) != KW_OK)
            return KW_ERR_NOMEM;
    return KW_OK;
}

/* {userId, deviceId} (+ joinedAt when joined_ms > 0). */
static json_t *device_json(const char *user_id, const char *device_id, int64_t joined_ms)
{
    json_t *o = json_pack("{s:s, s:s}", "userId", user_id, "deviceId", device_id);
    if (o != NULL && joined_ms > 0 &&
        json_object_set_new(o, "joinedAt", json_integer(joined_ms)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * Encodes event name(payload) on "/" (takes payload) and checks that every socket of b
 * has room for it. *text malloc'd on KW_OK. Errors: KW_ERR_NOMEM, KW_ERR_RATE_LIMITED.
 */
static kw_err prepare(kw_rt *rt, kw_rt_nsp nsp, const char *name, json_t *payload,
                      const kw_rt_batch *b, char **text, size_t *len, kw_error *err)
{
    *text = NULL;
    *len = 0;
    if (payload == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    kw_err rc = kw_rt_encode_event(nsp, name, payload, text, len);
    json_decref(payload);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot encode %s", name);
    rc = kw_rt_batch_check(rt, b, *len, err);
    if (rc != KW_OK) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* The sockets of meeting_id's guests that are waiting (neither admitted nor declined). */
static kw_err waiting_guests(kw_rt *rt, const char *meeting_id, int64_t now_ms, kw_rt_batch *out)
{
    struct kw_server *srv = kw_rt_server(rt);
    kw_rt_batch all = {0};
    char room[KW_RT_ROOM_NAME_MAX + 1];
    snprintf(room, sizeof room, "g:%s", meeting_id);
    kw_err rc = kw_rt_room_collect(rt, room, &all);
    for (size_t i = 0; rc == KW_OK && i < all.n; i++) {
        kw_rt_conn *c = kw_rt_find(rt, all.ids[i], NULL);
        kw_db_guest g;
        kw_error e;
        if (c == NULL || srv->db == NULL || srv->db->guests == NULL ||
            srv->db->guests->get(srv->db->ctx, c->guest.session_id, &g, &e) != KW_OK)
            continue; /* gone, or the store failed: that guest is not told now */
        if ((g.status == KW_GUEST_REGISTERED || g.status == KW_GUEST_WAITING) &&
            g.expires_ms > now_ms)
            rc = kw_rt_batch_add(out, all.ids[i]);
    }
    kw_rt_batch_free(&all);
    return rc;
}

/* The row of parts for (user_id, device_id), or NULL. */
static json_t *find_row(json_t *parts, const char *user_id, const char *device_id)
{
    size_t i;
    json_t *row;
    json_array_foreach(parts, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "userId")), user_id) == 0 &&
            strcmp(json_string_value(json_object_get(row, "deviceId")), device_id) == 0)
            return row;
    }
    return NULL;
}

/* What every video handler starts from: the caller, its channel, the channel's entries. */
typedef struct video_call {
    const kw_rt_member *me;     /* the caller's member socket */
    kw_presence *p;             /* borrowed from srv */
    const char *channel_id;     /* borrowed from the payload */
    int is_meeting;             /* the id names a meeting (access checked) */
    kw_video_participant *list; /* owned: every entry of the channel, oldest first */
    size_t n;
} video_call;

/*
 * Reads {channelId}, checks the caller's access when check_access, and lists the channel.
 * On KW_OK free v->list. Errors: those of id_arg and channel_access, KW_ERR_NOMEM.
 */
static kw_err video_begin(kw_rt_call *call, int check_access, video_call *v, kw_error *err)
{
    memset(v, 0, sizeof *v);
    v->me = &call->conn->member;
    v->p = call->srv->presence;
    kw_err rc = id_arg(call->arg, "channelId", &v->channel_id, err);
    if (rc == KW_OK && check_access)
        rc = channel_access(call->srv, v->channel_id, v->me->user_id, &v->is_meeting, err);
    if (rc != KW_OK)
        return rc;
    if (v->p == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "no presence");
    if (list_channel(call->srv, v->channel_id, &v->list, &v->n) != KW_OK)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    return KW_OK;
}

/* ---- video:check-participants --------------------------------------------------------- */

static kw_err on_check(kw_rt_call *call, kw_error *err)
{
    video_call v;
    kw_err rc = video_begin(call, 1, &v, err);
    if (rc != KW_OK)
        return rc;
    const kw_rt_member *me = v.me;
    const char *channel_id = v.channel_id;
    kw_video_participant *list = v.list;
    size_t n = v.n;
    /* One row per other device: its oldest socket's joinedAt, a key if any socket has one. */
    json_t *parts = json_array();
    size_t count = 0;
    for (size_t i = 0; parts != NULL && i < n; i++) {
        if (same_device(&list[i], me))
            continue;
        json_t *row = find_row(parts, list[i].user_id, list[i].device_id);
        if (row != NULL) {
            if (list[i].has_e2ee_key)
                json_object_set_new(row, "hasE2EEKey", json_true());
            continue;
        }
        row = device_json(list[i].user_id, list[i].device_id, list[i].joined_ms);
        if (row == NULL ||
            json_object_set_new(row, "hasE2EEKey", json_boolean(list[i].has_e2ee_key)) != 0 ||
            json_array_append_new(parts, row) != 0) {
            json_decref(parts);
            parts = NULL;
            break;
        }
        count++;
    }
    free(list);
    json_t *info = parts ? json_pack("{s:s, s:I, s:b, s:O}", "channelId", channel_id,
                                     "participantCount", (json_int_t)count, "isFirstParticipant",
                                     count == 0, "participants", parts)
                         : NULL;
    json_decref(parts);
    if (info == NULL || json_object_update(call->ack, info) != 0) {
        json_decref(info);
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    }
    rc = kw_rt_emit_self(call, "video:participants-info", info);
    json_decref(info);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot queue video:participants-info");
    return KW_OK;
}

/* ---- video:register-participant ----------------------------------------------------- */

static kw_err on_register(kw_rt_call *call, kw_error *err)
{
    video_call v;
    kw_err rc = video_begin(call, 1, &v, err);
    if (rc != KW_OK)
        return rc;
    const kw_rt_member *me = v.me;
    kw_presence *p = v.p;
    const char *channel_id = v.channel_id;
    kw_video_participant *list = v.list;
    size_t n = v.n;
    int already = 0, device_present = 0;
    int64_t joined_ms = call->now_ms;
    for (size_t i = 0; i < n; i++) {
        if (list[i].socket_id == me->socket_id) {
            already = 1;
            joined_ms = list[i].joined_ms;
        }
        if (same_device(&list[i], me))
            device_present = 1;
    }
    kw_rt_batch others = {0}, guests = {0};
    char *joined_text = NULL, *host_text = NULL;
    size_t joined_len = 0, host_len = 0;
    if (!already) {
        if (!device_present) {
            rc = add_others(&others, list, n, me);
            if (rc == KW_OK)
                rc = prepare(call->rt, KW_RT_NSP_MEMBER, "video:participant-joined",
                             device_json(me->user_id, me->device_id, call->now_ms), &others,
                             &joined_text, &joined_len, err);
        }
        if (rc == KW_OK && v.is_meeting) {
            rc = waiting_guests(call->rt, channel_id, call->now_ms, &guests);
            if (rc == KW_OK)
                rc = prepare(call->rt, KW_RT_NSP_GUEST, "meeting:host_present",
                             json_pack("{s:s}", "meeting_id", channel_id), &guests, &host_text,
                             &host_len, err);
        }
        if (rc == KW_OK)
            rc = p->ops->video_register(p->ctx, channel_id, me->socket_id, me->user_id,
                                        me->device_id, call->now_ms);
        if (rc == KW_OK) {
            if (joined_text != NULL)
                kw_rt_batch_send(call->rt, &others, joined_text, joined_len);
            if (host_text != NULL)
                kw_rt_batch_send(call->rt, &guests, host_text, host_len);
        }
    }
    free(list);
    free(joined_text);
    free(host_text);
    kw_rt_batch_free(&others);
    kw_rt_batch_free(&guests);
    if (rc != KW_OK)
        return err->code == rc ? rc : kw_error_set(err, rc, "cannot register");
    if (json_object_set_new(call->ack, "channelId", json_string(channel_id)) != 0 ||
        json_object_set_new(call->ack, "joinedAt", json_integer(joined_ms)) != 0)
        return KW_OK; /* registered; the ack only lacks its extras */
    return KW_OK;
}

/* ---- video:confirm-e2ee-key, video:leave-channel -------------------------------------- */

/* Finds the caller's entry in list; -1 when its socket is not registered. */
static long own_entry(const kw_video_participant *list, size_t n, uint64_t socket_id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].socket_id == socket_id)
            return (long)i;
    return -1;
}

static kw_err on_confirm_key(kw_rt_call *call, kw_error *err)
{
    video_call v;
    kw_err rc = video_begin(call, 1, &v, err);
    if (rc != KW_OK)
        return rc;
    const kw_rt_member *me = v.me;
    kw_presence *p = v.p;
    const char *channel_id = v.channel_id;
    kw_video_participant *list = v.list;
    size_t n = v.n;
    kw_rt_batch others = {0};
    char *text = NULL;
    size_t len = 0;
    if (own_entry(list, n, me->socket_id) < 0)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "this socket is not registered in that channel");
    if (rc == KW_OK)
        rc = add_others(&others, list, n, me);
    if (rc == KW_OK)
        rc = prepare(call->rt, KW_RT_NSP_MEMBER, "video:participant-key-confirmed",
                     device_json(me->user_id, me->device_id, 0), &others, &text, &len, err);
    if (rc == KW_OK)
        rc = p->ops->video_confirm_key(p->ctx, channel_id, me->socket_id);
    if (rc == KW_OK)
        kw_rt_batch_send(call->rt, &others, text, len);
    free(list);
    free(text);
    kw_rt_batch_free(&others);
    if (rc != KW_OK)
        return err->code == rc ? rc : kw_error_set(err, rc, "cannot confirm the key");
    return KW_OK;
}

static kw_err on_leave(kw_rt_call *call, kw_error *err)
{
    video_call v;
    kw_err rc = video_begin(call, 0, &v, err); /* leaving needs no membership */
    if (rc != KW_OK)
        return rc;
    const kw_rt_member *me = v.me;
    kw_presence *p = v.p;
    const char *channel_id = v.channel_id;
    kw_video_participant *list = v.list;
    size_t n = v.n;
    kw_rt_batch others = {0};
    char *text = NULL;
    size_t len = 0;
    int device_stays = 0;
    for (size_t i = 0; i < n; i++)
        if (list[i].socket_id != me->socket_id && same_device(&list[i], me))
            device_stays = 1;
    if (own_entry(list, n, me->socket_id) < 0)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "this socket is not registered in that channel");
    if (rc == KW_OK && !device_stays) {
        rc = add_others(&others, list, n, me);
        if (rc == KW_OK)
            rc = prepare(call->rt, KW_RT_NSP_MEMBER, "video:participant-left",
                         device_json(me->user_id, me->device_id, 0), &others, &text, &len, err);
    }
    if (rc == KW_OK)
        rc = p->ops->video_leave(p->ctx, channel_id, me->socket_id);
    if (rc == KW_OK && text != NULL)
        kw_rt_batch_send(call->rt, &others, text, len);
    free(list);
    free(text);
    kw_rt_batch_free(&others);
    if (rc != KW_OK)
        return err->code == rc ? rc : kw_error_set(err, rc, "cannot leave");
    return KW_OK;
}

/* ---- disconnect ---------------------------------------------------------------------- */

typedef struct left_entry {
    char channel_id[KW_PRESENCE_ID_MAX + 1];
    kw_video_participant p;
} left_entry;

typedef struct left_list {
    left_entry *e; /* owned */
    size_t n, cap;
    int failed; /* out of memory while collecting */
} left_list;

static void collect_left(void *arg, const char *channel_id, const kw_video_participant *p)
{
    left_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        left_entry *e = realloc(l->e, cap * sizeof *e);
        if (e == NULL) {
            l->failed = 1;
            return;
        }
        l->e = e;
        l->cap = cap;
    }
    snprintf(l->e[l->n].channel_id, sizeof l->e[l->n].channel_id, "%s", channel_id);
    l->e[l->n].p = *p;
    l->n++;
}

void kw_rt_video_disconnect(kw_rt *rt, uint64_t socket_id, int64_t now_ms)
{
    (void)now_ms;
    struct kw_server *srv = kw_rt_server(rt);
    kw_presence *p = srv->presence;
    if (p == NULL)
        return;
    left_list l = {0};
    p->ops->video_leave_all(p->ctx, socket_id, collect_left, &l);
    if (l.failed)
        kw_log(KW_LOG_WARN, "rt_leave_notice_lost", "socket=%llu", (unsigned long long)socket_id);
    /* A disconnect cannot be refused, so its notices go out whatever the queues hold
     * (one per channel the socket was in). */
    for (size_t i = 0; i < l.n; i++) {
        const kw_video_participant *gone = &l.e[i].p;
        if (p->ops->device_present(p->ctx, l.e[i].channel_id, gone->user_id, gone->device_id))
            continue; /* the device is still there on another socket */
        kw_rt_member who;
        memset(&who, 0, sizeof who);
        snprintf(who.user_id, sizeof who.user_id, "%s", gone->user_id);
        snprintf(who.device_id, sizeof who.device_id, "%.20s", gone->device_id);
        kw_video_participant *list;
        size_t n;
        kw_rt_batch others = {0};
        char *text = NULL;
        size_t len = 0;
        json_t *payload = device_json(gone->user_id, gone->device_id, 0);
        if (list_channel(srv, l.e[i].channel_id, &list, &n) == KW_OK) {
            if (add_others(&others, list, n, &who) == KW_OK && payload != NULL &&
                kw_rt_encode_event(KW_RT_NSP_MEMBER, "video:participant-left", payload, &text,
                                   &len) == KW_OK)
                kw_rt_batch_send(rt, &others, text, len);
            free(list);
        }
        json_decref(payload);
        free(text);
        kw_rt_batch_free(&others);
    }
    free(l.e);
}

/* ---- guests ---------------------------------------------------------------------------- */

kw_err kw_rt_video_guest_connected(kw_rt *rt, kw_rt_conn *c, int64_t now_ms)
{
    struct kw_server *srv = kw_rt_server(rt);
    if (!kw_meeting_host_present(srv, c->guest.meeting_id) || srv->db == NULL ||
        srv->db->guests == NULL)
        return KW_OK;
    kw_db_guest g;
    kw_error e;
    if (srv->db->guests->get(srv->db->ctx, c->guest.session_id, &g, &e) != KW_OK ||
        !(g.status == KW_GUEST_REGISTERED || g.status == KW_GUEST_WAITING))
        return KW_OK;
    kw_rt_batch one = {0};
    char *text = NULL;
    size_t len = 0;
    json_t *payload = json_pack("{s:s}", "meeting_id", c->guest.meeting_id);
    kw_err rc = payload ? kw_rt_batch_add(&one, c->guest.socket_id) : KW_ERR_NOMEM;
    if (rc == KW_OK)
        rc = kw_rt_encode_event(KW_RT_NSP_GUEST, "meeting:host_present", payload, &text, &len);
    if (rc == KW_OK)
        kw_rt_batch_send(rt, &one, text, len);
    (void)now_ms;
    json_decref(payload);
    free(text);
    kw_rt_batch_free(&one);
    return rc;
}

/* ---- meeting:join-room / meeting:leave-room --------------------------------------------- */

static kw_err on_join_room(kw_rt_call *call, kw_error *err)
{
    const char *meeting_id;
    kw_err rc = id_arg(call->arg, "meeting_id", &meeting_id, err);
    if (rc != KW_OK)
        return rc;
    kw_db *db = call->srv->db;
    if (db == NULL || db->meetings == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "no store");
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    rc = db->meetings->meeting_role(db->ctx, meeting_id, call->conn->member.user_id, &role, err);
    if (rc != KW_OK)
        return rc;
    if (role == KW_MEETING_ROLE_NONE) /* INV-6 */
        return kw_error_set(err, KW_ERR_FORBIDDEN, "not a participant of that meeting");
    char room[KW_RT_ROOM_NAME_MAX + 1];
    snprintf(room, sizeof room, "m:%s", meeting_id);
    rc = kw_rt_member_join(call->rt, call->conn, room, err);
    if (rc != KW_OK)
        return rc;
    if (json_object_set_new(call->ack, "meeting_id", json_string(meeting_id)) != 0)
        return KW_OK;
    return KW_OK;
}

static kw_err on_leave_room(kw_rt_call *call, kw_error *err)
{
    const char *meeting_id;
    kw_err rc = id_arg(call->arg, "meeting_id", &meeting_id, err);
    if (rc != KW_OK)
        return rc;
    char room[KW_RT_ROOM_NAME_MAX + 1];
    snprintf(room, sizeof room, "m:%s", meeting_id);
    return kw_rt_member_leave(call->rt, call->conn, room, err);
}

const kw_rt_event kw_rt_events_video[] = {
    {KW_RT_NSP_MEMBER, "video:check-participants", on_check},
    {KW_RT_NSP_MEMBER, "video:register-participant", on_register},
    {KW_RT_NSP_MEMBER, "video:confirm-e2ee-key", on_confirm_key},
    {KW_RT_NSP_MEMBER, "video:leave-channel", on_leave},
    {KW_RT_NSP_MEMBER, "meeting:join-room", on_join_room},
    {KW_RT_NSP_MEMBER, "meeting:leave-room", on_leave_room},
    {KW_RT_NSP_MEMBER, NULL, NULL},
};
