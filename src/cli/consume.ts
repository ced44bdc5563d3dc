import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../clock.js';
import { Consumer } from '../consumer/consumer.js';
import { createSource, type SourceConfig } from '../consumer/open.js';
import type { Source } from '../consumer/source.js';
import { formatSummary, LiveLine } from '../sinks/console.js';
import { ResultsFolder } from '../sinks/results.js';
import { Aggregator } from '../stats/aggregate.js';
import { intervalLatency, percentileMs, summarize } from '../stats/histogram.js';
import { GeneratorMonitor } from '../stats/monitor.js';
import { Stats } from '../stats/stats.js';
import type { Summary } from '../stats/summary.js';
import { evaluateThresholds } from '../stats/thresholds.js';
import { FLEETLOAD_VERSION } from '../version.js';
import { makeDecoder } from '../wire/index.js';
import type { CliIo } from './commands.js';
import { CONSUME_HELP, type ConsumeConfig, parseConsumeArgs } from './consume-args.js';
import { Interrupts } from './interrupts.js';

/**
 * `fleetload consume`: the standalone consumer (the seed's consumer). Reads one source until --run-time or Ctrl-C,
 * keeps the ledger and the delay histograms, writes the results folder (summary.json with the consumer fields;
 * producer fields 0) plus `ledger.bin` (the serialized ledger, so instances that split a stream merge exactly) and
 * `consumer.json` (source, partitions, late/negative-delay counts, foreign samples, checkpoints).
 *
 * Settings: flags > FLEETLOAD_<FLAG> > the seed's variables (EVENTHUB_CONNECTION_STRING, EVENTHUB_NAME,
 * CONSUMER_GROUP, STORAGE_CONNECTION_STRING, NUM_PARTITION, TOTAL_PARTITION; also PARTITION_INDEX/PARTITION_COUNT)
 * > defaults. Exit codes as `run`: 0 passed, 1 a threshold failed / interrupted with -t, 2 bad input, 3 cannot
 * attach.
 */

const INTERVAL_MS = 1000;

export async function consumeCmd(argv: string[], io: CliIo): Promise<number> {
  const cfg = parseConsumeArgs(argv, io.env);
  if (cfg === 'help') {
    io.stdout.write(CONSUME_HELP);
    return 0;
  }
  const human = cfg.json ? io.stderr : io.stdout;
  const live = new LiveLine(human);
  const clock = systemClock;
  const stats = new Stats(clock.now());
  const consumer = new Consumer({
    stats,
    clock,
    runId: cfg.runId,
    decode: makeDecoder({ format: cfg.format, fields: cfg.fields }),
  });
  // a bad Event Hubs connection string is input (exit 2), found before anything connects
  const source: Source = createSource({
    ...cfg.source,
    ...(cfg.source.kind === 'eventhubs' ? { log: (l: string) => live.println(l) } : {}),
  } as SourceConfig);
  const interrupts = new Interrupts(
    io.signals ?? process,
    (line) => live.println(line),
    io.stderr,
    'stopping: reading for the grace period, then writing the summary (Ctrl-C again to abort)',
  );
  const stopped = interrupts.requested;
  interrupts.listen();
  const monitor = new GeneratorMonitor();
  const aggregator = new Aggregator();
  let results: ResultsFolder | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    await source.open((d) => consumer.deliver(d));
    live.println(`fleetload ${FLEETLOAD_VERSION} · consume · ${source.description}`);
    results = await ResultsFolder.create(cfg.out, cfg.folderId);
    await results.writeScenario(cfg.resolved);
    const res = results;
    const startedAt = new Date();
    const startMs = clock.now();
    let phase: 'steady' | 'drain' = 'steady';
    // one interval: mark (same synchronous step as the snapshot), sinks, then commit
    const cut = async (): Promise<void> => {
      const now = clock.now();
      source.markInterval();
      const merged = aggregator.merge([stats.snapshot(now)]);
      const g = monitor.sample();
      const h = merged.histograms.e2e;
      res.appendRow({
        time: new Date(now).toISOString(),
        devicesConnected: 0,
        sent: 0,
        acked: 0,
        failed: 0,
        received: merged.counters.received,
        lost: consumer.ledger.gaps,
        e2eP50: percentileMs(h, 50),
        e2eP95: percentileMs(h, 95),
        e2eP99: percentileMs(h, 99),
        ackP50: 0,
        ackP99: 0,
      });
      res.appendInterval({
        time: new Date(now).toISOString(),
        elapsedMs: Math.round(now - startMs),
        durationMs: Math.round(merged.durationMs),
        phase,
        devicesConnected: 0,
        counters: { ...merged.counters },
        gaps: consumer.ledger.gaps,
        cpuPercent: g.cpuPercent,
        eventLoopLagP99Ms: g.eventLoopLagP99Ms,
        latency: {
          e2e: intervalLatency(h),
          e2eSend: intervalLatency(merged.histograms.e2eSend),
        },
      });
      live.update({
        elapsedMs: now - startMs,
        runTimeMs: cfg.runTimeMs ?? 0,
        devicesConnected: consumer.ledger.deviceCount,
        devicesTarget: consumer.ledger.deviceCount,
        sentPerSec: 0,
        receivedPerSec: (merged.counters.received * 1000) / Math.max(1, merged.durationMs),
        ...(h.totalCount > 0
          ? { e2eP50: h.getValueAtPercentile(50) / 1000, e2eP99: h.getValueAtPercentile(99) / 1000 }
          : {}),
        lost: consumer.ledger.gaps,
        phase,
      });
      // the interval reached the sinks (written to disk): only now may the source checkpoint it
      await res.flush();
      await source.commit();
    };
    let cutting: Promise<void> = Promise.resolve();
    const tick = () => {
      cutting = cutting.then(cut);
    };
    ticker = setInterval(tick, INTERVAL_MS);
    const timers: NodeJS.Timeout[] = [];
    await new Promise<void>((resolve) => {
      void stopped.then(resolve);
      if (cfg.runTimeMs !== undefined) timers.push(setTimeout(resolve, cfg.runTimeMs));
    });
    for (const t of timers) clearTimeout(t);
    const endMs = clock.now();
    phase = 'drain';
    // grace: loss becomes final only after it; after Ctrl-C at most 2 s
    const interruptedEarly = interrupts.count > 0 && cfg.runTimeMs !== undefined;
    const graceMs = interrupts.count > 0 ? Math.min(cfg.graceMs, 2000) : cfg.graceMs;
    await new Promise((r) => setTimeout(r, graceMs));
    clearInterval(ticker);
    ticker = undefined;
    const lost = consumer.ledger.finalize();
    tick();
    await cutting;
    await source.close();
    const summary = consumeSummary({
      cfg,
      startedAt,
      endedAt: new Date(),
      aggregator,
      monitor,
      lost,
      activeMs: Math.max(1, endMs - startMs),
      interrupted: interruptedEarly,
    });
    await res.writeHistograms(
      Object.fromEntries(Object.entries(aggregator.histograms).filter(([, x]) => x.totalCount > 0)),
    );
    await writeFile(join(res.dir, 'ledger.bin'), consumer.ledger.serialize());
    await writeFile(
      join(res.dir, 'consumer.json'),
      `${JSON.stringify(
        {
          source: source.description,
          kind: source.kind,
          late: aggregator.total.late,
          negativeDelay: aggregator.total.negativeDelay,
          devices: consumer.ledger.deviceCount,
          foreignSamples: consumer.foreignSamples,
          ...('checkpointed' in source
            ? {
                checkpoints: Object.fromEntries(
                  (source as { checkpointed: Map<string, number> }).checkpointed,
                ),
              }
            : {}),
        },
        null,
        2,
      )}\n`,
    );
    await res.writeSummary(summary);
    await res.close();
    live.done();
    human.write(`${formatSummary(summary, res.dir, { color: Boolean(human.isTTY) })}\n`);
    if (cfg.json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return summary.passed ? 0 : 1;
  } finally {
    if (ticker) clearInterval(ticker);
    live.done();
    interrupts.dispose();
    monitor.stop();
    await source.close().catch(() => {});
    await results?.close().catch(() => {});
  }
}

interface ConsumeSummaryInput {
  cfg: ConsumeConfig;
  startedAt: Date;
  endedAt: Date;
  aggregator: Aggregator;
  monitor: GeneratorMonitor;
  lost: number;
  activeMs: number;
  interrupted: boolean;
}

/** summary.json of a consumer: the DESIGN.md keys, consumer fields filled, producer fields 0. */
export function consumeSummary(i: ConsumeSummaryInput): Summary {
  const t = i.aggregator.total;
  const h = i.aggregator.histograms;
  const zero = summarize(h.publishAck);
  const summary: Summary = {
    runId: i.cfg.folderId,
    startedAt: i.startedAt.toISOString(),
    endedAt: i.endedAt.toISOString(),
    fleetloadVersion: FLEETLOAD_VERSION,
    ...(i.interrupted ? { interrupted: true } : {}),
    scenario: {
      host: i.cfg.host,
      devices: 0,
      spawnRate: 0,
      runTimeMs: i.cfg.runTimeMs ?? Math.round(i.activeMs),
      intervalMs: 0,
      qos: i.cfg.qos,
      mqttVersion: i.cfg.mqttVersion,
    },
    devices: { target: 0, connectedPeak: 0, connectFailures: 0, reconnects: 0 },
    messages: {
      scheduled: 0,
      sent: 0,
      acked: 0,
      failed: 0,
      unconfirmed: 0,
      received: t.received,
      lost: i.lost,
      duplicated: t.duplicated,
      reordered: t.reordered,
      foreign: t.foreign,
    },
    latency: { e2e: summarize(h.e2e), publishAck: zero, connect: zero, scheduleLag: zero },
    rates: { sentPerSec: 0, receivedPerSec: Math.round((t.received / i.activeMs) * 1000 * 10) / 10 },
    generator: {
      cpuPercentPeak: i.monitor.cpuPercentPeak,
      eventLoopLagP99: i.monitor.eventLoopLagP99,
      saturated: i.monitor.saturated(0),
    },
    errors: i.aggregator.errors(),
    thresholds: [],
    passed: true,
  };
  summary.thresholds = evaluateThresholds(i.cfg.thresholds, summary);
  summary.passed = !i.interrupted && summary.thresholds.every((r) => r.passed);
  return summary;
}
