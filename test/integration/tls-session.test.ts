import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { makeCerts } from '../../src/cli/certs.js';
import { RawTlsChannel } from '../../src/mqtt/raw-tls.js';
import { leanSession } from '../../src/mqtt/tls-session.js';
import {
  forgetTlsSessions,
  keptTlsSessionBytes,
  openChannel,
  type TransportOptions,
  tlsHandshakes,
} from '../../src/mqtt/transport.js';
import { tmpDir } from '../helpers/process.js';
import { freePort } from '../helpers/services.js';

/**
 * Kept TLS 1.3 sessions leave out the server's certificate (decoding it on every resumed connect was a third of
 * the client's CPU): they must still resume, on raw handles and on tls.connect, count as verified when resumed,
 * never stand in for verification when a server does not resume them, and TLS 1.2 sessions (which Node reports as
 * unverified without the certificate) and anything that is not a session stay exactly as they were.
 * Servers here are Node's own TLS servers (OpenSSL), in this process: no external service.
 */

let dir: string;
let ca: Buffer;
let serverCertDer: Buffer;
const servers: tls.Server[] = [];

/** A TLS server on a free loopback port with the given certificate set; it reads and discards what it gets. */
async function server(certDir: string, o: tls.TlsOptions = {}): Promise<number> {
  const s = tls.createServer(
    { cert: readFileSync(join(certDir, 'server.pem')), key: readFileSync(join(certDir, 'server.key')), ...o },
    (socket) => {
      socket.on('error', () => {});
      socket.resume();
    },
  );
  const port = await freePort();
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  servers.push(s);
  return port;
}

interface Connected {
  reused: boolean;
  error: string | undefined;
  sessions: Buffer[];
}

/** tls.connect, held until the server's tickets arrived (TLS 1.3 sends them after the handshake). */
function connect(port: number, o: tls.ConnectionOptions = {}): Promise<Connected> {
  return new Promise((resolve) => {
    const sessions: Buffer[] = [];
    const s = tls.connect({ host: '127.0.0.1', port, ca, ...o });
    s.on('session', (b: Buffer) => sessions.push(b));
    s.on('secureConnect', () =>
      setTimeout(() => {
        resolve({ reused: s.isSessionReused(), error: undefined, sessions });
        s.destroy();
      }, 100),
    );
    s.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ reused: false, error: e.code ?? e.message, sessions }),
    );
  });
}

before(async () => {
  dir = tmpDir('fleetload-tls-session-');
  await makeCerts({ devices: 0, out: join(dir, 'a'), serverNames: ['127.0.0.1'], readableServerKey: true });
  await makeCerts({ devices: 0, out: join(dir, 'b'), serverNames: ['127.0.0.1'], readableServerKey: true });
  ca = readFileSync(join(dir, 'a', 'ca.pem'));
  serverCertDer = new X509Certificate(readFileSync(join(dir, 'a', 'server.pem'))).raw;
});
after(() => {
  for (const s of servers) s.close();
});

describe('kept TLS sessions', () => {
  test('a TLS 1.3 session is kept without the server certificate, and resumes verified on tls.connect', async () => {
    const port = await server(join(dir, 'a'));
    const first = await connect(port);
    assert.equal(first.error, undefined);
    const session = first.sessions.at(-1);
    assert.ok(session, 'the server gave a session');
    assert.ok(session.includes(serverCertDer), 'as OpenSSL serialises it, the session holds the certificate');
    const lean = leanSession(session);
    assert.ok(!lean.includes(serverCertDer), 'the kept one does not');
    assert.ok(lean.length <= session.length - serverCertDer.length);
    assert.deepEqual(leanSession(lean), lean, 'lean already: unchanged');
    const again = await connect(port, { session: lean });
    assert.deepEqual([again.error, again.reused], [undefined, true]);
    assert.deepEqual(await connect(port, { session: lean }).then((c) => [c.error, c.reused]), [
      undefined,
      true,
    ]);
  });

  test('a lean session is no pass: a server that does not resume it is verified in full (and refused here)', async () => {
    const port = await server(join(dir, 'a'));
    const other = await server(join(dir, 'b')); // another CA: not trusted by this client
    const lean = leanSession((await connect(port)).sessions.at(-1) as Buffer);
    const refused = await connect(other, { session: lean });
    assert.equal(refused.reused, false);
    assert.match(
      refused.error ?? 'accepted',
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/,
    );
  });

  test('TLS 1.2 sessions, and bytes that are not a session, are kept as they are', async () => {
    const port = await server(join(dir, 'a'), { maxVersion: 'TLSv1.2' });
    const session = (await connect(port)).sessions.at(-1) as Buffer;
    assert.ok(session.includes(serverCertDer));
    assert.equal(leanSession(session), session, 'TLS 1.2: the same buffer');
    const lean12 = leanSession(session, { tls12: true });
    assert.ok(!lean12.includes(serverCertDer), 'for the raw channel: without the certificate');
    assert.ok(lean12.length <= session.length - serverCertDer.length);
    const tls13 = (await connect(await server(join(dir, 'a')))).sessions.at(-1) as Buffer;
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from('not a session'),
      tls13.subarray(0, tls13.length - 1), // truncated
      Buffer.concat([tls13, Buffer.from([0])]), // trailing byte
      Buffer.from([0x31, ...tls13.subarray(1)]), // a SET, not a SEQUENCE
    ])
      assert.equal(leanSession(bytes), bytes);
  });

  /** One connect through fleetload's transport: whether it resumed, or the error code it was refused with. */
  function open(o: TransportOptions): Promise<{ resumed: boolean | undefined; error?: string }> {
    return new Promise((resolve) => {
      let resumed: boolean | undefined;
      const ch = openChannel(o, {
        onOpen: (r) => {
          resumed = r;
          setTimeout(() => {
            ch.destroy();
            resolve({ resumed });
          }, 100); // TLS 1.3 tickets come after the handshake
        },
        onBytes: () => {},
        onError: (code) => resolve({ resumed, error: code }),
        onClose: () => {},
      });
      assert.equal(ch instanceof RawTlsChannel, o.sockets !== 'node');
    });
  }

  for (const sockets of ['raw', 'node'] as const)
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      // tls.connect reports a resumed TLS 1.2 session without the certificate as unverified: it keeps them whole
      const lean = version === 'TLSv1.3' || sockets === 'raw';
      test(`fleetload's devices keep ${lean ? 'lean' : 'whole'} ${version} sessions and resume them (${sockets} sockets)`, async () => {
        forgetTlsSessions();
        const port = await server(join(dir, 'a'), { maxVersion: version });
        const o: TransportOptions = { url: new URL(`mqtts://127.0.0.1:${port}`), ca, sockets };
        const before = { ...tlsHandshakes };
        assert.deepEqual(await open(o), { resumed: false });
        const kept = keptTlsSessionBytes();
        assert.equal(kept.length, 1);
        assert.equal((kept[0] as Buffer).includes(serverCertDer), !lean);
        assert.deepEqual(await open(o), { resumed: true });
        assert.deepEqual(await open(o), { resumed: true });
        assert.deepEqual([tlsHandshakes.full - before.full, tlsHandshakes.resumed - before.resumed], [1, 2]);
      });
    }

  test('raw TLS 1.2: a lean session the server cannot resume is no pass (full verification, refused)', async () => {
    forgetTlsSessions();
    const port = await server(join(dir, 'a'), { maxVersion: 'TLSv1.2' });
    const o: TransportOptions = { url: new URL(`mqtts://127.0.0.1:${port}`), ca };
    assert.deepEqual(await open(o), { resumed: false });
    assert.equal(keptTlsSessionBytes().length, 1);
    // the same address now answered by another server: other ticket keys, a certificate from a CA not trusted here
    const a = servers.pop() as tls.Server;
    await new Promise((r) => a.close(r));
    const b = tls.createServer(
      {
        cert: readFileSync(join(dir, 'b', 'server.pem')),
        key: readFileSync(join(dir, 'b', 'server.key')),
        maxVersion: 'TLSv1.2',
      },
      (socket) => {
        socket.on('error', () => {});
        socket.resume();
      },
    );
    await new Promise<void>((r) => b.listen(port, '127.0.0.1', r));
    servers.push(b);
    const refused = await open(o);
    assert.notEqual(refused.resumed, true);
    assert.match(
      refused.error ?? 'accepted',
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/,
    );
  });
});
