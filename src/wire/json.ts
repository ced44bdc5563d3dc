import { FIELD, validSeq, validTs, type WireMeta } from './meta.js';

/**
 * The default encoding: the metadata as fields of a JSON object, e.g.
 * `{"deviceId":"dev-000042","seq":17,"ts":1795815000123.500,"sentTs":1795815000123.712,"runId":"…",…}`.
 *
 * Encoding (producer): the fields always come first and in this order, times with exactly 3 decimals (µs) —
 * as text (`jsonMetaHead`, `msText`) or written byte by byte into a buffer (`JSON_BYTES`, `writeUint`, `writeMs`:
 * src/engine/json-packet.ts, the per-message path; a property test holds both equal).
 *
 * Decoding (consumer): any field order, any dotted paths (`context.seq`), ts in ms or s, seqs from 0 or 1
 * (`JsonFields`; the seed's format is `SEED_FIELDS`). Returns `undefined` for anything else; cannot throw.
 */

// ---- encoding ----

/** The keys as the producer writes them, with their punctuation: `{"deviceId":` … `,"runId":`. */
export const JSON_KEYS = {
  deviceId: `{"${FIELD.deviceId}":`,
  seq: `,"${FIELD.seq}":`,
  ts: `,"${FIELD.ts}":`,
  sentTs: `,"${FIELD.sentTs}":`,
  runId: `,"${FIELD.runId}":`,
} as const;

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
/** JSON_KEYS as bytes, for writers that build the message in a buffer */
export const JSON_BYTES = {
  ts: ascii(JSON_KEYS.ts),
  sentTs: ascii(JSON_KEYS.sentTs),
} as const;

/** Per device, once: `{"deviceId":"…","seq":` (`deviceIdJson` is the id already JSON-quoted). */
export const jsonDevicePrefix = (deviceIdJson: string): string =>
  `${JSON_KEYS.deviceId}${deviceIdJson}${JSON_KEYS.seq}`;

/** Per run, once: `,"runId":"…"`. */
export const jsonRunPart = (runId: string): string => `${JSON_KEYS.runId}${JSON.stringify(runId)}`;

/**
 * The metadata as the start of a JSON object, without its closing brace:
 * `{"deviceId":…,"seq":…,"ts":…,"sentTs":…,"runId":…` (`runPart` from jsonRunPart, once per run).
 */
export function jsonMetaHead(
  deviceIdJson: string,
  seq: number,
  ts: number,
  sentTs: number,
  runPart: string,
): string {
  return `${JSON_KEYS.deviceId}${deviceIdJson}${JSON_KEYS.seq}${seq}${JSON_KEYS.ts}${msText(ts)}${JSON_KEYS.sentTs}${msText(sentTs)}${runPart}`;
}

const FRACTIONS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/**
 * A time in ms as JSON text with exactly 3 decimals (µs): integer formatting plus a table lookup, no
 * shortest-double conversion per message. `1764288000123.400` is the same number as `1764288000123.4`.
 */
export function msText(t: number): string {
  const q = Math.round(t * 1000);
  const whole = Math.floor(q / 1000);
  return `${whole}.${FRACTIONS[q - whole * 1000]}`;
}

/** Writes a non-negative integer (exact up to 2^53) in decimal at `at`; returns the end. */
export function writeUint(buf: Buffer, at: number, n: number): number {
  let len = 1;
  for (let p = 10; p <= n; p *= 10) len++;
  let i = at + len;
  let v = n;
  while (v >= 10) {
    const q = Math.floor(v / 10);
    buf[--i] = 48 + (v - q * 10);
    v = q;
  }
  buf[--i] = 48 + v;
  return at + len;
}

/** A time in ms with exactly 3 decimals (µs), the bytes of msText(); returns the end. */
export function writeMs(buf: Buffer, at: number, t: number): number {
  const q = Math.round(t * 1000);
  const whole = Math.floor(q / 1000);
  let frac = q - whole * 1000;
  let i = writeUint(buf, at, whole);
  buf[i++] = 46; // .
  buf[i + 2] = 48 + (frac % 10);
  frac = Math.floor(frac / 10);
  buf[i + 1] = 48 + (frac % 10);
  buf[i] = 48 + Math.floor(frac / 10);
  return i + 3;
}

// ---- decoding ----

/** Where the metadata sits in a JSON payload: dotted paths (`info.run_id`). */
export interface JsonFields {
  deviceId: string;
  seq: string;
  ts: string;
  runId: string;
  sentTs?: string | undefined;
  /** unit of `ts` (and `sentTs`) in the payload */
  tsUnit: 'ms' | 's';
  /** the producer's first seq: 1 (fleetload, the seed) or 0; seqs are shifted so the ledger sees 1.. */
  seqBase: 0 | 1;
}

/** What fleetload writes. */
export const DEFAULT_FIELDS: JsonFields = {
  deviceId: FIELD.deviceId,
  seq: FIELD.seq,
  ts: FIELD.ts,
  runId: FIELD.runId,
  sentTs: FIELD.sentTs,
  tsUnit: 'ms',
  seqBase: 1,
};

/** The seed's producer (Locust + paho-mqtt): timestamp in seconds, device and seq under `context`. */
export const SEED_FIELDS: JsonFields = {
  deviceId: 'context.device',
  seq: 'context.seq',
  ts: 'info.timestamp',
  runId: 'info.run_id',
  tsUnit: 's',
  seqBase: 1,
};

/**
 * `deviceId=context.device,seq=context.seq,ts=info.timestamp,runId=info.run_id,tsUnit=s,seqBase=0` → fields
 * (unnamed keys keep their default). Returns a problem text for bad input.
 */
export function parseFields(text: string, base: JsonFields = DEFAULT_FIELDS): JsonFields | string {
  const out: JsonFields = { ...base };
  for (const part of text.split(',')) {
    const t = part.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    const key = eq < 0 ? t : t.slice(0, eq).trim();
    const value = eq < 0 ? '' : t.slice(eq + 1).trim();
    if (value === '') return `"${t}": write name=path, e.g. seq=context.seq`;
    switch (key) {
      case 'deviceId':
      case 'seq':
      case 'ts':
      case 'runId':
      case 'sentTs':
        if (!/^[^.\s]+(\.[^.\s]+)*$/.test(value)) return `"${value}" is not a dotted field path`;
        out[key] = value;
        break;
      case 'tsUnit':
        if (value !== 'ms' && value !== 's') return `tsUnit must be ms or s, not "${value}"`;
        out.tsUnit = value;
        break;
      case 'seqBase':
        if (value !== '0' && value !== '1') return `seqBase must be 0 or 1, not "${value}"`;
        out.seqBase = value === '0' ? 0 : 1;
        break;
      default:
        return `unknown field "${key}"; fields: deviceId, seq, ts, runId, sentTs, tsUnit, seqBase`;
    }
  }
  return out;
}

function startsWithBrace(p: Buffer): boolean {
  let i = 0;
  while (i < p.length && (p[i] === 0x20 || p[i] === 0x0a || p[i] === 0x0d || p[i] === 0x09)) i++;
  return p[i] === 0x7b;
}

/** A decoder of JSON payloads with the metadata at `f`'s paths. */
export function jsonDecoder(f: JsonFields): (payload: Buffer) => WireMeta | undefined {
  const path = (p: string | undefined) => (p === undefined ? undefined : p.split('.'));
  const pDevice = path(f.deviceId) as string[];
  const pSeq = path(f.seq) as string[];
  const pTs = path(f.ts) as string[];
  const pRun = path(f.runId) as string[];
  const pSent = path(f.sentTs);
  const scale = f.tsUnit === 's' ? 1000 : 1;
  const shift = f.seqBase === 0 ? 1 : 0;
  return (payload) => {
    // cheap reject before parsing: a JSON object starts with '{' (after optional whitespace)
    if (!startsWithBrace(payload)) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(payload.toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof v !== 'object' || v === null) return undefined;
    const rawId = at(v, pDevice);
    // the seed's producers use numbers as device ids too; a number is kept as its decimal text
    const deviceId =
      typeof rawId === 'string'
        ? rawId
        : typeof rawId === 'number' && Number.isFinite(rawId)
          ? String(rawId)
          : '';
    if (deviceId === '') return undefined;
    const seqRaw = at(v, pSeq);
    if (typeof seqRaw !== 'number') return undefined;
    const seq = seqRaw + shift;
    if (!validSeq(seq)) return undefined;
    const tsRaw = at(v, pTs);
    if (typeof tsRaw !== 'number') return undefined;
    const ts = tsRaw * scale;
    if (!validTs(ts)) return undefined;
    const runId = at(v, pRun);
    if (typeof runId !== 'string') return undefined;
    let sentTs: number | undefined;
    if (pSent) {
      const s = at(v, pSent);
      if (typeof s === 'number' && validTs(s * scale)) sentTs = s * scale;
    }
    return { deviceId, seq, ts, runId, sentTs };
  };
}

function at(v: unknown, path: readonly string[]): unknown {
  let cur = v;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    if (!Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** JSON with the default field names: the fast path used by `run` (kept for callers of the old API). */
export const decodeJson: (payload: Buffer) => WireMeta | undefined = jsonDecoder(DEFAULT_FIELDS);
