import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { anchorClocks, type TimeSources, WallClock } from '../../src/clock.js';

/**
 * A simulated machine: true time advances by `stepMs` on every clock read (a read costs time), the realtime clock
 * shows whole ms (like Date.now()) of true time plus `realShiftMs` (a step of the system clock changes it), and
 * the monotonic clock shows true time from this process's own origin (like performance.now()).
 */
class SimulatedTime implements TimeSources {
  static readonly EPOCH = 1_800_000_000_000;
  /** true time since EPOCH, ms */
  elapsedMs = 0.3217;
  realShiftMs = 0;
  stepMs = 0.00005;
  /** extra ms added at the n-th read (a preempted thread), by read number */
  readonly stalls = new Map<number, number>();
  reads = 0;
  frozenRealtime: number | undefined;

  constructor(private readonly monoOriginMs = 0) {}

  private tick(): void {
    this.reads++;
    this.elapsedMs += this.stepMs + (this.stalls.get(this.reads) ?? 0);
  }
  /** the true wall time now, ms since epoch (what a perfect clock would read) */
  trueMs(): number {
    return SimulatedTime.EPOCH + this.elapsedMs + this.realShiftMs;
  }
  realtimeMs(): number {
    this.tick();
    return this.frozenRealtime ?? SimulatedTime.EPOCH + Math.floor(this.elapsedMs + this.realShiftMs);
  }
  monotonicMs(): number {
    this.tick();
    return this.elapsedMs - this.monoOriginMs;
  }
  /** let true time pass without reading a clock */
  wait(ms: number): void {
    this.elapsedMs += ms;
  }
}

// the wall time of the sim's monotonic reading `m`, if offset is right: EPOCH + elapsed + shift
const trueOffset = (sim: SimulatedTime, monoOriginMs: number): number =>
  SimulatedTime.EPOCH + monoOriginMs + sim.realShiftMs;

describe('anchorClocks: the monotonic clock tied to the realtime tick', () => {
  test('finds the offset to within its stated uncertainty, far below a millisecond', () => {
    const sim = new SimulatedTime(123.456);
    const a = anchorClocks(sim);
    assert.ok(a.uncertaintyMs <= 0.0002, `uncertainty ${a.uncertaintyMs}`);
    assert.ok(
      Math.abs(a.offsetMs - trueOffset(sim, 123.456)) <= a.uncertaintyMs + 1e-9,
      `offset off by ${a.offsetMs - trueOffset(sim, 123.456)} ms`,
    );
  });

  test('an edge caught across a stall is retried; the tight one is kept', () => {
    // where the first edge is caught on an undisturbed run
    const plain = new SimulatedTime(7);
    anchorClocks(plain);
    const firstEdgeAt = plain.reads;
    // the same run, preempted for 50 µs just before that edge: the first edge is loose
    const sim = new SimulatedTime(7);
    sim.stalls.set(firstEdgeAt - 4, 0.05);
    const a = anchorClocks(sim, 0.005);
    assert.ok(sim.reads > firstEdgeAt + 1000, 'spun for a second edge');
    assert.ok(a.uncertaintyMs <= 0.0002, `uncertainty ${a.uncertaintyMs}`);
    assert.ok(Math.abs(a.offsetMs - trueOffset(sim, 7)) <= a.uncertaintyMs + 1e-9);

    const stalled = new SimulatedTime(7);
    for (let n = 1; n < 200_000; n++) stalled.stalls.set(n, 0.02); // every read preempted: no tight edge at all
    const b = anchorClocks(stalled, 0.005, 3);
    assert.ok(b.uncertaintyMs > 0.005, 'keeps the best of the loose edges');
    assert.ok(Math.abs(b.offsetMs - trueOffset(stalled, 7)) <= b.uncertaintyMs + 1e-9);
  });

  test('a realtime clock that never ticks: a whole-ms anchor, no endless spin', () => {
    const sim = new SimulatedTime(0);
    sim.frozenRealtime = SimulatedTime.EPOCH;
    const a = anchorClocks(sim);
    assert.equal(a.uncertaintyMs, 0.5);
    assert.ok(sim.reads < 1_000_000, `${sim.reads} reads`);
  });
});

describe('WallClock', () => {
  test('two processes with different monotonic origins read the same wall time to < 1 µs', () => {
    const sim = new SimulatedTime(0);
    const p1 = new WallClock({
      realtimeMs: () => sim.realtimeMs(),
      monotonicMs: () => sim.monotonicMs() - 1000,
    });
    const p2 = new WallClock({
      realtimeMs: () => sim.realtimeMs(),
      monotonicMs: () => sim.monotonicMs() - 31.7,
    });
    sim.wait(123.4567);
    const a = p1.now();
    const b = p2.now();
    assert.ok(Math.abs(b - a) < 0.001, `${b - a} ms apart`);
    assert.ok(Math.abs(b - sim.trueMs()) < 0.001);
  });

  test('follows a step of the realtime clock at its next check, and only then', () => {
    const sim = new SimulatedTime(50);
    const clock = new WallClock(sim, { checkEveryMs: 1000 });
    sim.wait(10);
    const before = clock.now();
    assert.ok(Math.abs(before - sim.trueMs()) < 0.001);
    sim.realShiftMs = 3.5; // the system clock is stepped forward (settimeofday, NTP step)
    sim.wait(10);
    assert.ok(Math.abs(clock.now() - (sim.trueMs() - 3.5)) < 0.001, 'monotonic until the next check');
    assert.equal(clock.reanchors, 0);
    sim.wait(1000);
    assert.ok(Math.abs(clock.now() - sim.trueMs()) < 0.001, 're-anchored to the stepped clock');
    assert.equal(clock.reanchors, 1);
    sim.realShiftMs = 3.5 - 2; // and back
    sim.wait(1001);
    assert.ok(Math.abs(clock.now() - sim.trueMs()) < 0.001);
    assert.equal(clock.reanchors, 2);
  });

  test('does not re-anchor while it agrees with the realtime clock', () => {
    const sim = new SimulatedTime(0);
    const clock = new WallClock(sim, { checkEveryMs: 100 });
    let last = 0;
    for (let i = 0; i < 50; i++) {
      sim.wait(37.3);
      const t = clock.now();
      assert.ok(t > last, 'monotonic');
      last = t;
    }
    assert.equal(clock.reanchors, 0);
  });
});
