// Headless Chromium (Debian /usr/bin/chromium) driven by playwright-core: play an HLS URL with hls.js.
// Usage: node browser.js '<json options>'
//   options: {url, user_data_dir, timeout_ms, advance_s, origin, chromium, low_latency, ignore_https_errors,
//             hls_config (more hls.js settings), sample_s (after playing, sample the latency every 0.5 s this long)}
// Prints one JSON line: {played, currentTime, lowLatencyMode, blockingReloadSeen, partsLoaded,
//                        partRequests, fragsLoaded, live, canBlockReload, requests, errors, protocols, noProtocol}
//   protocols: hls.js's requests counted by resource-timing nextHopProtocol (e.g. {"h2": 32})
//   noProtocol: the entries among them with no nextHopProtocol ({name, transferSize, status, duration})
//   samples (with sample_s): [{latency (hls.latency), pdtLatency (Date.now() - hls.playingDate, s),
//                              targetLatency, rate (playbackRate)}]
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const hlsUrl = new URL(opts.url);
// The page is served (by request interception) on `origin`: by default the HLS URL's own origin, so no
// CORS is involved; give another origin to make the player's requests cross-origin.
const origin = opts.origin || hlsUrl.origin;
const pageUrl = `${origin}/__kiln_test_player/index.html`;
const hlsJs = require.resolve('hls.js/dist/hls.min.js');
const pageHtml = fs.readFileSync(path.join(__dirname, 'hlsjs_page.html'));

(async () => {
  const result = {
    played: false, currentTime: 0, lowLatencyMode: opts.low_latency !== false, blockingReloadSeen: false,
    partsLoaded: 0, partRequests: 0, fragsLoaded: 0, live: null, canBlockReload: null, requests: 0, errors: [],
    protocols: {}, noProtocol: [], samples: [],
  };
  let browser;
  try {
    // A persistent context in `user_data_dir`: the Python side finds (and kills) leftover chromium
    // processes by that path, since playwright starts chromium in a process group of its own.
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      ignoreHTTPSErrors: opts.ignore_https_errors === true,  // a test CA Chromium does not know
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
             '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             // the test page is served by interception, so Chromium counts it as public; let it reach loopback
             '--disable-features=LocalNetworkAccessChecks'],
    });
    const page = browser.pages()[0] || await browser.newPage();
    await page.route((u) => u.origin === origin && u.pathname === '/__kiln_test_player/index.html', (r) =>
      r.fulfill({ status: 200, contentType: 'text/html', body: pageHtml }));
    await page.route((u) => u.origin === origin && u.pathname === '/__kiln_test_player/hls.min.js', (r) =>
      r.fulfill({ status: 200, contentType: 'application/javascript', path: hlsJs }));
    page.on('request', (req) => {
      const u = req.url();
      if (u.includes('/__kiln_test_player/')) return;
      result.requests++;
      if (u.includes('_HLS_msn')) result.blockingReloadSeen = true;
      if (/part/i.test(new URL(u).pathname)) result.partRequests++;
    });
    page.on('pageerror', (e) => result.errors.push('pageerror:' + e.message));
    page.on('requestfailed', (req) => {
      if (!req.url().includes('/__kiln_test_player/')) {
        result.errors.push('requestfailed:' + req.url() + ':' + (req.failure() || {}).errorText);
      }
    });
    const q = new URLSearchParams({ src: opts.url, lowLatency: opts.low_latency === false ? '0' : '1',
                                    config: JSON.stringify(opts.hls_config || {}) });
    await page.goto(`${pageUrl}?${q}`);
    const timeout = opts.timeout_ms || 30000;
    const advance = opts.advance_s || 1.0;
    try {
      await page.waitForFunction(() => window.__kiln && (window.__kiln.playing || window.__kiln.fatal),
        null, { timeout, polling: 100 });
      const start = await page.evaluate(() => document.getElementById('v').currentTime);
      await page.waitForFunction(([t0, adv]) => window.__kiln.fatal ||
        document.getElementById('v').currentTime - t0 >= adv, [start, advance], { timeout, polling: 100 });
      const ct = await page.evaluate(() => document.getElementById('v').currentTime);
      result.played = ct - start >= advance;
      for (let waited = 0; result.played && waited < (opts.sample_s || 0) * 1000; waited += 500) {
        await page.waitForTimeout(500);
        result.samples.push(await page.evaluate(() => {
          const h = window.__hls, d = h.playingDate;
          return { latency: h.latency, pdtLatency: d ? (Date.now() - d.getTime()) / 1000 : null,
                   targetLatency: h.targetLatency, rate: document.getElementById('v').playbackRate };
        }));
      }
    } catch (e) {
      result.errors.push('wait:' + e.message.split('\n')[0]);
    }
    const s = await page.evaluate(() => ({ ...window.__kiln, currentTime: document.getElementById('v').currentTime,
      latency: window.__hls ? window.__hls.latency : null,
      // hls.js's own requests only (XHR or fetch): not the page, its script, or Chromium's favicon probe
      protocols: performance.getEntriesByType('resource')
        .filter((e) => e.initiatorType === 'xmlhttprequest' || e.initiatorType === 'fetch')
        .reduce((acc, e) => { acc[e.nextHopProtocol] = (acc[e.nextHopProtocol] || 0) + 1; return acc; }, {}),
      // what the entries without a protocol were (for a failure's message)
      noProtocol: performance.getEntriesByType('resource')
        .filter((e) => (e.initiatorType === 'xmlhttprequest' || e.initiatorType === 'fetch') && !e.nextHopProtocol)
        .map((e) => ({ name: e.name.split('/').pop(), transferSize: e.transferSize, status: e.responseStatus,
                       duration: Math.round(e.duration) })) }));
    result.protocols = s.protocols;
    result.noProtocol = s.noProtocol;
    result.played = result.played && s.playing && !s.fatal;
    result.currentTime = s.currentTime;
    result.latency = s.latency;  // hls.js's live latency estimate (s)
    result.lowLatencyMode = s.lowLatencyMode;
    result.partsLoaded = s.partsLoaded;
    result.fragsLoaded = s.fragsLoaded;
    result.live = s.live;
    result.canBlockReload = s.canBlockReload;
    result.errors.push(...s.errors);
  } catch (e) {
    result.errors.push('browser:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
