import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { Summary } from '../../src/stats/summary.js';
import { spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';

/**
 * Fault tier, hostile input (issue 12): a message with the maximum seq on the run's own topic. Before the fix it
 * froze the whole run (sending included) for ~50 s per message while the ledger filled the range up to 2³²−1.
 * Now it is counted out of window (and foreign), and the fleet sends exactly its schedule.
 */

describe('hostile seqs on the run topic', { skip: skipUnless('mosquitto') }, () => {
  test('max-seq messages mid-run: counted seq-out-of-window, generator unaffected, nothing lost', {
    timeout: 60_000,
  }, async () => {
    const broker = await startMosquitto();
    const injector = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, connectTimeout: 5000 });
    try {
      const out = tmpDir();
      const runId = 'hostile-max-seq';
      const child = spawnCli([
        'run',
        '-H',
        broker.url,
        '-u',
        '20',
        '-r',
        '200',
        '-i',
        '100ms',
        '--messages-per-device',
        '30',
        '-t',
        '20s',
        '--qos',
        '1',
        '--run-id',
        runId,
        '--headless',
        '--out',
        out,
      ]);
      await waitForOutput(child, /devices 20\/20/, { timeoutMs: 15_000 });
      const hostile = (deviceId: string) =>
        JSON.stringify({ deviceId, seq: 4294967295, ts: Date.now(), runId, temperature: 21 });
      // a real device of the run (twice), and a device id the run does not have
      await injector.publishAsync(`fleetload/${runId}/dev-000001`, hostile('dev-000001'), { qos: 1 });
      await injector.publishAsync(`fleetload/${runId}/dev-000001`, hostile('dev-000001'), { qos: 1 });
      await injector.publishAsync(`fleetload/${runId}/dev-999999`, hostile('dev-999999'), { qos: 1 });
      const r = await waitForCliExit(child, 45_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const [dir] = readdirSync(out);
      assert.ok(dir);
      const s = JSON.parse(readFileSync(join(out, dir, 'summary.json'), 'utf8')) as Summary;
      const m = s.messages;
      assert.equal(m.scheduled, 600);
      assert.equal(m.sent, m.scheduled, 'sending stayed on schedule');
      assert.equal(m.sent, m.acked + m.failed + m.unconfirmed);
      assert.equal(m.received, 603);
      assert.equal(m.foreign, 3, 'the max-seq messages count as foreign');
      assert.ok(m.received - m.duplicated - m.foreign <= m.sent, 'received - duplicated - foreign <= sent');
      assert.equal(m.lost, 0, 'no range filled: nothing counted lost');
      assert.equal(m.duplicated, 0);
      assert.equal(s.latency.e2e.count, 600, 'no delay recorded for the hostile messages');
      const e = s.errors.find((x) => x.code === 'seq-out-of-window');
      assert.ok(e && e.kind === 'measurement' && e.count === 3, JSON.stringify(s.errors));
      assert.equal(s.passed, true);
    } finally {
      await injector.endAsync();
      await broker.stop();
    }
  });
});
