/**
 * Measurement metadata from a telemetry payload (DESIGN.md wire contract): a JSON object with `deviceId`
 * (string), `seq` (integer ≥ 1), `ts` (scheduled send time, ms since epoch) and `runId`. Anything else yields
 * `undefined` and is counted `foreign` by the caller. No byte string can make this throw.
 */
export interface Telemetry {
  deviceId: string;
  seq: number;
  ts: number;
  runId: string;
}

export function decodeJson(payload: Buffer): Telemetry | undefined {
  // cheap reject before parsing: a JSON object starts with '{' (after optional whitespace)
  let i = 0;
  while (
    i < payload.length &&
    (payload[i] === 0x20 || payload[i] === 0x0a || payload[i] === 0x0d || payload[i] === 0x09)
  )
    i++;
  if (payload[i] !== 0x7b) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const { deviceId, seq, ts, runId } = o;
  if (typeof deviceId !== 'string' || deviceId.length === 0) return undefined;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts <= 0) return undefined;
  if (typeof runId !== 'string') return undefined;
  return { deviceId, seq, ts, runId };
}
