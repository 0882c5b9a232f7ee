/*
 * store_file.c — the kw_store kept in files: one directory per identity, one 0600 file per
 * record. A put writes a temporary file, fsyncs it, renames it over the record's name and
 * fsyncs the directory, so after a crash at any point a reader sees the old value or the
 * new one, never a torn one; opening removes the temporary files such a crash leaves.
 * Every call is relative to one O_DIRECTORY descriptor, so the path is resolved once.
 *
 * Keys become file names reversibly: bytes in [A-Za-z0-9_.-] stay, every other byte
 * (including '/' and '%') becomes %XX, and so does a leading '.', so no record is named
 * ".", ".." or like a temporary file. This is the only file of libkeywave that touches
 * the filesystem; the wasm build leaves it out.
 */
#include "keywave/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

#define TMP_PREFIX ".tmp-"
/* Longest encoded file name; below NAME_MAX (255) on every filesystem we target. */
#define FILE_NAME_MAX 250
/* Largest record; Signal records are a few KiB, so more means a damaged store. */
#define FILE_VALUE_MAX (1024L * 1024L)

typedef struct file_store {
    int dfd;           /* O_DIRECTORY descriptor of the identity directory, owned */
    unsigned long seq; /* makes temporary names unique within this process */
} file_store;

static int is_tmp_name(const char *name)
{
    return strncmp(name, TMP_PREFIX, sizeof TMP_PREFIX - 1) == 0;
}

static int keeps_byte(unsigned char c, size_t pos)
{
    if (c == '.')
        return pos > 0; /* a leading dot could make ".", ".." or a temporary name */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Encodes key into name; KW_ERR_INVALID_ARGUMENT when no record can have that key. */
static kw_err name_encode(const char *key, char name[FILE_NAME_MAX + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    size_t klen = strlen(key), n = 0;
    if (klen == 0 || klen > KW_STORE_KEY_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        int keep = keeps_byte(c, i);
        if (n + (keep ? 1 : 3) > FILE_NAME_MAX)
            return KW_ERR_INVALID_ARGUMENT;
        if (keep) {
            name[n++] = (char)c;
            continue;
        }
        name[n++] = '%';
        name[n++] = hex[c >> 4];
        name[n++] = hex[c & 15];
    }
    name[n] = '\0';
    return KW_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes a file name into key. Returns 0 only for a name that name_encode produces
 * (checked by encoding again), so temporary and foreign files never decode.
 */
static int name_decode(const char *name, char key[KW_STORE_KEY_MAX + 1])
{
    size_t n = 0;
    for (size_t i = 0; name[i] != '\0'; n++) {
        if (n == KW_STORE_KEY_MAX)
            return -1;
        if (name[i] != '%') {
            key[n] = name[i++];
            continue;
        }
        int hi = hex_value(name[i + 1]);
        int lo = hi < 0 ? -1 : hex_value(name[i + 2]);
        if (lo < 0 || (hi | lo) == 0)
            return -1;
        key[n] = (char)(hi * 16 + lo);
        i += 3;
    }
    key[n] = '\0';
    char again[FILE_NAME_MAX + 1];
    return name_encode(key, again) == KW_OK && strcmp(again, name) == 0 ? 0 : -1;
}

static kw_err dir_sync(file_store *f)
{
    return fsync(f->dfd) == 0 ? KW_OK : KW_ERR_IO;
}

/* Writes all of buf, continuing after short writes and EINTR. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until EOF or cap bytes; *got is the count. */
static int read_full(int fd, uint8_t *buf, size_t cap, size_t *got)
{
    *got = 0;
    while (*got < cap) {
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

/* Creates a new temporary file, mode 0600 whatever the umask; returns its fd or -1. */
static int tmp_create(file_store *f, char *tmp, size_t cap)
{
    for (int tries = 0; tries < 16; tries++) {
        int len = snprintf(tmp, cap, TMP_PREFIX "%ld-%lu", (long)getpid(), f->seq++);
        if (len < 0 || (size_t)len >= cap)
            return -1;
        int fd = openat(f->dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno == EEXIST)
            continue; /* left by an earlier process with our pid */
        if (fd < 0)
            return -1;
        if (fchmod(fd, 0600) == 0)
            return fd;
        close(fd);
        unlinkat(f->dfd, tmp, 0);
        return -1;
    }
    return -1;
}

/*
 * Temp file, fsync, rename, fsync the directory: the rename is the commit point. A
 * failure before it removes the temp file and leaves the old record; a failed directory
 * fsync after it still reports KW_ERR_IO, since the new value may not survive a crash.
 * KW_ERR_INVALID_ARGUMENT for a key no file can be named after or a value over 1 MiB.
 */
static kw_err file_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    file_store *f = ctx;
    char name[FILE_NAME_MAX + 1], tmp[64];
    if (len > FILE_VALUE_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    kw_err rc = name_encode(key, name);
    if (rc != KW_OK)
        return rc;
    int fd = tmp_create(f, tmp, sizeof tmp);
    if (fd < 0)
        return KW_ERR_IO;
    int ok = write_all(fd, val, len) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && renameat(f->dfd, tmp, f->dfd, name) == 0)
        return dir_sync(f);
    unlinkat(f->dfd, tmp, 0); /* the old record was never touched */
    return KW_ERR_IO;
}

/* Reads the open record fd whole; on failure nothing is returned. */
static kw_err read_record(int fd, uint8_t **val, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return KW_ERR_IO;
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || st.st_size > FILE_VALUE_MAX)
        return KW_ERR_STORE;
    size_t size = (size_t)st.st_size, got = 0, extra = 0;
    uint8_t probe, *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return KW_ERR_NOMEM;
    kw_err rc = KW_ERR_IO;
    if (read_full(fd, buf, size, &got) == 0 && read_full(fd, &probe, 1, &extra) == 0)
        rc = got == size && extra == 0 ? KW_OK : KW_ERR_STORE; /* changed while read */
    if (rc != KW_OK) {
        kw_wipe(buf, size);
        free(buf);
        return rc;
    }
    *val = buf;
    *len = size;
    return KW_OK;
}

static kw_err file_get(void *ctx, const char *key, uint8_t **val, size_t *len)
{
    file_store *f = ctx;
    char name[FILE_NAME_MAX + 1];
    if (name_encode(key, name) != KW_OK)
        return KW_ERR_NOT_FOUND; /* no put accepts such a key, so it is never stored */
    /* O_NONBLOCK: a FIFO planted under a record's name must not hang the reader. */
    int fd = openat(f->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
    kw_err rc = read_record(fd, val, len);
    close(fd);
    return rc;
}

static kw_err file_del(void *ctx, const char *key)
{
    file_store *f = ctx;
    char name[FILE_NAME_MAX + 1];
    if (name_encode(key, name) != KW_OK)
        return KW_OK; /* never stored */
    if (unlinkat(f->dfd, name, 0) != 0)
        return errno == ENOENT ? KW_OK : KW_ERR_IO;
    return dir_sync(f);
}

/*
 * Calls fn(arg, name) for every entry of the directory but "." and "..", through a fresh
 * descriptor so each walk starts at the beginning; stops at the first non-KW_OK.
 */
static kw_err dir_walk(int dfd, kw_err (*fn)(void *arg, const char *name), void *arg)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return KW_ERR_IO;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return KW_ERR_IO;
    }
    kw_err rc = KW_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            rc = errno != 0 ? KW_ERR_IO : KW_OK;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = fn(arg, e->d_name);
        if (rc != KW_OK)
            break;
    }
    closedir(d);
    return rc;
}

typedef struct list_walk {
    const char *prefix;
    size_t prefix_len;
    kw_err (*each)(void *arg, const char *key);
    void *arg;
} list_walk;

static kw_err list_entry(void *arg, const char *name)
{
    list_walk *w = arg;
    char key[KW_STORE_KEY_MAX + 1];
    if (is_tmp_name(name) || name_decode(name, key) != 0)
        return KW_OK; /* not a record */
    if (strncmp(key, w->prefix, w->prefix_len) != 0)
        return KW_OK;
    return w->each(w->arg, key);
}

static kw_err file_list(void *ctx, const char *prefix, kw_err (*each)(void *, const char *),
                        void *arg)
{
    file_store *f = ctx;
    list_walk w = {prefix, strlen(prefix), each, arg};
    return dir_walk(f->dfd, list_entry, &w);
}

static void file_destroy(void *ctx)
{
    file_store *f = ctx;
    close(f->dfd);
    free(f);
}

static const kw_store_ops file_ops = {file_get, file_put, file_del, file_list, file_destroy};

static kw_err io_error(kw_error *err, const char *what)
{
    /* Only the step and errno's text: the path may name a user, values never appear. */
    return kw_error_set(err, KW_ERR_IO, "store directory: %s: %s", what, strerror(errno));
}

/* Opens dir, creating it 0700 (whatever the umask) and making the new entry durable. */
static kw_err dir_open(const char *dir, int *dfd, kw_error *err)
{
    int created = mkdir(dir, 0700) == 0;
    if (!created && errno != EEXIST)
        return io_error(err, "mkdir");
    /* mkdir's mode passed through the umask; fix it before open, which needs r-x. */
    if (created && chmod(dir, 0700) != 0)
        return io_error(err, "chmod");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, "open");
    if (created) {
        int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int ok = parent >= 0 && fsync(parent) == 0;
        kw_err rc = ok ? KW_OK : io_error(err, "fsync parent");
        if (parent >= 0)
            close(parent);
        if (rc != KW_OK) {
            close(fd);
            return rc;
        }
    }
    *dfd = fd;
    return KW_OK;
}

static kw_err sweep_entry(void *arg, const char *name)
{
    file_store *f = arg;
    if (!is_tmp_name(name))
        return KW_OK;
    if (unlinkat(f->dfd, name, 0) != 0 && errno != ENOENT)
        return KW_ERR_IO;
    return KW_OK;
}

/* Removes the temporary files a crash between create and rename left behind. */
static kw_err tmp_sweep(file_store *f, kw_error *err)
{
    if (dir_walk(f->dfd, sweep_entry, f) != KW_OK || dir_sync(f) != KW_OK)
        return io_error(err, "remove temporary files");
    return KW_OK;
}

kw_err kw_store_file_open(const char *dir, kw_store **out, kw_error *err)
{
    *out = NULL;
    kw_err rc = KW_ERR_NOMEM;
    kw_store *s = calloc(1, sizeof *s);
    file_store *f = calloc(1, sizeof *f);
    if (f != NULL)
        f->dfd = -1;
    if (s == NULL || f == NULL) {
        kw_error_set(err, rc, "store: out of memory");
        goto fail;
    }
    rc = dir_open(dir, &f->dfd, err);
    if (rc != KW_OK)
        goto fail;
    rc = tmp_sweep(f, err);
    if (rc != KW_OK)
        goto fail;
    s->ops = &file_ops;
    s->ctx = f;
    *out = s;
    return KW_OK;
fail:
    if (f != NULL && f->dfd >= 0)
        close(f->dfd);
    free(f);
    free(s);
    return rc;
}
