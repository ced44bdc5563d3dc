import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Process bookkeeping for tests: things to undo when the test process exits (children to kill, folders to
 * remove), and a liveness check that is not fooled by zombies.
 */

const atExit = new Set<() => void>();
let hooked = false;

/**
 * Runs `fn` (synchronously) when this process exits, however it exits normally — end of file, process.exit(),
 * the test runner's forced exit. Returns a function that unregisters it. (A SIGKILLed test process runs nothing:
 * children that must not outlive it need their own guard, see mosquitto.ts.)
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
