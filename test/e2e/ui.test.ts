import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Browser, Frame, Page } from 'playwright-core';
import { exitCodeOfSummary } from '../../src/run/verdict.js';
import type { Summary } from '../../src/stats/summary.js';
import { verdictOf } from '../../src/web/ui-history.js';
import { chromiumSkip, launchChromium } from '../helpers/browser.js';
import { cliOutput, runCli, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { childrenOf, isAlive, waitForExit } from '../helpers/process.js';

/**
 * `fleetload ui` as a user meets it: the process on a free port with an empty results folder, driven in real
 * Chromium. A run against the embedded broker is started from the form, watched in the Live view (the run's own
 * dashboard), stopped, found in History with its verdict, its report opened; a second run is started, the two
 * compared, summary.json downloaded. Also: Start while running is a 409, a form error is the CLI's message, a
 * crashing run leaves the UI up and no process behind, off loopback without a token is refused, and
 * `run --keep-ui` serves the summary after the run until SIGINT, then exits with the run's code.
 */

// The bits of the browser's globals the page callbacks use (this project's TS lib has no DOM).
declare const document: {
  getElementById(id: string): { textContent: string | null; hidden?: boolean } | null;
  querySelectorAll(sel: string): ArrayLike<{ textContent: string | null }>;
};

const skip = chromiumSkip('ui e2e');

async function startUi(cwd: string, extra: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnCli(['ui', '--web-port', '0', '--out', 'res', ...extra], { cwd });
  const line = await waitForOutput(child, /fleetload ui: http:\/\/\S+/, { timeoutMs: 20_000 });
  return { child, url: line.replace('fleetload ui: ', '') };
}

function summaryOf(cwd: string, runId: string): Summary {
  return JSON.parse(readFileSync(join(cwd, 'res', runId, 'summary.json'), 'utf8')) as Summary;
}

async function uiState(page: Page): Promise<string> {
  return (await page.textContent('#ui-state'))?.trim() ?? '';
}

/** Waits for the UI's run to finish; returns its run id. */
async function waitFinished(page: Page, timeoutMs = 60_000): Promise<string> {
  await page.waitForFunction(
    () =>
      /^(PASSED|FAILED|INVALID|CRASHED|UNREACHABLE|INPUT ERROR|ABORTED) · /.test(
        document.getElementById('ui-state')?.textContent ?? '',
      ),
    null,
    { timeout: timeoutMs },
  );
  return (await uiState(page)).split(' · ')[1] ?? '';
}

async function fill(page: Page, values: Record<string, string>): Promise<void> {
  await page.click('#tab-new');
  if ((await page.getAttribute('#g-more', 'open')) === null) await page.click('#g-more > summary');
  for (const id of await page.$$eval(
    '#form input[type="text"], #form input[type="password"], #form textarea',
    (els) => els.map((e) => (e as unknown as { id: string }).id),
  ))
    await page.fill(`#${id}`, '');
  for (const [k, v] of Object.entries(values)) await page.fill(`#f-${k}`, v);
}

/** The live dashboard in the Live tab's frame. */
async function liveFrame(page: Page): Promise<Frame> {
  await page.waitForSelector('#live-frame:not([hidden])', { timeout: 30_000 });
  const handle = await page.$('#live-frame');
  const frame = await handle?.contentFrame();
  assert.ok(frame, 'the Live tab frames the dashboard');
  return frame;
}

/** Waits until a run is under way: its results folder has time-series rows (devices connected, broker up). */
async function running(dir: string): Promise<void> {
  const csv = join(dir, 'timeseries.csv');
  for (let i = 0; i < 300; i++) {
    if (existsSync(csv) && readFileSync(csv, 'utf8').split('\n').length > 2) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail(`${dir} has no time series after 30 s`);
}

/** A GET with the path sent exactly as written (fetch would resolve `..`). */
function rawGet(
  base: string,
  path: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fleetload ui', () => {
  test('form → Start → live view → Stop → History → report → second run → compare → download', {
    skip,
    timeout: 240_000,
  }, async () => {
    const cwd = tmpDir();
    const { child, url } = await startUi(cwd);
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const context = await browser.newContext({
        viewport: { width: 1400, height: 1000 },
        acceptDownloads: true,
      });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        // Chromium logs every 4xx answer: the 400 (form error) and 409 (Start while running) are the point
        if (m.type() === 'error' && !/status of (400|409) /.test(m.text()))
          problems.push(`console.error: ${m.text()}`);
      });
      page.on('dialog', (d) => void d.accept());
      await page.goto(url);

      // a form error is the CLI's own message, next to the field and in the list
      await fill(page, { devices: '0' });
      await page.waitForSelector('#problems:not([hidden])', { timeout: 10_000 });
      assert.equal(await page.isDisabled('#start'), true, 'Start waits until the form is fixed');
      const cli = await runCli(['run', '-u', '0', '--headless'], { cwd: tmpDir() });
      assert.equal(cli.code, 2);
      assert.match(cli.stderr, /devices: must be at least 1 \(from --devices\)/);
      assert.match(
        (await page.textContent('#problems')) ?? '',
        /devices: must be at least 1 \(from --devices\)/,
      );
      assert.match((await page.textContent('#e-devices')) ?? '', /must be at least 1/);
      assert.equal(await page.getAttribute('#f-devices', 'aria-invalid'), 'true');
      assert.equal(await uiState(page), 'idle', 'nothing started');

      // first run: long enough to watch and stop
      await fill(page, {
        devices: '3',
        runTime: '60s',
        interval: '200ms',
        grace: '500ms',
        password: 'never-shown-pw',
      });
      await page.fill('#f-username', 'dev');
      await page.waitForFunction(
        () => /--devices 3/.test(document.getElementById('command')?.textContent ?? ''),
        null,
        {
          timeout: 10_000,
        },
      );
      await page.click('#start');
      await page.waitForFunction(() => document.getElementById('live')?.hidden === false, null, {
        timeout: 10_000,
      });
      const frame = await liveFrame(page);
      // the live view updates: messages counted, then more
      await frame.waitForFunction(
        () => /^[1-9][\d,]* total$/.test(document.getElementById('s-sent')?.textContent ?? ''),
        null,
        {
          timeout: 30_000,
        },
      );
      const sentAt = async () => Number(((await frame.textContent('#s-sent')) ?? '').replace(/[^\d]/g, ''));
      const first = await sentAt();
      await frame.waitForFunction(
        (n) => Number((document.getElementById('s-sent')?.textContent ?? '').replace(/[^\d]/g, '')) > n,
        first,
        { timeout: 15_000 },
      );
      const runA = (await uiState(page)).split(' · ')[1] ?? '';
      assert.match(await uiState(page), /^running · /);

      // a second Start while it runs: 409, said next to the form
      await page.click('#tab-new');
      await page.click('#start');
      await page.waitForFunction(
        () => /one run at a time/.test(document.getElementById('problems')?.textContent ?? ''),
        null,
        {
          timeout: 10_000,
        },
      );
      const conflict = await page.evaluate(async () => {
        const r = await fetch('/api/ui/start', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: '{"values":{}}',
        });
        return { status: r.status, body: (await r.json()) as { error: string } };
      });
      assert.equal(conflict.status, 409);
      assert.match(conflict.body.error, new RegExp(`run ${runA} is still running: one run at a time`));

      // Stop from the UI: the run drains and writes its summary
      await page.click('#tab-live');
      await page.click('#stop-live');
      const stoppedId = await waitFinished(page);
      assert.equal(stoppedId, runA);
      const sa = summaryOf(cwd, runA);
      assert.equal(sa.interrupted, true);
      const status = (await page.textContent('#run-status')) ?? '';
      assert.ok(status.includes(`${verdictOf(sa)} (exit ${exitCodeOfSummary(sa)})`), status);

      // History: the run with its verdict and exit code
      await page.click('#tab-history');
      const row = `#runs tr[data-run="${runA}"]`;
      await page.waitForSelector(row, { timeout: 10_000 });
      assert.equal((await page.textContent(`${row} .verdict`))?.trim(), verdictOf(sa));
      assert.equal((await page.textContent(`${row} td.exit`))?.trim(), String(exitCodeOfSummary(sa)));
      assert.match((await page.textContent(row)) ?? '', /3 devices @ 50\/s · 1m · every 200ms/);

      // its report opens
      const [report] = await Promise.all([context.waitForEvent('page'), page.click(`${row} a.report`)]);
      await report.waitForLoadState('load');
      assert.equal(await report.title(), `fleetload report · ${runA}`);
      await report.close();

      // second run, to its end
      await fill(page, { devices: '2', runTime: '2s', interval: '200ms', grace: '500ms' });
      await page.click('#start');
      await page.waitForFunction(
        (a) => !(document.getElementById('ui-state')?.textContent ?? '').includes(a),
        runA,
        {
          timeout: 10_000,
        },
      );
      const runB = await waitFinished(page);
      assert.notEqual(runB, runA);
      const sb = summaryOf(cwd, runB);

      // compare B against A: the figures of fleetload compare, each with a verdict
      await page.click('#tab-history');
      await page.waitForSelector(`#runs tr[data-run="${runB}"]`, { timeout: 10_000 });
      assert.equal((await page.textContent(`#runs tr[data-run="${runB}"] .verdict`))?.trim(), verdictOf(sb));
      await page.check(`#runs tr[data-run="${runA}"] input[name="a"]`);
      await page.check(`#runs tr[data-run="${runB}"] input[name="b"]`);
      await page.click('#compare');
      await page.waitForSelector('#comparison tr[data-figure]', { timeout: 15_000 });
      const verdicts = await page.$$eval('#comparison tr[data-figure] td.verdict-cell', (tds) =>
        tds.map((t) => t.textContent ?? ''),
      );
      assert.ok(verdicts.length >= 5, verdicts.join(','));
      for (const v of verdicts) assert.ok(['better', 'worse', 'within noise', 'n/a'].includes(v), v);
      assert.match(
        (await page.textContent('#comparison h3')) ?? '',
        new RegExp(`B ${runB} against A ${runA}`),
      );

      // download summary.json of run B
      await page.click(`#runs tr[data-run="${runB}"] details > summary`);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click(`#runs tr[data-run="${runB}"] a[href$="/summary.json?download=1"]`),
      ]);
      assert.equal(download.suggestedFilename(), `${runB}-summary.json`);
      const path = await download.path();
      assert.equal((JSON.parse(readFileSync(path, 'utf8')) as Summary).runId, runB);

      // the typed password is nowhere: page, history, output of the UI
      const everything = (await page.content()) + JSON.stringify(cliOutput(child));
      assert.doesNotMatch(everything, /never-shown-pw/);
      assert.deepEqual(problems, []);
    } finally {
      await browser?.close();
      child.kill('SIGINT');
      const done = await waitForCliExit(child, 30_000);
      assert.equal(done.code, 0, done.stderr);
    }
  });

  test('a crashing run leaves the UI up and nothing behind; Ctrl-C while a run goes stops both', {
    timeout: 120_000,
  }, async () => {
    const cwd = tmpDir();
    const { child, url } = await startUi(cwd);
    const post = (path: string, body: unknown) =>
      fetch(new URL(path, url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const state = async () =>
      (
        (await (await fetch(new URL('/api/ui/state', url))).json()) as {
          run: { state: string; verdict: string; live: boolean };
        }
      ).run;
    try {
      const r = await post('/api/ui/start', { values: { devices: '2', runTime: '60s', interval: '200ms' } });
      assert.equal(r.status, 202);
      const firstId = ((await r.json()) as { run: { runId: string } }).run.runId;
      await running(join(cwd, 'res', firstId));
      const [run] = childrenOf(child.pid);
      assert.ok(run, 'the run is a child process of the UI');
      const grandchildren = childrenOf(run);
      assert.ok(grandchildren.length > 0, 'the embedded broker');
      process.kill(run, 'SIGKILL');
      for (let i = 0; i < 100 && (await state()).state !== 'finished'; i++)
        await new Promise((res) => setTimeout(res, 100));
      assert.equal((await state()).verdict, 'CRASHED');
      for (const pid of grandchildren)
        assert.ok(await waitForExit(pid, 10_000), `process ${pid} outlived its run`);
      // the UI still answers, and starts again
      assert.equal((await fetch(url)).status, 200);
      const again = await post('/api/ui/start', {
        values: { devices: '2', runTime: '60s', interval: '200ms', grace: '500ms' },
      });
      assert.equal(again.status, 202);
      const secondId = ((await again.json()) as { run: { runId: string } }).run.runId;
      // running: its results folder has its first rows
      await running(join(cwd, 'res', secondId));
      const [second] = childrenOf(child.pid);
      assert.ok(second);
      const inner = childrenOf(second);
      // Ctrl-C on the UI: the run stops gracefully (summary written), then the UI exits 0
      child.kill('SIGINT');
      const done = await waitForCliExit(child, 60_000);
      assert.equal(done.code, 0, done.stderr);
      assert.ok(!isAlive(second));
      for (const pid of inner) assert.ok(await waitForExit(pid, 10_000), `process ${pid} outlived the UI`);
      assert.match(done.stderr, new RegExp(`run ${secondId} ended: FAILED \\(exit 1\\)`));
      assert.equal(summaryOf(cwd, secondId).interrupted, true);
      // its files over HTTP: listed names only, however a path is spelled
      writeFileSync(join(cwd, 'outside.txt'), 'not a result');
      const server = await startUi(cwd);
      try {
        const ok = await rawGet(server.url, `/results/${secondId}/summary.json`);
        assert.equal(ok.status, 200);
        assert.match(
          ok.headers['content-disposition'] ?? '',
          new RegExp(`attachment; filename="${secondId}-summary.json"`),
        );
        for (const path of [
          `/results/${secondId}/../../outside.txt`,
          `/results/${secondId}/..%2f..%2foutside.txt`,
          `/results/${secondId}/%2e%2e/%2e%2e/outside.txt`,
          `/results/..%2f/outside.txt`,
          `/results/${secondId}/%2fetc%2fpasswd`,
          `/results/${secondId}/histograms/..%2fsummary.json`,
          '/results/%2e%2e/res/outside.txt',
        ]) {
          const r = await rawGet(server.url, path);
          assert.equal(r.status, 404, path);
          assert.doesNotMatch(r.body, /not a result|root:/, path);
        }
      } finally {
        server.child.kill('SIGINT');
        await waitForCliExit(server.child, 20_000);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('the run’s dashboard through the UI: its Stop acts (same origin only), then it is gone with the run', {
    timeout: 120_000,
  }, async () => {
    const cwd = tmpDir();
    const { child, url } = await startUi(cwd);
    const json = { 'Content-Type': 'application/json' };
    const state = async () =>
      (
        (await (await fetch(new URL('/api/ui/state', url))).json()) as {
          run: { state: string; verdict: string };
        }
      ).run;
    try {
      assert.equal((await fetch(new URL('/live', url))).status, 404, 'no run, no live view');
      const r = await fetch(new URL('/api/ui/start', url), {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ values: { devices: '2', runTime: '60s', interval: '200ms', grace: '500ms' } }),
      });
      const runId = ((await r.json()) as { run: { runId: string } }).run.runId;
      await running(join(cwd, 'res', runId));
      const page = await fetch(new URL('/live', url));
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('x-frame-options'), 'SAMEORIGIN');
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'self'/);
      assert.match(await page.text(), new RegExp(`fleetload · ${runId}`));
      assert.equal((await fetch(new URL('/api/summary', url))).status, 404, 'not finished yet');
      const evil = await fetch(new URL('/api/stop', url), {
        method: 'POST',
        headers: { ...json, Origin: 'http://evil.example' },
        body: '{}',
      });
      assert.equal(evil.status, 403);
      const stop = await fetch(new URL('/api/stop', url), {
        method: 'POST',
        headers: { ...json, Origin: new URL(url).origin },
        body: '{}',
      });
      assert.equal(stop.status, 202);
      for (let i = 0; i < 300 && (await state()).state !== 'finished'; i++)
        await new Promise((res) => setTimeout(res, 100));
      assert.equal((await state()).verdict, verdictOf(summaryOf(cwd, runId)));
      assert.equal(summaryOf(cwd, runId).interrupted, true);
      assert.equal(
        (await fetch(new URL('/api/stream', url))).status,
        404,
        'the run and its dashboard are gone',
      );
    } finally {
      child.kill('SIGINT');
      await waitForCliExit(child, 30_000);
    }
  });

  test('a UI that is killed: its run stops by itself (summary written, no crash) and nothing is left', {
    timeout: 120_000,
  }, async () => {
    const cwd = tmpDir();
    const { child, url } = await startUi(cwd);
    try {
      const r = await fetch(new URL('/api/ui/start', url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ values: { devices: '2', runTime: '60s', interval: '200ms', grace: '500ms' } }),
      });
      assert.equal(r.status, 202);
      const runId = ((await r.json()) as { run: { runId: string } }).run.runId;
      await running(join(cwd, 'res', runId));
      const [run] = childrenOf(child.pid);
      assert.ok(run);
      const inner = childrenOf(run);
      child.kill('SIGKILL');
      assert.ok(await waitForExit(run, 30_000), 'the run outlived its UI');
      for (const pid of inner) assert.ok(await waitForExit(pid, 10_000), `process ${pid} outlived the run`);
      assert.equal(summaryOf(cwd, runId).interrupted, true);
      assert.deepEqual(
        readdirSync(join(cwd, 'res', runId)).filter((f) => f.startsWith('fleetload-crash')),
        [],
        'no crash log: writing to the dead UI is not an error',
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('bad input: exit 2, one clear message; off loopback without a token is refused', async () => {
    const offLoopback = await runCli(['ui', '--web-host', '0.0.0.0', '--web-port', '0']);
    assert.equal(offLoopback.code, 2);
    assert.match(
      offLoopback.stderr,
      /--web-host 0\.0\.0\.0 is not loopback: the UI starts load tests, so off loopback it needs --web-token/,
    );
    const badPort = await runCli(['ui', '--web-port', 'abc']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--web-port: "abc" is not a number/);
    const proc = await runCli(['ui', '--web-port', '0', '--out', '/proc/nope']);
    assert.equal(proc.code, 2);
    assert.match(proc.stderr, /out: cannot use \/proc\/nope: \/proc is a system pseudo file system/);
    assert.doesNotMatch(proc.stdout, /fleetload ui: http/, 'it never served');
    const unknown = await runCli(['ui', '--devices', '3']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown flag --devices; .*see fleetload ui --help/);
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    const inUse = await runCli(['ui', '--web-port', String(port)]).finally(() => busy.close());
    assert.equal(inUse.code, 2);
    assert.match(
      inUse.stderr,
      new RegExp(`web port ${port} on 127\\.0\\.0\\.1 is in use; pass --web-port 0`),
    );
    const help = await runCli(['ui', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: fleetload ui/);
  });

  test('off loopback with a token: every request needs it', { timeout: 60_000 }, async () => {
    const token = 'ui-test-token-0123456789abcdef';
    const cwd = tmpDir();
    const child = spawnCli(['ui', '--web-host', '0.0.0.0', '--web-port', '0', '--out', 'res'], {
      cwd,
      env: { FLEETLOAD_WEB_TOKEN: token },
    });
    try {
      const line = await waitForOutput(child, /fleetload ui: http:\/\/\S+/, { timeoutMs: 20_000 });
      const url = line.replace('fleetload ui: ', '');
      assert.equal((await fetch(new URL('/api/ui/runs', url))).status, 401);
      const ok = await fetch(new URL('/api/ui/runs', url), { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200);
      const start = await fetch(new URL('/api/ui/start', url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      assert.equal(start.status, 401);
      assert.equal((await fetch(new URL('/results/x/summary.json', url))).status, 401);
      assert.equal((await fetch(new URL('/api/stream', url))).status, 401, 'the relayed dashboard too');
      // the one-time login link printed at start sets the cookie the page then uses
      const login = await waitForOutput(child, /ui login \(one-time link, sets a cookie\): (http:\/\/\S+)/);
      const link = /(http:\/\/\S+)/.exec(login)?.[1] as string;
      const answer = await fetch(link, { redirect: 'manual' });
      assert.equal(answer.status, 303);
      const cookie = (answer.headers.get('set-cookie') ?? '').split(';')[0] as string;
      assert.equal((await fetch(new URL('/', url), { headers: { Cookie: cookie } })).status, 200);
      assert.equal((await fetch(link, { redirect: 'manual' })).status, 401, 'the link works once');
      assert.match(
        cliOutput(child).stdout,
        /warning: the ui listens on every interface .*can start, watch and stop load tests/,
      );
      assert.doesNotMatch(cliOutput(child).stdout + cliOutput(child).stderr, new RegExp(token));
    } finally {
      child.kill('SIGINT');
      await waitForCliExit(child, 20_000);
    }
  });
});

describe('fleetload run --keep-ui', () => {
  test('the dashboard serves the summary after the run; SIGINT exits with the run’s code', {
    timeout: 90_000,
  }, async () => {
    const cwd = tmpDir();
    const child = spawnCli(
      [
        'run',
        '-u',
        '2',
        '-t',
        '2s',
        '-i',
        '200ms',
        '--grace',
        '500ms',
        '--web-port',
        '0',
        '--keep-ui',
        '--out',
        'res',
      ],
      { cwd },
    );
    try {
      const line = await waitForOutput(child, /dashboard: http:\/\/\S+/, { timeoutMs: 20_000 });
      const url = line.replace('dashboard: ', '');
      await waitForOutput(child, /the dashboard stays up at \S+ \(--keep-ui\)/, {
        stream: 'stderr',
        timeoutMs: 60_000,
      });
      const first = await fetch(new URL('/api/summary', url));
      assert.equal(first.status, 200);
      const served = (await first.json()) as Summary;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(child.exitCode, null, 'still up after the run');
      assert.equal((await fetch(new URL('/api/summary', url))).status, 200);
      assert.equal((await fetch(url)).status, 200);
      child.kill('SIGINT');
      const done = await waitForCliExit(child, 20_000);
      const onDisk = summaryOf(cwd, served.runId);
      assert.equal(done.code, exitCodeOfSummary(onDisk), done.stderr);
      assert.equal(onDisk.interrupted, undefined, 'the SIGINT after the run did not interrupt it');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('--keep-ui with --headless is a usage error', async () => {
    const r = await runCli(['run', '--keep-ui', '--headless']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /keepUi: keeps the dashboard up after the run, and --headless has none/);
  });
});
