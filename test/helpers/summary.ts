import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LatencySummary } from '../../src/stats/histogram.js';
import type { Summary } from '../../src/stats/summary.js';

/**
 * One summary.json (src/stats/summary.ts) for every test that needs a whole `Summary` without running anything.
 * The default is a consistent, passing run: 10 devices, one message a second each for 30 s, every message acked
 * and received once, 1 ms everywhere, no errors, no thresholds. A test overrides what it looks at; the nested
 * groups (scenario, devices, messages, latency, rates, generator) are merged one level deep, so
 * `summaryFixture({ messages: { lost: 3 } })` changes only `lost`. Arrays (errors, thresholds) are replaced.
 */

/** The same value at every percentile: for tests that do not look at the shape of a latency. */
export function flatLatency(ms: number, count = 1): LatencySummary {
  return { count, min: ms, mean: ms, p50: ms, p90: ms, p95: ms, p99: ms, p999: ms, max: ms };
}

/** A right-skewed latency around `p50`, as a real run shows one (p99 = 3.1 × p50, max = 7 × p50). */
export function spreadLatency(p50: number, count = 1000): LatencySummary {
  return {
    count,
    min: p50 / 3,
    mean: p50 * 1.1,
    p50,
    p90: p50 * 1.6,
    p95: p50 * 1.9,
    p99: p50 * 3.1,
    p999: p50 * 5,
    max: p50 * 7,
  };
}

type Group = 'scenario' | 'devices' | 'messages' | 'latency' | 'rates' | 'generator';

export type SummaryOverrides = Omit<Partial<Summary>, Group> & { [K in Group]?: Partial<Summary[K]> };

export function summaryFixture(over: SummaryOverrides = {}): Summary {
  const { scenario, devices, messages, latency, rates, generator, ...top } = over;
  const base: Summary = {
    runId: 'run-1',
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:00:30.000Z',
    fleetloadVersion: '0.1.0',
    scenario: {
      host: 'mqtt://localhost:1883',
      devices: 10,
      spawnRate: 5,
      runTimeMs: 30_000,
      intervalMs: 1000,
      qos: 1,
      mqttVersion: '3.1.1',
    },
    devices: { target: 10, connectedPeak: 10, connectFailures: 0, reconnects: 0 },
    messages: {
      scheduled: 300,
      sent: 300,
      acked: 300,
      failed: 0,
      unconfirmed: 0,
      received: 300,
      lost: 0,
      duplicated: 0,
      reordered: 0,
      foreign: 0,
    },
    latency: {
      e2e: flatLatency(1, 300),
      publishAck: flatLatency(1, 300),
      connect: flatLatency(1, 10),
      scheduleLag: flatLatency(1, 300),
    },
    rates: { sentPerSec: 10, receivedPerSec: 10 },
    generator: { cpuPercentPeak: 10, eventLoopLagP99: 1, saturated: false },
    errors: [],
    thresholds: [],
    passed: true,
  };
  // keys keep the order of summary.json (src/stats/summary.ts); a group's override merges into its default
  return {
    ...base,
    ...top,
    scenario: { ...base.scenario, ...scenario },
    devices: { ...base.devices, ...devices },
    messages: { ...base.messages, ...messages },
    latency: { ...base.latency, ...latency },
    rates: { ...base.rates, ...rates },
    generator: { ...base.generator, ...generator },
  };
}

/** summary.json of the one results folder in `out` (a CLI run with `--out out`). */
export function summaryIn(out: string): Summary {
  const [runId] = readdirSync(out);
  assert.ok(runId, `a results folder in ${out}`);
  return JSON.parse(readFileSync(join(out, runId, 'summary.json'), 'utf8')) as Summary;
}
