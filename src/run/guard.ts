import type { Clock } from '../clock.js';
import type { IntervalFigures, Output, RunInfo } from './output.js';

/**
 * Every call to an output goes through here (Locust's EventHook.fire, k6's output lifecycle): an output that
 * throws, rejects or does not answer within `timeoutMs` is disabled for the rest of the run and remembered, and
 * the run goes on. Only the run pipeline calls outputs, and only through this.
 */

export interface OutputFailure {
  output: string;
  /** the call that failed: start, interval, finish or close */
  during: keyof Pick<Output, 'start' | 'interval' | 'finish' | 'close'>;
  reason: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class GuardedOutputs {
  readonly failures: OutputFailure[] = [];
  private readonly live: Array<{ name: string; o: Output }>;

  constructor(
    outputs: readonly Output[],
    private readonly clock: Clock,
    private readonly log: (line: string) => void,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    this.live = outputs.map((o, i) => ({ name: o.name ?? `output ${i + 1}`, o }));
  }

  start(info: RunInfo): Promise<void> {
    return this.each('start', (o) => o.start?.(info));
  }

  /** Resolves once every output has taken the interval (or failed, or timed out). */
  interval(f: IntervalFigures): Promise<void> {
    return this.each('interval', (o) => o.interval?.(f));
  }

  finish(summary: Parameters<NonNullable<Output['finish']>>[0]): Promise<void> {
    return this.each('finish', (o) => o.finish?.(summary));
  }

  close(): Promise<void> {
    return this.each('close', (o) => o.close?.());
  }

  private async each(during: OutputFailure['during'], call: (o: Output) => unknown): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const entry of [...this.live]) {
      let result: unknown;
      try {
        result = call(entry.o);
      } catch (e) {
        this.fail(entry, during, e);
        continue;
      }
      if (result instanceof Promise) pending.push(this.settle(entry, during, result));
    }
    if (pending.length > 0) await Promise.all(pending);
  }

  private settle(
    entry: { name: string; o: Output },
    during: OutputFailure['during'],
    p: Promise<unknown>,
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.fail(entry, during, new Error(`no answer within ${this.timeoutMs} ms`));
        resolve();
      }, this.timeoutMs);
      p.then(
        () => {
          this.clock.clearTimeout(timer);
          resolve();
        },
        (e: unknown) => {
          this.clock.clearTimeout(timer);
          this.fail(entry, during, e);
          resolve();
        },
      );
    });
  }

  private fail(entry: { name: string; o: Output }, during: OutputFailure['during'], e: unknown): void {
    const i = this.live.indexOf(entry);
    if (i === -1) return;
    this.live.splice(i, 1);
    const reason = e instanceof Error ? e.message : String(e);
    this.failures.push({ output: entry.name, during, reason });
    this.log(`output ${entry.name} failed in ${during}() and is disabled for the rest of the run: ${reason}`);
  }
}
