/*
 * api_meetings.h — helpers shared by the meeting-side route files (api_meetings.c,
 * api_channels.c, api_invitations.c, api_media.c, api_join.c), implemented in
 * api_meetings.c.
 *
 * Authorization rule for every meeting route (DESIGN.md section 7): the route is matched
 * first; then an unknown meeting is 404 not_found, an existing meeting the caller may not
 * act on is 403 forbidden (a non-participant, or a role below the route's), for every
 * caller alike. Channels follow the same rule.
 */
#ifndef KEYWAVE_SERVER_API_MEETINGS_H
#define KEYWAVE_SERVER_API_MEETINGS_H

#include <stddef.h>

#include <jansson.h>

#include "db_meetings.h"
#include "http.h"
#include "keywave/err.h"

struct kw_server;

#define KW_API_QUERY_VALUE_MAX 64 /* longest query-string value a route reads */

/* One query-string parameter a route knows (kw_api_query). */
typedef struct kw_api_query_field {
    const char *name;
    char value[KW_API_QUERY_VALUE_MAX + 1]; /* percent-decoded; "" when absent */
    int present;
} kw_api_query_field;

/*
 * Parses query ("a=1&b=2", "" for none) against fields (their values are filled).
 * Errors: KW_ERR_UNKNOWN_FIELD (a parameter not in fields), KW_ERR_INVALID_ARGUMENT
 * (repeated, empty name, bad percent-encoding, a value over KW_API_QUERY_VALUE_MAX or
 * holding a control character).
 */
kw_err kw_api_query(const char *query, kw_api_query_field *fields, size_t n,
                    kw_error *err) KW_MUST_CHECK;

/*
 * The member caller's role in meeting_id, checked against min (MEMBER: any participant).
 * *role (may be NULL) gets the role. m (may be NULL) gets the meeting.
 * Errors: KW_ERR_NOT_FOUND (no such meeting), KW_ERR_FORBIDDEN (role below min),
 * KW_ERR_INTERNAL (no member caller), KW_ERR_STORE.
 */
kw_err kw_api_meeting_access(struct kw_server *srv, const kw_request *req, const char *meeting_id,
                             kw_meeting_role min, kw_meeting_role *role, kw_db_meeting *m,
                             kw_error *err) KW_MUST_CHECK;

/* The meeting as the API shows it: {meeting_id, title, description, start_time, end_time,
 * is_instant_call, allow_external, created_by, created_at}. NULL on allocation failure. */
json_t *kw_api_meeting_json(const kw_db_meeting *m);

/* A time as an RFC 3339 JSON string, or JSON null when ms is 0 ("none", for optional
 * times like an invitation's expiry). NULL on failure. */
json_t *kw_api_time_json(int64_t ms);

/*
 * Reads the optional string field of obj (absent: *out = NULL, KW_OK); present it must
 * be a string of min..max bytes. Errors: KW_ERR_INVALID_ARGUMENT.
 */
kw_err kw_api_opt_string(json_t *obj, const char *field, size_t min, size_t max, const char **out,
                         kw_error *err) KW_MUST_CHECK;

/* Reads the optional boolean field (absent: *out unchanged). Errors: KW_ERR_INVALID_ARGUMENT. */
kw_err kw_api_opt_bool(json_t *obj, const char *field, int *out, kw_error *err) KW_MUST_CHECK;

/* Reads the required RFC 3339 time field into ms. Errors: KW_ERR_INVALID_ARGUMENT. */
kw_err kw_api_time_field(json_t *obj, const char *field, int64_t *ms, kw_error *err) KW_MUST_CHECK;

/* Sets res to 200 {"ok":true}. Errors: KW_ERR_NOMEM. */
kw_err kw_api_reply_ok(kw_response *res, kw_error *err);

/* Parses req's body like kw_api_body_object, except that an empty body is an empty object
 * (routes whose fields are all optional). */
kw_err kw_api_body_optional(const kw_request *req, const char *const *allowed, json_t **out,
                            kw_error *err) KW_MUST_CHECK;

#endif
