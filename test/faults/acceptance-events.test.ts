import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { chromiumSkip, inkedChartPixels, launchChromium } from '../helpers/browser.js';
import { cliOutput, spawnCli, tmpDir, waitForCliExit, waitForOutput } from '../helpers/cli.js';
import { reportMarkers } from '../helpers/markers.js';
import { RIDE_OUT_OUTAGE, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/**
 * Issue #13's acceptance, in ONE run: "The report of a run with a dashboard load change and a broker restart shows
 * both events on the charts." The built CLI against a real Mosquitto with its dashboard on a free port; Chromium
 * opens the dashboard while the run goes and lowers the fleet with the Load controls (a same-origin JSON POST
 * /api/fleet, as a user does); then Mosquitto is SIGKILLed and restarted. During the run, the dashboard shows every
 * chart (the report's schedule lag, loss, connections and generator charts included) with markers for the load
 * change and the outage, and its errors log filled by the outage's connection errors. Afterwards report.html, in
 * Chromium, shows on every chart over time a marker for the load change AND for broker-lost and broker-back.
 *
 * FLEETLOAD_ACCEPTANCE_SCREENSHOT=/tmp/live.png saves a screenshot of the live dashboard after the outage.
 */

// The bits of the browser's globals the page callbacks use (this project's TS lib has no DOM).
declare const document: {
  querySelectorAll(sel: string): ArrayLike<unknown>;
  getElementById(id: string): { hidden?: boolean; disabled?: boolean; textContent: string | null } | null;
};

/** The dashboard's charts: today's five and the report's other four. */
const DASHBOARD_CHARTS = [
  'devices',
  'rates',
  'e2e',
  'ack',
  'bytes',
  'lag',
  'loss',
  'connections',
  'generator',
];

const skip = skipUnless('mosquitto') || chromiumSkip('acceptance: events on the charts');

describe('issue #13 acceptance', { skip }, () => {
  test('a dashboard load change and a broker restart, in one run: both on every chart, live and in the report', async () => {
    const broker = await startMosquitto();
    let browser: Browser | undefined;
    const out = tmpDir('fleetload-acceptance-');
    const child = spawnCli([
      'run',
      '-H',
      broker.url,
      '--web-port',
      '0',
      '-u',
      '20',
      '-r',
      '200',
      '-i',
      '200ms',
      '-t',
      '16s',
      ...RIDE_OUT_OUTAGE,
      '--out',
      out,
    ]);
    try {
      const line = await waitForOutput(child, /dashboard: http:\/\/\S+/, { timeoutMs: 20_000 });
      const url = line.replace(/^dashboard: /, '');
      await waitForOutput(child, /devices 20\/20/, { timeoutMs: 15_000 });

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      const requests: string[] = [];
      page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
      await page.goto(url);

      // the load change, as a user makes it: the Load controls POST /api/fleet (same origin, JSON)
      await page.waitForFunction(() => document.getElementById('load-fields')?.disabled === false, null, {
        timeout: 10_000,
      });
      await page.fill('#load-devices', '12');
      await page.click('#load-apply');
      await page.waitForFunction(
        () => (document.getElementById('load-now')?.textContent ?? '').startsWith('target 12 devices'),
        null,
        { timeout: 10_000 },
      );
      assert.ok(requests.includes(`POST ${new URL('/api/fleet', url).href}`), requests.join('\n'));
      await waitForOutput(child, /devices 12\/12/, { timeoutMs: 10_000 });

      // the broker restart
      await new Promise((r) => setTimeout(r, 1200));
      await broker.outage(2500);

      // the live dashboard, while the run still goes: every chart has the three markers, the errors log is filled
      const charts = DASHBOARD_CHARTS.length;
      await page.waitForFunction(
        (n) => document.querySelectorAll('.fl-event[data-kind="broker-back"]').length >= n,
        charts,
        { timeout: 20_000 },
      );
      const chartIds = await page.$$eval('.chart', (els) => els.map((el) => el.id));
      assert.deepEqual(
        chartIds,
        DASHBOARD_CHARTS.map((id) => `chart-${id}`),
      );
      const inked = await inkedChartPixels(page);
      assert.equal(inked.length, charts, 'one canvas per chart');
      for (const px of inked) assert.ok(px > 2000, `a chart canvas has only ${px} drawn pixels`);
      const markers = await page.$$eval('.fl-event', (els) =>
        els.map((el) => `${el.closest('.chart')?.id ?? '?'} ${el.getAttribute('data-kind') ?? '?'}`),
      );
      for (const id of chartIds)
        for (const kind of ['load', 'broker-lost', 'broker-back'])
          assert.equal(
            markers.filter((m) => m === `${id} ${kind}`).length,
            1,
            `${id}: one ${kind} marker in ${markers}`,
          );
      assert.equal(await page.isVisible('#errors-panel'), true, 'the errors log shows');
      const errorRows = await page.$$eval('#error-log tr[data-kind]', (els) =>
        els.map((el) => el.getAttribute('data-kind') ?? '?'),
      );
      assert.ok(errorRows.length > 0, 'the outage filled the errors log');
      const liveTotal = (await page.textContent('#errors-total')) ?? '';
      assert.match(liveTotal, /^[\d,]+ so far: /);
      const eventLog = (await page.textContent('#event-log')) ?? '';
      assert.match(eventLog, /load20 → 12 devices \(dashboard\)/);
      assert.match(eventLog, /broker-lostbroker lost: \d+ of \d+ connected devices dropped/);
      assert.equal(await page.isHidden('#summary'), true, 'checked during the run, before its summary');
      const shot = process.env.FLEETLOAD_ACCEPTANCE_SCREENSHOT;
      if (shot) await page.screenshot({ path: shot, fullPage: true });

      const r = await waitForCliExit(child, 60_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.deepEqual(problems, []);

      // what the errors log showed is what summary.json counts (the run's totals may hold more: later intervals)
      const s = summaryIn(out);
      const summed = new Map<string, number>();
      for (const e of s.errors) summed.set(e.kind, (summed.get(e.kind) ?? 0) + e.count);
      for (const part of liveTotal.replace(/^[\d,]+ so far: /, '').split(' · ')) {
        const m = /^(\S+) ([\d,]+)$/.exec(part);
        assert.ok(m, `errors total "${part}"`);
        const [, kind = '', n = '0'] = m;
        assert.ok(
          (summed.get(kind) ?? 0) >= Number(n.replace(/,/g, '')),
          `${kind}: ${n} live, ${summed.get(kind)} in summary`,
        );
      }
      const kinds = (s.events ?? []).map((e) => e.kind);
      for (const k of ['load', 'broker-lost', 'broker-back'])
        assert.ok(kinds.includes(k as never), `${k} in ${kinds}`);

      // the acceptance sentence: report.html shows both events on the charts
      const [runId] = readdirSync(out);
      assert.ok(runId);
      const drawn = await reportMarkers(join(out, runId, 'report.html'), browser);
      assert.deepEqual(drawn.problems, []);
      const timeCharts = drawn.charts - 1; // all but the e2e percentile distribution
      assert.ok(timeCharts >= 9, `${drawn.charts} charts`);
      for (const kind of ['load', 'broker-lost', 'broker-back'])
        assert.equal(
          drawn.byKind[kind],
          timeCharts,
          `${kind} on every chart: ${JSON.stringify(drawn.byKind)}`,
        );
      assert.ok(drawn.titles.some((t) => /load: 20 → 12 devices \(dashboard\)$/.test(t)));
      assert.equal(drawn.logRows.load, 1);
      assert.equal(drawn.logRows['broker-lost'], 1);
    } finally {
      await browser?.close();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        console.log(cliOutput(child).stdout);
      }
      await broker.stop();
    }
  });
});
