/*
 * cli.h — what every `keywave` command shares: the invocation context, consistent output
 * (text for people, one JSON document with --json for scripts) and the one-line errors.
 *
 * Output rules: a command's result goes to stdout (text, or with --json exactly one JSON
 * document); progress and events of long-running commands go to stdout as lines (with
 * --json one JSON object per line); every error a user can cause is one line on stderr,
 * "keywave: <what went wrong>", and a non-zero exit status: 1 for a failure, 2 for a usage
 * error. No secret (session secret, guest secret, key material) is ever printed.
 */
#ifndef KEYWAVE_CLIENT_CLI_H
#define KEYWAVE_CLIENT_CLI_H

#include <limits.h>
#include <stdint.h>

#include <jansson.h>

#include "keywave/err.h"

#define KWC_EXIT_OK    0
#define KWC_EXIT_FAIL  1
#define KWC_EXIT_USAGE 2

typedef struct kwc_ctx {
    int json;                /* --json: machine-readable output */
    char data_dir[PATH_MAX]; /* state directory: $XDG_DATA_HOME/keywave (0700) */
} kwc_ctx;

/* A subcommand: argv[0] is its name; returns the process exit status. */
typedef int (*kwc_cmd_fn)(kwc_ctx *ctx, int argc, char **argv);

/* Prints "keywave: <message>" on stderr and returns KWC_EXIT_FAIL. */
int kwc_fail(kwc_ctx *ctx, const char *fmt, ...) KW_PRINTF(2, 3);

/* Prints "keywave: <message>" and "Try 'keywave <cmd> --help'." on stderr; returns
 * KWC_EXIT_USAGE. */
int kwc_usage_error(kwc_ctx *ctx, const char *cmd, const char *fmt, ...) KW_PRINTF(3, 4);

/* Fails with a kw_error: its detail when it has one, else the code's sentence. */
int kwc_fail_err(kwc_ctx *ctx, const char *what, const kw_error *err);

/* With --json prints doc compactly on one line of stdout; steals the reference. */
void kwc_print_json(kwc_ctx *ctx, json_t *doc);

/* An event line of a long-running command: text for people, or with --json the object
 * {"event": name, ...fields} on one line. fields is stolen (may be NULL). Flushes. */
void kwc_event_line(kwc_ctx *ctx, const char *name, json_t *fields, const char *fmt, ...)
    KW_PRINTF(4, 5);

/* 1 when argv has "--help" or "-h" at index >= 1 (then prints help and returns). */
int kwc_wants_help(int argc, char **argv);

/* Wall-clock time, ms since the epoch (for signing and key ages). */
int64_t kwc_now_ms(void);

/* A monotonic clock, ms (for timeouts). */
int64_t kwc_mono_ms(void);

/* Parses a decimal integer in [min, max]; returns 0 on success. */
int kwc_parse_int(const char *s, long long min, long long max, long long *out);

/* Drops a result on purpose (a failure there changes nothing and is reported otherwise). */
static inline void kwc_ignore(kw_err rc)
{
    (void)rc;
}

/* Set by SIGINT/SIGTERM (kwc_catch_signals): long-running commands leave cleanly. */
extern volatile int kwc_interrupted;
void kwc_catch_signals(void);

/* The commands (client/cmd_*.c). */
int kwc_cmd_enroll(kwc_ctx *ctx, int argc, char **argv);
int kwc_cmd_keys(kwc_ctx *ctx, int argc, char **argv);
int kwc_cmd_meeting(kwc_ctx *ctx, int argc, char **argv);
int kwc_cmd_call(kwc_ctx *ctx, int argc, char **argv);
int kwc_cmd_token(kwc_ctx *ctx, int argc, char **argv);
int kwc_cmd_guest(kwc_ctx *ctx, int argc, char **argv);
int kwc_cmd_meeting_join(kwc_ctx *ctx, int argc, char **argv);

#endif
