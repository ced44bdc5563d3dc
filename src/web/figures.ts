import { redactText } from '../redact.js';
import type { IntervalFigures } from '../run/output.js';
import { measurementErrors } from '../stats/aggregate.js';
import type { RunEvent } from '../stats/events.js';
import { type Histogram, percentileMs } from '../stats/histogram.js';
import type { ErrorEntry } from '../stats/stats.js';

/**
 * The dashboard's view of one interval: plain numbers, ready for JSON. Counters become rates per second (over
 * the interval's own duration), percentiles come from the interval's merged histograms (recorded in
 * microseconds, shown in milliseconds), and null means "no sample in this interval" — a gap in a chart, not 0.
 */
export interface DashboardPoint {
  /** 1, 2, 3 … in the order the intervals were cut; also the SSE event id */
  seq: number;
  /** end of the interval, ms since epoch */
  t: number;
  elapsedMs: number;
  phase: IntervalFigures['phase'];
  devicesConnected: number;
  /** the fleet size asked for when the interval was cut (changes with POST /api/fleet) */
  targetDevices: number;
  /** each device's publish interval when the interval was cut */
  intervalMs: number;
  sentPerSec: number;
  ackedPerSec: number;
  failedPerSec: number;
  receivedPerSec: number;
  /** run totals so far */
  sent: number;
  acked: number;
  failed: number;
  received: number;
  connectFailures: number;
  /** holes below each device's highest seq seen so far */
  gaps: number;
  e2eP50: number | null;
  e2eP95: number | null;
  e2eP99: number | null;
  ackP50: number | null;
  ackP99: number | null;
  cpuPercent: number;
  eventLoopLagP99Ms: number;
  /** bytes per second: MQTT packets the generator wrote, payloads the consumer received */
  bytesSentPerSec: number;
  bytesReceivedPerSec: number;
  /** what happened in this interval (src/stats/events.ts): markers and the event log; absent when nothing */
  events?: RunEvent[];
  /** schedule lag (send time − scheduled time) p50 / p99 in ms; null when nothing was sent */
  scheduleLagP50: number | null;
  scheduleLagP99: number | null;
  /** the consumer's duplicates and out-of-order arrivals per second */
  duplicatedPerSec: number;
  reorderedPerSec: number;
  /** connections per second: made, failed, made again after a loss, lost without our asking */
  connectsPerSec: number;
  connectFailuresPerSec: number;
  reconnectsPerSec: number;
  droppedPerSec: number;
  /** run totals so far */
  duplicated: number;
  reordered: number;
  reconnects: number;
  /**
   * this interval's errors by kind and code (what summary.errors adds up: broker answers, publish failures,
   * connection errors, consumer drops, measurement anomalies), most frequent first, secrets redacted, at most
   * MAX_POINT_ERRORS of them; absent when none
   */
  errors?: ErrorEntry[];
}

/** Most kinds and codes of error one point carries (the rest are added up in one "other" entry). */
export const MAX_POINT_ERRORS = 20;

/** Most points kept (and replayed to a new browser tab): one hour at one point per second. */
export const MAX_POINTS = 3600;

/** Percentile `p` in ms of a histogram recorded in µs; null (a gap in the chart) when it holds no value. */
export function percentileOrGap(h: Histogram, p: number): number | null {
  return h.totalCount === 0 ? null : percentileMs(h, p);
}

const perSec = (n: number, durationMs: number): number =>
  Math.round(((n * 1000) / Math.max(1, durationMs)) * 10) / 10;
const round1 = (v: number): number => Math.round(v * 10) / 10;
const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/**
 * One interval's errors for the errors log: the sources' errors by kind and code plus the interval's measurement
 * anomalies (as summary.errors has them), most frequent first, kind/code/reason redacted (a broker URL with a
 * password in a connection error), bounded to MAX_POINT_ERRORS entries (the rest summed as kind "other").
 */
export function intervalErrors(f: IntervalFigures): ErrorEntry[] {
  const all = [...(f.interval.errors ?? []), ...measurementErrors(f.interval.counters)]
    .filter((e) => e.count > 0)
    .map((e) => ({
      kind: redactText(e.kind),
      code: typeof e.code === 'string' ? redactText(e.code) : e.code,
      reason: redactText(e.reason),
      count: e.count,
    }))
    .sort((a, b) => b.count - a.count);
  if (all.length <= MAX_POINT_ERRORS) return all;
  const kept = all.slice(0, MAX_POINT_ERRORS - 1);
  const rest = all.slice(MAX_POINT_ERRORS - 1);
  kept.push({
    kind: 'other',
    code: rest.length,
    reason: `${rest.length} more kinds and codes of error in this interval`,
    count: rest.reduce((n, e) => n + e.count, 0),
  });
  return kept;
}

/** The load a run is asked for at one moment: what the dashboard's Load controls show and change. */
export interface FleetState {
  targetDevices: number;
  intervalMs: number;
}

/** The series of points of one run, bounded to `max` (oldest dropped first), with running totals. */
export class PointSeries {
  private readonly kept: DashboardPoint[] = [];
  private seq = 0;
  private readonly totals = {
    sent: 0,
    acked: 0,
    failed: 0,
    received: 0,
    connectFailures: 0,
    duplicated: 0,
    reordered: 0,
    reconnects: 0,
  };

  constructor(private readonly max = MAX_POINTS) {}

  /**
   * Turns one interval into a point and keeps it, with the load asked for at that moment. Reads `f`
   * synchronously: the aggregator reuses its view.
   */
  add(f: IntervalFigures, fleet: FleetState): DashboardPoint {
    const i = f.interval;
    const c = i.counters;
    const h = i.histograms;
    const tot = this.totals;
    tot.sent += c.sent;
    tot.acked += c.acked;
    tot.failed += c.failed;
    tot.received += c.received;
    tot.connectFailures += c.connectFailures;
    tot.duplicated += c.duplicated;
    tot.reordered += c.reordered;
    tot.reconnects += c.reconnects;
    const errors = intervalErrors(f);
    const d = i.durationMs;
    const point: DashboardPoint = {
      seq: ++this.seq,
      t: i.t,
      elapsedMs: Math.round(f.elapsedMs),
      phase: f.phase,
      devicesConnected: i.devicesConnected,
      targetDevices: fleet.targetDevices,
      intervalMs: fleet.intervalMs,
      sentPerSec: perSec(c.sent, d),
      ackedPerSec: perSec(c.acked, d),
      failedPerSec: perSec(c.failed, d),
      receivedPerSec: perSec(c.received, d),
      ...tot,
      gaps: f.gaps,
      e2eP50: percentileOrGap(h.e2e, 50),
      e2eP95: percentileOrGap(h.e2e, 95),
      e2eP99: percentileOrGap(h.e2e, 99),
      ackP50: percentileOrGap(h.publishAck, 50),
      ackP99: percentileOrGap(h.publishAck, 99),
      cpuPercent: round1(f.cpuPercent),
      eventLoopLagP99Ms: round3(f.eventLoopLagP99Ms),
      bytesSentPerSec: perSec(c.bytesSent, d),
      bytesReceivedPerSec: perSec(c.bytesReceived, d),
      ...(f.events && f.events.length > 0 ? { events: f.events } : {}),
      scheduleLagP50: percentileOrGap(h.scheduleLag, 50),
      scheduleLagP99: percentileOrGap(h.scheduleLag, 99),
      duplicatedPerSec: perSec(c.duplicated, d),
      reorderedPerSec: perSec(c.reordered, d),
      connectsPerSec: perSec(c.connects, d),
      connectFailuresPerSec: perSec(c.connectFailures, d),
      reconnectsPerSec: perSec(c.reconnects, d),
      droppedPerSec: perSec(c.dropped, d),
      ...(errors.length > 0 ? { errors } : {}),
    };
    this.kept.push(point);
    if (this.kept.length > this.max) this.kept.splice(0, this.kept.length - this.max);
    return point;
  }

  /** Points kept, oldest first, with seq greater than `afterSeq` (all of them by default). */
  since(afterSeq = 0): readonly DashboardPoint[] {
    if (afterSeq <= 0) return this.kept;
    const first = this.kept[0];
    if (!first || afterSeq < first.seq) return this.kept;
    return this.kept.slice(afterSeq - first.seq + 1);
  }

  get lastSeq(): number {
    return this.seq;
  }
}
