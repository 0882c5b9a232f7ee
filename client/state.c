/*
 * state.c — the client's state directory and device file (state.h).
 */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keywave/store.h"

#define DEVICE_FILE "device.json"
#define KEYS_DIR    "keys"

static kw_err mkdir_0700(const char *path, kw_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return kw_error_set(err, KW_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return kw_error_set(err, KW_ERR_IO, "%s is not a directory", path);
    return KW_OK;
}

/* Creates every missing directory of path (mkdir -p), the last one 0700. */
static kw_err mkdir_parents(char *path, kw_error *err)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (rc != 0 && e != EEXIST)
            return kw_error_set(err, KW_ERR_IO, "cannot create %s: %s", path, strerror(e));
    }
    return mkdir_0700(path, err);
}

kw_err kwc_state_init(kwc_ctx *ctx, const char *override, kw_error *err)
{
    const char *env = getenv("KEYWAVE_DATA_DIR");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;
    if (override != NULL && *override != '\0')
        n = snprintf(ctx->data_dir, sizeof ctx->data_dir, "%s", override);
    else if (env != NULL && *env != '\0')
        n = snprintf(ctx->data_dir, sizeof ctx->data_dir, "%s", env);
    else if (xdg != NULL && xdg[0] == '/')
        n = snprintf(ctx->data_dir, sizeof ctx->data_dir, "%s/keywave", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(ctx->data_dir, sizeof ctx->data_dir, "%s/.local/share/keywave", home);
    else
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "no state directory: set XDG_DATA_HOME or HOME");
    if (n < 0 || (size_t)n >= sizeof ctx->data_dir)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "state directory path too long");
    return mkdir_parents(ctx->data_dir, err);
}

static kw_err path_in(const kwc_ctx *ctx, const char *name, char *out, size_t cap, kw_error *err)
{
    int n = snprintf(out, cap, "%s/%s", ctx->data_dir, name);
    if (n < 0 || (size_t)n >= cap)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "path too long");
    return KW_OK;
}

static kw_err copy_field(json_t *doc, const char *key, char *out, size_t cap, kw_error *err)
{
    const char *s = json_string_value(json_object_get(doc, key));
    if (s == NULL || *s == '\0' || strlen(s) >= cap)
        return kw_error_set(err, KW_ERR_JSON, "device.json: bad or missing %s", key);
    memcpy(out, s, strlen(s) + 1);
    return KW_OK;
}

kw_err kwc_device_load(const kwc_ctx *ctx, kwc_device *out, kw_error *err)
{
    char path[PATH_MAX];
    kw_err rc = path_in(ctx, DEVICE_FILE, path, sizeof path, err);
    if (rc != KW_OK)
        return rc;
    memset(out, 0, sizeof *out);
    if (access(path, F_OK) != 0)
        return kw_error_set(
            err, KW_ERR_NOT_FOUND,
            "this machine is not enrolled: run 'keywave enroll <server-url> <code>'");
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return kw_error_set(err, KW_ERR_JSON, "%s: %s", path, jerr.text);
    json_int_t dev = json_integer_value(json_object_get(doc, "device_id"));
    if ((rc = copy_field(doc, "server", out->server, sizeof out->server, err)) != KW_OK ||
        (rc = copy_field(doc, "user_id", out->user_id, sizeof out->user_id, err)) != KW_OK ||
        (rc = copy_field(doc, "client_id", out->client_id, sizeof out->client_id, err)) != KW_OK ||
        (rc = copy_field(doc, "session_secret", out->session_secret, sizeof out->session_secret,
                         err)) != KW_OK) {
        json_decref(doc);
        kwc_device_wipe(out);
        return rc;
    }
    /* The secret's copy inside the JSON tree is freed with it; jansson cannot wipe it. */
    json_decref(doc);
    if (dev < 1 || dev > UINT32_MAX) {
        kwc_device_wipe(out);
        return kw_error_set(err, KW_ERR_JSON, "device.json: bad device_id");
    }
    out->device_id = (uint32_t)dev;
    return KW_OK;
}

kw_err kwc_device_save(const kwc_ctx *ctx, const kwc_device *dev, kw_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    kw_err rc = path_in(ctx, DEVICE_FILE, path, sizeof path, err);
    if (rc != KW_OK)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:s}", "server", dev->server, "user_id",
                            dev->user_id, "device_id", (json_int_t)dev->device_id, "client_id",
                            dev->client_id, "session_secret", dev->session_secret);
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (text == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "device.json");
    size_t len = strlen(text);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
             fsync(fd) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    memset(text, 0, len);
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        return kw_error_set(err, KW_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return KW_OK;
}

kw_err kwc_device_forget(const kwc_ctx *ctx, kw_error *err)
{
    char path[PATH_MAX];
    kw_err rc = path_in(ctx, DEVICE_FILE, path, sizeof path, err);
    if (rc != KW_OK)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return kw_error_set(err, KW_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    if ((rc = path_in(ctx, KEYS_DIR, path, sizeof path, err)) != KW_OK)
        return rc;
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT
                   ? KW_OK
                   : kw_error_set(err, KW_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct dirent *de;
    char file[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int n = snprintf(file, sizeof file, "%s/%s", path, de->d_name);
        if (n > 0 && (size_t)n < sizeof file)
            unlink(file);
    }
    closedir(d);
    if (rmdir(path) != 0 && errno != ENOENT)
        return kw_error_set(err, KW_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return KW_OK;
}

void kwc_device_wipe(kwc_device *dev)
{
    if (dev != NULL)
        memset(dev, 0, sizeof *dev);
}

kw_err kwc_member_identity(const kwc_ctx *ctx, const kwc_device *dev, kw_store **store,
                           kw_identity **id, kw_error *err)
{
    char path[PATH_MAX];
    *store = NULL;
    *id = NULL;
    kw_err rc = path_in(ctx, KEYS_DIR, path, sizeof path, err);
    if (rc != KW_OK)
        return rc;
    if ((rc = kw_store_file_open(path, store, err)) != KW_OK)
        return rc;
    kw_identity_config cfg = {KW_ROLE_MEMBER, *store, NULL, dev->user_id, dev->device_id};
    if ((rc = kw_identity_open(&cfg, id, err)) != KW_OK) {
        kw_store_free(*store);
        *store = NULL;
    }
    return rc;
}

int kwc_id_ok(const char *s)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= KWC_ID_MAX;
}
