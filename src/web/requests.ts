import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Scenario } from '../scenario/schema.js';
import { replyJson } from './guard.js';

/**
 * The bodies the dashboard accepts, each field checked against its bounds before anything changes: a refused
 * request names the field and its allowed range (400), and the run is left as it was.
 *
 *   POST /api/fleet  {"devices"?: 0..maxDevices (whole), "intervalMs"?: minIntervalMs..maxIntervalMs (finite)}
 *   POST /api/stop   no body, or {}
 *
 * Bodies are JSON (415 otherwise, checked by the route) of at most MAX_BODY_BYTES (413).
 */

/** Largest POST body read; a bigger one is a 413 and the connection is closed. */
export const MAX_BODY_BYTES = 4096;

export interface FleetLimits {
  maxDevices: number;
  minIntervalMs: number;
  maxIntervalMs: number;
}

/** The smallest interval a scenario accepts (schema: interval ≥ 1ms). */
export const MIN_INTERVAL_MS = 1;

/**
 * The bounds of a load change: devices up to the run's --devices; an interval from 1 ms to the run time (a
 * longer one would end every device's sending for the rest of the run), or the planned interval if longer.
 */
export function fleetLimits(s: Pick<Scenario, 'runTimeMs' | 'intervalMs'>, maxDevices: number): FleetLimits {
  return {
    maxDevices,
    minIntervalMs: MIN_INTERVAL_MS,
    maxIntervalMs: Math.max(s.runTimeMs, s.intervalMs, MIN_INTERVAL_MS),
  };
}

/** What is wrong with a request: the message and, when one field is to blame, its name. */
export interface BadRequest {
  error: string;
  field?: string;
}

const FLEET_HINT = 'send {"devices": n, "intervalMs": ms} (either or both)';

/** The body of POST /api/fleet, checked. */
export function parseFleetRequest(
  body: string,
  limits: FleetLimits,
): { devices?: number; intervalMs?: number } | BadRequest {
  const obj = jsonObject(body, FLEET_HINT);
  if ('error' in obj) return obj;
  const unknown = Object.keys(obj.value).filter((k) => k !== 'devices' && k !== 'intervalMs');
  if (unknown.length > 0) {
    return {
      error: `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; only "devices" and "intervalMs" can change`,
      field: unknown[0] as string,
    };
  }
  const out: { devices?: number; intervalMs?: number } = {};
  const v = obj.value;
  if ('devices' in v) {
    const d = v.devices;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > limits.maxDevices) {
      return {
        error: `devices must be a whole number from 0 to ${limits.maxDevices} (the run's --devices), not ${shown(d)}`,
        field: 'devices',
      };
    }
    out.devices = d;
  }
  if ('intervalMs' in v) {
    const ms = v.intervalMs;
    if (
      typeof ms !== 'number' ||
      !Number.isFinite(ms) ||
      ms < limits.minIntervalMs ||
      ms > limits.maxIntervalMs
    ) {
      return {
        error: `intervalMs must be a number of milliseconds from ${limits.minIntervalMs} to ${limits.maxIntervalMs} (the run time), not ${shown(ms)}`,
        field: 'intervalMs',
      };
    }
    out.intervalMs = ms;
  }
  if (out.devices === undefined && out.intervalMs === undefined) {
    return { error: `nothing to change: ${FLEET_HINT}` };
  }
  return out;
}

/** The body of POST /api/stop: empty, or {}. */
export function parseStopRequest(body: string): true | BadRequest {
  if (body.trim() === '') return true;
  const obj = jsonObject(body, 'send {} or no body');
  if ('error' in obj) return obj;
  const keys = Object.keys(obj.value);
  if (keys.length > 0) {
    return {
      error: `POST /api/stop takes no fields (got ${keys.map((k) => JSON.stringify(k)).join(', ')}); send {} or no body`,
      field: keys[0] as string,
    };
  }
  return true;
}

function jsonObject(body: string, hint: string): { value: Record<string, unknown> } | BadRequest {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { error: `the body is not JSON; ${hint}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: `the body must be a JSON object: ${hint}` };
  }
  return { value: value as Record<string, unknown> };
}

/** A value as a 400 message names it: numbers as JS prints them (1e400 is Infinity), the rest as JSON. */
function shown(v: unknown): string {
  if (typeof v === 'number') return String(v);
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * Reads a request body of at most MAX_BODY_BYTES, then calls `done` (an exception there goes to `fail`). A
 * bigger body — announced by Content-Length or found while reading — is answered 413 at once and the connection
 * closed once the answer is out; `done` is not called.
 */
export function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  done: (body: string) => void,
  fail: (err: unknown) => void,
): void {
  const tooBig = (): void => {
    req.removeAllListeners('data');
    req.resume();
    res.once('finish', () => req.socket.destroy());
    replyJson(
      res,
      413,
      { error: `the body is over ${MAX_BODY_BYTES} bytes; send only the fields to change` },
      {
        Connection: 'close',
      },
    );
  };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    tooBig();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (b: Buffer) => {
    if (over) return;
    size += b.length;
    if (size > MAX_BODY_BYTES) {
      over = true;
      tooBig();
    } else chunks.push(b);
  });
  req.on('end', () => {
    if (over) return;
    try {
      done(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      fail(err);
    }
  });
}
