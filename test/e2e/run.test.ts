import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { isAlive, waitForExit } from '../helpers/process.js';
import { freePort, skipUnless } from '../helpers/services.js';

/** Full CLI runs against a real Mosquitto and the embedded broker, read back through summary.json. */

const SUMMARY_KEYS = [
  'runId',
  'startedAt',
  'endedAt',
  'fleetloadVersion',
  'scenario',
  'devices',
  'messages',
  'latency',
  'rates',
  'generator',
  'errors',
  'thresholds',
  'valid',
  'passed',
  'devicesTop',
  'bytes',
  'events',
];
// bytes and events are added keys (docs/guide/events.md): every run has them; eventsDropped past 1,000 events
const OPTIONAL_SUMMARY_KEYS = ['interrupted', 'sinks', 'eventsDropped'];
const MESSAGE_KEYS = [
  'scheduled',
  'sent',
  'acked',
  'failed',
  'unconfirmed',
  'received',
  'lost',
  'duplicated',
  'reordered',
  'foreign',
];
const LATENCY_KEYS = ['count', 'min', 'mean', 'p50', 'p90', 'p95', 'p99', 'p999', 'max'];

function readRun(out: string): { summary: Summary; dir: string; files: string[] } {
  const [runId] = readdirSync(out);
  assert.ok(runId, `a run folder in ${out}`);
  const dir = join(out, runId);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
  return { summary, dir, files: readdirSync(dir).sort() };
}

/** The accounting invariants DESIGN.md says hold exactly in every run. */
function assertInvariants(s: Summary): void {
  const m = s.messages;
  assert.equal(m.sent, m.acked + m.failed + m.unconfirmed, 'sent = acked + failed + unconfirmed');
  assert.ok(m.received - m.duplicated - m.foreign <= m.sent, 'received - duplicated - foreign <= sent');
  assert.ok(m.scheduled >= m.sent, 'scheduled >= sent');
  assert.deepEqual(
    Object.keys(s)
      .filter((k) => !OPTIONAL_SUMMARY_KEYS.includes(k))
      .sort(),
    [...SUMMARY_KEYS].sort(),
  );
  assert.deepEqual(Object.keys(m).sort(), [...MESSAGE_KEYS].sort());
  assert.deepEqual(Object.keys(s.bytes ?? {}).sort(), ['received', 'receivedPerSec', 'sent', 'sentPerSec']);
  assert.ok(Array.isArray(s.events), 'events: an array, empty when nothing happened');
  for (const l of ['e2e', 'publishAck', 'connect', 'scheduleLag'] as const) {
    assert.deepEqual(Object.keys(s.latency[l]).sort(), [...LATENCY_KEYS].sort(), l);
  }
}

const exact = [
  '-u',
  '50',
  '-r',
  '500',
  '-i',
  '100ms',
  '--messages-per-device',
  '20',
  '-t',
  '20s',
  '--headless',
];

describe('runs against Mosquitto', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  for (const version of ['3.1.1', '5'] as const) {
    for (const qos of [0, 1, 2] as const) {
      // devices run on raw libuv handles by default; one combination runs them on net.Socket (--sockets node)
      const sockets = version === '5' && qos === 2 ? 'node' : 'raw';
      test(`50 devices × 20 messages, QoS ${qos}, MQTT ${version}, ${sockets} sockets: every message sent, acked and received once`, async () => {
        const out = tmpDir();
        const r = await runCli([
          'run',
          '-H',
          broker.url,
          ...exact,
          '--qos',
          String(qos),
          '--mqtt-version',
          version,
          '--sockets',
          sockets,
          '--out',
          out,
        ]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        const { summary: s, files, dir } = readRun(out);
        assertInvariants(s);
        assert.match(
          readFileSync(join(dir, 'scenario.yaml'), 'utf8'),
          new RegExp(`^sockets: ${sockets}$`, 'm'),
        );
        assert.deepEqual(
          { ...s.messages },
          {
            scheduled: 1000,
            sent: 1000,
            acked: 1000,
            failed: 0,
            unconfirmed: 0,
            received: 1000,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            foreign: 0,
          },
        );
        assert.equal(s.devices.connectedPeak, 50);
        assert.equal(s.devices.tls, undefined, 'no TLS handshakes over plain TCP');
        assert.equal(s.latency.e2e.count, 1000);
        assert.equal(s.latency.connect.count, 50);
        assert.equal(s.latency.publishAck.count, qos === 0 ? 0 : 1000);
        assert.ok(s.latency.e2e.p50 > 0 && s.latency.e2e.p50 < 1000, `e2e p50 ${s.latency.e2e.p50} ms`);
        assert.equal(s.scenario.mqttVersion, version);
        assert.equal(s.scenario.qos, qos);
        assert.equal(s.passed, true);
        // the consumer's ledger and record, as `fleetload consume` writes them: segments merge from these
        assert.deepEqual(files, [
          'consumer.json',
          'devices.csv',
          'devices.json',
          'histograms',
          'intervals.jsonl',
          'lastseq.bin',
          'ledger.bin',
          'report.html',
          'run.json',
          'scenario.yaml',
          'summary.json',
          'timeseries.csv',
        ]);
      });
    }
  }

  for (const encoding of ['properties', 'binary'] as const) {
    test(`--encoding ${encoding}: metadata outside the JSON body, every message measured`, async () => {
      const out = tmpDir();
      const r = await runCli([
        'run',
        '-H',
        broker.url,
        '-u',
        '10',
        '-r',
        '500',
        '-i',
        '100ms',
        '--messages-per-device',
        '10',
        '--mqtt-version',
        '5',
        '--encoding',
        encoding,
        '--payload-size',
        '64',
        '--headless',
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const { summary: s, dir } = readRun(out);
      assertInvariants(s);
      assert.equal(s.messages.received, 100);
      assert.equal(s.messages.foreign, 0);
      assert.equal(s.messages.lost, 0);
      assert.equal(s.latency.e2e.count, 100);
      // sentTs travels too: arrival − actual send time has its own histogram
      assert.ok(readdirSync(join(dir, 'histograms')).includes('e2eSend.hdr'));
    });
  }

  test('thresholds: passing ones exit 0, a failing one exits 1, each reported with its value', async () => {
    const out = tmpDir();
    const base = [
      'run',
      '-H',
      broker.url,
      '-u',
      '10',
      '-r',
      '100',
      '-i',
      '100ms',
      '--messages-per-device',
      '5',
      '--headless',
      '--out',
      out,
    ];
    const ok = await runCli([
      ...base,
      '--threshold',
      'e2e.p99<10s',
      '--threshold',
      'loss<0.1%',
      '--run-id',
      'pass',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await runCli([
      ...base,
      '--threshold',
      'messages.sent<10',
      '--threshold',
      'loss<1%',
      '--run-id',
      'fail',
    ]);
    assert.equal(bad.code, 1, bad.stderr);
    const s = JSON.parse(readFileSync(join(out, 'fail', 'summary.json'), 'utf8')) as Summary;
    assert.equal(s.passed, false);
    assert.deepEqual(
      s.thresholds.map((t) => [t.expr, t.value, t.passed]),
      [
        ['messages.sent<10', 50, false],
        ['loss<1%', 0, true],
      ],
    );
    assert.match(bad.stdout, /FAILED/);
  });

  test('--json prints exactly summary.json on stdout; people-facing lines go to stderr', async () => {
    const out = tmpDir();
    const r = await runCli([
      'run',
      '-H',
      broker.url,
      '-u',
      '5',
      '-r',
      '50',
      '-i',
      '100ms',
      '--messages-per-device',
      '3',
      '--headless',
      '--json',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as Summary;
    const { summary } = readRun(out);
    assert.deepEqual(printed, summary);
    assert.match(r.stderr, /PASSED/);
  });

  test('scenario file + env + flags: flags beat env beat file; the password never reaches any output', async () => {
    const cwd = tmpDir();
    writeFileSync(
      join(cwd, 'scenario.yaml'),
      `devices: 3\ninterval: 100ms\nmessagesPerDevice: 4\nqos: 0\nrunId: from-file\nheadless: true\nusername: fl\npassword: hunter2-secret\n`,
    );
    const r = await runCli(['run', 'scenario.yaml', '--qos', '1'], {
      cwd,
      env: { FLEETLOAD_HOST: broker.url, FLEETLOAD_DEVICES: '4', FLEETLOAD_QOS: '2' },
    });
    assert.equal(r.code, 0, r.stderr);
    const { summary: s, dir } = readRun(join(cwd, 'fleetload-results'));
    assert.equal(s.runId, 'from-file');
    assert.equal(s.scenario.devices, 4); // env over file
    assert.equal(s.scenario.qos, 1); // flag over env
    assert.equal(s.messages.sent, 16);
    const everything = [
      r.stdout,
      r.stderr,
      ...['summary.json', 'scenario.yaml', 'timeseries.csv'].map((f) => readFileSync(join(dir, f), 'utf8')),
    ].join('\n');
    assert.doesNotMatch(everything, /hunter2/);
    assert.match(readFileSync(join(dir, 'scenario.yaml'), 'utf8'), /password: "?\*\*\*"?/);
  });
});

describe('runs over WebSocket', { skip: skipUnless('mosquitto') }, () => {
  test('ws:// devices and consumer through a Mosquitto websockets listener', async () => {
    const broker = await startMosquitto({ websockets: true });
    try {
      const out = tmpDir();
      const r = await runCli([
        'run',
        '-H',
        broker.wsUrl as string,
        '-u',
        '10',
        '-r',
        '100',
        '-i',
        '100ms',
        '--messages-per-device',
        '5',
        '--headless',
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const { summary: s } = readRun(out);
      assertInvariants(s);
      assert.equal(s.messages.sent, 50);
      assert.equal(s.messages.acked, 50);
      assert.equal(s.messages.received, 50);
      assert.equal(s.messages.lost, 0);
    } finally {
      await broker.stop();
    }
  });
});

describe('runs on the embedded broker', () => {
  for (const qos of [0, 1, 2] as const) {
    test(`no --host: aedes starts, 50 devices × 20 messages at QoS ${qos}, nothing lost`, async () => {
      const out = tmpDir();
      const r = await runCli(['run', ...exact, '--qos', String(qos), '--out', out]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const { summary: s } = readRun(out);
      assertInvariants(s);
      assert.equal(s.messages.sent, 1000);
      assert.equal(s.messages.acked, 1000);
      assert.equal(s.messages.received, 1000);
      assert.equal(s.messages.lost, 0);
      assert.match(s.scenario.host, /^mqtt:\/\/127\.0\.0\.1:\d+/);
      assert.match(r.stdout, /embedded broker \(aedes, MQTT 3\.1\.1\)/);
    });
  }

  test('--payload FILE: the template fields travel with the measurement fields; every message counted', async () => {
    const cwd = tmpDir();
    writeFileSync(
      join(cwd, 'telemetry.json'),
      '{ "temperature": {{random 20 25}}, "door": "{{choice open closed}}", "at": "{{iso}}" }',
    );
    const r = await runCli(
      [
        'run',
        '-u',
        '5',
        '-r',
        '100',
        '-i',
        '100ms',
        '--messages-per-device',
        '10',
        '--payload',
        'telemetry.json',
        '--headless',
      ],
      { cwd },
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const { summary: s, dir } = readRun(join(cwd, 'fleetload-results'));
    assert.equal(s.messages.received, 50);
    assert.equal(s.messages.foreign, 0);
    assert.equal(s.messages.lost, 0);
    // absolute: scenario.yaml runs again from the results folder
    assert.match(
      readFileSync(join(dir, 'scenario.yaml'), 'utf8'),
      new RegExp(`^payload: ${join(cwd, 'telemetry.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'),
    );
  });

  test("--stage ramps the fleet up and down; the run time is the stages' sum", async () => {
    const out = tmpDir();
    const r = await runCli([
      'run',
      '--stage',
      '1s:10',
      '--stage',
      '1s:10',
      '--stage',
      '1s:0',
      '-i',
      '100ms',
      '--headless',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const { summary: s, dir } = readRun(out);
    assertInvariants(s);
    assert.equal(s.scenario.runTimeMs, 3000);
    assert.equal(s.devices.connectedPeak, 10);
    const rows = readFileSync(join(dir, 'intervals.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { devicesConnected: number });
    assert.ok(rows.some((row) => row.devicesConnected === 10));
    assert.ok(
      (rows.at(-1)?.devicesConnected ?? 99) <= 2,
      `ramped down: ${rows.map((row) => row.devicesConnected).join(',')}`,
    );
    assert.equal(s.messages.lost, 0);
  });

  for (const signal of ['SIGINT', 'SIGHUP'] as const)
    test(`${signal} mid-run: devices disconnect, the summary is written and marked interrupted, no process left`, async () => {
      const out = tmpDir();
      const child = spawnCli([
        'run',
        '-u',
        '20',
        '-r',
        '100',
        '-i',
        '100ms',
        '-t',
        '60s',
        '--headless',
        '--out',
        out,
      ]);
      const line = await waitForOutput(child, /pid (\d+)/, { timeoutMs: 15_000 });
      const brokerPid = Number(/pid (\d+)/.exec(line)?.[1]);
      assert.ok(isAlive(brokerPid), 'embedded broker runs');
      await waitForOutput(child, /sent \d/, { timeoutMs: 15_000 });
      child.kill(signal);
      const r = await waitForCliExit(child, 20_000);
      assert.equal(r.code, 1, 'an interrupted run never passes');
      const { summary: s } = readRun(out);
      assert.equal(s.interrupted, true);
      assert.equal(s.passed, false);
      assert.ok(s.messages.sent > 0);
      assertInvariants(s);
      assert.ok(await waitForExit(brokerPid, 3000), 'embedded broker stopped');
      assert.match(r.stdout, /INTERRUPTED/);
    });
});

describe('unreachable system under test', () => {
  test('consumer cannot attach → exit 3 with the reason, quickly', async () => {
    const port = await freePort();
    const out = tmpDir();
    const r = await runCli(
      ['run', '-H', `mqtt://127.0.0.1:${port}`, '--headless', '--connect-timeout', '2s', '--out', out],
      { timeoutMs: 20_000 },
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /could not attach to mqtt:\/\/127\.0\.0\.1:\d+.*ECONNREFUSED/);
  });

  test('no device can connect (--consumer none) → exit 3 naming the error, summary says so', async () => {
    const port = await freePort();
    const out = tmpDir();
    const r = await runCli(
      [
        'run',
        '-H',
        `mqtt://127.0.0.1:${port}`,
        '--consumer',
        'none',
        '--headless',
        '-t',
        '30s',
        '--connect-timeout',
        '2s',
        '--out',
        out,
      ],
      {
        timeoutMs: 20_000,
      },
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /no device could connect to mqtt:\/\/127\.0\.0\.1:\d+: socket ECONNREFUSED/);
    const { summary: s } = readRun(out);
    assert.equal(s.passed, false);
    assert.equal(s.devices.connectedPeak, 0);
    assert.ok(s.devices.connectFailures >= 3);
  });
});
