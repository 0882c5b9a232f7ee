/*
 * bench/realtime.c — the load generator of the realtime benchmark (bench/run-realtime.sh,
 * issue 4 point 5): guest -> member relays over Socket.IO, and idle connections. The same
 * binary drives keywaved and the Node peer (bench/peer/), so both servers see the same
 * bytes from the same client.
 *
 * Why its own WebSocket client (a small epoll loop, client framing with masking) rather
 * than libwebsockets: a load generator on one core must cost much less per message than
 * the server it measures, and must hold 19 000 connections in one process. The loop here
 * does one send() per event and one recv() per readable socket, keeps no per-connection
 * buffer while idle, and needs no library beyond libkeywave (the Makefile's generic bench
 * rule stays as it is). What it leaves out, on purpose: TLS, extensions, checking
 * Sec-WebSocket-Accept (the 101 status is checked), fragmented *sends*; received
 * fragments are reassembled. The mask key is a per-connection xorshift, not a CSPRNG: it
 * only has to be there (RFC 6455 masks against proxy cache poisoning, not relevant here).
 *
 * Packets: Engine.IO and Socket.IO packets are written with the keywave codec (eio.h,
 * sio.h: kw_eio_encode, kw_sio_encode, kw_sio_encode_event). Received frames go through
 * kw_eio_decode; the setup packets (CONNECT replies and errors, the register ack) through
 * kw_sio_decode. The two packets of the timed loop — the relayed guest:signal_message a
 * member receives, and the ack a guest receives — are recognised by their prefix instead:
 * kw_sio_decode parses the JSON payload with jansson, which would cost the load generator
 * about what the relay costs the server.
 *
 * Subcommands (ADDR is host:port, IPv4):
 *   register ADDR BODIES TOKEN FIRST COUNT OUT
 *       registers guests with the bodies of `http_load gen-guests` (lines FIRST..+COUNT-1,
 *       the invitation token filled in) by POST /api/meetings/external/register; writes
 *       "session_id guest_secret" lines to OUT ("-" when the server gives no secret: the
 *       peer, like the seeds, has none)
 *   relay ADDR DEVICES GUESTS MEETINGS [--pairs N] [--window W] [--rate R] [--warmup S]
 *         [--seconds S] [--msg-chars C] [--server-pid P]
 *       N pairs (default 1000): pair i = member device i (DEVICES: lines of http_load enroll /
 *       peer-devices) on "/" registered as a video participant of its meeting, and guest i
 *       (GUESTS: lines of `register`) on "/external", registered in the same meeting.
 *       MEETINGS is a meeting id, or a file of M ids: then the pairs are split into M equal
 *       blocks in order (pair i in meeting i * M / N), as the guests must have been. Each guest
 * sends guest:signal_message (with an ack id) to its member device. Closed loop (default): W
 * messages (default 1) in flight per pair, the next sent when one arrives. With --rate R: R
 * messages/s in total, round robin over the pairs, open loop (a pair with 64 in flight skips its
 *       turn: counted as "skipped"). WARMUP seconds (default 5) untimed, then SECONDS
 *       (default 20) timed. Prints messages delivered in the timed interval, msgs/s, p50/p99
 *       latency (guest send -> member receives), ack errors, and with --server-pid the
 *       server's user+system CPU over the timed interval (/proc/P/stat, all threads) in µs
 *       per delivered message.
 *   idle ADDR GUESTS COUNT --server-pid P [--settle S] [--cpu-window S] [--hold S]
 *       reads the server's VmRSS, opens COUNT connections (Engine.IO open + Socket.IO
 *       CONNECT on "/external" as the guests of GUESTS, round robin: a guest may hold
 *       several sockets), answers pings, waits SETTLE seconds (default 5), reads VmRSS
 *       again and prints both and the KiB per connection; then the server's CPU share over
 *       CPU_WINDOW seconds (default 30, more than one 25 s ping interval) while the
 *       connections only answer pings; keeps them HOLD more seconds (default 0), then
 *       closes them all. A connection the server drops during its handshake is opened again
 * (counted).
 *
 * Output: `name value` lines. Every connection is closed with SO_LINGER 0 (a reset), so
 * that tens of thousands of loopback connections leave no TIME_WAIT ports behind between
 * runs. A benchmark, not a test: it never asserts on time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#include "keywave/eio.h"
#include "keywave/random.h"
#include "keywave/request_sign.h"
#include "keywave/sio.h"

#define BENCH_PROG "realtime"
#include "loadgen_util.h"

#define TOKEN_CHARS       32
#define TOKEN_FIELD       "{\"invitation_token\":\""
#define TOKEN_OFFSET      (sizeof TOKEN_FIELD - 1)
#define READ_CHUNK        65536
#define FRAME_MAX         ((size_t)64 * 1024) /* largest frame this client builds */
#define PENDING_MAX       256                 /* connections in their handshake at once */
#define RING              128                 /* send times kept per pair (power of two) */
#define RATE_MAX_INFLIGHT 64                  /* --rate: most messages in flight per pair */
#define WINDOW_MAX        64
#define SEQ_DIGITS        12
#define PAIR_DIGITS       8
#define MSG_MARK          "\"encrypted_message\":\""
#define RELAY_EVENT       "guest:signal_message"
#define GUEST_NSP         "/external"

/* ---- small helpers ---------------------------------------------------------------------- */

/* First occurrence of needle in hay[0..n), or NULL (memmem is a GNU extension). */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m == 0 || m > n)
        return NULL;
    for (const char *p = hay; (p = memchr(p, needle[0], n - m + 1 - (size_t)(p - hay))) != NULL;
         p++)
        if (memcmp(p, needle, m) == 0)
            return p;
    return NULL;
}

/* A growing byte buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t more)
{
    if (b->len + more + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + more + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
}

static void buf_add(buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_drop(buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Reads a whole file of non-empty lines (each malloc'd). */
static char **read_lines(const char *path, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("cannot open %s", path);
    char **lines = NULL;
    size_t n = 0, cap = 0, line_cap = 0;
    char *line = NULL;
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

/* Splits each line into up to max space-separated words (in place); dies when fewer
 * than min. Returns words[line * max + i]. */
static char **split_lines(char **lines, size_t n, size_t min, size_t max, const char *path)
{
    char **w = calloc(n * max, sizeof *w);
    if (w == NULL)
        die("out of memory%s", NULL);
    for (size_t i = 0; i < n; i++) {
        char *save = NULL;
        size_t k = 0;
        for (char *t = strtok_r(lines[i], " ", &save); t != NULL && k < max;
             t = strtok_r(NULL, " ", &save))
            w[i * max + k++] = t;
        if (k < min)
            die("bad line in %s", path);
    }
    return w;
}

/* ---- address and sockets ------------------------------------------------------------------ */

/* Closes with a reset: no TIME_WAIT left on either side. */
static void close_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* ---- /proc readings of the server ------------------------------------------------------------ */

/* User + system CPU time of process pid so far (all threads), in µs; -1 when unreadable. */
static int64_t proc_cpu_us(long pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); /* the command name may hold spaces */
    if (p == NULL)
        return -1;
    p++;
    /* After "pid (comm)" the fields start at 3 (state); utime is 14, stime 15. */
    uint64_t utime = 0, stime = 0;
    for (int field = 3; field <= 15; field++) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p != ' ' && *p != '\0')
            p++;
        if (field == 14 || field == 15) {
            uint64_t v = 0;
            for (const char *q = start; q < p && *q >= '0' && *q <= '9'; q++)
                v = v * 10 + (uint64_t)(*q - '0');
            if (field == 14)
                utime = v;
            else
                stime = v;
        }
    }
    long tck = sysconf(_SC_CLK_TCK);
    return tck > 0 ? (int64_t)((utime + stime) * 1000000ull / (uint64_t)tck) : -1;
}

/* VmRSS of process pid in KiB; -1 when unreadable. */
static int64_t proc_rss_kib(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    int64_t kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = 0;
            for (const char *q = line + 6; *q != '\0'; q++)
                if (*q >= '0' && *q <= '9')
                    kib = kib * 10 + (*q - '0');
            break;
        }
    fclose(f);
    return kib;
}

/* ---- register: one-shot HTTP requests (setup, not timed) ----------------------------------- */

/* POSTs body to path with Connection: close; returns the status, the body in *out. */
static int http_post(const char *path, const char *body, buf *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&target, sizeof target) != 0)
        die("connect: %s", strerror(errno));
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     path, host_header, strlen(body));
    buf req = {0};
    buf_add(&req, head, (size_t)n);
    buf_add(&req, body, strlen(body));
    for (size_t off = 0; off < req.len;) {
        ssize_t w = write(fd, req.p + off, req.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write: %s", strerror(errno));
        off += (size_t)w;
    }
    buf_free(&req);
    buf in = {0};
    for (;;) {
        char chunk[16384];
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            die("read: %s", strerror(errno));
        if (got == 0)
            break;
        buf_add(&in, chunk, (size_t)got);
    }
    close_reset(fd);
    const char *end = in.len ? find_bytes(in.p, in.len, "\r\n\r\n", 4) : NULL;
    if (end == NULL || in.len < 12 || memcmp(in.p, "HTTP/1.", 7) != 0)
        die("malformed response to %s", path);
    if (find_bytes(in.p, (size_t)(end - in.p), "chunked", 7) != NULL)
        die("chunked response to %s (not expected)", path);
    int status = 0;
    for (int i = 9; i < 12; i++)
        status = status * 10 + (in.p[i] >= '0' && in.p[i] <= '9' ? in.p[i] - '0' : 0);
    out->len = 0;
    buf_add(out, end + 4, in.len - (size_t)(end + 4 - in.p));
    buf_free(&in);
    return status;
}

/* The string value of "key":"..." in a JSON object text (no escapes expected), or NULL;
 * copied into out (cap bytes). */
static const char *json_text_field(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    const char *q = strchr(p, '"');
    if (q == NULL || (size_t)(q - p) >= cap)
        return NULL;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return out;
}

static int cmd_register(int argc, char **argv)
{
    if (argc != 8)
        die("usage: register ADDR BODIES TOKEN FIRST COUNT OUT%s", NULL);
    parse_addr(argv[2]);
    const char *token = argv[4];
    if (strlen(token) != TOKEN_CHARS)
        die("token must be %s characters", "32");
    size_t first = arg_size(argv[5], SIZE_MAX / 2, "FIRST");
    size_t count = arg_size(argv[6], SIZE_MAX / 2, "COUNT");
    size_t n_lines;
    char **lines = read_lines(argv[3], &n_lines);
    if (first + count > n_lines)
        die("not enough bodies in %s", argv[3]);
    FILE *out = fopen(argv[7], "w");
    if (out == NULL)
        die("cannot write %s", argv[7]);
    buf reply = {0};
    uint64_t t0 = mono_ns();
    for (size_t i = first; i < first + count; i++) {
        char *body = lines[i];
        if (strncmp(body, TOKEN_FIELD, TOKEN_OFFSET) != 0)
            die("body %s does not start with the token field", "line");
        memcpy(body + TOKEN_OFFSET, token, TOKEN_CHARS);
        int status = http_post("/api/meetings/external/register", body, &reply);
        char sid[129], secret[129];
        if (status != 201 || json_text_field(reply.p, "session_id", sid, sizeof sid) == NULL)
            die("register: %s", reply.p ? reply.p : "(no body)");
        if (json_text_field(reply.p, "guest_secret", secret, sizeof secret) == NULL)
            memcpy(secret, "-", 2);
        fprintf(out, "%s %s\n", sid, secret);
    }
    if (fclose(out) != 0)
        die("cannot write %s", argv[7]);
    buf_free(&reply);
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);
    free(lines);
    fprintf(stderr, "register: %zu guests in %.1f s\n", count, (double)(mono_ns() - t0) / 1e9);
    return 0;
}

/* ---- the WebSocket / Engine.IO / Socket.IO client ------------------------------------------- */

typedef enum cstate {
    C_IDLE = 0,    /* not started */
    C_CONNECTING,  /* TCP connect in progress */
    C_UPGRADE,     /* upgrade request sent, waiting for 101 */
    C_EIO_OPEN,    /* waiting for the Engine.IO open packet */
    C_SIO_CONNECT, /* Socket.IO CONNECT sent */
    C_REGISTER,    /* member: video:register-participant sent */
    C_READY,
} cstate;

typedef struct wsconn {
    int fd;
    uint8_t state;   /* cstate */
    uint8_t guest;   /* 1: "/external", 0: "/" */
    uint32_t idx;    /* pair (relay) or connection number (idle) */
    uint32_t rng;    /* xorshift state for mask keys */
    const char *id1; /* member: client_id; guest: session_id (borrowed) */
    const char *id2; /* member: session secret; guest: guest secret (borrowed) */
    buf in;          /* received bytes not yet a whole frame */
    buf msg;         /* a fragmented message being reassembled */
    buf out;         /* bytes the socket did not take yet */
    size_t out_off;
} wsconn;

typedef struct pair {
    const char *user_id, *device_id; /* the member device (borrowed) */
    const char *meeting;             /* the meeting both are in (borrowed) */
    char *args;                      /* owned: the event's argument, digits rewritten per send */
    size_t args_len, digits_at;      /* offset of the pair + seq digits in args */
    uint64_t sent, delivered, failed, next_seq;
    uint64_t sent_ns[RING]; /* send time by seq % RING */
} pair;

typedef struct engine {
    int ep;
    int relay; /* 1: relay mode (members register in the meeting and are relayed to) */
    wsconn *conns;
    size_t n_conns, started, ready, pending, pending_max;
    pair *pairs;
    size_t n_pairs, window, rate;
    int sending;   /* 0 once the timed interval is over: nothing new is sent */
    int timing;    /* 1 during the timed interval */
    uint32_t *lat; /* µs, messages delivered during the timed interval */
    size_t n_lat, cap_lat;
    uint64_t inflight, skipped, ack_ok, ack_err, misrouted, out_of_order, unexpected;
    int retry_handshakes; /* idle: a connection the server drops before it is ready is redone */
    uint64_t retries;
    char last_error[64];
} engine;

static void conn_die(const wsconn *c, const char *what)
{
    fprintf(stderr, "realtime: connection %u (%s, state %d): %s\n", c->idx,
            c->guest ? "guest" : "member", c->state, what);
    exit(1);
}

/* Sends what is pending, then as much of data[0..len) as the socket takes; keeps the rest. */
static void conn_send(wsconn *c, const char *data, size_t len)
{
    if (c->out.len > c->out_off) {
        buf_add(&c->out, data, len);
        return;
    }
    c->out.len = c->out_off = 0;
    while (len > 0) {
        ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0)
            conn_die(c, strerror(errno));
        data += w;
        len -= (size_t)w;
    }
    if (len > 0)
        buf_add(&c->out, data, len);
}

static void conn_flush(wsconn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0)
            conn_die(c, strerror(errno));
        c->out_off += (size_t)w;
    }
    c->out.len = c->out_off = 0;
}

/* Sends one masked WebSocket frame (opcode: 1 text, 10 pong). */
static void ws_send(wsconn *c, int opcode, const char *data, size_t len)
{
    char frame[FRAME_MAX + 14];
    if (len > FRAME_MAX)
        conn_die(c, "frame too large for this client");
    size_t h = 0;
    frame[h++] = (char)(0x80 | opcode);
    if (len < 126) {
        frame[h++] = (char)(0x80 | len);
    } else {
        frame[h++] = (char)(0x80 | 126);
        frame[h++] = (char)(len >> 8);
        frame[h++] = (char)(len & 0xff);
    }
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    unsigned char mask[4] = {(unsigned char)(c->rng >> 24), (unsigned char)(c->rng >> 16),
                             (unsigned char)(c->rng >> 8), (unsigned char)c->rng};
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        frame[h + i] = (char)((unsigned char)data[i] ^ mask[i & 3]);
    conn_send(c, frame, h + len);
}

static void check_kw(kw_err rc, const kw_error *err, const char *what)
{
    if (rc != KW_OK) {
        fprintf(stderr, "realtime: %s: %s (%s)\n", what, kw_err_name(rc), err->detail);
        exit(1);
    }
}

/* The Socket.IO CONNECT of c, with its auth. */
static void send_sio_connect(wsconn *c)
{
    char auth[512], frame[1024];
    int n;
    if (c->guest) {
        n = snprintf(auth, sizeof auth, "{\"session_id\":\"%s\",\"guest_secret\":\"%s\"}", c->id1,
                     c->id2);
    } else {
        char ts[24], nonce[KW_REQUEST_NONCE_NEW_CHARS + 1], sig[KW_REQUEST_SIGNATURE_CHARS + 1];
        kw_error err;
        kw_error_clear(&err);
        int64_t now = wall_ms();
        snprintf(ts, sizeof ts, "%lld", (long long)now);
        check_kw(kw_request_nonce_new(kw_random_system(), nonce), &err, "nonce");
        check_kw(kw_request_sign(c->id2, c->id1, ts, nonce, "GET", "/socket.io/auth", NULL, 0, sig),
                 &err, "sign");
        n = snprintf(
            auth, sizeof auth,
            "{\"client_id\":\"%s\",\"timestamp\":%lld,\"nonce\":\"%s\",\"signature\":\"%s\"}",
            c->id1, (long long)now, nonce, sig);
    }
    if (n <= 0 || (size_t)n >= sizeof auth)
        conn_die(c, "auth too long");
    kw_sio_packet p;
    memset(&p, 0, sizeof p);
    p.type = KW_SIO_CONNECT;
    p.nsp = c->guest ? GUEST_NSP : "/";
    p.nsp_len = strlen(p.nsp);
    p.data = auth;
    p.data_len = (size_t)n;
    size_t len;
    kw_error err;
    kw_error_clear(&err);
    check_kw(kw_sio_encode(&p, frame, sizeof frame, &len, &err), &err, "encode CONNECT");
    ws_send(c, 1, frame, len);
    c->state = C_SIO_CONNECT;
}

static void send_register(engine *e, wsconn *c)
{
    char args[256], frame[512];
    int n = snprintf(args, sizeof args, "{\"channelId\":\"%s\"}", e->pairs[c->idx].meeting);
    size_t len;
    kw_error err;
    kw_error_clear(&err);
    check_kw(kw_sio_encode_event(NULL, 1, "video:register-participant", args, (size_t)n, frame,
                                 sizeof frame, &len, &err),
             &err, "encode register");
    ws_send(c, 1, frame, len);
    c->state = C_REGISTER;
}

static void became_ready(engine *e, wsconn *c)
{
    c->state = C_READY;
    e->ready++;
    e->pending--;
}

/* Writes v as exactly n decimal digits at p. */
static void put_digits(char *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static uint64_t get_digits(const char *p, size_t n, int *ok)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            *ok = 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* Pair i's guest sends its next message. */
static void pair_send(engine *e, size_t i)
{
    pair *p = &e->pairs[i];
    wsconn *g = &e->conns[2 * i + 1];
    uint64_t seq = p->sent++;
    put_digits(p->args + p->digits_at + PAIR_DIGITS, seq, SEQ_DIGITS);
    char frame[FRAME_MAX];
    size_t len;
    kw_error err;
    kw_error_clear(&err);
    check_kw(kw_sio_encode_event(GUEST_NSP, (int64_t)(seq & 0xffffffffu), RELAY_EVENT, p->args,
                                 p->args_len, frame, sizeof frame, &len, &err),
             &err, "encode guest:signal_message");
    p->sent_ns[seq % RING] = mono_ns();
    e->inflight++;
    ws_send(g, 1, frame, len);
}

static void lat_add(engine *e, uint64_t ns)
{
    if (e->n_lat == e->cap_lat) {
        e->cap_lat = e->cap_lat ? e->cap_lat * 2 : 1 << 16;
        e->lat = xrealloc(e->lat, e->cap_lat * sizeof *e->lat);
    }
    uint64_t us = ns / 1000;
    e->lat[e->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* A member received guest:signal_message: data is the Socket.IO packet text. */
static void on_relay(engine *e, wsconn *c, const char *data, size_t len)
{
    uint64_t now = mono_ns();
    const char *m = find_bytes(data, len, MSG_MARK, sizeof MSG_MARK - 1);
    int ok = m != NULL && (size_t)(data + len - m) > sizeof MSG_MARK - 1 + PAIR_DIGITS + SEQ_DIGITS;
    uint64_t pi = 0, seq = 0;
    if (ok) {
        m += sizeof MSG_MARK - 1;
        pi = get_digits(m, PAIR_DIGITS, &ok);
        seq = get_digits(m + PAIR_DIGITS, SEQ_DIGITS, &ok);
    }
    if (!ok) {
        e->unexpected++;
        return;
    }
    if (pi != c->idx || pi >= e->n_pairs) {
        e->misrouted++;
        return;
    }
    pair *p = &e->pairs[pi];
    if (seq < p->next_seq)
        e->out_of_order++;
    p->next_seq = seq + 1;
    p->delivered++;
    e->inflight--;
    if (e->timing)
        lat_add(e, now - p->sent_ns[seq % RING]);
    if (e->sending && e->rate == 0)
        pair_send(e, pi);
}

/* A guest received an ack: `3/external,<id>[...]` (after the Engine.IO '4'). */
static void on_guest_ack(engine *e, wsconn *c, const char *data, size_t len)
{
    const char *b = memchr(data, '[', len);
    if (b != NULL && (size_t)(data + len - b) > 11 && memcmp(b, "[{\"ok\":true", 11) == 0) {
        e->ack_ok++;
        return;
    }
    e->ack_err++;
    char tok[64] = "?";
    const char *q = b ? find_bytes(b, (size_t)(data + len - b), "\"error\":\"", 9) : NULL;
    if (q != NULL) {
        q += 9;
        size_t k = 0;
        while (k + 1 < sizeof tok && q + k < data + len && q[k] != '"') {
            tok[k] = q[k];
            k++;
        }
        tok[k] = '\0';
    }
    memcpy(e->last_error, tok, sizeof tok);
    if (e->ack_err > 1000) {
        fprintf(stderr, "realtime: over 1000 failed relays, the last: %s\n", tok);
        exit(1);
    }
    /* The message will not arrive: free its slot in the window. */
    pair *p = &e->pairs[c->idx];
    p->failed++;
    e->inflight--;
    if (e->sending && e->rate == 0)
        pair_send(e, c->idx);
}

/* A Socket.IO packet (the Engine.IO message's data) arrived on c. */
static void on_sio(engine *e, wsconn *c, const char *data, size_t len)
{
    static const char relay_prefix[] = "2[\"" RELAY_EVENT "\",";
    static const char ack_prefix[] = "3" GUEST_NSP ",";
    if (c->state == C_READY) {
        if (!c->guest && len > sizeof relay_prefix - 1 &&
            memcmp(data, relay_prefix, sizeof relay_prefix - 1) == 0) {
            on_relay(e, c, data, len);
            return;
        }
        if (c->guest && len > sizeof ack_prefix - 1 &&
            memcmp(data, ack_prefix, sizeof ack_prefix - 1) == 0) {
            on_guest_ack(e, c, data, len);
            return;
        }
        /* Other events (video:participant-joined, meeting:host_present): not counted. */
        if (data[0] == '2')
            return;
    }
    kw_sio_packet pk;
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kw_sio_decode(data, len, &pk, &err);
    if (rc != KW_OK)
        conn_die(c, err.detail);
    switch (pk.type) {
    case KW_SIO_CONNECT:
        if (c->state != C_SIO_CONNECT)
            conn_die(c, "unexpected CONNECT");
        if (e->relay && !c->guest)
            send_register(e, c);
        else
            became_ready(e, c);
        return;
    case KW_SIO_CONNECT_ERROR: {
        char msg[256];
        snprintf(msg, sizeof msg, "CONNECT refused: %.*s", (int)pk.data_len, pk.data);
        conn_die(c, msg);
        return;
    }
    case KW_SIO_ACK:
        if (c->state == C_REGISTER) {
            if (find_bytes(pk.data, pk.data_len, "\"ok\":true", 9) != NULL) {
                became_ready(e, c);
            } else if (find_bytes(pk.data, pk.data_len, "rate_limited", 12) != NULL) {
                send_register(e, c); /* others' notices filled a queue: try again */
            } else {
                char msg[256];
                snprintf(msg, sizeof msg, "register-participant: %.*s", (int)pk.data_len, pk.data);
                conn_die(c, msg);
            }
        }
        return;
    case KW_SIO_EVENT:
        return; /* notices during setup */
    case KW_SIO_DISCONNECT:
        conn_die(c, "the server disconnected the socket");
        return;
    }
}

/* One whole WebSocket text message: an Engine.IO packet. */
static void on_message(engine *e, wsconn *c, const char *text, size_t len)
{
    kw_eio_packet pk;
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kw_eio_decode(text, len, 0, KW_EIO_MAX_PAYLOAD, &pk, &err);
    if (rc != KW_OK)
        conn_die(c, err.detail);
    char frame[64];
    size_t flen;
    switch (pk.type) {
    case KW_EIO_OPEN:
        if (c->state != C_EIO_OPEN)
            conn_die(c, "unexpected open packet");
        send_sio_connect(c);
        return;
    case KW_EIO_PING:
        check_kw(kw_eio_encode(KW_EIO_PONG, pk.data, pk.data_len, frame, sizeof frame, &flen, &err),
                 &err, "encode pong");
        ws_send(c, 1, frame, flen);
        return;
    case KW_EIO_MESSAGE:
        on_sio(e, c, pk.data, pk.data_len);
        return;
    case KW_EIO_CLOSE:
        conn_die(c, "the server sent an Engine.IO close");
        return;
    case KW_EIO_PONG:
    case KW_EIO_UPGRADE:
    case KW_EIO_NOOP:
        return;
    }
}

/* Parses the whole frames in c->in. Returns 0, or dies on a protocol error. */
static void on_frames(engine *e, wsconn *c)
{
    size_t off = 0;
    while (c->in.len - off >= 2) {
        const unsigned char *h = (const unsigned char *)c->in.p + off;
        size_t avail = c->in.len - off;
        int fin = h[0] & 0x80, opcode = h[0] & 0x0f, masked = h[1] & 0x80;
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | h[2 + i];
            hl = 10;
        }
        if (plen > KW_EIO_MAX_PAYLOAD)
            conn_die(c, "frame over maxPayload");
        size_t ml = masked ? 4 : 0;
        if (avail < hl + ml + plen)
            break;
        char *payload = c->in.p + off + hl + ml;
        if (masked)
            for (uint64_t i = 0; i < plen; i++)
                payload[i] = (char)((unsigned char)payload[i] ^ h[hl + (i & 3)]);
        off += hl + ml + (size_t)plen;
        switch (opcode) {
        case 0x1:
            if (fin)
                on_message(e, c, payload, (size_t)plen);
            else
                buf_add(&c->msg, payload, (size_t)plen);
            break;
        case 0x0:
            buf_add(&c->msg, payload, (size_t)plen);
            if (fin) {
                on_message(e, c, c->msg.p, c->msg.len);
                buf_free(&c->msg);
            }
            break;
        case 0x8: {
            unsigned code =
                plen >= 2 ? ((unsigned)(unsigned char)payload[0] << 8) | (unsigned char)payload[1]
                          : 0;
            char msg[64];
            snprintf(msg, sizeof msg, "WebSocket close %u from the server", code);
            conn_die(c, msg);
            break;
        }
        case 0x9:
            ws_send(c, 0xA, payload, (size_t)plen);
            break;
        case 0xA:
            break;
        default:
            conn_die(c, "binary or unknown WebSocket frame");
        }
    }
    if (off > 0)
        buf_drop(&c->in, off);
    if (c->in.len == 0 && c->in.cap > 65536)
        buf_free(&c->in); /* do not keep a big buffer per idle connection */
}

static void conn_start(engine *e, wsconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket: %s (raise ulimit -n)", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)&target, sizeof target) != 0 &&
        errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->rng = 0x9e3779b9u ^ (c->idx * 2654435761u) ^ (uint32_t)mono_ns();
    if (c->rng == 0)
        c->rng = 1;
    c->state = C_CONNECTING;
    e->started++;
    e->pending++;
}

/* The server dropped c during its handshake: in idle mode start it again (a server busy
 * accepting thousands of connections may time a handshake out), else die. */
static void conn_dropped(engine *e, wsconn *c, const char *why)
{
    if (!e->retry_handshakes || c->state == C_READY)
        conn_die(c, why);
    close_reset(c->fd);
    buf_free(&c->in);
    buf_free(&c->msg);
    buf_free(&c->out);
    c->out_off = 0;
    e->pending--;
    e->started--;
    e->retries++;
    conn_start(e, c);
}

static void on_event(engine *e, wsconn *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int so = 0;
        socklen_t sl = sizeof so;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &sl);
        if (so != 0) {
            conn_dropped(e, c, strerror(so));
            return;
        }
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         host_header);
        c->state = C_UPGRADE;
        conn_send(c, req, (size_t)n);
    }
    if (events & EPOLLOUT)
        conn_flush(c);
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        buf_reserve(&c->in, READ_CHUNK);
        ssize_t got = recv(c->fd, c->in.p + c->in.len, READ_CHUNK, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (got <= 0) {
            conn_dropped(e, c, got < 0 ? strerror(errno) : "the server closed the connection");
            return;
        }
        c->in.len += (size_t)got;
        if (c->state == C_UPGRADE) {
            const char *end = find_bytes(c->in.p, c->in.len, "\r\n\r\n", 4);
            if (end == NULL)
                continue;
            if (c->in.len < 12 || memcmp(c->in.p + 8, " 101", 4) != 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "upgrade refused: %.120s", c->in.p);
                conn_die(c, msg);
            }
            buf_drop(&c->in, (size_t)(end + 4 - c->in.p));
            c->state = C_EIO_OPEN;
        }
        on_frames(e, c);
        if ((size_t)got < READ_CHUNK)
            break; /* a short read: drained (saves the EAGAIN round trip) */
    }
}

/* One round of the event loop: waits at most timeout_ms. */
static void poll_once(engine *e, int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(e->ep, evs, 512, timeout_ms);
    if (n < 0 && errno != EINTR)
        die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++)
        on_event(e, evs[i].data.ptr, evs[i].events);
}

/* Starts connections first..last-1 (at most pending_max in their handshake at once) and
 * runs the loop until all are ready; dies when nothing moves for 30 s. */
static void connect_all(engine *e, size_t first, size_t last)
{
    size_t next = first;
    size_t target_ready = e->ready + (last - first);
    uint64_t last_progress = mono_ns();
    size_t seen = e->ready;
    while (e->ready < target_ready) {
        while (next < last && e->pending < e->pending_max)
            conn_start(e, &e->conns[next++]);
        poll_once(e, 100);
        if (e->ready != seen) {
            seen = e->ready;
            last_progress = mono_ns();
        } else if (mono_ns() - last_progress > 30000000000ull) {
            fprintf(stderr, "realtime: stuck at %zu of %zu connections ready\n", e->ready,
                    target_ready);
            exit(1);
        }
    }
}

static void close_all(engine *e)
{
    for (size_t i = 0; i < e->n_conns; i++) {
        wsconn *c = &e->conns[i];
        if (c->state != C_IDLE)
            close_reset(c->fd);
        buf_free(&c->in);
        buf_free(&c->msg);
        buf_free(&c->out);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- relay ------------------------------------------------------------------------------------
 */

static int cmd_relay(int argc, char **argv)
{
    if (argc < 6)
        die("usage: relay ADDR DEVICES GUESTS MEETINGS [--pairs N] [--window W] [--rate R] "
            "[--warmup S] [--seconds S] [--msg-chars C] [--server-pid P]%s",
            NULL);
    parse_addr(argv[2]);
    size_t n_pairs = 1000, window = 1, rate = 0, warmup = 5, seconds = 20, msg_chars = 256;
    long pid = 0;
    for (int i = 6; i < argc; i += 2) {
        if (i + 1 >= argc)
            die("option %s needs a value", argv[i]);
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--pairs") == 0)
            n_pairs = arg_size(v, 100000, k);
        else if (strcmp(k, "--window") == 0)
            window = arg_size(v, WINDOW_MAX, k);
        else if (strcmp(k, "--rate") == 0)
            rate = arg_size(v, 10000000, k);
        else if (strcmp(k, "--warmup") == 0)
            warmup = arg_size(v, 3600, k);
        else if (strcmp(k, "--seconds") == 0)
            seconds = arg_size(v, 3600, k);
        else if (strcmp(k, "--msg-chars") == 0)
            msg_chars = arg_size(v, 60000, k);
        else if (strcmp(k, "--server-pid") == 0)
            pid = (long)arg_size(v, 4194304, k);
        else
            die("unknown option %s", k);
    }
    if (n_pairs == 0 || window == 0 || seconds == 0)
        die("--pairs, --window and --seconds must be at least 1%s", NULL);
    msg_chars = (msg_chars + 3) / 4 * 4;
    if (msg_chars < PAIR_DIGITS + SEQ_DIGITS + 4)
        msg_chars = PAIR_DIGITS + SEQ_DIGITS + 4;

    size_t n_dev, n_guest;
    char **dev_lines = read_lines(argv[3], &n_dev);
    char **guest_lines = read_lines(argv[4], &n_guest);
    if (n_dev < n_pairs || n_guest < n_pairs)
        die("not enough devices or guests for --pairs%s", NULL);
    char **dw = split_lines(dev_lines, n_dev, 4, 4, argv[3]);
    char **gw = split_lines(guest_lines, n_guest, 2, 2, argv[4]);

    engine e;
    memset(&e, 0, sizeof e);
    e.relay = 1;
    /* MEETINGS: one meeting id, or a file of them (pairs split into equal blocks). */
    size_t n_meetings = 1;
    char **meetings = NULL;
    FILE *mf = fopen(argv[5], "r");
    if (mf != NULL) {
        fclose(mf);
        meetings = read_lines(argv[5], &n_meetings);
        if (n_meetings == 0)
            die("no meeting ids in %s", argv[5]);
    } else {
        meetings = xmalloc(sizeof *meetings);
        meetings[0] = xstrdup(argv[5]);
    }
    if (n_meetings > n_pairs)
        die("more meetings than pairs%s", NULL);
    e.window = window;
    e.rate = rate;
    e.n_pairs = n_pairs;
    e.n_conns = 2 * n_pairs;
    e.pending_max = 64; /* members' registrations notify every present member */
    e.ep = epoll_create1(EPOLL_CLOEXEC);
    if (e.ep < 0)
        die("epoll: %s", strerror(errno));
    e.conns = calloc(e.n_conns, sizeof *e.conns);
    e.pairs = calloc(n_pairs, sizeof *e.pairs);
    if (e.conns == NULL || e.pairs == NULL)
        die("out of memory%s", NULL);
    for (size_t i = 0; i < n_pairs; i++) {
        wsconn *m = &e.conns[2 * i], *g = &e.conns[2 * i + 1];
        m->fd = g->fd = -1;
        m->idx = g->idx = (uint32_t)i;
        g->guest = 1;
        m->id1 = dw[i * 4 + 2]; /* client_id */
        m->id2 = dw[i * 4 + 3]; /* session secret */
        g->id1 = gw[i * 2];
        g->id2 = gw[i * 2 + 1];
        pair *p = &e.pairs[i];
        p->user_id = dw[i * 4];
        p->device_id = dw[i * 4 + 1];
        p->meeting = meetings[i * n_meetings / n_pairs];
        char *fill = xmalloc(msg_chars + 1);
        memset(fill, 'A', msg_chars);
        fill[msg_chars] = '\0';
        put_digits(fill, i, PAIR_DIGITS);
        size_t cap = msg_chars + 512;
        p->args = xmalloc(cap);
        int n = snprintf(p->args, cap,
                         "{\"recipient_user_id\":\"%s\",\"recipient_device_id\":\"%s\","
                         "\"encrypted_message\":\"%s\",\"message_type\":1}",
                         p->user_id, p->device_id, fill);
        if (n <= 0 || (size_t)n >= cap)
            die("args too long%s", NULL);
        p->args_len = (size_t)n;
        p->digits_at = (size_t)(strstr(p->args, MSG_MARK) - p->args) + sizeof MSG_MARK - 1;
        free(fill);
    }

    /* Members first (connect, then register in the meeting), then the guests: a guest that
     * connects while members are present is told meeting:host_present once, while guests
     * connected before would be told once per member registering. */
    uint64_t t_setup = mono_ns();
    {
        /* Members are the even slots, guests the odd ones. */
        size_t next = 0;
        uint64_t last_progress = mono_ns();
        size_t seen = 0;
        while (e.ready < n_pairs) {
            while (next < n_pairs && e.pending < e.pending_max)
                conn_start(&e, &e.conns[2 * next++]);
            poll_once(&e, 100);
            if (e.ready != seen) {
                seen = e.ready;
                last_progress = mono_ns();
            } else if (mono_ns() - last_progress > 30000000000ull) {
                fprintf(stderr, "realtime: stuck at %zu of %zu members ready\n", e.ready, n_pairs);
                exit(1);
            }
        }
        e.pending_max = PENDING_MAX;
        next = 0;
        while (e.ready < 2 * n_pairs) {
            while (next < n_pairs && e.pending < e.pending_max)
                conn_start(&e, &e.conns[2 * next++ + 1]);
            poll_once(&e, 100);
            if (e.ready != seen) {
                seen = e.ready;
                last_progress = mono_ns();
            } else if (mono_ns() - last_progress > 30000000000ull) {
                fprintf(stderr, "realtime: stuck at %zu of %zu guests ready\n", e.ready - n_pairs,
                        n_pairs);
                exit(1);
            }
        }
    }
    /* Let the setup notices drain before the clock starts. */
    for (uint64_t until = mono_ns() + 1000000000ull; mono_ns() < until;)
        poll_once(&e, 50);
    double setup_s = (double)(mono_ns() - t_setup) / 1e9;

    e.sending = 1;
    uint64_t start = mono_ns();
    uint64_t t0 = start + (uint64_t)warmup * 1000000000ull;
    uint64_t t1 = t0 + (uint64_t)seconds * 1000000000ull;
    uint64_t delivered0 = 0, delivered_total = 0, sent0 = 0;
    int64_t cpu0 = -1, cpu1 = -1;
    uint64_t rate_sent = 0;
    size_t rr = 0;
    if (rate == 0)
        for (size_t w = 0; w < window; w++)
            for (size_t i = 0; i < n_pairs; i++)
                pair_send(&e, i);
    uint64_t timed_ns = 0;
    for (;;) {
        poll_once(&e, rate ? 1 : 50);
        uint64_t now = mono_ns();
        if (rate) {
            uint64_t due = (uint64_t)((double)(now - start) * (double)rate / 1e9);
            while (rate_sent < due) {
                rate_sent++;
                pair *p = &e.pairs[rr];
                if (p->sent - p->delivered - p->failed >= RATE_MAX_INFLIGHT)
                    e.skipped++;
                else
                    pair_send(&e, rr);
                rr = (rr + 1) % n_pairs;
            }
        }
        if (!e.timing && cpu0 < 0 && now >= t0) {
            e.timing = 1;
            cpu0 = pid ? proc_cpu_us(pid) : -1;
            t0 = now;
            for (size_t i = 0; i < n_pairs; i++) {
                delivered0 += e.pairs[i].delivered;
                sent0 += e.pairs[i].sent;
            }
            e.skipped = 0;
        }
        if (e.timing && now >= t1) {
            cpu1 = pid ? proc_cpu_us(pid) : -1;
            timed_ns = now - t0;
            e.timing = 0;
            e.sending = 0;
            for (size_t i = 0; i < n_pairs; i++)
                delivered_total += e.pairs[i].delivered;
            break;
        }
    }
    uint64_t sent1 = 0;
    for (size_t i = 0; i < n_pairs; i++)
        sent1 += e.pairs[i].sent;
    /* Drain what is in flight (not counted), so that the server is idle when we close. */
    for (uint64_t until = mono_ns() + 3000000000ull; e.inflight > 0 && mono_ns() < until;)
        poll_once(&e, 50);

    uint64_t delivered = delivered_total - delivered0;
    double secs = (double)timed_ns / 1e9;
    qsort(e.lat, e.n_lat, sizeof *e.lat, cmp_u32);
    size_t i50 = e.n_lat ? (e.n_lat - 1) * 50 / 100 : 0,
           i99 = e.n_lat ? (e.n_lat - 1) * 99 / 100 : 0;
    double p50 = e.n_lat ? e.lat[i50] / 1000.0 : 0;
    double p99 = e.n_lat ? e.lat[i99] / 1000.0 : 0;
    printf("pairs %zu\n", n_pairs);
    printf("meetings %zu\n", n_meetings);
    printf("mode %s\n", rate ? "rate" : "closed");
    printf("window %zu\n", rate ? (size_t)0 : window);
    printf("offered_rate %zu\n", rate);
    printf("msg_chars %zu\n", msg_chars);
    printf("setup_seconds %.1f\n", setup_s);
    printf("seconds %.3f\n", secs);
    printf("sent %llu\n", (unsigned long long)(sent1 - sent0));
    printf("delivered %llu\n", (unsigned long long)delivered);
    printf("msgs_per_s %.0f\n", secs > 0 ? (double)delivered / secs : 0.0);
    printf("p50_ms %.3f\n", p50);
    printf("p99_ms %.3f\n", p99);
    printf("ack_ok %llu\n", (unsigned long long)e.ack_ok);
    printf("ack_errors %llu\n", (unsigned long long)e.ack_err);
    if (e.ack_err)
        printf("last_error %s\n", e.last_error);
    printf("skipped %llu\n", (unsigned long long)e.skipped);
    printf("misrouted %llu\n", (unsigned long long)e.misrouted);
    printf("out_of_order %llu\n", (unsigned long long)e.out_of_order);
    printf("unexpected %llu\n", (unsigned long long)e.unexpected);
    printf("still_in_flight %llu\n", (unsigned long long)e.inflight);
    if (pid && cpu0 >= 0 && cpu1 >= 0) {
        double cpu_us = (double)(cpu1 - cpu0);
        printf("server_cpu_ms %.0f\n", cpu_us / 1000);
        printf("server_cpu_share %.2f\n", secs > 0 ? cpu_us / 1e6 / secs : 0.0);
        printf("server_cpu_us_per_msg %.2f\n", delivered ? cpu_us / (double)delivered : 0.0);
        printf("msgs_per_server_cpu_s %.0f\n",
               cpu_us > 0 ? (double)delivered / (cpu_us / 1e6) : 0.0);
    }
    close_all(&e);
    for (size_t i = 0; i < n_pairs; i++)
        free(e.pairs[i].args);
    free(e.pairs);
    free(e.conns);
    free(e.lat);
    free(dw);
    free(gw);
    for (size_t i = 0; i < n_meetings; i++)
        free(meetings[i]);
    free(meetings);
    for (size_t i = 0; i < n_dev; i++)
        free(dev_lines[i]);
    for (size_t i = 0; i < n_guest; i++)
        free(guest_lines[i]);
    free(dev_lines);
    free(guest_lines);
    close(e.ep);
    return 0;
}

/* ---- idle ------------------------------------------------------------------------------------ */

static int cmd_idle(int argc, char **argv)
{
    if (argc < 5)
        die("usage: idle ADDR GUESTS COUNT --server-pid P [--settle S] [--cpu-window S] "
            "[--hold S]%s",
            NULL);
    parse_addr(argv[2]);
    size_t count = arg_size(argv[4], 1000000, "COUNT");
    size_t settle = 5, hold = 0, cpu_window = 30;
    long pid = 0;
    for (int i = 5; i < argc; i += 2) {
        if (i + 1 >= argc)
            die("option %s needs a value", argv[i]);
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--server-pid") == 0)
            pid = (long)arg_size(v, 4194304, k);
        else if (strcmp(k, "--settle") == 0)
            settle = arg_size(v, 3600, k);
        else if (strcmp(k, "--hold") == 0)
            hold = arg_size(v, 86400, k);
        else if (strcmp(k, "--cpu-window") == 0)
            cpu_window = arg_size(v, 3600, k);
        else
            die("unknown option %s", k);
    }
    if (pid == 0 || count == 0)
        die("idle needs COUNT >= 1 and --server-pid%s", NULL);
    size_t n_guest;
    char **guest_lines = read_lines(argv[3], &n_guest);
    if (n_guest == 0)
        die("no guests in %s", argv[3]);
    char **gw = split_lines(guest_lines, n_guest, 2, 2, argv[3]);

    engine e;
    memset(&e, 0, sizeof e);
    e.n_conns = count;
    e.pending_max = PENDING_MAX / 2;
    e.retry_handshakes = 1;
    e.ep = epoll_create1(EPOLL_CLOEXEC);
    e.conns = calloc(count, sizeof *e.conns);
    if (e.ep < 0 || e.conns == NULL)
        die("setup failed%s", NULL);
    for (size_t i = 0; i < count; i++) {
        wsconn *c = &e.conns[i];
        c->fd = -1;
        c->idx = (uint32_t)i;
        c->guest = 1;
        c->id1 = gw[(i % n_guest) * 2];
        c->id2 = gw[(i % n_guest) * 2 + 1];
    }
    int64_t rss0 = proc_rss_kib(pid);
    uint64_t t0 = mono_ns();
    connect_all(&e, 0, count);
    double setup_s = (double)(mono_ns() - t0) / 1e9;
    for (uint64_t until = mono_ns() + (uint64_t)settle * 1000000000ull; mono_ns() < until;)
        poll_once(&e, 200);
    int64_t rss1 = proc_rss_kib(pid);
    /* The server's CPU while the connections only answer pings, over a whole ping
     * interval (25 s) so that every connection is pinged once in it. */
    int64_t cpu0 = proc_cpu_us(pid);
    uint64_t s0 = mono_ns();
    for (uint64_t until = s0 + (uint64_t)cpu_window * 1000000000ull; mono_ns() < until;)
        poll_once(&e, 200);
    int64_t cpu1 = proc_cpu_us(pid);
    double window_s = (double)(mono_ns() - s0) / 1e9;
    printf("connections %zu\n", count);
    printf("guest_sessions %zu\n", n_guest < count ? n_guest : count);
    printf("setup_seconds %.1f\n", setup_s);
    printf("handshake_retries %llu\n", (unsigned long long)e.retries);
    printf("rss_before_kib %lld\n", (long long)rss0);
    printf("rss_after_kib %lld\n", (long long)rss1);
    printf("kib_per_conn %.2f\n", (double)(rss1 - rss0) / (double)count);
    printf("idle_cpu_seconds %.1f\n", window_s);
    printf("idle_cpu_share %.3f\n", window_s > 0 ? (double)(cpu1 - cpu0) / 1e6 / window_s : 0.0);
    fflush(stdout);
    for (uint64_t until = mono_ns() + (uint64_t)hold * 1000000000ull; mono_ns() < until;)
        poll_once(&e, 200);
    close_all(&e);
    free(e.conns);
    free(gw);
    for (size_t i = 0; i < n_guest; i++)
        free(guest_lines[i]);
    free(guest_lines);
    close(e.ep);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: realtime register|relay|idle ... (see the comment at the top of "
                        "bench/realtime.c)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "register") == 0)
        return cmd_register(argc, argv);
    if (strcmp(argv[1], "relay") == 0)
        return cmd_relay(argc, argv);
    if (strcmp(argv[1], "idle") == 0)
        return cmd_idle(argc, argv);
    fprintf(stderr, "realtime: unknown subcommand %s\n", argv[1]);
    return 2;
}
