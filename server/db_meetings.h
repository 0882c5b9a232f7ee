/*
 * db_meetings.h — storage of channels, meetings, their participants and invitations
 * (DESIGN.md section 7; INV-9, INV-10). Called as db->meetings->op(db->ctx, ...) (db.h).
 *
 * Ids: channels "chn_" + 12 hex, meetings "mtg_" + 12 hex, instant calls "call_" + 12 hex
 * (random). The creator of a meeting is its participant with role owner; a meeting has
 * exactly one owner, who cannot be removed or demoted. Invitations belong to one meeting
 * and are deleted with it, as are its participants and guest sessions (foreign keys with
 * ON DELETE CASCADE, INV-9). Invitation tokens are secrets (INV-8): they never go into an
 * error detail or a log line.
 *
 * Times are ms since the epoch, passed in by the caller. Every op that writes runs in one
 * transaction and changes nothing when it fails (INV-11).
 */
#ifndef KEYWAVE_SERVER_DB_MEETINGS_H
#define KEYWAVE_SERVER_DB_MEETINGS_H

#include <stddef.h>
#include <stdint.h>

#include "db_members.h"
#include "keywave/err.h"

#define KW_CHANNEL_NAME_MAX         100  /* bytes of UTF-8, 1..100, no control characters */
#define KW_MEETING_TITLE_MAX        200  /* bytes of UTF-8, 1..200, no control characters */
#define KW_MEETING_DESCRIPTION_MAX  2000 /* bytes of UTF-8, 0..2000 (newlines and tabs allowed) */
#define KW_INVITATION_LABEL_MAX     100  /* bytes of UTF-8, 0..100, no control characters */
#define KW_INVITATION_TOKEN_CHARS   32   /* lower-case hex of 16 random bytes */
#define KW_INVITATION_MAX_USES_MAX  1000000
#define KW_INSTANT_CALL_DURATION_MS (24LL * 60 * 60 * 1000) /* end_time = start + 24 h */
#define KW_INSTANT_CALL_IDLE_MS     (10LL * 60 * 1000)      /* cleanup: no one for 10 min */
#define KW_INSTANT_CALL_MAX_AGE_MS  (8LL * 60 * 60 * 1000)  /* cleanup: older than 8 h */
#define KW_DB_LIST_MAX              1000                    /* rows one list op returns at most */

/* A user's relation to a meeting (or a channel: NONE, MEMBER or OWNER). Ordered. */
typedef enum kw_meeting_role {
    KW_MEETING_ROLE_NONE = 0,
    KW_MEETING_ROLE_MEMBER = 1,
    KW_MEETING_ROLE_MANAGER = 2,
    KW_MEETING_ROLE_OWNER = 3,
} kw_meeting_role;

/* GET /api/meetings?filter=: my = every meeting the user is a participant of; upcoming =
 * of those, the ones not over (end > now, ongoing included); past = end <= now. */
typedef enum kw_meeting_filter {
    KW_MEETING_FILTER_MY = 0,
    KW_MEETING_FILTER_UPCOMING = 1,
    KW_MEETING_FILTER_PAST = 2,
} kw_meeting_filter;

typedef struct kw_db_channel {
    char channel_id[KW_DB_ID_MAX + 1];
    char name[KW_CHANNEL_NAME_MAX + 1];
    char type[8]; /* "signal" or "webrtc" */
    char owner_id[KW_DB_ID_MAX + 1];
    int64_t created_ms;
} kw_db_channel;

typedef struct kw_db_meeting {
    char meeting_id[KW_DB_ID_MAX + 1];
    char title[KW_MEETING_TITLE_MAX + 1];
    char description[KW_MEETING_DESCRIPTION_MAX + 1];
    int64_t start_ms, end_ms; /* start < end */
    int is_instant_call;      /* 0 or 1 */
    int allow_external;       /* 0 or 1 */
    char created_by[KW_DB_ID_MAX + 1];
    int64_t created_ms;
    int64_t last_active_ms; /* instant-call cleanup: last time someone was there */
} kw_db_meeting;

/* The fields a PATCH may change; has_x = 1 marks a field given. */
typedef struct kw_db_meeting_patch {
    int has_title, has_description, has_start, has_end, has_allow_external;
    const char *title, *description;
    int64_t start_ms, end_ms;
    int allow_external;
} kw_db_meeting_patch;

typedef struct kw_db_invitation {
    char token[KW_INVITATION_TOKEN_CHARS + 1]; /* secret */
    char meeting_id[KW_DB_ID_MAX + 1];
    char label[KW_INVITATION_LABEL_MAX + 1];
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
    int64_t max_uses;   /* 0: unlimited */
    int64_t uses;
    int64_t revoked_ms; /* 0: not revoked */
} kw_db_invitation;

/* An admitted guest of a meeting, as the participants list shows it. */
typedef struct kw_db_admitted_guest {
    char session_id[KW_DB_ID_MAX + 1];
    char display_name[256];
    int64_t admitted_ms;
} kw_db_admitted_guest;

/* Cleanup asks the caller whether a meeting has someone present now (presence). */
typedef int (*kw_meeting_active_fn)(void *arg, const char *meeting_id);

typedef struct kw_db_meetings_ops {
    /* ---- channels ---------------------------------------------------------------- */
    /*
     * Creates a channel named name of type ("signal" or "webrtc") owned by owner_id, with
     * the owner as its first member. *out is filled. Errors: KW_ERR_INVALID_ARGUMENT
     * (name or type breaks its rule), KW_ERR_NOT_FOUND (no such user), KW_ERR_STORE,
     * KW_ERR_CRYPTO (no randomness).
     */
    kw_err (*channel_create)(void *ctx, const char *owner_id, const char *name, const char *type,
                             int64_t now_ms, kw_db_channel *out, kw_error *err);
    /* Reads a channel. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*channel_get)(void *ctx, const char *channel_id, kw_db_channel *out, kw_error *err);
    /*
     * *out = OWNER for the channel's owner, MEMBER for another member, else NONE.
     * Errors: KW_ERR_NOT_FOUND (no such channel), KW_ERR_STORE.
     */
    kw_err (*channel_role)(void *ctx, const char *channel_id, const char *user_id,
                           kw_meeting_role *out, kw_error *err);
    /*
     * Adds user_id to the channel (already a member: no change, KW_OK). Errors:
     * KW_ERR_NOT_FOUND (no such channel or user; the detail says which), KW_ERR_STORE.
     */
    kw_err (*channel_member_add)(void *ctx, const char *channel_id, const char *user_id,
                                 int64_t now_ms, kw_error *err);

    /* ---- meetings ---------------------------------------------------------------- */
    /*
     * Creates a meeting from in (title, description, start_ms, end_ms, is_instant_call,
     * allow_external, created_by; the other fields are ignored) with a fresh id ("call_"
     * prefix when is_instant_call, else "mtg_"), created_ms = last_active_ms = now_ms, and
     * created_by as its owner participant. *out gets the stored meeting. Errors:
     * KW_ERR_INVALID_ARGUMENT (a text too long or with control characters, title empty,
     * start_ms >= end_ms), KW_ERR_NOT_FOUND (no such user), KW_ERR_STORE, KW_ERR_CRYPTO.
     */
    kw_err (*meeting_create)(void *ctx, const kw_db_meeting *in, int64_t now_ms, kw_db_meeting *out,
                             kw_error *err);
    /* Reads a meeting. Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*meeting_get)(void *ctx, const char *meeting_id, kw_db_meeting *out, kw_error *err);
    /*
     * Applies patch (at least one field) to the meeting; the result must still have
     * start_ms < end_ms. *out (may be NULL) gets the meeting after. Errors:
     * KW_ERR_INVALID_ARGUMENT (no field, a field breaks its rule, start >= end after the
     * change), KW_ERR_NOT_FOUND, KW_ERR_STORE.
     */
    kw_err (*meeting_update)(void *ctx, const char *meeting_id, const kw_db_meeting_patch *patch,
                             kw_db_meeting *out, kw_error *err);
    /* Deletes the meeting with its participants, invitations and guest sessions (INV-9).
     * Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*meeting_delete)(void *ctx, const char *meeting_id, kw_error *err);
    /*
     * Lists the meetings user_id is a participant of (any role), narrowed by filter:
     * MY and UPCOMING by start_ms ascending, PAST by start_ms descending (then id), at most
     * KW_DB_LIST_MAX. *out is malloc'd (caller frees with free(); NULL when *n is 0).
     * Errors: KW_ERR_INVALID_ARGUMENT (filter out of range), KW_ERR_STORE, KW_ERR_NOMEM.
     */
    kw_err (*meeting_list)(void *ctx, const char *user_id, kw_meeting_filter filter, int64_t now_ms,
                           kw_db_meeting **out, size_t *n, kw_error *err);
    /*
     * *out = user_id's role in the meeting, NONE when not a participant.
     * Errors: KW_ERR_NOT_FOUND (no such meeting), KW_ERR_STORE.
     */
    kw_err (*meeting_role)(void *ctx, const char *meeting_id, const char *user_id,
                           kw_meeting_role *out, kw_error *err);
    /* Sets the meeting's last_active_ms to now_ms (never backwards): someone is there.
     * Errors: KW_ERR_NOT_FOUND, KW_ERR_STORE. */
    kw_err (*meeting_touch)(void *ctx, const char *meeting_id, int64_t now_ms, kw_error *err);
    /*
     * Housekeeping (INV-10): deletes up to max_rows instant calls that are older than
     * max_age_ms (created_ms <= now_ms - max_age_ms) or idle: last_active_ms <= now_ms -
     * idle_ms and is_active(arg, id) answers 0 (is_active may be NULL: nobody present).
     * An idle call that is_active reports busy is touched instead. is_active runs inside
     * this op's write transaction on the same connection: it may call read-only ops of
     * this kw_db (meeting_role, the guests' meeting_has_guests) but must not begin a
     * transaction. Calls with an admitted, unexpired guest session are never deleted
     * (seed 000 phase 10: a guest keeps the call). Deleting a call takes
     * its invitations and guest sessions (INV-9). *deleted (may be NULL) gets how many were
     * deleted. Errors: KW_ERR_STORE.
     */
    kw_err (*instant_calls_cleanup)(void *ctx, int64_t now_ms, int64_t idle_ms, int64_t max_age_ms,
                                    kw_meeting_active_fn is_active, void *arg, size_t max_rows,
                                    size_t *deleted, kw_error *err);

    /* ---- participants ------------------------------------------------------------ */
    /*
     * Makes user_id a participant with role MEMBER or MANAGER (an existing member or
     * manager gets the new role). Errors: KW_ERR_INVALID_ARGUMENT (role not MEMBER or
     * MANAGER), KW_ERR_NOT_FOUND (no such meeting or user; the detail says which),
     * KW_ERR_CONFLICT (user_id is the owner), KW_ERR_STORE.
     */
    kw_err (*participant_add)(void *ctx, const char *meeting_id, const char *user_id,
                              kw_meeting_role role, int64_t now_ms, kw_error *err);
    /*
     * Removes user_id from the meeting. Errors: KW_ERR_NOT_FOUND (no such meeting, or
     * user_id is not a participant), KW_ERR_CONFLICT (user_id is the owner), KW_ERR_STORE.
     */
    kw_err (*participant_remove)(void *ctx, const char *meeting_id, const char *user_id,
                                 kw_error *err);
    /*
     * Lists the meeting's admitted guest sessions that have not expired at now_ms, by
     * admission time, at most KW_DB_LIST_MAX. *out malloc'd (free(); NULL when *n is 0).
     * Errors: KW_ERR_STORE, KW_ERR_NOMEM.
     */
    kw_err (*admitted_guests)(void *ctx, const char *meeting_id, int64_t now_ms,
                              kw_db_admitted_guest **out, size_t *n, kw_error *err);

    /* ---- invitations ------------------------------------------------------------- */
    /*
     * Creates an invitation to meeting_id with a fresh random token. label may be NULL
     * (""), expires_ms 0 = never (else must be > now_ms), max_uses 0 = unlimited (else
     * 1..KW_INVITATION_MAX_USES_MAX). *out gets the stored invitation (holds the token:
     * a secret). Errors: KW_ERR_INVALID_ARGUMENT, KW_ERR_NOT_FOUND (no such meeting),
     * KW_ERR_STORE, KW_ERR_CRYPTO.
     */
    kw_err (*invitation_create)(void *ctx, const char *meeting_id, const char *created_by,
                                const char *label, int64_t expires_ms, int64_t max_uses,
                                int64_t now_ms, kw_db_invitation *out, kw_error *err);
    /* Lists the meeting's invitations, oldest first, at most KW_DB_LIST_MAX; *out malloc'd
     * (free(); NULL when *n is 0). Errors: KW_ERR_STORE, KW_ERR_NOMEM. */
    kw_err (*invitation_list)(void *ctx, const char *meeting_id, kw_db_invitation **out, size_t *n,
                              kw_error *err);
    /*
     * Revokes the invitation token of meeting_id (already revoked: no change, KW_OK).
     * Errors: KW_ERR_NOT_FOUND (no such token in that meeting), KW_ERR_STORE.
     */
    kw_err (*invitation_revoke)(void *ctx, const char *meeting_id, const char *token,
                                int64_t now_ms, kw_error *err);
    /*
     * Checks that token may be used now, for the guests' join info and registration, and
     * copies its meeting id into meeting_id ("" on failure). Order: unknown, revoked,
     * expired (now_ms >= expires_ms), the meeting no longer allows external guests,
     * exhausted (uses >= max_uses) — the order db_guests.h's register_guest uses. Does not
     * count a use: registration increments invitations.uses itself, in its own transaction.
     * Errors: KW_ERR_UNKNOWN_INVITATION (no such token, or malformed), KW_ERR_INVITATION_REVOKED,
     * KW_ERR_INVITATION_EXPIRED, KW_ERR_FORBIDDEN (allow_external is off),
     * KW_ERR_INVITATION_EXHAUSTED, KW_ERR_STORE.
     */
    kw_err (*invitation_check)(void *ctx, const char *token, int64_t now_ms,
                               char meeting_id[KW_DB_ID_MAX + 1], kw_error *err);
} kw_db_meetings_ops;

/* ---- RFC 3339 times (DESIGN.md section 7), implemented in api_meetings.c ---------------- */

#define KW_TIME_TEXT_MAX 32 /* "2026-11-22T10:00:00.123Z" and its NUL fit */

/*
 * Parses an RFC 3339 date-time "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" (upper-case
 * T and Z; years 1970..9999; fraction digits beyond milliseconds are dropped) into ms
 * since the epoch, UTC. Errors: KW_ERR_INVALID_ARGUMENT (anything else, or before 1970).
 */
kw_err kw_time_parse(const char *text, int64_t *ms) KW_MUST_CHECK;

/*
 * Writes ms as RFC 3339 UTC: "2026-11-22T10:00:00Z", with ".mmm" before the Z only when
 * ms is not a whole second, so parse(format(x)) == x. ms must be in 0..253402300799999
 * (year 9999); outside, out is "" and KW_ERR_INVALID_ARGUMENT returned.
 */
kw_err kw_time_format(int64_t ms, char out[KW_TIME_TEXT_MAX]);

#endif
