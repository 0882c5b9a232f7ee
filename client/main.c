/*
 * main.c — `keywave`, the command-line client: global options and the command table.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "state.h"

static const char usage[] =
    "Usage: keywave [--json] [--data-dir DIR] <command> [args]\n"
    "\n"
    "Member commands (after enrolling this machine as one of your devices):\n"
    "  enroll <server-url> <code>     enroll with a code from 'keywaved user add|code'\n"
    "  keys status|refresh            show or top up this device's Signal keys\n"
    "  meeting create|list|show|delete\n"
    "  meeting invite <id> [--expires TIME] [--max-uses N]   print a guest link\n"
    "  meeting invitations <id>       list a meeting's invitations\n"
    "  meeting revoke <id> <token>    revoke an invitation\n"
    "  meeting join <id> [--admit all|none|ask]   take part: keys, admissions, events\n"
    "  call instant [--title T]       create an instant call\n"
    "  token livekit <meeting>        a LiveKit token for a meeting\n"
    "  token jitsi <stream>           a Jitsi token for a stream\n"
    "\n"
    "Guest command (no enrollment needed):\n"
    "  guest join <link> --name <display name>\n"
    "\n"
    "Options:\n"
    "  --json          machine-readable output (one JSON document, or one per line)\n"
    "  --data-dir DIR  state directory (default $XDG_DATA_HOME/keywave)\n"
    "  --help          help; 'keywave <command> --help' for a command's\n";

typedef struct command {
    const char *name;
    kwc_cmd_fn fn;
} command;

static const command commands[] = {
    {"enroll", kwc_cmd_enroll}, {"keys", kwc_cmd_keys},   {"meeting", kwc_cmd_meeting},
    {"call", kwc_cmd_call},     {"token", kwc_cmd_token}, {"guest", kwc_cmd_guest},
};

int main(int argc, char **argv)
{
    kwc_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    const char *data_dir = NULL;
    /* --json may appear anywhere (before "--"); it is removed from argv. */
    int w = 1;
    for (int r = 1; r < argc; r++) {
        if (strcmp(argv[r], "--") == 0) {
            while (r < argc)
                argv[w++] = argv[r++];
            break;
        }
        if (strcmp(argv[r], "--json") == 0)
            ctx.json = 1;
        else
            argv[w++] = argv[r];
    }
    argc = w;
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return KWC_EXIT_OK;
        }
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            data_dir = argv[i + 1];
            i += 2;
            continue;
        }
        fprintf(stderr, "keywave: unknown option '%s'\n%s", argv[i], usage);
        return KWC_EXIT_USAGE;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return KWC_EXIT_USAGE;
    }
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        if (strcmp(argv[i], commands[c].name) != 0)
            continue;
        kw_error err;
        kw_error_clear(&err);
        if (kwc_state_init(&ctx, data_dir, &err) != KW_OK)
            return kwc_fail_err(&ctx, "state directory", &err);
        return commands[c].fn(&ctx, argc - i, argv + i);
    }
    fprintf(stderr, "keywave: unknown command '%s'\n%s", argv[i], usage);
    return KWC_EXIT_USAGE;
}
