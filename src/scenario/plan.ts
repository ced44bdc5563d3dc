import type { Stage } from './schema.js';

/**
 * The load plan: the one place that does ramp and stage arithmetic. Pure data in, pure data out, no I/O and no
 * clock — the engine follows it, `fleetload plan` prints it, the run loop and the report ask it for the phase
 * (k6's `GetExecutionRequirements`: a scenario computes its own plan before anything runs).
 *
 * Times are milliseconds since the start of the run (the engine's `startAt`).
 *
 * The fleet: without stages device k (of this segment) connects at `joinAtMs(plan, k)`: one device every
 * 1000 / spawnRate ms across the whole fleet. With stages the fleet size follows the stages linearly; the engine
 * moves its target every FLEET_STEP_MS (its housekeeping sweep), and devices that join at one step connect at the
 * spawn rate from that step on. Devices leave (ramp down) at once.
 *
 * Messages (open model, see src/engine/engine.ts): device g's slots lie on `φ_g + n × interval` with
 * `φ_g = frac(g × golden ratio) × interval`; a device publishes every slot from the one at or after its connect
 * until it leaves the fleet or the run time ends (and at most messagesPerDevice slots). `expectedMessages` is the
 * number of slots the engine schedules when every device connects at its planned instant and there is no jitter.
 *
 * Segments (k6's execution segments, by arithmetic): segment i of N owns devices
 * [floor(iD/N), floor((i+1)D/N)) with their global ids and phases. Devices join the fleet in one order that
 * interleaves the segments (each device's place in its segment, (k + ½) / size, sorted; ties to the lower
 * segment), so at any fleet size the N segments' devices add up to exactly that size, each segment holds its share,
 * and each connects at its share of the spawn rate. With N = 1 the order is 0, 1, 2, …
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

/** Devices [from, to) of the segment join from `atMs` on, `gapMs` apart (device k at atMs + (k − from) × gapMs), and leave at `leaveMs`. */
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
  /** the engine's target fleet size (this segment's devices) from each time on: the first at 0, then every change */
  changes: ReadonlyArray<{ atMs: number; target: number }>;
  /** who is in the fleet when; leaveMs = Infinity for devices that stay until the end */
  activations: readonly Activation[];
  /** times [from, to) when the fleet is changing: stages that move, devices still joining */
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
  const changes: Array<{ atMs: number; target: number }> = [];
  const activations: Activation[] = [];
  const windows: Array<[number, number]> = [];
  if (!s.stages) {
    changes.push({ atMs: 0, target: count });
    if (count > 0) {
      // one activation: joins follow the global order, so the gap is the whole fleet's and offsets per device
      activations.push({ from: 0, to: count, atMs: 0, gapMs: 1000 / s.spawnRate, leaveMs: Infinity });
      const lastJoin = joinAt(base, count - 1, s.spawnRate);
      if (lastJoin > 0) windows.push([0, Math.min(lastJoin, s.runTimeMs)]);
    }
  } else {
    const gapMs = spawnRate > 0 ? 1000 / spawnRate : 0;
    let cur = 0;
    const open: Activation[] = [];
    for (let k = 0; k * FLEET_STEP_MS < s.runTimeMs; k++) {
      const at = k * FLEET_STEP_MS;
      const want = segmentShare(base, stageTargetAt(s.stages, at));
      if (k === 0 || want !== cur) changes.push({ atMs: at, target: want });
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
            // devices [want, to) leave, [from, want) stay: split, keeping each device's join time
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

type PlanBase = Pick<Plan, 'devices' | 'segment' | 'first' | 'count'>;

/** Sizes of the segments of a fleet. */
function segSize(devices: number, n: number, i: number): number {
  return Math.floor(((i + 1) * devices) / n) - Math.floor((i * devices) / n);
}

/**
 * The place (0-based) of this segment's device k in the fleet's join order. Device k of a segment of size s has the
 * key (2k + 1) / 2s; all devices sorted by key, ties to the lower segment. Integer arithmetic: exact.
 */
export function joinRank(p: PlanBase, k: number): number {
  const n = p.segment.count;
  if (n === 1) return k;
  const i = p.segment.index;
  const si = p.count;
  let r = k;
  for (let o = 0; o < n; o++) {
    if (o === i) continue;
    const so = segSize(p.devices, n, o);
    if (so === 0) continue;
    // devices k' of segment o before k: (2k' + 1) × si < (2k + 1) × so (≤ for a lower segment)
    const x = (2 * k + 1) * so;
    const c = o < i ? Math.floor((x - si) / (2 * si)) + 1 : Math.ceil((x - si) / (2 * si));
    r += Math.max(0, Math.min(so, c));
  }
  return r;
}

/** How many of this segment's devices are among the first `target` of the whole fleet's join order. */
export function segmentShare(p: PlanBase, target: number): number {
  if (p.segment.count === 1) return Math.max(0, Math.min(p.count, target));
  // ranks grow with k: the first k whose rank is ≥ target
  let lo = 0;
  let hi = p.count;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (joinRank(p, mid) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function joinAt(p: PlanBase, k: number, spawnRate: number): number {
  return (joinRank(p, k) * 1000) / spawnRate;
}

/** Without stages: when this segment's device k (0-based in the segment) connects. */
export function joinAtMs(p: Plan, k: number): number {
  const a = p.activations[0];
  if (p.stages || !a) return Number.NaN;
  return p.segment.count === 1 ? k * a.gapMs : joinRank(p, k) * a.gapMs;
}

/** The engine's target fleet size (this segment's devices) at `elapsedMs`: what it should have connected or be connecting. */
export function targetAt(p: Plan, elapsedMs: number): number {
  if (!p.stages) return p.count;
  return segmentShare(p, stageTargetAt(p.stages, elapsedMs));
}

/** Devices of this segment in the fleet at `elapsedMs`: joined (spawn rate included) and not yet left. */
export function devicesAt(p: Plan, elapsedMs: number): number {
  if (elapsedMs < 0) return 0;
  if (!p.stages) {
    if (p.count === 0) return 0;
    const gap = p.activations[0]?.gapMs ?? 0;
    if (p.segment.count === 1) return Math.min(p.count, Math.floor(elapsedMs / gap) + 1);
    // joins in global order: how many of the fleet's first ⌊t / gap⌋ + 1 are ours
    return segmentShare(p, Math.floor(elapsedMs / gap) + 1);
  }
  let n = 0;
  for (const a of p.activations) {
    if (elapsedMs >= a.leaveMs || elapsedMs < a.atMs) continue;
    const joined = a.gapMs > 0 ? Math.floor((elapsedMs - a.atMs) / a.gapMs) + 1 : a.to - a.from;
    n += Math.max(0, Math.min(a.to - a.from, joined));
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
  // with a limit, a device that left the fleet is done (the engine never schedules it again)
  const seen = limit !== undefined ? new Uint8Array(p.count) : undefined;
  let total = 0;
  for (const a of p.activations) {
    for (let k = a.from; k < a.to; k++) {
      if (seen?.[k]) continue;
      const join = p.stages ? a.atMs + (k - a.from) * a.gapMs : joinAtMs(p, k);
      if (join >= a.leaveMs || join >= p.runTimeMs) continue;
      if (seen) seen[k] = 1;
      const phase = (((p.first + k) * GOLDEN) % 1) * interval;
      const n = slotsIn(phase, interval, join, Math.min(a.leaveMs, p.runTimeMs));
      total += limit !== undefined ? Math.min(limit, n) : n;
    }
  }
  return total;
}
