import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { repoRoot, tmpDir } from '../helpers/cli.js';
import { findBinary, serviceRequired } from '../helpers/services.js';

/**
 * .github/workflows and the scripts they run (deploy/**.sh): YAML that parses, the GitHub workflow JSON schema
 * (`@action-validator/cli`, offline), a structure checked by rules of our own on top, every
 * `run:` step and script through `bash -n` and shellcheck, no `|| true`, and the scripts' behaviour with a fake
 * kubectl / az on the PATH: the workflow fails exactly when the merge fails.
 */

const workflowsDir = join(repoRoot, '.github/workflows');
const workflowFiles = readdirSync(workflowsDir).filter((f) => f.endsWith('.yml'));
type Obj = Record<string, unknown>;
type Step = Obj & { run?: string; uses?: string; if?: string; env?: Obj; with?: Obj; name?: string };
const load = (f: string): Obj => parse(readFileSync(join(workflowsDir, f), 'utf8')) as Obj;

function scripts(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...scripts(p));
    else if (e.name.endsWith('.sh')) out.push(p);
  }
  return out;
}
const deployScripts = scripts(join(repoRoot, 'deploy'));

const shellcheck = findBinary('shellcheck');
const shellcheckSkip =
  shellcheck === undefined && !serviceRequired()
    ? 'shellcheck not installed (apt-get install shellcheck); set FLEETLOAD_REQUIRE_SERVICES=1 to make this a failure'
    : false;

function runSteps(): { where: string; step: Step }[] {
  const all: { where: string; step: Step }[] = [];
  for (const f of workflowFiles) {
    for (const [id, job] of Object.entries(load(f).jobs as Record<string, Obj>)) {
      for (const [i, step] of ((job.steps as Step[]) ?? []).entries()) {
        all.push({ where: `${f} jobs.${id}.steps[${i}]${step.name ? ` (${step.name})` : ''}`, step });
      }
    }
  }
  return all;
}

const WORKFLOW_KEYS = ['name', 'run-name', 'on', 'permissions', 'concurrency', 'env', 'defaults', 'jobs'];
const JOB_KEYS = [
  'name',
  'runs-on',
  'needs',
  'if',
  'env',
  'timeout-minutes',
  'permissions',
  'concurrency',
  'strategy',
  'outputs',
  'defaults',
  'steps',
  'uses',
  'with',
  'secrets',
  'environment',
  'services',
  'container',
  'continue-on-error',
];
const STEP_KEYS = [
  'name',
  'id',
  'if',
  'uses',
  'run',
  'with',
  'env',
  'shell',
  'working-directory',
  'continue-on-error',
  'timeout-minutes',
];

/** Structural errors of one workflow (empty: fine). */
export function workflowErrors(file: string, w: Obj, text: string): string[] {
  const errors: string[] = [];
  for (const k of Object.keys(w)) if (!WORKFLOW_KEYS.includes(k)) errors.push(`${file}: unknown key ${k}`);
  if (w.on === undefined) errors.push(`${file}: no "on"`);
  const jobs = w.jobs as Record<string, Obj> | undefined;
  if (!jobs || Object.keys(jobs).length === 0) errors.push(`${file}: no jobs`);
  const call = ((w.on as Obj | undefined)?.workflow_call ?? undefined) as Obj | undefined;
  const inputs = (call?.inputs ?? {}) as Record<string, Obj>;
  const secrets = (call?.secrets ?? {}) as Record<string, Obj>;
  for (const [name, input] of Object.entries(inputs)) {
    if (!['string', 'number', 'boolean'].includes(String(input.type)))
      errors.push(`${file}: input ${name}: type`);
    if (input.required !== true && input.default === undefined)
      errors.push(`${file}: input ${name}: no default`);
  }
  for (const m of text.matchAll(/\binputs\.([A-Za-z0-9_-]+)/g)) {
    if (!(m[1] && m[1] in inputs)) errors.push(`${file}: inputs.${m[1]} is not a workflow_call input`);
  }
  if (call) {
    for (const m of text.matchAll(/\bsecrets\.([A-Za-z0-9_]+)/g)) {
      if (m[1] !== 'GITHUB_TOKEN' && !(m[1] && m[1] in secrets))
        errors.push(`${file}: secrets.${m[1]} not declared`);
    }
  }
  if (/\|\|\s*true\b/.test(text)) errors.push(`${file}: "|| true" hides failures`);
  for (const [id, job] of Object.entries(jobs ?? {})) {
    for (const k of Object.keys(job))
      if (!JOB_KEYS.includes(k)) errors.push(`${file}: jobs.${id}: unknown key ${k}`);
    if (job.uses === undefined && (job['runs-on'] === undefined || !Array.isArray(job.steps))) {
      errors.push(`${file}: jobs.${id}: needs runs-on and steps (or uses)`);
    }
    if (job['timeout-minutes'] === undefined && job.uses === undefined) {
      errors.push(`${file}: jobs.${id}: no timeout-minutes`);
    }
    for (const [i, step] of ((job.steps as Step[]) ?? []).entries()) {
      const where = `${file}: jobs.${id}.steps[${i}]`;
      for (const k of Object.keys(step))
        if (!STEP_KEYS.includes(k)) errors.push(`${where}: unknown key ${k}`);
      if ((step.run === undefined) === (step.uses === undefined))
        errors.push(`${where}: exactly one of run, uses`);
      if (step.uses !== undefined && !/^[\w.-]+\/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})$/.test(step.uses)) {
        errors.push(`${where}: uses ${step.uses} must be pinned to a version or commit`);
      }
      // expressions in a script are pasted in before bash parses it (script injection): pass them through env
      if (step.run?.includes('${{')) errors.push(`${where}: \${{ … }} inside run: pass it through env`);
      for (const m of (step.run ?? '').matchAll(/(deploy\/[\w./-]+\.sh)/g)) {
        const p = join(repoRoot, m[1] as string);
        try {
          accessSync(p, constants.X_OK);
        } catch {
          errors.push(`${where}: ${m[1]} is not an executable file of the repository`);
        }
      }
    }
  }
  return errors;
}

describe('workflows', () => {
  test('every workflow validates against the GitHub workflow schema (action-validator); a planted error fails', () => {
    const validator = join(repoRoot, 'node_modules/.bin/action-validator');
    const check = (file: string) => spawnSync(validator, [file], { encoding: 'utf8' });
    for (const f of workflowFiles) {
      const r = check(join(workflowsDir, f));
      assert.equal(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
    }
    const bad = join(tmpDir(), 'bad.yml');
    writeFileSync(bad, readFileSync(join(workflowsDir, 'ci.yml'), 'utf8').replace(/runs-on:/, 'runs-onn:'));
    const r = check(bad);
    assert.notEqual(r.status, 0, 'a misspelt key fails the schema');
    assert.match(r.stdout + r.stderr, /runs-onn|additional|one_of|runs-on/i);
  });

  test('the four workflows are there and pass the structural checks', () => {
    assert.deepEqual(workflowFiles.sort(), ['aci-load-test.yml', 'aks-load-test.yml', 'ci.yml', 'image.yml']);
    for (const f of workflowFiles) {
      const text = readFileSync(join(workflowsDir, f), 'utf8');
      assert.deepEqual(workflowErrors(f, load(f), text), [], f);
    }
  });

  test('ci runs .ci/run; image pushes to GHCR on tags', () => {
    const ci = load('ci.yml');
    assert.ok(runSteps().some((s) => s.where.startsWith('ci.yml') && s.step.run?.trim() === '.ci/run'));
    assert.ok(existsSync(join(repoRoot, '.ci/run')));
    const image = load('image.yml');
    assert.deepEqual(((image.on as Obj).push as Obj).tags, ['v*']);
    assert.equal((image.permissions as Obj).packages, 'write');
    const text = readFileSync(join(workflowsDir, 'image.yml'), 'utf8');
    assert.match(text, /registry: ghcr\.io/);
    assert.match(text, /push: true/);
    assert.ok(ci.jobs);
  });

  for (const f of ['aks-load-test.yml', 'aci-load-test.yml']) {
    test(`${f}: workflow_call, OIDC login, always uploads and cleans up, no failure hidden`, () => {
      const w = load(f);
      const call = (w.on as Obj).workflow_call as Obj;
      const inputs = Object.keys(call.inputs as Obj);
      for (const i of ['image', 'segments', 'scenario']) assert.ok(inputs.includes(i), `${f}: input ${i}`);
      if (f.startsWith('aks')) assert.ok(inputs.includes('overlay'));
      assert.equal((w.permissions as Obj)['id-token'], 'write');
      const steps = Object.values(w.jobs as Record<string, Obj>).flatMap((j) => j.steps as Step[]);
      const login = steps.find((s) => s.uses?.startsWith('azure/login@'));
      assert.ok(login?.with?.['client-id'] && !login.with.creds, 'OIDC: client-id, no stored credentials');
      const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
      assert.equal(upload?.if, 'always()');
      const cleanup = steps.at(-1);
      assert.equal(cleanup?.if, 'always()');
      assert.match(String(cleanup?.run), /cleanup/);
      // the step that carries merge's exit code is not allowed to fail softly
      const mergeStep = steps.find(
        (s) => /\b(wait|merge)\b/.test(String(s.run)) && /merge/.test(String(s.name)),
      );
      assert.ok(mergeStep, 'a step that ends with the merge');
      assert.equal(mergeStep?.['continue-on-error'], undefined);
      assert.equal(mergeStep?.if, undefined);
    });
  }

  test('a planted "|| true", an unknown input and an unpinned action are caught', () => {
    const f = 'aks-load-test.yml';
    const text = readFileSync(join(workflowsDir, f), 'utf8');
    const planted = text
      .replace('deploy/kubernetes/cluster.sh wait "$NS"', 'deploy/kubernetes/cluster.sh wait "$NS" || true')
      .replace('inputs.image }}', 'inputs.imgae }}')
      .replace('actions/checkout@v4', 'actions/checkout@main')
      .replace('run: deploy/kubernetes/cluster.sh apply', 'runs: deploy/kubernetes/cluster.sh apply');
    const errors = workflowErrors(f, parse(planted) as Obj, planted);
    for (const m of [/\|\| true/, /inputs\.imgae/, /checkout@main/, /unknown key runs/]) {
      assert.ok(
        errors.some((e) => m.test(e)),
        `${m}: ${errors.join('\n')}`,
      );
    }
  });

  test('every run: step passes bash -n', () => {
    const steps = runSteps().filter((s) => s.step.run !== undefined);
    assert.ok(steps.length >= 10);
    for (const { where, step } of steps) {
      const r = spawnSync('bash', ['-n'], { input: `set -eo pipefail\n${step.run}`, encoding: 'utf8' });
      assert.equal(r.status, 0, `${where}: ${r.stderr}`);
    }
  });

  test('every run: step passes shellcheck', { skip: shellcheckSkip }, () => {
    assert.ok(shellcheck, 'shellcheck is required in CI (apt-get install shellcheck)');
    const dir = tmpDir('fleetload-shellcheck-');
    for (const [i, { where, step }] of runSteps().entries()) {
      if (step.run === undefined) continue;
      // as GitHub runs it: bash -e {0}; the step's env names are set
      const env = Object.keys(step.env ?? {}).map((k) => `: "\${${k}:?}"`);
      const file = join(dir, `step-${i}.sh`);
      writeFileSync(file, `#!/usr/bin/env bash\nset -eo pipefail\n${env.join('\n')}\n${step.run}\n`);
      const r: SpawnSyncReturns<string> = spawnSync(shellcheck as string, ['-s', 'bash', file], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `${where}:\n${r.stdout}${r.stderr}`);
    }
  });
});

describe('deploy scripts', () => {
  test('every script under deploy/ passes bash -n (sh -n for /bin/sh ones) and has no "|| true"', () => {
    assert.ok(deployScripts.length >= 4, deployScripts.join(' '));
    for (const s of deployScripts) {
      const text = readFileSync(s, 'utf8');
      const shell = text.startsWith('#!/bin/sh') ? 'sh' : 'bash';
      const r = spawnSync(shell, ['-n', s], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${s}: ${r.stderr}`);
      assert.doesNotMatch(text, /\|\|\s*true\b/, s);
      accessSync(s, constants.X_OK);
    }
  });

  test('every script under deploy/ passes shellcheck', { skip: shellcheckSkip }, () => {
    assert.ok(shellcheck, 'shellcheck is required in CI (apt-get install shellcheck)');
    const r = spawnSync(shellcheck, deployScripts, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('shellcheck finds a planted mistake (the check is live)', { skip: shellcheckSkip }, () => {
    assert.ok(shellcheck);
    const file = join(tmpDir('fleetload-shellcheck-'), 'bad.sh');
    writeFileSync(file, '#!/usr/bin/env bash\nrm -rf $DIR/*\n');
    const r = spawnSync(shellcheck, [file], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /SC2086/);
  });
});

/** A fake CLI on the PATH: logs its argv (one line, NUL-free) and answers from FAKE_* variables. */
function fakeBin(name: string, body: string): { dir: string; log: string } {
  const dir = tmpDir(`fleetload-fake-${name}-`);
  const log = join(dir, 'calls.log');
  writeFileSync(
    join(dir, name),
    `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >>"${log}"\nargs="$*"\n${body}\n`,
    { mode: 0o755 },
  );
  writeFileSync(log, '');
  return { dir, log };
}

const fakeKubectl = (): { dir: string; log: string } =>
  fakeBin(
    'kubectl',
    `case $args in
  *"get job fleetload-merge -o jsonpath={.status.succeeded}"*) printf '%s' "$FAKE_STATUS" ;;
  *"get pods -l batch.kubernetes.io/job-name=fleetload-merge"*) printf '%s' "$FAKE_EXIT" ;;
  *"logs job/fleetload-merge"*) echo "merge log: PASSED" ;;
  *"create secret generic"*) f=\${args##*--from-env-file=}; f=\${f%% *}; cp "$f" "$FAKE_SECRET_COPY"; echo "kind: Secret" ;;
  *"create namespace"*) echo "kind: Namespace" ;;
  *"apply -f -"*) cat >/dev/null ;;
  *) : ;;
esac`,
  );

function cluster(args: string[], env: Record<string, string>, bin: string) {
  return spawnSync(join(repoRoot, 'deploy/kubernetes/cluster.sh'), args, {
    encoding: 'utf8',
    env: { PATH: `${bin}:/usr/bin:/bin`, POLL_SECONDS: '0', ...env },
  });
}

describe('cluster.sh with a fake kubectl', () => {
  test('wait exits with the merge pod’s code: 2 when a segment is missing, 0 when it passed', () => {
    for (const [status, exit, want] of [
      ['/1', '2', 2],
      ['1/', '0', 0],
      ['/1', '1', 1],
    ] as const) {
      const k = fakeKubectl();
      const r = cluster(['wait', 'ns1', '60'], { FAKE_STATUS: status, FAKE_EXIT: exit }, k.dir);
      assert.equal(r.status, want, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`fleetload merge exited with ${exit}`));
      assert.match(r.stdout, /merge log: PASSED/);
    }
  });

  test('wait fails (exit 1) when the merge never finishes or never ran', () => {
    const k = fakeKubectl();
    const r = cluster(['wait', 'ns1', '0'], { FAKE_STATUS: '/', FAKE_EXIT: '' }, k.dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /did not finish within 0 s/);
    const r2 = cluster(['wait', 'ns1', '5'], { FAKE_STATUS: '/1', FAKE_EXIT: '' }, fakeKubectl().dir);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /no exit code/);
  });

  test('secrets: set variables go into the Secret through a file, never onto a command line', () => {
    const k = fakeKubectl();
    const copy = join(k.dir, 'secret.env');
    const r = cluster(
      ['secrets', 'ns1'],
      {
        FLEETLOAD_PASSWORD: 's3cr3t-pw',
        FLEETLOAD_EVENTHUB_CONNECTION_STRING: 'Endpoint=sb://x/;K=v',
        FAKE_SECRET_COPY: copy,
      },
      k.dir,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      readFileSync(copy, 'utf8'),
      'FLEETLOAD_PASSWORD=s3cr3t-pw\nFLEETLOAD_EVENTHUB_CONNECTION_STRING=Endpoint=sb://x/;K=v\n',
    );
    const calls = readFileSync(k.log, 'utf8');
    assert.doesNotMatch(calls + r.stdout + r.stderr, /s3cr3t-pw|sb:\/\/x/);
    assert.match(calls, /-n ns1 create secret generic fleetload-secrets/);
  });

  test('apply and cleanup: the rendered file in the namespace; cleanup deletes it, the reader and the Secret', () => {
    const k = fakeKubectl();
    const manifests = join(k.dir, 'm.yaml');
    writeFileSync(manifests, 'kind: ConfigMap\n');
    assert.equal(cluster(['apply', 'ns1', manifests], {}, k.dir).status, 0);
    assert.equal(cluster(['cleanup', 'ns1', manifests], {}, k.dir).status, 0);
    const calls = readFileSync(k.log, 'utf8');
    assert.match(calls, new RegExp(`-n ns1 apply -f ${manifests}`));
    assert.match(calls, new RegExp(`-n ns1 delete -f ${manifests} --ignore-not-found`));
    assert.match(calls, /delete pod fleetload-results-reader/);
    assert.match(calls, /delete secret fleetload-secrets/);
    assert.equal(cluster(['apply', 'ns1', '/nonexistent'], {}, k.dir).status, 2);
    assert.equal(cluster(['bogus', 'ns1'], {}, k.dir).status, 2);
  });
});

const fakeAz = (): { dir: string; log: string } =>
  fakeBin(
    'az',
    `case $args in
  *"storage account keys list"*) echo "storage-key-xyz" ;;
  *"--query instanceView.state"*) echo "Succeeded" ;;
  *"containers[0].instanceView.currentState.exitCode"*) echo "$FAKE_EXIT" ;;
  *"container logs"*) echo "merge log" ;;
  *) : ;;
esac`,
  );

describe('aci.sh with a fake az', () => {
  const base = (dir: string, scenario: string): Record<string, string> => ({
    PATH: `${dir}:/usr/bin:/bin`,
    POLL_SECONDS: '0',
    RESOURCE_GROUP: 'rg',
    PREFIX: 'fl-1',
    IMAGE: 'ghcr.io/acme/fleetload:1.0.0',
    SEGMENTS: '3',
    SCENARIO: scenario,
    RUN_ID: 'r1',
    START_AT: '+120',
    BROKER_URL: 'mqtts://broker.example.com:8883',
    STORAGE_ACCOUNT: 'acct',
    SHARE: 'results',
  });
  const aci = (cmd: string, env: Record<string, string>) =>
    spawnSync(join(repoRoot, 'deploy/azure/aci.sh'), [cmd], { encoding: 'utf8', env });

  test('start: the consumer first, then one group per segment i/N, all with one --start-at; secrets only as secure variables', () => {
    const az = fakeAz();
    const scenario = join(az.dir, 'scenario.yaml');
    writeFileSync(scenario, 'devices: 100\n');
    const r = aci('start', { ...base(az.dir, scenario), FLEETLOAD_PASSWORD: 'pw-1' });
    assert.equal(r.status, 0, r.stderr);
    const creates = readFileSync(az.log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('container create'));
    assert.equal(creates.length, 4);
    assert.match(creates[0] ?? '', /--name fl-1-consumer .*fleetload consume .*--run-id r1/);
    assert.doesNotMatch(creates[0] ?? '', /pw-1/);
    const starts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const line = creates[i + 1] ?? '';
      assert.match(line, new RegExp(`--name fl-1-seg-${i} .*--segment ${i}/3 `));
      assert.match(line, /--restart-policy Never/);
      assert.match(line, /--azure-file-volume-mount-path \/results/);
      assert.match(line, /--secure-environment-variables FLEETLOAD_PASSWORD=pw-1$/);
      assert.doesNotMatch(line, /--environment-variables/);
      starts.add(/--start-at (\S+)/.exec(line)?.[1] ?? '');
    }
    assert.equal(starts.size, 1);
    assert.match([...starts][0] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('merge exits with the merge container’s code; cleanup deletes every group', () => {
    for (const code of ['0', '2']) {
      const az = fakeAz();
      const r = aci('merge', { ...base(az.dir, '/x'), FAKE_EXIT: code });
      assert.equal(r.status, Number(code), r.stderr);
      assert.match(r.stdout, new RegExp(`fleetload merge exited with ${code}`));
    }
    const az = fakeAz();
    assert.equal(aci('wait', base(az.dir, '/x')).status, 0);
    assert.equal(aci('cleanup', base(az.dir, '/x')).status, 0);
    const deletes = readFileSync(az.log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('container delete'));
    assert.equal(deletes.length, 5);
  });

  test('missing settings and bad values: exit 2 naming them', () => {
    const az = fakeAz();
    const env = base(az.dir, '/nonexistent.yaml');
    assert.match(aci('start', env).stderr, /scenario file/);
    assert.equal(aci('start', { ...env, SEGMENTS: '0' }).status, 2);
    const { RUN_ID: _, ...noRun } = env;
    const r = aci('start', noRun);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /set RUN_ID/);
  });
});
