import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cliPath, repoRoot, tmpDir } from '../helpers/cli.js';
import {
  allDocs,
  documentedBlocks,
  firstCommand,
  headingAnchors,
  relativeLinks,
  type ShellBlock,
} from '../helpers/docs.js';
import { killQuietly, onExit } from '../helpers/process.js';
import { skipUnless } from '../helpers/services.js';

/**
 * Every command the user documentation prints (README.md, docs/guide/*.md) runs, exactly as printed, and exits 0.
 *
 * How: the blocks of one document run in order, in one bash (`set -e`), in a fresh temporary folder laid out like a
 * clone after `npm install` (package.json, dist/, node_modules/, deploy/), so `npx fleetload …` finds the project's
 * own bin as it does in a clone, and with a PATH directory holding a `fleetload` that runs dist/cli/main.js, as
 * `npm link` / `npm install -g .` would. Each document gets its own network, mount and PID namespace (unshare): the
 * documented default ports (1883, 8089, 4222, 8883) are free there whatever else this machine runs, /etc/hosts maps
 * the documents' example host names (broker, broker.example, …) to 127.0.0.1, and every process a command starts
 * (a broker started with `&`) ends with the namespace. A document that talks to "your broker" finds a Mosquitto on
 * port 1883 there (started before its first block, see BROKER below); documents that start their own services
 * (nats-server, a TLS Mosquitto) do so with their own printed commands. No command is rewritten. The environment
 * is the test's minus FLEETLOAD_*, with NO_COLOR=1 and FLEETLOAD_ACCEPT=saturated, as for every CLI test
 * (test/helpers/cli.ts): whether this shared machine keeps a schedule is not what the documentation promises.
 *
 * Blocks marked ```` ```sh not-run-here ```` are not run; the list below says which and why, so a new command
 * that is neither runnable nor listed fails this test.
 */

const EXEMPT: Record<string, string> = {
  // file: first command — why it cannot run here
  'README.md: npm install': 'needs the npm registry; the test runs in a clone where it was done',
  'README.md: npm test': 'the whole test suite, this file included',
  'README.md: npm install -g .          # or: npm link (the same, as a symlink to the clone)':
    'writes to the global npm prefix (test/e2e/pack.test.ts covers the package)',
  'docs/guide/azure-iot-hub.md: npx fleetload run --preset azure-iot-hub --hub myhub.azure-devices.net --group-key "$DPS_GROUP_KEY" \\':
    'a real IoT Hub, Event Hubs namespace and Storage account (stand-ins: test/integration/eventhubs.test.ts)',
  'docs/guide/container.md: docker build -t fleetload --build-arg VERSION=$(node -p \'require("./package.json").version\') .':
    'no Docker daemon here (npm run test:image builds and runs the Dockerfile with buildah)',
  'docs/guide/event-hubs.md: EVENTHUB_CONNECTION_STRING="$EH_CS" CONSUMER_GROUP=fleetload STORAGE_CONNECTION_STRING="$STORAGE_CS" \\':
    'a real Event Hubs namespace and Storage account (stand-ins: test/integration/eventhubs.test.ts)',
};

/** Documents whose commands start a broker of their own on port 1883 (every other one finds a Mosquitto there). */
const OWN_BROKER = new Set(['docs/guide/nats.md']);

/** Example host names the documents use for a machine of the reader's. */
const HOSTS = ['broker', 'broker.example', 'consumer-host', 'nats', 'influx'];

const SCRIPT_TIMEOUT_MS = 300_000;

function key(b: ShellBlock): string {
  return `${b.file}: ${firstCommand(b)}`;
}

/** A temporary folder laid out like a clone after `npm install`, plus a PATH folder with `fleetload`. */
function cloneLike(): { root: string; dir: string; bin: string } {
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
    lines.push(`echo "::block ${b.file}:${b.line}::" >&2`, b.script);
  }
  lines.push('echo "::done::" >&2');
  return `${lines.join('\n')}\n`;
}

/**
 * npm, for `npx fleetload`: offline (nothing may come from the registry), its own cache in the test's folder, and
 * no lifecycle scripts — npx installs the clone into its cache, which would run the `prepare` script (the build
 * `npm install` already did; dist/ is built before the e2e tests).
 */
function env(root: string): NodeJS.ProcessEnv {
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
  const child = spawn('unshare', args, { env: env(root), stdio: ['ignore', 'pipe', 'pipe'] });
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

const blocks = documentedBlocks(repoRoot);

test('the documentation has shell blocks, and exactly the expected ones are exempt from running', () => {
  assert.ok(blocks.filter((b) => !b.exempt).length >= 10, 'runnable blocks found');
  const exempt = blocks.filter((b) => b.exempt).map(key);
  assert.deepEqual(exempt.sort(), Object.keys(EXEMPT).sort());
});

/** Guides other changes add (linked from the README already); allowed to be missing until they are merged. */
const PENDING = new Set(['docs/guide/events.md', 'docs/guide/devices.md', 'docs/guide/web-ui.md']);

test('every relative link of README.md and docs/ leads to a file, and an #anchor to a heading of it', () => {
  const broken: string[] = [];
  for (const file of allDocs(repoRoot)) {
    for (const l of relativeLinks(file, readFileSync(join(repoRoot, file), 'utf8'))) {
      if (!existsSync(join(repoRoot, l.target))) {
        if (!PENDING.has(l.target)) broken.push(`${file}: ${l.link} (no ${l.target})`);
      } else if (l.anchor !== undefined && l.target.endsWith('.md')) {
        const anchors = headingAnchors(readFileSync(join(repoRoot, l.target), 'utf8'));
        if (!anchors.has(l.anchor)) broken.push(`${file}: ${l.link} (no heading #${l.anchor})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

describe('every documented command runs as printed', { skip: skipUnless('mosquitto') }, () => {
  const files = [...new Set(blocks.map((b) => b.file))];
  for (const file of files) {
    const runnable = blocks.filter((b) => b.file === file && !b.exempt);
    if (runnable.length === 0) continue;
    test(`${file}: ${runnable.length} block(s)`, { timeout: SCRIPT_TIMEOUT_MS + 10_000 }, async () => {
      const { root, dir, bin } = cloneLike();
      const r = await runScript(root, scriptFor(file, runnable, dir, bin));
      const failed = [...r.out.matchAll(/::block ([^:]+:\d+)::/g)].at(-1)?.[1];
      assert.equal(r.code, 0, `failed in block ${failed} (exit ${r.code}):\n${r.out.slice(-6000)}`);
      assert.match(r.out, /::done::/);
    });
  }
});
