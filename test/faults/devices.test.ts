import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, tmpDir } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { startMqttProxy } from '../helpers/mqtt-proxy.js';
import { skipUnless } from '../helpers/services.js';

/**
 * "What happened, and to whom" (issue #13): devices publish through a proxy that starves three chosen devices
 * (by the client id of their CONNECT) for a while — their PUBLISH frames 5..14 never reach the broker — while the
 * consumer reads Mosquitto directly. devices.csv must list exactly those devices with lost > 0, each with the
 * count the proxy dropped and the seq range 5–14 with its scheduled times; summary.json, the console and the
 * report must name them too. QoS 0 on the devices: a starved QoS 1 device would wait for acks that never come.
 */

const DEVICES = 12;
const PER_DEVICE = 30;
const INTERVAL_MS = 50;
const STARVED = ['dev-000002', 'dev-000005', 'dev-000009'];
/** the PUBLISH frames of a starved connection that are dropped: 5..14 (seqs 5..14, QoS 0, no reconnect) */
const FROM = 5;
const TO = 14;

interface CsvRow {
  deviceId: string;
  sent: number;
  received: number;
  lost: number;
  lostRanges: string;
}

function readCsv(file: string): CsvRow[] {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = (head as string).split(',');
  return lines.map((l) => {
    const v = l.split(',');
    const at = (name: string) => v[cols.indexOf(name)] as string;
    return {
      deviceId: at('deviceId'),
      sent: Number(at('sent')),
      received: Number(at('received')),
      lost: Number(at('lost')),
      lostRanges: at('lostRanges'),
    };
  });
}

describe('per-device breakdown: the devices a proxy starved, and only they', {
  skip: skipUnless('mosquitto'),
}, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('devices.csv, summary.json devicesTop, the console and the report name exactly the starved devices', async () => {
    const seen = new Map<string, number>();
    const proxy = await startMqttProxy({
      target: { host: '127.0.0.1', port: broker.port },
      direction: 'to-broker',
      starve: (clientId) => {
        if (!STARVED.some((d) => clientId.startsWith(`${d}-`))) return false;
        const n = (seen.get(clientId) ?? 0) + 1;
        seen.set(clientId, n);
        return n >= FROM && n <= TO;
      },
    });
    try {
      const out = tmpDir();
      const r = await runCli(
        [
          'run',
          '-H',
          proxy.url,
          '--consumer-host',
          broker.url,
          '-u',
          String(DEVICES),
          '-r',
          '1000',
          '-i',
          `${INTERVAL_MS}ms`,
          '--messages-per-device',
          String(PER_DEVICE),
          '-t',
          '20s',
          '--qos',
          '0',
          '--consumer-qos',
          '0',
          '--grace',
          '2s',
          '--headless',
          '--out',
          out,
        ],
        { timeoutMs: 40_000 },
      );
      const [runId] = readdirSync(out);
      assert.ok(runId, r.stderr);
      const dir = join(out, runId);
      const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
      const dropped = TO - FROM + 1;
      // the proxy did what it was told: exactly the starved devices, `dropped` frames each
      assert.deepEqual(
        [...proxy.starvedBy].map(([id, n]) => [id.slice(0, 10), n]).sort(),
        STARVED.map((d) => [d, dropped]),
      );
      assert.equal(s.messages.sent, DEVICES * PER_DEVICE, JSON.stringify(s.messages));
      assert.equal(s.messages.lost, STARVED.length * dropped, JSON.stringify(s.messages));

      // devices.csv: a small fleet lists every device; those with loss are exactly the starved ones
      const rows = readCsv(join(dir, 'devices.csv'));
      assert.equal(rows.length, DEVICES);
      const lossy = rows.filter((x) => x.lost > 0);
      assert.deepEqual(
        lossy.map((x) => [x.deviceId, x.lost, x.sent, x.received]),
        STARVED.map((d) => [d, dropped, PER_DEVICE, PER_DEVICE - dropped]),
      );
      for (const x of lossy) {
        // one range, 5–14, with its scheduled times: 9 intervals apart
        const m = /^(\d+)-(\d+)@(\S+)\/(\S+)$/.exec(x.lostRanges);
        assert.ok(m, `${x.deviceId} lostRanges ${x.lostRanges}`);
        assert.deepEqual([Number(m[1]), Number(m[2])], [FROM, TO]);
        const spanMs = Date.parse(m[4] as string) - Date.parse(m[3] as string);
        assert.ok(Math.abs(spanMs - (TO - FROM) * INTERVAL_MS) <= 1, `${x.lostRanges}: ${spanMs} ms`);
        assert.ok(Date.parse(m[3] as string) >= Date.parse(s.startedAt), x.lostRanges);
      }
      for (const x of rows.filter((y) => !STARVED.includes(y.deviceId))) {
        assert.deepEqual([x.lost, x.received, x.lostRanges], [0, PER_DEVICE, ''], x.deviceId);
      }

      // summary.json: the top list of losers, with their ranges
      const top = s.devicesTop;
      assert.ok(top, 'summary.json devicesTop');
      assert.deepEqual(
        top.lost.map((t) => [t.deviceId, t.value, t.ranges?.map((g) => [g.fromSeq, g.toSeq])]),
        STARVED.map((d) => [d, dropped, [[FROM, TO]]]),
      );
      assert.equal(top.counts.lost, STARVED.length);

      // the console: devices that lost the same seqs share one line, with the range and when (src/sinks/console-devices.ts)
      assert.match(
        r.stdout,
        new RegExp(`lost: ${STARVED.join(', ')} \\(${dropped} each\\): seqs 5–14 at \\d+:\\d\\d`),
      );

      // the report: a Devices section whose lost table names exactly them
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      const lostTable = /<section class="panel wide" data-devices="lost">([\s\S]*?)<\/section>/.exec(html);
      assert.ok(lostTable, 'the report has a lost-by-device table');
      assert.deepEqual(
        [...(lostTable[1] as string).matchAll(/<code>([^<]+)<\/code>/g)].map((x) => x[1]),
        STARVED,
      );
      assert.match(lostTable[1] as string, new RegExp(`seqs ${FROM}–${TO}`));
    } finally {
      await proxy.close();
    }
  });
});
