import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compareCmd } from '../../src/cli/compare.js';
import {
  compareRuns,
  type FigureComparison,
  hdrResolutionUs,
  poissonRatesPValue,
  regressions,
} from '../../src/report/compare.js';
import type { HistogramName, ResultsData } from '../../src/report/load.js';
import { encodeHistogram, type Histogram, newHistogram, recordMs } from '../../src/stats/histogram.js';
import type { Summary } from '../../src/stats/summary.js';
import { flatLatency, summaryFixture } from '../helpers/summary.js';

/**
 * Verdicts of `fleetload compare`: identical runs are within noise everywhere, a doubled latency is worse (and a
 * regression beyond 10%), a halved one better, small loss differences are noise and large ones are not.
 */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A latency histogram of n samples around `p50Ms` with a tail; `seed` changes the sample, not the shape. */
function hist(p50Ms: number, n = 20_000, seed = 1): Histogram {
  const rnd = prng(seed);
  const h = newHistogram();
  for (let i = 0; i < n; i++) {
    // log-normal-ish: exp of a sum of uniforms
    const g = rnd() + rnd() + rnd() - 1.5;
    recordMs(h, p50Ms * Math.exp(g * 0.8));
  }
  return h;
}

/** A 100 s run of 1000 devices; summary.json's latencies are all 0 (the figures come from the histograms). */
function summary(
  over: { sent?: number; lost?: number; duplicated?: number; saturated?: boolean } = {},
): Summary {
  const sent = over.sent ?? 100_000;
  const lost = over.lost ?? 0;
  const none = flatLatency(0, 0);
  return summaryFixture({
    runId: 'r',
    startedAt: '2026-11-27T10:00:00.000Z',
    endedAt: '2026-11-27T10:01:40.000Z',
    scenario: { host: 'mqtt://127.0.0.1:1883', devices: 1000, spawnRate: 100, runTimeMs: 100_000 },
    devices: { target: 1000, connectedPeak: 1000 },
    messages: {
      scheduled: sent,
      sent,
      acked: sent,
      received: sent - lost + (over.duplicated ?? 0),
      lost,
      duplicated: over.duplicated ?? 0,
    },
    latency: { e2e: none, publishAck: none, connect: none, scheduleLag: none },
    rates: { sentPerSec: sent / 100, receivedPerSec: (sent - lost) / 100 },
    generator: { saturated: over.saturated ?? false },
  });
}

function run(
  scale: number,
  over: Parameters<typeof summary>[0] = {},
  seed = 1,
  dir = `/runs/${scale}`,
): ResultsData {
  const histograms: Partial<Record<HistogramName, Histogram>> = {
    e2e: hist(5 * scale, 20_000, seed),
    publishAck: hist(1 * scale, 20_000, seed + 1),
    connect: hist(2 * scale, 1000, seed + 2),
    scheduleLag: hist(0.3 * scale, 20_000, seed + 3),
  };
  return {
    dir,
    summary: summary(over),
    intervals: undefined,
    timeseries: undefined,
    scenario: undefined,
    histograms,
    notes: [],
  };
}

const byId = (figs: FigureComparison[], id: string): FigureComparison => {
  const f = figs.find((x) => x.id === id);
  assert.ok(f, id);
  return f;
};
const LATENCIES = [
  'e2e.p50',
  'e2e.p95',
  'e2e.p99',
  'e2e.max',
  'publishAck.p50',
  'publishAck.p99',
  'connect.p95',
  'scheduleLag.p99',
];

test('identical runs: every figure within noise, no regression', () => {
  const c = compareRuns(run(1), run(1));
  assert.equal(c.figures.length, 13);
  for (const f of c.figures) {
    assert.equal(f.verdict, 'within noise', f.id);
    assert.equal(f.diff, 0, f.id);
  }
  assert.deepEqual(regressions(c, 0), []);
  assert.deepEqual(c.notes, []);
});

test('two samples of the same distribution: within noise (the percentile intervals overlap)', () => {
  const c = compareRuns(run(1, {}, 1), run(1, {}, 99));
  for (const id of LATENCIES.filter((x) => x !== 'e2e.max')) {
    assert.equal(byId(c.figures, id).verdict, 'within noise', `${id}: ${byId(c.figures, id).noise}`);
  }
});

test('2× the latency: worse, from the histograms, and a regression beyond 10%', () => {
  const c = compareRuns(run(1), run(2, {}, 5));
  for (const id of LATENCIES) {
    const f = byId(c.figures, id);
    assert.equal(f.verdict, 'worse', `${id}: ${f.noise}`);
    assert.equal(f.source, 'histogram');
    assert.ok((f.diffPct ?? 0) > 80 && (f.diffPct ?? 0) < 120, `${id} ${f.diffPct}`);
  }
  assert.ok(regressions(c, 10).some((f) => f.id === 'e2e.p99'));
  assert.deepEqual(regressions(c, 500), []);
  // the figures are the histograms' own percentiles, not summary.json's (which are all 0 here)
  assert.ok((byId(c.figures, 'e2e.p50').a ?? 0) > 4);
});

test('half the latency: better; never a regression', () => {
  const c = compareRuns(run(1), run(0.5, {}, 5));
  for (const id of LATENCIES) assert.equal(byId(c.figures, id).verdict, 'better', id);
  assert.deepEqual(regressions(c, 0), []);
});

test('a few percent slower: within the 5% band', () => {
  const c = compareRuns(run(1), run(1.03));
  assert.equal(byId(c.figures, 'e2e.p50').verdict, 'within noise');
});

test('loss: 3 vs 5 lost of 100,000 is noise; 3 vs 60 is worse; 60 vs 3 better', () => {
  const noise = byId(compareRuns(run(1, { lost: 3 }), run(1, { lost: 5 })).figures, 'loss');
  assert.equal(noise.verdict, 'within noise', noise.noise);
  assert.ok((noise.diffPct ?? 0) > 60, 'a big relative change, yet noise');
  const worse = compareRuns(run(1, { lost: 3 }), run(1, { lost: 60 }));
  assert.equal(byId(worse.figures, 'loss').verdict, 'worse');
  assert.ok(regressions(worse, 10).some((f) => f.id === 'loss'));
  assert.equal(
    byId(compareRuns(run(1, { lost: 60 }), run(1, { lost: 3 })).figures, 'loss').verdict,
    'better',
  );
  // from zero: 0 → 1 is noise, 0 → 30 is not (diffPct is infinite: "new")
  assert.equal(byId(compareRuns(run(1), run(1, { lost: 1 })).figures, 'loss').verdict, 'within noise');
  const fromZero = byId(compareRuns(run(1), run(1, { lost: 30 })).figures, 'loss');
  assert.equal(fromZero.verdict, 'worse');
  assert.equal(fromZero.diffPct, Infinity);
});

test('loss is compared per message sent: the same rate in a run twice as long is noise', () => {
  const f = byId(
    compareRuns(run(1, { lost: 20, sent: 100_000 }), run(1, { lost: 40, sent: 200_000 })).figures,
    'loss',
  );
  assert.equal(f.verdict, 'within noise');
  assert.equal(f.diff, 0);
});

test('poissonRatesPValue: exact test agrees with known values', () => {
  assert.equal(poissonRatesPValue(0, 1, 0, 1), 1);
  // 0 vs 10 with equal exposure: p = 2 × 0.5^10
  assert.ok(Math.abs(poissonRatesPValue(0, 1, 10, 1) - 2 / 1024) < 1e-9);
  assert.ok(poissonRatesPValue(5, 1, 5, 1) > 0.99);
  assert.ok(poissonRatesPValue(50_000, 1, 52_000, 1) < 1e-6, 'normal approximation for large counts');
});

test('hdrResolutionUs: 1 µs below 2048 µs, then a power of two ≈ value / 1000', () => {
  assert.equal(hdrResolutionUs(1), 1);
  assert.equal(hdrResolutionUs(2047), 1);
  assert.equal(hdrResolutionUs(2048), 2);
  assert.equal(hdrResolutionUs(1_000_000), 512);
});

test('notes: different scenarios and a saturated generator are said', () => {
  const b = run(1, { saturated: true });
  if (b.summary) b.summary.scenario.devices = 2000;
  const c = compareRuns(run(1), b);
  assert.ok(c.notes.some((n) => /devices 1000 → 2000/.test(n)));
  assert.ok(c.notes.some((n) => /run B: the generator was saturated/.test(n)));
});

test('notes: durations read as the flags take them (run time 10s → 6s), not milliseconds', () => {
  const a = run(1);
  const b = run(1);
  if (!a.summary || !b.summary) throw new Error('fixture without summary');
  Object.assign(a.summary.scenario, { runTimeMs: 10_000, intervalMs: 1000, jitterMs: 0 });
  Object.assign(b.summary.scenario, { runTimeMs: 6000, intervalMs: 250, jitterMs: 120_000 });
  const note = compareRuns(a, b).notes.find((n) => n.startsWith('the runs had different scenarios'));
  assert.equal(
    note,
    'the runs had different scenarios: run time 10s → 6s, interval 1s → 250ms, jitter 0ms → 2m',
  );
});

test('notes: payload, encoding, topic and stages that differ are said; keys neither run has are not', () => {
  const a = run(1);
  const b = run(1);
  if (!a.summary || !b.summary) throw new Error('fixture without summary');
  Object.assign(a.summary.scenario, { topic: 't/{deviceId}', encoding: 'json', payloadSizeBytes: 64 });
  Object.assign(b.summary.scenario, {
    topic: 'u/{deviceId}',
    encoding: 'binary',
    payloadTemplate: 'abcdef012345',
    stages: ['10000:5', '5000:0'],
  });
  const note = compareRuns(a, b).notes.find((n) => n.startsWith('the runs had different scenarios'));
  assert.ok(note, 'a scenario note');
  assert.match(note, /topic t\/\{deviceId\} → u\/\{deviceId\}/);
  assert.match(note, /encoding json → binary/);
  assert.match(note, /payload bytes 64 → \(not recorded\)/);
  assert.match(note, /payload template \(not recorded\) → abcdef012345/);
  assert.match(note, /stages \(not recorded\) → 10000:5 5000:0/);
  assert.doesNotMatch(note, /jitter|consumer/, 'keys neither summary has are no difference');
  const same = compareRuns(run(1), run(1)).notes;
  assert.ok(!same.some((n) => n.startsWith('the runs had different scenarios')), same.join('\n'));
});

// ---------------------------------------------------------------------------------------------- the command

const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function writeRun(root: string, name: string, d: ResultsData): Promise<string> {
  const dir = join(root, name);
  await mkdir(join(dir, 'histograms'), { recursive: true });
  await writeFile(join(dir, 'summary.json'), JSON.stringify(d.summary));
  for (const [k, h] of Object.entries(d.histograms)) {
    await writeFile(join(dir, 'histograms', `${k}.hdr`), `${encodeHistogram(h as Histogram)}\n`);
  }
  return dir;
}

function io(cwd: string, tty = false) {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      env: {},
      cwd,
      stdout: {
        isTTY: tty,
        write: (s: string) => {
          out.stdout += s;
          return true;
        },
      },
      stderr: {
        write: (s: string) => {
          out.stderr += s;
          return true;
        },
      },
    } as unknown as Parameters<typeof compareCmd>[1],
  };
}

test('compareCmd: table, --fail-on-regression exit codes, --json, bad input', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fleetload-compare-'));
  roots.push(root);
  await writeRun(root, 'a', run(1));
  await writeRun(root, 'b', run(2, {}, 5));
  await writeRun(root, 'a2', run(1));

  let t = io(root);
  assert.equal(await compareCmd(['a', 'b'], t.io), 0, 'no --fail-on-regression: exit 0');
  assert.match(t.out.stdout, /^figure\s+A\s+B\s+Δ\s+Δ%\s+verdict$/m);
  assert.match(t.out.stdout, /^e2e p99 \(ms\)\s+[\d.]+\s+[\d.]+\s+\+[\d.]+\s+\+\d+(\.\d)?%\s+worse$/m);
  assert.ok(!t.out.stdout.includes('\x1b['), 'no colors when not a TTY');

  t = io(root);
  assert.equal(await compareCmd(['a', 'b', '--fail-on-regression', '10'], t.io), 1);
  assert.match(t.out.stdout, /REGRESSION: .*e2e p99/);
  t = io(root);
  assert.equal(await compareCmd(['a', 'a2', '--fail-on-regression=10%'], t.io), 0);
  assert.match(t.out.stdout, /no figure got worse by more than 10%/);
  t = io(root);
  assert.equal(await compareCmd(['b', 'a', '--fail-on-regression', '10'], t.io), 0, 'B better than A');

  t = io(root);
  assert.equal(await compareCmd(['a', 'b', '--json', '--fail-on-regression', '10'], t.io), 1);
  const j = JSON.parse(t.out.stdout) as {
    figures: { id: string; verdict: string; a: number; b: number }[];
    regressions: string[];
    passed: boolean;
  };
  assert.equal(j.passed, false);
  assert.ok(j.regressions.includes('e2e.p99'));
  assert.equal(j.figures.find((f) => f.id === 'e2e.p50')?.verdict, 'worse');

  t = io(root, true);
  await compareCmd(['a', 'b'], t.io);
  assert.ok(t.out.stdout.includes('\x1b[31mworse'), 'colors on a TTY');

  const bad: Array<[string[], RegExp]> = [
    [['a'], /needs two results folders/],
    [['a', 'b', 'c'], /needs two results folders/],
    [['a', 'b', '--fail-on-regression'], /needs a percentage/],
    [['a', 'b', '--fail-on-regression', 'ten'], /is not a percentage/],
    [['a', 'b', '--frobnicate'], /unknown option --frobnicate/],
    [['a', 'nope'], /does not exist/],
  ];
  for (const [argv, message] of bad) {
    await assert.rejects(compareCmd(argv, io(root).io), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2, argv.join(' '));
      assert.match(err.message, message);
      return true;
    });
  }
  // a crashed run (no summary.json) cannot be compared
  await mkdir(join(root, 'crashed'));
  await writeFile(join(root, 'crashed', 'timeseries.csv'), 'time,sent\n');
  await assert.rejects(compareCmd(['a', 'crashed'], io(root).io), /run B .* has no summary\.json/);
});

test('compare: control characters from a crafted summary.json never reach the terminal raw', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fleetload-compare-'));
  roots.push(root);
  const evil = '\x1b]0;pwned\x07\x1b[2J\x1b[31m\u009b1;1H\u202e\r\n\t';
  await writeRun(root, 'a', run(1));
  const b = run(1);
  const sb = b.summary as Summary;
  sb.runId = `r${evil}`;
  sb.startedAt = `2026${evil}`;
  // values of the wrong type too: a string where a number belongs, shown in the header and in a note
  (sb.scenario as unknown as Record<string, unknown>).devices = `1000${evil}`;
  (sb.scenario as unknown as Record<string, unknown>).intervalMs = `1000${evil}`;
  await writeRun(root, 'b', b);
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/; // anything but the table's own line breaks

  let t = io(root);
  assert.equal(await compareCmd(['a', 'b'], t.io), 0);
  assert.doesNotMatch(t.out.stdout, raw);
  assert.ok(t.out.stdout.includes('r\\x1b]0;pwned\\x07\\x1b[2J'), 'shown as visible escapes');
  assert.ok(t.out.stdout.includes('\\x9b1;1H\\u202e\\x0d\\x0a\\x09'));
  assert.match(t.out.stdout, /note: the runs had different scenarios: .*interval 1s → 1000\\x1b/);

  // on a TTY only fleetload's own color codes remain
  t = io(root, true);
  await compareCmd(['a', 'b'], t.io);
  const withoutOwnColors = t.out.stdout.replace(/\x1b\[(?:[0-9]{1,2})m/g, '');
  assert.doesNotMatch(withoutOwnColors, raw);
  assert.ok(!t.out.stdout.includes('\x1b]0;'), 'no title change');
  assert.ok(!t.out.stdout.includes('\x1b[2J'), 'no screen clear');

  // --json: still valid JSON carrying the exact strings, with C1 and bidi escaped as well
  t = io(root);
  await compareCmd(['a', 'b', '--json'], t.io);
  assert.doesNotMatch(t.out.stdout, raw);
  const j = JSON.parse(t.out.stdout) as { b: { runId: string } };
  assert.equal(j.b.runId, `r${evil}`);

  // a summary.json that is not JSON: the parse error quotes its bytes; they come out escaped
  await mkdir(join(root, 'broken'));
  await writeFile(join(root, 'broken', 'summary.json'), `\x1b]0;pwned\x07\x1b[2J{`);
  await assert.rejects(compareCmd(['a', 'broken'], io(root).io), (err: Error & { exitCode?: number }) => {
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /not valid JSON/);
    assert.doesNotMatch(err.message, raw);
    return true;
  });
});
