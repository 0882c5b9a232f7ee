// realtime_relay.test.mjs — the guest <-> member relays, sender keys to guests and the
// admission / prekeys:low notices of DESIGN.md section 8, driven by the stock
// socket.io-client 4.8.1 (transports: ['websocket']) against a real keywaved started here.
//
// Meeting M1 (alice owner; bob, dave participants) with guests gA, gB, gD; meeting M2
// (carol) with guest gC. Covered: admission notices reach the meeting's members (room or
// present) and only the guest concerned (INV-6: a second guest of the same meeting, a
// guest of another meeting and a member outside the meeting receive nothing about gA's
// admission or messages); relays both ways with acks; recipient_offline for a device not
// present / a guest not connected (INV-7); forbidden across meetings, for a declined guest,
// for a sender key to a guest not admitted and from a guest (INV-5); strict payloads
// (invalid_payload, nothing relayed); three members distribute sender keys to one admitted
// guest, who gets three meeting:receiveSenderKey, and (libkeywave through signal_tool)
// decrypts all three and the members' group messages; prekeys:low to a member device whose
// bundle fetch leaves fewer than 10 pre-keys; 100 events per minute per guest socket.
// Last line: RESULT passed=N failed=M. Env: KW_TOOLS (build/tests/interop) or KEYWAVED.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { io } from 'socket.io-client';

import { harness } from './lib/realtime_harness.mjs';

const h = harness('keywave-relay-');
const {
  check,
  finish,
  startServer,
  registerGuest,
  sleep,
  signature,
  api,
  newMember,
  memberAuth,
  connected,
  recorder,
  ack,
  js,
  sockets,
  keywaved,
  here,
} = h;

// ---- the tests --------------------------------------------------------------------------

const b64 = (b) => Buffer.from(b).toString('base64');
const blob = (n = 48) => b64(crypto.randomBytes(n));

// Asserts a recorder got no event whose payload mentions any of the strings.
function nothingAbout(rec, strings) {
  return rec.events.filter((e) => strings.some((s) => JSON.stringify(e.args).includes(s)));
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

  const start = new Date(Date.now() - 60000).toISOString().replace(/\.\d+Z$/, 'Z');
  const end = new Date(Date.now() + 3600000).toISOString().replace(/\.\d+Z$/, 'Z');
  const m1 = (await api(alice, 'POST', '/api/meetings', { title: 'one', start_time: start, end_time: end, allow_external: true })).json?.meeting_id;
  const m2 = (await api(carol, 'POST', '/api/meetings', { title: 'two', start_time: start, end_time: end, allow_external: true })).json?.meeting_id;
  check('two meetings created', typeof m1 === 'string' && typeof m2 === 'string', js([m1, m2]));
  for (const u of [bob, dave]) await api(alice, 'POST', `/api/meetings/${m1}/participants`, { user_id: u.user_id, role: 'member' });

  const a1 = await connected('/', memberAuth(alice));
  const b1 = await connected('/', memberAuth(bob));
  const c1 = await connected('/', memberAuth(carol));
  const d1 = await connected('/', memberAuth(dave));
  // alice is present in M1, bob only joined its room, dave neither; carol is present in M2.
  const reg = await ack(a1, 'video:register-participant', { channelId: m1 });
  const room = await ack(b1, 'meeting:join-room', { meeting_id: m1 });
  const reg2 = await ack(c1, 'video:register-participant', { channelId: m2 });
  check('setup: alice present in M1, bob in its room, carol present in M2', reg.ok && room.ok && reg2.ok, js([reg, room, reg2]));

  const gA = await registerGuest(alice, m1, 'Guest A');
  const gB = await registerGuest(alice, m1, 'Guest B');
  const gC = await registerGuest(carol, m2, 'Guest C');
  const gD = await registerGuest(alice, m1, 'Guest D');
  const sA = await connected('/external', { session_id: gA.session_id, guest_secret: gA.guest_secret });
  const sB = await connected('/external', { session_id: gB.session_id, guest_secret: gB.guest_secret });
  const sC = await connected('/external', { session_id: gC.session_id, guest_secret: gC.guest_secret });
  const aboutA = [gA.session_id, 'Guest A'];

  // Admission request: the members of M1 (room and present) are told; nobody else.
  {
    const r = await api(null, 'POST', `/api/meetings/${m1}/external/${gA.session_id}/request-admission`, undefined, gA.guest_secret);
    check('gA request-admission accepted', r.status === 200, js(r));
    const na = await a1.rec.next('meeting:guest_admission_request');
    const nb = await b1.rec.next('meeting:guest_admission_request');
    check(
      'present member gets meeting:guest_admission_request',
      na?.meeting_id === m1 && na?.session_id === gA.session_id && na?.display_name === 'Guest A' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(na?.requested_at ?? ''),
      js(na),
    );
    check('member in the meeting room gets it too', nb?.session_id === gA.session_id, js(nb));
    const nd = await d1.rec.next('meeting:guest_admission_request', 200);
    check('a participant neither present nor in the room is not told', nd === undefined, js(nd));
  }

  // guest -> member relays.
  {
    const payload = { recipient_user_id: alice.user_id, recipient_device_id: String(alice.device_id), encrypted_message: blob(), message_type: 3 };
    const r = await ack(sA, 'guest:signal_message', payload);
    const got = await a1.rec.next('guest:signal_message');
    check('guest:signal_message to a present member device: ack ok', r.ok === true, js(r));
    check(
      'the member device gets guest:signal_message',
      got?.meeting_id === m1 && got?.from_guest_session_id === gA.session_id && got?.display_name === 'Guest A' && got?.encrypted_message === payload.encrypted_message && got?.message_type === 3,
      js(got),
    );
    const num = await ack(sA, 'guest:signal_message', { ...payload, recipient_device_id: alice.device_id });
    check('recipient_device_id as a number works too', num.ok === true && (await a1.rec.next('guest:signal_message'))?.from_guest_session_id === gA.session_id, js(num));
    const req = { participant_user_id: alice.user_id, participant_device_id: String(alice.device_id), ciphertext: blob(), messageType: 2, request_id: 'req_1' };
    const k = await ack(sA, 'guest:meeting_e2ee_key_request', req);
    const kr = await a1.rec.next('guest:meeting_e2ee_key_request');
    check(
      'guest:meeting_e2ee_key_request relayed with the guest named',
      k.ok === true && kr?.meeting_id === m1 && kr?.guest_session_id === gA.session_id && kr?.guest_display_name === 'Guest A' && kr?.ciphertext === req.ciphertext && kr?.messageType === 2 && kr?.request_id === 'req_1',
      js([k, kr]),
    );
    const off = await ack(sA, 'guest:signal_message', { ...payload, recipient_user_id: bob.user_id, recipient_device_id: String(bob.device_id) });
    check('to a connected member not present in the meeting -> recipient_offline', off.error === 'recipient_offline', js(off));
    const off2 = await ack(sA, 'guest:meeting_e2ee_key_request', { ...req, participant_user_id: carol.user_id, participant_device_id: String(carol.device_id) });
    check('to a member present in another meeting -> recipient_offline', off2.error === 'recipient_offline', js(off2));
    const off3 = await ack(sA, 'guest:signal_message', { ...payload, recipient_device_id: '7' });
    check('to a device of the present user that is not present -> recipient_offline', off3.error === 'recipient_offline', js(off3));
    for (const [name, bad] of [
      ['missing field', (({ message_type, ...rest }) => rest)(payload)],
      ['unknown field', { ...payload, extra: 1 }],
      ['bad base64', { ...payload, encrypted_message: 'not base64!' }],
      ['unpadded base64', { ...payload, encrypted_message: 'QUJD' + 'QQ' }],
      ['message_type 7', { ...payload, message_type: 7 }],
      ['message_type as string', { ...payload, message_type: '3' }],
      ['device id with a leading zero', { ...payload, recipient_device_id: '01' }],
      ['oversized message', { ...payload, encrypted_message: 'A'.repeat(65540) }],
    ]) {
      const e = await ack(sA, 'guest:signal_message', bad);
      check(`guest:signal_message with ${name} -> invalid_payload`, e.error === 'invalid_payload', js(e));
    }
    const noArg = await sA.timeout(3000).emitWithAck('guest:signal_message');
    check('guest:signal_message without a payload -> invalid_payload', noArg.error === 'invalid_payload', js(noArg));
    check('failed relays delivered nothing', a1.rec.count('guest:signal_message') === 0 && a1.rec.count('guest:meeting_e2ee_key_request') === 0, js(a1.rec.events.map((e) => e.name)));
    const memberEvt = await ack(a1, 'guest:signal_message', payload);
    check('a member sending a guest event -> forbidden', memberEvt.error === 'forbidden', js(memberEvt));
  }

  // member -> guest relays.
  {
    const msg = { guest_session_id: gA.session_id, encrypted_message: blob(), message_type: 2 };
    const r = await ack(a1, 'participant:signal_message_to_guest', msg);
    const got = await sA.rec.next('participant:signal_message');
    check('participant:signal_message_to_guest: ack ok', r.ok === true, js(r));
    check(
      'the guest gets participant:signal_message from the sending device',
      got?.meeting_id === m1 && got?.participant_user_id === alice.user_id && got?.participant_device_id === String(alice.device_id) && got?.encrypted_message === msg.encrypted_message && got?.message_type === 2,
      js(got),
    );
    const bobMsg = await ack(b1, 'participant:signal_message_to_guest', msg);
    check('a participant not present may message the guest too', bobMsg.ok === true && (await sA.rec.next('participant:signal_message'))?.participant_user_id === bob.user_id, js(bobMsg));
    const resp = { guest_session_id: gA.session_id, ciphertext: blob(), messageType: 3, request_id: 'req_1' };
    const k = await ack(a1, 'participant:meeting_e2ee_key_response', resp);
    const kr = await sA.rec.next('participant:meeting_e2ee_key_response');
    check(
      'participant:meeting_e2ee_key_response relayed',
      k.ok === true && kr?.meeting_id === m1 && kr?.participant_user_id === alice.user_id && kr?.ciphertext === resp.ciphertext && kr?.messageType === 3 && kr?.request_id === 'req_1',
      js([k, kr]),
    );
    const other = await ack(c1, 'participant:signal_message_to_guest', msg);
    check('a member of another meeting -> forbidden', other.error === 'forbidden', js(other));
    const otherG = await ack(a1, 'participant:signal_message_to_guest', { ...msg, guest_session_id: gC.session_id });
    check('to a guest of another meeting -> forbidden', otherG.error === 'forbidden', js(otherG));
    const offline = await ack(a1, 'participant:signal_message_to_guest', { ...msg, guest_session_id: gD.session_id });
    check('to a guest not connected -> recipient_offline', offline.error === 'recipient_offline', js(offline));
    const unknown = await ack(a1, 'participant:signal_message_to_guest', { ...msg, guest_session_id: '0'.repeat(32) });
    check('to an unknown guest session -> not_found', unknown.error === 'not_found', js(unknown));
    const bad = await ack(a1, 'participant:meeting_e2ee_key_response', { ...resp, request_id: 'has space' });
    check('request_id with a space -> invalid_payload', bad.error === 'invalid_payload', js(bad));
    const early = await ack(a1, 'meeting:distributeSenderKeyToGuest', { meetingId: m1, guestSessionId: gA.session_id, senderDeviceId: alice.device_id, encryptedSenderKey: blob() });
    check('sender key to a guest not admitted yet -> forbidden', early.error === 'forbidden', js(early));
    await sleep(200);
    check('the guest got nothing from refused relays', sA.rec.count('participant:signal_message') === 0 && sA.rec.count('meeting:receiveSenderKey') === 0, js(sA.rec.events.map((e) => e.name)));
  }

  // Admission decisions: members told, the guest concerned alone told (INV-6).
  {
    const r = await api(alice, 'POST', `/api/meetings/${m1}/external/${gA.session_id}/admit`);
    check('alice admits gA', r.status === 200, js(r));
    const na = await a1.rec.next('meeting:guest_admitted');
    const nb = await b1.rec.next('meeting:guest_admitted');
    const g = await sA.rec.next('meeting:admission_granted');
    check('members get meeting:guest_admitted', na?.meeting_id === m1 && na?.session_id === gA.session_id && na?.admitted_by === alice.user_id && nb?.session_id === gA.session_id, js([na, nb]));
    check('gA gets meeting:admission_granted', g?.meeting_id === m1 && g?.session_id === gA.session_id && g?.admitted_by === alice.user_id, js(g));
    const rB = await api(null, 'POST', `/api/meetings/${m1}/external/${gB.session_id}/request-admission`, undefined, gB.guest_secret);
    await a1.rec.next('meeting:guest_admission_request');
    await b1.rec.next('meeting:guest_admission_request');
    const dec = await api(bob, 'POST', `/api/meetings/${m1}/external/${gB.session_id}/decline`, { reason: 'not on the list' });
    check('bob declines gB', rB.status === 200 && dec.status === 200, js([rB, dec]));
    const nd = await a1.rec.next('meeting:guest_declined');
    const gd = await sB.rec.next('meeting:admission_denied');
    check('members get meeting:guest_declined', nd?.session_id === gB.session_id && nd?.declined_by === bob.user_id, js(nd));
    check('gB gets meeting:admission_denied with the reason', gd?.session_id === gB.session_id && gd?.declined_by === bob.user_id && gd?.reason === 'not on the list', js(gd));
    const declined = await ack(sB, 'guest:signal_message', { recipient_user_id: alice.user_id, recipient_device_id: String(alice.device_id), encrypted_message: blob(), message_type: 3 });
    check('a declined guest relays nothing -> forbidden', declined.error === 'forbidden', js(declined));
    const toDeclined = await ack(a1, 'participant:signal_message_to_guest', { guest_session_id: gB.session_id, encrypted_message: blob(), message_type: 2 });
    check('relay to a declined guest -> forbidden', toDeclined.error === 'forbidden', js(toDeclined));
  }

  // Sender keys: three members distribute to the admitted guest.
  {
    const sent = [];
    for (const [m, s, event] of [
      [alice, a1, 'meeting:distributeSenderKeyToGuest'],
      [bob, b1, 'meeting:distributeSenderKeyToGuest'],
      [dave, d1, 'meeting:sender_key'],
    ]) {
      const key = blob(120);
      sent.push({ senderId: m.user_id, key });
      const r = await ack(s, event, { meetingId: m1, guestSessionId: gA.session_id, senderDeviceId: m.device_id, encryptedSenderKey: key });
      check(`${event} from a participant to the admitted guest: ack ok`, r.ok === true, js(r));
    }
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await sA.rec.next('meeting:receiveSenderKey'));
    const ok = sent.every((s) => got.some((g) => g?.meetingId === m1 && g?.senderId === s.senderId && g?.encryptedSenderKey === s.key && typeof g?.senderDeviceId === 'string'));
    check('the guest gets three meeting:receiveSenderKey, one per sender', ok, js(got));
    const spoof = await ack(a1, 'meeting:distributeSenderKeyToGuest', { meetingId: m1, guestSessionId: gA.session_id, senderDeviceId: alice.device_id + 1, encryptedSenderKey: blob() });
    check("senderDeviceId not the sender's own -> forbidden", spoof.error === 'forbidden', js(spoof));
    const wrongMeeting = await ack(a1, 'meeting:distributeSenderKeyToGuest', { meetingId: m2, guestSessionId: gA.session_id, senderDeviceId: alice.device_id, encryptedSenderKey: blob() });
    check('meetingId not the guest meeting -> forbidden', wrongMeeting.error === 'forbidden', js(wrongMeeting));
    const outsider = await ack(c1, 'meeting:distributeSenderKeyToGuest', { meetingId: m1, guestSessionId: gA.session_id, senderDeviceId: carol.device_id, encryptedSenderKey: blob() });
    check('a member outside the meeting -> forbidden', outsider.error === 'forbidden', js(outsider));
    for (const event of ['meeting:distributeSenderKeyToGuest', 'meeting:sender_key']) {
      const g = await ack(sA, event, { meetingId: m1, guestSessionId: gA.session_id, senderDeviceId: 1, encryptedSenderKey: blob() });
      check(`${event} from a guest -> forbidden (INV-5)`, g.error === 'forbidden', js(g));
    }
    await sleep(200);
    check('no extra sender keys reached the guest', sA.rec.count('meeting:receiveSenderKey') === 0, js(sA.rec.events.map((e) => e.name)));
  }

  // Isolation: nothing about gA reached the other guests or the member outside the meeting.
  {
    await sleep(200);
    check('a second guest of the same meeting got nothing about gA', nothingAbout(sB.rec, aboutA).length === 0, js(nothingAbout(sB.rec, aboutA)));
    // gC may be told host_present about its own meeting (carol is present there), nothing else.
    const cOther = sC.rec.events.filter((e) => !(e.name === 'meeting:host_present' && e.args[0]?.meeting_id === m2));
    check('a guest of another meeting got nothing', cOther.length === 0, js(cOther));
    check('a member outside the meeting got nothing about gA', nothingAbout(c1.rec, aboutA).length === 0 && c1.rec.events.length === 0, js(c1.rec.events));
    check('the declined guest got nothing beyond its own denial', sB.rec.events.every((e) => e.name === 'meeting:host_present'), js(sB.rec.events));
  }

  // Sender keys end to end with libkeywave (signal_tool): three members fetch the admitted
  // guest's bundle, encrypt their sender-key distribution for it over a 1:1 session and
  // distribute it through keywaved; the guest decrypts all three and then each member's
  // group message.
  await senderKeysWithLibkeywave(m1, [alice, bob, dave], [a1, b1, d1]);

  // prekeys:low: a bundle fetch leaving fewer than 10 one-time pre-keys tells the owner's sockets.
  {
    const { PrivateKey } = await import('@signalapp/libsignal-client');
    const id = PrivateKey.generate();
    const spk = PrivateKey.generate().getPublicKey().serialize();
    const up = [
      await api(dave, 'PUT', '/api/keys/identity', { identity_key: b64(id.getPublicKey().serialize()), registration_id: 77 }),
      await api(dave, 'PUT', '/api/keys/signed-prekey', { id: 1, public_key: b64(spk), signature: b64(id.sign(spk)) }),
      await api(dave, 'POST', '/api/keys/prekeys', { pre_keys: Array.from({ length: 11 }, (_, i) => ({ id: i + 1, public_key: b64(PrivateKey.generate().getPublicKey().serialize()) })) }),
    ];
    check('dave uploads keys with 11 pre-keys', up.every((r) => r.status === 200), js(up));
    const f1 = await api(alice, 'GET', `/api/keys/${dave.user_id}/${dave.device_id}`);
    const none = await d1.rec.next('prekeys:low', 300);
    check('a fetch leaving 10 pre-keys: no prekeys:low', f1.status === 200 && none === undefined, js([f1.status, none]));
    const f2 = await api(alice, 'GET', `/api/keys/${dave.user_id}/${dave.device_id}`);
    const low = await d1.rec.next('prekeys:low');
    check('a fetch leaving 9 pre-keys: the owner device gets prekeys:low {count:9}', f2.status === 200 && low?.count === 9, js([f2.status, low]));
    check('prekeys:low goes to the owner only', a1.rec.count('prekeys:low') === 0 && b1.rec.count('prekeys:low') === 0, '');
  }

  // 100 events per minute per guest socket, then rate_limited.
  {
    const sD = await connected('/external', { session_id: gD.session_id, guest_secret: gD.guest_secret });
    const payload = { recipient_user_id: alice.user_id, recipient_device_id: String(alice.device_id), encrypted_message: blob(16), message_type: 3 };
    const acks = await Promise.all(Array.from({ length: 100 }, () => ack(sD, 'guest:signal_message', payload)));
    check('100 events within a minute are served', acks.every((r) => r.ok === true), js(acks.find((r) => !r.ok)));
    let n = 0;
    while (a1.rec.count('guest:signal_message') < 100 && n++ < 200) await sleep(10);
    check('all 100 relayed', a1.rec.count('guest:signal_message') === 100, String(a1.rec.count('guest:signal_message')));
    a1.rec.clear();
    const over = await ack(sD, 'guest:signal_message', payload);
    const other = await ack(sD, 'no:such-event', {});
    check('the 101st -> rate_limited (any event counts)', over.error === 'rate_limited' && other.error === 'rate_limited', js([over, other]));
    await sleep(200);
    check('a rate-limited event relays nothing', a1.rec.count('guest:signal_message') === 0, '');
    const sD2 = await connected('/external', { session_id: gD.session_id, guest_secret: gD.guest_secret });
    const fresh = await ack(sD2, 'guest:signal_message', payload);
    check('the limit is per socket: another socket of the guest is served', fresh.ok === true, js(fresh));
  }
}

async function senderKeysWithLibkeywave(meetingId, members, memberSockets) {
  const toolPath = path.join(process.env.KW_TOOLS || path.resolve(here, '..', '..', 'build', 'tests', 'interop'), 'signal_tool');
  if (!fs.existsSync(toolPath)) {
    check('signal_tool present for the libkeywave sender-key test', false, toolPath);
    return;
  }
  const { LineTool } = await import('./lib/line_tool.mjs');
  const tool = new LineTool(toolPath);
  try {
    const now_ms = Date.now();
    const g = await tool.ok({ cmd: 'new', name: 'guestE', device: 1, now_ms, role: 'guest' });
    const inv = await api(members[0], 'POST', `/api/meetings/${meetingId}/invitations`, {});
    const reg = await api(null, 'POST', '/api/meetings/external/register', { invitation_token: inv.json?.token, display_name: 'Guest E', ...g.registration });
    check('a guest registers with libkeywave keys', reg.status === 201, js(reg));
    const gE = reg.json;
    await api(null, 'POST', `/api/meetings/${meetingId}/external/${gE.session_id}/request-admission`, undefined, gE.guest_secret);
    const adm = await api(members[0], 'POST', `/api/meetings/${meetingId}/external/${gE.session_id}/admit`);
    check('and is admitted', adm.status === 200, js(adm));
    const sE = await connected('/external', { session_id: gE.session_id, guest_secret: gE.guest_secret });
    for (let i = 0; i < members.length; i++) {
      const m = members[i];
      await tool.ok({ cmd: 'new', name: m.user_id, device: Number(m.device_id), now_ms });
      const bundle = await api(m, 'GET', `/api/meetings/${meetingId}/external/${gE.session_id}/keys`);
      if (bundle.status !== 200) throw new Error(`guest bundle: ${bundle.status} ${js(bundle.json)}`);
      await tool.ok({ cmd: 'process_bundle', as: m.user_id, peer: `guest_${gE.session_id}`, device: 1, bundle: bundle.json });
      const { dist } = await tool.ok({ cmd: 'group_dist', as: m.user_id, group: meetingId });
      const enc = await tool.ok({ cmd: 'encrypt', as: m.user_id, peer: `guest_${gE.session_id}`, device: 1, plaintext_b64: dist });
      const r = await ack(memberSockets[i], 'meeting:distributeSenderKeyToGuest', { meetingId, guestSessionId: gE.session_id, senderDeviceId: m.device_id, encryptedSenderKey: enc.body });
      if (r.ok !== true) throw new Error(`distribute: ${js(r)}`);
    }
    let decrypted = 0;
    for (let i = 0; i < members.length; i++) {
      const ev = await sE.rec.next('meeting:receiveSenderKey');
      if (!ev) break;
      const pt = await tool.call({ cmd: 'decrypt', as: 'guestE', peer: ev.senderId, device: Number(ev.senderDeviceId), type: 3, body: ev.encryptedSenderKey });
      if (pt.ok !== true) continue;
      const p = await tool.call({ cmd: 'group_process', as: 'guestE', group: ev.meetingId, sender: ev.senderId, device: Number(ev.senderDeviceId), dist: pt.plaintext_b64 });
      if (p.ok === true) decrypted++;
    }
    check('the guest decrypts and processes three sender keys with libkeywave', decrypted === members.length, String(decrypted));
    let read = 0;
    for (const m of members) {
      const text = Buffer.from(`hello from ${m.user_id}`).toString('base64');
      const { ct } = await tool.ok({ cmd: 'group_encrypt', as: m.user_id, group: meetingId, plaintext_b64: text });
      const d = await tool.call({ cmd: 'group_decrypt', as: 'guestE', group: meetingId, sender: m.user_id, device: Number(m.device_id), ct });
      if (d.ok === true && d.plaintext_b64 === text) read++;
    }
    check("the guest reads each member's group message", read === members.length, String(read));
    const refused = await tool.call({ cmd: 'group_dist', as: 'guestE', group: meetingId });
    check('libkeywave refuses a sender key for the guest itself (INV-5)', refused.ok === false && refused.error === 'forbidden', js(refused));
    sE.disconnect();
  } catch (e) {
    check('libkeywave sender-key flow', false, e.stack);
  } finally {
    await tool.close();
  }
}

main()
  .catch((e) => check('no exception', false, e.stack))
  .finally(finish);
