#!/usr/bin/env node
import { ExitCode, isFleetloadError } from '../errors.js';
import { runCli } from './commands.js';

/**
 * The entry point: the only place that exits. Commands throw FleetloadError for user mistakes (one line, the
 * documented exit code, no stack) and anything else is a bug (exit 4 with the stack). Cleanup (devices,
 * embedded broker, sinks) has run in the commands' finally blocks before we get here.
 */
function exit(code: number): void {
  settled = true;
  // let stdout/stderr drain (pipes are asynchronous), then leave even if a library kept a handle open
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

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
  if (isFleetloadError(err)) {
    process.stderr.write(`fleetload: ${err.message}\n`);
    exit(err.exitCode);
  } else {
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(
      `fleetload: internal error (a bug, please report it): ${e.message}\n${e.stack ?? ''}\n`,
    );
    exit(ExitCode.internal);
  }
});
