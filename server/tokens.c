/*
 * tokens.c — LiveKit and Jitsi JWTs (tokens.h).
 *
 * The claims are built as one jansson object and handed to libjwt with
 * jwt_add_grants_json (the only libjwt 1.10 call that takes nested claims such as `video`
 * and `context`), so every claim has its JSON type by construction. Every input is checked
 * before anything is built: a NULL from jansson after the checks can only mean memory ran
 * out. Times are whole seconds: nbf is now rounded down, so a token is valid at once.
 */
#include "tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>

#include "config.h" /* KW_CONFIG_JITSI_SECRET_MIN */
#include "crypto.h" /* kw_wipe */

/* Latest now_ms accepted (the last ms of year 9999): keeps the second arithmetic far from
 * overflow, and a clock beyond it is broken anyway. */
#define NOW_MS_MAX INT64_C(253402300799999)

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), as jansson
 * demands of strings; checked here so that a jansson failure later means only NOMEM. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, min = 0x80, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, min = 0x800, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* A claim value from the caller: NULL is allowed only when optional; else 1..max bytes of
 * UTF-8. `what` names the field in the detail; the value itself is never quoted. */
static kw_err check_text(const char *what, const char *s, bool optional, size_t max, kw_error *err)
{
    if (s == NULL) {
        if (optional)
            return KW_OK;
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: missing", what);
    }
    size_t n = strnlen(s, max + 1);
    if (n == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: empty", what);
    if (n > max)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: longer than %zu bytes", what, max);
    if (!utf8_ok((const unsigned char *)s, n))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: not valid UTF-8", what);
    return KW_OK;
}

/* A configuration value the token needs: unset is NOT_CONFIGURED (the route is off), a
 * value that cannot be used is INVALID_ARGUMENT. Secrets are never quoted. */
static kw_err check_config(const char *what, const char *s, size_t max, kw_error *err)
{
    if (s == NULL || s[0] == '\0')
        return kw_error_set(err, KW_ERR_NOT_CONFIGURED, "%s is not configured", what);
    return check_text(what, s, false, max, err);
}

static kw_err check_now(int64_t now_ms, kw_error *err)
{
    if (now_ms < 0 || now_ms > NOW_MS_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "now_ms: out of range");
    return KW_OK;
}

/* libjwt reports failures as errno values. */
static kw_err jwt_failure(int e, const char *what, kw_error *err)
{
    if (e == ENOMEM)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    return kw_error_set(err, KW_ERR_INTERNAL, "libjwt: %s failed (errno %d)", what, e);
}

/*
 * Signs claims as an HS256 JWT with header {alg, typ:"JWT"}. *jwt: a new string (free())
 * on KW_OK, NULL on failure. secret must already be checked (1..KW_TOKEN_SECRET_MAX).
 */
static kw_err sign_hs256(json_t *claims, const char *secret, char **jwt, kw_error *err)
{
    kw_err rc = KW_OK;
    jwt_t *j = NULL;
    char *text = json_dumps(claims, JSON_COMPACT);
    *jwt = NULL;
    if (text == NULL) {
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int e = jwt_new(&j);
    if (e != 0) {
        rc = jwt_failure(e, "jwt_new", err);
        goto fail;
    }
    /* libjwt copies the key and clears its copy (memset) in jwt_free. */
    e = jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret));
    if (e != 0) {
        rc = jwt_failure(e, "jwt_set_alg", err);
        goto fail;
    }
    /* libjwt 1.10 adds typ:JWT by itself; Jitsi requires it, so it is not left to chance. */
    e = jwt_add_header(j, "typ", "JWT");
    if (e == 0)
        e = jwt_add_grants_json(j, text);
    if (e != 0) {
        rc = jwt_failure(e, "adding claims", err);
        goto fail;
    }
    errno = 0;
    *jwt = jwt_encode_str(j);
    if (*jwt == NULL)
        rc = jwt_failure(errno != 0 ? errno : EINVAL, "jwt_encode_str", err);
fail:
    free(text);
    jwt_free(j);
    return rc;
}

/* Sets key to a new value in obj; value may be NULL (jansson ran out of memory). */
static bool set_new(json_t *obj, const char *key, json_t *value)
{
    return value != NULL && json_object_set_new(obj, key, value) == 0;
}

kw_err kw_token_livekit(const kw_livekit_grant *g, const char *api_key, const char *api_secret,
                        int64_t now_ms, char **jwt, kw_error *err)
{
    if (jwt == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "jwt: NULL");
    *jwt = NULL;
    if (g == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "grant: NULL");
    kw_err rc = check_config("LIVEKIT_API_KEY", api_key, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_config("LIVEKIT_API_SECRET", api_secret, KW_TOKEN_SECRET_MAX, err);
    if (rc == KW_OK)
        rc = check_text("identity", g->identity, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("room", g->room, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("name", g->name, true, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("metadata", g->metadata, true, KW_TOKEN_METADATA_MAX, err);
    if (rc == KW_OK)
        rc = check_now(now_ms, err);
    if (rc != KW_OK)
        return rc;
    if (g->metadata != NULL) {
        /* LiveKit hands metadata to every participant, who parse it as JSON. */
        json_t *m = json_loads(g->metadata, JSON_REJECT_DUPLICATES, NULL);
        bool object = json_is_object(m);
        json_decref(m);
        if (!object)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "metadata: not a JSON object");
    }
    int64_t ttl_s = g->ttl_s == 0 ? KW_LIVEKIT_TTL_S : g->ttl_s;
    if (ttl_s < 1 || ttl_s > KW_TOKEN_TTL_MAX_S)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "ttl_s: must be 1..%d",
                            KW_TOKEN_TTL_MAX_S);
    if (g->not_after_ms < 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "not_after_ms: negative");

    int64_t nbf = now_ms / 1000;
    int64_t exp = nbf + ttl_s;
    /* Rounded down, so the token never outlives what it is capped by (INV-4). */
    if (g->not_after_ms > 0 && g->not_after_ms / 1000 < exp)
        exp = g->not_after_ms / 1000;
    if (exp <= nbf)
        return kw_error_set(err, KW_ERR_SESSION_EXPIRED, "the session ends within this second");

    json_t *claims = json_object();
    json_t *video = json_object();
    bool ok =
        claims != NULL && video != NULL && set_new(claims, "iss", json_string(api_key)) &&
        set_new(claims, "sub", json_string(g->identity)) &&
        set_new(claims, "nbf", json_integer(nbf)) && set_new(claims, "exp", json_integer(exp)) &&
        (g->name == NULL || set_new(claims, "name", json_string(g->name))) &&
        (g->metadata == NULL || set_new(claims, "metadata", json_string(g->metadata))) &&
        set_new(video, "room", json_string(g->room)) && set_new(video, "roomJoin", json_true()) &&
        set_new(video, "canPublish", json_boolean(g->can_publish)) &&
        set_new(video, "canSubscribe", json_boolean(g->can_subscribe)) &&
        set_new(video, "canPublishData", json_boolean(g->can_publish_data)) &&
        (!g->room_admin || set_new(video, "roomAdmin", json_true())) &&
        json_object_set(claims, "video", video) == 0;
    if (ok)
        rc = sign_hs256(claims, api_secret, jwt, err);
    else
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    json_decref(video);
    json_decref(claims);
    return rc;
}

/* Wipes and frees a token string (a bearer credential until it expires). */
static void free_token_text(char *s)
{
    if (s != NULL) {
        kw_wipe(s, strlen(s));
        free(s);
    }
}

void kw_livekit_token_free(kw_livekit_token *t)
{
    if (t == NULL)
        return;
    free_token_text(t->jwt);
    free(t->room);
    free(t->identity);
    memset(t, 0, sizeof *t);
}

/* A new string a + b (both checked non-NULL), or NULL when memory runs out. */
static char *concat(const char *a, const char *b)
{
    size_t total = strlen(a) + strlen(b) + 1;
    char *s = malloc(total);
    if (s != NULL)
        snprintf(s, total, "%s%s", a, b);
    return s;
}

/*
 * The wrappers' common tail: takes ownership of identity, room and metadata (any may be
 * NULL after a failed allocation), signs, and fills out or frees everything.
 */
static kw_err livekit_finish(kw_livekit_grant *g, char *identity, char *room, json_t *metadata,
                             const char *api_key, const char *api_secret, int64_t now_ms,
                             kw_livekit_token *out, kw_error *err)
{
    kw_err rc;
    char *meta_text = metadata != NULL ? json_dumps(metadata, JSON_COMPACT) : NULL;
    json_decref(metadata);
    if (identity == NULL || room == NULL || meta_text == NULL) {
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    g->identity = identity;
    g->room = room;
    g->metadata = meta_text;
    rc = kw_token_livekit(g, api_key, api_secret, now_ms, &out->jwt, err);
    if (rc == KW_OK) {
        out->identity = identity;
        out->room = room;
        identity = room = NULL;
    }
fail:
    free(meta_text);
    free(identity);
    free(room);
    return rc;
}

kw_err kw_token_livekit_channel(const char *api_key, const char *api_secret, const char *user_id,
                                const char *user_name, const char *channel_id, bool owner,
                                int64_t now_ms, kw_livekit_token *out, kw_error *err)
{
    if (out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "out: NULL");
    memset(out, 0, sizeof *out);
    kw_err rc = check_text("user_id", user_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("channel_id", channel_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc != KW_OK)
        return rc;
    kw_livekit_grant g = {.name = user_name,
                          .can_publish = true,
                          .can_subscribe = true,
                          .can_publish_data = true,
                          .room_admin = owner};
    json_t *meta = json_pack("{s:s, s:s}", "user_id", user_id, "channel_id", channel_id);
    return livekit_finish(&g, strdup(user_id), concat("channel-", channel_id), meta, api_key,
                          api_secret, now_ms, out, err);
}

kw_err kw_token_livekit_meeting(const char *api_key, const char *api_secret, const char *user_id,
                                const char *device_id, const char *user_name,
                                const char *meeting_id, bool owner, int64_t now_ms,
                                kw_livekit_token *out, kw_error *err)
{
    if (out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "out: NULL");
    memset(out, 0, sizeof *out);
    kw_err rc = check_text("user_id", user_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("device_id", device_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("meeting_id", meeting_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc != KW_OK)
        return rc;
    kw_livekit_grant g = {.name = user_name,
                          .can_publish = true,
                          .can_subscribe = true,
                          .can_publish_data = true,
                          .room_admin = owner};
    char *user_colon = concat(user_id, ":");
    char *identity = user_colon != NULL ? concat(user_colon, device_id) : NULL;
    free(user_colon);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:b}", "user_id", user_id, "device_id", device_id,
                             "meeting_id", meeting_id, "is_guest", 0);
    return livekit_finish(&g, identity, strdup(meeting_id), meta, api_key, api_secret, now_ms, out,
                          err);
}

kw_err kw_token_livekit_guest(const char *api_key, const char *api_secret, const char *session_id,
                              const char *display_name, const char *meeting_id,
                              int64_t session_expires_ms, int64_t now_ms, kw_livekit_token *out,
                              kw_error *err)
{
    if (out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "out: NULL");
    memset(out, 0, sizeof *out);
    kw_err rc = check_text("session_id", session_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("meeting_id", meeting_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc != KW_OK)
        return rc;
    /* A guest's session always ends (24 h); 0 would mean "no cap" in the grant. */
    if (session_expires_ms <= 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "session_expires_ms: must be > 0");
    /* INV-4: identity guest_<session_id>, no data channel, never past the session. */
    kw_livekit_grant g = {.name = display_name,
                          .can_publish = true,
                          .can_subscribe = true,
                          .can_publish_data = false,
                          .room_admin = false,
                          .not_after_ms = session_expires_ms};
    json_t *meta = json_pack("{s:s, s:s, s:b}", "session_id", session_id, "meeting_id", meeting_id,
                             "is_guest", 1);
    return livekit_finish(&g, concat("guest_", session_id), strdup(meeting_id), meta, api_key,
                          api_secret, now_ms, out, err);
}

bool kw_jitsi_secret_ok(const char *secret)
{
    return secret != NULL &&
           strnlen(secret, KW_CONFIG_JITSI_SECRET_MIN) >= KW_CONFIG_JITSI_SECRET_MIN;
}

static bool room_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static char ascii_lower(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

kw_err kw_jitsi_room_name(const char *meeting_id, char *out, size_t cap, kw_error *err)
{
    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (meeting_id == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "meeting_id: missing");
    size_t n = strnlen(meeting_id, KW_TOKEN_FIELD_MAX + 1);
    if (n > KW_TOKEN_FIELD_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "meeting_id: longer than %d bytes",
                            KW_TOKEN_FIELD_MAX);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += room_char(ascii_lower(meeting_id[i]));
    if (len == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "meeting_id: no character of [a-z0-9_-] to make a room name of");
    if (out == NULL || cap <= len)
        return kw_error_set(err, KW_ERR_BUFFER_TOO_SMALL, "room name: needs %zu bytes", len + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = ascii_lower(meeting_id[i]);
        if (room_char(c))
            out[w++] = c;
    }
    out[w] = '\0';
    return KW_OK;
}

kw_err kw_jitsi_host_name(const char *server_url, char *out, size_t cap, kw_error *err)
{
    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (server_url == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "JITSI_SERVER_URL: missing");
    if (strnlen(server_url, KW_TOKEN_FIELD_MAX + 1) > KW_TOKEN_FIELD_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "JITSI_SERVER_URL: longer than %d bytes",
                            KW_TOKEN_FIELD_MAX);
    const char *sep = strstr(server_url, "://");
    if (sep == NULL || sep == server_url)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "JITSI_SERVER_URL: no scheme://");
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    /* User info ends at the last '@' of the authority (RFC 3986 section 3.2). */
    for (size_t i = auth_len; i > 0; i--) {
        if (auth[i - 1] == '@') {
            auth += i;
            auth_len -= i;
            break;
        }
    }
    const char *host = auth;
    size_t host_len;
    if (auth_len > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', auth_len);
        if (close == NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "JITSI_SERVER_URL: unterminated IPv6 literal");
        host = auth + 1;
        host_len = (size_t)(close - host);
    } else {
        const char *colon = memchr(auth, ':', auth_len);
        host_len = colon != NULL ? (size_t)(colon - auth) : auth_len;
    }
    if (host_len == 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "JITSI_SERVER_URL: no host");
    if (out == NULL || cap <= host_len)
        return kw_error_set(err, KW_ERR_BUFFER_TOO_SMALL, "host name: needs %zu bytes",
                            host_len + 1);
    /* Host names compare case-insensitively; Jitsi's (Prosody's) domains are lower case. */
    for (size_t i = 0; i < host_len; i++)
        out[i] = ascii_lower(host[i]);
    out[host_len] = '\0';
    return KW_OK;
}

void kw_jitsi_token_free(kw_jitsi_token *t)
{
    if (t == NULL)
        return;
    free_token_text(t->jwt);
    free(t->room_name);
    free(t->url);
    memset(t, 0, sizeof *t);
}

/* <server_url>/<room>, without doubling a trailing '/' of the configured URL. */
static char *room_url(const char *server_url, const char *room)
{
    size_t n = strlen(server_url);
    while (n > 0 && server_url[n - 1] == '/')
        n--;
    size_t total = n + 1 + strlen(room) + 1;
    char *url = malloc(total);
    if (url != NULL)
        snprintf(url, total, "%.*s/%s", (int)n, server_url, room);
    return url;
}

kw_err kw_token_jitsi(const kw_jitsi_claims *c, const char *app_id, const char *app_secret,
                      const char *server_url, int64_t expiration_s, int64_t now_ms,
                      kw_jitsi_token *out, kw_error *err)
{
    if (out == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "out: NULL");
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "claims: NULL");
    kw_err rc = check_config("JITSI_APP_ID", app_id, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_config("JITSI_APP_SECRET", app_secret, KW_TOKEN_SECRET_MAX, err);
    if (rc == KW_OK && !kw_jitsi_secret_ok(app_secret))
        rc =
            kw_error_set(err, KW_ERR_NOT_CONFIGURED, "JITSI_APP_SECRET: shorter than %d characters",
                         KW_CONFIG_JITSI_SECRET_MIN);
    if (rc == KW_OK)
        rc = check_config("JITSI_SERVER_URL", server_url, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("user_id", c->user_id, false, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("name", c->name, true, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_text("email", c->email, true, KW_TOKEN_FIELD_MAX, err);
    if (rc == KW_OK)
        rc = check_now(now_ms, err);
    if (rc != KW_OK)
        return rc;
    if (expiration_s < 1 || expiration_s > KW_TOKEN_TTL_MAX_S)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "JITSI_JWT_EXPIRATION: must be 1..%d",
                            KW_TOKEN_TTL_MAX_S);

    /* Both results are never longer than their inputs, whose lengths are checked above
     * (meeting_id by kw_jitsi_room_name itself). */
    json_t *claims = NULL, *context = NULL;
    char *host = NULL;
    size_t room_cap = c->meeting_id != NULL ? strnlen(c->meeting_id, KW_TOKEN_FIELD_MAX) + 1 : 1;
    out->room_name = malloc(room_cap);
    host = malloc(strlen(server_url) + 1);
    if (out->room_name == NULL || host == NULL) {
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = kw_jitsi_room_name(c->meeting_id, out->room_name, room_cap, err);
    if (rc == KW_OK)
        rc = kw_jitsi_host_name(server_url, host, strlen(server_url) + 1, err);
    if (rc != KW_OK)
        goto fail;

    int64_t nbf = now_ms / 1000;
    claims = json_object();
    context = json_pack("{s:{s:s, s:b}, s:{s:b, s:b}}", "user", "id", c->user_id, "moderator",
                        c->moderator, "features", "audio", c->audio, "video", c->video);
    json_t *user = json_object_get(context, "user");
    bool ok = claims != NULL && user != NULL && set_new(claims, "iss", json_string(app_id)) &&
              set_new(claims, "aud", json_string(app_id)) &&
              set_new(claims, "sub", json_string(host)) &&
              set_new(claims, "room", json_string(out->room_name)) &&
              set_new(claims, "nbf", json_integer(nbf)) &&
              set_new(claims, "exp", json_integer(nbf + expiration_s)) &&
              set_new(claims, "moderator", json_boolean(c->moderator)) &&
              (c->name == NULL || set_new(user, "name", json_string(c->name))) &&
              (c->email == NULL || set_new(user, "email", json_string(c->email))) &&
              json_object_set(claims, "context", context) == 0;
    if (ok)
        out->url = room_url(server_url, out->room_name);
    if (out->url == NULL) {
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = sign_hs256(claims, app_secret, &out->jwt, err);
fail:
    json_decref(context);
    json_decref(claims);
    free(host);
    if (rc != KW_OK)
        kw_jitsi_token_free(out);
    return rc;
}
