'use strict';
/*
 * bench/peer/server.js — the Node.js baseline of keywave's HTTP benchmark (DESIGN.md
 * section 11): the guest routes written the way seeds 000 and 001 write them (Express 4,
 * `router.get/post(path, verifyAuthEither, async (req, res) => ...)`, an in-memory guest
 * store like the reference implementation's `externalParticipantService.sessions` Map,
 * pre-keys kept as a JSON string that each fetch parses and rewrites).
 *
 * Socket.IO 4.8 (seeds 002 and 003) carries the realtime benchmark's relay: members on "/",
 * guests on "/external", guest:signal_message relayed to a member device's socket.
 *
 * It is a yardstick, not a server: no rate limit (the seeds have none on these routes),
 * no database, no signature check on registration. bench/peer/README.md lists what it
 * does and where it departs from the seeds.
 *
 * Usage: PORT=8081 node server.js   (listens on 127.0.0.1; prints "listening <port>")
 */
const crypto = require('crypto');
const express = require('express');
const { Server } = require('socket.io');

const SKEW_MS = 5 * 60 * 1000;      // X-Timestamp must be within 5 min of now
const NONCE_TTL_MS = 10 * 60 * 1000; // a nonce is remembered 10 min
const SESSION_TTL_MS = 24 * 60 * 60 * 1000; // guest sessions live 24 h (seed 000)

/* ---- in-memory state (the reference implementation keeps these in Maps) ---- */
const clients = new Map();     // client_id -> {user_id, device_id, session_secret}
const nonces = new Map();      // client_id + ':' + nonce -> expiry ms
const meetings = new Map();    // meeting_id -> meeting
const invitations = new Map(); // token -> {meeting_id, expires_at, max_uses, uses, revoked}

// externalParticipantService of seed 000 phase 4: sessions Map, pre_keys as JSON text.
const externalService = {
  sessions: new Map(),

  async createSession(meetingId, displayName, keys) {
    const sessionId = crypto.randomUUID();
    const session = {
      session_id: sessionId,
      meeting_id: meetingId,
      display_name: displayName,
      identity_key_public: keys.identityKeyPublic,
      registration_id: keys.registrationId,
      signed_pre_key: JSON.stringify(keys.signedPreKey),
      pre_keys: JSON.stringify(keys.preKeys),
      admission_status: 'waiting',
      expires_at: new Date(Date.now() + SESSION_TTL_MS),
      created_at: new Date(),
    };
    this.sessions.set(sessionId, session);
    return session;
  },

  async getSession(sessionId) {
    return this.sessions.get(sessionId) || null;
  },

  // seed 001 section 1.3: rewrite the remaining pre-keys after one was consumed.
  async updateSessionPreKeys(sessionId, preKeys) {
    const session = this.sessions.get(sessionId);
    if (!session) return false;
    session.pre_keys = JSON.stringify(preKeys);
    return true;
  },
};

const meetingService = {
  async getMeeting(meetingId) {
    return meetings.get(meetingId) || null;
  },
};

/* ---- verifyAuthEither: the HMAC-signed member request (cookie sessions not modelled) ---- */
function sha256Hex(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

async function verifyAuthEither(req, res, next) {
  const clientId = req.get('x-client-id');
  const timestamp = req.get('x-timestamp');
  const nonce = req.get('x-nonce');
  const signature = req.get('x-signature');
  if (!clientId || !timestamp || !nonce || !signature) {
    return res.status(401).json({ error: 'missing_auth_headers' });
  }
  const ts = Number(timestamp);
  if (!Number.isFinite(ts) || Math.abs(Date.now() - ts) > SKEW_MS) {
    return res.status(401).json({ error: 'request_expired' });
  }
  const client = clients.get(clientId);
  if (!client) {
    return res.status(401).json({ error: 'no_session' });
  }
  const body = req.rawBody || Buffer.alloc(0);
  const message = `${clientId}:${timestamp}:${nonce}:${req.method}:${req.originalUrl}:${sha256Hex(body)}`;
  const expected = crypto.createHmac('sha256', client.session_secret).update(message).digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return res.status(401).json({ error: 'invalid_signature' });
  }
  const nonceKey = clientId + ':' + nonce;
  if (nonces.has(nonceKey)) {
    return res.status(401).json({ error: 'duplicate_request' });
  }
  nonces.set(nonceKey, Date.now() + NONCE_TTL_MS);
  req.userId = client.user_id;
  req.deviceId = client.device_id;
  next();
}

setInterval(() => {
  const now = Date.now();
  for (const [k, exp] of nonces) if (exp <= now) nonces.delete(k);
}, 60 * 1000).unref();

function isParticipant(meeting, userId) {
  return meeting.created_by === userId ||
    meeting.participants?.some(p => p.uuid === userId) ||
    meeting.invited_participants?.includes(userId);
}

/* ---- app ---- */
const app = express();
app.disable('x-powered-by');
// Keep the raw bytes: the request signature covers them.
app.use(express.json({ verify: (req, _res, buf) => { req.rawBody = buf; } }));

const router = express.Router();

app.get('/healthz', (req, res) => res.json({ status: 'ok' }));

/*
 * Bench setup only (not timed, not in the seeds): makes `count` device sessions of one user,
 * standing in for the reference implementation's login; keywaved enrolls real devices.
 */
app.post('/bench/devices', (req, res) => {
  const count = req.body?.count;
  const userId = req.body?.user_id || 'u_bench';
  if (!Number.isInteger(count) || count < 1 || count > 10000) {
    return res.status(400).json({ error: 'invalid_field' });
  }
  const devices = [];
  for (let i = 1; i <= count; i++) {
    const device = {
      user_id: userId,
      device_id: String(i),
      client_id: crypto.randomBytes(16).toString('hex'),
      session_secret: crypto.randomBytes(32).toString('base64url'),
    };
    clients.set(device.client_id, device);
    devices.push(device);
  }
  res.status(201).json({ devices });
});

// Create a meeting (caller is owner).
router.post('/meetings', verifyAuthEither, async (req, res) => {
  try {
    const { title, description, start_time, end_time, allow_external } = req.body;
    if (typeof title !== 'string' || !title) {
      return res.status(400).json({ error: 'invalid_field' });
    }
    const meetingId = 'mtg_' + crypto.randomBytes(6).toString('hex');
    const meeting = {
      meeting_id: meetingId,
      title,
      description: description || '',
      start_time,
      end_time,
      is_instant_call: false,
      allow_external: !!allow_external,
      created_by: req.userId,
      created_at: new Date().toISOString(),
      participants: [],
      invited_participants: [],
    };
    meetings.set(meetingId, meeting);
    const { participants, invited_participants, ...out } = meeting;
    res.status(201).json(out);
  } catch (error) {
    res.status(500).json({ error: 'Internal server error' });
  }
});

// Create an invitation link for a meeting (owner).
router.post('/meetings/:meetingId/invitations', verifyAuthEither, async (req, res) => {
  try {
    const meeting = await meetingService.getMeeting(req.params.meetingId);
    if (!meeting) return res.status(404).json({ error: 'Meeting not found' });
    if (meeting.created_by !== req.userId) return res.status(403).json({ error: 'forbidden' });
    const token = crypto.randomBytes(16).toString('hex');
    const { expires_at = null, max_uses = null } = req.body || {};
    invitations.set(token, { meeting_id: meeting.meeting_id, expires_at, max_uses, uses: 0 });
    res.status(201).json({ token, url: `http://localhost/join/meeting/${token}`, expires_at, max_uses });
  } catch (error) {
    res.status(500).json({ error: 'Internal server error' });
  }
});

/*
 * Guest registration (seed 001 flow step 2, seed 000 phases 3 and 4): the invitation token
 * binds the session to its meeting; the server makes the session id (UUID v4) and stores the
 * uploaded public keys as they come.
 */
router.post('/meetings/external/register', async (req, res) => {
  try {
    const { invitation_token, display_name, identity_key, registration_id, signed_pre_key, pre_keys } = req.body;
    if (!invitation_token || !display_name || !identity_key || !signed_pre_key || !Array.isArray(pre_keys)) {
      return res.status(400).json({ error: 'Missing required fields' });
    }
    const invitation = invitations.get(invitation_token);
    if (!invitation) return res.status(404).json({ error: 'Invitation not found' });
    if (invitation.expires_at && new Date(invitation.expires_at) < new Date()) {
      return res.status(410).json({ error: 'Invitation expired' });
    }
    if (invitation.max_uses != null && invitation.uses >= invitation.max_uses) {
      return res.status(410).json({ error: 'Invitation exhausted' });
    }
    const meeting = await meetingService.getMeeting(invitation.meeting_id);
    if (!meeting || !meeting.allow_external) {
      return res.status(403).json({ error: 'Meeting does not allow external participants' });
    }
    const session = await externalService.createSession(meeting.meeting_id, display_name, {
      identityKeyPublic: identity_key,
      registrationId: registration_id,
      signedPreKey: signed_pre_key,
      preKeys: pre_keys,
    });
    invitation.uses++;
    res.status(201).json({
      session_id: session.session_id,
      meeting_id: session.meeting_id,
      admission_status: session.admission_status,
      expires_at: session.expires_at,
    });
  } catch (error) {
    console.error('[EXTERNAL] Error registering guest:', error);
    res.status(500).json({ error: 'Internal server error' });
  }
});

/*
 * Participant -> guest keybundle (seed 001 section 1.2, same checks and the same
 * parse/select/rewrite of the pre-key list). One departure: with no pre-key left the seed
 * answers 404; here the bundle is served with pre_key null, as keywaved does (INV-2), so
 * both servers do the same work per request.
 */
router.get('/meetings/:meetingId/external/:sessionId/keys', verifyAuthEither, async (req, res) => {
  try {
    const { meetingId, sessionId } = req.params;
    const userId = req.userId;

    const meeting = await meetingService.getMeeting(meetingId);
    if (!meeting) {
      return res.status(404).json({ error: 'Meeting not found' });
    }
    if (!isParticipant(meeting, userId)) {
      return res.status(403).json({ error: 'Not a participant' });
    }

    const session = await externalService.getSession(sessionId);
    if (!session || session.meeting_id !== meetingId) {
      return res.status(404).json({ error: 'Guest session not found' });
    }

    let preKeys = session.pre_keys;
    if (typeof preKeys === 'string') {
      preKeys = JSON.parse(preKeys);
    }
    let signedPreKey = session.signed_pre_key;
    if (typeof signedPreKey === 'string') {
      signedPreKey = JSON.parse(signedPreKey);
    }

    const selectedPreKey = preKeys && preKeys.length > 0 ? preKeys[0] : null;

    res.json({
      session_id: sessionId,
      display_name: session.display_name,
      identity_key: session.identity_key_public,
      registration_id: session.registration_id ?? 1,
      signed_pre_key: signedPreKey,
      pre_key: selectedPreKey,
    });

    if (selectedPreKey) {
      const remainingPreKeys = preKeys.filter(pk => pk.id !== selectedPreKey.id);
      await externalService.updateSessionPreKeys(sessionId, remainingPreKeys);
    }
  } catch (error) {
    console.error('[EXTERNAL] Error fetching guest keys:', error);
    res.status(500).json({ error: 'Internal server error' });
  }
});

app.use('/api', router);
app.use((req, res) => res.status(404).json({ error: 'not_found' }));

const port = Number(process.env.PORT || 8081);
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

/* ---- Socket.IO (seeds 002 and 003): the realtime benchmark's relay ---- */
/*
 * Written the way the seeds write their socket handlers: one Socket.IO 4 server on the
 * Express server, members on "/", guests on "/external", a Map from device to socket id
 * (seed 002's guestSocketConnections, here for member devices), video participants per
 * channel (seed 003's activeVideoParticipants with socket.join(channelId)), and
 * io.to(socketId).emit(...) to relay. Acks as keywaved answers them ({ok:true} or
 * {error}), so the load generator counts both the same way.
 */
const io = new Server(server, { transports: ['websocket'], serveClient: false });
const deviceSockets = new Map();         // `${userId}:${deviceId}` -> socket.id
const guestSocketConnections = new Map(); // sessionId -> socket.id (seed 002)
const activeVideoParticipants = new Map(); // channelId -> [{userId, deviceId, socketId, joinedAt, hasE2EEKey}]

// Members: the CONNECT auth is the HMAC of verifyAuthEither over `GET /socket.io/auth`
// with an empty body (the seeds read the express session instead; this costs as little
// and is what keywaved checks). Once per connection, not per message.
io.use((socket, next) => {
  const { client_id: clientId, timestamp, nonce, signature } = socket.handshake.auth || {};
  if (!clientId || !timestamp || !nonce || !signature) return next(new Error('missing_auth_headers'));
  if (Math.abs(Date.now() - Number(timestamp)) > SKEW_MS) return next(new Error('request_expired'));
  const client = clients.get(clientId);
  if (!client) return next(new Error('no_session'));
  const message = `${clientId}:${timestamp}:${nonce}:GET:/socket.io/auth:${sha256Hex(Buffer.alloc(0))}`;
  const expected = crypto.createHmac('sha256', client.session_secret).update(message).digest();
  const given = Buffer.from(String(signature), 'hex');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return next(new Error('invalid_signature'));
  }
  const nonceKey = clientId + ':' + nonce;
  if (nonces.has(nonceKey)) return next(new Error('duplicate_request'));
  nonces.set(nonceKey, Date.now() + NONCE_TTL_MS);
  socket.data.userId = client.user_id;
  socket.data.deviceId = client.device_id;
  next();
});

io.on('connection', (socket) => {
  const { userId, deviceId } = socket.data;
  deviceSockets.set(`${userId}:${deviceId}`, socket.id);

  // seed 003: register as a video participant of a channel (here: a meeting).
  socket.on('video:register-participant', async (data, ack) => {
    try {
      const { channelId } = data || {};
      if (!channelId) return ack?.({ error: 'invalid_payload' });
      const meeting = await meetingService.getMeeting(channelId);
      if (!meeting) return ack?.({ error: 'not_found' });
      if (!isParticipant(meeting, userId)) return ack?.({ error: 'forbidden' });
      const list = activeVideoParticipants.get(channelId) || [];
      const joinedAt = Date.now();
      list.push({ userId, deviceId, socketId: socket.id, joinedAt, hasE2EEKey: false });
      activeVideoParticipants.set(channelId, list);
      socket.join(channelId);
      socket.to(channelId).emit('video:participant-joined', { userId, deviceId, joinedAt });
      // Waiting guests of the meeting learn that a member is there (keywaved does the same).
      io.of('/external').to('g:' + channelId).emit('meeting:host_present', { meeting_id: channelId });
      ack?.({ ok: true, channelId, joinedAt });
    } catch (error) {
      console.error('[VIDEO PARTICIPANTS] Error registering participant:', error);
      ack?.({ error: 'internal' });
    }
  });

  socket.on('disconnect', () => {
    if (deviceSockets.get(`${userId}:${deviceId}`) === socket.id) deviceSockets.delete(`${userId}:${deviceId}`);
    for (const [channelId, list] of activeVideoParticipants) {
      const rest = list.filter(p => p.socketId !== socket.id);
      if (rest.length !== list.length) {
        if (rest.length) activeVideoParticipants.set(channelId, rest);
        else activeVideoParticipants.delete(channelId);
        socket.to(channelId).emit('video:participant-left', { userId, deviceId });
      }
    }
  });
});

// Guests: identified by their session id, looked up in the sessions Map (the seeds have
// no guest secret: seed 002's external:registerSocket trusts the session id it is sent).
const external = io.of('/external');
external.use(async (socket, next) => {
  const { session_id: sessionId } = socket.handshake.auth || {};
  const session = sessionId ? await externalService.getSession(sessionId) : null;
  if (!session || session.expires_at < new Date()) return next(new Error('unauthorized'));
  socket.data.sessionId = sessionId;
  next();
});

external.on('connection', (socket) => {
  const { sessionId } = socket.data;
  guestSocketConnections.set(sessionId, socket.id);
  const meetingId = externalService.sessions.get(sessionId).meeting_id;
  socket.join('g:' + meetingId);
  socket.on('disconnect', () => {
    if (guestSocketConnections.get(sessionId) === socket.id) guestSocketConnections.delete(sessionId);
  });

  // Guest -> member device present in the guest's meeting; same payload as keywaved.
  socket.on('guest:signal_message', async (data, ack) => {
    try {
      const { recipient_user_id, recipient_device_id, encrypted_message, message_type } = data || {};
      if (!recipient_user_id || !recipient_device_id || !encrypted_message || !message_type) {
        return ack?.({ error: 'invalid_payload' });
      }
      const session = await externalService.getSession(sessionId);
      if (!session || session.admission_status === 'declined') return ack?.({ error: 'forbidden' });
      const targetSocketId = deviceSockets.get(`${recipient_user_id}:${recipient_device_id}`);
      const room = io.of('/').adapter.rooms.get(session.meeting_id);
      if (!targetSocketId || !room || !room.has(targetSocketId)) {
        return ack?.({ error: 'recipient_offline' });
      }
      io.to(targetSocketId).emit('guest:signal_message', {
        meeting_id: session.meeting_id,
        from_guest_session_id: sessionId,
        display_name: session.display_name,
        encrypted_message,
        message_type,
      });
      ack?.({ ok: true });
    } catch (error) {
      console.error('[EXTERNAL] Error relaying guest message:', error);
      ack?.({ error: 'internal' });
    }
  });
});
// Node's defaults would close idle keep-alive sockets after 5 s; the load generator keeps
// its connections busy, so this only matters between phases.
server.keepAliveTimeout = 60 * 1000;
server.headersTimeout = 65 * 1000;

function shutdown() {
  io.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
