// cli_e2e.test.mjs — end-to-end tests of the `keywave` CLI (issue 5): a real keywaved, real
// CLI processes on loopback, each case asserting what the user would check.
//   - host + guest: the guest ends with the host's media-key fingerprint and a LiveKit token
//     that livekit-server-sdk's TokenVerifier accepts, with identity guest_<session>;
//   - CLI basics: usage errors exit 2 with one line, not enrolled / bad link / unknown meeting
//     exit 1 with one clear line, state files are 0600 in a 0700 directory.
// Env: KW_TOOLS (finds build/keywaved and build/keywave), KW_VERBOSE=1 to see every line.

import fs from 'node:fs';
import path from 'node:path';

import { TokenVerifier } from 'livekit-server-sdk';

import { cliHarness } from './lib/cli_harness.mjs';

const LK_KEY = 'e2e-key';
const LK_SECRET = 'e2e-secret-e2e-secret-e2e-secret-0123';
const lkEnv = { LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: LK_KEY, LIVEKIT_API_SECRET: LK_SECRET };
const t = cliHarness('kw-cli-e2e-');
const { check, js } = t;

async function hostAndGuest() {
  const alice = await t.member('alice');
  const meetingId = await t.meeting(alice, 'Weekly');
  const link = await t.invite(alice, meetingId, ['--max-uses', '3']);
  check('invite prints a guest link of this server', link.startsWith(`${t.base}/join/meeting/`), link);

  const host = t.join(alice, meetingId, ['--admit', 'all']);
  const hostKey = await host.event('media_key', 10000);
  check('the first member creates the media key (epoch 0)', hostKey?.epoch === 0, js(hostKey));

  const guest = t.guest(link, 'Ada');
  const steps = [];
  const ready = await guest.event('media_key', 20000);
  for (const e of guest.events) if (e.event === 'setup_step') steps.push(e.step);
  check('guest key setup reports the five steps in order', js(steps) === js([1, 2, 3, 4, 5]), js(steps));
  check('the guest ends with the host media-key fingerprint', ready?.fingerprint === hostKey?.fingerprint && /^[0-9a-f]{4}( [0-9a-f]{4}){3}$/.test(ready?.fingerprint ?? ''), `${js(ready)} vs ${js(hostKey)}`);
  const senderKey = await guest.event('sender_key', 5000);
  check("the guest got the host's sender key", senderKey?.sender === alice.user_id, js(senderKey));
  const admitted = await host.wait((e) => e.event === 'guest_admitted', 1000);
  check('the host admitted the guest (--admit all)', admitted !== null, js(host.events.map((e) => e.event)));

  const tok = await guest.event('livekit_token', 5000);
  const session = guest.events.find((e) => e.event === 'livekit_token')?.identity?.replace(/^guest_/, '');
  let claims = null;
  try {
    claims = await new TokenVerifier(LK_KEY, LK_SECRET).verify(tok?.token ?? '');
  } catch (e) {
    claims = { error: String(e) };
  }
  check('the guest LiveKit token verifies with livekit-server-sdk', claims?.sub?.startsWith('guest_'), js(claims));
  check('token identity is guest_<session> of a 32-hex session', /^guest_[0-9a-f]{32}$/.test(claims?.sub ?? '') && claims?.sub === `guest_${session}`, js(claims?.sub));
  check('token room is the meeting', claims?.video?.room === meetingId, js(claims?.video));

  await guest.stop('SIGINT');
  check('guest exits 0 on Ctrl-C after leaving', guest.exit?.code === 0, js(guest.exit) + guest.stderr);
  check('guest deleted its session on leaving', guest.events.some((e) => e.event === 'left'), js(guest.events.map((e) => e.event)));
  await host.stop('SIGINT');
  check('host exits 0 on Ctrl-C', host.exit?.code === 0, js(host.exit) + host.stderr);
  check('host said it left', host.events.some((e) => e.event === 'left'), js(host.events.map((e) => e.event)));

  const st = fs.statSync(alice.dataDir);
  const dev = fs.statSync(path.join(alice.dataDir, 'device.json'));
  check('state directory is 0700 and device.json 0600', (st.mode & 0o777) === 0o700 && (dev.mode & 0o777) === 0o600, `${(st.mode & 0o777).toString(8)} ${(dev.mode & 0o777).toString(8)}`);
  const keys = fs.readdirSync(path.join(alice.dataDir, 'keys'));
  check('key files are 0600', keys.length > 0 && keys.every((f) => (fs.statSync(path.join(alice.dataDir, 'keys', f)).mode & 0o777) === 0o600), keys.length);
}

// The owner deletes the meeting while a member and a guest are in it: both hear
// meeting:ended, say so and exit 0 (`keywave meeting delete`).
async function meetingEnded() {
  const owner = await t.member('dora');
  const meetingId = await t.meeting(owner, 'Short');
  const link = await t.invite(owner, meetingId);
  const host = t.join(owner, meetingId, ['--admit', 'all']);
  await host.event('media_key', 10000);
  const guest = t.guest(link, 'Eve');
  const key = await guest.event('media_key', 20000);
  check('meeting ended: the guest is in the meeting first', key !== null, guest.stderr);
  const del = await t.runDone(['meeting', 'delete', meetingId], { dataDir: owner.dataDir });
  check('meeting delete: exit 0', del.code === 0, `${del.code} ${del.stderr}`);
  const [g, h] = [await guest.event('meeting_ended', 5000), await host.event('meeting_ended', 5000)];
  check('the guest and the host are told the meeting ended', g !== null && h?.meeting_id === meetingId, js([g, h]));
  const exits = [await Promise.race([guest.done, t.sleep(5000).then(() => null)]), await Promise.race([host.done, t.sleep(5000).then(() => null)])];
  check('both exit 0 on their own', exits.every((e) => e?.code === 0), js(exits) + guest.stderr + host.stderr);
}

// keywaved restarts under a running host: the host reconnects on its own, keeps its key,
// and a guest arriving afterwards gets that same key.
async function hostSurvivesRestart() {
  const owner = await t.member('rex');
  const meetingId = await t.meeting(owner, 'Restart');
  const link = await t.invite(owner, meetingId);
  const host = t.join(owner, meetingId, ['--admit', 'all']);
  const before = await host.event('media_key', 10000);
  const early = t.guest(link, 'Before restart');
  await early.event('media_key', 20000);
  const port = Number(new URL(t.base).port);
  await t.stopServer();
  await t.startServer(lkEnv, port);
  const back = await host.event('reconnected', 20000);
  check('restart: the host says the connection was lost, then reconnects', host.events.some((e) => e.event === 'reconnecting') && back !== null, js(host.events.map((e) => e.event)) + host.stderr);
  const guestBack = await early.event('reconnected', 20000);
  check('restart: a guest in the meeting reconnects too (its session survived)', guestBack !== null && early.exit === null, js(early.events.map((e) => e.event)) + early.stderr);
  const guest = t.guest(link, 'After restart');
  const key = await guest.event('media_key', 20000);
  check('restart: a guest joining afterwards gets the key the host held before', key?.fingerprint === before?.fingerprint && host.exit === null, js([key, before]));
  await guest.stop('SIGINT');
  await early.stop('SIGINT');
  check('restart: the earlier guest leaves cleanly, its session deleted', early.exit?.code === 0 && early.events.some((e) => e.event === 'left'), js(early.exit) + early.stderr);
  await host.stop('SIGINT');
  check('restart: the host still leaves cleanly (exit 0)', host.exit?.code === 0, js(host.exit));
}

async function errors() {
  const empty = path.join(t.root, 'nobody');
  const oneLine = (r) => r.stderr.trim().split('\n').filter((l) => l.startsWith('keywave: ')).length === 1;
  let r = await t.runDone(['meeting', 'list'], { dataDir: empty });
  check('not enrolled: exit 1 with one clear line', r.code === 1 && oneLine(r) && /not enrolled/.test(r.stderr), `${r.code} ${r.stderr}`);
  r = await t.runDone(['nonsense'], { dataDir: empty });
  check('unknown command: exit 2', r.code === 2, `${r.code} ${r.stderr}`);
  r = await t.runDone(['guest', 'join', 'http://x/notalink', '--name', 'A'], { dataDir: empty });
  check('bad link: exit 2 with one line', r.code === 2 && /not an invitation link/.test(r.stderr), `${r.code} ${r.stderr}`);
  r = await t.runDone(['guest', 'join', `${t.base}/join/meeting/0123456789abcdef0123456789abcdef`, '--name', 'A'], { dataDir: empty });
  check('unknown invitation: exit 1, says unknown_invitation', r.code === 1 && oneLine(r) && /unknown_invitation/.test(r.stderr), `${r.code} ${r.stderr}`);
  r = await t.runDone(['enroll', t.base, 'aaaaaaaaaaaaaaaaaaaa'], { dataDir: empty });
  check('enroll with a wrong code: exit 1, unauthorized', r.code === 1 && oneLine(r) && /unauthorized/.test(r.stderr), `${r.code} ${r.stderr}`);
  const bob = await t.member('bob');
  r = await t.runDone(['meeting', 'show', 'mtg_000000000000'], { dataDir: bob.dataDir });
  check('unknown meeting: exit 1, not_found', r.code === 1 && oneLine(r) && /not_found/.test(r.stderr), `${r.code} ${r.stderr}`);
  r = await t.runDone(['meeting', 'create'], { dataDir: bob.dataDir });
  check('meeting create without --title: exit 2', r.code === 2, `${r.code} ${r.stderr}`);
  r = await t.runDone(['enroll', t.base, 'zzzzzzzzzzzzzzzzzzzz'], { dataDir: bob.dataDir });
  check('enroll again without --force: exit 1, says already enrolled', r.code === 1 && /already enrolled/.test(r.stderr), `${r.code} ${r.stderr}`);
  r = await t.runDone(['token', 'livekit', 'mtg_000000000000'], { dataDir: bob.dataDir });
  check('token for a meeting one is not in: exit 1', r.code === 1 && oneLine(r), `${r.code} ${r.stderr}`);
  for (const args of [['meeting', '--help'], ['guest', 'join', '--help'], ['keys', '--help'], ['token', '--help'], ['meeting', 'join', '--help'], ['--help']]) {
    r = await t.runDone(args, { dataDir: empty });
    check(`'keywave ${args.join(' ')}' prints help, exit 0`, r.code === 0 && /Usage: keywave/.test(r.stdout), `${r.code} ${r.stdout.slice(0, 80)}`);
  }
  r = await t.runDone(['keys', 'status'], { dataDir: bob.dataDir });
  check('keys status --json: 30 pre-keys on the server', r.code === 0 && r.out?.server_pre_keys === 30, js(r.out));
}

try {
  await t.startServer(lkEnv);
  await hostAndGuest();
  await meetingEnded();
  await hostSurvivesRestart();
  await errors();
} catch (e) {
  check('no exception', false, e.stack);
}
await t.finish();
