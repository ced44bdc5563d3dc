#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, isFleetloadError } from '../errors.js';
import { currentRun } from '../run/current.js';
import { runCli } from './commands.js';
import { withTlsHint } from './hints.js';

/**
 * The entry point: the only place that exits. Commands throw FleetloadError for user mistakes (one line, the
 * documented exit code, no stack). Anything else is a bug, wherever it is thrown — a command, a timer, a promise
 * nobody awaited: exit 4 with one line naming the results folder and a log file that holds the stack. Cleanup
 * (devices, sinks) has run in the commands' finally blocks when a command throws; the embedded broker exits by
 * itself when this process goes (it watches its IPC channel), so no child outlives a crash.
 */
function exit(code: number): void {
  settled = true;
  // let stdout/stderr drain (pipes are asynchronous), then leave even if a library kept a handle open
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

/** Writes the stack where a person will find it: the results folder of the run, else the temp folder. */
function crashLog(e: Error): string {
  const text = `fleetload internal error at ${new Date().toISOString()}\n${e.stack ?? e.message}\n`;
  const name = `fleetload-crash-${process.pid}.log`;
  for (const dir of [currentRun.resultsDir, tmpdir()]) {
    if (dir === undefined) continue;
    const path = join(dir, name);
    try {
      writeFileSync(path, text);
      return path;
    } catch {
      // try the next place
    }
  }
  return '(no log: neither the results folder nor the temp folder is writable)';
}

let crashed = false;
function internalError(err: unknown): void {
  if (crashed) return;
  crashed = true;
  settled = true;
  const e = err instanceof Error ? err : new Error(String(err));
  const log = crashLog(e);
  const where = currentRun.resultsDir ? `; results so far in ${currentRun.resultsDir}` : '';
  process.stderr.write(
    `fleetload: internal error (a bug, please report it with ${log}): ${e.message}${where}\n`,
  );
  // synchronous: a crash may leave the event loop in any state
  process.exit(ExitCode.internal);
}

/**
 * stdout or stderr closed under us (`fleetload run … | head -1`, a CI log collector gone): printing stops, the run
 * goes on, writes its results folder and exits with its own code. Without a listener the stream's EPIPE would be
 * an uncaught exception (exit 4, no results). A closed stream stays closed: later writes fail quietly.
 */
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

process.on('uncaughtException', internalError);
process.on('unhandledRejection', internalError);

// A command awaiting something that can never happen (no timer, no socket left) would let Node exit 0 with nothing
// written: treat that as the bug it is.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write(
    'fleetload: internal error (a bug, please report it): stopped waiting with work unfinished\n',
  );
  process.exit(ExitCode.internal);
});

runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
}).then(exit, (err: unknown) => {
  if (isFleetloadError(err) && err.code !== 'E_INTERNAL') {
    // a raw TLS error code gets a sentence naming the fix
    const text = err.code === 'E_UNREACHABLE' ? withTlsHint(err.message) : err.message;
    process.stderr.write(`fleetload: ${text}\n`);
    exit(err.exitCode);
  } else internalError(err);
});
