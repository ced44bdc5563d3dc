/**
 * Errors carry a code, a message a person can act on, and the exit code the CLI maps them to.
 * Only src/cli exits; everything else throws these.
 */
export const ExitCode = {
  ok: 0,
  thresholdFailed: 1,
  invalidInput: 2,
  unreachable: 3,
  internal: 4,
  /** the run did not offer or observe the load it planned (summary.json `valid: false`) */
  invalidRun: 5,
  /** a second Ctrl-C: aborted at once, no summary */
  aborted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'E_USAGE' // unknown flag, missing value
  | 'E_SCENARIO' // scenario validation failed
  | 'E_FILE' // a file could not be read or parsed
  | 'E_URL' // a URL is malformed or unsupported
  | 'E_THRESHOLD' // a threshold expression does not parse
  | 'E_OUT' // results folder cannot be written
  | 'E_UNREACHABLE' // system under test could not be reached
  | 'E_INTERNAL';

const exitFor: Record<ErrorCode, ExitCode> = {
  E_USAGE: ExitCode.invalidInput,
  E_SCENARIO: ExitCode.invalidInput,
  E_FILE: ExitCode.invalidInput,
  E_URL: ExitCode.invalidInput,
  E_THRESHOLD: ExitCode.invalidInput,
  E_OUT: ExitCode.invalidInput,
  E_UNREACHABLE: ExitCode.unreachable,
  E_INTERNAL: ExitCode.internal,
};

export class FleetloadError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  /** Every problem found, when validation found several; `message` joins them. */
  readonly problems: readonly string[];

  constructor(code: ErrorCode, message: string | readonly string[], options?: { cause?: unknown }) {
    const problems = typeof message === 'string' ? [message] : message;
    super(problems.join('; '), options);
    this.name = 'FleetloadError';
    this.code = code;
    this.exitCode = exitFor[code];
    this.problems = problems;
  }
}

export function isFleetloadError(e: unknown): e is FleetloadError {
  return e instanceof FleetloadError;
}
