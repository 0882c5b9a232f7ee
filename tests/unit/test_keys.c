/*
 * test_keys.c — the key lifecycle of DESIGN.md section 6 (seed 000): the five setup steps
 * and their progress, reuse on a second run, the 7-day signed pre-key boundary (and that
 * the previous signed pre-key still decrypts messages in flight), the replenish threshold
 * of 10, next_pre_key_id persistence and its wrap at KW_PREKEY_ID_MAX, the upload JSON,
 * and failure injection: a store whose Nth put (or get) fails and a random source whose
 * Nth call fails must give a clean error and leave a state a later setup completes.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/identity.h"
#include "keywave/session.h"
#include "kwtest.h"

#define NOW     1763800000000LL
#define MAX_AGE KW_SIGNED_PREKEY_MAX_AGE_MS

/* ---- helpers ---- */

typedef struct party {
    kw_store *store;
    kw_identity *id;
} party;

static int party_open(party *p, kw_role role, const char *name)
{
    kw_error err;
    p->id = NULL;
    KWT_ERR(kw_store_mem_new(&p->store), KW_OK);
    kw_identity_config cfg = {role, p->store, NULL, name, 1};
    kw_err rc = kw_identity_open(&cfg, &p->id, &err);
    KWT_ERR(rc, KW_OK);
    return rc == KW_OK;
}

static void party_close(party *p)
{
    kw_identity_free(p->id);
    kw_store_free(p->store);
    p->id = NULL;
    p->store = NULL;
}

static kw_err setup(kw_identity *id, int64_t now, kw_setup_result *res)
{
    kw_error err;
    kw_err rc = kw_keys_setup(id, now, NULL, NULL, res, &err);
    if (rc != KW_OK)
        printf("    setup: %s: %s\n", kw_err_name(rc), err.detail);
    return rc;
}

/* The identity key and signed pre-key, for before/after comparisons. */
typedef struct snapshot {
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    size_t local;
    uint32_t next;
} snapshot;

static void snap(kw_identity *id, snapshot *s)
{
    memset(s, 0, sizeof *s);
    KWT_ERR(kw_keys_identity(id, &s->pub, NULL), KW_OK);
    KWT_ERR(kw_keys_signed_pre_key(id, &s->spk, NULL), KW_OK);
    KWT_ERR(kw_keys_local_pre_key_count(id, &s->local, NULL), KW_OK);
    KWT_ERR(kw_keys_next_pre_key_id(id, &s->next, NULL), KW_OK);
}

/*
 * Sends one PreKey message from a fresh peer to `to` (named "bob", device 1) using bundle
 * b, and returns what to's decrypt said. This is the end-to-end proof that a key state is
 * usable, not just present.
 */
static kw_err deliver_from_new_peer(kw_identity *to, const kw_bundle *b)
{
    /* Each peer has its own name: bob trusts a name's first identity key only. */
    static unsigned peers;
    char name[32];
    snprintf(name, sizeof name, "peer%u", ++peers);
    party peer;
    if (!party_open(&peer, KW_ROLE_MEMBER, name))
        return KW_ERR_INTERNAL;
    kw_err rc = setup(peer.id, NOW, NULL);
    kw_error err;
    int type = 0;
    char *body = NULL;
    if (rc == KW_OK)
        rc = kw_session_process_bundle(peer.id, "bob", 1, b, &err);
    if (rc == KW_OK)
        rc = kw_session_encrypt(peer.id, "bob", 1, (const uint8_t *)"in flight", 9, &type, &body,
                                &err);
    if (rc == KW_OK) {
        uint8_t *pt = NULL;
        size_t n = 0;
        rc = kw_session_decrypt(to, name, 1, type, body, &pt, &n, &err);
        if (rc == KW_OK)
            KWT_CHECK(n == 9 && memcmp(pt, "in flight", 9) == 0);
        free(pt);
    }
    free(body);
    party_close(&peer);
    return rc;
}

/* The bundle `id` would publish, through JSON as a server hands it out. */
static void own_bundle(kw_identity *id, int with_one_time, kw_bundle *out)
{
    kw_bundle b;
    kw_error err;
    char *json = NULL;
    KWT_ERR(kw_bundle_self(id, "bob", 0, 1, &b, &err), KW_OK);
    if (!with_one_time)
        b.has_one_time_pre_key = 0;
    KWT_ERR(kw_bundle_to_json(&b, &json, &err), KW_OK);
    KWT_ERR(kw_bundle_from_json(json ? json : "", json ? strlen(json) : 0, out, &err), KW_OK);
    free(json);
}

static kw_err usable(kw_identity *id)
{
    kw_bundle b;
    own_bundle(id, 1, &b);
    return deliver_from_new_peer(id, &b);
}

/* ---- progress ---- */

typedef struct event {
    kw_setup_step step;
    int done, total, skipped;
} event;

typedef struct recorder {
    event ev[128];
    int n;
} recorder;

static void record(void *arg, kw_setup_step step, int done, int total, int skipped)
{
    recorder *r = arg;
    if (r->n < (int)(sizeof r->ev / sizeof r->ev[0]))
        r->ev[r->n++] = (event){step, done, total, skipped};
}

/* Steps come in order 1..5, each starts at done 0 and ends with done == total. */
static void check_step_order(const recorder *r, int want_skipped[6])
{
    int last = 0;
    int first_done[6], last_done[6], last_total[6], seen[6] = {0};
    for (int i = 0; i < r->n; i++) {
        int s = (int)r->ev[i].step;
        if (!KWT_CHECK(s >= KW_SETUP_CHECKING && s <= KW_SETUP_VALIDATING))
            return;
        if (!KWT_CHECK(s >= last))
            printf("    event %d: step %d after step %d\n", i, s, last);
        last = s;
        if (!seen[s])
            first_done[s] = r->ev[i].done;
        seen[s] = 1;
        last_done[s] = r->ev[i].done;
        last_total[s] = r->ev[i].total;
        if (r->ev[i].skipped != want_skipped[s])
            printf("    event %d (step %d): skipped %d, want %d\n", i, s, r->ev[i].skipped,
                   want_skipped[s]);
        KWT_EQ(r->ev[i].skipped, want_skipped[s]);
    }
    for (int s = KW_SETUP_CHECKING; s <= KW_SETUP_VALIDATING; s++) {
        if (!KWT_CHECK(seen[s])) {
            printf("    step %d (%s) never reported\n", s, kw_setup_step_label(s));
            continue;
        }
        KWT_EQ(first_done[s], 0);
        /* A step that ran (or was skipped) reports its completion. */
        if (!KWT_CHECK(last_done[s] == last_total[s]))
            printf("    step %d (%s): last event done=%d total=%d\n", s, kw_setup_step_label(s),
                   last_done[s], last_total[s]);
    }
}

static void test_step_labels(void)
{
    static const struct {
        kw_setup_step step;
        const char *label;
    } cases[] = {
        {KW_SETUP_CHECKING, "Checking existing keys..."},
        {KW_SETUP_IDENTITY, "Generating identity keys..."},
        {KW_SETUP_SIGNED_PRE_KEY, "Generating signed pre-key..."},
        {KW_SETUP_PRE_KEYS, "Generating pre-keys..."},
        {KW_SETUP_VALIDATING, "Validating keys..."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        KWT_STREQ(kw_setup_step_label(cases[i].step), cases[i].label);
    KWT_STREQ(kw_setup_step_label((kw_setup_step)0), "");
    KWT_EQ(kw_pubkey_bytes(), 33);
    KWT_EQ(kw_signature_bytes(), 64);
}

static void test_identity_open_arguments(void)
{
    kw_store *store = NULL;
    KWT_ERR(kw_store_mem_new(&store), KW_OK);
    char n128[129], n129[130];
    memset(n128, 'a', 128);
    n128[128] = '\0';
    memset(n129, 'a', 129);
    n129[129] = '\0';
    static const struct {
        int role;
        int has_store;
        int name; /* 0 NULL, 1 "alice", 2 128 bytes, 3 129 bytes, 4 "", 5 control char */
        uint32_t device;
        kw_err want;
    } cases[] = {
        {KW_ROLE_MEMBER, 1, 0, 0, KW_OK},
        {KW_ROLE_GUEST, 1, 1, 1, KW_OK},
        {0, 1, 0, 0, KW_ERR_INVALID_ARGUMENT},
        {3, 1, 0, 0, KW_ERR_INVALID_ARGUMENT},
        {KW_ROLE_MEMBER, 0, 0, 0, KW_ERR_INVALID_ARGUMENT},
        {KW_ROLE_MEMBER, 1, 2, 1, KW_OK},
        {KW_ROLE_MEMBER, 1, 3, 1, KW_ERR_INVALID_ARGUMENT},
        {KW_ROLE_MEMBER, 1, 4, 1, KW_ERR_INVALID_ARGUMENT},
        {KW_ROLE_MEMBER, 1, 5, 1, KW_ERR_INVALID_ARGUMENT},
        {KW_ROLE_MEMBER, 1, 1, 0, KW_ERR_INVALID_ARGUMENT},
        {KW_ROLE_MEMBER, 1, 1, 0x7FFFFFFF, KW_OK},
        {KW_ROLE_MEMBER, 1, 1, 0x80000000u, KW_ERR_INVALID_ARGUMENT},
    };
    const char *names[] = {NULL, "alice", n128, n129, "", "al\x01ice"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_identity_config cfg = {(kw_role)cases[i].role, cases[i].has_store ? store : NULL, NULL,
                                  names[cases[i].name], cases[i].device};
        kw_identity *id = (kw_identity *)&cfg; /* must be reset to NULL on failure */
        kw_error err;
        kw_err rc = kw_identity_open(&cfg, &id, &err);
        if (rc != cases[i].want)
            printf("    case %zu\n", i);
        KWT_ERR(rc, cases[i].want);
        KWT_CHECK((rc == KW_OK) == (id != NULL));
        if (rc == KW_OK)
            KWT_EQ(kw_identity_role(id), cases[i].role);
        else
            KWT_CHECK(err.code == rc && err.detail[0] != '\0');
        kw_identity_free(id);
    }
    kw_identity_free(NULL);
    /* kw_identity_set_self has the same boundaries. */
    kw_identity_config cfg = {KW_ROLE_MEMBER, store, NULL, NULL, 0};
    kw_identity *id = NULL;
    KWT_ERR(kw_identity_open(&cfg, &id, NULL), KW_OK);
    if (id) {
        KWT_ERR(kw_identity_set_self(id, n128, 1), KW_OK);
        KWT_ERR(kw_identity_set_self(id, n129, 1), KW_ERR_INVALID_ARGUMENT);
        KWT_ERR(kw_identity_set_self(id, "", 1), KW_ERR_INVALID_ARGUMENT);
        KWT_ERR(kw_identity_set_self(id, "bob", 0), KW_ERR_INVALID_ARGUMENT);
        KWT_ERR(kw_identity_set_self(id, "bob", 0x7FFFFFFF), KW_OK);
        KWT_ERR(kw_identity_set_self(id, "bob", 0x80000000u), KW_ERR_INVALID_ARGUMENT);
    }
    kw_identity_free(id);
    kw_store_free(store);
}

/* ---- setup ---- */

static void test_setup_fresh_store_five_steps(void)
{
    party p;
    if (!party_open(&p, KW_ROLE_GUEST, NULL))
        return;
    /* Nothing to read before setup. */
    kw_public_identity pub;
    kw_signed_pre_key_pub spk;
    char *json = (char *)"x";
    KWT_ERR(kw_keys_identity(p.id, &pub, NULL), KW_ERR_NOT_FOUND);
    KWT_ERR(kw_keys_signed_pre_key(p.id, &spk, NULL), KW_ERR_NOT_FOUND);
    KWT_ERR(kw_keys_export_json(p.id, &json, NULL), KW_ERR_NOT_FOUND);
    KWT_CHECK(json == NULL);

    recorder r = {.n = 0};
    kw_setup_result res = {-1, -1, -1};
    kw_error err;
    KWT_ERR(kw_keys_setup(p.id, NOW, record, &r, &res, &err), KW_OK);
    KWT_EQ(res.made_identity, 1);
    KWT_EQ(res.made_signed_pre_key, 1);
    KWT_EQ(res.made_pre_keys, KW_PREKEY_BATCH);
    int none_skipped[6] = {0, 0, 0, 0, 0, 0};
    check_step_order(&r, none_skipped);
    /* Pre-keys: done counts 1..30 of 30, in order, once each. */
    int want = 1;
    for (int i = 0; i < r.n; i++) {
        if (r.ev[i].step != KW_SETUP_PRE_KEYS || r.ev[i].done == 0)
            continue;
        KWT_EQ(r.ev[i].total, KW_PREKEY_BATCH);
        if (r.ev[i].done != want)
            printf("    pre-key progress: got done=%d, want %d\n", r.ev[i].done, want);
        KWT_EQ(r.ev[i].done, want);
        want++;
    }
    KWT_EQ(want, KW_PREKEY_BATCH + 1);

    snapshot s;
    snap(p.id, &s);
    KWT_EQ(s.pub.identity_key[0], 0x05);
    KWT_CHECK(s.pub.registration_id >= 1 && s.pub.registration_id <= 0x3FFF);
    KWT_EQ(s.spk.public_key[0], 0x05);
    KWT_EQ(s.spk.created_ms, NOW);
    KWT_ERR(kw_signature_verify(s.pub.identity_key, s.spk.public_key, KW_PUBKEY_BYTES,
                                s.spk.signature, KW_SIGNATURE_BYTES),
            KW_OK);
    KWT_EQ(s.local, KW_PREKEY_BATCH);
    KWT_EQ(s.next, 1 + KW_PREKEY_BATCH);
    party_close(&p);
}

static void test_setup_second_run_reuses_everything(void)
{
    party p;
    if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
        return;
    KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
    snapshot before, after;
    snap(p.id, &before);
    recorder r = {.n = 0};
    kw_setup_result res = {-1, -1, -1};
    KWT_ERR(kw_keys_setup(p.id, NOW + 1000, record, &r, &res, NULL), KW_OK);
    KWT_EQ(res.made_identity, 0);
    KWT_EQ(res.made_signed_pre_key, 0);
    KWT_EQ(res.made_pre_keys, 0);
    int skipped[6] = {0, 0, 1, 1, 1, 0};
    check_step_order(&r, skipped);
    snap(p.id, &after);
    KWT_MEMEQ(after.pub.identity_key, before.pub.identity_key, KW_PUBKEY_BYTES);
    KWT_EQ(after.pub.registration_id, before.pub.registration_id);
    KWT_EQ(after.spk.id, before.spk.id);
    KWT_EQ(after.spk.created_ms, before.spk.created_ms);
    KWT_EQ(after.local, before.local);
    KWT_EQ(after.next, before.next);
    /* Reopening the handle on the same store changes nothing either. */
    kw_identity_free(p.id);
    kw_identity_config cfg = {KW_ROLE_MEMBER, p.store, NULL, "bob", 1};
    KWT_ERR(kw_identity_open(&cfg, &p.id, NULL), KW_OK);
    KWT_ERR(setup(p.id, NOW + 2000, &res), KW_OK);
    KWT_EQ(res.made_identity + res.made_signed_pre_key + res.made_pre_keys, 0);
    snap(p.id, &after);
    KWT_MEMEQ(after.pub.identity_key, before.pub.identity_key, KW_PUBKEY_BYTES);
    party_close(&p);
}

/* Boundary: 7 days exactly is still valid; one millisecond more is expired. */
static void test_signed_pre_key_age_boundary(void)
{
    static const struct {
        int64_t age;
        int regenerated;
    } cases[] = {
        {0, 0}, {MAX_AGE - 1, 0}, {MAX_AGE, 0}, {MAX_AGE + 1, 1}, {3 * MAX_AGE, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        party p;
        if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
            return;
        KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
        snapshot before, after;
        snap(p.id, &before);
        kw_setup_result res;
        KWT_ERR(setup(p.id, NOW + cases[i].age, &res), KW_OK);
        snap(p.id, &after);
        if (res.made_signed_pre_key != cases[i].regenerated)
            printf("    age %lld ms\n", (long long)cases[i].age);
        KWT_EQ(res.made_signed_pre_key, cases[i].regenerated);
        KWT_EQ(res.made_identity, 0);
        KWT_EQ(res.made_pre_keys, 0);
        KWT_MEMEQ(after.pub.identity_key, before.pub.identity_key, KW_PUBKEY_BYTES);
        if (cases[i].regenerated) {
            KWT_CHECK(after.spk.id != before.spk.id);
            KWT_EQ(after.spk.created_ms, NOW + cases[i].age);
            KWT_CHECK(memcmp(after.spk.public_key, before.spk.public_key, KW_PUBKEY_BYTES) != 0);
            KWT_ERR(kw_signature_verify(after.pub.identity_key, after.spk.public_key,
                                        KW_PUBKEY_BYTES, after.spk.signature, KW_SIGNATURE_BYTES),
                    KW_OK);
        } else {
            KWT_EQ(after.spk.id, before.spk.id);
            KWT_EQ(after.spk.created_ms, NOW);
        }
        party_close(&p);
    }
}

/*
 * After a rotation the previous signed pre-key still decrypts a PreKey message built from
 * the bundle fetched before it; after a second rotation the one before that is gone.
 */
static void test_signed_pre_key_rotation_keeps_previous(void)
{
    party bob;
    if (!party_open(&bob, KW_ROLE_MEMBER, "bob"))
        return;
    KWT_ERR(setup(bob.id, NOW, NULL), KW_OK);
    kw_bundle old_with_otk, old1, old2;
    own_bundle(bob.id, 1, &old_with_otk);
    own_bundle(bob.id, 0, &old1);

    kw_setup_result res;
    KWT_ERR(setup(bob.id, NOW + MAX_AGE + 1, &res), KW_OK); /* rotation 1 */
    KWT_EQ(res.made_signed_pre_key, 1);
    own_bundle(bob.id, 0, &old2);
    KWT_CHECK(old2.signed_pre_key_id != old1.signed_pre_key_id);
    KWT_ERR(deliver_from_new_peer(bob.id, &old_with_otk), KW_OK); /* previous spk + otk */
    KWT_ERR(deliver_from_new_peer(bob.id, &old1), KW_OK);         /* previous spk, no otk */

    KWT_ERR(setup(bob.id, NOW + 2 * (MAX_AGE + 1), &res), KW_OK); /* rotation 2 */
    KWT_EQ(res.made_signed_pre_key, 1);
    KWT_ERR(deliver_from_new_peer(bob.id, &old2), KW_OK); /* now the previous one */
    KWT_ERR(deliver_from_new_peer(bob.id, &old1), KW_ERR_INVALID_PREKEY_ID); /* dropped */
    KWT_ERR(usable(bob.id), KW_OK);
    party_close(&bob);
}

/* Fewer than 30 held (29) makes a new batch; exactly 30 does not (second-run test). */
static void test_setup_with_29_pre_keys_makes_batch(void)
{
    party p;
    if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
        return;
    KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
    KWT_ERR(kw_store_del(p.store, "prekey/5"), KW_OK);
    snapshot s;
    snap(p.id, &s);
    KWT_EQ(s.local, 29);
    kw_setup_result res;
    KWT_ERR(setup(p.id, NOW, &res), KW_OK);
    KWT_EQ(res.made_pre_keys, KW_PREKEY_BATCH);
    KWT_EQ(res.made_signed_pre_key, 0);
    snap(p.id, &s);
    KWT_EQ(s.local, 29 + KW_PREKEY_BATCH);
    KWT_EQ(s.next, 1 + 2 * KW_PREKEY_BATCH);
    party_close(&p);
}

/* ---- JSON documents ---- */

/* Checks {"id":N,"public_key":"<b64 33 bytes 0x05..>"} strictly; returns the id or -1. */
static long long check_pre_key_obj(json_t *pk)
{
    json_int_t pid = -1;
    const char *key = NULL;
    json_error_t jerr;
    if (!KWT_CHECK(json_unpack_ex(pk, &jerr, JSON_STRICT, "{s:I,s:s}", "id", &pid, "public_key",
                                  &key) == 0)) {
        printf("    pre-key: %s\n", jerr.text);
        return -1;
    }
    uint8_t raw[64];
    size_t n = 0;
    KWT_ERR(kw_base64_decode(key, strlen(key), raw, sizeof raw, &n), KW_OK);
    KWT_EQ(n, KW_PUBKEY_BYTES);
    KWT_ERR(kw_pubkey_check(raw, n), KW_OK);
    return pid;
}

/* Parses {"pre_keys":[...]} (strict) and checks ids are first, first+1, ... (wrapping). */
static void check_pre_key_batch(const char *json, uint32_t first)
{
    json_error_t jerr;
    json_t *doc = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr = NULL;
    if (!KWT_CHECK(doc != NULL) ||
        !KWT_CHECK(json_unpack_ex(doc, &jerr, JSON_STRICT, "{s:o}", "pre_keys", &arr) == 0)) {
        json_decref(doc);
        return;
    }
    KWT_EQ(json_array_size(arr), KW_PREKEY_BATCH);
    uint32_t want = first;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        long long got = check_pre_key_obj(json_array_get(arr, i));
        if (got != (long long)want)
            printf("    pre_keys[%zu].id = %lld, want %u\n", i, got, want);
        KWT_EQ(got, want);
        want = want == KW_PREKEY_ID_MAX ? 1 : want + 1;
    }
    json_decref(doc);
}

static void test_export_json_shape(void)
{
    party p;
    if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
        return;
    KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
    snapshot s;
    snap(p.id, &s);
    char *json = NULL;
    kw_error err;
    KWT_ERR(kw_keys_export_json(p.id, &json, &err), KW_OK);
    if (!KWT_CHECK(json != NULL))
        goto done;
    json_error_t jerr;
    json_t *doc = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    const char *ik = NULL, *spk_pub = NULL, *spk_sig = NULL;
    json_int_t reg = -1, spk_id = -1;
    json_t *pre_keys = NULL;
    int ok = doc != NULL && json_unpack_ex(doc, &jerr, JSON_STRICT, "{s:s,s:I,s:{s:I,s:s,s:s},s:o}",
                                           "identity_key", &ik, "registration_id", &reg,
                                           "signed_pre_key", "id", &spk_id, "public_key", &spk_pub,
                                           "signature", &spk_sig, "pre_keys", &pre_keys) == 0;
    if (!KWT_CHECK(ok)) {
        printf("    export: %s\n    %s\n", jerr.text, json);
        json_decref(doc);
        goto done;
    }
    uint8_t ikb[64], spkb[64], sigb[128];
    size_t ikn = 0, spkn = 0, sign = 0;
    KWT_ERR(kw_base64_decode(ik, strlen(ik), ikb, sizeof ikb, &ikn), KW_OK);
    KWT_ERR(kw_base64_decode(spk_pub, strlen(spk_pub), spkb, sizeof spkb, &spkn), KW_OK);
    KWT_ERR(kw_base64_decode(spk_sig, strlen(spk_sig), sigb, sizeof sigb, &sign), KW_OK);
    KWT_EQ(ikn, 33);
    KWT_EQ(spkn, 33);
    KWT_EQ(sign, 64);
    KWT_ERR(kw_pubkey_check(ikb, ikn), KW_OK);
    KWT_ERR(kw_pubkey_check(spkb, spkn), KW_OK);
    KWT_CHECK(ikn == 33 && memcmp(ikb, s.pub.identity_key, 33) == 0);
    KWT_EQ(reg, s.pub.registration_id);
    KWT_EQ(spk_id, s.spk.id);
    KWT_ERR(kw_signature_verify(ikb, spkb, spkn, sigb, sign), KW_OK);
    KWT_CHECK(json_is_array(pre_keys));
    KWT_EQ(json_array_size(pre_keys), KW_PREKEY_BATCH);
    for (size_t i = 0; i < json_array_size(pre_keys); i++)
        KWT_EQ(check_pre_key_obj(json_array_get(pre_keys, i)), (long long)i + 1);
    json_decref(doc);

    /* After a replenish the export carries the latest batch (31..60). */
    char *batch = NULL;
    KWT_ERR(kw_keys_replenish(p.id, 0, &batch, &err), KW_OK);
    free(batch);
    free(json);
    json = NULL;
    KWT_ERR(kw_keys_export_json(p.id, &json, &err), KW_OK);
    doc = json ? json_loads(json, 0, &jerr) : NULL;
    pre_keys = json_object_get(doc, "pre_keys");
    KWT_EQ(json_array_size(pre_keys), KW_PREKEY_BATCH);
    if (json_array_size(pre_keys) > 0)
        KWT_EQ(check_pre_key_obj(json_array_get(pre_keys, 0)), 1 + KW_PREKEY_BATCH);
    json_decref(doc);
done:
    free(json);
    party_close(&p);
}

/* ---- replenishment ---- */

/* Boundary: the server holding 9 triggers a batch, 10 does not. */
static void test_replenish_threshold(void)
{
    static const struct {
        size_t server_count;
        int batch;
    } cases[] = {{0, 1}, {1, 1}, {9, 1}, {10, 0}, {11, 0}, {30, 0}, {(size_t)-1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        party p;
        if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
            return;
        KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
        snapshot before, after;
        snap(p.id, &before);
        char *json = (char *)"untouched";
        kw_error err;
        KWT_ERR(kw_keys_replenish(p.id, cases[i].server_count, &json, &err), KW_OK);
        snap(p.id, &after);
        if (cases[i].batch) {
            if (KWT_CHECK(json != NULL))
                check_pre_key_batch(json, before.next);
            KWT_EQ(after.local, before.local + KW_PREKEY_BATCH);
            KWT_EQ(after.next, before.next + KW_PREKEY_BATCH);
            free(json);
        } else {
            if (!KWT_CHECK(json == NULL))
                printf("    server_count %zu\n", cases[i].server_count);
            KWT_EQ(after.local, before.local);
            KWT_EQ(after.next, before.next);
        }
        KWT_EQ(after.spk.id, before.spk.id);
        party_close(&p);
    }
}

/* Two batches in a row continue the ids: 31..60 then 61..90. */
static void test_replenish_ids_continue(void)
{
    party p;
    if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
        return;
    KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
    for (uint32_t first = 31; first <= 61; first += KW_PREKEY_BATCH) {
        char *json = NULL;
        KWT_ERR(kw_keys_replenish(p.id, 0, &json, NULL), KW_OK);
        if (KWT_CHECK(json != NULL))
            check_pre_key_batch(json, first);
        free(json);
    }
    KWT_ERR(usable(p.id), KW_OK);
    party_close(&p);
}

static void test_next_pre_key_id_persists_in_memory_store(void)
{
    party p;
    if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
        return;
    KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
    char *json = NULL;
    KWT_ERR(kw_keys_replenish(p.id, 0, &json, NULL), KW_OK);
    free(json);
    snapshot before, after;
    snap(p.id, &before);
    KWT_EQ(before.next, 61);
    kw_identity_free(p.id);
    kw_identity_config cfg = {KW_ROLE_MEMBER, p.store, NULL, "bob", 1};
    KWT_ERR(kw_identity_open(&cfg, &p.id, NULL), KW_OK);
    snap(p.id, &after);
    KWT_EQ(after.next, 61);
    json = NULL;
    KWT_ERR(kw_keys_replenish(p.id, 0, &json, NULL), KW_OK);
    if (KWT_CHECK(json != NULL))
        check_pre_key_batch(json, 61);
    free(json);
    party_close(&p);
}

/* Removes the store directory (flat: one file per record) and its parent. */
static void rm_store(const char *tmp, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        KWT_CHECK(unlink(path) == 0);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    KWT_CHECK(rmdir(tmp) == 0);
}

static void test_next_pre_key_id_persists_in_file_store(void)
{
    char tmp[] = "/tmp/kwtest_keys_XXXXXX";
    if (!KWT_CHECK(mkdtemp(tmp) != NULL))
        return;
    char dir[64];
    snprintf(dir, sizeof dir, "%s/bob", tmp);
    kw_error err;
    kw_store *store = NULL;
    kw_identity *id = NULL;
    snapshot before, after;
    KWT_ERR(kw_store_file_open(dir, &store, &err), KW_OK);
    if (store == NULL)
        goto done;
    kw_identity_config cfg = {KW_ROLE_MEMBER, store, NULL, "bob", 1};
    KWT_ERR(kw_identity_open(&cfg, &id, NULL), KW_OK);
    KWT_ERR(setup(id, NOW, NULL), KW_OK);
    char *json = NULL;
    KWT_ERR(kw_keys_replenish(id, 3, &json, NULL), KW_OK);
    free(json);
    snap(id, &before);
    KWT_EQ(before.next, 61);
    KWT_EQ(before.local, 60);
    kw_identity_free(id);
    kw_store_free(store);
    id = NULL;

    /* A new process: reopen the directory. */
    KWT_ERR(kw_store_file_open(dir, &store, &err), KW_OK);
    if (store == NULL)
        goto done;
    cfg.store = store;
    KWT_ERR(kw_identity_open(&cfg, &id, NULL), KW_OK);
    kw_setup_result res;
    KWT_ERR(setup(id, NOW + 1, &res), KW_OK);
    KWT_EQ(res.made_identity + res.made_signed_pre_key + res.made_pre_keys, 0);
    snap(id, &after);
    KWT_EQ(after.next, 61);
    KWT_EQ(after.local, 60);
    KWT_MEMEQ(after.pub.identity_key, before.pub.identity_key, KW_PUBKEY_BYTES);
    KWT_EQ(after.spk.id, before.spk.id);
    KWT_EQ(after.spk.created_ms, before.spk.created_ms);
    json = NULL;
    KWT_ERR(kw_keys_replenish(id, 0, &json, NULL), KW_OK);
    if (KWT_CHECK(json != NULL))
        check_pre_key_batch(json, 61);
    free(json);
    KWT_ERR(usable(id), KW_OK);
    kw_identity_free(id);
    kw_store_free(store);
done:
    rm_store(tmp, dir);
}

static void put_next_id(kw_store *s, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    KWT_ERR(kw_store_put(s, "meta/next_pre_key_id", b, sizeof b), KW_OK);
}

/* Ids are 24-bit and never 0: ..., 0xFFFFFE, 0xFFFFFF, 1, 2, ... */
static void test_pre_key_id_wrap(void)
{
    static const struct {
        uint32_t start, next_after;
    } cases[] = {
        {0xFFFFE1, 0xFFFFFF}, /* ends exactly on the last id */
        {0xFFFFE2, 1},        /* ends exactly on the wrap */
        {0xFFFFFE, 29},
        {0xFFFFFF, 30},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        party p;
        if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
            return;
        put_next_id(p.store, cases[i].start);
        uint32_t next = 0;
        KWT_ERR(kw_keys_next_pre_key_id(p.id, &next, NULL), KW_OK);
        KWT_EQ(next, cases[i].start);
        char *json = NULL;
        KWT_ERR(kw_keys_replenish(p.id, 0, &json, NULL), KW_OK);
        if (KWT_CHECK(json != NULL))
            check_pre_key_batch(json, cases[i].start);
        free(json);
        KWT_ERR(kw_keys_next_pre_key_id(p.id, &next, NULL), KW_OK);
        if (next != cases[i].next_after)
            printf("    start 0x%X\n", cases[i].start);
        KWT_EQ(next, cases[i].next_after);
        size_t local = 0;
        KWT_ERR(kw_keys_local_pre_key_count(p.id, &local, NULL), KW_OK);
        KWT_EQ(local, KW_PREKEY_BATCH);
        KWT_ERR(kw_store_get(p.store, "prekey/0", &(uint8_t *){NULL}, &(size_t){0}),
                KW_ERR_NOT_FOUND);
        party_close(&p);
    }
    /* A setup after the wrap: the batch numbering carries on from the stored id. */
    party p;
    if (!party_open(&p, KW_ROLE_MEMBER, "bob"))
        return;
    put_next_id(p.store, 0xFFFFFE);
    KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
    char *json = NULL;
    KWT_ERR(kw_keys_export_json(p.id, &json, NULL), KW_OK);
    json_t *doc = json ? json_loads(json, 0, NULL) : NULL;
    json_t *arr = json_object_get(doc, "pre_keys");
    KWT_EQ(json_array_size(arr), KW_PREKEY_BATCH);
    if (json_array_size(arr) == KW_PREKEY_BATCH) {
        KWT_EQ(check_pre_key_obj(json_array_get(arr, 0)), 0xFFFFFE);
        KWT_EQ(check_pre_key_obj(json_array_get(arr, 1)), 0xFFFFFF);
        KWT_EQ(check_pre_key_obj(json_array_get(arr, 2)), 1);
    }
    json_decref(doc);
    free(json);
    KWT_ERR(usable(p.id), KW_OK);
    party_close(&p);
}

/* ---- failure injection (STYLE.md section 5) ---- */

typedef struct faulty {
    kw_store *inner; /* borrowed */
    int put_fail_at; /* 0: never; n: the nth put fails */
    int get_fail_at; /* same for get */
    int persistent;  /* once failed, every later call of that kind fails */
    kw_err code;     /* what the failing call returns */
    int puts, gets;
    int failed; /* how many calls were failed */
} faulty;

static int should_fail(faulty *f, int count, int at)
{
    if (at == 0)
        return 0;
    if (count == at || (f->persistent && count > at)) {
        f->failed++;
        return 1;
    }
    return 0;
}

static kw_err f_get(void *ctx, const char *key, uint8_t **val, size_t *len)
{
    faulty *f = ctx;
    f->gets++;
    if (should_fail(f, f->gets, f->get_fail_at))
        return f->code;
    return kw_store_get(f->inner, key, val, len);
}

static kw_err f_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    faulty *f = ctx;
    f->puts++;
    if (should_fail(f, f->puts, f->put_fail_at))
        return f->code;
    return kw_store_put(f->inner, key, val, len);
}

static kw_err f_del(void *ctx, const char *key)
{
    return kw_store_del(((faulty *)ctx)->inner, key);
}

static kw_err f_list(void *ctx, const char *prefix, kw_err (*each)(void *, const char *), void *arg)
{
    return kw_store_list(((faulty *)ctx)->inner, prefix, each, arg);
}

static void f_destroy(void *ctx)
{
    (void)ctx; /* the test owns both stores */
}

static const kw_store_ops faulty_ops = {f_get, f_put, f_del, f_list, f_destroy};

typedef struct fault_case {
    int on_get;     /* 0: puts fail, 1: gets fail */
    int persistent; /* fail from the Nth call on, not only the Nth */
    kw_err code;    /* what the failing store call returns */
    int prepared;   /* 1: a complete setup at NOW was done first (without failures) */
    int64_t at;     /* now_ms of the setup under test */
} fault_case;

/* A fresh identity on a faulty wrapper over a new memory store; prepared if asked. */
static kw_identity *fault_open(faulty *f, kw_store *wrap, const fault_case *c)
{
    KWT_ERR(kw_store_mem_new(&f->inner), KW_OK);
    wrap->ops = &faulty_ops;
    wrap->ctx = f;
    kw_identity_config cfg = {KW_ROLE_MEMBER, wrap, NULL, "bob", 1};
    kw_identity *id = NULL;
    KWT_ERR(kw_identity_open(&cfg, &id, NULL), KW_OK);
    if (id != NULL && c->prepared)
        KWT_ERR(setup(id, NOW, NULL), KW_OK);
    f->puts = f->gets = f->failed = 0;
    return id;
}

/*
 * For N = 1, 2, ...: the Nth store call of one kind fails during setup. Setup must return
 * KW_ERR_STORE with a detail; on a prepared store it must also leave the keys as they
 * were (no silent regeneration); and a later setup with the store working must complete
 * with keys that actually work (a new peer's PreKey message decrypts).
 */
static void fault_loop(const fault_case *c)
{
    /* A clean run counts the calls, so the loop knows where to stop. */
    faulty f = {NULL, 0, 0, c->persistent, c->code, 0, 0, 0};
    kw_store wrap;
    kw_identity *id = fault_open(&f, &wrap, c);
    KWT_ERR(setup(id, c->at, NULL), KW_OK);
    int limit = c->on_get ? f.gets : f.puts;
    kw_identity_free(id);
    kw_store_free(f.inner);
    KWT_CHECK(limit > 0);
    int bad = 0;
    for (int n = 1; n <= limit + 1 && bad < 5; n++) {
        f = (faulty){NULL, 0, 0, c->persistent, c->code, 0, 0, 0};
        id = fault_open(&f, &wrap, c);
        snapshot before, after;
        if (c->prepared)
            snap(id, &before);
        f.puts = f.gets = 0;
        f.put_fail_at = c->on_get ? 0 : n;
        f.get_fail_at = c->on_get ? n : 0;
        kw_error err;
        memset(&err, 0, sizeof err);
        kw_err rc = kw_keys_setup(id, c->at, NULL, NULL, NULL, &err);
        int failed = f.failed;
        f.put_fail_at = f.get_fail_at = 0;
        int ok = 1;
        if (failed > 0) {
            ok &= KWT_CHECK(rc == KW_ERR_STORE);
            ok &= KWT_CHECK(rc == KW_OK || (err.code == rc && err.detail[0] != '\0'));
            if (c->prepared && c->at - NOW <= MAX_AGE) {
                snap(id, &after); /* nothing was due, so nothing may have changed */
                ok &= KWT_CHECK(after.spk.id == before.spk.id);
                ok &= KWT_CHECK(after.local == before.local);
            }
        } else {
            ok &= KWT_CHECK(n > limit); /* only past the last call does nothing fail */
            ok &= KWT_CHECK(rc == KW_OK);
        }
        kw_err again = setup(id, c->at, NULL);
        ok &= KWT_CHECK(again == KW_OK);
        if (again == KW_OK)
            ok &= KWT_CHECK(usable(id) == KW_OK);
        if (!ok) {
            bad++;
            printf("    %s %s fails at call %d (%s), %s store: setup said %s \"%s\", "
                   "retry %s\n",
                   c->on_get ? "get" : "put", c->persistent ? "from" : "only", n,
                   kw_err_name(c->code), c->prepared ? "prepared" : "empty", kw_err_name(rc),
                   err.detail, kw_err_name(again));
        }
        kw_identity_free(id);
        kw_store_free(f.inner);
    }
}

static void test_fault_put_fails_once(void)
{
    fault_case c = {0, 0, KW_ERR_STORE, 0, NOW};
    fault_loop(&c);
}

static void test_fault_put_fails_from_n_on(void)
{
    fault_case c = {0, 1, KW_ERR_STORE, 0, NOW};
    fault_loop(&c);
}

/* An I/O error (what a file store gives) is still reported as KW_ERR_STORE. */
static void test_fault_put_io_error(void)
{
    fault_case c = {0, 1, KW_ERR_IO, 0, NOW};
    fault_loop(&c);
}

/* Puts of a signed pre-key rotation (prepared store, 7 days + 1 ms later). */
static void test_fault_put_during_rotation(void)
{
    fault_case c = {0, 0, KW_ERR_STORE, 1, NOW + MAX_AGE + 1};
    fault_loop(&c);
}

static void test_fault_get_fails_once_empty_store(void)
{
    fault_case c = {1, 0, KW_ERR_STORE, 0, NOW};
    fault_loop(&c);
}

/* A read failure on valid keys must be an error, not a reason to regenerate them. */
static void test_fault_get_fails_once_valid_keys(void)
{
    fault_case c = {1, 0, KW_ERR_STORE, 1, NOW + 1000};
    fault_loop(&c);
}

static void test_fault_get_during_rotation(void)
{
    fault_case c = {1, 0, KW_ERR_STORE, 1, NOW + MAX_AGE + 1};
    fault_loop(&c);
}

/* A failed replenish never lets a later batch reuse the ids it reserved. */
static void test_fault_replenish_does_not_reuse_ids(void)
{
    kw_store *inner = NULL;
    KWT_ERR(kw_store_mem_new(&inner), KW_OK);
    faulty f = {inner, 0, 0, 0, KW_ERR_STORE, 0, 0, 0};
    kw_store wrap = {&faulty_ops, &f};
    kw_identity_config cfg = {KW_ROLE_MEMBER, &wrap, NULL, "bob", 1};
    kw_identity *id = NULL;
    KWT_ERR(kw_identity_open(&cfg, &id, NULL), KW_OK);
    KWT_ERR(setup(id, NOW, NULL), KW_OK);
    uint32_t next = 0;
    for (int k = 1; k <= 3; k++) {
        KWT_ERR(kw_keys_next_pre_key_id(id, &next, NULL), KW_OK);
        f.put_fail_at = f.puts + 1 + k; /* after the reservation, inside the batch */
        char *json = (char *)"x";
        kw_error err;
        KWT_ERR(kw_keys_replenish(id, 0, &json, &err), KW_ERR_STORE);
        KWT_CHECK(json == NULL);
        f.put_fail_at = 0;
        KWT_ERR(kw_keys_replenish(id, 0, &json, NULL), KW_OK);
        if (KWT_CHECK(json != NULL))
            check_pre_key_batch(json, next + KW_PREKEY_BATCH);
        free(json);
    }
    /* A failure on the reservation itself reserves nothing. */
    KWT_ERR(kw_keys_next_pre_key_id(id, &next, NULL), KW_OK);
    f.put_fail_at = f.puts + 1;
    char *json = NULL;
    KWT_ERR(kw_keys_replenish(id, 0, &json, NULL), KW_ERR_STORE);
    f.put_fail_at = 0;
    uint32_t after = 0;
    KWT_ERR(kw_keys_next_pre_key_id(id, &after, NULL), KW_OK);
    KWT_EQ(after, next);
    kw_identity_free(id);
    kw_store_free(inner);
}

/* A random source that fails on its Nth call (and after). */
typedef struct failing_random {
    int fail_at, calls, failed;
} failing_random;

static kw_err fr_fill(void *ctx, uint8_t *buf, size_t len)
{
    failing_random *r = ctx;
    r->calls++;
    if (r->fail_at && r->calls >= r->fail_at) {
        r->failed++;
        return KW_ERR_CRYPTO;
    }
    return kw_random_fill(kw_random_system(), buf, len);
}

static void test_fault_random_fails(void)
{
    failing_random count = {0, 0, 0};
    kw_random crnd = {fr_fill, &count};
    {
        party p;
        KWT_ERR(kw_store_mem_new(&p.store), KW_OK);
        kw_identity_config cfg = {KW_ROLE_MEMBER, p.store, &crnd, "bob", 1};
        KWT_ERR(kw_identity_open(&cfg, &p.id, NULL), KW_OK);
        KWT_ERR(setup(p.id, NOW, NULL), KW_OK);
        party_close(&p);
    }
    int limit = count.calls;
    KWT_CHECK(limit >= 32); /* identity, registration, signed pre-key, 30 pre-keys */
    int bad = 0;
    for (int n = 1; n <= limit && bad < 5; n++) {
        failing_random fr = {n, 0, 0};
        kw_random rnd = {fr_fill, &fr};
        party p;
        KWT_ERR(kw_store_mem_new(&p.store), KW_OK);
        kw_identity_config cfg = {KW_ROLE_MEMBER, p.store, &rnd, "bob", 1};
        KWT_ERR(kw_identity_open(&cfg, &p.id, NULL), KW_OK);
        kw_error err;
        memset(&err, 0, sizeof err);
        kw_err rc = kw_keys_setup(p.id, NOW, NULL, NULL, NULL, &err);
        int ok = KWT_CHECK(fr.failed > 0);
        ok &= KWT_CHECK(rc == KW_ERR_CRYPTO);
        ok &= KWT_CHECK(err.code == rc && err.detail[0] != '\0');
        fr.fail_at = 0;
        kw_err again = setup(p.id, NOW, NULL);
        ok &= KWT_CHECK(again == KW_OK);
        if (again == KW_OK)
            ok &= KWT_CHECK(usable(p.id) == KW_OK);
        if (!ok) {
            bad++;
            printf("    random fails from call %d: setup %s \"%s\", again %s\n", n, kw_err_name(rc),
                   err.detail, kw_err_name(again));
        }
        party_close(&p);
    }
}

int main(void)
{
    KWT_RUN(test_step_labels);
    KWT_RUN(test_identity_open_arguments);
    KWT_RUN(test_setup_fresh_store_five_steps);
    KWT_RUN(test_setup_second_run_reuses_everything);
    KWT_RUN(test_signed_pre_key_age_boundary);
    KWT_RUN(test_signed_pre_key_rotation_keeps_previous);
    KWT_RUN(test_setup_with_29_pre_keys_makes_batch);
    KWT_RUN(test_export_json_shape);
    KWT_RUN(test_replenish_threshold);
    KWT_RUN(test_replenish_ids_continue);
    KWT_RUN(test_next_pre_key_id_persists_in_memory_store);
    KWT_RUN(test_next_pre_key_id_persists_in_file_store);
    KWT_RUN(test_pre_key_id_wrap);
    KWT_RUN(test_fault_put_fails_once);
    KWT_RUN(test_fault_put_fails_from_n_on);
    KWT_RUN(test_fault_put_io_error);
    KWT_RUN(test_fault_put_during_rotation);
    KWT_RUN(test_fault_get_fails_once_empty_store);
    KWT_RUN(test_fault_get_fails_once_valid_keys);
    KWT_RUN(test_fault_get_during_rotation);
    KWT_RUN(test_fault_replenish_does_not_reuse_ids);
    KWT_RUN(test_fault_random_fails);
    return kwt_finish();
}
