import { closeSync, constants, fstatSync, openSync, readSync, statfsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Input files are read with a bound: only regular files (not /dev/zero, a FIFO or a directory), at most
 * `maxBytes`. Errors keep a Node-style `code` so callers word them the same way as other read errors.
 */

/** The most any scenario, payload template, certificate or key file may hold. */
export const MAX_INPUT_FILE_BYTES = 1024 * 1024;

export class InputFileError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export function readInputFile(path: string, maxBytes = MAX_INPUT_FILE_BYTES): Buffer {
  // O_NONBLOCK: opening a FIFO with no writer must not hang; fstat then refuses it
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new InputFileError('EISDIR', 'it is a directory');
    if (!st.isFile()) throw new InputFileError('ENOTREG', 'not a regular file');
    if (st.size > maxBytes) {
      throw new InputFileError('EFBIG', `larger than ${formatBytes(maxBytes)} (${formatBytes(st.size)})`);
    }
    const buf = Buffer.alloc(st.size);
    let at = 0;
    while (at < buf.length) {
      const n = readSync(fd, buf, at, buf.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return buf.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}

/** Why a file could not be read, in words: "no such file", "not a regular file", "larger than 1 MiB …". */
export function readErrorWords(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (e instanceof InputFileError) return e.message;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES') return 'permission denied';
  return code ?? (e as Error).message;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/** File systems where nothing can be created (mkdir -p there spins or fails): proc, sysfs, cgroup, devpts … */
const PSEUDO_FS = new Set([
  0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x1cd1, 0x73636673, 0x64626720, 0x858458f6,
]);

/**
 * What is wrong with `<out>/<runId>` as a results folder, checked without writing anything: the nearest existing
 * ancestor must be a directory on a real file system, and the run's folder must not exist yet (a killed
 * run's intervals would mix into the new report).
 */
export function outProblem(
  out: string,
  runId: string | undefined,
  cwd: string,
  what = 'cannot use',
): string | undefined {
  const root = resolve(cwd, out);
  if (runId !== undefined) {
    const dir = join(root, runId);
    if (existsAny(dir)) {
      return `results folder ${dir} already exists (an earlier run with this id); pick another --run-id or --out`;
    }
  }
  let at = root;
  while (!existsAny(at)) {
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(at);
  } catch (e) {
    return `${what} ${out}: ${readErrorWords(e)}`;
  }
  if (!st.isDirectory()) return `${what} ${out}: ${at} is not a directory`;
  // not an access(W_OK) check: permissions are the folder's business when it is made (exit 2 then, too), and a
  // loader called with cwd "/" by a non-root user must not fail for a folder it will never create
  try {
    if (PSEUDO_FS.has(statfsSync(at).type)) {
      return `${what} ${out}: ${at} is a system pseudo file system (nothing can be written there)`;
    }
  } catch {
    // statfs unavailable here: the folder is made (or refused) when the run starts
  }
  return undefined;
}

function existsAny(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch (e) {
    // a path through a file (ENOTDIR) does not exist either; the walk up finds the file and says so
    return !['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');
  }
}
