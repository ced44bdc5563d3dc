import { ExitCode } from '../errors.js';

/** Ctrl-C, `kill`, and a closed terminal (SIGHUP, e.g. an ssh session that drops) all stop gracefully. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Ctrl-C, SIGTERM and SIGHUP for a long command (`run`, `consume`): the first one asks for a graceful stop and says what
 * happens now, a second one aborts at once (exit 130). Other ways to stop (the dashboard's Stop) go through
 * `request`, so a Ctrl-C after them aborts too.
 */
export class Interrupts {
  /** stops asked for so far (signals and `request`) */
  count = 0;
  /** resolves at the first stop */
  readonly requested: Promise<void>;
  private resolve: () => void = () => {};
  private readonly onSignal = (): void => {
    if (this.count > 0) {
      this.stderr.write('fleetload: aborted\n');
      process.exit(ExitCode.aborted);
    }
    this.request(this.stopping);
  };

  constructor(
    private readonly signals: NodeJS.EventEmitter,
    private readonly say: (line: string) => void,
    private readonly stderr: NodeJS.WritableStream,
    /** what the first Ctrl-C does, for people */
    private readonly stopping: string,
  ) {
    this.requested = new Promise<void>((r) => {
      this.resolve = r;
    });
  }

  /** A graceful stop (says `line`); false when one was already asked for. */
  request(line: string): boolean {
    if (this.count > 0) return false;
    this.count = 1;
    this.say(line);
    this.resolve();
    return true;
  }

  listen(): void {
    for (const sig of SIGNALS) this.signals.on(sig, this.onSignal);
  }

  dispose(): void {
    for (const sig of SIGNALS) this.signals.off(sig, this.onSignal);
  }
}

/**
 * `run --keep-ui`: after the run, the dashboard stays up until Ctrl-C, SIGTERM or SIGHUP (the run's own stop
 * handling is over: one signal now just ends the wait).
 */
export async function keepServing(
  signals: NodeJS.EventEmitter,
  interrupts: Interrupts,
  stderr: NodeJS.WritableStream,
  url: string,
): Promise<void> {
  interrupts.dispose();
  stderr.write(`fleetload: the dashboard stays up at ${url} (--keep-ui); Ctrl-C or SIGTERM to exit\n`);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      for (const sig of SIGNALS) signals.off(sig, done);
      resolve();
    };
    for (const sig of SIGNALS) signals.on(sig, done);
  });
}
