import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/clock.js';
import { Consumer } from '../../src/consumer/consumer.js';
import type { Deliver, Source } from '../../src/consumer/source.js';
import { FleetloadError } from '../../src/errors.js';
import type { FleetControl, IntervalFigures, Output } from '../../src/run/output.js';
import {
  type GeneratorSide,
  type PipelineOptions,
  type PipelineResult,
  type ResultsStore,
  runPipeline,
} from '../../src/run/pipeline.js';
import { DEFAULT_VALIDITY } from '../../src/run/verdict.js';
import { mergeHealth, WorkerHealth } from '../../src/run/worker-health.js';
import { newHistogram, recordMs } from '../../src/stats/histogram.js';
import { Stats } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';
import { parseThreshold } from '../../src/stats/thresholds.js';

/**
 * The run pipeline in fake time: a scripted generator and source, an in-memory results folder, outputs that
 * misbehave. Everything the loop waits on comes from the FakeClock, so a 5 s run takes milliseconds.
 */

const RUN_ID = 'pipe-1';
const T0 = 1_800_000_000_000;

/** What happened, in order: the checkpoint test reads it. */
type Event = string;

class FakeSource implements Source {
  readonly kind = 'eventhubs' as const;
  readonly description = 'fake source';
  deliver: Deliver | undefined;
  marks = 0;
  commits = 0;
  constructor(
    private readonly events: Event[],
    private readonly attach: 'ok' | 'fail' = 'ok',
  ) {}
  async open(deliver: Deliver): Promise<void> {
    if (this.attach === 'fail') throw new FleetloadError('E_UNREACHABLE', 'cannot attach to the fake source');
    this.deliver = deliver;
  }
  markInterval(): void {
    this.marks++;
    this.events.push(`mark ${this.marks}`);
  }
  async commit(): Promise<void> {
    this.commits++;
    this.events.push(`commit ${this.commits}`);
  }
  checkpoints(): Record<string, number> {
    return { '0': this.commits };
  }
  async close(): Promise<void> {}
}

class MemResults implements ResultsStore {
  readonly dir = '/nowhere/pipe-1';
  rows = 0;
  records: unknown[] = [];
  files = new Map<string, string | Buffer>();
  summary: Summary | undefined;
  flushes = 0;
  constructor(private readonly events: Event[]) {}
  appendRow(): void {
    this.rows++;
  }
  appendInterval(r: unknown): void {
    this.records.push(r);
  }
  async flush(): Promise<void> {
    this.flushes++;
    this.events.push(`flush ${this.flushes}`);
  }
  async writeHistograms(): Promise<void> {}
  async writeFile(name: string, data: string | Buffer): Promise<void> {
    this.files.set(name, data);
  }
  async writeSummary(s: Summary): Promise<void> {
    this.summary = s;
  }
  async close(): Promise<void> {}
}

/**
 * A generator of `devices` devices, one message each per `intervalMs`, delivered to the source `delayMs` later
 * (unless `deliver` is false); `sendShare` of the schedule is really sent; `connects` false: nobody connects.
 */
function fakeGenerator(
  clock: FakeClock,
  source: FakeSource | undefined,
  o: {
    devices: number;
    intervalMs: number;
    runTimeMs: number;
    delayMs?: number;
    sendShare?: number;
    connects?: boolean;
    deliver?: boolean;
  },
): GeneratorSide & { stats: Stats } {
  const stats = new Stats(clock.now());
  const last = new Map<string, number>();
  let startAt = 0;
  let endAt = Number.POSITIVE_INFINITY;
  let publishing = false;
  let due = 0;
  const connects = o.connects ?? true;
  const slot = () => {
    // the engine's own end: no slot at or after endAt
    if (!publishing || clock.now() >= endAt) return;
    for (let d = 0; d < o.devices; d++) {
      stats.count('scheduled');
      due += o.sendShare ?? 1;
      if (due < 1) continue;
      due -= 1;
      const deviceId = `dev-${d}`;
      const seq = (last.get(deviceId) ?? 0) + 1;
      last.set(deviceId, seq);
      stats.count('sent');
      stats.count('acked');
      const ts = clock.now();
      const payload = Buffer.from(JSON.stringify({ deviceId, seq, ts, runId: RUN_ID }));
      if (o.deliver !== false && source) {
        clock.setTimeout(() => source.deliver?.({ payload, arrivalMs: clock.now() }), o.delayMs ?? 5);
      }
    }
    clock.setTimeout(slot, o.intervalMs);
  };
  return {
    stats,
    control: {
      maxDevices: o.devices,
      targetDevices: () => o.devices,
      intervalMs: () => o.intervalMs,
      setTargetDevices: () => {},
      setIntervalMs: () => {},
    },
    start() {
      startAt = clock.now();
      endAt = startAt + o.runTimeMs;
      if (!connects) {
        stats.count('connectFailures', 3);
        return;
      }
      stats.devicesConnected = o.devices;
      publishing = true;
      clock.setTimeout(slot, 0);
    },
    get startAt() {
      return startAt;
    },
    get endAt() {
      return endAt;
    },
    get everConnected() {
      return connects ? o.devices : 0;
    },
    allDone: false,
    inflight: 0,
    sentSoFar: () => ({ sent: stats.total.sent, failed: stats.total.failed }),
    stopPublishing() {
      publishing = false;
      endAt = Math.min(endAt, clock.now());
    },
    stop() {
      publishing = false;
    },
    expectedLast: () => new Map(last),
    snapshot: (now) => stats.snapshot(now),
  };
}

const quietMonitor = () => ({
  cpuPercentPeak: 10,
  eventLoopLagP99: 1,
  begin() {},
  sample: () => ({ cpuPercent: 10, eventLoopLagP99Ms: 1 }),
  stop() {},
});

interface Rig {
  clock: FakeClock;
  events: Event[];
  results: MemResults;
  source: FakeSource;
  consumer: { source: FakeSource; consumer: Consumer; stats: Stats };
}

function rig(attach: 'ok' | 'fail' = 'ok'): Rig {
  const clock = new FakeClock(T0);
  const events: Event[] = [];
  const source = new FakeSource(events, attach);
  const stats = new Stats(clock.now());
  return {
    clock,
    events,
    results: new MemResults(events),
    source,
    consumer: { source, consumer: new Consumer({ stats, clock, runId: RUN_ID }), stats },
  };
}

function options(r: Rig, more: Partial<PipelineOptions>): PipelineOptions {
  return {
    runId: RUN_ID,
    openResults: async () => r.results,
    scenario: {
      host: 'mqtt://user:secret@broker.example:1883',
      devices: 10,
      spawnRate: 10,
      runTimeMs: 5000,
      intervalMs: 1000,
      qos: 1,
      mqttVersion: '3.1.1',
    },
    clock: r.clock,
    outputs: [],
    graceMs: 2000,
    thresholds: [],
    validity: DEFAULT_VALIDITY,
    monitor: quietMonitor(),
    ...more,
  };
}

/** Runs the pipeline, moving fake time 10 ms at a time and letting promises settle in between. */
async function drive(clock: FakeClock, o: PipelineOptions): Promise<PipelineResult> {
  let outcome: { ok: PipelineResult } | { error: unknown } | undefined;
  runPipeline(o).then(
    (ok) => {
      outcome = { ok };
    },
    (error: unknown) => {
      outcome = { error };
    },
  );
  for (let i = 0; i < 100_000 && !outcome; i++) {
    await new Promise((r) => setImmediate(r));
    if (!outcome) clock.advance(10);
  }
  assert.ok(outcome, 'the pipeline ended within the fake time allowed');
  if ('error' in outcome) throw outcome.error;
  return outcome.ok;
}

describe('run pipeline (fake time)', () => {
  test('an interval a second, then the drain and one summary; rows, records and the scenario as planned', async () => {
    const r = rig();
    const seen: IntervalFigures[] = [];
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 5000 });
    const { summary } = await drive(
      r.clock,
      options(r, { generator: gen, consumer: r.consumer, outputs: [{ interval: (f) => void seen.push(f) }] }),
    );
    assert.equal(summary.messages.scheduled, 50);
    assert.equal(summary.messages.sent, 50);
    assert.equal(summary.messages.received, 50);
    assert.equal(summary.messages.lost, 0);
    assert.equal(summary.latency.e2e.count, 50);
    assert.ok(Math.abs(summary.latency.e2e.p50 - 5) < 0.1, `e2e p50 ${summary.latency.e2e.p50}`);
    assert.equal(summary.valid, true);
    assert.equal(summary.passed, true);
    assert.equal(summary.scenario.host, 'mqtt://user:***@broker.example:1883', 'the host is redacted');
    // 5 intervals of the run; the drain ends at once (nothing pending), its sliver of a cut writes nothing
    assert.deepEqual(
      seen.map((f) => f.phase),
      ['steady', 'steady', 'steady', 'steady', 'steady'],
    );
    assert.equal(r.results.rows, seen.length);
    assert.equal(r.results.records.length, seen.length);
    assert.equal(r.results.summary, summary);
    assert.ok(r.results.files.has('ledger.bin') && r.results.files.has('consumer.json'));
    assert.deepEqual(JSON.parse(String(r.results.files.get('consumer.json'))).checkpoints, {
      '0': r.source.commits,
    });
  });

  test('per device: live top lists every 5 s, then devicesTop, devices.csv and devices.json', async () => {
    const r = rig();
    // the source loses dev-3's seqs 2 and 3
    const open = r.source.open.bind(r.source);
    r.source.open = (deliver) =>
      open((d) => {
        const m = JSON.parse(String(d.payload)) as { deviceId: string; seq: number };
        if (m.deviceId !== 'dev-3' || (m.seq !== 2 && m.seq !== 3)) deliver(d);
      });
    const seen: IntervalFigures[] = [];
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 12_000 });
    const { summary } = await drive(
      r.clock,
      options(r, { generator: gen, consumer: r.consumer, outputs: [{ interval: (f) => void seen.push(f) }] }),
    );
    const perDevice = summary.messages.sent / 10;
    assert.equal(summary.messages.lost, 2);
    const live = seen.filter((f) => f.devices);
    assert.deepEqual(
      live.map((f) => f.elapsedMs),
      [1000, 6000, 11_000],
    );
    assert.deepEqual(live[2]?.devices?.lost, [{ deviceId: 'dev-3', value: 2 }]);
    const lost = summary.devicesTop?.lost;
    assert.deepEqual(lost, [
      {
        deviceId: 'dev-3',
        value: 2,
        ranges: [{ fromSeq: 2, toSeq: 3, fromTs: gen.startAt + 1000, toTs: gen.startAt + 2000 }],
        moreRanges: 0,
      },
    ]);
    const csv = String(r.results.files.get('devices.csv')).split('\n');
    assert.equal(csv.length, 1 + 10 + 1, 'header, a row per device, the final newline');
    assert.match(csv[4] as string, new RegExp(`^dev-3,${perDevice},${perDevice - 2},2,0,0,0,5,5,2-3@`));
    assert.match(csv[1] as string, new RegExp(`^dev-0,${perDevice},${perDevice},0,0,0,0,5,5,$`));
    assert.ok(r.results.files.has('devices.json'));
  });

  test('live top lists: a slow cut before the scan does not push the next scan back (only the scan is timed)', async () => {
    const r = rig();
    const seen: IntervalFigures[] = [];
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 12_000 });
    // each cut's health sample (taken before the device scan) takes 100 ms: 100 × that would be a 10 s pause
    const slowMonitor = {
      ...quietMonitor(),
      sample: () => {
        r.clock.advance(100);
        return { cpuPercent: 10, eventLoopLagP99Ms: 1 };
      },
    };
    await drive(
      r.clock,
      options(r, {
        generator: gen,
        consumer: r.consumer,
        monitor: slowMonitor,
        outputs: [{ interval: (f) => void seen.push(f) }],
      }),
    );
    const live = seen.filter((f) => f.devices);
    assert.deepEqual(
      live.map((f) => Math.round(f.elapsedMs / 1000)),
      [1, 6, 11],
      'the lists every 5 s, as with a quick cut',
    );
  });

  test('an output that throws on its third interval is disabled and named; the run completes and passes', async () => {
    const r = rig();
    let calls = 0;
    const thrower: Output = {
      name: 'flaky-sink',
      interval: () => {
        calls++;
        if (calls === 3) throw new Error('disk on fire');
      },
    };
    const rejecter: Output = { name: 'rejecting-sink', finish: () => Promise.reject(new Error('nope')) };
    const hanger: Output = { name: 'hanging-sink', start: () => new Promise<void>(() => {}) };
    const good: IntervalFigures[] = [];
    const lines: string[] = [];
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 5000 });
    const { summary } = await drive(
      r.clock,
      options(r, {
        generator: gen,
        consumer: r.consumer,
        outputs: [thrower, rejecter, hanger, { interval: (f) => void good.push(f) }],
        thresholds: [parseThreshold('loss<1%')],
        log: (l) => lines.push(l),
      }),
    );
    assert.equal(calls, 3, 'never called again after it threw');
    assert.equal(good.length, 5, 'the other outputs got every interval');
    assert.equal(summary.passed, true, 'the thresholds decide, not the output');
    assert.equal(r.results.summary, summary, 'summary.json written');
    const outputs = summary.errors.filter((e) => e.kind === 'output');
    assert.deepEqual(
      outputs.map((e) => [e.code, e.reason]),
      [
        ['hanging-sink', 'failed in start(): no answer within 10000 ms'],
        ['flaky-sink', 'failed in interval(): disk on fire'],
      ],
    );
    // finish() gets the written summary: a failure there is said, it cannot be in the summary
    assert.ok(
      lines.some((l) => /output rejecting-sink failed in finish\(\)[^\n]*: nope/.test(l)),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => /output flaky-sink failed in interval\(\)/.test(l)));
  });

  test('checkpoints come only after the interval is in the results folder and every output took it', async () => {
    const r = rig();
    // an output that takes 300 ms (fake) to take each interval, like a sink writing it out
    const slow: Output = {
      name: 'slow-sink',
      interval: (f) =>
        new Promise<void>((resolve) =>
          r.clock.setTimeout(() => {
            r.events.push(`sink done ${Math.round(f.elapsedMs / 1000)}`);
            resolve();
          }, 300),
        ),
    };
    const gen = fakeGenerator(r.clock, r.source, { devices: 3, intervalMs: 1000, runTimeMs: 3000 });
    await drive(r.clock, options(r, { generator: gen, consumer: r.consumer, outputs: [slow] }));
    const commits = r.events.filter((e) => e.startsWith('commit'));
    assert.ok(commits.length >= 3, r.events.join(', '));
    for (const commit of commits) {
      const k = Number(commit.split(' ')[1]);
      const at = r.events.indexOf(commit);
      const mark = r.events.indexOf(`mark ${k}`);
      const flush = r.events.indexOf(`flush ${k}`);
      const sink = r.events.findIndex((e, i) => e.startsWith('sink done') && i > mark);
      assert.ok(mark >= 0 && mark < flush, `mark ${k} before flush ${k}: ${r.events.join(', ')}`);
      assert.ok(
        sink > mark && sink < at,
        `the sink took interval ${k} before its commit: ${r.events.join(', ')}`,
      );
      assert.ok(flush < at, `flush ${k} before commit ${k}: ${r.events.join(', ')}`);
      // and the next interval is not cut (marked) before this one is committed
      const nextMark = r.events.indexOf(`mark ${k + 1}`);
      assert.ok(nextMark === -1 || nextMark > at, `mark ${k + 1} after commit ${k}: ${r.events.join(', ')}`);
    }
  });

  test('run and consume give the same consumer figures for the same messages', async () => {
    // the same deliveries: 4 devices × 6 messages, one lost (dev-1 seq 3), one duplicated (dev-2 seq 4)
    const payloads: Array<{ at: number; payload: Buffer }> = [];
    for (let s = 1; s <= 6; s++) {
      for (let d = 0; d < 4; d++) {
        const ts = T0 + s * 500 + d;
        const payload = Buffer.from(JSON.stringify({ deviceId: `dev-${d}`, seq: s, ts, runId: RUN_ID }));
        if (!(d === 1 && s === 3)) payloads.push({ at: ts + 3 + d, payload });
        if (d === 2 && s === 4) payloads.push({ at: ts + 40, payload });
      }
    }
    const feed = (r: Rig) => {
      for (const m of payloads) {
        r.clock.setTimeout(() => r.source.deliver?.({ payload: m.payload, arrivalMs: m.at }), m.at - T0);
      }
    };
    const asRun = rig();
    feed(asRun);
    const gen = fakeGenerator(asRun.clock, undefined, { devices: 4, intervalMs: 500, runTimeMs: 3000 });
    const run = await drive(asRun.clock, options(asRun, { generator: gen, consumer: asRun.consumer }));
    const asConsume = rig();
    feed(asConsume);
    const consume = await drive(
      asConsume.clock,
      options(asConsume, { consumer: asConsume.consumer, runTimeMs: 3000 }),
    );
    const consumerFigures = (s: Summary) => ({
      received: s.messages.received,
      lost: s.messages.lost,
      duplicated: s.messages.duplicated,
      reordered: s.messages.reordered,
      foreign: s.messages.foreign,
      e2e: s.latency.e2e,
    });
    assert.deepEqual(consumerFigures(consume.summary), consumerFigures(run.summary));
    assert.equal(run.summary.messages.lost, 1);
    assert.equal(run.summary.messages.duplicated, 1);
    assert.equal(run.summary.messages.received, 24);
    assert.equal(
      asRun.results.files.get('ledger.bin')?.length,
      asConsume.results.files.get('ledger.bin')?.length,
    );
  });
});

describe('a results folder that fails mid-run (disk full)', () => {
  test('the run finishes, the summary is complete in memory, and the failure is said once; no checkpoint', async () => {
    const r = rig();
    let flushes = 0;
    r.results.flush = async () => {
      flushes++;
      if (flushes >= 2) throw new Error('cannot write timeseries.csv: no space left on the device');
    };
    const lines: string[] = [];
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 4000 });
    const result = await drive(
      r.clock,
      options(r, { generator: gen, consumer: r.consumer, log: (l) => lines.push(l) }),
    );
    assert.equal(result.resultsError, 'cannot write timeseries.csv: no space left on the device');
    assert.equal(result.summary.messages.sent, 40);
    assert.equal(result.summary.messages.received, 40);
    assert.equal(result.summary.passed, true, "the verdict is the run's, not the disk's");
    assert.equal(r.results.summary, undefined, 'no summary.json in a failed folder');
    assert.deepEqual([...r.results.files.keys()], ['INCOMPLETE'], 'the folder says it is incomplete');
    assert.equal(r.source.commits, 1, 'only the interval that reached the disk is checkpointed');
    assert.equal(lines.filter((l) => l.startsWith('results folder:')).length, 1, lines.join('\n'));
  });
});

describe('the verdict (fake time)', () => {
  test('no device ever connects: summary written (invalid), and E_UNREACHABLE (exit 3) — for any run time', async () => {
    for (const runTimeMs of [2000, 30_000]) {
      const r = rig();
      const gen = fakeGenerator(r.clock, r.source, {
        devices: 5,
        intervalMs: 1000,
        runTimeMs,
        connects: false,
      });
      const result = await drive(
        r.clock,
        options(r, { generator: gen, consumer: r.consumer, thresholds: [parseThreshold('loss<1%')] }),
      );
      const e = result.unreachable;
      assert.ok(e instanceof FleetloadError && e.exitCode === 3, String(e));
      assert.match(e.message, /^no device could connect to mqtt:\/\/user:\*\*\*@broker\.example:1883/);
      assert.equal(result.summary, r.results.summary);
      const s = r.results.summary;
      assert.ok(s);
      assert.equal(s.valid, false);
      assert.equal(s.passed, false);
      assert.ok(
        s.invalid?.some((x) => x.startsWith('connected: no device connected (0 of 10)')),
        s.invalid?.join(),
      );
      assert.deepEqual(s.thresholds, [{ expr: 'loss<1%', value: 0, passed: false, noData: true }]);
    }
  });

  test('most of the schedule never sent (the broker went away): invalid, whatever the thresholds say', async () => {
    const r = rig();
    const gen = fakeGenerator(r.clock, r.source, {
      devices: 10,
      intervalMs: 1000,
      runTimeMs: 5000,
      sendShare: 0.2,
    });
    const { summary } = await drive(
      r.clock,
      options(r, { generator: gen, consumer: r.consumer, thresholds: [parseThreshold('loss<1%')] }),
    );
    assert.equal(summary.messages.scheduled, 50);
    assert.equal(summary.messages.sent, 10);
    assert.equal(summary.thresholds[0]?.passed, true, 'loss of what was sent is 0');
    assert.equal(summary.valid, false);
    assert.equal(summary.passed, false);
    assert.deepEqual(summary.invalid, [
      'offered: 40 of 50 scheduled messages were never sent (sent 20%, at least 95% needed)',
    ]);
  });

  test('a consumer that receives nothing (reading the wrong place): invalid; --accept observed lets it pass', async () => {
    for (const accept of [[], ['observed']] as const) {
      const r = rig();
      const overdue: number[] = [];
      const gen = fakeGenerator(r.clock, r.source, {
        devices: 10,
        intervalMs: 1000,
        runTimeMs: 3000,
        deliver: false,
      });
      const { summary } = await drive(
        r.clock,
        options(r, {
          generator: gen,
          consumer: r.consumer,
          validity: { ...DEFAULT_VALIDITY, accept },
          outputs: [{ interval: (f) => void overdue.push(f.overdue ?? -1) }],
        }),
      );
      assert.equal(summary.messages.lost, 30);
      assert.equal(summary.valid, accept.length > 0);
      assert.equal(summary.passed, accept.length > 0);
      if (accept.length === 0) {
        assert.deepEqual(summary.invalid, [
          'observed: the consumer received none of the 30 messages sent (is it reading the right place?)',
        ]);
      }
      // the live figures show the missing messages from the second interval on, not only at the end
      assert.equal(overdue[0], 0, overdue.join());
      assert.ok((overdue[1] ?? 0) >= 10, overdue.join());
      for (let i = 1; i < overdue.length; i++)
        assert.ok((overdue[i] ?? 0) >= (overdue[i - 1] ?? 0), overdue.join());
      assert.ok((overdue.at(-1) ?? 0) <= 30, overdue.join());
    }
  });

  test('a consumer that cannot attach: E_UNREACHABLE before anything is written', async () => {
    const r = rig('fail');
    let opened = false;
    await assert.rejects(
      drive(
        r.clock,
        options(r, {
          consumer: r.consumer,
          openResults: async () => {
            opened = true;
            return r.results;
          },
        }),
      ),
      (e: unknown) => e instanceof FleetloadError && e.exitCode === 3,
    );
    assert.equal(opened, false);
  });
});

describe('run events through the pipeline (fake time)', () => {
  test('a dashboard load change and a broker outage: in their interval record, on the outputs, in summary.json', async () => {
    const r = rig();
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 8000 });
    let target = 10;
    const asked: number[] = [];
    const control: FleetControl = {
      maxDevices: 10,
      targetDevices: () => target,
      intervalMs: () => 1000,
      setTargetDevices: (n) => {
        asked.push(n);
        target = n;
      },
      setIntervalMs: () => {},
    };
    Object.defineProperty(gen, 'control', { value: control });
    const seen: IntervalFigures[] = [];
    const dashboard: Output = {
      // what the dashboard does on POST /api/fleet, through the control the outputs get
      start: (info) => {
        const c = info.control;
        assert.ok(c);
        r.clock.setTimeout(() => c.setTargetDevices(4), 1500);
        r.clock.setTimeout(() => c.setTargetDevices(10), 2500);
        r.clock.setTimeout(() => c.setTargetDevices(10), 2600); // no change: no event
      },
      interval: (f) => void seen.push(f),
    };
    // the broker goes away in the fifth second (every device drops) and is back in the seventh
    r.clock.setTimeout(() => {
      gen.stats.count('dropped', 10);
      gen.stats.connected(-10);
    }, 4500);
    r.clock.setTimeout(() => {
      gen.stats.count('connects', 10);
      gen.stats.connected(10);
    }, 6500);
    const { summary } = await drive(
      r.clock,
      options(r, {
        generator: gen,
        consumer: r.consumer,
        outputs: [dashboard],
        scenario: { ...options(r, {}).scenario, runTimeMs: 8000 },
      }),
    );
    assert.deepEqual(asked, [4, 10, 10], 'the generator still gets every call');
    const events = summary.events ?? [];
    assert.deepEqual(
      events.map((e) => [e.kind, e.elapsedMs]),
      [
        ['load', 1500],
        ['load', 2500],
        ['broker-lost', 5000],
        ['broker-back', 7000],
      ],
    );
    assert.equal(events[0]?.message, '10 → 4 devices (dashboard)');
    assert.deepEqual([events[0]?.from, events[0]?.to, events[0]?.source], [10, 4, 'dashboard']);
    assert.equal(events[2]?.count, 10);
    assert.equal(events[3]?.downMs, 2000);
    assert.equal(summary.eventsDropped, undefined);
    // each in the record of the interval it happened in, and nowhere else
    const records = r.results.records as Array<{ elapsedMs: number; events?: Array<{ kind: string }> }>;
    const withEvents = records
      .filter((x) => x.events)
      .map((x) => [x.elapsedMs, x.events?.map((e) => e.kind)]);
    assert.deepEqual(withEvents, [
      [2000, ['load']],
      [3000, ['load']],
      [5000, ['broker-lost']],
      [7000, ['broker-back']],
    ]);
    assert.equal(seen.flatMap((f) => f.events ?? []).length, 4, 'the outputs see the same events');
  });

  test('a staged run: each stage is an event at its start', async () => {
    const r = rig();
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 5000 });
    const { summary } = await drive(
      r.clock,
      options(r, {
        generator: gen,
        consumer: r.consumer,
        stages: [
          { durationMs: 2000, devices: 10 },
          { durationMs: 3000, devices: 4 },
        ],
      }),
    );
    assert.deepEqual(
      (summary.events ?? []).map((e) => [e.kind, e.elapsedMs, e.message]),
      [
        ['stage', 0, 'stage 1/2: 0 → 10 devices over 0:02'],
        ['stage', 2000, 'stage 2/2: 10 → 4 devices over 0:03'],
      ],
    );
  });

  test('bytes: the counters of every interval add up to summary.bytes with their rates', async () => {
    const r = rig();
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 5000 });
    const snapshot = gen.snapshot;
    gen.snapshot = (now) => {
      // 100 bytes per message written, counted once per snapshot as the engine does
      gen.stats.count('bytesSent', 100 * gen.stats.interval.sent);
      return snapshot(now);
    };
    const { summary } = await drive(r.clock, options(r, { generator: gen, consumer: r.consumer }));
    const records = r.results.records as Array<{ counters: Record<string, number> }>;
    const sent = records.reduce((n, x) => n + (x.counters.bytesSent ?? 0), 0);
    const received = records.reduce((n, x) => n + (x.counters.bytesReceived ?? 0), 0);
    assert.equal(summary.bytes?.sent, sent);
    assert.equal(sent, 100 * summary.messages.sent);
    assert.ok(received > 50 * 60, `every payload's bytes counted (${received})`);
    assert.equal(summary.bytes?.received, received);
    assert.equal(summary.bytes?.sentPerSec, Math.round((sent / 5000) * 1000 * 10) / 10);
  });
});

describe('generator saturation: one rule for the events and the summary (review finding 5)', () => {
  /** A monitor whose every sample is calm except the `hot` ones (event-loop lag 250 ms), with a whole-run p99 over 100 ms. */
  const monitorHotAt = (hot: readonly number[]) => {
    let n = 0;
    return {
      ...quietMonitor(),
      eventLoopLagP99: 250,
      sample: () => ({ cpuPercent: 10, eventLoopLagP99Ms: hot.includes(++n) ? 250 : 1 }),
    };
  };
  const run = async (hot: readonly number[]) => {
    const r = rig();
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 6000 });
    return (
      await drive(r.clock, options(r, { generator: gen, consumer: r.consumer, monitor: monitorHotAt(hot) }))
    ).summary;
  };

  test('one hot second: no saturation event, not saturated, the run is valid', async () => {
    const summary = await run([2]);
    assert.deepEqual(
      (summary.events ?? []).filter((e) => e.kind.startsWith('saturation')),
      [],
    );
    assert.equal(summary.generator.saturated, false);
    assert.equal(summary.valid, true);
  });

  test('three hot seconds in a row: a saturation-start event, and the summary says saturated (invalid)', async () => {
    const summary = await run([2, 3, 4]);
    assert.deepEqual(
      (summary.events ?? []).filter((e) => e.kind.startsWith('saturation')).map((e) => e.kind),
      ['saturation-start', 'saturation-end'],
    );
    assert.equal(summary.generator.saturated, true);
    assert.equal(summary.valid, false);
    assert.match(summary.invalid?.join() ?? '', /^saturated: /);
  });

  /**
   * `--workers 2`: each worker judges itself by the same rule on its own intervals (src/run/worker-health.ts), the
   * parent merges their health (Workers.health) and its summary says saturated when one of them was. The parent's
   * own figures are calm throughout; worker 1's own messages leave 150 ms late in the seconds `hot` (1-based): a
   * schedule lag the parent's rule never sees here (the fake generator records none), only worker 1's does.
   */
  const workersRun = async (hot: readonly number[]) => {
    const r = rig();
    const t0 = r.clock.now();
    const calm = {
      cpuPercentPeak: 30,
      eventLoopLagP99: 2,
      begin() {},
      sample: () => ({ cpuPercent: 30, eventLoopLagP99Ms: 2 }),
    };
    const w0 = new WorkerHealth(calm, () => r.clock.now());
    const w1 = new WorkerHealth(calm, () => r.clock.now());
    w0.begin();
    w1.begin();
    const late = newHistogram();
    for (let m = 0; m < 10; m++) recordMs(late, 150);
    const gen = fakeGenerator(r.clock, r.source, { devices: 10, intervalMs: 1000, runTimeMs: 6000 });
    const health = () => {
      if (hot.includes(Math.ceil((r.clock.now() - t0) / 1000))) w1.addScheduleLag(late);
      return mergeHealth([w0.health(), w1.health()]);
    };
    const summary = (
      await drive(r.clock, options(r, { generator: Object.assign(gen, { health }), consumer: r.consumer }))
    ).summary;
    const events = (summary.events ?? []).filter((e) => e.kind.startsWith('saturation'));
    return { summary, events };
  };

  test('--workers 2: one worker saturated by its own intervals makes the run saturated', async () => {
    const { summary, events } = await workersRun([2, 3, 4]);
    // the parent's own intervals kept up; the worker's rule fired on its third hot second, and the parent logs it
    assert.deepEqual(
      events.map((e) => e.kind),
      ['saturation-start', 'saturation-end'],
    );
    assert.match(events[0]?.reason ?? '', /^a worker: schedule lag p99 up to 15\d ms \(3 s in a row\)$/);
    assert.equal(summary.generator.saturated, true);
    assert.equal(summary.valid, false);
    assert.match(summary.invalid?.join() ?? '', /^saturated: /);
  });

  test('--workers 2: a worker with two hot intervals in a row is not saturated, nor the run', async () => {
    const { summary } = await workersRun([2, 3]);
    assert.equal(summary.generator.saturated, false);
    assert.equal(summary.valid, true);
  });
});
