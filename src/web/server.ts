import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { FleetloadError } from '../errors.js';
import { uplotAssets } from '../html/uplot.js';
import type { FleetControl, IntervalFigures, Output } from '../run/output.js';
import { redactSecrets } from '../scenario/load.js';
import type { Scenario } from '../scenario/schema.js';
import type { Summary } from '../stats/summary.js';
import { parseThreshold, thresholdUnitLabel } from '../stats/thresholds.js';
import { FLEETLOAD_VERSION } from '../version.js';
import { DashboardAccess } from './access.js';
import { type DashboardPoint, type FleetState, MAX_POINTS, PointSeries } from './figures.js';
import { crossOrigin, isWildcardHost } from './guard.js';
import { type BootData, renderPage } from './page.js';
import { pageHeaders } from './page-headers.js';
import { fleetLimits, parseFleetRequest, parseStopRequest, readBody } from './requests.js';

export { parseFleetRequest } from './requests.js';

/**
 * The live dashboard of `fleetload run` (without --headless): one self-contained page, a Server-Sent Events
 * stream of per-interval figures, the summary at the end, a Stop button and Load controls (fleet size, interval).
 * Read-only apart from Stop and Load; nothing the page needs comes from anywhere but this server, and no secret
 * is ever sent (the scenario goes through redactSecrets).
 *
 * Every request passes src/web/access.ts first: a Host that is not this server's is a 403 (DNS rebinding), and
 * off loopback (or with --web-token) a request without the token is a 401 — page, stream, API alike.
 *
 *   GET  /login?token=… the one-time link printed at start (or the token): sets the cookie, redirects to /
 *   GET  /              the page (uPlot inlined)
 *   GET  /api/stream    SSE: history so far, then one `data:` point per interval (each with the target devices
 *                       and interval of that moment), `event: fleet` when the load changes, `event: summary` at
 *                       the end
 *   GET  /api/summary   summary.json, 404 until the run has finished
 *   GET  /api/devices   {devices, final}: the per-device top lists so far (every 5 s), the summary's at the end
 *   POST /api/stop      asks the run to stop (onStop, once); JSON content type and same origin only → 202
 *   POST /api/fleet     {"devices"?: 0..max, "intervalMs"?: 1..run time} → applied through the run's FleetControl
 *                       → 200 {devices, intervalMs}; same protections as /api/stop; 409 when the run is not
 *                       running; 400 {error, field} naming the field and its range (src/web/requests.ts)
 */

export interface DashboardOptions {
  host: string;
  /** 0: a free port */
  port: number;
  runId: string;
  scenario: Scenario;
  /** the Stop button; called at most once */
  onStop: () => void;
  /** most points kept and replayed to a new tab (default 3600) */
  maxPoints?: number;
  /** SSE comment sent this often so proxies keep the stream open (default 15 s) */
  heartbeatMs?: number;
  /** where a bug in a request handler is reported (the run goes on) */
  log?: (line: string) => void;
  /** --web-token: required on every request; off loopback one is generated when not given */
  token?: string | undefined;
  /** --web-allowed-hosts: names the Host header may carry besides IP addresses and localhost */
  allowedHosts?: readonly string[] | undefined;
  /** which hosts count as loopback (default: 127.0.0.0/8, ::1, localhost); tests treat one as remote */
  isLoopback?: ((host: string) => boolean) | undefined;
}

export interface Dashboard {
  url: string;
  /** lines for the terminal at start: the warning when off loopback, the one-time login link */
  notices: string[];
  listener: Output;
  close(): Promise<void>;
}

/** A browser that reads slower than this much buffered output is dropped (it reconnects and catches up). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** close(): ended responses get this long to flush before every socket is cut. */
const CLOSE_FLUSH_MS = 100;

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const dashboard = new DashboardServer(opts);
  const url = await dashboard.listen();
  return {
    url,
    notices: dashboard.notices(url),
    listener: dashboard.listener(),
    close: () => dashboard.close(),
  };
}

/**
 * One dashboard: the HTTP server, the browsers watching (SSE clients), what the run has told it so far (meta,
 * points, summary, its FleetControl) and where the run stands (draining, stop requested, closed). The routes
 * are its methods; startDashboard hands out only the Dashboard face of it.
 */
class DashboardServer {
  private readonly boot: BootData;
  private readonly assets = uplotAssets();
  private readonly log: (line: string) => void;
  private readonly access: DashboardAccess;
  private readonly series: PointSeries;
  private readonly clients = new Set<ServerResponse>();
  private readonly server: Server;
  private heartbeat: NodeJS.Timeout | undefined;
  private meta: { runId: string; broker: string } | undefined;
  private summary: Summary | undefined;
  /** the running engine's load, from started() until the run drains */
  private control: FleetControl | undefined;
  private draining = false;
  /** the latest per-device top lists of the interval stream (IntervalFigures.devices) */
  private devicesTop: IntervalFigures['devices'];
  private stopRequested = false;
  private closed = false;

  constructor(private readonly opts: DashboardOptions) {
    this.boot = bootData(opts);
    this.log = opts.log ?? (() => {});
    this.access = new DashboardAccess({
      host: opts.host,
      token: opts.token,
      allowedHosts: opts.allowedHosts,
      isLoopback: opts.isLoopback,
      log: this.log,
    });
    this.series = new PointSeries(opts.maxPoints ?? MAX_POINTS);
    this.server = createServer((req, res) => {
      try {
        this.route(req, res);
      } catch (err) {
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
        else res.destroy();
        this.log(
          `dashboard: internal error on ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`,
        );
      }
    });
    // a bound that only applies to receiving requests; the SSE responses themselves may last the whole run
    this.server.requestTimeout = 10_000;
    this.server.headersTimeout = 10_000;
  }

  /** Starts the heartbeat and listens; resolves to the URL a browser opens (a usage error when it cannot bind). */
  async listen(): Promise<string> {
    const { server, opts } = this;
    const heartbeat = setInterval(() => this.broadcast(': keep-alive\n\n'), opts.heartbeatMs ?? 15_000);
    heartbeat.unref();
    this.heartbeat = heartbeat;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        clearInterval(heartbeat);
        reject(listenError(err, opts.host, opts.port));
      };
      server.once('error', onError);
      server.listen(opts.port, opts.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // after listening, a socket error must not crash the run
    server.on('error', () => {});
    server.on('clientError', (_err, socket) => socket.destroy());
    const port = (server.address() as AddressInfo).port;
    this.access.setPort(port);
    return `http://${urlHost(opts.host)}:${port}/`;
  }

  notices(url: string): string[] {
    return this.access.notices(url);
  }

  /** The run's Output: what the page shows comes from here. */
  listener(): Output {
    return {
      start: (info) => {
        this.meta = { runId: info.runId, broker: redactSecrets(info.url) };
        this.broadcast(event('meta', this.meta));
        this.control = info.control;
        if (this.control) this.broadcast(event('fleet', fleetEvent(this.control)));
      },
      interval: (f) => {
        if (f.phase === 'drain') this.draining = true;
        if (f.devices) this.devicesTop = f.devices;
        this.broadcast(pointEvent(this.series.add(f, this.fleetNow())));
      },
      finish: (s) => {
        this.summary = redactSecrets(s);
        this.broadcast(event('summary', this.summary));
      },
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearInterval(this.heartbeat);
    // the page keeps what it shows; without a summary it says the run ended anyway
    for (const res of this.clients) res.end(this.summary ? undefined : event('closed', {}));
    this.clients.clear();
    const server = this.server;
    return new Promise<void>((resolve) => {
      const cut = setTimeout(() => server.closeAllConnections(), CLOSE_FLUSH_MS);
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      server.closeIdleConnections();
    });
  }

  /** The load now: the engine's once the run started, the scenario's before. */
  private fleetNow(): FleetState {
    const { control, opts } = this;
    return control
      ? { targetDevices: control.targetDevices(), intervalMs: control.intervalMs() }
      : { targetDevices: opts.scenario.devices, intervalMs: opts.scenario.intervalMs };
  }

  private send(res: ServerResponse, chunk: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(chunk);
  }

  private broadcast(chunk: string): void {
    for (const res of this.clients) this.send(res, chunk);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    // Host (DNS rebinding: a page from evil.example resolved to this address still sends Host: evil.example),
    // then the token, then the login link
    if (this.access.handle(req, res, path)) return;
    switch (path) {
      case '/':
      case '/index.html':
        if (!allow(req, res, ['GET', 'HEAD'])) return;
        this.servePage(req, res);
        return;
      case '/api/stream':
        if (!allow(req, res, ['GET'])) return;
        this.serveStream(req, res);
        return;
      case '/api/summary':
        if (!allow(req, res, ['GET', 'HEAD'])) return;
        if (this.summary) reply(res, 200, this.summary);
        else reply(res, 404, { error: 'the run has not finished yet' });
        return;
      case '/api/devices':
        if (!allow(req, res, ['GET', 'HEAD'])) return;
        reply(res, 200, {
          devices: this.summary?.devicesTop ?? this.devicesTop ?? null,
          final: this.summary !== undefined,
        });
        return;
      case '/api/stop':
        if (!allow(req, res, ['POST'])) return;
        this.stop(req, res);
        return;
      case '/api/fleet':
        if (!allow(req, res, ['POST'])) return;
        this.fleet(req, res);
        return;
      default:
        reply(res, 404, { error: `no such path: ${method} ${path}` });
    }
  }

  private servePage(req: IncomingMessage, res: ServerResponse): void {
    const nonce = randomBytes(16).toString('base64');
    const body = renderPage({ boot: this.boot, nonce, uplotJs: this.assets.js, uplotCss: this.assets.css });
    res.writeHead(200, pageHeaders(body, nonce));
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private serveStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    req.socket.setNoDelay(true);
    if (this.closed) {
      res.end();
      return;
    }
    const { clients, series, meta, control, summary } = this;
    clients.add(res);
    res.on('close', () => clients.delete(res));
    // a reconnecting EventSource says what it already has; a new tab gets the whole history
    const last = Number(req.headers['last-event-id']);
    const after = Number.isInteger(last) && last > 0 && last <= series.lastSeq ? last : 0;
    let chunk = 'retry: 2000\n\n';
    if (meta) chunk += event('meta', meta);
    for (const p of series.since(after)) chunk += pointEvent(p);
    // after the history: the load may have changed since the last point
    if (control) chunk += event('fleet', fleetEvent(control));
    if (this.stopRequested && !summary) chunk += event('stopping', {});
    if (summary) chunk += event('summary', summary);
    this.send(res, chunk);
  }

  private stop(req: IncomingMessage, res: ServerResponse): void {
    if (!sameOriginJson(req, res, '/api/stop', 'stop the run')) return;
    this.guardedBody(req, res, (body) => {
      const parsed = parseStopRequest(body);
      if (parsed !== true) {
        reply(res, 400, parsed);
        return;
      }
      if (!this.stopRequested && !this.summary) {
        this.stopRequested = true;
        this.broadcast(event('stopping', {}));
        this.opts.onStop();
      }
      reply(res, 202, { stopping: true });
    });
  }

  private fleet(req: IncomingMessage, res: ServerResponse): void {
    if (!sameOriginJson(req, res, '/api/fleet', 'change the load')) return;
    this.guardedBody(req, res, (body) => {
      const ctl = this.control;
      const busy = !ctl
        ? 'the run has not started yet; the load can change once it runs'
        : this.summary || this.closed
          ? 'the run has finished; its load can no longer change'
          : this.stopRequested || this.draining
            ? 'the run is stopping; its load can no longer change'
            : undefined;
      if (busy || !ctl) {
        reply(res, 409, { error: busy });
        return;
      }
      const parsed = parseFleetRequest(body, fleetLimits(this.opts.scenario, ctl.maxDevices));
      if ('error' in parsed) {
        reply(res, 400, parsed);
        return;
      }
      try {
        if (parsed.devices !== undefined) ctl.setTargetDevices(parsed.devices);
        if (parsed.intervalMs !== undefined) ctl.setIntervalMs(parsed.intervalMs);
      } catch (err) {
        this.log(`dashboard: changing the load failed: ${err instanceof Error ? err.stack : String(err)}`);
        reply(res, 500, { error: 'the run could not change its load; see the terminal' });
        return;
      }
      const now = fleetEvent(ctl);
      this.broadcast(event('fleet', now));
      reply(res, 200, { devices: now.devices, intervalMs: now.intervalMs });
    });
  }

  /** The request body (bounded: 413 past MAX_BODY_BYTES), then `done` — guarded like a route. */
  private guardedBody(req: IncomingMessage, res: ServerResponse, done: (body: string) => void): void {
    readBody(req, res, done, (err) => {
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      this.log(
        `dashboard: internal error on ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`,
      );
    });
  }
}

/** What the page is rendered with: the run's settings, the (redacted) scenario, the thresholds' units. */
function bootData(opts: DashboardOptions): BootData {
  const redacted = redactSecrets(opts.scenario);
  return {
    runId: opts.runId,
    version: FLEETLOAD_VERSION,
    broker: redacted.host ?? 'embedded broker',
    devices: opts.scenario.devices,
    spawnRate: opts.scenario.spawnRate,
    runTimeMs: opts.scenario.runTimeMs,
    intervalMs: opts.scenario.intervalMs,
    qos: opts.scenario.qos,
    mqttVersion: opts.scenario.mqttVersion,
    consumer: opts.scenario.consumer,
    thresholdUnits: thresholdUnits(opts.scenario.thresholds),
    scenario: scenarioRows(redacted),
    maxPoints: opts.maxPoints ?? MAX_POINTS,
  };
}

/**
 * CSRF: a cross-site form or fetch cannot send application/json without a preflight we never answer, and a
 * browser always names the page's origin. False (and answered) when the request may not act.
 */
function sameOriginJson(req: IncomingMessage, res: ServerResponse, path: string, act: string): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    reply(res, 415, { error: `POST ${path} needs Content-Type: application/json` });
    return false;
  }
  if (crossOrigin(req)) {
    req.resume();
    reply(res, 403, { error: `cross-origin requests may not ${act}` });
    return false;
  }
  return true;
}

function allow(req: IncomingMessage, res: ServerResponse, methods: string[]): boolean {
  if (methods.includes(req.method ?? '')) return true;
  req.resume();
  res.setHeader('Allow', methods.join(', '));
  reply(res, 405, { error: `${req.method} is not allowed here; use ${methods.join(' or ')}` });
  return false;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** What `event: fleet` carries: the load now and the largest fleet the run may have. */
interface FleetEvent {
  devices: number;
  intervalMs: number;
  maxDevices: number;
}

function fleetEvent(c: FleetControl): FleetEvent {
  return { devices: c.targetDevices(), intervalMs: c.intervalMs(), maxDevices: c.maxDevices };
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function pointEvent(p: DashboardPoint): string {
  return `id: ${p.seq}\ndata: ${JSON.stringify(p)}\n\n`;
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new FleetloadError(
        'E_USAGE',
        `web port ${port} on ${host} is in use; pass --web-port 0 for a free port, another port, or --headless`,
        { cause: err },
      );
    case 'EACCES':
      return new FleetloadError(
        'E_USAGE',
        `web port ${port} on ${host} needs privileges; pass --web-port 0 for a free port, a port above 1023, or --headless`,
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FleetloadError(
        'E_USAGE',
        `web host ${host} is not an address of this machine; pass --web-host 127.0.0.1 (or 0.0.0.0 for every interface), or --headless`,
        { cause: err },
      );
    default:
      return err;
  }
}

/** How a browser reaches the bound host: brackets for IPv6, loopback for "every interface". */
function urlHost(host: string): string {
  if (isWildcardHost(host)) return host === '0.0.0.0' || host === '' ? '127.0.0.1' : '[::1]';
  return isIP(host) === 6 ? `[${host}]` : host;
}

function thresholdUnits(exprs: readonly string[]): Record<string, string> {
  const units: Record<string, string> = {};
  for (const e of exprs) {
    try {
      const t = parseThreshold(e);
      units[t.expr] = thresholdUnitLabel(t);
    } catch {
      // parsed already at the boundary; a bad one shows without a unit
    }
  }
  return units;
}

/** The (redacted) scenario as label/value rows for the page. */
function scenarioRows(s: Scenario): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(s)) {
    if (v === undefined) continue;
    rows.push([k, Array.isArray(v) ? v.join(', ') : String(v)]);
  }
  return rows;
}
