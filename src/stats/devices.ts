/**
 * Per-device accounting: who lost what, and when (issue #13, "what happened, and to whom").
 *
 * The consumer's hot path adds a handful of typed-array operations per message to what the ledger already does: the
 * ledger finds the device's dense number (`Ledger.lastDevice`), and `DeviceTable.record` counts on that number.
 * Per device: received, duplicated, reordered (u32 each), the highest seq seen and its scheduled `ts`, the largest
 * e2e delay, and LAT_BUCKETS log₂ latency buckets (u32: [0,1) ms, [1,2), [2,4) … [2¹³, 2¹⁴), ≥ 2¹⁴ ms) — 96 bytes a
 * device, plus its id. The e2e p99 of a device is the upper edge of the bucket holding its 99th percentile, never
 * above its max: within a factor of 2 above the true value, cheap and mergeable (buckets add).
 *
 * Loss per device and its sequence ranges come from the ledger at the end (exact: the same arithmetic as the run's
 * `lost`). Their scheduled times come from the gap log: when a device's seq jumps (seq > highest + 1), the
 * scheduled times of both neighbours of the hole are logged (at most MAX_GAP_LOG entries a run); a lost range
 * inside a logged gap gets times interpolated between them (exact at a steady interval). A range with no logged gap
 * (the tail after a device's last message, its head before the first) is extrapolated at the scenario's interval
 * from the nearest message seen; a device never heard from has no times.
 */

export const LAT_BUCKETS = 16;
/** gap log entries kept per consumer (≈ 28 bytes each) */
export const MAX_GAP_LOG = 65_536;
/** top lists in summary.json, the report, the dashboard and the console */
export const TOP_N = 10;
/** lost ranges kept per device (the rest are counted: `lostRangesMore`) */
export const MAX_RANGES = 5;
/** fleets up to this size list every device in devices.csv; larger ones only devices with something to report */
export const SMALL_FLEET = 1000;

/** the ledger as this module reads it (src/consumer/ledger.ts) */
export interface LossLedger {
  uniqueOf(deviceId: string): number;
  lostOf(deviceId: string, last?: number): number;
  holes(
    deviceId: string,
    last: number | undefined,
    limit: number,
  ): { ranges: Array<[number, number]>; total: number; approx: boolean };
}

export type Arrival = 'new' | 'reordered' | 'duplicate' | 'late';

/** the bucket of a delay: 0 for < 1 ms, k for [2^(k−1), 2^k), the last one open */
export function bucketOf(delayMs: number): number {
  return delayMs < 1 ? 0 : Math.min(LAT_BUCKETS - 1, 32 - Math.clz32(delayMs));
}

interface GapLog {
  dev: Uint32Array;
  prevSeq: Uint32Array;
  nextSeq: Uint32Array;
  prevTs: Float64Array;
  nextTs: Float64Array;
  n: number;
  /** gaps not logged because the log was full */
  dropped: number;
}

function newGapLog(cap: number): GapLog {
  return {
    dev: new Uint32Array(cap),
    prevSeq: new Uint32Array(cap),
    nextSeq: new Uint32Array(cap),
    prevTs: new Float64Array(cap),
    nextTs: new Float64Array(cap),
    n: 0,
    dropped: 0,
  };
}

/** What the consumer saw of each device (see the module comment). */
export class DeviceTable {
  readonly names: string[] = [];
  private cap: number;
  private received: Uint32Array;
  private duplicated: Uint32Array;
  private reordered: Uint32Array;
  private topSeq: Uint32Array;
  private topTs: Float64Array;
  private maxMs: Float64Array;
  private buckets: Uint32Array;
  private readonly gaps: GapLog;

  constructor(initialDevices = 1024, gapLogSize = MAX_GAP_LOG) {
    this.cap = Math.max(16, initialDevices);
    this.received = new Uint32Array(this.cap);
    this.duplicated = new Uint32Array(this.cap);
    this.reordered = new Uint32Array(this.cap);
    this.topSeq = new Uint32Array(this.cap);
    this.topTs = new Float64Array(this.cap);
    this.maxMs = new Float64Array(this.cap);
    this.buckets = new Uint32Array(this.cap * LAT_BUCKETS);
    this.gaps = newGapLog(gapLogSize);
  }

  get size(): number {
    return this.names.length;
  }

  /**
   * The hot path: one valid message of device number `i` (the ledger's; a new device has i === size). `delayMs`
   * only counts for a new or reordered seq.
   */
  record(i: number, deviceId: string, seq: number, ts: number, arrival: Arrival, delayMs: number): void {
    if (i >= this.names.length) {
      if (i >= this.cap) this.grow(i + 1);
      this.names.push(deviceId);
    }
    this.received[i] = (this.received[i] as number) + 1;
    if (arrival === 'duplicate' || arrival === 'late') {
      this.duplicated[i] = (this.duplicated[i] as number) + (arrival === 'duplicate' ? 1 : 0);
      return;
    }
    if (arrival === 'reordered') this.reordered[i] = (this.reordered[i] as number) + 1;
    const b = i * LAT_BUCKETS + bucketOf(delayMs);
    this.buckets[b] = (this.buckets[b] as number) + 1;
    if (delayMs > (this.maxMs[i] as number)) this.maxMs[i] = delayMs;
    const top = this.topSeq[i] as number;
    if (seq > top) {
      if (seq > top + 1) this.logGap(i, top, top > 0 ? (this.topTs[i] as number) : Number.NaN, seq, ts);
      this.topSeq[i] = seq;
      this.topTs[i] = ts;
    }
  }

  private logGap(i: number, prevSeq: number, prevTs: number, nextSeq: number, nextTs: number): void {
    const g = this.gaps;
    if (g.n >= g.dev.length) {
      g.dropped++;
      return;
    }
    g.dev[g.n] = i;
    g.prevSeq[g.n] = prevSeq;
    g.prevTs[g.n] = prevTs;
    g.nextSeq[g.n] = nextSeq;
    g.nextTs[g.n] = nextTs;
    g.n++;
  }

  private grow(min: number): void {
    let cap = this.cap * 2;
    while (cap < min) cap *= 2;
    const g32 = (a: Uint32Array, k = 1) => {
      const b = new Uint32Array(cap * k);
      b.set(a);
      return b;
    };
    const g64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.received = g32(this.received);
    this.duplicated = g32(this.duplicated);
    this.reordered = g32(this.reordered);
    this.topSeq = g32(this.topSeq);
    this.topTs = g64(this.topTs);
    this.maxMs = g64(this.maxMs);
    this.buckets = g32(this.buckets, LAT_BUCKETS);
    this.cap = cap;
  }

  /** Bytes held per device slot and by the gap log (for the memory bound test). */
  memoryBytes(): number {
    return this.cap * (4 * 4 + 8 * 2 + 4 * LAT_BUCKETS) + this.gaps.dev.length * 28;
  }

  duplicatedAt(i: number): number {
    return this.duplicated[i] as number;
  }

  reorderedAt(i: number): number {
    return this.reordered[i] as number;
  }

  /** the e2e p99 of device number i (see p99FromBuckets), without a copy */
  p99At(i: number): number {
    return p99FromBuckets(
      this.buckets.subarray(i * LAT_BUCKETS, (i + 1) * LAT_BUCKETS),
      this.maxMs[i] as number,
    );
  }

  /** One device's figures by number (a copy). */
  device(i: number): DeviceState {
    return {
      deviceId: this.names[i] as string,
      received: this.received[i] as number,
      duplicated: this.duplicated[i] as number,
      reordered: this.reordered[i] as number,
      topSeq: this.topSeq[i] as number,
      topTs: this.topTs[i] as number,
      maxMs: this.maxMs[i] as number,
      buckets: Array.from(this.buckets.subarray(i * LAT_BUCKETS, (i + 1) * LAT_BUCKETS)),
    };
  }

  /** The logged gaps, with device ids. */
  gapList(): Gap[] {
    const g = this.gaps;
    const out: Gap[] = [];
    for (let k = 0; k < g.n; k++) {
      const prevTs = g.prevTs[k] as number;
      out.push({
        deviceId: this.names[g.dev[k] as number] as string,
        prevSeq: g.prevSeq[k] as number,
        prevTs: Number.isNaN(prevTs) ? null : prevTs,
        nextSeq: g.nextSeq[k] as number,
        nextTs: g.nextTs[k] as number,
      });
    }
    return out;
  }

  get gapsDropped(): number {
    return this.gaps.dropped;
  }

  /** The table as plain data (devices.json's consumer part). */
  state(): ConsumerDevices {
    const devices: DeviceState[] = [];
    for (let i = 0; i < this.names.length; i++) devices.push(this.device(i));
    return { devices, gaps: this.gapList(), gapsDropped: this.gaps.dropped };
  }
}

/** One device as a consumer saw it (mergeable: counts and buckets add, maxima take the larger). */
export interface DeviceState {
  deviceId: string;
  received: number;
  duplicated: number;
  reordered: number;
  /** highest seq seen and its scheduled ts */
  topSeq: number;
  topTs: number;
  maxMs: number;
  buckets: number[];
}

/** A jump in a device's seqs: the neighbours of the hole and their scheduled times (prevTs null: no message before). */
export interface Gap {
  deviceId: string;
  prevSeq: number;
  prevTs: number | null;
  nextSeq: number;
  nextTs: number;
}

export interface ConsumerDevices {
  devices: DeviceState[];
  gaps: Gap[];
  gapsDropped: number;
}

/** Joins the consumer parts of several instances (a split stream, merged folders): order-independent. */
export function mergeConsumerDevices(parts: readonly ConsumerDevices[]): ConsumerDevices {
  const by = new Map<string, DeviceState>();
  for (const p of parts) {
    for (const d of p.devices) {
      const have = by.get(d.deviceId);
      if (!have) {
        by.set(d.deviceId, { ...d, buckets: [...d.buckets] });
        continue;
      }
      have.received += d.received;
      have.duplicated += d.duplicated;
      have.reordered += d.reordered;
      if (d.topSeq > have.topSeq) {
        have.topSeq = d.topSeq;
        have.topTs = d.topTs;
      }
      have.maxMs = Math.max(have.maxMs, d.maxMs);
      for (let k = 0; k < LAT_BUCKETS; k++) have.buckets[k] = (have.buckets[k] ?? 0) + (d.buckets[k] ?? 0);
    }
  }
  const seen = new Set<string>();
  const gaps: Gap[] = [];
  let dropped = 0;
  for (const p of parts) {
    dropped += p.gapsDropped;
    for (const g of p.gaps) {
      const key = `${g.deviceId}\u0000${g.prevSeq}\u0000${g.nextSeq}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (gaps.length < MAX_GAP_LOG) gaps.push(g);
      else dropped++;
    }
  }
  const devices = [...by.values()].sort((a, b) => cmp(a.deviceId, b.deviceId));
  gaps.sort((a, b) => cmp(a.deviceId, b.deviceId) || a.prevSeq - b.prevSeq || a.nextSeq - b.nextSeq);
  return { devices, gaps, gapsDropped: dropped };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The e2e p99 of a device from its buckets: the upper edge of the bucket holding it, at most its max. */
export function p99FromBuckets(buckets: ArrayLike<number>, maxMs: number): number {
  let count = 0;
  for (let k = 0; k < buckets.length; k++) count += buckets[k] as number;
  if (count === 0) return 0;
  const rank = Math.ceil(count * 0.99);
  let seen = 0;
  for (let k = 0; k < buckets.length; k++) {
    seen += buckets[k] ?? 0;
    if (seen >= rank) return Math.min(k === buckets.length - 1 ? maxMs : 2 ** k, maxMs);
  }
  return maxMs;
}

/** A top list entry as the live view keeps it. */
export interface LiveEntry {
  deviceId: string;
  value: number;
}

/**
 * The live top lists (the dashboard, every few seconds): a scan over the table's arrays, lost meaning the holes
 * so far below each device's highest seq (`lossAt(i)`, by the ledger's device number; final loss comes at the
 * end). O(devices), no hashing, no allocation per device beyond the top lists.
 */
export function liveTop(
  t: DeviceTable,
  lossAt: (i: number) => number,
  connectFailures?: ReadonlyMap<string, number>,
): {
  lost: LiveEntry[];
  duplicated: LiveEntry[];
  reordered: LiveEntry[];
  e2eP99: LiveEntry[];
  connectFailures: LiveEntry[];
  counts: { lost: number; duplicated: number; reordered: number; e2eP99: number; connectFailures: number };
} {
  const lists = {
    lost: new TopList(),
    duplicated: new TopList(),
    reordered: new TopList(),
    e2eP99: new TopList(),
  };
  for (let i = 0; i < t.size; i++) {
    const id = t.names[i] as string;
    lists.lost.offer(id, lossAt(i));
    lists.duplicated.offer(id, t.duplicatedAt(i));
    lists.reordered.offer(id, t.reorderedAt(i));
    lists.e2eP99.offer(id, Math.round(t.p99At(i) * 1000) / 1000);
  }
  const cf = new TopList();
  for (const [id, n] of connectFailures ?? []) cf.offer(id, n);
  return {
    lost: lists.lost.list(),
    duplicated: lists.duplicated.list(),
    reordered: lists.reordered.list(),
    e2eP99: lists.e2eP99.list(),
    connectFailures: cf.list(),
    counts: {
      lost: lists.lost.count,
      duplicated: lists.duplicated.count,
      reordered: lists.reordered.count,
      e2eP99: lists.e2eP99.count,
      connectFailures: cf.count,
    },
  };
}

/** The TOP_N largest non-zero values (ties by id), kept as they are offered. */
class TopList {
  private readonly items: LiveEntry[] = [];
  count = 0;
  offer(deviceId: string, value: number): void {
    if (!(value > 0)) return;
    this.count++;
    const it = this.items;
    const last = it[it.length - 1];
    if (it.length >= TOP_N && last && !better(value, deviceId, last)) return;
    let k = it.length;
    while (k > 0 && better(value, deviceId, it[k - 1] as LiveEntry)) k--;
    it.splice(k, 0, { deviceId, value });
    if (it.length > TOP_N) it.pop();
  }
  list(): LiveEntry[] {
    return this.items;
  }
}

const better = (value: number, id: string, than: LiveEntry) =>
  value > than.value || (value === than.value && id < than.deviceId);
