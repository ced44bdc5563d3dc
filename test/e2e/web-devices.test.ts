import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IntervalFigures } from '../../src/run/output.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import type { DevicesTop } from '../../src/stats/device-report.js';
import { startDashboard } from '../../src/web/server.js';
import { chromiumSkip, launchChromium } from '../helpers/browser.js';
import { summaryFixture } from '../helpers/summary.js';

/**
 * The dashboard's Devices panel in a real browser: hidden until the first top lists arrive, then a table per
 * non-empty list, updated by polling /api/devices, and the summary's lists at the end. No console error.
 */

const T0 = 1_800_000_000_000;

const top = (lostBy: Array<[string, number]>): DevicesTop => ({
  lost: lostBy.map(([deviceId, value]) => ({ deviceId, value, ranges: [], moreRanges: 0 })),
  duplicated: [],
  reordered: [{ deviceId: 'dev-000004', value: 2 }],
  e2eP99: [{ deviceId: 'dev-000001', value: 16 }],
  connectFailures: [],
  counts: { lost: lostBy.length, duplicated: 0, reordered: 1, e2eP99: 1, connectFailures: 0 },
});

function figures(devices: DevicesTop): IntervalFigures {
  return {
    elapsedMs: 1000,
    interval: new Aggregator().merge([]),
    gaps: 0,
    cpuPercent: 1,
    eventLoopLagP99Ms: 1,
    phase: 'steady',
    devices,
  };
}

test('the Devices panel shows the live top lists, then the final ones', {
  skip: chromiumSkip('devices panel'),
}, async () => {
  const s = toScenario(scenarioInput.parse({ devices: 10, runTime: '30s' }), 'wdb-r1');
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(d.url);
    assert.equal(await page.isHidden('#devices'), true, 'hidden before any lists');
    d.listener.interval?.(figures(top([['dev-000007', 3]])));
    await page.waitForSelector('#devices table[data-list="lost"] td', { timeout: 10_000 });
    const lostRows = () =>
      page.$$eval('#devices table[data-list="lost"] tr', (rows) =>
        rows.slice(1).map((r) => (r as unknown as { textContent: string }).textContent),
      );
    assert.deepEqual(await lostRows(), ['dev-0000073']);
    assert.match((await page.textContent('#devices h2')) ?? '', /so far/);
    assert.equal(await page.textContent('#devices table[data-list="reordered"] td.n'), '2');
    d.listener.finish?.({
      ...summaryFixture({
        runId: s.runId,
        startedAt: new Date(T0).toISOString(),
        endedAt: new Date(T0 + 30_000).toISOString(),
      }),
      devicesTop: top([
        ['dev-000007', 5],
        ['dev-000002', 1],
      ]),
    });
    await page.waitForFunction(
      () =>
        (
          globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }
        ).document.querySelector('#devices h2')?.textContent === 'Devices',
      undefined,
      { timeout: 10_000 },
    );
    assert.deepEqual(await lostRows(), ['dev-0000075', 'dev-0000021']);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await d.close();
  }
});
