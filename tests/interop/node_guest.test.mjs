// node_guest.test.mjs — an independent guest, written from docs/api.md alone (issue 5: "the
// documentation is enough"), with @signalapp/libsignal-client 0.72.1 and the stock
// socket.io-client 4.8.1, against a C host: the `keywave` CLI running
// `meeting join --admit all --message hi` on a real keywaved.
//
// The guest: reads the join info, makes its keys (identity, signed pre-key, 30 one-time
// pre-keys), registers with the link's token, connects /external, waits for
// meeting:host_present and requests admission, is admitted, asks the longest-present member
// for the media key with a PreKeySignalMessage (guest:meeting_e2ee_key_request), decrypts the
// answer, computes the fingerprint as the docs define it and compares it with the host's;
// decrypts the host's sender-key distribution (meeting:receiveSenderKey) and the host's group
// message "hi" (groupItem) — in the classic v3 sender-key format api.md describes, which
// libsignal-client's group API cannot read (see below); finally deletes its session.
// Every step is one named check. Last line: RESULT passed=N failed=M.
// Env: KW_TOOLS (finds build/keywaved and build/keywave), KW_VERBOSE=1 to see every line.

import crypto from 'node:crypto';

import * as SC from '@signalapp/libsignal-client';
import { io } from 'socket.io-client';

import { cliHarness } from './lib/cli_harness.mjs';

const t = cliHarness('kw-node-guest-');
const { check, js, sleep } = t;

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (text) => Buffer.from(text, 'base64');
const randomInt = (lo, hi) => lo + crypto.randomInt(hi - lo + 1);

// "the first 8 bytes of SHA-256 of the 32 key bytes, as four groups of four lowercase hex
// digits" (api.md, Client protocol: Fingerprint).
function fingerprint(key) {
  const hex = crypto.createHash('sha256').update(key).digest('hex').slice(0, 16);
  return hex.match(/.{4}/g).join(' ');
}

// ---- sender keys: the classic v3 wire format (api.md, Client protocol: Sender keys) -----------
//
// libsignal-client 0.72.1 cannot read keywave's sender-key messages: its distribution message
// puts a distribution UUID first (NOTES.md "Interop oracles"), keywave sends the classic
// layout. So the guest parses the two messages itself, as api.md now describes them, and uses
// libsignal-client only for the XEdDSA signature check; the chain is HMAC/HKDF/AES from
// node:crypto.

// Protobuf fields of a flat message: varints as Numbers, length-delimited as Buffers.
function protoFields(buf) {
  const out = {};
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
      if (mul > 2 ** 35) throw new Error('varint too long');
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    if (tag % 8 === 0) out[field] = varint();
    else if (tag % 8 === 2) {
      const n = varint();
      if (i + n > buf.length) throw new Error('truncated field');
      out[field] = buf.subarray(i, i + n);
      i += n;
    } else throw new Error(`wire type ${tag % 8}`);
  }
  return out;
}

// A distribution message: 0x33, then {1 id, 2 iteration, 3 chainKey (32), 4 signingKey (33)}.
function parseDistribution(bytes) {
  if (bytes[0] !== 0x33) throw new Error(`distribution version byte ${bytes[0]}`);
  const f = protoFields(bytes.subarray(1));
  if (!Number.isInteger(f[1]) || !Number.isInteger(f[2]) || f[3]?.length !== 32 || f[4]?.length !== 33)
    throw new Error(`distribution fields ${Object.keys(f)}`);
  return { id: f[1], iteration: f[2], chainKey: Buffer.from(f[3]), signingKey: SC.PublicKey.deserialize(Buffer.from(f[4])) };
}

const hmac = (key, byte) => crypto.createHmac('sha256', key).update(Buffer.from([byte])).digest();

// A group message: 0x33, {1 id, 2 iteration, 3 ciphertext}, then a 64-byte XEdDSA signature by
// the signing key over everything before it. Message key seed = HMAC(chainKey, 0x01), next
// chainKey = HMAC(chainKey, 0x02); HKDF-SHA256(seed, 32 zero bytes, "WhisperGroup", 48) =
// IV (16) + AES-256-CBC key (32), PKCS#7 padding. Advances `state` (in order only: enough
// here, the host sends one message).
function groupDecryptClassic(state, bytes) {
  if (bytes.length < 1 + 64 || bytes[0] !== 0x33) throw new Error('not a v3 sender-key message');
  const signed = bytes.subarray(0, bytes.length - 64);
  if (!state.signingKey.verify(signed, bytes.subarray(bytes.length - 64))) throw new Error('bad sender-key signature');
  const f = protoFields(signed.subarray(1));
  if (f[1] !== state.id) throw new Error(`sender key id ${f[1]}, have ${state.id}`);
  if (!Number.isInteger(f[2]) || f[2] < state.iteration || f[2] - state.iteration > 2000) throw new Error(`iteration ${f[2]}`);
  let ck = state.chainKey;
  for (let it = state.iteration; it < f[2]; it++) ck = hmac(ck, 0x02);
  const okm = Buffer.from(crypto.hkdfSync('sha256', hmac(ck, 0x01), Buffer.alloc(32), 'WhisperGroup', 48));
  const d = crypto.createDecipheriv('aes-256-cbc', okm.subarray(16, 48), okm.subarray(0, 16));
  const plain = Buffer.concat([d.update(f[3]), d.final()]);
  state.chainKey = hmac(ck, 0x02);
  state.iteration = f[2] + 1;
  return plain;
}

// ---- the guest's Signal state: in-memory stores for libsignal-client --------------------------

function signalState() {
  const identity = SC.IdentityKeyPair.generate();
  const registrationId = randomInt(1, 16383);
  const sessions = new Map();
  const identities = new Map();
  const preKeys = new Map();
  const signedPreKeys = new Map();

  class Sessions extends SC.SessionStore {
    async saveSession(addr, rec) {
      sessions.set(addr.toString(), rec.serialize());
    }
    async getSession(addr) {
      const b = sessions.get(addr.toString());
      return b ? SC.SessionRecord.deserialize(b) : null;
    }
    async getExistingSessions(addrs) {
      return addrs.map((a) => {
        const b = sessions.get(a.toString());
        if (!b) throw new Error(`no session for ${a}`);
        return SC.SessionRecord.deserialize(b);
      });
    }
  }
  class Identities extends SC.IdentityKeyStore {
    async getIdentityKey() {
      return identity.privateKey;
    }
    async getLocalRegistrationId() {
      return registrationId;
    }
    async saveIdentity(addr, key) {
      const old = identities.get(addr.name());
      identities.set(addr.name(), key.serialize());
      return old && !old.equals(key.serialize()) ? SC.IdentityChange.ReplacedExisting : SC.IdentityChange.NewOrUnchanged;
    }
    async isTrustedIdentity(addr, key) {
      const old = identities.get(addr.name());
      return !old || old.equals(key.serialize());
    }
    async getIdentity(addr) {
      const old = identities.get(addr.name());
      return old ? SC.PublicKey.deserialize(old) : null;
    }
  }
  class PreKeys extends SC.PreKeyStore {
    async savePreKey(id, rec) {
      preKeys.set(id, rec.serialize());
    }
    async getPreKey(id) {
      const b = preKeys.get(id);
      if (!b) throw new Error(`no pre-key ${id}`);
      return SC.PreKeyRecord.deserialize(b);
    }
    async removePreKey(id) {
      preKeys.delete(id);
    }
  }
  class SignedPreKeys extends SC.SignedPreKeyStore {
    async saveSignedPreKey(id, rec) {
      signedPreKeys.set(id, rec.serialize());
    }
    async getSignedPreKey(id) {
      const b = signedPreKeys.get(id);
      if (!b) throw new Error(`no signed pre-key ${id}`);
      return SC.SignedPreKeyRecord.deserialize(b);
    }
  }
  // The docs' bundles carry no Kyber pre-key (classic X3DH): nothing is ever stored here.
  class KyberPreKeys extends SC.KyberPreKeyStore {
    async saveKyberPreKey() {
      throw new Error('no Kyber pre-keys in keywave bundles');
    }
    async getKyberPreKey(id) {
      throw new Error(`no Kyber pre-key ${id}`);
    }
    async markKyberPreKeyUsed() {}
  }
  const st = {
    identity,
    registrationId,
    sessions: new Sessions(),
    identities: new Identities(),
    preKeys: new PreKeys(),
    signedPreKeys: new SignedPreKeys(),
    kyber: new KyberPreKeys(),
    preKeyCount: () => preKeys.size,
  };

  // The registration body of POST /api/meetings/external/register, without token and name.
  st.publicBundle = () => {
    const spkId = randomInt(1, 16777215);
    const spkPriv = SC.PrivateKey.generate();
    const spkPub = spkPriv.getPublicKey();
    const spkSig = identity.privateKey.sign(spkPub.serialize());
    signedPreKeys.set(spkId, SC.SignedPreKeyRecord.new(spkId, Date.now(), spkPub, spkPriv, spkSig).serialize());
    const base = randomInt(1, 16777215 - 30);
    const list = [];
    for (let i = 0; i < 30; i++) {
      const priv = SC.PrivateKey.generate();
      preKeys.set(base + i, SC.PreKeyRecord.new(base + i, priv.getPublicKey(), priv).serialize());
      list.push({ id: base + i, public_key: b64(priv.getPublicKey().serialize()) });
    }
    return {
      identity_key: b64(identity.publicKey.serialize()),
      registration_id: registrationId,
      signed_pre_key: { id: spkId, public_key: b64(spkPub.serialize()), signature: b64(spkSig) },
      pre_keys: list,
    };
  };

  const addr = (name, dev) => SC.ProtocolAddress.new(name, Number(dev));

  // A member bundle ("user_id form") -> a session with that device (X3DH, no Kyber).
  st.processBundle = async (b) => {
    const otk = b.one_time_pre_key;
    const bundle = SC.PreKeyBundle.new(
      b.registration_id,
      Number(b.device_id),
      otk ? otk.id : null,
      otk ? SC.PublicKey.deserialize(unb64(otk.public_key)) : null,
      b.signed_pre_key.id,
      SC.PublicKey.deserialize(unb64(b.signed_pre_key.public_key)),
      unb64(b.signed_pre_key.signature),
      SC.PublicKey.deserialize(unb64(b.identity_key)),
      null,
      null,
      null,
    );
    await SC.processPreKeyBundle(bundle, addr(b.user_id, b.device_id), st.sessions, st.identities);
  };

  st.encrypt = async (name, dev, text) => {
    const m = await SC.signalEncrypt(Buffer.from(text, 'utf8'), addr(name, dev), st.sessions, st.identities);
    return { type: m.type(), body: b64(m.serialize()) };
  };

  // type 3: PreKeySignalMessage; 2 or 1: SignalMessage; null: unknown, try PreKey first.
  st.decrypt = async (name, dev, type, body) => {
    const buf = unb64(body);
    const a = addr(name, dev);
    const asPreKey = () =>
      SC.signalDecryptPreKey(SC.PreKeySignalMessage.deserialize(buf), a, st.sessions, st.identities, st.preKeys, st.signedPreKeys, st.kyber);
    const asNormal = () => SC.signalDecrypt(SC.SignalMessage.deserialize(buf), a, st.sessions, st.identities);
    if (type === 3) return { kind: 3, plain: await asPreKey() };
    if (type === 1 || type === 2) return { kind: 2, plain: await asNormal() };
    let pm = null;
    try {
      pm = SC.PreKeySignalMessage.deserialize(buf);
    } catch {
      pm = null; // not a PreKeySignalMessage: a SignalMessage
    }
    if (pm) return { kind: 3, plain: await asPreKey() };
    return { kind: 2, plain: await asNormal() };
  };

  // Sender keys by (group id = meeting id, sender address), as the docs name them.
  const groupStates = new Map();
  st.processDistribution = (groupId, name, dev, skdmBytes) => {
    const state = parseDistribution(skdmBytes);
    groupStates.set(`${groupId}/${addr(name, dev).toString()}`, state);
    return state;
  };
  st.groupDecrypt = (groupId, name, dev, bytes) => {
    const state = groupStates.get(`${groupId}/${addr(name, dev).toString()}`);
    if (!state) throw new Error(`no sender key of ${name}.${dev} in ${groupId}`);
    return groupDecryptClassic(state, bytes);
  };
  return st;
}

// ---- HTTP as the docs describe it ---------------------------------------------------------------

async function http(base, method, target, { body, bearer } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const r = await fetch(base + target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, json, headers: r.headers };
}

// Waits for the first element of `list` matching pred (already there or pushed later).
async function waitFor(list, pred, ms) {
  const t0 = Date.now();
  for (;;) {
    const hit = list.find(pred);
    if (hit) return hit;
    if (Date.now() - t0 > ms) return null;
    await sleep(20);
  }
}

// ---- the flow ----------------------------------------------------------------------------------

async function main() {
  const alice = await t.member('alice');
  const meetingId = await t.meeting(alice, 'Node guest');
  const link = await t.invite(alice, meetingId);
  const host = t.join(alice, meetingId, ['--admit', 'all', '--message', 'hi']);
  const hostKey = await host.event('media_key', 15000);
  check('host: the C host prints its media key fingerprint', /^[0-9a-f]{4}( [0-9a-f]{4}){3}$/.test(hostKey?.fingerprint ?? ''), js(hostKey) + host.stderr);

  // 1. The link: <base>/join/meeting/<32 hex token>.
  const m = /^(https?:\/\/[^/]+)\/join\/meeting\/([0-9a-f]{32})$/.exec(link);
  check('link: <server>/join/meeting/<32 hex token>', m !== null, link);
  if (!m) return;
  const [, base, token] = m;
  const info = await http(base, 'GET', `/api/meetings/external/join/${token}`);
  check(
    'join info: the meeting, with a participant active',
    info.status === 200 && info.json?.meeting_id === meetingId && info.json?.title === 'Node guest' && info.json?.has_active_participants === true,
    js(info),
  );

  // 2. Keys and registration.
  const st = signalState();
  const reg = await http(base, 'POST', '/api/meetings/external/register', {
    body: { invitation_token: token, display_name: 'Node guest', ...st.publicBundle() },
  });
  const sid = reg.json?.session_id;
  const secret = reg.json?.guest_secret;
  check(
    'register: 201 {session_id (32 hex), guest_secret (43 base64url), meeting_id, expires_at}',
    reg.status === 201 && /^[0-9a-f]{32}$/.test(sid ?? '') && /^[A-Za-z0-9_-]{43}$/.test(secret ?? '') && reg.json?.meeting_id === meetingId && typeof reg.json?.expires_at === 'string',
    js(reg),
  );
  if (reg.status !== 201) return;
  const count = await http(base, 'GET', `/api/meetings/external/session/${sid}/prekeys`, { bearer: secret });
  check('register: the server holds the 30 one-time pre-keys', count.status === 200 && count.json?.count === 30, js(count));

  // 3. /external, with every handler in place before CONNECT; every Signal operation runs on
  // one chain, in the order the events arrived (a session must see its messages in order).
  const events = [];
  const payloads = []; // decrypted 1:1 payloads: {via, from, kind, payload}
  const distributions = []; // {senderId, senderDeviceId, kind, skdm}
  const groupPlain = []; // {sender, senderDevice, itemId, text}
  const errors = [];
  let chain = Promise.resolve();
  const serial = (what, fn) => {
    chain = chain.then(fn).catch((e) => errors.push(`${what}: ${e.stack ?? e}`));
    return chain;
  };
  const socket = io(`${base}/external`, {
    transports: ['websocket'],
    auth: { session_id: sid, guest_secret: secret },
    forceNew: true,
    reconnection: false,
  });
  t.sockets.push(socket);
  socket.onAny((name, arg) => {
    events.push({ name, arg });
    if (process.env.KW_VERBOSE) console.log(`  [guest] ${name} ${js(arg).slice(0, 200)}`);
  });
  const onPayload = (via, from, dev, type, body) =>
    serial(via, async () => {
      const { kind, plain } = await st.decrypt(from, dev, type, body);
      payloads.push({ via, from, dev, kind, payload: JSON.parse(plain.toString('utf8')) });
    });
  socket.on('participant:meeting_e2ee_key_response', (e) =>
    onPayload('participant:meeting_e2ee_key_response', e.participant_user_id, e.participant_device_id, e.messageType, e.ciphertext),
  );
  socket.on('participant:signal_message', (e) =>
    onPayload('participant:signal_message', e.participant_user_id, e.participant_device_id, e.message_type, e.encrypted_message),
  );
  socket.on('meeting:receiveSenderKey', (e) =>
    serial('meeting:receiveSenderKey', async () => {
      // no message type: PreKeySignalMessage first, else SignalMessage (api.md, Sender keys)
      const { kind, plain } = await st.decrypt(e.senderId, e.senderDeviceId, null, e.encryptedSenderKey);
      const skdmBytes = unb64(plain.toString('utf8'));
      let signalapp = null;
      try {
        SC.SenderKeyDistributionMessage.deserialize(skdmBytes);
        signalapp = 'parsed';
      } catch (err) {
        signalapp = String(err.message ?? err);
      }
      const skdm = st.processDistribution(e.meetingId, e.senderId, e.senderDeviceId, skdmBytes);
      distributions.push({ ...e, kind, skdm, signalapp });
    }),
  );
  socket.on('groupItem', (e) =>
    serial('groupItem', async () => {
      const plain = st.groupDecrypt(e.channel, e.sender, e.senderDevice, unb64(e.payload));
      groupPlain.push({ ...e, text: plain.toString('utf8') });
    }),
  );
  let admitted = null;
  let requestId = null;
  let requestType = null;
  socket.on('meeting:admission_granted', (e) => {
    admitted = e;
    // Enqueued now, before any message the host sends after admitting us is handled.
    serial('media key request', async () => {
      const list = await http(base, 'GET', `/api/meetings/${meetingId}/participants?status=joined`, { bearer: secret });
      const members = (list.json?.participants ?? []).filter((p) => p.user_id).sort((a, b) => Date.parse(a.joined_at) - Date.parse(b.joined_at));
      events.push({ name: '(participants)', arg: list, members });
      const peer = members[0];
      if (!peer) throw new Error(`no present member: ${js(list)}`);
      const bundle = await http(base, 'GET', `/api/meetings/external/${sid}/participant/${peer.user_id}/${peer.device_id}/keys`, { bearer: secret });
      events.push({ name: '(bundle)', arg: bundle });
      if (bundle.status !== 200) throw new Error(`bundle: ${js(bundle)}`);
      await st.processBundle(bundle.json);
      requestId = crypto.randomBytes(16).toString('hex');
      const msg = await st.encrypt(peer.user_id, peer.device_id, JSON.stringify({ type: 'media_key_request', request_id: requestId }));
      requestType = msg.type;
      const ack = await socket.timeout(5000).emitWithAck('guest:meeting_e2ee_key_request', {
        participant_user_id: peer.user_id,
        participant_device_id: String(peer.device_id),
        ciphertext: msg.body,
        messageType: msg.type,
        request_id: requestId,
      });
      events.push({ name: '(request ack)', arg: ack });
    });
  });

  const connected = await new Promise((resolve) => {
    socket.on('connect', () => resolve(true));
    socket.on('connect_error', (e) => resolve(e.message));
    setTimeout(() => resolve('timeout'), 5000);
  });
  check('/external: CONNECT with {session_id, guest_secret} accepted', connected === true, String(connected));
  if (connected !== true) return;

  // 4. Admission: the host is present, so host_present comes at once; then request.
  const present = await waitFor(events, (e) => e.name === 'meeting:host_present', 5000);
  check('meeting:host_present {meeting_id} on connect (a member is present)', present?.arg?.meeting_id === meetingId, js(present));
  let ra = await http(base, 'POST', `/api/meetings/${meetingId}/external/${sid}/request-admission`, { bearer: secret });
  for (let i = 0; i < 50 && ra.status === 409 && ra.json?.error === 'no_host_present'; i++) {
    await waitFor(events, (e) => e.name === 'meeting:host_present', 2000);
    ra = await http(base, 'POST', `/api/meetings/${meetingId}/external/${sid}/request-admission`, { bearer: secret });
  }
  check('request-admission: 200 {ok:true}', ra.status === 200 && ra.json?.ok === true, js(ra));
  await waitFor(events, (e) => e.name === 'meeting:admission_granted', 15000);
  check(
    'meeting:admission_granted {meeting_id, session_id, admitted_by: the host}',
    admitted?.meeting_id === meetingId && admitted?.session_id === sid && admitted?.admitted_by === alice.user_id,
    js(admitted),
  );

  // 5. The media key, asked for with a PreKeySignalMessage, answered over Signal.
  await waitFor(events, (e) => e.name === '(request ack)', 10000);
  const partEv = events.find((e) => e.name === '(participants)');
  check(
    'participants as guest: the host device first, with joined_at',
    partEv?.arg?.status === 200 && partEv.members[0]?.user_id === alice.user_id && partEv.members[0]?.device_id === alice.device_id && !Number.isNaN(Date.parse(partEv.members[0]?.joined_at)),
    js(partEv?.arg ?? errors),
  );
  const bundleEv = events.find((e) => e.name === '(bundle)');
  check(
    "the host's bundle (user_id form) fetched as guest, with a one-time pre-key",
    bundleEv?.arg?.status === 200 && bundleEv.arg.json?.user_id === alice.user_id && bundleEv.arg.json?.device_id === alice.device_id && bundleEv.arg.json?.one_time_pre_key !== null,
    js(bundleEv?.arg ?? errors),
  );
  const reqAck = events.find((e) => e.name === '(request ack)');
  check('guest:meeting_e2ee_key_request sent as a PreKeySignalMessage (type 3), ack ok', requestType === 3 && reqAck?.arg?.ok === true, js([requestType, reqAck?.arg, errors]));
  const answer = await waitFor(payloads, (p) => p.payload.type === 'media_key' && p.payload.request_id === requestId, 15000);
  check(
    'participant:meeting_e2ee_key_response answers our request_id, decrypted',
    answer?.via === 'participant:meeting_e2ee_key_response' && answer?.from === alice.user_id,
    js(answer ?? { payloads, errors }),
  );
  const k = answer?.payload ?? {};
  const keyBytes = typeof k.key === 'string' ? unb64(k.key) : Buffer.alloc(0);
  check(
    'media_key payload: exactly {type, request_id, key (32 bytes), epoch, created_ms, key_id (16 hex)}',
    js(Object.keys(k).sort()) === js(['created_ms', 'epoch', 'key', 'key_id', 'request_id', 'type']) &&
      keyBytes.length === 32 &&
      Number.isInteger(k.epoch) &&
      Number.isInteger(k.created_ms) &&
      /^[0-9a-f]{16}$/.test(k.key_id ?? ''),
    js(k && { ...k, key: `${keyBytes.length} bytes` }),
  );
  check('the fingerprint computed from the docs matches the host', keyBytes.length === 32 && fingerprint(keyBytes) === hostKey?.fingerprint, `${keyBytes.length ? fingerprint(keyBytes) : '-'} vs ${hostKey?.fingerprint}`);
  check('epoch matches the host', k.epoch === hostKey?.epoch, `${k.epoch} vs ${hostKey?.epoch}`);
  const others = payloads.filter((p) => p !== answer);
  check(
    'every other 1:1 payload from the host is a media_key with the same key (unasked, or a repeat)',
    others.every((p) => p.payload.type === 'media_key' && p.payload.key === k.key),
    js(others.map((p) => ({ via: p.via, type: p.payload.type, rid: p.payload.request_id }))),
  );

  // 6. Sender keys and the group message.
  const dist = await waitFor(distributions, () => true, 15000);
  check(
    'meeting:receiveSenderKey from the host: Signal-decrypted to a v3 sender-key distribution (32-byte chain key, signing key)',
    dist?.meetingId === meetingId && dist?.senderId === alice.user_id && dist?.senderDeviceId === alice.device_id && dist?.skdm?.chainKey.length === 32,
    js(dist ? { ...dist, skdm: undefined } : errors),
  );
  // Not a check: what libsignal-client's own group API makes of it (NOTES.md: it cannot).
  if (dist) console.log(`note libsignal-client SenderKeyDistributionMessage.deserialize on keywave's distribution (a ${dist.kind === 3 ? 'PreKey' : 'normal'} Signal message): ${dist.signalapp}`);
  const hi = await waitFor(groupPlain, (g) => g.text === 'hi', 15000);
  check(
    'groupItem from the host (cipherType 7): signature verified, decrypted with its sender key to "hi"',
    hi?.channel === meetingId && hi?.sender === alice.user_id && hi?.senderDevice === alice.device_id && hi?.cipherType === 7,
    js(hi ?? { group: events.filter((e) => e.name === 'groupItem'), errors }),
  );
  check('no decryption or protocol error on the way', errors.length === 0, errors.join('\n'));
  if (process.env.KW_VERBOSE) console.log(`  host events: ${js(host.events.map((e) => e.event))}`);

  // 7. Leave.
  const del = await http(base, 'DELETE', `/api/meetings/external/session/${sid}`, { bearer: secret });
  check('DELETE own session: 200 {ok:true}', del.status === 200 && del.json?.ok === true, js(del));
  const after = await http(base, 'GET', `/api/meetings/external/session/${sid}/prekeys`, { bearer: secret });
  check('the secret no longer works: 401 unauthorized', after.status === 401 && after.json?.error === 'unauthorized', js(after));
  socket.disconnect();

  await host.stop('SIGINT');
  check('host exits 0 on Ctrl-C', host.exit?.code === 0, js(host.exit) + host.stderr);
}

try {
  await t.startServer();
  await main();
} catch (e) {
  check('no exception', false, e.stack);
}
await t.finish();
