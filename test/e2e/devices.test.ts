import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type MqttProxy, startMqttProxy } from '../helpers/mqtt-proxy.js';
import { skipUnless } from '../helpers/services.js';

/**
 * devices.csv is the same whether one process ran the fleet, `--workers 2` did, or two segments and a separate
 * consumer did and `fleetload merge` joined them. To make the rows say something, the devices publish through a
 * proxy that drops PUBLISH frames 4..7 of dev-000003 (QoS 0) and closes dev-000006's first two connects: every mode
 * must show dev-000003, and only it, with 4 lost, seqs 4–7, and dev-000006, and only it, with 2 connect failures.
 * Compared: every column but the latency figures and the range times (they are of the run).
 */

const DEVICES = 8;
const PER_DEVICE = 20;
const STARVED = 'dev-000003';
const REFUSED = 'dev-000006';

function common(host: string, runId: string, out: string): string[] {
  return [
    '-H',
    host,
    '--run-id',
    runId,
    '-u',
    String(DEVICES),
    '-r',
    '500',
    '-i',
    '50ms',
    '--messages-per-device',
    String(PER_DEVICE),
    '-t',
    '20s',
    '--qos',
    '0',
    '--headless',
    '--out',
    out,
  ];
}

/** devices.csv without the columns that belong to one run (latency, range times) */
function comparable(file: string): string[] {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const cols = (lines[0] as string).split(',');
  return lines.map((l) =>
    l
      .split(',')
      .filter((_, i) => cols[i] !== 'e2eP99Ms' && cols[i] !== 'e2eMaxMs')
      .map((v, i, all) => (i === all.length - 1 ? v.replace(/@\S+/g, '') : v))
      .join(','),
  );
}

describe('devices.csv: one process, --workers 2, and merged segments agree', {
  skip: skipUnless('mosquitto'),
}, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  /** a proxy in front of the broker that drops dev-000003's PUBLISH frames 4..7, refuses dev-000006 twice */
  async function starvingProxy(): Promise<MqttProxy> {
    const seen = new Map<string, number>();
    let refused = 0;
    return startMqttProxy({
      refuseConnect: (clientId) => clientId.startsWith(`${REFUSED}-`) && ++refused <= 2,
      target: { host: '127.0.0.1', port: broker.port },
      direction: 'to-broker',
      starve: (clientId) => {
        if (!clientId.startsWith(`${STARVED}-`)) return false;
        const n = (seen.get(clientId) ?? 0) + 1;
        seen.set(clientId, n);
        return n >= 4 && n <= 7;
      },
    });
  }

  test('the same rows from all three', async () => {
    const root = tmpDir('fleetload-devices-e2e-');
    const csv: Record<string, string[]> = {};

    // one process
    let proxy = await starvingProxy();
    try {
      const r = await runCli(
        ['run', ...common(proxy.url, 'dv1', join(root, 'one')), '--consumer-host', broker.url],
        {
          timeoutMs: 40_000,
        },
      );
      assert.ok(existsSync(join(root, 'one', 'dv1', 'summary.json')), r.stderr);
      csv.one = comparable(join(root, 'one', 'dv1', 'devices.csv'));
    } finally {
      await proxy.close();
    }

    // --workers 2: the children's devices, the parent's consumer
    proxy = await starvingProxy();
    try {
      const r = await runCli(
        [
          'run',
          ...common(proxy.url, 'dv2', join(root, 'w')),
          '--consumer-host',
          broker.url,
          '--workers',
          '2',
        ],
        { timeoutMs: 60_000 },
      );
      assert.match(r.stdout, /2 workers ready/);
      csv.workers = comparable(join(root, 'w', 'dv2', 'devices.csv'));
    } finally {
      await proxy.close();
    }

    // two segments without a consumer, one `fleetload consume`, then merge
    proxy = await starvingProxy();
    try {
      const c = spawnCli([
        'consume',
        '-H',
        broker.url,
        '--run-id',
        'dv3',
        '-t',
        '10s',
        '--grace',
        '1s',
        '--out',
        join(root, 'c'),
      ]);
      await waitForOutput(c, / · consume · /, { timeoutMs: 20_000 });
      const segs = await Promise.all(
        ['0/2', '1/2'].map((seg, i) =>
          runCli(
            ['run', ...common(proxy.url, 'dv3', join(root, `s${i}`)), '--consumer', 'none', '--segment', seg],
            {
              timeoutMs: 40_000,
            },
          ),
        ),
      );
      for (const s of segs) assert.equal(s.code, 0, s.stderr);
      const cr = await waitForCliExit(c, 30_000);
      assert.ok(existsSync(join(root, 'c', 'dv3', 'devices.csv')), cr.stderr);
      // the consumer alone knows no producer: sent and connect failures are empty, loss only below the top seq
      const consumeRows = readFileSync(join(root, 'c', 'dv3', 'devices.csv'), 'utf8')
        .trim()
        .split('\n');
      assert.equal(consumeRows.length, DEVICES + 1);
      assert.match(consumeRows.find((l) => l.startsWith(`${STARVED},`)) ?? '', /^dev-000003,,16,4,0,0,,/);
      const dirs = [join(root, 's0', 'dv3'), join(root, 's1', 'dv3'), join(root, 'c', 'dv3')];
      const m = await runCli(['merge', ...dirs, '--out', join(root, 'm')], { cwd: root });
      assert.equal(m.code, 0, m.stderr);
      csv.merged = comparable(join(root, 'm', 'devices.csv'));
      const s = JSON.parse(readFileSync(join(root, 'm', 'summary.json'), 'utf8')) as Summary;
      assert.deepEqual(
        s.devicesTop?.lost.map((t) => [t.deviceId, t.value]),
        [[STARVED, 4]],
      );
      assert.match(readFileSync(join(root, 'm', 'report.html'), 'utf8'), /id="devices"/);
    } finally {
      await proxy.close();
    }

    const expected = [
      'deviceId,sent,received,lost,duplicated,reordered,connectFailures,lostRanges',
      ...Array.from({ length: DEVICES }, (_, d) => {
        const id = `dev-${String(d).padStart(6, '0')}`;
        if (id === STARVED) return `${id},20,16,4,0,0,0,4-7`;
        return id === REFUSED ? `${id},20,20,0,0,0,2,` : `${id},20,20,0,0,0,0,`;
      }),
    ];
    assert.deepEqual(csv.one, expected);
    assert.deepEqual(csv.workers, expected);
    assert.deepEqual(csv.merged, expected);
  });
});
