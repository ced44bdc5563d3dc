import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * The generator watches itself (STYLE): CPU of the whole process (percent of one core, like `top`) and
 * event-loop delay, sampled every interval. Whether the numbers describe the generator rather than the system under
 * test is the saturation rule's to say, on these samples (src/stats/events.ts SaturationRule).
 */
export interface GeneratorSample {
  cpuPercent: number;
  eventLoopLagP99Ms: number;
}

/** An interval with CPU at or above this is hot (SaturationRule; Locust warns at 90%). */
export const SATURATED_CPU_PERCENT = 90;
/** this many hot intervals in a row: the generator is saturated */
export const SATURATED_INTERVALS = 3;
/** an interval with an event-loop p99 or schedule-lag p99 above this is hot */
export const SATURATED_LAG_MS = 100;

const RESOLUTION_MS = 10;
const MIN_SAMPLE_US = 200_000;

/** The histogram holds the time between sampling timer runs (ns): the lag is what exceeds the resolution. */
const lagMs = (ns: number): number => Math.max(0, ns / 1e6 - RESOLUTION_MS);

export class GeneratorMonitor {
  cpuPercentPeak = 0;
  eventLoopLagP99Peak = 0;
  private lastCpu = process.cpuUsage();
  private lastWall = process.hrtime.bigint();
  private last: GeneratorSample = { cpuPercent: 0, eventLoopLagP99Ms: 0 };
  private readonly loop: IntervalHistogram;
  private readonly whole: IntervalHistogram;

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.whole = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.loop.enable();
    this.whole.enable();
  }

  /**
   * The load starts now: what came before (loading modules, attaching the consumer, opening the results folder)
   * is set-up, not the generator failing to keep up, and is left out of the run's figures.
   */
  begin(): void {
    this.loop.reset();
    this.whole.reset();
    this.lastCpu = process.cpuUsage();
    this.lastWall = process.hrtime.bigint();
  }

  sample(): GeneratorSample {
    const cpu = process.cpuUsage();
    const wall = process.hrtime.bigint();
    const cpuUs = cpu.user - this.lastCpu.user + (cpu.system - this.lastCpu.system);
    const wallUs = Number(wall - this.lastWall) / 1000;
    // a sliver of an interval (the final cut) says nothing reliable about CPU: report the last figures
    if (wallUs < MIN_SAMPLE_US) return this.last;
    this.lastCpu = cpu;
    this.lastWall = wall;
    const cpuPercent = wallUs > 0 ? Math.round((cpuUs / wallUs) * 1000) / 10 : 0;
    const lag = this.loop.count > 0 ? lagMs(this.loop.percentile(99)) : 0;
    this.loop.reset();
    if (cpuPercent > this.cpuPercentPeak) this.cpuPercentPeak = cpuPercent;
    if (lag > this.eventLoopLagP99Peak) this.eventLoopLagP99Peak = lag;
    this.last = { cpuPercent, eventLoopLagP99Ms: Math.round(lag * 1000) / 1000 };
    return this.last;
  }

  /** event-loop delay p99 over the whole run, ms */
  get eventLoopLagP99(): number {
    return this.whole.count > 0 ? Math.round(lagMs(this.whole.percentile(99)) * 1000) / 1000 : 0;
  }

  stop(): void {
    this.loop.disable();
    this.whole.disable();
  }
}
