/*
 * test_srv_rate_limit.c — the sliding-window limiter behind INV-2 (3 bundle fetches per
 * minute per pair): the window boundary (a hit at t counts until t + window - 1), the
 * Retry-After seconds, independent pairs, refunds, failing closed when every slot is
 * active, and a long random run checked against a plain model (which exercises the
 * table's deletions).
 */
#include <stdio.h>
#include <string.h>

#include "kwtest.h"
#include "rate_limit.h"

#define T0 1763800000000LL

static void three_per_minute(void)
{
    kw_rate_limit *rl = NULL;
    KWT_ERR(kw_rate_limit_new(KW_BUNDLE_FETCH_LIMIT, KW_BUNDLE_FETCH_WINDOW_MS, 16, &rl), KW_OK);
    if (rl == NULL)
        return;
    int64_t retry = 0;
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0, &retry), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 1000, &retry), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 2000, &retry), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 2000, &retry), KW_ERR_RATE_LIMITED);
    KWT_EQ(retry, 58); /* the first hit leaves the window at T0 + 60 s */
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 59999, &retry), KW_ERR_RATE_LIMITED);
    KWT_EQ(retry, 1); /* 1 ms, rounded up to a whole second */
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 60000, &retry), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 60000, &retry), KW_ERR_RATE_LIMITED);
    KWT_EQ(retry, 1);
    KWT_ERR(kw_rate_limit_take(rl, "m:a:1", "m:b:1", T0 + 62000, NULL), KW_OK);
    kw_rate_limit_free(rl);
}

static void pairs_are_independent(void)
{
    kw_rate_limit *rl = NULL;
    KWT_ERR(kw_rate_limit_new(1, 1000, 16, &rl), KW_OK);
    if (rl == NULL)
        return;
    KWT_ERR(kw_rate_limit_take(rl, "a", "b", T0, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "a", "b", T0, NULL), KW_ERR_RATE_LIMITED);
    KWT_ERR(kw_rate_limit_take(rl, "b", "a", T0, NULL), KW_OK); /* the other direction */
    KWT_ERR(kw_rate_limit_take(rl, "a", "c", T0, NULL), KW_OK); /* another target */
    KWT_ERR(kw_rate_limit_take(rl, "ab", "", T0, NULL), KW_OK); /* not "a" + "b" */
    KWT_ERR(kw_rate_limit_take(rl, "", "ab", T0, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "", "", T0, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "", "", T0, NULL), KW_ERR_RATE_LIMITED);
    char big[2000]; /* longer than the hashing buffer on the stack */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    KWT_ERR(kw_rate_limit_take(rl, big, big, T0, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, big, big, T0, NULL), KW_ERR_RATE_LIMITED);
    kw_rate_limit_free(rl);
}

static void refund_gives_back_the_newest_hit(void)
{
    kw_rate_limit *rl = NULL;
    KWT_ERR(kw_rate_limit_new(2, 1000, 4, &rl), KW_OK);
    if (rl == NULL)
        return;
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0 + 500, NULL), KW_OK);
    kw_rate_limit_refund(rl, "s", "o"); /* the T0 + 500 hit */
    int64_t retry = 0;
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0 + 600, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0 + 600, &retry), KW_ERR_RATE_LIMITED);
    kw_rate_limit_refund(rl, "s", "o");
    kw_rate_limit_refund(rl, "s", "o");
    kw_rate_limit_refund(rl, "s", "o"); /* nothing left: a no-op */
    kw_rate_limit_refund(rl, "never", "seen");
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0 + 600, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0 + 600, NULL), KW_OK);
    KWT_ERR(kw_rate_limit_take(rl, "s", "o", T0 + 600, NULL), KW_ERR_RATE_LIMITED);
    kw_rate_limit_free(rl);
}

static void full_table_fails_closed(void)
{
    kw_rate_limit *rl = NULL;
    KWT_ERR(kw_rate_limit_new(1, 10000, 4, &rl), KW_OK);
    if (rl == NULL)
        return;
    char name[16];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "p%d", i);
        KWT_ERR(kw_rate_limit_take(rl, name, "t", T0 + i * 1000, NULL), KW_OK);
    }
    int64_t retry = 0;
    KWT_ERR(kw_rate_limit_take(rl, "p4", "t", T0 + 4000, &retry), KW_ERR_RATE_LIMITED);
    KWT_EQ(retry, 6); /* p0 leaves the window at T0 + 10 s */
    KWT_ERR(kw_rate_limit_take(rl, "p4", "t", T0 + 9999, &retry), KW_ERR_RATE_LIMITED);
    KWT_ERR(kw_rate_limit_take(rl, "p4", "t", T0 + 10000, NULL), KW_OK); /* p0 swept */
    KWT_ERR(kw_rate_limit_take(rl, "p5", "t", T0 + 10000, NULL), KW_ERR_RATE_LIMITED);
    KWT_ERR(kw_rate_limit_take(rl, "p1", "t", T0 + 10000, NULL), KW_ERR_RATE_LIMITED); /* own */
    kw_rate_limit_free(rl);
}

static void bad_parameters(void)
{
    kw_rate_limit *rl = (kw_rate_limit *)1;
    KWT_ERR(kw_rate_limit_new(0, 1000, 4, &rl), KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(rl == NULL);
    KWT_ERR(kw_rate_limit_new(KW_RATE_LIMIT_HITS_MAX + 1, 1000, 4, &rl), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_rate_limit_new(1, 0, 4, &rl), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_rate_limit_new(1, 1000, 0, &rl), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_rate_limit_new(1, 1000, KW_RATE_LIMIT_CAPACITY_MAX + 1, &rl),
            KW_ERR_INVALID_ARGUMENT);
    kw_rate_limit_free(NULL);
}

/* ---- random run against a model ------------------------------------------------------ */

#define PAIRS    40
#define LIMIT    2
#define WINDOW   100
#define CAPACITY 8
#define STEPS    20000

typedef struct model_pair {
    int64_t hits[LIMIT];
    int n;
} model_pair;

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void model_expire(model_pair *p, int64_t now)
{
    int k = 0;
    while (k < p->n && p->hits[k] + WINDOW <= now)
        k++;
    memmove(p->hits, p->hits + k, (size_t)(p->n - k) * sizeof p->hits[0]);
    p->n -= k;
}

static void random_run_matches_model(void)
{
    kw_rate_limit *rl = NULL;
    KWT_ERR(kw_rate_limit_new(LIMIT, WINDOW, CAPACITY, &rl), KW_OK);
    if (rl == NULL)
        return;
    static model_pair model[PAIRS];
    memset(model, 0, sizeof model);
    int64_t now = T0;
    int mismatches = 0, limited = 0, refunds = 0;
    for (int step = 0; step < STEPS && mismatches < 5; step++) {
        now += rng() % 12;
        int p = (int)(rng() % PAIRS);
        char name[16];
        snprintf(name, sizeof name, "pair-%d", p);
        int active = 0;
        for (int i = 0; i < PAIRS; i++) {
            model_expire(&model[i], now);
            active += model[i].n > 0;
        }
        kw_err want;
        if (model[p].n >= LIMIT)
            want = KW_ERR_RATE_LIMITED;
        else if (model[p].n == 0 && active >= CAPACITY)
            want = KW_ERR_RATE_LIMITED; /* a new pair with every slot active */
        else
            want = KW_OK;
        kw_err got = kw_rate_limit_take(rl, name, "x", now, NULL);
        if (got != want) {
            mismatches++;
            printf("    step %d pair %d: got %s want %s\n", step, p, kw_err_name(got),
                   kw_err_name(want));
        }
        if (want == KW_OK) {
            model[p].hits[model[p].n++] = now;
            if (rng() % 10 == 0) { /* sometimes the fetch fails and the hit is refunded */
                kw_rate_limit_refund(rl, name, "x");
                model[p].n--;
                refunds++;
            }
        } else {
            limited++;
        }
    }
    KWT_EQ(mismatches, 0);
    KWT_CHECK(limited > 100 && refunds > 100); /* both paths were exercised */
    kw_rate_limit_free(rl);
}

int main(void)
{
    KWT_RUN(three_per_minute);
    KWT_RUN(pairs_are_independent);
    KWT_RUN(refund_gives_back_the_newest_hit);
    KWT_RUN(full_table_fails_closed);
    KWT_RUN(bad_parameters);
    KWT_RUN(random_run_matches_model);
    return kwt_finish();
}
