import type { Clock } from '../clock.js';
import type { FleetloadError } from '../errors.js';
import type { Output } from '../run/output.js';
import type { Scenario } from '../scenario/schema.js';
import type { SinksSummary } from '../stats/summary.js';
import type { InfluxSink } from './influx.js';
import { runRole, type SegmentRef, type SinkRole, segmentLabel } from './labels.js';
import type { PrometheusSink } from './prometheus.js';

/**
 * The time-series sinks a scenario asks for (InfluxDB, Prometheus), as run listeners, with what the run needs
 * around them: a `failure` to race with the run (only with influxRequired), the `sinks` part of summary.json, and
 * `close` (final InfluxDB flush; /metrics kept up for the grace period).
 */

export interface SinkContext {
  runId: string;
  /** `segment` tag/label `i/N`: this process's share of the fleet; absent: `0/1` (the whole run) */
  segment?: SegmentRef | undefined;
  /** `role` tag/label; default from the settings: --consumer none → producer, else run */
  role?: SinkRole | undefined;
  log?: (line: string) => void;
  clock?: Clock;
}

export interface Sinks {
  listeners: Output[];
  /**
   * Resolves with an E_UNREACHABLE error when influxRequired and InfluxDB did not take the first batch; never
   * resolves otherwise. Race it with Ctrl-C to stop the run early; `close` then throws the same error.
   */
  failure: Promise<FleetloadError>;
  /**
   * Final InfluxDB flush (bounded; a dead InfluxDB gets one last try): call it after the last interval, before
   * summary.json is written, so `summaryPart()` counts are final (only the summary line is written after).
   */
  flush(): Promise<void>;
  /** summary.json `sinks`, or undefined when no sink is configured */
  summaryPart(): SinksSummary | undefined;
  /**
   * Final InfluxDB flush, then /metrics stays up for prometheusGrace (skipped when interrupted; cut short when
   * `cancel` settles, e.g. Ctrl-C during the wait). Throws E_UNREACHABLE when influxRequired and the data did not
   * get through.
   */
  close(opts: { interrupted: boolean; cancel?: Promise<unknown> }): Promise<void>;
  /** where /metrics is served, when it is */
  prometheusUrl: string | undefined;
}

const never = new Promise<never>(() => {});

/**
 * What the sinks read of the settings: the run's scenario, or `fleetload consume`'s (whose `consumer` is its source
 * kind). The same schema fields serve both commands.
 */
export type SinkSettings = Pick<
  Scenario,
  | 'runId'
  | 'consumer'
  | 'influxUrl'
  | 'influxDb'
  | 'influxUser'
  | 'influxPassword'
  | 'influxOrg'
  | 'influxBucket'
  | 'influxToken'
  | 'influxRequired'
  | 'prometheusPort'
  | 'prometheusHost'
  | 'prometheusToken'
  | 'prometheusPublic'
  | 'prometheusGraceMs'
  | 'webAllowedHosts'
>;

/** Starts the sinks of a scenario. A busy Prometheus port throws E_USAGE before anything else has started. */
export async function createSinks(s: SinkSettings, ctx: SinkContext): Promise<Sinks> {
  const log = ctx.log ?? (() => {});
  const segment = segmentLabel(ctx.segment);
  const role = ctx.role ?? runRole(s.consumer);
  let influx: InfluxSink | undefined;
  let prometheus: PrometheusSink | undefined;
  // each sink's module (prom-client is a large one) loads only when the scenario asks for that sink
  if (s.prometheusPort !== undefined) {
    const { PrometheusSink } = await import('./prometheus.js');
    prometheus = new PrometheusSink({
      host: s.prometheusHost,
      port: s.prometheusPort,
      runId: s.runId,
      segment,
      role,
      graceMs: s.prometheusGraceMs,
      log,
      token: s.prometheusToken,
      public: s.prometheusPublic,
      allowedHosts: s.webAllowedHosts,
    });
    await prometheus.listen();
    log(`prometheus: metrics at ${prometheus.url}`);
  }
  if (s.influxUrl !== undefined) {
    const { InfluxSink } = await import('./influx.js');
    influx = new InfluxSink({
      url: s.influxUrl,
      db: s.influxDb,
      user: s.influxUser,
      password: s.influxPassword,
      org: s.influxOrg,
      bucket: s.influxBucket,
      token: s.influxToken,
      required: s.influxRequired,
      runId: s.runId,
      segment,
      role,
      source: s.consumer === 'none' ? undefined : s.consumer,
      log,
      ...(ctx.clock ? { clock: ctx.clock } : {}),
    });
    const target = s.influxDb !== undefined ? `database ${s.influxDb}` : `bucket ${s.influxBucket}`;
    log(`influxdb: writing to ${new URL(s.influxUrl).origin} ${target}`);
  }
  const listeners: Output[] = [];
  if (influx) listeners.push(influx);
  if (prometheus) listeners.push(prometheus);
  let closed = false;
  return {
    listeners,
    failure: influx?.failure ?? never,
    prometheusUrl: prometheus?.url,
    flush: async () => {
      await influx?.flush();
    },
    summaryPart: () => {
      if (!influx && !prometheus) return undefined;
      return {
        ...(influx ? { influx: influx.stats } : {}),
        ...(prometheus ? { prometheus: { scrapes: prometheus.scrapes } } : {}),
      };
    },
    close: async (opts) => {
      if (closed) return;
      closed = true;
      // both at once: the InfluxDB flush happens during the Prometheus grace period
      const results = await Promise.allSettled([
        influx?.close({ interrupted: opts.interrupted }),
        prometheus?.close(opts),
      ]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    },
  };
}
