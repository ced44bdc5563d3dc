import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tmpDir } from '../helpers/cli.js';

test('run --junit FILE: the verdict as JUnit XML next to the exit code (embedded broker)', async () => {
  const dir = tmpDir();
  const r = await runCli(
    [
      'run',
      '-u',
      '5',
      '-t',
      '3s',
      '--headless',
      '--threshold',
      'loss<1%',
      '--threshold',
      'e2e.max<0.0001',
    ].concat(['--junit', 'reports/fleetload.xml', '--out', join(dir, 'out')]),
    { cwd: dir, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const xml = readFileSync(join(dir, 'reports/fleetload.xml'), 'utf8');
  assert.match(xml, /tests="3" failures="1"/);
  assert.match(xml, /name="loss&lt;1%"\/>/);
  assert.match(xml, /name="e2e\.max&lt;0\.0001"><failure message="observed /);
});
