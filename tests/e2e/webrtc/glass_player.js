// Glass-to-glass as a player sees it: headless Chromium (playwright-core) plays a stream whose frames carry the
// publisher's wall clock (timecode.py: 32 cells of ms mod 2^32 on the top row, their complement below) with
// OvenPlayer over OME's signalling (or hls.js over LL-HLS), reads the cells back from every shown frame
// (requestVideoFrameCallback + a canvas) and subtracts them from the same machine's clock.
// Usage: node glass_player.js '<json options>'
//   options: {player: "ovenplayer"|"hlsjs", url, origin, user_data_dir, chromium, timeout_ms,
//             until_ms (epoch ms to stop watching) or watch_s (seconds after the first stamped frame)}
// Prints one JSON line: {playing, samples: [[seenEpochMs, callbackMs, displayMs, receiveMs|null], ...],
//   unreadable, stats: {framesDecoded, framesDropped, jitterBufferMs, jitterTargetMs, decodeMs, freezeCount,
//   framesReceived, keyFramesDecoded, packetsReceived, packetsLost, nackCount, pliCount, firCount,
//   pairBytesReceived, pairPacketsReceived (the nominated ICE pair's, before SRTP)}, errors}
//   callbackMs = Date.now() in the frame callback - stamp; displayMs = the frame's expected display time - stamp;
//   receiveMs = when its last packet arrived (WebRTC only) - stamp.
'use strict';
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const BITS = 32, MOD = 2 ** 32;

(async () => {
  const result = { playing: false, samples: [], unreadable: 0, stats: {}, errors: [] };
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
    const page = browser.pages()[0] || await browser.newPage();
    await page.addInitScript(() => {  // keep every peer connection the player makes, to read its getStats()
      const Native = window.RTCPeerConnection;
      window.__pcs = [];
      window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__pcs.push(pc); return pc; };
      window.RTCPeerConnection.prototype = Native.prototype;
      Object.setPrototypeOf(window.RTCPeerConnection, Native);
    });
    const pageUrl = `${opts.origin}/__kiln_glass/index.html`;
    await page.route((u) => u.href === pageUrl, (r) => r.fulfill({ status: 200, contentType: 'text/html',
      body: '<!doctype html><body style="margin:0"><div id="player"></div><video id="v" muted autoplay playsinline></video></body>' }));
    page.on('pageerror', (e) => result.errors.push('pageerror:' + e.message));
    await page.goto(pageUrl);
    await page.evaluate(() => { window.__g = { playing: false, samples: [], unreadable: 0, errors: [] }; });
    if (opts.player === 'hlsjs') {
      await page.addScriptTag({ path: require.resolve('hls.js/dist/hls.min.js') });
      await page.evaluate((url) => {
        const v = document.getElementById('v');
        v.addEventListener('playing', () => { window.__g.playing = true; });
        const hls = new window.Hls({ lowLatencyMode: true });
        hls.on(window.Hls.Events.ERROR, (e, d) => { if (d.fatal) window.__g.errors.push('hls:' + d.details); });
        hls.loadSource(url);
        hls.attachMedia(v);
      }, opts.url);
    } else {
      await page.addScriptTag({ path: require.resolve('ovenplayer/dist/ovenplayer.js') });
      await page.evaluate((url) => {
        document.getElementById('v').remove();
        const player = window.OvenPlayer.create('player', { autoStart: true, mute: true,
          sources: [{ type: 'webrtc', file: url }] });
        player.on('stateChanged', (d) => { if (d.newstate === 'playing') window.__g.playing = true; });
        player.on('error', (e) => window.__g.errors.push(JSON.stringify({ code: e.code, message: e.message })));
      }, opts.url);
    }
    await page.evaluate(([BITS, MOD]) => {
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      const watch = () => {
        const v = document.querySelector('video');
        if (!v || !v.requestVideoFrameCallback) { setTimeout(watch, 50); return; }
        const onFrame = (now, meta) => {
          const seen = Date.now();
          const w = v.videoWidth, h = v.videoHeight;
          if (w && h) {
            const row = Math.max(8, Math.floor(h / 12)) >> 1 << 1;  // timecode.py's row_height
            if (canvas.width !== w || canvas.height !== 2 * row) { canvas.width = w; canvas.height = 2 * row; }
            ctx.drawImage(v, 0, 0, w, 2 * row, 0, 0, w, 2 * row);
            const px = ctx.getImageData(0, 0, w, 2 * row).data;
            let value = 0, check = 0;
            for (let i = 0; i < BITS; i++) {
              const x = Math.floor((i + 0.5) * w / BITS);
              const at = (y) => { const k = 4 * (y * w + x); return px[k] + px[k + 1] + px[k + 2] > 384; };
              if (at(row >> 1)) value += 2 ** i;
              if (at(row + (row >> 1))) check += 2 ** i;
            }
            if (value + check === MOD - 1) {
              const behind = (t) => { const d = ((Math.floor(t) - value) % MOD + MOD) % MOD; return d >= MOD / 2 ? d - MOD : d; };
              const epoch = (t) => performance.timeOrigin + t;
              window.__g.samples.push([seen, behind(seen), behind(epoch(meta.expectedDisplayTime)),
                meta.receiveTime ? behind(epoch(meta.receiveTime)) : null]);
            } else {
              window.__g.unreadable += 1;
            }
          }
          v.requestVideoFrameCallback(onFrame);
        };
        v.requestVideoFrameCallback(onFrame);
      };
      watch();
    }, [BITS, MOD]);
    const timeout = opts.timeout_ms || 30000;
    await page.waitForFunction(() => window.__g.samples.length > 0 || window.__g.errors.length > 0, null,
      { timeout, polling: 100 });
    const until = opts.until_ms || (Date.now() + 1000 * (opts.watch_s || 5));
    await page.waitForTimeout(Math.max(0, until - Date.now()));
    const stats = await page.evaluate(async () => {
      const out = { framesDecoded: 0, framesDropped: 0, jitterBufferMs: null, jitterTargetMs: null, decodeMs: null,
        freezeCount: 0, framesReceived: 0, keyFramesDecoded: 0, packetsReceived: 0, packetsLost: 0, nackCount: 0,
        pliCount: 0, firCount: 0, pairBytesReceived: 0, pairPacketsReceived: 0 };
      for (const pc of window.__pcs) {
        (await pc.getStats()).forEach((s) => {
          // everything that reached the ICE pair, before SRTP: compared with inbound-rtp it tells packets that
          // never arrived from packets the browser discarded
          if (s.type === 'candidate-pair' && s.nominated) {
            out.pairBytesReceived += s.bytesReceived || 0;
            out.pairPacketsReceived += s.packetsReceived || 0;
          }
          if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
          out.framesDecoded += s.framesDecoded || 0;
          out.framesDropped += s.framesDropped || 0;
          for (const k of ['freezeCount', 'framesReceived', 'keyFramesDecoded', 'packetsReceived', 'packetsLost',
                           'nackCount', 'pliCount', 'firCount']) out[k] += s[k] || 0;
          if (s.jitterBufferEmittedCount) {
            out.jitterBufferMs = 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount;
            if (s.jitterBufferTargetDelay) out.jitterTargetMs = 1000 * s.jitterBufferTargetDelay / s.jitterBufferEmittedCount;
          }
          if (s.framesDecoded && s.totalDecodeTime) out.decodeMs = 1000 * s.totalDecodeTime / s.framesDecoded;
        });
      }
      return out;
    });
    const g = await page.evaluate(() => window.__g);
    Object.assign(result, { playing: g.playing, samples: g.samples, unreadable: g.unreadable, stats });
    result.errors.push(...g.errors);
  } catch (e) {
    result.errors.push('driver:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
