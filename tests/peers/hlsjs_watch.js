// Headless Chromium + hls.js (the test page of browser.js): play an HLS URL for a while, sampling the video's
// currentTime every 100 ms, optionally forcing hls.js to switch level (ABR rendition) every `switch_every_s`.
// Usage: node hlsjs_watch.js '<json options>'
//   options: {url, user_data_dir, timeout_ms, watch_s, switch_every_s, switch_with ('nextLevel': at the next
//             fragment, or 'currentLevel': at once, flushing the buffer), low_latency, chromium}
// While watching, prints a line {seen: {at, width, colour}} at each change of the picture; at the end one JSON
// line, its report: {played, watched, startTime, currentTime, advanced, maxStall (longest run, s of wall
//   time, in which currentTime did not move while playing was wanted), stalls ([{at, seconds}] over 0.5 s),
//   levels ([{width, height}]), switches ([{to, at, loadedAt}]: forced switches and when the level was
//   seen switched), levelsPlayed (levels hls.js reported switched to), seen ([{at, width, colour}]: each change of
//   the picture's width or colour ('red', 'blue' or 'other', its average pixel) at currentTime `at`), quality
//   (getVideoPlaybackQuality: {total, dropped, corrupted}), jumps ([{from, to}]: currentTime went back or more
//   than 1 s forward between two samples), errors, fatal}
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
  const result = { played: false, watched: 0, startTime: null, currentTime: null, advanced: 0, maxStall: 0,
                   stalls: [], levels: [], switches: [], levelsPlayed: [], seen: [], jumps: [], quality: null, errors: [], fatal: false };
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
    const q = new URLSearchParams({ src: opts.url, lowLatency: opts.low_latency === false ? '0' : '1' });
    await page.goto(`${pageUrl}?${q}`);
    const timeout = opts.timeout_ms || 30000;
    try {
      await page.waitForFunction(() => window.__kiln && (window.__kiln.playing || window.__kiln.fatal),
        null, { timeout, polling: 100 });
      result.played = await page.evaluate(() => !window.__kiln.fatal);
      await page.evaluate(() => {
        const h = window.__hls;
        window.__watch = { switched: [] };
        h.on(Hls.Events.LEVEL_SWITCHED, (e, d) => {
          const v = document.getElementById('v');
          window.__watch.switched.push({ level: d.level, at: v.currentTime, wall: performance.now() });
        });
      });
      await page.evaluate((p) => { window.__switchProp = p; }, opts.switch_with || 'nextLevel');
      result.levels = await page.evaluate(() => window.__hls.levels.map((l) => ({ width: l.width, height: l.height })));
      const t0 = Date.now();
      let last = await page.evaluate(() => document.getElementById('v').currentTime);
      result.startTime = last;
      let stillSince = Date.now();
      let nextSwitch = opts.switch_every_s ? t0 + opts.switch_every_s * 1000 : Infinity;
      let target = 0;
      while (Date.now() - t0 < (opts.watch_s || 10) * 1000) {
        await page.waitForTimeout(100);
        const s = await page.evaluate(() => {
          const v = document.getElementById('v');
          const c = window.__canvas || (window.__canvas = document.createElement('canvas'));
          c.width = 1; c.height = 1;
          const g = c.getContext('2d', { willReadFrequently: true });
          g.drawImage(v, 0, 0, 1, 1);
          const [r, gr, b] = g.getImageData(0, 0, 1, 1).data;
          const colour = r > 2 * Math.max(gr, b) ? 'red' : b > 2 * Math.max(r, gr) ? 'blue' : 'other';
          return { t: v.currentTime, fatal: window.__kiln.fatal, width: v.videoWidth, colour };
        });
        const seen = result.seen[result.seen.length - 1];
        if (!seen || seen.width !== s.width || seen.colour !== s.colour) {
          result.seen.push({ at: s.t, width: s.width, colour: s.colour });
          process.stdout.write(JSON.stringify({ seen: result.seen[result.seen.length - 1] }) + '\n');
        }
        if (s.fatal) { result.fatal = true; break; }
        const now = Date.now();
        if (s.t < last || s.t - last > 1.0) result.jumps.push({ from: last, to: s.t });
        if (s.t > last) {
          const still = (now - stillSince) / 1000;
          if (still > 0.5) result.stalls.push({ at: last, seconds: still });
          result.maxStall = Math.max(result.maxStall, still);
          stillSince = now;
          last = s.t;
        }
        if (now >= nextSwitch && result.levels.length > 1) {
          target = (target + 1) % result.levels.length;
          const at = await page.evaluate((l) => { window.__hls[window.__switchProp] = l; return document.getElementById('v').currentTime; },
            target);
          result.switches.push({ to: target, at });
          nextSwitch = now + opts.switch_every_s * 1000;
        }
      }
      const still = (Date.now() - stillSince) / 1000;
      if (still > 0.5) result.stalls.push({ at: last, seconds: still });
      result.maxStall = Math.max(result.maxStall, still);
      result.watched = (Date.now() - t0) / 1000;
      result.currentTime = last;
      result.advanced = last - result.startTime;
      result.levelsPlayed = await page.evaluate(() => window.__watch.switched);
      result.quality = await page.evaluate(() => {
        const q = document.getElementById('v').getVideoPlaybackQuality();
        return { total: q.totalVideoFrames, dropped: q.droppedVideoFrames, corrupted: q.corruptedVideoFrames };
      });
    } catch (e) {
      result.errors.push('wait:' + e.message.split('\n')[0]);
    }
    result.errors.push(...await page.evaluate(() => window.__kiln.errors));
    result.fatal = result.fatal || await page.evaluate(() => window.__kiln.fatal);
  } catch (e) {
    result.errors.push('browser:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
