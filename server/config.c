/*
 * config.c — loading and checking keywaved's configuration (config.h).
 *
 * One table lists every variable; the file reader, the environment reader, `--help` and
 * kw_config_free all walk it. Loading happens in two phases: raw strings are collected
 * (file first, the environment over it), then moved into kw_config and checked one rule
 * at a time, so each failure names exactly one variable.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h" /* kw_wipe */

/* A variable that is parsed into a non-string field keeps no string in kw_config. */
#define NO_FIELD SIZE_MAX

/* Lines of keywave.conf longer than this are refused rather than guessed at. */
#define CONF_LINE_MAX 4096

/*
 * One configuration variable. offset: where its string lives in kw_config (NO_FIELD if it
 * is parsed into another field); secret: wiped on free and never quoted in an error;
 * default_text: what --help shows as the default (NULL: none); help: one line.
 */
typedef struct config_var {
    const char *name;
    size_t offset;
    bool secret;
    const char *default_text;
    const char *help;
} config_var;

enum {
    VAR_LISTEN,
    VAR_PUBLIC_URL,
    VAR_DATA_DIR,
    VAR_TLS_CERT,
    VAR_TLS_KEY,
    VAR_LIVEKIT_URL,
    VAR_LIVEKIT_API_KEY,
    VAR_LIVEKIT_API_SECRET,
    VAR_JITSI_SERVER_URL,
    VAR_JITSI_APP_ID,
    VAR_JITSI_APP_SECRET,
    VAR_JITSI_JWT_EXPIRATION,
    VAR_GUEST_EVENTS_PER_MINUTE,
    VAR_COUNT
};

static const config_var config_vars[VAR_COUNT] = {
    [VAR_LISTEN] = {"KEYWAVE_LISTEN", offsetof(kw_config, listen), false, KW_CONFIG_DEFAULT_LISTEN,
                    "address to listen on: IPv4:port, [IPv6]:port or localhost:port"},
    [VAR_PUBLIC_URL] = {"KEYWAVE_PUBLIC_URL", offsetof(kw_config, public_url), false,
                        "http(s)://<KEYWAVE_LISTEN>",
                        "URL clients reach the server at; invitation links start with it"},
    [VAR_DATA_DIR] = {"KEYWAVE_DATA_DIR", offsetof(kw_config, data_dir), false,
                      KW_CONFIG_DEFAULT_DATA_DIR,
                      "directory of keywave.db; created with mode 0700 if missing"},
    [VAR_TLS_CERT] = {"KEYWAVE_TLS_CERT", offsetof(kw_config, tls_cert), false, NULL,
                      "PEM certificate chain file; with KEYWAVE_TLS_KEY, serve HTTPS"},
    [VAR_TLS_KEY] = {"KEYWAVE_TLS_KEY", offsetof(kw_config, tls_key), false, NULL,
                     "PEM private key file of KEYWAVE_TLS_CERT"},
    [VAR_LIVEKIT_URL] = {"LIVEKIT_URL", offsetof(kw_config, livekit_url), false, NULL,
                         "LiveKit server URL given to clients (ws, wss, http or https)"},
    [VAR_LIVEKIT_API_KEY] = {"LIVEKIT_API_KEY", offsetof(kw_config, livekit_api_key), false, NULL,
                             "LiveKit API key (issuer of media tokens)"},
    [VAR_LIVEKIT_API_SECRET] = {"LIVEKIT_API_SECRET", offsetof(kw_config, livekit_api_secret), true,
                                NULL, "LiveKit API secret that signs media tokens"},
    [VAR_JITSI_SERVER_URL] = {"JITSI_SERVER_URL", offsetof(kw_config, jitsi_server_url), false,
                              NULL, "Jitsi server URL (http or https)"},
    [VAR_JITSI_APP_ID] = {"JITSI_APP_ID", offsetof(kw_config, jitsi_app_id), false, NULL,
                          "Jitsi application id (JWT iss and aud)"},
    [VAR_JITSI_APP_SECRET] = {"JITSI_APP_SECRET", offsetof(kw_config, jitsi_app_secret), true, NULL,
                              "Jitsi application secret, at least 32 characters"},
    [VAR_JITSI_JWT_EXPIRATION] = {"JITSI_JWT_EXPIRATION", NO_FIELD, false, "7200",
                                  "lifetime of Jitsi tokens in seconds (60..604800)"},
    [VAR_GUEST_EVENTS_PER_MINUTE] = {"KEYWAVE_GUEST_EVENTS_PER_MINUTE", NO_FIELD, false, "100",
                                     "events one guest socket may send per minute "
                                     "(1..10000000)"},
};

static char **field_of(kw_config *cfg, const config_var *var)
{
    return (char **)(void *)((char *)cfg + var->offset);
}

static void free_string(char **s, bool secret)
{
    if (*s == NULL)
        return;
    if (secret)
        kw_wipe(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

static void free_raw(char *raw[VAR_COUNT])
{
    for (size_t i = 0; i < VAR_COUNT; i++)
        free_string(&raw[i], config_vars[i].secret);
}

static int find_var(const char *name)
{
    for (size_t i = 0; i < VAR_COUNT; i++)
        if (strcmp(config_vars[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Stores a copy of value as raw[i]; an empty value clears it (empty counts as unset). */
static kw_err set_raw(char *raw[VAR_COUNT], size_t i, const char *value, kw_error *err)
{
    free_string(&raw[i], config_vars[i].secret);
    if (value[0] == '\0')
        return KW_OK;
    raw[i] = strdup(value);
    if (raw[i] == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "%s: out of memory", config_vars[i].name);
    return KW_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims spaces at both ends of s in place and returns the new start. */
static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Applies one line of the file (already known not blank or a comment) to raw. */
static kw_err parse_conf_line(char *line, const char *path, unsigned lineno, char *raw[VAR_COUNT],
                              bool seen[VAR_COUNT], kw_error *err)
{
    char *eq = strchr(line, '=');
    if (eq == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%.64s:%u: expected KEY=value", path,
                            lineno);
    *eq = '\0';
    char *key = trim(line);
    char *value = trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    int i = find_var(key);
    if (i < 0)
        return kw_error_set(err, KW_ERR_UNKNOWN_FIELD, "%.64s:%u: unknown key %.40s", path, lineno,
                            key);
    if (seen[i])
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%.64s:%u: %s is set twice", path, lineno,
                            config_vars[i].name);
    seen[i] = true;
    return set_raw(raw, (size_t)i, value, err);
}

/*
 * Reads a KEY=value file into raw. A missing file is fine unless must_exist. The line
 * buffer may hold secrets, so it is wiped before it is freed.
 */
static kw_err read_conf_file(const char *path, bool must_exist, char *raw[VAR_COUNT], kw_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !must_exist)
            return KW_OK;
        return kw_error_set(err, KW_ERR_IO, "%.64s: cannot open: %s", path, strerror(errno));
    }
    bool seen[VAR_COUNT] = {false};
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    kw_err rc = KW_OK;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) {
            if (errno != 0)
                rc = kw_error_set(err, KW_ERR_IO, "%.64s: cannot read: %s", path, strerror(errno));
            break;
        }
        lineno++;
        if ((size_t)n > CONF_LINE_MAX) {
            rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%.64s:%u: line longer than %d bytes",
                              path, lineno, CONF_LINE_MAX);
            break;
        }
        if (strlen(line) != (size_t)n) {
            rc = kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%.64s:%u: contains a NUL byte", path,
                              lineno);
            break;
        }
        char *text = trim(line);
        if (text[0] == '\0' || text[0] == '#')
            continue;
        rc = parse_conf_line(text, path, lineno, raw, seen, err);
        if (rc != KW_OK)
            break;
    }
    if (line != NULL) {
        kw_wipe(line, cap);
        free(line);
    }
    fclose(f);
    return rc;
}

/* Parses a decimal number of at most max_digits digits, no sign, no leading zero. */
static bool parse_decimal(const char *s, size_t max_digits, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_digits || (n > 1 && s[0] == '0'))
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0'); /* at most 18 digits: cannot overflow int64_t */
    }
    *out = v;
    return true;
}

/*
 * Splits KEYWAVE_LISTEN into a bindable address and a port. Accepted: IPv4:port,
 * [IPv6]:port, localhost:port (bound as 127.0.0.1), port 1..65535 in plain decimal.
 * Host names are refused: binding must not depend on DNS.
 */
static kw_err parse_listen(kw_config *cfg, kw_error *err)
{
    const char *name = config_vars[VAR_LISTEN].name;
    const char *v = cfg->listen;
    const char *host = v;
    size_t host_len;
    const char *colon;
    bool ipv6 = false;

    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':')
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: '%.64s' is not [IPv6]:port",
                                name, v);
        host = v + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
        ipv6 = true;
    } else {
        colon = strchr(v, ':');
        if (colon == NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "%s: '%.64s' is not host:port (e.g. 127.0.0.1:8080)", name, v);
        if (strchr(colon + 1, ':') != NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "%s: '%.64s': an IPv6 address needs brackets, e.g. [::1]:8080",
                                name, v);
        host_len = (size_t)(colon - v);
    }
    if (host_len == 0 || host_len >= sizeof cfg->listen_host)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: '%.64s' has no valid host part",
                            name, v);
    memcpy(cfg->listen_host, host, host_len);
    cfg->listen_host[host_len] = '\0';

    if (!ipv6 && strcmp(cfg->listen_host, "localhost") == 0)
        snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(ipv6 ? AF_INET6 : AF_INET, cfg->listen_host, addr) != 1)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "%s: '%.64s': host must be an IPv4 address, [IPv6 address] or "
                            "localhost",
                            name, v);

    int64_t port;
    if (!parse_decimal(colon + 1, 5, &port) || port < 1 || port > 65535)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "%s: '%.64s': port must be a number from 1 to 65535", name, v);
    cfg->listen_port = (uint16_t)port;
    cfg->listen_ipv6 = ipv6;
    return KW_OK;
}

/*
 * Checks that url starts with one of the allowed schemes followed by "://" and a
 * non-empty rest made of printable ASCII with no spaces, quotes, '?' or '#'.
 */
static kw_err check_url(const char *name, const char *url, const char *const *schemes,
                        kw_error *err)
{
    const char *rest = NULL;
    char allowed[64] = "";
    size_t used = 0;
    for (size_t i = 0; schemes[i] != NULL; i++) {
        size_t n = strlen(schemes[i]);
        if (rest == NULL && strncmp(url, schemes[i], n) == 0 && strncmp(url + n, "://", 3) == 0)
            rest = url + n + 3;
        int w =
            snprintf(allowed + used, sizeof allowed - used, "%s%s://", i ? ", " : "", schemes[i]);
        if (w > 0 && (size_t)w < sizeof allowed - used)
            used += (size_t)w;
    }
    if (rest == NULL)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: '%.64s' must start with one of %s",
                            name, url, allowed);
    if (rest[0] == '\0' || rest[0] == '/')
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: '%.64s' has no host", name, url);
    for (const char *p = rest; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}?#", c) != NULL)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "%s: '%.64s' contains a space, control character, quote, "
                                "query or fragment",
                                name, url);
    }
    return KW_OK;
}

/* Two variables that only make sense together: both set or both unset. */
static kw_err check_pair(size_t a, size_t b, const char *va, const char *vb, kw_error *err)
{
    if ((va == NULL) != (vb == NULL))
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s is set but %s is not",
                            va ? config_vars[a].name : config_vars[b].name,
                            va ? config_vars[b].name : config_vars[a].name);
    return KW_OK;
}

static kw_err check_readable(size_t var, const char *path, kw_error *err)
{
    if (path != NULL && access(path, R_OK) != 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: cannot read '%.64s': %s",
                            config_vars[var].name, path, strerror(errno));
    return KW_OK;
}

static kw_err set_defaults(kw_config *cfg, kw_error *err)
{
    if (cfg->listen == NULL && (cfg->listen = strdup(KW_CONFIG_DEFAULT_LISTEN)) == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (cfg->data_dir == NULL && (cfg->data_dir = strdup(KW_CONFIG_DEFAULT_DATA_DIR)) == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (cfg->public_url == NULL) {
        const char *scheme = cfg->tls_cert ? "https" : "http";
        size_t n = strlen(scheme) + 3 + strlen(cfg->listen) + 1;
        cfg->public_url = malloc(n);
        if (cfg->public_url == NULL)
            return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
        snprintf(cfg->public_url, n, "%s://%s", scheme, cfg->listen);
    }
    return KW_OK;
}

/* Runs every rule on a loaded configuration; the first broken rule is the error. */
static kw_err check_all(kw_config *cfg, const char *jwt_exp, const char *guest_events,
                        kw_error *err)
{
    static const char *const http_schemes[] = {"http", "https", NULL};
    static const char *const livekit_schemes[] = {"wss", "ws", "https", "http", NULL};
    kw_err rc = parse_listen(cfg, err);
    if (rc != KW_OK)
        return rc;

    rc = check_url(config_vars[VAR_PUBLIC_URL].name, cfg->public_url, http_schemes, err);
    if (rc != KW_OK)
        return rc;
    /* Invitation URLs append "/join/...": a trailing slash would double it. */
    size_t n = strlen(cfg->public_url);
    while (n > 0 && cfg->public_url[n - 1] == '/')
        cfg->public_url[--n] = '\0';

    if (strlen(cfg->data_dir) >= PATH_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: path is too long",
                            config_vars[VAR_DATA_DIR].name);

    rc = check_pair(VAR_TLS_CERT, VAR_TLS_KEY, cfg->tls_cert, cfg->tls_key, err);
    if (rc == KW_OK)
        rc = check_readable(VAR_TLS_CERT, cfg->tls_cert, err);
    if (rc == KW_OK)
        rc = check_readable(VAR_TLS_KEY, cfg->tls_key, err);
    if (rc != KW_OK)
        return rc;

    if (cfg->livekit_url != NULL) {
        rc = check_url(config_vars[VAR_LIVEKIT_URL].name, cfg->livekit_url, livekit_schemes, err);
        if (rc != KW_OK)
            return rc;
    }
    rc = check_pair(VAR_LIVEKIT_API_KEY, VAR_LIVEKIT_API_SECRET, cfg->livekit_api_key,
                    cfg->livekit_api_secret, err);
    if (rc != KW_OK)
        return rc;

    if (cfg->jitsi_server_url != NULL) {
        rc = check_url(config_vars[VAR_JITSI_SERVER_URL].name, cfg->jitsi_server_url, http_schemes,
                       err);
        if (rc != KW_OK)
            return rc;
    }
    rc = check_pair(VAR_JITSI_APP_ID, VAR_JITSI_APP_SECRET, cfg->jitsi_app_id,
                    cfg->jitsi_app_secret, err);
    if (rc != KW_OK)
        return rc;
    if (cfg->jitsi_app_secret != NULL && strlen(cfg->jitsi_app_secret) < KW_CONFIG_JITSI_SECRET_MIN)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "%s: shorter than %d characters",
                            config_vars[VAR_JITSI_APP_SECRET].name, KW_CONFIG_JITSI_SECRET_MIN);

    cfg->jitsi_jwt_expiration_s = KW_CONFIG_JWT_EXP_DEFAULT;
    if (jwt_exp != NULL) {
        int64_t secs;
        if (!parse_decimal(jwt_exp, 7, &secs) || secs < KW_CONFIG_JWT_EXP_MIN ||
            secs > KW_CONFIG_JWT_EXP_MAX)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "%s: '%.20s' must be a number of seconds from %d to %d",
                                config_vars[VAR_JITSI_JWT_EXPIRATION].name, jwt_exp,
                                KW_CONFIG_JWT_EXP_MIN, KW_CONFIG_JWT_EXP_MAX);
        cfg->jitsi_jwt_expiration_s = secs;
    }

    cfg->guest_events_per_minute = KW_CONFIG_GUEST_EVENTS_DEFAULT;
    if (guest_events != NULL) {
        int64_t events;
        if (!parse_decimal(guest_events, 8, &events) || events < KW_CONFIG_GUEST_EVENTS_MIN ||
            events > KW_CONFIG_GUEST_EVENTS_MAX)
            return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                                "%s: '%.20s' must be a number of events from %d to %d",
                                config_vars[VAR_GUEST_EVENTS_PER_MINUTE].name, guest_events,
                                KW_CONFIG_GUEST_EVENTS_MIN, KW_CONFIG_GUEST_EVENTS_MAX);
        cfg->guest_events_per_minute = (uint32_t)events;
    }
    return KW_OK;
}

kw_err kw_config_load(kw_config *cfg, const char *conf_path, kw_error *err)
{
    char *raw[VAR_COUNT] = {NULL};
    memset(cfg, 0, sizeof *cfg);

    kw_err rc =
        read_conf_file(conf_path ? conf_path : KW_CONFIG_DEFAULT_FILE, conf_path != NULL, raw, err);
    if (rc != KW_OK)
        goto fail;
    for (size_t i = 0; i < VAR_COUNT; i++) {
        const char *env = getenv(config_vars[i].name);
        if (env != NULL) {
            rc = set_raw(raw, i, env, err);
            if (rc != KW_OK)
                goto fail;
        }
    }
    /* Ownership of the strings moves from raw into cfg. */
    for (size_t i = 0; i < VAR_COUNT; i++) {
        if (config_vars[i].offset == NO_FIELD)
            continue;
        *field_of(cfg, &config_vars[i]) = raw[i];
        raw[i] = NULL;
    }
    rc = set_defaults(cfg, err);
    if (rc != KW_OK)
        goto fail;
    rc = check_all(cfg, raw[VAR_JITSI_JWT_EXPIRATION], raw[VAR_GUEST_EVENTS_PER_MINUTE], err);
    if (rc != KW_OK)
        goto fail;
    free_raw(raw);
    return KW_OK;

fail:
    free_raw(raw);
    kw_config_free(cfg);
    return rc;
}

kw_err kw_config_prepare_data_dir(const kw_config *cfg, kw_error *err)
{
    const char *name = config_vars[VAR_DATA_DIR].name;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s", cfg->data_dir);
    if (n <= 0 || (size_t)n >= sizeof path)
        return kw_error_set(err, KW_ERR_IO, "%s: empty or too long", name);

    /* mkdir -p, each new level 0700: the directory will hold every secret of the server. */
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return kw_error_set(err, KW_ERR_IO, "%s: cannot create '%.64s': %s", name, path,
                                strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return kw_error_set(err, KW_ERR_IO, "%s: cannot create '%.64s': %s", name, path,
                            strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0)
        return kw_error_set(err, KW_ERR_IO, "%s: '%.64s': %s", name, path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return kw_error_set(err, KW_ERR_IO, "%s: '%.64s' is not a directory", name, path);
    if (access(path, W_OK | X_OK) != 0)
        return kw_error_set(err, KW_ERR_IO, "%s: '%.64s' is not writable: %s", name, path,
                            strerror(errno));
    return KW_OK;
}

void kw_config_free(kw_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < VAR_COUNT; i++)
        if (config_vars[i].offset != NO_FIELD)
            free_string(field_of(cfg, &config_vars[i]), config_vars[i].secret);
    memset(cfg, 0, sizeof *cfg);
}

void kw_config_print_help(FILE *out)
{
    fprintf(out, "Configuration (environment variables, or KEY=value lines in keywave.conf;\n"
                 "the environment wins, an empty value counts as unset):\n");
    for (size_t i = 0; i < VAR_COUNT; i++) {
        const config_var *v = &config_vars[i];
        fprintf(out, "  %-22s %s\n", v->name, v->help);
        if (v->default_text != NULL)
            fprintf(out, "  %-22s default: %s\n", "", v->default_text);
    }
}
