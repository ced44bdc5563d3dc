import dns from 'node:dns';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { Channel, ChannelSink } from './transport.js';

/**
 * Plain-TCP device connections straight on libuv's TCP handle — the layer `net.Socket` is built on, without the
 * stream machinery on top. This is the engine's hot path: per message it saves the Writable bookkeeping
 * (~1 µs CPU here), and per idle device the Socket object and its stream state (~6.8 KB → ~2.6 KB RSS).
 *
 * The handle API (`tcp_wrap`, `stream_wrap`) is Node's internal binding, reached through `process.binding`. It
 * has kept this shape since Node 12, but it is not a public contract: `rawTcpAvailable()` checks every piece at
 * start-up and the transport falls back to `net.Socket` when anything is missing (or when
 * the scenario says `sockets: node`). The semantics follow lib/net.js and lib/internal/stream_base_commons.js:
 * - a write that the kernel takes at once (`uv_try_write`) completes synchronously and leaves the request object
 *   untouched, so one request object serves every such write; only a write that has to queue (send buffer full)
 *   takes it (and its buffer) until `oncomplete`;
 * - reads arrive in `onread(arrayBuffer)` with the byte count (or a negative uv error, UV_EOF at end) and the
 *   offset in the shared `streamBaseState` array.
 * Errors are reported on the next tick, as net.Socket does: a failed write never re-enters its caller.
 */

export interface ReqLike {
  oncomplete: ((status: number) => void) | undefined;
  handle?: TcpHandle;
  buffer?: Buffer | undefined;
  address?: string;
  port?: number;
}

/** What a raw channel reads from: libuv's TCP handle, or a TLSWrap on it (src/mqtt/raw-tls.ts). */
export interface ReadHandle {
  owner: RawTcpChannel | undefined;
  onread: (this: ReadHandle, ab: ArrayBuffer | undefined) => void;
}

export interface TcpHandle extends ReadHandle {
  connect(req: ReqLike, address: string, port: number): number;
  connect6(req: ReqLike, address: string, port: number): number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  readStart(): number;
  useUserBuffer?(buf: Uint8Array): void;
  writeBuffer(req: ReqLike, buf: Buffer): number;
  shutdown(req: ReqLike): number;
  setNoDelay(on: boolean): number;
  close(cb?: () => void): void;
  readonly writeQueueSize: number;
}

interface Bindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ReqLike;
  socketType: number;
  WriteWrap: new () => ReqLike;
  ShutdownWrap: new () => ReqLike;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
  UV_EOF: number;
}

let bindings: Bindings | null | undefined;

function load(): Bindings | null {
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding('tcp_wrap') as {
      TCP?: Bindings['TCP'];
      TCPConnectWrap?: Bindings['TCPConnectWrap'];
      constants?: { SOCKET?: number };
    };
    const stream = binding('stream_wrap') as Partial<{
      WriteWrap: Bindings['WriteWrap'];
      ShutdownWrap: Bindings['ShutdownWrap'];
      streamBaseState: Int32Array;
      kReadBytesOrError: number;
      kArrayBufferOffset: number;
      kLastWriteWasAsync: number;
    }>;
    const uv = binding('uv') as { UV_EOF?: number };
    if (
      typeof tcp.TCP !== 'function' ||
      typeof tcp.TCPConnectWrap !== 'function' ||
      typeof tcp.constants?.SOCKET !== 'number' ||
      typeof stream.WriteWrap !== 'function' ||
      typeof stream.ShutdownWrap !== 'function' ||
      !(stream.streamBaseState instanceof Int32Array) ||
      typeof stream.kReadBytesOrError !== 'number' ||
      typeof stream.kArrayBufferOffset !== 'number' ||
      typeof stream.kLastWriteWasAsync !== 'number' ||
      typeof uv.UV_EOF !== 'number'
    )
      return null;
    const proto = tcp.TCP.prototype as Partial<TcpHandle>;
    for (const m of ['connect', 'connect6', 'bind', 'bind6', 'readStart', 'writeBuffer', 'shutdown', 'close'])
      if (typeof (proto as Record<string, unknown>)[m] !== 'function') return null;
    return {
      TCP: tcp.TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      socketType: tcp.constants.SOCKET,
      WriteWrap: stream.WriteWrap,
      ShutdownWrap: stream.ShutdownWrap,
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kArrayBufferOffset: stream.kArrayBufferOffset,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
      UV_EOF: uv.UV_EOF,
    };
  } catch {
    return null;
  }
}

/** True when this Node exposes the handle API the raw channel needs. */
export function rawTcpAvailable(): boolean {
  if (bindings === undefined) bindings = load();
  return bindings !== null;
}

export function b(): Bindings {
  if (!rawTcpAvailable())
    throw new Error('raw TCP handles are not available on this Node (use sockets: node)');
  return bindings as Bindings;
}

/**
 * One read buffer for every connection (`useUserBuffer`): reads are handled one at a time, synchronously, so they
 * can share it — no 64 KB allocation per read as Node's default allocator makes. Chunks handed to the sink are
 * only valid during `onBytes`.
 */
export const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/** The request object for writes the kernel takes at once; replaced when a write has to queue and keeps it. */
let spareWrite: ReqLike | undefined;

export interface ResolvedAddress {
  address: string;
  family: number;
}
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

/**
 * Host names are resolved once and shared by every device (net.connect would look one up per device). All
 * addresses are kept and tried in order, as net.connect does; a failed lookup or connection forgets the answer,
 * so reconnects resolve again (a broker that moved is followed).
 */
const resolved = new Map<string, Promise<ResolvedAddress[]>>();

const systemResolver: Resolver = (host) => dns.promises.lookup(host, { all: true });

function lookup(host: string, resolver: Resolver): Promise<ResolvedAddress[]> {
  let p = resolved.get(host);
  if (!p) {
    p = resolver(host);
    resolved.set(host, p);
    p.catch(() => resolved.delete(host));
  }
  return p;
}

function forget(host: string): void {
  resolved.delete(host);
}

export function errorName(code: number): string {
  try {
    return getSystemErrorName(code);
  } catch {
    return `E${-code}`;
  }
}

export function onRead(this: ReadHandle, ab: ArrayBuffer | undefined): void {
  const ch = this.owner;
  if (!ch) return;
  const bs = b();
  const n = bs.state[bs.kReadBytesOrError] as number;
  if (n > 0) {
    ch.sink?.onBytes(
      ab === undefined
        ? readBuffer.subarray(0, n) // our shared buffer (useUserBuffer)
        : Buffer.from(ab, bs.state[bs.kArrayBufferOffset] as number, n),
    );
    return;
  }
  if (n === 0) return;
  if (n === bs.UV_EOF) ch.ended();
  else ch.closed(errorName(n), `read ${errorName(n)}`);
}

function onWriteDone(this: ReqLike, status: number): void {
  this.buffer = undefined;
  const ch = this.handle?.owner;
  if (!ch) return;
  ch.queuedWrites--;
  if (status < 0) ch.closed(errorName(status), `write ${errorName(status)}`);
}

function noop(): void {}

export class RawTcpChannel implements Channel {
  sink: ChannelSink | undefined;
  /** writes waiting in libuv's queue (the kernel's send buffer was full) */
  queuedWrites = 0;
  protected h: TcpHandle | undefined;
  /** addresses still to try when the current one refuses (a host name with several) */
  private rest: ResolvedAddress[] | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly localAddress: string | undefined,
    sink: ChannelSink,
    resolver: Resolver = systemResolver,
  ) {
    this.sink = sink;
    const family = net.isIP(host);
    if (family) {
      this.connect(host, family);
      return;
    }
    lookup(host, resolver).then(
      (all) => {
        if (!this.sink) return;
        // a source address fixes the family: only addresses of that family can be reached from it
        const fam = localAddress ? net.isIP(localAddress) : 0;
        const usable = fam ? all.filter((a) => a.family === fam) : all;
        const [first, ...rest] = usable;
        if (!first) {
          this.closed('EADDRNOTAVAIL', `${host} has no IPv${fam} address for source ${localAddress}`);
          return;
        }
        if (rest.length > 0) this.rest = rest;
        this.connect(first.address, first.family);
      },
      (e: NodeJS.ErrnoException) => this.closed(e.code ?? 'ENOTFOUND', `getaddrinfo ${e.code} ${host}`),
    );
  }

  private connect(address: string, family: number): void {
    const { port, localAddress } = this;
    const bs = b();
    const h = new bs.TCP(bs.socketType);
    h.owner = this;
    h.onread = onRead;
    this.h = h;
    if (localAddress) {
      const err = family === 6 ? h.bind6(localAddress, 0, 0) : h.bind(localAddress, 0);
      if (err) {
        this.failSoon(errorName(err), `bind ${errorName(err)} ${localAddress}`);
        return;
      }
    }
    const req = new bs.TCPConnectWrap();
    req.address = address;
    req.port = port;
    req.oncomplete = (status: number) => {
      if (this.h !== h) return; // destroyed meanwhile
      if (status < 0) {
        const next = this.rest?.shift();
        if (next && this.sink) {
          // this address refused or is unreachable: the next one of the name, like net.connect
          this.h = undefined;
          h.owner = undefined;
          h.close();
          this.connect(next.address, next.family);
          return;
        }
        if (!net.isIP(this.host)) forget(this.host);
        this.closed(errorName(status), `connect ${errorName(status)} ${this.where}`);
        return;
      }
      this.opened(h);
    };
    const err = family === 6 ? h.connect6(req, address, port) : h.connect(req, address, port);
    if (err) this.failSoon(errorName(err), `connect ${errorName(err)} ${this.where}`);
  }

  /** host:port, for messages (made when one is needed: an idle device keeps no string for it) */
  protected get where(): string {
    return `${this.host}:${this.port}`;
  }

  /** TCP is connected: read, and tell the sink bytes can flow (a TLS channel starts its handshake instead). */
  protected opened(h: TcpHandle): void {
    h.setNoDelay(true);
    h.useUserBuffer?.(readBuffer);
    const err = h.readStart();
    if (err) {
      this.closed(errorName(err), `read ${errorName(err)}`);
      return;
    }
    this.sink?.onOpen();
  }

  write(buf: Buffer): void {
    if (this.h) this.writeOwned(this.h, buf); // ours to keep: no copy even behind queued writes
  }

  /** Returns true when the write queued and libuv keeps `buf` until it completes. */
  writeTransient(buf: Buffer): boolean {
    const h = this.h;
    if (!h) return false;
    // bytes already wait in libuv's queue, so this write will queue too: give it its own copy (exactly its size)
    // instead of pinning the caller's scratch buffer
    if (this.queuedWrites > 0) {
      this.writeOwned(h, Buffer.from(buf));
      return false;
    }
    return this.writeOwned(h, buf);
  }

  private writeOwned(h: TcpHandle, buf: Buffer): boolean {
    const bs = b();
    const req = spareWrite ?? new bs.WriteWrap();
    spareWrite = undefined;
    req.handle = h;
    req.oncomplete = onWriteDone;
    const err = h.writeBuffer(req, buf);
    if (err) {
      spareWrite = req;
      this.failSoon(errorName(err), `write ${errorName(err)}`);
      return false;
    }
    if (bs.state[bs.kLastWriteWasAsync]) {
      req.buffer = buf; // queued: libuv holds the request and the bytes
      this.queuedWrites++;
      return true;
    }
    spareWrite = req;
    return false;
  }

  /** bytes written but still queued in libuv (the kernel's send buffer was full) */
  get queuedBytes(): number {
    return this.h?.writeQueueSize ?? 0;
  }

  end(last: Buffer): void {
    const h = this.h;
    if (!h) return;
    this.write(last);
    if (this.h !== h) return;
    const req = new (b().ShutdownWrap)();
    req.handle = h;
    req.oncomplete = noop; // the broker answers our FIN by closing: onread sees EOF
    const err = h.shutdown(req);
    if (err) this.failSoon(errorName(err), `shutdown ${errorName(err)}`);
  }

  /** Closes at once; no more events reach the sink. */
  destroy(): void {
    this.sink = undefined;
    const h = this.h;
    this.h = undefined;
    if (h) {
      h.owner = undefined; // onread (a native accessor that takes only functions) now finds no owner
      h.close();
    }
  }

  /** The peer closed its side (EOF). */
  ended(): void {
    this.closed(undefined, '');
  }

  /** The connection ended (EOF: `code` undefined) or failed: tell the sink once and let go of the handle. */
  closed(code: string | undefined, message: string): void {
    const sink = this.sink;
    this.destroy();
    if (!sink) return;
    if (code !== undefined) sink.onError(code, message);
    sink.onClose();
  }

  protected failSoon(code: string, message: string): void {
    process.nextTick(() => this.closed(code, message));
  }
}
