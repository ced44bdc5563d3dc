import { parseArgs } from 'node:util';
import { FleetloadError } from '../errors.js';
import {
  CONSUME_OPTIONS,
  closest,
  convertText,
  SCENARIO_OPTIONS,
  type ScenarioOption,
} from '../scenario/options.js';

/**
 * One tokenizer for every command's flags (run, plan, consume, certs): parseArgs splits, and every problem is
 * worded here, the same way for every command: `unknown flag --x; did you mean --y? see fleetload CMD --help`,
 * `--flag needs a value`, `--flag: "abc" is not a number`. Values are converted per the option's kind and keyed
 * by the setting's key (camelCase), ready for the loader.
 */

export interface Tokenized {
  /** setting key → value converted from text; only flags given */
  flags: Record<string, unknown>;
  positionals: string[];
  problems: string[];
  help: boolean;
}

type OptionConfig = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

function parseArgsOptions(specs: readonly ScenarioOption[]): Record<string, OptionConfig> {
  const options: Record<string, OptionConfig> = { help: { type: 'boolean', short: 'h' } };
  for (const o of specs) {
    options[o.flag] = {
      type: o.kind === 'boolean' ? 'boolean' : 'string',
      ...(o.short ? { short: o.short } : {}),
      ...(o.kind === 'list' ? { multiple: true } : {}),
    };
  }
  return options;
}

/** Tokenizes `argv` against `specs`; `command` names the help to point at. Never throws for user input. */
export function tokenizeFlags(argv: string[], specs: readonly ScenarioOption[], command: string): Tokenized {
  const options = parseArgsOptions(specs);
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const result: Tokenized = { flags: {}, positionals: [], problems: [], help: false };
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { ...result, help: true };

  const byFlag = new Map(specs.map((o) => [o.flag, o]));
  const longFlags = Object.keys(options);
  const unknownFlag = (raw: string): string => {
    const near = closest(raw.replace(/^-+/, ''), longFlags);
    return `unknown flag ${raw}; ${near ? `did you mean --${near}? ` : ''}see fleetload ${command} --help`;
  };
  const { flags, problems } = result;
  const reportedGroups = new Set<number>();

  for (const t of tokens) {
    if (t.kind === 'positional') result.positionals.push(t.value);
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
  return result;
}

export interface RunArgs {
  file?: string;
  /** Scenario keys (camelCase, as in scenarioInput) → values converted from text; only flags given. */
  flags: Record<string, unknown>;
  help: boolean;
}

/**
 * Parses `fleetload run [scenario.yaml] [flags]`: unknown flags, missing values and extra arguments are E_USAGE,
 * all listed together. With -h/--help anywhere, the rest is not checked.
 */
export function parseRunArgs(argv: string[], command = 'run'): RunArgs {
  const t = tokenizeFlags(argv, SCENARIO_OPTIONS, command);
  if (t.help) return { flags: {}, help: true };
  if (t.positionals.length > 1) {
    t.problems.push(
      `unexpected argument "${t.positionals[1]}": ${command} takes one scenario file (${JSON.stringify(t.positionals[0])})`,
    );
  }
  if (t.problems.length > 0) throw new FleetloadError('E_USAGE', t.problems);
  return {
    ...(t.positionals[0] !== undefined ? { file: t.positionals[0] } : {}),
    flags: t.flags,
    help: false,
  };
}

/**
 * Tokenizes `fleetload consume [flags]` (flags only) into consume setting keys → values; usage problems are
 * returned, so the loader lists them together with the settings' problems.
 */
export function parseConsumeFlags(argv: string[]): Tokenized {
  const t = tokenizeFlags(argv, CONSUME_OPTIONS, 'consume');
  for (const p of t.positionals) t.problems.push(`unexpected argument "${p}": consume takes flags only`);
  return t;
}
