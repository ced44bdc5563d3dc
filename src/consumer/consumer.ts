import type { Clock } from '../clock.js';
import { DeviceTable } from '../stats/devices.js';
import type { Stats } from '../stats/stats.js';
import { type Decoder, makeDecoder, type UserProperties } from '../wire/index.js';
import { Ledger } from './ledger.js';
import type { Delivery } from './source.js';

/**
 * Turns arriving messages into measurements: decode the metadata, keep the ledger, record delay.
 * `e2e = arrival − ts` (ts = the scheduled send time) and, when the producer sends its actual send time,
 * `e2eSend = arrival − sentTs` (platform delay without generator lateness). Both are corrected by
 * `clockOffsetMs` (producer clock minus consumer clock; 0 until distributed runs measure it). Negative delays are
 * counted (`negativeDelay`) and recorded as the histogram's lowest value, never hidden. A message whose seq is far
 * outside its device's window (ledger.ts, MAX_SEQ_JUMP) is counted `outOfWindow` *and* `foreign`: it says nothing
 * about this run's traffic (and may never have been sent), so `received − duplicated − foreign ≤ sent` holds; it
 * records no delay and leaves the ledger as it was.
 */
export interface ConsumerOptions {
  stats: Stats;
  clock: Clock;
  /** only this run's messages count; others are foreign */
  runId?: string | undefined;
  clockOffsetMs?: number;
  /** default: `auto` (binary header, user properties, JSON with the default names, the seed's format) */
  decode?: Decoder;
  /** how many foreign payloads to keep for the report (default 5) */
  foreignSamples?: number;
}

const SAMPLE_BYTES = 200;

export class Consumer {
  readonly ledger = new Ledger();
  /** per-device figures, on the ledger's device numbers (src/stats/devices.ts) */
  readonly devices = new DeviceTable();
  private readonly stats: Stats;
  private readonly clock: Clock;
  private readonly runId: string | undefined;
  private readonly decode: Decoder;
  private readonly maxSamples: number;
  clockOffsetMs: number;
  /** a few foreign payloads (text, or hex for binary), for the report */
  readonly foreignSamples: string[] = [];

  constructor(o: ConsumerOptions) {
    this.stats = o.stats;
    this.clock = o.clock;
    this.runId = o.runId;
    this.clockOffsetMs = o.clockOffsetMs ?? 0;
    this.decode = o.decode ?? makeDecoder();
    this.maxSamples = o.foreignSamples ?? 5;
  }

  /** One message from a source. */
  deliver(d: Delivery): void {
    this.onMessage(d.payload, d.arrivalMs, d.userProperties);
  }

  /** One message; `arrivalMs` is the source's enqueue time when it has one, else local receive time. */
  onMessage(payload: Buffer, arrivalMs: number = this.clock.now(), props?: Readonly<UserProperties>): void {
    const stats = this.stats;
    const t = this.decode(payload, props);
    stats.count('received');
    stats.count('bytesReceived', payload.length);
    if (!t || (this.runId !== undefined && t.runId !== this.runId)) {
      stats.count('foreign');
      if (this.foreignSamples.length < this.maxSamples) this.foreignSamples.push(sample(payload));
      return;
    }
    const outcome = this.ledger.record(t.deviceId, t.seq);
    if (outcome === 'anomalous') {
      stats.count('outOfWindow');
      stats.count('foreign');
      if (this.foreignSamples.length < this.maxSamples) this.foreignSamples.push(sample(payload));
      return;
    }
    if (outcome === 'duplicate' || outcome === 'late') {
      stats.count(outcome === 'duplicate' ? 'duplicated' : 'late');
      this.devices.record(this.ledger.lastDevice, t.deviceId, t.seq, t.ts, outcome, 0);
      return;
    }
    if (outcome === 'reordered') stats.count('reordered');
    const delay = arrivalMs - (t.ts - this.clockOffsetMs);
    if (delay < 0) stats.count('negativeDelay');
    stats.latency('e2e', Math.max(0, delay));
    this.devices.record(this.ledger.lastDevice, t.deviceId, t.seq, t.ts, outcome, Math.max(0, delay));
    if (t.sentTs !== undefined)
      stats.latency('e2eSend', Math.max(0, arrivalMs - (t.sentTs - this.clockOffsetMs)));
  }
}

function sample(p: Buffer): string {
  const head = p.subarray(0, SAMPLE_BYTES);
  const text = head.toString('utf8');
  // binary (invalid UTF-8 or control bytes): hex, so the sample stays readable in JSON and terminals
  return text.includes('\uFFFD') || /[\u0000-\u0008\u000e-\u001f]/.test(text)
    ? `hex:${head.toString('hex')}`
    : text;
}
