import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { IntervalRecord, Summary } from '../../src/stats/summary.js';
import { chromiumSkip } from '../helpers/browser.js';
import { cliOutput, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { reportMarkers } from '../helpers/markers.js';

/**
 * Events end to end (docs/guide/events.md): the built CLI with its dashboard and the embedded broker; the
 * dashboard lowers the fleet, then raises it again. The load changes are events in intervals.jsonl, summary.json
 * and report.html (the event log, and a marker on every chart, drawn in Chromium); the returning devices are no
 * reconnects; the bytes add up.
 */

const skipBrowser = chromiumSkip('report markers');

async function postFleet(url: string, devices: number): Promise<void> {
  const res = await fetch(new URL('/api/fleet', url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: new URL(url).origin },
    body: JSON.stringify({ devices }),
  });
  assert.equal(res.status, 200, await res.text());
}

test('dashboard lowers then raises the fleet: load events everywhere, reconnects stay 0, bytes add up', async () => {
  const cwd = tmpDir('fleetload-events-');
  const out = join(cwd, 'tmp');
  const child = spawnCli(
    [
      'run',
      '--web-port',
      '0',
      '-u',
      '10',
      '-r',
      '100',
      '-i',
      '100ms',
      '-t',
      '9s',
      '--payload-size',
      '200',
      '--out',
      'tmp',
    ],
    { cwd },
  );
  try {
    const line = await waitForOutput(child, /dashboard: http:\/\/\S+/, { timeoutMs: 20_000 });
    const url = line.replace(/^dashboard: /, '');
    await waitForOutput(child, 'devices 10/10', { timeoutMs: 20_000 });
    await postFleet(url, 4);
    await waitForOutput(child, 'devices 4/4', { timeoutMs: 10_000 });
    await postFleet(url, 10);
    await waitForOutput(child, /devices 4\/4[\s\S]*devices 10\/10/, { timeoutMs: 10_000 });
    const r = await waitForCliExit(child, 40_000);
    assert.equal(r.code, 0, `exit code${r.stdout}${r.stderr}`);
    // the terminal says it when it happens, and in the summary
    assert.match(r.stdout, /event 0:\d\d load: 10 → 4 devices \(dashboard\)/);
    assert.match(
      r.stdout,
      /^load +10 → 4 devices at 0:\d\d \(dashboard\), 4 → 10 devices at 0:\d\d \(dashboard\)$/m,
    );

    const [runId] = readdirSync(out);
    assert.ok(runId);
    const dir = join(out, runId);
    const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
    const loads = (s.events ?? []).filter((e) => e.kind === 'load');
    assert.deepEqual(
      loads.map((e) => [e.from, e.to, e.source, e.setting]),
      [
        [10, 4, 'dashboard', 'devices'],
        [4, 10, 'dashboard', 'devices'],
      ],
    );
    assert.ok((loads[0]?.elapsedMs ?? 0) > 0 && (loads[0]?.elapsedMs ?? 0) < (loads[1]?.elapsedMs ?? 0));
    assert.equal(s.devices.reconnects, 0, 'parked devices that come back are no reconnects');
    assert.equal(
      (s.events ?? []).filter((e) => e.kind.startsWith('broker')).length,
      0,
      'a fleet lowered on purpose is no outage',
    );

    const records = readFileSync(join(dir, 'intervals.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as IntervalRecord);
    const inRecords = records.flatMap((x) => x.events ?? []).filter((e) => e.kind === 'load');
    assert.deepEqual(inRecords, loads, 'the same events in their intervals');
    assert.ok(
      records.every((x) => x.events === undefined || x.events.length > 0),
      'events only when non-empty',
    );

    // bytes: every PUBLISH carries at least its payload; the consumer counted what it received
    assert.ok(s.bytes, 'summary.bytes');
    assert.ok(s.bytes.sent >= s.messages.sent * 200, `${s.bytes.sent} B for ${s.messages.sent} messages`);
    assert.ok(s.bytes.received >= s.messages.received * 200, `${s.bytes.received} B received`);
    assert.ok(s.bytes.received > 0 && s.bytes.sentPerSec > 0 && s.bytes.receivedPerSec > 0);
    assert.equal(
      records.reduce((n, x) => n + (x.counters.bytesSent ?? 0), 0),
      s.bytes.sent,
      'the intervals add up to the total',
    );
    const csv = readFileSync(join(dir, 'timeseries.csv'), 'utf8').trim().split('\n');
    assert.match(csv[0] ?? '', /,bytes_sent,bytes_received$/);

    // report.html: the header says the load as it ran; the event log and the data for the markers
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.match(html, /10 → 4 devices at 0:\d\d \(dashboard\), 4 → 10 devices at 0:\d\d \(dashboard\)/);
    assert.match(html, /<tr data-kind="load">/);
    const data = JSON.parse(/id="report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '{}') as {
      events?: unknown[];
      charts?: Array<{ id: string }>;
    };
    assert.equal(data.events?.length, s.events?.length);
    assert.ok(
      data.charts?.some((c) => c.id === 'bytes'),
      'a bytes chart',
    );
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      console.log(cliOutput(child).stdout);
    }
  }
});

test('report.html draws each load change as a marker on every chart over time', {
  skip: skipBrowser,
}, async () => {
  const cwd = tmpDir('fleetload-events-markers-');
  const child = spawnCli(
    ['run', '--web-port', '0', '-u', '6', '-r', '100', '-i', '200ms', '-t', '6s', '--out', 'tmp'],
    { cwd },
  );
  try {
    const line = await waitForOutput(child, /dashboard: http:\/\/\S+/, { timeoutMs: 20_000 });
    const url = line.replace(/^dashboard: /, '');
    await waitForOutput(child, 'devices 6/6', { timeoutMs: 20_000 });
    await postFleet(url, 2);
    const r = await waitForCliExit(child, 40_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = join(cwd, 'tmp');
    const [runId] = readdirSync(out);
    assert.ok(runId);
    const drawn = await reportMarkers(join(out, runId, 'report.html'));
    assert.deepEqual(drawn.problems, []);
    // every chart over time (all but the percentile distribution) carries the marker
    assert.equal(drawn.byKind.load, drawn.charts - 1, JSON.stringify(drawn));
    assert.match(drawn.titles[0] ?? '', /^0:\d\d load: 6 → 2 devices \(dashboard\)$/);
    assert.equal(drawn.logRows.load, 1);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
