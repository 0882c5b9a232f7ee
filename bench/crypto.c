/*
 * bench/crypto.c — libkeywave's crypto throughput on one core: Signal session setups,
 * 1:1 and sender-key encrypt+decrypt, LiveKit frame encryption at 1 KiB and 50 KiB.
 * Prints one `name value unit` line per figure; bench/run-crypto.sh puts them next to
 * `openssl speed -evp aes-128-gcm` measured in the same run. Never an assertion on time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keywave/bundle.h"
#include "keywave/frame.h"
#include "keywave/group.h"
#include "keywave/session.h"

#define NOW 1763800000000LL

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, kw_err rc, const kw_error *err)
{
    fprintf(stderr, "bench: %s: %s (%s)\n", what, kw_err_name(rc), err ? err->detail : "");
    exit(1);
}

typedef struct party {
    kw_store *store;
    kw_identity *id;
} party;

static void party_open(party *p, const char *name)
{
    kw_error err;
    kw_err rc = kw_store_mem_new(&p->store);
    if (rc != KW_OK)
        die("store", rc, NULL);
    kw_identity_config cfg = {KW_ROLE_MEMBER, p->store, NULL, name, 1};
    if ((rc = kw_identity_open(&cfg, &p->id, &err)) != KW_OK)
        die("identity", rc, &err);
    if ((rc = kw_keys_setup(p->id, NOW, NULL, NULL, NULL, &err)) != KW_OK)
        die("setup", rc, &err);
}

static void party_close(party *p)
{
    kw_identity_free(p->id);
    kw_store_free(p->store);
}

/*
 * One session setup, as NOTES.md measured it: the initiator processes a bundle (X3DH),
 * encrypts the first PreKey message, the responder decrypts it (X3DH responder side);
 * both then hold the session. The responder's one-time pre-key is replaced as the
 * replenishment rule does, so its cost is counted too.
 */
static void one_setup(party *a, party *b, uint32_t dev)
{
    kw_error err;
    kw_bundle bundle;
    kw_err rc = kw_bundle_self(b->id, "bob", 0, dev, &bundle, &err);
    if (rc == KW_OK)
        rc = kw_session_process_bundle(a->id, "bob", dev, &bundle, &err);
    int type;
    char *body = NULL;
    uint8_t *pt = NULL;
    size_t n;
    if (rc == KW_OK)
        rc = kw_session_encrypt(a->id, "bob", dev, (const uint8_t *)"hello", 5, &type, &body, &err);
    if (rc == KW_OK)
        rc = kw_session_decrypt(b->id, "alice", dev, type, body, &pt, &n, &err);
    free(body);
    free(pt);
    if (rc != KW_OK)
        die("session setup", rc, &err);
    size_t held = 0;
    char *json = NULL;
    if (kw_keys_local_pre_key_count(b->id, &held, &err) == KW_OK &&
        kw_keys_replenish(b->id, held, &json, &err) != KW_OK)
        die("replenish", KW_ERR_STORE, &err);
    free(json);
}

/* Setups per second. Pairs are renewed every 100 setups (outside the clock) so the
 * in-memory stores stay small, as they are for a real client. */
static void bench_setups(double seconds)
{
    double spent = 0;
    long count = 0;
    while (spent < seconds) {
        party a, b;
        party_open(&a, "alice");
        party_open(&b, "bob");
        double t0 = now_s();
        for (uint32_t dev = 1; dev <= 100; dev++)
            one_setup(&a, &b, dev);
        spent += now_s() - t0;
        count += 100;
        party_close(&a);
        party_close(&b);
    }
    printf("session_setups_per_s %.0f setups/s\n", (double)count / spent);
}

static void bench_one_to_one(double seconds)
{
    party a, b;
    party_open(&a, "alice");
    party_open(&b, "bob");
    one_setup(&a, &b, 1);
    uint8_t msg[100];
    memset(msg, 'x', sizeof msg);
    long count = 0;
    kw_error err;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 500; i++) {
            int type;
            char *body = NULL;
            uint8_t *pt = NULL;
            size_t n;
            kw_err rc = kw_session_encrypt(a.id, "bob", 1, msg, sizeof msg, &type, &body, &err);
            if (rc == KW_OK)
                rc = kw_session_decrypt(b.id, "alice", 1, type, body, &pt, &n, &err);
            if (rc != KW_OK)
                die("1:1", rc, &err);
            free(body);
            free(pt);
        }
        count += 500;
        t = now_s();
    }
    printf("one_to_one_encrypt_decrypt_per_s %.0f msg/s\n", (double)count / (t - t0));
    party_close(&a);
    party_close(&b);
}

static void bench_sender_key(double seconds)
{
    party a, b;
    party_open(&a, "alice");
    party_open(&b, "bob");
    kw_error err;
    char *dist = NULL;
    kw_err rc = kw_group_create_distribution(a.id, "mtg_0123456789ab", &dist, &err);
    if (rc == KW_OK)
        rc = kw_group_process_distribution(b.id, "mtg_0123456789ab", "alice", 1, dist, &err);
    free(dist);
    if (rc != KW_OK)
        die("sender key", rc, &err);
    uint8_t msg[100];
    memset(msg, 'y', sizeof msg);
    long count = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 200; i++) {
            char *ct = NULL;
            uint8_t *pt = NULL;
            size_t n;
            rc = kw_group_encrypt(a.id, "mtg_0123456789ab", msg, sizeof msg, &ct, &err);
            if (rc == KW_OK)
                rc = kw_group_decrypt(b.id, "mtg_0123456789ab", "alice", 1, ct, &pt, &n, &err);
            if (rc != KW_OK)
                die("group", rc, &err);
            free(ct);
            free(pt);
        }
        count += 200;
        t = now_s();
    }
    printf("sender_key_encrypt_decrypt_per_s %.0f msg/s\n", (double)count / (t - t0));
    party_close(&a);
    party_close(&b);
}

static void bench_frames(size_t size, double seconds)
{
    kw_frame_cryptor *c = NULL;
    uint8_t key[KW_FRAME_MEDIA_KEY_BYTES];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)i;
    kw_err rc = kw_frame_cryptor_create(KW_FRAME_AES128_KEY_BYTES, kw_random_system(), &c);
    if (rc == KW_OK)
        rc = kw_frame_cryptor_set_key_raw(c, 0, key);
    if (rc != KW_OK)
        die("frame cryptor", rc, NULL);
    uint8_t *in = calloc(1, size), *out = malloc(size + KW_FRAME_OVERHEAD);
    if (in == NULL || out == NULL)
        die("frame buffers", KW_ERR_NOMEM, NULL);
    long count = 0;
    uint32_t ts = 1000;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 10000; i++) {
            size_t n;
            rc = kw_frame_encrypt(c, KW_FRAME_VP8_DELTA, 0x11223344, ts += 3000, in, size, out,
                                  size + KW_FRAME_OVERHEAD, &n);
            if (rc != KW_OK)
                die("frame encrypt", rc, NULL);
        }
        count += 10000;
        t = now_s();
    }
    double per_s = (double)count / (t - t0);
    printf("frame_encrypt_%zu_per_s %.0f frames/s\n", size, per_s);
    printf("frame_encrypt_%zu_mb_per_s %.1f MB/s\n", size, per_s * (double)size / 1e6);
    free(in);
    free(out);
    kw_frame_cryptor_free(c);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 3.0;
    if (!(seconds > 0 && seconds < 600))
        seconds = 3.0;
    bench_setups(seconds);
    bench_one_to_one(seconds);
    bench_sender_key(seconds);
    bench_frames(1024, seconds);
    bench_frames(51200, seconds);
    return 0;
}
