import { type Clock, systemClock } from '../clock.js';
import { Consumer } from '../consumer/consumer.js';
import { createSource, type SourceConfig } from '../consumer/open.js';
import { EventLog } from '../stats/events.js';
import { Stats } from '../stats/stats.js';
import type { Threshold } from '../stats/thresholds.js';
import { startTimeServer } from '../timesync.js';
import { type DEFAULT_FIELDS, type DecodeFormat, makeDecoder } from '../wire/index.js';
import type { Output } from './output.js';
import { type PipelineResult, type ResultsStore, runPipeline, type SinksPart } from './pipeline.js';
import type { ValidityOptions } from './verdict.js';

/**
 * `fleetload consume`: the run pipeline with a consumer only (the seed's consumer). Reads one source until the run
 * time or a stop, keeps the ledger and the delay histograms, and writes the same results folder as a run
 * (producer fields 0) with `ledger.bin` and `consumer.json`.
 */
export interface ConsumeOptions {
  source: SourceConfig;
  /** only this run's messages count (others: foreign) */
  runId: string | undefined;
  /** summary.json's runId (the results folder's name) */
  folderId: string;
  /** creates the results folder with its scenario.yaml (called once the source attached) */
  openResults: () => Promise<ResultsStore>;
  /** undefined: until stopped */
  runTimeMs: number | undefined;
  graceMs: number;
  format: DecodeFormat;
  fields: typeof DEFAULT_FIELDS;
  /** summary.json's scenario block */
  host: string;
  qos: 0 | 1 | 2;
  mqttVersion: '3.1.1' | '5';
  thresholds: readonly Threshold[];
  validity: ValidityOptions;
  outputs?: Output[];
  interrupt?: Promise<void>;
  /** time-series sinks: flushed before summary.json, which then records what they did */
  sinks?: SinksPart;
  /** answer producers' time probes on this UDP port for as long as the consumer runs */
  timePort?: number | undefined;
  clock?: Clock;
  log?: (line: string) => void;
}

export async function executeConsume(o: ConsumeOptions): Promise<PipelineResult> {
  const clock = o.clock ?? systemClock;
  const log = o.log ?? (() => {});
  const stats = new Stats(clock.now());
  const consumer = new Consumer({
    stats,
    clock,
    runId: o.runId,
    decode: makeDecoder({ format: o.format, fields: o.fields }),
  });
  // a bad Event Hubs connection string is input (exit 2), found before anything connects
  // the source's drops and returns are events of the run (src/stats/events.ts)
  const events = new EventLog(() => clock.now());
  const source = createSource({
    ...o.source,
    ...(o.source.kind === 'eventhubs' ? { log } : {}),
    ...(o.source.kind !== 'eventhubs'
      ? {
          onDisconnect: (reason: string) => {
            stats.error('consumer', 'disconnected', reason);
            events.add('consumer-disconnected', `consumer disconnected: ${reason}`);
          },
          onReconnect: () => events.add('consumer-reconnected', 'consumer reconnected'),
        }
      : {}),
  } as SourceConfig);
  const timeServer = o.timePort !== undefined ? await startTimeServer(clock, o.timePort) : undefined;
  if (timeServer)
    log(`answering time probes on UDP port ${timeServer.port} (--clock-ref HOST:${timeServer.port})`);
  try {
    return await runPipeline({
      runId: o.folderId,
      openResults: o.openResults,
      scenario: {
        host: o.host,
        devices: 0,
        spawnRate: 0,
        runTimeMs: o.runTimeMs ?? 0,
        intervalMs: 0,
        qos: o.qos,
        mqttVersion: o.mqttVersion,
      },
      clock,
      outputs: o.outputs ?? [],
      consumer: { source, consumer, stats },
      ...(o.runTimeMs !== undefined ? { runTimeMs: o.runTimeMs } : {}),
      graceMs: o.graceMs,
      thresholds: o.thresholds,
      validity: o.validity,
      ...(o.interrupt ? { interrupt: o.interrupt } : {}),
      ...(o.sinks ? { sinks: o.sinks } : {}),
      log,
      events,
      // run.json: the run whose messages counted (null: every run's; merge refuses such a folder)
      messagesRunId: o.runId ?? null,
    });
  } finally {
    await timeServer?.close();
  }
}
