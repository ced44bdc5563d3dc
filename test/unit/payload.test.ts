import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { JsonPacketWriter } from '../../src/engine/json-packet.js';
import { jsonPayload } from '../../src/engine/payload.js';
import { encodePublish, encodeTopic } from '../../src/mqtt/packets.js';
import { makeDecoder, msText, writeUint } from '../../src/wire/index.js';

test('msText: exactly 3 decimals, the same number as rounding to the microsecond', () => {
  assert.equal(msText(1764288000123.4), '1764288000123.400');
  assert.equal(msText(1764288000123.9998), '1764288000124.000');
  assert.equal(msText(0.0004), '0.000');
  assert.equal(msText(5), '5.000');
  fc.assert(
    fc.property(fc.double({ min: 0, max: 4e12, noNaN: true }), (t) => {
      const s = msText(t);
      assert.match(s, /^\d+\.\d{3}$/);
      assert.equal(Number(s), Math.round(t * 1000) / 1000);
    }),
  );
});

test('json payload: padded to the size asked, and the consumer reads back what was written', () => {
  const b = jsonPayload('run-1', 200);
  const decode = makeDecoder();
  for (const [seq, ts, sent] of [
    [1, 1764288000000, 1764288000000.25],
    [123456, 1764288000123.456, 1764288000125.001],
  ] as const) {
    const out = b.build('dev-000001', '"dev-000001"', 1, seq, ts, sent);
    assert.equal(Buffer.byteLength(out.text), 200);
    assert.equal(out.bytes, 200);
    const m = decode(Buffer.from(out.text));
    assert.deepEqual(m, { deviceId: 'dev-000001', seq, ts, runId: 'run-1', sentTs: sent });
  }
});

test('the byte-level JSON packet writer makes exactly the bytes of jsonPayload + encodePublish', () => {
  fc.assert(
    fc.property(
      fc.record({
        deviceId: fc.oneof(fc.constant('dev-000001'), fc.string({ minLength: 1, maxLength: 24 })),
        runId: fc.oneof(fc.constant('20261127-1200-abcd'), fc.string({ maxLength: 30 })),
        topic: fc.string({ minLength: 1, maxLength: 300 }),
        size: fc.integer({ min: 1, max: 2000 }),
        qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
        version: fc.constantFrom(4 as const, 5 as const),
        index: fc.nat(1_000_000),
        seq: fc.integer({ min: 1, max: 2 ** 32 }),
        ts: fc.double({ min: 1e12, max: 4e12, noNaN: true }),
        lag: fc.double({ min: 0, max: 10_000, noNaN: true }),
        packetId: fc.integer({ min: 1, max: 65535 }),
      }),
      (c) => {
        const idJson = JSON.stringify(c.deviceId);
        const topic = encodeTopic(c.topic);
        const expected = jsonPayload(c.runId, c.size).build(
          c.deviceId,
          idJson,
          c.index,
          c.seq,
          c.ts,
          c.ts + c.lag,
        );
        const want = encodePublish(
          topic,
          c.qos,
          c.qos ? c.packetId : 0,
          c.version,
          expected.text,
          expected.bytes,
        );
        const w = new JsonPacketWriter(c.runId, c.size, c.version);
        const prefix = w.devicePrefix(idJson);
        assert.ok(w.fits(topic, prefix));
        const got = w.write(topic, c.qos, c.qos ? c.packetId : 0, prefix, c.index, c.seq, c.ts, c.ts + c.lag);
        assert.equal(got.toString('hex'), want.toString('hex'));
      },
    ),
    { numRuns: 500 },
  );
});

test('writeUint: decimal digits up to 2^53', () => {
  const b = Buffer.alloc(32);
  for (const n of [0, 7, 10, 99, 100, 65535, 4294967296, 1764288000123, 2 ** 53]) {
    const end = writeUint(b, 3, n);
    assert.equal(b.toString('latin1', 3, end), String(n));
  }
});

test('retire(): a packet kept by a queued write is not overwritten by the next one', () => {
  const w = new JsonPacketWriter('r', 100, 4);
  const topic = encodeTopic('t/1');
  const prefix = w.devicePrefix('"d"');
  const kept = w.write(topic, 0, 0, prefix, 0, 1, 1764288000000, 1764288000000);
  const copy = Buffer.from(kept);
  w.retire();
  w.write(topic, 0, 0, prefix, 0, 2, 1764288001000, 1764288001000);
  assert.deepEqual(kept, copy);
});

test('kept packets pin only their own bytes: later ones go after them, a new arena only when one is full', () => {
  const w = new JsonPacketWriter('r', 200, 4);
  const topic = encodeTopic('fleetload/run/dev-000001');
  const prefix = w.devicePrefix('"dev-000001"');
  const kept: Array<[Buffer, Buffer]> = [];
  for (let seq = 1; seq <= 1000; seq++) {
    const p = w.write(topic, 1, seq, prefix, 1, seq, 1764288000000 + seq, 1764288000000 + seq);
    kept.push([p, Buffer.from(p)]);
    w.retire(); // as if every write had queued
  }
  // ~230 bytes per packet: 1000 of them fill 4 arenas of 64 KB, not 1000
  assert.ok(w.arenas <= 4, `${w.arenas} arenas`);
  for (const [view, copy] of kept) assert.deepEqual(view, copy);
});
