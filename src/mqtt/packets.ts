import mqttPacket from 'mqtt-packet';

/**
 * The hot-path packets (PUBLISH, PUBREL, PINGREQ, DISCONNECT) are encoded by hand into one buffer each, reusing
 * the per-device topic bytes; CONNECT/SUBSCRIBE and anything unusual go through mqtt-packet. Incoming frames are
 * split here; acknowledgements are decoded inline, everything else by mqtt-packet's parser.
 */

export type ProtocolVersion = 4 | 5;

export const CMD = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
} as const;

/** Bytes needed for the MQTT variable-length "remaining length" (§1.5.5). */
export function varIntSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Writes the MQTT variable-length integer `n` at `at` (§1.5.5); returns the end. */
export function writeVarInt(buf: Buffer, at: number, n: number): number {
  let v = n;
  let i = at;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    buf[i++] = b;
  } while (v > 0);
  return i;
}

/**
 * PUBLISH: fixed header, topic (pre-encoded with its length prefix), packet id when qos>0, empty property
 * block on v5, then the payload written straight from a latin1/utf8 string — one allocation per message.
 */
export function encodePublish(
  topic: Buffer,
  qos: 0 | 1 | 2,
  packetId: number,
  version: ProtocolVersion,
  payload: string | Buffer,
  payloadBytes: number,
  props?: Buffer,
): Buffer {
  const propLen = version === 5 && props ? props.length : 0;
  const propHeader = version === 5 ? varIntSize(propLen) : 0;
  const remaining = topic.length + (qos > 0 ? 2 : 0) + propHeader + propLen + payloadBytes;
  const buf = Buffer.allocUnsafe(1 + varIntSize(remaining) + remaining);
  buf[0] = 0x30 | (qos << 1); // [MQTT-3.3.1] DUP=0, RETAIN=0
  let at = writeVarInt(buf, 1, remaining);
  at += topic.copy(buf, at);
  if (qos > 0) {
    buf[at++] = packetId >> 8;
    buf[at++] = packetId & 0xff;
  }
  if (version === 5) {
    at = writeVarInt(buf, at, propLen); // [MQTT-3.3.2.3] property length
    if (props) at += props.copy(buf, at);
  }
  if (typeof payload === 'string') buf.write(payload, at, 'utf8');
  else payload.copy(buf, at);
  return buf;
}

/** Topic name with its 2-byte length prefix, encoded once per device. */
export function encodeTopic(topic: string): Buffer {
  const len = Buffer.byteLength(topic, 'utf8');
  const buf = Buffer.allocUnsafe(2 + len);
  buf.writeUInt16BE(len, 0);
  buf.write(topic, 2, 'utf8');
  return buf;
}

/** PUBREL for QoS 2 (§3.6): fixed header 0x62. */
export function encodePubrel(packetId: number): Buffer {
  return Buffer.from([0x62, 2, packetId >> 8, packetId & 0xff]);
}

/** PUBACK / PUBREC / PUBCOMP we send for incoming QoS>0 publishes (device command topics). */
export function encodeAck(cmd: number, packetId: number): Buffer {
  return Buffer.from([(cmd << 4) | (cmd === CMD.pubrel ? 2 : 0), 2, packetId >> 8, packetId & 0xff]);
}

export const PINGREQ = Buffer.from([0xc0, 0]);
export const DISCONNECT_V4 = Buffer.from([0xe0, 0]);
/** v5 DISCONNECT with reason 0x00 (normal disconnection) and no properties. */
export const DISCONNECT_V5 = Buffer.from([0xe0, 2, 0, 0]);

export interface ConnectOptions {
  clientId: string;
  version: ProtocolVersion;
  keepaliveSec: number;
  clean: boolean;
  username?: string | undefined;
  password?: string | undefined;
  sessionExpirySec?: number;
  receiveMaximum?: number;
}

export function encodeConnect(o: ConnectOptions): Buffer {
  const packet: mqttPacket.IConnectPacket = {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: o.version,
    clientId: o.clientId,
    clean: o.clean,
    keepalive: o.keepaliveSec,
  };
  if (o.username !== undefined) packet.username = o.username;
  if (o.password !== undefined) packet.password = Buffer.from(o.password, 'utf8');
  if (o.version === 5) {
    packet.properties = {};
    if (o.sessionExpirySec !== undefined) packet.properties.sessionExpiryInterval = o.sessionExpirySec;
    if (o.receiveMaximum !== undefined) packet.properties.receiveMaximum = o.receiveMaximum;
  }
  return mqttPacket.generate(packet, { protocolVersion: o.version });
}

/**
 * Splits a byte stream into MQTT frames. Holds at most one partial frame; the common case (whole frames in one
 * chunk) copies nothing.
 */
export class FrameReader {
  private pending: Buffer | undefined;

  /** Forgets a partial packet (a new connection starts clean). */
  reset(): void {
    this.pending = undefined;
  }

  /** Calls `onFrame(buf, start, end)` with [start,end) covering one whole packet (fixed header included). */
  push(chunk: Buffer, onFrame: (buf: Buffer, start: number, end: number) => void): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let at = 0;
    const n = buf.length;
    while (at < n) {
      // remaining length: up to 4 bytes after the first
      let mul = 1;
      let len = 0;
      let i = at + 1;
      let complete = false;
      for (let k = 0; k < 4; k++) {
        if (i >= n) break;
        const b = buf[i++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        if (k === 3) throw new Error('malformed remaining length');
      }
      if (!complete || i + len > n) {
        this.pending = Buffer.from(buf.subarray(at)); // a copy: the chunk's memory is reused after this call
        return;
      }
      onFrame(buf, at, i + len);
      at = i + len;
    }
  }
}

/** Offset of the variable header: after the fixed header byte and the remaining-length bytes. */
export function bodyStart(buf: Buffer, start: number): number {
  let i = start + 1;
  while ((buf[i] as number) & 0x80) i++;
  return i + 1;
}

/** Parses one complete frame with mqtt-packet (for the uncommon packets). */
export function parseFrame(frame: Buffer, version: ProtocolVersion): mqttPacket.Packet | Error {
  const parser = mqttPacket.parser({ protocolVersion: version });
  let out: mqttPacket.Packet | Error = new Error('incomplete packet');
  parser.on('packet', (p) => {
    out = p;
  });
  parser.on('error', (e) => {
    out = e;
  });
  parser.parse(frame);
  return out;
}
