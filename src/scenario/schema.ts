import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { FleetloadError } from '../errors.js';
import { redactText } from '../redact.js';
import { parseThreshold } from '../stats/thresholds.js';
import { parseClockRef } from '../timesync.js';
import { expandSourceIps, MQTT_STRING_MAX_BYTES, sourceIpItems, sourceIpProblem } from './checks.js';
import { formatDuration, parseDurationMs } from './duration.js';
import { templateProblems } from './template.js';

/** `--start-at`: RFC 3339 with a zone, or +DURATION from when the scenario is loaded. */
const START_AT_MAX_MS = 7 * 24 * 3600 * 1000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;

export function resolveStartAt(text: string, nowMs: number): number {
  const t = text.trim();
  if (t.startsWith('+')) return nowMs + (parseDurationMs(t.slice(1)) ?? Number.NaN);
  return RFC3339.test(t) ? Date.parse(t) : Number.NaN;
}

function startAtProblem(text: string): string | undefined {
  const at = resolveStartAt(text, Date.now());
  if (!Number.isFinite(at)) return 'not an instant';
  return Math.abs(at - Date.now()) > START_AT_MAX_MS ? 'more than 7 days away' : undefined;
}

/** generator processes one run may fork (`--workers`) */
export const MAX_WORKERS = 64;

/** Validity checks of a run (src/run/verdict.ts) that a user may accept when they fail. */
export const VALIDITY_CHECKS = ['connected', 'offered', 'observed', 'saturated'] as const;
export type ValidityCheck = (typeof VALIDITY_CHECKS)[number];

/**
 * The scenario as a user writes it (YAML file, flags, FLEETLOAD_* env): camelCase keys, durations as text.
 * One schema validates every source after merging; unknown keys are rejected.
 * `resolveScenario` turns it into the plain `Scenario` data the rest of fleetload uses (units in names).
 */

/**
 * Messages here name no path: the loader prefixes the path and the source (`devices: must be at least 1
 * (from --devices)`). Generic zod issues (too small, wrong type, not one of) are worded by the loader too.
 */
const DURATION_HINT = 'use e.g. 500ms, 30s, 5m or 1h30m';

/**
 * The longest duration any setting takes (run time, grace, interval …): 7 days. Longer runs are not load tests,
 * and Node's timers cannot wait past 24.8 days (they fire at once).
 */
export const MAX_DURATION_MS = 7 * 24 * 3_600_000;

/** A duration as text or milliseconds; `rule` words a problem with the parsed value, or returns undefined. */
export const duration = (
  rule: (ms: number) => string | undefined = () => undefined,
  maxMs = MAX_DURATION_MS,
) =>
  z
    .union([z.string(), z.number()], { error: `must be a duration; ${DURATION_HINT}` })
    .superRefine((v, ctx) => {
      const ms = parseDurationMs(v);
      const bare = ms === undefined && /^\s*\d+(\.\d+)?\s*$/.test(String(v));
      const problem = bare
        ? `"${v}" has no unit; write ${String(v).trim()}s for seconds or ${String(v).trim()}ms for milliseconds`
        : ms === undefined
          ? `"${v}" is not a duration; ${DURATION_HINT}`
          : !(ms <= maxMs)
            ? `"${v}" is too long: at most ${formatDuration(maxMs)} (${maxMs / 86_400_000} days)`
            : rule(ms);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

const positive = (ms: number) => (ms > 0 ? undefined : 'must be greater than 0');

export const MAX_DEVICES = 10_000_000;

/** A rate per second: > 0, not so small that its period overflows a timer (1 per 1000 s), at most 1M/s. */
const perSecond = z
  .number()
  .positive()
  .max(1_000_000)
  .refine((v) => v <= 0 || v >= 0.001, { message: 'must be at least 0.001 (one per 1000 s)' });

/** What is wrong with a `DURATION:DEVICES` stage, or undefined. */
function stageTextProblem(v: string): string | undefined {
  const m = /^\s*([^:]+):\s*(\d+)\s*$/.exec(v);
  if (!m) return 'a stage is DURATION:DEVICES, e.g. 30s:1000';
  const ms = parseDurationMs(m[1] as string);
  if (ms === undefined || ms <= 0) return `"${m[1]}" in "${v}" is not a duration > 0; ${DURATION_HINT}`;
  if (ms > MAX_DURATION_MS)
    return `"${m[1]}" in "${v}" is too long: at most ${formatDuration(MAX_DURATION_MS)}`;
  if (Number(m[2]) > MAX_DEVICES) return `${m[2]} devices in "${v}": at most ${MAX_DEVICES}`;
  return undefined;
}

/** A template of the given placeholders, at most 65,535 bytes as written (the MQTT limit of a string). */
const template = (placeholders: readonly string[], minLength = 1) =>
  z
    .string()
    .min(minLength)
    .superRefine((v, ctx) => {
      const bytes = Buffer.byteLength(v);
      if (bytes > MQTT_STRING_MAX_BYTES) {
        ctx.addIssue({ code: 'custom', message: `is ${bytes} bytes long; MQTT allows at most 65535` });
        return;
      }
      for (const p of templateProblems(v, placeholders)) ctx.addIssue({ code: 'custom', message: p });
    });

export const MQTT_SCHEMES = ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:', 'tls:'] as const;
export const NATS_SCHEMES = ['nats:', 'tls:'] as const;
const URL_HINT = 'use mqtt://host:1883, mqtts://host:8883, ws://host/mqtt or wss://host/mqtt';
export const NATS_HINT = 'use nats://host:4222';

/** What is wrong with a broker URL for the given schemes, or undefined. The URL is echoed with its password redacted. */
export function brokerUrlProblem(v: string, schemes: readonly string[], hint: string): string | undefined {
  const shown = redactText(v);
  if (v.length > 2048) return `is ${v.length} characters long; a broker URL is at most 2048`;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    // WHATWG URL rejects an out-of-range port as a whole; name the port instead of "not a URL".
    const port = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/i.exec(v)?.[1];
    return port !== undefined && Number(port) > 65535
      ? `port ${port} in "${shown}" is out of range 1-65535`
      : `"${shown}" is not a URL; ${hint}`;
  }
  if (!schemes.includes(u.protocol)) return `scheme "${u.protocol}" in "${shown}" is not supported; ${hint}`;
  if (!u.hostname) return `"${shown}" has no host name; ${hint}`;
  if (u.port === '0') return `port 0 in "${shown}" is out of range 1-65535`;
  return undefined;
}

const brokerUrl = (schemes: readonly string[], hint: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = brokerUrlProblem(v, schemes, hint);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const hostUrl = brokerUrl(MQTT_SCHEMES, URL_HINT);

/** A bearer token of the dashboard or /metrics: RFC 6750 b64token characters (also cookie-safe), 16-512. */
const accessToken = z
  .string()
  .regex(
    /^[A-Za-z0-9._~+/-]{16,512}=*$/,
    'must be 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / - (e.g. from: openssl rand -hex 24)',
  );

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export const hostNames = (v: string): string[] =>
  v
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');

export const DEVICE_PLACEHOLDERS = ['deviceId', 'index', 'runId'] as const;

/** What is wrong with a threshold expression, or undefined. */
function thresholdProblem(expr: string): string | undefined {
  try {
    parseThreshold(expr);
    return undefined;
  } catch (e) {
    if (!(e instanceof FleetloadError)) throw e;
    return e.message;
  }
}

export const thresholdList = z.array(
  z
    .string()
    .min(1)
    .superRefine((v, ctx) => {
      const problem = v === '' ? undefined : thresholdProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
);

export const RUN_ID_RULE =
  'must start with a letter or digit and use only letters, digits, ".", "_" and "-" (max 128)';
export const runIdField = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, RUN_ID_RULE);
export const outField = z
  .string()
  .min(1)
  .max(4096)
  .refine((v) => !v.includes('\u0000'), { message: 'must not contain NUL' });
export const qosField = z.literal([0, 1, 2]);
// YAML reads `mqttVersion: 5` as a number; accept it and hand on the string.
export const mqttVersionField = z.union(
  [z.enum(['3.1.1', '5']), z.literal(5).transform(() => '5' as const)],
  {
    error: 'must be 3.1.1 or 5',
  },
);
// YAML reads `tlsVersion: 1.2` as a number; accept it and hand on the string.
export const tlsVersionField = z.union(
  [
    z.enum(['1.2', '1.3', 'auto']),
    z.literal(1.2).transform(() => '1.2' as const),
    z.literal(1.3).transform(() => '1.3' as const),
  ],
  { error: 'must be 1.2, 1.3 or auto' },
);
/** a path to a file, not empty */
export const fileField = z
  .string()
  .min(1)
  .refine((v) => !v.includes('\u0000'), { message: 'must not contain NUL' });

export const scenarioInput = z.strictObject({
  host: hostUrl.optional().describe('broker URL; absent: embedded broker on a free loopback port'),
  consumerHost: brokerUrl(
    [...MQTT_SCHEMES, ...NATS_SCHEMES],
    `${URL_HINT}; with --consumer nats: nats://host:4222`,
  )
    .optional()
    .describe("where the consumer reads, when not the devices' broker (e.g. a proxy, or nats://)"),
  username: template(DEVICE_PLACEHOLDERS, 0)
    .optional()
    .describe('MQTT username (template: {deviceId} {index} {runId})'),
  password: z.string().optional().describe('MQTT password; never logged, redacted in scenario.yaml'),
  // TLS and device identities (src/identity): files, presets, keys
  ca: fileField.optional().describe('CA certificate file (PEM) that signs the broker certificate'),
  cert: template(DEVICE_PLACEHOLDERS)
    .optional()
    .describe('client certificate file template, e.g. certs/{deviceId}.pem'),
  key: template(DEVICE_PLACEHOLDERS)
    .optional()
    .describe('client private key file template, e.g. certs/{deviceId}.key'),
  consumerCert: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the run's consumer's own client certificate file (PEM), for a broker that requires one when the devices use per-device certificates",
    ),
  consumerKey: z.string().min(1).optional().describe("the run's consumer's private key file (PEM)"),
  insecure: z
    .boolean()
    .optional()
    .describe('TLS: do not verify the broker certificate (mqtts:// and wss:// only)'),
  servername: z
    .string()
    .min(1)
    .optional()
    .describe('TLS server name (SNI and certificate check) when not the host'),
  tlsVersion: tlsVersionField
    .optional()
    .describe(
      'TLS version the devices and the consumer speak: 1.2, 1.3, or auto (the highest both sides know); 1.2 costs less memory per connection and resumes without a key exchange',
    ),
  preset: z
    .enum(['azure-iot-hub', 'aws-iot'])
    .optional()
    .describe('cloud platform preset: identities and defaults'),
  hub: z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/, {
      message: 'must be the IoT hub host name, e.g. NAME.azure-devices.net',
    })
    .optional()
    .describe('azure-iot-hub: IoT hub host name, NAME.azure-devices.net'),
  deviceKey: z
    .string()
    .min(1)
    .optional()
    .describe(
      'azure-iot-hub: device symmetric key (base64), or @FILE template read per device; never logged',
    ),
  groupKey: z
    .string()
    .min(1)
    .optional()
    .describe(
      'azure-iot-hub: DPS group enrollment key (base64); device keys are derived from it; never logged',
    ),
  sasTtl: duration((ms) => (ms >= 10_000 ? undefined : 'must be at least 10s'), 365 * 86_400_000)
    .optional()
    .describe('azure-iot-hub: SAS token lifetime; renewed (reconnect) before it expires; default 1h'),
  devices: z.number().int().min(1).max(MAX_DEVICES).default(100),
  spawnRate: perSecond.default(50).describe('devices started per second'),
  runTime: duration(positive).default('30s').describe('test duration, ramp included'),
  startAt: z
    .string()
    .refine((v) => startAtProblem(v) === undefined, {
      message:
        'must be an RFC 3339 instant (2026-12-01T10:00:00Z) or +DURATION from now (+30s), within 7 days',
    })
    .optional()
    .describe('start the fleet at this instant, so processes on many machines begin together'),
  clockRef: z
    .string()
    .refine((v) => typeof parseClockRef(v) !== 'string', {
      message: 'must be HOST:PORT of a fleetload consume --time-port, e.g. consumer:9999',
    })
    .optional()
    .describe("measure this process's clock against a consumer's (--time-port) and stamp ts in that clock"),
  lateStart: z
    .enum(['fail', 'join'])
    .default('fail')
    .describe('started after --start-at: fail (exit 2, says how late) or join (start at once)'),
  stages: z
    .array(
      z.union([
        z.string().superRefine((v, ctx) => {
          const problem = stageTextProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
        z.strictObject({ duration: duration(positive), devices: z.number().int().min(0).max(MAX_DEVICES) }),
      ]),
    )
    .optional()
    .describe(
      "load stages (k6-style): the fleet moves linearly to each stage's devices over its duration; they set the run time and fleet size",
    ),
  interval: duration((ms) => (ms >= 1 ? undefined : 'must be at least 1ms'))
    .default('1s')
    .describe("time between one device's messages"),
  jitter: duration().default('0ms').describe('random ± offset added to each scheduled send'),
  qos: qosField.default(1),
  mqttVersion: mqttVersionField.default('3.1.1'),
  topic: template(DEVICE_PLACEHOLDERS)
    .refine((v) => !/[+#\u0000]/.test(v), { message: 'a publish topic must not contain +, # or NUL' })
    .default('fleetload/{runId}/{deviceId}'),
  deviceId: template(['index', 'runId']).default('dev-{index:6}'),
  clientId: template(DEVICE_PLACEHOLDERS).default('{deviceId}-{runId}'),
  payload: z
    .string()
    .min(1)
    .optional()
    .describe('payload template file with {{…}} placeholders (JSON object with the json encoding)'),
  payloadSize: z
    .number()
    .int()
    .min(0)
    .max(256 * 1024 * 1024)
    .default(0),
  runId: runIdField.optional(),
  out: outField.default('./fleetload-results'),
  consumer: z.enum(['mqtt', 'nats', 'eventhubs', 'none']).default('mqtt'),
  consumerQos: qosField.optional().describe('consumer subscription QoS; default: qos'),
  consumerGroup: z
    .string()
    .min(1)
    .optional()
    .describe('MQTT shared-subscription group / NATS durable consumer; default: fleetload-<runId>'),
  natsStream: z
    .string()
    .min(1)
    .optional()
    .describe('JetStream stream; default: the one capturing the subject'),
  natsCreateStream: z
    .boolean()
    .optional()
    .describe(
      'create the JetStream stream when none captures the subject (named natsStream or FLEETLOAD, capturing every run of the topic)',
    ),
  eventhubName: z
    .string()
    .min(1)
    .optional()
    .describe('Event Hub name (unless the connection string has EntityPath)'),
  eventhubConnectionString: z.string().min(1).optional().describe('Event Hubs connection string; a secret'),
  eventhubConsumerGroup: z.string().min(1).default('$Default').describe('Event Hubs consumer group'),
  storageConnectionString: z
    .string()
    .min(1)
    .optional()
    .describe('Blob Storage for Event Hubs checkpoints; a secret'),
  storageContainer: z
    .string()
    .min(1)
    .default('fleetload-checkpoints')
    .describe('Blob container for checkpoints'),
  headless: z.boolean().default(false),
  keepUi: z
    .boolean()
    .default(false)
    .describe(
      "keep the dashboard up after the run ends, until Ctrl-C or SIGTERM; the exit code stays the run's",
    ),
  webHost: z.string().min(1).default('127.0.0.1'),
  webPort: z.number().int().min(0).max(65535).default(8089),
  webToken: accessToken
    .optional()
    .describe(
      'dashboard token (a secret, never logged, redacted): required on every request; off loopback one is generated when not given',
    ),
  webAllowedHosts: z
    .array(
      z.string().refine((v) => hostNames(v).every((h) => HOST_NAME.test(h)), {
        message: 'must be host names, e.g. fleetload.example.com (comma-separated or repeated)',
      }),
    )
    .optional()
    .describe('names the dashboard and /metrics may be reached by, besides IP addresses and localhost'),
  thresholds: thresholdList.default([]),
  junit: z
    .string()
    .min(1)
    .optional()
    .describe(
      'write the verdict as a JUnit XML report to this file (one test case per threshold, one for validity)',
    ),
  accept: z
    .array(z.enum(VALIDITY_CHECKS))
    .default([])
    .describe(
      'validity checks to accept when they fail (the run may then pass): connected, offered, observed, saturated',
    ),
  minOffered: z
    .union([
      z.number().min(0).max(1),
      z.string().regex(/^(100|\d{1,2})(\.\d+)?%$/, 'must be a percentage such as 95% (or a fraction 0..1)'),
    ])
    .default('95%')
    .describe('the least share of scheduled messages that must be sent for the run to be valid'),
  segment: z
    .string()
    .superRefine((v, ctx) => {
      const problem = segmentTextProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional()
    .describe(
      'run segment i of N of the fleet (0-based, e.g. 0/4): devices [iD/N, (i+1)D/N) with their global ids and schedule',
    ),
  workers: z
    .union([
      z.number().int().min(1).max(MAX_WORKERS),
      z.string().refine((v) => v === 'auto' || (/^\d+$/.test(v) && +v >= 1 && +v <= MAX_WORKERS), {
        message: `must be a whole number 1..${MAX_WORKERS} or auto (one per core)`,
      }),
    ])
    .default(1)
    .describe('generator processes on this machine, each a segment of the fleet (auto: one per core)'),
  json: z.boolean().default(false),
  keepalive: duration((ms) =>
    ms <= 65_535_000 ? undefined : 'must be at most 65535s (the MQTT limit)',
  ).default('60s'),
  connectTimeout: duration(positive).default('10s'),
  grace: duration().default('5s').describe('after the last send: wait this long for acks and deliveries'),
  inflight: z.number().int().min(1).max(65535).default(64).describe('QoS 1/2 messages in flight per device'),
  sourceIp: z
    .array(z.string())
    .superRefine((values, ctx) => {
      const items = sourceIpItems(values);
      if (items.length === 0) ctx.addIssue({ code: 'custom', message: 'lists no address' });
      for (const item of items) {
        const problem = sourceIpProblem(item);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }
    })
    .optional()
    .describe(
      'local addresses to spread connections over (list or CIDR, e.g. 127.0.0.2,127.0.0.3 or 127.0.1.0/28)',
    ),
  connectRate: perSecond
    .optional()
    .describe(
      'global limit of connection attempts per second, reconnects included (against reconnect storms)',
    ),
  reconnectMin: duration().default('500ms').describe('reconnect backoff base (full jitter)'),
  reconnectMax: duration().default('30s').describe('reconnect backoff cap'),
  offline: z
    .enum(['drop', 'buffer'])
    .default('drop')
    .describe(
      'messages due while a device is offline: drop (counted) or buffer and send as a burst on reconnect',
    ),
  offlineBuffer: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1000)
    .describe('buffered messages per device'),
  backpressure: z
    .enum(['drop', 'wait'])
    .default('drop')
    .describe('in-flight window full: drop the due message (counted) or let it wait in the device buffer'),
  commandTopic: template(DEVICE_PLACEHOLDERS)
    .refine((v) => !v.includes('\u0000'), { message: 'a topic filter must not contain NUL' })
    .optional()
    .describe('each device subscribes to this topic template (commands)'),
  encoding: z
    .enum(['json', 'properties', 'binary'])
    .default('json')
    .describe(
      'where the measurement metadata travels: JSON fields, MQTT 5 user properties, or a binary header',
    ),
  sockets: z
    .enum(['raw', 'node'])
    .default('raw')
    .describe(
      'TCP and TLS device sockets: raw libuv handles (less CPU and memory; falls back to node where unavailable) or net.Socket / tls.connect',
    ),
  tick: duration((v) => (v > 1000 ? 'must be at most 1s' : undefined))
    .default('1ms')
    .describe('scheduler resolution: due messages go out together at most once per tick (coarser: less CPU)'),
  messagesPerDevice: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('each device stops after this many messages; the run ends when all have (or at runTime)'),
  influxUrl: z
    .string()
    .superRefine((v, ctx) => {
      const problem = influxUrlProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional()
    .describe(
      'InfluxDB to write the time series to: http(s)://host:8086 (needs influxDb, or influxOrg+influxBucket+influxToken)',
    ),
  influxDb: z.string().min(1).optional().describe('InfluxDB 1.x database'),
  influxUser: z.string().min(1).optional().describe('InfluxDB 1.x user (basic auth)'),
  influxPassword: z
    .string()
    .optional()
    .describe('InfluxDB 1.x password; never logged, redacted in scenario.yaml'),
  influxOrg: z.string().min(1).optional().describe('InfluxDB 2.x/3.x organization'),
  influxBucket: z.string().min(1).optional().describe('InfluxDB 2.x/3.x bucket (3.x: database)'),
  influxToken: z.string().min(1).optional().describe('InfluxDB 2.x/3.x API token; never logged, redacted'),
  influxRequired: z
    .boolean()
    .default(false)
    .describe('fail the run (exit 3) when InfluxDB does not take the first batch or the final flush'),
  prometheusPort: z.number().int().min(0).max(65535).optional().describe('serve /metrics on this port'),
  prometheusHost: z.string().min(1).default('127.0.0.1').describe('address /metrics listens on'),
  prometheusToken: accessToken
    .optional()
    .describe('bearer token /metrics requires (a secret, never logged, redacted); needed off loopback'),
  prometheusPublic: z
    .boolean()
    .default(false)
    .describe('serve /metrics off loopback without a token (read-only figures, readable by anyone)'),
  prometheusGrace: duration()
    .default('15s')
    .describe('keep /metrics up this long after the run so the last scrape sees the final figures'),
});

export type ScenarioInput = z.input<typeof scenarioInput>;
export type TlsVersion = '1.2' | '1.3' | 'auto';
type Parsed = z.output<typeof scenarioInput>;

/** The validated scenario, as plain data with units in names. */
export interface Scenario {
  host: string | undefined;
  consumerHost: string | undefined;
  username: string | undefined;
  password: string | undefined;
  /** TLS and identities (src/identity): file paths and templates as given, resolved against the cwd */
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  consumerCert: string | undefined;
  consumerKey: string | undefined;
  insecure: boolean;
  servername: string | undefined;
  /** pinned TLS version (mqtts/wss), or 'auto': Node's default negotiation */
  tlsVersion: TlsVersion;
  preset: 'azure-iot-hub' | 'aws-iot' | undefined;
  hub: string | undefined;
  deviceKey: string | undefined;
  groupKey: string | undefined;
  sasTtlMs: number;
  devices: number;
  spawnRate: number;
  runTimeMs: number;
  /** k6-style stages: linear moves of the fleet size; undefined = the whole fleet ramps at spawnRate */
  stages: Stage[] | undefined;
  intervalMs: number;
  jitterMs: number;
  qos: 0 | 1 | 2;
  mqttVersion: '3.1.1' | '5';
  topic: string;
  deviceId: string;
  clientId: string;
  payloadSizeBytes: number;
  /** the text of the --payload template file (read by the loader), or undefined for the built-in reading */
  payloadTemplate: string | undefined;
  runId: string;
  out: string;
  consumer: 'mqtt' | 'nats' | 'eventhubs' | 'none';
  consumerQos: 0 | 1 | 2;
  consumerGroup: string | undefined;
  natsStream: string | undefined;
  natsCreateStream: boolean;
  eventhubName: string | undefined;
  eventhubConnectionString: string | undefined;
  eventhubConsumerGroup: string;
  storageConnectionString: string | undefined;
  storageContainer: string;
  headless: boolean;
  /** --keep-ui: the dashboard stays up after the run until a signal */
  keepUi: boolean;
  webHost: string;
  webPort: number;
  webToken: string | undefined;
  webAllowedHosts: string[];
  thresholds: string[];
  accept: ValidityCheck[];
  /** --junit: where the JUnit XML report goes */
  junit: string | undefined;
  /** fraction 0..1 */
  minOffered: number;
  /** this process's segment of the fleet (`--segment i/N`); { index: 0, count: 1 }: the whole fleet */
  segment: { index: number; count: number };
  workers: number;
  /** when the fleet starts (ms since epoch), from --start-at; undefined: at once */
  startAtMs: number | undefined;
  lateStart: 'fail' | 'join';
  /** --clock-ref: the consumer whose clock stamps ts */
  clockRef: { host: string; port: number } | undefined;
  json: boolean;
  keepaliveMs: number;
  connectTimeoutMs: number;
  graceMs: number;
  inflight: number;
  messagesPerDevice: number | undefined;
  sourceIps: string[];
  connectRate: number | undefined;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  offline: 'drop' | 'buffer';
  offlineBuffer: number;
  backpressure: 'drop' | 'wait';
  commandTopic: string | undefined;
  tickMs: number;
  sockets: 'raw' | 'node';
  encoding: 'json' | 'properties' | 'binary';
  influxUrl: string | undefined;
  influxDb: string | undefined;
  influxUser: string | undefined;
  influxPassword: string | undefined;
  influxOrg: string | undefined;
  influxBucket: string | undefined;
  influxToken: string | undefined;
  influxRequired: boolean;
  prometheusPort: number | undefined;
  prometheusHost: string;
  prometheusToken: string | undefined;
  prometheusPublic: boolean;
  prometheusGraceMs: number;
}

const ms = (v: string | number): number => parseDurationMs(v) as number;

export function defaultRunId(now: Date = new Date()): string {
  const iso = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${iso}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * The credentials in a broker URL (`mqtt://user:pw@host`), decoded; empty parts are absent. --username and
 * --password win over them; the devices send them in CONNECT (the URL alone only gives host and port).
 */
export function hostCredentials(host: unknown): { username?: string; password?: string } {
  if (typeof host !== 'string' || !host.includes('@')) return {};
  let u: URL;
  try {
    u = new URL(host);
  } catch {
    return {};
  }
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  };
  return {
    ...(u.username !== '' ? { username: decode(u.username) } : {}),
    ...(u.password !== '' ? { password: decode(u.password) } : {}),
  };
}

export function toScenario(p: Parsed, runId: string): Scenario {
  const stages = p.stages?.map(parseStage);
  const inUrl = hostCredentials(p.host);
  return {
    host: p.host,
    consumerHost: p.consumerHost,
    username: p.username ?? inUrl.username,
    password: p.password ?? inUrl.password,
    ca: p.ca,
    cert: p.cert,
    key: p.key,
    consumerCert: p.consumerCert,
    consumerKey: p.consumerKey,
    insecure: p.insecure ?? false,
    servername: p.servername,
    tlsVersion: p.tlsVersion ?? 'auto',
    preset: p.preset,
    hub: p.hub,
    deviceKey: p.deviceKey,
    groupKey: p.groupKey,
    sasTtlMs: p.sasTtl === undefined ? 3_600_000 : ms(p.sasTtl),
    devices: stages ? Math.max(1, ...stages.map((st) => st.devices)) : p.devices,
    spawnRate: p.spawnRate,
    runTimeMs: stages ? stages.reduce((t, st) => t + st.durationMs, 0) : ms(p.runTime),
    stages,
    intervalMs: ms(p.interval),
    jitterMs: ms(p.jitter),
    qos: p.qos,
    mqttVersion: p.mqttVersion,
    topic: p.topic,
    deviceId: p.deviceId,
    clientId: p.clientId,
    payloadSizeBytes: p.payloadSize,
    payloadTemplate: undefined,
    runId: p.runId ?? runId,
    out: p.out,
    consumer: p.consumer,
    consumerQos: p.consumerQos ?? p.qos,
    consumerGroup: p.consumerGroup,
    natsStream: p.natsStream,
    natsCreateStream: p.natsCreateStream ?? false,
    eventhubName: p.eventhubName,
    eventhubConnectionString: p.eventhubConnectionString,
    eventhubConsumerGroup: p.eventhubConsumerGroup,
    storageConnectionString: p.storageConnectionString,
    storageContainer: p.storageContainer,
    headless: p.headless,
    keepUi: p.keepUi,
    webHost: p.webHost,
    webPort: p.webPort,
    webToken: p.webToken,
    webAllowedHosts: (p.webAllowedHosts ?? []).flatMap(hostNames),
    thresholds: p.thresholds,
    accept: p.accept,
    junit: p.junit,
    minOffered: typeof p.minOffered === 'number' ? p.minOffered : Number(p.minOffered.slice(0, -1)) / 100,
    segment: p.segment === undefined ? { index: 0, count: 1 } : parseSegment(p.segment),
    startAtMs: p.startAt === undefined ? undefined : resolveStartAt(p.startAt, Date.now()),
    lateStart: p.lateStart,
    clockRef:
      p.clockRef === undefined ? undefined : (parseClockRef(p.clockRef) as { host: string; port: number }),
    workers:
      p.workers === 'auto'
        ? availableParallelism()
        : typeof p.workers === 'number'
          ? p.workers
          : Number(p.workers),
    json: p.json,
    keepaliveMs: ms(p.keepalive),
    connectTimeoutMs: ms(p.connectTimeout),
    graceMs: ms(p.grace),
    inflight: p.inflight,
    messagesPerDevice: p.messagesPerDevice,
    // devices use source addresses round-robin: never more addresses than devices
    sourceIps: expandSourceIps(
      p.sourceIp ?? [],
      stages ? Math.max(1, ...stages.map((st) => st.devices)) : p.devices,
    ),
    connectRate: p.connectRate,
    reconnectMinMs: ms(p.reconnectMin),
    reconnectMaxMs: ms(p.reconnectMax),
    offline: p.offline,
    offlineBuffer: p.offlineBuffer,
    backpressure: p.backpressure,
    commandTopic: p.commandTopic,
    tickMs: ms(p.tick),
    sockets: p.sockets,
    encoding: p.encoding,
    influxUrl: p.influxUrl,
    influxDb: p.influxDb,
    influxUser: p.influxUser,
    influxPassword: p.influxPassword,
    influxOrg: p.influxOrg,
    influxBucket: p.influxBucket,
    influxToken: p.influxToken,
    influxRequired: p.influxRequired,
    prometheusPort: p.prometheusPort,
    prometheusHost: p.prometheusHost,
    prometheusToken: p.prometheusToken,
    prometheusPublic: p.prometheusPublic,
    prometheusGraceMs: ms(p.prometheusGrace),
  };
}

/** What is wrong with an InfluxDB URL, or undefined. */
export function influxUrlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `"${v}" is not a URL; use e.g. http://127.0.0.1:8086`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `scheme "${u.protocol}" in "${v}" is not supported; use http:// or https://`;
  }
  if (u.username !== '' || u.password !== '') {
    return 'must not contain credentials; use influxUser/influxPassword (1.x) or influxToken (2.x/3.x)';
  }
  if (u.search !== '' || u.hash !== '') {
    return 'must not have a query or fragment; give db/org/bucket separately';
  }
  return undefined;
}

/** JSON Schema of the scenario file (`fleetload schema`). */
export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(scenarioInput, { io: 'input', unrepresentable: 'any' });
}

/** What is wrong with a `--segment` text (`i/N`, 0-based), or undefined. */
export function segmentTextProblem(v: string): string | undefined {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
  if (!m) return `"${v}" is not i/N; give the 0-based segment index and the count, e.g. 0/4`;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_DEVICES) return `"${v}": the count must be 1..${MAX_DEVICES}`;
  if (index >= count)
    return `"${v}": the index must be below the count (0-based: segments 0/${count} … ${count - 1}/${count})`;
  return undefined;
}

function parseSegment(v: string): { index: number; count: number } {
  const [i, n] = v.split('/');
  return { index: Number(i), count: Number(n) };
}

export interface Stage {
  durationMs: number;
  devices: number;
}

function parseStage(st: string | { duration: string | number; devices: number }): Stage {
  if (typeof st === 'string') {
    const at = st.lastIndexOf(':');
    return { durationMs: ms(st.slice(0, at).trim()), devices: Number(st.slice(at + 1).trim()) };
  }
  return { durationMs: ms(st.duration), devices: st.devices };
}
