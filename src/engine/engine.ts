import { Connection, type ConnectionHandler, State, type TransportFactory } from '../mqtt/connection.js';
import { encodeTopic, type ProtocolVersion } from '../mqtt/packets.js';
import { reasonName } from '../mqtt/reasons.js';
import type { TransportOptions } from '../mqtt/transport.js';
import type { Scenario } from '../scenario/schema.js';
import { compileTemplate } from '../scenario/template.js';
import type { Stats } from '../stats/stats.js';
import type { Clock, TimerHandle } from './clock.js';
import { DueQueue } from './due-queue.js';
import { jsonPayload, type PayloadBuilder } from './payload.js';

/**
 * The device engine: every device of this process, one scheduler, no timer per device.
 *
 * Open model: device k's n-th message is due at `start + φ_k + n × interval` whether or not the previous one was
 * acknowledged; its `ts` is that scheduled time, and `scheduleLag` records how late the generator actually wrote it.
 * Phases φ_k follow the golden-ratio sequence, so any prefix of the fleet (during the ramp) is spread evenly.
 * Devices connect following the spawn rate from one connect queue, which also holds reconnects (backoff with
 * full jitter).
 */

export interface EngineOptions {
  scenario: Scenario;
  url: URL;
  stats: Stats;
  clock: Clock;
  /** device index range of this worker, [first, first+count) */
  first?: number;
  count?: number;
  payload?: PayloadBuilder;
  transport?: Partial<TransportOptions>;
  /** opens device byte streams (tests pass in-memory ones) */
  openTransport?: TransportFactory;
  /** reconnect backoff bounds */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
}

const GOLDEN = 0.618_033_988_749_894_9;
const HOUSEKEEPING_MS = 250;

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
  private readonly stats: Stats;
  private readonly clock: Clock;
  private readonly first: number;
  private readonly count: number;
  private readonly version: ProtocolVersion;
  private readonly payload: PayloadBuilder;
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
  private readonly slot: Float64Array;
  private readonly inSendQueue: Uint8Array;
  private readonly attempts: Uint8Array;
  private readonly wasConnected: Uint8Array;
  /** slots taken (sent or skipped), for messagesPerDevice */
  private readonly slots: Float64Array;
  private readonly done: Uint8Array;
  /** devices that reached messagesPerDevice */
  devicesDone = 0;

  private readonly sendQueue = new DueQueue();
  private readonly connectQueue = new DueQueue();
  private timer: TimerHandle | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private housekeeping: TimerHandle | undefined;
  private readonly topicOf: (v: Record<string, string | number>) => string;
  private readonly clientIdOf: (v: Record<string, string | number>) => string;
  private readonly usernameOf: ((v: Record<string, string | number>) => string) | undefined;
  private readonly keepaliveSec: number;
  /** devices currently connected */
  connectedNow = 0;

  constructor(o: EngineOptions) {
    this.s = o.scenario;
    this.stats = o.stats;
    this.clock = o.clock;
    this.first = o.first ?? 0;
    this.count = o.count ?? o.scenario.devices;
    this.version = o.scenario.mqttVersion === '5' ? 5 : 4;
    this.payload = o.payload ?? jsonPayload(o.scenario.runId, o.scenario.payloadSizeBytes);
    this.transport = { url: o.url, ...o.transport };
    this.openTransport = o.openTransport;
    this.random = o.random ?? Math.random;
    this.backoffBaseMs = o.backoffBaseMs ?? 500;
    this.backoffMaxMs = o.backoffMaxMs ?? 30_000;
    const n = this.count;
    this.conns = new Array(n).fill(undefined);
    this.topics = new Array(n).fill(undefined);
    this.seq = new Float64Array(n);
    this.slot = new Float64Array(n);
    this.inSendQueue = new Uint8Array(n);
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
    this.topicOf = compileTemplate(this.s.topic);
    this.clientIdOf = compileTemplate(this.s.clientId);
    this.usernameOf = this.s.username !== undefined ? compileTemplate(this.s.username) : undefined;
    this.keepaliveSec = Math.round(this.s.keepaliveMs / 1000);
  }

  deviceId(i: number): string {
    return this.ids[i] as string;
  }

  /** Last seq written by each device (index-aligned with deviceId), for the consumer's loss ledger. */
  lastSeqs(): Float64Array {
    return this.seq;
  }

  /** every device has sent its messagesPerDevice (never true without that limit) */
  get allDone(): boolean {
    return this.devicesDone === this.count;
  }

  get inflight(): number {
    let n = 0;
    for (const c of this.conns) if (c) n += c.inflight;
    return n;
  }

  /** Starts the ramp: device i connects at start + i / spawnRate; slots end at start + runTime. */
  start(): void {
    const now = this.clock.now();
    this.startAt = now;
    this.endAt = now + this.s.runTimeMs;
    this.phase = 'running';
    const gapMs = 1000 / this.s.spawnRate;
    for (let i = 0; i < this.count; i++) this.connectQueue.push(now + i * gapMs, i);
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
    const next = Math.min(this.sendQueue.peekTime(), this.connectQueue.peekTime());
    if (next === Number.POSITIVE_INFINITY) return;
    if (this.timer && next >= this.timerAt) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = this.clock.setTimeout(() => this.tick(), Math.max(0, next - now));
  }

  /** The hot loop: everything due is connected or published, then the timer is re-armed for the next due. */
  private tick(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.phase !== 'running') return;
    const now = this.clock.now();
    const cq = this.connectQueue;
    while (cq.peekTime() <= now) this.connect(cq.pop(), now);
    const q = this.sendQueue;
    const endAt = this.endAt;
    const interval = this.s.intervalMs;
    const limit = this.s.messagesPerDevice ?? Number.POSITIVE_INFINITY;
    while (q.peekTime() <= now) {
      const due = q.peekTime();
      const i = q.pop();
      if (due >= endAt) {
        this.finishDevice(i);
        continue;
      }
      this.send(i, due, now);
      const base = (this.slot[i] as number) + interval;
      this.slot[i] = base;
      if (base < endAt && (this.slots[i] as number) < limit) q.push(this.jittered(base), i);
      else this.finishDevice(i);
    }
    this.arm(this.clock.now());
  }

  private jittered(base: number): number {
    const j = this.s.jitterMs;
    return j > 0 ? base + (this.random() * 2 - 1) * j : base;
  }

  private finishDevice(i: number): void {
    this.inSendQueue[i] = 0;
    if (this.s.messagesPerDevice !== undefined && !this.done[i]) {
      this.done[i] = 1;
      this.devicesDone++;
    }
  }

  private send(i: number, ts: number, now: number): void {
    const stats = this.stats;
    this.slots[i] = (this.slots[i] as number) + 1;
    stats.count('scheduled');
    const c = this.conns[i];
    if (!c || c.state !== State.Connected) {
      stats.count('skipped');
      stats.error('offline', 'offline', 'message due while the device was disconnected (not sent)');
      return;
    }
    const qos = this.s.qos;
    if (qos > 0 && c.inflight >= this.s.inflight) {
      stats.count('skipped');
      stats.error('backpressure', 'inflight-full', `in-flight window (${this.s.inflight}) full (not sent)`);
      return;
    }
    const seq = (this.seq[i] as number) + 1;
    this.seq[i] = seq;
    const p = this.payload.build(this.idJson[i] as string, this.first + i, seq, ts);
    c.publish(this.topics[i] as Buffer, qos, this.version, p.text, p.bytes, now);
    stats.count('sent');
    stats.latency('scheduleLag', now - ts);
    if (qos === 0) stats.count('acked');
  }

  private connect(i: number, now: number): void {
    let c = this.conns[i];
    if (c && c.state !== State.Idle) return;
    if (!c) {
      c = new Connection(i, this);
      this.conns[i] = c;
    }
    const vars = { index: this.first + i, runId: this.s.runId, deviceId: this.ids[i] as string };
    if (!this.topics[i]) this.topics[i] = encodeTopic(this.topicOf(vars));
    this.stats.count('connectAttempts');
    c.open(
      {
        transport: this.transport,
        ...(this.openTransport ? { open: this.openTransport } : {}),
        version: this.version,
        connect: {
          clientId: this.clientIdOf(vars),
          version: this.version,
          keepaliveSec: this.keepaliveSec,
          clean: true,
          username: this.usernameOf?.(vars),
          password: this.s.password,
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
    const timeout = this.s.connectTimeoutMs;
    const pingAfter = this.s.keepaliveMs * 0.75;
    for (const c of this.conns) {
      if (!c) continue;
      if (c.state === State.Connecting && now - c.startedAt > timeout) {
        c.abort('timeout', 'ETIMEDOUT', `no CONNACK within ${timeout} ms`);
      } else if (pingAfter > 0 && c.state === State.Connected && now - c.lastWriteAt > pingAfter) {
        c.ping(now);
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
    if (this.wasConnected[i]) this.stats.count('reconnects');
    else {
      this.wasConnected[i] = 1;
      this.everConnected++;
    }
    c.lastWriteAt = now;
    if (this.phase !== 'running' || this.inSendQueue[i] || this.done[i]) return;
    // first slot at or after now on this device's grid
    const interval = this.s.intervalMs;
    const phase = (((this.first + i) * GOLDEN) % 1) * interval;
    const origin = this.startAt + phase;
    const n = Math.max(0, Math.ceil((now - origin) / interval));
    const base = origin + n * interval;
    if (base >= this.endAt) return;
    this.slot[i] = base;
    this.inSendQueue[i] = 1;
    this.sendQueue.push(this.jittered(base), i);
    this.arm(now);
  }

  connectFailed(i: number, kind: string, code: number | string, reason: string): void {
    this.stats.count('connectFailures');
    this.stats.error(kind, code, reason);
    this.retryLater(i);
  }

  closed(i: number, inflight: number, kind: string, code: number | string, reason: string): void {
    this.stats.connected(-1);
    this.connectedNow--;
    if (this.phase === 'stopped') return; // our own DISCONNECT at the end: in-flight ones are unconfirmed
    if (inflight > 0) {
      this.stats.count('failed', inflight);
      this.stats.error('inflight-lost', 'connection-lost', 'sent, but the connection closed before the ack');
    }
    this.stats.error(kind === 'disconnect' ? 'disconnect' : kind, code, reason);
    this.retryLater(i);
  }

  acked(_i: number, sentAt: number, reasonCode: number): void {
    this.stats.latency('publishAck', this.clock.now() - sentAt);
    if (reasonCode >= 0x80) {
      this.stats.count('failed');
      this.stats.error(this.s.qos === 2 ? 'pubrec' : 'puback', reasonCode, reasonName(reasonCode));
    } else this.stats.count('acked');
  }

  private retryLater(i: number): void {
    if (this.phase !== 'running') return;
    const now = this.clock.now();
    const at = now + this.backoff(i);
    if (at >= this.endAt) return;
    this.connectQueue.push(at, i);
    this.arm(now);
  }
}
