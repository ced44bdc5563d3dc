import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FleetloadError } from '../errors.js';

/**
 * Capacity checks said before anything connects: every device needs a file descriptor, and every connection to
 * one destination needs its own local port per source address. Node cannot raise RLIMIT_NOFILE itself, so when
 * the soft limit is too low but the hard one allows it, fleetload re-executes itself under `ulimit -n`.
 */

/** descriptors beyond the devices: stdio, the consumer, sinks, the dashboard, files */
const FD_MARGIN = 128;
const REEXEC_ENV = '_FLEETLOAD_NOFILE_RAISED';

export interface Limits {
  softFiles: number;
  hardFiles: number;
  /** local (ephemeral) port range size */
  ports: number;
}

export function readLimits(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): Limits {
  let softFiles = Number.POSITIVE_INFINITY;
  let hardFiles = Number.POSITIVE_INFINITY;
  try {
    const line = read('/proc/self/limits')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line ? /Max open files\s+(\S+)\s+(\S+)/.exec(line) : null;
    if (m) {
      softFiles = m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
      hardFiles = m[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[2]);
    }
  } catch {
    // not Linux: nothing to check
  }
  let ports = 28_232;
  try {
    const [lo, hi] = read('/proc/sys/net/ipv4/ip_local_port_range').trim().split(/\s+/).map(Number);
    if (lo !== undefined && hi !== undefined && hi >= lo) ports = hi - lo + 1;
  } catch {
    // keep Linux's default range size
  }
  return { softFiles, hardFiles, ports };
}

export type CapacityVerdict = { ok: true } | { ok: false; raiseTo: number };

/**
 * Whether `devices` connections fit: throws FleetloadError (exit 2, before anything starts) when they cannot,
 * or asks for a re-exec with a raised soft limit when only the soft limit is in the way.
 */
/**
 * `devices` need local ports (one machine: all its processes together); `perProcess` of them need file descriptors in
 * one process (with `--workers K`, about devices / K).
 */
export function checkCapacity(
  devices: number,
  sourceIps: number,
  limits: Limits,
  perProcess = devices,
): CapacityVerdict {
  const perSource = limits.ports;
  const sources = Math.max(1, sourceIps);
  if (devices > perSource * sources) {
    const need = Math.ceil(devices / perSource);
    throw new FleetloadError(
      'E_USAGE',
      `${devices} devices need ${need} source addresses to one broker (${perSource} local ports each); ` +
        `pass --source-ip with ${need} or more addresses (e.g. --source-ip 127.0.1.0/${32 - Math.ceil(Math.log2(need))} on loopback) ` +
        'or split the fleet over workers',
    );
  }
  const needFiles = perProcess + FD_MARGIN;
  if (needFiles <= limits.softFiles) return { ok: true };
  if (needFiles <= limits.hardFiles) return { ok: false, raiseTo: needFiles };
  throw new FleetloadError(
    'E_USAGE',
    `${perProcess} devices need about ${needFiles} open files but this process may open at most ${limits.hardFiles} ` +
      `(ulimit -Hn); raise the hard limit (as root: ulimit -Hn ${needFiles}, or LimitNOFILE= / limits.conf) ` +
      'or use fewer devices per process (--workers K splits them over K processes)',
  );
}

export function alreadyRaised(env: NodeJS.ProcessEnv): boolean {
  return env[REEXEC_ENV] === '1';
}

/**
 * Runs this same command again under `ulimit -n N` and resolves with its exit code. The child shares the terminal;
 * Ctrl-C reaches it directly (same process group), so this process only waits.
 */
export function reexecWithFileLimit(n: number, argv: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/bin/sh',
      ['-c', `ulimit -n ${n} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...argv],
      { stdio: 'inherit', env: { ...process.env, [REEXEC_ENV]: '1' } },
    );
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
      resolve(code ?? (signal ? 128 + 2 : 4));
    });
  });
}
