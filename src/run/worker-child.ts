import { type Clock, systemClock } from '../clock.js';
import { Engine } from '../engine/engine.js';
import { FleetloadError } from '../errors.js';
import { segmentShare } from '../scenario/plan.js';
import { GeneratorMonitor } from '../stats/monitor.js';
import { Stats } from '../stats/stats.js';
import { offsetClock } from '../timesync.js';
import { WorkerHealth } from './worker-health.js';
import { type FromWorker, SNAPSHOT_MS, type ToWorker, type WorkerState } from './worker-protocol.js';

/**
 * `fleetload worker`: one generator process of `fleetload run --workers K`, started by it over an IPC channel. It
 * runs the engine for its segment of the fleet and nothing else (no consumer, no outputs, no results folder): its
 * counters and histograms go to the parent every SNAPSHOT_MS, and it does what the parent says. Signals are the
 * parent's to handle (a Ctrl-C in the terminal reaches the whole process group): a worker stops when told, or at
 * once when the parent goes away — it never outlives it.
 */
export async function runWorker(): Promise<number> {
  const send = process.send?.bind(process);
  if (!send) {
    throw new FleetloadError(
      'E_USAGE',
      'fleetload worker is started by fleetload run --workers K, not by hand',
    );
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});
  return new Promise<number>((resolve, reject) => {
    const child = new WorkerChild((m) => {
      if (process.connected) send(m);
    }, resolve);
    const onMessage = (raw: unknown): void => {
      try {
        child.handle(raw as ToWorker);
      } catch (e) {
        child.post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
        reject(e);
      }
    };
    process.on('message', onMessage);
    child.onFinish = () => process.off('message', onMessage);
    // the parent went away (crashed, killed): stop at once, never outlive it
    process.once('disconnect', () => child.stop());
  });
}

class WorkerChild {
  private clock: Clock = systemClock;
  private readonly monitor = new GeneratorMonitor();
  /** its own saturation, by the run's one rule on its own intervals (one a second, like the parent's) */
  private readonly health = new WorkerHealth(this.monitor, () => this.clock.now());
  private engine: Engine | undefined;
  private stats: Stats | undefined;
  private pusher: NodeJS.Timeout | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  onFinish: () => void = () => {};

  constructor(
    readonly post: (m: FromWorker) => void,
    private readonly done: (code: number) => void,
  ) {}

  handle(m: ToWorker): void {
    switch (m.type) {
      case 'init':
        this.clock = offsetClock(systemClock, m.clockOffsetMs);
        this.stats = new Stats(this.clock.now());
        this.engine = new Engine({
          scenario: m.scenario,
          url: new URL(m.url),
          stats: this.stats,
          clock: this.clock,
          segment: m.segment,
        });
        this.post({ type: 'ready', maxDevices: this.engine.plan.count });
        return;
      case 'start':
        this.startAt(m.atMs);
        return;
      case 'target':
        if (this.engine) this.engine.setTargetDevices(segmentShare(this.engine.plan, m.devices));
        return;
      case 'interval':
        this.engine?.setIntervalMs(m.ms);
        return;
      case 'sync':
        this.push(m.id);
        return;
      case 'stopPublishing':
        this.stopPublishing();
        return;
      case 'stop':
        this.stop();
        return;
    }
  }

  private startAt(atMs: number): void {
    const e = this.engine;
    const s = this.stats;
    if (!e || !s) return;
    this.startTimer = setTimeout(
      () => {
        this.health.begin();
        e.start();
        s.beginAt(e.startAt);
      },
      Math.max(0, atMs - this.clock.now()),
    );
    this.pusher = setInterval(() => this.push(), SNAPSHOT_MS);
  }

  /** No seq is used after this: each device's last one goes to the parent (for the ledger's loss). */
  private stopPublishing(): void {
    const e = this.engine;
    if (!e) return;
    e.stopPublishing();
    const last = e.lastSeqs();
    const entries: Array<[string, number]> = [];
    for (let i = 0; i < last.length; i++) {
      const seq = last[i] as number;
      if (seq > 0) entries.push([e.deviceId(i), seq]);
    }
    const fails = e.connectFailuresPerDevice();
    const connectFailures: Array<[string, number]> = [];
    for (let i = 0; i < fails.length; i++) {
      if ((fails[i] as number) > 0) connectFailures.push([e.deviceId(i), fails[i] as number]);
    }
    this.post({ type: 'lastSeqs', entries, connectFailures });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.engine?.stop();
    this.push();
    this.monitor.stop();
    if (this.pusher) clearInterval(this.pusher);
    if (this.startTimer) clearTimeout(this.startTimer);
    this.onFinish();
    // the DISCONNECT packets go out before the process does
    setTimeout(() => this.done(0), 100);
  }

  private push(syncId?: number): void {
    const e = this.engine;
    const s = this.stats;
    if (!e || !s) return;
    s.count('bytesSent', e.takeBytesSent());
    this.health.addScheduleLag(s.hInterval.scheduleLag);
    this.post({
      type: 'snapshot',
      snap: s.snapshot(this.clock.now()),
      state: this.state(e, s),
      ...(syncId !== undefined ? { syncId } : {}),
    });
  }

  private state(e: Engine, s: Stats): WorkerState {
    return {
      everConnected: e.everConnected,
      inflight: e.inflight,
      allDone: e.allDone,
      sent: s.total.sent,
      failed: s.total.failed,
      targetDevices: e.targetDevices,
      intervalMs: e.currentIntervalMs,
      startedAt: e.startAt,
      health: this.health.health(),
    };
  }
}
