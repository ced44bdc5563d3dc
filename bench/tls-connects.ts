/**
 * TLS handshakes per second and client CPU per handshake, through fleetload's own transport (src/mqtt/transport.ts),
 * against a TLS broker: N devices connect (at most `inflight` handshakes at once), wait for the server's session
 * ticket, close; PAIRS pairs of waves (3), alternating: no kept session offered (`resume: false`: full handshakes,
 * what every connect cost before resumption; each device still keeps the session it is given) and as fleetload
 * connects (resuming the session the server last gave).
 * Prints one JSON line per wave: { wave, devices, full, resumed, failed, perSec, cpuUsPerHandshake }.
 * With CERT_DIR (`fleetload certs` output), device i connects with its own certificate DIR/dev-00000i.pem and key
 * (mutual TLS): a device then only ever resumes its own session, so the resumed waves need each device to have
 * connected before — the waves reuse the same devices.
 * TLS_VERSION=1.2 (or 1.3): pin the version, as `--tls-version` does (default: Node's negotiation, TLS 1.3 here).
 * SOCKETS=node: connect with tls.connect, as `--sockets node` does (default: TLS on raw handles, src/mqtt/raw-tls.ts).
 * usage: node --import tsx bench/tls-connects.ts URL CA_FILE [devices=2000] [inflight=200] [CERT_DIR]
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Channel, openChannel, tlsHandshakes } from '../src/mqtt/transport.js';

const [url, caFile] = process.argv.slice(2);
if (!url || !caFile) {
  console.error('usage: tls-connects.ts URL CA_FILE [devices] [inflight]');
  process.exit(2);
}
const devices = Number(process.argv[4] ?? 2000);
const inflight = Number(process.argv[5] ?? 200);
const ca = readFileSync(caFile);
const certDir = process.argv[6];
const idOf = (i: number): string => `dev-${String(i).padStart(6, '0')}`;
/** per device: its certificate and key, read once (as a run's identity provider would per connect, same bytes) */
const mtls = certDir
  ? Array.from({ length: devices }, (_, i) => ({
      cert: readFileSync(join(certDir, `${idOf(i)}.pem`)),
      key: readFileSync(join(certDir, `${idOf(i)}.key`)),
    }))
  : undefined;
const target = new URL(url);
const pinned = process.env.TLS_VERSION;
if (pinned !== undefined && pinned !== '1.2' && pinned !== '1.3') {
  console.error('TLS_VERSION: 1.2 or 1.3');
  process.exit(2);
}
const tlsVersion: '1.2' | '1.3' | undefined = pinned;
const sockets = process.env.SOCKETS === 'node' ? 'node' : 'raw';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function wave(name: string, resume: boolean): Promise<void> {
  const before = { ...tlsHandshakes };
  const channels: Channel[] = [];
  let failed = 0;
  let started = 0;
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (started >= devices) return;
      const i = started++;
      let settled = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        done++;
        if (done === devices) resolve();
        else next();
      };
      channels.push(
        openChannel(
          { url: target, ca, resume, tlsVersion, sockets, ...mtls?.[i] },
          { onOpen: settle, onBytes() {}, onError: () => failed++, onClose: settle },
        ),
      );
    };
    for (let i = 0; i < Math.min(inflight, devices); i++) next();
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const full = tlsHandshakes.full - before.full;
  const resumed = tlsHandshakes.resumed - before.resumed;
  await sleep(300); // the server's session tickets arrive after the handshake
  for (const c of channels) c.destroy();
  await sleep(300);
  console.log(
    JSON.stringify({
      wave: name,
      devices,
      full,
      resumed,
      failed,
      perSec: Math.round(((full + resumed) * 1000) / ms),
      cpuUsPerHandshake: Number(((cpu.user + cpu.system) / Math.max(1, full + resumed)).toFixed(1)),
    }),
  );
}

// PAIRS (default 3) pairs of waves: one wave moves by about ±10% here, so the bench judges the medians
const pairs = Number(process.env.PAIRS ?? 3);
if (!Number.isInteger(pairs) || pairs < 1) {
  console.error('PAIRS: a whole number ≥ 1');
  process.exit(2);
}
for (let k = 1; k <= pairs; k++) {
  await wave(k === 1 ? 'full handshakes (no resumption: before)' : `full handshakes again (${k})`, false);
  await wave(k === 1 ? 'with resumption (after)' : `with resumption again (${k})`, true);
}
