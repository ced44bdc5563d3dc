import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrometheusSink } from '../../src/sinks/prometheus.js';
import { startPrometheus } from '../helpers/prometheus.js';
import { skipUnless } from '../helpers/services.js';

/**
 * /metrics off loopback asks for a bearer token, and a real Prometheus scrapes it with the documented scrape
 * config (`authorization: credentials:`); one without the token gets 401 (its target is down). The sink listens
 * on 127.0.0.1 treated as remote (the isLoopback decision), so nothing is exposed by the test.
 */

const skip = skipUnless('prometheus');
const TOKEN = 'scrape-token-0123456789abcdef';

test('a real Prometheus scrapes /metrics with authorization: credentials:, and is refused without', {
  skip,
}, async () => {
  const sink = new PrometheusSink({
    host: '127.0.0.1',
    port: 0,
    runId: 'it-prom-token',
    segment: '0/1',
    role: 'run',
    graceMs: 0,
    token: TOKEN,
    isLoopback: () => false,
  });
  await sink.listen();
  const target = `127.0.0.1:${sink.port}`;
  const withToken = await startPrometheus({ targets: [target], bearer: TOKEN });
  const without = await startPrometheus({ targets: [target] });
  try {
    await withToken.waitForScrapeAttempts();
    await without.waitForScrapeAttempts();
    type Targets = { activeTargets: Array<{ health: string; lastError: string }> };
    const ok = (await withToken.api('/api/v1/targets?state=active')) as Targets;
    assert.equal(ok.activeTargets[0]?.health, 'up', ok.activeTargets[0]?.lastError);
    const refused = (await without.api('/api/v1/targets?state=active')) as Targets;
    assert.equal(refused.activeTargets[0]?.health, 'down');
    assert.match(refused.activeTargets[0]?.lastError ?? '', /401/);
    // the figures themselves arrived
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await withToken.query('fleetload_run_info{run_id="it-prom-token"}');
      if (r.result.length === 1) break;
      assert.ok(Date.now() < deadline, 'fleetload_run_info never arrived');
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(sink.scrapes >= 1);
  } finally {
    await withToken.stop();
    await without.stop();
    await sink.close();
  }
});
