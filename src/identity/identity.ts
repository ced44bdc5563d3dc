import { createHmac, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FleetloadError } from '../errors.js';
import type { Scenario } from '../scenario/schema.js';
import { compileTemplate, type TemplateVars, usesPlaceholder } from '../scenario/template.js';

/**
 * Device identities: what one device presents when it connects — client id, username, password, topic, TLS
 * material — from templates or a cloud preset. The engine asks once per connect (`forDevice`), so nothing per
 * device is kept here: certificate and key files are read at connect time and handed to the TLS layer; only what
 * every device shares (the CA, decoded keys) is held once.
 *
 * Presets:
 * - `azure-iot-hub`: clientId = deviceId, username `{hub}/{deviceId}/?api-version=2021-04-12`, password = a SAS
 *   token signed with the device key (given, or derived from a DPS group enrollment key), renewed before expiry.
 * - `aws-iot`: mutual TLS with one certificate per device, clientId = deviceId, no username/password.
 */

export interface DeviceTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  insecure?: boolean;
}

export interface DeviceIdentity {
  clientId: string;
  username?: string;
  password?: string;
  topic: string;
  /** absent when the scenario sets no TLS option (the transport then uses the system CA store for mqtts/wss) */
  tls?: DeviceTls;
  /** ms since epoch: reconnect with a fresh identity before this (the SAS token expires at renewAt + 10% TTL) */
  renewAt?: number;
}

export interface IdentityProvider {
  /**
   * The identity of device `index` (its id already rendered) for a connection opened at `now` (ms since epoch).
   * Throws IdentityError when a per-device file cannot be read: count it as a failed connect, not a crash.
   */
  forDevice(index: number, deviceId: string, now: number): DeviceIdentity;
  /** whether identities expire (SAS tokens): the engine must then watch `renewAt` */
  readonly expires: boolean;
}

/** A device's identity could not be made (a certificate, key or key file is missing or unreadable). */
export class IdentityError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityError';
    this.code = code;
  }
}

export interface IdentityOptions {
  /** relative file paths resolve against this; default process.cwd() */
  cwd?: string;
  /** reads a file (tests pass a fake); default fs.readFileSync */
  readFile?: (path: string) => Buffer;
}

export const AZURE_API_VERSION = '2021-04-12';
export const AZURE_TOPIC = 'devices/{deviceId}/messages/events/';
export const AWS_TOPIC = 'dt/fleetload/{deviceId}/telemetry';
/** renew this fraction of the token lifetime before it expires */
const RENEW_MARGIN = 0.1;

// ---- Azure IoT Hub SAS tokens -------------------------------------------------------------------------------

/**
 * encodeURIComponent plus the characters it leaves alone that are reserved in RFC 3986 (`!'()*`), as the Azure IoT
 * SDKs do (azure-iot-common `encodeUriComponentStrict`): IoT Hub device ids may contain them.
 */
export function encodeUriStrict(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * An IoT Hub SAS token for `resourceUri` (e.g. `myhub.azure-devices.net/devices/dev-1`), valid until `expirySec`
 * (seconds since epoch), signed with `key` (the decoded symmetric key).
 *
 * Format, per Microsoft's "Control access to IoT Hub with shared access signatures"
 * (https://learn.microsoft.com/azure/iot-hub/iot-hub-dev-guide-sas, "Security token structure"):
 *   SharedAccessSignature sr={URL-encoded-resourceURI}&sig={signature}&se={expiry}[&skn={policyName}]
 * where signature = base64(HMAC-SHA256(key = base64-decoded key, `{URL-encoded-resourceURI}\n{expiry}`)),
 * URL-encoded in the token; `skn` is absent for tokens signed with a device's own key.
 */
export function sasToken(resourceUri: string, key: Buffer, expirySec: number): string {
  const sr = encodeUriStrict(resourceUri);
  const sig = createHmac('sha256', key).update(`${sr}\n${expirySec}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeUriStrict(sig)}&se=${expirySec}`;
}

/**
 * The device key DPS expects for a device enrolled through a symmetric-key group enrollment:
 * base64(HMAC-SHA256(key = base64-decoded group key, registration id)), per "Symmetric key attestation: group
 * enrollments" (https://learn.microsoft.com/azure/iot-dps/concepts-symmetric-key-attestation#group-enrollments).
 * Returns the raw bytes (the base64 of them is the device key a portal would show).
 */
export function deriveDeviceKey(groupKey: Buffer, registrationId: string): Buffer {
  return createHmac('sha256', groupKey).update(registrationId, 'utf8').digest();
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strictly decoded base64 (Buffer.from ignores bad characters silently), or undefined. */
export function decodeBase64Key(text: string): Buffer | undefined {
  const t = text.trim();
  if (t === '' || !BASE64.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

// ---- provider -------------------------------------------------------------------------------------------------

function fileError(what: string, path: string, e: unknown): IdentityError {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : (e as Error).message;
  return new IdentityError(code, `cannot read ${what} ${path}: ${why}`, { cause: e });
}

/**
 * Builds the provider for a validated scenario. Reads the CA file once (FleetloadError E_FILE if it cannot);
 * per-device files are read by `forDevice`.
 */
export function createIdentityProvider(s: Scenario, opts: IdentityOptions = {}): IdentityProvider {
  const cwd = opts.cwd ?? process.cwd();
  const read = opts.readFile ?? ((p: string) => readFileSync(p));
  const readAt = (what: string, path: string): Buffer => {
    try {
      return read(resolve(cwd, path));
    } catch (e) {
      throw fileError(what, path, e);
    }
  };

  let ca: Buffer | undefined;
  if (s.ca !== undefined) {
    try {
      ca = readAt('CA file', s.ca);
    } catch (e) {
      throw new FleetloadError('E_FILE', `ca: ${(e as Error).message}`, { cause: e });
    }
  }
  const certOf = s.cert !== undefined ? compileTemplate(s.cert) : undefined;
  const keyOf = s.key !== undefined ? compileTemplate(s.key) : undefined;
  // the same file for every device (no placeholder): read it once, not 50,000 times
  const fixedCert =
    s.cert !== undefined && !hasPlaceholder(s.cert) ? readOnce(readAt, 'certificate', s.cert) : undefined;
  const fixedKey =
    s.key !== undefined && !hasPlaceholder(s.key) ? readOnce(readAt, 'private key', s.key) : undefined;

  const shared: DeviceTls = {};
  if (ca) shared.ca = ca;
  if (s.servername !== undefined) shared.servername = s.servername;
  if (s.insecure) shared.insecure = true;
  const anyTls = ca !== undefined || s.servername !== undefined || s.insecure || certOf !== undefined;
  const sharedTls = anyTls ? Object.freeze(shared) : undefined;

  const topicOf = compileTemplate(s.topic);
  const azure = s.preset === 'azure-iot-hub';
  // IoT Hub requires clientId = deviceId; elsewhere the template (the aws-iot preset defaults it to {deviceId})
  const clientIdOf = azure ? undefined : compileTemplate(s.clientId);
  const usernameOf = !azure && s.username !== undefined ? compileTemplate(s.username) : undefined;
  const password = azure ? undefined : s.password;

  // Azure: the signing key of a device
  let keyFor: ((vars: TemplateVars, deviceId: string) => Buffer) | undefined;
  if (azure) {
    if (s.groupKey !== undefined) {
      const group = decodeBase64Key(s.groupKey);
      if (!group) throw new FleetloadError('E_SCENARIO', 'groupKey: is not base64');
      keyFor = (_v, deviceId) => deriveDeviceKey(group, deviceId);
    } else if (s.deviceKey?.startsWith('@')) {
      const pathOf = compileTemplate(s.deviceKey.slice(1));
      keyFor = (vars) => {
        const path = pathOf(vars);
        const k = decodeBase64Key(readAt('device key file', path).toString('utf8'));
        if (!k) throw new IdentityError('EBADKEY', `device key file ${path} does not hold a base64 key`);
        return k;
      };
    } else if (s.deviceKey !== undefined) {
      const k = decodeBase64Key(s.deviceKey);
      if (!k) throw new FleetloadError('E_SCENARIO', 'deviceKey: is not base64');
      keyFor = () => k;
    } else {
      throw new FleetloadError('E_SCENARIO', 'preset azure-iot-hub needs --device-key or --group-key');
    }
  }
  const hub = s.hub ?? '';
  const ttlSec = Math.max(1, Math.round(s.sasTtlMs / 1000));

  return {
    expires: azure,
    forDevice(index: number, deviceId: string, now: number): DeviceIdentity {
      const vars: TemplateVars = { index, runId: s.runId, deviceId };
      const id: DeviceIdentity = { clientId: clientIdOf ? clientIdOf(vars) : deviceId, topic: topicOf(vars) };
      if (sharedTls) {
        if (certOf && keyOf) {
          id.tls = {
            ...sharedTls,
            cert: fixedCert ?? readAt('certificate', certOf(vars)),
            key: fixedKey ?? readAt('private key', keyOf(vars)),
          };
        } else id.tls = sharedTls;
      }
      if (keyFor) {
        const expirySec = Math.floor(now / 1000) + ttlSec;
        id.username = `${hub}/${deviceId}/?api-version=${AZURE_API_VERSION}`;
        id.password = sasToken(`${hub}/devices/${deviceId}`, keyFor(vars, deviceId), expirySec);
        id.renewAt = expirySec * 1000 - ttlSec * 1000 * RENEW_MARGIN;
      } else {
        if (usernameOf) id.username = usernameOf(vars);
        if (password !== undefined) id.password = password;
      }
      return id;
    },
  };
}

function hasPlaceholder(t: string): boolean {
  return ['deviceId', 'index', 'runId'].some((p) => usesPlaceholder(t, p));
}

function readOnce(readAt: (what: string, path: string) => Buffer, what: string, path: string): Buffer {
  try {
    return readAt(what, path);
  } catch (e) {
    throw new FleetloadError('E_FILE', (e as Error).message, { cause: e });
  }
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
export function identityProblems(s: Scenario, o: ProblemOptions): string[] {
  const problems: string[] = [];
  const src = (k: string): string => o.source?.(k) ?? 'default';
  const add = (k: string, msg: string): void => {
    problems.push(`${k}: ${msg} (${src(k)})`);
  };
  const read = o.readFile ?? ((p: string) => readFileSync(p));
  const proto = protocolOf(s.host);
  const tlsHost = proto !== undefined && TLS_SCHEMES.has(proto);
  const hostWords =
    s.host === undefined ? 'no --host (the embedded broker speaks plain MQTT)' : `--host is ${proto}//…`;

  if (s.insecure && !tlsHost) add('insecure', `only applies to mqtts:// and wss:// hosts; ${hostWords}`);
  for (const k of ['ca', 'cert', 'servername'] as const) {
    if (s[k] !== undefined && !tlsHost) add(k, `only applies to mqtts:// and wss:// hosts; ${hostWords}`);
  }
  if (s.cert !== undefined && s.key === undefined)
    add('cert', "needs --key too (the device's private key file)");
  if (s.key !== undefined && s.cert === undefined)
    add('key', 'needs --cert too (the device certificate file)');

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
  if (s.groupKey !== undefined && !decodeBase64Key(s.groupKey)) add('groupKey', 'is not a base64 key');
  if (s.deviceKey !== undefined && !s.deviceKey.startsWith('@') && !decodeBase64Key(s.deviceKey)) {
    add('deviceKey', 'is not a base64 key (for a file per device write @keys/{deviceId}.key)');
  }

  // files: the CA, and device 0's (checked with device 0's id; the rest are read as devices connect)
  const tryRead = (k: string, what: string, path: string): Buffer | undefined => {
    try {
      return read(resolve(o.cwd, path));
    } catch (e) {
      add(k, fileError(what, path, e).message);
      return undefined;
    }
  };
  if (s.ca !== undefined) {
    const pem = tryRead('ca', 'CA file', s.ca);
    if (pem && !isCertificate(pem)) add('ca', `${s.ca} is not a PEM certificate`);
  }
  const deviceId0 = compileTemplate(s.deviceId)({ index: 0, runId: s.runId });
  const vars0: TemplateVars = { index: 0, runId: s.runId, deviceId: deviceId0 };
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
  // the run's consumer's own client certificate (a broker that requires one from everybody)
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
  if (s.preset === 'azure-iot-hub' && s.deviceKey?.startsWith('@')) {
    const path = compileTemplate(s.deviceKey.slice(1))(vars0);
    const text = tryRead('deviceKey', `device key file of ${deviceId0}`, path);
    if (text && !decodeBase64Key(text.toString('utf8')))
      add('deviceKey', `${path} does not hold a base64 key`);
  }
  return problems;
}

function isCertificate(pem: Buffer): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}
