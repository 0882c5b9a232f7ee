/*
 * test_srv_routes.c — the authorization matrix (tests/integration/authz_table.h) covers
 * exactly the routes the server has: every (method, pattern) of kw_router_tables() has
 * at least one row, every row's (method, pattern) is a route (a HEAD row stands for its
 * GET route), a row that names no route really matches none, and each row's expected
 * statuses agree with the route's auth column (member-only: anonymous and guests 401;
 * guest-only: anonymous and members 401; public: nobody 401).
 *
 * The route tables are compiled in (server objects), so a route added without a matrix
 * row fails here, before the black-box test_authz would silently skip it.
 */
#include <stdio.h>
#include <string.h>

#include "../integration/authz_table.h"
#include "kwtest.h"
#include "router.h"

static const char *method_name(kw_method m)
{
    switch (m) {
    case KW_GET:
        return "GET";
    case KW_POST:
        return "POST";
    case KW_PUT:
        return "PUT";
    case KW_PATCH:
        return "PATCH";
    case KW_DELETE:
        return "DELETE";
    case KW_HEAD:
        return "HEAD";
    case KW_OTHER_METHOD:
        break;
    }
    return "?";
}

/* The route a row stands for: HEAD rows are judged by the GET route. */
static const char *row_method(const az_row *row)
{
    return strcmp(row->method, "HEAD") == 0 ? "GET" : row->method;
}

static const kw_route *find_route(const char *method, const char *pattern)
{
    const kw_route *const *tables = kw_router_tables();
    for (size_t t = 0; tables[t] != NULL; t++)
        for (const kw_route *r = tables[t]; r->pattern != NULL; r++)
            if (strcmp(method_name(r->method), method) == 0 && strcmp(r->pattern, pattern) == 0)
                return r;
    return NULL;
}

static void every_route_has_a_row(void)
{
    const kw_route *const *tables = kw_router_tables();
    size_t routes = 0;
    for (size_t t = 0; tables[t] != NULL; t++) {
        for (const kw_route *r = tables[t]; r->pattern != NULL; r++) {
            routes++;
            int rows = 0;
            for (size_t i = 0; i < AZ_N_ROWS; i++)
                if (az_rows[i].pattern != NULL && strcmp(az_rows[i].pattern, r->pattern) == 0 &&
                    strcmp(row_method(&az_rows[i]), method_name(r->method)) == 0)
                    rows++;
            if (!KWT_CHECK(rows > 0))
                printf("    no authz_table.h row for %s %s\n", method_name(r->method), r->pattern);
        }
    }
    KWT_CHECK(routes >= 30); /* the tables really were walked */
    printf("    %zu routes, %zu matrix rows\n", routes, (size_t)AZ_N_ROWS);
}

static void every_row_is_a_route(void)
{
    for (size_t i = 0; i < AZ_N_ROWS; i++) {
        const az_row *row = &az_rows[i];
        if (row->pattern == NULL)
            continue;
        if (!KWT_CHECK(find_route(row_method(row), row->pattern) != NULL))
            printf("    row %zu: %s %s is no route\n", i, row->method, row->pattern);
    }
}

/* A row's target with every {x} placeholder replaced by a plausible id. */
static void sample_path(const char *target, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = target; *p != '\0' && *p != '?' && o + 1 < cap;) {
        if (p[0] == '{' && p[1] != '\0' && p[2] == '}') {
            int n = snprintf(out + o, cap - o, "x%c1", p[1]);
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

/* Segment-wise match of a concrete path against a pattern (":x" matches any segment). */
static int path_matches(const char *pattern, const char *path)
{
    while (*pattern == '/' && *path == '/') {
        pattern++;
        path++;
        size_t pn = strcspn(pattern, "/"), n = strcspn(path, "/");
        if (n == 0 || (pattern[0] != ':' && (pn != n || memcmp(pattern, path, n) != 0)))
            return 0;
        pattern += pn;
        path += n;
    }
    return *pattern == '\0' && *path == '\0';
}

static void every_target_matches_its_pattern(void)
{
    const kw_route *const *tables = kw_router_tables();
    for (size_t i = 0; i < AZ_N_ROWS; i++) {
        const az_row *row = &az_rows[i];
        char path[512];
        sample_path(row->target, path, sizeof path);
        if (row->pattern != NULL) {
            if (!KWT_CHECK(path_matches(row->pattern, path)))
                printf("    row %zu: %s does not match %s\n", i, row->target, row->pattern);
            continue;
        }
        /* No route: 404 rows match no pattern; 405 rows match one, for other methods. */
        int any = 0, same_method = 0;
        for (size_t t = 0; tables[t] != NULL; t++)
            for (const kw_route *r = tables[t]; r->pattern != NULL; r++)
                if (path_matches(r->pattern, path)) {
                    any = 1;
                    same_method |= strcmp(method_name(r->method), row_method(row)) == 0;
                }
        KWT_CHECK(!same_method);
        for (int c = 0; c < AZ_N_CALLERS; c++)
            if (!KWT_CHECK(row->want[c] == (any ? 405 : 404)))
                printf("    row %zu: %s %s\n", i, row->method, row->target);
    }
}

static void rows_agree_with_the_auth_column(void)
{
    static const int members[] = {AZ_OUTSIDER, AZ_MEMBER, AZ_MANAGER, AZ_OWNER};
    static const int guests[] = {AZ_GUEST_OTHER, AZ_GUEST_SELF, AZ_GUEST_ADMIT, AZ_GUEST_DECLINED};
    for (size_t i = 0; i < AZ_N_ROWS; i++) {
        const az_row *row = &az_rows[i];
        if (row->pattern == NULL)
            continue;
        const kw_route *r = find_route(row_method(row), row->pattern);
        if (r == NULL)
            continue; /* reported by every_row_is_a_route */
        int ok = 1;
        switch (r->auth) {
        case KW_AUTH_NONE:
            for (int c = 0; c < AZ_N_CALLERS; c++)
                ok &= row->want[c] != 401 && row->want[c] != 403;
            break;
        case KW_AUTH_MEMBER:
            ok &= row->want[AZ_ANON] == 401;
            for (size_t k = 0; k < 4; k++)
                ok &= row->want[guests[k]] == 401 && row->want[members[k]] != 401;
            break;
        case KW_AUTH_GUEST:
            ok &= row->want[AZ_ANON] == 401;
            for (size_t k = 0; k < 4; k++)
                ok &= row->want[members[k]] == 401 && row->want[guests[k]] != 401;
            break;
        case KW_AUTH_EITHER:
            ok &= row->want[AZ_ANON] == 401;
            for (size_t k = 0; k < 4; k++)
                ok &= row->want[members[k]] != 401 && row->want[guests[k]] != 401;
            break;
        }
        if (!KWT_CHECK(ok))
            printf("    row %zu: %s %s disagrees with the route's auth %d\n", i, row->method,
                   row->target, (int)r->auth);
    }
}

int main(void)
{
    KWT_RUN(every_route_has_a_row);
    KWT_RUN(every_row_is_a_route);
    KWT_RUN(every_target_matches_its_pattern);
    KWT_RUN(rows_agree_with_the_auth_column);
    return kwt_finish();
}
