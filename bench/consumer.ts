/**
 * Consumer hot path over recorded messages: decode + ledger + delay histogram, on one core, no network.
 * Prints one JSON line: { msgsPerSec, ledgerBytesPerDevice, ... }.
 * usage: node --import tsx bench/consumer.ts [messages=2000000] [devices=100000]
 */

import { systemClock } from '../src/clock.js';
import { Consumer } from '../src/consumer/consumer.js';
import { Ledger } from '../src/consumer/ledger.js';
import { jsonPayload } from '../src/engine/payload.js';
import { Stats } from '../src/stats/stats.js';

const total = Number(process.argv[2] ?? 2_000_000);
const devices = Number(process.argv[3] ?? 100_000);
const runId = 'bench-run';
const build = jsonPayload(runId, 0);
// record: every device's messages, interleaved as a broker would deliver them
const recorded: Buffer[] = [];
const perDevice = Math.ceil(total / devices);
const t0 = Date.now();
for (let seq = 1; seq <= perDevice && recorded.length < total; seq++) {
  for (let d = 0; d < devices && recorded.length < total; d++) {
    const id = `dev-${String(d).padStart(6, '0')}`;
    const ts = t0 + seq * 1000 + d * 0.01;
    recorded.push(Buffer.from(build.build(id, JSON.stringify(id), d, seq, ts, ts + 0.2).text));
  }
}
const stats = new Stats(systemClock.now());
const consumer = new Consumer({ stats, clock: systemClock, runId });
const arrival = t0 + 5000;
// warm up the JIT on a slice, then measure the whole recording
const warm = new Consumer({ stats: new Stats(0), clock: systemClock, runId });
for (let i = 0; i < Math.min(50_000, recorded.length); i++) warm.onMessage(recorded[i] as Buffer, arrival);
const cpu0 = process.cpuUsage();
const start = process.hrtime.bigint();
for (const m of recorded) consumer.onMessage(m, arrival);
const secs = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpu0);
const big = new Ledger();
for (let d = 0; d < 1_000_000; d++) big.record(`dev-${d}`, 1);
console.log(
  JSON.stringify({
    messages: recorded.length,
    devices,
    msgsPerSec: Math.round(recorded.length / secs),
    cpuMsPerMillion: Math.round(((cpu.user + cpu.system) / 1000 / recorded.length) * 1e6),
    received: stats.total.received,
    foreign: stats.total.foreign,
    ledgerBytesPerDevice1M: Math.round((big.memoryBytes() / 1_000_000) * 10) / 10,
  }),
);
