import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { isAlive, waitForExit } from '../helpers/process.js';

/**
 * A bug anywhere — here an exception thrown in a timer, or a rejection nobody handles — ends fleetload with exit 4
 * and one line naming the log file with the stack and the results folder, and leaves no process behind (the
 * embedded broker watches its parent).
 */

const fixture = fileURLToPath(new URL('../fixtures/crash-later.mjs', import.meta.url));

describe('an internal error during a run', () => {
  for (const kind of ['exception', 'rejection'] as const) {
    test(`an ${kind} in a timer: exit 4, one line naming the crash log, no child left`, async () => {
      const out = tmpDir();
      const child = spawnCli(
        ['run', '--headless', '-t', '30s', '-u', '5', '--out', out, '--run-id', 'crash-1'],
        {
          nodeArgs: ['--import', fixture],
          env: { FLEETLOAD_TEST_CRASH_AFTER_MS: '2000', FLEETLOAD_TEST_CRASH_KIND: kind },
        },
      );
      const line = await waitForOutput(child, /pid (\d+)/, { stream: 'stdout', timeoutMs: 15_000 });
      const brokerPid = Number(/pid (\d+)/.exec(line)?.[1]);
      assert.ok(isAlive(brokerPid), 'the embedded broker runs');
      const r = await waitForCliExit(child, 20_000);
      assert.equal(r.code, 4, r.stderr);
      const lines = r.stderr.trim().split('\n');
      const last = lines.at(-1) ?? '';
      assert.match(
        last,
        /^fleetload: internal error \(a bug, please report it with .*fleetload-crash-\d+\.log\): boom: a bug in a timer/,
      );
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack on the terminal: it is in the log');
      const dir = join(out, 'crash-1');
      assert.match(last, new RegExp(`results so far in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
      const log = /with (\S+fleetload-crash-\d+\.log)\)/.exec(last)?.[1] ?? '';
      assert.ok(existsSync(log), `the log ${log} exists`);
      assert.ok(log.startsWith(dir), 'the log is in the results folder');
      assert.match(readFileSync(log, 'utf8'), /Error: boom: a bug in a timer[\s\S]*crash-later\.mjs/);
      assert.ok(readdirSync(dir).includes('timeseries.csv'), 'the rows so far are kept');
      assert.ok(await waitForExit(brokerPid, 5000), 'the embedded broker exited with its parent');
    });
  }
});
