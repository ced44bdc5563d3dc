import { type EmbeddedBroker, startEmbeddedBroker } from '../broker/embedded.js';
import { type Clock, systemClock } from '../clock.js';
import { Consumer } from '../consumer/consumer.js';
import { sourceFromScenario } from '../consumer/open.js';
import { redactUrl, type Source } from '../consumer/source.js';
import { Engine } from '../engine/engine.js';
import { FleetloadError } from '../errors.js';
import type { FleetControl, IntervalFigures, Output } from '../run/output.js';
import type { Scenario } from '../scenario/schema.js';
import type { Sinks } from '../sinks/index.js';
import { ResultsFolder } from '../sinks/results.js';
import { Aggregator } from '../stats/aggregate.js';
import { intervalLatency, percentileMs, summarize } from '../stats/histogram.js';
import { GeneratorMonitor } from '../stats/monitor.js';
import { Stats } from '../stats/stats.js';
import type { IntervalRecord, Summary, TimeseriesRow } from '../stats/summary.js';
import { evaluateThresholds, type Threshold } from '../stats/thresholds.js';
import { FLEETLOAD_VERSION } from '../version.js';

/**
 * One run, as data flowing (DESIGN.md): scenario → engine + consumer → stats per interval → aggregator →
 * sinks → summary + thresholds. A single-process run is the in-process coordinator with one worker.
 */

export interface RunOptions {
  scenario: Scenario;
  /** the resolved scenario, secrets already redacted, for scenario.yaml */
  resolvedRedacted: Record<string, unknown>;
  thresholds: Threshold[];
  listeners?: Output[];
  clock?: Clock;
  /** resolves when the user asks to stop (Ctrl-C) */
  interrupt?: Promise<void>;
  log?: (line: string) => void;
  /** time-series sinks: flushed before summary.json is written, which then records what they did */
  sinks?: Pick<Sinks, 'flush' | 'summaryPart'>;
}

export interface RunResult {
  summary: Summary;
  dir: string;
}

const INTERVAL_MS = 1000;
const DRAIN_POLL_MS = 50;

export async function executeRun(o: RunOptions): Promise<RunResult> {
  const s = o.scenario;
  const clock = o.clock ?? systemClock;
  const listeners = o.listeners ?? [];
  const log = o.log ?? (() => {});
  const results = await ResultsFolder.create(s.out, s.runId);
  await results.writeScenario(o.resolvedRedacted);

  let broker: EmbeddedBroker | undefined;
  let source: Source | undefined;
  let engine: Engine | undefined;
  const monitor = new GeneratorMonitor();
  const aggregator = new Aggregator();
  const startedAt = new Date();
  let interrupted = false;
  let unreachable: FleetloadError | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let url = s.host ?? '';
  try {
    if (!s.host) {
      broker = await startEmbeddedBroker({ log });
      url = broker.url;
      log(`embedded broker (aedes, MQTT 3.1.1) on ${url}, pid ${broker.pid}`);
    }
    const engineStats = new Stats(clock.now());
    const consumerStats = new Stats(clock.now());
    const consumer = new Consumer({ stats: consumerStats, clock, runId: s.runId });
    if (s.consumer !== 'none') {
      source = sourceFromScenario(s, url, {
        now: () => clock.now(),
        log,
        onDisconnect: (reason) => consumerStats.error('consumer', 'disconnected', reason),
      });
      await source.open((d) => consumer.deliver(d));
      log(`consumer attached: ${source.description}`);
    }

    engine = new Engine({ scenario: s, url: new URL(url), stats: engineStats, clock });
    const eng0 = engine;
    const control: FleetControl = {
      maxDevices: s.devices,
      targetDevices: () => eng0.targetDevices,
      intervalMs: () => eng0.currentIntervalMs,
      setTargetDevices: (n) => {
        eng0.setTargetDevices(n);
        log(`fleet size set to ${eng0.targetDevices} devices`);
      },
      setIntervalMs: (ms) => {
        eng0.setIntervalMs(ms);
        log(`interval set to ${eng0.currentIntervalMs} ms`);
      },
    };
    for (const l of listeners) l.start?.({ runId: s.runId, url: redactUrl(url), dir: results.dir, control });
    engine.start();
    const eng = engine;
    const startMs = eng.startAt;
    const rampEndMs = startMs + (s.devices / s.spawnRate) * 1000;
    let phase: IntervalFigures['phase'] = 'ramp';

    const cut = (): void => {
      const now = clock.now();
      source?.markInterval();
      const merged = aggregator.merge([engineStats.snapshot(now), consumerStats.snapshot(now)]);
      const g = monitor.sample();
      const gaps = consumer.ledger.gaps;
      const h = merged.histograms;
      const row: TimeseriesRow = {
        time: new Date(now).toISOString(),
        devicesConnected: merged.devicesConnected,
        sent: merged.counters.sent,
        acked: merged.counters.acked,
        failed: merged.counters.failed,
        received: merged.counters.received,
        lost: gaps,
        e2eP50: percentileMs(h.e2e, 50),
        e2eP95: percentileMs(h.e2e, 95),
        e2eP99: percentileMs(h.e2e, 99),
        ackP50: percentileMs(h.publishAck, 50),
        ackP99: percentileMs(h.publishAck, 99),
      };
      // the last cut after the drain may be a sliver with nothing in it: no empty row for it
      if (merged.durationMs < 200 && merged.counters.sent + merged.counters.received === 0) return;
      results.appendRow(row);
      const record: IntervalRecord = {
        time: row.time,
        elapsedMs: Math.round(now - startMs),
        durationMs: Math.round(merged.durationMs),
        phase,
        devicesConnected: merged.devicesConnected,
        counters: { ...merged.counters },
        gaps,
        cpuPercent: g.cpuPercent,
        eventLoopLagP99Ms: g.eventLoopLagP99Ms,
        latency: {
          e2e: intervalLatency(h.e2e),
          publishAck: intervalLatency(h.publishAck),
          connect: intervalLatency(h.connect),
          scheduleLag: intervalLatency(h.scheduleLag),
        },
      };
      results.appendInterval(record);
      const figures: IntervalFigures = {
        elapsedMs: now - startMs,
        interval: merged,
        gaps,
        cpuPercent: g.cpuPercent,
        eventLoopLagP99Ms: g.eventLoopLagP99Ms,
        phase,
      };
      for (const l of listeners) l.interval?.(figures);
      // a source with checkpoints (Event Hubs) commits only what the sinks have now received
      const src = source;
      if (src) {
        void results
          .flush()
          .then(() => src.commit())
          .catch((e: unknown) =>
            log(`checkpoint skipped this interval: ${e instanceof Error ? e.message : String(e)}`),
          );
      }
    };

    // the run: ticks every second until run time is over, Ctrl-C, or nothing can connect
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        if (ticker) clearInterval(ticker);
        ticker = undefined;
        resolve();
      };
      o.interrupt?.then(() => {
        interrupted = true;
        finish();
      });
      ticker = setInterval(() => {
        const now = clock.now();
        if (now >= rampEndMs) phase = 'steady';
        cut();
        if (eng.everConnected === 0) {
          const failures = aggregator.total.connectFailures;
          if (failures >= Math.min(s.devices, 3) || now - startMs > 2 * s.connectTimeoutMs + 1000) {
            const first = aggregator.errors()[0];
            unreachable = new FleetloadError(
              'E_UNREACHABLE',
              `no device could connect to ${redactUrl(url)}` +
                (first
                  ? `: ${first.kind} ${first.code} (${first.reason})`
                  : `within ${s.connectTimeoutMs} ms`),
            );
            finish();
            return;
          }
        }
        if (now >= eng.endAt) finish();
      }, INTERVAL_MS);
      // with messagesPerDevice the run ends as soon as every device is done
      if (s.messagesPerDevice !== undefined) {
        const poll = setInterval(() => {
          if (eng.allDone || done) {
            clearInterval(poll);
            finish();
          }
        }, DRAIN_POLL_MS);
      }
    });

    // drain: no new messages; wait (bounded by grace) for acks and deliveries
    eng.stopPublishing();
    const publishEndMs = clock.now();
    phase = 'drain';
    if (!unreachable) {
      const graceEnd = clock.now() + (interrupted ? Math.min(s.graceMs, 2000) : s.graceMs);
      let nextCut = clock.now() + INTERVAL_MS;
      const expected = () =>
        aggregator.total.sent + engineStats.interval.sent - failedSoFar(aggregator, engineStats);
      while (clock.now() < graceEnd) {
        const acksPending = eng.inflight > 0;
        const deliveriesPending =
          s.consumer !== 'none' && uniqueReceived(aggregator, consumerStats) < expected();
        if (!acksPending && !deliveriesPending) break;
        await sleep(DRAIN_POLL_MS);
        if (clock.now() >= nextCut) {
          cut();
          nextCut += INTERVAL_MS;
        }
      }
    }
    cut();

    const expectedLast = new Map<string, number>();
    const lastSeqs = eng.lastSeqs();
    for (let i = 0; i < lastSeqs.length; i++) {
      const last = lastSeqs[i] as number;
      if (last > 0) expectedLast.set(eng.deviceId(i), last);
    }
    const lost = s.consumer === 'none' ? 0 : consumer.ledger.lost(expectedLast);
    eng.stop();
    await source?.close();
    source = undefined;

    const summary = buildSummary({
      s,
      url,
      startedAt,
      endedAt: new Date(),
      aggregator,
      monitor,
      lost,
      publishMs: Math.max(1, publishEndMs - startMs),
      interrupted,
      thresholds: o.thresholds,
    });
    if (unreachable) summary.passed = false;
    await o.sinks?.flush();
    const sinksPart = o.sinks?.summaryPart();
    if (sinksPart) summary.sinks = sinksPart;
    await results.writeHistograms(
      Object.fromEntries(Object.entries(aggregator.histograms).filter(([, h]) => h.totalCount > 0)),
    );
    await results.writeSummary(summary);
    await results.close();
    // after close(): the report reads the flushed timeseries.csv and intervals.jsonl; a failed report never
    // turns a finished run into an error
    const { writeReport } = await import('../report/html.js');
    await writeReport(results.dir).catch((e: unknown) =>
      log(`report.html not written: ${e instanceof Error ? e.message : String(e)}`),
    );
    for (const l of listeners) l.finish?.(summary);
    if (unreachable) throw unreachable;
    return { summary, dir: results.dir };
  } finally {
    if (ticker) clearInterval(ticker);
    engine?.stop();
    await source?.close().catch(() => {});
    monitor.stop();
    await results.close().catch(() => {});
    await broker?.stop();
  }
}

function failedSoFar(a: Aggregator, engineStats: Stats): number {
  return a.total.failed + engineStats.interval.failed;
}

function uniqueReceived(a: Aggregator, c: Stats): number {
  const t = a.total;
  const i = c.interval;
  return (
    t.received + i.received - (t.duplicated + i.duplicated) - (t.foreign + i.foreign) - (t.late + i.late)
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface SummaryInput {
  s: Scenario;
  url: string;
  startedAt: Date;
  endedAt: Date;
  aggregator: Aggregator;
  monitor: GeneratorMonitor;
  lost: number;
  publishMs: number;
  interrupted: boolean;
  thresholds: Threshold[];
}

export function buildSummary(i: SummaryInput): Summary {
  const t = i.aggregator.total;
  const h = i.aggregator.histograms;
  const scheduleLag = summarize(h.scheduleLag);
  const summary: Summary = {
    runId: i.s.runId,
    startedAt: i.startedAt.toISOString(),
    endedAt: i.endedAt.toISOString(),
    fleetloadVersion: FLEETLOAD_VERSION,
    ...(i.interrupted ? { interrupted: true } : {}),
    scenario: {
      host: redactUrl(i.url),
      devices: i.s.devices,
      spawnRate: i.s.spawnRate,
      runTimeMs: i.s.runTimeMs,
      intervalMs: i.s.intervalMs,
      qos: i.s.qos,
      mqttVersion: i.s.mqttVersion,
    },
    devices: {
      target: i.s.devices,
      connectedPeak: i.aggregator.connectedPeak,
      connectFailures: t.connectFailures,
      reconnects: t.reconnects,
    },
    messages: {
      scheduled: t.scheduled,
      sent: t.sent,
      acked: t.acked,
      failed: t.failed,
      unconfirmed: t.sent - t.acked - t.failed,
      received: t.received,
      lost: i.lost,
      duplicated: t.duplicated,
      reordered: t.reordered,
      foreign: t.foreign,
    },
    latency: {
      e2e: summarize(h.e2e),
      publishAck: summarize(h.publishAck),
      connect: summarize(h.connect),
      scheduleLag,
    },
    rates: {
      sentPerSec: Math.round((t.sent / i.publishMs) * 1000 * 10) / 10,
      receivedPerSec: Math.round((t.received / i.publishMs) * 1000 * 10) / 10,
    },
    generator: {
      cpuPercentPeak: i.monitor.cpuPercentPeak,
      eventLoopLagP99: i.monitor.eventLoopLagP99,
      saturated: i.monitor.saturated(scheduleLag.p99),
    },
    errors: i.aggregator.errors(),
    thresholds: [],
    passed: true,
  };
  summary.thresholds = evaluateThresholds(i.thresholds, summary);
  // an interrupted run did not complete: it never passes, whatever its thresholds say
  summary.passed = !i.interrupted && summary.thresholds.every((r) => r.passed);
  return summary;
}
