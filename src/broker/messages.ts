/**
 * The IPC protocol between startEmbeddedBroker() (parent) and the broker process (child.ts). Every message has a
 * `type`; the child validates what it receives and the parent checks what it gets before trusting a field.
 */

/** Where the child listens; passed as one JSON argument on its command line. */
export interface BrokerChildOptions {
  host: string;
  /** 0: a free port chosen by the kernel, reported back in `ready`. */
  port: number;
}

/** Child → parent. */
export type BrokerChildMessage = { type: 'ready'; port: number } | { type: 'error'; message: string };

/** Parent → child. */
export type BrokerParentMessage = { type: 'stop' };

export function isBrokerChildMessage(m: unknown): m is BrokerChildMessage {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  if (r.type === 'ready') return typeof r.port === 'number' && Number.isInteger(r.port) && r.port > 0;
  if (r.type === 'error') return typeof r.message === 'string';
  return false;
}

export function isBrokerParentMessage(m: unknown): m is BrokerParentMessage {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>).type === 'stop';
}
