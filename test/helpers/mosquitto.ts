import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, killQuietly, onExit, tmpDir, waitForExit } from './process.js';
import { findBinary, freePort, requireService, waitForPort } from './services.js';

/**
 * A real Mosquitto (2.x) per test, on free loopback ports, configured for load: unlimited in-flight and a deep
 * queue, no persistence, TCP_NODELAY. Speaks MQTT 3.1.1 and 5 (unlike the embedded broker).
 *
 * It never outlives the test process: killed at exit, and on Linux started under `setpriv --pdeathsig KILL`, so
 * the kernel kills it even when the test process is SIGKILLed.
 */

export interface MosquittoTls {
  /** PEM files. */
  certfile: string;
  keyfile: string;
  /** CA that signs client certificates; needed with requireCertificate. */
  cafile?: string;
  /** Mutual TLS: refuse clients without a certificate signed by `cafile`. */
  requireCertificate?: boolean;
}

export interface MosquittoOptions {
  /** Also listen for MQTT over WebSockets (`ws://127.0.0.1:wsPort`). */
  websockets?: boolean;
  /** Also listen for MQTT over TLS (`mqtts://127.0.0.1:tlsPort`). */
  tls?: MosquittoTls;
  /** Appended verbatim to the generated mosquitto.conf (after the listeners, so per-listener options apply to the
   * last one; global options work anywhere). */
  extraConfig?: string;
  /** How long to wait for the listeners to accept connections. Default 5 s. */
  startTimeoutMs?: number;
}

export interface Mosquitto {
  /** `mqtt://127.0.0.1:port`. */
  readonly url: string;
  readonly port: number;
  readonly wsPort?: number;
  /** `ws://127.0.0.1:wsPort` when websockets were asked for. */
  readonly wsUrl?: string;
  readonly tlsPort?: number;
  /** `mqtts://127.0.0.1:tlsPort` when TLS was asked for. */
  readonly tlsUrl?: string;
  /** The current process; a restart() changes it. */
  readonly pid: number;
  /** The config file in use (for a test that wants to read it). */
  readonly configPath: string;
  /** SIGTERM (SIGKILL after 5 s) and wait until the process is gone. Idempotent. */
  stop(): Promise<void>;
  /** Sends a signal to the broker process: SIGKILL to crash it, SIGSTOP/SIGCONT to freeze and thaw it. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops it if it runs (frozen or not), then starts it again on the same ports. */
  restart(): Promise<void>;
  /** The last lines the broker wrote (errors and warnings), for assertion messages. */
  output(): string;
}

const STOP_GRACE_MS = 5000;
const TAIL_LINES = 50;

function config(ports: { port: number; wsPort?: number; tlsPort?: number }, opts: MosquittoOptions): string {
  const lines = [
    '# written by test/helpers/mosquitto.ts',
    'per_listener_settings false',
    'allow_anonymous true',
    'persistence false',
    // Per-client queue above the in-flight window: deep enough that a load test measures the system, not this
    // setting (default 1000).
    'max_queued_messages 1000000',
    // Outgoing QoS 1/2 messages in flight per client: 0 = no maximum (default 20). v5 clients still get at most
    // their own Receive Maximum.
    'max_inflight_messages 0',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_timestamp false',
  ];
  // As root, mosquitto drops to user "mosquitto"; that would also clear the parent-death signal set by setpriv.
  if (process.getuid?.() === 0) lines.push('user root');
  lines.push(`listener ${ports.port} 127.0.0.1`, 'protocol mqtt');
  if (ports.wsPort !== undefined) lines.push(`listener ${ports.wsPort} 127.0.0.1`, 'protocol websockets');
  if (ports.tlsPort !== undefined && opts.tls) {
    const tls = opts.tls;
    lines.push(`listener ${ports.tlsPort} 127.0.0.1`, 'protocol mqtt');
    lines.push(`certfile ${tls.certfile}`, `keyfile ${tls.keyfile}`);
    if (tls.cafile !== undefined) lines.push(`cafile ${tls.cafile}`);
    lines.push(`require_certificate ${tls.requireCertificate ? 'true' : 'false'}`);
  }
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return `${lines.join('\n')}\n`;
}

/** `[command, ...args]` that runs mosquitto with as many file descriptors as allowed and a parent-death signal. */
function command(binary: string, configPath: string): string[] {
  const run = [binary, '-c', configPath];
  const setpriv = process.platform === 'linux' ? findBinary('setpriv') : undefined;
  const guarded = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ...run] : run;
  // `exec` keeps one PID: the sh becomes setpriv becomes mosquitto.
  return ['/bin/sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$@"', 'sh', ...guarded];
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const binary = requireService('mosquitto');
  const dir = tmpDir('fleetload-mosquitto-');
  const configPath = join(dir, 'mosquitto.conf');
  const startTimeoutMs = opts.startTimeoutMs ?? 5000;
  const tail: string[] = [];
  const output = (): string => tail.join('\n');

  let child: ChildProcess | undefined;
  let exitReason: string | undefined;
  let exited: Promise<void> = Promise.resolve();
  let unregister: () => void = () => {};

  const spawnOnce = async (ports: { port: number; wsPort?: number; tlsPort?: number }): Promise<void> => {
    writeFileSync(configPath, config(ports, opts));
    const [cmd, ...args] = command(binary, configPath);
    const proc = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exitReason = undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitReason = `mosquitto exited (${signal ? `signal ${signal}` : `code ${code}`})`;
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
    const pid = proc.pid!;
    unregister = onExit(() => killQuietly(pid, 'SIGKILL'));
    const abort = (): string | undefined =>
      exitReason === undefined ? undefined : `${exitReason} before listening:\n${output()}`;
    try {
      for (const port of [ports.port, ports.wsPort, ports.tlsPort]) {
        if (port !== undefined) await waitForPort(port, { timeoutMs: startTimeoutMs, abort });
      }
    } catch (e) {
      killQuietly(pid, 'SIGKILL');
      await exited;
      throw e;
    }
  };

  // A free port can be taken between freePort() and mosquitto's bind: retry with new ports.
  let ports: { port: number; wsPort?: number; tlsPort?: number } | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && ports === undefined; attempt++) {
    const candidate = {
      port: await freePort(),
      wsPort: opts.websockets ? await freePort() : undefined,
      tlsPort: opts.tls ? await freePort() : undefined,
    };
    try {
      await spawnOnce(candidate);
      ports = candidate;
    } catch (e) {
      lastError = e;
    }
  }
  if (ports === undefined) {
    throw new Error(
      `could not start mosquitto: ${(lastError as Error | undefined)?.message ?? 'unknown error'}`,
    );
  }
  const fixedPorts = ports;

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc?.pid || exitReason !== undefined) return;
    const pid = proc.pid;
    killQuietly(pid, 'SIGTERM');
    killQuietly(pid, 'SIGCONT'); // a frozen broker must run to see the SIGTERM
    const timer = setTimeout(() => killQuietly(pid, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    // 'exit' means reaped by us; isAlive() double-checks for the test that asserts it.
    await waitForExit(pid, 1000);
  };

  const restart = async (): Promise<void> => {
    await stop();
    // The old listening socket is gone; if the port is briefly unavailable, try again for a few seconds.
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await spawnOnce(fixedPorts);
        return;
      } catch (e) {
        if (Date.now() >= deadline) throw new Error(`could not restart mosquitto: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  const broker: Mosquitto = {
    url: `mqtt://127.0.0.1:${fixedPorts.port}`,
    port: fixedPorts.port,
    ...(fixedPorts.wsPort !== undefined
      ? { wsPort: fixedPorts.wsPort, wsUrl: `ws://127.0.0.1:${fixedPorts.wsPort}` }
      : {}),
    ...(fixedPorts.tlsPort !== undefined
      ? { tlsPort: fixedPorts.tlsPort, tlsUrl: `mqtts://127.0.0.1:${fixedPorts.tlsPort}` }
      : {}),
    get pid(): number {
      return child?.pid ?? -1;
    },
    configPath,
    stop,
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      const pid = child?.pid;
      if (pid !== undefined && isAlive(pid)) process.kill(pid, signal);
    },
    restart,
    output,
  };
  return broker;
}
