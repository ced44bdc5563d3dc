import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { repoRoot, runCli, tmpDir } from '../helpers/cli.js';
import { type InfluxDb, type InfluxSeries, startInfluxDb } from '../helpers/influxdb.js';
import { type PrometheusServer, type PromResult, startPrometheus } from '../helpers/prometheus.js';
import { freePort, skipUnless } from '../helpers/services.js';

/**
 * The time-series sinks on real servers: a short fleetload run (built CLI, embedded broker) writes to a real
 * InfluxDB 1.x and is scraped by a real Prometheus; then EVERY panel query of both Grafana dashboards in
 * deploy/grafana/ runs against them, with the dashboard variables and Grafana macros substituted, and must return
 * data. The sent totals from both stores equal summary.json's.
 */

interface Target {
  refId: string;
  hide?: boolean;
  datasource?: { type?: string };
  query?: string;
  expr?: string;
  instant?: boolean;
  type?: string;
  expression?: string;
}
interface Panel {
  title: string;
  targets?: Target[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; query: string | { query: string } }> };
}

const dashboard = (file: string): Dashboard =>
  JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana', file), 'utf8')) as Dashboard;

const regexEscape = (s: string) => s.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
/** Grafana's escaping of a multi-value variable in PromQL (prometheusSpecialRegexEscape): no `/`, doubled `\` */
const promRegexEscape = (s: string) => s.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&');
/** the `segment` variable's "All" value (allValue) */
const ALL = '.*';

const skip = skipUnless('influxd', 'prometheus');

describe('InfluxDB and Prometheus sinks with the Grafana dashboards, on real servers', { skip }, () => {
  let influx: InfluxDb;
  let prom: PrometheusServer;
  let summary: Summary;
  let startMs: number;
  let endMs: number;
  const runId = `it-${Date.now().toString(36)}`;

  before(async () => {
    const metricsPort = await freePort();
    influx = await startInfluxDb();
    await influx.query('CREATE DATABASE "fleetload"');
    prom = await startPrometheus({ targets: [`127.0.0.1:${metricsPort}`] });
    // a 3 s run must be scraped from its start: wait until Prometheus scrapes (the target is still down)
    await prom.waitForScrapeAttempts();
    const out = tmpDir('fleetload-it-sinks-');
    startMs = Date.now();
    const r = await runCli(
      [
        'run',
        '--headless',
        '-u',
        '20',
        '-i',
        '100ms',
        '--messages-per-device',
        '30',
        '--run-id',
        runId,
        '--influx-url',
        influx.url,
        '--influx-db',
        'fleetload',
        '--prometheus-port',
        String(metricsPort),
        '--prometheus-grace',
        '4s',
        '--out',
        out,
      ],
      { timeoutMs: 90_000 },
    );
    endMs = Date.now();
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    summary = JSON.parse(readFileSync(join(out, runId, 'summary.json'), 'utf8')) as Summary;
    assert.equal(summary.messages.sent, 600);
  });

  after(async () => {
    await prom?.stop();
    await influx?.stop();
  });

  test('summary.json counts what the sinks did', () => {
    assert.ok(summary.sinks, 'summary.json has sinks');
    assert.ok((summary.sinks.influx?.written ?? 0) >= 2, JSON.stringify(summary.sinks));
    assert.equal(summary.sinks.influx?.dropped, 0);
    assert.equal(summary.sinks.influx?.failedBatches, 0);
    assert.ok((summary.sinks.prometheus?.scrapes ?? 0) >= 1, JSON.stringify(summary.sinks));
  });

  describe('InfluxDB dashboard: every panel query returns data (InfluxQL over /query)', () => {
    const d = dashboard('influxdb-dashboard.json');
    const substitute = (q: string, segment = ALL) =>
      q
        .replaceAll('$timeFilter', `time >= ${startMs - 1000}ms and time <= ${endMs + 1000}ms`)
        .replaceAll('$__interval_ms', '1000')
        .replaceAll('$__interval', '1s')
        .replaceAll('$run_id', regexEscape(runId))
        .replaceAll('$segment', segment);
    const run = async (q: string, segment = ALL): Promise<InfluxSeries[]> =>
      (await influx.query(substitute(q, segment), 'fleetload')).results[0]?.series ?? [];
    /** the last non-null value of the first value column of the first series */
    const lastValue = (series: InfluxSeries[]): number | undefined => {
      const s = series[0];
      if (!s) return undefined;
      for (const row of [...s.values].reverse()) {
        const v = row.slice(1).find((x) => x !== null);
        if (typeof v === 'number') return v;
      }
      return undefined;
    };

    test('the run_id variable lists this run', async () => {
      const v = d.templating.list.find((x) => x.name === 'run_id');
      const series = await run(typeof v?.query === 'string' ? v.query : '');
      const values = series.flatMap((s) => s.values.map((row) => row[1]));
      assert.ok(values.includes(runId), JSON.stringify(values));
    });

    test('every line is tagged segment and role; the segment variable lists 0/1 and filters on it', async () => {
      for (const m of ['fleetload_producer', 'fleetload_consumer', 'fleetload_summary']) {
        const tags = async (key: string) =>
          (
            await run(`SHOW TAG VALUES FROM "${m}" WITH KEY = "${key}" WHERE "run_id" =~ /^$run_id$/`)
          ).flatMap((x) => x.values.map((row) => row[1]));
        assert.deepEqual(await tags('segment'), ['0/1'], m);
        assert.deepEqual(await tags('role'), ['run'], m);
      }
      const v = d.templating.list.find((x) => x.name === 'segment');
      const listed = (await run(typeof v?.query === 'string' ? v.query : '')).flatMap((x) =>
        x.values.map((row) => row[1]),
      );
      // one series per measurement; Grafana lists each value once
      assert.deepEqual([...new Set(listed)], ['0/1']);
      const sent = d.panels.find((p) => p.title === 'Telemetries sent')?.targets?.[0]?.query ?? '';
      const one = await run(sent, regexEscape('0/1'));
      assert.equal(one[0]?.values[0]?.[1], summary.messages.sent, 'segment 0/1 alone: every message');
      assert.equal((await run(sent, regexEscape('1/2')))[0]?.values[0]?.[1] ?? null, null, 'no segment 1/2');
    });

    for (const panel of d.panels) {
      test(panel.title, async () => {
        const scalars = new Map<string, number | undefined>();
        for (const t of panel.targets ?? []) {
          if (t.datasource?.type === '__expr__') {
            // Grafana math expression over the other queries' scalars: $B / $A * 100
            const expr = (t.expression ?? '').replace(/\$([A-Z])/g, (_m, ref: string) =>
              String(scalars.get(ref)),
            );
            assert.match(expr, /^[\d.\s/*+-]+$/, `expression ${t.expression} → ${expr}`);
            const value = Function(`return (${expr});`)() as number;
            assert.ok(Number.isFinite(value), `${t.expression} = ${value}`);
            scalars.set(t.refId, value);
            continue;
          }
          const series = await run(t.query ?? '');
          assert.ok(series.length > 0, `no series for ${t.refId}: ${substitute(t.query ?? '')}`);
          const hasValue = series.some((s) => s.values.some((row) => row.slice(1).some((x) => x !== null)));
          assert.ok(hasValue, `only nulls for ${t.refId}: ${substitute(t.query ?? '')}`);
          scalars.set(t.refId, lastValue(series));
        }
        const m = summary.messages;
        if (panel.title === 'Telemetries sent') assert.equal(scalars.get('A'), m.sent);
        if (panel.title === 'Telemetries received') assert.equal(scalars.get('A'), m.received);
        if (panel.title === 'Received %') {
          const expected = ((m.received - m.duplicated - m.foreign) / m.sent) * 100;
          assert.ok(
            Math.abs((scalars.get('C') ?? Number.NaN) - expected) < 1e-9,
            `${scalars.get('C')} vs ${expected}`,
          );
        }
        if (panel.title === 'Lost (final)') assert.equal(scalars.get('A'), m.lost);
      });
    }
  });

  describe('Prometheus dashboard: every panel query returns data (PromQL over /api/v1)', () => {
    const d = dashboard('prometheus-dashboard.json');
    const rangeS = () => Math.ceil((endMs - startMs) / 1000) + 2;
    const substitute = (q: string, segment = ALL) =>
      q
        .replaceAll('$__rate_interval', '4s')
        .replaceAll('$__range', `${rangeS()}s`)
        .replaceAll('$__interval', '1s')
        .replaceAll('$run_id', promRegexEscape(runId))
        .replaceAll('$segment', segment);
    const numbers = (r: PromResult): number[] =>
      r.result
        .flatMap((s) => (s.values ?? []).concat(s.value ? [s.value] : []))
        .map(([, v]) => Number(v))
        .filter((v) => !Number.isNaN(v));

    test('the run_id variable lists this run', async () => {
      const v = d.templating.list.find((x) => x.name === 'run_id');
      const q = typeof v?.query === 'string' ? v.query : (v?.query.query ?? '');
      const m = /^label_values\((\w+), *(\w+)\)$/.exec(q);
      assert.ok(m, q);
      const values = await prom.api<string[]>(`/api/v1/label/${m[2]}/values?match[]=${m[1]}`);
      assert.ok(values.includes(runId), JSON.stringify(values));
    });

    test('every series is labelled segment and role; the segment variable lists 0/1 and filters on it', async () => {
      const series = await prom.api<Array<Record<string, string>>>(
        `/api/v1/series?match[]=${encodeURIComponent(`{__name__=~"fleetload_.*",run_id="${runId}"}`)}`,
      );
      assert.ok(series.length > 20, `${series.length} series`);
      for (const x of series) {
        assert.equal(x.segment, '0/1', JSON.stringify(x));
        assert.equal(x.role, 'run', JSON.stringify(x));
      }
      const v = d.templating.list.find((x) => x.name === 'segment');
      const q = typeof v?.query === 'string' ? v.query : (v?.query.query ?? '');
      const m = /^label_values\((\w+\{[^}]*\}), *(\w+)\)$/.exec(substitute(q));
      assert.ok(m, q);
      const values = await prom.api<string[]>(
        `/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1] as string)}`,
      );
      assert.deepEqual(values, ['0/1']);
      const sent = d.panels.find((p) => p.title === 'Telemetries sent')?.targets?.[0]?.expr ?? '';
      const at = async (segment: string) => numbers(await prom.query(substitute(sent, segment), endMs));
      assert.deepEqual(await at(promRegexEscape('0/1')), [summary.messages.sent]);
      assert.deepEqual(await at(promRegexEscape('1/2')), [], 'no segment 1/2');
    });

    for (const panel of d.panels) {
      test(panel.title, async () => {
        const found = new Map<string, number[]>();
        for (const t of panel.targets ?? []) {
          const expr = substitute(t.expr ?? '');
          const r = t.instant
            ? await prom.query(expr, endMs)
            : await prom.queryRange(expr, startMs, endMs, 1);
          const values = numbers(r);
          assert.ok(values.length > 0, `no data for ${t.refId}: ${expr}\n${JSON.stringify(r).slice(0, 500)}`);
          found.set(t.refId, values);
        }
        const m = summary.messages;
        const last = (ref: string) => found.get(ref)?.at(-1);
        if (panel.title === 'Telemetries sent') assert.equal(last('A'), m.sent);
        if (panel.title === 'Telemetries received') assert.equal(last('A'), m.received);
        if (panel.title === 'Received %') {
          const expected = ((m.received - m.duplicated - m.foreign) / m.sent) * 100;
          assert.ok(Math.abs((last('A') ?? Number.NaN) - expected) < 1e-9, `${last('A')} vs ${expected}`);
        }
        if (panel.title === 'Lost') assert.equal(last('A'), m.lost);
      });
    }
  });
});
