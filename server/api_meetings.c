/*
 * api_meetings.c — meetings, instant calls and their participants (DESIGN.md section 7),
 * plus the helpers the other meeting-side route files share (api_meetings.h) and the
 * RFC 3339 time functions of db_meetings.h.
 *
 * Who may do what: any member creates a meeting or an instant call and becomes its owner;
 * a participant (any role) reads it; only the owner changes or deletes it; the owner or a
 * manager adds participants and removes them (anyone may remove themself; the owner can
 * never be removed: 409 conflict). The participants list (who is present now) is open to
 * the meeting's participants and to the meeting's own guests (waiting or admitted), who
 * need it to fetch present members' bundles. Unknown meeting 404, otherwise not allowed
 * 403 (api_meetings.h).
 */
#include "api_meetings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "db.h"
#include "db_guests.h"
#include "presence.h"
#include "rt.h"
#include "server.h"

/* ---- RFC 3339 ------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* n decimal digits at p into *out; 0 if any is not a digit. */
static int digits(const char *p, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

kw_err kw_time_parse(const char *t, int64_t *ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t y, mo, d, h, mi, s, frac = 0;
    *ms = 0;
    if (t == NULL || strlen(t) < 20 || !digits(t, 4, &y) || t[4] != '-' || !digits(t + 5, 2, &mo) ||
        t[7] != '-' || !digits(t + 8, 2, &d) || t[10] != 'T' || !digits(t + 11, 2, &h) ||
        t[13] != ':' || !digits(t + 14, 2, &mi) || t[16] != ':' || !digits(t + 17, 2, &s))
        return KW_ERR_INVALID_ARGUMENT;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || h > 23 || mi > 59 || s > 59)
        return KW_ERR_INVALID_ARGUMENT;
    const char *p = t + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        if (n == 0 || n > 9)
            return KW_ERR_INVALID_ARGUMENT;
        for (; n < 3; n++)
            frac *= 10;
    }
    int64_t offset_min = 0;
    if (p[0] == 'Z' && p[1] == '\0') {
        offset_min = 0;
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
        int64_t oh, om;
        if (!digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return KW_ERR_INVALID_ARGUMENT;
        offset_min = (oh * 60 + om) * (p[0] == '+' ? 1 : -1);
    } else {
        return KW_ERR_INVALID_ARGUMENT;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
    if (secs < 0)
        return KW_ERR_INVALID_ARGUMENT;
    *ms = secs * 1000 + frac;
    return KW_OK;
}

kw_err kw_time_format(int64_t ms, char out[KW_TIME_TEXT_MAX])
{
    out[0] = '\0';
    if (ms < 0 || ms > 253402300799999LL)
        return KW_ERR_INVALID_ARGUMENT;
    int64_t secs = ms / 1000, frac = ms % 1000;
    int64_t y, mo, d, rem = secs % 86400;
    civil_from_days(secs / 86400, &y, &mo, &d);
    int n;
    if (frac == 0)
        n = snprintf(out, KW_TIME_TEXT_MAX, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ",
                     (long long)y, (long long)mo, (long long)d, (long long)(rem / 3600),
                     (long long)(rem / 60 % 60), (long long)(rem % 60));
    else
        n = snprintf(out, KW_TIME_TEXT_MAX, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                     (long long)y, (long long)mo, (long long)d, (long long)(rem / 3600),
                     (long long)(rem / 60 % 60), (long long)(rem % 60), (long long)frac);
    if (n < 0 || n >= KW_TIME_TEXT_MAX) {
        out[0] = '\0';
        return KW_ERR_INVALID_ARGUMENT;
    }
    return KW_OK;
}

/* ---- shared helpers -------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes len bytes of in ('+' is a space) into out (cap); 0 if malformed, too
 * long, or holding a control character. */
static int query_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return 0;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || o + 1 >= cap)
            return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 1;
}

kw_err kw_api_query(const char *query, kw_api_query_field *fields, size_t n, kw_error *err)
{
    for (size_t i = 0; i < n; i++) {
        fields[i].value[0] = '\0';
        fields[i].present = 0;
    }
    const char *p = query ? query : "";
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        char name[KW_API_QUERY_VALUE_MAX + 1];
        if (name_len == 0 || !query_decode(p, name_len, name, sizeof name))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "query: malformed parameter");
        kw_api_query_field *f = NULL;
        for (size_t i = 0; i < n && f == NULL; i++)
            if (strcmp(fields[i].name, name) == 0)
                f = &fields[i];
        if (f == NULL)
            return kw_error_set(err, KW_ERR_UNKNOWN_FIELD, "query: unknown parameter %s", name);
        if (f->present)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "query: %s given twice", f->name);
        const char *v = eq ? eq + 1 : p + len;
        size_t vlen = (size_t)(p + len - v);
        if (!query_decode(v, vlen, f->value, sizeof f->value))
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "query: %s is malformed", f->name);
        f->present = 1;
        p += len;
        if (*p == '&')
            p++;
    }
    return KW_OK;
}

kw_err kw_api_meeting_access(kw_server *srv, const kw_request *req, const char *meeting_id,
                             kw_meeting_role min, kw_meeting_role *role, kw_db_meeting *m,
                             kw_error *err)
{
    kw_meeting_role r = KW_MEETING_ROLE_NONE;
    if (role != NULL)
        *role = r;
    /* Cannot happen behind the router (member rows): fail safely anyway. */
    if (srv->db == NULL || srv->db->meetings == NULL || req->caller.kind != KW_CALLER_MEMBER)
        return kw_error_set(err, KW_ERR_INTERNAL, "no authenticated member");
    kw_err rc =
        srv->db->meetings->meeting_role(srv->db->ctx, meeting_id, req->caller.user_id, &r, err);
    if (rc != KW_OK)
        return rc;
    if (r == KW_MEETING_ROLE_NONE || r < min)
        return kw_error_set(err, KW_ERR_FORBIDDEN,
                            r == KW_MEETING_ROLE_NONE ? "you are not a participant of this meeting"
                            : min == KW_MEETING_ROLE_OWNER
                                ? "only the meeting's owner may do this"
                                : "only the owner or a manager may do this");
    if (m != NULL &&
        (rc = srv->db->meetings->meeting_get(srv->db->ctx, meeting_id, m, err)) != KW_OK)
        return rc;
    if (role != NULL)
        *role = r;
    return KW_OK;
}

json_t *kw_api_time_json(int64_t ms)
{
    char t[KW_TIME_TEXT_MAX];
    if (ms == 0)
        return json_null();
    return kw_time_format(ms, t) == KW_OK ? json_string(t) : NULL;
}

json_t *kw_api_meeting_json(const kw_db_meeting *m)
{
    char start[KW_TIME_TEXT_MAX], end[KW_TIME_TEXT_MAX], created[KW_TIME_TEXT_MAX];
    if (kw_time_format(m->start_ms, start) != KW_OK || kw_time_format(m->end_ms, end) != KW_OK ||
        kw_time_format(m->created_ms, created) != KW_OK)
        return NULL; /* cannot happen: stored times come from kw_time_parse or the clock */
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s}", "meeting_id", m->meeting_id,
                     "title", m->title, "description", m->description, "start_time", start,
                     "end_time", end, "is_instant_call", m->is_instant_call, "allow_external",
                     m->allow_external, "created_by", m->created_by, "created_at", created);
}

kw_err kw_api_opt_string(json_t *obj, const char *field, size_t min, size_t max, const char **out,
                         kw_error *err)
{
    *out = NULL;
    if (json_object_get(obj, field) == NULL)
        return KW_OK;
    return kw_api_string(obj, "", field, min, max, out, err);
}

kw_err kw_api_opt_bool(json_t *obj, const char *field, int *out, kw_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL)
        return KW_OK;
    if (!json_is_boolean(v))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: not a boolean", field);
    *out = json_is_true(v);
    return KW_OK;
}

kw_err kw_api_time_field(json_t *obj, const char *field, int64_t *ms, kw_error *err)
{
    const char *text = NULL;
    kw_err rc = kw_api_string(obj, "", field, 20, 40, &text, err);
    if (rc == KW_OK && kw_time_parse(text, ms) != KW_OK)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                          "%s: an RFC 3339 time like 2026-11-22T10:00:00Z", field);
    return rc;
}

kw_err kw_api_reply_ok(kw_response *res, kw_error *err)
{
    kw_err rc = kw_response_json(res, 200, "{\"ok\":true}");
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

kw_err kw_api_body_optional(const kw_request *req, const char *const *allowed, json_t **out,
                            kw_error *err)
{
    if (req->body == NULL || req->body_len == 0) {
        *out = json_object();
        return *out != NULL ? KW_OK : kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    }
    return kw_api_body_object(req, allowed, out, err);
}

static kw_err reply_meeting(kw_response *res, unsigned status, const kw_db_meeting *m,
                            kw_error *err)
{
    kw_err rc = kw_response_take_json(res, status, kw_api_meeting_json(m));
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err need_params(const kw_request *req, size_t n, kw_error *err)
{
    return req->n_params == n ? KW_OK
                              : kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
}

/* ---- meetings ---------------------------------------------------------------------------- */

static kw_err post_meeting(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"title",    "description",    "start_time",
                                         "end_time", "allow_external", NULL};
    json_t *body = NULL;
    const char *title = NULL, *description = NULL;
    kw_db_meeting *in = calloc(1, sizeof *in), *m = malloc(sizeof *m);
    kw_err rc = in && m ? KW_OK : kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "title", 1, KW_MEETING_TITLE_MAX, &title, err);
    if (rc == KW_OK)
        rc = kw_api_opt_string(body, "description", 0, KW_MEETING_DESCRIPTION_MAX, &description,
                               err);
    if (rc == KW_OK)
        rc = kw_api_time_field(body, "start_time", &in->start_ms, err);
    if (rc == KW_OK)
        rc = kw_api_time_field(body, "end_time", &in->end_ms, err);
    if (rc == KW_OK)
        rc = kw_api_opt_bool(body, "allow_external", &in->allow_external, err);
    if (rc == KW_OK) {
        snprintf(in->title, sizeof in->title, "%s", title);
        snprintf(in->description, sizeof in->description, "%s", description ? description : "");
        snprintf(in->created_by, sizeof in->created_by, "%s", req->caller.user_id);
        rc = srv->db->meetings->meeting_create(srv->db->ctx, in, req->now_ms, m, err);
    }
    json_decref(body);
    if (rc == KW_OK)
        rc = reply_meeting(res, 201, m, err);
    free(in);
    free(m);
    return rc;
}

static kw_err post_instant_call(kw_server *srv, const kw_request *req, kw_response *res,
                                kw_error *err)
{
    static const char *const fields[] = {"title", "allow_external", NULL};
    json_t *body = NULL;
    const char *title = NULL;
    kw_db_meeting *in = calloc(1, sizeof *in), *m = malloc(sizeof *m);
    kw_err rc = in && m ? KW_OK : kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (rc == KW_OK)
        rc = kw_api_body_optional(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_opt_string(body, "title", 1, KW_MEETING_TITLE_MAX, &title, err);
    if (rc == KW_OK)
        rc = kw_api_opt_bool(body, "allow_external", &in->allow_external, err);
    if (rc == KW_OK) {
        snprintf(in->title, sizeof in->title, "%s", title ? title : "Instant call");
        in->start_ms = req->now_ms;
        in->end_ms = req->now_ms + KW_INSTANT_CALL_DURATION_MS;
        in->is_instant_call = 1;
        snprintf(in->created_by, sizeof in->created_by, "%s", req->caller.user_id);
        rc = srv->db->meetings->meeting_create(srv->db->ctx, in, req->now_ms, m, err);
    }
    json_decref(body);
    if (rc == KW_OK)
        rc = reply_meeting(res, 201, m, err);
    free(in);
    free(m);
    return rc;
}

static kw_err get_meetings(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    kw_api_query_field q[] = {{.name = "filter"}};
    kw_meeting_filter filter = KW_MEETING_FILTER_MY;
    kw_err rc = kw_api_query(req->query, q, 1, err);
    if (rc != KW_OK)
        return rc;
    if (q[0].present) {
        if (strcmp(q[0].value, "my") == 0)
            filter = KW_MEETING_FILTER_MY;
        else if (strcmp(q[0].value, "upcoming") == 0)
            filter = KW_MEETING_FILTER_UPCOMING;
        else if (strcmp(q[0].value, "past") == 0)
            filter = KW_MEETING_FILTER_PAST;
        else
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "filter: my, upcoming or past");
    }
    kw_db_meeting *list = NULL;
    size_t n = 0;
    rc = srv->db->meetings->meeting_list(srv->db->ctx, req->caller.user_id, filter, req->now_ms,
                                         &list, &n, err);
    if (rc != KW_OK)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        if (json_array_append_new(arr, kw_api_meeting_json(&list[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    free(list);
    rc = kw_response_take_json(res, 200, arr ? json_pack("{s:o}", "meetings", arr) : NULL);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err get_meeting(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    kw_db_meeting *m = malloc(sizeof *m);
    kw_err rc = m ? need_params(req, 1, err) : kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (rc == KW_OK)
        rc = kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_MEMBER, NULL, m, err);
    if (rc == KW_OK)
        rc = reply_meeting(res, 200, m, err);
    free(m);
    return rc;
}

static kw_err patch_meeting(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"title",    "description",    "start_time",
                                         "end_time", "allow_external", NULL};
    json_t *body = NULL;
    kw_db_meeting_patch p = {0};
    kw_db_meeting *m = malloc(sizeof *m);
    kw_err rc = m ? need_params(req, 1, err) : kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (rc == KW_OK)
        rc =
            kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_OWNER, NULL, NULL, err);
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK && json_object_size(body) == 0)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "body: no field to change");
    if (rc == KW_OK && (p.has_title = json_object_get(body, "title") != NULL))
        rc = kw_api_string(body, "", "title", 1, KW_MEETING_TITLE_MAX, &p.title, err);
    if (rc == KW_OK && (p.has_description = json_object_get(body, "description") != NULL))
        rc = kw_api_string(body, "", "description", 0, KW_MEETING_DESCRIPTION_MAX, &p.description,
                           err);
    if (rc == KW_OK && (p.has_start = json_object_get(body, "start_time") != NULL))
        rc = kw_api_time_field(body, "start_time", &p.start_ms, err);
    if (rc == KW_OK && (p.has_end = json_object_get(body, "end_time") != NULL))
        rc = kw_api_time_field(body, "end_time", &p.end_ms, err);
    if (rc == KW_OK && (p.has_allow_external = json_object_get(body, "allow_external") != NULL))
        rc = kw_api_opt_bool(body, "allow_external", &p.allow_external, err);
    if (rc == KW_OK)
        rc = srv->db->meetings->meeting_update(srv->db->ctx, req->params[0], &p, m, err);
    json_decref(body);
    if (rc == KW_OK)
        rc = reply_meeting(res, 200, m, err);
    free(m);
    return rc;
}

static kw_err delete_meeting(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    kw_err rc = need_params(req, 1, err);
    if (rc == KW_OK)
        rc =
            kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_OWNER, NULL, NULL, err);
    if (rc == KW_OK) /* INV-9: invitations and guest sessions go with it */
        rc = srv->db->meetings->meeting_delete(srv->db->ctx, req->params[0], err);
    if (rc != KW_OK)
        return rc;
    /* Whoever is still connected learns it now (the guest app's "meeting ended" page). */
    kw_rt_emit_to_meeting_members(srv, req->params[0], "meeting:ended",
                                  json_pack("{s:s}", "meeting_id", req->params[0]));
    kw_rt_emit_to_meeting_guests(srv, req->params[0], "meeting:ended",
                                 json_pack("{s:s}", "meeting_id", req->params[0]));
    return kw_api_reply_ok(res, err);
}

/* ---- participants ------------------------------------------------------------------------ */

static kw_err post_participant(kw_server *srv, const kw_request *req, kw_response *res,
                               kw_error *err)
{
    static const char *const fields[] = {"user_id", "role", NULL};
    json_t *body = NULL;
    const char *user_id = NULL, *role = NULL;
    kw_meeting_role r = KW_MEETING_ROLE_NONE;
    kw_err rc = need_params(req, 1, err);
    if (rc == KW_OK)
        rc = kw_api_meeting_access(srv, req, req->params[0], KW_MEETING_ROLE_MANAGER, NULL, NULL,
                                   err);
    if (rc == KW_OK)
        rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "user_id", 1, KW_DB_ID_MAX, &user_id, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "role", 1, 16, &role, err);
    if (rc == KW_OK) {
        if (strcmp(role, "member") == 0)
            r = KW_MEETING_ROLE_MEMBER;
        else if (strcmp(role, "manager") == 0)
            r = KW_MEETING_ROLE_MANAGER;
        else
            rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "role: \"member\" or \"manager\"");
    }
    if (rc == KW_OK)
        rc = srv->db->meetings->participant_add(srv->db->ctx, req->params[0], user_id, r,
                                                req->now_ms, err);
    json_decref(body);
    return rc == KW_OK ? kw_api_reply_ok(res, err) : rc;
}

static kw_err delete_participant(kw_server *srv, const kw_request *req, kw_response *res,
                                 kw_error *err)
{
    kw_meeting_role role = KW_MEETING_ROLE_NONE;
    kw_err rc = need_params(req, 2, err);
    if (rc == KW_OK) {
        /* Anyone may leave; removing someone else takes the owner or a manager. */
        int self = strcmp(req->params[1], req->caller.user_id) == 0;
        rc = kw_api_meeting_access(srv, req, req->params[0],
                                   self ? KW_MEETING_ROLE_MEMBER : KW_MEETING_ROLE_MANAGER, &role,
                                   NULL, err);
    }
    if (rc == KW_OK)
        rc = srv->db->meetings->participant_remove(srv->db->ctx, req->params[0], req->params[1],
                                                   err);
    return rc == KW_OK ? kw_api_reply_ok(res, err) : rc;
}

#define PRESENT_MAX 256 /* present sockets listed at most */

static kw_err get_participants(kw_server *srv, const kw_request *req, kw_response *res,
                               kw_error *err)
{
    kw_api_query_field q[] = {{.name = "status"}, {.name = "exclude_external"}};
    int exclude_external = 0;
    kw_err rc = need_params(req, 1, err);
    const char *meeting_id = req->params[0];
    if (rc == KW_OK)
        rc = kw_api_query(req->query, q, 2, err);
    if (rc == KW_OK && q[0].present && strcmp(q[0].value, "joined") != 0)
        rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "status: only \"joined\" is listed");
    if (rc == KW_OK && q[1].present) {
        if (strcmp(q[1].value, "true") == 0)
            exclude_external = 1;
        else if (strcmp(q[1].value, "false") != 0)
            rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "exclude_external: true or false");
    }
    if (rc != KW_OK)
        return rc;
    if (req->caller.kind == KW_CALLER_GUEST) {
        /* A guest sees its own meeting only (DESIGN 4: another session's meeting is 403). */
        kw_meeting_role unused;
        rc = srv->db->meetings->meeting_role(srv->db->ctx, meeting_id, "", &unused, err);
        if (rc == KW_OK && strcmp(req->caller.meeting_id, meeting_id) != 0)
            rc = kw_error_set(err, KW_ERR_FORBIDDEN, "your guest session is for another meeting");
        /* A declined guest has been turned away: it learns nothing more about the room. */
        kw_db_guest g;
        if (rc == KW_OK && srv->db->guests != NULL &&
            (rc = srv->db->guests->get(srv->db->ctx, req->caller.session_id, &g, err)) == KW_OK &&
            g.status == KW_GUEST_DECLINED)
            rc = kw_error_set(err, KW_ERR_FORBIDDEN, "your admission was declined");
    } else {
        rc = kw_api_meeting_access(srv, req, meeting_id, KW_MEETING_ROLE_MEMBER, NULL, NULL, err);
    }
    if (rc != KW_OK)
        return rc;
    kw_video_participant *present = calloc(PRESENT_MAX, sizeof *present);
    json_t *arr = json_array();
    kw_db_admitted_guest *guests = NULL;
    size_t n_present = 0, n_guests = 0;
    if (present == NULL || arr == NULL) {
        rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (srv->presence != NULL) {
        n_present =
            srv->presence->ops->video_list(srv->presence->ctx, meeting_id, present, PRESENT_MAX);
        if (n_present > PRESENT_MAX)
            n_present = PRESENT_MAX;
    }
    for (size_t i = 0; i < n_present; i++) {
        /* One row per device: a device with several sockets shows once (oldest first). */
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(present[j].user_id, present[i].user_id) == 0 &&
                   strcmp(present[j].device_id, present[i].device_id) == 0;
        kw_meeting_role role = KW_MEETING_ROLE_NONE;
        if (seen)
            continue;
        rc = srv->db->meetings->meeting_role(srv->db->ctx, meeting_id, present[i].user_id, &role,
                                             err);
        if (rc != KW_OK)
            goto done;
        if (role == KW_MEETING_ROLE_NONE) /* removed while present: not listed */
            continue;
        const char *role_text = role == KW_MEETING_ROLE_OWNER     ? "owner"
                                : role == KW_MEETING_ROLE_MANAGER ? "manager"
                                                                  : "member";
        if (json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:o?}", "user_id", present[i].user_id, "device_id",
                               present[i].device_id, "role", role_text, "joined_at",
                               kw_api_time_json(present[i].joined_ms))) != 0) {
            rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    if (!exclude_external) {
        rc = srv->db->meetings->admitted_guests(srv->db->ctx, meeting_id, req->now_ms, &guests,
                                                &n_guests, err);
        if (rc != KW_OK)
            goto done;
        for (size_t i = 0; i < n_guests; i++)
            if (json_array_append_new(
                    arr, json_pack("{s:s, s:s, s:o?}", "session_id", guests[i].session_id,
                                   "display_name", guests[i].display_name, "admitted_at",
                                   kw_api_time_json(guests[i].admitted_ms))) != 0) {
                rc = kw_error_set(err, KW_ERR_NOMEM, "out of memory");
                goto done;
            }
    }
    rc = kw_response_take_json(res, 200, json_pack("{s:O}", "participants", arr));
    if (rc != KW_OK)
        kw_error_set(err, rc, "out of memory");
done:
    json_decref(arr);
    free(present);
    free(guests);
    return rc;
}

const kw_route kw_routes_meetings[] = {
    {KW_POST, "/api/meetings", KW_AUTH_MEMBER, post_meeting},
    {KW_GET, "/api/meetings", KW_AUTH_MEMBER, get_meetings},
    {KW_GET, "/api/meetings/:id", KW_AUTH_MEMBER, get_meeting},
    {KW_PATCH, "/api/meetings/:id", KW_AUTH_MEMBER, patch_meeting},
    {KW_DELETE, "/api/meetings/:id", KW_AUTH_MEMBER, delete_meeting},
    {KW_POST, "/api/calls/instant", KW_AUTH_MEMBER, post_instant_call},
    {KW_POST, "/api/meetings/:id/participants", KW_AUTH_MEMBER, post_participant},
    {KW_GET, "/api/meetings/:id/participants", KW_AUTH_EITHER, get_participants},
    {KW_DELETE, "/api/meetings/:id/participants/:userId", KW_AUTH_MEMBER, delete_participant},
    {0, NULL, 0, NULL},
};
