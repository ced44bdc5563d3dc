import mqtt, { type MqttClient } from 'mqtt';
import { FleetloadError } from '../errors.js';

/**
 * Consumer source on an MQTT subscription (MQTT.js). On MQTT 5 it uses a shared subscription
 * `$share/<group>/<filter>` so several consumers split the stream; on 3.1.1 a plain subscription.
 */
export interface MqttSourceOptions {
  url: string;
  filter: string;
  qos: 0 | 1 | 2;
  version: 4 | 5;
  group: string;
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  connectTimeoutMs: number;
  insecure?: boolean;
  onMessage(payload: Buffer): void;
}

export interface Source {
  readonly description: string;
  close(): Promise<void>;
}

/** Subscription filter from a topic template: `{runId}` filled in, any level with another placeholder → `+`. */
export function filterFromTemplate(template: string, runId: string): string {
  return template
    .split('/')
    .map((level) => {
      const filled = level.replaceAll('{runId}', runId);
      return /\{[A-Za-z]+(?::\d+)?\}/.test(filled) ? '+' : filled;
    })
    .join('/');
}

export async function openMqttSource(o: MqttSourceOptions): Promise<Source> {
  const topic = o.version === 5 ? `$share/${o.group}/${o.filter}` : o.filter;
  const client: MqttClient = mqtt.connect(o.url, {
    clientId: o.clientId,
    protocolVersion: o.version,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: o.connectTimeoutMs,
    username: o.username,
    password: o.password,
    rejectUnauthorized: !o.insecure,
    resubscribe: true,
  });
  client.on('message', (_topic, payload) => o.onMessage(payload));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(`no answer within ${o.connectTimeoutMs} ms`), o.connectTimeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      client.end(true);
      reject(new FleetloadError('E_UNREACHABLE', `consumer could not attach to ${redactUrl(o.url)}: ${why}`));
    };
    client.once('error', (e: Error & { code?: string | number }) =>
      fail(e.code ? `${e.code} ${e.message}` : e.message),
    );
    client.once('close', () =>
      fail('the broker closed the connection before CONNACK (check credentials and client id)'),
    );
    client.once('connect', () => {
      client.removeAllListeners('close');
      client.subscribe(topic, { qos: o.qos }, (err, granted) => {
        if (err) return fail(`subscribe to ${topic} failed: ${err.message}`);
        const g = granted?.[0];
        if (g && g.qos >= 0x80) return fail(`subscribe to ${topic} refused (code ${g.qos})`);
        clearTimeout(timer);
        client.removeAllListeners('error');
        client.on('error', () => {}); // reconnects are MQTT.js's job; errors after attach are not fatal
        resolve();
      });
    });
  });
  return {
    description: `mqtt ${topic}`,
    close: () =>
      new Promise<void>((resolve) => {
        client.end(false, {}, () => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  };
}

/** `mqtt://user:secret@host` → `mqtt://user:***@host`: secrets never reach logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
