import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnCli, tmpDir, waitForCliExit } from '../helpers/cli.js';

/**
 * The terminal going away is not the run failing: `fleetload run … | head -1` closes stdout after one line. The
 * built CLI (embedded broker) must stop printing, finish the run, write its results folder and exit with the
 * run's own code — not an internal error (write EPIPE, exit 4, no folder).
 */

test('run | head -1: stdout closed early (EPIPE) → the run finishes, writes its results, exits with its code', async () => {
  const cwd = tmpDir('fleetload-epipe-');
  const child = spawnCli(['run', '--headless', '-t', '2s', '-u', '1', '--out', 'res'], { cwd });
  // what `head -1` does: read the first line, then close the pipe
  child.stdout?.once('data', () => child.stdout?.destroy());
  const r = await waitForCliExit(child, 40_000);
  assert.doesNotMatch(r.stderr, /internal error|EPIPE/, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const [runId] = readdirSync(join(cwd, 'res'));
  assert.ok(runId, 'a results folder');
  const dir = join(cwd, 'res', runId);
  for (const f of ['summary.json', 'report.html', 'intervals.jsonl']) {
    assert.ok(existsSync(join(dir, f)), `${f} written`);
  }
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { passed: boolean };
  assert.equal(summary.passed, true);
});
