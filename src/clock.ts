import { performance } from 'node:perf_hooks';

/**
 * Time is injected everywhere (STYLE: "every dependency is an option with a default") so the scheduler, ramp
 * and intervals are tested in fake time. `now()` is epoch milliseconds with sub-millisecond precision, monotonic
 * within a process (performance.timeOrigin + performance.now()).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): void;
}

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
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
