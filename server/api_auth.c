/*
 * api_auth.c — POST /api/auth/enroll (DESIGN.md section 4): a new member device redeems
 * a one-time enrollment code (from `keywaved user add|code`) for its device session.
 *
 * The answer carries the session secret, shown this once; it is never logged (INV-8).
 * An unknown, used or expired code gets one answer (401 unauthorized), so the endpoint
 * does not tell which codes ever existed.
 */
#include <stdio.h>
#include <string.h>

#include "api_json.h"
#include "crypto.h"
#include "db.h"
#include "db_members.h"
#include "http.h"
#include "log.h"
#include "server.h"

static kw_err post_enroll(kw_server *srv, const kw_request *req, kw_response *res, kw_error *err)
{
    static const char *const fields[] = {"code", "device_name", NULL};
    if (srv->db == NULL) /* cannot happen: main() opens it before listening */
        return kw_error_set(err, KW_ERR_INTERNAL, "storage is not open");
    json_t *body = NULL;
    const char *code = NULL, *device_name = NULL;
    kw_err rc = kw_api_body_object(req, fields, &body, err);
    if (rc == KW_OK)
        rc =
            kw_api_string(body, "", "code", KW_ENROLL_CODE_CHARS, KW_ENROLL_CODE_CHARS, &code, err);
    if (rc == KW_OK)
        rc = kw_api_string(body, "", "device_name", 1, KW_DEVICE_NAME_MAX, &device_name, err);
    kw_db_enrollment e;
    memset(&e, 0, sizeof e);
    if (rc == KW_OK)
        rc = srv->db->members->enroll(srv->db->ctx, code, device_name, req->now_ms, &e, err);
    json_decref(body); /* the code text stays in jansson's freed memory: it is now used up */
    if (rc == KW_ERR_NOT_FOUND)
        return kw_error_set(err, KW_ERR_UNAUTHORIZED, "code: unknown, already used or expired");
    if (rc != KW_OK)
        return rc;
    char device_id[16];
    snprintf(device_id, sizeof device_id, "%u", e.device_id);
    kw_log(KW_LOG_INFO, "device_enrolled", "user_id=%s device_id=%s", e.user_id, device_id);
    rc = kw_response_take_json(res, 201,
                               json_pack("{s:s, s:s, s:s, s:s}", "user_id", e.user_id, "device_id",
                                         device_id, "client_id", e.client_id, "session_secret",
                                         e.session_secret));
    kw_wipe(&e, sizeof e);
    return rc == KW_OK ? KW_OK : kw_error_set(err, rc, "out of memory");
}

const kw_route kw_routes_auth[] = {
    {KW_POST, "/api/auth/enroll", KW_AUTH_NONE, post_enroll},
    {0, NULL, 0, NULL},
};
