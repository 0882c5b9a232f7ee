/*
 * test_group.c — Signal sender keys for a group: a member's distribution processed by a
 * member and a guest, messages both decrypt, replays and tampering refused, guests
 * receive-only (seed 002, invariant 5: refused and nothing stored), the state errors
 * (no sender key yet, no own address), argument boundaries, garbage input, and no
 * cross-decryption between groups or senders.
 */
#include <stdlib.h>
#include <string.h>

#include "keywave/base64.h"
#include "keywave/group.h"
#include "keywave/identity.h"
#include "keywave/session.h"
#include "kwtest.h"

#define NOW         1763800000000LL
#define GROUP       "mtg_0123456789ab"
#define OTHER_GROUP "mtg_ba9876543210"

typedef struct party {
    kw_store *store;
    kw_identity *id;
    const char *name;
} party;

static int party_open(party *p, const char *name, kw_role role)
{
    kw_error err;
    p->name = name;
    p->id = NULL;
    KWT_ERR(kw_store_mem_new(&p->store), KW_OK);
    kw_identity_config cfg = {role, p->store, NULL, name, 1};
    KWT_ERR(kw_identity_open(&cfg, &p->id, &err), KW_OK);
    if (p->id == NULL)
        return 0;
    kw_err rc = kw_keys_setup(p->id, NOW, NULL, NULL, NULL, &err);
    KWT_ERR(rc, KW_OK);
    return rc == KW_OK;
}

static void party_close(party *p)
{
    kw_identity_free(p->id);
    kw_store_free(p->store);
}

static char *distribution(party *from, const char *group)
{
    char *dist = NULL;
    kw_error err;
    KWT_ERR(kw_group_create_distribution(from->id, group, &dist, &err), KW_OK);
    return dist;
}

static kw_err process(party *to, party *from, const char *group, const char *dist)
{
    kw_error err;
    return kw_group_process_distribution(to->id, group, from->name, 1, dist, &err);
}

static char *send_text(party *from, const char *group, const char *text)
{
    char *ct = NULL;
    kw_error err;
    KWT_ERR(kw_group_encrypt(from->id, group, (const uint8_t *)text, strlen(text), &ct, &err),
            KW_OK);
    return ct;
}

/* Decrypts ct from `from` at `to`; checks the text when want != NULL and it succeeded. */
static kw_err recv_text(party *to, party *from, const char *group, const char *ct, const char *want)
{
    uint8_t *pt = NULL;
    size_t n = 99;
    kw_error err;
    memset(&err, 0, sizeof err);
    kw_err rc = kw_group_decrypt(to->id, group, from->name, 1, ct, &pt, &n, &err);
    if (rc == KW_OK && want != NULL)
        KWT_CHECK(n == strlen(want) && memcmp(pt, want, n) == 0);
    if (rc != KW_OK) {
        KWT_CHECK(pt == NULL && n == 0);
        KWT_CHECK(err.code == rc && err.detail[0] != '\0');
    }
    free(pt);
    return rc;
}

static void test_member_and_guest_receive(void)
{
    party a, b, g;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    party_open(&g, "guest_gs_42", KW_ROLE_GUEST);
    char *dist = distribution(&a, GROUP);
    if (dist == NULL)
        goto done;
    KWT_ERR(process(&b, &a, GROUP, dist), KW_OK);
    KWT_ERR(process(&g, &a, GROUP, dist), KW_OK);
    static const char *texts[] = {"first", "second", "third"};
    char *ct[3];
    for (int i = 0; i < 3; i++)
        ct[i] = send_text(&a, GROUP, texts[i]);
    for (int i = 0; i < 3; i++) {
        KWT_ERR(recv_text(&b, &a, GROUP, ct[i], texts[i]), KW_OK);
        KWT_ERR(recv_text(&g, &a, GROUP, ct[i], texts[i]), KW_OK);
    }
    /* Replay of any of them, at either receiver. */
    for (int i = 0; i < 3; i++) {
        KWT_ERR(recv_text(&b, &a, GROUP, ct[i], NULL), KW_ERR_DUPLICATE_MESSAGE);
        KWT_ERR(recv_text(&g, &a, GROUP, ct[i], NULL), KW_ERR_DUPLICATE_MESSAGE);
    }
    for (int i = 0; i < 3; i++)
        free(ct[i]);
    /* Out of order: the 5th before the 4th. */
    char *c4 = send_text(&a, GROUP, "fourth"), *c5 = send_text(&a, GROUP, "fifth");
    KWT_ERR(recv_text(&b, &a, GROUP, c5, "fifth"), KW_OK);
    KWT_ERR(recv_text(&b, &a, GROUP, c4, "fourth"), KW_OK);
    KWT_ERR(recv_text(&b, &a, GROUP, c4, NULL), KW_ERR_DUPLICATE_MESSAGE);
    free(c4);
    free(c5);
    /* Empty plaintext is a message too. */
    char *ce = NULL;
    kw_error err;
    KWT_ERR(kw_group_encrypt(a.id, GROUP, (const uint8_t *)"", 0, &ce, &err), KW_OK);
    if (ce)
        KWT_ERR(recv_text(&g, &a, GROUP, ce, ""), KW_OK);
    free(ce);
done:
    free(dist);
    party_close(&a);
    party_close(&b);
    party_close(&g);
}

/* Calling create again loads the same sender key: earlier receivers keep decrypting. */
static void test_create_distribution_twice_keeps_key(void)
{
    party a, b, c;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    party_open(&c, "carol", KW_ROLE_MEMBER);
    char *d1 = distribution(&a, GROUP);
    KWT_ERR(process(&b, &a, GROUP, d1), KW_OK);
    char *m1 = send_text(&a, GROUP, "one");
    char *d2 = distribution(&a, GROUP);
    KWT_ERR(process(&c, &a, GROUP, d2), KW_OK);
    char *m2 = send_text(&a, GROUP, "two");
    KWT_ERR(recv_text(&b, &a, GROUP, m1, "one"), KW_OK);
    KWT_ERR(recv_text(&b, &a, GROUP, m2, "two"), KW_OK);
    KWT_ERR(recv_text(&c, &a, GROUP, m2, "two"), KW_OK);
    free(d1);
    free(d2);
    free(m1);
    free(m2);
    party_close(&a);
    party_close(&b);
    party_close(&c);
}

/* Each tampering, applied to the decoded message; the genuine one still decrypts after. */
static void test_tampered_message(void)
{
    party a, b;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    char *dist = distribution(&a, GROUP);
    KWT_ERR(process(&b, &a, GROUP, dist), KW_OK);
    char *ct = send_text(&a, GROUP, "a message long enough to span two AES blocks");
    if (ct == NULL)
        goto done;
    uint8_t raw[512];
    size_t n = 0;
    KWT_ERR(kw_base64_decode(ct, strlen(ct), raw, sizeof raw, &n), KW_OK);
    /*
     * Layout: version byte, protobuf {id, iteration, ciphertext}, 64-byte signature over
     * everything before it. A changed signature or signed byte fails the signature check
     * (KW_ERR_DECRYPT, which is how group.c reports tampering); a message that no longer
     * parses (a changed version, or a length change that moves the signature boundary into
     * the protobuf) is KW_ERR_INVALID_MESSAGE.
     */
    enum { SIG_LAST, SIG_FIRST, BODY_LAST, BODY_MID, VERSION, DROP_LAST, INSERT_ZERO };
    static const struct {
        int what;
        const char *name;
        kw_err want;
    } cases[] = {
        {SIG_LAST, "signature last byte", KW_ERR_DECRYPT},
        {SIG_FIRST, "signature first byte", KW_ERR_DECRYPT},
        {BODY_LAST, "last ciphertext byte", KW_ERR_DECRYPT},
        {BODY_MID, "a ciphertext byte in the middle", KW_ERR_DECRYPT},
        {VERSION, "version byte 0x33 -> 0x23", KW_ERR_INVALID_MESSAGE},
        {DROP_LAST, "one byte short", KW_ERR_INVALID_MESSAGE},
        {INSERT_ZERO, "a zero byte before the signature", KW_ERR_INVALID_MESSAGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t t[520];
        size_t tn = n;
        memcpy(t, raw, n);
        switch (cases[i].what) {
        case SIG_LAST:
            t[n - 1] ^= 0x01;
            break;
        case SIG_FIRST:
            t[n - 64] ^= 0x01;
            break;
        case BODY_LAST:
            t[n - 65] ^= 0x01;
            break;
        case BODY_MID:
            t[n - 80] ^= 0x01;
            break;
        case VERSION:
            t[0] ^= 0x10;
            break;
        case DROP_LAST:
            tn = n - 1;
            break;
        case INSERT_ZERO: /* a 0x00 between the protobuf and the signature */
            memmove(t + n - 63, t + n - 64, 64);
            t[n - 64] = 0;
            tn = n + 1;
            break;
        default:
            break;
        }
        char text[800];
        KWT_ERR(kw_base64_encode(t, tn, text, sizeof text), KW_OK);
        kw_err rc = recv_text(&b, &a, GROUP, text, NULL);
        if (rc != cases[i].want)
            printf("    %s\n", cases[i].name);
        KWT_ERR(rc, cases[i].want);
    }
    KWT_ERR(recv_text(&b, &a, GROUP, ct, "a message long enough to span two AES blocks"), KW_OK);
done:
    free(ct);
    free(dist);
    party_close(&a);
    party_close(&b);
}

/* Every key in a store, joined, so two moments can be compared without knowing the
 * record key layout (names are hashed into keys). */
typedef struct key_list {
    char text[8192];
    size_t len;
    int count;
} key_list;

static kw_err add_key(void *arg, const char *key)
{
    key_list *l = arg;
    l->count++;
    size_t n = strlen(key);
    if (l->len + n + 2 < sizeof l->text) {
        memcpy(l->text + l->len, key, n);
        l->text[l->len + n] = '\n';
        l->len += n + 1;
        l->text[l->len] = '\0';
    }
    return KW_OK;
}

static void list_keys(kw_store *s, const char *prefix, key_list *l)
{
    l->len = 0;
    l->count = 0;
    l->text[0] = '\0';
    KWT_ERR(kw_store_list(s, prefix, add_key, l), KW_OK);
}

/* INV-5: a guest may receive but never creates or uses a sender key of its own. */
static void test_inv_5_guest_is_receive_only(void)
{
    party a, g;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&g, "guest_gs_42", KW_ROLE_GUEST);
    kw_error err;
    key_list before, after;
    char *out = (char *)"untouched";
    /* A guest that has received nothing yet: the refusal stores nothing at all. */
    list_keys(g.store, "", &before);
    KWT_ERR(kw_group_create_distribution(g.id, GROUP, &out, &err), KW_ERR_FORBIDDEN);
    KWT_CHECK(out == NULL);
    KWT_CHECK(err.code == KW_ERR_FORBIDDEN && err.detail[0] != '\0');
    list_keys(g.store, "", &after);
    KWT_EQ(after.count, before.count);
    KWT_STREQ(after.text, before.text);
    list_keys(g.store, "sender_key/", &after);
    KWT_EQ(after.count, 0);

    /* After receiving alice's key: only alice's record, and the refusals add nothing. */
    char *dist = distribution(&a, GROUP);
    KWT_ERR(process(&g, &a, GROUP, dist), KW_OK);
    list_keys(g.store, "sender_key/", &before);
    KWT_EQ(before.count, 1);
    out = (char *)"untouched";
    KWT_ERR(kw_group_create_distribution(g.id, GROUP, &out, &err), KW_ERR_FORBIDDEN);
    KWT_CHECK(out == NULL);
    out = (char *)"untouched";
    KWT_ERR(kw_group_encrypt(g.id, GROUP, (const uint8_t *)"x", 1, &out, &err), KW_ERR_FORBIDDEN);
    KWT_CHECK(out == NULL);
    /* Refused before anything else: also for a group id that would be invalid. */
    KWT_ERR(kw_group_create_distribution(g.id, "", &out, &err), KW_ERR_FORBIDDEN);
    list_keys(g.store, "sender_key/", &after);
    KWT_EQ(after.count, 1);
    KWT_STREQ(after.text, before.text);
    /* The guest still receives. */
    char *m = send_text(&a, GROUP, "to everyone");
    KWT_ERR(recv_text(&g, &a, GROUP, m, "to everyone"), KW_OK);
    free(m);
    free(dist);
    party_close(&a);
    party_close(&g);
}

static void test_state_errors(void)
{
    party a, b, c;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    party_open(&c, "carol", KW_ROLE_MEMBER);
    kw_error err;
    char *ct = (char *)"untouched";
    /* Encrypt before creating. */
    KWT_ERR(kw_group_encrypt(b.id, GROUP, (const uint8_t *)"x", 1, &ct, &err),
            KW_ERR_NO_SENDER_KEY);
    KWT_CHECK(ct == NULL);
    char *dist = distribution(&a, GROUP);
    KWT_ERR(process(&b, &a, GROUP, dist), KW_OK);
    char *m = send_text(&a, GROUP, "hello");
    /* Decrypt before processing: carol never got the distribution. */
    KWT_ERR(recv_text(&c, &a, GROUP, m, NULL), KW_ERR_NO_SENDER_KEY);
    /* Processing a distribution does not give bob a sender key of his own. */
    ct = NULL;
    KWT_ERR(kw_group_encrypt(b.id, GROUP, (const uint8_t *)"x", 1, &ct, &err),
            KW_ERR_NO_SENDER_KEY);
    /* The right message under the wrong sender or device. */
    uint8_t *pt = NULL;
    size_t n = 0;
    KWT_ERR(kw_group_decrypt(b.id, GROUP, "mallory", 1, m, &pt, &n, &err), KW_ERR_NO_SENDER_KEY);
    KWT_ERR(kw_group_decrypt(b.id, GROUP, "alice", 2, m, &pt, &n, &err), KW_ERR_NO_SENDER_KEY);
    KWT_ERR(recv_text(&b, &a, GROUP, m, "hello"), KW_OK);

    /* A member handle with no own address yet. */
    kw_store *s = NULL;
    KWT_ERR(kw_store_mem_new(&s), KW_OK);
    kw_identity_config cfg = {KW_ROLE_MEMBER, s, NULL, NULL, 0};
    kw_identity *anon = NULL;
    KWT_ERR(kw_identity_open(&cfg, &anon, NULL), KW_OK);
    if (anon) {
        KWT_ERR(kw_keys_setup(anon, NOW, NULL, NULL, NULL, NULL), KW_OK);
        char *d = (char *)"untouched";
        KWT_ERR(kw_group_create_distribution(anon, GROUP, &d, &err), KW_ERR_STATE);
        KWT_CHECK(d == NULL);
        KWT_ERR(kw_group_encrypt(anon, GROUP, (const uint8_t *)"x", 1, &d, &err), KW_ERR_STATE);
        /* ... but it may receive. */
        KWT_ERR(kw_group_process_distribution(anon, GROUP, "alice", 1, dist, &err), KW_OK);
        KWT_ERR(kw_group_decrypt(anon, GROUP, "alice", 1, m, &pt, &n, &err), KW_OK);
        free(pt);
        /* Once the address is set, it can send. */
        KWT_ERR(kw_identity_set_self(anon, "dave", 3), KW_OK);
        d = NULL;
        KWT_ERR(kw_group_create_distribution(anon, GROUP, &d, &err), KW_OK);
        free(d);
    }
    kw_identity_free(anon);
    kw_store_free(s);
    free(m);
    free(dist);
    party_close(&a);
    party_close(&b);
    party_close(&c);
}

/* Group ids of 1..128 bytes; sender names and devices as for sessions. */
static void test_argument_boundaries(void)
{
    party a, b;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    char g128[129], g129[130], n129[130];
    memset(g128, 'g', 128);
    g128[128] = '\0';
    memset(g129, 'g', 129);
    g129[129] = '\0';
    memset(n129, 'n', 129);
    n129[129] = '\0';
    static const struct {
        int group; /* 0 NULL, 1 "", 2 "x", 3 128 bytes, 4 129 bytes */
        kw_err want;
    } groups[] = {{0, KW_ERR_INVALID_ARGUMENT},
                  {1, KW_ERR_INVALID_ARGUMENT},
                  {2, KW_OK},
                  {3, KW_OK},
                  {4, KW_ERR_INVALID_ARGUMENT}};
    const char *gid[] = {NULL, "", "x", g128, g129};
    kw_error err;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        const char *g = gid[groups[i].group];
        char *dist = NULL, *ct = NULL;
        kw_err rc = kw_group_create_distribution(a.id, g, &dist, &err);
        if (rc != groups[i].want)
            printf("    create, group of %zu bytes: %s\n", g ? strlen(g) : 0, err.detail);
        KWT_ERR(rc, groups[i].want);
        KWT_CHECK((dist != NULL) == (rc == KW_OK));
        if (rc != groups[i].want) {
            free(dist);
            continue; /* the other three calls would only repeat the failure */
        }
        const char *d = dist ? dist : "AAAA";
        rc = kw_group_process_distribution(b.id, g, "alice", 1, d, &err);
        KWT_ERR(rc, groups[i].want);
        rc = kw_group_encrypt(a.id, g, (const uint8_t *)"x", 1, &ct, &err);
        KWT_ERR(rc, groups[i].want);
        uint8_t *pt = NULL;
        size_t n = 0;
        rc = kw_group_decrypt(b.id, g, "alice", 1, ct ? ct : "AAAA", &pt, &n, &err);
        KWT_ERR(rc, groups[i].want);
        free(pt);
        free(dist);
        free(ct);
    }
    /* Sender address checks on the receiving side. */
    char *dist = distribution(&a, GROUP);
    static const struct {
        int name; /* 0 NULL, 1 "", 2 129 bytes, 3 control char */
        uint32_t device;
        kw_err want;
    } senders[] = {
        {0, 1, KW_ERR_INVALID_ARGUMENT}, {1, 1, KW_ERR_INVALID_ARGUMENT},
        {2, 1, KW_ERR_INVALID_ARGUMENT}, {3, 1, KW_ERR_INVALID_ARGUMENT},
        {4, 0, KW_ERR_INVALID_ARGUMENT}, {4, 0x80000000u, KW_ERR_INVALID_ARGUMENT},
        {4, 0x7FFFFFFF, KW_OK},
    };
    const char *names[] = {NULL, "", n129, "al\nice", "alice"};
    for (size_t i = 0; dist && i < sizeof senders / sizeof senders[0]; i++) {
        kw_err rc = kw_group_process_distribution(b.id, GROUP, names[senders[i].name],
                                                  senders[i].device, dist, &err);
        if (rc != senders[i].want)
            printf("    sender case %zu\n", i);
        KWT_ERR(rc, senders[i].want);
    }
    free(dist);
    party_close(&a);
    party_close(&b);
}

/* Garbage where a distribution or a group message should be. */
static void test_garbage_input(void)
{
    party a, b;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    char *dist = distribution(&a, GROUP);
    char *msg = send_text(&a, GROUP, "hi");
    if (dist == NULL || msg == NULL)
        goto done;
    /* Half a distribution, re-encoded; a message where a distribution belongs. */
    uint8_t raw[256];
    size_t n = 0;
    KWT_ERR(kw_base64_decode(dist, strlen(dist), raw, sizeof raw, &n), KW_OK);
    char half[256];
    KWT_ERR(kw_base64_encode(raw, n / 2, half, sizeof half), KW_OK);
    char zeros[128];
    memset(raw, 0, sizeof raw);
    KWT_ERR(kw_base64_encode(raw, 78, zeros, sizeof zeros), KW_OK);
    /* One group of four characters over the body limit (valid base64 of zeros). */
    char *big = malloc(KW_MESSAGE_BODY_MAX + 8);
    memset(big, 'A', KW_MESSAGE_BODY_MAX + 4);
    big[KW_MESSAGE_BODY_MAX + 4] = '\0';
    static const struct {
        const char *name;
        int which; /* index into texts below */
        kw_err want;
    } cases[] = {
        {"NULL", 0, KW_ERR_INVALID_MESSAGE},
        {"empty", 1, KW_ERR_INVALID_MESSAGE},
        {"not base64", 2, KW_ERR_BASE64},
        {"url-safe base64", 3, KW_ERR_BASE64},
        {"3 zero bytes", 4, KW_ERR_INVALID_MESSAGE},
        {"78 zero bytes", 5, KW_ERR_INVALID_MESSAGE},
        {"truncated distribution", 6, KW_ERR_INVALID_MESSAGE},
        {"group message as distribution", 7, KW_ERR_INVALID_MESSAGE},
        {"over KW_MESSAGE_BODY_MAX", 8, KW_ERR_INVALID_MESSAGE},
    };
    const char *texts[] = {NULL, "", "not base64!", "Zm-v", "AAAA", zeros, half, msg, big};
    kw_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_err rc =
            kw_group_process_distribution(b.id, GROUP, "alice", 1, texts[cases[i].which], &err);
        if (rc != cases[i].want)
            printf("    distribution: %s\n", cases[i].name);
        KWT_ERR(rc, cases[i].want);
    }
    /* Nothing was stored by the failures: decrypting still finds no sender key. */
    KWT_ERR(recv_text(&b, &a, GROUP, msg, NULL), KW_ERR_NO_SENDER_KEY);
    KWT_ERR(process(&b, &a, GROUP, dist), KW_OK);
    /* The same garbage as a group message (a distribution does not parse as one either). */
    texts[7] = dist;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_err rc = recv_text(&b, &a, GROUP, texts[cases[i].which], NULL);
        if (rc != cases[i].want)
            printf("    message: %s\n", cases[i].name);
        KWT_ERR(rc, cases[i].want);
    }
    KWT_ERR(recv_text(&b, &a, GROUP, msg, "hi"), KW_OK);
    free(big);
done:
    free(dist);
    free(msg);
    party_close(&a);
    party_close(&b);
}

/* Messages of one group never decrypt under another, even with the same sender. */
static void test_groups_do_not_cross_decrypt(void)
{
    party a, b;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    char *d1 = distribution(&a, GROUP);
    KWT_ERR(process(&b, &a, GROUP, d1), KW_OK);
    char *m1 = send_text(&a, GROUP, "for group one");
    /* bob has no state for the other group at all. */
    KWT_ERR(recv_text(&b, &a, OTHER_GROUP, m1, NULL), KW_ERR_NO_SENDER_KEY);
    /* With state for both groups, a group-one message still fails under group two: its
     * sender key id is unknown there, which the library reports as an invalid message and
     * group.c as KW_ERR_DECRYPT. */
    char *d2 = distribution(&a, OTHER_GROUP);
    KWT_CHECK(d1 && d2 && strcmp(d1, d2) != 0);
    KWT_ERR(process(&b, &a, OTHER_GROUP, d2), KW_OK);
    char *m2 = send_text(&a, OTHER_GROUP, "for group two");
    kw_err rc = recv_text(&b, &a, OTHER_GROUP, m1, NULL);
    KWT_CHECK(rc != KW_OK);
    KWT_ERR(rc, KW_ERR_DECRYPT);
    rc = recv_text(&b, &a, GROUP, m2, NULL);
    KWT_ERR(rc, KW_ERR_DECRYPT);
    /* and the right pairing works, after the failed attempts */
    KWT_ERR(recv_text(&b, &a, GROUP, m1, "for group one"), KW_OK);
    KWT_ERR(recv_text(&b, &a, OTHER_GROUP, m2, "for group two"), KW_OK);
    free(d1);
    free(d2);
    free(m1);
    free(m2);
    party_close(&a);
    party_close(&b);
}

/* What encrypt produces, decrypt accepts: the plaintext limit is checked on the way in,
 * and the largest allowed plaintext still fits the body limit on the way out. */
static void test_plaintext_limit_boundary(void)
{
    party a, b;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    char *dist = distribution(&a, GROUP);
    KWT_ERR(process(&b, &a, GROUP, dist), KW_OK);
    static const struct {
        size_t len;
        kw_err want;
    } sizes[] = {
        {1000, KW_OK},
        {KW_MESSAGE_PLAINTEXT_MAX, KW_OK},
        {KW_MESSAGE_PLAINTEXT_MAX + 1, KW_ERR_INVALID_ARGUMENT},
    };
    uint8_t *pt = malloc(KW_MESSAGE_PLAINTEXT_MAX + 1);
    for (size_t i = 0; i < KW_MESSAGE_PLAINTEXT_MAX + 1; i++)
        pt[i] = (uint8_t)(i * 31);
    kw_error err;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *ct = (char *)"untouched";
        kw_err rc = kw_group_encrypt(a.id, GROUP, pt, sizes[i].len, &ct, &err);
        if (rc != sizes[i].want)
            printf("    %zu bytes\n", sizes[i].len);
        KWT_ERR(rc, sizes[i].want);
        if (rc != KW_OK) {
            KWT_CHECK(ct == NULL);
            continue;
        }
        KWT_CHECK(strlen(ct) <= KW_MESSAGE_BODY_MAX);
        uint8_t *back = NULL;
        size_t n = 0;
        kw_err drc = kw_group_decrypt(b.id, GROUP, "alice", 1, ct, &back, &n, &err);
        if (!KWT_CHECK(drc == KW_OK))
            printf("    %zu bytes: encrypt gave %zu chars of base64, decrypt said %s\n",
                   sizes[i].len, strlen(ct), kw_err_name(drc));
        KWT_CHECK(drc != KW_OK || (n == sizes[i].len && memcmp(back, pt, n) == 0));
        free(back);
        free(ct);
    }
    free(pt);
    free(dist);
    party_close(&a);
    party_close(&b);
}

int main(void)
{
    KWT_RUN(test_member_and_guest_receive);
    KWT_RUN(test_create_distribution_twice_keeps_key);
    KWT_RUN(test_tampered_message);
    KWT_RUN(test_inv_5_guest_is_receive_only);
    KWT_RUN(test_state_errors);
    KWT_RUN(test_argument_boundaries);
    KWT_RUN(test_garbage_input);
    KWT_RUN(test_groups_do_not_cross_decrypt);
    KWT_RUN(test_plaintext_limit_boundary);
    return kwt_finish();
}
