import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_FIELDS,
  decodeBinaryHeader,
  decodeUserProperties,
  encodeBinaryHeader,
  makeDecoder,
  parseFields,
  SEED_FIELDS,
  userProperties,
} from '../../src/wire/index.js';

const meta = { deviceId: 'dev-000042', seq: 17, ts: 1795815000123.5, runId: 'run-1' };

test('JSON wire format (default field names)', () => {
  const d = makeDecoder({ format: 'json' });
  const t = d(Buffer.from(JSON.stringify({ ...meta, temperature: 21.3 })));
  assert.deepEqual(t, { ...meta, sentTs: undefined });
  assert.equal(d(Buffer.from('{"deviceId":"a","seq":0,"ts":1,"runId":"r"}')), undefined, 'seq 0');
  assert.equal(
    d(Buffer.from('{"deviceId":"a","seq":4294967296,"ts":1,"runId":"r"}')),
    undefined,
    'seq > u32',
  );
  assert.equal(d(Buffer.from('[1,2]')), undefined);
});

test('the seed format: info.timestamp in seconds, context.device / context.seq (Locust and MQTT.js peers)', () => {
  const locust = Buffer.from(
    JSON.stringify({
      info: { run_id: 'bench', timestamp: 1795815000.25 },
      context: { device: 'locust-ab', seq: 3 },
    }),
  );
  const t = makeDecoder({ format: 'seed' })(locust);
  assert.deepEqual(t, {
    deviceId: 'locust-ab',
    seq: 3,
    ts: 1795815000250,
    runId: 'bench',
    sentTs: undefined,
  });
  // auto falls back to the seed format
  assert.deepEqual(makeDecoder()(locust), t);
  // the MQTT.js peer: numeric device, seq from 0
  const fields = parseFields('seqBase=0', SEED_FIELDS);
  assert.ok(typeof fields !== 'string');
  const mqttjs = Buffer.from(
    JSON.stringify({ info: { run_id: 'bench', timestamp: 1795815000 }, context: { device: 7, seq: 0 } }),
  );
  assert.deepEqual(makeDecoder({ format: 'json', fields })(mqttjs), {
    deviceId: '7',
    seq: 1,
    ts: 1795815000000,
    runId: 'bench',
    sentTs: undefined,
  });
});

test('configurable field paths', () => {
  const f = parseFields('deviceId=meta.id,seq=meta.n,ts=meta.t,runId=meta.run,tsUnit=s');
  assert.ok(typeof f !== 'string');
  const t = makeDecoder({ format: 'json', fields: f })(
    Buffer.from('{"meta":{"id":"x","n":2,"t":1795815000.5,"run":"r"}}'),
  );
  assert.deepEqual(t, { deviceId: 'x', seq: 2, ts: 1795815000500, runId: 'r', sentTs: undefined });
  assert.match(String(parseFields('bogus=1')), /unknown field/);
  assert.match(String(parseFields('tsUnit=h')), /tsUnit/);
  assert.equal(DEFAULT_FIELDS.tsUnit, 'ms');
});

test('MQTT 5 user properties: encode → decode', () => {
  const p = userProperties({ ...meta, sentTs: meta.ts + 2 });
  assert.deepEqual(p, {
    deviceId: 'dev-000042',
    seq: '17',
    ts: '1795815000123.5',
    runId: 'run-1',
    sentTs: '1795815000125.5',
  });
  assert.deepEqual(decodeUserProperties(p), { ...meta, sentTs: meta.ts + 2 });
  // a name given twice (MQTT.js gives an array): the first counts
  assert.equal(decodeUserProperties({ ...p, seq: ['5', '6'] })?.seq, 5);
  assert.equal(decodeUserProperties({ ...p, seq: 'x' }), undefined);
  // auto: properties win over a payload the user owns
  assert.deepEqual(makeDecoder()(Buffer.from('user payload'), p)?.seq, 17);
});

test('binary header: encode → decode, with and without sentTs, payload after it', () => {
  const body = Buffer.from([1, 2, 3]);
  const cases: Array<typeof meta & { sentTs?: number }> = [meta, { ...meta, sentTs: meta.ts + 1.25 }];
  for (const m of cases) {
    const h = encodeBinaryHeader(m);
    assert.equal(h.length, (m.sentTs !== undefined ? 25 : 17) + 10 + 5);
    const msg = Buffer.concat([h, body]);
    const d = decodeBinaryHeader(msg);
    assert.ok(d);
    assert.deepEqual({ ...d, bodyOffset: undefined }, { ...m, sentTs: m.sentTs, bodyOffset: undefined });
    assert.deepEqual(msg.subarray(d.bodyOffset), body);
    assert.equal(makeDecoder()(msg)?.deviceId, 'dev-000042');
  }
  assert.throws(() => encodeBinaryHeader({ ...meta, seq: 0 }), RangeError);
  assert.throws(() => encodeBinaryHeader({ ...meta, deviceId: '' }), RangeError);
  // truncated anywhere: undefined, never a throw
  const full = encodeBinaryHeader(meta);
  for (let n = 0; n < full.length; n++)
    assert.equal(decodeBinaryHeader(full.subarray(0, n)), undefined, `${n} bytes`);
});

test('property: no byte string (nor property map) crashes any decoder', () => {
  const decoders = ['auto', 'json', 'seed', 'properties', 'binary'].map((format) =>
    makeDecoder({ format: format as 'auto' }),
  );
  const magicPrefixed = fc
    .uint8Array({ maxLength: 80 })
    .map((b) => Buffer.concat([Buffer.from([0xf1, 0x4c]), b]));
  const jsonish = fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? ''));
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    magicPrefixed,
    jsonish,
  );
  const props = fc.option(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.array(fc.string()))), {
    nil: undefined,
  });
  fc.assert(
    fc.property(bytes, props, (b, p) => {
      for (const d of decoders) {
        const t = d(b, p);
        if (t) {
          assert.ok(Number.isInteger(t.seq) && t.seq >= 1 && t.seq <= 0xffffffff);
          assert.ok(Number.isFinite(t.ts) && t.ts > 0);
          assert.equal(typeof t.deviceId, 'string');
        }
      }
    }),
    { numRuns: 3000 },
  );
});
