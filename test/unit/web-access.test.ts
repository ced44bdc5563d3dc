import assert from 'node:assert/strict';
import { request } from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { FleetloadError } from '../../src/errors.js';
import type { FleetControl } from '../../src/run/output.js';
import { loadScenario, redactSecrets } from '../../src/scenario/load.js';
import { type Scenario, scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { PrometheusSink } from '../../src/sinks/prometheus.js';
import {
  cookieValue,
  hostAllowed,
  hostName,
  isLoopbackHost,
  printable,
  tokenEquals,
} from '../../src/web/guard.js';
import { MAX_BODY_BYTES } from '../../src/web/requests.js';
import { type Dashboard, startDashboard } from '../../src/web/server.js';

/**
 * The dashboard and /metrics off loopback (issue 12): every server really listens; "off loopback" is either a
 * real 0.0.0.0 bind or 127.0.0.1 treated as remote through the injectable isLoopback decision.
 */

const TOKEN = 'tok-0123456789abcdef-XYZ';
const remote = () => false;

function scenario(over: Record<string, unknown> = {}): Scenario {
  return toScenario(scenarioInput.parse({ devices: 10, runTime: '30s', interval: '1s', ...over }), 'acc-r1');
}

function fakeControl(maxDevices = 10, intervalMs = 1000) {
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
  return { control, calls, now: () => ({ devices: target, intervalMs: interval }) };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request (any Host header, any body); reads at most the first 64 KiB of the answer. */
function http(
  url: string,
  o: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: o.path ?? '/', method: o.method ?? 'GET', headers: o.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          // an SSE stream that was let through never ends: the status is what counts
          if (body.length > 65_536 || res.headers['content-type']?.startsWith('text/event-stream')) {
            res.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const json = { 'Content-Type': 'application/json' };

/** Every endpoint the dashboard has, with a request that would use it. */
const ENDPOINTS: Array<{ method: string; path: string; body?: string }> = [
  { method: 'GET', path: '/' },
  { method: 'HEAD', path: '/' },
  { method: 'GET', path: '/index.html' },
  { method: 'GET', path: '/api/stream' },
  { method: 'GET', path: '/api/summary' },
  { method: 'GET', path: '/api/devices' },
  { method: 'POST', path: '/api/stop', body: '{}' },
  { method: 'POST', path: '/api/fleet', body: '{"devices":1}' },
  { method: 'POST', path: '/api/fleet', body: '{"intervalMs":1}' },
  { method: 'GET', path: '/favicon.ico' },
  { method: 'GET', path: '/nope' },
  { method: 'OPTIONS', path: '/api/fleet' },
];

async function withRemote(
  fn: (
    d: Dashboard,
    x: { calls: ReturnType<typeof fakeControl>; stops: () => number; logged: string[] },
  ) => Promise<void>,
  o: { token?: string; allowedHosts?: string[] } = {},
): Promise<void> {
  const s = scenario();
  let stops = 0;
  const logged: string[] = [];
  const d = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {
      stops++;
    },
    isLoopback: remote,
    token: o.token,
    allowedHosts: o.allowedHosts,
    log: (l) => logged.push(l),
  });
  const calls = fakeControl();
  d.listener.start?.({
    runId: s.runId,
    url: 'mqtt://broker.example:1883',
    dir: '/tmp/x',
    control: calls.control,
  });
  try {
    await fn(d, { calls, stops: () => stops, logged });
  } finally {
    await d.close();
  }
}

function loginLink(d: Dashboard): string {
  const line = d.notices.find((l) => l.includes('/login?token='));
  assert.ok(line, `no login link in ${JSON.stringify(d.notices)}`);
  const m = /(http:\/\/\S+\/login\?token=[A-Za-z0-9_-]+)/.exec(line);
  assert.ok(m?.[1]);
  return m[1];
}

async function login(link: string): Promise<{ cookie: string; answer: Answer }> {
  const answer = await http(link, { path: new URL(link).pathname + new URL(link).search });
  const set = answer.headers['set-cookie'];
  const first = Array.isArray(set) ? set[0] : set;
  return { cookie: (first ?? '').split(';')[0] ?? '', answer };
}

test('guard: loopback names, Host parsing, allowed names, constant-time token comparison, cookies', () => {
  for (const h of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost', 'LOCALHOST.', 'a.localhost'])
    assert.equal(isLoopbackHost(h), true, h);
  for (const h of [
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '128.0.0.1',
    'example.com',
    'localhost.example.com',
    '1270.0.0.1',
  ])
    assert.equal(isLoopbackHost(h), false, h);

  assert.equal(hostName('Example.COM:8089'), 'example.com');
  assert.equal(hostName('example.com.'), 'example.com');
  assert.equal(hostName('[::1]:8089'), '::1');
  assert.equal(hostName('10.1.2.3'), '10.1.2.3');
  for (const bad of [undefined, '', 'a b', 'x@y', 'h:port', '[::1', '[::1]x', 'a/b'])
    assert.equal(hostName(bad), undefined, bad);

  const rules = {
    bindHost: 'fleet.lan',
    allowedHosts: ['dash.example.com'],
    token: undefined,
    allowFlag: '--web-allowed-hosts',
    tokenHint: '',
  };
  for (const ok of ['10.0.0.7:8089', '[fe80::1]:1', 'localhost:1', 'fleet.lan:8089', 'DASH.example.com'])
    assert.equal(hostAllowed(ok, rules), true, ok);
  for (const bad of ['evil.example:8089', 'fleet.lan.evil.example', 'example.com', undefined, ''])
    assert.equal(hostAllowed(bad, rules), false, String(bad));

  assert.equal(tokenEquals(TOKEN, TOKEN), true);
  assert.equal(tokenEquals(`${TOKEN}x`, TOKEN), false);
  assert.equal(tokenEquals('', TOKEN), false);
  assert.equal(cookieValue('a=1; fleetload-80=t0k; b=2', 'fleetload-80'), 't0k');
  assert.equal(cookieValue('xfleetload-80=t0k', 'fleetload-80'), undefined);
  assert.equal(printable('a\u001b[31mb\u009b'), '"a\\u001b[31mb\\u009b"');
});

test('off loopback without the token: 401 on every endpoint, the run untouched', async () => {
  await withRemote(
    async (d, { calls, stops }) => {
      for (const auth of [
        {},
        { Authorization: 'Bearer wrong-token-0123456789' },
        { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
        { Authorization: `Bearer ${TOKEN}x` },
        { Cookie: `fleetload-${new URL(d.url).port}=nope-0123456789abcdef` },
        // the cookie of another port's dashboard is not this one's
        { Cookie: `fleetload-1=${TOKEN}` },
      ] as Array<Record<string, string>>) {
        for (const e of ENDPOINTS) {
          const res = await http(d.url, {
            method: e.method,
            path: e.path,
            headers: { ...json, ...auth },
            ...(e.body ? { body: e.body } : {}),
          });
          assert.equal(res.status, 401, `${e.method} ${e.path} ${JSON.stringify(auth)}`);
          assert.equal(res.headers['www-authenticate'], 'Bearer realm="fleetload"');
          if (e.method !== 'HEAD') assert.match(JSON.parse(res.body).error, /needs its token/);
        }
      }
      assert.deepEqual(calls.calls, []);
      assert.equal(stops(), 0);
    },
    { token: TOKEN },
  );
});

test('off loopback with the token: bearer header and the one-time login link both work', async () => {
  await withRemote(
    async (d, { calls, stops }) => {
      const bearer = { Authorization: `Bearer ${TOKEN}` };
      const page = await http(d.url, { headers: bearer });
      assert.equal(page.status, 200);
      assert.match(page.body, /<!doctype html>/i);
      assert.equal((await http(d.url, { path: '/api/stream', headers: bearer })).status, 200);
      assert.equal((await http(d.url, { path: '/api/summary', headers: bearer })).status, 404);
      const set = await http(d.url, {
        method: 'POST',
        path: '/api/fleet',
        headers: { ...json, ...bearer },
        body: '{"devices":4,"intervalMs":500}',
      });
      assert.equal(set.status, 200);
      assert.deepEqual(calls.calls, [
        ['devices', 4],
        ['intervalMs', 500],
      ]);
      // `bearer` is case-insensitive (RFC 6750 §2.1 names it as an auth-scheme)
      assert.equal((await http(d.url, { headers: { Authorization: `bearer ${TOKEN}` } })).status, 200);

      // the link: a one-time code, never the token itself
      const link = loginLink(d);
      assert.ok(!d.notices.join('\n').includes(TOKEN), 'the token was printed');
      const { cookie, answer } = await login(link);
      assert.equal(answer.status, 303);
      assert.equal(answer.headers.location, '/');
      assert.equal(answer.headers['referrer-policy'], 'no-referrer');
      const setCookie = String(answer.headers['set-cookie']);
      assert.match(setCookie, /; HttpOnly/);
      assert.match(setCookie, /; SameSite=Strict/);
      assert.match(setCookie, /; Path=\//);
      assert.equal(cookie, `fleetload-${new URL(d.url).port}=${TOKEN}`);
      assert.equal((await http(d.url, { headers: { Cookie: cookie } })).status, 200);
      assert.equal(
        (await http(d.url, { path: '/api/stream', headers: { Cookie: `a=b; ${cookie}` } })).status,
        200,
      );
      const stop = await http(d.url, {
        method: 'POST',
        path: '/api/stop',
        headers: { ...json, Cookie: cookie },
        body: '{}',
      });
      assert.equal(stop.status, 202);
      assert.equal(stops(), 1);

      // used once: refused after
      const again = await login(link);
      assert.equal(again.answer.status, 401);
      assert.match(JSON.parse(again.answer.body).error, /has been used/);
      assert.equal(again.cookie, '');
      // the token itself logs in as often as needed; anything else does not
      assert.equal((await login(new URL(`/login?token=${TOKEN}`, d.url).href)).answer.status, 303);
      assert.equal((await login(new URL(`/login?token=${TOKEN}`, d.url).href)).answer.status, 303);
      for (const bad of ['/login', '/login?token=', `/login?token=${TOKEN.slice(0, -1)}`, '/login?code=x']) {
        const res = await login(new URL(bad, d.url).href);
        assert.equal(res.answer.status, 401, bad);
        assert.equal(res.cookie, '', bad);
      }
      assert.equal(
        (await http(d.url, { method: 'POST', path: `/login?token=${TOKEN}`, headers: json, body: '{}' }))
          .status,
        405,
      );
    },
    { token: TOKEN },
  );
});

test('off loopback without --web-token: a token is generated, never printed; the link is the way in; warning', async () => {
  await withRemote(async (d) => {
    assert.equal(d.notices.length, 2);
    assert.match(
      d.notices[0] ?? '',
      /^warning: the dashboard listens on 127\.0\.0\.1 \(not loopback\), port \d+: .*token.*401/,
    );
    assert.match(d.notices[1] ?? '', /one-time link.*generated for this run; set --web-token/);
    assert.equal((await http(d.url)).status, 401);
    const { cookie, answer } = await login(loginLink(d));
    assert.equal(answer.status, 303);
    const token = cookie.split('=')[1] ?? '';
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
    assert.ok(!d.notices.join('\n').includes(token), 'the generated token was printed');
    assert.equal((await http(d.url, { headers: { Cookie: cookie } })).status, 200);
    assert.equal((await http(d.url, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
  });
});

test('0.0.0.0 (every interface): the real loopback decision asks for a token and warns', async () => {
  const s = scenario();
  const d = await startDashboard({ host: '0.0.0.0', port: 0, runId: s.runId, scenario: s, onStop: () => {} });
  try {
    assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(
      d.notices[0] ?? '',
      /^warning: the dashboard listens on every interface \(not loopback\).*instead of 127\.0\.0\.1/,
    );
    for (const e of ENDPOINTS) {
      const res = await http(d.url, {
        method: e.method,
        path: e.path,
        headers: json,
        ...(e.body ? { body: e.body } : {}),
      });
      assert.equal(res.status, 401, `${e.method} ${e.path}`);
    }
    const { cookie } = await login(loginLink(d));
    assert.equal((await http(d.url, { headers: { Cookie: cookie } })).status, 200);
  } finally {
    await d.close();
  }
});

test('loopback: no token asked for unless one is given; then it is asked for there too', async () => {
  const s = scenario();
  const open = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
  });
  try {
    assert.deepEqual(open.notices, []);
    assert.equal((await http(open.url)).status, 200);
    assert.equal((await http(open.url, { path: `/login?token=${TOKEN}` })).status, 404);
  } finally {
    await open.close();
  }
  const closed = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    runId: s.runId,
    scenario: s,
    onStop: () => {},
    token: TOKEN,
  });
  try {
    assert.equal(closed.notices.length, 1, 'a login link, no warning');
    assert.equal((await http(closed.url)).status, 401);
    assert.equal((await http(closed.url, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
  } finally {
    await closed.close();
  }
});

test('Host check on every request, token or not: 403 for a foreign name, logged once; allowed names pass', async () => {
  await withRemote(
    async (d, { calls, stops, logged }) => {
      const { port } = new URL(d.url);
      const bearer = { Authorization: `Bearer ${TOKEN}` };
      for (const e of ENDPOINTS) {
        const res = await http(d.url, {
          method: e.method,
          path: e.path,
          headers: { ...json, ...bearer, Host: `evil.example:${port}` },
          ...(e.body ? { body: e.body } : {}),
        });
        assert.equal(res.status, 403, `${e.method} ${e.path}`);
      }
      const link = new URL(loginLink(d));
      const rebound = await http(d.url, {
        path: link.pathname + link.search,
        headers: { Host: `evil.example:${port}` },
      });
      assert.equal(rebound.status, 403, 'the login link through a rebound name');
      assert.equal(rebound.headers['set-cookie'], undefined);
      assert.match(
        JSON.parse(rebound.body).error,
        /Host "evil\.example" is not a name of this server.*--web-allowed-hosts "evil\.example"/,
      );
      assert.equal(logged.filter((l) => l.includes('evil.example')).length, 1, 'logged once');
      // the link was not spent by the refused request
      assert.equal((await login(link.href)).answer.status, 303);

      for (const host of [
        `dash.example.com:${port}`,
        `10.9.8.7:${port}`,
        `[::1]:${port}`,
        `localhost:${port}`,
      ]) {
        assert.equal((await http(d.url, { headers: { ...bearer, Host: host } })).status, 200, host);
      }
      // HTTP/1.0 without a Host header
      const raw = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(Number(port), '127.0.0.1', () =>
          sock.end(`GET / HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`),
        );
        let text = '';
        sock.on('data', (b) => {
          text += b.toString('latin1');
        });
        sock.on('end', () => resolve(text));
        sock.on('error', reject);
      });
      assert.match(raw, /^HTTP\/1\.1 403 /);
      assert.deepEqual(calls.calls, []);
      assert.equal(stops(), 0);
    },
    { token: TOKEN, allowedHosts: ['dash.example.com'] },
  );
});

test('cross-origin POST with a valid token: 403, the fleet unchanged', async () => {
  await withRemote(
    async (d, { calls, stops }) => {
      const { cookie } = await login(new URL(`/login?token=${TOKEN}`, d.url).href);
      const origin = new URL(d.url).origin;
      for (const [path, body] of [
        ['/api/fleet', '{"devices":3}'],
        ['/api/stop', '{}'],
      ] as const) {
        for (const headers of [
          { Origin: 'http://evil.example' },
          { Origin: 'null' },
          { Origin: origin.replace(/:\d+$/, ':1') },
          { 'Sec-Fetch-Site': 'cross-site' },
        ] as Array<Record<string, string>>) {
          const res = await http(d.url, {
            method: 'POST',
            path,
            headers: { ...json, Cookie: cookie, ...headers },
            body,
          });
          assert.equal(res.status, 403, `${path} ${JSON.stringify(headers)}`);
          assert.match(JSON.parse(res.body).error, /^cross-origin requests may not/);
        }
      }
      assert.deepEqual(calls.calls, []);
      assert.equal(stops(), 0);
      const same = await http(d.url, {
        method: 'POST',
        path: '/api/fleet',
        headers: { ...json, Cookie: cookie, Origin: origin },
        body: '{"devices":3}',
      });
      assert.equal(same.status, 200);
    },
    { token: TOKEN },
  );
});

test('bounds: each out-of-range field is a 400 naming the field and its range; the fleet is unchanged', async () => {
  await withRemote(
    async (d, { calls, stops }) => {
      const auth = { ...json, Authorization: `Bearer ${TOKEN}` };
      const post = (path: string, body: string, headers: Record<string, string> = auth) =>
        http(d.url, { method: 'POST', path, headers, body });
      const cases: Array<[string, string, RegExp]> = [
        ['devices', '{"devices":11}', /from 0 to 10\b.*not 11/],
        ['devices', '{"devices":-1}', /from 0 to 10\b/],
        ['devices', '{"devices":1e308}', /from 0 to 10\b.*not 1e\+308/],
        ['devices', '{"devices":4.5}', /whole number/],
        ['devices', '{"devices":true}', /not true/],
        ['intervalMs', '{"intervalMs":1e308}', /from 1 to 30000 \(the run time\), not 1e\+308/],
        ['intervalMs', '{"intervalMs":1e400}', /not Infinity/],
        ['intervalMs', '{"intervalMs":30001}', /from 1 to 30000/],
        ['intervalMs', '{"intervalMs":0.999}', /from 1 to 30000/],
        ['intervalMs', '{"intervalMs":-1}', /from 1 to 30000/],
        ['intervalMs', '{"intervalMs":[5]}', /not \[5\]/],
        ['intervalMs', '{"devices":2,"intervalMs":1e308}', /from 1 to 30000/],
        ['__proto__', '{"__proto__":{"devices":1}}', /unknown key "__proto__"/],
      ];
      for (const [field, body, message] of cases) {
        const res = await post('/api/fleet', body);
        assert.equal(res.status, 400, body);
        const answer = JSON.parse(res.body) as { error: string; field?: string };
        assert.equal(answer.field, field, body);
        assert.match(answer.error, new RegExp(`^${field === '__proto__' ? 'unknown' : field}`), body);
        assert.match(answer.error, message, body);
      }
      const stop = await post('/api/stop', '{"now":true}');
      assert.equal(stop.status, 400);
      assert.equal(JSON.parse(stop.body).field, 'now');
      assert.equal((await post('/api/stop', '[1]')).status, 400);
      // too big: 413, announced or not, and nothing applied
      const big = `{"devices":1,"pad":"${'x'.repeat(MAX_BODY_BYTES)}"}`;
      const res413 = await post('/api/fleet', big);
      assert.equal(res413.status, 413);
      assert.match(JSON.parse(res413.body).error, /over 4096 bytes/);
      const chunked = await new Promise<number>((resolve, reject) => {
        const u = new URL('/api/fleet', d.url);
        const req = request(
          { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: auth },
          (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write(`{"devices":1,"pad":"${'y'.repeat(3000)}`);
        req.write(`${'y'.repeat(3000)}"}`);
        req.end();
      });
      assert.equal(chunked, 413);
      // JSON only
      assert.equal(
        (
          await post('/api/fleet', '{"devices":1}', {
            Authorization: `Bearer ${TOKEN}`,
            'Content-Type': 'text/plain',
          })
        ).status,
        415,
      );
      assert.deepEqual(calls.calls, [], 'no refused request changed the fleet');
      assert.deepEqual(calls.now(), { devices: 10, intervalMs: 1000 });
      assert.equal(stops(), 0);

      // the bounds are inclusive, and a valid value still applies after refusals
      assert.equal((await post('/api/fleet', '{"intervalMs":30000}')).status, 200);
      assert.equal((await post('/api/fleet', '{"intervalMs":1,"devices":0}')).status, 200);
      assert.deepEqual(calls.now(), { devices: 0, intervalMs: 1 });
    },
    { token: TOKEN },
  );
});

test('prometheus off loopback: a token is required unless --prometheus-public; Host checked; warnings say read-only', async () => {
  const base = { port: 0, runId: 'acc-r1', segment: '0/1', role: 'run' as const, graceMs: 0 };
  // no token, no opt-out: E_USAGE before anything listens
  const refused = new PrometheusSink({ ...base, host: '0.0.0.0' });
  await assert.rejects(refused.listen(), (e: unknown) => {
    assert.ok(e instanceof FleetloadError);
    assert.equal(e.exitCode, 2);
    assert.match(
      e.message,
      /^--prometheus-host 0\.0\.0\.0 is not loopback: \/metrics there needs --prometheus-token T .*authorization: credentials: .*--prometheus-public/,
    );
    return true;
  });
  assert.equal(refused.port, 0, 'nothing listened');

  const logged: string[] = [];
  const sink = new PrometheusSink({
    ...base,
    host: '127.0.0.1',
    isLoopback: remote,
    token: TOKEN,
    log: (l) => logged.push(l),
  });
  await sink.listen();
  try {
    assert.equal(logged.length, 1);
    assert.match(
      logged[0] ?? '',
      /^warning: prometheus \/metrics listens on 127\.0\.0\.1, port \d+ \(not loopback\): read-only figures .*bearer token only/,
    );
    assert.ok(!logged.join('').includes(TOKEN));
    for (const path of ['/metrics', '/', '/nope']) {
      for (const headers of [
        {},
        { Authorization: 'Bearer nope-0123456789abcdef' },
        { Cookie: `fleetload-${sink.port}=${TOKEN}` },
      ] as Array<Record<string, string>>) {
        const res = await http(sink.url, { path, headers });
        assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="fleetload"');
      }
    }
    const ok = await http(sink.url, { path: '/metrics', headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /fleetload_messages_sent_total/);
    assert.equal(sink.scrapes, 1, 'refused requests are not scrapes');
    const rebound = await http(sink.url, {
      path: '/metrics',
      headers: { Authorization: `Bearer ${TOKEN}`, Host: 'evil.example' },
    });
    assert.equal(rebound.status, 403);
    assert.ok(
      logged.some((l) =>
        /^prometheus: refused a request for Host "evil\.example"; allow the name with --web-allowed-hosts/.test(
          l,
        ),
      ),
    );
  } finally {
    await sink.close();
  }

  const pub: string[] = [];
  const open = new PrometheusSink({
    ...base,
    host: '127.0.0.1',
    isLoopback: remote,
    public: true,
    allowedHosts: ['prom.lan'],
    log: (l) => pub.push(l),
  });
  await open.listen();
  try {
    assert.match(
      pub[0] ?? '',
      /without a token \(--prometheus-public\): anyone who reaches it can read the run's figures \(read-only/,
    );
    assert.equal((await http(open.url, { path: '/metrics' })).status, 200);
    assert.equal(
      (await http(open.url, { path: '/metrics', headers: { Host: 'prom.lan:9464' } })).status,
      200,
    );
    assert.equal(
      (await http(open.url, { path: '/metrics', headers: { Host: 'evil.example:9464' } })).status,
      403,
    );
  } finally {
    await open.close();
  }

  // loopback, as before: no token, no warning — but the Host check
  const quiet: string[] = [];
  const local = new PrometheusSink({ ...base, host: '127.0.0.1', log: (l) => quiet.push(l) });
  await local.listen();
  try {
    assert.deepEqual(quiet, []);
    assert.equal((await http(local.url, { path: '/metrics' })).status, 200);
    assert.equal(
      (await http(local.url, { path: '/metrics', headers: { Host: 'evil.example' } })).status,
      403,
    );
  } finally {
    await local.close();
  }
});

test('settings: --web-token / FLEETLOAD_WEB_TOKEN / webToken, checked, redacted; allowed hosts split and checked', () => {
  const load = (flags: Record<string, unknown>, env: Record<string, string> = {}) =>
    loadScenario({ flags, env, cwd: process.cwd() });
  const fromEnv = load({}, { FLEETLOAD_WEB_TOKEN: TOKEN, FLEETLOAD_PROMETHEUS_TOKEN: `${TOKEN}-p` });
  assert.equal(fromEnv.scenario.webToken, TOKEN);
  assert.equal(fromEnv.scenario.prometheusToken, `${TOKEN}-p`);
  assert.equal(fromEnv.scenario.prometheusPublic, false);
  const redacted = JSON.stringify(redactSecrets(fromEnv.resolved));
  assert.ok(!redacted.includes(TOKEN), redacted);
  assert.match(redacted, /"webToken":"\*\*\*"/);
  assert.match(redacted, /"prometheusToken":"\*\*\*"/);

  const hosts = load({ webAllowedHosts: ['a.example.com, b.lan', 'c'], prometheusPublic: true });
  assert.deepEqual(hosts.scenario.webAllowedHosts, ['a.example.com', 'b.lan', 'c']);
  assert.equal(hosts.scenario.prometheusPublic, true);
  assert.deepEqual(load({}).scenario.webAllowedHosts, []);

  for (const [flags, message] of [
    [{ webToken: 'short' }, /^webToken: must be 16 to 512 characters/],
    [{ webToken: `${TOKEN};x` }, /^webToken: must be 16 to 512 characters/],
    [{ prometheusToken: 'with space 0123456789' }, /^prometheusToken: must be 16/],
    [{ webAllowedHosts: ['evil.example/x'] }, /^webAllowedHosts\.0: must be host names/],
  ] as const) {
    assert.throws(
      () => load(flags),
      (e: unknown) => {
        assert.ok(e instanceof FleetloadError);
        assert.equal(e.exitCode, 2);
        assert.match(e.message, message);
        assert.ok(!e.message.includes(TOKEN), 'a token in the message');
        return true;
      },
      JSON.stringify(flags),
    );
  }
});
