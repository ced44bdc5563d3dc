import type { ConsumeInput } from './consume-schema.js';
import type { ScenarioInput } from './schema.js';

/**
 * The settings each command takes, as flags and FLEETLOAD_* environment variables, derived from the schemas'
 * keys (camelCase key → --kebab-flag → FLEETLOAD_SNAKE_ENV): one tokenizer and one loader serve every command.
 */

type Key = keyof ScenarioInput & string;
export const ENV_PREFIX = 'FLEETLOAD_';
export type OptionKind = 'string' | 'number' | 'boolean' | 'list';

export interface ScenarioOption {
  key: string;
  /** Long flag without dashes: `spawn-rate`. */
  flag: string;
  short: string | undefined;
  /** `FLEETLOAD_SPAWN_RATE`. */
  env: string;
  kind: OptionKind;
  /** other environment variables for the same setting, below FLEETLOAD_<FLAG> (the seed's names) */
  aliases?: readonly string[];
}

// A Record over every key, so a key added to the schema without a flag fails the typecheck.
/** The time-series sinks' settings (InfluxDB, Prometheus, the hosts /metrics answers to): `run` and `consume` alike. */
const SINK_KINDS = {
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
  webAllowedHosts: 'list',
} as const satisfies Record<string, OptionKind>;

export const RUN_KINDS: Record<Key, OptionKind> = {
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
  tlsVersion: 'string',
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
  natsCreateStream: 'boolean',
  eventhubName: 'string',
  eventhubConnectionString: 'string',
  eventhubConsumerGroup: 'string',
  storageConnectionString: 'string',
  storageContainer: 'string',
  headless: 'boolean',
  keepUi: 'boolean',
  webHost: 'string',
  webPort: 'number',
  thresholds: 'list',
  webToken: 'string',
  accept: 'list',
  junit: 'string',
  minOffered: 'string',
  segment: 'string',
  workers: 'string',
  startAt: 'string',
  lateStart: 'string',
  clockRef: 'string',
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
  ...SINK_KINDS,
};
const shorts: Record<string, string> = {
  host: 'H',
  devices: 'u',
  spawnRate: 'r',
  runTime: 't',
  interval: 'i',
};

function optionsOf(
  kinds: Record<string, OptionKind>,
  short: Record<string, string>,
  aliases: Record<string, readonly string[]> = {},
): readonly ScenarioOption[] {
  return Object.entries(kinds).map(([key, kind]) => {
    const flag =
      key === 'thresholds'
        ? 'threshold'
        : key === 'stages'
          ? 'stage'
          : key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    return {
      key,
      flag,
      short: short[key],
      env: `${ENV_PREFIX}${flag.toUpperCase().replace(/-/g, '_')}`,
      kind,
      ...(aliases[key] ? { aliases: aliases[key] } : {}),
    };
  });
}

export const SCENARIO_OPTIONS: readonly ScenarioOption[] = optionsOf(RUN_KINDS, shorts);

const CONSUME_KINDS: Record<keyof ConsumeInput & string, OptionKind> = {
  host: 'string',
  source: 'string',
  runId: 'string',
  runTime: 'string',
  grace: 'string',
  out: 'string',
  json: 'boolean',
  thresholds: 'list',
  accept: 'list',
  partitionIndex: 'number',
  partitionCount: 'number',
  topic: 'string',
  subject: 'string',
  group: 'string',
  shared: 'string',
  qos: 'number',
  mqttVersion: 'string',
  clientId: 'string',
  username: 'string',
  password: 'string',
  format: 'string',
  fields: 'string',
  natsStream: 'string',
  natsCreateStream: 'boolean',
  eventhubName: 'string',
  eventhubConnectionString: 'string',
  eventhubConsumerGroup: 'string',
  storageConnectionString: 'string',
  storageContainer: 'string',
  connectTimeout: 'string',
  ca: 'string',
  cert: 'string',
  key: 'string',
  servername: 'string',
  insecure: 'boolean',
  tlsVersion: 'string',
  timePort: 'number',
  ...SINK_KINDS,
};

/** `fleetload consume`: the seed's variable names are still read, below FLEETLOAD_<FLAG>. */
export const CONSUME_OPTIONS: readonly ScenarioOption[] = optionsOf(
  CONSUME_KINDS,
  { host: 'H', runTime: 't' },
  {
    partitionIndex: ['PARTITION_INDEX', 'NUM_PARTITION'],
    partitionCount: ['PARTITION_COUNT', 'TOTAL_PARTITION'],
    eventhubName: ['EVENTHUB_NAME'],
    eventhubConnectionString: ['EVENTHUB_CONNECTION_STRING'],
    eventhubConsumerGroup: ['CONSUMER_GROUP'],
    storageConnectionString: ['STORAGE_CONNECTION_STRING'],
    storageContainer: ['STORAGE_CONTAINER'],
  },
);

/**
 * A Kubernetes Indexed Job gives each pod JOB_COMPLETION_INDEX; with FLEETLOAD_SEGMENTS=N beside it, the pod runs
 * segment JOB_COMPLETION_INDEX/N (below FLEETLOAD_SEGMENT and --segment).
 */
export const SEGMENTS_ENV = `${ENV_PREFIX}SEGMENTS`;
export const JOB_INDEX_ENV = 'JOB_COMPLETION_INDEX';

/** FLEETLOAD_* names any command reads: another command's setting in a shared environment is not a typo. */
export const ALL_ENV_NAMES: ReadonlySet<string> = new Set([
  ...[...SCENARIO_OPTIONS, ...CONSUME_OPTIONS].map((o) => o.env),
  SEGMENTS_ENV,
]);

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
    const edits = distance(n, cl);
    // a prefix counts as one edit, the nearer length first: `device` → devices before deviceId, deviceKey
    const prefix = n.length >= 3 && (cl.startsWith(n) || n.startsWith(cl));
    const d = prefix ? Math.min(edits, 1 + Math.abs(cl.length - n.length) / 1000) : edits;
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return Math.floor(bestD) <= Math.max(1, Math.min(3, Math.floor(n.length / 3))) ? best : undefined;
}
