/*
 * log.c — the event log of log.h: logfmt lines on stderr, each written with one write(2)
 * so lines from one process never interleave mid-line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(kw_log_level level)
{
    switch (level) {
    case KW_LOG_INFO:
        return "info";
    case KW_LOG_WARN:
        return "warn";
    case KW_LOG_ERROR:
        return "error";
    }
    return "error";
}

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-22T10:00:00.123Z; "-" if the clock fails. */
static void format_timestamp(char *out, size_t cap)
{
    struct timespec now;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0 || gmtime_r(&now.tv_sec, &tm) == NULL) {
        snprintf(out, cap, "-");
        return;
    }
    char secs[32];
    if (strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%s.%03ldZ", secs, now.tv_nsec / 1000000L);
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere else to report a failing stderr */
        buf += n;
        len -= (size_t)n;
    }
}

void kw_log(kw_log_level level, const char *event, const char *fmt, ...)
{
    char line[KW_LOG_LINE_MAX];
    char ts[48];
    format_timestamp(ts, sizeof ts);

    /* Leaves room for "...\n" so a cut line still ends visibly and with a newline. */
    const size_t room = sizeof line - 4;
    int n =
        snprintf(line, room, "ts=%s level=%s event=%s", ts, level_name(level), event ? event : "-");
    if (n < 0)
        return;
    size_t len = (size_t)n < room ? (size_t)n : room - 1;
    bool cut = (size_t)n >= room;

    if (!cut && fmt != NULL && fmt[0] != '\0') {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(line + len, room - len, fmt, ap);
        va_end(ap);
        if (n < 0)
            n = 0;
        if ((size_t)n >= room - len) {
            cut = true;
            len = room - 1;
        } else {
            len += (size_t)n;
        }
    }
    if (cut) {
        memcpy(line + len, "...", 3); /* NOLINT(bugprone-not-null-terminated-result): bytes for
                                         write(2), not a C string */
        len += 3;
    }
    line[len++] = '\n';
    write_all(line, len);
}

static bool is_plain_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

const char *kw_log_value(char *buf, size_t cap, const char *s)
{
    if (cap < 8) {
        if (cap > 0)
            buf[0] = '\0';
        return buf;
    }
    if (s == NULL)
        s = "";
    bool quote = s[0] == '\0';
    for (const char *p = s; *p != '\0' && !quote; p++)
        quote = !is_plain_byte((unsigned char)*p);

    /* Every piece is at most 4 bytes; keep room for `..."` and the NUL after the last. */
    const size_t limit = cap - 5;
    size_t n = 0;
    if (quote)
        buf[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char piece[8];
        size_t len;
        if (*p == '"' || *p == '\\') {
            piece[0] = '\\';
            piece[1] = (char)*p;
            len = 2;
        } else if (*p < 0x20 || *p >= 0x7f) {
            snprintf(piece, sizeof piece, "\\x%02x", *p);
            len = 4;
        } else {
            piece[0] = (char)*p;
            len = 1;
        }
        if (n + len > limit) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        memcpy(buf + n, piece, len);
        n += len;
    }
    if (quote)
        buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}
