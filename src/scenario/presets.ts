import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Scenario } from './schema.js';
import { compileTemplate, type TemplateVars } from './template.js';

/**
 * Device identity settings at load time: the presets' defaults, and everything wrong with the TLS and identity
 * settings (src/identity/ turns valid settings into each device's credentials while the run goes).
 */

export const AZURE_TOPIC = 'devices/{deviceId}/messages/events/';
export const AWS_TOPIC = 'dt/fleetload/{deviceId}/telemetry';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strictly decoded base64 (Buffer.from ignores bad characters silently), or undefined. */
export function decodeBase64Key(text: string): Buffer | undefined {
  const t = text.trim();
  if (t === '' || !BASE64.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

/** Why a file could not be read, in words: `cannot read CA file ca.pem: no such file`. */
export function fileReadMessage(what: string, path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : (e as Error).message;
  return `cannot read ${what} ${path}: ${why}`;
}

// ---- load-time checks -----------------------------------------------------------------------------------------

const TLS_SCHEMES = new Set(['mqtts:', 'wss:', 'ssl:', 'tls:']);

function protocolOf(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  try {
    return new URL(host).protocol;
  } catch {
    return undefined;
  }
}

/**
 * Preset defaults, applied to the merged scenario input before it is validated, so the resolved scenario (and
 * `fleetload plan`, and scenario.yaml) shows what will really be used. Only keys the user did not set are filled;
 * `from` records them as coming from the preset.
 */
export function applyPresetDefaults(merged: Record<string, unknown>, from: Map<string, string>): void {
  const preset = merged.preset;
  if (preset !== 'azure-iot-hub' && preset !== 'aws-iot') return;
  const set = (k: string, v: unknown): void => {
    if (merged[k] !== undefined) return;
    merged[k] = v;
    from.set(k, `preset ${preset}`);
  };
  if (preset === 'azure-iot-hub') {
    if (typeof merged.hub === 'string') set('host', `mqtts://${merged.hub}:8883`);
    set('topic', AZURE_TOPIC);
  } else set('topic', AWS_TOPIC);
  set('clientId', '{deviceId}');
  // IoT Hub does not deliver device-to-cloud messages to MQTT subscribers, and an AWS IoT consumer would need an
  // identity of its own: read what was delivered elsewhere (Event Hubs, NATS) or not at all.
  set('consumer', 'none');
}

export interface ProblemOptions {
  cwd: string;
  /** where a key's value came from, e.g. `from --ca` or `scenario.yaml:4` */
  source?: (key: string) => string;
  /** whether a file can be read; default: fs.readFileSync succeeds */
  readFile?: (path: string) => Buffer;
}

/**
 * Everything wrong with the scenario's TLS and identity settings, one sentence each: preset requirements,
 * conflicting keys, TLS options without a TLS host, unreadable files (the CA, and device 0's certificate and key:
 * a template that points nowhere is caught before any device connects).
 */
/** What each group of checks needs: the scenario, where to say a problem, and device 0's file reader. */
interface Check {
  s: Scenario;
  add: (key: string, msg: string) => void;
  tryRead: (key: string, what: string, path: string) => Buffer | undefined;
  tlsHost: boolean;
  hostWords: string;
  deviceId0: string;
  vars0: TemplateVars;
}

export function identityProblems(s: Scenario, o: ProblemOptions): string[] {
  const problems: string[] = [];
  const src = (k: string): string => o.source?.(k) ?? 'default';
  const add = (k: string, msg: string): void => {
    problems.push(`${k}: ${msg} (${src(k)})`);
  };
  const read = o.readFile ?? ((p: string) => readFileSync(p));
  const proto = protocolOf(s.host);
  const deviceId0 = compileTemplate(s.deviceId)({ index: 0, runId: s.runId });
  const c: Check = {
    s,
    add,
    tryRead: (k, what, path) => {
      try {
        return read(resolve(o.cwd, path));
      } catch (e) {
        add(k, fileReadMessage(what, path, e));
        return undefined;
      }
    },
    tlsHost: proto !== undefined && TLS_SCHEMES.has(proto),
    hostWords:
      s.host === undefined ? 'no --host (the embedded broker speaks plain MQTT)' : `--host is ${proto}//…`,
    deviceId0,
    vars0: { index: 0, runId: s.runId, deviceId: deviceId0 },
  };
  tlsProblems(c);
  presetProblems(c);
  keyProblems(c);
  fileProblems(c);
  consumerCertProblems(c);
  return problems;
}

/** TLS options without a TLS host; a certificate without its key and the other way round. */
function tlsProblems({ s, add, tlsHost, hostWords }: Check): void {
  if (s.insecure && !tlsHost) add('insecure', `only applies to mqtts:// and wss:// hosts; ${hostWords}`);
  for (const k of ['ca', 'cert', 'servername'] as const) {
    if (s[k] !== undefined && !tlsHost) add(k, `only applies to mqtts:// and wss:// hosts; ${hostWords}`);
  }
  if (s.tlsVersion !== 'auto' && !tlsHost)
    add('tlsVersion', `only applies to mqtts:// and wss:// hosts; ${hostWords}`);
  if (s.cert !== undefined && s.key === undefined)
    add('cert', "needs --key too (the device's private key file)");
  if (s.key !== undefined && s.cert === undefined)
    add('key', 'needs --cert too (the device certificate file)');
}

/** What each preset requires and refuses. */
function presetProblems({ s, add, tlsHost, hostWords }: Check): void {
  if (s.preset === 'azure-iot-hub') {
    if (s.hub === undefined) add('preset', 'azure-iot-hub needs --hub NAME.azure-devices.net');
    if (s.deviceKey === undefined && s.groupKey === undefined) {
      add(
        'preset',
        'azure-iot-hub needs --device-key KEY (or @FILE) or --group-key KEY (DPS group enrollment)',
      );
    }
    if (s.deviceKey !== undefined && s.groupKey !== undefined) {
      add('groupKey', 'give either --device-key or --group-key, not both');
    }
    if (s.username !== undefined)
      add('username', 'preset azure-iot-hub sets the username; remove --username');
    if (s.password !== undefined)
      add('password', 'preset azure-iot-hub signs a SAS token as the password; remove --password');
    if (s.clientId !== '{deviceId}') {
      add(
        'clientId',
        'IoT Hub requires the client id to be the device id; remove --client-id (preset azure-iot-hub)',
      );
    }
    if (s.mqttVersion === '5') add('mqttVersion', 'IoT Hub speaks MQTT 3.1.1; remove --mqtt-version 5');
    if (s.qos === 2) add('qos', 'IoT Hub accepts QoS 0 and 1 only; use --qos 1');
  } else if (s.preset === 'aws-iot') {
    if (s.cert === undefined || s.key === undefined) {
      add(
        'preset',
        'aws-iot needs --cert and --key templates (one certificate per device, e.g. certs/{deviceId}.pem)',
      );
    }
    if (s.host === undefined) {
      add(
        'preset',
        'aws-iot needs --host mqtts://PREFIX-ats.iot.REGION.amazonaws.com:8883 (your account endpoint)',
      );
    } else if (!tlsHost) add('host', `preset aws-iot connects with mutual TLS: use mqtts://; ${hostWords}`);
    if (s.username !== undefined || s.password !== undefined) {
      add(
        s.username !== undefined ? 'username' : 'password',
        'preset aws-iot authenticates with certificates; remove it',
      );
    }
    if (s.qos === 2) add('qos', 'AWS IoT accepts QoS 0 and 1 only; use --qos 1');
  } else {
    for (const k of ['hub', 'deviceKey', 'groupKey'] as const) {
      if (s[k] !== undefined) add(k, 'only applies with --preset azure-iot-hub');
    }
  }
}

/** Azure keys: base64, and a key file per device readable for device 0. */
function keyProblems({ s, add, tryRead, vars0, deviceId0 }: Check): void {
  if (s.groupKey !== undefined && !decodeBase64Key(s.groupKey)) add('groupKey', 'is not a base64 key');
  if (s.deviceKey !== undefined && !s.deviceKey.startsWith('@') && !decodeBase64Key(s.deviceKey)) {
    add('deviceKey', 'is not a base64 key (for a file per device write @keys/{deviceId}.key)');
  }

  if (s.preset === 'azure-iot-hub' && s.deviceKey?.startsWith('@')) {
    const path = compileTemplate(s.deviceKey.slice(1))(vars0);
    const text = tryRead('deviceKey', `device key file of ${deviceId0}`, path);
    if (text && !decodeBase64Key(text.toString('utf8')))
      add('deviceKey', `${path} does not hold a base64 key`);
  }
}

/** The CA, and device 0's certificate and key: a template that points nowhere is caught before any device connects. */
function fileProblems({ s, add, tryRead, vars0, deviceId0 }: Check): void {
  if (s.ca !== undefined) {
    const pem = tryRead('ca', 'CA file', s.ca);
    if (pem && !isCertificate(pem)) add('ca', `${s.ca} is not a PEM certificate`);
  }
  if (s.cert !== undefined) {
    const path = compileTemplate(s.cert)(vars0);
    const pem = tryRead('cert', `certificate of ${deviceId0}`, path);
    if (pem && !isCertificate(pem)) add('cert', `${path} is not a PEM certificate`);
  }
  if (s.key !== undefined) {
    const path = compileTemplate(s.key)(vars0);
    const pem = tryRead('key', `private key of ${deviceId0}`, path);
    if (pem && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
      add('key', `${path} is not a PEM private key`);
    }
  }
}

/** The run's consumer's own client certificate (a broker that requires one from everybody). */
function consumerCertProblems({ s, add, tryRead }: Check): void {
  if (s.consumerCert !== undefined || s.consumerKey !== undefined) {
    const cproto = protocolOf(s.consumerHost ?? s.host);
    const k = s.consumerCert !== undefined ? 'consumerCert' : 'consumerKey';
    if (s.consumer !== 'mqtt') add(k, `is for the MQTT consumer; --consumer is ${s.consumer}`);
    else if (cproto === undefined || !TLS_SCHEMES.has(cproto))
      add(k, "only applies when the consumer's broker is mqtts:// or wss://");
    if (s.consumerCert === undefined) add('consumerKey', 'needs --consumer-cert too');
    if (s.consumerKey === undefined) add('consumerCert', 'needs --consumer-key too');
    if (s.consumerCert !== undefined) {
      const pem = tryRead('consumerCert', "the consumer's certificate", s.consumerCert);
      if (pem && !isCertificate(pem)) add('consumerCert', `${s.consumerCert} is not a PEM certificate`);
    }
    if (s.consumerKey !== undefined) {
      const pem = tryRead('consumerKey', "the consumer's private key", s.consumerKey);
      if (pem && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1')))
        add('consumerKey', `${s.consumerKey} is not a PEM private key`);
    }
  }
}

function isCertificate(pem: Buffer): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}
