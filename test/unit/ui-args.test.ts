import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseUiArgs } from '../../src/cli/ui.js';
import { isFleetloadError } from '../../src/errors.js';
import { tmpDir } from '../helpers/process.js';

/** `fleetload ui` refuses at startup what would only fail at Start: a results folder it can never write. */

function problemsOf(argv: string[], env: Record<string, string> = {}, cwd = tmpDir()): string[] {
  try {
    parseUiArgs(argv, env, cwd);
  } catch (e) {
    assert.ok(isFleetloadError(e));
    assert.equal(e.code, 'E_USAGE');
    return [...e.problems];
  }
  return [];
}

describe('fleetload ui --out is checked at startup, as run checks it', () => {
  test('a pseudo file system, a file, from the flag or the environment: exit 2 with the culprit named', () => {
    assert.deepEqual(problemsOf(['--out', '/proc/nope']), [
      'out: cannot use /proc/nope: /proc is a system pseudo file system (nothing can be written there) (from --out)',
    ]);
    assert.deepEqual(problemsOf([], { FLEETLOAD_OUT: '/proc/nope' }), [
      'out: cannot use /proc/nope: /proc is a system pseudo file system (nothing can be written there) (from FLEETLOAD_OUT)',
    ]);
    const cwd = tmpDir();
    writeFileSync(join(cwd, 'afile'), 'x');
    assert.deepEqual(problemsOf(['--out', 'afile/results'], {}, cwd), [
      `out: cannot use afile/results: ${join(cwd, 'afile')} is not a directory (from --out)`,
    ]);
  });

  test('a folder that does not exist yet (it is made at the first run) or exists is fine', () => {
    const cwd = tmpDir();
    assert.deepEqual(problemsOf(['--out', 'new/results'], {}, cwd), []);
    const s = parseUiArgs(['--out', '.', '--web-port', '0'], {}, cwd);
    assert.equal(s?.out, '.');
  });
});
