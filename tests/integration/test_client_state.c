/*
 * test_client_state.c — the CLI's pieces that need no server: the state directory and
 * device file (0700 / 0600, atomic rewrite, every malformed file refused), path-safe ids,
 * peer ids of the media-key agreement, and the payload kind the transport chooses by.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kwtest.h"
#include "peer.h"
#include "state.h"

static char root[64];

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (KWT_CHECK(f != NULL)) {
        fputs(text, f);
        fclose(f);
    }
}

static void state_dir_and_device_round_trip(void)
{
    kwc_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    kw_error err;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a/b/keywave", root);
    KWT_ERR(kwc_state_init(&ctx, dir, &err), KW_OK);
    struct stat st;
    KWT_CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);

    kwc_device d, back;
    KWT_ERR(kwc_device_load(&ctx, &back, &err), KW_ERR_NOT_FOUND);
    KWT_CHECK(strstr(err.detail, "keywave enroll") != NULL);
    memset(&d, 0, sizeof d);
    snprintf(d.server, sizeof d.server, "http://127.0.0.1:8080");
    snprintf(d.user_id, sizeof d.user_id, "usr_0123456789abcdef");
    snprintf(d.client_id, sizeof d.client_id, "0c11ebd3fdac64c6f164e66af6e089f8");
    snprintf(d.session_secret, sizeof d.session_secret,
             "SMDyC8RqgtAth01uyck-S9peCf9AANYAct8ql_Omku8");
    d.device_id = 7;
    KWT_ERR(kwc_device_save(&ctx, &d, &err), KW_OK);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/device.json", dir);
    KWT_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    KWT_ERR(kwc_device_load(&ctx, &back, &err), KW_OK);
    KWT_CHECK(memcmp(&d, &back, sizeof d) == 0);
    kwc_device_wipe(&back);
    KWT_STREQ(back.session_secret, "");

    /* Malformed files are refused, whatever is wrong. */
    const char *bad[] = {
        "not json",
        "{\"server\":\"s\",\"user_id\":\"u\",\"client_id\":\"c\",\"session_secret\":\"x\"}",
        "{\"server\":\"s\",\"user_id\":\"u\",\"client_id\":\"c\",\"session_secret\":\"x\","
        "\"device_id\":0}",
        "{\"server\":\"s\",\"user_id\":\"\",\"client_id\":\"c\",\"session_secret\":\"x\","
        "\"device_id\":1}",
        "{\"server\":\"s\",\"user_id\":\"u\",\"client_id\":\"c\",\"device_id\":1}",
        "{\"server\":\"s\",\"server\":\"t\",\"user_id\":\"u\",\"client_id\":\"c\","
        "\"session_secret\":\"x\",\"device_id\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(dir, "device.json", bad[i]);
        KWT_ERR(kwc_device_load(&ctx, &back, &err), KW_ERR_JSON);
    }

    /* Forgetting removes the device and the key store. */
    KWT_ERR(kwc_device_save(&ctx, &d, &err), KW_OK);
    snprintf(path, sizeof path, "%s/keys", dir);
    KWT_CHECK(mkdir(path, 0700) == 0);
    write_text(path, "record", "x");
    KWT_ERR(kwc_device_forget(&ctx, &err), KW_OK);
    KWT_CHECK(access(path, F_OK) != 0);
    KWT_ERR(kwc_device_load(&ctx, &back, &err), KW_ERR_NOT_FOUND);
    KWT_ERR(kwc_device_forget(&ctx, &err), KW_OK); /* twice is fine */
}

static void ids_are_path_safe(void)
{
    KWT_CHECK(kwc_id_ok("mtg_a1b2c3d4e5f6"));
    KWT_CHECK(kwc_id_ok("A-z_9"));
    KWT_CHECK(!kwc_id_ok(""));
    KWT_CHECK(!kwc_id_ok(NULL));
    KWT_CHECK(!kwc_id_ok("a/b"));
    KWT_CHECK(!kwc_id_ok("a b"));
    KWT_CHECK(!kwc_id_ok("a%2F"));
    KWT_CHECK(!kwc_id_ok("../x"));
    KWT_CHECK(!kwc_id_ok("a?x=1"));
    char long_id[KWC_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[KWC_ID_MAX + 1] = '\0';
    KWT_CHECK(!kwc_id_ok(long_id));
    long_id[KWC_ID_MAX] = '\0';
    KWT_CHECK(kwc_id_ok(long_id));
}

static void peer_ids(void)
{
    kwc_peer p;
    char id[KWC_PEER_ID_MAX + 1];
    KWT_EQ(kwc_peer_parse("usr_0123:12", &p), 0);
    KWT_CHECK(!p.is_guest);
    KWT_STREQ(p.name, "usr_0123");
    KWT_EQ(p.device, 12u);
    kwc_peer_id(&p, id, sizeof id);
    KWT_STREQ(id, "usr_0123:12");
    KWT_EQ(kwc_peer_parse("guest_0123456789abcdef0123456789abcdef", &p), 0);
    KWT_CHECK(p.is_guest);
    KWT_STREQ(p.session_id, "0123456789abcdef0123456789abcdef");
    KWT_STREQ(p.name, "guest_0123456789abcdef0123456789abcdef");
    KWT_EQ(p.device, 1u);
    const char *bad[] = {"usr", "usr:",  "usr:0",  "usr:01",    "usr:-1",         "usr:x",
                         ":1",  "u/x:1", "guest_", "guest_a/b", "usr:99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        KWT_EQ(kwc_peer_parse(bad[i], &p), -1);
}

static void payload_kinds(void)
{
    char type[40], rid[80];
    kwc_payload_kind("{\"type\":\"media_key_request\",\"request_id\":\"00112233445566778899\"}",
                     type, sizeof type, rid, sizeof rid);
    KWT_STREQ(type, "media_key_request");
    KWT_STREQ(rid, "00112233445566778899");
    kwc_payload_kind("{\"type\":\"media_key\",\"request_id\":null}", type, sizeof type, rid,
                     sizeof rid);
    KWT_STREQ(type, "media_key");
    KWT_STREQ(rid, "");
    kwc_payload_kind("garbage", type, sizeof type, rid, sizeof rid);
    KWT_STREQ(type, "");
    KWT_STREQ(rid, "");
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/keywave-client-state-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    KWT_RUN(state_dir_and_device_round_trip);
    KWT_RUN(ids_are_path_safe);
    KWT_RUN(peer_ids);
    KWT_RUN(payload_kinds);
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        return 1;
    return kwt_finish();
}
