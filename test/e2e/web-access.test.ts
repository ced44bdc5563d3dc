import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { FleetControl, IntervalFigures } from '../../src/run/output.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import { Stats } from '../../src/stats/stats.js';
import { startDashboard } from '../../src/web/server.js';
import { chromiumSkip, launchChromium } from '../helpers/browser.js';

/**
 * The dashboard off loopback in a real browser (Chromium through playwright-core). The server really listens on
 * 127.0.0.1 and is told to treat it as remote (the isLoopback decision), so a token is required: without it
 * every endpoint is 401 in the browser; the one-time link sets an HttpOnly SameSite=Strict cookie and leaves no
 * token in the URL; a bearer header works too; a rebound name (Chromium's resolver maps rebind.test to
 * 127.0.0.1) is refused even with the token; another origin's page cannot change the fleet or stop the run.
 */

declare const document: {
  getElementById(id: string): { textContent: string | null; disabled?: boolean } | null;
  cookie: string;
  title: string;
};

const skip = chromiumSkip('web access e2e');
const TOKEN = 'e2e-token-0123456789abcdefXYZ';
const T0 = 1_800_000_000_000;

function interval(agg: Aggregator, i: number): IntervalFigures {
  const t = T0 + i * 1000;
  const engine = new Stats(t - 1000);
  const consumer = new Stats(t - 1000);
  engine.connected(20);
  engine.count('sent', 100);
  engine.count('acked', 100);
  consumer.count('received', 100);
  for (let k = 0; k < 100; k++) consumer.latency('e2e', 5 + (k % 10));
  return {
    elapsedMs: i * 1000,
    interval: agg.merge([engine.snapshot(t), consumer.snapshot(t)]),
    gaps: 0,
    cpuPercent: 10,
    eventLoopLagP99Ms: 1,
    phase: 'steady',
  };
}

/** A page on another origin that tries to change the fleet and stop the run, with the dashboard's cookie. */
function evilPage(target: string): string {
  return `<!doctype html><title>evil</title>
<form id="f" method="POST" action="${target}api/fleet" enctype="text/plain">
<input name='{"devices":1,"x":"' value='"}'></form>
<script>
fetch(${JSON.stringify(`${target}api/stop`)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
  headers: { 'Content-Type': 'application/json' }, body: '{}' })
  .catch(function () {})
  .then(function () {
    return fetch(${JSON.stringify(`${target}api/fleet`)}, { method: 'POST', credentials: 'include',
      headers: { 'Content-Type': 'application/json' }, body: '{"devices":1}' });
  })
  .catch(function () {})
  .then(function () { document.getElementById('f').submit(); });
</script>`;
}

test('off-loopback dashboard in Chromium: 401 without the token, one-time link and bearer work, rebinding and other origins refused', {
  skip,
}, async () => {
  const s = toScenario(
    scenarioInput.parse({ devices: 20, spawnRate: 10, runTime: '60s', interval: '200ms' }),
    'e2e-web-access',
  );
  const calls: Array<['devices' | 'intervalMs', number]> = [];
  let target = 20;
  let every = 200;
  const control: FleetControl = {
    maxDevices: 20,
    targetDevices: () => target,
    intervalMs: () => every,
    setTargetDevices: (n) => {
      calls.push(['devices', n]);
      target = n;
    },
    setIntervalMs: (ms) => {
      calls.push(['intervalMs', ms]);
      every = ms;
    },
  };
  let stops = 0;
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {
      stops++;
    },
    isLoopback: () => false,
    token: TOKEN,
    log: () => {},
  });
  const evil = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(evilPage(d.url));
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  let browser: Browser | undefined;
  try {
    const origin = new URL(d.url).origin;
    const port = new URL(d.url).port;
    const link = /(http:\/\/\S+\/login\?token=\S+)/.exec(d.notices.join('\n'))?.[1];
    assert.ok(link, 'a login link among the notices');
    const agg = new Aggregator();
    d.listener.start?.({ runId: s.runId, url: 'mqtt://broker.example:1883', dir: '/tmp/x', control });
    for (let i = 1; i <= 5; i++) d.listener.interval?.(interval(agg, i));

    browser = await launchChromium(['--host-resolver-rules=MAP rebind.test 127.0.0.1']);

    // no token: every endpoint is 401 in the browser, navigations and in-page requests alike
    const anon = await browser.newContext();
    const page = await anon.newPage();
    for (const path of ['/', '/index.html', '/api/stream', '/api/summary', '/favicon.ico', '/login']) {
      const res = await page.goto(`${origin}${path}`);
      assert.equal(res?.status(), 401, path);
    }
    // (no named functions inside evaluate: tsx's keepNames would reference a helper the page lacks)
    const inPage = await page.evaluate(() =>
      Promise.all(
        [
          ['/api/fleet', '{"devices":1}'],
          ['/api/stop', '{}'],
        ].map(([path, body]) =>
          fetch(path as string, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body,
          }).then((r) => r.status),
        ),
      ),
    );
    assert.deepEqual(inPage, [401, 401]);
    assert.deepEqual(calls, []);
    assert.equal(stops, 0);

    // the one-time link: redirected to /, the token gone from the URL, an HttpOnly SameSite=Strict cookie
    const landed = await page.goto(link);
    assert.equal(landed?.status(), 200);
    assert.equal(page.url(), `${origin}/`);
    await page.waitForSelector('#status[data-state="live"]', { timeout: 5000 });
    const cookies = await anon.cookies();
    assert.equal(cookies.length, 1);
    const [cookie] = cookies;
    assert.equal(cookie?.name, `fleetload-${port}`);
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
    assert.equal(cookie?.value, TOKEN);
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page script cannot read the token');

    // logged in, the Load controls work
    await page.waitForFunction(() => document.getElementById('load-fields')?.disabled === false, null, {
      timeout: 5000,
    });
    await page.fill('#load-devices', '10');
    await page.fill('#load-interval', '100');
    await page.click('#load-apply');
    await page.waitForFunction(
      () =>
        document.getElementById('load-now')?.textContent === 'target 10 devices · every 100 ms · 100 msg/s',
      null,
      { timeout: 5000 },
    );
    assert.deepEqual(calls, [
      ['devices', 10],
      ['intervalMs', 100],
    ]);
    // an interval past the run time: refused on the page, and by the server when sent anyway
    await page.fill('#load-interval', '60001');
    await page.click('#load-apply');
    await page.waitForSelector('#load-error:not([hidden])', { timeout: 5000 });
    assert.equal(
      (await page.textContent('#load-error'))?.trim(),
      'the interval must be from 1 to 60000 ms (the run time)',
    );
    const refused = await page.evaluate(async () => {
      const r = await fetch('/api/fleet', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"intervalMs":1e308}',
      });
      return { status: r.status, body: (await r.json()) as { field?: string } };
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.field, 'intervalMs');
    assert.equal(calls.length, 2, 'the refused values changed nothing');

    // another origin's page, with the dashboard's cookie in this browser: nothing changes
    const statuses: number[] = [];
    page.on('response', (r) => {
      if (r.url().startsWith(origin) && r.request().method() === 'POST') statuses.push(r.status());
    });
    const formPosted = page.waitForResponse(
      (r) => r.url() === `${origin}/api/fleet` && r.request().method() === 'POST',
      {
        timeout: 5000,
      },
    );
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    assert.equal((await formPosted).status(), 415, 'the text/plain form post');
    assert.ok(statuses.length >= 2, `the requests reached the dashboard: ${statuses}`);
    for (const status of statuses) assert.ok(status === 401 || status === 403 || status === 415, `${status}`);
    assert.equal(calls.length, 2);
    assert.equal(stops, 0);

    // used once: a fresh browser cannot use the link again
    const late = await browser.newContext();
    const latePage = await late.newPage();
    assert.equal((await latePage.goto(link))?.status(), 401);
    assert.deepEqual(await late.cookies(), []);

    // the bearer header, and a rebound name refused even with it
    const scripted = await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${TOKEN}` } });
    const sp = await scripted.newPage();
    assert.equal((await sp.goto(d.url))?.status(), 200);
    await sp.waitForSelector('#status[data-state="live"]', { timeout: 5000 });
    for (const path of ['/', '/api/stream', '/api/summary']) {
      assert.equal((await sp.goto(`http://rebind.test:${port}${path}`))?.status(), 403, path);
    }
    // and with the cookie: the rebound name does not get it, and would be refused anyway
    assert.equal((await page.goto(`http://rebind.test:${port}/`))?.status(), 403);
    assert.equal(calls.length, 2);
    assert.equal(stops, 0);
  } finally {
    await browser?.close();
    await d.close();
    await new Promise((r) => evil.close(r));
  }
});
