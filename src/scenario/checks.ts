import { createPrivateKey, X509Certificate } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import { outProblem, readErrorWords, readInputFile } from './files.js';
import { compileTemplate } from './template.js';

/**
 * Input checks that look at the machine (files, network interfaces) rather than at the text alone; the loaders
 * call them after the schema, so their problems are listed with the others.
 */

/** The MQTT limit of a UTF-8 string field (topic, client id, username) [MQTT-1.5.3]. */
export const MQTT_STRING_MAX_BYTES = 65_535;

/**
 * Whether the private key in `keyPem` belongs to the certificate in `certPem`; undefined when either cannot be
 * parsed (an encrypted key, not PEM: the caller's other checks say so).
 */
export function keyMatchesCert(certPem: Buffer, keyPem: Buffer): boolean | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return undefined;
  }
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (e) {
    // an encrypted key without its passphrase: no way to use it either
    if (/passphrase|decrypt/i.test((e as Error).message)) return false;
    return undefined;
  }
}

/** "key … does not match certificate …" for one pair of files, or undefined (fine, or unreadable: said elsewhere). */
export function keyPairProblem(certPath: string, keyPath: string, cwd: string): string | undefined {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readInputFile(resolve(cwd, certPath));
    key = readInputFile(resolve(cwd, keyPath));
  } catch {
    return undefined;
  }
  const match = keyMatchesCert(cert, key);
  if (match !== false) return undefined;
  return /ENCRYPTED/.test(key.toString('latin1'))
    ? `${keyPath} is an encrypted private key; give an unencrypted PKCS#8 or PKCS#1 key`
    : `${keyPath} is not the private key of ${certPath}; give the key the certificate was made for`;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** What is wrong with one --source-ip item (an IPv4/IPv6 address or an IPv4 CIDR), or undefined. */
export function sourceIpProblem(item: string): string | undefined {
  const slash = item.indexOf('/');
  if (slash < 0) {
    return isIP(item) !== 0 ? undefined : `"${item}" is not an IP address (e.g. 127.0.0.2 or 127.0.1.0/28)`;
  }
  const addr = item.slice(0, slash);
  const bits = item.slice(slash + 1);
  if (isIP(addr) === 6) return `"${item}": IPv6 ranges are not supported; list the addresses`;
  if (isIP(addr) !== 4) return `"${item}" is not an IPv4 CIDR (e.g. 127.0.1.0/28)`;
  if (!/^\d{1,2}$/.test(bits) || Number(bits) > 32) {
    return `"${item}": the prefix length must be 0 to 32`;
  }
  return undefined;
}

/** The items of --source-ip values: comma-separated lists are split, blanks dropped. */
export function sourceIpItems(values: readonly string[]): string[] {
  return values
    .flatMap((x) => x.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

const toInt = (ip: string): number =>
  (IPV4.exec(ip) as RegExpExecArray).slice(1, 5).reduce((acc, o) => acc * 256 + Number(o), 0);
const toIp = (a: number): string => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');

/**
 * The addresses of --source-ip items (syntax already checked), at most `limit` of them: devices use addresses
 * round-robin, so more addresses than devices are never used. A /8 for 2 devices yields 2 addresses, not 16M.
 */
export function expandSourceIps(values: readonly string[], limit = Number.POSITIVE_INFINITY): string[] {
  const out: string[] = [];
  for (const item of sourceIpItems(values)) {
    if (out.length >= limit) break;
    const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(item);
    if (!cidr || !IPV4.test(cidr[1] as string)) {
      out.push(item);
      continue;
    }
    const size = 2 ** (32 - Number(cidr[2]));
    const base = toInt(cidr[1] as string);
    const start = base - (base % size);
    const n = Math.min(size, limit - out.length);
    for (let a = start; a < start + n; a++) out.push(toIp(a));
  }
  return out;
}

export interface LocalInterface {
  address: string;
  netmask: string;
  family: string;
  internal: boolean;
}

function localInterfaces(): LocalInterface[] {
  return Object.values(networkInterfaces()).flatMap((list) => list ?? []);
}

/**
 * Whether this machine can bind `ip` as a source address: an address of one of its interfaces, or any address
 * inside a loopback interface's network (Linux answers for all of 127.0.0.0/8).
 */
export function isLocalAddress(
  ip: string,
  interfaces: readonly LocalInterface[] = localInterfaces(),
): boolean {
  const v4 = IPV4.test(ip);
  for (const i of interfaces) {
    if (i.address.toLowerCase() === ip.toLowerCase()) return true;
    if (v4 && i.internal && IPV4.test(i.address) && IPV4.test(i.netmask)) {
      const mask = toInt(i.netmask);
      if ((toInt(ip) & mask) >>> 0 === (toInt(i.address) & mask) >>> 0) return true;
    }
  }
  return false;
}

/** The first address of `ips` this machine does not have, or undefined. */
export function firstNonLocal(
  ips: readonly string[],
  interfaces: readonly LocalInterface[] = localInterfaces(),
): string | undefined {
  return ips.find((ip) => !isLocalAddress(ip, interfaces));
}

/**
 * Templates whose expansion for the longest device (the last index) exceeds the MQTT string limit: a topic of
 * 70,000 bytes is input, not a crash at the first publish.
 */
export function overlongTemplates(
  templates: Record<string, string | undefined>,
  deviceIdTemplate: string,
  runId: string,
  devices: number,
): string[] {
  const index = Math.max(0, devices - 1);
  const deviceId = compileTemplate(deviceIdTemplate)({ index, runId });
  const problems: string[] = [];
  for (const [key, t] of Object.entries(templates)) {
    if (t === undefined) continue;
    const bytes = Buffer.byteLength(compileTemplate(t)({ index, runId, deviceId }));
    if (bytes > MQTT_STRING_MAX_BYTES) {
      problems.push(
        `${key}: is ${bytes} bytes for the last device (index ${index}); MQTT allows at most 65535`,
      );
    }
  }
  return problems;
}

/**
 * What is wrong with `path` as a file the run writes at its end (`--junit FILE`), checked before anything runs
 * and without writing: an existing path must be a writable regular file; otherwise its folder must be creatable
 * on a real file system (as --out's: not /proc or /sys) and its nearest existing folder writable. A CI job that
 * asked for a report and got none would read a missing file as "no failures".
 */
export function outputFileProblem(path: string, cwd: string): string | undefined {
  const full = resolve(cwd, path);
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(full);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return `cannot write ${path}: ${readErrorWords(e)}`;
  }
  if (st?.isDirectory()) return `cannot write ${path}: it is a directory; give a file name`;
  if (st && !st.isFile()) return `cannot write ${path}: not a regular file`;
  const folder = outProblem(dirname(full), undefined, cwd, `cannot write ${path} in`);
  if (folder) return folder;
  // the file itself when it exists, else the nearest folder that exists (where it, or its folders, are made)
  let at = st ? full : dirname(full);
  while (!st && !exists(at) && dirname(at) !== at) at = dirname(at);
  try {
    accessSync(at, constants.W_OK);
  } catch (e) {
    return `cannot write ${path}: ${at}: ${readErrorWords(e)}`;
  }
  return undefined;
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
