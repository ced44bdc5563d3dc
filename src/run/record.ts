import { createHash, randomUUID } from 'node:crypto';
import type { Segment } from '../scenario/plan.js';
import type { Counters, ErrorEntry } from '../stats/stats.js';
import type { Summary } from '../stats/summary.js';
import { FLEETLOAD_VERSION } from '../version.js';
import type { ValidityOptions } from './verdict.js';

/**
 * What a results folder carries so that `fleetload merge` can join several of them exactly (DESIGN.md,
 * "Distribution"): `run.json` (who wrote the folder, what it covers, its totals) and, for producers, `lastseq.bin`
 * (each device's last sequence number, for loss against the consumers' union ledger). Histograms (histograms/)
 * and the consumer's ledger (ledger.bin) are written by the pipeline already.
 *
 * A merged folder carries the same two files, describing everything it covers, so a merge of merges equals one
 * merge.
 */

export const RUN_RECORD_FORMAT = 'fleetload-run';
export const RUN_RECORD_VERSION = 1;

/** producer: a generator without consumer; consumer: a consumer alone; run: both in one folder */
export type Role = 'producer' | 'consumer' | 'run';

export interface ClockRecord {
  /** the producer's clock minus the reference clock, ms (0 without a reference) */
  offsetMs: number;
  /** ± bound of that offset (RTT/2), ms; null when not measured */
  errorMs: number | null;
  /** how the offset was obtained */
  source: 'assumed synced' | 'measured';
}

/** One folder that went into a merge, as the per-segment table shows it. */
export interface MemberRecord {
  id: string;
  role: Role;
  segment: Segment | null;
  sent: number;
  received: number;
  startedAt: string;
  endedAt: string;
}

/** run.json */
export interface RunRecord {
  format: typeof RUN_RECORD_FORMAT;
  version: number;
  fleetloadVersion: string;
  /** this folder's own id (random per process; a merged folder gets a new one) */
  id: string;
  /** the run the messages belong to; null for a consumer that counted every run's messages (no --run-id) */
  runId: string | null;
  role: Role;
  /** the segment this process ran (0/1: the whole fleet); null for a merged folder */
  segment: Segment | null;
  /** producer segments this folder covers: of `count`, the indexes in `segments` (none for a consumer) */
  covers: { count: number; segments: number[] };
  /** the ids of the process folders this one holds (itself, or every folder merged into it): never merged twice */
  parts: string[];
  /** every process folder merged into this one (a merged folder only) */
  members?: MemberRecord[];
  /** local generator processes (`run --workers K`): all K segments of this process's share are in the folder */
  workers?: number;
  /** sha256 of the canonical JSON of `settings` */
  settingsHash: string;
  /** the settings every segment of one run must share */
  settings: Record<string, unknown>;
  /** summary.json's scenario block (host redacted) */
  scenario: Summary['scenario'];
  counters: Counters;
  connectedPeak: number;
  /** errors by kind and code (the measurement anomalies derived from counters are not repeated here) */
  errors: ErrorEntry[];
  generator: Summary['generator'];
  activeMs: number;
  startedAt: string;
  endedAt: string;
  interrupted: boolean;
  /** parts of the fleet lost on the way (a worker that died) */
  lostParts: string[];
  /** the thresholds judged, as written */
  thresholds: string[];
  validity: ValidityOptions;
  clock: ClockRecord;
}

export const ASSUMED_SYNCED: ClockRecord = { offsetMs: 0, errorMs: null, source: 'assumed synced' };

/** JSON with object keys sorted at every level (undefined → null), for a stable hash. */
export function canonicalJson(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function settingsHash(settings: Record<string, unknown>): string {
  return `sha256:${createHash('sha256').update(canonicalJson(settings)).digest('hex')}`;
}

/** Errors without the ones buildSummary derives from counters again (kind `measurement`). */
export function rawErrors(errors: readonly ErrorEntry[]): ErrorEntry[] {
  return sortErrors(errors.filter((e) => e.kind !== 'measurement').map((e) => ({ ...e })));
}

/** Most frequent first; ties by kind and code, so the order never depends on the order of the folders. */
export function sortErrors(errors: ErrorEntry[]): ErrorEntry[] {
  return errors.sort(
    (a, b) =>
      b.count - a.count ||
      a.kind.localeCompare(b.kind) ||
      String(a.code).localeCompare(String(b.code)) ||
      a.reason.localeCompare(b.reason),
  );
}

export interface RecordInput {
  runId: string | null;
  sides: { generator: boolean; consumer: boolean };
  segment: Segment | undefined;
  workers: number | undefined;
  /** settings from the command (run.ts); summary.scenario (without host) is the base */
  settings: Record<string, unknown> | undefined;
  summary: Summary;
  counters: Counters;
  connectedPeak: number;
  activeMs: number;
  validity: ValidityOptions;
}

/** The settings of a process: summary.scenario without its host (segments may use different endpoints), plus the command's. */
export function processSettings(
  summary: Summary,
  extra: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const { host: _host, ...scenario } = summary.scenario;
  return { ...scenario, ...(extra ?? {}) };
}

export function buildRunRecord(i: RecordInput): RunRecord {
  const role: Role = i.sides.generator ? (i.sides.consumer ? 'run' : 'producer') : 'consumer';
  const segment = i.segment ?? { index: 0, count: 1 };
  const settings = processSettings(i.summary, i.settings);
  const id = randomUUID();
  return {
    format: RUN_RECORD_FORMAT,
    version: RUN_RECORD_VERSION,
    fleetloadVersion: FLEETLOAD_VERSION,
    id,
    runId: i.runId,
    role,
    segment: role === 'consumer' ? null : { index: segment.index, count: segment.count },
    covers:
      role === 'consumer' ? { count: 0, segments: [] } : { count: segment.count, segments: [segment.index] },
    parts: [id],
    ...(i.workers !== undefined && i.workers > 1 ? { workers: i.workers } : {}),
    settingsHash: settingsHash(settings),
    settings,
    scenario: i.summary.scenario,
    counters: { ...i.counters },
    connectedPeak: i.connectedPeak,
    errors: rawErrors(i.summary.errors),
    generator: { ...i.summary.generator },
    activeMs: i.activeMs,
    startedAt: i.summary.startedAt,
    endedAt: i.summary.endedAt,
    interrupted: i.summary.interrupted === true,
    lostParts: i.summary.incomplete?.lost ?? [],
    thresholds: i.summary.thresholds.map((t) => t.expr),
    validity: { accept: [...i.validity.accept], minOffered: i.validity.minOffered },
    clock:
      i.summary.clock?.reference != null
        ? { offsetMs: i.summary.clock.offsetMs, errorMs: i.summary.clock.errorMs ?? null, source: 'measured' }
        : { ...ASSUMED_SYNCED },
  };
}

// ------------------------------------------------------------------------------------------ lastseq.bin

/**
 * lastseq.bin: the last sequence number each device of a producer sent (the loss a merge computes is against it).
 * Big-endian:
 *
 *   offset 0  u32  magic 0x464c5331 ("FLS1")
 *          4  u16  version (1)
 *          6  u16  reserved (0)
 *          8  u32  count: entries that follow
 *         12       count × { u16 idBytes (≥ 1), idBytes of UTF-8 device id, u32 seq (≥ 1) }
 *
 * Nothing may follow the last entry. Ids are unique. 1M devices of ~10-byte ids: ≈ 16 MB.
 */
export const LASTSEQ_MAGIC = 0x464c5331;
export const LASTSEQ_VERSION = 1;
const LASTSEQ_HEADER = 12;
/** the smallest entry: a 1-byte id */
const LASTSEQ_MIN_ENTRY = 2 + 1 + 4;

export function encodeLastSeq(last: ReadonlyMap<string, number>): Buffer {
  const ids: Buffer[] = [];
  let size = LASTSEQ_HEADER;
  for (const [id, seq] of last) {
    const b = Buffer.from(id, 'utf8');
    if (b.length === 0 || b.length > 0xffff)
      throw new Error(`device id of ${b.length} bytes cannot be recorded`);
    if (seq >>> 0 !== seq || seq === 0) throw new Error(`seq ${seq} of ${id} is not a u32 ≥ 1`);
    ids.push(b);
    size += 2 + b.length + 4;
  }
  const out = Buffer.alloc(size);
  out.writeUInt32BE(LASTSEQ_MAGIC, 0);
  out.writeUInt16BE(LASTSEQ_VERSION, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt32BE(ids.length, 8);
  let o = LASTSEQ_HEADER;
  let k = 0;
  for (const seq of last.values()) {
    const b = ids[k++] as Buffer;
    out.writeUInt16BE(b.length, o);
    b.copy(out, o + 2);
    o += 2 + b.length;
    out.writeUInt32BE(seq, o);
    o += 4;
  }
  return out;
}

/** Reads lastseq.bin; throws an Error saying what is wrong (sizes are checked before anything is allocated). */
export function decodeLastSeq(b: Buffer): Map<string, number> {
  if (b.length < LASTSEQ_HEADER || b.readUInt32BE(0) !== LASTSEQ_MAGIC)
    throw new Error('not a fleetload lastseq file');
  const version = b.readUInt16BE(4);
  if (version !== LASTSEQ_VERSION)
    throw new Error(`lastseq version ${version} is not supported (this fleetload reads ${LASTSEQ_VERSION})`);
  const count = b.readUInt32BE(8);
  if (count > (b.length - LASTSEQ_HEADER) / LASTSEQ_MIN_ENTRY)
    throw new Error(`corrupt lastseq: ${count} entries cannot fit in ${b.length} bytes`);
  const out = new Map<string, number>();
  let o = LASTSEQ_HEADER;
  for (let k = 0; k < count; k++) {
    if (o + 2 > b.length) throw new Error('corrupt lastseq: truncated');
    const n = b.readUInt16BE(o);
    if (n === 0 || o + 2 + n + 4 > b.length) throw new Error('corrupt lastseq: truncated entry');
    const id = b.toString('utf8', o + 2, o + 2 + n);
    const seq = b.readUInt32BE(o + 2 + n);
    if (seq === 0) throw new Error(`corrupt lastseq: seq 0 for ${JSON.stringify(id)}`);
    if (out.has(id)) throw new Error(`corrupt lastseq: ${JSON.stringify(id)} twice`);
    out.set(id, seq);
    o += 2 + n + 4;
  }
  if (o !== b.length) throw new Error(`corrupt lastseq: ${b.length - o} bytes after the last entry`);
  return out;
}
