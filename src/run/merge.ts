import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Ledger } from '../consumer/ledger.js';
import { FleetloadError } from '../errors.js';
import { Aggregator } from '../stats/aggregate.js';
import { type DevicesFile, decodeDevices } from '../stats/device-report.js';
import { decodeHistogram, encodeHistogram, type Histogram } from '../stats/histogram.js';
import {
  COUNTERS,
  type Counters,
  type IntervalSnapshot,
  LATENCIES,
  type LatencyName,
} from '../stats/stats.js';
import type { IntervalRecord, Summary } from '../stats/summary.js';
import { parseThreshold, type Threshold } from '../stats/thresholds.js';
import { TIMESERIES_HEADER, timeseriesLine } from '../stats/timeseries.js';
import { FLEETLOAD_VERSION } from '../version.js';
import { deviceFiles, type FinalDevices, mergeDevices } from './devices.js';
import { type FolderEvents, readFolderEvents, summaryEvents } from './merge-events.js';
import { type MergedSeries, mergeSeries, readIntervals } from './merge-series.js';
import {
  type ClockRecord,
  canonicalJson,
  decodeLastSeq,
  encodeLastSeq,
  type MemberRecord,
  type Role,
  RUN_RECORD_FORMAT,
  RUN_RECORD_VERSION,
  type RunRecord,
  rawErrors,
  settingsHash,
  sortErrors,
} from './record.js';
import { buildSummary } from './summary.js';

/**
 * `fleetload merge`: joins the results folders of one run (segments, consumers, merges of them) exactly
 * (DESIGN.md, "Distribution"). Counters add; HDR histograms are decoded and added (percentiles are never
 * averaged); consumer ledgers are unioned (a message two consumers saw counts once as received-unique, the second
 * delivery as a duplicate); loss is the producers' last sequence numbers against the union ledger; thresholds and
 * the verdict are judged on the merged result only, by the same buildSummary as a run. The merged folder carries
 * run.json, lastseq.bin and ledger.bin describing everything it covers, so a merge of merges equals one merge
 * (and the order of the folders never matters).
 *
 * Everything is read and checked before anything is written: bad input (other run, other settings, a segment
 * missing or doubled, a damaged file) is a FleetloadError (exit 2) and leaves no folder behind.
 */

/** One results folder, read and checked. */
export interface Part {
  /** the folder as given (for messages) */
  dir: string;
  record: RunRecord;
  /** HDR encodings by latency (histograms/<name>.hdr), only the non-empty ones */
  histograms: Partial<Record<LatencyName, string>>;
  /** the consumer's ledger (consumer and run folders) */
  ledger?: Ledger;
  /** each device's last seq (producer and run folders) */
  lastSeq?: Map<string, number>;
  /** scenario.yaml of the folder, when it has one (copied into the merged folder) */
  scenarioYaml?: string;
  /** devices.json: the folder's per-device figures */
  devices?: DevicesFile;
  /** its summary.json's events (src/run/merge-events.ts) */
  events?: FolderEvents;
  /** its intervals.jsonl (absent in folders without one) */
  intervals?: IntervalRecord[];
}

export interface MergeInput {
  parts: readonly Part[];
  /** the run to merge (default: the run of the folders) */
  runId?: string;
  /** thresholds to judge (default: those the folders judged) */
  thresholds?: readonly Threshold[];
  /** merge what is there when segments are missing; the summary is then `incomplete` */
  allowIncomplete?: boolean;
}

export interface Merged {
  summary: Summary;
  record: RunRecord;
  histograms: Partial<Record<LatencyName, Histogram>>;
  ledger: Ledger | undefined;
  lastSeq: Map<string, number> | undefined;
  scenarioYaml: string | undefined;
  /** the per-device breakdown (devices.csv, devices.json) */
  devices?: FinalDevices;
  /** intervals.jsonl and timeseries.csv, second by second over the folders (src/run/merge-series.ts) */
  series?: MergedSeries;
}

export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ROLES: readonly Role[] = ['producer', 'consumer', 'run'];

const hasProducer = (r: RunRecord) => r.role !== 'consumer';
const hasConsumer = (r: RunRecord) => r.role !== 'producer';

function fileError(file: string, problem: string): FleetloadError {
  return new FleetloadError('E_FILE', `${file}: ${problem}`);
}

// ------------------------------------------------------------------------------------------ reading

/** Reads one results folder: run.json, histograms/, ledger.bin and lastseq.bin as its role needs them. */
export async function readPart(dir: string): Promise<Part> {
  try {
    if (!(await stat(dir)).isDirectory())
      throw new FleetloadError('E_FILE', `${dir} is a file, not a results folder`);
  } catch (e) {
    if (e instanceof FleetloadError) throw e;
    throw new FleetloadError('E_FILE', `${dir} does not exist; give the results folders of one run`);
  }
  const runJson = join(dir, 'run.json');
  let text: string;
  try {
    text = await readFile(runJson, 'utf8');
  } catch {
    throw new FleetloadError(
      'E_FILE',
      `${dir} has no run.json: not a finished results folder of this fleetload version (merge needs finished runs)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw fileError(runJson, `not valid JSON (${(e as Error).message})`);
  }
  const record = checkRecord(raw, runJson);
  // run.json is written just before summary.json: without the summary the run did not finish writing
  if (!(await stat(join(dir, 'summary.json')).catch(() => undefined))) {
    throw new FleetloadError(
      'E_FILE',
      `${dir} has no summary.json: the run did not finish writing its results (merge needs finished runs)`,
    );
  }
  const histograms: Partial<Record<LatencyName, string>> = {};
  for (const name of LATENCIES) {
    const file = join(dir, 'histograms', `${name}.hdr`);
    let enc: string;
    try {
      enc = (await readFile(file, 'utf8')).trim();
    } catch {
      continue; // a latency with no samples has no file
    }
    try {
      decodeHistogram(enc);
    } catch (e) {
      throw fileError(file, `not an HDR histogram (${(e as Error).message})`);
    }
    histograms[name] = enc;
  }
  const part: Part = { dir, record, histograms };
  if (hasConsumer(record)) {
    const file = join(dir, 'ledger.bin');
    const bytes = await readFile(file).catch(() => {
      throw fileError(file, `missing: a ${record.role} folder needs its consumer ledger`);
    });
    try {
      part.ledger = Ledger.deserialize(bytes);
    } catch (e) {
      throw fileError(file, (e as Error).message);
    }
  }
  if (hasProducer(record)) {
    const file = join(dir, 'lastseq.bin');
    const bytes = await readFile(file).catch(() => {
      throw fileError(file, `missing: a ${record.role} folder needs its devices' last sequence numbers`);
    });
    try {
      part.lastSeq = decodeLastSeq(bytes);
    } catch (e) {
      throw fileError(file, (e as Error).message);
    }
  }
  const devicesJson = join(dir, 'devices.json');
  const devicesText = await readFile(devicesJson, 'utf8').catch(() => undefined);
  if (devicesText !== undefined) {
    try {
      part.devices = decodeDevices(devicesText);
    } catch (e) {
      throw fileError(devicesJson, (e as Error).message);
    }
  }
  const yaml = await readFile(join(dir, 'scenario.yaml'), 'utf8').catch(() => undefined);
  if (yaml !== undefined) part.scenarioYaml = yaml;
  const events = await readFolderEvents(dir);
  if (events) part.events = events;
  const intervals = await readIntervals(dir);
  if (intervals) part.intervals = intervals;
  return part;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** run.json as a RunRecord, or E_FILE naming what is wrong. */
export function checkRecord(v: unknown, file: string): RunRecord {
  const bad = (what: string) => fileError(file, `${what} (not a fleetload run.json, or a damaged one)`);
  if (!isObject(v) || v.format !== RUN_RECORD_FORMAT) throw bad('format is not "fleetload-run"');
  if (v.version !== RUN_RECORD_VERSION)
    throw fileError(
      file,
      `version ${String(v.version)} is not supported (this fleetload reads ${RUN_RECORD_VERSION})`,
    );
  if (typeof v.id !== 'string' || v.id === '') throw bad('id missing');
  if (typeof v.runId !== 'string' && v.runId !== null) throw bad('runId missing');
  if (typeof v.runId === 'string' && !RUN_ID.test(v.runId)) throw bad('runId is not a run id');
  if (!ROLES.includes(v.role as Role)) throw bad('role is not producer, consumer or run');
  const covers = v.covers;
  if (
    !isObject(covers) ||
    !isIndex(covers.count) ||
    !Array.isArray(covers.segments) ||
    !covers.segments.every((i) => isIndex(i) && i < (covers.count as number))
  )
    throw bad('covers missing or out of range');
  if (v.role !== 'consumer' && (covers.count < 1 || covers.segments.length === 0))
    throw bad(`a ${String(v.role)} folder covers no segment`);
  if (!Array.isArray(v.parts) || v.parts.length === 0 || !v.parts.every((p) => typeof p === 'string'))
    throw bad('parts missing');
  if (!isObject(v.settings)) throw bad('settings missing');
  if (!isObject(v.scenario)) throw bad('scenario missing');
  if (!isObject(v.counters) || !Object.values(v.counters).every((n) => typeof n === 'number' && n >= 0))
    throw bad('counters missing');
  if (typeof v.connectedPeak !== 'number') throw bad('connectedPeak missing');
  if (!Array.isArray(v.errors)) throw bad('errors missing');
  if (!isObject(v.generator)) throw bad('generator missing');
  if (typeof v.activeMs !== 'number') throw bad('activeMs missing');
  if (typeof v.startedAt !== 'string' || !Number.isFinite(Date.parse(v.startedAt)))
    throw bad('startedAt missing');
  if (typeof v.endedAt !== 'string' || !Number.isFinite(Date.parse(v.endedAt))) throw bad('endedAt missing');
  if (!Array.isArray(v.lostParts) || !Array.isArray(v.thresholds))
    throw bad('lostParts or thresholds missing');
  if (!isObject(v.validity) || !Array.isArray(v.validity.accept)) throw bad('validity missing');
  if (!isObject(v.clock)) throw bad('clock missing');
  return v as unknown as RunRecord;
}

// ------------------------------------------------------------------------------------------ merging

/** the folder's place in a deterministic order: producers by their first segment, then consumers; then by id */
function order(a: Part, b: Part): number {
  const first = (p: Part) =>
    hasProducer(p.record) ? Math.min(...p.record.covers.segments) : Number.POSITIVE_INFINITY;
  return (
    first(a) - first(b) ||
    ROLES.indexOf(a.record.role) - ROLES.indexOf(b.record.role) ||
    (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0)
  );
}

/** The first setting (key) where two settings objects differ, with both values. */
function firstDifference(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): { key: string; a: string; b: string } | undefined {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  for (const key of keys) {
    const x = canonicalJson(a[key]);
    const y = canonicalJson(b[key]);
    if (x !== y) return { key, a: x, b: y };
  }
  return undefined;
}

/** Checks that the folders belong together; returns the run id and the missing segments (`i/N`). */
function check(
  parts: readonly Part[],
  input: MergeInput,
): { runId: string; missing: string[]; count: number } {
  if (parts.length === 0)
    throw new FleetloadError('E_USAGE', 'fleetload merge needs at least one results folder');
  // the run: --run-id, else the run of the first folder in order
  for (const p of parts) {
    if (p.record.runId === null) {
      throw new FleetloadError(
        'E_FILE',
        `${p.dir}: a consumer that counted every run's messages (started without --run-id) cannot be merged; run it with --run-id`,
      );
    }
  }
  const runId = input.runId ?? (parts[0]?.record.runId as string);
  for (const p of parts) {
    if (p.record.runId !== runId) {
      throw new FleetloadError(
        'E_FILE',
        `${p.dir} is from run ${p.record.runId}, not ${runId}: merge joins the folders of one run` +
          (input.runId === undefined ? ' (--run-id chooses which)' : ''),
      );
    }
  }
  // producers share their settings and their segment count
  const producers = parts.filter((p) => hasProducer(p.record));
  const ref = producers[0];
  let count = 0;
  if (ref) {
    const refHash = settingsHash(ref.record.settings);
    count = ref.record.covers.count;
    for (const p of producers) {
      if (settingsHash(p.record.settings) !== refHash) {
        const d = firstDifference(ref.record.settings, p.record.settings) ?? {
          key: 'settings',
          a: '?',
          b: '?',
        };
        throw new FleetloadError(
          'E_FILE',
          `${p.dir} has other settings than ${ref.dir}: ${d.key} is ${d.b}, not ${d.a} (segments of one run must share their settings)`,
        );
      }
      if (p.record.covers.count !== count) {
        throw new FleetloadError(
          'E_FILE',
          `${p.dir} is a segment of ${p.record.covers.count}, ${ref.dir} of ${count}: segments of one run share their count N`,
        );
      }
    }
  }
  // every segment once
  const where = new Map<number, string[]>();
  for (const p of producers) {
    for (const i of p.record.covers.segments) where.set(i, [...(where.get(i) ?? []), p.dir]);
  }
  const doubled = [...where].filter(([, dirs]) => dirs.length > 1).sort((a, b) => a[0] - b[0]);
  if (doubled.length > 0) {
    throw new FleetloadError(
      'E_FILE',
      `segment${doubled.length > 1 ? 's' : ''} given twice: ${doubled.map(([i, dirs]) => `${i}/${count} in ${dirs.join(' and ')}`).join('; ')}`,
    );
  }
  // every process folder once (the same consumer twice, a folder and a merge holding it)
  const seen = new Map<string, string>();
  for (const p of parts) {
    for (const id of p.record.parts) {
      const other = seen.get(id);
      if (other !== undefined) {
        throw new FleetloadError(
          'E_FILE',
          `${other} and ${p.dir} hold the same results (part ${id}): a folder would be merged twice`,
        );
      }
      seen.set(id, p.dir);
    }
  }
  const missing: string[] = [];
  for (let i = 0; i < count; i++) if (!where.has(i)) missing.push(`${i}/${count}`);
  if (missing.length > 0 && !input.allowIncomplete) {
    throw new FleetloadError(
      'E_FILE',
      `segment${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing (have ${[...where.keys()]
        .sort((a, b) => a - b)
        .map((i) => `${i}/${count}`)
        .join(', ')}); merge every segment, or pass --allow-incomplete`,
    );
  }
  return { runId, missing, count };
}

function counters(c: Partial<Counters>): Counters {
  const out = {} as Counters;
  for (const k of COUNTERS) out[k] = c[k] ?? 0;
  return out;
}

function members(p: Part): MemberRecord[] {
  const r = p.record;
  if (r.members) return r.members;
  return [
    {
      id: r.id,
      role: r.role,
      segment: r.segment,
      sent: r.counters.sent ?? 0,
      received: r.counters.received ?? 0,
      startedAt: r.startedAt,
      endedAt: r.endedAt,
    },
  ];
}

function worstClock(clocks: readonly ClockRecord[]): ClockRecord {
  const bounds = clocks.map((c) => c.errorMs).filter((e): e is number => typeof e === 'number');
  const measured = clocks.some((c) => c.source === 'measured');
  return {
    offsetMs: 0,
    errorMs: bounds.length > 0 ? Math.max(...bounds) : null,
    source: measured && clocks.every((c) => c.source === 'measured') ? 'measured' : 'assumed synced',
  };
}

/** Merges checked folders in memory (no file is touched). Throws FleetloadError on folders that do not belong together. */
export function mergeParts(input: MergeInput): Merged {
  const parts = [...input.parts].sort(order);
  const { runId, missing, count } = check(parts, input);
  const producers = parts.filter((p) => hasProducer(p.record));
  const consumers = parts.filter((p) => hasConsumer(p.record));
  const lead = (producers[0] ?? parts[0]) as Part;

  // counters, histograms and errors: one snapshot per folder into the run's aggregator
  const aggregator = new Aggregator();
  const snaps: IntervalSnapshot[] = parts.map((p) => ({
    t: 0,
    durationMs: 0,
    // the sum of the peaks: the segments ran together, so an upper bound of the fleet's peak
    devicesConnected: p.record.connectedPeak,
    counters: counters(p.record.counters),
    histograms: p.histograms,
    errors: p.record.errors,
  }));
  aggregator.merge(snaps);

  const { ledger, lastSeq } = unionOf(producers, consumers, aggregator);
  const lost = ledger ? (lastSeq ? ledger.lost(lastSeq) : ledger.lost()) : 0;

  // thresholds: given, else every one the folders judged (in order, once)
  const exprs = [...new Set(parts.flatMap((p) => p.record.thresholds))];
  const thresholds = input.thresholds ?? exprs.map((e) => parseThreshold(e));
  const lostParts = [...new Set(parts.flatMap((p) => p.record.lostParts))];
  const startedAt = Math.min(...parts.map((p) => Date.parse(p.record.startedAt)));
  const endedAt = Math.max(...parts.map((p) => Date.parse(p.record.endedAt)));
  const activeMs = Math.max(...parts.map((p) => p.record.activeMs));
  const interrupted = parts.some((p) => p.record.interrupted);
  const validity = lead.record.validity;
  const series = partsSeries(parts, producers, startedAt, aggregator);
  const summary = buildSummary({
    runId,
    startedAt: new Date(startedAt),
    endedAt: new Date(endedAt),
    scenario: lead.record.scenario,
    aggregator,
    generator: {
      cpuPercentPeak: Math.max(...parts.map((p) => p.record.generator.cpuPercentPeak ?? 0)),
      eventLoopLagP99: Math.max(...parts.map((p) => p.record.generator.eventLoopLagP99 ?? 0)),
      // one saturated process: its share of the numbers describes the generator, not the system under test
      saturated: parts.some((p) => p.record.generator.saturated === true),
    },
    lost,
    activeMs,
    interrupted,
    thresholds,
    sides: { generator: producers.length > 0, consumer: consumers.length > 0 },
    validity,
    outputFailures: [],
    lostParts: [...lostParts, ...missing.map((s) => `segment ${s}: missing`)],
  });
  if (missing.length > 0) {
    summary.incomplete = {
      reason:
        lostParts.length > 0
          ? 'merged without every segment, and a part of the fleet was lost'
          : 'merged without every segment',
      lost: [...lostParts, ...missing.map((s) => `segment ${s}: missing`)],
    };
  }
  summary.errors = sortErrors(summary.errors);
  const devices = partsDevices(producers, consumers, ledger, lastSeq, lead);
  if (devices) summary.devicesTop = devices.report.top;
  Object.assign(summary, summaryEvents(parts.map((p) => p.events)));

  const role: Role = producers.length > 0 ? (consumers.length > 0 ? 'run' : 'producer') : 'consumer';
  const settings = lead.record.settings;
  const record: RunRecord = {
    format: RUN_RECORD_FORMAT,
    version: RUN_RECORD_VERSION,
    fleetloadVersion: FLEETLOAD_VERSION,
    id: randomUUID(),
    runId,
    role,
    segment: null,
    covers: {
      count,
      segments: [...new Set(producers.flatMap((p) => p.record.covers.segments))].sort((a, b) => a - b),
    },
    parts: parts.flatMap((p) => p.record.parts).sort(),
    members: parts.flatMap(members).sort(memberOrder),
    settingsHash: settingsHash(settings),
    settings,
    scenario: summary.scenario,
    counters: { ...aggregator.total },
    connectedPeak: aggregator.connectedPeak,
    errors: rawErrors(summary.errors),
    generator: { ...summary.generator },
    activeMs,
    startedAt: summary.startedAt,
    endedAt: summary.endedAt,
    interrupted,
    lostParts,
    thresholds: thresholds.map((t) => t.expr),
    validity: { accept: [...validity.accept], minOffered: validity.minOffered },
    clock: worstClock(parts.map((p) => p.record.clock)),
  };
  const histograms: Partial<Record<LatencyName, Histogram>> = {};
  for (const k of LATENCIES)
    if (aggregator.histograms[k].totalCount > 0) histograms[k] = aggregator.histograms[k];
  const scenarioYaml = lead.scenarioYaml;
  return {
    summary,
    record,
    histograms,
    ledger,
    lastSeq,
    scenarioYaml,
    ...(devices ? { devices } : {}),
    ...(series ? { series } : {}),
  };
}

/**
 * The union ledger (a message two consumers saw is one message seen, plus a duplicate, counted into the
 * aggregator) and each device's last seq over the producers.
 */
function unionOf(
  producers: readonly Part[],
  consumers: readonly Part[],
  aggregator: Aggregator,
): { ledger: Ledger | undefined; lastSeq: Map<string, number> | undefined } {
  let ledger: Ledger | undefined;
  if (consumers.length > 0) {
    ledger = new Ledger();
    for (const p of consumers) aggregator.total.duplicated += ledger.merge(p.ledger as Ledger).overlap;
  }
  let lastSeq: Map<string, number> | undefined;
  if (producers.length > 0) {
    lastSeq = new Map();
    for (const p of producers) {
      for (const [id, seq] of p.lastSeq as Map<string, number>) {
        const have = lastSeq.get(id);
        if (have === undefined || seq > have) lastSeq.set(id, seq);
      }
    }
  }
  return { ledger, lastSeq };
}

/**
 * The per-second series, second by second over the folders; with every producer's series, the fleet's connected
 * peak is the largest sum at one second (the sum of the segments' own peaks is only an upper bound).
 */
function partsSeries(
  parts: readonly Part[],
  producers: readonly Part[],
  startedAt: number,
  aggregator: Aggregator,
): MergedSeries | undefined {
  const series = mergeSeries(
    parts.map((p) => ({
      intervals: p.intervals ?? [],
      producer: hasProducer(p.record),
      consumer: hasConsumer(p.record),
    })),
    startedAt,
  );
  if (series && producers.every((p) => (p.intervals?.length ?? 0) > 0))
    aggregator.connectedPeak = series.connectedPeak;
  return series;
}

/** The per-device breakdown of the merged folders (src/run/devices.ts). */
function partsDevices(
  producers: readonly Part[],
  consumers: readonly Part[],
  ledger: Ledger | undefined,
  lastSeq: Map<string, number> | undefined,
  lead: Part,
): FinalDevices | undefined {
  return mergeDevices({
    producers: producers.map((p) => p.devices),
    consumers: consumers.map((p) => ({ devices: p.devices, ledger: p.ledger as Ledger })),
    ledger,
    lastSeq,
    intervalMs: lead.record.scenario.intervalMs,
  });
}

function memberOrder(a: MemberRecord, b: MemberRecord): number {
  const seg = (m: MemberRecord) => (m.segment ? m.segment.index : Number.POSITIVE_INFINITY);
  return (
    seg(a) - seg(b) ||
    ROLES.indexOf(a.role) - ROLES.indexOf(b.role) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

// ------------------------------------------------------------------------------------------ writing

/** Refuses an output folder that holds a finished run (summary.json) or any file at all. */
export async function checkOut(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new FleetloadError('E_OUT', `--out ${dir} is a file; give a folder`);
    throw new FleetloadError('E_OUT', `cannot use --out ${dir}: ${(e as Error).message}`);
  }
  if (names.length > 0) {
    throw new FleetloadError(
      'E_OUT',
      `results folder ${dir} already exists and is not empty; pick another --out`,
    );
  }
}

/** Writes the merged results folder (summary.json last, atomically). The report is the caller's. */
export async function writeMerged(dir: string, m: Merged): Promise<void> {
  try {
    await mkdir(join(dir, 'histograms'), { recursive: true });
    for (const [name, h] of Object.entries(m.histograms))
      await writeFile(join(dir, 'histograms', `${name}.hdr`), `${encodeHistogram(h as Histogram)}\n`);
    if (m.ledger) await writeFile(join(dir, 'ledger.bin'), m.ledger.serialize());
    if (m.lastSeq) await writeFile(join(dir, 'lastseq.bin'), encodeLastSeq(m.lastSeq));
    if (m.scenarioYaml !== undefined) await writeFile(join(dir, 'scenario.yaml'), m.scenarioYaml);
    if (m.devices) for (const [name, data] of deviceFiles(m.devices)) await writeFile(join(dir, name), data);
    if (m.series) {
      const lines = m.series.intervals.map((r) => `${JSON.stringify(r)}\n`).join('');
      await writeFile(join(dir, 'intervals.jsonl'), lines);
      const rows = m.series.rows.map(timeseriesLine).join('');
      await writeFile(join(dir, 'timeseries.csv'), `${TIMESERIES_HEADER}\n${rows}`);
    }
    await writeFile(join(dir, 'run.json'), `${JSON.stringify(m.record, null, 2)}\n`);
    const tmp = join(dir, `.summary.json.${process.pid}.tmp`);
    await writeFile(tmp, `${JSON.stringify(m.summary, null, 2)}\n`);
    await rename(tmp, join(dir, 'summary.json'));
  } catch (e) {
    throw new FleetloadError('E_OUT', `cannot write the merged results to ${dir}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

export interface MergeFoldersOptions extends Omit<MergeInput, 'parts'> {
  dirs: readonly string[];
  /** the merged folder; default `<cwd>/fleetload-results/<runId>-merged` */
  out?: string;
  cwd: string;
}

/** Reads, checks and merges the folders, then writes the merged one. Nothing is written on bad input. */
export async function mergeFolders(o: MergeFoldersOptions): Promise<{ merged: Merged; dir: string }> {
  const parts: Part[] = [];
  for (const d of o.dirs) parts.push({ ...(await readPart(resolve(o.cwd, d))), dir: d });
  const merged = mergeParts({ ...o, parts });
  const dir = resolve(o.cwd, o.out ?? join('fleetload-results', `${merged.summary.runId}-merged`));
  await checkOut(dir);
  try {
    await writeMerged(dir, merged);
  } catch (e) {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  return { merged, dir };
}
