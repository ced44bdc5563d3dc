import { FIELD, validSeq, validTs, type WireMeta } from './meta.js';

/**
 * MQTT 5 user properties: `deviceId`, `seq`, `ts`, `runId` (and optionally `sentTs`) as string values; the payload
 * is left entirely to the user's template. The decoder returns `undefined` unless all four are there and valid.
 */

export type UserProperties = Record<string, string | string[]>;

/** Times in user properties: rounded to the µs (the JSON encoding writes 3 decimals too). */
const us = (t: number): number => Math.round(t * 1000) / 1000;

/** The metadata as user properties (for PUBLISH `properties.userProperties`); times rounded to the µs. */
export function userProperties(m: WireMeta): Record<string, string> {
  const p: Record<string, string> = {
    [FIELD.deviceId]: m.deviceId,
    [FIELD.seq]: String(m.seq),
    [FIELD.ts]: String(us(m.ts)),
    [FIELD.runId]: m.runId,
  };
  if (m.sentTs !== undefined) p[FIELD.sentTs] = String(us(m.sentTs));
  return p;
}

/** MQTT 5 property block with one user property per entry (§3.3.2.3.7, identifier 0x26), without its length. */
export function encodeUserProperties(p: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(p)) {
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(v, 'utf8');
    const b = Buffer.allocUnsafe(5 + kb.length + vb.length);
    b[0] = 0x26;
    b.writeUInt16BE(kb.length, 1);
    kb.copy(b, 3);
    b.writeUInt16BE(vb.length, 3 + kb.length);
    vb.copy(b, 5 + kb.length);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/** A property value: MQTT allows a name more than once (MQTT.js then gives an array): the first counts. */
function prop(p: Readonly<UserProperties>, name: string): string | undefined {
  const v = Object.hasOwn(p, name) ? p[name] : undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const num = (s: string | undefined): number => (s !== undefined && NUMBER.test(s) ? Number(s) : Number.NaN);

/** Metadata from user properties, or undefined when they do not carry all four fields validly. */
export function decodeUserProperties(p: Readonly<UserProperties> | undefined): WireMeta | undefined {
  if (!p || typeof p !== 'object') return undefined;
  const deviceId = prop(p, FIELD.deviceId);
  const runId = prop(p, FIELD.runId);
  const seq = num(prop(p, FIELD.seq));
  const ts = num(prop(p, FIELD.ts));
  if (deviceId === undefined || deviceId === '' || runId === undefined) return undefined;
  if (!validSeq(seq) || !validTs(ts)) return undefined;
  const sentText = prop(p, FIELD.sentTs);
  const sentTs = sentText === undefined ? undefined : num(sentText);
  return { deviceId, seq, ts, runId, sentTs: sentTs !== undefined && validTs(sentTs) ? sentTs : undefined };
}
