import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { childrenOf, isAlive, waitForExit } from '../helpers/process.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/**
 * `fleetload run --workers K`: K generator processes, each a segment of the fleet, merged live into one pipeline.
 * The numbers must be those of one process; a worker that dies ends the run incomplete, with no process left.
 */

describe('run --workers', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker.stop();
  });

  // 30 devices × 10 messages: a fixed count, so both runs schedule exactly the same messages
  const scenario = (workers: string, out: string) => [
    'run',
    '-H',
    broker.url,
    '-u',
    '30',
    '-r',
    '300',
    '-i',
    '100ms',
    '-t',
    '20s',
    '--messages-per-device',
    '10',
    '--qos',
    '1',
    '--workers',
    workers,
    '--headless',
    '--out',
    out,
  ];

  test('--workers 2 and --workers 1: the same scheduled, sent and received; nothing lost; e2e counted once each', async () => {
    const figures: Array<Summary['messages'] & { e2e: number; peak: number; bytes: Summary['bytes'] }> = [];
    for (const workers of ['1', '2']) {
      const out = tmpDir();
      const r = await runCli(scenario(workers, out), { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      if (workers === '2') assert.match(r.stdout, /2 workers ready, each a segment of the fleet/);
      const s = summaryIn(out);
      figures.push({
        ...s.messages,
        e2e: s.latency.e2e.count,
        peak: s.devices.connectedPeak,
        bytes: s.bytes,
      });
    }
    const [one, two] = figures;
    assert.ok(one && two);
    for (const f of [one, two]) {
      assert.equal(f.scheduled, 300);
      assert.equal(f.sent, 300);
      assert.equal(f.received, 300);
      assert.equal(f.lost, 0);
      assert.equal(f.duplicated, 0);
      assert.equal(f.e2e, f.received, 'every received message has one delay');
      assert.equal(f.peak, 30, 'the live device count is the sum of the workers');
      // the workers' bytes cross the IPC channel with their counters: each packet at least holds its payload
      assert.ok(f.bytes && f.bytes.received > 300 * 50, JSON.stringify(f.bytes));
      assert.ok(f.bytes.sent > f.bytes.received, JSON.stringify(f.bytes));
    }
    const ratio = (one.bytes?.sent ?? 0) / (two.bytes?.sent ?? 1);
    assert.ok(ratio > 0.95 && ratio < 1.05, `one process and two workers write the same bytes (${ratio})`);
  });

  test('a worker killed with SIGKILL mid-run: exit 1, the summary names its segment, no process left', async () => {
    const out = tmpDir();
    const child = spawnCli(
      [
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
        '30s',
        '--workers',
        '2',
        '--headless',
      ].concat(['--out', out]),
    );
    await waitForOutput(child, /devices 20\/20/, { timeoutMs: 20_000 });
    const pid = child.pid as number;
    const workers = childrenOf(pid).filter((p) => isAlive(p));
    assert.equal(workers.length, 2, `two worker processes under ${pid}: ${workers.join(', ')}`);
    process.kill(workers[1] as number, 'SIGKILL');
    const r = await waitForCliExit(child, 30_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const s = summaryIn(out);
    assert.equal(s.passed, false);
    assert.ok(s.incomplete, 'marked incomplete');
    assert.equal(s.incomplete?.lost.length, 1);
    assert.match(s.incomplete?.lost[0] ?? '', /^segment [01]\/2 \(pid \d+\): exited on SIGKILL$/);
    assert.match(r.stdout + r.stderr, /worker segment [01]\/2 .*exited on SIGKILL; the run ends, incomplete/);
    for (const w of workers) assert.ok(await waitForExit(w, 5000), `worker ${w} is gone`);
  });
});
