import { performance } from 'node:perf_hooks';

/**
 * Time is injected everywhere (STYLE: "every dependency is an option with a default") so the scheduler, ramp
 * and intervals are tested in fake time. `now()` is epoch milliseconds with sub-millisecond precision.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): void;
}

/**
 * The two clocks a process can read: the realtime clock as JavaScript shows it (`Date.now()`: whole ms, the same
 * CLOCK_REALTIME in every process of a machine) and a monotonic clock with sub-µs resolution
 * (`performance.now()`: ms from an arbitrary origin, CLOCK_MONOTONIC). Injected so the anchoring is tested.
 */
export interface TimeSources {
  realtimeMs(): number;
  monotonicMs(): number;
}

export const SYSTEM_TIME_SOURCES: TimeSources = {
  realtimeMs: Date.now,
  monotonicMs: () => performance.now(),
};

export interface Anchor {
  /** monotonic + offsetMs = realtime */
  offsetMs: number;
  /** half the width of the interval the realtime edge was caught in */
  uncertaintyMs: number;
}

/**
 * Ties the monotonic clock to the realtime clock to well under a millisecond, although `Date.now()` only shows
 * whole ms: spin until `Date.now()` ticks over; the tick (realtime = exactly the new value) happened between the
 * monotonic reading before the last unchanged read and the one after the first changed read. The midpoint is the
 * anchor, half that interval its uncertainty (~0.1–0.5 µs on an idle core). An edge caught with more than
 * `maxUncertaintyMs` (the thread was preempted mid-spin) is retried, up to `tries` edges; the best is kept.
 * Costs up to ~1 ms of spinning per edge, so it runs at start and on a clock step, never per message.
 */
export function anchorClocks(src: TimeSources, maxUncertaintyMs = 0.005, tries = 5): Anchor {
  let best: Anchor | undefined;
  for (let i = 0; i < tries; i++) {
    let before = src.monotonicMs();
    const d0 = src.realtimeMs();
    const giveUpAt = before + 5; // a realtime clock that does not tick within 5 ms: stop spinning
    for (;;) {
      const b = src.monotonicMs();
      const d = src.realtimeMs();
      const a = src.monotonicMs();
      if (d !== d0) {
        const found = { offsetMs: d - (before + a) / 2, uncertaintyMs: (a - before) / 2 };
        if (!best || found.uncertaintyMs < best.uncertaintyMs) best = found;
        break;
      }
      if (a > giveUpAt) break;
      before = b;
    }
    if (best && best.uncertaintyMs <= maxUncertaintyMs) return best;
  }
  // no edge seen (a frozen or fake realtime clock): whole-ms anchor, centred on the ms
  return best ?? { offsetMs: src.realtimeMs() + 0.5 - src.monotonicMs(), uncertaintyMs: 0.5 };
}

export interface WallClockOptions {
  /** how often (monotonic ms) now() compares itself with the realtime clock; default 1000 */
  checkEveryMs?: number;
  /** how far outside Date.now()'s whole ms now() may be before it re-anchors; default 0.25 ms */
  toleranceMs?: number;
}

/**
 * Wall time, ms since epoch, with sub-ms resolution, that agrees across the processes of one machine: the
 * monotonic clock plus an offset found by `anchorClocks`. Every timestamp that leaves a process (wire `ts` and
 * `sentTs`, arrival times) comes from here, so a producer and a consumer in two processes read the same time to a
 * few µs. (`performance.timeOrigin + performance.now()` is one startup sample per process, not tied to the
 * realtime tick, and `Date.now()` floors to whole ms: on loopback the latter alone is half the measured delay.)
 *
 * Both kernel clocks are slewed alike by NTP, so they only part on a step of the realtime clock (settimeofday, an
 * NTP step): every `checkEveryMs`, now() reads `Date.now()` once, and when its own value is not inside that whole
 * ms (± `toleranceMs`) it re-anchors — so now() follows a step within a second, and is monotonic between steps.
 * Per call: one `performance.now()`, one add, one compare (bench/clock.ts).
 */
export class WallClock {
  private offsetMs: number;
  private nextCheckAt: number;
  private readonly checkEveryMs: number;
  private readonly toleranceMs: number;
  /** times the clock re-anchored after start (a realtime step was seen) */
  reanchors = 0;
  /** the current anchor's uncertainty, ms */
  uncertaintyMs: number;

  constructor(
    private readonly src: TimeSources = SYSTEM_TIME_SOURCES,
    o: WallClockOptions = {},
  ) {
    this.checkEveryMs = o.checkEveryMs ?? 1000;
    this.toleranceMs = o.toleranceMs ?? 0.25;
    const a = anchorClocks(src);
    this.offsetMs = a.offsetMs;
    this.uncertaintyMs = a.uncertaintyMs;
    this.nextCheckAt = src.monotonicMs() + this.checkEveryMs;
  }

  now(): number {
    const m = this.src.monotonicMs();
    if (m < this.nextCheckAt) return m + this.offsetMs;
    return this.checked(m);
  }

  private checked(m: number): number {
    const t = m + this.offsetMs;
    const d = this.src.realtimeMs();
    // realtime was in [d, d + 1) when it was read, just after t
    if (t < d - this.toleranceMs || t >= d + 1 + this.toleranceMs) {
      const a = anchorClocks(this.src);
      this.offsetMs = a.offsetMs;
      this.uncertaintyMs = a.uncertaintyMs;
      this.reanchors++;
      m = this.src.monotonicMs();
    }
    this.nextCheckAt = m + this.checkEveryMs;
    return m + this.offsetMs;
  }
}

let wall: WallClock | undefined;
/** The process's wall clock, anchored on first use. */
export function wallClock(): WallClock {
  wall ??= new WallClock();
  return wall;
}

export const systemClock: Clock = {
  now: () => wallClock().now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
/** A manual clock for tests: time moves only when `advance` is called, firing due timers in order. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Array<{ at: number; id: number; fn: () => void; unref(): void }> = [];

  constructor(start = 1_800_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const h = { at: this.t + Math.max(0, ms), id: ++this.seq, fn, unref() {} };
    this.timers.push(h);
    return h;
  }

  clearTimeout(h: TimerHandle): void {
    this.timers = this.timers.filter((x) => x !== h);
  }

  /** Moves time forward by `ms`, running every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: { at: number; id: number; fn: () => void; unref(): void } | undefined;
      for (const x of this.timers)
        if (x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.id < next.id))) next = x;
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.length;
  }
}
