import { createHash } from 'node:crypto';
import { type EmbeddedBroker, startEmbeddedBroker } from '../broker/embedded.js';
import { type Clock, systemClock } from '../clock.js';
import { Consumer } from '../consumer/consumer.js';
import { sourceFromScenario } from '../consumer/open.js';
import { Engine } from '../engine/engine.js';
import { phaseAt, plan, type Segment } from '../scenario/plan.js';
import type { Scenario } from '../scenario/schema.js';
import { EventLog } from '../stats/events.js';
import { Stats } from '../stats/stats.js';
import type { Summary } from '../stats/summary.js';
import type { Threshold } from '../stats/thresholds.js';
import { measureOffset, type OffsetEstimate, offsetClock } from '../timesync.js';
import type { FleetControl, Output, Phase } from './output.js';
import {
  type ConsumerSide,
  type GeneratorSide,
  type PipelineResult,
  type ResultsStore,
  runPipeline,
  type SinksPart,
} from './pipeline.js';
import { scenarioShape } from './summary.js';
import type { ValidityOptions } from './verdict.js';
import { WorkerPool } from './workers.js';

/**
 * `fleetload run`: the pipeline with an in-process engine and (unless `consumer: none`) a consumer. Starts the
 * embedded broker when no host is given; everything it starts is stopped again, whatever happens.
 */
export interface RunOptions {
  scenario: Scenario;
  /** creates the results folder with its scenario.yaml (called once the system under test answered) */
  openResults: () => Promise<ResultsStore>;
  thresholds: Threshold[];
  validity: ValidityOptions;
  outputs?: Output[];
  clock?: Clock;
  /** resolves when the user asks to stop (Ctrl-C) */
  interrupt?: Promise<void>;
  log?: (line: string) => void;
  /** time-series sinks: flushed before summary.json is written, which then records what they did */
  sinks?: SinksPart;
  /** ramp or steady at an elapsed time (the plan's) */
  phaseAt?: (elapsedMs: number) => Exclude<Phase, 'drain'>;
}

export async function executeRun(o: RunOptions): Promise<PipelineResult> {
  const s = o.scenario;
  const log = o.log ?? (() => {});
  // --clock-ref: every timestamp of this run is in the reference's clock (the consumer's, on another machine)
  const local = o.clock ?? systemClock;
  const sync = s.clockRef ? await measureOffset(local, s.clockRef) : undefined;
  if (sync && s.clockRef) {
    log(
      `clock: ${s.clockRef.host}:${s.clockRef.port} is ${sync.offsetMs} ms ahead of this machine (±${sync.errorMs} ms); ts is stamped in its clock`,
    );
  }
  const clock = sync ? offsetClock(local, sync.offsetMs) : local;
  let broker: EmbeddedBroker | undefined;
  let pool: WorkerPool | undefined;
  try {
    let url = s.host ?? '';
    if (!s.host) {
      broker = await startEmbeddedBroker({ log });
      url = broker.url;
      log(`embedded broker (aedes, MQTT 3.1.1) on ${url}, pid ${broker.pid}`);
    }
    const events = new EventLog(() => clock.now());
    let consumer: ConsumerSide | undefined;
    if (s.consumer !== 'none') {
      const stats = new Stats(clock.now());
      consumer = {
        stats,
        consumer: new Consumer({ stats, clock, runId: s.runId }),
        source: sourceFromScenario(s, url, {
          now: () => clock.now(),
          log,
          onDisconnect: (reason) => {
            stats.error('consumer', 'disconnected', reason);
            events.add('consumer-disconnected', `consumer disconnected: ${reason}`);
          },
          onReconnect: () => events.add('consumer-reconnected', 'consumer reconnected'),
        }),
      };
    }
    // one engine in this process, or K worker processes each running a segment of the fleet
    let generator: GeneratorSide;
    let interrupt = o.interrupt;
    if (s.workers > 1) {
      pool = new WorkerPool({
        scenario: s,
        url,
        workers: s.workers,
        clock,
        clockOffsetMs: sync?.offsetMs ?? 0,
        log,
      });
      await pool.open();
      log(`${s.workers} workers ready, each a segment of the fleet`);
      generator = pool;
      interrupt = Promise.race([pool.failed, ...(o.interrupt ? [o.interrupt] : [])]);
    } else {
      const engineStats = new Stats(clock.now());
      const engine = new Engine({ scenario: s, url: new URL(url), stats: engineStats, clock });
      generator = engineSide(engine, engineStats, engine.plan.count);
    }
    const wholePlan = plan(s);
    // a segment's summary counts its own devices (a segment of 0 devices is valid and connects none)
    const segmentDevices = plan(s, s.segment).count;
    return await runPipeline({
      runId: s.runId,
      openResults: o.openResults,
      scenario: {
        host: url,
        devices: s.devices,
        spawnRate: s.spawnRate,
        runTimeMs: s.runTimeMs,
        intervalMs: s.intervalMs,
        qos: s.qos,
        mqttVersion: s.mqttVersion,
        ...scenarioShape(s),
      },
      clock,
      outputs: o.outputs ?? [],
      generator,
      devicesTarget: segmentDevices,
      ...(consumer ? { consumer } : {}),
      graceMs: s.graceMs,
      ...(s.startAtMs !== undefined ? { start: { atMs: s.startAtMs, late: s.lateStart } } : {}),
      connectTimeoutMs: s.connectTimeoutMs,
      thresholds: o.thresholds,
      validity: o.validity,
      ...(interrupt ? { interrupt } : {}),
      phaseAt: o.phaseAt ?? ((elapsedMs) => rampOrSteady(phaseAt(wholePlan, elapsedMs))),
      ...(o.sinks ? { sinks: o.sinks } : {}),
      clockReport: () => clockReport(s, local, sync),
      log,
      events,
      ...(s.stages ? { stages: s.stages } : {}),
      ...recordOptions(s),
    });
  } finally {
    await pool?.close();
    await broker?.stop();
  }
}

/** The in-process engine as the pipeline's generator side. */
export function engineSide(engine: Engine, stats: Stats, maxDevices: number): GeneratorSide {
  const control: FleetControl = {
    maxDevices,
    targetDevices: () => engine.targetDevices,
    intervalMs: () => engine.currentIntervalMs,
    // a change is said once, as its `load` event (the pipeline records it only when something changed)
    setTargetDevices: (n) => engine.setTargetDevices(n),
    setIntervalMs: (ms) => engine.setIntervalMs(ms),
  };
  return {
    control,
    start: () => {
      engine.start();
      stats.beginAt(engine.startAt);
    },
    get startAt() {
      return engine.startAt;
    },
    get endAt() {
      return engine.endAt;
    },
    get everConnected() {
      return engine.everConnected;
    },
    get allDone() {
      return engine.allDone;
    },
    get inflight() {
      return engine.inflight;
    },
    sentSoFar: () => ({ sent: stats.total.sent, failed: stats.total.failed }),
    stopPublishing: () => engine.stopPublishing(),
    stop: () => engine.stop(),
    expectedLast: () => {
      const expected = new Map<string, number>();
      const last = engine.lastSeqs();
      for (let i = 0; i < last.length; i++) {
        const seq = last[i] as number;
        if (seq > 0) expected.set(engine.deviceId(i), seq);
      }
      return expected;
    },
    connectFailuresByDevice: () => {
      const out = new Map<string, number>();
      const fails = engine.connectFailuresPerDevice();
      for (let i = 0; i < fails.length; i++)
        if ((fails[i] as number) > 0) out.set(engine.deviceId(i), fails[i] as number);
      return out;
    },
    snapshot: (now) => {
      stats.count('bytesSent', engine.takeBytesSent());
      return stats.snapshot(now);
    },
  };
}

/**
 * run.json's part of the run (src/run/record.ts): the segment (Scenario.segment once it exists; 0/1 until then),
 * the local workers, and the settings every segment of one run must share for `fleetload merge`.
 */
export function recordOptions(s: Scenario): {
  segment: Segment;
  workers: number;
  settings: Record<string, unknown>;
} {
  return {
    segment: { index: s.segment.index, count: s.segment.count },
    workers: s.workers,
    settings: {
      devices: s.devices,
      spawnRate: s.spawnRate,
      runTimeMs: s.runTimeMs,
      stages: s.stages ?? null,
      intervalMs: s.intervalMs,
      jitterMs: s.jitterMs,
      qos: s.qos,
      mqttVersion: s.mqttVersion,
      topic: s.topic,
      deviceId: s.deviceId,
      clientId: s.clientId,
      payloadSizeBytes: s.payloadSizeBytes,
      payloadTemplate:
        s.payloadTemplate === undefined ? null : createHash('sha256').update(s.payloadTemplate).digest('hex'),
      encoding: s.encoding,
      messagesPerDevice: s.messagesPerDevice ?? null,
      offline: s.offline,
      offlineBuffer: s.offlineBuffer,
      backpressure: s.backpressure,
      inflight: s.inflight,
      preset: s.preset ?? null,
    },
  };
}

/** The plan's phase while the run publishes (its drain comes when the pipeline drains). */
function rampOrSteady(p: Phase): Exclude<Phase, 'drain'> {
  return p === 'drain' ? 'steady' : p;
}

/**
 * summary.clock: with --clock-ref, the offset used, its error bound and how far it moved during the run (measured
 * again at the end); without one, a producer whose consumer is elsewhere says its delays assume synced clocks.
 */
async function clockReport(
  s: Scenario,
  local: Clock,
  sync: OffsetEstimate | undefined,
): Promise<Summary['clock'] | undefined> {
  if (s.clockRef && sync) {
    const after = await measureOffset(local, s.clockRef).catch(() => undefined);
    return {
      reference: `${s.clockRef.host}:${s.clockRef.port}`,
      offsetMs: sync.offsetMs,
      errorMs: sync.errorMs,
      ...(after ? { driftMs: Math.round((after.offsetMs - sync.offsetMs) * 1000) / 1000 } : {}),
    };
  }
  if (s.consumer === 'none') {
    return {
      reference: null,
      offsetMs: 0,
      note: 'no --clock-ref: delays measured by a consumer elsewhere assume its clock agrees with this one',
    };
  }
  return undefined;
}
