// Screenshots for the documentation, from a short real run: the live dashboard mid-run and the run's report.html,
// written to docs/images/dashboard.png and docs/images/report.png (1280 px wide).
//
//   npm run build && npm run docs:screenshots
//
// Needs Chromium at /usr/bin/chromium (or CHROMIUM=path). The run uses the embedded broker, a free port for the
// dashboard and a temporary results folder; nothing is left behind but the two images.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../test/helpers/chromium-args.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const images = join(root, 'docs', 'images');
const width = 1280;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'fleetload-screenshots-'));
  const args = [join(root, 'dist', 'cli', 'main.js'), 'run', '--run-id', 'docs-screenshot'];
  args.push('-u', '300', '-r', '60', '-t', '25s', '-i', '500ms', '--web-port', '0', '--out', out);
  args.push('--threshold', 'e2e.p99<500', '--threshold', 'loss<0.1%');
  const run = spawn(process.execPath, args, {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const onData = (s: Buffer): void => {
    log += s.toString();
  };
  run.stdout.on('data', onData);
  run.stderr.on('data', onData);
  const exited = new Promise<number | null>((r) => run.on('close', r));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  try {
    let url: string | undefined;
    for (let i = 0; i < 200 && url === undefined; i++) {
      url = /dashboard: (http:\/\/\S+)/.exec(log)?.[1];
      if (url === undefined) await sleep(100);
    }
    if (url === undefined) throw new Error(`the run printed no dashboard address:\n${log}`);
    mkdirSync(images, { recursive: true });
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(url);
    await sleep(9_000);
    // a load change from the dashboard (as its Load form sends it): an event, drawn as a marker on every chart
    await page.evaluate(async () => {
      await fetch('/api/fleet', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ devices: 200 }),
      });
    });
    await sleep(7_000); // mid-run: the ramp is done and the charts have 16 s of data
    await page.screenshot({ path: join(images, 'dashboard.png'), fullPage: true });
    const code = await exited;
    if (code !== 0) throw new Error(`the run ended with exit ${code}:\n${log}`);
    const [runId] = readdirSync(out);
    if (runId === undefined) throw new Error(`no results folder in ${out}`);
    await page.goto(pathToFileURL(join(out, runId, 'report.html')).href);
    await sleep(1000);
    await page.screenshot({ path: join(images, 'report.png'), clip: { x: 0, y: 0, width, height: 1600 } });
  } finally {
    await browser.close();
    run.kill('SIGINT');
    rmSync(out, { recursive: true, force: true });
  }
  for (const f of ['dashboard.png', 'report.png']) {
    console.log(`docs/images/${f}: ${Math.round(statSync(join(images, f)).size / 1024)} KB`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
