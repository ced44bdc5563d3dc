import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { outputTail, retry, type ServiceProcess, spawnService, tmpDir } from './process.js';
import { freePort, requireService, waitForPort } from './services.js';

/**
 * A real nats-server (Debian's, 2.9+) per test, on free loopback ports, with JetStream (file store in a temp dir)
 * and its MQTT listener (MQTT 3.1.1, QoS 0/1 only; it needs JetStream and a server_name). This is the local
 * stand-in for "the platform forwards MQTT into a stream": devices publish MQTT to `mqttUrl`, a JetStream stream
 * captures the mapped subjects (`a/b/c` → `a.b.c`), the consumer reads the stream at `url`.
 *
 * Like test/helpers/mosquitto.ts it never outlives the test process (killed at exit; `setpriv --pdeathsig KILL`
 * on Linux), and `restart()` keeps the ports and the JetStream store, so durable consumers survive it.
 */

export interface NatsOptions {
  /** Also start the MQTT listener (default true). */
  mqtt?: boolean;
  /** How long to wait for the listeners. Default 10 s (JetStream start-up can take a moment). */
  startTimeoutMs?: number;
}

export interface NatsServer {
  /** `nats://127.0.0.1:port` */
  readonly url: string;
  readonly port: number;
  /** `mqtt://127.0.0.1:mqttPort` when the MQTT listener was asked for */
  readonly mqttUrl?: string;
  readonly mqttPort?: number;
  readonly pid: number;
  readonly storeDir: string;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  restart(): Promise<void>;
  output(): string;
}

const STOP_GRACE_MS = 5000;
const TAIL_LINES = 80;

type Ports = { port: number; mqttPort?: number };

function config(ports: Ports, storeDir: string): string {
  const lines = [
    '# written by test/helpers/nats.ts',
    `server_name: fleetload_test_${process.pid}_${ports.port}`,
    `listen: 127.0.0.1:${ports.port}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
  ];
  if (ports.mqttPort !== undefined) lines.push(`mqtt { listen: 127.0.0.1:${ports.mqttPort} }`);
  return `${lines.join('\n')}\n`;
}

export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const binary = requireService('nats-server');
  const dir = tmpDir('fleetload-nats-');
  const storeDir = join(dir, 'jetstream');
  const configPath = join(dir, 'nats.conf');
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  const tail = outputTail(TAIL_LINES);
  let service: ServiceProcess | undefined;

  const spawnOnce = async (ports: Ports): Promise<void> => {
    writeFileSync(configPath, config(ports, storeDir));
    service = await spawnService('nats-server', [binary, '-c', configPath], {
      tail,
      ready: async (abort) => {
        for (const port of [ports.port, ports.mqttPort]) {
          if (port !== undefined) await waitForPort(port, { timeoutMs: startTimeoutMs, abort });
        }
      },
    });
  };

  const fixed = await retry('could not start nats-server', async () => {
    const candidate = {
      port: await freePort(),
      ...(opts.mqtt === false ? {} : { mqttPort: await freePort() }),
    };
    await spawnOnce(candidate);
    return candidate;
  });

  const stop = async (): Promise<void> => service?.stop('SIGTERM', STOP_GRACE_MS);

  const restart = async (): Promise<void> => {
    await stop();
    await retry('could not restart nats-server', () => spawnOnce(fixed), { forMs: 5000, pauseMs: 200 });
  };

  return {
    url: `nats://127.0.0.1:${fixed.port}`,
    port: fixed.port,
    ...(fixed.mqttPort !== undefined
      ? { mqttPort: fixed.mqttPort, mqttUrl: `mqtt://127.0.0.1:${fixed.mqttPort}` }
      : {}),
    get pid(): number {
      return service?.pid ?? -1;
    },
    storeDir,
    stop,
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      service?.kill(signal);
    },
    restart,
    output: tail.text,
  };
}
