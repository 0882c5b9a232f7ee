// media.js — the camera preview, device lists and toggles before joining, and LiveKit
// afterwards. livekit-client is loaded only when the server has a media server configured.

export class Devices {
  constructor(els) {
    this.els = els; // {preview, previewOff, camera, mic, video, audio, denied, retry}
    this.stream = null;
    this.denied = false;
  }

  // Asks for camera + microphone, fills the lists, shows the preview. Never throws:
  // a refusal shows the "blocked" notice and the guest can join without devices.
  async start() {
    const { els } = this;
    this.stop();
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: els.camera.value ? { deviceId: { exact: els.camera.value } } : true,
        audio: els.mic.value ? { deviceId: { exact: els.mic.value } } : true,
      });
      this.denied = false;
    } catch (e) {
      this.stream = null;
      this.denied = true;
      this.error = e?.name ?? 'Error';
    }
    els.denied.hidden = !this.denied;
    els.retry.hidden = !this.denied;
    await this.fillLists();
    els.preview.srcObject = this.stream;
    this.applyToggles();
  }

  async fillLists() {
    const { els } = this;
    let list = [];
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch {
      list = [];
    }
    const fill = (select, kind, noun) => {
      const current = this.stream?.getTracks().find((t) => t.kind === kind.replace('input', ''))?.getSettings().deviceId;
      select.replaceChildren();
      const devs = list.filter((d) => d.kind === kind && d.deviceId);
      if (devs.length === 0) {
        select.append(new Option(`No ${noun} available`, ''));
        select.disabled = true;
        return;
      }
      select.disabled = false;
      devs.forEach((d, i) => select.append(new Option(d.label || `${noun} ${i + 1}`, d.deviceId, false, d.deviceId === current)));
    };
    fill(els.camera, 'videoinput', 'camera');
    fill(els.mic, 'audioinput', 'microphone');
  }

  applyToggles() {
    const { els } = this;
    for (const t of this.stream?.getVideoTracks() ?? []) t.enabled = els.video.checked;
    for (const t of this.stream?.getAudioTracks() ?? []) t.enabled = els.audio.checked;
    els.previewOff.hidden = Boolean(this.stream && els.video.checked);
    els.previewOff.textContent = this.stream ? 'Camera off' : 'No camera';
  }

  choices() {
    return {
      video: Boolean(this.stream) && this.els.video.checked,
      audio: Boolean(this.stream) && this.els.audio.checked,
      cameraId: this.els.camera.value || undefined,
      micId: this.els.mic.value || undefined,
    };
  }

  stop() {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
  }
}

// Joins the LiveKit room with end-to-end encryption: the frame key is the meeting media key
// (raw 32 bytes -> HKDF in livekit-client), at key index epoch mod 16 (DESIGN.md section 6).
export async function joinLiveKit({ url, token, keyB64, epoch, choices, container }) {
  const lk = await import('livekit-client');
  const worker = new Worker(new URL('/web/livekit-e2ee-worker.js', window.location.origin), { type: 'module' });
  const keyProvider = new lk.BaseKeyProvider({ sharedKey: true, ratchetWindowSize: 0, failureTolerance: -1 });
  const room = new lk.Room({ e2ee: { keyProvider, worker } });
  const raw = Uint8Array.from(atob(keyB64), (c) => c.charCodeAt(0));
  const material = await lk.createKeyMaterialFromBuffer(raw.buffer);
  raw.fill(0);
  keyProvider.onSetEncryptionKey(material, undefined, epoch % 16);
  room.on(lk.RoomEvent.TrackSubscribed, (track) => {
    const el = track.attach();
    container.append(el);
  });
  await room.connect(url, token);
  await room.setE2EEEnabled(true);
  if (choices.video) await room.localParticipant.setCameraEnabled(true, { deviceId: choices.cameraId });
  if (choices.audio) await room.localParticipant.setMicrophoneEnabled(true, { deviceId: choices.micId });
  return {
    setKey: async (b64, ep) => {
      const k = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      keyProvider.onSetEncryptionKey(await lk.createKeyMaterialFromBuffer(k.buffer), undefined, ep % 16);
      k.fill(0);
    },
    leave: () => room.disconnect(),
  };
}
