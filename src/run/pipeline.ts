import type { Clock, TimerHandle } from '../clock.js';
import type { Consumer } from '../consumer/consumer.js';
import { redactUrl, type Source } from '../consumer/source.js';
import { FleetloadError } from '../errors.js';
import type { Segment } from '../scenario/plan.js';
import { Aggregator, type MergedInterval } from '../stats/aggregate.js';
import { EventLog, EventRules, type RunEvent, type StageSpan, stageEvents } from '../stats/events.js';
import type { Histogram } from '../stats/histogram.js';
import { intervalLatency, percentileMs } from '../stats/histogram.js';
import { GeneratorMonitor, type GeneratorSample } from '../stats/monitor.js';
import type { IntervalSnapshot, Stats } from '../stats/stats.js';
import type { IntervalRecord, SinksSummary, Summary, TimeseriesRow } from '../stats/summary.js';
import type { Threshold } from '../stats/thresholds.js';
import { currentRun } from './current.js';
import {
  deviceFiles,
  type FinalDevices,
  finalDevices,
  LIVE_DEVICES_EVERY_MS,
  liveDevices,
} from './devices.js';
import { GuardedOutputs } from './guard.js';
import type { FleetControl, IntervalFigures, Output, Phase } from './output.js';
import { buildRunRecord, encodeLastSeq } from './record.js';
import { buildSummary, type SummaryInput } from './summary.js';
import type { ValidityOptions } from './verdict.js';
import type { GeneratorHealth } from './worker-protocol.js';

/**
 * The run pipeline (DESIGN.md, "One run, as data flowing"): one interval loop for `run`, `consume` and (next)
 * local workers. Every second: cut a snapshot from each producer of snapshots → merge → record in the results
 * folder → notify the outputs → flush → checkpoint the source. Then the drain (bounded by the grace period), the
 * final cut, loss, summary.json with thresholds and the validity verdict, and the outputs' finish.
 *
 * Every timer comes from the injected clock, so the loop runs in fake time in tests.
 */

/**
 * The results folder as the pipeline records into it (src/sinks/results.ts implements it): rows and interval
 * records as they come, flushed every interval, then histograms, extra files and summary.json at the end.
 */
export interface ResultsStore {
  readonly dir: string;
  appendRow(row: TimeseriesRow): void;
  appendInterval(record: IntervalRecord): void;
  /** rejects when anything appended so far could not be written */
  flush(): Promise<void>;
  writeHistograms(map: Record<string, Histogram>): Promise<void>;
  writeFile(name: string, data: string | Buffer): Promise<void>;
  writeSummary(s: Summary): Promise<void>;
  close(): Promise<void>;
}

/** Time-series sinks (InfluxDB, Prometheus) as the end of the run needs them. */
export interface SinksPart {
  /** final flush, before summary.json is written */
  flush(): Promise<void>;
  /** summary.json `sinks`, or undefined without sinks */
  summaryPart(): SinksSummary | undefined;
}

/** The load side of a run: an in-process engine today, K child processes next. */
export interface GeneratorSide {
  readonly control: FleetControl;
  /** begins the ramp (at `atMs` when given and still ahead); sets startAt and endAt */
  start(atMs?: number): void;
  /** how long before its start instant it must be told (workers: the instant has to reach them) */
  readonly startLeadMs?: number;
  /** how far the actual start was from `atMs` (workers: the latest of theirs) */
  startSkewMs?(atMs: number): number;
  readonly startAt: number;
  /** when publishing ends (moves earlier on stopPublishing) */
  readonly endAt: number;
  /** devices that connected at least once */
  readonly everConnected: number;
  /** every device sent its fixed number of messages (messagesPerDevice) */
  readonly allDone: boolean;
  /** messages written and not yet acknowledged */
  readonly inflight: number;
  /** messages sent and failed so far (snapshots included or not) */
  sentSoFar(): { sent: number; failed: number };
  stopPublishing(): void;
  stop(): void;
  /** the last seq each device sent, for the ledger's loss */
  expectedLast(): Map<string, number>;
  /** connect failures by device (devices with none may be absent), for devices.csv */
  connectFailuresByDevice?(): Map<string, number>;
  snapshot(now: number): IntervalSnapshot;
  /** brings every counter in as of now (workers: a round trip to each); awaited before the final cut */
  sync?(): Promise<void>;
  /** parts of the fleet lost on the way (a worker that died), with why: the run is then incomplete */
  readonly failures?: readonly string[];
  /** the health of generator processes other than this one (workers), each judged by itself with the one rule */
  health?(): GeneratorHealth;
}

/** The measuring side: a source feeding a consumer (ledger + delay histograms) that counts into `stats`. */
export interface ConsumerSide {
  readonly source: Source;
  readonly consumer: Consumer;
  readonly stats: Stats;
}

export interface PipelineOptions {
  /** runId of summary.json */
  runId: string;
  /** creates the results folder (and writes scenario.yaml): called once the consumer attached, so a system
   * under test that cannot be reached leaves nothing on disk */
  openResults: () => Promise<ResultsStore>;
  /** summary.json's scenario block; its host is redacted on the way */
  scenario: Summary['scenario'];
  clock: Clock;
  outputs: readonly Output[];
  generator?: GeneratorSide;
  consumer?: ConsumerSide;
  /** consume: stop after this long (undefined: until interrupted); a generator ends at its own endAt */
  runTimeMs?: number;
  graceMs: number;
  /** devices this process (or its workers) runs: a segment's share; default: scenario.devices */
  devicesTarget?: number;
  /** --start-at: the instant the fleet starts, and what to do when this process is already late */
  start?: { atMs: number; late: 'fail' | 'join' };
  /** a generator with no device connected after 2 × this (+1 s) is unreachable (default 10 s) */
  connectTimeoutMs?: number;
  thresholds: readonly Threshold[];
  validity: ValidityOptions;
  /** resolves when the user asks to stop (Ctrl-C, the dashboard's Stop, a required sink that failed) */
  interrupt?: Promise<void>;
  /** ramp or steady at an elapsed time (from the plan); steady throughout without it */
  phaseAt?: (elapsedMs: number) => Exclude<Phase, 'drain'>;
  /** time-series sinks: flushed before summary.json, which then records what they did */
  sinks?: SinksPart;
  /** summary.json `clock`: whose clock the delays are in (called once the run has drained) */
  clockReport?: () => Promise<Summary['clock'] | undefined>;
  log?: (line: string) => void;
  /** the generator's health; a real one by default */
  monitor?: Pick<GeneratorMonitor, 'begin' | 'sample' | 'stop' | 'cpuPercentPeak' | 'eventLoopLagP99'>;
  /** run.json (src/run/record.ts): the segment this process runs (0/1 without one) */
  segment?: Segment;
  /** run.json: settings every segment of the run must share (summary.scenario is the base) */
  settings?: Record<string, unknown>;
  /** run.json: local worker processes of this run (`--workers K`) */
  workers?: number;
  /** run.json: the run whose messages a consumer counted (null: every run's); runId by default */
  messagesRunId?: string | null;
  /**
   * what happened to the run (src/stats/events.ts): made by the caller when its parts add events of their own
   * (the consumer's source), else here. The pipeline adds load changes, stages and what its rules find.
   */
  events?: EventLog;
  /** a staged run's stages: each one's start is an event */
  stages?: readonly StageSpan[];
}

export interface PipelineResult {
  summary: Summary;
  dir: string;
  /** results that could not be written (disk full…): the summary is still complete in memory */
  resultsError?: string;
  /** no device ever connected: the summary says so, and the command ends with this error (exit 3) */
  unreachable?: FleetloadError;
}

/** why the loop ended: run time over, Ctrl-C (or Stop), Ctrl-C of a consumer without run time, nobody
 * connects, every device sent its messages */
type Ending = 'time' | 'interrupt' | 'stopped' | 'unreachable' | 'done';

export const INTERVAL_MS = 1000;
const DRAIN_POLL_MS = 50;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** started this late after --start-at is still on time (process start-up jitter) */
const LATE_TOLERANCE_MS = 50;
const INTERRUPTED_GRACE_MS = 2000;
/** a cut shorter than this with nothing in it (the last sliver after the drain) writes no row */
const SLIVER_MS = 200;

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  return new Pipeline(o).run();
}

class Pipeline {
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private readonly outputs: GuardedOutputs;
  private readonly aggregator = new Aggregator();
  private readonly monitor: NonNullable<PipelineOptions['monitor']>;
  private startMs = 0;
  private phase: Phase = 'steady';
  private resultsError: string | undefined;
  private resultsFolder: ResultsStore | undefined;
  /** --start-at as it went: the instant, how far off the start was, and whether this process joined late */
  private start: { at: string; skewMs: number; joined?: true } | undefined;
  /** messages sent (and not failed) by the end of the previous interval */
  private sentBeforeLastCut = 0;
  /** the interval being recorded/flushed/checkpointed: cuts never overlap */
  private cutting: Promise<void> = Promise.resolve();
  /** time the load was offered or read, for run.json */
  private activeMs = 0;
  /** the per-device breakdown, once the run has drained */
  private devices: FinalDevices | undefined;
  private liveDevicesAt = Number.NEGATIVE_INFINITY;
  private liveDevicesEveryMs = LIVE_DEVICES_EVERY_MS;
  private readonly events: EventLog;
  private readonly rules: EventRules;
  /** elapsed time up to which stage starts were made events */
  private stagesUpToMs = -1;

  constructor(private readonly o: PipelineOptions) {
    this.clock = o.clock;
    this.log = o.log ?? (() => {});
    this.outputs = new GuardedOutputs(o.outputs, o.clock, this.log);
    this.monitor = o.monitor ?? new GeneratorMonitor();
    this.events = o.events ?? new EventLog(() => o.clock.now());
    this.rules = new EventRules(this.events, o.thresholds);
  }

  private get connectTimeoutMs(): number {
    return this.o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  private get results(): ResultsStore {
    if (!this.resultsFolder) throw new Error('the results folder is not open yet');
    return this.resultsFolder;
  }

  async run(): Promise<PipelineResult> {
    const o = this.o;
    const startedAt = new Date();
    try {
      if (o.consumer) {
        const c = o.consumer;
        await c.source.open((d) => c.consumer.deliver(d));
        this.log(`consumer attached: ${c.source.description}`);
      }
      // started after --start-at: refused before anything is written, unless the user said join
      const startAt = o.start?.atMs;
      const late = startAt === undefined ? 0 : this.clock.now() - startAt;
      if (startAt !== undefined && late > LATE_TOLERANCE_MS && o.start?.late !== 'join') {
        throw new FleetloadError(
          'E_USAGE',
          `started ${(late / 1000).toFixed(1)} s after --start-at ${new Date(startAt).toISOString()}: ` +
            'start the processes earlier, or pass --late-start join to start at once',
        );
      }
      this.resultsFolder = await o.openResults();
      currentRun.resultsDir = this.resultsFolder.dir;
      await this.outputs.start({
        runId: o.runId,
        url: redactUrl(o.scenario.host),
        dir: this.results.dir,
        ...(o.generator ? { control: this.recorded(o.generator.control) } : {}),
      });
      // everything is ready: the fleet starts at --start-at (a generator that needs a lead is told earlier)
      if (startAt !== undefined && startAt > this.clock.now()) {
        this.log(`ready; the fleet starts at ${new Date(startAt).toISOString()} (--start-at)`);
        await this.sleep(startAt - (o.generator?.startLeadMs ?? 0) - this.clock.now());
      }
      this.monitor.begin();
      o.generator?.start(startAt);
      this.startMs = o.generator?.startAt ?? this.clock.now();
      this.events.begin(this.startMs);
      o.consumer?.stats.beginAt(this.startMs);
      if (startAt !== undefined) {
        const skewMs =
          Math.round((o.generator?.startSkewMs?.(startAt) ?? this.startMs - startAt) * 1000) / 1000;
        this.start = {
          at: new Date(startAt).toISOString(),
          skewMs,
          ...(late > LATE_TOLERANCE_MS ? { joined: true } : {}),
        };
        this.log(
          `started at --start-at ${this.start.at} (skew ${skewMs} ms${this.start.joined ? ', joined late' : ''})`,
        );
      }
      this.phase = o.phaseAt?.(0) ?? 'steady';

      // ---- the run: an interval every second until the run time is over, a stop, or nothing can connect ----
      const ending = await this.loop();
      const activeEndMs = this.clock.now();

      // ---- drain: no new messages; wait, bounded by the grace period, for acks and deliveries ----
      o.generator?.stopPublishing();
      await o.generator?.sync?.();
      this.phase = 'drain';
      if (ending !== 'unreachable') await this.drain(ending === 'interrupt' || ending === 'stopped');
      await o.generator?.sync?.();
      this.cut();
      await this.cutting;

      // ---- the end: loss, summary, thresholds, verdict ----
      const lost = this.finalLoss();
      this.devices = this.finalDevices();
      o.generator?.stop();
      await o.consumer?.source.close();
      this.activeMs = Math.max(1, activeEndMs - this.startMs);
      const summary = buildSummary({
        runId: o.runId,
        startedAt,
        endedAt: new Date(),
        // a consumer that read until stopped ran for as long as it read
        devicesTarget: o.devicesTarget ?? o.scenario.devices,
        scenario:
          o.generator || o.scenario.runTimeMs > 0
            ? o.scenario
            : { ...o.scenario, runTimeMs: Math.round(activeEndMs - this.startMs) },
        aggregator: this.aggregator,
        generator: this.health(),
        lost,
        activeMs: Math.max(1, activeEndMs - this.startMs),
        interrupted: ending === 'interrupt',
        thresholds: o.thresholds,
        sides: { generator: o.generator !== undefined, consumer: o.consumer !== undefined },
        validity: o.validity,
        outputFailures: this.outputs.failures,
        lostParts: o.generator?.failures ?? [],
      });
      if (this.start) summary.start = this.start;
      if (this.devices) summary.devicesTop = this.devices.report.top;
      summary.events = this.events.all();
      if (this.events.dropped > 0) summary.eventsDropped = this.events.dropped;
      const clock = await o.clockReport?.();
      if (clock) summary.clock = clock;
      await o.sinks?.flush();
      const sinksPart = o.sinks?.summaryPart();
      if (sinksPart) summary.sinks = sinksPart;
      await this.writeResults(summary);
      await this.outputs.finish(summary);
      const unreachable = this.unreachable(summary);
      return {
        summary,
        ...(unreachable ? { unreachable } : {}),
        dir: this.results.dir,
        ...(this.resultsError ? { resultsError: this.resultsError } : {}),
      };
    } finally {
      o.generator?.stop();
      await o.consumer?.source.close().catch(() => {});
      this.monitor.stop();
      await this.resultsFolder?.close().catch(() => {});
      await this.outputs.close();
    }
  }

  /** Ticks every INTERVAL_MS on the clock until one of the endings; says which. */
  private loop(): Promise<Ending> {
    const o = this.o;
    const g = o.generator;
    const endAt = g ? g.endAt : o.runTimeMs !== undefined ? this.startMs + o.runTimeMs : undefined;
    return new Promise((resolve) => {
      const timers: TimerHandle[] = [];
      let done = false;
      const finish = (why: Ending) => {
        if (done) return;
        done = true;
        for (const t of timers) this.clock.clearTimeout(t);
        resolve(why);
      };
      // a consumer without a run time reads until stopped: that is its normal end, not an interruption
      void o.interrupt?.then(() => finish(endAt === undefined ? 'stopped' : 'interrupt'));
      if (endAt !== undefined) {
        // the last second of publishing is cut as such before the drain begins
        const last = () => {
          if (done) return;
          this.cut();
          finish('time');
        };
        timers.push(this.clock.setTimeout(last, endAt - this.clock.now()));
      }
      let k = 0;
      const tick = () => {
        if (done) return;
        k++;
        const now = this.clock.now();
        this.phase = this.o.phaseAt?.(now - this.startMs) ?? 'steady';
        this.cut();
        if (g && this.nobodyConnects(now)) return finish('unreachable');
        // the next tick on the grid start + k s; a late one (a slow flush) comes at once
        timers.push(this.clock.setTimeout(tick, Math.max(0, this.startMs + (k + 1) * INTERVAL_MS - now)));
      };
      timers.push(this.clock.setTimeout(tick, INTERVAL_MS));
      // with messagesPerDevice the run ends as soon as every device is done
      if (g && Number.isFinite(g.endAt)) {
        const poll = () => {
          if (done) return;
          if (g.allDone) return finish('done');
          timers.push(this.clock.setTimeout(poll, DRAIN_POLL_MS));
        };
        timers.push(this.clock.setTimeout(poll, DRAIN_POLL_MS));
      }
    });
  }

  private nobodyConnects(now: number): boolean {
    const g = this.o.generator;
    if (!g || g.everConnected > 0 || (this.o.devicesTarget ?? this.o.scenario.devices) === 0) return false;
    const failures = this.aggregator.total.connectFailures;
    return (
      failures >= Math.min(this.o.scenario.devices, 3) ||
      now - this.startMs > 2 * this.connectTimeoutMs + 1000
    );
  }

  /** Waits for acks and deliveries still due, at most the grace period (2 s after a stop); cuts on the way. */
  private async drain(interrupted: boolean): Promise<void> {
    const o = this.o;
    const graceMs = interrupted ? Math.min(o.graceMs, INTERRUPTED_GRACE_MS) : o.graceMs;
    const graceEnd = this.clock.now() + graceMs;
    let nextCut = this.clock.now() + INTERVAL_MS;
    while (this.clock.now() < graceEnd && this.pending()) {
      await this.sleep(Math.min(DRAIN_POLL_MS, graceEnd - this.clock.now()));
      if (this.clock.now() >= nextCut) {
        this.cut();
        nextCut += INTERVAL_MS;
      }
    }
  }

  /** Acks or deliveries still outstanding. A consumer alone cannot know: it reads the whole grace period. */
  private pending(): boolean {
    const { generator: g, consumer: c } = this.o;
    if (!g) return c !== undefined;
    if (g.inflight > 0) return true;
    if (!c) return false;
    const r = c.stats.total;
    const p = g.sentSoFar();
    return r.received - r.duplicated - r.foreign - r.late < p.sent - p.failed;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.clock.setTimeout(r, ms));
  }

  /**
   * One interval: snapshots cut in one synchronous step with the source's mark (so the mark covers exactly the
   * messages in the snapshot), merged and recorded; then, in order and never overlapping the previous interval's,
   * the outputs, the flush, and the checkpoint.
   */
  private cut(): void {
    const phase = this.phase;
    const previous = this.cutting;
    this.cutting = (async () => {
      await previous;
      const figures = this.take(phase);
      if (!figures) return;
      await this.outputs.interval(figures);
      const durable = await this.flushResults();
      // a source with checkpoints (Event Hubs) commits only what the results folder and the sinks now hold
      const c = this.o.consumer;
      if (durable && c) {
        await c.source
          .commit()
          .catch((e: unknown) => this.log(`checkpoint skipped this interval: ${message(e)}`));
      }
    })();
  }

  /**
   * The synchronous step of a cut: mark the source and snapshot every producer together, merge, record. Runs
   * only once the previous interval is committed, so a mark never runs ahead of what is durable (the view that
   * merge returns is reused, too). Undefined for an empty sliver (the last cut after the drain).
   */
  private take(phase: Phase): IntervalFigures | undefined {
    const now = this.clock.now();
    const { generator: g, consumer: c } = this.o;
    c?.source.markInterval();
    const snaps: IntervalSnapshot[] = [];
    if (g) snaps.push(g.snapshot(now));
    if (c) snaps.push(c.stats.snapshot(now));
    const merged = this.aggregator.merge(snaps);
    const own = this.monitor.sample();
    const theirs = g?.health?.();
    const health = theirs
      ? {
          cpuPercent: Math.max(own.cpuPercent, theirs.cpuPercent),
          eventLoopLagP99Ms: Math.max(own.eventLoopLagP99Ms, theirs.eventLoopLagP99Ms),
        }
      : own;
    if (merged.durationMs < SLIVER_MS && merged.counters.sent + merged.counters.received === 0) return;
    const gaps = c ? c.consumer.ledger.gaps : 0;
    const t = this.aggregator.total;
    const events = this.eventsOf(now, merged, gaps, health, theirs);
    const delivered = t.received - t.duplicated - t.foreign - t.late;
    const figures: IntervalFigures = {
      elapsedMs: now - this.startMs,
      interval: merged,
      gaps,
      ...(g && c ? { overdue: Math.max(0, this.sentBeforeLastCut - delivered) } : {}),
      ...(c ? { devicesSeen: c.consumer.ledger.deviceCount } : {}),
      ...this.liveDevices(now),
      cpuPercent: health.cpuPercent,
      eventLoopLagP99Ms: health.eventLoopLagP99Ms,
      phase,
      ...(events.length > 0 ? { events } : {}),
    };
    this.sentBeforeLastCut = t.sent - t.failed;
    this.record(now, merged, gaps, health, phase, events);
    return figures;
  }

  private record(
    now: number,
    merged: MergedInterval,
    gaps: number,
    health: GeneratorSample,
    phase: Phase,
    events: RunEvent[],
  ): void {
    if (this.resultsError) return;
    const h = merged.histograms;
    const time = new Date(now).toISOString();
    const row: TimeseriesRow = {
      time,
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
      bytesSent: merged.counters.bytesSent,
      bytesReceived: merged.counters.bytesReceived,
    };
    const record: IntervalRecord = {
      time,
      elapsedMs: Math.round(now - this.startMs),
      durationMs: Math.round(merged.durationMs),
      phase,
      devicesConnected: merged.devicesConnected,
      counters: { ...merged.counters },
      gaps,
      cpuPercent: health.cpuPercent,
      eventLoopLagP99Ms: health.eventLoopLagP99Ms,
      latency: {
        e2e: intervalLatency(h.e2e),
        e2eSend: intervalLatency(h.e2eSend),
        publishAck: intervalLatency(h.publishAck),
        connect: intervalLatency(h.connect),
        scheduleLag: intervalLatency(h.scheduleLag),
      },
      ...(events.length > 0 ? { events } : {}),
    };
    this.results.appendRow(row);
    this.results.appendInterval(record);
  }

  /**
   * The events of the interval ending now: what was added since the previous cut (load changes, the source's
   * disconnects), the stages that began, and what the rules find in the figures (src/stats/events.ts).
   */
  private eventsOf(
    now: number,
    merged: MergedInterval,
    gaps: number,
    health: GeneratorSample,
    workers?: GeneratorHealth,
  ): RunEvent[] {
    const elapsed = now - this.startMs;
    if (this.o.stages && elapsed > this.stagesUpToMs) {
      stageEvents(this.events, this.o.stages, this.startMs, this.stagesUpToMs, elapsed);
      this.stagesUpToMs = elapsed;
    }
    this.rules.observe({
      atMs: now,
      devicesConnected: merged.devicesConnected,
      counters: merged.counters,
      totals: this.aggregator.total,
      histograms: merged.histograms,
      gaps,
      cpuPercent: health.cpuPercent,
      eventLoopLagP99Ms: health.eventLoopLagP99Ms,
      ...(workers
        ? { workers: { saturatedNow: workers.saturatedNow === true, reason: workers.saturatedReason } }
        : {}),
    });
    return this.events.take();
  }

  /** The generator's load control as outputs get it: every change it makes is a `load` event. */
  private recorded(c: FleetControl): FleetControl {
    const events = this.events;
    // draining or done: the generator ignores changes, so they are no events
    const live = () => this.phase !== 'drain';
    return {
      get maxDevices() {
        return c.maxDevices;
      },
      targetDevices: () => c.targetDevices(),
      intervalMs: () => c.intervalMs(),
      setTargetDevices: (n) => {
        const from = c.targetDevices();
        c.setTargetDevices(n);
        const to = Math.max(0, Math.min(c.maxDevices, Math.floor(n)));
        if (to !== from && live()) {
          events.add('load', `${from} → ${to} devices (dashboard)`, {
            setting: 'devices',
            from,
            to,
            source: 'dashboard',
          });
        }
      },
      setIntervalMs: (ms) => {
        const from = c.intervalMs();
        c.setIntervalMs(ms);
        if (ms > 0 && ms !== from && live()) {
          events.add('load', `every ${from} → ${ms} ms (dashboard)`, {
            setting: 'intervalMs',
            from,
            to: ms,
            source: 'dashboard',
          });
        }
      },
    };
  }

  /** True when the interval is on disk; a failure is remembered (said once) and the run goes on. */
  private async flushResults(): Promise<boolean> {
    if (this.resultsError) return false;
    try {
      await this.results.flush();
      return true;
    } catch (e) {
      this.resultsError = message(e);
      this.log(`results folder: ${this.resultsError}; the run goes on, its summary is printed at the end`);
      return false;
    }
  }

  /** The per-device breakdown; a bug in it is logged and costs only the breakdown, never the run's results. */
  private finalDevices(): FinalDevices | undefined {
    try {
      return finalDevices(this.o.generator, this.o.consumer, this.o.scenario.intervalMs);
    } catch (e) {
      this.log(`per-device breakdown skipped: ${message(e)}`);
      return undefined;
    }
  }

  /** the live per-device top lists, every LIVE_DEVICES_EVERY_MS (an O(devices) scan) */
  private liveDevices(now: number): Pick<IntervalFigures, 'devices'> {
    if (now - this.liveDevicesAt < this.liveDevicesEveryMs) return {};
    this.liveDevicesAt = now;
    try {
      // only the scan is timed: `now` is the start of the cut, before its snapshots, merge and events
      const scanFrom = this.clock.now();
      const d = liveDevices(this.o.generator, this.o.consumer);
      // a huge fleet's scan is spread out: at most ~1% of the time goes to it
      this.liveDevicesEveryMs = Math.max(LIVE_DEVICES_EVERY_MS, 100 * (this.clock.now() - scanFrom));
      return d ? { devices: d } : {};
    } catch (e) {
      this.log(`live per-device lists skipped: ${message(e)}`);
      return {};
    }
  }

  private finalLoss(): number {
    const { generator: g, consumer: c } = this.o;
    if (!c) return 0;
    return g ? c.consumer.ledger.lost(g.expectedLast()) : c.consumer.ledger.finalize();
  }

  private async writeResults(summary: Summary): Promise<void> {
    const { consumer: c } = this.o;
    const results = this.results;
    if (this.resultsError) {
      // the folder says it is incomplete where it still can (a full disk may refuse even this)
      await results.writeFile('INCOMPLETE', `${this.resultsError}\n`).catch(() => {});
      return;
    }
    try {
      await results.writeHistograms(
        Object.fromEntries(Object.entries(this.aggregator.histograms).filter(([, h]) => h.totalCount > 0)),
      );
      if (c) {
        await results.writeFile('ledger.bin', c.consumer.ledger.serialize());
        await results.writeFile('consumer.json', `${JSON.stringify(this.consumerRecord(c), null, 2)}\n`);
      }
      if (this.devices)
        for (const [name, data] of deviceFiles(this.devices)) await results.writeFile(name, data);
      await this.writeRunRecord(summary);
      await results.writeSummary(summary);
      await results.close();
    } catch (e) {
      this.resultsError = message(e);
    }
  }

  /** run.json and, for a producer, lastseq.bin: what `fleetload merge` needs (src/run/record.ts). */
  private async writeRunRecord(summary: Summary): Promise<void> {
    const o = this.o;
    const record = buildRunRecord({
      runId: o.messagesRunId === undefined ? o.runId : o.messagesRunId,
      sides: { generator: o.generator !== undefined, consumer: o.consumer !== undefined },
      segment: o.segment,
      workers: o.workers,
      settings: o.settings,
      summary,
      counters: this.aggregator.total,
      connectedPeak: this.aggregator.connectedPeak,
      activeMs: this.activeMs,
      validity: o.validity,
    });
    if (o.generator) await this.results.writeFile('lastseq.bin', encodeLastSeq(o.generator.expectedLast()));
    await this.results.writeFile('run.json', `${JSON.stringify(record, null, 2)}\n`);
  }

  /** consumer.json: what the consumer saw beyond summary.json, and the checkpoints it committed. */
  private consumerRecord(c: ConsumerSide): Record<string, unknown> {
    const t = this.aggregator.total;
    const checkpoints = c.source.checkpoints?.();
    return {
      source: c.source.description,
      kind: c.source.kind,
      late: t.late,
      negativeDelay: t.negativeDelay,
      devices: c.consumer.ledger.deviceCount,
      foreignSamples: c.consumer.foreignSamples,
      ...(checkpoints ? { checkpoints } : {}),
    };
  }

  /**
   * This process's health, and the workers' when there are: the busiest figures; saturated by the one rule
   * (src/stats/events.ts SaturationRule) — this process's intervals as its events saw them, or any worker's own.
   */
  private health(): SummaryInput['generator'] {
    const m = this.monitor;
    const w = this.o.generator?.health?.();
    return {
      cpuPercentPeak: Math.max(m.cpuPercentPeak, w?.cpuPercentPeak ?? 0),
      eventLoopLagP99: Math.max(m.eventLoopLagP99, w?.eventLoopLagP99 ?? 0),
      saturated: this.rules.saturated || w?.saturated === true,
    };
  }

  /** No device ever connected: the system under test could not be reached (exit 3), unless accepted. */
  private unreachable(summary: Summary): FleetloadError | undefined {
    const g = this.o.generator;
    if (!g || g.everConnected > 0 || this.o.validity.accept.includes('connected')) return undefined;
    if ((this.o.devicesTarget ?? this.o.scenario.devices) === 0) return undefined; // a segment with no devices
    const first = this.aggregator.errors().find((e) => e.kind !== 'measurement' && e.kind !== 'output');
    return new FleetloadError(
      'E_UNREACHABLE',
      `no device could connect to ${summary.scenario.host}` +
        (first ? `: ${first.kind} ${first.code} (${first.reason})` : ` within ${this.connectTimeoutMs} ms`),
    );
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
