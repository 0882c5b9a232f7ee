/*
 * test_meetings.c — the member side of meetings end to end against the real keywaved:
 * channels, meetings (create, read, patch, delete, filters), instant calls, participants,
 * invitations (expiry, max_uses, revoke), the invitation page /join/meeting/:token (exact
 * Content-Security-Policy, the 400 page for a malformed token, the web build's index.html
 * when present) and its join info, guests on the participants list, and the
 * member media tokens (LiveKit channel and meeting tokens, the Jitsi join), each with its
 * failure statuses; an authorization matrix (anonymous / member outside the meeting /
 * member / manager / owner x every route of these files, expected statuses in one
 * table); the delete cascade (INV-9); no invitation token in the log (INV-8).
 *
 * Members are made with `keywaved user add` and enrolled over HTTP; requests are signed
 * with lib/request_sign.c. Guests are covered by the guest routes' own tests: here the
 * participants list is seen by members only, and invitation exhaustion is simulated by
 * raising `uses` with the sqlite3 CLI (registration, which counts uses, is theirs).
 * KEYWAVED names the binary (tests/run.sh sets it); without it, ./build/keywaved.
 */
#include <jansson.h>

#include "keywave/base64.h"
#include "keywave/err.h"
#include "keywave/identity.h"
#include "keywave/random.h"
#include "keywave/store.h"
#include "keywave/request_sign.h"
#include "kwserver.h"

#define PUBLIC_URL  "https://kw.example.com"
#define LIVEKIT_URL "wss://lk.example.com"
#define JITSI_URL   "https://meet.example.com"
#define HOUR_MS     (3600LL * 1000)
#define CSP_PREFIX                                                                                 \
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "                 \
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'"
#define CSP_SUFFIX "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static kws_server srv;  /* with LiveKit and Jitsi configured */
static kws_server bare; /* without: media routes answer 503 */

typedef struct member {
    char user_id[130], device_id[16], client_id[130], secret[64];
} member;

/* alice owns the fixtures, bob is their manager, carol a member, dave is outside every
 * fixture, erin is a member that routes add and remove; lone is bare's only member. */
static member alice, bob, carol, dave, erin, lone;
static char tokens_seen[64][40]; /* every invitation token, for the log check (INV-8) */
static int n_tokens;

/* ---- processes, members, requests -------------------------------------------------- */

/* Runs `keywaved <args>` on s's data directory; stdout into out. Returns the exit status. */
static int run_cli(const kws_server *s, const char *const *args, char *out, size_t cap)
{
    return kws_admin(s, args, out, cap);
}

/* Adds user name on s and enrolls one device as m. */
static int new_member(const kws_server *s, const char *name, member *m)
{
    const char *args[] = {"user", "add", name, NULL};
    char out[256], body[256];
    if (run_cli(s, args, out, sizeof out) != 0 || strlen(out) != 21)
        return 0;
    out[20] = '\0';
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"device_name\":\"laptop\"}", out);
    kws_reply r;
    int ok = 0;
    if (kws_request(s->port, "POST", "/api/auth/enroll", NULL, body, strlen(body), &r) &&
        r.status == 201) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *u = NULL, *d = NULL, *c = NULL, *sec = NULL;
        if (j != NULL && json_unpack(j, "{s:s, s:s, s:s, s:s}", "user_id", &u, "device_id", &d,
                                     "client_id", &c, "session_secret", &sec) == 0) {
            snprintf(m->user_id, sizeof m->user_id, "%s", u);
            snprintf(m->device_id, sizeof m->device_id, "%s", d);
            snprintf(m->client_id, sizeof m->client_id, "%s", c);
            snprintf(m->secret, sizeof m->secret, "%s", sec);
            ok = 1;
        }
        json_decref(j);
    }
    kws_reply_free(&r);
    return ok;
}

/* One request to s: signed as m, or anonymous when m is NULL. body NULL: no body. */
static bool send_to(const kws_server *s, const member *m, const char *method, const char *target,
                    const char *body, kws_reply *r)
{
    char headers[1024] = "";
    if (m != NULL) {
        char ts[32], nonce[KW_REQUEST_NONCE_NEW_CHARS + 1], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
        snprintf(ts, sizeof ts, "%lld", (long long)kws_now_ms());
        if (kw_request_nonce_new(kw_random_system(), nonce) != KW_OK ||
            kw_request_sign(m->secret, m->client_id, ts, nonce, method, target,
                            (const uint8_t *)(body ? body : ""), body ? strlen(body) : 0,
                            sig) != KW_OK)
            return false;
        snprintf(headers, sizeof headers,
                 "X-Client-ID: %s\r\nX-Timestamp: %s\r\nX-Nonce: %s\r\nX-Signature: %s\r\n",
                 m->client_id, ts, nonce, sig);
    }
    return kws_request(s->port, method, target, headers, body, body ? strlen(body) : 0, r);
}

static bool call(const member *m, const char *method, const char *target, const char *body,
                 kws_reply *r)
{
    return send_to(&srv, m, method, target, body, r);
}

static json_t *jbody(const kws_reply *r)
{
    return json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
}

/* Checks a body is exactly {"error": token, "detail": <non-empty string>}. */
static void check_error(const kws_reply *r, int status, const char *token)
{
    if (!KWT_CHECK(r->status == status))
        printf("    got %d, want %d; body: %s\n", r->status, status, r->body ? r->body : "(none)");
    json_t *j = jbody(r);
    if (!KWT_CHECK(j != NULL && json_is_object(j))) {
        json_decref(j);
        return;
    }
    KWT_EQ(json_object_size(j), 2);
    KWT_STREQ(json_string_value(json_object_get(j, "error")), token);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    KWT_CHECK(detail != NULL && detail[0] != '\0');
    json_decref(j);
}

/* Sends and checks an error answer in one go. */
static void expect_error(const member *m, const char *method, const char *target, const char *body,
                         int status, const char *token)
{
    kws_reply r;
    if (KWT_CHECK(call(m, method, target, body, &r)))
        check_error(&r, status, token);
    else
        printf("    no reply for %s %s\n", method, target);
    kws_reply_free(&r);
}

static void expect_ok_true(const kws_reply *r)
{
    if (!KWT_CHECK(r->status == 200))
        printf("    got %d; body: %s\n", r->status, r->body ? r->body : "(none)");
    KWT_STREQ(r->body, "{\"ok\":true}");
}

/* RFC 3339 UTC with milliseconds. */
static void fmt_time(int64_t ms, char out[64])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.mmm]Z" back to ms (timegm), -1 on failure. */
static int64_t parse_time(const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (t == NULL)
        return -1;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    if (t[19] == '.' && sscanf(t + 20, "%3d", &ms) != 1)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Creates a meeting as m from start/end offsets (ms from now); id into out. */
static int create_meeting(const member *m, int64_t start_off, int64_t end_off, int allow_external,
                          char out[64])
{
    char start[64], end[64], body[512];
    int64_t now = kws_now_ms();
    fmt_time(now + start_off, start);
    fmt_time(now + end_off, end);
    snprintf(body, sizeof body,
             "{\"title\":\"Sync\",\"start_time\":\"%s\",\"end_time\":\"%s\","
             "\"allow_external\":%s}",
             start, end, allow_external ? "true" : "false");
    kws_reply r;
    int ok = 0;
    if (call(m, "POST", "/api/meetings", body, &r) && r.status == 201) {
        json_t *j = jbody(&r);
        const char *id = json_string_value(json_object_get(j, "meeting_id"));
        if (id != NULL) {
            snprintf(out, 64, "%s", id);
            ok = 1;
        }
        json_decref(j);
    }
    if (!ok)
        printf("    create meeting failed: %d %s\n", r.status, r.body ? r.body : "");
    kws_reply_free(&r);
    return ok;
}

static int post_status(const member *m, const char *target, const char *body)
{
    kws_reply r;
    int st = call(m, "POST", target, body, &r) ? r.status : -1;
    kws_reply_free(&r);
    return st;
}

static int add_participant(const char *meeting, const member *who, const char *role)
{
    char target[128], body[256];
    snprintf(target, sizeof target, "/api/meetings/%s/participants", meeting);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"%s\"}", who->user_id, role);
    return post_status(&alice, target, body) == 200;
}

/* Creates an invitation of meeting as m with body; token into out (may be NULL). */
static int create_invitation(const member *m, const char *meeting, const char *body, char out[40])
{
    char target[128];
    snprintf(target, sizeof target, "/api/meetings/%s/invitations", meeting);
    kws_reply r;
    int ok = 0;
    if (call(m, "POST", target, body, &r) && r.status == 201) {
        json_t *j = jbody(&r);
        const char *t = json_string_value(json_object_get(j, "token"));
        if (t != NULL && strlen(t) < 40) {
            if (out != NULL)
                snprintf(out, 40, "%s", t);
            if (n_tokens < 64)
                snprintf(tokens_seen[n_tokens++], 40, "%s", t);
            ok = 1;
        }
        json_decref(j);
    }
    kws_reply_free(&r);
    return ok;
}

static int create_channel(const member *m, char out[64])
{
    kws_reply r;
    int ok = 0;
    if (call(m, "POST", "/api/channels", "{\"name\":\"video\",\"type\":\"webrtc\"}", &r) &&
        r.status == 201) {
        json_t *j = jbody(&r);
        const char *id = json_string_value(json_object_get(j, "channel_id"));
        if (id != NULL) {
            snprintf(out, 64, "%s", id);
            ok = 1;
        }
        json_decref(j);
    }
    kws_reply_free(&r);
    return ok;
}

static int add_channel_member(const char *channel, const member *who)
{
    char target[128], body[256];
    snprintf(target, sizeof target, "/api/channels/%s/members", channel);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", who->user_id);
    return post_status(&alice, target, body) == 200;
}

/* Runs one statement with the sqlite3 CLI on srv's database; first line of output. */
static int sqlite_cli(const char *sql, char *out, size_t cap)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "sqlite3 -cmd '.timeout 5000' '%s/keywave.db' \"%s\" 2>&1",
             srv.data_dir, sql);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    out[0] = '\0';
    if (fgets(out, (int)cap, p) != NULL)
        out[strcspn(out, "\n")] = '\0';
    return pclose(p) == 0;
}

/* The JSON payload of a JWT (base64url), or NULL. */
static json_t *jwt_payload(const char *jwt)
{
    const char *a = jwt ? strchr(jwt, '.') : NULL;
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (b == NULL || b - a - 1 > 4000)
        return NULL;
    char text[4100];
    size_t n = 0;
    for (const char *p = a + 1; p < b; p++)
        text[n++] = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    while (n % 4 != 0)
        text[n++] = '=';
    uint8_t raw[3100];
    size_t len = 0;
    if (kw_base64_decode(text, n, raw, sizeof raw, &len) != KW_OK)
        return NULL;
    return json_loadb((const char *)raw, len, 0, NULL);
}

/* ---- setup ------------------------------------------------------------------------------ */

static void servers_start_and_members_enroll(void)
{
    static const char *const env[] = {"KEYWAVE_PUBLIC_URL=" PUBLIC_URL,
                                      "LIVEKIT_URL=" LIVEKIT_URL,
                                      "LIVEKIT_API_KEY=APIkeywave",
                                      "LIVEKIT_API_SECRET=livekit-secret-for-the-meeting-tests",
                                      "JITSI_SERVER_URL=" JITSI_URL,
                                      "JITSI_APP_ID=keywave",
                                      "JITSI_APP_SECRET=0123456789abcdef0123456789abcdef-jitsi",
                                      NULL};
    KWT_CHECK(kws_start(&srv, "main", env));
    KWT_CHECK(kws_start(&bare, "bare", NULL));
    KWT_CHECK(new_member(&srv, "alice", &alice));
    KWT_CHECK(new_member(&srv, "bob", &bob));
    KWT_CHECK(new_member(&srv, "carol", &carol));
    KWT_CHECK(new_member(&srv, "dave", &dave));
    KWT_CHECK(new_member(&srv, "erin", &erin));
    KWT_CHECK(new_member(&bare, "lone", &lone));
}

/* ---- the authorization matrix ------------------------------------------------------------ */

typedef enum who { ANON, OUTSIDER, MEMBER, MANAGER, OWNER, N_WHO } who;

static const member *caller_of(who w)
{
    switch (w) {
    case ANON:
        return NULL;
    case OUTSIDER:
        return &dave;
    case MEMBER:
        return &carol;
    case MANAGER:
        return &bob;
    case OWNER:
        return &alice;
    case N_WHO:
        break;
    }
    return NULL;
}

/* A meeting owned by alice (bob manager, carol and erin members), with one invitation,
 * and a channel owned by alice with bob and carol as members. */
typedef struct fixture {
    char meeting[64], token[40], channel[64];
} fixture;

static int fixture_make(fixture *f)
{
    return create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 1, f->meeting) &&
           add_participant(f->meeting, &bob, "manager") &&
           add_participant(f->meeting, &carol, "member") &&
           add_participant(f->meeting, &erin, "member") &&
           create_invitation(&alice, f->meeting, "{}", f->token) &&
           create_channel(&alice, f->channel) && add_channel_member(f->channel, &bob) &&
           add_channel_member(f->channel, &carol);
}

/* Replaces {M} (meeting), {T} (token), {C} (channel), {E} (erin's user id) in in. */
static void subst(const char *in, const fixture *f, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p != '\0' && o + 1 < cap;) {
        const char *v = NULL;
        if (p[0] == '{' && p[1] != '\0' && p[2] == '}') {
            v = p[1] == 'M'   ? f->meeting
                : p[1] == 'T' ? f->token
                : p[1] == 'C' ? f->channel
                : p[1] == 'E' ? erin.user_id
                              : NULL;
        }
        if (v != NULL) {
            int n = snprintf(out + o, cap - o, "%s", v);
            o += n > 0 ? (size_t)n : 0;
            if (o >= cap)
                o = cap - 1;
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

typedef struct matrix_row {
    const char *method, *target, *body;
    int mutates;       /* 1: every call gets a fresh fixture */
    int status[N_WHO]; /* ANON, OUTSIDER, MEMBER, MANAGER, OWNER */
} matrix_row;

static const matrix_row matrix[] = {
    {"POST", "/api/channels", "{\"name\":\"c\",\"type\":\"signal\"}", 0, {401, 201, 201, 201, 201}},
    {"POST", "/api/channels/{C}/members", "{\"user_id\":\"{E}\"}", 1, {401, 403, 403, 403, 200}},
    {"POST",
     "/api/meetings",
     "{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":\"2030-01-01T11:00:"
     "00Z\"}",
     0,
     {401, 201, 201, 201, 201}},
    {"GET", "/api/meetings", NULL, 0, {401, 200, 200, 200, 200}},
    {"GET", "/api/meetings?filter=upcoming", NULL, 0, {401, 200, 200, 200, 200}},
    {"GET", "/api/meetings/{M}", NULL, 0, {401, 403, 200, 200, 200}},
    {"PATCH", "/api/meetings/{M}", "{\"title\":\"renamed\"}", 1, {401, 403, 403, 403, 200}},
    {"DELETE", "/api/meetings/{M}", NULL, 1, {401, 403, 403, 403, 200}},
    {"POST", "/api/calls/instant", NULL, 0, {401, 201, 201, 201, 201}},
    {"POST",
     "/api/meetings/{M}/participants",
     "{\"user_id\":\"{E}\",\"role\":\"manager\"}",
     1,
     {401, 403, 403, 200, 200}},
    {"DELETE", "/api/meetings/{M}/participants/{E}", NULL, 1, {401, 403, 403, 200, 200}},
    {"GET", "/api/meetings/{M}/participants", NULL, 0, {401, 403, 200, 200, 200}},
    {"GET",
     "/api/meetings/{M}/participants?status=joined&exclude_external=true",
     NULL,
     0,
     {401, 403, 200, 200, 200}},
    {"POST", "/api/meetings/{M}/invitations", "{}", 0, {401, 403, 403, 201, 201}},
    {"GET", "/api/meetings/{M}/invitations", NULL, 0, {401, 403, 403, 200, 200}},
    {"DELETE", "/api/meetings/{M}/invitations/{T}", NULL, 1, {401, 403, 403, 200, 200}},
    {"GET", "/join/meeting/{T}", NULL, 0, {200, 200, 200, 200, 200}},
    {"GET", "/api/meetings/external/join/{T}", NULL, 0, {200, 200, 200, 200, 200}},
    {"POST", "/api/livekit/token", "{\"channelId\":\"{C}\"}", 0, {401, 403, 200, 200, 200}},
    {"POST", "/api/livekit/meeting-token", "{\"meetingId\":\"{M}\"}", 0, {401, 403, 200, 200, 200}},
    {"POST", "/api/v1/live/streams/{M}/join", "{}", 0, {401, 403, 200, 200, 200}},
};

static void authorization_matrix(void)
{
    fixture shared;
    if (!KWT_CHECK(fixture_make(&shared)))
        return;
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        const matrix_row *row = &matrix[i];
        for (who w = ANON; w < N_WHO; w++) {
            fixture fresh;
            const fixture *f = &shared;
            if (row->mutates) {
                if (!KWT_CHECK(fixture_make(&fresh)))
                    return;
                f = &fresh;
            }
            char target[256], body[512];
            subst(row->target, f, target, sizeof target);
            if (row->body != NULL)
                subst(row->body, f, body, sizeof body);
            kws_reply r;
            int got = call(caller_of(w), row->method, target, row->body ? body : NULL, &r)
                          ? r.status
                          : -1;
            if (!KWT_CHECK(got == row->status[w]))
                printf("    %s %s as %d: got %d, want %d: %s\n", row->method, row->target, (int)w,
                       got, row->status[w], r.body ? r.body : "");
            kws_reply_free(&r);
        }
    }
}

/* Every meeting route answers 404 for an unknown meeting, to its owner and to an
 * outsider alike (the existence check comes before the role check). */
static void unknown_meeting_is_404_for_everyone(void)
{
    static const char *const rows[][3] = {
        {"GET", "/api/meetings/mtg_000000000000", NULL},
        {"PATCH", "/api/meetings/mtg_000000000000", "{\"title\":\"x\"}"},
        {"DELETE", "/api/meetings/mtg_000000000000", NULL},
        {"POST", "/api/meetings/mtg_000000000000/participants",
         "{\"user_id\":\"usr_0000000000000000\",\"role\":\"member\"}"},
        {"DELETE", "/api/meetings/mtg_000000000000/participants/usr_0000000000000000", NULL},
        {"GET", "/api/meetings/mtg_000000000000/participants", NULL},
        {"POST", "/api/meetings/mtg_000000000000/invitations", "{}"},
        {"GET", "/api/meetings/mtg_000000000000/invitations", NULL},
        {"DELETE", "/api/meetings/mtg_000000000000/invitations/00000000000000000000000000000000",
         NULL},
        {"POST", "/api/livekit/meeting-token", "{\"meetingId\":\"mtg_000000000000\"}"},
        {"POST", "/api/v1/live/streams/mtg_000000000000/join", "{}"},
        {"POST", "/api/channels/chn_000000000000/members", "{\"user_id\":\"x\"}"},
        {"POST", "/api/livekit/token", "{\"channelId\":\"chn_000000000000\"}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        expect_error(&alice, rows[i][0], rows[i][1], rows[i][2], 404, "not_found");
        expect_error(&dave, rows[i][0], rows[i][1], rows[i][2], 404, "not_found");
    }
}

/* ---- channels ---------------------------------------------------------------------------- */

static void channels_routes(void)
{
    kws_reply r;
    KWT_CHECK(
        call(&alice, "POST", "/api/channels", "{\"name\":\"Team room\",\"type\":\"signal\"}", &r));
    KWT_EQ(r.status, 201);
    json_t *j = jbody(&r);
    KWT_EQ(json_object_size(j), 5);
    const char *id = json_string_value(json_object_get(j, "channel_id"));
    KWT_CHECK(id != NULL && strncmp(id, "chn_", 4) == 0 && strlen(id) == 16);
    KWT_STREQ(json_string_value(json_object_get(j, "name")), "Team room");
    KWT_STREQ(json_string_value(json_object_get(j, "type")), "signal");
    KWT_STREQ(json_string_value(json_object_get(j, "owner_id")), alice.user_id);
    int64_t created = parse_time(json_string_value(json_object_get(j, "created_at")));
    KWT_CHECK(created > kws_now_ms() - 60000 && created <= kws_now_ms());
    char channel[64];
    snprintf(channel, sizeof channel, "%s", id ? id : "");
    json_decref(j);
    kws_reply_free(&r);

    expect_error(&alice, "POST", "/api/channels", "{\"name\":\"x\",\"type\":\"voice\"}", 400,
                 "invalid_field");
    expect_error(&alice, "POST", "/api/channels", "{\"type\":\"signal\"}", 400, "invalid_field");
    expect_error(&alice, "POST", "/api/channels", "{\"name\":\"\",\"type\":\"signal\"}", 400,
                 "invalid_field");
    expect_error(&alice, "POST", "/api/channels",
                 "{\"name\":\"x\",\"type\":\"signal\",\"owner_id\":\"usr_x\"}", 400,
                 "unknown_field");
    expect_error(&alice, "POST", "/api/channels", "{\"name\":", 400, "invalid_json");
    expect_error(&alice, "POST", "/api/channels", NULL, 400, "invalid_json");

    char target[128], body[256];
    snprintf(target, sizeof target, "/api/channels/%s/members", channel);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", carol.user_id);
    KWT_CHECK(call(&alice, "POST", target, body, &r));
    expect_ok_true(&r);
    kws_reply_free(&r);
    KWT_CHECK(call(&alice, "POST", target, body, &r)); /* again: still fine */
    expect_ok_true(&r);
    kws_reply_free(&r);
    expect_error(&carol, "POST", target, body, 403, "forbidden"); /* members do not add */
    expect_error(&alice, "POST", target, "{\"user_id\":\"usr_0000000000000000\"}", 404,
                 "not_found");
    expect_error(&alice, "POST", target, "{\"user_id\":7}", 400, "invalid_field");
    expect_error(&alice, "POST", target, "{\"user_id\":\"x\",\"role\":\"y\"}", 400,
                 "unknown_field");
}

/* ---- meetings ---------------------------------------------------------------------------- */

static void meeting_create_read_patch(void)
{
    kws_reply r;
    const char *body = "{\"title\":\"Quarterly\",\"description\":\"Plans\\nand numbers\","
                       "\"start_time\":\"2030-03-01T09:00:00Z\",\"end_time\":"
                       "\"2030-03-01T10:30:00.250Z\",\"allow_external\":true}";
    KWT_CHECK(call(&alice, "POST", "/api/meetings", body, &r));
    KWT_EQ(r.status, 201);
    json_t *j = jbody(&r);
    KWT_EQ(json_object_size(j), 9);
    const char *id = json_string_value(json_object_get(j, "meeting_id"));
    KWT_CHECK(id != NULL && strncmp(id, "mtg_", 4) == 0 && strlen(id) == 16);
    KWT_STREQ(json_string_value(json_object_get(j, "title")), "Quarterly");
    KWT_STREQ(json_string_value(json_object_get(j, "description")), "Plans\nand numbers");
    KWT_STREQ(json_string_value(json_object_get(j, "start_time")), "2030-03-01T09:00:00Z");
    KWT_STREQ(json_string_value(json_object_get(j, "end_time")), "2030-03-01T10:30:00.250Z");
    KWT_CHECK(json_is_false(json_object_get(j, "is_instant_call")));
    KWT_CHECK(json_is_true(json_object_get(j, "allow_external")));
    KWT_STREQ(json_string_value(json_object_get(j, "created_by")), alice.user_id);
    KWT_CHECK(json_is_string(json_object_get(j, "created_at")));
    char meeting[64], target[128];
    snprintf(meeting, sizeof meeting, "%s", id ? id : "");
    json_decref(j);
    kws_reply_free(&r);
    snprintf(target, sizeof target, "/api/meetings/%s", meeting);

    /* Read back: the same object. */
    KWT_CHECK(call(&alice, "GET", target, NULL, &r));
    KWT_EQ(r.status, 200);
    j = jbody(&r);
    KWT_STREQ(json_string_value(json_object_get(j, "meeting_id")), meeting);
    KWT_STREQ(json_string_value(json_object_get(j, "end_time")), "2030-03-01T10:30:00.250Z");
    json_decref(j);
    kws_reply_free(&r);

    /* PATCH: any subset of the create fields; an offset time comes back in UTC. */
    KWT_CHECK(call(&alice, "PATCH", target,
                   "{\"title\":\"Quarterly review\",\"start_time\":\"2030-03-01T10:00:00+02:00\","
                   "\"allow_external\":false}",
                   &r));
    KWT_EQ(r.status, 200);
    j = jbody(&r);
    KWT_STREQ(json_string_value(json_object_get(j, "title")), "Quarterly review");
    KWT_STREQ(json_string_value(json_object_get(j, "start_time")), "2030-03-01T08:00:00Z");
    KWT_CHECK(json_is_false(json_object_get(j, "allow_external")));
    KWT_STREQ(json_string_value(json_object_get(j, "description")), "Plans\nand numbers");
    json_decref(j);
    kws_reply_free(&r);

    /* Failures change nothing. */
    expect_error(&alice, "PATCH", target, "{}", 400, "invalid_field");
    expect_error(&alice, "PATCH", target, NULL, 400, "invalid_json");
    expect_error(&alice, "PATCH", target, "{\"is_instant_call\":true}", 400, "unknown_field");
    expect_error(&alice, "PATCH", target,
                 "{\"title\":\"never\",\"end_time\":\"2030-03-01T08:00:00Z\"}", 400,
                 "invalid_field"); /* end == start */
    expect_error(&alice, "PATCH", target, "{\"title\":null}", 400, "invalid_field");
    expect_error(&alice, "PATCH", target, "{\"allow_external\":\"yes\"}", 400, "invalid_field");
    KWT_CHECK(call(&bob, "GET", target, NULL, &r)); /* bob is not in it */
    check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    KWT_CHECK(call(&alice, "GET", target, NULL, &r));
    j = jbody(&r);
    KWT_STREQ(json_string_value(json_object_get(j, "title")), "Quarterly review");
    KWT_STREQ(json_string_value(json_object_get(j, "end_time")), "2030-03-01T10:30:00.250Z");
    json_decref(j);
    kws_reply_free(&r);
}

static void meeting_create_failures(void)
{
    static const struct {
        const char *body, *error;
    } bad[] = {
        {"{\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":\"2030-01-01T11:00:00Z\"}",
         "invalid_field"},
        {"{\"title\":\"\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
         "\"2030-01-01T11:00:00Z\"}",
         "invalid_field"},
        {"{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
         "\"2030-01-01T10:00:00Z\"}",
         "invalid_field"},
        {"{\"title\":\"t\",\"start_time\":\"2030-01-01 10:00\",\"end_time\":"
         "\"2030-01-01T11:00:00Z\"}",
         "invalid_field"},
        {"{\"title\":\"t\",\"start_time\":1893492000000,\"end_time\":\"2030-01-01T11:00:00Z\"}",
         "invalid_field"},
        {"{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\"}", "invalid_field"},
        {"{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
         "\"2030-01-01T11:00:00Z\",\"allow_external\":1}",
         "invalid_field"},
        {"{\"title\":\"t\\u0007\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
         "\"2030-01-01T11:00:00Z\"}",
         "invalid_field"},
        {"{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
         "\"2030-01-01T11:00:00Z\",\"created_by\":\"usr_x\"}",
         "unknown_field"},
        {"{\"title\":\"t\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
         "\"2030-01-01T11:00:00Z\",\"private_key\":\"x\"}",
         "invalid_field"},
        {"[1]", "invalid_json"},
        {"{\"title\":\"t\",", "invalid_json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(&alice, "POST", "/api/meetings", bad[i].body, 400, bad[i].error);
    /* A title of 201 bytes is too long, 200 fine. */
    char body[1024], title[202];
    memset(title, 'x', 201);
    title[201] = '\0';
    snprintf(body, sizeof body,
             "{\"title\":\"%s\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
             "\"2030-01-01T11:00:00Z\"}",
             title);
    expect_error(&alice, "POST", "/api/meetings", body, 400, "invalid_field");
    title[200] = '\0';
    snprintf(body, sizeof body,
             "{\"title\":\"%s\",\"start_time\":\"2030-01-01T10:00:00Z\",\"end_time\":"
             "\"2030-01-01T11:00:00Z\"}",
             title);
    KWT_EQ(post_status(&alice, "/api/meetings", body), 201);
}

/* Lists erin's meetings with filter (NULL: none); 1 if id is in it. */
static int in_list(const member *m, const char *query, const char *id, int *count)
{
    char target[128];
    snprintf(target, sizeof target, "/api/meetings%s%s", query ? "?" : "", query ? query : "");
    kws_reply r;
    int found = 0;
    if (call(m, "GET", target, NULL, &r) && r.status == 200) {
        json_t *j = jbody(&r);
        json_t *arr = json_object_get(j, "meetings");
        if (count != NULL)
            *count = (int)json_array_size(arr);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            if (strcmp(json_string_value(json_object_get(v, "meeting_id")), id) == 0)
                found = 1;
        }
        json_decref(j);
    } else {
        printf("    list %s: %d %s\n", target, r.status, r.body ? r.body : "");
    }
    kws_reply_free(&r);
    return found;
}

static void meeting_list_filters(void)
{
    member frank;
    if (!KWT_CHECK(new_member(&srv, "frank", &frank)))
        return;
    char ended[64], ongoing[64], later[64], invited[64];
    /* Boundaries with a margin the test's own latency cannot cross: ended 1 s ago, ends in
     * 60 s (ongoing), starts in an hour; the exact end == now boundary is the unit test's. */
    KWT_CHECK(create_meeting(&frank, -HOUR_MS, -1000, 0, ended));
    KWT_CHECK(create_meeting(&frank, -HOUR_MS, 60000, 0, ongoing));
    KWT_CHECK(create_meeting(&frank, HOUR_MS, 2 * HOUR_MS, 0, later));
    KWT_CHECK(create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 0, invited));
    char target[512], body[256];
    snprintf(target, sizeof target, "/api/meetings/%s/participants", invited);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"member\"}", frank.user_id);
    KWT_EQ(post_status(&alice, target, body), 200);
    int n = -1;
    KWT_CHECK(in_list(&frank, NULL, ended, &n) && in_list(&frank, NULL, invited, NULL));
    KWT_EQ(n, 4); /* my (default): every meeting frank is in, any role */
    KWT_CHECK(in_list(&frank, "filter=my", later, &n));
    KWT_EQ(n, 4);
    KWT_CHECK(!in_list(&frank, "filter=upcoming", ended, &n));
    KWT_EQ(n, 3);
    KWT_CHECK(in_list(&frank, "filter=upcoming", ongoing, NULL));
    KWT_CHECK(in_list(&frank, "filter=upcoming", invited, NULL));
    KWT_CHECK(in_list(&frank, "filter=past", ended, &n));
    KWT_EQ(n, 1);
    KWT_CHECK(!in_list(&dave, "filter=my", ended, NULL)); /* never someone else's */
    expect_error(&frank, "GET", "/api/meetings?filter=all", NULL, 400, "invalid_field");
    expect_error(&frank, "GET", "/api/meetings?filter=", NULL, 400, "invalid_field");
    expect_error(&frank, "GET", "/api/meetings?filter=my&filter=past", NULL, 400, "invalid_field");
    expect_error(&frank, "GET", "/api/meetings?sort=asc", NULL, 400, "unknown_field");
    /* A participant removed from a meeting no longer lists it. */
    snprintf(target, sizeof target, "/api/meetings/%s/participants/%s", invited, frank.user_id);
    kws_reply r;
    KWT_CHECK(call(&frank, "DELETE", target, NULL, &r)); /* leaving oneself */
    expect_ok_true(&r);
    kws_reply_free(&r);
    KWT_CHECK(!in_list(&frank, NULL, invited, &n));
    KWT_EQ(n, 3);
}

static void instant_calls(void)
{
    kws_reply r;
    int64_t before = kws_now_ms();
    KWT_CHECK(call(&alice, "POST", "/api/calls/instant", NULL, &r));
    KWT_EQ(r.status, 201);
    json_t *j = jbody(&r);
    const char *id = json_string_value(json_object_get(j, "meeting_id"));
    KWT_CHECK(id != NULL && strncmp(id, "call_", 5) == 0 && strlen(id) == 17);
    KWT_CHECK(json_is_true(json_object_get(j, "is_instant_call")));
    KWT_CHECK(json_is_false(json_object_get(j, "allow_external")));
    KWT_CHECK(json_string_length(json_object_get(j, "title")) > 0);
    int64_t start = parse_time(json_string_value(json_object_get(j, "start_time")));
    int64_t end = parse_time(json_string_value(json_object_get(j, "end_time")));
    KWT_CHECK(start >= before - 1000 && start <= kws_now_ms() + 1000);
    KWT_EQ(end - start, 24 * HOUR_MS);
    json_decref(j);
    kws_reply_free(&r);
    KWT_CHECK(call(&alice, "POST", "/api/calls/instant",
                   "{\"title\":\"Quick\",\"allow_external\":true}", &r));
    KWT_EQ(r.status, 201);
    j = jbody(&r);
    KWT_STREQ(json_string_value(json_object_get(j, "title")), "Quick");
    KWT_CHECK(json_is_true(json_object_get(j, "allow_external")));
    json_decref(j);
    kws_reply_free(&r);
    expect_error(&alice, "POST", "/api/calls/instant", "{\"title\":\"\"}", 400, "invalid_field");
    expect_error(&alice, "POST", "/api/calls/instant", "{\"end_time\":\"2030-01-01T00:00:00Z\"}",
                 400, "unknown_field");
    expect_error(&alice, "POST", "/api/calls/instant", "nope", 400, "invalid_json");
}

/* ---- participants ------------------------------------------------------------------------ */

static void participants_routes(void)
{
    fixture f;
    if (!KWT_CHECK(fixture_make(&f)))
        return;
    char target[160], body[256];
    kws_reply r;
    snprintf(target, sizeof target, "/api/meetings/%s/participants", f.meeting);
    /* Adding: unknown user 404, bad role 400, the owner 409, missing field 400. */
    expect_error(&alice, "POST", target,
                 "{\"user_id\":\"usr_0000000000000000\",\"role\":\"member\"}", 404, "not_found");
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"owner\"}", dave.user_id);
    expect_error(&alice, "POST", target, body, 400, "invalid_field");
    snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", dave.user_id);
    expect_error(&alice, "POST", target, body, 400, "invalid_field");
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"manager\"}", alice.user_id);
    expect_error(&bob, "POST", target, body, 409, "conflict");
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"member\",\"x\":1}", dave.user_id);
    expect_error(&alice, "POST", target, body, 400, "unknown_field");
    /* A manager adds dave; dave can then read the meeting. */
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"member\"}", dave.user_id);
    KWT_CHECK(call(&bob, "POST", target, body, &r));
    expect_ok_true(&r);
    kws_reply_free(&r);
    char meeting_target[128];
    snprintf(meeting_target, sizeof meeting_target, "/api/meetings/%s", f.meeting);
    KWT_CHECK(call(&dave, "GET", meeting_target, NULL, &r));
    KWT_EQ(r.status, 200);
    kws_reply_free(&r);

    /* The list of who is present: nobody is (presence comes with Socket.IO). */
    KWT_CHECK(call(&carol, "GET", target, NULL, &r));
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.body, "{\"participants\":[]}");
    kws_reply_free(&r);
    char q[512];
    snprintf(q, sizeof q, "%s?status=left", target);
    expect_error(&carol, "GET", q, NULL, 400, "invalid_field");
    snprintf(q, sizeof q, "%s?exclude_external=maybe", target);
    expect_error(&carol, "GET", q, NULL, 400, "invalid_field");
    snprintf(q, sizeof q, "%s?role=owner", target);
    expect_error(&carol, "GET", q, NULL, 400, "unknown_field");
    snprintf(q, sizeof q, "%s?status=joined&exclude_external=false", target);
    KWT_CHECK(call(&carol, "GET", q, NULL, &r));
    KWT_EQ(r.status, 200);
    kws_reply_free(&r);

    /* Removing: the owner never (409, whoever asks), a non-participant 404, a member only
     * themself (403 for someone else), then they are out (403). */
    snprintf(q, sizeof q, "%s/%s", target, alice.user_id);
    expect_error(&alice, "DELETE", q, NULL, 409, "conflict");
    expect_error(&bob, "DELETE", q, NULL, 409, "conflict");
    expect_error(&carol, "DELETE", q, NULL, 403, "forbidden");
    snprintf(q, sizeof q, "%s/usr_0000000000000000", target);
    expect_error(&alice, "DELETE", q, NULL, 404, "not_found");
    snprintf(q, sizeof q, "%s/%s", target, dave.user_id);
    expect_error(&carol, "DELETE", q, NULL, 403, "forbidden");
    KWT_CHECK(call(&dave, "DELETE", q, NULL, &r));
    expect_ok_true(&r);
    kws_reply_free(&r);
    expect_error(&dave, "DELETE", q, NULL, 403, "forbidden"); /* no longer in it */
    expect_error(&alice, "DELETE", q, NULL, 404, "not_found");
    KWT_CHECK(call(&dave, "GET", meeting_target, NULL, &r));
    check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    /* A manager demoted to member loses the manager's rights. */
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"member\"}", bob.user_id);
    KWT_CHECK(call(&alice, "POST", target, body, &r));
    expect_ok_true(&r);
    kws_reply_free(&r);
    snprintf(q, sizeof q, "/api/meetings/%s/invitations", f.meeting);
    expect_error(&bob, "GET", q, NULL, 403, "forbidden");
}

/* ---- invitations ------------------------------------------------------------------------- */

static void join_info_status(const char *token, int status, const char *error)
{
    char target[128];
    snprintf(target, sizeof target, "/api/meetings/external/join/%s", token);
    kws_reply r;
    KWT_CHECK(call(NULL, "GET", target, NULL, &r));
    if (error != NULL)
        check_error(&r, status, error);
    else if (!KWT_CHECK(r.status == status))
        printf("    join info: %d %s\n", r.status, r.body ? r.body : "");
    kws_reply_free(&r);
}

static void invitations_routes(void)
{
    char meeting[64], closed[64], target[128];
    KWT_CHECK(create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 1, meeting));
    KWT_CHECK(create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 0, closed));
    KWT_CHECK(add_participant(meeting, &bob, "manager"));
    snprintf(target, sizeof target, "/api/meetings/%s/invitations", meeting);
    kws_reply r;
    /* An empty body is fine: no label, no expiry, no limit. */
    KWT_CHECK(call(&alice, "POST", target, NULL, &r));
    KWT_EQ(r.status, 201);
    json_t *j = jbody(&r);
    KWT_EQ(json_object_size(j), 4);
    const char *token = json_string_value(json_object_get(j, "token"));
    char plain[40] = "", url[160];
    if (KWT_CHECK(token != NULL && strlen(token) == 32 &&
                  strspn(token, "0123456789abcdef") == 32)) {
        snprintf(plain, sizeof plain, "%s", token);
        snprintf(tokens_seen[n_tokens++], 40, "%s", token);
    }
    snprintf(url, sizeof url, PUBLIC_URL "/join/meeting/%s", plain);
    KWT_STREQ(json_string_value(json_object_get(j, "url")), url);
    KWT_CHECK(json_is_null(json_object_get(j, "expires_at")));
    KWT_CHECK(json_is_null(json_object_get(j, "max_uses")));
    json_decref(j);
    kws_reply_free(&r);

    /* With everything; a manager may create. */
    char expires[64], body[256];
    int64_t exp_ms = (kws_now_ms() / 1000 + 3600) * 1000;
    fmt_time(exp_ms, expires);
    snprintf(body, sizeof body, "{\"label\":\"partners\",\"expires_at\":\"%s\",\"max_uses\":2}",
             expires);
    KWT_CHECK(call(&bob, "POST", target, body, &r));
    KWT_EQ(r.status, 201);
    j = jbody(&r);
    char limited[40] = "";
    const char *t2 = json_string_value(json_object_get(j, "token"));
    if (t2 != NULL) {
        snprintf(limited, sizeof limited, "%s", t2);
        snprintf(tokens_seen[n_tokens++], 40, "%s", t2);
    }
    KWT_EQ(parse_time(json_string_value(json_object_get(j, "expires_at"))), exp_ms);
    KWT_EQ(json_integer_value(json_object_get(j, "max_uses")), 2);
    json_decref(j);
    kws_reply_free(&r);

    /* Failures. */
    char past[64];
    fmt_time(kws_now_ms() - 1000, past);
    snprintf(body, sizeof body, "{\"expires_at\":\"%s\"}", past);
    expect_error(&alice, "POST", target, body, 400, "invalid_field");
    expect_error(&alice, "POST", target, "{\"max_uses\":0}", 400, "invalid_field");
    expect_error(&alice, "POST", target, "{\"max_uses\":1000001}", 400, "invalid_field");
    expect_error(&alice, "POST", target, "{\"max_uses\":\"2\"}", 400, "invalid_field");
    expect_error(&alice, "POST", target, "{\"expires_at\":\"tomorrow\"}", 400, "invalid_field");
    expect_error(&alice, "POST", target, "{\"token\":\"00000000000000000000000000000000\"}", 400,
                 "unknown_field");
    char label[130];
    memset(label, 'l', 101);
    label[101] = '\0';
    snprintf(body, sizeof body, "{\"label\":\"%s\"}", label);
    expect_error(&alice, "POST", target, body, 400, "invalid_field");
    char closed_target[128];
    snprintf(closed_target, sizeof closed_target, "/api/meetings/%s/invitations", closed);
    expect_error(&alice, "POST", closed_target, "{}", 409, "conflict");

    /* The list. */
    KWT_CHECK(call(&alice, "GET", target, NULL, &r));
    KWT_EQ(r.status, 200);
    j = jbody(&r);
    json_t *arr = json_object_get(j, "invitations");
    KWT_EQ(json_array_size(arr), 2);
    json_t *first = json_array_get(arr, 0), *second = json_array_get(arr, 1);
    KWT_EQ(json_object_size(first), 7);
    KWT_STREQ(json_string_value(json_object_get(first, "token")), plain);
    KWT_STREQ(json_string_value(json_object_get(first, "label")), "");
    KWT_CHECK(json_is_string(json_object_get(first, "created_at")));
    KWT_CHECK(json_is_null(json_object_get(first, "expires_at")));
    KWT_CHECK(json_is_null(json_object_get(first, "max_uses")));
    KWT_EQ(json_integer_value(json_object_get(first, "uses")), 0);
    KWT_CHECK(json_is_false(json_object_get(first, "revoked")));
    KWT_STREQ(json_string_value(json_object_get(second, "label")), "partners");
    KWT_EQ(json_integer_value(json_object_get(second, "max_uses")), 2);
    json_decref(j);
    kws_reply_free(&r);

    /* Join info while valid. */
    char info_target[128];
    snprintf(info_target, sizeof info_target, "/api/meetings/external/join/%s", plain);
    KWT_CHECK(call(NULL, "GET", info_target, NULL, &r));
    KWT_EQ(r.status, 200);
    j = jbody(&r);
    KWT_EQ(json_object_size(j), 6);
    KWT_STREQ(json_string_value(json_object_get(j, "meeting_id")), meeting);
    KWT_STREQ(json_string_value(json_object_get(j, "title")), "Sync");
    KWT_STREQ(json_string_value(json_object_get(j, "description")), "");
    KWT_CHECK(parse_time(json_string_value(json_object_get(j, "start_time"))) > 0);
    KWT_CHECK(parse_time(json_string_value(json_object_get(j, "end_time"))) > 0);
    KWT_CHECK(json_is_false(json_object_get(j, "has_active_participants")));
    json_decref(j);
    kws_reply_free(&r);
    join_info_status("00000000000000000000000000000000", 404, "unknown_invitation");
    join_info_status("not-a-token", 404, "unknown_invitation");

    /* max_uses: registration counts uses (the guest routes); here uses is raised directly
     * on the database file the running server uses. 1 of 2: still fine; 2 of 2: 410. */
    char sql[256], out[64];
    snprintf(sql, sizeof sql, "UPDATE invitations SET uses = 1 WHERE token = '%s'", limited);
    KWT_CHECK(sqlite_cli(sql, out, sizeof out));
    join_info_status(limited, 200, NULL);
    snprintf(sql, sizeof sql, "UPDATE invitations SET uses = 2 WHERE token = '%s'", limited);
    KWT_CHECK(sqlite_cli(sql, out, sizeof out));
    join_info_status(limited, 410, "invitation_exhausted");

    /* Revoke: 200, then 410 revoked; unknown or malformed token 404; the list says so. */
    char revoke[200];
    snprintf(revoke, sizeof revoke, "%s/%s", target, plain);
    expect_error(&carol, "DELETE", revoke, NULL, 403, "forbidden");
    KWT_CHECK(call(&bob, "DELETE", revoke, NULL, &r));
    expect_ok_true(&r);
    kws_reply_free(&r);
    KWT_CHECK(call(&alice, "DELETE", revoke, NULL, &r)); /* again: still fine */
    expect_ok_true(&r);
    kws_reply_free(&r);
    join_info_status(plain, 410, "invitation_revoked");
    snprintf(revoke, sizeof revoke, "%s/00000000000000000000000000000000", target);
    expect_error(&alice, "DELETE", revoke, NULL, 404, "not_found");
    snprintf(revoke, sizeof revoke, "%s/xyz", target);
    expect_error(&alice, "DELETE", revoke, NULL, 404, "not_found");
    snprintf(revoke, sizeof revoke, "%s/%s", closed_target, limited); /* another meeting's */
    expect_error(&alice, "DELETE", revoke, NULL, 404, "not_found");
    KWT_CHECK(call(&alice, "GET", target, NULL, &r));
    j = jbody(&r);
    KWT_CHECK(json_is_true(
        json_object_get(json_array_get(json_object_get(j, "invitations"), 0), "revoked")));
    json_decref(j);
    kws_reply_free(&r);

    /* Switching external guests off stops every link: 403 forbidden. */
    char open_token[40];
    KWT_CHECK(create_invitation(&alice, meeting, "{}", open_token));
    char mt[128];
    snprintf(mt, sizeof mt, "/api/meetings/%s", meeting);
    KWT_CHECK(call(&alice, "PATCH", mt, "{\"allow_external\":false}", &r));
    KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    join_info_status(open_token, 403, "forbidden");
}

static void invitation_expiry_boundary(void)
{
    char meeting[64], token[40], past_token[40], body[128], exp[64];
    KWT_CHECK(create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 1, meeting));
    /* expires_at 1.5 s ahead (milliseconds are kept): valid now, expired after. */
    int64_t expires = kws_now_ms() + 1500;
    fmt_time(expires, exp);
    snprintf(body, sizeof body, "{\"expires_at\":\"%s\"}", exp);
    KWT_CHECK(create_invitation(&alice, meeting, body, token));
    join_info_status(token, 200, NULL);
    while (kws_now_ms() < expires + 50)
        kws_sleep_ms(50);
    join_info_status(token, 410, "invitation_expired");
    /* An expiry already past is refused at creation. */
    fmt_time(kws_now_ms() - 1, exp);
    snprintf(body, sizeof body, "{\"expires_at\":\"%s\"}", exp);
    KWT_CHECK(!create_invitation(&alice, meeting, body, past_token));
}

static void inv_9_delete_cascades(void)
{
    char meeting[64], token[40], target[128], sql[256], out[64];
    KWT_CHECK(create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 1, meeting));
    KWT_CHECK(add_participant(meeting, &carol, "member"));
    KWT_CHECK(create_invitation(&alice, meeting, "{}", token));
    KWT_CHECK(create_invitation(&alice, meeting, "{\"max_uses\":5}", NULL));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM invitations WHERE meeting_id = '%s'", meeting);
    KWT_CHECK(sqlite_cli(sql, out, sizeof out));
    KWT_STREQ(out, "2");
    join_info_status(token, 200, NULL);
    snprintf(target, sizeof target, "/api/meetings/%s", meeting);
    kws_reply r;
    KWT_CHECK(call(&alice, "DELETE", target, NULL, &r));
    expect_ok_true(&r);
    kws_reply_free(&r);
    expect_error(&alice, "GET", target, NULL, 404, "not_found");
    expect_error(&alice, "DELETE", target, NULL, 404, "not_found");
    join_info_status(token, 404, "unknown_invitation");
    KWT_CHECK(sqlite_cli(sql, out, sizeof out));
    KWT_STREQ(out, "0");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM meeting_participants WHERE meeting_id = '%s'",
             meeting);
    KWT_CHECK(sqlite_cli(sql, out, sizeof out));
    KWT_STREQ(out, "0");
    KWT_CHECK(!in_list(&carol, NULL, meeting, NULL));
}

/* ---- the invitation page --------------------------------------------------------------- */

static void join_page_and_csp(void)
{
    /* LIVEKIT_URL's origin under both of its schemes (signalling and /rtc/validate). */
    static const char csp[] = CSP_PREFIX " " LIVEKIT_URL " https://lk.example.com" CSP_SUFFIX;
    static const char csp_bare[] = CSP_PREFIX CSP_SUFFIX;
    char meeting[64], token[40], target[128], value[512];
    KWT_CHECK(create_meeting(&alice, HOUR_MS, 2 * HOUR_MS, 1, meeting));
    KWT_CHECK(create_invitation(&alice, meeting, "{}", token));
    kws_reply r;
    snprintf(target, sizeof target, "/join/meeting/%s", token);
    KWT_CHECK(call(NULL, "GET", target, NULL, &r));
    KWT_EQ(r.status, 200);
    KWT_CHECK(kws_header(&r, "content-type", value, sizeof value) &&
              strncmp(value, "text/html", 9) == 0);
    KWT_CHECK(kws_header(&r, "content-security-policy", value, sizeof value));
    KWT_STREQ(value, csp);
    KWT_CHECK(kws_header(&r, "referrer-policy", value, sizeof value));
    KWT_STREQ(value, "no-referrer");
    KWT_CHECK(r.body != NULL && strstr(r.body, "not built") != NULL);
    KWT_CHECK(r.body != NULL && strstr(r.body, token) == NULL); /* the page echoes nothing */
    kws_reply_free(&r);
    /* A well-formed token is served the page whether or not it exists (the join info
     * tells the app); a malformed one gets the 400 page, also with the policy. */
    KWT_CHECK(call(NULL, "GET", "/join/meeting/0123456789abcdef0123456789abcdef", NULL, &r));
    KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    static const char *const bad[] = {
        "0123456789abcdef0123456789abcde",   /* 31 */
        "0123456789abcdef0123456789abcdef0", /* 33 */
        "0123456789ABCDEF0123456789ABCDEF",  /* upper case */
        "0123456789abcdef0123456789abcdeg",  /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(target, sizeof target, "/join/meeting/%s", bad[i]);
        KWT_CHECK(call(NULL, "GET", target, NULL, &r));
        KWT_EQ(r.status, 400);
        KWT_CHECK(kws_header(&r, "content-type", value, sizeof value) &&
                  strncmp(value, "text/html", 9) == 0);
        KWT_CHECK(kws_header(&r, "content-security-policy", value, sizeof value));
        KWT_STREQ(value, csp);
        KWT_CHECK(r.body != NULL && strstr(r.body, "Invalid invitation link") != NULL);
        kws_reply_free(&r);
    }
    /* Without LIVEKIT_URL, connect-src is 'self' alone. */
    KWT_CHECK(
        send_to(&bare, NULL, "GET", "/join/meeting/0123456789abcdef0123456789abcdef", NULL, &r));
    KWT_EQ(r.status, 200);
    KWT_CHECK(kws_header(&r, "content-security-policy", value, sizeof value));
    KWT_STREQ(value, csp_bare);
    kws_reply_free(&r);
    /* With a web build in the working directory, its index.html is served as is. */
    char web[PATH_MAX + 32], index_path[PATH_MAX + 64];
    static const char app[] =
        "<!DOCTYPE html><title>guest app</title><script src=\"main.js\"></script>\n";
    snprintf(web, sizeof web, "%s/build", srv.dir);
    mkdir(web, 0700);
    snprintf(web, sizeof web, "%s/build/web", srv.dir);
    mkdir(web, 0700);
    snprintf(index_path, sizeof index_path, "%s/index.html", web);
    FILE *f = fopen(index_path, "wb");
    if (KWT_CHECK(f != NULL)) {
        fputs(app, f);
        fclose(f);
        snprintf(target, sizeof target, "/join/meeting/%s", token);
        KWT_CHECK(call(NULL, "GET", target, NULL, &r));
        KWT_EQ(r.status, 200);
        KWT_STREQ(r.body, app);
        KWT_CHECK(kws_header(&r, "content-security-policy", value, sizeof value));
        KWT_STREQ(value, csp);
        kws_reply_free(&r);
        unlink(index_path);
    }
    /* HEAD answers like GET without a body. */
    snprintf(target, sizeof target, "/join/meeting/%s", token);
    KWT_CHECK(call(NULL, "HEAD", target, NULL, &r));
    KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    KWT_CHECK(call(NULL, "POST", target, "{}", &r));
    KWT_EQ(r.status, 405);
    kws_reply_free(&r);
}

/* ---- media tokens ------------------------------------------------------------------------ */

static void livekit_channel_token(void)
{
    fixture f;
    if (!KWT_CHECK(fixture_make(&f)))
        return;
    char body[128], room[96];
    snprintf(body, sizeof body, "{\"channelId\":\"%s\"}", f.channel);
    snprintf(room, sizeof room, "channel-%s", f.channel);
    const member *callers[] = {&alice, &carol};
    for (size_t i = 0; i < 2; i++) {
        kws_reply r;
        KWT_CHECK(call(callers[i], "POST", "/api/livekit/token", body, &r));
        KWT_EQ(r.status, 200);
        json_t *j = jbody(&r);
        KWT_EQ(json_object_size(j), 4);
        KWT_STREQ(json_string_value(json_object_get(j, "url")), LIVEKIT_URL);
        KWT_STREQ(json_string_value(json_object_get(j, "roomName")), room);
        KWT_STREQ(json_string_value(json_object_get(j, "identity")), callers[i]->user_id);
        json_t *p = jwt_payload(json_string_value(json_object_get(j, "token")));
        KWT_STREQ(json_string_value(json_object_get(p, "sub")), callers[i]->user_id);
        KWT_STREQ(json_string_value(json_object_get(p, "iss")), "APIkeywave");
        json_t *video = json_object_get(p, "video");
        KWT_STREQ(json_string_value(json_object_get(video, "room")), room);
        /* roomAdmin for the channel's owner only */
        KWT_EQ(json_is_true(json_object_get(video, "roomAdmin")), i == 0);
        json_decref(p);
        json_decref(j);
        kws_reply_free(&r);
    }
    expect_error(&dave, "POST", "/api/livekit/token", body, 403, "forbidden");
    expect_error(&alice, "POST", "/api/livekit/token", "{}", 400, "invalid_field");
    expect_error(&alice, "POST", "/api/livekit/token", "{\"channelId\":\"x\",\"room\":\"y\"}", 400,
                 "unknown_field");
    kws_reply r;
    KWT_CHECK(send_to(&bare, &lone, "POST", "/api/livekit/token", body, &r));
    check_error(&r, 503, "not_configured");
    kws_reply_free(&r);
}

static void livekit_meeting_token(void)
{
    fixture f;
    if (!KWT_CHECK(fixture_make(&f)))
        return;
    char body[128], identity[200];
    snprintf(body, sizeof body, "{\"meetingId\":\"%s\"}", f.meeting);
    const member *callers[] = {&alice, &bob, &carol};
    for (size_t i = 0; i < 3; i++) {
        kws_reply r;
        KWT_CHECK(call(callers[i], "POST", "/api/livekit/meeting-token", body, &r));
        KWT_EQ(r.status, 200);
        json_t *j = jbody(&r);
        snprintf(identity, sizeof identity, "%s:%s", callers[i]->user_id, callers[i]->device_id);
        KWT_STREQ(json_string_value(json_object_get(j, "identity")), identity);
        KWT_STREQ(json_string_value(json_object_get(j, "roomName")), f.meeting);
        KWT_STREQ(json_string_value(json_object_get(j, "url")), LIVEKIT_URL);
        json_t *p = jwt_payload(json_string_value(json_object_get(j, "token")));
        KWT_STREQ(json_string_value(json_object_get(p, "sub")), identity);
        json_t *video = json_object_get(p, "video");
        KWT_STREQ(json_string_value(json_object_get(video, "room")), f.meeting);
        KWT_CHECK(json_is_true(json_object_get(video, "canPublishData")));
        KWT_EQ(json_is_true(json_object_get(video, "roomAdmin")), i == 0); /* owner only */
        json_t *meta = json_loads(json_string_value(json_object_get(p, "metadata")), 0, NULL);
        KWT_STREQ(json_string_value(json_object_get(meta, "meeting_id")), f.meeting);
        KWT_CHECK(json_is_false(json_object_get(meta, "is_guest")));
        json_decref(meta);
        json_decref(p);
        json_decref(j);
        kws_reply_free(&r);
    }
    expect_error(&alice, "POST", "/api/livekit/meeting-token", "{\"meetingId\":3}", 400,
                 "invalid_field");
    expect_error(&alice, "POST", "/api/livekit/meeting-token", NULL, 400, "invalid_json");
    kws_reply r;
    KWT_CHECK(send_to(&bare, &lone, "POST", "/api/livekit/meeting-token", body, &r));
    check_error(&r, 503, "not_configured");
    kws_reply_free(&r);
}

static void jitsi_join(void)
{
    fixture f;
    if (!KWT_CHECK(fixture_make(&f)))
        return;
    char target[128], url[160];
    snprintf(target, sizeof target, "/api/v1/live/streams/%s/join", f.meeting);
    snprintf(url, sizeof url, JITSI_URL "/%s", f.meeting); /* mtg_ + hex: already clean */
    const member *callers[] = {&alice, &bob, &carol};
    for (size_t i = 0; i < 3; i++) {
        kws_reply r;
        KWT_CHECK(call(callers[i], "POST", target,
                       i == 2 ? "{\"name\":\"Carol C\",\"email\":\"carol@example.com\","
                                "\"audio\":true,\"video\":false}"
                              : NULL,
                       &r));
        if (!KWT_CHECK(r.status == 200))
            printf("    %d %s\n", r.status, r.body ? r.body : "");
        json_t *j = jbody(&r);
        KWT_EQ(json_object_size(j), 3);
        KWT_STREQ(json_string_value(json_object_get(j, "room_name")), f.meeting);
        KWT_STREQ(json_string_value(json_object_get(j, "url")), url);
        json_t *p = jwt_payload(json_string_value(json_object_get(j, "token")));
        KWT_STREQ(json_string_value(json_object_get(p, "room")), f.meeting);
        KWT_STREQ(json_string_value(json_object_get(p, "sub")), "meet.example.com");
        KWT_EQ(json_is_true(json_object_get(p, "moderator")), i < 2); /* owner, manager */
        json_t *user = json_object_get(json_object_get(p, "context"), "user");
        KWT_STREQ(json_string_value(json_object_get(user, "id")), callers[i]->user_id);
        KWT_STREQ(json_string_value(json_object_get(user, "name")), i == 0   ? "alice"
                                                                    : i == 1 ? "bob"
                                                                             : "Carol C");
        if (i == 2) {
            KWT_STREQ(json_string_value(json_object_get(user, "email")), "carol@example.com");
            json_t *features = json_object_get(json_object_get(p, "context"), "features");
            KWT_CHECK(json_is_false(json_object_get(features, "video")));
            KWT_CHECK(json_is_true(json_object_get(features, "audio")));
        }
        json_decref(p);
        json_decref(j);
        kws_reply_free(&r);
    }
    /* The body cannot name who joins or claim to be the host (seed 004's fields). */
    expect_error(&carol, "POST", target, "{\"identity\":\"someone\"}", 400, "unknown_field");
    expect_error(&carol, "POST", target, "{\"is_host\":true}", 400, "unknown_field");
    expect_error(&carol, "POST", target, "{\"audio\":\"on\"}", 400, "invalid_field");
    expect_error(&carol, "POST", target, "{\"email\":\"nope\"}", 400, "invalid_field");
    expect_error(&carol, "POST", target, "{\"name\":\"\"}", 400, "invalid_field");
    kws_reply r;
    KWT_CHECK(send_to(&bare, &lone, "POST", target, "{}", &r));
    check_error(&r, 503, "not_configured");
    kws_reply_free(&r);
}

/* ---- guests on these routes ----------------------------------------------------------- */

typedef struct guest {
    char session_id[64], secret[64];
} guest;

/* Registers a fresh guest identity with token (through the guest routes). */
static int register_guest(const char *token, const char *name, guest *g)
{
    kw_store *store = NULL;
    kw_identity *id = NULL;
    kw_identity_config cfg = {KW_ROLE_GUEST, NULL, NULL, NULL, 0};
    char *doc = NULL, *text = NULL;
    int ok = 0;
    if (kw_store_mem_new(&store) != KW_OK)
        return 0;
    cfg.store = store;
    if (kw_identity_open(&cfg, &id, NULL) == KW_OK &&
        kw_keys_setup(id, kws_now_ms(), NULL, NULL, NULL, NULL) == KW_OK &&
        kw_keys_export_json(id, &doc, NULL) == KW_OK) {
        json_t *j = json_loads(doc, 0, NULL);
        json_object_set_new(j, "invitation_token", json_string(token));
        json_object_set_new(j, "display_name", json_string(name));
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    kws_reply r;
    if (text != NULL && kws_request(srv.port, "POST", "/api/meetings/external/register", NULL, text,
                                    strlen(text), &r)) {
        json_t *j = jbody(&r);
        const char *sid = json_string_value(json_object_get(j, "session_id"));
        const char *sec = json_string_value(json_object_get(j, "guest_secret"));
        if (r.status == 201 && sid != NULL && sec != NULL) {
            snprintf(g->session_id, sizeof g->session_id, "%s", sid);
            snprintf(g->secret, sizeof g->secret, "%s", sec);
            ok = 1;
        } else {
            printf("    register: %d %s\n", r.status, r.body ? r.body : "");
        }
        json_decref(j);
        kws_reply_free(&r);
    }
    free(text);
    free(doc);
    kw_identity_free(id);
    kw_store_free(store);
    return ok;
}

static int guest_get(const guest *g, const char *target, kws_reply *r)
{
    char headers[256];
    snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", g->secret);
    return kws_request(srv.port, "GET", target, headers, NULL, 0, r);
}

/* The participants list is open to the meeting's own guests (waiting or admitted) and
 * lists admitted guests unless exclude_external=true; another meeting's guest is 403;
 * every member-only route of these files refuses a guest's bearer with 401. */
static void participants_seen_by_guests(void)
{
    fixture f, other;
    if (!KWT_CHECK(fixture_make(&f) && fixture_make(&other)))
        return;
    guest mine, stranger;
    if (!KWT_CHECK(register_guest(f.token, "Visitor", &mine) &&
                   register_guest(other.token, "Stranger", &stranger)))
        return;
    char target[160], q[256];
    snprintf(target, sizeof target, "/api/meetings/%s/participants", f.meeting);
    kws_reply r;
    KWT_CHECK(guest_get(&mine, target, &r)); /* waiting: may look, is not listed */
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.body, "{\"participants\":[]}");
    kws_reply_free(&r);
    KWT_CHECK(guest_get(&stranger, target, &r));
    check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    guest bogus = {"", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    KWT_CHECK(guest_get(&bogus, target, &r));
    KWT_EQ(r.status, 401);
    kws_reply_free(&r);
    /* Admitted (by a member, through the guest routes): now listed. */
    snprintf(q, sizeof q, "/api/meetings/%s/external/%s/admit", f.meeting, mine.session_id);
    KWT_CHECK(call(&carol, "POST", q, NULL, &r));
    KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    const member *viewers[] = {&carol, NULL};
    for (size_t i = 0; i < 2; i++) {
        int ok =
            viewers[i] ? call(viewers[i], "GET", target, NULL, &r) : guest_get(&mine, target, &r);
        KWT_CHECK(ok);
        KWT_EQ(r.status, 200);
        json_t *j = jbody(&r);
        json_t *arr = json_object_get(j, "participants");
        KWT_EQ(json_array_size(arr), 1);
        json_t *g = json_array_get(arr, 0);
        KWT_EQ(json_object_size(g), 3);
        KWT_STREQ(json_string_value(json_object_get(g, "session_id")), mine.session_id);
        KWT_STREQ(json_string_value(json_object_get(g, "display_name")), "Visitor");
        int64_t at = parse_time(json_string_value(json_object_get(g, "admitted_at")));
        KWT_CHECK(at > kws_now_ms() - 60000 && at <= kws_now_ms());
        json_decref(j);
        kws_reply_free(&r);
    }
    snprintf(q, sizeof q, "%s?status=joined&exclude_external=true", target);
    KWT_CHECK(call(&carol, "GET", q, NULL, &r));
    KWT_STREQ(r.body, "{\"participants\":[]}");
    kws_reply_free(&r);
    /* A declined guest is turned away from the list too. */
    guest refused;
    if (KWT_CHECK(register_guest(f.token, "Refused", &refused))) {
        snprintf(q, sizeof q, "/api/meetings/%s/external/%s/decline", f.meeting,
                 refused.session_id);
        KWT_CHECK(call(&carol, "POST", q, "{}", &r));
        KWT_EQ(r.status, 200);
        kws_reply_free(&r);
        KWT_CHECK(guest_get(&refused, target, &r));
        check_error(&r, 403, "forbidden");
        kws_reply_free(&r);
    }
    /* Member-only routes: a guest's bearer is no member signature. */
    static const char *const member_only[] = {"/api/meetings", "/api/meetings/{M}",
                                              "/api/meetings/{M}/invitations"};
    for (size_t i = 0; i < sizeof member_only / sizeof member_only[0]; i++) {
        subst(member_only[i], &f, q, sizeof q);
        KWT_CHECK(guest_get(&mine, q, &r));
        KWT_EQ(r.status, 401);
        kws_reply_free(&r);
    }
}

/* ---- logs --------------------------------------------------------------------------------- */

static void inv_8_no_invitation_token_in_the_log(void)
{
    char *log = kws_read_file(srv.log);
    if (!KWT_CHECK(log != NULL))
        return;
    KWT_CHECK(n_tokens > 5);
    for (int i = 0; i < n_tokens; i++)
        if (!KWT_CHECK(strstr(log, tokens_seen[i]) == NULL))
            printf("    token %d is in the log\n", i);
    KWT_CHECK(strstr(log, "/join/meeting/:token") != NULL); /* the path is, by name */
    free(log);
}

/* Both servers stop cleanly on SIGTERM (under the sanitizers: no leak, no error). */
static void servers_stop_cleanly(void)
{
    kws_server *both[] = {&srv, &bare};
    for (size_t i = 0; i < 2; i++) {
        int st = kws_stop(both[i], SIGTERM);
        if (!KWT_CHECK(st == 0)) {
            char *log = kws_read_file(both[i]->log);
            size_t n = log ? strlen(log) : 0;
            printf("    exit %d; log tail: %s\n", st, log ? log + (n > 3000 ? n - 3000 : 0) : "");
            free(log);
        }
    }
}

int main(void)
{
    if (!kws_init("meetings")) {
        kwt_cases_failed++;
        return kwt_finish();
    }
    KWT_RUN(servers_start_and_members_enroll);
    if (kwt_cases_failed == 0) {
        KWT_RUN(authorization_matrix);
        KWT_RUN(unknown_meeting_is_404_for_everyone);
        KWT_RUN(channels_routes);
        KWT_RUN(meeting_create_read_patch);
        KWT_RUN(meeting_create_failures);
        KWT_RUN(meeting_list_filters);
        KWT_RUN(instant_calls);
        KWT_RUN(participants_routes);
        KWT_RUN(invitations_routes);
        KWT_RUN(invitation_expiry_boundary);
        KWT_RUN(inv_9_delete_cascades);
        KWT_RUN(join_page_and_csp);
        KWT_RUN(livekit_channel_token);
        KWT_RUN(livekit_meeting_token);
        KWT_RUN(jitsi_join);
        KWT_RUN(participants_seen_by_guests);
        KWT_RUN(inv_8_no_invitation_token_in_the_log);
    }
    KWT_RUN(servers_stop_cleanly);
    return kws_finish();
}
