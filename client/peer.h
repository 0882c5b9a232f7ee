/*
 * peer.h — Signal traffic with the other participants of one meeting, for the member and
 * guest flows: peer ids, opening sessions from the bundle routes, encrypting and
 * decrypting the media-key payloads.
 *
 * Peer ids are those of the media-key agreement (media_key.h): a member device is
 * "<user_id>:<device_id>" (Signal address user_id / device_id), a guest is
 * "guest_<session_id>" (Signal address "guest_<session_id>" / 1).
 */
#ifndef KEYWAVE_CLIENT_PEER_H
#define KEYWAVE_CLIENT_PEER_H

#include <stdint.h>

#include "api.h"
#include "keywave/identity.h"
#include "state.h"

#define KWC_PEER_ID_MAX 160

typedef struct kwc_peer {
    int is_guest;
    char name[KWC_PEER_ID_MAX + 1];  /* Signal address name */
    uint32_t device;                 /* Signal device id */
    char user_id[KWC_ID_MAX + 1];    /* members */
    char device_str[16];             /* members: device id, decimal */
    char session_id[KWC_ID_MAX + 1]; /* guests */
} kwc_peer;

/* Parses a peer id. Returns 0, or -1 when it is neither form. */
int kwc_peer_parse(const char *peer_id, kwc_peer *out);

/* Builds the peer of a member device / guest session. Returns 0, or -1 on a bad id. */
int kwc_peer_member(const char *user_id, const char *device_id, kwc_peer *out);
int kwc_peer_guest(const char *session_id, kwc_peer *out);

/* The peer id of p into out. */
void kwc_peer_id(const kwc_peer *p, char *out, size_t cap);

/*
 * Makes sure a Signal session with p exists: when none, GETs the bundle from
 * bundle_target (the route that hands out p's bundle to this caller) and processes it.
 * Errors: kwc_api_call's and the library's.
 */
kw_err kwc_peer_ensure_session(kwc_api *api, kw_identity *id, const kwc_peer *p,
                               const char *bundle_target, kw_error *err) KW_MUST_CHECK;

/* Encrypts text for p: *body (owned, base64) and *type (2 or 3). */
kw_err kwc_peer_encrypt(kw_identity *id, const kwc_peer *p, const char *text, char **body,
                        int *type, kw_error *err) KW_MUST_CHECK;

/* Decrypts a message from p into *text (owned, NUL-terminated; wipe and free). A type of 0
 * tries a pre-key message, then a normal one (for sender-key distributions, whose event
 * carries no type). */
kw_err kwc_peer_decrypt(kw_identity *id, const kwc_peer *p, int type, const char *body, char **text,
                        size_t *len, kw_error *err) KW_MUST_CHECK;

/* Wipes and frees a secret string. Accepts NULL. */
void kwc_free_secret(char *s);

/* The "type" of a media-key payload ("media_key_request", "media_key", ...) and its
 * request_id into the buffers ("" when absent). */
void kwc_payload_kind(const char *json, char *type, size_t tcap, char *request_id, size_t rcap);

#endif
