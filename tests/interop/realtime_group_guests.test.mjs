// realtime_group_guests.test.mjs — sendGroupItem of a meeting reaches the meeting's admitted
// guests connected on /external (api.md sendGroupItem, server/rt_items.c to_admitted_guests),
// driven by the stock socket.io-client 4.8.1 against a real keywaved started here.
//
// Meeting M1 (alice owner, bob participant) with guests: gA admitted (two sockets), gW waiting,
// gD declined, gL admitted but not connected when the first item goes; meeting M2 (carol) with
// gX admitted. Covered: the ack counts the admitted connected guests ("guests": 1 per guest
// session, however many sockets), every socket of the admitted guest gets the same groupItem
// the members get; never a waiting or declined guest of the same meeting nor a guest of another
// meeting (INV-6); live only (a guest connecting later gets no backlog); a channel (non-meeting)
// group item and a refused item reach no guest; a guest cannot send group items (INV-5); after
// its session is deleted a guest is no longer counted. Deleting the meeting sends
// meeting:ended to its connected members and guests only.
// Last line: RESULT passed=N failed=M. Env: KW_TOOLS (build/tests/interop) or KEYWAVED.

import crypto from 'node:crypto';
import fs from 'node:fs';

import { harness } from './lib/realtime_harness.mjs';

const h = harness('keywave-group-guests-');
const { check, finish, startServer, registerGuest, api, newMember, memberAuth, connect, connected, ack, js, keywaved } = h;

const b64 = (b) => Buffer.from(b).toString('base64');

const group = (channelId, over = {}) => ({
  channelId,
  itemId: `g_${crypto.randomBytes(6).toString('hex')}`,
  type: 'message',
  payload: b64(crypto.randomBytes(40)),
  cipherType: 7,
  timestamp: Date.now(),
  ...over,
});

const guestAuth = (g) => ({ session_id: g.session_id, guest_secret: g.guest_secret });

async function main() {
  if (!fs.existsSync(keywaved)) {
    check('keywaved binary present', false, keywaved);
    return;
  }
  await startServer();
  const alice = await newMember('alice');
  const bob = await newMember('bob');
  const carol = await newMember('carol');

  const start = new Date(Date.now() - 60000).toISOString().replace(/\.\d+Z$/, 'Z');
  const end = new Date(Date.now() + 3600000).toISOString().replace(/\.\d+Z$/, 'Z');
  const m1 = (await api(alice, 'POST', '/api/meetings', { title: 'one', start_time: start, end_time: end, allow_external: true })).json?.meeting_id;
  const m2 = (await api(carol, 'POST', '/api/meetings', { title: 'two', start_time: start, end_time: end, allow_external: true })).json?.meeting_id;
  const addBob = await api(alice, 'POST', `/api/meetings/${m1}/participants`, { user_id: bob.user_id, role: 'member' });
  check('setup: two meetings, bob a participant of M1', typeof m1 === 'string' && typeof m2 === 'string' && addBob.status < 300, js([m1, m2, addBob]));

  const a1 = await connected('/', memberAuth(alice));
  const b1 = await connected('/', memberAuth(bob));
  const c1 = await connected('/', memberAuth(carol));
  const reg = [await ack(a1, 'video:register-participant', { channelId: m1 }), await ack(c1, 'video:register-participant', { channelId: m2 })];
  check('setup: alice present in M1, carol in M2', reg.every((r) => r.ok === true), js(reg));

  const gA = await registerGuest(alice, m1, 'Admitted');
  const gW = await registerGuest(alice, m1, 'Waiting');
  const gD = await registerGuest(alice, m1, 'Declined');
  const gL = await registerGuest(alice, m1, 'Later');
  const gX = await registerGuest(carol, m2, 'Other meeting');
  const decide = async (m, meetingId, g, what) => (await api(m, 'POST', `/api/meetings/${meetingId}/external/${g.session_id}/${what}`)).status;
  const decisions = [await decide(alice, m1, gA, 'admit'), await decide(alice, m1, gD, 'decline'), await decide(alice, m1, gL, 'admit'), await decide(carol, m2, gX, 'admit')];
  check('setup: gA, gL admitted, gD declined in M1; gX admitted in M2', decisions.every((s) => s === 200), js(decisions));

  const sA = await connected('/external', guestAuth(gA));
  const sA2 = await connected('/external', guestAuth(gA)); // a second tab of the same guest
  const sW = await connected('/external', guestAuth(gW));
  // api.md: CONNECT /external needs an unexpired session, whatever its admission state.
  const dConn = await connect('/external', guestAuth(gD));
  check('the declined guest may still connect on /external', dConn.socket && !dConn.error, js(dConn.error));
  const sD = dConn.socket;
  const sX = await connected('/external', guestAuth(gX));
  const bystanders = [
    ['the waiting guest of the same meeting', sW],
    ['the guest of another meeting (INV-6)', sX],
    ['the declined guest of the same meeting', sD],
  ];
  const noGroupItem = async (label) => {
    for (const [who, s] of bystanders) {
      const got = await s.rec.next('groupItem', 150);
      check(`${label}: ${who} gets nothing`, got === undefined, js(got));
    }
  };

  // A meeting item reaches the admitted connected guest, on every socket, as the members get it.
  {
    const g = group(m1);
    const r = await ack(a1, 'sendGroupItem', g);
    check('meeting sendGroupItem -> ack {ok, delivered:1, stored:0, full:0, guests:1}', r.ok === true && r.delivered === 1 && r.stored === 0 && r.full === 0 && r.guests === 1, js(r));
    const member = await b1.rec.next('groupItem');
    const guest = await sA.rec.next('groupItem');
    const guest2 = await sA2.rec.next('groupItem');
    check(
      'the admitted guest gets groupItem {channel, sender, senderDevice, itemId, type, payload, cipherType, timestamp}',
      guest?.channel === m1 && guest?.sender === alice.user_id && guest?.senderDevice === String(alice.device_id) && guest?.itemId === g.itemId && guest?.type === g.type && guest?.payload === g.payload && guest?.cipherType === 7 && guest?.timestamp === g.timestamp && Object.keys(guest).length === 8,
      js(guest),
    );
    check('the guest gets exactly what the member device gets', member !== undefined && js(member) === js(guest), js([member, guest]));
    check("every /external socket of the admitted guest gets it (counted once in 'guests')", guest2?.itemId === g.itemId, js(guest2));
    check('the admitted guest gets it once per socket', (await sA.rec.next('groupItem', 150)) === undefined, '');
    await noGroupItem('meeting item');
  }

  // A participant that is not present may send too; the guests are counted the same.
  {
    const r = await ack(b1, 'sendGroupItem', group(m1));
    const got = await sA.rec.next('groupItem');
    await sA2.rec.next('groupItem');
    await a1.rec.next('groupItem');
    check("a non-present participant's meeting item reaches the guest too (guests:1)", r.ok === true && r.guests === 1 && got?.sender === bob.user_id, js([r, got]));
  }

  // Live only: gL (admitted) connects after an item was sent and gets no backlog; from then on
  // it is counted.
  {
    const before = group(m1);
    await ack(a1, 'sendGroupItem', before);
    await sA.rec.next('groupItem');
    await sA2.rec.next('groupItem');
    await b1.rec.next('groupItem');
    const sL = await connected('/external', guestAuth(gL));
    const late = await sL.rec.next('groupItem', 300);
    check('an admitted guest connecting later gets no stored group item (live only)', late === undefined, js(late));
    const g = group(m1);
    const r = await ack(a1, 'sendGroupItem', g);
    const got = await sL.rec.next('groupItem');
    await sA.rec.next('groupItem');
    await sA2.rec.next('groupItem');
    await b1.rec.next('groupItem');
    check('two admitted connected guests -> guests:2, both get it', r.guests === 2 && got?.itemId === g.itemId, js([r, got]));
    sL.disconnect();
  }

  // Another meeting's item reaches its own admitted guest only.
  {
    const g = group(m2);
    const r = await ack(c1, 'sendGroupItem', g);
    const got = await sX.rec.next('groupItem');
    check("M2's item reaches M2's admitted guest (guests:1)", r.ok === true && r.guests === 1 && got?.itemId === g.itemId && got?.channel === m2, js([r, got]));
    for (const [who, s] of [['the admitted guest of M1', sA], ['the waiting guest of M1', sW]]) {
      const leak = await s.rec.next('groupItem', 150);
      check(`M2's item: ${who} gets nothing`, leak === undefined, js(leak));
    }
  }

  // A channel (non-meeting) group item reaches no guest, even one whose members are the same.
  {
    const ch = await api(alice, 'POST', '/api/channels', { name: 'guests', type: 'signal' });
    const channelId = ch.json?.channel_id;
    await api(alice, 'POST', `/api/channels/${channelId}/members`, { user_id: bob.user_id });
    const r = await ack(a1, 'sendGroupItem', group(channelId));
    const member = await b1.rec.next('groupItem');
    check('channel sendGroupItem -> ack guests:0, the member gets it', r.ok === true && r.guests === 0 && member?.channel === channelId, js([r, member]));
    for (const [who, s] of [['the admitted guest of M1', sA], ...bystanders]) {
      const leak = await s.rec.next('groupItem', 150);
      check(`channel item: ${who} gets nothing`, leak === undefined, js(leak));
    }
  }

  // Refused items reach no guest; guests cannot send group items (INV-5).
  {
    const fb = await ack(c1, 'sendGroupItem', group(m1));
    check('a non-participant sendGroupItem in M1 -> forbidden', fb.error === 'forbidden', js(fb));
    const bad = await ack(a1, 'sendGroupItem', group(m1, { cipherType: 256 }));
    check('an invalid payload -> invalid_payload', bad.error === 'invalid_payload', js(bad));
    const leak = await sA.rec.next('groupItem', 150);
    check('a refused item reaches no guest', leak === undefined, js(leak));
    const fromGuest = await ack(sA, 'sendGroupItem', group(m1));
    check('sendGroupItem from /external -> forbidden (guests are receive-only)', fromGuest.error === 'forbidden', js(fromGuest));
    const members = [await a1.rec.next('groupItem', 150), await b1.rec.next('groupItem', 150)];
    check("a guest's refused group item reaches no member", members.every((x) => x === undefined), js(members));
  }

  // A guest that left (DELETE) is no longer counted nor reached.
  {
    const del = await api(null, 'DELETE', `/api/meetings/external/session/${gA.session_id}`, undefined, gA.guest_secret);
    check('gA deletes its session', del.status === 200, js(del));
    const r = await ack(a1, 'sendGroupItem', group(m1));
    await b1.rec.next('groupItem');
    const after = [await sA.rec.next('groupItem', 150), await sA2.rec.next('groupItem', 150)];
    check('after DELETE the guest is not counted (guests:0) and gets nothing', r.ok === true && r.guests === 0 && after.every((x) => x === undefined), js([r, after]));
  }

  // Deleting a meeting tells who is still connected to it: meeting:ended (api.md DELETE
  // /api/meetings/:id), to its members (room or present) and its guests, nobody else.
  {
    const notOwner = await api(bob, 'DELETE', `/api/meetings/${m1}`);
    const early = await sW.rec.next('meeting:ended', 150);
    check('a participant who is not the owner cannot delete: 403, nobody told', notOwner.status === 403 && early === undefined, js([notOwner.status, early]));
    const jr = await ack(b1, 'meeting:join-room', { meeting_id: m1 });
    const del = await api(alice, 'DELETE', `/api/meetings/${m1}`);
    check('the owner deletes M1', del.status === 200 && jr.ok === true, js([del, jr]));
    const got = { waiting: await sW.rec.next('meeting:ended'), declined: await sD.rec.next('meeting:ended'), present: await a1.rec.next('meeting:ended'), room: await b1.rec.next('meeting:ended') };
    check('meeting:ended {meeting_id} reaches the waiting and declined guests, the present owner and the member in the room', Object.values(got).every((e) => e?.meeting_id === m1), js(got));
    const none = [await sX.rec.next('meeting:ended', 200), await c1.rec.next('meeting:ended', 150)];
    check('meeting:ended reaches no guest or member of another meeting', none.every((x) => x === undefined), js(none));
  }
}

main()
  .catch((e) => check('no exception', false, e.stack))
  .finally(finish);
