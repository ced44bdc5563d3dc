import { resolve } from 'node:path';
import { FleetloadError } from '../errors.js';
import {
  compareRuns,
  comparisonJson,
  formatComparison,
  printable,
  regressions,
  safeJson,
} from '../report/compare.js';
import { loadResults, type ResultsData } from '../report/load.js';
import type { CliIo } from './commands.js';

export const COMPARE_HELP = `Usage: fleetload compare RUN_A RUN_B [--fail-on-regression PCT] [--json]

Compares run B against run A (the baseline), two results folders: e2e p50/p95/p99/max, publish→ack p50/p99,
connect p95, schedule lag p99 (from the HDR histograms), loss, duplicates, delivered rate, connect failures and
errors, with the difference and a verdict per figure: better, worse, or within noise.

Within noise: for latencies, a difference of at most max(5%, 2× the histogram's resolution), or overlapping 95%
confidence intervals of the percentile (which shrink with the number of samples); for counts, an exact Poisson
rate test (p ≥ 0.05) per message sent (per device for connect failures); delivered rate also within 2%.

  --fail-on-regression PCT   exit 1 when a figure got worse (beyond noise) by more than PCT percent
  --json                     print the comparison as JSON

Exit codes: 0 no regression beyond PCT (or no --fail-on-regression) · 1 regression · 2 bad input
`;

interface CompareArgs {
  a: string;
  b: string;
  failPct: number | undefined;
  json: boolean;
  help: boolean;
}

function parse(argv: string[]): CompareArgs {
  const positional: string[] = [];
  let failPct: number | undefined;
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h' || arg === '--help') help = true;
    else if (arg === '--json') json = true;
    else if (arg === '--fail-on-regression' || arg.startsWith('--fail-on-regression=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (value === undefined || value === '') {
        throw new FleetloadError(
          'E_USAGE',
          '--fail-on-regression needs a percentage, e.g. --fail-on-regression 10',
        );
      }
      const n = Number(value.endsWith('%') ? value.slice(0, -1) : value);
      if (!Number.isFinite(n) || n < 0) {
        throw new FleetloadError(
          'E_USAGE',
          `--fail-on-regression: "${value}" is not a percentage ≥ 0 (e.g. 10 or 10%)`,
        );
      }
      failPct = n;
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new FleetloadError(
        'E_USAGE',
        `fleetload compare: unknown option ${arg}; options: --fail-on-regression PCT, --json`,
      );
    } else positional.push(arg);
  }
  if (help) return { a: '', b: '', failPct, json, help };
  if (positional.length !== 2) {
    throw new FleetloadError(
      'E_USAGE',
      `fleetload compare needs two results folders (baseline first): fleetload compare RUN_A RUN_B; got ${positional.length}`,
    );
  }
  return { a: positional[0] as string, b: positional[1] as string, failPct, json, help };
}

async function load(dir: string, which: string): Promise<ResultsData> {
  let d: ResultsData;
  try {
    d = await loadResults(dir);
  } catch (e) {
    // a parse error quotes the file's bytes: they reach the terminal only as visible escapes
    if (e instanceof FleetloadError)
      throw new FleetloadError(e.code, e.problems.map(printable), { cause: e });
    throw e;
  }
  if (!d.summary) {
    throw new FleetloadError(
      'E_FILE',
      `run ${which} (${printable(dir)}) has no summary.json: the run did not finish; compare needs finished runs`,
    );
  }
  return d;
}

/** `fleetload compare RUN_A RUN_B`: 0 no regression, 1 a figure got worse by more than PCT, 2 bad input. */
export async function compareCmd(argv: string[], io: CliIo): Promise<number> {
  const args = parse(argv);
  if (args.help) {
    io.stdout.write(COMPARE_HELP);
    return 0;
  }
  const a = await load(resolve(io.cwd, args.a), 'A');
  const b = await load(resolve(io.cwd, args.b), 'B');
  const c = compareRuns(a, b);
  if (args.json) io.stdout.write(`${safeJson(comparisonJson(c, args.failPct), 2)}\n`);
  else {
    const color = Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined && io.env.TERM !== 'dumb';
    io.stdout.write(formatComparison(c, { color, failOnRegressionPct: args.failPct }));
  }
  return args.failPct !== undefined && regressions(c, args.failPct).length > 0 ? 1 : 0;
}
