/*
 * db_sqlite_meetings.c — the meetings ops table (db_meetings.h) on SQLite: channels and
 * their members, meetings with their participants, invitations, and the instant-call
 * cleanup (INV-10).
 *
 * Every op that writes runs in one BEGIN IMMEDIATE transaction and rolls back on any
 * failure, so a failed call changes nothing (INV-11). Deleting a meeting relies on the
 * schema's ON DELETE CASCADE for participants, invitations and guest sessions (INV-9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "db_sqlite.h"

/* ---- input rules ---------------------------------------------------------------- */

/* 1..max (min 0 when may_be_empty) bytes without control characters; newline, tab and
 * carriage return are allowed when multiline. The bytes are UTF-8 already: jansson only
 * hands out valid UTF-8. */
static int text_ok(const char *t, size_t max, int may_be_empty, int multiline)
{
    if (t == NULL)
        return 0;
    size_t n = 0;
    for (; t[n] != '\0'; n++) {
        unsigned char c = (unsigned char)t[n];
        if (n >= max)
            return 0;
        if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) || c == 0x7f)
            return 0;
    }
    return n > 0 || may_be_empty;
}

static int id_ok(const char *id)
{
    return id != NULL && id[0] != '\0' && strlen(id) <= KW_DB_ID_MAX;
}

static int token_ok(const char *t)
{
    size_t n = 0;
    for (; t != NULL && t[n] != '\0'; n++)
        if (n >= KW_INVITATION_TOKEN_CHARS ||
            !((t[n] >= '0' && t[n] <= '9') || (t[n] >= 'a' && t[n] <= 'f')))
            return 0;
    return n == KW_INVITATION_TOKEN_CHARS;
}

static const char *role_name(kw_meeting_role r)
{
    switch (r) {
    case KW_MEETING_ROLE_OWNER:
        return "owner";
    case KW_MEETING_ROLE_MANAGER:
        return "manager";
    case KW_MEETING_ROLE_MEMBER:
        return "member";
    case KW_MEETING_ROLE_NONE:
        break;
    }
    return NULL;
}

static kw_meeting_role role_parse(const unsigned char *t)
{
    if (t == NULL)
        return KW_MEETING_ROLE_NONE;
    if (strcmp((const char *)t, "owner") == 0)
        return KW_MEETING_ROLE_OWNER;
    if (strcmp((const char *)t, "manager") == 0)
        return KW_MEETING_ROLE_MANAGER;
    if (strcmp((const char *)t, "member") == 0)
        return KW_MEETING_ROLE_MEMBER;
    return KW_MEETING_ROLE_NONE;
}

/* ---- fresh values ---------------------------------------------------------------- */

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* prefix + 12 hex (6 random bytes). */
static kw_err new_id(kw_sqlite *s, const char *prefix, char out[KW_DB_ID_MAX + 1], kw_error *err)
{
    uint8_t raw[6];
    size_t p = strlen(prefix);
    kw_err rc = kw_random_fill(s->rnd, raw, sizeof raw);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot make an id");
    memcpy(out, prefix, p);
    hex(raw, sizeof raw, out + p);
    return KW_OK;
}

/* ---- statements ------------------------------------------------------------------ */

static const char SQL_USER_EXISTS[] = "SELECT 1 FROM users WHERE user_id = ?1";
static const char SQL_CHANNEL_INSERT[] = "INSERT INTO channels (channel_id, name, type, owner_id, "
                                         "created_ms) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_CHANNEL_MEMBER_INSERT[] =
    "INSERT INTO channel_members (channel_id, user_id, added_ms) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (channel_id, user_id) DO NOTHING";
static const char SQL_CHANNEL_GET[] =
    "SELECT name, type, owner_id, created_ms FROM channels WHERE channel_id = ?1";
static const char SQL_CHANNEL_ROLE[] =
    "SELECT owner_id, EXISTS (SELECT 1 FROM channel_members WHERE channel_id = ?1"
    " AND user_id = ?2) FROM channels WHERE channel_id = ?1";

#define MEETING_COLUMNS                                                                            \
    "m.meeting_id, m.title, m.description, m.start_ms, m.end_ms, m.is_instant_call,"               \
    " m.allow_external, m.created_by, m.created_ms, m.last_active_ms"

static const char SQL_MEETING_INSERT[] =
    "INSERT INTO meetings (meeting_id, title, description, start_ms, end_ms, is_instant_call,"
    " allow_external, created_by, created_ms, last_active_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
static const char SQL_MEETING_GET[] =
    "SELECT " MEETING_COLUMNS " FROM meetings m WHERE m.meeting_id = ?1";
static const char SQL_MEETING_UPDATE[] =
    "UPDATE meetings SET title = ?2, description = ?3, start_ms = ?4, end_ms = ?5,"
    " allow_external = ?6 WHERE meeting_id = ?1";
static const char SQL_MEETING_DELETE[] = "DELETE FROM meetings WHERE meeting_id = ?1";
static const char SQL_MEETING_TOUCH[] =
    "UPDATE meetings SET last_active_ms = max(last_active_ms, ?2) WHERE meeting_id = ?1";
static const char SQL_MEETING_LIST_MY[] =
    "SELECT " MEETING_COLUMNS " FROM meetings m JOIN meeting_participants p"
    " ON p.meeting_id = m.meeting_id WHERE p.user_id = ?1"
    " ORDER BY m.start_ms, m.meeting_id LIMIT ?2";
static const char SQL_MEETING_LIST_UPCOMING[] =
    "SELECT " MEETING_COLUMNS " FROM meetings m JOIN meeting_participants p"
    " ON p.meeting_id = m.meeting_id WHERE p.user_id = ?1 AND m.end_ms > ?3"
    " ORDER BY m.start_ms, m.meeting_id LIMIT ?2";
static const char SQL_MEETING_LIST_PAST[] =
    "SELECT " MEETING_COLUMNS " FROM meetings m JOIN meeting_participants p"
    " ON p.meeting_id = m.meeting_id WHERE p.user_id = ?1 AND m.end_ms <= ?3"
    " ORDER BY m.start_ms DESC, m.meeting_id LIMIT ?2";
/* One row when the meeting exists; the role column is NULL for a non-participant. */
static const char SQL_MEETING_ROLE[] =
    "SELECT (SELECT role FROM meeting_participants WHERE meeting_id = ?1 AND user_id = ?2)"
    " FROM meetings WHERE meeting_id = ?1";
static const char SQL_PARTICIPANT_UPSERT[] =
    "INSERT INTO meeting_participants (meeting_id, user_id, role, added_ms) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (meeting_id, user_id) DO UPDATE SET role = excluded.role";
static const char SQL_PARTICIPANT_DELETE[] =
    "DELETE FROM meeting_participants WHERE meeting_id = ?1 AND user_id = ?2";
static const char SQL_ADMITTED_GUESTS[] =
    "SELECT session_id, display_name, decided_ms FROM guest_sessions"
    " WHERE meeting_id = ?1 AND status = 'admitted' AND expires_ms > ?2"
    " ORDER BY decided_ms, session_id LIMIT ?3";
/* Instant calls nobody has been in for idle_ms, or older than max_age_ms, without an
 * admitted guest whose session is still valid (seed 000 phase 10: a guest keeps it). */
static const char SQL_CALLS_STALE[] =
    "SELECT meeting_id FROM meetings m WHERE is_instant_call = 1"
    " AND (last_active_ms <= ?1 OR created_ms <= ?2)"
    " AND NOT EXISTS (SELECT 1 FROM guest_sessions g WHERE g.meeting_id = m.meeting_id"
    "   AND g.status = 'admitted' AND g.expires_ms > ?3)"
    " ORDER BY last_active_ms, meeting_id LIMIT ?4";
static const char SQL_INVITATION_INSERT[] =
    "INSERT INTO invitations (token, meeting_id, label, created_by, created_ms, expires_ms,"
    " max_uses) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_INVITATION_LIST[] =
    "SELECT token, label, created_ms, expires_ms, max_uses, uses, revoked_ms FROM invitations"
    " WHERE meeting_id = ?1 ORDER BY created_ms, rowid LIMIT ?2";
static const char SQL_INVITATION_REVOKE[] =
    "UPDATE invitations SET revoked_ms = coalesce(revoked_ms, ?3)"
    " WHERE token = ?1 AND meeting_id = ?2";
static const char SQL_INVITATION_CHECK[] =
    "SELECT i.meeting_id, i.expires_ms, i.max_uses, i.uses, i.revoked_ms, m.allow_external"
    " FROM invitations i JOIN meetings m ON m.meeting_id = i.meeting_id WHERE i.token = ?1";

/* An integer column, 0 when NULL. */
static int64_t column_int0(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, col);
}

static void bind_text_or_empty(sqlite3_stmt *st, int i, const char *t)
{
    sqlite3_bind_text(st, i, t ? t : "", -1, SQLITE_STATIC);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* Runs st (bound) to completion; KW_OK on SQLITE_DONE. Resets st. */
static kw_err step_done(kw_sqlite *s, sqlite3_stmt *st, const char *what, kw_error *err)
{
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    return r == SQLITE_DONE ? KW_OK : kw_sqlite_fail(s, what, err);
}

static kw_err user_exists(kw_sqlite *s, const char *user_id, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_USER_EXISTS, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_sqlite_reset(st);
    if (r == SQLITE_ROW)
        return KW_OK;
    if (r == SQLITE_DONE)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "user_id: no such user");
    return kw_sqlite_fail(s, "read user", err);
}

/* Reads the meeting row st is on (MEETING_COLUMNS). 0 if a column is malformed. */
static int meeting_row(sqlite3_stmt *st, kw_db_meeting *m)
{
    memset(m, 0, sizeof *m);
    if (!kw_sqlite_column_text(st, 0, m->meeting_id, sizeof m->meeting_id) ||
        !kw_sqlite_column_text(st, 1, m->title, sizeof m->title) ||
        !kw_sqlite_column_text(st, 2, m->description, sizeof m->description) ||
        !kw_sqlite_column_text(st, 7, m->created_by, sizeof m->created_by))
        return 0;
    m->start_ms = sqlite3_column_int64(st, 3);
    m->end_ms = sqlite3_column_int64(st, 4);
    m->is_instant_call = sqlite3_column_int(st, 5) != 0;
    m->allow_external = sqlite3_column_int(st, 6) != 0;
    m->created_ms = sqlite3_column_int64(st, 8);
    m->last_active_ms = sqlite3_column_int64(st, 9);
    return 1;
}

static int read_meeting(sqlite3_stmt *st, void *elem)
{
    return meeting_row(st, elem);
}

/* session_id, display_name, decided_ms (SQL_ADMITTED_GUESTS). */
static int read_guest(sqlite3_stmt *st, void *elem)
{
    kw_db_admitted_guest *g = elem;
    g->admitted_ms = column_int0(st, 2);
    return kw_sqlite_column_text(st, 0, g->session_id, sizeof g->session_id) &&
           kw_sqlite_column_text(st, 1, g->display_name, sizeof g->display_name);
}

/* token, label, created_ms, expires_ms, max_uses, uses, revoked_ms (SQL_INVITATION_LIST);
 * meeting_id is the caller's to fill. */
static int read_invitation(sqlite3_stmt *st, void *elem)
{
    kw_db_invitation *v = elem;
    v->created_ms = sqlite3_column_int64(st, 2);
    v->expires_ms = column_int0(st, 3);
    v->max_uses = column_int0(st, 4);
    v->uses = sqlite3_column_int64(st, 5);
    v->revoked_ms = column_int0(st, 6);
    return kw_sqlite_column_text(st, 0, v->token, sizeof v->token) &&
           kw_sqlite_column_text(st, 1, v->label, sizeof v->label);
}

static kw_err meeting_read(kw_sqlite *s, const char *meeting_id, kw_db_meeting *out, kw_error *err)
{
    if (!id_ok(meeting_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_MEETING_GET, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    else if (r != SQLITE_ROW)
        rc = kw_sqlite_fail(s, "read meeting", err);
    else if (!meeting_row(st, out))
        rc = kw_sqlite_fail(s, "meeting row malformed", err);
    kw_sqlite_reset(st);
    return rc;
}

static kw_err role_read(kw_sqlite *s, const char *meeting_id, const char *user_id,
                        kw_meeting_role *out, kw_error *err)
{
    *out = KW_MEETING_ROLE_NONE;
    if (!id_ok(meeting_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_MEETING_ROLE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id ? user_id : "", -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_ROW)
        *out = role_parse(sqlite3_column_text(st, 0));
    else if (r == SQLITE_DONE)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    else
        rc = kw_sqlite_fail(s, "read meeting role", err);
    kw_sqlite_reset(st);
    return rc;
}

/* Reads the row st is on into elem; 0 if a column is malformed. */
typedef int (*row_reader)(sqlite3_stmt *st, void *elem);

/*
 * Steps the bound statement st to its end, reading each row with read into a malloc'd
 * array of elem_size elements (*out, free(); NULL when *n is 0), and resets st. On failure
 * *out is NULL and what was read is wiped first (rows may hold invitation tokens).
 * Errors: KW_ERR_NOMEM, KW_ERR_STORE (what names the statement).
 */
static kw_err collect_rows(kw_sqlite *s, sqlite3_stmt *st, size_t elem_size, row_reader read,
                           const char *what, void **out, size_t *n, kw_error *err)
{
    unsigned char *list = NULL;
    size_t count = 0, cap = 0;
    kw_err rc = KW_OK;
    int r;
    *out = NULL;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) { /* the queries' LIMIT bounds this at KW_DB_LIST_MAX rows */
            size_t ncap = cap ? cap * 2 : 8;
            unsigned char *bigger = realloc(list, ncap * elem_size);
            if (bigger == NULL) {
                rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
                break;
            }
            list = bigger;
            cap = ncap;
        }
        memset(list + count * elem_size, 0, elem_size);
        if (!read(st, list + count * elem_size)) {
            rc = kw_sqlite_fail(s, "row malformed", err);
            break;
        }
        count++;
    }
    if (rc == KW_OK && r != SQLITE_DONE)
        rc = kw_sqlite_fail(s, what, err);
    kw_sqlite_reset(st);
    if (rc != KW_OK) {
        if (list != NULL)
            kw_wipe(list, cap * elem_size);
        free(list);
        return rc;
    }
    *out = list;
    *n = count;
    return KW_OK;
}

/* ---- channels -------------------------------------------------------------------- */

static kw_err channel_create(void *ctx, const char *owner_id, const char *name, const char *type,
                             int64_t now_ms, kw_db_channel *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    if (!text_ok(name, KW_CHANNEL_NAME_MAX, 0, 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "name: 1..%d bytes without control characters", KW_CHANNEL_NAME_MAX);
    if (type == NULL || (strcmp(type, "signal") != 0 && strcmp(type, "webrtc") != 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "type: \"signal\" or \"webrtc\"");
    if (!id_ok(owner_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such user");
    kw_db_channel c = {0};
    kw_err rc = new_id(s, "chn_", c.channel_id, err);
    if (rc != KW_OK)
        return rc;
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.type, sizeof c.type, "%s", type);
    snprintf(c.owner_id, sizeof c.owner_id, "%s", owner_id);
    c.created_ms = now_ms;
    if ((rc = kw_sqlite_begin(s, err)) != KW_OK)
        return rc;
    if ((rc = user_exists(s, owner_id, err)) != KW_OK)
        goto fail;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CHANNEL_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, c.channel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c.type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c.owner_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    if ((rc = step_done(s, st, "insert channel", err)) != KW_OK)
        goto fail;
    if ((st = kw_sqlite_stmt(s, SQL_CHANNEL_MEMBER_INSERT, err)) == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, c.channel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c.owner_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    if ((rc = step_done(s, st, "insert channel member", err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    *out = c;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err channel_get(void *ctx, const char *channel_id, kw_db_channel *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    if (!id_ok(channel_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such channel");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CHANNEL_GET, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, channel_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such channel");
    else if (r != SQLITE_ROW)
        rc = kw_sqlite_fail(s, "read channel", err);
    else if (!kw_sqlite_column_text(st, 0, out->name, sizeof out->name) ||
             !kw_sqlite_column_text(st, 1, out->type, sizeof out->type) ||
             !kw_sqlite_column_text(st, 2, out->owner_id, sizeof out->owner_id))
        rc = kw_sqlite_fail(s, "channel row malformed", err);
    else {
        snprintf(out->channel_id, sizeof out->channel_id, "%s", channel_id);
        out->created_ms = sqlite3_column_int64(st, 3);
    }
    kw_sqlite_reset(st);
    return rc;
}

static kw_err channel_role(void *ctx, const char *channel_id, const char *user_id,
                           kw_meeting_role *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = KW_MEETING_ROLE_NONE;
    if (!id_ok(channel_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such channel");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CHANNEL_ROLE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, channel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id ? user_id : "", -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_ROW) {
        const unsigned char *owner = sqlite3_column_text(st, 0);
        if (owner != NULL && user_id != NULL && strcmp((const char *)owner, user_id) == 0)
            *out = KW_MEETING_ROLE_OWNER;
        else if (sqlite3_column_int(st, 1) != 0)
            *out = KW_MEETING_ROLE_MEMBER;
    } else if (r == SQLITE_DONE) {
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such channel");
    } else {
        rc = kw_sqlite_fail(s, "read channel role", err);
    }
    kw_sqlite_reset(st);
    return rc;
}

static kw_err channel_member_add(void *ctx, const char *channel_id, const char *user_id,
                                 int64_t now_ms, kw_error *err)
{
    kw_sqlite *s = ctx;
    kw_meeting_role role;
    if (!id_ok(user_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "user_id: no such user");
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = channel_role(s, channel_id, user_id, &role, err)) != KW_OK ||
        (rc = user_exists(s, user_id, err)) != KW_OK)
        goto fail;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CHANNEL_MEMBER_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, channel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    if ((rc = step_done(s, st, "insert channel member", err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

/* ---- meetings -------------------------------------------------------------------- */

static kw_err title_check(const char *title, kw_error *err)
{
    if (!text_ok(title, KW_MEETING_TITLE_MAX, 0, 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "title: 1..%d bytes without control characters", KW_MEETING_TITLE_MAX);
    return KW_OK;
}

static kw_err description_check(const char *description, kw_error *err)
{
    if (!text_ok(description, KW_MEETING_DESCRIPTION_MAX, 1, 1))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "description: at most %d bytes, no control characters but newlines",
                            KW_MEETING_DESCRIPTION_MAX);
    return KW_OK;
}

static kw_err meeting_fields_ok(const char *title, const char *description, int64_t start_ms,
                                int64_t end_ms, kw_error *err)
{
    kw_err rc = title_check(title, err);
    if (rc == KW_OK)
        rc = description_check(description, err);
    if (rc == KW_OK && (start_ms < 0 || end_ms < 0 || start_ms >= end_ms))
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "end_time: must be after start_time");
    return rc;
}

static kw_err participant_write(kw_sqlite *s, const char *meeting_id, const char *user_id,
                                kw_meeting_role role, int64_t now_ms, kw_error *err)
{
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PARTICIPANT_UPSERT, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return step_done(s, st, "write participant", err);
}

static kw_err meeting_create(void *ctx, const kw_db_meeting *in, int64_t now_ms, kw_db_meeting *out,
                             kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    kw_err rc = meeting_fields_ok(in->title, in->description, in->start_ms, in->end_ms, err);
    if (rc != KW_OK)
        return rc;
    if (!id_ok(in->created_by))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such user");
    kw_db_meeting m = *in;
    m.is_instant_call = in->is_instant_call != 0;
    m.allow_external = in->allow_external != 0;
    m.created_ms = m.last_active_ms = now_ms;
    if ((rc = new_id(s, m.is_instant_call ? "call_" : "mtg_", m.meeting_id, err)) != KW_OK)
        return rc;
    if ((rc = kw_sqlite_begin(s, err)) != KW_OK)
        return rc;
    if ((rc = user_exists(s, m.created_by, err)) != KW_OK)
        goto fail;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_MEETING_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, m.meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m.title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m.description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, m.start_ms);
    sqlite3_bind_int64(st, 5, m.end_ms);
    sqlite3_bind_int(st, 6, m.is_instant_call);
    sqlite3_bind_int(st, 7, m.allow_external);
    sqlite3_bind_text(st, 8, m.created_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, now_ms);
    if ((rc = step_done(s, st, "insert meeting", err)) != KW_OK ||
        (rc = participant_write(s, m.meeting_id, m.created_by, KW_MEETING_ROLE_OWNER, now_ms,
                                err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    *out = m;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err meeting_get(void *ctx, const char *meeting_id, kw_db_meeting *out, kw_error *err)
{
    return meeting_read(ctx, meeting_id, out, err);
}

static kw_err meeting_update(void *ctx, const char *meeting_id, const kw_db_meeting_patch *patch,
                             kw_db_meeting *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (!(patch->has_title || patch->has_description || patch->has_start || patch->has_end ||
          patch->has_allow_external))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "body: no field to change");
    kw_db_meeting *m = malloc(sizeof *m);
    if (m == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK) {
        free(m);
        return rc;
    }
    if ((rc = meeting_read(s, meeting_id, m, err)) != KW_OK)
        goto fail;
    if ((patch->has_title && (rc = title_check(patch->title, err)) != KW_OK) ||
        (patch->has_description && (rc = description_check(patch->description, err)) != KW_OK))
        goto fail;
    if (patch->has_title)
        snprintf(m->title, sizeof m->title, "%s", patch->title);
    if (patch->has_description)
        snprintf(m->description, sizeof m->description, "%s", patch->description);
    if (patch->has_start)
        m->start_ms = patch->start_ms;
    if (patch->has_end)
        m->end_ms = patch->end_ms;
    if (patch->has_allow_external)
        m->allow_external = patch->allow_external != 0;
    if ((rc = meeting_fields_ok(m->title, m->description, m->start_ms, m->end_ms, err)) != KW_OK)
        goto fail;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_MEETING_UPDATE, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, m->meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, m->start_ms);
    sqlite3_bind_int64(st, 5, m->end_ms);
    sqlite3_bind_int(st, 6, m->allow_external);
    if ((rc = step_done(s, st, "update meeting", err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    if (out != NULL)
        *out = *m;
    free(m);
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    free(m);
    return rc;
}

static kw_err meeting_delete(void *ctx, const char *meeting_id, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (!id_ok(meeting_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_MEETING_DELETE, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    if ((rc = step_done(s, st, "delete meeting", err)) != KW_OK) /* INV-9: cascades */
        goto fail;
    if (sqlite3_changes(s->db) == 0) {
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
        goto fail;
    }
    if ((rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err meeting_list(void *ctx, const char *user_id, kw_meeting_filter filter, int64_t now_ms,
                           kw_db_meeting **out, size_t *n, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = NULL;
    *n = 0;
    const char *sql = NULL;
    switch (filter) {
    case KW_MEETING_FILTER_MY:
        sql = SQL_MEETING_LIST_MY;
        break;
    case KW_MEETING_FILTER_UPCOMING:
        sql = SQL_MEETING_LIST_UPCOMING;
        break;
    case KW_MEETING_FILTER_PAST:
        sql = SQL_MEETING_LIST_PAST;
        break;
    }
    if (sql == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "filter: my, upcoming or past");
    sqlite3_stmt *st = kw_sqlite_stmt(s, sql, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, user_id ? user_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, KW_DB_LIST_MAX);
    if (filter != KW_MEETING_FILTER_MY)
        sqlite3_bind_int64(st, 3, now_ms);
    void *list = NULL;
    kw_err rc =
        collect_rows(s, st, sizeof(kw_db_meeting), read_meeting, "list meetings", &list, n, err);
    *out = list;
    return rc;
}

static kw_err meeting_role(void *ctx, const char *meeting_id, const char *user_id,
                           kw_meeting_role *out, kw_error *err)
{
    return role_read(ctx, meeting_id, user_id, out, err);
}

static kw_err meeting_touch(void *ctx, const char *meeting_id, int64_t now_ms, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (!id_ok(meeting_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_MEETING_TOUCH, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    kw_err rc = step_done(s, st, "touch meeting", err);
    if (rc == KW_OK && sqlite3_changes(s->db) == 0)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    return rc;
}

static kw_err instant_calls_cleanup(void *ctx, int64_t now_ms, int64_t idle_ms, int64_t max_age_ms,
                                    kw_meeting_active_fn is_active, void *arg, size_t max_rows,
                                    size_t *deleted, kw_error *err)
{
    kw_sqlite *s = ctx;
    size_t done = 0;
    if (deleted != NULL)
        *deleted = 0;
    if (max_rows == 0)
        return KW_OK;
    if (max_rows > KW_DB_LIST_MAX)
        max_rows = KW_DB_LIST_MAX;
    typedef char call_id[KW_DB_ID_MAX + 1];
    call_id *ids = malloc(max_rows * sizeof *ids);
    if (ids == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    size_t n = 0;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK) {
        free(ids);
        return rc;
    }
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_CALLS_STALE, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, now_ms - idle_ms);
    sqlite3_bind_int64(st, 2, now_ms - max_age_ms);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, (int64_t)max_rows);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && n < max_rows)
        if (kw_sqlite_column_text(st, 0, ids[n], sizeof ids[n]))
            n++;
    kw_sqlite_reset(st);
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        rc = kw_sqlite_fail(s, "list stale calls", err);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        /* Someone present (presence) keeps the call and counts as activity. */
        int busy = is_active != NULL && is_active(arg, ids[i]);
        st = kw_sqlite_stmt(s, busy ? SQL_MEETING_TOUCH : SQL_MEETING_DELETE, err);
        if (st == NULL) {
            rc = err->code;
            goto fail;
        }
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        if (busy)
            sqlite3_bind_int64(st, 2, now_ms);
        if ((rc = step_done(s, st, busy ? "touch call" : "delete call", err)) != KW_OK)
            goto fail;
        if (!busy)
            done++; /* INV-10; invitations and guest sessions cascade (INV-9) */
    }
    if ((rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    free(ids);
    if (deleted != NULL)
        *deleted = done;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    free(ids);
    return rc;
}

/* ---- participants ---------------------------------------------------------------- */

static kw_err participant_add(void *ctx, const char *meeting_id, const char *user_id,
                              kw_meeting_role role, int64_t now_ms, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (role != KW_MEETING_ROLE_MEMBER && role != KW_MEETING_ROLE_MANAGER)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "role: \"member\" or \"manager\"");
    if (!id_ok(user_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "user_id: no such user");
    kw_meeting_role current;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = role_read(s, meeting_id, user_id, &current, err)) != KW_OK ||
        (rc = user_exists(s, user_id, err)) != KW_OK)
        goto fail;
    if (current == KW_MEETING_ROLE_OWNER) {
        rc = kw_error_set(err, KW_ERR_CONFLICT, "user_id: the owner's role cannot change");
        goto fail;
    }
    if ((rc = participant_write(s, meeting_id, user_id, role, now_ms, err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err participant_remove(void *ctx, const char *meeting_id, const char *user_id,
                                 kw_error *err)
{
    kw_sqlite *s = ctx;
    kw_meeting_role current;
    kw_err rc = kw_sqlite_begin(s, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = role_read(s, meeting_id, user_id, &current, err)) != KW_OK)
        goto fail;
    if (current == KW_MEETING_ROLE_NONE) {
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "userId: not a participant of this meeting");
        goto fail;
    }
    if (current == KW_MEETING_ROLE_OWNER) {
        rc = kw_error_set(err, KW_ERR_CONFLICT, "userId: the owner cannot be removed");
        goto fail;
    }
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_PARTICIPANT_DELETE, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    if ((rc = step_done(s, st, "delete participant", err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    return rc;
}

static kw_err admitted_guests(void *ctx, const char *meeting_id, int64_t now_ms,
                              kw_db_admitted_guest **out, size_t *n, kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_ADMITTED_GUESTS, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id ? meeting_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int(st, 3, KW_DB_LIST_MAX);
    void *list = NULL;
    kw_err rc = collect_rows(s, st, sizeof(kw_db_admitted_guest), read_guest,
                             "list admitted guests", &list, n, err);
    *out = list;
    return rc;
}

/* ---- invitations ----------------------------------------------------------------- */

static kw_err invitation_create(void *ctx, const char *meeting_id, const char *created_by,
                                const char *label, int64_t expires_ms, int64_t max_uses,
                                int64_t now_ms, kw_db_invitation *out, kw_error *err)
{
    kw_sqlite *s = ctx;
    memset(out, 0, sizeof *out);
    if (label == NULL)
        label = "";
    if (!text_ok(label, KW_INVITATION_LABEL_MAX, 1, 0))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "label: at most %d bytes without control characters",
                            KW_INVITATION_LABEL_MAX);
    if (expires_ms != 0 && expires_ms <= now_ms)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "expires_at: must be in the future");
    if (max_uses < 0 || max_uses > KW_INVITATION_MAX_USES_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "max_uses: 1..%d",
                            KW_INVITATION_MAX_USES_MAX);
    if (!id_ok(meeting_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such meeting");
    kw_db_invitation inv = {0};
    uint8_t raw[KW_INVITATION_TOKEN_CHARS / 2];
    kw_err rc = kw_random_fill(s->rnd, raw, sizeof raw);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot make an invitation token");
    hex(raw, sizeof raw, inv.token);
    kw_wipe(raw, sizeof raw);
    snprintf(inv.meeting_id, sizeof inv.meeting_id, "%s", meeting_id);
    snprintf(inv.label, sizeof inv.label, "%s", label);
    inv.created_ms = now_ms;
    inv.expires_ms = expires_ms;
    inv.max_uses = max_uses;
    kw_db_meeting *m = malloc(sizeof *m);
    if (m == NULL) {
        kw_wipe(&inv, sizeof inv);
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    }
    if ((rc = kw_sqlite_begin(s, err)) != KW_OK)
        goto fail;
    if ((rc = meeting_read(s, meeting_id, m, err)) != KW_OK)
        goto fail;
    if (!m->allow_external) {
        rc = kw_error_set(err, KW_ERR_CONFLICT, "the meeting does not allow external guests");
        goto fail;
    }
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_INVITATION_INSERT, err);
    if (st == NULL) {
        rc = err->code;
        goto fail;
    }
    sqlite3_bind_text(st, 1, inv.token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, inv.meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, inv.label, -1, SQLITE_STATIC);
    bind_text_or_empty(st, 4, created_by);
    sqlite3_bind_int64(st, 5, now_ms);
    bind_int_or_null(st, 6, expires_ms);
    bind_int_or_null(st, 7, max_uses);
    if ((rc = step_done(s, st, "insert invitation", err)) != KW_OK ||
        (rc = kw_sqlite_commit(s, err)) != KW_OK)
        goto fail;
    free(m);
    *out = inv;
    kw_wipe(&inv, sizeof inv);
    return KW_OK;
fail:
    kw_sqlite_rollback(s);
    free(m);
    kw_wipe(&inv, sizeof inv);
    return rc;
}

static kw_err invitation_list(void *ctx, const char *meeting_id, kw_db_invitation **out, size_t *n,
                              kw_error *err)
{
    kw_sqlite *s = ctx;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_INVITATION_LIST, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, meeting_id ? meeting_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, KW_DB_LIST_MAX);
    void *list = NULL;
    kw_err rc = collect_rows(s, st, sizeof(kw_db_invitation), read_invitation, "list invitations",
                             &list, n, err);
    *out = list;
    for (size_t i = 0; rc == KW_OK && i < *n; i++)
        snprintf((*out)[i].meeting_id, sizeof(*out)[i].meeting_id, "%s", meeting_id);
    return rc;
}

static kw_err invitation_revoke(void *ctx, const char *meeting_id, const char *token,
                                int64_t now_ms, kw_error *err)
{
    kw_sqlite *s = ctx;
    if (!token_ok(token) || !id_ok(meeting_id))
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such invitation in this meeting");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_INVITATION_REVOKE, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meeting_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    kw_err rc = step_done(s, st, "revoke invitation", err);
    if (rc == KW_OK && sqlite3_changes(s->db) == 0)
        rc = kw_error_set(err, KW_ERR_NOT_FOUND, "no such invitation in this meeting");
    return rc;
}

static kw_err invitation_check(void *ctx, const char *token, int64_t now_ms,
                               char meeting_id[KW_DB_ID_MAX + 1], kw_error *err)
{
    kw_sqlite *s = ctx;
    meeting_id[0] = '\0';
    if (!token_ok(token))
        return kw_error_set(err, KW_ERR_UNKNOWN_INVITATION, "no such invitation");
    sqlite3_stmt *st = kw_sqlite_stmt(s, SQL_INVITATION_CHECK, err);
    if (st == NULL)
        return err->code;
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    kw_err rc = KW_OK;
    if (r == SQLITE_DONE) {
        rc = kw_error_set(err, KW_ERR_UNKNOWN_INVITATION, "no such invitation");
    } else if (r != SQLITE_ROW || !kw_sqlite_column_text(st, 0, meeting_id, KW_DB_ID_MAX + 1)) {
        rc = kw_sqlite_fail(s, "read invitation", err);
    } else {
        int64_t expires = column_int0(st, 1), max_uses = column_int0(st, 2);
        int64_t uses = sqlite3_column_int64(st, 3), revoked = column_int0(st, 4);
        int allow_external = sqlite3_column_int(st, 5);
        /* INV-9 */
        if (revoked != 0)
            rc = kw_error_set(err, KW_ERR_INVITATION_REVOKED, "the invitation was revoked");
        else if (expires != 0 && now_ms >= expires)
            rc = kw_error_set(err, KW_ERR_INVITATION_EXPIRED, "the invitation has expired");
        else if (!allow_external) /* the owner switched guests off: every link stops */
            rc = kw_error_set(err, KW_ERR_FORBIDDEN, "the meeting does not allow external guests");
        else if (max_uses != 0 && uses >= max_uses)
            rc = kw_error_set(err, KW_ERR_INVITATION_EXHAUSTED, "the invitation has been used up");
    }
    kw_sqlite_reset(st);
    if (rc != KW_OK)
        meeting_id[0] = '\0';
    return rc;
}

const kw_db_meetings_ops kw_sqlite_meetings_ops = {
    .channel_create = channel_create,
    .channel_get = channel_get,
    .channel_role = channel_role,
    .channel_member_add = channel_member_add,
    .meeting_create = meeting_create,
    .meeting_get = meeting_get,
    .meeting_update = meeting_update,
    .meeting_delete = meeting_delete,
    .meeting_list = meeting_list,
    .meeting_role = meeting_role,
    .meeting_touch = meeting_touch,
    .instant_calls_cleanup = instant_calls_cleanup,
    .participant_add = participant_add,
    .participant_remove = participant_remove,
    .admitted_guests = admitted_guests,
    .invitation_create = invitation_create,
    .invitation_list = invitation_list,
    .invitation_revoke = invitation_revoke,
    .invitation_check = invitation_check,
};
