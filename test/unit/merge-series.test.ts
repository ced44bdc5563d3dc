import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeSeries } from '../../src/run/merge-series.js';
import type { IntervalLatency, IntervalRecord } from '../../src/stats/summary.js';

const T0 = Date.parse('2026-11-30T08:00:00.000Z');

function lat(count: number, p50: number, p99: number): IntervalLatency {
  return { count, p50, p90: p99, p95: p99, p99, max: p99 };
}

function rec(
  endMs: number,
  devices: number,
  sent: number,
  received: number,
  o: Partial<IntervalRecord> = {},
) {
  const r: IntervalRecord = {
    time: new Date(endMs).toISOString(),
    elapsedMs: 0,
    durationMs: 1000,
    phase: 'steady',
    devicesConnected: devices,
    counters: { sent, received },
    gaps: 0,
    cpuPercent: 10,
    eventLoopLagP99Ms: 1,
    latency: {
      e2e: lat(received, 2, 5),
      publishAck: lat(sent, 1, 3),
      connect: lat(0, 0, 0),
      scheduleLag: lat(sent, 0.1, 0.5),
    },
    ...o,
  };
  return r;
}

test('segments peaking at different seconds: the peak is the largest sum at one second, not the sum of peaks', () => {
  // segment A cuts at .250, B at .700 (their own phases); A's fleet leaves as B's arrives
  const a = [rec(T0 + 1250, 10, 10, 0), rec(T0 + 2250, 10, 10, 0), rec(T0 + 3250, 0, 0, 0)];
  const b = [rec(T0 + 1700, 0, 0, 0), rec(T0 + 2700, 5, 5, 0), rec(T0 + 3700, 10, 10, 0)];
  const m = mergeSeries(
    [
      { intervals: a, producer: true, consumer: false },
      { intervals: b, producer: true, consumer: false },
    ],
    T0,
  );
  assert.ok(m);
  assert.equal(m.connectedPeak, 15, 'A 10 + B 5 at the second second; the sum of peaks would say 20');
  assert.deepEqual(
    m.rows.map((r) => r.devicesConnected),
    [10, 15, 10],
  );
  assert.equal(
    m.rows.reduce((s, r) => s + r.sent, 0),
    35,
    'every counted message in exactly one second',
  );
  assert.deepEqual(
    m.intervals.map((r) => r.time),
    [T0 + 1700, T0 + 2700, T0 + 3700].map((t) => new Date(t).toISOString()),
    'a second ends at its last member',
  );
  assert.equal(m.intervals[0]?.elapsedMs, 1700);
});

test('a process whose cuts drift across a second boundary never has two intervals in one second', () => {
  // cuts at .990, then 1.010 s later (.000), then .995: rounding on the wall clock alone would collide
  const a = [rec(T0 + 990, 1, 1, 0), rec(T0 + 2000, 1, 1, 0), rec(T0 + 2995, 1, 1, 0)];
  const m = mergeSeries([{ intervals: a, producer: true, consumer: false }], T0);
  assert.equal(m?.rows.length, 3);
  assert.deepEqual(
    m?.rows.map((r) => r.sent),
    [1, 1, 1],
  );
});

test('latency per second: counts add up, p50 count-weighted, p99 and max the largest (an upper bound)', () => {
  const p = rec(T0 + 1050, 5, 10, 0);
  const c1 = rec(T0 + 1100, 0, 0, 30, { latency: { ...p.latency, e2e: lat(30, 2, 9) } });
  const c2 = rec(T0 + 1200, 0, 0, 10, { latency: { ...p.latency, e2e: lat(10, 6, 40) } });
  const m = mergeSeries(
    [
      { intervals: [p], producer: true, consumer: false },
      { intervals: [c1], producer: false, consumer: true },
      { intervals: [c2], producer: false, consumer: true },
    ],
    T0,
  );
  const e2e = m?.intervals[0]?.latency.e2e;
  assert.equal(m?.intervals[0]?.devicesConnected, 5, 'consumers connect no devices');
  assert.equal(e2e?.count, 40 + 0, 'the producer has no e2e samples');
  assert.equal(e2e?.p50, 3);
  assert.equal(e2e?.p99, 40);
  assert.equal(m?.rows[0]?.received, 40);
});

test('gaps: one consumer’s holes are the series’ gaps; consumers that split a stream give 0', () => {
  const one = mergeSeries(
    [{ intervals: [rec(T0 + 1000, 0, 0, 5, { gaps: 3 })], producer: false, consumer: true }],
    T0,
  );
  assert.equal(one?.rows[0]?.lost, 3);
  const two = mergeSeries(
    [
      { intervals: [rec(T0 + 1000, 0, 0, 5, { gaps: 3 })], producer: false, consumer: true },
      { intervals: [rec(T0 + 1000, 0, 0, 5, { gaps: 4 })], producer: false, consumer: true },
    ],
    T0,
  );
  assert.equal(two?.rows[0]?.lost, 0);
});

test('a device count carries over a second a producer has no interval in; no series at all → undefined', () => {
  const a = [rec(T0 + 1000, 4, 4, 0), rec(T0 + 3000, 4, 4, 0)];
  const b = [rec(T0 + 1000, 6, 6, 0), rec(T0 + 2000, 6, 6, 0), rec(T0 + 3000, 6, 6, 0)];
  const m = mergeSeries(
    [
      { intervals: a, producer: true, consumer: false },
      { intervals: b, producer: true, consumer: false },
    ],
    T0,
  );
  assert.deepEqual(
    m?.rows.map((r) => r.devicesConnected),
    [10, 10, 10],
  );
  assert.equal(mergeSeries([{ intervals: [], producer: true, consumer: false }], T0), undefined);
});
