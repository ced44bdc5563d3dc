import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunRecord } from '../../src/run/record.js';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';

/**
 * `fleetload merge` with real processes on Mosquitto: producers (`run --consumer none`, whole fleet or segments)
 * and one `fleetload consume`, each writing its own results folder, then `fleetload merge` joins them.
 */

const readSummary = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
const readRecord = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;

/** 20 devices × 10 messages = 200, every 100 ms */
function producer(url: string, runId: string, out: string, extra: string[] = []) {
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
    out,
    ...extra,
  ]);
}

/** `fleetload consume` of one run; resolves once it is subscribed (its header line). */
async function consumer(url: string, runId: string, out: string) {
  const child = spawnCli([
    'consume',
    '-H',
    url,
    '--run-id',
    runId,
    '-t',
    '10s',
    '--grace',
    '1s',
    '--out',
    out,
  ]);
  await waitForOutput(child, / · consume · /, { timeoutMs: 20_000 });
  return child;
}

describe('fleetload merge against Mosquitto', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('a producer and a consumer in two processes merge to exact totals, lost 0', async () => {
    const root = tmpDir('fleetload-merge-e2e-');
    const c = await consumer(broker.url, 'mrg1', join(root, 'c'));
    const p = await producer(broker.url, 'mrg1', join(root, 'p'));
    assert.equal(p.code, 0, p.stderr);
    const cr = await waitForCliExit(c, 30_000);
    assert.equal(cr.code, 0, cr.stderr);
    const pDir = join(root, 'p', 'mrg1');
    const cDir = join(root, 'c', 'mrg1');
    assert.equal(readRecord(pDir).role, 'producer');
    assert.equal(readRecord(cDir).role, 'consumer');
    const m = await runCli(
      ['merge', pDir, cDir, '--out', join(root, 'm'), '--threshold', 'loss==0', '--json'],
      {
        cwd: root,
      },
    );
    assert.equal(m.code, 0, m.stderr);
    const s = JSON.parse(m.stdout) as Summary;
    assert.deepEqual(readSummary(join(root, 'm')), s);
    assert.equal(s.messages.sent, 200);
    assert.equal(s.messages.received, 200);
    assert.equal(s.messages.lost, 0);
    assert.equal(s.messages.duplicated, 0);
    assert.equal(s.latency.e2e.count, 200);
    assert.equal(s.thresholds[0]?.passed, true);
    assert.equal(s.passed, true);
    assert.ok(existsSync(join(root, 'm', 'report.html')));
    // the same folder twice: exit 2, one line, nothing written
    const twice = await runCli(['merge', pDir, cDir, cDir, '--out', join(root, 'bad')], { cwd: root });
    assert.equal(twice.code, 2, twice.stderr);
    assert.match(twice.stderr, /hold the same results/);
    assert.equal(twice.stderr.trim().split('\n').length, 1);
    assert.ok(!existsSync(join(root, 'bad')));
  });

  // needs `run --segment i/N` (the lead's branch): segments 0/2 and 1/2 and one consumer
  test('two segments (--segment 0/2, 1/2, --consumer none) and one consume: totals of one process, lost 0', async () => {
    const root = tmpDir('fleetload-merge-e2e-');
    const c = await consumer(broker.url, 'mrg2', join(root, 'c'));
    const [p0, p1] = await Promise.all([
      producer(broker.url, 'mrg2', join(root, 's0'), ['--segment', '0/2']),
      producer(broker.url, 'mrg2', join(root, 's1'), ['--segment', '1/2']),
    ]);
    assert.equal(p0.code, 0, p0.stderr);
    assert.equal(p1.code, 0, p1.stderr);
    const cr = await waitForCliExit(c, 30_000);
    assert.equal(cr.code, 0, cr.stderr);
    const dirs = [join(root, 's0', 'mrg2'), join(root, 's1', 'mrg2'), join(root, 'c', 'mrg2')];
    assert.deepEqual(readRecord(dirs[0] as string).segment, { index: 0, count: 2 });
    const m = await runCli(['merge', ...dirs, '--json'], { cwd: root });
    assert.equal(m.code, 0, m.stderr);
    const s = JSON.parse(m.stdout) as Summary;
    assert.equal(s.messages.sent, 200);
    assert.equal(s.messages.received, 200);
    assert.equal(s.messages.lost, 0);
    assert.equal(s.devices.connectedPeak, 20);
    // the per-second series, second by second over the three folders: its columns add up to the totals
    const mergedDir = join(root, 'fleetload-results', 'mrg2-merged');
    const [header, ...rows] = readFileSync(join(mergedDir, 'timeseries.csv'), 'utf8').trim().split('\n');
    const col = (name: string): number => (header as string).split(',').indexOf(name);
    const sum = (name: string): number => rows.reduce((a, r) => a + Number(r.split(',')[col(name)]), 0);
    assert.ok(rows.length >= 2, rows.join('\n'));
    assert.equal(sum('sent'), 200);
    assert.equal(sum('received'), 200);
    assert.equal(Math.max(...rows.map((r) => Number(r.split(',')[col('devices_connected')]))), 20);
    const intervals = readFileSync(join(mergedDir, 'intervals.jsonl'), 'utf8').trim().split('\n');
    assert.equal(intervals.length, rows.length);
    assert.doesNotMatch(
      readFileSync(join(mergedDir, 'report.html'), 'utf8'),
      /there are no charts over time/,
    );
    assert.deepEqual(readRecord(join(root, 'fleetload-results', 'mrg2-merged')).covers, {
      count: 2,
      segments: [0, 1],
    });
    const missing = await runCli(['merge', dirs[0] as string, dirs[2] as string, '--out', 'x'], {
      cwd: root,
    });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /segment 1\/2 missing/);
    assert.ok(!existsSync(join(root, 'x')));
  });
});
