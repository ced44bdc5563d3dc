import { compilePayloadTemplate, type PayloadTemplate } from '../scenario/payload-template.js';
import {
  encodeBinaryHeader,
  encodeUserProperties,
  jsonMetaHead,
  jsonRunPart,
  userProperties,
} from '../wire/index.js';

/**
 * Telemetry payloads: the metadata in one of the wire's three encodings (src/wire/: the format itself lives
 * there), plus what the producer adds around it — a reading, padding to `sizeBytes`, or the user's template:
 * - `json` (default): the metadata fields first, then the reading (and `pad`);
 * - `properties`: MQTT 5 user properties; the payload is the reading (and padding);
 * - `binary`: the binary header (v2, with sentTs) followed by padding, for tiny payloads.
 * Built with as little work as possible: this is the per-message path (the default JSON message on plain
 * connections goes through src/engine/json-packet.ts instead, byte by byte).
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
  const runPart = jsonRunPart(runId);
  const out: PayloadOut = { text: '', buf: undefined, bytes: 0, props: undefined };
  return {
    build(_deviceId, deviceIdJson, deviceIndex, seq, ts, sentTs) {
      const head = `${jsonMetaHead(deviceIdJson, seq, ts, sentTs, runPart)},"temperature":${reading(seq, deviceIndex)}`;
      const closed = closeJson(head, sizeBytes);
      out.text = closed.text;
      out.bytes = closed.bytes;
      return out;
    },
  };
}

export function propertiesPayload(runId: string, sizeBytes: number): PayloadBuilder {
  const out: PayloadOut = { text: '', buf: undefined, bytes: 0, props: undefined };
  return {
    build(deviceId, _deviceIdJson, deviceIndex, seq, ts, sentTs) {
      const closed = closeJson(`{"temperature":${reading(seq, deviceIndex)}`, sizeBytes);
      out.text = closed.text;
      out.bytes = closed.bytes;
      out.props = encodeUserProperties(userProperties({ deviceId, seq, ts, runId, sentTs }));
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
  const runPart = jsonRunPart(runId);
  return {
    build(deviceId, deviceIdJson, deviceIndex, seq, ts, sentTs) {
      const body = render({ deviceId, index: deviceIndex, seq, ts, runId });
      out.props = undefined;
      out.buf = undefined;
      if (encoding === 'json') {
        // body is a JSON object (checked at load): splice the metadata in after its opening brace
        const open = body.indexOf('{');
        const inner = body.slice(open + 1).trimStart();
        const head = jsonMetaHead(deviceIdJson, seq, ts, sentTs, runPart);
        const rest = inner.startsWith('}') ? '' : `,${inner.slice(0, inner.lastIndexOf('}'))}`;
        const closed = closeJson(head + rest, sizeBytes);
        out.text = closed.text;
        out.bytes = closed.bytes;
        return out;
      }
      if (encoding === 'properties') {
        out.text = body;
        out.bytes = Buffer.byteLength(body);
        out.props = encodeUserProperties(userProperties({ deviceId, seq, ts, runId, sentTs }));
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
