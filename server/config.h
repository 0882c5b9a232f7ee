/*
 * config.h — keywaved's configuration (DESIGN §10): environment variables, and the same
 * KEY=value lines in an optional keywave.conf; the environment wins over the file.
 *
 * Every variable is one row of a table in config.c, so loading, checking and the
 * `--help` text never disagree. Values are checked strictly when loaded, so the server
 * either starts with a configuration that makes sense or refuses with a message naming
 * the variable and the rule it broke. An empty value counts as unset.
 */
#ifndef KEYWAVE_SERVER_CONFIG_H
#define KEYWAVE_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "keywave/err.h"

#define KW_CONFIG_DEFAULT_LISTEN   "127.0.0.1:8080"
#define KW_CONFIG_DEFAULT_DATA_DIR "./data"
#define KW_CONFIG_DEFAULT_FILE     "keywave.conf"
/* Longest host part of KEYWAVE_LISTEN: an IPv6 literal with its brackets, plus the NUL. */
#define KW_CONFIG_HOST_MAX 48
/* Bounds of JITSI_JWT_EXPIRATION, in seconds (one minute .. one week); default 7200. */
#define KW_CONFIG_JWT_EXP_MIN     60
#define KW_CONFIG_JWT_EXP_MAX     604800
#define KW_CONFIG_JWT_EXP_DEFAULT 7200
/* DESIGN §7: keywaved refuses to start with a shorter JITSI_APP_SECRET. */
#define KW_CONFIG_JITSI_SECRET_MIN 32
/* Bounds of KEYWAVE_GUEST_EVENTS_PER_MINUTE (events one guest socket may send per minute,
 * docs/api.md "Rate limit"); the default is the documented 100. The maximum keeps the
 * per-socket counters and their window arithmetic far from overflow. */
#define KW_CONFIG_GUEST_EVENTS_MIN     1
#define KW_CONFIG_GUEST_EVENTS_MAX     10000000
#define KW_CONFIG_GUEST_EVENTS_DEFAULT 100

/*
 * The loaded configuration. String fields are owned (freed and, for secrets, wiped by
 * kw_config_free); an optional variable that is unset is NULL.
 */
typedef struct kw_config {
    /* Listening */
    char *listen;                         /* host:port as configured, never NULL */
    char listen_host[KW_CONFIG_HOST_MAX]; /* address to bind, without brackets */
    bool listen_ipv6;                     /* listen_host is an IPv6 literal */
    uint16_t listen_port;                 /* 1..65535 */
    char *public_url;                     /* scheme://host[:port][/path], no trailing '/'; never
                                             NULL (defaults to the listen address) */
    char *tls_cert;                       /* PEM certificate chain path, or NULL (plain HTTP) */
    char *tls_key;                        /* PEM private key path; set iff tls_cert is */

    /* Storage */
    char *data_dir; /* directory of keywave.db; never NULL */

    /* Media: LiveKit */
    char *livekit_url;        /* ws(s):// or http(s):// URL, or NULL */
    char *livekit_api_key;    /* or NULL; set iff livekit_api_secret is */
    char *livekit_api_secret; /* secret, wiped on free */

    /* Media: Jitsi */
    char *jitsi_server_url;         /* http(s):// URL, or NULL */
    char *jitsi_app_id;             /* or NULL; set iff jitsi_app_secret is */
    char *jitsi_app_secret;         /* secret (>= 32 chars), wiped on free */
    int64_t jitsi_jwt_expiration_s; /* seconds, KW_CONFIG_JWT_EXP_MIN..MAX */

    /* Realtime */
    uint32_t guest_events_per_minute; /* KW_CONFIG_GUEST_EVENTS_MIN..MAX, default 100 */
} kw_config;

/*
 * Loads the configuration into cfg (overwritten; nothing in it is freed): first the
 * file conf_path, then the environment over it, then defaults, then every check.
 * conf_path: a KEY=value file (blank lines and lines starting with '#' ignored, one pair
 * of surrounding double quotes stripped from a value); NULL means KW_CONFIG_DEFAULT_FILE
 * in the current directory if it exists. A conf_path given explicitly must exist.
 * On failure cfg holds nothing that needs freeing beyond kw_config_free (which is safe).
 * Errors: KW_ERR_INVALID_ARGUMENT (a value breaks its rule; detail names the variable),
 * KW_ERR_UNKNOWN_FIELD (the file names an unknown key), KW_ERR_IO (the file cannot be
 * read), KW_ERR_NOMEM.
 */
kw_err kw_config_load(kw_config *cfg, const char *conf_path, kw_error *err) KW_MUST_CHECK;

/*
 * Makes sure cfg->data_dir exists as a directory the server can write: creates it, and
 * any missing parent, with mode 0700. An existing directory keeps its mode.
 * Errors: KW_ERR_IO (not a directory, cannot be created, or not writable).
 */
kw_err kw_config_prepare_data_dir(const kw_config *cfg, kw_error *err) KW_MUST_CHECK;

/* Frees every string of cfg, wiping the secrets, and zeroes it. cfg may be NULL. */
void kw_config_free(kw_config *cfg);

/* Writes the `--help` list of variables (name, meaning, default) to out. */
void kw_config_print_help(FILE *out);

#endif
