import { type ProtocolVersion, varIntSize, writeVarInt } from '../mqtt/packets.js';
import { JSON_BYTES, jsonDevicePrefix, jsonRunPart, writeMs, writeUint } from '../wire/index.js';

/**
 * The default message written straight into bytes: a PUBLISH (fixed header, topic, packet id, empty v5 property
 * block) carrying `{"deviceId":…,"seq":…,"ts":…,"sentTs":…,"runId":…,"temperature":…,"pad":"…"}` padded to
 * `sizeBytes` — the same bytes as jsonPayload() + encodePublish() (a test holds them equal), without building a
 * string or allocating a Buffer per message. The metadata's keys and number formats come from src/wire/json.ts. This is the engine's per-message path for `--encoding json`.
 *
 * Packets are written into a scratch arena; the returned view is valid until the next `write`. When a channel
 * keeps a packet's bytes (the write had to queue in libuv), the caller calls `retire()`: later packets go after it
 * in the same arena, and a full arena is left to the queued writes that still hold it (freed when they complete)
 * while a new one is taken. So a backlog costs about its own size, not an arena per packet.
 */

const SCRATCH_BYTES = 64 * 1024;
/** room left in front of the topic for the fixed header (1 byte + up to 4 bytes of remaining length) */
const HEADER_ROOM = 5;

const { ts: TS, sentTs: SENT_TS } = JSON_BYTES;
const PAD = Buffer.from(',"pad":"', 'latin1');

export class JsonPacketWriter {
  private scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  private views = new Map<number, Buffer>();
  /** where the next packet starts in the arena: 0 until a kept packet pins the bytes before it */
  private base = 0;
  /** where the last packet ended */
  private lastEnd = 0;
  /** arenas taken so far (1 + each time one filled up behind kept packets) */
  arenas = 1;
  /** `,"runId":"…","temperature":` */
  private readonly runPart: Buffer;

  constructor(
    runId: string,
    private readonly sizeBytes: number,
    private readonly version: ProtocolVersion,
  ) {
    this.runPart = Buffer.from(`${jsonRunPart(runId)},"temperature":`, 'utf8');
  }

  /** Per device, once: `{"deviceId":"…","seq":`. */
  devicePrefix(deviceIdJson: string): Buffer {
    return Buffer.from(jsonDevicePrefix(deviceIdJson), 'utf8');
  }

  /** True when a packet of this topic fits the scratch buffer (else the caller takes the general path). */
  fits(topic: Buffer, prefix: Buffer): boolean {
    return this.bound(topic, prefix) <= SCRATCH_BYTES;
  }

  /** an upper bound of the packet's length (with the header room) */
  private bound(topic: Buffer, prefix: Buffer): number {
    const head = prefix.length + this.runPart.length + 120;
    return HEADER_ROOM + topic.length + 3 + Math.max(this.sizeBytes, head);
  }

  write(
    topic: Buffer,
    qos: 0 | 1 | 2,
    packetId: number,
    prefix: Buffer,
    deviceIndex: number,
    seq: number,
    ts: number,
    sentTs: number,
  ): Buffer {
    if (this.base > 0 && this.base + this.bound(topic, prefix) > SCRATCH_BYTES) {
      // the arena is full behind packets still queued: they keep it; take a new one
      this.scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
      this.views = new Map();
      this.base = 0;
      this.arenas++;
    }
    const b = this.scratch;
    const origin = this.base;
    let at = origin + HEADER_ROOM;
    b.set(topic, at);
    at += topic.length;
    if (qos > 0) {
      b[at++] = packetId >> 8;
      b[at++] = packetId & 0xff;
    }
    if (this.version === 5) b[at++] = 0; // [MQTT-3.3.2.3] no properties
    const payloadAt = at;
    b.set(prefix, at);
    at = writeUint(b, at + prefix.length, seq);
    b.set(TS, at);
    at = writeMs(b, at + TS.length, ts);
    b.set(SENT_TS, at);
    at = writeMs(b, at + SENT_TS.length, sentTs);
    b.set(this.runPart, at);
    at += this.runPart.length;
    // reading: 20 + k/10, k in 0..99 (the same value jsonPayload writes)
    const k = (seq * 7 + deviceIndex * 13) % 100;
    b[at++] = 50; // 2
    b[at++] = 48 + Math.floor(k / 10);
    if (k % 10 !== 0) {
      b[at++] = 46;
      b[at++] = 48 + (k % 10);
    }
    // close, padded to sizeBytes: ,"pad":"xx…x"} when there is room for it, else spaces, else nothing
    const room = this.sizeBytes - (at - payloadAt + 1);
    if (room >= 10) {
      b.set(PAD, at);
      at += PAD.length;
      const end = at + room - 9;
      b.fill(120, at, end); // x
      at = end;
      b[at++] = 34; // "
    } else if (room > 0) {
      b.fill(32, at, at + room);
      at += room;
    }
    b[at++] = 125; // }
    // fixed header right in front of the topic
    const remaining = at - origin - HEADER_ROOM;
    const start = origin + HEADER_ROOM - 1 - varIntSize(remaining);
    b[start] = 0x30 | (qos << 1); // [MQTT-3.3.1] DUP=0, RETAIN=0
    writeVarInt(b, start + 1, remaining);
    const key = start * SCRATCH_BYTES + at;
    let view = this.views.get(key);
    if (!view) {
      if (this.views.size >= 256) this.views.clear(); // lengths vary (unpadded payloads, topics): stay bounded
      view = b.subarray(start, at);
      this.views.set(key, view);
    }
    this.lastEnd = at;
    return view;
  }

  /** The last packet's bytes were kept by a queued write: the next packets go after them. */
  retire(): void {
    this.base = this.lastEnd;
  }
}
