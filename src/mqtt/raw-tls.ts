import tls from 'node:tls';
import {
  b,
  errorName,
  onRead,
  RawTcpChannel,
  type ReadHandle,
  type ReqLike,
  type Resolver,
  rawTcpAvailable,
  readBuffer,
  type TcpHandle,
} from './raw-tcp.js';
import type { ChannelSink } from './transport.js';

/**
 * TLS device connections on libuv's TCP handle with Node's own TLS layer (`TLSWrap`, the C++ object under every
 * `tls.TLSSocket`) wrapped straight around it — without the `TLSSocket`, its `net.Socket` and stream state, its
 * event emitters and the detailed certificate objects Node builds on every connect. OpenSSL does the same work
 * either way; what this saves is Node's JavaScript per connect (about 40% of a handshake's client CPU), per
 * message (the Writable's bookkeeping) and per idle device (the socket objects).
 *
 * The checks `tls.connect` makes are made here too, the same way (lib/_tls_wrap.js, `onConnectSecure`): the
 * chain is verified by OpenSSL against the context's CAs (`verifyError()`), the host name against the leaf
 * certificate with `tls.checkServerIdentity` unless the session was resumed (a resumed session was verified when
 * it was made), and a session the server gives before that verification is held back until it passed — so a
 * session is only ever kept from a verified server. `--insecure` skips both checks, as `rejectUnauthorized:
 * false` does.
 *
 * Records: OpenSSL sizes a connection's write buffer by its largest record (`max_send_fragment`, 16 KB by default)
 * and keeps it for the connection's life. Devices start at 512-byte records, OpenSSL's least, and a connection
 * that writes a bigger packet grows its records to fit it (to the next power of two, at most 16 KB): a fleet of
 * small messages holds about 8 KB less per idle TLS 1.3 device (bench/RESULTS.md §6c), a fleet of big ones still
 * writes each packet as one record after the first.
 *
 * Writes: a TLSWrap takes one write at a time (it encrypts at once and keeps no reference to the caller's bytes,
 * but holds the request until the encrypted bytes are handed to the kernel). Writes made meanwhile wait here and
 * go together in one `writev` — one TLS record for them all — when it completes.
 *
 * Like src/mqtt/raw-tcp.ts this uses Node's internal bindings (`tls_wrap`), checked at start-up: when anything
 * is missing, TLS devices use `tls.connect` (as they do with `sockets: node`).
 */

interface TlsWrap extends ReadHandle {
  onhandshakestart: () => void;
  onhandshakedone: (this: TlsWrap) => void;
  onocspresponse: () => void;
  onkeylog: () => void;
  onerror: (this: TlsWrap, err: NodeJS.ErrnoException) => void;
  onnewsession: (this: TlsWrap, id: Buffer, session: Buffer) => void;
  setVerifyMode(requestCert: boolean, rejectUnauthorized: boolean): void;
  setServername(name: string): void;
  setSession(session: Buffer): void;
  enableSessionCallbacks(): void;
  useUserBuffer(buf: Uint8Array): void;
  readStart(): number;
  start(): void;
  verifyError(): (Error & { code?: string }) | null;
  isSessionReused(): boolean;
  getProtocol(): string | null;
  getPeerCertificate(detailed: boolean): tls.PeerCertificate | null;
  writeBuffer(req: ReqLike, buf: Buffer): number;
  writev(req: ReqLike, chunks: Buffer[], allBuffers: boolean): number;
  shutdown(req: ReqLike): number;
  destroySSL(): void;
  setMaxSendFragment(size: number): number;
  getEphemeralKeyInfo(): { type?: string; size?: number } | null;
}

/** Makes a client TLSWrap around a TCP handle with a SecureContext's native context. */
type Wrap = (handle: TcpHandle, context: unknown) => TlsWrap;

let wrap: Wrap | null | undefined;

/** tls.connect's default `minDHSize`: a DHE key exchange with a smaller group is refused */
const MIN_DH_SIZE = 1024;

/**
 * How many arguments this Node's `tls_wrap.wrap` takes: (handle, context, isServer) in older releases, plus
 * `hasActiveWriteFromPrevOwner` in newer ones — and it aborts the process on a wrong count. Read from the call
 * Node's own lib/_tls_wrap.js makes; unknown (undefined) means no raw TLS.
 */
export function wrapArity(binding: (name: string) => Record<string, unknown>): 3 | 4 | undefined {
  const source = binding('natives')._tls_wrap;
  if (typeof source !== 'string') return undefined;
  const call = /tls_wrap\.wrap\(([^()]*(?:\([^()]*\)[^()]*)*)\)/.exec(source)?.[1];
  if (call === undefined) return undefined;
  const n = call.split(',').length;
  return n === 3 || n === 4 ? n : undefined;
}

function load(): Wrap | null {
  try {
    if (!rawTcpAvailable()) return null;
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const t = binding('tls_wrap') as {
      wrap?: (...args: unknown[]) => TlsWrap;
      TLSWrap?: { prototype: Record<string, unknown> };
    };
    if (typeof t.wrap !== 'function' || !t.TLSWrap) return null;
    const arity = wrapArity(binding);
    if (arity === undefined) return null;
    const proto = t.TLSWrap.prototype;
    for (const m of [
      'setVerifyMode',
      'setServername',
      'setSession',
      'enableSessionCallbacks',
      'useUserBuffer',
      'readStart',
      'start',
      'verifyError',
      'isSessionReused',
      'getProtocol',
      'getPeerCertificate',
      'writeBuffer',
      'writev',
      'shutdown',
      'destroySSL',
      'setMaxSendFragment',
      'getEphemeralKeyInfo',
    ])
      if (typeof proto[m] !== 'function') return null;
    const ctx = tls.createSecureContext() as unknown as { context?: unknown };
    if (typeof ctx.context !== 'object' || ctx.context === null) return null;
    const native = t.wrap;
    return arity === 4
      ? (handle, context) => native(handle, context, false, false)
      : (handle, context) => native(handle, context, false);
  } catch {
    return null;
  }
}

/** True when this Node lets TLS run on raw handles (Node's TLSWrap around libuv's TCP handle). */
export function rawTlsAvailable(): boolean {
  if (wrap === undefined) wrap = load();
  return wrap !== null;
}

/**
 * What a TLS connect needs beyond the address and the session to offer: everything else `tls.connect` would be
 * given. One is shared by every connect to the same server with the same context and checks.
 */
export interface TlsSetup {
  secureContext: tls.SecureContext;
  /** SNI sent, when set (a host name, never an IP) */
  servername: string | undefined;
  /** the name the certificate must carry: servername, else the host */
  checkName: string;
  /** false: --insecure (no chain or name check) */
  verify: boolean;
  /** every session the server gives once it is verified; absent: none asked for */
  onSession: ((session: Buffer) => void) | undefined;
  /** the handshake passed (resumed or full), before the sink hears `onOpen` */
  onSecure: (resumed: boolean) => void;
}

/** OpenSSL's least and largest record sizes (`SSL_set_max_send_fragment`). */
export const MIN_RECORD = 512;
export const MAX_RECORD = 16384;

/** The record size a packet of `n` bytes needs: the next power of two from MIN_RECORD, at most MAX_RECORD. */
export function recordSizeFor(n: number): number {
  let size = MIN_RECORD;
  while (size < n && size < MAX_RECORD) size *= 2;
  return size;
}

/** Write requests free for reuse (a TLS write holds its request until the bytes reach the kernel). */
const spare: TlsWriteReq[] = [];

interface TlsWriteReq extends ReqLike {
  ch?: RawTlsChannel | undefined;
}

function noop(): void {}

function onHandshakeDone(this: TlsWrap): void {
  (this.owner as RawTlsChannel | undefined)?.secured(this);
}

function onTlsError(this: TlsWrap, err: NodeJS.ErrnoException): void {
  this.owner?.closed(err.code ?? 'ERR_TLS', err.message);
}

function onNewSession(this: TlsWrap, _id: Buffer, session: Buffer): void {
  (this.owner as RawTlsChannel | undefined)?.newSession(session);
}

function onWriteDone(this: TlsWriteReq, status: number): void {
  const ch = this.ch;
  this.ch = undefined;
  this.handle = undefined; // a pooled request must not keep a closed connection's TLSWrap alive
  ch?.written(this, status);
  // free for reuse only now: Node detaches a request from its stream after this callback, not before
  spare.push(this);
}

export class RawTlsChannel extends RawTcpChannel {
  private ssl: TlsWrap | undefined;
  /** the handshake passed its checks: bytes flow, sessions are kept */
  private secure = false;
  /** a session the server gave before the checks passed (TLS 1.2) */
  private pendingSession: Buffer | undefined;
  /** the write the TLSWrap holds */
  private inFlight: TlsWriteReq | undefined;
  /** writes waiting for it (or for the handshake); none most of the time, so no array per idle device */
  private waiting: Buffer[] | undefined;
  /** inside writeBuffer/writev (a request the TLSWrap completes at once arrives in `written` meanwhile) */
  private issuing = false;
  /** end() was called: half-close once the waiting writes are out */
  private ending = false;
  /** a kept session was offered (every one was kept from a server that passed the checks) */
  private offered = false;
  /** a session ticket was handled since the last write (see holdsWriteBuffer) */
  private ticketSinceWrite = false;
  /** the largest TLS record this connection writes (see "Records" above) */
  recordSize = MIN_RECORD;

  constructor(
    host: string,
    port: number,
    localAddress: string | undefined,
    sink: ChannelSink,
    private readonly setup: TlsSetup,
    /** a kept session to offer (resumption); let go once offered */
    private session: Buffer | undefined,
    resolver?: Resolver,
  ) {
    super(host, port, localAddress, sink, resolver);
  }

  /** TCP is connected: wrap it in TLS and start the handshake (`onOpen` waits for `secured`). */
  protected override opened(h: TcpHandle): void {
    h.setNoDelay(true);
    const { setup } = this;
    const ssl = (wrap as Wrap)(h, (setup.secureContext as unknown as { context: unknown }).context);
    ssl.owner = this;
    ssl.onread = onRead;
    ssl.onhandshakestart = noop;
    ssl.onhandshakedone = onHandshakeDone;
    ssl.onocspresponse = noop;
    ssl.onkeylog = noop;
    ssl.onerror = onTlsError;
    ssl.onnewsession = onNewSession;
    this.ssl = ssl;
    ssl.setVerifyMode(true, setup.verify);
    ssl.setMaxSendFragment(this.recordSize);
    if (setup.servername) ssl.setServername(setup.servername);
    if (this.session) {
      ssl.setSession(this.session);
      this.offered = true;
    }
    this.session = undefined;
    if (setup.onSession) ssl.enableSessionCallbacks();
    ssl.useUserBuffer(readBuffer);
    const err = ssl.readStart();
    if (err) {
      this.closed(errorName(err), `read ${errorName(err)}`);
      return;
    }
    ssl.start();
  }

  /** The handshake is done: the checks tls.connect makes, then bytes can flow. */
  secured(ssl: TlsWrap): void {
    if (this.secure || ssl !== this.ssl) return;
    const resumed = ssl.isSessionReused();
    // as tls.connect does, --insecure or not: a finite-field key exchange must use a group of at least 1024 bits
    const key = ssl.getEphemeralKeyInfo();
    if (key?.type === 'DH' && (key.size ?? 0) < MIN_DH_SIZE) {
      this.closed('ERR_TLS_DH_PARAM_SIZE', `DH parameter size ${key.size} is less than ${MIN_DH_SIZE}`);
      return;
    }
    if (this.setup.verify) {
      let failed: (Error & { code?: string }) | null | undefined = ssl.verifyError();
      // the server resumed a kept TLS 1.2 session, kept without the certificate (src/mqtt/tls-session.ts): Node says
      // UNABLE_TO_GET_ISSUER_CERT only because there is no certificate to look at. The session was kept once this
      // server (this address, name and trust) passed every check, and resuming it proves the server holds its secret.
      if (
        failed?.code === 'UNABLE_TO_GET_ISSUER_CERT' &&
        resumed &&
        this.offered &&
        !ssl.getPeerCertificate(false)
      )
        failed = null;
      if (!failed && !resumed) {
        const cert = ssl.getPeerCertificate(false);
        failed = cert
          ? tls.checkServerIdentity(this.setup.checkName, cert)
          : Object.assign(new Error('the server sent no certificate'), {
              code: 'ERR_TLS_NO_PEER_CERTIFICATE',
            });
      }
      if (failed) {
        this.closed(failed.code ?? 'ERR_TLS_CERT', failed.message);
        return;
      }
    }
    this.secure = true;
    const session = this.pendingSession;
    this.pendingSession = undefined;
    if (session) this.setup.onSession?.(session);
    this.setup.onSecure(resumed);
    this.sink?.onOpen(resumed);
    this.flush();
  }

  /** The negotiated version ('TLSv1.3', 'TLSv1.2') once the handshake passed, else null. */
  get protocol(): string | null {
    return this.secure ? (this.ssl?.getProtocol() ?? null) : null;
  }

  /**
   * A TLS 1.3 server sends its session tickets after the handshake, usually after the device's CONNECT: OpenSSL
   * sets up its write buffer to handle them and keeps it until the next write, which an idle device may not make
   * for a keepalive period. Seen by the tickets fleetload keeps (not with FLEETLOAD_TLS_RESUMPTION=off).
   */
  holdsWriteBuffer(): boolean {
    return this.secure && this.ticketSinceWrite && !this.inFlight && !this.waiting;
  }

  /** Whether the handshake resumed a kept session (false until it passed). */
  get resumed(): boolean {
    return this.secure && (this.ssl?.isSessionReused() ?? false);
  }

  newSession(session: Buffer): void {
    this.ticketSinceWrite = true;
    if (this.secure) this.setup.onSession?.(session);
    else this.pendingSession = session;
  }

  override ended(): void {
    if (this.secure) this.closed(undefined, '');
    // as tls.connect says it: the server hung up in the middle of the handshake
    else
      this.closed(
        'ECONNRESET',
        `Client network socket disconnected before secure TLS connection was established (${this.where})`,
      );
  }

  override write(buf: Buffer): void {
    this.send(buf);
  }

  /** The TLSWrap encrypts at once and keeps nothing of `buf`; only a write that has to wait here is copied. */
  override writeTransient(buf: Buffer): boolean {
    if (this.ssl && (!this.secure || this.inFlight)) this.send(Buffer.from(buf));
    else this.send(buf);
    return false;
  }

  /** A packet bigger than this connection's records: grow them so that it goes as one record. */
  private growRecords(n: number): void {
    const size = recordSizeFor(n);
    if (size === this.recordSize) return;
    this.recordSize = size;
    this.ssl?.setMaxSendFragment(size);
  }

  private send(buf: Buffer): void {
    if (!this.ssl) return;
    if (buf.length > this.recordSize) this.growRecords(buf.length);
    if (this.secure && !this.inFlight) this.writeNow(buf);
    else if (this.waiting) this.waiting.push(buf);
    else this.waiting = [buf];
  }

  /** One packet (the common case: no array per message) or the waiting ones together. */
  private writeNow(chunks: Buffer | Buffer[]): void {
    const ssl = this.ssl;
    if (!ssl) return;
    const bs = b();
    const req: TlsWriteReq = spare.pop() ?? new bs.WriteWrap();
    req.handle = ssl as unknown as TcpHandle;
    req.oncomplete = onWriteDone;
    req.ch = this;
    // in flight before the call: when the TCP write fails at once (the peer reset the connection), the TLSWrap
    // completes the request inside writeBuffer, and that failure must not be lost
    this.inFlight = req;
    this.issuing = true;
    const err = Buffer.isBuffer(chunks)
      ? ssl.writeBuffer(req, chunks)
      : chunks.length === 1
        ? ssl.writeBuffer(req, chunks[0] as Buffer)
        : ssl.writev(req, chunks, true);
    this.issuing = false;
    // OpenSSL lets go of its write buffer once a write is complete (Node sets SSL_MODE_RELEASE_BUFFERS)
    this.ticketSinceWrite = false;
    if (err) {
      if (this.inFlight === req) this.inFlight = undefined;
      req.ch = undefined;
      req.handle = undefined;
      spare.push(req);
      this.failSoon(errorName(err), `write ${errorName(err)}`);
      return;
    }
    if (!bs.state[bs.kLastWriteWasAsync]) {
      if (this.inFlight === req) this.inFlight = undefined;
      req.ch = undefined;
      req.handle = undefined;
      spare.push(req);
    }
  }

  /** A write reached the kernel (or failed): the next ones go. */
  written(req: TlsWriteReq, status: number): void {
    if (req !== this.inFlight) return; // a write of a connection closed meanwhile
    this.inFlight = undefined;
    if (status < 0) {
      // failed inside writeBuffer: report it on the next tick, as every failed write is (never into the caller)
      if (this.issuing) this.failSoon(errorName(status), `write ${errorName(status)}`);
      else this.closed(errorName(status), `write ${errorName(status)}`);
      return;
    }
    this.flush();
  }

  private flush(): void {
    const chunks = this.waiting;
    if (chunks) {
      this.waiting = undefined;
      this.writeNow(chunks);
    }
    if (this.ending && !this.inFlight && !this.waiting) this.shutdown();
  }

  override get queuedBytes(): number {
    let n = 0;
    for (const w of this.waiting ?? []) n += w.length;
    return n;
  }

  override end(last: Buffer): void {
    if (!this.ssl) return;
    this.send(last);
    this.ending = true;
    if (this.secure && !this.inFlight && !this.waiting) this.shutdown();
  }

  /** close_notify, then half-close TCP; the broker's close ends it (onRead sees EOF). */
  private shutdown(): void {
    const ssl = this.ssl;
    if (!ssl || !this.ending) return;
    this.ending = false;
    const req = new (b().ShutdownWrap)();
    req.handle = ssl as unknown as TcpHandle;
    req.oncomplete = noop;
    const err = ssl.shutdown(req);
    if (err) this.failSoon(errorName(err), `shutdown ${errorName(err)}`);
  }

  /** Closes at once; OpenSSL's state goes when the TCP handle has closed (never on OpenSSL's own stack). */
  override destroy(): void {
    const ssl = this.ssl;
    this.ssl = undefined;
    this.waiting = undefined;
    this.inFlight = undefined;
    this.pendingSession = undefined;
    const h = this.h;
    if (ssl) ssl.owner = undefined;
    this.sink = undefined;
    this.h = undefined;
    if (h) {
      h.owner = undefined;
      h.close(ssl ? () => ssl.destroySSL() : undefined);
    }
  }
}
