// Headless Chromium (Debian /usr/bin/chromium) driven by playwright-core: play a WebRTC stream with a
// real player and report what the browser saw.
// Usage: node rtc_player.js '<json options>'
//   options: {player: "ovenplayer"|"whep", url, origin, user_data_dir, timeout_ms, watch_s, chromium,
//             whep_bundle (path of the esbuild bundle of @eyevinn/webrtc-player), stop_whep,
//             chromium_args (more command-line flags, e.g. a test CA's key to trust),
//             sample_ms (while watching, sample what the viewer sees this often: `samples`),
//             switch_every_ms (with sample_ms, OvenPlayer: choose the next quality (rendition) this often)}
// With sample_ms, prints a line {sample: {frames, width, colour}} per sample while watching; at the end one JSON
// line, its report: {playing, framesStart, framesEnd, framesDecoded, audioPackets, videoCodec,
//   jitterBufferMs, playoutDelayMs, localCandidateType (selected pair's: host, srflx, prflx, relay), relayProtocol,
//   pcConfigs (what the player gave RTCPeerConnection: iceServers, iceTransportPolicy), errors, whepDeleted,
//   samples (with sample_ms: [{frames (shown so far), width, colour ('red', 'blue' or 'other': the average pixel)}]),
//   switches (with switch_every_ms: [{levels, to, label}])}
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const origin = opts.origin;
const pageUrl = `${origin}/__kiln_rtc_test/index.html`;
const ovenPlayerJs = require.resolve('ovenplayer/dist/ovenplayer.js');

const PAGE = `<!doctype html><html><body><div id="player"></div><video id="v" muted autoplay playsinline></video>
<script>window.__kiln = {playing: false, errors: [], states: []};</script></body></html>`;

(async () => {
  const result = { playing: false, framesStart: 0, framesEnd: 0, framesDecoded: 0, audioPackets: 0, videoCodec: null,
    jitterBufferMs: null, playoutDelayMs: null, errors: [], whepDeleted: null };
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             // Chromium honours only the last --disable-features: every feature in one flag
             '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
             ...(opts.chromium_args || [])],
    });
    const page = browser.pages()[0] || await browser.newPage();
    // keep every peer connection the player makes, to read its getStats()
    await page.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.__pcs = [];
      window.__pcConfigs = [];
      window.RTCPeerConnection = function (...args) {
        const pc = new Native(...args); window.__pcs.push(pc); window.__pcConfigs.push(args[0] || null); return pc;
      };
      window.RTCPeerConnection.prototype = Native.prototype;
      Object.setPrototypeOf(window.RTCPeerConnection, Native);
    });
    await page.route((u) => u.origin === origin && u.pathname === '/__kiln_rtc_test/index.html', (r) =>
      r.fulfill({ status: 200, contentType: 'text/html', body: PAGE }));
    page.on('pageerror', (e) => result.errors.push('pageerror:' + e.message));
    await page.goto(pageUrl);
    if (opts.player === 'ovenplayer') {
      await page.addScriptTag({ path: ovenPlayerJs });
      await page.evaluate((url) => {
        document.getElementById('v').remove();
        const player = window.OvenPlayer.create('player', {
          autoStart: true, mute: true, sources: [{ type: 'webrtc', file: url }],
        });
        player.on('stateChanged', (d) => { window.__kiln.states.push(d.newstate); if (d.newstate === 'playing') window.__kiln.playing = true; });
        player.on('error', (e) => window.__kiln.errors.push(JSON.stringify({ code: e.code, message: e.message, error: String(e.error || '') })));
        window.__player = player;
      }, opts.url);
    } else {
      await page.addScriptTag({ path: opts.whep_bundle });
      await page.evaluate(async (url) => {
        const video = document.getElementById('v');
        video.addEventListener('playing', () => { window.__kiln.playing = true; });
        const player = new window.EyevinnPlayer.WebRTCPlayer({ video, type: 'whep', iceServers: [] });
        player.on('no-media', () => window.__kiln.errors.push('no-media'));
        window.__player = player;
        try { await player.load(new URL(url)); } catch (e) { window.__kiln.errors.push('load:' + e.message); }
      }, opts.url);
    }
    const timeout = opts.timeout_ms || 30000;
    const frames = () => page.evaluate(() => {
      const v = document.querySelector('video');
      return v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
    });
    try {
      await page.waitForFunction(() => window.__kiln.playing || window.__kiln.errors.length > 0, null,
        { timeout, polling: 100 });
      result.playing = await page.evaluate(() => window.__kiln.playing);
      result.framesStart = await frames();
      if (opts.sample_ms) {
        // what the viewer sees, every sample_ms: frames shown so far, the picture's width and colour
        result.samples = [];
        let nextSwitch = opts.switch_every_ms ? Date.now() + opts.switch_every_ms : Infinity;
        result.switches = [];
        for (const end = Date.now() + (opts.watch_s || 3) * 1000; Date.now() < end;) {
          await page.waitForTimeout(opts.sample_ms);
          if (Date.now() >= nextSwitch) {  // OvenPlayer's quality menu: change_rendition to the next one
            nextSwitch += opts.switch_every_ms;
            result.switches.push(await page.evaluate(() => {
              const p = window.__player, levels = p.getQualityLevels() || [];
              if (levels.length < 2) return { levels: levels.length };
              const to = (p.getCurrentQuality() + 1) % levels.length;
              p.setCurrentQuality(to);
              return { levels: levels.length, to, label: levels[to].label };
            }));
          }
          const sample = await page.evaluate(() => {
            const v = document.querySelector('video');
            if (!v) return { frames: 0, width: 0, colour: 'none' };
            const c = window.__canvas || (window.__canvas = document.createElement('canvas'));
            c.width = 1; c.height = 1;
            const g = c.getContext('2d', { willReadFrequently: true });
            g.drawImage(v, 0, 0, 1, 1);
            const [r, gr, b] = g.getImageData(0, 0, 1, 1).data;
            const colour = r > 2 * Math.max(gr, b) ? 'red' : b > 2 * Math.max(r, gr) ? 'blue' : 'other';
            return { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, colour };
          });
          result.samples.push(sample);
          process.stdout.write(JSON.stringify({ sample }) + '\n');
        }
      } else {
        await page.waitForTimeout((opts.watch_s || 3) * 1000);
      }
      result.framesEnd = await frames();
    } catch (e) {
      result.errors.push('wait:' + e.message.split('\n')[0]);
    }
    const stats = await page.evaluate(async () => {
      const out = { framesDecoded: 0, audioPackets: 0, videoCodec: null, jitterBufferMs: null, playoutDelayMs: null,
        localCandidateType: null, relayProtocol: null, pcConfigs: JSON.parse(JSON.stringify(window.__pcConfigs)) };
      for (const pc of window.__pcs) {
        const report = await pc.getStats();
        // the selected pair's local candidate: 'relay' when the media goes through a TURN server
        report.forEach((t) => {
          if (t.type !== 'transport' || !t.selectedCandidatePairId) return;
          const pair = report.get(t.selectedCandidatePairId);
          const local = pair && report.get(pair.localCandidateId);
          if (local) { out.localCandidateType = local.candidateType; out.relayProtocol = local.relayProtocol || null; }
        });
        const codecs = {};
        report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
        report.forEach((s) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.kind === 'audio') out.audioPackets += s.packetsReceived || 0;
          if (s.kind === 'video') {
            out.framesDecoded += s.framesDecoded || 0;
            out.videoCodec = codecs[s.codecId] || out.videoCodec;
            if (s.jitterBufferEmittedCount) out.jitterBufferMs = 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount;
            if (s.estimatedPlayoutTimestamp) out.playoutDelayMs = Date.now() + 2208988800000 - s.estimatedPlayoutTimestamp;
          }
        });
      }
      return out;
    });
    Object.assign(result, stats);
    result.errors.push(...await page.evaluate(() => window.__kiln.errors));
    if (opts.player === 'whep' && opts.stop_whep) {
      await page.evaluate(async () => { await window.__player.unload(); });
      result.whepDeleted = true;
    }
  } catch (e) {
    result.errors.push('driver:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
