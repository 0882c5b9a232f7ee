/*
 * presence.h — who is in which video channel right now (DESIGN.md section 9).
 *
 * Runtime presence lives in memory on one node, behind this interface, so a later
 * multi-node mode can move it to Redis without touching handlers. A member device is
 * *present* in a meeting while one of its sockets is registered as a video participant
 * with channel id = the meeting id (section 7). A device may register several sockets;
 * each socket is removed on its own (a disconnect removes only that socket).
 *
 * Entries are keyed by socket id (a number the realtime layer assigns); the ids given to
 * the functions are copied. All functions run on the event loop: no locks.
 */
#ifndef KEYWAVE_SERVER_PRESENCE_H
#define KEYWAVE_SERVER_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_PRESENCE_ID_MAX 128 /* longest channel, user or device id */

/* One registered video participant, as video:participants-info lists it. */
typedef struct kw_video_participant {
    uint64_t socket_id;
    char user_id[KW_PRESENCE_ID_MAX + 1];
    char device_id[KW_PRESENCE_ID_MAX + 1];
    int64_t joined_ms; /* server time of registration */
    int has_e2ee_key;  /* set by video:confirm-e2ee-key */
} kw_video_participant;

typedef struct kw_presence_ops {
    /*
     * Registers socket_id of (user_id, device_id) in channel_id at now_ms. Registering the
     * same socket again in the same channel keeps its joined_ms and key flag (idempotent).
     * Errors: KW_ERR_INVALID_ARGUMENT (an id empty or too long), KW_ERR_NOMEM.
     */
    kw_err (*video_register)(void *ctx, const char *channel_id, uint64_t socket_id,
                             const char *user_id, const char *device_id, int64_t now_ms);
    /* Marks the socket's entry as holding the media key. KW_ERR_NOT_FOUND if not registered. */
    kw_err (*video_confirm_key)(void *ctx, const char *channel_id, uint64_t socket_id);
    /* Removes the socket's entry from channel_id. KW_ERR_NOT_FOUND if it was not there. */
    kw_err (*video_leave)(void *ctx, const char *channel_id, uint64_t socket_id);
    /*
     * Removes socket_id from every channel (a disconnect) and calls left(arg, channel_id,
     * entry) for each entry removed, so the caller can tell the others.
     */
    void (*video_leave_all)(void *ctx, uint64_t socket_id,
                            void (*left)(void *arg, const char *channel_id,
                                         const kw_video_participant *p),
                            void *arg);
    /*
     * Copies up to max entries of channel_id, oldest first, into out; returns how many the
     * channel holds in all (may exceed max).
     */
    size_t (*video_list)(void *ctx, const char *channel_id, kw_video_participant *out, size_t max);
    /* 1 when (user_id, device_id) has a socket registered in channel_id, else 0. */
    int (*device_present)(void *ctx, const char *channel_id, const char *user_id,
                          const char *device_id);
    /*
     * Copies up to max socket ids of (user_id, device_id) registered in channel_id into
     * out, oldest first; returns how many there are in all (may exceed max). The relay path
     * asks this for every message: it copies no entry.
     */
    size_t (*device_sockets)(void *ctx, const char *channel_id, const char *user_id,
                             const char *device_id, uint64_t *out, size_t max);
    void (*destroy)(void *ctx);
} kw_presence_ops;

typedef struct kw_presence {
    const kw_presence_ops *ops;
    void *ctx;
} kw_presence;

/* The in-memory implementation; *out owned by the caller (kw_presence_free). */
kw_err kw_presence_memory_new(kw_presence **out) KW_MUST_CHECK;

/* Frees a presence made by a constructor above. Accepts NULL. */
void kw_presence_free(kw_presence *p);

#endif
