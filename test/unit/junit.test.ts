import assert from 'node:assert/strict';
import { test } from 'node:test';
import { junitXml } from '../../src/sinks/junit.js';
import { summaryFixture } from '../helpers/summary.js';

test('junit: a test case per threshold and one for validity; failures say why; everything escaped', () => {
  const xml = junitXml(
    summaryFixture({
      runId: 'r<1>&"',
      valid: false,
      invalid: ['observed: the consumer received none of the 10 messages sent'],
      thresholds: [
        { expr: 'loss<1%', value: 0, passed: true },
        { expr: 'e2e.p99<5', value: 12.5, passed: false },
        { expr: 'publishAck.p99<5', value: 0, passed: false, noData: true },
      ],
      passed: false,
    }),
  );
  assert.match(
    xml,
    /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="fleetload" tests="4" failures="3"/,
  );
  assert.match(
    xml,
    /<testsuite name="fleetload run r&lt;1&gt;&amp;&quot;" tests="4" failures="3" errors="0"/,
  );
  assert.match(xml, /<testcase classname="fleetload" name="loss&lt;1%"\/>/);
  assert.match(xml, /name="e2e\.p99&lt;5"><failure message="observed 12\.5">observed 12\.5<\/failure>/);
  assert.match(xml, /name="publishAck\.p99&lt;5"><failure message="no data: nothing was measured">/);
  assert.match(
    xml,
    /\(valid\)"><failure message="observed: the consumer received none of the 10 messages sent">/,
  );
  assert.doesNotMatch(xml, /<(?!\/?(testsuites|testsuite|testcase|failure)\b|\?xml)/, 'no stray markup');
});

test('junit: a passing valid run is all passes; control characters never reach the XML', () => {
  const xml = junitXml(
    summaryFixture({ valid: true, thresholds: [{ expr: 'loss<1%\u0007', value: 0, passed: true }] }),
  );
  assert.match(xml, /tests="2" failures="0"/);
  assert.doesNotMatch(xml, /<failure/);
  assert.doesNotMatch(xml, /\u0007/);
});
