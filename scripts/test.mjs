#!/usr/bin/env node
// Runs the test suite: every test/**/*.test.ts, one file at a time, cheapest tier first (unit, integration, e2e,
// faults). Services (Mosquitto, NATS, …) are started by the tests themselves on free loopback ports; running files
// one at a time keeps them from competing for CPU, which the timing-sensitive tests need.
//
//   node scripts/test.mjs                        all tests
//   node scripts/test.mjs test/integration       one folder (or several)
//   node scripts/test.mjs test/unit/a.test.ts    given files
//
// FLEETLOAD_TEST_TIMEOUT_MS sets the per-test timeout (default 120000; a test may set its own).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tiers = ['unit', 'integration', 'e2e', 'faults'];

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(path));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

function tierOf(file) {
  const first = relative(join(root, 'test'), file).split(sep)[0];
  const i = tiers.indexOf(first);
  return i === -1 ? tiers.length : i;
}

const args = process.argv.slice(2);
const files = [];
for (const arg of args.length > 0 ? args : [join(root, 'test')]) {
  const path = resolve(arg);
  if (!existsSync(path)) {
    console.error(`test: ${arg} does not exist`);
    process.exit(1);
  }
  if (statSync(path).isDirectory()) files.push(...findTests(path));
  else files.push(path);
}
const unique = [...new Set(files)].sort((a, b) => tierOf(a) - tierOf(b) || a.localeCompare(b));
if (unique.length === 0) {
  console.error(`test: no *.test.ts files found in ${args.length > 0 ? args.join(', ') : 'test/'}`);
  process.exit(1);
}

const timeoutMs = process.env.FLEETLOAD_TEST_TIMEOUT_MS ?? '120000';
const nodeArgs = [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  '--test-concurrency=1',
  `--test-timeout=${timeoutMs}`,
  // A test file that leaks a handle must fail its tests, not hang CI.
  '--test-force-exit',
  ...unique.map((f) => relative(root, f)),
];
console.log(`test: ${unique.length} file(s): node ${nodeArgs.join(' ')}`);
const child = spawn(process.execPath, nodeArgs, { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => {
  if (signal) {
    console.error(`test: node --test ended by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
