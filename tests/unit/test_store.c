/*
 * test_store.c — the kw_store interface: one table-driven suite run against the memory
 * store and the file store, then what only the file store promises (file modes, key to
 * file name mapping, leftover temporary files, survival of SIGKILL mid-put, failures that
 * leave the old value).
 */
#include "keywave/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "kwtest.h"

/* ---- temporary directories ---- */

/* Removes path and everything under it (the tests' own trees only). */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof sub)
                rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
        return;
    }
    unlink(path);
}

typedef struct tmp_root {
    char root[64]; /* made by mkdtemp */
    char dir[96];  /* root/id: the store's directory, not created */
} tmp_root;

static int tmp_root_make(tmp_root *t)
{
    snprintf(t->root, sizeof t->root, "/tmp/kwstore-XXXXXX");
    if (mkdtemp(t->root) == NULL)
        return -1;
    snprintf(t->dir, sizeof t->dir, "%s/id", t->root);
    return 0;
}

static int open_dir(const tmp_root *t)
{
    return open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Counts entries of the store directory whose name starts with ".tmp-". */
static int count_tmp_files(const tmp_root *t)
{
    DIR *d = opendir(t->dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, ".tmp-", 5) == 0;
    closedir(d);
    return n;
}

static int file_exists(const tmp_root *t, const char *name)
{
    int dfd = open_dir(t);
    struct stat st;
    int ok = dfd >= 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (dfd >= 0)
        close(dfd);
    return ok;
}

/* Writes a file in the store directory behind the store's back. */
static int plant_file(const tmp_root *t, const char *name, const void *data, size_t len)
{
    int dfd = open_dir(t);
    int fd = dfd < 0 ? -1 : openat(dfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return ok ? 0 : -1;
}

/* ---- the implementations under test ---- */

typedef struct impl {
    const char *name;
    int is_file;
} impl;

static const impl impls[] = {{"memory", 0}, {"file", 1}};
static const impl *cur; /* the implementation the generic tests run against */

typedef struct fixture {
    kw_store *s;
    tmp_root t; /* file store only */
} fixture;

static int fixture_open(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    if (!cur->is_file)
        return kw_store_mem_new(&fx->s) == KW_OK ? 0 : -1;
    kw_error err;
    if (tmp_root_make(&fx->t) != 0)
        return -1;
    return kw_store_file_open(fx->t.dir, &fx->s, &err) == KW_OK ? 0 : -1;
}

static void fixture_close(fixture *fx)
{
    kw_store_free(fx->s);
    if (cur->is_file)
        rm_tree(fx->t.root);
}

/* ---- helpers over the interface ---- */

typedef struct key_set {
    char *keys[64];
    size_t n;
    int overflow;
} key_set;

static kw_err collect(void *arg, const char *key)
{
    key_set *ks = arg;
    if (ks->n == sizeof ks->keys / sizeof ks->keys[0]) {
        ks->overflow = 1;
        return KW_OK;
    }
    ks->keys[ks->n++] = strdup(key);
    return KW_OK;
}

static void key_set_free(key_set *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->keys[i]);
    ks->n = 0;
}

static size_t key_set_count(const key_set *ks, const char *key)
{
    size_t c = 0;
    for (size_t i = 0; i < ks->n; i++)
        c += ks->keys[i] != NULL && strcmp(ks->keys[i], key) == 0;
    return c;
}

/* Lists prefix and checks the result is exactly want[0..n), each once. */
static void check_list(kw_store *s, const char *prefix, const char *const *want, size_t n)
{
    key_set ks = {0};
    KWT_ERR(kw_store_list(s, prefix, collect, &ks), KW_OK);
    KWT_EQ(ks.n, n);
    KWT_CHECK(!ks.overflow);
    for (size_t i = 0; i < n; i++)
        if (!KWT_CHECK(key_set_count(&ks, want[i]) == 1))
            printf("    prefix \"%s\": key \"%s\" not listed once\n", prefix, want[i]);
    key_set_free(&ks);
}

/* Checks key holds exactly want[0..len). */
static void check_get(kw_store *s, const char *key, const void *want, size_t len)
{
    uint8_t *val = NULL;
    size_t got = 99;
    kw_err rc = kw_store_get(s, key, &val, &got);
    KWT_ERR(rc, KW_OK);
    if (rc == KW_OK) {
        KWT_EQ(got, len);
        if (got == len && len > 0)
            KWT_MEMEQ(val, want, len);
    }
    free(val);
}

static void check_absent(kw_store *s, const char *key)
{
    uint8_t *val = NULL;
    size_t len = 0;
    KWT_ERR(kw_store_get(s, key, &val, &len), KW_ERR_NOT_FOUND);
    KWT_CHECK(val == NULL);
}

static int put_str(kw_store *s, const char *key, const char *val)
{
    return kw_store_put(s, key, (const uint8_t *)val, strlen(val)) == KW_OK;
}

/* ---- the generic suite ---- */

static char key200[KW_STORE_KEY_MAX + 1], key201[KW_STORE_KEY_MAX + 2];

typedef struct key_case {
    const char *what;
    const char *key;
    kw_err want; /* of put */
} key_case;

static const key_case key_cases[] = {
    {"plain", "prekey/17", KW_OK},
    {"nested slashes", "session/alice/2", KW_OK},
    {"percent", "50%/%25", KW_OK},
    {"spaces", " with  spaces ", KW_OK},
    {"utf-8", "session/Zo\xc3\xab/\xe6\x97\xa5\xe6\x9c\xac", KW_OK},
    {"dot", ".", KW_OK},
    {"dotdot", "..", KW_OK},
    {"like a temp file", ".tmp-1-0", KW_OK},
    {"path traversal", "../a/./b", KW_OK},
    {"control and high bytes", "\x01\t\n\x7f\xff", KW_OK},
    {"200 bytes", key200, KW_OK},
    {"201 bytes", key201, KW_ERR_INVALID_ARGUMENT},
};
#define N_KEY_CASES (sizeof key_cases / sizeof key_cases[0])

/* Value i: empty, binary with NULs, then assorted lengths; all distinct. */
static size_t case_value(size_t i, uint8_t *out, size_t cap)
{
    static const uint8_t nuls[] = {0, 'a', 0, 0, 'b', 0xff, 0};
    if (i == 0)
        return 0;
    if (i == 1) {
        memcpy(out, nuls, sizeof nuls);
        return sizeof nuls;
    }
    size_t len = (i * 397) % cap;
    for (size_t j = 0; j < len; j++)
        out[j] = (uint8_t)(i * 31 + j * 7);
    return len;
}

static void store_key_table(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    uint8_t val[1000];
    const char *stored[N_KEY_CASES];
    size_t n_stored = 0;
    for (size_t i = 0; i < N_KEY_CASES; i++) {
        size_t len = case_value(i, val, sizeof val);
        kw_err rc = kw_store_put(fx.s, key_cases[i].key, val, len);
        if (rc != key_cases[i].want)
            printf("    case \"%s\"\n", key_cases[i].what);
        KWT_ERR(rc, key_cases[i].want);
        if (rc == KW_OK)
            stored[n_stored++] = key_cases[i].key;
    }
    for (size_t i = 0; i < N_KEY_CASES; i++) {
        size_t len = case_value(i, val, sizeof val);
        if (key_cases[i].want == KW_OK)
            check_get(fx.s, key_cases[i].key, val, len);
        else
            check_absent(fx.s, key_cases[i].key);
    }
    check_list(fx.s, "", stored, n_stored);
    fixture_close(&fx);
}

static void store_overwrite(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    KWT_CHECK(put_str(fx.s, "k", "a long first value"));
    KWT_CHECK(put_str(fx.s, "k", "short"));
    check_get(fx.s, "k", "short", 5);
    KWT_CHECK(put_str(fx.s, "k", ""));
    check_get(fx.s, "k", "", 0);
    const char *want[] = {"k"};
    check_list(fx.s, "", want, 1);
    fixture_close(&fx);
}

static void store_delete(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    KWT_CHECK(put_str(fx.s, "a/1", "one"));
    KWT_CHECK(put_str(fx.s, "a/2", "two"));
    KWT_ERR(kw_store_del(fx.s, "a/1"), KW_OK);
    check_absent(fx.s, "a/1");
    check_get(fx.s, "a/2", "two", 3);
    KWT_ERR(kw_store_del(fx.s, "a/1"), KW_OK);         /* again */
    KWT_ERR(kw_store_del(fx.s, "never/there"), KW_OK); /* never stored */
    const char *want[] = {"a/2"};
    check_list(fx.s, "", want, 1);
    KWT_CHECK(put_str(fx.s, "a/1", "back"));
    check_get(fx.s, "a/1", "back", 4);
    fixture_close(&fx);
}

static void store_get_absent(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    check_absent(fx.s, "prekey/1");
    KWT_CHECK(put_str(fx.s, "prekey/1", "x"));
    check_absent(fx.s, "prekey/10");
    check_absent(fx.s, "prekey/");
    check_absent(fx.s, "prekey");
    check_absent(fx.s, key201);
    fixture_close(&fx);
}

static void store_list_prefix(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    static const char *const keys[] = {"session/a/1", "session/a/2", "session/b/1", "sessionx",
                                       "prekey/1",    "%/x",         "sp ace/1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        KWT_CHECK(put_str(fx.s, keys[i], keys[i]));
    check_list(fx.s, "", keys, 7);
    check_list(fx.s, "session/", keys, 3);
    check_list(fx.s, "session/a/", keys, 2);
    check_list(fx.s, "session", keys, 4);
    check_list(fx.s, "session/a/1", keys, 1);
    check_list(fx.s, "session/a/10", NULL, 0);
    check_list(fx.s, "nomatch", NULL, 0);
    check_list(fx.s, "%", keys + 5, 1);
    check_list(fx.s, "sp ", keys + 6, 1);
    fixture_close(&fx);
}

static kw_err stop_at_first(void *arg, const char *key)
{
    (void)key;
    ++*(int *)arg;
    return KW_ERR_STATE;
}

static void store_list_stops(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    KWT_CHECK(put_str(fx.s, "x/1", "1"));
    KWT_CHECK(put_str(fx.s, "x/2", "2"));
    int calls = 0;
    KWT_ERR(kw_store_list(fx.s, "x/", stop_at_first, &calls), KW_ERR_STATE);
    KWT_EQ(calls, 1);
    calls = 0;
    KWT_ERR(kw_store_list(fx.s, "y/", stop_at_first, &calls), KW_OK);
    KWT_EQ(calls, 0);
    fixture_close(&fx);
}

static void store_large_value(void)
{
    fixture fx;
    if (!KWT_CHECK(fixture_open(&fx) == 0))
        return;
    size_t len = 64 * 1024 + 3;
    uint8_t *val = malloc(len);
    if (KWT_CHECK(val != NULL)) {
        for (size_t i = 0; i < len; i++)
            val[i] = (uint8_t)(i * 13 + (i >> 8));
        KWT_ERR(kw_store_put(fx.s, "big", val, len), KW_OK);
        check_get(fx.s, "big", val, len);
    }
    free(val);
    fixture_close(&fx);
}

static void run_generic(void)
{
    for (size_t i = 0; i < sizeof impls / sizeof impls[0]; i++) {
        cur = &impls[i];
        printf("-- %s store\n", cur->name);
        KWT_RUN(store_key_table);
        KWT_RUN(store_overwrite);
        KWT_RUN(store_delete);
        KWT_RUN(store_get_absent);
        KWT_RUN(store_list_prefix);
        KWT_RUN(store_list_stops);
        KWT_RUN(store_large_value);
    }
    cur = &impls[1];
}

/* ---- file store only ---- */

static kw_store *file_open(const tmp_root *t)
{
    kw_store *s = NULL;
    kw_error err = {0};
    kw_err rc = kw_store_file_open(t->dir, &s, &err);
    if (!KWT_CHECK(rc == KW_OK))
        printf("    open: %s: %s\n", kw_err_name(rc), err.detail);
    return s;
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void file_modes_ignore_umask(void)
{
    static const mode_t masks[] = {0, 0777, 022};
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        tmp_root t;
        if (!KWT_CHECK(tmp_root_make(&t) == 0))
            return;
        mode_t old = umask(masks[i]);
        kw_store *s = file_open(&t);
        if (s != NULL) {
            KWT_CHECK(put_str(s, "prekey/1", "secret"));
            KWT_CHECK(put_str(s, "prekey/1", "secret again")); /* replaced: still 0600 */
        }
        umask(old);
        char rec[160];
        snprintf(rec, sizeof rec, "%s/prekey%%2F1", t.dir);
        KWT_EQ(mode_of(t.dir), 0700);
        KWT_EQ(mode_of(rec), 0600);
        kw_store_free(s);
        rm_tree(t.root);
    }
}

#define BOB_KEY                                                                                    \
    "session/b\xc3\xb6"                                                                            \
    "b/1" /* UTF-8 "böb" */

static void file_reopen_sees_data(void)
{
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    if (s != NULL) {
        KWT_CHECK(put_str(s, "identity/own", "key pair"));
        KWT_CHECK(put_str(s, BOB_KEY, "session"));
        KWT_CHECK(put_str(s, "gone", "x"));
        KWT_ERR(kw_store_del(s, "gone"), KW_OK);
    }
    kw_store_free(s);
    s = file_open(&t);
    if (s != NULL) {
        check_get(s, "identity/own", "key pair", 8);
        check_get(s, BOB_KEY, "session", 7);
        check_absent(s, "gone");
        const char *want[] = {"identity/own", BOB_KEY};
        check_list(s, "", want, 2);
    }
    kw_store_free(s);
    rm_tree(t.root);
}

typedef struct name_case {
    const char *key;
    const char *file; /* expected file name, or NULL when put must fail */
} name_case;

static char slash83a[260], slash83ab[260], slash84[260];

static const name_case name_cases[] = {
    {"prekey/17", "prekey%2F17"},
    {"a-b_c.d", "a-b_c.d"},
    {".", "%2E"},
    {"..", "%2E."},
    {".tmp-1-0", "%2Etmp-1-0"},
    {"50%", "50%25"},
    {"a b", "a%20b"},
    {"\xc3\xbc", "%C3%BC"},
    {"\x01\xff", "%01%FF"},
    {slash83a, "*"}, /* 249 + 1 = 250 bytes encoded: the longest name */
    {slash83ab, NULL},
    {slash84, NULL},
    {"", NULL},
};

static void file_key_names(void)
{
    memset(slash83a, '/', 83);
    memcpy(slash83ab, slash83a, 83);
    memcpy(slash83a + 83, "a", 2);
    memcpy(slash83ab + 83, "ab", 3);
    memset(slash84, '/', 84);
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    for (size_t i = 0; s != NULL && i < sizeof name_cases / sizeof name_cases[0]; i++) {
        const name_case *c = &name_cases[i];
        kw_err rc = kw_store_put(s, c->key, (const uint8_t *)"v", 1);
        KWT_ERR(rc, c->file ? KW_OK : KW_ERR_INVALID_ARGUMENT);
        if (c->file == NULL) {
            check_absent(s, c->key);
            KWT_ERR(kw_store_del(s, c->key), KW_OK);
        } else if (strcmp(c->file, "*") != 0 && !KWT_CHECK(file_exists(&t, c->file))) {
            printf("    no file \"%s\"\n", c->file);
        }
    }
    if (s != NULL)
        check_get(s, slash83a, "v", 1);
    KWT_EQ(count_tmp_files(&t), 0);
    kw_store_free(s);
    rm_tree(t.root);
}

/* Files no put makes: none may be listed (nor removed: they are not ours). */
static void file_foreign_names_not_listed(void)
{
    static const char *const foreign[] = {"%41", "a b",  "%2f",     "%zz",    "%",
                                          "%4",  "%00x", ".hidden", "%2E%2E", "a%2"};
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        KWT_CHECK(plant_file(&t, foreign[i], "x", 1) == 0);
    if (s != NULL) {
        KWT_CHECK(put_str(s, "ok", "v"));
        const char *want[] = {"ok"};
        check_list(s, "", want, 1);
        kw_store_free(s);
    }
    s = file_open(&t); /* reopening keeps them too */
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        KWT_CHECK(file_exists(&t, foreign[i]));
    kw_store_free(s);
    rm_tree(t.root);
}

static void file_leftover_tmp_removed(void)
{
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    if (s == NULL) {
        rm_tree(t.root);
        return;
    }
    KWT_CHECK(put_str(s, "session/x/1", "old value"));
    /* What a crash leaves: a torn temp file of the next value, an empty one, odd ones. */
    KWT_CHECK(plant_file(&t, ".tmp-4242-0", "new va", 6) == 0);
    KWT_CHECK(plant_file(&t, ".tmp-4242-1", "", 0) == 0);
    KWT_CHECK(plant_file(&t, ".tmp-", "x", 1) == 0);
    KWT_CHECK(plant_file(&t, ".tmp-session%2Fx%2F1", "x", 1) == 0);
    KWT_EQ(count_tmp_files(&t), 4);
    const char *want[] = {"session/x/1"};
    check_list(s, "", want, 1); /* never listed, even before the sweep */
    check_get(s, "session/x/1", "old value", 9);
    kw_store_free(s);
    s = file_open(&t);
    KWT_EQ(count_tmp_files(&t), 0);
    if (s != NULL) {
        check_list(s, "", want, 1);
        check_get(s, "session/x/1", "old value", 9);
    }
    kw_store_free(s);
    rm_tree(t.root);
}

/* ---- SIGKILL in the middle of puts ---- */

#define CRASH_RECORDS 3
#define CRASH_BYTES   4096
#define CRASH_ROUNDS  10

/* A self-checking value: 8-byte counter, its SHA-256, then bytes derived from both. */
static void crash_value(uint64_t counter, uint8_t out[CRASH_BYTES])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(counter >> (56 - 8 * i));
    if (kw_sha256(out, 8, out + 8) != KW_OK)
        memset(out + 8, 0, KW_SHA256_BYTES);
    for (size_t j = 8 + KW_SHA256_BYTES; j < CRASH_BYTES; j++)
        out[j] = (uint8_t)(out[8 + j % KW_SHA256_BYTES] ^ j);
}

/* Returns the value's counter, or UINT64_MAX when it is not a complete crash_value. */
static uint64_t crash_check(const uint8_t *val, size_t len)
{
    static uint8_t want[CRASH_BYTES];
    if (len != CRASH_BYTES)
        return UINT64_MAX;
    uint64_t counter = 0;
    for (int i = 0; i < 8; i++)
        counter = counter << 8 | val[i];
    crash_value(counter, want);
    return memcmp(val, want, CRASH_BYTES) == 0 ? counter : UINT64_MAX;
}

/* The child: overwrites the records in turn until killed; tells ready once each exists. */
static void crash_child(const tmp_root *t, int ready_fd, uint64_t start)
{
    static uint8_t val[CRASH_BYTES];
    kw_store *s = NULL;
    if (kw_store_file_open(t->dir, &s, NULL) != KW_OK)
        _exit(2);
    for (uint64_t c = start; c < start + 1000000; c++) {
        char key[32];
        snprintf(key, sizeof key, "crash/%u", (unsigned)(c % CRASH_RECORDS));
        crash_value(c, val);
        if (kw_store_put(s, key, val, CRASH_BYTES) != KW_OK)
            _exit(3);
        if (c == start + CRASH_RECORDS - 1 && write(ready_fd, "r", 1) != 1)
            _exit(4);
    }
    _exit(0);
}

static uint32_t lcg_next(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

/* After a kill: every record is present, complete, and from this round. */
static void crash_verify(const tmp_root *t, uint64_t start)
{
    kw_store *s = file_open(t);
    KWT_EQ(count_tmp_files(t), 0);
    for (int k = 0; s != NULL && k < CRASH_RECORDS; k++) {
        char key[32];
        snprintf(key, sizeof key, "crash/%d", k);
        uint8_t *val = NULL;
        size_t len = 0;
        KWT_ERR(kw_store_get(s, key, &val, &len), KW_OK);
        uint64_t counter = crash_check(val, len);
        if (!KWT_CHECK(counter != UINT64_MAX && counter >= start))
            printf("    record %s: %zu bytes, not a whole value of this round\n", key, len);
        free(val);
    }
    kw_store_free(s);
}

static void file_survives_sigkill(void)
{
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    uint32_t seed = 20240607u; /* fixed: the same delays every run */
    int leftovers = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        uint64_t start = (uint64_t)round * 1000000u;
        int p[2];
        if (!KWT_CHECK(pipe(p) == 0))
            break;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            crash_child(&t, p[1], start);
        }
        close(p[1]);
        char ready = 0;
        KWT_CHECK(pid > 0 && read(p[0], &ready, 1) == 1);
        close(p[0]);
        struct timespec delay = {0, (long)(lcg_next(&seed) % 20000u) * 1000L};
        nanosleep(&delay, NULL);
        int status = 0;
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        KWT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        leftovers += count_tmp_files(&t) > 0;
        crash_verify(&t, start);
    }
    printf("    %d of %d kills left a temporary file\n", leftovers, CRASH_ROUNDS);
    rm_tree(t.root);
}

/* ---- failures ---- */

static void file_open_errors(void)
{
    kw_store *s = (kw_store *)&s; /* must be reset to NULL */
    kw_error err = {0};
    KWT_ERR(kw_store_file_open("/tmp/kwstore-no-such-parent-4242/x/id", &s, &err), KW_ERR_IO);
    KWT_CHECK(s == NULL);
    KWT_ERR(err.code, KW_ERR_IO);
    KWT_CHECK(strstr(err.detail, "mkdir") != NULL);
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    KWT_CHECK(mkdir(t.dir, 0700) == 0);
    KWT_CHECK(plant_file(&t, "f", "x", 1) == 0);
    char path[160];
    snprintf(path, sizeof path, "%s/f", t.dir);
    KWT_ERR(kw_store_file_open(path, &s, &err), KW_ERR_IO); /* a file, not a directory */
    KWT_CHECK(s == NULL);
    rm_tree(t.root);
}

/* A record's name taken by a directory: put fails cleanly, get and del report it. */
static void file_put_over_directory_fails(void)
{
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    if (s == NULL) {
        rm_tree(t.root);
        return;
    }
    char sub[160];
    snprintf(sub, sizeof sub, "%s/rec", t.dir);
    KWT_CHECK(mkdir(sub, 0700) == 0);
    KWT_CHECK(put_str(s, "other", "kept"));
    KWT_ERR(kw_store_put(s, "rec", (const uint8_t *)"new", 3), KW_ERR_IO);
    KWT_EQ(count_tmp_files(&t), 0);
    struct stat st;
    KWT_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    uint8_t *val = NULL;
    size_t len = 0;
    KWT_ERR(kw_store_get(s, "rec", &val, &len), KW_ERR_STORE);
    KWT_CHECK(val == NULL);
    KWT_ERR(kw_store_del(s, "rec"), KW_ERR_IO);
    check_get(s, "other", "kept", 4);
    kw_store_free(s);
    rm_tree(t.root);
}

/* A write that fails midway (file size limit) leaves the old value and no temp file. */
static void file_failed_write_keeps_old(void)
{
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    KWT_CHECK(s != NULL && put_str(s, "session/a/1", "old value"));
    kw_store_free(s);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        static uint8_t big[8192];
        struct rlimit lim = {1024, 1024};
        kw_store *cs = NULL;
        if (kw_store_file_open(t.dir, &cs, NULL) != KW_OK)
            _exit(100);
        signal(SIGXFSZ, SIG_IGN); /* so write fails with EFBIG instead of killing */
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(101);
        memset(big, 'n', sizeof big);
        _exit((int)kw_store_put(cs, "session/a/1", big, sizeof big));
    }
    int status = 0;
    KWT_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    KWT_CHECK(WIFEXITED(status));
    KWT_ERR((kw_err)WEXITSTATUS(status), KW_ERR_IO);
    KWT_EQ(count_tmp_files(&t), 0); /* removed by the failing put, not by a reopen */
    s = file_open(&t);
    if (s != NULL)
        check_get(s, "session/a/1", "old value", 9);
    kw_store_free(s);
    rm_tree(t.root);
}

/* Only meaningful without root, which ignores permissions; skipped (and said so) as root. */
static void file_readonly_dir_keeps_old(void)
{
    if (geteuid() == 0) {
        printf("    skipped: root ignores directory permissions\n");
        return;
    }
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    if (s != NULL) {
        KWT_CHECK(put_str(s, "k", "old"));
        KWT_CHECK(chmod(t.dir, 0500) == 0);
        KWT_ERR(kw_store_put(s, "k", (const uint8_t *)"new", 3), KW_ERR_IO);
        check_get(s, "k", "old", 3);
        KWT_CHECK(chmod(t.dir, 0700) == 0);
    }
    kw_store_free(s);
    rm_tree(t.root);
}

static void file_size_limit(void)
{
    const size_t max = 1024 * 1024;
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    uint8_t *big = calloc(1, max + 1);
    if (s != NULL && KWT_CHECK(big != NULL)) {
        big[0] = 1;
        big[max - 1] = 2;
        KWT_ERR(kw_store_put(s, "max", big, max), KW_OK);
        check_get(s, "max", big, max);
        KWT_ERR(kw_store_put(s, "max", big, max + 1), KW_ERR_INVALID_ARGUMENT);
        check_get(s, "max", big, max);
        /* A record grown behind the store's back is refused, not read. */
        KWT_CHECK(plant_file(&t, "huge", big, max + 1) == 0);
        uint8_t *val = NULL;
        size_t len = 0;
        KWT_ERR(kw_store_get(s, "huge", &val, &len), KW_ERR_STORE);
        KWT_CHECK(val == NULL);
    }
    free(big);
    kw_store_free(s);
    rm_tree(t.root);
}

/* Symlinks and FIFOs under a record's name are neither followed nor waited on. */
static void file_special_files(void)
{
    tmp_root t;
    if (!KWT_CHECK(tmp_root_make(&t) == 0))
        return;
    kw_store *s = file_open(&t);
    char target[160];
    snprintf(target, sizeof target, "%s/outside", t.root);
    int dfd = open_dir(&t);
    int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    KWT_CHECK(fd >= 0 && write(fd, "outside", 7) == 7);
    if (fd >= 0)
        close(fd);
    KWT_CHECK(dfd >= 0 && symlinkat(target, dfd, "link") == 0);
    KWT_CHECK(dfd >= 0 && mkfifoat(dfd, "fifo", 0600) == 0);
    if (s != NULL) {
        uint8_t *val = NULL;
        size_t len = 0;
        KWT_CHECK(kw_store_get(s, "link", &val, &len) != KW_OK);
        KWT_CHECK(val == NULL);
        KWT_ERR(kw_store_get(s, "fifo", &val, &len), KW_ERR_STORE);
        KWT_CHECK(put_str(s, "link", "replaced")); /* replaces the link itself */
        check_get(s, "link", "replaced", 8);
    }
    char buf[16] = {0};
    fd = open(target, O_RDONLY | O_CLOEXEC);
    KWT_CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 7 && memcmp(buf, "outside", 7) == 0);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    kw_store_free(s);
    rm_tree(t.root);
}

int main(void)
{
    memset(key200, 'k', KW_STORE_KEY_MAX);
    memset(key201, 'k', KW_STORE_KEY_MAX + 1);
    run_generic();
    printf("-- file store only\n");
    KWT_RUN(file_modes_ignore_umask);
    KWT_RUN(file_reopen_sees_data);
    KWT_RUN(file_key_names);
    KWT_RUN(file_foreign_names_not_listed);
    KWT_RUN(file_leftover_tmp_removed);
    KWT_RUN(file_survives_sigkill);
    KWT_RUN(file_open_errors);
    KWT_RUN(file_put_over_directory_fails);
    KWT_RUN(file_failed_write_keeps_old);
    KWT_RUN(file_readonly_dir_keeps_old);
    KWT_RUN(file_size_limit);
    KWT_RUN(file_special_files);
    return kwt_finish();
}
