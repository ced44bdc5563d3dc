import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { redactUrl } from '../../src/consumer/source.js';
import { FleetloadError } from '../../src/errors.js';
import { redactText } from '../../src/redact.js';
import {
  expandSourceIps,
  firstNonLocal,
  isLocalAddress,
  outputFileProblem,
  overlongTemplates,
  sourceIpProblem,
} from '../../src/scenario/checks.js';
import { formatDuration, parseDurationMs } from '../../src/scenario/duration.js';
import { MAX_INPUT_FILE_BYTES, outProblem, readInputFile } from '../../src/scenario/files.js';
import { loadScenario, redactSecrets, SCENARIO_OPTIONS } from '../../src/scenario/load.js';
import { MAX_DURATION_MS, scenarioInput, scenarioJsonSchema } from '../../src/scenario/schema.js';
import { compileTemplate, templateProblems, usesPlaceholder } from '../../src/scenario/template.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetload-scenario-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
function yamlFile(text: string): string {
  const name = `s${++fileNo}.yaml`;
  writeFileSync(join(dir, name), text);
  return name;
}

const load = (o: { file?: string; flags?: Record<string, unknown>; env?: Record<string, string> }) =>
  loadScenario({ flags: {}, env: {}, cwd: dir, now: new Date('2030-01-02T03:04:05Z'), ...o });

function problemsOf(fn: () => unknown, code = 'E_SCENARIO'): readonly string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FleetloadError, `expected FleetloadError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e.problems;
  }
  assert.fail('expected a FleetloadError');
}

describe('durations', () => {
  test('parses units, combinations and fractions; a bare number has no unit and is refused (except 0)', () => {
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('30s'), 30_000);
    assert.equal(parseDurationMs('5m'), 300_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs(' 2s '), 2000);
    assert.equal(parseDurationMs('250'), undefined);
    assert.equal(parseDurationMs(42), undefined);
    assert.equal(parseDurationMs('0'), 0);
    assert.equal(parseDurationMs(0), 0);
  });
  test('rejects what is not a duration', () => {
    for (const bad of ['', '10x', 's', '-5s', '1h 30m', '5 s', 'abc', '1.s']) {
      assert.equal(parseDurationMs(bad), undefined, bad);
    }
    assert.equal(parseDurationMs(-1), undefined);
    assert.equal(parseDurationMs(Number.NaN), undefined);
  });
  test('formats back to the largest whole unit', () => {
    assert.equal(formatDuration(3_600_000), '1h');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatDuration(0), '0ms');
  });
});

describe('templates', () => {
  test('compile placeholders with zero padding', () => {
    const t = compileTemplate('devices/{deviceId}/n{index:4}/{runId}');
    assert.equal(t({ deviceId: 'dev-1', index: 7, runId: 'r1' }), 'devices/dev-1/n0007/r1');
    assert.equal(compileTemplate('plain')({}), 'plain');
  });
  test('unknown placeholder gets a case-insensitive hint, or the list of known ones', () => {
    assert.deepEqual(templateProblems('a/{deviceID}', ['deviceId', 'index']), [
      'unknown placeholder {deviceID}; did you mean {deviceId}?',
    ]);
    assert.match(templateProblems('{nope}', ['deviceId', 'index'])[0] ?? '', /known: \{deviceId\} \{index\}/);
  });
  test('unbalanced braces are a problem', () => {
    assert.match(templateProblems('a/{deviceId', ['deviceId'])[0] ?? '', /unbalanced brace/);
    assert.match(templateProblems('a/deviceId}', ['deviceId'])[0] ?? '', /unbalanced brace/);
    assert.deepEqual(templateProblems('a/{deviceId}/{index:6}', ['deviceId', 'index']), []);
  });
  test('usesPlaceholder', () => {
    assert.equal(usesPlaceholder('a/{deviceId}', 'deviceId'), true);
    assert.equal(usesPlaceholder('a/{runId}', 'deviceId'), false);
  });
});

describe('loadScenario', () => {
  test('defaults only: every documented default, runId from the clock', () => {
    const { scenario, resolved } = load({});
    assert.equal(scenario.host, undefined);
    assert.equal(scenario.devices, 100);
    assert.equal(scenario.spawnRate, 50);
    assert.equal(scenario.runTimeMs, 30_000);
    assert.equal(scenario.intervalMs, 1000);
    assert.equal(scenario.qos, 1);
    assert.equal(scenario.consumerQos, 1);
    assert.equal(scenario.mqttVersion, '3.1.1');
    assert.equal(scenario.topic, 'fleetload/{runId}/{deviceId}');
    assert.equal(scenario.out, './fleetload-results');
    assert.equal(scenario.consumer, 'mqtt');
    assert.equal(scenario.webPort, 8089);
    assert.equal(scenario.workers, 1);
    assert.deepEqual(scenario.thresholds, []);
    assert.match(scenario.runId, /^20300102-030405-[a-z0-9]+$/);
    assert.equal(
      'runId' in resolved,
      false,
      'scenario.yaml does not pin the run id: a re-run gets a new one',
    );
    assert.equal(resolved.runTime, '30s');
    assert.equal('host' in resolved, false, 'undefined keys are left out');
  });

  test('precedence: flags > env > file > defaults, for the same key', () => {
    const file = yamlFile('devices: 10\nspawnRate: 5\nrunTime: 1m\ninterval: 2s\n');
    const env = { FLEETLOAD_DEVICES: '20', FLEETLOAD_SPAWN_RATE: '7', FLEETLOAD_RUN_TIME: '2m' };
    const { scenario, resolved } = load({ file, env, flags: { devices: 30 } });
    assert.equal(scenario.devices, 30, 'flag beats env and file');
    assert.equal(scenario.spawnRate, 7, 'env beats file');
    assert.equal(scenario.runTimeMs, 120_000, 'env beats file');
    assert.equal(scenario.intervalMs, 2000, 'file beats default');
    assert.equal(scenario.qos, 1, 'default');
    assert.equal(resolved.devices, 30);
    assert.equal(resolved.runTime, '2m');
  });

  test('env values are converted to what each key needs', () => {
    const { scenario } = load({
      env: {
        FLEETLOAD_HOST: 'mqtt://broker:1883',
        FLEETLOAD_QOS: '2',
        FLEETLOAD_HEADLESS: 'true',
        FLEETLOAD_JSON: '0',
        FLEETLOAD_MQTT_VERSION: '5',
        FLEETLOAD_THRESHOLD: 'e2e.p99<500, loss<0.1%\npublishAck.p50<20',
        FLEETLOAD_WEB_PORT: '',
        HOME: '/ignored',
      },
    });
    assert.equal(scenario.host, 'mqtt://broker:1883');
    assert.equal(scenario.qos, 2);
    assert.equal(scenario.headless, true);
    assert.equal(scenario.json, false);
    assert.equal(scenario.mqttVersion, '5');
    assert.deepEqual(scenario.thresholds, ['e2e.p99<500', 'loss<0.1%', 'publishAck.p50<20']);
    assert.equal(scenario.webPort, 8089, 'an empty variable is ignored');
  });

  test('every problem is reported, each with its path and source', () => {
    const file = yamlFile('devices: 0\ntopic: a/{deviceID}\nqos: 3\nrunTime: 10x\n');
    const problems = problemsOf(() =>
      load({
        file,
        env: { FLEETLOAD_SPAWN_RATE: '0', FLEETLOAD_WEB_PORT: 'abc' },
        flags: { interval: '0s', consumer: 'kafka', runId: 'bad id!' },
      }),
    );
    const expected = [
      /^devices: must be at least 1 \(s\d+\.yaml:1\)$/,
      /^topic: unknown placeholder \{deviceID\}; did you mean \{deviceId\}\? \(s\d+\.yaml:2\)$/,
      /^qos: must be one of 0, 1, 2; got 3 \(s\d+\.yaml:3\)$/,
      /^runTime: "10x" is not a duration.* \(s\d+\.yaml:4\)$/,
      /^spawnRate: must be greater than 0 \(from FLEETLOAD_SPAWN_RATE\)$/,
      /^webPort: "abc" is not a number \(from FLEETLOAD_WEB_PORT\)$/,
      /^interval: must be at least 1ms \(from --interval\)$/,
      /^consumer: must be one of mqtt, nats, eventhubs, none; got "kafka" \(from --consumer\)$/,
      /^runId: must start with a letter or digit.* \(from --run-id\)$/,
    ];
    for (const re of expected)
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re} in:\n${problems.join('\n')}`,
      );
    assert.equal(problems.length, expected.length, problems.join('\n'));
  });

  test('unknown keys in the YAML file are rejected with a hint and a line', () => {
    const file = yamlFile('devices: 5\nspawnrate: 3\nbogus: 1\n');
    const problems = problemsOf(() => load({ file }));
    assert.deepEqual(
      problems.map((p) => p.replace(file, 'F')),
      ['spawnrate: unknown key; did you mean spawnRate? (F:2)', 'bogus: unknown key (F:3)'],
    );
  });

  test('a scenario file in a subfolder: its relative paths are the folder’s (every file setting), flags the cwd’s', () => {
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(
      join(dir, 'sub', 'tls.yaml'),
      [
        'host: mqtts://broker.example:8883',
        'ca: ca.pem',
        "cert: 'c/{deviceId}.pem'",
        "key: 'c/{deviceId}.key'",
        'consumerCert: cc.pem',
        'consumerKey: ck.pem',
        'payload: p.json',
        '',
      ].join('\n'),
    );
    const problems = problemsOf(() => load({ file: 'sub/tls.yaml' })).join('\n');
    for (const path of ['sub/ca.pem', 'sub/c/dev-000000.pem', 'sub/cc.pem', 'sub/p.json']) {
      assert.ok(problems.includes(`${path}`), `${path} in:\n${problems}`);
    }
    assert.doesNotMatch(problems, / ca\.pem|cannot read p\.json/);
    const flag = problemsOf(() => load({ file: 'sub/tls.yaml', flags: { ca: 'ca.pem' } })).join('\n');
    assert.match(flag, /cannot read CA file ca\.pem: no such file \(from --ca\)/);

    writeFileSync(
      join(dir, 'sub', 'hub.yaml'),
      "preset: azure-iot-hub\nhub: h.azure-devices.net\ndeviceKey: '@keys/{deviceId}.key'\n",
    );
    mkdirSync(join(dir, 'sub', 'keys'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'keys', 'dev-000000.key'), Buffer.alloc(32, 7).toString('base64'));
    const { scenario, resolved } = load({ file: 'sub/hub.yaml' });
    assert.equal(scenario.deviceKey, '@sub/keys/{deviceId}.key');
    // for scenario.yaml: absolute, so it runs from the results folder too (then redacted there as a key setting)
    assert.equal(resolved.deviceKey, `@${join(dir, 'sub/keys/{deviceId}.key')}`);
  });

  test('a YAML typo "device:" suggests devices, the nearest name, not deviceKey or deviceId', () => {
    const file = yamlFile('device: 5\n');
    assert.deepEqual(
      problemsOf(() => load({ file })).map((p) => p.replace(file, 'F')),
      ['device: unknown key; did you mean devices? (F:1)'],
    );
    const key = yamlFile('deviceKe: abc\n');
    assert.match(problemsOf(() => load({ file: key }))[0] ?? '', /did you mean deviceKey\?/);
  });

  test('YAML types are checked: devices: "many"', () => {
    const file = yamlFile('devices: many\n');
    assert.deepEqual(
      problemsOf(() => load({ file })),
      [`devices: must be a number, not "many" (${file}:1)`],
    );
  });

  test('a nested problem names the path and the line of the element', () => {
    const file = yamlFile('thresholds:\n  - e2e.p99<5\n  - ""\n');
    assert.deepEqual(
      problemsOf(() => load({ file })),
      [`thresholds.1: must not be empty (${file}:3)`],
    );
  });

  test('YAML syntax error is E_FILE naming file:line', () => {
    const file = yamlFile('devices: 5\ntopic: [a, b\n');
    const [p] = problemsOf(() => load({ file }), 'E_FILE');
    assert.match(p ?? '', new RegExp(`^${file}:\\d+:\\d+: `));
  });

  test('a scenario file that is not a mapping is E_FILE', () => {
    const file = yamlFile('- devices: 5\n');
    assert.match(problemsOf(() => load({ file }), 'E_FILE')[0] ?? '', /must be a mapping/);
  });

  test('an empty scenario file (or only comments) is E_FILE: a file that says nothing is a mistake', () => {
    for (const text of ['', '# just a comment\n', '\n\n']) {
      const file = yamlFile(text);
      assert.deepEqual(
        problemsOf(() => load({ file }), 'E_FILE'),
        [`${file}: the file is empty; a scenario file is a mapping of settings, e.g. "devices: 100"`],
      );
    }
  });

  test('missing file is E_FILE naming the path', () => {
    assert.deepEqual(
      problemsOf(() => load({ file: 'nope/missing.yaml' }), 'E_FILE'),
      ['cannot read scenario file nope/missing.yaml: no such file'],
    );
  });

  test('a FLEETLOAD_* typo is refused with a hint; an unrelated FLEETLOAD_* variable is ignored with a warning', () => {
    assert.deepEqual(
      problemsOf(() => load({ env: { FLEETLOAD_HOTS: 'x', FLEETLOAD_BOGUS: '1' } })),
      ['FLEETLOAD_HOTS: unknown environment variable; did you mean FLEETLOAD_HOST?'],
    );
    const { warnings } = load({ env: { FLEETLOAD_REQUIRE_SERVICES: '1' } });
    assert.deepEqual(warnings, ['ignoring FLEETLOAD_REQUIRE_SERVICES: not a fleetload setting']);
  });

  test('host URLs: scheme, syntax and port are checked', () => {
    const hostProblem = (host: string) => problemsOf(() => load({ flags: { host } }))[0] ?? '';
    assert.match(hostProblem('http://x'), /^host: scheme "http:" .* not supported.*\(from --host\)$/);
    assert.match(hostProblem('not a url'), /^host: "not a url" is not a URL/);
    assert.match(hostProblem('mqtt://host:99999'), /^host: port 99999 .* out of range/);
    assert.match(hostProblem('mqtt://'), /has no host name/);
    for (const ok of ['mqtt://h:1883', 'mqtts://h', 'ws://h:8080/mqtt', 'wss://u:p@h/mqtt']) {
      assert.equal(load({ flags: { host: ok } }).scenario.host, ok);
    }
  });

  test('mqttVersion 5 needs --host; YAML number 5 is accepted', () => {
    assert.match(
      problemsOf(() => load({ flags: { mqttVersion: '5' } }))[0] ?? '',
      /^mqttVersion: 5 needs an external broker: the embedded broker \(aedes\) speaks MQTT 3\.1\.1 only; pass --host/,
    );
    const file = yamlFile('mqttVersion: 5\nhost: mqtt://mosquitto:1883\n');
    assert.equal(load({ file }).scenario.mqttVersion, '5');
  });

  test('workers: a whole number 1..64 or auto (one per core)', () => {
    assert.equal(load({ flags: { workers: '2' } }).scenario.workers, 2);
    assert.equal(load({ flags: { workers: 'auto' } }).scenario.workers, availableParallelism());
    for (const bad of ['0', '65', 'many', '1.5']) {
      assert.deepEqual(
        problemsOf(() => load({ flags: { workers: bad } })),
        ['workers: must be a whole number 1..64 or auto (one per core) (from --workers)'],
        bad,
      );
    }
  });

  test('publish topic must not contain wildcards', () => {
    assert.match(
      problemsOf(() => load({ flags: { topic: 'a/+/b' } }))[0] ?? '',
      /^topic: .*must not contain \+/,
    );
  });

  test('a duration problem is reported once', () => {
    assert.equal(problemsOf(() => load({ flags: { runTime: '10x' } })).length, 1);
    assert.deepEqual(
      problemsOf(() => load({ flags: { runTime: '0s' } })),
      ['runTime: must be greater than 0 (from --run-time)'],
    );
  });

  test('every flag has an env variable named after it', () => {
    const envs = SCENARIO_OPTIONS.map((o) => o.env);
    for (const e of ['FLEETLOAD_HOST', 'FLEETLOAD_DEVICES', 'FLEETLOAD_SPAWN_RATE', 'FLEETLOAD_RUN_TIME']) {
      assert.ok(envs.includes(e), e);
    }
    assert.ok(envs.includes('FLEETLOAD_THRESHOLD'));
    assert.deepEqual(SCENARIO_OPTIONS.map((o) => o.key).sort(), Object.keys(scenarioInput.shape).sort());
  });
});

describe('redactSecrets', () => {
  test('secret keys at any depth, URL passwords, connection-string keys', () => {
    const input = {
      host: 'mqtt://user:s3cret@broker:1883',
      username: 'user',
      password: 'pw',
      nested: {
        Token: 't',
        list: [{ sasToken: 'x', connectionString: 'Endpoint=sb://e/;SharedAccessKey=k' }],
      },
      secret: ['a', 'b'],
      note: 'Endpoint=sb://e/;SharedAccessKeyName=n;SharedAccessKey=abc;EntityPath=p',
      devices: 5,
    };
    assert.deepEqual(redactSecrets(input), {
      host: 'mqtt://user:***@broker:1883',
      username: 'user',
      password: '***',
      nested: { Token: '***', list: [{ sasToken: '***', connectionString: '***' }] },
      secret: ['***', '***'],
      note: 'Endpoint=sb://e/;SharedAccessKeyName=n;SharedAccessKey=***;EntityPath=p',
      devices: 5,
    });
    assert.equal(input.password, 'pw', 'the input is not modified');
  });
  test('URLs without a password are left alone', () => {
    assert.equal(redactSecrets('mqtt://user@h:1883'), 'mqtt://user@h:1883');
    assert.equal(redactSecrets('mqtt://h:1883'), 'mqtt://h:1883');
  });
});

describe('JSON Schema', () => {
  test('describes every key and rejects others', () => {
    const schema = scenarioJsonSchema() as {
      type: string;
      properties: Record<string, { default?: unknown }>;
      additionalProperties: boolean;
      required?: string[];
    };
    assert.equal(schema.type, 'object');
    assert.equal(schema.additionalProperties, false);
    for (const k of ['devices', 'host', 'spawnRate', 'runTime', 'interval', 'topic', 'thresholds', 'qos']) {
      assert.ok(k in schema.properties, k);
    }
    assert.equal(schema.properties.devices?.default, 100);
    assert.deepEqual(schema.required ?? [], [], 'every key is optional in the file');
  });
});

test('sockets: a warning when TCP or TLS devices cannot use raw handles on this Node, none otherwise', async () => {
  const { socketsNote } = await import('../../src/cli/commands.js');
  const load = (flags: Record<string, unknown>) =>
    loadScenario({ flags, env: {}, cwd: process.cwd() }).scenario;
  assert.match(socketsNote(load({}), false) ?? '', /no raw TCP handle API; devices use net\.Socket/);
  assert.match(socketsNote(load({ host: 'mqtt://127.0.0.1:1883' }), false) ?? '', /net\.Socket/);
  assert.equal(socketsNote(load({}), true), undefined);
  assert.equal(socketsNote(load({ sockets: 'node' }), false), undefined, 'asked for net.Socket');
  const tlsHost = load({ host: 'mqtts://127.0.0.1:8883', insecure: true });
  assert.match(socketsNote(tlsHost, false) ?? '', /no raw TLS handle API; devices use tls\.connect/);
  assert.match(socketsNote(tlsHost, true, false) ?? '', /tls\.connect/);
  assert.equal(socketsNote(tlsHost, true, true), undefined);
  assert.equal(
    socketsNote(tlsHost, false, true),
    undefined,
    'TLS on raw handles: the TCP note is not for it',
  );
  assert.equal(socketsNote(load({ host: 'wss://127.0.0.1:443/mqtt' }), false, false), undefined, 'WebSocket');
});

describe('input checks (issue 12)', () => {
  test('URL passwords are redacted whole, also with an unencoded @ and in text that is not a URL', () => {
    assert.equal(redactText('mqtt://alice:s3cret@retX99@host:1883/x'), 'mqtt://alice:***@host:1883/x');
    assert.equal(redactText('see mqtt://u:p@h:99999 here'), 'see mqtt://u:***@h:99999 here');
    assert.equal(redactText('nats://a:b@h1,nats://c:d@h2'), 'nats://a:***@h1,nats://c:***@h2');
    assert.equal(redactText('mqtt://alice@corp:pw@host'), 'mqtt://alice@corp:***@host');
    assert.equal(
      redactText('mqtt://host:1883/a@b'),
      'mqtt://host:1883/a@b',
      'an @ in the path is no password',
    );
    assert.equal(redactText('mqtt://alice@host:1883'), 'mqtt://alice@host:1883');
    // scenario.yaml: the resolved host goes through redactSecrets
    assert.deepEqual(redactSecrets({ host: 'mqtts://alice:s3cret@retX99@h:8883' }), {
      host: 'mqtts://alice:***@h:8883',
    });
    // the consumer's helper: WHATWG parsing, and no raw echo when the URL does not parse
    assert.equal(redactUrl('mqtt://alice:s3cret@retX99@h:1883'), 'mqtt://alice:***@h:1883');
    assert.equal(redactUrl('mqtt://alice:s3cret@h:99999'), 'mqtt://alice:***@h:99999');
  });

  test('source IPs: syntax, prefix length, and never more addresses than devices', () => {
    assert.equal(sourceIpProblem('127.0.0.2'), undefined);
    assert.equal(sourceIpProblem('::1'), undefined);
    assert.equal(sourceIpProblem('127.0.1.0/28'), undefined);
    assert.match(sourceIpProblem('127.0.0.1/33') ?? '', /prefix length must be 0 to 32/);
    assert.match(sourceIpProblem('300.0.0.1') ?? '', /not an IP address/);
    assert.match(sourceIpProblem('fe80::/64') ?? '', /IPv6 ranges are not supported/);
    assert.deepEqual(expandSourceIps(['127.0.1.0/30']), ['127.0.1.0', '127.0.1.1', '127.0.1.2', '127.0.1.3']);
    // a /8 for 2 devices: 2 addresses, computed, not 16M listed
    assert.deepEqual(expandSourceIps(['10.0.0.0/8'], 2), ['10.0.0.0', '10.0.0.1']);
    assert.equal(expandSourceIps(['0.0.0.0/0'], 3).length, 3);
    assert.deepEqual(expandSourceIps(['127.0.0.2, 127.0.0.3', '127.0.0.4'], 2), ['127.0.0.2', '127.0.0.3']);
    const s = load({ flags: { sourceIp: ['127.0.0.0/8'], devices: 5 } }).scenario;
    assert.deepEqual(s.sourceIps, ['127.0.0.0', '127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  test('source IPs must belong to this machine (loopback networks count whole)', () => {
    const ifaces = [
      { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', internal: true },
      { address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', internal: false },
      { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', internal: true },
    ];
    assert.ok(isLocalAddress('127.0.5.9', ifaces));
    assert.ok(isLocalAddress('192.168.1.20', ifaces));
    assert.ok(isLocalAddress('::1', ifaces));
    assert.ok(!isLocalAddress('192.168.1.21', ifaces), 'same subnet, but not an address of ours');
    assert.ok(!isLocalAddress('10.0.0.1', ifaces));
    assert.equal(firstNonLocal(['127.0.0.2', '8.8.8.8'], ifaces), '8.8.8.8');
    assert.deepEqual(
      problemsOf(() => load({ flags: { sourceIp: ['203.0.113.7'] } })),
      [
        'sourceIp: 203.0.113.7 is not an address of this machine (see ip addr); give local addresses only (from --source-ip)',
      ],
    );
  });

  test('durations are capped at 7 days; reconnect min ≤ max', () => {
    assert.deepEqual(
      problemsOf(() => load({ flags: { runTime: '169h' } })),
      ['runTime: "169h" is too long: at most 168h (7 days) (from --run-time)'],
    );
    assert.equal(load({ flags: { runTime: '168h' } }).scenario.runTimeMs, MAX_DURATION_MS);
    assert.deepEqual(
      problemsOf(() => load({ flags: { reconnectMin: '10m', reconnectMax: '1s' } })),
      [
        'reconnectMin: must not be above reconnectMax (1000 ms); lower --reconnect-min or raise --reconnect-max (from --reconnect-min)',
      ],
    );
    assert.equal(load({ flags: { reconnectMin: '1s', reconnectMax: '1s' } }).scenario.reconnectMinMs, 1000);
  });

  test('templates: unknown placeholders in username and command topic; MQTT length limit', () => {
    assert.match(
      problemsOf(() => load({ flags: { username: '{user}' } }))[0] ?? '',
      /^username: unknown placeholder/,
    );
    assert.equal(load({ flags: { username: '' } }).scenario.username, '', 'an empty username is allowed');
    assert.match(
      problemsOf(() => load({ flags: { commandTopic: 'cmd/{deviceID}/#' } }))[0] ?? '',
      /^commandTopic: unknown placeholder \{deviceID\}; did you mean \{deviceId\}\?/,
    );
    assert.equal(
      load({ flags: { commandTopic: 'cmd/{deviceId}/#' } }).scenario.commandTopic,
      'cmd/{deviceId}/#',
    );
    assert.deepEqual(
      problemsOf(() => load({ flags: { clientId: 'c'.repeat(65_536) } })),
      ['clientId: is 65536 bytes long; MQTT allows at most 65535 (from --client-id)'],
    );
    assert.deepEqual(
      overlongTemplates({ topic: '{deviceId}/{deviceId}' }, `${'x'.repeat(40_000)}{index}`, 'r', 100),
      ['topic: is 80005 bytes for the last device (index 99); MQTT allows at most 65535'],
    );
  });

  test('input files: regular files only, at most 1 MiB, read with a bound', () => {
    const small = join(dir, 'small.txt');
    writeFileSync(small, 'hello');
    assert.equal(readInputFile(small).toString(), 'hello');
    const big = join(dir, 'big.txt');
    writeFileSync(big, Buffer.alloc(MAX_INPUT_FILE_BYTES + 1));
    assert.throws(() => readInputFile(big), /larger than 1 MiB/);
    assert.equal(readInputFile(big, 2 * MAX_INPUT_FILE_BYTES).length, MAX_INPUT_FILE_BYTES + 1);
    assert.throws(() => readInputFile('/dev/zero'), /not a regular file/);
    assert.throws(() => readInputFile(dir), /it is a directory/);
    assert.throws(
      () => readInputFile(join(dir, 'missing')),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
  });

  test('results folder: checked without writing; an existing run folder is refused', () => {
    const root = join(dir, 'results');
    assert.equal(outProblem(root, 'r1', dir), undefined);
    assert.ok(!existsSync(root), 'the check creates nothing');
    mkdirSync(join(root, 'r1'), { recursive: true });
    assert.match(outProblem(root, 'r1', dir) ?? '', /r1 already exists \(an earlier run with this id\)/);
    assert.equal(outProblem(root, 'r2', dir), undefined);
    assert.match(outProblem('/proc/fleetload', 'r', dir) ?? '', /pseudo file system/);
    assert.match(outProblem('/dev/null/x', 'r', dir) ?? '', /\/dev\/null is not a directory/);
  });

  test('--junit FILE: checked without writing, like --out (pseudo file systems, directories, paths through files)', () => {
    const file = join(dir, 'reports', 'junit.xml');
    assert.equal(outputFileProblem('reports/junit.xml', dir), undefined);
    assert.ok(!existsSync(join(dir, 'reports')), 'the check creates nothing');
    assert.match(
      outputFileProblem('/proc/x.xml', dir) ?? '',
      /^cannot write \/proc\/x\.xml in \/proc: .*pseudo file system/,
    );
    assert.match(outputFileProblem('/sys/junit.xml', dir) ?? '', /pseudo file system/);
    assert.match(outputFileProblem(dir, dir) ?? '', /it is a directory; give a file name/);
    assert.match(outputFileProblem('/dev/null', dir) ?? '', /not a regular file/);
    assert.match(outputFileProblem('/dev/null/x.xml', dir) ?? '', /\/dev\/null is not a directory/);
    mkdirSync(join(dir, 'reports'));
    writeFileSync(file, 'old');
    assert.equal(outputFileProblem(file, dir), undefined, 'an existing file is overwritten');
    assert.match(
      problemsOf(() => load({ flags: { junit: '/proc/x.xml' } }))[0] ?? '',
      /^junit: cannot write \/proc\/x\.xml .* \(from --junit\)$/,
    );
  });

  test('credentials in the broker URL are the username and password (flags win); no false "password without a username"', () => {
    const host = 'mqtt://u%40x:p%3Aw@127.0.0.1:1883';
    const s = load({ flags: { host } }).scenario;
    assert.equal(s.username, 'u@x');
    assert.equal(s.password, 'p:w');
    // the review's case: the URL names the user, --password gives the password
    const withFlag = load({ flags: { host: 'mqtt://u:pw@127.0.0.1', password: 'X' } }).scenario;
    assert.equal(withFlag.username, 'u');
    assert.equal(withFlag.password, 'X');
    const env = load({ flags: { host: 'mqtt://u@127.0.0.1' }, env: { FLEETLOAD_PASSWORD: 'X' } }).scenario;
    assert.equal(env.username, 'u');
    const flagUser = load({ flags: { host: 'mqtt://u:pw@127.0.0.1', username: 'v' } }).scenario;
    assert.equal(flagUser.username, 'v');
    assert.equal(flagUser.password, 'pw');
    // still refused when nobody names a user
    assert.match(
      problemsOf(() => load({ flags: { host: 'mqtt://:pw@127.0.0.1' } }))[0] ?? '',
      /^password: MQTT 3\.1\.1 does not allow a password without a username/,
    );
    assert.match(
      problemsOf(() => load({ flags: { host: 'mqtt://127.0.0.1', password: 'X' } }))[0] ?? '',
      /^password: MQTT 3\.1\.1 does not allow a password without a username/,
    );
  });

  test('a scenario file of YAML aliases is refused, not expanded', () => {
    const levels = Array.from({ length: 9 }, (_, i) => {
      const prev = i === 0 ? 'x' : `*a${i - 1}`;
      return `a${i}: &a${i} [${Array(10).fill(prev).join(', ')}]`;
    });
    const file = yamlFile(`${levels.join('\n')}\n`);
    assert.match(
      problemsOf(() => load({ file }), 'E_FILE')[0] ?? '',
      /too many alias expansions \(more than 100\)/,
    );
    // a few aliases are fine
    const ok = yamlFile(
      'base: &b 10s\nrunTime: *b\ngrace: *b\n'.replace('base: &b 10s\n', 'interval: &b 10s\n'),
    );
    assert.equal(load({ file: ok }).scenario.graceMs, 10_000);
  });
});
