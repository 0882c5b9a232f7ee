// line_tool.mjs — runs a C helper binary that speaks one JSON object per line on
// stdin/stdout (tests/interop/*_tool.c) and sends it requests one at a time.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export class LineTool {
  // path: the binary; env: extra environment (e.g. ASAN_OPTIONS).
  constructor(path, env = {}) {
    this.path = path;
    this.stderr = '';
    this.exit = null;
    this.waiting = [];
    this.child = spawn(path, [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stderr.on('data', (d) => { this.stderr += d.toString(); });
    this.child.on('error', (e) => this.#failAll(e));
    this.child.on('exit', (code, sig) => {
      this.exit = { code, sig };
      this.#failAll(new Error(`${path} exited (code ${code}, signal ${sig})\n${this.stderr}`));
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      try {
        w.resolve(JSON.parse(line));
      } catch (e) {
        w.reject(new Error(`tool answered a line that is not JSON: ${line}`));
      }
    });
  }

  #failAll(e) {
    for (const w of this.waiting.splice(0)) w.reject(e);
  }

  // Sends one request (an object, or a raw string line) and resolves with the answer object.
  call(req) {
    if (this.exit) return Promise.reject(new Error(`${this.path} is not running`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write((typeof req === 'string' ? req : JSON.stringify(req)) + '\n');
    });
  }

  // Like call, but throws unless the answer is {ok:true}.
  async ok(req) {
    const ans = await this.call(req);
    if (ans.ok !== true) {
      throw new Error(`${req.cmd ?? 'request'} failed: ${ans.error}: ${ans.detail}`);
    }
    return ans;
  }

  // Asks the tool to quit and resolves with its exit status and stderr.
  async close() {
    if (!this.exit) {
      const done = new Promise((resolve) => this.child.once('exit', resolve));
      try {
        await this.call({ cmd: 'quit' });
      } catch {
        // it may already be gone; the exit status says what happened
      }
      this.child.stdin.end();
      if (!this.exit) await done;
    }
    return { ...this.exit, stderr: this.stderr };
  }
}
