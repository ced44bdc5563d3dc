import { randomBytes } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname } from 'node:path';
import { FleetloadError } from '../errors.js';
import { redactSecrets } from '../redact.js';
import { COMPARE_RULE, compareRuns, comparisonJson, safeJson } from '../report/compare.js';
import { loadResults } from '../report/load.js';
import { FLEETLOAD_VERSION } from '../version.js';
import { DashboardAccess } from './access.js';
import { crossOrigin, isWildcardHost, replyJson } from './guard.js';
import { framedBySameOrigin, pageHeaders } from './page-headers.js';
import { formModel, type PreparedRun, prepareRun, runEnv } from './ui-form.js';
import { listRuns, readRun, runFilePath, withUnlisted } from './ui-history.js';
import { renderUiPage } from './ui-page.js';

/**
 * `fleetload ui`: one HTTP server for starting tests, watching them and looking back at them.
 *
 *   GET  /                      the UI page: New test form, Live view, History
 *   GET  /api/ui/state          the current (or last) run of this UI: state, exit code, verdict, output tail
 *   POST /api/ui/check          {values} → {problems, command, yaml}: the form checked by the CLI's loader
 *   POST /api/ui/start          {values} → 202 {run} | 400 {problems} | 409 {error} while a run goes
 *   POST /api/ui/stop           → 202 {run} (Ctrl-C to the run: drain, summary) | 409 when none goes
 *   GET  /api/ui/runs           History: every run of the results folder (src/web/ui-history.ts)
 *   GET  /api/ui/compare?a=&b=  `fleetload compare A B` of two runs of the folder, as JSON
 *   GET  /results/ID/FILE       a file of a run folder, by name from its listing (?download=1: as attachment)
 *   GET  /live                  the running test's dashboard page (src/web/server.ts, served by the run)
 *   anything else               handed to the running test's dashboard (its stream, Stop, Load, …), so what
 *                               the dashboard shows the UI shows; 404 when no run goes
 *
 * Access is the dashboard's (src/web/access.ts): the Host header is checked first, the token when there is one;
 * POSTs need JSON and the same origin. The runs themselves are somebody else's: `runs` starts, stops and
 * describes them (src/cli/ui.ts: child `fleetload run` processes whose dashboards answer on loopback).
 */

export type RunState = 'starting' | 'running' | 'stopping' | 'finished';

export interface UiRunStatus {
  runId: string;
  state: RunState;
  startedAt: string;
  /** the equivalent command, secrets as *** */
  command: string;
  exitCode: number | null;
  /** PASSED, FAILED, INVALID, or what the exit code says (INPUT ERROR, UNREACHABLE, CRASHED, ABORTED) */
  verdict: string | null;
  /** the last lines the run printed (redacted) */
  output: string[];
  /** the dashboard of the run answers (its live view can be shown) */
  live: boolean;
}

export interface UiRuns {
  /** starts a checked run, or says why not (one at a time) */
  start(run: PreparedRun): UiRunStatus | { busy: string };
  /** asks the running test to stop (gracefully); undefined when none goes */
  stop(): UiRunStatus | undefined;
  /** the current or last run */
  status(): UiRunStatus | undefined;
  /** the base URL of the running test's dashboard (loopback), when it answers */
  dashboard(): string | undefined;
  /** the finished runs this UI started, newest first: History keeps those that left no folder (exit 3, 2, …) */
  past?(): UiRunStatus[];
}

export interface UiServerOptions {
  host: string;
  port: number;
  /** --web-token; required by the caller off loopback */
  token?: string | undefined;
  allowedHosts?: readonly string[] | undefined;
  isLoopback?: ((host: string) => boolean) | undefined;
  /** the results folder (absolute) */
  out: string;
  cwd: string;
  env: Record<string, string | undefined>;
  runs: UiRuns;
  log?: (line: string) => void;
}

export interface UiServer {
  url: string;
  notices: string[];
  close(): Promise<void>;
}

/** Largest form accepted. */
const MAX_FORM_BYTES = 64 * 1024;

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const log = o.log ?? (() => {});
  const access = new DashboardAccess({
    host: o.host,
    token: o.token,
    allowedHosts: o.allowedHosts,
    isLoopback: o.isLoopback,
    log,
  });
  const handler = new UiHandler(o, access, log);
  const server = createServer((req, res) => {
    handler.route(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        replyJson(res, 500, { error: 'internal error; see the terminal of fleetload ui' });
      else res.destroy();
      log(
        `ui: internal error on ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`,
      );
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, o.host, o.port)));
    server.listen(o.port, o.host, () => resolve());
  });
  server.on('error', () => {});
  server.on('clientError', (_err, socket) => socket.destroy());
  const port = (server.address() as AddressInfo).port;
  access.setPort(port);
  const shown = isWildcardHost(o.host) ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `http://${shown}:${port}/`;
  return {
    url,
    notices: access
      .notices(url)
      .map((l) =>
        l
          .replace('can watch the run, change its load and stop it', 'can start, watch and stop load tests')
          .replace(/dashboard/g, 'ui'),
      ),
    close: () => closeServer(server),
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), 100);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  if (err.code === 'EADDRINUSE')
    return new FleetloadError(
      'E_USAGE',
      `web port ${port} on ${host} is in use; pass --web-port 0 for a free port, or another port`,
    );
  if (err.code === 'EACCES')
    return new FleetloadError(
      'E_USAGE',
      `web port ${port} on ${host} needs privileges; pass a port above 1023 or --web-port 0`,
    );
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN')
    return new FleetloadError(
      'E_USAGE',
      `web host ${host} is not an address of this machine; pass --web-host 127.0.0.1 (or 0.0.0.0 with --web-token)`,
    );
  return err;
}

class UiHandler {
  constructor(
    private readonly o: UiServerOptions,
    private readonly access: DashboardAccess,
    private readonly log: (line: string) => void,
  ) {}

  async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (this.access.handle(req, res, path)) return;
    if (path === '/' || path === '/index.html') {
      if (allow(req, res, ['GET', 'HEAD'])) this.page(req, res);
      return;
    }
    if (path.startsWith('/api/ui/')) {
      await this.api(req, res, path.slice('/api/ui/'.length), url.searchParams);
      return;
    }
    if (path.startsWith('/results/')) {
      if (allow(req, res, ['GET', 'HEAD'])) await this.file(req, res, path, url.searchParams.has('download'));
      return;
    }
    const base = this.o.runs.dashboard();
    const going = this.o.runs.status();
    if (!base && going && going.state !== 'finished') {
      // the run is there but its dashboard does not answer yet (starting) or any more (stopping)
      req.resume();
      replyJson(
        res,
        503,
        {
          error: `run ${going.runId} is ${going.state}: its dashboard does not answer ${going.state === 'starting' ? 'yet; try again in a moment' : 'any more'}`,
        },
        { 'Retry-After': '1' },
      );
      return;
    }
    if (!base) {
      req.resume();
      replyJson(res, 404, {
        error:
          path === '/live'
            ? 'no run is going: start one from the New test form'
            : `no such path: ${method} ${path} (and no run is going)`,
      });
      return;
    }
    if (method !== 'GET' && method !== 'HEAD' && crossOrigin(req)) {
      req.resume();
      replyJson(res, 403, { error: 'cross-origin requests may not act on the run' });
      return;
    }
    const target = path === '/live' ? `/${url.search}` : `${path}${url.search}`;
    proxy(req, res, base, target, path === '/live');
  }

  private async api(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    q: URLSearchParams,
  ): Promise<void> {
    const runs = this.o.runs;
    switch (name) {
      case 'state':
        if (allow(req, res, ['GET', 'HEAD'])) replyJson(res, 200, { run: runs.status() ?? null });
        return;
      case 'runs':
        if (allow(req, res, ['GET', 'HEAD']))
          replyJson(res, 200, {
            out: this.o.out,
            runs: withUnlisted(await listRuns(this.o.out), runs.past?.() ?? []),
          });
        return;
      case 'compare':
        if (allow(req, res, ['GET'])) await this.compare(res, q.get('a') ?? '', q.get('b') ?? '');
        return;
      case 'check':
      case 'start': {
        if (!allow(req, res, ['POST']) || !sameOriginJson(req, res)) return;
        const body = await readJson(req, res);
        if (body === undefined) return;
        const values = (body as { values?: unknown }).values;
        const prepared = this.prepare(values);
        if (name === 'check') {
          replyJson(
            res,
            200,
            'problems' in prepared
              ? prepared
              : {
                  problems: [],
                  warnings: prepared.warnings,
                  runId: prepared.runId,
                  command: prepared.command,
                  yaml: prepared.yaml,
                },
          );
          return;
        }
        if ('problems' in prepared) {
          replyJson(res, 400, { error: 'the scenario has problems', ...prepared });
          return;
        }
        const started = runs.start(prepared);
        if ('busy' in started) replyJson(res, 409, { error: started.busy });
        else {
          this.log(`ui: run ${started.runId} started: ${started.command}`);
          replyJson(res, 202, { run: started, command: prepared.command, yaml: prepared.yaml });
        }
        return;
      }
      case 'stop': {
        if (!allow(req, res, ['POST']) || !sameOriginJson(req, res)) return;
        req.resume();
        const stopped = runs.stop();
        if (stopped) replyJson(res, 202, { run: stopped });
        else replyJson(res, 409, { error: 'no run is going; nothing to stop' });
        return;
      }
      default:
        req.resume();
        replyJson(res, 404, { error: `no such path: /api/ui/${name}` });
    }
  }

  private prepare(values: unknown): ReturnType<typeof prepareRun> {
    const r = prepareRun(values, { env: this.o.env, cwd: this.o.cwd, out: this.o.out });
    // a problem may quote a value given: never a secret
    return 'problems' in r ? { ...r, problems: r.problems.map((p) => redactSecrets(p)) } : r;
  }

  private page(req: IncomingMessage, res: ServerResponse): void {
    const nonce = randomBytes(16).toString('base64');
    const body = renderUiPage({
      nonce,
      boot: {
        version: FLEETLOAD_VERSION,
        out: this.o.out,
        form: formModel(runEnv(this.o.env)),
        compareRule: COMPARE_RULE,
      },
    });
    res.writeHead(200, pageHeaders(body, nonce, { framesSameOrigin: true }));
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async compare(res: ServerResponse, a: string, b: string): Promise<void> {
    const [ra, rb] = await Promise.all([readRun(this.o.out, a), readRun(this.o.out, b)]);
    const missing = !ra ? a : !rb ? b : undefined;
    if (missing !== undefined || !ra || !rb) {
      replyJson(res, 404, {
        error: `no run ${JSON.stringify(String(missing).slice(0, 130))} in ${this.o.out}`,
      });
      return;
    }
    for (const r of [ra, rb]) {
      if (r.verdict === 'NO SUMMARY') {
        replyJson(res, 409, { error: `run ${r.runId} has no summary.json: compare needs finished runs` });
        return;
      }
    }
    const [da, db] = await Promise.all([
      loadResults(`${this.o.out}/${ra.runId}`),
      loadResults(`${this.o.out}/${rb.runId}`),
    ]);
    const text = safeJson(comparisonJson(compareRuns(da, db)));
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(text);
  }

  private async file(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    download: boolean,
  ): Promise<void> {
    const rest = path.slice('/results/'.length);
    const slash = rest.indexOf('/');
    let runId: string;
    let name: string;
    try {
      runId = decodeURIComponent(rest.slice(0, slash));
      name = decodeURIComponent(rest.slice(slash + 1));
    } catch {
      runId = '';
      name = '';
    }
    const file = slash > 0 ? await runFilePath(this.o.out, runId, name) : undefined;
    // a link swapped in after the listing is not followed
    const fd = file ? openNoFollow(file) : undefined;
    const size = fd === undefined ? undefined : regularFileSize(fd);
    if (fd === undefined || size === undefined) {
      if (fd !== undefined) closeSync(fd);
      replyJson(res, 404, { error: 'no such file in the results folder (names are listed in History)' });
      return;
    }
    const html = extname(name) === '.html';
    const inline = html && !download;
    const fileName = `${runId}-${basename(name)}`.replace(/[^A-Za-z0-9._-]/g, '_');
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream',
      'Content-Length': size,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Disposition': inline ? 'inline' : `attachment; filename="${fileName}"`,
      // the report runs in an opaque origin: its scripts draw charts and can reach nothing of the UI
      'Content-Security-Policy':
        "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:",
    });
    if (req.method === 'HEAD') {
      closeSync(fd);
      res.end();
      return;
    }
    createReadStream('', { fd, autoClose: true }).pipe(res);
  }
}

function openNoFollow(path: string): number | undefined {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
}

function regularFileSize(fd: number): number | undefined {
  const st = fstatSync(fd);
  return st.isFile() ? st.size : undefined;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.yaml': 'text/yaml; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
};

function allow(req: IncomingMessage, res: ServerResponse, methods: string[]): boolean {
  if (methods.includes(req.method ?? '')) return true;
  req.resume();
  replyJson(
    res,
    405,
    { error: `${req.method} is not allowed here; use ${methods.join(' or ')}` },
    { Allow: methods.join(', ') },
  );
  return false;
}

/** CSRF: JSON content type (a cross-site form cannot send it without a preflight) and the same origin. */
function sameOriginJson(req: IncomingMessage, res: ServerResponse): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    replyJson(res, 415, { error: `POST ${req.url} needs Content-Type: application/json` });
    return false;
  }
  if (crossOrigin(req)) {
    req.resume();
    replyJson(res, 403, { error: 'cross-origin requests may not start or stop runs' });
    return false;
  }
  return true;
}

/** The request's JSON body (at most MAX_FORM_BYTES); undefined when it was answered with a 400 or 413. */
function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_FORM_BYTES && !over) {
        over = true;
        res.once('finish', () => req.socket.destroy());
        replyJson(res, 413, { error: `the body is over ${MAX_FORM_BYTES} bytes` }, { Connection: 'close' });
        resolve(undefined);
      } else if (!over) chunks.push(b);
    });
    req.on('end', () => {
      if (over) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        const v: unknown = text.trim() === '' ? {} : JSON.parse(text);
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
          resolve(v);
          return;
        }
      } catch {
        // answered below
      }
      replyJson(res, 400, { error: 'the body must be a JSON object, e.g. {"values": {"devices": "10"}}' });
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

/**
 * Hands a request to the run's dashboard (loopback) and its answer back, streams included. The browser's
 * credentials and origin stay here (the UI checked them); the dashboard's page may be framed by the UI's page.
 */
function proxy(req: IncomingMessage, res: ServerResponse, base: string, path: string, page: boolean): void {
  const target = new URL(base);
  const headers: IncomingHttpHeaders = { ...req.headers, host: target.host };
  for (const h of ['cookie', 'authorization', 'origin', 'referer', 'sec-fetch-site', ...HOP_BY_HOP])
    delete headers[h];
  const up = request(
    { host: target.hostname, port: target.port, method: req.method, path, headers, agent: false },
    (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers)) {
        if (v !== undefined && !HOP_BY_HOP.includes(k)) out[k] = v;
      }
      if (page) framedBySameOrigin(out);
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    },
  );
  up.on('error', () => {
    if (!res.headersSent)
      replyJson(res, 502, { error: 'the run’s dashboard does not answer (the run may have ended)' });
    else res.destroy();
  });
  res.on('close', () => up.destroy());
  req.pipe(up);
}
