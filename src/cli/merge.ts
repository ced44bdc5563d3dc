import { FleetloadError } from '../errors.js';
import type { Threshold } from '../stats/thresholds.js';
import { parseThreshold } from '../stats/thresholds.js';
import { type CliIo, exitCodeOf, printSummary, writeReport } from './commands.js';

export const MERGE_HELP = `Usage: fleetload merge DIR… [--out DIR] [--run-id ID] [--threshold EXPR]… [--allow-incomplete] [--json]

Joins the results folders of one run — its segments (run --segment i/N), its consumers (consume --run-id), and
folders merged before — into one results folder, exactly: counters add, HDR histograms add (percentiles are
never averaged), consumer ledgers are unioned (a message two consumers saw counts once, the second delivery as
a duplicate), loss is each device's last sequence number against the union, and thresholds and the validity
verdict are judged on the merged result only. A merge of merges equals one merge; the order does not matter.

Refused (exit 2, nothing written): folders of another run or with other settings, a segment given twice or
missing, the same folder twice.

  --out DIR             the merged folder            (default: ./fleetload-results/<runId>-merged)
  --run-id ID           the run to merge             (default: the folders' run)
  --threshold EXPR      repeatable; judged on the merged result (default: the folders' thresholds)
  --allow-incomplete    merge the segments that are there; the summary is marked incomplete (never passes)
  --json                print summary.json on stdout

Exit codes: 0 passed · 1 a threshold failed (or incomplete) · 2 bad input · 5 invalid run
`;

interface MergeArgs {
  dirs: string[];
  out: string | undefined;
  runId: string | undefined;
  thresholds: Threshold[] | undefined;
  allowIncomplete: boolean;
  json: boolean;
  help: boolean;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function parseMergeArgs(argv: readonly string[]): MergeArgs {
  const a: MergeArgs = {
    dirs: [],
    out: undefined,
    runId: undefined,
    thresholds: undefined,
    allowIncomplete: false,
    json: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '')
        throw new FleetloadError('E_USAGE', `${name} needs a value (fleetload merge --help)`);
      return v;
    };
    if (name === '-h' || name === '--help') a.help = true;
    else if (name === '--json') a.json = true;
    else if (name === '--allow-incomplete') a.allowIncomplete = true;
    else if (name === '--out') a.out = value();
    else if (name === '--run-id') {
      const v = value();
      if (!RUN_ID.test(v)) {
        throw new FleetloadError(
          'E_USAGE',
          `--run-id "${v}": letters, digits, . _ - (at most 128, starting with a letter or digit)`,
        );
      }
      a.runId = v;
    } else if (name === '--threshold') {
      a.thresholds = [...(a.thresholds ?? []), parseThreshold(value())];
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new FleetloadError(
        'E_USAGE',
        `fleetload merge: unknown option ${arg}; options: --out, --run-id, --threshold, --allow-incomplete, --json`,
      );
    } else a.dirs.push(arg);
  }
  if (!a.help && a.dirs.length === 0) {
    throw new FleetloadError(
      'E_USAGE',
      'fleetload merge needs the results folders of one run: fleetload merge fleetload-results/<runId>-0 fleetload-results/<runId>-1 …',
    );
  }
  return a;
}

/** `fleetload merge DIR…`: writes the merged results folder; exit like a run (0 passed, 1 failed, 5 invalid). */
export async function mergeCmd(argv: string[], io: CliIo): Promise<number> {
  const args = parseMergeArgs(argv);
  if (args.help) {
    io.stdout.write(MERGE_HELP);
    return 0;
  }
  const { mergeFolders } = await import('../run/merge.js');
  const { merged, dir } = await mergeFolders({
    dirs: args.dirs,
    cwd: io.cwd,
    allowIncomplete: args.allowIncomplete,
    ...(args.out !== undefined ? { out: args.out } : {}),
    ...(args.runId !== undefined ? { runId: args.runId } : {}),
    ...(args.thresholds !== undefined ? { thresholds: args.thresholds } : {}),
  });
  const human = args.json ? io.stderr : io.stdout;
  await writeReport(dir, (line) => io.stderr.write(`fleetload: ${line}\n`));
  const parts = merged.record.members?.length ?? 0;
  human.write(
    `merged ${args.dirs.length} folder${args.dirs.length === 1 ? '' : 's'} (${parts} process${parts === 1 ? '' : 'es'}` +
      (merged.record.covers.count > 0
        ? `, segments ${merged.record.covers.segments.join(',')} of ${merged.record.covers.count}`
        : '') +
      ')\n',
  );
  printSummary(
    io,
    human,
    merged.summary,
    dir,
    args.json,
    undefined,
    merged.record.role === 'consumer' ? 'consume' : 'run',
  );
  return exitCodeOf(merged.summary);
}
