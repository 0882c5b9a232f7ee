// core-worker.js — runs the C core (keywave.mjs + .wasm) off the page's thread. Messages:
// in {id, req} -> out {id, ans, snapshot?}; out {progress:[step, label, done, total,
// skipped]} during key setup; out {ready} or {loadError} once. After a call that changes
// the key store, the store's snapshot goes back with the answer for sessionStorage (which
// a worker cannot reach).

const MUTATING = new Set(['keys_setup', 'keys_replenish', 'process_bundle', 'encrypt', 'decrypt', 'group_process', 'group_decrypt']);
let mod = null;

function call(req) {
  const text = JSON.stringify(req);
  const len = mod.lengthBytesUTF8(text) + 1;
  const p = mod._malloc(len);
  mod.stringToUTF8(text, p, len);
  const out = mod._kww_call(p);
  mod.HEAPU8.fill(0, p, p + len); // the request may hold a plaintext
  mod._free(p);
  if (out === 0) return { ok: false, error: 'nomem', detail: '' };
  const ans = mod.UTF8ToString(out);
  mod._kww_free(out);
  return JSON.parse(ans);
}

async function load() {
  try {
    const { default: factory } = await import(new URL('/web/keywave.mjs', self.location.origin).href);
    mod = await factory();
    mod.kwProgress = (...progress) => self.postMessage({ progress });
    self.postMessage({ ready: true });
  } catch (e) {
    self.postMessage({ loadError: String(e?.message ?? e) });
  }
}

self.onmessage = (ev) => {
  const { id, req } = ev.data;
  const ans = call(req);
  let snapshot;
  if (ans.ok && MUTATING.has(req.cmd)) {
    const snap = call({ cmd: 'snapshot' });
    if (snap.ok) snapshot = JSON.stringify({ records: snap.records });
  }
  self.postMessage({ id, ans, snapshot });
};

load();
