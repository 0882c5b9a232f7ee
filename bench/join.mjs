// join.mjs — the guest-join benchmark (issue 5 point 3): real keywaved, real CLI processes.
//   1. time from `keywave guest join` start to media key held, with 1, 10 and 50 member
//      devices present in the meeting (median and min/max of JOIN_RUNS runs each);
//   2. how many guests per second one keywaved admits and keys with one bot host
//      (`meeting join --admit all`): JOIN_GUESTS guests, JOIN_CONCURRENCY at a time.
// Prints figures only (no assertion). Run through bench/run-join.sh or
// `KW_TOOLS=build/tests/interop node bench/join.mjs`.
// Env: JOIN_RUNS [5], JOIN_SIZES [1,10,50], JOIN_GUESTS [40], JOIN_CONCURRENCY [8].

import { cliHarness } from '../tests/interop/lib/cli_harness.mjs';

const runs = Number(process.env.JOIN_RUNS || 5);
const sizes = (process.env.JOIN_SIZES || '1,10,50').split(',').map(Number);
const nGuests = Number(process.env.JOIN_GUESTS || 40);
const concurrency = Number(process.env.JOIN_CONCURRENCY || 8);

const t = cliHarness('kw-bench-join-');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function guestOnce(link, name) {
  const start = Date.now();
  const g = t.guest(link, name, ['--exit-when-ready']);
  const key = await g.event('media_key', 60000);
  const ms = key ? key.at - start : null;
  await Promise.race([g.done, t.sleep(10000)]);
  await g.stop('SIGKILL', 1000);
  if (ms === null) throw new Error(`guest ${name} got no key: ${g.stderr}`);
  return { ms, fingerprint: key.fingerprint };
}

try {
  await t.startServer();
  const alice = await t.member('benchhost');
  const meetingId = await t.meeting(alice, 'bench');
  const link = await t.invite(alice, meetingId);
  const members = [];
  const startMember = async (dev, admit) => {
    const p = t.join(dev, meetingId, ['--admit', admit]);
    if (!(await p.event('media_key', 30000))) throw new Error(`member got no key: ${p.stderr}`);
    members.push(p);
  };
  await startMember(alice, 'all');
  console.log(`join latency: guest join start -> media key held (${runs} runs each)`);
  for (const n of sizes) {
    while (members.length < n) {
      const dev = await t.device(alice);
      await startMember(dev, 'ask'); // stdin closed: leaves admission to the first member
    }
    const times = [];
    for (let r = 0; r < runs; r++) times.push((await guestOnce(link, `g${n}_${r}`)).ms);
    console.log(`members=${n} median_ms=${median(times)} min_ms=${Math.min(...times)} max_ms=${Math.max(...times)}`);
  }
  while (members.length > 1) await members.pop().stop('SIGINT');

  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < nGuests) {
      const i = next++;
      await guestOnce(link, `t${i}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (Date.now() - started) / 1000;
  console.log(`throughput: ${nGuests} guests admitted and keyed by one bot host in ${secs.toFixed(1)} s = ${(nGuests / secs).toFixed(1)} guests/s (concurrency ${concurrency})`);
  for (const m of members) await m.stop('SIGINT');
} catch (e) {
  console.error(`bench/join: ${e.stack}`);
  process.exitCode = 1;
}
for (const p of t.procs) await p.stop('SIGKILL', 1000);
await t.stopServer();
(await import('node:fs')).rmSync(t.root, { recursive: true, force: true });
