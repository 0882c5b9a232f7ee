/*
 * cmd_guest.c — `keywave guest join <link> --name <display name>`: the seed 000 guest flow,
 * headless.
 *
 *   1. key setup (five named steps, a progress bar on a terminal), keys in memory only;
 *   2. the invitation's meeting (GET /api/meetings/external/join/:token);
 *   3. registration, then the guest socket (/external) — registering first is what lets
 *      the server push meeting:host_present the moment a member arrives;
 *   4. "waiting for host" until a member is present (push; the join info is polled every
 *      5 s as a fallback), then the admission request;
 *   5. the waiting room until admitted or declined;
 *   6. the key exchange with the present members (media_key.h: 5 s per member, the next
 *      one, an error after three failures) and the members' sender keys;
 *   7. the media-key fingerprint and, when the server has LiveKit, a token;
 *   8. stays (pre-keys topped up below 10) until Ctrl-C or --exit-when-ready, then
 *      deletes its session.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "keywave/group.h"
#include "keywave/media_key.h"
#include "keywave/random.h"
#include "peer.h"

#define SIO_TIMEOUT_MS  10000
#define HOST_POLL_MS    5000
#define PREKEY_CHECK_MS 30000
#define MAX_MEMBERS     1024

static const char help[] =
    "Usage: keywave guest join <link> --name <display name> [--exit-when-ready]\n"
    "\n"
    "Joins a meeting as a guest from an invitation link (https://host/join/meeting/<token>):\n"
    "makes keys, waits for a host, asks to be admitted, exchanges keys with the members\n"
    "present and prints the media-key fingerprint to compare with the host's. Stays until\n"
    "Ctrl-C (reconnecting when the server goes away), then leaves (deletes the guest\n"
    "session).\n"
    "  --exit-when-ready  leave as soon as the media key is held\n";

typedef struct guest_state {
    kwc_ctx *ctx;
    kwc_net *net;
    kwc_api api;
    kw_store *store;
    kw_identity *id;
    kw_mka *mka;
    char token[80];
    char meeting[KWC_ID_MAX + 1];
    char session_id[KWC_ID_MAX + 1];
    char secret[KWC_SECRET_MAX + 1];
    const char *name;
    int exit_when_ready;
    int admitted, declined, have_key, host_present;
    int ended;   /* meeting:ended: the session went with the meeting */
    int senders; /* sender keys received */
    int status;
    int64_t next_prekey_check;
} guest_state;

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* ---- link and setup ------------------------------------------------------------------- */

/* Splits "<scheme>://<host>[:port]/join/meeting/<token>" into base URL and token. */
static int parse_link(const char *link, char *base, size_t bcap, char *token, size_t tcap)
{
    const char *scheme_end = strstr(link, "://");
    if (scheme_end == NULL)
        return -1;
    const char *path = strchr(scheme_end + 3, '/');
    const char *marker = path != NULL ? strstr(path, "/join/meeting/") : NULL;
    if (marker == NULL || marker != path)
        return -1;
    const char *t = marker + strlen("/join/meeting/");
    size_t tlen = strcspn(t, "/?#");
    if (tlen == 0 || tlen >= tcap || (size_t)(path - link) >= bcap)
        return -1;
    memcpy(base, link, (size_t)(path - link));
    base[path - link] = '\0';
    memcpy(token, t, tlen);
    token[tlen] = '\0';
    return kwc_id_ok(token) ? 0 : -1;
}

static void on_progress(void *arg, kw_setup_step step, int done, int total, int skipped)
{
    guest_state *g = arg;
    const char *label = kw_setup_step_label(step);
    if (g->ctx->json) {
        if (done == total)
            kwc_event_line(
                g->ctx, "setup_step",
                json_pack("{s:i, s:s, s:b}", "step", (int)step, "label", label, "skipped", skipped),
                "%s", label);
        return;
    }
    if (isatty(STDERR_FILENO)) {
        int width = 20, filled = total > 0 ? done * width / total : width;
        fprintf(stderr, "\r[%d/5] %-32s [", (int)step, label);
        for (int i = 0; i < width; i++)
            fputc(i < filled ? '#' : ' ', stderr);
        fprintf(stderr, "]%s", done == total ? (step == KW_SETUP_VALIDATING ? "\n" : "") : "");
        fflush(stderr);
    } else if (done == total) {
        printf("[%d/5] %s%s\n", (int)step, label, skipped ? " (kept)" : "");
        fflush(stdout);
    }
}

/* ---- server steps --------------------------------------------------------------------- */

static kw_err join_info(guest_state *g, json_t **out, kw_error *err)
{
    char target[200];
    snprintf(target, sizeof target, "/api/meetings/external/join/%s", g->token);
    kwc_api anon = {g->net, NULL, NULL};
    return kwc_api_call(&anon, "GET", target, NULL, out, NULL, err);
}

static kw_err register_guest(guest_state *g, kw_error *err)
{
    char *text = NULL;
    kw_err rc = kw_keys_export_json(g->id, &text, err);
    json_t *body = rc == KW_OK ? json_loads(text, 0, NULL) : NULL;
    kwc_free_secret(text);
    if (rc != KW_OK)
        return rc;
    if (body == NULL)
        return kw_error_set(err, KW_ERR_JSON, "key export");
    json_object_set_new(body, "invitation_token", json_string(g->token));
    json_object_set_new(body, "display_name", json_string(g->name));
    kwc_api anon = {g->net, NULL, NULL};
    json_t *out = NULL;
    rc = kwc_api_call(&anon, "POST", "/api/meetings/external/register", body, &out, NULL, err);
    json_decref(body);
    if (rc != KW_OK)
        return rc;
    const char *sid = str(out, "session_id"), *secret = str(out, "guest_secret");
    if (!kwc_id_ok(sid) || strlen(secret) == 0 || strlen(secret) > KWC_SECRET_MAX ||
        !kwc_id_ok(str(out, "meeting_id")))
        rc = kw_error_set(err, KW_ERR_JSON, "malformed registration answer");
    else {
        snprintf(g->session_id, sizeof g->session_id, "%s", sid);
        snprintf(g->secret, sizeof g->secret, "%s", secret);
        snprintf(g->meeting, sizeof g->meeting, "%s", str(out, "meeting_id"));
        g->api = (kwc_api){g->net, NULL, g->secret};
        char self[KWC_PEER_ID_MAX + 1];
        snprintf(self, sizeof self, "guest_%s", sid);
        rc = kw_identity_set_self(g->id, self, 1);
        if (rc == KW_OK)
            rc = kw_mka_new(self, kw_random_system(), &g->mka);
    }
    json_decref(out);
    return rc;
}

static kw_err connect_socket(guest_state *g, kw_error *err)
{
    json_t *auth = json_pack("{s:s, s:s}", "session_id", g->session_id, "guest_secret", g->secret);
    json_t *cerr = NULL;
    kw_err rc = auth != NULL
                    ? kwc_sio_connect(g->net, "/external", auth, SIO_TIMEOUT_MS, &cerr, err)
                    : KW_ERR_NOMEM;
    json_decref(auth);
    json_decref(cerr);
    return rc;
}

static void check_prekeys(guest_state *g)
{
    char target[200];
    snprintf(target, sizeof target, "/api/meetings/external/session/%s/prekeys", g->session_id);
    json_t *doc = NULL;
    kw_error err;
    kw_error_clear(&err);
    g->next_prekey_check = kwc_mono_ms() + PREKEY_CHECK_MS;
    if (kwc_api_call(&g->api, "GET", target, NULL, &doc, NULL, &err) != KW_OK)
        return;
    size_t count = (size_t)json_integer_value(json_object_get(doc, "count"));
    json_decref(doc);
    char *batch = NULL;
    if (kw_keys_replenish(g->id, count, &batch, &err) != KW_OK || batch == NULL)
        return;
    json_t *body = json_loads(batch, 0, NULL);
    kwc_free_secret(batch);
    json_t *out = NULL;
    if (body != NULL && kwc_api_call(&g->api, "POST", target, body, &out, NULL, &err) == KW_OK)
        kwc_event_line(g->ctx, "prekeys_uploaded",
                       json_pack("{s:I, s:I}", "uploaded",
                                 (json_int_t)json_array_size(json_object_get(body, "pre_keys")),
                                 "count", json_integer_value(json_object_get(out, "count"))),
                       "Uploaded %zu pre-keys (%lld on the server)",
                       json_array_size(json_object_get(body, "pre_keys")),
                       (long long)json_integer_value(json_object_get(out, "count")));
    json_decref(out);
    json_decref(body);
}

/* ---- key exchange --------------------------------------------------------------------- */

static kw_err send_payload(guest_state *g, const char *to, const char *payload, kw_error *err)
{
    kwc_peer p;
    if (kwc_peer_parse(to, &p) != 0 || p.is_guest)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "bad peer %s", to);
    char target[400];
    snprintf(target, sizeof target, "/api/meetings/external/%s/participant/%s/%s/keys",
             g->session_id, p.user_id, p.device_str);
    kw_err rc = kwc_peer_ensure_session(&g->api, g->id, &p, target, err);
    char *body = NULL;
    int type = 0;
    if (rc == KW_OK)
        rc = kwc_peer_encrypt(g->id, &p, payload, &body, &type, err);
    if (rc != KW_OK)
        return rc;
    char kind[40], request_id[80];
    kwc_payload_kind(payload, kind, sizeof kind, request_id, sizeof request_id);
    json_t *msg;
    const char *event;
    if (strcmp(kind, "media_key_request") == 0) {
        event = "guest:meeting_e2ee_key_request";
        msg = json_pack("{s:s, s:s, s:s, s:i, s:s}", "participant_user_id", p.user_id,
                        "participant_device_id", p.device_str, "ciphertext", body, "messageType",
                        type, "request_id", request_id);
    } else {
        event = "guest:signal_message";
        msg =
            json_pack("{s:s, s:s, s:s, s:i}", "recipient_user_id", p.user_id, "recipient_device_id",
                      p.device_str, "encrypted_message", body, "message_type", type);
    }
    free(body);
    json_t *ack = NULL;
    rc = msg != NULL ? kwc_sio_call(g->net, event, msg, SIO_TIMEOUT_MS, &ack, err) : KW_ERR_NOMEM;
    json_decref(msg);
    if (rc == KW_OK && !json_is_true(json_object_get(ack, "ok")))
        rc = kw_error_set(err, kw_err_from_name(str(ack, "error")), "%s: %s", event,
                          str(ack, "error"));
    json_decref(ack);
    return rc;
}

static void on_key(guest_state *g, const kw_media_key *k)
{
    char fp[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1] = "?";
    kwc_ignore(kw_media_key_fingerprint(k, fp));
    g->have_key = 1;
    kwc_event_line(g->ctx, "media_key",
                   json_pack("{s:I, s:s, s:s}", "epoch", (json_int_t)k->epoch, "fingerprint", fp,
                             "meeting_id", g->meeting),
                   "End-to-end encryption ready: media key epoch %" PRIu32 ", fingerprint %s",
                   k->epoch, fp);
}

static void drain_actions(guest_state *g)
{
    kw_mka_action a;
    while (kw_mka_next_action(g->mka, &a)) {
        kw_error err;
        kw_error_clear(&err);
        if (a.type == KW_MKA_ACTION_SEND) {
            if (send_payload(g, a.to, a.payload, &err) != KW_OK) {
                kwc_event_line(g->ctx, "send_failed",
                               json_pack("{s:s, s:s}", "to", a.to, "error", err.detail),
                               "Could not reach %s: %s", a.to, err.detail);
                kwc_ignore(kw_mka_peer_left(g->mka, kwc_now_ms(), a.to)); /* ask the next one */
            } else if (strstr(a.payload, "media_key_request") != NULL)
                kwc_event_line(g->ctx, "key_requested", json_pack("{s:s}", "from", a.to),
                               "Exchanging encryption keys with %s...", a.to);
        } else if (a.type == KW_MKA_ACTION_KEY)
            on_key(g, &a.key);
        else {
            g->status = kwc_fail(g->ctx, "key exchange failed: three members did not answer; "
                                         "try again");
            kwc_interrupted = 1;
        }
        kw_mka_action_wipe(&a);
    }
}

/* RFC 3339 "2026-11-22T10:00:03.250Z" -> ms since the epoch (0 when unparsable). */
static int64_t rfc3339_ms(const char *s)
{
    struct tm tm;
    int n = 0;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    const char *rest = s + n;
    if (*rest == '.') {
        int64_t scale = 100;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            ms += scale > 0 ? (*rest - '0') * scale : 0;
    }
    return ms;
}

static kw_err start_exchange(guest_state *g, kw_error *err)
{
    char target[300];
    snprintf(target, sizeof target, "/api/meetings/%s/participants?status=joined", g->meeting);
    json_t *doc = NULL;
    kw_err rc = kwc_api_call(&g->api, "GET", target, NULL, &doc, NULL, err);
    if (rc != KW_OK)
        return rc;
    json_t *list = json_object_get(doc, "participants");
    size_t n = json_array_size(list), k = 0, i;
    kw_mka_peer *peers = calloc(n + 1, sizeof *peers);
    char(*ids)[KWC_PEER_ID_MAX + 1] = calloc(n + 1, sizeof *ids);
    json_t *p;
    if (peers == NULL || ids == NULL)
        rc = kw_error_set(err, KW_ERR_NOMEM, "participants");
    else
        json_array_foreach(list, i, p)
        {
            kwc_peer peer;
            if (kwc_peer_member(str(p, "user_id"), str(p, "device_id"), &peer) != 0)
                continue; /* guests and malformed rows */
            kwc_peer_id(&peer, ids[k], sizeof ids[k]);
            peers[k].id = ids[k];
            peers[k].joined_ms = rfc3339_ms(str(p, "joined_at"));
            k++;
        }
    if (rc == KW_OK) {
        kwc_event_line(g->ctx, "key_exchange", json_pack("{s:I}", "members", (json_int_t)k),
                       "Exchanging encryption keys... (%zu member device(s) present)", k);
        if (k == 0)
            rc = kw_error_set(err, KW_ERR_NO_HOST_PRESENT, "no member is present any more");
        else
            rc = kw_mka_start(g->mka, kwc_now_ms(), peers, k);
    }
    free(peers);
    free(ids);
    json_decref(doc);
    drain_actions(g);
    return rc;
}

/* ---- events --------------------------------------------------------------------------- */

static void feed(guest_state *g, json_t *o, const char *body_key, const char *type_key)
{
    if (!g->admitted || strcmp(str(o, "meeting_id"), g->meeting) != 0)
        return;
    kwc_peer p;
    json_t *dv = json_object_get(o, "participant_device_id");
    char dev[16];
    if (json_is_integer(dv))
        snprintf(dev, sizeof dev, "%" JSON_INTEGER_FORMAT, json_integer_value(dv));
    else
        snprintf(dev, sizeof dev, "%s", json_is_string(dv) ? json_string_value(dv) : "");
    if (kwc_peer_member(str(o, "participant_user_id"), dev, &p) != 0)
        return;
    json_int_t type = json_integer_value(json_object_get(o, type_key));
    char *text = NULL;
    size_t len = 0;
    kw_error err;
    kw_error_clear(&err);
    char peer[KWC_PEER_ID_MAX + 1];
    kwc_peer_id(&p, peer, sizeof peer);
    if (type < 1 || type > 3 ||
        kwc_peer_decrypt(g->id, &p, (int)type, str(o, body_key), &text, &len, &err) != KW_OK) {
        kwc_event_line(g->ctx, "decrypt_failed", json_pack("{s:s}", "from", peer),
                       "Could not decrypt a message from %s", peer);
        return;
    }
    /* The server relays these only from members of our meeting (docs/api.md). */
    kwc_ignore(kw_mka_receive(g->mka, kwc_now_ms(), peer, text, len, &err));
    kwc_free_secret(text);
    drain_actions(g);
}

static void on_sender_key(guest_state *g, json_t *o)
{
    if (strcmp(str(o, "meetingId"), g->meeting) != 0)
        return;
    kwc_peer p;
    if (kwc_peer_member(str(o, "senderId"), str(o, "senderDeviceId"), &p) != 0)
        return;
    char *dist = NULL;
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kwc_peer_decrypt(g->id, &p, 0, str(o, "encryptedSenderKey"), &dist, NULL, &err);
    if (rc == KW_OK)
        rc = kw_group_process_distribution(g->id, g->meeting, p.user_id, p.device, dist, &err);
    kwc_free_secret(dist);
    if (rc != KW_OK) {
        kwc_event_line(g->ctx, "sender_key_failed",
                       json_pack("{s:s, s:s}", "from", p.user_id, "error", kw_err_name(rc)),
                       "Could not use the sender key of %s:%s: %s", p.user_id, p.device_str,
                       kw_err_name(rc));
        return;
    }
    g->senders++;
    kwc_event_line(g->ctx, "sender_key",
                   json_pack("{s:s, s:s, s:i}", "sender", p.user_id, "device", p.device_str,
                             "count", g->senders),
                   "Sender key from %s:%s (%d so far)", p.user_id, p.device_str, g->senders);
}

/* A group message of the meeting (sendGroupItem relayed to admitted guests), decrypted
 * with its sender's sender key. */
static void on_group_item(guest_state *g, json_t *o)
{
    if (strcmp(str(o, "channel"), g->meeting) != 0)
        return;
    json_t *dv = json_object_get(o, "senderDevice");
    char dev[16];
    snprintf(dev, sizeof dev, "%s", json_is_string(dv) ? json_string_value(dv) : "");
    kwc_peer p;
    if (kwc_peer_member(str(o, "sender"), dev, &p) != 0)
        return;
    uint8_t *pt = NULL;
    size_t len = 0;
    kw_error err;
    kw_error_clear(&err);
    if (kw_group_decrypt(g->id, g->meeting, p.user_id, p.device, str(o, "payload"), &pt, &len,
                         &err) != KW_OK) {
        kwc_event_line(g->ctx, "group_decrypt_failed",
                       json_pack("{s:s, s:s}", "sender", p.user_id, "error", kw_err_name(err.code)),
                       "Could not decrypt a group message from %s: %s", p.user_id,
                       kw_err_name(err.code));
        return;
    }
    kwc_event_line(g->ctx, "group_message",
                   json_pack("{s:s, s:s, s:s%}", "sender", p.user_id, "device", p.device_str,
                             "text", (const char *)pt, len),
                   "Message from %s:%s: %.*s", p.user_id, p.device_str, (int)len, (const char *)pt);
    memset(pt, 0, len);
    free(pt);
}

static void request_admission(guest_state *g)
{
    char target[300];
    snprintf(target, sizeof target, "/api/meetings/%s/external/%s/request-admission", g->meeting,
             g->session_id);
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kwc_api_call(&g->api, "POST", target, NULL, NULL, NULL, &err);
    if (rc == KW_OK) {
        g->host_present = 1;
        kwc_event_line(g->ctx, "waiting_room", NULL,
                       "In the waiting room: a member will admit you...");
    } else if (rc != KW_ERR_NO_HOST_PRESENT && rc != KW_ERR_RATE_LIMITED)
        kwc_event_line(g->ctx, "admission_request_failed", json_pack("{s:s}", "error", err.detail),
                       "Admission request failed: %s", err.detail);
}

static void on_event(guest_state *g, kwc_event *ev)
{
    json_t *o = json_array_get(ev->args, 0);
    const char *n = ev->name;
    kw_error err;
    kw_error_clear(&err);
    if (strcmp(n, "meeting:host_present") == 0 && !g->host_present && !g->admitted)
        request_admission(g);
    else if (strcmp(n, "meeting:admission_granted") == 0 && !g->admitted) {
        g->admitted = 1;
        kwc_event_line(g->ctx, "admitted", json_pack("{s:s}", "by", str(o, "admitted_by")),
                       "Admitted by %s", str(o, "admitted_by"));
        if (start_exchange(g, &err) != KW_OK) {
            g->status = kwc_fail_err(g->ctx, "key exchange", &err);
            kwc_interrupted = 1;
        }
    } else if (strcmp(n, "meeting:admission_denied") == 0) {
        g->declined = 1;
        json_t *reason = json_object_get(o, "reason");
        g->status = json_is_string(reason) ? kwc_fail(g->ctx, "the host declined your request: %s",
                                                      json_string_value(reason))
                                           : kwc_fail(g->ctx, "the host declined your request");
        kwc_event_line(g->ctx, "declined", NULL, "Declined.");
        kwc_interrupted = 1;
    } else if (strcmp(n, "participant:meeting_e2ee_key_response") == 0)
        feed(g, o, "ciphertext", "messageType");
    else if (strcmp(n, "participant:signal_message") == 0)
        feed(g, o, "encrypted_message", "message_type");
    else if (strcmp(n, "meeting:receiveSenderKey") == 0)
        on_sender_key(g, o);
    else if (strcmp(n, "groupItem") == 0 && g->admitted)
        on_group_item(g, o);
    else if (strcmp(n, "prekeys:low") == 0)
        g->next_prekey_check = 0;
    else if (strcmp(n, "meeting:ended") == 0 && strcmp(str(o, "meeting_id"), g->meeting) == 0) {
        kwc_event_line(g->ctx, "meeting_ended", NULL, "The meeting has ended.");
        g->ended = 1;
        kwc_interrupted = 1;
    }
}

static void media_token(guest_state *g)
{
    json_t *body = json_pack("{s:s, s:s}", "sessionId", g->session_id, "meetingId", g->meeting);
    json_t *out = NULL;
    kw_error err;
    kw_error_clear(&err);
    kw_err rc =
        kwc_api_call(&g->api, "POST", "/api/livekit/external-token", body, &out, NULL, &err);
    json_decref(body);
    if (rc == KW_OK)
        kwc_event_line(g->ctx, "livekit_token",
                       json_pack("{s:s, s:s, s:s, s:s}", "token", str(out, "token"), "url",
                                 str(out, "url"), "identity", str(out, "identity"), "room",
                                 str(out, "roomName")),
                       "LiveKit: room %s as %s at %s", str(out, "roomName"), str(out, "identity"),
                       str(out, "url"));
    else if (rc == KW_ERR_NOT_CONFIGURED)
        kwc_event_line(g->ctx, "media_not_configured", NULL,
                       "The media server is not configured on this keywave server.");
    else
        kwc_event_line(g->ctx, "token_failed", json_pack("{s:s}", "error", err.detail),
                       "No media token: %s", err.detail);
    json_decref(out);
}

static void leave(guest_state *g)
{
    kwc_sio_close(g->net);
    if (g->session_id[0] == '\0' || g->ended)
        return;
    char target[200];
    snprintf(target, sizeof target, "/api/meetings/external/session/%s", g->session_id);
    kw_error err;
    if (kwc_api_call(&g->api, "DELETE", target, NULL, NULL, NULL, &err) == KW_OK)
        kwc_event_line(g->ctx, "left", NULL, "Left the meeting (guest session deleted).");
}

/* The connection dropped: the guest session lives on in the server, so the socket is
 * opened again (growing pause) until it works, Ctrl-C, or the server says the session is
 * gone. Returns 0 when connected again. */
static int reconnect(guest_state *g, const kw_error *why)
{
    kwc_event_line(g->ctx, "reconnecting", json_pack("{s:s}", "error", why->detail),
                   "Connection to the server lost (%s); reconnecting...", why->detail);
    int pause_ms = 500;
    while (!kwc_interrupted) {
        struct timespec slice = {0, 50 * 1000 * 1000}; /* Ctrl-C is seen within 50 ms */
        for (int64_t until = kwc_mono_ms() + pause_ms; !kwc_interrupted && kwc_mono_ms() < until;)
            nanosleep(&slice, NULL);
        if (kwc_interrupted)
            break;
        kwc_sio_close(g->net);
        kw_error err;
        kw_error_clear(&err);
        kw_err rc = connect_socket(g, &err);
        if (rc == KW_OK) {
            kwc_event_line(g->ctx, "reconnected", NULL, "Reconnected.");
            return 0;
        }
        if (rc == KW_ERR_UNAUTHORIZED) { /* the session expired or was deleted */
            g->status = kwc_fail_err(g->ctx, "the guest session is gone", &err);
            g->ended = 1;
            return -1;
        }
        pause_ms = pause_ms * 2 > 10000 ? 10000 : pause_ms * 2;
    }
    return -1;
}

static int run(guest_state *g)
{
    kw_error err;
    kw_error_clear(&err);
    json_t *info = NULL;
    if (kw_keys_setup(g->id, kwc_now_ms(), on_progress, g, NULL, &err) != KW_OK)
        return kwc_fail_err(g->ctx, "key setup failed", &err);
    if (join_info(g, &info, &err) != KW_OK)
        return kwc_fail_err(g->ctx, "invitation", &err);
    kwc_event_line(
        g->ctx, "meeting",
        json_pack("{s:s, s:s}", "meeting_id", str(info, "meeting_id"), "title", str(info, "title")),
        "Meeting \"%s\"", str(info, "title"));
    int active = json_is_true(json_object_get(info, "has_active_participants"));
    json_decref(info);
    if (register_guest(g, &err) != KW_OK)
        return kwc_fail_err(g->ctx, "registration failed", &err);
    if (connect_socket(g, &err) != KW_OK) {
        leave(g);
        return kwc_fail_err(g->ctx, "cannot connect", &err);
    }
    if (active)
        request_admission(g);
    if (!g->host_present)
        kwc_event_line(g->ctx, "waiting_for_host", NULL, "Waiting for host...");
    int64_t next_poll = kwc_mono_ms() + HOST_POLL_MS;
    g->next_prekey_check = kwc_mono_ms() + PREKEY_CHECK_MS;
    while (!kwc_interrupted && !(g->have_key && g->exit_when_ready)) {
        kwc_event ev = {NULL, NULL};
        int64_t now = kwc_now_ms(), deadline = g->mka != NULL ? kw_mka_deadline(g->mka) : INT64_MAX;
        int wait = deadline - now < 250 ? (int)(deadline > now ? deadline - now : 0) : 250;
        kw_err rc = kwc_sio_next(g->net, wait, &ev, &err);
        if (rc == KW_OK) {
            int had_key = g->have_key;
            on_event(g, &ev);
            kwc_event_clear(&ev);
            if (!had_key && g->have_key)
                media_token(g);
        } else if (rc != KW_ERR_TIMEOUT && reconnect(g, &err) != 0) {
            break; /* Ctrl-C, or the session is gone */
        }
        if (g->admitted) {
            int had_key = g->have_key;
            kwc_ignore(kw_mka_tick(g->mka, kwc_now_ms()));
            drain_actions(g);
            if (!had_key && g->have_key)
                media_token(g);
        }
        if (!g->host_present && !g->admitted && kwc_mono_ms() >= next_poll) {
            next_poll = kwc_mono_ms() + HOST_POLL_MS;
            if (join_info(g, &info, &err) == KW_OK &&
                json_is_true(json_object_get(info, "has_active_participants")))
                request_admission(g);
            json_decref(info);
            info = NULL;
        }
        if (kwc_mono_ms() >= g->next_prekey_check)
            check_prekeys(g);
    }
    leave(g);
    return g->status;
}

int kwc_cmd_guest(kwc_ctx *ctx, int argc, char **argv)
{
    if (kwc_wants_help(argc, argv)) {
        fputs(help, stdout);
        return KWC_EXIT_OK;
    }
    guest_state g;
    memset(&g, 0, sizeof g);
    g.ctx = ctx;
    const char *link = NULL;
    if (argc < 2 || strcmp(argv[1], "join") != 0)
        return kwc_usage_error(ctx, "guest", "expected 'join <link> --name <display name>'");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            g.name = argv[++i];
        else if (strcmp(argv[i], "--exit-when-ready") == 0)
            g.exit_when_ready = 1;
        else if (argv[i][0] == '-' || link != NULL)
            return kwc_usage_error(ctx, "guest", "unexpected argument '%s'", argv[i]);
        else
            link = argv[i];
    }
    if (link == NULL || g.name == NULL || g.name[0] == '\0')
        return kwc_usage_error(ctx, "guest", "needs <link> and --name <display name>");
    char base[KWC_URL_MAX + 1];
    if (parse_link(link, base, sizeof base, g.token, sizeof g.token) != 0)
        return kwc_usage_error(ctx, "guest",
                               "not an invitation link (https://host/join/meeting/<token>)");
    kw_error err;
    kw_error_clear(&err);
    if (kwc_net_new(base, &g.net, &err) != KW_OK)
        return kwc_fail_err(ctx, "link", &err);
    kw_identity_config cfg = {KW_ROLE_GUEST, NULL, NULL, NULL, 0};
    int rc;
    if (kw_store_mem_new(&g.store) != KW_OK)
        rc = kwc_fail(ctx, "out of memory");
    else if ((cfg.store = g.store, kw_identity_open(&cfg, &g.id, &err)) != KW_OK)
        rc = kwc_fail_err(ctx, "keys", &err);
    else {
        kwc_catch_signals();
        rc = run(&g);
    }
    kw_mka_free(g.mka);
    kw_identity_free(g.id);
    kw_store_free(g.store);
    kwc_net_free(g.net);
    memset(g.secret, 0, sizeof g.secret);
    return rc;
}
