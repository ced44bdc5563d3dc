import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { exitCodeOf } from '../../src/cli/commands.js';
import { parseMergeArgs } from '../../src/cli/merge.js';
import { FakeClock } from '../../src/clock.js';
import { Consumer } from '../../src/consumer/consumer.js';
import { Ledger } from '../../src/consumer/ledger.js';
import type { Deliver, Source } from '../../src/consumer/source.js';
import { FleetloadError } from '../../src/errors.js';
import { mergeFolders, mergeParts, type Part } from '../../src/run/merge.js';
import {
  type GeneratorSide,
  type PipelineOptions,
  type PipelineResult,
  type ResultsStore,
  runPipeline,
} from '../../src/run/pipeline.js';
import { decodeLastSeq, encodeLastSeq, type RunRecord, settingsHash } from '../../src/run/record.js';
import { DEFAULT_VALIDITY } from '../../src/run/verdict.js';
import {
  decodeHistogram,
  encodeHistogram,
  type Histogram,
  newHistogram,
  recordMs,
} from '../../src/stats/histogram.js';
import { Stats, zeroCounters } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';
import { parseThreshold } from '../../src/stats/thresholds.js';
import { tmpDir } from '../helpers/process.js';

/**
 * `fleetload merge` (src/run/merge.ts) on folders written by real pipelines in fake time (two producer segments,
 * two consumers that both saw part of the fleet) and on hand-made folders: exact totals and loss, histograms,
 * refusals, associativity, thresholds judged on the merged result.
 */

const RUN_ID = 'merge-1';
const T0 = 1_800_000_000_000;
const SCENARIO: Summary['scenario'] = {
  host: 'mqtt://broker.example:1883',
  devices: 10,
  spawnRate: 10,
  runTimeMs: 5000,
  intervalMs: 1000,
  qos: 1,
  mqttVersion: '3.1.1',
};

class FakeSource implements Source {
  readonly kind = 'mqtt' as const;
  readonly description = 'fake source';
  deliver: Deliver | undefined;
  async open(deliver: Deliver): Promise<void> {
    this.deliver = deliver;
  }
  markInterval(): void {}
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A results folder in memory, dumped to disk after the run (no real I/O while fake time runs). */
class MemResults implements ResultsStore {
  files = new Map<string, string | Buffer>();
  constructor(readonly dir: string) {}
  appendRow(): void {}
  appendInterval(): void {}
  async flush(): Promise<void> {}
  async writeHistograms(map: Record<string, Histogram>): Promise<void> {
    for (const [k, h] of Object.entries(map))
      this.files.set(`histograms/${k}.hdr`, `${encodeHistogram(h)}\n`);
  }
  async writeFile(name: string, data: string | Buffer): Promise<void> {
    this.files.set(name, data);
  }
  async writeSummary(s: Summary): Promise<void> {
    this.files.set('summary.json', `${JSON.stringify(s, null, 2)}\n`);
  }
  async close(): Promise<void> {}
  dump(): string {
    mkdirSync(join(this.dir, 'histograms'), { recursive: true });
    for (const [name, data] of this.files) writeFileSync(join(this.dir, name), data);
    return this.dir;
  }
}

/**
 * Devices `ids`, one message each per second for `runTimeMs`; each message goes to the sources `route` names
 * (none: lost), `delayMs` later.
 */
function fakeGenerator(
  clock: FakeClock,
  ids: string[],
  route: (deviceId: string, seq: number) => FakeSource[],
  delayMs: number,
): GeneratorSide & { stats: Stats } {
  const stats = new Stats(clock.now());
  const last = new Map<string, number>();
  let startAt = 0;
  let endAt = Number.POSITIVE_INFINITY;
  let publishing = false;
  const slot = () => {
    if (!publishing || clock.now() >= endAt) return;
    for (const deviceId of ids) {
      stats.count('scheduled');
      const seq = (last.get(deviceId) ?? 0) + 1;
      last.set(deviceId, seq);
      stats.count('sent');
      stats.count('acked');
      stats.latency('publishAck', 1 + (seq % 3));
      const ts = clock.now();
      const payload = Buffer.from(JSON.stringify({ deviceId, seq, ts, runId: RUN_ID }));
      for (const s of route(deviceId, seq)) {
        clock.setTimeout(() => s.deliver?.({ payload, arrivalMs: clock.now() }), delayMs);
      }
    }
    clock.setTimeout(slot, 1000);
  };
  return {
    stats,
    control: {
      maxDevices: ids.length,
      targetDevices: () => ids.length,
      intervalMs: () => 1000,
      setTargetDevices: () => {},
      setIntervalMs: () => {},
    },
    start() {
      startAt = clock.now();
      endAt = startAt + SCENARIO.runTimeMs;
      stats.devicesConnected = ids.length;
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
      return ids.length;
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

/** Runs several pipelines together on one fake clock, 10 ms at a time. */
async function driveAll(clock: FakeClock, runs: PipelineOptions[]): Promise<PipelineResult[]> {
  const outcomes: Array<PipelineResult | Error | undefined> = runs.map(() => undefined);
  runs.forEach((o, i) => {
    runPipeline(o).then(
      (r) => {
        outcomes[i] = r;
      },
      (e: unknown) => {
        outcomes[i] = e instanceof Error ? e : new Error(String(e));
      },
    );
  });
  for (let i = 0; i < 100_000 && outcomes.some((o) => o === undefined); i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(10);
  }
  return outcomes.map((o) => {
    if (o === undefined) throw new Error('a pipeline did not end within the fake time allowed');
    if (o instanceof Error) throw o;
    return o;
  });
}

const devices = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `dev-${from + k}`);

interface Fleet {
  root: string;
  /** producer segments 0/2 (dev-0..4) and 1/2 (dev-5..9), consumers C1 (dev-0..6) and C2 (dev-5..9) */
  A: string;
  B: string;
  C1: string;
  C2: string;
  sent: number;
}

/**
 * Two producer segments and two consumers, as four processes would write them: devices 5 and 6 reach both
 * consumers; dev-0's seq 3 reaches none (1 lost).
 */
async function fleet(): Promise<Fleet> {
  const root = tmpDir('fleetload-merge-');
  const clock = new FakeClock(T0);
  const c1 = new FakeSource();
  const c2 = new FakeSource();
  const route = (id: string, seq: number): FakeSource[] => {
    const n = Number(id.slice(4));
    if (n === 0 && seq === 3) return [];
    return [...(n <= 6 ? [c1] : []), ...(n >= 5 ? [c2] : [])];
  };
  const base = (name: string): PipelineOptions & { results: MemResults } => {
    const results = new MemResults(join(root, name));
    return {
      results,
      runId: RUN_ID,
      openResults: async () => results,
      scenario: SCENARIO,
      clock,
      outputs: [],
      graceMs: 2000,
      thresholds: [],
      validity: DEFAULT_VALIDITY,
      monitor: quietMonitor(),
    };
  };
  const gA = fakeGenerator(clock, devices(0, 5), route, 5);
  const gB = fakeGenerator(clock, devices(5, 10), route, 5);
  const consumer = (source: FakeSource) => {
    const stats = new Stats(clock.now());
    return { source, stats, consumer: new Consumer({ stats, clock, runId: RUN_ID }) };
  };
  const runs = [
    { ...base('A'), generator: gA, segment: { index: 0, count: 2 } },
    { ...base('B'), generator: gB, segment: { index: 1, count: 2 } },
    // consumers: their own scenario block (no devices), read a while longer than the producers publish
    {
      ...base('C1'),
      scenario: { ...SCENARIO, devices: 0, spawnRate: 0, runTimeMs: 6000, intervalMs: 0 },
      consumer: consumer(c1),
      runTimeMs: 6000,
      messagesRunId: RUN_ID,
    },
    {
      ...base('C2'),
      scenario: { ...SCENARIO, devices: 0, spawnRate: 0, runTimeMs: 6000, intervalMs: 0 },
      consumer: consumer(c2),
      runTimeMs: 6000,
      messagesRunId: RUN_ID,
    },
  ];
  await driveAll(clock, runs);
  const [A, B, C1, C2] = runs.map((r) => r.results.dump()) as [string, string, string, string];
  return { root, A, B, C1, C2, sent: gA.stats.total.sent + gB.stats.total.sent };
}

const summaryOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
const recordOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<FleetloadError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FleetloadError, `a FleetloadError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  assert.fail('the merge was not refused');
}

describe('results that merge (run.json, lastseq.bin)', () => {
  test('a producer folder carries run.json (segment, settings hash, totals) and lastseq.bin; a consumer its run', async () => {
    const f = await fleet();
    const a = recordOf(f.A);
    assert.equal(a.runId, RUN_ID);
    assert.equal(a.role, 'producer');
    assert.deepEqual(a.segment, { index: 0, count: 2 });
    assert.deepEqual(a.covers, { count: 2, segments: [0] });
    assert.equal(a.settingsHash, settingsHash(a.settings));
    assert.equal(a.settingsHash, recordOf(f.B).settingsHash, 'both segments share their settings');
    assert.equal(a.counters.sent, 25);
    assert.deepEqual(a.clock, { offsetMs: 0, errorMs: null, source: 'assumed synced' });
    const last = decodeLastSeq(readFileSync(join(f.A, 'lastseq.bin')));
    assert.deepEqual(
      [...last],
      devices(0, 5).map((id) => [id, 5]),
    );
    const c = recordOf(f.C1);
    assert.equal(c.role, 'consumer');
    assert.equal(c.segment, null);
    assert.deepEqual(c.covers, { count: 0, segments: [] });
    assert.ok(existsSync(join(f.C1, 'ledger.bin')));
    assert.ok(!existsSync(join(f.C1, 'lastseq.bin')));
  });

  test('lastseq.bin round-trips; damaged files are refused before anything large is allocated', () => {
    const m = new Map([
      ['dev-000001', 17],
      ['gerät-ü', 4_294_967_295],
    ]);
    const b = encodeLastSeq(m);
    assert.deepEqual(decodeLastSeq(b), m);
    const huge = Buffer.from(b);
    huge.writeUInt32BE(0xffffffff, 8);
    assert.throws(() => decodeLastSeq(huge), /cannot fit/);
    assert.throws(() => decodeLastSeq(b.subarray(0, b.length - 1)), /truncated/);
    assert.throws(() => decodeLastSeq(Buffer.concat([b, Buffer.from([0])])), /after the last entry/);
    assert.throws(() => decodeLastSeq(Buffer.from('not a lastseq file')), /not a fleetload lastseq/);
  });
});

describe('fleetload merge', () => {
  test('exact totals; a message two consumers saw counts once; loss from the last seqs against the union', async () => {
    const f = await fleet();
    const { merged, dir } = await mergeFolders({ dirs: [f.A, f.B, f.C1, f.C2], cwd: f.root });
    const s = merged.summary;
    assert.equal(f.sent, 50);
    assert.equal(s.messages.sent, 50);
    assert.equal(s.messages.scheduled, 50);
    // C1: devices 0..6 less dev-0 seq 3 = 34; C2: devices 5..9 = 25
    assert.equal(s.messages.received, 34 + 25);
    // devices 5 and 6 reached both consumers: their 10 second deliveries are duplicates
    assert.equal(s.messages.duplicated, 10);
    assert.equal(s.messages.lost, 1);
    assert.equal(s.messages.received - s.messages.duplicated, s.messages.sent - s.messages.lost);
    assert.equal(s.latency.e2e.count, 59);
    assert.equal(s.devices.connectedPeak, 10);
    assert.equal(s.valid, true);
    assert.equal(s.passed, true);
    assert.equal(exitCodeOf(s), 0);
    // a normal results folder, describing what it covers
    assert.deepEqual(summaryOf(dir), s);
    const r = recordOf(dir);
    assert.equal(r.role, 'run');
    assert.deepEqual(r.covers, { count: 2, segments: [0, 1] });
    assert.equal(r.parts.length, 4);
    assert.equal(r.members?.length, 4);
    for (const file of ['ledger.bin', 'lastseq.bin', 'histograms/e2e.hdr', 'histograms/publishAck.hdr'])
      assert.ok(existsSync(join(dir, file)), file);
    assert.equal(decodeLastSeq(readFileSync(join(dir, 'lastseq.bin'))).size, 10);
  });

  test('one folder merged alone gives its own summary back (the same arithmetic as the run)', async () => {
    const root = tmpDir('fleetload-merge-');
    const clock = new FakeClock(T0);
    const source = new FakeSource();
    const results = new MemResults(join(root, 'R'));
    const stats = new Stats(clock.now());
    const g = fakeGenerator(
      clock,
      devices(0, 10),
      (id, seq) => (id === 'dev-3' && seq === 2 ? [] : [source]),
      7,
    );
    await driveAll(clock, [
      {
        runId: RUN_ID,
        openResults: async () => results,
        scenario: SCENARIO,
        clock,
        outputs: [],
        graceMs: 2000,
        thresholds: [parseThreshold('e2e.p99<100'), parseThreshold('loss<1%')],
        validity: DEFAULT_VALIDITY,
        monitor: quietMonitor(),
        generator: g,
        consumer: { source, stats, consumer: new Consumer({ stats, clock, runId: RUN_ID }) },
      },
    ]);
    const dir = results.dump();
    assert.equal(recordOf(dir).role, 'run');
    const { merged } = await mergeFolders({ dirs: [dir], cwd: root });
    assert.equal(merged.summary.messages.lost, 1);
    assert.deepEqual(merged.summary, summaryOf(dir));
  });

  test('a merge of merges equals one merge, in any order (summary.json byte-equal)', async () => {
    const f = await fleet();
    const one = await mergeFolders({ dirs: [f.A, f.B, f.C1, f.C2], cwd: f.root, out: 'one' });
    const ab = await mergeFolders({ dirs: [f.B, f.A], cwd: f.root, out: 'ab' });
    const cc = await mergeFolders({ dirs: [f.C2, f.C1], cwd: f.root, out: 'cc' });
    const two = await mergeFolders({ dirs: [cc.dir, ab.dir], cwd: f.root, out: 'two' });
    const mixed = await mergeFolders({ dirs: [f.C2, ab.dir, f.C1], cwd: f.root, out: 'mixed' });
    const text = (d: string) => readFileSync(join(d, 'summary.json'), 'utf8');
    assert.equal(text(two.dir), text(one.dir));
    assert.equal(text(mixed.dir), text(one.dir));
    assert.equal(ab.merged.summary.messages.sent, 50);
    assert.equal(ab.merged.summary.messages.lost, 0, 'producers alone: no loss is measured');
    for (const h of ['e2e', 'publishAck'])
      assert.equal(
        readFileSync(join(two.dir, 'histograms', `${h}.hdr`), 'utf8'),
        readFileSync(join(one.dir, 'histograms', `${h}.hdr`), 'utf8'),
      );
    assert.deepEqual(recordOf(two.dir).parts, recordOf(one.dir).parts);
  });

  test('a missing segment: exit 2 naming it, nothing written; --allow-incomplete merges and marks it', async () => {
    const f = await fleet();
    await refused(mergeFolders({ dirs: [f.A, f.C1, f.C2], cwd: f.root, out: 'x' }), /segment 1\/2 missing/);
    assert.ok(!existsSync(join(f.root, 'x')), 'nothing written');
    assert.ok(!existsSync(join(f.root, 'fleetload-results')));
    const { merged } = await mergeFolders({
      dirs: [f.A, f.C1, f.C2],
      cwd: f.root,
      out: 'x',
      allowIncomplete: true,
    });
    assert.deepEqual(merged.summary.incomplete, {
      reason: 'merged without every segment',
      lost: ['segment 1/2: missing'],
    });
    assert.equal(merged.summary.passed, false);
    assert.equal(exitCodeOf(merged.summary), 1);
    assert.equal(merged.summary.messages.lost, 1, "loss of segment 0's devices only");
    // completed later by the missing segment: the same as one merge of everything
    const later = await mergeFolders({ dirs: [join(f.root, 'x'), f.B], cwd: f.root, out: 'y' });
    const one = await mergeFolders({ dirs: [f.A, f.B, f.C1, f.C2], cwd: f.root, out: 'z' });
    assert.equal(
      readFileSync(join(later.dir, 'summary.json'), 'utf8'),
      readFileSync(join(one.dir, 'summary.json'), 'utf8'),
    );
  });

  test('a doubled segment or the same folder twice: exit 2 naming them', async () => {
    const f = await fleet();
    const a2 = join(f.root, 'A-copy');
    cpSync(f.A, a2, { recursive: true });
    await refused(
      mergeFolders({ dirs: [f.A, f.B, a2], cwd: f.root }),
      /segment given twice: 0\/2 in .*A and .*A-copy/,
    );
    const c2 = join(f.root, 'C1-copy');
    cpSync(f.C1, c2, { recursive: true });
    await refused(mergeFolders({ dirs: [f.A, f.B, f.C1, c2], cwd: f.root }), /hold the same results/);
    const ab = await mergeFolders({ dirs: [f.A, f.B], cwd: f.root, out: 'ab' });
    await refused(mergeFolders({ dirs: [ab.dir, f.B], cwd: f.root }), /segment given twice: 1\/2/);
  });

  test('another run or other settings: exit 2 saying which folder and which setting', async () => {
    const f = await fleet();
    const edit = (from: string, name: string, change: (r: RunRecord) => void) => {
      const to = join(f.root, name);
      cpSync(from, to, { recursive: true });
      const r = recordOf(to);
      change(r);
      writeFileSync(join(to, 'run.json'), JSON.stringify(r));
      return to;
    };
    const other = edit(f.B, 'B-other-run', (r) => {
      r.runId = 'another-run';
    });
    await refused(
      mergeFolders({ dirs: [f.A, other], cwd: f.root }),
      /B-other-run is from run another-run, not merge-1/,
    );
    const faster = edit(f.B, 'B-faster', (r) => {
      r.settings.spawnRate = 20;
    });
    await refused(mergeFolders({ dirs: [f.A, faster], cwd: f.root }), /B-faster .*spawnRate is 20, not 10/);
    const third = edit(f.B, 'B-of-3', (r) => {
      r.covers = { count: 3, segments: [1] };
    });
    await refused(mergeFolders({ dirs: [f.A, third], cwd: f.root }), /segment of 3/);
    await refused(mergeFolders({ dirs: [f.A, join(f.root, 'nope')], cwd: f.root }), /does not exist/);
    const everyRun = edit(f.C1, 'C-any', (r) => {
      r.runId = null;
    });
    await refused(mergeFolders({ dirs: [f.A, f.B, everyRun], cwd: f.root }), /without --run-id/);
    // --run-id picks the run: then the folders of the other one are the odd ones
    await refused(
      mergeFolders({ dirs: [f.A, f.B], cwd: f.root, runId: 'another-run' }),
      /is from run merge-1, not another-run/,
    );
  });

  test('bad command lines: exit 2 with one line', () => {
    assert.throws(
      () => parseMergeArgs([]),
      (e: FleetloadError) => e.exitCode === 2 && /needs the results folders/.test(e.message),
    );
    assert.throws(() => parseMergeArgs(['a', '--bogus']), /unknown option --bogus/);
    assert.throws(() => parseMergeArgs(['a', '--threshold', 'e2e.p99<<']), FleetloadError);
    assert.throws(() => parseMergeArgs(['a', '--run-id', '../x']), /--run-id/);
    const a = parseMergeArgs([
      'a',
      'b',
      '--out=m',
      '--threshold',
      'e2e.p99<500',
      '--allow-incomplete',
      '--json',
    ]);
    assert.deepEqual(a.dirs, ['a', 'b']);
    assert.equal(a.out, 'm');
    assert.equal(a.thresholds?.[0]?.expr, 'e2e.p99<500');
    assert.equal(a.allowIncomplete, true);
  });
});

// ------------------------------------------------------------------------------------------ hand-made folders

/** A run folder (producer and consumer in one) of segment i/2 whose consumer saw every message with these delays. */
function runPart(index: number, delaysMs: readonly number[]): Part {
  const e2e = newHistogram();
  for (const d of delaysMs) recordMs(e2e, d);
  const ledger = new Ledger();
  const id = `dev-${index}`;
  for (let seq = 1; seq <= delaysMs.length; seq++) ledger.record(id, seq);
  const counters = zeroCounters();
  counters.scheduled = counters.sent = counters.acked = counters.received = delaysMs.length;
  const settings = { devices: 2, runTimeMs: 10_000 };
  const record: RunRecord = {
    format: 'fleetload-run',
    version: 1,
    fleetloadVersion: 'test',
    id: `part-${index}`,
    runId: 'hand',
    role: 'run',
    segment: { index, count: 2 },
    covers: { count: 2, segments: [index] },
    parts: [`part-${index}`],
    settingsHash: settingsHash(settings),
    settings,
    scenario: { ...SCENARIO, devices: 2 },
    counters,
    connectedPeak: 1,
    errors: [],
    generator: { cpuPercentPeak: 5, eventLoopLagP99: 1, saturated: false },
    activeMs: 10_000,
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(T0 + 12_000).toISOString(),
    interrupted: false,
    lostParts: [],
    thresholds: [],
    validity: DEFAULT_VALIDITY,
    clock: { offsetMs: 0, errorMs: null, source: 'assumed synced' },
  };
  return {
    dir: `seg-${index}`,
    record,
    histograms: { e2e: encodeHistogram(e2e) },
    ledger: Ledger.deserialize(ledger.serialize()),
    lastSeq: new Map([[id, delaysMs.length]]),
  };
}

describe('fleetload merge: histograms and thresholds', () => {
  test('the merged histogram is the histogram of the union of the samples', () => {
    const a = Array.from({ length: 1000 }, (_, k) => 1 + ((k * 37) % 50) + k / 1000);
    const b = Array.from({ length: 500 }, (_, k) => 100 + ((k * 101) % 1900));
    const union = newHistogram();
    for (const d of [...a, ...b]) recordMs(union, d);
    const m = mergeParts({ parts: [runPart(1, b), runPart(0, a)] });
    const h = m.histograms.e2e as Histogram;
    const u = decodeHistogram(encodeHistogram(union));
    assert.equal(h.totalCount, 1500);
    for (let p = 0; p <= 100; p += 0.5)
      assert.equal(h.getValueAtPercentile(p), u.getValueAtPercentile(p), `p${p}`);
    assert.equal(encodeHistogram(h), encodeHistogram(u));
    assert.equal(m.summary.messages.lost, 0);
    assert.equal(m.summary.messages.received, 1500);
  });

  test('one slow segment: the merged p99 fails the threshold the mean of per-segment p99s would pass', () => {
    const fast = runPart(
      0,
      Array.from({ length: 1000 }, () => 10),
    );
    const slow = runPart(
      1,
      Array.from({ length: 1000 }, () => 1000),
    );
    const threshold = parseThreshold('e2e.p99<600');
    const p99 = (p: Part) => decodeHistogram(p.histograms.e2e as string).getValueAtPercentile(99) / 1000;
    const meanOfP99s = (p99(fast) + p99(slow)) / 2;
    assert.ok(meanOfP99s < 600, `the mean of the per-segment p99s (${meanOfP99s} ms) would pass`);
    const m = mergeParts({ parts: [fast, slow], thresholds: [threshold] });
    assert.equal(m.summary.thresholds.length, 1);
    assert.equal(m.summary.thresholds[0]?.passed, false);
    assert.ok(
      Math.abs((m.summary.thresholds[0]?.value ?? 0) - 1000) < 1,
      'judged on the merged p99 (1000 ms)',
    );
    assert.equal(m.summary.valid, true);
    assert.equal(m.summary.passed, false);
    assert.equal(exitCodeOf(m.summary), 1);
    // without --threshold, the thresholds the folders judged are judged again on the merged result
    fast.record.thresholds = ['e2e.p99<600'];
    assert.equal(mergeParts({ parts: [fast, slow] }).summary.thresholds[0]?.passed, false);
  });

  test('a saturated segment makes the merged run invalid (exit 5)', () => {
    const a = runPart(0, [10, 10]);
    const b = runPart(1, [10, 10]);
    b.record.generator = { ...b.record.generator, saturated: true };
    const m = mergeParts({ parts: [a, b] });
    assert.equal(m.summary.valid, false);
    assert.equal(exitCodeOf(m.summary), 5);
  });
});
