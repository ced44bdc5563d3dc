import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FleetloadError } from '../../src/errors.js';
import type { IntervalFigures } from '../../src/run/output.js';
import { loadScenario } from '../../src/scenario/load.js';
import { createSinks } from '../../src/sinks/index.js';
import {
  BulkHistogram,
  forEachRecorded,
  LATENCY_BUCKETS_S,
  PrometheusSink,
} from '../../src/sinks/prometheus.js';
import { newHistogram, recordMs } from '../../src/stats/histogram.js';
import { type Counters, LATENCIES, type LatencyName, zeroCounters } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';
import { findBinary } from '../helpers/services.js';

function figures(
  o: { counters?: Partial<Counters>; latencies?: Partial<Record<LatencyName, number[]>> } = {},
) {
  const histograms = {} as Record<LatencyName, ReturnType<typeof newHistogram>>;
  for (const k of LATENCIES) {
    histograms[k] = newHistogram();
    for (const ms of o.latencies?.[k] ?? []) recordMs(histograms[k], ms);
  }
  const counters = { ...zeroCounters(), ...o.counters };
  const f: IntervalFigures = {
    elapsedMs: 1000,
    interval: { t: Date.now(), durationMs: 1000, devicesConnected: 20, counters, histograms },
    gaps: 3,
    cpuPercent: 42.5,
    eventLoopLagP99Ms: 12,
    phase: 'steady',
  };
  return f;
}

/** value of one sample line, e.g. sample(text, 'fleetload_messages_sent_total') */
function sample(
  text: string,
  name: string,
  labels = '{run_id="r1",segment="0/1",role="run"}',
): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}${labels} `)) return Number(line.slice(name.length + labels.length + 1));
  }
  return undefined;
}

const bucket = (text: string, name: string, le: string) =>
  sample(text, `${name}_bucket`, `{run_id="r1",segment="0/1",role="run",le="${le}"}`);

describe('Prometheus histograms from HDR histograms', () => {
  test('every recorded value lands in its bucket with its exact count', async () => {
    const sink = new PrometheusSink({ host: '127.0.0.1', port: 0, runId: 'r1', segment: '0/1', role: 'run' });
    // 0.3 ms ×3, 1 ms ×2 (on a bound: ≤ counts), 1.5 ms, 7 ms, 70 s (above the last bound: +Inf only)
    sink.interval(figures({ latencies: { e2e: [0.3, 0.3, 0.3, 1, 1, 1.5, 7, 70_000] } }));
    const text = await sink.metrics();
    const n = 'fleetload_e2e_delay_seconds';
    assert.equal(bucket(text, n, '0.0005'), 3);
    assert.equal(bucket(text, n, '0.001'), 5);
    assert.equal(bucket(text, n, '0.002'), 6);
    assert.equal(bucket(text, n, '0.005'), 6);
    assert.equal(bucket(text, n, '0.01'), 7);
    assert.equal(bucket(text, n, '60'), 7);
    assert.equal(bucket(text, n, '+Inf'), 8);
    assert.equal(sample(text, `${n}_count`), 8);
    const sum = sample(text, `${n}_sum`) as number;
    assert.ok(Math.abs(sum - (0.0009 + 0.002 + 0.0015 + 0.007 + 70)) < 0.1, `sum ${sum}`);
    // the other histograms exist from the start, empty
    assert.equal(sample(text, 'fleetload_publish_ack_seconds_count'), 0);
    assert.equal(bucket(text, 'fleetload_schedule_lag_seconds', '+Inf'), 0);
  });

  test('many values: bucket counts equal a direct count of the raw values (away from HDR resolution)', () => {
    const h = newHistogram();
    const raw: number[] = [];
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    while (raw.length < 50_000) {
      const s = 10 ** (rnd() * 6 - 4.5); // 30 µs … 30 s, log-uniform
      // keep away from bounds by more than the HDR resolution (0.1%), where the bucket is ambiguous
      if (LATENCY_BUCKETS_S.some((b) => Math.abs(s - b) / b < 0.002)) continue;
      raw.push(s);
      recordMs(h, s * 1000);
    }
    const ph = new BulkHistogram('x_seconds', 'x', LATENCY_BUCKETS_S);
    const labels = { run_id: 'r1', segment: '0/1', role: 'run' };
    ph.addHdr(labels, h);
    return ph.get().then((m) => {
      for (const b of LATENCY_BUCKETS_S) {
        const expected = raw.filter((v) => v <= b).length;
        const got = m.values.find((v) => v.metricName === 'x_seconds_bucket' && v.labels.le === b)?.value;
        assert.equal(got, expected, `le=${b}`);
      }
      assert.equal(m.values.find((v) => v.metricName === 'x_seconds_count')?.value, 50_000);
    });
  });

  test('forEachRecorded visits each distinct value once; the counts add up to totalCount', () => {
    const h = newHistogram();
    for (const ms of [1, 1, 1, 2.5, 2.5, 100, 1000]) recordMs(h, ms);
    const seen: Array<[number, number]> = [];
    forEachRecorded(h, (lowestUs, _m, count) => seen.push([lowestUs, count]));
    assert.equal(
      seen.reduce((a, [, c]) => a + c, 0),
      h.totalCount,
    );
    assert.deepEqual(
      seen.map(([, c]) => c),
      [3, 2, 1, 1],
    );
    assert.equal(seen[0]?.[0], 1000);
  });
});

describe('PrometheusSink', () => {
  test('counters add up the intervals; gauges hold the last interval; finish sets the final loss', async () => {
    const sink = new PrometheusSink({ host: '127.0.0.1', port: 0, runId: 'r1', segment: '0/1', role: 'run' });
    let text = await sink.metrics();
    assert.equal(sample(text, 'fleetload_messages_sent_total'), 0, 'series exist before the first interval');
    sink.interval(figures({ counters: { sent: 10, acked: 9, received: 8, connectFailures: 1 } }));
    sink.interval(figures({ counters: { sent: 5, acked: 6, received: 7, duplicated: 2 } }));
    text = await sink.metrics();
    assert.equal(sample(text, 'fleetload_messages_sent_total'), 15);
    assert.equal(sample(text, 'fleetload_messages_acked_total'), 15);
    assert.equal(sample(text, 'fleetload_messages_received_total'), 15);
    assert.equal(sample(text, 'fleetload_messages_duplicated_total'), 2);
    assert.equal(sample(text, 'fleetload_connect_failures_total'), 1);
    assert.equal(sample(text, 'fleetload_devices_connected'), 20);
    assert.equal(sample(text, 'fleetload_messages_lost'), 3);
    assert.equal(sample(text, 'fleetload_generator_cpu_percent'), 42.5);
    assert.equal(sample(text, 'fleetload_generator_event_loop_lag_seconds'), 0.012);
    assert.equal(sample(text, 'fleetload_run_finished'), 0);
    assert.match(text, /# TYPE fleetload_e2e_delay_seconds histogram/);
    assert.match(text, /# TYPE fleetload_messages_sent_total counter/);
    sink.finish({ messages: { lost: 1 }, passed: true } as Summary);
    text = await sink.metrics();
    assert.equal(sample(text, 'fleetload_messages_lost'), 1);
    assert.equal(sample(text, 'fleetload_run_finished'), 1);
    assert.equal(sample(text, 'fleetload_run_passed'), 1);
  });

  test('the exposition passes promtool check metrics', {
    skip: findBinary('promtool') ? false : 'promtool not installed',
  }, async () => {
    const sink = new PrometheusSink({ host: '127.0.0.1', port: 0, runId: 'r1', segment: '0/1', role: 'run' });
    sink.interval(figures({ counters: { sent: 3 }, latencies: { e2e: [1, 2], publishAck: [0.4] } }));
    const r = spawnSync(findBinary('promtool') as string, ['check', 'metrics'], {
      input: await sink.metrics(),
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  test('serves /metrics on the loopback, counts scrapes, 404 elsewhere', async () => {
    const sink = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '0/1',
      role: 'run',
      graceMs: 0,
    });
    await sink.listen();
    try {
      assert.match(sink.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      sink.interval(figures({ counters: { sent: 4 } }));
      const res = await fetch(sink.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.equal(sample(await res.text(), 'fleetload_messages_sent_total'), 4);
      await (await fetch(sink.url)).text();
      assert.equal(sink.scrapes, 2);
      const other = await fetch(sink.url.replace('/metrics', '/nope'));
      assert.equal(other.status, 404);
      await other.text();
    } finally {
      await sink.close({ interrupted: true });
    }
  });

  test('a busy port is an input error (E_USAGE, exit 2)', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as AddressInfo;
    try {
      const sink = new PrometheusSink({ host: '127.0.0.1', port, runId: 'r1', segment: '0/1', role: 'run' });
      await assert.rejects(sink.listen(), (e: unknown) => {
        assert.ok(e instanceof FleetloadError);
        assert.equal(e.exitCode, 2);
        assert.match(e.message, new RegExp(`prometheus port ${port} on 127.0.0.1 is in use`));
        return true;
      });
    } finally {
      blocker.close();
    }
  });

  test('close keeps /metrics up for the grace period; cancel (Ctrl-C) and interrupted skip the wait', {
    // a close that ignored cancel or interrupted would wait out its hour-long grace: this ends the test instead
    timeout: 30_000,
  }, async () => {
    const logs: string[] = [];
    const a = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '0/1',
      role: 'run',
      graceMs: 300,
      log: (l) => logs.push(l),
    });
    await a.listen();
    const t0 = performance.now();
    let aClosed = false;
    const closing = a.close({ interrupted: false }).then(() => {
      aClosed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    const during = await fetch(a.url);
    assert.equal(during.status, 200, 'still served during the grace period');
    await during.text();
    assert.equal(aClosed, false);
    await closing;
    // a lower bound only (timers never fire early, so a busy machine cannot fail it): the grace was waited out
    assert.ok(performance.now() - t0 >= 290);
    await assert.rejects(fetch(a.url));
    assert.ok(logs.some((l) => /keeping .* up for 0\.3s/.test(l)));

    // Ctrl-C during the grace: close returns when `cancel` settles, not after the hour
    const hour = 3_600_000;
    const bLogs: string[] = [];
    const b = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '0/1',
      role: 'run',
      graceMs: hour,
      log: (l) => bLogs.push(l),
    });
    await b.listen();
    let ctrlC: () => void = () => {};
    const cancel = new Promise<void>((r) => {
      ctrlC = r;
    });
    let bClosed = false;
    const bClosing = b.close({ interrupted: false, cancel }).then(() => {
      bClosed = true;
    });
    const waiting = await fetch(b.url);
    assert.equal(waiting.status, 200, 'waiting out the grace');
    await waiting.text();
    assert.equal(bClosed, false);
    assert.ok(
      bLogs.some((l) => /up for 3600s .*Ctrl-C to skip/.test(l)),
      bLogs.join('\n'),
    );
    ctrlC();
    await bClosing;
    await assert.rejects(fetch(b.url));

    // an interrupted run: no grace at all
    const cLogs: string[] = [];
    const c = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '0/1',
      role: 'run',
      graceMs: hour,
      log: (l) => cLogs.push(l),
    });
    await c.listen();
    await c.close({ interrupted: true });
    await assert.rejects(fetch(c.url));
    assert.deepEqual(cLogs, [], 'no grace announced');
  });
});

describe('createSinks', () => {
  const scenario = (flags: Record<string, unknown>) =>
    loadScenario({ flags: { runId: 'r1', ...flags }, env: {}, cwd: '/' }).scenario;

  test('no sink configured: no listener, no summary part', async () => {
    const s = await createSinks(scenario({}), { runId: 'r1' });
    assert.deepEqual(s.listeners, []);
    assert.equal(s.summaryPart(), undefined);
    await s.close({ interrupted: false });
  });

  test('both sinks: listeners, summary part, close; every series and line carries segment and role', async () => {
    const bodies: Buffer[] = [];
    const influx = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => influx.listen(0, '127.0.0.1', r));
    const { port } = influx.address() as AddressInfo;
    const s = await createSinks(
      scenario({
        influxUrl: `http://127.0.0.1:${port}`,
        influxDb: 'db',
        prometheusPort: 0,
        prometheusGrace: '0s',
        consumer: 'none',
      }),
      // role producer from --consumer none
      { runId: 'r1', segment: { index: 1, count: 3 } },
    );
    try {
      assert.equal(s.listeners.length, 2);
      for (const l of s.listeners) l.interval?.(figures({ counters: { sent: 2 } }));
      const text = await (await fetch(s.prometheusUrl as string)).text();
      await s.flush();
      assert.deepEqual(s.summaryPart(), {
        influx: { written: 1, dropped: 0, failedBatches: 0 },
        prometheus: { scrapes: 1 },
      });
      const labels = '{run_id="r1",segment="1/3",role="producer"}';
      assert.equal(sample(text, 'fleetload_messages_sent_total', labels), 2);
      const series = text.split('\n').filter((l) => l.startsWith('fleetload_'));
      assert.ok(series.length > 50, `${series.length} series`);
      for (const line of series) assert.match(line, /\{run_id="r1",segment="1\/3",role="producer"[,}]/, line);
      const lines = gunzipSync(Buffer.concat(bodies)).toString('utf8').trim().split('\n');
      assert.deepEqual(
        lines.map((l) => l.split(' ')[0]),
        ['fleetload_producer,role=producer,run_id=r1,segment=1/3'],
      );
      await s.close({ interrupted: false });
    } finally {
      influx.close();
    }
  });

  test('role: run with a consumer; consume passes consumer; no segment is 0/1', async () => {
    for (const [flags, ctx, want] of [
      [{}, {}, 'run'],
      [{ consumer: 'none' }, {}, 'producer'],
      [{}, { role: 'consumer' as const }, 'consumer'],
    ] as const) {
      const s = await createSinks(scenario({ prometheusPort: 0, prometheusGrace: '0s', ...flags }), {
        runId: 'r1',
        ...ctx,
      });
      try {
        const text = await (await fetch(s.prometheusUrl as string)).text();
        assert.equal(
          sample(text, 'fleetload_messages_sent_total', `{run_id="r1",segment="0/1",role="${want}"}`),
          0,
          text.split('\n').find((l) => l.startsWith('fleetload_messages_sent_total')),
        );
      } finally {
        await s.close({ interrupted: true });
      }
    }
  });

  test('latency buckets: the same fixed bounds in every process, so sum by (le) across pods is exact', async () => {
    const a = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '0/2',
      role: 'producer',
    });
    const b = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '1/2',
      role: 'producer',
    });
    const one = new PrometheusSink({
      host: '127.0.0.1',
      port: 0,
      runId: 'r1',
      segment: '0/1',
      role: 'producer',
    });
    const va = [0.3, 1.5, 7, 40];
    const vb = [0.7, 3, 250, 2500, 2500];
    a.interval(figures({ latencies: { publishAck: va } }));
    b.interval(figures({ latencies: { publishAck: vb } }));
    one.interval(figures({ latencies: { publishAck: [...va, ...vb] } }));
    const n = 'fleetload_publish_ack_seconds';
    const buckets = (text: string, seg: string) =>
      new Map(
        text
          .split('\n')
          .filter((l) => l.startsWith(`${n}_bucket{run_id="r1",segment="${seg}",role="producer",le="`))
          .map((l) => {
            const m = /le="([^"]+)"\} (\S+)$/.exec(l);
            return [m?.[1] as string, Number(m?.[2])] as const;
          }),
      );
    const ba = buckets(await a.metrics(), '0/2');
    const bb = buckets(await b.metrics(), '1/2');
    const bo = buckets(await one.metrics(), '0/1');
    assert.deepEqual([...ba.keys()], [...bo.keys()], 'same bounds');
    assert.deepEqual([...bb.keys()], [...bo.keys()], 'same bounds');
    assert.equal(bo.size, LATENCY_BUCKETS_S.length + 1);
    for (const [le, v] of bo) assert.equal((ba.get(le) ?? Number.NaN) + (bb.get(le) ?? Number.NaN), v, le);
  });

  test('scenario validation: influxUrl needs a 1.x db or 2.x org+bucket+token; secrets are redacted', async () => {
    assert.throws(
      () => scenario({ influxUrl: 'http://127.0.0.1:8086' }),
      /influxUrl: InfluxDB needs either --influx-db DB \(1\.x\) or --influx-org, --influx-bucket and --influx-token/,
    );
    assert.throws(
      () => scenario({ influxUrl: 'http://h:8086', influxOrg: 'o', influxBucket: 'b' }),
      /needs either/,
    );
    assert.throws(() => scenario({ influxUrl: 'mqtt://h', influxDb: 'd' }), /influxUrl: scheme "mqtt:"/);
    assert.throws(
      () => scenario({ influxUrl: 'http://u:p@h', influxDb: 'd' }),
      /must not contain credentials/,
    );
    const ok = loadScenario({
      flags: {
        influxUrl: 'http://h:8086',
        influxOrg: 'o',
        influxBucket: 'b',
        influxToken: 'tok',
        influxPassword: 'pw',
      },
      env: { FLEETLOAD_PROMETHEUS_PORT: '9464', FLEETLOAD_INFLUX_REQUIRED: 'true' },
      cwd: '/',
    });
    assert.equal(ok.scenario.influxToken, 'tok');
    assert.equal(ok.scenario.prometheusPort, 9464);
    assert.equal(ok.scenario.influxRequired, true);
    assert.equal(ok.scenario.prometheusGraceMs, 15_000);
    assert.equal(ok.scenario.prometheusHost, '127.0.0.1');
    const { redactSecrets } = await import('../../src/scenario/load.js');
    const red = redactSecrets(ok.resolved);
    assert.equal(red.influxToken, '***');
    assert.equal(red.influxPassword, '***');
    const warned = loadScenario({ flags: {}, env: { FLEETLOAD_INFLUX_TOKEN: 't' }, cwd: '/' });
    assert.ok(warned.warnings.some((w) => /influxToken set without influxUrl/.test(w)));
  });
});
