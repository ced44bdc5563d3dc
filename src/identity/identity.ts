import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FleetloadError } from '../errors.js';
import { decodeBase64Key, fileReadMessage } from '../scenario/presets.js';
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
  /** pinned TLS version; absent = Node's default negotiation */
  tlsVersion?: '1.2' | '1.3';
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
export { AWS_TOPIC, AZURE_TOPIC, decodeBase64Key } from '../scenario/presets.js';

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

// ---- provider -------------------------------------------------------------------------------------------------

function fileError(what: string, path: string, e: unknown): IdentityError {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return new IdentityError(code, fileReadMessage(what, path, e), { cause: e });
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
  if (s.tlsVersion !== 'auto') shared.tlsVersion = s.tlsVersion;
  const anyTls =
    ca !== undefined ||
    s.servername !== undefined ||
    s.insecure ||
    certOf !== undefined ||
    shared.tlsVersion !== undefined;
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
