import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Aedes, type Client } from 'aedes';
import type { EventHubStandIn } from './eventhub.js';

/**
 * A local Azure IoT Hub for tests: its MQTT device endpoint as documented ("Communicate with an IoT hub using the
 * MQTT protocol") on aedes over TLS, routing device-to-cloud telemetry into an Event Hub stand-in the way the hub's
 * built-in Event Hubs-compatible endpoint does.
 *
 * - TLS (the server certificate given, e.g. from `fleetload certs`); MQTT 3.1.1.
 * - Auth: client id = device id; username `{hub}/{deviceId}/?api-version=…`; password a device SAS token
 *   `SharedAccessSignature sr={hub}/devices/{deviceId}&sig=…&se=…`, checked: HMAC-SHA256 of `<sr>\n<se>` with the
 *   device's key, not expired, sr naming this hub and this device. Refused: CONNACK "not authorized".
 * - Publish only to `devices/{deviceId}/messages/events/` (optionally followed by a URL-encoded property bag, which
 *   becomes application properties); anything else is refused.
 * - Each accepted message is acknowledged, then (unless `drop` says to lose it) appended to the Event Hub's
 *   partition for the device (the device id as partition key), enqueued now, with the system properties the hub
 *   adds: `iothub-connection-device-id`, `iothub-enqueuedtime`, `iothub-connection-auth-method`,
 *   `iothub-message-source`.
 */

export interface IotHubOptions {
  /** NAME.azure-devices.net */
  hostName: string;
  /** the device's signing key (raw bytes), or undefined for an unknown device */
  deviceKey: (deviceId: string) => Buffer | undefined;
  eventHub: EventHubStandIn;
  cert: string;
  key: string;
  /** the hub's routing time: the Event Hub enqueues each message this long after the device sent it (default 0) */
  routeDelayMs?: number;
  /** lose this message after acknowledging it (n = the device's message count, from 1) */
  drop?: (deviceId: string, n: number) => boolean;
}

export interface IotHubStandIn {
  readonly port: number;
  /** messages accepted from devices */
  accepted(): number;
  /** accepted but lost on the way to the Event Hub (the injected loss) */
  dropped(): number;
  /** connections refused for their credentials */
  refused(): number;
  close(): Promise<void>;
}

const TELEMETRY = /^devices\/([^/]+)\/messages\/events\/(.*)$/;

function sasValid(password: string, sr: string, key: Buffer, nowMs: number): boolean {
  const prefix = 'SharedAccessSignature ';
  if (!password.startsWith(prefix)) return false;
  const f = new URLSearchParams(password.slice(prefix.length));
  const tokenSr = f.get('sr');
  const sig = f.get('sig');
  const se = f.get('se');
  if (!tokenSr || !sig || !se) return false;
  if (decodeURIComponent(tokenSr).toLowerCase() !== sr.toLowerCase()) return false;
  // the signed string is the sr as it appears in the token (URL-encoded), a newline, the expiry
  const raw = /(?:^|&)sr=([^&]*)/.exec(password.slice(prefix.length))?.[1] ?? '';
  const expected = createHmac('sha256', key).update(`${raw}\n${se}`).digest();
  const given = Buffer.from(sig, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
  return Number(se) * 1000 >= nowMs;
}

export async function startIotHub(o: IotHubOptions): Promise<IotHubStandIn> {
  const broker = await Aedes.createBroker();
  const perDevice = new Map<string, number>();
  let accepted = 0;
  let dropped = 0;
  let refused = 0;

  broker.authenticate = (client: Client, username, password, done) => {
    const deviceId = client.id;
    const key = o.deviceKey(deviceId);
    const userOk =
      typeof username === 'string' && username.startsWith(`${o.hostName}/${deviceId}/?api-version=`);
    const ok =
      key !== undefined &&
      userOk &&
      password !== undefined &&
      sasValid(password.toString('utf8'), `${o.hostName}/devices/${deviceId}`, key, Date.now());
    if (ok) {
      done(null, true);
      return;
    }
    refused++;
    const err = Object.assign(new Error('not authorized'), { returnCode: 5 });
    done(err as Parameters<typeof done>[0], false);
  };
  broker.authorizePublish = (client, packet, done) => {
    const m = TELEMETRY.exec(packet.topic);
    if (!client || !m || m[1] !== client.id) {
      done(new Error(`devices may publish only to devices/${client?.id}/messages/events/`));
      return;
    }
    done(null);
  };
  broker.on('publish', (packet, client) => {
    if (!client) return; // the broker's own $SYS messages
    const m = TELEMETRY.exec(packet.topic);
    if (!m) return;
    const deviceId = client.id;
    accepted++;
    const n = (perDevice.get(deviceId) ?? 0) + 1;
    perDevice.set(deviceId, n);
    if (o.drop?.(deviceId, n)) {
      dropped++;
      return;
    }
    const properties: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(m[2] ?? '')) properties[k] = v;
    const now = Date.now() + (o.routeDelayMs ?? 0);
    o.eventHub.append(o.eventHub.partitionFor(deviceId), {
      body: Buffer.from(packet.payload),
      enqueuedTimeMs: now,
      partitionKey: deviceId,
      properties,
      annotations: {
        'iothub-connection-device-id': deviceId,
        'iothub-enqueuedtime': new Date(now),
        'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub"}',
        'iothub-message-source': 'Telemetry',
      },
    });
  });

  const server = tls.createServer(
    { cert: readFileSync(o.cert), key: readFileSync(o.key) },
    broker.handle as (socket: tls.TLSSocket) => void,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    accepted: () => accepted,
    dropped: () => dropped,
    refused: () => refused,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
