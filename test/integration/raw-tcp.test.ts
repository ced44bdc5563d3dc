import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { JsonPacketWriter } from '../../src/engine/json-packet.js';
import { encodeTopic } from '../../src/mqtt/packets.js';
import { RawTcpChannel, rawTcpAvailable } from '../../src/mqtt/raw-tcp.js';
import type { ChannelSink } from '../../src/mqtt/transport.js';

/**
 * The raw libuv-handle channel (src/mqtt/raw-tcp.ts) against real loopback sockets: what net.Socket would do —
 * bytes in order, EOF, refusals and bind failures named by errno, writes that queue behind a full send buffer,
 * a half-close — since the engine's plain-TCP devices run on it.
 */

class Recorder implements ChannelSink {
  opened = 0;
  closes = 0;
  errors: string[] = [];
  chunks: Buffer[] = [];
  private waiters: Array<() => void> = [];
  onOpen(): void {
    this.opened++;
    this.wake();
  }
  onBytes(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk));
    this.wake();
  }
  onError(code: string, message: string): void {
    this.errors.push(`${code}|${message}`);
  }
  onClose(): void {
    this.closes++;
    this.wake();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
  until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        if (cond()) {
          clearTimeout(t);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

let server: net.Server;
let port: number;
const accepted: net.Socket[] = [];
let nextAccept: ((s: net.Socket) => void) | undefined;

before(async () => {
  server = net.createServer((s) => {
    accepted.push(s);
    nextAccept?.(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of accepted) s.destroy();
  await new Promise((r) => server.close(r));
});

function accept(): Promise<net.Socket> {
  return new Promise((r) => {
    nextAccept = (s) => {
      nextAccept = undefined;
      r(s);
    };
  });
}

/** A raw channel to the test server, open, with the server's end of it. */
async function connected(
  host = '127.0.0.1',
  local?: string,
): Promise<{ rec: Recorder; ch: RawTcpChannel; s: net.Socket }> {
  const peer = accept();
  const rec = new Recorder();
  const ch = new RawTcpChannel(host, port, local, rec);
  await rec.until(() => rec.opened === 1, 'open');
  return { rec, ch, s: await peer };
}

test('this Node exposes the handle API, so plain-TCP devices run on raw handles', () => {
  // if a Node upgrade removes it, fleetload falls back to net.Socket — and this test says so loudly
  assert.equal(rawTcpAvailable(), true);
});

test('bytes flow both ways in order; the peer closing ends the channel with onClose and no error', async () => {
  const { rec, ch, s } = await connected();
  const got: Buffer[] = [];
  s.on('data', (b) => got.push(b));
  for (let i = 0; i < 100; i++) ch.write(Buffer.from(`m${i};`));
  s.write('hello ');
  s.write('device');
  await rec.until(() => rec.bytes.toString() === 'hello device', 'bytes from the peer');
  const sent = Array.from({ length: 100 }, (_, i) => `m${i};`).join('');
  await new Promise<void>((r) => {
    const check = () => (Buffer.concat(got).length >= sent.length ? r() : setTimeout(check, 5));
    check();
  });
  assert.equal(Buffer.concat(got).toString(), sent);
  s.end();
  await rec.until(() => rec.closes === 1, 'close');
  assert.deepEqual(rec.errors, []);
  ch.write(Buffer.from('after close')); // ignored, no throw
  assert.equal(rec.closes, 1);
});

test('a refused connection is named ECONNREFUSED with host:port, then closed — once', async () => {
  const closedServer = net.createServer();
  await new Promise<void>((r) => closedServer.listen(0, '127.0.0.1', r));
  const deadPort = (closedServer.address() as net.AddressInfo).port;
  await new Promise((r) => closedServer.close(r));
  const rec = new Recorder();
  new RawTcpChannel('127.0.0.1', deadPort, undefined, rec);
  await rec.until(() => rec.closes === 1, 'close');
  assert.equal(rec.opened, 0);
  assert.deepEqual(rec.errors, [`ECONNREFUSED|connect ECONNREFUSED 127.0.0.1:${deadPort}`]);
});

test('a source address this host does not have fails with EADDRNOTAVAIL naming it', async () => {
  const rec = new Recorder();
  new RawTcpChannel('127.0.0.1', port, '192.0.2.1', rec);
  await rec.until(() => rec.closes === 1, 'close');
  assert.deepEqual(rec.errors, ['EADDRNOTAVAIL|bind EADDRNOTAVAIL 192.0.2.1']);
});

test('a source address on loopback is used for the connection', async () => {
  const { ch, s } = await connected('127.0.0.1', '127.0.0.3');
  assert.equal(s.remoteAddress, '127.0.0.3');
  ch.destroy();
});

test('host names are resolved (once per process) before connecting', async () => {
  const { ch } = await connected('localhost');
  ch.destroy();
  const bad = new Recorder();
  new RawTcpChannel('no-such-host.invalid', port, undefined, bad);
  await bad.until(() => bad.closes === 1, 'close');
  assert.match(bad.errors[0] ?? '', /^(ENOTFOUND|EAI_AGAIN)\|getaddrinfo/);
});

test('a full send buffer: writes queue in order behind it and all arrive once the peer reads', async () => {
  const { rec, ch, s } = await connected();
  s.pause(); // the peer stops reading: kernel buffers fill, later writes must queue in libuv
  const chunk = 64 * 1024;
  const n = 320; // 20 MiB, far beyond loopback socket buffers
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(chunk, i % 251);
    b.writeUInt32BE(i, 0);
    ch.write(b);
  }
  assert.ok(ch.queuedBytes > 0, 'some writes had to queue');
  let received = 0;
  let expect = 0;
  let carry = Buffer.alloc(0);
  let outOfOrder = 0;
  await new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      carry = Buffer.concat([carry, d]);
      while (carry.length >= chunk) {
        if (carry.readUInt32BE(0) !== expect || carry[chunk - 1] !== expect % 251) outOfOrder++;
        expect++;
        carry = carry.subarray(chunk);
      }
      received += d.length;
      if (received === n * chunk) resolve();
    });
    s.resume();
  });
  assert.equal(expect, n);
  assert.equal(outOfOrder, 0);
  assert.deepEqual(rec.errors, []);
  ch.destroy();
});

test('end(): the last bytes go out before our FIN; the peer closing then ends the channel', async () => {
  const { rec, ch, s } = await connected();
  const got: Buffer[] = [];
  s.on('data', (b) => got.push(b));
  const ended = new Promise<void>((r) => s.on('end', r));
  ch.end(Buffer.from([0xe0, 0x00])); // DISCONNECT
  await ended;
  assert.deepEqual([...Buffer.concat(got)], [0xe0, 0x00]);
  assert.equal(rec.closes, 0, 'half-closed: still open until the peer closes');
  s.end();
  await rec.until(() => rec.closes === 1, 'close');
  assert.deepEqual(rec.errors, []);
});

test('destroy(): nothing more reaches the sink, and the peer sees the connection close', async () => {
  const { rec, ch, s } = await connected();
  const peerClosed = new Promise<void>((r) => s.on('close', () => r()));
  s.resume();
  ch.destroy();
  s.write('late bytes');
  await peerClosed;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(rec.chunks.length, 0);
  assert.equal(rec.closes, 0);
});

test('a peer reset is reported by errno (ECONNRESET), then closed', async () => {
  const { rec, s } = await connected();
  s.resetAndDestroy();
  await rec.until(() => rec.closes === 1, 'close');
  assert.match(rec.errors[0] ?? '', /^ECONNRESET\|read ECONNRESET/);
});

test('the raw channel leaves no deprecation warning on stderr', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "import('./src/mqtt/raw-tcp.ts').then(m => { if (!m.rawTcpAvailable()) process.exit(3) })",
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Deprecation|DEP0111/);
});

test('IPv6 loopback: connects to [::1] (and binds a v6 source address)', async (t) => {
  const v6 = net.createServer();
  const ok = await new Promise<boolean>((r) => {
    v6.once('error', () => r(false));
    v6.listen(0, '::1', () => r(true));
  });
  if (!ok) {
    t.skip('no IPv6 loopback on this machine');
    return;
  }
  const v6port = (v6.address() as net.AddressInfo).port;
  const peer = new Promise<net.Socket>((r) => v6.once('connection', r));
  const rec = new Recorder();
  const ch = new RawTcpChannel('::1', v6port, '::1', rec);
  await rec.until(() => rec.opened === 1, 'open');
  const s = await peer;
  assert.equal(s.remoteAddress, '::1');
  ch.write(Buffer.from('v6'));
  const got = await new Promise<Buffer>((r) => s.once('data', r));
  assert.equal(got.toString(), 'v6');
  ch.destroy();
  s.destroy();
  await new Promise((r) => v6.close(r));
});

test('a backlog behind a slow peer costs about its own size: queued packets are copied, arenas are not pinned', async () => {
  const { rec, ch, s } = await connected();
  s.pause();
  const w = new JsonPacketWriter('run', 200, 4);
  const topic = encodeTopic('fleetload/run/dev-000001');
  const prefix = w.devicePrefix('"dev-000001"');
  const n = 20_000;
  let queuedWrites = 0;
  for (let seq = 1; seq <= n; seq++) {
    const p = w.write(topic, 0, 0, prefix, 1, seq, 1764288000000 + seq, 1764288000000 + seq);
    if (ch.queuedBytes > 0) queuedWrites++;
    if (ch.writeTransient(p)) w.retire(); // what the engine does
  }
  assert.ok(queuedWrites > 100, `the peer's window filled (${queuedWrites} writes queued)`);
  assert.ok(w.arenas <= 2, `${w.arenas} scratch arenas for ${queuedWrites} queued packets`);
  // every packet arrives, in order
  const seqs: number[] = [];
  let carry = '';
  await new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      carry += d.toString('latin1');
      const end = carry.lastIndexOf('}') + 1; // whole packets only: the rest waits for more bytes
      for (const m of carry.slice(0, end).matchAll(/"seq":(\d+),/g)) seqs.push(Number(m[1]));
      carry = carry.slice(end);
      if (seqs.length >= n) resolve();
    });
    s.resume();
  });
  assert.equal(seqs.length, n);
  assert.ok(
    seqs.every((v, i) => v === i + 1),
    'in order, none lost',
  );
  assert.deepEqual(rec.errors, []);
  ch.destroy();
});

test('a name with several addresses: one that refuses is skipped for the next, like net.connect', async () => {
  const peer = accept();
  const rec = new Recorder();
  const resolver = async () => [
    { address: '::1', family: 6 }, // nothing listens there on this port
    { address: '127.0.0.1', family: 4 },
  ];
  const ch = new RawTcpChannel('broker.test', port, undefined, rec, resolver);
  await rec.until(() => rec.opened === 1, 'open');
  await peer;
  assert.deepEqual(rec.errors, []);
  ch.destroy();
});

test('a source address keeps to its family; no address of it is a clear error', async () => {
  const rec = new Recorder();
  new RawTcpChannel('v6only.test', port, '127.0.0.2', rec, async () => [{ address: '::1', family: 6 }]);
  await rec.until(() => rec.closes === 1, 'close');
  assert.deepEqual(rec.errors, ['EADDRNOTAVAIL|v6only.test has no IPv4 address for source 127.0.0.2']);
});

test('a failed lookup or connection is not cached: the next attempt resolves again', async () => {
  let calls = 0;
  const resolver = async () => {
    calls++;
    if (calls === 1) throw Object.assign(new Error('temporary'), { code: 'EAI_AGAIN' });
    return [{ address: '127.0.0.1', family: 4 }];
  };
  const first = new Recorder();
  new RawTcpChannel('flaky.test', port, undefined, first, resolver);
  await first.until(() => first.closes === 1, 'close');
  assert.match(first.errors[0] ?? '', /^EAI_AGAIN\|getaddrinfo EAI_AGAIN flaky\.test/);
  const peer = accept();
  const second = new Recorder();
  const ch = new RawTcpChannel('flaky.test', port, undefined, second, resolver);
  await second.until(() => second.opened === 1, 'open');
  await peer;
  assert.equal(calls, 2);
  ch.destroy();
});

test('end() twice: the peer closing still ends the channel, once', async () => {
  const { rec, ch, s } = await connected();
  s.resume();
  ch.end(Buffer.from([0xe0, 0x00]));
  ch.end(Buffer.from([0xe0, 0x00]));
  s.end();
  await rec.until(() => rec.closes === 1, 'close');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(rec.closes, 1);
});
