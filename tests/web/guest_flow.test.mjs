// guest_flow.test.mjs — the browser guest app (issue #6) in headless Debian Chromium
// (playwright-core, fake camera and microphone) against a real keywaved and real `keywave`
// CLI hosts (tests/interop/lib/cli_harness.mjs):
//   - full flow: key setup -> name/devices -> waiting room -> "End-to-end encryption ready"
//     with the host's media-key fingerprint; "media server not configured" without LiveKit;
//   - the page talks to keywaved's origin only (network log) and keeps keys only in
//     sessionStorage (no localStorage, IndexedDB or cookies);
//   - reload in the same tab reuses the keys; a second tab gets its own identity;
//   - waiting for host -> the host arrives -> continues by itself;
//   - declined (--admit none); leaving deletes the guest session;
//   - camera/microphone permission denied still lets the guest join.
// Screenshots of every state go to build/test-artifacts/web/. Needs `make all` and
// `make web` (build/web, web/node_modules). Prints `RESULT passed=N failed=M`.
// Env: CHROMIUM (default /usr/bin/chromium), KW_VERBOSE=1.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cliHarness } from '../interop/lib/cli_harness.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const webBuild = path.join(repo, 'build', 'web');
const shots = path.join(repo, 'build', 'test-artifacts', 'web');
const t = cliHarness('kw-web-');
const { check, js } = t;

const require = createRequire(path.join(repo, 'web', 'package.json'));
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  check('playwright-core is installed (web/node_modules: make web)', false, String(e));
  await t.finish();
}
for (const f of ['index.html', 'app.js', 'keywave.mjs', 'keywave.wasm']) {
  if (!fs.existsSync(path.join(webBuild, f))) {
    check(`build/web/${f} exists (make web)`, false);
    await t.finish();
  }
}
fs.mkdirSync(shots, { recursive: true });

// keywaved serves build/web relative to its working directory (the harness's root).
fs.mkdirSync(path.join(t.root, 'build'), { recursive: true });
fs.symlinkSync(webBuild, path.join(t.root, 'build', 'web'));
await t.startServer();
const origin = new URL(t.base).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  ],
});

// A browser context (one "person") with a network log and a console log.
async function person({ media = true } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
  if (media) await ctx.grantPermissions(['camera', 'microphone'], { origin });
  const log = { requests: [], console: [], errors: [], responses: [] };
  ctx.on('request', (r) => log.requests.push(r.url()));
  ctx.on('response', (r) => log.responses.push({ url: r.url(), method: r.request().method(), status: r.status() }));
  ctx.on('page', (p) => {
    p.on('console', (m) => {
      log.console.push(`${m.type()}: ${m.text()}`);
      if (process.env.KW_VERBOSE) console.log(`  [page] ${m.text()}`);
    });
    p.on('pageerror', (e) => log.errors.push(String(e)));
  });
  return { ctx, log };
}

const stateOf = (page) => page.evaluate(() => document.body.dataset.state ?? '');
async function waitState(page, want, ms = 20000) {
  try {
    await page.waitForFunction((w) => w.includes(document.body.dataset.state), Array.isArray(want) ? want : [want], { timeout: ms });
    return true;
  } catch {
    return false;
  }
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}
async function enterName(page, name) {
  await waitState(page, 'details');
  await page.fill('#display-name', name);
  await page.click('#join-button');
}
const fingerprintOf = (page) => page.evaluate(() => document.body.dataset.fingerprint ?? null);

const alice = await t.member('alice');

async function fullFlow() {
  const meetingId = await t.meeting(alice, 'Weekly sync');
  const link = await t.invite(alice, meetingId);
  const host = t.join(alice, meetingId, ['--admit', 'all']);
  const hostKey = await host.event('media_key', 15000);
  check('host bot holds the media key', hostKey?.fingerprint, js(hostKey));

  const { ctx, log } = await person();
  const page = await ctx.newPage();
  // records what the progress display showed (the core runs in a worker: the page paints)
  await page.addInitScript(() => {
    window.__progress = [];
    new MutationObserver(() => {
      const p = document.getElementById('setup-progress');
      if (p && window.__progress[window.__progress.length - 1] !== p.value) window.__progress.push(p.value);
    }).observe(document, { subtree: true, attributes: true, childList: true, characterData: true });
  });
  const t0 = Date.now();
  await page.goto(link);
  const details = await waitState(page, 'details');
  const keyReadyMs = Date.now() - t0;
  check('link opened -> keys made -> name and devices form', details, await stateOf(page));
  console.log(`    link opened -> key ready: ${keyReadyMs} ms`);
  const steps = await page.$$eval('#setup-steps li', (lis) => lis.map((li) => li.className));
  check('all five setup steps completed', steps.length === 5 && steps.every((c) => /done|kept/.test(c)), js(steps));
  const seen = await page.evaluate(() => window.__progress);
  check('the progress bar moved through the steps (> 5 values, ending at 5)', seen.length > 5 && seen[seen.length - 1] === 5, js(seen.slice(0, 12)));
  await page.waitForFunction(() => document.querySelector('#camera-select option')?.value, null, { timeout: 5000 }).catch(() => {});
  const cams = await page.$$eval('#camera-select option', (o) => o.map((x) => x.textContent));
  const mics = await page.$$eval('#mic-select option', (o) => o.map((x) => x.textContent));
  check('camera and microphone lists are filled (fake devices)', cams.length > 0 && mics.length > 0 && !cams[0].startsWith('No '), js({ cams, mics }));
  const previewing = await page.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 5000 }).then(() => true, () => false);
  check('camera preview plays', previewing);
  await page.uncheck('#video-toggle');
  check('camera toggle off shows "Camera off"', await page.isVisible('#preview-off'));
  await page.check('#video-toggle');
  await shot(page, '02-details');
  // Accessibility: every visible control has a label, and Tab walks name -> devices -> join.
  const unlabelled = await page.$$eval('section:not([hidden]) input, section:not([hidden]) select, section:not([hidden]) button', (els) =>
    els.filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim())).map((e) => e.id || e.tagName));
  check('every visible form control has a label (accessibility)', unlabelled.length === 0, js(unlabelled));
  await page.focus('#display-name');
  const order = [];
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement?.id));
  }
  const at = (id) => order.indexOf(id);
  check('focus order: camera, microphone, toggles, then join (accessibility)', at('camera-select') >= 0 && at('camera-select') < at('mic-select') && at('mic-select') < at('join-button'), js(order));

  // an empty name is refused with a message
  await page.fill('#display-name', '');
  await page.click('#join-button');
  check('an empty name is refused', (await page.isVisible('#name-error')) && (await stateOf(page)) === 'details');

  // hold the member's bundle back for a moment so "Exchanging encryption keys…" is photographed
  let releaseBundle;
  const bundleHeld = new Promise((r) => { releaseBundle = r; });
  await page.route('**/participant/**/keys', async (route) => { await bundleHeld; await route.continue(); });
  await enterName(page, 'Ada Lovelace');
  const inMeeting = await waitState(page, 'meeting', 20000);
  check('admitted by the host bot: meeting state', inMeeting, await stateOf(page));
  check('"Exchanging encryption keys…" while the exchange runs', (await page.textContent('#e2ee-status')) === 'Exchanging encryption keys…');
  await shot(page, '04b-exchanging-keys');
  releaseBundle();
  await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 20000 }).catch(() => {});
  const fp = await fingerprintOf(page);
  const status = await page.textContent('#e2ee-status');
  check('"End-to-end encryption ready" with the host fingerprint', status === 'End-to-end encryption ready' && fp === hostKey?.fingerprint, js({ status, fp, host: hostKey?.fingerprint }));
  check('the fingerprint is shown to the person', (await page.textContent('#fingerprint')) === hostKey?.fingerprint);
  await page.waitForFunction(() => document.body.dataset.media, null, { timeout: 5000 }).catch(() => {});
  check('without LiveKit: "media server not configured"', (await page.evaluate(() => document.body.dataset.media)) === 'not_configured' && /not configured/.test(await page.textContent('#media-status')));
  await page.waitForFunction(() => Number(document.body.dataset.senderKeys) >= 1, null, { timeout: 5000 }).catch(() => {});
  check("the host's sender key was processed", Number(await page.evaluate(() => document.body.dataset.senderKeys)) >= 1);
  await shot(page, '05-encryption-ready');

  // origin and storage
  const foreign = log.requests.filter((u) => !u.startsWith(origin) && !u.startsWith(origin.replace('http', 'ws')) && !u.startsWith('data:') && !u.startsWith('blob:'));
  check('no request to any origin but keywaved', foreign.length === 0 && log.requests.length > 5, js(foreign));
  const storage = await page.evaluate(async () => ({
    local: localStorage.length,
    session: Object.keys(sessionStorage),
    cookies: document.cookie,
    idb: (await indexedDB.databases?.())?.length ?? 0,
  }));
  const cookies = await ctx.cookies();
  check('keys only in sessionStorage: no localStorage, IndexedDB or cookies', storage.local === 0 && storage.idb === 0 && storage.cookies === '' && cookies.length === 0 && storage.session.includes('keywave.store'), js(storage));
  check('no page errors', log.errors.length === 0, js(log.errors));

  // reload in the same tab: keys reused (no new identity)
  const identity1 = await page.evaluate(() => JSON.parse(sessionStorage.getItem('keywave.store')).records['identity/keypair'] ?? null);
  await page.reload();
  await waitState(page, 'details');
  check('reload in the same tab reuses the keys', (await page.evaluate(() => document.body.dataset.keysReused)) === 'true');
  const identity2 = await page.evaluate(() => JSON.parse(sessionStorage.getItem('keywave.store')).records['identity/keypair'] ?? null);
  check('the stored identity record is unchanged by the reload', identity1 !== null && identity1 === identity2);

  // a second tab has its own keys and its own session
  const page2 = await ctx.newPage();
  await page2.goto(link);
  await waitState(page2, 'details');
  check('a second tab makes its own keys', (await page2.evaluate(() => document.body.dataset.keysReused)) === 'false');
  await enterName(page2, 'Second Tab');
  await page2.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 20000 }).catch(() => {});
  const s1 = await page.evaluate(() => document.body.dataset.session ?? '');
  const s2 = await page2.evaluate(() => document.body.dataset.session ?? '');
  check('the second tab has its own guest session and the same fingerprint', s2 && s2 !== s1 && (await fingerprintOf(page2)) === hostKey?.fingerprint, js({ s1, s2 }));

  // leaving deletes the guest session
  await page2.click('#leave-button');
  await waitState(page2, 'left', 5000);
  const del = log.responses.find((r) => r.method === 'DELETE' && r.url.includes(`/api/meetings/external/session/${s2}`));
  check('leaving deletes the guest session (DELETE 200)', del?.status === 200 && (await stateOf(page2)) === 'left', js(del));
  check('leaving forgets the keys of that tab', (await page2.evaluate(() => sessionStorage.getItem('keywave.store'))) === null);
  await shot(page2, '08-left');
  await ctx.close();
  await host.stop('SIGINT');
}

async function waitingForHost() {
  const meetingId = await t.meeting(alice, 'Later');
  const link = await t.invite(alice, meetingId);
  const { ctx } = await person();
  const page = await ctx.newPage();
  // hold the wasm back for a moment so the key-setup state can be photographed
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/web/keywave.wasm', async (route) => { await held; await route.continue(); });
  await page.goto(link);
  check('the key-setup state shows first', await waitState(page, 'setup', 10000), await stateOf(page));
  await shot(page, '01-key-setup');
  release();
  await enterName(page, 'Early Bird');
  check('nobody there: "Waiting for host…"', await waitState(page, 'waiting-host', 10000), await stateOf(page));
  await shot(page, '03-waiting-for-host');
  await page.click('#host-retry'); // checking again with nobody there keeps waiting
  check('"Check again" with no host keeps waiting', (await stateOf(page)) === 'waiting-host');
  const host = t.join(alice, meetingId, ['--admit', 'all']);
  const hostKey = await host.event('media_key', 15000);
  await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 20000 }).catch(() => {});
  check('the host arrives: continues by itself to the host fingerprint', (await fingerprintOf(page)) === hostKey?.fingerprint, js({ page: await fingerprintOf(page), host: hostKey?.fingerprint }));
  await ctx.close();
  await host.stop('SIGINT');
}

async function declined() {
  const meetingId = await t.meeting(alice, 'Private');
  const link = await t.invite(alice, meetingId);
  const host = t.join(alice, meetingId, ['--admit', 'none']);
  await host.event('media_key', 15000);
  const { ctx } = await person();
  const page = await ctx.newPage();
  await page.goto(link);
  await enterName(page, 'Uninvited');
  check('declined by the host: the declined page', await waitState(page, 'declined', 15000), `${await stateOf(page)}: ${await page.textContent('#error-text')}`);
  check('no fingerprint after a decline', (await fingerprintOf(page)) === null);
  await shot(page, '06-declined');
  await ctx.close();
  await host.stop('SIGINT');
}

// The owner deletes the meeting while the guest is in it: meeting:ended -> the ended page.
async function meetingEnded() {
  const owner = await t.member('olga');
  const meetingId = await t.meeting(owner, 'Ending');
  const link = await t.invite(owner, meetingId);
  const host = t.join(owner, meetingId, ['--admit', 'all']);
  await host.event('media_key', 15000);
  const { ctx } = await person();
  const page = await ctx.newPage();
  await page.goto(link);
  await enterName(page, 'Stays');
  await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 20000 }).catch(() => {});
  check('meeting ended: the guest is in the meeting first', (await fingerprintOf(page)) !== null, await stateOf(page));
  const del = await t.runDone(['meeting', 'delete', meetingId], { dataDir: owner.dataDir });
  const shown = await waitState(page, 'ended', 10000);
  check('the owner deletes the meeting -> "This meeting has ended" page', del.code === 0 && shown && /ended the meeting/.test(await page.textContent('#ended-detail')), `${del.code} ${await stateOf(page)}`);
  await shot(page, '09-meeting-ended');
  await ctx.close();
  await host.stop('SIGINT');
}

async function waitingRoomAndDeniedDevices() {
  const meetingId = await t.meeting(alice, 'Lobby');
  const link = await t.invite(alice, meetingId);
  const silent = await t.silentMember(alice, meetingId); // present, never admits
  const { ctx } = await person({ media: false });
  const page = await ctx.newPage();
  // a person who blocks camera and microphone
  await page.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));
  });
  await page.goto(link);
  await waitState(page, 'details');
  await page.waitForSelector('#device-denied:not([hidden])', { timeout: 5000 }).catch(() => {});
  check('permission denied: a clear notice and a retry button', (await page.isVisible('#device-denied')) && (await page.isVisible('#devices-retry')));
  await shot(page, '02b-devices-denied');
  await enterName(page, 'No Camera');
  check('the guest still joins: waiting room while the host decides', await waitState(page, 'waiting-room', 10000), await stateOf(page));
  await shot(page, '04-waiting-room');
  silent.disconnect();
  await ctx.close();
}

async function badLinks() {
  const { ctx } = await person();
  const page = await ctx.newPage();
  await page.goto(`${t.base}/join/meeting/0123456789abcdef0123456789abcdef`);
  check('unknown invitation: error state with a message', await waitState(page, 'error', 15000) && /not valid/.test(await page.textContent('#error-text')), await page.textContent('#error-text'));
  await shot(page, '07-error');
  await ctx.close();
}

// prekeys:low: members' bundle fetches use up the guest's one-time pre-keys; below 10 the
// server tells the guest, and the page uploads a new batch of 30 (ids continuing).
async function preKeyReplenish() {
  const meetingId = await t.meeting(alice, 'Pre-keys');
  const link = await t.invite(alice, meetingId);
  const { ctx, log } = await person();
  const page = await ctx.newPage();
  await page.goto(link);
  await enterName(page, 'Many Fetches');
  await waitState(page, 'waiting-host', 10000);
  const sid = await page.evaluate(() => document.body.dataset.session ?? '');
  check('registered: the page knows its guest session', /^[0-9a-f]{32}$/.test(sid), sid);
  // 3 fetches per minute per (device, guest): 7 devices of alice take 21 of the 30
  const devices = [alice];
  for (let i = 0; i < 6; i++) devices.push(await t.device(alice));
  let served = 0;
  let lastError = '';
  const ids = [];
  const fetchAll = async (devs) => {
    for (const d of devs) {
      for (let i = 0; i < 3; i++) {
        const r = await t.api(t.credentials(d), 'GET', `/api/meetings/${meetingId}/external/${sid}/keys`);
        if (r.status !== 200 && !lastError) lastError = `${r.status} ${js(r.json)} sid=${sid}`;
        if (r.status === 200 && r.json?.one_time_pre_key) {
          served++;
          ids.push(r.json.one_time_pre_key.id);
        }
      }
    }
  };
  await fetchAll(devices);
  check('21 bundle fetches each took a one-time pre-key', served === 21, `${served} ${lastError}`);
  const upload = async () => log.responses.find((r) => r.method === 'POST' && r.url.endsWith(`/external/session/${sid}/prekeys`));
  for (let i = 0; i < 50 && !(await upload()); i++) await t.sleep(100);
  const up = await upload();
  check('prekeys:low -> the page uploaded a new batch (POST 200)', up?.status === 200, js(up));
  // the 9 original pre-keys left, then one of the new batch (ids continue past the old ones)
  const more = [];
  for (let i = 0; i < 4; i++) more.push(await t.device(alice));
  const before = ids.length;
  await fetchAll(more);
  const newest = ids.slice(before);
  const oldMax = Math.max(...ids.slice(0, before));
  check('after the 30 original pre-keys, fetches get the new batch (ids continuing)', newest.length === 12 && newest.slice(9).every((id) => id > oldMax), js({ newest, oldMax }));
  await ctx.close();
}

// The join figure of issue #6: link opened -> keys ready (the name form shows), fresh tab
// each time, median of 5. Printed, never asserted on time.
async function keyReadyMedian() {
  const meetingId = await t.meeting(alice, 'Timing');
  const link = await t.invite(alice, meetingId);
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const { ctx } = await person();
    const page = await ctx.newPage();
    const t0 = Date.now();
    await page.goto(link);
    if (await waitState(page, 'details')) runs.push(Date.now() - t0);
    await ctx.close();
  }
  runs.sort((a, b) => a - b);
  check('five timed runs reached the name form', runs.length === 5, js(runs));
  console.log(`    browser join figure: link opened -> key ready, median ${runs[2]} ms of ${js(runs)}`);
}

const only = process.env.KW_WEB_CASES?.split(','); // e.g. KW_WEB_CASES=declined,badLinks
for (const [name, fn] of [['fullFlow', fullFlow], ['waitingForHost', waitingForHost], ['declined', declined], ['meetingEnded', meetingEnded], ['waitingRoomAndDeniedDevices', waitingRoomAndDeniedDevices], ['badLinks', badLinks], ['preKeyReplenish', preKeyReplenish], ['keyReadyMedian', keyReadyMedian]]) {
  if (only && !only.includes(name)) continue;
  try {
    await fn();
  } catch (e) {
    check(`${name} ran to its end`, false, e.stack);
  }
}
await browser.close();
console.log(`    screenshots: ${path.relative(repo, shots)}/`);
await t.finish();
