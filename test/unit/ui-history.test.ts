import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { listRuns, runFilePath, scenarioLine, verdictOf, withUnlisted } from '../../src/web/ui-history.js';
import { tmpDir } from '../helpers/process.js';
import { summaryFixture } from '../helpers/summary.js';

/**
 * History of `fleetload ui`: every run folder of --out with the verdict and exit code `fleetload run` gave it,
 * newest first; files are served by name from the listing only (no traversal, no links, no hidden files).
 */

function runDir(
  out: string,
  id: string,
  summary?: Summary | string,
  extra: Record<string, string> = {},
): string {
  const dir = join(out, id);
  mkdirSync(join(dir, 'histograms'), { recursive: true });
  if (summary !== undefined)
    writeFileSync(join(dir, 'summary.json'), typeof summary === 'string' ? summary : JSON.stringify(summary));
  writeFileSync(join(dir, 'scenario.yaml'), 'devices: 4\nrunTime: 10s\nhost: mqtt://bob:***@h:1883\n');
  writeFileSync(join(dir, 'timeseries.csv'), 'time\n');
  writeFileSync(join(dir, 'histograms', 'e2e.hdr'), 'x');
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

function fixture(): string {
  const out = tmpDir();
  runDir(out, 'passed-run', summaryFixture({ runId: 'passed-run', startedAt: '2026-01-01T10:00:00.000Z' }), {
    'report.html': '<html></html>',
  });
  runDir(
    out,
    'failed-run',
    summaryFixture({
      runId: 'failed-run',
      startedAt: '2026-01-02T10:00:00.000Z',
      passed: false,
      interrupted: true,
      scenario: { host: 'mqtts://alice:s3cret@broker:8883', devices: 50, runTimeMs: 60_000, intervalMs: 500 },
    }),
  );
  runDir(
    out,
    'invalid-run',
    summaryFixture({
      runId: 'invalid-run',
      startedAt: '2026-01-03T10:00:00.000Z',
      passed: false,
      valid: false,
      invalid: [
        'offered: 570 of 4130 scheduled messages were never sent',
        'broker: mqtt://bob:hunter2@h:1883 was lost for 3 s',
      ],
    }),
  );
  runDir(out, 'crashed-run');
  runDir(out, 'corrupt-run', '{not json');
  // not runs: a folder without run files, a hidden folder, a file, a link to a run
  mkdirSync(join(out, 'empty-folder'));
  mkdirSync(join(out, '.hidden'));
  runDir(out, '.hidden-run', summaryFixture());
  writeFileSync(join(out, 'notes.txt'), 'x');
  symlinkSync(join(out, 'passed-run'), join(out, 'linked-run'));
  // inside a run: a link out, a hidden file, an odd name
  const secret = join(tmpDir(), 'secret.txt');
  writeFileSync(secret, 'top secret');
  symlinkSync(secret, join(out, 'passed-run', 'link.txt'));
  writeFileSync(join(out, 'passed-run', '.env'), 'X=1');
  writeFileSync(join(out, 'passed-run', 'we ird.txt'), 'x');
  mkdirSync(join(out, 'passed-run', 'histograms', 'deeper'));
  writeFileSync(join(out, 'passed-run', 'histograms', 'deeper', 'x.hdr'), 'x');
  return out;
}

describe('History: the runs of the results folder', () => {
  test('every run, newest first, with verdict and exit code; non-runs left out', async () => {
    const out = fixture();
    const runs = await listRuns(out);
    const summarised = runs.filter((r) => r.verdict !== 'NO SUMMARY').map((r) => r.runId);
    assert.deepEqual(summarised, ['invalid-run', 'failed-run', 'passed-run']);
    assert.deepEqual(
      runs.map((r) => r.runId).sort(),
      ['corrupt-run', 'crashed-run', 'failed-run', 'invalid-run', 'passed-run'],
      'no hidden folder, no link, no empty folder, no file',
    );
    const by = (id: string) => runs.find((r) => r.runId === id);
    assert.equal(by('passed-run')?.verdict, 'PASSED');
    assert.equal(by('passed-run')?.exitCode, 0);
    assert.equal(by('failed-run')?.verdict, 'FAILED');
    assert.equal(by('failed-run')?.exitCode, 1);
    assert.equal(by('failed-run')?.interrupted, true);
    assert.equal(by('invalid-run')?.verdict, 'INVALID');
    assert.equal(by('invalid-run')?.exitCode, 5);
    for (const id of ['crashed-run', 'corrupt-run']) {
      assert.equal(by(id)?.verdict, 'NO SUMMARY');
      assert.equal(by(id)?.exitCode, null);
      assert.match(by(id)?.scenario ?? '', /4 devices · 10s/);
    }
    assert.equal(
      by('failed-run')?.scenario,
      '50 devices @ 5/s · 1m · every 500ms · QoS 1 · MQTT 3.1.1 · mqtts://alice:***@broker:8883',
    );
    assert.doesNotMatch(JSON.stringify(runs), /s3cret/);
  });

  test('a run’s files: regular files, one level of subfolders, safe names only', async () => {
    const out = fixture();
    const run = (await listRuns(out)).find((r) => r.runId === 'passed-run');
    assert.deepEqual(run?.files, [
      'histograms/e2e.hdr',
      'report.html',
      'scenario.yaml',
      'summary.json',
      'timeseries.csv',
    ]);
  });

  test('an absent results folder has no runs', async () => {
    assert.deepEqual(await listRuns(join(tmpDir(), 'nope')), []);
  });

  test('runFilePath serves listed files only: no traversal, links, hidden or odd names', async () => {
    const out = fixture();
    assert.equal(
      await runFilePath(out, 'passed-run', 'summary.json'),
      join(out, 'passed-run', 'summary.json'),
    );
    assert.equal(
      await runFilePath(out, 'passed-run', 'histograms/e2e.hdr'),
      join(out, 'passed-run', 'histograms', 'e2e.hdr'),
    );
    const refused: Array<[string, string]> = [
      ['passed-run', '../failed-run/summary.json'],
      ['passed-run', 'histograms/../summary.json'],
      ['passed-run', './summary.json'],
      ['passed-run', '/etc/passwd'],
      ['passed-run', 'link.txt'],
      ['passed-run', '.env'],
      ['passed-run', 'we ird.txt'],
      ['passed-run', 'histograms/deeper/x.hdr'],
      ['passed-run', 'histograms'],
      ['passed-run', ''],
      ['..', 'passed-run/summary.json'],
      ['.', 'passed-run/summary.json'],
      ['linked-run', 'summary.json'],
      ['.hidden-run', 'summary.json'],
      ['passed-run/..', 'notes.txt'],
      ['', 'notes.txt'],
      ['nope', 'summary.json'],
    ];
    for (const [id, file] of refused) {
      assert.equal(await runFilePath(out, id, file), undefined, `${id} / ${file}`);
    }
  });

  test('an INVALID run says why (summary.invalid, redacted); other verdicts have no reasons', async () => {
    const runs = await listRuns(fixture());
    const by = (id: string) => runs.find((r) => r.runId === id);
    assert.deepEqual(by('invalid-run')?.reasons, [
      'offered: 570 of 4130 scheduled messages were never sent',
      'broker: mqtt://bob:***@h:1883 was lost for 3 s',
    ]);
    for (const id of ['passed-run', 'failed-run', 'crashed-run']) assert.deepEqual(by(id)?.reasons, [], id);
    for (const r of runs) assert.equal(r.folder, true);
  });

  test('the scenario line says what each message carried: encoding and size, or the template', () => {
    const line = (over: object) => scenarioLine({ ...summaryFixture().scenario, ...over });
    assert.equal(
      line({ encoding: 'json', payloadSizeBytes: 300 }),
      '10 devices @ 5/s · 30s · every 1s · json 300 B · QoS 1 · MQTT 3.1.1 · mqtt://localhost:1883',
    );
    assert.match(
      line({ encoding: 'binary', payloadSizeBytes: 0 }),
      / · every 1s · binary, no padding · QoS 1 /,
    );
    assert.match(
      line({ encoding: 'json', payloadTemplate: 'abcdef012345' }),
      / · every 1s · json template abcdef012345 · QoS 1 /,
    );
  });

  test('runs of this UI that left no folder stay in History, with their verdict, command and why', () => {
    const listed = [
      {
        runId: 'on-disk',
        startedAt: '2026-01-01T10:00:00.000Z',
        endedAt: null,
        scenario: 'x',
        verdict: 'PASSED',
        folder: true,
        reasons: [],
        exitCode: 0,
        interrupted: false,
        files: ['summary.json'],
      },
    ];
    const past = [
      {
        runId: 'unreachable',
        startedAt: '2026-01-02T10:00:00.000Z',
        command: 'fleetload run --host mqtt://bob:***@127.0.0.1:1 --out res',
        exitCode: 3,
        verdict: 'UNREACHABLE',
        output: [
          'starting',
          'fleetload: consumer could not attach to mqtt://bob:hunter2@127.0.0.1:1: ECONNREFUSED',
        ],
      },
      {
        runId: 'on-disk',
        startedAt: '2026-01-01T10:00:00.000Z',
        command: 'c',
        exitCode: 0,
        verdict: 'PASSED',
        output: [],
      },
    ];
    const all = withUnlisted(listed, past);
    assert.deepEqual(
      all.map((r) => r.runId),
      ['unreachable', 'on-disk'],
      'newest first; a run with a folder is listed once',
    );
    assert.deepEqual(all[0], {
      runId: 'unreachable',
      startedAt: '2026-01-02T10:00:00.000Z',
      endedAt: null,
      scenario: 'fleetload run --host mqtt://bob:***@127.0.0.1:1 --out res',
      verdict: 'UNREACHABLE',
      folder: false,
      reasons: ['consumer could not attach to mqtt://bob:***@127.0.0.1:1: ECONNREFUSED'],
      exitCode: 3,
      interrupted: false,
      files: [],
    });
  });

  test('verdictOf and scenarioLine', () => {
    assert.equal(verdictOf(undefined), 'NO SUMMARY');
    assert.equal(verdictOf(summaryFixture()), 'PASSED');
    assert.equal(verdictOf(summaryFixture({ passed: false })), 'FAILED');
    assert.equal(verdictOf(summaryFixture({ passed: false, valid: false })), 'INVALID');
    // a run that lost a worker failed with what it had: FAILED, not INVALID (as its exit code)
    assert.equal(
      verdictOf(summaryFixture({ passed: false, valid: false, incomplete: { reason: 'x', lost: ['1'] } })),
      'FAILED',
    );
    assert.equal(
      scenarioLine(summaryFixture().scenario),
      '10 devices @ 5/s · 30s · every 1s · QoS 1 · MQTT 3.1.1 · mqtt://localhost:1883',
    );
  });
});
