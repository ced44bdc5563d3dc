import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killQuietly, onExit, tmpDir } from './process.js';

export { tmpDir } from './process.js';

/**
 * The CLI as a user runs it: `node dist/cli/main.js …` in its own process (npm test builds dist/ first). The
 * environment is the test's minus every inherited FLEETLOAD_* variable (a developer's FLEETLOAD_HOST must not
 * steer a test), with NO_COLOR=1 and FLEETLOAD_ACCEPT=saturated (below), then `opts.env` (a value of undefined
 * removes a variable). The working
 * directory defaults to a fresh temp dir, so default outputs (./fleetload-results) never land in the repo.
 */

export const repoRoot: string = fileURLToPath(new URL('../../', import.meta.url));
export const cliPath: string = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** runCli: kill the CLI and reject after this long. Default 60 s. */
  timeoutMs?: number;
  /** Written to the CLI's stdin, which is then closed. Default: stdin closed at once. */
  input?: string;
  /** options for node itself, before the CLI's path (e.g. `--import` a test fixture) */
  nodeArgs?: readonly string[];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const outputs = new WeakMap<ChildProcess, { stdout: string; stderr: string }>();

function cliEnv(extra: CliOptions['env']): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('FLEETLOAD_')) env[key] = value;
  }
  env.NO_COLOR = '1';
  delete env.FORCE_COLOR;
  // A saturated generator makes a run invalid (exit 5). Whether this shared machine keeps a test run's schedule is
  // about its load, not about what the test checks (counts, exit codes): tests accept that check unless they set
  // FLEETLOAD_ACCEPT themselves. The saturation verdict is tested on its own (test/unit/verdict.test.ts).
  env.FLEETLOAD_ACCEPT = 'saturated';
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Starts the CLI and returns its process; output is collected (see cliOutput, waitForOutput, waitForCliExit). */
export function spawnCli(args: readonly string[], opts: CliOptions = {}): ChildProcess {
  if (!existsSync(cliPath)) {
    throw new Error(`${cliPath} not found: run \`npm run build\` first (npm test does)`);
  }
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), cliPath, ...args], {
    cwd: opts.cwd ?? tmpDir('fleetload-cli-'),
    env: cliEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  outputs.set(child, out);
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out.stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    out.stderr += s;
  });
  child.stdin?.on('error', () => {}); // EPIPE when the CLI exits without reading stdin
  child.stdin?.end(opts.input);
  const pid = child.pid;
  if (pid !== undefined) {
    const unregister = onExit(() => killQuietly(pid, 'SIGKILL'));
    child.once('exit', unregister);
  }
  return child;
}

/** What a spawned CLI has written so far. */
export function cliOutput(child: ChildProcess): { stdout: string; stderr: string } {
  const out = outputs.get(child);
  if (!out) throw new Error('cliOutput: not a process from spawnCli()');
  return { ...out };
}

function describe(child: ChildProcess): string {
  const { stdout, stderr } = cliOutput(child);
  return `\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
}

/** Resolves when the CLI's stdout (or stderr) matches; rejects if it exits first or after `timeoutMs`. */
export function waitForOutput(
  child: ChildProcess,
  pattern: RegExp | string,
  opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {},
): Promise<string> {
  const stream = opts.stream ?? 'stdout';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const matches = (): string | undefined => {
    const text = cliOutput(child)[stream];
    if (typeof pattern === 'string') return text.includes(pattern) ? pattern : undefined;
    return pattern.exec(text)?.[0];
  };
  return new Promise((resolve, reject) => {
    const source = stream === 'stdout' ? child.stdout : child.stderr;
    const cleanup = (): void => {
      clearTimeout(timer);
      source?.off('data', onData);
      child.off('exit', onExit);
    };
    const onData = (): void => {
      // Our own collector was attached first, so the text is already appended.
      const m = matches();
      if (m !== undefined) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (): void => {
      cleanup();
      const m = matches();
      if (m !== undefined) resolve(m);
      else reject(new Error(`the CLI exited before ${stream} matched ${String(pattern)}${describe(child)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(`${stream} did not match ${String(pattern)} within ${timeoutMs} ms${describe(child)}`),
      );
    }, timeoutMs);
    source?.on('data', onData);
    child.once('exit', onExit);
    onData();
    if (child.exitCode !== null || child.signalCode !== null) onExit();
  });
}

/** Waits for a spawned CLI to exit (output complete); SIGKILLs it and rejects after `timeoutMs`. */
export function waitForCliExit(child: ChildProcess, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI did not exit within ${timeoutMs} ms (killed)${describe(child)}`));
    }, timeoutMs);
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ code, signal, ...cliOutput(child) });
    };
    // 'close' comes after 'exit' once stdout and stderr are drained.
    if (child.exitCode !== null || child.signalCode !== null) {
      if (child.stdout?.readableEnded !== false && child.stderr?.readableEnded !== false) {
        done(child.exitCode, child.signalCode);
        return;
      }
    }
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => done(code, signal));
  });
}

/** Runs the CLI to completion: `{ code, signal, stdout, stderr }`. Rejects (after killing it) on timeout. */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts);
  return waitForCliExit(child, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}
