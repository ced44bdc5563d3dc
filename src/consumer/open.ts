import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FleetloadError } from '../errors.js';
import type { Scenario } from '../scenario/schema.js';
import type { EventHubsSourceOptions } from './eventhubs-source.js';
import type { MqttSourceOptions } from './mqtt-source.js';
import type { NatsSourceOptions } from './nats-source.js';
import type { Deliver, Source, SourceKind } from './source.js';
import { filterFromTemplate, subjectFromMqtt } from './topics.js';

/** One source configuration per kind; `createSource` builds it (nothing connects before `open`). */
export type SourceConfig =
  | ({ kind: 'mqtt' } & MqttSourceOptions)
  | ({ kind: 'nats' } & NatsSourceOptions)
  | ({ kind: 'eventhubs' } & EventHubsSourceOptions);

export function createSource(c: SourceConfig): Source {
  switch (c.kind) {
    case 'mqtt':
      return new LazySource('mqtt', async () => new (await import('./mqtt-source.js')).MqttSource(c));
    case 'nats':
      return new LazySource('nats', async () => new (await import('./nats-source.js')).NatsSource(c));
    case 'eventhubs':
      return new LazySource(
        'eventhubs',
        async () => new (await import('./eventhubs-source.js')).EventHubsSource(c),
      );
  }
}

/**
 * The consumer source of `fleetload run`, from the scenario: `mqtt` reads the devices' broker (or
 * `consumerHost`), `nats` reads JetStream at `consumerHost` (subject derived from the topic template), `eventhubs`
 * reads the hub of `eventhubConnectionString` (all partitions, starting at "latest"). The group defaults to
 * `fleetload-<runId>`; a NATS durable of that default name is deleted when the run ends.
 */
export function sourceFromScenario(
  s: Scenario,
  url: string,
  o: {
    now?: () => number;
    log?: (line: string) => void;
    onDisconnect?: (reason: string) => void;
    onReconnect?: () => void;
  } = {},
): Source {
  const group = s.consumerGroup ?? `fleetload-${s.runId}`;
  const filter = filterFromTemplate(s.topic, s.runId);
  switch (s.consumer) {
    case 'mqtt':
      return createSource({
        kind: 'mqtt',
        url: s.consumerHost ?? url,
        filter,
        qos: s.consumerQos,
        version: s.mqttVersion === '5' ? 5 : 4,
        group,
        clientId: `fleetload-consumer-${s.runId}`.slice(0, 64),
        username: s.username?.includes('{') ? undefined : s.username,
        password: s.password,
        connectTimeoutMs: s.connectTimeoutMs,
        ...consumerTls(s),
        ...(o.now ? { now: o.now } : {}),
        ...(o.onDisconnect ? { onDisconnect: o.onDisconnect } : {}),
        ...(o.onReconnect ? { onReconnect: o.onReconnect } : {}),
      });
    case 'nats':
      return createSource({
        kind: 'nats',
        url: s.consumerHost ?? '',
        subject: subjectFromMqtt(filter),
        stream: s.natsStream,
        createStream: s.natsCreateStream,
        // a created stream captures every run of the topic, not only this one
        streamSubject: subjectFromMqtt(filterFromTemplate(s.topic, '{runId}')),
        durable: group,
        connectTimeoutMs: s.connectTimeoutMs,
        deleteOnClose: s.consumerGroup === undefined,
        ...(o.log ? { log: o.log } : {}),
        ...(o.onDisconnect ? { onDisconnect: o.onDisconnect } : {}),
        ...(o.onReconnect ? { onReconnect: o.onReconnect } : {}),
      });
    case 'eventhubs':
      if (s.eventhubConnectionString === undefined) {
        throw new FleetloadError('E_SCENARIO', 'consumer: eventhubs needs --eventhub-connection-string');
      }
      return createSource({
        kind: 'eventhubs',
        connectionString: s.eventhubConnectionString,
        eventHubName: s.eventhubName,
        consumerGroup: s.eventhubConsumerGroup,
        storageConnectionString: s.storageConnectionString,
        storageContainer: s.storageContainer,
        partitionIndex: 0,
        partitionCount: 1,
        connectTimeoutMs: s.connectTimeoutMs,
        ...(o.log ? { log: o.log } : {}),
      });
    case 'none':
      throw new FleetloadError('E_INTERNAL', 'sourceFromScenario called with consumer none');
  }
}

/**
 * A source whose client library (MQTT.js, nats, the Azure SDK) is imported only when it opens: a run that reads
 * MQTT never pays for the Azure SDK, and bad input is answered before any of them loads.
 */
class LazySource implements Source {
  private inner: Source | undefined;
  constructor(
    readonly kind: SourceKind,
    private readonly make: () => Promise<Source>,
  ) {}

  get description(): string {
    return this.inner?.description ?? this.kind;
  }

  async open(deliver: Deliver): Promise<void> {
    this.inner ??= await this.make();
    await this.inner.open(deliver);
  }

  markInterval(): void {
    this.inner?.markInterval();
  }

  async commit(): Promise<void> {
    await this.inner?.commit();
  }

  checkpoints(): Record<string, number> | undefined {
    return this.inner?.checkpoints?.();
  }

  async close(): Promise<void> {
    await this.inner?.close();
  }
}

/**
 * The run's consumer talks TLS like the devices do: the same CA, `--insecure`, server name and TLS version. Its client
 * certificate: `--consumer-cert/--consumer-key` when given, else the devices' when the templates name one file
 * for everybody (per-device certificates stay the devices').
 */
function consumerTls(
  s: Scenario,
): Pick<MqttSourceOptions, 'ca' | 'cert' | 'key' | 'servername' | 'insecure' | 'tlsVersion'> {
  const read = (f: string | undefined) => (f !== undefined ? readFileSync(resolve(f)) : undefined);
  const shared = (t: string | undefined) => (t !== undefined && !t.includes('{') ? t : undefined);
  const cert = s.consumerCert ?? shared(s.cert);
  const key = s.consumerKey ?? shared(s.key);
  return {
    insecure: s.insecure,
    ca: read(s.ca),
    ...(cert && key ? { cert: read(cert), key: read(key) } : {}),
    servername: s.servername,
    ...(s.tlsVersion !== 'auto' ? { tlsVersion: s.tlsVersion } : {}),
  };
}
