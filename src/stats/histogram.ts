import * as hdr from 'hdr-histogram-js';
import type { IntervalLatency } from './summary.js';

/**
 * Latency histograms record microseconds (integers) so sub-millisecond delays keep their precision;
 * every figure that leaves fleetload is in milliseconds. Histograms, never averages, cross process boundaries:
 * they are serialized with the HDR compressed encoding and merged at the top.
 */
export const HIGHEST_US = 24 * 3_600_000_000; // one day

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  if (count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  const q = (p: number) => round3(h.getValueAtPercentile(p) / 1000);
  return {
    count,
    min: round3(h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue / 1000),
    mean: round3(h.mean / 1000),
    p50: q(50),
    p90: q(90),
    p95: q(95),
    p99: q(99),
    p999: q(99.9),
    max: round3(h.maxValue / 1000),
  };
}

/** Records a latency in milliseconds (fractional allowed); values are clamped into the trackable range. */
export function recordMs(h: Histogram, valueMs: number): void {
  let us = Math.round(valueMs * 1000);
  if (us < 1) us = 1;
  else if (us > HIGHEST_US) us = HIGHEST_US;
  h.recordValue(us);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(text: string): Histogram {
  const h = hdr.decodeFromCompressedBase64(text, 32, false);
  return h;
}

/** Percentile `p` of a microsecond histogram, in ms (µs precision); 0 when it holds nothing. */
export function percentileMs(h: Histogram, p: number): number {
  return h.totalCount > 0 ? Math.round(h.getValueAtPercentile(p)) / 1000 : 0;
}

/** The per-interval latency figures of intervals.jsonl, from one interval's histogram. */
export function intervalLatency(h: Histogram): IntervalLatency {
  return {
    count: h.totalCount,
    p50: percentileMs(h, 50),
    p90: percentileMs(h, 90),
    p95: percentileMs(h, 95),
    p99: percentileMs(h, 99),
    max: h.totalCount > 0 ? Math.round(h.maxValue) / 1000 : 0,
  };
}
