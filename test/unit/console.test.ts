import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { IntervalFigures } from '../../src/run/output.js';
import {
  bytes,
  eventLine,
  formatSummary,
  type LiveFigures,
  LiveLine,
  terminalOutput,
} from '../../src/sinks/console.js';
import type { LostRange } from '../../src/stats/device-report.js';
import type { LatencySummary } from '../../src/stats/histogram.js';
import type { Summary } from '../../src/stats/summary.js';
import { type SummaryOverrides, summaryFixture } from '../helpers/summary.js';

/** A real Writable that records what was written, dressed as a terminal or not. */
function fakeStream(tty: { columns: number } | undefined) {
  const chunks: string[] = [];
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: unknown, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number };
  if (tty) {
    stream.isTTY = true;
    stream.columns = tty.columns;
  }
  return { stream, chunks, text: () => chunks.join('') };
}

/** What the terminal output reads of an interval (the rest of MergedInterval is not looked at). */
const intervalOf = () => ({
  durationMs: 1000,
  devicesConnected: 10,
  counters: { sent: 10, received: 10, bytesSent: 1000, bytesReceived: 800 },
  histograms: { e2e: { totalCount: 0 } },
});

const figures = (patch: Partial<LiveFigures> = {}): LiveFigures => ({
  elapsedMs: 65_000,
  runTimeMs: 300_000,
  devicesConnected: 950,
  devicesTarget: 1000,
  sentPerSec: 950,
  receivedPerSec: 948.5,
  e2eP50: 12.345,
  e2eP99: 45.6,
  lost: 3,
  phase: 'steady',
  ...patch,
});

test('not a TTY: one plain timestamped line per second, no escape codes, no carriage returns', () => {
  const { stream, chunks, text } = fakeStream(undefined);
  let now = Date.UTC(2025, 0, 1, 12, 0, 0);
  const live = new LiveLine(stream, { now: () => now });
  live.update(figures({ phase: 'ramp', elapsedMs: 1000 }));
  now += 300;
  live.update(figures({ elapsedMs: 1300 })); // within the same second: skipped
  now += 700;
  live.update(figures({ elapsedMs: 2000 }));
  now += 1000;
  live.update(figures({ e2eP50: undefined, e2eP99: undefined, elapsedMs: 3000 }));
  live.done();
  assert.equal(chunks.length, 3);
  assert.doesNotMatch(text(), /\x1b/);
  assert.doesNotMatch(text(), /\r/);
  const lines = text().split('\n').filter(Boolean);
  assert.equal(lines.length, 3);
  assert.equal(
    lines[0],
    '2025-01-01T12:00:00.000Z ramp 0:01/5:00 devices 950/1,000 sent 950/s received 948.5/s e2e p50 12.3ms p99 45.6ms lost 3',
  );
  assert.match(lines[1] ?? '', /^2025-01-01T12:00:01\.000Z steady 0:02\/5:00 .* lost 3$/);
  assert.match(lines[2] ?? '', /^2025-01-01T12:00:02\.000Z .* e2e – lost 3$/);
});

test('not a TTY: plainEverySec spaces the lines out', () => {
  const { stream, chunks } = fakeStream(undefined);
  let now = 0;
  const live = new LiveLine(stream, { plainEverySec: 10, now: () => now });
  for (let s = 0; s <= 30; s++) {
    now = s * 1000;
    live.update(figures({ elapsedMs: now }));
  }
  assert.equal(chunks.length, 4); // at 0, 10, 20, 30 s
});

test('not a TTY: one line per second of run time, rounded: no second repeated or skipped when cuts jitter or come late', () => {
  const { stream, text } = fakeStream(undefined);
  let now = 0;
  const live = new LiveLine(stream, { now: () => now });
  // cuts a little before and after the whole seconds, one 300 ms late and the next on time (700 ms after it)
  for (const [wallMs, elapsedMs] of [
    [3_000, 3_000.4],
    [4_000, 3_999.8],
    [5_300, 5_300],
    [6_000, 6_000.2],
    [7_000, 6_999.6],
  ] as const) {
    now = wallMs;
    live.update(figures({ elapsedMs, runTimeMs: 20_000 }));
  }
  const clocks = text()
    .split('\n')
    .filter(Boolean)
    .map((l) => /steady (\d+:\d\d)\//.exec(l)?.[1]);
  assert.deepEqual(clocks, ['0:03', '0:04', '0:05', '0:06', '0:07']);
});

test('the drain shows its own time against the grace period, not run time past the end', () => {
  const { stream, text } = fakeStream({ columns: 200 });
  const live = new LiveLine(stream);
  live.update(
    figures({ phase: 'drain', elapsedMs: 17_400, runTimeMs: 15_000, drainMs: 2_400, graceMs: 5_000 }),
  );
  assert.match(text(), /drain 0:02\/0:05 · devices/);
  assert.doesNotMatch(text(), /0:17\/0:15/);
  // through the terminal output: the drain counts from the last interval of the load
  const out = fakeStream({ columns: 200 });
  const term = terminalOutput(new LiveLine(out.stream), {
    runTimeMs: 15_000,
    graceMs: 5_000,
    devicesTarget: 10,
    header: () => '',
  });
  const at = (elapsedMs: number, phase: LiveFigures['phase']) =>
    term.interval?.({
      elapsedMs,
      phase,
      gaps: 0,
      cpuPercent: 0,
      eventLoopLagP99Ms: 0,
      interval: intervalOf(),
    } as unknown as IntervalFigures);
  at(14_000, 'steady');
  at(15_000, 'steady');
  at(16_000, 'drain');
  at(18_000, 'drain');
  const shown = out.chunks.map((c) => /(steady|drain) [\d:/]+/.exec(c)?.[0]);
  assert.deepEqual(shown, ['steady 0:14/0:15', 'steady 0:15/0:15', 'drain 0:01/0:05', 'drain 0:03/0:05']);
});

test('a TTY: redraws one line in place with \\r and clear-to-end-of-line, fitting the width', () => {
  const { stream, chunks, text } = fakeStream({ columns: 200 });
  const live = new LiveLine(stream);
  live.update(figures());
  live.update(figures({ elapsedMs: 66_000, lost: 4 }));
  assert.equal(chunks.length, 2);
  for (const c of chunks) {
    assert.ok(c.startsWith('\r\x1b[K'), JSON.stringify(c));
    assert.doesNotMatch(c, /\n/);
  }
  assert.match(
    chunks[1] ?? '',
    /steady 1:06\/5:00 · devices 950\/1,000 · sent 950\/s · received 948\.5\/s · e2e p50 .* · lost 4$/,
  );
  live.done();
  live.done();
  live.update(figures());
  assert.equal(chunks.length, 3, 'done ends the line once; updates after it are ignored');
  assert.equal(chunks[2], '\n');
  assert.ok(text().endsWith('lost 4\n'));
});

test('a narrow TTY shortens the figures, then drops the least important first, keeping phase, devices, lost', () => {
  for (const columns of [20, 40, 60, 80]) {
    const { stream, chunks } = fakeStream({ columns });
    new LiveLine(stream).update(figures());
    const visible = (chunks[0] ?? '').replace('\r\x1b[K', '');
    assert.ok(visible.length <= columns - 1, `${columns}: ${visible}`);
    assert.ok(visible.startsWith('steady 1:05/5:00'.slice(0, columns - 1)), visible);
    if (columns === 60) {
      assert.equal(visible, 'steady 1:05/5:00 · dev 950/1,000 · tx 950/s · lost 3');
    }
    if (columns === 80) {
      // the delay is what a load test is for: it stays at the classic width
      assert.equal(visible, 'steady 1:05/5:00 · dev 950/1,000 · tx 950/s · e2e p50/p99 12.3/45.6ms · lost 3');
    }
  }
});

test('80 columns keep e2e with a large fleet and long run', () => {
  const { stream, chunks } = fakeStream({ columns: 80 });
  new LiveLine(stream).update(
    figures({
      elapsedMs: 605_000,
      runTimeMs: 1_800_000,
      devicesConnected: 95_000,
      devicesTarget: 100_000,
      sentPerSec: 95_000,
      receivedPerSec: 94_800,
      e2eP99: 456,
      lost: 1234,
    }),
  );
  const visible = (chunks[0] ?? '').replace('\r\x1b[K', '');
  assert.ok(visible.length <= 79, visible);
  assert.match(visible, /e2e p50\/p99 12\.3\/456ms/);
  assert.match(visible, /lost 1,234$/);
});

test('a TTY that does not say its width (or says 0) is drawn as 80 columns, not as nothing', () => {
  for (const columns of [undefined, 0, Number.NaN]) {
    const { stream, chunks } = fakeStream({ columns: 80 });
    stream.columns = columns;
    const live = new LiveLine(stream);
    live.update(figures());
    const visible = (chunks[0] ?? '').replace('\r\x1b[K', '');
    assert.equal(
      visible,
      'steady 1:05/5:00 · dev 950/1,000 · tx 950/s · e2e p50/p99 12.3/45.6ms · lost 3',
      String(columns),
    );
  }
});

test('println on a TTY keeps the live line intact below the text', () => {
  const { stream, chunks } = fakeStream({ columns: 120 });
  const live = new LiveLine(stream);
  live.update(figures());
  live.println('worker 1 joined');
  assert.match(chunks[1] ?? '', /^\r\x1b\[Kworker 1 joined\nsteady 1:05/);
});

// ------------------------------------------------------------------------------------------ formatSummary

const lat = (p50: number, count = 1000): LatencySummary => ({
  count,
  min: p50 / 2,
  mean: p50 * 1.1,
  p50,
  p90: p50 * 2,
  p95: p50 * 3,
  p99: p50 * 4,
  p999: p50 * 5,
  max: p50 * 10,
});

function summary(patch: SummaryOverrides = {}): Summary {
  return summaryFixture({
    runId: '20250101-120000-ab12',
    startedAt: '2025-01-01T12:00:00.000Z',
    endedAt: '2025-01-01T12:05:02.000Z',
    scenario: { host: 'mqtt://broker:1883', devices: 1000, spawnRate: 50, runTimeMs: 300_000 },
    devices: { target: 1000, connectedPeak: 998, connectFailures: 2, reconnects: 7 },
    messages: {
      scheduled: 300_000,
      sent: 299_500,
      acked: 299_000,
      failed: 300,
      unconfirmed: 200,
      received: 299_420,
      lost: 150,
      duplicated: 60,
      reordered: 12,
      foreign: 10,
    },
    latency: { e2e: lat(12.5), publishAck: lat(4.25), connect: lat(30), scheduleLag: lat(0.2) },
    rates: { sentPerSec: 998.3, receivedPerSec: 998.1 },
    generator: { cpuPercentPeak: 41, eventLoopLagP99: 3.5 },
    errors: [
      { kind: 'puback', code: 131, reason: 'implementation specific error', count: 300 },
      { kind: 'connack', code: 5, reason: 'not authorized', count: 2 },
    ],
    thresholds: [
      { expr: 'e2e.p99<500', value: 50, passed: true },
      { expr: 'loss<0.01%', value: 0.05008347245409015, passed: false },
      { expr: 'e2e.p99<0.1s', value: 0.05, passed: true },
    ],
    passed: false,
    ...patch,
  });
}

test('formatSummary: the figures a person needs, in about 20 lines', () => {
  const text = formatSummary(summary(), 'fleetload-results/20250101-120000-ab12');
  const lines = text.split('\n');
  assert.ok(lines.length <= 25, `${lines.length} lines:\n${text}`);
  assert.doesNotMatch(text, /\x1b/, 'no colors unless asked');
  assert.match(lines[0] ?? '', /20250101-120000-ab12 · 5m2s/);
  assert.match(text, /target 1,000 · peak 998 · connect failures 2 · reconnects 7/);
  assert.match(text, /scheduled 300,000 · sent 299,500 · acked 299,000 · failed 300 · unconfirmed 200/);
  assert.match(text, /received 299,420 · lost 150 \(0\.05%\) · duplicated 60 · reordered 12 · foreign 10/);
  assert.match(text, /^ {2}e2e +12\.5 +37\.5 +50 +125 /m);
  assert.match(text, /^ {2}publishAck +4\.25 /m);
  assert.match(text, /^ {2}connect +30 /m);
  assert.match(text, /sent 998\.3\/s · received 998\.1\/s/);
  assert.match(text, /generator +ok \(CPU peak 41%/);
  assert.match(text, /300 × puback 131 \(implementation specific error\)/);
  assert.match(text, /✓ e2e\.p99<500 +observed 50 ms/);
  assert.match(text, /✗ loss<0\.01% +observed 0\.0501%/);
  assert.match(text, /✓ e2e\.p99<0\.1s +observed 0\.05 s/);
  assert.match(text, /^FAILED — 1 of 3 thresholds failed$/m);
  assert.doesNotMatch(text, /INTERRUPTED/);
  assert.match(lines.at(-1) ?? '', /^results +fleetload-results\/20250101-120000-ab12$/);
});

test('formatSummary: PASSED, INTERRUPTED, saturation in words, no samples, colors on request', () => {
  const passed = formatSummary(summary({ passed: true, thresholds: [], errors: [] }));
  assert.match(passed, /^PASSED$/m);
  assert.match(passed, /errors +none/);
  assert.doesNotMatch(passed, /results/);

  const stopped = formatSummary(summary({ interrupted: true }));
  assert.match(stopped, /^FAILED — 1 of 3 thresholds failed · INTERRUPTED/m);

  const sat = formatSummary(
    summary({
      generator: { cpuPercentPeak: 98.6, eventLoopLagP99: 250, saturated: true },
      latency: { e2e: lat(0, 0), publishAck: lat(4), connect: lat(30), scheduleLag: lat(80) },
    }),
  );
  assert.match(sat, /SATURATED — CPU peak 99%, event-loop lag p99 250 ms, schedule lag p99 320 ms/);
  assert.match(sat, /could not keep to its schedule/);
  assert.match(sat, /^ {2}e2e +– +– +– +– +no samples$/m);
  // when and why, from the saturation events (the rule the summary's flag follows)
  const reason = 'schedule lag p99 up to 253 ms (3 s in a row)';
  const when = formatSummary(
    summary({
      generator: { cpuPercentPeak: 5, eventLoopLagP99: 2, saturated: true },
      events: [
        {
          atMs: 0,
          elapsedMs: 4000,
          kind: 'saturation-start',
          message: `generator saturated: ${reason}`,
          reason,
        },
      ],
    }),
  );
  assert.match(
    when,
    /^generator +SATURATED — CPU peak 5%.*:\n {11}from 0:04: schedule lag p99 up to 253 ms \(3 s in a row\)\n/m,
  );

  const colored = formatSummary(summary(), undefined, { color: true });
  assert.match(colored, /\x1b\[31m✗\x1b\[0m/);
  assert.match(colored, /\x1b\[32m✓\x1b\[0m/);
  assert.match(colored, /FAILED/);
  assert.equal(colored.replace(/\x1b\[\d+m/g, ''), formatSummary(summary()));
});

test('formatSummary: no division by zero when nothing was sent', () => {
  const text = formatSummary(
    summary({
      messages: {
        scheduled: 0,
        sent: 0,
        acked: 0,
        failed: 0,
        unconfirmed: 0,
        received: 0,
        lost: 0,
        duplicated: 0,
        reordered: 0,
        foreign: 0,
      },
    }),
  );
  assert.match(text, /received 0 · lost 0 · duplicated 0/);
  assert.doesNotMatch(text, /NaN|Infinity/);
});

test('formatSummary: an error whose code is its kind is named once ("offline", not "offline offline")', () => {
  const errors = [
    {
      kind: 'offline',
      code: 'offline',
      reason: 'message due while the device was disconnected (not sent)',
      count: 12,
    },
  ];
  const text = formatSummary(summary({ errors }));
  assert.match(text, /12 × offline \(message due while the device was disconnected \(not sent\)\)/);
  assert.doesNotMatch(text, /offline offline/);
});

test('formatSummary: every kind of error when up to six, else the top five and how many more', () => {
  const errors = [1, 50, 7, 300].map((count, i) => ({
    kind: 'puback',
    code: 128 + i,
    reason: `r${i}`,
    count,
  }));
  const text = formatSummary(summary({ errors }));
  assert.match(
    text,
    /errors +300 × puback 131 \(r3\)\n +50 × puback 129 \(r1\)\n +7 × puback 130 \(r2\)\n +1 × puback 128 \(r0\)\n/,
  );
  assert.doesNotMatch(text, /more kinds/);
  const many = Array.from({ length: 8 }, (_, i) => ({
    kind: 'puback',
    code: 128 + i,
    reason: `r${i}`,
    count: 100 - i,
  }));
  const cut = formatSummary(summary({ errors: many }));
  assert.match(cut, /100 × puback 128 \(r0\)/);
  assert.match(cut, /96 × puback 132 \(r4\)\n +… and 3 more kinds \(see summary\.json\)/);
  assert.doesNotMatch(cut, /95 × puback 133/);
});

test('bytes on the live line: shown when there is room, dropped first so 80 columns keep what they kept', () => {
  const withBytes = figures({ bytesSentPerSec: 1_234_567, bytesReceivedPerSec: 987_654 });
  const wide = fakeStream({ columns: 200 });
  new LiveLine(wide.stream).update(withBytes);
  assert.match(wide.chunks[0] ?? '', / · bytes ↑1\.23MB\/s ↓988kB\/s$/);
  const { stream, chunks } = fakeStream({ columns: 80 });
  new LiveLine(stream).update(withBytes);
  const visible = (chunks[0] ?? '').replace('\r\x1b[K', '');
  assert.ok(visible.length <= 79, visible);
  assert.equal(visible, 'steady 1:05/5:00 · dev 950/1,000 · tx 950/s · e2e p50/p99 12.3/45.6ms · lost 3');
  assert.equal(bytes(0), '0B');
  assert.equal(bytes(999), '999B');
  assert.equal(bytes(12_345), '12.3kB');
  assert.equal(bytes(4_560_000_000), '4.56GB');
});

test('formatSummary: bytes, the load as it ran and the events, briefly', () => {
  const at = (elapsedMs: number) => ({ atMs: 1_800_000_000_000 + elapsedMs, elapsedMs });
  const text = formatSummary(
    summary({
      bytes: { sent: 12_345_678, received: 9_876_543, sentPerSec: 411_522.6, receivedPerSec: 329_218.1 },
      events: [
        {
          ...at(12_000),
          kind: 'load',
          message: '100 → 40 devices (dashboard)',
          setting: 'devices',
          from: 100,
          to: 40,
          source: 'dashboard',
        },
        {
          ...at(20_000),
          kind: 'load',
          message: '40 → 100 devices (dashboard)',
          setting: 'devices',
          from: 40,
          to: 100,
          source: 'dashboard',
        },
        ...Array.from({ length: 8 }, (_, i) => ({
          ...at(30_000 + i),
          kind: 'broker-lost' as const,
          message: 'x',
        })),
      ],
      eventsDropped: 2,
    }),
  );
  assert.match(text, /^bytes +sent 12\.3MB \(412kB\/s\) · received 9\.88MB \(329kB\/s\)$/m);
  assert.match(
    text,
    /^load +100 → 40 devices at 0:12 \(dashboard\), 40 → 100 devices at 0:20 \(dashboard\)$/m,
  );
  assert.match(text, /^events +0:12 load: 100 → 40 devices \(dashboard\)$/m);
  assert.match(text, /^ +… and 4 more \(see summary\.json\)$/m);
  assert.equal(
    eventLine({ ...at(75_000), kind: 'broker-back', message: 'broker back' }),
    'event 1:15 broker-back: broker back',
  );
  assert.doesNotMatch(formatSummary(summary()), /^events/m, 'no events: no lines');
});

test('formatSummary: lost devices with their seq ranges and scheduled times; devices losing the same share a line; no "…" hiding one device', () => {
  const start = Date.parse('2025-01-01T12:00:00.000Z');
  const range = (fromSeq: number, toSeq: number, atS: number): LostRange => ({
    fromSeq,
    toSeq,
    fromTs: start + atS * 1000,
    toTs: start + (atS + (toSeq - fromSeq) * 0.25) * 1000, // 4 messages a second
  });
  const lost = (deviceId: string, value: number, ranges: LostRange[], moreRanges = 0) => ({
    deviceId,
    value,
    ranges,
    moreRanges,
  });
  const counts = { lost: 4, duplicated: 4, reordered: 0, e2eP99: 0, connectFailures: 0 };
  const top = {
    // a broker restart at 0:10: three devices lost seqs 5–8; a fourth lost two ranges, one of them without times
    lost: [
      lost('dev-000003', 4, [range(5, 8, 10)]),
      lost('dev-000007', 4, [range(5, 8, 10)]),
      lost('dev-000011', 4, [range(5, 8, 10)]),
      lost('dev-000012', 2, [range(9, 9, 12), { fromSeq: 30, toSeq: 30, fromTs: null, toTs: null }], 3),
    ],
    duplicated: ['dev-1', 'dev-2', 'dev-3', 'dev-4'].map((deviceId) => ({ deviceId, value: 1 })),
    reordered: [],
    e2eP99: [],
    connectFailures: [],
    counts,
  };
  const text = formatSummary(summary({ devicesTop: top }));
  assert.match(
    text,
    /^by device +lost: dev-000003, dev-000007, dev-000011 \(4 each\): seqs 5–8 at 0:10–0:11$/m,
  );
  assert.match(text, /^ {11}lost: dev-000012 \(2\): seq 9 at 0:12, seq 30, \+3 more ranges$/m);
  // four duplicating devices: the fourth is named, not "… 4 devices"
  assert.match(text, /^ {11}duplicated: dev-1 \(1\), dev-2 \(1\), dev-3 \(1\), dev-4 \(1\)$/m);
  assert.doesNotMatch(text, /…/);

  // more devices than fit: the first lines, then how many more; never "and 1 more"
  const many = Array.from({ length: 10 }, (_, i) => lost(`dev-${i}`, 10 - i, [range(i + 1, i + 1, i)]));
  const big = formatSummary(summary({ devicesTop: { ...top, lost: many, counts: { ...counts, lost: 25 } } }));
  assert.match(
    big,
    /lost: dev-0 \(10\): seq 1 at 0:00\n.*lost: dev-1 \(9\).*\n.*lost: dev-2 \(8\): seq 3 at 0:02\n.*… and 22 more devices lost messages \(devices\.csv\)/,
  );
  const four = formatSummary(
    summary({ devicesTop: { ...top, lost: many.slice(0, 4), counts: { ...counts, lost: 4 } } }),
  );
  assert.match(four, /lost: dev-3 \(7\): seq 4 at 0:03/);
  assert.doesNotMatch(four, /more devices? lost/);
});
