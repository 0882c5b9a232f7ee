/*
 * log.h — keywaved's event log: one line per event on stderr, in key=value form
 * (logfmt), so that a line can be grepped by eye and parsed by a collector:
 *
 *   ts=2026-11-22T10:00:00.123Z level=info event=start listen=127.0.0.1:8080 data_dir=./data
 *
 * Callers pass the event name and their own key=value pairs; any value that comes from
 * outside (a path, an OS error text) goes through kw_log_value() first, so a client cannot
 * forge a line or a key. Secrets (session and guest secrets, keys, tokens, query strings)
 * are never passed here at all (INV-8). Single-threaded, like the rest of the server.
 */
#ifndef KEYWAVE_SERVER_LOG_H
#define KEYWAVE_SERVER_LOG_H

#include <stddef.h>

#include "keywave/err.h"

typedef enum kw_log_level {
    KW_LOG_INFO = 0,
    KW_LOG_WARN = 1,
    KW_LOG_ERROR = 2,
} kw_log_level;

/* Longest line written, newline included; a longer line is cut and ends in "...". */
#define KW_LOG_LINE_MAX 1024

/* A buffer size that holds any value kw_log_value() writes for a short field. */
#define KW_LOG_VALUE_MAX 256

/*
 * Writes one line `ts=<RFC 3339 UTC, ms> level=<level> event=<event> <fields>` to stderr
 * with a single write. event: a fixed lower-case word chosen by the caller (not input).
 * fmt: printf-style key=value pairs separated by spaces, or NULL for none.
 */
void kw_log(kw_log_level level, const char *event, const char *fmt, ...) KW_PRINTF(3, 4);

/*
 * Makes s safe as one logfmt value: returned as is when it is non-empty printable ASCII
 * without spaces, quotes or backslashes; otherwise wrapped in double quotes with `"` and
 * `\` escaped and every other byte outside printable ASCII written as \xNN. A value that
 * does not fit in buf (cap bytes) is cut and ends in "...". Returns buf, always
 * NUL-terminated (cap must be at least 8). s may be NULL (written as "").
 */
const char *kw_log_value(char *buf, size_t cap, const char *s);

#endif
