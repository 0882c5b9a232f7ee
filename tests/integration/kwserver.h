/*
 * kwserver.h — header-only helpers for the integration tests that start the real
 * keywaved (KEYWAVED names the binary; default ./build/keywaved) on a free port with a
 * temporary data directory and talk HTTP/1.1 to it over plain sockets.
 *
 *   kws_init(name)            finds the binary, makes /tmp/keywave-<name>-XXXXXX, sets an
 *                             alarm that kills every child if the run hangs
 *   kws_start(&s, dir, env)   starts a server in <root>/<dir> (data in <dir>/data, stderr
 *                             in <dir>/stderr.log) with only the given "NAME=value" env
 *   kws_stop(&s, sig)         sends sig, waits, returns the exit status (-1: killed)
 *   kws_admin(&s, args, ...)  runs `keywaved <args>` (user add, user code) against s's data
 *   kws_request(...)          one request on a fresh connection (Connection: close)
 *   kws_send_all / kws_read_reply / kws_exchange   raw bytes and replies on one socket,
 *                             with a kws_buf carrying bytes read past one reply
 *   kws_header(&r, name, ...) a reply header, case-insensitive
 *   kws_finish()              kills and reaps every child, removes the tree, prints the
 *                             RESULT line (kwt_finish) and returns the exit status
 *
 * Every child is tracked so the alarm and kws_finish can kill it. Single-threaded test
 * code only. (Restored from test_http.c's usage and the built binary after an accidental
 * overwrite; see the lead's notes.)
 */
#ifndef KEYWAVE_TESTS_KWSERVER_H
#define KEYWAVE_TESTS_KWSERVER_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kwtest.h"

#define KWS_START_TIMEOUT_MS 5000 /* a started server must accept within this */
#define KWS_STOP_TIMEOUT_MS  8000 /* a stop signal must end it within this (drain is 5 s) */
#define KWS_ALARM_SECONDS    180  /* the whole run, as a last resort against a hang */
#define KWS_MAX_CHILDREN     8

/* Every variable of DESIGN §10: children start with none of them but those given. */
static const char *const kws_config_names[13] = {
    "KEYWAVE_LISTEN",
    "KEYWAVE_PUBLIC_URL",
    "KEYWAVE_DATA_DIR",
    "KEYWAVE_TLS_CERT",
    "KEYWAVE_TLS_KEY",
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "JITSI_SERVER_URL",
    "JITSI_APP_ID",
    "JITSI_APP_SECRET",
    "JITSI_JWT_EXPIRATION",
    "KEYWAVE_GUEST_EVENTS_PER_MINUTE",
};

static char kws_binary[PATH_MAX]; /* absolute path of the binary under test */
static char kws_root[PATH_MAX];   /* temporary tree of this run */
static volatile pid_t kws_children[KWS_MAX_CHILDREN];

static inline void kws_track(pid_t pid)
{
    for (int i = 0; i < KWS_MAX_CHILDREN; i++)
        if (kws_children[i] == 0) {
            kws_children[i] = pid;
            return;
        }
}

static inline void kws_untrack(pid_t pid)
{
    for (int i = 0; i < KWS_MAX_CHILDREN; i++)
        if (kws_children[i] == pid)
            kws_children[i] = 0;
}

static inline void kws_on_alarm(int sig)
{
    (void)sig;
    for (int i = 0; i < KWS_MAX_CHILDREN; i++)
        if (kws_children[i] > 0)
            kill(kws_children[i], SIGKILL);
    static const char msg[] = "integration test timed out; children killed\n";
    ssize_t w = write(STDOUT_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static inline void kws_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline int64_t kws_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- files ---------------------------------------------------------------------- */

static inline bool kws_path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* Removes a tree (files and directories, symlinks not followed). */
static inline void kws_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[PATH_MAX];
                if (kws_path_join(sub, sizeof sub, path, e->d_name))
                    kws_remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* The whole file, NUL-terminated, malloc'd (caller frees); NULL if unreadable. */
static inline char *kws_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf;
}

/* Waits until the file contains needle (the server logs just after it replies). */
static inline bool kws_wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        char *text = kws_read_file(path);
        bool found = text != NULL && strstr(text, needle) != NULL;
        free(text);
        if (found)
            return true;
        if (waited >= timeout_ms)
            return false;
        kws_sleep_ms(10);
    }
}

/* ---- sockets -------------------------------------------------------------------- */

static inline uint16_t kws_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* A connection to 127.0.0.1:port with 5 s send and receive timeouts, or -1. */
static inline int kws_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline bool kws_send_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* True when the peer closes (EOF or reset) within timeout_ms; bytes before are dropped. */
static inline bool kws_peer_closed(int fd, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k == 0)
            return true;
        if (k < 0)
            return errno == ECONNRESET || errno == EPIPE;
    }
}

/* ---- HTTP replies ----------------------------------------------------------------- */

typedef struct kws_reply {
    int status;
    char *head; /* status line and headers, NUL-terminated; owned */
    char *body; /* NUL-terminated; owned; NULL when there is none */
    size_t body_len;
    long long content_length; /* -1 when absent */
} kws_reply;

static inline void kws_reply_free(kws_reply *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Copies the value of header name (case-insensitive, trimmed) into out; false if absent. */
static inline bool kws_header(const kws_reply *r, const char *name, char *out, size_t cap)
{
    if (r->head == NULL || cap == 0)
        return false;
    size_t n = strlen(name);
    const char *line = strchr(r->head, '\n');
    while (line != NULL) {
        line++;
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            size_t vlen = len - n - 1;
            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
        line = eol;
    }
    return false;
}

/* Bytes received on one connection and not yet consumed: p[off..n). */
typedef struct kws_buf {
    char *p;
    size_t n, cap, off;
} kws_buf;

static inline void kws_buf_free(kws_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Reads more into b; 1 got bytes, 0 EOF, -1 error or timeout. */
static inline int kws_buf_fill(int fd, kws_buf *b)
{
    if (b->cap - b->n < 65536) {
        size_t cap = b->cap + 0x20000;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    for (;;) {
        ssize_t k = recv(fd, b->p + b->n, b->cap - b->n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return 0;
        b->n += (size_t)k;
        return 1;
    }
}

/*
 * Reads one reply from fd (using and keeping what b holds): headers, then Content-Length
 * bytes of body (none after HEAD), or up to EOF when there is no Content-Length. r is
 * reset first, so it can be freed whatever happens.
 */
static inline bool kws_read_reply(int fd, kws_buf *b, bool head_only, kws_reply *r)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    size_t hdr_end = 0; /* offset just past CRLFCRLF */
    for (;;) {
        for (size_t i = b->off; i + 4 <= b->n; i++)
            if (memcmp(b->p + i, "\r\n\r\n", 4) == 0) {
                hdr_end = i + 4;
                break;
            }
        if (hdr_end != 0)
            break;
        if (kws_buf_fill(fd, b) <= 0)
            return false;
    }
    size_t hlen = hdr_end - b->off;
    r->head = malloc(hlen + 1);
    if (r->head == NULL)
        return false;
    memcpy(r->head, b->p + b->off, hlen);
    r->head[hlen] = '\0';
    if (hlen < 12 || strncmp(r->head, "HTTP/1.", 7) != 0)
        return false;
    r->status = (int)strtol(r->head + 9, NULL, 10);
    char cl[32];
    if (kws_header(r, "content-length", cl, sizeof cl))
        r->content_length = strtoll(cl, NULL, 10);
    b->off = hdr_end;
    size_t want = 0;
    bool to_eof = false;
    if (!head_only && r->status != 204 && r->status != 304) {
        if (r->content_length >= 0)
            want = (size_t)r->content_length;
        else
            to_eof = true;
    }
    for (;;) {
        if (!to_eof && b->n - b->off >= want)
            break;
        int got = kws_buf_fill(fd, b);
        if (got < 0 || (got == 0 && !to_eof))
            return false;
        if (got == 0)
            break;
    }
    if (to_eof)
        want = b->n - b->off;
    r->body = malloc(want + 1);
    if (r->body == NULL)
        return false;
    memcpy(r->body, b->p + b->off, want);
    r->body[want] = '\0';
    r->body_len = want;
    b->off += want;
    if (b->off == b->n) /* all consumed: start over at the front */
        b->off = b->n = 0;
    return true;
}

/* Sends len bytes of req on fd and reads one reply. */
static inline bool kws_exchange(int fd, const void *req, size_t len, bool head_only, kws_reply *r)
{
    memset(r, 0, sizeof *r);
    kws_buf b = {0};
    bool ok = kws_send_all(fd, req, len) && kws_read_reply(fd, &b, head_only, r);
    kws_buf_free(&b);
    return ok;
}

/*
 * One request on a fresh connection that the server is asked to close afterwards.
 * headers: extra header lines, each ending in "\r\n", or NULL. body: body_len bytes
 * (with a Content-Length) or NULL. HEAD reads no body.
 */
static inline bool kws_request(uint16_t port, const char *method, const char *target,
                               const char *headers, const void *body, size_t body_len, kws_reply *r)
{
    memset(r, 0, sizeof *r);
    char head[16384];
    int n = body != NULL ? snprintf(head, sizeof head,
                                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                    "%sContent-Length: %zu\r\n\r\n",
                                    method, target, headers ? headers : "", body_len)
                         : snprintf(head, sizeof head,
                                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                    "%s\r\n",
                                    method, target, headers ? headers : "");
    if (n <= 0 || (size_t)n >= sizeof head)
        return false;
    int fd = kws_connect(port);
    if (fd < 0)
        return false;
    kws_buf b = {0};
    bool ok = kws_send_all(fd, head, (size_t)n) &&
              (body == NULL || body_len == 0 || kws_send_all(fd, body, body_len)) &&
              kws_read_reply(fd, &b, strcmp(method, "HEAD") == 0, r);
    kws_buf_free(&b);
    close(fd);
    return ok;
}

/* ---- processes -------------------------------------------------------------------- */

/* A started server and the paths it uses. */
typedef struct kws_server {
    pid_t pid; /* 0 when not running */
    uint16_t port;
    char dir[PATH_MAX];      /* its working directory */
    char data_dir[PATH_MAX]; /* KEYWAVE_DATA_DIR */
    char log[PATH_MAX];      /* its stderr */
    char out[PATH_MAX];      /* its stdout */
} kws_server;

static inline void kws_redirect(const char *path, int fd)
{
    int f = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (f < 0 || dup2(f, fd) < 0)
        _exit(125);
    close(f);
}

/* Waits up to timeout_ms for pid to end; true with *status set if it did. */
static inline bool kws_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            kws_untrack(pid);
            return true;
        }
        if ((r < 0 && errno != EINTR) || waited >= timeout_ms)
            return false;
        kws_sleep_ms(10);
    }
}

static inline void kws_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    kws_untrack(pid);
}

/*
 * Starts keywaved in <root>/<name> on a free port with its data in <name>/data and only
 * the variables in env ("NAME=value", NULL-terminated; may be NULL) besides
 * KEYWAVE_LISTEN and KEYWAVE_DATA_DIR, and waits until it accepts connections.
 */
static inline bool kws_start(kws_server *s, const char *name, const char *const *env)
{
    memset(s, 0, sizeof *s);
    s->port = kws_free_port();
    if (s->port == 0 || !kws_path_join(s->dir, sizeof s->dir, kws_root, name) ||
        mkdir(s->dir, 0700) != 0 ||
        !kws_path_join(s->data_dir, sizeof s->data_dir, s->dir, "data") ||
        !kws_path_join(s->log, sizeof s->log, s->dir, "stderr.log") ||
        !kws_path_join(s->out, sizeof s->out, s->dir, "stdout.log"))
        return false;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        if (chdir(s->dir) != 0)
            _exit(126);
        for (size_t i = 0; i < sizeof kws_config_names / sizeof kws_config_names[0]; i++)
            unsetenv(kws_config_names[i]);
        char listen[64];
        snprintf(listen, sizeof listen, "127.0.0.1:%u", s->port);
        setenv("KEYWAVE_LISTEN", listen, 1);
        setenv("KEYWAVE_DATA_DIR", s->data_dir, 1);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
            char pair[PATH_MAX + 64];
            snprintf(pair, sizeof pair, "%s", env[i]);
            char *eq = strchr(pair, '=');
            if (eq == NULL)
                _exit(124);
            *eq = '\0';
            setenv(pair, eq + 1, 1);
        }
        kws_redirect(s->out, STDOUT_FILENO);
        kws_redirect(s->log, STDERR_FILENO);
        char *argv[] = {kws_binary, NULL};
        execv(kws_binary, argv);
        _exit(127);
    }
    kws_track(pid);
    s->pid = pid;
    for (int waited = 0; waited < KWS_START_TIMEOUT_MS; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            kws_untrack(pid);
            s->pid = 0;
            char *log = kws_read_file(s->log);
            printf("    keywaved exited during start-up (status %d): %s\n", status, log ? log : "");
            free(log);
            return false;
        }
        int fd = kws_connect(s->port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        kws_sleep_ms(20);
    }
    kws_kill(pid);
    s->pid = 0;
    return false;
}

/*
 * Sends sig to the server and waits up to KWS_STOP_TIMEOUT_MS; kills it if it does not
 * end. Returns its exit status, or -1 (killed by a signal, or not running).
 */
/*
 * Runs `keywaved <args>` (at most 6, NULL-terminated) as an administrator would while s
 * runs: same data directory and working directory, no other configuration; its stdout
 * goes into out (cap bytes, NUL-terminated), its stderr into s's log. Returns the exit
 * status, or -1 (could not run, killed after 10 s).
 */
static inline int kws_admin(const kws_server *s, const char *const *args, char *out, size_t cap)
{
    char out_path[PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s/cli.out", s->dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        for (size_t i = 0; i < sizeof kws_config_names / sizeof kws_config_names[0]; i++)
            unsetenv(kws_config_names[i]);
        setenv("KEYWAVE_DATA_DIR", s->data_dir, 1);
        if (chdir(s->dir) != 0)
            _exit(126);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || dup2(o, STDOUT_FILENO) < 0)
            _exit(125);
        kws_redirect(s->log, STDERR_FILENO);
        char *argv[8] = {kws_binary};
        for (size_t i = 0; args[i] != NULL && i + 2 < 8; i++)
            argv[i + 1] = (char *)args[i];
        execv(kws_binary, argv);
        _exit(127);
    }
    kws_track(pid);
    int status = -1;
    if (!kws_wait_exit(pid, 10000, &status)) {
        kws_kill(pid);
        return -1;
    }
    char *text = kws_read_file(out_path);
    snprintf(out, cap, "%s", text ? text : "");
    free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline int kws_stop(kws_server *s, int sig)
{
    if (s->pid <= 0)
        return -1;
    int status = 0;
    kill(s->pid, sig);
    if (!kws_wait_exit(s->pid, KWS_STOP_TIMEOUT_MS, &status)) {
        kws_kill(s->pid);
        s->pid = 0;
        return -1;
    }
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Finds keywaved, makes the temporary tree /tmp/keywave-<name>-XXXXXX, sets the alarm. */
static inline bool kws_init(const char *name)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, kws_on_alarm);
    alarm(KWS_ALARM_SECONDS);
    const char *bin = getenv("KEYWAVED");
    if (bin == NULL || bin[0] == '\0')
        bin = "./build/keywaved";
    if (realpath(bin, kws_binary) == NULL || access(kws_binary, X_OK) != 0) {
        printf("FAIL keywaved binary not found or not executable: %s\n", bin);
        return false;
    }
    snprintf(kws_root, sizeof kws_root, "/tmp/keywave-%s-XXXXXX", name);
    if (mkdtemp(kws_root) == NULL) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        kws_root[0] = '\0';
        return false;
    }
    return true;
}

/* Kills and reaps every child, removes the tree, prints the RESULT line. */
static inline int kws_finish(void)
{
    for (int i = 0; i < KWS_MAX_CHILDREN; i++)
        kws_kill(kws_children[i]);
    if (kws_root[0] != '\0')
        kws_remove_tree(kws_root);
    return kwt_finish();
}

#endif
