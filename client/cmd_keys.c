/*
 * cmd_keys.c — `keywave keys status|refresh`: this device's Signal keys, here and on the
 * server.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "member.h"
#include "member_keys.h"

static const char help[] =
    "Usage: keywave keys status | keywave keys refresh\n"
    "\n"
    "  status   this device's identity, signed pre-key age, and one-time pre-keys held\n"
    "           locally and left on the server\n"
    "  refresh  regenerate the signed pre-key when older than 7 days and upload 30 more\n"
    "           one-time pre-keys when fewer than 10 are left on the server\n";

static int status_cmd(kwc_ctx *ctx, kwc_member *m)
{
    kw_error err;
    kw_error_clear(&err);
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    size_t local = 0;
    json_t *count = NULL;
    if (kw_keys_identity(m->id, &pub, &err) != KW_OK ||
        kw_keys_signed_pre_key(m->id, &spk, &err) != KW_OK ||
        kw_keys_local_pre_key_count(m->id, &local, &err) != KW_OK)
        return kwc_fail_err(ctx, "local keys", &err);
    if (kwc_api_call(&m->api, "GET", "/api/keys/count", NULL, &count, NULL, &err) != KW_OK)
        return kwc_fail_err(ctx, "server", &err);
    json_int_t server = json_integer_value(json_object_get(count, "count"));
    json_decref(count);
    int64_t age_ms = kwc_now_ms() - spk.created_ms;
    int expired = age_ms > KW_SIGNED_PREKEY_MAX_AGE_MS;
    if (ctx->json) {
        kwc_print_json(ctx,
                       json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:I}", "user_id",
                                 m->dev.user_id, "device_id", (json_int_t)m->dev.device_id,
                                 "registration_id", (json_int_t)pub.registration_id,
                                 "signed_pre_key_id", (json_int_t)spk.id, "signed_pre_key_age_ms",
                                 (json_int_t)age_ms, "signed_pre_key_expired", expired,
                                 "local_pre_keys", (json_int_t)local, "server_pre_keys", server));
        return KWC_EXIT_OK;
    }
    printf("device:          %s device %u at %s\n", m->dev.user_id, m->dev.device_id,
           m->dev.server);
    printf("registration id: %u\n", pub.registration_id);
    printf("signed pre-key:  id %u, %" PRId64 " hours old%s\n", spk.id, age_ms / 3600000,
           expired ? " (expired: run 'keywave keys refresh')" : "");
    printf("pre-keys:        %zu held here, %lld left on the server%s\n", local, (long long)server,
           server < KW_PREKEY_LOW_WATER ? " (low: run 'keywave keys refresh')" : "");
    return KWC_EXIT_OK;
}

static int refresh_cmd(kwc_ctx *ctx, kwc_member *m)
{
    kw_error err;
    kw_error_clear(&err);
    size_t count = 0, uploaded = 0;
    if (kwc_member_keys_refresh(&m->api, m->id, &count, &uploaded, &err) != KW_OK)
        return kwc_fail_err(ctx, "refresh failed", &err);
    if (ctx->json)
        kwc_print_json(ctx, json_pack("{s:I, s:I}", "uploaded", (json_int_t)uploaded,
                                      "server_pre_keys", (json_int_t)count));
    else
        printf("Uploaded %zu one-time pre-keys; %zu on the server.\n", uploaded, count);
    return KWC_EXIT_OK;
}

int kwc_cmd_keys(kwc_ctx *ctx, int argc, char **argv)
{
    if (kwc_wants_help(argc, argv)) {
        fputs(help, stdout);
        return KWC_EXIT_OK;
    }
    if (argc != 2 || (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "refresh") != 0))
        return kwc_usage_error(ctx, "keys", "expected 'status' or 'refresh'");
    kwc_member m;
    int rc = kwc_member_open(ctx, &m, 1);
    if (rc != 0)
        return rc;
    rc = strcmp(argv[1], "status") == 0 ? status_cmd(ctx, &m) : refresh_cmd(ctx, &m);
    kwc_member_close(&m);
    return rc;
}
