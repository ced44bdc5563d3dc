import { formatDuration } from '../scenario/duration.js';
import type { Histogram } from '../stats/histogram.js';
import type { Summary } from '../stats/summary.js';
import type { HistogramName, ResultsData } from './load.js';

/**
 * `fleetload compare A B`: the key figures of two runs side by side, with a verdict per figure.
 *
 * Latency percentiles come from the stored HDR histograms (summary.json's rounded percentiles only when a
 * histogram is missing). "Within noise" means:
 *
 * - latency percentile q of n samples: the difference is at most max(5 % of A, 2 × the HDR resolution at A and at
 *   B), or the 95 % confidence intervals of the two percentiles overlap. The interval of a percentile is read
 *   from the histogram itself at the ranks n·q ± 1.96·√(n·q·(1−q)) (order-statistic interval, distribution-free),
 *   so a p99 of 300 samples is rightly uncertain and a p99 of a million is not. `max` is one sample: the 5 % band
 *   only (read a changed max with care).
 * - counts (lost, duplicated, connect failures, errors): an exact conditional binomial test of two Poisson rates
 *   (given kA + kB events, is kB's share different from B's share of the exposure?), exposure = messages sent
 *   (loss, errors: scheduled), received (duplicates), target devices (connect failures); two-sided, α = 0.05.
 *   A difference that test cannot tell from chance is within noise.
 * - delivered rate (distinct messages delivered per second): within 2 %, or not significant by the same Poisson
 *   test with the publishing time as exposure.
 */

export type Verdict = 'better' | 'worse' | 'within noise' | 'n/a';

export interface FigureComparison {
  id: string;
  label: string;
  unit: string;
  /** 'lower' when a smaller value is better */
  better: 'lower' | 'higher';
  a: number | null;
  b: number | null;
  /** b − a */
  diff: number | null;
  /** (b − a) / a × 100; Infinity when a is 0 and b is not; null when a figure is missing */
  diffPct: number | null;
  verdict: Verdict;
  /** where the figures come from: 'histogram', 'summary' or 'counts' */
  source: 'histogram' | 'summary' | 'counts';
  /** the noise test in words, with its numbers */
  noise: string;
}

export interface RunRef {
  dir: string;
  runId: string;
  startedAt: string;
  scenario: Summary['scenario'];
  saturated: boolean;
}

export interface Comparison {
  a: RunRef;
  b: RunRef;
  figures: FigureComparison[];
  /** scenario settings that differ, and other things a reader should know */
  notes: string[];
}

export const LATENCY_BAND = 0.05;
export const RATE_BAND = 0.02;
export const ALPHA = 0.05;
const Z95 = 1.959964;
/** What "within noise" means, in one line (under the table of `fleetload compare` and of the UI). */
export const COMPARE_RULE = `within noise: latency Δ ≤ max(${LATENCY_BAND * 100}%, 2× HDR resolution) or overlapping 95% percentile intervals; counts: Poisson rate test, p ≥ ${ALPHA}`;

// ---------------------------------------------------------------------------------------------- statistics

/** Width (µs) of the HDR bucket holding `valueUs`, for histograms with 3 significant digits and lowest 1 µs. */
export function hdrResolutionUs(valueUs: number, significantDigits = 3): number {
  const subBuckets = 2 ** Math.ceil(Math.log2(2 * 10 ** significantDigits)); // 2048 for 3 digits
  if (valueUs < subBuckets) return 1;
  const magnitude = Math.floor(Math.log2(valueUs));
  return 2 ** (magnitude - Math.log2(subBuckets / 2));
}

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const xx = x - 1;
  let a = c[0] as number;
  const t = xx + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (xx + i);
  return 0.5 * Math.log(2 * Math.PI) + (xx + 0.5) * Math.log(t) - t + Math.log(a);
}

function normalTwoSided(z: number): number {
  // complementary error function (Abramowitz–Stegun 7.1.26), |error| < 1.5e-7
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return Math.min(1, poly * Math.exp(-x * x));
}

/**
 * Two-sided p-value that counts kA (exposure eA) and kB (exposure eB) come from the same Poisson rate: exact
 * conditional binomial test (kB | kA + kB ~ Bin(kA + kB, eB / (eA + eB))); normal approximation above 20,000 events.
 */
export function poissonRatesPValue(kA: number, eA: number, kB: number, eB: number): number {
  const k = kA + kB;
  if (k === 0 || eA <= 0 || eB <= 0) return 1;
  const p = eB / (eA + eB);
  if (k > 20_000) {
    const sd = Math.sqrt(k * p * (1 - p));
    return sd === 0 ? 1 : normalTwoSided((kB - k * p) / sd);
  }
  const logC = logGamma(k + 1);
  const logP = Math.log(p);
  const logQ = Math.log(1 - p);
  const logPmf = (i: number): number =>
    logC - logGamma(i + 1) - logGamma(k - i + 1) + i * logP + (k - i) * logQ;
  const observed = logPmf(kB);
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    const l = logPmf(i);
    if (l <= observed + 1e-7) sum += Math.exp(l);
  }
  return Math.min(1, sum);
}

// ---------------------------------------------------------------------------------------------- figures

interface LatencyFigure {
  id: string;
  label: string;
  hist: HistogramName;
  /** percentile, or 'max' */
  q: number | 'max';
}

const LATENCY_FIGURES: LatencyFigure[] = [
  { id: 'e2e.p50', label: 'e2e p50', hist: 'e2e', q: 50 },
  { id: 'e2e.p95', label: 'e2e p95', hist: 'e2e', q: 95 },
  { id: 'e2e.p99', label: 'e2e p99', hist: 'e2e', q: 99 },
  { id: 'e2e.max', label: 'e2e max', hist: 'e2e', q: 'max' },
  { id: 'publishAck.p50', label: 'publish→ack p50', hist: 'publishAck', q: 50 },
  { id: 'publishAck.p99', label: 'publish→ack p99', hist: 'publishAck', q: 99 },
  { id: 'connect.p95', label: 'connect p95', hist: 'connect', q: 95 },
  { id: 'scheduleLag.p99', label: 'schedule lag p99', hist: 'scheduleLag', q: 99 },
];

interface LatencyValue {
  value: number;
  lo: number;
  hi: number;
  source: 'histogram' | 'summary';
  n: number;
}

function latencyValue(d: ResultsData, f: LatencyFigure): LatencyValue | undefined {
  const h: Histogram | undefined = d.histograms[f.hist];
  if (h && h.totalCount > 0) {
    const n = h.totalCount;
    if (f.q === 'max') {
      const v = h.maxValue / 1000;
      return { value: v, lo: v, hi: v, source: 'histogram', n };
    }
    const q = f.q / 100;
    const half = Z95 * Math.sqrt((q * (1 - q)) / n);
    const at = (p: number) => h.getValueAtPercentile(Math.min(100, Math.max(0, p * 100))) / 1000;
    return { value: at(q), lo: at(q - half), hi: at(q + half), source: 'histogram', n };
  }
  const l = d.summary?.latency?.[f.hist];
  if (!l || !(l.count > 0)) return undefined;
  const key = f.q === 'max' ? 'max' : (`p${f.q}` as 'p50' | 'p95' | 'p99');
  const v = l[key];
  if (typeof v !== 'number') return undefined;
  return { value: v, lo: v, hi: v, source: 'summary', n: l.count };
}

const pctDiff = (a: number, b: number): number => (a === 0 ? (b === 0 ? 0 : Infinity) : ((b - a) / a) * 100);
const direction = (diff: number, better: 'lower' | 'higher'): Verdict =>
  (better === 'lower' ? diff < 0 : diff > 0) ? 'better' : 'worse';
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

function compareLatency(a: ResultsData, b: ResultsData, f: LatencyFigure): FigureComparison {
  const va = latencyValue(a, f);
  const vb = latencyValue(b, f);
  const base = { id: f.id, label: f.label, unit: 'ms', better: 'lower' as const };
  if (!va || !vb) {
    return {
      ...base,
      a: va?.value ?? null,
      b: vb?.value ?? null,
      diff: null,
      diffPct: null,
      verdict: 'n/a',
      source: va?.source ?? vb?.source ?? 'histogram',
      noise: `no ${f.hist} samples in ${!va && !vb ? 'either run' : !va ? 'run A' : 'run B'}`,
    };
  }
  const diff = vb.value - va.value;
  const resolution = Math.max(hdrResolutionUs(va.value * 1000), hdrResolutionUs(vb.value * 1000)) / 1000;
  const band = Math.max(LATENCY_BAND * va.value, 2 * resolution);
  const overlap = va.lo <= vb.hi && vb.lo <= va.hi;
  const withinBand = Math.abs(diff) <= band;
  const noiseWords =
    `band ±${r3(band)} ms (max of ${LATENCY_BAND * 100}% and 2× HDR resolution)` +
    (f.q === 'max'
      ? '; max is a single sample: band only'
      : `; 95% CI A [${r3(va.lo)}, ${r3(va.hi)}] (n=${va.n}), B [${r3(vb.lo)}, ${r3(vb.hi)}] (n=${vb.n})` +
        (overlap ? ', overlapping' : ', disjoint'));
  const within = withinBand || (f.q !== 'max' && overlap);
  return {
    ...base,
    a: va.value,
    b: vb.value,
    diff,
    diffPct: pctDiff(va.value, vb.value),
    verdict: within ? 'within noise' : direction(diff, 'lower'),
    source: va.source === 'histogram' && vb.source === 'histogram' ? 'histogram' : 'summary',
    noise: noiseWords,
  };
}

interface CountFigure {
  id: string;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
  /** events and exposure; `value` is what is shown */
  read: (s: Summary) => { k: number; exposure: number; value: number };
  exposureName: string;
  /** a relative band below which a difference is within noise whatever the test says */
  band?: number;
}

const uniqueReceived = (s: Summary): number =>
  Math.max(0, s.messages.received - s.messages.duplicated - s.messages.foreign);
const errorCount = (s: Summary): number => (s.errors ?? []).reduce((t, e) => t + (e.count ?? 0), 0);

const COUNT_FIGURES: CountFigure[] = [
  {
    id: 'loss',
    label: 'loss',
    unit: '%',
    better: 'lower',
    exposureName: 'sent',
    read: (s) => ({
      k: s.messages.lost,
      exposure: s.messages.sent,
      value: s.messages.sent > 0 ? (s.messages.lost * 100) / s.messages.sent : 0,
    }),
  },
  {
    id: 'duplicated',
    label: 'duplicates',
    unit: '',
    better: 'lower',
    exposureName: 'received',
    read: (s) => ({ k: s.messages.duplicated, exposure: s.messages.received, value: s.messages.duplicated }),
  },
  {
    id: 'deliveredRate',
    label: 'delivered rate',
    unit: 'msg/s',
    better: 'higher',
    exposureName: 'publishing seconds',
    band: RATE_BAND,
    read: (s) => {
      const k = uniqueReceived(s);
      const perSec = s.rates?.receivedPerSec ?? 0;
      const seconds = perSec > 0 && s.messages.received > 0 ? s.messages.received / perSec : 0;
      return { k, exposure: seconds, value: seconds > 0 ? k / seconds : 0 };
    },
  },
  {
    id: 'connectFailures',
    label: 'connect failures',
    unit: '',
    better: 'lower',
    exposureName: 'devices',
    read: (s) => ({
      k: s.devices.connectFailures,
      exposure: Math.max(1, s.devices.target),
      value: s.devices.connectFailures,
    }),
  },
  {
    id: 'errors',
    label: 'errors',
    unit: '',
    better: 'lower',
    exposureName: 'scheduled',
    read: (s) => {
      const k = errorCount(s);
      return { k, exposure: Math.max(1, s.messages.scheduled), value: k };
    },
  },
];

function compareCount(sa: Summary, sb: Summary, f: CountFigure): FigureComparison {
  const a = f.read(sa);
  const b = f.read(sb);
  const base = { id: f.id, label: f.label, unit: f.unit, better: f.better, source: 'counts' as const };
  const diff = b.value - a.value;
  if (a.exposure <= 0 || b.exposure <= 0) {
    return {
      ...base,
      a: a.value,
      b: b.value,
      diff,
      diffPct: pctDiff(a.value, b.value),
      verdict: a.value === b.value ? 'within noise' : 'n/a',
      noise: `no ${f.exposureName} in ${a.exposure <= 0 ? 'run A' : 'run B'}: nothing to test`,
    };
  }
  // compare per unit of exposure, so runs of different sizes compare fairly
  const rateA = a.k / a.exposure;
  const rateB = b.k / b.exposure;
  const relPct = pctDiff(rateA, rateB);
  const pValue = poissonRatesPValue(a.k, a.exposure, b.k, b.exposure);
  const inBand = f.band !== undefined && Math.abs(relPct) <= f.band * 100;
  const significant = pValue < ALPHA && !inBand;
  const noise =
    `Poisson rate test: ${a.k} in ${Math.round(a.exposure)} vs ${b.k} in ${Math.round(b.exposure)} ${f.exposureName}, p=${pValue < 0.001 ? pValue.toExponential(1) : pValue.toFixed(3)}` +
    (f.band !== undefined ? `; band ±${f.band * 100}%` : '');
  return {
    ...base,
    a: a.value,
    b: b.value,
    diff,
    diffPct: f.unit === '' ? pctDiff(a.value, b.value) : relPct,
    verdict: rateA === rateB || !significant ? 'within noise' : direction(rateB - rateA, f.better),
    noise,
  };
}

function ref(d: ResultsData, s: Summary): RunRef {
  return {
    dir: d.dir,
    runId: s.runId,
    startedAt: s.startedAt,
    scenario: s.scenario,
    saturated: s.generator?.saturated === true,
  };
}

/** Compares run B against run A (A is the baseline). Both need a summary.json (the CLI checks). */
export function compareRuns(a: ResultsData, b: ResultsData): Comparison {
  const sa = a.summary;
  const sb = b.summary;
  if (!sa || !sb) throw new Error('compareRuns needs both summaries');
  const figures: FigureComparison[] = [];
  for (const f of LATENCY_FIGURES) figures.push(compareLatency(a, b, f));
  for (const f of COUNT_FIGURES) figures.push(compareCount(sa, sb, f));
  const notes: string[] = [];
  // durations as the flags take them (`run time 10s → 6s`), not milliseconds
  const keys: Array<[keyof Summary['scenario'], string, 'duration'?]> = [
    ['devices', 'devices'],
    ['spawnRate', 'spawn rate'],
    ['runTimeMs', 'run time', 'duration'],
    ['intervalMs', 'interval', 'duration'],
    ['qos', 'QoS'],
    ['mqttVersion', 'MQTT version'],
    ['topic', 'topic'],
    ['encoding', 'encoding'],
    ['payloadSizeBytes', 'payload bytes'],
    ['payloadTemplate', 'payload template'],
    ['stages', 'stages'],
    ['jitterMs', 'jitter', 'duration'],
    ['messagesPerDevice', 'messages per device'],
    ['consumer', 'consumer'],
    ['consumerQos', 'consumer QoS'],
  ];
  const shown = (v: unknown, kind?: 'duration'): string =>
    v === undefined
      ? '(not recorded)'
      : Array.isArray(v)
        ? v.join(' ')
        : kind === 'duration' && typeof v === 'number' && Number.isInteger(v) && v >= 0
          ? formatDuration(v)
          : String(v);
  const diffs = keys
    // a key neither summary has (older runs, consume) is no difference
    .filter(([k]) => shown(sa.scenario?.[k]) !== shown(sb.scenario?.[k]))
    .map(([k, name, kind]) => `${name} ${shown(sa.scenario?.[k], kind)} → ${shown(sb.scenario?.[k], kind)}`);
  if (diffs.length > 0) notes.push(`the runs had different scenarios: ${diffs.join(', ')}`);
  if (sa.generator?.saturated)
    notes.push('run A: the generator was saturated; its figures describe fleetload');
  if (sb.generator?.saturated)
    notes.push('run B: the generator was saturated; its figures describe fleetload');
  if (sa.interrupted) notes.push('run A was interrupted (stopped early)');
  if (sb.interrupted) notes.push('run B was interrupted (stopped early)');
  for (const f of figures) {
    if (f.source === 'summary') notes.push(`${f.label}: no histogram in one run, compared from summary.json`);
  }
  return { a: ref(a, sa), b: ref(b, sb), figures, notes };
}

/** Figures that got worse (and not within noise) by more than `pct` percent. */
export function regressions(c: Comparison, pct: number): FigureComparison[] {
  return c.figures.filter((f) => f.verdict === 'worse' && f.diffPct !== null && Math.abs(f.diffPct) > pct);
}

// ---------------------------------------------------------------------------------------------- output

/** C0 controls (tab and line breaks too), DEL, C1 controls, and the bidirectional marks and overrides. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string read from a results folder, made safe for a terminal: every control character (C0 with ESC, tab and
 * line breaks; DEL; C1 with CSI) and every bidi mark or override becomes a visible escape (`\x1b`, `\x9b`,
 * `\u202e`). A crafted summary.json can then neither move the cursor, clear or retitle the terminal, recolor
 * the table, nor reorder what is shown.
 */
export function printable(v: unknown): string {
  return String(v).replace(UNPRINTABLE, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON text for a terminal: JSON.stringify escapes C0 controls but leaves DEL, C1 controls and bidi marks raw;
 * they can only sit inside strings there, so `\uXXXX` escapes keep the JSON equal.
 */
export function safeJson(v: unknown, space?: number): string {
  // not C0: inside strings JSON.stringify has escaped them; outside, the line breaks are its own indentation
  return JSON.stringify(v, null, space).replace(
    /[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function fmt(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (unit === '' && Number.isInteger(v)) return intFmt.format(v);
  if (unit === '%') return a === 0 ? '0' : a < 0.01 ? v.toPrecision(2) : v.toFixed(a < 10 ? 3 : 2);
  if (a >= 1000) return intFmt.format(v);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toFixed(3);
}

function signed(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  return (v > 0 ? '+' : '−') + fmt(Math.abs(v), unit);
}

function signedPct(v: number | null): string {
  if (v === null) return '–';
  if (v === Infinity) return 'new';
  if (v === 0) return '0%';
  const a = Math.abs(v);
  return `${v > 0 ? '+' : '−'}${a >= 100 ? a.toFixed(0) : a.toFixed(1)}%`;
}

export interface FormatOptions {
  color?: boolean;
  failOnRegressionPct?: number;
}

/**
 * The comparison as an aligned plain-text table (ANSI colors only when asked). Every string that comes from the
 * results folders (run ids, times, scenario values, notes, paths) goes through `printable`.
 */
export function formatComparison(c: Comparison, o: FormatOptions = {}): string {
  const paint = (code: string, s: string) => (o.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines: string[] = [];
  const idWidth = Math.max(printable(c.a.runId).length, printable(c.b.runId).length);
  const run = (tag: string, r: RunRef) =>
    `  ${tag}  ${printable(r.runId).padEnd(idWidth)}  ${printable(r.startedAt)}  ${printable(r.scenario?.devices ?? '?')} devices · every ${printable(r.scenario?.intervalMs ?? '?')} ms · QoS ${printable(r.scenario?.qos ?? '?')}  (${printable(r.dir)})`;
  lines.push(paint('1', 'fleetload compare: B against A'));
  lines.push(run('A', c.a));
  lines.push(run('B', c.b));
  lines.push('');
  const head = ['figure', 'A', 'B', 'Δ', 'Δ%', 'verdict'];
  const rows = c.figures.map((f) => [
    f.unit ? `${f.label} (${f.unit})` : f.label,
    fmt(f.a, f.unit),
    fmt(f.b, f.unit),
    signed(f.diff, f.unit),
    signedPct(f.diffPct),
    f.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], verdict?: Verdict) =>
    cells
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        if (i === 0) return cell.padEnd(w);
        if (i === cells.length - 1) {
          const colored =
            verdict === 'worse'
              ? paint('31', cell)
              : verdict === 'better'
                ? paint('32', cell)
                : verdict === 'n/a'
                  ? paint('2', cell)
                  : cell;
          return colored;
        }
        return cell.padStart(w);
      })
      .join('   ')
      .trimEnd();
  lines.push(paint('2', line(head)));
  c.figures.forEach((f, i) => {
    lines.push(line(rows[i] ?? [], f.verdict));
  });
  lines.push('');
  lines.push(paint('2', COMPARE_RULE));
  for (const n of c.notes) lines.push(`note: ${printable(n)}`);
  if (o.failOnRegressionPct !== undefined) {
    const bad = regressions(c, o.failOnRegressionPct);
    lines.push(
      bad.length === 0
        ? paint('32', `no figure got worse by more than ${o.failOnRegressionPct}%`)
        : paint(
            '31',
            `REGRESSION: ${bad.map((f) => `${f.label} ${signedPct(f.diffPct)}`).join(', ')} (worse by more than ${o.failOnRegressionPct}%)`,
          ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The comparison as JSON-ready data (Infinity as null, with `new: true`). */
export function comparisonJson(c: Comparison, failOnRegressionPct?: number): unknown {
  const bad = failOnRegressionPct === undefined ? [] : regressions(c, failOnRegressionPct);
  return {
    a: c.a,
    b: c.b,
    figures: c.figures.map((f) => ({
      ...f,
      diffPct: f.diffPct === Infinity ? null : f.diffPct,
      ...(f.diffPct === Infinity ? { new: true } : {}),
    })),
    notes: c.notes,
    failOnRegressionPct: failOnRegressionPct ?? null,
    regressions: bad.map((f) => f.id),
    passed: bad.length === 0,
  };
}
