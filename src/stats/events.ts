import { type Histogram, type LatencySummary, summarize } from './histogram.js';
import { SATURATED_CPU_PERCENT, SATURATED_INTERVALS, SATURATED_LAG_MS } from './monitor.js';
import type { Counters, LatencyName } from './stats.js';
import type { Summary } from './summary.js';
import { evaluateThresholds, type Threshold, thresholdUnitLabel } from './thresholds.js';

/**
 * What happened to a run, with its time (issue #13): load changes, stages, consumer disconnects, broker outages,
 * threshold crossings, generator saturation. Events are few (a handful per run), so they are plain objects made in
 * the run pipeline — never on the per-message path. The rules that find them in the interval figures live here
 * and run in fake time in tests (test/unit/events.test.ts). docs/guide/events.md describes them for users.
 */

export const EVENT_KINDS = [
  'load',
  'stage',
  'consumer-disconnected',
  'consumer-reconnected',
  'broker-lost',
  'broker-back',
  'threshold-failed',
  'threshold-passed',
  'saturation-start',
  'saturation-end',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface RunEvent {
  /** when it happened, ms since epoch */
  atMs: number;
  /** since the run's start (ms) */
  elapsedMs: number;
  kind: EventKind;
  /** one short line a person reads */
  message: string;
  /** load: which setting changed, from what to what, and who changed it */
  setting?: 'devices' | 'intervalMs';
  from?: number;
  to?: number;
  source?: 'dashboard' | 'plan';
  /** stage: its number (from 1) and how many there are */
  stage?: number;
  stages?: number;
  /** broker-lost: devices dropped; broker-back: devices connected again */
  count?: number;
  /** broker-back: how long the outage lasted (ms) */
  downMs?: number;
  /** threshold-*: the expression and the interval's value, in the threshold's unit */
  expr?: string;
  value?: number;
  /** saturation-start: why */
  reason?: string;
}

export type EventDetails = Omit<RunEvent, 'atMs' | 'elapsedMs' | 'kind' | 'message'>;

/** summary.json keeps at most this many events; the rest are counted in `eventsDropped`. */
export const MAX_EVENTS = 1000;

/**
 * The events of one run: every part of the run adds to it (the pipeline's rules, the dashboard's load changes, the
 * consumer's source), and each interval takes what came since the previous one.
 */
export class EventLog {
  private readonly kept: RunEvent[] = [];
  private pending: RunEvent[] = [];
  private startMs: number | undefined;
  /** events beyond MAX_EVENTS (counted, not kept) */
  dropped = 0;

  constructor(
    private readonly now: () => number,
    private readonly max = MAX_EVENTS,
  ) {}

  /** The run started at `startMs`: elapsed times count from here (events before it are at 0). */
  begin(startMs: number): void {
    this.startMs = startMs;
  }

  add(kind: EventKind, message: string, details: EventDetails = {}, atMs = this.now()): RunEvent {
    const ev: RunEvent = {
      atMs,
      elapsedMs: Math.max(0, Math.round(atMs - (this.startMs ?? atMs))),
      kind,
      message,
      ...details,
    };
    if (this.kept.length < this.max) {
      this.kept.push(ev);
      if (this.pending.length < this.max) this.pending.push(ev);
    } else this.dropped++;
    return ev;
  }

  /** The events since the previous call, in time order: the interval being cut carries them. */
  take(): RunEvent[] {
    const out = this.pending;
    this.pending = [];
    return out.sort((a, b) => a.atMs - b.atMs);
  }

  /** Every event kept, in time order. */
  all(): RunEvent[] {
    return [...this.kept].sort((a, b) => a.atMs - b.atMs);
  }
}

/** What the rules read of one interval (merged over every process: workers' segments included). */
export interface IntervalView {
  atMs: number;
  devicesConnected: number;
  /** this interval's counts */
  counters: Counters;
  /** the run's counts so far, this interval included */
  totals: Counters;
  histograms: Record<LatencyName, Histogram>;
  /** holes below each device's highest seq so far */
  gaps: number;
  cpuPercent: number;
  eventLoopLagP99Ms: number;
  /**
   * `--workers`: whether a worker is saturated now by the same rule on its own intervals (src/run/worker-health.ts),
   * and why; the run is saturated while this process or any worker is
   */
  workers?: { saturatedNow: boolean; reason?: string | undefined };
}

/** A broker outage: at least this share of the connected devices dropped within BROKER_WINDOW intervals. */
export const BROKER_LOST_SHARE = 0.5;
/** intervals whose drops add up (an outage that straddles a cut is still one outage) */
export const BROKER_WINDOW = 2;

/** Metrics a threshold can be judged on live, interval by interval (see liveSummary). */
const LIVE_LATENCY = /^(e2e|publishAck|connect|scheduleLag)\.(min|mean|p50|p90|p95|p99|p999|max)$/;
const LIVE_OTHER = new Set([
  'loss',
  'duplicates',
  'messages.failed',
  'messages.duplicated',
  'messages.foreign',
]);

/** Thresholds that mean something on one interval's figures (the others are judged on the summary only). */
export function isLiveThreshold(t: Threshold): boolean {
  return LIVE_LATENCY.test(t.metric) || LIVE_OTHER.has(t.metric);
}

/**
 * The rules that turn interval figures into events. One instance per run; `observe` is called once per interval,
 * in order.
 *
 * - broker-lost: the devices that dropped (connections lost that we did not close: not parked, not renewing) in
 *   the last BROKER_WINDOW intervals are at least BROKER_LOST_SHARE of the most devices connected at the cuts before
 *   them (and at least 1). broker-back: the first interval after that in which devices connected again.
 * - threshold-failed / -passed: a live threshold (isLiveThreshold) judged on the interval's figures — latencies
 *   from the interval's histogram, `loss` as holes so far over sent so far — changes from passing to failing or
 *   back. An interval without data for it changes nothing. Every threshold starts as passing.
 * - saturation-start / -end: SaturationRule — the generator did not keep up for SATURATED_INTERVALS intervals in
 *   a row; it ends at the first interval where it keeps up. The summary's `generator.saturated` is this rule's
 *   verdict (`saturated`), so the events and the summary never disagree (with `--workers`, also each worker's
 *   verdict on its own intervals: src/run/worker-health.ts).
 */
export class EventRules {
  private readonly live: Threshold[];
  private readonly failing = new Set<string>();
  private readonly connectedBefore: number[] = [];
  private readonly dropsBefore: number[] = [];
  private down: { atMs: number } | undefined;
  private readonly saturationRule = new SaturationRule();
  /** saturated as of the last interval (this process or a worker) */
  private saturatedNow = false;
  /** a stretch of saturation was a worker's alone */
  private workerSaturated = false;

  constructor(
    private readonly log: EventLog,
    thresholds: readonly Threshold[] = [],
  ) {
    this.live = thresholds.filter(isLiveThreshold);
  }

  observe(v: IntervalView): void {
    this.broker(v);
    this.thresholds(v);
    this.saturation(v);
  }

  /**
   * Whether the generator was saturated at some point of the run (summary.json `generator.saturated`): by this
   * process's rule, or a worker's as reported live.
   */
  get saturated(): boolean {
    return this.saturationRule.ever || this.workerSaturated;
  }

  private broker(v: IntervalView): void {
    const dropped = v.counters.dropped;
    if (this.down) {
      if (v.counters.connects > 0) {
        const downMs = Math.round(v.atMs - this.down.atMs);
        this.log.add(
          'broker-back',
          `broker back: ${v.devicesConnected} devices connected again after ${seconds(downMs)}`,
          { count: v.devicesConnected, downMs },
          v.atMs,
        );
        this.down = undefined;
        this.dropsBefore.length = 0;
      }
    } else {
      const recent = dropped + this.dropsBefore.reduce((a, b) => a + b, 0);
      const base = Math.max(recent, ...this.connectedBefore);
      if (recent >= 1 && recent >= BROKER_LOST_SHARE * base) {
        this.log.add(
          'broker-lost',
          `broker lost: ${recent} of ${base} connected devices dropped`,
          { count: recent },
          v.atMs,
        );
        this.down = { atMs: v.atMs };
        this.dropsBefore.length = 0;
      } else {
        this.dropsBefore.push(dropped);
        if (this.dropsBefore.length > BROKER_WINDOW - 1) this.dropsBefore.shift();
      }
    }
    this.connectedBefore.push(v.devicesConnected);
    if (this.connectedBefore.length > BROKER_WINDOW) this.connectedBefore.shift();
  }

  private thresholds(v: IntervalView): void {
    if (this.live.length === 0) return;
    const results = evaluateThresholds(this.live, liveSummary(v));
    results.forEach((r, k) => {
      if (r.noData) return;
      const was = this.failing.has(r.expr);
      if (r.passed === !was) return;
      if (r.passed) this.failing.delete(r.expr);
      else this.failing.add(r.expr);
      const value = Math.round(r.value * 1000) / 1000;
      const unit = thresholdUnitLabel(this.live[k] as Threshold);
      const shown = `${Number(value.toPrecision(3))}${unit === '' || unit === '%' ? unit : ` ${unit}`}`;
      this.log.add(
        r.passed ? 'threshold-passed' : 'threshold-failed',
        `${r.expr} ${r.passed ? 'passes again' : 'fails'}: ${shown} this interval`,
        { expr: r.expr, value },
        v.atMs,
      );
    });
  }

  /**
   * Saturated while this process's rule or a worker's says so (a worker judges its own intervals: one segment's
   * schedule lag can be diluted in the merged figures); one start and one end per stretch, whoever caused it.
   */
  private saturation(v: IntervalView): void {
    const lagP99 = v.histograms.scheduleLag.totalCount > 0 ? summarize(v.histograms.scheduleLag).p99 : 0;
    this.saturationRule.observe({
      cpuPercent: v.cpuPercent,
      eventLoopLagP99Ms: v.eventLoopLagP99Ms,
      scheduleLagP99Ms: lagP99,
    });
    const own = this.saturationRule.now;
    const worker = v.workers?.saturatedNow === true;
    const now = own || worker;
    if (now && !this.saturatedNow) {
      const reason = own ? this.saturationRule.reason() : `a worker: ${v.workers?.reason ?? 'its own rule'}`;
      this.log.add('saturation-start', `generator saturated: ${reason}`, { reason }, v.atMs);
      this.workerSaturated ||= !own;
    } else if (!now && this.saturatedNow)
      this.log.add('saturation-end', 'generator keeps up again', {}, v.atMs);
    this.saturatedNow = now;
  }
}

/** What the saturation rule reads of one interval: the busiest process's CPU and event-loop lag, all of the schedule lag. */
export interface GeneratorView {
  cpuPercent: number;
  eventLoopLagP99Ms: number;
  /** the interval's schedule-lag p99 (0 without samples) */
  scheduleLagP99Ms: number;
}

/**
 * The one saturation rule, for the events, the summary and each worker alike. An interval is hot when its CPU was ≥
 * SATURATED_CPU_PERCENT, or its event-loop lag p99 or schedule-lag p99 above SATURATED_LAG_MS. The generator is
 * saturated once SATURATED_INTERVALS intervals in a row were hot, and until the first interval that is not: one
 * hiccup (a GC pause, a slow disk flush) is not saturation, however large its lag — on a short run a single
 * second of lag used to carry the whole run's p99 over the line.
 */
export class SaturationRule {
  private streak = 0;
  private on = false;
  /** the conditions seen during the current streak, with their worst figure */
  private worst = { cpu: 0, loopLag: 0, scheduleLag: 0 };
  private wasOn = false;

  /** saturated at some point of the run */
  get ever(): boolean {
    return this.wasOn;
  }

  /** saturated as of the last interval */
  get now(): boolean {
    return this.on;
  }

  /** One interval; says when saturation starts or ends with it. */
  observe(v: GeneratorView): 'start' | 'end' | undefined {
    const cpu = v.cpuPercent >= SATURATED_CPU_PERCENT;
    const loopLag = v.eventLoopLagP99Ms > SATURATED_LAG_MS;
    const scheduleLag = v.scheduleLagP99Ms > SATURATED_LAG_MS;
    if (!(cpu || loopLag || scheduleLag)) {
      this.streak = 0;
      this.worst = { cpu: 0, loopLag: 0, scheduleLag: 0 };
      if (!this.on) return undefined;
      this.on = false;
      return 'end';
    }
    this.streak++;
    const w = this.worst;
    if (cpu) w.cpu = Math.max(w.cpu, v.cpuPercent);
    if (loopLag) w.loopLag = Math.max(w.loopLag, v.eventLoopLagP99Ms);
    if (scheduleLag) w.scheduleLag = Math.max(w.scheduleLag, v.scheduleLagP99Ms);
    if (this.on || this.streak < SATURATED_INTERVALS) return undefined;
    this.on = true;
    this.wasOn = true;
    return 'start';
  }

  /** Why, over the streak that started it: `schedule lag p99 up to 253 ms, CPU up to 97% (3 s in a row)`. */
  reason(): string {
    const w = this.worst;
    const why: string[] = [];
    if (w.cpu > 0) why.push(`CPU up to ${Math.round(w.cpu)}%`);
    if (w.loopLag > 0) why.push(`event-loop lag p99 up to ${Math.round(w.loopLag)} ms`);
    if (w.scheduleLag > 0) why.push(`schedule lag p99 up to ${Math.round(w.scheduleLag)} ms`);
    return `${why.join(', ')} (${this.streak} s in a row)`;
  }
}

const ZERO_LATENCY: LatencySummary = {
  count: 0,
  min: 0,
  mean: 0,
  p50: 0,
  p90: 0,
  p95: 0,
  p99: 0,
  p999: 0,
  max: 0,
};

/**
 * One interval seen as a summary, for judging live thresholds with the summary's own code: latencies of this
 * interval, counts of the run so far, `lost` = the holes so far. Only the fields live thresholds read are real.
 */
export function liveSummary(v: IntervalView): Summary {
  const t = v.totals;
  const lat = (h: Histogram): LatencySummary => (h.totalCount > 0 ? summarize(h) : ZERO_LATENCY);
  return {
    runId: '',
    startedAt: '',
    endedAt: '',
    fleetloadVersion: '',
    scenario: {
      host: '',
      devices: 0,
      spawnRate: 0,
      runTimeMs: 0,
      intervalMs: 0,
      qos: 0,
      mqttVersion: '3.1.1',
    },
    devices: { target: 0, connectedPeak: 0, connectFailures: t.connectFailures, reconnects: t.reconnects },
    messages: {
      scheduled: t.scheduled,
      sent: t.sent,
      acked: t.acked,
      failed: t.failed,
      unconfirmed: 0,
      received: t.received,
      lost: v.gaps,
      duplicated: t.duplicated,
      reordered: t.reordered,
      foreign: t.foreign,
    },
    latency: {
      e2e: lat(v.histograms.e2e),
      publishAck: lat(v.histograms.publishAck),
      connect: lat(v.histograms.connect),
      scheduleLag: lat(v.histograms.scheduleLag),
    },
    rates: { sentPerSec: 0, receivedPerSec: 0 },
    generator: { cpuPercentPeak: 0, eventLoopLagP99: 0, saturated: false },
    errors: [],
    thresholds: [],
    passed: true,
  };
}

/** A stage of a staged run as the events need it (src/scenario/schema.ts Stage). */
export interface StageSpan {
  durationMs: number;
  devices: number;
}

/**
 * The stages that began in (afterMs, uptoMs] of elapsed time, as events with their exact start time: "stage 2/3:
 * 100 → 40 devices over 0:10". `startMs` is the run's start (epoch ms).
 */
export function stageEvents(
  log: EventLog,
  stages: readonly StageSpan[],
  startMs: number,
  afterMs: number,
  uptoMs: number,
): void {
  let at = 0;
  let from = 0;
  stages.forEach((st, k) => {
    const begins = at;
    at += st.durationMs;
    const prev = from;
    from = st.devices;
    if (!(begins > afterMs && begins <= uptoMs)) return;
    const move = prev === st.devices ? `${st.devices} devices` : `${prev} → ${st.devices} devices`;
    log.add(
      'stage',
      `stage ${k + 1}/${stages.length}: ${move} over ${clockText(st.durationMs)}`,
      { stage: k + 1, stages: stages.length, from: prev, to: st.devices, source: 'plan' },
      startMs + begins,
    );
  });
}

/** `m:ss` (or `h:mm:ss`) of a duration in ms. */
export function clockText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The load as it actually ran, for headers: "100 devices", or "100 → 40 devices at 0:12 (dashboard), 40 → 100
 * devices at 0:20 (dashboard)"; interval changes likewise ("every 1000 → 500 ms at 0:30 (dashboard)").
 */
export function loadAsRun(devices: number, events: readonly RunEvent[] | undefined): string {
  const changes = (events ?? []).filter((e) => e.kind === 'load');
  if (changes.length === 0) return `${devices} devices`;
  return changes
    .map((e) => {
      const what =
        e.setting === 'intervalMs' ? `every ${e.from} → ${e.to} ms` : `${e.from} → ${e.to} devices`;
      return `${what} at ${clockText(e.elapsedMs)} (${e.source ?? 'dashboard'})`;
    })
    .join(', ');
}
