// realtime.test.mjs — keywaved's Socket.IO endpoint (DESIGN.md section 8) driven by the stock
// socket.io-client 4.8.1 with transports: ['websocket'], against a real keywaved started here
// on a free port with a temporary data directory.
//
// Members are enrolled the real way (`keywaved user add|code` + POST /api/auth/enroll) and
// sign their CONNECT auth with node's crypto exactly per DESIGN.md section 4; a guest
// registers with keys made by @signalapp/libsignal-client. Covered: both namespaces with real
// auth, bad auth -> connect_error with the token, acks both ways, the video tracking
// scenarios of seed 003 from the server's side (first participant, joined / key-confirmed /
// left, disconnect without leave, reconnect from a new socket of the same device, a new
// session once everyone left), meeting:host_present to a waiting guest, rooms, forbidden
// for non-members and guests, fragmented messages, and the polling 400.
// Last line: RESULT passed=N failed=M. Env: KW_TOOLS (build/tests/interop) or KEYWAVED.

import crypto from 'node:crypto';
import fs from 'node:fs';

import { io } from 'socket.io-client';

import { harness } from './lib/realtime_harness.mjs';

const h = harness('keywave-realtime-');
const {
  check,
  finish,
  startServer,
  registerGuest,
  signature,
  api,
  cli,
  enroll,
  newMember,
  memberAuth,
  connect,
  connected,
  recorder,
  ack,
  js,
  sockets,
  keywaved,
} = h;

// ---- the tests --------------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(keywaved)) {
    check('keywaved binary present', false, keywaved);
    return;
  }
  await startServer();

  // Polling is refused with a clear 400.
  {
    const r = await api(null, 'GET', '/socket.io/?EIO=4&transport=polling');
    check('polling GET /socket.io/ is 400', r.status === 400 && /polling/.test(r.json?.detail ?? ''), js(r));
    const r2 = await api(null, 'GET', '/socket.io/?EIO=4&transport=websocket');
    check('GET /socket.io/ without upgrade is 400', r2.status === 400 && r2.json?.error === 'invalid_field', js(r2));
    const p = await connect('/', {}, { transports: ['polling'] });
    check('a polling client cannot connect', p.error !== undefined && !p.socket?.connected, js(p.error));
  }

  const alice = await newMember('alice');
  const alice2 = await enroll(cli('user', 'code', 'alice'), 'alice-laptop');
  const bob = await newMember('bob');
  const carol = await newMember('carol');

  // Bad member auth: connect_error with the token.
  {
    const cases = [
      ['wrong signature', memberAuth(alice, { signature: 'a'.repeat(64) }), 'invalid_signature'],
      ['unknown client', memberAuth({ client_id: 'nobody', session_secret: 'x' }), 'no_session'],
      ['no auth', undefined, 'missing_auth_headers'],
      ['missing nonce', (({ nonce, ...rest }) => rest)(memberAuth(alice)), 'missing_auth_headers'],
      ['timestamp as string', { ...memberAuth(alice), timestamp: String(Date.now()) }, 'invalid_auth_headers'],
      ['unknown field', { ...memberAuth(alice), extra: 1 }, 'invalid_auth_headers'],
      ['expired', memberAuth(alice, { timestamp: Date.now() - 400000 }), 'request_expired'],
    ];
    for (const [name, auth, token] of cases) {
      const r = await connect('/', auth);
      check(`member auth ${name} -> connect_error ${token}`, r.error === token, js(r.error));
    }
    const auth = memberAuth(alice);
    const first = await connect('/', auth);
    check('member auth accepted', first.socket?.connected === true, js(first.error));
    first.socket?.disconnect();
    const replay = await connect('/', auth);
    check('replayed CONNECT auth -> duplicate_request (nonce store shared)', replay.error === 'duplicate_request', js(replay.error));
    const ns = await connect('/nope', memberAuth(alice));
    check('unknown namespace -> connect_error', ns.error === 'Invalid namespace', js(ns.error));
  }

  // Channel: alice owns it, bob is a member, carol is not.
  const ch = await api(alice, 'POST', '/api/channels', { name: 'video room', type: 'webrtc' });
  const channelId = ch.json?.channel_id;
  check('channel created', ch.status === 201 && typeof channelId === 'string', js(ch));
  const add = await api(alice, 'POST', `/api/channels/${channelId}/members`, { user_id: bob.user_id });
  check('bob added to channel', add.status === 200, js(add));

  const a1 = await connected('/', memberAuth(alice));
  const ra1 = recorder(a1);
  let b1 = await connected('/', memberAuth(bob));
  let rb1 = recorder(b1);
  const c1 = await connected('/', memberAuth(carol));
  const rc1 = recorder(c1);

  // Scenario 1: the first participant.
  {
    const r = await ack(a1, 'video:check-participants', { channelId });
    check('check: first participant ack', r.ok === true && r.isFirstParticipant === true && r.participantCount === 0, js(r));
    const info = await ra1.next('video:participants-info');
    check('check: video:participants-info emitted', info?.channelId === channelId && info?.isFirstParticipant === true && Array.isArray(info?.participants), js(info));
    const reg = await ack(a1, 'video:register-participant', { channelId });
    check('register: ack ok', reg.ok === true && reg.channelId === channelId && typeof reg.joinedAt === 'number', js(reg));
    const again = await ack(a1, 'video:register-participant', { channelId });
    check('register twice: ok, idempotent', again.ok === true && again.joinedAt === reg.joinedAt, js(again));
  }

  // Scenario 2: a second user sees the first and is seen joining.
  {
    const r = await ack(b1, 'video:check-participants', { channelId });
    const p = r.participants?.[0];
    check(
      'check: second user sees one participant',
      r.isFirstParticipant === false && r.participantCount === 1 && p?.userId === alice.user_id && p?.deviceId === String(alice.device_id) && p?.hasE2EEKey === false && typeof p?.joinedAt === 'number',
      js(r),
    );
    await ack(b1, 'video:register-participant', { channelId });
    const joined = await ra1.next('video:participant-joined');
    check('register: others get participant-joined', joined?.userId === bob.user_id && joined?.deviceId === String(bob.device_id) && typeof joined?.joinedAt === 'number', js(joined));
    const self = await rb1.next('video:participant-joined', 200);
    check('register: the registering socket is not told about itself', self === undefined, js(self));
    const k = await ack(b1, 'video:confirm-e2ee-key', { channelId });
    const conf = await ra1.next('video:participant-key-confirmed');
    check('confirm key: ack ok and others get key-confirmed', k.ok === true && conf?.userId === bob.user_id && conf?.deviceId === String(bob.device_id), js([k, conf]));
    const seen = await ack(a1, 'video:check-participants', { channelId });
    check('check: hasE2EEKey reflects the confirmation', seen.participants?.length === 1 && seen.participants[0].hasE2EEKey === true && seen.participants[0].userId === bob.user_id, js(seen));
  }

  // Non-members and bad payloads: forbidden / not_found / invalid_payload, and nothing changes.
  {
    const f1 = await ack(c1, 'video:check-participants', { channelId });
    check('non-member check -> forbidden', f1.error === 'forbidden', js(f1));
    const f2 = await ack(c1, 'video:register-participant', { channelId });
    check('non-member register -> forbidden', f2.error === 'forbidden', js(f2));
    const leak = await ra1.next('video:participant-joined', 300);
    check('a refused register tells no one', leak === undefined, js(leak));
    const nf = await ack(a1, 'video:check-participants', { channelId: 'chn_000000000000' });
    check('unknown channel -> not_found', nf.error === 'not_found', js(nf));
    for (const [name, payload] of [
      ['empty object', {}],
      ['number id', { channelId: 5 }],
      ['extra field', { channelId, x: 1 }],
      ['no payload', undefined],
    ]) {
      const r = payload === undefined ? await a1.timeout(3000).emitWithAck('video:check-participants') : await ack(a1, 'video:check-participants', payload);
      check(`check with ${name} -> invalid_payload`, r.error === 'invalid_payload', js(r));
    }
    const unknown = await ack(a1, 'no:such-event', {});
    check('unknown event -> not_found', unknown.error === 'not_found', js(unknown));
    const notBuilt = await ack(a1, 'sendItem', {});
    check('sendItem with an empty payload -> invalid_payload (realtime_items.test.mjs tests it)', notBuilt.error === 'invalid_payload', js(notBuilt));
    const notReg = await ack(c1, 'video:leave-channel', { channelId });
    check('leave without register -> not_found', notReg.error === 'not_found', js(notReg));
    // A message larger than lws's 4 KiB read size arrives in pieces and is reassembled.
    const big = await ack(a1, 'video:check-participants', { channelId: 'x'.repeat(20000) });
    check('a 20 KB message is reassembled and answered', big.error === 'invalid_payload', js(big));
    check('carol received no video events', rc1.count('video:participant-joined') === 0 && rc1.count('video:participant-left') === 0, js(rc1.events));
  }

  // Leave, and disconnect without leave, tell the others.
  {
    const l = await ack(b1, 'video:leave-channel', { channelId });
    const left = await ra1.next('video:participant-left');
    check('leave: ack ok, others get participant-left', l.ok === true && left?.userId === bob.user_id && left?.deviceId === String(bob.device_id), js([l, left]));
    const l2 = await ack(b1, 'video:leave-channel', { channelId });
    check('leave twice -> not_found', l2.error === 'not_found', js(l2));
    await ack(b1, 'video:register-participant', { channelId });
    await ra1.next('video:participant-joined');
    b1.disconnect();
    const gone = await ra1.next('video:participant-left');
    check('disconnect without leave -> participant-left', gone?.userId === bob.user_id, js(gone));
    const after = await ack(a1, 'video:check-participants', { channelId });
    check('after the disconnect bob is not listed', after.participantCount === 0, js(after));
  }

  // Scenario 6: a reconnect from a new socket of the same device.
  {
    b1 = await connected('/', memberAuth(bob));
    rb1 = recorder(b1);
    const r = await ack(b1, 'video:check-participants', { channelId });
    check('reconnect: not the first participant', r.isFirstParticipant === false && r.participantCount === 1, js(r));
    await ack(b1, 'video:register-participant', { channelId });
    const j = await ra1.next('video:participant-joined');
    check('reconnect: others see the device join again', j?.userId === bob.user_id, js(j));
    // Overlap: a second socket of the same device registers before the first goes away.
    const b2 = await connected('/', memberAuth(bob));
    await ack(b2, 'video:register-participant', { channelId });
    const dup = await ra1.next('video:participant-joined', 300);
    check('same device on a second socket: no second participant-joined', dup === undefined, js(dup));
    const listed = await ack(a1, 'video:check-participants', { channelId });
    check('same device on two sockets is listed once', listed.participantCount === 1, js(listed));
    b1.disconnect();
    const early = await ra1.next('video:participant-left', 300);
    check('first socket of the device gone: no participant-left while the other stays', early === undefined, js(early));
    await ack(b2, 'video:leave-channel', { channelId });
    const late = await ra1.next('video:participant-left');
    check('last socket of the device leaves: participant-left', late?.userId === bob.user_id, js(late));
    b2.disconnect();
  }

  // A second device of the same user is another participant; own device excluded from check.
  {
    const a2 = await connected('/', memberAuth(alice2));
    const r = await ack(a2, 'video:check-participants', { channelId });
    check('another device of the same user sees the first device', r.participantCount === 1 && r.participants[0].deviceId === String(alice.device_id), js(r));
    const own = await ack(a1, 'video:check-participants', { channelId });
    check("the caller's own device is excluded", own.participantCount === 0 && own.isFirstParticipant === true, js(own));
    a2.disconnect();
  }

  // Scenario 5: everyone left -> the next one is first again.
  {
    await ack(a1, 'video:leave-channel', { channelId });
    const r = await ack(b1.connected ? b1 : c1, 'video:check-participants', { channelId });
    const bob3 = await connected('/', memberAuth(bob));
    const r2 = await ack(bob3, 'video:check-participants', { channelId });
    check('all left: next check is first again', r2.isFirstParticipant === true && r2.participantCount === 0, js([r, r2]));
    bob3.disconnect();
  }

  // Meetings: rooms, presence and meeting:host_present for a waiting guest.
  const start = new Date(Date.now() - 60000).toISOString().replace(/\.\d+Z$/, 'Z');
  const end = new Date(Date.now() + 3600000).toISOString().replace(/\.\d+Z$/, 'Z');
  const mt = await api(alice, 'POST', '/api/meetings', { title: 'standup', start_time: start, end_time: end, allow_external: true });
  const meetingId = mt.json?.meeting_id;
  check('meeting created', mt.status === 201 && typeof meetingId === 'string', js(mt));
  await api(alice, 'POST', `/api/meetings/${meetingId}/participants`, { user_id: bob.user_id, role: 'member' });
  {
    const j = await ack(a1, 'meeting:join-room', { meeting_id: meetingId });
    check('join-room by a participant -> ok', j.ok === true && j.meeting_id === meetingId, js(j));
    const f = await ack(c1, 'meeting:join-room', { meeting_id: meetingId });
    check('join-room by a non-participant -> forbidden (INV-6)', f.error === 'forbidden', js(f));
    const nf = await ack(a1, 'meeting:join-room', { meeting_id: 'mtg_000000000000' });
    check('join-room of an unknown meeting -> not_found', nf.error === 'not_found', js(nf));
    const l = await ack(a1, 'meeting:leave-room', { meeting_id: meetingId });
    const l2 = await ack(a1, 'meeting:leave-room', { meeting_id: meetingId });
    check('leave-room -> ok, then not_found', l.ok === true && l2.error === 'not_found', js([l, l2]));
    const reg = await ack(c1, 'video:register-participant', { channelId: meetingId });
    check('register in a meeting by a non-participant -> forbidden', reg.error === 'forbidden', js(reg));
  }

  const guest = await registerGuest(alice, meetingId);
  check('guest registered', typeof guest?.session_id === 'string', js(guest));
  {
    const bad = await connect('/external', { session_id: guest.session_id, guest_secret: 'A'.repeat(43) });
    check('guest with a wrong secret -> connect_error unauthorized', bad.error === 'unauthorized', js(bad.error));
    const none = await connect('/external', undefined);
    check('guest without auth -> connect_error unauthorized', none.error === 'unauthorized', js(none.error));
    const other = await connect('/external', { session_id: 'f'.repeat(32), guest_secret: guest.guest_secret });
    check("guest secret with another session's id -> unauthorized", other.error === 'unauthorized', js(other.error));
  }
  const g1 = await connected('/external', { session_id: guest.session_id, guest_secret: guest.guest_secret });
  const rg1 = g1.rec;
  {
    const early = await rg1.next('meeting:host_present', 300);
    check('no host present: the guest is not told so', early === undefined, js(early));
    const fb = await ack(g1, 'meeting:distributeSenderKeyToGuest', { meetingId, guestSessionId: guest.session_id, senderDeviceId: 1, encryptedSenderKey: 'x' });
    check('guest sending a sender key -> forbidden (INV-5)', fb.error === 'forbidden', js(fb));
    const fv = await ack(g1, 'video:check-participants', { channelId: meetingId });
    check('guest sending a member event -> forbidden', fv.error === 'forbidden', js(fv));
    const reg = await ack(a1, 'video:register-participant', { channelId: meetingId });
    const hp = await rg1.next('meeting:host_present');
    check('member registers in the meeting -> waiting guest gets meeting:host_present', reg.ok === true && hp?.meeting_id === meetingId, js([reg, hp]));
    const others = await ra1.next('meeting:host_present', 200);
    check('members do not get meeting:host_present', others === undefined, js(others));
    const ra = await api(null, 'POST', `/api/meetings/${meetingId}/external/${guest.session_id}/request-admission`, undefined, guest.guest_secret);
    check('REST sees the member present (request-admission accepted)', ra.status === 200 && ra.json?.ok === true, js(ra));
    const g2 = await connected('/external', { session_id: guest.session_id, guest_secret: guest.guest_secret });
    const rg2 = g2.rec;
    const hp2 = await rg2.next('meeting:host_present');
    check('a waiting guest connecting while a host is present is told at once', hp2?.meeting_id === meetingId, js(hp2));
    g2.disconnect();
  }

  // Multiplexing: "/" and "/external" on one connection (the client's default manager).
  {
    const m = io(h.base, { transports: ['websocket'], auth: memberAuth(bob), reconnection: false });
    sockets.push(m);
    const ext = io(`${h.base}/external`, { transports: ['websocket'], auth: { session_id: guest.session_id, guest_secret: guest.guest_secret }, reconnection: false });
    sockets.push(ext);
    await Promise.all([new Promise((r) => m.on('connect', r)), new Promise((r) => ext.on('connect', r))]);
    check('both namespaces on one connection', m.connected && ext.connected && m.io === ext.io, '');
    const r = await ack(m, 'video:check-participants', { channelId: meetingId });
    check('member events work on a multiplexed connection', r.ok === true && r.participantCount === 1, js(r));
    m.disconnect();
    ext.disconnect();
  }
}

main()
  .catch((e) => check('no exception', false, e.stack))
  .finally(finish);
