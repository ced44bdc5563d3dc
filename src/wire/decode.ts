import { decodeBinaryHeader, hasBinaryMagic } from './binary.js';
import { DEFAULT_FIELDS, type JsonFields, jsonDecoder, SEED_FIELDS } from './json.js';
import type { WireMeta } from './meta.js';
import { decodeUserProperties, type UserProperties } from './properties.js';

/**
 * Measurement metadata from a delivered message, in any of the wire's encodings: JSON fields (default names, any
 * dotted paths, ts in ms or s), the seed's JSON format, MQTT 5 user properties, or the binary header (v1 or v2).
 * Anything else yields `undefined` and is counted `foreign` by the caller. No byte string can make a decoder throw
 * (fast-check property test in test/unit/decode.test.ts).
 */

/** A decoded message's metadata (the same fields the producer encodes). */
export type Telemetry = WireMeta;

export type DecodeFormat = 'auto' | 'json' | 'seed' | 'properties' | 'binary';
export const DECODE_FORMATS: readonly DecodeFormat[] = ['auto', 'json', 'seed', 'properties', 'binary'];

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
