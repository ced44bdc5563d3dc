import assert from 'node:assert/strict';
import { request } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { FleetloadError } from '../../src/errors.js';
import { escapeHtml, scriptJson } from '../../src/html/escape.js';
import type { FleetControl, IntervalFigures } from '../../src/run/output.js';
import { type Scenario, scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import { newHistogram, recordMs } from '../../src/stats/histogram.js';
import { Stats } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';
import { CLIENT_JS } from '../../src/web/client.js';
import { type DashboardPoint, PointSeries, percentileOrGap } from '../../src/web/figures.js';
import { type Dashboard, parseFleetRequest, startDashboard } from '../../src/web/server.js';
import { summaryFixture } from '../helpers/summary.js';

const PASSWORD = 'hunter2-Pa55word';
const URL_PASSWORD = 'url-s3cret';

function scenario(over: Record<string, unknown> = {}): Scenario {
  return toScenario(
    scenarioInput.parse({
      host: `mqtt://alice:${URL_PASSWORD}@broker.example:1883`,
      username: 'alice',
      password: PASSWORD,
      devices: 10,
      runTime: '30s',
      thresholds: ['e2e.p99<500', 'loss<0.1%'],
      ...over,
    }),
    'web-r1',
  );
}

/**
 * One interval as executeRun builds it: an engine and a consumer Stats, cut into snapshots (histograms
 * encoded), merged by a real Aggregator.
 */
function figures(
  agg: Aggregator,
  o: {
    t: number;
    sent: number;
    received: number;
    e2eMs: number[];
    ackMs: number[];
    devices: number;
    durationMs?: number;
  },
): IntervalFigures {
  const from = o.t - (o.durationMs ?? 1000);
  const engine = new Stats(from);
  const consumer = new Stats(from);
  engine.connected(o.devices);
  engine.count('sent', o.sent);
  engine.count('acked', o.sent);
  consumer.count('received', o.received);
  for (const ms of o.e2eMs) consumer.latency('e2e', ms);
  for (const ms of o.ackMs) engine.latency('publishAck', ms);
  const interval = agg.merge([engine.snapshot(o.t), consumer.snapshot(o.t)]);
  return {
    elapsedMs: o.t - T0,
    interval,
    gaps: 2,
    cpuPercent: 12.345,
    eventLoopLagP99Ms: 1.5,
    phase: 'steady',
  };
}

const T0 = 1_800_000_000_000;
const range = (n: number, step = 1): number[] => Array.from({ length: n }, (_, i) => (i + 1) * step);

function fakeSummary(s: Scenario): Summary {
  return summaryFixture({
    runId: s.runId,
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(T0 + 30_000).toISOString(),
    // what a careless caller might pass: the summary is redacted on the way out anyway
    scenario: { host: s.host ?? '' },
    thresholds: [{ expr: 'e2e.p99<500', value: 1, passed: true }],
  });
}

interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Reads /api/stream with fetch and parses Server-Sent Events as they come. */
function openStream(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const events: SseEvent[] = [];
  let buffer = '';
  let ended = false;
  let wake: () => void = () => {};
  let opened: () => void = () => {};
  const open = new Promise<void>((r) => {
    opened = r;
  });
  const pump = (async () => {
    const res = await fetch(new URL('/api/stream', url), { headers, signal: controller.signal });
    opened();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut = buffer.indexOf('\n\n');
        while (cut !== -1) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const ev: SseEvent = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const field = i === -1 ? line : line.slice(0, i);
            const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'event') ev.event = value;
            else if (field === 'id') ev.id = value;
            else if (field === 'data') ev.data += value;
          }
          if (ev.data !== '' || ev.event !== 'message') events.push(ev);
          cut = buffer.indexOf('\n\n');
        }
        wake();
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    } finally {
      ended = true;
      wake();
    }
  })();
  return {
    events,
    /** waits until `n` events matching `pred` arrived (or the stream ended), at most 2 s */
    async until(pred: (e: SseEvent) => boolean, n = 1): Promise<SseEvent[]> {
      const deadline = Date.now() + 2000;
      for (;;) {
        const got = events.filter(pred);
        if (got.length >= n) return got;
        if (ended) throw new Error(`stream ended with ${got.length}/${n} events`);
        if (Date.now() > deadline) throw new Error(`timed out with ${got.length}/${n} events`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    },
    ended: () => ended,
    /** resolves once the response headers arrived */
    open,
    done: pump,
    abort: () => controller.abort(),
  };
}

const points = (e: SseEvent) => e.event === 'message';

async function withDashboard(
  fn: (d: Dashboard, calls: { stop: number }) => Promise<void>,
  s: Scenario = scenario(),
): Promise<void> {
  const calls = { stop: 0 };
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {
      calls.stop++;
    },
  });
  try {
    await fn(d, calls);
  } finally {
    await d.close();
  }
}

test('stream: a new client gets the history, then one point per interval with plain figures', async () => {
  await withDashboard(async (d) => {
    assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const agg = new Aggregator();
    d.listener.start?.({
      runId: 'web-r1',
      url: `mqtt://alice:${URL_PASSWORD}@broker.example:1883`,
      dir: '/tmp/x',
    });
    // 1..100 ms end to end, 0.1..10 ms to ack; 50 sent, 40 received over exactly one second
    for (let i = 1; i <= 3; i++) {
      d.listener.interval?.(
        figures(agg, {
          t: T0 + i * 1000,
          sent: 50,
          received: 40,
          e2eMs: range(100),
          ackMs: range(100, 0.1),
          devices: 10,
        }),
      );
    }
    const stream = openStream(d.url);
    try {
      const meta = await stream.until((e) => e.event === 'meta');
      assert.deepEqual(JSON.parse(meta[0]!.data), {
        runId: 'web-r1',
        broker: 'mqtt://alice:***@broker.example:1883',
      });
      const history = await stream.until(points, 3);
      assert.deepEqual(
        history.map((e) => e.id),
        ['1', '2', '3'],
      );
      const p = JSON.parse(history[2]!.data) as DashboardPoint;
      // the same figures from an independent histogram with the same values
      const e2e = newHistogram();
      for (const v of range(100)) recordMs(e2e, v);
      const ack = newHistogram();
      for (const v of range(100, 0.1)) recordMs(ack, v);
      assert.deepEqual(p, {
        seq: 3,
        t: T0 + 3000,
        elapsedMs: 3000,
        phase: 'steady',
        devicesConnected: 10,
        // no FleetControl given to started(): the scenario's plan
        targetDevices: 10,
        intervalMs: 1000,
        sentPerSec: 50,
        ackedPerSec: 50,
        failedPerSec: 0,
        receivedPerSec: 40,
        sent: 150,
        acked: 150,
        failed: 0,
        received: 120,
        connectFailures: 0,
        gaps: 2,
        e2eP50: percentileOrGap(e2e, 50),
        e2eP95: percentileOrGap(e2e, 95),
        e2eP99: percentileOrGap(e2e, 99),
        ackP50: percentileOrGap(ack, 50),
        ackP99: percentileOrGap(ack, 99),
        cpuPercent: 12.3,
        eventLoopLagP99Ms: 1.5,
        bytesSentPerSec: 0,
        bytesReceivedPerSec: 0,
        // the report's other charts (test/unit/web-health.test.ts has them with values)
        scheduleLagP50: null,
        scheduleLagP99: null,
        duplicatedPerSec: 0,
        reorderedPerSec: 0,
        connectsPerSec: 0,
        connectFailuresPerSec: 0,
        reconnectsPerSec: 0,
        droppedPerSec: 0,
        duplicated: 0,
        reordered: 0,
        reconnects: 0,
      });
      // in milliseconds, with HDR's 3 significant digits
      assert.ok(Math.abs(p.e2eP50! - 50) < 0.1, `e2e p50 ${p.e2eP50}`);
      assert.ok(Math.abs(p.e2eP99! - 99) < 0.1, `e2e p99 ${p.e2eP99}`);
      assert.ok(Math.abs(p.ackP50! - 5) < 0.01, `ack p50 ${p.ackP50}`);

      // live: an interval without deliveries has no e2e percentile (a gap in the chart, not 0)
      d.listener.interval?.(
        figures(agg, {
          t: T0 + 4500,
          sent: 30,
          received: 0,
          e2eMs: [],
          ackMs: [2],
          devices: 9,
          durationMs: 1500,
        }),
      );
      const live = await stream.until(points, 4);
      const q = JSON.parse(live[3]!.data) as DashboardPoint;
      assert.equal(q.seq, 4);
      assert.equal(q.sentPerSec, 20); // 30 over 1.5 s
      assert.equal(q.receivedPerSec, 0);
      assert.equal(q.e2eP50, null);
      assert.equal(q.devicesConnected, 9);
      assert.ok(Math.abs(q.ackP99! - 2) < 0.01);

      // a reconnecting EventSource gets only what it missed
      const again = openStream(d.url, { 'Last-Event-ID': '2' });
      try {
        const missed = await again.until(points, 2);
        assert.deepEqual(
          missed.map((e) => e.id),
          ['3', '4'],
        );
      } finally {
        again.abort();
      }

      // /api/summary is 404 until the run has finished; then the summary goes to every stream
      assert.equal((await fetch(new URL('/api/summary', d.url))).status, 404);
      d.listener.finish?.(fakeSummary(scenario()));
      const [sum] = await stream.until((e) => e.event === 'summary');
      assert.equal(JSON.parse(sum!.data).passed, true);
      const res = await fetch(new URL('/api/summary', d.url));
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as Summary).runId, 'web-r1');
    } finally {
      stream.abort();
    }
  });
});

test('close() ends open streams and the server promptly', async () => {
  const s = scenario();
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  const stream = openStream(d.url);
  await stream.open;
  // an open stream would keep server.close() waiting for ever: close ends it (no time bound here; a close that
  // waited on the stream would hang until the test's timeout)
  await d.close();
  await stream.done;
  assert.ok(stream.ended());
  await assert.rejects(fetch(d.url));
  await d.close(); // twice is fine
});

test('POST /api/stop calls onStop once and answers 202; it needs JSON and the same origin', async () => {
  await withDashboard(async (d, calls) => {
    const stream = openStream(d.url);
    try {
      const url = new URL('/api/stop', d.url);
      const origin = d.url.replace(/\/$/, '');
      const json = { 'Content-Type': 'application/json' };

      const noType = await fetch(url, { method: 'POST', body: '{}' });
      assert.equal(noType.status, 415);
      const form = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'a=1',
      });
      assert.equal(form.status, 415);
      const foreign = await fetch(url, {
        method: 'POST',
        headers: { ...json, Origin: 'https://evil.example' },
        body: '{}',
      });
      assert.equal(foreign.status, 403);
      const nullOrigin = await fetch(url, {
        method: 'POST',
        headers: { ...json, Origin: 'null' },
        body: '{}',
      });
      assert.equal(nullOrigin.status, 403);
      assert.equal(calls.stop, 0);

      const ok = await fetch(url, { method: 'POST', headers: { ...json, Origin: origin }, body: '{}' });
      assert.equal(ok.status, 202);
      const again = await fetch(url, { method: 'POST', headers: json, body: '{}' });
      assert.equal(again.status, 202);
      assert.equal(calls.stop, 1);
      await stream.until((e) => e.event === 'stopping');

      const get = await fetch(url);
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'POST');
    } finally {
      stream.abort();
    }
  });
});

test('other paths are 404; a foreign Host header (DNS rebinding) is refused', async () => {
  await withDashboard(async (d) => {
    for (const path of ['/nope', '/api', '/api/stream/x', '/../etc/passwd', '/favicon.ico']) {
      const res = await fetch(new URL(path, d.url));
      assert.equal(res.status, 404, path);
    }
    const { port } = new URL(d.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/', headers: { Host: `evil.example:${port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      const ok = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/', headers: { Host: host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(ok, 200, host);
    }
  });
});

test('port in use → FleetloadError E_USAGE that says what to do', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address() as AddressInfo;
  try {
    const s = scenario();
    await assert.rejects(
      startDashboard({ host: '127.0.0.1', port, runId: s.runId, scenario: s, onStop: () => {} }),
      (err: unknown) => {
        assert.ok(err instanceof FleetloadError);
        assert.equal(err.code, 'E_USAGE');
        assert.equal(err.exitCode, 2);
        assert.equal(
          err.message,
          `web port ${port} on 127.0.0.1 is in use; pass --web-port 0 for a free port, another port, or --headless`,
        );
        return true;
      },
    );
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});

test('no secret in any response: page, stream, summary', async () => {
  await withDashboard(async (d) => {
    const agg = new Aggregator();
    d.listener.start?.({
      runId: 'web-r1',
      url: `mqtt://alice:${URL_PASSWORD}@broker.example:1883`,
      dir: '/tmp/x',
    });
    d.listener.interval?.(
      figures(agg, { t: T0 + 1000, sent: 1, received: 1, e2eMs: [1], ackMs: [1], devices: 1 }),
    );
    d.listener.finish?.(fakeSummary(scenario()));
    const page = await (await fetch(d.url)).text();
    const stream = openStream(d.url);
    let streamed = '';
    try {
      await stream.until((e) => e.event === 'summary');
      streamed = JSON.stringify(stream.events);
    } finally {
      stream.abort();
    }
    const summary = await (await fetch(new URL('/api/summary', d.url))).text();
    for (const [name, body] of Object.entries({ page, streamed, summary })) {
      assert.ok(!body.includes(PASSWORD), `${name} contains the password`);
      assert.ok(!body.includes(URL_PASSWORD), `${name} contains the URL password`);
    }
    assert.ok(page.includes('mqtt://alice:***@broker.example:1883'), 'the page shows the redacted broker');
    assert.ok(summary.includes('mqtt://alice:***@broker.example:1883'));
  });
});

test('page: self-contained, strict CSP, every scenario string escaped', async () => {
  const s = scenario({ topic: 'x/<img src=x onerror=alert(1)>/{deviceId}', deviceId: '"dev&{index}' });
  await withDashboard(async (d) => {
    const res = await fetch(d.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    const html = await res.text();
    assert.ok(!html.includes('<img src=x'), 'raw markup from the scenario');
    assert.ok(html.includes('x/&lt;img src=x onerror=alert(1)&gt;/{deviceId}'));
    assert.ok(html.includes('&quot;dev&amp;{index}'));
    assert.ok(html.includes('var uPlot='), 'uPlot inlined');
    // nothing is loaded from elsewhere: no src/href to http(s) or protocol-relative URLs
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /@import|url\(\s*['"]?(https?:)?\/\//i);
    // the boot JSON cannot close its script element
    const boot = /<script type="application\/json" id="boot">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    assert.equal(JSON.parse(boot).runId, 'web-r1');
  }, s);
});

test('escapeHtml and scriptJson', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const tricky = { s: '</script><!-- \u2028 &' };
  const text = scriptJson(tricky);
  assert.ok(!/<|>|&|\u2028/.test(text));
  assert.deepEqual(JSON.parse(text), tricky);
});

test('PointSeries keeps at most max points and replays from a sequence number', () => {
  const agg = new Aggregator();
  const series = new PointSeries(3);
  for (let i = 1; i <= 5; i++) {
    series.add(figures(agg, { t: T0 + i * 1000, sent: i, received: i, e2eMs: [i], ackMs: [i], devices: i }), {
      targetDevices: 10,
      intervalMs: 1000,
    });
  }
  assert.deepEqual(
    series.since().map((p) => p.seq),
    [3, 4, 5],
  );
  assert.deepEqual(
    series.since(4).map((p) => p.seq),
    [5],
  );
  assert.deepEqual(
    series.since(1).map((p) => p.seq),
    [3, 4, 5],
  ); // older than what is kept: all of it
  assert.equal(series.since().at(-1)?.sent, 15); // totals count every interval, dropped ones too
});

test('the browser script compiles', () => {
  assert.doesNotThrow(() => new Function(CLIENT_JS));
  assert.ok(!CLIENT_JS.includes('innerHTML'), 'data goes in with textContent');
});

test('a web host that is not an address of this machine → E_USAGE', async () => {
  const s = scenario();
  for (const host of ['203.0.113.7', 'no-such-host.invalid']) {
    await assert.rejects(
      startDashboard({ host, port: 0, runId: s.runId, scenario: s, onStop: () => {} }),
      (err: unknown) => err instanceof FleetloadError && err.code === 'E_USAGE' && err.message.includes(host),
      host,
    );
  }
});

test('close() before the run finished tells open pages so', async () => {
  const s = scenario();
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  const stream = openStream(d.url);
  await stream.open;
  await d.close();
  await stream.done;
  assert.ok(stream.events.some((e) => e.event === 'closed'));
});

/** A FleetControl like executeRun's, recording what the dashboard asks of it. */
function fakeControl(maxDevices: number, intervalMs: number) {
  const calls: Array<['devices' | 'intervalMs', number]> = [];
  let target = maxDevices;
  let interval = intervalMs;
  const control: FleetControl = {
    maxDevices,
    targetDevices: () => target,
    intervalMs: () => interval,
    setTargetDevices: (n) => {
      calls.push(['devices', n]);
      target = n;
    },
    setIntervalMs: (ms) => {
      calls.push(['intervalMs', ms]);
      interval = ms;
    },
  };
  return { control, calls };
}

async function postFleet(
  d: Dashboard,
  body: string,
  headers: Record<string, string> = { 'Content-Type': 'application/json' },
): Promise<{ status: number; body: { error?: string; devices?: number; intervalMs?: number } }> {
  const res = await fetch(new URL('/api/fleet', d.url), { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

test('POST /api/fleet applies devices and interval through the control; the stream carries the new load', async () => {
  await withDashboard(async (d) => {
    const { control, calls } = fakeControl(10, 1000);
    // before the run started there is nothing to change
    const early = await postFleet(d, '{"devices":5}');
    assert.equal(early.status, 409);
    assert.match(early.body.error ?? '', /not started/);

    d.listener.start?.({ runId: 'web-r1', url: 'mqtt://broker.example:1883', dir: '/tmp/x', control });
    const stream = openStream(d.url);
    try {
      const [first] = await stream.until((e) => e.event === 'fleet');
      assert.deepEqual(JSON.parse(first!.data), { devices: 10, intervalMs: 1000, maxDevices: 10 });

      const origin = d.url.replace(/\/$/, '');
      const ok = await postFleet(d, JSON.stringify({ devices: 4, intervalMs: 250 }), {
        'Content-Type': 'application/json; charset=utf-8',
        Origin: origin,
      });
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.body, { devices: 4, intervalMs: 250 });
      assert.deepEqual(calls, [
        ['devices', 4],
        ['intervalMs', 250],
      ]);
      const fleet = await stream.until((e) => e.event === 'fleet', 2);
      assert.deepEqual(JSON.parse(fleet[1]!.data), { devices: 4, intervalMs: 250, maxDevices: 10 });

      // one at a time: only what is given changes
      const only = await postFleet(d, '{"intervalMs": 12.5}');
      assert.equal(only.status, 200);
      assert.deepEqual(only.body, { devices: 4, intervalMs: 12.5 });
      assert.deepEqual(calls.at(-1), ['intervalMs', 12.5]);
      const zero = await postFleet(d, '{"devices": 0}');
      assert.deepEqual(zero.body, { devices: 0, intervalMs: 12.5 });
      await postFleet(d, '{"devices": 10}');

      // every point carries the load of its moment
      d.listener.interval?.(
        figures(new Aggregator(), { t: T0 + 1000, sent: 1, received: 1, e2eMs: [1], ackMs: [1], devices: 7 }),
      );
      const [p] = await stream.until(points);
      const point = JSON.parse(p!.data) as DashboardPoint;
      assert.equal(point.targetDevices, 10);
      assert.equal(point.intervalMs, 12.5);

      // a new tab gets the history, then the load now
      const late = openStream(d.url);
      try {
        await late.until(points);
        const [now] = await late.until((e) => e.event === 'fleet');
        assert.deepEqual(JSON.parse(now!.data), { devices: 10, intervalMs: 12.5, maxDevices: 10 });
        const order = late.events.map((e) => e.event);
        assert.ok(order.indexOf('fleet') > order.indexOf('message'), `fleet after the history: ${order}`);
      } finally {
        late.abort();
      }

      // after the end: 409, and the control is not touched
      const before = calls.length;
      d.listener.finish?.(fakeSummary(scenario()));
      const after = await postFleet(d, '{"devices":5}');
      assert.equal(after.status, 409);
      assert.match(after.body.error ?? '', /finished/);
      assert.equal(calls.length, before);
    } finally {
      stream.abort();
    }
  });
});

test('POST /api/fleet: 400 with a message for bad values, 415 without JSON, 403 from another origin', async () => {
  await withDashboard(async (d) => {
    const { control, calls } = fakeControl(10, 1000);
    d.listener.start?.({ runId: 'web-r1', url: 'mqtt://broker.example:1883', dir: '/tmp/x', control });
    const bad: Array<[string, RegExp]> = [
      ['{"devices": 11}', /devices must be a whole number from 0 to 10 .*not 11/],
      ['{"devices": -1}', /devices must be a whole number from 0 to 10/],
      ['{"devices": 2.5}', /devices must be a whole number.*not 2\.5/],
      ['{"devices": "5"}', /devices must be a whole number.*not "5"/],
      ['{"devices": null}', /devices must be a whole number.*not null/],
      [
        '{"intervalMs": 0}',
        /intervalMs must be a number of milliseconds from 1 to 30000 \(the run time\), not 0/,
      ],
      ['{"intervalMs": 0.5}', /intervalMs must be .* from 1 to 30000/],
      ['{"intervalMs": 30001}', /intervalMs must be .* from 1 to 30000 .*not 30001/],
      ['{"intervalMs": 1e308}', /intervalMs must be .* from 1 to 30000 .*not 1e\+308/],
      ['{"intervalMs": "100ms"}', /intervalMs must be a number.*not "100ms"/],
      ['{"intervalMs": 1e400}', /intervalMs must be .*not Infinity/],
      ['{"devices": 5, "rate": 3}', /unknown key "rate"; only "devices" and "intervalMs" can change/],
      ['{"interval": "1s", "x": 1}', /unknown keys "interval", "x"/],
      ['{}', /nothing to change/],
      ['[4]', /must be a JSON object/],
      ['4', /must be a JSON object/],
      ['null', /must be a JSON object/],
      ['devices=4', /not JSON/],
      ['', /not JSON/],
    ];
    for (const [body, message] of bad) {
      const res = await postFleet(d, body);
      assert.equal(res.status, 400, body);
      assert.match(res.body.error ?? '', message, body);
    }
    // a bad interval with a good device count changes nothing
    assert.equal((await postFleet(d, '{"devices": 3, "intervalMs": -5}')).status, 400);

    const noType = await postFleet(d, '{"devices":3}', {});
    assert.equal(noType.status, 415);
    assert.match(noType.body.error ?? '', /POST \/api\/fleet needs Content-Type: application\/json/);
    const form = await postFleet(d, 'devices=3', { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 415);
    const text = await postFleet(d, '{"devices":3}', { 'Content-Type': 'text/plain' });
    assert.equal(text.status, 415);
    for (const origin of [
      'https://evil.example',
      'null',
      d.url.replace(/\/$/, '').replace('127.0.0.1', 'localhost'),
    ]) {
      const res = await postFleet(d, '{"devices":3}', { 'Content-Type': 'application/json', Origin: origin });
      assert.equal(res.status, 403, origin);
      assert.equal(res.body.error, 'cross-origin requests may not change the load');
    }
    const crossSite = await postFleet(d, '{"devices":3}', {
      'Content-Type': 'application/json',
      'Sec-Fetch-Site': 'cross-site',
    });
    assert.equal(crossSite.status, 403);
    assert.deepEqual(calls, [], 'no refused request reached the control');

    const get = await fetch(new URL('/api/fleet', d.url));
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');

    // a foreign Host header (DNS rebinding) is refused before anything else
    const { port } = new URL(d.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/fleet',
          method: 'POST',
          headers: { Host: `evil.example:${port}`, 'Content-Type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{"devices":3}');
    });
    assert.equal(status, 403);
    assert.deepEqual(calls, []);
  });
});

test('POST /api/fleet: 409 once Stop was pressed or the run drains; the stop path still answers', async () => {
  await withDashboard(async (d, stops) => {
    const { control, calls } = fakeControl(10, 1000);
    d.listener.start?.({ runId: 'web-r1', url: 'mqtt://broker.example:1883', dir: '/tmp/x', control });
    assert.equal((await postFleet(d, '{"devices":3}')).status, 200);
    const stop = await fetch(new URL('/api/stop', d.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(stop.status, 202);
    assert.equal(stops.stop, 1);
    const res = await postFleet(d, '{"devices":5}');
    assert.equal(res.status, 409);
    assert.match(res.body.error ?? '', /stopping/);
    assert.deepEqual(calls, [['devices', 3]]);
  });
  await withDashboard(async (d) => {
    const { control, calls } = fakeControl(10, 1000);
    d.listener.start?.({ runId: 'web-r1', url: 'mqtt://broker.example:1883', dir: '/tmp/x', control });
    const f = figures(new Aggregator(), {
      t: T0 + 1000,
      sent: 1,
      received: 1,
      e2eMs: [1],
      ackMs: [1],
      devices: 1,
    });
    d.listener.interval?.({ ...f, phase: 'drain' });
    assert.equal((await postFleet(d, '{"devices":5}')).status, 409);
    assert.deepEqual(calls, []);
  });
  // a run whose started() brings no control cannot change its load
  await withDashboard(async (d) => {
    d.listener.start?.({ runId: 'web-r1', url: 'mqtt://broker.example:1883', dir: '/tmp/x' });
    assert.equal((await postFleet(d, '{"devices":5}')).status, 409);
  });
});

test('POST /api/fleet: a control that throws is a 500, logged, and the server goes on', async () => {
  const s = scenario();
  const logged: string[] = [];
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
    log: (l) => logged.push(l),
  });
  try {
    const { control } = fakeControl(10, 1000);
    control.setTargetDevices = () => {
      throw new Error('engine gone');
    };
    d.listener.start?.({ runId: 'web-r1', url: 'mqtt://broker.example:1883', dir: '/tmp/x', control });
    const res = await postFleet(d, '{"devices":5}');
    assert.equal(res.status, 500);
    assert.ok(logged.some((l) => l.includes('engine gone')));
    assert.equal((await fetch(d.url)).status, 200);
  } finally {
    await d.close();
  }
});

test('parseFleetRequest', () => {
  const limits = (maxDevices: number) => ({ maxDevices, minIntervalMs: 1, maxIntervalMs: 60_000 });
  assert.deepEqual(parseFleetRequest('{"devices":0}', limits(0)), { devices: 0 });
  assert.deepEqual(parseFleetRequest('{"devices":7,"intervalMs":1}', limits(7)), {
    devices: 7,
    intervalMs: 1,
  });
  assert.deepEqual(parseFleetRequest('{"intervalMs":60000}', limits(7)), { intervalMs: 60_000 });
  assert.deepEqual(parseFleetRequest('{"devices":1}', limits(0)), {
    error: "devices must be a whole number from 0 to 0 (the run's --devices), not 1",
    field: 'devices',
  });
  const long = parseFleetRequest(`{"intervalMs":"${'x'.repeat(200)}"}`, limits(1));
  assert.ok('error' in long);
  assert.match(long.error, /…$/);
  assert.equal(long.field, 'intervalMs');
});

test('page: Load controls start disabled, capped at the planned fleet', async () => {
  await withDashboard(async (d) => {
    const html = await (await fetch(d.url)).text();
    assert.match(html, /<fieldset id="load-fields" disabled>/);
    assert.match(html, /id="load-devices"[^>]* max="10"/);
    assert.match(html, /id="load-interval"[^>]* min="1"/);
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
  });
});
