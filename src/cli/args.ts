import { parseArgs } from 'node:util';
import { FleetloadError } from '../errors.js';
import { closest, convertText, SCENARIO_OPTIONS } from '../scenario/load.js';

export interface RunArgs {
  file?: string;
  /** Scenario keys (camelCase, as in scenarioInput) → values converted from text; only flags given. */
  flags: Record<string, unknown>;
  help: boolean;
}

type OptionConfig = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

const options: Record<string, OptionConfig> = { help: { type: 'boolean', short: 'h' } };
for (const o of SCENARIO_OPTIONS) {
  options[o.flag] = {
    type: o.kind === 'boolean' ? 'boolean' : 'string',
    ...(o.short ? { short: o.short } : {}),
    ...(o.kind === 'list' ? { multiple: true } : {}),
  };
}
const byFlag = new Map(SCENARIO_OPTIONS.map((o) => [o.flag, o]));
const longFlags = Object.keys(options);

function unknownFlag(raw: string): string {
  const near = closest(raw.replace(/^-+/, ''), longFlags);
  return `unknown flag ${raw}; ${near ? `did you mean --${near}? ` : ''}see fleetload run --help`;
}

/**
 * Parses `fleetload run [scenario.yaml] [flags]`. parseArgs tokenizes (non-strict, so that every problem can be
 * worded here as one sentence naming the flag); unknown flags, missing values and extra arguments are E_USAGE.
 * With -h/--help anywhere, the rest is not checked.
 */
export function parseRunArgs(argv: string[]): RunArgs {
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { flags: {}, help: true };

  const flags: Record<string, unknown> = {};
  const positionals: string[] = [];
  const problems: string[] = [];
  const reportedGroups = new Set<number>();

  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const opt = byFlag.get(t.name);
    if (!opt) {
      // `-devices` is split by parseArgs into -d -e -v …; report the argument once, as written.
      const arg = argv[t.index] ?? t.rawName;
      if (/^-[^-]/.test(arg) && arg.length > 2 && !t.inlineValue) {
        if (!reportedGroups.has(t.index)) problems.push(unknownFlag(arg.split('=')[0] ?? arg));
        reportedGroups.add(t.index);
      } else problems.push(unknownFlag(t.rawName));
      continue;
    }
    const name = `--${opt.flag}`;
    if (opt.kind === 'boolean') {
      if (t.value !== undefined) problems.push(`${name} takes no value (got "${t.value}")`);
      else flags[opt.key] = true;
      continue;
    }
    // Non-strict parseArgs takes the next argument as the value even when it is a flag: `-t --headless`.
    if (t.value === undefined || (!t.inlineValue && /^-(?!\d|\.\d)/.test(t.value))) {
      problems.push(`${name} needs a value`);
      continue;
    }
    // parseArgs keeps the `=` of `-r=10`; accept that form like `--spawn-rate=10`.
    const text = t.inlineValue && !t.rawName.startsWith('--') ? t.value.replace(/^=/, '') : t.value;
    const converted = convertText(opt.kind === 'list' ? 'string' : opt.kind, text);
    if ('problem' in converted) problems.push(`${name}: ${converted.problem}`);
    else if (opt.kind === 'list') flags[opt.key] = [...((flags[opt.key] as string[]) ?? []), converted.value];
    else flags[opt.key] = converted.value;
  }

  if (positionals.length > 1) {
    problems.push(
      `unexpected argument "${positionals[1]}": run takes one scenario file (${JSON.stringify(positionals[0])})`,
    );
  }
  if (problems.length > 0) throw new FleetloadError('E_USAGE', problems);
  return { ...(positionals[0] !== undefined ? { file: positionals[0] } : {}), flags, help: false };
}
