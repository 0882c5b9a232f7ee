/*
 * api_health.c — GET /healthz for load balancers and monitors, and GET /metrics in the
 * Prometheus text format (version 0.0.4) for scrapers. Both are public and read only
 * counters kept by the HTTP layer in struct kw_server; HEAD works on both (router.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "http.h"
#include "server.h"

static kw_err get_healthz(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    (void)srv;
    (void)req;
    (void)err;
    return kw_response_json(res, 200, "{\"status\":\"ok\"}");
}

/* Large enough for every line below with 20-digit counters. */
#define METRICS_MAX 2048

static kw_err get_metrics(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    char text[METRICS_MAX];
    size_t used = 0;
    int w = snprintf(text, sizeof text,
                     "# HELP keywave_http_requests_total HTTP requests answered, by status "
                     "class.\n"
                     "# TYPE keywave_http_requests_total counter\n");
    for (size_t i = 0; w > 0 && (size_t)w < sizeof text - used && i < 5; i++) {
        used += (size_t)w;
        w = snprintf(text + used, sizeof text - used,
                     "keywave_http_requests_total{class=\"%s\"} %" PRIu64 "\n", classes[i],
                     srv->http_status_classes[i]);
    }
    int64_t uptime_ms = req->now_ms - srv->started_ms;
    if (uptime_ms < 0)
        uptime_ms = 0; /* the wall clock went back */
    if (w > 0 && (size_t)w < sizeof text - used) {
        used += (size_t)w;
        w = snprintf(text + used, sizeof text - used,
                     "# HELP keywave_http_requests_in_flight HTTP requests received and not "
                     "yet answered.\n"
                     "# TYPE keywave_http_requests_in_flight gauge\n"
                     "keywave_http_requests_in_flight %" PRIu32 "\n"
                     "# HELP keywave_http_connections HTTP connections open.\n"
                     "# TYPE keywave_http_connections gauge\n"
                     "keywave_http_connections %" PRIu32 "\n"
                     "# HELP keywave_start_time_seconds When keywaved started, seconds since "
                     "the epoch.\n"
                     "# TYPE keywave_start_time_seconds gauge\n"
                     "keywave_start_time_seconds %" PRId64 ".%03d\n"
                     "# HELP keywave_uptime_seconds Seconds since keywaved started.\n"
                     "# TYPE keywave_uptime_seconds gauge\n"
                     "keywave_uptime_seconds %" PRId64 ".%03d\n",
                     srv->http_in_flight, srv->http_connections, srv->started_ms / 1000,
                     (int)(srv->started_ms % 1000), uptime_ms / 1000, (int)(uptime_ms % 1000));
    }
    if (w < 0 || (size_t)w >= sizeof text - used)
        return kw_error_set(err, KW_ERR_INTERNAL, "The metrics text does not fit.");
    used += (size_t)w;
    return kw_response_bytes(res, 200, "text/plain; version=0.0.4; charset=utf-8", text, used);
}

const kw_route kw_routes_health[] = {
    {KW_GET, "/healthz", KW_AUTH_NONE, get_healthz},
    {KW_GET, "/metrics", KW_AUTH_NONE, get_metrics},
    {0, NULL, 0, NULL},
};
