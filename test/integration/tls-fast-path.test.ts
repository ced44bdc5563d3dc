import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { makeCerts } from '../../src/cli/certs.js';
import { createIdentityProvider } from '../../src/identity/identity.js';
import { Connection, type ConnectionHandler, State } from '../../src/mqtt/connection.js';
import { encodeTopic } from '../../src/mqtt/packets.js';
import {
  forgetTlsSessions,
  openChannel,
  openTransport,
  secureContextFor,
  type TransportOptions,
  tlsContextsMade,
  tlsHandshakes,
} from '../../src/mqtt/transport.js';
import { loadScenario } from '../../src/scenario/load.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { tmpDir } from '../helpers/process.js';
import { skipUnless } from '../helpers/services.js';

/**
 * The TLS path's savings keep its behaviour: one SecureContext per certificate set (not one per connect), and
 * bytes read through the one read buffer every TLS connection shares arrive intact, in order, whatever their size.
 */

let dir: string;
let certs: string;

before(async () => {
  dir = tmpDir('fleetload-tls-fast-');
  certs = join(dir, 'certs');
  await makeCerts({ devices: 2, out: certs, serverNames: ['127.0.0.1'], readableServerKey: true });
});

describe('SecureContext reuse', () => {
  const transportFor = (index: number, flags: Record<string, unknown>): TransportOptions => {
    const s = loadScenario({
      flags: { host: 'mqtts://127.0.0.1:8883', ca: join(certs, 'ca.pem'), ...flags },
      env: {},
      cwd: dir,
    }).scenario;
    // a provider per call, as a restarted run: every buffer (the CA's too) is read afresh
    const id = createIdentityProvider(s, { cwd: dir }).forDevice(
      index,
      `dev-${String(index).padStart(6, '0')}`,
      0,
    );
    return { url: new URL('mqtts://127.0.0.1:8883'), ...id.tls };
  };

  test('a device with its own certificate: one context across its reconnects, another device its own', () => {
    const provider = createIdentityProvider(
      loadScenario({
        flags: {
          host: 'mqtts://127.0.0.1:8883',
          ca: join(certs, 'ca.pem'),
          cert: join(certs, '{deviceId}.pem'),
          key: join(certs, '{deviceId}.key'),
        },
        env: {},
        cwd: dir,
      }).scenario,
      { cwd: dir },
    );
    const connectOf = (i: number): TransportOptions => ({
      url: new URL('mqtts://127.0.0.1:8883'),
      ...provider.forDevice(i, `dev-${String(i).padStart(6, '0')}`, 0).tls,
    });
    const first = connectOf(0);
    const again = connectOf(0); // the files are read again at each connect: new buffers, same content
    assert.notEqual(first.cert, again.cert);
    const made = tlsContextsMade.count;
    const a = secureContextFor(first);
    assert.equal(tlsContextsMade.count, made + 1);
    const b = secureContextFor(again);
    assert.equal(b.ctx, a.ctx, 'the reconnect reuses the context');
    assert.equal(b.certId, a.certId);
    assert.equal(tlsContextsMade.count, made + 1, 'no context made for the reconnect');
    const other = secureContextFor(connectOf(1));
    assert.notEqual(other.ctx, a.ctx, "another device's certificate: its own context");
    assert.notEqual(other.certId, a.certId);
    assert.equal(tlsContextsMade.count, made + 2);
  });

  test('devices without a certificate share the context of their CA; another CA buffer gets its own', () => {
    const provider = createIdentityProvider(
      loadScenario({
        flags: { host: 'mqtts://127.0.0.1:8883', ca: join(certs, 'ca.pem') },
        env: {},
        cwd: dir,
      }).scenario,
      { cwd: dir },
    );
    const t = (i: number): TransportOptions => ({
      url: new URL('mqtts://127.0.0.1:8883'),
      ...provider.forDevice(i, `dev-${i}`, 0).tls,
    });
    const made = tlsContextsMade.count;
    const a = secureContextFor(t(0));
    const b = secureContextFor(t(1));
    assert.equal(a.ctx, b.ctx);
    assert.equal(a.certId, '');
    assert.equal(tlsContextsMade.count, made + 1);
    const c = secureContextFor(transportFor(0, {}));
    assert.notEqual(c.ctx, a.ctx, 'a CA read by another provider: its own context');
  });
});

const skip = skipUnless('mosquitto');

class Client implements ConnectionHandler {
  readonly conn = new Connection(0, this);
  readonly got: Buffer[] = [];
  private wake: (() => void) | undefined;
  private opened: ((ok: boolean) => void) | undefined;
  open(url: string, clientId: string): Promise<boolean> {
    return new Promise((resolve) => {
      this.opened = resolve;
      this.conn.open(
        {
          transport: { url: new URL(url), ca: undefined, insecure: true },
          version: 4,
          connect: { clientId, version: 4, keepaliveSec: 30, clean: true },
        },
        Date.now(),
      );
    });
  }
  /** resolves once `n` messages have arrived (or after 10 s) */
  received(n: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      this.wake = () => {
        if (this.got.length >= n) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.wake();
    });
  }
  connected(): void {
    this.opened?.(true);
  }
  connectFailed(): void {
    this.opened?.(false);
  }
  closed(): void {}
  acked(): void {}
  subscribed(): void {
    this.onSuback?.();
  }
  private onSuback: (() => void) | undefined;
  subscribe(filter: string): Promise<void> {
    return new Promise((resolve) => {
      this.onSuback = resolve;
      this.conn.subscribe(filter, 0, 4);
    });
  }
  message(_i: number, _topic: string, payload: Buffer): void {
    this.got.push(payload);
    this.wake?.();
  }
}

describe('TLS reads through the shared read buffer (Mosquitto over TLS)', { skip }, () => {
  let broker: Mosquitto;
  const clients: Client[] = [];
  before(async () => {
    broker = await startMosquitto({
      tls: { certfile: join(certs, 'server.pem'), keyfile: join(certs, 'server.key') },
    });
  });
  after(async () => {
    for (const c of clients) if (c.conn.state !== State.Idle) c.conn.disconnect(4);
    await broker?.stop();
  });

  test('two subscribers get byte-identical payloads of every size, in order, while they share the buffer', async () => {
    const url = broker.tlsUrl as string;
    const subs = [new Client(), new Client()];
    const pub = new Client();
    clients.push(...subs, pub);
    for (const [i, c] of [...subs, pub].entries()) assert.equal(await c.open(url, `fast-${i}`), true);
    await Promise.all(subs.map((s) => s.subscribe('fast/#')));
    const sizes = [1, 200, 16_383, 16_384, 16_385, 40_000, 100_000, 7, 3];
    const payloads = sizes.map((n, k) => {
      const b = Buffer.alloc(n);
      for (let j = 0; j < n; j++) b[j] = (j * 31 + k * 7) & 0xff;
      return b;
    });
    for (const p of payloads) pub.conn.publish(encodeTopic('fast/x'), 0, 4, p, p.length, Date.now());
    await Promise.all(subs.map((s) => s.received(payloads.length)));
    for (const s of subs) {
      assert.equal(s.got.length, payloads.length);
      for (const [k, g] of s.got.entries())
        assert.ok(g.equals(payloads[k] as Buffer), `payload ${k} (${sizes[k]} bytes) intact`);
    }
  });

  test('resume: false makes a full handshake but keeps the session it is given; the next connect resumes it', async () => {
    const url = new URL(broker.tlsUrl as string);
    // a connect that ends once the handshake is done and the server's tickets had time to arrive
    const handshake = (resume: boolean): Promise<void> =>
      new Promise((resolve) => {
        const ch = openChannel(
          { url, insecure: true, servername: 'fast-path-resume', resume },
          {
            onOpen: () => setTimeout(() => ch.destroy(), 200),
            onBytes() {},
            onError() {},
            onClose() {},
          },
        );
        setTimeout(resolve, 400);
      });
    await handshake(true); // makes a session for this server + servername, whatever was kept before
    const before = { ...tlsHandshakes };
    await handshake(false);
    assert.deepEqual([tlsHandshakes.full - before.full, tlsHandshakes.resumed - before.resumed], [1, 0]);
    await handshake(true);
    assert.deepEqual([tlsHandshakes.full - before.full, tlsHandshakes.resumed - before.resumed], [1, 1]);
  });
});

/** One TLS connect through the transport, the way a device makes it: what was negotiated, and whether it resumed. */
function tlsConnect(
  o: TransportOptions,
): Promise<{ ok: true; protocol: string | null; reused: boolean } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const s = openTransport(o, () => {
      const protocol = s.getProtocol();
      const reused = s.isSessionReused();
      // TLS 1.3 tickets come after the handshake: give them time to arrive before closing
      setTimeout(() => {
        s.destroy();
        resolve({ ok: true, protocol, reused });
      }, 200);
    }).stream as tls.TLSSocket;
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

describe('--tls-version pins the version the devices negotiate (Mosquitto over TLS)', { skip }, () => {
  let broker: Mosquitto;
  let only13: Mosquitto;
  before(async () => {
    const tlsFiles = { certfile: join(certs, 'server.pem'), keyfile: join(certs, 'server.key') };
    broker = await startMosquitto({ tls: tlsFiles });
    only13 = await startMosquitto({ tls: tlsFiles, extraConfig: 'tls_version tlsv1.3' });
  });
  after(async () => {
    await broker?.stop();
    await only13?.stop();
  });

  const device = (url: string, flags: Record<string, unknown>): TransportOptions => {
    const s = loadScenario({
      flags: { host: url, ca: join(certs, 'ca.pem'), ...flags },
      env: {},
      cwd: dir,
    }).scenario;
    return {
      url: new URL(url),
      ...createIdentityProvider(s, { cwd: dir }).forDevice(0, 'dev-000000', 0).tls,
    };
  };

  for (const [version, protocol] of [
    ['1.2', 'TLSv1.2'],
    ['1.3', 'TLSv1.3'],
    ['auto', 'TLSv1.3'],
  ] as const) {
    test(`--tls-version ${version}: ${protocol} is negotiated, and the second connect resumes the session`, async () => {
      const o = device(broker.tlsUrl as string, { tlsVersion: version });
      assert.equal(o.tlsVersion, version === 'auto' ? undefined : version);
      forgetTlsSessions();
      assert.deepEqual(await tlsConnect(o), { ok: true, protocol, reused: false });
      assert.deepEqual(await tlsConnect(o), { ok: true, protocol, reused: true }, 'resumed');
      assert.deepEqual(await tlsConnect(o), { ok: true, protocol, reused: true }, 'and again');
    });
  }

  test('with a client certificate too: 1.2 negotiated, its own session resumed', async () => {
    const o = device(broker.tlsUrl as string, {
      tlsVersion: '1.2',
      cert: join(certs, '{deviceId}.pem'),
      key: join(certs, '{deviceId}.key'),
    });
    forgetTlsSessions();
    assert.deepEqual(await tlsConnect(o), { ok: true, protocol: 'TLSv1.2', reused: false });
    assert.deepEqual(await tlsConnect(o), { ok: true, protocol: 'TLSv1.2', reused: true });
  });

  test('a session kept at one version is not offered at the other: a full handshake at 1.3 after 1.2', async () => {
    forgetTlsSessions();
    const at12 = device(broker.tlsUrl as string, { tlsVersion: '1.2' });
    const at13 = device(broker.tlsUrl as string, { tlsVersion: '1.3' });
    assert.notEqual(secureContextFor(at12).ctx, secureContextFor(at13).ctx);
    assert.deepEqual(await tlsConnect(at12), { ok: true, protocol: 'TLSv1.2', reused: false });
    assert.deepEqual(await tlsConnect(at13), { ok: true, protocol: 'TLSv1.3', reused: false });
  });

  test('a broker limited to TLS 1.3 refuses --tls-version 1.2, and takes 1.3', async () => {
    const url = only13.tlsUrl as string;
    const refused = await tlsConnect(device(url, { tlsVersion: '1.2' }));
    assert.equal(refused.ok, false);
    assert.match(JSON.stringify(refused), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
    assert.deepEqual(await tlsConnect(device(url, { tlsVersion: '1.3' })), {
      ok: true,
      protocol: 'TLSv1.3',
      reused: false,
    });
  });
});
