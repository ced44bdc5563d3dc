import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { repoRoot, runCli, tmpDir } from '../helpers/cli.js';
import {
  byKindName,
  containersOf,
  type K8sObject,
  kustomize,
  manifestErrors,
  parseManifests,
  podSpecOf,
  schemaErrors,
} from '../helpers/k8s.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { newWorld, runPod, type Started } from '../helpers/pod-emulator.js';
import { skipUnless } from '../helpers/services.js';

/**
 * deploy/kubernetes: every overlay renders (kubectl kustomize, offline), every object passes the offline schema
 * of test/helpers/k8s.ts and fleetload's own rules, planted mistakes fail, and the rendered Jobs run as local
 * processes (test/helpers/pod-emulator.ts) against a real Mosquitto merge to what one process schedules.
 */

const k8s = join(repoRoot, 'deploy/kubernetes');
const render = join(k8s, 'render.sh');
const overlays = ['local', 'aks'];

function renderRun(overlay: string, segments: number, scenario: string, runId: string, extra: string[] = []) {
  const text = execFileSync(
    'bash',
    [
      render,
      overlay,
      String(segments),
      scenario,
      runId,
      ...(extra.length > 0 ? extra : ['+60', 'ghcr.io/acme/fleetload:1.0.0']),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return parseManifests(text);
}

/**
 * The official Kubernetes API schemas (the `kubernetes-models` package: OpenAPI schemas of the API, checked with
 * ajv, offline). They catch wrong types, enums and missing required fields; unknown keys are left to
 * manifestErrors (the schemas allow them).
 */
async function apiSchemaErrors(o: K8sObject): Promise<string[]> {
  const api = String(o.apiVersion);
  const mod = (await import(`kubernetes-models/${api}`)) as Record<
    string,
    new (
      v: unknown,
    ) => { validate(): void }
  >;
  const Model = mod[String(o.kind)];
  if (!Model) return [`no schema for ${api} ${String(o.kind)}`];
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    return String((e as Error).message)
      .split(/[;,]\s*(?=data)/)
      .map((x) => x.trim());
  }
}

describe('kubernetes manifests', { skip: skipUnless('kubectl') }, () => {
  for (const overlay of overlays) {
    test(`overlay ${overlay} renders, and every object passes the schema and fleetload's rules`, () => {
      const objects = kustomize(join(k8s, 'overlays', overlay));
      assert.deepEqual(objects.map((o) => o.kind).sort(), [
        'ConfigMap',
        'ConfigMap',
        'ConfigMap',
        'Job',
        'Job',
        'Job',
        'PersistentVolumeClaim',
      ]);
      assert.deepEqual(manifestErrors(objects), []);
    });

    test(`overlay ${overlay}: every object validates against the Kubernetes API schema (kubernetes-models)`, async () => {
      for (const o of kustomize(join(k8s, 'overlays', overlay))) {
        assert.deepEqual(
          await apiSchemaErrors(o),
          [],
          `${o.kind} ${String((o.metadata as { name?: string })?.name)}`,
        );
      }
    });
  }

  test('the API schema catches a wrong type and a missing required field', async () => {
    const job = kustomize(join(k8s, 'overlays', 'local')).find((o) => o.kind === 'Job');
    assert.ok(job);
    const broken = structuredClone(job) as { spec: Record<string, unknown> };
    broken.spec.completions = 'two';
    delete broken.spec.template;
    const errors = await apiSchemaErrors(broken as unknown as K8sObject);
    assert.ok(
      errors.some((e) => /completions must be integer/.test(e)),
      errors.join('; '),
    );
    assert.ok(
      errors.some((e) => /must have required property template/.test(e)),
      errors.join('; '),
    );
  });

  test('aks: Azure Files, a node pool, 10 segments; local: ReadWriteOnce, 2 segments', () => {
    const aks = kustomize(join(k8s, 'overlays/aks'));
    const pvc = byKindName(aks, 'PersistentVolumeClaim', 'fleetload-results');
    assert.equal((pvc.spec as { storageClassName: string }).storageClassName, 'azurefile-csi');
    assert.deepEqual((pvc.spec as { accessModes: string[] }).accessModes, ['ReadWriteMany']);
    for (const job of aks.filter((o) => o.kind === 'Job')) {
      assert.deepEqual(podSpecOf(job).nodeSelector, { 'kubernetes.azure.com/agentpool': 'loadgen' });
    }
    assert.equal(
      (byKindName(aks, 'Job', 'fleetload-generators').spec as { completions: number }).completions,
      10,
    );
    const local = kustomize(join(k8s, 'overlays/local'));
    const lpvc = byKindName(local, 'PersistentVolumeClaim', 'fleetload-results');
    assert.deepEqual((lpvc.spec as { accessModes: string[] }).accessModes, ['ReadWriteOnce']);
    assert.equal(
      (byKindName(local, 'Job', 'fleetload-generators').spec as { parallelism: number }).parallelism,
      2,
    );
  });

  test('render.sh: SEGMENTS set once reaches completions, parallelism and FLEETLOAD_SEGMENTS; image and start', () => {
    const objects = renderRun(join(k8s, 'overlays/aks'), 7, join(k8s, 'base/scenario.yaml'), 'r-7', [
      '2030-05-01T10:00:00Z',
      'registry.example.com:5000/team/fleetload:2.1.0',
    ]);
    assert.deepEqual(manifestErrors(objects), []);
    const gen = byKindName(objects, 'Job', 'fleetload-generators');
    const spec = gen.spec as { completions: number; parallelism: number };
    assert.equal(spec.completions, 7);
    assert.equal(spec.parallelism, 7);
    for (const c of containersOf(gen))
      assert.equal(c.image, 'registry.example.com:5000/team/fleetload:2.1.0');
    const run = byKindName(objects, 'ConfigMap', 'fleetload-run').data as Record<string, string>;
    assert.equal(run.START_AT, '2030-05-01T10:00:00Z');
    assert.equal(run.RUN_ID, 'r-7');
    assert.equal(run.SEGMENTS, '7');
  });

  test('render.sh refuses bad input with one line and exit 2', () => {
    const cases: [string[], RegExp][] = [
      [[join(k8s, 'overlays/local'), '0', join(k8s, 'base/scenario.yaml'), 'r', '+5', 'i:1'], /SEGMENTS/],
      [[join(k8s, 'overlays/local'), '2', '/nonexistent.yaml', 'r', '+5', 'i:1'], /scenario file/],
      [[join(k8s, 'overlays/local'), '2', join(k8s, 'base/scenario.yaml'), 'a b', '+5', 'i:1'], /RUN_ID/],
      [
        [join(k8s, 'overlays/local'), '2', join(k8s, 'base/scenario.yaml'), 'r', 'tomorrow', 'i:1'],
        /START_AT/,
      ],
      [[tmpDir(), '2', join(k8s, 'base/scenario.yaml'), 'r', '+5', 'i:1'], /kustomization/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync('bash', [render, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    }
  });

  describe('planted mistakes fail', () => {
    const good = (): K8sObject[] => kustomize(join(k8s, 'overlays/aks'));
    const gen = (objects: K8sObject[]) => byKindName(objects, 'Job', 'fleetload-generators');
    const genPod = (objects: K8sObject[]) => podSpecOf(gen(objects));
    const genEnv = (objects: K8sObject[]) =>
      (containersOf(gen(objects))[0] as { env: Record<string, unknown>[] }).env;
    const mistakes: [string, (o: K8sObject[]) => void, RegExp][] = [
      [
        'a typo in a Job field',
        (o) => {
          const s = gen(o).spec as Record<string, unknown>;
          s.completion = s.completions;
          delete s.completions;
        },
        /spec\.completion: unknown field/,
      ],
      [
        'parallelism ≠ completions',
        (o) => Object.assign(gen(o).spec as object, { parallelism: 9 }),
        /must be equal/,
      ],
      [
        'FLEETLOAD_SEGMENTS ≠ completions',
        (o) =>
          Object.assign(genEnv(o).find((e) => e.name === 'FLEETLOAD_SEGMENTS') as object, { value: '3' }),
        /FLEETLOAD_SEGMENTS \(3\)/,
      ],
      [
        'restartPolicy OnFailure',
        (o) => Object.assign(genPod(o), { restartPolicy: 'OnFailure' }),
        /restartPolicy/,
      ],
      [
        'a retried segment',
        (o) => Object.assign(gen(o).spec as object, { backoffLimitPerIndex: 2 }),
        /backoffLimitPerIndex/,
      ],
      [
        'a password as a plain value',
        (o) => genEnv(o).push({ name: 'FLEETLOAD_PASSWORD', value: 'hunter2' }),
        /FLEETLOAD_PASSWORD holds a secret/,
      ],
      [
        'secretKeyRef misspelt',
        (o) => {
          const e = genEnv(o).find((x) => x.name === 'FLEETLOAD_PASSWORD') as {
            valueFrom: Record<string, unknown>;
          };
          e.valueFrom = { secretkeyRef: e.valueFrom.secretKeyRef };
        },
        /secretkeyRef: unknown field/,
      ],
      [
        'an unknown $(VAR) in args',
        (o) => (containersOf(gen(o))[0] as { args: string[] }).args.push('$(FLEETLOAD_RUNID)'),
        /\$\(FLEETLOAD_RUNID\) is not one of its env variables/,
      ],
      [
        'a string where an integer goes',
        (o) => Object.assign(gen(o).spec as object, { completions: '10' }),
        /integer/,
      ],
      [
        'a subdomain without a headless Service',
        (o) => Object.assign(genPod(o), { subdomain: 'fleet' }),
        /subdomain/,
      ],
      [
        'a bad quantity',
        (o) => {
          const c = containersOf(gen(o))[0] as { resources: { requests: Record<string, string> } };
          c.resources.requests.memory = '512 MB';
        },
        /not a quantity/,
      ],
      [
        'a Secret in the manifests',
        (o) => o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }),
        /Secret/,
      ],
    ];
    for (const [name, plant, message] of mistakes) {
      test(name, () => {
        const objects = good();
        assert.deepEqual(manifestErrors(objects), []);
        plant(objects);
        const errors = manifestErrors(objects);
        assert.ok(
          errors.some((e) => message.test(e)),
          `expected an error matching ${message}, got:\n${errors.join('\n')}`,
        );
      });
    }

    test('a typo planted in a copy of the base fails the render or the checks', () => {
      const copy = tmpDir('fleetload-k8s-copy-');
      cpSync(k8s, copy, { recursive: true });
      const file = join(copy, 'base/generators-job.yaml');
      const text = readFileSync(file, 'utf8');
      writeFileSync(file, text.replace('backoffLimitPerIndex: 0', 'backoffLimitPerIdx: 0'));
      assert.notEqual(readFileSync(file, 'utf8'), text);
      const errors = manifestErrors(kustomize(join(copy, 'overlays/local')));
      assert.ok(
        errors.some((e) => /backoffLimitPerIdx: unknown field/.test(e)),
        errors.join('\n'),
      );
      // and a YAML error is kubectl's failure
      writeFileSync(file, text.replace('  completions: 2', ' completions: 2'));
      assert.throws(() => kustomize(join(copy, 'overlays/local')));
    });

    test('an unknown kind is refused', () => {
      assert.match(
        schemaErrors({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } })[0] ?? '',
        /not a kind/,
      );
    });
  });
});

describe('emulated Indexed Job against Mosquitto', { skip: skipUnless('mosquitto', 'kubectl') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('3 segments, the consumer and the merge, run as the manifests say, merge to one process’s schedule', async () => {
    const dir = tmpDir('fleetload-k8s-emulate-');
    const scenario = join(dir, 'scenario.yaml');
    writeFileSync(
      scenario,
      // accept saturated: this machine's cores are shared by other jobs, and how fast the generator kept up is the
      // bench's business, not this test's (every count below is still exact)
      'devices: 30\nspawnRate: 300\ninterval: 100ms\nmessagesPerDevice: 10\nrunTime: 20s\nqos: 1\ngrace: 2s\naccept: [saturated]\n',
    );
    const segments = 3;
    const runId = `k8s-emu-${process.pid}`;
    const objects = renderRun(join(k8s, 'overlays/local'), segments, scenario, runId, [
      // lead time for 5 node processes to start on a loaded 2-core machine (a late segment exits 2)
      '+20',
      'ghcr.io/acme/fleetload:test',
      '32s',
      '90',
    ]);
    assert.deepEqual(manifestErrors(objects), []);

    // what one process of this scenario schedules
    const plan = await runCli(['plan', scenario]);
    assert.equal(plan.code, 0, plan.stderr);
    const scheduled = Number(/(\d+) scheduled in/.exec(plan.stdout)?.[1]);
    assert.equal(scheduled, 300);

    const run = byKindName(objects, 'ConfigMap', 'fleetload-run').data as Record<string, string>;
    const world = newWorld(objects, run.BROKER_URL as string, broker.url);
    const consumerJob = byKindName(objects, 'Job', 'fleetload-consumer');
    const genJob = byKindName(objects, 'Job', 'fleetload-generators');
    const mergeJob = byKindName(objects, 'Job', 'fleetload-merge');
    const completions = (genJob.spec as { completions: number }).completions;
    assert.equal(completions, segments);

    // every pod starts at once, as on a cluster: the merge waits by itself, the segments wait for START_AT
    const merge = runPod('merge', podSpecOf(mergeJob), world);
    let consumerStarted: Started | undefined;
    const consumer = runPod('consumer', podSpecOf(consumerJob), world, undefined, (s) => {
      consumerStarted = s;
    });
    const gens = Array.from({ length: completions }, (_, i) =>
      runPod(`segment-${i}`, podSpecOf(genJob), world, i),
    );
    const results = await Promise.all(gens);
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `segment ${i}:\n${r.output}`);
    const c = await consumer;
    assert.ok(consumerStarted);
    assert.equal(c.code, 0, `consumer:\n${c.output}`);
    const m = await merge;
    assert.equal(m.code, 0, `merge:\n${m.output}`);
    assert.match(m.output, new RegExp(`${segments + 1} of ${segments + 1} results folders complete`));

    const results0 = world.pvcs.get('fleetload-results') as string;
    const merged = JSON.parse(
      readFileSync(join(results0, runId, 'merged', 'summary.json'), 'utf8'),
    ) as Summary;
    assert.equal(merged.messages.scheduled, scheduled);
    assert.equal(merged.messages.sent, scheduled);
    assert.equal(merged.messages.received, scheduled);
    assert.equal(merged.messages.lost, 0);
    assert.equal(merged.messages.duplicated, 0);
    assert.equal(merged.devices.target, 30);
    assert.equal(merged.passed, true);
  });

  test('a segment that never wrote its folder: the merge names it and exits 2', async () => {
    const dir = tmpDir('fleetload-k8s-missing-');
    const scenario = join(dir, 'scenario.yaml');
    writeFileSync(
      scenario,
      'devices: 4\nspawnRate: 100\ninterval: 100ms\nmessagesPerDevice: 3\nrunTime: 10s\naccept: [saturated]\n',
    );
    const runId = `k8s-miss-${process.pid}`;
    const objects = renderRun(join(k8s, 'overlays/local'), 2, scenario, runId, [
      '+8',
      'ghcr.io/acme/fleetload:test',
      '14s',
      '3',
    ]);
    const run = byKindName(objects, 'ConfigMap', 'fleetload-run').data as Record<string, string>;
    const world = newWorld(objects, run.BROKER_URL as string, broker.url);
    const consumer = runPod('consumer', podSpecOf(byKindName(objects, 'Job', 'fleetload-consumer')), world);
    // only segment 0 of 2 runs
    const seg = await runPod(
      'segment-0',
      podSpecOf(byKindName(objects, 'Job', 'fleetload-generators')),
      world,
      0,
    );
    assert.equal(seg.code, 0, seg.output);
    assert.equal((await consumer).code, 0);
    const m = await runPod('merge', podSpecOf(byKindName(objects, 'Job', 'fleetload-merge')), world);
    assert.equal(m.code, 2, m.output);
    assert.match(m.output, /only 2 of 3 results folders complete/);
    assert.match(m.output, /segment/i);
  });
});
