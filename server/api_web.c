/*
 * api_web.c — the guest app's static files: GET /web/:file serves build/web/<file>
 * (KW_WEB_DIR, relative to the working directory, like api_join.c's index.html).
 *
 * Only flat names of the build's own kinds are served: 1..KW_WEB_NAME_MAX bytes of
 * [A-Za-z0-9._-], not starting with '.', ending in .js, .mjs, .wasm, .css, .map, .svg
 * or .png; anything else is a 404 like a missing file, so no path can leave the
 * directory. Types: JavaScript as text/javascript, .wasm as application/wasm (what
 * WebAssembly.instantiateStreaming requires), CSS as text/css. The HTTP adapter adds the
 * Content-Security-Policy of DESIGN.md section 10, nosniff and no-store to every response.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http.h"
#include "server.h"

#define KW_WEB_DIR      "build/web"
#define KW_WEB_NAME_MAX 64
#define KW_WEB_FILE_MAX ((size_t)8 * 1024 * 1024) /* the wasm is ~300 KB; refuse anything huge */

static const struct {
    const char *ext;
    const char *type;
} web_types[] = {
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".wasm", "application/wasm"},
    {".css", "text/css; charset=utf-8"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
};

/* The content type for a servable name, or NULL when the name is not one. */
static const char *web_type(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > KW_WEB_NAME_MAX || name[0] == '.')
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return NULL;
    }
    for (size_t i = 0; i < sizeof web_types / sizeof web_types[0]; i++) {
        size_t k = strlen(web_types[i].ext);
        if (n > k && strcmp(name + n - k, web_types[i].ext) == 0)
            return web_types[i].type;
    }
    return NULL;
}

/* The whole file, malloc'd, or NULL when absent, not a regular file, unreadable or over
 * KW_WEB_FILE_MAX. Sized by fstat, so a small file costs a small buffer. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (size_t)st.st_size <= KW_WEB_FILE_MAX) {
        size_t want = (size_t)st.st_size;
        buf = malloc(want + 1);
        /* One byte more than stat said: a file that grew meanwhile is refused, not cut. */
        n = buf != NULL ? fread(buf, 1, want + 1, f) : 0;
        if (buf != NULL && (ferror(f) || n != want)) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (buf != NULL)
        *len = n;
    return buf;
}

static kw_err get_web_file(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    if (req->n_params != 1)
        return kw_error_set(err, KW_ERR_INTERNAL, "route parameters missing");
    const char *type = web_type(req->params[0]);
    if (type == NULL)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such file");
    char path[sizeof KW_WEB_DIR + 1 + KW_WEB_NAME_MAX + 1];
    snprintf(path, sizeof path, "%s/%s", KW_WEB_DIR, req->params[0]);
    size_t len = 0;
    char *body = read_file(path, &len);
    if (body == NULL)
        return kw_error_set(err, KW_ERR_NOT_FOUND, "no such file");
    kw_err rc = kw_response_bytes(res, 200, type, body, len);
    free(body);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

const kw_route kw_routes_web[] = {
    {KW_GET, "/web/:file", KW_AUTH_NONE, get_web_file},
    {0, NULL, 0, NULL},
};
