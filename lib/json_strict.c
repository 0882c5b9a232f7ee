/*
 * json_strict.c — strict-JSON helpers for the codecs in lib/.
 */
#include "json_strict.h"

#include <string.h>

kw_err kw_json_only_fields(json_t *obj, const char *const *allowed, const char *path, kw_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            return kw_error_set(err, KW_ERR_UNKNOWN_FIELD, "%s: unknown field", path);
    }
    return KW_OK;
}
