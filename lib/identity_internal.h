/*
 * identity_internal.h — the kw_identity struct, shared by the files that implement the
 * identity's verbs (identity.c, keys.c, bundle.c, session.c, group.c).
 */
#ifndef KEYWAVE_LIB_IDENTITY_INTERNAL_H
#define KEYWAVE_LIB_IDENTITY_INTERNAL_H

#include "keywave/identity.h"
#include "signal_glue.h"

struct kw_identity {
    kw_role role;
    kw_store *store;                   /* borrowed from the config */
    const kw_random *rnd;              /* borrowed */
    signal_context *sg;                /* owned */
    signal_protocol_store_context *sc; /* owned */
    char self_name[KW_NAME_MAX + 1];   /* "" until set */
    uint32_t self_device_id;
};

/* Checks an address name: 1..KW_NAME_MAX bytes, no control characters. */
kw_err kw_name_check(const char *name, kw_error *err);

/*
 * Parses a whole string of 1..10 decimal digits (no sign, no leading zero unless "0") no
 * greater than max. Returns KW_OK or KW_ERR_INVALID_ARGUMENT.
 */
kw_err kw_parse_decimal(const char *s, uint32_t max, uint32_t *out);

/* Big-endian helpers for the small metadata records. */
void kw_put_u32(uint8_t *p, uint32_t v);
uint32_t kw_get_u32(const uint8_t *p);
void kw_put_i64(uint8_t *p, int64_t v);
int64_t kw_get_i64(const uint8_t *p);

#endif
