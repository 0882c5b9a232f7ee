/*
 * rt.c — the realtime module's core: Engine.IO sessions, Socket.IO namespaces and the
 * event dispatcher, rooms, the socket-id index and the outbound queues (see rt.h).
 *
 * Sizes: a socket id index (open addressing, linear probing, backward-shift deletion, kept
 * at most half full) finds the connection of a socket in O(1); rooms are a hash-free list
 * searched by name, which is O(rooms) and becomes worth a hash table when thousands of
 * meetings have sockets in their rooms at once.
 */
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "keywave/sio.h"
#include "log.h"
#include "presence.h"
#include "rt_items.h"
#include "server.h"
#include "sio_json.h"

struct kw_rt_frame {
    kw_rt_frame *next;
    size_t len;  /* bytes of text */
    char data[]; /* headroom, then the text and a NUL */
};

struct kw_rt_room {
    kw_rt_room *next;
    char name[KW_RT_ROOM_NAME_MAX + 1];
    uint64_t *ids; /* owned; socket ids, unordered */
    size_t n, cap;
};

typedef struct id_slot {
    uint64_t id; /* 0: empty */
    kw_rt_conn *conn;
} id_slot;

struct kw_rt {
    struct kw_server *srv; /* borrowed */
    size_t headroom;       /* bytes before each frame's text */
    void (*wake)(void *arg, void *handle);
    void *wake_arg;
    uint64_t next_id;  /* connection and socket numbers, from 1 */
    int64_t clock_ms;  /* the latest now_ms seen: Engine.IO time never goes back */
    id_slot *slots;    /* owned; socket id -> connection */
    size_t n_slots;    /* a power of two */
    size_t n_ids;      /* used slots */
    kw_rt_room *rooms; /* owned */
    size_t n_conns;    /* open connections */
    int shutting_down; /* kw_rt_shutdown was called */
};

static const char *const nsp_names[KW_RT_NSP_COUNT] = {"/", "/external"};

/* ---- state -------------------------------------------------------------------------- */

kw_err kw_rt_new(struct kw_server *srv, size_t headroom, void (*wake)(void *arg, void *handle),
                 void *arg, kw_rt **out)
{
    if (out == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (srv == NULL || wake == NULL)
        return KW_ERR_INVALID_ARGUMENT;
    kw_rt *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return KW_ERR_NOMEM;
    rt->srv = srv;
    rt->headroom = headroom;
    rt->wake = wake;
    rt->wake_arg = arg;
    rt->next_id = 1;
    rt->n_slots = 64;
    rt->slots = calloc(rt->n_slots, sizeof *rt->slots);
    if (rt->slots == NULL) {
        free(rt);
        return KW_ERR_NOMEM;
    }
    *out = rt;
    return KW_OK;
}

void kw_rt_shutdown(kw_rt *rt)
{
    if (rt != NULL)
        rt->shutting_down = 1;
}

void kw_rt_free(kw_rt *rt)
{
    if (rt == NULL)
        return;
    while (rt->rooms) {
        kw_rt_room *r = rt->rooms;
        rt->rooms = r->next;
        free(r->ids);
        free(r);
    }
    free(rt->slots);
    free(rt);
}

size_t kw_rt_connections(const kw_rt *rt)
{
    return rt ? rt->n_conns : 0;
}

struct kw_server *kw_rt_server(kw_rt *rt)
{
    return rt->srv;
}

/* ---- socket id index ------------------------------------------------------------------ */

static size_t id_hash(uint64_t id, size_t n_slots)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & (n_slots - 1);
}

static kw_err id_grow(kw_rt *rt)
{
    size_t n = rt->n_slots * 2;
    id_slot *s = calloc(n, sizeof *s);
    if (s == NULL)
        return KW_ERR_NOMEM;
    for (size_t i = 0; i < rt->n_slots; i++) {
        if (rt->slots[i].id == 0)
            continue;
        size_t k = id_hash(rt->slots[i].id, n);
        while (s[k].id != 0)
            k = (k + 1) & (n - 1);
        s[k] = rt->slots[i];
    }
    free(rt->slots);
    rt->slots = s;
    rt->n_slots = n;
    return KW_OK;
}

static kw_err id_put(kw_rt *rt, uint64_t id, kw_rt_conn *c)
{
    if ((rt->n_ids + 1) * 2 > rt->n_slots && id_grow(rt) != KW_OK)
        return KW_ERR_NOMEM;
    size_t k = id_hash(id, rt->n_slots);
    while (rt->slots[k].id != 0)
        k = (k + 1) & (rt->n_slots - 1);
    rt->slots[k].id = id;
    rt->slots[k].conn = c;
    rt->n_ids++;
    return KW_OK;
}

static void id_del(kw_rt *rt, uint64_t id)
{
    size_t mask = rt->n_slots - 1, k = id_hash(id, rt->n_slots);
    while (rt->slots[k].id != id) {
        if (rt->slots[k].id == 0)
            return;
        k = (k + 1) & mask;
    }
    /* Backward-shift deletion: no tombstones, so lookups stay short. */
    size_t hole = k;
    for (size_t j = (k + 1) & mask; rt->slots[j].id != 0; j = (j + 1) & mask) {
        size_t home = id_hash(rt->slots[j].id, rt->n_slots);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            rt->slots[hole] = rt->slots[j];
            hole = j;
        }
    }
    rt->slots[hole].id = 0;
    rt->slots[hole].conn = NULL;
    rt->n_ids--;
}

kw_rt_conn *kw_rt_find(kw_rt *rt, uint64_t socket_id, kw_rt_nsp *nsp)
{
    if (socket_id == 0)
        return NULL;
    size_t k = id_hash(socket_id, rt->n_slots);
    while (rt->slots[k].id != 0) {
        if (rt->slots[k].id == socket_id) {
            kw_rt_conn *c = rt->slots[k].conn;
            if (nsp != NULL)
                *nsp = c->member.socket_id == socket_id ? KW_RT_NSP_MEMBER : KW_RT_NSP_GUEST;
            return c;
        }
        k = (k + 1) & (rt->n_slots - 1);
    }
    return NULL;
}

kw_err kw_rt_device_collect(kw_rt *rt, const char *user_id, const char *device_id, kw_rt_batch *b)
{
    for (size_t i = 0; i < rt->n_slots; i++) {
        const kw_rt_conn *c = rt->slots[i].conn;
        if (rt->slots[i].id == 0 || c->member.socket_id != rt->slots[i].id ||
            strcmp(c->member.user_id, user_id) != 0 || strcmp(c->member.device_id, device_id) != 0)
            continue;
        if (kw_rt_batch_add(b, rt->slots[i].id) != KW_OK)
            return KW_ERR_NOMEM;
    }
    return KW_OK;
}

/* ---- outbound queue ------------------------------------------------------------------- */

/* A frame with room for len bytes of text after the headroom; NULL when out of memory. */
static kw_rt_frame *frame_alloc(kw_rt *rt, size_t len)
{
    kw_rt_frame *f = malloc(sizeof *f + rt->headroom + len + 1);
    if (f != NULL) {
        f->next = NULL;
        f->len = len;
    }
    return f;
}

static char *frame_text(kw_rt *rt, kw_rt_frame *f)
{
    return f->data + rt->headroom;
}

static void queue_push(kw_rt *rt, kw_rt_conn *c, kw_rt_frame *f)
{
    int was_empty = c->q_head == NULL;
    if (c->q_tail)
        c->q_tail->next = f;
    else
        c->q_head = f;
    c->q_tail = f;
    c->q_frames++;
    c->q_bytes += f->len;
    if (was_empty && !rt->shutting_down)
        rt->wake(rt->wake_arg, c->handle);
}

/* Queues a copy of text; KW_ERR_NOMEM when it cannot be allocated. */
static kw_err queue_text(kw_rt *rt, kw_rt_conn *c, const char *text, size_t len)
{
    kw_rt_frame *f = frame_alloc(rt, len);
    if (f == NULL)
        return KW_ERR_NOMEM;
    memcpy(frame_text(rt, f), text, len);
    frame_text(rt, f)[len] = '\0';
    queue_push(rt, c, f);
    return KW_OK;
}

static void queue_free(kw_rt_conn *c)
{
    while (c->q_head) {
        kw_rt_frame *f = c->q_head;
        c->q_head = f->next;
        free(f);
    }
    c->q_tail = NULL;
    c->q_frames = 0;
    c->q_bytes = 0;
    c->q_sent = 0;
}

static int queue_has_room(const kw_rt_conn *c, size_t len)
{
    return c->q_frames < KW_RT_QUEUE_FRAMES && len <= KW_RT_QUEUE_BYTES &&
           c->q_bytes <= KW_RT_QUEUE_BYTES - len;
}

int kw_rt_conn_peek(const kw_rt *rt, const kw_rt_conn *c, char **text, size_t *len, int *whole)
{
    kw_rt_frame *f = c->q_head;
    if (f == NULL)
        return 0;
    *text = f->data + rt->headroom + c->q_sent;
    *len = f->len - c->q_sent;
    *whole = c->q_sent == 0;
    return 1;
}

void kw_rt_conn_written(kw_rt *rt, kw_rt_conn *c, size_t n)
{
    kw_rt_frame *f = c->q_head;
    if (f == NULL)
        return;
    c->q_sent += n;
    if (c->q_sent < f->len)
        return;
    c->q_head = f->next;
    if (c->q_head == NULL)
        c->q_tail = NULL;
    c->q_frames--;
    c->q_bytes -= f->len;
    c->q_sent = 0;
    free(f);
    if (c->q_head == NULL && c->member.items_pending)
        kw_rt_items_deliver(rt, c, rt->clock_ms); /* the next part of a stored backlog */
}

int kw_rt_conn_rx_paused(const kw_rt_conn *c)
{
    return c->q_frames >= KW_RT_QUEUE_FRAMES || c->q_bytes >= KW_RT_QUEUE_BYTES;
}

unsigned kw_rt_conn_close_code(const kw_rt_conn *c)
{
    return c->close_code;
}

/* ---- batches -------------------------------------------------------------------------- */

kw_err kw_rt_batch_add(kw_rt_batch *b, uint64_t socket_id)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->ids[i] == socket_id)
            return KW_OK;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        uint64_t *ids = realloc(b->ids, cap * sizeof *ids);
        if (ids == NULL)
            return KW_ERR_NOMEM;
        b->ids = ids;
        b->cap = cap;
    }
    b->ids[b->n++] = socket_id;
    return KW_OK;
}

void kw_rt_batch_free(kw_rt_batch *b)
{
    free(b->ids);
    b->ids = NULL;
    b->n = b->cap = 0;
}

kw_err kw_rt_batch_check(kw_rt *rt, const kw_rt_batch *b, size_t len, kw_error *err)
{
    for (size_t i = 0; i < b->n; i++) {
        kw_rt_conn *c = kw_rt_find(rt, b->ids[i], NULL);
        if (c != NULL && !queue_has_room(c, len))
            return kw_error_set(err, KW_ERR_RATE_LIMITED,
                                "a recipient's outbound queue is full; retry later");
    }
    return KW_OK;
}

size_t kw_rt_batch_send(kw_rt *rt, const kw_rt_batch *b, const char *text, size_t len)
{
    size_t sent = 0;
    for (size_t i = 0; i < b->n; i++) {
        kw_rt_conn *c = kw_rt_find(rt, b->ids[i], NULL);
        if (c == NULL)
            continue;
        if (queue_text(rt, c, text, len) != KW_OK) {
            kw_log(KW_LOG_ERROR, "rt_queue_failed", "error=out_of_memory socket=%llu",
                   (unsigned long long)b->ids[i]);
            continue;
        }
        sent++;
    }
    return sent;
}

/* ---- encoding --------------------------------------------------------------------------- */

/* Encodes with one of sio.h's encoders into a malloc'd text: size first, then the text. */
kw_err kw_rt_encode_event(kw_rt_nsp nsp, const char *name, json_t *payload, char **text,
                          size_t *len)
{
    *text = NULL;
    *len = 0;
    char *args = NULL;
    if (payload != NULL) {
        args = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        if (args == NULL)
            return KW_ERR_NOMEM;
    }
    size_t args_len = args ? strlen(args) : 0;
    kw_error e;
    size_t need = 0;
    kw_err rc = kw_sio_encode_event(nsp_names[nsp], KW_SIO_NO_ACK, name, args, args_len, NULL, 0,
                                    &need, &e);
    if (rc == KW_ERR_BUFFER_TOO_SMALL) {
        *text = malloc(need + 1);
        rc = *text == NULL ? KW_ERR_NOMEM
                           : kw_sio_encode_event(nsp_names[nsp], KW_SIO_NO_ACK, name, args,
                                                 args_len, *text, need + 1, len, &e);
    } else if (rc == KW_OK) {
        rc = KW_ERR_INTERNAL; /* cannot happen: cap 0 never fits */
    }
    free(args);
    if (rc != KW_OK) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return rc;
}

kw_err kw_rt_emit_self(kw_rt_call *call, const char *name, json_t *payload)
{
    char *text;
    size_t len;
    kw_err rc = kw_rt_encode_event(call->nsp, name, payload, &text, &len);
    if (rc != KW_OK)
        return rc;
    rc = queue_text(call->rt, call->conn, text, len);
    free(text);
    return rc;
}

/* Queues the ACK of ack_id with the JSON object body to c (a reply: no queue limit). */
static kw_err queue_ack(kw_rt *rt, kw_rt_conn *c, kw_rt_nsp nsp, uint32_t ack_id, json_t *body)
{
    char *args = json_dumps(body, JSON_COMPACT);
    if (args == NULL)
        return KW_ERR_NOMEM;
    size_t args_len = strlen(args), need = 0, len = 0;
    kw_error e;
    kw_err rc = kw_sio_encode_ack(nsp_names[nsp], ack_id, args, args_len, NULL, 0, &need, &e);
    if (rc == KW_ERR_BUFFER_TOO_SMALL) {
        kw_rt_frame *f = frame_alloc(rt, need);
        if (f == NULL) {
            rc = KW_ERR_NOMEM;
        } else {
            rc = kw_sio_encode_ack(nsp_names[nsp], ack_id, args, args_len, frame_text(rt, f),
                                   need + 1, &len, &e);
            if (rc == KW_OK)
                queue_push(rt, c, f);
            else
                free(f);
        }
    } else if (rc == KW_OK) {
        rc = KW_ERR_INTERNAL;
    }
    free(args);
    return rc;
}

/* ---- rooms ------------------------------------------------------------------------------ */

static kw_rt_room *room_find(kw_rt *rt, const char *name)
{
    for (kw_rt_room *r = rt->rooms; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

/* Adds socket_id to room name (created when missing); *out gets the room. */
static kw_err room_add(kw_rt *rt, const char *name, uint64_t socket_id, kw_rt_room **out)
{
    size_t n = strlen(name);
    if (n == 0 || n > KW_RT_ROOM_NAME_MAX)
        return KW_ERR_INVALID_ARGUMENT;
    kw_rt_room *r = room_find(rt, name);
    int created = 0;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return KW_ERR_NOMEM;
        memcpy(r->name, name, n + 1);
        created = 1;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        uint64_t *ids = realloc(r->ids, cap * sizeof *ids);
        if (ids == NULL) {
            if (created)
                free(r);
            return KW_ERR_NOMEM;
        }
        r->ids = ids;
        r->cap = cap;
    }
    r->ids[r->n++] = socket_id;
    if (created) {
        r->next = rt->rooms;
        rt->rooms = r;
    }
    *out = r;
    return KW_OK;
}

/* Removes socket_id from r; frees r when it is empty. */
static void room_remove(kw_rt *rt, kw_rt_room *r, uint64_t socket_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->ids[i] == socket_id) {
            r->ids[i] = r->ids[--r->n];
            break;
        }
    if (r->n > 0)
        return;
    for (kw_rt_room **p = &rt->rooms; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    free(r->ids);
    free(r);
}

kw_err kw_rt_room_collect(kw_rt *rt, const char *name, kw_rt_batch *b)
{
    kw_rt_room *r = room_find(rt, name);
    for (size_t i = 0; r != NULL && i < r->n; i++)
        if (kw_rt_batch_add(b, r->ids[i]) != KW_OK)
            return KW_ERR_NOMEM;
    return KW_OK;
}

kw_err kw_rt_member_join(kw_rt *rt, kw_rt_conn *c, const char *name, kw_error *err)
{
    kw_rt_member *m = &c->member;
    if (m->socket_id == 0)
        return kw_error_set(err, KW_ERR_STATE, "not connected on /");
    size_t free_slot = KW_RT_ROOMS_PER_SOCKET;
    for (size_t i = 0; i < KW_RT_ROOMS_PER_SOCKET; i++) {
        if (m->rooms[i] != NULL && strcmp(m->rooms[i]->name, name) == 0)
            return KW_OK;
        if (m->rooms[i] == NULL && free_slot == KW_RT_ROOMS_PER_SOCKET)
            free_slot = i;
    }
    if (free_slot == KW_RT_ROOMS_PER_SOCKET)
        return kw_error_set(err, KW_ERR_RATE_LIMITED, "a socket may join at most %d rooms",
                            KW_RT_ROOMS_PER_SOCKET);
    kw_err rc = room_add(rt, name, m->socket_id, &m->rooms[free_slot]);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "cannot join the room");
    return KW_OK;
}

kw_err kw_rt_member_leave(kw_rt *rt, kw_rt_conn *c, const char *name, kw_error *err)
{
    kw_rt_member *m = &c->member;
    for (size_t i = 0; i < KW_RT_ROOMS_PER_SOCKET; i++)
        if (m->rooms[i] != NULL && strcmp(m->rooms[i]->name, name) == 0) {
            room_remove(rt, m->rooms[i], m->socket_id);
            m->rooms[i] = NULL;
            return KW_OK;
        }
    return kw_error_set(err, KW_ERR_NOT_FOUND, "this socket has not joined that room");
}

/* ---- errors ------------------------------------------------------------------------------- */

const char *kw_rt_error_token(kw_err code)
{
    /* Malformed input of any kind is one token for clients; the rest keep their names. */
    if (code == KW_ERR_INVALID_ARGUMENT || code == KW_ERR_JSON || code == KW_ERR_UNKNOWN_FIELD ||
        code == KW_ERR_INVALID_MESSAGE)
        return "invalid_payload";
    if (code == KW_ERR_NOT_PRESENT)
        return "recipient_offline";
    return kw_err_name(code);
}

/* ---- Engine.IO ------------------------------------------------------------------------------ */

/* Engine.IO's clock: the wall clock, but never going back (kw_eio_session needs that). */
static int64_t eio_clock(kw_rt *rt, int64_t now_ms)
{
    if (now_ms > rt->clock_ms)
        rt->clock_ms = now_ms;
    return rt->clock_ms;
}

kw_err kw_rt_check_upgrade(const char *path, const char *query, kw_error *err)
{
    if (path == NULL || strcmp(path, "/socket.io/") != 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT,
                            "WebSocket connections are served on /socket.io/ only");
    if (query == NULL)
        query = "";
    return kw_eio_check_query(query, strlen(query), err);
}

/* Queues an Engine.IO control frame (ping, pong) with optional data. */
static kw_err queue_eio(kw_rt *rt, kw_rt_conn *c, kw_eio_type type, const char *data, size_t n)
{
    char buf[KW_EIO_PING_DATA_MAX + 2];
    size_t len;
    kw_error e;
    kw_err rc = kw_eio_encode(type, data, n, buf, sizeof buf, &len, &e);
    if (rc != KW_OK)
        return rc;
    return queue_text(rt, c, buf, len);
}

kw_err kw_rt_conn_open(kw_rt *rt, kw_rt_conn *c, void *handle, int64_t now_ms, int64_t *next_ms)
{
    int64_t t = eio_clock(rt, now_ms);
    *next_ms = INT64_MAX;
    c->handle = handle;
    c->conn_id = rt->next_id++;
    kw_err rc = kw_eio_session_init(&c->eio, t, KW_EIO_PING_INTERVAL_MS, KW_EIO_PING_TIMEOUT_MS,
                                    KW_EIO_CONNECT_TIMEOUT_MS);
    if (rc != KW_OK)
        return rc;
    kw_eio_open o;
    memset(&o, 0, sizeof o);
    snprintf(o.sid, sizeof o.sid, "%016llx", (unsigned long long)c->conn_id);
    o.ping_interval_ms = KW_EIO_PING_INTERVAL_MS;
    o.ping_timeout_ms = KW_EIO_PING_TIMEOUT_MS;
    o.max_payload = KW_EIO_MAX_PAYLOAD;
    char buf[256];
    size_t len;
    kw_error e;
    rc = kw_eio_encode_open(&o, buf, sizeof buf, &len, &e);
    if (rc == KW_OK)
        rc = queue_text(rt, c, buf, len);
    if (rc != KW_OK)
        return rc;
    c->open = 1;
    rt->n_conns++;
    kw_eio_action action;
    if (kw_eio_session_tick(&c->eio, t, &action, next_ms) != KW_OK)
        *next_ms = t + KW_EIO_PING_INTERVAL_MS;
    return KW_OK;
}

kw_rt_verdict kw_rt_conn_tick(kw_rt *rt, kw_rt_conn *c, int64_t now_ms, int64_t *next_ms)
{
    *next_ms = INT64_MAX;
    if (!c->open)
        return KW_RT_CLOSE;
    int64_t t = eio_clock(rt, now_ms);
    kw_eio_action action = KW_EIO_NOTHING;
    if (kw_eio_session_tick(&c->eio, t, &action, next_ms) != KW_OK)
        return KW_RT_CLOSE;
    switch (action) {
    case KW_EIO_NOTHING:
        return KW_RT_CONTINUE;
    case KW_EIO_SEND_PING:
        if (queue_eio(rt, c, KW_EIO_PING, NULL, 0) != KW_OK) {
            c->close_code = 1011;
            return KW_RT_CLOSE;
        }
        return KW_RT_CONTINUE;
    case KW_EIO_CLOSE_PONG_TIMEOUT:
    case KW_EIO_CLOSE_CONNECT_TIMEOUT:
        kw_log(KW_LOG_INFO, "rt_timeout", "conn=%llu reason=%s", (unsigned long long)c->conn_id,
               action == KW_EIO_CLOSE_PONG_TIMEOUT ? "pong" : "connect");
        c->close_code = 1008;
        return KW_RT_CLOSE;
    }
    return KW_RT_CLOSE;
}

/* ---- Socket.IO: namespaces and CONNECT --------------------------------------------------------
 */

static int nsp_of(const char *nsp, size_t n)
{
    for (int i = 0; i < KW_RT_NSP_COUNT; i++)
        if (strlen(nsp_names[i]) == n && memcmp(nsp_names[i], nsp, n) == 0)
            return i;
    return -1;
}

static uint64_t socket_of(const kw_rt_conn *c, kw_rt_nsp nsp)
{
    return nsp == KW_RT_NSP_MEMBER ? c->member.socket_id : c->guest.socket_id;
}

/* CONNECT_ERROR {message} on namespace nsp (NUL-terminated). */
static kw_err queue_connect_error(kw_rt *rt, kw_rt_conn *c, const char *nsp, const char *message)
{
    char buf[KW_SIO_NSP_MAX + 128];
    size_t len;
    kw_error e;
    kw_err rc = kw_sio_encode_connect_error(nsp, message, buf, sizeof buf, &len, &e);
    if (rc != KW_OK)
        return rc;
    return queue_text(rt, c, buf, len);
}

/* The socket of nsp leaves everything it is part of; the connection stays. */
static void socket_disconnect(kw_rt *rt, kw_rt_conn *c, kw_rt_nsp nsp, int64_t now_ms)
{
    if (nsp == KW_RT_NSP_MEMBER) {
        kw_rt_member *m = &c->member;
        if (m->socket_id == 0)
            return;
        if (!rt->shutting_down)
            kw_rt_video_disconnect(rt, m->socket_id, now_ms);
        else if (rt->srv->presence != NULL)
            rt->srv->presence->ops->video_leave_all(rt->srv->presence->ctx, m->socket_id, NULL,
                                                    NULL);
        for (size_t i = 0; i < KW_RT_ROOMS_PER_SOCKET; i++)
            if (m->rooms[i] != NULL)
                room_remove(rt, m->rooms[i], m->socket_id);
        id_del(rt, m->socket_id);
        memset(m, 0, sizeof *m);
    } else {
        kw_rt_guest *g = &c->guest;
        if (g->socket_id == 0)
            return;
        if (g->room != NULL)
            room_remove(rt, g->room, g->socket_id);
        id_del(rt, g->socket_id);
        memset(g, 0, sizeof *g);
    }
}

static kw_rt_verdict on_connect(kw_rt *rt, kw_rt_conn *c, const kw_sio_packet *pk, json_t *auth,
                                int64_t now_ms)
{
    char nsp_text[KW_SIO_NSP_MAX + 1];
    size_t n = pk->nsp_len < KW_SIO_NSP_MAX ? pk->nsp_len : KW_SIO_NSP_MAX;
    memcpy(nsp_text, pk->nsp, n);
    nsp_text[n] = '\0';
    int nsp = nsp_of(pk->nsp, pk->nsp_len);
    if (nsp < 0) {
        /* socket.io's own answer to an unknown namespace; the connection stays. */
        if (queue_connect_error(rt, c, nsp_text, "Invalid namespace") != KW_OK)
            return KW_RT_CLOSE;
        return KW_RT_CONTINUE;
    }
    kw_error e;
    kw_error_clear(&e);
    kw_err rc;
    kw_rt_member m;
    kw_rt_guest g;
    memset(&m, 0, sizeof m);
    memset(&g, 0, sizeof g);
    if (socket_of(c, (kw_rt_nsp)nsp) != 0)
        rc = kw_error_set(&e, KW_ERR_STATE, "already connected to that namespace");
    else if (nsp == KW_RT_NSP_MEMBER)
        rc = kw_rt_auth_member(rt->srv, auth, now_ms, &m, &e);
    else
        rc = kw_rt_auth_guest(rt->srv, auth, now_ms, &g, &e);
    uint64_t id = 0;
    if (rc == KW_OK) {
        id = rt->next_id;
        rc = id_put(rt, id, c);
        if (rc == KW_OK)
            rt->next_id++;
    }
    if (rc == KW_OK && nsp == KW_RT_NSP_GUEST) {
        char room[KW_RT_ROOM_NAME_MAX + 1];
        snprintf(room, sizeof room, "g:%s", g.meeting_id);
        rc = room_add(rt, room, id, &g.room);
        if (rc != KW_OK)
            id_del(rt, id);
    }
    if (rc != KW_OK) {
        char detail[KW_LOG_VALUE_MAX];
        kw_log(KW_LOG_INFO, "rt_connect_refused", "conn=%llu nsp=%s error=%s detail=%s",
               (unsigned long long)c->conn_id, nsp_names[nsp], kw_err_name(rc),
               kw_log_value(detail, sizeof detail, e.detail));
        if (queue_connect_error(rt, c, nsp_names[nsp], kw_err_name(rc)) != KW_OK)
            return KW_RT_CLOSE;
        if (c->member.socket_id == 0 && c->guest.socket_id == 0)
            c->close_code = 1008; /* closes once the CONNECT_ERROR is out */
        return KW_RT_CONTINUE;
    }
    if (kw_eio_session_on_connect(&c->eio, eio_clock(rt, now_ms), &e) != KW_OK) {
        /* Late: the connect timeout already closed the session. */
        if (g.room != NULL)
            room_remove(rt, g.room, id);
        id_del(rt, id);
        c->close_code = 1008;
        return KW_RT_CLOSE;
    }
    if (nsp == KW_RT_NSP_MEMBER) {
        c->member = m;
        c->member.socket_id = id;
        kw_log(KW_LOG_INFO, "rt_connect", "conn=%llu nsp=/ socket=%llu user=%s device=%s",
               (unsigned long long)c->conn_id, (unsigned long long)id, m.user_id, m.device_id);
    } else {
        c->guest = g;
        c->guest.socket_id = id;
        kw_log(KW_LOG_INFO, "rt_connect", "conn=%llu nsp=/external socket=%llu session=%s",
               (unsigned long long)c->conn_id, (unsigned long long)id, g.session_id);
    }
    char sid[KW_EIO_SID_MAX + 1], buf[KW_SIO_NSP_MAX + KW_EIO_SID_MAX + 32];
    snprintf(sid, sizeof sid, "s%016llx", (unsigned long long)id);
    size_t len;
    if (kw_sio_encode_connect_ok(nsp_names[nsp], sid, buf, sizeof buf, &len, &e) != KW_OK ||
        queue_text(rt, c, buf, len) != KW_OK) {
        socket_disconnect(rt, c, (kw_rt_nsp)nsp, now_ms);
        return KW_RT_CLOSE;
    }
    if (nsp == KW_RT_NSP_MEMBER)
        kw_rt_items_deliver(rt, c, now_ms); /* items stored while the device was offline */
    if (nsp == KW_RT_NSP_GUEST && kw_rt_video_guest_connected(rt, c, now_ms) != KW_OK)
        kw_log(KW_LOG_WARN, "rt_host_present_failed", "conn=%llu", (unsigned long long)c->conn_id);
    return KW_RT_CONTINUE;
}

/* ---- Socket.IO: events --------------------------------------------------------------------------
 */

/* Events of DESIGN.md section 8 that later increments build: acked {error:"not_built"}. */
static const kw_rt_event events_pending[] = {
    {KW_RT_NSP_MEMBER, NULL, NULL},
};

static const kw_rt_event *const event_tables[] = {
    kw_rt_events_video, kw_rt_events_items, kw_rt_events_relay, events_pending, NULL,
};

/* The row of name received on nsp; *other_nsp = 1 when name exists only on another one. */
static const kw_rt_event *event_find(kw_rt_nsp nsp, const char *name, int *other_nsp)
{
    *other_nsp = 0;
    for (size_t t = 0; event_tables[t] != NULL; t++)
        for (const kw_rt_event *r = event_tables[t]; r->name != NULL; r++) {
            if (strcmp(r->name, name) != 0)
                continue;
            if (r->nsp == nsp)
                return r;
            *other_nsp = 1;
        }
    return NULL;
}

/* The configured guest event limit (KEYWAVE_GUEST_EVENTS_PER_MINUTE); the documented
 * default when the server has no configuration loaded (unit tests zero it). */
static uint32_t guest_events_per_minute(const kw_rt *rt)
{
    uint32_t n = rt->srv != NULL ? rt->srv->config.guest_events_per_minute : 0;
    return n != 0 ? n : KW_RT_GUEST_EVENTS_PER_MIN;
}

static kw_rt_verdict on_event(kw_rt *rt, kw_rt_conn *c, kw_rt_nsp nsp, const kw_sio_packet *pk,
                              json_t *payload, int64_t now_ms)
{
    kw_error e;
    kw_error_clear(&e);
    json_t *ack = json_pack("{s:b}", "ok", 1);
    kw_rt_call call = {rt->srv, rt, c, nsp, json_array_get(payload, 1), ack, now_ms};
    int other_nsp = 0;
    const kw_rt_event *row = event_find(nsp, pk->event, &other_nsp);
    kw_err rc;
    if (ack == NULL)
        rc = kw_error_set(&e, KW_ERR_NOMEM, "out of memory");
    else if (nsp == KW_RT_NSP_GUEST &&
             kw_rt_guest_rate_limit(&c->guest, guest_events_per_minute(rt), now_ms, &e) != KW_OK)
        rc = KW_ERR_RATE_LIMITED; /* every guest event counts, known or not */
    else if (row == NULL && other_nsp)
        rc = kw_error_set(&e, KW_ERR_FORBIDDEN, "that event is not for this namespace");
    else if (row == NULL)
        rc = kw_error_set(&e, KW_ERR_NOT_FOUND, "no such event");
    else if (row->handler == NULL)
        rc = kw_error_set(&e, KW_ERR_NOT_BUILT, "that event is not built yet");
    else
        rc = row->handler(&call, &e);
    if (rc != KW_OK) {
        char detail[KW_LOG_VALUE_MAX], name[KW_LOG_VALUE_MAX];
        kw_log(KW_LOG_INFO, "rt_event_failed", "socket=%llu event=%s error=%s detail=%s",
               (unsigned long long)socket_of(c, nsp), kw_log_value(name, sizeof name, pk->event),
               kw_rt_error_token(rc), kw_log_value(detail, sizeof detail, e.detail));
    }
    kw_rt_verdict v = KW_RT_CONTINUE;
    if (pk->has_ack) {
        json_t *body =
            rc == KW_OK ? json_incref(ack) : json_pack("{s:s}", "error", kw_rt_error_token(rc));
        if (body == NULL || queue_ack(rt, c, nsp, pk->ack_id, body) != KW_OK) {
            c->close_code = 1011; /* out of memory: the client would wait for the ack forever */
            v = KW_RT_CLOSE;
        }
        json_decref(body);
    }
    json_decref(ack);
    return v;
}

static kw_rt_verdict on_sio(kw_rt *rt, kw_rt_conn *c, const char *text, size_t len, int64_t now_ms)
{
    kw_sio_packet pk;
    json_t *payload = NULL;
    kw_error e;
    if (kw_sio_decode_json(text, len, &pk, &payload, &e) != KW_OK) {
        char detail[KW_LOG_VALUE_MAX];
        kw_log(KW_LOG_INFO, "rt_protocol_error", "conn=%llu detail=%s",
               (unsigned long long)c->conn_id, kw_log_value(detail, sizeof detail, e.detail));
        c->close_code = 1002;
        return KW_RT_CLOSE;
    }
    int nsp = nsp_of(pk.nsp, pk.nsp_len);
    kw_rt_verdict v = KW_RT_CONTINUE;
    switch (pk.type) {
    case KW_SIO_CONNECT:
        v = on_connect(rt, c, &pk, payload, now_ms);
        break;
    case KW_SIO_DISCONNECT:
        if (nsp >= 0)
            socket_disconnect(rt, c, (kw_rt_nsp)nsp, now_ms);
        break;
    case KW_SIO_EVENT:
        /* Like socket.io, packets for a namespace not connected are ignored. */
        if (nsp >= 0 && socket_of(c, (kw_rt_nsp)nsp) != 0)
            v = on_event(rt, c, (kw_rt_nsp)nsp, &pk, payload, now_ms);
        break;
    case KW_SIO_ACK:
        break; /* the server asks for no acks */
    case KW_SIO_CONNECT_ERROR:
        c->close_code = 1002;
        v = KW_RT_CLOSE;
        break;
    }
    json_decref(payload);
    return v;
}

/* One complete WebSocket message. */
static kw_rt_verdict on_message(kw_rt *rt, kw_rt_conn *c, const char *text, size_t len,
                                int64_t now_ms)
{
    kw_eio_packet p;
    kw_error e;
    kw_err rc = kw_eio_decode(text, len, 0, KW_EIO_MAX_PAYLOAD, &p, &e);
    if (rc != KW_OK) {
        c->close_code = rc == KW_ERR_PAYLOAD_TOO_LARGE ? 1009 : 1002;
        return KW_RT_CLOSE;
    }
    switch (p.type) {
    case KW_EIO_MESSAGE:
        return on_sio(rt, c, p.data, p.data_len, now_ms);
    case KW_EIO_PONG:
        if (kw_eio_session_on_pong(&c->eio, eio_clock(rt, now_ms), &e) != KW_OK) {
            c->close_code = 1008;
            return KW_RT_CLOSE;
        }
        return KW_RT_CONTINUE;
    case KW_EIO_PING:
        /* Clients do not ping in v4; answering costs nothing and keeps old ones alive. */
        if (queue_eio(rt, c, KW_EIO_PONG, p.data, p.data_len) != KW_OK) {
            c->close_code = 1011;
            return KW_RT_CLOSE;
        }
        return KW_RT_CONTINUE;
    case KW_EIO_NOOP:
        return KW_RT_CONTINUE;
    case KW_EIO_CLOSE:
        c->close_code = 1000;
        return KW_RT_CLOSE;
    case KW_EIO_OPEN:
    case KW_EIO_UPGRADE:
        break;
    }
    c->close_code = 1002;
    return KW_RT_CLOSE;
}

kw_rt_verdict kw_rt_conn_receive(kw_rt *rt, kw_rt_conn *c, const char *data, size_t len, int first,
                                 int final, int binary, int64_t now_ms)
{
    if (!c->open)
        return KW_RT_CLOSE;
    if (binary) {
        c->close_code = 1003; /* keywave speaks JSON text only (eio.h) */
        return KW_RT_CLOSE;
    }
    if (first) {
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
        if (final)
            return on_message(rt, c, data, len, now_ms); /* the usual case: no copy */
    }
    /* A fragmented message: reassembled here, never past maxPayload. */
    if (len > KW_EIO_MAX_PAYLOAD - c->rx_len) {
        c->close_code = 1009;
        return KW_RT_CLOSE;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > KW_EIO_MAX_PAYLOAD)
            cap = KW_EIO_MAX_PAYLOAD;
        char *grown = realloc(c->rx, cap);
        if (grown == NULL) {
            c->close_code = 1011;
            return KW_RT_CLOSE;
        }
        c->rx = grown;
        c->rx_cap = cap;
    }
    if (len > 0)
        memcpy(c->rx + c->rx_len, data, len);
    c->rx_len += len;
    if (!final)
        return KW_RT_CONTINUE;
    char *msg = c->rx;
    size_t msg_len = c->rx_len;
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    kw_rt_verdict v = on_message(rt, c, msg, msg_len, now_ms);
    free(msg);
    return v;
}

void kw_rt_conn_closed(kw_rt *rt, kw_rt_conn *c, int64_t now_ms)
{
    if (c->open) {
        socket_disconnect(rt, c, KW_RT_NSP_MEMBER, now_ms);
        socket_disconnect(rt, c, KW_RT_NSP_GUEST, now_ms);
        c->open = 0;
        if (rt->n_conns > 0)
            rt->n_conns--;
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    queue_free(c);
}

/* ---- HTTP: /socket.io/ without an upgrade -------------------------------------------------------
 */

int kw_rt_http(const kw_request *req, kw_response *res)
{
    if (req->path == NULL || strcmp(req->path, "/socket.io/") != 0)
        return 0;
    /* Polling (or a plain GET): a clear 400, with the codec's sentence as the detail. */
    kw_error e;
    kw_error_clear(&e);
    const char *query = req->query ? req->query : "";
    if (kw_eio_check_query(query, strlen(query), &e) == KW_OK)
        kw_error_set(&e, KW_ERR_INVALID_ARGUMENT,
                     "/socket.io/ needs a WebSocket upgrade (GET with Upgrade: websocket)");
    if (kw_response_error(res, KW_ERR_INVALID_ARGUMENT, e.detail) != KW_OK)
        res->status = 500;
    return 1;
}
