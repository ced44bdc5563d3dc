import type { Stage } from './schema.js';

/**
 * The load plan: the one place that does ramp and stage arithmetic. Pure data in, pure data out, no I/O and no
 * clock — the engine follows it, `fleetload plan` prints it, the run loop and the report ask it for the phase
 * (k6's `GetExecutionRequirements`: a scenario computes its own plan before anything runs).
 *
 * Times are milliseconds since the start of the run (the engine's `startAt`).
 *
 * The fleet joins in one order, the same for every segmentation (see `rankOf`): without stages the device at place
 * r of that order connects at r / spawnRate. With stages the fleet size follows the stages linearly; the engine
 * moves its target every FLEET_STEP_MS (its housekeeping sweep): the fleet is then the first `target` places of
 * the order, the places that join at one step connect at the spawn rate from that step on, and the last to join
 * leaves first, at once (ramp down).
 *
 * Messages (open model, see src/engine/engine.ts): device g's slots lie on `φ_g + n × interval` with
 * `φ_g = frac(g × golden ratio) × interval`; a device publishes every slot from the one at or after its connect
 * until it leaves the fleet or the run time ends (and at most messagesPerDevice slots). `expectedMessages` is the
 * number of slots the engine schedules when every device connects at its planned instant and there is no jitter.
 *
 * Segments (k6's execution segments, by arithmetic): segment i of N owns devices
 * [floor(iD/N), floor((i+1)D/N)) with their global ids, phases and join times. The join order depends on the
 * fleet only, never on N, so the N segments together schedule exactly the (deviceId, seq, ts) set one process
 * schedules; and it is spread evenly over the device ids (bit-reversal order), so every contiguous segment holds
 * its share of any prefix of it (within a few devices) and ramps at its share of the spawn rate at the same time
 * as the others. Activations, change times and ramp windows are the whole fleet's; a segment's devices are the
 * ones of its range among them.
 */

/** How often the engine moves the fleet along the stages (its housekeeping sweep). */
export const FLEET_STEP_MS = 250;

/** Phases φ_k = frac(k × GOLDEN) × interval: any prefix of the fleet is spread evenly across the interval. */
export const GOLDEN = 0.618_033_988_749_894_9;

export type Phase = 'ramp' | 'steady' | 'drain';

/** The scenario fields the plan reads (a Scenario fits). */
export interface PlanInput {
  devices: number;
  spawnRate: number;
  runTimeMs: number;
  intervalMs: number;
  stages?: readonly Stage[] | undefined;
  messagesPerDevice?: number | undefined;
}

/** Segment `index` of `count` (0-based): `{ index: 2, count: 4 }` is the third quarter of the fleet. */
export interface Segment {
  index: number;
  count: number;
}

/**
 * Places [from, to) of the whole fleet's join order join from `atMs` on, `gapMs` apart (place r at
 * atMs + (r − from) × gapMs), and leave at `leaveMs`. The segment's devices among them are those in its range.
 */
export interface Activation {
  from: number;
  to: number;
  atMs: number;
  gapMs: number;
  leaveMs: number;
}

export interface Plan {
  /** the whole fleet */
  devices: number;
  segment: Segment;
  /** this segment's devices: global indices [first, first + count) */
  first: number;
  count: number;
  /** this segment's share of the spawn rate (devices per second) */
  spawnRate: number;
  runTimeMs: number;
  intervalMs: number;
  messagesPerDevice: number | undefined;
  stages: readonly Stage[] | undefined;
  /**
   * the engine's target fleet size (this segment's devices) from each time on: the first at 0, then every change;
   * `fleet` is the whole fleet's target then (this segment's target is its share of it)
   */
  changes: ReadonlyArray<{ atMs: number; target: number; fleet: number }>;
  /** who is in the fleet when (places of the whole fleet's join order); leaveMs = Infinity: stays until the end */
  activations: readonly Activation[];
  /** times [from, to) when the (whole) fleet is changing: stages that move, devices still joining */
  rampWindows: ReadonlyArray<readonly [number, number]>;
  /** messages per second when all of this segment's devices publish */
  msgPerSecAtFullFleet: number;
}

/** Devices [first, first + count) of segment i of N: [floor(iD/N), floor((i+1)D/N)). */
export function segmentRange(devices: number, seg: Segment): { first: number; count: number } {
  const first = Math.floor((seg.index * devices) / seg.count);
  const end = Math.floor(((seg.index + 1) * devices) / seg.count);
  return { first, count: end - first };
}

/** What is wrong with a segment for a fleet, or undefined. */
export function segmentProblem(seg: Segment): string | undefined {
  if (!Number.isInteger(seg.count) || seg.count < 1)
    return `segment count ${seg.count} must be an integer ≥ 1`;
  if (!Number.isInteger(seg.index) || seg.index < 0 || seg.index >= seg.count)
    return `segment index ${seg.index} must be an integer from 0 to ${seg.count - 1}`;
  return undefined;
}

/** The fleet size stages ask for at `elapsedMs` (linear within a stage, from 0 before the first, rounded). */
export function stageTargetAt(stages: readonly Stage[], elapsedMs: number): number {
  let from = 0;
  let t = elapsedMs;
  for (const st of stages) {
    if (t < st.durationMs) return Math.round(from + ((st.devices - from) * t) / st.durationMs);
    t -= st.durationMs;
    from = st.devices;
  }
  return from;
}

/** The plan of a scenario, or of one segment of it. Throws on a bad segment (callers validate input first). */
export function plan(s: PlanInput, segment: Segment = { index: 0, count: 1 }): Plan {
  const problem = segmentProblem(segment);
  if (problem) throw new RangeError(problem);
  const { first, count } = segmentRange(s.devices, segment);
  const spawnRate = s.devices > 0 ? (s.spawnRate * count) / s.devices : 0;
  const base = {
    devices: s.devices,
    segment: { ...segment },
    first,
    count,
    spawnRate,
    runTimeMs: s.runTimeMs,
    intervalMs: s.intervalMs,
    messagesPerDevice: s.messagesPerDevice,
    stages: s.stages ? s.stages.map((st) => ({ ...st })) : undefined,
    msgPerSecAtFullFleet: (count * 1000) / s.intervalMs,
  };
  const changes: Array<{ atMs: number; target: number; fleet: number }> = [];
  const activations: Activation[] = [];
  const windows: Array<[number, number]> = [];
  // the whole fleet's gap: a segment's devices join at their places of the one order, so at its share of the rate
  const gapMs = s.spawnRate > 0 ? 1000 / s.spawnRate : 0;
  if (!s.stages) {
    changes.push({ atMs: 0, target: count, fleet: s.devices });
    if (s.devices > 0) {
      activations.push({ from: 0, to: s.devices, atMs: 0, gapMs, leaveMs: Infinity });
      const lastJoin = (s.devices - 1) * gapMs;
      if (lastJoin > 0) windows.push([0, Math.min(lastJoin, s.runTimeMs)]);
    }
  } else {
    let cur = 0;
    let curLocal = 0;
    const open: Activation[] = [];
    for (let k = 0; k * FLEET_STEP_MS < s.runTimeMs; k++) {
      const at = k * FLEET_STEP_MS;
      const want = stageTargetAt(s.stages, at);
      const local = segmentShare(base, want);
      if (k === 0 || local !== curLocal) changes.push({ atMs: at, target: local, fleet: want });
      curLocal = local;
      if (want > cur) {
        const a: Activation = { from: cur, to: want, atMs: at, gapMs, leaveMs: Infinity };
        open.push(a);
        activations.push(a);
        if (want - cur > 1) windows.push([at, at + (want - cur - 1) * gapMs]);
      } else if (want < cur) {
        for (const a of [...open]) {
          if (a.to <= want) continue;
          if (a.from >= want) {
            a.leaveMs = at;
            open.splice(open.indexOf(a), 1);
          } else {
            // places [want, to) leave, [from, want) stay: split, keeping each place's join time
            const gone: Activation = {
              ...a,
              from: want,
              atMs: a.atMs + (want - a.from) * a.gapMs,
              leaveMs: at,
            };
            a.to = want;
            activations.push(gone);
          }
        }
      }
      cur = want;
    }
    // stages that move the fleet are ramps, whatever the step arithmetic does inside them
    let t = 0;
    let from = 0;
    for (const st of s.stages) {
      if (st.devices !== from && st.durationMs > 0) windows.push([t, t + st.durationMs]);
      t += st.durationMs;
      from = st.devices;
    }
  }
  return { ...base, changes, activations, rampWindows: mergeWindows(windows) };
}

function mergeWindows(ws: Array<[number, number]>): Array<[number, number]> {
  const sorted = ws.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const w of sorted) {
    const last = out[out.length - 1];
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else out.push([w[0], w[1]]);
  }
  return out;
}

/*
 * The join order. Device d's place among the fleet's D devices is its place in bit-reversal (van der Corput) order:
 * d before d' when, at the lowest bit where they differ, d has 0: devices 0, 2^(m−1), 2^(m−2), 3 × 2^(m−2) … join
 * first (2^m ≥ D), so any prefix of the order is spread evenly over the device ids: a contiguous segment holds its
 * share of every prefix within a few devices (a prefix is a union of at most log2 D arithmetic progressions;
 * measured ≤ 5.2 devices off the exact share for D up to 10^6, N up to 64). There is one order for the fleet,
 * whatever the segmentation. Not frac(d × golden ratio) sorted: that is each device's publish phase too, so devices
 * would join in phase order, and a ramp longer than an interval would publish in bursts at the whole fleet's rate
 * with silences between (nothing at all in its first interval); bit reversal is independent of the phases (a
 * ramp's message rate grows linearly, as with the ids in order).
 * Every function here is O(log D), no table: rankOf, deviceAtRank, joinedIn.
 */

/** Devices d' < limit before d in the join order (the order compares bits from the lowest up). */
function countBefore(limit: number, d: number): number {
  let n = 0;
  for (let bit = 1; bit <= d; bit *= 2) {
    if (d & bit) {
      // d' with d's bits below `bit` and 0 at it: d' ≡ a (mod 2 × bit)
      const a = d & (bit - 1);
      if (a < limit) n += Math.floor((limit - 1 - a) / (2 * bit)) + 1;
    }
  }
  return n;
}

/** The place (0-based) of global device d in the join order of a fleet of `devices`. */
export function rankOf(devices: number, d: number): number {
  return countBefore(devices, d);
}

/** The global device at place `rank` (0 ≤ rank < devices) of the join order. */
export function deviceAtRank(devices: number, rank: number): number {
  let d = 0;
  let r = rank;
  for (let bit = 1; bit < devices; bit *= 2) {
    const zeros = d < devices ? Math.floor((devices - 1 - d) / (2 * bit)) + 1 : 0;
    if (r >= zeros) {
      r -= zeros;
      d += bit;
    }
  }
  return d;
}

/** Devices of [lo, hi) among the first `places` of the join order of a fleet of `devices`. */
export function joinedIn(devices: number, lo: number, hi: number, places: number): number {
  if (places <= 0 || hi <= lo) return 0;
  if (places >= devices) return hi - lo;
  const next = deviceAtRank(devices, places); // the first device not among them
  return countBefore(hi, next) - countBefore(lo, next);
}

type PlanBase = Pick<Plan, 'devices' | 'segment' | 'first' | 'count'>;

/** The place (0-based) of this segment's device k (global index first + k) in the fleet's join order. */
export function joinRank(p: PlanBase, k: number): number {
  return rankOf(p.devices, p.first + k);
}

/** How many of this segment's devices are among the first `target` of the whole fleet's join order. */
export function segmentShare(p: PlanBase, target: number): number {
  return joinedIn(p.devices, p.first, p.first + p.count, target);
}

const PLACE = 2 ** 24; // > MAX_DEVICES: (place × PLACE + k) is exact in a double

/**
 * This segment's devices in join order: `local[j]` is the local index (global − first) of its j-th device to join,
 * `ranks[j]` that device's place in the whole fleet's order (increasing).
 */
export function joinOrder(p: PlanBase): { local: Uint32Array; ranks: Uint32Array } {
  const n = p.count;
  const keys = new Float64Array(n);
  for (let k = 0; k < n; k++) keys[k] = rankOf(p.devices, p.first + k) * PLACE + k;
  keys.sort();
  const local = new Uint32Array(n);
  const ranks = new Uint32Array(n);
  for (let j = 0; j < n; j++) {
    const v = keys[j] as number;
    local[j] = v % PLACE;
    ranks[j] = Math.floor(v / PLACE);
  }
  return { local, ranks };
}

/** Without stages: when this segment's device k (0-based in the segment) connects. */
export function joinAtMs(p: Plan, k: number): number {
  const a = p.activations[0];
  if (p.stages || !a) return Number.NaN;
  return joinRank(p, k) * a.gapMs;
}

/** The whole fleet's target size at `elapsedMs` (the stages', or every device). */
export function fleetTargetAt(p: Plan, elapsedMs: number): number {
  return p.stages ? stageTargetAt(p.stages, elapsedMs) : p.devices;
}

/** The engine's target fleet size (this segment's devices) at `elapsedMs`: what it should have connected or be connecting. */
export function targetAt(p: Plan, elapsedMs: number): number {
  if (!p.stages) return p.count;
  return segmentShare(p, stageTargetAt(p.stages, elapsedMs));
}

/** Devices of this segment in the fleet at `elapsedMs`: joined (spawn rate included) and not yet left. */
export function devicesAt(p: Plan, elapsedMs: number): number {
  if (elapsedMs < 0 || p.count === 0) return 0;
  let n = 0;
  for (const a of p.activations) {
    if (elapsedMs >= a.leaveMs || elapsedMs < a.atMs) continue;
    const joined = a.gapMs > 0 ? Math.floor((elapsedMs - a.atMs) / a.gapMs) + 1 : a.to - a.from;
    const upto = a.from + Math.max(0, Math.min(a.to - a.from, joined));
    n += segmentShare(p, upto) - segmentShare(p, a.from);
  }
  return n;
}

/** The run's phase at `elapsedMs`: ramp while the fleet moves, steady between, drain after the run time. */
export function phaseAt(p: Plan, elapsedMs: number): Phase {
  if (elapsedMs >= p.runTimeMs) return 'drain';
  for (const [from, to] of p.rampWindows) if (elapsedMs >= from && elapsedMs < to) return 'ramp';
  return 'steady';
}

/** When the fleet first stops moving (the end of the first ramp), or the run time if it never does. */
export function steadyFromMs(p: Plan): number {
  const w = p.rampWindows[0];
  if (!w) return 0;
  return w[0] > 0 ? 0 : Math.min(w[1], p.runTimeMs);
}

/** Slots of a device with phase φ in [joinMs, endMs): the grid point at or after joinMs up to endMs (excluded). */
function slotsIn(phaseMs: number, intervalMs: number, joinMs: number, endMs: number): number {
  if (!(endMs > joinMs)) return 0;
  const first = Math.max(0, Math.ceil((joinMs - phaseMs) / intervalMs));
  const end = Math.ceil((endMs - phaseMs) / intervalMs);
  return Math.max(0, end - first);
}

/**
 * Messages the engine schedules over the run when every device connects at its planned instant (no jitter, no
 * connect failures): the figure `messages.scheduled` of summary.json should meet.
 */
export function expectedMessages(p: Plan): number {
  const interval = p.intervalMs;
  const limit = p.messagesPerDevice;
  const { local, ranks } = joinOrder(p);
  // with a limit, a device that left the fleet is done (the engine never schedules it again)
  const seen = limit !== undefined ? new Uint8Array(p.count) : undefined;
  let total = 0;
  for (const a of p.activations) {
    // this segment's devices at places [a.from, a.to): a run of its join order
    for (let j = lowerBound(ranks, a.from); j < ranks.length && (ranks[j] as number) < a.to; j++) {
      const k = local[j] as number;
      if (seen?.[k]) continue;
      const join = a.atMs + ((ranks[j] as number) - a.from) * a.gapMs;
      if (join >= a.leaveMs || join >= p.runTimeMs) continue;
      if (seen) seen[k] = 1;
      const phase = (((p.first + k) * GOLDEN) % 1) * interval;
      const n = slotsIn(phase, interval, join, Math.min(a.leaveMs, p.runTimeMs));
      total += limit !== undefined ? Math.min(limit, n) : n;
    }
  }
  return total;
}

/** The first index of a sorted array whose value is ≥ v. */
function lowerBound(a: Uint32Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((a[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
