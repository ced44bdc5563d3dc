import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { CliIo } from '../../src/cli/commands.js';
import { consumeCmd } from '../../src/cli/consume.js';
import { parseConsumeArgs } from '../../src/cli/consume-args.js';
import { Ledger } from '../../src/consumer/ledger.js';
import type { FleetloadError } from '../../src/errors.js';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort, skipUnless } from '../helpers/services.js';

/**
 * `fleetload consume` (consumeCmd, in process: the `consume` dispatch in commands.ts is added separately) with a
 * real producer: `fleetload run --consumer none` publishing to Mosquitto.
 */

function io(
  env: NodeJS.ProcessEnv = {},
): CliIo & { out: () => string; err: () => string; signals: EventEmitter } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (c: Buffer) => {
    o += c.toString();
  });
  stderr.on('data', (c: Buffer) => {
    e += c.toString();
  });
  return { env, stdout, stderr, cwd: process.cwd(), signals: new EventEmitter(), out: () => o, err: () => e };
}

/**
 * Resolves once consume has printed a line matching `pattern` (stdout or stderr); rejects if consume ends first.
 * Tests wait on consume's own output instead of fixed sleeps.
 */
function printed(
  c: ReturnType<typeof io>,
  consuming: Promise<number>,
  pattern: RegExp,
  what: string,
): Promise<void> {
  const seen = () => pattern.test(c.out()) || pattern.test(c.err());
  return new Promise<void>((resolve, reject) => {
    const check = () => {
      if (!seen()) return;
      c.stdout.off('data', check);
      c.stderr.off('data', check);
      resolve();
    };
    c.stdout.on('data', check);
    c.stderr.on('data', check);
    check();
    consuming.then(
      (code) => reject(new Error(`consume ended (exit ${code}) before ${what}:\n${c.out()}${c.err()}`)),
      reject,
    );
  });
}

/**
 * Attached: the line consume prints once the source's subscription is acknowledged
 * (`fleetload <version> · consume · <source>`; on stderr with --json). Only then may the producer start.
 */
const attached = (c: ReturnType<typeof io>, consuming: Promise<number>) =>
  printed(c, consuming, /^fleetload \S+ · consume · /m, 'it attached');

const readSummary = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;

function producer(url: string, runId: string, extra: string[] = []) {
  return runCli([
    'run',
    '-H',
    url,
    '--consumer',
    'none',
    '--run-id',
    runId,
    '-u',
    '20',
    '-r',
    '200',
    '-i',
    '100ms',
    '--messages-per-device',
    '10',
    '-t',
    '20s',
    '--headless',
    '--out',
    tmpDir(),
    ...extra,
  ]);
}

describe('fleetload consume against Mosquitto', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('counts a producer run exactly; results folder with consumer fields, ledger.bin, consumer.json', async () => {
    const out = tmpDir();
    const c = io();
    const consuming = consumeCmd(
      [
        '-H',
        broker.url,
        '--run-id',
        'prod1',
        '-t',
        '5s',
        '--grace',
        '1s',
        '--out',
        out,
        '--json',
        '--threshold',
        'messages.received==200',
      ],
      c,
    );
    await attached(c, consuming);
    const p = await producer(broker.url, 'prod1');
    assert.equal(p.code, 0, p.stderr);
    const code = await consuming;
    assert.equal(code, 0, c.err());
    const dir = join(out, 'prod1');
    const s = readSummary(dir);
    assert.deepEqual(JSON.parse(c.out()), s);
    assert.equal(s.messages.received, 200);
    assert.equal(s.messages.lost, 0);
    assert.equal(s.messages.duplicated, 0);
    assert.equal(s.messages.foreign, 0);
    assert.equal(s.messages.sent, 0, 'producer fields are 0');
    assert.equal(s.latency.e2e.count, 200);
    assert.equal(s.passed, true);
    const files = readdirSync(dir).sort();
    for (const f of [
      'consumer.json',
      'ledger.bin',
      'scenario.yaml',
      'summary.json',
      'timeseries.csv',
      'histograms',
    ]) {
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    }
    const ledger = Ledger.deserialize(readFileSync(join(dir, 'ledger.bin')));
    assert.equal(ledger.uniqueCount, 200);
    assert.equal(ledger.deviceCount, 20);
  });

  test('two instances (MQTT 5 shared subscription, partition 0/2 and 1/2) merge to exact counts', async () => {
    const out = tmpDir();
    const args = (i: number) => [
      '-H',
      broker.url,
      '--mqtt-version',
      '5',
      '--run-id',
      'split1',
      '--partition-count',
      '2',
      '--partition-index',
      String(i),
      '-t',
      '5s',
      '--grace',
      '1s',
      '--out',
      join(out, String(i)),
    ];
    const ca = io();
    const cb = io({ PARTITION_INDEX: '1' });
    const a = consumeCmd(args(0), ca);
    const b = consumeCmd(args(1), cb);
    await Promise.all([attached(ca, a), attached(cb, b)]);
    const p = await producer(broker.url, 'split1', ['--mqtt-version', '5']);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(await Promise.all([a, b]), [0, 0]);
    const sa = readSummary(join(out, '0', 'split1'));
    const sb = readSummary(join(out, '1', 'split1'));
    assert.ok(sa.messages.received > 0 && sb.messages.received > 0, 'both got a share');
    assert.equal(sa.messages.received + sb.messages.received, 200);
    const merged = Ledger.deserialize(readFileSync(join(out, '0', 'split1', 'ledger.bin')));
    const { overlap } = merged.merge(
      Ledger.deserialize(readFileSync(join(out, '1', 'split1', 'ledger.bin'))),
    );
    assert.equal(overlap, 0);
    assert.equal(merged.uniqueCount, 200);
    assert.equal(
      merged.lost(new Map(Array.from({ length: 20 }, (_, i) => [`dev-${String(i).padStart(6, '0')}`, 10]))),
      0,
    );
  });

  test('two `fleetload consume --shared g` processes on MQTT 3.1.1 split one stream: each gets part, together every message once', async () => {
    const out = tmpDir();
    const runId = 'shared1';
    const consumer = (i: number, extra: string[] = []) =>
      spawnCli([
        'consume',
        '-H',
        broker.url,
        '--shared',
        'g',
        '--run-id',
        runId,
        '--partition-index',
        String(i),
        '--partition-count',
        '2',
        '-t',
        '8s',
        '--grace',
        '1s',
        '--out',
        join(out, String(i)),
        ...extra,
      ]);
    const a = consumer(0, ['--prometheus-port', '0', '--prometheus-grace', '0s']);
    const b = consumer(1);
    // attached: printed once the subscription to $share/g/<filter> is acknowledged
    await Promise.all(
      [a, b].map((c) => waitForOutput(c, /consumer attached: mqtt .* \$share\/g\/fleetload\/shared1\/\+ /)),
    );
    // consume serves /metrics like run, labelled role consumer and its partition as segment
    const url = (await waitForOutput(a, /prometheus: metrics at (\S+)/)).replace(
      'prometheus: metrics at ',
      '',
    );
    const metrics = await (await fetch(url)).text();
    assert.match(
      metrics,
      /fleetload_messages_received_total\{run_id="shared1",segment="0\/2",role="consumer"\} \d+/,
    );
    const p = await producer(broker.url, runId);
    assert.equal(p.code, 0, p.stderr);
    const [ra, rb] = await Promise.all([waitForCliExit(a), waitForCliExit(b)]);
    assert.equal(ra.code, 0, ra.stderr + ra.stdout);
    assert.equal(rb.code, 0, rb.stderr + rb.stdout);
    const sa = readSummary(join(out, '0', runId));
    const sb = readSummary(join(out, '1', runId));
    assert.ok(
      sa.messages.received > 0 && sb.messages.received > 0,
      `both got a share: ${sa.messages.received} + ${sb.messages.received}`,
    );
    assert.ok(sa.messages.received < 200 && sb.messages.received < 200, 'neither got everything');
    assert.equal(sa.messages.received + sb.messages.received, 200, 'sum of received = sent');
    assert.equal(sa.messages.duplicated + sb.messages.duplicated, 0);
    const merged = Ledger.deserialize(readFileSync(join(out, '0', runId, 'ledger.bin')));
    const { overlap } = merged.merge(Ledger.deserialize(readFileSync(join(out, '1', runId, 'ledger.bin'))));
    assert.equal(overlap, 0, 'no message reached both');
    assert.equal(merged.uniqueCount, 200);
    assert.equal(
      merged.lost(new Map(Array.from({ length: 20 }, (_, i) => [`dev-${String(i).padStart(6, '0')}`, 10]))),
      0,
    );
  });

  test('without --run-time it runs until Ctrl-C, a normal end; having read nothing it is invalid (exit 5)', async () => {
    const out = tmpDir();
    const c = io();
    const consuming = consumeCmd(['-H', broker.url, '--grace', '100ms', '--out', out], c);
    await attached(c, consuming);
    // still going after its second interval (a plain live line per interval: "… steady 0:02/0:00 …")
    await printed(c, consuming, / steady 0:0[2-9]\//, 'its second interval');
    c.signals.emit('SIGINT');
    // not "interrupted" (exit 1): Ctrl-C is how a consumer without a run time ends; but nothing was measured
    assert.equal(await consuming, 5, c.err());
    const [folder] = readdirSync(out);
    assert.match(String(folder), /^consume-/);
    const s = readSummary(join(out, String(folder)));
    assert.equal(s.interrupted, undefined);
    assert.equal(s.valid, false);
    assert.deepEqual(s.invalid, ['observed: the consumer received no message of this run']);
    assert.match(c.out(), /INVALID: observed: the consumer received no message of this run/);
  });
});

describe('fleetload consume: input and attach errors', () => {
  test('bad input is E_USAGE (exit 2) with every problem, nothing written', async () => {
    const out = tmpDir();
    await assert.rejects(
      consumeCmd(
        [
          '--source',
          'kafka',
          '--partition-index',
          '3',
          '--partition-count',
          '2',
          '--bogus',
          '-t',
          '5',
          '--out',
          out,
        ],
        io(),
      ),
      (e: FleetloadError) => {
        assert.equal(e.exitCode, 2);
        assert.match(
          e.message,
          /source: must be one of mqtt, nats, eventhubs; got "kafka" \(from --source\)/,
        );
        assert.match(e.message, /--partition-index 3 must be below --partition-count 2/);
        assert.match(e.message, /unknown flag --bogus/);
        assert.match(e.message, /runTime: "5" has no unit; write 5s .*\(from --run-time\)/);
        return true;
      },
    );
    assert.deepEqual(readdirSync(out), []);
    await assert.rejects(
      consumeCmd(['-H', 'mqtt://x:1883', '--partition-count', '2'], io()),
      /partitionCount: > 1 with MQTT needs --shared GROUP/,
    );
    await assert.rejects(
      consumeCmd(
        ['--source', 'eventhubs', '--eventhub-connection-string', 'Endpoint=sb://x/;SharedAccessKey=k'],
        io(),
      ),
      (e: FleetloadError) => e.exitCode === 2 && /EVENTHUB_NAME/.test(e.message),
    );
  });

  test('--shared: a bad share name, another source, or a different --group is one line, exit 2', async () => {
    const out = tmpDir();
    const refused = async (args: string[], pattern: RegExp) => {
      await assert.rejects(consumeCmd([...args, '--out', out], io()), (e: FleetloadError) => {
        assert.equal(e.exitCode, 2, e.message);
        assert.match(e.message, pattern);
        assert.doesNotMatch(e.message.trim(), /\n/, 'one line');
        return true;
      });
    };
    const mqtt = ['-H', 'mqtt://127.0.0.1:1883'];
    await refused(
      [...mqtt, '--shared', 'a/b'],
      /^shared: "a\/b" must not contain \/, \+ or # .*\(from --shared\)/,
    );
    await refused([...mqtt, '--shared', 'g#'], /must not contain \/, \+ or #/);
    await refused([...mqtt, '--shared', ''], /shared: must not be empty/);
    await refused(
      [...mqtt, '--shared', 'g', '--group', 'h'],
      /--group h and --shared g both name the share group/,
    );
    await refused(
      ['-H', 'nats://127.0.0.1:4222', '--shared', 'g'],
      /shared: applies to the mqtt source only; NATS consumers split a stream by sharing one durable: --group/,
    );
    await refused([...mqtt, '--mqtt-version', '5', '--group', 'x+y'], /group: "x\+y" must not contain/);
    assert.deepEqual(readdirSync(out), []);
    // from the environment too; the same name in --group is fine
    const cfg = parseConsumeArgs([...mqtt, '--group', 'g', '--run-id', 'r'], { FLEETLOAD_SHARED: 'g' });
    if (cfg === 'help' || cfg.source.kind !== 'mqtt') throw new Error('expected an mqtt config');
    assert.equal(cfg.source.shared, true);
    assert.equal(cfg.source.group, 'g');
    assert.equal(cfg.source.version, 4);
    assert.equal(cfg.resolved.shared, true);
    // MQTT 5 without --shared: shared under --group, as before; 3.1.1 without it: a plain subscription
    const v5 = parseConsumeArgs([...mqtt, '--mqtt-version', '5', '--run-id', 'r'], {});
    if (v5 === 'help' || v5.source.kind !== 'mqtt') throw new Error('expected an mqtt config');
    assert.equal(v5.resolved.shared, true);
    assert.equal(v5.source.group, 'fleetload-r');
    const plain = parseConsumeArgs([...mqtt, '--run-id', 'r'], {});
    if (plain === 'help' || plain.source.kind !== 'mqtt') throw new Error('expected an mqtt config');
    assert.equal(plain.resolved.shared, false);
  });

  test('a broker that is not there: E_UNREACHABLE (exit 3), nothing written', async () => {
    const out = tmpDir();
    const port = await freePort();
    await assert.rejects(
      consumeCmd(['-H', `mqtt://127.0.0.1:${port}`, '--connect-timeout', '2s', '--out', out], io()),
      (e: FleetloadError) => e.exitCode === 3 && /ECONNREFUSED/.test(e.message),
    );
    assert.equal(existsSync(out) ? readdirSync(out).length : 0, 0);
  });

  test('settings from the seed variables and FLEETLOAD_*; connection strings redacted', () => {
    const cfg = parseConsumeArgs([], {
      EVENTHUB_CONNECTION_STRING:
        'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=TOPSECRET',
      EVENTHUB_NAME: 'perf',
      CONSUMER_GROUP: 'cg1',
      STORAGE_CONNECTION_STRING: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=ALSOSECRET',
      NUM_PARTITION: '1',
      TOTAL_PARTITION: '2',
      FLEETLOAD_RUN_ID: 'r9',
    });
    assert.ok(cfg !== 'help');
    assert.equal(cfg.source.kind, 'eventhubs');
    if (cfg.source.kind !== 'eventhubs') return;
    assert.equal(cfg.source.partitionIndex, 1);
    assert.equal(cfg.source.partitionCount, 2);
    assert.equal(cfg.source.consumerGroup, 'cg1');
    assert.equal(cfg.source.eventHubName, 'perf');
    assert.equal(cfg.runId, 'r9');
    const text = JSON.stringify(cfg.resolved);
    assert.doesNotMatch(text, /TOPSECRET|ALSOSECRET/);
    // FLEETLOAD_* wins over the seed's name, a flag over both
    const c2 = parseConsumeArgs(['--partition-index', '0'], {
      PARTITION_COUNT: '4',
      NUM_PARTITION: '2',
      FLEETLOAD_PARTITION_INDEX: '3',
      EVENTHUB_CONNECTION_STRING: 'Endpoint=sb://ns/;SharedAccessKey=k;EntityPath=hub',
    });
    if (c2 === 'help' || c2.source.kind !== 'eventhubs') throw new Error('expected an eventhubs config');
    assert.equal(c2.source.partitionIndex, 0);
    assert.equal(c2.source.partitionCount, 4);
  });
});
