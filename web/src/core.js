// core.js — the bridge to the C core (build/web/keywave.mjs + .wasm, web/wasm/keywave_web.c),
// which runs in a worker (core-worker.js) so the page keeps painting — the key-setup
// progress bar moves while keys are made. Every protocol step is one kww_call there; this
// file only moves JSON in and out and keeps the core's key store in sessionStorage (this
// tab only: a reload reuses the keys, another tab or a closed tab does not). Nothing is
// written to localStorage, IndexedDB or cookies.

const STORE_KEY = 'keywave.store';

export class CoreError extends Error {
  constructor(ans, cmd) {
    super(`${cmd}: ${ans.error}${ans.detail ? ` (${ans.detail})` : ''}`);
    this.code = ans.error;
    this.detail = ans.detail;
  }
}

export async function loadCore() {
  const worker = new Worker(new URL('/web/core-worker.js', window.location.origin), { type: 'module' });
  const core = new Core(worker);
  await core.ready;
  return core;
}

export class Core {
  constructor(worker) {
    this.worker = worker;
    this.onProgress = null;
    this.pending = new Map();
    this.next = 1;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    worker.onmessage = (ev) => this.#receive(ev.data);
    worker.onerror = (ev) => {
      const e = new CoreError({ error: 'core_unavailable', detail: ev.message ?? 'the encryption module did not load' }, 'load');
      this.readyReject(e);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
  }

  #receive(msg) {
    if (msg.ready) return this.readyResolve();
    if (msg.loadError) return this.readyReject(new CoreError({ error: 'core_unavailable', detail: msg.loadError }, 'load'));
    if (msg.progress) return this.onProgress?.(...msg.progress);
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.snapshot) sessionStorage.setItem(STORE_KEY, msg.snapshot);
    if (msg.ans.ok !== true) p.reject(new CoreError(msg.ans, p.cmd));
    else p.resolve(msg.ans);
  }

  // One request; resolves with the answer object, rejects with CoreError on {ok:false}.
  call(cmd, fields = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, cmd });
      this.worker.postMessage({ id, req: { cmd, ...fields } });
    });
  }

  // Opens the tab's store: from sessionStorage when this tab already made keys.
  async init() {
    let snapshot;
    try {
      snapshot = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? 'null') ?? undefined;
    } catch {
      snapshot = undefined;
    }
    try {
      return await this.call('init', snapshot ? { snapshot } : {});
    } catch {
      sessionStorage.removeItem(STORE_KEY); // a damaged snapshot: start over with new keys
      return this.call('init', {});
    }
  }

  forget() {
    sessionStorage.removeItem(STORE_KEY);
  }
}
