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
 * The NATS journey from nothing: a nats-server with JetStream and MQTT (the README's config) and no stream. Without
 * --nats-create-stream the consumer cannot attach (exit 3, the flag named); with it, run and consume create the
 * stream capturing the topic's subjects and the run measures every message.
 */

function readSummary(out: string): Summary {
  const [runId] = readdirSync(out);
  assert.ok(runId);
  return JSON.parse(readFileSync(join(out, runId, 'summary.json'), 'utf8')) as Summary;
}

async function streams(url: string): Promise<Record<string, string[]>> {
  const nc = await connect({ servers: url.replace('nats://', '') });
  try {
    const jsm = await nc.jetstreamManager();
    const found: Record<string, string[]> = {};
    for await (const s of jsm.streams.list()) {
      if (!s.config.name.startsWith('$MQTT')) found[s.config.name] = s.config.subjects ?? [];
    }
    return found;
  } finally {
    await nc.close();
  }
}

describe('--nats-create-stream against a real nats-server with no stream', {
  skip: skipUnless('nats-server'),
}, () => {
  let server: NatsServer;
  before(async () => {
    server = await startNats();
  });
  after(async () => {
    await server?.stop();
  });

  const run = (extra: string[]) => [
    'run',
    '-H',
    server.mqttUrl as string,
    '--consumer',
    'nats',
    '--consumer-host',
    server.url,
    '-u',
    '10',
    '-r',
    '200',
    '-i',
    '100ms',
    '--messages-per-device',
    '5',
    '-t',
    '20s',
    '--headless',
    ...extra,
  ];

  test('without it: exit 3, and the message names --nats-create-stream', async () => {
    const r = await runCli([...run(['--out', tmpDir()])]);
    assert.equal(r.code, 3, r.stderr + r.stdout);
    assert.match(
      r.stderr,
      /no JetStream stream captures subject fleetload\.[^.]+\.\*; add --nats-create-stream/,
    );
    assert.deepEqual(await streams(server.url), {});
  });

  test('run --nats-create-stream: FLEETLOAD created for every run of the topic, every message measured; again', async () => {
    for (const attempt of [1, 2]) {
      const out = tmpDir();
      const r = await runCli(run(['--nats-create-stream', '--out', out]));
      assert.equal(r.code, 0, `attempt ${attempt}: ${r.stderr}${r.stdout}`);
      if (attempt === 1)
        assert.match(r.stdout + r.stderr, /created JetStream stream FLEETLOAD capturing fleetload\.\*\.\*/);
      const s = readSummary(out);
      assert.equal(s.messages.sent, 50);
      assert.equal(s.messages.received, 50);
      assert.equal(s.messages.lost, 0);
    }
    assert.deepEqual(await streams(server.url), { FLEETLOAD: ['fleetload.*.*'] });
  });

  test('consume --nats-create-stream --nats-stream NAME: creates that stream and attaches', async () => {
    const r = await runCli([
      'consume',
      '-H',
      server.url,
      '--run-id',
      'c1',
      '--topic',
      'plant/{runId}/{deviceId}',
      '--nats-stream',
      'PLANT',
      '--nats-create-stream',
      '-t',
      '1s',
      '--grace',
      '0ms',
      '--accept',
      'observed',
      '--out',
      tmpDir(),
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const found = await streams(server.url);
    assert.deepEqual(found.PLANT, ['plant.*.*']);
  });
});
