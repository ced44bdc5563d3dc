import type { MergedInterval } from '../stats/aggregate.js';
import type { DevicesTop } from '../stats/device-report.js';
import type { RunEvent } from '../stats/events.js';
import type { Summary } from '../stats/summary.js';

/**
 * What outputs see of a run (k6's output, Locust's event hooks). The built-in outputs — terminal, dashboard,
 * results folder, InfluxDB, Prometheus — use exactly these events, and so can a user's.
 */

export type Phase = 'ramp' | 'steady' | 'drain';

/** One interval of the run, merged over every producer of snapshots (engine, consumer, workers). */
export interface IntervalFigures {
  elapsedMs: number;
  interval: MergedInterval;
  /** holes below each device's highest seq seen so far (final loss comes at the end) */
  gaps: number;
  /**
   * messages sent before the previous interval ended and not received yet (a run with a generator and a
   * consumer): what may be lost, knowable from the first second on (a consumer on the wrong broker shows here)
   */
  overdue?: number;
  /** distinct devices the consumer has heard from */
  devicesSeen?: number;
  /** per-device top lists so far (with a consumer; every few seconds, the latest otherwise absent) */
  devices?: DevicesTop;
  cpuPercent: number;
  eventLoopLagP99Ms: number;
  phase: Phase;
  /** what happened in this interval (load changes, broker outages, …: src/stats/events.ts); absent when nothing */
  events?: RunEvent[];
}

/**
 * Changes the load while a run goes (the dashboard, later the coordinator): fleet size (ramp down at once, up at
 * the spawn rate) and each device's interval. Values are clamped to what the run was planned for.
 */
export interface FleetControl {
  readonly maxDevices: number;
  targetDevices(): number;
  intervalMs(): number;
  setTargetDevices(n: number): void;
  setIntervalMs(ms: number): void;
}

export interface RunInfo {
  runId: string;
  /** the system under test, secrets redacted */
  url: string;
  /** the results folder */
  dir: string;
  /** present when the run has a generator whose load can change */
  control?: FleetControl;
}

/**
 * One output of a run. Every method is optional and every call goes through a guard: an output that throws or
 * rejects is disabled for the rest of the run and named in summary.json, and the run goes on.
 *
 * `interval` may return a promise: the run waits for it (with every other output's) before a source with
 * checkpoints commits that interval, so "checkpointed" always means "in the results and the sinks".
 */
export interface Output {
  /** a name for messages and summary.json (e.g. "influxdb") */
  readonly name?: string;
  start?(info: RunInfo): void | Promise<void>;
  interval?(f: IntervalFigures): void | Promise<void>;
  finish?(summary: Summary): void | Promise<void>;
  close?(): void | Promise<void>;
}
