// livekit-worker.js — livekit-client's frame-encryption worker, bundled as its own file
// (/web/livekit-e2ee-worker.js) so the CSP's script-src 'self' covers it.
import 'livekit-client/e2ee-worker';
