import type { Scenario } from '../scenario/schema.js';
import type { IntervalSnapshot } from '../stats/stats.js';

/**
 * Messages between `fleetload run --workers K` and its K generator processes (`fleetload worker`), over Node's IPC
 * channel with structured-clone serialization. Every message is a discriminated union member; nothing but these
 * crosses. Counters and HDR histograms cross, percentiles never do (they are computed from the merged histograms).
 */

/** What a worker's engine looks like right now: the parent sums these over workers. */
export interface WorkerState {
  everConnected: number;
  inflight: number;
  allDone: boolean;
  /** messages sent and failed so far (totals) */
  sent: number;
  failed: number;
  /** this worker's devices that should be connected now, and each device's interval */
  targetDevices: number;
  intervalMs: number;
  /** when its engine started (ms since epoch; 0 before) */
  startedAt: number;
  /** the worker's own health: it is a generator too (src/stats/monitor.ts) */
  health: GeneratorHealth;
}

export interface GeneratorHealth {
  /** the latest sample */
  cpuPercent: number;
  eventLoopLagP99Ms: number;
  /** over the run so far */
  cpuPercentPeak: number;
  eventLoopLagP99: number;
  /**
   * saturated at some point so far, by the run's one rule (src/stats/events.ts SaturationRule) on this worker's
   * own intervals: its CPU, event-loop lag and schedule lag (src/run/worker-health.ts)
   */
  saturated: boolean;
  /** saturated now (the rule's current state), and why: the parent logs it as a run event */
  saturatedNow?: boolean;
  saturatedReason?: string;
}

export type ToWorker =
  /** the run's scenario, the broker's URL and this worker's segment of the fleet */
  | {
      type: 'init';
      scenario: Scenario;
      url: string;
      segment: { index: number; count: number };
      /** --clock-ref: add this to the local clock (ms) */
      clockOffsetMs: number;
    }
  /** start the fleet at this instant (ms since epoch, the wall clock every process shares) */
  | { type: 'start'; atMs: number }
  /** the whole fleet's target size: each worker takes its segment's share */
  | { type: 'target'; devices: number }
  | { type: 'interval'; ms: number }
  /** send your counters now (a round trip the parent awaits before a final cut) */
  | { type: 'sync'; id: number }
  | { type: 'stopPublishing' }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; maxDevices: number }
  /** counters since the last snapshot: pushed every SNAPSHOT_MS, and in answer to `sync` */
  | { type: 'snapshot'; snap: IntervalSnapshot; state: WorkerState; syncId?: number }
  /** after stopPublishing: each device's last sequence number (no seq is used after this) */
  | {
      type: 'lastSeqs';
      entries: Array<[string, number]>;
      /** connect failures by device (only devices with some), for devices.csv */
      connectFailures?: Array<[string, number]>;
    }
  | { type: 'error'; message: string };

/** How often a worker pushes its counters (the parent's interval cuts attribute them within this much). */
export const SNAPSHOT_MS = 200;
