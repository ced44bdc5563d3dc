import type { DevicesTop } from './device-report.js';
import type { RunEvent } from './events.js';
import type { LatencySummary } from './histogram.js';
import type { ErrorEntry } from './stats.js';

/** summary.json — its keys are a contract (DESIGN.md). Times in milliseconds. */
export interface Summary {
  runId: string;
  startedAt: string;
  endedAt: string;
  fleetloadVersion: string;
  /** present and true only when the run was stopped early (Ctrl-C / SIGTERM) */
  interrupted?: boolean;
  /**
   * Whose clock the delays are measured in: with --clock-ref, the producer stamped `ts` in the reference's clock
   * (offset measured before the run, error bound ±errorMs, and how much it moved by the end: driftMs); without one,
   * a producer whose consumer runs elsewhere assumes synced clocks (the note says so).
   */
  clock?: { reference: string | null; offsetMs: number; errorMs?: number; driftMs?: number; note?: string };
  /** with --start-at: the instant, how far this process's start was from it (ms), and whether it joined late */
  start?: { at: string; skewMs: number; joined?: true };
  /** present when a part of the run is missing (a worker that died, a segment not merged): what and why */
  incomplete?: { reason: string; lost: string[] };
  scenario: {
    host: string;
    devices: number;
    spawnRate: number;
    runTimeMs: number;
    intervalMs: number;
    qos: 0 | 1 | 2;
    mqttVersion: '3.1.1' | '5';
    /** what each message looked like and where it went (runs since 0.4; absent in older summaries and in consume) */
    topic?: string;
    encoding?: 'json' | 'properties' | 'binary';
    /** the built-in reading's size; absent with a --payload template */
    payloadSizeBytes?: number;
    /** first 12 hex digits of the --payload template's SHA-256: two runs with the same template have the same */
    payloadTemplate?: string;
    /** stages as `duration:devices` in ms, when the run had them */
    stages?: string[];
    jitterMs?: number;
    messagesPerDevice?: number;
    consumer?: string;
    consumerQos?: 0 | 1 | 2;
  };
  devices: {
    target: number;
    connectedPeak: number;
    connectFailures: number;
    reconnects: number;
    /** TLS devices (mqtts): handshakes made, and how many of them resumed a kept session */
    tls?: { handshakes: number; resumed: number };
  };
  messages: {
    scheduled: number;
    sent: number;
    acked: number;
    failed: number;
    unconfirmed: number;
    received: number;
    lost: number;
    duplicated: number;
    reordered: number;
    foreign: number;
  };
  latency: {
    e2e: LatencySummary;
    publishAck: LatencySummary;
    connect: LatencySummary;
    scheduleLag: LatencySummary;
  };
  rates: { sentPerSec: number; receivedPerSec: number };
  generator: { cpuPercentPeak: number; eventLoopLagP99: number; saturated: boolean };
  errors: ErrorEntry[];
  thresholds: ThresholdResult[];
  /**
   * false when the run did not offer or observe the load it planned (no device connected, most of the schedule
   * never sent, a consumer that received nothing, a saturated generator); such a run never passes
   */
  valid?: boolean;
  /** why the run is invalid, one line per failed check (`offered: …`) */
  invalid?: string[];
  passed: boolean;
  /** time-series sinks in use: InfluxDB lines written/dropped and failed requests, Prometheus scrapes */
  sinks?: SinksSummary;
  /** per-device top lists (TOP_N each, with lost seq ranges and their scheduled times); devices.csv has the rows */
  devicesTop?: DevicesTop;
  /**
   * bytes on the wire: MQTT packet bytes the generator wrote (headers included) and payload bytes the consumer
   * received, with their rates over the active time (docs/guide/events.md)
   */
  bytes?: { sent: number; received: number; sentPerSec: number; receivedPerSec: number };
  /** what happened to the run, in time order (at most MAX_EVENTS; src/stats/events.ts, docs/guide/events.md) */
  events?: RunEvent[];
  /** events beyond MAX_EVENTS, counted and not kept */
  eventsDropped?: number;
}

export interface SinksSummary {
  influx?: { written: number; dropped: number; failedBatches: number };
  prometheus?: { scrapes: number };
}

export interface ThresholdResult {
  expr: string;
  value: number;
  passed: boolean;
  /** the metric had no samples (a latency of nothing, a ratio of 0): the threshold fails, value is 0 */
  noData?: true;
}

/** One row of timeseries.csv (one per second). */
export interface TimeseriesRow {
  /** ISO-8601 end of the second */
  time: string;
  devicesConnected: number;
  sent: number;
  acked: number;
  failed: number;
  received: number;
  lost: number;
  e2eP50: number;
  e2eP95: number;
  e2eP99: number;
  ackP50: number;
  ackP99: number;
  /** appended columns: bytes written by the generator / received by the consumer in this second */
  bytesSent?: number;
  bytesReceived?: number;
}

export interface IntervalLatency {
  count: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

/** One line of intervals.jsonl: every figure of one interval (times in ms). */
export interface IntervalRecord {
  /** ISO-8601 end of the interval */
  time: string;
  elapsedMs: number;
  durationMs: number;
  phase: 'ramp' | 'steady' | 'drain';
  devicesConnected: number;
  /** interval counts: scheduled, sent, acked, failed, skipped, received, duplicated, reordered, foreign, late, … */
  counters: Record<string, number>;
  /** holes seen so far below each device's highest seq (not final) */
  gaps: number;
  cpuPercent: number;
  eventLoopLagP99Ms: number;
  latency: {
    e2e: IntervalLatency;
    /** delay from the producer's actual send time (when the payload carries sentTs) */
    e2eSend?: IntervalLatency;
    publishAck: IntervalLatency;
    connect: IntervalLatency;
    scheduleLag: IntervalLatency;
  };
  /** what happened in this interval (present only when something did) */
  events?: RunEvent[];
}
