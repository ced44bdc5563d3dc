import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CMD, FrameReader } from '../../src/mqtt/packets.js';

/**
 * A fault-injecting MQTT proxy for the accuracy tests: clients connect to it, it connects each one to `target`,
 * and it forwards bytes both ways. The client→broker direction passes through untouched. The broker→client
 * direction is split into MQTT frames (FrameReader) and every PUBLISH frame (type 3) can be
 *
 * - delayed: held `delayMs` from its arrival at the proxy, order kept (a FIFO per connection with one timer for
 *   the whole queue, not one per frame; other frames queued behind a held PUBLISH wait their turn);
 * - dropped: every `dropEvery`-th PUBLISH is not forwarded;
 * - duplicated: every `duplicateEvery`-th PUBLISH is written twice, back to back.
 *
 * PUBLISH frames are numbered across all connections of the proxy (1, 2, …), so with one consumer connection
 * "every k-th" is exact. Dropping is taken before duplicating when both hit the same frame.
 *
 * Drop and duplicate are exact only for a QoS 0 subscription (`--consumer-qos 0`): a dropped QoS 1/2 PUBLISH
 * leaves the broker waiting for its PUBACK/PUBREC (it is redelivered, with DUP, after a reconnect, and on MQTT 5
 * it holds a slot of the receive window), and a duplicated one reuses a packet id the client has already
 * acknowledged. The proxy does not look at QoS: it does what it is told and counts exactly what it did.
 *
 * Starving (`direction: 'to-broker'` only): the client id of each connection is read from its CONNECT frame, and
 * while `starve(clientId)` says so (option or `setStarve`), every PUBLISH of that connection is dropped on its
 * way to the broker — the device believes it sent them (use QoS 0: a QoS 1 device would wait for PUBACKs).
 * Counted per client id in `starvedBy` (not in `stats`). `refuseConnect(clientId)` true closes the connection at
 * its CONNECT instead (both sides, nothing forwarded): the device sees a failed connect. Counted in `refusedBy`.
 */

export interface MqttProxyOptions {
  target: { host: string; port: number };
  /** Hold every PUBLISH this long (ms) from its arrival. Default 0. */
  delayMs?: number;
  /** Drop every k-th PUBLISH (k ≥ 2). Default: never. */
  dropEvery?: number;
  /** Duplicate every k-th PUBLISH (k ≥ 2). Default: never. */
  duplicateEvery?: number;
  /** Default 127.0.0.1. */
  listenHost?: string;
  /**
   * Which way the faults apply: `to-client` (default: PUBLISH frames from the broker, what a subscriber gets) or
   * `to-broker` (PUBLISH frames from the client, what a publishing device sends).
   */
  direction?: 'to-client' | 'to-broker';
  /** to-broker: drop every PUBLISH of connections whose CONNECT client id this matches (see setStarve) */
  starve?: (clientId: string) => boolean;
  /** to-broker: close the connection at a CONNECT whose client id this matches (a failed connect) */
  refuseConnect?: (clientId: string) => boolean;
}

export interface MqttProxyStats {
  /** PUBLISH frames that came from the broker. */
  publishes: number;
  /** PUBLISH frames not forwarded. */
  dropped: number;
  /** PUBLISH frames written twice (each counts once here). */
  duplicated: number;
  /** PUBLISH frames held for a delay > 0. */
  delayed: number;
}

export interface MqttProxy {
  /** `mqtt://listenHost:port`. */
  readonly url: string;
  readonly port: number;
  /** Live counters. */
  readonly stats: MqttProxyStats;
  /** PUBLISH frames dropped by starving, by client id */
  readonly starvedBy: ReadonlyMap<string, number>;
  /** connections closed at their CONNECT (refuseConnect), by client id */
  readonly refusedBy: ReadonlyMap<string, number>;
  /** Delay for PUBLISH frames that arrive from now on (frames already held keep theirs). */
  setDelay(ms: number): void;
  /** Starves the connections whose client id matches from now on (undefined: nobody). */
  setStarve(match: ((clientId: string) => boolean) | undefined): void;
  /** Destroys every connection (both sides) at once; frames still held are discarded. New connections work. */
  cut(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Held {
  frame: Buffer;
  /** performance.now() at which it may go. */
  releaseAt: number;
}

interface Pipe {
  client: net.Socket;
  upstream: net.Socket;
  /** where the faulted direction's frames go (client for to-client, upstream for to-broker) */
  out: net.Socket;
  queue: Held[];
  /** Index of the queue's head (the queue is compacted when it empties). */
  head: number;
  timer: NodeJS.Timeout | undefined;
  /** the client id from CONNECT (to-broker), '' before it */
  clientId: string;
}

/** The client id of a CONNECT frame buf[start, end) (MQTT 3.1.1 and 5), '' when it cannot be read. */
export function connectClientId(buf: Buffer, start: number, end: number): string {
  let o = start + 1;
  // remaining length: a varint of up to 4 bytes
  for (let k = 0; k < 4 && o < end; k++) if (((buf[o++] as number) & 0x80) === 0) break;
  if (o + 2 > end) return '';
  o += 2 + buf.readUInt16BE(o); // protocol name
  const level = buf[o] as number;
  o += 1 + 1 + 2; // level, flags, keepalive
  if (level === 5) {
    let len = 0;
    let mul = 1;
    for (let k = 0; k < 4 && o < end; k++) {
      const b = buf[o++] as number;
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    o += len;
  }
  if (o + 2 > end) return '';
  const n = buf.readUInt16BE(o);
  return o + 2 + n > end ? '' : buf.toString('utf8', o + 2, o + 2 + n);
}

function checkEvery(name: string, k: number | undefined): void {
  if (k !== undefined && (!Number.isInteger(k) || k < 2)) {
    throw new Error(`startMqttProxy: ${name} must be an integer ≥ 2 (got ${k})`);
  }
}

export async function startMqttProxy(opts: MqttProxyOptions): Promise<MqttProxy> {
  checkEvery('dropEvery', opts.dropEvery);
  checkEvery('duplicateEvery', opts.duplicateEvery);
  const listenHost = opts.listenHost ?? '127.0.0.1';
  let delayMs = opts.delayMs ?? 0;
  let starve = opts.starve;
  const stats: MqttProxyStats = { publishes: 0, dropped: 0, duplicated: 0, delayed: 0 };
  const starvedBy = new Map<string, number>();
  const refusedBy = new Map<string, number>();
  const pipes = new Set<Pipe>();

  const destroy = (p: Pipe): void => {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    p.queue.length = 0;
    p.head = 0;
    p.client.destroy();
    p.upstream.destroy();
    pipes.delete(p);
  };

  /** Writes every held frame that is due, in order, as one write; re-arms the timer for the next one. */
  const release = (p: Pipe): void => {
    p.timer = undefined;
    // Timers fire on whole milliseconds of the loop's clock; a frame due within half a millisecond goes now, so
    // the added delay is centred on delayMs rather than always late.
    const now = performance.now() + 0.5;
    const due: Buffer[] = [];
    while (p.head < p.queue.length) {
      const h = p.queue[p.head] as Held;
      if (h.releaseAt > now) break;
      due.push(h.frame);
      p.head++;
    }
    if (p.head === p.queue.length) {
      p.queue.length = 0;
      p.head = 0;
    }
    if (due.length > 0 && !p.out.destroyed)
      p.out.write(due.length === 1 ? (due[0] as Buffer) : Buffer.concat(due));
    arm(p);
  };

  const arm = (p: Pipe): void => {
    if (p.timer || p.head >= p.queue.length) return;
    const next = p.queue[p.head] as Held;
    p.timer = setTimeout(() => release(p), Math.max(0, next.releaseAt - performance.now()));
  };

  const onFaultedFrames = (p: Pipe, reader: FrameReader, chunk: Buffer): void => {
    const arrival = performance.now();
    // Frames to write now. Only whole frames are forwarded (a partial one waits in the reader), and consecutive
    // untouched frames go as one zero-copy slice of the reader's buffer.
    const out: Buffer[] = [];
    let runBuf: Buffer | undefined;
    let runStart = 0;
    let runEnd = 0;
    const flushRun = (): void => {
      if (runBuf) out.push(runBuf.subarray(runStart, runEnd));
      runBuf = undefined;
    };
    let refused = false;
    reader.push(chunk, (buf, start, end) => {
      let copies = 1;
      let hold = 0;
      if (refused) return;
      if ((buf[start] as number) >> 4 === CMD.connect) {
        p.clientId = connectClientId(buf, start, end);
        if (p.out === p.upstream && opts.refuseConnect?.(p.clientId)) {
          refusedBy.set(p.clientId, (refusedBy.get(p.clientId) ?? 0) + 1);
          refused = true;
          return;
        }
      }
      if ((buf[start] as number) >> 4 === CMD.publish) {
        const n = ++stats.publishes;
        if (starve && p.out === p.upstream && starve(p.clientId)) {
          starvedBy.set(p.clientId, (starvedBy.get(p.clientId) ?? 0) + 1);
          copies = 0;
        } else if (opts.dropEvery !== undefined && n % opts.dropEvery === 0) {
          stats.dropped++;
          copies = 0;
        } else if (opts.duplicateEvery !== undefined && n % opts.duplicateEvery === 0) {
          stats.duplicated++;
          copies = 2;
        }
        if (copies > 0 && delayMs > 0) {
          stats.delayed++;
          hold = delayMs;
        }
      }
      if (hold > 0 || p.head < p.queue.length) {
        // held, or queued behind a held frame so order is kept
        flushRun();
        const frame = buf.subarray(start, end);
        for (let c = 0; c < copies; c++) p.queue.push({ frame, releaseAt: arrival + hold });
      } else if (copies === 1 && runBuf === buf && runEnd === start) {
        runEnd = end;
      } else {
        flushRun();
        if (copies === 1) {
          runBuf = buf;
          runStart = start;
          runEnd = end;
        } else if (copies === 2) {
          const frame = buf.subarray(start, end);
          out.push(frame, frame);
        }
      }
    });
    flushRun();
    if (refused) {
      destroy(p);
      return;
    }
    if (out.length > 0 && !p.out.destroyed)
      p.out.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    arm(p);
  };

  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host: opts.target.host, port: opts.target.port });
    upstream.setNoDelay(true);
    const toBroker = opts.direction === 'to-broker';
    const p: Pipe = {
      client,
      upstream,
      out: toBroker ? upstream : client,
      queue: [],
      head: 0,
      timer: undefined,
      clientId: '',
    };
    pipes.add(p);
    const reader = new FrameReader();
    const [plain, faulted] = toBroker ? [upstream, client] : [client, upstream];
    plain.pipe(p.out === client ? upstream : client);
    faulted.on('data', (chunk: Buffer) => {
      try {
        onFaultedFrames(p, reader, chunk);
      } catch {
        destroy(p); // a malformed stream: nothing sensible to forward
      }
    });
    faulted.on('end', () => p.out.end());
    client.on('error', () => destroy(p));
    upstream.on('error', () => destroy(p));
    client.on('close', () => destroy(p));
    upstream.on('close', () => destroy(p));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const cut = (): void => {
    for (const p of [...pipes]) destroy(p);
  };

  return {
    url: `mqtt://${listenHost}:${port}`,
    port,
    stats,
    starvedBy,
    refusedBy,
    setDelay(ms: number): void {
      if (!(ms >= 0)) throw new Error(`setDelay: ${ms} is not a delay`);
      delayMs = ms;
    },
    setStarve(match): void {
      starve = match;
    },
    cut,
    close(): Promise<void> {
      cut();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
