/*
 * store.c — the kw_store wrappers and the in-memory store. The memory store is a plain
 * array of records (an identity holds tens to a few hundred), searched linearly; it
 * wipes every value it drops.
 */
#include "keywave/store.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

kw_err kw_store_get(kw_store *s, const char *key, uint8_t **val, size_t *len)
{
    return s->ops->get(s->ctx, key, val, len);
}

kw_err kw_store_put(kw_store *s, const char *key, const uint8_t *val, size_t len)
{
    return s->ops->put(s->ctx, key, val, len);
}

kw_err kw_store_del(kw_store *s, const char *key)
{
    return s->ops->del(s->ctx, key);
}

kw_err kw_store_list(kw_store *s, const char *prefix, kw_err (*each)(void *, const char *),
                     void *arg)
{
    return s->ops->list(s->ctx, prefix, each, arg);
}

void kw_store_free(kw_store *s)
{
    if (s == NULL)
        return;
    s->ops->destroy(s->ctx);
    free(s);
}

#define MEM_VALUE_MAX (1024L * 1024L)

typedef struct mem_record {
    char *key;    /* owned */
    uint8_t *val; /* owned, wiped on drop */
    size_t len;
} mem_record;

typedef struct mem_store {
    mem_record *recs; /* owned */
    size_t n, cap;
} mem_store;

static mem_record *mem_find(mem_store *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->recs[i].key, key) == 0)
            return &m->recs[i];
    return NULL;
}

static void mem_drop_value(mem_record *r)
{
    if (r->val) {
        kw_wipe(r->val, r->len);
        free(r->val);
    }
    r->val = NULL;
    r->len = 0;
}

static kw_err mem_get(void *ctx, const char *key, uint8_t **val, size_t *len)
{
    mem_record *r = mem_find(ctx, key);
    if (r == NULL)
        return KW_ERR_NOT_FOUND;
    *val = malloc(r->len ? r->len : 1);
    if (*val == NULL)
        return KW_ERR_NOMEM;
    memcpy(*val, r->val, r->len);
    *len = r->len;
    return KW_OK;
}

static kw_err mem_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    mem_store *m = ctx;
    size_t klen = strlen(key);
    /* The same key and value limits as the file store, so code tested on memory holds. */
    if (klen == 0 || klen > KW_STORE_KEY_MAX || len > MEM_VALUE_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return KW_ERR_NOMEM;
    memcpy(copy, val, len);
    mem_record *r = mem_find(m, key);
    if (r == NULL) {
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 32;
            mem_record *recs = realloc(m->recs, cap * sizeof *recs);
            if (recs == NULL)
                goto nomem;
            m->recs = recs;
            m->cap = cap;
        }
        char *k = strdup(key);
        if (k == NULL)
            goto nomem;
        r = &m->recs[m->n++];
        r->key = k;
        r->val = NULL;
        r->len = 0;
    }
    mem_drop_value(r);
    r->val = copy;
    r->len = len;
    return KW_OK;
nomem:
    kw_wipe(copy, len);
    free(copy);
    return KW_ERR_NOMEM;
}

static kw_err mem_del(void *ctx, const char *key)
{
    mem_store *m = ctx;
    mem_record *r = mem_find(m, key);
    if (r == NULL)
        return KW_OK;
    mem_drop_value(r);
    free(r->key);
    *r = m->recs[--m->n];
    return KW_OK;
}

static kw_err mem_list(void *ctx, const char *prefix, kw_err (*each)(void *, const char *),
                       void *arg)
{
    mem_store *m = ctx;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < m->n; i++) {
        if (strncmp(m->recs[i].key, prefix, plen) != 0)
            continue;
        kw_err rc = each(arg, m->recs[i].key);
        if (rc != KW_OK)
            return rc;
    }
    return KW_OK;
}

static void mem_destroy(void *ctx)
{
    mem_store *m = ctx;
    for (size_t i = 0; i < m->n; i++) {
        mem_drop_value(&m->recs[i]);
        free(m->recs[i].key);
    }
    free(m->recs);
    free(m);
}

static const kw_store_ops mem_ops = {mem_get, mem_put, mem_del, mem_list, mem_destroy};

kw_err kw_store_mem_new(kw_store **out)
{
    *out = NULL;
    kw_store *s = calloc(1, sizeof *s);
    mem_store *m = calloc(1, sizeof *m);
    if (s == NULL || m == NULL) {
        free(s);
        free(m);
        return KW_ERR_NOMEM;
    }
    s->ops = &mem_ops;
    s->ctx = m;
    *out = s;
    return KW_OK;
}
