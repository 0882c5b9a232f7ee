// signal_peers.mjs — Signal 1:1 peers made with the real JavaScript libraries, behind one
// small interface, for the interop tests against libkeywave (signal.test.mjs):
//
//   const peer = await makePeer(lib, name, deviceId)   // lib: a loaded library (loadLibraries)
//   peer.bundle()                     -> its bundle in keywave's JSON (DESIGN.md section 6)
//   peer.signForeign(pubKeyBytes)     -> signature over pubKeyBytes by a fresh other identity
//   await peer.processBundle(peerName, deviceId, keywaveBundle)
//   await peer.encrypt(peerName, deviceId, Buffer) -> {type, body: base64}
//   await peer.decrypt(peerName, deviceId, type, base64Body) -> Buffer
//   peer.removedPreKeys               -> ids the library asked its store to remove
//   peer.holdsPreKey(id)              -> whether the store still holds that one-time pre-key
//   peer.preKeyId, peer.normalType    -> its one-time pre-key id; 2 or 1 (how it numbers
//                                        the normal message)
//
// Keys are 33 bytes (0x05 prefix), signatures 64 bytes, all standard base64 in the JSON.

const SIGNALAPP = '@signalapp/libsignal-client';
const PRIVACYRESEARCH = '@privacyresearch/libsignal-protocol-typescript';

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (text) => Buffer.from(text, 'base64');
const toArrayBuffer = (buf) => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
const randomId = (max) => 1 + Math.floor(Math.random() * max);

// Loads both libraries; resolves with {libs: [{label, ...}], missing: [{label, error}]}.
export async function loadLibraries() {
  const libs = [];
  const missing = [];
  try {
    libs.push({ label: 'signalapp-0.72.1', kind: 'signalapp', mod: await import(SIGNALAPP) });
  } catch (e) {
    missing.push({ label: SIGNALAPP, error: e });
  }
  try {
    const m = await import(PRIVACYRESEARCH);
    // a CommonJS module: .default is its exports object, whose own .default makes the curve
    const mod = m.default;
    const { Curve } = await mod.default();
    libs.push({ label: 'privacyresearch-0.0.16', kind: 'privacyresearch', mod, curve: Curve });
  } catch (e) {
    missing.push({ label: PRIVACYRESEARCH, error: e });
  }
  return { libs, missing };
}

// keywave bundle JSON -> the fields both libraries need, as Buffers.
function parseKeywaveBundle(b) {
  const otk = b.one_time_pre_key;
  return {
    registrationId: b.registration_id,
    deviceId: Number(b.device_id),
    identityKey: unb64(b.identity_key),
    signedPreKeyId: b.signed_pre_key.id,
    signedPreKey: unb64(b.signed_pre_key.public_key),
    signedPreKeySignature: unb64(b.signed_pre_key.signature),
    preKeyId: otk ? otk.id : null,
    preKey: otk ? unb64(otk.public_key) : null,
  };
}

function keywaveBundle(f) {
  return {
    user_id: f.owner,
    device_id: String(f.deviceId),
    registration_id: f.registrationId,
    identity_key: b64(f.identityKey),
    signed_pre_key: {
      id: f.signedPreKeyId,
      public_key: b64(f.signedPreKey),
      signature: b64(f.signedPreKeySignature),
    },
    one_time_pre_key: f.preKey ? { id: f.preKeyId, public_key: b64(f.preKey) } : null,
  };
}

export async function makePeer(lib, name, deviceId) {
  if (lib.kind === 'signalapp') return makeSignalappPeer(lib.mod, name, deviceId);
  return makePrivacyresearchPeer(lib.mod, lib.curve, name, deviceId);
}

// ---- @signalapp/libsignal-client 0.72.1 ---------------------------------------------------

function makeSignalappPeer(SC, name, deviceId) {
  const identity = SC.IdentityKeyPair.generate();
  const registrationId = randomId(16380);
  const removedPreKeys = [];

  class Sessions extends SC.SessionStore {
    map = new Map();
    async saveSession(addr, rec) {
      this.map.set(addr.toString(), rec.serialize());
    }
    async getSession(addr) {
      const b = this.map.get(addr.toString());
      return b ? SC.SessionRecord.deserialize(b) : null;
    }
    async getExistingSessions(addrs) {
      return addrs.map((a) => {
        const b = this.map.get(a.toString());
        if (!b) throw new Error(`no session for ${a}`);
        return SC.SessionRecord.deserialize(b);
      });
    }
  }
  class Identities extends SC.IdentityKeyStore {
    map = new Map();
    async getIdentityKey() {
      return identity.privateKey;
    }
    async getLocalRegistrationId() {
      return registrationId;
    }
    async saveIdentity(addr, key) {
      const old = this.map.get(addr.name());
      this.map.set(addr.name(), key.serialize());
      return old && !old.equals(key.serialize())
        ? SC.IdentityChange.ReplacedExisting
        : SC.IdentityChange.NewOrUnchanged;
    }
    async isTrustedIdentity(addr, key) {
      const old = this.map.get(addr.name());
      return !old || old.equals(key.serialize());
    }
    async getIdentity(addr) {
      const old = this.map.get(addr.name());
      return old ? SC.PublicKey.deserialize(old) : null;
    }
  }
  class PreKeys extends SC.PreKeyStore {
    map = new Map();
    async savePreKey(id, rec) {
      this.map.set(id, rec.serialize());
    }
    async getPreKey(id) {
      const b = this.map.get(id);
      if (!b) throw new Error(`no pre-key ${id}`);
      return SC.PreKeyRecord.deserialize(b);
    }
    async removePreKey(id) {
      removedPreKeys.push(id);
      this.map.delete(id);
    }
  }
  class SignedPreKeys extends SC.SignedPreKeyStore {
    map = new Map();
    async saveSignedPreKey(id, rec) {
      this.map.set(id, rec.serialize());
    }
    async getSignedPreKey(id) {
      const b = this.map.get(id);
      if (!b) throw new Error(`no signed pre-key ${id}`);
      return SC.SignedPreKeyRecord.deserialize(b);
    }
  }
  class KyberPreKeys extends SC.KyberPreKeyStore {
    async saveKyberPreKey() {
      throw new Error('no Kyber pre-keys in X3DH interop');
    }
    async getKyberPreKey(id) {
      throw new Error(`no Kyber pre-key ${id}`);
    }
    async markKyberPreKeyUsed() {}
  }

  const sessions = new Sessions();
  const identities = new Identities();
  const preKeys = new PreKeys();
  const signedPreKeys = new SignedPreKeys();
  const kyber = new KyberPreKeys();

  const preKeyId = randomId(0xfffff);
  const preKeyPriv = SC.PrivateKey.generate();
  preKeys.map.set(preKeyId, SC.PreKeyRecord.new(preKeyId, preKeyPriv.getPublicKey(), preKeyPriv).serialize());
  const signedPreKeyId = randomId(0xfffff);
  const spkPriv = SC.PrivateKey.generate();
  const spkPub = spkPriv.getPublicKey();
  const spkSig = identity.privateKey.sign(spkPub.serialize());
  signedPreKeys.map.set(
    signedPreKeyId,
    SC.SignedPreKeyRecord.new(signedPreKeyId, Date.now(), spkPub, spkPriv, spkSig).serialize(),
  );
  const addr = (peer, dev) => SC.ProtocolAddress.new(peer, dev);

  return {
    name,
    deviceId,
    preKeyId,
    normalType: SC.CiphertextMessageType.Whisper,
    removedPreKeys,
    holdsPreKey: (id) => preKeys.map.has(id),
    bundle: () =>
      keywaveBundle({
        owner: name,
        deviceId,
        registrationId,
        identityKey: identity.publicKey.serialize(),
        signedPreKeyId,
        signedPreKey: spkPub.serialize(),
        signedPreKeySignature: spkSig,
        preKeyId,
        preKey: preKeyPriv.getPublicKey().serialize(),
      }),
    signForeign: (bytes) => SC.IdentityKeyPair.generate().privateKey.sign(Buffer.from(bytes)),
    async processBundle(peer, dev, kb) {
      const f = parseKeywaveBundle(kb);
      // 0.72.1: the Kyber arguments must be null for an X3DH bundle
      const bundle = SC.PreKeyBundle.new(
        f.registrationId,
        f.deviceId,
        f.preKeyId,
        f.preKey ? SC.PublicKey.deserialize(f.preKey) : null,
        f.signedPreKeyId,
        SC.PublicKey.deserialize(f.signedPreKey),
        f.signedPreKeySignature,
        SC.PublicKey.deserialize(f.identityKey),
        null,
        null,
        null,
      );
      await SC.processPreKeyBundle(bundle, addr(peer, dev), sessions, identities);
    },
    async encrypt(peer, dev, pt) {
      const m = await SC.signalEncrypt(Buffer.from(pt), addr(peer, dev), sessions, identities);
      return { type: m.type(), body: b64(m.serialize()) };
    },
    async decrypt(peer, dev, type, body) {
      const buf = unb64(body);
      if (type === SC.CiphertextMessageType.PreKey) {
        const m = SC.PreKeySignalMessage.deserialize(buf);
        return SC.signalDecryptPreKey(m, addr(peer, dev), sessions, identities, preKeys, signedPreKeys, kyber);
      }
      // keywave numbers the normal message 2, as this library does
      if (type === SC.CiphertextMessageType.Whisper) {
        return SC.signalDecrypt(SC.SignalMessage.deserialize(buf), addr(peer, dev), sessions, identities);
      }
      throw new Error(`unexpected message type ${type}`);
    },
  };
}

// ---- @privacyresearch/libsignal-protocol-typescript 0.0.16 -------------------------------

async function makePrivacyresearchPeer(PR, curve, name, deviceId) {
  const identity = await PR.KeyHelper.generateIdentityKeyPair();
  const registrationId = randomId(16380);
  const removedPreKeys = [];
  const preKeyMap = new Map();
  const signedPreKeyMap = new Map();
  const sessionMap = new Map();
  const identityMap = new Map();
  const same = (a, b) => Buffer.from(a).equals(Buffer.from(b));

  // StorageType as the library's own example store implements it: trust is by name,
  // identities are saved under "name.device".
  const storage = {
    getIdentityKeyPair: async () => identity,
    getLocalRegistrationId: async () => registrationId,
    isTrustedIdentity: async (identifier, key) => {
      const old = identityMap.get(identifier);
      return old === undefined || same(old, key);
    },
    saveIdentity: async (encoded, key) => {
      const n = PR.SignalProtocolAddress.fromString(encoded).getName();
      const old = identityMap.get(n);
      identityMap.set(n, key);
      return old !== undefined && !same(old, key);
    },
    loadPreKey: async (id) => preKeyMap.get(Number(id)),
    storePreKey: async (id, kp) => {
      preKeyMap.set(Number(id), kp);
    },
    removePreKey: async (id) => {
      removedPreKeys.push(Number(id));
      preKeyMap.delete(Number(id));
    },
    storeSession: async (encoded, rec) => {
      sessionMap.set(encoded, rec);
    },
    loadSession: async (encoded) => sessionMap.get(encoded),
    loadSignedPreKey: async (id) => signedPreKeyMap.get(Number(id)),
    storeSignedPreKey: async (id, kp) => {
      signedPreKeyMap.set(Number(id), kp);
    },
    removeSignedPreKey: async (id) => {
      signedPreKeyMap.delete(Number(id));
    },
  };

  const preKeyId = randomId(0xfffff);
  const preKey = await PR.KeyHelper.generatePreKey(preKeyId);
  await storage.storePreKey(preKeyId, preKey.keyPair);
  const signedPreKeyId = randomId(0xfffff);
  const spk = await PR.KeyHelper.generateSignedPreKey(identity, signedPreKeyId);
  await storage.storeSignedPreKey(signedPreKeyId, spk.keyPair);
  const addr = (peer, dev) => new PR.SignalProtocolAddress(peer, dev);

  return {
    name,
    deviceId,
    preKeyId,
    normalType: 1, // this library numbers the normal ("whisper") message 1
    removedPreKeys,
    holdsPreKey: (id) => preKeyMap.has(id),
    bundle: () =>
      keywaveBundle({
        owner: name,
        deviceId,
        registrationId,
        identityKey: Buffer.from(identity.pubKey),
        signedPreKeyId,
        signedPreKey: Buffer.from(spk.keyPair.pubKey),
        signedPreKeySignature: Buffer.from(spk.signature),
        preKeyId,
        preKey: Buffer.from(preKey.keyPair.pubKey),
      }),
    async signForeign(bytes) {
      const other = await PR.KeyHelper.generateIdentityKeyPair();
      const sig = await curve.async.calculateSignature(other.privKey, toArrayBuffer(Buffer.from(bytes)));
      return Buffer.from(sig);
    },
    async processBundle(peer, dev, kb) {
      const f = parseKeywaveBundle(kb);
      const device = {
        registrationId: f.registrationId,
        identityKey: toArrayBuffer(f.identityKey),
        signedPreKey: {
          keyId: f.signedPreKeyId,
          publicKey: toArrayBuffer(f.signedPreKey),
          signature: toArrayBuffer(f.signedPreKeySignature),
        },
      };
      if (f.preKey) device.preKey = { keyId: f.preKeyId, publicKey: toArrayBuffer(f.preKey) };
      await new PR.SessionBuilder(storage, addr(peer, dev)).processPreKey(device);
    },
    async encrypt(peer, dev, pt) {
      const m = await new PR.SessionCipher(storage, addr(peer, dev)).encrypt(toArrayBuffer(Buffer.from(pt)));
      // bodies are binary strings in this library
      return { type: m.type, body: Buffer.from(m.body, 'binary').toString('base64') };
    },
    async decrypt(peer, dev, type, body) {
      const cipher = new PR.SessionCipher(storage, addr(peer, dev));
      const bin = unb64(body).toString('binary');
      if (type === 3) return Buffer.from(await cipher.decryptPreKeyWhisperMessage(bin, 'binary'));
      // keywave sends the normal message as type 2; this library calls it 1
      if (type === 1 || type === 2) return Buffer.from(await cipher.decryptWhisperMessage(bin, 'binary'));
      throw new Error(`unexpected message type ${type}`);
    },
  };
}
