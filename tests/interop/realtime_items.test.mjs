// realtime_items.test.mjs — sendItem and sendGroupItem on keywaved's "/" namespace (DESIGN.md
// section 8, INV-7) driven by the stock socket.io-client 4.8.1 (transports: ['websocket']) against
// a real keywaved started here on a free port with a temporary data directory.
//
// Covered: 1:1 delivery to every socket of an online device (and not to the user's other
// device); storage for an offline device with the ack {ok, stored:true}, idempotent on itemId,
// delivered once on its next connect and then gone; order of a stored backlog larger than one
// outbound queue (delivered in passes as the queue drains); stored items surviving a keywaved
// restart; the 1000-item cap per device (rate_limited; group items skip a full device with
// full:1); group fan-out to online devices now and offline ones on their next connect, for a
// channel and for a meeting, never to the sender's device; non-member forbidden, unknown
// channel / user / device not_found; strict payload checks (missing, unknown and mistyped
// fields, size bounds at exactly the limit and one over) answered invalid_payload with nothing
// relayed or stored. Last line: RESULT passed=N failed=M. Env: KW_TOOLS (build/tests/interop) or
// KEYWAVED.

import crypto from 'node:crypto';
import fs from 'node:fs';

import { io } from 'socket.io-client';

import { harness } from './lib/realtime_harness.mjs';

const h = harness('keywave-items-');
const {
  check,
  finish,
  stopServer,
  startServer,
  sleep,
  api,
  cli,
  enroll,
  newMember,
  memberAuth,
  connect,
  connected,
  ack,
  js,
  keywaved,
} = h;

// ---- the tests --------------------------------------------------------------------------

const item = (over = {}) => ({
  recipient: '',
  recipientDeviceId: 1,
  type: 'message',
  payload: 'ciphertext-base64==',
  cipherType: 3,
  itemId: `it_${crypto.randomBytes(6).toString('hex')}`,
  ...over,
});

const group = (channelId, over = {}) => ({
  channelId,
  itemId: `g_${crypto.randomBytes(6).toString('hex')}`,
  type: 'video_e2ee_key_request',
  payload: 'sender-key-ciphertext',
  cipherType: 7,
  timestamp: Date.now(),
  ...over,
});

async function main() {
  if (!fs.existsSync(keywaved)) {
    check('keywaved binary present', false, keywaved);
    return;
  }
  await startServer();
  const alice = await newMember('alice');
  const bob = await newMember('bob');
  const bob2 = await enroll(cli('user', 'code', 'bob'), 'bob-laptop');
  const carol = await newMember('carol');
  const dave = await newMember('dave');

  const a1 = await connected('/', memberAuth(alice));
  const b1 = await connected('/', memberAuth(bob));
  const b1bis = await connected('/', memberAuth(bob)); // a second socket of bob's phone
  const c1 = await connected('/', memberAuth(carol));

  // 1:1 to an online device: every socket of that device, nothing to the user's other device.
  {
    const it = item({ recipient: bob.user_id, recipientDeviceId: bob.device_id });
    const r = await ack(a1, 'sendItem', it);
    check('sendItem online -> ack {ok, delivered:true, stored:false}', r.ok === true && r.delivered === true && r.stored === false, js(r));
    const got = await b1.rec.next('receiveItem');
    check(
      'recipient gets receiveItem {sender, senderDeviceId, type, payload, cipherType, itemId}',
      got?.sender === alice.user_id && got?.senderDeviceId === String(alice.device_id) && got?.type === it.type && got?.payload === it.payload && got?.cipherType === 3 && got?.itemId === it.itemId && Object.keys(got).length === 6,
      js(got),
    );
    const got2 = await b1bis.rec.next('receiveItem');
    check("every socket of the device gets it", got2?.itemId === it.itemId, js(got2));
    const self = await a1.rec.next('receiveItem', 200);
    check('the sender is not sent its own item', self === undefined, js(self));
    const s = await ack(a1, 'sendItem', item({ recipient: bob.user_id, recipientDeviceId: String(bob.device_id) }));
    check('recipientDeviceId as a decimal string is accepted', s.ok === true && s.delivered === true, js(s));
    await b1.rec.next('receiveItem');
    await b1bis.rec.next('receiveItem');
  }

  // 1:1 to an offline device: stored, idempotent, delivered on the next connect, then gone.
  const stored = [];
  {
    const it = item({ recipient: bob.user_id, recipientDeviceId: bob2.device_id, payload: 'first' });
    const r = await ack(a1, 'sendItem', it);
    check('sendItem offline -> ack {ok, stored:true}', r.ok === true && r.stored === true && r.delivered === false, js(r));
    const again = await ack(a1, 'sendItem', it);
    check('the same itemId again -> ok (not stored twice)', again.ok === true && again.stored === true, js(again));
    stored.push(it);
    for (const p of ['second', 'third']) {
      const x = item({ recipient: bob.user_id, recipientDeviceId: bob2.device_id, payload: p });
      await ack(a1, 'sendItem', x);
      stored.push(x);
    }
    const leak = await b1.rec.next('receiveItem', 200);
    check("the user's other (online) device does not get the offline device's items", leak === undefined, js(leak));
    const l1 = await connected('/', memberAuth(bob2));
    await sleep(300);
    const got = l1.rec.events.filter((e) => e.name === 'receiveItem').map((e) => e.args[0]);
    check(
      'on connect the device gets its stored items once, in order',
      got.length === 3 && got.map((g) => g.payload).join(',') === 'first,second,third' && got[0].itemId === it.itemId && got[0].sender === alice.user_id,
      js(got),
    );
    l1.disconnect();
    const l2 = await connected('/', memberAuth(bob2));
    await sleep(300);
    check('delivered items are deleted: the next connect gets nothing', l2.rec.count('receiveItem') === 0, js(l2.rec.events));
    // Online now: live delivery to bob2.
    const live = await ack(a1, 'sendItem', item({ recipient: bob.user_id, recipientDeviceId: bob2.device_id }));
    const lg = await l2.rec.next('receiveItem');
    check('the device online again gets items live', live.delivered === true && lg !== undefined, js([live, lg]));
    l2.disconnect();
  }

  // A backlog larger than one outbound queue (256 frames) arrives whole and in order.
  {
    const N = 300;
    let ok = 0;
    let firstBad = null;
    // The device's previous socket may not be gone on the server yet: probe until an item is
    // stored (probes that still reach the closing socket are delivered live, correctly).
    let probes = 0;
    for (; probes < 100; probes++) {
      const p = await ack(a1, 'sendItem', item({ recipient: bob.user_id, recipientDeviceId: bob2.device_id, payload: 'probe', itemId: `probe_${probes}` }));
      if (p.stored === true) break;
      await sleep(20);
    }
    check('the device is seen offline before the backlog is sent', probes < 100, String(probes));
    for (let i = 0; i < N; i++) {
      const r = await ack(a1, 'sendItem', item({ recipient: bob.user_id, recipientDeviceId: bob2.device_id, payload: `n${i}`, itemId: `bulk_${i}` }));
      if (r.stored === true) ok++;
      else if (firstBad === null) firstBad = `item ${i}: ${js(r)}`;
    }
    check(`${N} items stored for the offline device`, ok === N, `${ok}; first refusal: ${firstBad}`);
    const l3 = await connected('/', memberAuth(bob2));
    for (let t = 0; t < 100 && l3.rec.count('receiveItem') < N + 1; t++) await sleep(50);
    const got = l3.rec.events.filter((e) => e.name === 'receiveItem').map((e) => e.args[0].payload);
    const want = ['probe', ...Array.from({ length: N }, (_, i) => `n${i}`)];
    check(`a ${N}-item backlog is delivered whole, in order, once`, got.join(',') === want.join(','), `${got.length} items`);
    l3.disconnect();
  }

  // Group items: a channel of alice (owner) and bob (two devices); carol is not a member.
  const ch = await api(alice, 'POST', '/api/channels', { name: 'items', type: 'signal' });
  const channelId = ch.json?.channel_id;
  await api(alice, 'POST', `/api/channels/${channelId}/members`, { user_id: bob.user_id });
  {
    const g = group(channelId);
    const r = await ack(a1, 'sendGroupItem', g);
    check('sendGroupItem -> ack {ok, delivered:1, stored:1, full:0} (bob online, bob-laptop offline)', r.ok === true && r.delivered === 1 && r.stored === 1 && r.full === 0, js(r));
    const got = await b1.rec.next('groupItem');
    check(
      'online member device gets groupItem {channel, sender, senderDevice, itemId, type, payload, cipherType, timestamp}',
      got?.channel === channelId && got?.sender === alice.user_id && got?.senderDevice === String(alice.device_id) && got?.itemId === g.itemId && got?.type === g.type && got?.payload === g.payload && got?.cipherType === 7 && got?.timestamp === g.timestamp && Object.keys(got).length === 8,
      js(got),
    );
    const self = await a1.rec.next('groupItem', 200);
    check("the sender's device does not get its own group item", self === undefined, js(self));
    const outsider = await c1.rec.next('groupItem', 200);
    check('a non-member gets nothing', outsider === undefined, js(outsider));
    const again = await ack(a1, 'sendGroupItem', g);
    check('the same group itemId again -> ok', again.ok === true, js(again));
    await b1.rec.next('groupItem');
    const l = await connected('/', memberAuth(bob2));
    await sleep(300);
    const off = l.rec.events.filter((e) => e.name === 'groupItem').map((e) => e.args[0]);
    check('the offline member device gets the group item once on its next connect', off.length === 1 && off[0].itemId === g.itemId && off[0].channel === channelId, js(off));
    const r2 = await ack(a1, 'sendGroupItem', group(channelId));
    const both = [await b1.rec.next('groupItem'), await l.rec.next('groupItem')];
    check('with every device online: delivered to all, stored none', r2.delivered === 2 && r2.stored === 0 && both.every((x) => x !== undefined), js([r2, both]));
    const fb = await ack(c1, 'sendGroupItem', group(channelId));
    check('non-member sendGroupItem -> forbidden', fb.error === 'forbidden', js(fb));
    const nobody = await b1.rec.next('groupItem', 200);
    check('a refused group item reaches no one', nobody === undefined, js(nobody));
    const nf = await ack(a1, 'sendGroupItem', group('chn_000000000000'));
    check('unknown channel -> not_found', nf.error === 'not_found', js(nf));
    l.disconnect();
  }

  // Group items in a meeting: its participants' devices.
  {
    const start = new Date(Date.now() - 60000).toISOString().replace(/\.\d+Z$/, 'Z');
    const end = new Date(Date.now() + 3600000).toISOString().replace(/\.\d+Z$/, 'Z');
    const mt = await api(carol, 'POST', '/api/meetings', { title: 'items', start_time: start, end_time: end });
    const meetingId = mt.json?.meeting_id;
    await api(carol, 'POST', `/api/meetings/${meetingId}/participants`, { user_id: alice.user_id, role: 'member' });
    const r = await ack(a1, 'sendGroupItem', group(meetingId));
    const got = await c1.rec.next('groupItem');
    check('meeting group item reaches the other participant', r.ok === true && r.delivered === 1 && r.stored === 0 && got?.channel === meetingId, js([r, got]));
    const leak = await b1.rec.next('groupItem', 200);
    check('a non-participant of the meeting gets nothing', leak === undefined, js(leak));
    const fb = await ack(b1, 'sendGroupItem', group(meetingId));
    check('non-participant sendGroupItem in a meeting -> forbidden', fb.error === 'forbidden', js(fb));
  }

  // Unknown recipients and invalid payloads: an error ack, nothing relayed or stored.
  {
    const nf1 = await ack(a1, 'sendItem', item({ recipient: bob.user_id, recipientDeviceId: 99 }));
    check('unknown device -> not_found', nf1.error === 'not_found', js(nf1));
    const nf2 = await ack(a1, 'sendItem', item({ recipient: 'usr_0000000000000000', recipientDeviceId: 1 }));
    check('unknown user -> not_found', nf2.error === 'not_found', js(nf2));
    const to = { recipient: bob.user_id, recipientDeviceId: bob.device_id };
    const big = 'x'.repeat(65536);
    const edge = await ack(a1, 'sendItem', item({ ...to, payload: big, itemId: 'i'.repeat(128) }));
    const edgeGot = await b1.rec.next('receiveItem');
    check('payload of exactly 64 KiB and itemId of 128 bytes are accepted', edge.ok === true && edgeGot?.payload.length === 65536, js(edge));
    await b1bis.rec.next('receiveItem');
    const bad = [
      ['no payload', undefined],
      ['not an object', 'hello'],
      ['missing itemId', (({ itemId, ...rest }) => rest)(item(to))],
      ['unknown field', { ...item(to), extra: 1 }],
      ['payload one byte over 64 KiB', item({ ...to, payload: `${big}x` })],
      ['empty payload', item({ ...to, payload: '' })],
      ['payload not a string', item({ ...to, payload: { a: 1 } })],
      ['itemId of 129 bytes', item({ ...to, itemId: 'i'.repeat(129) })],
      ['empty itemId', item({ ...to, itemId: '' })],
      ['cipherType as a string', item({ ...to, cipherType: '3' })],
      ['cipherType 256', item({ ...to, cipherType: 256 })],
      ['cipherType 1.5', item({ ...to, cipherType: 1.5 })],
      ['recipientDeviceId 0', item({ ...to, recipientDeviceId: 0 })],
      ['recipientDeviceId "01"', item({ ...to, recipientDeviceId: '01' })],
      ['recipientDeviceId negative', item({ ...to, recipientDeviceId: -1 })],
      ['recipient a number', item({ ...to, recipient: 5 })],
      ['type with a space', item({ ...to, type: 'a b' })],
      ['type of 65 bytes', item({ ...to, type: 't'.repeat(65) })],
    ];
    for (const [name, payload] of bad) {
      const r = payload === undefined ? await a1.timeout(3000).emitWithAck('sendItem') : await ack(a1, 'sendItem', payload);
      check(`sendItem with ${name} -> invalid_payload`, r.error === 'invalid_payload', js(r));
    }
    const badGroup = [
      ['missing timestamp', (({ timestamp, ...rest }) => rest)(group(channelId))],
      ['timestamp negative', group(channelId, { timestamp: -1 })],
      ['timestamp a string', group(channelId, { timestamp: '1' })],
      ['unknown field', { ...group(channelId), recipient: bob.user_id }],
      ['channelId a number', group(channelId, { channelId: 7 })],
      ['payload over 64 KiB', group(channelId, { payload: `${big}x` })],
      ['itemId of 129 bytes', group(channelId, { itemId: 'i'.repeat(129) })],
    ];
    for (const [name, payload] of badGroup) {
      const r = await ack(a1, 'sendGroupItem', payload);
      check(`sendGroupItem with ${name} -> invalid_payload`, r.error === 'invalid_payload', js(r));
    }
    await sleep(200);
    check('no invalid item was relayed', b1.rec.count('receiveItem') === 0 && b1.rec.count('groupItem') === 0, js(b1.rec.events.map((e) => e.name)));
    const l = await connected('/', memberAuth(bob2));
    await sleep(300);
    check('no invalid item was stored', l.rec.count('receiveItem') === 0 && l.rec.count('groupItem') === 0, js(l.rec.events.map((e) => e.name)));
    l.disconnect();
  }

  // The per-device cap: 1000 stored items, then sendItem is rate_limited; a group item skips
  // the full device and says so (full:1) instead of blocking the channel.
  {
    const erin = await newMember('erin');
    const to = { recipient: erin.user_id, recipientDeviceId: erin.device_id };
    const acks = await Promise.all(Array.from({ length: 1000 }, (_, i) => ack(a1, 'sendItem', item({ ...to, itemId: `cap_${i}` }))));
    check('1000 items stored for one device', acks.every((r) => r.stored === true), js(acks.find((r) => r.stored !== true)));
    const over = await ack(a1, 'sendItem', item({ ...to, itemId: 'cap_over' }));
    check('the 1001st -> rate_limited', over.error === 'rate_limited', js(over));
    const dup = await ack(a1, 'sendItem', item({ ...to, itemId: 'cap_0' }));
    check('a duplicate of a stored item is still ok at the cap', dup.ok === true && dup.stored === true, js(dup));
    const ch2 = await api(alice, 'POST', '/api/channels', { name: 'capped', type: 'signal' });
    await api(alice, 'POST', `/api/channels/${ch2.json?.channel_id}/members`, { user_id: erin.user_id });
    const g = await ack(a1, 'sendGroupItem', group(ch2.json?.channel_id));
    check('group item with a full offline device -> ok, full:1, stored:0', g.ok === true && g.full === 1 && g.stored === 0 && g.delivered === 0, js(g));
    const e1 = await connected('/', memberAuth(erin));
    for (let t = 0; t < 100 && e1.rec.count('receiveItem') < 1000; t++) await sleep(50);
    check('the full device gets its 1000 items on connect, and not the skipped group item', e1.rec.count('receiveItem') === 1000 && e1.rec.count('groupItem') === 0, `${e1.rec.count('receiveItem')} ${e1.rec.count('groupItem')}`);
    e1.disconnect();
  }

  // Stored items survive a restart of keywaved.
  {
    const it = item({ recipient: dave.user_id, recipientDeviceId: dave.device_id, payload: 'durable' });
    const r = await ack(a1, 'sendItem', it);
    check('item stored for a device that never connected', r.stored === true, js(r));
    await sleep(100);
    await stopServer();
    await startServer();
    const d = await connected('/', memberAuth(dave));
    const got = await d.rec.next('receiveItem');
    check('after a restart the device still gets its stored item', got?.payload === 'durable' && got?.itemId === it.itemId, js(got));
    d.disconnect();
  }
}

main()
  .catch((e) => check('no exception', false, e.stack))
  .finally(finish);
