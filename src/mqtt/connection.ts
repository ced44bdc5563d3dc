import mqttPacket from 'mqtt-packet';
import {
  bodyStart,
  CMD,
  type ConnectOptions,
  DISCONNECT_V4,
  DISCONNECT_V5,
  encodeAck,
  encodeConnect,
  encodePublish,
  encodePubrel,
  FrameReader,
  PINGREQ,
  type ProtocolVersion,
  parseFrame,
} from './packets.js';
import { connackReason, reasonName } from './reasons.js';
import {
  type Channel,
  type ChannelSink,
  openChannel,
  type TransportFactory,
  type TransportOptions,
} from './transport.js';

/**
 * One device's MQTT connection, kept small: a transport, a frame reader, and the in-flight packet ids with their
 * send times. It has no timers of its own (the engine's scheduler drives keepalive and timeouts) and no event
 * emitter: it reports to one shared `ConnectionHandler`, passing the owner's `index`.
 */

export interface ConnectionHandler {
  /** CONNACK accepted. */
  connected(index: number, sessionPresent: boolean): void;
  /** an mqtts connection finished its TLS handshake, resuming a kept session or not (before CONNECT is sent) */
  tlsHandshake?(index: number, resumed: boolean): void;
  /** The connection attempt failed before CONNACK success: socket error, refusal, timeout. */
  connectFailed(index: number, kind: string, code: number | string, reason: string): void;
  /** An established connection closed (by the broker, the network, or us). `inflight` messages lost with it. */
  closed(index: number, inflight: number, kind: string, code: number | string, reason: string): void;
  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) for a message written at `sentAt`; `reasonCode` ≥ 0x80 is a failure. */
  acked(index: number, sentAt: number, reasonCode: number): void;
  /** A PUBLISH arrived for this device (command topics). */
  message?(index: number, topic: string, payload: Buffer): void;
  /** SUBACK: granted QoS per filter, or failure codes (≥ 0x80). */
  subscribed?(index: number, codes: readonly number[]): void;
}

export const State = { Idle: 0, Connecting: 1, Connected: 2, Closing: 3 } as const;
export type State = (typeof State)[keyof typeof State];

export type { TransportFactory };

export interface ConnectionConfig {
  transport: TransportOptions;
  /** opens the byte stream; real sockets by default, in-memory streams in tests */
  open?: TransportFactory;
  connect: ConnectOptions;
  version: ProtocolVersion;
}

export class Connection implements ChannelSink {
  state: State = State.Idle as State;
  /** last time bytes were written, for keepalive */
  lastWriteAt = 0;
  startedAt = 0;
  /** MQTT packet bytes written over this device's connections so far (headers included; all its connections) */
  bytesSent = 0;
  private t: Channel | undefined;
  private readonly reader = new FrameReader();
  /** CONNECT bytes, kept until the channel opens */
  private connectPacket: Buffer | undefined;
  private version: ProtocolVersion = 4;
  private readonly onFrameBound = (buf: Buffer, start: number, end: number) => this.onFrame(buf, start, end);
  /** packet id → time written; QoS 2 ids stay until PUBCOMP */
  /** made on the first QoS 1/2 publish: an idle or QoS 0 device carries no map */
  private inflightAt: Map<number, number> | undefined;
  private nextId = 1;
  private failedReported = false;

  constructor(
    readonly index: number,
    private readonly handler: ConnectionHandler,
  ) {}

  get inflight(): number {
    return this.inflightAt?.size ?? 0;
  }

  open(cfg: ConnectionConfig, now: number): void {
    this.state = State.Connecting;
    this.startedAt = now;
    this.failedReported = false;
    this.nextId = 1;
    this.version = cfg.version;
    this.reader.reset();
    this.connectPacket = encodeConnect(cfg.connect);
    this.t = openChannel(cfg.transport, this, cfg.open);
  }

  // ---- ChannelSink ------------------------------------------------------------------------------------------

  onOpen(tlsResumed?: boolean): void {
    if (tlsResumed !== undefined) this.handler.tlsHandshake?.(this.index, tlsResumed);
    const p = this.connectPacket;
    this.connectPacket = undefined;
    if (p) this.write(p);
  }

  onBytes(chunk: Buffer): void {
    try {
      this.reader.push(chunk, this.onFrameBound);
    } catch (e) {
      this.fail('protocol', 'malformed', (e as Error).message);
    }
  }

  onError(code: string, message: string): void {
    this.fail('socket', code, message);
  }

  onClose(): void {
    this.fail('socket', 'closed', 'connection closed by peer');
  }

  /** Writes one PUBLISH; returns the packet id (0 for QoS 0). Caller checks `state` and the window first. */
  publish(
    topic: Buffer,
    qos: 0 | 1 | 2,
    version: ProtocolVersion,
    payload: string | Buffer,
    payloadBytes: number,
    now: number,
    props?: Buffer,
  ): number {
    const id = this.beginPublish(qos, now);
    this.write(encodePublish(topic, qos, id, version, payload, payloadBytes, props));
    this.lastWriteAt = now;
    return id;
  }

  /**
   * The per-message path for pre-built packets: takes a packet id (recording the message in flight) — write the
   * packet with `sendTransient` right after.
   */
  beginPublish(qos: 0 | 1 | 2, now: number): number {
    if (qos === 0) return 0;
    const id = this.allocId();
    this.inflightAt ??= new Map();
    this.inflightAt.set(id, now);
    return id;
  }

  /** Every packet this connection writes goes through here (or sendTransient): bytesSent counts them all. */
  private write(packet: Buffer): void {
    if (!this.t) return;
    this.bytesSent += packet.length;
    this.t.write(packet);
  }

  /** Writes a packet from a scratch buffer; true when the channel kept the bytes (see Channel.writeTransient). */
  sendTransient(packet: Buffer, now: number): boolean {
    this.lastWriteAt = now;
    this.bytesSent += packet.length;
    return (this.t as Channel).writeTransient(packet);
  }

  /** SUBSCRIBE to one filter (device command topics); the answer comes through `subscribed`. */
  subscribe(filter: string, qos: 0 | 1 | 2, version: ProtocolVersion): void {
    if (this.state !== State.Connected || !this.t) return;
    const messageId = this.allocId();
    this.write(
      mqttPacket.generate(
        { cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos }] },
        { protocolVersion: version },
      ),
    );
  }

  ping(now: number): void {
    if (this.state !== State.Connected || !this.t) return;
    this.write(PINGREQ);
    this.lastWriteAt = now;
  }

  /**
   * Polite close: DISCONNECT then end; in-flight messages are reported with `closed`. An attempt that has not
   * connected yet is just dropped (no callback: it was never connected, and it did not fail).
   */
  disconnect(version: ProtocolVersion): void {
    const t = this.t;
    if (!t) return;
    if (this.state === State.Connected) {
      this.state = State.Closing;
      const bye = version === 5 ? DISCONNECT_V5 : DISCONNECT_V4;
      this.bytesSent += bye.length;
      t.end(bye);
      return;
    }
    if (this.state === State.Closing) return;
    this.failedReported = true;
    this.state = State.Idle;
    this.t = undefined;
    this.connectPacket = undefined;
    this.inflightAt = undefined;
    t.destroy();
  }

  /** Abort an attempt (connect timeout) or a dead connection. */
  abort(kind: string, code: string, reason: string): void {
    this.fail(kind, code, reason);
  }

  private allocId(): number {
    // [MQTT-2.3.1-2] ids of in-flight messages are unique; skip ones still waiting
    for (;;) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (!this.inflightAt?.has(id)) return id;
    }
  }

  private fail(kind: string, code: number | string, reason: string): void {
    if (this.failedReported) return;
    this.failedReported = true;
    const wasConnected = this.state === State.Connected || this.state === State.Closing;
    const polite = this.state === State.Closing;
    this.state = State.Idle;
    const t = this.t;
    this.t = undefined;
    this.connectPacket = undefined;
    t?.destroy();
    const inflight = this.inflightAt?.size ?? 0;
    this.inflightAt = undefined;
    if (wasConnected) this.handler.closed(this.index, inflight, polite ? 'disconnect' : kind, code, reason);
    else this.handler.connectFailed(this.index, kind, code, reason);
  }

  private onFrame(buf: Buffer, start: number, end: number): void {
    const version = this.version;
    const type = (buf[start] as number) >> 4;
    const body = bodyStart(buf, start);
    switch (type) {
      case CMD.puback:
      case CMD.pubcomp: {
        const id = ((buf[body] as number) << 8) | (buf[body + 1] as number);
        const reason = end - body > 2 ? (buf[body + 2] as number) : 0;
        const sentAt = this.inflightAt?.get(id);
        if (sentAt === undefined) return; // ack for an id we no longer track (after reconnect)
        this.inflightAt?.delete(id);
        this.handler.acked(this.index, sentAt, reason);
        return;
      }
      case CMD.pubrec: {
        const id = ((buf[body] as number) << 8) | (buf[body + 1] as number);
        const reason = end - body > 2 ? (buf[body + 2] as number) : 0;
        if (reason >= 0x80) {
          // [MQTT-4.3.3] v5: a PUBREC with a failure reason ends the exchange
          const sentAt = this.inflightAt?.get(id);
          if (sentAt !== undefined) {
            this.inflightAt?.delete(id);
            this.handler.acked(this.index, sentAt, reason);
          }
          return;
        }
        this.write(encodePubrel(id));
        return;
      }
      case CMD.pingresp:
        return;
      case CMD.suback: {
        const p = parseFrame(buf.subarray(start, end), version);
        if (p instanceof Error || p.cmd !== 'suback') return;
        const codes = (p.granted as Array<number | { qos: number }>).map((g) =>
          typeof g === 'number' ? g : g.qos,
        );
        this.handler.subscribed?.(this.index, codes);
        return;
      }
      case CMD.connack: {
        // [MQTT-3.2.2] byte 1: session present flag, byte 2: return/reason code
        const sessionPresent = ((buf[body] as number) & 1) === 1;
        const code = buf[body + 1] as number;
        if (code !== 0) {
          this.fail('connack', code, connackReason(code, version));
          return;
        }
        this.state = State.Connected;
        this.handler.connected(this.index, sessionPresent);
        // nothing written since the server's TLS session tickets (an idle device): one PINGREQ now lets OpenSSL
        // free the write buffer they made it allocate, 1.3 KB per idle TLS 1.3 device (bench/RESULTS.md §6c)
        if (this.state === State.Connected && this.t?.holdsWriteBuffer?.()) this.write(PINGREQ);
        return;
      }
      case CMD.publish: {
        const p = parseFrame(buf.subarray(start, end), version);
        if (p instanceof Error || p.cmd !== 'publish') return;
        if (p.qos === 1 && p.messageId !== undefined) this.write(encodeAck(CMD.puback, p.messageId));
        if (p.qos === 2 && p.messageId !== undefined) this.write(encodeAck(CMD.pubrec, p.messageId));
        // a copy: the frame lives in a read buffer that is reused after this call
        this.handler.message?.(this.index, p.topic, Buffer.from(p.payload));
        return;
      }
      case CMD.pubrel: {
        const id = ((buf[body] as number) << 8) | (buf[body + 1] as number);
        this.write(encodeAck(CMD.pubcomp, id));
        return;
      }
      case CMD.disconnect: {
        // v5: the server tells us why before closing
        const reason = end - body > 0 ? (buf[body] as number) : 0;
        this.fail('disconnect', reason, reasonName(reason));
        return;
      }
      default:
        return;
    }
  }
}
