/*
 * cmd_meeting.c — `keywave meeting create|list|show|delete|invite|invitations|revoke`,
 * `keywave call instant`: the member's meeting routes (docs/api.md), one request each.
 * `meeting join` lives in cmd_join.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "member.h"

static const char help[] =
    "Usage: keywave meeting <subcommand> ...\n"
    "  create --title T [--start TIME] [--end TIME] [--description D] [--no-guests]\n"
    "                     TIME is RFC 3339 (2026-11-23T10:00:00Z) or +N[m|h|d] from now;\n"
    "                     default: starts now, ends an hour later\n"
    "  list [--filter F]  your meetings\n"
    "  show <id>          one meeting\n"
    "  delete <id>        delete a meeting you own\n"
    "  invite <id> [--expires TIME] [--max-uses N] [--label L]   make a guest link\n"
    "  invitations <id>   list a meeting's invitations\n"
    "  revoke <id> <token>  revoke an invitation\n"
    "  join <id> [--admit all|none|ask]   take part (see 'keywave meeting join --help')\n";

static const char call_help[] = "Usage: keywave call instant [--title T] [--no-guests]\n"
                                "Creates an instant call and prints its id.\n";

/* A TIME argument: RFC 3339 passes through (the server checks it); "+N[m|h|d]" becomes
 * now + N minutes/hours/days in UTC. Returns 0 on success. */
static int time_arg(const char *s, char *out, size_t cap)
{
    if (s[0] != '+') {
        snprintf(out, cap, "%s", s);
        return 0;
    }
    size_t n = strlen(s);
    if (n < 3)
        return -1;
    char unit = s[n - 1];
    char num[24];
    if (n - 2 >= sizeof num)
        return -1;
    memcpy(num, s + 1, n - 2);
    num[n - 2] = '\0';
    long long v;
    long long mult = unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (mult == 0 || kwc_parse_int(num, 0, 3650LL * 24 * 60, &v) != 0)
        return -1;
    time_t t = (time_t)(kwc_now_ms() / 1000 + v * mult);
    struct tm tm;
    gmtime_r(&t, &tm);
    return strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0 ? 0 : -1;
}

/* Prints a meeting (text) or the whole object (--json). Steals m. */
static void print_meeting(kwc_ctx *ctx, json_t *m)
{
    if (ctx->json) {
        kwc_print_json(ctx, m);
        return;
    }
    printf("%s  %s  %s .. %s%s\n", json_string_value(json_object_get(m, "meeting_id")),
           json_string_value(json_object_get(m, "title")),
           json_string_value(json_object_get(m, "start_time")),
           json_string_value(json_object_get(m, "end_time")),
           json_is_true(json_object_get(m, "allow_external")) ? "  (guests allowed)" : "");
    json_decref(m);
}

/* One request; on success hands the answer to done(ctx, answer) (which steals it). */
static int request(kwc_ctx *ctx, const char *method, const char *target, json_t *body,
                   void (*done)(kwc_ctx *, json_t *))
{
    kwc_member m;
    int rc = kwc_member_open(ctx, &m, 0);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    kw_error err;
    kw_error_clear(&err);
    json_t *out = NULL;
    if (kwc_api_call(&m.api, method, target, body, &out, NULL, &err) != KW_OK)
        rc = kwc_fail_err(ctx, target, &err);
    else
        done(ctx, out);
    json_decref(body);
    kwc_member_close(&m);
    return rc;
}

static void print_list(kwc_ctx *ctx, json_t *doc)
{
    if (ctx->json) {
        kwc_print_json(ctx, doc);
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "meetings"), i, m) print_meeting(ctx, json_incref(m));
    if (json_array_size(json_object_get(doc, "meetings")) == 0)
        printf("No meetings.\n");
    json_decref(doc);
}

static void print_ok(kwc_ctx *ctx, json_t *doc)
{
    if (ctx->json)
        kwc_print_json(ctx, doc);
    else {
        printf("Done.\n");
        json_decref(doc);
    }
}

static void print_invitation(kwc_ctx *ctx, json_t *doc)
{
    if (ctx->json) {
        kwc_print_json(ctx, doc);
        return;
    }
    printf("%s\n", json_string_value(json_object_get(doc, "url")));
    json_decref(doc);
}

static void print_invitations(kwc_ctx *ctx, json_t *doc)
{
    if (ctx->json) {
        kwc_print_json(ctx, doc);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "invitations"), i, v)
    {
        json_t *max = json_object_get(v, "max_uses");
        printf("%s  uses %lld/%s  expires %s%s\n", json_string_value(json_object_get(v, "token")),
               (long long)json_integer_value(json_object_get(v, "uses")),
               json_is_integer(max) ? "" : "unlimited",
               json_is_string(json_object_get(v, "expires_at"))
                   ? json_string_value(json_object_get(v, "expires_at"))
                   : "never",
               json_is_true(json_object_get(v, "revoked")) ? "  REVOKED" : "");
        if (json_is_integer(max))
            printf("  (max uses %lld)\n", (long long)json_integer_value(max));
    }
    if (json_array_size(json_object_get(doc, "invitations")) == 0)
        printf("No invitations.\n");
    json_decref(doc);
}

static int create_cmd(kwc_ctx *ctx, int argc, char **argv)
{
    const char *title = NULL, *desc = NULL, *start = "+0m", *end = NULL;
    int guests = 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-guests") == 0)
            guests = 0;
        else if (i + 1 >= argc)
            return kwc_usage_error(ctx, "meeting", "'%s' needs a value or is unknown", argv[i]);
        else if (strcmp(argv[i], "--title") == 0)
            title = argv[++i];
        else if (strcmp(argv[i], "--description") == 0)
            desc = argv[++i];
        else if (strcmp(argv[i], "--start") == 0)
            start = argv[++i];
        else if (strcmp(argv[i], "--end") == 0)
            end = argv[++i];
        else
            return kwc_usage_error(ctx, "meeting", "unknown option '%s'", argv[i]);
    }
    if (title == NULL)
        return kwc_usage_error(ctx, "meeting", "create needs --title");
    char s[40], e[40];
    if (time_arg(start, s, sizeof s) != 0 || time_arg(end != NULL ? end : "+60m", e, sizeof e) != 0)
        return kwc_usage_error(ctx, "meeting", "bad TIME (RFC 3339 or +N[m|h|d])");
    if (end == NULL && start[0] != '+') /* an absolute start: end an hour after it is the
                                           server's business to check; ask for --end */
        return kwc_usage_error(ctx, "meeting", "with an absolute --start, give --end too");
    json_t *body = json_pack("{s:s, s:s, s:s, s:b}", "title", title, "start_time", s, "end_time", e,
                             "allow_external", guests);
    if (body != NULL && desc != NULL)
        json_object_set_new(body, "description", json_string(desc));
    return request(ctx, "POST", "/api/meetings", body, print_meeting);
}

static int invite_cmd(kwc_ctx *ctx, const char *id, int argc, char **argv)
{
    json_t *body = json_object();
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) {
            json_decref(body);
            return kwc_usage_error(ctx, "meeting", "'%s' needs a value or is unknown", argv[i]);
        }
        char t[40];
        long long n;
        if (strcmp(argv[i], "--expires") == 0 && time_arg(argv[i + 1], t, sizeof t) == 0)
            json_object_set_new(body, "expires_at", json_string(t));
        else if (strcmp(argv[i], "--max-uses") == 0 &&
                 kwc_parse_int(argv[i + 1], 1, 1000000, &n) == 0)
            json_object_set_new(body, "max_uses", json_integer(n));
        else if (strcmp(argv[i], "--label") == 0)
            json_object_set_new(body, "label", json_string(argv[i + 1]));
        else {
            json_decref(body);
            return kwc_usage_error(ctx, "meeting", "bad option '%s %s'", argv[i], argv[i + 1]);
        }
        i++;
    }
    char target[256];
    snprintf(target, sizeof target, "/api/meetings/%s/invitations", id);
    return request(ctx, "POST", target, body, print_invitation);
}

int kwc_cmd_meeting(kwc_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "join") == 0)
        return kwc_cmd_meeting_join(ctx, argc - 1, argv + 1);
    if (kwc_wants_help(argc, argv) || argc < 2) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? KWC_EXIT_USAGE : KWC_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "create") == 0)
        return create_cmd(ctx, argc, argv);
    if (strcmp(sub, "list") == 0) {
        if (argc == 4 && strcmp(argv[2], "--filter") == 0 && kwc_id_ok(argv[3])) {
            char target[200];
            snprintf(target, sizeof target, "/api/meetings?filter=%s", argv[3]);
            return request(ctx, "GET", target, NULL, print_list);
        }
        if (argc != 2)
            return kwc_usage_error(ctx, "meeting", "list takes only --filter F");
        return request(ctx, "GET", "/api/meetings", NULL, print_list);
    }
    int is_id_cmd = strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0 ||
                    strcmp(sub, "invite") == 0 || strcmp(sub, "invitations") == 0 ||
                    strcmp(sub, "revoke") == 0;
    if (!is_id_cmd)
        return kwc_usage_error(ctx, "meeting", "unknown subcommand '%s'", sub);
    if (argc < 3 || !kwc_id_ok(argv[2]))
        return kwc_usage_error(ctx, "meeting", "%s needs a meeting id", sub);
    const char *id = argv[2];
    char target[300];
    if (strcmp(sub, "invite") == 0)
        return invite_cmd(ctx, id, argc, argv);
    if (strcmp(sub, "revoke") == 0) {
        if (argc != 4 || !kwc_id_ok(argv[3]))
            return kwc_usage_error(ctx, "meeting", "revoke needs <id> <token>");
        snprintf(target, sizeof target, "/api/meetings/%s/invitations/%s", id, argv[3]);
        return request(ctx, "DELETE", target, NULL, print_ok);
    }
    if (argc != 3)
        return kwc_usage_error(ctx, "meeting", "%s takes only the meeting id", sub);
    if (strcmp(sub, "invitations") == 0) {
        snprintf(target, sizeof target, "/api/meetings/%s/invitations", id);
        return request(ctx, "GET", target, NULL, print_invitations);
    }
    snprintf(target, sizeof target, "/api/meetings/%s", id);
    if (strcmp(sub, "show") == 0)
        return request(ctx, "GET", target, NULL, print_meeting);
    return request(ctx, "DELETE", target, NULL, print_ok);
}

int kwc_cmd_call(kwc_ctx *ctx, int argc, char **argv)
{
    if (kwc_wants_help(argc, argv)) {
        fputs(call_help, stdout);
        return KWC_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "instant") != 0)
        return kwc_usage_error(ctx, "call", "expected 'instant'");
    json_t *body = json_object();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-guests") == 0)
            json_object_set_new(body, "allow_external", json_false());
        else if (strcmp(argv[i], "--title") == 0 && i + 1 < argc)
            json_object_set_new(body, "title", json_string(argv[++i]));
        else {
            json_decref(body);
            return kwc_usage_error(ctx, "call", "unknown option '%s'", argv[i]);
        }
    }
    return request(ctx, "POST", "/api/calls/instant", body, print_meeting);
}
