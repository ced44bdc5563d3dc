import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_VALIDITY, judge, type ValidityOptions } from '../../src/run/verdict.js';
import { summaryFixture } from '../helpers/summary.js';

/** The validity checks one at a time, on whole summaries: what makes a run invalid, and what --accept lets pass. */

const both = { generator: true, consumer: true };
const ok =
  (o: ValidityOptions = DEFAULT_VALIDITY) =>
  (s: Parameters<typeof judge>[0]) =>
    judge(s, both, o);

test('a complete run is valid', () => {
  assert.deepEqual(ok()(summaryFixture()), { valid: true, reasons: [] });
});

test('each check, its reason, and --accept for it', () => {
  const cases: Array<[string, Parameters<typeof summaryFixture>[0], string]> = [
    ['connected', { devices: { connectedPeak: 0 } }, 'connected: no device connected (0 of 10)'],
    [
      'offered',
      { messages: { scheduled: 300, sent: 284, acked: 284, received: 284 } },
      'offered: 16 of 300 scheduled messages were never sent (sent 94.7%, at least 95% needed)',
    ],
    [
      'observed',
      { messages: { received: 0, lost: 300 } },
      'observed: the consumer received none of the 300 messages sent (is it reading the right place?)',
    ],
    [
      'saturated',
      { generator: { saturated: true } },
      'saturated: the generator was saturated (see generator in summary.json)',
    ],
  ];
  for (const [check, over, reason] of cases) {
    const s = summaryFixture(over);
    assert.deepEqual(ok()(s), { valid: false, reasons: [reason] }, check);
    const accepted = ok({ ...DEFAULT_VALIDITY, accept: [check as never] })(s);
    assert.deepEqual(accepted, { valid: true, reasons: [] }, `--accept ${check}`);
  }
});

test('the offered bound is --min-offered, inclusive; a plan that schedules nothing offered all it planned', () => {
  const s = summaryFixture({ messages: { scheduled: 100, sent: 90, acked: 90, received: 90 } });
  assert.equal(ok({ accept: [], minOffered: 0.9 })(s).valid, true);
  assert.equal(ok({ accept: [], minOffered: 0.91 })(s).valid, false);
  const idle = summaryFixture({ messages: { scheduled: 0, sent: 0, acked: 0, received: 0, lost: 0 } });
  assert.deepEqual(judge(idle, { generator: true, consumer: false }, DEFAULT_VALIDITY), {
    valid: true,
    reasons: [],
  });
});

test('foreign and duplicated messages are not observations of this run', () => {
  const s = summaryFixture({ messages: { received: 40, foreign: 30, duplicated: 10 } });
  assert.equal(ok()(s).reasons[0]?.startsWith('observed:'), true);
});

test('a consumer alone must receive something; a generator alone has no observed check', () => {
  const nothing = summaryFixture({ messages: { scheduled: 0, sent: 0, acked: 0, received: 0 } });
  assert.deepEqual(judge(nothing, { generator: false, consumer: true }, DEFAULT_VALIDITY).reasons, [
    'observed: the consumer received no message of this run',
  ]);
  const unread = summaryFixture({ messages: { received: 0 } });
  assert.equal(judge(unread, { generator: true, consumer: false }, DEFAULT_VALIDITY).valid, true);
});

test('every failing check is listed, in order', () => {
  const s = summaryFixture({
    devices: { connectedPeak: 0 },
    messages: { scheduled: 300, sent: 0, acked: 0, received: 0 },
    generator: { saturated: true },
  });
  assert.deepEqual(
    ok()(s).reasons.map((r) => r.split(':')[0]),
    ['connected', 'offered', 'saturated'],
    'nothing sent: nothing to observe',
  );
});
