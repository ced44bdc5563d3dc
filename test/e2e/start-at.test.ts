import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, tmpDir } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/** `--start-at`: processes started apart begin their fleets together; a late one fails or joins, as asked. */

describe('--start-at', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker.stop();
  });
  const args = (out: string, ...more: string[]) => [
    'run',
    '-H',
    broker.url,
    '-u',
    '5',
    '-t',
    '2s',
    '--consumer',
    'none',
    '--headless',
    '--out',
    out,
    ...more,
  ];

  test('two processes started 1.5 s apart begin their fleets within 50 ms of the instant', async () => {
    const at = new Date(Date.now() + 4000).toISOString();
    const outs = [tmpDir(), tmpDir()];
    const first = runCli(args(outs[0] as string, '--start-at', at), { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    const second = runCli(args(outs[1] as string, '--start-at', at, '--workers', '2'), { timeoutMs: 30_000 });
    for (const r of await Promise.all([first, second])) {
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /ready; the fleet starts at /);
    }
    const starts = outs.map((o) => summaryIn(o).start);
    for (const st of starts) {
      assert.ok(st, 'summary.start recorded');
      assert.equal(st.at, new Date(at).toISOString());
      assert.ok(Math.abs(st.skewMs) < 50, `start skew ${st.skewMs} ms`);
      assert.equal(st.joined, undefined);
    }
    // the fleet really began at the instant: the first interval is cut a second after it
    for (const o of outs) {
      const [runId] = readdirSync(o);
      const first = JSON.parse(
        readFileSync(join(o, String(runId), 'intervals.jsonl'), 'utf8').split('\n')[0] ?? '',
      );
      const t = Date.parse(first.time) - first.durationMs;
      assert.ok(
        Math.abs(t - Date.parse(at)) < 100,
        `first interval began ${t - Date.parse(at)} ms from the instant`,
      );
    }
  });

  test('started after the instant: exit 2 saying how late, nothing written; --late-start join starts at once', async () => {
    const past = new Date(Date.now() - 3000).toISOString();
    const out = tmpDir();
    const late = await runCli(args(out, '--start-at', past), { timeoutMs: 30_000 });
    assert.equal(late.code, 2, late.stdout + late.stderr);
    assert.match(late.stderr, /^fleetload: started \d+\.\d s after --start-at .*--late-start join/m);
    assert.equal(existsSync(out) ? readdirSync(out).length : 0, 0, 'nothing written');
    const joined = await runCli(args(out, '--start-at', past, '--late-start', 'join'), { timeoutMs: 30_000 });
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    const s = summaryIn(out);
    assert.equal(s.start?.joined, true);
    assert.ok((s.start?.skewMs ?? 0) >= 3000, `skew ${s.start?.skewMs}`);
  });

  test('a bad instant is input: exit 2', async () => {
    const r = await runCli(args(tmpDir(), '--start-at', 'tomorrow'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /startAt: must be an RFC 3339 instant/);
  });
});
