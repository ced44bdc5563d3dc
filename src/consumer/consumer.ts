import type { Clock } from '../engine/clock.js';
import type { Stats } from '../stats/stats.js';
import { decodeJson } from './decode.js';
import { Ledger } from './ledger.js';

/**
 * Turns arriving messages into measurements: decode the metadata, keep the ledger, record delay.
 * `delay = arrival − ts` (ts = the scheduled send time), corrected by `clockOffsetMs` (producer clock minus
 * consumer clock, when known). Negative delays are counted and recorded as 0 in the histogram, never hidden.
 */
export interface ConsumerOptions {
  stats: Stats;
  clock: Clock;
  /** only this run's messages count; others are foreign */
  runId?: string | undefined;
  clockOffsetMs?: number;
}

export class Consumer {
  readonly ledger = new Ledger();
  private readonly stats: Stats;
  private readonly clock: Clock;
  private readonly runId: string | undefined;
  clockOffsetMs: number;
  /** a few foreign payloads, for the report */
  readonly foreignSamples: string[] = [];

  constructor(o: ConsumerOptions) {
    this.stats = o.stats;
    this.clock = o.clock;
    this.runId = o.runId;
    this.clockOffsetMs = o.clockOffsetMs ?? 0;
  }

  /** One message; `arrivalMs` is the source's enqueue time when it has one, else local receive time. */
  onMessage(payload: Buffer, arrivalMs: number = this.clock.now()): void {
    const stats = this.stats;
    const t = decodeJson(payload);
    if (!t || (this.runId !== undefined && t.runId !== this.runId)) {
      stats.count('received');
      stats.count('foreign');
      if (this.foreignSamples.length < 5) this.foreignSamples.push(payload.subarray(0, 200).toString('utf8'));
      return;
    }
    stats.count('received');
    const outcome = this.ledger.record(t.deviceId, t.seq);
    if (outcome === 'duplicate') {
      stats.count('duplicated');
      return;
    }
    if (outcome === 'late') {
      stats.count('late');
      return;
    }
    if (outcome === 'reordered') stats.count('reordered');
    const delay = arrivalMs - (t.ts - this.clockOffsetMs);
    if (delay < 0) stats.count('negativeDelay');
    stats.latency('e2e', Math.max(0, delay));
  }
}
