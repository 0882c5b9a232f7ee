// cli_flows.test.mjs — end-to-end flows of the `keywave` CLI with several participants
// (issue 5, part 1): a real keywaved, real CLI processes on loopback, each scenario asserting
// what a user would check.
//   a. a guest that arrives before any host waits, then is let in within 1 s of a host joining
//      (the meeting:host_present push, not the 5 s poll);
//   b. a declined guest: exit 1 with one clear line, no media key, no LiveKit token;
//   c. a guest joining a meeting of three members gets their three sender keys and decrypts
//      each member's group message;
//   d. three members starting at once converge on one media key;
//   e. the first member leaves: a new guest still gets the key of the remaining member; after
//      everyone left, the next session has a new key;
//   f. a member leaves: the others (a guest included) move to epoch 1 and the departed
//      member's key no longer decrypts new frames (--key-file + frame_tool);
//   g. a member that never answers: the guest moves on to the next member; three silent
//      members end the key exchange in a clear error;
//   h. a guest whose pre-keys members' fetches drained below 10 uploads 30 more at once.
// Env: KW_TOOLS (build/tests/interop: frame_tool; finds build/keywaved and build/keywave),
// KW_VERBOSE=1 to see every CLI line, KW_SCENARIOS=a,c to run some scenarios only.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { cliHarness } from './lib/cli_harness.mjs';

const LK_KEY = 'flows-key';
const LK_SECRET = 'flows-secret-flows-secret-flows-0123';
const t = cliHarness('kw-cli-flows-');
const { check, js, sleep } = t;
const toolDir = process.env.KW_TOOLS ?? path.resolve(t.here, '..', '..', 'build', 'tests', 'interop');

const names = (p) => js(p.events.map((e) => e.event));
const last = (p, name) => p.events.filter((e) => e.event === name).at(-1) ?? null;
// The non-empty stderr lines of a CLI run (its errors are `keywave: ...` lines).
const errLines = (p) => p.stderr.split('\n').filter((l) => l.trim() !== '');

// Waits until cond() holds (polled every 50 ms) or ms passed; returns whether it held.
async function until(cond, ms) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) return false;
    await sleep(50);
  }
  return true;
}

// A member enrolled through the CLI, with a name unique in this run (KW_SCENARIOS=c,c works).
let enrolled = 0;
const who = (name) => t.member(`${name}-${++enrolled}`);

async function stopAll(...ps) {
  await Promise.all(ps.map((p) => p.stop('SIGINT')));
}

// ---- (a) a guest before any host ------------------------------------------------------------

async function guestBeforeHost() {
  const alice = await who('alice');
  const meetingId = await t.meeting(alice, 'Early guest');
  const link = await t.invite(alice, meetingId);
  const guest = t.guest(link, 'Early');
  const waiting = await guest.event('waiting_for_host', 15000);
  check('(a) a guest before any host prints waiting_for_host', waiting !== null, names(guest));
  await sleep(1500); // it keeps waiting: no host, so no waiting room yet
  check('(a) without a host the guest stays waiting (no waiting_room)', !guest.events.some((e) => e.event === 'waiting_room') && guest.exit === null, names(guest));

  const host = t.join(alice, meetingId, ['--admit', 'all']);
  const joined = await host.event('joined', 10000);
  const room = await guest.event('waiting_room', 6000);
  const delay = joined && room ? room.at - joined.at : null;
  check('(a) the guest is in the waiting room within 1 s of the host joining', delay !== null && delay <= 1000, `host joined -> waiting_room ${delay} ms`);
  console.log(`     (a) host joined -> guest waiting_room: ${delay} ms`);
  const admitted = await guest.event('admitted', 5000);
  check('(a) the host admits the waiting guest', admitted?.by === alice.user_id, js(admitted));
  const [gk, hk] = [await guest.event('media_key', 10000), await host.event('media_key', 1000)];
  check('(a) the early guest ends with the host media-key fingerprint', gk !== null && gk.fingerprint === hk?.fingerprint, `${js(gk)} vs ${js(hk)}`);
  await stopAll(guest, host);
}

// ---- (b) a declined guest -------------------------------------------------------------------

async function declinedGuest() {
  const alice = await who('alice');
  const meetingId = await t.meeting(alice, 'Closed door');
  const link = await t.invite(alice, meetingId);
  const host = t.join(alice, meetingId, ['--admit', 'none']);
  await host.event('media_key', 10000);
  const guest = t.guest(link, 'Mallory');
  const exit = await Promise.race([guest.done, sleep(20000).then(() => null)]);
  check('(b) a declined guest exits with status 1', exit?.code === 1, js(exit));
  const lines = errLines(guest);
  check('(b) the decline is one clear stderr line', lines.length === 1 && /^keywave: the host declined your request/.test(lines[0]), js(lines));
  check('(b) the guest printed the declined event', guest.events.some((e) => e.event === 'declined'), names(guest));
  check('(b) a declined guest gets no media key and no LiveKit token', !guest.events.some((e) => e.event === 'media_key' || e.event === 'livekit_token' || e.event === 'sender_key'), names(guest));
  const declined = await host.wait((e) => e.event === 'guest_declined', 2000);
  await sleep(300); // the server's notice of the decision follows the REST answer
  const told = host.events.filter((e) => e.event === 'guest_declined');
  check('(b) the host says once that it declined the guest', declined?.by === 'me' && told.length === 1, js(told));
  await stopAll(host, guest);
}

// ---- (c) a guest joins a meeting of three members --------------------------------------------

// Three members of one meeting (alice owns it; bob and carol are added as participants).
async function threeMembers(tag) {
  const alice = await who('alice');
  const bob = await who('bob');
  const carol = await who('carol');
  const meetingId = await t.meeting(alice, `Three (${tag})`);
  await t.addParticipant(alice, meetingId, bob);
  await t.addParticipant(alice, meetingId, carol);
  return { alice, bob, carol, meetingId, all: [alice, bob, carol] };
}

async function midMeetingGuest() {
  const { all, meetingId, alice } = await threeMembers('c');
  const link = await t.invite(alice, meetingId);
  const hosts = [];
  for (const m of all) {
    const p = t.join(m, meetingId, ['--admit', 'all', '--message', `hello from ${m.name}`]);
    hosts.push(p);
    await p.event('media_key', 15000); // one after the other: a meeting in progress
  }
  const fps = hosts.map((p) => last(p, 'media_key')?.fingerprint);
  check('(c) the three members hold one media key', fps[0] && fps.every((f) => f === fps[0]), js(fps));

  const guest = t.guest(link, 'Late');
  await until(() => guest.events.filter((e) => e.event === 'group_message').length >= 3 || guest.exit !== null, 20000);
  const senders = guest.events.filter((e) => e.event === 'sender_key').map((e) => e.sender).sort();
  check('(c) the guest receives three sender keys, one per member', js(senders) === js(all.map((m) => m.user_id).sort()), js(senders));
  const got = guest.events.filter((e) => e.event === 'group_message').map((e) => `${e.sender}=${e.text}`).sort();
  const want = all.map((m) => `${m.user_id}=hello from ${m.name}`).sort();
  check('(c) the guest decrypts the three group messages, the right text per sender', js(got) === js(want), `${js(got)} want ${js(want)}`);
  const admittedBy = (p) => p.events.filter((e) => e.event === 'guest_admitted');
  await until(() => hosts.every((p) => admittedBy(p).length > 0), 2000);
  await sleep(300); // a second line would follow at once
  const told = hosts.map(admittedBy);
  const admitter = guest.events.find((e) => e.event === 'admitted')?.by;
  check('(c) each member says once who admitted the guest (only the admitter says "me")', told.every((l) => l.length === 1) && told.flat().filter((e) => e.by === 'me').length === 1 && told.every((l, i) => l[0]?.by === (all[i].user_id === admitter ? 'me' : admitter)), js(told));
  check('(c) no group message failed to decrypt', !guest.events.some((e) => e.event === 'group_decrypt_failed' || e.event === 'sender_key_failed'), names(guest));
  const gk = await guest.event('media_key', 5000);
  check('(c) the guest holds the meeting media key', gk?.fingerprint === fps[0], `${js(gk)} vs ${fps[0]}`);
  await stopAll(guest, ...hosts);
}

// ---- (d) three members start at once ------------------------------------------------------

// A TCP proxy in front of keywaved that lines up `parties` members' starts: it passes every
// byte through, except that on each WebSocket it holds what the server sends from the ack of
// video:register-participant on, until `parties` WebSockets got theirs; then it releases
// them together. All members then ask video:check-participants before any could confirm a
// key: each finds nobody holding one and creates its own, the case the agreement resolves.
// Server frames are unmasked: the proxy reads their headers to find the ack.
async function startGate(parties) {
  const conns = [];
  let arrived = 0;
  let released = false;
  const release = () => {
    released = true;
    for (const c of conns) {
      for (const f of c.pending.splice(0)) c.client.write(f);
      if (c.buf.length > 0) c.client.write(c.buf); // a partial frame: the rest follows as is
      c.buf = Buffer.alloc(0);
      c.holding = false;
    }
  };
  const server = net.createServer((client) => {
    const up = net.connect(new URL(t.base).port, '127.0.0.1');
    const c = { client, pending: [], holding: false, ws: false, buf: Buffer.alloc(0) };
    conns.push(c);
    client.pipe(up);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    up.on('end', () => client.end());
    up.on('data', (d) => {
      if (released) return client.write(d);
      let data = d;
      if (!c.ws) {
        const head = data.indexOf('\r\n\r\n');
        if (head < 0 || !data.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) return client.write(data);
        c.ws = true;
        client.write(data.subarray(0, head + 4));
        data = data.subarray(head + 4);
      }
      c.buf = Buffer.concat([c.buf, data]);
      for (;;) {
        if (c.buf.length < 2) break;
        let len = c.buf[1] & 0x7f;
        let hdr = 2;
        if (len === 126) [len, hdr] = [c.buf.length >= 4 ? c.buf.readUInt16BE(2) : Infinity, 4];
        else if (len === 127) [len, hdr] = [c.buf.length >= 10 ? Number(c.buf.readBigUInt64BE(2)) : Infinity, 10];
        if (c.buf.length < hdr + len) break;
        const frame = c.buf.subarray(0, hdr + len);
        c.buf = c.buf.subarray(hdr + len);
        if (!released && !c.holding && /^43\d+\[\{.*"joinedAt"/.test(frame.subarray(hdr).toString())) {
          c.holding = true;
          if (++arrived === parties) setImmediate(release);
        }
        if (c.holding) c.pending.push(Buffer.from(frame));
        else client.write(frame);
      }
    });
    client.on('end', () => up.end());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const timer = setTimeout(release, 10000); // never hang the test on a member that did not come
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    get arrived() {
      return arrived;
    },
    close: () => {
      clearTimeout(timer);
      server.close();
      for (const c of conns) c.client.destroy();
    },
  };
}

// A member enrolled through the CLI against another base URL (the gate).
async function memberAt(base, name) {
  const full = `${name}-${++enrolled}`;
  const code = t.cli('user', 'add', full).trim();
  const dataDir = path.join(t.root, `cli-${full}`);
  const r = await t.runDone(['enroll', base, code], { dataDir });
  if (r.code !== 0) throw new Error(`enroll ${full}: ${r.stderr}`);
  return { name: full, dataDir, user_id: r.out.user_id, device_id: String(r.out.device_id) };
}

async function simultaneousStart() {
  const gate = await startGate(3);
  try {
    const all = [await memberAt(gate.base, 'alice'), await memberAt(gate.base, 'bob'), await memberAt(gate.base, 'carol')];
    const meetingId = await t.meeting(all[0], 'At once');
    await t.addParticipant(all[0], meetingId, all[1]);
    await t.addParticipant(all[0], meetingId, all[2]);
    const hosts = all.map((m) => t.join(m, meetingId, ['--admit', 'all'])); // spawned together
    const fp = () => hosts.map((p) => last(p, 'media_key')?.fingerprint ?? null);
    const agreed = await until(() => fp()[0] !== null && fp().every((f) => f === fp()[0]), 20000);
    const creators = hosts.filter((p) => p.events.find((e) => e.event === 'joined')?.key_holders === 0).length;
    const made = new Set(hosts.map((p) => p.events.find((e) => e.event === 'media_key')?.fingerprint));
    console.log(`     (d) ${creators} members created a key (${made.size} different first keys)`);
    // Normally all three; a member the CPU load delays past another's confirmation asks
    // for the key instead. Two different keys are enough for the case under test.
    check('(d) started at once, members find no key holder and create different keys', gate.arrived === 3 && creators >= 2 && made.size >= 2, `arrived ${gate.arrived}, ${creators} creators, ${made.size} first keys`);
    check('(d) three members started at once converge on one media key', agreed, `${js(fp())} ${hosts.map(names).join(' ')}`);
    await sleep(1000); // and stay there: no later key splits them again
    const after = fp();
    check('(d) the agreed key is stable, nobody failed', after.every((f) => f === after[0]) && hosts.every((p) => p.exit === null), `${js(after)} ${js(hosts.map((p) => p.exit))}`);

    // Then one leaves: the two others end on one epoch-1 key.
    await hosts[0].stop('SIGINT');
    const rest = hosts.slice(1);
    const fp1 = () => rest.map((p) => last(p, 'media_key'));
    const moved = await until(() => fp1().every((k) => k?.epoch === 1 && k.fingerprint === fp1()[0].fingerprint), 10000);
    await sleep(500);
    const rotators = rest.filter((p) => p.events.some((e) => e.event === 'rotated')).length;
    console.log(`     (d) after a leave: ${rotators} member(s) rotated, keys ${js(fp1().map((k) => [k?.epoch, k?.fingerprint]))}`);
    check('(d) after one of them leaves, the two others converge on one epoch-1 key', moved && fp1().every((k) => k?.epoch === 1 && k.fingerprint === fp1()[0].fingerprint), js(fp1()));
    const order = (await t.api(t.credentials(all[1]), 'GET', `/api/meetings/${meetingId}/participants?status=joined`)).json?.participants ?? [];
    // media_key.h's order: smaller joinedAt, then smaller peer id "<user_id>:<device_id>".
    const rank = (p) => `${p.joined_at} ${p.user_id}:${p.device_id}`;
    const first = order.filter((p) => p.user_id).sort((a, b) => (rank(a) < rank(b) ? -1 : 1))[0];
    const oldest = all.findIndex((m) => m.user_id === first?.user_id);
    check('(d) only the longest-present remaining member rotates', rotators === 1 && oldest > 0 && hosts[oldest].events.some((e) => e.event === 'rotated'), `${rotators} rotated; present ${js(order)}`);
    await stopAll(...hosts);
  } finally {
    gate.close();
  }
}

// ---- (e) the first member leaves; the next session ---------------------------------------------

async function firstLeaves() {
  const alice = await who('alice');
  const bob = await who('bob');
  const meetingId = await t.meeting(alice, 'Handover');
  await t.addParticipant(alice, meetingId, bob);
  const link = await t.invite(alice, meetingId, ['--max-uses', '5']);
  const a = t.join(alice, meetingId, ['--admit', 'all']);
  const k0 = await a.event('media_key', 15000);
  const b = t.join(bob, meetingId, ['--admit', 'all']);
  const bk0 = await b.event('media_key', 15000);
  check('(e) the second member gets the first one\'s key', bk0 !== null && bk0.fingerprint === k0?.fingerprint, `${js(bk0)} vs ${js(k0)}`);

  await a.stop('SIGINT');
  check('(e) the first member leaves cleanly', a.exit?.code === 0, js(a.exit) + a.stderr);
  await b.wait((e) => e.event === 'media_key' && e.epoch === 1, 10000); // the remaining one rotates
  const bKey = last(b, 'media_key');
  const guest = t.guest(link, 'After');
  const gk = await guest.event('media_key', 20000);
  check('(e) after the first member left, a new guest gets the remaining member\'s key', gk !== null && gk.fingerprint === last(b, 'media_key')?.fingerprint, `${js(gk)} vs ${js(bKey)} ${names(guest)}`);

  await stopAll(guest, b);
  const before = new Set([...a.events, ...b.events, ...guest.events].filter((e) => e.event === 'media_key').map((e) => e.fingerprint));
  await sleep(500);
  const a2 = t.join(alice, meetingId, ['--admit', 'all']);
  const n0 = await a2.event('media_key', 15000);
  const b2 = t.join(bob, meetingId, ['--admit', 'all']);
  const n1 = await b2.event('media_key', 15000);
  check('(e) the next session creates a new key (epoch 0)', a2.events.find((e) => e.event === 'joined')?.key_holders === 0 && n0?.epoch === 0, js(a2.events));
  check('(e) the next session\'s key differs from every key of the last one', n0 !== null && !before.has(n0.fingerprint), `${n0?.fingerprint} vs ${js([...before])}`);
  check('(e) both members of the next session hold it', n1 !== null && n1.fingerprint === n0?.fingerprint, `${js(n1)} vs ${js(n0)}`);
  await stopAll(a2, b2);
}

// ---- (f) a member leaves: rotation, and the old key no longer decrypts ------------------------

// frame_tool (tests/interop/frame_tool.c): one command line in, one `ok ...`/`err ...` line out.
function frameTool() {
  const proc = spawn(path.join(toolDir, 'frame_tool'), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  proc.on('exit', () => waiting.splice(0).forEach((w) => w('err exited')));
  proc.on('error', () => waiting.splice(0).forEach((w) => w('err not_started')));
  createInterface({ input: proc.stdout }).on('line', (line) => waiting.shift()?.(line));
  return {
    cmd: (line) => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve('err exited');
      waiting.push(resolve);
      proc.stdin.write(line + '\n');
    }),
    close: () => proc.stdin.end(),
  };
}

// A frame cryptor holding the media key of a --key-file as slot 0.
async function cryptorFor(keyFile) {
  const tool = frameTool();
  const k = t.readKeyFile(keyFile);
  const r = await tool.cmd(`keyraw 0 ${Buffer.from(k?.key ?? '', 'base64').toString('hex')}`);
  if (r !== 'ok') throw new Error(`keyraw: ${r}`);
  return tool;
}

async function memberLeaves() {
  const { alice, bob, carol, meetingId, all } = await threeMembers('f');
  const link = await t.invite(alice, meetingId);
  const files = Object.fromEntries(all.map((m) => [m.name, path.join(t.root, `${m.name}.key.json`)]));
  const hosts = {};
  for (const m of all) {
    hosts[m.name] = t.join(m, meetingId, ['--admit', 'all', '--key-file', files[m.name]]);
    await hosts[m.name].event('media_key', 15000);
  }
  const guest = t.guest(link, 'Witness');
  const g0 = await guest.event('media_key', 20000);
  const k0 = t.readKeyFile(files[bob.name]);
  check('(f) the key file holds the media key (epoch 0, the fingerprint printed), mode 0600', k0?.epoch === 0 && t.keyFingerprint(k0.key) === g0?.fingerprint && (fs.statSync(files[bob.name]).mode & 0o777) === 0o600, `${js(k0?.epoch)} ${js(g0)}`);

  await hosts[bob.name].stop('SIGINT');
  const [a1, c1, gk1] = await Promise.all([
    hosts[alice.name].wait((e) => e.event === 'media_key' && e.epoch === 1, 10000),
    hosts[carol.name].wait((e) => e.event === 'media_key' && e.epoch === 1, 10000),
    guest.wait((e) => e.event === 'media_key' && e.epoch === 1, 10000),
  ]);
  check('(f) after a member left, the longest-present member rotates', hosts[alice.name].events.some((e) => e.event === 'rotated') && !hosts[carol.name].events.some((e) => e.event === 'rotated'), `${names(hosts[alice.name])} ${names(hosts[carol.name])}`);
  check('(f) the remaining members and the guest move to epoch 1, one key', a1 !== null && c1?.fingerprint === a1.fingerprint && gk1?.fingerprint === a1.fingerprint && a1.fingerprint !== g0?.fingerprint, js([a1, c1, gk1]));
  await until(() => t.readKeyFile(files[carol.name])?.epoch === 1, 2000);
  const ka = t.readKeyFile(files[alice.name]);
  const kb = t.readKeyFile(files[bob.name]);
  const kc = t.readKeyFile(files[carol.name]);
  check('(f) the key files follow: epoch 1 for the remaining members, epoch 0 left with the departed one', ka?.epoch === 1 && kc?.epoch === 1 && kb?.epoch === 0 && t.keyFingerprint(ka.key) === a1?.fingerprint, js([ka?.epoch, kb?.epoch, kc?.epoch]));

  const plain = Buffer.alloc(60, 0).map((_, i) => (i * 7 + 1) & 0xff).toString('hex');
  const [enc, decA, decB, decC] = await Promise.all([files[alice.name], files[alice.name], files[bob.name], files[carol.name]].map(cryptorFor));
  const frame = await enc.cmd(`encc key 1234 90000 ${plain}`);
  check('(f) a frame encrypts with the new key', frame.startsWith('ok '), frame);
  const hex = frame.slice(3);
  const [ra, rb, rc] = await Promise.all([decA, decB, decC].map((d) => d.cmd(`dec key ${hex}`)));
  const old = await decB.cmd(`encc key 1234 90000 ${plain}`);
  const control = await decB.cmd(`dec key ${old.slice(3)}`);
  check("(f) the departed member's key no longer decrypts new frames (while it still decrypts its own)", rb.startsWith('err ') && control === `ok ${plain}`, `${rb} / ${control.slice(0, 40)}`);
  check('(f) the remaining members decrypt new frames', ra === `ok ${plain}` && rc === `ok ${plain}`, `${ra.slice(0, 40)} ${rc.slice(0, 40)}`);
  check("(f) the guest's key is the one that decrypts (same fingerprint as the key file)", gk1?.fingerprint === t.keyFingerprint(kc?.key ?? ''), `${gk1?.fingerprint}`);
  for (const d of [enc, decA, decB, decC]) d.close();
  await stopAll(guest, hosts[alice.name], hosts[carol.name]);
}

// ---- (g) members that never answer ----------------------------------------------------------

const gaps = (p) => {
  const at = p.events.filter((e) => e.event === 'key_requested').map((e) => e.at);
  return at.slice(1).map((x, i) => x - at[i]);
};

async function silentMembers() {
  // One silent member present first, then a real CLI host.
  const alice = await who('alice');
  const dave = await who('dave');
  const meetingId = await t.meeting(alice, 'Silent');
  await t.addParticipant(alice, meetingId, dave);
  const link = await t.invite(alice, meetingId, ['--max-uses', '5']);
  const silent = await t.silentMember(dave, meetingId);
  await sleep(50); // joined_at is kept to the millisecond: dave is strictly the longest present
  const host = t.join(alice, meetingId, ['--admit', 'all']);
  const hk = await host.event('media_key', 15000);
  const guest = t.guest(link, 'Patient');
  const gk = await guest.event('media_key', 25000);
  const asked = guest.events.filter((e) => e.event === 'key_requested').map((e) => e.from);
  const daveId = `${dave.user_id}:${dave.device_id}`;
  const aliceId = `${alice.user_id}:${alice.device_id}`;
  check('(g) the guest asks the longest-present member (the silent one) first', asked[0] === daveId, js(asked));
  check('(g) the guest still gets the real host\'s media key', gk !== null && gk.fingerprint === hk?.fingerprint, `${js(gk)} vs ${js(hk)} ${names(guest)}`);
  const adm = guest.events.find((e) => e.event === 'admitted');
  console.log(`     (g) key requests ${js(asked)}, gaps ${js(gaps(guest))} ms, admitted -> media_key ${gk && adm ? gk.at - adm.at : null} ms`);
  if (asked.length > 1)
    check('(g) the guest moves on to the real host within ~5 s', asked[1] === aliceId && gaps(guest)[0] >= 4500 && gaps(guest)[0] <= 6000, js(gaps(guest)));
  else
    check('(g) the guest holds the key within ~5 s of admission', gk !== null && adm && gk.at - adm.at <= 6000, js(guest.events));
  await stopAll(guest, host);
  silent.disconnect();

  // Three silent members only: the guest gives up after three failures, with a clear error.
  const owner = await who('owner');
  const quiet = [await who('q1'), await who('q2'), await who('q3')];
  const m2 = await t.meeting(owner, 'Nobody answers');
  for (const q of quiet) await t.addParticipant(owner, m2, q);
  const link2 = await t.invite(owner, m2);
  const sockets = [];
  for (const q of quiet) {
    sockets.push(await t.silentMember(q, m2));
    await sleep(20);
  }
  const lonely = t.guest(link2, 'Lonely');
  const room = await lonely.event('waiting_room', 20000);
  const sid = (await t.api(t.credentials(owner), 'GET', `/api/meetings/${m2}/external/waiting`)).json?.waiting?.[0]?.session_id;
  const adm2 = await t.api(t.credentials(quiet[0]), 'POST', `/api/meetings/${m2}/external/${sid}/admit`);
  check('(g) a silent member admits the guest through the API', room !== null && adm2.status === 200, `${js(room)} ${adm2.status} ${js(adm2.json)}`);
  const exit = await Promise.race([lonely.done, sleep(25000).then(() => null)]);
  const asked2 = lonely.events.filter((e) => e.event === 'key_requested').map((e) => e.from);
  const want = quiet.map((q) => `${q.user_id}:${q.device_id}`);
  check('(g) the guest asks the three silent members in joining order, ~5 s apart', js(asked2) === js(want) && gaps(lonely).every((g) => g >= 4500 && g <= 6000), `${js(asked2)} gaps ${js(gaps(lonely))}`);
  console.log(`     (g) three silent members: key requests ${gaps(lonely).length + 1}, gaps ${js(gaps(lonely))} ms`);
  const lines = errLines(lonely);
  check('(g) three failures end in a clear error: exit 1, one stderr line about the key exchange', exit?.code === 1 && lines.length === 1 && /^keywave: .*key exchange/.test(lines[0]), `${js(exit)} ${js(lines)}`);
  check('(g) no media key without an answer', !lonely.events.some((e) => e.event === 'media_key' || e.event === 'livekit_token'), names(lonely));
  for (const s of sockets) s.disconnect();
}

// ---- (h) a guest's pre-keys drained below 10 ------------------------------------------------

async function drainedPreKeys() {
  const alice = await who('alice');
  const meetingId = await t.meeting(alice, 'Drain');
  const link = await t.invite(alice, meetingId);
  const host = t.join(alice, meetingId, ['--admit', 'all']);
  await host.event('media_key', 15000);
  const guest = t.guest(link, 'Drained');
  await guest.event('media_key', 20000);
  const sid = guest.events.find((e) => e.event === 'livekit_token')?.identity?.replace(/^guest_/, '') ??
    host.events.find((e) => e.event === 'guest_admitted')?.session_id;
  // More devices of alice: 3 served fetches per minute per (device, guest).
  const devices = [];
  for (let i = 0; i < 9; i++) devices.push(await t.enroll(t.cli('user', 'code', alice.name).trim(), `drain-${i}`));
  const target = `/api/meetings/${meetingId}/external/${sid}/keys`;
  const fetches = [];
  let uploaded = null;
  let trigger = null;
  for (const dev of devices) {
    for (let i = 0; i < 3 && uploaded === null; i++) {
      const r = await t.api(dev, 'GET', target);
      if (r.status !== 200) throw new Error(`bundle fetch ${fetches.length + 1}: ${r.status} ${js(r.json)}`);
      fetches.push({ at: Date.now(), id: r.json?.one_time_pre_key?.id ?? null });
      // From the 20th fetch on the guest may hold fewer than 10 (the host took one or none):
      // the prekeys:low push should bring a new batch within a moment, not the 30 s check.
      if (fetches.length >= 20) {
        uploaded = await guest.event('prekeys_uploaded', 3000);
        if (uploaded) trigger = fetches.at(-1);
      }
    }
    if (uploaded) break;
  }
  const delay = uploaded && trigger ? uploaded.at - trigger.at : null;
  console.log(`     (h) ${fetches.length} fetches (ids ${fetches[0]?.id}..${fetches.at(-1)?.id}), fetch -> prekeys_uploaded ${delay} ms, guest age ${uploaded ? uploaded.at - guest.started : null} ms`);
  check('(h) the guest uploads 30 pre-keys when member fetches drain it below 10', uploaded?.uploaded === 30, `${js(uploaded)} after ${fetches.length} fetches`);
  check('(h) the upload follows the draining fetch at once (prekeys:low, not the 30 s check)', delay !== null && delay <= 1000 && uploaded.at - guest.started < 30000, `${delay} ms`);
  check('(h) the server holds at least 30 of the guest\'s pre-keys after the upload', uploaded?.count >= 30, js(uploaded));
  const more = await t.api(devices.at(-1), 'GET', target);
  check('(h) a later fetch is served a one-time pre-key of the new batch', more.status === 200 && more.json?.one_time_pre_key !== null && more.json?.one_time_pre_key?.id > (fetches.at(-1)?.id ?? Infinity), `${more.status} ${js(more.json?.one_time_pre_key?.id)}`);
  await stopAll(guest, host);
}

// ---- main -----------------------------------------------------------------------------------

const scenarios = { a: guestBeforeHost, b: declinedGuest, c: midMeetingGuest, d: simultaneousStart, e: firstLeaves, f: memberLeaves, g: silentMembers, h: drainedPreKeys };
const only = process.env.KW_SCENARIOS ? process.env.KW_SCENARIOS.split(',') : Object.keys(scenarios);
try {
  await t.startServer({ LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: LK_KEY, LIVEKIT_API_SECRET: LK_SECRET });
  for (const k of only) {
    const t0 = Date.now();
    try {
      await scenarios[k]();
    } catch (e) {
      check(`(${k}) no exception`, false, e.stack);
    }
    if (process.env.KW_VERBOSE) console.log(`     (${k}) took ${Date.now() - t0} ms`);
  }
  // Under SANITIZE=1 the CLI is instrumented too: none of its runs may report.
  const reports = t.procs.filter((p) => /AddressSanitizer|LeakSanitizer|runtime error/.test(p.stderr));
  check('no sanitizer report from the CLI processes', reports.length === 0, reports.map((p) => p.stderr).join('\n').slice(0, 2000));
} catch (e) {
  check('no exception', false, e.stack);
}
await t.finish();
