/*
 * api_join.c — what an invitation link opens (DESIGN.md section 7): the HTML page at
 * /join/meeting/:token and the join info the guest app reads first.
 *
 * /join/meeting/:token only looks at the token's form (32 lower-case hex; else a 400
 * page): whether the invitation is still valid is the join info's answer, so the page
 * itself never tells an attacker which tokens exist. It serves the guest app's
 * index.html from the web build (KW_WEB_INDEX, relative to the working directory) when
 * there is one, otherwise a plain page saying the guest app is not built. Every page is
 * HTML with res->html set, so the Content-Security-Policy and Referrer-Policy:
 * no-referrer go with it (the token must not leak through a Referer header). Member
 * browser login does not exist yet, so everyone gets the guest app.
 *
 * The token is a secret (INV-8): the router logs the ":token" parameter by its name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_meetings.h"
#include "db.h"
#include "presence.h"
#include "server.h"

#define KW_WEB_INDEX     "build/web/index.html"    /* the guest app's build output */
#define KW_WEB_INDEX_MAX ((size_t)4 * 1024 * 1024) /* an index.html larger is not served */

static const char PAGE_BAD_LINK[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Invalid invitation link</title></head>\n<body><h1>Invalid invitation link</h1>\n"
    "<p>This meeting link is malformed. Ask the person who invited you for a new one.</p>"
    "</body></html>\n";

static const char PAGE_NOT_BUILT[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>keywave</title></head>\n<body><h1>The guest app is not built</h1>\n"
    "<p>This keywave server has no guest web app to serve yet (build the web/ directory "
    "into build/web/). The invitation link itself is fine.</p></body></html>\n";

static int token_form_ok(const char *t)
{
    size_t n = strlen(t);
    if (n != KW_INVITATION_TOKEN_CHARS)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return 0;
    return 1;
}

/* The whole of KW_WEB_INDEX, malloc'd, or NULL when absent, unreadable or too large. */
static char *read_index(size_t *len)
{
    FILE *f = fopen(KW_WEB_INDEX, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc((size_t)KW_WEB_INDEX_MAX + 1);
    size_t n = buf ? fread(buf, 1, (size_t)KW_WEB_INDEX_MAX + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > KW_WEB_INDEX_MAX || n == 0;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static kw_err get_join_page(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_err rc;
    if (!token_form_ok(req->params[0])) {
        rc = kw_response_html(res, 400, PAGE_BAD_LINK, sizeof PAGE_BAD_LINK - 1);
    } else {
        size_t len = 0;
        char *index = read_index(&len);
        rc = index ? kw_response_html(res, 200, index, len)
                   : kw_response_html(res, 200, PAGE_NOT_BUILT, sizeof PAGE_NOT_BUILT - 1);
        free(index);
    }
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

static kw_err get_join_info(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    char meeting_id[KW_DB_ID_MAX + 1];
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    kw_db_meeting *m = malloc(sizeof *m);
    if (m == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    /* INV-9: unknown 404, revoked / expired / exhausted 410 */
    kw_err rc = srv->db->meetings->invitation_check(srv->db->ctx, req->params[0], req->now_ms,
                                                    meeting_id, err);
    if (rc == KW_OK)
        rc = srv->db->meetings->meeting_get(srv->db->ctx, meeting_id, m, err);
    if (rc == KW_OK) {
        size_t present = 0;
        if (srv->presence != NULL)
            present = srv->presence->ops->video_list(srv->presence->ctx, meeting_id, NULL, 0);
        char start[KW_TIME_TEXT_MAX], end[KW_TIME_TEXT_MAX];
        json_t *obj = NULL;
        if (kw_time_format(m->start_ms, start) == KW_OK && kw_time_format(m->end_ms, end) == KW_OK)
            obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "meeting_id", m->meeting_id, "title",
                            m->title, "description", m->description, "start_time", start,
                            "end_time", end, "has_active_participants", present > 0);
        rc = kw_response_take_json(res, 200, obj);
        if (rc != KW_OK)
            kw_error_set(err, rc, "out of memory");
    }
    free(m);
    return rc;
}

const kw_route kw_routes_join[] = {
    {KW_GET, "/join/meeting/:token", KW_AUTH_NONE, get_join_page},
    {KW_GET, "/api/meetings/external/join/:token", KW_AUTH_NONE, get_join_info},
    {0, NULL, 0, NULL},
};
