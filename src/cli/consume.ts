import { DEFAULT_VALIDITY } from '../run/verdict.js';
import { LiveLine, terminalOutput } from '../sinks/console.js';
import { FLEETLOAD_VERSION } from '../version.js';
import { type CliIo, exitCodeOf, printSummary, writeReport } from './commands.js';
import { CONSUME_HELP, parseConsumeArgs } from './consume-args.js';
import { Interrupts } from './interrupts.js';

/**
 * `fleetload consume`: the standalone consumer (the seed's consumer), the run pipeline without an engine
 * (src/run/consume.ts). Settings: flags > FLEETLOAD_<FLAG> > the seed's variables (EVENTHUB_CONNECTION_STRING,
 * EVENTHUB_NAME, CONSUMER_GROUP, STORAGE_CONNECTION_STRING, NUM_PARTITION, TOTAL_PARTITION; also
 * PARTITION_INDEX/PARTITION_COUNT) > defaults. Exit codes as `run`.
 */
export async function consumeCmd(argv: string[], io: CliIo): Promise<number> {
  const cfg = parseConsumeArgs(argv, io.env, io.cwd);
  if (cfg === 'help') {
    io.stdout.write(CONSUME_HELP);
    return 0;
  }
  for (const w of cfg.warnings) io.stderr.write(`fleetload: ${w}\n`);
  const human = cfg.json ? io.stderr : io.stdout;
  const live = new LiveLine(human);
  const interrupts = new Interrupts(
    io.signals ?? process,
    (line) => live.println(line),
    io.stderr,
    'stopping: reading for the grace period, then writing the summary (Ctrl-C again to abort)',
  );
  // a busy --prometheus-port is an input error (exit 2), before the source attaches
  const { createSinks } = await import('../sinks/index.js');
  const sinks = await createSinks(cfg.sinks, {
    runId: cfg.sinks.runId,
    segment: cfg.segment,
    role: 'consumer',
    log: (line) => live.println(line),
  });
  interrupts.listen();
  try {
    const { executeConsume } = await import('../run/consume.js');
    const { summary, dir, resultsError } = await executeConsume({
      source: cfg.source,
      runId: cfg.runId,
      folderId: cfg.folderId,
      openResults: async () =>
        (await import('../sinks/results.js')).ResultsFolder.open(
          cfg.out,
          cfg.folderId,
          cfg.resolved,
          'consume',
        ),
      runTimeMs: cfg.runTimeMs,
      graceMs: cfg.graceMs,
      format: cfg.format,
      fields: cfg.fields,
      host: cfg.host,
      qos: cfg.qos,
      mqttVersion: cfg.mqttVersion,
      thresholds: cfg.thresholds,
      validity: { ...DEFAULT_VALIDITY, accept: cfg.accept },
      outputs: [
        terminalOutput(live, {
          runTimeMs: cfg.runTimeMs ?? 0,
          devicesTarget: 0,
          header: (i) => `fleetload ${FLEETLOAD_VERSION} · consume · ${i.url} · results in ${i.dir}`,
        }),
        ...sinks.listeners,
      ],
      // with --influx-required, InfluxDB refusing the first batch stops the consumer; sinks.close then throws
      interrupt: Promise.race([interrupts.requested, sinks.failure.then(() => {})]),
      timePort: cfg.timePort,
      sinks,
      log: (line) => live.println(line),
    });
    live.done();
    if (!resultsError) await writeReport(dir, (line) => live.println(line));
    printSummary(io, human, summary, dir, cfg.json, resultsError, 'consume');
    // final InfluxDB flush; /metrics stays up for --prometheus-grace (Ctrl-C skips the wait)
    await sinks.close({ interrupted: summary.interrupted === true, cancel: interrupts.requested });
    return exitCodeOf(summary);
  } finally {
    live.done();
    interrupts.dispose();
    await sinks.close({ interrupted: true }).catch(() => {});
  }
}
