import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/**
 * A producer whose clock is 300 ms ahead (as on another machine with a bad clock) and a consumer in another process:
 * with --clock-ref the producer stamps ts in the consumer's clock and the delays are right; without it the
 * producer's summary says its delays assume synced clocks, and the consumer sees them come out negative.
 */

const shift = fileURLToPath(new URL('../fixtures/shift-clock.mjs', import.meta.url));
const SHIFT_MS = 300;

describe('--clock-ref and --time-port', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker.stop();
  });

  for (const withRef of [true, false]) {
    test(
      withRef ? 'with --clock-ref: delays right across a 300 ms clock error' : 'without: the summary says so',
      async () => {
        const runId = `clock-${withRef ? 'ref' : 'none'}`;
        const consumerOut = tmpDir();
        const consumer = spawnCli([
          'consume',
          '-H',
          broker.url,
          '--run-id',
          runId,
          '-t',
          '5s',
          '--grace',
          '1s',
          '--time-port',
          '0',
          '--accept',
          'observed',
          '--out',
          consumerOut,
        ]);
        const line = await waitForOutput(consumer, /answering time probes on UDP port (\d+)/, {
          timeoutMs: 15_000,
        });
        const port = Number(/port (\d+)/.exec(line)?.[1]);
        await waitForOutput(consumer, /· consume · /, { timeoutMs: 15_000 });
        const producerOut = tmpDir();
        const producer = await runCli(
          [
            'run',
            '-H',
            broker.url,
            '--run-id',
            runId,
            '-u',
            '10',
            '-i',
            '100ms',
            '-t',
            '2s',
            '--consumer',
            'none',
            '--headless',
            '--out',
            producerOut,
            ...(withRef ? ['--clock-ref', `127.0.0.1:${port}`] : []),
          ],
          {
            nodeArgs: ['--import', shift],
            env: { FLEETLOAD_TEST_CLOCK_SHIFT_MS: String(SHIFT_MS) },
            timeoutMs: 30_000,
          },
        );
        assert.equal(producer.code, 0, producer.stdout + producer.stderr);
        const c = await waitForCliExit(consumer, 30_000);
        assert.equal(c.code, 0, c.stdout + c.stderr);
        const p = summaryIn(producerOut);
        const s = summaryIn(consumerOut);
        assert.equal(s.messages.received, p.messages.sent);
        const negative = s.errors.find((e) => e.code === 'negative-delay')?.count ?? 0;
        if (withRef) {
          assert.equal(p.clock?.reference, `127.0.0.1:${port}`);
          assert.ok(Math.abs((p.clock?.offsetMs ?? 0) + SHIFT_MS) < 5, `offset ${p.clock?.offsetMs} ms`);
          assert.ok((p.clock?.errorMs ?? 99) < 5, `error bound ${p.clock?.errorMs} ms`);
          assert.equal(negative, 0);
          assert.ok(s.latency.e2e.p50 < 5, `e2e p50 ${s.latency.e2e.p50} ms (loopback)`);
        } else {
          assert.equal(p.clock?.reference, null);
          assert.match(p.clock?.note ?? '', /assume its clock agrees/);
          assert.equal(negative, s.messages.received, 'every delay came out negative: the clocks disagree');
        }
      },
    );
  }

  test('--clock-ref that nobody answers: exit 3 naming it, nothing written', async () => {
    const out = tmpDir();
    const r = await runCli(
      ['run', '-H', broker.url, '--clock-ref', '127.0.0.1:9', '--headless', '--out', out],
      {
        timeoutMs: 30_000,
      },
    );
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /--clock-ref 127\.0\.0\.1:9: no answer to 16 time probes/);
    assert.deepEqual(readdirSync(out), []);
  });
});
