// tokens.test.mjs — keywaved's media tokens (server/tokens.c) judged by the real verifiers:
// livekit-server-sdk 2.19's TokenVerifier for the LiveKit tokens and jsonwebtoken 9 for the
// Jitsi JWT (DESIGN.md section 7 "LiveKit JWT", "Jitsi JWT"; seed 004; INV-4).
//
// The C side is the unit-test binary build/tests/test_srv_tokens in tool mode
// (KW_TOKEN_TOOL=1: one JSON request per line on stdin, one JSON answer per line; protocol in
// the header of tests/unit/test_srv_tokens.c). It is used instead of a tests/interop/*_tool.c
// helper because interop helpers link libkeywave only, while tokens.c is server code built
// with libjwt; the server unit-test binaries carry exactly that. KW_TOOLS points at
// build/tests/interop, so the binary is $KW_TOOLS/../test_srv_tokens.
//
// Cases: member channel (owner and not), member meeting and guest tokens are accepted by
// TokenVerifier with the expected sub, name, metadata and video grant, and their grant keys
// match the SDK's own AccessToken; a guest's exp never passes its session's end; a wrong
// secret, a wrong key (issuer), an expired and a not-yet-valid token are rejected. The Jitsi
// token verifies with jsonwebtoken (HS256 only, audience, issuer, subject) with every claim
// checked, and a wrong secret, audience, issuer or algorithm list, or an expired token, is
// rejected. Prints `ok`/`FAIL` per case, then `RESULT passed=N failed=M`.
// Env: KW_TOOLS; CI=true makes a missing npm package a failure instead of a skip.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { LineTool } from './lib/line_tool.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const toolDir = process.env.KW_TOOLS || path.join(here, '../../build/tests/interop');
const toolPath = path.join(toolDir, '..', 'test_srv_tokens');
const CI = process.env.CI === 'true';
const WATCHDOG_MS = 60000;

const LK_KEY = 'APIkeywaveInterop';
const LK_SECRET = 'lk-secret-3f1c9a7e5b2d4c6a8e0f1a3b5c7d9e1f';
const JT_APP = 'keywave-interop';
const JT_SECRET = 'jt-secret-0123456789abcdef0123456789abcdef';
const JT_URL = 'https://Meet.Example.org:8443/';
const SIX_H = 6 * 3600;

let passed = 0;
let failed = 0;
let skipped = 0;

function pass(name) {
  passed++;
  console.log(`ok   ${name}`);
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
async function test(name, fn) {
  try {
    await fn();
    pass(name);
  } catch (e) {
    fail(name, e);
  }
}
async function rejects(promiseOrFn, what) {
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch {
    return;
  }
  throw new Error(`${what} was accepted`);
}

// ---- the C side ----------------------------------------------------------------------------
let c;
const nowMs = () => Date.now();

function lkChannel(over = {}) {
  return c.call({ cmd: 'livekit_channel', api_key: LK_KEY, api_secret: LK_SECRET, now_ms: nowMs(),
    user_id: 'u_alice', user_name: 'Alice Ærø', channel_id: 'ch_7', owner: false, ...over });
}
function lkMeeting(over = {}) {
  return c.call({ cmd: 'livekit_meeting', api_key: LK_KEY, api_secret: LK_SECRET, now_ms: nowMs(),
    user_id: 'u_bob', device_id: '3', user_name: 'Bob', meeting_id: 'mtg_0a1b2c3d4e5f', owner: true,
    ...over });
}
function lkGuest(over = {}) {
  const now = over.now_ms ?? nowMs();
  return c.call({ cmd: 'livekit_guest', api_key: LK_KEY, api_secret: LK_SECRET, now_ms: now,
    session_id: '0123456789abcdef0123456789abcdef', display_name: 'Guest Gina',
    meeting_id: 'mtg_0a1b2c3d4e5f', session_expires_ms: now + 24 * 3600 * 1000, ...over });
}
function jitsi(over = {}) {
  return c.call({ cmd: 'jitsi', app_id: JT_APP, app_secret: JT_SECRET, server_url: JT_URL,
    expiration_s: 7200, now_ms: nowMs(), meeting_id: 'mtg_ABC-def_12', user_id: 'u_carol',
    name: 'Carol', email: 'carol@example.org', moderator: true, audio: true, video: false, ...over });
}
function okAnswer(ans) {
  assert.equal(ans.ok, true, `tool refused: ${ans.error}: ${ans.detail}`);
  return ans;
}

// ---- LiveKit ---------------------------------------------------------------------------------
async function livekitCases(sdk) {
  const { TokenVerifier, AccessToken } = sdk;
  const verifier = new TokenVerifier(LK_KEY, LK_SECRET);

  // Checks the claims every keywave LiveKit token has; returns the verified payload.
  async function verifyCommon(ans, identity, room) {
    assert.equal(ans.identity, identity);
    assert.equal(ans.room, room);
    const p = await verifier.verify(ans.token);
    assert.equal(p.iss, LK_KEY);
    assert.equal(p.sub, identity);
    assert.equal(typeof p.nbf, 'number');
    assert.ok(Math.abs(p.nbf - Date.now() / 1000) < 30, `nbf ${p.nbf} is now`);
    assert.equal(typeof p.metadata, 'string', 'metadata is a JSON string');
    const header = JSON.parse(Buffer.from(ans.token.split('.')[0], 'base64url').toString());
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
    return p;
  }

  await test('livekit: channel member token accepted with identity, name, metadata, grants', async () => {
    const ans = okAnswer(await lkChannel());
    const p = await verifyCommon(ans, 'u_alice', 'channel-ch_7');
    assert.equal(p.name, 'Alice Ærø');
    assert.deepEqual(JSON.parse(p.metadata), { user_id: 'u_alice', channel_id: 'ch_7' });
    assert.deepEqual(p.video, { room: 'channel-ch_7', roomJoin: true, canPublish: true,
      canSubscribe: true, canPublishData: true });
    assert.equal(p.exp - p.nbf, SIX_H);
    assert.deepEqual(Object.keys(p).sort(), ['exp', 'iss', 'metadata', 'name', 'nbf', 'sub', 'video']);
  });

  await test('livekit: channel owner token carries roomAdmin', async () => {
    const p = await verifier.verify(okAnswer(await lkChannel({ owner: true })).token);
    assert.equal(p.video.roomAdmin, true);
  });

  await test('livekit: meeting member token accepted (identity user:device, is_guest false)', async () => {
    const ans = okAnswer(await lkMeeting());
    const p = await verifyCommon(ans, 'u_bob:3', 'mtg_0a1b2c3d4e5f');
    assert.equal(p.name, 'Bob');
    assert.deepEqual(JSON.parse(p.metadata), { user_id: 'u_bob', device_id: '3',
      meeting_id: 'mtg_0a1b2c3d4e5f', is_guest: false });
    assert.deepEqual(p.video, { room: 'mtg_0a1b2c3d4e5f', roomJoin: true, canPublish: true,
      canSubscribe: true, canPublishData: true, roomAdmin: true });
    assert.equal(p.exp - p.nbf, SIX_H);
  });

  await test('livekit: INV-4 guest token accepted, guest_<sid>, no data channel, no roomAdmin', async () => {
    const ans = okAnswer(await lkGuest());
    const p = await verifyCommon(ans, 'guest_0123456789abcdef0123456789abcdef', 'mtg_0a1b2c3d4e5f');
    assert.equal(p.name, 'Guest Gina');
    assert.deepEqual(JSON.parse(p.metadata), { session_id: '0123456789abcdef0123456789abcdef',
      meeting_id: 'mtg_0a1b2c3d4e5f', is_guest: true });
    assert.deepEqual(p.video, { room: 'mtg_0a1b2c3d4e5f', roomJoin: true, canPublish: true,
      canSubscribe: true, canPublishData: false });
    assert.equal(p.exp - p.nbf, SIX_H);
  });

  await test('livekit: INV-4 guest token never outlives the session', async () => {
    const now = nowMs();
    const end = now + 10 * 60 * 1000 + 123;
    const p = await verifier.verify(okAnswer(await lkGuest({ now_ms: now, session_expires_ms: end })).token);
    assert.equal(p.exp, Math.floor(end / 1000));
    const gone = await lkGuest({ now_ms: now, session_expires_ms: now - 1 });
    assert.equal(gone.ok, false);
    assert.equal(gone.error, 'session_expired');
  });

  await test('livekit: grant keys match the SDK\'s own AccessToken', async () => {
    const ans = okAnswer(await lkGuest());
    const ours = await verifier.verify(ans.token);
    const at = new AccessToken(LK_KEY, LK_SECRET, { identity: ours.sub, name: ours.name,
      metadata: ours.metadata, ttl: SIX_H });
    at.addGrant({ room: ours.video.room, roomJoin: true, canPublish: true, canSubscribe: true,
      canPublishData: false });
    const theirs = await verifier.verify(await at.toJwt());
    assert.deepEqual(ours.video, theirs.video);
    for (const k of ['iss', 'sub', 'name', 'metadata']) assert.equal(ours[k], theirs[k], k);
  });

  await test('livekit: a wrong secret is rejected (both directions)', async () => {
    const ans = okAnswer(await lkMeeting());
    await rejects(new TokenVerifier(LK_KEY, `${LK_SECRET}x`).verify(ans.token), 'verify with wrong secret');
    const other = okAnswer(await lkMeeting({ api_secret: 'some-other-secret-of-the-same-length!!' }));
    await rejects(verifier.verify(other.token), 'token signed with another secret');
  });

  await test('livekit: a token of another API key (issuer) is rejected', async () => {
    const ans = okAnswer(await lkChannel({ api_key: 'APIsomeoneElse' }));
    await rejects(verifier.verify(ans.token), 'token with another issuer');
  });

  await test('livekit: an expired token is rejected', async () => {
    const ans = okAnswer(await lkMeeting({ now_ms: nowMs() - (SIX_H + 3600) * 1000 }));
    await rejects(verifier.verify(ans.token), 'expired token');
    const guest = okAnswer(await lkGuest({ now_ms: nowMs() - 3600 * 1000,
      session_expires_ms: nowMs() - 60 * 1000 }));
    await rejects(verifier.verify(guest.token), 'guest token past its session end');
  });

  await test('livekit: a token from the future (nbf) is rejected', async () => {
    const ans = okAnswer(await lkChannel({ now_ms: nowMs() + 3600 * 1000 }));
    await rejects(verifier.verify(ans.token), 'token not yet valid');
  });

  await test('livekit: bad input answers an error, not a token', async () => {
    for (const [over, want] of [[{ api_secret: '' }, 'not_configured'], [{ api_key: '' }, 'not_configured'],
      [{ channel_id: '' }, 'invalid_field'], [{ user_name: 'x'.repeat(1025) }, 'invalid_field']]) {
      const ans = await lkChannel(over);
      assert.equal(ans.ok, false, JSON.stringify(over));
      assert.equal(ans.error, want);
      assert.equal(typeof ans.detail, 'string');
    }
  });
}

// ---- Jitsi -----------------------------------------------------------------------------------
async function jitsiCases(jwt) {
  const opts = { algorithms: ['HS256'], audience: JT_APP, issuer: JT_APP, subject: 'meet.example.org',
    complete: true };

  await test('jitsi: jsonwebtoken verifies the token and every claim', async () => {
    const now = nowMs();
    const ans = okAnswer(await jitsi({ now_ms: now }));
    assert.equal(ans.room_name, 'mtg_abc-def_12');
    assert.equal(ans.url, 'https://Meet.Example.org:8443/mtg_abc-def_12');
    const { header, payload } = jwt.verify(ans.token, JT_SECRET, opts);
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
    const nbf = Math.floor(now / 1000);
    assert.deepEqual(payload, {
      iss: JT_APP, aud: JT_APP, sub: 'meet.example.org', room: 'mtg_abc-def_12',
      nbf, exp: nbf + 7200, moderator: true,
      context: {
        user: { id: 'u_carol', name: 'Carol', email: 'carol@example.org', moderator: true },
        features: { audio: true, video: false },
      },
    });
  });

  await test('jitsi: participant token, room name sanitised, configured expiration', async () => {
    const now = nowMs();
    const ans = okAnswer(await jitsi({ now_ms: now, meeting_id: 'Call_00AA 11bb.22cc-é', moderator: false,
      audio: false, video: true, expiration_s: 60, email: undefined, server_url: 'http://jitsi.local' }));
    assert.equal(ans.room_name, 'call_00aa11bb22cc-');
    assert.equal(ans.url, 'http://jitsi.local/call_00aa11bb22cc-');
    const { payload } = jwt.verify(ans.token, JT_SECRET, { ...opts, subject: 'jitsi.local' });
    assert.equal(payload.room, 'call_00aa11bb22cc-');
    assert.equal(payload.exp - payload.nbf, 60);
    assert.equal(payload.moderator, false);
    assert.deepEqual(payload.context, { user: { id: 'u_carol', name: 'Carol', moderator: false },
      features: { audio: false, video: true } });
  });

  await test('jitsi: a wrong secret is rejected', async () => {
    const ans = okAnswer(await jitsi());
    await rejects(() => jwt.verify(ans.token, `${JT_SECRET}x`, opts), 'verify with wrong secret');
    const other = okAnswer(await jitsi({ app_secret: 'another-secret-0123456789abcdef0123' }));
    await rejects(() => jwt.verify(other.token, JT_SECRET, opts), 'token signed with another secret');
  });

  await test('jitsi: wrong audience, issuer, subject or algorithm list is rejected', async () => {
    const ans = okAnswer(await jitsi());
    await rejects(() => jwt.verify(ans.token, JT_SECRET, { ...opts, audience: 'other' }), 'audience');
    await rejects(() => jwt.verify(ans.token, JT_SECRET, { ...opts, issuer: 'other' }), 'issuer');
    await rejects(() => jwt.verify(ans.token, JT_SECRET, { ...opts, subject: 'other.host' }), 'subject');
    await rejects(() => jwt.verify(ans.token, JT_SECRET, { ...opts, algorithms: ['HS512'] }), 'HS512 only');
  });

  await test('jitsi: an expired token is rejected', async () => {
    const ans = okAnswer(await jitsi({ now_ms: nowMs() - 3 * 3600 * 1000 }));
    await rejects(() => jwt.verify(ans.token, JT_SECRET, opts), 'expired token');
  });

  await test('jitsi: a 31-character secret and an all-invalid room are refused', async () => {
    const short = await jitsi({ app_secret: 'x'.repeat(31) });
    assert.equal(short.ok, false);
    assert.equal(short.error, 'not_configured');
    okAnswer(await jitsi({ app_secret: 'x'.repeat(32) }));
    const room = await jitsi({ meeting_id: 'ÄÖÜ !?' });
    assert.equal(room.ok, false);
    assert.equal(room.error, 'invalid_field');
  });
}

// ---- main --------------------------------------------------------------------------------------
async function load(label, spec) {
  try {
    return await import(spec);
  } catch (e) {
    if (CI) {
      fail(`load ${label}`, e);
    } else {
      skipped++;
      console.log(`skip ${label}: not installed (${e.message.split('\n')[0]})`);
    }
    return null;
  }
}

async function main() {
  setTimeout(() => {
    fail('tokens interop', `watchdog: no end after ${WATCHDOG_MS} ms`);
    finish();
  }, WATCHDOG_MS).unref();

  if (!existsSync(toolPath)) {
    fail('test_srv_tokens is built', `${toolPath} does not exist (run make all)`);
    finish();
  }
  const sdk = await load('livekit-server-sdk', 'livekit-server-sdk');
  const jwtMod = await load('jsonwebtoken', 'jsonwebtoken');
  c = new LineTool(toolPath, { KW_TOKEN_TOOL: '1' });

  if (sdk) await livekitCases(sdk);
  if (jwtMod) await jitsiCases(jwtMod.default ?? jwtMod);

  const st = await c.close();
  if (st.code === 0) pass('test_srv_tokens tool mode exits cleanly');
  else fail('test_srv_tokens tool mode exits cleanly', `exit ${st.code} signal ${st.sig}\n${st.stderr.slice(0, 4000)}`);
  finish();
}

main().catch((e) => {
  fail('tokens interop', e.stack || e);
  finish();
});
