import { gunzipSync } from 'node:zlib';
import {
  type CheckpointStore,
  EventHubConsumerClient,
  type EventPosition,
  latestEventPosition,
  type PartitionContext,
  type ReceivedEventData,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionEventHandlers,
} from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { ContainerClient } from '@azure/storage-blob';
import { systemClock } from '../clock.js';
import { FleetloadError } from '../errors.js';
import type { UserProperties } from '../wire/index.js';
import { type Deliver, redactConnectionString, type Source } from './source.js';

/**
 * Consumer source on Azure Event Hubs (the seed's consumer), with @azure/event-hubs' EventHubConsumerClient.
 *
 * - Partitions are split by arithmetic: of the hub's partition ids (sorted), instance `index` of `count` reads
 *   those whose position k has k mod count = index (the seed's NUM_PARTITION/TOTAL_PARTITION). One subscription
 *   per partition, in the given consumer group.
 * - Start: a partition's checkpoint when one exists in the checkpoint store (Blob Storage,
 *   @azure/eventhubs-checkpointstore-blob), else "new events only": after the partition's last sequence number
 *   read from the hub at attach time (not the SDK's "latest", which is resolved whenever the link attaches, seconds
 *   later on a busy service: events enqueued meanwhile were missed).
 * - Attach (partition ids and ends) goes through a short-lived client with quick retries, so a refused key says
 *   "unauthorized" at once (the SDK retries an UnauthorizedError with 30 s delays; it showed as "cancelled").
 * - Arrival = the event's `enqueuedTimeUtc` (the service's enqueue time). Bodies may be gzip (magic 1F 8B): they
 *   are inflated (bounded) before decoding. Application properties are handed on like MQTT 5 user properties.
 * - Checkpoints only after the interval's stats reached the sinks: `markInterval()` (called in the same step as the
 *   stats snapshot) remembers the last event delivered per partition; `commit()` (called after the sinks got that
 *   interval) checkpoints exactly those. The seed checkpointed before saving; a crash then lost counted data.
 *   A commit waits at most CHECKPOINT_WAIT_MS for Blob Storage (a hung storage account must not stall the
 *   consumer); one partition's writes never overlap, so checkpoints land in order.
 * - Connection strings are secrets: never logged; `description` and errors show them redacted.
 *
 * Verified with the real SDK against a local Event Hub stand-in (AMQP 1.0 on rhea, test/helpers/eventhub.ts) and
 * Azurite for the checkpoints (test/integration/eventhubs.test.ts), and against the SDK's documented shapes
 * (test/integration/sources.contract.test.ts). Not against Azure itself (see README).
 */
export interface EventHubsSourceOptions {
  /** namespace or hub connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]) */
  connectionString: string;
  /** needed unless the connection string has EntityPath */
  eventHubName?: string | undefined;
  consumerGroup: string;
  /** Blob Storage for checkpoints; without it nothing is checkpointed (a restart starts at "latest") */
  storageConnectionString?: string | undefined;
  storageContainer?: string | undefined;
  partitionIndex: number;
  partitionCount: number;
  connectTimeoutMs: number;
  /** test seams: the client (anything with the consumer client's partition API) and the checkpoint store */
  client?: EventHubsClient;
  checkpointStore?: CheckpointStore;
  /** where a checkpoint failure is reported (never fatal: the next commit retries) */
  log?: (line: string) => void;
}

/** The part of EventHubConsumerClient this source uses. */
export interface EventHubsClient {
  getPartitionIds(options?: { abortSignal?: AbortSignal }): Promise<string[]>;
  /** where each partition ends now (the start for "new events only"); without it, the SDK's "latest" */
  getPartitionProperties?(
    partitionId: string,
    options?: { abortSignal?: AbortSignal },
  ): Promise<{ lastEnqueuedSequenceNumber: number }>;
  subscribe(
    partitionId: string,
    handlers: SubscriptionEventHandlers,
    options?: SubscribeOptions,
  ): Subscription;
  close(): Promise<void>;
}

/** Longest a commit waits for Blob Storage before the pipeline goes on (the write itself keeps running). */
const CHECKPOINT_WAIT_MS = 2000;

/** `p`, or a rejection after `ms` (p is not cancelled). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Largest inflated body accepted (a gzip bomb is foreign, not an out-of-memory). */
const MAX_INFLATED_BYTES = 16 * 1024 * 1024;

/** The partitions instance `index` of `count` reads: position k in the sorted ids with k mod count = index. */
export function partitionsFor(ids: readonly string[], index: number, count: number): string[] {
  const sorted = [...ids].sort((a, b) => {
    const na = Number(a);
    const nb = Number(b);
    return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a.localeCompare(b);
  });
  return sorted.filter((_, k) => k % count === index);
}

/** Event body → bytes: Buffer/Uint8Array as is (gzip inflated), text as UTF-8, anything else as its JSON. */
export function bodyBytes(body: unknown): Buffer {
  let b: Buffer;
  if (Buffer.isBuffer(body)) b = body;
  else if (body instanceof Uint8Array) b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (body instanceof ArrayBuffer) b = Buffer.from(body);
  else if (typeof body === 'string') b = Buffer.from(body, 'utf8');
  else if (body === undefined || body === null) b = Buffer.alloc(0);
  else {
    try {
      b = Buffer.from(JSON.stringify(body) ?? '', 'utf8');
    } catch {
      b = Buffer.alloc(0);
    }
  }
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      return gunzipSync(b, { maxOutputLength: MAX_INFLATED_BYTES });
    } catch {
      return b; // not really gzip, or too big: counted foreign by the decoder
    }
  }
  return b;
}

function props(p: ReceivedEventData['properties']): UserProperties | undefined {
  if (!p || typeof p !== 'object') return undefined;
  const out: UserProperties = {};
  let any = false;
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'bigint') out[k] = String(v);
    else continue;
    any = true;
  }
  return any ? out : undefined;
}

interface Last {
  event: ReceivedEventData;
  context: PartitionContext;
}

export class EventHubsSource implements Source {
  readonly kind = 'eventhubs';
  readonly description: string;
  private client: EventHubsClient | undefined;
  private subscriptions: Subscription[] = [];
  private deliver: Deliver | undefined;
  /** last event delivered per partition, since the last mark */
  private last = new Map<string, Last>();
  /** what the last mark covered, waiting for commit() */
  private marked = new Map<string, Last>();
  private committing: Promise<void> = Promise.resolve();
  /** checkpoint writes not answered yet, per partition */
  private inflight = new Map<string, Promise<void>>();
  /** checkpoints written, per partition: the sequence number (for tests and the report) */
  readonly checkpointed = new Map<string, number>();
  partitions: string[] = [];

  constructor(private readonly o: EventHubsSourceOptions) {
    const hub = o.eventHubName ?? /EntityPath=([^;]+)/i.exec(o.connectionString)?.[1] ?? '?';
    const endpoint = /Endpoint=([^;]+)/i.exec(o.connectionString)?.[1] ?? '?';
    this.description =
      `eventhubs ${endpoint} hub ${hub} consumer group ${o.consumerGroup} ` +
      `partitions ${o.partitionIndex}/${o.partitionCount}` +
      (o.storageConnectionString || o.checkpointStore
        ? ' (checkpoints in Blob Storage)'
        : ' (no checkpoints)');
    validate(o);
  }

  async open(deliver: Deliver): Promise<void> {
    const o = this.o;
    this.deliver = deliver;
    const fail = (why: string, cause?: unknown): never => {
      throw new FleetloadError(
        'E_UNREACHABLE',
        `consumer could not attach to Event Hubs: ${redactConnectionString(why)}`,
        {
          cause,
        },
      );
    };
    let store = o.checkpointStore;
    if (!store && o.storageConnectionString) {
      try {
        const container = new ContainerClient(
          o.storageConnectionString,
          o.storageContainer ?? 'fleetload-checkpoints',
        );
        await container.createIfNotExists({ abortSignal: AbortSignal.timeout(o.connectTimeoutMs) });
        store = new BlobCheckpointStore(container);
      } catch (e) {
        fail(`checkpoint storage: ${(e as Error).message}`, e);
      }
    }
    try {
      this.client =
        o.client ??
        (o.eventHubName
          ? store
            ? new EventHubConsumerClient(o.consumerGroup, o.connectionString, o.eventHubName, store)
            : new EventHubConsumerClient(o.consumerGroup, o.connectionString, o.eventHubName)
          : store
            ? new EventHubConsumerClient(o.consumerGroup, o.connectionString, store)
            : new EventHubConsumerClient(o.consumerGroup, o.connectionString));
    } catch (e) {
      throw new FleetloadError(
        'E_USAGE',
        `Event Hubs connection string: ${redactConnectionString((e as Error).message)}`,
      );
    }
    const client = this.client;
    // Attach-time questions go through a client with few, quick retries: the SDK retries an UnauthorizedError (a
    // rotated key) with its default 30 s delay, so a wrong key would only show as "cancelled" at the timeout.
    const probe = o.client ?? this.probeClient();
    const signal = AbortSignal.timeout(o.connectTimeoutMs);
    let ids: string[] = [];
    const starts = new Map<string, EventPosition>();
    try {
      ids = await probe.getPartitionIds({ abortSignal: signal });
      this.partitions = partitionsFor(ids, o.partitionIndex, o.partitionCount);
      // "New events only" is where each partition ends NOW, not whenever its link attaches (seconds later on a
      // busy service; events enqueued meanwhile were missed and counted lost)
      for (const id of this.partitions) {
        const p = await probe.getPartitionProperties?.(id, { abortSignal: signal });
        if (p && Number.isSafeInteger(p.lastEnqueuedSequenceNumber)) {
          starts.set(id, { sequenceNumber: p.lastEnqueuedSequenceNumber, isInclusive: false });
        }
      }
    } catch (e) {
      if (probe !== client) await probe.close().catch(() => {});
      await this.close();
      fail(attachProblem(e), e);
    }
    if (probe !== client) await probe.close().catch(() => {});
    if (this.partitions.length === 0) {
      await this.close();
      throw new FleetloadError(
        'E_USAGE',
        `--partition-index ${o.partitionIndex} of ${o.partitionCount} gets no partition: the hub has ${ids.length}`,
      );
    }
    // A partition's reader is attached once the SDK first calls processEvents (with an empty batch after
    // maxWaitTimeInSeconds when nothing came): only then is the consumer group known to exist. A refusal that
    // retrying cannot fix (a consumer group the hub does not have, a refused key) fails the attach: exit 3 naming
    // it, instead of a run that receives nothing and ends invalid.
    const attach = attachWatch(this.partitions);
    const handlers: SubscriptionEventHandlers = {
      processEvents: (events, context) => {
        attach.attached(context.partitionId);
        return this.handleEvents(events, context);
      },
      processError: async (err, context) => {
        o.log?.(`eventhubs partition ${context.partitionId}: ${redactConnectionString(err.message)}`);
        const code = (err as { code?: string }).code;
        if (code === 'MessagingEntityNotFoundError' || /could not be found/i.test(err.message)) {
          attach.refused(
            `consumer group '${o.consumerGroup}' not found on the hub (${err.message}): create it ` +
              '(az eventhubs eventhub consumer-group create …) or pass an existing one with --eventhub-consumer-group ' +
              '(CONSUMER_GROUP; every hub has $Default)',
          );
        } else if (code === 'UnauthorizedError') {
          attach.refused(attachProblem(err));
        }
      },
    };
    for (const id of this.partitions) {
      this.subscriptions.push(
        client.subscribe(id, handlers, {
          startPosition: starts.get(id) ?? latestEventPosition,
          skipParsingBodyAsJson: true,
          maxBatchSize: 500,
          maxWaitTimeInSeconds: 1,
        }),
      );
    }
    const refused = await attach.settled(o.connectTimeoutMs);
    if (refused !== undefined) {
      await this.close();
      fail(refused);
    }
  }

  /** A client for the attach-time management calls only: quick retries, so the real error surfaces. */
  private probeClient(): EventHubsClient {
    const o = this.o;
    const options = {
      retryOptions: {
        maxRetries: 2,
        retryDelayInMs: 200,
        maxRetryDelayInMs: 1000,
        timeoutInMs: Math.max(1000, Math.floor(o.connectTimeoutMs / 3)),
      },
    };
    return o.eventHubName
      ? new EventHubConsumerClient(o.consumerGroup, o.connectionString, o.eventHubName, options)
      : new EventHubConsumerClient(o.consumerGroup, o.connectionString, options);
  }

  /**
   * The SDK's processEvents handler: events in its documented ReceivedEventData shape, for one partition.
   * Public so the adapter is tested with recorded SDK-shaped events.
   */
  async handleEvents(events: ReceivedEventData[], context: PartitionContext): Promise<void> {
    const deliver = this.deliver;
    if (!deliver || events.length === 0) return;
    for (const ev of events) {
      const enq = ev.enqueuedTimeUtc instanceof Date ? ev.enqueuedTimeUtc.getTime() : Number.NaN;
      const arrivalMs = Number.isFinite(enq) ? enq : systemClock.now();
      deliver({
        payload: bodyBytes(ev.body),
        arrivalMs,
        enqueuedMs: Number.isFinite(enq) ? enq : undefined,
        partition: context.partitionId,
        userProperties: props(ev.properties),
      });
    }
    this.last.set(context.partitionId, { event: events[events.length - 1] as ReceivedEventData, context });
  }

  markInterval(): void {
    for (const [p, l] of this.last) this.marked.set(p, l);
    this.last = new Map();
  }

  /** The sequence number checkpointed per partition (none without a checkpoint store). */
  checkpoints(): Record<string, number> | undefined {
    return this.o.storageConnectionString || this.o.checkpointStore
      ? Object.fromEntries(this.checkpointed)
      : undefined;
  }

  /**
   * Checkpoints what the last mark covered (the events of intervals that reached the sinks), all partitions at once.
   * Resolves within CHECKPOINT_WAIT_MS even when Blob Storage hangs (the pipeline awaits this before its next
   * interval: a frozen storage account stalled the whole consumer, which then never ended). A write still
   * unanswered is left running, and its partition is not written again until it answers, so checkpoints never
   * land out of order; what was not written is kept for the next commit.
   */
  commit(): Promise<void> {
    const batch = this.marked;
    this.marked = new Map();
    const keep = (p: string, l: Last): void => {
      if (!this.marked.has(p)) this.marked.set(p, l);
    };
    this.committing = this.committing.then(async () => {
      const writes: Promise<void>[] = [];
      for (const [p, l] of batch) {
        if (this.inflight.has(p)) {
          keep(p, l); // the previous write to this partition has not answered yet
          continue;
        }
        const write = l.context.updateCheckpoint(l.event).then(() => {
          this.checkpointed.set(p, l.event.sequenceNumber);
        });
        this.inflight.set(p, write);
        const settle = (): void => {
          this.inflight.delete(p);
        };
        write.then(settle, settle);
        writes.push(
          withTimeout(write, CHECKPOINT_WAIT_MS).catch((e: unknown) => {
            keep(p, l);
            this.o.log?.(
              `eventhubs checkpoint of partition ${p} failed: ${redactConnectionString((e as Error).message)}`,
            );
          }),
        );
      }
      await Promise.all(writes);
    });
    return this.committing;
  }

  async close(): Promise<void> {
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((s) => s.close().catch(() => {})));
    await this.committing.catch(() => {});
    const c = this.client;
    this.client = undefined;
    await c?.close().catch(() => {});
  }
}

/**
 * Which partitions' readers attached, and whether the service refused one for good. `settled` resolves with the
 * refusal, or undefined once every partition attached or `timeoutMs` passed (a slow service is not a refusal: the
 * SDK keeps retrying and the run's validity check judges what arrived).
 */
function attachWatch(partitions: readonly string[]): {
  attached(partition: string): void;
  refused(why: string): void;
  settled(timeoutMs: number): Promise<string | undefined>;
} {
  const waiting = new Set(partitions);
  let done: ((why: string | undefined) => void) | undefined;
  let refusal: string | undefined;
  return {
    attached(partition) {
      waiting.delete(partition);
      if (waiting.size === 0) done?.(undefined);
    },
    refused(why) {
      refusal ??= why;
      done?.(refusal);
    },
    settled(timeoutMs) {
      if (refusal !== undefined) return Promise.resolve(refusal);
      if (waiting.size === 0) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const timer = setTimeout(() => finish(undefined), timeoutMs);
        const finish = (why: string | undefined): void => {
          clearTimeout(timer);
          done = undefined;
          resolve(why);
        };
        done = finish;
      });
    },
  };
}

/** An attach failure in words: the SDK's message, and for a refused token what to check. */
function attachProblem(e: unknown): string {
  // after its retries the SDK throws an AggregateError (empty message) of every attempt's error: the last one says it
  const errors = (e as { errors?: unknown[] } | undefined)?.errors;
  const err = (Array.isArray(errors) && errors.length > 0 ? errors[errors.length - 1] : e) as {
    code?: string;
    message?: string;
  };
  const text = err?.message ?? String(e);
  if (err?.code === 'UnauthorizedError' || /unauthori[sz]ed/i.test(text)) {
    return `unauthorized: ${text} (check SharedAccessKeyName/SharedAccessKey in the Event Hubs connection string)`;
  }
  return text;
}

/** Input checks that need no network (exit 2 on failure): a connection string with an endpoint and a hub name. */
function validate(o: EventHubsSourceOptions): void {
  if (o.client) return;
  const problems: string[] = [];
  if (!/(^|;)\s*Endpoint=sb:\/\/[^;]+/i.test(o.connectionString)) {
    problems.push('the Event Hubs connection string needs Endpoint=sb://<namespace>.servicebus.windows.net/');
  }
  if (!/SharedAccessKey=|SharedAccessSignature=/i.test(o.connectionString)) {
    problems.push(
      'the Event Hubs connection string needs SharedAccessKeyName/SharedAccessKey or a SharedAccessSignature',
    );
  }
  if (!o.eventHubName && !/EntityPath=/i.test(o.connectionString)) {
    problems.push(
      'no Event Hub name: pass --eventhub-name (EVENTHUB_NAME) or use a connection string with EntityPath',
    );
  }
  if (problems.length > 0) throw new FleetloadError('E_USAGE', problems);
}
