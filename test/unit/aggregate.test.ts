import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/clock.js';
import { Consumer } from '../../src/consumer/consumer.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import { Stats } from '../../src/stats/stats.js';

test('negative delays are counted and reported in errors, recorded as 0, never dropped', () => {
  const clock = new FakeClock(1_000_000);
  const stats = new Stats(clock.now());
  const c = new Consumer({ stats, clock, runId: 'r' });
  const msg = (seq: number, ts: number) =>
    Buffer.from(JSON.stringify({ deviceId: 'd', seq, ts, runId: 'r' }));
  c.onMessage(msg(1, 1_000_000 - 5), 1_000_000); // 5 ms delay
  c.onMessage(msg(2, 1_000_000 + 7), 1_000_000); // arrives 7 ms "before" it was scheduled
  const a = new Aggregator();
  const m = a.merge([stats.snapshot(clock.now())]);
  assert.equal(m.histograms.e2e.totalCount, 2, 'both delays are in the histogram');
  assert.equal(a.total.negativeDelay, 1);
  const e = a.errors().find((x) => x.code === 'negative-delay');
  assert.ok(e && e.count === 1 && e.kind === 'measurement', JSON.stringify(a.errors()));
});
