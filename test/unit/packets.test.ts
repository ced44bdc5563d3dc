import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { encodeConnect, encodePublish, encodeTopic, FrameReader } from '../../src/mqtt/packets.js';

function parseAll(buf: Buffer, version: 4 | 5): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const out: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (e) => {
    throw e;
  });
  parser.parse(buf);
  return out;
}

for (const version of [4, 5] as const) {
  for (const qos of [0, 1, 2] as const) {
    test(`hand-encoded PUBLISH v${version} QoS ${qos} is what mqtt-packet decodes`, () => {
      const payload = `{"deviceId":"dev-1","seq":1,"ts":1.5,"pad":"${'é'.repeat(200)}"}`;
      const buf = encodePublish(encodeTopic('a/b/ü'), qos, 513, version, payload, Buffer.byteLength(payload));
      const [p] = parseAll(buf, version);
      assert.ok(p && p.cmd === 'publish');
      assert.equal(p.topic, 'a/b/ü');
      assert.equal(p.qos, qos);
      if (qos > 0) assert.equal(p.messageId, 513);
      assert.equal(p.payload.toString(), payload);
    });
  }
}

test('CONNECT carries client id, credentials and keepalive', () => {
  const [p] = parseAll(
    encodeConnect({
      clientId: 'c1',
      version: 5,
      keepaliveSec: 30,
      clean: true,
      username: 'u',
      password: 'pw',
    }),
    5,
  );
  assert.ok(p && p.cmd === 'connect');
  assert.equal(p.clientId, 'c1');
  assert.equal(p.keepalive, 30);
  assert.equal(p.username, 'u');
  assert.equal(p.password?.toString(), 'pw');
});

test('FrameReader yields the same frames however the stream is cut', () => {
  const frames = [0, 1, 2, 3, 4].map((i) =>
    encodePublish(encodeTopic(`t/${i}`), 1, i + 1, 4, 'x'.repeat(i * 70), i * 70),
  );
  const all = Buffer.concat(frames);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: all.length }), { maxLength: 10 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const r = new FrameReader();
      const got: string[] = [];
      let prev = 0;
      for (const c of [...points, all.length]) {
        r.push(all.subarray(prev, c), (b, s, e) => got.push(b.subarray(s, e).toString('hex')));
        prev = c;
      }
      assert.deepEqual(
        got,
        frames.map((f) => f.toString('hex')),
      );
    }),
  );
});

test('PUBLISH with MQTT 5 user properties and a binary payload decodes with mqtt-packet', async () => {
  const { encodeUserProperties } = await import('../../src/wire/index.js');
  const props = encodeUserProperties({ deviceId: 'dev-1', seq: '3', ts: '1.5', runId: 'r' });
  const body = Buffer.from([0xf1, 0x4c, 1, 2, 3]);
  const buf = encodePublish(encodeTopic('t'), 1, 9, 5, body, body.length, props);
  const [p] = parseAll(buf, 5);
  assert.ok(p && p.cmd === 'publish');
  assert.deepEqual(
    { ...p.properties?.userProperties },
    { deviceId: 'dev-1', seq: '3', ts: '1.5', runId: 'r' },
  );
  assert.deepEqual([...p.payload], [...body]);
});
