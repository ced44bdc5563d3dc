import type { IntervalFigures } from '../run/output.js';
import type { RunEvent } from '../stats/events.js';
import { type Histogram, percentileMs } from '../stats/histogram.js';

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
}

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

/** The load a run is asked for at one moment: what the dashboard's Load controls show and change. */
export interface FleetState {
  targetDevices: number;
  intervalMs: number;
}

/** The series of points of one run, bounded to `max` (oldest dropped first), with running totals. */
export class PointSeries {
  private readonly kept: DashboardPoint[] = [];
  private seq = 0;
  private readonly totals = { sent: 0, acked: 0, failed: 0, received: 0, connectFailures: 0 };

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
    const point: DashboardPoint = {
      seq: ++this.seq,
      t: i.t,
      elapsedMs: Math.round(f.elapsedMs),
      phase: f.phase,
      devicesConnected: i.devicesConnected,
      targetDevices: fleet.targetDevices,
      intervalMs: fleet.intervalMs,
      sentPerSec: perSec(c.sent, i.durationMs),
      ackedPerSec: perSec(c.acked, i.durationMs),
      failedPerSec: perSec(c.failed, i.durationMs),
      receivedPerSec: perSec(c.received, i.durationMs),
      ...tot,
      gaps: f.gaps,
      e2eP50: percentileOrGap(h.e2e, 50),
      e2eP95: percentileOrGap(h.e2e, 95),
      e2eP99: percentileOrGap(h.e2e, 99),
      ackP50: percentileOrGap(h.publishAck, 50),
      ackP99: percentileOrGap(h.publishAck, 99),
      cpuPercent: round1(f.cpuPercent),
      eventLoopLagP99Ms: round3(f.eventLoopLagP99Ms),
      bytesSentPerSec: perSec(c.bytesSent, i.durationMs),
      bytesReceivedPerSec: perSec(c.bytesReceived, i.durationMs),
      ...(f.events && f.events.length > 0 ? { events: f.events } : {}),
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
