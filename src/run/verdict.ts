import { ExitCode } from '../errors.js';
import type { ValidityCheck } from '../scenario/schema.js';
import type { Summary } from '../stats/summary.js';

/**
 * Is the run valid: did it offer and observe the load it planned? A load test that passes when the broker is
 * down tells a team to ship, so an invalid run never passes, whatever its thresholds say. Each check can be
 * accepted (opted out of) by name.
 *
 * - `connected`  at least one device connected (a generator with devices)
 * - `offered`    sent ≥ minOffered × scheduled (a generator)
 * - `observed`   the consumer received at least one message of this run (a consumer; with a generator, when
 *                something was sent)
 * - `saturated`  the generator was not saturated (its numbers would describe itself, not the system under test)
 */
export { VALIDITY_CHECKS, type ValidityCheck } from '../scenario/schema.js';

export interface ValidityOptions {
  /** checks the user opted out of */
  accept: readonly ValidityCheck[];
  /** the least fraction of scheduled messages that must have been sent (default 0.95) */
  minOffered: number;
}

export const DEFAULT_MIN_OFFERED = 0.95;
export const DEFAULT_VALIDITY: ValidityOptions = { accept: [], minOffered: DEFAULT_MIN_OFFERED };

export interface Verdict {
  valid: boolean;
  /** one line per failed check, `<check>: <what happened>` */
  reasons: string[];
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

export function judge(
  s: Summary,
  sides: { generator: boolean; consumer: boolean },
  o: ValidityOptions,
): Verdict {
  const reasons: string[] = [];
  const check = (name: ValidityCheck, failed: boolean, why: () => string) => {
    if (failed && !o.accept.includes(name)) reasons.push(`${name}: ${why()}`);
  };
  const m = s.messages;
  if (sides.generator) {
    check(
      'connected',
      s.devices.target > 0 && s.devices.connectedPeak === 0,
      () => `no device connected (0 of ${s.devices.target})`,
    );
    // a plan that schedules nothing (a connection test: -i 1h) offered all it planned
    check(
      'offered',
      m.sent < o.minOffered * m.scheduled,
      () =>
        `${m.scheduled - m.sent} of ${m.scheduled} scheduled messages were never sent ` +
        `(sent ${pct(m.sent / m.scheduled)}, at least ${pct(o.minOffered)} needed)`,
    );
  }
  if (sides.consumer) {
    const unique = Math.max(0, m.received - m.duplicated - m.foreign);
    const expected = sides.generator ? m.sent > 0 : true;
    check('observed', expected && unique === 0, () =>
      sides.generator
        ? `the consumer received none of the ${m.sent} messages sent (is it reading the right place?)`
        : 'the consumer received no message of this run',
    );
  }
  check(
    'saturated',
    s.generator.saturated,
    () => 'the generator was saturated (see generator in summary.json)',
  );
  return { valid: reasons.length === 0, reasons };
}

/**
 * The exit code of a finished run from its summary: 0 passed, 5 invalid (it never passes), 1 a threshold failed
 * or it stopped early. `fleetload run` exits with it; `fleetload ui` shows it for every run in its history.
 */
export function exitCodeOfSummary(summary: Summary): number {
  if (summary.passed) return ExitCode.ok;
  // a lost worker: the run failed with what it had (its validity then says little)
  if (summary.incomplete) return ExitCode.thresholdFailed;
  return summary.valid === false ? ExitCode.invalidRun : ExitCode.thresholdFailed;
}
