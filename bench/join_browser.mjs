// join_browser.mjs — the browser figure of the join benchmark (issue 6 point 4): a guest
// opens an invitation link in headless Chromium (the real page of build/web, the C core in
// wasm) against a CLI bot host (`meeting join --admit all`). Per run, a fresh browser context
// (a fresh tab, no stored keys):
//   keys ready   link opened -> the page's own keys are made (the name form shows)
//   media key    link opened -> "End-to-end encryption ready" (name typed and submitted by
//                the script at once, admission, key exchange with the host)
// Prints the medians of JOIN_BROWSER_RUNS runs [5]; no assertion. Needs `make all`,
// `make web` and Debian chromium. Run: `KW_TOOLS=build/tests/interop node bench/join_browser.mjs`.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cliHarness } from '../tests/interop/lib/cli_harness.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.env.JOIN_BROWSER_RUNS || 5);
const { chromium } = createRequire(path.join(repo, 'web', 'package.json'))('playwright-core');
const t = cliHarness('kw-bench-browser-');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

fs.mkdirSync(path.join(t.root, 'build'), { recursive: true });
fs.symlinkSync(path.join(repo, 'build', 'web'), path.join(t.root, 'build', 'web')); // keywaved serves ./build/web
let browser = null;
try {
  await t.startServer();
  const host = await t.member('benchhost');
  const meetingId = await t.meeting(host, 'bench');
  const link = await t.invite(host, meetingId);
  const bot = t.join(host, meetingId, ['--admit', 'all']);
  if (!(await bot.event('media_key', 20000))) throw new Error(`host got no key: ${bot.stderr}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  const state = (page, want) => page.waitForFunction((w) => document.body.dataset.state === w, want, { timeout: 30000 });
  const keys = [], ready = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext();
    await ctx.grantPermissions(['camera', 'microphone'], { origin: new URL(t.base).origin });
    const page = await ctx.newPage();
    const t0 = Date.now();
    await page.goto(link);
    await state(page, 'details');
    keys.push(Date.now() - t0);
    await page.fill('#display-name', `Guest ${i}`);
    await page.click('#join-button');
    await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 30000 });
    ready.push(Date.now() - t0);
    const fp = await page.evaluate(() => document.body.dataset.fingerprint);
    const hostFp = bot.events.filter((e) => e.event === 'media_key').pop()?.fingerprint;
    if (fp !== hostFp) throw new Error(`fingerprint ${fp} != host ${hostFp}`);
    await ctx.close();
  }
  console.log(`browser join: link opened -> keys ready median_ms=${median(keys)} (${keys.join(' ')})`);
  console.log(`browser join: link opened -> media key held median_ms=${median(ready)} (${ready.join(' ')})`);
} catch (e) {
  console.error(`bench/join_browser: ${e.stack}`);
  process.exitCode = 1;
}
if (browser) await browser.close();
for (const p of t.procs) await p.stop('SIGINT', 3000);
await t.stopServer();
fs.rmSync(t.root, { recursive: true, force: true });
