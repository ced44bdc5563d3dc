import { z } from 'zod';
import { parseDurationMs } from './duration.js';
import { templateProblems } from './template.js';

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

/** A duration as text or milliseconds; `rule` words a problem with the parsed value, or returns undefined. */
const duration = (rule: (ms: number) => string | undefined = () => undefined) =>
  z
    .union([z.string(), z.number()], { error: `must be a duration; ${DURATION_HINT}` })
    .superRefine((v, ctx) => {
      const ms = parseDurationMs(v);
      const bare = ms === undefined && /^\s*\d+(\.\d+)?\s*$/.test(String(v));
      const problem = bare
        ? `"${v}" has no unit; write ${String(v).trim()}s for seconds or ${String(v).trim()}ms for milliseconds`
        : ms === undefined
          ? `"${v}" is not a duration; ${DURATION_HINT}`
          : rule(ms);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

const positive = (ms: number) => (ms > 0 ? undefined : 'must be greater than 0');

const template = (placeholders: readonly string[]) =>
  z
    .string()
    .min(1)
    .superRefine((v, ctx) => {
      for (const p of templateProblems(v, placeholders)) ctx.addIssue({ code: 'custom', message: p });
    });

const URL_HINT = 'use mqtt://host:1883, mqtts://host:8883, ws://host/mqtt or wss://host/mqtt';

export const hostUrl = z.string().superRefine((v, ctx) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    // WHATWG URL rejects an out-of-range port as a whole; name the port instead of "not a URL".
    const port = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/i.exec(v)?.[1];
    ctx.addIssue({
      code: 'custom',
      message:
        port !== undefined && Number(port) > 65535
          ? `port ${port} in "${v}" is out of range 1-65535`
          : `"${v}" is not a URL; ${URL_HINT}`,
    });
    return;
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:', 'tls:'].includes(u.protocol)) {
    ctx.addIssue({
      code: 'custom',
      message: `scheme "${u.protocol}" in "${v}" is not supported; ${URL_HINT}`,
    });
    return;
  }
  if (!u.hostname) ctx.addIssue({ code: 'custom', message: `"${v}" has no host name; ${URL_HINT}` });
  if (u.port === '0') ctx.addIssue({ code: 'custom', message: `port 0 in "${v}" is out of range 1-65535` });
});

export const DEVICE_PLACEHOLDERS = ['deviceId', 'index', 'runId'] as const;

export const scenarioInput = z.strictObject({
  host: hostUrl.optional().describe('broker URL; absent: embedded broker on a free loopback port'),
  consumerHost: z
    .string()
    .min(1)
    .optional()
    .describe('where the consumer reads, when not the devices\' broker (e.g. a proxy, or nats://)'),
  username: z.string().optional().describe('MQTT username (template: {deviceId} {index} {runId})'),
  password: z.string().optional().describe('MQTT password; never logged, redacted in scenario.yaml'),
  devices: z.number().int().min(1).max(10_000_000).default(100),
  spawnRate: z.number().positive().default(50).describe('devices started per second'),
  runTime: duration(positive).default('30s').describe('test duration, ramp included'),
  interval: duration((ms) => (ms >= 1 ? undefined : 'must be at least 1ms'))
    .default('1s')
    .describe("time between one device's messages"),
  jitter: duration().default('0ms').describe('random ± offset added to each scheduled send'),
  qos: z.literal([0, 1, 2]).default(1),
  // YAML reads `mqttVersion: 5` as a number; accept it and hand on the string.
  mqttVersion: z
    .union([z.enum(['3.1.1', '5']), z.literal(5).transform(() => '5' as const)], {
      error: 'must be 3.1.1 or 5',
    })
    .default('3.1.1'),
  topic: template(DEVICE_PLACEHOLDERS)
    .refine((v) => !/[+#\u0000]/.test(v), { message: 'a publish topic must not contain +, # or NUL' })
    .default('fleetload/{runId}/{deviceId}'),
  deviceId: template(['index', 'runId']).default('dev-{index:6}'),
  clientId: template(DEVICE_PLACEHOLDERS).default('{deviceId}-{runId}'),
  payloadSize: z
    .number()
    .int()
    .min(0)
    .max(256 * 1024 * 1024)
    .default(0),
  runId: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
      'must start with a letter or digit and use only letters, digits, ".", "_" and "-" (max 128)',
    )
    .optional(),
  out: z.string().min(1).default('./fleetload-results'),
  consumer: z.enum(['mqtt', 'none']).default('mqtt'),
  consumerQos: z.literal([0, 1, 2]).optional().describe('consumer subscription QoS; default: qos'),
  headless: z.boolean().default(false),
  webHost: z.string().min(1).default('127.0.0.1'),
  webPort: z.number().int().min(0).max(65535).default(8089),
  thresholds: z.array(z.string().min(1)).default([]),
  workers: z.number().int().min(1).max(1, 'only 1 local worker is supported in this version').default(1),
  json: z.boolean().default(false),
  keepalive: duration((ms) =>
    ms <= 65_535_000 ? undefined : 'must be at most 65535s (the MQTT limit)',
  ).default('60s'),
  connectTimeout: duration(positive).default('10s'),
  grace: duration().default('5s').describe('after the last send: wait this long for acks and deliveries'),
  inflight: z.number().int().min(1).max(65535).default(64).describe('QoS 1/2 messages in flight per device'),
  messagesPerDevice: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('each device stops after this many messages; the run ends when all have (or at runTime)'),
});

export type ScenarioInput = z.input<typeof scenarioInput>;
type Parsed = z.output<typeof scenarioInput>;

/** The validated scenario, as plain data with units in names. */
export interface Scenario {
  host: string | undefined;
  consumerHost: string | undefined;
  username: string | undefined;
  password: string | undefined;
  devices: number;
  spawnRate: number;
  runTimeMs: number;
  intervalMs: number;
  jitterMs: number;
  qos: 0 | 1 | 2;
  mqttVersion: '3.1.1' | '5';
  topic: string;
  deviceId: string;
  clientId: string;
  payloadSizeBytes: number;
  runId: string;
  out: string;
  consumer: 'mqtt' | 'none';
  consumerQos: 0 | 1 | 2;
  headless: boolean;
  webHost: string;
  webPort: number;
  thresholds: string[];
  workers: number;
  json: boolean;
  keepaliveMs: number;
  connectTimeoutMs: number;
  graceMs: number;
  inflight: number;
  messagesPerDevice: number | undefined;
}

const ms = (v: string | number): number => parseDurationMs(v) as number;

export function defaultRunId(now: Date = new Date()): string {
  const iso = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${iso}-${Math.random().toString(36).slice(2, 6)}`;
}

export function toScenario(p: Parsed, runId: string): Scenario {
  return {
    host: p.host,
    consumerHost: p.consumerHost,
    username: p.username,
    password: p.password,
    devices: p.devices,
    spawnRate: p.spawnRate,
    runTimeMs: ms(p.runTime),
    intervalMs: ms(p.interval),
    jitterMs: ms(p.jitter),
    qos: p.qos,
    mqttVersion: p.mqttVersion,
    topic: p.topic,
    deviceId: p.deviceId,
    clientId: p.clientId,
    payloadSizeBytes: p.payloadSize,
    runId: p.runId ?? runId,
    out: p.out,
    consumer: p.consumer,
    consumerQos: p.consumerQos ?? p.qos,
    headless: p.headless,
    webHost: p.webHost,
    webPort: p.webPort,
    thresholds: p.thresholds,
    workers: p.workers,
    json: p.json,
    keepaliveMs: ms(p.keepalive),
    connectTimeoutMs: ms(p.connectTimeout),
    graceMs: ms(p.grace),
    inflight: p.inflight,
    messagesPerDevice: p.messagesPerDevice,
  };
}

/** JSON Schema of the scenario file (`fleetload schema`). */
export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(scenarioInput, { io: 'input', unrepresentable: 'any' });
}
