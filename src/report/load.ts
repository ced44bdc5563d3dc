import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FleetloadError } from '../errors.js';
import { redactSecrets } from '../scenario/load.js';
import { decodeHistogram, type Histogram } from '../stats/histogram.js';
import type { IntervalRecord, Summary, TimeseriesRow } from '../stats/summary.js';

/**
 * Reads a results folder `<out>/<runId>/` for the report and for compare. Every file but the folder itself is
 * optional (an old run has no intervals.jsonl, a crashed one no summary.json, a run without traffic no
 * histograms): what is missing or unreadable is listed in `notes` and the rest is still used. A folder holding
 * none of summary.json, intervals.jsonl and timeseries.csv is not a results folder (E_FILE).
 */

export const HISTOGRAM_NAMES = ['e2e', 'publishAck', 'connect', 'scheduleLag'] as const;
export type HistogramName = (typeof HISTOGRAM_NAMES)[number];

export interface ResultsData {
  dir: string;
  summary: Summary | undefined;
  intervals: IntervalRecord[] | undefined;
  timeseries: TimeseriesRow[] | undefined;
  /** scenario.yaml, parsed, secrets redacted again */
  scenario: Record<string, unknown> | undefined;
  histograms: Partial<Record<HistogramName, Histogram>>;
  /** things a reader should know about missing or damaged files, in words */
  notes: string[];
  /** a merged folder (fleetload merge): the folders it joined, from run.json's members */
  parts?: MergedPart[];
}

/** One folder a merge joined (run.json `members`). */
export interface MergedPart {
  role: string;
  /** `i/N`, or undefined for a consumer */
  segment: string | undefined;
  sent: number;
  received: number;
  startedAt: string;
  endedAt: string;
}

/** run.json's members, when there are several (a merge); anything malformed is left out, not fatal. */
function partsOf(text: string | undefined): MergedPart[] | undefined {
  if (text === undefined) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    return undefined;
  }
  const members = (record as { members?: unknown }).members;
  if (!Array.isArray(members) || members.length < 2) return undefined;
  const parts: MergedPart[] = [];
  for (const m of members as Array<Record<string, unknown>>) {
    const seg = m.segment as { index?: unknown; count?: unknown } | null | undefined;
    parts.push({
      role: String(m.role ?? '?'),
      segment: seg && typeof seg.index === 'number' ? `${seg.index}/${String(seg.count)}` : undefined,
      sent: Number(m.sent) || 0,
      received: Number(m.received) || 0,
      startedAt: String(m.startedAt ?? ''),
      endedAt: String(m.endedAt ?? ''),
    });
  }
  return parts;
}

export async function loadResults(dir: string): Promise<ResultsData> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FleetloadError(
      'E_FILE',
      code === 'ENOENT'
        ? `${dir} does not exist; give the folder of one run, e.g. fleetload-results/<runId>`
        : `cannot read ${dir}: ${(e as Error).message}`,
    );
  }
  if (!info.isDirectory()) {
    throw new FleetloadError(
      'E_FILE',
      `${dir} is a file, not a results folder; give the folder of one run, e.g. fleetload-results/<runId>`,
    );
  }
  const names = new Set(await readdir(dir).catch(() => [] as string[]));
  if (!names.has('summary.json') && !names.has('intervals.jsonl') && !names.has('timeseries.csv')) {
    const runs = [...names].filter((n) => !n.startsWith('.')).slice(0, 3);
    throw new FleetloadError(
      'E_FILE',
      `${dir} is not a fleetload results folder (no summary.json, intervals.jsonl or timeseries.csv)` +
        (runs.length > 0 ? `; if it holds runs, give one of them, e.g. ${join(dir, runs[0] ?? '')}` : ''),
    );
  }
  const notes: string[] = [];
  const read = async (name: string): Promise<string | undefined> => {
    if (!names.has(name)) return undefined;
    try {
      return await readFile(join(dir, name), 'utf8');
    } catch (e) {
      notes.push(`${name} could not be read (${(e as Error).message})`);
      return undefined;
    }
  };

  let summary: Summary | undefined;
  const summaryText = await read('summary.json');
  if (summaryText !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(summaryText);
    } catch (e) {
      throw new FleetloadError(
        'E_FILE',
        `${join(dir, 'summary.json')} is not valid JSON (${(e as Error).message})`,
      );
    }
    if (!isSummary(parsed)) {
      throw new FleetloadError(
        'E_FILE',
        `${join(dir, 'summary.json')} is not a fleetload summary (runId, messages or latency missing)`,
      );
    }
    summary = redactSecrets(parsed);
  } else {
    notes.push('no summary.json: the run did not finish (crashed or killed); figures below are partial');
  }

  let intervals: IntervalRecord[] | undefined;
  const jsonl = await read('intervals.jsonl');
  if (jsonl !== undefined) {
    intervals = [];
    let bad = 0;
    for (const line of jsonl.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r = JSON.parse(line) as unknown;
        if (isInterval(r)) intervals.push(r);
        else bad++;
      } catch {
        bad++;
      }
    }
    if (bad > 0) notes.push(`intervals.jsonl: ${bad} unreadable line(s) skipped`);
  }

  let timeseries: TimeseriesRow[] | undefined;
  const csv = await read('timeseries.csv');
  if (csv !== undefined) timeseries = parseTimeseries(csv);

  let scenario: Record<string, unknown> | undefined;
  const yamlText = await read('scenario.yaml');
  if (yamlText !== undefined) {
    try {
      const y = parseYaml(yamlText) as unknown;
      if (y && typeof y === 'object' && !Array.isArray(y))
        scenario = redactSecrets(y as Record<string, unknown>);
    } catch {
      notes.push('scenario.yaml could not be parsed');
    }
  }

  const histograms: Partial<Record<HistogramName, Histogram>> = {};
  if (names.has('histograms')) {
    for (const name of HISTOGRAM_NAMES) {
      let text: string;
      try {
        text = await readFile(join(dir, 'histograms', `${name}.hdr`), 'utf8');
      } catch {
        continue; // a latency with no samples has no file
      }
      try {
        histograms[name] = decodeHistogram(text.trim());
      } catch (e) {
        notes.push(`histograms/${name}.hdr could not be decoded (${(e as Error).message})`);
      }
    }
  }
  const parts = partsOf(await read('run.json'));
  return { dir, summary, intervals, timeseries, scenario, histograms, notes, ...(parts ? { parts } : {}) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSummary(v: unknown): v is Summary {
  return (
    isObject(v) &&
    typeof v.runId === 'string' &&
    isObject(v.messages) &&
    isObject(v.latency) &&
    isObject(v.scenario) &&
    isObject(v.devices)
  );
}

function isInterval(v: unknown): v is IntervalRecord {
  return (
    isObject(v) &&
    typeof v.time === 'string' &&
    typeof v.elapsedMs === 'number' &&
    isObject(v.counters) &&
    isObject(v.latency)
  );
}

const CSV_COLUMNS: Record<string, keyof TimeseriesRow> = {
  time: 'time',
  devices_connected: 'devicesConnected',
  sent: 'sent',
  acked: 'acked',
  failed: 'failed',
  received: 'received',
  lost: 'lost',
  e2e_p50: 'e2eP50',
  e2e_p95: 'e2eP95',
  e2e_p99: 'e2eP99',
  ack_p50: 'ackP50',
  ack_p99: 'ackP99',
};

/** timeseries.csv by its header (columns in any order; unknown ones ignored, missing ones 0). */
export function parseTimeseries(text: string): TimeseriesRow[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const rows: TimeseriesRow[] = [];
  for (const line of lines.slice(1)) {
    const cells = splitCsv(line);
    const row: TimeseriesRow = {
      time: '',
      devicesConnected: 0,
      sent: 0,
      acked: 0,
      failed: 0,
      received: 0,
      lost: 0,
      e2eP50: 0,
      e2eP95: 0,
      e2eP99: 0,
      ackP50: 0,
      ackP99: 0,
    };
    header.forEach((h, i) => {
      const key = CSV_COLUMNS[h];
      const cell = cells[i] ?? '';
      if (key === 'time') row.time = cell;
      else if (key !== undefined) {
        const n = Number(cell);
        (row as unknown as Record<string, number>)[key] = Number.isFinite(n) ? n : 0;
      }
    });
    if (row.time !== '' && Number.isFinite(Date.parse(row.time))) rows.push(row);
  }
  return rows;
}

function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}
