import { encodeHistogram, type Histogram, newHistogram, recordMs } from './histogram.js';

/**
 * Counters and histograms of one process for the current interval (reset every second; counters also kept for
 * the whole run). Run-wide histograms live in the Aggregator, which merges the intervals: the hot path records
 * each latency once. `snapshot()` cuts an interval.
 */

export const LATENCIES = ['e2e', 'e2eSend', 'publishAck', 'connect', 'scheduleLag'] as const;
export type LatencyName = (typeof LATENCIES)[number];

export const COUNTERS = [
  'scheduled',
  'sent',
  'acked',
  'failed',
  'skipped',
  'connectAttempts',
  'connectFailures',
  'connects',
  'reconnects',
  'received',
  'duplicated',
  'reordered',
  'foreign',
  'late',
  /** seq far outside its device's window (src/consumer/ledger.ts): also counted in `foreign` */
  'outOfWindow',
  'negativeDelay',
  'commands',
  'renewals',
  /** connections of connected devices lost without our asking (not parked, not renewing): broker-lost events */
  'dropped',
  /** MQTT packet bytes the generator wrote (headers included), and payload bytes the consumer received */
  'bytesSent',
  'bytesReceived',
  /** TLS handshakes of the devices (mqtts): full ones, and abbreviated ones that resumed a kept session */
  'tlsFull',
  'tlsResumed',
] as const;
export type CounterName = (typeof COUNTERS)[number];
export type Counters = Record<CounterName, number>;

export function zeroCounters(): Counters {
  const c = {} as Counters;
  for (const k of COUNTERS) c[k] = 0;
  return c;
}

export interface ErrorEntry {
  kind: string;
  code: number | string;
  reason: string;
  count: number;
}

/** One interval of one process, ready to cross a process boundary (histograms encoded). */
export interface IntervalSnapshot {
  /** end of the interval, ms since epoch */
  t: number;
  durationMs: number;
  devicesConnected: number;
  counters: Counters;
  histograms: Partial<Record<LatencyName, string>>;
  errors: ErrorEntry[];
}

export class Stats {
  readonly interval = zeroCounters();
  readonly total = zeroCounters();
  readonly hInterval: Record<LatencyName, Histogram>;
  devicesConnected = 0;
  connectedPeak = 0;
  private errorsInterval = new Map<string, ErrorEntry>();
  private errorsTotal = new Map<string, ErrorEntry>();
  private lastCut: number;

  constructor(now: number) {
    this.lastCut = now;
    this.hInterval = {} as Record<LatencyName, Histogram>;
    for (const k of LATENCIES) {
      this.hInterval[k] = newHistogram();
    }
  }

  count(name: CounterName, n = 1): void {
    this.interval[name] += n;
    this.total[name] += n;
  }

  // The per-message calls, with the counter names written out: `count(name)` sees every name, so its property
  // accesses are megamorphic; these stay monomorphic (and are inlined into the engine's loop).

  /** one slot of the schedule came due */
  scheduledOne(): void {
    this.interval.scheduled++;
    this.total.scheduled++;
  }

  /**
   * One message written `lagMs` after its scheduled time; QoS 0 counts it acknowledged at once. A negative lag says
   * it was late for another reason than the generator (from the offline buffer after an outage): no schedule lag.
   */
  written(lagMs: number, ackedNow: boolean): void {
    this.interval.sent++;
    this.total.sent++;
    if (ackedNow) {
      this.interval.acked++;
      this.total.acked++;
    }
    if (lagMs >= 0) recordMs(this.hInterval.scheduleLag, lagMs);
  }

  /** a PUBACK/PUBCOMP that confirmed a message written `ms` earlier */
  ackedOne(ms: number): void {
    this.interval.acked++;
    this.total.acked++;
    recordMs(this.hInterval.publishAck, ms);
  }

  latency(name: LatencyName, ms: number): void {
    recordMs(this.hInterval[name], ms);
  }

  connected(delta: number): void {
    this.devicesConnected += delta;
    if (this.devicesConnected > this.connectedPeak) this.connectedPeak = this.devicesConnected;
  }

  error(kind: string, code: number | string, reason: string, n = 1): void {
    const key = `${kind}\u0000${code}`;
    for (const map of [this.errorsInterval, this.errorsTotal]) {
      const e = map.get(key);
      if (e) e.count += n;
      else map.set(key, { kind, code, reason, count: n });
    }
  }

  errors(): ErrorEntry[] {
    return [...this.errorsTotal.values()].map((e) => ({ ...e })).sort((a, b) => b.count - a.count);
  }

  /** Cuts the current interval: returns it and starts the next one. */
  /** The first interval begins now (the run's start), not when these stats were made; counts are kept. */
  beginAt(now: number): void {
    this.lastCut = now;
  }

  snapshot(now: number): IntervalSnapshot {
    const histograms: Partial<Record<LatencyName, string>> = {};
    for (const k of LATENCIES) {
      const h = this.hInterval[k];
      if (h.totalCount > 0) histograms[k] = encodeHistogram(h);
    }
    const snap: IntervalSnapshot = {
      t: now,
      durationMs: now - this.lastCut,
      devicesConnected: this.devicesConnected,
      counters: { ...this.interval },
      histograms,
      errors: [...this.errorsInterval.values()],
    };
    for (const k of COUNTERS) this.interval[k] = 0;
    for (const k of LATENCIES) this.hInterval[k].reset();
    this.errorsInterval = new Map();
    this.lastCut = now;
    return snap;
  }
}
