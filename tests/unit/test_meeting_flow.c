/*
 * test_meeting_flow.c — the library's parts working together as a meeting uses them:
 * two members and a guest set up keys, open pairwise Signal sessions from each other's
 * bundles (as the server's bundle routes hand them out), agree on the meeting media key
 * with the media-key state machine whose payloads travel only inside Signal messages, and
 * then encrypt and decrypt LiveKit frames with it; a rotation moves everyone to epoch 1
 * and key index 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/frame.h"
#include "keywave/media_key.h"
#include "keywave/session.h"
#include "kwtest.h"

#define T0        1763800000000LL
#define N_PARTIES 3
#define QUEUE_MAX 256

typedef struct party {
    const char *name; /* Signal address name; device 1 */
    const char *peer; /* media-key peer id */
    kw_store *store;
    kw_identity *id;
    kw_mka *mka;
    kw_frame_cryptor *frames;
    int64_t joined_ms;
    int keys_seen;
    json_t *uploaded; /* the server's copy: kw_keys_export_json, pre-keys popped on fetch */
} party;

typedef struct wire {
    int from, to, type;
    char *body; /* Signal ciphertext, base64; owned */
} wire;

static party parties[N_PARTIES] = {
    {"alice", "alice:1", NULL, NULL, NULL, NULL, 0, 0, NULL},
    {"bob", "bob:1", NULL, NULL, NULL, NULL, 0, 0, NULL},
    {"guest_0123456789abcdef0123456789abcdef", "guest_0123456789abcdef0123456789abcdef", NULL, NULL,
     NULL, NULL, 0, 0, NULL},
};
static wire queue[QUEUE_MAX];
static size_t queued;

static void open_party(party *p, kw_role role)
{
    kw_error err;
    KWT_ERR(kw_store_mem_new(&p->store), KW_OK);
    kw_identity_config cfg = {role, p->store, NULL, p->name, 1};
    KWT_ERR(kw_identity_open(&cfg, &p->id, &err), KW_OK);
    KWT_ERR(kw_keys_setup(p->id, T0, NULL, NULL, NULL, &err), KW_OK);
    KWT_ERR(kw_mka_new(p->peer, kw_random_system(), &p->mka), KW_OK);
    KWT_ERR(kw_frame_cryptor_create(KW_FRAME_AES128_KEY_BYTES, kw_random_system(), &p->frames),
            KW_OK);
    p->keys_seen = 0;
    char *json = NULL;
    KWT_ERR(kw_keys_export_json(p->id, &json, &err), KW_OK);
    p->uploaded = json ? json_loads(json, 0, NULL) : NULL;
    KWT_CHECK(p->uploaded != NULL);
    free(json);
}

static void b64_into(json_t *v, uint8_t *out, size_t want)
{
    size_t n = 0;
    const char *s = json_string_value(v);
    KWT_CHECK(s && kw_base64_decode(s, strlen(s), out, want, &n) == KW_OK && n == want);
}

/* What the server's bundle route does: the uploaded keys, one one-time pre-key consumed
 * per fetch (INV-2), never the same one twice. */
static void server_bundle(party *p, kw_bundle *b)
{
    memset(b, 0, sizeof *b);
    int guest = strncmp(p->name, "guest_", 6) == 0;
    snprintf(b->owner, sizeof b->owner, "%s", guest ? p->name + 6 : p->name);
    b->owner_is_guest = guest;
    b->device_id = 1;
    b->registration_id =
        (uint32_t)json_integer_value(json_object_get(p->uploaded, "registration_id"));
    b64_into(json_object_get(p->uploaded, "identity_key"), b->identity_key, KW_PUBKEY_BYTES);
    json_t *spk = json_object_get(p->uploaded, "signed_pre_key");
    b->signed_pre_key_id = (uint32_t)json_integer_value(json_object_get(spk, "id"));
    b64_into(json_object_get(spk, "public_key"), b->signed_pre_key, KW_PUBKEY_BYTES);
    b64_into(json_object_get(spk, "signature"), b->signed_pre_key_signature, KW_SIGNATURE_BYTES);
    json_t *pre_keys = json_object_get(p->uploaded, "pre_keys");
    if (json_array_size(pre_keys) > 0) {
        json_t *pk = json_array_get(pre_keys, 0);
        b->has_one_time_pre_key = 1;
        b->one_time_pre_key_id = (uint32_t)json_integer_value(json_object_get(pk, "id"));
        b64_into(json_object_get(pk, "public_key"), b->one_time_pre_key, KW_PUBKEY_BYTES);
        json_array_remove(pre_keys, 0);
    }
}

static void close_party(party *p)
{
    json_decref(p->uploaded);
    kw_frame_cryptor_free(p->frames);
    kw_mka_free(p->mka);
    kw_identity_free(p->id);
    kw_store_free(p->store);
}

static int index_of_peer(const char *peer)
{
    for (int i = 0; i < N_PARTIES; i++)
        if (strcmp(parties[i].peer, peer) == 0)
            return i;
    return -1;
}

/* Sends a media-key payload from -> to inside a Signal message, opening the session from
 * the recipient's bundle the first time (through JSON, as the server serves it). */
static void send_payload(int from, int to, const char *payload)
{
    party *a = &parties[from], *b = &parties[to];
    kw_error err;
    if (!kw_session_exists(a->id, b->name, 1)) {
        kw_bundle bundle, parsed;
        char *json = NULL;
        server_bundle(b, &bundle);
        KWT_ERR(kw_bundle_to_json(&bundle, &json, &err), KW_OK);
        KWT_ERR(kw_bundle_from_json(json, strlen(json), &parsed, &err), KW_OK);
        free(json);
        KWT_ERR(kw_session_process_bundle(a->id, b->name, 1, &parsed, &err), KW_OK);
    }
    if (!KWT_CHECK(queued < QUEUE_MAX))
        return;
    wire *w = &queue[queued];
    KWT_ERR(kw_session_encrypt(a->id, b->name, 1, (const uint8_t *)payload, strlen(payload),
                               &w->type, &w->body, &err),
            KW_OK);
    /* The relay sees only ciphertext: the key must not appear in it. */
    KWT_CHECK(strstr(w->body, "media_key") == NULL);
    w->from = from;
    w->to = to;
    queued++;
}

/* Carries out every action the parties' state machines queued. */
static void drain_actions(void)
{
    for (int i = 0; i < N_PARTIES; i++) {
        kw_mka_action act;
        while (kw_mka_next_action(parties[i].mka, &act)) {
            if (act.type == KW_MKA_ACTION_SEND) {
                int to = index_of_peer(act.to);
                if (KWT_CHECK(to >= 0))
                    send_payload(i, to, act.payload);
            } else if (act.type == KW_MKA_ACTION_KEY) {
                KWT_ERR(kw_frame_cryptor_set_key_raw(parties[i].frames, act.key.epoch % 16,
                                                     act.key.key),
                        KW_OK);
                KWT_ERR(kw_frame_cryptor_set_send_index(parties[i].frames, act.key.epoch % 16),
                        KW_OK);
                parties[i].keys_seen++;
            } else {
                KWT_CHECK(!"unexpected FAILED action");
            }
            kw_mka_action_wipe(&act);
        }
    }
}

/* Delivers queued Signal messages in order until nothing moves. */
static void run_until_quiet(int64_t now)
{
    drain_actions();
    for (size_t n = 0; n < queued; n++) {
        wire *w = &queue[n];
        party *to = &parties[w->to];
        uint8_t *pt = NULL;
        size_t len = 0;
        kw_error err;
        KWT_ERR(
            kw_session_decrypt(to->id, parties[w->from].name, 1, w->type, w->body, &pt, &len, &err),
            KW_OK);
        free(w->body);
        w->body = NULL;
        if (pt != NULL) {
            kw_err rc =
                kw_mka_receive(to->mka, now, parties[w->from].peer, (const char *)pt, len, &err);
            KWT_ERR(rc, KW_OK);
            memset(pt, 0, len);
            free(pt);
        }
        drain_actions();
    }
    queued = 0;
}

static void expect_same_key(uint32_t epoch)
{
    kw_media_key k0, k;
    KWT_ERR(kw_mka_current_key(parties[0].mka, &k0), KW_OK);
    KWT_EQ(k0.epoch, epoch);
    for (int i = 1; i < N_PARTIES; i++) {
        KWT_ERR(kw_mka_current_key(parties[i].mka, &k), KW_OK);
        KWT_CHECK(kw_media_key_compare(&k0, &k) == 0);
    }
}

/* Alice sends one VP8 key frame; every other party decrypts it. */
static void expect_frames_flow(uint32_t ts)
{
    uint8_t frame[200], enc[200 + KW_FRAME_OVERHEAD], dec[200 + KW_FRAME_OVERHEAD];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 7);
    size_t n = 0, m = 0;
    KWT_ERR(kw_frame_encrypt(parties[0].frames, KW_FRAME_VP8_KEY, 0xabcdef01, ts, frame,
                             sizeof frame, enc, sizeof enc, &n),
            KW_OK);
    for (int i = 1; i < N_PARTIES; i++) {
        KWT_ERR(kw_frame_decrypt(parties[i].frames, KW_FRAME_VP8_KEY, enc, n, dec, sizeof dec, &m),
                KW_OK);
        KWT_CHECK(m == sizeof frame && memcmp(dec, frame, m) == 0);
    }
}

static void test_meeting_key_over_signal_then_frames(void)
{
    open_party(&parties[0], KW_ROLE_MEMBER);
    open_party(&parties[1], KW_ROLE_MEMBER);
    open_party(&parties[2], KW_ROLE_GUEST);
    /* Alice is first: she makes epoch 0. */
    KWT_ERR(kw_mka_start(parties[0].mka, T0, NULL, 0), KW_OK);
    run_until_quiet(T0);
    KWT_EQ(kw_mka_get_state(parties[0].mka), KW_MKA_HAVE_KEY);
    /* Bob joins and asks Alice; then the guest joins and asks the longest present (Alice). */
    kw_mka_peer alice = {"alice:1", T0};
    KWT_ERR(kw_mka_start(parties[1].mka, T0 + 1000, &alice, 1), KW_OK);
    KWT_ERR(kw_mka_peer_joined(parties[0].mka, T0 + 1000, "bob:1", T0 + 1000), KW_OK);
    run_until_quiet(T0 + 1100);
    kw_mka_peer present[2] = {{"alice:1", T0}, {"bob:1", T0 + 1000}};
    KWT_ERR(kw_mka_start(parties[2].mka, T0 + 2000, present, 2), KW_OK);
    KWT_ERR(kw_mka_peer_joined(parties[0].mka, T0 + 2000, parties[2].peer, T0 + 2000), KW_OK);
    KWT_ERR(kw_mka_peer_joined(parties[1].mka, T0 + 2000, parties[2].peer, T0 + 2000), KW_OK);
    run_until_quiet(T0 + 2100);
    for (int i = 0; i < N_PARTIES; i++)
        KWT_EQ(kw_mka_get_state(parties[i].mka), KW_MKA_HAVE_KEY);
    expect_same_key(0);
    expect_frames_flow(90000);

    /* Alice, longest present, rotates: everyone moves to epoch 1 at key index 1. */
    KWT_ERR(kw_mka_rotate(parties[1].mka, T0 + 3000), KW_ERR_NOT_ROTATOR);
    KWT_ERR(kw_mka_rotate(parties[0].mka, T0 + 3000), KW_OK);
    run_until_quiet(T0 + 3100);
    expect_same_key(1);
    expect_frames_flow(93000);

    /* The guest's frames with the old epoch-0 key (index 0) still decrypt during the
     * handover, and a frame under an index nobody set fails cleanly. */
    uint8_t buf[64] = {0}, enc[64 + KW_FRAME_OVERHEAD], dec[64 + KW_FRAME_OVERHEAD];
    size_t n = 0, m = 0;
    KWT_ERR(kw_frame_cryptor_set_send_index(parties[2].frames, 0), KW_OK);
    KWT_ERR(kw_frame_encrypt(parties[2].frames, KW_FRAME_AUDIO, 7, 480, buf, sizeof buf, enc,
                             sizeof enc, &n),
            KW_OK);
    KWT_ERR(kw_frame_decrypt(parties[0].frames, KW_FRAME_AUDIO, enc, n, dec, sizeof dec, &m),
            KW_OK);
    enc[n - 1] = 5;
    KWT_ERR(kw_frame_decrypt(parties[0].frames, KW_FRAME_AUDIO, enc, n, dec, sizeof dec, &m),
            KW_ERR_NO_KEY);
    for (int i = 0; i < N_PARTIES; i++)
        close_party(&parties[i]);
}

int main(void)
{
    KWT_RUN(test_meeting_key_over_signal_then_frames);
    return kwt_finish();
}
