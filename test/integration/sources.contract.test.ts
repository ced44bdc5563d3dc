import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type {
  Checkpoint,
  CheckpointStore,
  PartitionContext,
  PartitionOwnership,
  ReceivedEventData,
  SubscribeOptions,
  Subscription,
  SubscriptionEventHandlers,
} from '@azure/event-hubs';
import mqtt, { type MqttClient } from 'mqtt';
import { connect as natsConnect } from 'nats';
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/broker/embedded.js';
import { type EventHubsClient, EventHubsSource } from '../../src/consumer/eventhubs-source.js';
import { Ledger } from '../../src/consumer/ledger.js';
import { MqttSource } from '../../src/consumer/mqtt-source.js';
import { NatsSource } from '../../src/consumer/nats-source.js';
import type { Delivery, Source } from '../../src/consumer/source.js';
import { makeDecoder } from '../../src/wire/index.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type NatsServer, startNats } from '../helpers/nats.js';
import { skipUnless } from '../helpers/services.js';

/**
 * One contract, every consumer source (STYLE: contract suites shared by every implementation): attach, deliver
 * N messages from M devices exactly once into the ledger, arrival ≥ ts and monotone-ish, close cleanly, and two
 * instances splitting the stream without overlap (merged counts exact). Then a restart with no double counting.
 *
 * mqtt: Mosquitto (v5 shared subscription) and the embedded broker (Aedes: 3.1.1, no shared subscriptions, so
 * no split). nats: a real nats-server; devices publish MQTT to its MQTT listener, a JetStream stream captures the
 * subjects. eventhubs: no service here — events in the SDK's documented ReceivedEventData shape, delivered through
 * the adapter's processEvents handler by a fake client that behaves as the SDK documents (start at the
 * checkpoint, else latest), with a fake CheckpointStore implementing the SDK's interface.
 */

const DEVICES = 5;
const PER_DEVICE = 20;

interface Platform {
  /** publishes the given messages the way devices would (MQTT, or events) */
  publish(runId: string, msgs: Array<{ deviceId: string; seq: number }>): Promise<void>;
  source(runId: string, part: { index: number; count: number; group: string }): Source;
  /** can two instances split the stream? (false: why not) */
  split: true | string;
}

class Collector {
  readonly ledger = new Ledger();
  readonly arrivals: Array<{ deviceId: string; seq: number; arrivalMs: number; ts: number }> = [];
  duplicates = 0;
  foreign = 0;
  private readonly decode = makeDecoder();
  constructor(private readonly runId: string) {}
  deliver = (d: Delivery): void => {
    const t = this.decode(d.payload, d.userProperties);
    if (!t || t.runId !== this.runId) {
      this.foreign++;
      return;
    }
    if (this.ledger.record(t.deviceId, t.seq) === 'duplicate') this.duplicates++;
    this.arrivals.push({ deviceId: t.deviceId, seq: t.seq, arrivalMs: d.arrivalMs, ts: t.ts });
  };
}

const msgs = (from = 1, to = PER_DEVICE) =>
  Array.from({ length: DEVICES }, (_, d) =>
    Array.from({ length: to - from + 1 }, (_, k) => ({ deviceId: `dev-${d}`, seq: from + k })),
  ).flat();

async function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const payload = (runId: string, m: { deviceId: string; seq: number }) =>
  JSON.stringify({ deviceId: m.deviceId, seq: m.seq, ts: Date.now(), runId, temperature: 20 });

let runCounter = 0;
const newRunId = () => `c${process.pid}-${++runCounter}`;

function contract(name: string, skip: false | string, platform: () => Platform): void {
  test(`${name}: attach, deliver N×M exactly once, arrival ≥ ts and monotone-ish, close cleanly`, {
    skip,
  }, async () => {
    const p = platform();
    const runId = newRunId();
    const c = new Collector(runId);
    const src = p.source(runId, { index: 0, count: 1, group: `g-${runId}` });
    await src.open(c.deliver);
    try {
      await p.publish(runId, msgs());
      await until(
        () => c.ledger.uniqueCount === DEVICES * PER_DEVICE,
        15_000,
        `${DEVICES * PER_DEVICE} messages`,
      );
      await new Promise((r) => setTimeout(r, 200)); // room for a stray duplicate
      assert.equal(c.duplicates, 0);
      assert.equal(c.foreign, 0);
      assert.equal(
        c.ledger.lost(new Map(msgs(PER_DEVICE, PER_DEVICE).map((m) => [m.deviceId, PER_DEVICE]))),
        0,
      );
      let prev = Number.NEGATIVE_INFINITY;
      for (const a of c.arrivals) {
        assert.ok(a.arrivalMs >= a.ts - 1, `arrival ${a.arrivalMs} before ts ${a.ts}`);
        assert.ok(a.arrivalMs >= prev - 100, 'arrivals go backwards by more than 100 ms');
        prev = Math.max(prev, a.arrivalMs);
      }
    } finally {
      await src.close(); // never throws; one that hangs fails the test at its timeout
    }
    // closed: nothing more is delivered, and close is idempotent
    const before = c.arrivals.length;
    await p.publish(runId, msgs(PER_DEVICE + 1, PER_DEVICE + 2));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.arrivals.length, before);
    await src.close();
  });

  test(`${name}: two instances split the stream without overlap; merged ledger exact`, {
    skip,
  }, async () => {
    const p = platform();
    const runId = newRunId();
    const a = new Collector(runId);
    const b = new Collector(runId);
    if (p.split !== true) {
      // no way to split here (${p.split}): every instance gets the whole stream — which is why
      // `fleetload consume --partition-count N` refuses this source
      const sa = p.source(runId, { index: 0, count: 2, group: `g-${runId}` });
      const sb = p.source(runId, { index: 1, count: 2, group: `g-${runId}` });
      await sa.open(a.deliver);
      await sb.open(b.deliver);
      try {
        await p.publish(runId, msgs());
        const total = DEVICES * PER_DEVICE;
        await until(
          () => a.ledger.uniqueCount >= total && b.ledger.uniqueCount >= total,
          15_000,
          `${total} each`,
        );
        assert.equal(a.ledger.uniqueCount, total);
        assert.equal(b.ledger.uniqueCount, total);
      } finally {
        await sa.close();
        await sb.close();
      }
      return;
    }
    const sa = p.source(runId, { index: 0, count: 2, group: `g-${runId}` });
    const sb = p.source(runId, { index: 1, count: 2, group: `g-${runId}` });
    await sa.open(a.deliver);
    await sb.open(b.deliver);
    try {
      await p.publish(runId, msgs());
      const total = DEVICES * PER_DEVICE;
      await until(() => a.ledger.uniqueCount + b.ledger.uniqueCount >= total, 15_000, `${total} messages`);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(a.arrivals.length > 0 && b.arrivals.length > 0, 'both instances got a share');
      const merged = Ledger.deserialize(a.ledger.serialize());
      const { overlap } = merged.merge(Ledger.deserialize(b.ledger.serialize()));
      assert.equal(overlap, 0);
      assert.equal(merged.uniqueCount, total);
      assert.equal(a.arrivals.length + b.arrivals.length, total);
      assert.equal(
        merged.lost(new Map(msgs(PER_DEVICE, PER_DEVICE).map((m) => [m.deviceId, PER_DEVICE]))),
        0,
      );
    } finally {
      await Promise.all([sa.close(), sb.close()]);
    }
  });
}

// ---------------------------------------------------------------------------------------------- mqtt

async function mqttPublisher(url: string, version: 4 | 5): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 5000 });
}

function mqttPlatform(url: () => string, version: 4 | 5, pub: () => MqttClient): Platform {
  return {
    split: version === 5 ? true : 'MQTT 3.1.1 has no shared subscriptions: every instance gets everything',
    async publish(runId, list) {
      for (const m of list)
        await pub().publishAsync(`fleetload/${runId}/${m.deviceId}`, payload(runId, m), { qos: 1 });
    },
    source: (runId, part) =>
      new MqttSource({
        url: url(),
        filter: `fleetload/${runId}/+`,
        qos: 1,
        version,
        group: part.group,
        clientId: `c-${runId}-${part.index}`,
        connectTimeoutMs: 5000,
      }),
  };
}

describe('mqtt source on Mosquitto (MQTT 5, shared subscription)', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  let pub: MqttClient;
  before(async () => {
    broker = await startMosquitto();
    pub = await mqttPublisher(broker.url, 5);
  });
  after(async () => {
    await pub?.endAsync(true);
    await broker?.stop();
  });
  contract('mqtt/mosquitto', false, () =>
    mqttPlatform(
      () => broker.url,
      5,
      () => pub,
    ),
  );
});

describe('mqtt source on the embedded broker (MQTT 3.1.1)', () => {
  let broker: EmbeddedBroker;
  let pub: MqttClient;
  before(async () => {
    broker = await startEmbeddedBroker();
    pub = await mqttPublisher(broker.url, 4);
  });
  after(async () => {
    await pub?.endAsync(true);
    await broker?.stop();
  });
  contract('mqtt/embedded', false, () =>
    mqttPlatform(
      () => broker.url,
      4,
      () => pub,
    ),
  );
});

// ---------------------------------------------------------------------------------------------- nats

async function addStream(url: string, name: string, subjects: string[]): Promise<void> {
  const nc = await natsConnect({ servers: url.replace('nats://', '') });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name, subjects });
  } finally {
    await nc.close();
  }
}

describe('nats source on nats-server (devices → MQTT listener → JetStream)', {
  skip: skipUnless('nats-server'),
}, () => {
  let server: NatsServer;
  let pub: MqttClient;
  before(async () => {
    server = await startNats();
    await addStream(server.url, 'FLEETLOAD', ['fleetload.>']);
    pub = await mqttPublisher(server.mqttUrl as string, 4);
  });
  after(async () => {
    await pub?.endAsync(true);
    await server?.stop();
  });
  const platform = (): Platform => ({
    split: true,
    async publish(runId, list) {
      for (const m of list)
        await pub.publishAsync(`fleetload/${runId}/${m.deviceId}`, payload(runId, m), { qos: 1 });
    },
    // instances of one group share the durable: JetStream hands each message to one of them
    source: (runId, part) =>
      new NatsSource({
        url: server.url,
        subject: `fleetload.${runId}.*`,
        durable: part.group,
        connectTimeoutMs: 5000,
        batch: 10,
      }),
  });
  contract('nats', false, platform);

  test('nats: a consumer restarted mid-run resumes at its durable: no double counting', async () => {
    const p = platform();
    const runId = newRunId();
    const first = new Collector(runId);
    const s1 = p.source(runId, { index: 0, count: 1, group: `g-${runId}` });
    await s1.open(first.deliver);
    await p.publish(runId, msgs(1, 10));
    await until(() => first.ledger.uniqueCount === DEVICES * 10, 10_000, 'first half');
    await s1.close();
    // published while no consumer runs: the durable keeps them
    await p.publish(runId, msgs(11, 20));
    const second = new Collector(runId);
    const s2 = p.source(runId, { index: 0, count: 1, group: `g-${runId}` });
    await s2.open(second.deliver);
    try {
      await until(() => second.ledger.uniqueCount === DEVICES * 10, 10_000, 'second half');
      await new Promise((r) => setTimeout(r, 300));
      const merged = Ledger.deserialize(first.ledger.serialize());
      assert.equal(merged.merge(second.ledger).overlap, 0);
      assert.equal(merged.uniqueCount, DEVICES * PER_DEVICE);
      assert.equal(second.duplicates, 0);
    } finally {
      await s2.close();
    }
  });

  test('nats: cannot attach without a stream for the subject (E_UNREACHABLE)', async () => {
    const s = new NatsSource({ url: server.url, subject: 'nowhere.*', durable: 'x', connectTimeoutMs: 2000 });
    await assert.rejects(
      s.open(() => {}),
      (e: Error & { code?: string }) => e.code === 'E_UNREACHABLE' && /no JetStream stream/.test(e.message),
    );
  });
});

// ---------------------------------------------------------------------------------------------- eventhubs

const FQNS = 'fake.servicebus.windows.net';
const HUB = 'telemetry';

/** CheckpointStore as the SDK defines it (in memory). */
class MemoryCheckpointStore implements CheckpointStore {
  checkpoints = new Map<string, Checkpoint>();
  ownerships = new Map<string, PartitionOwnership>();
  async listOwnership(): Promise<PartitionOwnership[]> {
    return [...this.ownerships.values()];
  }
  async claimOwnership(list: PartitionOwnership[]): Promise<PartitionOwnership[]> {
    for (const o of list) this.ownerships.set(o.partitionId, { ...o, etag: String(Date.now()) });
    return list;
  }
  async updateCheckpoint(c: Checkpoint): Promise<void> {
    this.checkpoints.set(`${c.consumerGroup}/${c.partitionId}`, { ...c });
  }
  async listCheckpoints(_ns: string, _hub: string, consumerGroup: string): Promise<Checkpoint[]> {
    return [...this.checkpoints.values()].filter((c) => c.consumerGroup === consumerGroup);
  }
}

/** Events as the service would hold them: per partition, in the SDK's ReceivedEventData shape. */
class FakeHub {
  readonly partitions = new Map<string, ReceivedEventData[]>(['0', '1', '2', '3'].map((p) => [p, []]));
  send(body: unknown, partitionKey: string, properties?: Record<string, unknown>): void {
    let h = 0;
    for (const ch of partitionKey) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    const pid = String(h % this.partitions.size);
    const list = this.partitions.get(pid) as ReceivedEventData[];
    const sequenceNumber = list.length;
    const ev: ReceivedEventData = {
      body,
      properties,
      enqueuedTimeUtc: new Date(Date.now() + 1),
      partitionKey,
      offset: String(sequenceNumber * 100),
      sequenceNumber,
      systemProperties: { 'x-opt-enqueued-time': Date.now() },
      getRawAmqpMessage: () =>
        ({ body, bodyType: 'data' }) as unknown as ReturnType<ReceivedEventData['getRawAmqpMessage']>,
    };
    list.push(ev);
  }
}

/**
 * What EventHubConsumerClient documents for subscribe(partitionId, handlers, { startPosition }) with a checkpoint
 * store: start after the partition's checkpoint when there is one, else at startPosition (latest); deliver
 * batches to processEvents; context.updateCheckpoint writes a Checkpoint to the store.
 */
class FakeClient implements EventHubsClient {
  private timers = new Set<NodeJS.Timeout>();
  constructor(
    private readonly hub: FakeHub,
    private readonly store: CheckpointStore,
    private readonly consumerGroup: string,
  ) {}
  async getPartitionIds(): Promise<string[]> {
    return [...this.hub.partitions.keys()];
  }
  subscribe(partitionId: string, handlers: SubscriptionEventHandlers, _o?: SubscribeOptions): Subscription {
    const list = this.hub.partitions.get(partitionId) as ReceivedEventData[];
    let next = list.length; // latest
    let running = true;
    let busy = false;
    const context: PartitionContext = {
      fullyQualifiedNamespace: FQNS,
      eventHubName: HUB,
      consumerGroup: this.consumerGroup,
      partitionId,
      updateCheckpoint: async (ev: ReceivedEventData) => {
        await this.store.updateCheckpoint({
          fullyQualifiedNamespace: FQNS,
          eventHubName: HUB,
          consumerGroup: this.consumerGroup,
          partitionId,
          sequenceNumber: ev.sequenceNumber,
          offset: ev.offset,
        });
      },
    };
    const ready = this.store.listCheckpoints(FQNS, HUB, this.consumerGroup).then((cps) => {
      const cp = cps.find((c) => c.partitionId === partitionId);
      if (cp) next = cp.sequenceNumber + 1;
    });
    const timer = setInterval(async () => {
      if (!running || busy) return;
      busy = true;
      await ready;
      const batch = list.slice(next, next + 7);
      next += batch.length;
      // as the SDK does after maxWaitTimeInSeconds: an empty batch when nothing came (the reader is attached)
      await handlers.processEvents(batch, context);
      busy = false;
    }, 5);
    this.timers.add(timer);
    return {
      get isRunning() {
        return running;
      },
      close: async () => {
        running = false;
        clearInterval(timer);
        this.timers.delete(timer);
      },
    };
  }
  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
  }
}

function eventhubsPlatform(hub: FakeHub, store: CheckpointStore): Platform {
  return {
    split: true,
    async publish(runId, list) {
      list.forEach((m, k) => {
        const text = payload(runId, m);
        // bodies as producers send them: bytes, gzip bytes, and text
        const body = k % 3 === 0 ? Buffer.from(text) : k % 3 === 1 ? gzipSync(text) : text;
        hub.send(body, m.deviceId);
      });
    },
    source: (_runId, part) =>
      new EventHubsSource({
        connectionString:
          'Endpoint=sb://fake.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=SECRET',
        eventHubName: HUB,
        consumerGroup: part.group,
        partitionIndex: part.index,
        partitionCount: part.count,
        connectTimeoutMs: 2000,
        client: new FakeClient(hub, store, part.group),
        checkpointStore: store,
      }),
  };
}

describe('eventhubs source on recorded SDK-shaped events (no Event Hubs service here)', () => {
  const hub = new FakeHub();
  const store = new MemoryCheckpointStore();
  contract('eventhubs', false, () => eventhubsPlatform(hub, store));

  test('eventhubs: checkpoints only on commit; a restart resumes after the checkpoint, no double counting', async () => {
    const p = eventhubsPlatform(hub, store);
    const runId = newRunId();
    const group = `g-${runId}`;
    const first = new Collector(runId);
    const s1 = p.source(runId, { index: 0, count: 1, group }) as EventHubsSource;
    await s1.open(first.deliver);
    await p.publish(runId, msgs(1, 10));
    await until(() => first.ledger.uniqueCount === DEVICES * 10, 10_000, 'first half');
    assert.equal(
      (await store.listCheckpoints(FQNS, HUB, group)).length,
      0,
      'nothing checkpointed before commit',
    );
    // the interval is cut (mark), reaches the sinks (here: the ledger snapshot), then commit
    s1.markInterval();
    const committed = first.ledger.serialize();
    await s1.commit();
    assert.ok((await store.listCheckpoints(FQNS, HUB, group)).length > 0);
    // more events arrive and are counted, but the process dies before that interval reached the sinks
    await p.publish(runId, msgs(11, 15));
    await until(() => first.ledger.uniqueCount === DEVICES * 15, 10_000, 'uncommitted part');
    await s1.close(); // no commit: a crash
    await p.publish(runId, msgs(16, 20));
    const second = new Collector(runId);
    const s2 = p.source(runId, { index: 0, count: 1, group });
    await s2.open(second.deliver);
    try {
      await until(
        () => second.ledger.uniqueCount === DEVICES * 10,
        10_000,
        'everything after the checkpoint',
      );
      await new Promise((r) => setTimeout(r, 100));
      const merged = Ledger.deserialize(committed);
      assert.equal(merged.merge(second.ledger).overlap, 0, 'nothing counted twice');
      assert.equal(merged.uniqueCount, DEVICES * PER_DEVICE, 'nothing lost');
    } finally {
      await s2.close();
    }
  });

  test('eventhubs: application properties decode like MQTT 5 user properties; secrets stay out of the description', async () => {
    const h = new FakeHub();
    const src = eventhubsPlatform(h, new MemoryCheckpointStore()).source('r', {
      index: 0,
      count: 1,
      group: 'g',
    });
    assert.doesNotMatch(src.description, /SECRET/);
    const c = new Collector('r');
    await src.open(c.deliver);
    try {
      h.send(Buffer.from('opaque'), 'dev-1', { deviceId: 'dev-1', seq: 1, ts: Date.now(), runId: 'r' });
      await until(() => c.ledger.uniqueCount === 1, 5000, 'one event');
    } finally {
      await src.close();
    }
  });
});
