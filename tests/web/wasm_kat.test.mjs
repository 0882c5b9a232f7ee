// wasm_kat.test.mjs — the wasm core (build/web-test, the same objects as the page's module
// plus a crypto door) checked without a browser:
//   - lib/crypto_mbedtls.c against fixed vectors (FIPS 180-2, RFC 4231, RFC 5869, RFC 7914's
//     PBKDF2-SHA256, NIST SP 800-38A, GCM test case) and against OpenSSL (node:crypto) on
//     random inputs, failure cases included (bad padding, bad tag, bad key length);
//   - a Signal session both ways and a sender key between the wasm build and the native
//     libkeywave (build/tests/interop/signal_tool);
//   - the key lifecycle through the page's API (setup, snapshot, restore reuses keys).
// Needs `make web` and `make all`. Prints `ok`/`FAIL` lines and `RESULT passed=N failed=M`.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineTool } from '../interop/lib/line_tool.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const modPath = join(root, 'build/web-test/keywave_test.cjs');
const toolPath = join(root, 'build/tests/interop/signal_tool');
let passed = 0;
let failed = 0;
function check(name, cond, detail = '') {
  if (cond) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name} ${detail}`);
  }
}
function finish() {
  console.log(`RESULT passed=${passed} failed=${failed}`);
  process.exit(failed === 0 ? 0 : 1);
}
for (const p of [modPath, toolPath]) {
  if (!existsSync(p)) {
    check(`${p} exists (run make web and make all)`, false);
    finish();
  }
}

const require = createRequire(import.meta.url);
const Module = require(modPath)();
function call(req) {
  const len = Module.lengthBytesUTF8(JSON.stringify(req)) + 1;
  const p = Module._malloc(len);
  Module.stringToUTF8(JSON.stringify(req), p, len);
  const out = Module._kww_call(p);
  Module._free(p);
  const text = Module.UTF8ToString(out);
  Module._kww_free(out);
  return JSON.parse(text);
}
const c = (req) => call({ cmd: 'crypto', ...req });
const hex = (b) => Buffer.from(b).toString('hex');
const rnd = (n) => crypto.randomBytes(n);

// ---- fixed vectors ---------------------------------------------------------------------
const abc = hex('abc');
check('SHA-256 "abc"', c({ op: 'sha256', in: abc }).out ===
  'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
check('SHA-512 "abc" (and again after final on the same context)', c({ op: 'sha512', in: abc }).out ===
  'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f');
check('HMAC-SHA256 RFC 4231 TC2 (one-shot = streaming)', c({ op: 'hmac', key: hex('Jefe'), in: hex('what do ya want for nothing?') }).out ===
  '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
check('HKDF-SHA256 RFC 5869 A.1', c({ op: 'hkdf', key: '0b'.repeat(22), salt: '000102030405060708090a0b0c', info: 'f0f1f2f3f4f5f6f7f8f9', len: 42 }).out ===
  '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
check('PBKDF2-SHA256 RFC 7914 11 (c=1, 64 bytes)', c({ op: 'pbkdf2', key: hex('passwd'), salt: hex('salt'), iter: 1, len: 64 }).out ===
  '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783');
check('LiveKit PBKDF2 known answer (NOTES.md)', c({ op: 'pbkdf2', key: hex('correct horse battery staple'), salt: hex('LKFrameEncryptionKey'), iter: 100000, len: 16 }).out ===
  'dee9745ab873685c2579655a7296d1a4');
const k128 = '2b7e151628aed2a6abf7158809cf4f3c';
const pt4 = '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710';
const cbc = c({ op: 'aes', mode: 'cbc', encrypt: true, key: k128, iv: '000102030405060708090a0b0c0d0e0f', in: pt4 }).out;
check('AES-128-CBC SP 800-38A F.2.1 (+ one PKCS#7 block)', cbc?.startsWith('7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7') && cbc.length === 160);
const ctr = c({ op: 'aes', mode: 'ctr', encrypt: true, key: k128, iv: 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff', in: pt4 }).out;
check('AES-128-CTR SP 800-38A F.5.1', ctr ===
  '874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee');
check('AES-256-CTR SP 800-38A F.5.5', c({ op: 'aes', mode: 'ctr', encrypt: true, key: '603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4', iv: 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff', in: pt4.slice(0, 32) }).out ===
  '601ec313775789a5b7a7f504bbf3d228');
// GCM test case 3 (McGrew & Viega), 96-bit IV, no AAD
const gk = 'feffe9928665731c6d6a8f9467308308';
const giv = 'cafebabefacedbaddecaf888';
const gpt = 'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255';
const seal = c({ op: 'gcm_seal', key: gk, iv: giv, in: gpt }).out;
check('AES-128-GCM test case 3', seal ===
  '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985' + '4d5c2af327cd64a62cf35abd2ba6fab4');

// ---- against OpenSSL on random inputs ----------------------------------------------------
let agree = true;
for (let i = 0; i < 40 && agree; i++) {
  const data = rnd(i * 37), key = rnd(1 + (i % 70)), salt = rnd(i % 20), info = rnd(i % 30);
  agree &&= c({ op: 'sha256', in: hex(data) }).out === crypto.createHash('sha256').update(data).digest('hex');
  agree &&= c({ op: 'sha512', in: hex(data) }).out === crypto.createHash('sha512').update(data).digest('hex');
  agree &&= c({ op: 'hmac', key: hex(key), in: hex(data) }).out === crypto.createHmac('sha256', key).update(data).digest('hex');
  agree &&= c({ op: 'hkdf', key: hex(key), salt: hex(salt), info: hex(info), len: 1 + i * 3 }).out ===
    hex(crypto.hkdfSync('sha256', key, salt, info, 1 + i * 3));
  agree &&= c({ op: 'pbkdf2', key: hex(key), salt: hex(salt), iter: 1 + i, len: 1 + i * 2 }).out ===
    hex(crypto.pbkdf2Sync(key, salt, 1 + i, 1 + i * 2, 'sha256'));
  for (const bits of [128, 192, 256]) {
    const k = rnd(bits / 8), iv = rnd(16);
    const e = crypto.createCipheriv(`aes-${bits}-cbc`, k, iv);
    const want = Buffer.concat([e.update(data), e.final()]);
    agree &&= c({ op: 'aes', mode: 'cbc', encrypt: true, key: hex(k), iv: hex(iv), in: hex(data) }).out === hex(want);
    agree &&= c({ op: 'aes', mode: 'cbc', encrypt: false, key: hex(k), iv: hex(iv), in: hex(want) }).out === hex(data);
    const ce = crypto.createCipheriv(`aes-${bits}-ctr`, k, iv);
    agree &&= c({ op: 'aes', mode: 'ctr', encrypt: true, key: hex(k), iv: hex(iv), in: hex(data) }).out === hex(Buffer.concat([ce.update(data), ce.final()]));
  }
  for (const bits of [128, 256]) {
    const k = rnd(bits / 8), iv = rnd(12), aad = rnd(i % 13);
    const g = crypto.createCipheriv(`aes-${bits}-gcm`, k, iv);
    g.setAAD(aad);
    const ct = Buffer.concat([g.update(data), g.final()]);
    const tag = g.getAuthTag();
    agree &&= c({ op: 'gcm_seal', key: hex(k), iv: hex(iv), aad: hex(aad), in: hex(data) }).out === hex(ct) + hex(tag);
    agree &&= c({ op: 'gcm_open', key: hex(k), iv: hex(iv), aad: hex(aad), in: hex(ct), tag: hex(tag) }).out === hex(data);
  }
  if (!agree) console.log(`  (mismatch at round ${i})`);
}
check('mbedtls = OpenSSL on 40 random rounds (SHA, HMAC, HKDF, PBKDF2, AES-CBC/CTR 128/192/256, GCM)', agree);

// ---- failure cases ------------------------------------------------------------------------
{
  const k = rnd(16), iv = rnd(16);
  const e = crypto.createCipheriv('aes-128-cbc', k, iv);
  const good = Buffer.concat([e.update(rnd(20)), e.final()]);
  // Blocks encrypted without padding whose last bytes are not a PKCS#7 pad: 0x00, and 0x11.
  for (const last of [0x00, 0x11, 0x02]) {
    const plain = Buffer.alloc(32, 0x41);
    plain[31] = last; // 0x02 with plain[30] = 0x41 is a wrong pad too
    const raw = crypto.createCipheriv('aes-128-cbc', k, iv).setAutoPadding(false);
    const ct = Buffer.concat([raw.update(plain), raw.final()]);
    const r = c({ op: 'aes', mode: 'cbc', encrypt: false, key: hex(k), iv: hex(iv), in: hex(ct) });
    check(`AES-CBC decrypt: pad byte 0x${last.toString(16)} is decrypt_failed`, r.ok === false && r.error === 'decrypt_failed', JSON.stringify(r));
  }
  check('AES-CBC decrypt: a partial block is refused', c({ op: 'aes', mode: 'cbc', encrypt: false, key: hex(k), iv: hex(iv), in: hex(good.subarray(0, 20)) }).ok === false);
  check('AES: a 20-byte key is invalid_argument', c({ op: 'aes', mode: 'ctr', encrypt: true, key: hex(rnd(20)), iv: hex(iv), in: '00' }).ok === false);
  const gkk = rnd(16), giv2 = rnd(12);
  const g = crypto.createCipheriv('aes-128-gcm', gkk, giv2);
  const ct = Buffer.concat([g.update(rnd(33)), g.final()]);
  const tag = Buffer.from(g.getAuthTag());
  tag[0] ^= 1;
  const r = c({ op: 'gcm_open', key: hex(gkk), iv: hex(giv2), in: hex(ct), tag: hex(tag) });
  check('AES-GCM open: a flipped tag bit fails authentication', r.ok === false, JSON.stringify(r));
  check('PBKDF2: zero iterations refused', c({ op: 'pbkdf2', key: '00', salt: '00', iter: 0, len: 16 }).ok === false);
}

// ---- the page's API: keys, snapshot, restore ---------------------------------------------
const now = Date.now();
const steps = [];
Module.kwProgress = (step, label, done, total, skipped) => steps.push({ step, label, done, total, skipped });
check('init', call({ cmd: 'init' }).ok === true);
const setup = call({ cmd: 'keys_setup', now_ms: now });
check('keys_setup makes identity, signed pre-key and 30 pre-keys', setup.ok && setup.made_identity && setup.made_signed_pre_key && setup.made_pre_keys === 30, JSON.stringify(setup));
check('progress reports the five steps in order', JSON.stringify([...new Set(steps.map((s) => s.step))]) === '[1,2,3,4,5]' && steps.some((s) => s.step === 4 && s.done === 30));
const ident = call({ cmd: 'identity' });
const snap = call({ cmd: 'snapshot' });
check('snapshot holds records', snap.ok && Object.keys(snap.records).length > 30);
check('init from the snapshot keeps the identity', call({ cmd: 'init', snapshot: { records: snap.records } }).has_identity === true);
const again = call({ cmd: 'keys_setup', now_ms: now + 1000 });
check('setup after restore reuses everything', again.ok && !again.made_identity && !again.made_signed_pre_key && again.made_pre_keys === 0, JSON.stringify(again));
check('same identity key after restore', call({ cmd: 'identity' }).identity_key === ident.identity_key);
const later = call({ cmd: 'keys_setup', now_ms: now + 8 * 24 * 3600 * 1000 });
check('signed pre-key regenerated after 7 days, identity kept', later.ok && later.made_signed_pre_key && !later.made_identity);
check('keys_replenish with 30 on the server: nothing', call({ cmd: 'keys_replenish', server_count: 30 }).batch === null);
const batch = call({ cmd: 'keys_replenish', server_count: 3 }).batch;
check('keys_replenish with 3 on the server: a batch of 30', batch?.pre_keys?.length === 30);
check('a bad command is answered, not crashed', call({ cmd: 'nope' }).ok === false && call('x' + '{').ok === false);

// ---- Signal with the native libkeywave ----------------------------------------------------
const tool = new LineTool(toolPath);
try {
  call({ cmd: 'init' });
  call({ cmd: 'keys_setup', now_ms: now });
  call({ cmd: 'set_self', name: 'guest_web1', device: 1 });
  const exp = call({ cmd: 'keys_export' }).keys;
  const member = await tool.ok({ cmd: 'new', name: 'alice', device: 2, now_ms: now });
  // wasm -> native: the guest starts the session from the member's bundle
  const pb = call({ cmd: 'process_bundle', name: 'alice', device: 2, bundle: member.bundle });
  check('wasm processes the native bundle', pb.ok === true, JSON.stringify(pb));
  const m1 = call({ cmd: 'encrypt', name: 'alice', device: 2, plaintext: '{"type":"media_key_request","request_id":"00112233445566778899aabbccddeeff"}' });
  check('wasm encrypts a PreKey message (type 3)', m1.type === 3);
  const d1 = await tool.call({ cmd: 'decrypt', as: 'alice', peer: 'guest_web1', device: 1, type: m1.type, body: m1.body });
  check('native decrypts the wasm PreKey message', d1.ok && Buffer.from(d1.plaintext_b64, 'base64').toString().includes('media_key_request'), JSON.stringify(d1));
  const r1 = await tool.ok({ cmd: 'encrypt', as: 'alice', peer: 'guest_web1', device: 1, plaintext_b64: Buffer.from('answer 1').toString('base64') });
  const w1 = call({ cmd: 'decrypt', name: 'alice', device: 2, type: r1.type, body: r1.body });
  check('wasm decrypts the native answer', w1.plaintext === 'answer 1', JSON.stringify(w1));
  check('a replayed message is refused', call({ cmd: 'decrypt', name: 'alice', device: 2, type: r1.type, body: r1.body }).ok === false);
  for (let i = 0; i < 3; i++) {
    const m = call({ cmd: 'encrypt', name: 'alice', device: 2, plaintext: `ping ${i}` });
    const d = await tool.call({ cmd: 'decrypt', as: 'alice', peer: 'guest_web1', device: 1, type: m.type, body: m.body });
    const r = await tool.ok({ cmd: 'encrypt', as: 'alice', peer: 'guest_web1', device: 1, plaintext_b64: Buffer.from(`pong ${i}`).toString('base64') });
    const w = call({ cmd: 'decrypt', name: 'alice', device: 2, type: r.type, body: r.body });
    if (!(m.type === 2 && Buffer.from(d.plaintext_b64 ?? '', 'base64').toString() === `ping ${i}` && w.plaintext === `pong ${i}`)) {
      check(`ratchet round ${i}`, false, JSON.stringify({ m: m.type, d, w }));
    }
  }
  check('three ratchet round trips', true);
  // native -> wasm: the member starts from the guest's bundle (the registration document)
  const gb = {
    session_id: 'web1', device_id: '1', registration_id: exp.registration_id, identity_key: exp.identity_key,
    signed_pre_key: exp.signed_pre_key, one_time_pre_key: exp.pre_keys[0],
  };
  await tool.ok({ cmd: 'new', name: 'bob', device: 3, now_ms: now });
  const pbn = await tool.call({ cmd: 'process_bundle', as: 'bob', peer: 'guest_web1', device: 1, bundle: gb });
  check('native processes the wasm bundle', pbn.ok === true, JSON.stringify(pbn));
  const n1 = await tool.ok({ cmd: 'encrypt', as: 'bob', peer: 'guest_web1', device: 1, plaintext_b64: Buffer.from('hello guest').toString('base64') });
  const wd = call({ cmd: 'decrypt', name: 'bob', device: 3, type: n1.type, body: n1.body });
  check('wasm decrypts the native PreKey message', wd.plaintext === 'hello guest', JSON.stringify(wd));
  // sender key: the member's distribution over the session, then a group message
  const dist = await tool.ok({ cmd: 'group_dist', as: 'bob', group: 'meeting1' });
  const gp = call({ cmd: 'group_process', group: 'meeting1', sender: 'bob', device: 3, dist: dist.dist });
  check('wasm processes the native sender key', gp.ok === true, JSON.stringify(gp));
  const gct = await tool.ok({ cmd: 'group_encrypt', as: 'bob', group: 'meeting1', plaintext_b64: Buffer.from('to everyone').toString('base64') });
  const gd = call({ cmd: 'group_decrypt', group: 'meeting1', sender: 'bob', device: 3, ct: gct.ct });
  check('wasm decrypts the native group message', gd.plaintext === 'to everyone', JSON.stringify(gd));
  const tampered = gct.ct.slice(0, 20) + (gct.ct[20] === 'A' ? 'B' : 'A') + gct.ct.slice(21);
  check('a tampered group message is refused', call({ cmd: 'group_decrypt', group: 'meeting1', sender: 'bob', device: 3, ct: tampered }).ok === false);
  // the media-key agreement: alone -> a key; the fingerprint is stable
  check('mka_new', call({ cmd: 'mka_new', self: 'guest_web1' }).ok === true);
  const st = call({ cmd: 'mka_start', now_ms: now, peers: [{ id: 'alice:2', joined_ms: 1 }] });
  check('mka_start with a member present asks it (send media_key_request)', st.ok && st.state === 'requesting' && st.actions[0]?.type === 'send' && st.actions[0].kind === 'media_key_request' && st.deadline === now + 5000, JSON.stringify(st));
  const key = { type: 'media_key', request_id: st.actions[0].request_id, key: rnd(32).toString('base64'), epoch: 0, created_ms: 5, key_id: '0011223344556677' };
  const rec = call({ cmd: 'mka_receive', now_ms: now + 10, from: 'alice:2', payload: JSON.stringify(key) });
  const ka = rec.actions.find((a) => a.type === 'key');
  const fp = crypto.createHash('sha256').update(Buffer.from(key.key, 'base64')).digest('hex').slice(0, 16).match(/..../g).join(' ');
  check('the answer becomes the key; fingerprint = first 8 bytes of SHA-256', rec.state === 'have_key' && ka?.fingerprint === fp && ka.key === key.key, JSON.stringify(rec));
  check('mka_key reports the same fingerprint', call({ cmd: 'mka_key' }).fingerprint === fp);
  const bad = call({ cmd: 'mka_receive', now_ms: now, from: 'alice:2', payload: '{"type":"media_key"}' });
  check('a malformed payload is refused', bad.ok === false);
} catch (e) {
  check('signal interop ran', false, e.stack);
} finally {
  const st = await tool.close();
  check('signal_tool exits cleanly', st.code === 0, st.stderr ?? '');
}
finish();
