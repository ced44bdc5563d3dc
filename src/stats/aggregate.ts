import { MAX_SEQ_JUMP } from '../wire/meta.js';
import { decodeHistogram, type Histogram, newHistogram } from './histogram.js';
import {
  COUNTERS,
  type Counters,
  type ErrorEntry,
  type IntervalSnapshot,
  LATENCIES,
  type LatencyName,
  zeroCounters,
} from './stats.js';

/**
 * Merges interval snapshots from every source (device engines, consumers; local or remote) into one view per
 * interval and into run totals. Histograms are decoded and added — percentiles are never averaged.
 */
export interface MergedInterval {
  t: number;
  durationMs: number;
  devicesConnected: number;
  counters: Counters;
  histograms: Record<LatencyName, Histogram>;
  /** this interval's errors by kind and code (broker answers, failures), summed over the sources */
  errors?: ErrorEntry[];
}

/**
 * Adds one snapshot into running sums: counters, the decoded histograms, and errors by kind and code. The one way
 * snapshots are summed (the aggregator per interval, the worker pool between cuts).
 */
export function addSnapshot(
  s: IntervalSnapshot,
  counters: Counters,
  histograms: Record<LatencyName, Histogram>,
  errors: Map<string, ErrorEntry>,
): void {
  for (const k of COUNTERS) counters[k] += s.counters[k];
  for (const k of LATENCIES) {
    const enc = s.histograms[k];
    if (enc) histograms[k].add(decodeHistogram(enc));
  }
  for (const e of s.errors) {
    const key = `${e.kind}\u0000${e.code}`;
    const have = errors.get(key);
    if (have) have.count += e.count;
    else errors.set(key, { ...e });
  }
}

export class Aggregator {
  readonly total = zeroCounters();
  readonly histograms: Record<LatencyName, Histogram>;
  connectedPeak = 0;
  private readonly errorMap = new Map<string, ErrorEntry>();
  private readonly scratch: Record<LatencyName, Histogram>;

  constructor() {
    this.histograms = {} as Record<LatencyName, Histogram>;
    this.scratch = {} as Record<LatencyName, Histogram>;
    for (const k of LATENCIES) {
      this.histograms[k] = newHistogram();
      this.scratch[k] = newHistogram();
    }
  }

  /** Merges the snapshots that make up one interval (one per source). The returned view is reused next call. */
  merge(snaps: readonly IntervalSnapshot[]): MergedInterval {
    const counters = zeroCounters();
    let devicesConnected = 0;
    let t = 0;
    let durationMs = 0;
    const errors = new Map<string, ErrorEntry>();
    for (const k of LATENCIES) this.scratch[k].reset();
    for (const s of snaps) {
      t = Math.max(t, s.t);
      durationMs = Math.max(durationMs, s.durationMs);
      devicesConnected += s.devicesConnected;
      addSnapshot(s, counters, this.scratch, errors);
    }
    for (const [key, e] of errors) {
      const have = this.errorMap.get(key);
      if (have) have.count += e.count;
      else this.errorMap.set(key, { ...e });
    }
    for (const k of COUNTERS) this.total[k] += counters[k];
    for (const k of LATENCIES) this.histograms[k].add(this.scratch[k]);
    if (devicesConnected > this.connectedPeak) this.connectedPeak = devicesConnected;
    return {
      t,
      durationMs,
      devicesConnected,
      counters,
      histograms: this.scratch,
      errors: [...errors.values()],
    };
  }

  /**
   * Every error by kind and code, most frequent first — plus the measurement anomalies a user must see: delays
   * that came out negative (clocks disagree: the arrival precedes the scheduled send), arrivals after their
   * loss was final, and seqs far outside their device's window (also counted foreign). They are counted, never
   * clipped or dropped silently.
   */
  errors(): ErrorEntry[] {
    const list = [...this.errorMap.values()].map((e) => ({ ...e }));
    list.push(...measurementErrors(this.total));
    return list.sort((a, b) => b.count - a.count);
  }
}

/**
 * The measurement anomalies in counts `c` (a run's totals, or one interval's counts): delays that came out
 * negative (clocks disagree: the arrival precedes the scheduled send), arrivals after their loss was final, and
 * seqs far outside their device's window (also counted foreign). Errors of kind "measurement", none when 0.
 */
export function measurementErrors(c: Counters): ErrorEntry[] {
  const list: ErrorEntry[] = [];
  if (c.negativeDelay > 0) {
    list.push({
      kind: 'measurement',
      code: 'negative-delay',
      reason:
        'arrival before the scheduled send time: the producer and consumer clocks disagree (recorded as 0 ms)',
      count: c.negativeDelay,
    });
  }
  if (c.late > 0) {
    list.push({
      kind: 'measurement',
      code: 'late',
      reason: 'arrived after its loss was final (still counted lost)',
      count: c.late,
    });
  }
  if (c.outOfWindow > 0) {
    list.push({
      kind: 'measurement',
      code: 'seq-out-of-window',
      reason: `seq more than ${MAX_SEQ_JUMP.toLocaleString('en-US')} above its device's highest seq (or a first seq that high): counted foreign, not a range to fill`,
      count: c.outOfWindow,
    });
  }
  return list;
}
