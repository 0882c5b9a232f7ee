// cli_harness.mjs — what the end-to-end tests of the `keywave` CLI share: the realtime
// harness (keywaved on a free port, checks, RESULT line) plus real CLI processes: enrolled
// member state directories, `keywave --json` runs whose output lines are parsed as events,
// and waiting for an event with a deadline.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { harness } from './realtime_harness.mjs';

export function cliHarness(prefix) {
  const h = harness(prefix);
  const keywave = process.env.KEYWAVE_CLI || path.resolve(path.dirname(h.keywaved), 'keywave');
  const procs = [];
  let counter = 0;

  // A CLI process with --json: every stdout line that is JSON is an event ({event, ...});
  // stderr is kept for the error line. wait(pred, ms) resolves with the first event (past or
  // future) matching pred, or null after ms.
  function run(args, { dataDir, stdin = 'ignore', env = {} } = {}) {
    const full = ['--json', ...(dataDir ? ['--data-dir', dataDir] : []), ...args];
    const child = spawn(keywave, full, { stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const p = { child, events: [], stdout: '', stderr: '', exit: null, waiters: [], started: Date.now() };
    let buf = '';
    child.stdout.on('data', (d) => {
      p.stdout += d;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let ev = null;
        try {
          ev = JSON.parse(line);
        } catch {
          continue;
        }
        ev.at = Date.now();
        p.events.push(ev);
        if (process.env.KW_VERBOSE) console.log(`  [${args[0]} ${args[1] ?? ''}] ${line}`);
        for (const w of [...p.waiters]) if (w.pred(ev)) w.resolve(ev);
      }
    });
    child.stderr.on('data', (d) => {
      p.stderr += d;
      if (process.env.KW_VERBOSE) process.stderr.write(d);
    });
    p.done = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        p.exit = { code, signal };
        for (const w of [...p.waiters]) w.resolve(null);
        resolve(p.exit);
      }),
    );
    p.wait = (pred, ms = 10000) => {
      const hit = p.events.find(pred);
      if (hit) return Promise.resolve(hit);
      if (p.exit) return Promise.resolve(null);
      return new Promise((resolve) => {
        const w = { pred, resolve: (v) => { clearTimeout(t); p.waiters.splice(p.waiters.indexOf(w), 1); resolve(v); } };
        const t = setTimeout(() => w.resolve(null), ms);
        p.waiters.push(w);
      });
    };
    p.event = (name, ms) => p.wait((e) => e.event === name, ms);
    p.stop = async (sig = 'SIGINT', ms = 10000) => {
      if (p.exit) return p.exit;
      child.kill(sig);
      const r = await Promise.race([p.done, h.sleep(ms).then(() => null)]);
      if (r === null) child.kill('SIGKILL');
      return p.done;
    };
    procs.push(p);
    return p;
  }

  // Runs a CLI command to its end: {code, out (parsed JSON document or null), stdout, stderr}.
  async function runDone(args, opts = {}) {
    const p = run(args, opts);
    const exit = await Promise.race([p.done, h.sleep(opts.timeout ?? 30000).then(() => null)]);
    if (exit === null) await p.stop('SIGKILL');
    let out = null;
    try {
      out = JSON.parse(p.stdout);
    } catch {
      out = null;
    }
    return { code: exit ? exit.code : -1, out, stdout: p.stdout, stderr: p.stderr };
  }

  // A member enrolled through the CLI itself: `keywaved user add` + `keywave enroll`.
  async function member(name) {
    const code = h.cli('user', 'add', name).trim();
    const dataDir = path.join(h.root, `cli-${name}-${++counter}`);
    const r = await runDone(['enroll', h.base, code], { dataDir });
    if (r.code !== 0) throw new Error(`enroll ${name}: ${r.stderr}`);
    return { name, dataDir, user_id: r.out.user_id, device_id: String(r.out.device_id) };
  }

  // Another device of the same member.
  async function device(m) {
    const code = h.cli('user', 'code', m.name).trim();
    const dataDir = path.join(h.root, `cli-${m.name}-${++counter}`);
    const r = await runDone(['enroll', h.base, code], { dataDir });
    if (r.code !== 0) throw new Error(`enroll ${m.name}: ${r.stderr}`);
    return { name: m.name, dataDir, user_id: r.out.user_id, device_id: String(r.out.device_id) };
  }

  async function meeting(m, title = 'E2E') {
    const r = await runDone(['meeting', 'create', '--title', title], { dataDir: m.dataDir });
    if (r.code !== 0) throw new Error(`meeting create: ${r.stderr}`);
    return r.out.meeting_id;
  }

  async function invite(m, meetingId, extra = []) {
    const r = await runDone(['meeting', 'invite', meetingId, ...extra], { dataDir: m.dataDir });
    if (r.code !== 0) throw new Error(`invite: ${r.stderr}`);
    return r.out.url;
  }

  // Adds member `other` to the meeting as a participant (the owner's signed request).
  async function addParticipant(owner, meetingId, other) {
    const dev = JSON.parse(fs.readFileSync(path.join(owner.dataDir, 'device.json'), 'utf8'));
    const r = await h.api(dev, 'POST', `/api/meetings/${meetingId}/participants`, { user_id: other.user_id, role: 'member' });
    if (r.status !== 200 && r.status !== 201) throw new Error(`add participant: ${r.status} ${JSON.stringify(r.body)}`);
  }

  // A CLI member's device credentials (device.json: user_id, device_id, client_id,
  // session_secret), for signed requests (h.api) and socket auth (h.memberAuth).
  const credentials = (m) => JSON.parse(fs.readFileSync(path.join(m.dataDir, 'device.json'), 'utf8'));

  // A member device present in the meeting that never answers: a stock socket.io-client
  // socket with the device's credentials, registered as video participant. Resolves with
  // the socket (close it with socket.disconnect()).
  async function silentMember(m, meetingId) {
    const s = await h.connected('/', h.memberAuth(credentials(m)));
    const r = await h.ack(s, 'video:register-participant', { channelId: meetingId });
    if (r?.ok !== true) throw new Error(`register-participant: ${JSON.stringify(r)}`);
    return s;
  }

  // The media key a `meeting join --key-file` wrote: {key (base64), epoch, key_id, created_ms},
  // or null while the file is missing or partial.
  function readKeyFile(file) {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      return null;
    }
  }

  // The fingerprint people compare (docs/api.md): first 8 bytes of SHA-256 of the key bytes,
  // four groups of four lowercase hex digits.
  function keyFingerprint(keyB64) {
    const hex = crypto.createHash('sha256').update(Buffer.from(keyB64, 'base64')).digest('hex').slice(0, 16);
    return hex.match(/.{4}/g).join(' ');
  }

  const join = (m, meetingId, extra = []) => run(['meeting', 'join', meetingId, ...extra], { dataDir: m.dataDir });
  const guest = (link, name, extra = []) => run(['guest', 'join', link, '--name', name, ...extra]);

  const finish = h.finish;
  h.finish = async () => {
    for (const p of procs) await p.stop('SIGKILL', 2000);
    await finish();
  };

  const out = { ...h, keywave, run, runDone, member, device, meeting, invite, addParticipant, credentials, silentMember, readKeyFile, keyFingerprint, join, guest, finish: h.finish, procs };
  Object.defineProperty(out, 'base', { get: () => h.base }); // set by startServer
  return out;
}
