/*
 * cleanup.h — keywaved's housekeeping (INV-10) and what makes a meeting "active".
 *
 * One periodic pass, kw_cleanup_tick, does a bounded batch of each kind of work and
 * carries on at the next tick (STYLE §4, like redis's serverCron): guest sessions past
 * their 24 h expiry (with their keys), stale request nonces and used or expired
 * enrollment codes, and instant calls with no one for 10 minutes or older than 8 hours
 * (with their invitations and guest sessions, INV-9). main() calls kw_cleanup_poll from
 * its loop, which runs a tick at most once per second.
 *
 * A meeting is active while a device of one of its participants is registered in its
 * video channel (presence) or it has a guest that is waiting or admitted.
 */
#ifndef KEYWAVE_SERVER_CLEANUP_H
#define KEYWAVE_SERVER_CLEANUP_H

#include <stdint.h>

#include "keywave/err.h"

struct kw_server;

#define KW_CLEANUP_BATCH       256  /* rows of each kind removed per tick at most */
#define KW_CLEANUP_CALLS_BATCH 32   /* instant calls looked at per tick at most */
#define KW_CLEANUP_INTERVAL_MS 1000 /* kw_cleanup_poll runs a tick this often at most */

/*
 * Runs one housekeeping pass at now_ms over srv->db (and srv->presence for activity):
 * each step runs even if an earlier one failed. Logs one `cleanup` line when something
 * was removed and one `cleanup_failed` line per failing step (no values, INV-8).
 * Returns the first failure: KW_ERR_STORE, KW_ERR_INTERNAL (no store), or KW_OK.
 */
kw_err kw_cleanup_tick(struct kw_server *srv, int64_t now_ms);

/*
 * For the event loop: reads the wall clock and, when it has reached next_ms, runs
 * kw_cleanup_tick. Returns the next due time (now + KW_CLEANUP_INTERVAL_MS after a run,
 * else next_ms). Start with next_ms = 0.
 */
int64_t kw_cleanup_poll(struct kw_server *srv, int64_t next_ms);

/* 1 when a device of a participant of meeting_id is present in its video channel. */
int kw_meeting_host_present(struct kw_server *srv, const char *meeting_id);

#endif
