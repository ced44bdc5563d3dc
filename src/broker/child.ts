/**
 * The embedded broker's own process, forked by startEmbeddedBroker() (embedded.ts): Aedes on a plain TCP listener.
 * A process of its own so the broker's event loop never competes with the load generator's, and so a broker that
 * misbehaves cannot take the run down with it.
 *
 * Aedes speaks MQTT 3.1.1 (and 3.1) only: a v5 CONNECT is answered with CONNACK "unacceptable protocol version"
 * and the connection closed. `--mqtt-version 5` therefore needs an external broker (e.g. Mosquitto).
 *
 * Lifetime: the child never outlives its parent. When the IPC channel goes away — the parent stopped, crashed, or
 * was SIGKILLed — 'disconnect' fires and the child closes and exits. SIGINT is ignored: on Ctrl-C the terminal
 * signals the whole process group, and the parent must be able to disconnect its devices cleanly before the
 * broker goes; it stops the child itself (or dies, which ends the child via 'disconnect').
 *
 * This file is an entry point: it is the one place in src/broker that exits.
 */
import net, { type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { type BrokerChildMessage, type BrokerChildOptions, isBrokerParentMessage } from './messages.js';

/** Exits this long after a close request even if a client socket refuses to go away. */
const FORCE_EXIT_MS = 1500;

function send(msg: BrokerChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) {
      resolve();
      return;
    }
    process.send(msg, undefined, {}, () => resolve());
  });
}

function parseOptions(arg: string | undefined): BrokerChildOptions {
  const fallback: BrokerChildOptions = { host: '127.0.0.1', port: 0 };
  if (arg === undefined) return fallback;
  const raw = JSON.parse(arg) as Partial<Record<keyof BrokerChildOptions, unknown>>;
  const host = raw.host ?? fallback.host;
  const port = raw.port ?? fallback.port;
  if (typeof host !== 'string' || host === '') throw new Error(`invalid host ${JSON.stringify(host)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port ${JSON.stringify(port)}: must be an integer in 0..65535`);
  }
  return { host, port };
}

let shutdown: ((code: number) => void) | undefined;
let exiting = false;

/** Close and exit; before the listener exists there is nothing to close, so exit at once. */
function exitSoon(code: number): void {
  if (exiting) return;
  exiting = true;
  if (shutdown) {
    shutdown(code);
  } else {
    process.exit(code);
  }
}

async function fail(message: string): Promise<never> {
  process.stderr.write(`fleetload broker: ${message}\n`);
  await send({ type: 'error', message });
  process.exit(1);
}

// Installed before anything async, so a parent that dies during start-up is never missed.
process.on('disconnect', () => exitSoon(0));
process.on('SIGINT', () => {});
process.on('SIGTERM', () => exitSoon(0));
process.on('message', (m: unknown) => {
  if (isBrokerParentMessage(m)) exitSoon(0);
});
process.on('uncaughtException', (err) => {
  void fail(`uncaught exception: ${err.stack ?? err.message}`);
});

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write(
      'fleetload broker: start this module with startEmbeddedBroker() (it needs an IPC channel)\n',
    );
    process.exit(2);
  }
  if (!process.connected) process.exit(0);

  let opts: BrokerChildOptions;
  try {
    opts = parseOptions(process.argv[2]);
  } catch (e) {
    return fail(`bad options: ${(e as Error).message}`);
  }

  // Tuned for load: many concurrent deliveries in flight (default 100), default heartbeat, and no per-message
  // logging or listeners — every handler on the hot path costs the whole fleet.
  const aedes = await Aedes.createBroker({ concurrency: 1000 });
  const server = net.createServer({ noDelay: true }, aedes.handle);

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    return fail(`cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}`);
  }
  server.on('error', (e) => {
    process.stderr.write(`fleetload broker: server error: ${e.message}\n`);
  });

  shutdown = (code) => {
    setTimeout(() => process.exit(code), FORCE_EXIT_MS).unref();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const aedesClosed = new Promise<void>((resolve) => aedes.close(() => resolve()));
    void Promise.all([serverClosed, aedesClosed]).then(() => process.exit(code));
  };
  const { port } = server.address() as AddressInfo;
  await send({ type: 'ready', port });
}

main().catch((e: unknown) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
