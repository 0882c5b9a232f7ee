/*
 * test_web_static.c — the guest app's static files (server/api_web.c) from the real
 * keywaved: GET /web/<file> serves build/web/<file> of the working directory with the
 * right type (.wasm as application/wasm, JavaScript as text/javascript, CSS as text/css),
 * the exact bytes, the Content-Security-Policy of DESIGN.md section 10 and nosniff; HEAD
 * without a body; and 404 for a missing file, a name of another kind (.txt, .html, no
 * extension), a dot file, traversal in any spelling, a name with other characters, and
 * a file too large. POST is 405.
 * KEYWAVED names the binary (tests/run.sh sets it); without it, ./build/keywaved.
 */
#include "kwserver.h"

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "                 \
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "                     \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static kws_server srv;
static char web[PATH_MAX + 16];

static bool put_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int get(const char *method, const char *target, kws_reply *r)
{
    return kws_request(srv.port, method, target, NULL, NULL, 0, r) ? r->status : -1;
}

static void serves_types_and_bytes(void)
{
    static const uint8_t wasm[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    static const char js[] = "export const x = 1;\n", css[] = "body{margin:0}\n";
    KWT_CHECK(put_file(web, "keywave.wasm", wasm, sizeof wasm));
    KWT_CHECK(put_file(web, "keywave.mjs", js, sizeof js - 1));
    KWT_CHECK(put_file(web, "app.js", js, sizeof js - 1));
    KWT_CHECK(put_file(web, "style.css", css, sizeof css - 1));
    static const struct {
        const char *target, *type;
        const void *body;
        size_t len;
    } cases[] = {
        {"/web/keywave.wasm", "application/wasm", wasm, sizeof wasm},
        {"/web/keywave.mjs", "text/javascript; charset=utf-8", js, sizeof js - 1},
        {"/web/app.js", "text/javascript; charset=utf-8", js, sizeof js - 1},
        {"/web/style.css", "text/css; charset=utf-8", css, sizeof css - 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kws_reply r;
        char value[1024];
        KWT_EQ(get("GET", cases[i].target, &r), 200);
        KWT_CHECK(kws_header(&r, "content-type", value, sizeof value));
        KWT_STREQ(value, cases[i].type);
        KWT_CHECK(r.body_len == cases[i].len && memcmp(r.body, cases[i].body, cases[i].len) == 0);
        KWT_CHECK(kws_header(&r, "content-security-policy", value, sizeof value));
        KWT_STREQ(value, CSP);
        KWT_CHECK(kws_header(&r, "x-content-type-options", value, sizeof value));
        KWT_STREQ(value, "nosniff");
        kws_reply_free(&r);
    }
    kws_reply r;
    KWT_EQ(get("HEAD", "/web/app.js", &r), 200);
    KWT_CHECK(r.body_len == 0);
    kws_reply_free(&r);
    KWT_EQ(get("POST", "/web/app.js", &r), 405);
    kws_reply_free(&r);
}

static void refuses_other_names(void)
{
    KWT_CHECK(put_file(web, "notes.txt", "secret", 6));
    KWT_CHECK(put_file(web, "index.html", "<p>", 3));
    KWT_CHECK(put_file(web, ".hidden.js", "x", 1));
    KWT_CHECK(put_file(web, "noext", "x", 1));
    char outside[PATH_MAX + 32];
    snprintf(outside, sizeof outside, "%s/..", web);
    KWT_CHECK(put_file(outside, "outside.js", "x", 1)); /* build/outside.js */
    static const char *const targets[] = {
        "/web/missing.js",
        "/web/notes.txt",
        "/web/index.html",
        "/web/.hidden.js",
        "/web/noext",
        "/web/..%2foutside.js",
        "/web/%2e%2e%2foutside.js",
        "/web/../outside.js",
        "/web/a%20b.js",
        "/web/sub/app.js",
        "/web/",

    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        kws_reply r;
        int status = get("GET", targets[i], &r);
        if (!KWT_CHECK(status == 404 || status == 400))
            printf("  %s -> %d\n", targets[i], status);
        KWT_CHECK(r.body == NULL || strstr(r.body, "secret") == NULL);
        kws_reply_free(&r);
    }
    /* A name of 65 characters is refused even when the file exists. */
    char name[80];
    memset(name, 'a', 62);
    memcpy(name + 62, ".js", 4);
    KWT_CHECK(put_file(web, name, "x", 1));
    char target[100];
    snprintf(target, sizeof target, "/web/%s", name);
    kws_reply r;
    KWT_EQ(get("GET", target, &r), 404);
    kws_reply_free(&r);
}

static void refuses_huge_files(void)
{
    char path[PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/huge.js", web);
    FILE *f = fopen(path, "wb");
    if (!KWT_CHECK(f != NULL))
        return;
    KWT_CHECK(fseek(f, 8L * 1024 * 1024, SEEK_SET) == 0 && fputc('x', f) != EOF);
    fclose(f);
    kws_reply r;
    KWT_EQ(get("GET", "/web/huge.js", &r), 404);
    kws_reply_free(&r);
}

int main(void)
{
    if (!kws_init("web") || !kws_start(&srv, "srv", NULL)) {
        printf("FAIL setup\n");
        kwt_cases_failed++;
        return kws_finish();
    }
    char build[PATH_MAX + 8];
    snprintf(build, sizeof build, "%s/build", srv.dir);
    snprintf(web, sizeof web, "%s/build/web", srv.dir);
    if (mkdir(build, 0700) != 0 || mkdir(web, 0700) != 0) {
        printf("FAIL mkdir\n");
        kwt_cases_failed++;
        return kws_finish();
    }
    KWT_RUN(serves_types_and_bytes);
    KWT_RUN(refuses_other_names);
    KWT_RUN(refuses_huge_files);
    return kws_finish();
}
