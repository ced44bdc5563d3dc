import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type BrokerChildOptions, type BrokerParentMessage, isBrokerChildMessage } from './messages.js';

/**
 * An MQTT broker for runs without `--host`: Aedes in a child process of its own, on a loopback port.
 *
 * MQTT 3.1.1 only — Aedes refuses a v5 CONNECT (see child.ts).
 */
export interface EmbeddedBroker {
  /** `mqtt://host:port`. */
  readonly url: string;
  readonly port: number;
  /** The broker process. */
  readonly pid: number;
  /** Settles when the broker process has exited, for whatever reason (stop(), crash, kill). Never rejects. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Asks the broker to close, waits ≤ 2 s, then SIGKILLs it. Resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Receives the broker process' own output (stdout and stderr), one line at a time. */
  log?: (line: string) => void;
  /** Give up (and kill the child) if it is not listening after this long. Default 10 s. */
  startTimeoutMs?: number;
}

const STOP_GRACE_MS = 2000;
const DEFAULT_START_TIMEOUT_MS = 10_000;
/** Lines of the child's output kept to explain a failed start. */
const TAIL_LINES = 20;

/**
 * The child module: `child.js` next to this file when running compiled (dist/), else `child.ts` through tsx (tests
 * and `tsx src/…` run the sources). Flags are set explicitly: the parent's own execArgv (a test runner's, an
 * inspector's) must not leak into the broker.
 */
function childEntry(): { modulePath: string; execArgv: string[] } {
  const js = new URL('./child.js', import.meta.url);
  if (existsSync(js)) return { modulePath: fileURLToPath(js), execArgv: [] };
  const ts = new URL('./child.ts', import.meta.url);
  if (existsSync(ts)) {
    let tsx = 'tsx';
    try {
      // Resolved from here, not from the child's cwd, so the child finds tsx whatever directory it starts in.
      tsx = import.meta.resolve('tsx');
    } catch {
      // Keep the bare specifier; the child reports a clear error if it cannot be found either.
    }
    return { modulePath: fileURLToPath(ts), execArgv: ['--import', tsx] };
  }
  throw new Error(
    `embedded broker: neither ${fileURLToPath(js)} nor child.ts exists (is the build complete?)`,
  );
}

function formatUrl(host: string, port: number): string {
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function followLines(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine);
}

/** After start-up the broker must not keep the parent alive: when the parent is done, the child follows it. */
function unrefAll(child: ChildProcess): void {
  child.unref();
  child.channel?.unref();
  (child.stdout as Socket | null)?.unref?.();
  (child.stderr as Socket | null)?.unref?.();
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const childOpts: BrokerChildOptions = { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 };
  const { modulePath, execArgv } = childEntry();
  const tail: string[] = [];
  const onLine = (line: string): void => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    opts.log?.(line);
  };

  const child = fork(modulePath, [JSON.stringify(childOpts)], {
    execArgv,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  followLines(child.stdout, onLine);
  followLines(child.stderr, onLine);

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  const explain = (): string => (tail.length > 0 ? `\n${tail.join('\n')}` : '');

  const port = await new Promise<number>((resolve, reject) => {
    const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const timer = setTimeout(
      () => fail(new Error(`embedded broker did not start within ${startTimeoutMs} ms${explain()}`)),
      startTimeoutMs,
    );
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    let failed = false;
    // Rejects only once the child is gone: a failed start leaves no process behind.
    const fail = (e: Error): void => {
      if (failed) return;
      failed = true;
      cleanup();
      if (child.pid === undefined || exitInfo) {
        reject(e);
        return;
      }
      child.kill('SIGKILL');
      void exited.then(() => reject(e));
    };
    const onMessage = (m: unknown): void => {
      if (!isBrokerChildMessage(m)) return;
      if (m.type === 'ready') {
        cleanup();
        resolve(m.port);
      } else {
        fail(new Error(`embedded broker failed to start: ${m.message}`));
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      // Let the last lines of stderr arrive before explaining.
      setImmediate(() =>
        fail(
          new Error(
            `embedded broker exited before it was ready (${signal ? `signal ${signal}` : `exit code ${code}`})${explain()}`,
          ),
        ),
      );
    };
    const onError = (e: Error): void =>
      fail(new Error(`cannot start the embedded broker: ${e.message}`, { cause: e }));
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });

  // From here on a failed send (the child just died) is not an error of ours: `exited` tells the story.
  child.on('error', (e) => opts.log?.(`embedded broker: ${e.message}`));
  unrefAll(child);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo) return;
      child.ref();
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      if (child.connected) {
        const msg: BrokerParentMessage = { type: 'stop' };
        child.send(msg, (e) => {
          if (e) child.kill('SIGKILL');
        });
      } else {
        child.kill('SIGTERM');
      }
      await exited;
      clearTimeout(kill);
    })();
    return stopping;
  };

  if (child.pid === undefined) {
    throw new Error('embedded broker: no pid after a successful start (impossible)');
  }
  return { url: formatUrl(childOpts.host, port), port, pid: child.pid, exited, stop };
}
