import { appendFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { FleetloadError } from '../errors.js';
import { encodeHistogram, type Histogram } from '../stats/histogram.js';
import type { Summary, TimeseriesRow } from '../stats/summary.js';
import { TIMESERIES_HEADER, timeseriesLine } from '../stats/timeseries.js';
import { FLEETLOAD_VERSION } from '../version.js';

/**
 * The results folder `<out>/<runId>/` (DESIGN.md): summary.json, timeseries.csv, scenario.yaml, histograms/,
 * plus intervals.jsonl (every figure of every interval, which the report draws from).
 * Nothing touches the disk before `create`, which the CLI calls only once the input is valid. The time series is
 * appended as the run goes (a crash leaves the rows so far); the summary is written atomically at the end.
 */

export { TIMESERIES_HEADER };

const FLUSH_EVERY_MS = 1000;
/** what a run writes into its folder: removed from the folder of a crashed run before a new run with its id */
const RUN_FILES = [
  'timeseries.csv',
  'intervals.jsonl',
  'scenario.yaml',
  'histograms',
  'report.html',
  'ledger.bin',
  'consumer.json',
  'run.json',
  'lastseq.bin',
  'devices.csv',
  'devices.json',
  'INCOMPLETE',
];
const HISTOGRAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class ResultsFolder {
  readonly dir: string;
  private readonly csvPath: string;
  /** queued lines per appended file (timeseries.csv, intervals.jsonl) */
  private buffers = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  /** every write to timeseries.csv, in order; never rejects (a failure is kept in `writeError`) */
  private writes: Promise<void> = Promise.resolve();
  private writeError: unknown;
  private closed = false;

  private constructor(dir: string) {
    this.dir = dir;
    this.csvPath = join(dir, 'timeseries.csv');
  }

  /**
   * Creates `<outRoot>/<runId>/` and starts timeseries.csv with its header. Refuses a folder that already holds
   * a summary.json (a finished run); a folder without one (a crashed run with the same id) is started clean: none
   * of the dead run's files may mix into the new run's report.
   */
  static async create(outRoot: string, runId: string): Promise<ResultsFolder> {
    const dir = join(outRoot, runId);
    if (await exists(join(dir, 'summary.json'))) {
      throw new FleetloadError(
        'E_OUT',
        `results folder ${dir} already exists; pick another --run-id or --out`,
      );
    }
    const folder = new ResultsFolder(dir);
    try {
      await mkdir(dir, { recursive: true });
      for (const f of RUN_FILES) await rm(join(dir, f), { recursive: true, force: true });
      await writeFile(folder.csvPath, `${TIMESERIES_HEADER}\n`);
    } catch (e) {
      throw new FleetloadError(
        'E_OUT',
        `cannot create results folder ${dir}: ${why(e)}; choose another --out`,
        {
          cause: e,
        },
      );
    }
    return folder;
  }

  /**
   * `create`, then scenario.yaml. When that fails (a full disk at the start) nothing is left behind: a folder
   * this call made is removed again.
   */
  static async open(
    outRoot: string,
    runId: string,
    scenario: unknown,
    command: 'run' | 'consume' = 'run',
  ): Promise<ResultsFolder> {
    const existed = await exists(join(outRoot, runId));
    const folder = await ResultsFolder.create(outRoot, runId);
    try {
      await folder.writeScenario(scenario, command);
      return folder;
    } catch (e) {
      await folder.close().catch(() => {});
      if (!existed) await rm(folder.dir, { recursive: true, force: true }).catch(() => {});
      throw e;
    }
  }

  /** Writes scenario.yaml from an already-redacted scenario object. */
  async writeScenario(obj: unknown, command: 'run' | 'consume' = 'run'): Promise<void> {
    const header =
      command === 'run'
        ? `# fleetload ${FLEETLOAD_VERSION} — the resolved scenario of run ${basename(this.dir)}\n` +
          '# run it again with: fleetload run scenario.yaml (a new run id and results folder; add runId: to pin one;\n' +
          '# paths here are absolute). Secrets are redacted (***): fill them in first.\n'
        : `# fleetload ${FLEETLOAD_VERSION} — the settings of fleetload consume ${basename(this.dir)}, secrets redacted (***)\n`;
    await this.write('scenario.yaml', header + stringify(obj));
  }

  /**
   * Queues one row of timeseries.csv. Never blocks: rows are written within a second, or on `flush`/`close`.
   * A row queued after `close` is dropped.
   */
  appendRow(row: TimeseriesRow): void {
    this.queue(this.csvPath, timeseriesLine(row));
  }

  /**
   * Queues one line of intervals.jsonl: every figure of one interval (all counters, percentiles, generator
   * health), for the report and for tools; timeseries.csv keeps the DESIGN.md columns.
   */
  appendInterval(record: unknown): void {
    this.queue(join(this.dir, 'intervals.jsonl'), `${JSON.stringify(record)}\n`);
  }

  private queue(path: string, line: string): void {
    if (this.closed) return;
    const lines = this.buffers.get(path);
    if (lines) lines.push(line);
    else this.buffers.set(path, [line]);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flushBuffer();
    }, FLUSH_EVERY_MS).unref();
  }

  /** Writes the queued rows now; rejects if any write to timeseries.csv has failed. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.flushBuffer();
    if (this.writeError !== undefined) {
      const { path, e } = this.writeError as { path: string; e: unknown };
      throw new FleetloadError('E_OUT', `cannot write ${path}: ${why(e)}`, { cause: e });
    }
  }

  /** Writes `histograms/<name>.hdr` for each histogram: the HDR compressed encoding, base64, one line. */
  async writeHistograms(map: Record<string, Histogram>): Promise<void> {
    const entries = Object.entries(map);
    for (const [name] of entries) {
      if (!HISTOGRAM_NAME.test(name)) {
        throw new FleetloadError('E_INTERNAL', `histogram name "${name}" is not a safe file name`);
      }
    }
    await this.guard('histograms', () => mkdir(join(this.dir, 'histograms'), { recursive: true }));
    for (const [name, h] of entries)
      await this.write(join('histograms', `${name}.hdr`), `${encodeHistogram(h)}\n`);
  }

  /** Writes one more file of the run (ledger.bin, consumer.json) into the folder. */
  writeFile(name: string, data: string | Buffer): Promise<void> {
    return this.guard(name, () => writeFile(join(this.dir, name), data));
  }

  /** Writes summary.json (2-space JSON) atomically: a temporary file, then a rename. */
  async writeSummary(s: Summary): Promise<void> {
    const tmp = join(this.dir, `.summary.json.${process.pid}.tmp`);
    const target = join(this.dir, 'summary.json');
    await this.guard('summary.json', async () => {
      try {
        await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`);
        await rename(tmp, target);
      } catch (e) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw e;
      }
    });
  }

  /** Flushes the time series and stops the flush timer; rejects if any write to timeseries.csv failed. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private flushBuffer(): Promise<void> {
    for (const [path, lines] of this.buffers) {
      const chunk = lines.join('');
      this.writes = this.writes.then(() =>
        appendFile(path, chunk).catch((e: unknown) => {
          this.writeError ??= { path, e };
        }),
      );
    }
    this.buffers = new Map();
    return this.writes;
  }

  private write(file: string, text: string): Promise<void> {
    return this.guard(file, () => writeFile(join(this.dir, file), text));
  }

  private async guard(file: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      throw new FleetloadError('E_OUT', `cannot write ${join(this.dir, file)}: ${why(e)}`, { cause: e });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A file-system error in words a person can act on. */
function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder';
    case 'EEXIST':
      return 'a file with that name is in the way';
    case 'EISDIR':
      return 'a folder is in the way';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    default:
      return e instanceof Error ? e.message : String(e);
  }
}
