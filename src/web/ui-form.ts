import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { isFleetloadError } from '../errors.js';
import { redactSecrets } from '../redact.js';
import { loadScenario } from '../scenario/load.js';
import {
  convertText,
  ENV_PREFIX,
  RUN_KINDS,
  SCENARIO_OPTIONS,
  type ScenarioOption,
} from '../scenario/options.js';
import { type Scenario, scenarioJsonSchema } from '../scenario/schema.js';

/**
 * The New test form of `fleetload ui`, derived from the scenario's JSON Schema (what `fleetload schema` prints):
 * one field per key of the schema, in its order, typed by the schema (enum → select, boolean → checkbox, list →
 * one entry per line, number, text) and by the flag's kind (src/scenario/options.ts); a secret-named key (what
 * src/redact.ts redacts) is a password field. Only the grouping is written here: common fields first, connection
 * and TLS next, everything else under "more"; the keys the UI itself sets (its results folder, the dashboard's
 * address) are left out.
 *
 * What the browser sends back is text per field, converted exactly like flags (convertText) and checked by the
 * CLI's loader (loadScenario), so a problem reads as it does on the command line: `devices: must be at least 1
 * (from --devices)`, `--devices: "abc" is not a number`.
 */

export type FieldInput = 'text' | 'number' | 'select' | 'checkbox' | 'list' | 'secret';

export interface FormField {
  /** the scenario key (camelCase), also the scenario file's key */
  key: string;
  /** the long flag without dashes */
  flag: string;
  input: FieldInput;
  /** select: the values offered (the empty choice means "default") */
  options?: string[];
  /** the schema's default, as text (a list: one entry per line) */
  default?: string;
  description?: string;
  min?: number;
  max?: number;
  /** the FLEETLOAD_* variable of the UI's environment that sets this field's default (then `default` is its value) */
  fromEnv?: string;
}

export interface FormGroup {
  id: 'common' | 'connection' | 'more';
  title: string;
  fields: FormField[];
}

export interface FormModel {
  groups: FormGroup[];
}

/** Keys the UI sets for every run (or that mean nothing there): never form fields, refused when sent. */
export const UI_OWNED_KEYS: readonly string[] = [
  'out',
  'headless',
  'keepUi',
  'webHost',
  'webPort',
  'webToken',
  'webAllowedHosts',
  'json',
];

/** The first group, in this order. */
const COMMON = ['host', 'devices', 'spawnRate', 'runTime', 'interval', 'qos', 'mqttVersion', 'thresholds'];
/** The second group: who the devices are and how they reach the broker. */
const CONNECTION = [
  'username',
  'password',
  'ca',
  'cert',
  'key',
  'insecure',
  'servername',
  'tlsVersion',
  'consumer',
  'consumerHost',
  'consumerCert',
  'consumerKey',
];

interface JsonProp {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonProp[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
}

/** Is this key's value a secret (src/redact.ts decides: password, token, key, sas, connection string …)? */
export function isSecretKey(key: string): boolean {
  return (redactSecrets({ [key]: 'x' }) as Record<string, unknown>)[key] === '***';
}

const optionOf = new Map<string, ScenarioOption>(SCENARIO_OPTIONS.map((o) => [o.key, o]));

/** Values of an enum field (also inside anyOf); empty when any free text is allowed. */
function choices(p: JsonProp): string[] {
  const parts = p.anyOf ?? [p];
  const out: string[] = [];
  for (const part of parts) {
    if (part.enum) out.push(...part.enum.map(String));
    else if (part.const !== undefined) out.push(String(part.const));
    else return [];
  }
  return [...new Set(out)];
}

function fieldOf(key: string, p: JsonProp): FormField {
  const opt = optionOf.get(key);
  const kind = RUN_KINDS[key as keyof typeof RUN_KINDS];
  const values = choices(p);
  const input: FieldInput = isSecretKey(key)
    ? 'secret'
    : kind === 'boolean'
      ? 'checkbox'
      : kind === 'list'
        ? 'list'
        : values.length > 0
          ? 'select'
          : kind === 'number'
            ? 'number'
            : 'text';
  const field: FormField = { key, flag: opt?.flag ?? key, input };
  if (input === 'select') field.options = values;
  if (p.default !== undefined) {
    field.default = Array.isArray(p.default) ? p.default.map(String).join('\n') : String(p.default);
  }
  if (p.description) field.description = p.description;
  if (typeof p.minimum === 'number') field.min = p.minimum;
  if (typeof p.maximum === 'number') field.max = p.maximum;
  return field;
}

/**
 * The form: every key of the scenario schema but the UI's own, grouped. A FLEETLOAD_* variable of `env` is the
 * default of its field (an empty field takes it, as on the command line), shown unless it is a secret.
 */
export function formModel(env: Record<string, string | undefined> = {}): FormModel {
  const schema = scenarioJsonSchema() as { properties: Record<string, JsonProp> };
  const fields = Object.entries(schema.properties)
    .filter(([key]) => !UI_OWNED_KEYS.includes(key))
    .map(([key, p]) => {
      const f = fieldOf(key, p);
      const name = optionOf.get(key)?.env;
      const value = name === undefined ? undefined : env[name];
      if (name !== undefined && value !== undefined && value !== '') {
        f.fromEnv = name;
        f.default = f.input === 'secret' ? '***' : redactSecrets(value);
      }
      return f;
    });
  const pick = (keys: readonly string[]) =>
    keys.map((k) => fields.find((f) => f.key === k)).filter((f): f is FormField => f !== undefined);
  return {
    groups: [
      { id: 'common', title: 'Load', fields: pick(COMMON) },
      { id: 'connection', title: 'Connection and TLS', fields: pick(CONNECTION) },
      {
        id: 'more',
        title: 'More',
        fields: fields.filter((f) => !COMMON.includes(f.key) && !CONNECTION.includes(f.key)),
      },
    ],
  };
}

/**
 * The form's values (key → text, or true for a ticked box) as flag values keyed like parseRunArgs' output.
 * Empty fields and unticked boxes are not given (the environment's FLEETLOAD_* or the default applies, as on the
 * command line). Problems are worded like the CLI's flag problems.
 */
export function formFlags(values: unknown): { flags: Record<string, unknown>; problems: string[] } {
  const flags: Record<string, unknown> = {};
  const problems: string[] = [];
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    return { flags, problems: ['the form must be sent as a JSON object of field → text'] };
  }
  for (const [key, v] of Object.entries(values)) {
    const opt = optionOf.get(key);
    if (!opt || UI_OWNED_KEYS.includes(key)) {
      problems.push(`${JSON.stringify(key).slice(0, 60)}: not a field of the form`);
      continue;
    }
    if (v === undefined || v === null || v === false || v === '') continue;
    if (opt.kind === 'boolean') {
      if (v === true) flags[key] = true;
      else problems.push(`--${opt.flag}: a box is ticked or not (true/false), not ${JSON.stringify(v)}`);
      continue;
    }
    if (typeof v !== 'string') {
      problems.push(`--${opt.flag}: must be sent as text`);
      continue;
    }
    if (v.trim() === '') continue;
    const converted = convertText(opt.kind, v);
    if ('problem' in converted) problems.push(`--${opt.flag}: ${converted.problem}`);
    else if (opt.kind === 'list' && (converted.value as string[]).length === 0) continue;
    else flags[key] = converted.value;
  }
  return { flags, problems };
}

/** FLEETLOAD_* variables of the UI's own settings: a run started by the UI never takes them from the environment. */
export const UI_OWNED_ENV: readonly string[] = UI_OWNED_KEYS.map((k) => optionOf.get(k)?.env ?? '').filter(
  (e) => e !== '',
);

/** The environment a run of the UI sees: the UI's own, minus the UI-owned settings. */
export function runEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (!UI_OWNED_ENV.includes(k)) out[k] = v;
  return out;
}

/** A run the loader accepted, ready to start as a `fleetload run` process. */
export interface PreparedRun {
  runId: string;
  scenario: Scenario;
  /** the child's arguments (after the CLI's path), no secret among them */
  argv: string[];
  /** FLEETLOAD_<FLAG> variables carrying the secret values (kept out of the command line) */
  secretEnv: Record<string, string>;
  /** the equivalent command, secrets as *** */
  command: string;
  /** the scenario file of what was given, secrets as *** */
  yaml: string;
  warnings: string[];
}

export interface PrepareContext {
  env: Record<string, string | undefined>;
  cwd: string;
  /** the UI's results folder (--out) */
  out: string;
}

/** Is this value kept out of the command line (a secret key, or a URL with a password)? */
function secretValue(key: string, v: unknown): boolean {
  const text = Array.isArray(v) ? v.join('\n') : String(v);
  return isSecretKey(key) || redactSecrets(text) !== text;
}

/** `--flag=value` arguments of the given flags (lists repeated, booleans bare). */
function flagArgs(flags: Record<string, unknown>, inline: boolean): string[] {
  const args: string[] = [];
  for (const [key, v] of Object.entries(flags)) {
    const flag = `--${optionOf.get(key)?.flag ?? key}`;
    if (v === true) args.push(flag);
    else
      for (const item of Array.isArray(v) ? v : [v]) {
        if (inline) args.push(`${flag}=${String(item)}`);
        else args.push(flag, String(item));
      }
  }
  return args;
}

/** A word as a POSIX shell reads it back. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_/.:,=@%+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * The form's values checked by the CLI's loader, with what the UI controls set (results folder, a loopback
 * dashboard on a free port): the problems the CLI would print, or the run to start.
 */
export function prepareRun(
  values: unknown,
  ctx: PrepareContext,
): { problems: string[]; command?: string; yaml?: string } | PreparedRun {
  const { flags: given, problems } = formFlags(values);
  problems.push(...fileProblems(given, ctx));
  if (problems.length > 0) return { problems };
  const shown = showRun(given, ctx.out);
  const env = runEnv(ctx.env);
  const owned = { out: ctx.out, webHost: '127.0.0.1', webPort: 0 };
  let loaded: ReturnType<typeof loadScenario>;
  try {
    loaded = loadScenario({ flags: { ...given, ...owned }, env, cwd: ctx.cwd });
  } catch (e) {
    if (isFleetloadError(e)) return { problems: [...e.problems], ...shown };
    throw e;
  }
  const runId = loaded.scenario.runId;
  const plain: Record<string, unknown> = {};
  const secretEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(given)) {
    if (!secretValue(k, v)) plain[k] = v;
    else {
      const name = optionOf.get(k)?.env ?? `${ENV_PREFIX}${k.toUpperCase()}`;
      secretEnv[name] = Array.isArray(v) ? v.join('\n') : String(v);
    }
  }
  const argv = [
    'run',
    ...flagArgs(plain, true),
    ...(given.runId === undefined ? [`--run-id=${runId}`] : []),
    ...flagArgs(owned, true),
  ];
  return { runId, scenario: loaded.scenario, argv, secretEnv, ...shown, warnings: loaded.warnings };
}

/** Settings that name files the run reads (cert and key may be templates such as certs/{deviceId}.pem). */
export const FILE_KEYS: readonly string[] = ['payload', 'ca', 'cert', 'key', 'consumerCert', 'consumerKey'];

/** Is `path` (absolute) inside `root` (absolute) or `root` itself? */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The path with its links resolved, or undefined when it does not exist (the loader then says so). */
function real(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The form's file fields are confined to the UI's working directory and the results folder's parent: the UI reads
 * them with its own permissions for whoever may use it, and a run sends a payload file's text to the broker the
 * form names. Anything else is refused, naming the field and the folders (the UI's environment, FLEETLOAD_CA
 * and the like, is the operator's and not confined).
 */
export function fileProblems(given: Record<string, unknown>, ctx: PrepareContext): string[] {
  const roots = [...new Set([resolve(ctx.cwd), dirname(resolve(ctx.cwd, ctx.out))])];
  const realRoots = roots.map((r) => real(r) ?? r);
  const problems: string[] = [];
  for (const key of FILE_KEYS) {
    const v = given[key];
    if (typeof v !== 'string') continue;
    const path = resolve(ctx.cwd, v);
    // as written, and where its links lead (a link in the folder may point anywhere)
    const target = real(path);
    const ok =
      roots.some((r) => inside(r, path)) &&
      (target === undefined || realRoots.some((r) => inside(r, target)));
    if (ok) continue;
    const flag = optionOf.get(key)?.flag ?? key;
    problems.push(
      `${key}: ${v.length > 200 ? `${v.slice(0, 200)}…` : v} is outside the folders fleetload ui reads files from ` +
        `(${roots.join(', ')}); copy it there, or start fleetload ui in a folder that holds it (from --${flag})`,
    );
  }
  return problems;
}

/** The equivalent command and scenario file of what was given, secrets as ***. */
function showRun(given: Record<string, unknown>, out: string): { command: string; yaml: string } {
  const shown = redactSecrets(given);
  const command = ['fleetload', 'run', ...flagArgs(shown, false), '--out', out].map(shellWord).join(' ');
  const secrets = Object.entries(given).some(([k, v]) => secretValue(k, v));
  const yaml =
    Object.keys(shown).length === 0
      ? '# every setting at its default\n{}\n'
      : `# fleetload run scenario.yaml${secrets ? ' (secrets shown as ***: fill them in)' : ''}\n${stringify(shown)}`;
  return { command, yaml };
}
