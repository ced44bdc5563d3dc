import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { describePlan } from '../../src/cli/commands.js';
import { FakeClock } from '../../src/clock.js';
import { Engine } from '../../src/engine/engine.js';
import { loadScenario } from '../../src/scenario/load.js';
import {
  deviceAtRank,
  devicesAt,
  expectedMessages,
  GOLDEN,
  joinAtMs,
  joinedIn,
  joinOrder,
  joinRank,
  type PlanInput,
  phaseAt,
  plan,
  rankOf,
  segmentRange,
  segmentShare,
  stageTargetAt,
  targetAt,
} from '../../src/scenario/plan.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Stats } from '../../src/stats/stats.js';
import { flush, MemBroker } from './fakes/mem-broker.js';

function scenario(over: Record<string, unknown>) {
  return toScenario(scenarioInput.parse({ host: 'mqtt://mem', tick: '0ms', ...over }), 'r1');
}

/**
 * Runs the engine over the in-memory broker in fake time to past the run's end and returns what it scheduled.
 * Steps of 5 ms: joins in these scenarios fall on step ends, so each device connects at its planned instant.
 */
async function engineScheduled(
  over: Record<string, unknown>,
  segment?: { index: number; count: number },
): Promise<{ scheduled: number; engine: Engine }> {
  const clock = new FakeClock();
  const broker = new MemBroker();
  const stats = new Stats(clock.now());
  const s = scenario(over);
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats,
    clock,
    openTransport: broker.factory,
    ...(segment ? { segment } : {}),
  });
  engine.start();
  clock.advance(0);
  await flush();
  for (let t = 0; t < s.runTimeMs + 500; t += 5) {
    clock.advance(5);
    await flush();
  }
  engine.stop();
  return { scheduled: stats.total.scheduled, engine };
}

const cases: Array<{
  name: string;
  over: Record<string, unknown>;
  segment?: { index: number; count: number };
}> = [
  { name: 'ramp', over: { devices: 20, spawnRate: 100, runTime: '2s', interval: '100ms' } },
  {
    name: 'ramp longer than the run',
    over: { devices: 30, spawnRate: 10, runTime: '2s', interval: '250ms' },
  },
  {
    name: 'stages up, plateau, down',
    over: { stages: ['1s:10', '1s:10', '1s:0'], spawnRate: 200, interval: '100ms' },
  },
  {
    name: 'stages down then up again (devices leave and come back)',
    over: {
      stages: ['500ms:8', '1s:8', '500ms:3', '500ms:3', '500ms:12'],
      spawnRate: 200,
      interval: '100ms',
    },
  },
  {
    name: 'stages faster than the spawn rate',
    over: { stages: ['250ms:20', '1s:20'], spawnRate: 20, interval: '100ms' },
  },
  {
    name: 'messagesPerDevice',
    over: { devices: 12, spawnRate: 50, runTime: '2s', interval: '100ms', messagesPerDevice: 5 },
  },
  {
    name: 'segment 1 of 3',
    over: { devices: 20, spawnRate: 100, runTime: '2s', interval: '100ms' },
    segment: { index: 1, count: 3 },
  },
  {
    name: 'segment 2 of 3 with stages',
    over: { stages: ['1s:30', '1s:30', '500ms:10'], spawnRate: 300, interval: '100ms' },
    segment: { index: 2, count: 3 },
  },
];

for (const c of cases) {
  test(`expectedMessages is what the engine schedules in fake time: ${c.name}`, async () => {
    const p = plan(scenario(c.over), c.segment);
    const { scheduled, engine } = await engineScheduled(c.over, c.segment);
    assert.ok(scheduled > 0, 'the engine scheduled something');
    assert.equal(expectedMessages(p), scheduled);
    assert.equal(engine.plan.first, p.first);
    assert.equal(engine.plan.count, p.count);
  });
}

test('the fleet follows the plan: devices connected in the engine = devicesAt, step by step (stages)', async () => {
  const over = { stages: ['1s:10', '1s:10', '500ms:4', '500ms:8'], spawnRate: 200, interval: '100ms' };
  const s = scenario(over);
  const p = plan(s);
  const clock = new FakeClock();
  const broker = new MemBroker();
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats: new Stats(clock.now()),
    clock,
    openTransport: broker.factory,
  });
  engine.start();
  clock.advance(0);
  await flush();
  const seen: string[] = [];
  for (let t = 5; t < s.runTimeMs; t += 5) {
    clock.advance(5);
    await flush();
    if (engine.connectedNow !== devicesAt(p, t))
      seen.push(`t=${t}: ${engine.connectedNow} vs ${devicesAt(p, t)}`);
  }
  engine.stop();
  assert.deepEqual(seen, []);
});

test('without stages: the device at place r of the join order joins at r / spawnRate; msg/s at full fleet; ramp then steady then drain', () => {
  const p = plan({ devices: 100, spawnRate: 50, runTimeMs: 30_000, intervalMs: 1000 });
  // bit-reversal order: 0, 64, 32, 96, 16, 80, 48, (112 is not a device) 8, …, the last at 99 × 20 ms
  assert.deepEqual(
    [0, 64, 32, 96, 16, 80, 48, 8].map((d) => joinAtMs(p, d)),
    [0, 20, 40, 60, 80, 100, 120, 140],
  );
  assert.equal(joinAtMs(p, deviceAtRank(100, 99)), 1980);
  assert.deepEqual(
    [0, 19, 20, 1980, 1981, 5000].map((t) => devicesAt(p, t)),
    [1, 1, 2, 100, 100, 100],
  );
  assert.equal(p.msgPerSecAtFullFleet, 100);
  assert.deepEqual(
    [0, 1979, 1980, 29_999, 30_000, 40_000].map((t) => phaseAt(p, t)),
    ['ramp', 'ramp', 'steady', 'steady', 'drain', 'drain'],
  );
  // slots φ_k + n × 1 s from each device's join until 30 s
  let brute = 0;
  for (let k = 0; k < 100; k++) {
    const phase = ((k * GOLDEN) % 1) * 1000;
    for (let n = 0; phase + n * 1000 < 30_000; n++) if (phase + n * 1000 >= rankOf(100, k) * 20) brute++;
  }
  assert.equal(expectedMessages(p), brute);
});

test('stages: the live phase is ramp while a stage moves the fleet, steady on a plateau (issue 13)', () => {
  const p = plan({
    devices: 100,
    spawnRate: 1000,
    runTimeMs: 90_000,
    intervalMs: 1000,
    stages: [
      { durationMs: 30_000, devices: 100 },
      { durationMs: 30_000, devices: 100 },
      { durationMs: 30_000, devices: 0 },
    ],
  });
  assert.deepEqual(
    // the last device joins at 30 s exactly, so the plateau is steady from its first instant
    [0, 15_000, 29_999, 30_000, 31_000, 59_999, 60_000, 75_000, 89_999, 90_000].map((t) => phaseAt(p, t)),
    ['ramp', 'ramp', 'ramp', 'steady', 'steady', 'steady', 'ramp', 'ramp', 'ramp', 'drain'],
  );
  assert.equal(devicesAt(p, 15_000), 50);
  assert.equal(devicesAt(p, 45_000), 100);
  assert.equal(devicesAt(p, 75_000), 50);
  assert.equal(targetAt(p, 75_000), 50);
});

test('a stage run is not predicted as if the whole fleet ramped at the spawn rate (issue 13: 4,800 vs 4,116)', () => {
  const s = { devices: 100, spawnRate: 50, runTimeMs: 60_000, intervalMs: 1000 };
  const staged = {
    ...s,
    stages: [
      { durationMs: 30_000, devices: 100 },
      { durationMs: 30_000, devices: 100 },
    ],
  };
  const flat = expectedMessages(plan(s));
  const ramped = expectedMessages(plan(staged));
  // the stage ramps over 30 s: about half of that ramp's messages are missing compared with a 2 s spawn-rate ramp
  assert.ok(flat - ramped > 1300 && flat - ramped < 1600, `flat ${flat}, staged ${ramped}`);
});

test('stageTargetAt interpolates linearly from 0 through each stage', () => {
  const st = [
    { durationMs: 1000, devices: 100 },
    { durationMs: 2000, devices: 100 },
    { durationMs: 1000, devices: 20 },
  ];
  assert.deepEqual(
    [0, 500, 1000, 2500, 3500, 4000, 9000].map((t) => stageTargetAt(st, t)),
    [0, 50, 100, 100, 60, 20, 20],
  );
});

const fleet = fc.record({ devices: fc.integer({ min: 0, max: 5000 }), n: fc.integer({ min: 1, max: 64 }) });

test('segments: the union of N segments is exactly the fleet, disjoint, in order; shares of the spawn rate add up', () => {
  fc.assert(
    fc.property(fleet, ({ devices, n }) => {
      let next = 0;
      let rate = 0;
      for (let i = 0; i < n; i++) {
        const r = segmentRange(devices, { index: i, count: n });
        assert.equal(r.first, next, 'each segment starts where the previous ended');
        assert.ok(
          r.count >= Math.floor(devices / n) && r.count <= Math.ceil(devices / n),
          'sizes differ by ≤ 1',
        );
        next += r.count;
        const p = plan({ devices, spawnRate: 50, runTimeMs: 1000, intervalMs: 1000 }, { index: i, count: n });
        assert.deepEqual([p.first, p.count], [r.first, r.count]);
        rate += p.spawnRate;
      }
      assert.equal(next, devices);
      if (devices > 0) assert.ok(Math.abs(rate - 50) < 1e-9, `spawn rate shares add up to ${rate}`);
    }),
  );
});

test('the join order is bit reversal: rankOf, deviceAtRank and joinedIn agree with sorting the reversed ids', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 600 }), (devices) => {
      const rev = (d: number): number => {
        let r = 0;
        for (let b = 0; b < 24; b++) r = r * 2 + ((d >> b) & 1);
        return r;
      };
      const byRank = Array.from({ length: devices }, (_, d) => d).sort((a, b) => rev(a) - rev(b));
      for (const [r, d] of byRank.entries()) {
        assert.equal(rankOf(devices, d), r);
        assert.equal(deviceAtRank(devices, r), d);
      }
      const lo = Math.floor(devices / 3);
      const hi = Math.floor((2 * devices) / 3) + 1;
      for (let t = 0; t <= devices; t += 7) {
        const want = byRank.slice(0, t).filter((d) => d >= lo && d < Math.min(hi, devices)).length;
        assert.equal(joinedIn(devices, lo, Math.min(hi, devices), t), want);
      }
    }),
    { numRuns: 60 },
  );
});

test('segments: the join order is one permutation of the fleet, whatever N; at every fleet size the shares add up exactly', () => {
  fc.assert(
    fc.property(
      fc.record({ devices: fc.integer({ min: 1, max: 300 }), n: fc.integer({ min: 1, max: 20 }) }),
      ({ devices, n }) => {
        const base = { devices, spawnRate: 10, runTimeMs: 1000, intervalMs: 1000 };
        const segs = Array.from({ length: n }, (_, i) => plan(base, { index: i, count: n }));
        // each device's place is the one it has in the whole fleet (N = 1)
        for (const p of segs)
          for (let k = 0; k < p.count; k++) assert.equal(joinRank(p, k), rankOf(devices, p.first + k));
        const ranks = segs.flatMap((p) => Array.from(joinOrder(p).ranks));
        assert.deepEqual(
          [...ranks].sort((a, b) => a - b),
          Array.from({ length: devices }, (_, r) => r),
        );
        for (let t = 0; t <= devices; t++) {
          const shares = segs.map((p) => segmentShare(p, t));
          assert.equal(
            shares.reduce((a, b) => a + b, 0),
            t,
          );
          // each segment holds its share, within a few devices (bit reversal: ≤ log2 D)
          for (const [i, p] of segs.entries())
            assert.ok(
              Math.abs((shares[i] as number) - (t * p.count) / devices) <= Math.max(1, Math.log2(devices)),
            );
        }
      },
    ),
  );
});

const stageArb = fc.array(
  fc.record({
    durationMs: fc.integer({ min: 1, max: 20 }).map((k) => k * 250),
    devices: fc.integer({ min: 0, max: 60 }),
  }),
  { minLength: 1, maxLength: 4 },
);

test('segments: devices over time and stage targets of N segments add up to the whole fleet at every instant', () => {
  fc.assert(
    fc.property(stageArb, fc.integer({ min: 1, max: 8 }), fc.boolean(), (stages, n, staged) => {
      const devices = Math.max(1, ...stages.map((s) => s.devices));
      const runTimeMs = stages.reduce((t, s) => t + s.durationMs, 0);
      const input: PlanInput = {
        devices,
        spawnRate: 40,
        runTimeMs,
        intervalMs: 500,
        ...(staged ? { stages } : {}),
      };
      const whole = plan(input);
      const segs = Array.from({ length: n }, (_, i) => plan(input, { index: i, count: n }));
      for (let t = 0; t <= runTimeMs; t += 125) {
        assert.equal(
          segs.reduce((a, p) => a + targetAt(p, t), 0),
          targetAt(whole, t),
          `target at ${t}`,
        );
        if (!staged)
          assert.equal(
            segs.reduce((a, p) => a + devicesAt(p, t), 0),
            devicesAt(whole, t),
            `devices at ${t}`,
          );
      }
    }),
  );
});

test('expectedMessages = a slot-by-slot count of the plan (random stages, intervals, limits)', () => {
  fc.assert(
    fc.property(
      stageArb,
      fc.integer({ min: 20, max: 700 }),
      fc.integer({ min: 1, max: 400 }),
      fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
      (stages, intervalMs, spawnRate, messagesPerDevice) => {
        const devices = Math.max(1, ...stages.map((s) => s.devices));
        const runTimeMs = stages.reduce((t, s) => t + s.durationMs, 0);
        const p = plan({ devices, spawnRate, runTimeMs, intervalMs, stages, messagesPerDevice });
        // oracle: walk every slot of every device and ask whether the device is in the fleet then
        let brute = 0;
        for (let k = 0; k < devices; k++) {
          const phase = ((k * GOLDEN) % 1) * intervalMs;
          let sent = 0;
          let done = false;
          const r = rankOf(devices, k);
          for (const a of p.activations) {
            if (r < a.from || r >= a.to || done) continue;
            const join = a.atMs + (r - a.from) * a.gapMs;
            const end = Math.min(a.leaveMs, runTimeMs);
            if (join >= end) continue;
            for (let slot = phase; slot < end; slot += intervalMs) if (slot >= join) sent++;
            if (messagesPerDevice !== undefined) {
              sent = Math.min(sent, messagesPerDevice);
              done = true;
            }
          }
          brute += sent;
        }
        assert.equal(expectedMessages(p), brute);
      },
    ),
    { numRuns: 60 },
  );
});

test('a bad segment is refused with what is wrong', () => {
  const s = { devices: 10, spawnRate: 1, runTimeMs: 1000, intervalMs: 1000 };
  assert.throws(() => plan(s, { index: 3, count: 3 }), /segment index 3 must be an integer from 0 to 2/);
  assert.throws(() => plan(s, { index: 0, count: 0 }), /segment count 0 must be an integer ≥ 1/);
});

/** Every (device, seq, scheduled ts) a plan schedules, as `global:seq:ts`: an oracle walking each slot. */
function plannedMessages(p: ReturnType<typeof plan>): string[] {
  const out: string[] = [];
  for (let k = 0; k < p.count; k++) {
    const g = p.first + k;
    const r = rankOf(p.devices, g);
    const phase = ((g * GOLDEN) % 1) * p.intervalMs;
    let seq = 0;
    for (const a of [...p.activations].sort((x, y) => x.atMs - y.atMs)) {
      if (r < a.from || r >= a.to) continue;
      const join = a.atMs + (r - a.from) * a.gapMs;
      const end = Math.min(a.leaveMs, p.runTimeMs);
      if (join >= end) continue;
      let n = 0;
      for (let slot = phase; slot < end; slot += p.intervalMs) {
        if (slot < join) continue;
        if (p.messagesPerDevice !== undefined && n >= p.messagesPerDevice) break;
        n++;
        out.push(`${g}:${++seq}:${slot}`);
      }
      if (p.messagesPerDevice !== undefined) break; // a device with a limit is done when it leaves
    }
  }
  return out;
}

const segmentCase = (maxDevices: number) =>
  fc.record({
    devices: fc.integer({ min: 0, max: maxDevices }),
    n: fc.integer({ min: 1, max: 64 }),
    staged: fc.boolean(),
    ramps: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 4 }),
    spawnRate: fc.integer({ min: 1, max: 200_000 }),
    limit: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
  });

/** A plan input from a generated case: stages are percentages of the fleet, 1–3 s each. */
function segmentInput(c: {
  devices: number;
  staged: boolean;
  ramps: number[];
  spawnRate: number;
  limit: number | undefined;
}): PlanInput {
  const stages = c.ramps.map((pct, j) => ({
    durationMs: 1000 * (1 + (j % 3)),
    devices: Math.round((c.devices * pct) / 100),
  }));
  return {
    devices: c.devices,
    spawnRate: c.spawnRate,
    runTimeMs: c.staged ? stages.reduce((t, s) => t + s.durationMs, 0) : 3000,
    intervalMs: 700,
    messagesPerDevice: c.limit,
    ...(c.staged ? { stages } : {}),
  };
}

test('segments are exact (issue 10): the union of N segments schedules the very (device, seq, ts) set of the whole plan', () => {
  fc.assert(
    fc.property(segmentCase(3000), (c) => {
      const input = segmentInput({ ...c, spawnRate: Math.min(c.spawnRate, 3000) });
      const whole = plannedMessages(plan(input)).sort();
      const union = Array.from({ length: c.n }, (_, i) =>
        plannedMessages(plan(input, { index: i, count: c.n })),
      )
        .flat()
        .sort();
      assert.deepEqual(union, whole);
      assert.equal(
        whole.length,
        expectedMessages(plan(input)),
        'the oracle counts what expectedMessages does',
      );
    }),
    { numRuns: 40 },
  );
});

test('segments up to 10^6 devices and 64 segments: disjoint, covering, exact in sum, each at its share at every moment', () => {
  fc.assert(
    fc.property(segmentCase(1_000_000), (c) => {
      const input = segmentInput(c);
      const whole = plan(input);
      const segs = Array.from({ length: c.n }, (_, i) => plan(input, { index: i, count: c.n }));
      // disjoint and covering: the ranges tile [0, D) and their places in the join order are a permutation of it
      const seen = new Uint8Array(c.devices);
      let next = 0;
      for (const p of segs) {
        assert.equal(p.first, next);
        next += p.count;
        for (const r of joinOrder(p).ranks) {
          assert.equal(seen[r], 0, `place ${r} twice`);
          seen[r] = 1;
        }
      }
      assert.equal(next, c.devices);
      assert.ok(seen.every((x) => x === 1));
      // the same devices join and leave at the same instants: the sums are exact at every moment
      assert.equal(
        segs.reduce((a, p) => a + expectedMessages(p), 0),
        expectedMessages(whole),
      );
      const bound = Math.max(1, Math.log2(c.devices));
      for (let t = 0; t < whole.runTimeMs; t += 97) {
        const all = devicesAt(whole, t);
        const target = targetAt(whole, t);
        assert.equal(
          segs.reduce((a, p) => a + devicesAt(p, t), 0),
          all,
        );
        assert.equal(
          segs.reduce((a, p) => a + targetAt(p, t), 0),
          target,
        );
        // each segment ramps at its share at the same time: its fleet is its share of the whole one
        const joining = whole.activations.filter(
          (a) => a.atMs <= t && t < a.leaveMs && a.atMs + (a.to - a.from - 1) * a.gapMs > t,
        ).length;
        for (const p of segs) {
          const share = p.count / Math.max(1, c.devices);
          assert.ok(Math.abs(targetAt(p, t) - target * share) <= bound, `target share at ${t}`);
          assert.ok(
            Math.abs(devicesAt(p, t) - all * share) <= bound * (1 + 2 * joining),
            `segment ${p.segment.index}/${c.n} at ${t}: ${devicesAt(p, t)} of ${all} (share ${share})`,
          );
        }
      }
    }),
    { numRuns: 12 },
  );
});

test('the share of any prefix of the join order is within a few devices of proportional (measured)', () => {
  let worst = 0;
  for (const devices of [1000, 99_991, 1_000_000]) {
    for (const n of [2, 3, 7, 64]) {
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 4))) {
        const p = plan({ devices, spawnRate: 1, runTimeMs: 1, intervalMs: 1 }, { index: i, count: n });
        for (let t = 0; t <= devices; t += Math.ceil(devices / 997)) {
          worst = Math.max(worst, Math.abs(segmentShare(p, t) - (t * p.count) / devices));
        }
      }
    }
  }
  assert.ok(worst <= 6, `worst deviation ${worst} devices`);
});

test('--segment i/N, FLEETLOAD_SEGMENT, or an Indexed Job (JOB_COMPLETION_INDEX + FLEETLOAD_SEGMENTS) set the scenario segment; the engine and fleetload plan take it', () => {
  const load = (flags: Record<string, unknown>, env: Record<string, string> = {}) =>
    loadScenario({ flags: { devices: 100, ...flags }, env, cwd: process.cwd() }).scenario;
  assert.deepEqual(load({}).segment, { index: 0, count: 1 });
  assert.deepEqual(load({ segment: '1/3' }).segment, { index: 1, count: 3 });
  assert.deepEqual(load({}, { FLEETLOAD_SEGMENT: '2/4' }).segment, { index: 2, count: 4 });
  assert.deepEqual(load({}, { JOB_COMPLETION_INDEX: '5', FLEETLOAD_SEGMENTS: '8' }).segment, {
    index: 5,
    count: 8,
  });
  // the flag wins over the environment; an Indexed Job's index alone (no FLEETLOAD_SEGMENTS) is not a segment
  assert.deepEqual(load({ segment: '0/2' }, { JOB_COMPLETION_INDEX: '5', FLEETLOAD_SEGMENTS: '8' }).segment, {
    index: 0,
    count: 2,
  });
  assert.deepEqual(load({}, { JOB_COMPLETION_INDEX: '3' }).segment, { index: 0, count: 1 });
  const s = load({ segment: '1/3', spawnRate: 30 });
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats: new Stats(0),
    clock: new FakeClock(),
  });
  assert.deepEqual([engine.plan.first, engine.plan.count, engine.plan.spawnRate], [33, 33, 9.9]);
  const text = describePlan(s);
  assert.match(text, /segment {7}1\/3: devices 33…65 \(33 of 100\), 9\.9\/s of the spawn rate/);
  assert.match(
    text,
    new RegExp(`${expectedMessages(plan(s, s.segment))} scheduled in 30s \\(segment 1/3\\)`),
  );
  // a segment with no devices is valid
  assert.match(describePlan(load({ devices: 2, segment: '0/3' })), /segment {7}0\/3: no devices/);
});
