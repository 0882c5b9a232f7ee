// app.js — the guest page's flow (seed 000/001), mirroring client/cmd_guest.c:
//   key setup -> name and devices -> registration + guest socket -> waiting for a host ->
//   waiting room -> key exchange -> "End-to-end encryption ready" + fingerprint -> media.
// This file does UI and I/O only: every key, session, message and the media-key agreement
// go through the C core (core.js). Each state is one <section data-state> of index.html;
// <body data-state> names the current one (the browser tests read it).
import { CoreError, loadCore } from './core.js';
import { Devices, joinLiveKit } from './media.js';
import { ApiError, Server } from './server.js';

const HOST_POLL_MS = 5000;
const PREKEY_CHECK_MS = 30000;
const $ = (id) => document.getElementById(id);

const g = {
  core: null,
  server: new Server(),
  token: '',
  info: null,
  name: '',
  sessionId: '',
  meetingId: '',
  self: '',
  admitted: false,
  hostPresent: false,
  haveKey: false,
  left: false,
  timers: new Set(),
  media: null,
  devices: null,
  senders: 0,
};

// ---- states ---------------------------------------------------------------------------

function show(state) {
  for (const s of document.querySelectorAll('section[data-state]')) s.hidden = s.dataset.state !== state;
  document.body.dataset.state = state;
  const h = document.querySelector(`section[data-state="${state}"] h1`);
  h?.focus({ preventScroll: false });
}

let retryAction = null;
function fail(message, retry) {
  clearTimers();
  $('error-text').textContent = message;
  retryAction = retry;
  $('error-retry').hidden = !retry;
  show('error');
}

function describe(e) {
  if (e instanceof ApiError) {
    const known = {
      network: 'The server cannot be reached. Check your connection.',
      unknown_invitation: 'This invitation link is not valid.',
      forbidden: 'This meeting does not accept guests.',
      rate_limited: 'Too many attempts. Please wait a moment.',
    };
    return known[e.code] ?? `The server refused the request (${e.code}).`;
  }
  if (e instanceof CoreError) return `Encryption error (${e.code}).`;
  return String(e?.message ?? e);
}

function later(fn, ms) {
  const t = setTimeout(() => {
    g.timers.delete(t);
    fn();
  }, ms);
  g.timers.add(t);
  return t;
}

function every(fn, ms) {
  const t = setInterval(fn, ms);
  g.timers.add(t);
  return t;
}

function clearTimers() {
  for (const t of g.timers) {
    clearTimeout(t);
    clearInterval(t);
  }
  g.timers.clear();
}

// ---- 1. key setup -----------------------------------------------------------------------

function setupProgress(step, label, done, total, skipped) {
  const items = document.querySelectorAll('#setup-steps li');
  for (const li of items) {
    const n = Number(li.dataset.step);
    if (n < step && !li.classList.contains('kept')) li.classList.add('done');
    li.classList.toggle('active', n === step && done < total);
  }
  const li = document.querySelector(`#setup-steps li[data-step="${step}"]`);
  if (step === 4 && total > 0) li.querySelector('.count').textContent = `(${done}/${total})`;
  if (done === total) {
    li.classList.remove('active');
    li.classList.add(skipped ? 'kept' : 'done');
  }
  const frac = total > 0 ? done / total : 1;
  $('setup-progress').value = step - 1 + frac;
}

async function setupKeys() {
  show('setup');
  if (!g.core) g.core = await loadCore();
  g.core.onProgress = setupProgress;
  const opened = await g.core.init();
  const res = await g.core.call('keys_setup', { now_ms: Date.now() });
  document.body.dataset.keysReused = String(opened.has_identity && !res.made_identity);
}

// ---- 2. name and devices ----------------------------------------------------------------

function askDetails() {
  return new Promise((resolve) => {
    show('details');
    const els = {
      preview: $('preview'),
      previewOff: $('preview-off'),
      camera: $('camera-select'),
      mic: $('mic-select'),
      video: $('video-toggle'),
      audio: $('audio-toggle'),
      denied: $('device-denied'),
      retry: $('devices-retry'),
    };
    g.devices = new Devices(els);
    g.devices.start();
    els.camera.onchange = () => g.devices.start();
    els.mic.onchange = () => g.devices.start();
    els.video.onchange = () => g.devices.applyToggles();
    els.audio.onchange = () => g.devices.applyToggles();
    els.retry.onclick = () => g.devices.start();
    const input = $('display-name');
    input.value = sessionStorage.getItem('keywave.name') ?? '';
    $('details-form').onsubmit = (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      const bad = name.length === 0 || name.length > 64 || /[\u0000-\u001f\u007f]/.test(name);
      $('name-error').hidden = !bad;
      input.setAttribute('aria-invalid', String(bad));
      if (bad) {
        input.focus();
        return;
      }
      sessionStorage.setItem('keywave.name', name);
      resolve(name);
    };
  });
}

// ---- 3. registration, socket, waiting -----------------------------------------------------

async function register() {
  const { keys } = await g.core.call('keys_export');
  const out = await g.server.register({ ...keys, invitation_token: g.token, display_name: g.name });
  g.sessionId = out.session_id;
  g.meetingId = out.meeting_id;
  g.self = `guest_${out.session_id}`;
  await g.core.call('set_self', { name: g.self, device: 1 });
  await g.core.call('mka_new', { self: g.self });
  document.body.dataset.session = g.sessionId;
}

let asking = false;
async function requestAdmission() {
  if (asking || g.admitted || g.left) return;
  asking = true;
  try {
    await g.server.request('POST', `/api/meetings/${g.meetingId}/external/${g.sessionId}/request-admission`);
    g.hostPresent = true;
    if (!g.admitted && document.body.dataset.state !== 'declined') show('waiting-room');
  } catch (e) {
    if (e.code === 'no_host_present') {
      if (!g.admitted) show('waiting-host');
    } else if (e.code === 'rate_limited' || e.code === 'already_admitted') {
      // asked within the last 5 s, or admitted meanwhile: the socket tells what follows
    } else if (e.code === 'already_declined') {
      showDeclined(null);
    } else {
      fail(`Could not ask to be let in: ${describe(e)}`, () => requestAdmission());
    }
  } finally {
    asking = false;
  }
}

function showDeclined(reason) {
  clearTimers();
  $('declined-reason').textContent = typeof reason === 'string' && reason ? `Reason: ${reason}` : '';
  show('declined');
  g.server.close();
  g.devices?.stop();
}

async function pollHost() {
  if (g.hostPresent || g.admitted || g.left) return;
  try {
    const info = await g.server.joinInfo(g.token);
    if (info.has_active_participants) await requestAdmission();
  } catch (e) {
    if (e.status === 410) ended(e.code);
  }
}

// The meeting was deleted while we were in it (meeting:ended): the session went with it.
function meetingEnded() {
  g.left = true;
  clearTimers();
  try {
    g.media?.leave();
  } catch {
    /* already gone */
  }
  g.devices?.stop();
  g.core?.call('mka_leave').catch(() => {});
  g.server.close();
  $('ended-detail').textContent = 'The host ended the meeting.';
  show('ended');
}

function ended(code) {
  clearTimers();
  g.server.close();
  $('ended-detail').textContent = code === 'invitation_expired' ? 'The invitation has expired.' : 'The invitation is no longer valid.';
  show('ended');
}

// ---- 4. key exchange ----------------------------------------------------------------------

function peerOf(id) {
  const i = id.lastIndexOf(':');
  if (i <= 0 || id.startsWith('guest_')) return null;
  return { user: id.slice(0, i), device: id.slice(i + 1) };
}

async function sendPayload(a) {
  const p = peerOf(a.to);
  if (!p) throw new Error(`bad peer ${a.to}`);
  const dev = Number(p.device);
  if (!(await g.core.call('session_exists', { name: p.user, device: dev })).exists) {
    const bundle = await g.server.request('GET', `/api/meetings/external/${g.sessionId}/participant/${encodeURIComponent(p.user)}/${p.device}/keys`);
    await g.core.call('process_bundle', { name: p.user, device: dev, bundle });
  }
  const m = await g.core.call('encrypt', { name: p.user, device: dev, plaintext: a.payload });
  if (a.kind === 'media_key_request') {
    await g.server.emit('guest:meeting_e2ee_key_request', {
      participant_user_id: p.user, participant_device_id: p.device, ciphertext: m.body, messageType: m.type, request_id: a.request_id,
    });
  } else {
    await g.server.emit('guest:signal_message', {
      recipient_user_id: p.user, recipient_device_id: p.device, encrypted_message: m.body, message_type: m.type,
    });
  }
}

let deadlineTimer = null;
async function handle(ans) {
  for (const a of ans.actions ?? []) {
    if (a.type === 'send') {
      try {
        await sendPayload(a);
      } catch (e) {
        // that peer cannot be reached: ask the next one (media_key.h)
        await handle(await g.core.call('mka_peer_left', { now_ms: Date.now(), id: a.to }));
      }
    } else if (a.type === 'key') {
      await onKey(a);
    } else if (a.type === 'failed') {
      fail('The encryption keys could not be exchanged: three members did not answer.', () => retryExchange());
    }
  }
  if (deadlineTimer) clearTimeout(deadlineTimer);
  deadlineTimer = null;
  if (ans.deadline !== null && ans.deadline !== undefined) {
    deadlineTimer = later(() => serial(async () => handle(await g.core.call('mka_tick', { now_ms: Date.now() }))), Math.max(0, ans.deadline - Date.now()));
  }
}

async function startExchange() {
  show('meeting');
  $('e2ee-status').textContent = 'Exchanging encryption keys…';
  const doc = await g.server.request('GET', `/api/meetings/${g.meetingId}/participants?status=joined`);
  const peers = [];
  for (const p of doc?.participants ?? []) {
    const dev = p.device_id === undefined || p.device_id === null ? '' : String(p.device_id);
    if (typeof p.user_id !== 'string' || !/^[1-9][0-9]*$/.test(dev)) continue; // guests, absent devices
    peers.push({ id: `${p.user_id}:${dev}`, joined_ms: Date.parse(p.joined_at ?? '') || 0 });
  }
  if (peers.length === 0) {
    fail('Nobody from the meeting is present any more.', () => retryExchange());
    return;
  }
  await handle(await g.core.call('mka_start', { now_ms: Date.now(), peers }));
}

async function retryExchange() {
  show('meeting');
  try {
    await startExchange();
  } catch (e) {
    fail(describe(e), () => retryExchange());
  }
}

async function onKey(a) {
  const first = !g.haveKey;
  g.haveKey = true;
  $('e2ee-status').textContent = 'End-to-end encryption ready';
  $('fingerprint').textContent = a.fingerprint;
  $('fingerprint-line').hidden = false;
  document.body.dataset.fingerprint = a.fingerprint;
  document.body.dataset.epoch = String(a.epoch);
  if (g.media) await g.media.setKey(a.key, a.epoch);
  else if (first) await joinMedia(a);
}

async function joinMedia(a) {
  const status = $('media-status');
  status.hidden = false;
  try {
    const tok = await g.server.request('POST', '/api/livekit/external-token', { sessionId: g.sessionId, meetingId: g.meetingId });
    status.textContent = 'Connecting to the media server…';
    document.body.dataset.media = 'connecting';
    g.media = await joinLiveKit({ url: tok.url, token: tok.token, keyB64: a.key, epoch: a.epoch, choices: g.devices?.choices() ?? {}, container: $('remote-media') });
    g.devices?.stop();
    status.textContent = 'Connected: audio and video are end-to-end encrypted.';
    document.body.dataset.media = 'connected';
  } catch (e) {
    if (e.code === 'not_configured') {
      status.textContent = 'Media server not configured: this keywave server has no audio/video server yet.';
      document.body.dataset.media = 'not_configured';
    } else {
      status.textContent = `Audio and video are not available: ${describe(e)}`;
      document.body.dataset.media = 'error';
    }
  }
}

// ---- events -------------------------------------------------------------------------------

function memberPeer(userId, deviceId) {
  const dev = deviceId === undefined || deviceId === null ? '' : String(deviceId);
  if (typeof userId !== 'string' || userId === '' || !/^[1-9][0-9]*$/.test(dev)) return null;
  return { user: userId, device: Number(dev), id: `${userId}:${dev}` };
}

async function feed(o, bodyKey, typeKey) {
  if (!g.admitted || o?.meeting_id !== g.meetingId) return;
  const p = memberPeer(o.participant_user_id, o.participant_device_id);
  const type = Number(o[typeKey]);
  if (!p || !(type >= 1 && type <= 3)) return;
  let text;
  try {
    text = (await g.core.call('decrypt', { name: p.user, device: p.device, type, body: o[bodyKey] })).plaintext;
  } catch {
    return; // not decryptable: ignored, as the CLI does
  }
  try {
    await handle(await g.core.call('mka_receive', { now_ms: Date.now(), from: p.id, payload: text }));
  } catch (e) {
    if (e.code !== 'invalid_state') console.warn(describe(e));
  }
}

async function onSenderKey(o) {
  if (o?.meetingId !== g.meetingId) return;
  const p = memberPeer(o.senderId, o.senderDeviceId);
  if (!p) return;
  try {
    const dist = (await g.core.call('decrypt', { name: p.user, device: p.device, type: 0, body: o.encryptedSenderKey })).plaintext;
    await g.core.call('group_process', { group: g.meetingId, sender: p.user, device: p.device, dist });
    g.senders++;
    document.body.dataset.senderKeys = String(g.senders);
  } catch {
    /* a sender key we cannot use: that member's group messages stay unreadable */
  }
}

async function onEvent(name, o) {
  switch (name) {
    case 'meeting:host_present':
      if (!g.hostPresent && !g.admitted) await requestAdmission();
      break;
    case 'meeting:admission_granted':
      if (!g.admitted) {
        g.admitted = true;
        try {
          await startExchange();
        } catch (e) {
          fail(describe(e), () => retryExchange());
        }
      }
      break;
    case 'meeting:ended':
      if (o?.meeting_id === g.meetingId) return meetingEnded();
      break;
    case 'meeting:admission_denied':
      showDeclined(o?.reason);
      break;
    case 'participant:meeting_e2ee_key_response':
      await feed(o, 'ciphertext', 'messageType');
      break;
    case 'participant:signal_message':
      await feed(o, 'encrypted_message', 'message_type');
      break;
    case 'meeting:receiveSenderKey':
      await onSenderKey(o);
      break;
    case 'prekeys:low':
      await checkPreKeys();
      break;
    default:
      break;
  }
}

// Serialised: events are handled one at a time, in arrival order (the core is not reentrant).
let queue = Promise.resolve();
function serial(fn) {
  queue = queue.then(fn).catch((e) => console.warn(e));
  return queue;
}
const enqueue = (name, payload) => serial(() => onEvent(name, payload));

async function checkPreKeys() {
  if (!g.sessionId || g.left) return;
  try {
    const target = `/api/meetings/external/session/${g.sessionId}/prekeys`;
    const { count } = await g.server.request('GET', target);
    const { batch } = await g.core.call('keys_replenish', { server_count: count });
    if (batch) await g.server.request('POST', target, batch);
  } catch {
    /* next check in 30 s */
  }
}

// ---- leaving ------------------------------------------------------------------------------

async function leave() {
  g.left = true;
  clearTimers();
  try {
    g.media?.leave();
  } catch {
    /* already gone */
  }
  g.devices?.stop();
  try {
    await g.core?.call('mka_leave');
  } catch {
    /* not started */
  }
  g.server.close();
  if (g.sessionId) {
    try {
      await g.server.request('DELETE', `/api/meetings/external/session/${g.sessionId}`);
    } catch {
      /* the session expires on its own within 24 h */
    }
  }
  g.core?.forget();
  sessionStorage.removeItem('keywave.name');
  show('left');
}

// ---- the whole flow -----------------------------------------------------------------------

async function run() {
  const m = /^\/join\/meeting\/([0-9a-f]{32})$/.exec(window.location.pathname);
  if (!m) {
    fail('This is not an invitation link.', null);
    return;
  }
  g.token = m[1];
  try {
    await setupKeys();
  } catch (e) {
    fail(`Your encryption keys could not be set up: ${describe(e)}`, () => run());
    return;
  }
  try {
    g.info = await g.server.joinInfo(g.token);
  } catch (e) {
    if (e.status === 410) return ended(e.code);
    fail(describe(e), () => run());
    return;
  }
  const title = $('meeting-title');
  title.textContent = g.info.title || 'Meeting';
  title.hidden = false;
  g.name = await askDetails();
  await connectAndWait();
}

async function connectAndWait() {
  const button = $('join-button');
  button.disabled = true;
  button.textContent = 'Joining…';
  try {
    await register();
    await g.server.connect(g.sessionId, enqueue, () => {});
  } catch (e) {
    button.disabled = false;
    button.textContent = 'Join meeting';
    if (e.status === 410) return ended(e.code);
    fail(`Could not join: ${describe(e)}`, () => connectAndWait());
    return;
  }
  every(() => checkPreKeys(), PREKEY_CHECK_MS);
  every(() => pollHost(), HOST_POLL_MS);
  const info = await g.server.joinInfo(g.token).catch(() => g.info);
  if (info?.has_active_participants) await requestAdmission();
  else show('waiting-host');
}

$('error-retry').addEventListener('click', () => {
  const r = retryAction;
  retryAction = null;
  r?.();
});
$('host-retry').addEventListener('click', () => pollHost());
$('leave-button').addEventListener('click', () => leave());

run().catch((e) => fail(describe(e), () => window.location.reload()));
