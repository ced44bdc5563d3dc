import { z } from 'zod';
import { DECODE_FORMATS, DEFAULT_FIELDS, parseFields } from '../wire/index.js';
import { MQTT_STRING_MAX_BYTES } from './checks.js';
import {
  brokerUrlProblem,
  DEVICE_PLACEHOLDERS,
  fileField,
  MQTT_SCHEMES,
  NATS_HINT,
  NATS_SCHEMES,
  scenarioInput,
} from './schema.js';
import { templateProblems } from './template.js';

/** Where a consumer reads (src/consumer/: one source each). */
export const SOURCE_KINDS = ['mqtt', 'nats', 'eventhubs'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/**
 * `fleetload consume`'s settings: the run schema's own field definitions where the setting means the same
 * (run id, run time, grace, results folder, thresholds, QoS, MQTT version, TLS, NATS, Event Hubs), plus what only a
 * standalone consumer has (source kind, filter, partitions, decoding). Validated by the same loader as `run`.
 */

const mqttString = (what: string) =>
  z.string().refine((v) => Buffer.byteLength(v) <= MQTT_STRING_MAX_BYTES, {
    message: `${what} is longer than 65535 bytes (the MQTT limit)`,
  });

/**
 * An MQTT shared-subscription group (`$share/<name>/<filter>`): not empty, without `/`, `+` or `#`
 * [MQTT-4.8.2-2]. `--shared` takes it; `--group` must obey it too when it names an MQTT share.
 */
export function shareNameProblem(v: string): string | undefined {
  if (v === '') return 'must not be empty';
  if (/[/+#]/.test(v))
    return `"${v}" must not contain /, + or # (an MQTT share name, e.g. --shared consumers)`;
  if (Buffer.byteLength(v) > 512) return 'is longer than 512 bytes';
  return undefined;
}

const shareName = z.string().superRefine((v, ctx) => {
  const problem = shareNameProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** mqtt://…, or one or more nats:// servers separated by commas. */
const sourceUrl = z.string().superRefine((v, ctx) => {
  const parts = v.split(',').map((p) => p.trim());
  const schemes = parts.length > 1 ? NATS_SCHEMES : [...MQTT_SCHEMES, 'nats:'];
  const hint =
    parts.length > 1 ? NATS_HINT : 'use mqtt://host:1883, mqtts://, ws://, wss:// or nats://host:4222';
  for (const p of parts) {
    const problem = brokerUrlProblem(p, schemes, hint);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return;
    }
  }
});

export const consumeInput = scenarioInput
  .pick({
    runId: true,
    grace: true,
    out: true,
    json: true,
    thresholds: true,
    accept: true,
    qos: true,
    mqttVersion: true,
    ca: true,
    servername: true,
    insecure: true,
    tlsVersion: true,
    password: true,
    natsStream: true,
    natsCreateStream: true,
    eventhubName: true,
    eventhubConnectionString: true,
    eventhubConsumerGroup: true,
    storageConnectionString: true,
    storageContainer: true,
    connectTimeout: true,
    // the time-series sinks, as `run` takes them (segment = --partition-index/--partition-count, role consumer)
    influxUrl: true,
    influxDb: true,
    influxUser: true,
    influxPassword: true,
    influxOrg: true,
    influxBucket: true,
    influxToken: true,
    influxRequired: true,
    prometheusPort: true,
    prometheusHost: true,
    prometheusToken: true,
    prometheusPublic: true,
    prometheusGrace: true,
    webAllowedHosts: true,
  })
  .extend({
    source: z.enum(SOURCE_KINDS).optional(),
    host: sourceUrl.optional(),
    runTime: scenarioInput.shape.runTime.unwrap().optional(),
    partitionIndex: z.number().int().min(0).max(1023).default(0),
    partitionCount: z.number().int().min(1).max(1024).default(1),
    topic: z
      .string()
      .min(1)
      .superRefine((v, ctx) => {
        if (Buffer.byteLength(v) > MQTT_STRING_MAX_BYTES) {
          ctx.addIssue({ code: 'custom', message: 'is longer than 65535 bytes (the MQTT limit)' });
          return;
        }
        for (const p of templateProblems(v, DEVICE_PLACEHOLDERS))
          ctx.addIssue({ code: 'custom', message: p });
      })
      .default('fleetload/{runId}/{deviceId}'),
    subject: z.string().min(1).optional(),
    group: z.string().min(1).max(512).optional(),
    shared: shareName.optional(),
    clientId: mqttString('a client id').pipe(z.string().min(1)).optional(),
    username: mqttString('a username').optional(),
    format: z.enum(DECODE_FORMATS as [string, ...string[]]).default('auto'),
    fields: z
      .string()
      .superRefine((v, ctx) => {
        const f = parseFields(v, DEFAULT_FIELDS);
        if (typeof f === 'string') ctx.addIssue({ code: 'custom', message: f });
      })
      .optional(),
    cert: fileField.optional(),
    key: fileField.optional(),
    timePort: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .optional()
      .describe("answer producers' time probes (--clock-ref) on this UDP port"),
  });

export type ConsumeInput = z.input<typeof consumeInput>;
export type ConsumeParsed = z.output<typeof consumeInput>;
