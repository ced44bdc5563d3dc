import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import mqttPacket from 'mqtt-packet';
import { makeCerts } from '../../src/cli/certs.js';
import { createIdentityProvider } from '../../src/identity/identity.js';
import { Connection, type ConnectionHandler, State } from '../../src/mqtt/connection.js';
import { encodeConnect, encodeTopic } from '../../src/mqtt/packets.js';
import {
  MAX_RECORD,
  MIN_RECORD,
  RawTlsChannel,
  rawTlsAvailable,
  recordSizeFor,
  wrapArity,
} from '../../src/mqtt/raw-tls.js';
import {
  type Channel,
  forgetTlsSessions,
  keptTlsSessions,
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
import { freePort, skipUnless } from '../helpers/services.js';

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

/** MQTT 3.1.1 CONNECT (clean session, keepalive 0) for `id`, with a will on `will/<id>` if asked; and DISCONNECT. */
function connectPacket(id: string, will = false): Buffer {
  const str = (x: string): Buffer => {
    const b = Buffer.from(x);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  };
  const flags = will ? 0x06 : 0x02;
  const body = Buffer.concat([
    Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, 0, 0]),
    str(id),
    ...(will ? [str(`will/${id}`), str('gone')] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}
const DISCONNECT = Buffer.from([0xe0, 0]);

interface Heard {
  events: string[];
  bytes: Buffer[];
  /** resolves at the first event that matches */
  when(re: RegExp, ms?: number): Promise<void>;
}

/** Opens a channel the way a device does and records what its sink hears. */
function channel(o: TransportOptions): { ch: Channel; heard: Heard } {
  const waiters: Array<{ re: RegExp; go: () => void }> = [];
  const heard: Heard = {
    events: [],
    bytes: [],
    when: (re, ms = 5000) =>
      new Promise((resolve, reject) => {
        if (heard.events.some((e) => re.test(e))) return resolve();
        const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(heard.events)}`)), ms);
        waiters.push({
          re,
          go: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
  };
  const hear = (e: string): void => {
    heard.events.push(e);
    for (const w of waiters.splice(0)) {
      if (w.re.test(e)) w.go();
      else waiters.push(w);
    }
  };
  const ch = openChannel(o, {
    onOpen: () => hear('open'),
    onBytes: (b) => {
      heard.bytes.push(Buffer.from(b));
      hear(`bytes ${b.length}`);
    },
    onError: (code, message) => hear(`error ${code} ${message}`),
    onClose: () => hear('close'),
  });
  return { ch, heard };
}

/** One connect on the raw channel: refused with a code, or what it negotiated (after the tickets had time). */
async function rawConnect(
  o: TransportOptions,
): Promise<{ ok: true; protocol: string | null; resumed: boolean } | { ok: false; code: string }> {
  const { ch, heard } = channel(o);
  assert.ok(ch instanceof RawTlsChannel, 'TLS devices use the raw channel');
  await heard.when(/^(open|close)$/);
  if (!heard.events.includes('open')) {
    const err = heard.events.find((e) => e.startsWith('error ')) ?? 'no error';
    return { ok: false, code: err.split(' ')[1] as string };
  }
  await new Promise((r) => setTimeout(r, 200)); // TLS 1.3 tickets come after the handshake
  const out = { ok: true as const, protocol: ch.protocol, resumed: ch.resumed };
  ch.destroy();
  return out;
}

describe('TLS on raw handles: TLSWrap on the TCP handle, the checks tls.connect makes (Mosquitto over TLS)', {
  skip,
}, () => {
  let broker: Mosquitto;
  let otherCa: string;
  before(async () => {
    broker = await startMosquitto({
      tls: { certfile: join(certs, 'server.pem'), keyfile: join(certs, 'server.key') },
    });
    otherCa = join(dir, 'other');
    await makeCerts({ devices: 0, out: otherCa });
  });
  after(async () => {
    await broker?.stop();
  });
  const ca = (): Buffer => readFileSync(join(certs, 'ca.pem'));

  test("tls_wrap.wrap's argument count is read from Node's own call (a wrong count aborts the process)", () => {
    const fake = (source: unknown) => (name: string) => (name === 'natives' ? { _tls_wrap: source } : {});
    const old = 'const res = tls_wrap.wrap(handle, context.context, !!options.isServer);';
    const now =
      'tls_wrap.wrap(handle, context.context,\n  !!options.isServer,\n  wrapHasActiveWriteFromPrevOwner);';
    assert.equal(wrapArity(fake(old)), 3);
    assert.equal(wrapArity(fake(now)), 4);
    assert.equal(wrapArity(fake('tls_wrap.wrap(a, b, c, d, e)')), undefined, 'an unknown form: no raw TLS');
    assert.equal(wrapArity(fake('nothing here')), undefined);
    assert.equal(wrapArity(fake(undefined)), undefined, 'no sources: no raw TLS');
    const real = (process as unknown as { binding(n: string): Record<string, unknown> }).binding;
    assert.equal(wrapArity(real), 4, 'this Node (20.20) passes four');
  });

  test('devices use it on this Node; --sockets node uses tls.connect', () => {
    assert.equal(rawTlsAvailable(), true);
    const sink = { onOpen() {}, onBytes() {}, onError() {}, onClose() {} };
    const url = new URL(broker.tlsUrl as string);
    const raw = openChannel({ url, ca: ca() }, sink);
    const node = openChannel({ url, ca: ca(), sockets: 'node' }, sink);
    assert.ok(raw instanceof RawTlsChannel);
    assert.ok(!(node instanceof RawTlsChannel));
    raw.destroy();
    node.destroy();
  });

  for (const [name, version, protocol] of [
    ['TLS 1.3', undefined, 'TLSv1.3'],
    ['--tls-version 1.2', '1.2', 'TLSv1.2'],
  ] as const)
    test(`${name}: verified, negotiated, the session kept and resumed`, async () => {
      forgetTlsSessions();
      const o: TransportOptions = { url: new URL(broker.tlsUrl as string), ca: ca(), tlsVersion: version };
      const before = { ...tlsHandshakes };
      assert.deepEqual(await rawConnect(o), { ok: true, protocol, resumed: false });
      assert.equal(keptTlsSessions(), 1);
      assert.deepEqual(await rawConnect(o), { ok: true, protocol, resumed: true });
      assert.deepEqual([tlsHandshakes.full - before.full, tlsHandshakes.resumed - before.resumed], [1, 1]);
    });

  test('a server that fails the checks is refused and leaves no session (TLS 1.2 gives it before the checks)', async () => {
    forgetTlsSessions();
    const url = new URL(broker.tlsUrl as string);
    const foreign = { url, ca: readFileSync(join(otherCa, 'ca.pem')), tlsVersion: '1.2' as const };
    for (let i = 0; i < 2; i++) {
      const o = await rawConnect(foreign);
      assert.equal(o.ok, false);
      assert.match(JSON.stringify(o), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    }
    const misnamed = { url, ca: ca(), servername: 'not-the-broker.example', tlsVersion: '1.2' as const };
    for (let i = 0; i < 2; i++)
      assert.deepEqual(await rawConnect(misnamed), { ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    assert.equal(keptTlsSessions(), 0, 'nothing kept from a server that failed verification');
    // --insecure connects to the same server, and its session is kept apart from verified ones
    assert.deepEqual(await rawConnect({ ...misnamed, insecure: true }), {
      ok: true,
      protocol: 'TLSv1.2',
      resumed: false,
    });
    assert.deepEqual(await rawConnect(misnamed), { ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  test('a server that hangs up mid-handshake: ECONNRESET, as tls.connect reports it', async () => {
    const server = net.createServer((s) => s.destroy());
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const { heard } = channel({ url: new URL(`mqtts://127.0.0.1:${port}`), ca: ca() });
      await heard.when(/^close$/);
      assert.equal(heard.events.length, 2, JSON.stringify(heard.events));
      assert.match(
        heard.events[0] as string,
        /^error ECONNRESET .*before secure TLS connection was established/,
      );
    } finally {
      server.close();
    }
  });

  test('a write that fails at once (the server reset the connection) is reported, as tls.connect reports it', async () => {
    // the server resets the connection when it reads the first packet; the second goes when the first completes,
    // into a socket the reset already broke: the TLSWrap fails it inside writeBuffer
    const ctx = tls.createSecureContext({
      cert: readFileSync(join(certs, 'server.pem')),
      key: readFileSync(join(certs, 'server.key')),
    });
    const server = net.createServer((raw) => {
      raw.on('error', () => {});
      const s = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
      s.on('error', () => {});
      s.on('data', () => raw.resetAndDestroy());
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      for (const sockets of ['raw', 'node'] as const) {
        const { ch, heard } = channel({ url: new URL(`mqtts://127.0.0.1:${port}`), ca: ca(), sockets });
        await heard.when(/^open$/);
        await new Promise((r) => setTimeout(r, 100)); // the server's tickets are in
        ch.write(Buffer.alloc(100, 1));
        ch.write(Buffer.alloc(100, 2));
        await heard.when(/^close$/);
        // not a bare close: that would count as the broker closing the connection, not as a reset
        assert.match(
          heard.events.join('|'),
          /^open\|error (ECONNRESET|EPIPE) (read|write) (ECONNRESET|EPIPE)\|close$/,
          sockets,
        );
      }
    } finally {
      server.close();
    }
  });

  test('writes made while one is in flight go out together: 3,000 packets written at once arrive intact, in order', async () => {
    const url = broker.tlsUrl as string;
    const sub = new Client();
    const pub = new Client();
    assert.equal(await sub.open(url, 'burst-sub'), true);
    assert.equal(await pub.open(url, 'burst-pub'), true);
    await sub.subscribe('burst/#');
    const payloads = Array.from({ length: 3000 }, (_, k) => {
      const b = Buffer.alloc(1 + ((k * 37) % 1500));
      for (let j = 0; j < b.length; j++) b[j] = (j * 7 + k) & 0xff;
      return b;
    });
    for (const p of payloads) pub.conn.publish(encodeTopic('burst/x'), 0, 4, p, p.length, Date.now());
    await sub.received(payloads.length);
    assert.equal(sub.got.length, payloads.length);
    for (const [k, g] of sub.got.entries())
      assert.ok(g.equals(payloads[k] as Buffer), `packet ${k} intact, in order`);
    sub.conn.disconnect(4);
    pub.conn.disconnect(4);
  });

  test('end: the last packet goes out, then close_notify; the broker closes, the sink hears close and no error', async () => {
    // the broker publishes a device's will when its connection is lost, not after its DISCONNECT
    const watcher = new Client();
    assert.equal(await watcher.open(broker.tlsUrl as string, 'will-watcher'), true);
    await watcher.subscribe('will/#');
    const device = async (id: string): Promise<{ ch: Channel; heard: Heard }> => {
      const d = channel({ url: new URL(broker.tlsUrl as string), ca: ca() });
      await d.heard.when(/^open$/);
      d.ch.write(connectPacket(id, true));
      await d.heard.when(/^bytes/); // CONNACK
      assert.deepEqual([...(d.heard.bytes[0] ?? [])], [0x20, 2, 0, 0]);
      return d;
    };
    const ended = await device('raw-end');
    ended.ch.end(DISCONNECT);
    await ended.heard.when(/^close$/);
    assert.deepEqual(ended.heard.events, ['open', 'bytes 4', 'close'], 'no error');
    const lost = await device('raw-lost');
    lost.ch.destroy();
    await watcher.received(1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      watcher.got.map((b) => b.toString()),
      ['gone'],
      "one will: the destroyed device's; the ended one's DISCONNECT reached the broker",
    );
    watcher.conn.disconnect(4);
  });

  test('records start at 512 bytes and grow to fit the biggest packet written, up to 16 KB; every packet intact', async () => {
    assert.deepEqual(
      [1, 512, 513, 1500, 4096, 4097, 16_384, 16_385, 1e6].map(recordSizeFor),
      [512, 512, 1024, 2048, 4096, 8192, 16_384, 16_384, 16_384],
    );
    const sub = new Client();
    assert.equal(await sub.open(broker.tlsUrl as string, 'records-sub'), true);
    await sub.subscribe('records/#');
    const { ch, heard } = channel({ url: new URL(broker.tlsUrl as string), ca: ca() });
    assert.ok(ch instanceof RawTlsChannel);
    await heard.when(/^open$/);
    assert.equal(ch.recordSize, MIN_RECORD);
    ch.write(connectPacket('records-pub'));
    await heard.when(/^bytes/);
    const publish = (payload: Buffer): Buffer => {
      const topic = Buffer.from([0, 9, ...Buffer.from('records/x')]);
      const n = topic.length + payload.length;
      const len =
        n < 128
          ? [n]
          : n < 16_384
            ? [(n & 0x7f) | 0x80, n >> 7]
            : [(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14];
      return Buffer.concat([Buffer.from([0x30, ...len]), topic, payload]);
    };
    const payloads = [100, 3000, 200, 40_000].map((n, k) => Buffer.alloc(n, 0x41 + k));
    const sizes: number[] = [];
    for (const p of payloads) {
      ch.write(publish(p));
      sizes.push(ch.recordSize);
    }
    assert.deepEqual(
      sizes,
      [MIN_RECORD, 4096, 4096, MAX_RECORD],
      'grown by the 3,000 and 40,000-byte packets, never shrunk',
    );
    await sub.received(payloads.length);
    assert.deepEqual(
      sub.got.map((g) => [g.length, g[0]]),
      payloads.map((p) => [p.length, p[0]]),
    );
    for (const [k, g] of sub.got.entries()) assert.ok(g.equals(payloads[k] as Buffer), `payload ${k} intact`);
    ch.destroy();
    sub.conn.disconnect(4);
  });

  test('the pool of write requests keeps no closed connection alive', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const wraps: WeakRef<object>[] = [];
    for (let i = 0; i < 5; i++) {
      const { ch, heard } = channel({ url: new URL(broker.tlsUrl as string), ca: ca() });
      await heard.when(/^open$/);
      ch.write(connectPacket(`raw-pool-${i}`)); // in flight: its request goes back to the pool when it completes
      await heard.when(/^bytes/);
      wraps.push(new WeakRef((ch as unknown as { ssl: object }).ssl));
      ch.destroy();
    }
    await new Promise((r) => setTimeout(r, 100)); // the handles' close callbacks
    for (let k = 0; k < 3; k++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(wraps.filter((w) => w.deref()).length, 0, 'every TLSWrap collected');
  });

  for (const [name, version, pings] of [
    ['TLS 1.3: one PINGREQ after CONNACK, full and resumed handshakes', undefined, 1],
    ['TLS 1.2 (its ticket comes inside the handshake): none', '1.2', 0],
  ] as const)
    test(`an idle device and the write buffer OpenSSL set up for the tickets — ${name}`, async () => {
      forgetTlsSessions();
      const transport = { url: new URL(broker.tlsUrl as string), ca: ca(), tlsVersion: version };
      for (const wave of ['full', 'resumed']) {
        let done: (ok: boolean) => void = () => {};
        const up = new Promise<boolean>((r) => {
          done = r;
        });
        const handler: ConnectionHandler = {
          connected: () => done(true),
          connectFailed: () => done(false),
          closed: () => {},
          acked: () => {},
        };
        const conn = new Connection(0, handler);
        const connect = { clientId: `raw-idle-${wave}`, version: 4 as const, keepaliveSec: 30, clean: true };
        conn.open({ transport, version: 4, connect }, Date.now());
        assert.equal(await up, true, wave);
        const ch = (conn as unknown as { t: RawTlsChannel }).t;
        assert.equal(ch.resumed, wave === 'resumed');
        // CONNECT, then a PINGREQ (2 bytes) when nothing was written since the tickets
        assert.equal(conn.bytesSent, encodeConnect(connect).length + 2 * pings, wave);
        assert.equal(ch.holdsWriteBuffer(), false, 'the write buffer is let go');
        await new Promise((r) => setTimeout(r, 100)); // the PINGRESP: taken as any other
        assert.equal(conn.state, State.Connected);
        conn.disconnect(4);
      }
    });

  test('a device that writes after CONNACK makes no PINGREQ (its write frees the buffer)', async () => {
    forgetTlsSessions();
    let conn: Connection | undefined;
    let done: (ok: boolean) => void = () => {};
    const up = new Promise<boolean>((r) => {
      done = r;
    });
    const handler: ConnectionHandler = {
      connected: () => {
        conn?.subscribe('fleetload/idle', 0, 4); // as the engine writes what waited for the connection
        done(true);
      },
      connectFailed: () => done(false),
      closed: () => {},
      acked: () => {},
    };
    conn = new Connection(0, handler);
    const connect = { clientId: 'raw-busy', version: 4 as const, keepaliveSec: 30, clean: true };
    conn.open(
      { transport: { url: new URL(broker.tlsUrl as string), ca: ca() }, version: 4, connect },
      Date.now(),
    );
    assert.equal(await up, true);
    const subscribe = mqttPacket.generate(
      { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fleetload/idle', qos: 0 }] },
      { protocolVersion: 4 },
    );
    assert.equal(conn.bytesSent, encodeConnect(connect).length + subscribe.length);
    conn.disconnect(4);
  });

  test('destroyed with a write in flight: nothing reaches the sink after destroy, the process goes on', async () => {
    const { ch, heard } = channel({ url: new URL(broker.tlsUrl as string), ca: ca() });
    await heard.when(/^open$/);
    ch.write(connectPacket('raw-destroy'));
    ch.write(Buffer.alloc(4 << 20, 0x30)); // 4 MB: still in flight when destroyed
    ch.write(Buffer.alloc(10, 0x30)); // waits behind it
    const seen = heard.events.length;
    ch.destroy();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(heard.events.slice(seen), []);
  });
});
