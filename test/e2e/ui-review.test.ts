import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Summary } from '../../src/stats/summary.js';
import { chromiumSkip, launchChromium } from '../helpers/browser.js';
import { spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { childrenOf } from '../helpers/process.js';
import { spreadLatency, summaryFixture } from '../helpers/summary.js';

/**
 * `fleetload ui` in Chromium, on what a new user's review found (findings 15 and 16): the compare view shows
 * signed changes, the n and 95% intervals each verdict rests on and durations as the flags take them; History
 * says why a run is INVALID and what each message carried, and keeps a run that could not reach its broker (no
 * folder) after a reload; Start waits while the form has problems; a run that dies without a summary does not
 * leave its dashboard frame asking the gone run.
 */

// The bits of the browser's globals the page callbacks use (this project's TS lib has no DOM).
declare const document: {
  getElementById(id: string): { textContent: string | null; hidden?: boolean } | null;
};

const skip = chromiumSkip('ui review e2e');

function writeRun(out: string, s: Summary): void {
  const dir = join(out, s.runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(s));
}

async function startUi(cwd: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnCli(['ui', '--web-port', '0', '--out', 'res'], { cwd });
  const line = await waitForOutput(child, /fleetload ui: http:\/\/\S+/, { timeoutMs: 20_000 });
  return { child, url: line.replace('fleetload ui: ', '') };
}

async function waitFinished(page: Page, timeoutMs = 60_000): Promise<string> {
  await page.waitForFunction(
    () =>
      /^(PASSED|FAILED|INVALID|CRASHED|UNREACHABLE|INPUT ERROR|ABORTED) · /.test(
        document.getElementById('ui-state')?.textContent ?? '',
      ),
    null,
    { timeout: timeoutMs },
  );
  return ((await page.textContent('#ui-state')) ?? '').trim();
}

async function fill(page: Page, values: Record<string, string>): Promise<void> {
  await page.click('#tab-new');
  for (const [k, v] of Object.entries(values)) await page.fill(`#f-${k}`, v);
}

describe('fleetload ui after the review', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  test('History says why a run is INVALID and what it sent; compare shows sign, n and 95% CI, durations', {
    timeout: 90_000,
  }, async () => {
    const cwd = tmpDir();
    const out = join(cwd, 'res');
    writeRun(
      out,
      summaryFixture({
        runId: 'run-a',
        startedAt: '2026-11-30T08:00:00.000Z',
        scenario: { runTimeMs: 10_000, encoding: 'json', payloadSizeBytes: 300 },
        latency: { e2e: spreadLatency(2.45, 114) },
      }),
    );
    writeRun(
      out,
      summaryFixture({
        runId: 'run-b',
        startedAt: '2026-11-30T09:00:00.000Z',
        scenario: { runTimeMs: 6000, encoding: 'json', payloadSizeBytes: 300 },
        latency: { e2e: spreadLatency(27.3, 60) },
        passed: false,
        valid: false,
        invalid: ['offered: 570 of 4130 scheduled messages were never sent (14%)'],
      }),
    );
    const { child, url } = await startUi(cwd);
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.click('#tab-history');
      const rowB = '#runs tr[data-run="run-b"]';
      await page.waitForSelector(rowB, { timeout: 10_000 });
      assert.equal((await page.textContent(`${rowB} .verdict`))?.trim(), 'INVALID');
      assert.equal(
        (await page.textContent(`${rowB} ul.reasons li`))?.trim(),
        'offered: 570 of 4130 scheduled messages were never sent (14%)',
      );
      assert.match(
        (await page.textContent(rowB)) ?? '',
        /10 devices @ 5\/s · 6s · every 1s · json 300 B · QoS 1/,
      );
      assert.equal(
        await page.$('#runs tr[data-run="run-a"] ul.reasons'),
        null,
        'a PASSED run has no reasons',
      );

      await page.check('#runs tr[data-run="run-a"] input[name="a"]');
      await page.check('#runs tr[data-run="run-b"] input[name="b"]');
      await page.click('#compare');
      const p95 = '#comparison tr[data-figure="e2e.p95"]';
      await page.waitForSelector(p95, { timeout: 15_000 });
      assert.equal((await page.textContent(`${p95} td.pct`))?.trim(), '+1014%');
      assert.equal((await page.textContent(`${p95} td.verdict-cell`))?.trim(), 'worse');
      const noise = (await page.textContent(`${p95} td.noise`)) ?? '';
      assert.match(noise, /95% CI A \[4\.655, 4\.655\] \(n=114\), B \[51\.87, 51\.87\] \(n=60\)/);
      const e2eP50 = (await page.textContent('#comparison tr[data-figure="e2e.p50"] td.pct'))?.trim();
      assert.match(e2eP50 ?? '', /^\+\d+%$/);
      const text = (await page.textContent('#comparison')) ?? '';
      assert.match(text, /note: the runs had different scenarios: run time 10s → 6s/);
      assert.doesNotMatch(text, /run time ms/);
      assert.match(text, /within noise: latency Δ ≤ max\(5%, 2× HDR resolution\)/);

      // Start waits while the form lists problems, and comes back when they are fixed
      await fill(page, { devices: '0' });
      await page.waitForSelector('#problems:not([hidden])', { timeout: 10_000 });
      assert.equal(await page.isDisabled('#start'), true);
      await fill(page, { devices: '2' });
      await page.waitForSelector('#problems', { state: 'hidden', timeout: 10_000 });
      assert.equal(await page.isDisabled('#start'), false);
    } finally {
      await page.close();
      child.kill('SIGINT');
      await waitForCliExit(child, 20_000);
    }
  });

  test('a run that could not reach its broker stays in History; a run killed mid-way closes its frame', {
    timeout: 120_000,
  }, async () => {
    const cwd = tmpDir();
    const { child, url } = await startUi(cwd);
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    try {
      await page.goto(url);
      // exit 3, no results folder: History keeps it (while the UI runs), with why, after a reload too
      await fill(page, { host: 'mqtt://127.0.0.1:1', devices: '1', runTime: '5s' });
      await page.waitForFunction(
        () => /127\.0\.0\.1:1/.test(document.getElementById('command')?.textContent ?? ''),
        null,
        { timeout: 10_000 },
      );
      await page.click('#start');
      const unreachable = await waitFinished(page);
      assert.match(unreachable, /^UNREACHABLE · /);
      const runId = unreachable.split(' · ')[1] ?? '';
      assert.ok(!existsSync(join(cwd, 'res', runId)), 'the run left no folder');
      await page.reload();
      await page.click('#tab-history');
      const row = `#runs tr[data-run="${runId}"]`;
      await page.waitForSelector(row, { timeout: 10_000 });
      assert.equal((await page.textContent(`${row} .verdict`))?.trim(), 'UNREACHABLE');
      assert.equal((await page.textContent(`${row} td.exit`))?.trim(), '3');
      assert.match((await page.textContent(`${row} ul.reasons`)) ?? '', /127\.0\.0\.1:1.*ECONNREFUSED/);
      assert.match((await page.textContent(row)) ?? '', /no results folder/);
      assert.equal(await page.isDisabled(`${row} input[name="a"]`), true, 'nothing to compare');

      // a run killed while its dashboard is framed: the frame is closed, nothing asks the gone run
      await fill(page, { host: '', devices: '2', runTime: '60s', interval: '200ms' });
      await page.waitForFunction(
        () => !/127\.0\.0\.1:1/.test(document.getElementById('command')?.textContent ?? ''),
        null,
        { timeout: 10_000 },
      );
      await page.click('#start');
      await page.waitForSelector('#live-frame:not([hidden])', { timeout: 30_000 });
      const frame = await (await page.$('#live-frame'))?.contentFrame();
      assert.ok(frame);
      await frame.waitForFunction(
        () => /^[1-9][\d,]* total$/.test(document.getElementById('s-sent')?.textContent ?? ''),
        null,
        { timeout: 30_000 },
      );
      const asked: string[] = [];
      let finished = false;
      page.on('request', (r) => {
        const path = new URL(r.url()).pathname;
        if (finished && r.url().startsWith(url) && !path.startsWith('/api/ui/')) asked.push(path);
      });
      const [run] = childrenOf(child.pid);
      assert.ok(run, 'the run is a child process of the UI');
      process.kill(run, 'SIGKILL');
      assert.match(await waitFinished(page), /^CRASHED · /);
      await page.waitForSelector('#live-gone:not([hidden])', { timeout: 10_000 });
      finished = true;
      assert.match(
        (await page.textContent('#live-gone')) ?? '',
        /ended \(CRASHED, exit 137\) before its dashboard showed a summary/,
      );
      assert.equal(await page.isHidden('#live-frame'), true);
      await page.waitForTimeout(6000);
      assert.deepEqual(asked, [], 'the gone dashboard is not asked anything');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      child.kill('SIGINT');
      await waitForCliExit(child, 30_000);
    }
  });
});
