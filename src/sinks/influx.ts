import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { FleetloadError } from '../errors.js';
import type { IntervalFigures, Output } from '../run/output.js';
import type { Histogram } from '../stats/histogram.js';
import type { Summary } from '../stats/summary.js';
import type { SinkRole } from './labels.js';

/**
 * The InfluxDB sink (DESIGN.md "Time-series outputs"): one `fleetload_producer` and one `fleetload_consumer` line
 * per interval, and one `fleetload_summary` line when the run finishes, in InfluxDB line protocol with ms
 * timestamps. Written to InfluxDB 1.x (`/write?db=`) or 2.x/3.x (`/api/v2/write?org=&bucket=`, token).
 *
 * A slow or dead InfluxDB never slows the run: listener calls only format lines into a bounded buffer (the oldest
 * lines are dropped, and counted, when it is full); one request at a time goes out in the background, gzipped,
 * with a timeout, and is retried with exponential backoff on 5xx, 429 and network errors. A 4xx is not retried
 * (the batch is dropped and counted). With `required`, a first batch that cannot be written, or a final flush
 * that fails, is an E_UNREACHABLE error (`failure` resolves, `close` throws).
 *
 * The final flush (`flush` then `close`) is bounded in total by FINAL_FLUSH_MS (2.5 s; 1.5 s when interrupted;
 * `closeTimeoutMs` overrides): at the bound the request in flight is aborted and what is left is dropped and
 * counted. When the final flush cannot get its lines through, InfluxDB is not tried again: the summary line that
 * `finish` will add is counted dropped at once, so the `sinks.influx` figures in summary.json (read between
 * `flush` and `finish`) include it.
 */

const gzip = promisify(gzipCallback);

/** Total time allowed for the final flush, `flush` and `close` together (ms). */
export const FINAL_FLUSH_MS = 2500;
/** The same after Ctrl-C / SIGTERM. */
export const FINAL_FLUSH_INTERRUPTED_MS = 1500;

export interface InfluxTarget {
  /** `http(s)://host:8086` (a path prefix is kept: `https://proxy/influx`) */
  url: string;
  /** 1.x: database (optionally `db/retention-policy` is not parsed: use the db name) */
  db?: string | undefined;
  /** 1.x: basic auth */
  user?: string | undefined;
  password?: string | undefined;
  /** 2.x / 3.x */
  org?: string | undefined;
  bucket?: string | undefined;
  token?: string | undefined;
}

export interface InfluxSinkOptions extends InfluxTarget {
  runId: string;
  /** `segment` tag of every line: `i/N` (src/sinks/labels.ts) */
  segment: string;
  /** `role` tag of every line; a consumer writes no `fleetload_producer` lines */
  role: SinkRole;
  /** `source` tag of the consumer lines (mqtt, nats, …); undefined: no consumer lines (consumer none) */
  source: string | undefined;
  /** a first batch that cannot be written, or a failed final flush, fails the run (E_UNREACHABLE) */
  required?: boolean;
  clock?: Clock;
  fetch?: typeof fetch;
  log?: (line: string) => void;
  /** lines per request (default 5000) */
  batchLines?: number;
  /** lines kept while InfluxDB does not take them; beyond, the oldest are dropped (default 10000) */
  maxBufferLines?: number;
  /** per request (default 5000 ms) */
  timeoutMs?: number;
  /** backoff: base × 2^(attempt-1), capped, with jitter (defaults 500 ms, 30 s) */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** 0..1, for the jitter (default Math.random) */
  random?: () => number;
  /** gzip request bodies (default true) */
  gzip?: boolean;
  /** with `required`: attempts at the first batch before the run fails (default 3) */
  requiredAttempts?: number;
  /** flush() and close() together: time allowed for the final flush (default FINAL_FLUSH_MS, 2.5 s; 1.5 s when
   * interrupted); the request in flight at the bound is aborted */
  closeTimeoutMs?: number;
}

export interface InfluxStats {
  /** lines InfluxDB accepted (2xx) */
  written: number;
  /** lines discarded: buffer full (oldest first), a 4xx answer, or still unsent when the run closed (after a
   * failed final flush, including the summary line not yet formatted) */
  dropped: number;
  /** write requests that failed (each failed attempt: timeout, network error, non-2xx) */
  failedBatches: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Line protocol

/** Measurement names: commas and spaces are escaped. */
export function escapeMeasurement(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replace(/([, ])/g, '\\$1');
}

/** Tag keys and values, field keys: commas, equals signs and spaces are escaped; line breaks become spaces. */
export function escapeTag(s: string): string {
  return (
    s
      .replace(/[\r\n]+/g, ' ')
      .replace(/([,= ])/g, '\\$1')
      // a trailing backslash would escape the separator after it
      .replace(/\\$/, '\\\\')
  );
}

type FieldValue = { int: number } | { float: number };

function tagSet(tags: ReadonlyArray<readonly [string, string | undefined]>): string {
  let out = '';
  // tags sorted by key, as InfluxDB recommends; empty values are not allowed in line protocol
  for (const [k, v] of [...tags].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (v === undefined || v === '') continue;
    out += `,${escapeTag(k)}=${escapeTag(v)}`;
  }
  return out;
}

function fieldSet(fields: ReadonlyArray<readonly [string, FieldValue | undefined]>): string {
  const parts: string[] = [];
  for (const [k, v] of fields) {
    if (v === undefined) continue;
    if ('int' in v) {
      if (Number.isFinite(v.int)) parts.push(`${escapeTag(k)}=${Math.round(v.int)}i`);
    } else if (Number.isFinite(v.float)) {
      parts.push(`${escapeTag(k)}=${Math.round(v.float * 1000) / 1000}`);
    }
  }
  return parts.join(',');
}

/** One line, or undefined when it has no field (line protocol needs at least one). */
export function formatLine(
  measurement: string,
  tags: ReadonlyArray<readonly [string, string | undefined]>,
  fields: ReadonlyArray<readonly [string, FieldValue | undefined]>,
  timeMs: number,
): string | undefined {
  const f = fieldSet(fields);
  if (f === '') return undefined;
  return `${escapeMeasurement(measurement)}${tagSet(tags)} ${f} ${Math.round(timeMs)}`;
}

const int = (n: number): FieldValue => ({ int: n });
const float = (n: number): FieldValue => ({ float: n });
/** a percentile in ms, or no field when the histogram is empty (0 would read as "0 ms") */
const pct = (h: Histogram, p: number): FieldValue | undefined =>
  h.totalCount > 0 ? float(h.getValueAtPercentile(p) / 1000) : undefined;
const maxOf = (h: Histogram): FieldValue | undefined =>
  h.totalCount > 0 ? float(h.maxValue / 1000) : undefined;

export interface LineTags {
  runId: string;
  /** `i/N` */
  segment: string;
  /** producer | consumer | run; `consumer`: no `fleetload_producer` line (a consume process sends nothing) */
  role: SinkRole;
  /** consumer source; undefined: no consumer line */
  source: string | undefined;
}

/**
 * The lines of one interval, each tagged run_id, segment and role: `fleetload_producer` (DESIGN.md fields, then skipped, connect_failures, reconnects,
 * connect_p99, cpu_percent, event_loop_lag_p99, bytes_sent) and `fleetload_consumer` (`lost` = holes seen so far, then
 * foreign, bytes_received). Latency fields are in ms and left out when nothing was measured in the interval.
 */
export function intervalLines(f: IntervalFigures, tags: LineTags): string[] {
  const m = f.interval;
  const c = m.counters;
  const h = m.histograms;
  const t = m.t;
  const lines: string[] = [];
  const common = [
    ['run_id', tags.runId],
    ['segment', tags.segment],
    ['role', tags.role],
  ] as const;
  const producer =
    tags.role === 'consumer'
      ? undefined
      : formatLine(
          'fleetload_producer',
          common,
          [
            ['devices_connected', int(m.devicesConnected)],
            ['sent', int(c.sent)],
            ['acked', int(c.acked)],
            ['failed', int(c.failed)],
            ['scheduled', int(c.scheduled)],
            ['skipped', int(c.skipped)],
            ['connect_failures', int(c.connectFailures)],
            ['reconnects', int(c.reconnects)],
            ['ack_p50', pct(h.publishAck, 50)],
            ['ack_p99', pct(h.publishAck, 99)],
            ['lag_p99', pct(h.scheduleLag, 99)],
            ['connect_p99', pct(h.connect, 99)],
            ['cpu_percent', float(f.cpuPercent)],
            ['event_loop_lag_p99', float(f.eventLoopLagP99Ms)],
            ['bytes_sent', int(c.bytesSent)],
          ],
          t,
        );
  if (producer) lines.push(producer);
  if (tags.source !== undefined) {
    const consumer = formatLine(
      'fleetload_consumer',
      [...common, ['source', tags.source]],
      [
        ['received', int(c.received)],
        ['lost', int(f.gaps)],
        ['duplicated', int(c.duplicated)],
        ['reordered', int(c.reordered)],
        ['foreign', int(c.foreign)],
        ['e2e_p50', pct(h.e2e, 50)],
        ['e2e_p90', pct(h.e2e, 90)],
        ['e2e_p95', pct(h.e2e, 95)],
        ['e2e_p99', pct(h.e2e, 99)],
        ['e2e_max', maxOf(h.e2e)],
        ['bytes_received', int(c.bytesReceived)],
      ],
      t,
    );
    if (consumer) lines.push(consumer);
  }
  return lines;
}

/** `fleetload_summary`: the final figures of the run (final `lost`, pass/fail), at the end time. */
export function summaryLine(
  s: Summary,
  tags: Pick<LineTags, 'runId' | 'segment' | 'role'>,
): string | undefined {
  const m = s.messages;
  const e = s.latency.e2e;
  const a = s.latency.publishAck;
  return formatLine(
    'fleetload_summary',
    [
      ['run_id', tags.runId],
      ['segment', tags.segment],
      ['role', tags.role],
    ],
    [
      ['scheduled', int(m.scheduled)],
      ['sent', int(m.sent)],
      ['acked', int(m.acked)],
      ['failed', int(m.failed)],
      ['unconfirmed', int(m.unconfirmed)],
      ['received', int(m.received)],
      ['lost', int(m.lost)],
      ['duplicated', int(m.duplicated)],
      ['reordered', int(m.reordered)],
      ['foreign', int(m.foreign)],
      ['connected_peak', int(s.devices.connectedPeak)],
      ['connect_failures', int(s.devices.connectFailures)],
      ['e2e_p50', e.count > 0 ? float(e.p50) : undefined],
      ['e2e_p99', e.count > 0 ? float(e.p99) : undefined],
      ['ack_p99', a.count > 0 ? float(a.p99) : undefined],
      ['passed', { int: s.passed ? 1 : 0 }],
    ],
    Date.parse(s.endedAt),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Writer

/** The write URL and headers for a target (1.x when `db` is set, else 2.x/3.x). */
export function writeRequest(t: InfluxTarget): { url: string; headers: Record<string, string> } {
  const base = new URL(t.url);
  const prefix = base.pathname.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
  if (t.db !== undefined) {
    const u = new URL(`${prefix}/write`, base);
    u.searchParams.set('db', t.db);
    u.searchParams.set('precision', 'ms');
    if (t.user !== undefined || t.password !== undefined) {
      headers.Authorization = `Basic ${Buffer.from(`${t.user ?? ''}:${t.password ?? ''}`).toString('base64')}`;
    }
    return { url: u.toString(), headers };
  }
  const u = new URL(`${prefix}/api/v2/write`, base);
  u.searchParams.set('org', t.org ?? '');
  u.searchParams.set('bucket', t.bucket ?? '');
  u.searchParams.set('precision', 'ms');
  if (t.token !== undefined) headers.Authorization = `Token ${t.token}`;
  return { url: u.toString(), headers };
}

/** `cutShort`: aborted by the final flush's bound (not an answer from InfluxDB) */
type Outcome = { ok: true } | { ok: false; retry: boolean; why: string; cutShort?: boolean };

export class InfluxSink implements Output {
  private readonly o: InfluxSinkOptions;
  private readonly clock: Clock;
  private readonly doFetch: typeof fetch;
  private readonly log: (line: string) => void;
  private readonly request: { url: string; headers: Record<string, string> };
  /** host and path, without query or credentials, for messages */
  private readonly where: string;
  private readonly batchLines: number;
  private readonly maxBufferLines: number;
  private readonly timeoutMs: number;
  private buffer: string[] = [];
  private inFlight: Promise<void> | undefined;
  private retryTimer: TimerHandle | undefined;
  private attempt = 0;
  private firstWritten = false;
  private closing = false;
  private lastLogged = '';
  private readonly counts: InfluxStats = { written: 0, dropped: 0, failedBatches: 0 };
  private failureError: FleetloadError | undefined;
  private finalProblem: string | undefined;
  /** time left for the final flush (set by the first flush, spent by each) */
  private finalLeftMs: number | undefined;
  /** the final flush could not get its lines through: no more attempts, later lines dropped and counted */
  private gaveUp = false;
  private finished = false;
  /** the summary line was counted dropped before `finish` (see `flush`) */
  private summaryPrecounted = false;
  /** aborts the request in flight (the final flush's bound) */
  private abortCurrent: (() => void) | undefined;
  private resolveFailure: (e: FleetloadError) => void = () => {};
  /** resolves (never rejects) when `required` and the first batch could not be written */
  readonly failure: Promise<FleetloadError>;

  constructor(o: InfluxSinkOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.doFetch = o.fetch ?? fetch;
    this.log = o.log ?? (() => {});
    this.request = writeRequest(o);
    const u = new URL(o.url);
    this.where = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    this.batchLines = o.batchLines ?? 5000;
    this.maxBufferLines = o.maxBufferLines ?? 10_000;
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.failure = new Promise((r) => {
      this.resolveFailure = r;
    });
  }

  get stats(): InfluxStats {
    return { ...this.counts };
  }

  /** lines waiting to be written */
  get pending(): number {
    return this.buffer.length;
  }

  interval(f: IntervalFigures): void {
    try {
      this.push(intervalLines(f, this.o));
    } catch (e) {
      this.note(`influxdb: cannot format the interval: ${(e as Error).message}`);
    }
  }

  finish(summary: Summary): void {
    this.finished = true;
    if (this.summaryPrecounted) return; // already counted dropped: InfluxDB failed the final flush
    try {
      const line = summaryLine(summary, this.o);
      if (line) this.push([line]);
    } catch (e) {
      this.note(`influxdb: cannot format the summary: ${(e as Error).message}`);
    }
  }

  /** Queues lines (dropping the oldest beyond the bound) and starts a write if none is going. Never blocks. */
  push(lines: readonly string[]): void {
    for (const l of lines) this.buffer.push(l);
    this.trim();
    this.kick();
  }

  /**
   * Final flush of what is queued (call it after the last interval, before summary.json is written, so the
   * counts there are final): writes while time is left (`closeTimeoutMs`, shared with `close`), retrying with
   * backoff only if InfluxDB was healthy until now — one that was already failing gets one last try, so a dead
   * InfluxDB does not hold the exit. At the bound the request in flight is aborted. What cannot be written is
   * dropped and counted; when lines were left over, InfluxDB is given up on and the summary line `finish` will add
   * is counted dropped now. Never throws; lines pushed later (the summary line) are written by `close`.
   */
  async flush(opts: { interrupted?: boolean } = {}): Promise<void> {
    await this.finalFlush(opts);
    if (this.gaveUp && !this.finished && !this.summaryPrecounted) {
      this.summaryPrecounted = true;
      this.counts.dropped++;
    }
  }

  /** `flush` without the summary line's count: `close` is the end, `finish` does not follow it. */
  private async finalFlush(opts: { interrupted?: boolean }): Promise<void> {
    this.closing = true;
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const cap = this.o.closeTimeoutMs ?? (opts.interrupted ? FINAL_FLUSH_INTERRUPTED_MS : FINAL_FLUSH_MS);
    const left = Math.min(this.finalLeftMs ?? cap, cap);
    const start = this.clock.now();
    const { problem, unsent } = await this.drain(start + left);
    this.finalLeftMs = Math.max(0, left - (this.clock.now() - start));
    if (problem !== undefined) this.finalProblem ??= problem;
    if (unsent > 0) this.gaveUp = true;
  }

  /**
   * `flush`, then, with `required`, throws E_UNREACHABLE when the first batch failed or a final flush did not get
   * everything through.
   */
  async close(opts: { interrupted?: boolean } = {}): Promise<void> {
    await this.finalFlush(opts);
    if (!this.o.required) return;
    if (this.failureError) throw this.failureError;
    if (this.finalProblem !== undefined) {
      throw new FleetloadError(
        'E_UNREACHABLE',
        `InfluxDB at ${this.where} did not take the final figures (${this.finalProblem}) (--influx-required)`,
      );
    }
  }

  /**
   * Sends until the buffer is empty or `deadline` (the request in flight then is aborted); drops the rest.
   * Returns what went wrong, if anything, and how many lines were left unsent.
   */
  private async drain(deadline: number): Promise<{ problem: string | undefined; unsent: number }> {
    const bound = this.clock.setTimeout(
      () => this.abortCurrent?.(),
      Math.max(0, deadline - this.clock.now()),
    );
    bound.unref?.();
    let lastWhy: string | undefined;
    try {
      if (this.inFlight) await this.inFlight;
      const wasHealthy = this.attempt === 0;
      while (this.buffer.length > 0 && this.clock.now() < deadline && !this.failureError && !this.gaveUp) {
        const outcome = await this.sendBatch();
        if (outcome.ok) {
          lastWhy = undefined;
          continue;
        }
        // a retry cut short by the bound: the answer before it says more
        if (!outcome.cutShort || lastWhy === undefined) lastWhy = outcome.why;
        if (!outcome.retry) continue; // that batch is dropped; go on with the next
        if (!wasHealthy && !this.o.required) break;
        const wait = Math.min(this.backoff(), deadline - this.clock.now());
        if (wait <= 0) break;
        await new Promise<void>((r) => this.clock.setTimeout(r, wait));
      }
    } finally {
      this.clock.clearTimeout(bound);
    }
    const left = this.buffer.length;
    if (left > 0) {
      this.counts.dropped += left;
      this.buffer = [];
      this.note(`influxdb: ${left} line(s) could not be written to ${this.where}; dropped`);
    }
    if (left === 0 && lastWhy === undefined) return { problem: undefined, unsent: 0 };
    return {
      problem: `${lastWhy ?? (this.gaveUp ? 'not tried again' : 'time ran out')}; ${left} line(s) not written`,
      unsent: left,
    };
  }

  private trim(): void {
    const over = this.buffer.length - this.maxBufferLines;
    if (over > 0) {
      this.buffer.splice(0, over);
      this.counts.dropped += over;
      this.note(
        `influxdb: buffer full (${this.maxBufferLines} lines), dropping the oldest — is ${this.where} up?`,
      );
    }
  }

  private kick(): void {
    if (this.closing || this.inFlight || this.retryTimer !== undefined || this.buffer.length === 0) return;
    const run = async (): Promise<void> => {
      const outcome = await this.sendBatch();
      this.inFlight = undefined;
      if (outcome.ok) {
        this.kick();
        return;
      }
      if (!outcome.retry || this.closing || this.failureError) {
        this.kick();
        return;
      }
      const wait = this.backoff();
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, wait);
      this.retryTimer.unref?.();
    };
    this.inFlight = run();
  }

  /** ms before the next attempt: base × 2^(attempt-1), capped, equal jitter */
  private backoff(): number {
    const base = this.o.retryBaseMs ?? 500;
    const cap = this.o.retryMaxMs ?? 30_000;
    const full = Math.min(cap, base * 2 ** Math.max(0, this.attempt - 1));
    const r = (this.o.random ?? Math.random)();
    return Math.round(full / 2 + (full / 2) * r);
  }

  /** Sends the oldest batch; on a retryable failure the lines go back to the front of the buffer. */
  private async sendBatch(): Promise<Outcome> {
    const batch = this.buffer.splice(0, this.batchLines);
    if (batch.length === 0) return { ok: true };
    const outcome = await this.post(`${batch.join('\n')}\n`);
    if (outcome.ok) {
      this.counts.written += batch.length;
      this.attempt = 0;
      this.firstWritten = true;
      this.lastLogged = '';
      return outcome;
    }
    this.counts.failedBatches++;
    this.attempt++;
    this.note(
      `influxdb: write to ${this.where} failed: ${outcome.why}${outcome.retry ? '; will retry' : ''}`,
    );
    const required = this.o.required === true && !this.firstWritten;
    if (required && (!outcome.retry || this.attempt >= (this.o.requiredAttempts ?? 3))) {
      this.fail(outcome.why);
    }
    if (outcome.retry && !this.failureError) {
      this.buffer.unshift(...batch);
      this.trim();
    } else {
      this.counts.dropped += batch.length;
    }
    return outcome;
  }

  private fail(why: string): void {
    if (this.failureError) return;
    this.failureError = new FleetloadError(
      'E_UNREACHABLE',
      `InfluxDB at ${this.where} did not accept the first batch: ${why} (--influx-required; without it the ` +
        'run goes on and counts the dropped lines)',
    );
    this.resolveFailure(this.failureError);
  }

  private async post(text: string): Promise<Outcome> {
    const controller = new AbortController();
    const timer = this.clock.setTimeout(() => controller.abort(), this.timeoutMs);
    timer.unref?.();
    let cutShort = false;
    const abort = (): void => {
      cutShort = true;
      controller.abort();
    };
    this.abortCurrent = abort;
    try {
      const useGzip = this.o.gzip ?? true;
      const body = useGzip ? await gzip(Buffer.from(text, 'utf8')) : Buffer.from(text, 'utf8');
      const headers = useGzip
        ? { ...this.request.headers, 'Content-Encoding': 'gzip' }
        : this.request.headers;
      const res = await this.doFetch(this.request.url, {
        method: 'POST',
        headers,
        body,
        signal: controller.signal,
      });
      if (res.status >= 200 && res.status < 300) {
        await res.arrayBuffer().catch(() => undefined);
        return { ok: true };
      }
      const detail = await res
        .text()
        .then((t) => t.trim().slice(0, 200))
        .catch(() => '');
      const retry = res.status >= 500 || res.status === 429;
      return { ok: false, retry, why: describeStatus(res.status, detail, this.o) };
    } catch (e) {
      if (cutShort)
        return { ok: false, retry: true, why: 'no answer before the final flush ran out of time', cutShort };
      if (controller.signal.aborted)
        return { ok: false, retry: true, why: `no answer within ${this.timeoutMs} ms` };
      return { ok: false, retry: true, why: networkReason(e) };
    } finally {
      this.clock.clearTimeout(timer);
      if (this.abortCurrent === abort) this.abortCurrent = undefined;
    }
  }

  /** Logs a problem once until it changes (a dead InfluxDB must not flood the terminal). */
  private note(line: string): void {
    if (line === this.lastLogged) return;
    this.lastLogged = line;
    this.log(line);
  }
}

function describeStatus(status: number, detail: string, t: InfluxTarget): string {
  const hint =
    status === 401 || status === 403
      ? t.db !== undefined
        ? ' (check --influx-user/--influx-password)'
        : ' (check --influx-token and its write permission on the bucket)'
      : status === 404 && t.db !== undefined && /database not found/i.test(detail)
        ? ` (create it: CREATE DATABASE "${t.db}")`
        : '';
  return `HTTP ${status}${detail ? ` ${detail}` : ''}${hint}`;
}

function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message ?? String(e);
}
