/*
 * test_bundle.c — the key bundle JSON of DESIGN.md section 6: round trips for member and
 * guest bundles with and without a one-time pre-key, one table of malformed documents
 * (each a single change to a valid bundle) with the kw_err each must give, and tables for
 * the two checks the server also runs on upload (kw_pubkey_check, kw_signature_verify).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "keywave/base64.h"
#include "keywave/bundle.h"
#include "keywave/identity.h"
#include "kwtest.h"

#define NOW 1763800000000LL

typedef struct party {
    kw_store *store;
    kw_identity *id;
} party;

static int party_open(party *p)
{
    p->id = NULL;
    KWT_ERR(kw_store_mem_new(&p->store), KW_OK);
    kw_identity_config cfg = {KW_ROLE_MEMBER, p->store, NULL, NULL, 0};
    KWT_ERR(kw_identity_open(&cfg, &p->id, NULL), KW_OK);
    if (p->id == NULL)
        return 0;
    kw_error err;
    kw_err rc = kw_keys_setup(p->id, NOW, NULL, NULL, NULL, &err);
    KWT_ERR(rc, KW_OK);
    return rc == KW_OK;
}

static void party_close(party *p)
{
    kw_identity_free(p->id);
    kw_store_free(p->store);
}

static int bundles_equal(const kw_bundle *a, const kw_bundle *b)
{
    return strcmp(a->owner, b->owner) == 0 && a->owner_is_guest == b->owner_is_guest &&
           a->device_id == b->device_id && a->registration_id == b->registration_id &&
           memcmp(a->identity_key, b->identity_key, KW_PUBKEY_BYTES) == 0 &&
           a->signed_pre_key_id == b->signed_pre_key_id &&
           memcmp(a->signed_pre_key, b->signed_pre_key, KW_PUBKEY_BYTES) == 0 &&
           memcmp(a->signed_pre_key_signature, b->signed_pre_key_signature, KW_SIGNATURE_BYTES) ==
               0 &&
           a->has_one_time_pre_key == b->has_one_time_pre_key &&
           (!a->has_one_time_pre_key ||
            (a->one_time_pre_key_id == b->one_time_pre_key_id &&
             memcmp(a->one_time_pre_key, b->one_time_pre_key, KW_PUBKEY_BYTES) == 0));
}

static int is_zeroed(const kw_bundle *b)
{
    static const kw_bundle zero;
    return memcmp(b, &zero, sizeof zero) == 0;
}

/* ---- round trips ---- */

static void test_round_trips(void)
{
    party p;
    if (!party_open(&p))
        return;
    static const struct {
        const char *owner;
        int guest, with_otk;
        uint32_t device;
        const char *owner_field, *absent_field;
    } cases[] = {
        {"user_1234", 0, 1, 1, "\"user_id\":", "\"session_id\""},
        {"user_1234", 0, 0, 2147483647, "\"user_id\":", "\"session_id\""},
        {"gs_0123456789abcdef", 1, 1, 1, "\"session_id\":", "\"user_id\""},
        {"gs_0123456789abcdef", 1, 0, 7, "\"session_id\":", "\"user_id\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_bundle b, back;
        kw_error err;
        KWT_ERR(kw_bundle_self(p.id, cases[i].owner, cases[i].guest, cases[i].device, &b, &err),
                KW_OK);
        KWT_EQ(b.has_one_time_pre_key, 1);
        KWT_EQ(b.one_time_pre_key_id, 1); /* the lowest held */
        if (!cases[i].with_otk)
            b.has_one_time_pre_key = 0;
        char *json = NULL;
        KWT_ERR(kw_bundle_to_json(&b, &json, &err), KW_OK);
        if (!KWT_CHECK(json != NULL))
            continue;
        KWT_CHECK(strstr(json, cases[i].owner_field) != NULL);
        KWT_CHECK(strstr(json, cases[i].absent_field) == NULL);
        if (!cases[i].with_otk)
            KWT_CHECK(strstr(json, "\"one_time_pre_key\":null") != NULL);
        KWT_ERR(kw_bundle_from_json(json, strlen(json), &back, &err), KW_OK);
        if (!KWT_CHECK(bundles_equal(&b, &back)))
            printf("    case %zu: %s\n", i, json);
        /* Encoding again gives the same text: one value, one form. */
        char *again = NULL;
        KWT_ERR(kw_bundle_to_json(&back, &again, &err), KW_OK);
        KWT_STREQ(again, json);
        free(again);
        free(json);
    }
    party_close(&p);
}

/* ---- malformed documents ---- */

/* Named values the table refers to as "@name", computed from two real identities. */
typedef struct fixture {
    kw_bundle b;     /* valid, member, with one-time pre-key */
    kw_bundle other; /* another identity's bundle */
    char *valid;     /* b as JSON */
} fixture;

static fixture fx;

static char *b64_string(const uint8_t *data, size_t n)
{
    size_t cap = kw_base64_encoded_len(n) + 3;
    char *s = malloc(cap);
    s[0] = '"';
    KWT_ERR(kw_base64_encode(data, n, s + 1, cap - 2), KW_OK);
    size_t len = strlen(s);
    s[len] = '"';
    s[len + 1] = '\0';
    return s;
}

/* The base64 of data with the character at pos replaced (pos < 0 counts from the end). */
static char *b64_edit(const uint8_t *data, size_t n, int pos, char c)
{
    char *s = b64_string(data, n);
    size_t len = strlen(s); /* includes the two quotes */
    size_t at = pos >= 0 ? (size_t)pos + 1 : len - 1 + (size_t)(long)pos;
    s[at] = c;
    return s;
}

static char *json_text(const char *raw)
{
    return strdup(raw);
}

/* Returns the JSON text (malloc'd) for a table value; "@name" values are computed. */
static char *value_for(const char *v)
{
    uint8_t buf[80];
    const kw_bundle *b = &fx.b;
    if (v[0] != '@')
        return json_text(v);
    if (strcmp(v, "@ik32") == 0)
        return b64_string(b->identity_key, 32);
    if (strcmp(v, "@ik34") == 0) {
        memcpy(buf, b->identity_key, 33);
        buf[33] = 0;
        return b64_string(buf, 34);
    }
    if (strcmp(v, "@ik0") == 0)
        return b64_string(buf, 0);
    if (strcmp(v, "@ik04") == 0 || strcmp(v, "@ik00") == 0) {
        memcpy(buf, b->identity_key, 33);
        buf[0] = v[4] == '4' ? 0x04 : 0x00;
        return b64_string(buf, 33);
    }
    if (strcmp(v, "@ik_dash") == 0)
        return b64_edit(b->identity_key, 33, 5, '-');
    if (strcmp(v, "@ik_underscore") == 0)
        return b64_edit(b->identity_key, 33, 5, '_');
    if (strcmp(v, "@ik_space") == 0)
        return b64_edit(b->identity_key, 33, 10, ' ');
    if (strcmp(v, "@ik_newline") == 0) {
        char *s = b64_string(b->identity_key, 33);
        size_t len = strlen(s);
        char *t = malloc(len + 3);
        memcpy(t, s, len - 1);
        memcpy(t + len - 1, "\\n\"", 4);
        free(s);
        return t;
    }
    if (strcmp(v, "@ik_pad") == 0) {
        char *s = b64_string(b->identity_key, 33);
        size_t len = strlen(s);
        char *t = malloc(len + 5);
        memcpy(t, s, len - 1);
        memcpy(t + len - 1, "====\"", 6);
        free(s);
        return t;
    }
    if (strcmp(v, "@other_ik") == 0)
        return b64_string(fx.other.identity_key, 33);
    if (strcmp(v, "@spk32") == 0)
        return b64_string(b->signed_pre_key, 32);
    if (strcmp(v, "@spk04") == 0 || strcmp(v, "@spk_flip") == 0) {
        memcpy(buf, b->signed_pre_key, 33);
        if (v[4] == '0')
            buf[0] = 0x04;
        else
            buf[20] ^= 1;
        return b64_string(buf, 33);
    }
    if (strcmp(v, "@other_spk") == 0)
        return b64_string(fx.other.signed_pre_key, 33);
    if (strcmp(v, "@sig63") == 0)
        return b64_string(b->signed_pre_key_signature, 63);
    if (strcmp(v, "@sig65") == 0) {
        memcpy(buf, b->signed_pre_key_signature, 64);
        buf[64] = 0;
        return b64_string(buf, 65);
    }
    if (strcmp(v, "@sig_flip") == 0 || strcmp(v, "@sig_flip_top") == 0 ||
        strcmp(v, "@sig_flip_last") == 0) {
        memcpy(buf, b->signed_pre_key_signature, 64);
        if (strcmp(v, "@sig_flip") == 0)
            buf[10] ^= 0x01;
        else if (strcmp(v, "@sig_flip_top") == 0)
            buf[63] ^= 0x80;
        else
            buf[63] ^= 0x01;
        return b64_string(buf, 64);
    }
    if (strcmp(v, "@sig_zero") == 0) {
        memset(buf, 0, 64);
        return b64_string(buf, 64);
    }
    if (strcmp(v, "@other_sig") == 0)
        return b64_string(fx.other.signed_pre_key_signature, 64);
    if (strcmp(v, "@sig_stray") == 0) {
        /* 64 bytes = "...X==": X carries 2 data bits and 4 bits that must be zero. */
        char *s = b64_string(b->signed_pre_key_signature, 64);
        size_t len = strlen(s);
        static const char alpha[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *x = &s[len - 4];
        int sextet = (int)(strchr(alpha, *x) - alpha);
        *x = alpha[sextet | 1];
        return s;
    }
    if (strcmp(v, "@otk04") == 0) {
        memcpy(buf, b->one_time_pre_key, 33);
        buf[0] = 0x04;
        return b64_string(buf, 33);
    }
    if (strcmp(v, "@otk32") == 0)
        return b64_string(b->one_time_pre_key, 32);
    if (strcmp(v, "@name128") == 0 || strcmp(v, "@name129") == 0) {
        size_t n = v[7] == '8' ? 128 : 129;
        char *s = malloc(n + 3);
        s[0] = '"';
        memset(s + 1, 'u', n);
        s[n + 1] = '"';
        s[n + 2] = '\0';
        return s;
    }
    printf("    unknown table value %s\n", v);
    return json_text("null");
}

typedef enum { OP_SET, OP_DEL, OP_RAW, OP_PREFIX } op_kind;

typedef struct bad_case {
    const char *name;
    op_kind op;
    const char *path;  /* "field" or "object.field" (SET, DEL) */
    const char *value; /* JSON text or @name (SET); whole text (RAW); inserted after '{' */
    kw_err want;
} bad_case;

static const bad_case bad_cases[] = {
    /* control: the valid bundle itself, and values exactly on the boundaries */
    {"valid", OP_RAW, NULL, NULL, KW_OK},
    {"device_id max 2147483647", OP_SET, "device_id", "\"2147483647\"", KW_OK},
    {"device_id 1", OP_SET, "device_id", "\"1\"", KW_OK},
    {"registration_id 0", OP_SET, "registration_id", "0", KW_OK},
    {"registration_id 16383", OP_SET, "registration_id", "16383", KW_OK},
    {"signed_pre_key.id 0", OP_SET, "signed_pre_key.id", "0", KW_OK},
    {"signed_pre_key.id 0xFFFFFF", OP_SET, "signed_pre_key.id", "16777215", KW_OK},
    {"one_time_pre_key.id 0xFFFFFF", OP_SET, "one_time_pre_key.id", "16777215", KW_OK},
    {"one_time_pre_key null", OP_SET, "one_time_pre_key", "null", KW_OK},
    {"owner 128 bytes", OP_SET, "user_id", "@name128", KW_OK},
    {"owner non-ASCII UTF-8", OP_SET, "user_id", "\"j\\u00fcrgen\"", KW_OK},

    /* not JSON, or not an object */
    {"empty text", OP_RAW, NULL, "", KW_ERR_JSON},
    {"truncated", OP_RAW, NULL, "{\"user_id\":\"a\"", KW_ERR_JSON},
    {"not JSON", OP_RAW, NULL, "user_id=a", KW_ERR_JSON},
    {"array", OP_RAW, NULL, "[]", KW_ERR_JSON},
    {"array of bundle", OP_RAW, NULL, "[{}]", KW_ERR_JSON},
    {"null", OP_RAW, NULL, "null", KW_ERR_JSON},
    {"number", OP_RAW, NULL, "42", KW_ERR_JSON},
    {"string", OP_RAW, NULL, "\"bundle\"", KW_ERR_JSON},
    {"empty object", OP_RAW, NULL, "{}", KW_ERR_JSON},
    {"duplicate key", OP_PREFIX, NULL, "\"device_id\":\"1\",", KW_ERR_JSON},

    /* missing fields */
    {"missing user_id", OP_DEL, "user_id", NULL, KW_ERR_JSON},
    {"missing device_id", OP_DEL, "device_id", NULL, KW_ERR_JSON},
    {"missing registration_id", OP_DEL, "registration_id", NULL, KW_ERR_JSON},
    {"missing identity_key", OP_DEL, "identity_key", NULL, KW_ERR_JSON},
    {"missing signed_pre_key", OP_DEL, "signed_pre_key", NULL, KW_ERR_JSON},
    {"missing signed_pre_key.id", OP_DEL, "signed_pre_key.id", NULL, KW_ERR_JSON},
    {"missing signed_pre_key.public_key", OP_DEL, "signed_pre_key.public_key", NULL, KW_ERR_JSON},
    {"missing signed_pre_key.signature", OP_DEL, "signed_pre_key.signature", NULL, KW_ERR_JSON},
    {"missing one_time_pre_key (null is required)", OP_DEL, "one_time_pre_key", NULL, KW_ERR_JSON},
    {"missing one_time_pre_key.id", OP_DEL, "one_time_pre_key.id", NULL, KW_ERR_JSON},
    {"missing one_time_pre_key.public_key", OP_DEL, "one_time_pre_key.public_key", NULL,
     KW_ERR_JSON},

    /* owner */
    {"both user_id and session_id", OP_SET, "session_id", "\"gs_1\"", KW_ERR_JSON},
    {"user_id not a string", OP_SET, "user_id", "5", KW_ERR_JSON},
    {"user_id null", OP_SET, "user_id", "null", KW_ERR_JSON},
    {"owner empty", OP_SET, "user_id", "\"\"", KW_ERR_INVALID_ARGUMENT},
    {"owner 129 bytes", OP_SET, "user_id", "@name129", KW_ERR_INVALID_ARGUMENT},
    {"owner control char", OP_SET, "user_id", "\"al\\u0001ice\"", KW_ERR_INVALID_ARGUMENT},
    {"owner newline", OP_SET, "user_id", "\"alice\\n\"", KW_ERR_INVALID_ARGUMENT},
    {"owner DEL", OP_SET, "user_id", "\"alice\\u007f\"", KW_ERR_INVALID_ARGUMENT},
    /* jansson refuses \u0000 unless asked (JSON_ALLOW_NUL): the document does not load */
    {"owner embedded NUL", OP_SET, "user_id", "\"al\\u0000ice\"", KW_ERR_JSON},

    /* unknown fields */
    {"unknown top-level field", OP_SET, "extra", "1", KW_ERR_UNKNOWN_FIELD},
    {"private key field", OP_SET, "private_key", "\"AAAA\"", KW_ERR_UNKNOWN_FIELD},
    {"unknown field in signed_pre_key", OP_SET, "signed_pre_key.private_key", "\"AAAA\"",
     KW_ERR_UNKNOWN_FIELD},
    {"unknown field in one_time_pre_key", OP_SET, "one_time_pre_key.x", "null",
     KW_ERR_UNKNOWN_FIELD},

    /* device_id: a string of decimal digits in 1..2^31-1, no leading zero */
    {"device_id number", OP_SET, "device_id", "1", KW_ERR_JSON},
    {"device_id \"0\"", OP_SET, "device_id", "\"0\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"01\"", OP_SET, "device_id", "\"01\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"2147483648\"", OP_SET, "device_id", "\"2147483648\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"4294967297\"", OP_SET, "device_id", "\"4294967297\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id 11 digits", OP_SET, "device_id", "\"10000000000\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"\"", OP_SET, "device_id", "\"\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"-1\"", OP_SET, "device_id", "\"-1\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"+1\"", OP_SET, "device_id", "\"+1\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \" 1\"", OP_SET, "device_id", "\" 1\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"1a\"", OP_SET, "device_id", "\"1a\"", KW_ERR_INVALID_ARGUMENT},
    {"device_id \"1\\u0000\"", OP_SET, "device_id", "\"1\\u0000\"", KW_ERR_JSON},

    /* registration_id: integer in 0..0x3FFF */
    {"registration_id -1", OP_SET, "registration_id", "-1", KW_ERR_INVALID_ARGUMENT},
    {"registration_id 16384", OP_SET, "registration_id", "16384", KW_ERR_INVALID_ARGUMENT},
    {"registration_id 2^32", OP_SET, "registration_id", "4294967296", KW_ERR_INVALID_ARGUMENT},
    {"registration_id string", OP_SET, "registration_id", "\"5\"", KW_ERR_JSON},
    {"registration_id real", OP_SET, "registration_id", "5.0", KW_ERR_JSON},
    {"registration_id bool", OP_SET, "registration_id", "true", KW_ERR_JSON},
    {"registration_id 2^63", OP_RAW, NULL, "@replace_reg_2^63", KW_ERR_JSON},

    /* key ids: integer in 0..0xFFFFFF */
    {"signed_pre_key.id -1", OP_SET, "signed_pre_key.id", "-1", KW_ERR_INVALID_ARGUMENT},
    {"signed_pre_key.id 0x1000000", OP_SET, "signed_pre_key.id", "16777216",
     KW_ERR_INVALID_ARGUMENT},
    {"signed_pre_key.id string", OP_SET, "signed_pre_key.id", "\"1\"", KW_ERR_JSON},
    {"one_time_pre_key.id -1", OP_SET, "one_time_pre_key.id", "-1", KW_ERR_INVALID_ARGUMENT},
    {"one_time_pre_key.id 0x1000000", OP_SET, "one_time_pre_key.id", "16777216",
     KW_ERR_INVALID_ARGUMENT},

    /* keys: 33 bytes, prefix 0x05 */
    {"identity_key 32 bytes", OP_SET, "identity_key", "@ik32", KW_ERR_INVALID_KEY},
    {"identity_key 34 bytes", OP_SET, "identity_key", "@ik34", KW_ERR_INVALID_KEY},
    {"identity_key empty", OP_SET, "identity_key", "@ik0", KW_ERR_INVALID_KEY},
    {"identity_key prefix 0x04", OP_SET, "identity_key", "@ik04", KW_ERR_INVALID_KEY},
    {"identity_key prefix 0x00", OP_SET, "identity_key", "@ik00", KW_ERR_INVALID_KEY},
    {"identity_key not a string", OP_SET, "identity_key", "[5]", KW_ERR_JSON},
    {"signed_pre_key.public_key 32 bytes", OP_SET, "signed_pre_key.public_key", "@spk32",
     KW_ERR_INVALID_KEY},
    {"signed_pre_key.public_key prefix 0x04", OP_SET, "signed_pre_key.public_key", "@spk04",
     KW_ERR_INVALID_KEY},
    {"one_time_pre_key.public_key 32 bytes", OP_SET, "one_time_pre_key.public_key", "@otk32",
     KW_ERR_INVALID_KEY},
    {"one_time_pre_key.public_key prefix 0x04", OP_SET, "one_time_pre_key.public_key", "@otk04",
     KW_ERR_INVALID_KEY},
    {"one_time_pre_key array", OP_SET, "one_time_pre_key", "[]", KW_ERR_JSON},
    {"one_time_pre_key string", OP_SET, "one_time_pre_key", "\"none\"", KW_ERR_JSON},

    /* base64: standard alphabet, padded, canonical */
    {"identity_key url-safe -", OP_SET, "identity_key", "@ik_dash", KW_ERR_BASE64},
    {"identity_key url-safe _", OP_SET, "identity_key", "@ik_underscore", KW_ERR_BASE64},
    {"identity_key space", OP_SET, "identity_key", "@ik_space", KW_ERR_BASE64},
    {"identity_key trailing newline", OP_SET, "identity_key", "@ik_newline", KW_ERR_BASE64},
    {"identity_key extra padding", OP_SET, "identity_key", "@ik_pad", KW_ERR_BASE64},
    {"signature stray bits before ==", OP_SET, "signed_pre_key.signature", "@sig_stray",
     KW_ERR_BASE64},

    /* signatures: 64 bytes, verifying against identity_key */
    {"signature 63 bytes", OP_SET, "signed_pre_key.signature", "@sig63", KW_ERR_INVALID_SIGNATURE},
    {"signature 65 bytes", OP_SET, "signed_pre_key.signature", "@sig65", KW_ERR_INVALID_SIGNATURE},
    {"signature one bit flipped", OP_SET, "signed_pre_key.signature", "@sig_flip",
     KW_ERR_INVALID_SIGNATURE},
    {"signature last byte bit 0 flipped", OP_SET, "signed_pre_key.signature", "@sig_flip_last",
     KW_ERR_INVALID_SIGNATURE},
    {"signature sign bit flipped", OP_SET, "signed_pre_key.signature", "@sig_flip_top",
     KW_ERR_INVALID_SIGNATURE},
    {"signature all zero", OP_SET, "signed_pre_key.signature", "@sig_zero",
     KW_ERR_INVALID_SIGNATURE},
    {"mis-signed: another identity's key", OP_SET, "identity_key", "@other_ik",
     KW_ERR_INVALID_SIGNATURE},
    {"mis-signed: another identity's signature", OP_SET, "signed_pre_key.signature", "@other_sig",
     KW_ERR_INVALID_SIGNATURE},
    {"signed key changed", OP_SET, "signed_pre_key.public_key", "@spk_flip",
     KW_ERR_INVALID_SIGNATURE},
    {"signed key swapped", OP_SET, "signed_pre_key.public_key", "@other_spk",
     KW_ERR_INVALID_SIGNATURE},
};

/* Applies one table row to the valid bundle's JSON; returns the text to parse. */
static char *mutate(const bad_case *c)
{
    if (c->op == OP_RAW) {
        if (c->value == NULL)
            return strdup(fx.valid);
        if (strcmp(c->value, "@replace_reg_2^63") == 0) {
            /* jansson cannot hold 2^63 as an integer: the document does not load. */
            const char *at = strstr(fx.valid, "\"registration_id\":");
            const char *end = strchr(at, ',');
            size_t head = (size_t)(at - fx.valid);
            char *s = malloc(strlen(fx.valid) + 64);
            snprintf(s, strlen(fx.valid) + 64, "%.*s\"registration_id\":9223372036854775808%s",
                     (int)head, fx.valid, end);
            return s;
        }
        return strdup(c->value);
    }
    if (c->op == OP_PREFIX) {
        size_t n = strlen(fx.valid) + strlen(c->value) + 1;
        char *s = malloc(n);
        snprintf(s, n, "{%s%s", c->value, fx.valid + 1);
        return s;
    }
    json_t *doc = json_loads(fx.valid, 0, NULL);
    json_t *obj = doc;
    char parent[64] = "", field[64];
    const char *dot = strchr(c->path, '.');
    if (dot) {
        snprintf(parent, sizeof parent, "%.*s", (int)(dot - c->path), c->path);
        snprintf(field, sizeof field, "%s", dot + 1);
        obj = json_object_get(doc, parent);
    } else {
        snprintf(field, sizeof field, "%s", c->path);
    }
    KWT_CHECK(json_is_object(obj));
    if (c->op == OP_DEL) {
        KWT_EQ(json_object_del(obj, field), 0);
    } else {
        char *v = value_for(c->value);
        json_error_t jerr;
        json_t *val = json_loads(v, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!KWT_CHECK(val != NULL))
            printf("    value %s: %s\n", v, jerr.text);
        free(v);
        json_object_set_new(obj, field, val);
    }
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void test_malformed_table(void)
{
    party a, o;
    if (!party_open(&a) || !party_open(&o))
        return;
    kw_error err;
    KWT_ERR(kw_bundle_self(a.id, "alice", 0, 1, &fx.b, &err), KW_OK);
    KWT_ERR(kw_bundle_self(o.id, "oscar", 0, 1, &fx.other, &err), KW_OK);
    KWT_ERR(kw_bundle_to_json(&fx.b, &fx.valid, &err), KW_OK);
    for (size_t i = 0; fx.valid && i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char *text = mutate(c);
        kw_bundle out;
        memset(&out, 0x5A, sizeof out);
        kw_error e;
        memset(&e, 0, sizeof e);
        kw_err rc = kw_bundle_from_json(text, strlen(text), &out, &e);
        if (rc != c->want)
            printf("    case \"%s\": detail \"%s\"\n    %s\n", c->name, e.detail, text);
        KWT_ERR(rc, c->want);
        if (rc != KW_OK) {
            KWT_CHECK(is_zeroed(&out)); /* nothing half-parsed is left behind */
            KWT_EQ(e.code, rc);         /* and the detail names what failed */
            KWT_CHECK(e.detail[0] != '\0');
        }
        free(text);
    }
    free(fx.valid);
    fx.valid = NULL;
    party_close(&a);
    party_close(&o);
}

/* Only len bytes count: a valid document followed by garbage, and a NUL inside. */
static void test_length_is_respected(void)
{
    party a;
    if (!party_open(&a))
        return;
    kw_bundle b, out;
    kw_error err;
    char *json = NULL;
    KWT_ERR(kw_bundle_self(a.id, "alice", 0, 1, &b, &err), KW_OK);
    KWT_ERR(kw_bundle_to_json(&b, &json, &err), KW_OK);
    if (json != NULL) {
        size_t n = strlen(json);
        char *longer = malloc(n + 8);
        memcpy(longer, json, n);
        memcpy(longer + n, "garbage", 8);
        KWT_ERR(kw_bundle_from_json(longer, n, &out, &err), KW_OK);
        KWT_ERR(kw_bundle_from_json(longer, n + 7, &out, &err), KW_ERR_JSON);
        KWT_ERR(kw_bundle_from_json(json, n - 1, &out, &err), KW_ERR_JSON);
        free(longer);
    }
    free(json);
    party_close(&a);
}

/* What the encoder writes, the decoder accepts; what it cannot, it refuses to write. */
static void test_to_json_refuses_what_from_json_rejects(void)
{
    party a;
    if (!party_open(&a))
        return;
    kw_bundle good;
    kw_error err;
    KWT_ERR(kw_bundle_self(a.id, "alice", 0, 1, &good, &err), KW_OK);
    /* Each row is one field pushed just past what kw_bundle_from_json accepts. */
    static const struct {
        const char *name;
        kw_err want;
    } rows[] = {
        {"owner empty", KW_ERR_INVALID_ARGUMENT},
        {"owner control char", KW_ERR_INVALID_ARGUMENT},
        {"device_id 0", KW_ERR_INVALID_ARGUMENT},
        {"device_id 2^31", KW_ERR_INVALID_ARGUMENT},
        {"registration 16384", KW_ERR_INVALID_ARGUMENT},
        {"spk id 2^24", KW_ERR_INVALID_ARGUMENT},
        {"otk id 2^24", KW_ERR_INVALID_ARGUMENT},
        {"identity_key 0x04", KW_ERR_INVALID_KEY},
        {"signed pre-key 0x04", KW_ERR_INVALID_KEY},
        {"one-time pre-key 0x04", KW_ERR_INVALID_KEY},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        kw_bundle b = good;
        switch (k) {
        case 0:
            b.owner[0] = '\0';
            break;
        case 1:
            b.owner[1] = '\x01';
            break;
        case 2:
            b.device_id = 0;
            break;
        case 3:
            b.device_id = 0x80000000u;
            break;
        case 4:
            b.registration_id = 0x4000;
            break;
        case 5:
            b.signed_pre_key_id = 0x1000000;
            break;
        case 6:
            b.one_time_pre_key_id = 0x1000000;
            break;
        case 7:
            b.identity_key[0] = 0x04;
            break;
        case 8:
            b.signed_pre_key[0] = 0x04;
            break;
        case 9:
            b.one_time_pre_key[0] = 0x04;
            break;
        default:
            break;
        }
        char *json = (char *)"untouched";
        kw_err rc = kw_bundle_to_json(&b, &json, &err);
        if (rc == KW_OK) {
            kw_bundle back;
            kw_err prc = kw_bundle_from_json(json, strlen(json), &back, &err);
            printf("    %s: to_json wrote what from_json rejects (%s): %s\n", rows[k].name,
                   kw_err_name(prc), json);
            free(json);
        } else {
            KWT_CHECK(json == NULL);
        }
        KWT_ERR(rc, rows[k].want);
    }
    /* The boundaries themselves are written. */
    kw_bundle edge = good;
    edge.device_id = 0x7FFFFFFF;
    edge.registration_id = 0x3FFF;
    edge.signed_pre_key_id = 0xFFFFFF;
    edge.one_time_pre_key_id = 0xFFFFFF;
    char *json = NULL;
    KWT_ERR(kw_bundle_to_json(&edge, &json, &err), KW_OK);
    kw_bundle back;
    if (json)
        KWT_ERR(kw_bundle_from_json(json, strlen(json), &back, &err), KW_OK);
    free(json);
    party_close(&a);
}

static void test_bundle_self(void)
{
    party a;
    if (!party_open(&a))
        return;
    kw_bundle b;
    kw_error err;
    static const struct {
        const char *owner;
        kw_err want;
    } owners[] = {
        {"alice", KW_OK}, {"", KW_ERR_INVALID_ARGUMENT}, {"a\tb", KW_ERR_INVALID_ARGUMENT}};
    for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++)
        KWT_ERR(kw_bundle_self(a.id, owners[i].owner, 0, 1, &b, &err), owners[i].want);
    /* The lowest id held, numerically (2 < 10 although "10" < "2" as text). */
    KWT_ERR(kw_store_del(a.store, "prekey/1"), KW_OK);
    KWT_ERR(kw_bundle_self(a.id, "alice", 0, 1, &b, &err), KW_OK);
    KWT_EQ(b.one_time_pre_key_id, 2);
    KWT_ERR(kw_pubkey_check(b.one_time_pre_key, KW_PUBKEY_BYTES), KW_OK);
    /* No pre-key left: a bundle with the signed pre-key only. */
    for (int id = 2; id <= KW_PREKEY_BATCH; id++) {
        char key[32];
        snprintf(key, sizeof key, "prekey/%d", id);
        KWT_ERR(kw_store_del(a.store, key), KW_OK);
    }
    KWT_ERR(kw_bundle_self(a.id, "alice", 0, 1, &b, &err), KW_OK);
    KWT_EQ(b.has_one_time_pre_key, 0);
    char *json = NULL;
    KWT_ERR(kw_bundle_to_json(&b, &json, &err), KW_OK);
    KWT_CHECK(json && strstr(json, "\"one_time_pre_key\":null") != NULL);
    free(json);
    party_close(&a);
    /* Before setup there is nothing to publish. */
    kw_store *s = NULL;
    KWT_ERR(kw_store_mem_new(&s), KW_OK);
    kw_identity_config cfg = {KW_ROLE_MEMBER, s, NULL, NULL, 0};
    kw_identity *id = NULL;
    KWT_ERR(kw_identity_open(&cfg, &id, NULL), KW_OK);
    if (id)
        KWT_ERR(kw_bundle_self(id, "alice", 0, 1, &b, &err), KW_ERR_NOT_FOUND);
    kw_identity_free(id);
    kw_store_free(s);
}

/* ---- the upload checks ---- */

static void test_pubkey_check_table(void)
{
    uint8_t key[40];
    memset(key, 0x11, sizeof key);
    static const struct {
        size_t len;
        uint8_t prefix;
        kw_err want;
    } cases[] = {
        {33, 0x05, KW_OK},
        {32, 0x05, KW_ERR_INVALID_KEY},
        {34, 0x05, KW_ERR_INVALID_KEY},
        {1, 0x05, KW_ERR_INVALID_KEY},
        {33, 0x04, KW_ERR_INVALID_KEY},
        {33, 0x06, KW_ERR_INVALID_KEY},
        {33, 0x00, KW_ERR_INVALID_KEY},
        {33, 0x85, KW_ERR_INVALID_KEY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        key[0] = cases[i].prefix;
        KWT_ERR(kw_pubkey_check(key, cases[i].len), cases[i].want);
    }
}

static void test_signature_verify_table(void)
{
    party a, o;
    if (!party_open(&a) || !party_open(&o))
        return;
    kw_public_identity pa, po;
    kw_signed_pre_key_pub sa, so;
    KWT_ERR(kw_keys_identity(a.id, &pa, NULL), KW_OK);
    KWT_ERR(kw_keys_signed_pre_key(a.id, &sa, NULL), KW_OK);
    KWT_ERR(kw_keys_identity(o.id, &po, NULL), KW_OK);
    KWT_ERR(kw_keys_signed_pre_key(o.id, &so, NULL), KW_OK);
    enum {
        VALID,
        SIG63,
        SIG65,
        SIG0,
        IK04,
        IK_OTHER,
        SIG_OTHER,
        SIG_FLIP,
        SIG_TOP,
        MSG_FLIP,
        MSG_SHORT,
        MSG_LONG,
        SIG_ZERO
    };
    static const struct {
        int what;
        kw_err want;
    } cases[] = {
        {VALID, KW_OK},
        {SIG63, KW_ERR_INVALID_SIGNATURE},
        {SIG65, KW_ERR_INVALID_SIGNATURE},
        {SIG0, KW_ERR_INVALID_SIGNATURE},
        {IK04, KW_ERR_INVALID_KEY},
        {IK_OTHER, KW_ERR_INVALID_SIGNATURE},
        {SIG_OTHER, KW_ERR_INVALID_SIGNATURE},
        {SIG_FLIP, KW_ERR_INVALID_SIGNATURE},
        {SIG_TOP, KW_ERR_INVALID_SIGNATURE},
        {MSG_FLIP, KW_ERR_INVALID_SIGNATURE},
        {MSG_SHORT, KW_ERR_INVALID_SIGNATURE},
        {MSG_LONG, KW_ERR_INVALID_SIGNATURE},
        {SIG_ZERO, KW_ERR_INVALID_SIGNATURE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t ik[KW_PUBKEY_BYTES], msg[KW_PUBKEY_BYTES + 1], sig[KW_SIGNATURE_BYTES + 1];
        memcpy(ik, pa.identity_key, sizeof ik);
        memcpy(msg, sa.public_key, KW_PUBKEY_BYTES);
        msg[KW_PUBKEY_BYTES] = 0;
        memcpy(sig, sa.signature, KW_SIGNATURE_BYTES);
        sig[KW_SIGNATURE_BYTES] = 0;
        size_t msg_len = KW_PUBKEY_BYTES, sig_len = KW_SIGNATURE_BYTES;
        switch (cases[i].what) {
        case SIG63:
            sig_len = 63;
            break;
        case SIG65:
            sig_len = 65;
            break;
        case SIG0:
            sig_len = 0;
            break;
        case IK04:
            ik[0] = 0x04;
            break;
        case IK_OTHER:
            memcpy(ik, po.identity_key, sizeof ik);
            break;
        case SIG_OTHER:
            memcpy(sig, so.signature, KW_SIGNATURE_BYTES);
            break;
        case SIG_FLIP:
            sig[31] ^= 0x10;
            break;
        case SIG_TOP:
            sig[63] ^= 0x80;
            break;
        case MSG_FLIP:
            msg[32] ^= 0x01;
            break;
        case MSG_SHORT:
            msg_len = 32;
            break;
        case MSG_LONG:
            msg_len = 34;
            break;
        case SIG_ZERO:
            memset(sig, 0, sizeof sig);
            break;
        default:
            break;
        }
        kw_err rc = kw_signature_verify(ik, msg, msg_len, sig, sig_len);
        if (rc != cases[i].want)
            printf("    case %d\n", cases[i].what);
        KWT_ERR(rc, cases[i].want);
    }
    party_close(&a);
    party_close(&o);
}

int main(void)
{
    KWT_RUN(test_round_trips);
    KWT_RUN(test_malformed_table);
    KWT_RUN(test_length_is_respected);
    KWT_RUN(test_to_json_refuses_what_from_json_rejects);
    KWT_RUN(test_bundle_self);
    KWT_RUN(test_pubkey_check_table);
    KWT_RUN(test_signature_verify_table);
    return kwt_finish();
}
