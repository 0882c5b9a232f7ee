/*
 * test_authz.c — the authorization matrix (issue 3, tests point 5): every route of every
 * route table × {anonymous, member outside the meeting, member, manager, owner, guest of
 * another meeting, the guest itself before and after admission}, each cell sent to one
 * running keywaved and compared with the status in authz_table.h. A forgotten check
 * shows up as one mismatching cell, printed with route, caller, got and want.
 *
 * tests/unit/test_srv_routes.c holds the same table against the router's own list, so a
 * new route without a row fails there.
 *
 * Fixtures: members are made with `keywaved user add` and enrolled over HTTP, upload
 * their keys, and the owner builds meeting M (manager, member and E as participants,
 * invitation, channel) with guest A registered and guest B registered and admitted; the
 * keyholder owns meeting N where guest C waits. Rows that change state get a new M per
 * cell. KEYWAVED names the binary.
 */
#include <jansson.h>

#include "authz_table.h"
#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/err.h"
#include "keywave/identity.h"
#include "keywave/random.h"
#include "keywave/request_sign.h"
#include "keywave/store.h"
#include "kwserver.h"

static kws_server srv;
static const char *const server_env[] = {
    "KEYWAVE_PUBLIC_URL=https://kw.example.com",
    "LIVEKIT_URL=wss://lk.example.com",
    "LIVEKIT_API_KEY=APIauthz",
    "LIVEKIT_API_SECRET=livekit-secret-for-the-authz-matrix-0123",
    "JITSI_SERVER_URL=https://meet.example.com",
    "JITSI_APP_ID=keywave",
    "JITSI_APP_SECRET=0123456789abcdef0123456789abcdef-authz",
    NULL,
};

/* ---- members ------------------------------------------------------------------------ */

typedef struct member {
    char user_id[130], device_id[16], client_id[130], secret[64];
    kw_store *store;
    kw_identity *id;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
} member;

static member owner, manager, plain, outsider, erin, keyholder;

/* Runs `keywaved <args>` on the server's data directory; stdout into out. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    return kws_admin(&srv, args, out, cap);
}

/* A fresh enrollment body {code, device_name} for a new user; 0 on failure. */
static int enroll_body(char *out, size_t cap)
{
    static int n_users;
    char name[32], code[256];
    snprintf(name, sizeof name, "authz-user-%d", n_users++);
    const char *args[] = {"user", "add", name, NULL};
    if (run_cli(args, code, sizeof code) != 0 || strlen(code) != 21)
        return 0;
    code[20] = '\0';
    snprintf(out, cap, "{\"code\":\"%s\",\"device_name\":\"laptop\"}", code);
    return 1;
}

static int add_member(member *m)
{
    char body[256];
    if (!enroll_body(body, sizeof body))
        return 0;
    kws_reply r;
    int ok = 0;
    if (kws_request(srv.port, "POST", "/api/auth/enroll", NULL, body, strlen(body), &r) &&
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
    if (!ok)
        return 0;
    kw_identity_config cfg = {KW_ROLE_MEMBER, NULL, NULL, NULL, 0};
    if (kw_store_mem_new(&m->store) != KW_OK)
        return 0;
    cfg.store = m->store;
    return kw_identity_open(&cfg, &m->id, NULL) == KW_OK &&
           kw_keys_setup(m->id, kws_now_ms(), NULL, NULL, NULL, NULL) == KW_OK &&
           kw_keys_identity(m->id, &m->pub, NULL) == KW_OK &&
           kw_keys_signed_pre_key(m->id, &m->spk, NULL) == KW_OK;
}

static void member_free(member *m)
{
    kw_identity_free(m->id);
    kw_store_free(m->store);
    m->id = NULL;
    m->store = NULL;
}

static const char *b64(const uint8_t *data, size_t n, char *out, size_t cap)
{
    if (kw_base64_encode(data, n, out, cap) != KW_OK)
        out[0] = '\0';
    return out;
}

static void identity_body(const member *m, char *out, size_t cap)
{
    char key[64];
    snprintf(out, cap, "{\"identity_key\":\"%s\",\"registration_id\":%u}",
             b64(m->pub.identity_key, KW_PUBKEY_BYTES, key, sizeof key), m->pub.registration_id);
}

static void signed_prekey_body(const member *m, char *out, size_t cap)
{
    char key[64], sig[128];
    snprintf(out, cap, "{\"id\":%u,\"public_key\":\"%s\",\"signature\":\"%s\"}", m->spk.id,
             b64(m->spk.public_key, KW_PUBKEY_BYTES, key, sizeof key),
             b64(m->spk.signature, KW_SIGNATURE_BYTES, sig, sizeof sig));
}

/* {"pre_keys":[one key]} with a fresh id (member and guest uploads share the format). */
static void prekey_body(char *out, size_t cap)
{
    static unsigned next_id = 50000;
    snprintf(out, cap,
             "{\"pre_keys\":[{\"id\":%u,\"public_key\":"
             "\"BUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\"}]}",
             next_id++);
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

static bool call(const member *m, const char *method, const char *target, const char *body,
                 kws_reply *r)
{
    memset(r, 0, sizeof *r);
    static char req[70000];
    size_t n = signed_request(m, method, target, body, req, sizeof req);
    int fd = n ? kws_connect(srv.port) : -1;
    if (fd < 0)
        return false;
    kws_buf b = {0};
    bool ok = kws_send_all(fd, req, n) && kws_read_reply(fd, &b, strcmp(method, "HEAD") == 0, r);
    kws_buf_free(&b);
    close(fd);
    return ok;
}

static int json_field(const kws_reply *r, const char *field, char *out, size_t cap)
{
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    const char *v = json_string_value(json_object_get(j, field));
    if (v != NULL)
        snprintf(out, cap, "%s", v);
    json_decref(j);
    return v != NULL;
}

/* Sends a signed request and checks its status; prints the reply otherwise. */
static int expect(const member *m, const char *method, const char *target, const char *body,
                  int status, const char *field, char *out, size_t cap)
{
    kws_reply r;
    int ok = call(m, method, target, body, &r) && r.status == status &&
             (field == NULL || json_field(&r, field, out, cap));
    if (!ok)
        printf("    setup %s %s: %d %s\n", method, target, r.status, r.body ? r.body : "");
    kws_reply_free(&r);
    return ok;
}

static int upload_keys(const member *m)
{
    char body[512];
    identity_body(m, body, sizeof body);
    if (!expect(m, "PUT", "/api/keys/identity", body, 200, NULL, NULL, 0))
        return 0;
    signed_prekey_body(m, body, sizeof body);
    return expect(m, "PUT", "/api/keys/signed-prekey", body, 200, NULL, NULL, 0);
}

/* ---- guests ------------------------------------------------------------------------- */

typedef struct guest {
    char session_id[40], secret[48], meeting_id[64];
} guest;

/* A registration body for a fresh guest identity with token. Caller frees. */
static char *registration_body(const char *token)
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
        json_object_set_new(j, "display_name", json_string("Visitor"));
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    free(doc);
    kw_identity_free(id);
    kw_store_free(store);
    return text;
}

static int register_guest(const char *token, guest *g)
{
    char *body = registration_body(token);
    kws_reply r;
    memset(&r, 0, sizeof r);
    int ok = body != NULL &&
             kws_request(srv.port, "POST", "/api/meetings/external/register", NULL, body,
                         strlen(body), &r) &&
             r.status == 201 && json_field(&r, "session_id", g->session_id, sizeof g->session_id) &&
             json_field(&r, "guest_secret", g->secret, sizeof g->secret) &&
             json_field(&r, "meeting_id", g->meeting_id, sizeof g->meeting_id);
    if (!ok)
        printf("    setup register: %d %s\n", r.status, r.body ? r.body : "");
    kws_reply_free(&r);
    free(body);
    return ok;
}

/* ---- fixtures ----------------------------------------------------------------------- */

typedef struct fixture {
    char meeting[64], token[40], channel[64];
    guest a, b, d; /* a waits (never asked for admission), b is admitted, d declined */
} fixture;

static char meeting_n[64], token_n[40];
static guest guest_c;

static int create_meeting(const member *m, char out[64])
{
    return expect(m, "POST", "/api/meetings",
                  "{\"title\":\"Matrix\",\"start_time\":\"2026-01-01T10:00:00Z\","
                  "\"end_time\":\"2030-01-01T11:00:00Z\",\"allow_external\":true}",
                  201, "meeting_id", out, 64);
}

static int add_participant(const char *meeting, const member *who, const char *role)
{
    char path[160], body[256];
    snprintf(path, sizeof path, "/api/meetings/%s/participants", meeting);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"%s\"}", who->user_id, role);
    return expect(&owner, "POST", path, body, 200, NULL, NULL, 0);
}

static int add_channel_member(const char *channel, const member *who)
{
    char path[160], body[256];
    snprintf(path, sizeof path, "/api/channels/%s/members", channel);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", who->user_id);
    return expect(&owner, "POST", path, body, 200, NULL, NULL, 0);
}

static int fixture_make(fixture *f)
{
    memset(f, 0, sizeof *f);
    char path[200];
    if (!create_meeting(&owner, f->meeting) || !add_participant(f->meeting, &manager, "manager") ||
        !add_participant(f->meeting, &plain, "member") ||
        !add_participant(f->meeting, &erin, "member"))
        return 0;
    snprintf(path, sizeof path, "/api/meetings/%s/invitations", f->meeting);
    if (!expect(&owner, "POST", path, "{}", 201, "token", f->token, sizeof f->token) ||
        !expect(&owner, "POST", "/api/channels", "{\"name\":\"room\",\"type\":\"signal\"}", 201,
                "channel_id", f->channel, sizeof f->channel) ||
        !add_channel_member(f->channel, &plain) || !add_channel_member(f->channel, &manager) ||
        !register_guest(f->token, &f->a) || !register_guest(f->token, &f->b) ||
        !register_guest(f->token, &f->d))
        return 0;
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/admit", f->meeting, f->b.session_id);
    if (!expect(&owner, "POST", path, NULL, 200, NULL, NULL, 0))
        return 0;
    snprintf(path, sizeof path, "/api/meetings/%s/external/%s/decline", f->meeting,
             f->d.session_id);
    return expect(&owner, "POST", path, NULL, 200, NULL, NULL, 0);
}

static const member *member_of(int c)
{
    switch (c) {
    case AZ_OUTSIDER:
        return &outsider;
    case AZ_MEMBER:
        return &plain;
    case AZ_MANAGER:
        return &manager;
    case AZ_OWNER:
        return &owner;
    default:
        return NULL;
    }
}

static const guest *guest_of(int c, const fixture *f)
{
    switch (c) {
    case AZ_GUEST_OTHER:
        return &guest_c;
    case AZ_GUEST_SELF:
        return &f->a;
    case AZ_GUEST_ADMIT:
        return &f->b;
    case AZ_GUEST_DECLINED:
        return &f->d;
    default:
        return NULL;
    }
}

/* The value of placeholder {k} for caller c, or NULL when k is unknown. */
static const char *placeholder(char k, int c, const fixture *f)
{
    const member *m = member_of(c);
    switch (k) {
    case 'M':
        return f->meeting;
    case 'N':
        return meeting_n;
    case 'T':
        return f->token;
    case 'C':
        return f->channel;
    case 'S':
        return c == AZ_GUEST_ADMIT      ? f->b.session_id
               : c == AZ_GUEST_DECLINED ? f->d.session_id
                                        : f->a.session_id;
    case 'G':
        return guest_of(c, f) ? guest_of(c, f)->session_id : f->a.session_id;
    case 'A':
        return f->a.session_id;
    case 'B':
        return f->b.session_id;
    case 'X':
        return guest_c.session_id;
    case 'K':
        return token_n;
    case 'E':
        return erin.user_id;
    case 'Y':
        return m ? m->user_id : erin.user_id;
    case 'O':
        return owner.user_id;
    case 'P':
        return owner.device_id;
    case 'U':
        return keyholder.user_id;
    case 'D':
        return keyholder.device_id;
    default:
        return NULL;
    }
}

static void expand(const char *in, int c, const fixture *f, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p != '\0' && o + 1 < cap;) {
        const char *v = NULL;
        if (p[0] == '{' && p[1] != '\0' && p[2] == '}')
            v = placeholder(p[1], c, f);
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

/* The body of row for caller c: malloc'd (caller frees), NULL for none; *ok = 0 on failure. */
static char *row_body(const az_row *row, int c, const fixture *f, int *ok)
{
    *ok = 1;
    if (row->body == NULL)
        return NULL;
    const member *m = member_of(c) ? member_of(c) : &owner;
    char buf[1024];
    if (strcmp(row->body, "REG") == 0) {
        char *b = registration_body(f->token);
        *ok = b != NULL;
        return b;
    }
    if (strcmp(row->body, "ENROLL") == 0)
        *ok = enroll_body(buf, sizeof buf);
    else if (strcmp(row->body, "IDK") == 0)
        identity_body(m, buf, sizeof buf);
    else if (strcmp(row->body, "SPK") == 0)
        signed_prekey_body(m, buf, sizeof buf);
    else if (strcmp(row->body, "PK") == 0 || strcmp(row->body, "GPK") == 0)
        prekey_body(buf, sizeof buf);
    else
        expand(row->body, c, f, buf, sizeof buf);
    return strdup(buf);
}

/* The error token of a reply, copied into out ("" when there is none). */
static void error_token(const kws_reply *r, char *out, size_t cap)
{
    out[0] = '\0';
    json_field(r, "error", out, cap);
}

/* A refusal must say why with the right token: 401 for missing credentials (a signed
 * member request where a bearer is wanted is "unauthorized", a bearer or nothing where
 * a signature is wanted "missing_auth_headers"), 403 "forbidden". A 401 with another
 * token (invalid_signature, ...) would mean this test's credentials are broken. */
static int refusal_ok(const char *method, int status, const kws_reply *r)
{
    if (strcmp(method, "HEAD") == 0)
        return 1; /* no body to read the token from */
    char token[64];
    error_token(r, token, sizeof token);
    if (status == 401)
        return strcmp(token, "unauthorized") == 0 || strcmp(token, "missing_auth_headers") == 0;
    if (status == 403)
        return strcmp(token, "forbidden") == 0;
    if (status == 404 || status == 405)
        return strcmp(token, status == 404 ? "not_found" : "method_not_allowed") == 0 ||
               strcmp(token, "not_present") == 0;
    return 1;
}

/* Sends one cell's request as caller c; the status, or -1 when no reply came. */
static int send_as(int c, const fixture *f, const char *method, const char *target,
                   const char *body, kws_reply *r)
{
    memset(r, 0, sizeof *r);
    const member *m = member_of(c);
    const guest *g = guest_of(c, f);
    bool sent;
    if (m != NULL) {
        sent = call(m, method, target, body, r);
    } else {
        char headers[128] = "";
        if (g != NULL)
            snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", g->secret);
        sent = kws_request(srv.port, method, target, headers, body, body ? strlen(body) : 0, r);
    }
    return sent ? r->status : -1;
}

/* ---- tests -------------------------------------------------------------------------- */

static fixture shared;
static int ready;

static void server_starts_with_members_meetings_and_guests(void)
{
    if (!KWT_CHECK(kws_start(&srv, "main", server_env)))
        return;
    member *all[] = {&owner, &manager, &plain, &outsider, &erin, &keyholder};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!KWT_CHECK(add_member(all[i])) || !KWT_CHECK(upload_keys(all[i])))
            return;
    char path[160];
    if (!KWT_CHECK(create_meeting(&keyholder, meeting_n)))
        return;
    snprintf(path, sizeof path, "/api/meetings/%s/invitations", meeting_n);
    if (!KWT_CHECK(expect(&keyholder, "POST", path, "{}", 201, "token", token_n, sizeof token_n)) ||
        !KWT_CHECK(register_guest(token_n, &guest_c)) || !KWT_CHECK(fixture_make(&shared)))
        return;
    ready = 1;
}

static void authorization_matrix(void)
{
    if (!KWT_CHECK(ready))
        return;
    int64_t t0 = kws_now_ms();
    const char *v = getenv("AUTHZ_VERBOSE"); /* print every cell */
    int verbose = v != NULL && v[0] == '1';
    size_t cells = 0, mismatches = 0;
    for (size_t i = 0; i < AZ_N_ROWS; i++) {
        const az_row *row = &az_rows[i];
        for (int c = 0; c < AZ_N_CALLERS; c++) {
            fixture fresh;
            const fixture *f = &shared;
            if (row->fresh) {
                if (!KWT_CHECK(fixture_make(&fresh)))
                    continue;
                f = &fresh;
            }
            char target[512];
            expand(row->target, c, f, target, sizeof target);
            int ok = 0;
            char *body = row_body(row, c, f, &ok);
            if (!KWT_CHECK(ok)) {
                free(body);
                continue;
            }
            kws_reply r;
            int got = send_as(c, f, row->method, target, body, &r);
            cells++;
            if (verbose)
                printf("    cell %s %s as %s: %d %.*s\n", row->method, target, az_caller_names[c],
                       got,
                       r.body ? (int)strcspn(r.body, "\n") < 120 ? (int)strcspn(r.body, "\n") : 120
                              : 0,
                       r.body ? r.body : "");
            if (!KWT_CHECK(got == row->want[c] && refusal_ok(row->method, got, &r))) {
                mismatches++;
                printf("    MISMATCH %s %s (row %zu) as %s: got %d, want %d: %.200s\n", row->method,
                       row->target, i, az_caller_names[c], got, row->want[c], r.body ? r.body : "");
            }
            kws_reply_free(&r);
            free(body);
        }
    }
    printf("    matrix: %zu rows x %d callers = %zu cells, %zu mismatches, %lld ms\n", AZ_N_ROWS,
           AZ_N_CALLERS, cells, mismatches, (long long)(kws_now_ms() - t0));
}

/* The table is the spec, so check it can fail: every route (pattern and method) has a
 * cell some caller passes and, unless the route is public, a cell some caller is refused
 * (401 or 403); a member-only or guest-only row refuses the anonymous caller, and a guest
 * row refuses the other meeting's guest with 403. */
static void table_rows_can_fail(void)
{
    for (size_t i = 0; i < AZ_N_ROWS; i++) {
        const az_row *row = &az_rows[i];
        if (row->pattern == NULL) {
            for (int c = 0; c < AZ_N_CALLERS; c++)
                KWT_CHECK(row->want[c] == 404 || row->want[c] == 405);
            continue;
        }
        int refused = 0, allowed = 0, public = 1;
        for (size_t k = 0; k < AZ_N_ROWS; k++) {
            const az_row *o = &az_rows[k];
            if (o->pattern == NULL || strcmp(o->pattern, row->pattern) != 0 ||
                strcmp(o->method, row->method) != 0)
                continue;
            if (o->want[AZ_ANON] == 401)
            public = 0;
            for (int c = 0; c < AZ_N_CALLERS; c++) {
                if (o->want[c] == 401 || o->want[c] == 403)
                    refused++;
                else
                    allowed++;
            }
        }
        if (!KWT_CHECK(allowed > 0 && (public || refused > 0)))
            printf("    row %zu %s %s: allowed %d refused %d\n", i, row->method, row->target,
                   allowed, refused);
        if (row->want[AZ_OWNER] == 401) /* a guest route: the other meeting's guest is refused */
            KWT_EQ(row->want[AZ_GUEST_OTHER], 403);
    }
}

static void server_stops(void)
{
    if (srv.pid > 0)
        KWT_EQ(kws_stop(&srv, SIGTERM), 0);
    member *all[] = {&owner, &manager, &plain, &outsider, &erin, &keyholder};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        member_free(all[i]);
}

int main(void)
{
    if (!kws_init("authz"))
        return 1;
    KWT_RUN(table_rows_can_fail);
    KWT_RUN(server_starts_with_members_meetings_and_guests);
    KWT_RUN(authorization_matrix);
    KWT_RUN(server_stops);
    return kws_finish();
}
