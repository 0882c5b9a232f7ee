/*
 * cli_user.c — `keywaved user add <name>` and `keywaved user code <name>`: the admin
 * side of member enrollment (DESIGN.md section 4).
 *
 * It opens keywave.db with the server's own configuration, so it works on a running
 * server's data (SQLite WAL lets one writer at a time in; the busy timeout waits out the
 * server's short transactions). stdout gets the code alone on one line so a script can
 * capture it; everything else goes to stderr.
 */
#include "cli_user.h"

#include <string.h>
#include <time.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_members.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

void kw_cli_user_usage(FILE *out)
{
    fprintf(out, "       keywaved user add <name> [--config FILE]\n"
                 "       keywaved user code <name> [--config FILE]\n");
}

static int usage(void)
{
    fprintf(stderr, "Usage: keywaved user add <name> [--config FILE]\n"
                    "       keywaved user code <name> [--config FILE]\n"
                    "  add:  creates the member <name> and prints its first enrollment code\n"
                    "  code: prints another enrollment code for <name> (a further device)\n"
                    "Codes are single-use and expire after 24 hours.\n");
    return CLI_USAGE;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kw_cli_user(int argc, char **argv)
{
    const char *verb = NULL, *name = NULL, *conf_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc && conf_path == NULL)
            conf_path = argv[++i];
        else if (verb == NULL)
            verb = argv[i];
        else if (name == NULL)
            name = argv[i];
        else
            return usage();
    }
    if (verb == NULL || name == NULL || (strcmp(verb, "add") != 0 && strcmp(verb, "code") != 0))
        return usage();

    kw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    kw_db *db = NULL;
    kw_error err;
    kw_error_clear(&err);
    char user_id[KW_DB_ID_MAX + 1], code[KW_ENROLL_CODE_CHARS + 1];
    int status = CLI_FAILED;
    if (kw_config_load(&cfg, conf_path, &err) != KW_OK ||
        kw_config_prepare_data_dir(&cfg, &err) != KW_OK ||
        kw_db_open_sqlite(cfg.data_dir, &db, &err) != KW_OK) {
        fprintf(stderr, "keywaved: %s\n", err.detail);
        goto done;
    }
    kw_err rc = strcmp(verb, "add") == 0
                    ? db->members->user_add(db->ctx, name, wall_ms(), user_id, code, &err)
                    : db->members->code_issue(db->ctx, name, wall_ms(), user_id, code, &err);
    if (rc != KW_OK) {
        fprintf(stderr, "keywaved: %s\n", err.detail);
        goto done;
    }
    printf("%s\n", code);
    status = fflush(stdout) == 0 ? CLI_OK : CLI_FAILED;
    kw_wipe(code, sizeof code);
done:
    kw_db_close(db);
    kw_config_free(&cfg);
    return status;
}
