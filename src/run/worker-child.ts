import { systemClock } from '../clock.js';
import { Engine } from '../engine/engine.js';
import { FleetloadError } from '../errors.js';
import { segmentShare } from '../scenario/plan.js';
import { GeneratorMonitor } from '../stats/monitor.js';
import { Stats } from '../stats/stats.js';
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
  const post = (m: FromWorker): void => {
    if (process.connected) send(m);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});
  const clock = systemClock;
  return new Promise<number>((resolve, reject) => {
    let engine: Engine | undefined;
    let stats: Stats | undefined;
    let pusher: NodeJS.Timeout | undefined;
    let startTimer: NodeJS.Timeout | undefined;
    const monitor = new GeneratorMonitor();
    const state = (e: Engine, s: Stats): WorkerState => ({
      everConnected: e.everConnected,
      inflight: e.inflight,
      allDone: e.allDone,
      sent: s.total.sent,
      failed: s.total.failed,
      targetDevices: e.targetDevices,
      intervalMs: e.currentIntervalMs,
      startedAt: e.startAt,
      health: health(),
    });
    // sampled once a second, like the parent's own monitor (its saturation rule counts seconds)
    let sampledAt = 0;
    let sample = { cpuPercent: 0, eventLoopLagP99Ms: 0 };
    const health = () => {
      const now = clock.now();
      if (now - sampledAt >= 1000) {
        sample = monitor.sample();
        sampledAt = now;
      }
      return {
        ...sample,
        cpuPercentPeak: monitor.cpuPercentPeak,
        eventLoopLagP99: monitor.eventLoopLagP99,
        saturated: monitor.saturated(0),
      };
    };
    const push = (syncId?: number): void => {
      if (!engine || !stats) return;
      post({
        type: 'snapshot',
        snap: stats.snapshot(clock.now()),
        state: state(engine, stats),
        ...(syncId !== undefined ? { syncId } : {}),
      });
    };
    const finish = (code: number): void => {
      monitor.stop();
      if (pusher) clearInterval(pusher);
      if (startTimer) clearTimeout(startTimer);
      process.off('message', onMessage);
      // the DISCONNECT packets go out before the process does
      setTimeout(() => resolve(code), 100);
    };
    const onMessage = (raw: unknown): void => {
      const m = raw as ToWorker;
      try {
        switch (m.type) {
          case 'init': {
            stats = new Stats(clock.now());
            engine = new Engine({
              scenario: m.scenario,
              url: new URL(m.url),
              stats,
              clock,
              segment: m.segment,
            });
            post({ type: 'ready', maxDevices: engine.plan.count });
            return;
          }
          case 'start': {
            const e = engine;
            if (!e) return;
            startTimer = setTimeout(
              () => {
                monitor.begin();
                e.start();
              },
              Math.max(0, m.atMs - clock.now()),
            );
            pusher = setInterval(() => push(), SNAPSHOT_MS);
            return;
          }
          case 'target':
            if (engine) engine.setTargetDevices(segmentShare(engine.plan, m.devices));
            return;
          case 'interval':
            engine?.setIntervalMs(m.ms);
            return;
          case 'sync':
            push(m.id);
            return;
          case 'stopPublishing': {
            if (!engine) return;
            engine.stopPublishing();
            const last = engine.lastSeqs();
            const entries: Array<[string, number]> = [];
            for (let i = 0; i < last.length; i++) {
              const seq = last[i] as number;
              if (seq > 0) entries.push([engine.deviceId(i), seq]);
            }
            post({ type: 'lastSeqs', entries });
            return;
          }
          case 'stop':
            engine?.stop();
            push();
            finish(0);
            return;
        }
      } catch (e) {
        post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
        reject(e);
      }
    };
    process.on('message', onMessage);
    // the parent went away (crashed, killed): stop at once, never outlive it
    process.once('disconnect', () => {
      engine?.stop();
      finish(0);
    });
  });
}
