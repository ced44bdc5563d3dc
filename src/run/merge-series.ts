import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunEvent } from '../stats/events.js';
import type { IntervalLatency, IntervalRecord, TimeseriesRow } from '../stats/summary.js';

/**
 * The per-second series of a merged run (`fleetload merge`): each folder's intervals.jsonl, second by second.
 *
 * Each process cuts its intervals about every second at a phase of its own. A folder's intervals are numbered by
 * rounding (end − its first end) to whole seconds, so one process never puts two intervals in one slot (its cuts
 * drift); its first interval goes to the wall-clock second it ended in, which lines the folders up (segments
 * started at one instant, `--start-at`, on NTP-synced clocks). Per slot:
 * - counters add up (so the series' totals are the folders' totals, exactly);
 * - devices connected add up, a folder with no interval in that slot counting its last known value (so the sum's
 *   maximum is the fleet's connected peak, instead of the sum of each segment's own peak);
 * - latency: counts add up; p50 is the count-weighted mean of the folders' p50 and p90…max the largest of theirs —
 *   an upper bound (the exact whole-run percentiles are in summary.json, from the merged HDR histograms);
 * - CPU and event-loop lag: the busiest process's; gaps: the consumers' sum when one consumer saw each device
 *   (consumers splitting a stream each see holes that are the others' messages: 0 then).
 */

export interface SeriesPart {
  intervals: readonly IntervalRecord[];
  /** a producer folder (its devicesConnected counts) */
  producer: boolean;
  /** a consumer folder (its gaps count) */
  consumer: boolean;
}

export interface MergedSeries {
  intervals: IntervalRecord[];
  rows: TimeseriesRow[];
  /** the largest sum of devices connected over the slots */
  connectedPeak: number;
}

const SLOT_MS = 1000;

/** Reads a folder's intervals.jsonl: undefined when it has none; unreadable lines are skipped. */
export async function readIntervals(dir: string): Promise<IntervalRecord[] | undefined> {
  const text = await readFile(join(dir, 'intervals.jsonl'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const out: IntervalRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as IntervalRecord;
      if (typeof r.time === 'string' && Number.isFinite(Date.parse(r.time)) && typeof r.counters === 'object')
        out.push(r);
    } catch {
      // a torn last line of a killed run: skipped
    }
  }
  return out;
}

interface Slotted {
  part: number;
  endMs: number;
  record: IntervalRecord;
}

/** undefined when no folder has a series. `startedAtMs`: the merged run's start (elapsedMs counts from it). */
export function mergeSeries(parts: readonly SeriesPart[], startedAtMs: number): MergedSeries | undefined {
  const slots = new Map<number, Slotted[]>();
  parts.forEach((p, part) => {
    const first = p.intervals[0];
    if (!first) return;
    const firstEnd = Date.parse(first.time);
    for (const record of p.intervals) {
      const endMs = Date.parse(record.time);
      // the folder's own numbering, then placed on the wall clock by its first interval's second
      const k = Math.round((endMs - firstEnd) / SLOT_MS) + Math.ceil(firstEnd / SLOT_MS);
      const list = slots.get(k);
      if (list) list.push({ part, endMs, record });
      else slots.set(k, [{ part, endMs, record }]);
    }
  });
  if (slots.size === 0) return undefined;
  const consumers = parts.filter((p) => p.consumer && p.intervals.length > 0).length;
  const lastConnected = parts.map(() => 0);
  const intervals: IntervalRecord[] = [];
  const rows: TimeseriesRow[] = [];
  let connectedPeak = 0;
  for (const k of [...slots.keys()].sort((a, b) => a - b)) {
    const members = slots.get(k) as Slotted[];
    for (const m of members) if (parts[m.part]?.producer) lastConnected[m.part] = m.record.devicesConnected;
    const devicesConnected = lastConnected.reduce((a, b) => a + b, 0);
    connectedPeak = Math.max(connectedPeak, devicesConnected);
    const record = slotRecord(members, devicesConnected, consumers, startedAtMs);
    intervals.push(record);
    rows.push(rowOf(record));
  }
  return { intervals, rows, connectedPeak };
}

function slotRecord(
  members: readonly Slotted[],
  devicesConnected: number,
  consumers: number,
  startedAtMs: number,
): IntervalRecord {
  const endMs = Math.max(...members.map((m) => m.endMs));
  const counters: Record<string, number> = {};
  for (const m of members)
    for (const [name, v] of Object.entries(m.record.counters))
      if (Number.isFinite(v)) counters[name] = (counters[name] ?? 0) + v;
  const records = members.map((m) => m.record);
  const events: RunEvent[] = records.flatMap((r) => r.events ?? []).sort((a, b) => a.atMs - b.atMs);
  const e2eSend = records.flatMap((r) => (r.latency.e2eSend ? [r.latency.e2eSend] : []));
  return {
    time: new Date(endMs).toISOString(),
    elapsedMs: Math.max(0, Math.round(endMs - startedAtMs)),
    durationMs: Math.max(...records.map((r) => r.durationMs)),
    phase: phaseOf(records),
    devicesConnected,
    counters,
    gaps: consumers === 1 ? records.reduce((a, r) => a + (r.gaps ?? 0), 0) : 0,
    cpuPercent: Math.max(...records.map((r) => r.cpuPercent ?? 0)),
    eventLoopLagP99Ms: Math.max(...records.map((r) => r.eventLoopLagP99Ms ?? 0)),
    latency: {
      e2e: latencyOf(records.map((r) => r.latency.e2e)),
      ...(e2eSend.length > 0 ? { e2eSend: latencyOf(e2eSend) } : {}),
      publishAck: latencyOf(records.map((r) => r.latency.publishAck)),
      connect: latencyOf(records.map((r) => r.latency.connect)),
      scheduleLag: latencyOf(records.map((r) => r.latency.scheduleLag)),
    },
    ...(events.length > 0 ? { events } : {}),
  };
}

/** ramp while any process ramps, drain once one drains, else steady */
function phaseOf(records: readonly IntervalRecord[]): IntervalRecord['phase'] {
  if (records.some((r) => r.phase === 'ramp')) return 'ramp';
  if (records.some((r) => r.phase === 'drain')) return 'drain';
  return 'steady';
}

function latencyOf(list: readonly (IntervalLatency | undefined)[]): IntervalLatency {
  const seen = list.filter((l): l is IntervalLatency => l !== undefined && l.count > 0);
  const count = seen.reduce((a, l) => a + l.count, 0);
  if (count === 0) return { count: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };
  const top = (k: 'p90' | 'p95' | 'p99' | 'max'): number => Math.max(...seen.map((l) => l[k]));
  const p50 = seen.reduce((a, l) => a + l.p50 * l.count, 0) / count;
  return {
    count,
    p50: Math.round(p50 * 1000) / 1000,
    p90: top('p90'),
    p95: top('p95'),
    p99: top('p99'),
    max: top('max'),
  };
}

function rowOf(r: IntervalRecord): TimeseriesRow {
  const c = (name: string): number => r.counters[name] ?? 0;
  return {
    time: r.time,
    devicesConnected: r.devicesConnected,
    sent: c('sent'),
    acked: c('acked'),
    failed: c('failed'),
    received: c('received'),
    lost: r.gaps,
    e2eP50: r.latency.e2e.p50,
    e2eP95: r.latency.e2e.p95,
    e2eP99: r.latency.e2e.p99,
    ackP50: r.latency.publishAck.p50,
    ackP99: r.latency.publishAck.p99,
    bytesSent: c('bytesSent'),
    bytesReceived: c('bytesReceived'),
  };
}
