import { resolve } from 'node:path';
import { alreadyRaised, checkCapacity, readLimits, reexecWithFileLimit } from '../engine/limits.js';
import { FleetloadError } from '../errors.js';
import { rawTcpAvailable } from '../mqtt/raw-tcp.js';
import { rawTlsAvailable } from '../mqtt/raw-tls.js';
import { exitCodeOfSummary } from '../run/verdict.js';
import { formatDuration } from '../scenario/duration.js';
import { loadScenario, redactSecrets } from '../scenario/load.js';
import { devicesAt, expectedMessages, plan, steadyFromMs } from '../scenario/plan.js';
import { type Scenario, scenarioJsonSchema } from '../scenario/schema.js';
import { formatSummary, LiveLine, terminalOutput } from '../sinks/console.js';
import type { Sinks } from '../sinks/index.js';
import type { Summary } from '../stats/summary.js';
import { parseThreshold } from '../stats/thresholds.js';
import { FLEETLOAD_VERSION } from '../version.js';
import type { Dashboard } from '../web/server.js';
import { parseRunArgs } from './args.js';
import { MAIN_HELP, PLAN_HELP, RUN_HELP, SCHEMA_HELP } from './help.js';
import { Interrupts, keepServing } from './interrupts.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  cwd: string;
  /** where Ctrl-C comes from; the process by default */
  signals?: NodeJS.EventEmitter;
}

/**
 * Dispatches a command; returns the exit code. Throws FleetloadError for user mistakes. Commands and heavy
 * modules (MQTT, TLS, the dashboard, cloud SDKs) are imported when used, so answers to bad input come fast.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    io.stdout.write(MAIN_HELP);
    return 0;
  }
  if (cmd === '-v' || cmd === '--version' || cmd === 'version') {
    io.stdout.write(`${FLEETLOAD_VERSION}\n`);
    return 0;
  }
  switch (cmd) {
    case 'run':
      return runCmd(rest, io);
    case 'schema':
      return schemaCmd(rest, io);
    case 'plan':
      return planCmd(rest, io);
    case 'report':
      return (await import('./report.js')).reportCmd(rest, io);
    case 'compare':
      return (await import('./compare.js')).compareCmd(rest, io);
    case 'consume':
      return (await import('./consume.js')).consumeCmd(rest, io);
    case 'merge':
      return (await import('./merge.js')).mergeCmd(rest, io);
    case 'worker':
      // a generator process of `run --workers K` (started by it, over IPC)
      return (await import('../run/worker-child.js')).runWorker();
    case 'certs':
      return (await import('./certs.js')).certsCmd(rest, io);
    case 'ui':
      return (await import('./ui.js')).uiCmd(rest, io);
    default:
      throw new FleetloadError(
        'E_USAGE',
        `unknown command "${cmd}"; commands: run, consume, merge, plan, schema, report, compare, certs, ui (fleetload --help)`,
      );
  }
}

/** report.html from the finished results folder; a failed report never turns a finished run into an error. */
export async function writeReport(dir: string, log: (line: string) => void): Promise<void> {
  const report = await import('../report/html.js');
  await report
    .writeReport(dir)
    .catch((e: unknown) => log(`report.html not written: ${e instanceof Error ? e.message : String(e)}`));
}

/** The exit code of a finished run: 0 passed, 5 invalid (it never passes), 1 a threshold failed or stopped early. */
export function exitCodeOf(summary: Summary): number {
  return exitCodeOfSummary(summary);
}

/**
 * The summary for people (and summary.json on stdout with --json); when the results folder could not be written
 * the summary still gets out, with the reason.
 */
export function printSummary(
  io: CliIo,
  human: CliIo['stdout'],
  summary: Summary,
  dir: string,
  json: boolean,
  resultsError: string | undefined,
  command: 'run' | 'consume' = 'run',
): void {
  human.write(`${formatSummary(summary, dir, { color: Boolean(human.isTTY), command })}\n`);
  if (resultsError) {
    io.stderr.write(`fleetload: the results folder ${dir} is incomplete: ${resultsError}\n`);
  }
  if (json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

function load(argv: string[], io: CliIo) {
  const args = parseRunArgs(argv);
  if (args.help) return undefined;
  const loaded = loadScenario({ file: args.file, flags: args.flags, env: io.env, cwd: io.cwd });
  for (const w of loaded.warnings) io.stderr.write(`fleetload: ${w}\n`);
  const note = socketsNote(loaded.scenario, rawTcpAvailable(), rawTlsAvailable());
  if (note) io.stderr.write(`fleetload: ${note}\n`);
  // thresholds were validated with the rest of the scenario; parsed here for the run
  const thresholds = loaded.scenario.thresholds.map((t) => parseThreshold(t));
  return { ...loaded, thresholds };
}

/** Says so when TCP or TLS devices cannot use raw handles here (their cost per device and per message is higher). */
export function socketsNote(s: Scenario, rawTcp: boolean, rawTls: boolean = rawTcp): string | undefined {
  if (s.sockets !== 'raw') return undefined;
  const plain = s.host === undefined || /^(mqtt|tcp):/.test(s.host);
  const tls = s.host !== undefined && /^(mqtts|ssl|tls):/.test(s.host);
  if (plain && !rawTcp)
    return `warning: this Node (${process.version}) has no raw TCP handle API; devices use net.Socket (more CPU per message and memory per device)`;
  if (tls && !rawTls)
    return `warning: this Node (${process.version}) has no raw TLS handle API; devices use tls.connect (more CPU per connect and memory per device)`;
  return undefined;
}

function schemaCmd(argv: string[], io: CliIo): number {
  if (argv.some((a) => a === '-h' || a === '--help')) {
    io.stdout.write(SCHEMA_HELP);
    return 0;
  }
  if (argv.length > 0) {
    throw new FleetloadError(
      'E_USAGE',
      `schema takes no arguments, not "${argv[0]}"; see fleetload schema --help`,
    );
  }
  io.stdout.write(`${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
  return 0;
}

function planCmd(argv: string[], io: CliIo): number {
  const loaded = load(argv, io);
  if (!loaded) {
    io.stdout.write(PLAN_HELP);
    return 0;
  }
  io.stdout.write(describePlan(loaded.scenario));
  return 0;
}

export function describePlan(s: Scenario): string {
  const p = plan(s, s.segment);
  const seg = s.segment.count > 1 ? ` (segment ${s.segment.index}/${s.segment.count})` : '';
  const share =
    s.segment.count > 1
      ? [
          `  segment       ${s.segment.index}/${s.segment.count}: ` +
            (p.count > 0
              ? `devices ${p.first}…${p.first + p.count - 1} (${p.count} of ${s.devices})`
              : `no devices (${s.devices} devices, ${s.segment.count} segments)`) +
            `, ${+p.spawnRate.toFixed(3)}/s of the spawn rate, joining at the fleet's pace`,
        ]
      : [];
  const steadyMs = steadyFromMs(p);
  const expected = expectedMessages(p);
  const fleet = s.stages
    ? `  stages        ${s.stages.map((st) => `${formatDuration(st.durationMs)}:${st.devices}`).join(' → ')}` +
      ` (linear from 0; joining devices connect at ${s.spawnRate}/s)` +
      `\n  over time     ${[0.25, 0.5, 0.75, 1].map((f) => `${formatDuration(Math.round(s.runTimeMs * f))} ${devicesAt(p, Math.min(Math.round(s.runTimeMs * f), s.runTimeMs - 1))}`).join(', ')} devices`
    : `  ramp          ${s.spawnRate}/s → all connected after ${formatDuration(Math.round((s.devices / s.spawnRate) * 1000))}` +
      (steadyMs >= s.runTimeMs ? ` (longer than the run time ${formatDuration(s.runTimeMs)}!)` : '');
  return [
    `run ${s.runId}`,
    `  broker        ${s.host ? redactSecrets({ host: s.host }).host : 'embedded (aedes, MQTT 3.1.1, free loopback port)'}`,
    `  devices       ${s.devices} (${s.deviceId} …), clientId ${s.clientId}, topic ${s.topic}`,
    fleet,
    ...share,
    `  messages      every ${formatDuration(s.intervalMs)} per device, QoS ${s.qos}, MQTT ${s.mqttVersion}` +
      ` → ${p.msgPerSecAtFullFleet.toFixed(1)} msg/s at full fleet, ${s.jitterMs > 0 ? '≈' : ''}${expected} scheduled in ${formatDuration(s.runTimeMs)}${seg}` +
      (s.messagesPerDevice !== undefined ? ` (at most ${s.messagesPerDevice} per device)` : ''),
    `  consumer      ${s.consumer}`,
    `  thresholds    ${s.thresholds.length ? s.thresholds.join(', ') : 'none'}`,
    `  results       ${s.out}/${s.runId}/`,
    '',
  ].join('\n');
}

async function runCmd(argv: string[], io: CliIo): Promise<number> {
  const loaded = load(argv, io);
  if (!loaded) {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  const { scenario, resolved, thresholds } = loaded;
  // every device needs a descriptor and a local port: say so now, or re-run with a raised soft limit
  // with --workers the devices are spread over the workers: the fd limit is per process
  const perProcess = Math.ceil(scenario.devices / scenario.workers);
  const capacity = checkCapacity(scenario.devices, scenario.sourceIps.length, readLimits(), perProcess);
  if (!capacity.ok && !alreadyRaised(io.env))
    return reexecWithFileLimit(capacity.raiseTo, process.argv.slice(1));
  // with --json, stdout carries only summary.json; everything for people goes to stderr
  const human = scenario.json ? io.stderr : io.stdout;
  const live = new LiveLine(human);
  // a second Ctrl-C aborts: the embedded broker exits by itself when this process goes (it watches its IPC channel)
  const interrupts = new Interrupts(
    io.signals ?? process,
    (line) => live.println(line),
    io.stderr,
    'stopping: draining in-flight messages, writing the summary (Ctrl-C again to abort)',
  );
  const interrupt = interrupts.requested;
  // the dashboard is the first thing that can fail: a busy port is an input error (exit 2), nothing started yet
  let dashboard: Dashboard | undefined;
  if (!scenario.headless) {
    const { startDashboard } = await import('../web/server.js');
    dashboard = await startDashboard({
      host: scenario.webHost,
      port: scenario.webPort,
      runId: scenario.runId,
      scenario,
      // a later Ctrl-C then aborts, as after a first Ctrl-C
      onStop: () =>
        interrupts.request(
          'stopping (Stop pressed in the dashboard): draining in-flight messages, writing the summary',
        ),
      log: (line) => io.stderr.write(`${line}\n`),
      token: scenario.webToken,
      allowedHosts: scenario.webAllowedHosts,
    });
    live.println(`dashboard: ${dashboard.url}`);
    for (const line of dashboard.notices) live.println(line);
  }
  // a busy --prometheus-port is an input error too (exit 2): the sinks start before anything of the run
  const { createSinks } = await import('../sinks/index.js');
  let sinks: Sinks;
  try {
    sinks = await createSinks(scenario, {
      runId: scenario.runId,
      segment: scenario.segment,
      log: (line) => live.println(line),
    });
  } catch (e) {
    await dashboard?.close();
    throw e;
  }
  interrupts.listen();
  const terminal = terminalOutput(live, {
    runTimeMs: scenario.runTimeMs,
    graceMs: scenario.graceMs,
    devicesTarget: scenario.devices,
    header: (i) => `fleetload ${FLEETLOAD_VERSION} · run ${i.runId} · ${i.url} · results in ${i.dir}`,
  });
  try {
    // the engine, MQTT and sinks load only once the input is known to be good: a typo answers at once
    const { executeRun } = await import('../run/run.js');
    const { summary, dir, resultsError, unreachable } = await executeRun({
      scenario,
      openResults: async () =>
        (await import('../sinks/results.js')).ResultsFolder.open(
          scenario.out,
          scenario.runId,
          redactSecrets(resolved),
        ),
      thresholds,
      validity: { accept: scenario.accept, minOffered: scenario.minOffered },
      outputs: [
        terminal,
        ...(dashboard ? [dashboard.listener] : []),
        ...sinks.listeners,
        ...(scenario.junit
          ? [(await import('../sinks/junit.js')).junitOutput(resolve(io.cwd, scenario.junit))]
          : []),
      ],
      // with --influx-required, InfluxDB refusing the first batch stops the run; sinks.close then throws (exit 3)
      interrupt: Promise.race([interrupt, sinks.failure.then(() => {})]),
      sinks,
      log: (line) => live.println(line),
    });
    live.done();
    if (!resultsError) await writeReport(dir, (line) => live.println(line));
    printSummary(io, human, summary, dir, scenario.json, resultsError);
    // final InfluxDB flush; /metrics stays up for --prometheus-grace (Ctrl-C skips the wait)
    await sinks.close({ interrupted: summary.interrupted === true, cancel: interrupt });
    // --keep-ui: the dashboard (with the summary) stays until the next signal; the exit code stays the run's
    if (scenario.keepUi && dashboard)
      await keepServing(io.signals ?? process, interrupts, io.stderr, dashboard.url);
    if (unreachable) throw unreachable;
    return exitCodeOf(summary);
  } finally {
    live.done();
    interrupts.dispose();
    await dashboard?.close();
    await sinks.close({ interrupted: true }).catch(() => {});
  }
}
