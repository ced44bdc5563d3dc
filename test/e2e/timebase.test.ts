import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';

/**
 * One time base across processes (issue 9, item 6): a producer (`fleetload run --consumer none`) and a consumer
 * (`fleetload consume`) in two processes on one host stamp `ts` and arrival from clocks that agree, so no delay
 * comes out negative and the e2e median matches the in-process run's (producer and consumer in one process, one
 * clock) for the same load. Before the fix the consumer's arrival was Date.now() (whole ms): 10–22% negative
 * delays and a p50 ~0.5 ms low.
 */

const LOAD = [
  '-u',
  '20',
  '-r',
  '400',
  '-i',
  '50ms',
  '--messages-per-device',
  '40',
  '-t',
  '20s',
  '--qos',
  '0',
];
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('time base: producer and consumer in separate processes', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('no negative delay, and e2e p50 within 0.2 ms of the in-process run', async (t) => {
    const messages = 20 * 40;
    // reference: producer and consumer in one process (the run's own consumer on the same broker)
    const refOut = tmpDir();
    const ref = await runCli([
      'run',
      '-H',
      broker.url,
      '--run-id',
      'tb-ref',
      ...LOAD,
      '--headless',
      '--out',
      refOut,
    ]);
    assert.equal(ref.code, 0, ref.stderr);
    const inProcess = readJson<Summary>(join(refOut, 'tb-ref', 'summary.json'));
    assert.equal(inProcess.messages.received, messages);

    // the same load with the consumer in its own process; it prints its banner once attached
    const out = tmpDir();
    const consumer = spawnCli([
      'consume',
      '-H',
      broker.url,
      '--run-id',
      'tb-x',
      '-t',
      '6s',
      '--grace',
      '1s',
      '--out',
      out,
    ]);
    await waitForOutput(consumer, ' · consume · ', { timeoutMs: 20_000 });
    const prod = await runCli([
      'run',
      '-H',
      broker.url,
      '--consumer',
      'none',
      '--run-id',
      'tb-x',
      ...LOAD,
      '--headless',
      '--out',
      tmpDir(),
    ]);
    assert.equal(prod.code, 0, prod.stderr);
    const c = await waitForCliExit(consumer, 30_000);
    assert.equal(c.code, 0, c.stderr);
    const crossProcess = readJson<Summary>(join(out, 'tb-x', 'summary.json'));
    const consumerJson = readJson<{ negativeDelay: number }>(join(out, 'tb-x', 'consumer.json'));

    assert.equal(crossProcess.messages.received, messages);
    assert.equal(consumerJson.negativeDelay, 0, 'no arrival before its scheduled ts');
    assert.deepEqual(
      crossProcess.errors.filter((e) => e.code === 'negative-delay'),
      [],
    );
    assert.deepEqual(
      inProcess.errors.filter((e) => e.code === 'negative-delay'),
      [],
    );
    const p50In = inProcess.latency.e2e.p50;
    const p50Cross = crossProcess.latency.e2e.p50;
    t.diagnostic(`e2e p50: in-process ${p50In} ms, across processes ${p50Cross} ms`);
    assert.ok(
      Math.abs(p50Cross - p50In) <= 0.2,
      `e2e p50 in-process ${p50In} ms, across processes ${p50Cross} ms: more than 0.2 ms apart`,
    );
  });
});
