import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { writeReport } from '../../src/report/html.js';
import type { IntervalFigures } from '../../src/run/output.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import type { RunEvent } from '../../src/stats/events.js';
import { Stats } from '../../src/stats/stats.js';
import type { IntervalRecord, Summary } from '../../src/stats/summary.js';
import { startDashboard } from '../../src/web/server.js';
import { chromiumSkip, launchChromium } from '../helpers/browser.js';
import { reportMarkers } from '../helpers/markers.js';
import { spreadLatency, summaryFixture } from '../helpers/summary.js';

/**
 * What the dashboard shows of a run that ended badly, in Chromium: an invalid QoS 0 run says INVALID and why,
 * publish → ack says it has no samples, the charts' x is the run time (as the event log), event labels close
 * together neither overlap nor leave the plot, and the lost table lists each device's lost seq ranges.
 *
 * FLEETLOAD_DASHBOARD_SCREENSHOT=/tmp/dashboard.png saves a screenshot of the page at /tmp/dashboard-final.png.
 */

// The bits of the browser's globals the page callbacks use (this project's TS lib has no DOM).
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
};
interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}
interface Elem {
  hidden: boolean;
  textContent: string | null;
  getBoundingClientRect(): Box;
  querySelectorAll(sel: string): ArrayLike<Elem>;
}

const skip = chromiumSkip('web e2e (final state)');
const T0 = 1_800_000_000_000;

/** Interval i (1 s) of a small QoS 0 run: 20 devices, 20 msg/s, no acks. */
function interval(agg: Aggregator, i: number, events?: RunEvent[]): IntervalFigures {
  const t = T0 + i * 1000;
  const engine = new Stats(t - 1000);
  const consumer = new Stats(t - 1000);
  engine.connected(20);
  engine.count('sent', 20);
  engine.count('acked', 20);
  consumer.count('received', 20);
  for (let k = 0; k < 20; k++) consumer.latency('e2e', 3 + (k % 5));
  return {
    elapsedMs: i * 1000,
    interval: agg.merge([engine.snapshot(t), consumer.snapshot(t)]),
    gaps: 0,
    cpuPercent: 10,
    eventLoopLagP99Ms: 2,
    phase: 'steady',
    ...(events ? { events } : {}),
  };
}

const ev = (elapsedMs: number, kind: RunEvent['kind'], message: string): RunEvent =>
  ({ atMs: T0 + elapsedMs, elapsedMs, kind, message }) as RunEvent;

const REASONS = ['offered: 570 of 4130 scheduled messages were never sent (sent 86.2%, at least 95% needed)'];

function invalidSummary(runId: string): Summary {
  return summaryFixture({
    runId,
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(T0 + 20_000).toISOString(),
    scenario: { devices: 20, qos: 0, runTimeMs: 20_000 },
    messages: { scheduled: 4130, sent: 3560, acked: 3560, received: 3520, lost: 40 },
    latency: {
      e2e: spreadLatency(4),
      publishAck: { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 },
      connect: spreadLatency(1),
      scheduleLag: spreadLatency(0.2),
    },
    thresholds: [],
    passed: false,
    valid: false,
    invalid: REASONS,
    devicesTop: {
      lost: [
        {
          deviceId: 'dev-000003',
          value: 14,
          ranges: [
            { fromSeq: 5, toSeq: 14, fromTs: T0 + 10_000, toTs: T0 + 19_000 },
            { fromSeq: 30, toSeq: 30, fromTs: T0 + 35_000, toTs: T0 + 35_000 },
          ],
          moreRanges: 2,
        },
      ],
      duplicated: [],
      reordered: [],
      e2eP99: [],
      connectFailures: [],
      counts: { lost: 1, duplicated: 0, reordered: 0, e2eP99: 0, connectFailures: 0 },
    },
  });
}

test('dashboard in Chromium: an invalid QoS 0 run — INVALID and why, no ack samples, run-time axes, readable markers, lost ranges', {
  skip,
}, async () => {
  const s = toScenario(
    scenarioInput.parse({ host: 'mqtt://127.0.0.1:1883', devices: 20, runTime: '20s', qos: 0 }),
    'e2e-web-final',
  );
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
    // the outage: two events at the same instant, two more half a second apart each, one at the right edge
    const events: Record<number, RunEvent[]> = {
      9: [
        ev(8200, 'consumer-disconnected', 'consumer disconnected: connection lost'),
        ev(8200, 'broker-lost', 'broker lost: 20 of 20 connected devices dropped'),
      ],
      10: [
        ev(8700, 'saturation-start', 'generator saturated'),
        ev(9200, 'saturation-end', 'generator keeps up'),
      ],
      12: [ev(12_000, 'broker-back', 'broker back: 20 devices connected again')],
    };
    for (let i = 1; i <= 12; i++) d.listener.interval?.(interval(agg, i, events[i]));

    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page: Page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(d.url);
    await page.waitForFunction(() => document.getElementById('elapsed')?.textContent === '0:12', null, {
      timeout: 5000,
    });

    // QoS 0: the live card and the chart say there are no acks to time
    assert.equal(await page.textContent('#s-ack'), 'no samples: QoS 0 has no acks');
    assert.match((await page.textContent('#chart-ack >> xpath=..')) ?? '', /no samples: QoS 0 has no acks/);

    // the charts' x is the run time, as in the event log: the legend's x reads 0:12 and the wall clock after it
    const xLegend = await page.$$eval('.u-legend .u-series:first-child', (els) =>
      els.map((el) => (el as unknown as Elem).textContent ?? ''),
    );
    assert.equal(xLegend.length, 9);
    for (const x of xLegend) assert.match(x, /^run time0:12 \(.+\)$/);

    // markers: the two events of one instant share a label (each keeps its line, both in every tooltip); no two
    // labels of a chart overlap, and every label is inside its plot
    const charts = await page.$$eval('.u-over', (overs) =>
      overs.map((o) => {
        const over = o as unknown as Elem;
        const plot = over.getBoundingClientRect();
        const labels = Array.from(over.querySelectorAll('.fl-event span'))
          .filter((l) => !l.hidden)
          .map((l) => {
            const r = l.getBoundingClientRect();
            return { text: l.textContent ?? '', left: r.left, right: r.right, top: r.top, bottom: r.bottom };
          });
        return { plot: { left: plot.left, right: plot.right, top: plot.top, bottom: plot.bottom }, labels };
      }),
    );
    assert.equal(charts.length, 9);
    for (const c of charts) {
      assert.deepEqual(c.labels.map((l) => l.text).sort(), [
        'broker back',
        'consumer lost + broker lost',
        'keeps up',
        'saturated',
      ]);
      for (const l of c.labels) {
        assert.ok(
          l.left >= c.plot.left - 0.5 && l.right <= c.plot.right + 0.5 && l.bottom <= c.plot.bottom,
          `label "${l.text}" outside its plot: ${JSON.stringify(l)} in ${JSON.stringify(c.plot)}`,
        );
      }
      for (const a of c.labels)
        for (const b of c.labels) {
          if (a === b) continue;
          const apart = a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
          assert.ok(apart, `labels "${a.text}" and "${b.text}" overlap`);
        }
    }
    const lostTitles = await page.$$eval('.fl-event[data-kind="broker-lost"]', (els) =>
      els.map((el) => el.getAttribute('title')),
    );
    assert.deepEqual(
      lostTitles,
      Array(9).fill(
        '0:08 consumer-disconnected: consumer disconnected: connection lost\n0:08 broker-lost: broker lost: 20 of 20 connected devices dropped',
      ),
    );
    // the event log's time is the run time; the wall clock on hover
    assert.equal(await page.textContent('#event-log tr[data-kind="broker-back"] td'), '0:12');

    d.listener.finish?.(invalidSummary(s.runId));
    await page.waitForSelector('#summary:not([hidden])', { timeout: 5000 });
    const text = async (sel: string) => (await page.textContent(sel))?.trim() ?? '';
    // INVALID and why, not FAILED with "no thresholds set"
    assert.equal(await text('#summary .badge'), 'INVALID');
    assert.equal(await page.getAttribute('#summary .badge', 'class'), 'badge invalid');
    assert.equal(await text('#phase'), 'invalid');
    assert.deepEqual(
      await page.$$eval('#invalid-reasons li', (els) => els.map((e) => e.textContent)),
      REASONS,
    );
    assert.ok(!(await text('#summary')).includes('no thresholds set'));
    // QoS 0: no publish → ack samples, said in words rather than five zeros
    const ackRow = await page.$$eval('#summary tr', (rows) =>
      rows.map((r) => (r as unknown as Elem).textContent ?? '').filter((t) => t.startsWith('publish → ack')),
    );
    assert.deepEqual(ackRow, ['publish → ack0no samples: QoS 0 has no acks']);
    // the lost table: each device's ranges, at run time
    await page.waitForSelector('table[data-list="lost"]', { timeout: 5000 });
    const lostRows = await page.$$eval('table[data-list="lost"] tr', (rows) =>
      rows.map((r) =>
        Array.from((r as unknown as Elem).querySelectorAll('th, td'), (c) => (c as Elem).textContent ?? ''),
      ),
    );
    assert.deepEqual(lostRows, [
      ['device', 'lost', 'lost seqs, scheduled'],
      ['dev-000003', '14', 'seqs 5–14 at 0:10–0:19seq 30 at 0:35+2 more'],
    ]);
    const shot = process.env.FLEETLOAD_DASHBOARD_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot.replace(/\.png$/, '-final.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await browser?.close();
    await d.close();
  }
});

test('report.html in Chromium: the same close events — one label per instant, no label overlaps another or leaves its plot', {
  skip,
}, async () => {
  const root = await mkdtemp(join(tmpdir(), 'fleetload-final-'));
  const dir = join(root, 'run-1');
  const browser = await launchChromium();
  try {
    await mkdir(dir);
    const events = [
      ev(8200, 'consumer-disconnected', 'consumer disconnected: connection lost'),
      ev(8200, 'broker-lost', 'broker lost: 20 of 20 connected devices dropped'),
      ev(8700, 'saturation-start', 'generator saturated'),
      ev(9200, 'saturation-end', 'generator keeps up'),
      ev(12_000, 'broker-back', 'broker back: 20 devices connected again'),
    ];
    const l = { count: 20, p50: 3, p90: 5, p95: 6, p99: 7, max: 7 };
    const records: IntervalRecord[] = Array.from({ length: 12 }, (_, k) => ({
      time: new Date(T0 + (k + 1) * 1000).toISOString(),
      elapsedMs: (k + 1) * 1000,
      durationMs: 1000,
      phase: 'steady',
      devicesConnected: 20,
      counters: { sent: 20, acked: 20, received: 20 },
      gaps: 0,
      cpuPercent: 10,
      eventLoopLagP99Ms: 2,
      latency: { e2e: l, publishAck: l, connect: l, scheduleLag: l },
    }));
    await writeFile(join(dir, 'intervals.jsonl'), `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    await writeFile(join(dir, 'summary.json'), JSON.stringify({ ...invalidSummary('run-1'), events }));
    const path = await writeReport(dir);
    const drawn = await reportMarkers(path, browser);
    assert.deepEqual(drawn.problems, []);
    assert.ok(drawn.charts >= 8, `${drawn.charts} charts`);
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    await page.goto(`file://${path}`);
    await page.waitForSelector('html[data-charts]');
    const charts = await page.$$eval('.u-over', (overs) =>
      overs.map((o) => {
        const over = o as unknown as Elem;
        const plot = over.getBoundingClientRect();
        const labels = Array.from(over.querySelectorAll('.fl-event span'))
          .filter((x) => !x.hidden)
          .map((x) => {
            const r = x.getBoundingClientRect();
            return { text: x.textContent ?? '', left: r.left, right: r.right, top: r.top, bottom: r.bottom };
          });
        return { plot: { left: plot.left, right: plot.right }, labels };
      }),
    );
    const timeCharts = charts.filter((c) => c.labels.length > 0);
    assert.ok(timeCharts.length >= 7, `${timeCharts.length} charts with markers`);
    for (const c of timeCharts) {
      assert.deepEqual(c.labels.map((x) => x.text).sort(), [
        'broker back',
        'consumer lost + broker lost',
        'keeps up',
        'saturated',
      ]);
      for (const a of c.labels) {
        assert.ok(
          a.left >= c.plot.left - 0.5 && a.right <= c.plot.right + 0.5,
          `"${a.text}" outside its plot`,
        );
        for (const b of c.labels) {
          if (a === b) continue;
          const apart = a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
          assert.ok(apart, `labels "${a.text}" and "${b.text}" overlap`);
        }
      }
    }
    await context.close();
  } finally {
    await browser.close();
    await rm(root, { recursive: true, force: true });
  }
});
