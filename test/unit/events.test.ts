import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/clock.js';
import { mergeFolderEvents } from '../../src/run/merge-events.js';
import {
  EventLog,
  EventRules,
  type IntervalView,
  isLiveThreshold,
  loadAsRun,
  type RunEvent,
  stageEvents,
} from '../../src/stats/events.js';
import { type Histogram, newHistogram, recordMs } from '../../src/stats/histogram.js';
import { LATENCIES, type LatencyName, zeroCounters } from '../../src/stats/stats.js';
import { parseThreshold } from '../../src/stats/thresholds.js';

/**
 * The event rules (src/stats/events.ts) in fake time: one IntervalView per second, as the pipeline feeds them.
 */

const T0 = 1_800_000_000_000;

function histograms(e2eMs: number[] = [], lagMs: number[] = []): Record<LatencyName, Histogram> {
  const h = {} as Record<LatencyName, Histogram>;
  for (const k of LATENCIES) h[k] = newHistogram();
  for (const v of e2eMs) recordMs(h.e2e, v);
  for (const v of lagMs) recordMs(h.scheduleLag, v);
  return h;
}

/** A scripted run: each step is one interval; totals add up as the pipeline's aggregator does. */
class Script {
  readonly clock = new FakeClock(T0);
  readonly log = new EventLog(() => this.clock.now());
  readonly rules: EventRules;
  private readonly totals = zeroCounters();

  constructor(thresholds: string[] = []) {
    this.log.begin(T0);
    this.rules = new EventRules(this.log, thresholds.map(parseThreshold));
  }

  interval(
    o: {
      connected?: number;
      dropped?: number;
      connects?: number;
      sent?: number;
      gaps?: number;
      e2eMs?: number[];
      lagMs?: number[];
      cpu?: number;
      loopLag?: number;
      /** `--workers`: a worker saturated now by its own rule, and why */
      worker?: string;
    } = {},
  ): RunEvent[] {
    this.clock.advance(1000);
    const counters = zeroCounters();
    counters.dropped = o.dropped ?? 0;
    counters.connects = o.connects ?? 0;
    counters.sent = o.sent ?? 0;
    this.totals.sent += counters.sent;
    const v: IntervalView = {
      atMs: this.clock.now(),
      devicesConnected: o.connected ?? 100,
      counters,
      totals: this.totals,
      histograms: histograms(o.e2eMs, o.lagMs),
      gaps: o.gaps ?? 0,
      cpuPercent: o.cpu ?? 10,
      eventLoopLagP99Ms: o.loopLag ?? 1,
      ...(o.worker !== undefined ? { workers: { saturatedNow: true, reason: o.worker } } : {}),
    };
    this.rules.observe(v);
    return this.log.take();
  }
}

const kinds = (evs: RunEvent[]) => evs.map((e) => e.kind);

describe('event log', () => {
  test('times each event since the start, hands each interval what came since the last, keeps 1,000 at most', () => {
    const clock = new FakeClock(T0);
    const log = new EventLog(() => clock.now(), 3);
    log.begin(T0);
    clock.advance(12_000);
    log.add('load', '100 → 40 devices (dashboard)', {
      setting: 'devices',
      from: 100,
      to: 40,
      source: 'dashboard',
    });
    assert.deepEqual(log.take(), [
      {
        atMs: T0 + 12_000,
        elapsedMs: 12_000,
        kind: 'load',
        message: '100 → 40 devices (dashboard)',
        setting: 'devices',
        from: 100,
        to: 40,
        source: 'dashboard',
      },
    ]);
    assert.deepEqual(log.take(), [], 'taken once');
    log.add('broker-lost', 'b', {}, T0 + 20_000);
    log.add('stage', 'a', {}, T0 + 15_000);
    assert.deepEqual(
      log.take().map((e) => e.elapsedMs),
      [15_000, 20_000],
      'in time order',
    );
    log.add('broker-back', 'c');
    assert.equal(log.all().length, 3);
    assert.equal(log.dropped, 1, 'the fourth is counted, not kept');
  });

  test('loadAsRun: the load as it actually ran, for headers', () => {
    assert.equal(loadAsRun(100, []), '100 devices');
    const ev = (elapsedMs: number, from: number, to: number, setting?: 'intervalMs'): RunEvent => ({
      atMs: T0 + elapsedMs,
      elapsedMs,
      kind: 'load',
      message: '',
      from,
      to,
      source: 'dashboard',
      ...(setting ? { setting } : { setting: 'devices' }),
    });
    assert.equal(
      loadAsRun(100, [ev(12_000, 100, 40), ev(20_000, 40, 100), ev(75_000, 1000, 500, 'intervalMs')]),
      '100 → 40 devices at 0:12 (dashboard), 40 → 100 devices at 0:20 (dashboard), every 1000 → 500 ms at 1:15 (dashboard)',
    );
  });

  test('stage events: each stage at its exact start, once', () => {
    const clock = new FakeClock(T0);
    const log = new EventLog(() => clock.now());
    log.begin(T0);
    const stages = [
      { durationMs: 10_000, devices: 100 },
      { durationMs: 20_000, devices: 100 },
      { durationMs: 5000, devices: 40 },
    ];
    stageEvents(log, stages, T0, -1, 1000);
    stageEvents(log, stages, T0, 1000, 10_500);
    stageEvents(log, stages, T0, 10_500, 29_000);
    stageEvents(log, stages, T0, 29_000, 31_000);
    const evs = log.take();
    assert.deepEqual(
      evs.map((e) => [e.elapsedMs, e.stage, e.message]),
      [
        [0, 1, 'stage 1/3: 0 → 100 devices over 0:10'],
        [10_000, 2, 'stage 2/3: 100 devices over 0:20'],
        [30_000, 3, 'stage 3/3: 100 → 40 devices over 0:05'],
      ],
    );
  });
});

describe('broker outage rule', () => {
  test('most connected devices dropping in one interval is broker-lost; the first connects after it broker-back', () => {
    const s = new Script();
    assert.deepEqual(s.interval({ connected: 100 }), []);
    const lost = s.interval({ connected: 3, dropped: 97 });
    assert.deepEqual(kinds(lost), ['broker-lost']);
    assert.equal(lost[0]?.count, 97);
    assert.equal(lost[0]?.elapsedMs, 2000);
    assert.match(lost[0]?.message ?? '', /97 of 100/);
    assert.deepEqual(s.interval({ connected: 0, dropped: 3 }), [], 'still down: one outage, one event');
    assert.deepEqual(s.interval({ connected: 0 }), []);
    const back = s.interval({ connected: 40, connects: 40 });
    assert.deepEqual(kinds(back), ['broker-back']);
    assert.equal(back[0]?.count, 40);
    assert.equal(back[0]?.downMs, 3000);
    assert.deepEqual(s.interval({ connected: 100, connects: 60 }), [], 'back once');
    // a second outage is a second pair
    assert.deepEqual(kinds(s.interval({ connected: 0, dropped: 100 })), ['broker-lost']);
    assert.deepEqual(kinds(s.interval({ connected: 100, connects: 100 })), ['broker-back']);
  });

  test('an outage that straddles a cut is still one broker-lost', () => {
    const s = new Script();
    s.interval({ connected: 100 });
    assert.deepEqual(s.interval({ connected: 70, dropped: 30 }), [], '30 of 100: not yet');
    const lost = s.interval({ connected: 45, dropped: 25 });
    assert.deepEqual(kinds(lost), ['broker-lost']);
    assert.equal(lost[0]?.count, 55);
  });

  test('a few devices dropping, or a fleet lowered on purpose (no drops), is no outage', () => {
    const s = new Script();
    s.interval({ connected: 100 });
    assert.deepEqual(s.interval({ connected: 98, dropped: 2 }), []);
    assert.deepEqual(s.interval({ connected: 98, connects: 2 }), []);
    // the dashboard lowers the fleet: devices leave, none dropped (parked devices are not `dropped`)
    assert.deepEqual(s.interval({ connected: 40 }), []);
    assert.deepEqual(s.interval({ connected: 100, connects: 60 }), [], 'their return is no broker-back');
  });
});

describe('threshold crossings', () => {
  test('a live latency threshold failing on an interval, then passing again; intervals without data change nothing', () => {
    const s = new Script(['e2e.p99<500', 'rates.sentPerSec>1']);
    assert.deepEqual(s.interval({ e2eMs: [10, 20, 30] }), []);
    const failed = s.interval({ e2eMs: [10, 900, 950] });
    assert.deepEqual(kinds(failed), ['threshold-failed']);
    assert.equal(failed[0]?.expr, 'e2e.p99<500');
    assert.ok((failed[0]?.value ?? 0) >= 900, String(failed[0]?.value));
    assert.match(failed[0]?.message ?? '', /^e2e\.p99<500 fails: 9\d\d ms this interval$/);
    assert.deepEqual(s.interval({ e2eMs: [800] }), [], 'still failing: no new event');
    assert.deepEqual(s.interval({}), [], 'no data: no change');
    const passed = s.interval({ e2eMs: [12] });
    assert.deepEqual(kinds(passed), ['threshold-passed']);
    assert.equal(passed[0]?.expr, 'e2e.p99<500');
  });

  test('loss is judged as holes so far over sent so far', () => {
    const s = new Script(['loss<1%']);
    assert.deepEqual(s.interval({ sent: 1000, gaps: 0 }), []);
    const failed = s.interval({ sent: 1000, gaps: 50 });
    assert.deepEqual(kinds(failed), ['threshold-failed']);
    assert.equal(failed[0]?.value, 2.5, '50 of 2,000 sent, in %');
    assert.deepEqual(kinds(s.interval({ sent: 4000, gaps: 50 })), ['threshold-passed'], '50 of 6,000');
  });

  test('which thresholds are judged live', () => {
    const live = (e: string) => isLiveThreshold(parseThreshold(e));
    assert.equal(live('e2e.p99<500'), true);
    assert.equal(live('publishAck.max<=2s'), true);
    assert.equal(live('loss<0.1%'), true);
    assert.equal(live('messages.failed==0'), true);
    assert.equal(live('delivery>99%'), false, 'in flight messages would fail it every interval');
    assert.equal(live('rates.sentPerSec>100'), false);
    assert.equal(live('generator.saturated==0'), false, 'saturation has events of its own');
  });
});

describe('generator saturation', () => {
  test('CPU hot for 3 intervals in a row starts it; the first calm interval ends it', () => {
    const s = new Script();
    assert.deepEqual(s.interval({ cpu: 95 }), []);
    assert.deepEqual(s.interval({ cpu: 97 }), []);
    assert.equal(s.rules.saturated, false);
    const start = s.interval({ cpu: 99 });
    assert.deepEqual(kinds(start), ['saturation-start']);
    assert.match(start[0]?.reason ?? '', /^CPU up to 99% \(3 s in a row\)$/);
    assert.equal(s.rules.saturated, true);
    assert.deepEqual(s.interval({ cpu: 96 }), []);
    assert.deepEqual(kinds(s.interval({ cpu: 40 })), ['saturation-end']);
    assert.equal(s.rules.saturated, true, 'the run was saturated at some point');
  });

  test('one second of lag is a hiccup, not saturation: no event, and the run is not saturated (review finding 5)', () => {
    const s = new Script();
    // a 20-device 6 s run: one interval with schedule lag p99 253 ms, the rest calm
    assert.deepEqual(s.interval({ lagMs: [2, 3, 4] }), []);
    assert.deepEqual(s.interval({ lagMs: [5, 253, 253, 253] }), []);
    assert.deepEqual(s.interval({ loopLag: 250, lagMs: [3] }), []);
    assert.deepEqual(s.interval({ lagMs: [3] }), []);
    assert.deepEqual(s.interval({ cpu: 95, lagMs: [3] }), []);
    assert.deepEqual(s.interval({ lagMs: [3] }), []);
    assert.equal(s.rules.saturated, false);
  });

  test('lag sustained for 3 intervals starts it, whichever lag each interval had; the reason names the worst', () => {
    const s = new Script();
    assert.deepEqual(s.interval({ lagMs: [5, 300, 400] }), []);
    assert.deepEqual(s.interval({ loopLag: 250 }), []);
    const start = s.interval({ lagMs: [150, 150], cpu: 92 });
    assert.deepEqual(kinds(start), ['saturation-start']);
    assert.match(
      start[0]?.reason ?? '',
      /^CPU up to 92%, event-loop lag p99 up to 250 ms, schedule lag p99 up to 40\d ms \(3 s in a row\)$/,
    );
    assert.deepEqual(kinds(s.interval({})), ['saturation-end']);
    assert.equal(s.rules.saturated, true);
  });
});

describe('generator saturation with --workers: a worker saturated by its own rule', () => {
  test('starts the event at once (its rule already waited 3 intervals) and ends it when no one is saturated', () => {
    const s = new Script();
    assert.deepEqual(s.interval({}), []);
    const start = s.interval({ worker: 'schedule lag p99 up to 150 ms (3 s in a row)' });
    assert.deepEqual(kinds(start), ['saturation-start']);
    assert.equal(start[0]?.reason, 'a worker: schedule lag p99 up to 150 ms (3 s in a row)');
    assert.equal(s.rules.saturated, true, "the summary's verdict agrees with the event");
    assert.deepEqual(s.interval({ worker: 'x' }), []);
    assert.deepEqual(kinds(s.interval({})), ['saturation-end']);
    assert.equal(s.rules.saturated, true);
  });

  test('this process and a worker saturated together, or one after the other: one start, one end', () => {
    const s = new Script();
    s.interval({ cpu: 95 });
    s.interval({ cpu: 95 });
    const start = s.interval({ cpu: 95, worker: 'w' });
    assert.deepEqual(kinds(start), ['saturation-start']);
    assert.match(start[0]?.reason ?? '', /^CPU up to 95%/, "this process's reason when its own rule fired");
    assert.deepEqual(s.interval({ worker: 'w' }), [], 'the worker still is: no end, no second start');
    assert.deepEqual(s.interval({ cpu: 95, worker: 'w' }), []);
    assert.deepEqual(kinds(s.interval({})), ['saturation-end']);
  });

  test('no worker saturated: as without workers', () => {
    const s = new Script();
    for (let i = 0; i < 5; i++) assert.deepEqual(s.interval({}), []);
    assert.equal(s.rules.saturated, false);
  });
});

describe('fleetload merge', () => {
  test("the folders' events in time order, the ones every segment saw alike once, capped", () => {
    const ev = (atMs: number, kind: RunEvent['kind'], message: string): RunEvent => ({
      atMs,
      elapsedMs: atMs - T0,
      kind,
      message,
    });
    const stage = ev(T0, 'stage', 'stage 1/2: 0 → 100 devices over 0:10');
    const merged = mergeFolderEvents([
      {
        events: [stage, ev(T0 + 5000, 'broker-lost', 'broker lost: 50 of 50 connected devices dropped')],
        dropped: 0,
      },
      undefined,
      {
        events: [stage, ev(T0 + 4000, 'broker-lost', 'broker lost: 48 of 50 connected devices dropped')],
        dropped: 2,
      },
    ]);
    assert.deepEqual(
      merged?.events.map((e) => [e.kind, e.elapsedMs]),
      [
        ['stage', 0],
        ['broker-lost', 4000],
        ['broker-lost', 5000],
      ],
    );
    assert.equal(merged?.dropped, 2);
    assert.equal(mergeFolderEvents([undefined, undefined]), undefined, 'folders from before events: no key');
    const many = Array.from({ length: 1500 }, (_, i) => ev(T0 + i, 'load', `change ${i}`));
    const capped = mergeFolderEvents([{ events: many, dropped: 0 }]);
    assert.equal(capped?.events.length, 1000);
    assert.equal(capped?.dropped, 500);
  });
});
