import { resolve } from 'node:path';
import { FleetloadError } from '../errors.js';
import { writeReport } from '../report/html.js';
import type { CliIo } from './commands.js';

export const REPORT_HELP = `Usage: fleetload report DIR

Rebuilds DIR/report.html from a results folder (summary.json, intervals.jsonl or timeseries.csv, histograms/):
one self-contained file that opens offline. Prints its path.
`;

/** `fleetload report DIR`: rebuilds report.html; prints its path. Bad input: FleetloadError (exit 2). */
export async function reportCmd(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    io.stdout.write(REPORT_HELP);
    return 0;
  }
  const unknown = argv.find((a) => a.startsWith('-'));
  if (unknown !== undefined) {
    throw new FleetloadError(
      'E_USAGE',
      `fleetload report: unknown option ${unknown}; usage: fleetload report DIR`,
    );
  }
  if (argv.length !== 1 || argv[0] === undefined || argv[0] === '') {
    throw new FleetloadError(
      'E_USAGE',
      argv.length === 0
        ? 'fleetload report needs a results folder: fleetload report fleetload-results/<runId>'
        : `fleetload report takes one results folder, got ${argv.length}`,
    );
  }
  const path = await writeReport(resolve(io.cwd, argv[0]));
  io.stdout.write(`${path}\n`);
  return 0;
}
