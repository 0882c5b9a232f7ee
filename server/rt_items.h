/*
 * rt_items.h — sendItem and sendGroupItem on "/" (DESIGN.md section 8, INV-7), with
 * storage for offline member devices (db_items.h) and delivery when they connect.
 */
#ifndef KEYWAVE_SERVER_RT_ITEMS_H
#define KEYWAVE_SERVER_RT_ITEMS_H

#include <stdint.h>

#include "rt.h"

#define KW_RT_ITEMS_DELIVER_BATCH 64 /* stored items read from the store per delivery pass */

extern const kw_rt_event kw_rt_events_items[]; /* sendItem, sendGroupItem */

/*
 * Delivers stored items to the member socket of c (just connected, or its queue just
 * emptied while a backlog is pending): queues as many as its outbound queue has room for,
 * oldest first, then deletes those from the store (at-least-once: deleted only once
 * queued). Sets c->member.items_pending while some are left, so rt.c calls this again
 * when the queue has drained. Failures are logged; the items stay stored.
 */
void kw_rt_items_deliver(kw_rt *rt, kw_rt_conn *c, int64_t now_ms);

#endif
