import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../../src/cli/certs.js';
import { type CliIo, runCli } from '../../src/cli/commands.js';
import { isFleetloadError } from '../../src/errors.js';
import { runCli as runCliProcess } from '../helpers/cli.js';

/**
 * The bad-input corpus: every case must end with exit 2, one line on stderr (`fleetload: …`) naming the culprit,
 * no stack trace, nothing on stdout, and nothing written to the results folder. Most cases call the CLI in
 * process (runCli with a fake io: fast); the cases marked `proc` also go through the built CLI as a user runs it
 * (`npm run build` first).
 *
 * In argv, `{dir}` is the case's working directory (its files are written there), `{out}` the results folder
 * that must stay as it was, `{fx}` a folder of certificates made once (a/ and b/: two unrelated CAs, one device
 * each).
 */

interface Case {
  name: string;
  argv: string[];
  /** what the message (after `fleetload: `) must say */
  says: RegExp;
  env?: Record<string, string>;
  files?: Record<string, string>;
  /** folders made inside {out} before the run (they must be all that is there after) */
  outHas?: string[];
  /** text that must not appear anywhere in the output (a password) */
  secret?: string;
  /** also run through the real process */
  proc?: boolean;
}

// run/plan get `--headless --out {out}` appended (so a case that wrongly passes does not open a dashboard)
const R = (...a: string[]) => ['run', ...a, '--headless', '--out', '{out}'];
const P = (...a: string[]) => ['plan', ...a, '--out', '{out}'];
const C = (...a: string[]) => ['consume', ...a, '--out', '{out}'];
const CM = (...a: string[]) => C('-H', 'mqtt://127.0.0.1:1', ...a);
const TLS = ['-H', 'mqtts://127.0.0.1:8883'];
const long = (n: number) => 'x'.repeat(n);
const alias = Array.from({ length: 9 }, (_, i) => {
  const prev = i === 0 ? 'x' : `*a${i - 1}`;
  return `a${i}: &a${i} [${Array(10).fill(prev).join(', ')}]`;
}).join('\n');

const flags: Case[] = [
  { name: 'unknown flag', argv: R('--foo'), says: /^unknown flag --foo; see fleetload run --help/ },
  { name: "typo'd flag", argv: R('--devics', '5'), says: /unknown flag --devics; did you mean --devices\?/ },
  {
    name: 'single-dash long flag',
    argv: R('-devices', '5'),
    says: /unknown flag -devices; did you mean --devices\?/,
  },
  { name: 'typo --spawnrate', argv: R('--spawnrate', '5'), says: /did you mean --spawn-rate\?/ },
  { name: 'typo --thresholds', argv: R('--thresholds', 'loss<1%'), says: /did you mean --threshold\?/ },
  { name: 'missing value', argv: ['run', '--headless', '--host'], says: /--host needs a value/ },
  { name: 'value is a flag', argv: R('-t', '--json'), says: /--run-time needs a value/ },
  { name: 'boolean with value', argv: R('--json=yes'), says: /--json takes no value \(got "yes"\)/ },
  { name: 'two scenario files', argv: R('a.yaml', 'b.yaml'), says: /unexpected argument "b\.yaml"/ },
  { name: '-u abc', argv: R('-u', 'abc'), says: /--devices: "abc" is not a number/, proc: true },
  { name: '--qos 1x', argv: R('--qos', '1x'), says: /--qos: "1x" is not a number/ },
  { name: '--web-port abc', argv: R('--web-port', 'abc'), says: /--web-port: "abc" is not a number/ },
  { name: 'unknown command', argv: ['bogus'], says: /unknown command "bogus"/ },
  {
    name: 'worker started by hand',
    argv: ['worker'],
    says: /fleetload worker is started by fleetload run --workers K, not by hand/,
  },
  { name: 'coordinator (there is none)', argv: ['coordinator'], says: /unknown command "coordinator"/ },
];

// scale-out and verdict settings
const scale: Case[] = [
  { name: '--workers 0', argv: R('--workers', '0'), says: /workers: must be a whole number 1\.\.64 or auto/ },
  {
    name: '--workers 65',
    argv: R('--workers', '65'),
    says: /workers: must be a whole number 1\.\.64 or auto/,
  },
  {
    name: '--workers many',
    argv: R('--workers', 'many'),
    says: /workers: must be a whole number 1\.\.64 or auto/,
  },
  {
    name: '--start-at tomorrow',
    argv: R('--start-at', 'tomorrow'),
    says: /startAt: must be an RFC 3339 instant/,
  },
  {
    name: '--start-at without a zone',
    argv: R('--start-at', '2026-12-01T10:00:00'),
    says: /startAt: must be an RFC 3339 instant/,
  },
  { name: '--start-at +8d', argv: R('--start-at', '+200h'), says: /startAt: must be an RFC 3339 instant/ },
  { name: '--late-start maybe', argv: R('--late-start', 'maybe'), says: /lateStart: .*fail.*join/ },
  { name: '--clock-ref no port', argv: R('--clock-ref', 'consumer'), says: /clockRef: must be HOST:PORT/ },
  { name: '--clock-ref port 0', argv: R('--clock-ref', 'consumer:0'), says: /clockRef: must be HOST:PORT/ },
  {
    name: '--accept everything',
    argv: R('--accept', 'everything'),
    says: /accept\.0: must be one of connected, offered, observed, saturated; got "everything"/,
  },
  { name: '--min-offered 120%', argv: R('--min-offered', '120%'), says: /minOffered: must be a percentage/ },
  { name: '--min-offered abc', argv: R('--min-offered', 'abc'), says: /minOffered: must be a percentage/ },
  {
    name: 'consume --time-port 70000',
    argv: CM('--time-port', '70000'),
    says: /timePort: must be at most 65535/,
  },
  { name: 'consume --accept bogus', argv: CM('--accept', 'bogus'), says: /accept\.0: must be one of/ },
];

const numbers: Case[] = [
  { name: '-u 0', argv: R('-u', '0'), says: /devices: must be at least 1 \(from --devices\)/ },
  { name: '-u -5', argv: R('-u', '-5'), says: /devices: must be at least 1 \(from --devices\)/ },
  { name: '-u 1.5', argv: R('-u', '1.5'), says: /devices: must be a whole number.*\(from --devices\)/ },
  { name: '-u 20000000', argv: R('-u', '20000000'), says: /devices: must be at most 10000000/ },
  { name: '-u 1e400', argv: R('-u', '1e400'), says: /devices: .*\(from --devices\)/ },
  { name: '-r 0', argv: R('-r', '0'), says: /spawnRate: must be greater than 0 \(from --spawn-rate\)/ },
  { name: '-r -1', argv: R('-r', '-1'), says: /spawnRate: must be greater than 0/ },
  {
    name: '-r 1e-300',
    argv: R('-r', '1e-300'),
    says: /spawnRate: must be at least 0\.001 \(one per 1000 s\)/,
  },
  { name: '-r 1e9', argv: R('-r', '1e9'), says: /spawnRate: must be at most 1000000/ },
  {
    name: '--connect-rate 1e-9',
    argv: R('--connect-rate', '1e-9'),
    says: /connectRate: must be at least 0\.001/,
  },
  { name: '--qos 3', argv: R('--qos', '3'), says: /qos: must be one of 0, 1, 2; got 3 \(from --qos\)/ },
  { name: '--qos -1', argv: R('--qos', '-1'), says: /qos: must be one of 0, 1, 2; got -1/ },
  { name: '--consumer-qos 5', argv: R('--consumer-qos', '5'), says: /consumerQos: must be one of 0, 1, 2/ },
  { name: '--mqtt-version 4', argv: R('--mqtt-version', '4'), says: /mqttVersion: must be 3\.1\.1 or 5/ },
  { name: '--mqtt-version 3', argv: R('--mqtt-version', '3'), says: /mqttVersion: must be 3\.1\.1 or 5/ },
  {
    name: '--tls-version 1.1',
    argv: R(...TLS, '--tls-version', '1.1'),
    says: /tlsVersion: must be 1\.2, 1\.3 or auto \(from --tls-version\)/,
    proc: true,
  },
  {
    name: 'FLEETLOAD_TLS_VERSION=tls12',
    argv: R(...TLS),
    env: { FLEETLOAD_TLS_VERSION: 'tls12' },
    says: /tlsVersion: must be 1\.2, 1\.3 or auto \(from FLEETLOAD_TLS_VERSION\)/,
  },
  {
    name: 'tlsVersion: 1.0 in the scenario file',
    argv: R('s.yaml'),
    files: { 's.yaml': 'host: mqtts://127.0.0.1:8883\ntlsVersion: 1.0\n' },
    says: /tlsVersion: must be 1\.2, 1\.3 or auto/,
  },
  {
    name: 'consume --tls-version on NATS',
    argv: C('-H', 'nats://127.0.0.1:4222', '--tls-version', '1.2'),
    says: /tlsVersion: applies to the mqtt source only; the source is nats/,
  },
  {
    name: '--tls-version on mqtt://',
    argv: R('-H', 'mqtt://x', '--tls-version', '1.2'),
    says: /tlsVersion: only applies to mqtts:\/\/ and wss:\/\//,
  },
  { name: '--payload-size -1', argv: R('--payload-size', '-1'), says: /payloadSize: must be at least 0/ },
  {
    name: '--payload-size 300M',
    argv: R('--payload-size', '300000000'),
    says: /payloadSize: must be at most/,
  },
  { name: '--inflight 0', argv: R('--inflight', '0'), says: /inflight: must be at least 1/ },
  { name: '--inflight 70000', argv: R('--inflight', '70000'), says: /inflight: must be at most 65535/ },
  { name: '--web-port 70000', argv: R('--web-port', '70000'), says: /webPort: must be at most 65535/ },
  {
    name: '--prometheus-port 99999',
    argv: R('--prometheus-port', '99999'),
    says: /prometheusPort: must be at most/,
  },
  {
    name: '--messages-per-device 0',
    argv: R('--messages-per-device', '0'),
    says: /messagesPerDevice: must be at least 1/,
  },
  { name: '--offline-buffer 0', argv: R('--offline-buffer', '0'), says: /offlineBuffer: must be at least 1/ },
  { name: '--connect-rate 0', argv: R('--connect-rate', '0'), says: /connectRate: must be greater than 0/ },
  {
    name: '--consumer kafka',
    argv: R('--consumer', 'kafka'),
    says: /consumer: must be one of mqtt, nats, eventhubs, none; got "kafka"/,
  },
  { name: '--offline maybe', argv: R('--offline', 'maybe'), says: /offline: must be one of drop, buffer/ },
  {
    name: '--backpressure block',
    argv: R('--backpressure', 'block'),
    says: /backpressure: must be one of drop, wait/,
  },
  {
    name: '--encoding xml',
    argv: R('--encoding', 'xml'),
    says: /encoding: must be one of json, properties, binary/,
  },
  { name: '--sockets uv', argv: R('--sockets', 'uv'), says: /sockets: must be one of raw, node/ },
  { name: '--preset gcp', argv: R('--preset', 'gcp'), says: /preset: must be one of azure-iot-hub, aws-iot/ },
];

const durations: Case[] = [
  { name: '-t 10x', argv: R('-t', '10x'), says: /runTime: "10x" is not a duration.*\(from --run-time\)/ },
  { name: "-t ''", argv: R('-t', ''), says: /runTime: "" is not a duration/ },
  {
    name: '-t 30 (no unit)',
    argv: R('-t', '30'),
    says: /runTime: "30" has no unit; write 30s for seconds or 30ms/,
  },
  { name: '-t 0s', argv: R('-t', '0s'), says: /runTime: must be greater than 0/ },
  {
    name: '-t 99999999999h',
    argv: R('-t', '99999999999h'),
    says: /runTime: "99999999999h" is too long: at most 168h \(7 days\)/,
    proc: true,
  },
  { name: '-t 169h', argv: R('-t', '169h'), says: /runTime: "169h" is too long/ },
  { name: '-t -5s', argv: R('-t', '-5s'), says: /runTime: "-5s" is not a duration/ },
  { name: '-i 0s', argv: R('-i', '0s'), says: /interval: must be at least 1ms \(from --interval\)/ },
  { name: '-i 1h30x', argv: R('-i', '1h30x'), says: /interval: "1h30x" is not a duration/ },
  { name: '-i 200h', argv: R('-i', '200h'), says: /interval: "200h" is too long/ },
  { name: '--jitter abc', argv: R('--jitter', 'abc'), says: /jitter: "abc" is not a duration/ },
  { name: '--grace 2d', argv: R('--grace', '2d'), says: /grace: "2d" is not a duration/ },
  {
    name: '--connect-timeout 0s',
    argv: R('--connect-timeout', '0s'),
    says: /connectTimeout: must be greater than 0/,
  },
  { name: '--keepalive 70000s', argv: R('--keepalive', '70000s'), says: /keepalive: must be at most 65535s/ },
  { name: '--tick 2s', argv: R('--tick', '2s'), says: /tick: must be at most 1s/ },
  { name: '--sas-ttl 5s', argv: R('--sas-ttl', '5s'), says: /sasTtl: must be at least 10s/ },
  {
    name: 'reconnect min above max',
    argv: R('--reconnect-min', '10m', '--reconnect-max', '1s'),
    says: /reconnectMin: must not be above reconnectMax \(1000 ms\).*\(from --reconnect-min\)/,
    proc: true,
  },
  {
    name: '--prometheus-grace 1y',
    argv: R('--prometheus-grace', '1y'),
    says: /prometheusGrace: "1y" is not a duration/,
  },
  {
    name: '--stage 10s',
    argv: R('--stage', '10s'),
    says: /stages\.0: a stage is DURATION:DEVICES, e\.g\. 30s:1000/,
  },
  {
    name: '--stage abc:100',
    argv: R('--stage', 'abc:100'),
    says: /stages\.0: "abc" in "abc:100" is not a duration/,
  },
  {
    name: '--stage 200h:10',
    argv: R('--stage', '200h:10'),
    says: /stages\.0: "200h" in "200h:10" is too long/,
  },
  { name: '--stage 10s:huge', argv: R('--stage', '10s:99999999999'), says: /stages\.0: 99999999999 devices/ },
  {
    name: 'stages with --devices',
    argv: R('--stage', '10s:100', '-u', '10'),
    says: /devices: stages set the fleet size and the run time; drop --devices/,
  },
  {
    name: 'stages with --run-time',
    argv: R('--stage', '10s:100', '-t', '10s'),
    says: /runTime: stages set the fleet size/,
  },
];

const urls: Case[] = [
  {
    name: '-H http://x',
    argv: R('-H', 'http://x'),
    says: /host: scheme "http:" .*not supported.*\(from --host\)/,
  },
  { name: '-H not a url', argv: R('-H', 'not a url'), says: /host: "not a url" is not a URL/ },
  {
    name: '-H port out of range',
    argv: R('-H', 'mqtt://host:99999'),
    says: /host: port 99999 .*out of range/,
  },
  {
    name: '-H port 0',
    argv: R('-H', 'mqtt://host:0'),
    says: /host: port 0 in "mqtt:\/\/host:0" is out of range/,
  },
  { name: '-H ftp://', argv: R('-H', 'ftp://x'), says: /host: scheme "ftp:"/ },
  { name: '-H very long', argv: R('-H', `mqtt://${long(3000)}`), says: /host: is 3007 characters long/ },
  {
    name: '-H password redacted in the message',
    argv: R('-H', 'mqtt://alice:s3cretPW@host:99999'),
    says: /host: port 99999 in "mqtt:\/\/alice:\*\*\*@host:99999"/,
    secret: 's3cretPW',
    proc: true,
  },
  {
    name: '-H password with an unencoded @ redacted whole',
    argv: R('-H', 'mqtt://alice:s3cret@retX99@host:99999'),
    says: /"mqtt:\/\/alice:\*\*\*@host:99999"/,
    secret: 'retX99',
  },
  {
    name: '--consumer-host not a url',
    argv: R('--consumer-host', 'not a url'),
    says: /consumerHost: "not a url" is not a URL.*\(from --consumer-host\)/,
    proc: true,
  },
  {
    name: '--consumer-host http://',
    argv: R('--consumer-host', 'http://x'),
    says: /consumerHost: scheme "http:" in "http:\/\/x" is not supported/,
  },
  {
    name: '--consumer-host nats:// for mqtt',
    argv: R('--consumer-host', 'nats://x:4222'),
    says: /consumerHost: is a NATS server; the mqtt consumer needs/,
  },
  {
    name: '--consumer nats without host',
    argv: R('--consumer', 'nats'),
    says: /consumer: nats needs --consumer-host nats:\/\/host:4222/,
  },
  {
    name: '--consumer nats with mqtt host',
    argv: R('--consumer', 'nats', '--consumer-host', 'mqtt://x'),
    says: /consumer: nats needs --consumer-host nats:/,
  },
  {
    name: '--consumer eventhubs without string',
    argv: R('--consumer', 'eventhubs'),
    says: /consumer: eventhubs needs --eventhub-connection-string/,
  },
  {
    name: '--influx-url ftp://',
    argv: R('--influx-url', 'ftp://x', '--influx-db', 'd'),
    says: /influxUrl: scheme "ftp:"/,
  },
  {
    name: '--influx-url with credentials',
    argv: R('--influx-url', 'http://u:hunter2pw@x:8086', '--influx-db', 'd'),
    says: /influxUrl: must not contain credentials/,
    secret: 'hunter2pw',
  },
  {
    name: '--influx-url without db',
    argv: R('--influx-url', 'http://x:8086'),
    says: /influxUrl: InfluxDB needs either --influx-db/,
  },
  {
    name: '--influx-url with a query',
    argv: R('--influx-url', 'http://x:8086/?db=a', '--influx-db', 'd'),
    says: /influxUrl: must not have a query/,
  },
  {
    name: '--influx-url not a url',
    argv: R('--influx-url', 'nope', '--influx-db', 'd'),
    says: /influxUrl: "nope" is not a URL/,
  },
  {
    name: 'v5 without --host',
    argv: R('--mqtt-version', '5'),
    says: /mqttVersion: 5 needs an external broker.*aedes.*--host/,
  },
  {
    name: 'password without username',
    argv: R('--password', 'pw'),
    says: /password: MQTT 3\.1\.1 does not allow a password without a username/,
  },
  {
    name: 'properties without v5',
    argv: R('--encoding', 'properties'),
    says: /encoding: properties puts the metadata in MQTT 5 user properties/,
  },
  {
    name: '--insecure on mqtt://',
    argv: R('-H', 'mqtt://x', '--insecure'),
    says: /insecure: only applies to mqtts:\/\/ and wss:\/\//,
  },
  {
    name: '--ca on mqtt://',
    argv: R('-H', 'mqtt://x', '--ca', 'ca.pem'),
    says: /ca: only applies to mqtts:\/\//,
  },
  {
    name: '--servername on mqtt://',
    argv: R('-H', 'mqtt://x', '--servername', 'n'),
    says: /servername: only applies to mqtts:\/\//,
  },
  {
    name: '--hub without preset',
    argv: R('--hub', 'x.azure-devices.net'),
    says: /hub: only applies with --preset azure-iot-hub/,
  },
  {
    name: 'azure preset without hub',
    argv: R('--preset', 'azure-iot-hub', '--device-key', 'YWJj'),
    says: /preset: azure-iot-hub needs --hub/,
  },
  {
    name: 'aws preset without cert',
    argv: R('--preset', 'aws-iot', '-H', 'mqtts://x'),
    says: /preset: aws-iot needs --cert and --key/,
  },
  {
    name: 'azure bad hub name',
    argv: R('--preset', 'azure-iot-hub', '--hub', 'bad_name', '--device-key', 'YWJj'),
    says: /hub: must be the IoT hub host name/,
  },
  {
    name: 'azure bad device key',
    argv: R('--preset', 'azure-iot-hub', '--hub', 'h.azure-devices.net', '--device-key', 'not base64!!'),
    says: /deviceKey: is not a base64 key/,
  },
  {
    name: 'azure with --username',
    argv: R(
      '--preset',
      'azure-iot-hub',
      '--hub',
      'h.azure-devices.net',
      '--device-key',
      'YWJj',
      '--username',
      'u',
    ),
    says: /username: preset azure-iot-hub sets the username/,
  },
];

const templates: Case[] = [
  {
    name: 'topic placeholder typo',
    argv: R('--topic', 'a/{deviceID}'),
    says: /topic: unknown placeholder \{deviceID\}; did you mean \{deviceId\}\? \(from --topic\)/,
  },
  { name: 'topic unbalanced brace', argv: R('--topic', 'a/{deviceId'), says: /topic: unbalanced brace/ },
  {
    name: 'topic with +',
    argv: R('--topic', 'a/+/b'),
    says: /topic: a publish topic must not contain \+, # or NUL/,
  },
  { name: 'topic with #', argv: R('--topic', 'a/#'), says: /topic: a publish topic must not contain/ },
  {
    name: 'topic over 65535 bytes',
    argv: R('--topic', long(70_000)),
    says: /topic: is 70000 bytes long; MQTT allows at most 65535/,
    proc: true,
  },
  { name: 'topic empty', argv: R('--topic', ''), says: /topic: must not be empty/ },
  {
    name: 'topic over 65535 bytes once expanded',
    argv: R('--device-id', `${long(40_000)}{index}`, '--topic', '{deviceId}/{deviceId}'),
    says: /topic: is 80005 bytes for the last device \(index 99\); MQTT allows at most 65535 \(from --topic\)/,
  },
  {
    name: 'device id with {deviceId}',
    argv: R('--device-id', 'd-{deviceId}'),
    says: /deviceId: unknown placeholder \{deviceId\}/,
  },
  {
    name: 'client id unknown placeholder',
    argv: R('--client-id', '{nope}'),
    says: /clientId: unknown placeholder \{nope\}/,
  },
  {
    name: 'username unknown placeholder',
    argv: R('--username', 'u{foo}'),
    says: /username: unknown placeholder \{foo\}; known: \{deviceId\} \{index\} \{runId\}/,
    proc: true,
  },
  {
    name: 'username unbalanced brace',
    argv: R('--username', 'u{deviceId'),
    says: /username: unbalanced brace/,
  },
  {
    name: 'command topic unknown placeholder',
    argv: R('--command-topic', 'c/{foo}'),
    says: /commandTopic: unknown placeholder \{foo\}/,
  },
  { name: 'command topic empty', argv: R('--command-topic', ''), says: /commandTopic: must not be empty/ },
];

const sourceIps: Case[] = [
  {
    name: 'source-ip /33',
    argv: R('--source-ip', '127.0.0.1/33'),
    says: /sourceIp: "127\.0\.0\.1\/33": the prefix length must be 0 to 32/,
  },
  {
    name: 'source-ip /8 not local',
    argv: R('--source-ip', '10.0.0.0/8', '-u', '2'),
    says: /sourceIp: 10\.0\.0\.0 is not an address of this machine/,
    proc: true,
  },
  {
    name: 'source-ip /1 not local',
    argv: R('--source-ip', '1.2.3.4/1', '-u', '2'),
    says: /sourceIp: 0\.0\.0\.0 is not an address of this machine/,
  },
  {
    name: 'source-ip public address',
    argv: R('--source-ip', '8.8.8.8'),
    says: /sourceIp: 8\.8\.8\.8 is not an address of this machine/,
  },
  {
    name: 'source-ip bad octet',
    argv: R('--source-ip', '999.1.1.1'),
    says: /sourceIp: "999\.1\.1\.1" is not an IP address/,
  },
  { name: 'source-ip words', argv: R('--source-ip', 'abc'), says: /sourceIp: "abc" is not an IP address/ },
  {
    name: 'source-ip IPv6 range',
    argv: R('--source-ip', '::1/64'),
    says: /sourceIp: "::1\/64": IPv6 ranges are not supported/,
  },
  { name: 'source-ip empty list', argv: R('--source-ip', ','), says: /sourceIp: lists no address/ },
  {
    name: 'source-ip bad prefix',
    argv: R('--source-ip', '127.0.0.1/x'),
    says: /sourceIp: "127\.0\.0\.1\/x": the prefix length must be 0 to 32/,
  },
  {
    name: 'source-ip one bad of many',
    argv: R('--source-ip', '127.0.0.2,127.0.0.300'),
    says: /sourceIp: "127\.0\.0\.300" is not an IP address/,
  },
];

const thresholds: Case[] = [
  {
    name: 'threshold <<',
    argv: R('--threshold', 'e2e.p99<<5'),
    says: /thresholds\.0: threshold "e2e\.p99<<5": "<<" is not a comparison/,
    proc: true,
  },
  {
    name: 'threshold unknown metric',
    argv: R('--threshold', 'nonsense.p99<5'),
    says: /thresholds\.0: threshold "nonsense\.p99<5": unknown metric/,
  },
  {
    name: 'threshold no comparison',
    argv: R('--threshold', 'e2e.p99'),
    says: /thresholds\.0: threshold "e2e\.p99"/,
  },
  {
    name: 'threshold not a number',
    argv: R('--threshold', 'loss<abc'),
    says: /thresholds\.0: threshold "loss<abc"/,
  },
  { name: 'threshold empty', argv: R('--threshold', ''), says: /thresholds\.0: must not be empty/ },
  {
    name: 'threshold bad percentile',
    argv: R('--threshold', 'e2e.p42<5'),
    says: /thresholds\.0: threshold "e2e\.p42<5"/,
  },
  {
    name: 'second threshold bad',
    argv: R('--threshold', 'loss<1%', '--threshold', 'e2e.p99<x'),
    says: /thresholds\.1: threshold "e2e\.p99<x"/,
  },
  {
    name: 'threshold from env',
    argv: R(),
    env: { FLEETLOAD_THRESHOLD: 'e2e.p99<5,bogus<1' },
    says: /thresholds\.1: threshold "bogus<1".*\(from FLEETLOAD_THRESHOLD\)/,
  },
];

const runIds: Case[] = [
  {
    name: 'run id with space',
    argv: R('--run-id', 'bad id!'),
    says: /runId: must start with a letter or digit.*\(from --run-id\)/,
  },
  { name: 'run id ../x', argv: R('--run-id', '../x'), says: /runId: must start with a letter or digit/ },
  {
    name: 'run id .hidden',
    argv: R('--run-id', '.hidden'),
    says: /runId: must start with a letter or digit/,
  },
  {
    name: 'run id 129 characters',
    argv: R('--run-id', `r${long(128)}`),
    says: /runId: must start with .*\(max 128\)/,
  },
  { name: 'run id empty', argv: R('--run-id', ''), says: /runId: must start with a letter or digit/ },
  { name: 'run id non-ASCII', argv: R('--run-id', 'ré'), says: /runId: must start with a letter or digit/ },
  { name: 'run id slash', argv: R('--run-id', 'a/b'), says: /runId: must start with a letter or digit/ },
  {
    name: 'run id of an earlier (killed) run',
    argv: R('--run-id', 'taken'),
    outHas: ['taken'],
    says: /out: results folder .*taken already exists \(an earlier run with this id\); pick another --run-id or --out/,
    proc: true,
  },
];

const paths: Case[] = [
  {
    name: 'missing scenario file',
    argv: R('missing.yaml'),
    says: /cannot read scenario file missing\.yaml: no such file/,
  },
  {
    name: 'scenario is a directory',
    argv: R('{dir}'),
    says: /cannot read scenario file .*: it is a directory/,
  },
  {
    name: 'scenario is /dev/zero',
    argv: R('/dev/zero'),
    says: /cannot read scenario file \/dev\/zero: not a regular file/,
    proc: true,
  },
  {
    name: 'scenario over 1 MiB',
    argv: R('big.yaml'),
    files: { 'big.yaml': `# ${long(1_100_000)}\n` },
    says: /cannot read scenario file big\.yaml: larger than 1 MiB/,
  },
  {
    name: '--payload missing',
    argv: R('--payload', 'nope.json'),
    says: /payload: cannot read nope\.json: ENOENT/,
  },
  {
    name: '--payload /dev/zero',
    argv: R('--payload', '/dev/zero'),
    says: /payload: cannot read \/dev\/zero: not a regular file/,
  },
  {
    name: '--payload directory',
    argv: R('--payload', '{dir}'),
    says: /payload: cannot read .*: it is a directory/,
  },
  {
    name: '--payload over 1 MiB',
    argv: R('--payload', 'p.json'),
    files: { 'p.json': `{"a":"${long(1_100_000)}"}` },
    says: /payload: cannot read p\.json: larger than 1 MiB/,
  },
  {
    name: '--payload unknown placeholder',
    argv: R('--payload', 'p.json'),
    files: { 'p.json': '{"t": {{temperature}}}' },
    says: /payload: p\.json: \{\{temperature\}\} at line 1, column 7: unknown placeholder; known: deviceId /,
  },
  {
    name: '--payload sets seq',
    argv: R('--payload', 'p.json'),
    files: { 'p.json': '{"seq": 1}' },
    says: /payload: p\.json: the template sets seq/,
  },
  {
    name: '--out /proc/x',
    argv: ['run', '--headless', '--out', '/proc/x'],
    says: /out: cannot use \/proc\/x: \/proc is a system pseudo file system/,
    proc: true,
  },
  {
    name: '--out under /sys',
    argv: ['run', '--headless', '--out', '/sys/fleetload'],
    says: /out: cannot use \/sys\/fleetload: \/sys is a system pseudo file system/,
  },
  {
    name: '--out through a file',
    argv: ['run', '--headless', '--out', '/dev/null/x'],
    says: /out: cannot use \/dev\/null\/x: \/dev\/null is not a directory/,
  },
  {
    name: '--out is a file',
    argv: ['run', '--headless', '--out', 'f/sub'],
    files: { f: 'x' },
    says: /out: cannot use f\/sub: .*\/f is not a directory/,
  },
  { name: '--out empty', argv: ['run', '--headless', '--out', ''], says: /out: must not be empty/ },
  {
    // refused up front like --out: a CI job must not get PASSED, exit 0 and no report
    name: '--junit /proc/x.xml',
    argv: R('--junit', '/proc/x.xml'),
    says: /junit: cannot write \/proc\/x\.xml in \/proc: \/proc is a system pseudo file system \(nothing can be written there\) \(from --junit\)/,
    proc: true,
  },
  {
    name: '--junit is a directory',
    argv: R('--junit', '{dir}'),
    says: /junit: cannot write .*: it is a directory; give a file name/,
  },
  {
    name: '--junit through a file',
    argv: R('--junit', 'f/junit.xml'),
    files: { f: 'x' },
    says: /junit: cannot write f\/junit\.xml in .*: .*\/f is not a directory/,
  },
  {
    name: '--ca missing',
    argv: R(...TLS, '--ca', 'nope.pem'),
    says: /ca: cannot read CA file nope\.pem: no such file/,
  },
  {
    name: '--ca not PEM',
    argv: R(...TLS, '--ca', 'ca.pem'),
    files: { 'ca.pem': 'hello' },
    says: /ca: ca\.pem is not a PEM certificate/,
  },
  {
    name: '--ca /dev/zero',
    argv: R(...TLS, '--ca', '/dev/zero'),
    says: /ca: cannot read CA file \/dev\/zero: .*not a regular file/,
  },
  {
    name: '--cert without --key',
    argv: R(...TLS, '--cert', '{fx}/a/{deviceId}.pem'),
    says: /cert: needs --key too/,
  },
  {
    name: '--key not PEM',
    argv: R(...TLS, '--cert', '{fx}/a/{deviceId}.pem', '--key', 'k.pem'),
    files: { 'k.pem': 'nope' },
    says: /key: k\.pem is not a PEM private key/,
  },
  {
    name: 'device key does not match its certificate',
    argv: R(
      ...TLS,
      '--ca',
      '{fx}/a/ca.pem',
      '--cert',
      '{fx}/a/{deviceId}.pem',
      '--key',
      '{fx}/b/{deviceId}.key',
    ),
    says: /key: .*b\/dev-000000\.key is not the private key of .*a\/dev-000000\.pem; give the key the certificate was made for/,
    proc: true,
  },
  {
    name: 'consumer key does not match its certificate',
    argv: R(
      ...TLS,
      '--ca',
      '{fx}/a/ca.pem',
      '--consumer-cert',
      '{fx}/a/dev-000000.pem',
      '--consumer-key',
      '{fx}/b/dev-000000.key',
    ),
    says: /consumerKey: .*b\/dev-000000\.key is not the private key of .*a\/dev-000000\.pem/,
  },
  {
    name: '--cert unknown placeholder',
    argv: R(...TLS, '--cert', '{foo}.pem', '--key', 'k'),
    says: /cert: unknown placeholder \{foo\}/,
  },
];

const yaml: Case[] = [
  {
    name: 'YAML unknown key',
    argv: R('s.yaml'),
    files: { 's.yaml': 'devices: 5\ndevicez: 3\n' },
    says: /devicez: unknown key; did you mean devices\? \(s\.yaml:2\)/,
  },
  {
    name: 'YAML syntax error',
    argv: R('s.yaml'),
    files: { 's.yaml': 'devices: 5\ntopic: [a, b\n' },
    says: /^s\.yaml:\d+:\d+: /,
  },
  {
    name: 'YAML devices: "many"',
    argv: R('s.yaml'),
    files: { 's.yaml': 'devices: "many"\n' },
    says: /devices: must be a number, not "many" \(s\.yaml:1\)/,
  },
  {
    name: 'YAML empty file',
    argv: R('s.yaml'),
    files: { 's.yaml': '' },
    says: /s\.yaml: the file is empty; a scenario file is a mapping of settings/,
    proc: true,
  },
  {
    name: 'YAML comments only',
    argv: R('s.yaml'),
    files: { 's.yaml': '# nothing\n' },
    says: /s\.yaml: the file is empty/,
  },
  {
    name: 'YAML alias bomb',
    argv: R('s.yaml'),
    files: { 's.yaml': `${alias}\n` },
    says: /s\.yaml: too many alias expansions \(more than 100\)/,
    proc: true,
  },
  {
    name: 'YAML top-level list',
    argv: R('s.yaml'),
    files: { 's.yaml': '- devices: 5\n' },
    says: /s\.yaml: a scenario file must be a mapping/,
  },
  {
    name: 'YAML top-level scalar',
    argv: R('s.yaml'),
    files: { 's.yaml': 'hello\n' },
    says: /s\.yaml: a scenario file must be a mapping/,
  },
  {
    name: 'YAML duplicate key',
    argv: R('s.yaml'),
    files: { 's.yaml': 'devices: 1\ndevices: 2\n' },
    says: /^s\.yaml:2:\d+: .*unique/,
  },
  {
    name: 'YAML stage devices -1',
    argv: R('s.yaml'),
    files: { 's.yaml': 'stages:\n  - duration: 10s\n    devices: -1\n' },
    says: /stages\.0\.devices: must be at least 0 \(s\.yaml:3\)/,
  },
  {
    name: 'YAML stage without devices',
    argv: R('s.yaml'),
    files: { 's.yaml': 'stages:\n  - duration: 10s\n' },
    says: /stages\.0/,
  },
  {
    name: 'YAML thresholds not a list',
    argv: R('s.yaml'),
    files: { 's.yaml': 'thresholds: "e2e.p99<5"\n' },
    says: /thresholds: must be a list/,
  },
  {
    name: 'YAML host a number',
    argv: R('s.yaml'),
    files: { 's.yaml': 'host: 5\n' },
    says: /host: must be text, not 5 \(s\.yaml:1\)/,
  },
  {
    name: 'YAML topic a list',
    argv: R('s.yaml'),
    files: { 's.yaml': 'topic: [a]\n' },
    says: /topic: must be text/,
  },
  {
    name: 'YAML json "yes"',
    argv: R('s.yaml'),
    files: { 's.yaml': 'json: "yes"\n' },
    says: /json: must be true or false, not "yes" \(s\.yaml:1\)/,
  },
  {
    name: 'YAML runTime number',
    argv: R('s.yaml'),
    files: { 's.yaml': 'runTime: 30\n' },
    says: /runTime: "30" has no unit/,
  },
  {
    name: 'YAML __proto__ key',
    argv: R('s.yaml'),
    files: { 's.yaml': '__proto__:\n  devices: 5\n' },
    says: /__proto__: unknown key \(s\.yaml:1\)/,
  },
  {
    name: 'YAML nested __proto__',
    argv: R('s.yaml'),
    files: { 's.yaml': 'stages:\n  - duration: 1s\n    devices: 1\n    __proto__: {}\n' },
    says: /stages\.0\.__proto__: unknown key/,
  },
  {
    name: 'YAML nested too deeply',
    argv: R('s.yaml'),
    files: { 's.yaml': `a: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n` },
    says: /^s\.yaml:1:\d+: nested too deeply/,
  },
  {
    name: 'YAML two documents',
    argv: R('s.yaml'),
    files: { 's.yaml': 'devices: 1\n---\ndevices: 2\n' },
    says: /^s\.yaml:2:1: Source contains multiple documents/,
  },
  {
    name: 'YAML secret in a bad URL',
    argv: R('s.yaml'),
    files: { 's.yaml': 'host: mqtt://u:s3cretYamlPw@h:99999\n' },
    says: /host: port 99999 in "mqtt:\/\/u:\*\*\*@h:99999".*\(s\.yaml:1\)/,
    secret: 's3cretYamlPw',
  },
  {
    name: 'YAML tab indentation',
    argv: R('s.yaml'),
    files: { 's.yaml': 'stages:\n\t- 10s:1\n' },
    says: /^s\.yaml:\d+:\d+: /,
  },
  {
    name: 'YAML nested unknown key',
    argv: R('s.yaml'),
    files: { 's.yaml': 'stages:\n  - duration: 10s\n    devices: 1\n    devicez: 2\n' },
    says: /stages\.0\.devicez: unknown key \(s\.yaml:4\)/,
  },
  {
    name: 'YAML sourceIp not local',
    argv: R('s.yaml'),
    files: { 's.yaml': 'sourceIp: [192.0.2.1]\n' },
    says: /sourceIp: 192\.0\.2\.1 is not an address of this machine.*\(s\.yaml:1\)/,
  },
];

const env: Case[] = [
  {
    name: '--segment 2/2 (index past the count)',
    argv: R('--segment', '2/2'),
    says: /segment: "2\/2": the index must be below the count \(0-based: segments 0\/2 … 1\/2\) \(from --segment\)/,
    proc: true,
  },
  {
    name: '--segment 1-4',
    argv: P('--segment', '1-4'),
    says: /segment: "1-4" is not i\/N; give the 0-based segment index and the count, e\.g\. 0\/4/,
  },
  { name: '--segment 0/0', argv: R('--segment', '0/0'), says: /segment: "0\/0": the count must be 1\.\./ },
  {
    name: 'FLEETLOAD_SEGMENT=-1/4',
    argv: R(),
    env: { FLEETLOAD_SEGMENT: '-1/4' },
    says: /segment: "-1\/4" is not i\/N.*\(from FLEETLOAD_SEGMENT\)/,
  },
  {
    name: 'JOB_COMPLETION_INDEX past FLEETLOAD_SEGMENTS',
    argv: R(),
    env: { JOB_COMPLETION_INDEX: '4', FLEETLOAD_SEGMENTS: '4' },
    says: /segment: "4\/4": the index must be below the count .*\(from JOB_COMPLETION_INDEX and FLEETLOAD_SEGMENTS\)/,
  },
  {
    name: 'FLEETLOAD_SEGMENTS without JOB_COMPLETION_INDEX',
    argv: R(),
    env: { FLEETLOAD_SEGMENTS: '4' },
    says: /segment: FLEETLOAD_SEGMENTS=4 needs JOB_COMPLETION_INDEX \(a Kubernetes Indexed Job sets it\)/,
  },
  {
    name: '--segment with --workers',
    argv: R('--segment', '0/2', '--workers', '2'),
    says: /segment: cannot be combined with --workers .*run one process per segment/,
  },
  {
    name: 'FLEETLOAD_DEVICES=abc',
    argv: R(),
    env: { FLEETLOAD_DEVICES: 'abc' },
    says: /devices: "abc" is not a number \(from FLEETLOAD_DEVICES\)/,
    proc: true,
  },
  {
    name: 'FLEETLOAD_DEVISES (typo)',
    argv: R(),
    env: { FLEETLOAD_DEVISES: '5' },
    says: /FLEETLOAD_DEVISES: unknown environment variable; did you mean FLEETLOAD_DEVICES\?/,
  },
  {
    name: 'FLEETLOAD_HEADLESS=maybe',
    argv: R(),
    env: { FLEETLOAD_HEADLESS: 'maybe' },
    says: /headless: "maybe" is not a boolean; use true or false \(from FLEETLOAD_HEADLESS\)/,
  },
  {
    name: 'FLEETLOAD_RUN_TIME huge',
    argv: R(),
    env: { FLEETLOAD_RUN_TIME: '99999999h' },
    says: /runTime: "99999999h" is too long.*\(from FLEETLOAD_RUN_TIME\)/,
  },
  {
    name: 'FLEETLOAD_HOST not a url',
    argv: R(),
    env: { FLEETLOAD_HOST: 'not a url' },
    says: /host: "not a url" is not a URL.*\(from FLEETLOAD_HOST\)/,
  },
  {
    name: 'FLEETLOAD_QOS=7',
    argv: R(),
    env: { FLEETLOAD_QOS: '7' },
    says: /qos: must be one of 0, 1, 2; got 7 \(from FLEETLOAD_QOS\)/,
  },
  {
    name: 'FLEETLOAD_SOURCE_IP /40',
    argv: R(),
    env: { FLEETLOAD_SOURCE_IP: '127.0.0.1/40' },
    says: /sourceIp: "127\.0\.0\.1\/40".*\(from FLEETLOAD_SOURCE_IP\)/,
  },
  {
    name: 'FLEETLOAD_RUN_ID bad',
    argv: R(),
    env: { FLEETLOAD_RUN_ID: 'a b' },
    says: /runId: must start with .*\(from FLEETLOAD_RUN_ID\)/,
  },
  {
    name: 'FLEETLOAD_TOPIC with +',
    argv: R(),
    env: { FLEETLOAD_TOPIC: 'a/+' },
    says: /topic: a publish topic must not contain.*\(from FLEETLOAD_TOPIC\)/,
  },
  {
    name: 'FLEETLOAD_SPAWN_RATE=0',
    argv: R(),
    env: { FLEETLOAD_SPAWN_RATE: '0' },
    says: /spawnRate: must be greater than 0 \(from FLEETLOAD_SPAWN_RATE\)/,
  },
];

const consume: Case[] = [
  {
    name: 'consume unknown flag',
    argv: CM('--bogus'),
    says: /unknown flag --bogus; see fleetload consume --help/,
  },
  {
    name: 'consume typo',
    argv: CM('--partition-indx', '1'),
    says: /unknown flag --partition-indx; did you mean --partition-index\? see fleetload consume --help/,
  },
  {
    name: 'consume positional',
    argv: CM('extra'),
    says: /unexpected argument "extra": consume takes flags only/,
  },
  {
    name: 'consume without host',
    argv: C(),
    says: /host: the MQTT broker is needed, e\.g\. -H mqtt:\/\/broker:1883/,
    proc: true,
  },
  {
    name: 'consume -H not a url',
    argv: C('-H', 'not a url'),
    says: /host: "not a url" is not a URL.*\(from --host\)/,
  },
  {
    name: 'consume -H http://',
    argv: C('-H', 'http://x'),
    says: /host: scheme "http:" in "http:\/\/x" is not supported/,
  },
  {
    name: 'consume --source kafka',
    argv: CM('--source', 'kafka'),
    says: /source: must be one of mqtt, nats, eventhubs; got "kafka" \(from --source\)/,
  },
  {
    name: 'consume partition index ≥ count',
    argv: CM('--mqtt-version', '5', '--partition-index', '3', '--partition-count', '2'),
    says: /partitionIndex: --partition-index 3 must be below --partition-count 2/,
  },
  {
    name: 'consume partitions on 3.1.1',
    argv: CM('--partition-count', '2'),
    says: /partitionCount: > 1 with MQTT needs --shared GROUP/,
  },
  {
    name: 'consume --shared with a slash',
    argv: CM('--shared', 'a/b'),
    says: /shared: "a\/b" must not contain \/, \+ or # .*\(from --shared\)/,
  },
  {
    name: 'consume --shared and another --group',
    argv: CM('--shared', 'g', '--group', 'h'),
    says: /group: --group h and --shared g both name the share group; give one/,
  },
  {
    name: 'consume partition count 2000',
    argv: CM('--partition-count', '2000'),
    says: /partitionCount: must be at most 1024/,
  },
  {
    name: 'consume partition index 1.5',
    argv: CM('--partition-index', '1.5'),
    says: /partitionIndex: must be a whole number/,
  },
  {
    name: 'consume --qos 3',
    argv: CM('--qos', '3'),
    says: /qos: must be one of 0, 1, 2; got 3 \(from --qos\)/,
  },
  {
    name: 'consume --mqtt-version 4',
    argv: CM('--mqtt-version', '4'),
    says: /mqttVersion: must be 3\.1\.1 or 5/,
  },
  { name: 'consume -t 5', argv: CM('-t', '5'), says: /runTime: "5" has no unit; write 5s/ },
  {
    name: 'consume -t huge',
    argv: CM('-t', '99999999h'),
    says: /runTime: "99999999h" is too long: at most 168h/,
  },
  { name: 'consume -t 0s', argv: CM('-t', '0s'), says: /runTime: must be greater than 0/ },
  { name: 'consume --grace abc', argv: CM('--grace', 'abc'), says: /grace: "abc" is not a duration/ },
  {
    name: 'consume --connect-timeout 0s',
    argv: CM('--connect-timeout', '0s'),
    says: /connectTimeout: must be greater than 0/,
  },
  {
    name: 'consume --format xml',
    argv: CM('--format', 'xml'),
    says: /format: must be one of auto, json, seed, properties, binary/,
  },
  {
    name: 'consume --fields unknown',
    argv: CM('--fields', 'bogus=a'),
    says: /fields: unknown field "bogus"/,
  },
  {
    name: 'consume --fields tsUnit=h',
    argv: CM('--fields', 'tsUnit=h'),
    says: /fields: tsUnit must be ms or s, not "h"/,
  },
  {
    name: 'consume threshold syntax',
    argv: CM('--threshold', 'x<<1'),
    says: /thresholds\.0: threshold "x<<1"/,
  },
  {
    name: 'consume run id',
    argv: CM('--run-id', 'bad id'),
    says: /runId: must start with a letter or digit.*\(from --run-id\)/,
  },
  {
    name: 'consume --ca missing',
    argv: C('-H', 'mqtts://127.0.0.1:1', '--ca', '{dir}/nope.pem'),
    says: /ca: cannot read .*nope\.pem: no such file \(from --ca\)/,
  },
  {
    name: 'consume --ca /dev/zero',
    argv: C('-H', 'mqtts://127.0.0.1:1', '--ca', '/dev/zero'),
    says: /ca: cannot read \/dev\/zero: not a regular file/,
  },
  {
    name: 'consume key does not match its certificate',
    argv: C('-H', 'mqtts://127.0.0.1:1', '--cert', '{fx}/a/dev-000000.pem', '--key', '{fx}/b/dev-000000.key'),
    says: /key: .*b\/dev-000000\.key is not the private key of .*a\/dev-000000\.pem/,
    proc: true,
  },
  {
    name: 'consume --cert without --key',
    argv: CM('--cert', 'c.pem'),
    says: /cert: --cert and --key go together/,
  },
  {
    name: 'consume eventhubs without string',
    argv: C('--source', 'eventhubs'),
    says: /eventhubConnectionString: is needed for --source eventhubs/,
  },
  {
    name: 'consume TLS flag on NATS',
    argv: C('-H', 'nats://127.0.0.1:4222', '--ca', 'x.pem'),
    says: /ca: applies to the mqtt source only; the source is nats/,
  },
  {
    name: 'consume nats source with mqtt host',
    argv: C('--source', 'nats', '-H', 'mqtt://x'),
    says: /host: NATS needs nats:\/\/host:4222/,
  },
  {
    name: 'consume --out /proc/x',
    argv: ['consume', '-H', 'mqtt://127.0.0.1:1', '--out', '/proc/x'],
    says: /out: cannot use \/proc\/x: \/proc is a system pseudo file system/,
  },
  {
    name: 'consume topic placeholder',
    argv: CM('--topic', 'a/{foo}'),
    says: /topic: unknown placeholder \{foo\}/,
  },
  {
    name: 'consume password redacted',
    argv: C('-H', 'mqtt://u:s3cretConsumePw@x:99999'),
    says: /host: port 99999 in "mqtt:\/\/u:\*\*\*@x:99999"/,
    secret: 's3cretConsumePw',
  },
  {
    name: 'consume PARTITION_INDEX=abc',
    argv: CM(),
    env: { PARTITION_INDEX: 'abc' },
    says: /partitionIndex: "abc" is not a number \(from PARTITION_INDEX\)/,
  },
  {
    name: 'consume FLEETLOAD_PARTITION_COUNT=0',
    argv: CM(),
    env: { FLEETLOAD_PARTITION_COUNT: '0' },
    says: /partitionCount: must be at least 1 \(from FLEETLOAD_PARTITION_COUNT\)/,
  },
  {
    name: 'consume env typo',
    argv: CM(),
    env: { FLEETLOAD_PARTITON_COUNT: '2' },
    says: /FLEETLOAD_PARTITON_COUNT: unknown environment variable; did you mean FLEETLOAD_PARTITION_COUNT\?/,
  },
  {
    name: 'consume nats list with http',
    argv: C('-H', 'nats://a:4222,http://b'),
    says: /host: scheme "http:"/,
  },
  {
    name: 'consume run id of an earlier run',
    argv: CM('--run-id', 'taken'),
    outHas: ['taken'],
    says: /out: results folder .*taken already exists/,
  },
  { name: 'consume client id empty', argv: CM('--client-id', ''), says: /clientId: / },
];

const certs: Case[] = [
  {
    name: 'certs --devices -1',
    argv: ['certs', '--devices', '-1', '--out', '{out}'],
    says: /--devices: must be a whole number from 0 to 1000000, not "-1"/,
    proc: true,
  },
  {
    name: 'certs --devices abc',
    argv: ['certs', '--devices', 'abc', '--out', '{out}'],
    says: /--devices: must be a whole number/,
  },
  {
    name: 'certs --devices 2000000',
    argv: ['certs', '--devices', '2000000', '--out', '{out}'],
    says: /--devices: must be a whole number from 0 to 1000000/,
  },
  { name: 'certs without flags', argv: ['certs'], says: /--devices N is required; --out DIR is required/ },
  { name: 'certs without --out', argv: ['certs', '--devices', '2'], says: /--out DIR is required/ },
  {
    name: 'certs unknown flag',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--bogus'],
    says: /^unknown flag --bogus; see fleetload certs --help$/,
  },
  {
    name: 'certs typo',
    argv: ['certs', '--device', '2', '--out', '{out}'],
    says: /unknown flag --device; did you mean --devices\?/,
  },
  {
    name: 'certs --days 0',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--days', '0'],
    says: /--days: must be a whole number from 1 to 36500/,
  },
  {
    name: 'certs device id without index',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--device-id', 'x'],
    says: /--device-id: "x" has no \{index\}/,
  },
  {
    name: 'certs device id placeholder',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--device-id', '{foo}'],
    says: /--device-id: unknown placeholder \{foo\}/,
  },
  {
    name: 'certs --ca-cert alone',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--ca-cert', 'c.pem'],
    says: /--ca-cert and --ca-key go together/,
  },
  {
    name: 'certs CA missing',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--ca-cert', 'c.pem', '--ca-key', 'k.pem'],
    says: /--ca-cert: cannot read .*c\.pem: no such file/,
  },
  {
    name: 'certs CA is not a CA',
    argv: [
      'certs',
      '--devices',
      '2',
      '--out',
      '{out}',
      '--ca-cert',
      '{fx}/a/dev-000000.pem',
      '--ca-key',
      '{fx}/a/dev-000000.key',
    ],
    says: /--ca-cert: .*dev-000000\.pem is not a CA certificate/,
  },
  {
    name: 'certs CA key mismatch',
    argv: [
      'certs',
      '--devices',
      '2',
      '--out',
      '{out}',
      '--ca-cert',
      '{fx}/a/ca.pem',
      '--ca-key',
      '{fx}/b/ca.key',
    ],
    says: /--ca-key: .*b\/ca\.key is not the private key of .*a\/ca\.pem/,
  },
  {
    name: 'certs bad server name',
    argv: ['certs', '--devices', '2', '--out', '{out}', '--server-cert', 'a b'],
    says: /--server-cert: "a b" is not a host name or IP address/,
  },
  {
    name: 'certs --out /proc/x',
    argv: ['certs', '--devices', '2', '--out', '/proc/x'],
    says: /--out: cannot create \/proc\/x: \/proc is a system pseudo file system/,
  },
  {
    name: 'certs positional',
    argv: ['certs', '--devices', '2', '--out', '{out}', 'extra'],
    says: /unexpected argument "extra": certs takes flags only/,
  },
  { name: 'certs missing value', argv: ['certs', '--devices', '2', '--out'], says: /--out needs a value/ },
];

const otherCommands: Case[] = [
  { name: 'plan -u 0', argv: P('-u', '0'), says: /devices: must be at least 1 \(from --devices\)/ },
  { name: 'plan unknown flag', argv: P('--foo'), says: /unknown flag --foo/ },
  {
    name: 'plan empty scenario',
    argv: P('s.yaml'),
    files: { 's.yaml': '' },
    says: /s\.yaml: the file is empty/,
  },
  { name: 'plan -t huge', argv: P('-t', '1000h'), says: /runTime: "1000h" is too long/ },
  { name: 'compare one folder', argv: ['compare', 'a'], says: /fleetload compare needs two results folders/ },
  {
    name: 'compare missing folders',
    argv: ['compare', 'a', 'b'],
    says: /a does not exist; give the folder of one run/,
  },
  {
    name: 'compare not results',
    argv: ['compare', '{dir}', '{dir}'],
    says: /is not a fleetload results folder/,
  },
  { name: 'report without folder', argv: ['report'], says: /fleetload report needs a results folder/ },
  { name: 'report missing folder', argv: ['report', 'nope'], says: /nope does not exist/ },
  {
    name: 'report unknown option',
    argv: ['report', 'x', '--bogus'],
    says: /fleetload report: unknown option --bogus/,
  },
];

const cases: Case[] = [
  ...flags,
  ...scale,
  ...numbers,
  ...durations,
  ...urls,
  ...templates,
  ...sourceIps,
  ...thresholds,
  ...runIds,
  ...paths,
  ...yaml,
  ...env,
  ...consume,
  ...certs,
  ...otherCommands,
];

const root = mkdtempSync(join(tmpdir(), 'fleetload-bad-input-'));
const fx = join(root, 'fx');
after(() => rmSync(root, { recursive: true, force: true }));
before(async () => {
  await makeCerts({ devices: 1, out: join(fx, 'a') });
  await makeCerts({ devices: 1, out: join(fx, 'b') });
});

let caseNo = 0;
/** A fresh working directory and results folder for one case, with its files; argv with {dir} {out} {fx} filled. */
function prepare(c: Case) {
  const dir = join(root, `c${++caseNo}`);
  const out = join(dir, 'out');
  mkdirSync(dir);
  for (const [name, text] of Object.entries(c.files ?? {})) writeFileSync(join(dir, name), text);
  for (const d of c.outHas ?? []) mkdirSync(join(out, d), { recursive: true });
  const argv = c.argv.map((a) => a.replaceAll('{dir}', dir).replaceAll('{out}', out).replaceAll('{fx}', fx));
  return { dir, out, argv };
}

function assertNothingWritten(c: Case, out: string): void {
  const now = existsSync(out) ? readdirSync(out).sort() : [];
  assert.deepEqual(now, [...(c.outHas ?? [])].sort(), 'nothing written to the results folder');
}

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

describe(`bad input: ${cases.length} cases, each exit 2 with one line naming the culprit`, () => {
  test('the corpus has at least 150 cases', () => {
    assert.ok(cases.length >= 150, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique');
  });

  describe('in process (runCli with a fake io)', () => {
    for (const c of cases) {
      test(c.name, { timeout: 30_000 }, async () => {
        const { dir, out, argv } = prepare(c);
        const stdout = sink();
        const stderr = sink();
        const io: CliIo = {
          env: { ...(c.env ?? {}) },
          stdout: stdout.stream,
          stderr: stderr.stream,
          cwd: dir,
          signals: new EventEmitter(),
        };
        let err: unknown;
        try {
          await runCli(argv, io);
        } catch (e) {
          err = e;
        }
        assert.ok(
          isFleetloadError(err),
          `a FleetloadError, got: ${String(err)}\n${(err as Error)?.stack ?? ''}`,
        );
        // what main.ts prints for it
        const line = `fleetload: ${err.message}\n`;
        assert.equal(err.exitCode, 2, `exit code (${line.trim()})`);
        assert.match(line, /^fleetload: [^\n]+\n$/, `one line, got:\n${line}`);
        assert.ok(c.says.test(err.message), `${c.says} does not match: ${err.message.slice(0, 500)}`);
        assert.doesNotMatch(line + stderr.text(), /\n\s+at /, 'no stack trace');
        assert.equal(stdout.text(), '', 'stdout is empty');
        if (c.secret !== undefined) {
          assert.ok(!(line + stderr.text()).includes(c.secret), `the secret leaked: ${line}`);
        }
        assertNothingWritten(c, out);
      });
    }
  });

  describe('through the built CLI, as a user runs it', { concurrency: 4 }, () => {
    for (const c of cases.filter((x) => x.proc)) {
      test(c.name, async () => {
        const { dir, out, argv } = prepare(c);
        const r = await runCliProcess(argv, { cwd: dir, env: { HOME: dir, ...c.env }, timeoutMs: 30_000 });
        assert.equal(r.stdout, '', 'stdout is empty');
        assert.match(r.stderr, /^fleetload: [^\n]+\n$/, `exactly one line on stderr, got:\n${r.stderr}`);
        assert.match(r.stderr.slice('fleetload: '.length), c.says);
        assert.equal(r.code, 2, `exit code (stderr: ${r.stderr.trim()})`);
        if (c.secret !== undefined) assert.ok(!r.stderr.includes(c.secret), 'the secret leaked');
        assertNothingWritten(c, out);
      });
    }
  });
});
