/*
 * group.c — Signal sender keys. Guests are receive-only (seed 002, invariant 5): a guest
 * handle can process distributions and decrypt, never create a sender key or encrypt.
 */
#include "keywave/group.h"

#include <stdlib.h>
#include <string.h>

#include <group_cipher.h>
#include <group_session_builder.h>
#include <protocol.h>
#include <sender_key_record.h>

#include "identity_internal.h"
#include "keywave/base64.h"
#include "keywave/session.h"

#define GROUP_ID_MAX 128

static kw_err group_check(const char *group_id, kw_error *err)
{
    size_t n = group_id ? strlen(group_id) : 0;
    if (n == 0 || n > GROUP_ID_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "group_id: 1 to %d bytes", GROUP_ID_MAX);
    return KW_OK;
}

static kw_err sender_name(const char *group_id, const char *name, uint32_t device_id,
                          signal_protocol_sender_key_name *out, kw_error *err)
{
    kw_err rc = group_check(group_id, err);
    if (rc == KW_OK)
        rc = kw_name_check(name, err);
    if (rc != KW_OK)
        return rc;
    if (device_id == 0 || device_id > INT32_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "device_id: out of range");
    out->group_id = group_id;
    out->group_id_len = strlen(group_id);
    out->sender.name = name;
    out->sender.name_len = strlen(name);
    out->sender.device_id = (int32_t)device_id;
    return KW_OK;
}

/* Our own sender-key name; members only. */
static kw_err self_name(kw_identity *id, const char *group_id, signal_protocol_sender_key_name *out,
                        kw_error *err)
{
    if (id->role == KW_ROLE_GUEST)
        return kw_error_set(err, KW_ERR_FORBIDDEN, "guests are receive-only for group keys");
    if (id->self_name[0] == '\0')
        return kw_error_set(err, KW_ERR_STATE, "own address not set");
    return sender_name(group_id, id->self_name, id->self_device_id, out, err);
}

static kw_err to_b64(signal_buffer *ser, char **out, kw_error *err)
{
    size_t n = kw_base64_encoded_len(signal_buffer_len(ser)) + 1;
    *out = malloc(n);
    if (*out == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    return kw_base64_encode(signal_buffer_data(ser), signal_buffer_len(ser), *out, n);
}

static kw_err from_b64(const char *text, uint8_t **raw, size_t *len, kw_error *err)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > KW_MESSAGE_BODY_MAX)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "message: empty or too long");
    *raw = malloc(n / 4 * 3 + 3);
    if (*raw == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    if (kw_base64_decode(text, n, *raw, n / 4 * 3 + 3, len) != KW_OK) {
        free(*raw);
        *raw = NULL;
        return kw_error_set(err, KW_ERR_BASE64, "message: not standard padded base64");
    }
    return KW_OK;
}

kw_err kw_group_create_distribution(kw_identity *id, const char *group_id, char **dist,
                                    kw_error *err)
{
    *dist = NULL;
    signal_protocol_sender_key_name n;
    kw_err rc = self_name(id, group_id, &n, err);
    if (rc != KW_OK)
        return rc;
    group_session_builder *b = NULL;
    sender_key_distribution_message *m = NULL;
    if (group_session_builder_create(&b, id->sc, id->sg) < 0)
        return kw_error_set(err, KW_ERR_NOMEM, "group builder: out of memory");
    int r = group_session_builder_create_session(b, &m, &n);
    if (r < 0)
        rc = kw_error_set(err, kw_from_signal(r), "sender key: %s", kw_strerror(kw_from_signal(r)));
    else
        rc = to_b64(ciphertext_message_get_serialized((ciphertext_message *)m), dist, err);
    SIGNAL_UNREF(m);
    group_session_builder_free(b);
    return rc;
}

kw_err kw_group_process_distribution(kw_identity *id, const char *group_id, const char *sender,
                                     uint32_t device_id, const char *dist, kw_error *err)
{
    signal_protocol_sender_key_name n;
    kw_err rc = sender_name(group_id, sender, device_id, &n, err);
    if (rc != KW_OK)
        return rc;
    uint8_t *raw = NULL;
    size_t len = 0;
    if ((rc = from_b64(dist, &raw, &len, err)) != KW_OK)
        return rc;
    sender_key_distribution_message *m = NULL;
    group_session_builder *b = NULL;
    int r = sender_key_distribution_message_deserialize(&m, raw, len, id->sg);
    free(raw);
    if (r < 0)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "distribution: does not parse");
    if (group_session_builder_create(&b, id->sc, id->sg) < 0) {
        SIGNAL_UNREF(m);
        return kw_error_set(err, KW_ERR_NOMEM, "group builder: out of memory");
    }
    r = group_session_builder_process_session(b, &n, m);
    if (r < 0)
        rc = kw_error_set(err, kw_from_signal(r), "distribution: %s",
                          kw_strerror(kw_from_signal(r)));
    group_session_builder_free(b);
    SIGNAL_UNREF(m);
    return rc;
}

/* Does a sender key record exist for n? (group_cipher would create an empty one.) */
static int has_sender_key(kw_identity *id, const signal_protocol_sender_key_name *n)
{
    sender_key_record *rec = NULL;
    if (signal_protocol_sender_key_load_key(id->sc, &rec, n) < 0)
        return 0;
    int empty = sender_key_record_is_empty(rec);
    SIGNAL_UNREF(rec);
    return !empty;
}

kw_err kw_group_encrypt(kw_identity *id, const char *group_id, const uint8_t *pt, size_t len,
                        char **ct, kw_error *err)
{
    *ct = NULL;
    signal_protocol_sender_key_name n;
    kw_err rc = self_name(id, group_id, &n, err);
    if (rc != KW_OK)
        return rc;
    if (len > KW_MESSAGE_PLAINTEXT_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "plaintext: over %zu bytes",
                            KW_MESSAGE_PLAINTEXT_MAX);
    if (!has_sender_key(id, &n))
        return kw_error_set(err, KW_ERR_NO_SENDER_KEY, "no own sender key for this group");
    group_cipher *c = NULL;
    ciphertext_message *m = NULL;
    if (group_cipher_create(&c, id->sc, &n, id->sg) < 0)
        return kw_error_set(err, KW_ERR_NOMEM, "group cipher: out of memory");
    int r = group_cipher_encrypt(c, pt, len, &m);
    if (r < 0)
        rc = kw_error_set(err, kw_from_signal(r), "group encrypt: %s",
                          kw_strerror(kw_from_signal(r)));
    else
        rc = to_b64(ciphertext_message_get_serialized(m), ct, err);
    SIGNAL_UNREF(m);
    group_cipher_free(c);
    return rc;
}

kw_err kw_group_decrypt(kw_identity *id, const char *group_id, const char *sender,
                        uint32_t device_id, const char *ct, uint8_t **pt, size_t *pt_len,
                        kw_error *err)
{
    *pt = NULL;
    *pt_len = 0;
    signal_protocol_sender_key_name n;
    kw_err rc = sender_name(group_id, sender, device_id, &n, err);
    if (rc != KW_OK)
        return rc;
    if (!has_sender_key(id, &n))
        return kw_error_set(err, KW_ERR_NO_SENDER_KEY, "no sender key from %s.%u", sender,
                            device_id);
    uint8_t *raw = NULL;
    size_t len = 0;
    if ((rc = from_b64(ct, &raw, &len, err)) != KW_OK)
        return rc;
    sender_key_message *m = NULL;
    int r = sender_key_message_deserialize(&m, raw, len, id->sg);
    free(raw);
    if (r < 0)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "group message: does not parse");
    group_cipher *c = NULL;
    signal_buffer *out = NULL;
    if (group_cipher_create(&c, id->sc, &n, id->sg) < 0) {
        SIGNAL_UNREF(m);
        return kw_error_set(err, KW_ERR_NOMEM, "group cipher: out of memory");
    }
    r = group_cipher_decrypt(c, m, NULL, &out);
    group_cipher_free(c);
    SIGNAL_UNREF(m);
    if (r < 0) {
        rc = kw_from_signal(r);
        /* A bad signature on a sender-key message is how tampering shows up. */
        if (rc == KW_ERR_INVALID_MESSAGE)
            rc = KW_ERR_DECRYPT;
        return kw_error_set(err, rc, "group decrypt from %s.%u: %s", sender, device_id,
                            kw_strerror(rc));
    }
    *pt = malloc(signal_buffer_len(out) ? signal_buffer_len(out) : 1);
    if (*pt == NULL) {
        signal_buffer_bzero_free(out);
        return kw_error_set(err, KW_ERR_NOMEM, "out of memory");
    }
    memcpy(*pt, signal_buffer_data(out), signal_buffer_len(out));
    *pt_len = signal_buffer_len(out);
    signal_buffer_bzero_free(out);
    return KW_OK;
}
