import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IntervalFigures } from '../../src/run/output.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import { newHistogram, recordMs } from '../../src/stats/histogram.js';
import { Stats } from '../../src/stats/stats.js';
import { CLIENT_JS } from '../../src/web/client.js';
import {
  type DashboardPoint,
  intervalErrors,
  MAX_POINT_ERRORS,
  PointSeries,
  percentileOrGap,
} from '../../src/web/figures.js';
import { renderPage } from '../../src/web/page.js';
import { startDashboard } from '../../src/web/server.js';

/**
 * The dashboard's share of the report's charts (schedule lag, loss and duplicates, connections, generator) and its
 * errors log: the figures each stream point carries for them, from fake intervals merged by a real Aggregator, and
 * the history a new tab (or a reconnecting one) gets. The page drawing them is checked in test/e2e/web.test.ts.
 */

const T0 = 1_800_000_000_000;
const FLEET = { targetDevices: 10, intervalMs: 1000 };

interface Fake {
  t: number;
  durationMs?: number;
  lagMs?: number[];
  counts?: Partial<
    Record<
      | 'duplicated'
      | 'reordered'
      | 'connects'
      | 'connectFailures'
      | 'reconnects'
      | 'dropped'
      | 'negativeDelay'
      | 'late',
      number
    >
  >;
  /** [kind, code, reason, count] recorded by the engine */
  engineErrors?: Array<[string, number | string, string, number]>;
  /** [kind, code, reason, count] recorded by the consumer */
  consumerErrors?: Array<[string, number | string, string, number]>;
}

/** One interval as the pipeline builds it: an engine and a consumer Stats, snapshotted, merged. */
function interval(agg: Aggregator, o: Fake): IntervalFigures {
  const from = o.t - (o.durationMs ?? 1000);
  const engine = new Stats(from);
  const consumer = new Stats(from);
  engine.connected(10);
  for (const ms of o.lagMs ?? []) engine.written(ms, true);
  const c = o.counts ?? {};
  for (const k of ['connects', 'connectFailures', 'reconnects', 'dropped'] as const)
    engine.count(k, c[k] ?? 0);
  for (const k of ['duplicated', 'reordered', 'negativeDelay', 'late'] as const) consumer.count(k, c[k] ?? 0);
  for (const [kind, code, reason, n] of o.engineErrors ?? []) engine.error(kind, code, reason, n);
  for (const [kind, code, reason, n] of o.consumerErrors ?? []) consumer.error(kind, code, reason, n);
  return {
    elapsedMs: o.t - T0,
    interval: agg.merge([engine.snapshot(o.t), consumer.snapshot(o.t)]),
    gaps: 4,
    cpuPercent: 41.26,
    eventLoopLagP99Ms: 7.25,
    phase: 'steady',
  };
}

test('a point carries schedule lag, duplicates, connections per second and their totals', () => {
  const agg = new Aggregator();
  const series = new PointSeries();
  const lag = [0.5, 1, 2, 3, 50];
  series.add(interval(agg, { t: T0 + 1000, counts: { connects: 10, duplicated: 2, reconnects: 0 } }), FLEET);
  const p = series.add(
    interval(agg, {
      t: T0 + 3000,
      durationMs: 2000,
      lagMs: lag,
      counts: { duplicated: 6, reordered: 3, connects: 8, connectFailures: 4, reconnects: 8, dropped: 10 },
    }),
    FLEET,
  );
  const h = newHistogram();
  for (const ms of lag) recordMs(h, ms);
  assert.equal(p.scheduleLagP50, percentileOrGap(h, 50));
  assert.equal(p.scheduleLagP99, percentileOrGap(h, 99));
  assert.ok(Math.abs((p.scheduleLagP99 ?? 0) - 50) < 0.1, `lag p99 ${p.scheduleLagP99}`);
  // per second over the interval's own two seconds
  assert.deepEqual(
    [
      p.duplicatedPerSec,
      p.reorderedPerSec,
      p.connectsPerSec,
      p.connectFailuresPerSec,
      p.reconnectsPerSec,
      p.droppedPerSec,
    ],
    [3, 1.5, 4, 2, 4, 5],
  );
  assert.deepEqual([p.duplicated, p.reordered, p.reconnects, p.connectFailures], [8, 3, 8, 4]);
  // the generator chart's figures, and the loss chart's gaps (holes so far)
  assert.deepEqual([p.cpuPercent, p.eventLoopLagP99Ms, p.gaps], [41.3, 7.25, 4]);
  // nothing went wrong in either interval: no errors key at all
  assert.equal(p.errors, undefined);
  // an interval that sent nothing has no schedule lag: a gap in the chart, not 0
  const first = series.since()[0];
  assert.equal(first?.scheduleLagP50, null);
  assert.equal(first?.scheduleLagP99, null);
});

test('a point carries its interval errors: both sources, by kind and code, measurement anomalies, most first', () => {
  const agg = new Aggregator();
  const series = new PointSeries();
  const p = series.add(
    interval(agg, {
      t: T0 + 1000,
      counts: { negativeDelay: 2 },
      engineErrors: [
        ['connect', 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1883', 12],
        ['disconnect', 'connection-lost', 'the broker closed the connection', 20],
        ['connack', 5, 'not authorized', 1],
      ],
      consumerErrors: [['consumer', 'disconnected', 'connection closed', 1]],
    }),
    FLEET,
  );
  assert.deepEqual(p.errors, [
    { kind: 'disconnect', code: 'connection-lost', reason: 'the broker closed the connection', count: 20 },
    { kind: 'connect', code: 'ECONNREFUSED', reason: 'connect ECONNREFUSED 127.0.0.1:1883', count: 12 },
    {
      kind: 'measurement',
      code: 'negative-delay',
      reason:
        'arrival before the scheduled send time: the producer and consumer clocks disagree (recorded as 0 ms)',
      count: 2,
    },
    { kind: 'connack', code: 5, reason: 'not authorized', count: 1 },
    { kind: 'consumer', code: 'disconnected', reason: 'connection closed', count: 1 },
  ]);
  // deltas, not totals: the next interval has only its own
  const q = series.add(
    interval(agg, { t: T0 + 2000, engineErrors: [['connect', 'ECONNREFUSED', 'connect ECONNREFUSED', 3]] }),
    FLEET,
  );
  assert.deepEqual(q.errors, [
    { kind: 'connect', code: 'ECONNREFUSED', reason: 'connect ECONNREFUSED', count: 3 },
  ]);
  // the run's totals (summary.errors) still add up every interval
  const connect = agg.errors().find((e) => e.kind === 'connect');
  assert.equal(connect?.count, 15);
  assert.equal(agg.errors().find((e) => e.kind === 'measurement')?.count, 2);
});

test('interval errors: secrets redacted, at most MAX_POINT_ERRORS entries with the rest summed as "other"', () => {
  const agg = new Aggregator();
  const secret = 'mqtt://alice:hunter2@broker.example:1883';
  const many: Array<[string, number | string, string, number]> = Array.from({ length: 30 }, (_, i) => [
    'puback',
    i + 1,
    `refused (${i + 1})`,
    100 - i,
  ]);
  const f = interval(agg, {
    t: T0 + 1000,
    engineErrors: [['connect', 'EPROTO', `could not reach ${secret}`, 1000], ...many],
  });
  const errors = intervalErrors(f);
  assert.equal(errors.length, MAX_POINT_ERRORS);
  assert.equal(errors[0]?.reason, 'could not reach mqtt://alice:***@broker.example:1883');
  assert.ok(!JSON.stringify(errors).includes('hunter2'));
  const other = errors.at(-1);
  // 31 entries: 19 kept as they are, 12 summed
  assert.equal(other?.kind, 'other');
  assert.equal(other?.code, 12);
  assert.equal(
    other?.count,
    many.slice(18).reduce((n, e) => n + e[3], 0),
  );
  const shown = errors.reduce((n, e) => n + e.count, 0);
  assert.equal(shown, 1000 + many.reduce((n, e) => n + e[3], 0), 'nothing dropped from the counts');
});

/** The `data:` points of an SSE stream, read until `n` arrived. */
async function streamPoints(
  url: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<DashboardPoint[]> {
  const controller = new AbortController();
  const res = await fetch(new URL('/api/stream', url), { headers, signal: controller.signal });
  const decoder = new TextDecoder();
  let text = '';
  const got: DashboardPoint[] = [];
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      got.length = 0;
      for (const block of text.split('\n\n')) {
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data && !block.includes('event: ')) got.push(JSON.parse(data.slice(6)) as DashboardPoint);
      }
      if (got.length >= n) break;
    }
  } finally {
    controller.abort();
  }
  return got;
}

test('stream history replay: a new tab and a reconnecting one get the new figures and the errors', async () => {
  const s = toScenario(scenarioInput.parse({ devices: 10, runTime: '30s' }), 'web-health');
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  try {
    const agg = new Aggregator();
    d.listener.start?.({ runId: s.runId, url: 'mqtt://127.0.0.1:1883', dir: '/tmp/x' });
    for (let i = 1; i <= 4; i++) {
      d.listener.interval?.(
        interval(agg, {
          t: T0 + i * 1000,
          lagMs: [i],
          counts: { reconnects: i === 3 ? 7 : 0, dropped: i === 2 ? 9 : 0 },
          ...(i >= 2
            ? { engineErrors: [['disconnect', 'connection-lost', 'connection lost', i] as const] }
            : {}),
        } as Fake),
      );
    }
    const all = await streamPoints(d.url, 4);
    assert.deepEqual(
      all.map((p) => [p.seq, p.droppedPerSec, p.reconnectsPerSec, p.errors?.[0]?.count ?? 0]),
      [
        [1, 0, 0, 0],
        [2, 9, 0, 2],
        [3, 0, 7, 3],
        [4, 0, 0, 4],
      ],
    );
    assert.ok(all.every((p) => typeof p.scheduleLagP99 === 'number' && p.cpuPercent === 41.3));
    const missed = await streamPoints(d.url, 2, { 'Last-Event-ID': '2' });
    assert.deepEqual(
      missed.map((p) => [p.seq, p.errors?.[0]?.kind]),
      [
        [3, 'disconnect'],
        [4, 'disconnect'],
      ],
    );
  } finally {
    await d.close();
  }
});

test('page: a host for each of the report charts, the errors log; the script draws them', () => {
  const html = renderPage({
    boot: {
      runId: 'r',
      version: 't',
      broker: 'b',
      devices: 1,
      spawnRate: 1,
      runTimeMs: 1000,
      intervalMs: 1000,
      qos: 1,
      mqttVersion: '3.1.1',
      consumer: 'mqtt',
      thresholdUnits: {},
      scenario: [],
      maxPoints: 10,
    },
    nonce: 'n',
    uplotJs: '',
    uplotCss: '',
  });
  for (const id of ['devices', 'rates', 'e2e', 'ack', 'bytes', 'lag', 'loss', 'connections', 'generator']) {
    assert.match(html, new RegExp(`id="chart-${id}"`));
    assert.match(CLIENT_JS, new RegExp(`id: '${id}'`));
  }
  assert.match(html, /<section class="panel errors-panel" id="errors-panel" hidden>/);
  assert.match(html, /<table class="events errors" id="error-log">/);
  assert.match(CLIENT_JS, /MAX_ERROR_ROWS = 200/);
  assert.doesNotThrow(() => new Function(CLIENT_JS));
});
