import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, tmpDir } from '../helpers/cli.js';
import {
  allDocs,
  documentedBlocks,
  firstCommand,
  headingAnchors,
  relativeLinks,
  type ShellBlock,
} from '../helpers/docs.js';
import { cloneLike, docEnv, runDocuments } from '../helpers/docs-run.js';

/**
 * Every command the user documentation prints (README.md, docs/guide/*.md) runs, exactly as printed, and exits 0.
 *
 * How: the blocks of one document run in order, in one bash (`set -e`), in a fresh temporary folder laid out like a
 * clone after `npm install` (package.json, dist/, node_modules/, deploy/), so `npx fleetload …` finds the project's
 * own bin as it does in a clone, and with a PATH directory holding a `fleetload` that runs dist/cli/main.js, as
 * `npm link` / `npm install -g .` would. Each document gets its own network, mount and PID namespace (unshare): the
 * documented default ports (1883, 8089, 4222, 8883, 9999) are free there whatever else this machine runs, /etc/hosts maps
 * the documents' example host names (broker, broker.example, …) to 127.0.0.1, and every process a command starts
 * (a broker started with `&`) ends with the namespace. A document that talks to "your broker" finds a Mosquitto on
 * port 1883 there (started before its first block; OWN_BROKER in test/helpers/docs-run.ts lists the exceptions); documents that start their own services
 * (nats-server, a TLS Mosquitto) do so with their own printed commands. No command is rewritten. The environment
 * is the test's minus FLEETLOAD_*, with NO_COLOR=1 and FLEETLOAD_ACCEPT=saturated, as for every CLI test
 * (test/helpers/cli.ts): whether this shared machine keeps a schedule is not what the documentation promises.
 *
 * The documents are split in two halves so each test file stays within the runner's per-file time limit: this file
 * runs every second document from the first (README.md included), test/e2e/guides.test.ts the others; the
 * documents of a half run side by side (test/helpers/docs-run.ts).
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
  'docs/guide/tls-performance.md: npm run build':
    'the TLS bench: minutes of load with the peers (MQTT.js, Locust+paho) on both cores; its figures are bench/RESULTS.md §6',
  'docs/guide/event-hubs.md: EVENTHUB_CONNECTION_STRING="$EH_CS" CONSUMER_GROUP=fleetload STORAGE_CONNECTION_STRING="$STORAGE_CS" \\':
    'a real Event Hubs namespace and Storage account (stand-ins: test/integration/eventhubs.test.ts)',
};

function key(b: ShellBlock): string {
  return `${b.file}: ${firstCommand(b)}`;
}

const blocks = documentedBlocks(repoRoot);

test('the documentation has shell blocks, and exactly the expected ones are exempt from running', () => {
  assert.ok(blocks.filter((b) => !b.exempt).length >= 10, 'runnable blocks found');
  const exempt = blocks.filter((b) => b.exempt).map(key);
  assert.deepEqual(exempt.sort(), Object.keys(EXEMPT).sort());
});

test('every relative link of README.md and docs/ leads to a file, and an #anchor to a heading of it', () => {
  const broken: string[] = [];
  for (const file of allDocs(repoRoot)) {
    for (const l of relativeLinks(file, readFileSync(join(repoRoot, file), 'utf8'))) {
      if (!existsSync(join(repoRoot, l.target))) {
        broken.push(`${file}: ${l.link} (no ${l.target})`);
      } else if (l.anchor !== undefined && l.target.endsWith('.md')) {
        const anchors = headingAnchors(readFileSync(join(repoRoot, l.target), 'utf8'));
        if (!anchors.has(l.anchor)) broken.push(`${file}: ${l.link} (no heading #${l.anchor})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

test('the output a console block prints is what its commands print (run ids aside)', () => {
  const consoles = blocks.filter((b) => b.output !== undefined && !b.exempt);
  assert.ok(consoles.length > 0);
  const runId = /\b\d{8}-\d{6}-[a-z0-9]{4}\b/g;
  for (const b of consoles) {
    const { root, dir, bin } = cloneLike();
    const out = execFileSync('bash', ['-e', '-c', b.script], {
      cwd: dir,
      env: { ...docEnv(root), PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    assert.equal(
      out.trimEnd().replace(runId, '<runId>'),
      b.output?.trimEnd().replace(runId, '<runId>'),
      key(b),
    );
  }
});

test('every GitHub Actions workflow a guide prints validates against the workflow schema', () => {
  const validator = join(repoRoot, 'node_modules/.bin/action-validator');
  let found = 0;
  for (const file of allDocs(repoRoot)) {
    const text = readFileSync(join(repoRoot, file), 'utf8');
    for (const m of text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)) {
      const yaml = m[1] as string;
      if (!/^jobs:/m.test(yaml)) continue;
      found++;
      const path = join(tmpDir(), 'workflow.yml');
      writeFileSync(path, yaml);
      const out = execFileSync(validator, [path], { encoding: 'utf8' });
      assert.doesNotMatch(out, /error/i, `${file}: ${out}`);
    }
  }
  assert.ok(found > 0, 'the CI guide has a workflow');
});

runDocuments(0, 2);
