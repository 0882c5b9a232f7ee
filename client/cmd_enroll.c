/*
 * cmd_enroll.c — `keywave enroll <server-url> <code>`: redeem an enrollment code for a
 * device session, keep it in device.json (0600), make this device's Signal keys and
 * publish their public halves.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "member_keys.h"
#include "state.h"

static const char help[] =
    "Usage: keywave enroll <server-url> <code> [--name DEVICE-NAME] [--force]\n"
    "\n"
    "Enrolls this machine as a device of the member the code belongs to (an administrator\n"
    "makes codes with 'keywaved user add|code'), makes its Signal keys and uploads the\n"
    "public keys. The device session is kept in the state directory (file 0600).\n"
    "  --name NAME   the device's name on the server (default: this host's name)\n"
    "  --force       enroll again, forgetting the current device and its keys\n";

static kw_err redeem(kwc_net *net, const char *code, const char *name, kwc_device *dev,
                     kw_error *err)
{
    kwc_api api = {net, NULL, NULL};
    json_t *body = json_pack("{s:s, s:s}", "code", code, "device_name", name);
    json_t *out = NULL;
    kw_err rc = body != NULL ? kwc_api_call(&api, "POST", "/api/auth/enroll", body, &out, NULL, err)
                             : kw_error_set(err, KW_ERR_NOMEM, "enroll");
    json_decref(body);
    if (rc != KW_OK)
        return rc;
    const char *user = json_string_value(json_object_get(out, "user_id"));
    const char *device = json_string_value(json_object_get(out, "device_id"));
    const char *cid = json_string_value(json_object_get(out, "client_id"));
    const char *secret = json_string_value(json_object_get(out, "session_secret"));
    long long dev_id = 0;
    if (user == NULL || device == NULL || cid == NULL || secret == NULL ||
        strlen(user) > KWC_ID_MAX || strlen(cid) > KWC_ID_MAX || strlen(secret) > KWC_SECRET_MAX ||
        kwc_parse_int(device, 1, UINT32_MAX, &dev_id) != 0)
        rc = kw_error_set(err, KW_ERR_JSON, "the server's enrollment answer is malformed");
    else {
        memcpy(dev->user_id, user, strlen(user) + 1);
        memcpy(dev->client_id, cid, strlen(cid) + 1);
        memcpy(dev->session_secret, secret, strlen(secret) + 1);
        dev->device_id = (uint32_t)dev_id;
    }
    json_decref(out);
    return rc;
}

int kwc_cmd_enroll(kwc_ctx *ctx, int argc, char **argv)
{
    if (kwc_wants_help(argc, argv)) {
        fputs(help, stdout);
        return KWC_EXIT_OK;
    }
    const char *pos[2] = {NULL, NULL};
    const char *name = NULL;
    int force = 0, npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (argv[i][0] == '-')
            return kwc_usage_error(ctx, "enroll", "unknown option '%s'", argv[i]);
        else if (npos < 2)
            pos[npos++] = argv[i];
        else
            return kwc_usage_error(ctx, "enroll", "too many arguments");
    }
    if (npos != 2)
        return kwc_usage_error(ctx, "enroll", "needs <server-url> and <code>");
    char host[65] = "keywave-cli";
    if (name == NULL && gethostname(host, sizeof host - 1) == 0 && host[0] != '\0')
        name = host;
    if (name == NULL)
        name = "keywave-cli";

    kw_error err;
    kw_error_clear(&err);
    kwc_device dev;
    if (kwc_device_load(ctx, &dev, &err) == KW_OK) {
        if (!force) {
            int rc = kwc_fail(ctx,
                              "already enrolled as %s device %u at %s (use --force to "
                              "enroll again)",
                              dev.user_id, dev.device_id, dev.server);
            kwc_device_wipe(&dev);
            return rc;
        }
        kwc_device_wipe(&dev);
        if (kwc_device_forget(ctx, &err) != KW_OK)
            return kwc_fail_err(ctx, "cannot forget the old device", &err);
    }
    memset(&dev, 0, sizeof dev);
    kwc_net *net = NULL;
    if (kwc_net_new(pos[0], &net, &err) != KW_OK)
        return kwc_fail_err(ctx, "server URL", &err);
    snprintf(dev.server, sizeof dev.server, "%s", kwc_net_base_url(net));
    int status = KWC_EXIT_OK;
    kw_store *store = NULL;
    kw_identity *id = NULL;
    kwc_api api = {net, &dev, NULL};
    if (redeem(net, pos[1], name, &dev, &err) != KW_OK)
        status = kwc_fail_err(ctx, "enrollment failed", &err);
    else if (kwc_device_save(ctx, &dev, &err) != KW_OK)
        status = kwc_fail_err(ctx, "cannot save the device", &err);
    else if (kwc_member_identity(ctx, &dev, &store, &id, &err) != KW_OK ||
             kwc_member_keys_publish(&api, id, &err) != KW_OK)
        status = kwc_fail_err(ctx,
                              "enrolled, but the keys were not published (run 'keywave "
                              "keys refresh')",
                              &err);
    if (status == KWC_EXIT_OK) {
        if (ctx->json)
            kwc_print_json(ctx, json_pack("{s:s, s:s, s:I}", "server", dev.server, "user_id",
                                          dev.user_id, "device_id", (json_int_t)dev.device_id));
        else
            printf("Enrolled as %s, device %u, at %s. Keys published.\n", dev.user_id,
                   dev.device_id, dev.server);
    }
    kw_identity_free(id);
    kw_store_free(store);
    kwc_net_free(net);
    kwc_device_wipe(&dev);
    return status;
}
