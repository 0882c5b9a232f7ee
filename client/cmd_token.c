/*
 * cmd_token.c — `keywave token livekit <meeting>` and `keywave token jitsi <stream>`:
 * media-server tokens keywaved issues to this member.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "member.h"

static const char help[] =
    "Usage: keywave token livekit <meeting-id> | keywave token jitsi <stream-id> [--name N]\n"
    "Prints a media-server token for this member (with --json: token, url and room).\n";

int kwc_cmd_token(kwc_ctx *ctx, int argc, char **argv)
{
    if (kwc_wants_help(argc, argv)) {
        fputs(help, stdout);
        return KWC_EXIT_OK;
    }
    int livekit = argc >= 3 && strcmp(argv[1], "livekit") == 0;
    int jitsi = argc >= 3 && strcmp(argv[1], "jitsi") == 0;
    if ((!livekit && !jitsi) || !kwc_id_ok(argv[2]))
        return kwc_usage_error(ctx, "token", "expected 'livekit <meeting>' or 'jitsi <stream>'");
    json_t *body = NULL;
    char target[300];
    if (livekit) {
        if (argc != 3)
            return kwc_usage_error(ctx, "token", "livekit takes only the meeting id");
        body = json_pack("{s:s}", "meetingId", argv[2]);
        snprintf(target, sizeof target, "/api/livekit/meeting-token");
    } else {
        body = json_object();
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                json_object_set_new(body, "name", json_string(argv[++i]));
            else {
                json_decref(body);
                return kwc_usage_error(ctx, "token", "unknown option '%s'", argv[i]);
            }
        }
        snprintf(target, sizeof target, "/api/v1/live/streams/%s/join", argv[2]);
    }
    kwc_member m;
    int rc = kwc_member_open(ctx, &m, 0);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    kw_error err;
    kw_error_clear(&err);
    json_t *out = NULL;
    if (kwc_api_call(&m.api, "POST", target, body, &out, NULL, &err) != KW_OK)
        rc = kwc_fail_err(ctx, "no token", &err);
    else if (ctx->json)
        kwc_print_json(ctx, json_incref(out));
    else
        printf("%s\n", json_string_value(json_object_get(out, "token")));
    json_decref(out);
    json_decref(body);
    kwc_member_close(&m);
    return rc;
}
