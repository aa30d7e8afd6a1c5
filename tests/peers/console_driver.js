// Headless Chromium (Debian /usr/bin/chromium) driven step by step by a Python test through playwright-core.
// Usage: node console_driver.js '<json options>'   options: {user_data_dir, chromium}
// Reads one JSON command per line on stdin, answers one JSON line on stdout: {ok: true, value} or {ok: false, error}.
// Commands: {op: goto, url} | {op: fill, selector, value} | {op: select, selector, value} | {op: click, selector}
//   | {op: wait_for, expr, arg, timeout_ms} (a page function body returning truthy) | {op: eval, expr, arg}
//   | {op: text, selector} | {op: screenshot, path} | {op: log} (console messages and page errors so far)
//   | {op: close}
// The Python side asserts between steps (e.g. on the REST API after a click), which a one-shot script cannot do.
'use strict';
const readline = require('readline');
const { chromium } = require('playwright-core');

const opts = JSON.parse(process.argv[2] || '{}');
const messages = [];

function reply(value) { process.stdout.write(JSON.stringify(value) + '\n'); }

(async () => {
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.chromium || '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 1600 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
             '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    reply({ ok: false, error: 'browser:' + e.message.split('\n')[0] });
    process.exit(1);
  }
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => messages.push(`requestfailed: ${r.url()} ${(r.failure() || {}).errorText}`));
  reply({ ok: true, value: 'ready' });

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      reply({ ok: false, error: 'bad command: ' + e.message });
      continue;
    }
    try {
      let value = null;
      const timeout = cmd.timeout_ms || 30000;
      switch (cmd.op) {
        case 'goto': await page.goto(cmd.url, { timeout }); break;
        case 'fill': await page.fill(cmd.selector, cmd.value, { timeout }); break;
        case 'select': await page.selectOption(cmd.selector, cmd.value, { timeout }); break;
        case 'click': await page.click(cmd.selector, { timeout }); break;
        case 'wait_for': {
          const fn = new Function('arg', cmd.expr);  // eslint-disable-line no-new-func
          const handle = await page.waitForFunction(fn, cmd.arg === undefined ? null : cmd.arg,
            { timeout, polling: 200 });
          value = await handle.jsonValue();
          break;
        }
        case 'eval': value = await page.evaluate(new Function('arg', cmd.expr), cmd.arg === undefined ? null : cmd.arg); break;  // eslint-disable-line no-new-func
        case 'text': value = await page.textContent(cmd.selector, { timeout }); break;
        case 'screenshot': await page.screenshot({ path: cmd.path, fullPage: true }); value = cmd.path; break;
        case 'log': value = messages.slice(); break;
        case 'close': await browser.close().catch(() => {}); reply({ ok: true, value: 'closed' }); process.exit(0); break;
        default: throw new Error('unknown op ' + cmd.op);
      }
      reply({ ok: true, value });
    } catch (e) {
      reply({ ok: false, error: e.message.split('\n').slice(0, 3).join(' ') });
    }
  }
  await browser.close().catch(() => {});
})();
