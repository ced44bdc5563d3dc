import type { Clock, TimerHandle } from '../clock.js';
import {
  createIdentityProvider,
  type DeviceIdentity,
  IdentityError,
  type IdentityProvider,
} from '../identity/identity.js';
import { Connection, type ConnectionHandler, State, type TransportFactory } from '../mqtt/connection.js';
import { encodeTopic, type ProtocolVersion } from '../mqtt/packets.js';
import { reasonName } from '../mqtt/reasons.js';
import type { TransportOptions } from '../mqtt/transport.js';
import {
  FLEET_STEP_MS,
  fleetTargetAt,
  GOLDEN,
  joinOrder,
  type Plan,
  plan,
  type Segment,
  segmentShare,
} from '../scenario/plan.js';
import type { Scenario } from '../scenario/schema.js';
import { compileTemplate } from '../scenario/template.js';
import type { Stats } from '../stats/stats.js';
import { DueQueue } from './due-queue.js';
import { JsonPacketWriter } from './json-packet.js';
import { type PayloadBuilder, payloadFor } from './payload.js';

/**
 * The device engine: every device of this process, one scheduler, no timer per device.
 *
 * Open model: device k's n-th message is due at `start + φ_k + n × interval` whether or not the previous one was
 * acknowledged; its `ts` is that scheduled time, and `scheduleLag` records how late the generator actually wrote it.
 * Phases φ_k follow the golden-ratio sequence, so any prefix of the fleet (during the ramp) is spread evenly.
 * Devices connect following the spawn rate from one connect queue, which also holds reconnects (backoff with
 * full jitter). They join, and leave on a ramp down, in the fleet's one join order (src/scenario/plan.ts): the
 * engine keeps its devices in that order and moves the fleet by position in it, so N engines running the N
 * segments of a fleet connect, park and publish exactly the devices one engine would, when it would.
 */

export interface EngineOptions {
  scenario: Scenario;
  url: URL;
  stats: Stats;
  clock: Clock;
  /**
   * the segment of the fleet this engine runs (its devices, their join times, its share of the spawn rate); the
   * scenario's (`--segment i/N`, the whole fleet by default) when not given
   */
  segment?: Segment;
  payload?: PayloadBuilder;
  transport?: Partial<TransportOptions>;
  /** device credentials, topic and TLS material; from the scenario's templates and preset by default */
  identity?: IdentityProvider;
  /** opens device byte streams (tests pass in-memory ones) */
  openTransport?: TransportFactory;
  /** reconnect backoff bounds */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
}

/** wasConnected: connected before, then parked by a ramp down (dashboard or stages) */
const PARKED_SINCE = 2;

/** one sweep moves the fleet along the stages: the plan counts on this step */
const HOUSEKEEPING_MS = FLEET_STEP_MS;

export type EnginePhase = 'idle' | 'running' | 'draining' | 'stopped';

export class Engine implements ConnectionHandler {
  phase: EnginePhase = 'idle';
  /** time the ramp started; slots are laid from here */
  startAt = 0;
  /** no message is scheduled at or after this time */
  endAt = Number.POSITIVE_INFINITY;
  /** devices that connected at least once */
  everConnected = 0;

  private readonly s: Scenario;
  /** ramp, stages and spawn rate: the engine follows the plan (src/scenario/plan.ts) */
  readonly plan: Plan;
  private readonly stats: Stats;
  private readonly clock: Clock;
  private readonly first: number;
  private readonly count: number;
  private readonly version: ProtocolVersion;
  private readonly payload: PayloadBuilder;
  /** the default JSON message written straight into bytes (undefined: other encodings, templates, tests' builders) */
  private readonly jsonWriter: JsonPacketWriter | undefined;
  /** per device `{"deviceId":…,"seq":` for jsonWriter, made at its first message; null: too big, general path */
  private readonly jsonPrefix: Array<Buffer | null | undefined>;
  private readonly transport: TransportOptions;
  private readonly openTransport: TransportFactory | undefined;
  private readonly random: () => number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;

  // per device, struct of arrays (index = device index − first)
  private readonly conns: Array<Connection | undefined>;
  private readonly ids: string[];
  private readonly idJson: string[];
  private readonly topics: Array<Buffer | undefined>;
  private readonly seq: Float64Array;
  /** connect failures per device (index-aligned with deviceId), for devices.csv */
  private readonly connectFails: Uint32Array;
  private readonly slot: Float64Array;
  private readonly inSendQueue: Uint8Array;
  /**
   * The due time of each device's one live entry in the send queue (NaN: none). An entry that pops with another
   * time is stale — its device was parked, and maybe brought back with a schedule of its own — and is skipped: a
   * device never publishes on two schedules, and a parked one is not finished.
   */
  private readonly dueAt: Float64Array;
  private readonly attempts: Uint8Array;
  /** 0: never connected · 1: connected before (its next connect is a reconnect) · PARKED_SINCE: connected, then
   * taken out of the fleet (its next connect is a return, not a reconnect) */
  private readonly wasConnected: Uint8Array;
  /** connection bytes already handed to stats (takeBytesSent) */
  private bytesReported = 0;
  /** slots taken (sent or skipped), for messagesPerDevice */
  private readonly slots: Float64Array;
  private readonly done: Uint8Array;
  /** devices that reached messagesPerDevice */
  devicesDone = 0;
  /** messages waiting per device (offline buffer / backpressure wait): a ring of scheduled times, made lazily */
  private readonly pending: Array<Float64Array | undefined>;
  private readonly pendHead: Uint32Array;
  private readonly pendLen: Uint32Array;
  /** devices taken out of the fleet by setTargetDevices (ramp down): not reconnected, not scheduled */
  private readonly parked: Uint8Array;
  /** devices of this process that should be connected now (≤ count): the first `target` of `order` */
  private target: number;
  /** this engine's devices (local indices) in the fleet's join order, and each one's place in the whole fleet's */
  private readonly order: Uint32Array;
  private readonly orderRank: Uint32Array;
  /** the whole fleet's target (stages) as of the last fleet step: where the next joiners' spawn-rate gaps start */
  private fleetTarget: number;
  /** the whole fleet's gap between joins (1 / spawnRate): a segment's devices take their places in it */
  private readonly joinGapMs: number;
  private intervalMs: number;
  private readonly sourceIps: readonly string[];
  private readonly tickMs: number;
  private lastTickAt = Number.NEGATIVE_INFINITY;
  /** connect-rate token bucket (reconnects included) */
  private tokens = 0;
  private tokensAt = 0;

  private readonly sendQueue = new DueQueue();
  private readonly connectQueue = new DueQueue();
  private timer: TimerHandle | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private housekeeping: TimerHandle | undefined;
  private readonly identity: IdentityProvider;
  /** when a device's credentials expire (SAS tokens): it reconnects with fresh ones before; 0 = never */
  private readonly renewAt: Float64Array;
  /** devices disconnected by us to renew credentials: reconnect at once, not counted as errors */
  private readonly renewing: Uint8Array;
  private readonly keepaliveSec: number;
  private readonly commandFilter: ((v: Record<string, string | number>) => string) | undefined;
  /** devices currently connected */
  connectedNow = 0;

  constructor(o: EngineOptions) {
    this.s = o.scenario;
    this.stats = o.stats;
    this.clock = o.clock;
    this.plan = plan(o.scenario, o.segment ?? o.scenario.segment);
    this.first = this.plan.first;
    this.count = this.plan.count;
    this.version = o.scenario.mqttVersion === '5' ? 5 : 4;
    this.payload =
      o.payload ??
      payloadFor(
        o.scenario.encoding,
        o.scenario.runId,
        o.scenario.payloadSizeBytes,
        o.scenario.payloadTemplate,
      );
    this.jsonWriter =
      o.payload === undefined && o.scenario.encoding === 'json' && o.scenario.payloadTemplate === undefined
        ? new JsonPacketWriter(o.scenario.runId, o.scenario.payloadSizeBytes, this.version)
        : undefined;
    this.jsonPrefix = this.jsonWriter ? new Array(this.count) : [];
    this.transport = { url: o.url, sockets: o.scenario.sockets, ...o.transport };
    this.openTransport = o.openTransport;
    this.random = o.random ?? Math.random;
    this.backoffBaseMs = o.backoffBaseMs ?? o.scenario.reconnectMinMs;
    this.backoffMaxMs = o.backoffMaxMs ?? o.scenario.reconnectMaxMs;
    this.sourceIps = o.scenario.sourceIps;
    this.intervalMs = o.scenario.intervalMs;
    this.tickMs = o.scenario.tickMs;
    const n = this.count;
    this.target = n;
    const order = joinOrder(this.plan);
    this.order = order.local;
    this.orderRank = order.ranks;
    this.fleetTarget = this.plan.devices;
    this.joinGapMs = 1000 / o.scenario.spawnRate;
    this.pending = new Array(n).fill(undefined);
    this.pendHead = new Uint32Array(n);
    this.pendLen = new Uint32Array(n);
    this.parked = new Uint8Array(n);
    this.conns = new Array(n).fill(undefined);
    this.topics = new Array(n).fill(undefined);
    this.seq = new Float64Array(n);
    this.connectFails = new Uint32Array(n);
    this.slot = new Float64Array(n);
    this.inSendQueue = new Uint8Array(n);
    this.dueAt = new Float64Array(n).fill(Number.NaN);
    this.attempts = new Uint8Array(n);
    this.wasConnected = new Uint8Array(n);
    this.slots = new Float64Array(n);
    this.done = new Uint8Array(n);
    const idOf = compileTemplate(this.s.deviceId);
    this.ids = new Array(n);
    this.idJson = new Array(n);
    for (let i = 0; i < n; i++) {
      const id = idOf({ index: this.first + i, runId: this.s.runId });
      this.ids[i] = id;
      this.idJson[i] = JSON.stringify(id);
    }
    this.identity = o.identity ?? createIdentityProvider(o.scenario);
    this.renewAt = new Float64Array(n);
    this.renewing = new Uint8Array(n);
    this.keepaliveSec = Math.round(this.s.keepaliveMs / 1000);
    this.commandFilter = this.s.commandTopic !== undefined ? compileTemplate(this.s.commandTopic) : undefined;
  }

  get firstIndex(): number {
    return this.first;
  }

  get runId(): string {
    return this.s.runId;
  }

  deviceId(i: number): string {
    return this.ids[i] as string;
  }

  /** Last seq written by each device (index-aligned with deviceId), for the consumer's loss ledger. */
  lastSeqs(): Float64Array {
    return this.seq;
  }

  /** Connect failures of each device (index-aligned with deviceId), for the per-device breakdown. */
  connectFailuresPerDevice(): Uint32Array {
    return this.connectFails;
  }

  /** every device has sent its messagesPerDevice (never true without that limit) */
  get allDone(): boolean {
    // a segment with no devices is not done before its run time without that limit: it runs with the others
    return this.s.messagesPerDevice !== undefined && this.devicesDone === this.count;
  }

  /** messages waiting in device buffers (offline / backpressure wait) */
  get buffered(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) n += this.pendLen[i] as number;
    return n;
  }

  get targetDevices(): number {
    return this.target;
  }

  get currentIntervalMs(): number {
    return this.intervalMs;
  }

  /**
   * Changes the fleet size while running (the web UI and the workers' parent call this): this engine's devices past
   * the first `n` of its join order disconnect at once (ramp down); parked ones among them connect at the fleet's
   * spawn rate, each at its place in the fleet's join order (ramp up).
   */
  setTargetDevices(n: number): void {
    if (this.phase !== 'running') return; // draining or stopped: the fleet is no longer reshaped
    const target = Math.max(0, Math.min(this.count, Math.floor(n)));
    this.reshape(target, this.clock.now(), Number.POSITIVE_INFINITY);
    // the smallest whole-fleet target this share stands for
    this.fleetTarget = target > 0 ? (this.orderRank[target - 1] as number) + 1 : 0;
  }

  /**
   * Moves this engine to its share of a whole-fleet target: the first `target` positions of its join order are in
   * the fleet. A joiner at place r connects at now + (r − base) / spawnRate, base the whole fleet's previous target
   * (or the first joiner's place, if that is lower), as one engine running the whole fleet would.
   */
  private reshape(target: number, now: number, fleetBase: number): void {
    const order = this.order;
    const ranks = this.orderRank;
    const gapMs = this.joinGapMs;
    let base = fleetBase;
    for (let j = 0; j < this.count; j++) {
      const i = order[j] as number;
      if (j >= target && !this.parked[i]) {
        this.parked[i] = 1;
        // its next connect is a return to the fleet, not a reconnect (devices.reconnects counts outages only)
        if (this.wasConnected[i]) this.wasConnected[i] = PARKED_SINCE;
        this.inSendQueue[i] = 0;
        this.dueAt[i] = Number.NaN;
        this.dropPending(i, 'parked', 'device removed from the fleet (ramp down) with messages waiting');
        const c = this.conns[i];
        if (c && c.state !== State.Idle) c.disconnect(this.version);
      } else if (j < target && this.parked[i]) {
        this.parked[i] = 0;
        const r = ranks[j] as number;
        if (r < base) base = r; // joiners come in order: only the first can be below the base
        this.connectQueue.push(now + (r - base) * gapMs, i);
      }
    }
    this.target = target;
    this.arm(now);
  }

  /** Changes every device's interval from its next message on (rate change while running). */
  setIntervalMs(ms: number): void {
    if (!(ms > 0) || this.phase !== 'running') return;
    this.intervalMs = ms;
  }

  /**
   * MQTT bytes written since the previous call (every device's connections; counted by each Connection with one
   * add per write): called once per snapshot, never per message.
   */
  takeBytesSent(): number {
    let n = 0;
    for (const c of this.conns) if (c) n += c.bytesSent;
    const delta = n - this.bytesReported;
    this.bytesReported = n;
    return delta;
  }

  get inflight(): number {
    let n = 0;
    for (const c of this.conns) if (c) n += c.inflight;
    return n;
  }

  /** Starts the ramp: each device connects at start + its place in the join order / spawnRate; slots end at start + runTime. */
  start(): void {
    const now = this.clock.now();
    this.startAt = now;
    this.endAt = now + this.s.runTimeMs;
    this.phase = 'running';
    this.tokens = 1;
    this.tokensAt = now;
    if (this.s.stages) {
      // stages drive the fleet size: everyone starts parked, housekeeping moves the target along the stages
      this.parked.fill(1);
      this.target = 0;
      const fleet = fleetTargetAt(this.plan, 0);
      this.reshape(segmentShare(this.plan, fleet), now, 0);
      this.fleetTarget = fleet;
    } else {
      const gapMs = this.joinGapMs;
      for (let j = 0; j < this.count; j++)
        this.connectQueue.push(now + (this.orderRank[j] as number) * gapMs, this.order[j] as number);
    }
    this.arm(now);
    this.scheduleHousekeeping();
  }

  /** Stops scheduling new messages (end of run or Ctrl-C); connections stay up for the drain. */
  stopPublishing(): void {
    if (this.phase !== 'running') return;
    this.phase = 'draining';
    this.endAt = Math.min(this.endAt, this.clock.now());
    this.sendQueue.clear();
    this.connectQueue.clear();
    this.inSendQueue.fill(0);
    this.dueAt.fill(Number.NaN);
    // what still waits in device buffers will never be sent: scheduled = sent + skipped holds at the end
    for (let i = 0; i < this.count; i++) {
      if (this.pendLen[i])
        this.dropPending(i, 'unsent', 'buffered, still waiting when the run ended (not sent)');
    }
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Disconnects every device politely; messages still in flight are reported as unconfirmed by the caller. */
  stop(): void {
    this.stopPublishing();
    this.phase = 'stopped';
    if (this.housekeeping) this.clock.clearTimeout(this.housekeeping);
    this.housekeeping = undefined;
    for (const c of this.conns) if (c && c.state !== State.Idle) c.disconnect(this.version);
  }

  // ---- scheduling -------------------------------------------------------------------------------------------

  private arm(now: number): void {
    const next = Math.min(
      this.sendQueue.peekTime(),
      Math.max(this.connectQueue.peekTime(), this.nextTokenAt(now)),
    );
    if (next === Number.POSITIVE_INFINITY) return;
    // wake at most once per tick: everything due by then goes out together (fewer wake-ups and context switches;
    // the lateness is measured as scheduleLag, and e2e still counts from the scheduled time)
    const at = Math.max(next, this.lastTickAt + this.tickMs);
    if (this.timer && at >= this.timerAt) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.tick(), Math.max(0, at - now));
  }

  /** The hot loop: everything due is connected or published, then the timer is re-armed for the next due. */
  private tick(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.phase !== 'running') return;
    const now = this.clock.now();
    this.lastTickAt = now;
    const cq = this.connectQueue;
    while (cq.peekTime() <= now && this.takeToken(now)) this.connect(cq.pop(), now);
    const q = this.sendQueue;
    const endAt = this.endAt;
    const interval = this.intervalMs;
    const limit = this.s.messagesPerDevice ?? Number.POSITIVE_INFINITY;
    while (q.peekTime() <= now) {
      const due = q.peekTime();
      const i = q.pop();
      if (due !== this.dueAt[i]) continue; // stale: the device was parked since (see dueAt)
      if (due >= endAt) {
        this.finishDevice(i);
        continue;
      }
      this.send(i, due, now);
      const base = (this.slot[i] as number) + interval;
      this.slot[i] = base;
      if (base < endAt && (this.slots[i] as number) < limit) this.queueSend(i, this.jittered(base));
      else this.finishDevice(i);
    }
    this.arm(this.clock.now());
  }

  /** Connect-rate limit (token bucket, burst 1 s worth); without a limit every attempt goes at once. */
  private takeToken(now: number): boolean {
    const rate = this.s.connectRate;
    if (rate === undefined) return true;
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1 - 1e-9) return false; // tolerance: a timer armed for the next token must find it
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  private nextTokenAt(now: number): number {
    const rate = this.s.connectRate;
    if (rate === undefined || this.tokens >= 1) return now;
    return now + ((1 - this.tokens) * 1000) / rate;
  }

  private jittered(base: number): number {
    const j = this.s.jitterMs;
    return j > 0 ? base + (this.random() * 2 - 1) * j : base;
  }

  private queueSend(i: number, at: number): void {
    this.dueAt[i] = at;
    this.sendQueue.push(at, i);
  }

  private finishDevice(i: number): void {
    this.inSendQueue[i] = 0;
    this.dueAt[i] = Number.NaN;
    if (this.s.messagesPerDevice !== undefined && !this.done[i]) {
      this.done[i] = 1;
      this.devicesDone++;
    }
  }

  /** One due slot: written now, buffered, or skipped (counted) — per the offline and backpressure policies. */
  private send(i: number, ts: number, now: number): void {
    const stats = this.stats;
    this.slots[i] = (this.slots[i] as number) + 1;
    stats.scheduledOne();
    const c = this.conns[i];
    if (!c || c.state !== State.Connected) {
      if (this.s.offline === 'buffer') this.bufferMessage(i, ts);
      else {
        stats.count('skipped');
        stats.error('offline', 'offline', 'message due while the device was disconnected (not sent)');
      }
      return;
    }
    if (this.pendLen[i]) {
      // older messages wait: keep the order
      this.bufferMessage(i, ts);
      this.drainPending(i, now);
      return;
    }
    if (this.s.qos > 0 && c.inflight >= this.s.inflight) {
      if (this.s.backpressure === 'wait') this.bufferMessage(i, ts);
      else {
        stats.count('skipped');
        stats.error('backpressure', 'inflight-full', `in-flight window (${this.s.inflight}) full (not sent)`);
      }
      return;
    }
    this.write(i, c, ts, now);
  }

  /** Buffers a due message (its `ts` stays the scheduled time); a full buffer drops its oldest, counted. */
  private bufferMessage(i: number, ts: number): void {
    const cap = this.s.offlineBuffer;
    let ring = this.pending[i];
    if (!ring) {
      ring = new Float64Array(cap);
      this.pending[i] = ring;
    }
    let len = this.pendLen[i] as number;
    let head = this.pendHead[i] as number;
    if (len === cap) {
      head = (head + 1) % cap;
      len--;
      this.stats.count('skipped');
      this.stats.error(
        'buffer-full',
        'buffer-full',
        `device buffer (${cap}) full: oldest message dropped (not sent)`,
      );
    }
    ring[(head + len) % cap] = ts;
    this.pendHead[i] = head;
    this.pendLen[i] = len + 1;
  }

  /** Sends buffered messages while the device is connected and its window has room (a burst on reconnect). */
  private drainPending(i: number, now: number): void {
    const c = this.conns[i];
    const ring = this.pending[i];
    if (!c || !ring) return;
    const cap = ring.length;
    while ((this.pendLen[i] as number) > 0 && c.state === State.Connected) {
      if (this.s.qos > 0 && c.inflight >= this.s.inflight) return;
      const head = this.pendHead[i] as number;
      const ts = ring[head] as number;
      this.pendHead[i] = (head + 1) % cap;
      this.pendLen[i] = (this.pendLen[i] as number) - 1;
      this.write(i, c, ts, now, true);
    }
    if (this.pendLen[i] === 0) {
      this.pending[i] = undefined; // give the memory back
      this.pendHead[i] = 0;
    }
  }

  private dropPending(i: number, code: string, reason: string): void {
    const n = this.pendLen[i] as number;
    if (n === 0) return;
    this.stats.count('skipped', n);
    this.stats.error('buffered', code, reason, n);
    this.pendLen[i] = 0;
    this.pendHead[i] = 0;
    this.pending[i] = undefined;
  }

  /** `buffered`: the message waited in the offline buffer, so its lateness is the outage's, not the generator's */
  private write(i: number, c: Connection, ts: number, now: number, buffered = false): void {
    const qos = this.s.qos;
    const seq = (this.seq[i] as number) + 1;
    this.seq[i] = seq;
    const topic = this.topics[i] as Buffer;
    const w = this.jsonWriter;
    let prefix = w ? this.jsonPrefix[i] : null;
    if (w && prefix === undefined) {
      const p = w.devicePrefix(this.idJson[i] as string);
      prefix = w.fits(topic, p) ? p : null;
      this.jsonPrefix[i] = prefix;
    }
    if (w && prefix) {
      const id = c.beginPublish(qos, now);
      if (c.sendTransient(w.write(topic, qos, id, prefix, this.first + i, seq, ts, now), now)) w.retire();
    } else {
      const p = this.payload.build(
        this.ids[i] as string,
        this.idJson[i] as string,
        this.first + i,
        seq,
        ts,
        now,
      );
      c.publish(topic, qos, this.version, p.buf ?? p.text, p.bytes, now, p.props);
    }
    this.stats.written(buffered ? -1 : now - ts, qos === 0);
  }

  private connect(i: number, now: number): void {
    let c = this.conns[i];
    if (c && c.state !== State.Idle) return;
    if (this.parked[i]) return; // left the fleet (ramp down) while waiting for its turn to connect
    if (!c) {
      c = new Connection(i, this);
      this.conns[i] = c;
    }
    this.stats.count('connectAttempts');
    let id: DeviceIdentity;
    try {
      id = this.identity.forDevice(this.first + i, this.ids[i] as string, now);
    } catch (e) {
      if (!(e instanceof IdentityError)) throw e;
      this.connectFailed(i, 'identity', e.code, e.message);
      return;
    }
    if (!this.topics[i]) this.topics[i] = encodeTopic(id.topic);
    this.renewAt[i] = id.renewAt ?? 0;
    const ips = this.sourceIps;
    let transport = this.transport;
    if (id.tls || ips.length > 0) {
      transport = {
        ...this.transport,
        ...id.tls,
        ...(ips.length > 0 ? { localAddress: ips[(this.first + i) % ips.length] } : {}),
      };
    }
    c.open(
      {
        transport,
        ...(this.openTransport ? { open: this.openTransport } : {}),
        version: this.version,
        connect: {
          clientId: id.clientId,
          version: this.version,
          keepaliveSec: this.keepaliveSec,
          clean: true,
          username: id.username,
          password: id.password,
        },
      },
      now,
    );
  }

  private scheduleHousekeeping(): void {
    this.housekeeping = this.clock.setTimeout(() => {
      this.housekeep();
      if (this.phase === 'running' || this.phase === 'draining') this.scheduleHousekeeping();
    }, HOUSEKEEPING_MS);
    this.housekeeping.unref?.();
  }

  /** Connect timeouts and keepalive pings, for all devices in one sweep (no timer per device). */
  private housekeep(): void {
    const now = this.clock.now();
    if (this.s.stages && this.phase === 'running') {
      // the whole fleet's target moves every step, whether or not this segment's share does
      const fleet = fleetTargetAt(this.plan, now - this.startAt);
      const want = segmentShare(this.plan, fleet);
      if (want !== this.target) this.reshape(want, now, this.fleetTarget);
      this.fleetTarget = fleet;
    }
    const timeout = this.s.connectTimeoutMs;
    const pingAfter = this.s.keepaliveMs * 0.75;
    for (const c of this.conns) {
      if (!c) continue;
      if (c.state === State.Connecting && now - c.startedAt > timeout) {
        c.abort('timeout', 'ETIMEDOUT', `no CONNACK within ${timeout} ms`);
      } else if (c.state === State.Connected) {
        const renew = this.renewAt[c.index] as number;
        if (renew > 0 && now >= renew && this.phase === 'running') {
          // credentials about to expire (SAS token): reconnect with fresh ones; waiting messages keep their
          // place in the device buffer when --offline buffer, else the slots in between count as offline
          this.renewing[c.index] = 1;
          c.disconnect(this.version);
        } else if (pingAfter > 0 && now - c.lastWriteAt > pingAfter) c.ping(now);
      }
    }
  }

  private backoff(i: number): number {
    const a = Math.min(this.attempts[i] as number, 16);
    this.attempts[i] = Math.min(255, a + 1);
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** a);
    return this.random() * cap; // full jitter
  }

  // ---- ConnectionHandler ------------------------------------------------------------------------------------

  connected(i: number): void {
    const now = this.clock.now();
    const c = this.conns[i] as Connection;
    this.stats.latency('connect', now - c.startedAt);
    this.stats.count('connects');
    this.stats.connected(1);
    this.connectedNow++;
    this.attempts[i] = 0;
    const was = this.wasConnected[i];
    if (was === 1) this.stats.count('reconnects');
    else if (was === 0) this.everConnected++;
    this.wasConnected[i] = 1;
    c.lastWriteAt = now;
    if (this.commandFilter) c.subscribe(this.commandFilter(vars(this, i)), this.s.qos, this.version);
    if (this.pendLen[i]) this.drainPending(i, now);
    if (this.phase !== 'running' || this.inSendQueue[i] || this.done[i] || this.parked[i]) return;
    // first slot at or after now on this device's grid
    const interval = this.intervalMs;
    const phase = (((this.first + i) * GOLDEN) % 1) * interval;
    const origin = this.startAt + phase;
    const n = Math.max(0, Math.ceil((now - origin) / interval));
    const base = origin + n * interval;
    if (base >= this.endAt) return;
    this.slot[i] = base;
    this.inSendQueue[i] = 1;
    this.queueSend(i, this.jittered(base));
    this.arm(now);
  }

  tlsHandshake(_i: number, resumed: boolean): void {
    this.stats.count(resumed ? 'tlsResumed' : 'tlsFull');
  }

  connectFailed(i: number, kind: string, code: number | string, reason: string): void {
    this.stats.count('connectFailures');
    this.connectFails[i] = (this.connectFails[i] as number) + 1;
    this.stats.error(kind, code, reason);
    this.retryLater(i);
  }

  closed(i: number, inflight: number, kind: string, code: number | string, reason: string): void {
    this.stats.connected(-1);
    this.connectedNow--;
    if (this.phase === 'stopped') return; // our own DISCONNECT at the end: in-flight ones are unconfirmed
    if (this.renewing[i]) {
      this.renewing[i] = 0;
      this.stats.count('renewals');
      if (inflight > 0) {
        this.stats.count('failed', inflight);
        this.stats.error(
          'inflight-lost',
          'renewal',
          'in flight when the device reconnected to renew credentials',
        );
      }
      this.connectQueue.push(this.clock.now(), i);
      this.arm(this.clock.now());
      return;
    }
    if (this.parked[i]) {
      // ramp down: our own DISCONNECT; what was in flight can no longer be confirmed
      if (inflight > 0) {
        this.stats.count('failed', inflight);
        this.stats.error('inflight-lost', 'parked', 'device removed from the fleet before its ack');
      }
      return;
    }
    if (inflight > 0) {
      this.stats.count('failed', inflight);
      this.stats.error('inflight-lost', 'connection-lost', 'sent, but the connection closed before the ack');
    }
    this.stats.count('dropped');
    this.stats.error(kind === 'disconnect' ? 'disconnect' : kind, code, reason);
    this.retryLater(i);
  }

  acked(i: number, sentAt: number, reasonCode: number): void {
    const now = this.clock.now();
    if (reasonCode >= 0x80) {
      this.stats.latency('publishAck', now - sentAt);
      this.stats.count('failed');
      this.stats.error(this.s.qos === 2 ? 'pubrec' : 'puback', reasonCode, reasonName(reasonCode));
    } else this.stats.ackedOne(now - sentAt);
    if (this.pendLen[i]) this.drainPending(i, now); // the window has room again
  }

  subscribed(_i: number, codes: readonly number[]): void {
    for (const code of codes) {
      if (code >= 0x80)
        this.stats.error('suback', code, code === 0x80 ? 'subscription refused' : reasonName(code));
    }
  }

  message(): void {
    this.stats.count('commands');
  }

  private retryLater(i: number): void {
    if (this.phase !== 'running' || this.parked[i]) return;
    const now = this.clock.now();
    const at = now + this.backoff(i);
    if (at >= this.endAt) return;
    this.connectQueue.push(at, i);
    this.arm(now);
  }
}

function vars(e: Engine, i: number): Record<string, string | number> {
  return { index: e.firstIndex + i, runId: e.runId, deviceId: e.deviceId(i) };
}
