/*
 * authz_table.h — the authorization matrix of keywaved: every route of every route table
 * × every kind of caller, with the status DESIGN.md §4/§5/§7 and docs/api.md expect.
 *
 * Header-only static data, shared by two tests:
 *   tests/integration/test_authz.c   sends each cell to a running keywaved (black box);
 *   tests/unit/test_srv_routes.c     compares the (method, pattern) pairs below with
 *                                    kw_router_tables(), so a route added without a row
 *                                    here (or a row for a route that is gone) fails.
 *
 * Each cell's request is valid in every other respect (body, ids, rate limits), so only
 * authentication and authorization decide its status. A status of 409 or 404 in a cell
 * where the caller is allowed means "past the authorization checks" (no host present,
 * member not present, already admitted): the happy path needs presence, which nothing
 * registers over HTTP yet.
 *
 * Placeholders in target and body (expanded by test_authz.c):
 *   {M} meeting M (owner; manager and member participants; E a member participant)
 *   {N} meeting N (another owner; guest C belongs to it)
 *   {T} an invitation token of M           {C} a channel of the owner (member, manager in it)
 *   {S} the subject session: the caller's own for the guest columns of M (A waiting,
 *       B admitted, D declined), else the waiting guest A's
 *   {G} the caller's own session for every guest column (C's for the other-meeting
 *       guest), else A's
 *   {A} {B} guest A's and guest B's sessions, whoever calls (a sibling guest of the same
 *       meeting naming them is refused like any other session's guest)
 *   {X} guest C's session (of meeting N)    {K} an invitation token of N
 *   {E} user id of a plain participant of M that no caller column is
 *   {Y} the caller's own user id (members), else E's
 *   {O} {P} the owner's user id and device id
 *   {U} {D} user and device id of a member outside every caller column, with keys
 * Whole-body tokens: "IDK" the caller's identity upload (the same as already stored),
 * "SPK" its signed pre-key upload, "PK" one member pre-key with a fresh id, "GPK" one
 * guest pre-key with a fresh id, "REG" a guest registration with {T}, "ENROLL" a fresh
 * enrollment code.
 *
 * A HEAD row stands for its GET route (the router answers HEAD with the GET row).
 * pattern is the router's pattern string (NULL for a row that is no route: an unknown
 * path or method). fresh: the cell changes state, so every cell of the row gets its own
 * new meeting M with its participants, invitation, channel and guests A, B and D.
 */
#ifndef KEYWAVE_TESTS_AUTHZ_TABLE_H
#define KEYWAVE_TESTS_AUTHZ_TABLE_H

#include <stddef.h>

enum {
    AZ_ANON,           /* no credentials */
    AZ_OUTSIDER,       /* an enrolled member who is no participant of M */
    AZ_MEMBER,         /* participant of M, role member */
    AZ_MANAGER,        /* participant of M, role manager */
    AZ_OWNER,          /* owner of M */
    AZ_GUEST_OTHER,    /* guest C, waiting in meeting N */
    AZ_GUEST_SELF,     /* guest A of M, registered, not admitted (the subject before) */
    AZ_GUEST_ADMIT,    /* guest B of M, admitted (the subject after admission) */
    AZ_GUEST_DECLINED, /* guest D of M, declined */
    AZ_N_CALLERS
};

static const char *const az_caller_names[AZ_N_CALLERS] = {
    "anonymous",
    "outsider",
    "member",
    "manager",
    "owner",
    "guest of another meeting",
    "guest (waiting)",
    "guest (admitted)",
    "guest (declined)",
};

typedef struct az_row {
    const char *method;
    const char *pattern; /* router pattern, NULL when no route matches */
    const char *target;  /* path and query with placeholders */
    const char *body;    /* NULL: no body */
    int fresh;
    int want[AZ_N_CALLERS]; /* anon outsider member manager owner guestC guestA guestB guestD */
} az_row;

#define AZ_MEMBER_ANY                                                                              \
    {                                                                                              \
        401, 200, 200, 200, 200, 401, 401, 401, 401                                                \
    }
#define AZ_MEMBER_NEW                                                                              \
    {                                                                                              \
        401, 201, 201, 201, 201, 401, 401, 401, 401                                                \
    }
#define AZ_PARTICIPANT                                                                             \
    {                                                                                              \
        401, 403, 200, 200, 200, 401, 401, 401, 401                                                \
    }
#define AZ_MANAGERS                                                                                \
    {                                                                                              \
        401, 403, 403, 200, 200, 401, 401, 401, 401                                                \
    }
#define AZ_OWNER_ONLY                                                                              \
    {                                                                                              \
        401, 403, 403, 403, 200, 401, 401, 401, 401                                                \
    }
#define AZ_OWN_SESSION                                                                             \
    {                                                                                              \
        401, 401, 401, 401, 401, 403, 200, 200, 200                                                \
    }
#define AZ_EVERYONE(s)                                                                             \
    {                                                                                              \
        s, s, s, s, s, s, s, s, s                                                                  \
    }

static const az_row az_rows[] = {
    /* health */
    {"GET", "/healthz", "/healthz", NULL, 0, AZ_EVERYONE(200)},
    {"GET", "/metrics", "/metrics", NULL, 0, AZ_EVERYONE(200)},
    /* enrollment */
    {"POST", "/api/auth/enroll", "/api/auth/enroll", "ENROLL", 0, AZ_EVERYONE(201)},
    /* member key directory */
    {"PUT", "/api/keys/identity", "/api/keys/identity", "IDK", 0, AZ_MEMBER_ANY},
    {"PUT", "/api/keys/signed-prekey", "/api/keys/signed-prekey", "SPK", 0, AZ_MEMBER_ANY},
    {"POST", "/api/keys/prekeys", "/api/keys/prekeys", "PK", 0, AZ_MEMBER_ANY},
    {"GET", "/api/keys/count", "/api/keys/count", NULL, 0, AZ_MEMBER_ANY},
    {"GET", "/api/keys/:userId/:deviceId", "/api/keys/{U}/{D}", NULL, 0, AZ_MEMBER_ANY},
    /* channels */
    {"POST", "/api/channels", "/api/channels", "{\"name\":\"c\",\"type\":\"signal\"}", 0,
     AZ_MEMBER_NEW},
    {"POST", "/api/channels/:id/members", "/api/channels/{C}/members", "{\"user_id\":\"{E}\"}", 1,
     AZ_OWNER_ONLY},
    /* meetings */
    {"POST", "/api/meetings", "/api/meetings",
     "{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\","
     "\"end_time\":\"2030-01-01T11:00:00Z\"}",
     0, AZ_MEMBER_NEW},
    {"GET", "/api/meetings", "/api/meetings", NULL, 0, AZ_MEMBER_ANY},
    {"GET", "/api/meetings", "/api/meetings?filter=upcoming", NULL, 0, AZ_MEMBER_ANY},
    {"GET", "/api/meetings/:id", "/api/meetings/{M}", NULL, 0, AZ_PARTICIPANT},
    {"HEAD", "/api/meetings/:id", "/api/meetings/{M}", NULL, 0, AZ_PARTICIPANT},
    /* an unknown meeting is 404 for every member, participant of something or not */
    {"GET",
     "/api/meetings/:id",
     "/api/meetings/mtg_000000000000",
     NULL,
     0,
     {401, 404, 404, 404, 404, 401, 401, 401, 401}},
    {"PATCH", "/api/meetings/:id", "/api/meetings/{M}", "{\"title\":\"renamed\"}", 1,
     AZ_OWNER_ONLY},
    {"DELETE", "/api/meetings/:id", "/api/meetings/{M}", NULL, 1, AZ_OWNER_ONLY},
    {"POST", "/api/calls/instant", "/api/calls/instant", "{}", 0, AZ_MEMBER_NEW},
    {"POST", "/api/meetings/:id/participants", "/api/meetings/{M}/participants",
     "{\"user_id\":\"{E}\",\"role\":\"manager\"}", 1, AZ_MANAGERS},
    {"DELETE", "/api/meetings/:id/participants/:userId", "/api/meetings/{M}/participants/{E}", NULL,
     1, AZ_MANAGERS},
    /* removing oneself: any participant but the owner (409, never removed) */
    {"DELETE",
     "/api/meetings/:id/participants/:userId",
     "/api/meetings/{M}/participants/{Y}",
     NULL,
     1,
     {401, 403, 200, 200, 409, 401, 401, 401, 401}},
    /* members of the meeting, or its guests waiting or admitted */
    {"GET",
     "/api/meetings/:id/participants",
     "/api/meetings/{M}/participants",
     NULL,
     0,
     {401, 403, 200, 200, 200, 403, 200, 200, 403}},
    {"GET",
     "/api/meetings/:id/participants",
     "/api/meetings/{M}/participants?status=joined&exclude_external=true",
     NULL,
     0,
     {401, 403, 200, 200, 200, 403, 200, 200, 403}},
    /* invitations */
    {"POST",
     "/api/meetings/:id/invitations",
     "/api/meetings/{M}/invitations",
     "{}",
     0,
     {401, 403, 403, 201, 201, 401, 401, 401, 401}},
    {"GET", "/api/meetings/:id/invitations", "/api/meetings/{M}/invitations", NULL, 0, AZ_MANAGERS},
    {"DELETE", "/api/meetings/:id/invitations/:token", "/api/meetings/{M}/invitations/{T}", NULL, 1,
     AZ_MANAGERS},
    {"GET", "/join/meeting/:token", "/join/meeting/{T}", NULL, 0, AZ_EVERYONE(200)},
    {"GET", "/api/meetings/external/join/:token", "/api/meetings/external/join/{T}", NULL, 0,
     AZ_EVERYONE(200)},
    /* the guest app's files (api_web.c): no web build in the test's working directory */
    {"GET", "/web/:file", "/web/app.js", NULL, 0, AZ_EVERYONE(404)},
    /* guests */
    {"POST", "/api/meetings/external/register", "/api/meetings/external/register", "REG", 0,
     AZ_EVERYONE(201)},
    {"GET", "/api/meetings/external/session/:sid/prekeys",
     "/api/meetings/external/session/{S}/prekeys", NULL, 0, AZ_OWN_SESSION},
    {"HEAD", "/api/meetings/external/session/:sid/prekeys",
     "/api/meetings/external/session/{S}/prekeys", NULL, 0, AZ_OWN_SESSION},
    /* a session that does not exist is another session than the bearer's own */
    {"GET",
     "/api/meetings/external/session/:sid/prekeys",
     "/api/meetings/external/session/00000000000000000000000000000000/prekeys",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 403, 403, 403}},
    /* a declined guest uploads no more pre-keys (nobody fetches them) */
    {"POST",
     "/api/meetings/external/session/:sid/prekeys",
     "/api/meetings/external/session/{S}/prekeys",
     "GPK",
     0,
     {401, 401, 401, 401, 401, 403, 200, 200, 403}},
    {"DELETE", "/api/meetings/external/session/:sid", "/api/meetings/external/session/{S}", NULL, 1,
     AZ_OWN_SESSION},
    /* 409: no host present (waiting), already admitted / declined — all past the checks */
    {"POST",
     "/api/meetings/:id/external/:sid/request-admission",
     "/api/meetings/{M}/external/{S}/request-admission",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 409, 409, 409}},
    /* a guest's own session, but M is not its meeting (guest C) */
    {"POST",
     "/api/meetings/:id/external/:sid/request-admission",
     "/api/meetings/{M}/external/{G}/request-admission",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 409, 409, 409}},
    {"GET", "/api/meetings/:id/external/waiting", "/api/meetings/{M}/external/waiting", NULL, 0,
     AZ_PARTICIPANT},
    {"POST", "/api/meetings/:id/external/:sid/admit", "/api/meetings/{M}/external/{S}/admit", NULL,
     1, AZ_PARTICIPANT},
    {"POST", "/api/meetings/:id/external/:sid/decline", "/api/meetings/{M}/external/{S}/decline",
     NULL, 1, AZ_PARTICIPANT},
    /* guest A of M named under meeting N: every member column is no participant of N */
    {"POST",
     "/api/meetings/:id/external/:sid/admit",
     "/api/meetings/{N}/external/{S}/admit",
     NULL,
     1,
     {401, 403, 403, 403, 403, 401, 401, 401, 401}},
    {"GET", "/api/meetings/:id/external/:sid/keys", "/api/meetings/{M}/external/{S}/keys", NULL, 0,
     AZ_PARTICIPANT},
    /* 404 not_present for the guest itself: no member device is present */
    {"GET",
     "/api/meetings/external/:sid/participant/:userId/:deviceId/keys",
     "/api/meetings/external/{S}/participant/{O}/{P}/keys",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 404, 404, 403}},
    {"POST",
     "/api/livekit/external-token",
     "/api/livekit/external-token",
     "{\"sessionId\":\"{S}\",\"meetingId\":\"{M}\"}",
     0,
     {401, 401, 401, 401, 401, 403, 403, 200, 403}},
    {"POST",
     "/api/livekit/guest-token",
     "/api/livekit/guest-token",
     "{\"sessionId\":\"{S}\",\"meetingId\":\"{M}\"}",
     0,
     {401, 401, 401, 401, 401, 403, 403, 200, 403}},
    /* the caller's own session with a meeting that is not its own (N for A and B; C is
     * in N but not admitted) */
    {"POST",
     "/api/livekit/external-token",
     "/api/livekit/external-token",
     "{\"sessionId\":\"{G}\",\"meetingId\":\"{N}\"}",
     0,
     {401, 401, 401, 401, 401, 403, 403, 403, 403}},
    /* member media tokens */
    {"POST", "/api/livekit/token", "/api/livekit/token", "{\"channelId\":\"{C}\"}", 0,
     AZ_PARTICIPANT},
    {"POST", "/api/livekit/meeting-token", "/api/livekit/meeting-token", "{\"meetingId\":\"{M}\"}",
     0, AZ_PARTICIPANT},
    {"POST", "/api/v1/live/streams/:stream_id/join", "/api/v1/live/streams/{M}/join", "{}", 0,
     AZ_PARTICIPANT},
    /* a sibling guest of the same meeting acting on another session: 403, like a guest of
     * another meeting (the check is on the session, not only on the meeting) */
    {"GET",
     "/api/meetings/external/session/:sid/prekeys",
     "/api/meetings/external/session/{A}/prekeys",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 200, 403, 403}},
    {"POST",
     "/api/meetings/external/session/:sid/prekeys",
     "/api/meetings/external/session/{A}/prekeys",
     "GPK",
     0,
     {401, 401, 401, 401, 401, 403, 200, 403, 403}},
    {"DELETE",
     "/api/meetings/external/session/:sid",
     "/api/meetings/external/session/{A}",
     NULL,
     1,
     {401, 401, 401, 401, 401, 403, 200, 403, 403}},
    {"POST",
     "/api/meetings/:id/external/:sid/request-admission",
     "/api/meetings/{M}/external/{A}/request-admission",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 409, 403, 403}},
    {"GET",
     "/api/meetings/external/:sid/participant/:userId/:deviceId/keys",
     "/api/meetings/external/{A}/participant/{O}/{P}/keys",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 404, 403, 403}},
    /* naming the admitted sibling's session does not lend its admission */
    {"POST",
     "/api/livekit/external-token",
     "/api/livekit/external-token",
     "{\"sessionId\":\"{B}\",\"meetingId\":\"{M}\"}",
     0,
     {401, 401, 401, 401, 401, 403, 403, 200, 403}},
    {"POST",
     "/api/livekit/guest-token",
     "/api/livekit/guest-token",
     "{\"sessionId\":\"{B}\",\"meetingId\":\"{M}\"}",
     0,
     {401, 401, 401, 401, 401, 403, 403, 200, 403}},
    /* across meetings: a participant of M naming what belongs to N (guest C, N's token)
     * under M's path finds nothing there; naming N itself is a non-participant's 403 */
    {"POST",
     "/api/meetings/:id/external/:sid/admit",
     "/api/meetings/{M}/external/{X}/admit",
     NULL,
     0,
     {401, 403, 404, 404, 404, 401, 401, 401, 401}},
    {"POST",
     "/api/meetings/:id/external/:sid/decline",
     "/api/meetings/{M}/external/{X}/decline",
     NULL,
     0,
     {401, 403, 404, 404, 404, 401, 401, 401, 401}},
    {"GET",
     "/api/meetings/:id/external/:sid/keys",
     "/api/meetings/{M}/external/{X}/keys",
     NULL,
     0,
     {401, 403, 404, 404, 404, 401, 401, 401, 401}},
    {"DELETE",
     "/api/meetings/:id/invitations/:token",
     "/api/meetings/{M}/invitations/{K}",
     NULL,
     0,
     {401, 403, 403, 404, 404, 401, 401, 401, 401}},
    {"GET",
     "/api/meetings/:id/external/waiting",
     "/api/meetings/{N}/external/waiting",
     NULL,
     0,
     {401, 403, 403, 403, 403, 401, 401, 401, 401}},
    {"GET",
     "/api/meetings/:id/participants",
     "/api/meetings/{N}/participants",
     NULL,
     0,
     {401, 403, 403, 403, 403, 200, 403, 403, 403}},
    {"POST",
     "/api/meetings/:id/external/:sid/request-admission",
     "/api/meetings/{N}/external/{S}/request-admission",
     NULL,
     0,
     {401, 401, 401, 401, 401, 403, 403, 403, 403}},
    {"POST",
     "/api/livekit/meeting-token",
     "/api/livekit/meeting-token",
     "{\"meetingId\":\"{N}\"}",
     0,
     {401, 403, 403, 403, 403, 401, 401, 401, 401}},
    {"POST",
     "/api/v1/live/streams/:stream_id/join",
     "/api/v1/live/streams/{N}/join",
     "{}",
     0,
     {401, 403, 403, 403, 403, 401, 401, 401, 401}},
    /* no route: 404 for everyone, before any authentication; a known path with another
     * method: 405 for everyone */
    {"GET", NULL, "/api/nope", NULL, 0, AZ_EVERYONE(404)},
    {"POST", NULL, "/api/meetings/{M}/nope", "{}", 0, AZ_EVERYONE(404)},
    {"GET", NULL, "/api/meetings/{M}/external/{S}", NULL, 0, AZ_EVERYONE(404)},
    {"PUT", NULL, "/api/meetings/{M}", "{}", 0, AZ_EVERYONE(405)},
    {"DELETE", NULL, "/healthz", NULL, 0, AZ_EVERYONE(405)},
};

#define AZ_N_ROWS (sizeof az_rows / sizeof az_rows[0])

#endif
