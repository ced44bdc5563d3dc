import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { RIDE_OUT_OUTAGE, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/** Fault tier: the real broker is killed and restarted under a running fleet. */

describe('broker faults', { skip: skipUnless('mosquitto') }, () => {
  test('Mosquitto SIGKILLed and restarted mid-run: every device comes back, no seq reused, the offline burst is sent', async () => {
    const broker = await startMosquitto();
    try {
      const out = tmpDir();
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
        '-t',
        '9s',
        ...RIDE_OUT_OUTAGE,
        '--headless',
        '--out',
        out,
      ]);
      await waitForOutput(child, /devices 20\/20/, { timeoutMs: 15_000 });
      await broker.outage(1500);
      const r = await waitForCliExit(child, 40_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const s = summaryIn(out);
      const m = s.messages;
      assert.ok(s.devices.reconnects >= 20, `every device reconnected (${s.devices.reconnects})`);
      assert.equal(m.sent, m.acked + m.failed + m.unconfirmed);
      assert.equal(m.scheduled, m.sent, 'offline buffer: every due message was eventually sent');
      assert.ok(m.failed > 0 || m.acked === m.sent, 'in-flight messages at the kill are counted failed');
      assert.equal(m.duplicated, 0, 'seq never reused across reconnects');
      // the burst keeps its scheduled ts (its delay shows in e2e where it is received); the outage is not the
      // generator being late, so it is no schedule lag and no saturation
      assert.ok(
        s.latency.scheduleLag.max < 1000,
        `no outage in schedule lag (${s.latency.scheduleLag.max} ms)`,
      );
      assert.equal(s.generator.saturated, false);
      assert.equal(s.valid, true, s.invalid?.join('; '));
      assert.ok(s.errors.some((e) => e.kind === 'socket' || e.kind === 'inflight-lost'));
    } finally {
      await broker.stop();
    }
  });

  test('keepalive: devices that publish less often than the keepalive stay connected (PINGREQ)', async () => {
    const broker = await startMosquitto();
    try {
      const out = tmpDir();
      const r = await runCli([
        'run',
        '-H',
        broker.url,
        '-u',
        '5',
        '-r',
        '100',
        '-i',
        '20s',
        '-t',
        '7s',
        '--keepalive',
        '2s',
        '--headless',
        '--consumer',
        'none',
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const s = summaryIn(out);
      // Mosquitto drops a client silent for 1.5 × keepalive (3 s); the run lasts 7 s
      assert.equal(s.devices.reconnects, 0, JSON.stringify(s.errors));
      assert.equal(s.devices.connectedPeak, 5);
    } finally {
      await broker.stop();
    }
  });
});
