import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import type { SourceConfig } from '../consumer/open.js';
import { redactConnectionString, redactUrl, SOURCE_KINDS, type SourceKind } from '../consumer/source.js';
import { filterFromTemplate, subjectFromMqtt } from '../consumer/topics.js';
import { FleetloadError } from '../errors.js';
import { parseDurationMs } from '../scenario/duration.js';
import { closest, redactSecrets } from '../scenario/load.js';
import { defaultRunId } from '../scenario/schema.js';
import { parseThreshold, type Threshold } from '../stats/thresholds.js';
import {
  DECODE_FORMATS,
  DEFAULT_FIELDS,
  type DecodeFormat,
  parseFields,
  SEED_FIELDS,
} from '../wire/index.js';

/**
 * `fleetload consume`: the standalone consumer (the seed's consumer). Reads one source until --run-time or Ctrl-C,
 * keeps the ledger and the delay histograms, writes the results folder (summary.json with the consumer fields;
 * producer fields 0) plus `ledger.bin` (the serialized ledger, so instances that split a stream merge exactly) and
 * `consumer.json` (source, partitions, late/negative-delay counts, foreign samples, checkpoints).
 *
 * Settings: flags > FLEETLOAD_<FLAG> > the seed's variables (EVENTHUB_CONNECTION_STRING, EVENTHUB_NAME,
 * CONSUMER_GROUP, STORAGE_CONNECTION_STRING, NUM_PARTITION, TOTAL_PARTITION; also PARTITION_INDEX/PARTITION_COUNT)
 * > defaults. Exit codes as `run`: 0 passed, 1 a threshold failed / interrupted with -t, 2 bad input, 3 cannot
 * attach.
 */

type Kind = 'string' | 'boolean' | 'list';
interface Opt {
  flag: string;
  short?: string;
  kind: Kind;
  /** environment variables, highest precedence first (FLEETLOAD_<FLAG> is always the first) */
  env?: string[];
}

const OPTS: Opt[] = [
  { flag: 'host', short: 'H', kind: 'string' },
  { flag: 'source', kind: 'string' },
  { flag: 'run-id', kind: 'string' },
  { flag: 'run-time', short: 't', kind: 'string' },
  { flag: 'grace', kind: 'string' },
  { flag: 'out', kind: 'string' },
  { flag: 'json', kind: 'boolean' },
  { flag: 'threshold', kind: 'list' },
  { flag: 'partition-index', kind: 'string', env: ['PARTITION_INDEX', 'NUM_PARTITION'] },
  { flag: 'partition-count', kind: 'string', env: ['PARTITION_COUNT', 'TOTAL_PARTITION'] },
  { flag: 'topic', kind: 'string' },
  { flag: 'subject', kind: 'string' },
  { flag: 'group', kind: 'string' },
  { flag: 'qos', kind: 'string' },
  { flag: 'mqtt-version', kind: 'string' },
  { flag: 'client-id', kind: 'string' },
  { flag: 'username', kind: 'string' },
  { flag: 'password', kind: 'string' },
  { flag: 'format', kind: 'string' },
  { flag: 'fields', kind: 'string' },
  { flag: 'nats-stream', kind: 'string' },
  { flag: 'eventhub-name', kind: 'string', env: ['EVENTHUB_NAME'] },
  { flag: 'eventhub-connection-string', kind: 'string', env: ['EVENTHUB_CONNECTION_STRING'] },
  { flag: 'eventhub-consumer-group', kind: 'string', env: ['CONSUMER_GROUP'] },
  { flag: 'storage-connection-string', kind: 'string', env: ['STORAGE_CONNECTION_STRING'] },
  { flag: 'storage-container', kind: 'string', env: ['STORAGE_CONTAINER'] },
  { flag: 'connect-timeout', kind: 'string' },
  { flag: 'ca', kind: 'string' },
  { flag: 'cert', kind: 'string' },
  { flag: 'key', kind: 'string' },
  { flag: 'servername', kind: 'string' },
  { flag: 'insecure', kind: 'boolean' },
];

const envName = (flag: string) => `FLEETLOAD_${flag.toUpperCase().replace(/-/g, '_')}`;

export const CONSUME_HELP = `Usage: fleetload consume [flags]

The standalone consumer (the seed's consumer): reads telemetry where the platform delivers it, keeps the
per-device ledger (lost, duplicated, reordered, late) and the delay histograms, and writes a results folder.
Settings: flags > FLEETLOAD_<FLAG> environment variables > the seed's variables (in brackets) > defaults.

Source:
  -H, --host URL              mqtt://, mqtts://, ws://, wss:// or nats://host:4222
      --source mqtt|nats|eventhubs   (default: nats for nats://, eventhubs with a connection string, else mqtt)
      --topic T               MQTT topic template or filter   (default: fleetload/{runId}/{deviceId} → fleetload/<runId>/+)
      --subject S             NATS subject filter             (default: the topic's subject, a/b/+ → a.b.*)
      --group G               MQTT 5 shared-subscription group / NATS durable (default: fleetload-<runId>)
      --qos 0|1|2             MQTT subscription QoS           (default: 1)
      --mqtt-version 3.1.1|5  (5: a shared subscription, so instances split the stream) (default: 3.1.1)
      --client-id ID, --username U, --password S   MQTT (the password is never written)
      --ca FILE, --cert FILE, --key FILE, --servername NAME, --insecure   TLS for mqtts:// and wss://
      --nats-stream NAME      JetStream stream                (default: the stream capturing the subject)
      --eventhub-connection-string S  [EVENTHUB_CONNECTION_STRING] a secret, never written
      --eventhub-name N               [EVENTHUB_NAME] unless the connection string has EntityPath
      --eventhub-consumer-group G     [CONSUMER_GROUP] (default: $Default)
      --storage-connection-string S   [STORAGE_CONNECTION_STRING] Blob Storage for checkpoints
      --storage-container C           [STORAGE_CONTAINER] (default: fleetload-checkpoints)
      --partition-index I     [PARTITION_INDEX, NUM_PARTITION] this instance (default: 0)
      --partition-count N     [PARTITION_COUNT, TOTAL_PARTITION] instances splitting the work (default: 1)
      --connect-timeout D     time allowed to attach          (default: 10s)

Decoding:
      --format auto|json|seed|properties|binary   (default: auto: binary header, user properties, JSON, seed)
      --fields LIST           JSON field paths, e.g. deviceId=context.device,seq=context.seq,ts=info.timestamp,
                              runId=info.run_id,tsUnit=s,seqBase=0  (default: deviceId,seq,ts,runId; ts in ms)

Run:
      --run-id ID             only this run's messages count (others: foreign); names the results folder
  -t, --run-time D            stop after D (default: until Ctrl-C)
      --grace D               after the run time, keep reading this long before loss is final (default: 5s)
      --out DIR               results folder root            (default: ./fleetload-results)
      --threshold EXPR        repeatable: e2e.p99<500, loss<0.1%, messages.received>0
      --json                  print summary.json to stdout at the end
  -h, --help                  show this help

Exit codes: 0 ok · 1 a threshold failed · 2 invalid input · 3 could not attach · 4 internal error
`;

export interface ConsumeConfig {
  source: SourceConfig;
  runId: string | undefined;
  folderId: string;
  runTimeMs: number | undefined;
  graceMs: number;
  out: string;
  json: boolean;
  thresholds: Threshold[];
  format: DecodeFormat;
  fields: typeof DEFAULT_FIELDS;
  host: string;
  qos: 0 | 1 | 2;
  mqttVersion: '3.1.1' | '5';
  /** the resolved settings, secrets redacted (scenario.yaml) */
  resolved: Record<string, unknown>;
}

export function parseConsumeArgs(argv: string[], env: NodeJS.ProcessEnv): ConsumeConfig | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const o of OPTS) {
    options[o.flag] = {
      type: o.kind === 'boolean' ? 'boolean' : 'string',
      ...(o.short ? { short: o.short } : {}),
      ...(o.kind === 'list' ? { multiple: true } : {}),
    };
  }
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help';
  const problems: string[] = [];
  const given = new Map<string, string | boolean | string[]>();
  const byFlag = new Map(OPTS.map((o) => [o.flag, o]));
  for (const t of tokens) {
    if (t.kind === 'positional') problems.push(`unexpected argument "${t.value}": consume takes flags only`);
    if (t.kind !== 'option') continue;
    const o = byFlag.get(t.name);
    if (!o) {
      const near = closest(t.name, [...byFlag.keys()]);
      problems.push(
        `unknown flag ${t.rawName}; ${near ? `did you mean --${near}? ` : ''}see fleetload consume --help`,
      );
      continue;
    }
    if (o.kind === 'boolean') {
      if (t.value !== undefined) problems.push(`--${o.flag} takes no value`);
      else given.set(o.flag, true);
      continue;
    }
    if (t.value === undefined || (!t.inlineValue && /^-(?!\d)/.test(t.value))) {
      problems.push(`--${o.flag} needs a value`);
      continue;
    }
    if (o.kind === 'list') given.set(o.flag, [...((given.get(o.flag) as string[]) ?? []), t.value]);
    else given.set(o.flag, t.value);
  }
  /** where each setting came from, for messages */
  const from = new Map<string, string>();
  const get = (flag: string): string | undefined => {
    const v = given.get(flag);
    if (typeof v === 'string') {
      from.set(flag, `--${flag}`);
      return v;
    }
    const names = [envName(flag), ...(byFlag.get(flag)?.env ?? [])];
    for (const n of names) {
      const e = env[n];
      if (e !== undefined && e !== '') {
        from.set(flag, n);
        return e;
      }
    }
    return undefined;
  };
  const bool = (flag: string): boolean => {
    if (given.get(flag) === true) return true;
    const e = env[envName(flag)]?.trim().toLowerCase();
    return e === '1' || e === 'true' || e === 'yes' || e === 'on';
  };
  const where = (flag: string) => ` (${from.get(flag) ?? 'default'})`;
  /** TLS material for mqtts:// / wss://: files read now, so a missing one is input (exit 2) */
  const tlsFiles = () => {
    const file = (flag: string): Buffer | undefined => {
      const f = get(flag);
      if (f === undefined) return undefined;
      try {
        return readFileSync(resolvePath(f));
      } catch (e) {
        problems.push(
          `--${flag}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}${where(flag)}`,
        );
        return undefined;
      }
    };
    const cert = file('cert');
    const key = file('key');
    if ((cert === undefined) !== (key === undefined)) problems.push('--cert and --key go together');
    return { ca: file('ca'), cert, key, servername: get('servername'), insecure: bool('insecure') };
  };
  const duration = (flag: string, dflt: number | undefined): number | undefined => {
    const v = get(flag);
    if (v === undefined) return dflt;
    const ms = parseDurationMs(v);
    if (ms === undefined || ms < 0) {
      problems.push(`--${flag}: "${v}" is not a duration; use e.g. 500ms, 30s, 5m${where(flag)}`);
      return dflt;
    }
    return ms;
  };
  const int = (flag: string, dflt: number, min: number, max: number): number => {
    const v = get(flag);
    if (v === undefined) return dflt;
    const n = Number(v.trim());
    if (!/^\d+$/.test(v.trim()) || n < min || n > max) {
      problems.push(`--${flag}: must be a whole number ${min}..${max}, not "${v}"${where(flag)}`);
      return dflt;
    }
    return n;
  };

  const runId = get('run-id');
  if (runId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(runId)) {
    problems.push(
      `--run-id: must start with a letter or digit and use only letters, digits, ".", "_" and "-"${where('run-id')}`,
    );
  }
  const runTimeMs = duration('run-time', undefined);
  if (runTimeMs === 0) problems.push('--run-time: must be greater than 0');
  const graceMs = duration('grace', 5000) as number;
  const connectTimeoutMs = duration('connect-timeout', 10_000) as number;
  const partitionCount = int('partition-count', 1, 1, 1024);
  const partitionIndex = int('partition-index', 0, 0, 1023);
  if (partitionIndex >= partitionCount) {
    problems.push(`--partition-index ${partitionIndex} must be below --partition-count ${partitionCount}`);
  }
  const host = get('host');
  const connStr = get('eventhub-connection-string');
  let kind: SourceKind;
  const sourceText = get('source');
  if (sourceText !== undefined) {
    if (!(SOURCE_KINDS as readonly string[]).includes(sourceText)) {
      problems.push(
        `--source: must be one of ${SOURCE_KINDS.join(', ')}, not "${sourceText}"${where('source')}`,
      );
    }
    kind = sourceText as SourceKind;
  } else if (host !== undefined && /^(nats|tls):\/\//i.test(host)) kind = 'nats';
  else if (host === undefined && connStr !== undefined) kind = 'eventhubs';
  else kind = 'mqtt';

  const qosText = get('qos') ?? '1';
  const qos = Number(qosText) as 0 | 1 | 2;
  if (!['0', '1', '2'].includes(qosText)) problems.push(`--qos: must be 0, 1 or 2, not "${qosText}"`);
  const mqttVersion = (get('mqtt-version') ?? '3.1.1') as '3.1.1' | '5';
  if (mqttVersion !== '3.1.1' && mqttVersion !== '5')
    problems.push(`--mqtt-version: must be 3.1.1 or 5, not "${mqttVersion}"`);
  const formatText = get('format') ?? 'auto';
  if (!(DECODE_FORMATS as readonly string[]).includes(formatText)) {
    problems.push(`--format: must be one of ${DECODE_FORMATS.join(', ')}, not "${formatText}"`);
  }
  const format = formatText as DecodeFormat;
  let fields = format === 'seed' ? SEED_FIELDS : DEFAULT_FIELDS;
  const fieldsText = get('fields');
  if (fieldsText !== undefined) {
    const f = parseFields(fieldsText, fields);
    if (typeof f === 'string') problems.push(`--fields: ${f}`);
    else fields = f;
  }
  const thresholdTexts = [
    ...((given.get('threshold') as string[] | undefined) ?? []),
    ...(given.has('threshold') ? [] : (env[envName('threshold')] ?? '').split(/[,\n]/)),
  ]
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const thresholds: Threshold[] = [];
  for (const t of thresholdTexts) {
    try {
      thresholds.push(parseThreshold(t));
    } catch (e) {
      problems.push((e as Error).message);
    }
  }

  const group = get('group') ?? `fleetload-${runId ?? 'consume'}`;
  const topic = get('topic') ?? 'fleetload/{runId}/{deviceId}';
  const filter = filterFromTemplate(topic, runId ?? '{runId}');
  let source: SourceConfig | undefined;
  if (kind === 'mqtt') {
    if (host === undefined) problems.push('--host: the MQTT broker is needed, e.g. -H mqtt://broker:1883');
    else if (!/^(mqtts?|wss?|tcp|ssl|tls):\/\/[^/]/i.test(host)) {
      problems.push(
        `--host: "${redactUrl(host)}" is not an MQTT URL; use mqtt://host:1883, mqtts://, ws:// or wss://`,
      );
    }
    if (partitionCount > 1 && mqttVersion !== '5') {
      problems.push(
        '--partition-count > 1 with MQTT needs --mqtt-version 5: only a shared subscription splits the stream (3.1.1 gives every instance everything)',
      );
    }
    source = {
      kind: 'mqtt',
      url: host ?? '',
      filter,
      qos,
      version: mqttVersion === '5' ? 5 : 4,
      group,
      clientId:
        get('client-id') ??
        `fleetload-consume-${runId ?? 'any'}-${partitionIndex}-${process.pid}`.slice(0, 64),
      username: get('username'),
      password: get('password'),
      connectTimeoutMs,
      ...tlsFiles(),
    };
  } else if (kind === 'nats') {
    if (host === undefined || !/^(nats|tls):\/\/[^/]/i.test(host)) {
      problems.push('--host: NATS needs nats://host:4222');
    }
    source = {
      kind: 'nats',
      url: host ?? '',
      subject: get('subject') ?? subjectFromMqtt(filter),
      stream: get('nats-stream'),
      durable: group,
      connectTimeoutMs,
    };
  } else if (kind === 'eventhubs') {
    if (connStr === undefined) {
      problems.push(
        '--eventhub-connection-string (or EVENTHUB_CONNECTION_STRING) is needed for --source eventhubs',
      );
    }
    source = {
      kind: 'eventhubs',
      connectionString: connStr ?? '',
      eventHubName: get('eventhub-name'),
      consumerGroup: get('eventhub-consumer-group') ?? '$Default',
      storageConnectionString: get('storage-connection-string'),
      storageContainer: get('storage-container') ?? 'fleetload-checkpoints',
      partitionIndex,
      partitionCount,
      connectTimeoutMs,
    };
  }
  if (problems.length > 0 || !source) throw new FleetloadError('E_USAGE', problems);

  const displayHost =
    kind === 'eventhubs'
      ? (/Endpoint=([^;]+)/i.exec(connStr ?? '')?.[1] ?? 'eventhubs')
      : redactUrl(host ?? '');
  const resolved = redactSecrets({
    command: 'consume',
    source: kind,
    host: kind === 'eventhubs' ? undefined : host,
    runId,
    runTimeMs,
    graceMs,
    partitionIndex,
    partitionCount,
    group: kind === 'eventhubs' ? undefined : group,
    filter: kind === 'mqtt' ? filter : undefined,
    subject: source.kind === 'nats' ? source.subject : undefined,
    qos: kind === 'mqtt' ? qos : undefined,
    mqttVersion: kind === 'mqtt' ? mqttVersion : undefined,
    format,
    fields,
    eventhubName: source.kind === 'eventhubs' ? source.eventHubName : undefined,
    eventhubConsumerGroup: source.kind === 'eventhubs' ? source.consumerGroup : undefined,
    eventhubConnectionString: connStr !== undefined ? redactConnectionString(connStr) : undefined,
    storageConnectionString:
      source.kind === 'eventhubs' && source.storageConnectionString ? '***' : undefined,
    thresholds: thresholdTexts,
  });
  for (const k of Object.keys(resolved))
    if (resolved[k as keyof typeof resolved] === undefined) delete resolved[k as keyof typeof resolved];
  return {
    source,
    runId,
    folderId: runId ?? `consume-${defaultRunId()}`,
    runTimeMs,
    graceMs,
    out: get('out') ?? './fleetload-results',
    json: bool('json'),
    thresholds,
    format,
    fields,
    host: displayHost,
    qos,
    mqttVersion,
    resolved,
  };
}
