/*
 * tokens.h — the media tokens keywaved signs: LiveKit access tokens and Jitsi JWTs
 * (DESIGN.md section 7, "LiveKit JWT" and "Jitsi JWT"; seed 004).
 *
 * Pure functions: the caller passes the configured keys, the claims and now_ms, and gets
 * the signed token plus the values its JSON answer needs (room name, identity, URL).
 * The policy of who gets which grant lives here, once: the three LiveKit wrappers build
 * the identity, room, metadata and grants of the member-channel, member-meeting and
 * guest tokens (INV-4: a guest publishes no data and its token never outlives its
 * session), so a handler only looks up who is asking and passes it in.
 *
 * Tokens are HS256 JWTs made with libjwt 1.10. Secrets are borrowed, never copied by
 * keywave code (libjwt's own copy is cleared by jwt_free); returned tokens are bearer
 * credentials and are wiped by the _free functions.
 */
#ifndef KEYWAVE_SERVER_TOKENS_H
#define KEYWAVE_SERVER_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

#define KW_LIVEKIT_TTL_S      21600  /* LiveKit token lifetime: 6 h */
#define KW_TOKEN_TTL_MAX_S    604800 /* no token lives longer than a week */
#define KW_TOKEN_FIELD_MAX    1024   /* longest identity, name, room, id or key (bytes) */
#define KW_TOKEN_METADATA_MAX 4096   /* longest LiveKit metadata JSON text (bytes) */
#define KW_TOKEN_SECRET_MAX   4096   /* longest signing secret (bytes) */

/*
 * One LiveKit access token's claims. Strings are borrowed. The token always carries
 * video.roomJoin:true (every keywave token is for joining one room).
 */
typedef struct kw_livekit_grant {
    const char *identity;  /* `sub`; required, 1..KW_TOKEN_FIELD_MAX bytes of UTF-8 */
    const char *name;      /* `name`; NULL: the claim is left out */
    const char *metadata;  /* a JSON object's text, sent as the string claim `metadata`;
                              NULL: left out */
    const char *room;      /* video.room; required */
    bool can_publish;      /* video.canPublish */
    bool can_subscribe;    /* video.canSubscribe */
    bool can_publish_data; /* video.canPublishData */
    bool room_admin;       /* true: video.roomAdmin:true; false: the key is absent */
    int64_t ttl_s;         /* lifetime, s; 0 means KW_LIVEKIT_TTL_S; 1..KW_TOKEN_TTL_MAX_S */
    int64_t not_after_ms;  /* > 0: `exp` is never later than this (ms since the epoch; a
                              guest session's expiry); 0: no cap */
} kw_livekit_grant;

/*
 * Signs a LiveKit access token: header {alg:HS256, typ:JWT}; claims iss=api_key,
 * sub=identity, nbf=floor(now_ms/1000), exp=nbf+ttl_s (capped by not_after_ms, rounded
 * down to whole seconds), name, metadata, video{room, roomJoin, canPublish, canSubscribe,
 * canPublishData[, roomAdmin]}.
 * api_key, api_secret: LIVEKIT_API_KEY / LIVEKIT_API_SECRET as configured (borrowed).
 * *jwt: on KW_OK a new NUL-terminated token owned by the caller (wipe and free(); or use
 * the wrappers below); on failure set to NULL.
 * Errors: KW_ERR_NOT_CONFIGURED (api_key or api_secret NULL or empty),
 * KW_ERR_INVALID_ARGUMENT (a field missing, too long, not UTF-8, metadata not a JSON
 * object, ttl or now_ms out of range, a secret over KW_TOKEN_SECRET_MAX),
 * KW_ERR_SESSION_EXPIRED (not_after_ms leaves no whole second after now),
 * KW_ERR_NOMEM, KW_ERR_INTERNAL (libjwt refused).
 */
kw_err kw_token_livekit(const kw_livekit_grant *g, const char *api_key, const char *api_secret,
                        int64_t now_ms, char **jwt, kw_error *err) KW_MUST_CHECK;

/* A LiveKit token with what the route answers beside it. All fields owned. */
typedef struct kw_livekit_token {
    char *jwt;      /* the signed token (`token`) */
    char *room;     /* `roomName` */
    char *identity; /* `identity` (= the token's sub) */
} kw_livekit_token;

/*
 * POST /api/livekit/token: a channel member's token. identity=user_id,
 * room="channel-<channel_id>", name=user_name, metadata {"user_id","channel_id"},
 * canPublish, canSubscribe and canPublishData true, roomAdmin when owner (the channel's
 * owner), 6 h.
 * out: filled on KW_OK (free with kw_livekit_token_free); zeroed on failure.
 * Errors: those of kw_token_livekit.
 */
kw_err kw_token_livekit_channel(const char *api_key, const char *api_secret, const char *user_id,
                                const char *user_name, const char *channel_id, bool owner,
                                int64_t now_ms, kw_livekit_token *out, kw_error *err) KW_MUST_CHECK;

/*
 * POST /api/livekit/meeting-token: a meeting member device's token.
 * identity="<user_id>:<device_id>", room=meeting_id, name=user_name, metadata
 * {"user_id","device_id","meeting_id","is_guest":false}, canPublish, canSubscribe and
 * canPublishData true, roomAdmin when owner (the meeting's owner), 6 h.
 * out: as kw_token_livekit_channel. Errors: those of kw_token_livekit.
 */
kw_err kw_token_livekit_meeting(const char *api_key, const char *api_secret, const char *user_id,
                                const char *device_id, const char *user_name,
                                const char *meeting_id, bool owner, int64_t now_ms,
                                kw_livekit_token *out, kw_error *err) KW_MUST_CHECK;

/*
 * POST /api/livekit/external-token: an admitted guest's token (INV-4; the caller checks
 * the admission). identity="guest_<session_id>", room=meeting_id, name=display_name,
 * metadata {"session_id","meeting_id","is_guest":true}, canPublish and canSubscribe true,
 * canPublishData false, never roomAdmin; exp = min(now + 6 h, session_expires_ms).
 * out: as kw_token_livekit_channel. Errors: those of kw_token_livekit (SESSION_EXPIRED
 * when the session ends within the current second).
 */
kw_err kw_token_livekit_guest(const char *api_key, const char *api_secret, const char *session_id,
                              const char *display_name, const char *meeting_id,
                              int64_t session_expires_ms, int64_t now_ms, kw_livekit_token *out,
                              kw_error *err) KW_MUST_CHECK;

/* Wipes the token, frees every field and zeroes t. t may be NULL. */
void kw_livekit_token_free(kw_livekit_token *t);

/* The per-user claims of a Jitsi token. Strings are borrowed. */
typedef struct kw_jitsi_claims {
    const char *meeting_id; /* required; `room` is kw_jitsi_room_name() of it */
    const char *user_id;    /* context.user.id; required */
    const char *name;       /* context.user.name; NULL: left out */
    const char *email;      /* context.user.email; NULL: left out */
    bool moderator;         /* `moderator` and context.user.moderator (owner or manager) */
    bool audio;             /* context.features.audio */
    bool video;             /* context.features.video */
} kw_jitsi_claims;

/* A Jitsi token with what POST /api/v1/live/streams/:id/join answers. All fields owned. */
typedef struct kw_jitsi_token {
    char *jwt;       /* `token` */
    char *room_name; /* `room_name` (the token's `room`) */
    char *url;       /* `url`: <server_url>/<room_name> */
} kw_jitsi_token;

/*
 * Signs a Jitsi JWT: header {alg:HS256, typ:JWT}; claims iss=aud=app_id,
 * sub=kw_jitsi_host_name(server_url), room=kw_jitsi_room_name(meeting_id),
 * nbf=floor(now_ms/1000), exp=nbf+expiration_s, moderator,
 * context{user{id, name, email, moderator}, features{audio, video}}.
 * app_id, app_secret, server_url, expiration_s: JITSI_APP_ID, JITSI_APP_SECRET,
 * JITSI_SERVER_URL, JITSI_JWT_EXPIRATION as configured (borrowed).
 * out: filled on KW_OK (free with kw_jitsi_token_free); zeroed on failure.
 * Errors: KW_ERR_NOT_CONFIGURED (app_id, app_secret or server_url NULL or empty, or
 * !kw_jitsi_secret_ok(app_secret)), KW_ERR_INVALID_ARGUMENT (a field missing, too long or
 * not UTF-8; a room name that sanitises to nothing; a server_url without a host;
 * expiration_s outside 1..KW_TOKEN_TTL_MAX_S; now_ms out of range), KW_ERR_NOMEM,
 * KW_ERR_INTERNAL (libjwt refused).
 */
kw_err kw_token_jitsi(const kw_jitsi_claims *c, const char *app_id, const char *app_secret,
                      const char *server_url, int64_t expiration_s, int64_t now_ms,
                      kw_jitsi_token *out, kw_error *err) KW_MUST_CHECK;

/* Wipes the token, frees every field and zeroes t. t may be NULL. */
void kw_jitsi_token_free(kw_jitsi_token *t);

/*
 * Writes the Jitsi room name of meeting_id into out (capacity cap, NUL-terminated):
 * ASCII letters lower-cased, then every byte outside [a-z0-9_-] removed (so non-ASCII
 * UTF-8 disappears whole). The result is never longer than meeting_id.
 * Errors: KW_ERR_INVALID_ARGUMENT (meeting_id NULL, over KW_TOKEN_FIELD_MAX bytes, or
 * nothing left), KW_ERR_BUFFER_TOO_SMALL (out cannot hold the result and its NUL).
 */
kw_err kw_jitsi_room_name(const char *meeting_id, char *out, size_t cap,
                          kw_error *err) KW_MUST_CHECK;

/*
 * Writes the host name of an http(s) URL (the Jitsi `sub`) into out: the authority
 * without user info, port or IPv6 brackets, ASCII lower-cased
 * ("https://Meet.Example.com:8443/x" -> "meet.example.com").
 * Errors: KW_ERR_INVALID_ARGUMENT (NULL, no "scheme://", empty host, over
 * KW_TOKEN_FIELD_MAX bytes), KW_ERR_BUFFER_TOO_SMALL.
 */
kw_err kw_jitsi_host_name(const char *server_url, char *out, size_t cap,
                          kw_error *err) KW_MUST_CHECK;

/*
 * True when secret (JITSI_APP_SECRET) is long enough to sign with: at least
 * KW_CONFIG_JITSI_SECRET_MIN (config.h, 32) bytes. NULL is not ok. For the start-time
 * check (DESIGN 7: keywaved refuses to start with a shorter one).
 */
bool kw_jitsi_secret_ok(const char *secret);

#endif
