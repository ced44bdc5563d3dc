import { FleetloadError } from '../errors.js';
import type { LatencySummary } from './histogram.js';
import type { Summary, ThresholdResult } from './summary.js';

/**
 * Pass/fail criteria on a run's summary: `<metric><op><number>[unit]`, e.g. `e2e.p99<500`, `e2e.p99 <= 0.5s`,
 * `loss<0.1%`, `messages.failed==0`. Parsed once at the boundary (a bad expression is an input error, exit 2),
 * evaluated against the final summary. The comparison happens in the threshold's own unit — seconds for `0.5s`,
 * percent for `0.1%` — and that is the unit of the reported value.
 */

export const THRESHOLD_OPS = ['<', '<=', '>', '>=', '==', '!='] as const;
export type ThresholdOp = (typeof THRESHOLD_OPS)[number];

/** `ms`/`s` on latencies; `%` on ratios; none on counts, rates and flags (and then ms for latencies). */
export type ThresholdUnit = 'ms' | 's' | '%';

export interface Threshold {
  /** the expression as written (trimmed) */
  expr: string;
  /** canonical metric name, e.g. `e2e.p99`, `loss`, `messages.failed` */
  metric: string;
  op: ThresholdOp;
  /** the number as written, in `unit` */
  target: number;
  unit: ThresholdUnit | undefined;
}

const EXAMPLE = 'write e.g. e2e.p99<500 or loss<0.1%';

// Records over the contract's keys, so a key added to Summary without a threshold fails the typecheck.
const latencyKeys: Record<keyof Summary['latency'], true> = {
  e2e: true,
  publishAck: true,
  connect: true,
  scheduleLag: true,
};
const statKeys: Record<keyof LatencySummary, true> = {
  count: true,
  min: true,
  mean: true,
  p50: true,
  p90: true,
  p95: true,
  p99: true,
  p999: true,
  max: true,
};
const messageKeys: Record<keyof Summary['messages'], true> = {
  scheduled: true,
  sent: true,
  acked: true,
  failed: true,
  unconfirmed: true,
  received: true,
  lost: true,
  duplicated: true,
  reordered: true,
  foreign: true,
};
const LATENCY_METRICS = Object.keys(latencyKeys) as (keyof Summary['latency'])[];
const STATS = Object.keys(statKeys) as (keyof LatencySummary)[];
const MESSAGE_KEYS = Object.keys(messageKeys) as (keyof Summary['messages'])[];

type Kind = 'latency' | 'count' | 'ratio' | 'rate' | 'flag';

interface MetricDef {
  kind: Kind;
  read: (s: Summary) => number;
}

/** received − duplicated − foreign: the distinct messages of this run that arrived. */
const uniqueReceived = (s: Summary): number =>
  Math.max(0, s.messages.received - s.messages.duplicated - s.messages.foreign);

/**
 * Ratios as [numerator, denominator]. Scaled to percent as numerator × 100 / denominator, which keeps 7 of 100
 * exactly 7 (7 / 100 × 100 is not). A ratio over nothing (denominator 0) has no data: its threshold fails.
 * `loss` and `delivery` are of what was sent; `.scheduled` of what the plan scheduled, so messages that were never
 * sent count against them too.
 */
const RATIOS = new Map<string, (s: Summary) => [number, number]>([
  ['loss', (s) => [s.messages.lost, s.messages.sent]],
  ['loss.scheduled', (s) => [Math.max(0, s.messages.scheduled - uniqueReceived(s)), s.messages.scheduled]],
  ['duplicates', (s) => [s.messages.duplicated, s.messages.received]],
  ['delivery', (s) => [uniqueReceived(s), s.messages.sent]],
  ['delivery.scheduled', (s) => [uniqueReceived(s), s.messages.scheduled]],
]);

function ratio(parts: (s: Summary) => [number, number], s: Summary, percent: boolean): number {
  const [num, den] = parts(s);
  const scale = percent ? 100 : 1;
  return den === 0 ? Number.NaN : (num * scale) / den;
}

const METRICS = new Map<string, MetricDef>();
for (const m of LATENCY_METRICS) {
  for (const stat of STATS) {
    METRICS.set(`${m}.${stat}`, {
      kind: stat === 'count' ? 'count' : 'latency',
      read: (s) => s.latency[m][stat],
    });
  }
}
for (const [name, parts] of RATIOS) METRICS.set(name, { kind: 'ratio', read: (s) => ratio(parts, s, false) });
METRICS.set('devices.connectFailures', { kind: 'count', read: (s) => s.devices.connectFailures });
METRICS.set('devices.connectedPeak', { kind: 'count', read: (s) => s.devices.connectedPeak });
METRICS.set('devices.reconnects', { kind: 'count', read: (s) => s.devices.reconnects });
for (const k of MESSAGE_KEYS) METRICS.set(`messages.${k}`, { kind: 'count', read: (s) => s.messages[k] });
METRICS.set('rates.sentPerSec', { kind: 'rate', read: (s) => s.rates.sentPerSec });
METRICS.set('rates.receivedPerSec', { kind: 'rate', read: (s) => s.rates.receivedPerSec });
METRICS.set('errors', { kind: 'count', read: (s) => s.errors.reduce((n, e) => n + e.count, 0) });
METRICS.set('generator.saturated', { kind: 'flag', read: (s) => (s.generator.saturated ? 1 : 0) });

/** Every metric name a threshold accepts. */
export const THRESHOLD_METRICS: readonly string[] = [...METRICS.keys()];

const METRICS_BRIEF =
  `metrics are ${LATENCY_METRICS.join('|')}.<${STATS.join('|')}>, loss, loss.scheduled, duplicates, delivery, delivery.scheduled, ` +
  `devices.<connectFailures|connectedPeak|reconnects>, messages.<${MESSAGE_KEYS.join('|')}>, ` +
  'rates.<sentPerSec|receivedPerSec>, errors, generator.saturated';

// metric, operator (any run of comparison characters, judged below), rest
const SHAPE = /^(.*?)\s*([<>=!]+)\s*(.*)$/s;
const NUMBER = /^(\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?\s*([A-Za-z%]*)$/i;

/** Parses one threshold expression; throws FleetloadError E_THRESHOLD naming what is wrong. */
export function parseThreshold(expr: string): Threshold {
  const text = expr.trim();
  const fail = (problem: string): never => {
    throw new FleetloadError('E_THRESHOLD', `threshold "${expr}": ${problem}; ${EXAMPLE}`);
  };
  if (text === '') fail('is empty');
  const shape = SHAPE.exec(text);
  if (!shape) {
    return fail(`has no comparison; use one of ${THRESHOLD_OPS.join(' ')}`);
  }
  const [, metricText = '', opText = '', rest = ''] = shape;
  if (metricText === '') fail(`has no metric before "${opText}"`);
  if (!(THRESHOLD_OPS as readonly string[]).includes(opText)) {
    const near: Record<string, string> = {
      '=': '==',
      '===': '==',
      '=<': '<=',
      '=>': '>=',
      '<>': '!=',
      '!': '!=',
    };
    const hint = near[opText] ? `; did you mean ${near[opText]}?` : '';
    fail(`"${opText}" is not a comparison${hint || `; use one of ${THRESHOLD_OPS.join(' ')}`}`);
  }
  const op = opText as ThresholdOp;
  const def = METRICS.get(metricText) ?? fail(unknownMetric(metricText));

  if (rest === '') fail(`has no number after "${op}"`);
  const num = NUMBER.exec(rest);
  if (!num) {
    return fail(
      /^[+-]/.test(rest)
        ? `"${rest}" must be a number without a sign`
        : `"${rest}" is not a number (with an optional unit)`,
    );
  }
  const target = Number(rest.slice(0, rest.length - (num[2] ?? '').length).trim());
  if (!Number.isFinite(target)) fail(`"${rest}" is not a finite number`);
  const unitText = num[2] ?? '';
  const unit = checkUnit(metricText, def.kind, unitText, fail);
  if (def.kind === 'ratio') {
    if (unit === '%' && target > 100) fail(`${metricText} cannot exceed 100%`);
    if (unit === undefined && target > 1) {
      fail(`${metricText} without % is a fraction from 0 to 1; did you mean ${metricText}${op}${target}%?`);
    }
  }
  return { expr: text, metric: metricText, op, target, unit };
}

function checkUnit(
  metric: string,
  kind: Kind,
  unitText: string,
  fail: (problem: string) => never,
): ThresholdUnit | undefined {
  if (unitText === '') return undefined;
  switch (kind) {
    case 'latency':
      if (unitText === 'ms' || unitText === 's') return unitText;
      return fail(`unit "${unitText}" does not fit ${metric}; use ms (the default) or s`);
    case 'ratio':
      if (unitText === '%') return '%';
      return fail(
        `unit "${unitText}" does not fit ${metric}, a ratio; write a fraction (0.001) or a percentage (0.1%)`,
      );
    case 'rate':
      return fail(`${metric} is in messages per second and takes no unit; drop "${unitText}"`);
    case 'flag':
      return fail(`${metric} is 0 or 1 and takes no unit; drop "${unitText}"`);
    default:
      return fail(`${metric} is a count and takes no unit; drop "${unitText}"`);
  }
}

function unknownMetric(name: string): string {
  const dot = name.indexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const family = LATENCY_METRICS.find((m) => m === head);
  const stats = STATS.join(' ');
  if (family && dot < 0) return `${name} needs a statistic, e.g. ${name}.p99 (one of ${stats})`;
  if (family) {
    // e2e.p98 is no typo of e2e.p90 or e2e.p99: list the statistics unless only the case is wrong.
    const stat = name.slice(dot + 1);
    const same = STATS.find((x) => x.toLowerCase() === stat.toLowerCase());
    if (same) return `unknown metric "${name}"; did you mean ${family}.${same}?`;
    return `unknown statistic "${stat}" for ${family}; use one of ${stats}`;
  }
  const near = closest(name, THRESHOLD_METRICS);
  if (near) return `unknown metric "${name}"; did you mean ${near}?`;
  return `unknown metric "${name}"; ${METRICS_BRIEF}`;
}

/** Parses every expression and reports all bad ones together (one FleetloadError, one problem each). */
export function parseThresholds(exprs: readonly string[]): Threshold[] {
  const out: Threshold[] = [];
  const problems: string[] = [];
  for (const e of exprs) {
    try {
      out.push(parseThreshold(e));
    } catch (err) {
      if (!(err instanceof FleetloadError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) throw new FleetloadError('E_THRESHOLD', problems);
  return out;
}

/** The observed value of a threshold's metric, in the threshold's own unit (s, %, or the metric's). */
export function observedValue(t: Threshold, s: Summary): number {
  const parts = RATIOS.get(t.metric);
  if (parts) return ratio(parts, s, t.unit === '%');
  const def = METRICS.get(t.metric);
  if (!def) throw new FleetloadError('E_INTERNAL', `threshold metric ${t.metric} is unknown`);
  const v = def.read(s);
  return t.unit === 's' ? v / 1000 : v;
}

function compare(v: number, op: ThresholdOp, target: number): boolean {
  switch (op) {
    case '<':
      return v < target;
    case '<=':
      return v <= target;
    case '>':
      return v > target;
    case '>=':
      return v >= target;
    case '==':
      return v === target;
    case '!=':
      return v !== target;
  }
}

/**
 * Judges every threshold. A metric without samples (a latency statistic of an empty histogram, a ratio over 0)
 * fails with `noData`, whatever the comparison: "observed 0 ms" for a latency nobody measured is no pass.
 */
export function evaluateThresholds(list: readonly Threshold[], summary: Summary): ThresholdResult[] {
  return list.map((t) => {
    if (!hasData(t, summary)) return { expr: t.expr, value: 0, passed: false, noData: true };
    const value = observedValue(t, summary);
    return { expr: t.expr, value, passed: compare(value, t.op, t.target) };
  });
}

function hasData(t: Threshold, s: Summary): boolean {
  const parts = RATIOS.get(t.metric);
  if (parts) return parts(s)[1] > 0;
  const dot = t.metric.indexOf('.');
  const family = t.metric.slice(0, dot) as keyof Summary['latency'];
  const stat = t.metric.slice(dot + 1);
  if (dot > 0 && family in s.latency && stat !== 'count') return s.latency[family].count > 0;
  return true;
}

/** Unit to print after a threshold's observed value: its own unit, else ms for latencies, else none. */
export function thresholdUnitLabel(t: Threshold): string {
  if (t.unit) return t.unit;
  return METRICS.get(t.metric)?.kind === 'latency' ? 'ms' : '';
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  const n = name.toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(n, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= Math.max(1, Math.min(3, Math.floor(n.length / 3))) ? best : undefined;
}
