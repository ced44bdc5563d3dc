/**
 * The flags headless Chromium needs on this kind of machine: no sandbox (root), no GPU, and none of the background
 * traffic a fresh profile starts (component updates, sync, first-run pages). Shared by the browser tests
 * (test/helpers/browser.ts) and the documentation's screenshots (scripts/screenshots.ts).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
