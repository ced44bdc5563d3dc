/**
 * The per-device sequence ledger: which seqs arrived, so loss, duplicates and reorders are counted exactly.
 *
 * Per device it keeps `base` (every seq ≤ base has arrived) and, only while something arrived out of order, a
 * bitmap of the seqs above it. In-order traffic never touches the bitmap. A bitmap wider than WINDOW_BITS (a
 * gap that never fills) is given up: its holes are counted lost at once and a straggler from that range is
 * counted `late`, not as a duplicate.
 */

const WINDOW_BITS = 1 << 16;

interface Entry {
  base: number;
  maxSeq: number;
  unique: number;
  pending: number;
  /** bitmap of seqs [origin, origin + 32 × words.length) */
  origin: number;
  words: Uint32Array | undefined;
  /** seqs given up as lost (window overflow), and the highest such seq */
  givenUp: number;
  givenUpTo: number;
}

export type Outcome = 'new' | 'reordered' | 'duplicate' | 'late';

export class Ledger {
  private readonly devices = new Map<string, Entry>();
  /** Σ maxSeq and Σ unique, for a running count of holes */
  private sumMax = 0;
  private sumUnique = 0;

  get deviceCount(): number {
    return this.devices.size;
  }

  /** Holes below each device's highest seq seen so far (not final: a hole may still fill). */
  get gaps(): number {
    return this.sumMax - this.sumUnique;
  }

  record(deviceId: string, seq: number): Outcome {
    let e = this.devices.get(deviceId);
    if (!e) {
      e = {
        base: 0,
        maxSeq: 0,
        unique: 0,
        pending: 0,
        origin: 1,
        words: undefined,
        givenUp: 0,
        givenUpTo: 0,
      };
      this.devices.set(deviceId, e);
    }
    if (seq <= e.base) {
      if (seq > e.givenUpTo) return 'duplicate';
      // inside a given-up range: the bitmap is gone, so it is counted late (never unique)
      this.lateCount++;
      return 'late';
    }
    if (seq === e.base + 1 && e.pending === 0) {
      e.base = seq;
      this.counted(e, seq);
      return 'new';
    }
    if (!e.words) {
      e.origin = e.base + 1;
      e.words = new Uint32Array(Math.max(2, Math.ceil((seq - e.origin + 1) / 32)));
    }
    let idx = seq - e.origin;
    if (idx >= WINDOW_BITS) {
      this.giveUp(e, seq - WINDOW_BITS / 2);
      if (!e.words) {
        e.origin = e.base + 1;
        e.words = new Uint32Array(Math.max(2, Math.ceil((seq - e.origin + 1) / 32)));
      }
      idx = seq - e.origin;
    }
    if (idx >= e.words.length * 32) {
      const grown = new Uint32Array(Math.min(WINDOW_BITS / 32, Math.max(e.words.length * 2, (idx >> 5) + 1)));
      grown.set(e.words);
      e.words = grown;
    }
    const w = idx >> 5;
    const bit = 1 << (idx & 31);
    if (((e.words[w] as number) & bit) !== 0) return 'duplicate';
    e.words[w] = (e.words[w] as number) | bit;
    e.pending++;
    const reordered = seq < e.maxSeq;
    this.counted(e, seq);
    this.advance(e);
    return reordered ? 'reordered' : 'new';
  }

  /**
   * Final loss: for each device, seqs up to the producer's last one (when known) that never arrived. Devices the
   * producer knows but the consumer never heard from count whole.
   */
  lost(expectedLast?: ReadonlyMap<string, number>): number {
    let lost = 0;
    if (expectedLast) {
      for (const [id, last] of expectedLast) {
        const e = this.devices.get(id);
        if (!e) {
          lost += last;
          continue;
        }
        lost += Math.max(0, last - this.uniqueUpTo(e, last));
      }
      return lost;
    }
    for (const e of this.devices.values()) lost += e.maxSeq - e.unique;
    return lost;
  }

  /** arrivals inside a range already given up as lost */
  lateCount = 0;

  private counted(e: Entry, seq: number): void {
    e.unique++;
    this.sumUnique++;
    if (seq > e.maxSeq) {
      this.sumMax += seq - e.maxSeq;
      e.maxSeq = seq;
    }
  }

  /** unique seqs ≤ last: everything unique, less what lies above `last` (only when seqs exceed the expectation) */
  private uniqueUpTo(e: Entry, last: number): number {
    if (e.maxSeq <= last) return e.unique;
    let above = 0;
    for (let s = Math.max(last + 1, e.base + 1); s <= e.maxSeq; s++) if (this.wasSeen(e, s)) above++;
    if (e.base > last) above += e.base - last;
    return e.unique - above;
  }

  private wasSeen(e: Entry, seq: number): boolean {
    if (seq <= e.base) return seq > e.givenUpTo;
    if (!e.words) return false;
    const idx = seq - e.origin;
    if (idx < 0 || idx >= e.words.length * 32) return false;
    return ((e.words[idx >> 5] as number) & (1 << (idx & 31))) !== 0;
  }

  private advance(e: Entry): void {
    const words = e.words as Uint32Array;
    for (;;) {
      const idx = e.base + 1 - e.origin;
      if (idx >= words.length * 32) break;
      if (((words[idx >> 5] as number) & (1 << (idx & 31))) === 0) break;
      e.base++;
      e.pending--;
    }
    if (e.pending === 0) {
      e.words = undefined;
      return;
    }
    const drop = (e.base + 1 - e.origin) >> 5;
    if (drop > 0) {
      words.copyWithin(0, drop);
      words.fill(0, words.length - drop);
      e.origin += drop * 32;
    }
  }

  /** Window overflow: every hole below `upTo` is declared lost now. */
  private giveUp(e: Entry, upTo: number): void {
    for (let s = e.base + 1; s <= upTo; s++) {
      if (!this.wasSeen(e, s)) {
        e.givenUp++;
      } else e.pending--;
    }
    // the holes stay out of `unique`, so `lost()` counts them through maxSeq − unique
    e.givenUpTo = upTo;
    e.base = upTo;
    if (e.pending <= 0) {
      e.pending = 0;
      e.words = undefined;
    } else {
      this.rebase(e);
      this.advance(e);
    }
  }

  private rebase(e: Entry): void {
    const old = e.words as Uint32Array;
    const oldOrigin = e.origin;
    const origin = e.base + 1;
    const words = new Uint32Array(old.length);
    for (let i = 0; i < old.length * 32; i++) {
      if (((old[i >> 5] as number) & (1 << (i & 31))) === 0) continue;
      const s = oldOrigin + i;
      if (s < origin) continue;
      const j = s - origin;
      if (j < words.length * 32) words[j >> 5] = (words[j >> 5] as number) | (1 << (j & 31));
    }
    e.origin = origin;
    e.words = words;
  }
}
