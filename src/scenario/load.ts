import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { type Document, isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { FleetloadError } from '../errors.js';
import { firstNonLocal, keyPairProblem, outputFileProblem, overlongTemplates } from './checks.js';
import { InputFileError, outProblem, readErrorWords, readInputFile } from './files.js';
import {
  ALL_ENV_NAMES,
  closest,
  convertText,
  ENV_PREFIX,
  JOB_INDEX_ENV,
  RUN_KINDS,
  SCENARIO_OPTIONS,
  type ScenarioOption,
  SEGMENTS_ENV,
} from './options.js';
import { payloadTemplateProblems } from './payload-template.js';
import { applyPresetDefaults, identityProblems } from './presets.js';
import {
  defaultRunId,
  hostCredentials,
  MAX_DURATION_MS,
  type Scenario,
  scenarioInput,
  toScenario,
} from './schema.js';
import { compileTemplate } from './template.js';

export { redactSecrets } from '../redact.js';
export { closest, convertText, type OptionKind, SCENARIO_OPTIONS, type ScenarioOption } from './options.js';

/**
 * Loads a scenario from its sources — flags > FLEETLOAD_* env > YAML file > schema defaults — and validates the
 * merged object once, so every problem is reported together with its path and the source it came from.
 * `fleetload consume` goes through the same steps (mergeSources, schemaProblems) with its own schema.
 */

/** Where each top-level key came from: `from --devices`, `from FLEETLOAD_DEVICES`, `file`, or `default`. */
export type Provenance = Map<string, string>;

/**
 * Merges FLEETLOAD_* (and alias) environment variables, then flags, over `merged`. Env text is converted per the
 * option's kind; a near miss of a setting's name is a problem, another command's setting is ignored, anything
 * else is ignored with a warning (it may belong to another tool).
 */
export function mergeSources(
  merged: Record<string, unknown>,
  from: Provenance,
  o: {
    env: Record<string, string | undefined>;
    flags: Record<string, unknown>;
    options: readonly ScenarioOption[];
  },
  problems: string[],
  warnings: string[],
): void {
  const byEnv = new Map(o.options.map((opt) => [opt.env, opt]));
  for (const [name, text] of Object.entries(o.env)) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined || text === '' || byEnv.has(name)) continue;
    if (ALL_ENV_NAMES.has(name)) continue;
    const near = closest(name, [...byEnv.keys()], ENV_PREFIX.length);
    if (near) problems.push(`${name}: unknown environment variable; did you mean ${near}?`);
    else warnings.push(`ignoring ${name}: not a fleetload setting`);
  }
  for (const opt of o.options) {
    const name = [opt.env, ...(opt.aliases ?? [])].find((n) => o.env[n] !== undefined && o.env[n] !== '');
    if (name === undefined) continue;
    const converted = convertText(opt.kind, o.env[name] as string);
    if ('problem' in converted) problems.push(`${opt.key}: ${converted.problem} (from ${name})`);
    else {
      merged[opt.key] = converted.value;
      from.set(opt.key, `from ${name}`);
    }
  }
  const byKey = new Map(o.options.map((opt) => [opt.key, opt]));
  for (const [k, v] of Object.entries(o.flags)) {
    if (v === undefined) continue;
    merged[k] = v;
    from.set(k, `from --${byKey.get(k)?.flag ?? k}`);
  }
}

/** The schema's issues as `path: message (source)` lines; unknown keys get a "did you mean". */
export function schemaProblems(
  issues: readonly z.core.$ZodIssue[],
  knownKeys: readonly string[],
  source: (path: readonly PropertyKey[]) => string,
): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        // a nested object's keys are not settings: no hint from the top-level names there
        const near = issue.path.length === 0 ? closest(k, knownKeys) : undefined;
        const path = [...issue.path, k];
        problems.push(
          `${path.map(String).join('.')}: unknown key${near ? `; did you mean ${near}?` : ''} (${source(path)})`,
        );
      }
    } else {
      problems.push(
        `${issue.path.map(String).join('.') || '(scenario)'}: ${issue.message} (${source(issue.path)})`,
      );
    }
  }
  return problems;
}

export interface LoadOptions {
  file?: string;
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  cwd: string;
  now?: Date;
}

export function loadScenario(opts: LoadOptions): {
  scenario: Scenario;
  resolved: Record<string, unknown>;
  /** things worth a line on stderr that do not stop the run */
  warnings: string[];
} {
  const warnings: string[] = [];
  const merged: Record<string, unknown> = {};
  /** Where each top-level key came from; `file` is resolved to file:line when a problem is reported. */
  const from: Provenance = new Map();
  const problems: string[] = [];

  const file = opts.file !== undefined ? readScenarioFile(opts.file, opts.cwd) : undefined;
  // a file's paths are the file's: relative ones are taken from its folder (flags and env from the cwd)
  if (file && opts.file !== undefined)
    filePathsFrom(file.values, dirname(resolve(opts.cwd, opts.file)), opts.cwd);
  for (const [k, v] of Object.entries(file?.values ?? {})) {
    // defined, not assigned: a `__proto__:` key must be an unknown key, not the merged object's prototype
    Object.defineProperty(merged, k, { value: v, enumerable: true, writable: true, configurable: true });
    from.set(k, 'file');
  }
  mergeSources(merged, from, { ...opts, options: SCENARIO_OPTIONS }, problems, warnings);
  segmentFromIndexedJob(merged, from, opts.env, problems);

  const source = (path: readonly PropertyKey[]): string => {
    const s = from.get(String(path[0])) ?? 'default';
    if (s !== 'file' || !file) return s;
    const line = lineOf(file.doc, file.lines, path);
    return line === undefined ? String(opts.file) : `${opts.file}:${line}`;
  };

  // A cloud preset fills in host, topic, clientId, consumer when not given (src/identity).
  applyPresetDefaults(merged, from);

  const result = scenarioInput.safeParse(merged, { error: describeIssue });
  if (!result.success) problems.push(...schemaProblems(result.error.issues, Object.keys(RUN_KINDS), source));
  // Cross-field checks, on the merged input so they are reported alongside field problems.
  problems.push(...crossFieldProblems(merged, (k) => source([k])));
  problems.push(...influxProblems(merged, source, warnings));

  let payloadTemplate: string | undefined;
  if (result.success) {
    const draft = toScenario(result.data, result.data.runId ?? defaultRunId(opts.now));
    problems.push(...machineProblems(draft, opts.cwd, (k) => source([k])));
    payloadTemplate = readPayloadTemplate(draft, result.data.payload, opts.cwd, source, problems);
    if (problems.length === 0) {
      draft.payloadTemplate = payloadTemplate;
      return { scenario: draft, resolved: rerunnable(result.data, opts.cwd), warnings };
    }
  }
  throw new FleetloadError('E_SCENARIO', problems);
}

/**
 * A Kubernetes Indexed Job's pod: JOB_COMPLETION_INDEX with FLEETLOAD_SEGMENTS=N is segment index/N, below
 * --segment and FLEETLOAD_SEGMENT (above the file). The schema checks the result, naming both variables.
 */
function segmentFromIndexedJob(
  merged: Record<string, unknown>,
  from: Provenance,
  env: Record<string, string | undefined>,
  problems: string[],
): void {
  const count = env[SEGMENTS_ENV];
  if (count === undefined || count === '') return;
  const given = from.get('segment');
  if (given !== undefined && given !== 'file') return;
  const index = env[JOB_INDEX_ENV];
  if (index === undefined || index === '') {
    problems.push(
      `segment: ${SEGMENTS_ENV}=${count} needs ${JOB_INDEX_ENV} (a Kubernetes Indexed Job sets it); outside one, set FLEETLOAD_SEGMENT=i/N (from ${SEGMENTS_ENV})`,
    );
    return;
  }
  merged.segment = `${index.trim()}/${count.trim()}`;
  from.set('segment', `from ${JOB_INDEX_ENV} and ${SEGMENTS_ENV}`);
}

/** Settings that name files (templates included); `deviceKey` only as `@FILE`. */
const PATH_KEYS = ['payload', 'ca', 'cert', 'key', 'consumerCert', 'consumerKey', 'deviceKey'] as const;

/** Applies `fix` to the path in a path setting's value; undefined when the value is not a path. */
function mapPath(key: string, v: unknown, fix: (path: string) => string): string | undefined {
  if (!(PATH_KEYS as readonly string[]).includes(key) || typeof v !== 'string' || v === '') return undefined;
  if (key === 'deviceKey') return v.startsWith('@') && v.length > 1 ? `@${fix(v.slice(1))}` : undefined;
  return fix(v);
}

/**
 * Rewrites the relative paths of a scenario file's values so they name files next to the file: as seen from the
 * cwd (what every later step resolves against), e.g. `payload: p.json` in `sub/s.yaml` becomes `sub/p.json`.
 */
function filePathsFrom(values: Record<string, unknown>, fileDir: string, cwd: string): void {
  for (const k of PATH_KEYS) {
    if (!Object.hasOwn(values, k)) continue;
    const fixed = mapPath(k, values[k], (p) =>
      isAbsolute(p) ? p : relative(cwd, resolve(fileDir, p)) || '.',
    );
    if (fixed !== undefined) values[k] = fixed;
  }
}

/**
 * The scenario as scenario.yaml keeps it, so that `fleetload run <folder>/scenario.yaml` runs it again: no run id
 * (the run gets a new one, and a new folder), file paths absolute (the file no longer sits where they were
 * given), and with stages no fleet size or run time (stages set them; both together are refused).
 */
function rerunnable(data: Record<string, unknown>, cwd: string): Record<string, unknown> {
  const resolved: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    if (v === undefined || k === 'runId') continue;
    if (data.stages !== undefined && (k === 'devices' || k === 'runTime')) continue;
    resolved[k] = mapPath(k, v, (p) => resolve(cwd, p)) ?? v;
  }
  return resolved;
}

const isV5 = (m: Record<string, unknown>): boolean => m.mqttVersion === '5' || m.mqttVersion === 5;

/** Rules between settings, checked on the merged input (each problem names the key and its source). */
function crossFieldProblems(merged: Record<string, unknown>, source: (key: string) => string): string[] {
  const problems: string[] = [];
  const add = (k: string, msg: string): void => {
    problems.push(`${k}: ${msg} (${source(k)})`);
  };
  const v5 = isV5(merged);
  if (v5 && merged.host === undefined) {
    add(
      'mqttVersion',
      '5 needs an external broker: the embedded broker (aedes) speaks MQTT 3.1.1 only; ' +
        'pass --host mqtt://… of a v5 broker such as Mosquitto',
    );
  }
  const consumerHost = typeof merged.consumerHost === 'string' ? merged.consumerHost : undefined;
  if (merged.consumer === 'nats' && !/^(nats|tls):\/\//i.test(consumerHost ?? '')) {
    add('consumer', 'nats needs --consumer-host nats://host:4222 (the JetStream server)');
  }
  if (
    (merged.consumer ?? 'mqtt') === 'mqtt' &&
    consumerHost !== undefined &&
    /^nats:\/\//i.test(consumerHost)
  ) {
    add(
      'consumerHost',
      'is a NATS server; the mqtt consumer needs mqtt://, mqtts://, ws:// or wss:// (or --consumer nats)',
    );
  }
  if (merged.consumer === 'eventhubs' && merged.eventhubConnectionString === undefined) {
    add('consumer', 'eventhubs needs --eventhub-connection-string (FLEETLOAD_EVENTHUB_CONNECTION_STRING)');
  }
  if (merged.stages !== undefined) {
    for (const k of ['devices', 'runTime'] as const) {
      if (merged[k] !== undefined) {
        add(
          k,
          `stages set the fleet size and the run time; drop ${k === 'devices' ? '--devices' : '--run-time'} or the stages`,
        );
      }
    }
  }
  if (merged.keepUi === true && merged.headless === true) {
    add('keepUi', 'keeps the dashboard up after the run, and --headless has none; drop one of them');
  }
  const segments = typeof merged.segment === 'string' ? /\/\s*(\d+)\s*$/.exec(merged.segment) : null;
  const workers = merged.workers;
  if (segments && Number(segments[1]) > 1 && workers !== undefined && String(workers) !== '1') {
    add(
      'segment',
      `cannot be combined with --workers (each worker runs a segment of the whole fleet); run one process per segment, or drop --segment`,
    );
  }
  if (!v5 && merged.encoding === 'properties') {
    add(
      'encoding',
      'properties puts the metadata in MQTT 5 user properties; add --mqtt-version 5 or use --encoding json or binary',
    );
  }
  // a user in the broker URL (mqtt://u:pw@host) is a username as --username is
  const user = merged.username ?? hostCredentials(merged.host).username;
  if (!v5 && (merged.password ?? hostCredentials(merged.host).password) !== undefined && user === undefined) {
    add(
      'password',
      'MQTT 3.1.1 does not allow a password without a username [MQTT-3.1.2-22]; add --username or use --mqtt-version 5',
    );
  }
  return problems;
}

/** Checks against the machine and the resolved values: files, keys, addresses, lengths, the results folder. */
function machineProblems(s: Scenario, cwd: string, source: (key: string) => string): string[] {
  // TLS and identities: preset needs, conflicts, readable CA and device-0 certificate files (src/identity).
  const problems = identityProblems(s, { cwd, source, readFile: (p) => readInputFile(p) });
  const add = (k: string, msg: string): void => {
    problems.push(`${k}: ${msg} (${source(k)})`);
  };
  if (s.reconnectMinMs > s.reconnectMaxMs) {
    add(
      'reconnectMin',
      `must not be above reconnectMax (${s.reconnectMaxMs} ms); lower --reconnect-min or raise --reconnect-max`,
    );
  }
  if (s.stages && s.runTimeMs > MAX_DURATION_MS) add('stages', 'last longer than 7 days in total');
  if (s.cert !== undefined && s.key !== undefined && !problems.some((p) => /^(cert|key):/.test(p))) {
    const vars = { index: 0, runId: s.runId };
    const id0 = compileTemplate(s.deviceId)(vars);
    const path = (t: string) => compileTemplate(t)({ ...vars, deviceId: id0 });
    const p = keyPairProblem(path(s.cert), path(s.key), cwd);
    if (p) add('key', p);
  }
  if (
    s.consumerCert !== undefined &&
    s.consumerKey !== undefined &&
    !problems.some((p) => /^consumer(Cert|Key):/.test(p))
  ) {
    const p = keyPairProblem(s.consumerCert, s.consumerKey, cwd);
    if (p) add('consumerKey', p);
  }
  const foreign = firstNonLocal(s.sourceIps);
  if (foreign !== undefined) {
    add('sourceIp', `${foreign} is not an address of this machine (see ip addr); give local addresses only`);
  }
  const templates = {
    topic: s.topic,
    clientId: s.clientId,
    username: s.username,
    commandTopic: s.commandTopic,
  };
  for (const p of overlongTemplates(templates, s.deviceId, s.runId, s.devices)) {
    const k = p.slice(0, p.indexOf(':'));
    problems.push(`${p} (${source(k)})`);
  }
  const out = outProblem(s.out, s.runId, cwd);
  if (out) add('out', out);
  const junit = s.junit === undefined ? undefined : outputFileProblem(s.junit, cwd);
  if (junit) add('junit', junit);
  return problems;
}

/** The --payload template, read and checked now (a typo in it is input, exit 2); it travels as text. */
function readPayloadTemplate(
  s: Scenario,
  file: string | undefined,
  cwd: string,
  source: (path: readonly PropertyKey[]) => string,
  problems: string[],
): string | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readInputFile(resolve(cwd, file)).toString('utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = e instanceof InputFileError ? e.message : (code ?? (e as Error).message);
    problems.push(`payload: cannot read ${file}: ${why} (${source(['payload'])})`);
    return undefined;
  }
  for (const p of payloadTemplateProblems(text, s.encoding)) {
    problems.push(`payload: ${file}: ${p} (${source(['payload'])})`);
  }
  return text;
}

/**
 * InfluxDB settings: a URL needs either a 1.x database or a 2.x/3.x org + bucket + token. Settings without a URL
 * (e.g. a token in the environment) write nothing: a warning, not an error.
 */
export function influxProblems(
  m: Record<string, unknown>,
  source: (path: readonly PropertyKey[]) => string,
  warnings: string[],
): string[] {
  const keys = [
    'influxDb',
    'influxUser',
    'influxPassword',
    'influxOrg',
    'influxBucket',
    'influxToken',
    'influxRequired',
  ];
  if (m.influxUrl === undefined) {
    const set = keys.filter((k) => m[k] !== undefined && m[k] !== false);
    if (set.length > 0)
      warnings.push(`${set.join(', ')} set without influxUrl (--influx-url): nothing is written to InfluxDB`);
    return [];
  }
  const v1 = m.influxDb !== undefined;
  const v2 = m.influxOrg !== undefined && m.influxBucket !== undefined && m.influxToken !== undefined;
  if (v1 || v2) return [];
  return [
    'influxUrl: InfluxDB needs either --influx-db DB (1.x) or --influx-org, --influx-bucket and --influx-token ' +
      `(2.x/3.x) (${source(['influxUrl'])})`,
  ];
}

/** How many aliases a scenario file may expand: a "billion laughs" file is refused, not expanded. */
const MAX_YAML_ALIASES = 100;

function readScenarioFile(
  file: string,
  cwd: string,
): { doc: Document; lines: LineCounter; values: Record<string, unknown> } {
  let text: string;
  try {
    text = readInputFile(resolve(cwd, file)).toString('utf8');
  } catch (e) {
    throw new FleetloadError('E_FILE', `cannot read scenario file ${file}: ${readErrorWords(e)}`, {
      cause: e,
    });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const { line, col } = lines.linePos(err.pos[0]);
    const first = err.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '');
    const what = /call stack/i.test(first ?? '') ? 'nested too deeply' : first;
    throw new FleetloadError('E_FILE', `${file}:${line}:${col}: ${what}`, { cause: err });
  }
  if (doc.contents === null) {
    throw new FleetloadError(
      'E_FILE',
      `${file}: the file is empty; a scenario file is a mapping of settings, e.g. "devices: 100"`,
    );
  }
  let values: unknown;
  try {
    values = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    throw new FleetloadError(
      'E_FILE',
      `${file}: too many alias expansions (more than ${MAX_YAML_ALIASES}): ${(e as Error).message}; write the values out`,
      { cause: e },
    );
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new FleetloadError(
      'E_FILE',
      `${file}: a scenario file must be a mapping of settings, e.g. "devices: 100"`,
    );
  }
  return { doc, lines, values: values as Record<string, unknown> };
}

/** Line of the value at `path` in the YAML document, falling back to the line of its top-level key. */
function lineOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  const node = path.length > 1 ? doc.getIn(path as unknown[], true) : undefined;
  if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
    return lines.linePos(node.range[0] as number).line;
  }
  if (!isMap(doc.contents)) return undefined;
  for (const pair of doc.contents.items) {
    if (isScalar(pair.key) && pair.key.value === path[0] && pair.key.range) {
      return lines.linePos(pair.key.range[0]).line;
    }
  }
  return undefined;
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** Words zod's generic issues for a person; messages set in the schema take precedence over these. */
export function describeIssue(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'is required';
      const want: Record<string, string> = {
        number: 'a number',
        int: 'a whole number',
        string: 'text',
        boolean: 'true or false',
        array: 'a list',
        object: 'a mapping',
      };
      return `must be ${want[iss.expected] ?? iss.expected}, not ${show(iss.input)}`;
    }
    case 'invalid_value':
      return `must be one of ${iss.values.map(String).join(', ')}; got ${show(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'string' && Number(iss.minimum) === 1) return 'must not be empty';
      if (iss.origin === 'array') return `must have at least ${iss.minimum} entries`;
      return iss.inclusive ? `must be at least ${iss.minimum}` : `must be greater than ${iss.minimum}`;
    case 'too_big':
      return iss.inclusive ? `must be at most ${iss.maximum}` : `must be less than ${iss.maximum}`;
    default:
      return undefined;
  }
}
