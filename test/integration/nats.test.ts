import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'nats';
import type { Summary } from '../../src/stats/summary.js';
import { runCli, tmpDir } from '../helpers/cli.js';
import { type NatsServer, startNats } from '../helpers/nats.js';
import { skipUnless } from '../helpers/services.js';

/**
 * The real pipeline: `fleetload run` devices publish MQTT to nats-server's MQTT listener, a JetStream stream
 * captures the subjects, and the run's consumer reads the stream (`--consumer nats`) with arrival = the stream's
 * stored timestamp.
 */

function readSummary(out: string): Summary {
  const [runId] = readdirSync(out);
  assert.ok(runId);
  return JSON.parse(readFileSync(join(out, runId, 'summary.json'), 'utf8')) as Summary;
}

describe('fleetload run → nats MQTT → JetStream → consumer', { skip: skipUnless('nats-server') }, () => {
  let server: NatsServer;
  before(async () => {
    server = await startNats();
    const nc = await connect({ servers: server.url.replace('nats://', '') });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: 'FLEET', subjects: ['fleetload.>'] });
    } finally {
      await nc.close();
    }
  });
  after(async () => {
    await server?.stop();
  });

  test('20 devices × 10 messages, QoS 1: every message received once, delay from the stream timestamp', async () => {
    const out = tmpDir();
    const r = await runCli([
      'run',
      '-H',
      server.mqttUrl as string,
      '--consumer',
      'nats',
      '--consumer-host',
      server.url,
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
      '--qos',
      '1',
      '--headless',
      '--run-id',
      'natsrun1',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = readSummary(out);
    assert.equal(s.messages.sent, 200);
    assert.equal(s.messages.received, 200);
    assert.equal(s.messages.lost, 0);
    assert.equal(s.messages.duplicated, 0);
    assert.equal(s.messages.foreign, 0);
    assert.equal(s.latency.e2e.count, 200);
    assert.ok(s.latency.e2e.p50 >= 0 && s.latency.e2e.p50 < 1000, `e2e p50 ${s.latency.e2e.p50}`);
    // the per-run durable is removed at the end
    const nc = await connect({ servers: server.url.replace('nats://', '') });
    try {
      const jsm = await nc.jetstreamManager();
      const names: string[] = [];
      for await (const c of jsm.consumers.list('FLEET')) names.push(c.name);
      assert.deepEqual(names, []);
    } finally {
      await nc.close();
    }
  });

  test('--consumer nats without a stream for the subject: exit 3 (cannot attach)', async () => {
    const out = tmpDir();
    const r = await runCli([
      'run',
      '-H',
      server.mqttUrl as string,
      '--consumer',
      'nats',
      '--consumer-host',
      server.url,
      '--topic',
      'elsewhere/{deviceId}',
      '-u',
      '1',
      '-t',
      '2s',
      '--headless',
      '--out',
      out,
    ]);
    assert.equal(r.code, 3, r.stderr + r.stdout);
    assert.match(r.stderr, /no JetStream stream captures subject elsewhere\.\*/);
  });

  test('--consumer nats without --consumer-host: exit 2', async () => {
    const r = await runCli(['run', '-H', server.mqttUrl as string, '--consumer', 'nats', '--headless']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /consumer-host nats:/);
  });
});
