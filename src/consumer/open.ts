import { FleetloadError } from '../errors.js';
import type { Scenario } from '../scenario/schema.js';
import { EventHubsSource, type EventHubsSourceOptions } from './eventhubs-source.js';
import { filterFromTemplate, MqttSource, type MqttSourceOptions } from './mqtt-source.js';
import { NatsSource, type NatsSourceOptions, subjectFromMqtt } from './nats-source.js';
import type { Source } from './source.js';

/** One source configuration per kind; `createSource` builds it (nothing connects before `open`). */
export type SourceConfig =
  | ({ kind: 'mqtt' } & MqttSourceOptions)
  | ({ kind: 'nats' } & NatsSourceOptions)
  | ({ kind: 'eventhubs' } & EventHubsSourceOptions);

export function createSource(c: SourceConfig): Source {
  switch (c.kind) {
    case 'mqtt':
      return new MqttSource(c);
    case 'nats':
      return new NatsSource(c);
    case 'eventhubs':
      return new EventHubsSource(c);
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
  o: { now?: () => number; log?: (line: string) => void } = {},
): Source {
  const group = s.consumerGroup ?? `fleetload-${s.runId}`;
  const filter = filterFromTemplate(s.topic, s.runId);
  switch (s.consumer) {
    case 'mqtt':
      return new MqttSource({
        url: s.consumerHost ?? url,
        filter,
        qos: s.consumerQos,
        version: s.mqttVersion === '5' ? 5 : 4,
        group,
        clientId: `fleetload-consumer-${s.runId}`.slice(0, 64),
        username: s.username?.includes('{') ? undefined : s.username,
        password: s.password,
        connectTimeoutMs: s.connectTimeoutMs,
        ...(o.now ? { now: o.now } : {}),
      });
    case 'nats':
      return new NatsSource({
        url: s.consumerHost ?? '',
        subject: subjectFromMqtt(filter),
        stream: s.natsStream,
        durable: group,
        connectTimeoutMs: s.connectTimeoutMs,
        deleteOnClose: s.consumerGroup === undefined,
      });
    case 'eventhubs':
      if (s.eventhubConnectionString === undefined) {
        throw new FleetloadError('E_SCENARIO', 'consumer: eventhubs needs --eventhub-connection-string');
      }
      return new EventHubsSource({
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
