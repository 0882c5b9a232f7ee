// livekit_media.test.mjs — the guest page's media step when keywaved has LiveKit configured
// (issue 6: "joining media with livekit-client and its E2EE key provider"). No LiveKit server
// runs on this machine, so a stand-in plays its first step: it listens where LIVEKIT_URL
// points, records the signalling WebSocket livekit-client opens to /rtc (and the HTTP
// /rtc/validate it tries after a refusal), and refuses it. Checked, in headless Chromium
// against a CLI host bot:
//   - once "End-to-end encryption ready", the page asks keywaved for its token and opens the
//     LiveKit signalling connection at LIVEKIT_URL with it (the CSP lets it through);
//   - the token verifies with livekit-server-sdk's TokenVerifier: identity guest_<session>,
//     room = the meeting, publish and subscribe allowed, data not (INV-4);
//   - livekit-client's E2EE frame worker is loaded from keywaved (/web/...), so frames would
//     be encrypted with the media key;
//   - a refused media server ends in a clear "not available" state, not a broken page.
// What it cannot check here: media flowing through a real SFU.
// Last line: RESULT passed=N failed=M. Env: KW_TOOLS, CHROMIUM.

import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cliHarness } from '../interop/lib/cli_harness.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const webBuild = path.join(repo, 'build', 'web');
const shots = path.join(repo, 'build', 'test-artifacts', 'web');
const fromInterop = createRequire(path.join(repo, 'tests', 'interop', 'package.json'));
const { WebSocketServer } = fromInterop('ws');
const { TokenVerifier } = fromInterop('livekit-server-sdk');
const { chromium } = createRequire(path.join(repo, 'web', 'package.json'))('playwright-core');

const LK_KEY = 'web-media-key';
const LK_SECRET = 'web-media-secret-web-media-secret-0123';
const t = cliHarness('kw-web-livekit-');
const { check, js } = t;

// The stand-in: records every request and WebSocket upgrade, refuses them all.
const seen = { ws: [], http: [] };
const fake = http.createServer((req, res) => {
  seen.http.push(req.url);
  res.writeHead(401, { 'Content-Type': 'text/plain', 'Access-Control-Allow-Origin': '*' });
  res.end('stand-in: no SFU here');
});
const wss = new WebSocketServer({ noServer: true });
fake.on('upgrade', (req, socket, head) => {
  seen.ws.push(req.url);
  wss.handleUpgrade(req, socket, head, (ws) => ws.close(1011, 'stand-in: no SFU here'));
});
await new Promise((r) => fake.listen(0, '127.0.0.1', r));
const lkUrl = `ws://127.0.0.1:${fake.address().port}`;

let browser = null;
try {
  for (const f of ['index.html', 'app.js', 'keywave.wasm', 'livekit-e2ee-worker.js']) {
    if (!fs.existsSync(path.join(webBuild, f))) throw new Error(`build/web/${f} missing (make web)`);
  }
  fs.mkdirSync(shots, { recursive: true });
  fs.mkdirSync(path.join(t.root, 'build'), { recursive: true });
  fs.symlinkSync(webBuild, path.join(t.root, 'build', 'web'));
  await t.startServer({ LIVEKIT_URL: lkUrl, LIVEKIT_API_KEY: LK_KEY, LIVEKIT_API_SECRET: LK_SECRET });
  const host = await t.member('mediahost');
  const meetingId = await t.meeting(host, 'Media');
  const link = await t.invite(host, meetingId);
  const bot = t.join(host, meetingId, ['--admit', 'all']);
  const hostKey = await bot.event('media_key', 15000);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const origin = new URL(t.base).origin;
  await ctx.grantPermissions(['camera', 'microphone'], { origin });
  const requests = [];
  const csp = [];
  ctx.on('request', (r) => requests.push(r.url()));
  const page = await ctx.newPage();
  page.on('console', (m) => /Content Security Policy/i.test(m.text()) && csp.push(m.text()));
  await page.goto(link);
  await page.waitForFunction(() => document.body.dataset.state === 'details', null, { timeout: 20000 });
  await page.fill('#display-name', 'Media guest');
  await page.click('#join-button');
  await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 20000 });
  check('the page holds the host media key', (await page.evaluate(() => document.body.dataset.fingerprint)) === hostKey?.fingerprint);
  await page.waitForFunction(() => ['connected', 'error'].includes(document.body.dataset.media), null, { timeout: 20000 }).catch(() => {});
  const media = await page.evaluate(() => document.body.dataset.media);
  const status = await page.textContent('#media-status');
  await page.screenshot({ path: path.join(shots, '10-media-server-refused.png'), fullPage: true });

  const rtc = seen.ws.find((u) => u.startsWith('/rtc'));
  check('the page opened LiveKit signalling at LIVEKIT_URL (/rtc)', rtc !== undefined, js(seen));
  const token = rtc ? new URL(rtc, lkUrl.replace('ws', 'http')).searchParams.get('access_token') : null;
  let claims = null;
  try {
    claims = await new TokenVerifier(LK_KEY, LK_SECRET).verify(token ?? '');
  } catch (e) {
    claims = { error: String(e) };
  }
  check('its access token verifies with livekit-server-sdk', typeof claims?.sub === 'string', js(claims));
  check('identity guest_<session>, room = the meeting', /^guest_[0-9a-f]{32}$/.test(claims?.sub ?? '') && claims?.video?.room === meetingId, js([claims?.sub, claims?.video?.room]));
  check('publish and subscribe allowed, data not (INV-4)', claims?.video?.canPublish === true && claims?.video?.canSubscribe === true && claims?.video?.canPublishData === false, js(claims?.video));
  check("livekit-client's E2EE frame worker came from keywaved", requests.some((u) => u === `${origin}/web/livekit-e2ee-worker.js`), js(requests.filter((u) => /worker/.test(u))));
  check('no Content-Security-Policy violation', csp.length === 0, js(csp));
  check('a refused media server ends in a clear "not available" state', media === 'error' && /not available/.test(status ?? ''), js({ media, status }));
  const others = requests.filter((u) => !u.startsWith(origin) && !u.startsWith(lkUrl) && !u.startsWith(lkUrl.replace('ws', 'http')) && !u.startsWith('blob:') && !u.startsWith('data:'));
  check('no request to any origin but keywaved and the configured media server', others.length === 0, js(others));
  await ctx.close();
  await bot.stop('SIGINT');
} catch (e) {
  check('no exception', false, e.stack);
}
if (browser) await browser.close();
fake.close();
await t.finish();
