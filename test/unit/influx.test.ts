import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FakeClock } from '../../src/clock.js';
import { FleetloadError } from '../../src/errors.js';
import type { IntervalFigures } from '../../src/run/output.js';
import {
  escapeMeasurement,
  escapeTag,
  FINAL_FLUSH_INTERRUPTED_MS,
  FINAL_FLUSH_MS,
  InfluxSink,
  type InfluxSinkOptions,
  intervalLines,
  summaryLine,
  writeRequest,
} from '../../src/sinks/influx.js';
import { newHistogram, recordMs } from '../../src/stats/histogram.js';
import { LATENCIES, type LatencyName, zeroCounters } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';
import { summaryFixture } from '../helpers/summary.js';

// ---------------------------------------------------------------------------------------------------------------
// fixtures

function figures(
  o: { t?: number; latencies?: Partial<Record<LatencyName, number[]>>; gaps?: number } = {},
): IntervalFigures {
  const histograms = {} as Record<LatencyName, ReturnType<typeof newHistogram>>;
  for (const k of LATENCIES) {
    histograms[k] = newHistogram();
    for (const ms of o.latencies?.[k] ?? []) recordMs(histograms[k], ms);
  }
  const counters = zeroCounters();
  Object.assign(counters, {
    scheduled: 101,
    sent: 100,
    acked: 98,
    failed: 2,
    skipped: 1,
    connectFailures: 3,
    reconnects: 4,
    received: 97,
    duplicated: 5,
    reordered: 6,
    foreign: 7,
  });
  return {
    elapsedMs: 1000,
    interval: { t: o.t ?? 1_800_000_000_123.4, durationMs: 1000, devicesConnected: 50, counters, histograms },
    gaps: o.gaps ?? 8,
    cpuPercent: 12.5,
    eventLoopLagP99Ms: 1.25,
    phase: 'steady',
  };
}

const full = {
  // below 2.048 ms HDR (µs, 3 digits) is exact, so the percentiles below are exact
  publishAck: [0.5, 1],
  scheduleLag: [0.25],
  connect: [1.5],
  e2e: [1.5, 2],
};

function summary(): Summary {
  const lat = { count: 2, min: 1, mean: 1.5, p50: 1.5, p90: 2, p95: 2, p99: 2, p999: 2, max: 2 };
  return summaryFixture({
    runId: 'r1',
    endedAt: '2027-01-15T08:00:30.000Z',
    messages: { acked: 299, failed: 1, received: 298, lost: 2 },
    latency: { e2e: lat, publishAck: lat },
  });
}

/** A local InfluxDB stand-in: records requests (gunzipped bodies) and answers with `respond`. */
interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  raw: Buffer;
  body: string;
}

async function fakeInflux(
  respond: (req: Recorded, n: number, res: ServerResponse) => void = (_r, _n, res) => {
    res.writeHead(204).end();
  },
): Promise<{ url: string; requests: Recorded[]; server: Server; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body =
        req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString('utf8') : raw.toString();
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw, body };
      requests.push(r);
      respond(r, requests.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const servers: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function server(respond?: Parameters<typeof fakeInflux>[0]) {
  const s = await fakeInflux(respond);
  servers.push(s);
  return s;
}

function sink(o: Partial<InfluxSinkOptions> & { url: string }): InfluxSink {
  return new InfluxSink({
    runId: 'r1',
    segment: '0/1',
    role: 'run',
    source: 'mqtt',
    db: 'fleetload',
    random: () => 1,
    ...o,
  });
}

/** an unused loopback port: connections are refused */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------------------------------------------

describe('line protocol', () => {
  test('producer and consumer lines, exact text, ms timestamp = interval end', () => {
    const lines = intervalLines(figures({ latencies: full }), {
      runId: 'run-1',
      segment: '1/4',
      role: 'run',
      source: 'mqtt',
    });
    assert.deepEqual(lines, [
      'fleetload_producer,role=run,run_id=run-1,segment=1/4 devices_connected=50i,sent=100i,acked=98i,failed=2i,' +
        'scheduled=101i,skipped=1i,connect_failures=3i,reconnects=4i,ack_p50=0.5,ack_p99=1,lag_p99=0.25,' +
        'connect_p99=1.5,cpu_percent=12.5,event_loop_lag_p99=1.25,bytes_sent=0i 1800000000123',
      'fleetload_consumer,role=run,run_id=run-1,segment=1/4,source=mqtt received=97i,lost=8i,duplicated=5i,reordered=6i,foreign=7i,' +
        'e2e_p50=1.5,e2e_p90=2,e2e_p95=2,e2e_p99=2,e2e_max=2,bytes_received=0i 1800000000123',
    ]);
  });

  test('latency fields are left out when nothing was measured; no consumer line without a consumer', () => {
    const lines = intervalLines(figures(), {
      runId: 'r',
      segment: '0/1',
      role: 'producer',
      source: undefined,
    });
    assert.deepEqual(lines, [
      'fleetload_producer,role=producer,run_id=r,segment=0/1 devices_connected=50i,sent=100i,acked=98i,failed=2i,scheduled=101i,' +
        'skipped=1i,connect_failures=3i,reconnects=4i,cpu_percent=12.5,event_loop_lag_p99=1.25,bytes_sent=0i 1800000000123',
    ]);
  });

  test('a consumer (fleetload consume) writes consumer lines only, tagged with its segment and role', () => {
    const lines = intervalLines(figures({ latencies: full }), {
      runId: 'r',
      segment: '0/2',
      role: 'consumer',
      source: 'mqtt',
    });
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] ?? '',
      /^fleetload_consumer,role=consumer,run_id=r,segment=0\/2,source=mqtt received=97i,/,
    );
  });

  test('tag values are escaped: comma, equals sign, space; line breaks become spaces', () => {
    assert.equal(escapeTag('a b,c=d'), 'a\\ b\\,c\\=d');
    assert.equal(escapeTag('x\ny'), 'x\\ y');
    assert.equal(escapeTag('end\\'), 'end\\\\');
    assert.equal(escapeMeasurement('m a,b=c'), 'm\\ a\\,b=c');
    const [producer, consumer] = intervalLines(figures(), {
      runId: 'run 1,a=b',
      segment: 'w=1 x',
      role: 'run',
      source: 'nats,js',
    });
    assert.ok(
      producer?.startsWith(
        'fleetload_producer,role=run,run_id=run\\ 1\\,a\\=b,segment=w\\=1\\ x devices_connected=50i,',
      ),
    );
    assert.ok(
      consumer?.startsWith(
        'fleetload_consumer,role=run,run_id=run\\ 1\\,a\\=b,segment=w\\=1\\ x,source=nats\\,js received=97i,',
      ),
    );
  });

  test('the summary line carries the final figures at the end time', () => {
    assert.equal(
      summaryLine(summary(), { runId: 'r1', segment: '2/3', role: 'producer' }),
      'fleetload_summary,role=producer,run_id=r1,segment=2/3 scheduled=300i,sent=300i,acked=299i,failed=1i,unconfirmed=0i,' +
        'received=298i,lost=2i,duplicated=0i,reordered=0i,foreign=0i,connected_peak=10i,connect_failures=0i,' +
        'e2e_p50=1.5,e2e_p99=2,ack_p99=2,passed=1i 1800000030000',
    );
  });
});

describe('write requests', () => {
  test('1.x: /write?db=&precision=ms, basic auth only when a user or password is set', () => {
    const a = writeRequest({ url: 'http://influx:8086/', db: 'fleet load' });
    assert.equal(a.url, 'http://influx:8086/write?db=fleet+load&precision=ms');
    assert.equal(a.headers.Authorization, undefined);
    const b = writeRequest({ url: 'https://proxy/influx', db: 'd', user: 'u', password: 'p:w' });
    assert.equal(b.url, 'https://proxy/influx/write?db=d&precision=ms');
    assert.equal(b.headers.Authorization, `Basic ${Buffer.from('u:p:w').toString('base64')}`);
  });

  test('2.x/3.x: /api/v2/write?org=&bucket=&precision=ms with Authorization: Token', () => {
    const r = writeRequest({ url: 'http://influx:8086', org: 'my org', bucket: 'b&c', token: 's3cret' });
    assert.equal(r.url, 'http://influx:8086/api/v2/write?org=my+org&bucket=b%26c&precision=ms');
    assert.equal(r.headers.Authorization, 'Token s3cret');
  });
});

describe('InfluxSink against a local HTTP server', () => {
  test('1.x: gzipped batch to /write, 204 counts the lines written', async () => {
    const s = await server();
    const k = sink({ url: s.url });
    k.interval(figures({ latencies: full }));
    k.interval(figures({ t: 1_800_000_001_000 }));
    await k.close();
    const bodies = s.requests.map((r) => r.body).join('');
    assert.equal(bodies.trim().split('\n').length, 4);
    const first = s.requests[0]!;
    assert.equal(first.method, 'POST');
    assert.equal(first.url, '/write?db=fleetload&precision=ms');
    assert.equal(first.headers['content-encoding'], 'gzip');
    assert.equal(first.raw[0], 0x1f); // gzip magic
    assert.equal(first.raw[1], 0x8b);
    assert.match(first.headers['content-type'] ?? '', /^text\/plain/);
    assert.ok(
      first.body.startsWith('fleetload_producer,role=run,run_id=r1,segment=0/1 devices_connected=50i'),
      first.body,
    );
    assert.deepEqual(k.stats, { written: 4, dropped: 0, failedBatches: 0 });
  });

  test('2.x/3.x: URL, token header and body as the server sees them', async () => {
    const s = await server();
    const k = new InfluxSink({
      url: s.url,
      org: 'acme',
      bucket: 'loadtests',
      token: 'tok-123',
      runId: 'r2',
      segment: '0/1',
      role: 'run',
      source: 'mqtt',
      gzip: false,
    });
    k.interval(figures({ latencies: full }));
    k.finish(summary());
    await k.close();
    assert.equal(s.requests[0]?.url, '/api/v2/write?org=acme&bucket=loadtests&precision=ms');
    assert.equal(s.requests[0]?.headers.authorization, 'Token tok-123');
    assert.equal(s.requests[0]?.headers['content-encoding'], undefined);
    const body = s.requests.map((r) => r.body).join('');
    assert.deepEqual(
      body
        .trim()
        .split('\n')
        .map((l) => l.split(/[, ]/)[0]),
      ['fleetload_producer', 'fleetload_consumer', 'fleetload_summary'],
    );
    assert.ok(body.includes('run_id=r2'));
    assert.equal(k.stats.written, 3);
  });

  test('5xx is retried with exponential backoff (injected clock) and the lines are kept', async () => {
    const s = await server((_r, n, res) => {
      res.writeHead(n <= 3 ? 503 : 204).end(n <= 3 ? 'busy' : undefined);
    });
    const clock = new FakeClock();
    const logs: string[] = [];
    const k = sink({ url: s.url, clock, retryBaseMs: 100, retryMaxMs: 10_000, log: (l) => logs.push(l) });
    k.interval(figures());
    await until(() => s.requests.length === 1 && k.stats.failedBatches === 1, 'first attempt');
    // attempt 1 failed → wait 100 ms, attempt 2 → 200 ms, attempt 3 → 400 ms
    for (const [n, delay] of [
      [2, 100],
      [3, 200],
      [4, 400],
    ] as const) {
      // the failed answer processed (so the pending timer is the retry, not the request timeout)
      await until(() => k.stats.failedBatches === n - 1 && clock.pending === 1, 'retry timer');
      clock.advance(delay - 1);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(s.requests.length, n - 1, `no attempt ${n} before ${delay} ms`);
      clock.advance(1);
      await until(() => s.requests.length === n, `attempt ${n}`);
    }
    await until(() => k.stats.written === 2, 'written');
    assert.deepEqual(k.stats, { written: 2, dropped: 0, failedBatches: 3 });
    assert.equal(s.requests[3]?.body, s.requests[0]?.body, 'the same lines are sent again');
    assert.ok(logs.some((l) => /HTTP 503 busy; will retry/.test(l)));
    assert.equal(logs.filter((l) => /503/.test(l)).length, 1, 'the same failure is logged once');
    await k.close();
  });

  test('the backoff is capped at retryMaxMs', async () => {
    const s = await server((_r, _n, res) => {
      res.writeHead(500).end();
    });
    const clock = new FakeClock();
    const k = sink({ url: s.url, clock, retryBaseMs: 100, retryMaxMs: 250, closeTimeoutMs: 0 });
    k.interval(figures());
    // uncapped the waits would be 100, 200, 400, 800, 1600 ms (random = 1: no jitter); capped: 100, 200, 250, …
    for (const [n, wait] of [
      [1, 100],
      [2, 200],
      [3, 250],
      [4, 250],
      [5, 250],
    ] as const) {
      // the failed answer processed (so the pending timer is the retry, not the request timeout)
      await until(() => k.stats.failedBatches === n && clock.pending === 1, `attempt ${n} failed`);
      clock.advance(wait - 1);
      assert.equal(k.pending, 2, `attempt ${n + 1} not started before ${wait} ms: the lines still wait`);
      clock.advance(1);
      assert.equal(k.pending, 0, `attempt ${n + 1} started at ${wait} ms: the lines are on their way`);
      await until(() => s.requests.length === n + 1, `attempt ${n + 1} reaches the server`);
    }
    await k.close({ interrupted: true });
  });

  test('429 is retried; other 4xx are not (the batch is dropped and counted)', async () => {
    const s429 = await server((_r, n, res) => {
      res.writeHead(n === 1 ? 429 : 204).end();
    });
    const clock = new FakeClock();
    const a = sink({ url: s429.url, clock, retryBaseMs: 50 });
    a.interval(figures());
    await until(() => a.stats.failedBatches === 1 && clock.pending >= 1, '429');
    clock.advance(50);
    await until(() => a.stats.written === 2, 'retried after 429');
    await a.close();

    const s400 = await server((_r, _n, res) => {
      res
        .writeHead(400, { 'Content-Type': 'application/json' })
        .end('{"error":"partial write: field type conflict"}');
    });
    const logs: string[] = [];
    const b = sink({ url: s400.url, clock, log: (l) => logs.push(l) });
    b.interval(figures());
    await until(() => b.stats.failedBatches === 1, '400');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(s400.requests.length, 1, 'not retried');
    assert.deepEqual(b.stats, { written: 0, dropped: 2, failedBatches: 1 });
    assert.ok(
      logs.some((l) => l.includes('HTTP 400') && l.includes('field type conflict') && !l.includes('retry')),
    );
    await b.close();
  });

  test('bounded buffer: while InfluxDB is slow the oldest lines are dropped and counted', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const s = await server((_r, _n, res) => {
      void gate.then(() => res.writeHead(204).end());
    });
    const k = sink({ url: s.url, source: undefined, maxBufferLines: 5, timeoutMs: 60_000 });
    k.push(['m v=0i 0']);
    await until(() => s.requests.length === 1, 'first request in flight');
    for (let i = 1; i <= 10; i++) k.push([`m v=${i}i ${i}`]);
    assert.equal(k.pending, 5);
    assert.equal(k.stats.dropped, 5);
    release();
    await k.close();
    const values = s.requests.flatMap((r) => r.body.trim().split('\n')).map((l) => l.split(' ')[1]);
    assert.deepEqual(values, ['v=0i', 'v=6i', 'v=7i', 'v=8i', 'v=9i', 'v=10i']);
    assert.deepEqual(k.stats, { written: 6, dropped: 5, failedBatches: 0 });
  });

  test('batches hold at most batchLines lines', async () => {
    const s = await server();
    const k = sink({ url: s.url, batchLines: 3 });
    k.push(['m v=1i 1', 'm v=2i 2', 'm v=3i 3', 'm v=4i 4', 'm v=5i 5', 'm v=6i 6', 'm v=7i 7']);
    await k.close();
    assert.deepEqual(
      s.requests.map((r) => r.body.trim().split('\n').length),
      [3, 3, 1],
    );
  });

  test('a slow InfluxDB: requests time out, are retried, and listener calls stay synchronous', async () => {
    const s = await server(() => {
      // never answers
    });
    const clock = new FakeClock();
    let fetches = 0;
    const logs: string[] = [];
    const k = sink({
      url: s.url,
      clock,
      timeoutMs: 100,
      retryBaseMs: 20,
      closeTimeoutMs: 300,
      maxBufferLines: 500,
      log: (l) => logs.push(l),
      fetch: ((input, init) => {
        fetches++;
        return fetch(input, init);
      }) as typeof fetch,
    });
    // 1000 intervals of 2 lines: the first interval's lines go out in the one request started; the rest wait in
    // the buffer, which keeps its bound by dropping the oldest (counted). No call waits for InfluxDB.
    for (let i = 0; i < 1000; i++) k.interval(figures());
    assert.equal(k.pending, 500);
    assert.equal(k.stats.dropped, 2000 - 2 - 500);
    await until(() => s.requests.length === 1, 'the first request reaches InfluxDB');
    assert.equal(fetches, 1, 'one request for 1000 interval() calls: no I/O per call');
    // no answer within timeoutMs: the request is aborted and its lines go back to the front of the buffer
    clock.advance(100);
    await until(() => k.stats.failedBatches === 1 && clock.pending === 1, 'the first request timed out');
    assert.ok(
      logs.some((l) => l.includes('no answer within 100 ms; will retry')),
      logs.join('\n'),
    );
    assert.equal(k.pending, 500, 'still bounded');
    // retried after the backoff (retryBaseMs, random = 1), and that one times out too
    clock.advance(20);
    await until(() => fetches === 2, 'the retry');
    clock.advance(100);
    await until(() => k.stats.failedBatches === 2 && clock.pending === 1, 'the retry timed out');
    // close: an InfluxDB that was already failing gets one last try, then what is left is dropped
    let closed = false;
    const closing = k.close().then(() => {
      closed = true;
    });
    await until(() => fetches === 3, 'one last try at close');
    assert.equal(closed, false);
    clock.advance(100);
    await until(() => closed, 'close gives up after the last try');
    await closing;
    assert.deepEqual(k.stats, { written: 0, dropped: 2000, failedBatches: 3 });
    assert.equal(k.pending, 0);
  });

  test('a dead InfluxDB never blocks and never throws, unless required', async () => {
    const url = await deadUrl();
    const logs: string[] = [];
    const k = sink({
      url,
      retryBaseMs: 10,
      closeTimeoutMs: 200,
      log: (l) => logs.push(l),
      password: 'pw-secret',
      user: 'u',
    });
    k.interval(figures());
    k.finish(summary());
    await until(() => k.stats.failedBatches >= 1, 'a refused connection');
    await k.close();
    assert.equal(k.stats.written, 0);
    assert.equal(k.stats.dropped, 3);
    assert.ok(
      logs.some((l) => l.includes('ECONNREFUSED')),
      logs.join('\n'),
    );
    assert.ok(!logs.join('\n').includes('pw-secret'));
  });

  test('required: a first batch that is refused fails the run with E_UNREACHABLE; no secret in the message', async () => {
    const s = await server((_r, _n, res) => {
      res.writeHead(401).end('{"error":"unauthorized access"}');
    });
    const logs: string[] = [];
    const k = new InfluxSink({
      url: s.url,
      org: 'o',
      bucket: 'b',
      token: 'very-secret-token',
      runId: 'r',
      segment: '0/1',
      role: 'run',
      source: 'mqtt',
      required: true,
      log: (l) => logs.push(l),
    });
    k.interval(figures());
    const err = await k.failure;
    assert.ok(err instanceof FleetloadError);
    assert.equal(err.code, 'E_UNREACHABLE');
    assert.equal(err.exitCode, 3);
    assert.match(err.message, /did not accept the first batch: HTTP 401/);
    assert.match(err.message, /--influx-token/);
    await assert.rejects(k.close(), (e: unknown) => e === err);
    assert.ok(!`${err.message}\n${logs.join('\n')}`.includes('very-secret-token'));
  });

  test('required: a dead InfluxDB fails after requiredAttempts; not required it would go on', async () => {
    const url = await deadUrl();
    const k = sink({ url, required: true, requiredAttempts: 2, retryBaseMs: 5 });
    k.interval(figures());
    const err = await k.failure;
    assert.match(err.message, /ECONNREFUSED/);
    assert.equal(k.stats.failedBatches, 2);
    await assert.rejects(k.close(), /E_UNREACHABLE|did not accept/);
  });

  test('required: a final flush that fails is an error too', async () => {
    const s = await server((_r, n, res) => {
      res.writeHead(n === 1 ? 204 : 503).end();
    });
    const k = sink({ url: s.url, required: true, retryBaseMs: 10, closeTimeoutMs: 200 });
    k.interval(figures());
    await until(() => k.stats.written === 2, 'first batch');
    k.finish(summary());
    await assert.rejects(k.close(), (e: unknown) => {
      assert.ok(e instanceof FleetloadError);
      assert.equal(e.code, 'E_UNREACHABLE');
      assert.match(e.message, /did not take the final figures \(HTTP 503; 1 line\(s\) not written\)/);
      return true;
    });
  });
});

describe('final flush bound (issue 12)', () => {
  /** An InfluxDB that never answers: each request hangs until its signal aborts it. */
  function hangingFetch(answerFirst?: { clock: FakeClock; afterMs: number }) {
    const calls: string[] = [];
    const f = ((url: string | URL | Request, init?: RequestInit) => {
      calls.push(String(url));
      return new Promise<Response>((resolve, reject) => {
        if (answerFirst && calls.length === 1) {
          answerFirst.clock.setTimeout(
            () => resolve(new Response(null, { status: 204 })),
            answerFirst.afterMs,
          );
        }
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    }) as typeof fetch;
    return { fetch: f, calls };
  }
  const settled = () => new Promise((r) => setTimeout(r, 20));

  test('an unresponsive InfluxDB holds the final flush FINAL_FLUSH_MS at most (fake time); the summary line is counted dropped before summary.json is written', async () => {
    const clock = new FakeClock();
    const h = hangingFetch();
    const logs: string[] = [];
    const k = sink({ url: 'http://influx.invalid:8086', clock, fetch: h.fetch, log: (l) => logs.push(l) });
    k.interval(figures()); // 2 lines, the request hangs
    await until(() => h.calls.length === 1, 'the first request');
    let flushed = false;
    const p = k.flush().then(() => {
      flushed = true;
    });
    clock.advance(FINAL_FLUSH_MS - 1);
    await settled();
    assert.equal(flushed, false, 'still waiting just before the bound');
    clock.advance(1);
    await p;
    // summary.json is written here (sinks.summaryPart reads stats): the 2 interval lines and the summary line
    // that finish() is about to add are all counted
    assert.deepEqual(k.stats, { written: 0, dropped: 3, failedBatches: 1 });
    assert.equal(k.pending, 0);
    k.finish(summary());
    let closed = false;
    const c = k.close().then(() => {
      closed = true;
    });
    await settled();
    assert.equal(closed, true, 'close does not wait again: InfluxDB was given up on');
    await c;
    assert.equal(h.calls.length, 1, 'no further request');
    assert.deepEqual(k.stats, { written: 0, dropped: 3, failedBatches: 1 });
    assert.ok(
      logs.some((l) => /final flush ran out of time/.test(l)),
      logs.join('\n'),
    );
  });

  test('the bound is shared by flush and close: close gets what flush left (fake time)', async () => {
    const clock = new FakeClock();
    const h = hangingFetch({ clock, afterMs: 1000 }); // the first request is answered after 1 s, later ones never
    const k = sink({ url: 'http://influx.invalid:8086', clock, fetch: h.fetch });
    k.interval(figures());
    await until(() => h.calls.length === 1, 'the first request');
    const p = k.flush();
    clock.advance(1000);
    await p;
    assert.deepEqual(k.stats, { written: 2, dropped: 0, failedBatches: 0 });
    k.finish(summary());
    let closed = false;
    const c = k.close().then(() => {
      closed = true;
    });
    await until(() => h.calls.length === 2, 'the summary line sent');
    clock.advance(FINAL_FLUSH_MS - 1000 - 1);
    await settled();
    assert.equal(closed, false);
    clock.advance(1);
    await c;
    assert.deepEqual(k.stats, { written: 2, dropped: 1, failedBatches: 1 });
  });

  test('interrupted: the bound is FINAL_FLUSH_INTERRUPTED_MS; required: a flush cut short is E_UNREACHABLE', async () => {
    const clock = new FakeClock();
    const h = hangingFetch();
    const k = sink({ url: 'http://influx.invalid:8086', clock, fetch: h.fetch, required: true });
    k.interval(figures());
    await until(() => h.calls.length === 1, 'the first request');
    let done = false;
    const c = k.close({ interrupted: true }).then(
      () => {
        done = true;
      },
      (e: unknown) => {
        done = true;
        throw e;
      },
    );
    clock.advance(FINAL_FLUSH_INTERRUPTED_MS - 1);
    await settled();
    assert.equal(done, false);
    clock.advance(1);
    await assert.rejects(c, (e: unknown) => e instanceof FleetloadError && e.code === 'E_UNREACHABLE');
    assert.deepEqual(k.stats, { written: 0, dropped: 2, failedBatches: 1 });
  });
});
