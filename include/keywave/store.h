/*
 * store.h — where libkeywave keeps a local identity's records: one small key/value
 * interface (kw_store) that every Signal store callback (identity, pre-key, signed
 * pre-key, session, sender key) and the key lifecycle's metadata are written on top of.
 *
 * Keys are short printable strings made by the library ("prekey/17", "session/<name>/2");
 * values are opaque bytes (serialized Signal records, metadata). Each put replaces one
 * record atomically: after a crash a reader sees the old value or the new one, never a
 * mix. Operations that span records are ordered by the callers so that any prefix of
 * them leaves a usable state.
 *
 * Two implementations: memory (tests, the browser's tab) and files (one directory per
 * identity, 0600 files, write-to-temp + fsync + rename). A store is used from one thread.
 */
#ifndef KEYWAVE_STORE_H
#define KEYWAVE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"

/*
 * Longest key accepted by any store, in bytes, without the NUL. Every store accepts keys of
 * 1..KW_STORE_KEY_MAX printable ASCII bytes (what the library makes); a store may refuse
 * other keys with KW_ERR_INVALID_ARGUMENT (put) or treat them as absent (get, del).
 */
#define KW_STORE_KEY_MAX 200

typedef struct kw_store_ops {
    /*
     * Reads key. On KW_OK *val is malloc'd and owned by the caller (wipe before free if it
     * may hold a secret) and *len set; KW_ERR_NOT_FOUND when absent; KW_ERR_STORE/IO.
     */
    kw_err (*get)(void *ctx, const char *key, uint8_t **val, size_t *len);
    /*
     * Creates or atomically replaces key with val[0..len). val is borrowed. Returns KW_OK,
     * KW_ERR_INVALID_ARGUMENT (empty or unrepresentable key, value over 1 MiB), KW_ERR_IO,
     * KW_ERR_NOMEM.
     */
    kw_err (*put)(void *ctx, const char *key, const uint8_t *val, size_t len);
    /* Removes key; KW_OK also when it was absent. */
    kw_err (*del)(void *ctx, const char *key);
    /*
     * Calls each(arg, key) for every key starting with prefix, in no set order; stops and
     * returns the first non-KW_OK result of each. The key string is valid during the call.
     * each must not modify the store.
     */
    kw_err (*list)(void *ctx, const char *prefix, kw_err (*each)(void *arg, const char *key),
                   void *arg);
    /* Frees ctx and everything it holds, wiping record contents. */
    void (*destroy)(void *ctx);
} kw_store_ops;

typedef struct kw_store {
    const kw_store_ops *ops;
    void *ctx;
} kw_store;

/* Thin wrappers over ops, so callers never touch the table. */
KW_MUST_CHECK kw_err kw_store_get(kw_store *s, const char *key, uint8_t **val, size_t *len);
KW_MUST_CHECK kw_err kw_store_put(kw_store *s, const char *key, const uint8_t *val, size_t len);
KW_MUST_CHECK kw_err kw_store_del(kw_store *s, const char *key);
KW_MUST_CHECK kw_err kw_store_list(kw_store *s, const char *prefix,
                                   kw_err (*each)(void *arg, const char *key), void *arg);

/* Frees a store made by a constructor below. Accepts NULL. */
void kw_store_free(kw_store *s);

/*
 * A store in memory. *out is owned by the caller (kw_store_free). Returns KW_OK or
 * KW_ERR_NOMEM.
 */
KW_MUST_CHECK kw_err kw_store_mem_new(kw_store **out);

/*
 * A store in directory dir (created 0700 if missing; parent must exist). Each record is
 * one 0600 file; a put writes a temporary file, fsyncs it, renames it over the record and
 * fsyncs the directory. Opening removes temporary files a crash left behind. *out is
 * owned by the caller. Returns KW_OK, KW_ERR_IO (with errno's text in err), KW_ERR_NOMEM.
 * This is the only part of libkeywave that touches files; the wasm build leaves it out.
 */
KW_MUST_CHECK kw_err kw_store_file_open(const char *dir, kw_store **out, kw_error *err);

#endif
