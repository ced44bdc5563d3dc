import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { FleetControl, IntervalFigures } from '../../src/run/output.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import type { RunEvent } from '../../src/stats/events.js';
import { Stats } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';
import { startDashboard } from '../../src/web/server.js';
import { chromiumSkip, inkedChartPixels, launchChromium } from '../helpers/browser.js';
import { spreadLatency, summaryFixture } from '../helpers/summary.js';

/**
 * The dashboard in a real browser (Chromium through playwright-core): it loads with no console error, draws
 * its charts, shows the live numbers, stops the run through its button, shows the summary, and never requests
 * anything from anywhere but its own origin. Figures are fed straight into the dashboard's listener (no broker).
 *
 * FLEETLOAD_DASHBOARD_SCREENSHOT=/tmp/dashboard.png saves a screenshot of the finished page (and
 * /tmp/dashboard-fleet.png one of the page after a load change).
 */

// The bits of the browser's globals the page callbacks use (this project's TS lib has no DOM); module-scoped,
// emitted as nothing: the callbacks run in the page.
declare const document: {
  getElementById(id: string): { textContent: string | null; disabled?: boolean } | null;
};

const skip = chromiumSkip('web e2e');

const T0 = 1_800_000_000_000;

/** A deterministic PRNG, so the fed figures (and the screenshot) are the same every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Interval i of a plausible run: 200 devices ramping at 10/s, each publishing every 200 ms. */
function interval(
  agg: Aggregator,
  i: number,
  rnd: () => number,
  fleet = { devices: 200, intervalMs: 200 },
  events?: RunEvent[],
  /** more for this interval (errors of an outage): recorded on the engine's stats */
  extra?: (engine: Stats) => void,
): IntervalFigures {
  const t = T0 + i * 1000;
  const engine = new Stats(t - 1000);
  const consumer = new Stats(t - 1000);
  const devices = Math.min(fleet.devices, i * 10);
  const sent = Math.round((devices * 1000) / fleet.intervalMs) - (i % 7 === 3 ? 40 : 0);
  const received = Math.max(0, sent - Math.round(rnd() * 6));
  engine.connected(devices);
  engine.count('sent', sent);
  engine.count('acked', sent);
  engine.count('bytesSent', sent * 180);
  consumer.count('received', received);
  consumer.count('bytesReceived', received * 160);
  const load = 1 + devices / 100;
  for (let k = 0; k < received; k++)
    consumer.latency('e2e', (4 + rnd() * 6) * load + (rnd() < 0.02 ? 40 * rnd() : 0));
  for (let k = 0; k < sent; k++)
    engine.latency('publishAck', (1 + rnd() * 2) * load + (rnd() < 0.02 ? 15 : 0));
  for (let k = 0; k < sent; k += 4)
    engine.latency('scheduleLag', rnd() * 0.8 * load + (rnd() < 0.01 ? 6 : 0));
  // the ramp's connects; now and then a refused one, a duplicate, a late arrival out of order
  engine.count('connects', Math.max(0, devices - Math.min(fleet.devices, (i - 1) * 10)));
  if (i % 9 === 4) {
    engine.count('connectFailures', 2);
    engine.error('connect', 'ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:8883', 2);
  }
  if (i % 11 === 5) {
    consumer.count('duplicated', 3);
    consumer.count('reordered', 1);
  }
  extra?.(engine);
  return {
    elapsedMs: i * 1000,
    interval: agg.merge([engine.snapshot(t), consumer.snapshot(t)]),
    gaps: i > 25 ? 3 : 0,
    cpuPercent: 18 + rnd() * 8,
    eventLoopLagP99Ms: 2 + rnd() * 3,
    phase: i * 10 < 200 ? 'ramp' : 'steady',
    ...(events ? { events } : {}),
  };
}

function summary(runId: string, host: string): Summary {
  return summaryFixture({
    runId,
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(T0 + 36_000).toISOString(),
    fleetloadVersion: 'test',
    interrupted: true,
    scenario: { host, devices: 200, spawnRate: 10, runTimeMs: 60_000, intervalMs: 200 },
    devices: { target: 200, connectedPeak: 200 },
    messages: {
      scheduled: 25_000,
      sent: 24_830,
      acked: 24_830,
      received: 24_720,
      lost: 3,
      reordered: 2,
    },
    latency: {
      e2e: spreadLatency(14.2),
      publishAck: spreadLatency(4.1),
      connect: spreadLatency(2.3),
      scheduleLag: spreadLatency(0.2),
    },
    rates: { sentPerSec: 689.7, receivedPerSec: 686.7 },
    generator: { cpuPercentPeak: 26, eventLoopLagP99: 5 },
    thresholds: [
      { expr: 'e2e.p99<500', value: 44, passed: true },
      { expr: 'loss<0.1%', value: 0.012, passed: true },
    ],
    passed: false,
  });
}

const launch = launchChromium;

test('dashboard in Chromium: charts drawn, numbers shown, Stop works, summary shown, nothing external', {
  skip,
}, async () => {
  const s = toScenario(
    scenarioInput.parse({
      host: 'mqtts://fleet:very-secret@iot.example.com:8883',
      password: 'also-secret',
      devices: 200,
      spawnRate: 10,
      runTime: '60s',
      interval: '200ms',
      thresholds: ['e2e.p99<500', 'loss<0.1%'],
    }),
    'e2e-web-1',
  );
  let stops = 0;
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {
      stops++;
    },
  });
  let browser: Browser | undefined;
  try {
    const origin = new URL(d.url).origin;
    const agg = new Aggregator();
    const rnd = prng(42);
    d.listener.start?.({
      runId: s.runId,
      url: 'mqtts://fleet:very-secret@iot.example.com:8883',
      dir: '/tmp/x',
    });
    // history the page gets when it connects
    let i = 1;
    for (; i <= 30; i++) d.listener.interval?.(interval(agg, i, rnd));

    browser = await launch();
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page: Page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    page.on('dialog', (dialog) => void dialog.accept());

    await page.goto(d.url);
    await page.waitForSelector('#status[data-state="live"]', { timeout: 5000 });
    await page.waitForFunction(
      () => document.getElementById('v-devices')?.textContent === '200 / 200',
      null,
      {
        timeout: 5000,
      },
    );

    // five live intervals, each waited for by what the page shows; the third says the broker was lost
    const lost: RunEvent = {
      atMs: T0 + 32_500,
      elapsedMs: 32_500,
      kind: 'broker-lost',
      message: 'broker lost: 180 of 200 connected devices dropped',
      count: 180,
    };
    const outage = (engine: Stats): void => {
      engine.count('dropped', 180);
      engine.error('disconnect', 'connection-lost', 'the broker closed the connection', 180);
      engine.error('inflight-lost', 'connection-lost', 'sent, but the connection closed before the ack', 37);
    };
    for (const stop = i + 5; i < stop; i++) {
      d.listener.interval?.(
        interval(agg, i, rnd, undefined, i === 33 ? [lost] : undefined, i === 33 ? outage : undefined),
      );
      await page.waitForFunction(
        (n) => document.getElementById('elapsed')?.textContent === `0:${n}`,
        String(i),
        {
          timeout: 5000,
        },
      );
    }

    // numbers in place
    const text = async (id: string) => (await page.textContent(`#${id}`))?.trim() ?? '';
    assert.equal(await text('v-devices'), '200 / 200');
    assert.match(await text('v-sent'), /^[\d,.]+$/);
    assert.ok(Number((await text('v-sent')).replace(/,/g, '')) > 900);
    assert.match(await text('v-received'), /^[\d,.]+$/);
    assert.match(await text('v-e2e'), /^[\d.]+ \/ [\d.]+$/);
    assert.match(await text('v-ack'), /^[\d.]+ \/ [\d.]+$/);
    assert.equal(await text('v-gaps'), '3');
    assert.match(await text('v-cpu'), /^\d+(\.\d+)?$/);
    assert.equal(await text('phase'), 'steady');
    assert.equal(await text('broker'), 'mqtts://fleet:***@iot.example.com:8883');

    // nine uPlot charts: today's five (bytes/s the fifth) and the report's schedule lag, loss and duplicates,
    // connections, generator — each with pixels drawn on its canvas
    const drawn = await inkedChartPixels(page);
    assert.equal(drawn.length, 9, 'one canvas per chart');
    for (const inked of drawn) assert.ok(inked > 2000, `a chart canvas has only ${inked} drawn pixels`);
    // the event that came on the stream: a marker on every chart, with the event as its tooltip, and a log row
    const markers = await page.$$eval('.fl-event[data-kind="broker-lost"]', (els) =>
      els.map((el) => el.getAttribute('title')),
    );
    assert.deepEqual(
      markers,
      Array(9).fill('0:33 broker-lost: broker lost: 180 of 200 connected devices dropped'),
    );
    const charted = await page.$$eval('.fl-event[data-kind="broker-lost"]', (els) =>
      els.map((el) => el.closest('.chart')?.id ?? '?'),
    );
    assert.deepEqual(
      charted.slice(5),
      ['chart-lag', 'chart-loss', 'chart-connections', 'chart-generator'],
      'the new charts carry the markers too',
    );
    assert.equal(await page.isVisible('#events-panel'), true);
    assert.match(await text('event-log'), /0:33broker-lostbroker lost: 180 of 200/);
    // the new charts' legends show the latest figures; the generator's lag is on its own axis
    const legend = async (id: string) =>
      page.$$eval(`#chart-${id} .u-legend .u-series`, (els) => els.map((el) => el.textContent ?? ''));
    assert.deepEqual(
      (await legend('connections')).slice(1).map((l) => l.replace(/[\d.,]+$/, '')),
      ['connects/s', 'connect failures/s', 'reconnects/s', 'dropped/s'],
    );
    assert.match((await legend('connections'))[4] ?? '', /^dropped\/s0$/);
    assert.match((await legend('generator'))[2] ?? '', /^event-loop lag p99 ms[\d.]+$/);
    assert.match((await legend('lag'))[2] ?? '', /^p99[\d.]+$/);
    assert.equal(await page.$$eval('#chart-generator .u-axis', (els) => els.length), 3, 'x, CPU %, lag ms');

    // the errors log: the outage's errors (most first) above the connect errors that came before it
    assert.equal(await page.isVisible('#errors-panel'), true);
    const errorRows = await page.$$eval('#error-log tr[data-kind]', (els) =>
      els.map((el) =>
        Array.from(
          el.children as unknown as ArrayLike<{ textContent: string | null }>,
          (td) => td.textContent ?? '',
        ),
      ),
    );
    assert.deepEqual(errorRows.slice(0, 2), [
      ['0:33', 'disconnect', 'connection-lost', 'the broker closed the connection', '180'],
      ['0:33', 'inflight-lost', 'connection-lost', 'sent, but the connection closed before the ack', '37'],
    ]);
    assert.deepEqual(
      errorRows.slice(2).map((r) => r.join('|')),
      ['0:31', '0:22', '0:13', '0:04'].map(
        (t) => `${t}|connect|ECONNREFUSED|connect ECONNREFUSED 10.0.0.5:8883|2`,
      ),
      'newest first',
    );
    assert.equal(await text('errors-total'), '225 so far: disconnect 180 · inflight-lost 37 · connect 8');

    // Stop: confirm dialog accepted → POST /api/stop → onStop once
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('stop')?.textContent === 'Stopping…', null, {
      timeout: 5000,
    });
    assert.equal(stops, 1);
    assert.equal(await text('phase'), 'stopping');

    // the end: the summary replaces the live state
    d.listener.finish?.(summary(s.runId, 'mqtts://fleet:***@iot.example.com:8883'));
    await page.waitForSelector('#summary:not([hidden])', { timeout: 5000 });
    assert.equal(await text('phase'), 'failed');
    const box = await text('summary');
    assert.match(box, /FAILED/);
    assert.match(box, /stopped early/);
    assert.match(box, /loss<0\.1%/);
    assert.match(box, /0\.01%/);

    const shot = process.env.FLEETLOAD_DASHBOARD_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot, fullPage: true });

    const html = await page.content();
    assert.ok(!html.includes('very-secret') && !html.includes('also-secret'), 'a secret reached the page');
    const foreign = requests.filter((u) => new URL(u).origin !== origin);
    assert.deepEqual(foreign, [], 'requests outside the dashboard origin');
    assert.ok(requests.includes(`${origin}/api/stream`));
    assert.ok(requests.includes(`${origin}/api/stop`));
    assert.deepEqual(problems, []);
  } finally {
    await browser?.close();
    await d.close();
  }
});

test('dashboard in Chromium: the Load controls change the running fleet and show the new target', {
  skip,
}, async () => {
  const s = toScenario(
    scenarioInput.parse({
      host: 'mqtts://fleet:very-secret@iot.example.com:8883',
      devices: 200,
      spawnRate: 10,
      runTime: '60s',
      interval: '200ms',
      thresholds: ['e2e.p99<500', 'loss<0.1%'],
    }),
    'e2e-web-fleet',
  );
  // the engine's side, as executeRun gives it to started()
  const calls: Array<['devices' | 'intervalMs', number]> = [];
  let target = 200;
  let every = 200;
  let broken = false;
  const control: FleetControl = {
    maxDevices: 200,
    targetDevices: () => target,
    intervalMs: () => every,
    setTargetDevices: (n) => {
      if (broken) throw new Error('engine gone');
      calls.push(['devices', n]);
      target = n;
    },
    setIntervalMs: (ms) => {
      calls.push(['intervalMs', ms]);
      every = ms;
    },
  };
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
    log: () => {},
  });
  let browser: Browser | undefined;
  try {
    const origin = new URL(d.url).origin;
    const agg = new Aggregator();
    const rnd = prng(7);
    browser = await launch();
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page: Page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    const text = async (id: string) => (await page.textContent(`#${id}`))?.trim() ?? '';
    const disabled = (id: string) =>
      page.$eval(`#${id}`, (el) => (el as unknown as { disabled: boolean }).disabled);

    // before the run started: the controls are there but disabled
    await page.goto(d.url);
    await page.waitForSelector('#status[data-state="live"]', { timeout: 5000 });
    assert.equal(await disabled('load-fields'), true, 'Load enabled before the run started');
    assert.equal(await page.getAttribute('#load-devices', 'max'), '200');

    d.listener.start?.({
      runId: s.runId,
      url: 'mqtts://fleet:***@iot.example.com:8883',
      dir: '/tmp/x',
      control,
    });
    let i = 1;
    for (; i <= 25; i++) d.listener.interval?.(interval(agg, i, rnd));
    await page.waitForFunction(() => document.getElementById('load-fields')?.disabled === false, null, {
      timeout: 5000,
    });
    await page.waitForFunction(() => document.getElementById('elapsed')?.textContent === '0:25', null, {
      timeout: 5000,
    });
    assert.equal(await text('load-now'), 'target 200 devices · every 200 ms · 1,000 msg/s');
    assert.equal(await page.inputValue('#load-devices'), '200');
    assert.equal(await page.inputValue('#load-interval'), '200');

    // a value out of range is refused on the page, inline, and never sent
    await page.fill('#load-devices', '500');
    await page.click('#load-apply');
    await page.waitForSelector('#load-error:not([hidden])', { timeout: 5000 });
    assert.equal(await text('load-error'), 'devices must be a whole number from 0 to 200');
    assert.equal(await page.getAttribute('#load-devices', 'aria-invalid'), 'true');
    assert.deepEqual(calls, []);

    // 50 devices every 500 ms: the control gets both, the page shows the new target and its rate
    await page.fill('#load-devices', '50');
    assert.equal(await page.isHidden('#load-error'), true, 'typing clears the error');
    await page.fill('#load-interval', '500');
    await page.press('#load-interval', 'Enter');
    await page.waitForFunction(
      () =>
        document.getElementById('load-now')?.textContent === 'target 50 devices · every 500 ms · 100 msg/s',
      null,
      { timeout: 5000 },
    );
    assert.deepEqual(calls, [
      ['devices', 50],
      ['intervalMs', 500],
    ]);

    // the next point carries the new target: the devices card and the chart's target line follow it
    for (const stop = i + 4; i < stop; i++)
      d.listener.interval?.(interval(agg, i, rnd, { devices: target, intervalMs: every }));
    await page.waitForFunction(() => document.getElementById('v-devices')?.textContent === '50 / 50', null, {
      timeout: 5000,
    });
    assert.equal(await text('load-now'), 'target 50 devices · every 500 ms · 100 msg/s');

    const shot = process.env.FLEETLOAD_DASHBOARD_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot.replace(/(\.png)?$/, '-fleet.png'), fullPage: true });

    // what the server answers when it refuses is shown inline, and the old target stays
    broken = true;
    await page.fill('#load-devices', '10');
    await page.click('#load-apply');
    await page.waitForSelector('#load-error:not([hidden])', { timeout: 5000 });
    assert.equal(await text('load-error'), 'the run could not change its load; see the terminal');
    assert.equal(await text('load-now'), 'target 50 devices · every 500 ms · 100 msg/s');
    assert.equal(await disabled('load-fields'), false, 'usable again after a refusal');
    broken = false;

    // Stop (here from another client) ends the Load controls on every page
    await fetch(new URL('/api/stop', d.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    await page.waitForFunction(() => document.getElementById('load-fields')?.disabled === true, null, {
      timeout: 5000,
    });

    // a new tab shows the load now, not the plan
    const other = await context.newPage();
    await other.goto(d.url);
    await other.waitForFunction(
      () =>
        document.getElementById('load-now')?.textContent === 'target 50 devices · every 500 ms · 100 msg/s',
      null,
      { timeout: 5000 },
    );
    assert.equal(await other.inputValue('#load-devices'), '50');

    const foreign = requests.filter((u) => new URL(u).origin !== origin);
    assert.deepEqual(foreign, [], 'requests outside the dashboard origin');
    assert.equal(requests.filter((u) => u === `${origin}/api/fleet`).length, 2, 'two POST /api/fleet');
    // the refused change's 500 is the one console error Chromium reports
    assert.deepEqual(
      problems.filter((p) => !/status of 500/.test(p)),
      [],
    );
  } finally {
    await browser?.close();
    await d.close();
  }
});

test('dashboard in Chromium: the errors log keeps the newest 200 rows, counts every error, and a new tab rebuilds it', {
  skip,
}, async () => {
  const s = toScenario(scenarioInput.parse({ devices: 10, runTime: '60s' }), 'e2e-web-errors');
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  let browser: Browser | undefined;
  try {
    const agg = new Aggregator();
    d.listener.start?.({ runId: s.runId, url: 'mqtt://127.0.0.1:1883', dir: '/tmp/x' });
    // 12 intervals with 20 kinds of puback refusal each: 240 rows of errors, 1 of each
    const feed = (i: number): void => {
      const engine = new Stats(T0 + (i - 1) * 1000);
      for (let k = 0; k < 20; k++) engine.error('puback', 0x80 + k, `refused ${i}.${k}`);
      d.listener.interval?.({
        elapsedMs: i * 1000,
        interval: agg.merge([engine.snapshot(T0 + i * 1000)]),
        gaps: 0,
        cpuPercent: 1,
        eventLoopLagP99Ms: 1,
        phase: 'steady',
      });
    };
    for (let i = 1; i <= 6; i++) feed(i);
    browser = await launch();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(d.url);
    await page.waitForFunction(() => document.getElementById('elapsed')?.textContent === '0:06', null, {
      timeout: 5000,
    });
    for (let i = 7; i <= 12; i++) feed(i);
    await page.waitForFunction(() => document.getElementById('elapsed')?.textContent === '0:12', null, {
      timeout: 5000,
    });
    const rows = async (p: Page) =>
      p.$$eval('#error-log tr[data-kind]', (els) =>
        els.map((el) =>
          Array.from(
            el.children as unknown as ArrayLike<{ textContent: string | null }>,
            (td) => td.textContent,
          ).join('|'),
        ),
      );
    const shown = await rows(page);
    assert.equal(shown.length, 200, 'bounded');
    assert.equal(
      shown[0],
      '0:12|puback|128|refused 12.0|1',
      'newest first, most frequent first within a second',
    );
    assert.equal(shown.at(-1), '0:03|puback|147|refused 3.19|1', 'the oldest went');
    assert.equal((await page.textContent('#errors-total'))?.trim(), '240 so far: puback 240');
    // a new tab gets the history and builds the same log
    const other = await browser.newPage();
    await other.goto(d.url);
    await other.waitForFunction(() => document.getElementById('elapsed')?.textContent === '0:12', null, {
      timeout: 5000,
    });
    assert.deepEqual(await rows(other), shown);
    assert.deepEqual(problems, []);
  } finally {
    await browser?.close();
    await d.close();
  }
});
