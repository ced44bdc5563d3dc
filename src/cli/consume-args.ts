import { resolve as resolvePath } from 'node:path';
import type { SourceConfig } from '../consumer/open.js';
import { redactConnectionString, redactUrl, type SourceKind } from '../consumer/source.js';
import { filterFromTemplate, subjectFromMqtt } from '../consumer/topics.js';
import { FleetloadError } from '../errors.js';
import { redactSecrets } from '../redact.js';
import { keyPairProblem } from '../scenario/checks.js';
import { type ConsumeParsed, consumeInput, shareNameProblem } from '../scenario/consume-schema.js';
import { parseDurationMs } from '../scenario/duration.js';
import { outProblem, readErrorWords, readInputFile } from '../scenario/files.js';
import {
  describeIssue,
  influxProblems,
  mergeSources,
  type Provenance,
  schemaProblems,
} from '../scenario/load.js';
import { CONSUME_OPTIONS } from '../scenario/options.js';
import type { ValidityCheck } from '../scenario/schema.js';
import { defaultRunId, hostNames } from '../scenario/schema.js';
import type { SinkSettings } from '../sinks/index.js';
import { parseThreshold, type Threshold } from '../stats/thresholds.js';
import { DEFAULT_FIELDS, type DecodeFormat, parseFields, SEED_FIELDS } from '../wire/index.js';
import { parseConsumeFlags } from './args.js';

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

export const CONSUME_HELP = `Usage: fleetload consume [flags]

The standalone consumer (the seed's consumer): reads telemetry where the platform delivers it, keeps the
per-device ledger (lost, duplicated, reordered, late) and the delay histograms, and writes a results folder.
Settings: flags > FLEETLOAD_<FLAG> environment variables > the seed's variables (in brackets) > defaults.

Source:
  -H, --host URL              mqtt://, mqtts://, ws://, wss:// or nats://host:4222
      --source mqtt|nats|eventhubs   (default: nats for nats://, eventhubs with a connection string, else mqtt)
      --topic T               MQTT topic template or filter   (default: fleetload/{runId}/{deviceId} → fleetload/<runId>/+)
      --subject S             NATS subject filter             (default: the topic's subject, a/b/+ → a.b.*)
      --shared GROUP          MQTT: subscribe to $share/GROUP/<filter> (3.1.1 or 5), so the consumers of GROUP
                              split the stream (each message to one of them); merge their folders
      --group G               NATS durable / MQTT 5 share group (default: fleetload-<runId>)
      --qos 0|1|2             MQTT subscription QoS           (default: 1)
      --mqtt-version 3.1.1|5  (5 without --shared: shared under --group, as before) (default: 3.1.1)
      --client-id ID, --username U, --password S   MQTT (the password is never written)
      --ca FILE, --cert FILE, --key FILE, --servername NAME, --insecure   TLS for mqtts:// and wss://
      --tls-version 1.2|1.3|auto   pin the TLS version (default: auto)
      --nats-stream NAME      JetStream stream                (default: the stream capturing the subject)
      --nats-create-stream    no stream captures the subject: create one (--nats-stream NAME or FLEETLOAD,
                              capturing every run of the topic, messages kept 24h)
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
  -t, --run-time D            stop after D, at most 168h (default: until Ctrl-C)
      --grace D               after the run time, keep reading this long before loss is final (default: 5s)
      --out DIR               results folder root            (default: ./fleetload-results)
      --threshold EXPR        repeatable: e2e.p99<500, loss<0.1%, messages.received>0
      --accept observed       pass even when nothing of the run was received (default: such a run is
                              invalid, exit 5)
      --time-port P           answer producers' time probes on UDP port P, so fleetload run --clock-ref
                              HOST:P on other machines stamps ts in this consumer's clock (default: off)
      --json                  print summary.json to stdout at the end

Time series (as run: tagged role=consumer, segment=<partition-index>/<partition-count>):
      --influx-url URL, --influx-db DB, --influx-user U, --influx-password S   InfluxDB 1.x
      --influx-org O, --influx-bucket B, --influx-token S                      InfluxDB 2.x/3.x
      --influx-required       exit 3 if InfluxDB does not take the data (default: drops are counted)
      --prometheus-port N, --prometheus-host H, --prometheus-token T, --prometheus-public (no token),
      --prometheus-grace D (default: 15s), --web-allowed-hosts H   serve /metrics as run does
  -h, --help                  show this help

Exit codes: 0 ok · 1 a threshold failed · 2 invalid input · 3 could not attach · 4 internal error · 5 invalid run
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
  /** validity checks accepted when they fail (consume has one: observed) */
  accept: ValidityCheck[];
  /** answer producers' time probes (--clock-ref HOST:PORT) on this UDP port */
  timePort: number | undefined;
  format: DecodeFormat;
  fields: typeof DEFAULT_FIELDS;
  host: string;
  qos: 0 | 1 | 2;
  mqttVersion: '3.1.1' | '5';
  /** the resolved settings, secrets redacted (scenario.yaml) */
  resolved: Record<string, unknown>;
  /** lines worth printing that do not stop the consumer (e.g. an unknown FLEETLOAD_* variable ignored) */
  warnings: string[];
  /** InfluxDB / Prometheus, as `run` takes them (`consumer` is the source kind) */
  sinks: SinkSettings;
  /** the `segment` label: this instance's partition */
  segment: { index: number; count: number };
}

/**
 * `fleetload consume [flags]` → the consumer's configuration. The same tokenizer, loader and problem format as
 * `run` (src/cli/args.ts, src/scenario/load.ts), with the consume schema (src/scenario/consume-schema.ts), which
 * shares the run schema's field definitions. Every problem is listed at once; any problem is E_USAGE (exit 2).
 */
export function parseConsumeArgs(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): ConsumeConfig | 'help' {
  const t = parseConsumeFlags(argv);
  if (t.help) return 'help';
  const problems = [...t.problems];
  const warnings: string[] = [];
  const merged: Record<string, unknown> = {};
  const from: Provenance = new Map();
  mergeSources(merged, from, { env, flags: t.flags, options: CONSUME_OPTIONS }, problems, warnings);
  const where = (k: string): string => from.get(k) ?? 'default';
  const result = consumeInput.safeParse(merged, { error: describeIssue });
  if (!result.success) {
    const keys = CONSUME_OPTIONS.map((o) => o.key);
    problems.push(...schemaProblems(result.error.issues, keys, (path) => where(String(path[0]))));
  }
  const kind = sourceKindOf(merged);
  problems.push(...crossProblems(merged, kind, where));
  problems.push(...influxProblems(merged, (path) => where(String(path[0])), warnings));
  if (!result.success || problems.length > 0) throw new FleetloadError('E_USAGE', problems);

  const d = result.data;
  const tls = kind === 'mqtt' ? readTls(d, cwd, where, problems) : undefined;
  const out = outProblem(d.out, d.runId, cwd);
  if (out) problems.push(`out: ${out} (${where('out')})`);
  if (problems.length > 0) throw new FleetloadError('E_USAGE', problems);
  return toConfig(d, kind, tls, warnings);
}

/** --source, or guessed: nats for nats://, eventhubs with a connection string and no host, else mqtt. */
function sourceKindOf(m: Record<string, unknown>): SourceKind {
  if (typeof m.source === 'string') return m.source as SourceKind;
  const host = typeof m.host === 'string' ? m.host : undefined;
  if (host !== undefined && /^(nats|tls):\/\//i.test(host)) return 'nats';
  if (host === undefined && m.eventhubConnectionString !== undefined) return 'eventhubs';
  return 'mqtt';
}

/** Rules between settings, on the merged input (so they are listed with the schema's problems). */
function crossProblems(m: Record<string, unknown>, kind: SourceKind, where: (k: string) => string): string[] {
  const problems: string[] = [];
  const add = (k: string, msg: string): void => {
    problems.push(`${k}: ${msg} (${where(k)})`);
  };
  const count = typeof m.partitionCount === 'number' ? m.partitionCount : 1;
  const index = typeof m.partitionIndex === 'number' ? m.partitionIndex : 0;
  if (index >= count)
    add('partitionIndex', `--partition-index ${index} must be below --partition-count ${count}`);
  const host = typeof m.host === 'string' ? m.host : undefined;
  const v5 = m.mqttVersion === '5' || m.mqttVersion === 5;
  if (kind === 'mqtt') {
    if (host === undefined) add('host', 'the MQTT broker is needed, e.g. -H mqtt://broker:1883');
    else if (/^nats:/i.test(host)) add('host', 'is a NATS server; use --source nats, or an mqtt:// broker');
    const shared = typeof m.shared === 'string';
    if (count > 1 && !v5 && !shared) {
      add(
        'partitionCount',
        '> 1 with MQTT needs --shared GROUP: only a shared subscription splits the stream (a plain one gives every instance everything)',
      );
    }
    if (shared && typeof m.group === 'string' && m.group !== m.shared) {
      add('group', `--group ${m.group} and --shared ${m.shared} both name the share group; give one`);
    }
    if (v5 && !shared && typeof m.group === 'string') {
      const p = shareNameProblem(m.group);
      if (p) add('group', p);
    }
    if ((m.cert === undefined) !== (m.key === undefined))
      add(m.cert === undefined ? 'key' : 'cert', '--cert and --key go together');
  } else {
    for (const k of [
      'shared',
      'ca',
      'cert',
      'key',
      'servername',
      'insecure',
      'tlsVersion',
      'clientId',
      'username',
      'password',
    ] as const) {
      if (m[k] === undefined || m[k] === false || m[k] === 'auto') continue;
      if (k === 'shared') {
        add(
          k,
          kind === 'nats'
            ? 'applies to the mqtt source only; NATS consumers split a stream by sharing one durable: --group NAME'
            : 'applies to the mqtt source only; Event Hubs consumers split by --partition-index/--partition-count',
        );
      } else add(k, `applies to the mqtt source only; the source is ${kind}`);
    }
  }
  if (kind === 'nats' && (host === undefined || !/^(nats|tls):\/\//i.test(host))) {
    add('host', 'NATS needs nats://host:4222');
  }
  if (kind === 'eventhubs' && m.eventhubConnectionString === undefined) {
    add(
      'eventhubConnectionString',
      'is needed for --source eventhubs: --eventhub-connection-string (or EVENTHUB_CONNECTION_STRING)',
    );
  }
  return problems;
}

/** TLS material for mqtts:// / wss://: files read now (bounded), so a missing or mismatched one is input. */
function readTls(d: ConsumeParsed, cwd: string, where: (k: string) => string, problems: string[]) {
  const file = (k: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const f = d[k];
    if (f === undefined) return undefined;
    try {
      return readInputFile(resolvePath(cwd, f));
    } catch (e) {
      problems.push(`${k}: cannot read ${f}: ${readErrorWords(e)} (${where(k)})`);
      return undefined;
    }
  };
  const ca = file('ca');
  const cert = file('cert');
  const key = file('key');
  if (cert && key && d.cert !== undefined && d.key !== undefined) {
    const p = keyPairProblem(d.cert, d.key, cwd);
    if (p) problems.push(`key: ${p} (${where('key')})`);
  }
  const tlsVersion = d.tlsVersion === 'auto' ? undefined : d.tlsVersion;
  return { ca, cert, key, servername: d.servername, insecure: d.insecure ?? false, tlsVersion };
}

function buildSource(
  d: ConsumeParsed,
  kind: SourceKind,
  tls: ReturnType<typeof readTls> | undefined,
  fields: { group: string; filter: string; connectTimeoutMs: number },
): SourceConfig {
  const { group, filter, connectTimeoutMs } = fields;
  if (kind === 'nats') {
    return {
      kind: 'nats',
      url: d.host ?? '',
      subject: d.subject ?? subjectFromMqtt(filter),
      stream: d.natsStream,
      createStream: d.natsCreateStream === true,
      // a created stream captures every run of the topic, not only this one
      streamSubject: d.subject ?? subjectFromMqtt(filterFromTemplate(d.topic, '{runId}')),
      durable: group,
      connectTimeoutMs,
    };
  }
  if (kind === 'eventhubs') {
    return {
      kind: 'eventhubs',
      connectionString: d.eventhubConnectionString ?? '',
      eventHubName: d.eventhubName,
      consumerGroup: d.eventhubConsumerGroup,
      storageConnectionString: d.storageConnectionString,
      storageContainer: d.storageContainer,
      partitionIndex: d.partitionIndex,
      partitionCount: d.partitionCount,
      connectTimeoutMs,
    };
  }
  return {
    kind: 'mqtt',
    url: d.host ?? '',
    filter,
    qos: d.qos,
    version: d.mqttVersion === '5' ? 5 : 4,
    group,
    ...(d.shared !== undefined ? { shared: true } : {}),
    clientId:
      d.clientId ?? `fleetload-consume-${d.runId ?? 'any'}-${d.partitionIndex}-${process.pid}`.slice(0, 64),
    username: d.username,
    password: d.password,
    connectTimeoutMs,
    ca: tls?.ca,
    cert: tls?.cert,
    key: tls?.key,
    servername: tls?.servername,
    insecure: tls?.insecure ?? false,
    tlsVersion: tls?.tlsVersion,
  };
}

function toConfig(
  d: ConsumeParsed,
  kind: SourceKind,
  tls: ReturnType<typeof readTls> | undefined,
  warnings: string[],
): ConsumeConfig {
  const ms = (v: string | number | undefined): number | undefined =>
    v === undefined ? undefined : parseDurationMs(v);
  const format = d.format as DecodeFormat;
  const fields = parseFields(
    d.fields ?? '',
    format === 'seed' ? SEED_FIELDS : DEFAULT_FIELDS,
  ) as typeof DEFAULT_FIELDS;
  const folderId = d.runId ?? `consume-${defaultRunId()}`;
  const group = d.shared ?? d.group ?? `fleetload-${d.runId ?? 'consume'}`;
  const filter = filterFromTemplate(d.topic, d.runId ?? '{runId}');
  const runTimeMs = ms(d.runTime);
  const graceMs = ms(d.grace) as number;
  const source = buildSource(d, kind, tls, {
    group,
    filter,
    connectTimeoutMs: ms(d.connectTimeout) as number,
  });
  const connStr = d.eventhubConnectionString;
  const displayHost =
    kind === 'eventhubs'
      ? (/Endpoint=([^;]+)/i.exec(connStr ?? '')?.[1] ?? 'eventhubs')
      : redactUrl(d.host ?? '');
  const resolved: Record<string, unknown> = redactSecrets({
    command: 'consume',
    source: kind,
    host: kind === 'eventhubs' ? undefined : d.host,
    runId: d.runId,
    runTimeMs,
    graceMs,
    partitionIndex: d.partitionIndex,
    partitionCount: d.partitionCount,
    group: kind === 'eventhubs' ? undefined : group,
    shared: kind === 'mqtt' && source.kind === 'mqtt' ? (source.shared ?? d.mqttVersion === '5') : undefined,
    filter: kind === 'mqtt' ? filter : undefined,
    subject: source.kind === 'nats' ? source.subject : undefined,
    qos: kind === 'mqtt' ? d.qos : undefined,
    mqttVersion: kind === 'mqtt' ? d.mqttVersion : undefined,
    format,
    fields,
    eventhubName: source.kind === 'eventhubs' ? source.eventHubName : undefined,
    eventhubConsumerGroup: source.kind === 'eventhubs' ? source.consumerGroup : undefined,
    eventhubConnectionString: connStr !== undefined ? redactConnectionString(connStr) : undefined,
    storageConnectionString:
      source.kind === 'eventhubs' && source.storageConnectionString ? '***' : undefined,
    thresholds: d.thresholds,
    influxUrl: d.influxUrl !== undefined ? redactUrl(d.influxUrl) : undefined,
    influxDb: d.influxDb,
    influxOrg: d.influxOrg,
    influxBucket: d.influxBucket,
    influxUser: d.influxUser,
    influxPassword: d.influxPassword,
    influxToken: d.influxToken,
    prometheusPort: d.prometheusPort,
    prometheusHost: d.prometheusPort !== undefined ? d.prometheusHost : undefined,
    prometheusToken: d.prometheusToken,
  });
  for (const k of Object.keys(resolved)) if (resolved[k] === undefined) delete resolved[k];
  return {
    source,
    runId: d.runId,
    folderId,
    runTimeMs,
    graceMs,
    out: d.out,
    json: d.json,
    thresholds: d.thresholds.map((x) => parseThreshold(x)),
    accept: d.accept,
    timePort: d.timePort,
    format,
    fields,
    host: displayHost,
    qos: d.qos,
    mqttVersion: d.mqttVersion,
    resolved,
    warnings,
    sinks: {
      runId: d.runId ?? folderId,
      consumer: kind,
      influxUrl: d.influxUrl,
      influxDb: d.influxDb,
      influxUser: d.influxUser,
      influxPassword: d.influxPassword,
      influxOrg: d.influxOrg,
      influxBucket: d.influxBucket,
      influxToken: d.influxToken,
      influxRequired: d.influxRequired,
      prometheusPort: d.prometheusPort,
      prometheusHost: d.prometheusHost,
      prometheusToken: d.prometheusToken,
      prometheusPublic: d.prometheusPublic,
      prometheusGraceMs: parseDurationMs(d.prometheusGrace) as number,
      webAllowedHosts: (d.webAllowedHosts ?? []).flatMap(hostNames),
    },
    segment: { index: d.partitionIndex, count: d.partitionCount },
  };
}
