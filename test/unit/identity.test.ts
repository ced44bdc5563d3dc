import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FleetloadError } from '../../src/errors.js';
import {
  createIdentityProvider,
  decodeBase64Key,
  deriveDeviceKey,
  encodeUriStrict,
  IdentityError,
  sasToken,
} from '../../src/identity/identity.js';
import { loadScenario, redactSecrets } from '../../src/scenario/load.js';
import { type Scenario, scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { findBinary } from '../helpers/services.js';

/**
 * Device identities. The SAS token and the DPS derived key are checked against values computed by a different
 * implementation (OpenSSL's HMAC, fed the exact string-to-sign), not by calling our own code twice:
 *
 *   KEY=ZmxlZXRsb2FkLXRlc3QtZGV2aWNlLWtleS0zMmJ5dGU=          # base64('fleetload-test-device-key-32byte')
 *   printf '%s\n%s' 'myhub.azure-devices.net%2Fdevices%2Fdev-000042' 1800000000 \
 *     | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf %s $KEY | base64 -d | xxd -p -c 256) -binary | base64
 *   → d8kpTTEhN3VcDiq5XuWlVaoZfoy1vStErPggwLd2/ng=
 *
 *   GROUP=ZmxlZXRsb2FkLXRlc3QtZ3JvdXAtZW5yb2xsbWVudCE=        # base64('fleetload-test-group-enrollment!')
 *   printf %s dev-000042 | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(… $GROUP …) -binary | base64
 *   → hrRhWLjOz8Vk1L+Lk4ZfY5t/2nDT7E+nmI1ZuEvBh74=
 *
 * The formats are Microsoft's: token `SharedAccessSignature sr={URL-encoded resource}&sig={URL-encoded
 * base64 HMAC-SHA256 of "{URL-encoded resource}\n{expiry}"}&se={expiry}` (learn.microsoft.com/azure/iot-hub/
 * iot-hub-dev-guide-sas, "Security token structure"); DPS group enrollment device key
 * base64(HMAC-SHA256(base64-decoded group key, registration id)) (learn.microsoft.com/azure/iot-dps/
 * concepts-symmetric-key-attestation, "Group enrollments"). Checked here against those documents and an independent
 * HMAC; not against a real IoT hub.
 */

const DEVICE_KEY = 'ZmxlZXRsb2FkLXRlc3QtZGV2aWNlLWtleS0zMmJ5dGU=';
const GROUP_KEY = 'ZmxlZXRsb2FkLXRlc3QtZ3JvdXAtZW5yb2xsbWVudCE=';
const HUB = 'myhub.azure-devices.net';
const OPENSSL = findBinary('openssl');

/** HMAC-SHA256 by the openssl CLI (another implementation than node:crypto's API path), base64. */
function opensslHmac(keyBase64: string, message: string): string {
  const hex = Buffer.from(keyBase64, 'base64').toString('hex');
  return execFileSync(
    OPENSSL as string,
    ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${hex}`, '-binary'],
    {
      input: message,
    },
  ).toString('base64');
}

/** Percent-encoding written out by hand for the characters these tests use. */
const pct = (s: string): string =>
  s.replace(/[/+=:?!'()* ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

function scenario(over: Record<string, unknown> = {}): Scenario {
  return toScenario(scenarioInput.parse({ host: 'mqtts://broker:8883', ...over }), 'r1');
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'fleetload-identity-'));
}

describe('Azure IoT Hub SAS token', () => {
  test('matches a vector computed with openssl from the documented string-to-sign', () => {
    const token = sasToken(`${HUB}/devices/dev-000042`, Buffer.from(DEVICE_KEY, 'base64'), 1_800_000_000);
    assert.equal(
      token,
      'SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-000042' +
        '&sig=d8kpTTEhN3VcDiq5XuWlVaoZfoy1vStErPggwLd2%2Fng%3D&se=1800000000',
    );
  });

  test('matches openssl for other keys, ids and expiries', {
    skip: OPENSSL ? false : 'openssl not installed',
  }, () => {
    for (const [deviceId, expiry] of [
      ['sensor-1', 1_700_000_123],
      ["odd!id'(x)*", 2_000_000_000],
      ['a+b=c:d', 1_234_567_890],
    ] as const) {
      const key = Buffer.from(`key for ${deviceId} ${expiry}`).toString('base64');
      const sr = pct(`${HUB}/devices/${deviceId}`);
      const sig = opensslHmac(key, `${sr}\n${expiry}`);
      assert.equal(
        sasToken(`${HUB}/devices/${deviceId}`, Buffer.from(key, 'base64'), expiry),
        `SharedAccessSignature sr=${sr}&sig=${pct(sig)}&se=${expiry}`,
      );
    }
  });

  test("strict URL encoding also escapes !'()*", () => {
    assert.equal(encodeUriStrict("a/b!c'd(e)f*g h"), 'a%2Fb%21c%27d%28e%29f%2Ag%20h');
  });

  test('DPS group enrollment: derived device key matches openssl', () => {
    const derived = deriveDeviceKey(Buffer.from(GROUP_KEY, 'base64'), 'dev-000042').toString('base64');
    assert.equal(derived, 'hrRhWLjOz8Vk1L+Lk4ZfY5t/2nDT7E+nmI1ZuEvBh74=');
    if (OPENSSL) assert.equal(derived, opensslHmac(GROUP_KEY, 'dev-000042'));
  });

  test('base64 keys are decoded strictly', () => {
    assert.equal(decodeBase64Key(DEVICE_KEY)?.toString(), 'fleetload-test-device-key-32byte');
    assert.equal(decodeBase64Key('not base64!'), undefined);
    assert.equal(decodeBase64Key('abc'), undefined);
    assert.equal(decodeBase64Key(''), undefined);
  });
});

describe('identity provider', () => {
  test('plain templates: clientId, username, password, topic; no TLS object without TLS options', () => {
    const p = createIdentityProvider(
      scenario({
        host: 'mqtt://b:1883',
        clientId: 'c-{index:3}-{runId}',
        username: 'u-{deviceId}',
        password: 'pw',
        topic: 't/{deviceId}',
      }),
    );
    assert.deepEqual(p.forDevice(7, 'dev-7', 0), {
      clientId: 'c-007-r1',
      topic: 't/dev-7',
      username: 'u-dev-7',
      password: 'pw',
    });
    assert.equal(p.expires, false);
  });

  test('TLS: the CA is read once, per-device cert/key at each connect, a fixed cert once', () => {
    const reads: string[] = [];
    const readFile = (path: string): Buffer => {
      reads.push(path);
      return Buffer.from(`<${path}>`);
    };
    const p = createIdentityProvider(
      scenario({
        ca: 'ca.pem',
        cert: 'certs/{deviceId}.pem',
        key: 'certs/{deviceId}.key',
        servername: 'sni.test',
      }),
      { cwd: '/w', readFile },
    );
    assert.deepEqual(reads, ['/w/ca.pem']);
    const a = p.forDevice(0, 'dev-0', 0);
    const b = p.forDevice(1, 'dev-1', 0);
    assert.equal(a.tls?.ca?.toString(), '</w/ca.pem>');
    assert.equal(a.tls?.ca, b.tls?.ca, 'one CA buffer shared by every device');
    assert.equal(a.tls?.cert?.toString(), '</w/certs/dev-0.pem>');
    assert.equal(b.tls?.key?.toString(), '</w/certs/dev-1.key>');
    assert.equal(a.tls?.servername, 'sni.test');
    assert.deepEqual(reads.slice(1), [
      '/w/certs/dev-0.pem',
      '/w/certs/dev-0.key',
      '/w/certs/dev-1.pem',
      '/w/certs/dev-1.key',
    ]);

    reads.length = 0;
    const fixed = createIdentityProvider(scenario({ cert: 'one.pem', key: 'one.key', insecure: true }), {
      cwd: '/w',
      readFile,
    });
    fixed.forDevice(0, 'a', 0);
    fixed.forDevice(1, 'b', 0);
    assert.deepEqual(reads, ['/w/one.pem', '/w/one.key']);
    assert.equal(fixed.forDevice(2, 'c', 0).tls?.insecure, true);
  });

  test('a missing device file is an IdentityError with the errno, not a crash', () => {
    const dir = tmp();
    const p = createIdentityProvider(scenario({ cert: 'x/{deviceId}.pem', key: 'x/{deviceId}.key' }), {
      cwd: dir,
    });
    assert.throws(
      () => p.forDevice(3, 'dev-3', 0),
      (e: unknown) =>
        e instanceof IdentityError &&
        e.code === 'ENOENT' &&
        /certificate x\/dev-3\.pem: no such file/.test(e.message),
    );
  });

  test('an unreadable CA stops the run at start (E_FILE)', () => {
    assert.throws(
      () => createIdentityProvider(scenario({ ca: 'nope.pem' }), { cwd: tmp() }),
      (e: unknown) =>
        e instanceof FleetloadError &&
        e.code === 'E_FILE' &&
        /ca: cannot read CA file nope\.pem/.test(e.message),
    );
  });

  test('azure-iot-hub with a device key: username, SAS password, renewAt', () => {
    const ttlMs = 3_600_000;
    const p = createIdentityProvider(
      scenario({
        preset: 'azure-iot-hub',
        hub: HUB,
        deviceKey: DEVICE_KEY,
        clientId: '{deviceId}',
        sasTtl: '1h',
      }),
    );
    const now = 1_800_000_000_000 - ttlMs + 250; // → se = 1800000000 exactly (floor of now/1000 + ttl)
    const id = p.forDevice(42, 'dev-000042', now);
    assert.equal(id.clientId, 'dev-000042');
    assert.equal(id.username, `${HUB}/dev-000042/?api-version=2021-04-12`);
    assert.equal(
      id.password,
      'SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-000042' +
        '&sig=d8kpTTEhN3VcDiq5XuWlVaoZfoy1vStErPggwLd2%2Fng%3D&se=1800000000',
    );
    assert.equal(id.renewAt, 1_800_000_000_000 - ttlMs * 0.1);
    assert.ok((id.renewAt as number) > now);
    assert.equal(p.expires, true);
  });

  test('azure-iot-hub with a group key: each device signs with its derived key', () => {
    const p = createIdentityProvider(
      scenario({ preset: 'azure-iot-hub', hub: HUB, groupKey: GROUP_KEY, sasTtl: '10m' }),
    );
    const now = 1_700_000_000_500;
    const id = p.forDevice(42, 'dev-000042', now);
    const se = 1_700_000_000 + 600;
    const sr = pct(`${HUB}/devices/dev-000042`);
    // the derived key is the openssl vector above; the signature is recomputed with openssl when present
    const sig = OPENSSL
      ? opensslHmac('hrRhWLjOz8Vk1L+Lk4ZfY5t/2nDT7E+nmI1ZuEvBh74=', `${sr}\n${se}`)
      : sasToken(
          `${HUB}/devices/dev-000042`,
          Buffer.from('hrRhWLjOz8Vk1L+Lk4ZfY5t/2nDT7E+nmI1ZuEvBh74=', 'base64'),
          se,
        )
          .split('&sig=')[1]
          ?.split('&')[0];
    assert.equal(
      id.password,
      `SharedAccessSignature sr=${sr}&sig=${OPENSSL ? pct(sig as string) : sig}&se=${se}`,
    );
    assert.equal(id.renewAt, se * 1000 - 60_000);
    // a later connect gets a later token
    const later = p.forDevice(42, 'dev-000042', now + 540_000);
    assert.match(later.password as string, new RegExp(`&se=${se + 540}$`));
  });

  test('azure-iot-hub with @file device keys reads each device its key', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'keys'));
    writeFileSync(join(dir, 'keys', 'dev-000042.key'), `${DEVICE_KEY}\n`);
    const p = createIdentityProvider(
      scenario({ preset: 'azure-iot-hub', hub: HUB, deviceKey: '@keys/{deviceId}.key', sasTtl: '1h' }),
      { cwd: dir },
    );
    const id = p.forDevice(42, 'dev-000042', 1_800_000_000_000 - 3_600_000);
    assert.match(id.password as string, /&sig=d8kpTTEhN3VcDiq5XuWlVaoZfoy1vStErPggwLd2%2Fng%3D&/);
    assert.throws(
      () => p.forDevice(1, 'dev-000001', 0),
      (e: unknown) => e instanceof IdentityError && e.code === 'ENOENT',
    );
  });

  test('aws-iot: mTLS, client id template, no username or password', () => {
    const readFile = (path: string): Buffer => Buffer.from(path);
    const p = createIdentityProvider(
      scenario({
        preset: 'aws-iot',
        clientId: '{deviceId}',
        topic: 'dt/fleetload/{deviceId}/telemetry',
        ca: 'AmazonRootCA1.pem',
        cert: 'c/{deviceId}.pem',
        key: 'c/{deviceId}.key',
      }),
      { cwd: '/w', readFile },
    );
    const id = p.forDevice(5, 'thing-5', 0);
    assert.equal(id.clientId, 'thing-5');
    assert.equal(id.topic, 'dt/fleetload/thing-5/telemetry');
    assert.equal(id.username, undefined);
    assert.equal(id.password, undefined);
    assert.equal(id.tls?.cert?.toString(), '/w/c/thing-5.pem');
    assert.equal(id.renewAt, undefined);
  });
});

describe('loading: presets, validation, redaction', () => {
  const load = (flags: Record<string, unknown>, cwd = tmp()) =>
    loadScenario({ flags, env: {}, cwd, now: new Date('2030-01-02T03:04:05Z') });
  const problemsOf = (flags: Record<string, unknown>, cwd?: string): string[] => {
    try {
      load(flags, cwd);
    } catch (e) {
      assert.ok(e instanceof FleetloadError, String(e));
      assert.equal(e.code, 'E_SCENARIO');
      assert.equal(e.exitCode, 2);
      return [...e.problems];
    }
    assert.fail('expected the scenario to be refused');
  };

  test('azure-iot-hub fills host, topic, clientId and consumer from the hub', () => {
    const { scenario: s, resolved } = load({ preset: 'azure-iot-hub', hub: HUB, deviceKey: DEVICE_KEY });
    assert.equal(s.host, `mqtts://${HUB}:8883`);
    assert.equal(s.topic, 'devices/{deviceId}/messages/events/');
    assert.equal(s.clientId, '{deviceId}');
    assert.equal(s.consumer, 'none');
    assert.equal(s.mqttVersion, '3.1.1');
    assert.equal(s.sasTtlMs, 3_600_000);
    // secrets never reach scenario.yaml
    const written = redactSecrets(resolved);
    assert.equal(written.deviceKey, '***');
    assert.ok(!JSON.stringify(written).includes(DEVICE_KEY));
    const g = redactSecrets(load({ preset: 'azure-iot-hub', hub: HUB, groupKey: GROUP_KEY }).resolved);
    assert.equal(g.groupKey, '***');
  });

  test('a flag wins over a preset default', () => {
    const { scenario: s } = load({
      preset: 'azure-iot-hub',
      hub: HUB,
      deviceKey: DEVICE_KEY,
      host: 'mqtts://proxy:8883',
      topic: 'devices/{deviceId}/messages/events/a=1',
    });
    assert.equal(s.host, 'mqtts://proxy:8883');
    assert.equal(s.topic, 'devices/{deviceId}/messages/events/a=1');
  });

  test('azure-iot-hub: one clear message per missing or conflicting setting', () => {
    assert.deepEqual(problemsOf({ preset: 'azure-iot-hub' }), [
      'preset: azure-iot-hub needs --hub NAME.azure-devices.net (from --preset)',
      'preset: azure-iot-hub needs --device-key KEY (or @FILE) or --group-key KEY (DPS group enrollment) (from --preset)',
    ]);
    assert.deepEqual(
      problemsOf({ preset: 'azure-iot-hub', hub: HUB, deviceKey: DEVICE_KEY, groupKey: GROUP_KEY }),
      ['groupKey: give either --device-key or --group-key, not both (from --group-key)'],
    );
    assert.deepEqual(problemsOf({ preset: 'azure-iot-hub', hub: HUB, deviceKey: 'secret!' }), [
      'deviceKey: is not a base64 key (for a file per device write @keys/{deviceId}.key) (from --device-key)',
    ]);
    const p = problemsOf({
      preset: 'azure-iot-hub',
      hub: HUB,
      groupKey: GROUP_KEY,
      clientId: 'x-{deviceId}',
      username: 'u',
      password: 'p',
      mqttVersion: '5',
    });
    assert.deepEqual(p, [
      'username: preset azure-iot-hub sets the username; remove --username (from --username)',
      'password: preset azure-iot-hub signs a SAS token as the password; remove --password (from --password)',
      'clientId: IoT Hub requires the client id to be the device id; remove --client-id (preset azure-iot-hub) (from --client-id)',
      'mqttVersion: IoT Hub speaks MQTT 3.1.1; remove --mqtt-version 5 (from --mqtt-version)',
    ]);
    assert.match(
      problemsOf({ preset: 'azure-iot-hub', hub: 'myhub' })[0] ?? '',
      /^hub: must be the IoT hub host name/,
    );
    assert.match(
      problemsOf({ preset: 'azure', hub: HUB })[0] ?? '',
      /^preset: must be one of azure-iot-hub, aws-iot/,
    );
  });

  test('aws-iot needs certificates and an mqtts host', () => {
    assert.deepEqual(problemsOf({ preset: 'aws-iot' }), [
      'preset: aws-iot needs --cert and --key templates (one certificate per device, e.g. certs/{deviceId}.pem) (from --preset)',
      'preset: aws-iot needs --host mqtts://PREFIX-ats.iot.REGION.amazonaws.com:8883 (your account endpoint) (from --preset)',
    ]);
  });

  test('TLS options: cert without key, TLS options on a plain host, missing files', () => {
    const dir = tmp();
    assert.deepEqual(problemsOf({ host: 'mqtt://b:1883', insecure: true, ca: 'ca.pem' }, dir), [
      'insecure: only applies to mqtts:// and wss:// hosts; --host is mqtt://… (from --insecure)',
      'ca: only applies to mqtts:// and wss:// hosts; --host is mqtt://… (from --ca)',
      'ca: cannot read CA file ca.pem: no such file (from --ca)',
    ]);
    assert.deepEqual(problemsOf({ insecure: true }, dir), [
      'insecure: only applies to mqtts:// and wss:// hosts; no --host (the embedded broker speaks plain MQTT) (default)'.replace(
        '(default)',
        '(from --insecure)',
      ),
    ]);
    assert.deepEqual(problemsOf({ host: 'mqtts://b', cert: 'c/{deviceId}.pem' }, dir), [
      "cert: needs --key too (the device's private key file) (from --cert)",
      'cert: cannot read certificate of dev-000000 c/dev-000000.pem: no such file (from --cert)',
    ]);
    writeFileSync(join(dir, 'bad.pem'), 'hello');
    assert.deepEqual(problemsOf({ host: 'wss://b/mqtt', ca: 'bad.pem' }, dir), [
      'ca: bad.pem is not a PEM certificate (from --ca)',
    ]);
    assert.deepEqual(problemsOf({ host: 'mqtt://b', hub: HUB }, dir), [
      'hub: only applies with --preset azure-iot-hub (from --hub)',
    ]);
    assert.match(
      problemsOf(
        { host: 'mqtts://b', preset: 'azure-iot-hub', hub: HUB, deviceKey: DEVICE_KEY, sasTtl: '5s' },
        dir,
      )[0] ?? '',
      /^sasTtl: must be at least 10s/,
    );
  });

  test('insecure over mqtts loads', () => {
    const { scenario: s } = load({ host: 'mqtts://b:8883', insecure: true, servername: 'b.example' });
    assert.equal(s.insecure, true);
    assert.equal(s.servername, 'b.example');
  });
});
