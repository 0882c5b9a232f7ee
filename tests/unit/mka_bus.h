/*
 * mka_bus.h — a simulated meeting for the media-key agreement tests: a virtual clock, a
 * tiny presence server (video:check-participants / register / leave) and a message bus
 * that delivers every Signal payload after a random delay of 0..max_delay ms, so messages
 * overtake each other. Server events (participant joined/left) reach each recipient in
 * the order they were sent, as over one socket, but interleave freely with Signal
 * payloads; events addressed to a participant that has left since are dropped (its socket
 * is gone), while Signal payloads are still delivered to whoever holds that id now.
 *
 * Everything is driven by one seeded PRNG, so a failing seed replays exactly.
 * Header-only so the test stays one binary.
 */
#ifndef KEYWAVE_MKA_BUS_H
#define KEYWAVE_MKA_BUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keywave/media_key.h"

#define BUS_MAX_PARTS 16
#define BUS_MAX_STEPS 2000000 /* more means the message flood did not end */

static uint64_t bus_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 0..max inclusive. */
static int64_t bus_uniform(uint64_t *s, int64_t max)
{
    return max <= 0 ? 0 : (int64_t)(bus_splitmix(s) % (uint64_t)(max + 1));
}

/* A deterministic kw_random: ctx points at a splitmix64 state. */
static kw_err bus_random_fill(void *ctx, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)bus_splitmix(ctx);
    return KW_OK;
}

typedef enum bus_ev_kind { EV_SIGNAL = 1, EV_JOINED, EV_LEFT, EV_REGISTER } bus_ev_kind;

typedef struct bus_ev {
    int64_t at;     /* delivery time, ms */
    uint64_t order; /* random tie-break among equal times */
    bus_ev_kind kind;
    int from, to;         /* participant indexes (REGISTER: to = who registers) */
    unsigned incarnation; /* JOINED/LEFT/REGISTER: dropped if `to` left since */
    int64_t joined_ms;    /* JOINED */
    char payload[KW_MKA_PAYLOAD_MAX + 1];
    size_t len;
} bus_ev;

typedef struct bus_part {
    char id[40];
    kw_mka *m;
    uint64_t rng; /* this participant's kw_random state */
    kw_random rnd;
    bool started;        /* kw_mka_start called since the last leave */
    bool present;        /* registered with the server */
    bool reg_pending;    /* a REGISTER event is scheduled */
    bool auto_register;  /* registers once it holds a key (the seed's PreJoin flow) */
    bool muted;          /* its device vanished unnoticed: nothing in, nothing out */
    bool register_first; /* registers right after starting, before it has a key */
    unsigned incarnation;
    int64_t joined_ms;
    int keys_seen;     /* KEY actions since the last reset of the counter */
    int failed_seen;   /* FAILED actions */
    int64_t key_at;    /* time of the last KEY action */
    int64_t failed_at; /* time of the last FAILED action */
    kw_media_key last_key;
} bus_part;

typedef struct bus {
    uint64_t rng;
    int64_t now;
    int64_t max_delay; /* Signal payloads: min_delay..max_delay ms */
    int64_t min_delay;
    int64_t server_delay;   /* server events: 0..server_delay ms, FIFO per recipient */
    int64_t register_delay; /* key -> register: 0..register_delay ms */
    bus_part p[BUS_MAX_PARTS];
    int np;
    bus_ev *ev;
    size_t nev, cap;
    int64_t fifo_at[BUS_MAX_PARTS];
    uint64_t sent;  /* Signal payloads sent */
    int unexpected; /* inputs that returned an error they should not have */
    int steps_exceeded;
} bus;

static void bus_init(bus *b, uint64_t seed, int64_t max_delay)
{
    memset(b, 0, sizeof *b);
    b->rng = seed * 0x2545f4914f6cdd1dULL + 1;
    b->now = 1000;
    b->max_delay = max_delay;
    b->server_delay = max_delay / 2;
    b->register_delay = max_delay;
}

static int bus_add(bus *b, const char *id)
{
    int i = b->np++;
    bus_part *p = &b->p[i];
    snprintf(p->id, sizeof p->id, "%s", id);
    p->rng = bus_splitmix(&b->rng);
    p->rnd.fill = bus_random_fill;
    p->rnd.ctx = &p->rng;
    p->auto_register = true;
    if (kw_mka_new(id, &p->rnd, &p->m) != KW_OK)
        b->unexpected++;
    return i;
}

static void bus_free(bus *b)
{
    for (int i = 0; i < b->np; i++)
        kw_mka_free(b->p[i].m);
    free(b->ev);
    memset(b, 0, sizeof *b);
}

static int bus_find(const bus *b, const char *id)
{
    for (int i = 0; i < b->np; i++)
        if (strcmp(b->p[i].id, id) == 0)
            return i;
    return -1;
}

static bus_ev *bus_push(bus *b, bus_ev_kind kind, int from, int to, int64_t at)
{
    if (b->nev == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->ev = realloc(b->ev, b->cap * sizeof *b->ev);
        if (b->ev == NULL)
            abort(); /* test harness only */
    }
    bus_ev *e = &b->ev[b->nev++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->from = from;
    e->to = to;
    e->at = at;
    e->order = bus_splitmix(&b->rng);
    e->incarnation = b->p[to].incarnation;
    return e;
}

/* A server event to `to`, after every earlier server event to it. */
static bus_ev *bus_push_server(bus *b, bus_ev_kind kind, int from, int to)
{
    int64_t at = b->now + bus_uniform(&b->rng, b->server_delay);
    if (at < b->fifo_at[to])
        at = b->fifo_at[to];
    b->fifo_at[to] = at;
    bus_ev *e = bus_push(b, kind, from, to, at);
    e->order = 0; /* FIFO among equal times too */
    return e;
}

/* Carries out what participant i asked for. */
static void bus_drain(bus *b, int i)
{
    bus_part *p = &b->p[i];
    kw_mka_action a;
    while (kw_mka_next_action(p->m, &a)) {
        switch (a.type) {
        case KW_MKA_ACTION_SEND: {
            if (p->muted)
                break;
            int to = bus_find(b, a.to);
            if (to < 0) {
                b->unexpected++;
                break;
            }
            int64_t delay = b->min_delay + bus_uniform(&b->rng, b->max_delay - b->min_delay);
            bus_ev *e = bus_push(b, EV_SIGNAL, i, to, b->now + delay);
            memcpy(e->payload, a.payload, a.payload_len + 1);
            e->len = a.payload_len;
            b->sent++;
            break;
        }
        case KW_MKA_ACTION_KEY:
            p->last_key = a.key;
            p->keys_seen++;
            p->key_at = b->now;
            if (p->auto_register && !p->present && !p->reg_pending) {
                p->reg_pending = true;
                bus_push(b, EV_REGISTER, i, i, b->now + bus_uniform(&b->rng, b->register_delay));
            }
            break;
        case KW_MKA_ACTION_FAILED:
            p->failed_seen++;
            p->failed_at = b->now;
            if (a.error != KW_ERR_KEY_EXCHANGE_FAILED)
                b->unexpected++;
            break;
        }
        kw_mka_action_wipe(&a);
    }
}

static void bus_register_later(bus *b, int i, int64_t delay);

/* video:check-participants then kw_mka_start: the peers are who is registered now. */
static kw_err bus_start(bus *b, int i)
{
    kw_mka_peer peers[BUS_MAX_PARTS];
    size_t n = 0;
    for (int j = 0; j < b->np; j++)
        if (j != i && b->p[j].present)
            peers[n++] = (kw_mka_peer){b->p[j].id, b->p[j].joined_ms};
    kw_err rc = kw_mka_start(b->p[i].m, b->now, peers, n);
    if (rc == KW_OK)
        b->p[i].started = true;
    bus_drain(b, i);
    if (rc == KW_OK && b->p[i].register_first && !b->p[i].present && !b->p[i].reg_pending)
        bus_register_later(b, i, b->register_delay);
    return rc;
}

/* video:register-participant: present from now; everyone present hears about it. */
static void bus_register(bus *b, int i)
{
    bus_part *p = &b->p[i];
    p->present = true;
    p->reg_pending = false;
    p->joined_ms = b->now;
    for (int j = 0; j < b->np; j++)
        if (j != i && b->p[j].present)
            bus_push_server(b, EV_JOINED, i, j)->joined_ms = p->joined_ms;
}

/* Schedules i's registration after 0..delay ms. */
static void bus_register_later(bus *b, int i, int64_t delay)
{
    b->p[i].reg_pending = true;
    bus_push(b, EV_REGISTER, i, i, b->now + bus_uniform(&b->rng, delay));
}

/* video:leave-channel (or a disconnect): reset, and everyone present hears about it. */
static void bus_leave(bus *b, int i)
{
    bus_part *p = &b->p[i];
    bool was_present = p->present;
    kw_mka_leave(p->m);
    p->started = p->present = p->reg_pending = false;
    p->incarnation++;
    if (!was_present)
        return;
    for (int j = 0; j < b->np; j++)
        if (j != i && b->p[j].present)
            bus_push_server(b, EV_LEFT, i, j);
}

static kw_err bus_rotate(bus *b, int i)
{
    kw_err rc = kw_mka_rotate(b->p[i].m, b->now);
    bus_drain(b, i);
    return rc;
}

/* Puts a payload on the wire from `from` to `to` as if from's machine had sent it. */
static void bus_inject(bus *b, int from, int to, const char *payload, int64_t delay)
{
    bus_ev *e = bus_push(b, EV_SIGNAL, from, to, b->now + delay);
    size_t n = strlen(payload);
    memcpy(e->payload, payload, n + 1);
    e->len = n;
}

static void bus_deliver(bus *b, bus_ev *e)
{
    bus_part *to = &b->p[e->to];
    kw_err rc = KW_OK;
    if (to->muted)
        return;
    switch (e->kind) {
    case EV_SIGNAL:
        rc = kw_mka_receive(to->m, b->now, b->p[e->from].id, e->payload, e->len, NULL);
        /* A key offered to someone idle or failed is refused; nothing else may fail. */
        if (rc != KW_OK && rc != KW_ERR_STATE)
            b->unexpected++;
        break;
    case EV_JOINED:
        if (e->incarnation != to->incarnation)
            return;
        rc = kw_mka_peer_joined(to->m, b->now, b->p[e->from].id, e->joined_ms);
        if (rc != KW_OK)
            b->unexpected++;
        break;
    case EV_LEFT:
        if (e->incarnation != to->incarnation)
            return;
        rc = kw_mka_peer_left(to->m, b->now, b->p[e->from].id);
        if (rc != KW_OK)
            b->unexpected++;
        break;
    case EV_REGISTER:
        if (e->incarnation != to->incarnation || !to->reg_pending)
            return;
        bus_register(b, e->to);
        return;
    }
    bus_drain(b, e->to);
}

/* The earliest thing that will happen: an event, or a participant's request deadline. */
static int64_t bus_next_time(const bus *b)
{
    int64_t t = INT64_MAX;
    for (size_t k = 0; k < b->nev; k++)
        if (b->ev[k].at < t)
            t = b->ev[k].at;
    for (int i = 0; i < b->np; i++) {
        int64_t d = kw_mka_deadline(b->p[i].m);
        if (d < t)
            t = d;
    }
    return t;
}

/* Does the next thing. Returns false when nothing is left to do. */
static bool bus_step(bus *b)
{
    int64_t t = bus_next_time(b);
    if (t == INT64_MAX)
        return false;
    if (t > b->now)
        b->now = t;
    for (int i = 0; i < b->np; i++) {
        if (kw_mka_deadline(b->p[i].m) <= b->now) {
            if (kw_mka_tick(b->p[i].m, b->now) != KW_OK)
                b->unexpected++;
            bus_drain(b, i);
            return true;
        }
    }
    size_t best = 0;
    for (size_t k = 1; k < b->nev; k++)
        if (b->ev[k].at < b->ev[best].at ||
            (b->ev[k].at == b->ev[best].at && b->ev[k].order < b->ev[best].order))
            best = k;
    bus_ev e = b->ev[best];
    b->ev[best] = b->ev[--b->nev];
    bus_deliver(b, &e);
    return true;
}

/* Runs everything due up to `until`, then sets the clock to it. */
static void bus_run_until(bus *b, int64_t until)
{
    for (long steps = 0; bus_next_time(b) <= until; steps++) {
        if (steps > BUS_MAX_STEPS) {
            b->steps_exceeded++;
            return;
        }
        bus_step(b);
    }
    if (until > b->now)
        b->now = until;
}

/* Runs until no message is in flight and no timer is pending. */
static bool bus_quiesce(bus *b)
{
    for (long steps = 0; bus_step(b); steps++)
        if (steps > BUS_MAX_STEPS) {
            b->steps_exceeded++;
            return false;
        }
    return true;
}

/*
 * True when every present participant holds a key (or, with keyless_ok, every present
 * participant that holds one) and all those keys are identical; *out gets it.
 */
static bool bus_agree_some(const bus *b, bool keyless_ok, kw_media_key *out)
{
    bool any = false;
    kw_media_key first, k;
    memset(&first, 0, sizeof first);
    for (int i = 0; i < b->np; i++) {
        if (!b->p[i].present)
            continue;
        if (kw_mka_current_key(b->p[i].m, &k) != KW_OK) {
            if (keyless_ok)
                continue;
            return false;
        }
        if (!any)
            first = k;
        else if (kw_media_key_compare(&first, &k) != 0)
            return false;
        any = true;
    }
    if (out)
        *out = first;
    return true;
}

static bool bus_agree(const bus *b, kw_media_key *out)
{
    return bus_agree_some(b, false, out);
}

#endif
