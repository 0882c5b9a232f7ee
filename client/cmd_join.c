/*
 * cmd_join.c — `keywave meeting join <id>`: a member device takes part in a meeting.
 *
 * It registers as a video participant (so guests see a host present), agrees on the
 * meeting media key with the other participants through the media-key state machine
 * (media_key.h: first creates, others request over Signal, oldest wins), answers key
 * requests from members and admitted guests, admits guests per --admit, hands each
 * admitted guest this device's sender key and the media key over Signal, rotates the key
 * when a member leaves and it is the longest-present one, keeps its pre-keys topped up,
 * and prints what happens. Ctrl-C leaves cleanly.
 *
 * Transport of the agreement's payloads (all Signal-encrypted, docs/api.md):
 *   member -> member  sendItem {type:"media_key"} / receiveItem
 *   member -> guest   participant:meeting_e2ee_key_response (an answer to the guest's
 *                     request) or participant:signal_message_to_guest (anything else)
 *   guest -> member   guest:meeting_e2ee_key_request / guest:signal_message
 * Trust (media_key.h TRUST): payloads are fed to the state machine only from member
 * devices present in the meeting and from guests admitted to it.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "keywave/base64.h"
#include "keywave/group.h"
#include "keywave/media_key.h"
#include "keywave/random.h"
#include "member.h"
#include "member_keys.h"
#include "peer.h"

#define SIO_TIMEOUT_MS 10000
#define MAX_PRESENT    1024
#define MAX_GUESTS     1024
#define STALE_ITEM_MS  5000  /* a stored media-key item older than our join is stale */
#define KEY_CHECK_MS   60000 /* pre-key count check besides prekeys:low */

static const char help[] =
    "Usage: keywave meeting join <meeting-id> [--admit all|none|ask] [--key-file PATH]\n"
    "\n"
    "Takes part in the meeting until Ctrl-C (reconnecting when the server goes away):\n"
    "registers this device as a participant,\n"
    "obtains or creates the meeting's media key, answers key requests, admits guests as\n"
    "--admit says, gives admitted guests this device's sender key and the media key, and\n"
    "prints events as they happen.\n"
    "  --admit all      admit every guest that asks\n"
    "  --admit none     decline every guest that asks\n"
    "  --admit ask      ask on the terminal (the default); with stdin closed, leave the\n"
    "                   guests to the other members\n"
    "  --key-file PATH  write the current media key (JSON: key base64, epoch, key_id) to\n"
    "                   PATH (0600) whenever it changes, for a media pipeline\n"
    "  --message TEXT   send TEXT as a group message (sender-key encrypted) to the meeting\n"
    "                   each time a guest has been given this device's sender key\n";

typedef enum admit_mode { ADMIT_ASK, ADMIT_ALL, ADMIT_NONE } admit_mode;

typedef struct guest_entry {
    char session_id[KWC_ID_MAX + 1];
    char name[80];
    int admitted;
    int declined;
    int keyed; /* sender key and media key handed over */
} guest_entry;

/* A member device present in the meeting, with the server's joinedAt (its rank). */
typedef struct present_peer {
    char id[KWC_PEER_ID_MAX + 1];
    int64_t joined_ms; /* INT64_MAX when the server did not say */
} present_peer;

typedef struct join_state {
    kwc_ctx *ctx;
    kwc_member m;
    const char *meeting;
    admit_mode admit;
    const char *key_file;
    const char *message; /* --message */
    kw_mka *mka;
    char self_peer[KWC_PEER_ID_MAX + 1];
    int64_t self_joined_ms; /* our joinedAt (register ack); INT64_MAX when unknown */
    int confirmed;          /* video:confirm-e2ee-key sent */
    int64_t start_ms;
    int64_t next_key_check;
    present_peer *present; /* member peers present now */
    size_t n_present;
    guest_entry *guests;
    size_t n_guests;
    char asking[KWC_ID_MAX + 1]; /* --admit ask: the guest the open question is about */
    int no_terminal;             /* --admit ask with stdin at end of file: never ask */
    int failed;                  /* exit status once the loop ends */
} join_state;

/* ---- small sets ---------------------------------------------------------------------- */

static int present_index(join_state *j, const char *peer)
{
    for (size_t i = 0; i < j->n_present; i++)
        if (strcmp(j->present[i].id, peer) == 0)
            return (int)i;
    return -1;
}

static void present_add(join_state *j, const char *peer, int64_t joined_ms)
{
    if (present_index(j, peer) >= 0 || j->n_present >= MAX_PRESENT)
        return;
    present_peer *p = &j->present[j->n_present++];
    snprintf(p->id, sizeof p->id, "%s", peer);
    p->joined_ms = joined_ms;
}

static void present_remove(join_state *j, const char *peer)
{
    int i = present_index(j, peer);
    if (i >= 0)
        j->present[i] = j->present[--j->n_present];
}

/*
 * Whether no present member device outranks us (smaller joinedAt, then smaller peer id:
 * media_key.h's order). kw_mka only knows the peers we passed to kw_mka_start as older,
 * and those are the key holders: a member that was present before us without a key yet
 * (members starting at once) would not count, and two members would rotate.
 */
static int longest_present(const join_state *j)
{
    if (j->self_joined_ms == INT64_MAX)
        return 1; /* rank unknown: leave the decision to kw_mka_rotate */
    for (size_t i = 0; i < j->n_present; i++) {
        const present_peer *p = &j->present[i];
        if (p->joined_ms < j->self_joined_ms ||
            (p->joined_ms == j->self_joined_ms && strcmp(p->id, j->self_peer) < 0))
            return 0;
    }
    return 1;
}

static guest_entry *guest_find(join_state *j, const char *sid, int create)
{
    for (size_t i = 0; i < j->n_guests; i++)
        if (strcmp(j->guests[i].session_id, sid) == 0)
            return &j->guests[i];
    if (!create || j->n_guests >= MAX_GUESTS || !kwc_id_ok(sid))
        return NULL;
    guest_entry *g = &j->guests[j->n_guests++];
    memset(g, 0, sizeof *g);
    snprintf(g->session_id, sizeof g->session_id, "%s", sid);
    return g;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* A device id as the events carry it: a decimal string, or a number. */
static void device_str(json_t *o, const char *k, char *out, size_t cap)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v))
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* ---- key output ---------------------------------------------------------------------- */

static void write_key_file(join_state *j, const kw_media_key *k)
{
    char b64[64], tmp[PATH_MAX + 8];
    if (j->key_file == NULL || kw_base64_encode(k->key, sizeof k->key, b64, sizeof b64) != KW_OK)
        return;
    char text[256];
    int len = snprintf(text, sizeof text,
                       "{\"key\":\"%s\",\"epoch\":%" PRIu32 ",\"key_id\":\"%016" PRIx64
                       "\",\"created_ms\":%" PRId64 "}\n",
                       b64, k->epoch, k->key_id, k->created_ms);
    snprintf(tmp, sizeof tmp, "%s.tmp", j->key_file);
    FILE *f = fopen(tmp, "w");
    if (f != NULL) {
        chmod(tmp, 0600);
        fwrite(text, 1, (size_t)len, f);
        fclose(f);
        rename(tmp, j->key_file);
    }
    memset(b64, 0, sizeof b64);
    memset(text, 0, sizeof text);
}

static void on_key(join_state *j, const kw_media_key *k)
{
    char fp[KW_MEDIA_KEY_FINGERPRINT_CHARS + 1] = "";
    if (kw_media_key_fingerprint(k, fp) != KW_OK)
        snprintf(fp, sizeof fp, "?");
    write_key_file(j, k);
    kwc_event_line(j->ctx, "media_key",
                   json_pack("{s:I, s:s, s:s}", "epoch", (json_int_t)k->epoch, "fingerprint", fp,
                             "meeting_id", j->meeting),
                   "Media key epoch %" PRIu32 ", fingerprint %s", k->epoch, fp);
    if (!j->confirmed) {
        json_t *p = json_pack("{s:s}", "channelId", j->meeting);
        kw_error err;
        if (kwc_sio_emit(j->m.net, "video:confirm-e2ee-key", p, &err) == KW_OK)
            j->confirmed = 1;
        json_decref(p);
    }
}

/* ---- sending agreement payloads ------------------------------------------------------ */

static void bundle_target(join_state *j, const kwc_peer *p, char *out, size_t cap)
{
    if (p->is_guest)
        snprintf(out, cap, "/api/meetings/%s/external/%s/keys", j->meeting, p->session_id);
    else
        snprintf(out, cap, "/api/keys/%s/%s", p->user_id, p->device_str);
}

/* Emits event with payload and reports an error ack; steals payload. */
static kw_err emit_acked(join_state *j, const char *event, json_t *payload, kw_error *err)
{
    json_t *ack = NULL;
    kw_err rc = payload != NULL ? kwc_sio_call(j->m.net, event, payload, SIO_TIMEOUT_MS, &ack, err)
                                : kw_error_set(err, KW_ERR_NOMEM, "%s", event);
    json_decref(payload);
    if (rc == KW_OK && !json_is_true(json_object_get(ack, "ok"))) {
        const char *token = str(ack, "error");
        rc = kw_error_set(err, kw_err_from_name(token), "%s: %s", event, token);
    }
    json_decref(ack);
    return rc;
}

static kw_err send_payload(join_state *j, const char *to, const char *payload, kw_error *err)
{
    kwc_peer p;
    if (kwc_peer_parse(to, &p) != 0)
        return kw_error_set(err, KW_ERR_INVALID_ARGUMENT, "bad peer id %s", to);
    char target[400];
    bundle_target(j, &p, target, sizeof target);
    kw_err rc = kwc_peer_ensure_session(&j->m.api, j->m.id, &p, target, err);
    char *body = NULL;
    int type = 0;
    if (rc == KW_OK)
        rc = kwc_peer_encrypt(j->m.id, &p, payload, &body, &type, err);
    if (rc != KW_OK)
        return rc;
    char kind[40], request_id[80];
    kwc_payload_kind(payload, kind, sizeof kind, request_id, sizeof request_id);
    json_t *msg;
    const char *event;
    if (!p.is_guest) {
        char item[64];
        uint8_t rnd[8];
        if (kw_random_system()->fill(kw_random_system()->ctx, rnd, sizeof rnd) != KW_OK)
            memset(rnd, 0, sizeof rnd);
        snprintf(item, sizeof item, "mk_%" PRId64 "_%02x%02x%02x%02x%02x%02x%02x%02x", kwc_now_ms(),
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        event = "sendItem";
        msg = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "recipient", p.user_id,
                        "recipientDeviceId", p.device_str, "type", "media_key", "payload", body,
                        "cipherType", type, "itemId", item);
    } else if (strcmp(kind, "media_key") == 0 && request_id[0] != '\0') {
        event = "participant:meeting_e2ee_key_response";
        msg = json_pack("{s:s, s:s, s:i, s:s}", "guest_session_id", p.session_id, "ciphertext",
                        body, "messageType", type, "request_id", request_id);
    } else {
        event = "participant:signal_message_to_guest";
        msg = json_pack("{s:s, s:s, s:i}", "guest_session_id", p.session_id, "encrypted_message",
                        body, "message_type", type);
    }
    free(body);
    return emit_acked(j, event, msg, err);
}

/* Carries out what the state machine asked for. */
static void drain_actions(join_state *j)
{
    kw_mka_action a;
    while (kw_mka_next_action(j->mka, &a)) {
        kw_error err;
        kw_error_clear(&err);
        if (a.type == KW_MKA_ACTION_SEND) {
            if (send_payload(j, a.to, a.payload, &err) != KW_OK) {
                kwc_event_line(j->ctx, "send_failed",
                               json_pack("{s:s, s:s}", "to", a.to, "error", err.detail),
                               "Could not send to %s: %s", a.to, err.detail);
                /* An unreachable peer counts as gone, so a request moves on. */
                if (err.code == KW_ERR_NOT_FOUND || err.code == KW_ERR_INTERNAL ||
                    strstr(err.detail, "recipient_offline") != NULL)
                    kwc_ignore(kw_mka_peer_left(j->mka, kwc_now_ms(), a.to));
            }
        } else if (a.type == KW_MKA_ACTION_KEY) {
            on_key(j, &a.key);
        } else {
            kwc_fail(j->ctx, "media key exchange failed: no present member answered");
            j->failed = KWC_EXIT_FAIL;
            kwc_interrupted = 1;
        }
        kw_mka_action_wipe(&a);
    }
}

/* ---- guests ---------------------------------------------------------------------------- */

/* Sends --message to the meeting, encrypted with our sender key (sendGroupItem). */
static void send_group_message(join_state *j)
{
    char *ct = NULL, item[48];
    kw_error err;
    kw_error_clear(&err);
    kw_err rc = kw_group_encrypt(j->m.id, j->meeting, (const uint8_t *)j->message,
                                 strlen(j->message), &ct, &err);
    if (rc == KW_OK) {
        snprintf(item, sizeof item, "msg_%" PRId64, kwc_now_ms());
        json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "channelId", j->meeting, "itemId",
                                item, "type", "message", "payload", ct, "cipherType", 7,
                                "timestamp", (json_int_t)kwc_now_ms());
        rc = emit_acked(j, "sendGroupItem", msg, &err);
    }
    free(ct);
    if (rc != KW_OK)
        kwc_event_line(j->ctx, "send_failed", json_pack("{s:s}", "error", err.detail),
                       "Could not send the group message: %s", err.detail);
    else
        kwc_event_line(j->ctx, "group_message_sent", NULL, "Group message sent");
}

/* Hands an admitted guest our sender key and, through the agreement, the media key. */
static void key_guest(join_state *j, guest_entry *g)
{
    if (g->keyed || !g->admitted)
        return;
    kwc_peer p;
    if (kwc_peer_guest(g->session_id, &p) != 0)
        return;
    kw_error err;
    kw_error_clear(&err);
    char target[400], *dist = NULL, *body = NULL;
    int type = 0;
    bundle_target(j, &p, target, sizeof target);
    kw_err rc = kwc_peer_ensure_session(&j->m.api, j->m.id, &p, target, &err);
    if (rc == KW_OK)
        rc = kw_group_create_distribution(j->m.id, j->meeting, &dist, &err);
    if (rc == KW_OK)
        rc = kwc_peer_encrypt(j->m.id, &p, dist, &body, &type, &err);
    if (rc == KW_OK) {
        json_t *msg = json_pack("{s:s, s:s, s:I, s:s}", "meetingId", j->meeting, "guestSessionId",
                                g->session_id, "senderDeviceId", (json_int_t)j->m.dev.device_id,
                                "encryptedSenderKey", body);
        rc = emit_acked(j, "meeting:distributeSenderKeyToGuest", msg, &err);
    }
    kwc_free_secret(dist);
    free(body);
    if (rc != KW_OK) {
        kwc_event_line(j->ctx, "send_failed",
                       json_pack("{s:s, s:s}", "guest", g->session_id, "error", err.detail),
                       "Could not give guest %s the sender key: %s", g->session_id, err.detail);
        return;
    }
    g->keyed = 1;
    kwc_event_line(j->ctx, "sender_key_sent", json_pack("{s:s}", "session_id", g->session_id),
                   "Sender key sent to guest %s", g->session_id);
    if (j->message != NULL)
        send_group_message(j);
    char peer[KWC_PEER_ID_MAX + 1];
    kwc_peer_id(&p, peer, sizeof peer);
    if (kw_mka_get_state(j->mka) != KW_MKA_IDLE)
        kwc_ignore(kw_mka_peer_joined(j->mka, kwc_now_ms(), peer, kwc_now_ms()));
    drain_actions(j);
}

static void decide(join_state *j, const char *sid, int admit)
{
    char target[400];
    snprintf(target, sizeof target, "/api/meetings/%s/external/%s/%s", j->meeting, sid,
             admit ? "admit" : "decline");
    kw_error err;
    kw_error_clear(&err);
    guest_entry *g = guest_find(j, sid, 1);
    kw_err rc = kwc_api_call(&j->m.api, "POST", target, NULL, NULL, NULL, &err);
    if (rc == KW_OK) {
        if (g != NULL && admit)
            g->admitted = 1;
        else if (g != NULL)
            g->declined = 1; /* the server's notice of our own decision is not printed again */
        kwc_event_line(j->ctx, admit ? "guest_admitted" : "guest_declined",
                       json_pack("{s:s, s:s}", "session_id", sid, "by", "me"), "%s guest %s",
                       admit ? "Admitted" : "Declined", sid);
    } else if (rc == KW_ERR_ALREADY_ADMITTED || rc == KW_ERR_ALREADY_DECLINED) {
        /* Another member decided first: its notice (meeting:guest_admitted or
         * meeting:guest_declined) says who, and keys the guest. */
    } else
        kwc_event_line(j->ctx, "decision_failed",
                       json_pack("{s:s, s:s}", "session_id", sid, "error", err.detail),
                       "Could not %s guest %s: %s", admit ? "admit" : "decline", sid, err.detail);
    if (g != NULL && g->admitted)
        key_guest(j, g);
}

static void ask_next(join_state *j)
{
    if (j->asking[0] != '\0' || j->no_terminal)
        return;
    for (size_t i = 0; i < j->n_guests; i++) {
        guest_entry *g = &j->guests[i];
        if (!g->admitted && !g->declined && g->name[0] != '\0') {
            snprintf(j->asking, sizeof j->asking, "%s", g->session_id);
            printf("Admit guest \"%s\" (%s)? [y/N] ", g->name, g->session_id);
            fflush(stdout);
            return;
        }
    }
}

/* --admit ask: reads the answer when a line is ready on stdin. */
static void poll_answer(join_state *j)
{
    if (j->asking[0] == '\0')
        return;
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    if (poll(&pfd, 1, 0) <= 0)
        return;
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL) {
        /* No terminal to ask (stdin closed): leave the decision to the other members. */
        j->no_terminal = 1;
        j->asking[0] = '\0';
        return;
    }
    char sid[KWC_ID_MAX + 1];
    snprintf(sid, sizeof sid, "%s", j->asking);
    j->asking[0] = '\0';
    guest_entry *g = guest_find(j, sid, 0);
    if (g != NULL)
        g->name[0] = '\0'; /* asked once */
    decide(j, sid, line[0] == 'y' || line[0] == 'Y');
    ask_next(j);
}

static void on_admission_request(join_state *j, json_t *o)
{
    if (strcmp(str(o, "meeting_id"), j->meeting) != 0)
        return;
    const char *sid = str(o, "session_id");
    guest_entry *g = guest_find(j, sid, 1);
    if (g == NULL || g->admitted)
        return;
    snprintf(g->name, sizeof g->name, "%s", str(o, "display_name"));
    kwc_event_line(j->ctx, "guest_waiting",
                   json_pack("{s:s, s:s}", "session_id", sid, "display_name", g->name),
                   "Guest \"%s\" (%s) asks to join", g->name, sid);
    if (j->admit == ADMIT_ALL)
        decide(j, sid, 1);
    else if (j->admit == ADMIT_NONE)
        decide(j, sid, 0);
    else
        ask_next(j);
}

/* Loads the meeting's admitted guests (a member joining mid-meeting keys them too). */
static void load_admitted_guests(join_state *j)
{
    char target[300];
    snprintf(target, sizeof target, "/api/meetings/%s/participants", j->meeting);
    json_t *doc = NULL;
    kw_error err;
    if (kwc_api_call(&j->m.api, "GET", target, NULL, &doc, NULL, &err) != KW_OK)
        return;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "participants"), i, p)
    {
        const char *sid = json_string_value(json_object_get(p, "session_id"));
        guest_entry *g = sid != NULL ? guest_find(j, sid, 1) : NULL;
        if (g != NULL)
            g->admitted = 1;
    }
    json_decref(doc);
}

/* ---- incoming payloads ----------------------------------------------------------------- */

static void feed(join_state *j, const kwc_peer *from, int type, const char *body)
{
    char *text = NULL;
    size_t len = 0;
    kw_error err;
    kw_error_clear(&err);
    char peer[KWC_PEER_ID_MAX + 1];
    kwc_peer_id(from, peer, sizeof peer);
    if (kwc_peer_decrypt(j->m.id, from, type, body, &text, &len, &err) != KW_OK) {
        kwc_event_line(j->ctx, "decrypt_failed",
                       json_pack("{s:s, s:s}", "from", peer, "error", err.detail),
                       "Could not decrypt a message from %s: %s", peer, err.detail);
        return;
    }
    if (kw_mka_receive(j->mka, kwc_now_ms(), peer, text, len, &err) != KW_OK)
        kwc_event_line(j->ctx, "payload_refused",
                       json_pack("{s:s, s:s}", "from", peer, "error", kw_err_name(err.code)),
                       "Ignored a payload from %s: %s", peer, kw_err_name(err.code));
    kwc_free_secret(text);
    drain_actions(j);
}

static int message_type(json_t *o, const char *k)
{
    json_int_t t = json_integer_value(json_object_get(o, k));
    return t == 1 || t == 2 || t == 3 ? (int)t : -1;
}

static void on_item(join_state *j, json_t *o)
{
    if (strcmp(str(o, "type"), "media_key") != 0)
        return;
    long long sent_ms = 0;
    char ms[24] = "";
    const char *item = str(o, "itemId");
    if (sscanf(item, "mk_%23[0-9]_", ms) == 1 && kwc_parse_int(ms, 0, INT64_MAX, &sent_ms) == 0 &&
        sent_ms < j->start_ms - STALE_ITEM_MS)
        return; /* stored while we were away: from an earlier session */
    char dev[16];
    device_str(o, "senderDeviceId", dev, sizeof dev);
    kwc_peer p;
    char peer[KWC_PEER_ID_MAX + 1];
    if (kwc_peer_member(str(o, "sender"), dev, &p) != 0)
        return;
    kwc_peer_id(&p, peer, sizeof peer);
    int type = message_type(o, "cipherType");
    if (present_index(j, peer) < 0 || type < 0)
        return; /* TRUST: only present member devices */
    feed(j, &p, type, str(o, "payload"));
}

static void on_guest_payload(join_state *j, json_t *o, const char *sid_key, const char *body_key,
                             const char *type_key)
{
    if (strcmp(str(o, "meeting_id"), j->meeting) != 0)
        return;
    const char *sid = str(o, sid_key);
    guest_entry *g = guest_find(j, sid, 0);
    if (g == NULL || !g->admitted) {
        load_admitted_guests(j); /* admitted by someone whose notice we have not seen yet */
        g = guest_find(j, sid, 0);
    }
    kwc_peer p;
    int type = message_type(o, type_key);
    if (g == NULL || !g->admitted || kwc_peer_guest(sid, &p) != 0 || type < 0)
        return; /* TRUST: only admitted guests */
    feed(j, &p, type, str(o, body_key));
}

static void on_peer_change(join_state *j, json_t *o, int joined)
{
    char dev[16], peer[KWC_PEER_ID_MAX + 1];
    device_str(o, "deviceId", dev, sizeof dev);
    kwc_peer p;
    if (kwc_peer_member(str(o, "userId"), dev, &p) != 0)
        return;
    kwc_peer_id(&p, peer, sizeof peer);
    if (strcmp(peer, j->self_peer) == 0)
        return;
    int64_t now = kwc_now_ms();
    if (joined) {
        json_int_t at = json_integer_value(json_object_get(o, "joinedAt"));
        present_add(j, peer, at > 0 ? at : INT64_MAX);
        kwc_ignore(kw_mka_peer_joined(j->mka, now, peer, at > 0 ? at : now));
        kwc_event_line(j->ctx, "participant_joined", json_pack("{s:s}", "peer", peer), "%s joined",
                       peer);
    } else {
        present_remove(j, peer);
        kwc_ignore(kw_mka_peer_left(j->mka, now, peer));
        kwc_event_line(j->ctx, "participant_left", json_pack("{s:s}", "peer", peer), "%s left",
                       peer);
        /* DESIGN §6: the longest-present member rotates; the others get NOT_ROTATOR. */
        if (kw_mka_get_state(j->mka) == KW_MKA_HAVE_KEY && longest_present(j) &&
            kw_mka_rotate(j->mka, now) == KW_OK)
            kwc_event_line(j->ctx, "rotated", NULL, "Rotating the media key (%s left)", peer);
    }
    drain_actions(j);
}

static void on_event(join_state *j, kwc_event *ev)
{
    json_t *o = json_array_get(ev->args, 0);
    const char *n = ev->name;
    if (strcmp(n, "video:participant-joined") == 0 && strcmp(str(o, "channelId"), "") != 0 &&
        strcmp(str(o, "channelId"), j->meeting) != 0)
        return;
    if (strcmp(n, "video:participant-joined") == 0)
        on_peer_change(j, o, 1);
    else if (strcmp(n, "video:participant-left") == 0)
        on_peer_change(j, o, 0);
    else if (strcmp(n, "receiveItem") == 0)
        on_item(j, o);
    else if (strcmp(n, "guest:meeting_e2ee_key_request") == 0)
        on_guest_payload(j, o, "guest_session_id", "ciphertext", "messageType");
    else if (strcmp(n, "guest:signal_message") == 0)
        on_guest_payload(j, o, "from_guest_session_id", "encrypted_message", "message_type");
    else if (strcmp(n, "meeting:guest_admission_request") == 0)
        on_admission_request(j, o);
    else if (strcmp(n, "meeting:guest_admitted") == 0 &&
             strcmp(str(o, "meeting_id"), j->meeting) == 0) {
        guest_entry *g = guest_find(j, str(o, "session_id"), 1);
        if (g != NULL && !g->admitted) {
            g->admitted = 1;
            kwc_event_line(
                j->ctx, "guest_admitted",
                json_pack("{s:s, s:s}", "session_id", g->session_id, "by", str(o, "admitted_by")),
                "Guest %s admitted by %s", g->session_id, str(o, "admitted_by"));
        }
        if (g != NULL)
            key_guest(j, g);
    } else if (strcmp(n, "meeting:guest_declined") == 0 &&
               strcmp(str(o, "meeting_id"), j->meeting) == 0) {
        guest_entry *g = guest_find(j, str(o, "session_id"), 1);
        if (g == NULL || g->declined)
            return;
        g->declined = 1;
        kwc_event_line(j->ctx, "guest_declined",
                       json_pack("{s:s, s:s}", "session_id", str(o, "session_id"), "by",
                                 str(o, "declined_by")),
                       "Guest %s declined by %s", str(o, "session_id"), str(o, "declined_by"));
    } else if (strcmp(n, "meeting:ended") == 0 && strcmp(str(o, "meeting_id"), j->meeting) == 0) {
        kwc_event_line(j->ctx, "meeting_ended", json_pack("{s:s}", "meeting_id", j->meeting),
                       "The meeting was deleted.");
        kwc_interrupted = 1;
    } else if (strcmp(n, "prekeys:low") == 0)
        j->next_key_check = 0;
}

/* ---- the session ----------------------------------------------------------------------- */

static void refresh_keys(join_state *j)
{
    size_t count = 0, up = 0;
    kw_error err;
    kw_error_clear(&err);
    if (kwc_member_keys_refresh(&j->m.api, j->m.id, &count, &up, &err) != KW_OK)
        kwc_event_line(j->ctx, "keys_refresh_failed", json_pack("{s:s}", "error", err.detail),
                       "Pre-key refresh failed: %s", err.detail);
    else if (up > 0)
        kwc_event_line(
            j->ctx, "prekeys_uploaded",
            json_pack("{s:I, s:I}", "uploaded", (json_int_t)up, "count", (json_int_t)count),
            "Uploaded %zu pre-keys (%zu on the server)", up, count);
    j->next_key_check = kwc_mono_ms() + KEY_CHECK_MS;
}

static kw_err connect_and_register(join_state *j, json_t **participants, kw_error *err)
{
    json_t *auth = NULL, *ack = NULL, *cerr = NULL;
    kw_err rc = kwc_api_member_auth(&j->m.dev, &auth, err);
    if (rc == KW_OK)
        rc = kwc_sio_connect(j->m.net, "/", auth, SIO_TIMEOUT_MS, &cerr, err);
    json_decref(auth);
    json_decref(cerr);
    if (rc != KW_OK)
        return rc;
    rc = emit_acked(j, "meeting:join-room", json_pack("{s:s}", "meeting_id", j->meeting), err);
    json_t *p = json_pack("{s:s}", "channelId", j->meeting);
    if (rc == KW_OK)
        rc = kwc_sio_call(j->m.net, "video:register-participant", p, SIO_TIMEOUT_MS, &ack, err);
    if (rc == KW_OK && !json_is_true(json_object_get(ack, "ok")))
        rc = kw_error_set(err, kw_err_from_name(str(ack, "error")),
                          "video:register-participant: %s", str(ack, "error"));
    json_int_t at = json_integer_value(json_object_get(ack, "joinedAt"));
    j->self_joined_ms = at > 0 ? at : INT64_MAX;
    json_decref(ack);
    ack = NULL;
    if (rc == KW_OK)
        rc = kwc_sio_call(j->m.net, "video:check-participants", p, SIO_TIMEOUT_MS, &ack, err);
    json_decref(p);
    if (rc == KW_OK && !json_is_true(json_object_get(ack, "ok")))
        rc = kw_error_set(err, kw_err_from_name(str(ack, "error")), "video:check-participants: %s",
                          str(ack, "error"));
    if (rc == KW_OK)
        *participants = json_incref(json_object_get(ack, "participants"));
    json_decref(ack);
    return rc;
}

/* Starts the agreement: peers that hold the key are asked; with none, we create it. */
static kw_err start_agreement(join_state *j, json_t *participants, kw_error *err)
{
    size_t n = json_array_size(participants), k = 0, i;
    kw_mka_peer *peers = calloc(n + 1, sizeof *peers);
    char(*ids)[KWC_PEER_ID_MAX + 1] = calloc(n + 1, sizeof *ids);
    if (peers == NULL || ids == NULL) {
        free(peers);
        free(ids);
        return kw_error_set(err, KW_ERR_NOMEM, "participants");
    }
    json_t *p;
    json_array_foreach(participants, i, p)
    {
        char dev[16];
        device_str(p, "deviceId", dev, sizeof dev);
        kwc_peer peer;
        if (kwc_peer_member(str(p, "userId"), dev, &peer) != 0)
            continue;
        kwc_peer_id(&peer, ids[k], sizeof ids[k]);
        if (strcmp(ids[k], j->self_peer) == 0)
            continue;
        json_int_t at = json_integer_value(json_object_get(p, "joinedAt"));
        present_add(j, ids[k], at > 0 ? at : INT64_MAX);
        if (!json_is_true(json_object_get(p, "hasE2EEKey")))
            continue;
        peers[k].id = ids[k];
        peers[k].joined_ms = at > 0 ? at : 0;
        k++;
    }
    kw_err rc = kw_mka_start(j->mka, kwc_now_ms(), peers, k);
    free(peers);
    free(ids);
    if (rc != KW_OK)
        return kw_error_set(err, rc, "media key agreement: %s", kw_err_name(rc));
    kwc_event_line(j->ctx, "joined",
                   json_pack("{s:s, s:I, s:I}", "meeting_id", j->meeting, "present",
                             (json_int_t)j->n_present, "key_holders", (json_int_t)k),
                   "Joined %s: %zu other device(s) present, %s", j->meeting, j->n_present,
                   k == 0 ? "creating the media key" : "requesting the media key");
    return KW_OK;
}

/*
 * After a reconnect: the server's list of present devices replaces ours. Devices gone
 * meanwhile left (a rotation may follow, as for any leave); new ones joined (they get our
 * key). Our key survives: the meeting went on.
 */
static void resync_present(join_state *j, json_t *participants)
{
    int64_t now = kwc_now_ms();
    for (size_t i = j->n_present; i-- > 0;) {
        size_t k;
        json_t *p;
        int still = 0;
        json_array_foreach(participants, k, p)
        {
            char dev[16], id[KWC_PEER_ID_MAX + 1];
            kwc_peer peer;
            device_str(p, "deviceId", dev, sizeof dev);
            if (kwc_peer_member(str(p, "userId"), dev, &peer) != 0)
                continue;
            kwc_peer_id(&peer, id, sizeof id);
            still |= strcmp(id, j->present[i].id) == 0;
        }
        if (!still) {
            char gone[KWC_PEER_ID_MAX + 1];
            snprintf(gone, sizeof gone, "%s", j->present[i].id);
            present_remove(j, gone);
            kwc_ignore(kw_mka_peer_left(j->mka, now, gone));
        }
    }
    size_t k;
    json_t *p;
    json_array_foreach(participants, k, p)
    {
        char dev[16], id[KWC_PEER_ID_MAX + 1];
        kwc_peer peer;
        device_str(p, "deviceId", dev, sizeof dev);
        if (kwc_peer_member(str(p, "userId"), dev, &peer) != 0)
            continue;
        kwc_peer_id(&peer, id, sizeof id);
        json_int_t at = json_integer_value(json_object_get(p, "joinedAt"));
        if (strcmp(id, j->self_peer) == 0 || present_index(j, id) >= 0)
            continue;
        present_add(j, id, at > 0 ? at : INT64_MAX);
        kwc_ignore(kw_mka_peer_joined(j->mka, now, id, at > 0 ? at : now));
    }
    drain_actions(j);
}

/* The connection dropped (a server restart, the network): reconnects with a growing pause
 * until it works or Ctrl-C, then catches up. Returns 0 when connected again. */
static int reconnect(join_state *j, const kw_error *why)
{
    kwc_event_line(j->ctx, "reconnecting", json_pack("{s:s}", "error", why->detail),
                   "Connection to the server lost (%s); reconnecting...", why->detail);
    int pause_ms = 500;
    while (!kwc_interrupted) {
        struct timespec slice = {0, 50 * 1000 * 1000}; /* Ctrl-C is seen within 50 ms */
        for (int64_t until = kwc_mono_ms() + pause_ms; !kwc_interrupted && kwc_mono_ms() < until;)
            nanosleep(&slice, NULL);
        if (kwc_interrupted)
            break;
        kwc_sio_close(j->m.net);
        json_t *participants = NULL;
        kw_error err;
        kw_error_clear(&err);
        if (connect_and_register(j, &participants, &err) == KW_OK) {
            resync_present(j, participants);
            json_decref(participants);
            kw_media_key k;
            j->confirmed = 0; /* a restarted server forgot that we hold the key */
            if (kw_mka_current_key(j->mka, &k) == KW_OK) {
                json_t *cp = json_pack("{s:s}", "channelId", j->meeting);
                if (kwc_sio_emit(j->m.net, "video:confirm-e2ee-key", cp, &err) == KW_OK)
                    j->confirmed = 1;
                json_decref(cp);
                kw_media_key_wipe(&k);
            }
            load_admitted_guests(j);
            for (size_t i = 0; i < j->n_guests; i++)
                key_guest(j, &j->guests[i]);
            kwc_event_line(j->ctx, "reconnected",
                           json_pack("{s:I}", "present", (json_int_t)j->n_present),
                           "Reconnected: %zu other device(s) present", j->n_present);
            return 0;
        }
        json_decref(participants);
        pause_ms = pause_ms * 2 > 10000 ? 10000 : pause_ms * 2;
    }
    return -1;
}

static void leave(join_state *j)
{
    if (kwc_sio_connected(j->m.net)) {
        kw_error err;
        json_t *p = json_pack("{s:s}", "channelId", j->meeting);
        (void)emit_acked(j, "video:leave-channel", p, &err);
        (void)emit_acked(j, "meeting:leave-room", json_pack("{s:s}", "meeting_id", j->meeting),
                         &err);
    }
    kwc_sio_close(j->m.net);
    kw_mka_leave(j->mka);
}

static int run(join_state *j)
{
    kw_error err;
    kw_error_clear(&err);
    json_t *participants = NULL;
    refresh_keys(j);
    if (connect_and_register(j, &participants, &err) != KW_OK)
        return kwc_fail_err(j->ctx, "cannot join the meeting", &err);
    snprintf(j->self_peer, sizeof j->self_peer, "%s:%u", j->m.dev.user_id, j->m.dev.device_id);
    kw_err rc = start_agreement(j, participants, &err);
    json_decref(participants);
    if (rc != KW_OK) {
        leave(j);
        return kwc_fail_err(j->ctx, "cannot join the meeting", &err);
    }
    drain_actions(j);
    load_admitted_guests(j);
    for (size_t i = 0; i < j->n_guests; i++)
        key_guest(j, &j->guests[i]);
    while (!kwc_interrupted) {
        kwc_event ev = {NULL, NULL};
        int64_t now = kwc_now_ms(), deadline = kw_mka_deadline(j->mka);
        int wait = deadline - now < 250 ? (int)(deadline > now ? deadline - now : 0) : 250;
        rc = kwc_sio_next(j->m.net, wait, &ev, &err);
        if (rc == KW_OK) {
            on_event(j, &ev);
            kwc_event_clear(&ev);
        } else if (rc != KW_ERR_TIMEOUT && reconnect(j, &err) != 0) {
            break; /* Ctrl-C while reconnecting */
        }
        kwc_ignore(kw_mka_tick(j->mka, kwc_now_ms()));
        drain_actions(j);
        poll_answer(j);
        if (kwc_mono_ms() >= j->next_key_check)
            refresh_keys(j);
    }
    leave(j);
    if (j->failed == 0)
        kwc_event_line(j->ctx, "left", json_pack("{s:s}", "meeting_id", j->meeting), "Left %s",
                       j->meeting);
    return j->failed;
}

int kwc_cmd_meeting_join(kwc_ctx *ctx, int argc, char **argv)
{
    if (kwc_wants_help(argc, argv)) {
        fputs(help, stdout);
        return KWC_EXIT_OK;
    }
    join_state j;
    memset(&j, 0, sizeof j);
    j.ctx = ctx;
    j.admit = ADMIT_ASK;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--admit") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "all") == 0)
                j.admit = ADMIT_ALL;
            else if (strcmp(v, "none") == 0)
                j.admit = ADMIT_NONE;
            else if (strcmp(v, "ask") == 0)
                j.admit = ADMIT_ASK;
            else
                return kwc_usage_error(ctx, "meeting join", "--admit takes all, none or ask");
        } else if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc)
            j.key_file = argv[++i];
        else if (strcmp(argv[i], "--message") == 0 && i + 1 < argc)
            j.message = argv[++i];
        else if (argv[i][0] == '-' || j.meeting != NULL)
            return kwc_usage_error(ctx, "meeting join", "unexpected argument '%s'", argv[i]);
        else
            j.meeting = argv[i];
    }
    if (j.meeting == NULL || !kwc_id_ok(j.meeting))
        return kwc_usage_error(ctx, "meeting join", "needs a meeting id");
    int rc = kwc_member_open(ctx, &j.m, 1);
    if (rc != 0)
        return rc;
    j.present = calloc(MAX_PRESENT, sizeof *j.present);
    j.guests = calloc(MAX_GUESTS, sizeof *j.guests);
    char self[KWC_PEER_ID_MAX + 1];
    snprintf(self, sizeof self, "%s:%u", j.m.dev.user_id, j.m.dev.device_id);
    if (j.present == NULL || j.guests == NULL ||
        kw_mka_new(self, kw_random_system(), &j.mka) != KW_OK)
        rc = kwc_fail(ctx, "out of memory");
    else {
        kwc_catch_signals();
        j.start_ms = kwc_now_ms();
        rc = run(&j);
    }
    kw_mka_free(j.mka);
    free(j.present);
    free(j.guests);
    kwc_member_close(&j.m);
    return rc;
}
