import assert from 'node:assert/strict';
import { test } from 'node:test';
import { templatePayload } from '../../src/engine/payload.js';
import { compilePayloadTemplate, payloadTemplateProblems } from '../../src/scenario/payload-template.js';
import { decodeJson } from '../../src/wire/index.js';

const ctx = { deviceId: 'dev-000007', index: 7, seq: 3, ts: 1_800_000_000_123.25, runId: 'r1' };

test('placeholders render per message; generators stay in their ranges', () => {
  let i = 0;
  const seq = [0, 0.5, 0.999];
  const render = compilePayloadTemplate(
    '{{deviceId}}|{{index}}|{{seq}}|{{ts}}|{{runId}}|{{iso}}|{{random 20 30}}|{{randomInt 1 3}}|{{choice on off}}',
    () => seq[i++ % 3] as number,
  );
  assert.equal(render(ctx), 'dev-000007|7|3|1800000000123.25|r1|2027-01-15T08:00:00.123Z|20.00|2|off');
  assert.match(compilePayloadTemplate('{{uuid}}')(ctx), /^[0-9a-f-]{36}$/);
});

test('bad templates are refused with the culprit named', () => {
  assert.throws(
    () => compilePayloadTemplate('{{temp}}'),
    /\{\{temp\}\} at line 1, column 1: unknown placeholder; known:/,
  );
  assert.throws(() => compilePayloadTemplate('{{random 1}}'), /random takes 2 numbers/);
  assert.throws(() => compilePayloadTemplate('{"a": {{seq}'), /unclosed or malformed/);
  assert.deepEqual(payloadTemplateProblems('[1, 2]', 'json'), [
    'with --encoding json the template must be a JSON object ({ … })',
  ]);
  assert.match(payloadTemplateProblems('{"a": {{choice x y}}}', 'json')[0] ?? '', /renders to invalid JSON/);
  assert.match(payloadTemplateProblems('{"seq": 1, "ts": 2}', 'json')[0] ?? '', /the template sets seq, ts/);
  assert.deepEqual(payloadTemplateProblems('not json at all {{seq}}', 'binary'), []);
});

test('a problem says line and column, never what the file holds (--payload may name any readable file)', () => {
  const shadow = 'root:*:20200:0:99999:7:::\ndaemon:*:20200:0:99999:7:::\n';
  assert.deepEqual(payloadTemplateProblems(shadow, 'json'), [
    'with --encoding json the template must be a JSON object; it renders to invalid JSON at line 1, column 1 of the template (unexpected character)',
  ]);
  const cases: Array<[string, RegExp]> = [
    ['vm-host-17\n', /at line 1, column 1 of the template \(unexpected character\)$/],
    [
      '{"a": 1,\n "pw": "hunter2",\n}',
      /at line 3, column 1 of the template \(Expected double-quoted property name\)$/,
    ],
    [
      '{"t": {{ts}}, "pw": "hunter2" oops}',
      /at line 1, column 31 of the template \(Expected ',' or '\}' after property value\)$/,
    ],
    ['{"pw": "hunter2"', /at line 1, column 17 of the template/],
    ['{"a": {{nope hunter2}}}', /^\{\{nope\}\} at line 1, column 7: unknown placeholder; known:/],
    ['{"a":\n  {{random hunter2 x}}}', /^\{\{random\}\} at line 2, column 3: random takes 2 numbers$/],
    [
      '{"pw": "hunter2", "a": {{seq}',
      /^an unclosed or malformed \{\{…\}\} placeholder at line 1, column 24;/,
    ],
  ];
  for (const [text, says] of cases) {
    const p = payloadTemplateProblems(text, 'json');
    assert.equal(p.length, 1, text);
    assert.match(p[0] ?? '', says);
    for (const secret of ['root', 'hunter2', 'vm-host', 'oops', '20200'])
      assert.doesNotMatch(p[0] ?? '', new RegExp(secret));
  }
});

test('JSON encoding: measurement fields first, then the template fields; the consumer decodes it', () => {
  const b = templatePayload(
    'json',
    'r1',
    0,
    compilePayloadTemplate('{ "temperature": {{random 20 21}}, "status": "{{choice ok}}" }'),
  );
  const out = b.build('dev-000007', '"dev-000007"', 7, 3, ctx.ts, ctx.ts + 0.5);
  const v = JSON.parse(out.text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(v), ['deviceId', 'seq', 'ts', 'sentTs', 'runId', 'temperature', 'status']);
  assert.equal(v.status, 'ok');
  assert.equal(out.bytes, Buffer.byteLength(out.text));
  assert.deepEqual(decodeJson(Buffer.from(out.text)), {
    deviceId: 'dev-000007',
    seq: 3,
    ts: ctx.ts,
    runId: 'r1',
    sentTs: ctx.ts + 0.5,
  });
  // an empty object works, and padding reaches the asked size exactly
  const padded = templatePayload('json', 'r1', 300, compilePayloadTemplate('{}')).build(
    'd',
    '"d"',
    0,
    1,
    1,
    1,
  );
  assert.equal(padded.bytes, 300);
  assert.equal(Buffer.byteLength(padded.text), 300);
  JSON.parse(padded.text);
});

test('user-property and binary encodings carry the rendered text as the body', () => {
  const p = templatePayload('properties', 'r1', 0, compilePayloadTemplate('t={{seq}}')).build(
    'd',
    '"d"',
    0,
    9,
    1,
    1,
  );
  assert.equal(p.text, 't=9');
  assert.ok(p.props && p.props.length > 0);
  const bin = templatePayload('binary', 'r1', 0, compilePayloadTemplate('x{{seq}}')).build(
    'd',
    '"d"',
    0,
    9,
    1,
    1,
  );
  assert.ok(bin.buf && bin.buf.subarray(-2).toString() === 'x9');
});
