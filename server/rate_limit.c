/*
 * rate_limit.c — sliding-window rate limiter (rate_limit.h): an open-addressing hash
 * table with linear probing and backward-shift deletion, so there are no tombstones and
 * memory never grows after creation. Each slot keeps its pair's hit times oldest first.
 */
#include "rate_limit.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define KEY_BYTES 16

typedef struct slot {
    uint8_t key[KEY_BYTES]; /* first 128 bits of SHA-256(subject NUL object) */
    uint32_t n_hits;        /* hits kept, oldest first in the hits array */
    uint8_t used;
} slot;

struct kw_rate_limit {
    uint32_t limit;
    int64_t window_ms;
    size_t capacity; /* most pairs held at once */
    size_t n_used;
    size_t mask;   /* table size - 1 (a power of two, at least 2 * capacity) */
    slot *slots;   /* owned */
    int64_t *hits; /* owned; limit entries per slot */
};

kw_err kw_rate_limit_new(uint32_t limit, int64_t window_ms, size_t capacity, kw_rate_limit **out)
{
    *out = NULL;
    if (limit == 0 || limit > KW_RATE_LIMIT_HITS_MAX || window_ms <= 0 || capacity == 0 ||
        capacity > KW_RATE_LIMIT_CAPACITY_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    size_t size = 2;
    while (size < 2 * capacity)
        size *= 2;
    kw_rate_limit *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        goto fail;
    rl->limit = limit;
    rl->window_ms = window_ms;
    rl->capacity = capacity;
    rl->mask = size - 1;
    rl->slots = calloc(size, sizeof *rl->slots);
    rl->hits = calloc(size * limit, sizeof *rl->hits);
    if (rl->slots == NULL || rl->hits == NULL)
        goto fail;
    *out = rl;
    return KW_OK;
fail:
    kw_rate_limit_free(rl);
    return KW_ERR_NOMEM;
}

void kw_rate_limit_free(kw_rate_limit *rl)
{
    if (rl == NULL)
        return;
    free(rl->slots);
    free(rl->hits);
    free(rl);
}

static kw_err pair_key(const char *subject, const char *object, uint8_t key[KEY_BYTES])
{
    size_t ls = strlen(subject), lo = strlen(object);
    /* Hash "subject\0object" without a copy for the common short case. */
    char stack[512];
    char *buf = ls + lo + 1 <= sizeof stack ? stack : malloc(ls + lo + 1);
    if (buf == NULL)
        return KW_ERR_NOMEM;
    memcpy(buf, subject, ls);
    buf[ls] = '\0';
    memcpy(buf + ls + 1, object, lo);
    uint8_t digest[KW_SHA256_BYTES];
    kw_err rc = kw_sha256((const uint8_t *)buf, ls + lo + 1, digest);
    if (buf != stack)
        free(buf);
    if (rc == KW_OK)
        memcpy(key, digest, KEY_BYTES);
    return rc;
}

static size_t home_of(const kw_rate_limit *rl, const uint8_t key[KEY_BYTES])
{
    uint64_t h = 0;
    memcpy(&h, key, sizeof h);
    return (size_t)h & rl->mask;
}

/* Index of the slot holding key, or of the empty slot where it would go. */
static size_t find(const kw_rate_limit *rl, const uint8_t key[KEY_BYTES])
{
    size_t i = home_of(rl, key);
    while (rl->slots[i].used && memcmp(rl->slots[i].key, key, KEY_BYTES) != 0)
        i = (i + 1) & rl->mask;
    return i;
}

/* Drops the hits of slot i that left the window at now_ms. */
static void expire_hits(kw_rate_limit *rl, size_t i, int64_t now_ms)
{
    int64_t *h = rl->hits + i * rl->limit;
    uint32_t n = rl->slots[i].n_hits, k = 0;
    while (k < n && h[k] + rl->window_ms <= now_ms)
        k++;
    if (k > 0) {
        memmove(h, h + k, (size_t)(n - k) * sizeof *h);
        rl->slots[i].n_hits = n - k;
    }
}

/* Empties slot i, moving later entries of its probe run back (no tombstones). */
static void remove_at(kw_rate_limit *rl, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & rl->mask;
        if (!rl->slots[j].used)
            break;
        size_t k = home_of(rl, rl->slots[j].key);
        /* Entry j may fill hole i only if its home is not in (i, j] cyclically. */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        rl->slots[i] = rl->slots[j];
        memcpy(rl->hits + i * rl->limit, rl->hits + j * rl->limit, rl->limit * sizeof *rl->hits);
        i = j;
    }
    memset(&rl->slots[i], 0, sizeof rl->slots[i]);
    rl->n_used--;
}

/*
 * Drops every pair with no hit left in the window; returns the earliest time at which a
 * remaining pair would drop (INT64_MAX if none). O(table size); runs only when full.
 */
static int64_t sweep(kw_rate_limit *rl, int64_t now_ms)
{
    int64_t next_free = INT64_MAX;
    for (size_t i = 0; i <= rl->mask; i++) {
        while (rl->slots[i].used) {
            expire_hits(rl, i, now_ms);
            if (rl->slots[i].n_hits > 0)
                break;
            remove_at(rl, i); /* may move a later entry into i: look again */
        }
        if (rl->slots[i].used) {
            int64_t newest = rl->hits[i * rl->limit + rl->slots[i].n_hits - 1];
            if (newest + rl->window_ms < next_free)
                next_free = newest + rl->window_ms;
        }
    }
    return next_free;
}

static int64_t ceil_seconds(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s;
}

kw_err kw_rate_limit_take(kw_rate_limit *rl, const char *subject, const char *object,
                          int64_t now_ms, int64_t *retry_after_s)
{
    uint8_t key[KEY_BYTES];
    kw_err rc = pair_key(subject, object, key);
    if (rc != KW_OK)
        return rc;
    size_t i = find(rl, key);
    if (!rl->slots[i].used) {
        if (rl->n_used >= rl->capacity) {
            int64_t next_free = sweep(rl, now_ms);
            if (rl->n_used >= rl->capacity) {
                if (retry_after_s != NULL)
                    *retry_after_s = ceil_seconds(next_free - now_ms);
                return KW_ERR_RATE_LIMITED; /* fail closed: see rate_limit.h */
            }
            i = find(rl, key);
        }
        memcpy(rl->slots[i].key, key, KEY_BYTES);
        rl->slots[i].n_hits = 0;
        rl->slots[i].used = 1;
        rl->n_used++;
    }
    expire_hits(rl, i, now_ms);
    int64_t *h = rl->hits + i * rl->limit;
    if (rl->slots[i].n_hits >= rl->limit) {
        if (retry_after_s != NULL)
            *retry_after_s = ceil_seconds(h[0] + rl->window_ms - now_ms);
        return KW_ERR_RATE_LIMITED;
    }
    h[rl->slots[i].n_hits++] = now_ms;
    return KW_OK;
}

void kw_rate_limit_refund(kw_rate_limit *rl, const char *subject, const char *object)
{
    uint8_t key[KEY_BYTES];
    if (pair_key(subject, object, key) != KW_OK)
        return;
    size_t i = find(rl, key);
    if (!rl->slots[i].used || rl->slots[i].n_hits == 0)
        return;
    if (--rl->slots[i].n_hits == 0)
        remove_at(rl, i);
}
