// sio_codec.test.mjs — keywave's Engine.IO v4 / Socket.IO v5 codec (eio.h, sio.h) against the
// parsers socket.io-client itself uses: engine.io-parser and socket.io-parser from npm.
//
// Through build/tests/interop/sio_tool (one JSON object per line, frames in hex):
//   (a) packets encoded by socket.io-parser + engine.io-parser decode in C to the same packet;
//   (b) packets encoded by C decode in JS to the same packet, and C's frame is byte-identical
//       to the one JS makes (so a stock client sees exactly what it would from a Node server);
//   (c) the open packet and the Engine.IO control frames, both ways;
//   (d) differential on malformed and randomly mutated frames: whatever C accepts, JS accepts
//       as the same packet (C is allowed to be stricter; those cases are counted, not failed).
// Last line: RESULT passed=N failed=M [skipped=K].
// Env: KW_TOOLS (directory of sio_tool), KW_SEED (mutation seed), CI=true (no skips).

import { existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

import { LineTool } from './lib/line_tool.mjs';

const CI = process.env.CI === 'true';
let passed = 0;
let failed = 0;
let skipped = 0;

function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
}

function finish() {
  console.log(`RESULT passed=${passed} failed=${failed}${skipped ? ` skipped=${skipped}` : ''}`);
  process.exit(failed ? 1 : 0);
}

const hex = (s) => Buffer.from(s, 'utf8').toString('hex');
const unhex = (h) => Buffer.from(h, 'hex').toString('utf8');

// A small deterministic generator, so a failing run can be repeated (KW_SEED).
let seed = Number(process.env.KW_SEED ?? 0x51f0c0de) >>> 0 || 1;
function rand(n) {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % n;
}

// Socket.IO packet types (socket.io-parser's PacketType).
const CONNECT = 0;
const DISCONNECT = 1;
const EVENT = 2;
const ACK = 3;
const CONNECT_ERROR = 4;

// Packets both sides must agree on: the protocol document's examples, keywave's events, and
// awkward but valid content (escapes, non-ASCII, nesting, numbers, the largest ack id).
const VECTORS = [
  { type: CONNECT, nsp: '/' },
  { type: CONNECT, nsp: '/admin', data: { sid: 'oSO0OpakMV_3jnilAAAA' } },
  { type: CONNECT, nsp: '/', data: { sid: 'wZX3oN0bSVIhsaknAAAI' } },
  { type: CONNECT, nsp: '/admin', data: { token: '123' } },
  { type: CONNECT, nsp: '/external', data: { token: 's3cr3t', nested: { a: [1, 2, { b: null }] } } },
  { type: CONNECT_ERROR, nsp: '/', data: { message: 'Not authorized' } },
  { type: CONNECT_ERROR, nsp: '/random', data: { message: 'Invalid namespace' } },
  { type: CONNECT_ERROR, nsp: '/external', data: { message: 'unauthorized', data: { error: 'unauthorized' } } },
  { type: CONNECT_ERROR, nsp: '/', data: { message: 'quote " backslash \\ newline \n tab \t ctl \u0001 é € 😀' } },
  { type: EVENT, nsp: '/', data: ['foo'] },
  { type: EVENT, nsp: '/admin', data: ['bar'] },
  { type: EVENT, nsp: '/', data: ['foo'], id: 12 },
  { type: EVENT, nsp: '/', data: ['hey', 'Jude'] },
  { type: EVENT, nsp: '/', data: ['message', 1, '2', { 3: [true] }] },
  { type: EVENT, nsp: '/', data: ['message-with-ack', 1, '2', { 3: [true] }], id: 456 },
  { type: EVENT, nsp: '/', data: ['x'], id: 0 },
  { type: EVENT, nsp: '/', data: ['x'], id: 4294967295 },
  { type: EVENT, nsp: '/', data: ['café', 'naïve €', '\u2028\u2029'] },
  { type: EVENT, nsp: '/', data: ['a"b\\c\n\u0001'] },
  { type: EVENT, nsp: '/', data: ['emoji 😀', { k: '😀' }] },
  { type: EVENT, nsp: '/', data: ['n', -1, 0.5, 1e21, 9007199254740991, false, null, [], {}] },
  { type: EVENT, nsp: '/a-b.c~d!$&\'()*+;=:@%2F/e', data: ['x'] },
  {
    type: EVENT,
    nsp: '/external',
    id: 7,
    data: ['guest:signal_message', { recipient_user_id: 'u1', recipient_device_id: 2, encrypted_message: 'AAEC', message_type: 3 }],
  },
  { type: EVENT, nsp: '/', id: 3, data: ['sendItem', { recipient: 'u2', recipientDeviceId: 1, type: 'text', payload: 'Mw==', cipherType: 3, itemId: 'i1' }] },
  { type: EVENT, nsp: '/external', data: ['meeting:receiveSenderKey', { meetingId: 'm', senderId: 'u', senderDeviceId: 1, encryptedSenderKey: 'AQ==' }] },
  { type: EVENT, nsp: '/', data: ['e'.repeat(64)] },
  { type: ACK, nsp: '/admin', data: ['bar'], id: 13 },
  { type: ACK, nsp: '/', data: [], id: 12 },
  { type: ACK, nsp: '/', data: [{ ok: true }], id: 0 },
  { type: ACK, nsp: '/external', data: [{ error: 'recipient_offline' }], id: 4294967295 },
  { type: ACK, nsp: '/', data: [1, '2', { 3: [true] }], id: 456 },
  { type: DISCONNECT, nsp: '/' },
  { type: DISCONNECT, nsp: '/admin' },
];

// The packet as socket.io-parser's Decoder returns it (no undefined keys).
function normal(p) {
  const out = { type: p.type, nsp: p.nsp };
  if (p.id !== undefined && p.id !== null) out.id = p.id;
  if (p.data !== undefined) out.data = p.data;
  return out;
}

// The C decode answer as a socket.io-parser packet.
function fromC(sio) {
  const p = { type: sio.type, nsp: sio.nsp };
  if (sio.ack !== null) p.id = sio.ack;
  if (sio.data !== null) p.data = JSON.parse(sio.data);
  return p;
}

async function loadParsers() {
  try {
    const sp = await import('socket.io-parser');
    const ep = await import('engine.io-parser');
    return { sp, ep };
  } catch (e) {
    return { error: e };
  }
}

// JS side: frame text -> {eio: type name, packet} or {error}.
function jsDecode(parsers, frame) {
  const e = parsers.ep.decodePacket(frame, 'nodebuffer');
  if (e.type === 'error') return { error: 'engine.io: parser error' };
  if (e.type !== 'message') return { eio: e.type, data: e.data };
  if (typeof e.data !== 'string') return { error: 'engine.io: binary message' };
  const dec = new parsers.sp.Decoder();
  let out = null;
  dec.on('decoded', (p) => {
    out = p;
  });
  try {
    dec.add(e.data);
  } catch (err) {
    return { error: `socket.io: ${err.message}` };
  }
  dec.destroy();
  // A binary packet waits for attachments: never a complete packet for keywave.
  if (out === null) return { error: 'socket.io: incomplete (binary attachments awaited)' };
  return { eio: 'message', packet: normal(out) };
}

// JS side: packet -> frame text, the way a Socket.IO server or client writes it.
function jsEncode(parsers, packet) {
  const parts = new parsers.sp.Encoder().encode(packet);
  if (parts.length !== 1) throw new Error('binary packet');
  let frame = null;
  parsers.ep.encodePacket({ type: 'message', data: parts[0] }, false, (f) => {
    frame = f;
  });
  return frame;
}

// The C encoder for a packet, with the helper that fits its type.
function cRequest(p) {
  const nsp = p.nsp === '/' ? null : p.nsp;
  const rest = (arr) => JSON.stringify(arr).slice(1, -1);
  switch (p.type) {
    case EVENT:
      return { cmd: 'event', nsp, ack: p.id ?? null, name: p.data[0], args: rest(p.data.slice(1)) };
    case ACK:
      return { cmd: 'ack', nsp, ack: p.id, args: rest(p.data) };
    case CONNECT_ERROR:
      if (Object.keys(p.data).length === 1) return { cmd: 'connect_error', nsp, message: p.data.message };
      break;
    case CONNECT:
      if (p.data && Object.keys(p.data).length === 1 && typeof p.data.sid === 'string') {
        return { cmd: 'connect_ok', nsp, sid: p.data.sid };
      }
      break;
    default:
      break;
  }
  return { cmd: 'encode', type: p.type, nsp, ack: p.id ?? null, data: p.data === undefined ? null : JSON.stringify(p.data) };
}

const describe = (p) => JSON.stringify(p).slice(0, 100);

async function jsToC(tool, parsers) {
  for (const v of VECTORS) {
    const frame = jsEncode(parsers, v);
    const ans = await tool.call({ cmd: 'decode', hex: hex(frame) });
    const ok = ans.ok && ans.eio === 4 && isDeepStrictEqual(fromC(ans.sio), normal(v));
    const ev = v.type === EVENT ? ans.sio?.event === v.data[0] && ans.sio?.argc === v.data.length - 1 : true;
    check(`JS -> C ${describe(v)}`, ok && ev, JSON.stringify(ans).slice(0, 300));
  }
}

async function cToJs(tool, parsers) {
  for (const v of VECTORS) {
    const ans = await tool.call(cRequest(v));
    if (!ans.ok) {
      check(`C -> JS ${describe(v)}`, false, `${ans.error}: ${ans.detail}`);
      continue;
    }
    const frame = unhex(ans.hex);
    const js = jsDecode(parsers, frame);
    const same = js.packet && isDeepStrictEqual(js.packet, normal(v));
    const identical = frame === jsEncode(parsers, v);
    check(`C -> JS ${describe(v)}`, same && identical, `C frame ${frame.slice(0, 120)} / JS ${JSON.stringify(js).slice(0, 200)}`);
  }
}

async function engineFrames(tool, parsers) {
  // The open packet of DESIGN.md section 8, as a stock client reads it.
  const ans = await tool.call({ cmd: 'open', sid: 'lv_VI97HAXpY6yYWAAAC', pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 });
  const js = ans.ok ? parsers.ep.decodePacket(unhex(ans.hex), 'nodebuffer') : {};
  const hs = js.type === 'open' ? JSON.parse(js.data) : null;
  check(
    'C open packet read by engine.io-parser',
    hs !== null &&
      isDeepStrictEqual(hs, { sid: 'lv_VI97HAXpY6yYWAAAC', upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 }),
    JSON.stringify(js),
  );
  // And an open packet written in JS (the document's example) read by C.
  let frame = null;
  const doc = { sid: 'lv_VI97HAXpY6yYWAAAC', upgrades: ['websocket'], pingInterval: 25000, pingTimeout: 5000, maxPayload: 1000000 };
  parsers.ep.encodePacket({ type: 'open', data: JSON.stringify(doc) }, false, (f) => {
    frame = f;
  });
  const back = await tool.call({ cmd: 'decode', hex: hex(frame) });
  check(
    'JS open packet read by C',
    back.ok && back.eio === 0 && back.open?.sid === doc.sid && back.open?.pingTimeout === 5000,
    JSON.stringify(back),
  );
  // Control frames: JS encodes, C decodes; C encodes, JS decodes.
  const types = { close: 1, ping: 2, pong: 3, noop: 6 };
  for (const [name, num] of Object.entries(types)) {
    for (const data of name === 'ping' || name === 'pong' ? [undefined, 'probe'] : [undefined]) {
      let f = null;
      parsers.ep.encodePacket({ type: name, data }, false, (x) => {
        f = x;
      });
      const a = await tool.call({ cmd: 'decode', hex: hex(f) });
      check(`JS ${name}${data ? ' ' + data : ''} -> C`, a.ok && a.eio === num && unhex(a.data_hex) === (data ?? ''), JSON.stringify(a));
      const c = await tool.call({ cmd: 'eio', type: num, data: data ?? null });
      const d = c.ok ? parsers.ep.decodePacket(unhex(c.hex), 'nodebuffer') : {};
      check(`C ${name}${data ? ' ' + data : ''} -> JS`, d.type === name && (d.data ?? '') === (data ?? ''), JSON.stringify(d));
    }
  }
  // What C refuses at the Engine.IO level although engine.io-parser reads it.
  for (const [what, f] of [
    ['upgrade packet', '5'],
    ['base64 binary message (polling form)', 'bAQID'],
  ]) {
    const a = await tool.call({ cmd: 'decode', hex: hex(f) });
    check(`C refuses ${what}`, !a.ok && a.error === 'invalid_message', JSON.stringify(a));
  }
}

// Frames a stock parser rejects, or that keywave refuses on purpose.
const MALFORMED = [
  '', '4', '7', '47', '4x', '45', '451-["baz",{"_placeholder":true,"num":0}]',
  '461-15["bar",{"_placeholder":true,"num":0}]', '42', '42{"a":1}', '42"foo"', '42[]', '42[1]',
  '42[null]', '42[""]', '42["connect"]', '42["disconnect",1]', '42["newListener"]',
  '42["foo"]x', '42["foo"] ', '42 ["foo"]', '42["foo",]', '42/admin["foo"]',
  '424294967296["x"]', '42012["x"]', '43[]', '43/admin,[1]', '4312', '401', '401{}', '411',
  '441{"message":"x"}', '40[]', '40"x"', '41{}', '41/admin,{}', '44', '44"Not authorized"',
  '44{}', '44{"message":1}', '44{"message":"x","extra":1}', '42["x",{"a":1,"a":2}]',
  '42["x",99999999999999999999]', '42["a\\u0000b"]', '42/ad min,["x"]', '42/ad"min,["x"]',
  '1x', '6x', '2pro be', '0', '0[]', '0{"sid":"a"}',
];

function randomChar() {
  const alphabet = '/,0123456789[]{}":\\ -_ab\u00e9\u20ac\u0001\n';
  return alphabet[rand(alphabet.length)];
}

function mutate(s) {
  const i = rand(s.length + 1);
  switch (rand(5)) {
    case 0:
      return s.slice(0, i) + s.slice(i + 1);
    case 1:
      return s.slice(0, i) + randomChar() + s.slice(i);
    case 2:
      return s.slice(0, i) + randomChar() + s.slice(i + 1);
    case 3: {
      const j = rand(s.length + 1);
      return s.slice(0, Math.min(i, j)) + s.slice(Math.min(i, j), Math.max(i, j)).repeat(2) + s.slice(Math.max(i, j));
    }
    default:
      return s.slice(0, i);
  }
}

async function differential(tool, parsers) {
  const inputs = [...MALFORMED];
  const bases = VECTORS.map((v) => jsEncode(parsers, v));
  const rounds = Number(process.env.KW_MUTATIONS ?? 4000);
  for (let n = 0; n < rounds; n++) {
    let s = bases[rand(bases.length)];
    const k = 1 + rand(3);
    for (let m = 0; m < k; m++) s = mutate(s);
    if (s.isWellFormed()) inputs.push(s); // a WebSocket text frame is valid UTF-8
  }
  let bothAccept = 0;
  let bothReject = 0;
  let stricter = 0;
  const problems = [];
  for (const s of inputs) {
    const c = await tool.call({ cmd: 'decode', hex: hex(s) });
    const js = jsDecode(parsers, s);
    if (!c.ok) {
      if (js.error) bothReject++;
      else stricter++;
      if (c.error !== 'invalid_message') problems.push(`C error ${c.error} for ${JSON.stringify(s)}`);
      continue;
    }
    if (js.error) {
      problems.push(`C accepts what JS rejects (${js.error}): ${JSON.stringify(s)}`);
      continue;
    }
    if (c.eio !== 4) {
      if (js.eio === 'message') problems.push(`Engine.IO type differs for ${JSON.stringify(s)}`);
      else bothAccept++;
      continue;
    }
    if (!isDeepStrictEqual(fromC(c.sio), js.packet)) {
      problems.push(`decoded differently: ${JSON.stringify(s)}: C ${JSON.stringify(fromC(c.sio))} JS ${JSON.stringify(js.packet)}`);
      continue;
    }
    bothAccept++;
  }
  console.log(`     differential: ${inputs.length} frames, both accept ${bothAccept}, both reject ${bothReject}, only C rejects ${stricter}`);
  check('differential: C accepts only what socket.io-parser accepts, as the same packet', problems.length === 0, problems.slice(0, 5).join('\n     '));
  // Every hand-written malformed frame is refused by C.
  let accepted = [];
  for (const s of MALFORMED) {
    const c = await tool.call({ cmd: 'decode', hex: hex(s) });
    if (c.ok) accepted.push(s);
  }
  check('C refuses every frame of the malformed table', accepted.length === 0, accepted.map((s) => JSON.stringify(s)).join(' '));
}

async function queries(tool) {
  const cases = [
    ['EIO=4&transport=websocket', true],
    ['EIO=4&transport=websocket&t=N8hyd6w', true],
    ['EIO=4&transport=polling&t=N8hyd6w', false, "polling transport is not supported; use transports: ['websocket']"],
    ['EIO=3&transport=websocket', false],
    ['transport=websocket', false],
  ];
  for (const [q, ok, detail] of cases) {
    const a = await tool.call({ cmd: 'query', q });
    check(`query ${q}`, a.ok === ok && (!detail || a.detail === detail), JSON.stringify(a));
  }
}

async function main() {
  setTimeout(() => {
    check('sio codec interop', false, 'watchdog: no end after 120 s');
    finish();
  }, 120000).unref();

  const parsers = await loadParsers();
  if (parsers.error) {
    if (CI) {
      check('load socket.io-parser and engine.io-parser', false, parsers.error.message);
    } else {
      skipped++;
      console.log(`skip sio codec interop: parsers not installed (${parsers.error.message.split('\n')[0]})`);
    }
    finish();
  }
  const toolPath = `${process.env.KW_TOOLS ?? 'build/tests/interop'}/sio_tool`;
  if (!existsSync(toolPath)) {
    check('sio_tool is built', false, `${toolPath} does not exist (run make all)`);
    finish();
  }
  const tool = new LineTool(toolPath);
  await jsToC(tool, parsers);
  await cToJs(tool, parsers);
  await engineFrames(tool, parsers);
  await differential(tool, parsers);
  await queries(tool);
  const st = await tool.close();
  check('sio_tool exits cleanly', st.code === 0, `exit ${st.code} signal ${st.sig}\n${st.stderr.slice(0, 2000)}`);
  finish();
}

main().catch((e) => {
  check('sio codec interop', false, e.stack);
  finish();
});
