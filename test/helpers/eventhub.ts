import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import rhea, {
  type Connection,
  type EventContext,
  type Receiver,
  type Message as RheaMessage,
  type Sender,
} from 'rhea';

/**
 * A local Event Hubs namespace for tests, on rhea (the AMQP 1.0 library the SDK itself uses), written from
 * Microsoft's documented protocol ("AMQP 1.0 in Azure Service Bus and Event Hubs protocol guide", "Event Hubs
 * AMQP management", "Claims-based security (CBS)") — not from fleetload's consumer. Plain AMQP on a free loopback
 * port, what the SDK speaks with `UseDevelopmentEmulator=true` in the connection string (the Event Hubs
 * emulator's option: TCP, no TLS, the port from the Endpoint).
 *
 * Implemented:
 * - SASL ANONYMOUS then CBS: a `$cbs` request/response link pair; `put-token` requests (application properties
 *   operation/type/name, body = the token) with a SAS token (`SharedAccessSignature sr=…&sig=…&se=…&skn=…`) are
 *   checked: known rule name, HMAC-SHA256 of `<sr>\n<se>` with the rule's key, not expired, `sr` covering the
 *   audience. 200 when valid, else 401 (a wrong key is an auth error at the client). A link to an entity is only
 *   attached once a token covering its audience was put on that connection (else `amqp:unauthorized-access`).
 * - `$management`: READ of `com.microsoft:eventhub` (name, type, created_at, partition_count, partition_ids) and
 *   `com.microsoft:partition` (begin_sequence_number, last_enqueued_sequence_number, last_enqueued_offset,
 *   last_enqueued_time_utc, is_partition_empty) — reply with the request's message-id as correlation-id and
 *   status-code/status-description.
 * - Receiver links `<hub>/ConsumerGroups/<group>/Partitions/<id>` (unknown hub, group or partition: the link is
 *   refused with `amqp:not-found`), the `apache.org:selector-filter:string` source filter on
 *   `amqp.annotation.x-opt-offset`, `x-opt-sequence-number` (`>`, `>=`) and `x-opt-enqueued-time` (`>`), the
 *   offsets `-1` (start) and `@latest`; the `com.microsoft:epoch` link property (a higher or equal epoch takes
 *   the partition from a lower one, which is detached with `amqp:link:stolen`; a lower one is refused). Delivery
 *   honours link credit. Each event: message annotations `x-opt-sequence-number` (long), `x-opt-offset` (string),
 *   `x-opt-enqueued-time` (timestamp), `x-opt-partition-key` when given, any system annotations (IoT Hub's
 *   `iothub-connection-device-id`, `iothub-enqueuedtime`, …), application properties, the body as one data
 *   section.
 * - A test API: `append(partition, event)` with a chosen enqueue time; `sentCount()`, `connections()`,
 *   `readers()`, `detachReaders(condition)`.
 * Not implemented: senders into the hub over AMQP (tests append directly), TLS, web sockets, geo-replication
 * offsets, runtime metrics (`last_enqueued_*` delivery annotations).
 */

export interface HubEvent {
  body: Buffer | string;
  /** epoch ms; default now */
  enqueuedTimeMs?: number;
  partitionKey?: string;
  /** application properties */
  properties?: Record<string, string | number | boolean>;
  /** extra message annotations (system properties), e.g. iothub-connection-device-id */
  annotations?: Record<string, unknown>;
}

interface Stored {
  seq: number;
  offset: number;
  enqueuedMs: number;
  body: Buffer;
  partitionKey: string | undefined;
  properties: Record<string, string | number | boolean> | undefined;
  annotations: Record<string, unknown> | undefined;
}

interface Reader {
  sender: Sender;
  partition: string;
  group: string;
  epoch: number | undefined;
  /** index in the partition's log of the next event to send */
  next: number;
}

export interface EventHubStandInOptions {
  hub?: string;
  partitions?: number;
  consumerGroups?: string[];
  keyName?: string;
  key?: string;
  /** answer each put-token this much later (a slow service: links attach late) */
  cbsDelayMs?: number;
}

export interface EventHubStandIn {
  readonly port: number;
  readonly hub: string;
  readonly partitionIds: string[];
  readonly keyName: string;
  readonly key: string;
  /** `Endpoint=sb://127.0.0.1:PORT/;SharedAccessKeyName=…;SharedAccessKey=…;UseDevelopmentEmulator=true;EntityPath=hub` */
  connectionString(opts?: { key?: string; entityPath?: boolean }): string;
  /** Appends an event to a partition (the hub's enqueue); returns its sequence number. */
  append(partition: string, event: HubEvent): number;
  /** The partition a partition key maps to (stable hash). */
  partitionFor(key: string): string;
  /** Events in a partition. */
  count(partition: string): number;
  /** Events sent to receivers, in total (re-deliveries after a restart count again). */
  sentCount(): number;
  /** Receiver links attached now (partition readers). */
  readers(): number;
  /**
   * Detaches every partition reader with an AMQP error, as the service does on a partition move or when a
   * higher epoch takes over (`amqp:link:stolen`); returns how many.
   */
  detachReaders(condition: string, description: string): number;
  /** Currently open client connections. */
  connections(): number;
  /** Successful and failed put-token requests so far. */
  cbsResults(): { ok: number; denied: number };
  close(): Promise<void>;
}

const SELECTOR = 'apache.org:selector-filter:string';

/** SAS token check, as the service does it. Returns why it is invalid, or undefined when it is valid. */
export function sasProblem(
  token: string,
  audience: string,
  rules: Record<string, string>,
  nowMs: number,
): string | undefined {
  const prefix = 'SharedAccessSignature ';
  if (!token.startsWith(prefix)) return 'not a SharedAccessSignature';
  const fields = new Map<string, string>();
  for (const part of token.slice(prefix.length).split('&')) {
    const i = part.indexOf('=');
    if (i > 0) fields.set(part.slice(0, i), part.slice(i + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  const skn = fields.get('skn');
  if (!sr || !sig || !se || !skn) return 'missing sr, sig, se or skn';
  const key = rules[skn];
  if (key === undefined) return `unknown rule ${skn}`;
  const expected = createHmac('sha256', key).update(`${sr}\n${se}`).digest();
  const given = Buffer.from(decodeURIComponent(sig), 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid signature';
  if (Number(se) * 1000 < nowMs) return 'token expired';
  if (!covers(decodeURIComponent(sr), audience)) return `token for ${sr} does not cover ${audience}`;
  return undefined;
}

/** Resource path (host/path, lower case, no scheme, no trailing slash) of a URI or entity address. */
function resourcePath(uri: string): string {
  return uri
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '')
    .toLowerCase();
}

function covers(sr: string, audience: string): boolean {
  const a = resourcePath(audience);
  const s = resourcePath(sr);
  return a === s || a.startsWith(`${s}/`);
}

/** `amqp.annotation.x-opt-… >|>= 'v'` → a predicate on stored events, or an error text. */
export function parseSelector(expr: string): ((e: Stored) => boolean) | string {
  const m =
    /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/.exec(
      expr,
    );
  if (!m) return `unsupported filter ${expr}`;
  const [, field, op, raw] = m as unknown as [string, string, string, string];
  if (field === 'x-opt-offset') {
    if (raw === '-1') return () => true;
    if (raw === '@latest') return () => false; // resolved against the log's end by the caller
    const v = Number(raw);
    if (!Number.isFinite(v)) return `bad offset ${raw}`;
    return op === '>' ? (e) => e.offset > v : (e) => e.offset >= v;
  }
  const v = Number(raw);
  if (!Number.isFinite(v)) return `bad value ${raw}`;
  if (field === 'x-opt-sequence-number') return op === '>' ? (e) => e.seq > v : (e) => e.seq >= v;
  return op === '>' ? (e) => e.enqueuedMs > v : (e) => e.enqueuedMs >= v;
}

function unwrapFilter(filter: unknown): string | undefined {
  if (!filter || typeof filter !== 'object') return undefined;
  const f = (filter as Record<string, unknown>)[SELECTOR];
  if (f === undefined) return undefined;
  if (typeof f === 'string') return f;
  const v = (f as { value?: unknown }).value;
  return typeof v === 'string' ? v : undefined;
}

export async function startEventHub(opts: EventHubStandInOptions = {}): Promise<EventHubStandIn> {
  const hub = opts.hub ?? 'telemetry';
  const partitionIds = Array.from({ length: opts.partitions ?? 4 }, (_, i) => String(i));
  const groups = new Set((opts.consumerGroups ?? ['$Default']).map((g) => g.toLowerCase()));
  const keyName = opts.keyName ?? 'RootManageSharedAccessKey';
  const key =
    opts.key ?? createHash('sha256').update(`stand-in-${process.pid}-${Date.now()}`).digest('base64');
  const rules = { [keyName]: key };
  const createdAt = new Date();
  const logs = new Map<string, Stored[]>(partitionIds.map((p) => [p, []]));
  const nextOffset = new Map<string, number>(partitionIds.map((p) => [p, 0]));
  const readers = new Set<Reader>();
  const authorized = new WeakMap<Connection, Map<string, number>>();
  const open = new Set<Connection>();
  let sent = 0;
  let cbsOk = 0;
  let cbsDenied = 0;
  let port = 0;

  const container = rhea.create_container({ id: 'eventhub-stand-in' });
  container.sasl_server_mechanisms.enable_anonymous();

  const isAuthorized = (conn: Connection, address: string): boolean => {
    const grants = authorized.get(conn);
    if (!grants) return false;
    const target = `127.0.0.1:${port}/${address}`.toLowerCase();
    for (const [path, expires] of grants) {
      if (expires * 1000 < Date.now()) continue;
      if (target === path || target.startsWith(`${path}/`)) return true;
    }
    return false;
  };

  const toMessage = (e: Stored): RheaMessage => {
    const annotations: Record<string, unknown> = {
      'x-opt-sequence-number': rhea.types.wrap_long(e.seq),
      'x-opt-offset': String(e.offset),
      'x-opt-enqueued-time': rhea.types.wrap_timestamp(e.enqueuedMs),
    };
    if (e.partitionKey !== undefined) annotations['x-opt-partition-key'] = e.partitionKey;
    for (const [k, v] of Object.entries(e.annotations ?? {})) {
      annotations[k] = v instanceof Date ? rhea.types.wrap_timestamp(v.getTime()) : v;
    }
    const m: RheaMessage = {
      body: rhea.message.data_section(e.body),
      message_annotations: annotations,
    };
    if (e.properties) m.application_properties = { ...e.properties };
    return m;
  };

  const pump = (r: Reader): void => {
    const log = logs.get(r.partition) ?? [];
    while (r.next < log.length && r.sender.sendable() && r.sender.is_open()) {
      r.sender.send(toMessage(log[r.next] as Stored));
      r.next++;
      sent++;
    }
  };

  const reply = (
    respond: Sender | undefined,
    req: RheaMessage,
    status: number,
    description: string,
    body?: unknown,
  ): void => {
    if (!respond?.is_open()) return;
    const m: RheaMessage = {
      correlation_id: req.message_id,
      to: req.reply_to,
      application_properties: { 'status-code': status, 'status-description': description },
      body: body ?? null,
    };
    respond.send(m);
  };

  /** reply-to address → the sender link the client attached to receive replies (per connection) */
  const replyLinks = new WeakMap<Connection, Map<string, Sender>>();
  const replySender = (conn: Connection, address: string | undefined): Sender | undefined =>
    address === undefined ? undefined : replyLinks.get(conn)?.get(address);

  const onCbs = (ctx: EventContext, req: RheaMessage): void => {
    const conn = ctx.connection;
    const props = req.application_properties ?? {};
    const respond = replySender(conn, req.reply_to);
    if (props.operation !== 'put-token') {
      reply(respond, req, 400, `unsupported operation ${String(props.operation)}`);
      return;
    }
    const audience = String(props.name ?? '');
    const token = typeof req.body === 'string' ? req.body : String(req.body ?? '');
    const problem = sasProblem(token, audience, rules, Date.now());
    if (problem) {
      cbsDenied++;
      reply(respond, req, 401, `Unauthorized: ${problem}`);
      return;
    }
    cbsOk++;
    const se = Number(/[?&\s]se=(\d+)/.exec(token)?.[1] ?? '0');
    let grants = authorized.get(conn);
    if (!grants) {
      grants = new Map();
      authorized.set(conn, grants);
    }
    grants.set(resourcePath(audience), se);
    if (opts.cbsDelayMs) setTimeout(() => reply(respond, req, 200, 'OK'), opts.cbsDelayMs);
    else reply(respond, req, 200, 'OK');
  };

  const onManagement = (ctx: EventContext, req: RheaMessage): void => {
    const conn = ctx.connection;
    const props = req.application_properties ?? {};
    const respond = replySender(conn, req.reply_to);
    const token = props.security_token;
    if (
      typeof token !== 'string' ||
      sasProblem(token, `sb://127.0.0.1:${port}/${hub}`, rules, Date.now()) !== undefined
    ) {
      if (!isAuthorized(conn, '$management')) {
        reply(respond, req, 401, 'Unauthorized: no valid security_token');
        return;
      }
    }
    if (props.operation !== 'READ') {
      reply(respond, req, 400, `unsupported operation ${String(props.operation)}`);
      return;
    }
    if (String(props.name ?? '').toLowerCase() !== hub.toLowerCase()) {
      reply(respond, req, 404, `The messaging entity '${String(props.name)}' could not be found`);
      return;
    }
    if (props.type === 'com.microsoft:eventhub') {
      reply(respond, req, 200, 'OK', {
        name: hub,
        type: 'com.microsoft:eventhub',
        created_at: rhea.types.wrap_timestamp(createdAt.getTime()),
        partition_count: rhea.types.wrap_int(partitionIds.length),
        partition_ids: partitionIds,
      });
      return;
    }
    if (props.type === 'com.microsoft:partition') {
      const p = String(props.partition ?? '');
      const log = logs.get(p);
      if (!log) {
        reply(respond, req, 404, `partition ${p} not found`);
        return;
      }
      const last = log[log.length - 1];
      reply(respond, req, 200, 'OK', {
        name: hub,
        type: 'com.microsoft:partition',
        partition: p,
        begin_sequence_number: rhea.types.wrap_long(log[0]?.seq ?? -1),
        last_enqueued_sequence_number: rhea.types.wrap_long(last?.seq ?? -1),
        last_enqueued_offset: String(last?.offset ?? -1),
        last_enqueued_time_utc: rhea.types.wrap_timestamp(last?.enqueuedMs ?? 0),
        is_partition_empty: log.length === 0,
      });
      return;
    }
    reply(respond, req, 400, `unsupported type ${String(props.type)}`);
  };

  container.on('connection_open', (ctx: EventContext) => {
    open.add(ctx.connection);
  });
  const forget = (ctx: EventContext): void => {
    open.delete(ctx.connection);
    for (const r of [...readers]) if (r.sender.connection === ctx.connection) readers.delete(r);
  };
  container.on('connection_close', forget);
  container.on('disconnected', forget);

  // The client's receivers: reply links for $cbs/$management, or partition readers.
  container.on('sender_open', (ctx: EventContext) => {
    const sender = ctx.sender as Sender;
    const address = sender.source?.address ?? '';
    if (address === '$cbs' || address === '$management') {
      let map = replyLinks.get(ctx.connection);
      if (!map) {
        map = new Map();
        replyLinks.set(ctx.connection, map);
      }
      // The client names its reply address in the link's target (or uses the link name).
      const target = (sender.target as { address?: string } | undefined)?.address;
      map.set(target ?? sender.name, sender);
      map.set(sender.name, sender);
      sender.set_source({ address });
      return;
    }
    const m = /^([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(address);
    const refuse = (condition: string, description: string): void => {
      // the documented refusal: attach with a null source, then detach with the error
      sender.set_source(null as unknown as Parameters<Sender['set_source']>[0]);
      sender.close({ condition, description });
    };
    if (!m) {
      refuse('amqp:not-found', `The messaging entity '${address}' could not be found`);
      return;
    }
    const [, h, g, p] = m as unknown as [string, string, string, string];
    if (!isAuthorized(ctx.connection, address)) {
      refuse('amqp:unauthorized-access', `Unauthorized access to '${address}': put a token first ($cbs)`);
      return;
    }
    if (h.toLowerCase() !== hub.toLowerCase() || !logs.has(p)) {
      refuse('amqp:not-found', `The messaging entity '${address}' could not be found`);
      return;
    }
    if (!groups.has(g.toLowerCase())) {
      refuse('amqp:not-found', `The messaging entity '${h}/ConsumerGroups/${g}' could not be found`);
      return;
    }
    const log = logs.get(p) as Stored[];
    const source = sender.source as { filter?: unknown } | undefined;
    const expr = unwrapFilter(source?.filter);
    let next = log.length; // no filter: the end (new events only)
    if (expr !== undefined) {
      if (/x-opt-offset\s*>=?\s*'@latest'/.test(expr)) next = log.length;
      else {
        const pred = parseSelector(expr);
        if (typeof pred === 'string') {
          refuse('amqp:invalid-field', pred);
          return;
        }
        const i = log.findIndex(pred);
        next = i < 0 ? log.length : i;
      }
    }
    const props = (sender.properties ?? {}) as Record<string, unknown>;
    const rawEpoch = props['com.microsoft:epoch'];
    const epoch = rawEpoch === undefined ? undefined : Number(rawEpoch);
    for (const other of readers) {
      if (other.partition !== p || other.group !== g.toLowerCase()) continue;
      if (other.epoch !== undefined && (epoch === undefined || epoch < other.epoch)) {
        refuse(
          'amqp:link:stolen',
          `a receiver with epoch ${other.epoch} already reads partition ${p} of ${g}`,
        );
        return;
      }
      if (epoch !== undefined && (other.epoch === undefined || epoch >= other.epoch)) {
        readers.delete(other);
        other.sender.close({
          condition: 'amqp:link:stolen',
          description: `a receiver with epoch ${epoch} took partition ${p} of ${g}`,
        });
      }
    }
    sender.set_source({ address, filter: source?.filter as Record<string, unknown> | undefined });
    const reader: Reader = { sender, partition: p, group: g.toLowerCase(), epoch, next };
    readers.add(reader);
    sender.on('sendable', () => pump(reader));
    sender.on('sender_close', () => readers.delete(reader));
    pump(reader);
  });

  // The client's senders: requests to $cbs and $management.
  container.on('receiver_open', (ctx: EventContext) => {
    const receiver = ctx.receiver as Receiver;
    const address = receiver.target?.address ?? '';
    if (address !== '$cbs' && address !== '$management') {
      receiver.set_target(null as unknown as Parameters<Receiver['set_target']>[0]);
      receiver.close({
        condition: 'amqp:not-implemented',
        description: 'the stand-in takes no events over AMQP',
      });
      return;
    }
    receiver.set_target({ address });
  });
  container.on('message', (ctx: EventContext) => {
    const address = ctx.receiver?.target?.address;
    const req = ctx.message as RheaMessage;
    if (address === '$cbs') onCbs(ctx, req);
    else if (address === '$management') onManagement(ctx, req);
  });

  const server = container.listen({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  port = (server.address() as AddressInfo).port;

  let rr = 0;
  return {
    port,
    hub,
    partitionIds,
    keyName,
    key,
    connectionString(o = {}) {
      return (
        `Endpoint=sb://127.0.0.1:${port}/;SharedAccessKeyName=${keyName};SharedAccessKey=${o.key ?? key};` +
        `UseDevelopmentEmulator=true${o.entityPath === false ? '' : `;EntityPath=${hub}`}`
      );
    },
    append(partition, event) {
      const log = logs.get(partition);
      if (!log) throw new Error(`no partition ${partition}`);
      const body = Buffer.isBuffer(event.body) ? event.body : Buffer.from(event.body, 'utf8');
      const offset = nextOffset.get(partition) ?? 0;
      nextOffset.set(partition, offset + Math.max(1, body.length));
      const seq = log.length;
      log.push({
        seq,
        offset,
        enqueuedMs: event.enqueuedTimeMs ?? Date.now(),
        body,
        partitionKey: event.partitionKey,
        properties: event.properties,
        annotations: event.annotations,
      });
      for (const r of readers) if (r.partition === partition) pump(r);
      return seq;
    },
    partitionFor(k) {
      if (k === '') return partitionIds[rr++ % partitionIds.length] as string;
      const h = createHash('sha256').update(k).digest().readUInt32BE(0);
      return partitionIds[h % partitionIds.length] as string;
    },
    count: (p) => logs.get(p)?.length ?? 0,
    sentCount: () => sent,
    readers: () => readers.size,
    detachReaders(condition, description) {
      const all = [...readers];
      readers.clear();
      for (const r of all) r.sender.close({ condition, description });
      return all.length;
    },
    connections: () => open.size,
    cbsResults: () => ({ ok: cbsOk, denied: cbsDenied }),
    async close() {
      for (const c of open) {
        try {
          c.close();
        } catch {
          // gone
        }
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of open) (c as unknown as { socket?: { destroy(): void } }).socket?.destroy();
      open.clear();
    },
  };
}
