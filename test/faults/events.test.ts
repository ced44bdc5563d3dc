import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { IntervalRecord } from '../../src/stats/summary.js';
import { chromiumSkip } from '../helpers/browser.js';
import { spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { reportMarkers } from '../helpers/markers.js';
import { RIDE_OUT_OUTAGE, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/**
 * Fault tier, events (docs/guide/events.md): a real Mosquitto killed and restarted under a running fleet and its
 * consumer. The run says so: broker-lost then broker-back, consumer disconnected then reconnected, in summary.json,
 * in the interval they happened in, and as markers on the charts of report.html.
 */

const skip = skipUnless('mosquitto') || chromiumSkip('broker outage markers');

describe('events of a broker outage', { skip }, () => {
  test('Mosquitto killed and restarted mid-run: broker-lost / broker-back and the consumer drop, on the charts', async () => {
    const broker = await startMosquitto();
    try {
      const out = tmpDir();
      const child = spawnCli([
        'run',
        '-H',
        broker.url,
        '-u',
        '20',
        '-r',
        '200',
        '-i',
        '200ms',
        '-t',
        '10s',
        ...RIDE_OUT_OUTAGE,
        '--headless',
        '--out',
        out,
      ]);
      await waitForOutput(child, /devices 20\/20/, { timeoutMs: 15_000 });
      await new Promise((r) => setTimeout(r, 1200));
      await broker.outage(2500);
      const r = await waitForCliExit(child, 40_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /event 0:\d\d broker-lost: broker lost: \d+ of \d+ connected devices dropped/);

      const s = summaryIn(out);
      const events = s.events ?? [];
      const kinds = events.map((e) => e.kind);
      const at = (k: string) => kinds.indexOf(k as never);
      for (const k of ['broker-lost', 'broker-back', 'consumer-disconnected', 'consumer-reconnected'])
        assert.ok(at(k) >= 0, `${k} in ${JSON.stringify(events)}`);
      assert.equal(kinds.filter((k) => k === 'broker-lost').length, 1, 'one outage, one event');
      const lost = events[at('broker-lost')];
      const back = events[at('broker-back')];
      assert.ok(lost && back);
      assert.ok((lost.count ?? 0) >= 10, `most of the 20 devices dropped (${lost.count})`);
      assert.ok(back.atMs > lost.atMs);
      assert.ok((back.downMs ?? 0) >= 1000, `down for the outage (${back.downMs} ms)`);
      assert.ok(
        (events[at('consumer-reconnected')]?.atMs ?? 0) > (events[at('consumer-disconnected')]?.atMs ?? 0),
      );
      assert.ok(s.devices.reconnects >= 10, 'real reconnects still count');

      const [runId] = readdirSync(out);
      assert.ok(runId);
      const dir = join(out, runId);
      const records = readFileSync(join(dir, 'intervals.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as IntervalRecord);
      const lostIn = records.find((x) => x.events?.some((e) => e.kind === 'broker-lost'));
      assert.ok(lostIn, 'broker-lost in its interval record');
      assert.ok((lostIn.counters.dropped ?? 0) > 0, 'the interval it was found in has the drops');

      const drawn = await reportMarkers(join(dir, 'report.html'));
      assert.deepEqual(drawn.problems, []);
      const timeCharts = drawn.charts - 1;
      assert.equal(drawn.byKind['broker-lost'], timeCharts, JSON.stringify(drawn.byKind));
      assert.equal(drawn.byKind['broker-back'], timeCharts, JSON.stringify(drawn.byKind));
      assert.equal(drawn.byKind['consumer-disconnected'], timeCharts);
      assert.equal(drawn.logRows['broker-lost'], 1);
    } finally {
      await broker.stop();
    }
  });
});
