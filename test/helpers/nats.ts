import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, killQuietly, onExit, tmpDir, waitForExit } from './process.js';
import { findBinary, freePort, requireService, waitForPort } from './services.js';

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

function config(ports: { port: number; mqttPort?: number }, storeDir: string): string {
  const lines = [
    '# written by test/helpers/nats.ts',
    `server_name: fleetload_test_${process.pid}_${ports.port}`,
    `listen: 127.0.0.1:${ports.port}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
  ];
  if (ports.mqttPort !== undefined) lines.push(`mqtt { listen: 127.0.0.1:${ports.mqttPort} }`);
  return `${lines.join('\n')}\n`;
}

function command(binary: string, configPath: string): string[] {
  const run = [binary, '-c', configPath];
  const setpriv = process.platform === 'linux' ? findBinary('setpriv') : undefined;
  return setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ...run] : run;
}

export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const binary = requireService('nats-server');
  const dir = tmpDir('fleetload-nats-');
  const storeDir = join(dir, 'jetstream');
  const configPath = join(dir, 'nats.conf');
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  const tail: string[] = [];
  const output = (): string => tail.join('\n');
  let child: ChildProcess | undefined;
  let exitReason: string | undefined;
  let exited: Promise<void> = Promise.resolve();
  let unregister: () => void = () => {};

  const spawnOnce = async (ports: { port: number; mqttPort?: number }): Promise<void> => {
    writeFileSync(configPath, config(ports, storeDir));
    const [cmd, ...args] = command(binary, configPath);
    const proc = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exitReason = undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitReason = `nats-server exited (${signal ? `signal ${signal}` : `code ${code}`})`;
        unregister();
        resolve();
      });
    });
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    const pid = proc.pid as number;
    unregister = onExit(() => killQuietly(pid, 'SIGKILL'));
    const abort = (): string | undefined =>
      exitReason === undefined ? undefined : `${exitReason} before listening:\n${output()}`;
    try {
      for (const port of [ports.port, ports.mqttPort]) {
        if (port !== undefined) await waitForPort(port, { timeoutMs: startTimeoutMs, abort });
      }
    } catch (e) {
      killQuietly(pid, 'SIGKILL');
      await exited;
      throw e;
    }
  };

  let ports: { port: number; mqttPort?: number } | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && ports === undefined; attempt++) {
    const candidate = {
      port: await freePort(),
      ...(opts.mqtt === false ? {} : { mqttPort: await freePort() }),
    };
    try {
      await spawnOnce(candidate);
      ports = candidate;
    } catch (e) {
      lastError = e;
    }
  }
  if (ports === undefined) {
    throw new Error(`could not start nats-server: ${(lastError as Error | undefined)?.message ?? 'unknown'}`);
  }
  const fixed = ports;

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc?.pid || exitReason !== undefined) return;
    const pid = proc.pid;
    killQuietly(pid, 'SIGTERM');
    killQuietly(pid, 'SIGCONT');
    const timer = setTimeout(() => killQuietly(pid, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    await waitForExit(pid, 1000);
  };

  const restart = async (): Promise<void> => {
    await stop();
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await spawnOnce(fixed);
        return;
      } catch (e) {
        if (Date.now() >= deadline) throw new Error(`could not restart nats-server: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  return {
    url: `nats://127.0.0.1:${fixed.port}`,
    port: fixed.port,
    ...(fixed.mqttPort !== undefined
      ? { mqttPort: fixed.mqttPort, mqttUrl: `mqtt://127.0.0.1:${fixed.mqttPort}` }
      : {}),
    get pid(): number {
      return child?.pid ?? -1;
    },
    storeDir,
    stop,
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      const pid = child?.pid;
      if (pid !== undefined && isAlive(pid)) process.kill(pid, signal);
    },
    restart,
    output,
  };
}
