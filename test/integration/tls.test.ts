import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { certsCmd, makeCerts } from '../../src/cli/certs.js';
import type { CliIo } from '../../src/cli/commands.js';
import { FleetloadError } from '../../src/errors.js';
import { createIdentityProvider, type DeviceIdentity } from '../../src/identity/identity.js';
import { Connection, type ConnectionHandler, State } from '../../src/mqtt/connection.js';
import { encodeTopic, type ProtocolVersion } from '../../src/mqtt/packets.js';
import { forgetTlsSessions, tlsHandshakes } from '../../src/mqtt/transport.js';
import { loadScenario } from '../../src/scenario/load.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { tmpDir } from '../helpers/process.js';
import { freePort, skipUnless, waitForPort } from '../helpers/services.js';

/**
 * TLS and mutual TLS against a real Mosquitto, with the CA and device certificates `fleetload certs` makes:
 * Mosquitto requires a client certificate signed by that CA and takes the certificate's CN as the username
 * (`use_identity_as_username`); an ACL then lets each device publish only under its own id, which proves the
 * broker saw CN = deviceId. Devices connect through the identity provider and the engine's `Connection`, the
 * path a run takes.
 */

const skip = skipUnless('mosquitto');

interface Outcome {
  ok: boolean;
  kind?: string;
  code?: number | string;
  reason?: string;
}

/** One device: connect with `identity`, resolve when CONNACK succeeds or the attempt fails. */
class Device implements ConnectionHandler {
  readonly conn = new Connection(0, this);
  /** 'raw': TLS on libuv's TCP handle (src/mqtt/raw-tls.ts, the default); 'node': tls.connect */
  constructor(private readonly sockets: 'raw' | 'node' = 'raw') {}
  private settle: ((o: Outcome) => void) | undefined;
  private readonly acks: Array<(reason: number) => void> = [];

  open(url: string, id: DeviceIdentity, version: ProtocolVersion = 5): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, kind: 'test', code: 'timeout' }), 5000);
      this.settle = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
      this.conn.open(
        {
          transport: { url: new URL(url), ...id.tls, sockets: this.sockets },
          version,
          connect: {
            clientId: id.clientId,
            version,
            keepaliveSec: 30,
            clean: true,
            username: id.username,
            password: id.password,
          },
        },
        Date.now(),
      );
    });
  }

  /** QoS 1 publish; resolves with the PUBACK reason code. */
  publish(topic: string, version: ProtocolVersion = 5): Promise<number> {
    return new Promise((resolve) => {
      this.acks.push(resolve);
      this.conn.publish(encodeTopic(topic), 1, version, '{"hello":1}', 0, Date.now());
    });
  }

  close(): void {
    if (this.conn.state !== State.Idle) this.conn.disconnect(5);
  }

  connected(): void {
    this.settle?.({ ok: true });
  }
  connectFailed(_i: number, kind: string, code: number | string, reason: string): void {
    this.settle?.({ ok: false, kind, code, reason });
  }
  closed(): void {}
  acked(_i: number, _sentAt: number, reasonCode: number): void {
    this.acks.shift()?.(reasonCode);
  }
}

// every check on both TLS paths: the raw one devices use by default, and tls.connect (`--sockets node`)
for (const sockets of ['raw', 'node'] as const)
  describe(`TLS and mutual TLS (Mosquitto, certificates from fleetload certs), sockets: ${sockets}`, {
    skip,
  }, () => {
    let dir: string;
    let certs: string;
    let broker: Mosquitto;
    let wssUrl: string;
    const devices: Device[] = [];

    const device = (): Device => {
      const d = new Device(sockets);
      devices.push(d);
      return d;
    };

    /** The scenario as `fleetload run` would load it (preset aws-iot: mTLS, per-device certificate templates). */
    const scenario = (host: string, flags: Record<string, unknown> = {}): Scenario =>
      loadScenario({
        flags: {
          host,
          preset: 'aws-iot',
          ca: join(certs, 'ca.pem'),
          cert: join(certs, '{deviceId}.pem'),
          key: join(certs, '{deviceId}.key'),
          mqttVersion: '5',
          ...flags,
        },
        env: {},
        cwd: dir,
      }).scenario;

    before(async () => {
      dir = tmpDir('fleetload-tls-');
      certs = join(dir, 'certs');
      const made = await makeCerts({ devices: 5, out: certs, serverNames: ['localhost', '127.0.0.1'] });
      assert.equal(made.deviceIds.length, 5);
      await makeCerts({ devices: 1, out: join(dir, 'other-ca') });
      const acl = join(dir, 'acl');
      // %u is the username, here the certificate's CN
      writeFileSync(acl, 'pattern readwrite dt/fleetload/%u/#\n');
      const wssPort = await freePort();
      wssUrl = `wss://127.0.0.1:${wssPort}/mqtt`;
      const tlsFiles = [
        `certfile ${join(certs, 'server.pem')}`,
        `keyfile ${join(certs, 'server.key')}`,
        `cafile ${join(certs, 'ca.pem')}`,
        'require_certificate true',
        'use_identity_as_username true',
      ];
      broker = await startMosquitto({
        tls: {
          certfile: join(certs, 'server.pem'),
          keyfile: join(certs, 'server.key'),
          cafile: join(certs, 'ca.pem'),
          requireCertificate: true,
        },
        // the first line applies to the TLS listener (the last one); then a WSS listener with the same certificates
        extraConfig: [
          'use_identity_as_username true',
          `listener ${wssPort} 127.0.0.1`,
          'protocol websockets',
          ...tlsFiles,
          `acl_file ${acl}`,
        ].join('\n'),
      });
      await waitForPort(wssPort);
    });

    after(async () => {
      for (const d of devices) d.close();
      await broker?.stop();
    });

    test('five devices connect with their own certificates and publish under their own id only', async () => {
      const url = broker.tlsUrl as string;
      const p = createIdentityProvider(scenario(url), { cwd: dir });
      for (let i = 0; i < 5; i++) {
        const id = p.forDevice(i, `dev-${String(i).padStart(6, '0')}`, Date.now());
        assert.equal(id.clientId, `dev-${String(i).padStart(6, '0')}`);
        const d = device();
        const o = await d.open(url, id);
        assert.deepEqual(o, { ok: true }, `device ${i}: ${JSON.stringify(o)}\n${broker.output()}`);
        // own topic: accepted (0x00, or 0x10 "no matching subscribers"); another device's: not authorized
        assert.ok((await d.publish(id.topic)) < 0x80, 'publish to its own topic');
        assert.equal(await d.publish('dt/fleetload/dev-999999/telemetry'), 0x87, 'ACL keyed on the CN');
        d.close();
      }
    });

    test('a certificate from another CA is refused, and so is a device without one', async () => {
      const url = broker.tlsUrl as string;
      const foreign = createIdentityProvider(
        scenario(url, {
          cert: join(dir, 'other-ca', '{deviceId}.pem'),
          key: join(dir, 'other-ca', '{deviceId}.key'),
        }),
        { cwd: dir },
      ).forDevice(0, 'dev-000000', Date.now());
      const o = await device().open(url, foreign);
      assert.equal(o.ok, false);
      assert.equal(o.kind, 'socket');
      assert.equal(o.code, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', JSON.stringify(o));

      const none = createIdentityProvider(
        scenario(url, { preset: undefined, cert: undefined, key: undefined }),
        {
          cwd: dir,
        },
      ).forDevice(0, 'dev-000000', Date.now());
      assert.equal(none.tls?.cert, undefined);
      const o2 = await device().open(url, none);
      assert.equal(o2.ok, false);
      assert.equal(o2.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', JSON.stringify(o2));
    });

    test('the broker certificate is verified: unknown CA refused, --insecure skips the check', async () => {
      const url = broker.tlsUrl as string;
      // no --ca: the system store does not know the test CA (Mosquitto sends it along in the chain)
      const s = scenario(url, { ca: undefined });
      const id = createIdentityProvider(s, { cwd: dir }).forDevice(1, 'dev-000001', Date.now());
      const o = await device().open(url, id);
      assert.equal(o.ok, false);
      assert.equal(o.code, 'SELF_SIGNED_CERT_IN_CHAIN', JSON.stringify(o));

      const insecure = createIdentityProvider(scenario(url, { ca: undefined, insecure: true }), {
        cwd: dir,
      }).forDevice(1, 'dev-000001', Date.now());
      assert.equal(insecure.tls?.insecure, true);
      assert.deepEqual(await device().open(url, insecure), { ok: true });
    });

    test('servername: the certificate is checked against it (SNI), not the IP in the URL', async () => {
      const url = broker.tlsUrl as string;
      const good = createIdentityProvider(scenario(url, { servername: 'localhost' }), { cwd: dir });
      assert.deepEqual(await device().open(url, good.forDevice(2, 'dev-000002', Date.now())), { ok: true });
      const bad = createIdentityProvider(scenario(url, { servername: 'broker.invalid' }), { cwd: dir });
      const o = await device().open(url, bad.forDevice(2, 'dev-000002', Date.now()));
      assert.equal(o.ok, false);
      assert.equal(o.code, 'ERR_TLS_CERT_ALTNAME_INVALID', JSON.stringify(o));
    });

    test('WSS with client certificates', async () => {
      const p = createIdentityProvider(scenario(wssUrl), { cwd: dir });
      const id = p.forDevice(3, 'dev-000003', Date.now());
      const d = device();
      const o = await d.open(wssUrl, id);
      assert.deepEqual(o, { ok: true }, `${JSON.stringify(o)}\n${broker.output()}`);
      assert.ok((await d.publish(id.topic)) < 0x80);
      assert.equal(await d.publish('dt/fleetload/dev-000004/telemetry'), 0x87);
    });

    test("a reconnect resumes its own TLS session (not another device's); after a broker restart a full handshake", async () => {
      const url = broker.tlsUrl as string;
      const p = createIdentityProvider(scenario(url), { cwd: dir });
      forgetTlsSessions();
      const counted = async (i: number): Promise<{ full: number; resumed: number; reason: number }> => {
        const before = { ...tlsHandshakes };
        const id = p.forDevice(i, `dev-${String(i).padStart(6, '0')}`, Date.now());
        const d = device();
        const o = await d.open(url, id);
        assert.deepEqual(o, { ok: true }, `${JSON.stringify(o)}\n${broker.output()}`);
        // the broker still takes the certificate's CN as the username: the ACL lets it publish only under its own id
        const reason = await d.publish(id.topic);
        assert.equal(await d.publish('dt/fleetload/dev-999999/telemetry'), 0x87);
        d.close();
        return {
          full: tlsHandshakes.full - before.full,
          resumed: tlsHandshakes.resumed - before.resumed,
          reason,
        };
      };
      assert.deepEqual(
        await counted(0),
        { full: 1, resumed: 0, reason: 0x10 },
        'first connect: full handshake',
      );
      assert.deepEqual(await counted(0), { full: 0, resumed: 1, reason: 0x10 }, 'reconnect: resumed');
      assert.deepEqual(
        await counted(1),
        { full: 1, resumed: 0, reason: 0x10 },
        'another certificate: its own handshake',
      );
      assert.deepEqual(await counted(1), { full: 0, resumed: 1, reason: 0x10 });
      await broker.restart();
      // the restarted broker has new ticket keys: the kept ticket is refused and the device still connects
      assert.deepEqual(
        await counted(0),
        { full: 1, resumed: 0, reason: 0x10 },
        'after a restart: full handshake',
      );
      assert.deepEqual(await counted(0), { full: 0, resumed: 1, reason: 0x10 }, 'and resumes from then on');
    });
  });

describe('fleetload certs', () => {
  const io = (cwd: string): CliIo & { out: () => string } => {
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (b: Buffer) => {
      text += b.toString();
    });
    return { env: {}, stdout, stderr: new PassThrough(), cwd, out: () => text };
  };
  const refused = async (argv: string[], cwd: string, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(certsCmd(argv, io(cwd)), (e: unknown) => {
      assert.ok(e instanceof FleetloadError, String(e));
      assert.equal(e.code, code);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, message);
      return true;
    });
  };

  test('CA + device certificates: CN = device id, signed by the CA, PKCS#8 keys only the owner reads', async () => {
    const cwd = tmpDir('fleetload-certs-');
    const c = io(cwd);
    assert.equal(
      await certsCmd(['--devices', '3', '--out', 'out', '--device-id', 'meter-{index:2}', '--days', '2'], c),
      0,
    );
    assert.match(c.out(), /new CA .*ca\.pem; 3 device certificates \(meter-00 … meter-02\)/);
    const ca = new X509Certificate(readFileSync(join(cwd, 'out', 'ca.pem')));
    assert.equal(ca.ca, true);
    for (const id of ['meter-00', 'meter-01', 'meter-02']) {
      const cert = new X509Certificate(readFileSync(join(cwd, 'out', `${id}.pem`)));
      assert.equal(cert.subject, `CN=${id}`);
      assert.ok(cert.verify(ca.publicKey), `${id} is signed by the CA`);
      assert.ok(cert.checkIssued(ca));
      assert.ok(Date.parse(cert.validTo) - Date.now() < 2 * 86_400_000 + 60_000);
      const key = readFileSync(join(cwd, 'out', `${id}.key`), 'utf8');
      assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(key)));
      assert.equal(statSync(join(cwd, 'out', `${id}.key`)).mode & 0o077, 0);
    }
    assert.equal(statSync(join(cwd, 'out', 'ca.key')).mode & 0o077, 0);
  });

  test('refuses to replace a CA without --force; reuses one with --ca-cert/--ca-key', async () => {
    const cwd = tmpDir('fleetload-certs-');
    await certsCmd(['-u', '1', '--out', 'a'], io(cwd));
    const before = readFileSync(join(cwd, 'a', 'ca.pem'), 'utf8');
    await refused(['-u', '1', '--out', 'a'], cwd, 'E_FILE', /already holds a CA .*--force/);
    assert.equal(readFileSync(join(cwd, 'a', 'ca.pem'), 'utf8'), before);
    // more devices from the same CA, elsewhere
    await certsCmd(
      ['-u', '2', '--first', '5', '--out', 'b', '--ca-cert', 'a/ca.pem', '--ca-key', 'a/ca.key'],
      io(cwd),
    );
    assert.equal(existsSync(join(cwd, 'b', 'ca.key')), false, 'the CA key is not copied');
    const ca = new X509Certificate(before);
    assert.ok(new X509Certificate(readFileSync(join(cwd, 'b', 'dev-000006.pem'))).verify(ca.publicKey));
    assert.equal(await certsCmd(['-u', '1', '--out', 'a', '--force'], io(cwd)), 0);
    assert.notEqual(readFileSync(join(cwd, 'a', 'ca.pem'), 'utf8'), before);
    // a key that is not the CA's
    await refused(
      ['-u', '1', '--out', 'c', '--ca-cert', 'b/ca.pem', '--ca-key', 'a/ca.key'],
      cwd,
      'E_FILE',
      /is not the private key of/,
    );
  });

  test('bad input: one clear message each, exit 2', async () => {
    const cwd = tmpDir('fleetload-certs-');
    await refused(['--out', 'x'], cwd, 'E_USAGE', /--devices N is required/);
    await refused(['-u', 'ten', '--out', 'x'], cwd, 'E_USAGE', /--devices: must be a whole number/);
    await refused(['-u', '2', '--out', 'x', '--device-id', 'same'], cwd, 'E_USAGE', /has no \{index\}/);
    await refused(
      ['-u', '2', '--out', 'x', '--device-id', 'd-{deviceId}'],
      cwd,
      'E_USAGE',
      /unknown placeholder \{deviceId\}/,
    );
    await refused(['-u', '2', '--out', 'x', '--bogus'], cwd, 'E_USAGE', /bogus/);
    await refused(['-u', '1', '--out', 'x', '--ca-cert', 'nope.pem'], cwd, 'E_USAGE', /go together/);
    await refused(
      ['-u', '1', '--out', 'x', '--ca-cert', 'nope.pem', '--ca-key', 'nope.key'],
      cwd,
      'E_FILE',
      /--ca-cert: cannot read .*nope\.pem: no such file/,
    );
    writeFileSync(join(cwd, 'file'), '');
    await refused(['-u', '1', '--out', 'file/sub'], cwd, 'E_FILE', /--out: cannot create/);
  });
});
