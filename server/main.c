/*
 * main.c — keywaved's entry point: reads the command line and the configuration, makes
 * sure the data directory exists, starts the HTTP layer and runs the event loop until
 * SIGTERM or SIGINT asks it to stop. The only place in the server that picks an exit
 * status: 0 after a requested stop, 1 when the server cannot start or run, 2 on bad usage.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cleanup.h"
#include "cli_user.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "presence.h"
#include "rate_limit.h"
#include "rt.h"
#include "server.h"

enum { EXIT_STATUS_OK = 0, EXIT_STATUS_FAILED = 1, EXIT_STATUS_USAGE = 2 };

/* How long a stop waits for requests already under way. */
#define DRAIN_TIMEOUT_MS 5000

/* The signal that asked the loop to stop, or 0: the only static state (STYLE §7). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void print_usage(FILE *out)
{
    fprintf(out, "Usage: keywaved [--config FILE]\n"
                 "       keywaved --help\n");
    kw_cli_user_usage(out);
}

static void print_help(void)
{
    print_usage(stdout);
    printf("\nRuns the keywave server: key exchange and admission for end-to-end encrypted\n"
           "meetings. Logs go to stderr, one key=value line per event.\n\n"
           "Options:\n"
           "  --config FILE  read KEY=value lines from FILE (default: ./%s if present)\n"
           "  -h, --help     show this help and exit\n\n",
           KW_CONFIG_DEFAULT_FILE);
    kw_config_print_help(stdout);
}

/* Returns -1 to go on (with *conf_path set or left NULL), or the status to exit with. */
static int parse_args(int argc, char **argv, const char **conf_path)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help();
            return EXIT_STATUS_OK;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc && *conf_path == NULL) {
            *conf_path = argv[++i];
            continue;
        }
        fprintf(stderr, "keywaved: unexpected argument: %s\n", argv[i]);
        print_usage(stderr);
        return EXIT_STATUS_USAGE;
    }
    return -1;
}

/* No SA_RESTART: the signal interrupts the loop's poll() so the flag is seen at once. */
static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A peer closing mid-write must be an error return, not the end of the process. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void log_failure(const char *event, const kw_error *err)
{
    char detail[KW_LOG_VALUE_MAX];
    kw_log(KW_LOG_ERROR, event, "error=%s detail=%s", kw_err_name(err->code),
           kw_log_value(detail, sizeof detail, err->detail));
}

static void log_start(const kw_config *cfg)
{
    char listen[KW_LOG_VALUE_MAX], data_dir[KW_LOG_VALUE_MAX], url[KW_LOG_VALUE_MAX];
    kw_log(KW_LOG_INFO, "start", "listen=%s data_dir=%s public_url=%s tls=%s",
           kw_log_value(listen, sizeof listen, cfg->listen),
           kw_log_value(data_dir, sizeof data_dir, cfg->data_dir),
           kw_log_value(url, sizeof url, cfg->public_url), cfg->tls_cert ? "on" : "off");
    if (cfg->tls_cert == NULL)
        kw_log(KW_LOG_WARN, "tls_disabled",
               "detail=\"KEYWAVE_TLS_CERT and KEYWAVE_TLS_KEY are unset, serving plain HTTP; "
               "production needs TLS, here or at a reverse proxy\"");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "user") == 0)
        return kw_cli_user(argc - 1, argv + 1); /* `keywaved user add|code <name>` */
    const char *conf_path = NULL;
    int status = parse_args(argc, argv, &conf_path);
    if (status >= 0)
        return status;

    kw_server srv;
    memset(&srv, 0, sizeof srv);
    kw_error err;
    kw_error_clear(&err);
    status = EXIT_STATUS_FAILED;

    if (kw_config_load(&srv.config, conf_path, &err) != KW_OK) {
        log_failure("config_invalid", &err);
        goto done;
    }
    if (kw_config_prepare_data_dir(&srv.config, &err) != KW_OK) {
        log_failure("data_dir_unusable", &err);
        goto done;
    }
    if (kw_db_open_sqlite(srv.config.data_dir, &srv.db, &err) != KW_OK) {
        log_failure("db_open_failed", &err);
        goto done;
    }
    if (kw_rate_limit_new(KW_BUNDLE_FETCH_LIMIT, KW_BUNDLE_FETCH_WINDOW_MS, KW_BUNDLE_FETCH_PAIRS,
                          &srv.bundle_limit) != KW_OK) {
        kw_error_set(&err, KW_ERR_NOMEM, "out of memory for the rate limiter");
        log_failure("start_failed", &err);
        goto done;
    }
    if (kw_presence_memory_new(&srv.presence) != KW_OK) {
        kw_error_set(&err, KW_ERR_NOMEM, "out of memory for presence");
        log_failure("start_failed", &err);
        goto done;
    }
    if (kw_rt_new(&srv, kw_http_ws_headroom(), kw_http_ws_wake, NULL, &srv.rt) != KW_OK) {
        kw_error_set(&err, KW_ERR_NOMEM, "out of memory for the realtime module");
        log_failure("start_failed", &err);
        goto done;
    }
    srv.auth_member = kw_auth_member;
    srv.auth_guest = kw_auth_guest;
    install_signal_handlers();
    if (kw_http_start(&srv, &err) != KW_OK) {
        log_failure("listen_failed", &err);
        goto done;
    }
    log_start(&srv.config);

    int64_t next_cleanup_ms = 0; /* INV-10: housekeeping at most once per second */
    while (!stop_signal) {
        next_cleanup_ms = kw_cleanup_poll(&srv, next_cleanup_ms);
        if (kw_http_service(&srv, &err) != KW_OK) {
            log_failure("loop_failed", &err);
            goto done;
        }
    }
    /* Finish the replies already under way (bounded), taking no new connections. */
    kw_http_drain(&srv, DRAIN_TIMEOUT_MS);
    kw_log(KW_LOG_INFO, "stop", "signal=%s requests=%llu",
           stop_signal == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)srv.http_requests);
    status = EXIT_STATUS_OK;

done:
    kw_http_stop(&srv);
    kw_rt_free(srv.rt);
    kw_rate_limit_free(srv.bundle_limit);
    kw_presence_free(srv.presence);
    kw_db_close(srv.db);
    kw_config_free(&srv.config);
    return status;
}
