import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type * as WsModule from 'ws';
import { RawTcpChannel, rawTcpAvailable } from './raw-tcp.js';
import { RawTlsChannel, rawTlsAvailable, type TlsSetup } from './raw-tls.js';
import { leanSession } from './tls-session.js';

/**
 * One interface for every transport: a Duplex byte stream plus an `opened` callback. TCP and TLS sockets are
 * used as they are; WebSocket (`ws`/`wss`) is wrapped as a stream with the `mqtt` subprotocol.
 */
export interface TransportOptions {
  url: URL;
  /** TLS: skip certificate verification (explicit --insecure only) */
  insecure?: boolean;
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  servername?: string | undefined;
  localAddress?: string | undefined;
  /** TCP and TLS on raw libuv handles (default) or on net.Socket / tls.TLSSocket */
  sockets?: 'raw' | 'node';
  /** TLS: false = do not offer a kept session on this connect (a full handshake); the new one is still kept */
  resume?: boolean;
  /** TLS: pin this version (minVersion = maxVersion on the context); absent = Node's default negotiation */
  tlsVersion?: '1.2' | '1.3' | undefined;
}

export interface Transport {
  stream: Duplex;
}

/** What a device connection hears from its byte channel. Nothing arrives after `onClose` or `destroy()`. */
export interface ChannelSink {
  /**
   * bytes can flow (TCP connected, TLS handshake done, WebSocket upgraded); `tlsResumed`: an mqtts connection's
   * handshake resumed a kept session (true) or was a full one (false); undefined for other transports
   */
  onOpen(tlsResumed?: boolean): void;
  /** `chunk` is only valid during the call (raw channels share one read buffer): copy what must outlive it */
  onBytes(chunk: Buffer): void;
  /** the channel failed (errno name such as ECONNRESET, or a TLS/WebSocket code); `onClose` follows */
  onError(code: string, message: string): void;
  onClose(): void;
}

/** A device connection's byte channel: raw TCP handles for plain TCP, Node streams for the rest. */
export interface Channel {
  write(buf: Buffer): void;
  /**
   * Writes bytes that are only valid during this call (a shared scratch buffer). Returns true when the channel had
   * to keep them (its write queued): the caller must not reuse that memory.
   */
  writeTransient(buf: Buffer): boolean;
  /** writes `last`, then half-closes; the peer's close ends it */
  end(last: Buffer): void;
  destroy(): void;
  /**
   * TLS: the server sent something after this connection's last write (TLS 1.3 session tickets), and OpenSSL
   * allocated its write buffer to handle it; it keeps that buffer (about 1.3 KB) until the next write completes.
   */
  holdsWriteBuffer?(): boolean;
}

export type TransportFactory = (o: TransportOptions, onOpen: () => void) => Transport;

/** Adapts a Duplex (TLS, WebSocket, net.Socket, in-memory test streams) to a Channel. */
class StreamChannel implements Channel {
  private sink: ChannelSink | undefined;
  /** `dataEvents` false: the stream hands its bytes to `bytes()` itself (a TLS socket's `onread`) */
  constructor(
    private readonly stream: Duplex,
    sink: ChannelSink,
    dataEvents = true,
  ) {
    this.sink = sink;
    if (dataEvents) stream.on('data', (chunk: Buffer) => this.sink?.onBytes(chunk));
    stream.on('error', (e: NodeJS.ErrnoException) => this.sink?.onError(e.code ?? 'error', e.message));
    stream.on('close', () => {
      const s = this.sink;
      this.sink = undefined;
      s?.onClose();
    });
  }
  bytes(chunk: Buffer): void {
    this.sink?.onBytes(chunk);
  }
  write(buf: Buffer): void {
    this.stream.write(buf);
  }
  writeTransient(buf: Buffer): boolean {
    this.stream.write(Buffer.from(buf)); // streams keep what they are given
    return false;
  }
  end(last: Buffer): void {
    this.stream.end(last);
  }
  destroy(): void {
    this.sink = undefined;
    this.stream.destroy();
  }
}

/**
 * One read buffer for every TLS connection (net.Socket's documented `onread` option): Node decrypts a record
 * straight into it and calls us, with no Buffer per read, no Readable push and no 'data' event. Reads are handled
 * one at a time, synchronously, so every connection can share it; chunks are only valid during `onBytes`.
 */
const tlsReadBuffer = Buffer.allocUnsafeSlow(16 * 1024);

/**
 * Opens a device's channel. Plain TCP and TLS go straight on libuv handles when this Node allows it
 * (src/mqtt/raw-tcp.ts, src/mqtt/raw-tls.ts); WebSocket, `sockets: node` and injected test transports are streams.
 */
export function openChannel(o: TransportOptions, sink: ChannelSink, factory?: TransportFactory): Channel {
  const u = o.url;
  const plain = u.protocol === 'mqtt:' || u.protocol === 'tcp:';
  if (!factory && plain && o.sockets !== 'node' && rawTcpAvailable()) {
    return new RawTcpChannel(hostOf(u), portOf(u), o.localAddress, sink);
  }
  const tlsProtocol = u.protocol === 'mqtts:' || u.protocol === 'ssl:' || u.protocol === 'tls:';
  if (!factory && tlsProtocol && o.sockets !== 'node' && rawTlsAvailable()) {
    const t = tlsTarget(o, true);
    return new RawTlsChannel(t.host, t.port, o.localAddress, sink, rawTlsSetup(o, t), t.session);
  }
  if (!factory && tlsProtocol) {
    let ch: StreamChannel | undefined;
    const s = connectTls(o, (resumed) => sink.onOpen(resumed), {
      buffer: tlsReadBuffer,
      callback: (n: number, buf: Uint8Array) => {
        ch?.bytes(Buffer.from(buf.buffer, buf.byteOffset, n));
        return true;
      },
    });
    ch = new StreamChannel(s, sink, false);
    return ch;
  }
  const t = (factory ?? openTransport)(o, () => sink.onOpen());
  return new StreamChannel(t.stream, sink);
}

/** The URL's host as a socket takes it: an IPv6 literal without its brackets. */
function hostOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

/** The URL's port, else the protocol's default. */
function portOf(u: URL): number {
  return u.port ? Number(u.port) : defaultPort(u.protocol);
}

export function defaultPort(protocol: string): number {
  switch (protocol) {
    case 'mqtts:':
    case 'ssl:':
    case 'tls:':
      return 8883;
    case 'ws:':
      return 80;
    case 'wss:':
      return 443;
    default:
      return 1883;
  }
}

export function isTls(protocol: string): boolean {
  return protocol === 'mqtts:' || protocol === 'ssl:' || protocol === 'tls:' || protocol === 'wss:';
}

/**
 * TLS contexts are shared: a fleet that connects with one CA (and no per-device certificate) parses it once, not
 * once per device — less CPU during the ramp and less memory per connection. A device with its own certificate
 * gets its own context, made once and kept: its reconnects (a reconnect storm) do not parse its certificate, key
 * and CA again. Contexts are keyed by the content of the certificate and key (the identity provider reads a
 * device's files afresh at each connect), by the CA buffer (read once per run) and by the pinned TLS version (its
 * minVersion/maxVersion live on the context).
 */
const sharedContexts = new WeakMap<Buffer, Map<string, tls.SecureContext>>();
const systemContexts = new Map<string, tls.SecureContext>();
const certContexts = new Map<string, tls.SecureContext>();
/** more distinct certificates than this (rotating ones in a long run): start the cache afresh */
const MAX_CERT_CONTEXTS = 200_000;

/** SecureContexts made since start (tests: a context is reused, not remade) */
export const tlsContextsMade = { count: 0 };

/** A pinned version is both ends of the range the context allows; absent, Node's defaults (TLS 1.2 to 1.3). */
function versionRange(v: TransportOptions['tlsVersion']): tls.SecureContextOptions {
  if (!v) return {};
  const version = v === '1.2' ? 'TLSv1.2' : 'TLSv1.3';
  return { minVersion: version, maxVersion: version };
}

function newContext(options: tls.SecureContextOptions, v: TransportOptions['tlsVersion']): tls.SecureContext {
  tlsContextsMade.count++;
  return tls.createSecureContext({ ...options, ...versionRange(v) });
}

function digest(b: Buffer | undefined): string {
  return b ? createHash('sha1').update(b).digest('base64') : '-';
}

/** The context for a connect, and the client identity it carries (the certificate's digest, or '' without one). */
export function secureContextFor(o: TransportOptions): { ctx: tls.SecureContext; certId: string } {
  const v = o.tlsVersion ?? 'auto';
  if (o.cert || o.key) {
    const certId = digest(o.cert);
    const k = `${certId} ${digest(o.key)} ${o.ca ? idOf(o.ca) : '-'} ${v}`;
    let ctx = certContexts.get(k);
    if (!ctx) {
      if (certContexts.size >= MAX_CERT_CONTEXTS) certContexts.clear();
      ctx = newContext({ ca: o.ca, cert: o.cert, key: o.key }, o.tlsVersion);
      certContexts.set(k, ctx);
    }
    return { ctx, certId };
  }
  let byVersion = systemContexts;
  if (o.ca) {
    let m = sharedContexts.get(o.ca);
    if (!m) {
      m = new Map();
      sharedContexts.set(o.ca, m);
    }
    byVersion = m;
  }
  let ctx = byVersion.get(v);
  if (!ctx) {
    ctx = newContext(o.ca ? { ca: o.ca } : {}, o.tlsVersion);
    byVersion.set(v, ctx);
  }
  return { ctx, certId: '' };
}

/**
 * TLS session resumption: the last session (TLS 1.3 ticket or 1.2 session) a server gave, kept per server and per
 * client identity, is offered on the next connect to it. A reconnect storm or a ramp then costs abbreviated
 * handshakes (no certificate chain sent and verified, no signature) instead of full ones. Devices without a client
 * certificate share one session per server and context (they are the same client to the server); a device with its
 * own certificate only ever resumes its own (a session carries the client identity it was made with).
 */
const sessions = new Map<string, Buffer>();
const ids = new WeakMap<object, number>();
let nextId = 0;
function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) {
    id = nextId++;
    ids.set(o, id);
  }
  return id;
}

/**
 * Whose session a connect may resume: the client certificate's (its own) under the same trust (CA, --insecure),
 * else the shared context's (it fixes the trust), per server. A session made under other trust settings is never
 * offered: resuming it would skip the verification those settings ask for.
 */
function sessionKey(o: TransportOptions, ctx: tls.SecureContext, certId: string, server: string): string {
  if (o.cert) return `c${certId} ${o.ca ? idOf(o.ca) : '-'} ${o.tlsVersion ?? 'auto'} ${server}`;
  return `x${idOf(ctx)} ${server}`;
}

/**
 * FLEETLOAD_TLS_RESUMPTION=off: never offer a kept session (every connect a full handshake). For benches that
 * measure what resumption saves, and for a broker whose resumption is broken.
 */
const resumption = process.env.FLEETLOAD_TLS_RESUMPTION !== 'off';

/** Full and resumed TLS handshakes since start (for the bench and tests). */
export const tlsHandshakes = { full: 0, resumed: 0 };

/** How many TLS sessions are kept (tests: a session from a server that failed verification is never kept). */
export function keptTlsSessions(): number {
  return sessions.size;
}

/** The kept TLS sessions, as offered on the next connects (tests: what a kept session holds). */
export function keptTlsSessionBytes(): Buffer[] {
  return [...sessions.values()];
}

/** Forgets every kept TLS session: the next connects make full handshakes (tests, benches). */
export function forgetTlsSessions(): void {
  sessions.clear();
}

/** `ws` loads on the first WebSocket device (a plain-TCP run does not pay for the module). */
let wsModule: typeof WsModule | undefined;
function ws(): typeof WsModule {
  wsModule ??= createRequire(import.meta.url)('ws') as typeof WsModule;
  return wsModule;
}

/** What tls.connect takes as `onread` (net.Socket's): a buffer to read into, and the callback per read. */
interface OnRead {
  buffer: Uint8Array;
  callback(bytes: number, buf: Uint8Array): boolean;
}

/** One setup per context and session key: what every connect to that server with those checks shares. */
const rawSetups = new WeakMap<tls.SecureContext, Map<string, TlsSetup>>();

function rawTlsSetup(o: TransportOptions, t: ReturnType<typeof tlsTarget>): TlsSetup {
  let byKey = rawSetups.get(t.secureContext);
  if (!byKey) {
    byKey = new Map();
    rawSetups.set(t.secureContext, byKey);
  }
  let setup = byKey.get(t.key);
  if (!setup) {
    const { key } = t;
    setup = {
      secureContext: t.secureContext,
      servername: t.servername,
      checkName: t.servername ?? t.host,
      verify: !o.insecure,
      onSession: resumption
        ? (session) => sessions.set(key, leanSession(session, { tls12: true }))
        : undefined,
      onSecure: countHandshake,
    };
    byKey.set(key, setup);
  }
  return setup;
}

function countHandshake(resumed: boolean): void {
  if (resumed) tlsHandshakes.resumed++;
  else tlsHandshakes.full++;
}

/**
 * Where a TLS connect goes and with what: the shared context, the session key and the kept session to offer.
 * `raw`: for the raw TLS channel, whose kept sessions are lean for TLS 1.2 too (src/mqtt/tls-session.ts): they are
 * kept apart from `tls.connect`'s, which would refuse a resumed TLS 1.2 session without the certificate.
 */
function tlsTarget(
  o: TransportOptions,
  raw = false,
): {
  host: string;
  port: number;
  servername: string | undefined;
  secureContext: tls.SecureContext;
  key: string;
  session: Buffer | undefined;
} {
  const u = o.url;
  const host = hostOf(u);
  const port = portOf(u);
  const servername = o.servername ?? (net.isIP(host) ? undefined : host);
  const { ctx: secureContext, certId } = secureContextFor(o);
  const key = sessionKey(
    o,
    secureContext,
    certId,
    `${host}:${port} ${servername ?? ''} ${o.insecure ? 'i' : 'v'}${raw ? ' raw' : ''}`,
  );
  const session = resumption && o.resume !== false ? sessions.get(key) : undefined;
  return { host, port, servername, secureContext, key, session };
}

/**
 * A TLS connection with the shared context and the kept session (see above); `onOpen` after the handshake.
 * `onread`: bytes go to its callback instead of 'data' events. (TLS devices use src/mqtt/raw-tls.ts where this
 * Node allows it; this is the `sockets: node` path, and WebSocket's.)
 */
function connectTls(o: TransportOptions, onOpen: (resumed: boolean) => void, onread?: OnRead): tls.TLSSocket {
  const { host, port, servername, secureContext, key, session } = tlsTarget(o);
  const s = tls.connect({
    host,
    port,
    servername,
    rejectUnauthorized: !o.insecure,
    secureContext,
    localAddress: o.localAddress,
    session,
    ...(onread ? { onread } : {}),
  } as tls.ConnectionOptions);
  s.setNoDelay(true);
  // every session the server gives replaces the kept one (TLS 1.2: emitted once the handshake is verified; TLS 1.3:
  // tickets after it), so a broker that takes each ticket once still finds a fresh one at the next connect
  if (resumption) s.on('session', (session: Buffer) => sessions.set(key, leanSession(session)));
  s.once('secureConnect', () => {
    const resumed = s.isSessionReused();
    countHandshake(resumed);
    onOpen(resumed);
  });
  return s;
}

/** Opens a transport; `onOpen` fires when bytes can flow (after the TLS handshake / WebSocket upgrade). */
export function openTransport(o: TransportOptions, onOpen: () => void): Transport {
  const u = o.url;
  const host = hostOf(u);
  const port = portOf(u);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') {
    const { WebSocket, createWebSocketStream } = ws();
    const socket = new WebSocket(u, 'mqtt', {
      rejectUnauthorized: !o.insecure,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      servername: o.servername,
      localAddress: o.localAddress,
      ...versionRange(o.tlsVersion),
      perMessageDeflate: false,
    } as ConstructorParameters<typeof WsModule.WebSocket>[2]);
    const stream = createWebSocketStream(socket);
    socket.once('open', onOpen);
    return { stream };
  }
  if (isTls(u.protocol)) return { stream: connectTls(o, onOpen) };
  const s = net.connect({ host, port, localAddress: o.localAddress });
  s.setNoDelay(true);
  s.once('connect', onOpen);
  return { stream: s };
}
