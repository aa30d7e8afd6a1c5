// Headless Chromium + hls.js (the test page of browser.js): play a live HLS URL, then seek back
// to the start of the playlist's window (the DVR) and check playback continues from there.
// Usage: node hlsjs_seek.js '<json options>'
//   options: {url, user_data_dir, timeout_ms, advance_s, chromium}
// Prints one JSON line: {played, liveEdge, seekTo, seekedAt, currentTime, playedAfterSeek,
//                        fragsAfterSeek: [url...], errors}
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const origin = new URL(opts.url).origin;
const pageUrl = `${origin}/__kiln_test_player/index.html`;
const hlsJs = require.resolve('hls.js/dist/hls.min.js');
const pageHtml = fs.readFileSync(path.join(__dirname, 'hlsjs_page.html'));

(async () => {
  const result = { played: false, liveEdge: null, seekTo: null, seekedAt: null, currentTime: null,
                   playedAfterSeek: false, fragsAfterSeek: [], errors: [] };
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
             '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
             '--disable-component-update', '--disable-sync', '--disable-features=LocalNetworkAccessChecks'],
    });
    const page = browser.pages()[0] || await browser.newPage();
    await page.route((u) => u.origin === origin && u.pathname === '/__kiln_test_player/index.html', (r) =>
      r.fulfill({ status: 200, contentType: 'text/html', body: pageHtml }));
    await page.route((u) => u.origin === origin && u.pathname === '/__kiln_test_player/hls.min.js', (r) =>
      r.fulfill({ status: 200, contentType: 'application/javascript', path: hlsJs }));
    page.on('pageerror', (e) => result.errors.push('pageerror:' + e.message));
    let seeking = false;
    page.on('requestfinished', (req) => {
      const u = new URL(req.url());
      if (seeking && /\/seg_/.test(u.pathname)) result.fragsAfterSeek.push(u.pathname.split('/').pop());
    });
    const q = new URLSearchParams({ src: opts.url, lowLatency: '0' });
    await page.goto(`${pageUrl}?${q}`);
    const timeout = opts.timeout_ms || 30000;
    const advance = opts.advance_s || 1.0;
    try {
      await page.waitForFunction(() => window.__kiln && (window.__kiln.playing || window.__kiln.fatal),
        null, { timeout, polling: 100 });
      result.played = await page.evaluate(() => !window.__kiln.fatal);
      const at = await page.evaluate(() => {
        const v = document.getElementById('v');
        const r = v.seekable;
        return { edge: r.length ? r.end(r.length - 1) : null, start: r.length ? r.start(0) : null };
      });
      result.liveEdge = at.edge;
      result.seekTo = at.start + 0.5;
      seeking = true;
      await page.evaluate((t) => { document.getElementById('v').currentTime = t; }, result.seekTo);
      await page.waitForFunction((t) => {
        const v = document.getElementById('v');
        return window.__kiln.fatal || (!v.seeking && Math.abs(v.currentTime - t) < 3);
      }, result.seekTo, { timeout, polling: 100 });
      result.seekedAt = await page.evaluate(() => document.getElementById('v').currentTime);
      await page.waitForFunction(([t0, adv]) => window.__kiln.fatal ||
        document.getElementById('v').currentTime - t0 >= adv, [result.seekedAt, advance], { timeout, polling: 100 });
      result.currentTime = await page.evaluate(() => document.getElementById('v').currentTime);
      result.playedAfterSeek = await page.evaluate(() => !window.__kiln.fatal) &&
        result.currentTime - result.seekedAt >= advance;
    } catch (e) {
      result.errors.push('wait:' + e.message.split('\n')[0]);
    }
    result.errors.push(...await page.evaluate(() => window.__kiln.errors));
  } catch (e) {
    result.errors.push('browser:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
