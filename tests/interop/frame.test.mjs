// frame.test.mjs — keywave's frame encryption against livekit-client's own frame cryptor.
//
// livekit-client 2.23's e2ee worker bundle runs in Node 20 (NOTES.md "livekit-client 2.23
// frame cryptor"): we give it fake encoded frames through WHATWG streams and talk to C through
// build/tests/interop/frame_tool (one command per line, hex bytes). For VP8 key, VP8 delta and
// Opus frames, with both key forms (ArrayBuffer -> HKDF, string -> PBKDF2) and both key sizes:
//   (a) livekit encrypts, C decrypts to the plaintext, and C re-encrypting with the send count
//       read from livekit's IV gives the very same bytes;
//   (b) C encrypts with its own per-SSRC counters, livekit decrypts to the plaintext;
//   plus the checked-in known-answer frames of tests/unit/test_frame.c, and tampered frames
//   (rejected by livekit and by C). Last line: RESULT passed=N failed=M.
// Env: KW_TOOLS (directory of frame_tool), CI=true (a missing dependency fails, never skips).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const CI = process.env.CI === 'true';
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

function finish(skipped = 0) {
  console.log(`RESULT passed=${passed} failed=${failed}${skipped ? ` skipped=${skipped}` : ''}`);
  process.exit(failed ? 1 : 0);
}

const hex = (u8) => (u8.length ? Buffer.from(u8).toString('hex') : '-');
const unhex = (s) => new Uint8Array(s === '-' ? [] : Buffer.from(s, 'hex'));

// A small deterministic generator, so a failing run can be repeated (KW_SEED).
let seed = Number(process.env.KW_SEED ?? 0x6b657977) >>> 0 || 1;
function rand32() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed;
}
const randBytes = (n) => Uint8Array.from({ length: n }, () => rand32() & 0xff);

const HEADER = { key: 10, delta: 3, audio: 1 };

// ---- frame_tool: one request line, one answer line ----------------------------------------
class Tool {
  constructor(path) {
    this.proc = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.waiting = [];
    this.exited = false;
    this.proc.on('exit', () => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w('err exited');
    });
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (w) w(line);
    });
  }

  // Sends one command; resolves to {ok, value} where value is the rest of the answer line.
  cmd(line) {
    return new Promise((resolve) => {
      if (this.exited) return resolve({ ok: false, value: 'exited' });
      this.waiting.push((answer) => {
        const sp = answer.indexOf(' ');
        const head = sp < 0 ? answer : answer.slice(0, sp);
        resolve({ ok: head === 'ok', value: sp < 0 ? '' : answer.slice(sp + 1) });
      });
      this.proc.stdin.write(line + '\n');
    });
  }

  async must(line) {
    const r = await this.cmd(line);
    if (!r.ok) throw new Error(`frame_tool: "${line.slice(0, 60)}" -> ${r.value}`);
    return r.value;
  }

  close() {
    this.proc.stdin.end();
  }
}

// ---- livekit-client's worker, one fresh module instance per key size ----------------------
const posted = [];
const ackWaiters = new Map();
function installWorkerGlobals() {
  globalThis.self = globalThis;
  globalThis.onmessage = null;
  globalThis.RTCEncodedAudioFrame = class RTCEncodedAudioFrame {};
  globalThis.postMessage = (msg) => {
    posted.push(msg);
    if (msg?.kind === 'enable') {
      const w = ackWaiters.get(msg.data.participantIdentity);
      if (w) {
        ackWaiters.delete(msg.data.participantIdentity);
        w();
      }
    }
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// One encode or decode transform of the worker, fed one frame at a time. Each frame is
// followed by an empty sentinel frame, which both directions pass through untouched: when
// the sentinel comes out alone, the worker dropped the frame.
class Pipe {
  constructor(worker, op, participantIdentity, trackId) {
    this.outs = [];
    this.wake = null;
    this.readable = new ReadableStream({ start: (c) => (this.ctl = c) });
    const writable = new WritableStream({
      write: (frame) => {
        this.outs.push(frame);
        if (this.wake) this.wake();
      },
    });
    worker.send(op, {
      participantIdentity,
      trackId,
      readableStream: this.readable,
      writableStream: writable,
      codec: 'vp8',
      hasPacketTrailer: false,
    });
    this.worker = worker;
    this.participantIdentity = participantIdentity;
    this.trackId = trackId;
  }

  // Resolves to the transformed frame, or null when the worker dropped it.
  async run(frame) {
    const sentinel = { data: new ArrayBuffer(0), timestamp: 0, sentinel: true };
    sentinel.getMetadata = () => ({ synchronizationSource: 0, rtpTimestamp: 0 });
    this.ctl.enqueue(frame);
    this.ctl.enqueue(sentinel);
    const got = [];
    await withTimeout(
      (async () => {
        for (;;) {
          while (this.outs.length) {
            const f = this.outs.shift();
            if (f.sentinel) return;
            got.push(f);
          }
          await new Promise((r) => (this.wake = r));
          this.wake = null;
        }
      })(),
      10000,
      'livekit transform',
    );
    return got.length ? got[got.length - 1] : null;
  }

  close() {
    this.worker.send('removeTransform', {
      participantIdentity: this.participantIdentity,
      trackId: this.trackId,
    });
    this.ctl.close();
  }
}

let instances = 0;
let syncs = 0;
class LiveKitWorker {
  static async load(lk, workerUrl, keySize) {
    const w = new LiveKitWorker();
    await import(`${workerUrl}?instance=${++instances}`);
    w.handler = globalThis.onmessage; // each instance installs its own handler
    // A keywave web client: LiveKit's shared-key options (as ExternalE2EEKeyProvider sets
    // them), keys set per index through BaseKeyProvider (DESIGN.md section 6).
    class KeywaveKeyProvider extends lk.BaseKeyProvider {
      async setKeyAt(key, keyIndex) {
        const material =
          typeof key === 'string'
            ? await lk.createKeyMaterialFromString(key)
            : await lk.createKeyMaterialFromBuffer(key);
        this.onSetEncryptionKey(material, undefined, keyIndex);
      }
    }
    const options = new lk.ExternalE2EEKeyProvider({ keySize }).getOptions();
    w.provider = new KeywaveKeyProvider(options);
    // What E2eeManager.postKey does on KeyProviderEvent.SetKey.
    w.provider.on('setKey', (info, updateCurrentKeyIndex) =>
      w.send('setKey', {
        participantIdentity: info.participantIdentity,
        key: info.key,
        keyIndex: info.keyIndex,
        updateCurrentKeyIndex: updateCurrentKeyIndex ?? true,
      }),
    );
    w.send('init', { keyProviderOptions: options, loglevel: 'warn' });
    await w.enable('alice');
    await w.enable('bob');
    w.enc = new Pipe(w, 'encode', 'alice', `enc-${instances}`);
    w.dec = new Pipe(w, 'decode', 'bob', `dec-${instances}`);
    return w;
  }

  send(kind, data) {
    this.handler({ data: { kind, data } });
  }

  // 'enable' is acknowledged from the worker's message queue, so its ack also means every
  // message sent before it (a setKey's key derivation included) has been handled.
  enable(participantIdentity) {
    const done = new Promise((r) => ackWaiters.set(participantIdentity, r));
    this.send('enable', { enabled: true, participantIdentity });
    return withTimeout(done, 10000, 'worker ack');
  }

  async setKey(key, keyIndex) {
    await this.provider.setKeyAt(key, keyIndex); // also makes keyIndex the send index
    await this.enable(`sync-${++syncs}`);
  }

  close() {
    this.enc.close();
    this.dec.close();
  }
}

// A fake RTCEncodedVideoFrame / RTCEncodedAudioFrame as the worker sees one.
function makeFrame(kind, ssrc, timestamp, bytes) {
  const meta = {
    synchronizationSource: ssrc,
    rtpTimestamp: timestamp,
    payloadType: kind === 'audio' ? 111 : 96,
    mimeType: kind === 'audio' ? 'audio/opus' : 'video/VP8',
  };
  const frame =
    kind === 'audio'
      ? Object.create(globalThis.RTCEncodedAudioFrame.prototype)
      : { type: kind }; // audio frames have no `type`: that is how livekit tells them apart
  frame.data = bytes.slice().buffer;
  frame.timestamp = timestamp;
  frame.getMetadata = () => meta;
  return frame;
}

// A frame whose header looks like its kind (VP8 key frames have bit 0 of byte 0 clear).
function plaintext(kind, bodyLen) {
  const p = randBytes(HEADER[kind] + bodyLen);
  if (kind === 'key') p[0] &= 0xfe;
  if (kind === 'delta') p[0] |= 0x01;
  return p;
}

// The send count livekit used, read back from its IV: word3 = ts - count mod 0xffff.
function countFromTrailer(frame, timestamp) {
  const iv = frame.subarray(frame.length - 14, frame.length - 2);
  const word3 = new DataView(iv.buffer, iv.byteOffset, 12).getUint32(8);
  return (timestamp - word3) >>> 0;
}

// Known-answer frames, the same bytes as in tests/unit/test_frame.c.
const KEY_00_1F = Uint8Array.from({ length: 32 }, (_, i) => i);
const KATS = [
  {
    name: 'vp8 key, hkdf, aes-128',
    keySize: 128,
    key: KEY_00_1F,
    index: 1,
    kind: 'key',
    ssrc: 0x11223344,
    ts: 100,
    count: 0x1234,
    plain:
      '1002009d012a8002e001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    frame:
      '1002009d012a8002e001903ae0753bdd0e057f996a6df7f8e84bb3c999fa7918f6b6fc4b8cd6da1b40ed2e86ec0ba5017e5cfa6422894926337c1122334400000064ffffee300c01',
  },
  {
    name: 'opus, pbkdf2, aes-128',
    keySize: 128,
    key: 'correct horse battery staple',
    index: 2,
    kind: 'audio',
    ssrc: 0xdeadbeef,
    ts: 0xfffffff0,
    count: 7,
    plain: '786b657977617665206f707573206672616d65',
    frame:
      '7872d25a274ff9dfcff9f0426911ebd4f5eb8f39617d13e27f6b40a90fbbe63480e12edeadbeeffffffff0ffffffe90c02',
  },
  {
    name: 'vp8 delta, hkdf, aes-256',
    keySize: 256,
    key: KEY_00_1F,
    index: 15,
    kind: 'delta',
    ssrc: 1,
    ts: 3000,
    count: 0xfffe,
    plain: '3102000102030405',
    frame:
      '3102008a2f5ad0a622f6c96846f92a29ff05a4ac2a36e7c30000000100000bb8ffff0bba0c0f',
  },
];

async function main() {
  const toolDir = process.env.KW_TOOLS;
  const toolPath = toolDir ? `${toolDir}/frame_tool` : '';
  if (!toolPath || !existsSync(toolPath)) {
    // Our own build product: missing means the build is broken, never a skip.
    check('frame_tool present', false, toolDir ? `${toolPath} missing` : 'KW_TOOLS not set');
    finish();
  }
  const require = createRequire(import.meta.url);
  let workerUrl;
  let lk;
  try {
    const cjs = require.resolve('livekit-client/e2ee-worker');
    workerUrl = pathToFileURL(cjs.replace(/\.js$/, '.mjs')).href;
    lk = await import('livekit-client');
  } catch (e) {
    if (CI) {
      check('livekit-client installed', false, e.message);
      finish();
    }
    console.log(`livekit-client missing (${e.message}): skipped`);
    finish(1);
  }
  installWorkerGlobals();
  const realRandom = Math.random;

  for (const keySize of [128, 256]) {
    const aesBytes = keySize / 8;
    const tool = new Tool(toolPath);
    const w = await LiveKitWorker.load(lk, workerUrl, keySize);
    await tool.must(`create ${aesBytes}`);
    try {
      const raw = randBytes(32);
      const text = Buffer.from(randBytes(32)).toString('base64'); // as Flutter passes it
      const forms = [
        { name: 'hkdf', index: 1, key: raw.buffer, cmd: `keyraw 1 ${hex(raw)}` },
        { name: 'pbkdf2', index: 2, key: text, cmd: `keystr 2 ${hex(Buffer.from(text))}` },
      ];
      const encrypted = []; // livekit frames for the tamper checks
      for (const form of forms) {
        await w.setKey(form.key, form.index);
        await tool.must(form.cmd);
        await tool.must(`send ${form.index}`);
        for (const kind of ['key', 'delta', 'audio']) {
          for (const bodyLen of [0, 1, 200, 1200]) {
            const tag = `aes${keySize} ${form.name} ${kind} body=${bodyLen}`;
            const ssrc = rand32();
            // Small timestamps make ts - count wrap below zero.
            const ts = bodyLen === 1 ? rand32() & 0xff : rand32();
            const p = plaintext(kind, bodyLen);

            // (a) livekit encrypts, C decrypts and re-encrypts to the same bytes.
            const out = await w.enc.run(makeFrame(kind, ssrc, ts, p));
            if (!out) {
              check(`${tag}: livekit encrypts`, false, 'frame dropped');
              continue;
            }
            const lf = new Uint8Array(out.data);
            check(
              `${tag}: livekit layout`,
              lf.length === p.length + 30 &&
                hex(lf.subarray(0, HEADER[kind])) === hex(p.subarray(0, HEADER[kind])) &&
                lf[lf.length - 2] === 12 &&
                lf[lf.length - 1] === form.index,
            );
            const dec = await tool.cmd(`dec ${kind} ${hex(lf)}`);
            check(`${tag}: C decrypts livekit`, dec.ok && dec.value === hex(p), dec.value);
            const count = countFromTrailer(lf, ts);
            const again = await tool.cmd(`enc ${kind} ${ssrc} ${ts} ${count} ${hex(p)}`);
            check(`${tag}: C == livekit bytes`, again.ok && again.value === hex(lf), again.value);
            encrypted.push({ kind, frame: lf, plain: p });

            // (b) C encrypts (own counters), livekit decrypts.
            const ce = await tool.cmd(`encc ${kind} ${ssrc} ${ts} ${hex(p)}`);
            if (!ce.ok) {
              check(`${tag}: C encrypts`, false, ce.value);
              continue;
            }
            const back = await w.dec.run(makeFrame(kind, ssrc, ts, unhex(ce.value)));
            check(
              `${tag}: livekit decrypts C`,
              back !== null && hex(new Uint8Array(back.data)) === hex(p),
              back ? hex(new Uint8Array(back.data)) : 'dropped',
            );
          }
        }
      }

      // Negative cases. C side: every byte position class of a livekit frame.
      const { kind, frame, plain } = encrypted.find((e) => e.kind === 'key' && e.plain.length > 100);
      const spots = { header: 0, ciphertext: 20, tag: frame.length - 20, iv: frame.length - 5 };
      for (const [where, at] of Object.entries(spots)) {
        const t = frame.slice();
        t[at] ^= 0x01;
        const r = await tool.cmd(`dec ${kind} ${hex(t)}`);
        check(`aes${keySize} C rejects livekit frame tampered in ${where}`,
          !r.ok && r.value === 'frame_auth_failed', `${r.ok ? 'ok' : 'err'} ${r.value}`);
      }
      const wrongIndex = frame.slice();
      wrongIndex[wrongIndex.length - 1] = 7;
      const wi = await tool.cmd(`dec ${kind} ${hex(wrongIndex)}`);
      check(`aes${keySize} C: unset key index -> no_key`, !wi.ok && wi.value === 'no_key', wi.value);

      // livekit side: a C frame with one header (AAD) byte or one ciphertext byte changed
      // is dropped, and the pipe still decrypts the next good frame.
      for (const at of [1, HEADER.key + 3]) {
        const ssrc = rand32();
        const ts = rand32();
        const ce = await tool.cmd(`encc key ${ssrc} ${ts} ${hex(plain)}`);
        const bad = unhex(ce.value);
        bad[at] ^= 0x80;
        const dropped = await w.dec.run(makeFrame('key', ssrc, ts, bad));
        const good = await w.dec.run(makeFrame('key', ssrc, ts, unhex(ce.value)));
        check(
          `aes${keySize} livekit drops C frame tampered at byte ${at}`,
          dropped === null && good !== null && hex(new Uint8Array(good.data)) === hex(plain),
        );
      }

      // Known-answer frames of this key size: livekit makes exactly these bytes (its random
      // starting send count pinned through Math.random) and decrypts them.
      for (const kat of KATS.filter((k) => k.keySize === keySize)) {
        const expected = kat.frame;
        await w.setKey(typeof kat.key === 'string' ? kat.key : kat.key.slice().buffer, kat.index);
        Math.random = () => (kat.count + 0.5) / 0xffff; // floor(r * 0xffff) == count
        let out;
        try {
          out = await w.enc.run(makeFrame(kat.kind, kat.ssrc, kat.ts, unhex(kat.plain)));
        } finally {
          Math.random = realRandom;
        }
        check(`KAT ${kat.name}: livekit makes the checked-in frame`,
          out !== null && hex(new Uint8Array(out.data)) === expected,
          out ? hex(new Uint8Array(out.data)) : 'dropped');
        const back = await w.dec.run(makeFrame(kat.kind, kat.ssrc, kat.ts, unhex(expected)));
        check(`KAT ${kat.name}: livekit decrypts the checked-in frame`,
          back !== null && hex(new Uint8Array(back.data)) === kat.plain);
        const keyCmd =
          typeof kat.key === 'string'
            ? `keystr ${kat.index} ${hex(Buffer.from(kat.key))}`
            : `keyraw ${kat.index} ${hex(kat.key)}`;
        await tool.must(keyCmd);
        await tool.must(`send ${kat.index}`);
        const c = await tool.cmd(`enc ${kat.kind} ${kat.ssrc} ${kat.ts} ${kat.count} ${kat.plain}`);
        check(`KAT ${kat.name}: C makes the checked-in frame`, c.ok && c.value === expected, c.value);
      }
    } catch (e) {
      check(`aes${keySize} run`, false, e.stack);
    } finally {
      w.close();
      tool.close();
    }
  }
  const errors = posted.filter((m) => m?.kind === 'error').length;
  console.log(`(livekit worker reported ${errors} decryption errors, from the tampered frames)`);
  finish();
}

main().catch((e) => {
  check('frame interop', false, e.stack);
  finish();
});
