import type { Output, RunInfo } from '../run/output.js';
import { clockText, loadAsRun, type RunEvent } from '../stats/events.js';
import type { LatencySummary } from '../stats/histogram.js';
import type { Summary } from '../stats/summary.js';
import { parseThreshold, thresholdUnitLabel } from '../stats/thresholds.js';
import { deviceLines } from './console-devices.js';

/**
 * The terminal sink: a live status line while the run goes, and a short human summary at the end.
 * On a TTY the live line redraws in place; anywhere else (CI logs, pipes) it is one plain, timestamped line per
 * period with no escape codes.
 */

export interface LiveFigures {
  elapsedMs: number;
  runTimeMs: number;
  devicesConnected: number;
  devicesTarget: number;
  sentPerSec: number;
  receivedPerSec: number;
  e2eP50?: number;
  e2eP99?: number;
  lost: number;
  /** sent over a second ago and not received yet (a run with a consumer) */
  overdue?: number;
  phase: 'ramp' | 'steady' | 'drain';
  /** drain: how long it has drained so far, and the grace period it may take at most (ms) */
  drainMs?: number;
  graceMs?: number;
  /** bytes per second written by the generator / received by the consumer (dropped first on a narrow line) */
  bytesSentPerSec?: number;
  bytesReceivedPerSec?: number;
}

/**
 * The terminal as a run output: the live line from every interval. `header` is said once at the start; the
 * devices shown are the fleet's current target (stages and live changes move it), or for a consumer alone the
 * devices heard from.
 */
export function terminalOutput(
  live: LiveLine,
  o: { runTimeMs: number; header: (info: RunInfo) => string; devicesTarget: number; graceMs?: number },
): Output {
  let target = (): number => o.devicesTarget;
  let generator = false;
  // the drain counts from the last interval of the load (the run time's end, or an earlier stop)
  let activeEndMs = 0;
  return {
    name: 'terminal',
    start: (info) => {
      const control = info.control;
      if (control) {
        generator = true;
        target = () => control.targetDevices();
      }
      live.println(o.header(info));
    },
    interval: (f) => {
      const i = f.interval;
      const perSec = (n: number) => (n * 1000) / Math.max(1, i.durationMs);
      const e2e = i.histograms.e2e;
      // a consumer alone shows the devices it has heard from
      const seen = generator ? undefined : f.devicesSeen;
      if (f.phase !== 'drain') activeEndMs = f.elapsedMs;
      live.update({
        elapsedMs: f.elapsedMs,
        runTimeMs: o.runTimeMs,
        devicesConnected: seen ?? i.devicesConnected,
        devicesTarget: seen ?? target(),
        sentPerSec: perSec(i.counters.sent),
        receivedPerSec: perSec(i.counters.received),
        ...(e2e.totalCount > 0
          ? { e2eP50: e2e.getValueAtPercentile(50) / 1000, e2eP99: e2e.getValueAtPercentile(99) / 1000 }
          : {}),
        lost: f.gaps,
        ...(f.overdue !== undefined ? { overdue: f.overdue } : {}),
        phase: f.phase,
        ...(f.phase === 'drain'
          ? {
              drainMs: Math.max(0, f.elapsedMs - activeEndMs),
              ...(o.graceMs !== undefined ? { graceMs: o.graceMs } : {}),
            }
          : {}),
        bytesSentPerSec: perSec(i.counters.bytesSent),
        bytesReceivedPerSec: perSec(i.counters.bytesReceived),
      });
      for (const ev of f.events ?? []) live.println(eventLine(ev));
    },
  };
}

export type LiveStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface LiveLineOptions {
  /** not a TTY: seconds of run time between plain lines (default 1) */
  plainEverySec?: number;
  /** clock for the plain lines' timestamps, ms since epoch (default Date.now) */
  now?: () => number;
}

const CLEAR_LINE = '\r\x1b[K';

export class LiveLine {
  private readonly out: LiveStream;
  private readonly tty: boolean;
  private readonly periodMs: number;
  private readonly now: () => number;
  /** not a TTY: the period (of run time) of the last plain line */
  private lastSlot = Number.NEGATIVE_INFINITY;
  private drawn = '';
  private finished = false;

  constructor(out: LiveStream, opts: LiveLineOptions = {}) {
    this.out = out;
    this.tty = out.isTTY === true;
    this.periodMs = Math.max(0, (opts.plainEverySec ?? 1) * 1000);
    this.now = opts.now ?? Date.now;
  }

  update(v: LiveFigures): void {
    if (this.finished) return;
    if (this.tty) {
      this.drawn = fit(liveSegments(v), terminalWidth(this.out.columns) - 1);
      this.out.write(CLEAR_LINE + this.drawn);
      return;
    }
    // paced by the run's own clock, as shown: one line per shown second (per period), whenever the update arrives
    // (a late interval followed by an on-time one must not be skipped for arriving 0.7 s after it)
    const slot =
      this.periodMs > 0 ? Math.floor((liveSeconds(v.elapsedMs) * 1000) / this.periodMs) : Number.NaN;
    if (slot === this.lastSlot) return;
    this.lastSlot = slot;
    const t = this.now();
    this.out.write(
      `${new Date(t).toISOString()} ${liveSegments(v)
        .map((seg) => seg.text)
        .join(' ')}\n`,
    );
  }

  /**
   * Writes a whole line of text without garbling the live line: on a TTY the live line is cleared, the text
   * written, and the live line drawn again below it.
   */
  println(text: string): void {
    if (this.tty && this.drawn !== '' && !this.finished) {
      this.out.write(`${CLEAR_LINE}${text}\n${this.drawn}`);
    } else {
      this.out.write(`${text}\n`);
    }
  }

  /** Ends the live line (a TTY keeps its last state on screen). Safe to call more than once. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty && this.drawn !== '') this.out.write('\n');
  }
}

interface Segment {
  text: string;
  /** a shorter form, used when the full line does not fit */
  short?: string;
  /** 0 is kept longest when the line must shrink */
  rank: number;
}

/** The width of a terminal that does not say (or says 0): the classic 80 columns, never nothing. */
export function terminalWidth(columns: number | undefined): number {
  return columns !== undefined && Number.isFinite(columns) && columns > 0 ? columns : 80;
}

/**
 * The live figures in display order, ranked by what matters most when the terminal is narrow: the phase, the
 * fleet, the delay and the loss before the rates (sent ≈ received when nothing is lost).
 */
function liveSegments(v: LiveFigures): Segment[] {
  const noE2e = v.e2eP50 === undefined && v.e2eP99 === undefined;
  return [
    {
      // the drain shows its own time against the grace period, not run time past the run's end (`0:20/0:15`)
      text:
        v.phase === 'drain' && v.drainMs !== undefined
          ? `drain ${clock(v.drainMs)}${v.graceMs !== undefined ? `/${clock(v.graceMs)}` : ''}`
          : `${v.phase} ${clock(v.elapsedMs)}/${clock(v.runTimeMs)}`,
      rank: 0,
    },
    {
      text: `devices ${int(v.devicesConnected)}/${int(v.devicesTarget)}`,
      short: `dev ${int(v.devicesConnected)}/${int(v.devicesTarget)}`,
      rank: 1,
    },
    { text: `sent ${rate(v.sentPerSec)}/s`, short: `tx ${rate(v.sentPerSec)}/s`, rank: 4 },
    { text: `received ${rate(v.receivedPerSec)}/s`, short: `rx ${rate(v.receivedPerSec)}/s`, rank: 5 },
    {
      text: noE2e ? 'e2e –' : `e2e p50 ${ms(v.e2eP50)} p99 ${ms(v.e2eP99)}`,
      short: noE2e ? 'e2e –' : `e2e p50/p99 ${num0(v.e2eP50)}/${ms(v.e2eP99)}`,
      rank: 3,
    },
    { text: `lost ${int(v.lost)}`, rank: 2 },
    ...(v.overdue !== undefined && v.overdue > v.lost
      ? [{ text: `overdue ${int(v.overdue)}`, rank: 2 }]
      : []),
    ...(v.bytesSentPerSec !== undefined || v.bytesReceivedPerSec !== undefined
      ? [
          {
            text: `bytes ↑${bytes(v.bytesSentPerSec ?? 0)}/s ↓${bytes(v.bytesReceivedPerSec ?? 0)}/s`,
            short: `↑${bytes(v.bytesSentPerSec ?? 0)} ↓${bytes(v.bytesReceivedPerSec ?? 0)}`,
            rank: 6,
          },
        ]
      : []),
  ];
}

/** One event as the terminal prints it when it happens: `event 0:12 load: 100 → 40 devices (dashboard)`. */
export function eventLine(ev: RunEvent): string {
  return `event ${clockText(ev.elapsedMs)} ${ev.kind}: ${ev.message}`;
}

/** events listed in the summary before "… and N more" */
const MAX_SUMMARY_EVENTS = 8;

/** The summary's events, briefly: the load as it ran, then the first events (see summary.json for all). */
function eventLines(s: Summary, label: (name: string) => string): string[] {
  const events = s.events ?? [];
  if (events.length === 0) return [];
  const lines: string[] = [];
  if (events.some((e) => e.kind === 'load'))
    lines.push(label('load') + loadAsRun(s.scenario.devices, events));
  const shown = events.slice(0, MAX_SUMMARY_EVENTS);
  shown.forEach((e, i) => {
    lines.push(`${label(i === 0 ? 'events' : '')}${clockText(e.elapsedMs)} ${e.kind}: ${e.message}`);
  });
  const more = events.length - shown.length + (s.eventsDropped ?? 0);
  if (more > 0) lines.push(`${label('')}… and ${more} more (see summary.json)`);
  return lines;
}

const SEP = ' · ';

/**
 * Joins the segments with " · " in display order. When the whole line does not fit in `width`, the short forms
 * are used and the best-ranked ones that fit are kept; the first-ranked segment alone is cut if even it does not
 * fit.
 */
function fit(segments: Segment[], width: number): string {
  const full = segments.map((seg) => seg.text).join(SEP);
  if (full.length <= width) return full;
  const shorts = segments.map((seg) => ({ ...seg, text: seg.short ?? seg.text }));
  const keep = new Set<Segment>();
  let len = 0;
  for (const seg of [...shorts].sort((a, b) => a.rank - b.rank)) {
    const add = keep.size === 0 ? seg.text.length : seg.text.length + SEP.length;
    if (len + add > width) continue;
    keep.add(seg);
    len += add;
  }
  if (keep.size === 0) {
    const first = shorts.reduce<Segment | undefined>((a, b) => (a && a.rank <= b.rank ? a : b), undefined);
    return (first?.text ?? '').slice(0, Math.max(0, width));
  }
  return shorts
    .filter((seg) => keep.has(seg))
    .map((seg) => seg.text)
    .join(SEP);
}

// ---------------------------------------------------------------------------------------------- summary

export interface SummaryFormatOptions {
  /** ANSI colors (only on a TTY) */
  color?: boolean;
  /** `consume`: a consumer alone, without the producer's rows (default `run`) */
  command?: 'run' | 'consume';
}

/** error kinds listed in the summary before "… and N more" */
const MAX_ERROR_KINDS = 6;

const ansi = (code: string) => (on: boolean, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = ansi('1');
const green = ansi('32');
const red = ansi('31');
const yellow = ansi('33');

/** A short human summary of a run (about 20 lines), ending with the verdict and the results folder. */
export function formatSummary(s: Summary, resultsDir?: string, opts: SummaryFormatOptions = {}): string {
  const c = opts.color === true;
  const m = s.messages;
  const lines: string[] = [];
  const label = (name: string) => name.padEnd(11);

  const consume = opts.command === 'consume';
  const durationMs = Date.parse(s.endedAt) - Date.parse(s.startedAt);
  lines.push(
    bold(c, `fleetload ${consume ? 'consume' : 'run'} ${s.runId}`) +
      ` · ${Number.isFinite(durationMs) ? seconds(durationMs) : '?'}` +
      ` · ${s.scenario.host} · QoS ${s.scenario.qos}` +
      (consume ? '' : ` · MQTT ${s.scenario.mqttVersion}`),
  );
  if (!consume) {
    lines.push(
      label('devices') +
        `target ${int(s.devices.target)} · peak ${int(s.devices.connectedPeak)} · ` +
        `connect failures ${int(s.devices.connectFailures)} · reconnects ${int(s.devices.reconnects)}` +
        (s.devices.tls
          ? ` · TLS handshakes ${int(s.devices.tls.handshakes)} (${int(s.devices.tls.resumed)} resumed)`
          : ''),
    );
    lines.push(
      label('messages') +
        `scheduled ${int(m.scheduled)} · sent ${int(m.sent)} · acked ${int(m.acked)} · failed ${int(m.failed)} · ` +
        `unconfirmed ${int(m.unconfirmed)}`,
    );
  }
  const lost = `lost ${int(m.lost)}${m.sent > 0 ? ` (${percent((m.lost * 100) / m.sent)})` : ''}`;
  lines.push(
    label(consume ? 'messages' : '') +
      `received ${int(m.received)} · ${m.lost > 0 ? red(c, lost) : lost} · duplicated ${int(m.duplicated)} · ` +
      `reordered ${int(m.reordered)} · foreign ${int(m.foreign)}`,
  );
  if (!consume && m.scheduled > 0) {
    // delivery against what was sent and against what the plan scheduled: unsent messages count in the second
    const unique = Math.max(0, m.received - m.duplicated - m.foreign);
    const ofSent = m.sent > 0 ? percent((unique * 100) / m.sent) : '–';
    lines.push(
      `${label('')}delivered ${ofSent} of sent · ${percent((unique * 100) / m.scheduled)} of scheduled`,
    );
  }

  lines.push(`${'latency ms'.padEnd(13)}${['p50', 'p95', 'p99', 'max'].map((h) => h.padStart(9)).join('')}`);
  const latencyRow = (name: string, l: LatencySummary) =>
    `  ${name.padEnd(11)}` +
    (l.count === 0
      ? `${'–'.padStart(9).repeat(4)}   no samples`
      : [l.p50, l.p95, l.p99, l.max].map((v) => num(v).padStart(9)).join('') + `   n=${int(l.count)}`);
  lines.push(latencyRow('e2e', s.latency.e2e));
  if (!consume) {
    lines.push(latencyRow('publishAck', s.latency.publishAck));
    lines.push(latencyRow('connect', s.latency.connect));
  }

  lines.push(
    label('rates') +
      (consume ? '' : `sent ${rate(s.rates.sentPerSec)}/s · `) +
      `received ${rate(s.rates.receivedPerSec)}/s`,
  );
  if (s.bytes) {
    lines.push(
      label('bytes') +
        (consume ? '' : `sent ${bytes(s.bytes.sent)} (${bytes(s.bytes.sentPerSec)}/s) · `) +
        `received ${bytes(s.bytes.received)} (${bytes(s.bytes.receivedPerSec)}/s)`,
    );
  }
  lines.push(...eventLines(s, label));
  lines.push(...generatorHealth(s, c).map((line, i) => label(i === 0 ? 'generator' : '') + line));

  if (s.errors.length === 0) {
    lines.push(`${label('errors')}none`);
  } else {
    const top = [...s.errors].sort((a, b) => b.count - a.count);
    // every kind when they fit; "… and 1 more" would hide the one line that may explain the loss
    const shown = top.length <= MAX_ERROR_KINDS ? top.length : MAX_ERROR_KINDS - 1;
    top.slice(0, shown).forEach((e, i) => {
      lines.push(
        `${label(i === 0 ? 'errors' : '')}${int(e.count)} × ${e.kind === String(e.code) ? e.kind : `${e.kind} ${e.code}`} (${e.reason})`,
      );
    });
    if (top.length > shown)
      lines.push(`${label('')}… and ${top.length - shown} more kinds (see summary.json)`);
  }

  // per device (devices.csv has every row): who lost which seqs and when, then the other top lists
  deviceLines(s.devicesTop, s.startedAt).forEach((text, i) => {
    lines.push(`${label(i === 0 ? 'by device' : '')}${text}`);
  });

  if (s.thresholds.length > 0) {
    lines.push('thresholds');
    for (const t of s.thresholds) {
      const mark = t.passed ? green(c, '✓') : red(c, '✗');
      const observed = t.noData
        ? 'no data (nothing was measured)'
        : `observed ${num(t.value)}${thresholdUnit(t.expr)}`;
      lines.push(`  ${mark} ${t.expr.padEnd(24)} ${observed}`);
    }
  }

  const failed = s.thresholds.filter((t) => !t.passed).length;
  const invalid = s.valid === false;
  let verdict = s.passed ? green(c, bold(c, 'PASSED')) : red(c, bold(c, invalid ? 'INVALID' : 'FAILED'));
  if (invalid) verdict += `: ${(s.invalid ?? []).join('; ')}`;
  if (failed > 0) verdict += ` — ${failed} of ${s.thresholds.length} thresholds failed`;
  if (s.interrupted) verdict += ` · ${yellow(c, 'INTERRUPTED')} (stopped early; the run did not complete)`;
  lines.push(verdict);
  if (resultsDir !== undefined) lines.push(`${label('results')}${resultsDir}`);
  return lines.join('\n');
}

function generatorHealth(s: Summary, c: boolean): string[] {
  const g = s.generator;
  const figures =
    `CPU peak ${Math.round(g.cpuPercentPeak)}%, event-loop lag p99 ${num(g.eventLoopLagP99)} ms, ` +
    `schedule lag p99 ${num(s.latency.scheduleLag.p99)} ms`;
  if (!g.saturated) return [`ok (${figures})`];
  // when and why, as the saturation events said it (the whole-run figures may be under the limits)
  const when = (s.events ?? [])
    .filter((e) => e.kind === 'saturation-start')
    .slice(0, 3)
    .map((e) => `from ${clockText(e.elapsedMs)}: ${e.reason ?? e.message}`);
  return [
    `${yellow(c, 'SATURATED')} — ${figures}:`,
    ...when,
    'fleetload could not keep to its schedule, so latencies may describe the generator rather than the',
    'system under test; run fewer devices per process, or more workers',
  ];
}

function thresholdUnit(expr: string): string {
  try {
    const u = thresholdUnitLabel(parseThreshold(expr));
    return u === '' ? '' : u === '%' ? '%' : ` ${u}`;
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------- numbers

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function int(n: number): string {
  return intFmt.format(n);
}

/** A figure with about three significant digits: 0.123, 1.23, 12.3, 123, 1,234. */
function num(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a === 0 || Number.isInteger(n)) return int(n);
  if (a >= 100) return int(n);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return String(Number(n.toFixed(2)));
  return String(Number(n.toPrecision(3)));
}

function ms(n: number | undefined): string {
  return n === undefined ? '–' : `${num(n)}ms`;
}

function num0(n: number | undefined): string {
  return n === undefined ? '–' : num(n);
}

function rate(n: number): string {
  return n >= 1000 ? int(n) : String(Number(n.toFixed(1)));
}

/** bytes in decimal units, about three digits: 512B, 12.3kB, 1.23MB, 4.56GB */
export function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = Math.max(0, n);
  let u = 0;
  while (v >= 999.5 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${units[u]}`;
}

function percent(p: number): string {
  if (p === 0) return '0%';
  if (p >= 1) return `${p.toFixed(1)}%`;
  if (p >= 0.01) return `${p.toFixed(2)}%`;
  return `${Number(p.toPrecision(2))}%`;
}

function seconds(durationMs: number): string {
  if (durationMs < 59_950) return `${(durationMs / 1000).toFixed(1)}s`;
  const s = Math.round(durationMs / 1000);
  const h = Math.floor(s / 3600);
  const min = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(min).padStart(2, '0')}m${String(sec).padStart(2, '0')}s` : `${min}m${sec}s`;
}

/**
 * Whole seconds of a run time as shown: rounded, not floored. Intervals are cut on the whole seconds of the run,
 * a little before or after them (timer jitter): 2999.8 ms and 4000.3 ms are 0:03 and 0:04, where flooring showed
 * 0:02 and 0:04 (a second repeated, one skipped).
 */
function liveSeconds(ms: number): number {
  return Math.max(0, Math.round(ms / 1000));
}

/** m:ss or h:mm:ss, of rounded seconds (as events say their times) */
function clock(msTotal: number): string {
  return clockText(liveSeconds(msTotal) * 1000);
}
