import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * Bad input against the built CLI: exit 2, one line on stderr naming the culprit, nothing on stdout, nothing
 * written. Needs `npm run build` first.
 */

const cli = resolve(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)));

interface Case {
  name: string;
  args: string[];
  /** What stderr (after `fleetload: `) must say. */
  says: RegExp;
  env?: Record<string, string>;
  /** Files written into the working directory first. */
  files?: Record<string, string>;
}

const cases: Case[] = [
  { name: 'unknown flag', args: ['--foo'], says: /unknown flag --foo; see fleetload run --help/ },
  { name: "typo'd flag", args: ['--devics', '5'], says: /unknown flag --devics; did you mean --devices\?/ },
  { name: '-u 0', args: ['-u', '0'], says: /devices: must be at least 1 \(from --devices\)/ },
  { name: '-u -5', args: ['-u', '-5'], says: /devices: must be at least 1 \(from --devices\)/ },
  { name: '-u abc', args: ['-u', 'abc'], says: /--devices: "abc" is not a number/ },
  { name: '-r 0', args: ['-r', '0'], says: /spawnRate: must be greater than 0 \(from --spawn-rate\)/ },
  { name: '-t 10x', args: ['-t', '10x'], says: /runTime: "10x" is not a duration.*\(from --run-time\)/ },
  { name: "-t ''", args: ['-t', ''], says: /runTime: "" is not a duration.*\(from --run-time\)/ },
  { name: '-i 0s', args: ['-i', '0s'], says: /interval: must be at least 1ms \(from --interval\)/ },
  { name: '--qos 3', args: ['--qos', '3'], says: /qos: must be one of 0, 1, 2; got 3 \(from --qos\)/ },
  { name: '--mqtt-version 4', args: ['--mqtt-version', '4'], says: /mqttVersion: must be 3\.1\.1 or 5/ },
  {
    name: '-H http://x',
    args: ['-H', 'http://x'],
    says: /host: scheme "http:" .*not supported.*\(from --host\)/,
  },
  { name: '-H not a url', args: ['-H', 'not a url'], says: /host: "not a url" is not a URL/ },
  {
    name: '-H port out of range',
    args: ['-H', 'mqtt://host:99999'],
    says: /host: port 99999 .*out of range/,
  },
  {
    name: 'unknown topic placeholder',
    args: ['--topic', 'a/{deviceID}'],
    says: /topic: unknown placeholder \{deviceID\}; did you mean \{deviceId\}\? \(from --topic\)/,
  },
  { name: 'unbalanced topic brace', args: ['--topic', 'a/{deviceId'], says: /topic: unbalanced brace/ },
  { name: 'bad run id', args: ['--run-id', 'bad id!'], says: /runId: must start with .*\(from --run-id\)/ },
  {
    name: '--consumer kafka',
    args: ['--consumer', 'kafka'],
    says: /consumer: must be one of mqtt, nats, eventhubs, none; got "kafka"/,
  },
  { name: 'threshold syntax', args: ['--threshold', 'e2e.p99<<5'], says: /e2e\.p99<<5/ },
  { name: 'threshold metric', args: ['--threshold', 'nonsense.p99<5'], says: /nonsense/ },
  {
    name: 'missing scenario file',
    args: ['missing.yaml'],
    says: /cannot read scenario file missing\.yaml: no such file/,
  },
  {
    name: 'YAML unknown key',
    args: ['s.yaml'],
    files: { 's.yaml': 'devices: 5\ndevicez: 3\n' },
    says: /devicez: unknown key; did you mean devices\? \(s\.yaml:2\)/,
  },
  {
    name: 'YAML syntax error',
    args: ['s.yaml'],
    files: { 's.yaml': 'devices: 5\ntopic: [a, b\n' },
    says: /^s\.yaml:\d+/,
  },
  {
    name: 'YAML devices: "many"',
    args: ['s.yaml'],
    files: { 's.yaml': 'devices: "many"\n' },
    says: /devices: must be a number, not "many" \(s\.yaml:1\)/,
  },
  {
    name: 'FLEETLOAD_DEVICES=abc',
    args: [],
    env: { FLEETLOAD_DEVICES: 'abc' },
    says: /devices: "abc" is not a number \(from FLEETLOAD_DEVICES\)/,
  },
  {
    name: 'FLEETLOAD_DEVISES=5 (typo)',
    args: [],
    env: { FLEETLOAD_DEVISES: '5' },
    says: /FLEETLOAD_DEVISES: unknown environment variable; did you mean FLEETLOAD_DEVICES\?/,
  },
  { name: 'two positionals', args: ['a.yaml', 'b.yaml'], says: /unexpected argument "b\.yaml"/ },
  {
    name: '--mqtt-version 5 without --host',
    args: ['--mqtt-version', '5'],
    says: /mqttVersion: 5 needs an external broker.*aedes.*--host/,
  },
  { name: '--payload-size -1', args: ['--payload-size', '-1'], says: /payloadSize: must be at least 0/ },
  {
    name: '--payload missing file',
    args: ['--payload', 'nope.json'],
    says: /payload: cannot read nope\.json: ENOENT/,
  },
  {
    name: '--payload unknown placeholder',
    args: ['--payload', 'p.json'],
    files: { 'p.json': '{"t": {{temperature}}}' },
    says: /payload: p\.json: \{\{temperature\}\}: unknown placeholder "temperature"/,
  },
  {
    name: '--payload sets a measurement field',
    args: ['--payload', 'p.json'],
    files: { 'p.json': '{"seq": 1}' },
    says: /payload: p\.json: the template sets seq: fleetload writes these measurement fields itself/,
  },
  {
    name: '--workers 2',
    args: ['--workers', '2'],
    says: /workers: only 1 local worker is supported in this version/,
  },
  { name: 'missing flag value', args: ['--host'], says: /--host needs a value/ },
  {
    name: 'password without username on 3.1.1',
    args: ['--password', 'pw'],
    says: /password: MQTT 3\.1\.1 does not allow a password without a username.*--username/,
  },
  {
    name: 'bare number duration',
    args: ['-t', '30'],
    says: /runTime: "30" has no unit; write 30s for seconds or 30ms/,
  },
  {
    name: 'stages with --devices',
    args: ['--stage', '10s:100', '-u', '10'],
    says: /devices: stages set the fleet size and the run time; drop --devices or the stages/,
  },
  {
    name: 'bad stage',
    args: ['--stage', '10s'],
    says: /stages\.0: .*a stage is DURATION:DEVICES, e\.g\. 30s:1000/,
  },
  {
    name: '--messages-per-device 0',
    args: ['--messages-per-device', '0'],
    says: /messagesPerDevice: must be at least 1/,
  },
];

function run(cwd: string, args: string[], env: Record<string, string>) {
  // A clean environment: no FLEETLOAD_* from the caller leaks in.
  const base = { PATH: process.env.PATH ?? '', HOME: cwd, NO_COLOR: '1' };
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      [cli, 'run', ...args],
      { cwd, env: { ...base, ...env }, timeout: 15_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

const root = mkdtempSync(join(tmpdir(), 'fleetload-bad-input-'));
before(() => assert.ok(existsSync(cli), `${cli} is missing: run npm run build first`));
after(() => rmSync(root, { recursive: true, force: true }));

describe('fleetload run rejects bad input with exit 2 and one line', { concurrency: 8 }, () => {
  assert.ok(cases.length >= 25);
  cases.forEach((c, i) => {
    test(c.name, async () => {
      const cwd = join(root, String(i));
      mkdirSync(cwd);
      const out = join(cwd, 'out');
      for (const [name, text] of Object.entries(c.files ?? {})) writeFileSync(join(cwd, name), text);

      const r = await run(cwd, [...c.args, '--headless', '--out', out], c.env ?? {});

      assert.equal(r.stdout, '', 'stdout is empty');
      assert.match(
        r.stderr,
        /^fleetload: [^\n]+\n$/,
        `one line starting with "fleetload: ", got:\n${r.stderr}`,
      );
      assert.match(r.stderr.slice('fleetload: '.length), c.says);
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr.trim()})`);
      assert.ok(!existsSync(out) || readdirSync(out).length === 0, 'nothing written to the results folder');
    });
  });
});
