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
        if (!known) {
            /* Quote the name back, shortened and reduced to harmless characters: it is input. */
            char shown[33];
            size_t n = 0;
            for (; key[n] != '\0' && n < sizeof shown - 1; n++) {
                char c = key[n];
                int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                if (!plain)
                    c = '?';
                shown[n] = c;
            }
            shown[n] = '\0';
            return kw_error_set(err, KW_ERR_UNKNOWN_FIELD, "%s: unknown field \"%s%s\"", path,
                                shown, key[n] != '\0' ? "..." : "");
        }
    }
    return KW_OK;
}
