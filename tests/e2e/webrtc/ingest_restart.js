// Headless Chromium publishes over WHIP, then restarts ICE as RFC 9725 §4.3.2 says: pc.restartIce(), a new
// offer whose ice-ufrag/ice-pwd and candidates are PATCHed (If-Match: *), Kiln's 200 sdpfrag applied as the
// new answer. Chromium's own ICE agent does the rest (new candidates, checks, the switch of pair).
// Usage: node ingest_restart.js '<json options>'
//   options: {url, page_origin, user_data_dir, chromium, before_s, after_s, timeout_ms}
// Prints one JSON line: {connected, posted, patched: {status, contentType, etag}, etag, pairs: [before, after],
//                        ufrags: [before, after], sent: [at restart, at end], state, errors}
'use strict';
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const pageUrl = `${opts.page_origin}/__kiln_test_restart/index.html`;

(async () => {
  const result = { connected: false, errors: [] };
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks'],
    });
    const page = browser.pages()[0] || await browser.newPage();
    await page.route((u) => u.href === pageUrl, (r) =>
      r.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>restart</title>' }));
    page.on('pageerror', (e) => result.errors.push('pageerror:' + e.message));
    await page.goto(pageUrl);
    const timeout = opts.timeout_ms || 30000;
    Object.assign(result, await page.evaluate(async (url) => {
      const gathered = (pc) => new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') { resolve(); return; }
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
      });
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 180 }, audio: true });
      const pc = new RTCPeerConnection({ iceServers: [] });
      for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const posted = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' },
                                        body: pc.localDescription.sdp });
      const answer = await posted.text();
      window.__whip = { pc, answer, resource: new URL(posted.headers.get('Location'), url).href,
                        etag: posted.headers.get('ETag') };
      if (posted.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      return { posted: posted.status, etag: posted.headers.get('ETag') };
    }, opts.url));
    await page.waitForFunction(() => window.__whip && window.__whip.pc.connectionState === 'connected', null,
                               { timeout, polling: 100 });
    result.connected = true;
    await page.waitForTimeout((opts.before_s || 5) * 1000);
    const probe = async () => page.evaluate(async () => {
      const { pc } = window.__whip;
      const stats = await pc.getStats();
      let pair = null; let sent = 0; const byId = {};
      stats.forEach((s) => { byId[s.id] = s; });
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const p = byId[s.selectedCandidatePairId];
          const local = p && byId[p.localCandidateId];
          pair = local ? `${local.address}:${local.port}` : null;
        }
        if (s.type === 'outbound-rtp' && s.kind === 'video') sent += s.packetsSent || 0;
      });
      const ufrag = (pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
      return { pair, sent, ufrag, state: pc.connectionState };
    });
    const before = await probe();
    Object.assign(result, await page.evaluate(async () => {
      const w = window.__whip;
      const gathered = (pc) => new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') { resolve(); return; }
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
      });
      w.pc.restartIce();
      const offer = await w.pc.createOffer();
      await w.pc.setLocalDescription(offer);
      await gathered(w.pc);
      const sdp = w.pc.localDescription.sdp;
      const first = sdp.split(/\r\n(?=m=)/)[1].split('\r\n');
      const pick = (prefix) => first.filter((l) => l.startsWith(prefix));
      const m = first[0].split(' ');
      const frag = [pick('a=ice-ufrag:')[0], pick('a=ice-pwd:')[0], [m[0], '9', ...m.slice(2)].join(' '),
                    pick('a=mid:')[0], ...pick('a=candidate:'), 'a=end-of-candidates', ''].join('\r\n');
      const res = await fetch(w.resource, { method: 'PATCH', body: frag,
        headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' } });
      const body = await res.text();
      const patched = { status: res.status, contentType: res.headers.get('Content-Type'), etag: res.headers.get('ETag') };
      if (res.status !== 200) return { patched, errors: ['patch:' + body] };
      const lines = body.split(/\r?\n/);
      const ufrag = lines.find((l) => l.startsWith('a=ice-ufrag:'));
      const pwd = lines.find((l) => l.startsWith('a=ice-pwd:'));
      const candidates = lines.filter((l) => l.startsWith('a=candidate:'));
      // WHIP renegotiates nothing else: the last answer with the new ICE credentials and candidates
      const answer = w.answer.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates')
        .map((l) => (l.startsWith('a=ice-ufrag:') ? ufrag : l.startsWith('a=ice-pwd:') ? pwd : l))
        .flatMap((l) => (l.startsWith('a=mid:') ? [l, ...candidates, 'a=end-of-candidates'] : [l])).join('\r\n');
      await w.pc.setRemoteDescription({ type: 'answer', sdp: answer });
      return { patched };
    }));
    await page.waitForTimeout((opts.after_s || 5) * 1000);
    const after = await probe();
    result.pairs = [before.pair, after.pair];
    result.ufrags = [before.ufrag, after.ufrag];
    result.sent = [before.sent, after.sent];
    result.state = after.state;
    await page.evaluate(async () => { await fetch(window.__whip.resource, { method: 'DELETE' }); });
  } catch (e) {
    result.errors.push('error:' + e.message.split('\n')[0]);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
