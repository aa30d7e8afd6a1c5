// A live LL-HLS preview with the vendored hls.js (loaded the first time a preview opens, not at login).

const HLS_SCRIPT = 'vendor/hls.min.js';
let loading = null;
let player = null;

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = HLS_SCRIPT;
      script.onload = () => resolve(window.Hls);
      script.onerror = () => { loading = null; reject(new Error('could not load ' + HLS_SCRIPT)); };
      document.head.append(script);
    });
  }
  return loading;
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
