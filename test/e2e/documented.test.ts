import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, tmpDir } from '../helpers/cli.js';

/**
 * Paths the README documents, run as printed: a saved scenario.yaml runs again; a scenario file's paths are the
 * file's; each command's own help.
 */

const quick = ['-i', '200ms', '--headless', '--grace', '500ms'];

function runsIn(out: string): string[] {
  return readdirSync(out).sort();
}

function summaryOf(dir: string): Summary {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
}

describe('a results folder’s scenario.yaml runs again: fleetload run <folder>/scenario.yaml', () => {
  test('a plain run: exit 0, a new run id and a new folder, the same load', async () => {
    const cwd = tmpDir();
    const first = await runCli(['run', '-u', '3', '-t', '2s', ...quick, '--out', 'res'], { cwd });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const [a] = runsIn(join(cwd, 'res'));
    assert.ok(a);
    const saved = readFileSync(join(cwd, 'res', a, 'scenario.yaml'), 'utf8');
    assert.doesNotMatch(saved, /^runId:/m, 'the run id is not pinned');
    assert.match(saved, /fleetload run scenario\.yaml/);
    const again = await runCli(['run', join('res', a, 'scenario.yaml')], { cwd });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    const runs = runsIn(join(cwd, 'res'));
    assert.equal(runs.length, 2, runs.join(' '));
    const b = runs.find((r) => r !== a) as string;
    const s = summaryOf(join(cwd, 'res', b));
    assert.equal(s.runId, b);
    assert.equal(s.scenario.devices, 3);
    assert.ok(s.messages.received > 0);
  });

  test('a stage run: stages kept, no devices/runTime beside them, exit 0 again', async () => {
    const cwd = tmpDir();
    const first = await runCli(['run', '--stage', '1s:3', '--stage', '1s:0', ...quick, '--out', 'res'], {
      cwd,
    });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const [a] = runsIn(join(cwd, 'res'));
    assert.ok(a);
    const saved = parse(readFileSync(join(cwd, 'res', a, 'scenario.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(saved.stages, ['1s:3', '1s:0']);
    assert.equal(saved.devices, undefined);
    assert.equal(saved.runTime, undefined);
    const again = await runCli(['run', join(cwd, 'res', a, 'scenario.yaml')], { cwd });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(runsIn(join(cwd, 'res')).length, 2);
  });
});

describe('paths in a scenario file are taken from the file’s folder', () => {
  test('payload and certificate paths next to a scenario in a subfolder; flags still from the cwd', async () => {
    const cwd = tmpDir();
    const sub = join(cwd, 'scenarios');
    mkdirSync(sub);
    writeFileSync(join(sub, 'payload.json'), '{"temp": {{randomInt 20 30}}, "marker": "from-subfolder"}\n');
    writeFileSync(
      join(sub, 'load.yaml'),
      'devices: 2\nrunTime: 1s\ninterval: 200ms\nheadless: true\ngrace: 500ms\npayload: payload.json\n',
    );
    const r = await runCli(['run', 'scenarios/load.yaml', '--out', 'res'], { cwd });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const [id] = runsIn(join(cwd, 'res'));
    assert.ok(id);
    const saved = parse(readFileSync(join(cwd, 'res', id, 'scenario.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    // absolute in scenario.yaml, so the saved copy finds it from wherever it is run
    assert.equal(saved.payload, join(sub, 'payload.json'));

    // the same names from the cwd are not found there: the message names the file as seen from the cwd
    writeFileSync(join(sub, 'tls.yaml'), 'host: mqtts://127.0.0.1:1\nca: missing-ca.pem\nheadless: true\n');
    const bad = await runCli(['run', 'scenarios/tls.yaml', '--out', 'res2'], { cwd });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /ca: cannot read CA file scenarios\/missing-ca\.pem: no such file \(scenarios\/tls\.yaml:2\)/,
    );
    // a flag is the cwd's
    const flag = await runCli(['run', 'scenarios/tls.yaml', '--ca', 'missing-ca.pem', '--out', 'res2'], {
      cwd,
    });
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /ca: cannot read CA file missing-ca\.pem: no such file \(from --ca\)/);
  });
});

describe('each command has its own help', () => {
  test('plan --help is plan’s help, not run’s', async () => {
    const r = await runCli(['plan', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: fleetload plan /);
    assert.doesNotMatch(r.stdout, /Usage: fleetload run/);
  });

  test('schema --help is a short help; schema alone prints the JSON Schema; schema x is refused', async () => {
    const help = await runCli(['schema', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: fleetload schema/);
    assert.ok(help.stdout.split('\n').length < 20, help.stdout);
    const schema = await runCli(['schema']);
    assert.equal(schema.code, 0);
    assert.equal((JSON.parse(schema.stdout) as { type: string }).type, 'object');
    const bad = await runCli(['schema', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /schema takes no arguments/);
  });

  test('the main help lists --version, which prints the version', async () => {
    const help = await runCli(['--help']);
    assert.match(help.stdout, /-v, --version +print the version/);
    const v = await runCli(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('fleetload compare says how two runs’ scenarios differed', () => {
  test('payload size, encoding and topic are in summary.json and in compare’s notes', async () => {
    const cwd = tmpDir();
    const one = ['run', '-u', '2', '-t', '1s', ...quick, '--out', 'res'];
    const a = await runCli([...one, '--payload-size', '64'], { cwd });
    assert.equal(a.code, 0, a.stderr + a.stdout);
    const [first] = runsIn(join(cwd, 'res'));
    assert.ok(first);
    const b = await runCli(
      [...one, '--payload-size', '300', '--encoding', 'binary', '--topic', 'other/{deviceId}'],
      { cwd },
    );
    assert.equal(b.code, 0, b.stderr + b.stdout);
    const second = runsIn(join(cwd, 'res')).find((r) => r !== first) as string;
    const sb = summaryOf(join(cwd, 'res', second));
    assert.equal(sb.scenario.payloadSizeBytes, 300);
    assert.equal(sb.scenario.encoding, 'binary');
    assert.equal(sb.scenario.topic, 'other/{deviceId}');
    const c = await runCli(['compare', join('res', first), join('res', second)], { cwd });
    assert.match(
      c.stdout,
      /different scenarios: .*topic fleetload\/\{runId\}\/\{deviceId\} → other\/\{deviceId\}/,
    );
    assert.match(c.stdout, /encoding json → binary/);
    assert.match(c.stdout, /payload bytes 64 → 300/);
  });
});
