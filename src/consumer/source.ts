import { redactText } from '../redact.js';
import type { SourceKind } from '../scenario/consume-schema.js';
import type { UserProperties } from '../wire/index.js';

/**
 * Where the consumer reads: every source (mqtt, nats, eventhubs) implements this, and every one passes the same
 * contract suite (test/integration/sources.contract.test.ts).
 *
 * Life cycle: `open(deliver)` attaches (rejects with FleetloadError E_UNREACHABLE when it cannot: exit 3) and from
 * then on calls `deliver` once per message. The run/consume loop cuts an interval, calls `markInterval()` in the
 * same synchronous step as the stats snapshot (so the mark covers exactly the messages in that snapshot), hands the
 * interval to every sink, and only then calls `commit()`: a source that checkpoints (Event Hubs) checkpoints what
 * the last mark covered, never more. `close()` detaches; it never throws.
 */
export interface Delivery {
  payload: Buffer;
  /** the source's enqueue time when it has one (JetStream stream timestamp, Event Hubs enqueuedTimeUtc), else
   * the local receive time; ms since epoch */
  arrivalMs: number;
  /** MQTT 5 user properties / Event Hubs application properties */
  userProperties?: Readonly<UserProperties> | undefined;
  /** partition (Event Hubs) or stream/consumer the message came through */
  partition?: string | undefined;
  /** the source's enqueue time, when it has one (equal to arrivalMs then) */
  enqueuedMs?: number | undefined;
}

export type Deliver = (d: Delivery) => void;

export { SOURCE_KINDS, type SourceKind } from '../scenario/consume-schema.js';

export interface Source {
  readonly kind: SourceKind;
  /** for logs; secrets never appear in it */
  readonly description: string;
  open(deliver: Deliver): Promise<void>;
  /** the messages delivered so far belong to the interval being cut (see above) */
  markInterval(): void;
  /** the last marked interval reached the sinks: checkpoint it (no-op for sources without checkpoints) */
  commit(): Promise<void>;
  /** the last sequence number checkpointed per partition, for sources with checkpoints (Event Hubs) */
  checkpoints?(): Record<string, number> | undefined;
  close(): Promise<void>;
}

/** `{ a: 1, sharedAccessKey: "x" }`-style secrets out of a connection string: `Key=***`. */
export function redactConnectionString(s: string): string {
  return s.replace(
    /\b(SharedAccessKey|SharedAccessSignature|AccountKey|Password|Pwd|sig)=[^;&]*/gi,
    '$1=***',
  );
}

/** `mqtt://user:secret@host` → `mqtt://user:***@host`: secrets never reach logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // not a URL for WHATWG (e.g. a port out of range): redact by pattern, never echo it raw
    return redactText(url);
  }
}
