/*
 * test_session.c — 1:1 Signal sessions between two in-memory identities: the PreKey ->
 * normal transition, pre-key deletion, and the failures (tampered, replayed, wrong
 * session, reused pre-key, untrusted identity).
 */
#include <stdlib.h>
#include <string.h>

#include "keywave/bundle.h"
#include "keywave/session.h"
#include "kwtest.h"

#define NOW 1763800000000LL

typedef struct party {
    kw_store *store;
    kw_identity *id;
    const char *name;
} party;

static void party_open(party *p, const char *name, kw_role role)
{
    kw_error err;
    p->name = name;
    KWT_ERR(kw_store_mem_new(&p->store), KW_OK);
    kw_identity_config cfg = {role, p->store, NULL, name, 1};
    KWT_ERR(kw_identity_open(&cfg, &p->id, &err), KW_OK);
    KWT_ERR(kw_keys_setup(p->id, NOW, NULL, NULL, NULL, &err), KW_OK);
}

static void party_close(party *p)
{
    kw_identity_free(p->id);
    kw_store_free(p->store);
}

/* from fetches to's bundle (through JSON, as the server would hand it out). */
static void connect(party *from, party *to)
{
    kw_bundle b, parsed;
    kw_error err;
    char *json = NULL;
    KWT_ERR(kw_bundle_self(to->id, to->name, 0, 1, &b, &err), KW_OK);
    KWT_ERR(kw_bundle_to_json(&b, &json, &err), KW_OK);
    KWT_ERR(kw_bundle_from_json(json, strlen(json), &parsed, &err), KW_OK);
    free(json);
    KWT_ERR(kw_session_process_bundle(from->id, to->name, 1, &parsed, &err), KW_OK);
}

static kw_err send_text(party *from, party *to, const char *text, int *type, char **body)
{
    kw_error err;
    return kw_session_encrypt(from->id, to->name, 1, (const uint8_t *)text, strlen(text), type,
                              body, &err);
}

static kw_err recv_text(party *to, party *from, int type, const char *body, const char *want)
{
    kw_error err;
    uint8_t *pt = NULL;
    size_t n = 0;
    kw_err rc = kw_session_decrypt(to->id, from->name, 1, type, body, &pt, &n, &err);
    if (rc == KW_OK && want != NULL) {
        KWT_EQ(n, strlen(want));
        KWT_CHECK(n == strlen(want) && memcmp(pt, want, n) == 0);
    }
    free(pt);
    return rc;
}

static void test_prekey_to_normal_transition(void)
{
    party a, b;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    connect(&a, &b);
    size_t before = 0, after = 0;
    KWT_ERR(kw_keys_local_pre_key_count(b.id, &before, NULL), KW_OK);
    int type;
    char *body;
    for (int i = 0; i < 3; i++) {
        KWT_ERR(send_text(&a, &b, "hello bob", &type, &body), KW_OK);
        KWT_EQ(type, KW_MSG_PREKEY);
        KWT_ERR(recv_text(&b, &a, type, body, "hello bob"), KW_OK);
        free(body);
    }
    KWT_ERR(kw_keys_local_pre_key_count(b.id, &after, NULL), KW_OK);
    KWT_EQ(after, before - 1); /* deleted after the first decrypt that used it */
    for (int i = 0; i < 3; i++) {
        KWT_ERR(send_text(&b, &a, "hi alice", &type, &body), KW_OK);
        KWT_EQ(type, KW_MSG_NORMAL);
        KWT_ERR(recv_text(&a, &b, type, body, "hi alice"), KW_OK);
        free(body);
    }
    KWT_ERR(send_text(&a, &b, "normal now", &type, &body), KW_OK);
    KWT_EQ(type, KW_MSG_NORMAL);
    KWT_ERR(recv_text(&b, &a, KW_MSG_NORMAL_JS, body, "normal now"), KW_OK); /* type 1 too */
    free(body);
    party_close(&a);
    party_close(&b);
}

static void test_tampered_replayed_wrong_session(void)
{
    party a, b, c;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    party_open(&c, "carol", KW_ROLE_MEMBER);
    connect(&a, &b);
    int type;
    char *body;
    KWT_ERR(send_text(&a, &b, "first", &type, &body), KW_OK);
    KWT_ERR(recv_text(&b, &a, type, body, "first"), KW_OK);
    free(body);
    KWT_ERR(send_text(&b, &a, "reply", &type, &body), KW_OK);
    KWT_ERR(recv_text(&a, &b, type, body, "reply"), KW_OK);
    free(body);

    KWT_ERR(send_text(&a, &b, "secret", &type, &body), KW_OK);
    char *tampered = strdup(body);
    size_t n = strlen(tampered);
    tampered[n / 2] = tampered[n / 2] == 'A' ? 'B' : 'A';
    kw_err rc = recv_text(&b, &a, type, tampered, NULL);
    KWT_CHECK(rc == KW_ERR_DECRYPT || rc == KW_ERR_INVALID_MESSAGE);
    free(tampered);
    KWT_ERR(recv_text(&c, &a, type, body, NULL), KW_ERR_NO_SESSION); /* wrong session */
    KWT_ERR(recv_text(&b, &a, type, body, "secret"), KW_OK);         /* tampering changed nothing */
    KWT_ERR(recv_text(&b, &a, type, body, NULL), KW_ERR_DUPLICATE_MESSAGE); /* replay */
    KWT_ERR(recv_text(&b, &a, 7, body, NULL), KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(recv_text(&b, &a, type, "not base64!", NULL), KW_ERR_BASE64);
    KWT_ERR(recv_text(&b, &a, type, "", NULL), KW_ERR_INVALID_MESSAGE);
    free(body);
    party_close(&a);
    party_close(&b);
    party_close(&c);
}

static void test_reused_pre_key_rejected(void)
{
    party a, b, c;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    party_open(&c, "carol", KW_ROLE_MEMBER);
    kw_bundle bundle;
    kw_error err;
    KWT_ERR(kw_bundle_self(b.id, "bob", 0, 1, &bundle, &err), KW_OK);
    KWT_ERR(kw_session_process_bundle(a.id, "bob", 1, &bundle, &err), KW_OK);
    KWT_ERR(kw_session_process_bundle(c.id, "bob", 1, &bundle, &err), KW_OK); /* same pre-key */
    int type;
    char *body;
    KWT_ERR(send_text(&a, &b, "from alice", &type, &body), KW_OK);
    KWT_ERR(recv_text(&b, &a, type, body, "from alice"), KW_OK);
    free(body);
    KWT_ERR(send_text(&c, &b, "from carol", &type, &body), KW_OK);
    KWT_ERR(recv_text(&b, &c, type, body, NULL), KW_ERR_INVALID_PREKEY_ID);
    free(body);
    party_close(&a);
    party_close(&b);
    party_close(&c);
}

static void test_changed_identity_untrusted(void)
{
    party a, b, b2;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    party_open(&b, "bob", KW_ROLE_MEMBER);
    party_open(&b2, "bob", KW_ROLE_MEMBER); /* someone else claiming bob.1 */
    connect(&a, &b);
    int type;
    char *body;
    KWT_ERR(send_text(&a, &b, "x", &type, &body), KW_OK);
    free(body);
    kw_bundle bundle;
    kw_error err;
    KWT_ERR(kw_bundle_self(b2.id, "bob", 0, 1, &bundle, &err), KW_OK);
    KWT_ERR(kw_session_process_bundle(a.id, "bob", 1, &bundle, &err), KW_ERR_UNTRUSTED_IDENTITY);
    party_close(&a);
    party_close(&b);
    party_close(&b2);
}

static void test_no_session_and_bad_address(void)
{
    party a;
    party_open(&a, "alice", KW_ROLE_MEMBER);
    int type;
    char *body = NULL;
    kw_error err;
    KWT_ERR(kw_session_encrypt(a.id, "nobody", 1, (const uint8_t *)"x", 1, &type, &body, &err),
            KW_ERR_NO_SESSION);
    KWT_CHECK(body == NULL);
    KWT_ERR(kw_session_encrypt(a.id, "", 1, (const uint8_t *)"x", 1, &type, &body, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_ERR(kw_session_encrypt(a.id, "bob", 0, (const uint8_t *)"x", 1, &type, &body, &err),
            KW_ERR_INVALID_ARGUMENT);
    KWT_CHECK(!kw_session_exists(a.id, "nobody", 1));
    party_close(&a);
}

int main(void)
{
    KWT_RUN(test_prekey_to_normal_transition);
    KWT_RUN(test_tampered_replayed_wrong_session);
    KWT_RUN(test_reused_pre_key_rejected);
    KWT_RUN(test_changed_identity_untrusted);
    KWT_RUN(test_no_session_and_bad_address);
    return kwt_finish();
}
