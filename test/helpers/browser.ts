import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
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

/** Launches headless Chromium with the flags this machine needs (no sandbox as root, no background network). */
export function launchChromium(): Promise<Browser> {
  if (missing) {
    assert.fail(
      `${CHROMIUM} is required here (CI=true or FLEETLOAD_REQUIRE_SERVICES=1): apt-get install chromium`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}
