// realtime_video.test.mjs — the six test scenarios of seed 003 (video-channel E2EE) from
// the server's side, each check named after its scenario, driven by the stock
// socket.io-client against a real keywaved (tests/interop/lib/realtime_harness.mjs).
//
// The media key itself never reaches the server: clients generate it, and request and
// answer it as Signal group items (sendGroupItem with type video_e2ee_key_request /
// video_e2ee_key_response, seed 003 phase 3). What the server owes each scenario is the
// truth about who is present (video:check-participants, joined / key-confirmed / left
// notices, per device), exact relay of the key items (their timestamp unchanged, so the
// "oldest timestamp wins" rule can work), membership checks, presence in a meeting
// (has_active_participants of the join page, request-admission, meeting:host_present to
// a waiting guest), and cleanup on leave and on a disconnect without leave — presence is
// keyed per socket, so a device reconnecting on a new socket is not removed by the old
// socket's disconnect. realtime.test.mjs covers the event payloads and refusals in
// detail; this file follows the seed's story.
//
// Last line: RESULT passed=N failed=M. Env: KW_TOOLS (build/tests/interop) or KEYWAVED.

import fs from 'node:fs';

import { harness } from './lib/realtime_harness.mjs';

const h = harness('keywave-realtime-video-');
const { check, finish, startServer, registerGuest, api, newMember, memberAuth, connected, ack, js, sleep, keywaved } = h;

// Waits for the first event of that name satisfying pred, and takes it off the record.
async function waitFor(s, name, pred = () => true, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const i = s.rec.events.findIndex((e) => e.name === name && pred(e.args[0]));
    if (i >= 0) return s.rec.events.splice(i, 1)[0].args[0];
    if (Date.now() - t0 > ms) return undefined;
    await sleep(10);
  }
}

// The events of that name a socket holds now. Call after a round trip on that socket (an
// ack): the server queues notices in order, so any notice caused by an earlier event
// arrived before the ack did.
const held = (s, name, pred = () => true) => s.rec.events.filter((e) => e.name === name && pred(e.args[0])).map((e) => e.args[0]);

const fromDevice = (m) => (p) => p?.userId === m.user_id && p?.deviceId === String(m.device_id);

// Drops the TCP connection under a socket: no Socket.IO DISCONNECT, no WebSocket close
// frame, no video:leave-channel (a lost network, a closed laptop).
function dropNetwork(s) {
  s.io.engine.transport.ws._socket.destroy();
}

let itemSeq = 0;
// A key request or response as a group item in channelId (the payload stands for the
// Signal ciphertext); resolves the ack.
function keyItem(s, channelId, type, timestamp) {
  itemSeq++;
  const itemId = `video_key_${itemSeq}`;
  return ack(s, 'sendGroupItem', { channelId, itemId, type, payload: Buffer.from(`${type}:${timestamp}`).toString('base64'), cipherType: 7, timestamp }).then((r) => ({ ...r, itemId }));
}

const keyFrom = (m, type, itemId) => (g) => g?.sender === m.user_id && g?.senderDevice === String(m.device_id) && g?.type === type && g?.itemId === itemId;

async function joinPage(token) {
  return api(null, 'GET', `/api/meetings/external/join/${token}`);
}

async function main() {
  if (!fs.existsSync(keywaved)) {
    check('keywaved binary present', false, keywaved);
    return;
  }
  await startServer();

  const alice = await newMember('alice');
  const bob = await newMember('bob');
  const carol = await newMember('carol');
  const dave = await newMember('dave');
  const eve = await newMember('eve'); // in no channel or meeting

  // A meeting whose video channel the scenarios use (a meeting rather than a channel, so
  // presence shows in has_active_participants and to guests), with a waiting guest.
  const start = new Date(Date.now() - 60000).toISOString().replace(/\.\d+Z$/, 'Z');
  const end = new Date(Date.now() + 3600000).toISOString().replace(/\.\d+Z$/, 'Z');
  const mt = await api(alice, 'POST', '/api/meetings', { title: 'video e2ee', start_time: start, end_time: end, allow_external: true });
  const M = mt.json?.meeting_id;
  check('setup: meeting created', mt.status === 201 && typeof M === 'string', js(mt));
  for (const m of [bob, carol, dave]) {
    const r = await api(alice, 'POST', `/api/meetings/${M}/participants`, { user_id: m.user_id, role: 'member' });
    check('setup: participant added', r.status === 200 || r.status === 201, js(r));
  }
  const guest = await registerGuest(alice, M);
  const g = await connected('/external', { session_id: guest.session_id, guest_secret: guest.guest_secret });
  const hostPresent = (ms) => waitFor(g, 'meeting:host_present', (p) => p?.meeting_id === M, ms);

  const a = await connected('/', memberAuth(alice));
  const b = await connected('/', memberAuth(bob));
  const e = await connected('/', memberAuth(eve));
  const T_A = 1000; // alice's media key timestamp (seed 003: the oldest wins)

  // ---- Scenario 1: a single user, the first participant -------------------------------
  {
    const page = await joinPage(guest.token);
    check('scenario 1: before anyone joins, has_active_participants is false', page.status === 200 && page.json?.has_active_participants === false, js(page));
    const refused = await ack(e, 'video:check-participants', { channelId: M });
    const refused2 = await ack(e, 'video:register-participant', { channelId: M });
    check('scenario 1: a non-participant may neither check nor register (membership check)', refused.error === 'forbidden' && refused2.error === 'forbidden', js([refused, refused2]));
    const c = await ack(a, 'video:check-participants', { channelId: M });
    check('scenario 1: first participant: isFirstParticipant true, nobody listed', c.ok === true && c.isFirstParticipant === true && c.participantCount === 0 && c.participants?.length === 0, js(c));
    const info = await waitFor(a, 'video:participants-info');
    check('scenario 1: video:participants-info says the same', info?.isFirstParticipant === true && info?.channelId === M, js(info));
    const none = await hostPresent(0);
    check('scenario 1: no host present yet: the waiting guest was not told meeting:host_present', none === undefined, js(none));
    const r = await ack(a, 'video:register-participant', { channelId: M });
    check('scenario 1: first participant registers (no key exchange: it generates the key)', r.ok === true && r.channelId === M && typeof r.joinedAt === 'number', js(r));
    const hp = await hostPresent();
    check('scenario 1: the waiting guest gets meeting:host_present', hp?.meeting_id === M, js(hp));
    const page2 = await joinPage(guest.token);
    check('scenario 1: has_active_participants is now true', page2.json?.has_active_participants === true, js(page2));
    const k = await ack(a, 'video:confirm-e2ee-key', { channelId: M });
    check('scenario 1: the first participant confirms its own key', k.ok === true, js(k));
  }

  // ---- Scenario 2: two users, key exchange -------------------------------------------
  {
    const c = await ack(b, 'video:check-participants', { channelId: M });
    const p = c.participants?.[0];
    check('scenario 2: second user: not first, alice listed with her key', c.isFirstParticipant === false && c.participantCount === 1 && fromDevice(alice)(p) && p?.hasE2EEKey === true && typeof p?.joinedAt === 'number', js(c));
    const r = await ack(b, 'video:register-participant', { channelId: M });
    const joined = await waitFor(a, 'video:participant-joined', fromDevice(bob));
    check('scenario 2: bob registers, alice gets video:participant-joined', r.ok === true && typeof joined?.joinedAt === 'number', js([r, joined]));
    const req = await keyItem(b, M, 'video_e2ee_key_request', Date.now());
    const gotReq = await waitFor(a, 'groupItem', keyFrom(bob, 'video_e2ee_key_request', req.itemId));
    check('scenario 2: bob\'s key request (a Signal group item) reaches alice', req.ok === true && gotReq?.channel === M, js([req, gotReq]));
    const resp = await keyItem(a, M, 'video_e2ee_key_response', T_A);
    const gotResp = await waitFor(b, 'groupItem', keyFrom(alice, 'video_e2ee_key_response', resp.itemId));
    check('scenario 2: alice\'s key response reaches bob with her key timestamp unchanged', resp.ok === true && gotResp?.timestamp === T_A && gotResp?.payload === Buffer.from(`video_e2ee_key_response:${T_A}`).toString('base64'), js([resp, gotResp]));
    const k = await ack(b, 'video:confirm-e2ee-key', { channelId: M });
    const conf = await waitFor(a, 'video:participant-key-confirmed', fromDevice(bob));
    check('scenario 2: bob confirms the key, alice gets video:participant-key-confirmed', k.ok === true && conf !== undefined, js([k, conf]));
    const forged = await ack(e, 'video:confirm-e2ee-key', { channelId: M });
    check('scenario 2: a non-participant cannot confirm a key (membership check)', forged.error === 'forbidden', js(forged));
  }

  // ---- Scenario 3: a race, three simultaneous joins -----------------------------------
  // A channel of its own, empty: alice, bob and carol open it at the same moment.
  {
    const ch = await api(alice, 'POST', '/api/channels', { name: 'race', type: 'webrtc' });
    const C = ch.json?.channel_id;
    for (const m of [bob, carol]) await api(alice, 'POST', `/api/channels/${C}/members`, { user_id: m.user_id });
    const users = [alice, bob, carol];
    const socks = await Promise.all(users.map((m) => connected('/', memberAuth(m))));
    const outsider = await ack(e, 'video:register-participant', { channelId: C });
    check('scenario 3: a non-member of the channel cannot join the race (membership check)', outsider.error === 'forbidden', js(outsider));
    const checks = await Promise.all(socks.map((s) => ack(s, 'video:check-participants', { channelId: C })));
    check('scenario 3: three simultaneous checks all see an empty call (the race is real)', checks.every((c) => c.ok === true && c.isFirstParticipant === true), js(checks));
    const regs = await Promise.all(socks.map((s) => ack(s, 'video:register-participant', { channelId: C })));
    check('scenario 3: all three register', regs.every((r) => r.ok === true), js(regs));
    const after = await Promise.all(socks.map((s) => ack(s, 'video:check-participants', { channelId: C })));
    check(
      'scenario 3: afterwards each sees the other two, oldest first',
      after.every((c, i) => c.participantCount === 2 && c.participants.every((p) => p.userId !== users[i].user_id) && c.participants[0].joinedAt <= c.participants[1].joinedAt),
      js(after),
    );
    // Registration order decides who hears of whom: in all, one joined notice per pair.
    const joinedCounts = socks.map((s) => held(s, 'video:participant-joined').length);
    check('scenario 3: one participant-joined per pair of devices, none about oneself', joinedCounts.reduce((x, y) => x + y, 0) === 3 && socks.every((s, i) => held(s, 'video:participant-joined', fromDevice(users[i])).length === 0), js(joinedCounts));
    // Each generated its own key (1000, 1005, 1010) and sends it; all must end with 1000.
    const stamps = [1000, 1005, 1010];
    const sent = await Promise.all(socks.map((s, i) => keyItem(s, C, 'video_e2ee_key_response', stamps[i])));
    let agreed = sent.every((r) => r.ok === true);
    const detail = [];
    for (let i = 0; i < 3; i++) {
      const got = [];
      for (let j = 0; j < 3; j++) {
        if (j === i) continue;
        const it = await waitFor(socks[i], 'groupItem', keyFrom(users[j], 'video_e2ee_key_response', sent[j].itemId));
        got.push(it?.timestamp);
        if (it?.timestamp !== stamps[j]) agreed = false;
      }
      const oldest = Math.min(stamps[i], ...got.filter((t) => typeof t === 'number'));
      detail.push({ got, oldest });
      if (oldest !== 1000) agreed = false;
    }
    check('scenario 3: every key reaches the other two with its timestamp, so all pick the oldest (1000)', agreed, js([sent, detail]));
    for (const s of socks) s.disconnect();
  }

  // ---- Scenario 4: the first participant leaves, the key survives ---------------------
  const c = await connected('/', memberAuth(carol));
  {
    const l = await ack(a, 'video:leave-channel', { channelId: M });
    const left = await waitFor(b, 'video:participant-left', fromDevice(alice));
    check('scenario 4: alice (first) leaves, bob gets video:participant-left', l.ok === true && left !== undefined, js([l, left]));
    const cc = await ack(c, 'video:check-participants', { channelId: M });
    check('scenario 4: carol sees bob only, holding the key: not first, no new key', cc.isFirstParticipant === false && cc.participantCount === 1 && fromDevice(bob)(cc.participants[0]) && cc.participants[0].hasE2EEKey === true, js(cc));
    await ack(c, 'video:register-participant', { channelId: M });
    const req = await keyItem(c, M, 'video_e2ee_key_request', Date.now());
    const gotReq = await waitFor(b, 'groupItem', keyFrom(carol, 'video_e2ee_key_request', req.itemId));
    const resp = await keyItem(b, M, 'video_e2ee_key_response', T_A);
    const gotResp = await waitFor(c, 'groupItem', keyFrom(bob, 'video_e2ee_key_response', resp.itemId));
    check('scenario 4: bob now answers carol\'s request with the original timestamp', gotReq !== undefined && gotResp?.timestamp === T_A, js([gotReq, gotResp]));
    const page = await joinPage(guest.token);
    check('scenario 4: the meeting stays active (has_active_participants true)', page.json?.has_active_participants === true, js(page));
  }

  // ---- Scenario 5: everyone left, a new session -------------------------------------
  const d = await connected('/', memberAuth(dave));
  {
    await ack(b, 'video:leave-channel', { channelId: M });
    c.disconnect(); // carol closes the tab: Socket.IO disconnect, no leave event
    let dc;
    for (let i = 0; i < 200; i++) {
      dc = await ack(d, 'video:check-participants', { channelId: M });
      if (dc.participantCount === 0) break;
      await sleep(10);
    }
    check('scenario 5: all left (one by leave, one by disconnect): dave is first again', dc?.isFirstParticipant === true && dc?.participantCount === 0, js(dc));
    const page = await joinPage(guest.token);
    check('scenario 5: has_active_participants is false again', page.json?.has_active_participants === false, js(page));
    const ra = await api(null, 'POST', `/api/meetings/${M}/external/${guest.session_id}/request-admission`, undefined, guest.guest_secret);
    check('scenario 5: the waiting guest is told no_host_present', ra.status === 409 && ra.json?.error === 'no_host_present', js(ra));
    const r = await ack(d, 'video:register-participant', { channelId: M });
    const hp = await hostPresent();
    check('scenario 5: dave starts the new session (a new key); the guest gets meeting:host_present again', r.ok === true && hp?.meeting_id === M, js([r, hp]));
    await ack(d, 'video:confirm-e2ee-key', { channelId: M });
    const old = await ack(d, 'video:check-participants', { channelId: M });
    check('scenario 5: nobody of the old session is listed', old.participantCount === 0, js(old));
  }

  // ---- Scenario 6: reconnection ------------------------------------------------------
  {
    // alice is in the call with dave.
    let a1 = await connected('/', memberAuth(alice));
    await ack(a1, 'video:register-participant', { channelId: M });
    await waitFor(d, 'video:participant-joined', fromDevice(alice));

    // (a) The network goes: a disconnect without leave.
    dropNetwork(a1);
    const left = await waitFor(d, 'video:participant-left', fromDevice(alice));
    check('scenario 6: a disconnect without leave (network lost) -> dave gets video:participant-left', left !== undefined, js(d.rec.events));
    const gone = await ack(d, 'video:check-participants', { channelId: M });
    check('scenario 6: the lost socket is no longer listed', gone.participantCount === 0, js(gone));
    a1 = await connected('/', memberAuth(alice));
    const cc = await ack(a1, 'video:check-participants', { channelId: M });
    check('scenario 6: alice reconnects: not first, dave listed with the key', cc.isFirstParticipant === false && cc.participantCount === 1 && fromDevice(dave)(cc.participants[0]) && cc.participants[0].hasE2EEKey === true, js(cc));
    const r1 = await ack(a1, 'video:register-participant', { channelId: M });
    const joined = await waitFor(d, 'video:participant-joined', fromDevice(alice));
    check('scenario 6: alice registers again, dave sees her join', r1.ok === true && joined !== undefined, js([r1, joined]));
    const T_D = 2000;
    const req = await keyItem(a1, M, 'video_e2ee_key_request', Date.now());
    await waitFor(d, 'groupItem', keyFrom(alice, 'video_e2ee_key_request', req.itemId));
    const resp = await keyItem(d, M, 'video_e2ee_key_response', T_D);
    const got = await waitFor(a1, 'groupItem', keyFrom(dave, 'video_e2ee_key_response', resp.itemId));
    check('scenario 6: alice gets the session key again with its original timestamp', got?.timestamp === T_D, js(got));

    // (b) The network blips: a new socket of the same device registers before the old one
    // is gone. Presence is per socket: the old socket's disconnect must not remove it.
    const before = await ack(d, 'video:check-participants', { channelId: M });
    const oldJoined = before.participants?.[0]?.joinedAt;
    while (Date.now() <= oldJoined) await sleep(2); // so the two registrations differ in joinedAt
    const a2 = await connected('/', memberAuth(alice));
    const r2 = await ack(a2, 'video:register-participant', { channelId: M });
    const mid = await ack(d, 'video:check-participants', { channelId: M });
    check(
      'scenario 6: a new socket of the same device registers: no second participant-joined, listed once',
      r2.ok === true && r2.joinedAt > oldJoined && mid.participantCount === 1 && held(d, 'video:participant-joined').length === 0,
      js([r2, mid, d.rec.events]),
    );
    dropNetwork(a1);
    // The old socket's close is seen when alice's entry shows the new socket's joinedAt
    // (a device is listed with its oldest socket's).
    let seen;
    for (let i = 0; i < 500; i++) {
      seen = await ack(d, 'video:check-participants', { channelId: M });
      if (seen.participants?.[0]?.joinedAt === r2.joinedAt) break;
      await sleep(10);
    }
    check(
      "scenario 6: the old socket's disconnect does not remove the new socket's registration",
      seen.participantCount === 1 && fromDevice(alice)(seen.participants[0]) && seen.participants[0].joinedAt === r2.joinedAt,
      js(seen),
    );
    check("scenario 6: dave is not told alice left while her new socket stays", held(d, 'video:participant-left').length === 0, js(d.rec.events));
    const page = await joinPage(guest.token);
    check('scenario 6: the meeting is still active', page.json?.has_active_participants === true, js(page));
    const l = await ack(a2, 'video:leave-channel', { channelId: M });
    const last = await waitFor(d, 'video:participant-left', fromDevice(alice));
    check('scenario 6: when the new socket leaves, dave gets video:participant-left', l.ok === true && last !== undefined, js([l, last]));
    a2.disconnect();
  }
  for (const s of [a, b, e, d, g]) s.disconnect();
}

main()
  .catch((err) => check('no exception', false, err.stack))
  .finally(finish);
