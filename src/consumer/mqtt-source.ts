import mqtt, { type MqttClient } from 'mqtt';
import { systemClock } from '../clock.js';
import { FleetloadError } from '../errors.js';
import { type Deliver, redactUrl, type Source } from './source.js';

export { redactUrl, type Source } from './source.js';
export { filterFromTemplate } from './topics.js';

/**
 * Consumer source on an MQTT subscription (MQTT.js). With `shared` (default: on MQTT 5) it subscribes to
 * `$share/<group>/<filter>`, so several consumers of one group split the stream, each message going to one of them
 * (MQTT 5 §4.8.2; Mosquitto 2, EMQX, HiveMQ and VerneMQ accept it from 3.1.1 clients too); otherwise a plain
 * subscription (every instance gets everything). Arrival is the local receive time from the process's wall clock (MQTT has no enqueue time). MQTT 5 user properties are
 * handed on for decoding.
 */
export interface MqttSourceOptions {
  url: string;
  filter: string;
  qos: 0 | 1 | 2;
  version: 4 | 5;
  group: string;
  /** subscribe as a member of `group` (`$share/<group>/<filter>`); default: on MQTT 5 only */
  shared?: boolean | undefined;
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  connectTimeoutMs: number;
  insecure?: boolean;
  /** TLS: the broker's CA, a client certificate and key (PEM), the server name to check */
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  servername?: string | undefined;
  /** TLS: pin this version (like the devices, --tls-version); absent = Node's default negotiation */
  tlsVersion?: '1.2' | '1.3' | undefined;
  /** local receive time; default systemClock.now (Date.now() would floor to whole ms: −0.5 ms on average) */
  now?: () => number;
  /** the connection dropped after attaching (MQTT.js reconnects and resubscribes) */
  onDisconnect?: (reason: string) => void;
  /** it came back after such a drop (CONNACK again) */
  onReconnect?: () => void;
}

export class MqttSource implements Source {
  readonly kind = 'mqtt';
  readonly description: string;
  private readonly topic: string;
  private client: MqttClient | undefined;

  constructor(private readonly o: MqttSourceOptions) {
    this.topic = (o.shared ?? o.version === 5) ? `$share/${o.group}/${o.filter}` : o.filter;
    this.description = `mqtt ${redactUrl(o.url)} ${this.topic} (QoS ${o.qos})`;
  }

  async open(deliver: Deliver): Promise<void> {
    const o = this.o;
    const now = o.now ?? systemClock.now;
    const topic = this.topic;
    const client: MqttClient = mqtt.connect(o.url, {
      clientId: o.clientId,
      protocolVersion: o.version,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: o.connectTimeoutMs,
      username: o.username,
      password: o.password,
      rejectUnauthorized: !o.insecure,
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.cert ? { cert: o.cert } : {}),
      ...(o.key ? { key: o.key } : {}),
      ...(o.servername ? { servername: o.servername } : {}),
      ...(o.tlsVersion ? { minVersion: `TLSv${o.tlsVersion}`, maxVersion: `TLSv${o.tlsVersion}` } : {}),
      resubscribe: true,
    });
    this.client = client;
    client.on('message', (_topic, payload, packet) => {
      const props = packet.properties?.userProperties;
      deliver({ payload, arrivalMs: now(), userProperties: props });
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(`no answer within ${o.connectTimeoutMs} ms`), o.connectTimeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        client.end(true);
        this.client = undefined;
        reject(
          new FleetloadError('E_UNREACHABLE', `consumer could not attach to ${redactUrl(o.url)}: ${why}`),
        );
      };
      // named listeners, removed by name: MQTT.js has its own 'close' listener that drives its reconnects
      const onError = (e: Error & { code?: string | number }) =>
        fail(e.code ? `${e.code} ${e.message}` : e.message);
      const onClose = () =>
        fail('the broker closed the connection before CONNACK (check credentials and client id)');
      client.once('error', onError);
      client.once('close', onClose);
      client.once('connect', () => {
        client.off('close', onClose);
        client.subscribe(topic, { qos: o.qos }, (err, granted) => {
          if (err) return fail(`subscribe to ${topic} failed: ${err.message}`);
          const g = granted?.[0];
          if (g && g.qos >= 0x80) return fail(`subscribe to ${topic} refused (code ${g.qos})`);
          clearTimeout(timer);
          client.off('error', onError);
          // after attach, reconnecting is MQTT.js's job; each loss is reported so a run shows why it lost messages
          client.on('error', () => {});
          // one report per outage: MQTT.js closes again after each failed reconnect attempt
          let lost = false;
          client.on('close', () => {
            if (this.client !== client || lost) return;
            lost = true;
            o.onDisconnect?.('consumer connection lost; reconnecting');
          });
          client.on('connect', () => {
            if (this.client !== client || !lost) return;
            lost = false;
            o.onReconnect?.();
          });
          resolve();
        });
      });
    });
  }

  markInterval(): void {}

  async commit(): Promise<void> {}

  close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // a ref'd fallback: while the broker is away MQTT.js may never call back, and an unref'd timer would let
      // the process run out of work mid-shutdown and exit 0 without its summary
      const fallback = setTimeout(() => {
        client.end(true);
        resolve();
      }, 1000);
      client.end(false, {}, () => {
        clearTimeout(fallback);
        resolve();
      });
    });
  }
}

/** Opens an MQTT source delivering raw payloads (the API `run` used before sources had one interface). */
export async function openMqttSource(
  o: MqttSourceOptions & { onMessage(payload: Buffer): void },
): Promise<Source> {
  const s = new MqttSource(o);
  await s.open((d) => o.onMessage(d.payload));
  return s;
}
