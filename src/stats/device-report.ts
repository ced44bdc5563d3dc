import {
  type ConsumerDevices,
  type DeviceState,
  type Gap,
  type LossLedger,
  MAX_RANGES,
  p99FromBuckets,
  SMALL_FLEET,
  TOP_N,
} from './devices.js';

/**
 * The per-device breakdown at the end of a run, a consume or a merge: rows for devices.csv, top lists for
 * summary.json (`devicesTop`), the report, the dashboard and the console. Pure: data in, data out.
 */

/** A run of lost seqs of one device, with their scheduled times (ms since epoch; null: not known). */
export interface LostRange {
  fromSeq: number;
  toSeq: number;
  fromTs: number | null;
  toTs: number | null;
}

export interface DeviceRow {
  deviceId: string;
  /** messages the device wrote (its last seq); null without a generator side */
  sent: number | null;
  received: number;
  /** null without a consumer side */
  lost: number | null;
  duplicated: number;
  reordered: number;
  /** null without a generator side */
  connectFailures: number | null;
  e2eP99Ms: number;
  e2eMaxMs: number;
  lostRanges: LostRange[];
  /** lost ranges beyond the MAX_RANGES kept */
  lostRangesMore: number;
}

export interface TopEntry {
  deviceId: string;
  value: number;
  /** `lost` only: the first lost ranges with their scheduled times, and how many more there are */
  ranges?: LostRange[];
  moreRanges?: number;
}

/** summary.json `devicesTop` */
export interface DevicesTop {
  lost: TopEntry[];
  duplicated: TopEntry[];
  reordered: TopEntry[];
  e2eP99: TopEntry[];
  connectFailures: TopEntry[];
  /** how many devices have a non-zero value in each list (the lists keep TOP_N) */
  counts: { lost: number; duplicated: number; reordered: number; e2eP99: number; connectFailures: number };
}

export interface DeviceReportInput {
  /** the consumer's per-device figures (with a consumer side) */
  consumer?: ConsumerDevices | undefined;
  /** the consumer's ledger (with a consumer side) */
  ledger?: LossLedger | undefined;
  /** each device's last seq (with a generator side) */
  expectedLast?: ReadonlyMap<string, number> | undefined;
  /** connect failures by device (with a generator side; devices without any may be absent) */
  connectFailures?: ReadonlyMap<string, number> | undefined;
  /** the scenario's interval, to extrapolate the times of a lost head or tail (0: unknown, no extrapolation) */
  intervalMs: number;
}

export interface DeviceReport {
  /** every device known, in id order */
  all: DeviceRow[];
  /** the rows devices.csv lists: every device of a small fleet (≤ SMALL_FLEET), else those with something to report */
  listed: DeviceRow[];
  top: DevicesTop;
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Scheduled time of seq n of a device: inside a logged gap, between its neighbours; else estimated from the
 * device's highest seq seen at the scenario's interval (after it: the lost tail; below it: a hole whose gap the
 * full log did not keep).
 */
function timeOf(
  n: number,
  d: DeviceState | undefined,
  gaps: readonly Gap[],
  intervalMs: number,
): number | null {
  for (const g of gaps) {
    if (g.prevSeq < n && n < g.nextSeq) {
      if (g.prevTs === null) return intervalMs > 0 ? g.nextTs - (g.nextSeq - n) * intervalMs : null;
      return g.prevTs + ((n - g.prevSeq) * (g.nextTs - g.prevTs)) / (g.nextSeq - g.prevSeq);
    }
  }
  // `fleetload consume` knows no interval (0): nothing to estimate with
  if (d && d.topSeq > 0 && intervalMs > 0) return d.topTs + (n - d.topSeq) * intervalMs;
  return null;
}

function rowOf(
  id: string,
  i: DeviceReportInput,
  d: DeviceState | undefined,
  gaps: readonly Gap[],
): DeviceRow {
  const last = i.expectedLast?.get(id);
  let lost: number | null = null;
  let lostRanges: LostRange[] = [];
  let more = 0;
  if (i.ledger) {
    // as the run's `lost` counts: against the producer's last seq when there is a producer side
    lost = i.expectedLast ? (last === undefined ? 0 : i.ledger.lostOf(id, last)) : i.ledger.lostOf(id);
    if (lost > 0) {
      const h = i.ledger.holes(id, i.expectedLast ? last : undefined, MAX_RANGES);
      lostRanges = h.ranges.map(([a, b]) => {
        const fromTs = timeOf(a, d, gaps, i.intervalMs);
        const toTs = timeOf(b, d, gaps, i.intervalMs);
        return {
          fromSeq: a,
          toSeq: b,
          fromTs: fromTs === null ? null : round3(fromTs),
          toTs: toTs === null ? null : round3(toTs),
        };
      });
      more = h.total - h.ranges.length;
    }
  }
  return {
    deviceId: id,
    sent: i.expectedLast ? (last ?? 0) : null,
    received: d?.received ?? 0,
    lost,
    duplicated: d?.duplicated ?? 0,
    reordered: d?.reordered ?? 0,
    connectFailures: i.connectFailures ? (i.connectFailures.get(id) ?? 0) : null,
    e2eP99Ms: d ? round3(p99FromBuckets(d.buckets, d.maxMs)) : 0,
    e2eMaxMs: d ? round3(d.maxMs) : 0,
    lostRanges,
    lostRangesMore: more,
  };
}

const noteworthy = (r: DeviceRow) =>
  (r.lost ?? 0) > 0 || r.duplicated > 0 || r.reordered > 0 || (r.connectFailures ?? 0) > 0;

function topOf(
  rows: readonly DeviceRow[],
  value: (r: DeviceRow) => number,
): { list: TopEntry[]; count: number } {
  const nonZero = rows.filter((r) => value(r) > 0);
  nonZero.sort((a, b) => value(b) - value(a) || cmp(a.deviceId, b.deviceId));
  return {
    list: nonZero.slice(0, TOP_N).map((r) => ({ deviceId: r.deviceId, value: value(r) })),
    count: nonZero.length,
  };
}

export function deviceReport(i: DeviceReportInput): DeviceReport {
  const states = new Map<string, DeviceState>();
  for (const d of i.consumer?.devices ?? []) states.set(d.deviceId, d);
  const gapsBy = new Map<string, Gap[]>();
  for (const g of i.consumer?.gaps ?? []) {
    const list = gapsBy.get(g.deviceId);
    if (list) list.push(g);
    else gapsBy.set(g.deviceId, [g]);
  }
  const ids = new Set<string>(states.keys());
  for (const id of i.expectedLast?.keys() ?? []) ids.add(id);
  for (const [id, n] of i.connectFailures ?? []) if (n > 0) ids.add(id);
  const all = [...ids].sort(cmp).map((id) => rowOf(id, i, states.get(id), gapsBy.get(id) ?? []));
  const listed = all.length <= SMALL_FLEET ? all : all.filter(noteworthy);
  const lost = topOf(all, (r) => r.lost ?? 0);
  const byId = new Map(all.map((r) => [r.deviceId, r]));
  const dup = topOf(all, (r) => r.duplicated);
  const reo = topOf(all, (r) => r.reordered);
  const p99 = topOf(all, (r) => r.e2eP99Ms);
  const cf = topOf(all, (r) => r.connectFailures ?? 0);
  const top: DevicesTop = {
    lost: lost.list.map((t) => {
      const r = byId.get(t.deviceId) as DeviceRow;
      return { ...t, ranges: r.lostRanges, moreRanges: r.lostRangesMore };
    }),
    duplicated: dup.list,
    reordered: reo.list,
    e2eP99: p99.list,
    connectFailures: cf.list,
    counts: {
      lost: lost.count,
      duplicated: dup.count,
      reordered: reo.count,
      e2eP99: p99.count,
      connectFailures: cf.count,
    },
  };
  return { all, listed, top };
}

// ------------------------------------------------------------------------------------------ devices.csv

export const DEVICES_CSV_HEADER =
  'deviceId,sent,received,lost,duplicated,reordered,connectFailures,e2eP99Ms,e2eMaxMs,lostRanges';

const iso = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString());

/** `11-14@<from ISO>/<to ISO>`, `15@<ISO>`, `1-40` (times unknown) */
export function formatRange(r: LostRange): string {
  const seqs = r.fromSeq === r.toSeq ? `${r.fromSeq}` : `${r.fromSeq}-${r.toSeq}`;
  if (r.fromTs === null && r.toTs === null) return seqs;
  return r.fromSeq === r.toSeq ? `${seqs}@${iso(r.fromTs)}` : `${seqs}@${iso(r.fromTs)}/${iso(r.toTs)}`;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const opt = (v: number | null) => (v === null ? '' : String(v));

export function devicesCsv(rows: readonly DeviceRow[]): string {
  const lines = [DEVICES_CSV_HEADER];
  for (const r of rows) {
    const ranges = r.lostRanges.map(formatRange);
    if (r.lostRangesMore > 0) ranges.push(`+${r.lostRangesMore} more`);
    lines.push(
      [
        csvField(r.deviceId),
        opt(r.sent),
        r.received,
        opt(r.lost),
        r.duplicated,
        r.reordered,
        opt(r.connectFailures),
        r.e2eP99Ms,
        r.e2eMaxMs,
        csvField(ranges.join(' ')),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------------------------------ console

// ------------------------------------------------------------------------------------------ devices.json

/**
 * devices.json: what a results folder keeps of its devices so that `fleetload merge` rebuilds devices.csv exactly
 * (loss and ranges are recomputed from the union ledger and lastseq.bin). Compact rows:
 * `consumer.devices`: [id, received, duplicated, reordered, topSeq, topTs, maxMs, ...LAT_BUCKETS counts];
 * `consumer.gaps`: [id, prevSeq, prevTs | null, nextSeq, nextTs]; `producer.connectFailures`: [id, n] (n > 0).
 */
export const DEVICES_FORMAT = 'fleetload-devices';
export const DEVICES_VERSION = 1;

export interface DevicesFile {
  consumer?: ConsumerDevices;
  connectFailures?: Map<string, number>;
}

export function encodeDevices(f: DevicesFile): string {
  const out: Record<string, unknown> = { format: DEVICES_FORMAT, version: DEVICES_VERSION };
  if (f.consumer) {
    out.consumer = {
      gapsDropped: f.consumer.gapsDropped,
      devices: f.consumer.devices.map((d) => [
        d.deviceId,
        d.received,
        d.duplicated,
        d.reordered,
        d.topSeq,
        d.topTs,
        d.maxMs,
        ...d.buckets,
      ]),
      gaps: f.consumer.gaps.map((g) => [g.deviceId, g.prevSeq, g.prevTs, g.nextSeq, g.nextTs]),
    };
  }
  if (f.connectFailures) out.producer = { connectFailures: [...f.connectFailures].filter(([, n]) => n > 0) };
  return `${JSON.stringify(out)}\n`;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Reads devices.json; throws an Error saying what is wrong. */
export function decodeDevices(text: string): DevicesFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || o.format !== DEVICES_FORMAT)
    throw new Error('not a fleetload devices file');
  if (o.version !== DEVICES_VERSION)
    throw new Error(
      `version ${String(o.version)} is not supported (this fleetload reads ${DEVICES_VERSION})`,
    );
  const f: DevicesFile = {};
  const c = o.consumer as Record<string, unknown> | undefined;
  if (c !== undefined) {
    if (!Array.isArray(c.devices) || !Array.isArray(c.gaps) || !isNum(c.gapsDropped))
      throw new Error('consumer part damaged');
    const devices: DeviceState[] = c.devices.map((row: unknown) => {
      if (!Array.isArray(row) || typeof row[0] !== 'string' || !row.slice(1).every(isNum))
        throw new Error('device row damaged');
      const [deviceId, received, duplicated, reordered, topSeq, topTs, maxMs, ...buckets] = row as [
        string,
        ...number[],
      ];
      return {
        deviceId,
        received: received ?? 0,
        duplicated: duplicated ?? 0,
        reordered: reordered ?? 0,
        topSeq: topSeq ?? 0,
        topTs: topTs ?? 0,
        maxMs: maxMs ?? 0,
        buckets,
      };
    });
    const gaps: Gap[] = c.gaps.map((row: unknown) => {
      if (
        !Array.isArray(row) ||
        typeof row[0] !== 'string' ||
        !isNum(row[1]) ||
        !(row[2] === null || isNum(row[2])) ||
        !isNum(row[3]) ||
        !isNum(row[4])
      )
        throw new Error('gap row damaged');
      return { deviceId: row[0], prevSeq: row[1], prevTs: row[2], nextSeq: row[3], nextTs: row[4] };
    });
    f.consumer = { devices, gaps, gapsDropped: c.gapsDropped };
  }
  const p = o.producer as Record<string, unknown> | undefined;
  if (p !== undefined) {
    if (!Array.isArray(p.connectFailures)) throw new Error('producer part damaged');
    f.connectFailures = new Map(
      p.connectFailures.map((row: unknown) => {
        if (!Array.isArray(row) || typeof row[0] !== 'string' || !isNum(row[1]))
          throw new Error('connect failure row damaged');
        return [row[0], row[1]] as [string, number];
      }),
    );
  }
  return f;
}
