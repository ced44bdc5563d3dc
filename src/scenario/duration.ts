import { FleetloadError } from '../errors.js';

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/**
 * Parses `500ms`, `30s`, `5m`, `1h30m`, `1.5s`. A bare number has no unit and is refused (is `-t 30` seconds or
 * milliseconds?), except 0. Returns undefined when the text is not a duration (callers word the error).
 */
export function parseDurationMs(text: string | number): number | undefined {
  if (typeof text === 'number') return text === 0 ? 0 : undefined;
  const s = text.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) === 0 ? 0 : undefined;
  let total = 0;
  part.lastIndex = 0;
  let seen = 0;
  while (part.lastIndex < s.length) {
    const at = part.lastIndex;
    const m = part.exec(s);
    if (!m || m.index !== at) return undefined;
    total += Number(m[1]) * (unitMs[m[2] as string] as number);
    seen++;
  }
  return seen > 0 ? total : undefined;
}

export function durationMs(text: string | number, what: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    throw new FleetloadError(
      'E_SCENARIO',
      `${what}: "${text}" is not a duration; use e.g. 500ms, 30s, 5m, 1h30m`,
    );
  }
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
