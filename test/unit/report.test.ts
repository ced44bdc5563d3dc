import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { reportCmd } from '../../src/cli/report.js';
import { FleetloadError } from '../../src/errors.js';
import { generatorHealth, renderReport, writeReport } from '../../src/report/html.js';
import { loadResults, parseTimeseries } from '../../src/report/load.js';
import { TIMESERIES_HEADER } from '../../src/sinks/results.js';
import { encodeHistogram, newHistogram, recordMs } from '../../src/stats/histogram.js';
import type { IntervalRecord, Summary } from '../../src/stats/summary.js';
import { type SummaryOverrides, spreadLatency, summaryFixture } from '../helpers/summary.js';

/**
 * report.html from synthetic results folders written here (real HDR encodings through src/stats/histogram.ts):
 * content, escaping of every string, no network reference, and what happens when files are missing.
 */

const HOSTILE = '<script>alert("x")</script>&\'';
const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fleetload-report-'));
  roots.push(d);
  return d;
}

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

function summary(over: SummaryOverrides = {}): Summary {
  return summaryFixture({
    startedAt: '2026-11-27T10:00:00.000Z',
    endedAt: '2026-11-27T10:00:20.000Z',
    scenario: {
      host: 'mqtts://fleet:hunter2@iot.example.com:8883',
      devices: 100,
      spawnRate: 20,
      runTimeMs: 20_000,
    },
    devices: { target: 100, connectedPeak: 100, connectFailures: 2, reconnects: 1 },
    messages: {
      scheduled: 1800,
      sent: 1800,
      acked: 1790,
      failed: 5,
      unconfirmed: 5,
      received: 1797,
      lost: 3,
      duplicated: 1,
      reordered: 2,
    },
    latency: {
      e2e: spreadLatency(4),
      publishAck: spreadLatency(1),
      connect: spreadLatency(2),
      scheduleLag: spreadLatency(0.2),
    },
    rates: { sentPerSec: 90, receivedPerSec: 89.9 },
    generator: { cpuPercentPeak: 95, eventLoopLagP99: 150, saturated: true },
    errors: [{ kind: 'connack', code: 5, reason: HOSTILE, count: 2 }],
    thresholds: [
      { expr: 'e2e.p99<500', value: 12.4, passed: true },
      { expr: 'loss<0.1%', value: 0.17, passed: false },
    ],
    passed: false,
    ...over,
  });
}

function interval(i: number): IntervalRecord {
  const l = (p50: number) => ({ count: 90, p50, p90: p50 * 2, p95: p50 * 2.5, p99: p50 * 3, max: p50 * 4 });
  return {
    time: new Date(Date.parse('2026-11-27T10:00:00.000Z') + i * 1000).toISOString(),
    elapsedMs: i * 1000,
    durationMs: 1000,
    phase: i <= 5 ? 'ramp' : i >= 19 ? 'drain' : 'steady',
    devicesConnected: Math.min(100, i * 20),
    counters: { sent: 90, received: 89, failed: 0, duplicated: i === 7 ? 1 : 0, reordered: 0, connects: 20 },
    gaps: i > 10 ? 3 : 0,
    cpuPercent: 40 + i,
    eventLoopLagP99Ms: 3,
    latency: { e2e: l(4), publishAck: l(1), connect: l(2), scheduleLag: l(0.2) },
  };
}

interface Files {
  summary?: Summary | false;
  intervals?: boolean;
  csv?: boolean;
  histograms?: boolean;
  scenarioYaml?: string | false;
}

async function makeRun(files: Files = {}): Promise<string> {
  const dir = join(await tmp(), 'run-1');
  await mkdir(dir, { recursive: true });
  if (files.summary !== false)
    await writeFile(join(dir, 'summary.json'), JSON.stringify(files.summary ?? summary()));
  if (files.intervals !== false) {
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify(interval(i + 1)));
    await writeFile(join(dir, 'intervals.jsonl'), `${lines.join('\n')}\n{"truncated`);
  }
  if (files.csv !== false) {
    const rows = Array.from(
      { length: 20 },
      (_, i) =>
        `${new Date(Date.parse('2026-11-27T10:00:01.000Z') + i * 1000).toISOString()},${Math.min(100, (i + 1) * 20)},90,90,0,89,0,4,8,12,1,3`,
    );
    await writeFile(join(dir, 'timeseries.csv'), `${TIMESERIES_HEADER}\n${rows.join('\n')}\n`);
  }
  if (files.histograms !== false) {
    await mkdir(join(dir, 'histograms'));
    const rnd = prng(7);
    for (const [name, base] of [
      ['e2e', 4],
      ['publishAck', 1],
      ['connect', 2],
      ['scheduleLag', 0.2],
    ] as const) {
      const h = newHistogram();
      for (let k = 0; k < 5000; k++) recordMs(h, base * Math.exp(rnd() * 1.5) + (rnd() < 0.01 ? 40 : 0));
      await writeFile(join(dir, 'histograms', `${name}.hdr`), `${encodeHistogram(h)}\n`);
    }
  }
  if (files.scenarioYaml !== false) {
    await writeFile(
      join(dir, 'scenario.yaml'),
      files.scenarioYaml ??
        `# comment\nrunId: run-1\nhost: mqtts://fleet:hunter2@iot.example.com:8883\npassword: hunter2\ntopic: "${HOSTILE.replace(/"/g, '\\"')}"\ndevices: 100\n`,
    );
  }
  return dir;
}

/** The page without uPlot's minified code (its license header names its GitHub page). */
async function pageWithoutUplot(html: string): Promise<string> {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const js = await readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const css = await readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  assert.ok(html.includes(js), 'uPlot inlined verbatim');
  assert.ok(html.includes(css), 'uPlot CSS inlined verbatim');
  return html.replace(js, '').replace(css, '');
}

test('a full results folder: facts, thresholds, tables, chart data, generator explanation', async () => {
  const dir = await makeRun();
  const html = await renderReport(dir, { now: new Date('2026-11-27T11:00:00Z') });
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<title>fleetload report · run-1<\/title>/);
  assert.match(html, /FAILED/);
  assert.match(html, /1 of 2 thresholds passed/);
  assert.match(html, /<code>e2e\.p99&lt;500<\/code>/);
  assert.match(html, /12\.4 ms/);
  assert.match(html, /✗ fail/);
  assert.match(html, /mqtts:\/\/fleet:\*\*\*@iot\.example\.com:8883/);
  assert.ok(!html.includes('hunter2'), 'a secret reached the report');
  assert.match(html, /2026-11-27 10:00:00 UTC/);
  assert.match(html, /The generator was saturated/);
  assert.match(html, /CPU reached 95% of one core/);
  assert.match(html, /timers fired up to 150 ms late/);
  assert.match(html, /What to do: spread the load over more worker processes/);
  assert.match(html, /<div class="chart" id="chart-dist">/);
  for (const id of ['devices', 'rates', 'e2e', 'ack', 'lag', 'loss', 'connections', 'generator'])
    assert.match(html, new RegExp(`id="chart-${id}"`), id);
  // the data block holds the chart definitions and the time series from intervals.jsonl
  const json = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1];
  assert.ok(json);
  const data = JSON.parse(json) as {
    charts: { id: string }[];
    time: Record<string, number[]>;
    dist: Record<string, number[]>;
    bands: { kind: string }[];
  };
  assert.equal(data.charts.length, 10, 'with bytes per second');
  assert.equal(data.time.x?.length, 20, 'the truncated last line is skipped');
  assert.equal(data.time.sent?.[3], 90);
  assert.deepEqual(
    data.bands.map((b) => b.kind),
    ['ramp', 'drain'],
  );
  assert.equal(data.dist.x?.[0], 1);
  assert.equal(data.dist.x?.at(-1), 100_000);
  assert.match(html, /intervals\.jsonl: 1 unreadable line\(s\) skipped/);
  // latency table from the histograms; p99.999 row
  assert.match(html, /p99\.999/);
});

test('every string from the folder is escaped; no network reference outside uPlot; strict CSP', async () => {
  const dir = await makeRun({ summary: summary({ runId: HOSTILE }) });
  const html = await renderReport(dir);
  const rest = await pageWithoutUplot(html);
  assert.ok(!rest.includes('<script>alert'), 'raw markup from the results folder');
  assert.ok(rest.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;'));
  // inside the JSON block, < is \u003c
  assert.ok(rest.includes('\\u003cscript'));
  assert.deepEqual(rest.match(/https?:\/\/[^\s"'<)]*/g) ?? [], [], 'URLs outside uPlot');
  assert.ok(!/\bsrc=|<link (?!rel="icon" href="data:,")|@import|url\(/i.test(rest), 'external resources');
  // uPlot itself: only its license comment names a URL
  const { createRequire } = await import('node:module');
  const uplot = await readFile(
    createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'),
    'utf8',
  );
  assert.deepEqual(uplot.match(/https?:\/\/[^\s"'<)]*/g), ['https://github.com/leeoniya/uPlot']);
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1] ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[^']+' 'sha256-[^']+'(;|$)/);
  assert.ok(!csp.includes('unsafe-eval') && !/script-src[^;]*unsafe-inline/.test(csp));
  // exactly two executable scripts, both covered by a hash
  assert.equal((html.match(/<script>/g) ?? []).length, 2);
});

test('an older folder without intervals.jsonl: charts from timeseries.csv, a note for the rest', async () => {
  const dir = await makeRun({ intervals: false });
  const html = await renderReport(dir);
  assert.match(html, /charts come from timeseries\.csv/);
  for (const id of ['devices', 'rates', 'e2e', 'ack', 'loss'])
    assert.match(html, new RegExp(`id="chart-${id}"`));
  assert.ok(!html.includes('id="chart-lag"') && !html.includes('id="chart-generator"'));
  assert.match(html, /not recorded in this results folder/);
  const data = JSON.parse(
    /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '{}',
  ) as { time: Record<string, number[]> };
  assert.equal(data.time.x?.[0], 1, 'elapsed from startedAt');
  assert.equal(data.time.e2e99?.[0], 12);
});

test('no histograms: no distribution chart, a note instead; latency table from summary.json', async () => {
  const dir = await makeRun({ histograms: false });
  const html = await renderReport(dir);
  assert.ok(!html.includes('id="chart-dist"'));
  assert.match(html, /No histograms in this results folder/);
  assert.match(html, /From summary\.json \(no histograms in this folder\)/);
});

test('a crashed run (no summary.json, no scenario.yaml) still gets a report', async () => {
  const dir = await makeRun({ summary: false, scenarioYaml: false, histograms: false });
  const html = await renderReport(dir);
  assert.match(html, /INCOMPLETE/);
  assert.match(html, /no summary\.json: the run did not finish/);
  assert.match(html, /id="chart-devices"/);
});

test('not a results folder, a missing folder, a file, a broken summary: E_FILE with a clear message', async () => {
  const root = await tmp();
  await mkdir(join(root, 'empty'));
  await writeFile(join(root, 'file.txt'), 'x');
  await mkdir(join(root, 'broken'));
  await writeFile(join(root, 'broken', 'summary.json'), '{"runId":');
  const cases: Array<[string, RegExp]> = [
    [join(root, 'empty'), /is not a fleetload results folder/],
    [join(root, 'missing'), /does not exist/],
    [join(root, 'file.txt'), /is a file, not a results folder/],
    [join(root, 'broken'), /summary\.json is not valid JSON/],
  ];
  for (const [dir, message] of cases) {
    await assert.rejects(renderReport(dir), (err: unknown) => {
      assert.ok(err instanceof FleetloadError);
      assert.equal(err.code, 'E_FILE');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, message);
      return true;
    });
  }
  // a folder of runs: the message points at one of them
  await makeRun();
  const parent = roots.at(-1) as string;
  await assert.rejects(loadResults(parent), /give one of them, e\.g\. .*run-1/);
});

test('writeReport writes report.html; reportCmd prints its path; usage errors', async () => {
  const dir = await makeRun();
  const path = await writeReport(dir);
  assert.equal(path, join(dir, 'report.html'));
  assert.match(await readFile(path, 'utf8'), /fleetload report · run-1/);
  let out = '';
  const io = {
    env: {},
    cwd: dir,
    stdout: {
      write: (s: string) => {
        out += s;
        return true;
      },
    },
    stderr: { write: () => true },
  } as unknown as Parameters<typeof reportCmd>[1];
  assert.equal(await reportCmd(['.'], io), 0);
  assert.equal(out, `${join(dir, 'report.html')}\n`);
  await assert.rejects(reportCmd([], io), /needs a results folder/);
  await assert.rejects(reportCmd(['a', 'b'], io), /takes one results folder/);
  await assert.rejects(reportCmd(['--nope', dir], io), /unknown option --nope/);
});

test('generator health in words: ok, and each reason for saturation', () => {
  const ok = generatorHealth(
    summary({ generator: { cpuPercentPeak: 20, eventLoopLagP99: 2, saturated: false } }),
  );
  assert.equal(ok.saturated, false);
  assert.match(ok.headline, /kept up/);
  const lagOnly = generatorHealth(
    summary({
      generator: { cpuPercentPeak: 20, eventLoopLagP99: 2, saturated: true },
      latency: { ...summary().latency, scheduleLag: spreadLatency(80) }, // p99 = 248 ms
    }),
  );
  assert.equal(lagOnly.saturated, true);
  assert.equal(lagOnly.details.length, 2);
  assert.match(lagOnly.details[0] ?? '', /Messages left 248 ms after their scheduled time/);
  // saturated for 3 s in a row while the whole run's figures stay under the limits: the panel says when
  const spell = generatorHealth(
    summary({
      generator: { cpuPercentPeak: 60, eventLoopLagP99: 20, saturated: true },
      events: [
        {
          atMs: 1,
          elapsedMs: 12_000,
          kind: 'saturation-start',
          message: 'generator saturated: lag p99 250 ms',
        },
        { atMs: 2, elapsedMs: 15_000, kind: 'saturation-end', message: 'generator keeps up again' },
        { atMs: 3, elapsedMs: 21_000, kind: 'saturation-start', message: 'generator saturated: CPU 97%' },
      ],
    }),
  );
  assert.equal(spell.saturated, true);
  assert.ok(
    spell.details.includes(
      'When: 0:12–0:15 (generator saturated: lag p99 250 ms); from 0:21 to the end (generator saturated: CPU 97%).',
    ),
    spell.details.join('\n'),
  );
});

test('parseTimeseries: by header, quoted cells, bad rows dropped', () => {
  const rows = parseTimeseries(
    'received,time,sent\n5,"2026-11-27T10:00:01.000Z",7\n1,not-a-time,2\n\n3,2026-11-27T10:00:02.000Z,x\n',
  );
  assert.equal(rows.length, 2);
  assert.equal(rows[0]?.received, 5);
  assert.equal(rows[0]?.sent, 7);
  assert.equal(rows[1]?.sent, 0);
});

test('the scenario table leaves out settings of features the run did not use', async () => {
  const yaml = (consumer: string, extra = '') =>
    `runId: run-1\ndevices: 10\nconsumer: ${consumer}\nconsumerGroup: g1\nnatsStream: S\neventhubName: hub\neventhubConsumerGroup: $Default\nstorageContainer: c\ninfluxDb: fleetload\nprometheusHost: 127.0.0.1\n${extra}`;
  const keys = async (consumer: string, extra?: string) => {
    const dir = await makeRun({ scenarioYaml: yaml(consumer, extra) });
    const html = await renderReport(dir, { now: new Date('2026-11-27T11:00:00Z') });
    return [...html.matchAll(/<span class="k">([^<]+)<\/span>/g)].map((m) => m[1]);
  };
  const mqtt = await keys('mqtt');
  assert.ok(mqtt.includes('devices') && mqtt.includes('consumer') && mqtt.includes('consumerGroup'));
  for (const k of [
    'natsStream',
    'eventhubName',
    'eventhubConsumerGroup',
    'storageContainer',
    'influxDb',
    'prometheusHost',
  ])
    assert.ok(!mqtt.includes(k), `${k} is not shown for an mqtt consumer`);
  const eh = await keys('eventhubs', 'influxUrl: http://127.0.0.1:8086\nprometheusPort: 9464\n');
  for (const k of [
    'eventhubName',
    'eventhubConsumerGroup',
    'storageContainer',
    'influxDb',
    'influxUrl',
    'prometheusHost',
    'prometheusPort',
  ])
    assert.ok(eh.includes(k), `${k} is shown when used`);
  assert.ok(!eh.includes('natsStream'));
  const none = await keys('none');
  assert.ok(!none.includes('consumerGroup'));
});

test('a merged folder lists the folders it joined, one row each (a short segment shows); a single run has no such table', async () => {
  const dir = await makeRun();
  const single = await renderReport(dir);
  assert.doesNotMatch(single, /Merged from/);
  const member = (
    segment: { index: number; count: number } | null,
    role: string,
    sent: number,
    received: number,
  ) => ({
    id: `id-${role}-${segment?.index ?? 'c'}`,
    role,
    segment,
    sent,
    received,
    startedAt: '2026-11-27T10:00:00.000Z',
    endedAt: '2026-11-27T10:00:20.000Z',
  });
  await writeFile(
    join(dir, 'run.json'),
    JSON.stringify({
      format: 'fleetload-run',
      members: [
        member({ index: 1, count: 2 }, 'producer', 400, 0),
        member(null, 'consumer', 0, 1290),
        member({ index: 0, count: 2 }, 'producer', 890, 0),
      ],
    }),
  );
  const html = await renderReport(dir);
  assert.match(html, /Merged from 3 folders/);
  const rows = [
    ...html.matchAll(
      /<tr><th scope="row">(segment \d\/2|consumer)<\/th><td>(\w+)<\/td><td class="n">([\d,]+)<\/td>/g,
    ),
  ].map((m) => [m[1], m[2], m[3]]);
  assert.deepEqual(rows, [
    ['segment 0/2', 'producer', '890'],
    ['segment 1/2', 'producer', '400'],
    ['consumer', 'consumer', '0'],
  ]);
});

test('events: the load as it ran in the header, an event log (escaped), the data for the markers; none for an older folder', async () => {
  const T = Date.parse('2026-11-27T10:00:00.000Z');
  const events = [
    {
      atMs: T + 12_000,
      elapsedMs: 12_000,
      kind: 'load' as const,
      message: '100 → 40 devices (dashboard)',
      setting: 'devices' as const,
      from: 100,
      to: 40,
      source: 'dashboard' as const,
    },
    { atMs: T + 15_000, elapsedMs: 15_000, kind: 'broker-lost' as const, message: HOSTILE, count: 40 },
  ];
  const html = await renderReport(await makeRun({ summary: summary({ events }) }));
  assert.match(html, /<span class="k">load<\/span> <span>100 → 40 devices at 0:12 \(dashboard\)<\/span>/);
  assert.match(
    html,
    /<tr data-kind="load"><td class="n">0:12<\/td><td><code>load<\/code><\/td><td>100 → 40 devices \(dashboard\)<\/td><\/tr>/,
  );
  const rest = await pageWithoutUplot(html);
  assert.ok(!rest.includes('<script>alert'), 'an event message is text, never markup');
  assert.match(rest, /<td>&lt;script&gt;alert/);
  const data = JSON.parse(/id="report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '{}') as {
    events: unknown[];
  };
  assert.deepEqual(data.events, events, 'every event for the markers');

  // a crashed run: its events from intervals.jsonl
  const crashed = await makeRun({ summary: false });
  const lines = (await readFile(join(crashed, 'intervals.jsonl'), 'utf8')).split('\n');
  lines[11] = JSON.stringify({ ...JSON.parse(lines[11] ?? '{}'), events: [events[0]] });
  await writeFile(join(crashed, 'intervals.jsonl'), lines.join('\n'));
  assert.match(await renderReport(crashed), /<tr data-kind="load">/);

  // a folder from before events: no event log at all (not "nothing happened")
  const old = await renderReport(await makeRun());
  assert.ok(!old.includes('id="event-log"') && !old.includes('Nothing happened'));
  const quiet = await renderReport(await makeRun({ summary: summary({ events: [] }) }));
  assert.match(quiet, /Nothing happened to this run/);
});

test('an invalid run: INVALID badge and every reason of summary.invalid, not FAILED with "no thresholds set"', async () => {
  const reasons = [
    'offered: 570 of 4130 scheduled messages were never sent (sent 86.2%, at least 95% needed)',
    `observed: ${HOSTILE}`,
  ];
  const html = await renderReport(
    await makeRun({ summary: summary({ thresholds: [], passed: false, valid: false, invalid: reasons }) }),
  );
  assert.match(html, /<span class="badge invalid" id="verdict">INVALID<\/span>/);
  assert.ok(!/id="verdict">FAILED/.test(html) && !html.includes('no thresholds set'));
  assert.match(html, /<span class="note">invalid: offered: 570 of 4130 scheduled messages were never sent/);
  const section = /<section class="invalid-reasons" id="invalid">(.*?)<\/section>/s.exec(html)?.[1] ?? '';
  assert.equal((section.match(/<li>/g) ?? []).length, 2, section);
  assert.ok(section.includes('<li>observed: &lt;script&gt;'), 'a reason is text, never markup');

  // a valid run that failed a threshold stays FAILED; a lost worker's run (incomplete) too, as its exit code says
  const failed = await renderReport(await makeRun());
  assert.match(failed, /id="verdict">FAILED</);
  assert.ok(!failed.includes('id="invalid"'), 'no reasons for a valid run');
  const incomplete = await renderReport(
    await makeRun({
      summary: summary({
        valid: false,
        invalid: reasons,
        incomplete: { reason: 'worker 2 exited', lost: ['2'] },
      }),
    }),
  );
  assert.match(incomplete, /id="verdict">FAILED</);
});

test('QoS 0: publish → ack says "no samples: QoS 0 has no acks" (card and chart), no empty chart', async () => {
  const none = { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  const dir = await makeRun({
    summary: summary({ scenario: { qos: 0 }, latency: { publishAck: none } }),
    histograms: false,
  });
  const html = await renderReport(dir);
  assert.match(html, /<h2>Publish → ack<\/h2><div class="nochart">no samples: QoS 0 has no acks<\/div>/);
  assert.match(
    html,
    /Publish → ack p50 \/ p99<\/div><div class="value">–<\/div><div class="sub">no samples: QoS 0 has no acks/,
  );
  const data = JSON.parse(/id="report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '{}') as {
    charts: Array<{ id: string }>;
  };
  assert.ok(!data.charts.some((c) => c.id === 'ack'), 'no publish → ack chart to draw');
  // QoS 1 with acks: the chart is there
  const acked = await renderReport(await makeRun({ histograms: false }));
  assert.match(acked, /id="chart-ack"/);
});
