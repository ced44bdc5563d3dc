import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConsumeFlags, parseRunArgs, tokenizeFlags } from '../../src/cli/args.js';
import { CONSUME_HELP, parseConsumeArgs } from '../../src/cli/consume-args.js';
import { MAIN_HELP, RUN_HELP } from '../../src/cli/help.js';
import { FleetloadError } from '../../src/errors.js';
import { SCENARIO_OPTIONS } from '../../src/scenario/load.js';
import { CONSUME_OPTIONS } from '../../src/scenario/options.js';

function usage(argv: string[]): string {
  try {
    parseRunArgs(argv);
  } catch (e) {
    assert.ok(e instanceof FleetloadError);
    assert.equal(e.code, 'E_USAGE');
    assert.equal(e.exitCode, 2);
    return e.message;
  }
  assert.fail(`expected E_USAGE for ${JSON.stringify(argv)}`);
}

describe('parseRunArgs', () => {
  test('no arguments', () => {
    assert.deepEqual(parseRunArgs([]), { flags: {}, help: false });
  });

  test('file, short and long flags map to scenario keys with numbers converted', () => {
    const a = parseRunArgs([
      'scenario.yaml',
      '-H',
      'mqtt://b:1883',
      '-u',
      '500',
      '-r=10',
      '-t',
      '5m',
      '-i',
      '100ms',
      '--qos',
      '0',
      '--mqtt-version',
      '5',
      '--spawn-rate',
      '2.5',
      '--payload-size=1024',
      '--headless',
      '--json',
      '--consumer-qos',
      '2',
      '--web-port',
      '0',
      '--connect-timeout',
      '3s',
    ]);
    assert.equal(a.file, 'scenario.yaml');
    assert.equal(a.help, false);
    assert.deepEqual(a.flags, {
      host: 'mqtt://b:1883',
      devices: 500,
      spawnRate: 2.5,
      runTime: '5m',
      interval: '100ms',
      qos: 0,
      mqttVersion: '5',
      payloadSize: 1024,
      headless: true,
      json: true,
      consumerQos: 2,
      webPort: 0,
      connectTimeout: '3s',
    });
  });

  test('-u5 and --devices=5 forms', () => {
    assert.equal(parseRunArgs(['-u5']).flags.devices, 5);
    assert.equal(parseRunArgs(['--devices=5']).flags.devices, 5);
  });

  test('--threshold is repeatable into thresholds', () => {
    const a = parseRunArgs(['--threshold', 'e2e.p99<500', '--threshold=loss<0.1%']);
    assert.deepEqual(a.flags.thresholds, ['e2e.p99<500', 'loss<0.1%']);
  });

  test('negative numbers are values, left for validation to word', () => {
    assert.equal(parseRunArgs(['-u', '-5']).flags.devices, -5);
    assert.equal(parseRunArgs(['--payload-size', '-1']).flags.payloadSize, -1);
  });

  test('an empty value is kept (and rejected later by validation)', () => {
    assert.equal(parseRunArgs(['-t', '']).flags.runTime, '');
  });

  test('non-numeric number flags name the flag', () => {
    assert.equal(usage(['--devices', 'abc']), '--devices: "abc" is not a number');
    assert.equal(usage(['-u', 'abc']), '--devices: "abc" is not a number');
    assert.equal(usage(['--qos', '1x']), '--qos: "1x" is not a number');
  });

  test('unknown flag', () => {
    assert.equal(usage(['--foo']), 'unknown flag --foo; see fleetload run --help');
    assert.equal(usage(['--foo=1']), 'unknown flag --foo; see fleetload run --help');
    assert.equal(usage(['-x']), 'unknown flag -x; see fleetload run --help');
  });

  test('typo gets a did-you-mean hint', () => {
    assert.equal(
      usage(['--devics', '5']),
      'unknown flag --devics; did you mean --devices? see fleetload run --help',
    );
    assert.match(usage(['--spawnrate', '5']), /did you mean --spawn-rate\?/);
    assert.match(usage(['--run-tim', '5']), /did you mean --run-time\?/);
    assert.match(usage(['--thresholds', 'a<1']), /did you mean --threshold\?/);
    assert.match(usage(['-devices', '5']), /^unknown flag -devices; did you mean --devices\?/);
  });

  test('missing value', () => {
    assert.equal(usage(['--host']), '--host needs a value');
    assert.equal(usage(['-t', '--headless']), '--run-time needs a value');
  });

  test('boolean flags take no value', () => {
    assert.equal(usage(['--headless=yes']), '--headless takes no value (got "yes")');
  });

  test('only one positional', () => {
    assert.match(usage(['a.yaml', 'b.yaml']), /^unexpected argument "b\.yaml": run takes one scenario file/);
  });

  test('several usage problems are reported together', () => {
    const msg = usage(['--bogus', '-u', 'x']);
    assert.match(msg, /unknown flag --bogus/);
    assert.match(msg, /--devices: "x" is not a number/);
  });

  test('--help / -h wins over everything else', () => {
    assert.deepEqual(parseRunArgs(['--help']), { flags: {}, help: true });
    assert.equal(parseRunArgs(['-h', '--bogus', 'a', 'b']).help, true);
  });

  test('a file after -- may start with a dash', () => {
    assert.equal(parseRunArgs(['--', '-odd.yaml']).file, '-odd.yaml');
  });
});

describe('help', () => {
  test('RUN_HELP lists every flag, the env rule and the exit codes', () => {
    for (const o of SCENARIO_OPTIONS) {
      assert.ok(RUN_HELP.includes(`--${o.flag} `), `--${o.flag} missing from RUN_HELP`);
      if (o.short) assert.ok(RUN_HELP.includes(`-${o.short}, --${o.flag}`), `-${o.short} missing`);
    }
    assert.match(RUN_HELP, /FLEETLOAD_<FLAG>/);
    assert.match(RUN_HELP, /-h, --help/);
    for (const code of ['0', '1', '2', '3', '4', '5', '130'])
      assert.match(RUN_HELP, new RegExp(`^  ${code}  `, 'm'));
  });

  test('RUN_HELP flags are exactly the ones parseRunArgs accepts', () => {
    const listed = [...RUN_HELP.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1] as string);
    for (const flag of new Set(listed)) {
      if (flag === 'help' || flag === 'host') continue;
      assert.doesNotThrow(() =>
        parseRunArgs(SCENARIO_OPTIONS.find((o) => o.flag === flag)?.kind === 'boolean' ? [`--${flag}`] : []),
      );
      assert.ok(
        SCENARIO_OPTIONS.some((o) => o.flag === flag),
        `RUN_HELP mentions --${flag}, which is not a flag`,
      );
    }
  });

  test('MAIN_HELP lists every command', () => {
    for (const c of ['run', 'schema', 'plan', 'consume', 'worker', 'report', 'compare', 'certs']) {
      assert.match(MAIN_HELP, new RegExp(`\\b${c}\\b`));
    }
  });
});

describe('one tokenizer for every command', () => {
  test('consume: the same wording as run for unknown flags, missing values, numbers, booleans', () => {
    const t = parseConsumeFlags([
      '--partiton-index=1',
      '-t',
      '5s',
      '--qos',
      'x',
      '--json=1',
      'extra',
      '--host',
    ]);
    assert.deepEqual(t.problems, [
      'unknown flag --partiton-index; did you mean --partition-index? see fleetload consume --help',
      '--qos: "x" is not a number',
      '--json takes no value (got "1")',
      '--host needs a value',
      'unexpected argument "extra": consume takes flags only',
    ]);
    assert.deepEqual(t.flags, { runTime: '5s' });
    assert.deepEqual(parseConsumeFlags(['-H', 'mqtt://b', '--threshold', 'a<1', '--threshold=b<2']).flags, {
      host: 'mqtt://b',
      thresholds: ['a<1', 'b<2'],
    });
  });

  test('consume: problems from flags, environment and the schema are listed together, run-style', () => {
    try {
      parseConsumeArgs(['--bogus', '-H', 'http://x', '--qos', '3', '-t', '5'], { FLEETLOAD_GRACE: 'abc' });
      assert.fail('expected E_USAGE');
    } catch (e) {
      assert.ok(e instanceof FleetloadError);
      assert.equal(e.exitCode, 2);
      assert.deepEqual(e.problems, [
        'unknown flag --bogus; see fleetload consume --help',
        'grace: "abc" is not a duration; use e.g. 500ms, 30s, 5m or 1h30m (from FLEETLOAD_GRACE)',
        'qos: must be one of 0, 1, 2; got 3 (from --qos)',
        'host: scheme "http:" in "http://x" is not supported; use mqtt://host:1883, mqtts://, ws://, wss:// or nats://host:4222 (from --host)',
        'runTime: "5" has no unit; write 5s for seconds or 5ms for milliseconds (from --run-time)',
      ]);
    }
  });

  test('consume: the seed variables still work, below FLEETLOAD_* and flags', () => {
    const cfg = parseConsumeArgs(['--partition-count', '4'], {
      NUM_PARTITION: '2',
      TOTAL_PARTITION: '3',
      FLEETLOAD_PARTITION_INDEX: '3',
      EVENTHUB_CONNECTION_STRING: 'Endpoint=sb://ns/;SharedAccessKey=k;EntityPath=hub',
      CONSUMER_GROUP: 'cg',
    });
    if (cfg === 'help' || cfg.source.kind !== 'eventhubs') assert.fail('expected an eventhubs config');
    assert.equal(cfg.source.partitionIndex, 3);
    assert.equal(cfg.source.partitionCount, 4);
    assert.equal(cfg.source.consumerGroup, 'cg');
    assert.equal(cfg.graceMs, 5000);
    assert.equal(cfg.runTimeMs, undefined);
  });

  test('certs uses the same tokenizer: a negative number is a value, worded by the command', () => {
    const specs = [{ key: 'devices', flag: 'devices', short: 'u', env: '', kind: 'string' as const }];
    assert.deepEqual(tokenizeFlags(['--devices', '-1'], specs, 'certs').flags, { devices: '-1' });
    assert.deepEqual(tokenizeFlags(['--devics', '1'], specs, 'certs').problems, [
      'unknown flag --devics; did you mean --devices? see fleetload certs --help',
    ]);
  });

  test('CONSUME_HELP lists every consume flag', () => {
    for (const o of CONSUME_OPTIONS) {
      assert.ok(CONSUME_HELP.includes(`--${o.flag} `), `--${o.flag} missing from CONSUME_HELP`);
    }
  });
});
