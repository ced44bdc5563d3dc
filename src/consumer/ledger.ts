import { MAX_SEQ_JUMP } from '../wire/meta.js';

/**
 * The per-device sequence ledger: which seqs arrived, so loss, duplicates and reorders are counted exactly.
 *
 * Memory: ≤ 32 bytes per device for in-order traffic (≈ 26 at 1M devices, measured in test/unit/ledger.test.ts).
 * Devices are not kept by name: a device id is hashed to 64 bits (two independent 32-bit hashes) and found
 * through an open-addressing table (Int32Array of slots → device number). Per device number, typed arrays hold the
 * two hash halves, `base` (every seq ≤ base is accounted for), `maxSeq` and a flags byte: 17 bytes, plus ≈ 8 bytes
 * of table at load ≤ 0.7. Two different ids colliding on 64 bits is ~3·10⁻⁸ likely at 1M devices; they would be
 * counted as one device. Seqs are u32 (1..2³²−1).
 *
 * Only a device with out-of-order traffic gets a side entry: a bitmap of the seqs above its base (dropped again as
 * soon as the hole fills). A bitmap wider than WINDOW_BITS (a gap that never fills) is given up: its holes count as
 * lost at once and a straggler from that range is counted `late`, not as a duplicate.
 *
 * Work and memory per arrival are bounded whatever the seqs (hostile input included): a seq more than
 * MAX_SEQ_JUMP (2²⁴ = 16,777,216) above the device's highest accepted seq (0 for a device not seen yet), or one that
 * is not an integer in 1..2³²−1, is `anomalous`: counted (`anomalousCount`), never recorded — it moves no base, no
 * maxSeq, creates no device and fills no range. Any other jump costs at most one window of bitmap work (giving up
 * a gap is arithmetic over the ≤ 8 KB bitmap, not a walk over the gap), so one message does O(WINDOW_BITS / 32)
 * work at worst and adds at most one device entry plus one ≤ 8 KB bitmap.
 *
 * Loss is final only at `finalize()` (the caller does it a grace period after the last expected message); an
 * arrival after that is counted `late` and changes nothing. Ledgers of several consumer instances (a split stream)
 * merge exactly (`serialize` → `Ledger.deserialize` → `merge`): the merged ledger holds the union of the seqs seen,
 * and `merge` reports how many seqs both had (cross-instance duplicates). Exact unless a device overflowed its
 * window in one of the instances (then `inexact` is set). The MAX_SEQ_JUMP bound applies where a seq arrives
 * (`record`), per instance; `merge` takes the union of what each instance accepted and never drops a seq. So a
 * merge is exact when no instance counted an anomaly; an instance that missed more than MAX_SEQ_JUMP consecutive
 * seqs of one device counts the next one anomalous where a single consumer would have accepted it (anomaly counts
 * add up across a merge).
 */

const WINDOW_BITS = 1 << 16;

export { MAX_SEQ_JUMP };

const F_EXT = 1;
const F_PENDING = 2;
const EMPTY = -1;
const MAGIC = 0x464c4c31; // "FLL1"

interface Ext {
  /** bitmap of seqs [origin, origin + 32 × words.length); defined while pending > 0 */
  origin: number;
  words: Uint32Array | undefined;
  /** seqs above base that arrived */
  pending: number;
  /** seqs given up as lost (window overflow), and the highest such seq */
  givenUp: number;
  givenUpTo: number;
}

export type Outcome = 'new' | 'reordered' | 'duplicate' | 'late' | 'anomalous';

/** Set bits of `words` at bit indexes from..to (inclusive; clipped to the bitmap). */
function countBits(words: Uint32Array, from: number, to: number): number {
  const lo = Math.max(0, from);
  const hi = Math.min(words.length * 32 - 1, to);
  let n = 0;
  for (let w = lo >> 5; w <= hi >> 5; w++) {
    let v = words[w] as number;
    if (w === lo >> 5) v &= -1 << (lo & 31);
    if (w === hi >> 5 && (hi & 31) !== 31) v &= (1 << ((hi & 31) + 1)) - 1;
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    n += Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
  }
  return n;
}

/** 64-bit hash of a string as two 32-bit halves (FNV-1a and a murmur-style mix with another seed). */
export function hashId(s: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, b >>> 0];
}

export class Ledger {
  private n = 0;
  private cap: number;
  private hLo: Uint32Array;
  private hHi: Uint32Array;
  private base: Uint32Array;
  private max: Uint32Array;
  private flags: Uint8Array;
  private table: Int32Array;
  private mask: number;
  private readonly ext = new Map<number, Ext>();
  /** Σ maxSeq and Σ unique, for a running count of holes */
  private sumMax = 0;
  private sumUnique = 0;
  private finalized = false;
  /** arrivals inside a range already given up as lost, or after `finalize()` */
  lateCount = 0;
  /** arrivals out of window (see MAX_SEQ_JUMP) or with an invalid seq: counted, never recorded */
  anomalousCount = 0;
  /** a merge met a device that had overflowed its window: the union is not exact for it */
  inexact = false;
  private readonly maxJump: number;
  /** the device number the last `record` call counted on (−1 for an anomalous seq): dense, in order of first sight */
  lastDevice = -1;

  /** `maxJump`: the anomaly bound (default MAX_SEQ_JUMP; at least WINDOW_BITS, so a merge never meets it) */
  constructor(initialDevices = 1024, maxJump = MAX_SEQ_JUMP) {
    this.maxJump = Math.max(WINDOW_BITS, maxJump);
    this.cap = Math.max(16, initialDevices);
    this.hLo = new Uint32Array(this.cap);
    this.hHi = new Uint32Array(this.cap);
    this.base = new Uint32Array(this.cap);
    this.max = new Uint32Array(this.cap);
    this.flags = new Uint8Array(this.cap);
    let t = 16;
    while (t * 0.7 < this.cap) t *= 2;
    this.table = new Int32Array(t).fill(EMPTY);
    this.mask = t - 1;
  }

  get deviceCount(): number {
    return this.n;
  }

  /** Holes below each device's highest seq seen so far (not final: a hole may still fill). */
  get gaps(): number {
    return this.sumMax - this.sumUnique;
  }

  /** Unique seqs seen, over all devices. */
  get uniqueCount(): number {
    return this.sumUnique;
  }

  get isFinal(): boolean {
    return this.finalized;
  }

  /** Bytes held by the typed arrays and side entries (for the memory bound test). */
  memoryBytes(): number {
    let b = this.cap * 17 + this.table.byteLength;
    for (const e of this.ext.values()) b += 64 + (e.words?.byteLength ?? 0);
    return b;
  }

  record(deviceId: string, seq: number): Outcome {
    const [lo, hi] = hashId(deviceId);
    const f = this.find(lo, hi);
    // an integer in 1..2³²−1 within maxJump of the device's highest seq (0 when new); else anomalous
    if (seq >>> 0 !== seq || seq === 0 || seq - (f >= 0 ? (this.max[f] as number) : 0) > this.maxJump) {
      this.anomalousCount++;
      this.lastDevice = -1;
      return 'anomalous';
    }
    const i = f >= 0 ? f : this.insert(lo, hi, -1 - f);
    this.lastDevice = i;
    return this.recordAt(i, seq);
  }

  /**
   * Final loss: for each device, seqs up to the producer's last one (when known) that never arrived. Devices the
   * producer knows but the consumer never heard from count whole. Without `expectedLast`, the holes below each
   * device's highest seq seen (a lost tail is then invisible).
   */
  lost(expectedLast?: ReadonlyMap<string, number>): number {
    let lost = 0;
    if (expectedLast) {
      for (const [id, last] of expectedLast) {
        const [lo, hi] = hashId(id);
        const i = this.slot(lo, hi, false);
        lost += i < 0 ? last : Math.max(0, last - this.uniqueUpTo(i, last));
      }
      return lost;
    }
    return this.sumMax - this.sumUnique;
  }

  /** Makes loss final (see `lost`): from now on, an arrival of a seq not seen yet is `late`. */
  finalize(expectedLast?: ReadonlyMap<string, number>): number {
    this.finalized = true;
    return this.lost(expectedLast);
  }

  // ------------------------------------------------------------------------------------------ per device

  /** Unique seqs seen of one device (0 for a device never seen). */
  uniqueOf(deviceId: string): number {
    const [lo, hi] = hashId(deviceId);
    const i = this.slot(lo, hi, false);
    return i < 0 ? 0 : this.unique(i);
  }

  /** Holes so far below the highest seq of device number `i` (as `lastDevice` gives it): no hashing. */
  gapsAt(i: number): number {
    return i >= 0 && i < this.n ? (this.max[i] as number) - this.unique(i) : 0;
  }

  /** One device's loss, as `lost` counts it: against `last` (the producer's last seq) when known. */
  lostOf(deviceId: string, last?: number): number {
    const [lo, hi] = hashId(deviceId);
    const i = this.slot(lo, hi, false);
    if (last !== undefined) return i < 0 ? last : Math.max(0, last - this.uniqueUpTo(i, last));
    return i < 0 ? 0 : (this.max[i] as number) - this.unique(i);
  }

  /**
   * One device's lost seqs as ranges [from, to] in order, at most `limit` of them (the count of all of them is
   * `total`): holes in the window above the base, then the tail up to `last`. O(window), never a walk over the
   * seqs. A range given up on window overflow (its exact holes are not kept) is reported as one range ending at
   * the seq where it was given up, flagged `approx`.
   */
  holes(
    deviceId: string,
    last: number | undefined,
    limit: number,
  ): { ranges: Array<[number, number]>; total: number; approx: boolean } {
    const [lo, hi] = hashId(deviceId);
    const i = this.slot(lo, hi, false);
    const ranges: Array<[number, number]> = [];
    let total = 0;
    const add = (from: number, to: number) => {
      if (to < from) return;
      total++;
      if (ranges.length < limit) ranges.push([from, to]);
    };
    if (i < 0) {
      if (last !== undefined && last > 0) add(1, last);
      return { ranges, total, approx: false };
    }
    const base = this.base[i] as number;
    const max = this.max[i] as number;
    const top = last ?? max;
    const e = ((this.flags[i] as number) & F_EXT) !== 0 ? this.ext.get(i) : undefined;
    let approx = false;
    if (e && e.givenUp > 0) {
      approx = true;
      add(1, Math.min(e.givenUpTo, top));
    }
    // above the base: the bitmap's clear bits up to min(max, top), then the tail (max, top]
    let from = -1;
    const end = Math.min(max, top);
    for (let s = base + 1; s <= end; s++) {
      const idx = e?.words ? s - e.origin : -1;
      const seen =
        e?.words !== undefined &&
        idx >= 0 &&
        idx < e.words.length * 32 &&
        ((e.words[idx >> 5] as number) & (1 << (idx & 31))) !== 0;
      if (!seen && from < 0) from = s;
      if (seen && from >= 0) {
        add(from, s - 1);
        from = -1;
      }
    }
    if (from >= 0) add(from, end);
    if (top > max) add(Math.max(max, base) + 1, top);
    return { ranges, total, approx };
  }

  // ------------------------------------------------------------------------------------------ merge

  /** The ledger as bytes, for another process to merge (see `merge`). */
  serialize(): Buffer {
    let size = 24 + this.n * 17;
    for (const e of this.ext.values()) size += 20 + (e.words?.byteLength ?? 0);
    const b = Buffer.alloc(size);
    b.writeUInt32BE(MAGIC, 0);
    b.writeUInt32BE(this.n, 4);
    b.writeDoubleBE(this.lateCount, 8);
    b[16] = (this.finalized ? 1 : 0) | (this.inexact ? 2 : 0);
    b.writeUInt32BE(Math.min(this.anomalousCount, 0xffffffff), 20);
    let o = 24;
    for (let i = 0; i < this.n; i++) {
      const f = this.flags[i] as number;
      b[o] = f;
      b.writeUInt32BE(this.hLo[i] as number, o + 1);
      b.writeUInt32BE(this.hHi[i] as number, o + 5);
      b.writeUInt32BE(this.base[i] as number, o + 9);
      b.writeUInt32BE(this.max[i] as number, o + 13);
      o += 17;
      if (f & F_EXT) {
        const e = this.ext.get(i) as Ext;
        const words = e.words;
        b.writeUInt32BE(e.givenUp, o);
        b.writeUInt32BE(e.givenUpTo, o + 4);
        b.writeUInt32BE(e.pending, o + 8);
        b.writeUInt32BE(e.origin, o + 12);
        b.writeUInt32BE(words?.length ?? 0, o + 16);
        o += 20;
        if (words) for (let w = 0; w < words.length; w++, o += 4) b.writeUInt32BE(words[w] as number, o);
      }
    }
    return b;
  }

  static deserialize(b: Buffer): Ledger {
    if (b.length < 24 || b.readUInt32BE(0) !== MAGIC) throw new Error('not a serialized fleetload ledger');
    const n = b.readUInt32BE(4);
    // sizes come from the file: check them before allocating anything
    if (24 + n * 17 > b.length) throw new Error('corrupt fleetload ledger: truncated');
    const l = new Ledger(n);
    l.lateCount = b.readDoubleBE(8);
    l.finalized = ((b[16] as number) & 1) !== 0;
    l.inexact = ((b[16] as number) & 2) !== 0;
    l.anomalousCount = b.readUInt32BE(20);
    let o = 24;
    for (let k = 0; k < n; k++) {
      if (o + 17 > b.length) throw new Error('corrupt fleetload ledger: truncated');
      const f = b[o] as number;
      const i = l.slot(b.readUInt32BE(o + 1), b.readUInt32BE(o + 5), true);
      l.base[i] = b.readUInt32BE(o + 9);
      l.max[i] = b.readUInt32BE(o + 13);
      l.flags[i] = f;
      o += 17;
      if (f & F_EXT) {
        if (o + 20 > b.length) throw new Error('corrupt fleetload ledger: truncated');
        const len = b.readUInt32BE(o + 16);
        if (len > WINDOW_BITS / 32 || o + 20 + len * 4 > b.length)
          throw new Error('corrupt fleetload ledger: bitmap');
        const e: Ext = {
          givenUp: b.readUInt32BE(o),
          givenUpTo: b.readUInt32BE(o + 4),
          pending: b.readUInt32BE(o + 8),
          origin: b.readUInt32BE(o + 12),
          words: len > 0 ? new Uint32Array(len) : undefined,
        };
        o += 20;
        for (let w = 0; w < len; w++, o += 4) (e.words as Uint32Array)[w] = b.readUInt32BE(o);
        l.ext.set(i, e);
      }
      l.sumMax += l.max[i] as number;
      l.sumUnique += l.unique(i);
    }
    return l;
  }

  /**
   * Adds another instance's ledger: afterwards this one holds, per device, the union of the seqs both saw.
   * Returns `overlap`: seqs both had — messages delivered to both instances, i.e. duplicates across them.
   */
  merge(other: Ledger): { overlap: number } {
    let overlap = 0;
    const late = this.lateCount;
    const wasFinal = this.finalized;
    this.finalized = false;
    if (other.inexact) this.inexact = true;
    for (let j = 0; j < other.n; j++) {
      const before = this.n;
      const i = this.slot(other.hLo[j] as number, other.hHi[j] as number, true);
      if (i === before) {
        this.copyFrom(i, other, j);
        continue;
      }
      const uA = this.unique(i);
      const uB = other.unique(j);
      const extA = this.ext.get(i);
      const extB = other.ext.get(j);
      if ((extA?.givenUp ?? 0) > 0 || (extB?.givenUp ?? 0) > 0) this.inexact = true;
      if ((other.base[j] as number) > (this.base[i] as number)) {
        // start from the other's state (the larger base) and add this one's seqs above it
        const mine = this.seqsAbove(i, other.base[j] as number);
        this.sumMax -= this.max[i] as number;
        this.sumUnique -= uA;
        this.copyFrom(i, other, j);
        for (const s of mine) this.recordAt(i, s);
      } else {
        for (const s of other.seqsAbove(j, this.base[i] as number)) this.recordAt(i, s);
      }
      overlap += uA + uB - this.unique(i);
    }
    this.lateCount = late + other.lateCount;
    this.anomalousCount += other.anomalousCount;
    this.finalized = wasFinal;
    return { overlap };
  }

  // ------------------------------------------------------------------------------------------ inside

  private recordAt(i: number, seq: number): Outcome {
    if (this.finalized) {
      if (this.seen(i, seq)) return 'duplicate';
      this.lateCount++;
      return 'late';
    }
    const base = this.base[i] as number;
    const f = this.flags[i] as number;
    if (seq <= base) {
      if ((f & F_EXT) === 0 || seq > (this.ext.get(i) as Ext).givenUpTo) return 'duplicate';
      // inside a given-up range: the bitmap is gone, so it is counted late (never unique)
      this.lateCount++;
      return 'late';
    }
    if (seq === base + 1 && (f & F_PENDING) === 0) {
      this.base[i] = seq;
      this.counted(i, seq);
      return 'new';
    }
    let e = this.ext.get(i);
    if (!e) {
      e = { origin: base + 1, words: undefined, pending: 0, givenUp: 0, givenUpTo: 0 };
      this.ext.set(i, e);
      this.flags[i] = f | F_EXT;
    }
    if (!e.words) e.origin = base + 1;
    let idx = seq - e.origin;
    if (idx >= WINDOW_BITS) {
      this.giveUp(i, e, seq - WINDOW_BITS / 2);
      idx = seq - e.origin; // < WINDOW_BITS / 2 now
    }
    let words = e.words;
    if (!words) {
      e.words = words = new Uint32Array(Math.max(2, (idx >> 5) + 1));
    } else if (idx >= words.length * 32) {
      const grown = new Uint32Array(Math.min(WINDOW_BITS / 32, Math.max(words.length * 2, (idx >> 5) + 1)));
      grown.set(words);
      e.words = words = grown;
    }
    const w = idx >> 5;
    const bit = 1 << (idx & 31);
    if (((words[w] as number) & bit) !== 0) return 'duplicate';
    words[w] = (words[w] as number) | bit;
    e.pending++;
    this.flags[i] = (this.flags[i] as number) | F_PENDING;
    const reordered = seq < (this.max[i] as number);
    this.counted(i, seq);
    this.advance(i, e);
    return reordered ? 'reordered' : 'new';
  }

  /** Device number for a hash; with `create`, a new device is added when missing; else −1 when missing. */
  private slot(lo: number, hi: number, create: boolean): number {
    const f = this.find(lo, hi);
    if (f >= 0) return f;
    return create ? this.insert(lo, hi, -1 - f) : -1;
  }

  /** Device number for a hash, or −1 − (the empty table slot where it would go). */
  private find(lo: number, hi: number): number {
    let s = lo & this.mask;
    for (;;) {
      const i = this.table[s] as number;
      if (i === EMPTY) return -1 - s;
      if (this.hLo[i] === lo && this.hHi[i] === hi) return i;
      s = (s + 1) & this.mask;
    }
  }

  /** Adds a device at empty table slot `s` (from `find`); returns its number. */
  private insert(lo: number, hi: number, s: number): number {
    if (this.n === this.cap) this.growDense();
    if (this.n + 1 > this.table.length * 0.7) {
      this.growTable();
      return this.insert(lo, hi, -1 - this.find(lo, hi));
    }
    const i = this.n++;
    this.hLo[i] = lo;
    this.hHi[i] = hi;
    this.table[s] = i;
    return i;
  }

  private growDense(): void {
    const cap = this.cap * 2;
    const grow = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.hLo = grow(this.hLo, (n) => new Uint32Array(n));
    this.hHi = grow(this.hHi, (n) => new Uint32Array(n));
    this.base = grow(this.base, (n) => new Uint32Array(n));
    this.max = grow(this.max, (n) => new Uint32Array(n));
    this.flags = grow(this.flags, (n) => new Uint8Array(n));
    this.cap = cap;
  }

  private growTable(): void {
    const size = this.table.length * 2;
    const table = new Int32Array(size).fill(EMPTY);
    const mask = size - 1;
    for (let i = 0; i < this.n; i++) {
      let s = (this.hLo[i] as number) & mask;
      while (table[s] !== EMPTY) s = (s + 1) & mask;
      table[s] = i;
    }
    this.table = table;
    this.mask = mask;
  }

  private unique(i: number): number {
    const base = this.base[i] as number;
    if (((this.flags[i] as number) & F_EXT) === 0) return base;
    const e = this.ext.get(i) as Ext;
    return base - e.givenUp + e.pending;
  }

  private counted(i: number, seq: number): void {
    this.sumUnique++;
    const m = this.max[i] as number;
    if (seq > m) {
      this.sumMax += seq - m;
      this.max[i] = seq;
    }
  }

  private copyFrom(i: number, other: Ledger, j: number): void {
    this.base[i] = other.base[j] as number;
    this.max[i] = other.max[j] as number;
    this.flags[i] = other.flags[j] as number;
    const e = other.ext.get(j);
    if (e) this.ext.set(i, { ...e, words: e.words?.slice() });
    else this.ext.delete(i);
    this.sumMax += this.max[i] as number;
    this.sumUnique += this.unique(i);
  }

  /**
   * The seqs above `from` this ledger saw for device `i`, for `from` ≥ its base (as in every `merge` call): only
   * bitmap seqs, so at most WINDOW_BITS of them.
   */
  private seqsAbove(i: number, from: number): number[] {
    const out: number[] = [];
    const e = this.ext.get(i);
    if (e?.words) {
      const words = e.words;
      for (let k = Math.max(0, from + 1 - e.origin); k < words.length * 32; k++) {
        if (((words[k >> 5] as number) & (1 << (k & 31))) === 0) continue;
        out.push(e.origin + k);
      }
    }
    return out;
  }

  /**
   * Unique seqs ≤ last: everything unique, less what lies above `last` (only when seqs exceed the expectation).
   * O(bitmap), never a walk over seqs. Seqs in (last, base] count as seen, less the given-up holes (whose exact
   * place is not kept: they are assumed above `last`, the case of a far jump past what the producer wrote).
   */
  private uniqueUpTo(i: number, last: number): number {
    const u = this.unique(i);
    const max = this.max[i] as number;
    if (max <= last) return u;
    const base = this.base[i] as number;
    const e = ((this.flags[i] as number) & F_EXT) !== 0 ? this.ext.get(i) : undefined;
    let above = 0;
    if (base > last) above += Math.max(0, base - last - (e?.givenUp ?? 0));
    if (e?.words) above += countBits(e.words, Math.max(last, base) + 1 - e.origin, e.words.length * 32 - 1);
    return Math.max(0, Math.min(last, u - above));
  }

  private seen(i: number, seq: number): boolean {
    const base = this.base[i] as number;
    const e = ((this.flags[i] as number) & F_EXT) !== 0 ? this.ext.get(i) : undefined;
    if (seq <= base) return seq > (e?.givenUpTo ?? 0);
    if (!e?.words) return false;
    const idx = seq - e.origin;
    if (idx < 0 || idx >= e.words.length * 32) return false;
    return ((e.words[idx >> 5] as number) & (1 << (idx & 31))) !== 0;
  }

  private advance(i: number, e: Ext): void {
    const words = e.words as Uint32Array;
    let base = this.base[i] as number;
    for (;;) {
      const idx = base + 1 - e.origin;
      if (idx >= words.length * 32) break;
      if (((words[idx >> 5] as number) & (1 << (idx & 31))) === 0) break;
      base++;
      e.pending--;
    }
    this.base[i] = base;
    if (e.pending === 0) {
      e.words = undefined;
      this.flags[i] = (this.flags[i] as number) & ~F_PENDING;
      if (e.givenUp === 0) {
        this.ext.delete(i);
        this.flags[i] = (this.flags[i] as number) & ~F_EXT;
      }
      return;
    }
    const drop = (base + 1 - e.origin) >> 5;
    if (drop > 0) {
      words.copyWithin(0, drop);
      words.fill(0, words.length - drop);
      e.origin += drop * 32;
    }
  }

  /**
   * Window overflow: every hole up to `upTo` (> base) is declared lost now. Arithmetic over the bitmap (≤
   * WINDOW_BITS bits), whatever the width of the gap.
   */
  private giveUp(i: number, e: Ext, upTo: number): void {
    const base = this.base[i] as number;
    const seenBelow = e.words ? countBits(e.words, base + 1 - e.origin, upTo - e.origin) : 0;
    e.givenUp += upTo - base - seenBelow;
    e.pending -= seenBelow;
    // the holes stay out of `unique`, so `lost()` counts them through maxSeq − unique
    e.givenUpTo = upTo;
    this.base[i] = upTo;
    if (e.pending <= 0) {
      e.pending = 0;
      e.words = undefined;
      e.origin = upTo + 1;
      this.flags[i] = (this.flags[i] as number) & ~F_PENDING;
    } else {
      this.rebase(i, e);
      this.advance(i, e);
      if (!e.words) e.origin = (this.base[i] as number) + 1;
    }
  }

  private rebase(i: number, e: Ext): void {
    const old = e.words as Uint32Array;
    const oldOrigin = e.origin;
    const origin = (this.base[i] as number) + 1;
    const words = new Uint32Array(old.length);
    for (let k = 0; k < old.length * 32; k++) {
      if (((old[k >> 5] as number) & (1 << (k & 31))) === 0) continue;
      const s = oldOrigin + k;
      if (s < origin) continue;
      const j = s - origin;
      if (j < words.length * 32) words[j >> 5] = (words[j >> 5] as number) | (1 << (j & 31));
    }
    e.origin = origin;
    e.words = words;
  }
}
