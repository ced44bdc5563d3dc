/**
 * The run in progress, for the one place that must know without being told: the last-resort handler of
 * src/cli/main.ts, which names the results folder when a bug ends the process.
 */
export const currentRun: { resultsDir: string | undefined } = { resultsDir: undefined };
