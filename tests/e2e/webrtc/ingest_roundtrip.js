// Glass-to-glass over Kiln: one headless Chromium page publishes a canvas over WHIP (Eyevinn's client), a second
// page plays the stream with OvenPlayer over WebRTC (OME signalling). The publisher paints Date.now() into the
// picture as 36 black/white blocks; the player reads them back from each decoded frame and compares with its own
// Date.now() (same browser, same clock).
// Usage: node ingest_roundtrip.js '<json options>'
//   options: {whip_url, play_url, page_origin, user_data_dir, chromium, whip_bundle, watch_s, timeout_ms}
// Prints one JSON line: {connected, playing, latencies: [ms...], errors}
'use strict';
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const ovenPlayerJs = require.resolve('ovenplayer/dist/ovenplayer.js');
const COLS = 9, ROWS = 4, W = 640, H = 360;

(async () => {
  const result = { connected: false, playing: false, latencies: [], errors: [] };
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
             '--disable-component-update', '--disable-sync', '--disable-background-timer-throttling',
             '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
             '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks'],
    });
    const blank = '<!doctype html><body style="margin:0"><div id="player"></div></body>';
    await browser.route((u) => u.href.startsWith(opts.page_origin + '/__kiln_roundtrip/'), (r) =>
      r.fulfill({ status: 200, contentType: 'text/html', body: blank }));
    const pub = browser.pages()[0] || await browser.newPage();
    pub.on('pageerror', (e) => result.errors.push('publisher:' + e.message));
    await pub.goto(`${opts.page_origin}/__kiln_roundtrip/pub.html`);
    await pub.addScriptTag({ path: opts.whip_bundle });
    await pub.evaluate(async ([url, COLS, ROWS, W, H]) => {
      const canvas = document.createElement('canvas');
      canvas.width = W; canvas.height = H;
      document.body.appendChild(canvas);
      const ctx = canvas.getContext('2d');
      const bw = W / COLS, bh = H / ROWS;
      const paint = () => {
        const now = Date.now();
        for (let i = 0; i < COLS * ROWS; i++) {
          ctx.fillStyle = Math.floor(now / 2 ** i) % 2 ? '#fff' : '#000';
          ctx.fillRect((i % COLS) * bw, Math.floor(i / COLS) * bh, bw, bh);
        }
      };
      paint();
      setInterval(paint, 10);
      const stream = canvas.captureStream(30);
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      const dest = audio.createMediaStreamDestination();
      tone.connect(dest); tone.start();
      stream.addTrack(dest.stream.getAudioTracks()[0]);
      const client = new EyevinnWhip.WHIPClient({ endpoint: url, opts: { iceServers: [] } });
      await client.ingest(stream);
      window.__client = client;
    }, [opts.whip_url, COLS, ROWS, W, H]);
    result.connected = true;
    const play = await browser.newPage();
    play.on('pageerror', (e) => result.errors.push('player:' + e.message));
    await play.goto(`${opts.page_origin}/__kiln_roundtrip/play.html`);
    await play.addScriptTag({ path: ovenPlayerJs });
    await play.evaluate(([url, COLS, ROWS, W, H, ready]) => {
      window.__rt = { playing: false, latencies: [], errors: [] };
      // the WHIP POST may still be on its way (the client gathers candidates first): start playing once Kiln
      // serves the stream's LL-HLS playlist
      const start = async () => {
        for (let i = 0; i < 100; i++) {
          try { if ((await fetch(ready)).ok) break; } catch (e) { /* not yet */ }
          await new Promise((r) => setTimeout(r, 200));
        }
        const player = window.OvenPlayer.create('player', { autoStart: true, mute: true,
          sources: [{ type: 'webrtc', file: url }] });
        player.on('stateChanged', (d) => { if (d.newstate === 'playing') window.__rt.playing = true; });
        player.on('error', (e) => window.__rt.errors.push(JSON.stringify({ code: e.code, message: e.message })));
        watch();
      };
      const canvas = document.createElement('canvas');
      canvas.width = W; canvas.height = H;
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      const bw = W / COLS, bh = H / ROWS;
      const watch = () => {
        const v = document.querySelector('video');
        if (!v || !v.requestVideoFrameCallback) { setTimeout(watch, 100); return; }
        const onFrame = () => {
          const seen = Date.now();
          if (v.videoWidth) {
            ctx.drawImage(v, 0, 0, W, H);
            let value = 0;
            for (let i = 0; i < COLS * ROWS; i++) {
              const px = ctx.getImageData((i % COLS) * bw + bw / 2, Math.floor(i / COLS) * bh + bh / 2, 1, 1).data;
              if (px[0] + px[1] + px[2] > 384) value += 2 ** i;
            }
            const latency = (seen % 2 ** (COLS * ROWS)) - value;
            if (latency >= 0 && latency < 10000) window.__rt.latencies.push(latency);
          }
          v.requestVideoFrameCallback(onFrame);
        };
        v.requestVideoFrameCallback(onFrame);
      };
      start();
    }, [opts.play_url, COLS, ROWS, W, H, opts.ready_url]);
    const timeout = opts.timeout_ms || 30000;
    await play.waitForFunction(() => window.__rt.latencies.length > 5 || window.__rt.errors.length > 0, null,
      { timeout, polling: 100 });
    await play.waitForTimeout((opts.watch_s || 5) * 1000);
    const rt = await play.evaluate(() => window.__rt);
    result.playing = rt.playing;
    result.latencies = rt.latencies;
    result.errors.push(...rt.errors);
    await pub.evaluate(async () => { await window.__client.destroy(); });
  } catch (e) {
    result.errors.push('error:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
