/**
 * Producer per-message encoding, no network: the default JSON PUBLISH written byte by byte (JsonPacketWriter, the
 * engine's path for `--encoding json`), and the payload builders for `properties` and `binary`.
 * Prints one JSON line: { jsonNsPerMsg, propertiesNsPerMsg, binaryNsPerMsg } (medians of 5 rounds).
 * usage: node --import tsx bench/encode.ts [messages=2000000]
 */

import { JsonPacketWriter } from '../src/engine/json-packet.js';
import { payloadFor } from '../src/engine/payload.js';

const total = Number(process.argv[2] ?? 2_000_000);
const devices = 1000;
const runId = 'bench-run-20261128-000000';
const ids = Array.from({ length: devices }, (_, d) => `dev-${String(d).padStart(6, '0')}`);
const topics = ids.map((id) => Buffer.from(`fleetload/${runId}/${id}`));
const t0 = 1_795_815_000_123.25;

function jsonRound(n: number): number {
  const w = new JsonPacketWriter(runId, 256, 4);
  const prefixes = ids.map((id) => w.devicePrefix(JSON.stringify(id)));
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const d = i % devices;
    const seq = 1 + Math.floor(i / devices);
    const ts = t0 + i * 0.137;
    const b = w.write(topics[d] as Buffer, 1, (i & 0xffff) + 1, prefixes[d] as Buffer, d, seq, ts, ts + 0.21);
    sink += b.length;
  }
  const ns = Number(process.hrtime.bigint() - start) / n;
  if (sink === 0) console.log('');
  return ns;
}

function builderRound(encoding: 'properties' | 'binary', n: number): number {
  const b = payloadFor(encoding, runId, 64);
  const quoted = ids.map((id) => JSON.stringify(id));
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const d = i % devices;
    const ts = t0 + i * 0.137;
    const out = b.build(ids[d] as string, quoted[d] as string, d, 1 + Math.floor(i / devices), ts, ts + 0.21);
    sink += out.bytes + (out.props?.length ?? 0);
  }
  const ns = Number(process.hrtime.bigint() - start) / n;
  if (sink === 0) console.log('');
  return ns;
}

const median = (xs: number[]): number => Math.round([...xs].sort((x, y) => x - y)[xs.length >> 1] as number);
jsonRound(200_000); // warm up
builderRound('properties', 50_000);
builderRound('binary', 50_000);
const json: number[] = [];
const props: number[] = [];
const bin: number[] = [];
for (let r = 0; r < 5; r++) {
  json.push(jsonRound(total));
  props.push(builderRound('properties', total / 4));
  bin.push(builderRound('binary', total / 4));
}
console.log(
  JSON.stringify({
    jsonNsPerMsg: median(json),
    propertiesNsPerMsg: median(props),
    binaryNsPerMsg: median(bin),
  }),
);
