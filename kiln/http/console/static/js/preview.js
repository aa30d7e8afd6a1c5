// A live preview: LL-HLS with the vendored hls.js, or WebRTC with the vendored OvenPlayer over OME's
// signalling (each script loaded the first time a preview of its kind opens, not at login).

const HLS_SCRIPT = 'vendor/hls.min.js';
const OVENPLAYER_SCRIPT = 'vendor/ovenplayer.js';
const loading = new Map();
let player = null;
let rtcPlayer = null;

function loadScript(src, global) {
  if (window[global]) return Promise.resolve(window[global]);
  if (!loading.has(src)) {
    loading.set(src, new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      script.onload = () => resolve(window[global]);
      script.onerror = () => { loading.delete(src); reject(new Error('could not load ' + src)); };
      document.head.append(script);
    }));
  }
  return loading.get(src);
}

const loadHls = () => loadScript(HLS_SCRIPT, 'Hls');

// OME's signalling URL of a stream, on the port WebRTC signalling shares with LL-HLS (listener "webrtc")
export function signallingUrl(listeners, app, stream) {
  const l = listeners.webrtc;
  if (!l) return null;
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  return `ws://${host}:${l.port}/${encodeURIComponent(app)}/${encodeURIComponent(stream)}`;
}

// WebRTC through OvenPlayer, which draws its own <video> inside `container`; report() gets its states and errors
export async function playRtc(container, url, report) {
  const OvenPlayer = await loadScript(OVENPLAYER_SCRIPT, 'OvenPlayer');
  stopRtc();
  report(`connecting ${url}`);
  rtcPlayer = OvenPlayer.create(container.id, {
    autoStart: true, mute: true, controls: false, sources: [{ type: 'webrtc', file: url, label: 'WebRTC' }],
  });
  rtcPlayer.on('stateChanged', (d) => { if (d.newstate !== 'playing') report(d.newstate); });
  rtcPlayer.on('error', (e) => report(`error: ${e.message || e.code}${e.error ? ` (${e.error.message || e.error})` : ''}`));
}

// frames the WebRTC preview decoded and showed so far (null when none is open)
export function rtcFrames(container) {
  const video = rtcPlayer && container.querySelector('video');
  return video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : null;
}

export function stopRtc() {
  if (rtcPlayer) {
    try { rtcPlayer.remove(); } catch { /* already torn down by an error */ }
    rtcPlayer = null;
  }
}

// The playlist URL on the LL-HLS port of the machine this page came from (the API and LL-HLS ports are
// the same server), over TLS when the page is and a TLS port is open.
export function playlistUrl(listeners, app, stream, playlist) {
  const secure = location.protocol === 'https:' && listeners.llhls_tls;
  const port = secure ? listeners.llhls_tls : listeners.llhls;
  if (!port) return null;
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  const seg = encodeURIComponent;
  return `${secure ? 'https' : 'http'}://${host}:${port.port}/${seg(app)}/${seg(stream)}/${playlist}`;
}

export async function play(video, url, report) {
  stop(video);
  report(`loading ${url}`);
  const Hls = await loadHls();
  if (!Hls.isSupported()) {
    if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url;
      return;
    }
    report('this browser cannot play HLS (no MediaSource)');
    return;
  }
  // no worker: the console's Content-Security-Policy allows scripts from this server only
  player = new Hls({ lowLatencyMode: true, enableWorker: false, liveSyncDurationCount: 2 });
  player.on(Hls.Events.ERROR, (_e, data) => {
    if (data.fatal) report(`error: ${data.type} ${data.details}`);
  });
  player.loadSource(url);
  player.attachMedia(video);
  video.play().catch(() => { /* autoplay of a muted video may still wait for the first frames */ });
}

export function stop(video) {
  if (player) {
    player.destroy();
    player = null;
  }
  video.removeAttribute('src');
  video.load();
}

export function latency() {
  return player && Number.isFinite(player.latency) ? player.latency : null;
}
