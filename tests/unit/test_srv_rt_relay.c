/*
 * test_srv_rt_relay.c — the parts of the relay increment that a socket test cannot reach
 * in reasonable time: the guests' per-socket event limit across minute windows
 * (kw_rt_guest_rate), and the REST notice helpers being no-ops without realtime
 * (handler tests run with srv->rt NULL). The relays themselves run against a real
 * keywaved in tests/interop/realtime_relay.test.mjs.
 */
#include <string.h>

#include "kwtest.h"
#include "rt.h"
#include "server.h"

#define T0     1763800000000LL
#define MINUTE 60000LL

/* Sends n events at now_ms; returns how many were accepted. */
static int burst(kw_rt_guest *g, int n, int64_t now_ms)
{
    int ok = 0;
    kw_error e;
    for (int i = 0; i < n; i++)
        if (kw_rt_guest_rate(g, now_ms, &e) == KW_OK)
            ok++;
    return ok;
}

static void rate_first_minute_exactly_100(void)
{
    kw_rt_guest g;
    memset(&g, 0, sizeof g);
    kw_error e;
    KWT_EQ(burst(&g, KW_RT_GUEST_EVENTS_PER_MIN, T0), KW_RT_GUEST_EVENTS_PER_MIN);
    KWT_ERR(kw_rt_guest_rate(&g, T0, &e), KW_ERR_RATE_LIMITED);
    /* Still the same minute, 1 ms before it ends: refused. */
    KWT_ERR(kw_rt_guest_rate(&g, T0 + MINUTE - 1, &e), KW_ERR_RATE_LIMITED);
    /* Refused events are not counted. */
    KWT_EQ(g.rate_cur, KW_RT_GUEST_EVENTS_PER_MIN);
}

static void rate_sliding_no_double_burst(void)
{
    kw_rt_guest g;
    memset(&g, 0, sizeof g);
    /* 100 at the very end of a minute: right after the boundary almost nothing more is
     * allowed (a fixed window would allow another 100 at once). */
    KWT_EQ(burst(&g, 1, T0), 1);
    KWT_EQ(burst(&g, 99, T0 + MINUTE - 1), 99);
    KWT_EQ(burst(&g, 100, T0 + MINUTE), 0);
    /* Half a minute later half the previous window has slid out: about 50 more. */
    int half = burst(&g, 100, T0 + MINUTE + MINUTE / 2);
    KWT_CHECK(half >= 49 && half <= 51);
}

static void rate_recovers_after_quiet(void)
{
    kw_rt_guest g;
    memset(&g, 0, sizeof g);
    KWT_EQ(burst(&g, 150, T0), 100);
    /* Two minutes later the old windows are gone: a full 100 again. */
    KWT_EQ(burst(&g, 150, T0 + 2 * MINUTE), 100);
    /* A clock going back restarts the window rather than refusing forever. */
    KWT_EQ(burst(&g, 100, T0), 100);
}

static void notices_without_realtime_are_noops(void)
{
    kw_server srv;
    memset(&srv, 0, sizeof srv); /* srv.rt == NULL */
    /* Each takes its payload (no leak under ASan) and sends nothing. */
    KWT_EQ(kw_rt_emit_to_meeting_members(&srv, "mtg_1", "meeting:guest_admitted",
                                         json_pack("{s:s}", "meeting_id", "mtg_1")),
           0);
    KWT_EQ(kw_rt_emit_to_guest(&srv, "mtg_1", "0123456789abcdef0123456789abcdef",
                               "meeting:admission_granted", json_object()),
           0);
    KWT_EQ(kw_rt_emit_to_device(&srv, "usr_1", "1", "prekeys:low", json_pack("{s:i}", "count", 3)),
           0);
    KWT_EQ(kw_rt_emit_to_device(&srv, "usr_1", "1", "prekeys:low", NULL), 0);
    KWT_EQ(kw_rt_emit_to_meeting_members(NULL, "mtg_1", "x", json_object()), 0);
}

int main(void)
{
    KWT_RUN(rate_first_minute_exactly_100);
    KWT_RUN(rate_sliding_no_double_burst);
    KWT_RUN(rate_recovers_after_quiet);
    KWT_RUN(notices_without_realtime_are_noops);
    return kwt_finish();
}
