/*
 * bench/http_load.c — the load generator of the HTTP benchmark (bench/run-http.sh) and the
 * small client that prepares its data. The same binary drives keywaved and the Node peer
 * (bench/peer/), so both servers see the same bytes from the same client.
 *
 * Load phase: N keep-alive HTTP/1.1 connections over raw sockets and epoll, one request in
 * flight per connection (no pipelining). Every request is prepared before the clock
 * starts (bodies built, member requests signed with a fresh nonce each), so the timed loop
 * only writes bytes, parses the status line and headers, reads Content-Length (or chunked)
 * bytes of body and records the latency. It prints requests/s, p50, p99 and a histogram of
 * statuses as `name value` lines.
 *
 * Subcommands (ADDR is host:port, IPv4):
 *   gen-guests COUNT OUT            COUNT registration bodies, one JSON per line, each with
 *                                   its own identity key and signed pre-key (the 30
 *                                   one-time pre-keys are shared to keep this cheap); the
 *                                   invitation token is a placeholder filled in at load time
 *   enroll ADDR CODES OUT           POST /api/auth/enroll for each code (one per line);
 *                                   writes "user_id device_id client_id secret" lines
 *   peer-devices ADDR COUNT OUT     the peer's bench-only device provisioning, same output
 *   meeting ADDR DEVICES            as the first device: POST /api/meetings (allow_external)
 *                                   and POST /api/meetings/:id/invitations; prints
 *                                   "meeting_id token"
 *   register ADDR GUESTS TOKEN FIRST COUNT [--conns N] [--seconds S] [--sessions OUT]
 *                                   timed: registers bodies FIRST..FIRST+COUNT-1; --sessions
 *                                   writes the session ids of the 201 answers
 *   get ADDR PATH COUNT [--conns N] [--seconds S]
 *                                   timed: the same unsigned GET COUNT times (the HTTP
 *                                   layer's ceiling, e.g. /healthz)
 *   fetch ADDR DEVICES SESSIONS MEETING [--devices D] [--guests G] [--per-pair P]
 *         [--conns N] [--seconds S] timed: member device d fetches the bundle of guest g,
 *                                   P times per (d, g) pair, rounds interleaved
 *
 * A benchmark, not a test: it never asserts on time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "keywave/identity.h"
#include "keywave/random.h"
#include "keywave/request_sign.h"
#include "keywave/store.h"

#define BENCH_PROG "http_load"
#include "loadgen_util.h"

#define TOKEN_CHARS      32
#define TOKEN_FIELD      "{\"invitation_token\":\""
#define TOKEN_OFFSET     (sizeof TOKEN_FIELD - 1)
#define LINE_MAX_BYTES   (64 * 1024)
#define CONNS_MAX        1024
#define READ_CHUNK       16384
#define ONE_SHOT_TIMEOUT 30 /* seconds for a setup request */

/* ---- small helpers ---------------------------------------------------------------------- */

/* Appends to a growing buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Reads a whole file of lines; returns the lines (malloc'd each) and their count. */
static char **read_lines(const char *path, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("cannot open %s", path);
    char **lines = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, f)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            lines = xrealloc(lines, cap * sizeof *lines);
        }
        lines[n++] = xstrdup(line);
    }
    free(line);
    fclose(f);
    *n_out = n;
    return lines;
}

/* ---- address ------------------------------------------------------------------------------ */

static int connect_blocking(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)&target, sizeof target) != 0)
        die("connect: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* ---- response parsing ------------------------------------------------------------------- */

/*
 * Looks for one complete response at the start of data[0..len). Returns its total length
 * (headers and body) and fills *status, *body_off, *body_len, *close_after; 0 when more
 * bytes are needed; -1 on a malformed response. A chunked body is reported as its raw
 * (still chunk-framed) bytes.
 */
static long parse_response(const char *data, size_t len, int *status, size_t *body_off,
                           size_t *body_len, int *close_after)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') {
            end = data + i;
            break;
        }
    if (end == NULL)
        return len > 65536 ? -1 : 0;
    size_t head = (size_t)(end - data) + 4;
    if (head < 12 || memcmp(data, "HTTP/1.", 7) != 0 || data[8] != ' ')
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (data[i] < '0' || data[i] > '9')
            return -1;
        st = st * 10 + (data[i] - '0');
    }
    size_t clen = 0;
    int have_len = 0, chunked = 0, close_hdr = data[7] == '0';
    const char *line = memchr(data, '\n', head);
    while (line != NULL && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        if (eol == NULL)
            break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            const char *v = line + 15;
            while (*v == ' ')
                v++;
            clen = 0;
            for (; v < eol && *v >= '0' && *v <= '9'; v++)
                clen = clen * 10 + (size_t)(*v - '0');
            have_len = 1;
        } else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            chunked = 1;
        } else if (ll > 11 && strncasecmp(line, "connection:", 11) == 0) {
            const char *v = line + 11;
            while (*v == ' ')
                v++;
            close_hdr = (size_t)(eol - v) >= 5 && strncasecmp(v, "close", 5) == 0;
        }
        line = memchr(line, '\n', (size_t)(end + 2 - line));
    }
    *status = st;
    *close_after = close_hdr;
    *body_off = head;
    if (st == 204 || st == 304 || (st >= 100 && st < 200)) {
        *body_len = 0;
        return (long)head;
    }
    if (chunked) {
        size_t p = head;
        for (;;) {
            size_t size = 0;
            int digits = 0;
            while (p < len) {
                char c = data[p];
                int v = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (v < 0)
                    break;
                size = size * 16 + (size_t)v;
                digits++;
                p++;
            }
            const char *crlf = p < len ? memchr(data + p, '\n', len - p) : NULL;
            if (crlf == NULL)
                return 0;
            if (digits == 0)
                return -1;
            p = (size_t)(crlf - data) + 1;
            if (size == 0) {
                /* trailers end with an empty line */
                for (;;) {
                    const char *nl = p < len ? memchr(data + p, '\n', len - p) : NULL;
                    if (nl == NULL)
                        return 0;
                    size_t l = (size_t)(nl - (data + p));
                    p = (size_t)(nl - data) + 1;
                    if (l <= 1)
                        break;
                }
                *body_len = p - head;
                return (long)p;
            }
            if (p + size + 2 > len)
                return 0;
            p += size + 2;
        }
    }
    if (!have_len) {
        if (!close_hdr)
            return -1; /* neither length nor close: not used by either server */
        return 0;      /* read until EOF (handled by the caller) */
    }
    if (head + clen > len)
        return 0;
    *body_len = clen;
    return (long)(head + clen);
}

/* ---- one-shot requests (setup, not timed) ------------------------------------------------ */

typedef struct reply {
    int status;
    char *body; /* NUL-terminated, malloc'd */
} reply;

static reply one_shot(const char *raw, size_t raw_len)
{
    int fd = connect_blocking();
    struct timeval tv = {ONE_SHOT_TIMEOUT, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t off = 0; off < raw_len;) {
        ssize_t w = write(fd, raw + off, raw_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write: %s", strerror(errno));
        off += (size_t)w;
    }
    buf in = {0};
    for (;;) {
        char chunk[READ_CHUNK];
        int status, close_after;
        size_t body_off, body_len;
        long whole =
            in.len ? parse_response(in.p, in.len, &status, &body_off, &body_len, &close_after) : 0;
        if (whole < 0)
            die("malformed response%s", NULL);
        if (whole > 0) {
            reply r = {status, xmalloc(body_len + 1)};
            memcpy(r.body, in.p + body_off, body_len);
            r.body[body_len] = '\0';
            free(in.p);
            close(fd);
            return r;
        }
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            die("connection closed before a whole response%s", NULL);
        buf_add(&in, chunk, (size_t)got);
    }
}

static char *make_nonce(void)
{
    char nonce[KW_REQUEST_NONCE_NEW_CHARS + 1];
    if (kw_request_nonce_new(kw_random_system(), nonce) != KW_OK)
        die("nonce%s", NULL);
    return xstrdup(nonce);
}

typedef struct device {
    char *user_id, *device_id, *client_id, *secret;
} device;

/* Builds a request; signs it as dev when dev != NULL (fresh nonce, timestamp now). */
static void build_request(buf *out, const char *method, const char *path, const char *body,
                          const device *dev)
{
    size_t body_len = body ? strlen(body) : 0;
    char line[512];
    out->len = 0;
    snprintf(line, sizeof line, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host_header);
    buf_str(out, line);
    if (body != NULL) {
        snprintf(line, sizeof line, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                 body_len);
        buf_str(out, line);
    }
    if (dev != NULL) {
        char ts[24], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
        snprintf(ts, sizeof ts, "%lld", (long long)wall_ms());
        char *nonce = make_nonce();
        if (kw_request_sign(dev->secret, dev->client_id, ts, nonce, method, path,
                            (const uint8_t *)body, body_len, sig) != KW_OK)
            die("sign%s", NULL);
        snprintf(line, sizeof line,
                 "X-Client-ID: %s\r\nX-Timestamp: %s\r\nX-Nonce: %s\r\nX-Signature: %s\r\n",
                 dev->client_id, ts, nonce, sig);
        buf_str(out, line);
        free(nonce);
    }
    buf_str(out, "\r\n");
    if (body != NULL)
        buf_add(out, body, body_len);
}

static json_t *call_json(const char *method, const char *path, const char *body, const device *dev,
                         int want_status)
{
    buf req = {0};
    build_request(&req, method, path, body, dev);
    reply r = one_shot(req.p, req.len);
    free(req.p);
    if (r.status != want_status) {
        fprintf(stderr, "http_load: %s %s -> %d %s\n", method, path, r.status, r.body);
        exit(1);
    }
    json_error_t jerr;
    json_t *doc = json_loads(r.body, 0, &jerr);
    if (doc == NULL)
        die("response is not JSON: %s", r.body);
    free(r.body);
    return doc;
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        static char num[32];
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        return num;
    }
    if (!json_is_string(v))
        die("response lacks %s", key);
    return json_string_value(v);
}

static device *read_devices(const char *path, size_t *n_out)
{
    size_t n;
    char **lines = read_lines(path, &n);
    device *d = xmalloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) {
        char *save = NULL;
        d[i].user_id = strtok_r(lines[i], " ", &save);
        d[i].device_id = strtok_r(NULL, " ", &save);
        d[i].client_id = strtok_r(NULL, " ", &save);
        d[i].secret = strtok_r(NULL, " ", &save);
        if (d[i].secret == NULL)
            die("bad device line in %s", path);
    }
    free(lines); /* the strings stay, owned by d */
    *n_out = n;
    return d;
}

/* Frees what read_devices returned (each line starts at its user_id). */
static void free_devices(device *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(d[i].user_id);
    free(d);
}

static void write_device(FILE *f, json_t *doc)
{
    fprintf(f, "%s ", jstr(doc, "user_id"));
    fprintf(f, "%s ", jstr(doc, "device_id"));
    fprintf(f, "%s ", jstr(doc, "client_id"));
    fprintf(f, "%s\n", jstr(doc, "session_secret"));
}

static int cmd_enroll(int argc, char **argv)
{
    if (argc != 5)
        die("usage: enroll ADDR CODES OUT%s", NULL);
    parse_addr(argv[2]);
    size_t n;
    char **codes = read_lines(argv[3], &n);
    FILE *out = fopen(argv[4], "w");
    if (out == NULL)
        die("cannot write %s", argv[4]);
    for (size_t i = 0; i < n; i++) {
        json_t *body = json_pack("{s:s, s:s}", "code", codes[i], "device_name", "bench");
        char *text = json_dumps(body, JSON_COMPACT);
        json_t *doc = call_json("POST", "/api/auth/enroll", text, NULL, 201);
        write_device(out, doc);
        json_decref(doc);
        json_decref(body);
        free(text);
        free(codes[i]);
    }
    free(codes);
    fclose(out);
    return 0;
}

static int cmd_peer_devices(int argc, char **argv)
{
    if (argc != 5)
        die("usage: peer-devices ADDR COUNT OUT%s", NULL);
    parse_addr(argv[2]);
    size_t n = arg_size(argv[3], 10000, "COUNT");
    char body[64];
    snprintf(body, sizeof body, "{\"count\":%zu}", n);
    json_t *doc = call_json("POST", "/bench/devices", body, NULL, 201);
    FILE *out = fopen(argv[4], "w");
    if (out == NULL)
        die("cannot write %s", argv[4]);
    json_t *devs = json_object_get(doc, "devices");
    for (size_t i = 0; i < json_array_size(devs); i++)
        write_device(out, json_array_get(devs, i));
    fclose(out);
    json_decref(doc);
    return 0;
}

/* RFC 3339 UTC text of a wall time in ms. */
static void rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_meeting(int argc, char **argv)
{
    if (argc != 4)
        die("usage: meeting ADDR DEVICES%s", NULL);
    parse_addr(argv[2]);
    size_t n;
    device *devs = read_devices(argv[3], &n);
    if (n == 0)
        die("no devices in %s", argv[3]);
    char start[32], end[32];
    int64_t now = wall_ms();
    rfc3339(now, start);
    rfc3339(now + 8LL * 3600 * 1000, end);
    json_t *body = json_pack("{s:s, s:s, s:s, s:b}", "title", "bench", "start_time", start,
                             "end_time", end, "allow_external", 1);
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *meeting = call_json("POST", "/api/meetings", text, &devs[0], 201);
    char *meeting_id = xstrdup(jstr(meeting, "meeting_id"));
    char path[256];
    snprintf(path, sizeof path, "/api/meetings/%s/invitations", meeting_id);
    json_t *inv = call_json("POST", path, "{}", &devs[0], 201);
    printf("%s %s\n", meeting_id, jstr(inv, "token"));
    json_decref(inv);
    json_decref(meeting);
    json_decref(body);
    free(text);
    free(meeting_id);
    free_devices(devs, n);
    return 0;
}

/* ---- guest registration bodies ------------------------------------------------------------ */

typedef struct copy_ctx {
    kw_store *from, *to;
} copy_ctx;

static kw_err copy_one(void *arg, const char *key)
{
    copy_ctx *c = arg;
    uint8_t *val = NULL;
    size_t len = 0;
    kw_err rc = kw_store_get(c->from, key, &val, &len);
    if (rc == KW_OK)
        rc = kw_store_put(c->to, key, val, len);
    free(val);
    return rc;
}

static void check(kw_err rc, const kw_error *err, const char *what)
{
    if (rc != KW_OK) {
        fprintf(stderr, "http_load: %s: %s (%s)\n", what, kw_err_name(rc), err ? err->detail : "");
        exit(1);
    }
}

/*
 * Each body gets its own identity key, registration id and signed pre-key (kw_keys_setup
 * on a fresh store); the one-time pre-keys are one batch made once and copied into every
 * store first, so setup finds 30 held and makes none.
 */
static int cmd_gen_guests(int argc, char **argv)
{
    if (argc != 4)
        die("usage: gen-guests COUNT OUT%s", NULL);
    size_t count = arg_size(argv[2], 10000000, "COUNT");
    FILE *out = fopen(argv[3], "w");
    if (out == NULL)
        die("cannot write %s", argv[3]);
    kw_error err;
    kw_store *tmpl = NULL;
    kw_identity *tid = NULL;
    check(kw_store_mem_new(&tmpl), NULL, "store");
    kw_identity_config tcfg = {KW_ROLE_GUEST, tmpl, NULL, NULL, 1};
    check(kw_identity_open(&tcfg, &tid, &err), &err, "identity");
    char *batch = NULL;
    check(kw_keys_replenish(tid, 0, &batch, &err), &err, "pre-keys");
    free(batch);
    kw_identity_free(tid);

    char zeros[TOKEN_CHARS + 1];
    memset(zeros, '0', TOKEN_CHARS);
    zeros[TOKEN_CHARS] = '\0';
    int64_t now = wall_ms();
    uint64_t t0 = mono_ns();
    for (size_t i = 0; i < count; i++) {
        kw_store *st = NULL;
        kw_identity *id = NULL;
        check(kw_store_mem_new(&st), NULL, "store");
        copy_ctx c = {tmpl, st};
        check(kw_store_list(tmpl, "", copy_one, &c), NULL, "copy pre-keys");
        kw_identity_config cfg = {KW_ROLE_GUEST, st, NULL, NULL, 1};
        check(kw_identity_open(&cfg, &id, &err), &err, "identity");
        kw_setup_result res;
        check(kw_keys_setup(id, now, NULL, NULL, &res, &err), &err, "setup");
        if (res.made_pre_keys != 0 || !res.made_identity)
            die("setup did not reuse the shared pre-keys%s", NULL);
        char *doc = NULL;
        check(kw_keys_export_json(id, &doc, &err), &err, "export");
        if (doc[0] != '{')
            die("unexpected export%s", NULL);
        fprintf(out, "%s%s\",\"display_name\":\"bench guest %zu\",%s\n", TOKEN_FIELD, zeros, i,
                doc + 1);
        free(doc);
        kw_identity_free(id);
        kw_store_free(st);
    }
    kw_store_free(tmpl);
    if (fclose(out) != 0)
        die("cannot write %s", argv[3]);
    fprintf(stderr, "gen-guests: %zu bodies in %.1f s\n", count, (double)(mono_ns() - t0) / 1e9);
    return 0;
}

/* ---- the load engine ------------------------------------------------------------------------ */

typedef struct request {
    char *raw;
    size_t len;
} request;

typedef struct conn {
    int fd;
    size_t req;  /* index of the request in flight; SIZE_MAX when idle */
    size_t sent; /* bytes of it written */
    uint64_t t0; /* when its first byte went out */
    buf in;
} conn;

typedef struct load {
    request *reqs;
    size_t n_reqs, next;
    uint64_t deadline_ns; /* stop issuing after this (0: none) */
    uint32_t *lat_us;     /* per completed request */
    size_t n_done, n_errors, n_reconnects;
    size_t status_count[600];
    char **session_ids; /* when non-NULL: session_id of each 201 answer, by request */
    int ep;
} load;

static void conn_open(load *L, conn *c)
{
    c->fd = connect_blocking();
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->in.len = 0;
}

static void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Writes as much of the request in flight as the socket takes. Returns -1 on error. */
static int conn_write(conn *c, const load *L)
{
    const request *r = &L->reqs[c->req];
    while (c->sent < r->len) {
        ssize_t w = send(c->fd, r->raw + c->sent, r->len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        c->sent += (size_t)w;
    }
    return 0;
}

/* Starts the next request on c, or leaves it idle when none is left. */
static void conn_next(load *L, conn *c)
{
    if (L->next >= L->n_reqs || (L->deadline_ns && mono_ns() >= L->deadline_ns)) {
        c->req = SIZE_MAX;
        return;
    }
    c->req = L->next++;
    c->sent = 0;
    c->t0 = mono_ns();
    (void)conn_write(c, L); /* a failed write shows up as a closed connection on read */
}

/* First occurrence of needle in hay[0..n), or NULL (memmem is a GNU extension). */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

static void record(load *L, conn *c, int status, const char *body, size_t body_len)
{
    uint64_t us = (mono_ns() - c->t0) / 1000;
    L->lat_us[L->n_done++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    L->status_count[status >= 100 && status < 600 ? status : 0]++;
    if (L->session_ids != NULL && status == 201) {
        static const char key[] = "\"session_id\":\"";
        const char *p = find_bytes(body, body_len, key, sizeof key - 1);
        if (p != NULL) {
            p += sizeof key - 1;
            const char *q = memchr(p, '"', body_len - (size_t)(p - body));
            if (q != NULL) {
                char *id = xmalloc((size_t)(q - p) + 1);
                memcpy(id, p, (size_t)(q - p));
                id[q - p] = '\0';
                L->session_ids[c->req] = id;
            }
        }
    }
}

/* Reads what is there; completes responses. Returns -1 when the connection must go. */
static int conn_read(load *L, conn *c)
{
    for (;;) {
        char chunk[READ_CHUNK];
        ssize_t got = recv(c->fd, chunk, sizeof chunk, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (got <= 0)
            return -1;
        buf_add(&c->in, chunk, (size_t)got);
        for (;;) {
            if (c->req == SIZE_MAX || c->in.len == 0)
                break;
            int status, close_after;
            size_t body_off, body_len;
            long whole =
                parse_response(c->in.p, c->in.len, &status, &body_off, &body_len, &close_after);
            if (whole < 0)
                return -1;
            if (whole == 0)
                break;
            record(L, c, status, c->in.p + body_off, body_len);
            memmove(c->in.p, c->in.p + whole, c->in.len - (size_t)whole);
            c->in.len -= (size_t)whole;
            if (close_after) {
                c->req = SIZE_MAX;
                return -2; /* reconnect for the next request */
            }
            conn_next(L, c);
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Runs reqs over n_conns connections; prints the figures. */
static void run_load(load *L, size_t n_conns, double seconds)
{
    if (n_conns > CONNS_MAX)
        n_conns = CONNS_MAX;
    L->lat_us = xmalloc(L->n_reqs * sizeof *L->lat_us);
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    if (L->ep < 0)
        die("epoll: %s", strerror(errno));
    conn *conns = calloc(n_conns, sizeof *conns);
    if (conns == NULL)
        die("out of memory%s", NULL);
    for (size_t i = 0; i < n_conns; i++)
        conn_open(L, &conns[i]);
    uint64_t start = mono_ns();
    L->deadline_ns = seconds > 0 ? start + (uint64_t)(seconds * 1e9) : 0;
    size_t active = 0;
    for (size_t i = 0; i < n_conns; i++) {
        conn_next(L, &conns[i]);
        if (conns[i].req != SIZE_MAX)
            active++;
        else
            conn_close(&conns[i]);
    }
    struct epoll_event evs[256];
    while (active > 0) {
        int n = epoll_wait(L->ep, evs, 256, 10000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait: %s", strerror(errno));
        if (n == 0)
            die("no progress for 10 s (server stuck?)%s", NULL);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            int rc = 0;
            if ((evs[i].events & EPOLLOUT) && c->req != SIZE_MAX && conn_write(c, L) < 0)
                rc = -1;
            if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                rc = conn_read(L, c);
            if (rc == 0 && c->req == SIZE_MAX) {
                conn_close(c);
                active--;
            } else if (rc < 0) {
                /* -1: the server closed or broke the connection; a request in flight is
                 * lost (counted as an error, never resent: a POST is not idempotent).
                 * -2: the server asked to close after a whole response. Reconnect. */
                if (rc == -1 && c->req != SIZE_MAX)
                    L->n_errors++;
                conn_close(c);
                L->n_reconnects++;
                conn_open(L, c);
                conn_next(L, c);
                if (c->req == SIZE_MAX) {
                    conn_close(c);
                    active--;
                }
            }
        }
    }
    double elapsed = (double)(mono_ns() - start) / 1e9;
    qsort(L->lat_us, L->n_done, sizeof *L->lat_us, cmp_u32);
    double p50 = L->n_done ? L->lat_us[(L->n_done - 1) * 50 / 100] / 1000.0 : 0;
    double p99 = L->n_done ? L->lat_us[(L->n_done - 1) * 99 / 100] / 1000.0 : 0;
    printf("requests %zu\n", L->n_done);
    printf("errors %zu\n", L->n_errors);
    printf("reconnects %zu\n", L->n_reconnects);
    printf("connections %zu\n", n_conns);
    printf("seconds %.3f\n", elapsed);
    printf("rps %.0f\n", elapsed > 0 ? (double)L->n_done / elapsed : 0.0);
    printf("p50_ms %.2f\n", p50);
    printf("p99_ms %.2f\n", p99);
    printf("status");
    for (int s = 0; s < 600; s++)
        if (L->status_count[s])
            printf(" %d=%zu", s, L->status_count[s]);
    printf("\n");
    for (size_t i = 0; i < n_conns; i++)
        free(conns[i].in.p);
    free(conns);
    close(L->ep);
}

/* Parses the optional flags after the fixed arguments. */
typedef struct opts {
    size_t conns, devices, guests, per_pair;
    double seconds;
    const char *sessions_out;
} opts;

static void parse_opts(int argc, char **argv, int first, opts *o)
{
    for (int i = first; i < argc; i++) {
        if (i + 1 >= argc)
            die("option %s needs a value", argv[i]);
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--conns") == 0)
            o->conns = arg_size(v, CONNS_MAX, "--conns");
        else if (strcmp(argv[i - 1], "--seconds") == 0)
            o->seconds = (double)arg_size(v, 3600, "--seconds");
        else if (strcmp(argv[i - 1], "--sessions") == 0)
            o->sessions_out = v;
        else if (strcmp(argv[i - 1], "--devices") == 0)
            o->devices = arg_size(v, 1000000, "--devices");
        else if (strcmp(argv[i - 1], "--guests") == 0)
            o->guests = arg_size(v, 1000000, "--guests");
        else if (strcmp(argv[i - 1], "--per-pair") == 0)
            o->per_pair = arg_size(v, 1000, "--per-pair");
        else
            die("unknown option %s", argv[i - 1]);
    }
}

static int cmd_register(int argc, char **argv)
{
    if (argc < 7)
        die("usage: register ADDR GUESTS TOKEN FIRST COUNT [--conns N] [--seconds S] "
            "[--sessions OUT]%s",
            NULL);
    parse_addr(argv[2]);
    const char *token = argv[4];
    if (strlen(token) != TOKEN_CHARS)
        die("token must be %s characters", "32");
    size_t first = arg_size(argv[5], SIZE_MAX / 2, "FIRST");
    size_t count = arg_size(argv[6], SIZE_MAX / 2, "COUNT");
    opts o = {64, 0, 0, 0, 0, NULL};
    parse_opts(argc, argv, 7, &o);
    size_t n_lines;
    char **lines = read_lines(argv[3], &n_lines);
    if (first + count > n_lines)
        die("not enough bodies in %s", argv[3]);
    load L;
    memset(&L, 0, sizeof L);
    L.reqs = xmalloc(count * sizeof *L.reqs);
    L.n_reqs = count;
    for (size_t i = 0; i < count; i++) {
        char *body = lines[first + i];
        if (strncmp(body, TOKEN_FIELD, TOKEN_OFFSET) != 0)
            die("body %s does not start with the token field", "line");
        memcpy(body + TOKEN_OFFSET, token, TOKEN_CHARS);
        buf b = {0};
        build_request(&b, "POST", "/api/meetings/external/register", body, NULL);
        L.reqs[i].raw = b.p;
        L.reqs[i].len = b.len;
    }
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);
    free(lines);
    if (o.sessions_out)
        L.session_ids = calloc(count, sizeof *L.session_ids);
    run_load(&L, o.conns, o.seconds);
    if (o.sessions_out) {
        FILE *f = fopen(o.sessions_out, "w");
        if (f == NULL)
            die("cannot write %s", o.sessions_out);
        for (size_t i = 0; i < count; i++)
            if (L.session_ids[i]) {
                fprintf(f, "%s\n", L.session_ids[i]);
                free(L.session_ids[i]);
            }
        fclose(f);
        free(L.session_ids);
    }
    for (size_t i = 0; i < count; i++)
        free(L.reqs[i].raw);
    free(L.reqs);
    free(L.lat_us);
    return 0;
}

/* The same unsigned GET, COUNT times: the HTTP layer's own ceiling (e.g. /healthz). */
static int cmd_get(int argc, char **argv)
{
    if (argc < 5)
        die("usage: get ADDR PATH COUNT [--conns N] [--seconds S]%s", NULL);
    parse_addr(argv[2]);
    size_t count = arg_size(argv[4], 100000000, "COUNT");
    opts o = {64, 0, 0, 0, 0, NULL};
    parse_opts(argc, argv, 5, &o);
    buf b = {0};
    build_request(&b, "GET", argv[3], NULL, NULL);
    load L;
    memset(&L, 0, sizeof L);
    L.n_reqs = count;
    L.reqs = xmalloc(count * sizeof *L.reqs);
    for (size_t i = 0; i < count; i++) {
        L.reqs[i].raw = b.p; /* shared: never written */
        L.reqs[i].len = b.len;
    }
    run_load(&L, o.conns, o.seconds);
    free(b.p);
    free(L.reqs);
    free(L.lat_us);
    return 0;
}

static int cmd_fetch(int argc, char **argv)
{
    if (argc < 6)
        die("usage: fetch ADDR DEVICES SESSIONS MEETING [--devices D] [--guests G] "
            "[--per-pair P] [--conns N] [--seconds S]%s",
            NULL);
    parse_addr(argv[2]);
    size_t n_dev, n_guest;
    device *devs = read_devices(argv[3], &n_dev);
    char **sids = read_lines(argv[4], &n_guest);
    const char *meeting = argv[5];
    opts o = {64, n_dev, n_guest, 1, 0, NULL};
    parse_opts(argc, argv, 6, &o);
    if (o.devices > n_dev || o.guests > n_guest || o.devices == 0 || o.guests == 0)
        die("not enough devices or guests%s", NULL);
    load L;
    memset(&L, 0, sizeof L);
    L.n_reqs = o.devices * o.guests * o.per_pair;
    L.reqs = xmalloc(L.n_reqs * sizeof *L.reqs);
    size_t k = 0;
    /* Rounds outermost, so a pair's fetches are spread over the run; within a round the
     * devices of one guest follow each other, so its pre-keys go to different fetchers. */
    for (size_t r = 0; r < o.per_pair; r++)
        for (size_t g = 0; g < o.guests; g++)
            for (size_t d = 0; d < o.devices; d++) {
                char path[512];
                snprintf(path, sizeof path, "/api/meetings/%s/external/%s/keys", meeting, sids[g]);
                buf b = {0};
                build_request(&b, "GET", path, NULL, &devs[d]);
                L.reqs[k].raw = b.p;
                L.reqs[k].len = b.len;
                k++;
            }
    run_load(&L, o.conns, o.seconds);
    printf("pairs %zu\n", o.devices * o.guests);
    printf("per_pair %zu\n", o.per_pair);
    for (size_t i = 0; i < L.n_reqs; i++)
        free(L.reqs[i].raw);
    free(L.reqs);
    free(L.lat_us);
    free_devices(devs, n_dev);
    for (size_t i = 0; i < n_guest; i++)
        free(sids[i]);
    free(sids);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: http_load gen-guests|enroll|peer-devices|meeting|register|get|fetch "
                "... (see the comment at the top of bench/http_load.c)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "gen-guests") == 0)
        return cmd_gen_guests(argc, argv);
    if (strcmp(argv[1], "enroll") == 0)
        return cmd_enroll(argc, argv);
    if (strcmp(argv[1], "peer-devices") == 0)
        return cmd_peer_devices(argc, argv);
    if (strcmp(argv[1], "meeting") == 0)
        return cmd_meeting(argc, argv);
    if (strcmp(argv[1], "register") == 0)
        return cmd_register(argc, argv);
    if (strcmp(argv[1], "get") == 0)
        return cmd_get(argc, argv);
    if (strcmp(argv[1], "fetch") == 0)
        return cmd_fetch(argc, argv);
    fprintf(stderr, "http_load: unknown subcommand %s\n", argv[1]);
    return 2;
}
