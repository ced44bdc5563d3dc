import { createHash } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { redactUrl } from '../consumer/source.js';
import { FleetloadError } from '../errors.js';
import { escapeHtml as e, noScriptEnd, noStyleEnd, scriptJson } from '../html/escape.js';
import { uplotAssets } from '../html/uplot.js';
import { clockText, loadAsRun, type RunEvent } from '../stats/events.js';
import { type Histogram, type LatencySummary, summarize } from '../stats/histogram.js';
import { SATURATED_CPU_PERCENT, SATURATED_INTERVALS, SATURATED_LAG_MS } from '../stats/monitor.js';
import type { IntervalLatency, IntervalRecord, Summary, TimeseriesRow } from '../stats/summary.js';
import { parseThreshold, thresholdUnitLabel } from '../stats/thresholds.js';
import { FLEETLOAD_VERSION } from '../version.js';
import { REPORT_JS } from './client.js';
import { devicesSection } from './devices.js';
import { eventsPanelBody, reportEvents } from './events.js';
import { HISTOGRAM_NAMES, type HistogramName, loadResults, type ResultsData } from './load.js';
import { REPORT_CSS } from './style.js';

/**
 * report.html: one self-contained file per run that opens offline and makes no request at all. uPlot (script and
 * stylesheet) is inlined; the figures travel as JSON in a non-executed <script type="application/json">; a CSP
 * meta tag allows only the two inline scripts (by hash), inline styles and data: images. Every string from the
 * results folder is escaped (escapeHtml / scriptJson). Tables are rendered here; the charts are drawn by
 * REPORT_JS from the chart definitions made here.
 */

export interface ReportOptions {
  /** "generated at" in the footer (default: now) */
  now?: Date;
}

/** Reads the results folder `dir` and returns the report page. E_FILE when `dir` is not a results folder. */
export async function renderReport(dir: string, opts: ReportOptions = {}): Promise<string> {
  return buildReport(await loadResults(dir), opts);
}

/** Writes `<dir>/report.html` (atomically: a temporary file, then a rename) and returns its path. */
export async function writeReport(dir: string, opts: ReportOptions = {}): Promise<string> {
  const html = await renderReport(dir, opts);
  const target = join(dir, 'report.html');
  const tmp = join(dir, `.report.html.${process.pid}.tmp`);
  try {
    await writeFile(tmp, html);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new FleetloadError('E_OUT', `cannot write ${target}: ${(err as Error).message}`, { cause: err });
  }
  return target;
}

// ---------------------------------------------------------------------------------------------- assets

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('base64');

// ---------------------------------------------------------------------------------------------- formatting

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Like the dashboard: 3 significant-ish digits, thousands separated. */
export function num(v: number | undefined | null): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1000 || Number.isInteger(v)) return intFmt.format(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a === 0) return '0';
  if (a < 0.01) return String(Number(v.toPrecision(2)));
  return v.toFixed(2);
}
const count = (v: number | undefined | null): string =>
  v === undefined || v === null || !Number.isFinite(v) ? '–' : intFmt.format(v);
function pct(part: number, whole: number): string {
  if (!(whole > 0)) return '–';
  const p = (part * 100) / whole;
  if (p === 0) return '0%';
  if (p < 0.001) return '<0.001%';
  return `${p < 1 ? p.toPrecision(2) : p.toFixed(p < 10 ? 2 : 1)}%`;
}
function utc(iso: string | undefined): string {
  if (!iso) return '–';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return `${new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')} UTC`;
}
function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s} s`;
  const whole = Math.round(s);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const sec = whole % 60;
  return h > 0 ? `${h} h ${m} min ${sec} s` : `${m} min ${sec} s`;
}
/** ' ms', '%', ' s' or '' after a threshold's observed value. */
function unitOf(expr: string): string {
  try {
    const u = thresholdUnitLabel(parseThreshold(expr));
    return u === '' || u === '%' ? u : ` ${u}`;
  } catch {
    return '';
  }
}
const plural = (n: number, one: string, many = `${one}s`): string => `${count(n)} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------------------------------------- data for charts

interface SeriesDef {
  label: string;
  col: string;
  /** CSS variable holding the color */
  color: string;
  width?: number;
  dash?: boolean;
  fill?: boolean;
  scale?: 'y' | 'y2';
}

interface ChartDef {
  id: string;
  kind: 'time' | 'percentile';
  unit: string;
  unit2?: string;
  yMin?: number;
  y2Min?: number;
  height?: number;
  series: SeriesDef[];
}

interface Band {
  kind: 'ramp' | 'drain';
  from: number;
  to: number;
}

interface ReportData {
  runId: string;
  time: Record<string, Array<number | null>>;
  dist: Record<string, Array<number | null>>;
  bands: Band[];
  charts: ChartDef[];
  /** run events, drawn as markers on the charts over time */
  events: RunEvent[];
}

type Cols = Record<string, Array<number | null>>;

const lat = (l: IntervalLatency | undefined, key: keyof IntervalLatency): number | null =>
  l && l.count > 0 ? l[key] : null;

function seriesFromIntervals(rows: IntervalRecord[]): { cols: Cols; bands: Band[] } {
  const cols: Cols = {
    x: [],
    devices: [],
    sent: [],
    received: [],
    failed: [],
    e2e50: [],
    e2e95: [],
    e2e99: [],
    ack50: [],
    ack99: [],
    lag50: [],
    lag99: [],
    gaps: [],
    duplicated: [],
    reordered: [],
    cpu: [],
    loop: [],
    connects: [],
    connectFailures: [],
    reconnects: [],
    bytesSent: [],
    bytesReceived: [],
  };
  const push = (k: string, v: number | null): void => {
    cols[k]?.push(v);
  };
  const bands: Band[] = [];
  let prevX = 0;
  for (const r of rows) {
    const x = r.elapsedMs / 1000;
    const dur = Math.max(0.001, (r.durationMs > 0 ? r.durationMs : 1000) / 1000);
    const c = r.counters;
    const l = r.latency;
    push('x', x);
    push('devices', r.devicesConnected);
    push('sent', (c.sent ?? 0) / dur);
    push('received', (c.received ?? 0) / dur);
    push('failed', (c.failed ?? 0) / dur);
    push('e2e50', lat(l.e2e, 'p50'));
    push('e2e95', lat(l.e2e, 'p95'));
    push('e2e99', lat(l.e2e, 'p99'));
    push('ack50', lat(l.publishAck, 'p50'));
    push('ack99', lat(l.publishAck, 'p99'));
    push('lag50', lat(l.scheduleLag, 'p50'));
    push('lag99', lat(l.scheduleLag, 'p99'));
    push('gaps', r.gaps);
    push('duplicated', (c.duplicated ?? 0) / dur);
    push('reordered', (c.reordered ?? 0) / dur);
    push('cpu', r.cpuPercent);
    push('loop', r.eventLoopLagP99Ms);
    push('connects', (c.connects ?? 0) / dur);
    push('connectFailures', (c.connectFailures ?? 0) / dur);
    push('reconnects', (c.reconnects ?? 0) / dur);
    push('bytesSent', (c.bytesSent ?? 0) / dur);
    push('bytesReceived', (c.bytesReceived ?? 0) / dur);
    if (r.phase === 'ramp' || r.phase === 'drain') {
      const last = bands[bands.length - 1];
      if (last && last.kind === r.phase && Math.abs(last.to - prevX) < 1e-9) last.to = x;
      else bands.push({ kind: r.phase, from: Math.max(0, x - dur), to: x });
    }
    prevX = x;
  }
  return { cols, bands };
}

function seriesFromTimeseries(rows: TimeseriesRow[], startedAt: string | undefined): Cols {
  const first = rows[0] ? Date.parse(rows[0].time) : 0;
  const started = startedAt ? Date.parse(startedAt) : Number.NaN;
  const t0 = Number.isFinite(started) ? started : first - 1000;
  const cols: Cols = {
    x: [],
    devices: [],
    sent: [],
    received: [],
    failed: [],
    e2e50: [],
    e2e95: [],
    e2e99: [],
    ack50: [],
    ack99: [],
    gaps: [],
  };
  let prev = t0;
  for (const r of rows) {
    const t = Date.parse(r.time);
    const dur = Math.max(0.001, (t - prev) / 1000 || 1);
    prev = t;
    const hasE2e = r.received > 0 || r.e2eP50 > 0;
    const hasAck = r.acked > 0 || r.ackP50 > 0;
    cols.x?.push((t - t0) / 1000);
    cols.devices?.push(r.devicesConnected);
    cols.sent?.push(r.sent / dur);
    cols.received?.push(r.received / dur);
    cols.failed?.push(r.failed / dur);
    cols.e2e50?.push(hasE2e ? r.e2eP50 : null);
    cols.e2e95?.push(hasE2e ? r.e2eP95 : null);
    cols.e2e99?.push(hasE2e ? r.e2eP99 : null);
    cols.ack50?.push(hasAck ? r.ackP50 : null);
    cols.ack99?.push(hasAck ? r.ackP99 : null);
    cols.gaps?.push(r.lost);
  }
  return cols;
}

/** Points of the percentile curve: x = 1 / (1 − q) from 1 (0 %) to 1e5 (99.999 %), log-spaced. */
const DIST_POINTS = 300;
const DIST_DECADES = 5;

function distribution(hs: Partial<Record<HistogramName, Histogram>>): Cols {
  const cols: Cols = { x: [] };
  const names = HISTOGRAM_NAMES.filter((n) => (hs[n]?.totalCount ?? 0) > 0);
  for (const n of names) cols[n] = [];
  for (let k = 0; k <= DIST_POINTS; k++) {
    const x = 10 ** ((DIST_DECADES * k) / DIST_POINTS);
    const q = 100 * (1 - 1 / x);
    cols.x?.push(x);
    for (const n of names) {
      const h = hs[n] as Histogram;
      cols[n]?.push(h.getValueAtPercentile(q) / 1000);
    }
  }
  return cols;
}

// ---------------------------------------------------------------------------------------------- page pieces

const card = (label: string, value: string, unit: string, sub: string, alert = false): string =>
  `<div class="card${alert ? ' alert' : ''}"><div class="label">${e(label)}</div>` +
  `<div class="value">${e(value)}${unit ? `<span class="unit">${e(unit)}</span>` : ''}</div>` +
  `<div class="sub">${e(sub)}</div></div>`;

function table(head: string[], rows: string[][], numeric: number | number[], cls = ''): string {
  const isNum = (i: number): boolean => (typeof numeric === 'number' ? i >= numeric : numeric.includes(i));
  const th = head.map((h, i) => `<th scope="col"${isNum(i) ? ' class="n"' : ''}>${e(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td${isNum(i) ? ' class="n"' : ''}>${c}</td>`)).join('')}</tr>`,
    )
    .join('');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

const panel = (title: string, body: string, cls = ''): string =>
  `<section class="panel${cls ? ` ${cls}` : ''}"><h2>${e(title)}</h2>${body}</section>`;

/** Generator health in words: whether the figures describe the system under test, and if not why and what to do. */
/** "0:12–0:17 (generator saturated: CPU 97%)" per saturation-start, ended by the next saturation-end or the run */
function saturationSpells(events: readonly RunEvent[]): string[] {
  const out: string[] = [];
  let open: RunEvent | undefined;
  for (const ev of events) {
    if (ev.kind === 'saturation-start') open = ev;
    else if (ev.kind === 'saturation-end' && open) {
      out.push(`${clockText(open.elapsedMs)}–${clockText(ev.elapsedMs)} (${open.message})`);
      open = undefined;
    }
  }
  if (open) out.push(`from ${clockText(open.elapsedMs)} to the end (${open.message})`);
  return out.slice(0, 5);
}

export function generatorHealth(s: Summary): { saturated: boolean; headline: string; details: string[] } {
  const g = s.generator ?? { cpuPercentPeak: 0, eventLoopLagP99: 0, saturated: false };
  const lagP99 = s.latency?.scheduleLag?.p99 ?? 0;
  const figures = `CPU peak ${num(g.cpuPercentPeak)}% of one core, event-loop lag p99 ${num(g.eventLoopLagP99)} ms, schedule lag p99 ${num(lagP99)} ms`;
  if (!g.saturated) {
    return {
      saturated: false,
      headline: 'The generator kept up: the figures describe the system under test.',
      details: [
        `${figures} — never ${SATURATED_INTERVALS} s in a row over the limits (CPU ≥ ${SATURATED_CPU_PERCENT}%, or a second's lag p99 above ${SATURATED_LAG_MS} ms).`,
      ],
    };
  }
  const why: string[] = [];
  if (g.cpuPercentPeak >= SATURATED_CPU_PERCENT) {
    why.push(
      `CPU reached ${num(g.cpuPercentPeak)}% of one core (saturation: ≥ ${SATURATED_CPU_PERCENT}% for ${SATURATED_INTERVALS} s in a row); a Node.js process does its work on one core, so it had no time left to send and receive on schedule.`,
    );
  }
  if (g.eventLoopLagP99 > SATURATED_LAG_MS) {
    why.push(
      `The event loop was blocked: timers fired up to ${num(g.eventLoopLagP99)} ms late (p99, limit ${SATURATED_LAG_MS} ms), so messages were sent and acks and deliveries read late.`,
    );
  }
  if (lagP99 > SATURATED_LAG_MS) {
    why.push(
      `Messages left ${num(lagP99)} ms after their scheduled time (schedule lag p99, limit ${SATURATED_LAG_MS} ms). End-to-end delay is measured from the scheduled time, so this lateness is inside every e2e figure.`,
    );
  }
  // when: the seconds the rule saw (whole-run figures can stay under the limits while 3 seconds in a row did not)
  const spells = saturationSpells(s.events ?? []);
  if (spells.length > 0) why.push(`When: ${spells.join('; ')}.`);
  if (why.length === 0) why.push(`${figures}.`);
  return {
    saturated: true,
    headline:
      'The generator was saturated: these figures may describe fleetload rather than the system under test.',
    details: [
      ...why,
      'What to do: spread the load over more worker processes or machines (--workers), or lower the load per process (fewer devices or a longer --interval), and run again. Compare throughput and latency only between runs where the generator kept up.',
    ],
  };
}

function latencyRows(d: ResultsData): { rows: string[][]; fromHistograms: boolean } {
  const names: Array<[HistogramName, string]> = [
    ['e2e', 'end-to-end'],
    ['publishAck', 'publish → ack'],
    ['connect', 'connect'],
    ['scheduleLag', 'schedule lag'],
  ];
  let fromHistograms = false;
  const rows = names.map(([key, label]) => {
    const h = d.histograms[key];
    let l: LatencySummary | undefined;
    if (h && h.totalCount > 0) {
      l = summarize(h);
      fromHistograms = true;
    } else l = d.summary?.latency?.[key];
    if (!l || l.count === 0) return [e(label), '0', '–', '–', '–', '–', '–', '–', '–'];
    return [
      e(label),
      e(count(l.count)),
      e(num(l.min)),
      e(num(l.mean)),
      e(num(l.p50)),
      e(num(l.p90)),
      e(num(l.p99)),
      e(num(l.p999)),
      e(num(l.max)),
    ];
  });
  return { rows, fromHistograms };
}

/**
 * Settings that only mean something with a feature the run did not use (another consumer source, a sink that
 * was not configured): scenario.yaml keeps their defaults so it can be re-run as is, the report leaves them out.
 */
function irrelevant(k: string, sc: Record<string, unknown>): boolean {
  if (/^(eventhub|storage)/.test(k)) return sc.consumer !== 'eventhubs';
  if (/^nats/.test(k)) return sc.consumer !== 'nats';
  if (/^consumer(Group|Host|Cert|Key)$/.test(k)) return sc.consumer === 'none';
  if (/^influx/.test(k)) return sc.influxUrl === undefined;
  if (/^prometheus/.test(k)) return sc.prometheusPort === undefined;
  return false;
}

function scenarioRows(d: ResultsData): string[][] {
  const rows: string[][] = [];
  const src = d.scenario;
  if (src) {
    for (const [k, v] of Object.entries(src)) {
      if (v === undefined || v === null || irrelevant(k, src)) continue;
      const text = Array.isArray(v)
        ? v.map(String).join(', ')
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
      rows.push([e(k), e(k === 'host' ? redactUrl(text) : text)]);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------- the page
// One function per part of the page, in page order; buildReport puts them together.

interface TimeData {
  time: Cols;
  bands: Band[];
  /** from intervals.jsonl: schedule lag, duplicates, connections and generator health over time */
  richSeries: boolean;
  hasTime: boolean;
}

/** The columns of the charts over time: from intervals.jsonl, or timeseries.csv in an older results folder. */
function timeData(d: ResultsData, notes: string[]): TimeData {
  const s = d.summary;
  let time: Cols;
  let bands: Band[] = [];
  let richSeries = false;
  if (d.intervals && d.intervals.length > 0) {
    const r = seriesFromIntervals(d.intervals);
    time = r.cols;
    bands = r.bands;
    richSeries = true;
  } else if (d.timeseries && d.timeseries.length > 0) {
    time = seriesFromTimeseries(d.timeseries, s?.startedAt);
    notes.push(
      'no intervals.jsonl (a results folder from an older fleetload): charts come from timeseries.csv; schedule lag, duplicates and generator health over time were not recorded',
    );
  } else {
    time = { x: [] };
    notes.push('no intervals.jsonl or timeseries.csv rows: there are no charts over time');
  }
  return { time, bands, richSeries, hasTime: (time.x?.length ?? 0) > 0 };
}

interface TimeChart {
  def: ChartDef;
  title: string;
  available: boolean;
  why?: string;
}

/** Devices, message rates, e2e and ack latency over time. */
function trafficCharts(target: number, hasTime: boolean, noAck: string | undefined): TimeChart[] {
  return [
    {
      title: 'Devices connected',
      available: hasTime,
      def: {
        id: 'devices',
        kind: 'time',
        unit: 'devices',
        yMin: target,
        series: [{ label: 'connected', col: 'devices', color: '--c-devices', fill: true }],
      },
    },
    {
      title: 'Messages per second: sent vs received',
      available: hasTime,
      def: {
        id: 'rates',
        kind: 'time',
        unit: 'msg/s',
        series: [
          { label: 'sent/s', col: 'sent', color: '--c-sent', width: 3 },
          { label: 'received/s', col: 'received', color: '--c-received', width: 1.5 },
          { label: 'failed/s', col: 'failed', color: '--c-failed', width: 1.5 },
        ],
      },
    },
    {
      title: 'End-to-end delay',
      available: hasTime,
      def: {
        id: 'e2e',
        kind: 'time',
        unit: 'ms',
        series: [
          { label: 'p50', col: 'e2e50', color: '--c-p50' },
          { label: 'p95', col: 'e2e95', color: '--c-p95' },
          { label: 'p99', col: 'e2e99', color: '--c-p99' },
        ],
      },
    },
    {
      title: 'Publish → ack',
      available: hasTime && noAck === undefined,
      ...(noAck ? { why: noAck } : {}),
      def: {
        id: 'ack',
        kind: 'time',
        unit: 'ms',
        series: [
          { label: 'p50', col: 'ack50', color: '--c-p50' },
          { label: 'p99', col: 'ack99', color: '--c-p99' },
        ],
      },
    },
  ];
}

/** Schedule lag, loss, connections and the generator over time. */
function healthCharts(hasTime: boolean, richSeries: boolean): TimeChart[] {
  return [
    {
      title: 'Schedule lag (send time − scheduled time)',
      available: richSeries,
      why: 'not recorded in this results folder (no intervals.jsonl)',
      def: {
        id: 'lag',
        kind: 'time',
        unit: 'ms',
        series: [
          { label: 'p50', col: 'lag50', color: '--c-p50' },
          { label: 'p99', col: 'lag99', color: '--c-p99' },
        ],
      },
    },
    {
      title: 'Loss and duplicates',
      available: hasTime,
      def: {
        id: 'loss',
        kind: 'time',
        unit: 'messages',
        yMin: 5,
        series: richSeries
          ? [
              { label: 'gaps (holes so far)', col: 'gaps', color: '--c-failed', fill: true },
              { label: 'duplicated/s', col: 'duplicated', color: '--c-p95' },
              { label: 'reordered/s', col: 'reordered', color: '--c-target', width: 1.5 },
            ]
          : [{ label: 'gaps (holes so far)', col: 'gaps', color: '--c-failed', fill: true }],
      },
    },
    {
      title: 'Connections per second: connects, failures, reconnects',
      available: richSeries,
      why: 'not recorded in this results folder (no intervals.jsonl)',
      def: {
        id: 'connections',
        kind: 'time',
        unit: 'per s',
        yMin: 5,
        series: [
          { label: 'connects/s', col: 'connects', color: '--c-devices', fill: true },
          { label: 'connect failures/s', col: 'connectFailures', color: '--c-failed' },
          { label: 'reconnects/s', col: 'reconnects', color: '--c-p95' },
        ],
      },
    },
    {
      title: 'Bytes per second: sent (MQTT packets) vs received (payloads)',
      available: richSeries,
      why: 'not recorded in this results folder (no intervals.jsonl)',
      def: {
        id: 'bytes',
        kind: 'time',
        unit: 'B/s',
        series: [
          { label: 'sent B/s', col: 'bytesSent', color: '--c-sent', width: 2 },
          { label: 'received B/s', col: 'bytesReceived', color: '--c-received', width: 1.5 },
        ],
      },
    },
    {
      title: 'Generator: CPU and event-loop lag',
      available: richSeries,
      why: 'not recorded in this results folder (no intervals.jsonl)',
      def: {
        id: 'generator',
        kind: 'time',
        unit: '% CPU',
        unit2: 'ms lag',
        yMin: 100,
        y2Min: 10,
        series: [
          { label: 'CPU %', col: 'cpu', color: '--c-devices', fill: true },
          { label: 'event-loop lag p99 ms', col: 'loop', color: '--c-p95', scale: 'y2' },
        ],
      },
    },
  ];
}

/** The chart definitions REPORT_JS draws: the charts over time that have data, then the e2e distribution. */
function chartDefs(d: ResultsData, timeCharts: TimeChart[], hasDist: boolean): ChartDef[] {
  const charts: ChartDef[] = [];
  for (const c of timeCharts) if (c.available) charts.push(c.def);
  if (hasDist) {
    const series: SeriesDef[] = [{ label: 'end-to-end', col: 'e2e', color: '--c-p99', width: 2.5 }];
    if ((d.histograms.publishAck?.totalCount ?? 0) > 0)
      series.push({ label: 'publish → ack', col: 'publishAck', color: '--c-sent', width: 1.5, dash: true });
    charts.push({ id: 'dist', kind: 'percentile', unit: 'ms', height: 300, series });
  }
  return charts;
}

/** A panel per chart over time: the chart's place, or why it is missing. */
function timePanels(timeCharts: TimeChart[]): string {
  return timeCharts
    .map((c) =>
      panel(
        c.title,
        c.available
          ? `<div class="chart" id="chart-${e(c.def.id)}"></div>`
          : `<div class="nochart">${e(c.why ?? 'no data over time in this results folder')}</div>`,
      ),
    )
    .join('\n');
}

/** The e2e percentile distribution with its table, or why there is none. */
function distributionPanel(d: ResultsData, hasDist: boolean): string {
  const eh = d.histograms.e2e;
  if (hasDist && eh) {
    const ps: Array<[string, number]> = [
      ['p50', 50],
      ['p90', 90],
      ['p99', 99],
      ['p99.9', 99.9],
      ['p99.99', 99.99],
      ['p99.999', 99.999],
    ];
    const rows = ps.map(([label, p]) => [e(label), e(num(eh.getValueAtPercentile(p) / 1000))]);
    rows.push([e('max'), e(num(eh.maxValue / 1000))]);
    rows.push([e('samples'), e(count(eh.totalCount))]);
    const tail = (100 * (1 - 1 / eh.totalCount)).toFixed(
      Math.max(0, Math.ceil(Math.log10(eh.totalCount)) - 2),
    );
    return panel(
      'End-to-end delay distribution (from histograms/e2e.hdr)',
      `<div class="dist"><div class="chart" id="chart-dist"></div>` +
        `<div class="ptable">${table(['percentile', 'ms'], rows, 1)}` +
        `<p class="hint">x axis: percentile, log-scaled so the tail gets room (each step right is 10× fewer messages). ` +
        `With ${e(count(eh.totalCount))} samples, percentiles above ${e(tail)}% are all the maximum.</p></div></div>`,
      'wide',
    );
  } else {
    return panel(
      'End-to-end delay distribution',
      `<div class="nochart">${e(
        Object.keys(d.histograms).length === 0
          ? 'No histograms in this results folder: the distribution cannot be drawn.'
          : 'No end-to-end samples in this run.',
      )}</div>`,
      'wide',
    );
  }
}

/**
 * Why a run is invalid (summary.json `invalid`), or undefined for a valid one. A lost worker's run (incomplete)
 * is FAILED, as its exit code says (src/run/verdict.ts exitCodeOfSummary).
 */
function invalidReasons(s: Summary): string[] | undefined {
  if (s.passed || s.incomplete || s.valid !== false) return undefined;
  return s.invalid && s.invalid.length > 0
    ? s.invalid
    : ['the run did not offer or observe the load it planned'];
}

/** PASSED / FAILED / INVALID / INCOMPLETE and why, for the header. */
function verdictOf(s: Summary | undefined): { cls: string; text: string; why: string } {
  if (!s) return { cls: 'failed', text: 'INCOMPLETE', why: 'no summary.json: the run did not finish' };
  const invalid = invalidReasons(s);
  if (invalid) return { cls: 'invalid', text: 'INVALID', why: `invalid: ${invalid.join('; ')}` };
  if (s.interrupted)
    return { cls: 'failed', text: 'FAILED', why: 'stopped early — an interrupted run never passes' };
  const th = s.thresholds ?? [];
  const passedN = th.filter((t) => t.passed).length;
  return {
    cls: s.passed ? 'passed' : 'failed',
    text: s.passed ? 'PASSED' : 'FAILED',
    why:
      th.length === 0
        ? 'no thresholds set'
        : `${passedN} of ${th.length} threshold${th.length === 1 ? '' : 's'} passed`,
  };
}

/** The reasons of an invalid run, above everything else ('' for a valid one). */
function invalidSection(s: Summary | undefined): string {
  const reasons = s ? invalidReasons(s) : undefined;
  if (!reasons) return '';
  const items = reasons.map((r) => `<li>${e(r)}</li>`).join('');
  return `<section class="invalid-reasons" id="invalid"><h2>This run is invalid</h2><ul>${items}</ul><p class="hint">An invalid run did not offer or observe the load it planned: its figures do not describe the system under load, and it never passes (exit 5), whatever its thresholds say.</p></section>`;
}

/** Why a run has no publish → ack samples: QoS 0 has no acks. */
export function noAckSamples(s: Summary | undefined): string | undefined {
  if (!s || (s.latency?.publishAck?.count ?? 0) > 0) return undefined;
  return s.scenario?.qos === 0 ? 'no samples: QoS 0 has no acks' : 'no samples: no publish was acknowledged';
}

/** The headline figures. */
function summaryCards(d: ResultsData, health: ReturnType<typeof generatorHealth> | undefined): string[] {
  const s = d.summary;
  const m = s?.messages;
  const cards: string[] = [];
  if (s && m) {
    const uniq = Math.max(0, m.received - m.duplicated - m.foreign);
    const l = s.latency;
    const e2eH = d.histograms.e2e;
    const ackH = d.histograms.publishAck;
    const noAck = noAckSamples(s);
    const p = (h: Histogram | undefined, fallback: number, q: number): string =>
      h && h.totalCount > 0 ? num(h.getValueAtPercentile(q) / 1000) : num(fallback);
    cards.push(
      card(
        'Devices connected (peak)',
        `${count(s.devices.connectedPeak)} / ${count(s.devices.target)}`,
        '',
        s.devices.connectFailures > 0
          ? `${plural(s.devices.connectFailures, 'connect failure')}`
          : `no connect failures · ${plural(s.devices.reconnects, 'reconnect')}`,
        s.devices.connectFailures > 0 || s.devices.connectedPeak < s.devices.target,
      ),
      card(
        'Sent',
        count(m.sent),
        '',
        `${num(s.rates?.sentPerSec)}/s · ${count(m.acked)} acked`,
        m.failed > 0,
      ),
      card(
        'Received',
        count(m.received),
        '',
        `${num(s.rates?.receivedPerSec)}/s · ${pct(uniq, m.sent)} delivered`,
      ),
      card(
        'End-to-end p50 / p99',
        `${p(e2eH, l.e2e.p50, 50)} / ${p(e2eH, l.e2e.p99, 99)}`,
        'ms',
        `max ${num(l.e2e.max)} ms`,
      ),
      card(
        'Publish → ack p50 / p99',
        noAck ? '–' : `${p(ackH, l.publishAck.p50, 50)} / ${p(ackH, l.publishAck.p99, 99)}`,
        noAck ? '' : 'ms',
        noAck ?? (m.failed > 0 ? `${count(m.failed)} failed` : `${count(m.unconfirmed)} unconfirmed`),
        m.failed > 0 || m.unconfirmed > 0,
      ),
      card('Lost', count(m.lost), '', `${pct(m.lost, m.sent)} of sent`, m.lost > 0),
      card(
        'Duplicated / reordered',
        `${count(m.duplicated)} / ${count(m.reordered)}`,
        '',
        `${count(m.foreign)} foreign`,
        m.duplicated > 0,
      ),
      card(
        'Generator',
        health?.saturated ? 'saturated' : 'ok',
        '',
        `CPU peak ${num(s.generator?.cpuPercentPeak)}% · lag p99 ${num(s.generator?.eventLoopLagP99)} ms`,
        health?.saturated === true,
      ),
    );
  }
  return cards;
}

/** Thresholds, generator health and errors; then messages and latency. */
const segmentIndex = (segment: string | undefined): number =>
  segment === undefined ? Number.POSITIVE_INFINITY : Number.parseInt(segment, 10);

/** A merged run (fleetload merge): the folders it joined, one row each, so one slow or short segment shows. */
function partsSection(parts: NonNullable<ResultsData['parts']>): string {
  const rows = [...parts]
    // segments in order, consumers after them
    .sort((a, b) => segmentIndex(a.segment) - segmentIndex(b.segment))
    .map((p) => [
      e(p.segment ? `segment ${p.segment}` : 'consumer'),
      e(p.role),
      e(count(p.sent)),
      e(count(p.received)),
      e(p.startedAt),
      e(p.endedAt),
    ]);
  return `<section>${panel(
    `Merged from ${parts.length} folders`,
    table(['part', 'role', 'sent', 'received', 'started', 'ended'], rows, [2, 3]),
  )}</section>`;
}

function tableSections(d: ResultsData, health: ReturnType<typeof generatorHealth> | undefined): string[] {
  const s = d.summary;
  const m = s?.messages;
  const sections: string[] = [];
  if (s && m) {
    const th = s.thresholds ?? [];
    const thresholds =
      th.length === 0
        ? '<p class="muted">No thresholds were set (add <code>--threshold e2e.p99&lt;500</code> to make the run pass or fail).</p>'
        : table(
            ['threshold', 'observed', 'result'],
            th.map((t) => [
              `<code>${e(t.expr)}</code>`,
              e(`${num(t.value)}${unitOf(t.expr)}`),
              t.passed ? '<span class="ok">✓ pass</span>' : '<span class="ko">✗ fail</span>',
            ]),
            1,
          );
    const errs = [...(s.errors ?? [])].sort((a, b) => b.count - a.count);
    const errors =
      errs.length === 0
        ? '<p class="muted">None: every connect succeeded and no message was refused.</p>'
        : table(
            ['kind', 'code', 'reason', 'count'],
            errs.map((x) => [e(x.kind), e(String(x.code)), e(x.reason), e(count(x.count))]),
            3,
          );
    const genHtml = health
      ? `<p class="${health.saturated ? 'ko' : 'ok'}">${e(health.headline)}</p>` +
        health.details.map((t) => `<p>${e(t)}</p>`).join('')
      : '';
    sections.push(
      `<section class="grid3">${panel('Thresholds', thresholds)}${panel('Generator health', genHtml, health?.saturated ? 'alert' : '')}${panel('Errors', errors)}</section>`,
    );
    if (d.parts) sections.push(partsSection(d.parts));

    const msgRows: Array<[string, number, string]> = [
      ['scheduled', m.scheduled, 'slots that came due'],
      ['sent', m.sent, 'written to the broker, each with a seq'],
      ['acked', m.acked, 'PUBACK/PUBCOMP received (QoS 0: written)'],
      ['failed', m.failed, 'refused by the broker or in flight when a connection dropped'],
      ['unconfirmed', m.unconfirmed, 'no ack by the end of the grace period'],
      ['received', m.received, 'delivered to the consumer'],
      ['lost', m.lost, 'sent, never received by the end of the grace period'],
      ['duplicated', m.duplicated, 'received more than once'],
      ['reordered', m.reordered, 'received after a later seq of the same device'],
      ['foreign', m.foreign, 'not from this run, or without valid metadata'],
    ];
    const messages = table(
      ['', 'count', '% of sent', 'meaning'],
      msgRows.map(([k, v, meaning]) => [
        e(k),
        e(count(v)),
        e(k === 'scheduled' || k === 'sent' ? '' : pct(v, m.sent)),
        `<span class="muted">${e(meaning)}</span>`,
      ]),
      [1, 2],
      'messages',
    );
    const lr = latencyRows(d);
    const latency =
      table(['', 'count', 'min', 'mean', 'p50', 'p90', 'p99', 'p99.9', 'max'], lr.rows, 1) +
      `<p class="hint">${e(lr.fromHistograms ? 'From the HDR histograms of the run (3 significant digits).' : 'From summary.json (no histograms in this folder).')} End-to-end is measured from each message's scheduled send time, so generator lateness counts.</p>`;
    sections.push(
      `<section class="grid2">${panel('Messages', messages)}${panel('Latency (ms)', latency)}</section>`,
    );
  }
  return sections;
}

/** The resolved scenario and the notes on the results folder, at the foot of the page. */
function footBlocks(d: ResultsData, notes: string[]): { scenarioBlock: string; notesBlock: string } {
  const scRows = scenarioRows(d);
  const scenarioBlock =
    scRows.length > 0
      ? `<details class="scenario" open><summary>Scenario (scenario.yaml, secrets redacted)</summary><div class="kv">${scRows.map(([k, v]) => `<div><span class="k">${k}</span><span class="v">${v}</span></div>`).join('')}</div></details>`
      : '';
  const notesBlock =
    notes.length > 0
      ? `<section class="notes"><h2>Notes on this results folder</h2><ul>${notes.map((n) => `<li>${e(n)}</li>`).join('')}</ul></section>`
      : '';
  return { scenarioBlock, notesBlock };
}

/** The facts line of the header: broker, load, start and length of the run. */
function headerFacts(broker: string, s: Summary | undefined): string[] {
  const sc = s?.scenario;
  const startMs = s ? Date.parse(s.startedAt) : Number.NaN;
  const endMs = s ? Date.parse(s.endedAt) : Number.NaN;
  const facts: string[] = [];
  const fact = (k: string, v: string, cls = ''): void => {
    facts.push(
      `<span><span class="k">${e(k)}</span> <span${cls ? ` class="${cls}"` : ''}>${e(v)}</span></span>`,
    );
  };
  fact('broker', broker, 'mono');
  if (sc) {
    fact('devices', `${count(sc.devices)} @ ${num(sc.spawnRate)}/s`);
    // the load as it actually ran: changes made while it ran (the dashboard)
    if (s?.events?.some((ev) => ev.kind === 'load')) fact('load', loadAsRun(sc.devices, s.events));
    fact('every', duration(sc.intervalMs));
    fact('run time', duration(sc.runTimeMs));
    fact('QoS', String(sc.qos));
    fact('MQTT', String(sc.mqttVersion));
  }
  if (s) {
    fact('started', utc(s.startedAt));
    fact('took', duration(endMs - startMs));
  }
  return facts;
}

/** The page's Content-Security-Policy: only the two inline scripts, by hash. */
function reportCsp(scripts: string[]): string {
  // only fixed words and base64 hashes: nothing to escape in the attribute
  return [
    "default-src 'none'",
    `script-src ${scripts.map((x) => `'sha256-${sha256(x)}'`).join(' ')}`,
    "style-src 'unsafe-inline'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

export function buildReport(d: ResultsData, opts: ReportOptions = {}): string {
  const s = d.summary;
  const notes = [...d.notes];
  const runId =
    s?.runId ?? (typeof d.scenario?.runId === 'string' ? d.scenario.runId : basename(d.dir) || 'unknown run');
  const sc = s?.scenario;
  const broker = redactUrl(
    sc?.host ?? (typeof d.scenario?.host === 'string' ? d.scenario.host : 'embedded broker'),
  );
  const { time, bands, richSeries, hasTime } = timeData(d, notes);
  const dist = distribution(d.histograms);
  const hasDist = (d.histograms.e2e?.totalCount ?? 0) > 0;
  if (!hasDist) {
    notes.push(
      Object.keys(d.histograms).length === 0
        ? 'no histograms/ folder: the e2e percentile distribution cannot be drawn (latency figures come from summary.json)'
        : 'no e2e histogram (no message was received): no percentile distribution',
    );
  }

  const timeCharts = [
    ...trafficCharts(s?.devices?.target ?? sc?.devices ?? 0, hasTime, noAckSamples(s)),
    ...healthCharts(hasTime, richSeries),
  ];
  const charts = chartDefs(d, timeCharts, hasDist);
  const chartPanels = timePanels(timeCharts);
  const distPanel = distributionPanel(d, hasDist);
  const verdict = verdictOf(s);
  const health = s ? generatorHealth(s) : undefined;
  const cards = summaryCards(d, health);
  const sections = tableSections(d, health);
  const { scenarioBlock, notesBlock } = footBlocks(d, notes);
  const facts = headerFacts(broker, s);

  const events = reportEvents(d);
  const data: ReportData = { runId, time, dist, bands, charts, events };
  const { js: uplotJs, css: uplotCss } = uplotAssets();
  const scripts = [noScriptEnd(uplotJs), noScriptEnd(REPORT_JS)];
  const csp = reportCsp(scripts);
  const generated = (opts.now ?? new Date()).toISOString();
  const version = s?.fleetloadVersion ?? FLEETLOAD_VERSION;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="fleetload ${e(FLEETLOAD_VERSION)}">
<title>fleetload report · ${e(runId)}</title>
<link rel="icon" href="data:,">
<style>${noStyleEnd(uplotCss)}</style>
<style>${noStyleEnd(REPORT_CSS)}</style>
</head>
<body>
<header>
  <div class="bar">
    <div class="brand"><span class="logo">fleetload</span><span class="tag">report</span><span class="ver">${e(version)}</span></div>
    <div class="run">run <strong>${e(runId)}</strong></div>
    <div class="spacer"></div>
    <span class="note">${e(verdict.why)}</span>
    <span class="badge ${verdict.cls}" id="verdict">${e(verdict.text)}</span>
  </div>
  <div class="facts">${facts.join('')}</div>
</header>
<main>
${invalidSection(s)}
${cards.length > 0 ? `<section class="cards">${cards.join('')}</section>` : ''}
${sections.join('\n')}
${devicesSection(s)}
${s?.events || events.length > 0 ? `<section class="events-section">${panel('Events', eventsPanelBody(events, s?.eventsDropped))}</section>` : ''}
<section class="charts">
${chartPanels}
${distPanel}
</section>
${scenarioBlock}
${notesBlock}
</main>
<footer><span>fleetload ${e(version)} · run ${e(runId)}</span><span class="spacer"></span><span>report generated ${e(utc(generated))} · self-contained: opens offline · ${hasTime ? 'shaded: ramp (blue), drain (amber) · drag on a chart to zoom, double-click to reset' : ''}</span></footer>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${scripts[0]}</script>
<script>${scripts[1]}</script>
</body>
</html>
`;
}
