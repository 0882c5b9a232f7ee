/*
 * member.h — what a member command opens: the enrolled device, a connection to its server,
 * the signed API and (when asked) the device's Signal identity.
 */
#ifndef KEYWAVE_CLIENT_MEMBER_H
#define KEYWAVE_CLIENT_MEMBER_H

#include "api.h"
#include "cli.h"
#include "keywave/identity.h"
#include "net.h"
#include "state.h"

typedef struct kwc_member {
    kwc_device dev;
    kwc_net *net;    /* owned */
    kwc_api api;     /* signs as dev */
    kw_store *store; /* owned; NULL unless with_keys */
    kw_identity *id; /* owned; NULL unless with_keys */
} kwc_member;

/* Opens m; on failure prints the one-line error and returns the exit status (else 0). */
int kwc_member_open(kwc_ctx *ctx, kwc_member *m, int with_keys);

/* Frees what m holds and wipes the device secret. */
void kwc_member_close(kwc_member *m);

/* The peer id of a member device in the media-key agreement: "<user_id>:<device_id>". */
void kwc_member_peer_id(const char *user_id, const char *device_id, char *out, size_t cap);

#endif
