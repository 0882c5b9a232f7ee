// realtime_harness.mjs — what the realtime node tests share: a keywaved started on a free
// port with a temporary data dir, member enrollment through `keywaved user add` and
// POST /api/auth/enroll, signed requests (DESIGN.md section 4) and Socket.IO CONNECT auth,
// stock socket.io-client connections, an event recorder, and the ok/FAIL/RESULT reporting.
// One harness per test file: harness(prefix) returns its functions and state.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { io } from 'socket.io-client';

export function harness(prefix) {
  let passed = 0;
  let failed = 0;

  function check(name, ok, detail = '') {
    if (ok) {
      passed++;
      console.log(`ok   ${name}`);
    } else {
      failed++;
      console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
    }
  }

  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const keywaved =
    process.env.KEYWAVED ||
    (process.env.KW_TOOLS
      ? path.resolve(process.env.KW_TOOLS, '..', '..', 'keywaved')
      : path.resolve(here, '..', '..', 'build', 'keywaved'));

  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir);
  let server = null;
  let base = '';
  const sockets = [];
  const sanitizerReports = [];

  // Stops keywaved with SIGTERM while some sockets are still open (the shutdown path), and
  // checks it exits 0 (under ASan a leak would make that non-zero).
  async function stopServer() {
    if (!server) return;
    const exited = new Promise((resolve) => server.once('exit', (code, sig) => resolve({ code, sig })));
    server.kill('SIGTERM');
    const r = await Promise.race([exited, sleep(10000).then(() => null)]);
    if (r === null) server.kill('SIGKILL');
    check('keywaved stops cleanly on SIGTERM with sockets open', r !== null && r.code === 0, js(r));
    check('no sanitizer report from keywaved', sanitizerReports.length === 0, sanitizerReports.join('').slice(0, 2000));
    server = null;
  }

  async function finish() {
    await stopServer();
    for (const s of sockets) s.disconnect();
    fs.rmSync(root, { recursive: true, force: true });
    console.log(`RESULT passed=${passed} failed=${failed}`);
    process.exit(failed ? 1 : 0);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function freePort() {
    return new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
      srv.on('error', reject);
    });
  }

  const serverEnv = () => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('KEYWAVE_') || k.startsWith('LIVEKIT_') || k.startsWith('JITSI_')) delete env[k];
    env.KEYWAVE_DATA_DIR = dataDir;
    return env;
  };

  // extraEnv: more configuration for this server (e.g. LIVEKIT_* for the token tests).
  // port: listen there (a restart on the same address), else a free one.
  async function startServer(extraEnv = {}, port = null) {
    port = port ?? (await freePort());
    const env = { ...serverEnv(), ...extraEnv };
    env.KEYWAVE_LISTEN = `127.0.0.1:${port}`;
    server = spawn(keywaved, [], { env, cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    server.stderr.on('data', (d) => {
      if (process.env.KW_VERBOSE) process.stderr.write(d);
      if (/AddressSanitizer|LeakSanitizer|runtime error/.test(d.toString())) sanitizerReports.push(d.toString());
    });
    base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      try {
        const r = await fetch(`${base}/healthz`);
        if (r.ok) return;
      } catch {
        /* not up yet */
      }
      await sleep(25);
    }
    throw new Error('keywaved did not start');
  }

  // ---- members -------------------------------------------------------------------------

  const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

  function signature(secret, clientId, ts, nonce, method, target, body) {
    return crypto
      .createHmac('sha256', Buffer.from(secret, 'utf8'))
      .update(`${clientId}:${ts}:${nonce}:${method}:${target}:${sha256hex(body)}`)
      .digest('hex');
  }

  async function api(member, method, target, bodyObj, bearer) {
    const body = bodyObj === undefined ? '' : JSON.stringify(bodyObj);
    const headers = { 'content-type': 'application/json' };
    if (member) {
      const ts = String(Date.now());
      const nonce = crypto.randomBytes(16).toString('hex');
      headers['x-client-id'] = member.client_id;
      headers['x-timestamp'] = ts;
      headers['x-nonce'] = nonce;
      headers['x-signature'] = signature(member.session_secret, member.client_id, ts, nonce, method, target, body);
    }
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const r = await fetch(base + target, { method, headers, body: body === '' ? undefined : body });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, json };
  }

  function cli(...args) {
    return execFileSync(keywaved, args, { env: serverEnv(), cwd: root }).toString().trim();
  }

  async function enroll(code, deviceName) {
    const r = await api(null, 'POST', '/api/auth/enroll', { code, device_name: deviceName });
    if (r.status !== 201) throw new Error(`enroll: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  async function newMember(name) {
    return enroll(cli('user', 'add', name), `${name}-phone`);
  }

  // A guest session of meetingId through a fresh invitation of member's, with valid public
  // keys made by @signalapp/libsignal-client (private halves thrown away: the realtime tests
  // only relay). Returns the registration answer plus the invitation token.
  async function registerGuest(member, meetingId, displayName = 'Guest') {
    const { PrivateKey } = await import('@signalapp/libsignal-client');
    const b64 = (b) => Buffer.from(b).toString('base64');
    const inv = await api(member, 'POST', `/api/meetings/${meetingId}/invitations`, {});
    const token = inv.json?.token;
    const identity = PrivateKey.generate();
    const spkPub = PrivateKey.generate().getPublicKey().serialize();
    const body = {
      invitation_token: token,
      display_name: displayName,
      identity_key: b64(identity.getPublicKey().serialize()),
      registration_id: 4321,
      signed_pre_key: { id: 1, public_key: b64(spkPub), signature: b64(identity.sign(spkPub)) },
      pre_keys: Array.from({ length: 30 }, (_, i) => ({ id: i + 1, public_key: b64(PrivateKey.generate().getPublicKey().serialize()) })),
    };
    const r = await api(null, 'POST', '/api/meetings/external/register', body);
    if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.json)}`);
    return { ...r.json, token };
  }

  function memberAuth(m, overrides = {}) {
    const timestamp = Date.now();
    const nonce = crypto.randomBytes(16).toString('hex');
    return {
      client_id: m.client_id,
      timestamp,
      nonce,
      signature: signature(m.session_secret, m.client_id, String(timestamp), nonce, 'GET', '/socket.io/auth', ''),
      ...overrides,
    };
  }

  // ---- sockets -------------------------------------------------------------------------

  // Connects; resolves {socket} on connect or {error: message} on connect_error.
  function connect(nsp, auth, opts = {}) {
    return new Promise((resolve) => {
      const s = io(base + nsp, { transports: ['websocket'], auth, forceNew: true, reconnection: false, ...opts });
      sockets.push(s);
      s.rec = recorder(s); // before connecting: events may follow the CONNECT reply at once
      const timer = setTimeout(() => resolve({ error: 'timeout' }), 4000);
      s.on('connect', () => {
        clearTimeout(timer);
        resolve({ socket: s });
      });
      s.on('connect_error', (e) => {
        clearTimeout(timer);
        resolve({ error: e.message, socket: s });
      });
    });
  }

  async function connected(nsp, auth) {
    const r = await connect(nsp, auth);
    if (!r.socket || r.error) throw new Error(`connect ${nsp}: ${r.error}`);
    return r.socket;
  }

  // Records every event a socket receives, so a test can wait for one or assert none came.
  function recorder(s) {
    const events = [];
    s.onAny((name, ...args) => events.push({ name, args }));
    return {
      events,
      async next(name, ms = 2000) {
        const t0 = Date.now();
        for (;;) {
          const i = events.findIndex((e) => e.name === name);
          if (i >= 0) return events.splice(i, 1)[0].args[0];
          if (Date.now() - t0 > ms) return undefined;
          await sleep(10);
        }
      },
      count(name) {
        return events.filter((e) => e.name === name).length;
      },
      clear() {
        events.length = 0;
      },
    };
  }

  const ack = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload).catch((e) => ({ timeout: String(e) }));
  const js = (x) => JSON.stringify(x);

  return {
    check,
    finish,
    stopServer,
    startServer,
    sleep,
    freePort,
    serverEnv,
    sha256hex,
    signature,
    api,
    cli,
    enroll,
    newMember,
    registerGuest,
    memberAuth,
    connect,
    connected,
    recorder,
    ack,
    js,
    sockets,
    sanitizerReports,
    keywaved,
    here,
    root,
    dataDir,
    get base() {
      return base;
    },
    get server() {
      return server;
    },
    get failed() {
      return failed;
    },
  };
}
