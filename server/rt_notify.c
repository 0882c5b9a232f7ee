/*
 * rt_notify.c — who gets an event about a meeting, a guest or a device (DESIGN.md section
 * 8), and the notices REST handlers emit: admission requests and decisions, prekeys:low.
 *
 * Recipients are collected as socket ids: a meeting's members are the sockets joined to
 * its room "m:<id>" plus those present in it (registered as video participants, the
 * presence interface); a guest is the sockets of its session in the meeting's guest room
 * "g:<id>" (never another guest's, INV-6); a member device is its sockets on "/". Notices
 * from REST handlers cannot be refused (the change is committed), so a recipient whose
 * queue is full is skipped and logged rather than failing everyone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "presence.h"
#include "rt.h"
#include "server.h"

/* ---- recipients ------------------------------------------------------------------------- */

kw_err kw_rt_guest_collect(kw_rt *rt, const char *meeting_id, const char *session_id,
                           kw_rt_batch *b)
{
    char room[KW_RT_ROOM_NAME_MAX + 1];
    if ((size_t)snprintf(room, sizeof room, "g:%s", meeting_id) >= sizeof room)
        return KW_OK; /* no meeting id is that long: no such room */
    kw_rt_batch all = {0};
    kw_err rc = kw_rt_room_collect(rt, room, &all);
    for (size_t i = 0; rc == KW_OK && i < all.n; i++) {
        kw_rt_nsp nsp;
        kw_rt_conn *c = kw_rt_find(rt, all.ids[i], &nsp);
        if (c != NULL && nsp == KW_RT_NSP_GUEST && strcmp(c->guest.session_id, session_id) == 0)
            rc = kw_rt_batch_add(b, all.ids[i]);
    }
    kw_rt_batch_free(&all);
    return rc;
}

kw_err kw_rt_present_collect(kw_rt *rt, const char *meeting_id, const char *user_id,
                             const char *device_id, kw_rt_batch *b)
{
    kw_presence *p = kw_rt_server(rt)->presence;
    if (p == NULL)
        return KW_OK;
    if (user_id != NULL) {
        /* One device (every relayed message): its sockets only, no copy of the channel. */
        uint64_t few[8];
        size_t n = p->ops->device_sockets(p->ctx, meeting_id, user_id, device_id, few, 8);
        uint64_t *ids = few;
        if (n > 8 && (ids = malloc(n * sizeof *ids)) != NULL)
            n = p->ops->device_sockets(p->ctx, meeting_id, user_id, device_id, ids, n);
        kw_err rc = ids == NULL ? KW_ERR_NOMEM : KW_OK;
        for (size_t i = 0; rc == KW_OK && i < n; i++)
            rc = kw_rt_batch_add(b, ids[i]);
        if (ids != few)
            free(ids);
        return rc;
    }
    size_t total = p->ops->video_list(p->ctx, meeting_id, NULL, 0);
    if (total == 0)
        return KW_OK;
    kw_video_participant *list = malloc(total * sizeof *list);
    if (list == NULL)
        return KW_ERR_NOMEM;
    size_t n = p->ops->video_list(p->ctx, meeting_id, list, total);
    if (n > total)
        n = total;
    kw_err rc = KW_OK;
    for (size_t i = 0; rc == KW_OK && i < n; i++)
        rc = kw_rt_batch_add(b, list[i].socket_id);
    free(list);
    return rc;
}

/* The meeting's member sockets: its room and its present devices (INV-6: no guest). */
static kw_err members_collect(kw_rt *rt, const char *meeting_id, kw_rt_batch *b)
{
    char room[KW_RT_ROOM_NAME_MAX + 1];
    kw_err rc = KW_OK;
    if ((size_t)snprintf(room, sizeof room, "m:%s", meeting_id) < sizeof room)
        rc = kw_rt_room_collect(rt, room, b);
    if (rc == KW_OK)
        rc = kw_rt_present_collect(rt, meeting_id, NULL, NULL, b);
    return rc;
}

/* ---- sending ------------------------------------------------------------------------------ */

/*
 * Encodes event(payload) on nsp (takes payload) and queues it to each socket of b that
 * has room; logs the ones skipped. Returns how many got it.
 */
static size_t send_each(kw_rt *rt, kw_rt_nsp nsp, const kw_rt_batch *b, const char *event,
                        json_t *payload)
{
    char *text = NULL;
    size_t len = 0, sent = 0, skipped = 0;
    if (payload == NULL || b->n == 0 ||
        kw_rt_encode_event(nsp, event, payload, &text, &len) != KW_OK) {
        if (payload == NULL || b->n > 0)
            kw_log(KW_LOG_ERROR, "rt_notice_failed", "event=%s error=out_of_memory", event);
        json_decref(payload);
        return 0;
    }
    json_decref(payload);
    for (size_t i = 0; i < b->n; i++) {
        kw_rt_batch one = {&b->ids[i], 1, 1}; /* borrows the id: never freed */
        kw_error e;
        if (kw_rt_batch_check(rt, &one, len, &e) != KW_OK) {
            skipped++;
            continue;
        }
        sent += kw_rt_batch_send(rt, &one, text, len);
    }
    free(text);
    if (skipped > 0)
        kw_log(KW_LOG_WARN, "rt_notice_skipped", "event=%s queue_full=%zu", event, skipped);
    return sent;
}

/* The collection failed (out of memory): logged, payload dropped. */
static size_t collect_failed(const char *event, json_t *payload)
{
    kw_log(KW_LOG_ERROR, "rt_notice_failed", "event=%s error=out_of_memory", event);
    json_decref(payload);
    return 0;
}

size_t kw_rt_emit_to_meeting_members(struct kw_server *srv, const char *meeting_id,
                                     const char *event, json_t *payload)
{
    if (srv == NULL || srv->rt == NULL) {
        json_decref(payload);
        return 0;
    }
    kw_rt_batch b = {0};
    if (members_collect(srv->rt, meeting_id, &b) != KW_OK) {
        kw_rt_batch_free(&b);
        return collect_failed(event, payload);
    }
    size_t sent = send_each(srv->rt, KW_RT_NSP_MEMBER, &b, event, payload);
    kw_rt_batch_free(&b);
    return sent;
}

size_t kw_rt_emit_to_meeting_guests(struct kw_server *srv, const char *meeting_id,
                                    const char *event, json_t *payload)
{
    char room[KW_RT_ROOM_NAME_MAX + 1];
    if (srv == NULL || srv->rt == NULL ||
        (size_t)snprintf(room, sizeof room, "g:%s", meeting_id) >= sizeof room) {
        json_decref(payload);
        return 0;
    }
    kw_rt_batch b = {0};
    if (kw_rt_room_collect(srv->rt, room, &b) != KW_OK) {
        kw_rt_batch_free(&b);
        return collect_failed(event, payload);
    }
    size_t sent = send_each(srv->rt, KW_RT_NSP_GUEST, &b, event, payload);
    kw_rt_batch_free(&b);
    return sent;
}

size_t kw_rt_emit_to_guest(struct kw_server *srv, const char *meeting_id, const char *session_id,
                           const char *event, json_t *payload)
{
    if (srv == NULL || srv->rt == NULL) {
        json_decref(payload);
        return 0;
    }
    kw_rt_batch b = {0};
    if (kw_rt_guest_collect(srv->rt, meeting_id, session_id, &b) != KW_OK) {
        kw_rt_batch_free(&b);
        return collect_failed(event, payload);
    }
    size_t sent = send_each(srv->rt, KW_RT_NSP_GUEST, &b, event, payload);
    kw_rt_batch_free(&b);
    return sent;
}

size_t kw_rt_emit_to_device(struct kw_server *srv, const char *user_id, const char *device_id,
                            const char *event, json_t *payload)
{
    if (srv == NULL || srv->rt == NULL) {
        json_decref(payload);
        return 0;
    }
    kw_rt_batch b = {0};
    if (kw_rt_device_collect(srv->rt, user_id, device_id, &b) != KW_OK) {
        kw_rt_batch_free(&b);
        return collect_failed(event, payload);
    }
    size_t sent = send_each(srv->rt, KW_RT_NSP_MEMBER, &b, event, payload);
    kw_rt_batch_free(&b);
    return sent;
}
