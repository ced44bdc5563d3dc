import {
  decodeBinaryHeader,
  decodeUserProperties,
  hasBinaryMagic,
  type UserProperties,
  validSeq,
  validTs,
} from './wire.js';

/**
 * Measurement metadata from a delivered message (DESIGN.md wire contract): `deviceId`, `seq` (1..2³²−1), `ts`
 * (scheduled send time, ms since epoch) and `runId`, from
 * - JSON fields of the payload (default names `deviceId`, `seq`, `ts`, `runId`; any dotted paths, ts in ms or s),
 * - the seed's format `{"info":{"run_id":…,"timestamp":<seconds>},"context":{"device":…,"seq":…}}` (preset),
 * - MQTT 5 user properties (`deviceId`, `seq`, `ts`, `runId`), or
 * - the compact binary header (src/consumer/wire.ts).
 * Anything else yields `undefined` and is counted `foreign` by the caller. No byte string can make a decoder throw
 * (fast-check property test in test/unit/decode.test.ts).
 */
export interface Telemetry {
  deviceId: string;
  seq: number;
  ts: number;
  runId: string;
  /** actual send time (ms since epoch), when the producer sent it */
  sentTs?: number | undefined;
}

export type DecodeFormat = 'auto' | 'json' | 'seed' | 'properties' | 'binary';
export const DECODE_FORMATS: readonly DecodeFormat[] = ['auto', 'json', 'seed', 'properties', 'binary'];

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

export const DEFAULT_FIELDS: JsonFields = {
  deviceId: 'deviceId',
  seq: 'seq',
  ts: 'ts',
  runId: 'runId',
  sentTs: 'sentTs',
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

export interface DecodeOptions {
  format?: DecodeFormat;
  /** JSON field names for `json` (and the first JSON attempt of `auto`); default DEFAULT_FIELDS */
  fields?: JsonFields;
}

export type Decoder = (payload: Buffer, userProperties?: Readonly<UserProperties>) => Telemetry | undefined;

/**
 * A decoder for one format. `auto` tries, by the first bytes: the binary header (magic F1 4C), then user
 * properties when there are any, then JSON with the configured fields, then the seed's format.
 */
export function makeDecoder(o: DecodeOptions = {}): Decoder {
  const fields = o.fields ?? DEFAULT_FIELDS;
  const json = jsonDecoder(fields);
  const seed = jsonDecoder(SEED_FIELDS);
  switch (o.format ?? 'auto') {
    case 'json':
      return (p) => json(p);
    case 'seed':
      return (p) => seed(p);
    case 'properties':
      return (_p, props) => decodeUserProperties(props);
    case 'binary':
      return (p) => binary(p);
    case 'auto':
      return (p, props) => {
        if (hasBinaryMagic(p)) return binary(p);
        if (props !== undefined) {
          const t = decodeUserProperties(props);
          if (t) return t;
        }
        return json(p) ?? (fields === SEED_FIELDS ? undefined : seed(p));
      };
  }
}

function binary(p: Buffer): Telemetry | undefined {
  const h = decodeBinaryHeader(p);
  return h ? { deviceId: h.deviceId, seq: h.seq, ts: h.ts, runId: h.runId, sentTs: h.sentTs } : undefined;
}

/** JSON with the default field names: the fast path used by `run` (kept for callers of the old API). */
export const decodeJson: (payload: Buffer) => Telemetry | undefined = jsonDecoder(DEFAULT_FIELDS);

function startsWithBrace(p: Buffer): boolean {
  let i = 0;
  while (i < p.length && (p[i] === 0x20 || p[i] === 0x0a || p[i] === 0x0d || p[i] === 0x09)) i++;
  return p[i] === 0x7b;
}

function jsonDecoder(f: JsonFields): (payload: Buffer) => Telemetry | undefined {
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
