/**
 * A binary min-heap of (due time, device index) in typed arrays: the one timer structure for every device of a
 * process. Entries are never removed early; callers drop stale ones when they pop (lazy deletion).
 */
export class DueQueue {
  private keys: Float64Array;
  private vals: Int32Array;
  private n = 0;

  constructor(capacity = 1024) {
    this.keys = new Float64Array(capacity);
    this.vals = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  /** Due time of the earliest entry, or Infinity. */
  peekTime(): number {
    return this.n > 0 ? (this.keys[0] as number) : Number.POSITIVE_INFINITY;
  }

  push(due: number, index: number): void {
    if (this.n === this.keys.length) this.grow();
    let i = this.n++;
    const keys = this.keys;
    const vals = this.vals;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = keys[parent] as number;
      if (pk <= due) break;
      keys[i] = pk;
      vals[i] = vals[parent] as number;
      i = parent;
    }
    keys[i] = due;
    vals[i] = index;
  }

  /** Removes the earliest entry; returns its index (its time was `peekTime()`). */
  pop(): number {
    const keys = this.keys;
    const vals = this.vals;
    const top = vals[0] as number;
    const last = --this.n;
    if (last > 0) {
      const k = keys[last] as number;
      const v = vals[last] as number;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= last) break;
        if (c + 1 < last && (keys[c + 1] as number) < (keys[c] as number)) c++;
        if ((keys[c] as number) >= k) break;
        keys[i] = keys[c] as number;
        vals[i] = vals[c] as number;
        i = c;
      }
      keys[i] = k;
      vals[i] = v;
    }
    return top;
  }

  clear(): void {
    this.n = 0;
  }

  private grow(): void {
    const k = new Float64Array(this.keys.length * 2);
    k.set(this.keys);
    const v = new Int32Array(this.vals.length * 2);
    v.set(this.vals);
    this.keys = k;
    this.vals = v;
  }
}
