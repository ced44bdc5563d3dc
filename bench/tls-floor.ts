/**
 * The floor for an idle TLS device on this Node: N bare `tls.connect` sockets (one shared SecureContext, TLS
 * session resumption), each writes one pre-encoded MQTT CONNECT and reads its CONNACK (an MQTT device's least
 * traffic: the first application data in each direction is what makes OpenSSL and Node allocate their record
 * buffers), then is held open idle; prints the process's RSS before and after, per socket. Whatever fleetload adds
 * per idle TLS device is above this.
 * FLOOR_RAW=1: the same on Node's TLS layer straight on libuv's TCP handle (`tls_wrap` over `tcp_wrap`, no
 * TLSSocket), with 512-byte TLS records (`setMaxSendFragment`, OpenSSL's least), sessions kept without the server
 * certificate (src/mqtt/tls-session.ts) and, when a ticket came after the CONNECT, one PINGREQ after the CONNACK (it
 * lets OpenSSL free the write buffer the ticket made it allocate): the least any Node client can hold per TLS
 * connection — what src/mqtt/raw-tls.ts and src/mqtt/connection.ts do for fleetload's devices.
 * Prints one JSON line: { sockets, connected, rssBeforeKB, rssAfterKB, perSocketKB, connectsPerSec }.
 * usage: node --expose-gc --import tsx bench/tls-floor.ts URL CA_FILE [sockets=10000] [inflight=200]
 * (after `npm run build`: bench/peers/floor/raw-tls.mjs takes the lean sessions from dist/)
 */

import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import {
  connectAll,
  connectPacket,
  secureHandle,
  stream,
  type TlsHandle,
  tcp,
} from './peers/floor/raw-tls.mjs';

const [url, caFile] = process.argv.slice(2);
if (!url || !caFile) {
  console.error('usage: tls-floor.ts URL CA_FILE [sockets] [inflight]');
  process.exit(2);
}
const n = Number(process.argv[4] ?? 10000);
const inflight = Number(process.argv[5] ?? 200);
const target = new URL(url);
const port = Number(target.port || 8883);
const host = target.hostname;
// FLOOR_MAX_VERSION=TLSv1.2: the same with TLS 1.2 (for comparison)
const maxVersion = process.env.FLOOR_MAX_VERSION as tls.SecureVersion | undefined;
const secureContext = tls.createSecureContext({
  ca: readFileSync(caFile),
  ...(maxVersion ? { maxVersion } : {}),
});
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const heapKB = (): number => process.memoryUsage().heapUsed / 1024;
const rssKB = (): number => {
  gc();
  return process.memoryUsage.rss() / 1024;
};

let session: Buffer | undefined;
const sockets: Array<{ destroy(): void }> = [];

/** tls.connect: writes CONNECT once secure, `done(true)` at the first bytes back (the CONNACK) */
function viaTlsConnect(i: number, done: (ok: boolean) => void): void {
  const s = tls.connect({ host, port, secureContext, session }, () => s.write(connectPacket(`f${i}`, 0)));
  s.on('session', (x: Buffer) => {
    session = x;
  });
  s.once('data', () => done(true));
  s.on('error', () => done(false));
  sockets.push(s);
}

const raw = process.env.FLOOR_RAW === '1';
const readBuffer = Buffer.allocUnsafeSlow(16 * 1024);
const noop = (): void => {};

/** TLS on a raw TCP handle (bench/peers/floor/raw-tls.mjs, as node-floor.mjs), plus what fleetload's devices do idle */
function viaRawHandle(i: number, done: (ok: boolean) => void): void {
  const h = new tcp.TCP(tcp.constants.SOCKET);
  const req = new tcp.TCPConnectWrap();
  // the TLSWrap must be held: collected, it would hand the TCP handle's reads back to JavaScript
  const conn: { destroy(): void; ssl?: TlsHandle } = { destroy: () => h.close() };
  let ticketSinceWrite = false;
  let pinged = false;
  const write = (b: Buffer): void => {
    const w = new stream.WriteWrap();
    w.handle = conn.ssl;
    w.oncomplete = noop;
    conn.ssl?.writeBuffer(w, b);
    ticketSinceWrite = false;
  };
  req.oncomplete = (status) => {
    if (status < 0) return done(false);
    conn.ssl = secureHandle(h, secureContext, readBuffer, {
      secure: (ok) => (ok ? write(connectPacket(`f${i}`, 0)) : done(false)),
      ticket: () => {
        ticketSinceWrite = true;
      },
      read: () => {
        const ok = (stream.streamBaseState[stream.kReadBytesOrError] as number) > 0;
        // the CONNACK (then the PINGRESP): a ticket that came after the CONNECT left OpenSSL's write buffer set up
        if (ok && ticketSinceWrite && !pinged) {
          pinged = true;
          write(Buffer.from([0xc0, 0])); // PINGREQ
          return;
        }
        done(ok);
      },
    });
  };
  h.connect(req, host, port);
  sockets.push(conn);
}
const connect = raw ? viaRawHandle : viaTlsConnect;

// warm up: one connection (loads the TLS code, makes the first session)
await new Promise<void>((resolve, reject) =>
  connect(-1, (ok) => (ok ? resolve() : reject(new Error('no connect')))),
);
await sleep(500);
const before = rssKB();
const heapBefore = heapKB();
const t0 = performance.now();
const connected = await connectAll(n, inflight, connect);
const secs = (performance.now() - t0) / 1000;
await sleep(Number(process.env.FLOOR_HOLD_MS ?? 2000)); // tickets and late reads settle
const after = rssKB();
const heapAfter = heapKB();
console.log(
  JSON.stringify({
    sockets: n,
    connected,
    rssBeforeKB: Math.round(before),
    rssAfterKB: Math.round(after),
    perSocketKB: Number(((after - before) / Math.max(1, connected)).toFixed(2)),
    connectsPerSec: Math.round(connected / secs),
    jsHeapPerSocketKB: Number(((heapAfter - heapBefore) / Math.max(1, connected)).toFixed(2)),
  }),
);
for (const s of sockets) s.destroy();
