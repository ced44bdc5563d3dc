/**
 * The floor for an idle TLS device on this Node: N bare `tls.connect` sockets (one shared SecureContext, TLS
 * session resumption), each writes one pre-encoded MQTT CONNECT and reads its CONNACK (an MQTT device's least
 * traffic: the first application data in each direction is what makes OpenSSL and Node allocate their record
 * buffers), then is held open idle; prints the process's RSS before and after, per socket. Whatever fleetload adds
 * per idle TLS device is above this.
 * Prints one JSON line: { sockets, connected, rssBeforeKB, rssAfterKB, perSocketKB, connectsPerSec }.
 * usage: node --expose-gc --import tsx bench/tls-floor.ts URL CA_FILE [sockets=10000] [inflight=200]
 */

import { readFileSync } from 'node:fs';
import tls from 'node:tls';

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
const sockets: tls.TLSSocket[] = [];
// warm up: one connection (loads the TLS code, makes the first session)
await new Promise<void>((resolve, reject) => {
  const s = tls.connect({ host, port, secureContext }, resolve);
  s.once('session', (x: Buffer) => {
    session = x;
  });
  s.on('error', reject);
  sockets.push(s);
});
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
    const s = tls.connect({ host, port, secureContext, session }, () => s.write(connectPacket(i)));
    s.once('data', () => settle(true)); // CONNACK
    s.on('error', () => settle(false));
    sockets.push(s);
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
