import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FleetloadError } from '../../src/errors.js';
import type { LatencySummary } from '../../src/stats/histogram.js';
import type { Summary } from '../../src/stats/summary.js';
import {
  evaluateThresholds,
  parseThreshold,
  parseThresholds,
  THRESHOLD_METRICS,
  THRESHOLD_OPS,
  type Threshold,
} from '../../src/stats/thresholds.js';
import { type SummaryOverrides, summaryFixture } from '../helpers/summary.js';

const lat = (base: number): LatencySummary => ({
  count: base * 1000,
  min: base + 0.1,
  mean: base + 0.2,
  p50: base + 0.5,
  p90: base + 0.9,
  p95: base + 0.95,
  p99: base + 0.99,
  p999: base + 0.999,
  max: base + 1,
});

function summary(patch: SummaryOverrides = {}): Summary {
  return summaryFixture({
    scenario: { devices: 100, spawnRate: 50 },
    devices: { target: 100, connectedPeak: 98, connectFailures: 2, reconnects: 3 },
    latency: { e2e: lat(10), publishAck: lat(20), connect: lat(30), scheduleLag: lat(40) },
    rates: { sentPerSec: 33.3, receivedPerSec: 33.4 },
    generator: { cpuPercentPeak: 50, eventLoopLagP99: 2 },
    errors: [
      { kind: 'connack', code: 5, reason: 'not authorized', count: 2 },
      { kind: 'puback', code: 131, reason: 'implementation specific error', count: 3 },
    ],
    ...patch,
    messages: {
      scheduled: 1010,
      sent: 1000,
      acked: 990,
      failed: 4,
      unconfirmed: 6,
      received: 1001,
      lost: 1,
      duplicated: 2,
      reordered: 5,
      ...patch.messages,
    },
  });
}

const one = (expr: string, s: Summary = summary()) => {
  const r = evaluateThresholds([parseThreshold(expr)], s)[0];
  assert.ok(r);
  return r;
};

test('parses every metric with every operator', () => {
  assert.ok(THRESHOLD_METRICS.length >= 36 + 3 + 3 + 10 + 2 + 2);
  for (const metric of THRESHOLD_METRICS) {
    for (const op of THRESHOLD_OPS) {
      const t = parseThreshold(`${metric}${op}1`);
      assert.deepEqual(t, { expr: `${metric}${op}1`, metric, op, target: 1, unit: undefined });
    }
  }
});

test('the metric families are all there', () => {
  for (const fam of ['e2e', 'publishAck', 'connect', 'scheduleLag']) {
    for (const stat of ['count', 'min', 'mean', 'p50', 'p90', 'p95', 'p99', 'p999', 'max']) {
      assert.ok(THRESHOLD_METRICS.includes(`${fam}.${stat}`), `${fam}.${stat}`);
    }
  }
  for (const m of [
    'loss',
    'duplicates',
    'delivery',
    'devices.connectFailures',
    'devices.connectedPeak',
    'devices.reconnects',
    'messages.scheduled',
    'messages.unconfirmed',
    'messages.foreign',
    'rates.sentPerSec',
    'rates.receivedPerSec',
    'errors',
    'generator.saturated',
  ]) {
    assert.ok(THRESHOLD_METRICS.includes(m), m);
  }
});

test('whitespace, units and number forms', () => {
  assert.deepEqual(parseThreshold('  e2e.p99 <= 0.5 s '), {
    expr: 'e2e.p99 <= 0.5 s',
    metric: 'e2e.p99',
    op: '<=',
    target: 0.5,
    unit: 's',
  });
  assert.equal(parseThreshold('connect.max<2s').unit, 's');
  assert.equal(parseThreshold('publishAck.p95 > 250ms').unit, 'ms');
  assert.equal(parseThreshold('publishAck.p95>250ms').target, 250);
  assert.equal(parseThreshold('loss<0.1%').unit, '%');
  assert.equal(parseThreshold('loss < 0.1 %').target, 0.1);
  assert.equal(parseThreshold('duplicates<=.5%').target, 0.5);
  assert.equal(parseThreshold('delivery>=99.9%').target, 99.9);
  assert.equal(parseThreshold('e2e.p99<1e3').target, 1000);
  assert.equal(parseThreshold('e2e.p99<5.').target, 5);
  assert.equal(parseThreshold('loss<0.001').unit, undefined);
});

test('latency values are in ms; an s threshold compares and reports in seconds', () => {
  const s = summary();
  assert.deepEqual(one('e2e.p99<500', s), { expr: 'e2e.p99<500', value: 10.99, passed: true });
  assert.deepEqual(one('e2e.p99<500ms', s), { expr: 'e2e.p99<500ms', value: 10.99, passed: true });
  assert.deepEqual(one('e2e.p99<0.5s', s), { expr: 'e2e.p99<0.5s', value: 0.01099, passed: true });
  assert.equal(one('e2e.p99<0.01s', s).passed, false);
  assert.equal(one('publishAck.p50==20.5', s).passed, true);
  assert.equal(one('connect.max>=31', s).passed, true);
  assert.equal(one('scheduleLag.p999<40.999', s).passed, false);
  assert.equal(one('e2e.count==10000', s).value, 10_000);
  assert.equal(one('e2e.mean!=10.2', s).passed, false);
});

test('< and <= (and > and >=) differ exactly at the boundary', () => {
  const s = summary();
  assert.equal(one('e2e.p99<10.99', s).passed, false);
  assert.equal(one('e2e.p99<=10.99', s).passed, true);
  assert.equal(one('e2e.p99>10.99', s).passed, false);
  assert.equal(one('e2e.p99>=10.99', s).passed, true);
  assert.equal(one('e2e.p99==10.99', s).passed, true);
  assert.equal(one('e2e.p99!=10.99', s).passed, false);
  assert.equal(one('e2e.p99<=10.98', s).passed, false);
  assert.equal(one('e2e.p99>=11', s).passed, false);
  assert.equal(one('messages.failed<=4', s).passed, true);
  assert.equal(one('messages.failed<4', s).passed, false);
});

test('loss with % is a percentage, without % a fraction: loss<0.1% ≡ loss<0.001', () => {
  for (const lost of [0, 1, 2]) {
    const s = summary({ messages: { sent: 1000, lost } });
    const pct = one('loss<0.1%', s);
    const frac = one('loss<0.001', s);
    assert.equal(pct.passed, frac.passed, `lost ${lost}`);
    assert.equal(pct.value, lost / 10);
    assert.equal(frac.value, lost / 1000);
    assert.equal(one('loss<=0.1%', s).passed, lost <= 1);
    assert.equal(one('loss<=0.001', s).passed, lost <= 1);
  }
  assert.equal(one('loss<0.1%', summary({ messages: { sent: 1000, lost: 1 } })).passed, false);
  // 7 of 100 is exactly 7%, not 7.000000000000001%
  assert.equal(one('loss<=7%', summary({ messages: { sent: 100, lost: 7 } })).value, 7);
  assert.equal(one('loss<=7%', summary({ messages: { sent: 100, lost: 7 } })).passed, true);
});

test('thresholds on metrics without samples fail with "no data", whatever the comparison', () => {
  const s = summary({ messages: { sent: 0, scheduled: 0, lost: 0, received: 0, duplicated: 0, foreign: 0 } });
  for (const expr of [
    'loss<0.1%',
    'loss==0',
    'duplicates==0%',
    'delivery>=100%',
    'delivery>=1',
    'loss.scheduled<1%',
  ]) {
    assert.deepEqual(one(expr, s), { expr, value: 0, passed: false, noData: true }, expr);
  }
  const empty = { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  const noLatency = summary({ latency: { ...summary().latency, e2e: empty } });
  assert.deepEqual(one('e2e.p99<500', noLatency), {
    expr: 'e2e.p99<500',
    value: 0,
    passed: false,
    noData: true,
  });
  // a count is always known: 0 samples is the value
  assert.deepEqual(one('e2e.count==0', noLatency), { expr: 'e2e.count==0', value: 0, passed: true });
  assert.equal(one('messages.sent==0', s).passed, true);
});

test('loss and delivery of what was scheduled count the messages never sent', () => {
  // 1000 scheduled, 800 sent, 790 distinct received, 10 lost of those sent
  const s = summary({
    messages: { scheduled: 1000, sent: 800, lost: 10, received: 795, duplicated: 5, foreign: 0 },
  });
  assert.equal(one('loss<2%', s).value, 1.25);
  assert.equal(one('loss.scheduled<2%', s).value, 21);
  assert.equal(one('loss.scheduled<2%', s).passed, false);
  assert.equal(one('delivery.scheduled>=79%', s).value, 79);
  assert.equal(one('delivery.scheduled>=79%', s).passed, true);
  assert.equal(one('delivery>0.98', s).value, 0.9875);
});

test('duplicates and delivery', () => {
  const s = summary({ messages: { sent: 1000, received: 1000, duplicated: 10, foreign: 5 } });
  assert.equal(one('duplicates<1%', s).value, 1);
  assert.equal(one('duplicates<1%', s).passed, false);
  assert.equal(one('duplicates<=0.01', s).passed, true);
  // unique of this run: 1000 − 10 − 5 = 985 of 1000 sent
  assert.equal(one('delivery>=98.5%', s).value, 98.5);
  assert.equal(one('delivery>=98.5%', s).passed, true);
  assert.equal(one('delivery>0.985', s).passed, false);
});

test('counts, rates, errors and the saturation flag', () => {
  const s = summary();
  assert.equal(one('devices.connectFailures==2', s).passed, true);
  assert.equal(one('devices.connectedPeak>=98', s).passed, true);
  assert.equal(one('devices.reconnects<3', s).passed, false);
  assert.equal(one('messages.reordered==5', s).passed, true);
  assert.equal(one('messages.unconfirmed==6', s).passed, true);
  assert.equal(one('rates.sentPerSec>=33.3', s).passed, true);
  assert.equal(one('rates.receivedPerSec>33.4', s).passed, false);
  assert.deepEqual(one('errors==0', s), { expr: 'errors==0', value: 5, passed: false });
  assert.equal(one('errors==0', summary({ errors: [] })).passed, true);
  assert.deepEqual(one('generator.saturated==0', s), {
    expr: 'generator.saturated==0',
    value: 0,
    passed: true,
  });
  const sat = summary({ generator: { cpuPercentPeak: 99, eventLoopLagP99: 300, saturated: true } });
  assert.deepEqual(one('generator.saturated==0', sat), {
    expr: 'generator.saturated==0',
    value: 1,
    passed: false,
  });
});

test('evaluates a list in order, keeping each expression as written (trimmed)', () => {
  const list: Threshold[] = parseThresholds([' e2e.p99 < 500 ', 'loss<=0.1%', 'messages.failed==0']);
  const r = evaluateThresholds(list, summary());
  assert.deepEqual(
    r.map((x) => [x.expr, x.passed]),
    [
      ['e2e.p99 < 500', true],
      ['loss<=0.1%', true],
      ['messages.failed==0', false],
    ],
  );
});

const bad: Array<[expr: string, problem: RegExp]> = [
  ['e2e.p99<<5', /"<<" is not a comparison; use one of < <= > >= == !=/],
  ['loss=0', /"=" is not a comparison; did you mean ==\?/],
  ['e2e.p99=<5', /did you mean <=\?/],
  ['e2e.p99=>5', /did you mean >=\?/],
  ['', /is empty/],
  ['e2e.p99', /has no comparison/],
  ['<500', /has no metric before "<"/],
  ['e2e.p99<', /has no number after "<"/],
  ['e2e.p99<abc', /"abc" is not a number/],
  ['e2e.p99<-5', /without a sign/],
  ['e2e.p99<5 7', /"5 7" is not a number/],
  ['e2e<500', /e2e needs a statistic, e\.g\. e2e\.p99/],
  ['e2e.p98<500', /unknown statistic "p98" for e2e; use one of count min mean p50 p90 p95 p99 p999 max/],
  ['e2e.P99<500', /did you mean e2e\.p99\?/],
  ['publishack.p99<500', /did you mean publishAck\.p99\?/],
  ['lost<1', /unknown metric "lost"; did you mean loss\?/],
  ['messages.lsot==0', /did you mean messages\.lost\?/],
  ['throughput>5', /unknown metric "throughput"; metrics are .*loss.*generator\.saturated/],
  ['e2e.p99<5min', /unit "min" does not fit e2e\.p99; use ms/],
  ['e2e.p99<5%', /unit "%" does not fit e2e\.p99/],
  ['loss<5ms', /loss, a ratio; write a fraction \(0\.001\) or a percentage \(0\.1%\)/],
  ['loss<5', /fraction from 0 to 1; did you mean loss<5%\?/],
  ['delivery>101%', /cannot exceed 100%/],
  ['messages.sent>0ms', /messages\.sent is a count and takes no unit/],
  ['rates.sentPerSec>10%', /messages per second and takes no unit/],
  ['generator.saturated==0s', /is 0 or 1 and takes no unit/],
];

test(`rejects bad expressions (${bad.length}) with E_THRESHOLD naming the problem`, () => {
  for (const [expr, problem] of bad) {
    assert.throws(
      () => parseThreshold(expr),
      (e: unknown) => {
        assert.ok(e instanceof FleetloadError, expr);
        assert.equal(e.code, 'E_THRESHOLD');
        assert.equal(e.exitCode, 2);
        assert.ok(e.message.startsWith(`threshold "${expr}": `), e.message);
        assert.ok(e.message.endsWith('; write e.g. e2e.p99<500 or loss<0.1%'), e.message);
        assert.match(e.message, problem);
        return true;
      },
      expr,
    );
  }
});

test('parseThresholds reports every bad expression at once', () => {
  assert.throws(
    () => parseThresholds(['e2e.p99<500', 'e2e.p99<<5', 'lost<1']),
    (e: unknown) => {
      assert.ok(e instanceof FleetloadError);
      assert.equal(e.code, 'E_THRESHOLD');
      assert.equal(e.problems.length, 2);
      assert.match(e.problems[0] ?? '', /^threshold "e2e\.p99<<5"/);
      assert.match(e.problems[1] ?? '', /^threshold "lost<1"/);
      return true;
    },
  );
  assert.deepEqual(parseThresholds([]), []);
});
