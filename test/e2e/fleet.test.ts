import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { IntervalRecord } from '../../src/stats/summary.js';
import { cliOutput, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';

/**
 * "Edit a running test" end to end: the built CLI with its dashboard (embedded broker), POST /api/fleet once all
 * ten devices are connected, and the run's own files show the fleet shrink to four. No browser: the page's side
 * is test/e2e/web.test.ts.
 */

test('fleetload run: POST /api/fleet {devices: 4} shrinks the running fleet; the run still ends normally', async () => {
  const cwd = tmpDir('fleetload-fleet-');
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
      '8s',
      '--consumer',
      'none',
      '--out',
      'tmp',
    ],
    { cwd },
  );
  try {
    const line = await waitForOutput(child, /dashboard: http:\/\/\S+/, { timeoutMs: 20_000 });
    const url = line.replace(/^dashboard: /, '');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    await waitForOutput(child, 'devices 10/10', { timeoutMs: 20_000 });

    const res = await fetch(new URL('/api/fleet', url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: new URL(url).origin },
      // the form sends both settings; only the one that changes is said (once, as its event)
      body: JSON.stringify({ devices: 4, intervalMs: 100 }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { devices: 4, intervalMs: 100 });
    // the live line follows the engine, against the new target
    await waitForOutput(child, 'devices 4/4', { timeoutMs: 10_000 });

    const result = await waitForCliExit(child, 40_000);
    assert.equal(result.code, 0, `exit code${result.stdout}${result.stderr}`);
    assert.equal(
      result.stdout.match(/^event \d+:\d\d load: 10 → 4 devices \(dashboard\)$/gm)?.length,
      1,
      result.stdout,
    );
    assert.doesNotMatch(result.stdout, /fleet size set to|interval set to|load: every/);

    const [runId] = readdirSync(out);
    assert.ok(runId, `a run folder in ${out}`);
    const dir = join(out, runId);
    assert.ok(existsSync(join(dir, 'summary.json')), 'summary.json written');
    const records = readFileSync(join(dir, 'intervals.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as IntervalRecord);
    const connected = records.map((r) => r.devicesConnected);
    const full = connected.indexOf(10);
    assert.ok(full >= 0, `10 connected at some point: ${connected}`);
    const after = connected.slice(full).indexOf(4);
    assert.ok(after > 0, `4 connected after the change: ${connected}`);
    // once down to four, the fleet stays there until the drain
    const steady = records.slice(full + after).filter((r) => r.phase !== 'drain');
    assert.ok(
      steady.every((r) => r.devicesConnected === 4),
      `stays at 4: ${connected}`,
    );
    // and publishes at the rate four devices give (10 msg/s each), not ten devices' 100/s
    const whole = steady.filter((r) => r.durationMs >= 900).slice(1);
    assert.ok(whole.length >= 1, `a whole interval at 4 devices: ${connected}`);
    for (const r of whole) {
      const rate = ((r.counters.sent ?? 0) * 1000) / r.durationMs;
      assert.ok(rate > 25 && rate < 60, `${rate} msg/s with 4 devices every 100 ms`);
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      console.log(cliOutput(child).stdout);
    }
  }
});
