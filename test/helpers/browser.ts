import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium-args.js';
import { serviceRequired } from './services.js';

/**
 * Debian's Chromium for browser tests (playwright-core cannot download its own browser here). Without it a test
 * is skipped with a visible reason — unless services are required (CI), then it fails.
 */
export const CHROMIUM = '/usr/bin/chromium';

const missing = !existsSync(CHROMIUM);

/** `skip` option for node:test: a reason when Chromium is absent and not required, else false. */
export function chromiumSkip(what: string): false | string {
  if (!missing || serviceRequired()) return false;
  const reason = `${CHROMIUM} not found (apt-get install chromium); set FLEETLOAD_REQUIRE_SERVICES=1 to make this a failure`;
  console.log(`# SKIP ${what}: ${reason}`);
  return reason;
}

/**
 * Launches headless Chromium with the flags this machine needs (no sandbox as root, no background network), plus
 * `extraArgs` (e.g. --host-resolver-rules to give a test name an address).
 */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (missing) {
    assert.fail(
      `${CHROMIUM} is required here (CI=true or FLEETLOAD_REQUIRE_SERVICES=1): apt-get install chromium`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, '--disable-quic', ...extraArgs],
  });
}

// The bits of the canvas API the in-page callback uses (this project's TS lib has no DOM).
interface CanvasLike {
  width: number;
  height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}

/** Drawn (non-transparent) pixels of every uPlot canvas on the page, in page order: "a chart was drawn". */
export function inkedChartPixels(page: Page): Promise<number[]> {
  return page.$$eval('.uplot canvas', (canvases) =>
    canvases.map((c) => {
      const canvas = c as unknown as CanvasLike;
      const ctx = canvas.getContext('2d');
      if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let inked = 0;
      for (let k = 3; k < px.length; k += 4) if ((px[k] ?? 0) > 0) inked++;
      return inked;
    }),
  );
}
