import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, mock, test } from 'node:test';
import { parse } from 'yaml';
import { FleetloadError } from '../../src/errors.js';
import { ResultsFolder, TIMESERIES_HEADER } from '../../src/sinks/results.js';
import { decodeHistogram, newHistogram, recordMs, summarize } from '../../src/stats/histogram.js';
import type { TimeseriesRow } from '../../src/stats/summary.js';
import { summaryFixture } from '../helpers/summary.js';

const root = await mkdtemp(join(tmpdir(), 'fleetload-results-test-'));
after(() => rm(root, { recursive: true, force: true }));
let n = 0;
const freshRoot = () => join(root, `out-${++n}`);

const row = (i: number): TimeseriesRow => ({
  time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
  devicesConnected: 10 * i,
  sent: 100 + i,
  acked: 99 + i,
  failed: 1,
  received: 98 + i,
  lost: 0,
  e2eP50: 1.5,
  e2eP95: 2.25,
  e2eP99: 3.125,
  ackP50: 0.75,
  ackP99: 4,
  bytesSent: 1000 * i,
  bytesReceived: 900 * i,
});

// the round trip covers every group of summary.json, errors and thresholds included
const summary = summaryFixture({
  messages: { acked: 299, failed: 1, received: 299, lost: 1 },
  errors: [{ kind: 'puback', code: 131, reason: 'implementation specific error', count: 1 }],
  thresholds: [{ expr: 'loss<1%', value: 0.333, passed: true }],
});

const csvLines = async (dir: string) =>
  (await readFile(join(dir, 'timeseries.csv'), 'utf8')).split('\n').filter((l) => l !== '');

function isOutError(e: unknown, message: RegExp): boolean {
  assert.ok(e instanceof FleetloadError);
  assert.equal(e.code, 'E_OUT');
  assert.equal(e.exitCode, 2);
  assert.match(e.message, message);
  return true;
}

test('create makes <out>/<runId>/ (parents too) and starts timeseries.csv with its header', async () => {
  const out = join(freshRoot(), 'nested', 'deeper');
  assert.equal(existsSync(out), false);
  const f = await ResultsFolder.create(out, 'run-1');
  assert.equal(f.dir, join(out, 'run-1'));
  assert.deepEqual(await readdir(f.dir), ['timeseries.csv']);
  assert.deepEqual(await csvLines(f.dir), [TIMESERIES_HEADER]);
  assert.equal(
    TIMESERIES_HEADER,
    'time,devices_connected,sent,acked,failed,received,lost,e2e_p50,e2e_p95,e2e_p99,ack_p50,ack_p99,bytes_sent,bytes_received',
  );
  await f.close();
});

test('a full run: every file is there and reads back', async () => {
  const f = await ResultsFolder.create(freshRoot(), 'run-1');
  const scenario = {
    host: 'mqtt://user:***@broker:1883',
    devices: 10,
    runTime: '30s',
    thresholds: ['loss<1%'],
  };
  await f.writeScenario(scenario);
  for (let i = 1; i <= 3; i++) f.appendRow(row(i));

  const e2e = newHistogram();
  const publishAck = newHistogram();
  for (let i = 1; i <= 1000; i++) recordMs(e2e, i / 10);
  recordMs(publishAck, 3.5);
  await f.writeHistograms({ e2e, publishAck, connect: newHistogram() });
  await f.writeSummary(summary);
  await f.close();

  assert.deepEqual((await readdir(f.dir)).sort(), [
    'histograms',
    'scenario.yaml',
    'summary.json',
    'timeseries.csv',
  ]);

  const lines = await csvLines(f.dir);
  assert.equal(lines.length, 4);
  assert.equal(lines[0], TIMESERIES_HEADER);
  assert.equal(lines[1], '2025-01-01T00:00:01.000Z,10,101,100,1,99,0,1.5,2.25,3.125,0.75,4,1000,900');
  assert.equal(lines[3]?.split(',').length, 14, 'bytes_sent and bytes_received appended at the end');

  const json = await readFile(join(f.dir, 'summary.json'), 'utf8');
  assert.deepEqual(JSON.parse(json), summary);
  assert.ok(json.startsWith('{\n  "runId": "run-1",\n'), 'pretty-printed with 2 spaces');
  assert.ok(json.endsWith('}\n'));

  const yaml = await readFile(join(f.dir, 'scenario.yaml'), 'utf8');
  assert.ok(yaml.startsWith('# fleetload '), yaml);
  assert.match(yaml, /redacted/);
  assert.deepEqual(parse(yaml), scenario);

  assert.deepEqual((await readdir(join(f.dir, 'histograms'))).sort(), [
    'connect.hdr',
    'e2e.hdr',
    'publishAck.hdr',
  ]);
  const back = decodeHistogram(await readFile(join(f.dir, 'histograms', 'e2e.hdr'), 'utf8'));
  assert.equal(back.totalCount, 1000);
  // HDR decoding keeps every count; the max comes back as the top of its bucket (3 significant digits)
  const { max: maxBack, ...restBack } = summarize(back);
  const { max: maxOrig, ...restOrig } = summarize(e2e);
  assert.deepEqual(restBack, restOrig);
  assert.ok(maxBack >= maxOrig && maxBack <= maxOrig * 1.001, `${maxBack} vs ${maxOrig}`);
  const ack = decodeHistogram((await readFile(join(f.dir, 'histograms', 'publishAck.hdr'), 'utf8')).trim());
  assert.equal(ack.totalCount, 1);
  assert.equal(summarize(ack).p50, summarize(publishAck).p50);
  assert.equal(
    decodeHistogram(await readFile(join(f.dir, 'histograms', 'connect.hdr'), 'utf8')).totalCount,
    0,
  );
});

test('rows are buffered (appendRow never waits) and written within a second, before close', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const f = await ResultsFolder.create(freshRoot(), 'run-1');
  f.appendRow(row(1));
  f.appendRow(row(2));
  t.mock.timers.tick(999);
  assert.deepEqual(await csvLines(f.dir), [TIMESERIES_HEADER], 'nothing written before the second is up');
  t.mock.timers.tick(1);
  let lines = await csvLines(f.dir);
  for (let i = 0; i < 1000 && lines.length < 3; i++) lines = await csvLines(f.dir);
  assert.equal(lines.length, 3, 'the timer flushed both rows while the folder is still open');

  f.appendRow(row(3));
  await f.flush();
  assert.equal((await csvLines(f.dir)).length, 4, 'flush writes at once');
  f.appendRow(row(4));
  await f.close();
  assert.equal((await csvLines(f.dir)).length, 5, 'close writes the rest');
  f.appendRow(row(5));
  await f.close();
  assert.equal((await csvLines(f.dir)).length, 5, 'a row after close is dropped');
  mock.timers.reset();
});

test('summary.json is written atomically: no temporary file is left behind, a rewrite replaces it', async () => {
  const f = await ResultsFolder.create(freshRoot(), 'run-1');
  await f.writeSummary({ ...summary, passed: false });
  await f.writeSummary(summary);
  await f.close();
  assert.deepEqual((await readdir(f.dir)).sort(), ['summary.json', 'timeseries.csv']);
  assert.equal(JSON.parse(await readFile(join(f.dir, 'summary.json'), 'utf8')).passed, true);
});

test('refuses a run folder that already holds summary.json, and writes nothing into it', async () => {
  const out = freshRoot();
  const first = await ResultsFolder.create(out, 'run-1');
  first.appendRow(row(1));
  await first.writeSummary(summary);
  await first.close();
  const before = await readFile(join(first.dir, 'timeseries.csv'), 'utf8');

  await assert.rejects(ResultsFolder.create(out, 'run-1'), (e) =>
    isOutError(e, /^results folder .*run-1 already exists; pick another --run-id or --out$/),
  );
  assert.equal(await readFile(join(first.dir, 'timeseries.csv'), 'utf8'), before);
  const other = await ResultsFolder.create(out, 'run-2');
  await other.close();
});

test('reuses a run folder without summary.json (a crashed run), starting the time series afresh', async () => {
  const out = freshRoot();
  await mkdir(join(out, 'run-1'), { recursive: true });
  await writeFile(join(out, 'run-1', 'timeseries.csv'), `${TIMESERIES_HEADER}\nold,1,2,3\n`);
  const f = await ResultsFolder.create(out, 'run-1');
  await f.close();
  assert.deepEqual(await csvLines(f.dir), [TIMESERIES_HEADER]);
});

test('an unwritable root fails with E_OUT and a clear message', async () => {
  const file = join(freshRoot(), 'not-a-folder');
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, 'a file where the results root should be');
  await assert.rejects(ResultsFolder.create(file, 'run-1'), (e) =>
    isOutError(e, /^cannot create results folder .*not-a-folder.run-1: .+; choose another --out$/),
  );
  await assert.rejects(ResultsFolder.create(join(file, 'below'), 'run-1'), (e) =>
    isOutError(e, /cannot create results folder/),
  );
});

test('a failed write of the time series surfaces at close as E_OUT, never as a crash', async () => {
  const f = await ResultsFolder.create(freshRoot(), 'run-1');
  await rm(f.dir, { recursive: true });
  f.appendRow(row(1));
  await assert.rejects(f.close(), (e) => isOutError(e, /cannot write .*timeseries\.csv/));
});

test('a histogram name that is not a safe file name is a bug, not a path', async () => {
  const f = await ResultsFolder.create(freshRoot(), 'run-1');
  await assert.rejects(f.writeHistograms({ '../escape': newHistogram() }), (e) => {
    assert.ok(e instanceof FleetloadError);
    assert.equal(e.code, 'E_INTERNAL');
    return true;
  });
  assert.equal(existsSync(join(f.dir, 'histograms')), false);
  await f.close();
});
