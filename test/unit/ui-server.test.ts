import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PreparedRun } from '../../src/web/ui-form.js';
import { startUiServer, type UiRunStatus, type UiRuns } from '../../src/web/ui-server.js';
import { tmpDir } from '../helpers/process.js';

/**
 * The UI's server with a run that is not a process (the runs are src/cli/ui.ts's business): what the server
 * says while a run starts, and the History it lists for runs that left no folder.
 */

class StubRuns implements UiRuns {
  current: UiRunStatus | undefined;
  finished: UiRunStatus[] = [];
  start(_: PreparedRun): UiRunStatus | { busy: string } {
    return { busy: 'not here' };
  }
  stop(): UiRunStatus | undefined {
    return undefined;
  }
  status(): UiRunStatus | undefined {
    return this.current;
  }
  dashboard(): string | undefined {
    return undefined;
  }
  past(): UiRunStatus[] {
    return this.finished;
  }
}

function status(over: Partial<UiRunStatus>): UiRunStatus {
  return {
    runId: 'r1',
    state: 'starting',
    startedAt: '2026-11-30T08:00:00.000Z',
    command: 'fleetload run --out res',
    exitCode: null,
    verdict: null,
    output: [],
    live: false,
    ...over,
  };
}

async function withServer(runs: UiRuns, body: (base: string) => Promise<void>): Promise<void> {
  const out = tmpDir();
  const server = await startUiServer({ host: '127.0.0.1', port: 0, out, cwd: out, env: {}, runs });
  try {
    await body(server.url);
  } finally {
    await server.close();
  }
}

const json = { 'Content-Type': 'application/json' };

describe('fleetload ui server', () => {
  test('while the run starts, its dashboard’s paths say so (503, retry), not "no run is going"', async () => {
    const runs = new StubRuns();
    await withServer(runs, async (base) => {
      // no run at all: 404 as before
      let r = await fetch(new URL('/api/fleet', base), { method: 'POST', headers: json, body: '{}' });
      assert.equal(r.status, 404);
      assert.match(((await r.json()) as { error: string }).error, /no run is going/);
      runs.current = status({ state: 'starting' });
      r = await fetch(new URL('/api/fleet', base), { method: 'POST', headers: json, body: '{"devices":5}' });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.deepEqual(await r.json(), {
        error: 'run r1 is starting: its dashboard does not answer yet; try again in a moment',
      });
      r = await fetch(new URL('/live', base));
      assert.equal(r.status, 503);
      runs.current = status({ state: 'finished', exitCode: 0, verdict: 'PASSED' });
      r = await fetch(new URL('/api/stream', base));
      assert.equal(r.status, 404, 'a finished run has no dashboard');
    });
  });

  test('History lists a run of this UI that left no folder (exit 3), with why', async () => {
    const runs = new StubRuns();
    runs.finished = [
      status({
        state: 'finished',
        exitCode: 3,
        verdict: 'UNREACHABLE',
        output: ['fleetload: consumer could not attach to mqtt://127.0.0.1:1: ECONNREFUSED'],
      }),
    ];
    await withServer(runs, async (base) => {
      const r = await fetch(new URL('/api/ui/runs', base));
      const body = (await r.json()) as {
        runs: Array<{ runId: string; verdict: string; folder: boolean; reasons: string[] }>;
      };
      assert.equal(body.runs.length, 1);
      assert.equal(body.runs[0]?.runId, 'r1');
      assert.equal(body.runs[0]?.verdict, 'UNREACHABLE');
      assert.equal(body.runs[0]?.folder, false);
      assert.deepEqual(body.runs[0]?.reasons, [
        'consumer could not attach to mqtt://127.0.0.1:1: ECONNREFUSED',
      ]);
    });
  });
});
