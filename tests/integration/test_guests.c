/*
 * test_guests.c — the guest routes end to end against the real keywaved: registration
 * (201 shape, every failure token, replacing the identity's own waiting session),
 * guest pre-keys, leaving, request-admission (no host present over HTTP: presence needs
 * the realtime layer, whose happy path test_srv_guests covers), the waiting list,
 * admit/decline with the 409 naming who won, bundles both ways, the guest LiveKit token,
 * an authorization matrix (every guest route x {anonymous, member outside the meeting,
 * member, owner, guest of another meeting, the guest itself before and after admission}
 * from one table), concurrency (20 simultaneous admits: one wins; 60 simultaneous bundle
 * fetches of 30 pre-keys: each pre-key once), INV-9 and INV-10 through the running
 * server, no secret in the log (INV-8), and crash safety (kill -9 during a stream of
 * registrations: every 201 survives and PRAGMA integrity_check says ok).
 *
 * Members are made with `keywaved user add` and enrolled over HTTP; meetings, participants
 * and invitations through the meeting routes. The sqlite3 CLI is used only to look at the
 * database and to move a session's expiry into the past. KEYWAVED names the binary.
 */
#include <jansson.h>

#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/identity.h"
#include "keywave/request_sign.h"
#include "keywave/store.h"
#include "kwserver.h"

#define N_MEMBERS 20 /* devices of meeting A that admit and fetch at once */

static kws_server srv;
static const char *const server_env[] = {
    "LIVEKIT_URL=wss://livekit.example.test",
    "LIVEKIT_API_KEY=APIguesttest",
    "LIVEKIT_API_SECRET=guest-test-livekit-secret-0123456789abcdef",
    NULL,
};

/* ---- members ------------------------------------------------------------------------ */

typedef struct member {
    char user_id[130], device_id[16], client_id[130], secret[64];
} member;

/* members[0] owns meeting A; 1..19 are its members; outsider is in no meeting; owner_b owns B. */
static member members[N_MEMBERS], outsider, owner_b;

/* Runs `keywaved <args>` on s's data directory; stdout into out. Returns the status. */
static int run_cli(const kws_server *s, const char *const *args, char *out, size_t cap)
{
    return kws_admin(s, args, out, cap);
}

/* Adds user name on s and enrolls its first device into m. */
static int add_member(const kws_server *s, const char *name, member *m)
{
    const char *args[] = {"user", "add", name, NULL};
    char out[256];
    if (run_cli(s, args, out, sizeof out) != 0 || strlen(out) != 21)
        return 0;
    out[20] = '\0';
    char body[256];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"device_name\":\"laptop\"}", out);
    kws_reply r;
    int ok = 0;
    if (kws_request(s->port, "POST", "/api/auth/enroll", NULL, body, strlen(body), &r) &&
        r.status == 201) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *u = NULL, *d = NULL, *c = NULL, *sec = NULL;
        if (json_unpack(j, "{s:s, s:s, s:s, s:s}", "user_id", &u, "device_id", &d, "client_id", &c,
                        "session_secret", &sec) == 0) {
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

/* The bytes of a request signed as m (Connection: close), or 0 on failure. */
static size_t signed_request(const member *m, const char *method, const char *target,
                             const char *body, char *out, size_t cap)
{
    char ts[32], nonce[KW_REQUEST_NONCE_NEW_CHARS + 1], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
    snprintf(ts, sizeof ts, "%lld", (long long)kws_now_ms());
    const char *b = body ? body : "";
    if (kw_request_nonce_new(kw_random_system(), nonce) != KW_OK ||
        kw_request_sign(m->secret, m->client_id, ts, nonce, method, target, (const uint8_t *)b,
                        strlen(b), sig) != KW_OK)
        return 0;
    int n = snprintf(out, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "X-Client-ID: %s\r\nX-Timestamp: %s\r\nX-Nonce: %s\r\nX-Signature: %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, target, m->client_id, ts, nonce, sig, strlen(b), b);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static bool call_on(uint16_t port, const member *m, const char *method, const char *target,
                    const char *body, kws_reply *r)
{
    memset(r, 0, sizeof *r);
    char req[70000];
    size_t n = signed_request(m, method, target, body, req, sizeof req);
    int fd = n ? kws_connect(port) : -1;
    if (fd < 0)
        return false;
    kws_buf b = {0};
    bool ok = kws_send_all(fd, req, n) && kws_read_reply(fd, &b, strcmp(method, "HEAD") == 0, r);
    kws_buf_free(&b);
    close(fd);
    return ok;
}

static bool call(const member *m, const char *method, const char *target, const char *body,
                 kws_reply *r)
{
    return call_on(srv.port, m, method, target, body, r);
}

/* ---- guests ------------------------------------------------------------------------- */

typedef struct guest {
    char session_id[40], secret[48], meeting_id[64];
} guest;

static bool gcall_on(uint16_t port, const char *secret, const char *method, const char *target,
                     const char *body, kws_reply *r)
{
    char headers[128] = "";
    if (secret != NULL)
        snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", secret);
    return kws_request(port, method, target, headers, body, body ? strlen(body) : 0, r);
}

static bool gcall(const guest *g, const char *method, const char *target, const char *body,
                  kws_reply *r)
{
    return gcall_on(srv.port, g ? g->secret : NULL, method, target, body, r);
}

/* A registration body for a fresh identity: what the guest app sends. Caller frees. */
static char *registration_body(const char *token, const char *name)
{
    kw_store *store = NULL;
    kw_identity *id = NULL;
    kw_identity_config cfg = {KW_ROLE_GUEST, NULL, NULL, NULL, 0};
    char *doc = NULL, *text = NULL;
    if (kw_store_mem_new(&store) != KW_OK)
        return NULL;
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
    free(doc);
    kw_identity_free(id);
    kw_store_free(store);
    return text;
}

/* Reads a 201 registration reply into g. */
static int parse_registration(const kws_reply *r, guest *g)
{
    if (r->status != 201)
        return 0;
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    const char *sid = NULL, *sec = NULL, *mid = NULL, *exp = NULL;
    int ok = j != NULL && json_object_size(j) == 4 &&
             json_unpack(j, "{s:s, s:s, s:s, s:s}", "session_id", &sid, "guest_secret", &sec,
                         "meeting_id", &mid, "expires_at", &exp) == 0;
    if (ok) {
        snprintf(g->session_id, sizeof g->session_id, "%s", sid);
        snprintf(g->secret, sizeof g->secret, "%s", sec);
        snprintf(g->meeting_id, sizeof g->meeting_id, "%s", mid);
    }
    json_decref(j);
    return ok;
}

static int register_on(uint16_t port, const char *token, const char *body_or_null, guest *g)
{
    char *body = body_or_null ? strdup(body_or_null) : registration_body(token, "Visitor");
    kws_reply r;
    int ok = body != NULL &&
             kws_request(port, "POST", "/api/meetings/external/register", NULL, body, strlen(body),
                         &r) &&
             parse_registration(&r, g);
    if (body != NULL)
        kws_reply_free(&r);
    free(body);
    return ok;
}

static int register_guest(const char *token, guest *g)
{
    return register_on(srv.port, token, NULL, g);
}

/* ---- checks ------------------------------------------------------------------------- */

static void check_error(const kws_reply *r, int status, const char *token)
{
    KWT_EQ(r->status, status);
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    if (!KWT_CHECK(j != NULL && json_is_object(j))) {
        printf("    body: %s\n", r->body ? r->body : "(none)");
        json_decref(j);
        return;
    }
    if (r->status != 409 || json_object_get(j, "by") == NULL)
        KWT_EQ(json_object_size(j), 2);
    if (!KWT_CHECK(json_string_value(json_object_get(j, "error")) != NULL &&
                   strcmp(json_string_value(json_object_get(j, "error")), token) == 0))
        printf("    want %s, body: %s\n", token, r->body);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    KWT_CHECK(detail != NULL && detail[0] != '\0');
    json_decref(j);
}

static json_t *reply_json(const kws_reply *r)
{
    return json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
}

static long long reply_count(const kws_reply *r)
{
    json_t *j = reply_json(r);
    long long v = -1;
    if (j != NULL && json_object_size(j) == 1 && json_is_integer(json_object_get(j, "count")))
        v = json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    return v;
}

/* One integer from `sqlite3 <db> <sql>` (-1 on failure). */
static long long sql_int(const kws_server *s, const char *sql)
{
    char cmd[PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd, "sqlite3 -cmd '.timeout 5000' '%s/keywave.db' \"%s\"", s->data_dir,
             sql);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    char line[128] = "";
    long long v = -1;
    if (fgets(line, sizeof line, p) != NULL)
        v = strtoll(line, NULL, 10);
    pclose(p);
    return v;
}

/* ---- fixtures ----------------------------------------------------------------------- */

static char meeting_a[64], meeting_b[64], meeting_closed[64];
static char token_a[40], token_b[40], token_two_uses[40], token_revoked[40], token_closed[40];

static int json_field(const kws_reply *r, const char *field, char *out, size_t cap)
{
    json_t *j = reply_json(r);
    const char *v = json_string_value(json_object_get(j, field));
    if (v != NULL)
        snprintf(out, cap, "%s", v);
    json_decref(j);
    return v != NULL;
}

static int create_meeting(const member *owner, int allow_external, char out[64])
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"title\":\"Planning\",\"start_time\":\"2026-01-01T10:00:00Z\","
             "\"end_time\":\"2030-01-01T11:00:00Z\",\"allow_external\":%s}",
             allow_external ? "true" : "false");
    kws_reply r;
    int ok = call(owner, "POST", "/api/meetings", body, &r) && r.status == 201 &&
             json_field(&r, "meeting_id", out, 64);
    if (!ok)
        printf("    create meeting: %d %s\n", r.status, r.body ? r.body : "");
    kws_reply_free(&r);
    return ok;
}

static int create_invitation(const member *owner, const char *meeting, const char *body,
                             char out[40])
{
    char path[128];
    snprintf(path, sizeof path, "/api/meetings/%s/invitations", meeting);
    kws_reply r;
    int ok =
        call(owner, "POST", path, body, &r) && r.status == 201 && json_field(&r, "token", out, 40);
    if (!ok)
        printf("    create invitation: %d %s\n", r.status, r.body ? r.body : "");
    kws_reply_free(&r);
    return ok;
}

static int add_participant(const member *owner, const char *meeting, const member *m)
{
    char path[128], body[256];
    snprintf(path, sizeof path, "/api/meetings/%s/participants", meeting);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"member\"}", m->user_id);
    kws_reply r;
    int ok = call(owner, "POST", path, body, &r) && r.status == 200;
    kws_reply_free(&r);
    return ok;
}

/* A guest of meeting A admitted by the owner. */
static int admitted_guest(guest *g)
{
    if (!register_guest(token_a, g))
        return 0;
    char path[160];
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/admit", meeting_a, g->session_id);
    kws_reply r;
    int ok = call(&members[0], "POST", path, NULL, &r) && r.status == 200;
    kws_reply_free(&r);
    return ok;
}

/* ---- tests -------------------------------------------------------------------------- */

static void server_starts_with_members_and_meetings(void)
{
    if (!KWT_CHECK(kws_start(&srv, "main", server_env)))
        return;
    for (int i = 0; i < N_MEMBERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "member%02d", i);
        KWT_CHECK(add_member(&srv, name, &members[i]));
    }
    KWT_CHECK(add_member(&srv, "outsider", &outsider));
    KWT_CHECK(add_member(&srv, "owner-b", &owner_b));
    KWT_CHECK(create_meeting(&members[0], 1, meeting_a));
    KWT_CHECK(create_meeting(&owner_b, 1, meeting_b));
    KWT_CHECK(create_meeting(&members[0], 1, meeting_closed));
    for (int i = 1; i < N_MEMBERS; i++)
        KWT_CHECK(add_participant(&members[0], meeting_a, &members[i]));
    KWT_CHECK(create_invitation(&members[0], meeting_a, "{}", token_a));
    KWT_CHECK(create_invitation(&members[0], meeting_a, "{\"max_uses\":2}", token_two_uses));
    KWT_CHECK(create_invitation(&members[0], meeting_a, "{}", token_revoked));
    KWT_CHECK(create_invitation(&owner_b, meeting_b, "{}", token_b));
    KWT_CHECK(create_invitation(&members[0], meeting_closed, "{}", token_closed));
    char path[160];
    kws_reply r;
    snprintf(path, sizeof path, "/api/meetings/%s/invitations/%s", meeting_a, token_revoked);
    if (KWT_CHECK(call(&members[0], "DELETE", path, NULL, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/%s", meeting_closed);
    if (KWT_CHECK(call(&members[0], "PATCH", path, "{\"allow_external\":false}", &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
}

static void register_answers_201_and_counts_uses(void)
{
    guest g;
    char *body = registration_body(token_a, "Ada");
    kws_reply r;
    if (KWT_CHECK(body != NULL) &&
        KWT_CHECK(kws_request(srv.port, "POST", "/api/meetings/external/register", NULL, body,
                              strlen(body), &r))) {
        KWT_EQ(r.status, 201);
        KWT_CHECK(parse_registration(&r, &g));
        KWT_EQ(strlen(g.session_id), 32);
        KWT_EQ(strspn(g.session_id, "0123456789abcdef"), 32);
        KWT_EQ(strlen(g.secret), 43);
        KWT_STREQ(g.meeting_id, meeting_a);
        char exp[64] = "";
        json_field(&r, "expires_at", exp, sizeof exp);
        KWT_EQ(strlen(exp), 20); /* "2026-11-23T04:15:00Z" */
        KWT_EQ(exp[19], 'Z');
    }
    kws_reply_free(&r);
    free(body);
    /* The secret authenticates; the database holds only its hash. */
    char path[160];
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r)))
        KWT_EQ(reply_count(&r), 30);
    kws_reply_free(&r);
    char sql[256];
    snprintf(
        sql, sizeof sql,
        "SELECT count(*) FROM guest_sessions WHERE session_id = '%s' AND length(secret_hash) = 32",
        g.session_id);
    KWT_EQ(sql_int(&srv, sql), 1);
    /* max_uses: two registrations, the third is 410 invitation_exhausted. */
    guest a, b;
    KWT_CHECK(register_guest(token_two_uses, &a));
    KWT_CHECK(register_guest(token_two_uses, &b));
    body = registration_body(token_two_uses, "Third");
    if (KWT_CHECK(kws_request(srv.port, "POST", "/api/meetings/external/register", NULL, body,
                              strlen(body), &r)))
        check_error(&r, 410, "invitation_exhausted");
    kws_reply_free(&r);
    free(body);
}

/* Each failure status of registration, and that none of them changed anything. */
static void register_failures(void)
{
    long long before = sql_int(&srv, "SELECT count(*) FROM guest_sessions");
    char *good = registration_body(token_a, "Bea");
    if (!KWT_CHECK(good != NULL))
        return;
    json_t *base = json_loads(good, 0, NULL);
    struct {
        const char *what;
        int status;
        const char *error;
    } cases[] = {
        {"unknown", 404, "unknown_invitation"},
        {"revoked", 410, "invitation_revoked"},
        {"closed", 403, "forbidden"},
        {"extra", 400, "unknown_field"},
        {"private", 400, "invalid_field"},
        {"long_name", 400, "invalid_field"},
        {"empty_name", 400, "invalid_field"},
        {"bad_signature", 400, "invalid_signature"},
        {"29_prekeys", 400, "invalid_field"},
        {"key_prefix", 400, "invalid_key"},
        {"registration_id", 400, "invalid_field"},
        {"not_json", 400, "invalid_json"},
        {"no_token", 400, "invalid_field"},
        {"repeated_id", 400, "invalid_field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_deep_copy(base);
        const char *w = cases[i].what;
        if (strcmp(w, "unknown") == 0)
            json_object_set_new(j, "invitation_token",
                                json_string("0123456789abcdef0123456789abcdef"));
        else if (strcmp(w, "revoked") == 0)
            json_object_set_new(j, "invitation_token", json_string(token_revoked));
        else if (strcmp(w, "closed") == 0)
            json_object_set_new(j, "invitation_token", json_string(token_closed));
        else if (strcmp(w, "extra") == 0)
            json_object_set_new(j, "admitted", json_true());
        else if (strcmp(w, "private") == 0)
            json_object_set_new(json_object_get(j, "signed_pre_key"), "private_key",
                                json_string("AAAA"));
        else if (strcmp(w, "long_name") == 0)
            json_object_set_new(j, "display_name",
                                json_string("12345678901234567890123456789012345678901234567890"
                                            "123456789012345"));
        else if (strcmp(w, "empty_name") == 0)
            json_object_set_new(j, "display_name", json_string(""));
        else if (strcmp(w, "bad_signature") == 0) {
            json_t *spk = json_object_get(j, "signed_pre_key");
            json_object_set(
                spk, "public_key",
                json_object_get(json_array_get(json_object_get(j, "pre_keys"), 0), "public_key"));
        } else if (strcmp(w, "29_prekeys") == 0)
            json_array_remove(json_object_get(j, "pre_keys"), 0);
        else if (strcmp(w, "key_prefix") == 0)
            json_object_set_new(j, "identity_key",
                                json_string("BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        else if (strcmp(w, "registration_id") == 0)
            json_object_set_new(j, "registration_id", json_integer(16384));
        else if (strcmp(w, "no_token") == 0)
            json_object_del(j, "invitation_token");
        else if (strcmp(w, "repeated_id") == 0)
            json_object_set(
                json_array_get(json_object_get(j, "pre_keys"), 1), "id",
                json_object_get(json_array_get(json_object_get(j, "pre_keys"), 0), "id"));
        char *text = strcmp(w, "not_json") == 0 ? strdup("{\"a\":") : json_dumps(j, JSON_COMPACT);
        kws_reply r;
        int failed_before = kwt_checks_failed;
        if (KWT_CHECK(kws_request(srv.port, "POST", "/api/meetings/external/register", NULL, text,
                                  strlen(text), &r)))
            check_error(&r, cases[i].status, cases[i].error);
        if (kwt_checks_failed != failed_before)
            printf("    case %s\n", w);
        kws_reply_free(&r);
        free(text);
        json_decref(j);
    }
    KWT_EQ(sql_int(&srv, "SELECT count(*) FROM guest_sessions"), before);
    KWT_EQ(sql_int(&srv, "SELECT count(*) FROM invitations WHERE uses > 0 AND max_uses IS NULL"
                         " AND revoked_ms IS NOT NULL"),
           0);
    json_decref(base);
    free(good);
}

/* Same identity again while waiting: new id and secret, old ones dead, no use counted. */
static void second_registration_replaces_the_waiting_session(void)
{
    char *body = registration_body(token_a, "Cy");
    guest first, second;
    if (!KWT_CHECK(body != NULL && register_on(srv.port, token_a, body, &first)))
        return;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT uses FROM invitations WHERE token = '%s'", token_a);
    long long uses = sql_int(&srv, sql);
    KWT_CHECK(register_on(srv.port, token_a, body, &second));
    KWT_EQ(sql_int(&srv, sql), uses);
    KWT_CHECK(strcmp(first.session_id, second.session_id) != 0);
    kws_reply r;
    char path[160];
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", first.session_id);
    if (KWT_CHECK(gcall(&first, "GET", path, NULL, &r)))
        check_error(&r, 401, "unauthorized");
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", second.session_id);
    if (KWT_CHECK(gcall(&second, "GET", path, NULL, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    free(body);
}

static void guest_prekeys_upload_and_leave(void)
{
    guest g, other;
    if (!KWT_CHECK(register_guest(token_a, &g) && register_guest(token_b, &other)))
        return;
    char path[160];
    kws_reply r;
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
    const char *five =
        "{\"pre_keys\":["
        "{\"id\":9001,\"public_key\":\"BUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\"},"
        "{\"id\":9002,\"public_key\":\"BUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\"}]}";
    if (KWT_CHECK(gcall(&g, "POST", path, five, &r))) {
        KWT_EQ(r.status, 200);
        KWT_EQ(reply_count(&r), 32);
    }
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&g, "POST", path, five, &r)))
        check_error(&r, 409, "conflict");
    kws_reply_free(&r);
    static const char *const bad[] = {
        "{\"pre_keys\":[]}",
        "{\"pre_keys\":[{\"id\":1,\"public_key\":\"BUFB\"}]}",
        "{\"pre_keys\":[{\"id\":1,\"public_key\":\"BUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\","
        "\"private_key\":\"x\"}]}",
        "{\"keys\":[]}",
    };
    static const char *const bad_token[] = {"invalid_field", "invalid_key", "invalid_field",
                                            "unknown_field"};
    for (size_t i = 0; i < 4; i++) {
        if (KWT_CHECK(gcall(&g, "POST", path, bad[i], &r)))
            check_error(&r, 400, bad_token[i]);
        kws_reply_free(&r);
    }
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r)))
        KWT_EQ(reply_count(&r), 32);
    kws_reply_free(&r);
    /* Another guest's session is 403; no bearer is 401. */
    if (KWT_CHECK(gcall(&other, "GET", path, NULL, &r)))
        check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(NULL, "GET", path, NULL, &r)))
        check_error(&r, 401, "unauthorized");
    kws_reply_free(&r);
    /* Leaving: session, keys and secret gone. */
    snprintf(path, sizeof path, "/api/meetings/external/session/%s", g.session_id);
    if (KWT_CHECK(gcall(&other, "DELETE", path, NULL, &r)))
        check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&g, "DELETE", path, NULL, &r))) {
        KWT_EQ(r.status, 200);
        KWT_STREQ(r.body, "{\"ok\":true}");
    }
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&g, "DELETE", path, NULL, &r)))
        check_error(&r, 401, "unauthorized");
    kws_reply_free(&r);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM guest_prekeys WHERE session_id = '%s'",
             g.session_id);
    KWT_EQ(sql_int(&srv, sql), 0);
}

static void admission_over_http(void)
{
    guest g, b;
    if (!KWT_CHECK(register_guest(token_a, &g) && register_guest(token_b, &b)))
        return;
    char path[200];
    kws_reply r;
    /* Nobody is present over HTTP alone: 409 no_host_present, and no 5 s window starts. */
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/request-admission", meeting_a,
             g.session_id);
    for (int i = 0; i < 2; i++) {
        if (KWT_CHECK(gcall(&g, "POST", path, NULL, &r)))
            check_error(&r, 409, "no_host_present");
        kws_reply_free(&r);
    }
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/request-admission", meeting_b,
             g.session_id);
    if (KWT_CHECK(gcall(&g, "POST", path, NULL, &r)))
        check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    /* It waits. */
    snprintf(path, sizeof path, "/api/meetings/%s/external/waiting", meeting_a);
    if (KWT_CHECK(call(&members[3], "GET", path, NULL, &r))) {
        KWT_EQ(r.status, 200);
        json_t *j = reply_json(&r);
        json_t *list = json_object_get(j, "waiting");
        int seen = 0;
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *row = json_array_get(list, i);
            if (strcmp(json_string_value(json_object_get(row, "session_id")), g.session_id) == 0) {
                seen = 1;
                KWT_STREQ(json_string_value(json_object_get(row, "display_name")), "Visitor");
                KWT_CHECK(json_is_string(json_object_get(row, "requested_at")));
            }
            KWT_CHECK(strcmp(json_string_value(json_object_get(row, "session_id")), b.session_id) !=
                      0);
        }
        KWT_CHECK(seen);
        json_decref(j);
    }
    kws_reply_free(&r);
    /* Admit: INV-3, no body fields, 404 for a guest of another meeting. */
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/admit", meeting_a, g.session_id);
    if (KWT_CHECK(call(&members[4], "POST", path, "{\"admitted_by\":\"usr_0\"}", &r)))
        check_error(&r, 400, "unknown_field");
    kws_reply_free(&r);
    char elsewhere[200];
    snprintf(elsewhere, sizeof elsewhere, "/api/meetings/%s/external/%s/admit", meeting_a,
             b.session_id);
    if (KWT_CHECK(call(&members[4], "POST", elsewhere, NULL, &r)))
        check_error(&r, 404, "not_found");
    kws_reply_free(&r);
    if (KWT_CHECK(call(&members[4], "POST", path, "{}", &r))) {
        KWT_EQ(r.status, 200);
        json_t *j = reply_json(&r);
        KWT_CHECK(json_is_true(json_object_get(j, "ok")));
        KWT_STREQ(json_string_value(json_object_get(j, "admitted_by")), members[4].user_id);
        json_decref(j);
    }
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/decline", meeting_a, g.session_id);
    if (KWT_CHECK(call(&members[5], "POST", path, "{\"reason\":\"late\"}", &r))) {
        check_error(&r, 409, "already_admitted");
        json_t *j = reply_json(&r);
        KWT_STREQ(json_string_value(json_object_get(j, "by")), members[4].user_id);
        KWT_STREQ(json_string_value(json_object_get(j, "status")), "admitted");
        json_decref(j);
    }
    kws_reply_free(&r);
    /* An admitted guest asking again: 409 already_admitted. */
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/request-admission", meeting_a,
             g.session_id);
    if (KWT_CHECK(gcall(&g, "POST", path, NULL, &r)))
        check_error(&r, 409, "already_admitted");
    kws_reply_free(&r);
    /* Decline with a reason, then admit is 409 already_declined. */
    guest d;
    if (!KWT_CHECK(register_guest(token_a, &d)))
        return;
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/decline", meeting_a, d.session_id);
    if (KWT_CHECK(call(&members[6], "POST", path, "{\"reason\":\"not today\"}", &r))) {
        KWT_EQ(r.status, 200);
        json_t *j = reply_json(&r);
        KWT_STREQ(json_string_value(json_object_get(j, "declined_by")), members[6].user_id);
        json_decref(j);
    }
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/admit", meeting_a, d.session_id);
    if (KWT_CHECK(call(&members[7], "POST", path, NULL, &r)))
        check_error(&r, 409, "already_declined");
    kws_reply_free(&r);
    /* A declined guest uploads no more pre-keys (nobody will fetch them); it may still leave. */
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", d.session_id);
    if (KWT_CHECK(gcall(&d, "POST", path,
                        "{\"pre_keys\":[{\"id\":9001,\"public_key\":"
                        "\"BUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\"}]}",
                        &r)))
        check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&d, "GET", path, NULL, &r))) {
        KWT_EQ(r.status, 200);
        KWT_EQ(reply_count(&r), 30); /* unchanged by the refused upload */
    }
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/%s/external/ffffffffffffffffffffffffffffffff/admit",
             meeting_a);
    if (KWT_CHECK(call(&members[7], "POST", path, NULL, &r)))
        check_error(&r, 404, "not_found");
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/mtg_000000000000/external/%s/admit", d.session_id);
    if (KWT_CHECK(call(&members[7], "POST", path, NULL, &r)))
        check_error(&r, 404, "not_found");
    kws_reply_free(&r);
}

static void bundles_both_ways(void)
{
    guest g;
    if (!KWT_CHECK(register_guest(token_a, &g)))
        return;
    char path[256];
    kws_reply r;
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/keys", meeting_a, g.session_id);
    long long last = -1;
    for (int i = 0; i < 3; i++) {
        if (KWT_CHECK(call(&members[8], "GET", path, NULL, &r)) && KWT_CHECK(r.status == 200)) {
            kw_bundle b;
            kw_error err;
            KWT_ERR(kw_bundle_from_json(r.body, r.body_len, &b, &err), KW_OK);
            KWT_STREQ(b.owner, g.session_id);
            KWT_CHECK(b.owner_is_guest);
            KWT_EQ(b.device_id, 1);
            KWT_CHECK(b.has_one_time_pre_key && (long long)b.one_time_pre_key_id > last);
            last = b.one_time_pre_key_id;
        }
        kws_reply_free(&r);
    }
    if (KWT_CHECK(call(&members[8], "GET", path, NULL, &r))) {
        check_error(&r, 429, "rate_limited");
        char retry[16] = "";
        KWT_CHECK(kws_header(&r, "retry-after", retry, sizeof retry) && atoi(retry) >= 1);
    }
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/keys", meeting_a, g.session_id);
    if (KWT_CHECK(call(&members[10], "HEAD", path, NULL, &r)))
        KWT_EQ(r.status, 405); /* HEAD would consume a pre-key nobody sees */
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r)))
        KWT_EQ(reply_count(&r), 27);
    kws_reply_free(&r);
    /* The guest's fetch of a member device: nobody is present over HTTP alone. */
    snprintf(path, sizeof path, "/api/meetings/external/%s/participant/%s/1/keys", g.session_id,
             members[0].user_id);
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r)))
        check_error(&r, 404, "not_present");
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&g, "HEAD", path, NULL, &r)))
        KWT_EQ(r.status, 405);
    kws_reply_free(&r);
}

static void livekit_token_for_the_admitted_guest(void)
{
    guest g, waiting;
    if (!KWT_CHECK(admitted_guest(&g) && register_guest(token_a, &waiting)))
        return;
    char body[256];
    kws_reply r;
    snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}", g.session_id,
             meeting_a);
    if (KWT_CHECK(gcall(&g, "POST", "/api/livekit/external-token", body, &r))) {
        KWT_EQ(r.status, 200);
        json_t *j = reply_json(&r);
        char identity[64];
        snprintf(identity, sizeof identity, "guest_%s", g.session_id);
        KWT_STREQ(json_string_value(json_object_get(j, "identity")), identity);
        KWT_STREQ(json_string_value(json_object_get(j, "roomName")), meeting_a);
        KWT_STREQ(json_string_value(json_object_get(j, "url")), "wss://livekit.example.test");
        KWT_CHECK(json_string_length(json_object_get(j, "token")) > 50);
        json_decref(j);
    }
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&g, "POST", "/api/livekit/guest-token", body, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}", waiting.session_id,
             meeting_a);
    if (KWT_CHECK(gcall(&waiting, "POST", "/api/livekit/external-token", body, &r)))
        check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}", g.session_id,
             meeting_b);
    if (KWT_CHECK(gcall(&g, "POST", "/api/livekit/external-token", body, &r)))
        check_error(&r, 403, "forbidden");
    kws_reply_free(&r);
    if (KWT_CHECK(gcall(&g, "POST", "/api/livekit/external-token", "{\"sessionId\":1}", &r)))
        check_error(&r, 400, "invalid_field");
    kws_reply_free(&r);
}

/* ---- the authorization matrix ----------------------------------------------------------- */

enum { C_ANON, C_OUTSIDER, C_MEMBER, C_OWNER, C_GUEST_B, C_SELF, C_ADMITTED, N_CALLERS };
static const char *const caller_names[N_CALLERS] = {
    "anonymous", "outsider", "member", "owner", "guest of B", "guest itself", "admitted guest",
};

typedef struct route_row {
    const char *method;
    const char *path; /* %M meeting A, %S the target session id, %O the owner's user id */
    const char *body; /* NULL: none; "PREKEYS": a fresh upload; "REG": a registration;
                         "TOKEN": {sessionId, meetingId} of the target */
    int fresh;        /* cells that would change the target get a fresh target each */
    int want[N_CALLERS];
} route_row;

static const route_row matrix[] = {
    {"GET",
     "/api/meetings/external/session/%S/prekeys",
     NULL,
     0,
     {401, 401, 401, 401, 403, 200, 200}},
    {"POST",
     "/api/meetings/external/session/%S/prekeys",
     "PREKEYS",
     0,
     {401, 401, 401, 401, 403, 200, 200}},
    {"DELETE", "/api/meetings/external/session/%S", NULL, 1, {401, 401, 401, 401, 403, 200, 200}},
    {"POST",
     "/api/meetings/%M/external/%S/request-admission",
     NULL,
     0,
     {401, 401, 401, 401, 403, 409, 409}},
    {"GET", "/api/meetings/%M/external/waiting", NULL, 0, {401, 403, 200, 200, 401, 401, 401}},
    {"POST", "/api/meetings/%M/external/%S/admit", NULL, 1, {401, 403, 200, 200, 401, 401, 401}},
    {"POST", "/api/meetings/%M/external/%S/decline", NULL, 1, {401, 403, 200, 200, 401, 401, 401}},
    {"GET", "/api/meetings/%M/external/%S/keys", NULL, 0, {401, 403, 200, 200, 401, 401, 401}},
    {"GET",
     "/api/meetings/external/%S/participant/%O/1/keys",
     NULL,
     0,
     {401, 401, 401, 401, 403, 404, 404}},
    {"POST", "/api/livekit/external-token", "TOKEN", 0, {401, 401, 401, 401, 403, 403, 200}},
    {"POST", "/api/livekit/guest-token", "TOKEN", 0, {401, 401, 401, 401, 403, 403, 200}},
    {"POST", "/api/meetings/external/register", "REG", 0, {201, 201, 201, 201, 201, 201, 201}},
};

static void expand(const char *pattern, const char *sid, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pattern; *p != '\0' && n + 1 < cap; p++) {
        const char *sub = NULL;
        if (p[0] == '%' && p[1] == 'M')
            sub = meeting_a;
        else if (p[0] == '%' && p[1] == 'S')
            sub = sid;
        else if (p[0] == '%' && p[1] == 'O')
            sub = members[0].user_id;
        if (sub != NULL) {
            n += (size_t)snprintf(out + n, cap - n, "%s", sub);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

static void authorization_matrix(void)
{
    guest self, admitted, guest_b;
    if (!KWT_CHECK(register_guest(token_a, &self) && admitted_guest(&admitted) &&
                   register_guest(token_b, &guest_b)))
        return;
    static int prekey_id = 20000;
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        const route_row *row = &matrix[i];
        for (int c = 0; c < N_CALLERS; c++) {
            /* The target: the admitted guest in its own column, else the waiting one;
             * a fresh one where the cell succeeds and changes it. */
            guest target = c == C_ADMITTED ? admitted : self;
            if (row->fresh && row->want[c] < 300) {
                int ok =
                    c == C_ADMITTED ? admitted_guest(&target) : register_guest(token_a, &target);
                if (!KWT_CHECK(ok))
                    continue;
            }
            char path[300], body[512] = "";
            expand(row->path, target.session_id, path, sizeof path);
            char *reg = NULL;
            const char *b = NULL;
            if (row->body != NULL && strcmp(row->body, "PREKEYS") == 0) {
                snprintf(body, sizeof body,
                         "{\"pre_keys\":[{\"id\":%d,\"public_key\":"
                         "\"BUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\"}]}",
                         prekey_id++);
                b = body;
            } else if (row->body != NULL && strcmp(row->body, "TOKEN") == 0) {
                snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}",
                         target.session_id, meeting_a);
                b = body;
            } else if (row->body != NULL && strcmp(row->body, "REG") == 0) {
                reg = registration_body(token_a, "Matrix");
                b = reg;
            }
            kws_reply r;
            bool sent = false;
            switch (c) {
            case C_ANON:
                sent = gcall(NULL, row->method, path, b, &r);
                break;
            case C_OUTSIDER:
                sent = call(&outsider, row->method, path, b, &r);
                break;
            case C_MEMBER:
                sent = call(&members[9], row->method, path, b, &r);
                break;
            case C_OWNER:
                sent = call(&members[0], row->method, path, b, &r);
                break;
            case C_GUEST_B:
                sent = gcall(&guest_b, row->method, path, b, &r);
                break;
            case C_SELF:
            case C_ADMITTED:
                sent = gcall(&target, row->method, path, b, &r);
                break;
            default:
                break;
            }
            if (KWT_CHECK(sent) && r.status != row->want[c]) {
                KWT_EQ(r.status, row->want[c]);
                printf("    %s %s as %s: %s\n", row->method, row->path, caller_names[c],
                       r.body ? r.body : "");
            }
            if (sent)
                kws_reply_free(&r);
            free(reg);
        }
    }
}

/* ---- concurrency ---------------------------------------------------------------------- */

/* Sends every request first, then reads every reply: the server sees them all at once. */
static int send_all_then_read(char **reqs, const size_t *lens, size_t n, kws_reply *replies)
{
    int *fds = calloc(n, sizeof *fds);
    int sent = 0;
    for (size_t i = 0; fds != NULL && i < n; i++) {
        fds[i] = kws_connect(srv.port);
        if (fds[i] >= 0 && kws_send_all(fds[i], reqs[i], lens[i]))
            sent++;
    }
    for (size_t i = 0; fds != NULL && i < n; i++) {
        kws_buf b = {0};
        memset(&replies[i], 0, sizeof replies[i]);
        if (fds[i] >= 0) {
            if (!kws_read_reply(fds[i], &b, false, &replies[i]))
                replies[i].status = -1;
            close(fds[i]);
        }
        kws_buf_free(&b);
    }
    free(fds);
    return sent;
}

/* INV-3: 20 members admit one guest at once: one 200, 19 x 409 naming the winner. */
static void inv_3_twenty_simultaneous_admits(void)
{
    guest g;
    if (!KWT_CHECK(register_guest(token_a, &g)))
        return;
    char path[200];
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/admit", meeting_a, g.session_id);
    char *reqs[N_MEMBERS];
    size_t lens[N_MEMBERS];
    kws_reply replies[N_MEMBERS];
    for (int i = 0; i < N_MEMBERS; i++) {
        reqs[i] = malloc(4096);
        lens[i] = reqs[i] ? signed_request(&members[i], "POST", path, NULL, reqs[i], 4096) : 0;
    }
    KWT_EQ(send_all_then_read(reqs, lens, N_MEMBERS, replies), N_MEMBERS);
    int ok = 0, conflict = 0;
    char winner[130] = "";
    for (int i = 0; i < N_MEMBERS; i++)
        if (replies[i].status == 200) {
            ok++;
            json_t *j = reply_json(&replies[i]);
            const char *by = json_string_value(json_object_get(j, "admitted_by"));
            snprintf(winner, sizeof winner, "%s", by ? by : "");
            KWT_STREQ(winner, members[i].user_id);
            json_decref(j);
        }
    for (int i = 0; i < N_MEMBERS; i++) {
        if (replies[i].status == 409) {
            conflict++;
            json_t *j = reply_json(&replies[i]);
            KWT_STREQ(json_string_value(json_object_get(j, "error")), "already_admitted");
            KWT_STREQ(json_string_value(json_object_get(j, "by")), winner);
            json_decref(j);
        }
        kws_reply_free(&replies[i]);
        free(reqs[i]);
    }
    KWT_EQ(ok, 1);
    KWT_EQ(conflict, N_MEMBERS - 1);
}

/* INV-2: 60 fetches at once from 20 devices: 30 distinct pre-keys, 30 without, no repeat. */
static void inv_2_sixty_simultaneous_bundle_fetches(void)
{
    guest g;
    if (!KWT_CHECK(register_guest(token_a, &g)))
        return;
    char path[200];
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/keys", meeting_a, g.session_id);
    enum { N = 3 * N_MEMBERS };
    char *reqs[N];
    size_t lens[N];
    kws_reply replies[N];
    for (int i = 0; i < N; i++) {
        reqs[i] = malloc(4096);
        lens[i] =
            reqs[i] ? signed_request(&members[i % N_MEMBERS], "GET", path, NULL, reqs[i], 4096) : 0;
    }
    KWT_EQ(send_all_then_read(reqs, lens, N, replies), N);
    int served = 0, without = 0, duplicate = 0, n_ids = 0;
    uint32_t ids[N];
    for (int i = 0; i < N; i++) {
        kw_bundle b;
        kw_error err;
        if (replies[i].status == 200 &&
            kw_bundle_from_json(replies[i].body, replies[i].body_len, &b, &err) == KW_OK) {
            served++;
            if (!b.has_one_time_pre_key)
                without++;
            else
                ids[n_ids++] = b.one_time_pre_key_id;
        } else {
            printf("    fetch %d: %d %s\n", i, replies[i].status,
                   replies[i].body ? replies[i].body : "");
        }
        kws_reply_free(&replies[i]);
        free(reqs[i]);
    }
    for (int a = 0; a < n_ids; a++) /* INV-2: no pre-key handed out twice */
        for (int b = a + 1; b < n_ids; b++)
            duplicate += ids[a] == ids[b];
    KWT_EQ(served, N);
    KWT_EQ(n_ids, 30);
    KWT_EQ(without, 30);
    KWT_EQ(duplicate, 0);
    /* The fourth fetch of a device in the minute is refused. */
    kws_reply r;
    if (KWT_CHECK(call(&members[0], "GET", path, NULL, &r)))
        check_error(&r, 429, "rate_limited");
    kws_reply_free(&r);
}

/* ---- invariants through the running server ------------------------------------------- */

/* INV-9: deleting a meeting deletes its guest sessions (their secrets stop working). */
static void inv_9_deleting_a_meeting_deletes_its_guests(void)
{
    char meeting[64], tok[40];
    guest g;
    if (!KWT_CHECK(create_meeting(&owner_b, 1, meeting) &&
                   create_invitation(&owner_b, meeting, "{}", tok) && register_guest(tok, &g)))
        return;
    char path[160];
    kws_reply r;
    snprintf(path, sizeof path, "/api/meetings/%s", meeting);
    if (KWT_CHECK(call(&owner_b, "DELETE", path, NULL, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r)))
        check_error(&r, 401, "unauthorized");
    kws_reply_free(&r);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM guest_sessions WHERE session_id = '%s') +"
             " (SELECT count(*) FROM guest_prekeys WHERE session_id = '%s')",
             g.session_id, g.session_id);
    KWT_EQ(sql_int(&srv, sql), 0);
}

/* INV-10: the server's own timer removes a session whose expiry has passed. */
static void inv_10_cleanup_runs_in_the_server(void)
{
    guest g;
    if (!KWT_CHECK(register_guest(token_a, &g)))
        return;
    char sql[256], path[160];
    kws_reply r;
    snprintf(sql, sizeof sql, "UPDATE guest_sessions SET expires_ms = 1000 WHERE session_id = '%s'",
             g.session_id);
    sql_int(&srv, sql);
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
    /* session_expired until the housekeeping pass (every second) deletes it, then
     * unauthorized: the pass may win the race with this request. */
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r))) {
        json_t *j = reply_json(&r);
        const char *tok = json_string_value(json_object_get(j, "error"));
        KWT_EQ(r.status, 401);
        KWT_CHECK(tok != NULL &&
                  (strcmp(tok, "session_expired") == 0 || strcmp(tok, "unauthorized") == 0));
        json_decref(j);
    }
    kws_reply_free(&r);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM guest_sessions WHERE session_id = '%s'",
             g.session_id);
    long long left = 1;
    for (int waited = 0; waited < 5000 && left != 0; waited += 100) {
        kws_sleep_ms(100);
        left = sql_int(&srv, sql);
    }
    KWT_EQ(left, 0);
    KWT_CHECK(kws_wait_for_text(srv.log, "event=cleanup", 2000));
}

/* INV-8: no guest secret or invitation token in the log. */
static void inv_8_no_guest_secret_in_the_log(void)
{
    guest g;
    if (!KWT_CHECK(register_guest(token_a, &g)))
        return;
    char path[160];
    kws_reply r;
    snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
    if (KWT_CHECK(gcall(&g, "GET", path, NULL, &r)))
        KWT_EQ(r.status, 200);
    kws_reply_free(&r);
    KWT_CHECK(kws_wait_for_text(srv.log, "/prekeys status=200", 2000));
    char *log = kws_read_file(srv.log);
    if (!KWT_CHECK(log != NULL))
        return;
    KWT_CHECK(strstr(log, g.secret) == NULL);
    KWT_CHECK(strstr(log, token_a) == NULL);
    KWT_CHECK(strstr(log, token_b) == NULL);
    KWT_CHECK(strstr(log, "Bearer") == NULL);
    free(log);
}

/* ---- crash safety ----------------------------------------------------------------------- */

/* Starts keywaved again on s's existing directory and port. */
static bool restart(kws_server *s)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        if (chdir(s->dir) != 0)
            _exit(126);
        for (size_t i = 0; i < sizeof kws_config_names / sizeof kws_config_names[0]; i++)
            unsetenv(kws_config_names[i]);
        char listen[64];
        snprintf(listen, sizeof listen, "127.0.0.1:%u", s->port);
        setenv("KEYWAVE_LISTEN", listen, 1);
        setenv("KEYWAVE_DATA_DIR", s->data_dir, 1);
        kws_redirect(s->out, STDOUT_FILENO);
        kws_redirect(s->log, STDERR_FILENO);
        char *argv[] = {kws_binary, NULL};
        execv(kws_binary, argv);
        _exit(127);
    }
    kws_track(pid);
    s->pid = pid;
    for (int waited = 0; waited < KWS_START_TIMEOUT_MS; waited += 20) {
        int fd = kws_connect(s->port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        kws_sleep_ms(20);
    }
    return false;
}

/* A client process: registers fresh guests until the server goes away, appending each
 * 201's "session_id secret" line to path with one write. */
static void registration_stream(uint16_t port, const char *token, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        _exit(1);
    for (int i = 0; i < 100000; i++) {
        char *body = registration_body(token, "Crash");
        kws_reply r;
        guest g;
        bool sent = body != NULL && kws_request(port, "POST", "/api/meetings/external/register",
                                                NULL, body, strlen(body), &r);
        free(body);
        if (!sent)
            break; /* the server is gone */
        if (parse_registration(&r, &g)) {
            char line[128];
            int n = snprintf(line, sizeof line, "%s %s\n", g.session_id, g.secret);
            if (write(fd, line, (size_t)n) != n)
                _exit(1);
        }
        kws_reply_free(&r);
    }
    close(fd);
    _exit(0);
}

static void crash_during_registrations_loses_no_acknowledged_one(void)
{
    alarm(KWS_ALARM_SECONDS); /* a fresh allowance for this long case */
    kws_server c;
    member owner;
    char meeting[64], tok[40];
    if (!KWT_CHECK(kws_start(&c, "crash", NULL) && add_member(&c, "crash-owner", &owner)))
        return;
    kws_reply r;
    char body[256], path[256];
    snprintf(body, sizeof body,
             "{\"title\":\"Crash\",\"start_time\":\"2026-01-01T10:00:00Z\","
             "\"end_time\":\"2030-01-01T11:00:00Z\",\"allow_external\":true}");
    if (!KWT_CHECK(call_on(c.port, &owner, "POST", "/api/meetings", body, &r) && r.status == 201 &&
                   json_field(&r, "meeting_id", meeting, sizeof meeting))) {
        kws_reply_free(&r);
        return;
    }
    kws_reply_free(&r);
    snprintf(path, sizeof path, "/api/meetings/%s/invitations", meeting);
    if (!KWT_CHECK(call_on(c.port, &owner, "POST", path, "{}", &r) && r.status == 201 &&
                   json_field(&r, "token", tok, sizeof tok))) {
        kws_reply_free(&r);
        return;
    }
    kws_reply_free(&r);
    enum { CLIENTS = 4 };
    pid_t clients[CLIENTS];
    char files[CLIENTS][PATH_MAX + 32];
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(files[i], sizeof files[i], "%s/acked-%d.txt", c.dir, i);
        fflush(stdout);
        clients[i] = fork();
        if (clients[i] == 0)
            registration_stream(c.port, tok, files[i]);
        if (clients[i] > 0)
            kws_track(clients[i]);
    }
    kws_sleep_ms(1500);
    kill(c.pid, SIGKILL); /* mid-stream */
    int status;
    KWT_CHECK(kws_wait_exit(c.pid, 5000, &status));
    c.pid = 0;
    for (int i = 0; i < CLIENTS; i++)
        if (clients[i] > 0 && !kws_wait_exit(clients[i], 20000, &status))
            kws_kill(clients[i]);
    /* The file the crash left behind is consistent. */
    char cmd[PATH_MAX + 128], line[128] = "";
    snprintf(cmd, sizeof cmd, "sqlite3 '%s/keywave.db' 'PRAGMA integrity_check'", c.data_dir);
    FILE *p = popen(cmd, "r");
    if (KWT_CHECK(p != NULL)) {
        if (fgets(line, sizeof line, p) == NULL)
            line[0] = '\0';
        pclose(p);
    }
    KWT_STREQ(line, "ok\n");
    /* Every acknowledged registration is there after a restart, and its secret works. */
    if (!KWT_CHECK(restart(&c)))
        return;
    int acked = 0, alive = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char *text = kws_read_file(files[i]);
        for (char *s = text, *nl; s != NULL && (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
            *nl = '\0';
            guest g;
            if (sscanf(s, "%39s %47s", g.session_id, g.secret) != 2)
                continue;
            acked++;
            snprintf(path, sizeof path, "/api/meetings/external/session/%s/prekeys", g.session_id);
            kws_reply q;
            if (gcall_on(c.port, g.secret, "GET", path, NULL, &q) && q.status == 200 &&
                reply_count(&q) == 30)
                alive++;
            kws_reply_free(&q);
        }
        free(text);
    }
    printf("    %d registrations acknowledged before kill -9; %d authenticate after restart\n",
           acked, alive);
    /* This server has no LiveKit keys: an admitted guest's token is 503 not_configured. */
    guest g;
    if (KWT_CHECK(register_on(c.port, tok, NULL, &g))) {
        snprintf(path, sizeof path, "/api/meetings/%s/external/%s/admit", meeting, g.session_id);
        if (KWT_CHECK(call_on(c.port, &owner, "POST", path, NULL, &r)))
            KWT_EQ(r.status, 200);
        kws_reply_free(&r);
        snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}", g.session_id,
                 meeting);
        if (KWT_CHECK(gcall_on(c.port, g.secret, "POST", "/api/livekit/external-token", body, &r)))
            check_error(&r, 503, "not_configured");
        kws_reply_free(&r);
    }
    KWT_CHECK(acked > 0);
    KWT_EQ(alive, acked);
    KWT_EQ(kws_stop(&c, SIGTERM), 0);
}

static void server_stops(void)
{
    KWT_EQ(kws_stop(&srv, SIGTERM), 0);
}

int main(void)
{
    if (!kws_init("test-guests")) {
        kwt_cases_failed++;
        return kws_finish();
    }
    KWT_RUN(server_starts_with_members_and_meetings);
    if (srv.pid > 0) {
        KWT_RUN(register_answers_201_and_counts_uses);
        KWT_RUN(register_failures);
        KWT_RUN(second_registration_replaces_the_waiting_session);
        KWT_RUN(guest_prekeys_upload_and_leave);
        KWT_RUN(admission_over_http);
        KWT_RUN(bundles_both_ways);
        KWT_RUN(livekit_token_for_the_admitted_guest);
        KWT_RUN(authorization_matrix);
        KWT_RUN(inv_3_twenty_simultaneous_admits);
        KWT_RUN(inv_2_sixty_simultaneous_bundle_fetches);
        KWT_RUN(inv_9_deleting_a_meeting_deletes_its_guests);
        KWT_RUN(inv_10_cleanup_runs_in_the_server);
        KWT_RUN(inv_8_no_guest_secret_in_the_log);
        KWT_RUN(server_stops);
    }
    KWT_RUN(crash_during_registrations_loses_no_acknowledged_one);
    return kws_finish();
}
