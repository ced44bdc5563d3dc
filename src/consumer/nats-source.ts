import {
  AckPolicy,
  type ConsumerMessages,
  connect,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  nanos,
} from 'nats';
import { FleetloadError } from '../errors.js';
import { type Deliver, redactUrl, type Source } from './source.js';

export { subjectFromMqtt } from './topics.js';

import type { UserProperties } from '../wire/index.js';

/**
 * Consumer source on a NATS JetStream stream (npm `nats`): the platform forwards the devices' MQTT into a stream
 * (nats-server's own MQTT listener does: topic `a/b/c` is subject `a.b.c`), and we read it with a **durable pull
 * consumer** per group. Pull, not push, because several instances can pull from one durable and the server hands
 * each message to exactly one of them (no deliver subject or queue group to agree on, flow control is explicit:
 * we ask for batches), and a restarted instance resumes at the durable's ack floor. Several instances given the
 * same group therefore split the stream without overlap, with `--partition-index/--partition-count` only naming
 * them.
 *
 * Arrival = the stream's stored timestamp (`info.timestampNanos`): the server-side enqueue time. Each message is
 * acked right after it was counted (explicit acks, never "ack all", which would ack another instance's messages);
 * an unacked message (a crash between counting and acking) is redelivered and then shows as a duplicate.
 * A new durable starts at new messages (deliver policy `new`); an existing one resumes where it was.
 */
export interface NatsSourceOptions {
  /** nats://[user:pass@]host:port (several, comma-separated) */
  url: string;
  /** subject filter, e.g. `fleetload.run1.*` */
  subject: string;
  /** stream name; default: the stream whose subjects capture `subject` */
  stream?: string | undefined;
  /**
   * No stream captures `subject` (or `stream` does not exist): create it, named `stream` or FLEETLOAD, capturing
   * `streamSubject` (or add that subject to an existing FLEETLOAD). Without it the consumer cannot attach (exit 3).
   */
  createStream?: boolean;
  /** what a created stream captures: every run's subjects (`fleetload.*.*`), default `subject` */
  streamSubject?: string;
  /** says what was created */
  log?: (line: string) => void;
  /** durable consumer name (the group) */
  durable: string;
  connectTimeoutMs: number;
  /** for a durable created now: start at new messages (default) or at the start of the stream */
  deliverPolicy?: 'new' | 'all';
  /** delete the durable on close (a per-run group nobody resumes) */
  deleteOnClose?: boolean;
  /** messages asked for per pull (default 1000) */
  batch?: number;
  /** test hook: called before each ack; a consumer killed between the two sees that message again */
  beforeAck?: () => void;
  /** the connection dropped after attaching (nats.js reconnects), and came back */
  onDisconnect?: (reason: string) => void;
  onReconnect?: () => void;
}

/** the stream --nats-create-stream makes when none is named */
export const DEFAULT_STREAM = 'FLEETLOAD';
/** how long a created stream keeps messages: a load test's stream should not fill the disk for ever */
const STREAM_MAX_AGE_MS = 24 * 3600 * 1000;

/** A durable name NATS accepts: letters, digits, `-`, `_` (no `.`, `*`, `>`, spaces). */
export function durableName(group: string): string {
  return group.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 200) || 'fleetload';
}

export class NatsSource implements Source {
  /** nats.js status events: a drop and a return of the connection, told to the run (its events) */
  private async watchStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const st of nc.status()) {
        if (st.type === 'disconnect') this.o.onDisconnect?.('consumer connection lost; reconnecting');
        else if (st.type === 'reconnect') this.o.onReconnect?.();
      }
    } catch {
      // the connection closed: no more status
    }
  }

  readonly kind = 'nats';
  readonly description: string;
  private nc: NatsConnection | undefined;
  private jsm: JetStreamManager | undefined;
  private messages: ConsumerMessages | undefined;
  private stream: string | undefined;
  private readonly durable: string;

  constructor(private readonly o: NatsSourceOptions) {
    this.durable = durableName(o.durable);
    this.description = `nats ${o.url.split(',').map(redactUrl).join(',')} subject ${o.subject} durable ${this.durable}`;
  }

  async open(deliver: Deliver): Promise<void> {
    const o = this.o;
    const where = o.url.split(',').map(redactUrl).join(',');
    const fail = (why: string, cause?: unknown): never => {
      throw new FleetloadError('E_UNREACHABLE', `consumer could not attach to ${where}: ${why}`, { cause });
    };
    const { servers, user, pass } = parseServers(o.url);
    try {
      this.nc = await connect({
        servers,
        ...(user !== undefined ? { user, pass } : {}),
        timeout: o.connectTimeoutMs,
        name: `fleetload-consumer-${this.durable}`,
        maxReconnectAttempts: -1,
      });
    } catch (e) {
      fail((e as Error).message, e);
    }
    const nc = this.nc as NatsConnection;
    if (o.onDisconnect || o.onReconnect) void this.watchStatus(nc);
    try {
      this.jsm = await nc.jetstreamManager({ timeout: o.connectTimeoutMs });
    } catch (e) {
      await this.close();
      fail(`JetStream is not available (${(e as Error).message}); start nats-server with -js`, e);
    }
    const jsm = this.jsm as JetStreamManager;
    try {
      this.stream = o.createStream
        ? await this.ensureStream(jsm)
        : (o.stream ?? (await jsm.streams.find(o.subject)));
    } catch (e) {
      await this.close();
      if (e instanceof FleetloadError) throw e;
      fail(
        `no JetStream stream captures subject ${o.subject}; add --nats-create-stream (fleetload creates one), ` +
          'create one yourself (nats.js or the nats CLI: nats stream add) or name it with --nats-stream',
        e,
      );
    }
    const stream = this.stream as string;
    try {
      await jsm.consumers.info(stream, this.durable);
    } catch {
      try {
        await jsm.consumers.add(stream, {
          durable_name: this.durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: o.deliverPolicy === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
          filter_subject: o.subject,
          ack_wait: nanos(30_000),
          max_ack_pending: 20_000,
        });
      } catch (e) {
        await this.close();
        fail(
          `cannot create durable consumer ${this.durable} on stream ${stream}: ${(e as Error).message}`,
          e,
        );
      }
    }
    const consumer = await nc.jetstream().consumers.get(stream, this.durable);
    const beforeAck = o.beforeAck;
    this.messages = await consumer.consume({
      max_messages: o.batch ?? 1000,
      callback: (m: JsMsg) => {
        const arrivalMs = m.info.timestampNanos / 1e6;
        const data = m.data;
        deliver({
          payload: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
          arrivalMs,
          enqueuedMs: arrivalMs,
          partition: stream,
          userProperties: m.headers ? headerProps(m) : undefined,
        });
        beforeAck?.();
        m.ack();
      },
    });
  }

  markInterval(): void {}

  /** acks go out per message as soon as it was counted; nothing to checkpoint here */
  async commit(): Promise<void> {}

  /** The stream to read: the one capturing the subject, else created (or FLEETLOAD extended) to capture it. */
  private async ensureStream(jsm: JetStreamManager): Promise<string> {
    const o = this.o;
    if (o.stream === undefined) {
      const found = await jsm.streams.find(o.subject).catch(() => undefined);
      if (found !== undefined) return found;
    }
    const name = o.stream ?? DEFAULT_STREAM;
    const capture = o.streamSubject ?? o.subject;
    const where = o.url.split(',').map(redactUrl).join(',');
    try {
      const info = await jsm.streams.info(name).catch(() => undefined);
      if (info === undefined) {
        await jsm.streams.add({ name, subjects: [capture], max_age: nanos(STREAM_MAX_AGE_MS) });
        o.log?.(`created JetStream stream ${name} capturing ${capture} (messages kept 24h)`);
      } else {
        const subjects = info.config.subjects ?? [];
        if (!subjects.includes(capture)) {
          await jsm.streams.update(name, { ...info.config, subjects: [...subjects, capture] });
          o.log?.(`JetStream stream ${name} now also captures ${capture}`);
        }
      }
    } catch (e) {
      throw new FleetloadError(
        'E_UNREACHABLE',
        `consumer could not attach to ${where}: cannot create JetStream stream ${name} capturing ${capture}: ` +
          `${(e as Error).message} (another stream may capture an overlapping subject: name it with --nats-stream)`,
        { cause: e },
      );
    }
    return name;
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    try {
      this.messages?.stop();
      this.messages = undefined;
      if (this.o.deleteOnClose && this.jsm && this.stream) {
        await this.jsm.consumers.delete(this.stream, this.durable).catch(() => false);
      }
      if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    } catch {
      await nc?.close().catch(() => {});
    }
  }
}

function headerProps(m: JsMsg): UserProperties {
  const out: UserProperties = {};
  const h = m.headers;
  if (!h) return out;
  for (const k of h.keys()) {
    const v = h.values(k);
    out[k] = v.length === 1 ? (v[0] as string) : v;
  }
  return out;
}

/** `nats://u:p@a:4222,nats://b:4222` → servers without credentials, and the credentials (first URL's). */
function parseServers(url: string): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = url.split(',').map((s) => {
    try {
      const u = new URL(s.trim());
      if (u.username && user === undefined) {
        user = decodeURIComponent(u.username);
        pass = decodeURIComponent(u.password);
      }
      return `${u.hostname}:${u.port || '4222'}`;
    } catch {
      return s.trim();
    }
  });
  return { servers, ...(user !== undefined ? { user, pass: pass ?? '' } : {}) };
}
