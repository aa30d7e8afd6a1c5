// Headless Chromium (Debian /usr/bin/chromium) with its fake camera and microphone publishes to Kiln with a
// client no one here wrote: OvenLiveKit (OME signalling, ws://…?direction=send) or Eyevinn's WHIP client.
// Usage: node ingest_browser.js '<json options>'
//   options: {mode: "ovenlivekit"|"whip", url, page_origin, user_data_dir, chromium, publish_s, timeout_ms,
//             script (path of the client bundle), width, height, simulcast}
//   SIGUSR2 (to node's pid) ends the publish_s wait early: stats are read and the client stopped as usual
// Prints one JSON line: {connected, errors, stats: {codec, framesEncoded, packetsSent, audioPacketsSent},
//                        stopped}
'use strict';
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
// SIGUSR2 ends the publish_s wait early (BrowserPublisher.finish(now=True): the test has seen what it needed);
// installed first so a signal sent at any time is never the default "terminate" (SIGUSR1 is Node's debugger)
let stopNow;
const stopSignal = new Promise((resolve) => { stopNow = resolve; });
process.on('SIGUSR2', () => stopNow());
const pageUrl = `${opts.page_origin}/__kiln_test_publisher/index.html`;

(async () => {
  const result = { connected: false, errors: [], stats: {}, stopped: false, logs: [] };
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
             '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             // Chromium honours only the last --disable-features: every feature in one flag
             '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks'],
    });
    const page = browser.pages()[0] || await browser.newPage();
    // a blank page on another origin than Kiln's (cross-origin WHIP needs CORS), a secure context (loopback)
    await page.route((u) => u.href === pageUrl, (r) =>
      r.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>publisher</title>' }));
    page.on('pageerror', (e) => result.errors.push('pageerror:' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') result.logs.push(m.text().slice(0, 300)); });
    await page.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.__pcs = [];
      window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__pcs.push(pc); return pc; };
      window.RTCPeerConnection.prototype = Native.prototype;
    });
    await page.goto(pageUrl);
    await page.addScriptTag({ path: opts.script });
    const constraints = { video: { width: opts.width || 320, height: opts.height || 180, frameRate: 30 }, audio: true };
    const started = await page.evaluate(async ([mode, url, constraints, simulcast]) => {
      window.__state = { connected: false, errors: [] };
      if (mode === 'ovenlivekit') {
        const kit = OvenLiveKit.create({ callbacks: {
          error: (e) => window.__state.errors.push('ovenlivekit:' + JSON.stringify(e && (e.message || e))),
          connected: () => { window.__state.connected = true; },
          connectionClosed: (type) => { window.__state.closed = String(type); },
        } });
        window.__kit = kit;
        await kit.getUserMedia(constraints);
        kit.startStreaming(url);
        return true;
      }
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const factory = simulcast ? (config) => {
        // the client calls addTrack: video goes through addTransceiver with three encodings instead
        const pc = new RTCPeerConnection(config);
        const addTrack = pc.addTrack.bind(pc);
        pc.addTrack = (track, ...streams) => track.kind !== 'video' ? addTrack(track, ...streams)
          : pc.addTransceiver(track, { direction: 'sendonly', streams, sendEncodings: [
            { rid: 'h', maxBitrate: 600000 }, { rid: 'm', maxBitrate: 150000, scaleResolutionDownBy: 2 },
            { rid: 'l', maxBitrate: 50000, scaleResolutionDownBy: 4 }] }).sender;
        return pc;
      } : undefined;
      const client = new EyevinnWhip.WHIPClient({ endpoint: url, opts: { debug: false, iceServers: [] },
                                                 peerConnectionFactory: factory });
      window.__client = client;
      await client.ingest(stream);
      window.__state.connected = true;
      return true;
    }, [opts.mode, opts.url, constraints, !!opts.simulcast]);
    result.started = started;
    const timeout = opts.timeout_ms || 30000;
    await page.waitForFunction(() => window.__pcs.some((pc) => pc.connectionState === 'connected')
      || window.__state.errors.length > 0, null, { timeout, polling: 100 });
    result.connected = await page.evaluate(() => window.__pcs.some((pc) => pc.connectionState === 'connected'));
    await Promise.race([page.waitForTimeout((opts.publish_s || 5) * 1000), stopSignal]);
    result.stats = await page.evaluate(async () => {
      const out = { framesEncoded: 0, packetsSent: 0, audioPacketsSent: 0, codec: null, nackCount: 0, pliCount: 0 };
      for (const pc of window.__pcs) {
        const report = await pc.getStats();
        const codecs = {};
        report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
        report.forEach((s) => {
          if (s.type !== 'outbound-rtp') return;
          if (s.kind === 'video') {
            out.framesEncoded += s.framesEncoded || 0; out.packetsSent += s.packetsSent || 0;
            out.nackCount += s.nackCount || 0; out.pliCount += s.pliCount || 0;
            if (s.codecId) out.codec = codecs[s.codecId];
          } else {
            out.audioPacketsSent += s.packetsSent || 0;
          }
        });
      }
      return out;
    });
    result.simulcastOffered = await page.evaluate(() => window.__pcs.some((pc) =>
      pc.localDescription && pc.localDescription.sdp.includes('a=simulcast')));
    const state = await page.evaluate(() => window.__state);
    result.errors.push(...state.errors);
    if (opts.stop !== false) {
      await page.evaluate(async (mode) => {
        if (mode === 'ovenlivekit') { window.__kit.stopStreaming(); } else { await window.__client.destroy(); }
      }, opts.mode);
      result.stopped = true;
    }
  } catch (e) {
    result.errors.push('error:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
