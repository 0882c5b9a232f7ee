/*
 * cli.c — output, clocks, signals and number parsing shared by the commands (cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile int kwc_interrupted;

static void vfail(const char *fmt, va_list ap)
{
    fputs("keywave: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

int kwc_fail(kwc_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    return KWC_EXIT_FAIL;
}

int kwc_usage_error(kwc_ctx *ctx, const char *cmd, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'keywave %s --help'.\n", cmd);
    return KWC_EXIT_USAGE;
}

int kwc_fail_err(kwc_ctx *ctx, const char *what, const kw_error *err)
{
    if (err->detail[0] != '\0')
        return kwc_fail(ctx, "%s: %s", what, err->detail);
    return kwc_fail(ctx, "%s: %s", what, kw_strerror(err->code));
}

void kwc_print_json(kwc_ctx *ctx, json_t *doc)
{
    (void)ctx;
    if (doc == NULL)
        return;
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s != NULL) {
        puts(s);
        free(s);
    }
    fflush(stdout);
    json_decref(doc);
}

void kwc_event_line(kwc_ctx *ctx, const char *name, json_t *fields, const char *fmt, ...)
{
    if (ctx->json) {
        json_t *o = fields != NULL ? fields : json_object();
        if (o != NULL) {
            json_object_set_new(o, "event", json_string(name));
            kwc_print_json(ctx, o);
        }
        return;
    }
    json_decref(fields);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int kwc_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

int64_t kwc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kwc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kwc_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    kwc_interrupted = 1;
}

void kwc_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
