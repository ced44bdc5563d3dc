import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { outputTail, retry, type ServiceProcess, spawnService, tmpDir } from './process.js';
import { freePort, requireService, waitForPort } from './services.js';

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
  /** As root, let Mosquitto drop to user `mosquitto` as a packaged one does (default: stays root, which keeps the
   * parent-death signal). Its files must then be readable by that user. */
  dropPrivileges?: boolean;
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
  /** A broker outage: SIGKILL (no goodbye to anyone), down for `downMs`, then started again on the same ports. */
  outage(downMs: number): Promise<void>;
  /** The last lines the broker wrote (errors and warnings), for assertion messages. */
  output(): string;
}

/**
 * The flags of a run that rides out a broker outage: QoS 1, messages due while offline buffered and sent on
 * reconnect, reconnects within 100–500 ms, and a grace for the backlog to arrive.
 */
export const RIDE_OUT_OUTAGE = [
  '--qos',
  '1',
  '--offline',
  'buffer',
  '--reconnect-min',
  '100ms',
  '--reconnect-max',
  '500ms',
  '--grace',
  '3s',
];

const STOP_GRACE_MS = 5000;
const TAIL_LINES = 50;

type Ports = { port: number; wsPort?: number; tlsPort?: number };

function config(ports: Ports, opts: MosquittoOptions): string {
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
  if (process.getuid?.() === 0 && !opts.dropPrivileges) lines.push('user root');
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

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const binary = requireService('mosquitto');
  const dir = tmpDir('fleetload-mosquitto-');
  const configPath = join(dir, 'mosquitto.conf');
  const startTimeoutMs = opts.startTimeoutMs ?? 5000;
  const tail = outputTail(TAIL_LINES);
  let service: ServiceProcess | undefined;

  const spawnOnce = async (ports: Ports): Promise<void> => {
    writeFileSync(configPath, config(ports, opts));
    // As many file descriptors as allowed, and a parent-death signal.
    service = await spawnService('mosquitto', [binary, '-c', configPath], {
      maxOpenFiles: true,
      tail,
      ready: async (abort) => {
        for (const port of [ports.port, ports.wsPort, ports.tlsPort]) {
          if (port !== undefined) await waitForPort(port, { timeoutMs: startTimeoutMs, abort });
        }
      },
    });
  };

  // A free port can be taken between freePort() and mosquitto's bind: retry with new ports.
  const ports = await retry('could not start mosquitto', async () => {
    const candidate = {
      port: await freePort(),
      wsPort: opts.websockets ? await freePort() : undefined,
      tlsPort: opts.tls ? await freePort() : undefined,
    };
    await spawnOnce(candidate);
    return candidate;
  });

  const stop = async (): Promise<void> => service?.stop('SIGTERM', STOP_GRACE_MS);

  const restart = async (): Promise<void> => {
    await stop();
    // The old listening socket is gone; if the port is briefly unavailable, try again for a few seconds.
    await retry('could not restart mosquitto', () => spawnOnce(ports), { forMs: 5000, pauseMs: 200 });
  };

  const broker: Mosquitto = {
    url: `mqtt://127.0.0.1:${ports.port}`,
    port: ports.port,
    ...(ports.wsPort !== undefined ? { wsPort: ports.wsPort, wsUrl: `ws://127.0.0.1:${ports.wsPort}` } : {}),
    ...(ports.tlsPort !== undefined
      ? { tlsPort: ports.tlsPort, tlsUrl: `mqtts://127.0.0.1:${ports.tlsPort}` }
      : {}),
    get pid(): number {
      return service?.pid ?? -1;
    },
    configPath,
    stop,
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      service?.kill(signal);
    },
    restart,
    async outage(downMs: number): Promise<void> {
      service?.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, downMs));
      await restart();
    },
    output: tail.text,
  };
  return broker;
}
