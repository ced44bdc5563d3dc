/**
 * Cost of one wall-clock reading, per option (now() is on the per-message path: the engine reads it per tick and
 * per message sent, the consumer per message received), and how far each option is from the realtime clock.
 * Prints one JSON line per option: { option, nsPerCall (median of 7 rounds), vsBefore (median per-round ratio to
 * `performance.timeOrigin + performance.now()`), offFromRealtimeMs (mean reading − realtime) }.
 * usage: node --import tsx bench/clock.ts [calls=2000000]
 */

import { performance } from 'node:perf_hooks';
import { anchorClocks, SYSTEM_TIME_SOURCES, systemClock, WallClock } from '../src/clock.js';

const calls = Number(process.argv[2] ?? 2_000_000);
const anchor = anchorClocks(SYSTEM_TIME_SOURCES);
const wall = new WallClock();
// the hrtime options anchored through performance.now() (the same CLOCK_MONOTONIC, read back to back)
const hrBase = process.hrtime.bigint();
const hrOffset = anchor.offsetMs + performance.now();
const hrArr = process.hrtime();
const hrArrOffset = anchor.offsetMs + performance.now() - (hrArr[0] * 1e3 + hrArr[1] / 1e6);

const options: Record<string, () => number> = {
  'Date.now() (whole ms: not enough)': Date.now,
  'performance.timeOrigin + performance.now() (before)': () => performance.timeOrigin + performance.now(),
  'WallClock.now(): performance.now() + anchor, drift check (after)': () => wall.now(),
  'systemClock.now() (after, as the engine calls it)': () => systemClock.now(),
  'process.hrtime.bigint() + anchor': () => Number(process.hrtime.bigint() - hrBase) / 1e6 + hrOffset,
  'process.hrtime() + anchor': () => {
    const h = process.hrtime();
    return h[0] * 1e3 + h[1] / 1e6 + hrArrOffset;
  },
};

function cost(fn: () => number): number {
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += fn(); // warm up the JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink += fn();
  const ns = Number(process.hrtime.bigint() - t0) / calls;
  if (sink === 42) console.log(''); // keep the loop
  return ns;
}

/** how far the option's reading is from the realtime clock on average (a fresh edge anchor as reference), ms */
function off(fn: () => number): number {
  const a = anchorClocks(SYSTEM_TIME_SOURCES);
  let sum = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const spinUntil = performance.now() + Math.random() * 0.01; // spread the samples over Date.now()'s ms
    while (performance.now() < spinUntil);
    const ref = performance.now() + a.offsetMs;
    sum += fn() - ref;
  }
  return sum / n;
}

// the machine is shared: the options take turns, round after round, and each round's figures are also taken
// relative to the "before" option measured in the same round (load that comes and goes hits both alike)
const ROUNDS = 7;
const entries = Object.entries(options);
const ns: number[][] = entries.map(() => []);
for (let r = 0; r < ROUNDS; r++)
  entries.forEach(([, fn], i) => {
    ns[i]?.push(cost(fn));
  });
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1] as number;
const before = ns[1] as number[];
entries.forEach(([option, fn], i) => {
  const mine = ns[i] as number[];
  console.log(
    JSON.stringify({
      option,
      nsPerCall: Math.round(median(mine) * 10) / 10,
      vsBefore: Math.round(median(mine.map((x, r) => x / (before[r] as number))) * 100) / 100,
      offFromRealtimeMs: Math.round(off(fn) * 1e4) / 1e4,
    }),
  );
});
