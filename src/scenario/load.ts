import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Document, isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { FleetloadError } from '../errors.js';
import { applyPresetDefaults, identityProblems } from '../identity/identity.js';
import { payloadTemplateProblems } from './payload-template.js';
import { defaultRunId, type Scenario, type ScenarioInput, scenarioInput, toScenario } from './schema.js';

/**
 * Loads a scenario from its sources — flags > FLEETLOAD_* env > YAML file > schema defaults — and validates the
 * merged object once, so every problem is reported together with its path and the source it came from.
 */

type Key = keyof ScenarioInput & string;
const ENV_PREFIX = 'FLEETLOAD_';
export type OptionKind = 'string' | 'number' | 'boolean' | 'list';

export interface ScenarioOption {
  key: Key;
  /** Long flag without dashes: `spawn-rate`. */
  flag: string;
  short: string | undefined;
  /** `FLEETLOAD_SPAWN_RATE`. */
  env: string;
  kind: OptionKind;
}

// A Record over every key, so a key added to the schema without a flag fails the typecheck.
const kinds: Record<Key, OptionKind> = {
  host: 'string',
  consumerHost: 'string',
  username: 'string',
  password: 'string',
  ca: 'string',
  consumerCert: 'string',
  consumerKey: 'string',
  cert: 'string',
  key: 'string',
  insecure: 'boolean',
  servername: 'string',
  preset: 'string',
  hub: 'string',
  deviceKey: 'string',
  groupKey: 'string',
  sasTtl: 'string',
  devices: 'number',
  spawnRate: 'number',
  runTime: 'string',
  interval: 'string',
  jitter: 'string',
  qos: 'number',
  mqttVersion: 'string',
  topic: 'string',
  deviceId: 'string',
  clientId: 'string',
  payloadSize: 'number',
  runId: 'string',
  out: 'string',
  consumer: 'string',
  consumerQos: 'number',
  consumerGroup: 'string',
  natsStream: 'string',
  eventhubName: 'string',
  eventhubConnectionString: 'string',
  eventhubConsumerGroup: 'string',
  storageConnectionString: 'string',
  storageContainer: 'string',
  headless: 'boolean',
  webHost: 'string',
  webPort: 'number',
  webToken: 'string',
  webAllowedHosts: 'list',
  thresholds: 'list',
  accept: 'list',
  minOffered: 'string',
  workers: 'number',
  json: 'boolean',
  keepalive: 'string',
  connectTimeout: 'string',
  grace: 'string',
  inflight: 'number',
  messagesPerDevice: 'number',
  sourceIp: 'list',
  connectRate: 'number',
  reconnectMin: 'string',
  reconnectMax: 'string',
  offline: 'string',
  offlineBuffer: 'number',
  backpressure: 'string',
  commandTopic: 'string',
  tick: 'string',
  sockets: 'string',
  payload: 'string',
  stages: 'list',
  encoding: 'string',
  influxUrl: 'string',
  influxDb: 'string',
  influxUser: 'string',
  influxPassword: 'string',
  influxOrg: 'string',
  influxBucket: 'string',
  influxToken: 'string',
  influxRequired: 'boolean',
  prometheusPort: 'number',
  prometheusHost: 'string',
  prometheusToken: 'string',
  prometheusPublic: 'boolean',
  prometheusGrace: 'string',
};
const shorts: Partial<Record<Key, string>> = {
  host: 'H',
  devices: 'u',
  spawnRate: 'r',
  runTime: 't',
  interval: 'i',
};

export const SCENARIO_OPTIONS: readonly ScenarioOption[] = Object.entries(kinds).map(([key, kind]) => {
  const flag =
    key === 'thresholds'
      ? 'threshold'
      : key === 'stages'
        ? 'stage'
        : key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return {
    key: key as Key,
    flag,
    short: shorts[key as Key],
    env: `${ENV_PREFIX}${flag.toUpperCase().replace(/-/g, '_')}`,
    kind,
  };
});

/** Converts one text value (a flag or env value) to what its key needs; `problem` words what is wrong. */
export function convertText(kind: OptionKind, text: string): { value: unknown } | { problem: string } {
  switch (kind) {
    case 'number': {
      const t = text.trim();
      return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)
        ? { value: Number(t) }
        : { problem: `"${text}" is not a number` };
    }
    case 'boolean': {
      const t = text.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return { value: true };
      if (['0', 'false', 'no', 'off'].includes(t)) return { value: false };
      return { problem: `"${text}" is not a boolean; use true or false` };
    }
    case 'list':
      return {
        value: text
          .split(/[,\n]/)
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      };
    default:
      return { value: text };
  }
}

/** Edit distance counting a swap of neighbours as one edit (HOTS → HOST), for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const up = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] as number, (d[i - 2]?.[j - 2] as number) + 1);
      }
    }
  }
  return d[a.length]?.[b.length] as number;
}

/**
 * The closest candidate to a misspelt name, if one is close enough to be a likely typo. `skip` leading
 * characters shared by every candidate (a prefix such as FLEETLOAD_) are left out of the comparison.
 */
export function closest(name: string, candidates: readonly string[], skip = 0): string | undefined {
  const n = name.slice(skip).toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const cl = c.slice(skip).toLowerCase();
    const d = n.length >= 3 && (cl.startsWith(n) || n.startsWith(cl)) ? 1 : distance(n, cl);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= Math.max(1, Math.min(3, Math.floor(n.length / 3))) ? best : undefined;
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
  const from = new Map<string, string>();
  const problems: string[] = [];

  let doc: Document | undefined;
  let lines: LineCounter | undefined;
  if (opts.file !== undefined) {
    ({ doc, lines } = readScenarioFile(opts.file, opts.cwd));
    const values: unknown = doc.toJS() ?? {};
    if (typeof values !== 'object' || Array.isArray(values)) {
      throw new FleetloadError(
        'E_FILE',
        `${opts.file}: a scenario file must be a mapping of settings, e.g. "devices: 100"`,
      );
    }
    for (const [k, v] of Object.entries(values as Record<string, unknown>)) {
      merged[k] = v;
      from.set(k, 'file');
    }
  }

  const byEnv = new Map(SCENARIO_OPTIONS.map((o) => [o.env, o]));
  for (const [name, text] of Object.entries(opts.env)) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined || text === '') continue;
    const opt = byEnv.get(name);
    if (!opt) {
      // a near miss is a typo of a setting: refuse it; anything else may belong to another tool (CI, a bench
      // script): say it is ignored and go on
      const near = closest(name, [...byEnv.keys()], ENV_PREFIX.length);
      if (near) problems.push(`${name}: unknown environment variable; did you mean ${near}?`);
      else warnings.push(`ignoring ${name}: not a fleetload setting`);
      continue;
    }
    const converted = convertText(opt.kind, text);
    if ('problem' in converted) problems.push(`${opt.key}: ${converted.problem} (from ${name})`);
    else {
      merged[opt.key] = converted.value;
      from.set(opt.key, `from ${name}`);
    }
  }

  const byKey = new Map(SCENARIO_OPTIONS.map((o) => [o.key as string, o]));
  for (const [k, v] of Object.entries(opts.flags)) {
    if (v === undefined) continue;
    merged[k] = v;
    from.set(k, `from --${byKey.get(k)?.flag ?? k}`);
  }

  const source = (path: readonly PropertyKey[]): string => {
    const s = from.get(String(path[0])) ?? 'default';
    if (s !== 'file' || !doc || !lines) return s;
    const line = lineOf(doc, lines, path);
    return line === undefined ? String(opts.file) : `${opts.file}:${line}`;
  };

  // A cloud preset fills in host, topic, clientId, consumer when not given (src/identity).
  applyPresetDefaults(merged, from);

  const result = scenarioInput.safeParse(merged, { error: describeIssue });
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) {
          const near = closest(k, Object.keys(kinds));
          problems.push(`${k}: unknown key${near ? `; did you mean ${near}?` : ''} (${source([k])})`);
        }
      } else {
        problems.push(
          `${issue.path.map(String).join('.') || '(scenario)'}: ${issue.message} (${source(issue.path)})`,
        );
      }
    }
  }

  // Cross-field checks, on the merged input so they are reported alongside field problems.
  if ((merged.mqttVersion === '5' || merged.mqttVersion === 5) && merged.host === undefined) {
    problems.push(
      'mqttVersion: 5 needs an external broker: the embedded broker (aedes) speaks MQTT 3.1.1 only; ' +
        `pass --host mqtt://… of a v5 broker such as Mosquitto (${source(['mqttVersion'])})`,
    );
  }

  if (merged.consumer === 'nats' && !/^(nats|tls):\/\//i.test(String(merged.consumerHost ?? ''))) {
    problems.push(
      `consumer: nats needs --consumer-host nats://host:4222 (the JetStream server) (${source(['consumer'])})`,
    );
  }
  if (merged.consumer === 'eventhubs' && merged.eventhubConnectionString === undefined) {
    problems.push(
      `consumer: eventhubs needs --eventhub-connection-string (FLEETLOAD_EVENTHUB_CONNECTION_STRING) (${source(['consumer'])})`,
    );
  }

  if (merged.stages !== undefined) {
    for (const k of ['devices', 'runTime'] as const) {
      if (merged[k] !== undefined) {
        problems.push(
          `${k}: stages set the fleet size and the run time; drop ${k === 'devices' ? '--devices' : '--run-time'} or the stages (${source([k])})`,
        );
      }
    }
  }
  const v5 = merged.mqttVersion === '5' || merged.mqttVersion === 5;
  if (!v5 && merged.encoding === 'properties') {
    problems.push(
      `encoding: properties puts the metadata in MQTT 5 user properties; add --mqtt-version 5 or use --encoding json or binary (${source(['encoding'])})`,
    );
  }
  if (!v5 && merged.password !== undefined && merged.username === undefined) {
    problems.push(
      `password: MQTT 3.1.1 does not allow a password without a username [MQTT-3.1.2-22]; add --username or use --mqtt-version 5 (${source(['password'])})`,
    );
  }

  // TLS and identities: preset needs, conflicts, readable CA and device-0 certificate files (src/identity).
  if (result.success) {
    const draft = toScenario(result.data, result.data.runId ?? 'run');
    problems.push(...identityProblems(draft, { cwd: opts.cwd, source: (k) => source([k]) }));
  }

  problems.push(...influxProblems(merged, source, warnings));

  // the payload template is read and checked now (a typo in it is input, exit 2), and travels as text
  let payloadTemplate: string | undefined;
  if (result.success && result.data.payload !== undefined) {
    const path = resolve(opts.cwd, result.data.payload);
    try {
      payloadTemplate = readFileSync(path, 'utf8');
    } catch (e) {
      problems.push(
        `payload: cannot read ${result.data.payload}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (${source(['payload'])})`,
      );
    }
    if (payloadTemplate !== undefined) {
      for (const p of payloadTemplateProblems(payloadTemplate, result.data.encoding)) {
        problems.push(`payload: ${result.data.payload}: ${p} (${source(['payload'])})`);
      }
    }
  }

  if (problems.length > 0 || !result.success) throw new FleetloadError('E_SCENARIO', problems);

  const scenario = toScenario(result.data, defaultRunId(opts.now));
  scenario.payloadTemplate = payloadTemplate;
  const resolved: Record<string, unknown> = { runId: scenario.runId };
  for (const [k, v] of Object.entries(result.data)) {
    if (v !== undefined) resolved[k] = v;
  }
  return { scenario, resolved, warnings };
}

/**
 * InfluxDB settings: a URL needs either a 1.x database or a 2.x/3.x org + bucket + token. Settings without a URL
 * (e.g. a token in the environment) write nothing: a warning, not an error.
 */
function influxProblems(
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

function readScenarioFile(file: string, cwd: string): { doc: Document; lines: LineCounter } {
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (e as Error).message;
    throw new FleetloadError('E_FILE', `cannot read scenario file ${file}: ${why}`, { cause: e });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const { line, col } = lines.linePos(err.pos[0]);
    const what = err.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '');
    throw new FleetloadError('E_FILE', `${file}:${line}:${col}: ${what}`, { cause: err });
  }
  return { doc, lines };
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
function describeIssue(iss: z.core.$ZodRawIssue): string | undefined {
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

const SECRET_KEY = /(password|passwd|token|key|secret|sas|connectionstring)$/i;
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]+@/gi;
const CONN_STRING_SECRET = /\b(SharedAccessKey|SharedAccessSignature|AccountKey|Password|Pwd)=[^;]*/gi;

/**
 * A copy of `value` with secrets replaced by "***": values of keys named like password/token/key/secret/sas/
 * connectionString (case-insensitive, also as a suffix: sasToken, sharedAccessKey), URL passwords
 * (`mqtt://user:***@host`) and `SharedAccessKey=***` inside connection strings, at any depth.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value) as T;
}

function redact(v: unknown, key?: string): unknown {
  if (key !== undefined && SECRET_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'object') {
    return '***';
  }
  if (typeof v === 'string') return v.replace(URL_USERINFO, '$1***@').replace(CONN_STRING_SECRET, '$1=***');
  if (Array.isArray(v)) return v.map((x) => redact(x, key));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x, k)]));
  }
  return v;
}
