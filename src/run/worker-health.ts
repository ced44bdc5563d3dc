import { SaturationRule } from '../stats/events.js';
import { type Histogram, newHistogram, summarize } from '../stats/histogram.js';
import type { GeneratorMonitor } from '../stats/monitor.js';
import type { GeneratorHealth } from './worker-protocol.js';

/** How long one of a worker's intervals lasts: the parent's interval, so the rule's "3 in a row" is 3 s everywhere. */
export const HEALTH_INTERVAL_MS = 1000;

/**
 * A worker of `run --workers K` judges its own saturation with the run's one rule (src/stats/events.ts
 * SaturationRule) on its own intervals: its CPU, its event-loop lag and the schedule lag of its own messages, one
 * interval a second. `health()` is called at every push: it closes an interval once a second has passed since the
 * last one (the load's start for the first), and reports the latest interval's figures and the rule's verdict.
 * Nothing is judged before the load starts: loading modules and connecting to the parent are set-up.
 */
export class WorkerHealth {
  private readonly rule = new SaturationRule();
  private readonly scheduleLag: Histogram = newHistogram();
  private begunAt: number | undefined;
  private sampledAt = 0;
  private latest = { cpuPercent: 0, eventLoopLagP99Ms: 0 };

  constructor(
    private readonly monitor: Pick<
      GeneratorMonitor,
      'begin' | 'sample' | 'cpuPercentPeak' | 'eventLoopLagP99'
    >,
    private readonly now: () => number,
  ) {}

  /** The load starts now: the first interval begins. */
  begin(): void {
    this.monitor.begin();
    this.scheduleLag.reset();
    this.begunAt = this.now();
    this.sampledAt = this.begunAt;
  }

  /** This worker's schedule lag since the last call (its Stats' interval histogram, before a snapshot resets it). */
  addScheduleLag(h: Histogram): void {
    if (this.begunAt !== undefined && h.totalCount > 0) this.scheduleLag.add(h);
  }

  health(): GeneratorHealth {
    const now = this.now();
    if (this.begunAt !== undefined && now - this.sampledAt >= HEALTH_INTERVAL_MS) {
      this.latest = this.monitor.sample();
      this.sampledAt = now;
      const lag = this.scheduleLag.totalCount > 0 ? summarize(this.scheduleLag).p99 : 0;
      this.scheduleLag.reset();
      this.rule.observe({ ...this.latest, scheduleLagP99Ms: lag });
    }
    return {
      ...this.latest,
      cpuPercentPeak: this.monitor.cpuPercentPeak,
      eventLoopLagP99: this.monitor.eventLoopLagP99,
      saturated: this.rule.ever,
      saturatedNow: this.rule.now,
      ...(this.rule.now ? { saturatedReason: this.rule.reason() } : {}),
    };
  }
}

/** The workers' health together: the busiest worker's figures; saturated when any worker's own rule said so. */
export function mergeHealth(all: Iterable<GeneratorHealth | undefined>): GeneratorHealth {
  const h: GeneratorHealth = {
    cpuPercent: 0,
    eventLoopLagP99Ms: 0,
    cpuPercentPeak: 0,
    eventLoopLagP99: 0,
    saturated: false,
  };
  for (const x of all) {
    if (!x) continue;
    h.cpuPercent = Math.max(h.cpuPercent, x.cpuPercent);
    h.eventLoopLagP99Ms = Math.max(h.eventLoopLagP99Ms, x.eventLoopLagP99Ms);
    h.cpuPercentPeak = Math.max(h.cpuPercentPeak, x.cpuPercentPeak);
    h.eventLoopLagP99 = Math.max(h.eventLoopLagP99, x.eventLoopLagP99);
    h.saturated ||= x.saturated;
    if (x.saturatedNow) {
      h.saturatedNow = true;
      h.saturatedReason ??= x.saturatedReason;
    }
  }
  return h;
}
