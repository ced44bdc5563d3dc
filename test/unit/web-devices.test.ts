import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IntervalFigures } from '../../src/run/output.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import type { DevicesTop } from '../../src/stats/device-report.js';
import type { Summary } from '../../src/stats/summary.js';
import { DEVICES_JS } from '../../src/web/devices-client.js';
import { startDashboard } from '../../src/web/server.js';
import { summaryFixture } from '../helpers/summary.js';

/**
 * The dashboard's per-device view: GET /api/devices serves the latest top lists of the interval stream (the
 * pipeline adds them every 5 s), then the summary's once the run has finished; the page polls it.
 */

const T0 = 1_800_000_000_000;

const top = (lost: number): DevicesTop => ({
  lost: [{ deviceId: 'dev-000007', value: lost, ranges: [], moreRanges: 0 }],
  duplicated: [],
  reordered: [],
  e2eP99: [{ deviceId: 'dev-000001', value: 12 }],
  connectFailures: [],
  counts: { lost: 1, duplicated: 0, reordered: 0, e2eP99: 1, connectFailures: 0 },
});

function figures(devices?: DevicesTop): IntervalFigures {
  const interval = new Aggregator().merge([]);
  return {
    elapsedMs: 1000,
    interval,
    gaps: 0,
    cpuPercent: 1,
    eventLoopLagP99Ms: 1,
    phase: 'steady',
    ...(devices ? { devices } : {}),
  };
}

test('GET /api/devices: null before any figures, the live lists, then the summary’s (final)', async () => {
  const s = toScenario(scenarioInput.parse({ devices: 10, runTime: '30s' }), 'wd-r1');
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  try {
    const get = async () => {
      const res = await fetch(new URL('/api/devices', d.url));
      assert.equal(res.status, 200);
      return (await res.json()) as { devices: DevicesTop | null; final: boolean };
    };
    assert.deepEqual(await get(), { devices: null, final: false });
    d.listener.interval?.(figures(top(3)));
    // an interval without lists keeps the last ones
    d.listener.interval?.(figures());
    assert.deepEqual(await get(), { devices: top(3), final: false });
    const summary: Summary = {
      ...summaryFixture({
        runId: s.runId,
        startedAt: new Date(T0).toISOString(),
        endedAt: new Date(T0 + 30_000).toISOString(),
      }),
      devicesTop: top(9),
    };
    d.listener.finish?.(summary);
    assert.deepEqual(await get(), { devices: top(9), final: true });
    assert.equal((await fetch(new URL('/api/devices', d.url), { method: 'POST' })).status, 405);
    // the page carries the panel and its script
    const page = await (await fetch(d.url)).text();
    assert.match(page, /<section class="panel devices" id="devices" hidden><\/section>/);
    assert.ok(page.includes("fetch('/api/devices'"));
  } finally {
    await d.close();
  }
});

test('the devices script compiles and puts data in with textContent only', () => {
  assert.doesNotThrow(() => new Function(DEVICES_JS));
  assert.ok(!DEVICES_JS.includes('innerHTML'));
});
