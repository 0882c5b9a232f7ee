/*
 * json_strict.h — internal: the strict-JSON checks shared by the payload codecs in lib/
 * (bundles, media-key messages). jansson stays out of public headers.
 */
#ifndef KEYWAVE_LIB_JSON_STRICT_H
#define KEYWAVE_LIB_JSON_STRICT_H

#include <jansson.h>

#include "keywave/err.h"

/*
 * Rejects any field of obj not in allowed (a NULL-terminated list): KW_ERR_UNKNOWN_FIELD
 * with detail `<path>: unknown field "<name>"`, the name cut to 32 characters and every
 * character outside [A-Za-z0-9_.-] shown as '?', since it is input.
 */
kw_err kw_json_only_fields(json_t *obj, const char *const *allowed, const char *path,
                           kw_error *err);

#endif
