// signal.test.mjs — Signal 1:1 interop between libkeywave (driven through
// build/tests/interop/signal_tool) and the real JavaScript libraries pinned in package.json:
// @signalapp/libsignal-client 0.72.1 and @privacyresearch/libsignal-protocol-typescript 0.0.16
// (DESIGN.md section 6; NOTES.md "Interop oracles (npm)").
//
// For each library and each direction (C starts the session from the JS bundle; JS starts it
// from the C bundle) a conversation crosses the PreKey -> normal transition, checks that the
// receiver deleted the one-time pre-key used, and tries tampered, replayed and out-of-order
// messages against the real peer. Bundles with a signature made by another identity must be
// refused by both sides. Prints one `ok`/`FAIL` line per case and `RESULT passed=N failed=M`.
//
// Run: KW_TOOLS=<abs build/tests/interop> node signal.test.mjs
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { LineTool } from './lib/line_tool.mjs';
import { loadLibraries, makePeer } from './lib/signal_peers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const toolDir = process.env.KW_TOOLS || path.join(here, '../../build/tests/interop');
const toolPath = path.join(toolDir, 'signal_tool');
const NOW_MS = 1767225600000; // 2026-01-01T00:00:00Z: the C side's fixed clock
const WATCHDOG_MS = 180000;

let passed = 0;
let failed = 0;
let skipped = 0;

function pass(name) {
  passed++;
  console.log(`ok ${name}`);
}
function fail(name, why) {
  failed++;
  const text = why instanceof Error ? why.message : String(why);
  console.log(`FAIL ${name}: ${text.split('\n').join(' | ')}`);
}
function finish() {
  console.log(`RESULT passed=${passed} failed=${failed}${skipped ? ` skipped=${skipped}` : ''}`);
  process.exit(failed === 0 ? 0 : 1);
}

// A sequence of dependent cases: after one fails, the rest are reported as failed, not run.
function flow(prefix) {
  let broken = null;
  return async function step(name, fn) {
    const full = `${prefix}: ${name}`;
    if (broken !== null) {
      fail(full, `not run: "${broken}" failed`);
      return;
    }
    try {
      await fn();
      pass(full);
    } catch (e) {
      broken = name;
      fail(full, e);
    }
  };
}

const b64 = (buf) => Buffer.from(buf).toString('base64');
const text = (s) => Buffer.from(s, 'utf8');

// ---- the C side -------------------------------------------------------------------------

let c; // the LineTool running signal_tool

async function cNew(name, device) {
  const ans = await c.ok({ cmd: 'new', name, device, now_ms: NOW_MS });
  assert.equal(ans.prekey_count, 30, 'a new identity holds a batch of 30 one-time pre-keys');
  assert.equal(ans.registration.pre_keys.length, 30);
  assert.equal(ans.bundle.registration_id, ans.registration.registration_id);
  assert.equal(ans.bundle.identity_key, ans.registration.identity_key);
  return ans;
}
async function cEncrypt(as, peer, device, pt) {
  const ans = await c.ok({ cmd: 'encrypt', as, peer, device, plaintext_b64: b64(pt) });
  return { type: ans.type, body: ans.body };
}
const cDecrypt = (as, peer, device, m) =>
  c.call({ cmd: 'decrypt', as, peer, device, type: m.type, body: m.body });
async function cDecryptOk(as, peer, device, m) {
  const ans = await cDecrypt(as, peer, device, m);
  if (ans.ok !== true) throw new Error(`C decrypt failed: ${ans.error}: ${ans.detail}`);
  return Buffer.from(ans.plaintext_b64, 'base64');
}
async function cPreKeyCount(as) {
  return (await c.ok({ cmd: 'prekey_count', as })).count;
}
function assertCError(ans, allowed, what) {
  assert.equal(ans.ok, false, `${what}: C accepted it`);
  assert.ok(allowed.includes(ans.error), `${what}: C said ${ans.error} (${ans.detail}), want ${allowed.join(' or ')}`);
}

// ---- message surgery ----------------------------------------------------------------------

function varint(buf, i) {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (i >= buf.length) throw new Error('truncated varint');
    const b = buf[i++];
    v += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [v, i];
    mul *= 128;
  }
}

// [start, end) of the SignalMessage inside a serialized PreKeySignalMessage (field 4).
function innerMessageRange(buf) {
  let i = 1; // after the version byte
  while (i < buf.length) {
    const [key, j] = varint(buf, i);
    const wt = key & 7;
    if (wt === 0) {
      i = varint(buf, j)[1];
    } else if (wt === 2) {
      const [len, k] = varint(buf, j);
      if (key >> 3 === 4) return [k, k + len];
      i = k + len;
    } else {
      throw new Error(`unexpected protobuf wire type ${wt}`);
    }
  }
  throw new Error('PreKeySignalMessage without a message field');
}

// Flips one bit of the last ciphertext byte (just before the 8-byte MAC) of a message.
function tamper(m) {
  const buf = Buffer.from(m.body, 'base64');
  const end = m.type === 3 ? innerMessageRange(buf)[1] : buf.length;
  buf[end - 9] ^= 0x01;
  return { type: m.type, body: buf.toString('base64') };
}

// ---- conversations ---------------------------------------------------------------------

// Sends each plaintext from one side, decrypts on the other, checks types and plaintexts.
async function deliver(send, recv, plaintexts, wantType) {
  const sent = [];
  for (const pt of plaintexts) {
    const m = await send(pt);
    if (wantType !== undefined) assert.equal(m.type, wantType, `message type`);
    sent.push(m);
  }
  for (let i = 0; i < sent.length; i++) {
    const got = await recv(sent[i]);
    assert.ok(Buffer.from(got).equals(plaintexts[i]), `plaintext ${i} differs`);
  }
  return sent;
}

async function cInitiates(lib) {
  const step = flow(`${lib.label} C->JS`);
  const cName = `c_alice_${lib.kind}`;
  const jsName = `js_bob_${lib.kind}`;
  const CDEV = 1;
  const JDEV = 2;
  let js;
  const toJs = (pt) => cEncrypt(cName, jsName, JDEV, pt);
  const atJs = (m) => js.decrypt(cName, CDEV, m.type, m.body);
  const toC = (pt) => js.encrypt(cName, CDEV, pt);
  const atC = (m) => cDecryptOk(cName, jsName, JDEV, m);

  await step('set up a C identity and a JS identity', async () => {
    await cNew(cName, CDEV);
    js = await makePeer(lib, jsName, JDEV);
  });
  await step('C parses the JS bundle (keywave JSON) and re-encodes it unchanged', async () => {
    const ans = await c.ok({ cmd: 'check_bundle', bundle: js.bundle() });
    assert.deepEqual(ans.bundle, js.bundle());
  });
  await step('C processes the JS bundle and has a session', async () => {
    await c.ok({ cmd: 'process_bundle', as: cName, peer: jsName, device: JDEV, bundle: js.bundle() });
    assert.equal((await c.ok({ cmd: 'has_session', as: cName, peer: jsName, device: JDEV })).exists, true);
  });
  let first;
  await step('C sends PreKey messages (type 3, version byte 0x33) until JS replies', async () => {
    first = [await toJs(text('c->js 1')), await toJs(text('c->js 2'))];
    for (const m of first) {
      assert.equal(m.type, 3);
      assert.equal(Buffer.from(m.body, 'base64')[0], 0x33);
    }
  });
  await step('JS decrypts both PreKey messages', async () => {
    assert.equal((await atJs(first[0])).toString(), 'c->js 1');
    assert.equal((await atJs(first[1])).toString(), 'c->js 2');
  });
  await step('JS removed the one-time pre-key the C side used from its store', async () => {
    assert.ok(js.removedPreKeys.includes(js.preKeyId), `removePreKey calls: ${js.removedPreKeys}`);
    assert.equal(js.holdsPreKey(js.preKeyId), false);
  });
  let replies;
  await step(`JS replies with normal messages (type ${js?.normalType}) and C decrypts them`, async () => {
    replies = await deliver(toC, atC, [text('js->c 1'), text('js->c 2'), text('js->c 3')], js.normalType);
  });
  await step('C now sends normal messages (type 2) and JS decrypts them', async () => {
    await deliver(toJs, atJs, [text('c->js 3'), text('c->js 4'), text('c->js 5')], 2);
  });
  await step('three more round trips (a DH ratchet step each turn)', async () => {
    for (let i = 0; i < 3; i++) {
      await deliver(toC, atC, [text(`ping ${i}`)], js.normalType);
      await deliver(toJs, atJs, [text(`pong ${i}`)], 2);
    }
  });
  await step('empty and 10 KiB binary plaintexts round-trip both ways', async () => {
    const big = randomBytes(10240);
    await deliver(toJs, atJs, [Buffer.alloc(0), big], 2);
    await deliver(toC, atC, [Buffer.alloc(0), big], js.normalType);
  });
  await step('C rejects a tampered JS message; the genuine one still decrypts', async () => {
    const m = await toC(text('tamper me'));
    assertCError(await cDecrypt(cName, jsName, JDEV, tamper(m)), ['decrypt_failed', 'invalid_message'], 'tampered');
    assert.equal((await atC(m)).toString(), 'tamper me');
  });
  await step('C rejects a replayed JS message with duplicate_message', async () => {
    assertCError(await cDecrypt(cName, jsName, JDEV, replies[0]), ['duplicate_message'], 'replay');
    const m = await toC(text('after replay'));
    assertCError(await cDecrypt(cName, jsName, JDEV, tamper(m)), ['decrypt_failed', 'invalid_message'], 'tampered');
    assert.equal((await atC(m)).toString(), 'after replay');
    assertCError(await cDecrypt(cName, jsName, JDEV, m), ['duplicate_message'], 'replay of the newest');
  });
  await step('JS rejects a tampered C message; the genuine one still decrypts', async () => {
    const m = await toJs(text('tamper me too'));
    await assert.rejects(atJs(tamper(m)), 'JS accepted a tampered message');
    assert.equal((await atJs(m)).toString(), 'tamper me too');
    await assert.rejects(atJs(m), 'JS accepted a replayed message');
  });
  await step('C decrypts JS messages delivered out of order (3, 1, 2)', async () => {
    const ms = [await toC(text('o1')), await toC(text('o2')), await toC(text('o3'))];
    for (const i of [2, 0, 1]) assert.equal((await atC(ms[i])).toString(), `o${i + 1}`);
  });
  await step('C rejects 200 random byte changes of a JS message; the genuine one then decrypts', async () => {
    const m = await toC(text('mutate me'));
    const buf = Buffer.from(m.body, 'base64');
    for (let i = 0; i < 200; i++) {
      const t = Buffer.from(buf);
      t[i % t.length] ^= 1 + Math.floor(Math.random() * 255);
      const ans = await cDecrypt(cName, jsName, JDEV, { type: m.type, body: t.toString('base64') });
      assert.equal(ans.ok, false, `byte ${i % t.length} changed and C accepted it`);
    }
    assert.equal((await atC(m)).toString(), 'mutate me');
  });
  await step('C rejects truncated JS messages with invalid_message', async () => {
    const m = await toC(text('truncate me'));
    const buf = Buffer.from(m.body, 'base64');
    const bad = [];
    for (const n of [1, 2, 5, 9, 10, 20, buf.length - 8, buf.length - 1]) {
      const ans = await cDecrypt(cName, jsName, JDEV, { type: m.type, body: buf.subarray(0, n).toString('base64') });
      if (ans.ok !== false || ans.error !== 'invalid_message') bad.push(`${n} bytes: ${ans.ok ? 'accepted' : ans.error}`);
    }
    assert.equal((await atC(m)).toString(), 'truncate me');
    assert.ok(bad.length === 0, `message of ${buf.length} bytes cut to ${bad.join(', ')}`);
  });
  await c.call({ cmd: 'drop', name: cName });
}

async function jsInitiates(lib) {
  const step = flow(`${lib.label} JS->C`);
  const cName = `c_bob_${lib.kind}`;
  const jsName = `js_alice_${lib.kind}`;
  const CDEV = 3;
  const JDEV = 4;
  let js;
  let usedPreKeyId;
  const toJs = (pt) => cEncrypt(cName, jsName, JDEV, pt);
  const atJs = (m) => js.decrypt(cName, CDEV, m.type, m.body);
  const toC = (pt) => js.encrypt(cName, CDEV, pt);
  const atC = (m) => cDecryptOk(cName, jsName, JDEV, m);

  await step('set up a C identity and a JS identity', async () => {
    await cNew(cName, CDEV);
    js = await makePeer(lib, jsName, JDEV);
  });
  await step('JS accepts the C bundle (kw_bundle_self) and starts a session', async () => {
    const cb = (await c.ok({ cmd: 'bundle', as: cName })).bundle;
    assert.notEqual(cb.one_time_pre_key, null, 'the C bundle carries a one-time pre-key');
    usedPreKeyId = cb.one_time_pre_key.id;
    await js.processBundle(cName, CDEV, cb);
  });
  let first;
  await step('JS sends PreKey messages (type 3) until C replies', async () => {
    first = [await toC(text('js->c 1')), await toC(text('js->c 2'))];
    for (const m of first) assert.equal(m.type, 3);
  });
  await step('C rejects a tampered PreKey message and keeps its one-time pre-key', async () => {
    assertCError(await cDecrypt(cName, jsName, JDEV, tamper(first[0])), ['decrypt_failed', 'invalid_message'], 'tampered');
    assert.equal(await cPreKeyCount(cName), 30);
    assert.equal((await c.ok({ cmd: 'bundle', as: cName })).bundle.one_time_pre_key.id, usedPreKeyId);
  });
  await step('C decrypts the first PreKey message and deletes exactly that one-time pre-key', async () => {
    assert.equal((await atC(first[0])).toString(), 'js->c 1');
    assert.equal(await cPreKeyCount(cName), 29, 'pre-key count after the first decrypt');
    const next = (await c.ok({ cmd: 'bundle', as: cName })).bundle.one_time_pre_key;
    assert.notEqual(next?.id, usedPreKeyId, 'the used pre-key is still handed out');
  });
  await step('C decrypts the second PreKey message without deleting another pre-key', async () => {
    assert.equal((await atC(first[1])).toString(), 'js->c 2');
    assert.equal(await cPreKeyCount(cName), 29);
  });
  await step('C rejects a replayed PreKey message with duplicate_message', async () => {
    assertCError(await cDecrypt(cName, jsName, JDEV, first[0]), ['duplicate_message'], 'replayed PreKey message');
    assert.equal(await cPreKeyCount(cName), 29);
  });
  await step('C replies with normal messages (type 2) and JS decrypts them', async () => {
    await deliver(toJs, atJs, [text('c->js 1'), text('c->js 2'), text('c->js 3')], 2);
  });
  await step(`JS now sends normal messages (type ${js?.normalType}) and C decrypts them`, async () => {
    await deliver(toC, atC, [text('js->c 3'), text('js->c 4'), text('js->c 5')], js.normalType);
  });
  await step('three more round trips (a DH ratchet step each turn)', async () => {
    for (let i = 0; i < 3; i++) {
      await deliver(toJs, atJs, [text(`ping ${i}`)], 2);
      await deliver(toC, atC, [text(`pong ${i}`)], js.normalType);
    }
  });
  await c.call({ cmd: 'drop', name: cName });
}

async function foreignSignatures(lib) {
  const cName = `c_carol_${lib.kind}`;
  const ready = flow(`${lib.label} bundles`);
  let js;
  let other;
  await ready('set up a C identity and two JS identities', async () => {
    await cNew(cName, 5);
    js = await makePeer(lib, `js_dave_${lib.kind}`, 6);
    other = await makePeer(lib, `js_eve_${lib.kind}`, 7);
  });
  if (!js) return;
  const cases = [
    [
      'C rejects a JS bundle whose signed pre-key signature was made by another identity',
      async () => {
        const bad = js.bundle();
        const spk = Buffer.from(bad.signed_pre_key.public_key, 'base64');
        bad.signed_pre_key.signature = b64(await js.signForeign(spk));
        assertCError(await c.call({ cmd: 'check_bundle', bundle: bad }), ['invalid_signature'], 'check_bundle');
        const ans = await c.call({ cmd: 'process_bundle', as: cName, peer: js.name, device: 6, bundle: bad });
        assertCError(ans, ['invalid_signature'], 'process_bundle');
        assert.equal((await c.ok({ cmd: 'has_session', as: cName, peer: js.name, device: 6 })).exists, false);
      },
    ],
    [
      "C rejects a JS bundle whose identity key is another identity's",
      async () => {
        const bad = js.bundle();
        bad.identity_key = other.bundle().identity_key;
        assertCError(await c.call({ cmd: 'check_bundle', bundle: bad }), ['invalid_signature'], 'check_bundle');
      },
    ],
    [
      'JS rejects a C bundle whose signed pre-key signature was made by another identity',
      async () => {
        const bad = (await c.ok({ cmd: 'bundle', as: cName })).bundle;
        const spk = Buffer.from(bad.signed_pre_key.public_key, 'base64');
        bad.signed_pre_key.signature = b64(await js.signForeign(spk));
        await assert.rejects(js.processBundle(cName, 5, bad), 'JS accepted the bundle');
        // the unmodified bundle is accepted, so the rejection was about the signature
        await js.processBundle(cName, 5, (await c.ok({ cmd: 'bundle', as: cName })).bundle);
      },
    ],
  ];
  for (const [name, fn] of cases) {
    try {
      await fn();
      pass(`${lib.label} bundles: ${name}`);
    } catch (e) {
      fail(`${lib.label} bundles: ${name}`, e);
    }
  }
  await c.call({ cmd: 'drop', name: cName });
}

// signal_tool and the C library answer bad input with JSON errors, never a crash.
async function badInput() {
  const step = flow('signal_tool bad input');
  await step('set up a C identity', async () => {
    await cNew('c_mallory', 9);
  });
  const cases = [
    ['not JSON', 'garbage{', 'invalid_json'],
    ['unknown field', { cmd: 'prekey_count', as: 'c_mallory', extra: 1 }, 'unknown_field'],
    ['unknown identity', { cmd: 'prekey_count', as: 'nobody' }, 'not_found'],
    ['decrypt with no session', { cmd: 'decrypt', as: 'c_mallory', peer: 'x', device: 1, type: 2, body: 'MzM=' }, null],
    ['decrypt of a message type 7', { cmd: 'decrypt', as: 'c_mallory', peer: 'x', device: 1, type: 7, body: 'AA==' }, 'invalid_field'],
    ['decrypt of bad base64', { cmd: 'decrypt', as: 'c_mallory', peer: 'x', device: 1, type: 3, body: 'a*b=' }, 'invalid_base64'],
    ['decrypt of junk PreKey bytes', { cmd: 'decrypt', as: 'c_mallory', peer: 'x', device: 1, type: 3, body: b64(randomBytes(64)) }, null],
    ['encrypt with no session', { cmd: 'encrypt', as: 'c_mallory', peer: 'x', device: 1, plaintext_b64: 'AA==' }, 'no_session'],
    ['bundle that is not an object', { cmd: 'check_bundle', bundle: [1] }, 'invalid_json'],
    ['encrypt to a 129-byte peer name', { cmd: 'encrypt', as: 'c_mallory', peer: 'p'.repeat(129), device: 1, plaintext_b64: 'AA==' }, 'invalid_field'],
    ['decrypt from a peer name with a control character', { cmd: 'decrypt', as: 'c_mallory', peer: 'x\u0001', device: 1, type: 2, body: 'AA==' }, 'invalid_field'],
  ];
  for (const [name, req, want] of cases) {
    await step(`${name} answers an error`, async () => {
      const ans = await c.call(req);
      assert.equal(ans.ok, false, JSON.stringify(ans));
      assert.equal(typeof ans.detail, 'string');
      if (want) assert.equal(ans.error, want, ans.detail);
    });
  }
}

async function main() {
  setTimeout(() => {
    fail('signal interop', `watchdog: no end after ${WATCHDOG_MS} ms`);
    finish();
  }, WATCHDOG_MS).unref();

  const { libs, missing } = await loadLibraries();
  for (const m of missing) {
    if (process.env.CI === 'true') {
      fail(`load ${m.label}`, m.error);
    } else {
      skipped++;
      console.log(`skip ${m.label}: not installed (${m.error.message.split('\n')[0]})`);
    }
  }
  if (!existsSync(toolPath)) {
    fail('signal_tool is built', `${toolPath} does not exist (run make all)`);
    finish();
  }
  c = new LineTool(toolPath);

  for (const lib of libs) {
    await cInitiates(lib);
    await jsInitiates(lib);
    await foreignSignatures(lib);
  }
  await badInput();

  const st = await c.close();
  if (st.code === 0) pass('signal_tool exits cleanly');
  else fail('signal_tool exits cleanly', `exit ${st.code} signal ${st.sig}\n${st.stderr.slice(0, 4000)}`);
  finish();
}

main().catch((e) => {
  fail('signal interop', e.stack || e);
  finish();
});
