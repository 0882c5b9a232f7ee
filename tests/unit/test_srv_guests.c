/*
 * test_srv_guests.c — guest sessions through the store (db_guests.h), the bearer
 * authenticator (kw_auth_guest), the guest route handlers called directly (so the
 * presence-dependent paths, which need a registered video participant, are reachable
 * without the realtime layer) and the housekeeping tick with a controlled clock.
 *
 * Covers: registration (ids and secret shapes, secret stored only as SHA-256, invitation
 * checks in order, allow_external, max_uses counted in the transaction, replacing the
 * identity's own waiting session without counting a use, bundle verification, nothing
 * changed on failure), authentication and its expiry boundary, pre-keys, bundle
 * consumption (INV-2), admission (first decision wins, INV-3), request-admission with
 * presence and its 5 s window, the guest's fetch of a present member's bundle, the
 * LiveKit token only once admitted (INV-4), deletion with the meeting (INV-9) and cleanup
 * (INV-10).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "auth.h"
#include "cleanup.h"
#include "crypto.h"
#include "db.h"
#include "db_guests.h"
#include "db_meetings.h"
#include "db_members.h"
#include "http.h"
#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/identity.h"
#include "keywave/store.h"
#include "kwtest.h"
#include "presence.h"
#include "rate_limit.h"
#include "server.h"

#define NOW    1763800000000LL
#define DAY_MS (24LL * 60 * 60 * 1000)

extern const kw_route kw_routes_guests[];

static char dir[256];
static kw_db *db;
static kw_server srv;

#define G (db->guests)

/* ---- fixtures ------------------------------------------------------------------------- */

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

/* Runs SQL on a separate connection; returns the first column of the first row, or -1. */
static long long raw_int(const char *sql)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/keywave.db", dir);
    sqlite3 *c = NULL;
    long long v = -1;
    if (sqlite3_open(path, &c) == SQLITE_OK) {
        sqlite3_busy_timeout(c, 5000);
        sqlite3_exec(c, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK) {
            int r = sqlite3_step(st);
            if (r == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
            else if (r == SQLITE_DONE)
                v = 0;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(c);
    return v;
}

static long long count_where(const char *table, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s", table, where);
    return raw_int(sql);
}

/* A user (and its first device) named name; user_id out. */
static int add_user(const char *name, char user_id[KW_DB_ID_MAX + 1])
{
    char code[KW_ENROLL_CODE_CHARS + 1];
    kw_db_enrollment e;
    kw_error err;
    int ok = db->members->user_add(db->ctx, name, NOW, user_id, code, &err) == KW_OK &&
             db->members->enroll(db->ctx, code, "laptop", NOW, &e, &err) == KW_OK;
    kw_wipe(&e, sizeof e);
    return ok;
}

static char owner[KW_DB_ID_MAX + 1], member[KW_DB_ID_MAX + 1], outsider[KW_DB_ID_MAX + 1];
static kw_db_meeting meeting, closed_meeting, other_meeting;
static char token[KW_INVITATION_TOKEN_CHARS + 1];       /* to meeting, unlimited */
static char other_token[KW_INVITATION_TOKEN_CHARS + 1]; /* to other_meeting */

static int make_meeting(int allow_external, int instant, kw_db_meeting *out)
{
    kw_db_meeting in;
    memset(&in, 0, sizeof in);
    snprintf(in.title, sizeof in.title, "Weekly");
    in.start_ms = NOW;
    in.end_ms = NOW + DAY_MS;
    in.allow_external = allow_external;
    in.is_instant_call = instant;
    snprintf(in.created_by, sizeof in.created_by, "%s", owner);
    kw_error err;
    return db->meetings->meeting_create(db->ctx, &in, NOW, out, &err) == KW_OK;
}

static int make_invitation(const kw_db_meeting *m, int64_t expires_ms, int64_t max_uses,
                           char out[KW_INVITATION_TOKEN_CHARS + 1])
{
    kw_db_invitation inv;
    kw_error err;
    if (db->meetings->invitation_create(db->ctx, m->meeting_id, owner, NULL, expires_ms, max_uses,
                                        NOW, &inv, &err) != KW_OK)
        return 0;
    memcpy(out, inv.token, KW_INVITATION_TOKEN_CHARS + 1);
    return 1;
}

/* A guest's keys: a real identity, so the signed pre-key verifies. */
typedef struct guest_keys {
    kw_store *store;
    kw_identity *id;
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    kw_db_prekey pre[KW_GUEST_PREKEYS_AT_REGISTRATION];
} guest_keys;

static int keys_new(guest_keys *k)
{
    memset(k, 0, sizeof *k);
    kw_identity_config cfg = {KW_ROLE_GUEST, NULL, NULL, NULL, 0};
    if (kw_store_mem_new(&k->store) != KW_OK)
        return 0;
    cfg.store = k->store;
    for (uint32_t i = 0; i < KW_GUEST_PREKEYS_AT_REGISTRATION; i++) {
        k->pre[i].id = 100 + i;
        memset(k->pre[i].public_key, (int)(0x20 + i), KW_PUBKEY_BYTES);
        k->pre[i].public_key[0] = 0x05;
    }
    return kw_identity_open(&cfg, &k->id, NULL) == KW_OK &&
           kw_keys_setup(k->id, NOW, NULL, NULL, NULL, NULL) == KW_OK &&
           kw_keys_identity(k->id, &k->pub, NULL) == KW_OK &&
           kw_keys_signed_pre_key(k->id, &k->spk, NULL) == KW_OK;
}

static void keys_free(guest_keys *k)
{
    kw_identity_free(k->id);
    kw_store_free(k->store);
}

static kw_db_guest_registration reg_of(const guest_keys *k, const char *tok, const char *name)
{
    kw_db_guest_registration r;
    memset(&r, 0, sizeof r);
    r.invitation_token = tok;
    r.display_name = name;
    memcpy(r.identity_key, k->pub.identity_key, KW_PUBKEY_BYTES);
    r.registration_id = k->pub.registration_id;
    r.signed_pre_key_id = k->spk.id;
    memcpy(r.signed_pre_key, k->spk.public_key, KW_PUBKEY_BYTES);
    memcpy(r.signed_pre_key_signature, k->spk.signature, KW_SIGNATURE_BYTES);
    r.pre_keys = k->pre;
    r.n_pre_keys = KW_GUEST_PREKEYS_AT_REGISTRATION;
    return r;
}

static kw_err register_as(const guest_keys *k, const char *tok, int64_t now,
                          kw_db_guest_created *out)
{
    kw_db_guest_registration r = reg_of(k, tok, "Guest");
    kw_error err;
    return G->register_guest(db->ctx, &r, now, out, &err);
}

static long long invitation_uses(const char *tok)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT uses FROM invitations WHERE token = '%s'", tok);
    return raw_int(sql);
}

/* ---- calling handlers ----------------------------------------------------------------- */

static kw_handler handler_of(kw_method method, const char *pattern)
{
    for (const kw_route *r = kw_routes_guests; r->pattern != NULL; r++)
        if (r->method == method && strcmp(r->pattern, pattern) == 0)
            return r->handler;
    return NULL;
}

typedef struct call_result {
    kw_err rc;
    unsigned status;
    json_t *body; /* parsed reply, or NULL */
    int64_t retry_after_s;
} call_result;

static void result_free(call_result *c)
{
    json_decref(c->body);
    memset(c, 0, sizeof *c);
}

/* Runs a handler as caller with the given path parameters and body at now. */
static call_result run(kw_method method, const char *pattern, const kw_caller *caller,
                       const char *const *params, size_t n_params, const char *body, int64_t now)
{
    call_result out;
    memset(&out, 0, sizeof out);
    kw_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.method_name = method == KW_GET ? "GET" : method == KW_POST ? "POST" : "DELETE";
    req.path = req.target = pattern;
    req.query = "";
    req.body = (const uint8_t *)body;
    req.body_len = body ? strlen(body) : 0;
    for (size_t i = 0; i < n_params; i++)
        req.params[i] = params[i];
    req.n_params = n_params;
    req.now_ms = now;
    req.caller = *caller;
    kw_response res;
    kw_response_init(&res);
    kw_error err;
    kw_error_clear(&err);
    kw_handler h = handler_of(method, pattern);
    if (!KWT_CHECK(h != NULL)) {
        out.rc = KW_ERR_INTERNAL;
        return out;
    }
    out.rc = h(&srv, &req, &res, &err);
    out.status = out.rc == KW_OK ? res.status : kw_http_status(out.rc);
    out.retry_after_s = res.retry_after_s;
    if (res.body != NULL)
        out.body = json_loadb(res.body, res.body_len, 0, NULL);
    kw_response_free(&res);
    return out;
}

static kw_caller member_caller(const char *user_id, const char *device_id)
{
    kw_caller c;
    memset(&c, 0, sizeof c);
    c.kind = KW_CALLER_MEMBER;
    snprintf(c.user_id, sizeof c.user_id, "%s", user_id);
    snprintf(c.device_id, sizeof c.device_id, "%s", device_id);
    return c;
}

/* The caller kw_auth_guest makes of a bearer secret (checks it authenticates). */
static kw_caller guest_caller(const char *secret, int64_t now)
{
    char header[128];
    snprintf(header, sizeof header, "Bearer %s", secret);
    kw_request req;
    memset(&req, 0, sizeof req);
    req.authorization = header;
    req.now_ms = now;
    kw_error err;
    KWT_ERR(kw_auth_guest(&srv, &req, &err), KW_OK);
    return req.caller;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void registration_creates_a_session(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    KWT_EQ(strlen(c.session_id), 32);
    KWT_EQ(strspn(c.session_id, "0123456789abcdef"), 32);
    KWT_EQ(strlen(c.guest_secret), 43);
    KWT_EQ(
        strspn(c.guest_secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        43);
    KWT_STREQ(c.meeting_id, meeting.meeting_id);
    KWT_EQ(c.expires_ms, NOW + DAY_MS);
    KWT_EQ(c.replaced, 0);
    KWT_EQ(invitation_uses(token), 1);
    /* The secret is kept only as its SHA-256. */
    uint8_t h[KW_SHA256_BYTES];
    char hexed[2 * KW_SHA256_BYTES + 1], where[256];
    KWT_ERR(kw_sha256((const uint8_t *)c.guest_secret, 43, h), KW_OK);
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(hexed + 2 * i, 3, "%02X", h[i]);
    snprintf(where, sizeof where, "session_id = '%s' AND secret_hash = X'%s'", c.session_id, hexed);
    KWT_EQ(count_where("guest_sessions", where), 1);
    snprintf(where, sizeof where, "instr(CAST(secret_hash AS TEXT), '%s') > 0", c.guest_secret);
    KWT_EQ(count_where("guest_sessions", where), 0);
    size_t n = 0;
    kw_error err;
    KWT_ERR(G->prekeys_count(db->ctx, c.session_id, &n, &err), KW_OK);
    KWT_EQ(n, 30);
    kw_db_guest g;
    KWT_ERR(G->get(db->ctx, c.session_id, &g, &err), KW_OK);
    KWT_EQ(g.status, KW_GUEST_REGISTERED);
    KWT_STREQ(g.display_name, "Guest");
    keys_free(&k);
}

/* Every failure changes nothing: no session, no use counted. */
static void registration_failures_change_nothing(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    char expired[33], revoked[33], exhausted[33], closed[33];
    KWT_CHECK(make_invitation(&meeting, NOW + 1000, 0, expired));
    KWT_CHECK(make_invitation(&meeting, NOW + 1000, 0, revoked));
    KWT_CHECK(make_invitation(&meeting, 0, 1, exhausted));
    kw_error err;
    /* Invitations are made while a meeting admits guests; then it stops admitting them. */
    kw_db_meeting_patch close;
    memset(&close, 0, sizeof close);
    close.has_allow_external = 1;
    close.allow_external = 0;
    KWT_CHECK(make_invitation(&closed_meeting, 0, 0, closed));
    KWT_ERR(db->meetings->meeting_update(db->ctx, closed_meeting.meeting_id, &close, NULL, &err),
            KW_OK);
    KWT_ERR(db->meetings->invitation_revoke(db->ctx, meeting.meeting_id, revoked, NOW, &err),
            KW_OK);
    guest_keys first;
    kw_db_guest_created c;
    KWT_CHECK(keys_new(&first));
    KWT_ERR(register_as(&first, exhausted, NOW, &c), KW_OK); /* uses the only use */
    keys_free(&first);
    long long sessions = count_where("guest_sessions", "1");
    static const char name65[] =
        "12345678901234567890123456789012345678901234567890123456789012345";
    struct {
        const char *tok, *name;
        int64_t now;
        int spoil; /* 1 signature, 2 29 pre-keys, 3 repeated id, 4 key prefix */
        kw_err want;
    } cases[] = {
        {"00000000000000000000000000000000", "Guest", NOW, 0, KW_ERR_UNKNOWN_INVITATION},
        {"not-even-hex", "Guest", NOW, 0, KW_ERR_UNKNOWN_INVITATION},
        {revoked, "Guest", NOW, 0, KW_ERR_INVITATION_REVOKED},
        {expired, "Guest", NOW + 999, 0, KW_OK}, /* boundary: one ms before */
        {expired, "Guest", NOW + 1000, 0, KW_ERR_INVITATION_EXPIRED},
        {exhausted, "Guest", NOW, 0, KW_ERR_INVITATION_EXHAUSTED},
        {closed, "Guest", NOW, 0, KW_ERR_FORBIDDEN},
        {token, "", NOW, 0, KW_ERR_INVALID_ARGUMENT},
        {token, name65, NOW, 0, KW_ERR_INVALID_ARGUMENT},
        {token, "bad\nname", NOW, 0, KW_ERR_INVALID_ARGUMENT},
        {token, "Guest", NOW, 1, KW_ERR_INVALID_SIGNATURE},
        {token, "Guest", NOW, 2, KW_ERR_INVALID_ARGUMENT},
        {token, "Guest", NOW, 3, KW_ERR_INVALID_ARGUMENT},
        {token, "Guest", NOW, 4, KW_ERR_INVALID_KEY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        guest_keys fresh;
        if (!KWT_CHECK(keys_new(&fresh)))
            continue;
        kw_db_guest_registration r = reg_of(&fresh, cases[i].tok, cases[i].name);
        if (cases[i].spoil == 1)
            r.signed_pre_key_signature[5] ^= 1;
        if (cases[i].spoil == 2)
            r.n_pre_keys = 29;
        if (cases[i].spoil == 3)
            fresh.pre[7].id = fresh.pre[3].id;
        if (cases[i].spoil == 4)
            fresh.pre[2].public_key[0] = 0x04;
        long long uses_before = invitation_uses(cases[i].tok);
        kw_err rc = G->register_guest(db->ctx, &r, cases[i].now, &c, &err);
        if (rc != cases[i].want)
            printf("    case %zu\n", i);
        KWT_ERR(rc, cases[i].want);
        if (rc == KW_OK) {
            sessions++;
            KWT_EQ(invitation_uses(cases[i].tok), uses_before + 1);
        } else {
            KWT_EQ(invitation_uses(cases[i].tok), uses_before);
            KWT_EQ(c.session_id[0], '\0');
            KWT_CHECK(strstr(err.detail, cases[i].tok) == NULL ||
                      cases[i].tok[0] == '\0'); /* INV-8 */
        }
        KWT_EQ(count_where("guest_sessions", "1"), sessions);
        keys_free(&fresh);
    }
    /* 64 characters of 4 bytes each are allowed. */
    char wide[4 * 64 + 1];
    for (int i = 0; i < 64; i++)
        memcpy(wide + 4 * i, "\xF0\x9F\x98\x80", 4);
    wide[4 * 64] = '\0';
    kw_db_guest_registration r = reg_of(&k, token, wide);
    KWT_ERR(G->register_guest(db->ctx, &r, NOW, &c, &err), KW_OK);
    keys_free(&k);
}

/* The identity's own waiting session is replaced, without counting a use; nobody else's. */
static void second_registration_replaces_the_waiting_session(void)
{
    char limited[33];
    KWT_CHECK(make_invitation(&meeting, 0, 2, limited));
    guest_keys k, other;
    if (!KWT_CHECK(keys_new(&k) && keys_new(&other)))
        return;
    kw_db_guest_created a, b, o, d;
    kw_error err;
    KWT_ERR(register_as(&k, limited, NOW, &a), KW_OK);
    KWT_ERR(register_as(&other, limited, NOW, &o), KW_OK);
    KWT_EQ(invitation_uses(limited), 2); /* exhausted now */
    KWT_ERR(register_as(&k, limited, NOW + 10, &b), KW_OK);
    KWT_EQ(b.replaced, 1);
    KWT_EQ(invitation_uses(limited), 2);
    KWT_CHECK(strcmp(a.session_id, b.session_id) != 0);
    KWT_CHECK(strcmp(a.guest_secret, b.guest_secret) != 0);
    kw_db_guest g;
    uint8_t h[32];
    KWT_ERR(kw_sha256((const uint8_t *)a.guest_secret, 43, h), KW_OK);
    KWT_ERR(G->authenticate(db->ctx, h, NOW + 20, &g, &err), KW_ERR_UNAUTHORIZED);
    KWT_ERR(G->get(db->ctx, a.session_id, &g, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(kw_sha256((const uint8_t *)b.guest_secret, 43, h), KW_OK);
    KWT_ERR(G->authenticate(db->ctx, h, NOW + 20, &g, &err), KW_OK);
    KWT_ERR(G->get(db->ctx, o.session_id, &g, &err), KW_OK); /* the other guest is untouched */
    /* An admitted session is not replaced: a new registration is a new use (none left). */
    KWT_ERR(
        G->decide(db->ctx, meeting.meeting_id, b.session_id, 1, owner, NULL, NOW + 30, &g, &err),
        KW_OK);
    KWT_ERR(register_as(&k, limited, NOW + 40, &d), KW_ERR_INVITATION_EXHAUSTED);
    KWT_ERR(register_as(&k, token, NOW + 40, &d), KW_OK);
    KWT_EQ(d.replaced, 0);
    KWT_ERR(G->get(db->ctx, b.session_id, &g, &err), KW_OK);
    /* The same identity in another meeting is another session. */
    KWT_ERR(register_as(&k, other_token, NOW + 50, &d), KW_OK);
    KWT_EQ(d.replaced, 0);
    keys_free(&k);
    keys_free(&other);
}

static void auth_guest_reads_the_bearer(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    char good[80], lower[80], spaced[80], wrong[80], longer[80];
    snprintf(good, sizeof good, "Bearer %s", c.guest_secret);
    snprintf(lower, sizeof lower, "bearer %s", c.guest_secret);
    snprintf(spaced, sizeof spaced, "Bearer  %s ", c.guest_secret);
    snprintf(wrong, sizeof wrong, "Bearer %s", c.guest_secret);
    wrong[7] = wrong[7] == 'A' ? 'B' : 'A';
    snprintf(longer, sizeof longer, "Bearer %sA", c.guest_secret);
    struct {
        const char *header;
        int64_t now;
        kw_err want;
    } cases[] = {
        {good, NOW, KW_OK},
        {lower, NOW, KW_OK},
        {spaced, NOW, KW_OK},
        {good, NOW + DAY_MS - 1, KW_OK},
        {good, NOW + DAY_MS, KW_ERR_SESSION_EXPIRED},
        {NULL, NOW, KW_ERR_UNAUTHORIZED},
        {"", NOW, KW_ERR_UNAUTHORIZED},
        {"Basic abc", NOW, KW_ERR_UNAUTHORIZED},
        {"Bearer", NOW, KW_ERR_UNAUTHORIZED},
        {wrong, NOW, KW_ERR_UNAUTHORIZED},
        {longer, NOW, KW_ERR_UNAUTHORIZED},
        {"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", NOW, KW_ERR_UNAUTHORIZED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_request req;
        memset(&req, 0, sizeof req);
        req.authorization = cases[i].header;
        req.now_ms = cases[i].now;
        kw_error err;
        kw_error_clear(&err);
        kw_err rc = kw_auth_guest(&srv, &req, &err);
        if (rc != cases[i].want)
            printf("    case %zu\n", i);
        KWT_ERR(rc, cases[i].want);
        KWT_CHECK(strstr(err.detail, c.guest_secret) == NULL); /* INV-8 */
        if (rc == KW_OK) {
            KWT_EQ(req.caller.kind, KW_CALLER_GUEST);
            KWT_STREQ(req.caller.session_id, c.session_id);
            KWT_STREQ(req.caller.meeting_id, meeting.meeting_id);
        } else {
            KWT_EQ(req.caller.kind, KW_CALLER_ANON);
            KWT_EQ(kw_http_status(rc), 401);
        }
    }
    keys_free(&k);
}

static void prekeys_and_bundle_consumption(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    kw_error err;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    kw_bundle b;
    size_t left = 99;
    /* INV-2: the lowest pre-key first, each once. */
    for (uint32_t i = 0; i < 30; i++) {
        KWT_ERR(G->bundle_take(db->ctx, c.session_id, &b, &left, &err), KW_OK);
        KWT_EQ(b.has_one_time_pre_key, 1);
        KWT_EQ(b.one_time_pre_key_id, 100 + i);
        KWT_EQ(left, 29 - i);
    }
    KWT_STREQ(b.owner, c.session_id);
    KWT_EQ(b.owner_is_guest, 1);
    KWT_EQ(b.device_id, 1);
    KWT_EQ(b.registration_id, k.pub.registration_id);
    KWT_MEMEQ(b.identity_key, k.pub.identity_key, KW_PUBKEY_BYTES);
    KWT_ERR(kw_signature_verify(b.identity_key, b.signed_pre_key, KW_PUBKEY_BYTES,
                                b.signed_pre_key_signature, KW_SIGNATURE_BYTES),
            KW_OK);
    KWT_ERR(G->bundle_take(db->ctx, c.session_id, &b, &left, &err), KW_OK);
    KWT_EQ(b.has_one_time_pre_key, 0);
    KWT_ERR(G->bundle_take(db->ctx, "ffffffffffffffffffffffffffffffff", &b, &left, &err),
            KW_ERR_NOT_FOUND);
    /* Upload: count after; an id stored unused is 409; a consumed id may come back. */
    kw_db_prekey more[2];
    for (int i = 0; i < 2; i++) {
        more[i].id = 500 + (uint32_t)i;
        memset(more[i].public_key, 0x61, KW_PUBKEY_BYTES);
        more[i].public_key[0] = 0x05;
    }
    size_t count = 0;
    KWT_ERR(G->prekeys_add(db->ctx, c.session_id, more, 2, &count, &err), KW_OK);
    KWT_EQ(count, 2);
    KWT_ERR(G->prekeys_add(db->ctx, c.session_id, more + 1, 1, &count, &err), KW_ERR_CONFLICT);
    more[0].id = 100;
    KWT_ERR(G->prekeys_add(db->ctx, c.session_id, more, 1, &count, &err), KW_OK);
    KWT_EQ(count, 3);
    KWT_ERR(G->prekeys_add(db->ctx, "ffffffffffffffffffffffffffffffff", more, 1, &count, &err),
            KW_ERR_NOT_FOUND);
    KWT_ERR(G->remove(db->ctx, c.session_id, &err), KW_OK);
    KWT_ERR(G->remove(db->ctx, c.session_id, &err), KW_ERR_NOT_FOUND);
    char where[256];
    snprintf(where, sizeof where, "session_id = '%s'", c.session_id);
    KWT_EQ(count_where("guest_prekeys", where), 0);
    keys_free(&k);
}

/* INV-3: the first decision is the only one; the rest learn who made it. */
static void inv_3_first_decision_wins(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    kw_error err;
    kw_db_guest g;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    KWT_ERR(
        G->decide(db->ctx, other_meeting.meeting_id, c.session_id, 1, owner, NULL, NOW, &g, &err),
        KW_ERR_NOT_FOUND);
    KWT_ERR(
        G->decide(db->ctx, meeting.meeting_id, c.session_id, 1, member, NULL, NOW + 5, &g, &err),
        KW_OK);
    KWT_EQ(g.status, KW_GUEST_ADMITTED);
    KWT_STREQ(g.decided_by, member);
    KWT_ERR(G->decide(db->ctx, meeting.meeting_id, c.session_id, 1, owner, NULL, NOW + 6, &g, &err),
            KW_ERR_ALREADY_ADMITTED);
    KWT_STREQ(g.decided_by, member);
    KWT_ERR(G->decide(db->ctx, meeting.meeting_id, c.session_id, 0, owner, "no", NOW + 7, &g, &err),
            KW_ERR_ALREADY_ADMITTED);
    KWT_EQ(g.decided_ms, NOW + 5);
    KWT_ERR(G->request_admission(db->ctx, c.session_id, NOW + 8, &g, &err),
            KW_ERR_ALREADY_ADMITTED);
    /* Through the handler: the 409 body names the winner. */
    const char *p[2] = {meeting.meeting_id, c.session_id};
    kw_caller oc = member_caller(owner, "1");
    call_result r = run(KW_POST, "/api/meetings/:id/external/:sid/decline", &oc, p, 2, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_ALREADY_ADMITTED);
    KWT_EQ(r.status, 409);
    KWT_STREQ(json_string_value(json_object_get(r.body, "error")), "already_admitted");
    KWT_STREQ(json_string_value(json_object_get(r.body, "by")), member);
    KWT_STREQ(json_string_value(json_object_get(r.body, "status")), "admitted");
    KWT_CHECK(json_is_string(json_object_get(r.body, "detail")));
    result_free(&r);
    keys_free(&k);
}

static void admission_handlers(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    kw_caller gc = guest_caller(c.guest_secret, NOW);
    kw_caller mc = member_caller(member, "1"), xc = member_caller(outsider, "1");
    const char *p[2] = {meeting.meeting_id, c.session_id};
    const char *wrong_meeting[2] = {other_meeting.meeting_id, c.session_id};
    const char *RA = "/api/meetings/:id/external/:sid/request-admission";
    const char *WAIT = "/api/meetings/:id/external/waiting";
    call_result r;

    /* Nobody present: 409 no_host_present, nothing changes, no window started. */
    r = run(KW_POST, RA, &gc, p, 2, NULL, NOW + 100);
    KWT_ERR(r.rc, KW_ERR_NO_HOST_PRESENT);
    result_free(&r);
    kw_db_guest g;
    kw_error err;
    KWT_ERR(G->get(db->ctx, c.session_id, &g, &err), KW_OK);
    KWT_EQ(g.status, KW_GUEST_REGISTERED);
    /* An outsider's device in the channel is not a host. */
    KWT_ERR(srv.presence->ops->video_register(srv.presence->ctx, meeting.meeting_id, 7, outsider,
                                              "1", NOW),
            KW_OK);
    r = run(KW_POST, RA, &gc, p, 2, NULL, NOW + 200);
    KWT_ERR(r.rc, KW_ERR_NO_HOST_PRESENT);
    result_free(&r);
    /* A member present: accepted, and the 5 s window starts. */
    KWT_ERR(srv.presence->ops->video_register(srv.presence->ctx, meeting.meeting_id, 8, member, "1",
                                              NOW),
            KW_OK);
    r = run(KW_POST, RA, &gc, p, 2, "{}", NOW + 1000);
    KWT_ERR(r.rc, KW_OK);
    KWT_CHECK(json_is_true(json_object_get(r.body, "ok")));
    result_free(&r);
    r = run(KW_POST, RA, &gc, p, 2, NULL, NOW + 5999);
    KWT_ERR(r.rc, KW_ERR_RATE_LIMITED);
    KWT_EQ(r.retry_after_s, 1);
    result_free(&r);
    r = run(KW_POST, RA, &gc, p, 2, NULL, NOW + 1001);
    KWT_EQ(r.retry_after_s, 5);
    result_free(&r);
    r = run(KW_POST, RA, &gc, p, 2, NULL, NOW + 6000);
    KWT_ERR(r.rc, KW_OK);
    result_free(&r);
    /* Fields, another meeting, another session. */
    r = run(KW_POST, RA, &gc, p, 2, "{\"x\":1}", NOW + 20000);
    KWT_ERR(r.rc, KW_ERR_UNKNOWN_FIELD);
    result_free(&r);
    r = run(KW_POST, RA, &gc, wrong_meeting, 2, NULL, NOW + 20000);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    const char *not_mine[2] = {meeting.meeting_id, "ffffffffffffffffffffffffffffffff"};
    r = run(KW_POST, RA, &gc, not_mine, 2, NULL, NOW + 20000);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);

    /* The waiting list: members only. */
    const char *wp[1] = {meeting.meeting_id};
    r = run(KW_GET, WAIT, &xc, wp, 1, NULL, NOW + 7000);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    const char *nowhere[1] = {"mtg_000000000000"};
    r = run(KW_GET, WAIT, &mc, nowhere, 1, NULL, NOW + 7000);
    KWT_ERR(r.rc, KW_ERR_NOT_FOUND);
    result_free(&r);
    r = run(KW_GET, WAIT, &mc, wp, 1, NULL, NOW + 7000);
    KWT_ERR(r.rc, KW_OK);
    json_t *list = json_object_get(r.body, "waiting");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *row = json_array_get(list, i);
        KWT_EQ(json_object_size(row), 3);
        if (strcmp(json_string_value(json_object_get(row, "session_id")), c.session_id) == 0) {
            seen = 1;
            KWT_STREQ(json_string_value(json_object_get(row, "requested_at")),
                      "2025-11-22T08:26:46Z");
        }
    }
    KWT_CHECK(seen);
    result_free(&r);

    /* Admit: members only, no body fields, the caller is admitted_by (INV-3). */
    r = run(KW_POST, "/api/meetings/:id/external/:sid/admit", &xc, p, 2, NULL, NOW + 8000);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    r = run(KW_POST, "/api/meetings/:id/external/:sid/admit", &mc, p, 2,
            "{\"admitted_by\":\"usr_x\"}", NOW + 8000);
    KWT_ERR(r.rc, KW_ERR_UNKNOWN_FIELD);
    result_free(&r);
    r = run(KW_POST, "/api/meetings/:id/external/:sid/admit", &mc, wrong_meeting, 2, NULL,
            NOW + 8000);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN); /* member is no participant of other_meeting */
    result_free(&r);
    r = run(KW_POST, "/api/meetings/:id/external/:sid/admit", &mc, p, 2, "{}", NOW + 8000);
    KWT_ERR(r.rc, KW_OK);
    KWT_STREQ(json_string_value(json_object_get(r.body, "admitted_by")), member);
    result_free(&r);
    r = run(KW_GET, WAIT, &mc, wp, 1, NULL, NOW + 9000);
    for (size_t i = 0; i < json_array_size(json_object_get(r.body, "waiting")); i++)
        KWT_CHECK(strcmp(json_string_value(json_object_get(
                             json_array_get(json_object_get(r.body, "waiting"), i), "session_id")),
                         c.session_id) != 0);
    result_free(&r);
    srv.presence->ops->video_leave(srv.presence->ctx, meeting.meeting_id, 7);
    srv.presence->ops->video_leave(srv.presence->ctx, meeting.meeting_id, 8);
    keys_free(&k);
}

static void decline_takes_a_reason(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    kw_caller oc = member_caller(owner, "1");
    const char *p[2] = {meeting.meeting_id, c.session_id};
    const char *D = "/api/meetings/:id/external/:sid/decline";
    call_result r = run(KW_POST, D, &oc, p, 2, "{\"reason\":5}", NOW);
    KWT_ERR(r.rc, KW_ERR_INVALID_ARGUMENT);
    result_free(&r);
    r = run(KW_POST, D, &oc, p, 2, "{\"declined_by\":\"x\"}", NOW);
    KWT_ERR(r.rc, KW_ERR_UNKNOWN_FIELD);
    result_free(&r);
    const char *unknown[2] = {meeting.meeting_id, "ffffffffffffffffffffffffffffffff"};
    r = run(KW_POST, D, &oc, unknown, 2, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_NOT_FOUND);
    result_free(&r);
    r = run(KW_POST, D, &oc, p, 2, "{\"reason\":\"full\"}", NOW);
    KWT_ERR(r.rc, KW_OK);
    KWT_STREQ(json_string_value(json_object_get(r.body, "declined_by")), owner);
    result_free(&r);
    r = run(KW_POST, "/api/meetings/:id/external/:sid/admit", &oc, p, 2, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_ALREADY_DECLINED);
    KWT_STREQ(json_string_value(json_object_get(r.body, "by")), owner);
    result_free(&r);
    /* A declined guest fetches no keys and gets no token. */
    kw_caller gc = guest_caller(c.guest_secret, NOW);
    const char *bp[3] = {c.session_id, member, "1"};
    r = run(KW_GET, "/api/meetings/external/:sid/participant/:userId/:deviceId/keys", &gc, bp, 3,
            NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    keys_free(&k);
}

/* The guest's fetch of a member device's bundle needs the device present (INV-2 limits). */
static void guest_fetches_a_present_members_bundle(void)
{
    guest_keys k, mk;
    if (!KWT_CHECK(keys_new(&k) && keys_new(&mk)))
        return;
    kw_error err;
    KWT_ERR(db->keys->identity_put(db->ctx, member, 1, mk.pub.identity_key, mk.pub.registration_id,
                                   &err),
            KW_OK);
    KWT_ERR(db->keys->signed_prekey_put(db->ctx, member, 1, mk.spk.id, mk.spk.public_key,
                                        mk.spk.signature, &err),
            KW_OK);
    size_t count = 0;
    KWT_ERR(db->keys->prekeys_add(db->ctx, member, 1, mk.pre, 5, &count, &err), KW_OK);
    kw_db_guest_created c;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    kw_caller gc = guest_caller(c.guest_secret, NOW);
    const char *K = "/api/meetings/external/:sid/participant/:userId/:deviceId/keys";
    const char *bp[3] = {c.session_id, member, "1"};
    call_result r = run(KW_GET, K, &gc, bp, 3, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_NOT_PRESENT);
    KWT_EQ(r.status, 404);
    result_free(&r);
    /* Present in another meeting's channel is not present here. */
    KWT_ERR(srv.presence->ops->video_register(srv.presence->ctx, other_meeting.meeting_id, 9,
                                              member, "1", NOW),
            KW_OK);
    r = run(KW_GET, K, &gc, bp, 3, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_NOT_PRESENT);
    result_free(&r);
    KWT_ERR(srv.presence->ops->video_register(srv.presence->ctx, meeting.meeting_id, 9, member, "1",
                                              NOW),
            KW_OK);
    for (int i = 0; i < 3; i++) {
        r = run(KW_GET, K, &gc, bp, 3, NULL, NOW + 10);
        KWT_ERR(r.rc, KW_OK);
        KWT_STREQ(json_string_value(json_object_get(r.body, "user_id")), member);
        KWT_EQ(
            json_integer_value(json_object_get(json_object_get(r.body, "one_time_pre_key"), "id")),
            100 + i);
        result_free(&r);
    }
    r = run(KW_GET, K, &gc, bp, 3, NULL, NOW + 20);
    KWT_ERR(r.rc, KW_ERR_RATE_LIMITED);
    KWT_CHECK(r.retry_after_s >= 1 && r.retry_after_s <= 60);
    result_free(&r);
    /* Another guest session's path is 403. */
    const char *other[3] = {"ffffffffffffffffffffffffffffffff", member, "1"};
    r = run(KW_GET, K, &gc, other, 3, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    srv.presence->ops->video_leave_all(srv.presence->ctx, 9, NULL, NULL);
    keys_free(&k);
    keys_free(&mk);
}

/* INV-4: a token only once admitted, for its own session and meeting. */
static void inv_4_livekit_token_only_when_admitted(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c;
    kw_error err;
    kw_db_guest g;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    kw_caller gc = guest_caller(c.guest_secret, NOW);
    char body[256], wrong_sid[256], wrong_mid[256];
    snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}", c.session_id,
             meeting.meeting_id);
    snprintf(wrong_sid, sizeof wrong_sid,
             "{\"sessionId\":\"ffffffffffffffffffffffffffffffff\",\"meetingId\":\"%s\"}",
             meeting.meeting_id);
    snprintf(wrong_mid, sizeof wrong_mid, "{\"sessionId\":\"%s\",\"meetingId\":\"%s\"}",
             c.session_id, other_meeting.meeting_id);
    const char *T = "/api/livekit/external-token";
    call_result r = run(KW_POST, T, &gc, NULL, 0, body, NOW);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    KWT_ERR(G->decide(db->ctx, meeting.meeting_id, c.session_id, 1, owner, NULL, NOW, &g, &err),
            KW_OK);
    r = run(KW_POST, T, &gc, NULL, 0, wrong_sid, NOW);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    r = run(KW_POST, T, &gc, NULL, 0, wrong_mid, NOW);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    r = run(KW_POST, T, &gc, NULL, 0, "{\"sessionId\":\"x\"}", NOW);
    KWT_ERR(r.rc, KW_ERR_INVALID_ARGUMENT);
    result_free(&r);
    r = run(KW_POST, "/api/livekit/guest-token", &gc, NULL, 0, body, NOW + DAY_MS - 3600000);
    KWT_ERR(r.rc, KW_OK);
    char identity[64];
    snprintf(identity, sizeof identity, "guest_%s", c.session_id);
    KWT_STREQ(json_string_value(json_object_get(r.body, "identity")), identity);
    KWT_STREQ(json_string_value(json_object_get(r.body, "roomName")), meeting.meeting_id);
    KWT_STREQ(json_string_value(json_object_get(r.body, "url")), "wss://livekit.example");
    /* exp never past the session's expiry: decode the payload. */
    const char *jwt = json_string_value(json_object_get(r.body, "token"));
    const char *dot1 = jwt ? strchr(jwt, '.') : NULL;
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (KWT_CHECK(dot2 != NULL)) {
        char b64[1024];
        size_t n = (size_t)(dot2 - dot1 - 1);
        if (KWT_CHECK(n + 4 < sizeof b64)) {
            memcpy(b64, dot1 + 1, n);
            for (size_t i = 0; i < n; i++)
                b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
            while (n % 4)
                b64[n++] = '=';
            b64[n] = '\0';
            uint8_t payload[1024];
            size_t len = 0;
            KWT_ERR(kw_base64_decode(b64, n, payload, sizeof payload, &len), KW_OK);
            json_t *claims = json_loadb((const char *)payload, len, 0, NULL);
            KWT_EQ(json_integer_value(json_object_get(claims, "exp")), (NOW + DAY_MS) / 1000);
            KWT_CHECK(
                json_is_false(json_object_get(json_object_get(claims, "video"), "canPublishData")));
            json_decref(claims);
        }
    }
    result_free(&r);
    keys_free(&k);
}

/* The members' fetch of a guest bundle through the handler: meeting membership first. */
static void member_fetches_a_guest_bundle(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    kw_db_guest_created c, o;
    KWT_ERR(register_as(&k, token, NOW, &c), KW_OK);
    KWT_ERR(register_as(&k, other_token, NOW, &o), KW_OK);
    const char *K = "/api/meetings/:id/external/:sid/keys";
    kw_caller mc = member_caller(member, "1"), xc = member_caller(outsider, "1");
    const char *p[2] = {meeting.meeting_id, c.session_id};
    const char *elsewhere[2] = {meeting.meeting_id, o.session_id};
    call_result r = run(KW_GET, K, &xc, p, 2, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_FORBIDDEN);
    result_free(&r);
    r = run(KW_GET, K, &mc, elsewhere, 2, NULL, NOW);
    KWT_ERR(r.rc, KW_ERR_NOT_FOUND);
    result_free(&r);
    r = run(KW_GET, K, &mc, p, 2, NULL, NOW);
    KWT_ERR(r.rc, KW_OK);
    KWT_STREQ(json_string_value(json_object_get(r.body, "session_id")), c.session_id);
    KWT_STREQ(json_string_value(json_object_get(r.body, "device_id")), "1");
    KWT_CHECK(json_object_get(r.body, "user_id") == NULL);
    result_free(&r);
    /* An expired session is gone for members too. */
    r = run(KW_GET, K, &mc, p, 2, NULL, NOW + DAY_MS);
    KWT_ERR(r.rc, KW_ERR_NOT_FOUND);
    result_free(&r);
    keys_free(&k);
}

/* INV-9: deleting a meeting deletes its guest sessions and their keys. */
static void inv_9_meeting_deletion_takes_its_guests(void)
{
    kw_db_meeting m;
    char tok[33];
    guest_keys k;
    if (!KWT_CHECK(make_meeting(1, 0, &m) && make_invitation(&m, 0, 0, tok) && keys_new(&k)))
        return;
    kw_db_guest_created c;
    kw_error err;
    KWT_ERR(register_as(&k, tok, NOW, &c), KW_OK);
    char where[256];
    snprintf(where, sizeof where, "session_id = '%s'", c.session_id);
    KWT_EQ(count_where("guest_prekeys", where), 30);
    KWT_ERR(db->meetings->meeting_delete(db->ctx, m.meeting_id, &err), KW_OK);
    KWT_EQ(count_where("guest_sessions", where), 0);
    KWT_EQ(count_where("guest_prekeys", where), 0);
    uint8_t h[32];
    kw_db_guest g;
    KWT_ERR(kw_sha256((const uint8_t *)c.guest_secret, 43, h), KW_OK);
    KWT_ERR(G->authenticate(db->ctx, h, NOW, &g, &err), KW_ERR_UNAUTHORIZED);
    keys_free(&k);
}

/* INV-10: a tick removes expired sessions (boundary: expires == now), keeps the rest. */
static void inv_10_cleanup_tick_removes_expired_sessions(void)
{
    guest_keys k1, k2;
    if (!KWT_CHECK(keys_new(&k1) && keys_new(&k2)))
        return;
    kw_db_guest_created old, young;
    KWT_ERR(register_as(&k1, token, NOW - DAY_MS, &old), KW_OK);
    KWT_ERR(register_as(&k2, token, NOW - DAY_MS + 1000, &young), KW_OK); /* expiry: whole s */
    char w_old[256], w_young[256];
    snprintf(w_old, sizeof w_old, "session_id = '%s'", old.session_id);
    snprintf(w_young, sizeof w_young, "session_id = '%s'", young.session_id);
    KWT_EQ(count_where("guest_sessions", w_old), 1);
    KWT_ERR(kw_cleanup_tick(&srv, NOW), KW_OK);
    KWT_EQ(count_where("guest_sessions", w_old), 0);
    KWT_EQ(count_where("guest_prekeys", w_old), 0);
    KWT_EQ(count_where("guest_sessions", w_young), 1);
    KWT_ERR(kw_cleanup_tick(&srv, NOW + 999), KW_OK);
    KWT_EQ(count_where("guest_sessions", w_young), 1);
    KWT_ERR(kw_cleanup_tick(&srv, NOW + 1000), KW_OK);
    KWT_EQ(count_where("guest_sessions", w_young), 0);
    keys_free(&k1);
    keys_free(&k2);
}

/* INV-10: the batch is bounded; what is left goes at the next tick. */
static void inv_10_cleanup_is_bounded_per_tick(void)
{
    long long before = count_where("guest_sessions", "1");
    char sql[1024];
    /* Copy KW_CLEANUP_BATCH + 10 expired rows straight in (no keys needed). */
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
             " INSERT INTO guest_sessions (session_id, secret_hash, meeting_id, display_name,"
             " identity_key, registration_id, signed_prekey_id, signed_prekey,"
             " signed_prekey_signature, status, created_ms, expires_ms)"
             " SELECT printf('bulk%%028d', i), randomblob(32), '%s', 'x', zeroblob(33), 1, 1,"
             " zeroblob(33), zeroblob(64), 'registered', 0, 1 FROM n RETURNING 0",
             KW_CLEANUP_BATCH + 10, meeting.meeting_id);
    raw_int(sql);
    KWT_EQ(count_where("guest_sessions", "session_id LIKE 'bulk%'"), KW_CLEANUP_BATCH + 10);
    KWT_ERR(kw_cleanup_tick(&srv, NOW), KW_OK);
    KWT_EQ(count_where("guest_sessions", "session_id LIKE 'bulk%'"), 10);
    KWT_ERR(kw_cleanup_tick(&srv, NOW), KW_OK);
    KWT_EQ(count_where("guest_sessions", "session_id LIKE 'bulk%'"), 0);
    KWT_EQ(count_where("guest_sessions", "1"), before);
}

/* INV-10: an idle instant call goes unless a guest still waits in it. */
static void inv_10_idle_instant_call_with_a_waiting_guest_stays(void)
{
    kw_db_meeting call;
    char tok[33];
    guest_keys k;
    if (!KWT_CHECK(make_meeting(1, 1, &call) && make_invitation(&call, 0, 0, tok) && keys_new(&k)))
        return;
    kw_db_guest_created c;
    kw_error err;
    KWT_ERR(register_as(&k, tok, NOW, &c), KW_OK);
    int64_t later = NOW + 11 * 60 * 1000; /* idle for 11 minutes */
    char where[256];
    snprintf(where, sizeof where, "meeting_id = '%s'", call.meeting_id);
    KWT_ERR(kw_cleanup_tick(&srv, later), KW_OK);
    KWT_EQ(count_where("meetings", where), 1);
    KWT_ERR(G->remove(db->ctx, c.session_id, &err), KW_OK);
    KWT_ERR(kw_cleanup_tick(&srv, later + 11 * 60 * 1000), KW_OK);
    KWT_EQ(count_where("meetings", where), 0);
    keys_free(&k);
}

/*
 * INV-2 and INV-3 across processes (each its own connection, as a second keywaved or the
 * CLI would have): 8 deciders at once, exactly one wins; 4 consumers take 10 bundles each
 * of a guest with 30 pre-keys, every pre-key handed out once.
 */
static void inv_2_inv_3_hold_across_processes(void)
{
    guest_keys k1, k2;
    if (!KWT_CHECK(keys_new(&k1) && keys_new(&k2)))
        return;
    kw_db_guest_created d, b;
    KWT_ERR(register_as(&k1, token, NOW, &d), KW_OK);
    KWT_ERR(register_as(&k2, token, NOW, &b), KW_OK);
    enum { DECIDERS = 8, CONSUMERS = 4, TAKES = 10 };
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/taken.txt", dir);
    pid_t pids[DECIDERS + CONSUMERS];
    fflush(stdout);
    for (int i = 0; i < DECIDERS + CONSUMERS; i++) {
        pids[i] = fork();
        if (pids[i] != 0)
            continue;
        kw_db *mine = NULL;
        kw_error err;
        if (kw_db_open_sqlite(dir, &mine, &err) != KW_OK)
            _exit(2);
        int code = 0;
        if (i < DECIDERS) {
            kw_db_guest g;
            kw_err rc = mine->guests->decide(mine->ctx, meeting.meeting_id, d.session_id, i % 2,
                                             i % 2 ? member : owner, NULL, NOW + 1, &g, &err);
            code = rc == KW_OK                                                      ? 0
                   : rc == KW_ERR_ALREADY_ADMITTED || rc == KW_ERR_ALREADY_DECLINED ? 1
                                                                                    : 2;
        } else {
            FILE *f = fopen(path, "a");
            for (int t = 0; f != NULL && t < TAKES; t++) {
                kw_bundle bundle;
                if (mine->guests->bundle_take(mine->ctx, b.session_id, &bundle, NULL, &err) !=
                    KW_OK)
                    code = 2;
                else
                    fprintf(f, "%ld\n",
                            bundle.has_one_time_pre_key ? (long)bundle.one_time_pre_key_id : -1L);
                fflush(f);
            }
            if (f == NULL)
                code = 2;
            else
                fclose(f);
        }
        kw_db_close(mine);
        _exit(code);
    }
    int wins = 0, losses = 0, other = 0;
    for (int i = 0; i < DECIDERS + CONSUMERS; i++) {
        int st = 0;
        waitpid(pids[i], &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 3;
        if (i < DECIDERS)
            code == 0 ? wins++ : code == 1 ? losses++ : other++;
        else if (code != 0)
            other++;
    }
    KWT_EQ(wins, 1);
    KWT_EQ(losses, DECIDERS - 1);
    KWT_EQ(other, 0);
    FILE *f = fopen(path, "r");
    long ids[CONSUMERS * TAKES];
    int n = 0, without = 0, duplicate = 0;
    while (f != NULL && n < CONSUMERS * TAKES && fscanf(f, "%ld", &ids[n]) == 1)
        n++;
    if (f != NULL)
        fclose(f);
    for (int i = 0; i < n; i++) {
        without += ids[i] < 0;
        for (int j = i + 1; j < n; j++)
            duplicate += ids[i] >= 0 && ids[i] == ids[j];
    }
    KWT_EQ(n, CONSUMERS * TAKES);
    KWT_EQ(without, CONSUMERS * TAKES - 30);
    KWT_EQ(duplicate, 0);
    unlink(path);
    keys_free(&k1);
    keys_free(&k2);
}

/* A body of a registration with private-key-like fields is refused (INV-1). */
static void inv_1_register_refuses_private_key_fields(void)
{
    const char *R = "/api/meetings/external/register";
    kw_caller anon;
    memset(&anon, 0, sizeof anon);
    static const char *const bodies[] = {
        "{\"identity_private_key\":\"AAAA\"}",
        "{\"signed_pre_key\":{\"privKey\":\"AAAA\"}}",
        "{\"pre_keys\":[{\"keyPair\":{}}]}",
    };
    long long before = count_where("guest_sessions", "1");
    for (size_t i = 0; i < 3; i++) {
        call_result r = run(KW_POST, R, &anon, NULL, 0, bodies[i], NOW);
        KWT_ERR(r.rc, KW_ERR_INVALID_ARGUMENT);
        KWT_EQ(r.status, 400);
        result_free(&r);
    }
    KWT_EQ(count_where("guest_sessions", "1"), before);
}

static void register_handler_answers_201(void)
{
    guest_keys k;
    if (!KWT_CHECK(keys_new(&k)))
        return;
    char *doc = NULL;
    KWT_ERR(kw_keys_export_json(k.id, &doc, NULL), KW_OK);
    json_t *body = json_loads(doc ? doc : "", 0, NULL);
    free(doc);
    json_object_set_new(body, "invitation_token", json_string(token));
    json_object_set_new(body, "display_name", json_string("Ada"));
    char *text = json_dumps(body, JSON_COMPACT);
    kw_caller anon;
    memset(&anon, 0, sizeof anon);
    call_result r = run(KW_POST, "/api/meetings/external/register", &anon, NULL, 0, text, NOW);
    KWT_ERR(r.rc, KW_OK);
    KWT_EQ(r.status, 201);
    KWT_EQ(json_object_size(r.body), 4);
    KWT_STREQ(json_string_value(json_object_get(r.body, "meeting_id")), meeting.meeting_id);
    KWT_STREQ(json_string_value(json_object_get(r.body, "expires_at")), "2025-11-23T08:26:40Z");
    result_free(&r);
    /* An unknown field and a wrong type. */
    json_object_set_new(body, "extra", json_true());
    free(text);
    text = json_dumps(body, JSON_COMPACT);
    r = run(KW_POST, "/api/meetings/external/register", &anon, NULL, 0, text, NOW);
    KWT_ERR(r.rc, KW_ERR_UNKNOWN_FIELD);
    result_free(&r);
    json_object_del(body, "extra");
    json_object_set_new(body, "registration_id", json_string("1"));
    free(text);
    text = json_dumps(body, JSON_COMPACT);
    r = run(KW_POST, "/api/meetings/external/register", &anon, NULL, 0, text, NOW);
    KWT_ERR(r.rc, KW_ERR_INVALID_ARGUMENT);
    result_free(&r);
    r = run(KW_POST, "/api/meetings/external/register", &anon, NULL, 0, "not json", NOW);
    KWT_ERR(r.rc, KW_ERR_JSON);
    result_free(&r);
    free(text);
    json_decref(body);
    keys_free(&k);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/keywave-test-guests-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    kw_error err;
    if (kw_crypto_init() != KW_OK || kw_db_open_sqlite(dir, &db, &err) != KW_OK) {
        printf("FAIL cannot open the store: %s\n", err.detail);
        return 1;
    }
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    srv.config.livekit_url = "wss://livekit.example";
    srv.config.livekit_api_key = "APIkey";
    srv.config.livekit_api_secret = "a-livekit-secret-of-enough-length-0123456789";
    if (kw_presence_memory_new(&srv.presence) != KW_OK ||
        kw_rate_limit_new(KW_BUNDLE_FETCH_LIMIT, KW_BUNDLE_FETCH_WINDOW_MS, 1024,
                          &srv.bundle_limit) != KW_OK ||
        !add_user("owner", owner) || !add_user("member", member) ||
        !add_user("outsider", outsider) || !make_meeting(1, 0, &meeting) ||
        !make_meeting(1, 0, &closed_meeting) || !make_meeting(1, 0, &other_meeting) ||
        db->meetings->participant_add(db->ctx, meeting.meeting_id, member, KW_MEETING_ROLE_MEMBER,
                                      NOW, &err) != KW_OK ||
        !make_invitation(&meeting, 0, 0, token) ||
        !make_invitation(&other_meeting, 0, 0, other_token)) {
        printf("FAIL fixtures: %s\n", err.detail);
        return 1;
    }
    KWT_RUN(registration_creates_a_session);
    KWT_RUN(registration_failures_change_nothing);
    KWT_RUN(second_registration_replaces_the_waiting_session);
    KWT_RUN(auth_guest_reads_the_bearer);
    KWT_RUN(prekeys_and_bundle_consumption);
    KWT_RUN(inv_3_first_decision_wins);
    KWT_RUN(admission_handlers);
    KWT_RUN(decline_takes_a_reason);
    KWT_RUN(guest_fetches_a_present_members_bundle);
    KWT_RUN(inv_4_livekit_token_only_when_admitted);
    KWT_RUN(member_fetches_a_guest_bundle);
    KWT_RUN(inv_9_meeting_deletion_takes_its_guests);
    KWT_RUN(inv_10_cleanup_tick_removes_expired_sessions);
    KWT_RUN(inv_10_cleanup_is_bounded_per_tick);
    KWT_RUN(inv_10_idle_instant_call_with_a_waiting_guest_stays);
    KWT_RUN(inv_2_inv_3_hold_across_processes);
    KWT_RUN(inv_1_register_refuses_private_key_fields);
    KWT_RUN(register_handler_answers_201);
    kw_rate_limit_free(srv.bundle_limit);
    kw_presence_free(srv.presence);
    kw_db_close(db);
    remove_dir(dir);
    return kwt_finish();
}
