import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/**
 * A load test that passes when nothing was measured tells a team to ship. Each case here once said PASSED (exit
 * 0); now each ends with the verdict it deserves, on real brokers.
 */

/** A "broker" that accepts TCP connections and never answers a CONNECT (a hung broker, a wrong port). */
async function blackhole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('verdicts on real faults', { skip: skipUnless('mosquitto') }, () => {
  let hole: Awaited<ReturnType<typeof blackhole>>;
  before(async () => {
    hole = await blackhole();
  });
  after(async () => {
    await hole.close();
  });

  // the run time shorter than the connect timeout used to pass: 0 connected, 0 sent, "errors none", PASSED
  for (const runTime of ['3s', '12s']) {
    test(`a broker that accepts TCP and never sends CONNACK: not PASSED (-t ${runTime}, --consumer none)`, async () => {
      const out = tmpDir();
      const r = await runCli(
        [
          'run',
          '-H',
          hole.url,
          '-u',
          '5',
          '-t',
          runTime,
          '--connect-timeout',
          '2s',
          '--consumer',
          'none',
          '--threshold',
          'e2e.p99<500',
          '--threshold',
          'loss<1%',
          '--headless',
          '--out',
          out,
        ],
        { timeoutMs: 40_000 },
      );
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stderr, /no device could connect to mqtt:\/\/127\.0\.0\.1:\d+/);
      const s = summaryIn(out);
      assert.equal(s.passed, false);
      assert.equal(s.valid, false);
      assert.equal(s.devices.connectedPeak, 0);
      assert.ok(
        s.invalid?.some((x) => x.startsWith('connected: no device connected')),
        s.invalid?.join('; '),
      );
      // thresholds on what was never measured fail as "no data", never "observed 0 ms"
      assert.deepEqual(
        s.thresholds.map((t) => [t.expr, t.passed, t.noData]),
        [
          ['e2e.p99<500', false, true],
          ['loss<1%', false, true],
        ],
      );
      assert.match(r.stdout, /✗ e2e\.p99<500 +no data/);
    });
  }

  test('the broker stops for good mid-run: INVALID (exit 5), the unsent messages counted', async () => {
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
        '8s',
        '--reconnect-min',
        '100ms',
        '--reconnect-max',
        '300ms',
        '--grace',
        '1s',
        '--threshold',
        'loss<1%',
        '--headless',
        '--out',
        out,
      ]);
      await waitForOutput(child, /devices 20\/20/, { timeoutMs: 15_000 });
      await broker.stop();
      const r = await waitForCliExit(child, 40_000);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      const s = summaryIn(out);
      const m = s.messages;
      assert.equal(s.valid, false);
      assert.equal(s.passed, false);
      assert.ok(m.scheduled > 2 * m.sent, `most of the schedule unsent: ${m.sent} of ${m.scheduled}`);
      assert.ok(
        s.invalid?.some((x) => x.startsWith(`offered: ${m.scheduled - m.sent} of ${m.scheduled} scheduled`)),
        s.invalid?.join('; '),
      );
      assert.match(r.stdout, /INVALID: offered: \d+ of \d+ scheduled messages were never sent/);
      assert.match(r.stdout, /delivered [\d.]+% of sent · [\d.]+% of scheduled/);
    } finally {
      await broker.stop();
    }
  });

  test('the consumer reads another broker: 100% overdue from the second second, INVALID (exit 5)', async () => {
    const devices: Mosquitto = await startMosquitto();
    const other: Mosquitto = await startMosquitto();
    try {
      const out = tmpDir();
      const r = await runCli(
        [
          'run',
          '-H',
          devices.url,
          '--consumer-host',
          other.url,
          '-u',
          '10',
          '-r',
          '100',
          '-t',
          '4s',
          '--grace',
          '500ms',
          '--threshold',
          'e2e.p99<500',
          '--headless',
          '--out',
          out,
        ],
        { timeoutMs: 40_000 },
      );
      assert.equal(r.code, 5, r.stdout + r.stderr);
      const s = summaryIn(out);
      assert.equal(s.messages.received, 0);
      assert.equal(s.messages.lost, s.messages.sent);
      assert.deepEqual(s.invalid, [
        `observed: the consumer received none of the ${s.messages.sent} messages sent (is it reading the right place?)`,
      ]);
      assert.equal(s.thresholds[0]?.noData, true);
      // the live line says so while the run goes, not only at the end
      assert.match(r.stdout, /steady 0:0[23]\/0:04 devices 10\/10 .* lost 0 overdue [1-9]/);
    } finally {
      await devices.stop();
      await other.stop();
    }
  });
});
