import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser.js';

// The bits of the browser's globals the page callbacks use (this project's TS lib has no DOM).
declare const document: {
  documentElement: { getAttribute(name: string): string | null };
};

export interface DrawnMarkers {
  /** charts the page drew */
  charts: number;
  /** event markers drawn over the charts, by kind (one per chart per event) */
  byKind: Record<string, number>;
  /** their tooltips */
  titles: string[];
  /** rows of the event log table, by kind */
  logRows: Record<string, number>;
  /** console errors and page errors */
  problems: string[];
}

/**
 * Opens a report.html in headless Chromium and reads what the markers plugin (src/html/markers.ts) drew: the
 * `.fl-event` elements over the charts, and the event log rows.
 */
export async function reportMarkers(path: string, browser?: Browser): Promise<DrawnMarkers> {
  const b = browser ?? (await launchChromium());
  try {
    const context = await b.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(pathToFileURL(path).href);
    await page.waitForFunction(() => document.documentElement.getAttribute('data-charts') !== null, null, {
      timeout: 10_000,
    });
    // plain arrows with no named functions inside: the test runner's transform would wrap those in a helper
    // the page does not have
    const markers = await page.$$eval('.fl-event', (els) =>
      els.map((el) => [el.getAttribute('data-kind') ?? '?', el.getAttribute('title') ?? '']),
    );
    const rows = await page.$$eval('#event-log tr[data-kind]', (els) =>
      els.map((el) => el.getAttribute('data-kind') ?? '?'),
    );
    const charts = Number(await page.getAttribute('html', 'data-charts'));
    const tally = (kinds: string[]): Record<string, number> => {
      const by: Record<string, number> = {};
      for (const k of kinds) by[k] = (by[k] ?? 0) + 1;
      return by;
    };
    const read = {
      charts,
      byKind: tally(markers.map((m) => m[0] ?? '?')),
      titles: markers.map((m) => m[1] ?? ''),
      logRows: tally(rows),
    };
    await context.close();
    return { ...read, problems };
  } finally {
    if (!browser) await b.close();
  }
}
