import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { startMqttProxy } from '../helpers/mqtt-proxy.js';
import { skipUnless } from '../helpers/services.js';

/**
 * One segment of two is slowed on purpose (a proxy holds its PUBLISH frames 300 ms on the way to the broker). The
 * merged p99 shows it; the mean of the two segments' p99s would hide it (~half); the threshold is judged on the
 * merged value. Real processes: two `run --segment` producers with one --start-at, one `consume`, one `merge`.
 */

function only(out: string): string {
  const [dir] = readdirSync(out);
  assert.ok(dir, `a results folder in ${out}`);
  return join(out, dir);
}
const summaryOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;

test('a slowed segment: merged p99 reflects it, the mean of per-segment p99s would not', {
  skip: skipUnless('mosquitto'),
}, async () => {
  const broker = await startMosquitto();
  const proxy = await startMqttProxy({
    target: { host: '127.0.0.1', port: broker.port },
    delayMs: 300,
    direction: 'to-broker',
  });
  try {
    const runId = 'slow-seg';
    const at = new Date(Date.now() + 3000).toISOString();
    const outs = { c: tmpDir(), s0: tmpDir(), s1: tmpDir(), m: join(tmpDir(), 'merged') };
    const consumer = spawnCli([
      'consume',
      '-H',
      broker.url,
      '--run-id',
      runId,
      '-t',
      '8s',
      '--grace',
      '1s',
      '--out',
      outs.c,
    ]);
    await waitForOutput(consumer, /· consume · /, { timeoutMs: 15_000 });
    const segment = (i: number, url: string, out: string) =>
      runCli(
        [
          'run',
          '-H',
          url,
          '--run-id',
          runId,
          '--segment',
          `${i}/2`,
          '--start-at',
          at,
          '-u',
          '20',
          '-i',
          '100ms',
        ].concat([
          '--messages-per-device',
          '20',
          '-t',
          '10s',
          '--qos',
          '1',
          '--consumer',
          'none',
          '--headless',
          '--out',
          out,
        ]),
        { timeoutMs: 40_000 },
      );
    const [r0, r1] = await Promise.all([segment(0, proxy.url, outs.s0), segment(1, broker.url, outs.s1)]);
    assert.equal(r0.code, 0, r0.stdout + r0.stderr);
    assert.equal(r1.code, 0, r1.stdout + r1.stderr);
    const c = await waitForCliExit(consumer, 30_000);
    assert.equal(c.code, 0, c.stdout + c.stderr);

    const s0 = summaryOf(only(outs.s0));
    const s1 = summaryOf(only(outs.s1));
    const slow = s0.latency.publishAck.p99;
    const fast = s1.latency.publishAck.p99;
    assert.ok(slow >= 295, `slow segment ack p99 ${slow}`);
    assert.ok(fast < slow / 2, `fast segment ack p99 ${fast}`);
    // both fleets began at the one instant
    for (const s of [s0, s1]) {
      assert.equal(s.start?.at, at);
      assert.ok(Math.abs(s.start?.skewMs ?? 99) < 50, `start skew ${s.start?.skewMs} ms`);
    }
    // a threshold the mean of the per-segment p99s passes (the slow half of the messages does not)
    const meanOfP99s = (slow + fast) / 2;
    const limit = Math.ceil(meanOfP99s) + 1;

    const m = await runCli(
      [
        'merge',
        only(outs.s0),
        only(outs.s1),
        only(outs.c),
        '--out',
        outs.m,
        '--threshold',
        'publishAck.p99<50',
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(m.code, 1, m.stdout + m.stderr);
    const merged = summaryOf(outs.m);
    assert.equal(merged.messages.sent, 400);
    assert.equal(merged.messages.received, 400);
    assert.equal(merged.messages.lost, 0);
    // the merged p99 lies in the slow half: at least its median (300 ms held)
    assert.ok(merged.latency.publishAck.p99 >= 295, `merged ack p99 ${merged.latency.publishAck.p99}`);
    assert.ok(
      merged.latency.publishAck.p99 > limit,
      `merged p99 ${merged.latency.publishAck.p99} > ${limit}`,
    );
    assert.ok(meanOfP99s < limit, `the mean of per-segment p99s (${meanOfP99s}) would pass < ${limit}`);
    assert.equal(merged.thresholds[0]?.passed, false, 'judged on the merged p99');
    // the consumer sees the slow half late too: the merged e2e p99 carries the 60 ms, its p25 does not
    assert.ok(merged.latency.e2e.p99 >= 295, `merged e2e p99 ${merged.latency.e2e.p99}`);
    assert.ok(merged.latency.e2e.min < 200, `the fast half is fast (min ${merged.latency.e2e.min})`);
  } finally {
    await proxy.close();
    await broker.stop();
  }
});
