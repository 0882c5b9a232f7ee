/*
 * loadgen_util.h — the small helpers both load generators (bench/http_load.c,
 * bench/realtime.c) use: fatal errors, allocation that cannot fail, clocks, strict
 * decimal arguments, the server address. Define BENCH_PROG (the program's name for messages) before
 * including. Benchmark code only: it exits on failure.
 */
#ifndef KEYWAVE_BENCH_LOADGEN_UTIL_H
#define KEYWAVE_BENCH_LOADGEN_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_PROG
#error "define BENCH_PROG before including loadgen_util.h"
#endif

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, BENCH_PROG ": ");
    fprintf(stderr, fmt, arg ? arg : "");
    fputc('\n', stderr);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        die("out of memory%s", NULL);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        die("out of memory%s", NULL);
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Decimal digits only, no sign, fits in uint64 and max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static size_t arg_size(const char *s, uint64_t max, const char *what)
{
    uint64_t v;
    if (!parse_u64(s, max, &v))
        die("bad %s", what);
    return (size_t)v;
}

/* The server under test, from "host:port" (IPv4 or localhost); host_header as given. */
static struct sockaddr_in target;
static char host_header[64];

static void parse_addr(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= 32)
        die("address must be host:port, got %s", addr);
    char host[32];
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    uint64_t port;
    if (!parse_u64(colon + 1, 65535, &port) || port == 0)
        die("bad port in %s", addr);
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", sizeof "127.0.0.1");
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1)
        die("not an IPv4 address: %s", host);
    snprintf(host_header, sizeof host_header, "%s", addr);
}

#endif
