/*
 * test_healthz.c — starts the real keywaved on a free port with a temporary data
 * directory and drives it over raw HTTP/1.1 sockets: GET /healthz, JSON 404 and 405
 * errors, keep-alive after a request body, the access log (and that query strings stay
 * out of it), the data directory, --help and usage errors, refused configurations
 * (bad KEYWAVE_LISTEN, port in use, unusable data dir, bad keywave.conf), keywave.conf
 * with the environment winning, and a clean exit 0 on SIGTERM and SIGINT.
 *
 * KEYWAVED names the binary (tests/run.sh sets it); without it, ./build/keywaved.
 * Every child is killed and reaped and the temporary tree removed on every path; an
 * alarm kills the children if the whole run hangs.
 */
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

#include <jansson.h>

#include "keywave/err.h"
#include "kwtest.h"

#define START_TIMEOUT_MS 5000 /* a started server must accept within this */
#define EXIT_TIMEOUT_MS  5000 /* a refused start or a stop signal must end within this */
#define ALARM_SECONDS    120  /* the whole run, as a last resort against a hang */
#define MAX_CHILDREN     4

/* Every variable of DESIGN §10: --help must list each, and children start without any. */
static const char *const config_names[] = {
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

static char keywaved[PATH_MAX]; /* absolute path of the binary under test */
static char root[PATH_MAX];     /* temporary tree of this run */

/* Children still running, so the alarm handler and the final cleanup can kill them. */
static volatile pid_t live_children[MAX_CHILDREN];

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_children[i] == 0) {
            live_children[i] = pid;
            return;
        }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_children[i] == pid)
            live_children[i] = 0;
}

static void on_alarm(int sig)
{
    (void)sig;
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_children[i] > 0)
            kill(live_children[i], SIGKILL);
    static const char msg[] = "test_healthz: timed out; children killed\n";
    ssize_t w = write(STDOUT_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- files ---------------------------------------------------------------------- */

static bool path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* Removes a tree (files and directories, symlinks not followed). */
static void remove_tree(const char *path)
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
                if (path_join(sub, sizeof sub, path, e->d_name))
                    remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Creates root/name and returns its path in out. */
static bool make_subdir(char *out, size_t cap, const char *name)
{
    return path_join(out, cap, root, name) && mkdir(out, 0700) == 0;
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Reads up to cap - 1 bytes of a file into buf, NUL-terminated; "" if unreadable. */
static const char *read_text(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return buf;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Counts the lines of a log file that contain needle. */
static int count_lines_with(const char *log, const char *needle)
{
    int count = 0;
    for (const char *line = log; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char copy[2048];
        if (len >= sizeof copy)
            len = sizeof copy - 1;
        memcpy(copy, line, len);
        copy[len] = '\0';
        if (strstr(copy, needle) != NULL)
            count++;
        line = nl ? nl + 1 : line + strlen(line);
    }
    return count;
}

/* Waits until the file contains needle (the server logs just after it replies). */
static bool wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    static char buf[65536];
    for (int waited = 0;; waited += 10) {
        if (strstr(read_text(path, buf, sizeof buf), needle) != NULL)
            return true;
        if (waited >= timeout_ms)
            return false;
        sleep_ms(10);
    }
}

/* ---- processes ------------------------------------------------------------------ */

typedef struct run_opts {
    const char *const *args; /* arguments after argv[0], NULL-terminated; or NULL */
    const char *const *env;  /* "NAME=value" to set, NULL-terminated; or NULL */
    const char *cwd;         /* the child's working directory */
    const char *out_path;    /* file for its stdout */
    const char *err_path;    /* file for its stderr */
} run_opts;

static void redirect(const char *path, int fd)
{
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (f < 0 || dup2(f, fd) < 0)
        _exit(125);
    close(f);
}

/* Starts keywaved with none of the configuration variables but those in o->env. */
static pid_t spawn_keywaved(const run_opts *o)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) {
        if (pid > 0)
            track(pid);
        return pid;
    }
    if (chdir(o->cwd) != 0)
        _exit(126);
    for (size_t i = 0; i < sizeof config_names / sizeof config_names[0]; i++)
        unsetenv(config_names[i]);
    for (size_t i = 0; o->env != NULL && o->env[i] != NULL; i++) {
        char pair[PATH_MAX + 64];
        snprintf(pair, sizeof pair, "%s", o->env[i]);
        char *eq = strchr(pair, '=');
        if (eq == NULL)
            _exit(124);
        *eq = '\0';
        setenv(pair, eq + 1, 1);
    }
    redirect(o->out_path, STDOUT_FILENO);
    redirect(o->err_path, STDERR_FILENO);
    char *argv[16] = {keywaved};
    for (size_t i = 0; o->args != NULL && o->args[i] != NULL && i + 2 < 16; i++)
        argv[i + 1] = (char *)o->args[i];
    execv(keywaved, argv);
    _exit(127);
}

/* Waits up to timeout_ms for pid to end; true with *status set if it did. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status)
{
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            untrack(pid);
            return true;
        }
        if ((r < 0 && errno != EINTR) || waited >= timeout_ms)
            return false;
        sleep_ms(10);
    }
}

static void kill_child(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    untrack(pid);
}

/* Runs keywaved to its end; returns its exit status, or -1 (killed) if it did not end. */
static int run_to_exit(const run_opts *o)
{
    pid_t pid = spawn_keywaved(o);
    if (pid < 0)
        return -1;
    int status;
    if (!wait_exit(pid, EXIT_TIMEOUT_MS, &status)) {
        kill_child(pid);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- sockets and HTTP ----------------------------------------------------------- */

/* A port that was free a moment ago (bound to 127.0.0.1:0, read back, closed). */
static uint16_t free_port(void)
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

static int connect_port(uint16_t port)
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

/* Waits until pid accepts connections on port; false if it exits or times out. */
static bool wait_listening(pid_t pid, uint16_t port)
{
    for (int waited = 0; waited < START_TIMEOUT_MS; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            untrack(pid);
            printf("    keywaved exited during start-up (status %d)\n", status);
            return false;
        }
        int fd = connect_port(port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        sleep_ms(20);
    }
    return false;
}

typedef struct http_reply {
    int status;
    char content_type[128];
    char allow[64];
    long long content_length; /* -1 when absent */
    char body[4096];
    size_t body_len;
} http_reply;

static bool send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, 0);
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool parse_digits(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 12)
        return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static void copy_trimmed(char *out, size_t cap, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Parses the status line and the headers this test looks at; hdr_len excludes CRLFCRLF. */
static bool parse_head(const char *buf, size_t hdr_len, http_reply *r)
{
    if (hdr_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return false;
    long long status;
    if (!parse_digits(buf + 9, 3, &status))
        return false;
    r->status = (int)status;
    const char *line = memchr(buf, '\n', hdr_len);
    const char *end = buf + hdr_len;
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end - line));
        size_t len = eol ? (size_t)(eol - line) : (size_t)(end - line);
        const char *colon = memchr(line, ':', len);
        if (colon != NULL) {
            char name[64], value[256];
            copy_trimmed(name, sizeof name, line, (size_t)(colon - line));
            copy_trimmed(value, sizeof value, colon + 1, len - (size_t)(colon - line) - 1);
            if (strcasecmp(name, "content-type") == 0)
                snprintf(r->content_type, sizeof r->content_type, "%s", value);
            else if (strcasecmp(name, "allow") == 0)
                snprintf(r->allow, sizeof r->allow, "%s", value);
            else if (strcasecmp(name, "content-length") == 0 &&
                     !parse_digits(value, strlen(value), &r->content_length))
                return false;
        }
        line = memchr(line, '\n', (size_t)(end - line));
    }
    return true;
}

/*
 * Sends one request on fd and reads one response: headers, then Content-Length bytes
 * of body (none after HEAD), or up to EOF when there is no Content-Length.
 */
static bool exchange(int fd, const char *request, bool head, http_reply *r)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    if (!send_all(fd, request, strlen(request)))
        return false;
    char buf[16384];
    size_t n = 0, hdr_len = 0;
    bool have_head = false;
    for (;;) {
        if (!have_head) {
            for (size_t i = 0; i + 4 <= n; i++)
                if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                    hdr_len = i;
                    have_head = true;
                    break;
                }
            if (have_head && !parse_head(buf, hdr_len, r))
                return false;
        }
        if (have_head) {
            size_t want = head ? 0 : (size_t)r->content_length;
            if ((head || r->content_length >= 0) && n - hdr_len - 4 >= want)
                break;
        }
        if (n == sizeof buf)
            return false;
        ssize_t got = recv(fd, buf + n, sizeof buf - n, 0);
        if (got < 0)
            return false;
        if (got == 0) {
            if (have_head && r->content_length < 0)
                break; /* body delimited by close */
            return false;
        }
        n += (size_t)got;
    }
    size_t body = n - hdr_len - 4;
    if (!head && r->content_length >= 0)
        body = (size_t)r->content_length;
    if (body >= sizeof r->body)
        return false;
    memcpy(r->body, buf + hdr_len + 4, body);
    r->body[body] = '\0';
    r->body_len = body;
    return true;
}

/* One request on a fresh connection that the server is asked to close afterwards. */
static bool http_once(uint16_t port, const char *method, const char *target, const char *extra,
                      http_reply *r)
{
    char req[1024];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
             method, target, extra ? extra : "");
    int fd = connect_port(port);
    if (fd < 0)
        return false;
    bool ok = exchange(fd, req, strcmp(method, "HEAD") == 0, r);
    close(fd);
    return ok;
}

/* Checks a body is exactly {"error": token, "detail": <non-empty string>}. */
static void check_error_body(const http_reply *r, const char *token)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
    if (!KWT_CHECK(j != NULL && json_is_object(j))) {
        printf("    body: %s\n", r->body);
        json_decref(j);
        return;
    }
    KWT_EQ(json_object_size(j), 2);
    KWT_STREQ(json_string_value(json_object_get(j, "error")), token);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    KWT_CHECK(detail != NULL && detail[0] != '\0');
    json_decref(j);
}

/* ---- the shared server ---------------------------------------------------------- */

static struct {
    pid_t pid;
    uint16_t port;
    char dir[PATH_MAX];      /* its working directory */
    char data_dir[PATH_MAX]; /* not created before it starts */
    char log[PATH_MAX];      /* its stderr */
} srv;

static void server_starts_and_listens(void)
{
    char listen_env[64], data_env[PATH_MAX + 32], out[PATH_MAX];
    srv.port = free_port();
    if (!KWT_CHECK(srv.port != 0) || !KWT_CHECK(make_subdir(srv.dir, sizeof srv.dir, "main")))
        return;
    KWT_CHECK(path_join(srv.data_dir, sizeof srv.data_dir, srv.dir, "data"));
    KWT_CHECK(path_join(srv.log, sizeof srv.log, srv.dir, "stderr.log"));
    KWT_CHECK(path_join(out, sizeof out, srv.dir, "stdout.log"));
    snprintf(listen_env, sizeof listen_env, "KEYWAVE_LISTEN=127.0.0.1:%u", srv.port);
    snprintf(data_env, sizeof data_env, "KEYWAVE_DATA_DIR=%s", srv.data_dir);
    const char *env[] = {listen_env, data_env, NULL};
    run_opts o = {NULL, env, srv.dir, out, srv.log};
    srv.pid = spawn_keywaved(&o);
    if (!KWT_CHECK(srv.pid > 0))
        return;
    if (!KWT_CHECK(wait_listening(srv.pid, srv.port))) {
        char log[4096];
        printf("    stderr: %s\n", read_text(srv.log, log, sizeof log));
        kill_child(srv.pid);
        srv.pid = 0;
    }
}

static void healthz_answers_ok(void)
{
    http_reply r;
    if (!KWT_CHECK(http_once(srv.port, "GET", "/healthz", NULL, &r)))
        return;
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.content_type, "application/json");
    KWT_EQ(r.content_length, 15);
    KWT_STREQ(r.body, "{\"status\":\"ok\"}");
}

static void healthz_ignores_query_string(void)
{
    http_reply r;
    if (!KWT_CHECK(http_once(srv.port, "GET", "/healthz?probe=1", NULL, &r)))
        return;
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.body, "{\"status\":\"ok\"}");
}

static void head_healthz_has_no_body(void)
{
    http_reply r;
    if (!KWT_CHECK(http_once(srv.port, "HEAD", "/healthz", NULL, &r)))
        return;
    KWT_EQ(r.status, 200);
    KWT_STREQ(r.content_type, "application/json");
    KWT_EQ(r.body_len, 0);
}

static void unknown_paths_are_404_json(void)
{
    static const char *const paths[] = {
        "/nope", "/", "/healthz/", "/healthzz", "/HEALTHZ", "/api/unknown", "/nope?token=x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        http_reply r;
        if (!KWT_CHECK(http_once(srv.port, "GET", paths[i], NULL, &r)))
            continue;
        if (r.status != 404)
            printf("    path %s\n", paths[i]);
        KWT_EQ(r.status, 404);
        KWT_STREQ(r.content_type, "application/json");
        check_error_body(&r, "not_found");
    }
}

static void other_methods_on_healthz_are_405(void)
{
    static const struct {
        const char *method, *extra;
    } cases[] = {
        {"POST", "Content-Length: 0\r\n"},
        {"POST", "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"},
        {"PUT", "Content-Length: 0\r\n"},
        {"DELETE", NULL},
        {"PATCH", "Content-Length: 0\r\n"},
        {"OPTIONS", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_reply r;
        /* A body goes after the blank line: split extra at its own CRLFCRLF. */
        char extra[256] = "", body[64] = "";
        const char *split = cases[i].extra ? strstr(cases[i].extra, "\r\n\r\n") : NULL;
        if (split != NULL) {
            snprintf(extra, sizeof extra, "%.*s\r\n", (int)(split - cases[i].extra),
                     cases[i].extra);
            snprintf(body, sizeof body, "%s", split + 4);
        } else if (cases[i].extra != NULL) {
            snprintf(extra, sizeof extra, "%s", cases[i].extra);
        }
        char req[512];
        snprintf(req, sizeof req,
                 "%s /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n%s",
                 cases[i].method, extra, body);
        int fd = connect_port(srv.port);
        if (!KWT_CHECK(fd >= 0))
            continue;
        bool ok = exchange(fd, req, false, &r);
        close(fd);
        if (!KWT_CHECK(ok))
            continue;
        if (r.status != 405)
            printf("    method %s\n", cases[i].method);
        KWT_EQ(r.status, 405);
        KWT_STREQ(r.content_type, "application/json");
        KWT_CHECK(strstr(r.allow, "GET") != NULL);
        check_error_body(&r, "method_not_allowed");
    }
}

/* After a request whose body the server drops, the same connection still works. */
static void keep_alive_survives_a_request_body(void)
{
    int fd = connect_port(srv.port);
    if (!KWT_CHECK(fd >= 0))
        return;
    http_reply r;
    const char *post = "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\n"
                       "hello world";
    const char *get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (KWT_CHECK(exchange(fd, post, false, &r)))
        KWT_EQ(r.status, 405);
    if (KWT_CHECK(exchange(fd, get, false, &r))) {
        KWT_EQ(r.status, 200);
        KWT_STREQ(r.body, "{\"status\":\"ok\"}");
    }
    if (KWT_CHECK(exchange(fd, get, false, &r)))
        KWT_EQ(r.status, 200);
    close(fd);
}

static void data_dir_is_created_0700(void)
{
    struct stat st;
    if (!KWT_CHECK(stat(srv.data_dir, &st) == 0))
        return;
    KWT_CHECK(S_ISDIR(st.st_mode));
    KWT_EQ(st.st_mode & 0777, 0700);
}

static void log_has_start_line_and_one_tls_warning(void)
{
    char want[PATH_MAX + 128], log[65536];
    snprintf(want, sizeof want, "event=start listen=127.0.0.1:%u data_dir=%s ", srv.port,
             srv.data_dir);
    KWT_CHECK(wait_for_text(srv.log, want, 1000));
    read_text(srv.log, log, sizeof log);
    KWT_EQ(count_lines_with(log, "level=warn event=tls_disabled"), 1);
    KWT_CHECK(strstr(log, "ts=") == log); /* every line starts with its timestamp */
}

/* The access log has method, path, status and ms, and never the query string. */
static void access_log_omits_query_strings(void)
{
    http_reply r;
    if (!KWT_CHECK(http_once(srv.port, "GET", "/healthz?token=s3cr3t-query-value", NULL, &r)))
        return;
    KWT_EQ(r.status, 200);
    if (!KWT_CHECK(
            http_once(srv.port, "GET", "/missing?guest_secret=s3cr3t-query-value", NULL, &r)))
        return;
    KWT_EQ(r.status, 404);
    KWT_CHECK(wait_for_text(srv.log, "event=http method=GET path=/missing status=404 ms=", 1000));
    KWT_CHECK(wait_for_text(srv.log, "event=http method=GET path=/healthz status=200 ms=", 1000));
    char log[65536];
    KWT_CHECK(strstr(read_text(srv.log, log, sizeof log), "s3cr3t") == NULL);
}

static void sigterm_exits_0(void)
{
    if (!KWT_CHECK(kill(srv.pid, SIGTERM) == 0))
        return;
    int status = 0;
    bool ended = wait_exit(srv.pid, EXIT_TIMEOUT_MS, &status);
    if (!KWT_CHECK(ended)) {
        kill_child(srv.pid);
    } else {
        KWT_CHECK(WIFEXITED(status));
        KWT_EQ(WEXITSTATUS(status), 0);
        KWT_CHECK(wait_for_text(srv.log, "event=stop signal=SIGTERM", 100));
    }
    srv.pid = 0;
}

/* ---- command line and refused configurations ------------------------------------ */

static void help_lists_every_variable(void)
{
    char dir[PATH_MAX], out[PATH_MAX], errp[PATH_MAX], text[16384];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "help")))
        return;
    path_join(out, sizeof out, dir, "stdout");
    path_join(errp, sizeof errp, dir, "stderr");
    const char *args[] = {"--help", NULL};
    run_opts o = {args, NULL, dir, out, errp};
    KWT_EQ(run_to_exit(&o), 0);
    read_text(out, text, sizeof text);
    for (size_t i = 0; i < sizeof config_names / sizeof config_names[0]; i++)
        if (!KWT_CHECK(strstr(text, config_names[i]) != NULL))
            printf("    missing %s\n", config_names[i]);
    KWT_CHECK(strstr(text, "127.0.0.1:8080") != NULL); /* the default is shown */
    char data[PATH_MAX];
    path_join(data, sizeof data, dir, "data");
    KWT_CHECK(!exists(data)); /* --help starts nothing */
}

static void unknown_argument_is_a_usage_error(void)
{
    char dir[PATH_MAX], out[PATH_MAX], errp[PATH_MAX], text[4096];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "usage")))
        return;
    path_join(out, sizeof out, dir, "stdout");
    path_join(errp, sizeof errp, dir, "stderr");
    static const char *const bad[][3] = {
        {"--frobnicate", NULL, NULL}, {"serve", NULL, NULL}, {"--config", NULL, NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_opts o = {bad[i], NULL, dir, out, errp};
        KWT_EQ(run_to_exit(&o), 2);
        KWT_CHECK(strstr(read_text(errp, text, sizeof text), "Usage: keywaved") != NULL);
        KWT_STREQ(read_text(out, text, sizeof text), "");
    }
}

/* Runs keywaved in dir with env, expecting a refusal that mentions each of needles. */
static void expect_refusal(const char *dir, const char *const *args, const char *const *env,
                           const char *needle1, const char *needle2)
{
    char out[PATH_MAX], errp[PATH_MAX], text[4096];
    path_join(out, sizeof out, dir, "stdout");
    path_join(errp, sizeof errp, dir, "stderr");
    run_opts o = {args, env, dir, out, errp};
    int status = run_to_exit(&o);
    KWT_CHECK(status > 0); /* ended by itself, with a failure status */
    read_text(errp, text, sizeof text);
    bool clear = strstr(text, needle1) != NULL && strstr(text, needle2) != NULL;
    if (!KWT_CHECK(clear) || status <= 0)
        printf("    status %d, stderr: %s\n", status, text);
}

static void bad_listen_values_are_refused(void)
{
    static const char *const bad[] = {
        "127.0.0.1:99999", "nonsense",       "127.0.0.1:0",     "127.0.0.1:65536",
        "127.0.0.1:",      ":8080",          "127.0.0.1:80x",   "127.0.0.1:+80",
        "127.0.0.1:-1",    "127.0.0.1:0080", "256.0.0.1:8080",  "example.com:8080",
        "::1:8080",        "[::1]8080",      "[nonsense]:8080", "127.0.0.1:8080 ",
        "127.0.0.1",       "1.2.3:8080",
    };
    char dir[PATH_MAX], data[PATH_MAX], data_env[PATH_MAX + 32];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "badlisten")))
        return;
    path_join(data, sizeof data, dir, "data");
    snprintf(data_env, sizeof data_env, "KEYWAVE_DATA_DIR=%s", data);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char listen_env[128];
        snprintf(listen_env, sizeof listen_env, "KEYWAVE_LISTEN=%s", bad[i]);
        const char *env[] = {listen_env, data_env, NULL};
        int before = kwt_checks_failed;
        expect_refusal(dir, NULL, env, "event=config_invalid", "KEYWAVE_LISTEN");
        KWT_CHECK(!exists(data)); /* a refused configuration changes nothing */
        if (kwt_checks_failed != before)
            printf("    value '%s'\n", bad[i]);
    }
}

static void bad_guest_event_limits_are_refused(void)
{
    static const char *const bad[] = {"0", "10000001", "abc", "010", "-5", "1e3", " 100", "100 "};
    char dir[PATH_MAX], data[PATH_MAX], data_env[PATH_MAX + 32];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "badlimit")))
        return;
    path_join(data, sizeof data, dir, "data");
    snprintf(data_env, sizeof data_env, "KEYWAVE_DATA_DIR=%s", data);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char env_limit[96];
        snprintf(env_limit, sizeof env_limit, "KEYWAVE_GUEST_EVENTS_PER_MINUTE=%s", bad[i]);
        const char *env[] = {env_limit, data_env, NULL};
        int before = kwt_checks_failed;
        expect_refusal(dir, NULL, env, "event=config_invalid", "KEYWAVE_GUEST_EVENTS_PER_MINUTE");
        KWT_CHECK(!exists(data));
        if (kwt_checks_failed != before)
            printf("    value '%s'\n", bad[i]);
    }
}

static void port_in_use_is_refused(void)
{
    char dir[PATH_MAX], data_env[PATH_MAX + 32], listen_env[64];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "inuse")))
        return;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (!KWT_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                   listen(fd, 1) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    snprintf(listen_env, sizeof listen_env, "KEYWAVE_LISTEN=127.0.0.1:%u", ntohs(a.sin_port));
    snprintf(data_env, sizeof data_env, "KEYWAVE_DATA_DIR=%s/data", dir);
    const char *env[] = {listen_env, data_env, NULL};
    expect_refusal(dir, NULL, env, "event=listen_failed", "cannot listen");
    close(fd);
}

static void unusable_data_dir_is_refused(void)
{
    char dir[PATH_MAX], file[PATH_MAX], data_env[PATH_MAX + 32], listen_env[64];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "baddata")))
        return;
    path_join(file, sizeof file, dir, "plainfile");
    KWT_CHECK(write_text(file, "not a directory\n"));
    snprintf(listen_env, sizeof listen_env, "KEYWAVE_LISTEN=127.0.0.1:%u", free_port());
    /* Both the path itself and a path under it are unusable. */
    static const char *const suffixes[] = {"", "/below"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(data_env, sizeof data_env, "KEYWAVE_DATA_DIR=%s%s", file, suffixes[i]);
        const char *env[] = {listen_env, data_env, NULL};
        expect_refusal(dir, NULL, env, "event=data_dir_unusable", "KEYWAVE_DATA_DIR");
    }
}

static void bad_conf_file_is_refused(void)
{
    char dir[PATH_MAX], conf[PATH_MAX], missing[PATH_MAX];
    if (!KWT_CHECK(make_subdir(dir, sizeof dir, "badconf")))
        return;
    path_join(conf, sizeof conf, dir, "keywave.conf");
    KWT_CHECK(write_text(conf, "# typo in a key\nKEYWAVE_LISTN=127.0.0.1:8080\n"));
    expect_refusal(dir, NULL, NULL, "unknown key KEYWAVE_LISTN", "keywave.conf:2");

    KWT_CHECK(write_text(conf, "KEYWAVE_LISTEN 127.0.0.1:8080\n"));
    expect_refusal(dir, NULL, NULL, "event=config_invalid", "expected KEY=value");

    KWT_CHECK(write_text(conf, "KEYWAVE_LISTEN=nonsense\n"));
    expect_refusal(dir, NULL, NULL, "event=config_invalid", "KEYWAVE_LISTEN");

    /* An explicit --config must exist. */
    path_join(missing, sizeof missing, dir, "missing.conf");
    const char *args[] = {"--config", missing, NULL};
    expect_refusal(dir, args, NULL, "event=config_invalid", "cannot open");
}

/*
 * keywave.conf in the working directory is read, the environment wins over it, and
 * SIGINT stops the server as cleanly as SIGTERM.
 */
static void conf_file_is_read_and_env_wins(void)
{
    char dir[PATH_MAX], conf[PATH_MAX], text[512], env_data[PATH_MAX], data_env[PATH_MAX + 32];
    char out[PATH_MAX], errp[PATH_MAX], file_data[PATH_MAX];
    uint16_t port = free_port();
    if (!KWT_CHECK(port != 0) || !KWT_CHECK(make_subdir(dir, sizeof dir, "conf")))
        return;
    path_join(conf, sizeof conf, dir, "keywave.conf");
    path_join(env_data, sizeof env_data, dir, "env-data");
    path_join(file_data, sizeof file_data, dir, "file-data");
    path_join(out, sizeof out, dir, "stdout");
    path_join(errp, sizeof errp, dir, "stderr");
    snprintf(text, sizeof text,
             "# keywave test configuration\n\n  KEYWAVE_LISTEN = 127.0.0.1:%u\n"
             "KEYWAVE_DATA_DIR=\"file-data\"\nKEYWAVE_PUBLIC_URL=https://meet.example/\n"
             "LIVEKIT_API_SECRET=file-secret-must-not-be-logged\nLIVEKIT_API_KEY=key\n",
             port);
    KWT_CHECK(write_text(conf, text));
    snprintf(data_env, sizeof data_env, "KEYWAVE_DATA_DIR=%s", env_data);
    const char *env[] = {data_env, NULL};
    run_opts o = {NULL, env, dir, out, errp};
    pid_t pid = spawn_keywaved(&o);
    if (!KWT_CHECK(pid > 0))
        return;
    if (KWT_CHECK(wait_listening(pid, port))) {
        http_reply r;
        if (KWT_CHECK(http_once(port, "GET", "/healthz", NULL, &r)))
            KWT_EQ(r.status, 200);
        KWT_CHECK(exists(env_data));
        KWT_CHECK(!exists(file_data));
        KWT_CHECK(wait_for_text(errp, "public_url=https://meet.example ", 1000));
        KWT_CHECK(kill(pid, SIGINT) == 0);
        int status = 0;
        if (KWT_CHECK(wait_exit(pid, EXIT_TIMEOUT_MS, &status))) {
            KWT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            pid = 0;
        }
        char log[16384];
        read_text(errp, log, sizeof log);
        KWT_CHECK(strstr(log, "event=stop signal=SIGINT") != NULL);
        KWT_CHECK(strstr(log, "file-secret") == NULL);
    } else {
        pid = 0; /* reaped by wait_listening */
    }
    kill_child(pid);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(ALARM_SECONDS);

    const char *bin = getenv("KEYWAVED");
    if (bin == NULL || bin[0] == '\0')
        bin = "./build/keywaved";
    if (realpath(bin, keywaved) == NULL || access(keywaved, X_OK) != 0) {
        printf("FAIL keywaved binary not found or not executable: %s\n", bin);
        kwt_cases_failed++;
        return kwt_finish();
    }
    snprintf(root, sizeof root, "/tmp/keywave-test-healthz-XXXXXX");
    if (mkdtemp(root) == NULL) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        kwt_cases_failed++;
        return kwt_finish();
    }

    KWT_RUN(help_lists_every_variable);
    KWT_RUN(unknown_argument_is_a_usage_error);
    KWT_RUN(bad_listen_values_are_refused);
    KWT_RUN(bad_guest_event_limits_are_refused);
    KWT_RUN(port_in_use_is_refused);
    KWT_RUN(unusable_data_dir_is_refused);
    KWT_RUN(bad_conf_file_is_refused);

    KWT_RUN(server_starts_and_listens);
    if (srv.pid > 0) {
        KWT_RUN(healthz_answers_ok);
        KWT_RUN(healthz_ignores_query_string);
        KWT_RUN(head_healthz_has_no_body);
        KWT_RUN(unknown_paths_are_404_json);
        KWT_RUN(other_methods_on_healthz_are_405);
        KWT_RUN(keep_alive_survives_a_request_body);
        KWT_RUN(data_dir_is_created_0700);
        KWT_RUN(log_has_start_line_and_one_tls_warning);
        KWT_RUN(access_log_omits_query_strings);
        KWT_RUN(sigterm_exits_0);
    }
    KWT_RUN(conf_file_is_read_and_env_wins);

    for (int i = 0; i < MAX_CHILDREN; i++)
        kill_child(live_children[i]);
    remove_tree(root);
    return kwt_finish();
}
