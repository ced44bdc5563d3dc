import { encodeBinaryHeader, userProperties } from '../consumer/wire.js';
import { compilePayloadTemplate, type PayloadTemplate } from '../scenario/payload-template.js';

/**
 * Telemetry payloads per the DESIGN.md wire contract. Each message carries `deviceId`, `seq`, `ts` (the scheduled
 * send time, ms since epoch, fractional) and `runId` — plus `sentTs` (when it was actually written), so the
 * consumer can tell platform delay from generator delay — in one of three encodings:
 * - `json` (default): fields of a JSON object with a reading, padded to `sizeBytes`;
 * - `properties`: MQTT 5 user properties; the payload is left to the reading (and padding);
 * - `binary`: a compact binary header (src/consumer/wire.ts) followed by padding, for tiny payloads.
 * Built with as little work as possible: this is the per-message path.
 */

const PAD_CHUNK = 'x'.repeat(4096);

function padding(n: number): string {
  if (n <= PAD_CHUNK.length) return PAD_CHUNK.slice(0, n);
  return PAD_CHUNK.repeat(Math.ceil(n / PAD_CHUNK.length)).slice(0, n);
}

export type Encoding = 'json' | 'properties' | 'binary';

/** One message's payload: text (written as UTF-8) or bytes, and v5 properties when the encoding uses them. */
export interface PayloadOut {
  text: string;
  buf: Buffer | undefined;
  bytes: number;
  /** encoded MQTT 5 property block content (without its length), or undefined */
  props: Buffer | undefined;
}

export interface PayloadBuilder {
  /** `deviceIdJson` is the device id already JSON-quoted (done once per device, not per message) */
  build(
    deviceId: string,
    deviceIdJson: string,
    deviceIndex: number,
    seq: number,
    ts: number,
    sentTs: number,
  ): PayloadOut;
}

const us = (t: number): number => Math.round(t * 1000) / 1000;
const FRACTIONS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/**
 * A time in ms as JSON text with exactly 3 decimals (µs): integer formatting plus a table lookup, no
 * shortest-double conversion per message. `1764288000123.400` is the same number as `1764288000123.4`.
 */
export function msText(t: number): string {
  const q = Math.round(t * 1000);
  const whole = Math.floor(q / 1000);
  return `${whole}.${FRACTIONS[q - whole * 1000]}`;
}
const reading = (seq: number, deviceIndex: number): number => 20 + ((seq * 7 + deviceIndex * 13) % 100) / 10;

/** Pads a JSON object text (without its closing brace) to `size` bytes, closing it. */
function closeJson(text: string, size: number): { text: string; bytes: number } {
  const bytes = Buffer.byteLength(text) + 1;
  const room = size - bytes;
  if (room >= 10) return { text: `${text},"pad":"${padding(room - 9)}"}`, bytes: size };
  if (room > 0) return { text: `${text}${' '.repeat(room)}}`, bytes: size };
  return { text: `${text}}`, bytes };
}

export function jsonPayload(runId: string, sizeBytes: number): PayloadBuilder {
  const runPart = `,"runId":${JSON.stringify(runId)},"temperature":`;
  const out: PayloadOut = { text: '', buf: undefined, bytes: 0, props: undefined };
  return {
    build(_deviceId, deviceIdJson, deviceIndex, seq, ts, sentTs) {
      const head = `{"deviceId":${deviceIdJson},"seq":${seq},"ts":${msText(ts)},"sentTs":${msText(sentTs)}${runPart}${reading(seq, deviceIndex)}`;
      const closed = closeJson(head, sizeBytes);
      out.text = closed.text;
      out.bytes = closed.bytes;
      return out;
    },
  };
}

/** MQTT 5 property block with one user property per metadata field (§3.3.2.3.7, identifier 0x26). */
export function encodeUserProperties(p: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(p)) {
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(v, 'utf8');
    const b = Buffer.allocUnsafe(5 + kb.length + vb.length);
    b[0] = 0x26;
    b.writeUInt16BE(kb.length, 1);
    kb.copy(b, 3);
    b.writeUInt16BE(vb.length, 3 + kb.length);
    vb.copy(b, 5 + kb.length);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

export function propertiesPayload(runId: string, sizeBytes: number): PayloadBuilder {
  const out: PayloadOut = { text: '', buf: undefined, bytes: 0, props: undefined };
  return {
    build(deviceId, _deviceIdJson, deviceIndex, seq, ts, sentTs) {
      const closed = closeJson(`{"temperature":${reading(seq, deviceIndex)}`, sizeBytes);
      out.text = closed.text;
      out.bytes = closed.bytes;
      out.props = encodeUserProperties(
        userProperties({ deviceId, seq, ts: us(ts), runId, sentTs: us(sentTs) }),
      );
      return out;
    },
  };
}

export function binaryPayload(runId: string, sizeBytes: number): PayloadBuilder {
  const out: PayloadOut = { text: '', buf: undefined, bytes: 0, props: undefined };
  return {
    build(deviceId, _deviceIdJson, _deviceIndex, seq, ts, sentTs) {
      const header = encodeBinaryHeader({ deviceId, seq, ts, runId, sentTs });
      const pad = Math.max(0, sizeBytes - header.length);
      const buf = pad > 0 ? Buffer.concat([header, Buffer.alloc(pad, 0x78)]) : header;
      out.buf = buf;
      out.bytes = buf.length;
      return out;
    },
  };
}

export function payloadFor(
  encoding: Encoding,
  runId: string,
  sizeBytes: number,
  template?: string,
): PayloadBuilder {
  if (template !== undefined)
    return templatePayload(encoding, runId, sizeBytes, compilePayloadTemplate(template));
  if (encoding === 'properties') return propertiesPayload(runId, sizeBytes);
  if (encoding === 'binary') return binaryPayload(runId, sizeBytes);
  return jsonPayload(runId, sizeBytes);
}

/**
 * `--payload FILE`: the user's template rendered per message. JSON: the measurement fields go first, then the
 * template object's own fields; user properties / binary header: the rendered text is the body.
 */
export function templatePayload(
  encoding: Encoding,
  runId: string,
  sizeBytes: number,
  render: PayloadTemplate,
): PayloadBuilder {
  const out: PayloadOut = { text: '', buf: undefined, bytes: 0, props: undefined };
  const runJson = JSON.stringify(runId);
  return {
    build(deviceId, deviceIdJson, deviceIndex, seq, ts, sentTs) {
      const body = render({ deviceId, index: deviceIndex, seq, ts, runId });
      out.props = undefined;
      out.buf = undefined;
      if (encoding === 'json') {
        // body is a JSON object (checked at load): splice the metadata in after its opening brace
        const open = body.indexOf('{');
        const inner = body.slice(open + 1).trimStart();
        const head = `{"deviceId":${deviceIdJson},"seq":${seq},"ts":${msText(ts)},"sentTs":${msText(sentTs)},"runId":${runJson}`;
        const rest = inner.startsWith('}') ? '' : `,${inner.slice(0, inner.lastIndexOf('}'))}`;
        const closed = closeJson(head + rest, sizeBytes);
        out.text = closed.text;
        out.bytes = closed.bytes;
        return out;
      }
      if (encoding === 'properties') {
        out.text = body;
        out.bytes = Buffer.byteLength(body);
        out.props = encodeUserProperties(
          userProperties({ deviceId, seq, ts: us(ts), runId, sentTs: us(sentTs) }),
        );
        return out;
      }
      const header = encodeBinaryHeader({ deviceId, seq, ts, runId, sentTs });
      const buf = Buffer.concat([header, Buffer.from(body, 'utf8')]);
      out.buf = buf;
      out.bytes = buf.length;
      return out;
    },
  };
}
