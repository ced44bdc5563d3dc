import { validSeq, validTs, type WireMeta } from './meta.js';

/**
 * The compact binary header in front of the user's payload (for tiny payloads). Big-endian:
 *
 *    offset  size  field
 *    0       2     magic 0xF1 0x4C  ("fl"; 0xF1 0x4C is invalid UTF-8 and not gzip's 1F 8B, so it never
 *                                    collides with a JSON or text payload)
 *    2       1     version: 1, or 2 when the actual send time follows ts
 *    3       4     seq, u32 (≥ 1)
 *    7       8     ts, f64: the scheduled send time, ms since epoch (fractional)
 *    15      8     sentTs, f64: the actual send time, ms since epoch       (version 2 only)
 *    15|23   1     deviceId length L1 (1..255), then L1 bytes of UTF-8
 *    …       1     runId length L2 (0..255), then L2 bytes of UTF-8
 *    …       …     the user's payload (the rest)
 *
 *    Header size: 17 + L1 + L2 bytes (25 + L1 + L2 with sentTs); `dev-000042` + a 20-character run id: 47 bytes.
 *
 * The decoder returns `undefined` for anything that is not a valid header; it cannot throw.
 */

export const BINARY_MAGIC_0 = 0xf1;
export const BINARY_MAGIC_1 = 0x4c;
/** header without sentTs */
export const BINARY_V1 = 1;
/** header with sentTs after ts (what fleetload writes) */
export const BINARY_V2 = 2;

/** The binary header for one message (see the layout above); append the user's payload after it. */
export function encodeBinaryHeader(m: WireMeta): Buffer {
  const id = Buffer.from(m.deviceId, 'utf8');
  const run = Buffer.from(m.runId, 'utf8');
  if (id.length < 1 || id.length > 255) throw new RangeError('deviceId must be 1..255 bytes of UTF-8');
  if (run.length > 255) throw new RangeError('runId must be at most 255 bytes of UTF-8');
  if (!validSeq(m.seq)) throw new RangeError('seq must be an integer in 1..4294967295');
  const withSent = m.sentTs !== undefined;
  const fixed = withSent ? 23 : 15;
  const b = Buffer.allocUnsafe(fixed + 2 + id.length + run.length);
  b[0] = BINARY_MAGIC_0;
  b[1] = BINARY_MAGIC_1;
  b[2] = withSent ? BINARY_V2 : BINARY_V1;
  b.writeUInt32BE(m.seq, 3);
  b.writeDoubleBE(m.ts, 7);
  if (withSent) b.writeDoubleBE(m.sentTs as number, 15);
  let o = fixed;
  b[o++] = id.length;
  id.copy(b, o);
  o += id.length;
  b[o++] = run.length;
  run.copy(b, o);
  return b;
}

/** Whether `payload` starts with the binary header's magic bytes (a cheap test before decoding). */
export function hasBinaryMagic(payload: Uint8Array): boolean {
  return payload.length >= 2 && payload[0] === BINARY_MAGIC_0 && payload[1] === BINARY_MAGIC_1;
}

export interface DecodedBinary extends WireMeta {
  /** offset of the user's payload in the buffer */
  bodyOffset: number;
}

export function decodeBinaryHeader(p: Buffer): DecodedBinary | undefined {
  if (!hasBinaryMagic(p) || p.length < 17) return undefined;
  const version = p[2];
  if (version !== BINARY_V1 && version !== BINARY_V2) return undefined;
  const fixed = version === BINARY_V2 ? 23 : 15;
  if (p.length < fixed + 2) return undefined;
  const seq = p.readUInt32BE(3);
  const ts = p.readDoubleBE(7);
  const sentTs = version === BINARY_V2 ? p.readDoubleBE(15) : undefined;
  let o = fixed;
  const l1 = p[o++] as number;
  if (l1 === 0 || o + l1 + 1 > p.length) return undefined;
  const deviceId = p.toString('utf8', o, o + l1);
  o += l1;
  const l2 = p[o++] as number;
  if (o + l2 > p.length) return undefined;
  const runId = p.toString('utf8', o, o + l2);
  o += l2;
  if (!validSeq(seq) || !validTs(ts) || (sentTs !== undefined && !validTs(sentTs))) return undefined;
  return { deviceId, seq, ts, runId, sentTs, bodyOffset: o };
}
