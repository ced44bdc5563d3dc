import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { Counter, Gauge, type Metric, Registry } from 'prom-client';
import { FleetloadError } from '../errors.js';
import type { IntervalFigures, Output } from '../run/output.js';
import type { Histogram } from '../stats/histogram.js';
import type { CounterName, LatencyName } from '../stats/stats.js';
import type { Summary } from '../stats/summary.js';
import { FLEETLOAD_VERSION } from '../version.js';
import {
  type AccessRules,
  answerRefusal,
  isLoopbackHost,
  isWildcardHost,
  refusal,
  refusalLogger,
} from '../web/guard.js';
import type { SinkRole } from './labels.js';

/**
 * The Prometheus sink: `/metrics` (prom-client registry) with the figures of the InfluxDB lines as `fleetload_*`
 * metrics, labelled `run_id`, `segment` and `role` (src/sinks/labels.ts): counters for the interval counts, gauges for devices and the
 * generator's health, and latencies as Prometheus histograms filled from the merged HDR histogram of each
 * interval (every recorded value with its count, so `_count` is exact and each bucket is exact to the HDR
 * resolution, 3 significant digits). After the run it stays up for a grace period so the last scrape sees the
 * final numbers.
 *
 * Access (src/web/guard.ts): a Host that is not this server's is a 403 (DNS rebinding); with a token
 * (--prometheus-token) every request needs `Authorization: Bearer <token>` (Prometheus: `authorization:
 * credentials:`), else 401. Off loopback a token is required unless --prometheus-public says otherwise: the
 * figures are read-only, but they are the run's. No token is generated: a scrape config must know it beforehand.
 */

/** Bucket upper bounds in seconds: 0.5 ms … 60 s, 1-2-5 steps. */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60,
];

/** every series: run_id, segment (`i/N`), role (producer | consumer | run): src/sinks/labels.ts */
const LABELS = ['run_id', 'segment', 'role'] as const;
type Labels = Record<(typeof LABELS)[number], string>;

/** counter name → interval counter it adds up */
export const COUNTER_METRICS: ReadonlyArray<readonly [string, CounterName, string]> = [
  ['fleetload_messages_scheduled_total', 'scheduled', 'send slots that fell due'],
  ['fleetload_messages_sent_total', 'sent', 'messages written to the broker'],
  ['fleetload_messages_acked_total', 'acked', 'messages acknowledged (QoS 0: written)'],
  ['fleetload_messages_failed_total', 'failed', 'messages refused by the broker or lost in flight'],
  ['fleetload_messages_skipped_total', 'skipped', 'due slots not sent (device offline, window full)'],
  ['fleetload_messages_received_total', 'received', 'messages the consumer received'],
  ['fleetload_messages_duplicated_total', 'duplicated', 'messages received more than once'],
  ['fleetload_messages_reordered_total', 'reordered', 'messages received after a higher seq'],
  ['fleetload_messages_foreign_total', 'foreign', 'messages without valid fleetload metadata'],
  ['fleetload_connect_attempts_total', 'connectAttempts', 'device connection attempts'],
  ['fleetload_connect_failures_total', 'connectFailures', 'device connection attempts that failed'],
  ['fleetload_reconnects_total', 'reconnects', 'device reconnects'],
  ['fleetload_bytes_sent_total', 'bytesSent', 'MQTT packet bytes the generator wrote (headers included)'],
  ['fleetload_bytes_received_total', 'bytesReceived', 'payload bytes the consumer received'],
];

/** histogram name → latency it shows */
export const HISTOGRAM_METRICS: ReadonlyArray<readonly [string, LatencyName, string]> = [
  ['fleetload_e2e_delay_seconds', 'e2e', 'end-to-end delay: arrival minus scheduled send time'],
  ['fleetload_publish_ack_seconds', 'publishAck', 'publish write to PUBACK/PUBCOMP'],
  ['fleetload_connect_seconds', 'connect', 'TCP connect to CONNACK'],
  ['fleetload_schedule_lag_seconds', 'scheduleLag', 'actual send minus scheduled send time'],
];

/**
 * Calls `fn(valueUs, count)` for every distinct recorded value (the lowest value of its HDR bucket) and
 * `medianUs` for the sum. Exact counts: iterates the recorded values, not percentiles.
 */
export function forEachRecorded(
  h: Histogram,
  fn: (lowestUs: number, medianUs: number, count: number) => void,
): void {
  if (h.totalCount === 0) return;
  if (h instanceof hdr.JsHistogram) {
    const it = h.recordedValuesIterator;
    it.reset();
    while (it.hasNext()) {
      const v = it.next();
      const at = v.valueIteratedTo;
      fn(h.lowestEquivalentValue(at), h.medianEquivalentValue(at), v.countAtValueIteratedTo);
    }
    return;
  }
  // another implementation (WebAssembly): walk the percentiles; counts stay exact, values coarser
  let seen = 0;
  for (let p = 1; p <= 100 && seen < h.totalCount; p += 1) {
    const target = Math.ceil((h.totalCount * p) / 100);
    const n = target - seen;
    if (n <= 0) continue;
    const v = h.getValueAtPercentile(p);
    fn(v, v, n);
    seen = target;
  }
}

/** A Prometheus histogram whose observations come in bulk (value, count) — prom-client's observe() takes one. */
export class BulkHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly bounds: readonly number[];
  private series = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
  }

  private entry(labels: Labels) {
    const key = LABELS.map((l) => labels[l]).join('\u0000');
    let e = this.series.get(key);
    if (!e) {
      e = { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, e);
    }
    return e;
  }

  /** Starts a series at zero, so it exists before the first observation. */
  zero(labels: Labels): void {
    this.entry(labels);
  }

  /** Adds `count` observations of `valueS` seconds (`sumS` each for the sum). */
  observeMany(labels: Labels, valueS: number, count: number, sumS = valueS): void {
    const e = this.entry(labels);
    const i = this.bounds.findIndex((b) => valueS <= b);
    if (i >= 0) e.buckets[i] = (e.buckets[i] as number) + count;
    e.sum += sumS * count;
    e.count += count;
  }

  /** Adds every value of an HDR histogram recorded in microseconds. */
  addHdr(labels: Labels, h: Histogram): void {
    forEachRecorded(h, (lowestUs, medianUs, count) =>
      this.observeMany(labels, lowestUs / 1e6, count, medianUs / 1e6),
    );
  }

  /** prom-client's collection interface (what Registry.metrics() reads). */
  async get() {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    for (const e of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((b, i) => {
        acc += e.buckets[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...e.labels, le: b }, value: acc });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...e.labels, le: '+Inf' }, value: e.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...e.labels }, value: e.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...e.labels }, value: e.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

export interface PrometheusSinkOptions {
  host: string;
  /** 0: a free port (tests) */
  port: number;
  runId: string;
  /** `segment` label: `i/N` */
  segment: string;
  role: SinkRole;
  /** how long /metrics stays up after the run (default 15 s) */
  graceMs?: number;
  log?: (line: string) => void;
  /** --prometheus-token: every request needs it as a bearer token */
  token?: string | undefined;
  /** --prometheus-public: off loopback without a token, on purpose */
  public?: boolean | undefined;
  /** --web-allowed-hosts: names the Host header may carry besides IP addresses and localhost */
  allowedHosts?: readonly string[] | undefined;
  /** which hosts count as loopback (default: 127.0.0.0/8, ::1, localhost); tests treat one as remote */
  isLoopback?: ((host: string) => boolean) | undefined;
}

export class PrometheusSink implements Output {
  readonly registry = new Registry();
  /** scrapes of /metrics answered */
  scrapes = 0;
  private readonly labels: Labels;
  private readonly counters: Array<readonly [Counter<string>, CounterName]> = [];
  private readonly histograms: Array<readonly [BulkHistogram, LatencyName]> = [];
  private readonly devices: Gauge<string>;
  private readonly lost: Gauge<string>;
  private readonly cpu: Gauge<string>;
  private readonly loopLag: Gauge<string>;
  private readonly finishedGauge: Gauge<string>;
  private readonly passed: Gauge<string>;
  private server: Server | undefined;
  private readonly o: PrometheusSinkOptions;
  port = 0;

  constructor(o: PrometheusSinkOptions) {
    this.o = o;
    this.labels = { run_id: o.runId, segment: o.segment, role: o.role };
    const labelNames = [...LABELS];
    const registers = [this.registry];
    for (const [name, key, help] of COUNTER_METRICS) {
      const c = new Counter({ name, help, labelNames, registers });
      c.inc(this.labels, 0);
      this.counters.push([c, key]);
    }
    const gauge = (name: string, help: string) => {
      const g = new Gauge({ name, help, labelNames, registers });
      g.set(this.labels, 0);
      return g;
    };
    this.devices = gauge('fleetload_devices_connected', 'devices connected at the end of the last interval');
    this.lost = gauge(
      'fleetload_messages_lost',
      'sequence holes seen so far (a late message may fill one); the final loss once the run has finished',
    );
    this.cpu = gauge('fleetload_generator_cpu_percent', 'CPU of the fleetload process, percent of one core');
    this.loopLag = gauge(
      'fleetload_generator_event_loop_lag_seconds',
      'event-loop delay p99 of the fleetload process over the last interval',
    );
    this.finishedGauge = gauge('fleetload_run_finished', '1 once the run has finished (final figures)');
    this.passed = gauge('fleetload_run_passed', '1 when the finished run passed its thresholds');
    const info = new Gauge({
      name: 'fleetload_run_info',
      help: 'the run and the fleetload version',
      labelNames: [...LABELS, 'version'],
      registers,
    });
    info.set({ ...this.labels, version: FLEETLOAD_VERSION }, 1);
    for (const [name, key, help] of HISTOGRAM_METRICS) {
      const h = new BulkHistogram(name, help, LATENCY_BUCKETS_S);
      h.zero(this.labels);
      this.registry.registerMetric(h as unknown as Metric);
      this.histograms.push([h, key]);
    }
  }

  interval(f: IntervalFigures): void {
    const m = f.interval;
    for (const [c, key] of this.counters) {
      const n = m.counters[key];
      if (n > 0) c.inc(this.labels, n);
    }
    for (const [h, key] of this.histograms) h.addHdr(this.labels, m.histograms[key]);
    this.devices.set(this.labels, m.devicesConnected);
    this.lost.set(this.labels, f.gaps);
    this.cpu.set(this.labels, f.cpuPercent);
    this.loopLag.set(this.labels, f.eventLoopLagP99Ms / 1000);
  }

  finish(summary: Summary): void {
    this.lost.set(this.labels, summary.messages.lost);
    this.passed.set(this.labels, summary.passed ? 1 : 0);
    this.finishedGauge.set(this.labels, 1);
  }

  /** The exposition text, as /metrics serves it. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get url(): string {
    const host = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    return `http://${host}:${this.port}/metrics`;
  }

  /** Listens on host:port; a busy port is an input error (E_USAGE), before anything of the run has started. */
  async listen(): Promise<void> {
    const rules = metricsAccess(this.o);
    const logRefusal = refusalLogger('prometheus', '--web-allowed-hosts', this.o.log ?? (() => {}));
    const server = createServer((req, res) => {
      const refused = refusal(req, rules);
      if (refused) {
        logRefusal(req, refused);
        answerRefusal(req, res, refused);
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.registry
          .metrics()
          .then((text) => {
            this.scrapes++;
            res.writeHead(200, { 'Content-Type': this.registry.contentType });
            res.end(req.method === 'HEAD' ? undefined : text);
          })
          .catch((e: unknown) => {
            res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e));
          });
        return;
      }
      if (path === '/') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`fleetload ${FLEETLOAD_VERSION} run ${this.o.runId}: metrics at /metrics\n`);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found; metrics are at /metrics\n');
    });
    server.keepAliveTimeout = 2000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(listenError(err, this.o.host, this.o.port)),
      );
      server.listen(this.o.port, this.o.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    const warning = offLoopbackWarning(this.o, this.port);
    if (warning) this.o.log?.(warning);
  }

  /**
   * Keeps /metrics up for the grace period (skipped when the run was interrupted, cut short when `cancel`
   * settles: a Ctrl-C during the wait), then closes the server.
   */
  async close(opts: { interrupted?: boolean; cancel?: Promise<unknown> } = {}): Promise<void> {
    const server = this.server;
    if (!server) return;
    const grace = this.o.graceMs ?? 15_000;
    if (!opts.interrupted && grace > 0) {
      this.o.log?.(
        `prometheus: keeping ${this.url} up for ${Math.round(grace / 100) / 10}s so the last scrape sees the final figures (Ctrl-C to skip)`,
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => {
          timer = setTimeout(r, grace);
        }),
        opts.cancel?.then(
          () => {},
          () => {},
        ) ?? new Promise<void>(() => {}),
      ]);
      clearTimeout(timer);
    }
    this.server = undefined;
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  }
}

/**
 * The access rules of /metrics; off loopback without a token or --prometheus-public: E_USAGE (exit 2), before
 * anything listens.
 */
export function metricsAccess(o: PrometheusSinkOptions): AccessRules {
  const loopback = (o.isLoopback ?? isLoopbackHost)(o.host);
  if (!loopback && o.token === undefined && !o.public) {
    throw new FleetloadError(
      'E_USAGE',
      `--prometheus-host ${o.host} is not loopback: /metrics there needs --prometheus-token T (or FLEETLOAD_PROMETHEUS_TOKEN; Prometheus sends it with authorization: credentials: T), or --prometheus-public to let anyone read the figures`,
    );
  }
  return {
    bindHost: o.host,
    allowedHosts: o.allowedHosts ?? [],
    token: o.token,
    allowFlag: '--web-allowed-hosts',
    tokenHint: 'send Authorization: Bearer <--prometheus-token> (Prometheus: authorization: credentials:)',
  };
}

/** The warning line when /metrics listens off loopback, or undefined on loopback. */
function offLoopbackWarning(o: PrometheusSinkOptions, port: number): string | undefined {
  if ((o.isLoopback ?? isLoopbackHost)(o.host)) return undefined;
  const where = `${isWildcardHost(o.host) ? 'every interface' : o.host}, port ${port}`;
  return o.token !== undefined
    ? `warning: prometheus /metrics listens on ${where} (not loopback): read-only figures of the run (no control, no secrets), for scrapers with the bearer token only; others get 401`
    : `warning: prometheus /metrics listens on ${where} (not loopback) without a token (--prometheus-public): anyone who reaches it can read the run's figures (read-only: no control, no secrets)`;
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new FleetloadError(
        'E_USAGE',
        `prometheus port ${port} on ${host} is in use; pass another --prometheus-port (0 for a free one)`,
        { cause: err },
      );
    case 'EACCES':
      return new FleetloadError(
        'E_USAGE',
        `no permission to listen on ${host}:${port}; use a --prometheus-port above 1023`,
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new FleetloadError(
        'E_USAGE',
        `cannot listen on --prometheus-host ${host}: not an address of this machine`,
        { cause: err },
      );
    default:
      return new FleetloadError('E_USAGE', `cannot serve /metrics on ${host}:${port}: ${err.message}`, {
        cause: err,
      });
  }
}
