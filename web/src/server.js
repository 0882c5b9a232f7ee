// server.js — keywaved's REST routes and the guest socket (/external), nothing else: this
// page talks to its own origin only (the CSP's connect-src is 'self' plus LiveKit's).
import { io } from 'socket.io-client';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error ?? `http_${status}`;
  }
}

export class Server {
  constructor() {
    this.secret = null;
    this.socket = null;
  }

  async request(method, target, body) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.secret) headers.authorization = `Bearer ${this.secret}`;
    let r;
    try {
      r = await fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, { error: 'network', detail: 'The server cannot be reached.' });
    }
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!r.ok) throw new ApiError(r.status, json);
    return json;
  }

  joinInfo(token) {
    return this.request('GET', `/api/meetings/external/join/${encodeURIComponent(token)}`);
  }

  async register(doc) {
    const out = await this.request('POST', '/api/meetings/external/register', doc);
    this.secret = out.guest_secret;
    return out;
  }

  // Resolves when connected; events go to onEvent(name, payload).
  connect(sessionId, onEvent, onDown) {
    return new Promise((resolve, reject) => {
      const s = io('/external', {
        path: '/socket.io',
        transports: ['websocket'],
        auth: { session_id: sessionId, guest_secret: this.secret },
        reconnection: true,
      });
      this.socket = s;
      let first = true;
      s.on('connect', () => {
        if (first) {
          first = false;
          resolve();
        }
      });
      s.on('connect_error', (err) => {
        if (first) {
          first = false;
          s.disconnect();
          reject(new ApiError(0, { error: err.message, detail: `Cannot connect: ${err.message}` }));
        }
      });
      s.on('disconnect', (reason) => onDown?.(reason));
      s.onAny((name, payload) => onEvent(name, payload));
    });
  }

  async emit(event, payload) {
    const ack = await this.socket.timeout(10000).emitWithAck(event, payload);
    if (ack?.ok !== true) throw new ApiError(0, { error: ack?.error ?? 'no_ack', detail: `${event}: ${ack?.error}` });
    return ack;
  }

  close() {
    this.socket?.disconnect();
    this.socket = null;
  }
}
