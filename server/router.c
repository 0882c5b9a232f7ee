/*
 * router.c — the one dispatcher behind every HTTP route (the rules are in router.h).
 *
 * A request is matched against every row of every table: about fifty rows of at most a
 * few segments, so a linear walk costs less than the JSON parse that follows and keeps
 * the tables plain static data. Path parameters are decoded into this function's own
 * stack and live only while the authenticator and the handler run.
 */
#include "router.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server.h"

/* ---- the route tables: one extern and one row per api_*.c -------------------------- */

extern const kw_route kw_routes_health[];
extern const kw_route kw_routes_auth[];
extern const kw_route kw_routes_keys[];
extern const kw_route kw_routes_guests[];
extern const kw_route kw_routes_meetings[];
extern const kw_route kw_routes_channels[];
extern const kw_route kw_routes_invitations[];
extern const kw_route kw_routes_media[];
extern const kw_route kw_routes_join[];
extern const kw_route kw_routes_web[];

static const kw_route *const tables[] = {
    kw_routes_health,
    kw_routes_auth,
    kw_routes_keys,
    kw_routes_guests,
    kw_routes_meetings,
    kw_routes_channels,
    kw_routes_invitations,
    kw_routes_media,
    kw_routes_join,
    kw_routes_web,
    NULL,
};

const kw_route *const *kw_router_tables(void)
{
    return tables;
}

/* ---- paths ---------------------------------------------------------------------------- */

typedef struct segment {
    const char *p; /* borrowed from the path or the pattern */
    size_t n;
} segment;

/*
 * Splits an absolute path into its segments ("/a/b" -> "a", "b"; "/" -> ""). Returns the
 * count, or 0 when the path does not start with '/' or has more than max segments.
 */
static size_t split_path(const char *path, segment *segs, size_t max)
{
    if (path == NULL || path[0] != '/')
        return 0;
    size_t count = 0;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (count == max)
            return 0;
        segs[count].p = p;
        segs[count].n = n;
        count++;
        if (slash == NULL)
            return count;
        p = slash + 1;
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes one path segment into out (KW_HTTP_ID_MAX + 1 bytes) and checks it is
 * a valid parameter: 1..KW_HTTP_ID_MAX bytes of printable ASCII, no '/'.
 */
static bool decode_param(const segment *s, char out[KW_HTTP_ID_MAX + 1])
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c == '%') {
            if (i + 2 >= s->n)
                return false;
            int hi = hex_value(s->p[i + 1]), lo = hex_value(s->p[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c < 0x20 || c > 0x7e || c == '/' || n == KW_HTTP_ID_MAX)
            return false;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return n > 0;
}

/* A parameter whose value is a secret (INV-8): its name ends in "token" or "secret". */
static bool is_secret_param(const segment *s)
{
    static const char *const suffixes[] = {"token", "secret"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (s->n >= k + 1 && strncmp(s->p + s->n - k, suffixes[i], k) == 0)
            return true;
    }
    return false;
}

/*
 * Matches pattern against the request's segments; on a match decodes the parameters
 * into params (when not NULL) and returns true. Parameters are validated either way, so
 * a malformed id makes the pattern not match.
 */
static bool match_pattern(const char *pattern, const segment *segs, size_t n_segs,
                          char params[KW_HTTP_PARAMS_MAX][KW_HTTP_ID_MAX + 1], size_t *n_params)
{
    segment pat[KW_ROUTER_SEGMENTS_MAX];
    size_t n_pat = split_path(pattern, pat, KW_ROUTER_SEGMENTS_MAX);
    if (n_pat == 0 || n_pat != n_segs)
        return false;
    size_t k = 0;
    char scratch[KW_HTTP_ID_MAX + 1];
    for (size_t i = 0; i < n_pat; i++) {
        if (pat[i].n > 0 && pat[i].p[0] == ':') {
            if (k == KW_HTTP_PARAMS_MAX)
                return false;
            if (!decode_param(&segs[i], params ? params[k] : scratch))
                return false;
            k++;
        } else if (pat[i].n != segs[i].n || memcmp(pat[i].p, segs[i].p, pat[i].n) != 0) {
            return false;
        }
    }
    if (n_params != NULL)
        *n_params = k;
    return true;
}

/* True if pattern a is more specific than b (both matched the same path). */
static bool more_specific(const char *a, const char *b)
{
    segment sa[KW_ROUTER_SEGMENTS_MAX], sb[KW_ROUTER_SEGMENTS_MAX];
    size_t na = split_path(a, sa, KW_ROUTER_SEGMENTS_MAX);
    size_t nb = split_path(b, sb, KW_ROUTER_SEGMENTS_MAX);
    for (size_t i = 0; i < na && i < nb; i++) {
        bool pa = sa[i].n > 0 && sa[i].p[0] == ':';
        bool pb = sb[i].n > 0 && sb[i].p[0] == ':';
        if (pa != pb)
            return !pa;
    }
    return false;
}

/* Appends n bytes of s to buf (cap >= 4 bytes, NUL-terminated); ends in "..." once cut. */
static void append_cut(char *buf, size_t cap, size_t *used, const char *s, size_t n)
{
    if (*used >= cap)
        return; /* already cut */
    size_t room = cap - 1 - *used;
    if (n > room) {
        memcpy(buf + *used, s, room);
        memcpy(buf + cap - 4, "...", 3);
        buf[cap - 1] = '\0';
        *used = cap;
        return;
    }
    memcpy(buf + *used, s, n);
    *used += n;
    buf[*used] = '\0';
}

/* The access-log path: the request path with secret parameters replaced by their names. */
static void make_log_path(const char *path, const kw_route *route, const segment *segs,
                          size_t n_segs, char out[KW_ROUTER_LOG_PATH_MAX])
{
    size_t used = 0;
    out[0] = '\0';
    segment pat[KW_ROUTER_SEGMENTS_MAX];
    size_t n_pat = route ? split_path(route->pattern, pat, KW_ROUTER_SEGMENTS_MAX) : 0;
    if (n_pat == 0 || n_pat != n_segs) {
        append_cut(out, KW_ROUTER_LOG_PATH_MAX, &used, path, strlen(path));
        return;
    }
    for (size_t i = 0; i < n_segs; i++) {
        append_cut(out, KW_ROUTER_LOG_PATH_MAX, &used, "/", 1);
        bool secret = pat[i].n > 1 && pat[i].p[0] == ':' && is_secret_param(&pat[i]);
        const segment *s = secret ? &pat[i] : &segs[i];
        append_cut(out, KW_ROUTER_LOG_PATH_MAX, &used, s->p, s->n);
    }
}

/* ---- methods -------------------------------------------------------------------------- */

static unsigned method_bit(kw_method m)
{
    switch (m) {
    case KW_GET:
    case KW_POST:
    case KW_PUT:
    case KW_PATCH:
    case KW_DELETE:
    case KW_HEAD:
        return 1u << (unsigned)m;
    case KW_OTHER_METHOD:
        return 0;
    }
    return 0;
}

static bool method_matches(kw_method row, kw_method req)
{
    return row == req || (row == KW_GET && req == KW_HEAD);
}

/* Writes the Allow list of a method mask in a fixed order; GET brings HEAD. */
static void format_allow(unsigned mask, char out[KW_ROUTER_ALLOW_MAX])
{
    static const struct {
        kw_method m;
        const char *name;
    } order[] = {{KW_GET, "GET"}, {KW_HEAD, "HEAD"},   {KW_POST, "POST"},
                 {KW_PUT, "PUT"}, {KW_PATCH, "PATCH"}, {KW_DELETE, "DELETE"}};
    if (mask & method_bit(KW_GET))
        mask |= method_bit(KW_HEAD);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(mask & method_bit(order[i].m)))
            continue;
        int w = snprintf(out + used, KW_ROUTER_ALLOW_MAX - used, "%s%s", used ? ", " : "",
                         order[i].name);
        if (w < 0 || (size_t)w >= KW_ROUTER_ALLOW_MAX - used)
            return; /* cannot happen: the longest list fits */
        used += (size_t)w;
    }
}

/* ---- answering ------------------------------------------------------------------------ */

/* Puts {error, detail} in res; without memory for it, a bare 500. */
static void answer_error(kw_response *res, kw_err code, const char *detail)
{
    if (kw_response_error(res, code, detail) != KW_OK) {
        kw_response_free(res);
        res->status = 500;
    }
}

/* Quotes a path back in a detail: printable ASCII only, shortened. */
static void shown_path(const char *path, char *out, size_t cap)
{
    enum { SHOWN_MAX = 64 };
    size_t n = 0, len = strlen(path);
    for (; n < len && n < SHOWN_MAX && n + 4 < cap; n++) {
        char c = path[n];
        out[n] = (c < 0x20 || c > 0x7e) ? '?' : c;
    }
    out[n] = '\0';
    if (n < len && n + 4 <= cap)
        memcpy(out + n, "...", 4);
}

static kw_err authenticate(kw_server *srv, const kw_route *route, kw_request *req, kw_error *err)
{
    memset(&req->caller, 0, sizeof req->caller);
    kw_authenticate_fn fn = NULL;
    kw_caller_kind want = KW_CALLER_ANON;
    switch (route->auth) {
    case KW_AUTH_NONE:
        return KW_OK;
    case KW_AUTH_MEMBER:
        fn = srv->auth_member;
        want = KW_CALLER_MEMBER;
        break;
    case KW_AUTH_GUEST:
        fn = srv->auth_guest;
        want = KW_CALLER_GUEST;
        break;
    case KW_AUTH_EITHER:
        if (req->client_id || req->timestamp || req->nonce || req->signature) {
            fn = srv->auth_member;
            want = KW_CALLER_MEMBER;
        } else if (req->authorization != NULL) {
            fn = srv->auth_guest;
            want = KW_CALLER_GUEST;
        } else {
            return kw_error_set(err, KW_ERR_UNAUTHORIZED,
                                "This route needs a signed member request or a guest bearer "
                                "secret.");
        }
        break;
    }
    if (want == KW_CALLER_ANON)
        return kw_error_set(err, KW_ERR_INTERNAL, "Route with an unknown auth value.");
    if (fn == NULL)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED, "%s authentication is not available.",
                            want == KW_CALLER_MEMBER ? "Member" : "Guest");
    kw_err rc = fn(srv, req, err);
    if (rc != KW_OK) {
        memset(&req->caller, 0, sizeof req->caller);
        return rc;
    }
    if (req->caller.kind != want) {
        memset(&req->caller, 0, sizeof req->caller);
        return kw_error_set(err, KW_ERR_INTERNAL, "The authenticator did not name the caller.");
    }
    return KW_OK;
}

void kw_router_dispatch(kw_server *srv, kw_request *req, kw_response *res, kw_dispatch *out)
{
    memset(out, 0, sizeof *out);
    kw_response_init(res);
    req->n_params = 0;
    memset(req->params, 0, sizeof req->params);
    memset(&req->caller, 0, sizeof req->caller);

    const kw_route *const *list = srv->routes ? srv->routes : tables;
    segment segs[KW_ROUTER_SEGMENTS_MAX];
    const char *path = req->path ? req->path : "";
    size_t n_segs = split_path(path, segs, KW_ROUTER_SEGMENTS_MAX);

    const kw_route *best = NULL, *first = NULL;
    unsigned mask = 0;
    for (size_t t = 0; n_segs > 0 && list[t] != NULL; t++) {
        for (const kw_route *r = list[t]; r->pattern != NULL; r++) {
            if (!match_pattern(r->pattern, segs, n_segs, NULL, NULL))
                continue;
            mask |= method_bit(r->method);
            if (first == NULL)
                first = r;
            if (method_matches(r->method, req->method) &&
                (best == NULL || more_specific(r->pattern, best->pattern)))
                best = r;
        }
    }
    make_log_path(path, best ? best : first, segs, n_segs, out->log_path);

    if (first == NULL) {
        char shown[80], detail[KW_DETAIL_MAX];
        shown_path(path, shown, sizeof shown);
        snprintf(detail, sizeof detail, "No route for %s.", shown);
        answer_error(res, KW_ERR_NOT_FOUND, detail);
        return;
    }
    if (best == NULL) {
        char detail[KW_DETAIL_MAX];
        format_allow(mask, out->allow);
        snprintf(detail, sizeof detail, "This path does not answer %s; it answers %s.",
                 req->method_name ? req->method_name : "this method", out->allow);
        res->allow = out->allow;
        answer_error(res, KW_ERR_METHOD_NOT_ALLOWED, detail);
        return;
    }

    out->route = best;
    char params[KW_HTTP_PARAMS_MAX][KW_HTTP_ID_MAX + 1];
    size_t n_params = 0;
    if (!match_pattern(best->pattern, segs, n_segs, params, &n_params)) {
        /* Cannot happen: the same pattern matched these segments above. */
        answer_error(res, KW_ERR_INTERNAL, "Route matching failed.");
        return;
    }
    for (size_t i = 0; i < n_params; i++)
        req->params[i] = params[i];
    req->n_params = n_params;

    kw_error err;
    kw_error_clear(&err);
    kw_err rc = authenticate(srv, best, req, &err);
    if (rc == KW_OK)
        rc = best->handler(srv, req, res, &err);
    req->n_params = 0;
    memset(req->params, 0, sizeof req->params); /* they point into this stack frame */
    if (rc == KW_OK) {
        if (res->status == 0)
            res->status = 200;
        return;
    }
    if (res->body != NULL) {
        if (res->status < 400)
            res->status = kw_http_status(rc);
        return;
    }
    answer_error(res, rc, err.code == rc ? err.detail : NULL);
}

void kw_router_log_path(kw_server *srv, const char *path, char out[KW_ROUTER_LOG_PATH_MAX])
{
    const kw_route *const *list = srv->routes ? srv->routes : tables;
    segment segs[KW_ROUTER_SEGMENTS_MAX];
    if (path == NULL)
        path = "";
    size_t n_segs = split_path(path, segs, KW_ROUTER_SEGMENTS_MAX);
    const kw_route *first = NULL;
    for (size_t t = 0; n_segs > 0 && first == NULL && list[t] != NULL; t++)
        for (const kw_route *r = list[t]; first == NULL && r->pattern != NULL; r++)
            if (match_pattern(r->pattern, segs, n_segs, NULL, NULL))
                first = r;
    make_log_path(path, first, segs, n_segs, out);
}

/* ---- start-up check ------------------------------------------------------------------- */

static kw_err check_row(const kw_route *r, kw_error *err)
{
    if (method_bit(r->method) == 0 || r->method == KW_HEAD)
        return kw_error_set(err, KW_ERR_INTERNAL,
                            "route %.80s: method must be GET, POST, PUT, PATCH or DELETE",
                            r->pattern);
    if (r->handler == NULL)
        return kw_error_set(err, KW_ERR_INTERNAL, "route %.80s: no handler", r->pattern);
    switch (r->auth) {
    case KW_AUTH_NONE:
    case KW_AUTH_MEMBER:
    case KW_AUTH_GUEST:
    case KW_AUTH_EITHER:
        break;
    default:
        return kw_error_set(err, KW_ERR_INTERNAL, "route %.80s: unknown auth value", r->pattern);
    }
    segment segs[KW_ROUTER_SEGMENTS_MAX];
    size_t n = split_path(r->pattern, segs, KW_ROUTER_SEGMENTS_MAX);
    if (n == 0)
        return kw_error_set(err, KW_ERR_INTERNAL,
                            "route %.80s: must start with '/' and have at most %d segments",
                            r->pattern, KW_ROUTER_SEGMENTS_MAX);
    size_t params = 0;
    for (size_t i = 0; i < n; i++) {
        if (segs[i].n == 0)
            return kw_error_set(err, KW_ERR_INTERNAL, "route %.80s: empty segment", r->pattern);
        if (segs[i].p[0] == ':' && segs[i].n == 1)
            return kw_error_set(err, KW_ERR_INTERNAL, "route %.80s: unnamed parameter", r->pattern);
        if (segs[i].p[0] == ':' && ++params > KW_HTTP_PARAMS_MAX)
            return kw_error_set(err, KW_ERR_INTERNAL, "route %.80s: more than %d parameters",
                                r->pattern, KW_HTTP_PARAMS_MAX);
        for (size_t j = 0; j < segs[i].n; j++) {
            unsigned char c = (unsigned char)segs[i].p[j];
            if (c <= 0x20 || c > 0x7e || c == '%' || c == '?' || c == '#')
                return kw_error_set(err, KW_ERR_INTERNAL,
                                    "route %.80s: a segment holds a character a path cannot",
                                    r->pattern);
        }
    }
    return KW_OK;
}

kw_err kw_router_check(const kw_route *const *list, kw_error *err)
{
    if (list == NULL)
        list = tables;
    for (size_t t = 0; list[t] != NULL; t++) {
        for (const kw_route *r = list[t]; r->pattern != NULL; r++) {
            kw_err rc = check_row(r, err);
            if (rc != KW_OK)
                return rc;
            /* Compare with every row before this one: earlier tables whole, then this
             * table up to the row (by position: a table may be listed twice). */
            for (size_t u = 0; u <= t; u++) {
                const kw_route *stop = u == t ? r : NULL;
                for (const kw_route *q = list[u]; q->pattern != NULL && q != stop; q++)
                    if (q->method == r->method && strcmp(q->pattern, r->pattern) == 0)
                        return kw_error_set(err, KW_ERR_INTERNAL,
                                            "route %.80s: listed twice for one method", r->pattern);
            }
        }
    }
    return KW_OK;
}
