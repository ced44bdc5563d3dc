import { accessSync, constants } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';

/**
 * External services in tests (Mosquitto, NATS, InfluxDB, Prometheus, Chromium). Each test starts its own on a
 * free loopback port. On a laptop without the program the test is skipped with a visible reason; in CI
 * (`CI=true`, or `FLEETLOAD_REQUIRE_SERVICES=1` which .ci/run exports) a missing program is a failure — a
 * green CI must mean every test ran.
 */

/** Debian package that provides each binary, for messages. */
const debianPackage: Readonly<Record<string, string>> = {
  mosquitto: 'mosquitto',
  mosquitto_pub: 'mosquitto-clients',
  mosquitto_sub: 'mosquitto-clients',
  'nats-server': 'nats-server',
  influxd: 'influxdb',
  prometheus: 'prometheus',
  chromium: 'chromium',
};

/** Daemons live in sbin, which is often not on a non-root PATH. */
const extraDirs = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin'];

export function serviceRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.FLEETLOAD_REQUIRE_SERVICES === '1';
}

/** Absolute path of an executable named `binary` on PATH or in the sbin directories, or undefined. */
export function findBinary(binary: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

function installHint(binary: string): string {
  return `apt-get install ${debianPackage[binary] ?? binary}`;
}

/**
 * For `test(name, { skip: skipUnless('mosquitto') }, fn)`: false when the test should run, else the reason it is
 * skipped. When services are required it is always false, so the test runs and fails loudly at start-up.
 */
export function skipUnless(...binaries: string[]): false | string {
  if (serviceRequired()) return false;
  const missing = binaries.filter((b) => findBinary(b) === undefined);
  if (missing.length === 0) return false;
  return `${missing.join(', ')} not installed (${missing.map(installHint).join('; ')}); set FLEETLOAD_REQUIRE_SERVICES=1 to make this a failure`;
}

/** Path of `binary`, or an Error saying what to install (and that CI requires it when it does). */
export function requireService(binary: string): string {
  const found = findBinary(binary);
  if (found) return found;
  const why = serviceRequired()
    ? 'tests need it here (CI=true or FLEETLOAD_REQUIRE_SERVICES=1)'
    : 'this test needs it';
  throw new Error(`${binary} not found on PATH or in sbin; ${why} — ${installHint(binary)}`);
}

/**
 * A port that was free a moment ago on `host`. Another process can take it before the caller binds it, so
 * starters retry with a new port when the bind fails.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs`, or early if `abort()` says why. */
export async function waitForPort(
  port: number,
  opts: { host?: string; timeoutMs?: number; abort?: () => string | undefined } = {},
): Promise<void> {
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = opts.abort?.();
    if (reason !== undefined) throw new Error(reason);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.setTimeout(500);
      const done = (result: boolean): void => {
        socket.destroy();
        resolve(result);
      };
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      socket.once('timeout', () => done(false));
    });
    if (ok) return;
    if (Date.now() >= deadline)
      throw new Error(`${host}:${port} did not accept connections within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Resolves once a GET of `url` answers HTTP `status`; rejects after `timeoutMs`, or early if `abort()` says why.
 */
export async function waitForHttp(
  url: string,
  status: number,
  opts: { timeoutMs?: number; abort?: () => string | undefined } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = opts.abort?.();
    if (reason !== undefined) throw new Error(reason);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.status === status) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() >= deadline) throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
