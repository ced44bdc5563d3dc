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
 */

import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { leanSession } from '../src/mqtt/tls-session.js';

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

/** MQTT 3.1.1 CONNECT, clean session, keepalive 0 (the broker never expects a ping), client id f<i> */
function connectPacket(i: number): Buffer {
  const id = Buffer.from(`f${i}`);
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 0, 0, id.length]), id]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

let session: Buffer | undefined;
const sockets: Array<{ destroy(): void }> = [];

/** tls.connect: writes CONNECT once secure, `done(true)` at the first bytes back (the CONNACK) */
function viaTlsConnect(i: number, done: (ok: boolean) => void): void {
  const s = tls.connect({ host, port, secureContext, session }, () => s.write(connectPacket(i)));
  s.on('session', (x: Buffer) => {
    session = x;
  });
  s.once('data', () => done(true));
  s.on('error', () => done(false));
  sockets.push(s);
}

type Req = { oncomplete?: (status: number) => void; handle?: unknown };
interface RawBindings {
  TCP: new (
    type: number,
  ) => { connect(req: Req, host: string, port: number): number; close(cb?: () => void): void };
  TCPConnectWrap: new () => Req;
  SOCKET: number;
  WriteWrap: new () => Req;
  state: Int32Array;
  kReadBytesOrError: number;
  wrap: (
    handle: unknown,
    context: unknown,
    isServer: boolean,
    activeWrite: boolean,
  ) => Record<string, unknown> & {
    setVerifyMode(a: boolean, b: boolean): void;
    setMaxSendFragment(n: number): number;
    setSession(s: Buffer): void;
    enableSessionCallbacks(): void;
    useUserBuffer(b: Uint8Array): void;
    readStart(): number;
    start(): void;
    verifyError(): Error | null;
    isSessionReused(): boolean;
    writeBuffer(req: Req, b: Buffer): number;
  };
}
function rawBindings(): RawBindings {
  const binding = (process as unknown as { binding(name: string): unknown }).binding;
  const tcp = binding('tcp_wrap') as {
    TCP: RawBindings['TCP'];
    TCPConnectWrap: RawBindings['TCPConnectWrap'];
    constants: { SOCKET: number };
  };
  const stream = binding('stream_wrap') as {
    WriteWrap: RawBindings['WriteWrap'];
    streamBaseState: Int32Array;
    kReadBytesOrError: number;
  };
  return {
    TCP: tcp.TCP,
    TCPConnectWrap: tcp.TCPConnectWrap,
    SOCKET: tcp.constants.SOCKET,
    WriteWrap: stream.WriteWrap,
    state: stream.streamBaseState,
    kReadBytesOrError: stream.kReadBytesOrError,
    wrap: (binding('tls_wrap') as { wrap: RawBindings['wrap'] }).wrap,
  };
}
const raw = process.env.FLOOR_RAW === '1' ? rawBindings() : undefined;
const readBuffer = Buffer.allocUnsafeSlow(16 * 1024);
const noop = (): void => {};

/** TLSWrap on a raw TCP handle, 512-byte records; the chain is checked (verifyError) as every client must */
function viaRawHandle(i: number, done: (ok: boolean) => void): void {
  const r = raw as RawBindings;
  const h = new r.TCP(r.SOCKET);
  const req = new r.TCPConnectWrap();
  // the TLSWrap must be held: collected, it would hand the TCP handle's reads back to JavaScript
  const conn: { destroy(): void; ssl?: unknown } = { destroy: () => h.close() };
  let ticketSinceWrite = false;
  let pinged = false;
  req.oncomplete = (status) => {
    if (status < 0) return done(false);
    const ssl = r.wrap(h, (secureContext as unknown as { context: unknown }).context, false, false);
    conn.ssl = ssl;
    Object.assign(ssl, {
      onhandshakestart: noop,
      onocspresponse: noop,
      onkeylog: noop,
      onerror: () => done(false),
      onnewsession: (_id: Buffer, x: Buffer) => {
        session = leanSession(x, { tls12: true });
        ticketSinceWrite = true;
      },
      onhandshakedone: () => {
        // as src/mqtt/raw-tls.ts: a resumed lean session has no certificate to report on (it was verified when kept)
        const err = ssl.verifyError() as (Error & { code?: string }) | null;
        if (err && !(err.code === 'UNABLE_TO_GET_ISSUER_CERT' && ssl.isSessionReused())) return done(false);
        write(connectPacket(i));
      },
      onread: () => {
        const ok = (r.state[r.kReadBytesOrError] as number) > 0;
        // the CONNACK (then the PINGRESP): a ticket that came after the CONNECT left OpenSSL's write buffer set up
        if (ok && ticketSinceWrite && !pinged) {
          pinged = true;
          write(Buffer.from([0xc0, 0])); // PINGREQ
          return;
        }
        done(ok);
      },
    });
    function write(b: Buffer): void {
      const w = new r.WriteWrap();
      w.handle = ssl;
      w.oncomplete = noop;
      ssl.writeBuffer(w, b);
      ticketSinceWrite = false;
    }
    ssl.setVerifyMode(true, true);
    ssl.setMaxSendFragment(512);
    if (session) ssl.setSession(session);
    ssl.enableSessionCallbacks();
    ssl.useUserBuffer(readBuffer);
    ssl.readStart();
    ssl.start();
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
let connected = 0;
let failed = 0;
let started = 0;
const t0 = performance.now();
await new Promise<void>((resolve) => {
  const next = (): void => {
    if (started >= n) return;
    const i = started++; // distinct client ids: the broker drops an older connection with the same id
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      if (ok) connected++;
      else failed++;
      if (connected + failed === n) resolve();
      else next();
    };
    connect(i, settle);
  };
  for (let i = 0; i < Math.min(inflight, n); i++) next();
});
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
