import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './services.js';

/**
 * Process bookkeeping for tests: things to undo when the test process exits (children to kill, folders to
 * remove), and a liveness check that is not fooled by zombies.
 */

const atExit = new Set<() => void>();
let hooked = false;

/**
 * Runs `fn` (synchronously) when this process exits, however it exits normally — end of file, process.exit(),
 * the test runner's forced exit. Returns a function that unregisters it. (A SIGKILLed test process runs nothing:
 * children that must not outlive it need their own guard, see spawnService's `pdeathsig`.)
 */
export function onExit(fn: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const f of atExit) {
        try {
          f();
        } catch {
          // Best effort: one failed cleanup must not prevent the others.
        }
      }
    });
  }
  atExit.add(fn);
  return () => atExit.delete(fn);
}

/**
 * Whether `pid` is a running process. `process.kill(pid, 0)` succeeds on a zombie (exited, not yet reaped — which
 * is what an orphan becomes in a container whose PID 1 does not reap), so on Linux the state in /proc decides.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …" — comm may contain spaces and parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // No /proc (not Linux) — trust kill(0) — or the process vanished between the two calls.
    return process.platform !== 'linux';
  }
}

/** Polls until `pid` is gone; false if it is still alive after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Sends a signal if the process still exists; never throws. */
export function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** A fresh empty directory under the OS temp dir, removed when the test process exits. */
export function tmpDir(prefix = 'fleetload-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Pids of the live (non-zombie) children of `pid`, from /proc; [] where there is no /proc. */
export function childrenOf(pid: number = process.pid): number[] {
  if (process.platform !== 'linux') return [];
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After "pid (comm) ": state, ppid, …
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z' && state !== 'X') found.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

/** The command line of `pid` (arguments joined by spaces), or '' when unknown. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The last lines a process wrote (stdout and stderr interleaved), kept across restarts when shared. */
export interface OutputTail {
  /** Appends a chunk of output, dropping the oldest lines beyond the limit. */
  add(chunk: Buffer): void;
  text(): string;
}

export function outputTail(maxLines = 50): OutputTail {
  const lines: string[] = [];
  return {
    add(chunk) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        lines.push(line);
        if (lines.length > maxLines) lines.shift();
      }
    },
    text: () => lines.join('\n'),
  };
}

export interface SpawnServiceOptions {
  /**
   * On Linux, run under `setpriv --pdeathsig KILL` so the kernel kills the service even when the test process is
   * SIGKILLed (and so runs no exit hook). Default true.
   */
  pdeathsig?: boolean;
  /** Raise the soft limit on open files to the hard limit first (through `/bin/sh`, `exec`ed: one PID). */
  maxOpenFiles?: boolean;
  /** Where the output goes; pass the same tail to every (re)start of one service. Default: a new 50-line tail. */
  tail?: OutputTail;
  /**
   * Resolves once the service serves, e.g. waitForPort / waitForHttp. `abort()` says why once the process has
   * exited, for them to stop waiting early. On a rejection the process is SIGKILLed and reaped, and spawnService
   * rejects with that error and the output.
   */
  ready?: (abort: () => string | undefined) => Promise<void>;
}

/** A spawned service process, running and ready. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (and been reaped). */
  readonly exited: Promise<void>;
  /** `<name> exited (code N | signal S)` once it has exited, else undefined. */
  exitReason(): string | undefined;
  /** The last lines of its output. */
  output(): string;
  /** Sends `signal` (default SIGKILL) while the process is alive: SIGKILL to crash it, SIGSTOP/SIGCONT. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * `signal` (default SIGTERM) and SIGCONT (a frozen process must run to see it), SIGKILL after `graceMs`; resolves
   * once the process is gone. Idempotent.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/**
 * Starts a service for a test: `argv` with piped output (last lines kept), killed when the test process exits,
 * resolved once `opts.ready` says it serves. Rejects if it cannot be spawned or does not become ready.
 */
export async function spawnService(
  name: string,
  argv: readonly string[],
  opts: SpawnServiceOptions = {},
): Promise<ServiceProcess> {
  const setpriv =
    opts.pdeathsig !== false && process.platform === 'linux' ? findBinary('setpriv') : undefined;
  const guarded = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ...argv] : [...argv];
  const [cmd, ...args] = opts.maxOpenFiles
    ? ['/bin/sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$@"', 'sh', ...guarded]
    : guarded;
  const tail = opts.tail ?? outputTail();
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let reason: string | undefined;
  let unregister: () => void = () => {};
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      reason = `${name} exited (${signal ? `signal ${signal}` : `code ${code}`})`;
      unregister();
      resolve();
    });
  });
  child.stdout?.on('data', tail.add);
  child.stderr?.on('data', tail.add);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid!;
  unregister = onExit(() => killQuietly(pid, 'SIGKILL'));
  const service: ServiceProcess = {
    child,
    pid,
    exited,
    exitReason: () => reason,
    output: tail.text,
    kill(signal = 'SIGKILL') {
      if (isAlive(pid)) process.kill(pid, signal);
    },
    async stop(signal = 'SIGTERM', graceMs = 5000) {
      if (reason !== undefined) return;
      killQuietly(pid, signal);
      killQuietly(pid, 'SIGCONT');
      const timer = setTimeout(() => killQuietly(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // 'exit' means reaped by us; isAlive() double-checks for the test that asserts it.
      await waitForExit(pid, 1000);
    },
  };
  if (opts.ready) {
    try {
      await opts.ready(() => (reason === undefined ? undefined : `${reason} before it was ready`));
    } catch (e) {
      killQuietly(pid, 'SIGKILL');
      await exited;
      throw new Error(`${(e as Error).message}:\n${tail.text()}`);
    }
  }
  return service;
}

/**
 * Runs `attempt` until it resolves: at most `attempts` times (default 3), or for as long as `forMs` allows, with
 * `pauseMs` between tries. Then rejects with `${failure}: ${last error}`. For starters whose free port can be taken
 * before the service binds it, and restarts whose port is briefly unavailable.
 */
export async function retry<T>(
  failure: string,
  attempt: () => Promise<T>,
  opts: { attempts?: number; forMs?: number; pauseMs?: number } = {},
): Promise<T> {
  const deadline = opts.forMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.forMs;
  const attempts = opts.attempts ?? (opts.forMs === undefined ? 3 : Number.POSITIVE_INFINITY);
  let lastError: unknown;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      lastError = e;
    }
    if (n >= attempts || Date.now() >= deadline) break;
    if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
  }
  throw new Error(`${failure}: ${(lastError as Error | undefined)?.message ?? 'unknown error'}`);
}
