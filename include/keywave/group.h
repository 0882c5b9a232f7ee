/*
 * group.h — Signal sender keys for a group (a channel or meeting id).
 *
 * A member creates its sender key for a group and sends the distribution message to each
 * recipient over a 1:1 session; recipients process it and can then decrypt the member's
 * group messages. A guest handle may receive and decrypt but never create a sender key
 * or encrypt to a group (seed 002): those calls return KW_ERR_FORBIDDEN.
 * Distribution messages and group ciphertexts are standard padded base64.
 */
#ifndef KEYWAVE_GROUP_H
#define KEYWAVE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "keywave/err.h"
#include "keywave/identity.h"

/*
 * Creates (or loads) our sender key for group_id and returns its distribution message
 * (*dist malloc'd base64, owned by the caller). Needs the own address (identity config or
 * kw_identity_set_self). Errors: KW_ERR_FORBIDDEN (guest), KW_ERR_STATE (no own address),
 * KW_ERR_STORE.
 */
KW_MUST_CHECK kw_err kw_group_create_distribution(kw_identity *id, const char *group_id,
                                                  char **dist, kw_error *err);

/* Processes a distribution message from (sender, device) for group_id. Errors:
 * KW_ERR_BASE64, KW_ERR_INVALID_MESSAGE, KW_ERR_STORE. */
KW_MUST_CHECK kw_err kw_group_process_distribution(kw_identity *id, const char *group_id,
                                                   const char *sender, uint32_t device_id,
                                                   const char *dist, kw_error *err);

/* Encrypts to the group with our sender key. *ct malloc'd base64. Errors:
 * KW_ERR_INVALID_ARGUMENT (over KW_MESSAGE_PLAINTEXT_MAX, session.h), KW_ERR_FORBIDDEN (guest),
 * KW_ERR_NO_SENDER_KEY (create the distribution first), KW_ERR_STATE, KW_ERR_STORE. */
KW_MUST_CHECK kw_err kw_group_encrypt(kw_identity *id, const char *group_id, const uint8_t *pt,
                                      size_t len, char **ct, kw_error *err);

/* Decrypts a group message from (sender, device). *pt malloc'd (caller wipes and frees).
 * Errors: KW_ERR_NO_SENDER_KEY, KW_ERR_BASE64, KW_ERR_INVALID_MESSAGE, KW_ERR_DECRYPT,
 * KW_ERR_DUPLICATE_MESSAGE, KW_ERR_STORE. */
KW_MUST_CHECK kw_err kw_group_decrypt(kw_identity *id, const char *group_id, const char *sender,
                                      uint32_t device_id, const char *ct, uint8_t **pt,
                                      size_t *pt_len, kw_error *err);

#endif
