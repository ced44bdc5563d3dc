/**
 * What every message carries for the consumer (DESIGN.md "Telemetry on the wire"), whatever its encoding, and the
 * limits both sides check. The field names are the same in the JSON object and in the MQTT 5 user properties.
 */
export interface WireMeta {
  deviceId: string;
  /** per device, from 1, never reused within a run: 1..2³²−1 */
  seq: number;
  /** scheduled send time, ms since epoch (fractional) */
  ts: number;
  runId: string;
  /** actual send time, ms since epoch, when the producer sends it */
  sentTs?: number | undefined;
}

/** The field names on the wire (JSON keys and user-property names). */
export const FIELD = {
  deviceId: 'deviceId',
  seq: 'seq',
  ts: 'ts',
  sentTs: 'sentTs',
  runId: 'runId',
} as const;

export const MAX_SEQ = 0xffff_ffff;

/**
 * A seq more than this above its device's highest seq seen is not a gap to account for but an anomaly (a forged
 * or corrupt message): the consumer's ledger counts it and fills nothing (src/consumer/ledger.ts).
 */
export const MAX_SEQ_JUMP = 1 << 24;

/** A valid seq: an integer in 1..2³²−1 (the ledger and the binary header keep u32 seqs). */
export const validSeq = (v: number): boolean => Number.isInteger(v) && v >= 1 && v <= MAX_SEQ;
/** A valid timestamp: finite and after the epoch. */
export const validTs = (v: number): boolean => Number.isFinite(v) && v > 0;
