import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cliPath, repoRoot, tmpDir } from './cli.js';
import { documentedBlocks, type ShellBlock } from './docs.js';
import { killQuietly, onExit } from './process.js';
import { skipUnless } from './services.js';

/**
 * Runs the documented shell blocks of README.md and docs/guide/*.md as printed (see test/e2e/readme.test.ts for
 * how and why). The documents are split into shards (every `of`-th document, in name order), one per test file,
 * so that each file stays within the test runner's per-file time limit; the documents of a shard run side by side,
 * each in its own namespaces, so their ports never meet.
 */

/** Documents whose commands start a broker of their own on port 1883 (every other one finds a Mosquitto there). */
const OWN_BROKER = new Set(['docs/guide/nats.md']);

/** Example host names the documents use for a machine of the reader's. */
const HOSTS = ['broker', 'broker.example', 'consumer-host', 'nats', 'influx'];

const SCRIPT_TIMEOUT_MS = 100_000;

/** A temporary folder laid out like a clone after `npm install`, plus a PATH folder with `fleetload`. */
export function cloneLike(): { root: string; dir: string; bin: string } {
  const root = tmpDir('fleetload-docs-');
  // readable by other users: a Mosquitto started as root reads its certificates as user mosquitto
  chmodSync(root, 0o755);
  const dir = join(root, 'fleetload');
  mkdirSync(dir);
  copyFileSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  for (const d of ['dist', 'node_modules', 'deploy']) symlinkSync(join(repoRoot, d), join(dir, d));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'fleetload'), `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`);
  chmodSync(join(bin, 'fleetload'), 0o755);
  writeFileSync(join(root, 'hosts'), `127.0.0.1 localhost ${HOSTS.join(' ')}\n::1 localhost\n`);
  return { root, dir, bin };
}

function scriptFor(file: string, blocks: readonly ShellBlock[], dir: string, bin: string): string {
  const lines = [
    'set -e',
    'ip link set lo up',
    `mount --bind "${join(dir, '..', 'hosts')}" /etc/hosts`,
    `export PATH="${bin}:$PATH"`,
    `cd "${dir}"`,
  ];
  if (!OWN_BROKER.has(file)) {
    lines.push(
      'mosquitto -p 1883 -d',
      'for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done',
    );
  }
  for (const b of blocks) {
    lines.push(`echo "::block ${b.file}:${b.line}::" >&2`, b.serves ? servedScript(b.script) : b.script);
  }
  lines.push('echo "::done::" >&2');
  return `${lines.join('\n')}\n`;
}

/**
 * npm, for `npx fleetload`: offline (nothing may come from the registry), its own cache in the test's folder, and
 * no lifecycle scripts — npx installs the clone into its cache, which would run the `prepare` script (the build
 * `npm install` already did; dist/ is built before the e2e tests).
 */
export function docEnv(root: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLEETLOAD_')) e[k] = v;
  delete e.FORCE_COLOR;
  return {
    ...e,
    NO_COLOR: '1',
    FLEETLOAD_ACCEPT: 'saturated',
    npm_config_offline: 'true',
    npm_config_cache: join(root, 'npm-cache'),
    npm_config_ignore_scripts: 'true',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
  };
}

function runScript(root: string, script: string): Promise<{ code: number | null; out: string }> {
  const path = join(root, 'doc.sh');
  writeFileSync(path, script);
  const args = ['--net', '--mount', '--pid', '--fork', '--mount-proc', '--kill-child', 'bash', path];
  const child = spawn('unshare', args, { env: docEnv(root), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const pid = child.pid;
  const unregister = pid === undefined ? () => false : onExit(() => killQuietly(pid, 'SIGKILL'));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), SCRIPT_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      unregister();
      resolve({ code, out });
    });
  });
}

/**
 * A `serves` block: each command as printed, in the background, until it prints how to stop it (it is serving
 * then), then SIGTERM — as Ctrl-C would — and it must exit 0 within 20 s. A command that exits early fails.
 */
function servedScript(script: string): string {
  const commands = script
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  return commands
    .map((c) =>
      [
        `{ ${c}\n} > served.log 2>&1 &`,
        'served=$!',
        'for i in $(seq 300); do grep -Eq "Ctrl-C.* to (stop|exit)" served.log && break; kill -0 $served 2>/dev/null || break; sleep 0.2; done',
        'cat served.log >&2',
        'kill -0 $served',
        // the command runs in a subshell of the script: the signal goes to what it started, as Ctrl-C would
        'pkill -TERM -P $served || kill -TERM $served',
        'for i in $(seq 100); do kill -0 $served 2>/dev/null || break; sleep 0.2; done',
        'wait $served',
      ].join('\n'),
    )
    .join('\n');
}

/** One test per document of shard `shard` of `of`: its runnable blocks, in order, in one bash, exit 0. */
export function runDocuments(shard: number, of: number): void {
  const blocks = documentedBlocks(repoRoot).filter((b) => !b.exempt);
  const files = [...new Set(blocks.map((b) => b.file))].filter((_, i) => i % of === shard);
  describe(`documented commands, shard ${shard + 1} of ${of}: every one runs as printed`, {
    skip: skipUnless('mosquitto'),
    concurrency: true,
  }, () => {
    for (const file of files) {
      const runnable = blocks.filter((b) => b.file === file);
      test(`${file}: ${runnable.length} block(s)`, { timeout: SCRIPT_TIMEOUT_MS + 10_000 }, async () => {
        const { root, dir, bin } = cloneLike();
        const r = await runScript(root, scriptFor(file, runnable, dir, bin));
        const failed = [...r.out.matchAll(/::block ([^:]+:\d+)::/g)].at(-1)?.[1];
        assert.equal(r.code, 0, `failed in block ${failed} (exit ${r.code}):\n${r.out.slice(-6000)}`);
        assert.match(r.out, /::done::/);
      });
    }
  });
}
