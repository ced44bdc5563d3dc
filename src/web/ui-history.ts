import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { redactText } from '../redact.js';
import { exitCodeOfSummary } from '../run/verdict.js';
import { formatDuration } from '../scenario/duration.js';
import type { Summary } from '../stats/summary.js';

/**
 * The History of `fleetload ui`: every run folder in the results folder (`--out`), newest first, with its verdict
 * and exit code read from its summary.json (the verdict `fleetload run` gave it), and the files it holds.
 *
 * Files are served by name only from this listing: a name is looked up among the files found by walking the run
 * folder (regular files, no symbolic links, names of letters, digits, `.`, `_`, `-` not starting with a dot, one
 * level of subfolders such as histograms/), never joined onto a path as given. `..`, `%2f`, absolute paths,
 * links out of the folder and hidden files are therefore simply not there.
 */

export type RunVerdict = 'PASSED' | 'FAILED' | 'INVALID' | 'NO SUMMARY';

export interface RunEntry {
  runId: string;
  /** ISO-8601, from summary.json; else the folder's modification time */
  startedAt: string;
  endedAt: string | null;
  /** one line: devices, spawn rate, run time, interval, payload, QoS, MQTT version, broker (secrets redacted) */
  scenario: string;
  /** a RunVerdict; for a run of this UI that left no folder, what its exit code says (UNREACHABLE, INPUT ERROR …) */
  verdict: string;
  /** false for a run of this UI that left no results folder (kept in memory while the UI runs) */
  folder: boolean;
  /**
   * why the run is INVALID (summary.json `invalid`, one line per failed check, redacted), or why a run of this UI
   * left no folder (its error lines); empty otherwise
   */
  reasons: string[];
  /** the exit code `fleetload run` gave it; null without a summary */
  exitCode: number | null;
  interrupted: boolean;
  /** files of the folder, relative (`summary.json`, `histograms/e2e.hdr`) */
  files: string[];
}

/** A run folder's name: a run id (src/scenario/schema.ts runIdField). */
const RUN_DIR = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A file or subfolder name that may be served. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
/** At most this many files listed per run (a folder is small: a few files and four histograms). */
const MAX_FILES = 200;

export function verdictOf(s: Summary | undefined): RunVerdict {
  if (!s) return 'NO SUMMARY';
  if (s.passed) return 'PASSED';
  return exitCodeOfSummary(s) === 5 ? 'INVALID' : 'FAILED';
}

/** What each message carried: encoding and padded size, or the template's hash; undefined when not recorded. */
function payloadWords(s: Summary['scenario']): string | undefined {
  if (typeof s.encoding !== 'string') return undefined;
  if (typeof s.payloadTemplate === 'string') return `${s.encoding} template ${s.payloadTemplate}`;
  if (typeof s.payloadSizeBytes === 'number' && s.payloadSizeBytes > 0)
    return `${s.encoding} ${s.payloadSizeBytes} B`;
  return `${s.encoding}, no padding`;
}

/** The scenario of a summary in one line. */
export function scenarioLine(s: Summary['scenario']): string {
  const every = (ms: unknown) => (typeof ms === 'number' ? formatDuration(ms) : '?');
  const payload = payloadWords(s);
  return [
    `${s.devices ?? '?'} devices @ ${s.spawnRate ?? '?'}/s`,
    every(s.runTimeMs),
    `every ${every(s.intervalMs)}`,
    ...(payload === undefined ? [] : [payload]),
    `QoS ${s.qos ?? '?'}`,
    `MQTT ${s.mqttVersion ?? '?'}`,
    typeof s.host === 'string' ? redactText(s.host) : 'embedded broker',
  ].join(' · ');
}

/** Why an INVALID run is invalid, from its summary (redacted); empty for any other verdict. */
export function invalidReasons(s: Summary | undefined): string[] {
  if (verdictOf(s) !== 'INVALID' || !Array.isArray(s?.invalid)) return [];
  return s.invalid.filter((r): r is string => typeof r === 'string').map((r) => redactText(r));
}

/** The scenario line of a run without summary.json, from its scenario.yaml (already redacted). */
function scenarioFromYaml(text: string | undefined): string {
  if (text === undefined) return '(no scenario.yaml)';
  try {
    const y = parse(text) as Record<string, unknown> | null;
    if (!y || typeof y !== 'object') return '(empty scenario.yaml)';
    const parts = [
      `${y.devices ?? 100} devices`,
      String(y.runTime ?? '30s'),
      `every ${String(y.interval ?? '1s')}`,
      `QoS ${String(y.qos ?? 1)}`,
      typeof y.host === 'string' ? redactText(y.host) : 'embedded broker',
    ];
    return parts.join(' · ');
  } catch {
    return '(unreadable scenario.yaml)';
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The files of a run folder that may be served, relative paths, sorted. */
export async function runFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (out.length >= MAX_FILES || !SAFE_NAME.test(e.name)) continue;
      const path = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isFile()) out.push(path);
      else if (e.isDirectory() && depth < 1) await walk(path, depth + 1);
    }
  };
  await walk('', 0);
  return out.sort();
}

/** One run of the results folder, or undefined when `name` is not a run folder. */
export async function readRun(out: string, name: string): Promise<RunEntry | undefined> {
  if (!RUN_DIR.test(name)) return undefined;
  const dir = join(out, name);
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return undefined;
  const files = await runFiles(dir);
  if (!files.some((f) => /^(summary\.json|scenario\.yaml|run\.json|timeseries\.csv)$/.test(f)))
    return undefined;
  let summary: Summary | undefined;
  const text = files.includes('summary.json') ? await readText(join(dir, 'summary.json')) : undefined;
  try {
    summary = text === undefined ? undefined : (JSON.parse(text) as Summary);
  } catch {
    summary = undefined;
  }
  if (summary && (typeof summary !== 'object' || typeof summary.scenario !== 'object')) summary = undefined;
  return {
    runId: name,
    startedAt: typeof summary?.startedAt === 'string' ? summary.startedAt : st.mtime.toISOString(),
    endedAt: typeof summary?.endedAt === 'string' ? summary.endedAt : null,
    scenario: summary
      ? scenarioLine(summary.scenario)
      : scenarioFromYaml(await readText(join(dir, 'scenario.yaml'))),
    verdict: verdictOf(summary),
    folder: true,
    reasons: invalidReasons(summary),
    exitCode: summary ? exitCodeOfSummary(summary) : null,
    interrupted: summary?.interrupted === true,
    files,
  };
}

/** Every run of the results folder, newest first; an absent folder has none. */
export async function listRuns(out: string): Promise<RunEntry[]> {
  let names: string[];
  try {
    names = await readdir(out);
  } catch {
    return [];
  }
  const runs = (await Promise.all(names.map((n) => readRun(out, n)))).filter(
    (r): r is RunEntry => r !== undefined,
  );
  return runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || a.runId.localeCompare(b.runId));
}

/** A finished run started by `fleetload ui` (src/web/ui-server.ts UiRunStatus), as History needs it. */
export interface StartedRun {
  runId: string;
  startedAt: string;
  /** the equivalent command, secrets as *** */
  command: string;
  exitCode: number | null;
  verdict: string | null;
  /** its last lines of output, redacted */
  output: string[];
}

/** What a run that left no folder said about why: its `fleetload: …` lines, else its last line. */
function whyNoFolder(r: StartedRun): string[] {
  const errors = r.output.filter((l) => /^fleetload: /.test(l)).map((l) => l.replace(/^fleetload: /, ''));
  const last = r.output[r.output.length - 1];
  const lines = errors.length > 0 ? errors.slice(-3) : last !== undefined ? [last] : [];
  return lines.map((l) => redactText(l.length > 400 ? `${l.slice(0, 400)}…` : l));
}

/**
 * History with the runs this UI started that left no results folder (a broker it could not reach: exit 3; input
 * refused: exit 2; a crash before the folder was made): they would vanish on the next reload otherwise. Each is
 * an entry without files, with its verdict from its exit code, its command as its scenario, and why.
 */
export function withUnlisted(listed: RunEntry[], past: readonly StartedRun[]): RunEntry[] {
  const known = new Set(listed.map((r) => r.runId));
  const extra: RunEntry[] = past
    .filter((r) => !known.has(r.runId))
    .map((r) => ({
      runId: r.runId,
      startedAt: r.startedAt,
      endedAt: null,
      scenario: redactText(r.command),
      verdict: r.verdict ?? 'UNKNOWN',
      folder: false,
      reasons: whyNoFolder(r),
      exitCode: r.exitCode,
      interrupted: false,
      files: [],
    }));
  return [...listed, ...extra].sort(
    (a, b) => b.startedAt.localeCompare(a.startedAt) || a.runId.localeCompare(b.runId),
  );
}

/**
 * The absolute path of a run's file, when `runId` is a run of the folder and `file` one of the files its listing
 * holds; undefined otherwise (the caller answers 404).
 */
export async function runFilePath(out: string, runId: string, file: string): Promise<string | undefined> {
  const run = await readRun(out, runId);
  if (!run?.files.includes(file)) return undefined;
  return join(out, run.runId, ...file.split('/'));
}
