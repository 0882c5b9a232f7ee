/*
 * presence_memory.c — the in-memory presence of one node.
 *
 * Channels are kept in a hash table (FNV-1a over the channel id, chained, doubling when
 * the load passes 1); each channel holds its participants in an array in registration
 * order, so "oldest first" is free. A channel whose last participant leaves is freed at
 * once: a new session then starts empty, which is what makes the next joiner "first".
 * A disconnect (video_leave_all) walks every channel: O(channels); a per-socket index
 * would make it O(channels of that socket) and becomes worth it with many thousands of
 * live channels.
 */
#include "presence.h"

#include <stdlib.h>
#include <string.h>

typedef struct channel {
    struct channel *next; /* hash chain */
    char id[KW_PRESENCE_ID_MAX + 1];
    kw_video_participant *parts; /* owned; registration order */
    size_t n, cap;
} channel;

typedef struct memory {
    channel **buckets; /* owned */
    size_t n_buckets;  /* a power of two */
    size_t n_channels;
} memory;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= KW_PRESENCE_ID_MAX;
}

static channel **slot_of(memory *m, const char *id)
{
    channel **c = &m->buckets[fnv1a(id) & (m->n_buckets - 1)];
    while (*c && strcmp((*c)->id, id) != 0)
        c = &(*c)->next;
    return c;
}

static kw_err grow(memory *m)
{
    size_t nb = m->n_buckets * 2;
    channel **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return KW_ERR_NOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
        channel *c = m->buckets[i];
        while (c) {
            channel *next = c->next;
            size_t k = fnv1a(c->id) & (nb - 1);
            c->next = b[k];
            b[k] = c;
            c = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
    return KW_OK;
}

static kw_video_participant *find_part(channel *c, uint64_t socket_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->parts[i].socket_id == socket_id)
            return &c->parts[i];
    return NULL;
}

static kw_err add_part(channel *c, uint64_t socket_id, const char *user_id, const char *device_id,
                       int64_t now_ms)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        kw_video_participant *p = realloc(c->parts, cap * sizeof *p);
        if (p == NULL)
            return KW_ERR_NOMEM;
        c->parts = p;
        c->cap = cap;
    }
    kw_video_participant *p = &c->parts[c->n++];
    memset(p, 0, sizeof *p);
    p->socket_id = socket_id;
    memcpy(p->user_id, user_id, strlen(user_id) + 1);
    memcpy(p->device_id, device_id, strlen(device_id) + 1);
    p->joined_ms = now_ms;
    return KW_OK;
}

static kw_err mem_register(void *ctx, const char *channel_id, uint64_t socket_id,
                           const char *user_id, const char *device_id, int64_t now_ms)
{
    memory *m = ctx;
    if (!id_ok(channel_id) || !id_ok(user_id) || !id_ok(device_id))
        return KW_ERR_INVALID_ARGUMENT;
    channel **slot = slot_of(m, channel_id);
    if (*slot && find_part(*slot, socket_id))
        return KW_OK;
    int created = 0;
    if (*slot == NULL) {
        channel *c = calloc(1, sizeof *c);
        if (c == NULL)
            return KW_ERR_NOMEM;
        memcpy(c->id, channel_id, strlen(channel_id) + 1);
        *slot = c;
        m->n_channels++;
        created = 1;
    }
    kw_err rc = add_part(*slot, socket_id, user_id, device_id, now_ms);
    if (rc != KW_OK) {
        if (created) {
            channel *c = *slot;
            *slot = c->next;
            free(c);
            m->n_channels--;
        }
        return rc;
    }
    if (created && m->n_channels > m->n_buckets)
        (void)grow(m); /* a failed grow only costs speed */
    return KW_OK;
}

static kw_err mem_confirm(void *ctx, const char *channel_id, uint64_t socket_id)
{
    if (!id_ok(channel_id))
        return KW_ERR_NOT_FOUND;
    channel *c = *slot_of(ctx, channel_id);
    kw_video_participant *p = c ? find_part(c, socket_id) : NULL;
    if (p == NULL)
        return KW_ERR_NOT_FOUND;
    p->has_e2ee_key = 1;
    return KW_OK;
}

/* Removes entry i of the channel at *slot, freeing the channel when it empties. */
static void remove_at(memory *m, channel **slot, size_t i)
{
    channel *c = *slot;
    memmove(&c->parts[i], &c->parts[i + 1], (c->n - i - 1) * sizeof c->parts[0]);
    c->n--;
    if (c->n == 0) {
        *slot = c->next;
        free(c->parts);
        free(c);
        m->n_channels--;
    }
}

static kw_err mem_leave(void *ctx, const char *channel_id, uint64_t socket_id)
{
    memory *m = ctx;
    if (!id_ok(channel_id))
        return KW_ERR_NOT_FOUND;
    channel **slot = slot_of(m, channel_id);
    if (*slot == NULL)
        return KW_ERR_NOT_FOUND;
    for (size_t i = 0; i < (*slot)->n; i++) {
        if ((*slot)->parts[i].socket_id == socket_id) {
            remove_at(m, slot, i);
            return KW_OK;
        }
    }
    return KW_ERR_NOT_FOUND;
}

static void mem_leave_all(void *ctx, uint64_t socket_id,
                          void (*left)(void *, const char *, const kw_video_participant *),
                          void *arg)
{
    memory *m = ctx;
    for (size_t b = 0; b < m->n_buckets; b++) {
        channel **slot = &m->buckets[b];
        while (*slot) {
            channel *c = *slot;
            kw_video_participant *p = find_part(c, socket_id);
            if (p == NULL) {
                slot = &c->next;
                continue;
            }
            kw_video_participant gone = *p;
            char id[KW_PRESENCE_ID_MAX + 1];
            memcpy(id, c->id, sizeof id);
            int last = c->n == 1;
            remove_at(m, slot, (size_t)(p - c->parts));
            if (left)
                left(arg, id, &gone);
            if (!last)
                slot = &c->next; /* the channel is still here; else *slot is its successor */
        }
    }
}

static size_t mem_list(void *ctx, const char *channel_id, kw_video_participant *out, size_t max)
{
    if (!id_ok(channel_id))
        return 0;
    channel *c = *slot_of(ctx, channel_id);
    if (c == NULL)
        return 0;
    size_t n = c->n < max ? c->n : max;
    if (n)
        memcpy(out, c->parts, n * sizeof *out);
    return c->n;
}

static int mem_present(void *ctx, const char *channel_id, const char *user_id,
                       const char *device_id)
{
    if (!id_ok(channel_id) || !user_id || !device_id)
        return 0;
    channel *c = *slot_of(ctx, channel_id);
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->parts[i].user_id, user_id) == 0 &&
            strcmp(c->parts[i].device_id, device_id) == 0)
            return 1;
    return 0;
}

static size_t mem_device_sockets(void *ctx, const char *channel_id, const char *user_id,
                                 const char *device_id, uint64_t *out, size_t max)
{
    if (!id_ok(channel_id) || !user_id || !device_id)
        return 0;
    channel *c = *slot_of(ctx, channel_id);
    size_t n = 0;
    for (size_t i = 0; c && i < c->n; i++) {
        const kw_video_participant *e = &c->parts[i];
        if (strcmp(e->user_id, user_id) != 0 || strcmp(e->device_id, device_id) != 0)
            continue;
        if (n < max)
            out[n] = e->socket_id;
        n++;
    }
    return n;
}

static void mem_destroy(void *ctx)
{
    memory *m = ctx;
    for (size_t b = 0; b < m->n_buckets; b++) {
        channel *c = m->buckets[b];
        while (c) {
            channel *next = c->next;
            free(c->parts);
            free(c);
            c = next;
        }
    }
    free(m->buckets);
    free(m);
}

static const kw_presence_ops memory_ops = {
    mem_register, mem_confirm, mem_leave,          mem_leave_all,
    mem_list,     mem_present, mem_device_sockets, mem_destroy,
};

kw_err kw_presence_memory_new(kw_presence **out)
{
    *out = NULL;
    kw_presence *p = calloc(1, sizeof *p);
    memory *m = calloc(1, sizeof *m);
    if (p && m) {
        m->n_buckets = 64;
        m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
    }
    if (p == NULL || m == NULL || m->buckets == NULL) {
        free(m ? m->buckets : NULL);
        free(m);
        free(p);
        return KW_ERR_NOMEM;
    }
    p->ops = &memory_ops;
    p->ctx = m;
    *out = p;
    return KW_OK;
}

void kw_presence_free(kw_presence *p)
{
    if (p == NULL)
        return;
    p->ops->destroy(p->ctx);
    free(p);
}
