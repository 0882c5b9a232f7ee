/*
 * member.c — opening a member command's device, connection and keys (member.h).
 */
#include "member.h"

#include <stdio.h>
#include <string.h>

int kwc_member_open(kwc_ctx *ctx, kwc_member *m, int with_keys)
{
    memset(m, 0, sizeof *m);
    kw_error err;
    kw_error_clear(&err);
    if (kwc_device_load(ctx, &m->dev, &err) != KW_OK)
        return kwc_fail(ctx, "%s", err.detail);
    if (kwc_net_new(m->dev.server, &m->net, &err) != KW_OK) {
        kwc_device_wipe(&m->dev);
        return kwc_fail_err(ctx, "server URL in device.json", &err);
    }
    m->api = (kwc_api){m->net, &m->dev, NULL};
    if (with_keys && kwc_member_identity(ctx, &m->dev, &m->store, &m->id, &err) != KW_OK) {
        kwc_member_close(m);
        return kwc_fail_err(ctx, "cannot open this device's keys", &err);
    }
    return 0;
}

void kwc_member_close(kwc_member *m)
{
    kw_identity_free(m->id);
    kw_store_free(m->store);
    kwc_net_free(m->net);
    kwc_device_wipe(&m->dev);
    memset(m, 0, sizeof *m);
}

void kwc_member_peer_id(const char *user_id, const char *device_id, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", user_id, device_id);
}
