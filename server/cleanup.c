/*
 * cleanup.c — the housekeeping pass (cleanup.h).
 *
 * Each step deletes at most a batch, so a tick after a long downtime (thousands of
 * expired rows) costs about as much as any other and the loop keeps answering; what is
 * left goes at the next ticks. Activity is asked of presence (memory) and the guest
 * table, only for instant calls that are already idle by their last_active_ms.
 */
#include "cleanup.h"

#include <time.h>

#include "db.h"
#include "db_guests.h"
#include "db_items.h"
#include "db_meetings.h"
#include "db_members.h"
#include "log.h"
#include "presence.h"
#include "server.h"

#define PRESENT_SCAN_MAX 64 /* present devices looked at per meeting */

int kw_meeting_host_present(struct kw_server *srv, const char *meeting_id)
{
    if (srv->presence == NULL || srv->db == NULL || srv->db->meetings == NULL)
        return 0;
    kw_video_participant parts[PRESENT_SCAN_MAX];
    size_t n =
        srv->presence->ops->video_list(srv->presence->ctx, meeting_id, parts, PRESENT_SCAN_MAX);
    if (n > PRESENT_SCAN_MAX)
        n = PRESENT_SCAN_MAX;
    for (size_t i = 0; i < n; i++) {
        kw_meeting_role role = KW_MEETING_ROLE_NONE;
        kw_error ignored;
        if (srv->db->meetings->meeting_role(srv->db->ctx, meeting_id, parts[i].user_id, &role,
                                            &ignored) == KW_OK &&
            role != KW_MEETING_ROLE_NONE)
            return 1;
    }
    return 0;
}

typedef struct activity {
    struct kw_server *srv;
    int64_t now_ms;
} activity;

/* kw_meeting_active_fn: a member present, or a guest waiting or admitted. */
static int meeting_active(void *arg, const char *meeting_id)
{
    activity *a = arg;
    if (kw_meeting_host_present(a->srv, meeting_id))
        return 1;
    int guests = 0;
    kw_error err;
    /* A store failure counts as active: never delete a call on a guess. */
    if (a->srv->db->guests->meeting_has_guests(a->srv->db->ctx, meeting_id, a->now_ms, &guests,
                                               &err) != KW_OK)
        return 1;
    return guests;
}

static kw_err step_failed(kw_err rc, const char *step, const kw_error *err, kw_err first)
{
    kw_log(KW_LOG_ERROR, "cleanup_failed", "step=%s error=%s", step, kw_err_name(err->code));
    return first != KW_OK ? first : rc;
}

kw_err kw_cleanup_tick(struct kw_server *srv, int64_t now_ms)
{
    if (srv == NULL || srv->db == NULL || srv->db->guests == NULL || srv->db->members == NULL ||
        srv->db->meetings == NULL)
        return KW_ERR_INTERNAL;
    kw_db *db = srv->db;
    kw_error err;
    kw_err first = KW_OK, rc;
    size_t guests = 0, members = 0, calls = 0, items = 0;
    kw_error_clear(&err);
    /* INV-10: guest sessions past 24 h, with their pre-keys. */
    if ((rc = db->guests->purge(db->ctx, now_ms, KW_CLEANUP_BATCH, &guests, &err)) != KW_OK)
        first = step_failed(rc, "guest_sessions", &err, first);
    /* Nonces older than 10 min, used or expired enrollment codes. */
    if ((rc = db->members->purge(db->ctx, now_ms, KW_CLEANUP_BATCH, &members, &err)) != KW_OK)
        first = step_failed(rc, "nonces", &err, first);
    /* Instant calls idle 10 min or older than 8 h (seed 000 phase 10). */
    activity a = {srv, now_ms};
    if ((rc = db->meetings->instant_calls_cleanup(db->ctx, now_ms, KW_INSTANT_CALL_IDLE_MS,
                                                  KW_INSTANT_CALL_MAX_AGE_MS, meeting_active, &a,
                                                  KW_CLEANUP_CALLS_BATCH, &calls, &err)) != KW_OK)
        first = step_failed(rc, "instant_calls", &err, first);
    /* Stored items past their 30 days (db_items.h). */
    if (db->items != NULL &&
        (rc = db->items->purge(db->ctx, now_ms, KW_CLEANUP_BATCH, &items, &err)) != KW_OK)
        first = step_failed(rc, "items", &err, first);
    if (guests + members + calls + items > 0)
        kw_log(KW_LOG_INFO, "cleanup",
               "guest_sessions=%zu nonces_and_codes=%zu instant_calls=%zu items=%zu", guests,
               members, calls, items);
    return first;
}

int64_t kw_cleanup_poll(struct kw_server *srv, int64_t next_ms)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return next_ms;
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now < next_ms)
        return next_ms;
    (void)kw_cleanup_tick(srv, now); /* failures are logged; the next tick tries again */
    return now + KW_CLEANUP_INTERVAL_MS;
}
