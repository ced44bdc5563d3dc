import { createSocket, type Socket } from 'node:dgram';
import type { Clock } from './clock.js';
import { FleetloadError } from './errors.js';

/**
 * Clock offset across machines, NTP-style (RFC 5905's on-wire exchange, without the rest of NTP): `fleetload
 * consume --time-port P` answers probes with its receive and send times; a producer given `--clock-ref HOST:P`
 * sends probes, keeps the one with the shortest round trip, and takes
 *   offset = ((t2 − t1) + (t3 − t4)) / 2   (reference minus local), error bound ±(round trip − server time) / 2.
 * The producer then stamps `ts` in the reference's clock, so `arrival − ts` on the consumer needs no synced clocks.
 *
 * A probe is 16 bytes: "FLTP", a u32 id, a f64 t1 (echoed, unused by the server). An answer is 40 bytes: "FLTA", the
 * u32 id, t1 echoed, t2 (received), t3 (sent), all f64 ms since epoch.
 */

const PROBE = Buffer.from('FLTP');
const ANSWER = Buffer.from('FLTA');
const PROBE_BYTES = 16;
const ANSWER_BYTES = 40;

export interface TimeServer {
  port: number;
  answered: number;
  close(): Promise<void>;
}

/** Answers time probes on `host:port` (port 0: any free one). */
export async function startTimeServer(clock: Clock, port: number, host = '0.0.0.0'): Promise<TimeServer> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const server = { port: 0, answered: 0, close: () => closeSocket(socket) };
  socket.on('message', (msg, from) => {
    const t2 = clock.now();
    if (msg.length !== PROBE_BYTES || !msg.subarray(0, 4).equals(PROBE)) return;
    const out = Buffer.alloc(ANSWER_BYTES);
    ANSWER.copy(out, 0);
    out.writeUInt32LE(msg.readUInt32LE(4), 4);
    out.writeDoubleLE(msg.readDoubleLE(8), 8);
    out.writeDoubleLE(t2, 16);
    out.writeDoubleLE(clock.now(), 24);
    socket.send(out, from.port, from.address);
    server.answered++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new FleetloadError(
          'E_USAGE',
          `--time-port ${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}; pick another`,
        ),
      ),
    );
    socket.bind(port, host, () => resolve());
  });
  server.port = socket.address().port;
  return server;
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((r) => {
    try {
      s.close(() => r());
    } catch {
      r();
    }
  });
}

export interface OffsetEstimate {
  /** reference clock minus local clock, ms */
  offsetMs: number;
  /** the true offset is within ±this (half the round trip, less the server's own time) */
  errorMs: number;
  /** answers received of the probes sent */
  samples: number;
}

/**
 * Measures the offset to a time server: `probes` probes `gapMs` apart, the one with the shortest round trip wins.
 * Rejects (E_UNREACHABLE) when no probe is answered within `timeoutMs`.
 */
export async function measureOffset(
  clock: Clock,
  ref: { host: string; port: number },
  o: { probes?: number; gapMs?: number; timeoutMs?: number } = {},
): Promise<OffsetEstimate> {
  const probes = o.probes ?? 16;
  const gapMs = o.gapMs ?? 20;
  const timeoutMs = o.timeoutMs ?? 3000;
  const socket = createSocket(ref.host.includes(':') ? 'udp6' : 'udp4');
  let best: { offsetMs: number; errorMs: number } | undefined;
  let samples = 0;
  socket.on('message', (msg) => {
    const t4 = clock.now();
    if (msg.length !== ANSWER_BYTES || !msg.subarray(0, 4).equals(ANSWER)) return;
    const t1 = msg.readDoubleLE(8);
    const t2 = msg.readDoubleLE(16);
    const t3 = msg.readDoubleLE(24);
    const errorMs = (t4 - t1 - (t3 - t2)) / 2;
    const offsetMs = (t2 - t1 + (t3 - t4)) / 2;
    samples++;
    if (!best || errorMs < best.errorMs) best = { offsetMs, errorMs: Math.max(0, errorMs) };
  });
  socket.on('error', () => {});
  try {
    for (let i = 0; i < probes; i++) {
      const probe = Buffer.alloc(PROBE_BYTES);
      PROBE.copy(probe, 0);
      probe.writeUInt32LE(i, 4);
      probe.writeDoubleLE(clock.now(), 8);
      socket.send(probe, ref.port, ref.host);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    const until = Date.now() + timeoutMs;
    while (!best && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await closeSocket(socket);
  }
  if (!best) {
    throw new FleetloadError(
      'E_UNREACHABLE',
      `--clock-ref ${ref.host}:${ref.port}: no answer to ${probes} time probes (is fleetload consume --time-port running there?)`,
    );
  }
  return { offsetMs: round3(best.offsetMs), errorMs: round3(best.errorMs), samples };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** A clock that reads the reference's time: this clock plus the measured offset (timers are relative: unchanged). */
export function offsetClock(base: Clock, offsetMs: number): Clock {
  return {
    now: () => base.now() + offsetMs,
    setTimeout: (fn, ms) => base.setTimeout(fn, ms),
    clearTimeout: (h) => base.clearTimeout(h),
  };
}

/** `host:port` of --clock-ref, or a problem. */
export function parseClockRef(text: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535)
    return 'must be HOST:PORT of a fleetload consume --time-port, e.g. consumer:9999';
  return { host: (m[1] ?? m[2]) as string, port };
}
