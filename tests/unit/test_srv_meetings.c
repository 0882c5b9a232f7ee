/*
 * test_srv_meetings.c — the meetings storage (db_meetings.h) on a real SQLite file:
 * RFC 3339 times, channels and their roles, meetings (ids, input rules, patch, filters and
 * their boundaries), participants and roles (the owner is fixed), invitations (token form,
 * expiry and max_uses boundaries, revoke, one meeting only, allow_external), delete
 * cascades (INV-9), admitted guests, and the instant-call cleanup (INV-10): the 10-minute
 * idle and 8-hour boundaries, presence keeping a call, an admitted guest keeping a call,
 * batches, and failures half-way (injected with triggers) that change nothing (INV-11).
 * Through the router with in-memory presence (Socket.IO does not register
 * anyone yet): the participants list of present devices and the join info's
 * has_active_participants.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "api_meetings.h"
#include "db.h"
#include "db_meetings.h"
#include "db_members.h"
#include "db_sqlite.h"
#include "http.h"
#include "kwtest.h"
#include "presence.h"
#include "router.h"
#include "server.h"

#define NOW     1763800000000LL /* 2025-11-22T08:26:40Z */
#define MIN_MS  (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)

static char dir[256];
static kw_db *db;
static char alice[KW_DB_ID_MAX + 1], bob[KW_DB_ID_MAX + 1], carol[KW_DB_ID_MAX + 1];

#define MT (db->meetings)

/* ---- helpers --------------------------------------------------------------------- */

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

/* Runs one SQL statement on a separate connection; returns its first integer (0: no row,
 * -1: failure). */
static long long raw(const char *sql)
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

static long long rawf(const char *fmt, const char *a, const char *b)
{
    char sql[1024];
    snprintf(sql, sizeof sql, fmt, a, b ? b : "");
    return raw(sql);
}

/* A guest session row of meeting_id with status, made directly (the guests' own store
 * is tested elsewhere). */
static int add_guest(const char *session_id, const char *meeting_id, const char *status,
                     long long decided_ms, long long expires_ms)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO guest_sessions (session_id, secret_hash, meeting_id, display_name,"
             " identity_key, registration_id, signed_prekey_id, signed_prekey,"
             " signed_prekey_signature, status, decided_ms, created_ms, expires_ms) VALUES"
             " ('%s', randomblob(32), '%s', 'Guest %s', randomblob(33), 1, 1, randomblob(33),"
             " randomblob(64), '%s', %lld, %lld, %lld)",
             session_id, meeting_id, session_id, status, decided_ms, NOW, expires_ms);
    return raw(sql) == 0;
}

static int new_user(const char *name, char id[KW_DB_ID_MAX + 1])
{
    char code[KW_ENROLL_CODE_CHARS + 1];
    kw_error err;
    return db->members->user_add(db->ctx, name, NOW, id, code, &err) == KW_OK;
}

static kw_db_meeting mk(const char *title, int64_t start, int64_t end, const char *owner,
                        int instant, int allow_external)
{
    kw_db_meeting m;
    memset(&m, 0, sizeof m);
    snprintf(m.title, sizeof m.title, "%s", title);
    m.start_ms = start;
    m.end_ms = end;
    snprintf(m.created_by, sizeof m.created_by, "%s", owner);
    m.is_instant_call = instant;
    m.allow_external = allow_external;
    return m;
}

/* Creates a meeting; its id into id. */
static int create(const char *owner, int64_t start, int64_t end, int instant, int allow_external,
                  int64_t now, char id[KW_DB_ID_MAX + 1])
{
    kw_db_meeting in = mk("Weekly", start, end, owner, instant, allow_external), out;
    kw_error err;
    if (MT->meeting_create(db->ctx, &in, now, &out, &err) != KW_OK)
        return 0;
    snprintf(id, KW_DB_ID_MAX + 1, "%s", out.meeting_id);
    return 1;
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- times ------------------------------------------------------------------------- */

static void time_round_trips_and_boundaries(void)
{
    int64_t ms = -1;
    char t[KW_TIME_TEXT_MAX];
    KWT_ERR(kw_time_parse("2026-11-22T10:00:00Z", &ms), KW_OK);
    KWT_EQ(ms, 1795341600000LL);
    KWT_ERR(kw_time_format(ms, t), KW_OK);
    KWT_STREQ(t, "2026-11-22T10:00:00Z");
    KWT_ERR(kw_time_parse("1970-01-01T00:00:00Z", &ms), KW_OK);
    KWT_EQ(ms, 0);
    KWT_ERR(kw_time_parse("2024-02-29T23:59:59.5Z", &ms), KW_OK);
    KWT_ERR(kw_time_format(ms, t), KW_OK);
    KWT_STREQ(t, "2024-02-29T23:59:59.500Z");
    KWT_ERR(kw_time_parse("2024-02-29T23:59:59.123456789Z", &ms), KW_OK); /* ns dropped */
    KWT_EQ(ms % 1000, 123);
    KWT_ERR(kw_time_parse("2026-11-22T11:30:00+01:30", &ms), KW_OK);
    KWT_EQ(ms, 1795341600000LL);
    KWT_ERR(kw_time_parse("2026-11-22T08:00:00-02:00", &ms), KW_OK);
    KWT_EQ(ms, 1795341600000LL);
    KWT_ERR(kw_time_parse("9999-12-31T23:59:59.999Z", &ms), KW_OK);
    KWT_ERR(kw_time_format(ms, t), KW_OK);
    KWT_STREQ(t, "9999-12-31T23:59:59.999Z");
    KWT_ERR(kw_time_format(ms + 1, t), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_time_format(-1, t), KW_ERR_INVALID_ARGUMENT);
    static const char *const bad[] = {
        "2023-02-29T00:00:00Z", /* not a leap year */
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:00:60Z",
        "2026-11-22t10:00:00Z",
        "2026-11-22T10:00:00z",
        "2026-11-22T10:00:00",
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00:00.Z",
        "2026-11-22T10:00:00+0100",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00", /* before the epoch in UTC */
        "2026-11-22T10:00:00Zjunk",
        "",
        "+2026-11-22T10:00:00Z",
        "2026-1-22T10:00:00Z",
        "2026-11-22T10:00:00.1234567890Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!KWT_CHECK(kw_time_parse(bad[i], &ms) == KW_ERR_INVALID_ARGUMENT))
            printf("    accepted: \"%s\"\n", bad[i]);
    KWT_ERR(kw_time_parse(NULL, &ms), KW_ERR_INVALID_ARGUMENT);
}

/* One table: query string -> expected code and the two fields' values. */
static void query_strings_are_strict(void)
{
    static const struct {
        const char *query;
        kw_err want;
        const char *status, *exclude; /* NULL: absent */
    } cases[] = {
        {"", KW_OK, NULL, NULL},
        {"status=joined", KW_OK, "joined", NULL},
        {"status=joined&exclude_external=true", KW_OK, "joined", "true"},
        {"exclude_external=true&status=joined&", KW_OK, "joined", "true"},
        {"status=%6Aoined", KW_OK, "joined", NULL},
        {"status=a+b", KW_OK, "a b", NULL},
        {"status", KW_OK, "", NULL},
        {"status=", KW_OK, "", NULL},
        {"status=x&status=y", KW_ERR_INVALID_ARGUMENT, NULL, NULL},
        {"role=owner", KW_ERR_UNKNOWN_FIELD, NULL, NULL},
        {"=x", KW_ERR_INVALID_ARGUMENT, NULL, NULL},
        {"status=joined&&exclude_external=true", KW_ERR_INVALID_ARGUMENT, NULL, NULL},
        {"status=%4", KW_ERR_INVALID_ARGUMENT, NULL, NULL},
        {"status=%zz", KW_ERR_INVALID_ARGUMENT, NULL, NULL},
        {"status=%0a", KW_ERR_INVALID_ARGUMENT, NULL, NULL},
        {"status=0123456789012345678901234567890123456789012345678901234567890123", KW_OK,
         "0123456789012345678901234567890123456789012345678901234567890123", NULL}, /* 64 */
        {"status=01234567890123456789012345678901234567890123456789012345678901234",
         KW_ERR_INVALID_ARGUMENT, NULL, NULL}, /* 65 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_api_query_field q[] = {{.name = "status"}, {.name = "exclude_external"}};
        kw_error err;
        kw_err rc = kw_api_query(cases[i].query, q, 2, &err);
        if (!KWT_CHECK(rc == cases[i].want)) {
            printf("    query \"%s\": got %s\n", cases[i].query, kw_err_name(rc));
            continue;
        }
        if (rc != KW_OK)
            continue;
        KWT_EQ(q[0].present, cases[i].status != NULL);
        KWT_EQ(q[1].present, cases[i].exclude != NULL);
        if (cases[i].status != NULL)
            KWT_STREQ(q[0].value, cases[i].status);
        if (cases[i].exclude != NULL)
            KWT_STREQ(q[1].value, cases[i].exclude);
    }
}

/* ---- channels ---------------------------------------------------------------------- */

static void channels_and_roles(void)
{
    kw_db_channel c, got;
    kw_error err;
    kw_meeting_role role;
    KWT_ERR(MT->channel_create(db->ctx, alice, "general", "webrtc", NOW, &c, &err), KW_OK);
    KWT_CHECK(strncmp(c.channel_id, "chn_", 4) == 0 && is_hex(c.channel_id + 4, 12));
    KWT_STREQ(c.owner_id, alice);
    KWT_STREQ(c.type, "webrtc");
    KWT_ERR(MT->channel_get(db->ctx, c.channel_id, &got, &err), KW_OK);
    KWT_STREQ(got.name, "general");
    KWT_EQ(got.created_ms, NOW);
    KWT_ERR(MT->channel_create(db->ctx, alice, "x", "voice", NOW, &got, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(MT->channel_create(db->ctx, alice, "", "signal", NOW, &got, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(MT->channel_create(db->ctx, alice, "a\nb", "signal", NOW, &got, &err),
            KW_ERR_INVALID_ARGUMENT);
    char longname[KW_CHANNEL_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    KWT_ERR(MT->channel_create(db->ctx, alice, longname, "signal", NOW, &got, &err),
            KW_ERR_INVALID_ARGUMENT);
    longname[KW_CHANNEL_NAME_MAX] = '\0'; /* exactly the maximum */
    KWT_ERR(MT->channel_create(db->ctx, alice, longname, "signal", NOW, &got, &err), KW_OK);
    KWT_ERR(MT->channel_create(db->ctx, "usr_nobody", "x", "signal", NOW, &got, &err),
            KW_ERR_NOT_FOUND);

    KWT_ERR(MT->channel_role(db->ctx, c.channel_id, alice, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_OWNER);
    KWT_ERR(MT->channel_role(db->ctx, c.channel_id, bob, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_NONE);
    KWT_ERR(MT->channel_member_add(db->ctx, c.channel_id, bob, NOW, &err), KW_OK);
    KWT_ERR(MT->channel_member_add(db->ctx, c.channel_id, bob, NOW, &err), KW_OK); /* again */
    KWT_ERR(MT->channel_role(db->ctx, c.channel_id, bob, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_MEMBER);
    KWT_ERR(MT->channel_member_add(db->ctx, c.channel_id, "usr_nobody", NOW, &err),
            KW_ERR_NOT_FOUND);
    KWT_ERR(MT->channel_member_add(db->ctx, "chn_000000000000", bob, NOW, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(MT->channel_role(db->ctx, "chn_000000000000", bob, &role, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(MT->channel_get(db->ctx, "chn_000000000000", &got, &err), KW_ERR_NOT_FOUND);
}

/* ---- meetings ---------------------------------------------------------------------- */

static void meeting_create_rules(void)
{
    kw_db_meeting in = mk("Planning", NOW + HOUR_MS, NOW + 2 * HOUR_MS, alice, 0, 1), out, got;
    snprintf(in.description, sizeof in.description, "line one\nline two\tend");
    kw_error err;
    KWT_ERR(MT->meeting_create(db->ctx, &in, NOW, &out, &err), KW_OK);
    KWT_CHECK(strncmp(out.meeting_id, "mtg_", 4) == 0 && is_hex(out.meeting_id + 4, 12));
    KWT_EQ(out.created_ms, NOW);
    KWT_EQ(out.last_active_ms, NOW);
    KWT_EQ(out.allow_external, 1);
    KWT_EQ(out.is_instant_call, 0);
    KWT_ERR(MT->meeting_get(db->ctx, out.meeting_id, &got, &err), KW_OK);
    KWT_STREQ(got.description, "line one\nline two\tend");
    KWT_STREQ(got.created_by, alice);
    KWT_EQ(got.start_ms, NOW + HOUR_MS);

    in.is_instant_call = 1;
    KWT_ERR(MT->meeting_create(db->ctx, &in, NOW, &out, &err), KW_OK);
    KWT_CHECK(strncmp(out.meeting_id, "call_", 5) == 0 && is_hex(out.meeting_id + 5, 12));

    kw_db_meeting bad = in;
    bad.end_ms = bad.start_ms; /* equal: refused */
    KWT_ERR(MT->meeting_create(db->ctx, &bad, NOW, &out, &err), KW_ERR_INVALID_ARGUMENT);
    bad = in;
    bad.end_ms = bad.start_ms + 1; /* one ms: fine */
    KWT_ERR(MT->meeting_create(db->ctx, &bad, NOW, &out, &err), KW_OK);
    bad = in;
    bad.title[0] = '\0';
    KWT_ERR(MT->meeting_create(db->ctx, &bad, NOW, &out, &err), KW_ERR_INVALID_ARGUMENT);
    bad = in;
    snprintf(bad.title, sizeof bad.title, "tab\there");
    KWT_ERR(MT->meeting_create(db->ctx, &bad, NOW, &out, &err), KW_ERR_INVALID_ARGUMENT);
    bad = in;
    snprintf(bad.description, sizeof bad.description, "bell\a");
    KWT_ERR(MT->meeting_create(db->ctx, &bad, NOW, &out, &err), KW_ERR_INVALID_ARGUMENT);
    bad = in;
    snprintf(bad.created_by, sizeof bad.created_by, "usr_nobody");
    KWT_ERR(MT->meeting_create(db->ctx, &bad, NOW, &out, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(MT->meeting_get(db->ctx, "mtg_000000000000", &got, &err), KW_ERR_NOT_FOUND);
}

static void meeting_update_rules(void)
{
    char id[KW_DB_ID_MAX + 1];
    kw_db_meeting out;
    kw_error err;
    KWT_CHECK(create(alice, NOW + HOUR_MS, NOW + 2 * HOUR_MS, 0, 0, NOW, id));
    kw_db_meeting_patch p = {0};
    KWT_ERR(MT->meeting_update(db->ctx, id, &p, &out, &err), KW_ERR_INVALID_ARGUMENT);
    p.has_title = 1;
    p.title = "Renamed";
    p.has_allow_external = 1;
    p.allow_external = 1;
    KWT_ERR(MT->meeting_update(db->ctx, id, &p, &out, &err), KW_OK);
    KWT_STREQ(out.title, "Renamed");
    KWT_EQ(out.allow_external, 1);
    KWT_EQ(out.start_ms, NOW + HOUR_MS); /* untouched */
    /* Moving the start past the stored end is refused and changes nothing. */
    kw_db_meeting_patch q = {0};
    q.has_start = 1;
    q.start_ms = NOW + 2 * HOUR_MS;
    q.has_title = 1;
    q.title = "Never";
    KWT_ERR(MT->meeting_update(db->ctx, id, &q, &out, &err), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(MT->meeting_get(db->ctx, id, &out, &err), KW_OK);
    KWT_STREQ(out.title, "Renamed");
    q.has_end = 1;
    q.end_ms = NOW + 3 * HOUR_MS; /* both together: fine */
    KWT_ERR(MT->meeting_update(db->ctx, id, &q, &out, &err), KW_OK);
    KWT_EQ(out.start_ms, NOW + 2 * HOUR_MS);
    KWT_STREQ(out.title, "Never");
    kw_db_meeting_patch r = {0};
    r.has_title = 1;
    r.title = "";
    KWT_ERR(MT->meeting_update(db->ctx, id, &r, &out, &err), KW_ERR_INVALID_ARGUMENT);
    r.title = NULL;
    KWT_ERR(MT->meeting_update(db->ctx, id, &r, &out, &err), KW_ERR_INVALID_ARGUMENT);
    r.has_title = 0;
    r.has_description = 1;
    r.description = "";
    KWT_ERR(MT->meeting_update(db->ctx, id, &r, NULL, &err), KW_OK);
    KWT_ERR(MT->meeting_update(db->ctx, "mtg_000000000000", &r, NULL, &err), KW_ERR_NOT_FOUND);
}

static int listed(const kw_db_meeting *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].meeting_id, id) == 0)
            return (int)i + 1;
    return 0;
}

static void list_filters_and_boundaries(void)
{
    char dave[KW_DB_ID_MAX + 1];
    KWT_CHECK(new_user("dave", dave));
    char ended[KW_DB_ID_MAX + 1], ends_now[KW_DB_ID_MAX + 1], ends_next[KW_DB_ID_MAX + 1],
        later[KW_DB_ID_MAX + 1], guest_of[KW_DB_ID_MAX + 1];
    KWT_CHECK(create(dave, NOW - 2 * HOUR_MS, NOW - HOUR_MS, 0, 0, NOW, ended));
    KWT_CHECK(create(dave, NOW - HOUR_MS, NOW, 0, 0, NOW, ends_now));
    KWT_CHECK(create(dave, NOW - HOUR_MS, NOW + 1, 0, 0, NOW, ends_next));
    KWT_CHECK(create(dave, NOW + HOUR_MS, NOW + 2 * HOUR_MS, 0, 0, NOW, later));
    KWT_CHECK(create(alice, NOW + 3 * HOUR_MS, NOW + 4 * HOUR_MS, 0, 0, NOW, guest_of));
    kw_error err;
    KWT_ERR(MT->participant_add(db->ctx, guest_of, dave, KW_MEETING_ROLE_MEMBER, NOW, &err), KW_OK);
    kw_db_meeting *list = NULL;
    size_t n = 0;
    KWT_ERR(MT->meeting_list(db->ctx, dave, KW_MEETING_FILTER_MY, NOW, &list, &n, &err), KW_OK);
    KWT_EQ(n, 5); /* owner of four, member of one */
    KWT_CHECK(listed(list, n, ended) && listed(list, n, guest_of));
    KWT_EQ(listed(list, n, ended), 1); /* by start */
    free(list);
    KWT_ERR(MT->meeting_list(db->ctx, dave, KW_MEETING_FILTER_UPCOMING, NOW, &list, &n, &err),
            KW_OK);
    KWT_EQ(n, 3);
    KWT_CHECK(!listed(list, n, ended) && !listed(list, n, ends_now)); /* end == now: past */
    KWT_CHECK(listed(list, n, ends_next) && listed(list, n, later) && listed(list, n, guest_of));
    KWT_EQ(listed(list, n, ends_next), 1); /* ongoing first */
    free(list);
    KWT_ERR(MT->meeting_list(db->ctx, dave, KW_MEETING_FILTER_PAST, NOW, &list, &n, &err), KW_OK);
    KWT_EQ(n, 2);
    KWT_EQ(listed(list, n, ends_now), 1); /* newest first */
    KWT_EQ(listed(list, n, ended), 2);
    free(list);
    /* Someone else's meetings never show. */
    char erin[KW_DB_ID_MAX + 1];
    KWT_CHECK(new_user("erin", erin));
    KWT_ERR(MT->meeting_list(db->ctx, erin, KW_MEETING_FILTER_MY, NOW, &list, &n, &err), KW_OK);
    KWT_EQ(n, 0);
    KWT_CHECK(list == NULL);
    KWT_ERR(MT->meeting_list(db->ctx, erin, (kw_meeting_filter)7, NOW, &list, &n, &err),
            KW_ERR_INVALID_ARGUMENT);
}

/* ---- participants ------------------------------------------------------------------ */

static void participants_and_roles(void)
{
    char id[KW_DB_ID_MAX + 1];
    kw_meeting_role role;
    kw_error err;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 0, NOW, id));
    KWT_ERR(MT->meeting_role(db->ctx, id, alice, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_OWNER);
    KWT_ERR(MT->meeting_role(db->ctx, id, bob, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_NONE);
    KWT_ERR(MT->meeting_role(db->ctx, "mtg_000000000000", bob, &role, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(MT->participant_add(db->ctx, id, bob, KW_MEETING_ROLE_MEMBER, NOW, &err), KW_OK);
    KWT_ERR(MT->meeting_role(db->ctx, id, bob, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_MEMBER);
    KWT_ERR(MT->participant_add(db->ctx, id, bob, KW_MEETING_ROLE_MANAGER, NOW, &err), KW_OK);
    KWT_ERR(MT->meeting_role(db->ctx, id, bob, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_MANAGER);
    KWT_ERR(MT->participant_add(db->ctx, id, alice, KW_MEETING_ROLE_MEMBER, NOW, &err),
            KW_ERR_CONFLICT); /* the owner stays owner */
    KWT_ERR(MT->participant_add(db->ctx, id, carol, KW_MEETING_ROLE_OWNER, NOW, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(MT->participant_add(db->ctx, id, "usr_nobody", KW_MEETING_ROLE_MEMBER, NOW, &err),
            KW_ERR_NOT_FOUND);
    KWT_ERR(
        MT->participant_add(db->ctx, "mtg_000000000000", carol, KW_MEETING_ROLE_MEMBER, NOW, &err),
        KW_ERR_NOT_FOUND);
    KWT_ERR(MT->participant_remove(db->ctx, id, alice, &err), KW_ERR_CONFLICT);
    KWT_ERR(MT->participant_remove(db->ctx, id, carol, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(MT->participant_remove(db->ctx, id, bob, &err), KW_OK);
    KWT_ERR(MT->meeting_role(db->ctx, id, bob, &role, &err), KW_OK);
    KWT_EQ(role, KW_MEETING_ROLE_NONE);
    KWT_ERR(MT->participant_remove(db->ctx, "mtg_000000000000", bob, &err), KW_ERR_NOT_FOUND);
}

static void admitted_guests_are_listed(void)
{
    char id[KW_DB_ID_MAX + 1], other[KW_DB_ID_MAX + 1];
    kw_error err;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, id));
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, other));
    KWT_CHECK(add_guest("g_admitted_2", id, "admitted", NOW + 20, NOW + HOUR_MS));
    KWT_CHECK(add_guest("g_admitted_1", id, "admitted", NOW + 10, NOW + HOUR_MS));
    KWT_CHECK(add_guest("g_waiting", id, "waiting", 0, NOW + HOUR_MS));
    KWT_CHECK(add_guest("g_declined", id, "declined", NOW, NOW + HOUR_MS));
    KWT_CHECK(add_guest("g_expired", id, "admitted", NOW, NOW)); /* expires_ms == now */
    KWT_CHECK(add_guest("g_other", other, "admitted", NOW, NOW + HOUR_MS));
    kw_db_admitted_guest *g = NULL;
    size_t n = 0;
    KWT_ERR(MT->admitted_guests(db->ctx, id, NOW, &g, &n, &err), KW_OK);
    KWT_EQ(n, 2);
    if (n == 2) {
        KWT_STREQ(g[0].session_id, "g_admitted_1");
        KWT_STREQ(g[1].session_id, "g_admitted_2");
        KWT_STREQ(g[0].display_name, "Guest g_admitted_1");
        KWT_EQ(g[0].admitted_ms, NOW + 10);
    }
    free(g);
}

/* ---- invitations ------------------------------------------------------------------- */

static void invitation_rules_and_boundaries(void)
{
    char id[KW_DB_ID_MAX + 1], closed[KW_DB_ID_MAX + 1], other[KW_DB_ID_MAX + 1];
    char mid[KW_DB_ID_MAX + 1];
    kw_db_invitation inv, limited, timed;
    kw_error err;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, id));
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 0, NOW, closed));
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, other));
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, "for the team", 0, 0, NOW, &inv, &err),
            KW_OK);
    KWT_CHECK(is_hex(inv.token, KW_INVITATION_TOKEN_CHARS));
    KWT_STREQ(inv.label, "for the team");
    KWT_ERR(MT->invitation_check(db->ctx, inv.token, NOW + 365 * 24 * HOUR_MS, mid, &err), KW_OK);
    KWT_STREQ(mid, id);
    /* The meeting must allow external guests. */
    KWT_ERR(MT->invitation_create(db->ctx, closed, alice, NULL, 0, 0, NOW, &limited, &err),
            KW_ERR_CONFLICT);
    /* Input rules. */
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, NOW, 0, NOW, &limited, &err),
            KW_ERR_INVALID_ARGUMENT); /* expires now: refused */
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, 0, -1, NOW, &limited, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, 0, KW_INVITATION_MAX_USES_MAX + 1, NOW,
                                  &limited, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, "bad\x01label", 0, 0, NOW, &limited, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(
        MT->invitation_create(db->ctx, "mtg_000000000000", alice, NULL, 0, 0, NOW, &limited, &err),
        KW_ERR_NOT_FOUND);

    /* Expiry: valid up to the last ms before expires_at. */
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, NOW + MIN_MS, 0, NOW, &timed, &err),
            KW_OK);
    KWT_ERR(MT->invitation_check(db->ctx, timed.token, NOW + MIN_MS - 1, mid, &err), KW_OK);
    KWT_ERR(MT->invitation_check(db->ctx, timed.token, NOW + MIN_MS, mid, &err),
            KW_ERR_INVITATION_EXPIRED);
    KWT_STREQ(mid, "");

    /* max_uses: uses counted by registration (the guests' store); simulated here. */
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, 0, 2, NOW, &limited, &err), KW_OK);
    KWT_EQ(limited.max_uses, 2);
    KWT_EQ(rawf("UPDATE invitations SET uses = 1 WHERE token = '%s'%s", limited.token, NULL), 0);
    KWT_ERR(MT->invitation_check(db->ctx, limited.token, NOW, mid, &err), KW_OK);
    KWT_EQ(rawf("UPDATE invitations SET uses = 2 WHERE token = '%s'%s", limited.token, NULL), 0);
    KWT_ERR(MT->invitation_check(db->ctx, limited.token, NOW, mid, &err),
            KW_ERR_INVITATION_EXHAUSTED);

    /* Unknown and malformed tokens. */
    KWT_ERR(MT->invitation_check(db->ctx, "00000000000000000000000000000000", NOW, mid, &err),
            KW_ERR_UNKNOWN_INVITATION);
    KWT_ERR(MT->invitation_check(db->ctx, "short", NOW, mid, &err), KW_ERR_UNKNOWN_INVITATION);
    char upper[KW_INVITATION_TOKEN_CHARS + 1];
    snprintf(upper, sizeof upper, "%s", inv.token);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    if (strcmp(upper, inv.token) != 0)
        KWT_ERR(MT->invitation_check(db->ctx, upper, NOW, mid, &err), KW_ERR_UNKNOWN_INVITATION);

    /* Revoke: only through its own meeting; idempotent; wins over expiry. */
    KWT_ERR(MT->invitation_revoke(db->ctx, other, inv.token, NOW, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(MT->invitation_check(db->ctx, inv.token, NOW, mid, &err), KW_OK);
    KWT_ERR(MT->invitation_revoke(db->ctx, id, inv.token, NOW, &err), KW_OK);
    KWT_ERR(MT->invitation_revoke(db->ctx, id, inv.token, NOW + 5, &err), KW_OK);
    KWT_ERR(MT->invitation_check(db->ctx, inv.token, NOW, mid, &err), KW_ERR_INVITATION_REVOKED);
    KWT_ERR(MT->invitation_revoke(db->ctx, id, timed.token, NOW, &err), KW_OK);
    KWT_ERR(MT->invitation_check(db->ctx, timed.token, NOW + HOUR_MS, mid, &err),
            KW_ERR_INVITATION_REVOKED);
    KWT_ERR(MT->invitation_revoke(db->ctx, id, "00000000000000000000000000000000", NOW, &err),
            KW_ERR_NOT_FOUND);

    /* The list shows every invitation of the meeting, oldest first. */
    kw_db_invitation *list = NULL;
    size_t n = 0;
    KWT_ERR(MT->invitation_list(db->ctx, id, &list, &n, &err), KW_OK);
    KWT_EQ(n, 3);
    if (n == 3) {
        KWT_STREQ(list[0].token, inv.token);
        KWT_EQ(list[0].revoked_ms, NOW); /* the first revocation's time is kept */
        KWT_EQ(list[0].expires_ms, 0);
        KWT_EQ(list[1].expires_ms, NOW + MIN_MS);
        KWT_EQ(list[2].max_uses, 2);
        KWT_EQ(list[2].uses, 2);
        KWT_EQ(list[2].revoked_ms, 0);
    }
    free(list);

    /* Switching guests off stops every link of the meeting (403), on again restores. */
    kw_db_invitation open_inv;
    KWT_ERR(MT->invitation_create(db->ctx, other, alice, NULL, 0, 0, NOW, &open_inv, &err), KW_OK);
    kw_db_meeting_patch p = {0};
    p.has_allow_external = 1;
    p.allow_external = 0;
    KWT_ERR(MT->meeting_update(db->ctx, other, &p, NULL, &err), KW_OK);
    KWT_ERR(MT->invitation_check(db->ctx, open_inv.token, NOW, mid, &err), KW_ERR_FORBIDDEN);
    p.allow_external = 1;
    KWT_ERR(MT->meeting_update(db->ctx, other, &p, NULL, &err), KW_OK);
    KWT_ERR(MT->invitation_check(db->ctx, open_inv.token, NOW, mid, &err), KW_OK);
}

static void inv_9_delete_cascades(void)
{
    char id[KW_DB_ID_MAX + 1], keep[KW_DB_ID_MAX + 1], mid[KW_DB_ID_MAX + 1];
    kw_db_invitation inv, kept;
    kw_error err;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, id));
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, keep));
    KWT_ERR(MT->participant_add(db->ctx, id, bob, KW_MEETING_ROLE_MEMBER, NOW, &err), KW_OK);
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, 0, 0, NOW, &inv, &err), KW_OK);
    KWT_ERR(MT->invitation_create(db->ctx, keep, alice, NULL, 0, 0, NOW, &kept, &err), KW_OK);
    KWT_CHECK(add_guest("cascade_g1", id, "waiting", 0, NOW + HOUR_MS));
    KWT_CHECK(add_guest("cascade_g2", keep, "waiting", 0, NOW + HOUR_MS));
    KWT_EQ(rawf("INSERT INTO guest_prekeys (session_id, key_id, public_key) VALUES ('%s', 1,"
                " randomblob(33))%s",
                "cascade_g1", NULL),
           0);
    KWT_ERR(MT->meeting_delete(db->ctx, id, &err), KW_OK);
    KWT_ERR(MT->meeting_delete(db->ctx, id, &err), KW_ERR_NOT_FOUND);
    KWT_EQ(rawf("SELECT count(*) FROM invitations WHERE meeting_id = '%s'%s", id, NULL), 0);
    KWT_EQ(rawf("SELECT count(*) FROM meeting_participants WHERE meeting_id = '%s'%s", id, NULL),
           0);
    KWT_EQ(rawf("SELECT count(*) FROM guest_sessions WHERE meeting_id = '%s'%s", id, NULL), 0);
    KWT_EQ(rawf("SELECT count(*) FROM guest_prekeys WHERE session_id = '%s'%s", "cascade_g1", NULL),
           0);
    KWT_ERR(MT->invitation_check(db->ctx, inv.token, NOW, mid, &err), KW_ERR_UNKNOWN_INVITATION);
    /* The other meeting keeps everything. */
    KWT_ERR(MT->invitation_check(db->ctx, kept.token, NOW, mid, &err), KW_OK);
    KWT_EQ(rawf("SELECT count(*) FROM guest_sessions WHERE meeting_id = '%s'%s", keep, NULL), 1);
    KWT_ERR(MT->meeting_delete(db->ctx, "mtg_000000000000", &err), KW_ERR_NOT_FOUND);
}

/* ---- activity and cleanup ---------------------------------------------------------- */

static void touch_never_goes_back(void)
{
    char id[KW_DB_ID_MAX + 1];
    kw_db_meeting m;
    kw_error err;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 1, 0, NOW, id));
    KWT_ERR(MT->meeting_touch(db->ctx, id, NOW + 100, &err), KW_OK);
    KWT_ERR(MT->meeting_touch(db->ctx, id, NOW + 50, &err), KW_OK);
    KWT_ERR(MT->meeting_get(db->ctx, id, &m, &err), KW_OK);
    KWT_EQ(m.last_active_ms, NOW + 100);
    KWT_ERR(MT->meeting_touch(db->ctx, "call_000000000000", NOW, &err), KW_ERR_NOT_FOUND);
}

typedef struct busy_set {
    const char *ids[4];
    int asked;
} busy_set;

static int is_busy(void *arg, const char *meeting_id)
{
    busy_set *b = arg;
    b->asked++;
    for (size_t i = 0; i < 4 && b->ids[i] != NULL; i++)
        if (strcmp(b->ids[i], meeting_id) == 0)
            return 1;
    return 0;
}

static int exists(const char *id)
{
    kw_db_meeting m;
    kw_error err;
    return MT->meeting_get(db->ctx, id, &m, &err) == KW_OK;
}

static void inv_10_instant_call_cleanup(void)
{
    /* A fresh database state for this test: nothing else is an instant call now. */
    KWT_CHECK(raw("DELETE FROM meetings WHERE is_instant_call = 1") == 0);
    const int64_t t0 = NOW + 1000 * HOUR_MS; /* created here */
    char idle_exact[KW_DB_ID_MAX + 1], idle_short[KW_DB_ID_MAX + 1], busy[KW_DB_ID_MAX + 1],
        old[KW_DB_ID_MAX + 1], guest_kept[KW_DB_ID_MAX + 1], meeting[KW_DB_ID_MAX + 1],
        mid[KW_DB_ID_MAX + 1];
    kw_error err;
    KWT_CHECK(create(alice, t0, t0 + 24 * HOUR_MS, 1, 1, t0, idle_exact));
    KWT_CHECK(create(alice, t0, t0 + 24 * HOUR_MS, 1, 0, t0 + 1, idle_short));
    KWT_CHECK(create(alice, t0, t0 + 24 * HOUR_MS, 1, 0, t0, busy));
    KWT_CHECK(create(alice, t0, t0 + 24 * HOUR_MS, 1, 1, t0, guest_kept));
    KWT_CHECK(create(alice, t0, t0 + HOUR_MS, 0, 0, t0 - HOUR_MS, meeting)); /* not a call */
    kw_db_invitation inv;
    KWT_ERR(MT->invitation_create(db->ctx, idle_exact, alice, NULL, 0, 0, t0, &inv, &err), KW_OK);
    KWT_CHECK(add_guest("kept_by_guest", guest_kept, "admitted", t0, t0 + 24 * HOUR_MS));
    busy_set b = {{busy, NULL}, 0};
    size_t deleted = 99;
    /* At t0 + 10 min: idle_exact (last active t0) is exactly 10 min idle -> deleted;
     * idle_short (t0 + 1) is 1 ms short -> kept; busy is present -> kept and touched. */
    const int64_t t1 = t0 + KW_INSTANT_CALL_IDLE_MS;
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, t1, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, is_busy, &b, 100, &deleted, &err),
            KW_OK);
    KWT_EQ(deleted, 1);
    KWT_CHECK(!exists(idle_exact));
    KWT_CHECK(exists(idle_short));
    KWT_CHECK(exists(busy));
    KWT_CHECK(exists(guest_kept)); /* an admitted guest keeps it */
    KWT_CHECK(exists(meeting));    /* only instant calls go */
    KWT_ERR(MT->invitation_check(db->ctx, inv.token, t1, mid, &err), KW_ERR_UNKNOWN_INVITATION);
    kw_db_meeting m;
    KWT_ERR(MT->meeting_get(db->ctx, busy, &m, &err), KW_OK);
    KWT_EQ(m.last_active_ms, t1); /* presence counted as activity */
    KWT_EQ(b.asked, 2);           /* only idle candidates are asked about */

    /* 8 h: a call older than that goes as soon as nobody is there, even if recently
     * active; one still busy stays. */
    KWT_CHECK(create(alice, t0, t0 + 24 * HOUR_MS, 1, 0, t0, old));
    const int64_t t2 = t0 + KW_INSTANT_CALL_MAX_AGE_MS;
    KWT_ERR(MT->meeting_touch(db->ctx, old, t2 - 1, &err), KW_OK);
    KWT_ERR(MT->meeting_touch(db->ctx, busy, t2 - 1, &err), KW_OK);
    b.ids[0] = busy;
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, t2 - 1, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, is_busy, &b, 100, &deleted, &err),
            KW_OK);
    KWT_CHECK(exists(old));         /* 1 ms short of 8 h and active 0 ms ago */
    KWT_CHECK(!exists(idle_short)); /* long idle by now */
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, t2, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, is_busy, &b, 100, &deleted, &err),
            KW_OK);
    KWT_EQ(deleted, 1);
    KWT_CHECK(!exists(old));
    KWT_CHECK(exists(busy));
    KWT_CHECK(exists(guest_kept));

    /* Batches: max_rows bounds the work; NULL is_active means nobody is present. */
    char many[5][KW_DB_ID_MAX + 1];
    for (int i = 0; i < 5; i++)
        KWT_CHECK(create(alice, t0, t0 + 24 * HOUR_MS, 1, 0, t0, many[i]));
    const int64_t t3 = t2 + HOUR_MS;
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, t3, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, NULL, NULL, 3, &deleted, &err),
            KW_OK);
    KWT_EQ(deleted, 3);
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, t3, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, NULL, NULL, 100, &deleted, &err),
            KW_OK);
    KWT_EQ(deleted, 3); /* the last two and busy (nobody asked now) */
    KWT_CHECK(exists(guest_kept));
    KWT_CHECK(exists(meeting));
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, t3, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, NULL, NULL, 0, &deleted, &err),
            KW_OK);
    KWT_EQ(deleted, 0);
}

/* ---- failures change nothing (INV-11) ------------------------------------------------ */

static kw_err no_randomness(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return KW_ERR_CRYPTO;
}

/* A write that fails half-way through an op (a trigger aborts its second statement) and a
 * random source that fails: the op reports it and nothing of it is stored. */
static void inv_11_failures_change_nothing(void)
{
    kw_error err;
    long long meetings = raw("SELECT count(*) FROM meetings");
    long long channels = raw("SELECT count(*) FROM channels");
    /* meeting_create: the meeting row is written, then the owner row fails. */
    KWT_EQ(raw("CREATE TRIGGER t_owner BEFORE INSERT ON meeting_participants"
               " WHEN NEW.role = 'owner' BEGIN SELECT RAISE(ABORT, 'injected'); END"),
           0);
    kw_db_meeting in = mk("Doomed", NOW, NOW + HOUR_MS, alice, 0, 1), out;
    KWT_ERR(MT->meeting_create(db->ctx, &in, NOW, &out, &err), KW_ERR_STORE);
    KWT_EQ(raw("SELECT count(*) FROM meetings"), meetings);
    KWT_EQ(raw("SELECT count(*) FROM meetings WHERE title = 'Doomed'"), 0);
    KWT_EQ(raw("DROP TRIGGER t_owner"), 0);
    /* channel_create: likewise with the owner's membership. */
    KWT_EQ(raw("CREATE TRIGGER t_member BEFORE INSERT ON channel_members"
               " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
           0);
    kw_db_channel c;
    KWT_ERR(MT->channel_create(db->ctx, alice, "doomed", "signal", NOW, &c, &err), KW_ERR_STORE);
    KWT_EQ(raw("SELECT count(*) FROM channels"), channels);
    KWT_EQ(raw("DROP TRIGGER t_member"), 0);
    /* instant_calls_cleanup: the first deletion is undone when a later one fails. */
    KWT_CHECK(raw("DELETE FROM meetings WHERE is_instant_call = 1") == 0);
    char a[KW_DB_ID_MAX + 1], b[KW_DB_ID_MAX + 1], sql[256];
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 1, 0, NOW, a));
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 1, 0, NOW + 1, b));
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER t_delete BEFORE DELETE ON meetings WHEN OLD.meeting_id = '%s'"
             " BEGIN SELECT RAISE(ABORT, 'injected'); END",
             b);
    KWT_EQ(raw(sql), 0);
    size_t deleted = 7;
    KWT_ERR(MT->instant_calls_cleanup(db->ctx, NOW + HOUR_MS, KW_INSTANT_CALL_IDLE_MS,
                                      KW_INSTANT_CALL_MAX_AGE_MS, NULL, NULL, 10, &deleted, &err),
            KW_ERR_STORE);
    KWT_EQ(deleted, 0);
    KWT_CHECK(exists(a) && exists(b));
    KWT_EQ(raw("DROP TRIGGER t_delete"), 0);
    /* No randomness: no id, no token, nothing stored. */
    kw_sqlite *s = db->ctx;
    const kw_random *saved = s->rnd;
    static const kw_random broken = {no_randomness, NULL};
    s->rnd = &broken;
    meetings = raw("SELECT count(*) FROM meetings");
    long long invitations = raw("SELECT count(*) FROM invitations");
    KWT_ERR(MT->meeting_create(db->ctx, &in, NOW, &out, &err), KW_ERR_CRYPTO);
    kw_db_invitation inv;
    char open_meeting[KW_DB_ID_MAX + 1];
    s->rnd = saved;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, open_meeting));
    s->rnd = &broken;
    KWT_ERR(MT->invitation_create(db->ctx, open_meeting, alice, NULL, 0, 0, NOW, &inv, &err),
            KW_ERR_CRYPTO);
    KWT_ERR(MT->channel_create(db->ctx, alice, "c", "signal", NOW, &c, &err), KW_ERR_CRYPTO);
    s->rnd = saved;
    KWT_EQ(raw("SELECT count(*) FROM meetings"), meetings + 1);
    KWT_EQ(raw("SELECT count(*) FROM invitations"), invitations);
    KWT_EQ(raw("SELECT count(*) FROM channels"), channels);
}

/* ---- handlers with presence --------------------------------------------------------- */

static kw_caller as; /* who the stub authenticator says is calling */

static kw_err auth_stub(kw_server *srv, kw_request *req, kw_error *err)
{
    (void)srv;
    (void)err;
    req->caller = as;
    return KW_OK;
}

/* Runs GET path?query through the real route tables; parsed JSON body (or NULL). */
static json_t *get(kw_server *srv, const char *path, const char *query, unsigned *status)
{
    char target[512];
    snprintf(target, sizeof target, "%s%s%s", path, query[0] ? "?" : "", query);
    kw_request req;
    memset(&req, 0, sizeof req);
    req.method = KW_GET;
    req.method_name = "GET";
    req.path = path;
    req.query = query;
    req.target = target;
    req.client_id = "stub"; /* any signing header makes an EITHER route ask for a member */
    req.now_ms = NOW;
    kw_response res;
    kw_dispatch out;
    kw_router_dispatch(srv, &req, &res, &out);
    *status = res.status;
    json_t *j = res.body ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
    kw_response_free(&res);
    return j;
}

static void present_devices_are_listed(void)
{
    kw_server srv;
    memset(&srv, 0, sizeof srv);
    srv.db = db;
    srv.auth_member = auth_stub;
    if (!KWT_CHECK(kw_presence_memory_new(&srv.presence) == KW_OK))
        return;
    const kw_presence_ops *P = srv.presence->ops;
    char id[KW_DB_ID_MAX + 1], tok[KW_INVITATION_TOKEN_CHARS + 1];
    kw_db_invitation inv;
    kw_error err;
    KWT_CHECK(create(alice, NOW, NOW + HOUR_MS, 0, 1, NOW, id));
    KWT_ERR(MT->participant_add(db->ctx, id, bob, KW_MEETING_ROLE_MANAGER, NOW, &err), KW_OK);
    KWT_ERR(MT->invitation_create(db->ctx, id, alice, NULL, 0, 0, NOW, &inv, &err), KW_OK);
    snprintf(tok, sizeof tok, "%s", inv.token);
    char path[256], info[256];
    snprintf(path, sizeof path, "/api/meetings/%s/participants", id);
    snprintf(info, sizeof info, "/api/meetings/external/join/%s", tok);
    as.kind = KW_CALLER_MEMBER;
    snprintf(as.user_id, sizeof as.user_id, "%s", bob);
    snprintf(as.device_id, sizeof as.device_id, "1");

    unsigned st = 0;
    json_t *j = get(&srv, info, "", &st);
    KWT_EQ(st, 200);
    KWT_CHECK(json_is_false(json_object_get(j, "has_active_participants")));
    json_decref(j);

    /* alice's device 1 on two sockets, bob's device 2, carol (not a participant) too. */
    KWT_ERR(P->video_register(srv.presence->ctx, id, 11, alice, "1", NOW - 3000), KW_OK);
    KWT_ERR(P->video_register(srv.presence->ctx, id, 12, bob, "2", NOW - 2000), KW_OK);
    KWT_ERR(P->video_register(srv.presence->ctx, id, 13, alice, "1", NOW - 1000), KW_OK);
    KWT_ERR(P->video_register(srv.presence->ctx, id, 14, carol, "1", NOW - 500), KW_OK);
    KWT_CHECK(add_guest("present_guest", id, "admitted", NOW - 100, NOW + HOUR_MS));
    j = get(&srv, path, "status=joined", &st);
    KWT_EQ(st, 200);
    json_t *arr = json_object_get(j, "participants");
    KWT_EQ(json_array_size(arr), 3);
    json_t *a = json_array_get(arr, 0), *b = json_array_get(arr, 1), *g = json_array_get(arr, 2);
    KWT_STREQ(json_string_value(json_object_get(a, "user_id")), alice);
    KWT_STREQ(json_string_value(json_object_get(a, "device_id")), "1");
    KWT_STREQ(json_string_value(json_object_get(a, "role")), "owner");
    char when[KW_TIME_TEXT_MAX];
    KWT_ERR(kw_time_format(NOW - 3000, when), KW_OK); /* the device's first socket */
    KWT_STREQ(json_string_value(json_object_get(a, "joined_at")), when);
    KWT_STREQ(json_string_value(json_object_get(b, "user_id")), bob);
    KWT_STREQ(json_string_value(json_object_get(b, "device_id")), "2");
    KWT_STREQ(json_string_value(json_object_get(b, "role")), "manager");
    KWT_EQ(json_object_size(b), 4);
    KWT_STREQ(json_string_value(json_object_get(g, "session_id")), "present_guest");
    json_decref(j);
    j = get(&srv, path, "exclude_external=true&status=joined", &st);
    KWT_EQ(json_array_size(json_object_get(j, "participants")), 2);
    json_decref(j);

    j = get(&srv, info, "", &st);
    KWT_EQ(st, 200);
    KWT_CHECK(json_is_true(json_object_get(j, "has_active_participants")));
    KWT_EQ(json_object_size(j), 6);
    json_decref(j);

    /* An outsider is refused even while others are present. */
    snprintf(as.user_id, sizeof as.user_id, "%s", carol);
    j = get(&srv, path, "", &st);
    KWT_EQ(st, 403);
    json_decref(j);
    kw_presence_free(srv.presence);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/keywave-test-meetings-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        kwt_cases_failed++;
        return kwt_finish();
    }
    kw_error err;
    if (kw_db_open_sqlite(dir, &db, &err) != KW_OK || db->meetings == NULL ||
        !new_user("alice", alice) || !new_user("bob", bob) || !new_user("carol", carol)) {
        printf("FAIL open: %s\n", err.detail);
        kwt_cases_failed++;
        kw_db_close(db);
        remove_dir(dir);
        return kwt_finish();
    }
    KWT_RUN(time_round_trips_and_boundaries);
    KWT_RUN(query_strings_are_strict);
    KWT_RUN(channels_and_roles);
    KWT_RUN(meeting_create_rules);
    KWT_RUN(meeting_update_rules);
    KWT_RUN(list_filters_and_boundaries);
    KWT_RUN(participants_and_roles);
    KWT_RUN(admitted_guests_are_listed);
    KWT_RUN(invitation_rules_and_boundaries);
    KWT_RUN(inv_9_delete_cascades);
    KWT_RUN(touch_never_goes_back);
    KWT_RUN(inv_10_instant_call_cleanup);
    KWT_RUN(inv_11_failures_change_nothing);
    KWT_RUN(present_devices_are_listed);
    kw_db_close(db);
    remove_dir(dir);
    return kwt_finish();
}
