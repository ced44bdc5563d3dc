import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/clock.js';
import { mergeHealth, WorkerHealth } from '../../src/run/worker-health.js';
import type { GeneratorHealth } from '../../src/run/worker-protocol.js';
import { newHistogram, recordMs } from '../../src/stats/histogram.js';

/**
 * A worker of `run --workers K` judges its own saturation with the run's one rule (SaturationRule): per interval
 * (one a second), on its own CPU, event-loop lag and schedule lag. Fake time and a scripted monitor: each sample is
 * the next figure of the script.
 */

interface Second {
  cpu?: number;
  loopLag?: number;
  /** schedule lag of every message the worker wrote in that second (ms) */
  scheduleLag?: number;
}

function worker(script: readonly Second[]) {
  const clock = new FakeClock();
  let n = 0;
  const monitor = {
    cpuPercentPeak: 0,
    // the whole-run event-loop p99 over the limit: the old per-process rule said saturated on this alone
    eventLoopLagP99: 250,
    begin() {},
    sample: () => {
      const s = script[n++] ?? {};
      return { cpuPercent: s.cpu ?? 10, eventLoopLagP99Ms: s.loopLag ?? 1 };
    },
  };
  const health = new WorkerHealth(monitor, () => clock.now());
  /** Runs the script's seconds as the worker does: a push every 200 ms, each adding the schedule lag written since. */
  const run = (): GeneratorHealth => {
    health.begin();
    let last = health.health();
    for (let k = 0; k < script.length; k++) {
      for (let push = 0; push < 5; push++) {
        clock.advance(200);
        const h = newHistogram();
        const lag = script[k]?.scheduleLag;
        if (lag !== undefined) for (let m = 0; m < 10; m++) recordMs(h, lag);
        health.addScheduleLag(h);
        last = health.health();
      }
    }
    return last;
  };
  return { run, samples: () => n };
}

describe('a worker judges its own saturation by the one rule, interval by interval', () => {
  test('two hot intervals in a row: not saturated', () => {
    const w = worker([{ cpu: 95 }, { cpu: 97 }, {}, {}]);
    assert.equal(w.run().saturated, false);
  });

  test('three hot intervals in a row: saturated, and it stays so for the run', () => {
    const w = worker([{}, { cpu: 95 }, { cpu: 97 }, { cpu: 92 }, {}, {}]);
    const h = w.run();
    assert.equal(h.saturated, true);
    assert.equal(h.cpuPercent, 10, 'the latest interval is calm again');
    assert.equal(h.saturatedNow, false, 'and so is the rule now');
    assert.equal(h.saturatedReason, undefined);
  });

  test('saturated now, with the reason, while the hot intervals last (the parent logs it as the run event)', () => {
    const h = worker([{}, { cpu: 95 }, { cpu: 97 }, { cpu: 92 }]).run();
    assert.equal(h.saturatedNow, true);
    assert.equal(h.saturatedReason, 'CPU up to 97% (3 s in a row)');
  });

  test('one interval per second, not per push (5 pushes a second)', () => {
    const w = worker([{}, {}, {}]);
    w.run();
    assert.equal(w.samples(), 3);
  });

  test('a single interval with lag over 100 ms is a hiccup: not saturated', () => {
    assert.equal(worker([{}, { loopLag: 400 }, {}, {}]).run().saturated, false);
    assert.equal(worker([{}, { scheduleLag: 400 }, {}, {}]).run().saturated, false);
  });

  test('hot intervals broken by a calm one: not saturated', () => {
    assert.equal(worker([{ cpu: 95 }, { cpu: 95 }, {}, { cpu: 95 }, { cpu: 95 }]).run().saturated, false);
  });

  test('its own schedule lag counts: three seconds of messages written 150 ms late', () => {
    const h = worker([{ scheduleLag: 150 }, { scheduleLag: 150 }, { scheduleLag: 150 }]).run();
    assert.equal(h.saturated, true);
  });

  test('nothing is judged before the load starts', () => {
    const clock = new FakeClock();
    let sampled = 0;
    const health = new WorkerHealth(
      {
        cpuPercentPeak: 0,
        eventLoopLagP99: 0,
        begin() {},
        sample: () => {
          sampled++;
          return { cpuPercent: 100, eventLoopLagP99Ms: 500 };
        },
      },
      () => clock.now(),
    );
    for (let k = 0; k < 20; k++) {
      clock.advance(200);
      assert.equal(health.health().saturated, false);
    }
    assert.equal(sampled, 0);
  });
});

describe("the workers' health together", () => {
  const calm: GeneratorHealth = {
    cpuPercent: 20,
    eventLoopLagP99Ms: 2,
    cpuPercentPeak: 40,
    eventLoopLagP99: 3,
    saturated: false,
  };

  test('one saturated worker makes the fleet saturated; the figures are the busiest', () => {
    const hot = { ...calm, cpuPercent: 50, cpuPercentPeak: 99, saturated: true };
    assert.deepEqual(mergeHealth([calm, hot, undefined]), {
      cpuPercent: 50,
      eventLoopLagP99Ms: 2,
      cpuPercentPeak: 99,
      eventLoopLagP99: 3,
      saturated: true,
    });
  });

  test('no worker saturated: not saturated', () => {
    assert.equal(mergeHealth([calm, calm]).saturated, false);
    assert.equal(mergeHealth([calm, calm]).saturatedNow, undefined);
  });

  test("a worker saturated now: the fleet is, with that worker's reason", () => {
    const now = { ...calm, saturated: true, saturatedNow: true, saturatedReason: 'why' };
    const m = mergeHealth([calm, now, { ...now, saturatedReason: 'other' }]);
    assert.equal(m.saturatedNow, true);
    assert.equal(m.saturatedReason, 'why');
  });
});
