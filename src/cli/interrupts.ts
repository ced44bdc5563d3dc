/**
 * Ctrl-C and SIGTERM for a long command (`run`, `consume`): the first one asks for a graceful stop and says what
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
      process.exit(130);
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
    this.signals.on('SIGINT', this.onSignal);
    this.signals.on('SIGTERM', this.onSignal);
  }

  dispose(): void {
    this.signals.off('SIGINT', this.onSignal);
    this.signals.off('SIGTERM', this.onSignal);
  }
}
