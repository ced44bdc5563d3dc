import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type MqttProxy, type MqttProxyOptions, startMqttProxy } from '../helpers/mqtt-proxy.js';
import { skipUnless } from '../helpers/services.js';

/**
 * Accuracy proof (issue 4, item 6): devices publish to a real Mosquitto, the consumer reads it through a proxy
 * (test/helpers/mqtt-proxy.ts) that delays, drops or duplicates PUBLISH frames on their way to the consumer, and
 * what fleetload reports must match what the proxy did: e2e p50 within ±2 ms of the baseline p50 plus the
 * injected delay; `lost` and `duplicated` exactly equal to the proxy's counts. The consumer subscribes at QoS 0:
 * a dropped or duplicated QoS 1/2 PUBLISH would be redelivered or break the acknowledgement flow.
 */

const DEVICES = 20;
const PER_DEVICE = 40;
const SENT = DEVICES * PER_DEVICE;
const DELAY_MS = 50;
const P50_TOLERANCE_MS = 2;

/** 20 devices × 40 messages, one each 50 ms (400 msg/s, 2 s of sending), QoS 0 both sides. */
function runArgs(broker: Mosquitto, proxy: MqttProxy, out: string, perDevice = PER_DEVICE): string[] {
  return [
    'run',
    '-H',
    broker.url,
    '--consumer-host',
    proxy.url,
    '-u',
    String(DEVICES),
    '-r',
    '1000',
    '-i',
    '50ms',
    '--messages-per-device',
    String(perDevice),
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
  ];
}

function readSummary(out: string): Summary {
  const [runId] = readdirSync(out);
  assert.ok(runId, `a run folder in ${out}`);
  return JSON.parse(readFileSync(join(out, runId, 'summary.json'), 'utf8')) as Summary;
}

function describeRun(s: Summary, proxy: MqttProxy): string {
  return `messages ${JSON.stringify(s.messages)} proxy ${JSON.stringify(proxy.stats)} e2e ${JSON.stringify(s.latency.e2e)}`;
}

describe('accuracy: faults injected between broker and consumer are reported exactly', {
  skip: skipUnless('mosquitto'),
}, () => {
  let broker: Mosquitto;

  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  /** One bounded run of the CLI with the consumer behind a proxy configured by `faults`. */
  async function runThroughProxy(
    faults: Omit<MqttProxyOptions, 'target'>,
  ): Promise<{ s: Summary; proxy: MqttProxy }> {
    const proxy = await startMqttProxy({ target: { host: '127.0.0.1', port: broker.port }, ...faults });
    try {
      const out = tmpDir();
      const r = await runCli(runArgs(broker, proxy, out), { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const s = readSummary(out);
      const m = s.messages;
      // the producer side is untouched by the proxy: every message went out once
      assert.equal(m.sent, SENT, describeRun(s, proxy));
      assert.equal(m.sent, m.acked + m.failed + m.unconfirmed);
      assert.equal(m.foreign, 0, describeRun(s, proxy));
      // the proxy saw each message exactly once on its way to the consumer
      assert.equal(proxy.stats.publishes, SENT, describeRun(s, proxy));
      return { s, proxy };
    } finally {
      await proxy.close();
    }
  }

  /** A run with no faults: every message received once, nothing touched by the proxy. */
  async function cleanRun(): Promise<Summary> {
    const { s, proxy } = await runThroughProxy({});
    const m = s.messages;
    assert.deepEqual(
      { received: m.received, lost: m.lost, duplicated: m.duplicated, reordered: m.reordered },
      { received: SENT, lost: 0, duplicated: 0, reordered: 0 },
      describeRun(s, proxy),
    );
    assert.deepEqual(proxy.stats, { publishes: SENT, dropped: 0, duplicated: 0, delayed: 0 });
    assert.equal(s.latency.e2e.count, SENT);
    return s;
  }

  test('baseline: no faults, every message received once', async () => {
    const s = await cleanRun();
    const e2e = s.latency.e2e;
    // a delay, in ms: positive, ordered, and shorter than the run that measured it (no speed bound: that is the
    // bench's business)
    const runMs = Date.parse(s.endedAt) - Date.parse(s.startedAt);
    assert.ok(e2e.min >= 0 && e2e.p50 > 0, `e2e ${JSON.stringify(e2e)}`);
    assert.ok(e2e.p50 <= e2e.p99 && e2e.p99 <= e2e.max, `e2e ${JSON.stringify(e2e)}`);
    assert.ok(e2e.max < runMs, `e2e max ${e2e.max} ms within the ${runMs} ms run`);
    console.log(`# baseline e2e p50 ${e2e.p50} ms (p99 ${e2e.p99} ms)`);
  });

  test(`delay: every PUBLISH held ${DELAY_MS} ms → e2e p50 = baseline + ${DELAY_MS} ± ${P50_TOLERANCE_MS} ms`, async () => {
    // its own baseline, measured just before under the same conditions (no test depends on another having run)
    const baselineP50 = (await cleanRun()).latency.e2e.p50;
    const { s, proxy } = await runThroughProxy({ delayMs: DELAY_MS });
    const m = s.messages;
    assert.equal(proxy.stats.delayed, SENT);
    assert.deepEqual(
      { received: m.received, lost: m.lost, duplicated: m.duplicated, reordered: m.reordered },
      { received: SENT, lost: 0, duplicated: 0, reordered: 0 },
      describeRun(s, proxy),
    );
    const expected = baselineP50 + DELAY_MS;
    const p50 = s.latency.e2e.p50;
    console.log(`# delayed e2e p50 ${p50} ms, expected ${expected.toFixed(3)} ± ${P50_TOLERANCE_MS} ms`);
    assert.ok(
      Math.abs(p50 - expected) <= P50_TOLERANCE_MS,
      `e2e p50 ${p50} ms, expected ${expected} ± ${P50_TOLERANCE_MS} ms (baseline ${baselineP50} + ${DELAY_MS})`,
    );
    // no message can arrive sooner than the proxy let it go
    assert.ok(s.latency.e2e.min >= DELAY_MS - 1, `e2e min ${s.latency.e2e.min} ms`);
  });

  test('drop every 7th PUBLISH → lost equals dropped exactly', async () => {
    const { s, proxy } = await runThroughProxy({ dropEvery: 7 });
    const m = s.messages;
    assert.equal(proxy.stats.dropped, Math.floor(SENT / 7));
    console.log(`# dropped ${proxy.stats.dropped}, reported lost ${m.lost}`);
    assert.equal(m.lost, proxy.stats.dropped, describeRun(s, proxy));
    assert.equal(m.duplicated, 0, describeRun(s, proxy));
    assert.equal(m.received, m.sent - proxy.stats.dropped, describeRun(s, proxy));
    assert.equal(m.reordered, 0, describeRun(s, proxy));
  });

  test('duplicate every 5th PUBLISH → duplicated equals the copies exactly', async () => {
    const { s, proxy } = await runThroughProxy({ duplicateEvery: 5 });
    const m = s.messages;
    assert.equal(proxy.stats.duplicated, SENT / 5);
    console.log(`# duplicated by the proxy ${proxy.stats.duplicated}, reported duplicated ${m.duplicated}`);
    assert.equal(m.duplicated, proxy.stats.duplicated, describeRun(s, proxy));
    assert.equal(m.lost, 0, describeRun(s, proxy));
    assert.equal(m.received, m.sent + proxy.stats.duplicated, describeRun(s, proxy));
    assert.equal(m.reordered, 0, describeRun(s, proxy));
  });

  test('consumer connection cut mid-run: it reconnects, what passed while it was away is lost, the ledger is exact', async () => {
    const proxy = await startMqttProxy({ target: { host: '127.0.0.1', port: broker.port } });
    try {
      const out = tmpDir();
      // 20 devices × 80 messages at 50 ms: 4 s of sending; the cut comes after the first second
      const child = spawnCli(runArgs(broker, proxy, out, 80));
      await waitForOutput(child, /steady .*received [1-9]/, { timeoutMs: 15_000 });
      const before = proxy.stats.publishes;
      proxy.cut();
      const r = await waitForCliExit(child, 30_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const s = readSummary(out);
      const m = s.messages;
      const unique = m.received - m.duplicated - m.foreign;
      console.log(
        `# cut after ${before} publishes: sent ${m.sent}, received ${m.received}, lost ${m.lost}, proxy saw ${proxy.stats.publishes}`,
      );
      assert.equal(m.sent, DEVICES * 80, describeRun(s, proxy));
      assert.ok(
        m.lost > 0,
        `messages published while the consumer was away are lost (${describeRun(s, proxy)})`,
      );
      assert.ok(m.received > before, `the consumer came back and received more (${describeRun(s, proxy)})`);
      assert.equal(m.lost, m.sent - unique, describeRun(s, proxy));
      assert.equal(m.duplicated, 0, describeRun(s, proxy));
      assert.equal(proxy.stats.dropped, 0);
      // and the run says why it lost messages
      assert.ok(
        s.errors.some((e) => e.kind === 'consumer' && e.code === 'disconnected'),
        JSON.stringify(s.errors),
      );
    } finally {
      await proxy.close();
    }
  });
});
