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
  /** one line: devices, spawn rate, run time, interval, QoS, MQTT version, broker (secrets redacted) */
  scenario: string;
  verdict: RunVerdict;
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

/** The scenario of a summary in one line. */
export function scenarioLine(s: Summary['scenario']): string {
  const every = (ms: unknown) => (typeof ms === 'number' ? formatDuration(ms) : '?');
  return [
    `${s.devices ?? '?'} devices @ ${s.spawnRate ?? '?'}/s`,
    every(s.runTimeMs),
    `every ${every(s.intervalMs)}`,
    `QoS ${s.qos ?? '?'}`,
    `MQTT ${s.mqttVersion ?? '?'}`,
    typeof s.host === 'string' ? redactText(s.host) : 'embedded broker',
  ].join(' · ');
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

/**
 * The absolute path of a run's file, when `runId` is a run of the folder and `file` one of the files its listing
 * holds; undefined otherwise (the caller answers 404).
 */
export async function runFilePath(out: string, runId: string, file: string): Promise<string | undefined> {
  const run = await readRun(out, runId);
  if (!run?.files.includes(file)) return undefined;
  return join(out, run.runId, ...file.split('/'));
}
