/**
 * Telemetry payload per the DESIGN.md wire contract: a JSON object with `deviceId`, `seq`, `ts` (the scheduled
 * send time, ms since epoch, fractional) and `runId`, plus a reading, padded to `sizeBytes` when asked.
 * Built as a string with as little work as possible: it is on the per-message path.
 */

const PAD_CHUNK = 'x'.repeat(4096);

function padding(n: number): string {
  if (n <= PAD_CHUNK.length) return PAD_CHUNK.slice(0, n);
  return PAD_CHUNK.repeat(Math.ceil(n / PAD_CHUNK.length)).slice(0, n);
}

export interface PayloadBuilder {
  /** returns the payload text and its byte length */
  /** `deviceIdJson` is the device id already JSON-quoted (done once per device, not per message) */
  build(deviceIdJson: string, deviceIndex: number, seq: number, ts: number): { text: string; bytes: number };
}

export function jsonPayload(runId: string, sizeBytes: number): PayloadBuilder {
  const runPart = `,"runId":${JSON.stringify(runId)},"temperature":`;
  const out = { text: '', bytes: 0 };
  return {
    build(deviceIdJson, deviceIndex, seq, ts) {
      const temp = 20 + ((seq * 7 + deviceIndex * 13) % 100) / 10;
      const tsText = Math.round(ts * 1000) / 1000;
      let text = `{"deviceId":${deviceIdJson},"seq":${seq},"ts":${tsText}${runPart}${temp}`;
      let bytes = Buffer.byteLength(text) + 1;
      const room = sizeBytes - bytes;
      if (room >= 10) {
        text += `,"pad":"${padding(room - 9)}"}`;
        bytes = sizeBytes;
      } else if (room > 0) {
        text += `${' '.repeat(room)}}`;
        bytes = sizeBytes;
      } else {
        text += '}';
      }
      out.text = text;
      out.bytes = bytes;
      return out;
    },
  };
}
