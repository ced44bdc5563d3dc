import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot, tmpDir } from '../helpers/cli.js';

/**
 * `npm pack` makes a package that works outside the clone (where `npx fleetload` would ask the registry for a
 * package of that name): the bin entry, the built CLI with its shebang, nothing it needs left out. Installing
 * the tarball for real needs its dependencies; offline that works only when npm's cache holds them. When it does
 * not, the unpacked package is run against the clone's node_modules instead, which proves the same thing about
 * the tarball's own files (what the registry would add are the dependencies, identical either way).
 */

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm pack: a package whose fleetload --version and a short run work after install', async (t) => {
  const dest = tmpDir('fleetload-pack-');
  // dist/ is built before the e2e tests; --ignore-scripts skips the prepare script's second build
  const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
  });
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  assert.ok(info);
  const files = info.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'dist/cli/main.js', 'dist/broker/child.js']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  assert.deepEqual(
    files.filter((f) => /^(src|test|bench|node_modules)\//.test(f)),
    [],
    'sources and tests stay out',
  );
  const tgz = join(dest, info.filename);
  const unpacked = tmpDir('fleetload-unpacked-');
  await run('tar', ['xzf', tgz, '-C', unpacked]);
  const pkgDir = join(unpacked, 'package');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    version: string;
  };
  assert.equal(pkg.bin.fleetload, 'dist/cli/main.js');
  assert.match(readFileSync(join(pkgDir, 'dist/cli/main.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);

  // a real global install into a temp prefix, offline
  const prefix = tmpDir('fleetload-prefix-');
  const installed = await run(
    npm,
    ['install', '-g', tgz, '--offline', '--prefix', prefix, '--no-audit', '--no-fund', '--ignore-scripts'],
    { cwd: prefix, timeout: 120_000 },
  ).then(
    () => true,
    (e: { stderr?: string }) => {
      assert.match(
        String(e.stderr),
        /ENOTCACHED|only-if-cached/,
        'only a dependency missing from the cache may stop it',
      );
      return false;
    },
  );
  let cli: string[];
  if (installed) {
    const bin = join(prefix, 'bin', 'fleetload');
    assert.ok(existsSync(bin));
    cli = [bin];
  } else {
    t.diagnostic(
      'npm cache lacks the dependencies: running the unpacked package with the clone’s node_modules',
    );
    symlinkSync(join(repoRoot, 'node_modules'), join(pkgDir, 'node_modules'));
    cli = [process.execPath, join(pkgDir, 'dist/cli/main.js')];
  }
  const [cmd, ...pre] = cli as [string, ...string[]];
  const v = await run(cmd, [...pre, '--version'], { cwd: prefix });
  assert.equal(v.stdout.trim(), pkg.version);
  // the whole CLI, embedded broker included, from the packaged files
  const out = tmpDir();
  const r = await run(
    cmd,
    [...pre, 'run', '-u', '2', '-t', '1s', '-i', '200ms', '--grace', '500ms', '--headless', '--out', out],
    { cwd: prefix, timeout: 60_000 },
  );
  assert.match(r.stdout, /PASSED/);
});
