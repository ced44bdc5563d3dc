import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../clock.js';
import { FleetloadError } from '../errors.js';
import type { Scenario } from '../scenario/schema.js';
import { addSnapshot } from '../stats/aggregate.js';
import { encodeHistogram, type Histogram, newHistogram } from '../stats/histogram.js';
import {
  type Counters,
  type ErrorEntry,
  type IntervalSnapshot,
  LATENCIES,
  type LatencyName,
  zeroCounters,
} from '../stats/stats.js';
import type { FleetControl } from './output.js';
import type { GeneratorSide } from './pipeline.js';
import { mergeHealth } from './worker-health.js';
import type { FromWorker, GeneratorHealth, ToWorker, WorkerState } from './worker-protocol.js';

/**
 * `fleetload run --workers K`: K child processes (`fleetload worker`), each the engine of segment j/K, as the
 * pipeline's one generator. Their counters and HDR histograms arrive over IPC and are merged here into one snapshot
 * per interval, so every output sees the whole run live and the summary is exact (histograms are added, never
 * percentiles). A worker that dies ends the run, marked incomplete with its segment; Ctrl-C reaches the workers only
 * through the parent; none outlives it (each exits when its IPC channel closes).
 */

/** the fleet starts this long after `start()`, so every worker gets the instant before it comes */
const START_LEAD_MS = 300;
const READY_TIMEOUT_MS = 30_000;
const SYNC_TIMEOUT_MS = 5000;
const EXIT_TIMEOUT_MS = 5000;

interface Worker {
  segment: string;
  child: ChildProcess;
  state: WorkerState | undefined;
  devicesConnected: number;
  maxDevices: number;
  exited: boolean;
  /** the exit was asked for (stop) */
  stopping: boolean;
  lastSeqs: Array<[string, number]>;
  connectFailures: Array<[string, number]>;
}

export interface WorkerPoolOptions {
  scenario: Scenario;
  url: string;
  workers: number;
  clock: Clock;
  /** --clock-ref: the workers stamp ts in the reference's clock too */
  clockOffsetMs?: number;
  log: (line: string) => void;
  /** the CLI entry point the workers run (default: this installation's dist/cli/main.js) */
  cliPath?: string;
}

export class WorkerPool implements GeneratorSide {
  readonly control: FleetControl;
  /** resolves when a worker ends before it was told to */
  readonly failed: Promise<void>;
  /** the segments lost, with why */
  readonly failures: string[] = [];
  private readonly workers: Worker[] = [];
  private onFailure: () => void = () => {};
  private acc = zeroCounters();
  private readonly hist: Record<LatencyName, Histogram>;
  private readonly errors = new Map<string, ErrorEntry>();
  private lastCut: number;
  private syncSeq = 0;
  private readonly syncs = new Map<number, { left: Set<Worker>; done: () => void }>();
  startAt = 0;
  endAt = Number.POSITIVE_INFINITY;

  constructor(private readonly o: WorkerPoolOptions) {
    this.failed = new Promise((r) => {
      this.onFailure = r;
    });
    this.hist = {} as Record<LatencyName, Histogram>;
    for (const k of LATENCIES) this.hist[k] = newHistogram();
    this.lastCut = o.clock.now();
    this.control = {
      maxDevices: o.scenario.devices,
      targetDevices: () => this.sum((s) => s.targetDevices),
      intervalMs: () => this.workers.find((w) => w.state)?.state?.intervalMs ?? o.scenario.intervalMs,
      // a change is said once, as its `load` event (the pipeline records it only when something changed)
      setTargetDevices: (n) => {
        this.broadcast({ type: 'target', devices: Math.max(0, Math.min(o.scenario.devices, Math.floor(n))) });
      },
      setIntervalMs: (ms) => {
        this.broadcast({ type: 'interval', ms });
      },
    };
  }

  /** Starts the K workers and waits until each has its engine ready. */
  async open(): Promise<void> {
    const k = this.o.workers;
    const cli = this.o.cliPath ?? fileURLToPath(new URL('../cli/main.js', import.meta.url));
    const ready: Promise<void>[] = [];
    for (let j = 0; j < k; j++) {
      const child = fork(cli, ['worker'], {
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        execArgv: [],
      });
      const w: Worker = {
        segment: `${j}/${k}`,
        child,
        state: undefined,
        devicesConnected: 0,
        maxDevices: 0,
        exited: false,
        stopping: false,
        lastSeqs: [],
        connectFailures: [],
      };
      this.workers.push(w);
      ready.push(this.attach(w));
      this.send(w, {
        type: 'init',
        scenario: this.o.scenario,
        url: this.o.url,
        segment: { index: j, count: k },
        clockOffsetMs: this.o.clockOffsetMs ?? 0,
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FleetloadError('E_INTERNAL', `workers not ready within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([
        Promise.all(ready),
        timeout,
        this.failed.then(() => Promise.reject(this.lostError())),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private lostError(): FleetloadError {
    return new FleetloadError(
      'E_INTERNAL',
      `a worker failed before the run started: ${this.failures.join('; ')}`,
    );
  }

  /** Wires a worker's messages and exit; resolves when it is ready. */
  private attach(w: Worker): Promise<void> {
    return new Promise<void>((resolve) => {
      w.child.on('message', (raw: unknown) => {
        const m = raw as FromWorker;
        switch (m.type) {
          case 'ready':
            w.maxDevices = m.maxDevices;
            resolve();
            return;
          case 'snapshot':
            this.take(w, m.snap, m.state);
            if (m.syncId !== undefined) this.synced(m.syncId, w);
            return;
          case 'lastSeqs':
            w.lastSeqs = m.entries;
            w.connectFailures = m.connectFailures ?? [];
            return;
          case 'error':
            this.lose(w, `error: ${m.message}`);
            return;
        }
      });
      w.child.on('error', (e) => this.lose(w, e.message));
      w.child.once('exit', (code, signal) => {
        w.exited = true;
        for (const [id, s] of this.syncs) if (s.left.has(w)) this.synced(id, w);
        if (!w.stopping || (code !== 0 && code !== null) || signal !== null) {
          if (!w.stopping) this.lose(w, signal ? `exited on ${signal}` : `exited with code ${code}`);
        }
      });
    });
  }

  private lose(w: Worker, why: string): void {
    const line = `segment ${w.segment} (pid ${w.child.pid}): ${why}`;
    if (this.failures.some((f) => f.startsWith(`segment ${w.segment} `))) return;
    this.failures.push(line);
    this.o.log(`worker ${line}; the run ends, incomplete`);
    this.onFailure();
  }

  /** A worker's counters since its last push: added to what the next interval cut takes. */
  private take(w: Worker, snap: IntervalSnapshot, state: WorkerState): void {
    w.state = state;
    w.devicesConnected = snap.devicesConnected;
    addSnapshot(snap, this.acc, this.hist, this.errors);
  }

  private sum(f: (s: WorkerState) => number): number {
    let n = 0;
    for (const w of this.workers) if (w.state) n += f(w.state);
    return n;
  }

  private send(w: Worker, m: ToWorker): void {
    if (!w.exited && w.child.connected) w.child.send(m);
  }

  private broadcast(m: ToWorker): void {
    for (const w of this.workers) this.send(w, m);
  }

  readonly startLeadMs = START_LEAD_MS;

  start(atMs?: number): void {
    const now = this.o.clock.now();
    this.startAt = atMs !== undefined && atMs > now ? atMs : now + START_LEAD_MS;
    this.endAt = this.startAt + this.o.scenario.runTimeMs;
    this.lastCut = this.startAt;
    this.broadcast({ type: 'start', atMs: this.startAt });
  }

  /** the latest start among the workers, against the instant they were given */
  startSkewMs(atMs: number): number {
    let skew = this.startAt - atMs;
    for (const w of this.workers) if (w.state?.startedAt) skew = Math.max(skew, w.state.startedAt - atMs);
    return skew;
  }

  get everConnected(): number {
    return this.sum((s) => s.everConnected);
  }

  get allDone(): boolean {
    return this.workers.every((w) => w.state?.allDone === true);
  }

  get inflight(): number {
    return this.sum((s) => s.inflight);
  }

  sentSoFar(): { sent: number; failed: number } {
    return { sent: this.sum((s) => s.sent), failed: this.sum((s) => s.failed) };
  }

  stopPublishing(): void {
    this.endAt = Math.min(this.endAt, this.o.clock.now());
    this.broadcast({ type: 'stopPublishing' });
  }

  /** Every live worker's counters, as of now: a round trip to each (bounded). */
  sync(): Promise<void> {
    const left = new Set(this.workers.filter((w) => !w.exited));
    if (left.size === 0) return Promise.resolve();
    const id = ++this.syncSeq;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.syncs.delete(id);
        resolve();
      }, SYNC_TIMEOUT_MS);
      this.syncs.set(id, {
        left,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      for (const w of left) this.send(w, { type: 'sync', id });
    });
  }

  private synced(id: number, w: Worker): void {
    const s = this.syncs.get(id);
    if (!s) return;
    s.left.delete(w);
    if (s.left.size === 0) {
      this.syncs.delete(id);
      s.done();
    }
  }

  stop(): void {
    for (const w of this.workers) {
      if (w.exited || w.stopping) continue;
      w.stopping = true;
      this.send(w, { type: 'stop' });
    }
  }

  /** Waits for every worker to exit (SIGKILL after EXIT_TIMEOUT_MS): no process outlives the run. */
  async close(): Promise<void> {
    this.stop();
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exited) return resolve();
            const timer = setTimeout(() => w.child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
            w.child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }

  /** The workers' health together: the busiest worker's figures; saturated when any worker's own rule said so. */
  health(): GeneratorHealth {
    return mergeHealth(this.workers.map((w) => w.state?.health));
  }

  expectedLast(): Map<string, number> {
    const m = new Map<string, number>();
    for (const w of this.workers) for (const [id, seq] of w.lastSeqs) m.set(id, seq);
    return m;
  }

  connectFailuresByDevice(): Map<string, number> {
    const m = new Map<string, number>();
    for (const w of this.workers) for (const [id, n] of w.connectFailures) m.set(id, n);
    return m;
  }

  snapshot(now: number): IntervalSnapshot {
    const histograms: Partial<Record<LatencyName, string>> = {};
    for (const k of LATENCIES) {
      const h = this.hist[k];
      if (h.totalCount > 0) histograms[k] = encodeHistogram(h);
      h.reset();
    }
    let devicesConnected = 0;
    for (const w of this.workers) if (!w.exited) devicesConnected += w.devicesConnected;
    const snap: IntervalSnapshot = {
      t: now,
      durationMs: now - this.lastCut,
      devicesConnected,
      counters: this.acc as Counters,
      histograms,
      errors: [...this.errors.values()],
    };
    this.acc = zeroCounters();
    this.errors.clear();
    this.lastCut = now;
    return snap;
  }
}
