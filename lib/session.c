/*
 * session.c — 1:1 Signal sessions on the identity's store: X3DH from a bundle, then the
 * Double Ratchet. Bodies travel as standard padded base64 of the serialized message.
 */
#include "keywave/session.h"

#include <stdlib.h>
#include <string.h>

#include <curve.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>

#include "crypto.h"
#include "identity_internal.h"
#include "keywave/base64.h"

static kw_err address_of(const char *name, uint32_t device_id, signal_protocol_address *a,
                         kw_error *err)
{
    kw_err rc = kw_name_check(name, err);
    if (rc != KW_OK)
        return rc;
    if (device_id == 0 || device_id > INT32_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "device_id: out of range");
    a->name = name;
    a->name_len = strlen(name);
    a->device_id = (int32_t)device_id;
    return KW_OK;
}

static kw_err decode_point(const uint8_t *key, const char *what, ec_public_key **out, kw_error *err)
{
    if (kw_pubkey_check(key, KW_PUBKEY_BYTES) != KW_OK ||
        curve_decode_point(out, key, KW_PUBKEY_BYTES, NULL) < 0)
        return kw_error_set(err, KW_ERR_INVALID_KEY, "%s: not a public key", what);
    return KW_OK;
}

kw_err kw_session_process_bundle(kw_identity *id, const char *name, uint32_t device_id,
                                 const kw_bundle *b, kw_error *err)
{
    signal_protocol_address a;
    kw_err rc = address_of(name, device_id, &a, err);
    if (rc != KW_OK)
        return rc;
    ec_public_key *ik = NULL, *spk = NULL, *otk = NULL;
    session_pre_key_bundle *pb = NULL;
    session_builder *builder = NULL;
    if ((rc = decode_point(b->identity_key, "identity_key", &ik, err)) != KW_OK ||
        (rc = decode_point(b->signed_pre_key, "signed_pre_key", &spk, err)) != KW_OK ||
        (b->has_one_time_pre_key &&
         (rc = decode_point(b->one_time_pre_key, "one_time_pre_key", &otk, err)) != KW_OK))
        goto done;
    /* session_builder verifies the signed pre-key signature itself (once is enough). */
    int r = session_pre_key_bundle_create(&pb, b->registration_id, (int)b->device_id,
                                          b->has_one_time_pre_key ? b->one_time_pre_key_id : 0, otk,
                                          b->signed_pre_key_id, spk, b->signed_pre_key_signature,
                                          KW_SIGNATURE_BYTES, ik);
    if (r < 0) {
        rc = kw_error_set(err, kw_from_signal(r), "bundle: %s", kw_strerror(kw_from_signal(r)));
        goto done;
    }
    if ((r = session_builder_create(&builder, id->sc, &a, id->sg)) < 0) {
        rc = kw_error_set(err, KW_ERR_NOMEM, "session builder: out of memory");
        goto done;
    }
    r = session_builder_process_pre_key_bundle(builder, pb);
    if (r < 0)
        rc = kw_error_set(err, kw_from_signal(r), "process bundle: %s",
                          kw_strerror(kw_from_signal(r)));
done:
    session_builder_free(builder);
    SIGNAL_UNREF(pb);
    SIGNAL_UNREF(ik);
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(otk);
    return rc;
}

int kw_session_exists(kw_identity *id, const char *name, uint32_t device_id)
{
    signal_protocol_address a;
    if (address_of(name, device_id, &a, NULL) != KW_OK)
        return 0;
    return signal_protocol_session_contains_session(id->sc, &a) == 1;
}

kw_err kw_session_delete(kw_identity *id, const char *name, uint32_t device_id)
{
    signal_protocol_address a;
    kw_err rc = address_of(name, device_id, &a, NULL);
    if (rc != KW_OK)
        return rc;
    return signal_protocol_session_delete_session(id->sc, &a) < 0 ? KW_ERR_STORE : KW_OK;
}

static kw_err body_b64(signal_buffer *ser, char **body, kw_error *err)
{
    size_t n = kw_base64_encoded_len(signal_buffer_len(ser)) + 1;
    *body = malloc(n);
    if (*body == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "body: out of memory");
    return kw_base64_encode(signal_buffer_data(ser), signal_buffer_len(ser), *body, n);
}

kw_err kw_session_encrypt(kw_identity *id, const char *name, uint32_t device_id, const uint8_t *pt,
                          size_t len, int *type, char **body, kw_error *err)
{
    *body = NULL;
    *type = 0;
    signal_protocol_address a;
    kw_err rc = address_of(name, device_id, &a, err);
    if (rc != KW_OK)
        return rc;
    if (len > KW_MESSAGE_PLAINTEXT_MAX)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "plaintext: over %zu bytes",
                            KW_MESSAGE_PLAINTEXT_MAX);
    if (signal_protocol_session_contains_session(id->sc, &a) != 1)
        return kw_error_set(err, KW_ERR_NO_SESSION, "no session with %s.%u", name, device_id);
    session_cipher *cipher = NULL;
    ciphertext_message *msg = NULL;
    if (session_cipher_create(&cipher, id->sc, &a, id->sg) < 0)
        return kw_error_set(err, KW_ERR_NOMEM, "session cipher: out of memory");
    int r = session_cipher_encrypt(cipher, pt, len, &msg);
    if (r < 0) {
        rc = kw_error_set(err, kw_from_signal(r), "encrypt: %s", kw_strerror(kw_from_signal(r)));
        goto done;
    }
    *type =
        ciphertext_message_get_type(msg) == CIPHERTEXT_PREKEY_TYPE ? KW_MSG_PREKEY : KW_MSG_NORMAL;
    rc = body_b64(ciphertext_message_get_serialized(msg), body, err);
done:
    SIGNAL_UNREF(msg);
    session_cipher_free(cipher);
    return rc;
}

static kw_err decode_body(const char *body, uint8_t **raw, size_t *raw_len, kw_error *err)
{
    size_t n = strlen(body);
    if (n == 0 || n > KW_MESSAGE_BODY_MAX)
        return kw_error_set(err, KW_ERR_INVALID_MESSAGE, "body: empty or over %zu bytes",
                            KW_MESSAGE_BODY_MAX);
    *raw = malloc(n / 4 * 3 + 3);
    if (*raw == NULL)
        return kw_error_set(err, KW_ERR_NOMEM, "body: out of memory");
    if (kw_base64_decode(body, n, *raw, n / 4 * 3 + 3, raw_len) != KW_OK) {
        free(*raw);
        *raw = NULL;
        return kw_error_set(err, KW_ERR_BASE64, "body: not standard padded base64");
    }
    return KW_OK;
}

static kw_err take_plaintext(signal_buffer *out, uint8_t **pt, size_t *pt_len, kw_error *err)
{
    size_t n = signal_buffer_len(out);
    *pt = malloc(n ? n : 1);
    if (*pt == NULL) {
        signal_buffer_bzero_free(out);
        return kw_error_set(err, KW_ERR_NOMEM, "plaintext: out of memory");
    }
    memcpy(*pt, signal_buffer_data(out), n);
    *pt_len = n;
    signal_buffer_bzero_free(out);
    return KW_OK;
}

/* A message that does not deserialize is invalid, whatever code the parser chose (it
 * answers SG_ERR_INVAL for a truncated one); version errors keep their own meaning. */
static int parse_failure(int r)
{
    if (r == SG_ERR_NOMEM || r == SG_ERR_LEGACY_MESSAGE || r == SG_ERR_INVALID_VERSION)
        return r;
    return SG_ERR_INVALID_MESSAGE;
}

static int decrypt_prekey(kw_identity *id, session_cipher *cipher, const uint8_t *raw,
                          size_t raw_len, signal_buffer **out)
{
    pre_key_signal_message *m = NULL;
    int r = pre_key_signal_message_deserialize(&m, raw, raw_len, id->sg);
    if (r < 0)
        return parse_failure(r);
    r = session_cipher_decrypt_pre_key_signal_message(cipher, m, NULL, out);
    SIGNAL_UNREF(m);
    return r;
}

static int decrypt_normal(kw_identity *id, session_cipher *cipher, const uint8_t *raw,
                          size_t raw_len, signal_buffer **out)
{
    signal_message *m = NULL;
    int r = signal_message_deserialize(&m, raw, raw_len, id->sg);
    if (r < 0)
        return parse_failure(r);
    r = session_cipher_decrypt_signal_message(cipher, m, NULL, out);
    SIGNAL_UNREF(m);
    return r;
}

kw_err kw_session_decrypt(kw_identity *id, const char *name, uint32_t device_id, int type,
                          const char *body, uint8_t **pt, size_t *pt_len, kw_error *err)
{
    *pt = NULL;
    *pt_len = 0;
    signal_protocol_address a;
    kw_err rc = address_of(name, device_id, &a, err);
    if (rc != KW_OK)
        return rc;
    if (type != KW_MSG_PREKEY && type != KW_MSG_NORMAL && type != KW_MSG_NORMAL_JS)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "type: %d is not 1, 2 or 3", type);
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    if ((rc = decode_body(body, &raw, &raw_len, err)) != KW_OK)
        return rc;
    session_cipher *cipher = NULL;
    signal_buffer *out = NULL;
    if (session_cipher_create(&cipher, id->sc, &a, id->sg) < 0) {
        free(raw);
        return kw_error_set(err, KW_ERR_NOMEM, "session cipher: out of memory");
    }
    int r = type == KW_MSG_PREKEY ? decrypt_prekey(id, cipher, raw, raw_len, &out)
                                  : decrypt_normal(id, cipher, raw, raw_len, &out);
    session_cipher_free(cipher);
    free(raw);
    if (r < 0) {
        rc = kw_from_signal(r);
        return kw_error_set(err, rc, "decrypt from %s.%u: %s", name, device_id, kw_strerror(rc));
    }
    return take_plaintext(out, pt, pt_len, err);
}
