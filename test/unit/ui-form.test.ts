import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { parseRunArgs } from '../../src/cli/args.js';
import { loadScenario } from '../../src/scenario/load.js';
import { scenarioJsonSchema } from '../../src/scenario/schema.js';
import { UI_CLIENT_JS } from '../../src/web/ui-client.js';
import {
  type FormField,
  formFlags,
  formModel,
  isSecretKey,
  prepareRun,
  runEnv,
  shellWord,
  UI_OWNED_KEYS,
} from '../../src/web/ui-form.js';
import { renderUiPage } from '../../src/web/ui-page.js';
import { tmpDir } from '../helpers/process.js';

/**
 * The New test form of `fleetload ui` is the scenario schema: every key but the UI's own is a field, typed by the
 * schema; what the form sends is checked by the CLI's loader (its messages), and the shown command and YAML
 * reproduce the run without a secret in them.
 */

function fields(): FormField[] {
  return formModel().groups.flatMap((g) => g.fields);
}
const field = (key: string): FormField => {
  const f = fields().find((x) => x.key === key);
  assert.ok(f, `no field ${key}`);
  return f;
};

describe('form model from the scenario schema', () => {
  test('every key of the JSON schema is a field exactly once, but the UI-owned ones', () => {
    const keys = Object.keys((scenarioJsonSchema() as { properties: Record<string, unknown> }).properties);
    const formKeys = fields().map((f) => f.key);
    assert.deepEqual(
      [...formKeys].sort(),
      keys.filter((k) => !UI_OWNED_KEYS.includes(k)).sort(),
      'the form has the schema keys',
    );
    assert.equal(new Set(formKeys).size, formKeys.length, 'no key twice');
    for (const k of UI_OWNED_KEYS) assert.ok(keys.includes(k), `${k} is a schema key`);
  });

  test('common fields first, in order; TLS in the second group; the rest under more', () => {
    const [common, connection, more] = formModel().groups;
    assert.deepEqual(
      common?.fields.map((f) => f.key),
      ['host', 'devices', 'spawnRate', 'runTime', 'interval', 'qos', 'mqttVersion', 'thresholds'],
    );
    for (const k of ['ca', 'cert', 'key', 'insecure', 'servername', 'tlsVersion', 'username', 'password'])
      assert.ok(
        connection?.fields.some((f) => f.key === k),
        k,
      );
    assert.equal(more?.id, 'more');
    assert.ok(more?.fields.some((f) => f.key === 'grace'));
    assert.ok(more?.fields.some((f) => f.key === 'workers'));
  });

  test('inputs follow the schema: enums, booleans, lists, numbers, secrets; defaults and flags', () => {
    assert.deepEqual(field('qos').options, ['0', '1', '2']);
    assert.equal(field('qos').default, '1');
    assert.equal(field('mqttVersion').input, 'select');
    assert.deepEqual([...(field('mqttVersion').options ?? [])].sort(), ['3.1.1', '5']);
    assert.deepEqual(field('consumer').options, ['mqtt', 'nats', 'eventhubs', 'none']);
    assert.equal(field('insecure').input, 'checkbox');
    assert.equal(field('tlsVersion').input, 'select');
    assert.deepEqual([...(field('tlsVersion').options ?? [])].sort(), ['1.2', '1.3', 'auto']);
    assert.equal(field('thresholds').input, 'list');
    assert.equal(field('thresholds').flag, 'threshold');
    assert.equal(field('devices').input, 'number');
    assert.equal(field('devices').default, '100');
    assert.equal(field('devices').min, 1);
    assert.equal(field('runTime').input, 'text');
    assert.equal(field('runTime').default, '30s');
    assert.equal(field('spawnRate').flag, 'spawn-rate');
    // workers takes a number or "auto": free text, not a select
    assert.equal(field('workers').input, 'text');
    for (const k of ['password', 'deviceKey', 'groupKey', 'influxToken', 'eventhubConnectionString'])
      assert.equal(field(k).input, 'secret', k);
    assert.equal(field('host').input, 'text');
    assert.match(field('host').description ?? '', /broker URL/);
  });

  test('the UI’s FLEETLOAD_* variables are the defaults shown, secrets as ***', () => {
    const model = formModel({
      FLEETLOAD_DEVICES: '7',
      FLEETLOAD_PASSWORD: 'env-secret',
      FLEETLOAD_HOST: 'mqtt://u:url-secret@h:1883',
    });
    const f = (k: string) => model.groups.flatMap((g) => g.fields).find((x) => x.key === k);
    assert.equal(f('devices')?.default, '7');
    assert.equal(f('devices')?.fromEnv, 'FLEETLOAD_DEVICES');
    assert.equal(f('password')?.default, '***');
    assert.equal(f('host')?.default, 'mqtt://u:***@h:1883');
    assert.equal(f('spawnRate')?.fromEnv, undefined);
    assert.doesNotMatch(JSON.stringify(model), /env-secret|url-secret/);
  });

  test('isSecretKey is redact.ts: secret-named keys only', () => {
    assert.ok(isSecretKey('password'));
    assert.ok(isSecretKey('storageConnectionString'));
    assert.ok(!isSecretKey('host'));
    assert.ok(!isSecretKey('devices'));
  });
});

describe('form values → flags, as the command line converts them', () => {
  test('text converts per kind; empty and unticked fields are not given', () => {
    const { flags, problems } = formFlags({
      devices: '5',
      runTime: '10s',
      qos: '0',
      insecure: false,
      thresholds: 'e2e.p99<500\nloss<1%\n',
      topic: '',
      host: '  ',
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(flags, { devices: 5, runTime: '10s', qos: 0, thresholds: ['e2e.p99<500', 'loss<1%'] });
    // the same as the flags
    assert.deepEqual(
      flags,
      parseRunArgs([
        '-u',
        '5',
        '-t',
        '10s',
        '--qos',
        '0',
        '--threshold',
        'e2e.p99<500',
        '--threshold',
        'loss<1%',
      ]).flags,
    );
  });

  test('problems are worded as the flags’: not a number, unknown key, a UI-owned key, a bad box', () => {
    const { problems } = formFlags({ devices: 'many', nope: '1', out: '/tmp', insecure: 'yes' });
    assert.deepEqual(problems, [
      '--devices: "many" is not a number',
      '"nope": not a field of the form',
      '"out": not a field of the form',
      '--insecure: a box is ticked or not (true/false), not "yes"',
    ]);
    assert.deepEqual(formFlags([1]).problems, ['the form must be sent as a JSON object of field → text']);
  });
});

describe('prepareRun: the CLI loader checks it; command and YAML reproduce it, secrets never shown', () => {
  const ctx = (cwd: string) => ({ env: {}, cwd, out: join(cwd, 'res') });

  test('a problem is the CLI’s message, with the flag it came from', () => {
    const cwd = tmpDir();
    const r = prepareRun({ devices: '0', runTime: '5' }, ctx(cwd));
    assert.ok('problems' in r && !('argv' in r));
    assert.deepEqual(r.problems, [
      'devices: must be at least 1 (from --devices)',
      'runTime: "5" has no unit; write 5s for seconds or 5ms for milliseconds (from --run-time)',
    ]);
    // the command and YAML are shown anyway, to fix and copy
    assert.match(r.command ?? '', /^fleetload run --devices 0 --run-time 5 --out /);
    assert.match(r.yaml ?? '', /^devices: 0$/m);
    // the same words as `fleetload run -u 0 -t 5`
    assert.throws(
      () => loadScenario({ flags: parseRunArgs(['-u', '0', '-t', '5']).flags, env: {}, cwd }),
      (e: Error) => e.message === r.problems.join('; '),
    );
  });

  test('a good form: argv for the child (no secret), secrets in env, the shown command and YAML redacted', () => {
    const cwd = tmpDir();
    const r = prepareRun(
      {
        host: 'mqtt://alice:pw-in-url@broker.example:1883',
        username: 'alice',
        password: 'hunter2-secret',
        devices: '3',
        thresholds: 'e2e.p99<500',
        topic: "t/{deviceId}/it's",
      },
      ctx(cwd),
    );
    assert.ok('argv' in r, JSON.stringify(r));
    assert.equal(r.argv[0], 'run');
    const all = [...r.argv, r.command, r.yaml].join('\n');
    assert.doesNotMatch(all, /hunter2|pw-in-url/, 'no secret in argv, command or YAML');
    assert.equal(r.secretEnv.FLEETLOAD_PASSWORD, 'hunter2-secret');
    assert.equal(r.secretEnv.FLEETLOAD_HOST, 'mqtt://alice:pw-in-url@broker.example:1883');
    assert.ok(r.argv.includes('--devices=3'));
    assert.ok(r.argv.includes('--threshold=e2e.p99<500'));
    assert.ok(r.argv.includes(`--run-id=${r.runId}`));
    assert.ok(r.argv.includes(`--out=${join(cwd, 'res')}`));
    assert.ok(r.argv.includes('--web-host=127.0.0.1') && r.argv.includes('--web-port=0'));
    assert.match(r.command, /^fleetload run /);
    assert.match(r.command, /--password '\*\*\*'/);
    assert.match(r.command, /--topic 't\/\{deviceId\}\/it'\\''s'/);
    // the YAML is a scenario file of what was given
    const y = parse(r.yaml) as Record<string, unknown>;
    assert.equal(y.devices, 3);
    assert.equal(y.password, '***');
    assert.deepEqual(y.thresholds, ['e2e.p99<500']);
    // the child's arguments, with the secrets from env, load to the same scenario
    const args = parseRunArgs(r.argv.slice(1));
    const child = loadScenario({ flags: args.flags, env: r.secretEnv, cwd });
    assert.equal(child.scenario.password, 'hunter2-secret');
    assert.equal(child.scenario.host, 'mqtt://alice:pw-in-url@broker.example:1883');
    assert.equal(child.scenario.runId, r.runId);
    assert.equal(child.scenario.devices, 3);
    assert.equal(child.scenario.webPort, 0);
  });

  test('the environment’s FLEETLOAD_* apply (below the form), but never the UI-owned ones', () => {
    const cwd = tmpDir();
    const env = {
      FLEETLOAD_DEVICES: '7',
      FLEETLOAD_HEADLESS: 'true',
      FLEETLOAD_WEB_PORT: '1',
      FLEETLOAD_OUT: '/nowhere',
      FLEETLOAD_JSON: '1',
      PATH: '/bin',
    };
    assert.deepEqual(runEnv(env), { FLEETLOAD_DEVICES: '7', PATH: '/bin' });
    const r = prepareRun({}, { env, cwd, out: join(cwd, 'res') });
    assert.ok('scenario' in r);
    assert.equal(r.scenario.devices, 7);
    assert.equal(r.scenario.headless, false);
    assert.equal(r.scenario.webPort, 0);
    assert.equal(r.scenario.json, false);
    assert.equal(r.scenario.out, join(cwd, 'res'));
    const again = prepareRun({ devices: '2' }, { env, cwd, out: join(cwd, 'res') });
    assert.ok('scenario' in again);
    assert.equal(again.scenario.devices, 2, 'the form is above the environment, as flags are');
  });

  test('file settings are checked as run checks them (a missing CA file)', () => {
    const cwd = tmpDir();
    mkdirSync(join(cwd, 'certs'));
    writeFileSync(join(cwd, 'certs', 'empty.pem'), '');
    const r = prepareRun({ host: 'mqtts://broker.example:8883', ca: 'certs/missing.pem' }, ctx(cwd));
    assert.ok('problems' in r);
    assert.match(r.problems.join('\n'), /^ca: .*certs\/missing\.pem/m);
  });

  test('file fields are confined to the UI’s folder and the results folder’s parent; links out are refused', () => {
    const cwd = tmpDir();
    const outside = tmpDir();
    writeFileSync(join(outside, 'hostname'), 'vm-host-17\n');
    writeFileSync(join(cwd, 'p.json'), '{"t": {{random 1 2}}}');
    symlinkSync(join(outside, 'hostname'), join(cwd, 'link.json'));
    const sibling = join(cwd, 'sibling.json');
    writeFileSync(sibling, '{}');
    const refused = (values: Record<string, string>, c = ctx(cwd)) => {
      const r = prepareRun(values, c);
      return 'problems' in r ? r.problems : [];
    };
    for (const [key, flag, value] of [
      ['payload', 'payload', join(outside, 'hostname')],
      ['payload', 'payload', '../../../../etc/hostname'],
      ['payload', 'payload', 'link.json'],
      ['ca', 'ca', join(outside, 'hostname')],
      ['cert', 'cert', `${outside}/{deviceId}.pem`],
      ['consumerKey', 'consumer-key', join(outside, 'hostname')],
    ] as const) {
      const p = refused({ [key]: value });
      assert.equal(p.length, 1, `${key}=${value}: ${p.join('; ')}`);
      assert.match(
        p[0] ?? '',
        new RegExp(`^${key}: .* is outside the folders fleetload ui reads files from`),
      );
      assert.match(p[0] ?? '', new RegExp(`\\(from --${flag}\\)$`));
      assert.doesNotMatch(p[0] ?? '', /vm-host/, 'never what the file holds');
    }
    assert.deepEqual(refused({ payload: 'p.json' }), [], 'a file of the UI’s folder');
    assert.deepEqual(refused({ payload: join(cwd, 'p.json') }), [], 'absolute, inside');
    // the results folder's parent: a UI started elsewhere with --out next to the files
    const other = tmpDir();
    assert.deepEqual(refused({ payload: sibling }, { env: {}, cwd: other, out: join(cwd, 'res') }), []);
  });

  test('shellWord quotes only what the shell would split or expand', () => {
    assert.equal(shellWord('mqtt://h:1883'), 'mqtt://h:1883');
    assert.equal(shellWord('e2e.p99<500'), "'e2e.p99<500'");
    assert.equal(shellWord("a'b"), "'a'\\''b'");
    assert.equal(shellWord('$HOME'), "'$HOME'");
  });
});

describe('the UI page', () => {
  test('its script compiles, puts data in with textContent, and the page holds every field of the form', () => {
    assert.doesNotThrow(() => new Function(UI_CLIENT_JS));
    assert.ok(!UI_CLIENT_JS.includes('innerHTML'), 'data goes in with textContent');
    const html = renderUiPage({ nonce: 'n0nce', boot: { version: 't', out: '/tmp/res', form: formModel() } });
    for (const f of fields()) assert.ok(html.includes(`id="f-${f.key}"`), f.key);
    assert.match(html, /<script nonce="n0nce">/);
  });

  test('a value from the environment cannot break out of the page', () => {
    const html = renderUiPage({
      nonce: 'n',
      boot: {
        version: 't',
        out: '</script><b>x',
        form: formModel({ FLEETLOAD_TOPIC: '"><script>alert(1)</script>' }),
      },
    });
    assert.doesNotMatch(html, /<script>alert|<b>x/);
  });
});
