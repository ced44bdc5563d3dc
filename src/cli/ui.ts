import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, FleetloadError } from '../errors.js';
import { redactText } from '../redact.js';
import { outProblem } from '../scenario/files.js';
import { describeIssue, mergeSources, type Provenance, schemaProblems } from '../scenario/load.js';
import { SCENARIO_OPTIONS } from '../scenario/options.js';
import { hostNames, scenarioInput } from '../scenario/schema.js';
import type { Summary } from '../stats/summary.js';
import { isLoopbackHost } from '../web/guard.js';
import { type PreparedRun, runEnv } from '../web/ui-form.js';
import { verdictOf } from '../web/ui-history.js';
import type { UiRunStatus, UiRuns } from '../web/ui-server.js';
import { tokenizeFlags } from './args.js';
import type { CliIo } from './commands.js';
import { UI_HELP } from './help.js';

const UI_KEYS = ['webHost', 'webPort', 'out', 'webToken', 'webAllowedHosts'] as const;
const UI_OPTIONS = SCENARIO_OPTIONS.filter((o) => (UI_KEYS as readonly string[]).includes(o.key));
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Lines of a run's output kept for the UI. */
const OUTPUT_LINES = 40;
/** Finished runs remembered for History (those that left no folder show only from here). */
const PAST_RUNS = 200;

export interface UiSettings {
  webHost: string;
  webPort: number;
  out: string;
  webToken: string | undefined;
  webAllowedHosts: string[];
}

/**
 * `fleetload ui` flags and FLEETLOAD_* variables, checked like run's; every problem at once (E_USAGE). The results
 * folder is checked as run checks it (relative to `cwd`): a UI that could never write a run refuses to start.
 */
export function parseUiArgs(
  argv: string[],
  env: Record<string, string | undefined>,
  cwd: string = process.cwd(),
): UiSettings | undefined {
  const t = tokenizeFlags(argv, UI_OPTIONS, 'ui');
  if (t.help) return undefined;
  for (const p of t.positionals) t.problems.push(`unexpected argument "${p}": fleetload ui takes flags only`);
  const merged: Record<string, unknown> = {};
  const from: Provenance = new Map();
  const warnings: string[] = [];
  mergeSources(merged, from, { env, flags: t.flags, options: UI_OPTIONS }, t.problems, warnings);
  const schema = scenarioInput.pick({
    webHost: true,
    webPort: true,
    out: true,
    webToken: true,
    webAllowedHosts: true,
  });
  const parsed = schema.safeParse(merged, { error: describeIssue });
  if (!parsed.success) {
    t.problems.push(
      ...schemaProblems(parsed.error.issues, [...UI_KEYS], (path) => from.get(String(path[0])) ?? 'default'),
    );
  }
  if (parsed.success) {
    const bad = outProblem(parsed.data.out, undefined, cwd);
    if (bad) t.problems.push(`out: ${bad} (${from.get('out') ?? 'default'})`);
  }
  if (t.problems.length > 0 || !parsed.success) throw new FleetloadError('E_USAGE', t.problems);
  const s = parsed.data;
  if (!isLoopbackHost(s.webHost) && s.webToken === undefined) {
    throw new FleetloadError(
      'E_USAGE',
      `--web-host ${s.webHost} is not loopback: the UI starts load tests, so off loopback it needs --web-token T ` +
        '(or FLEETLOAD_WEB_TOKEN; 16+ characters, e.g. from openssl rand -hex 24), or --web-host 127.0.0.1',
    );
  }
  return {
    webHost: s.webHost,
    webPort: s.webPort,
    out: s.out,
    webToken: s.webToken,
    webAllowedHosts: (s.webAllowedHosts ?? []).flatMap(hostNames),
  };
}

/** What an exit code of `fleetload run` says, when there is no summary to read the verdict from. */
function verdictOfCode(code: number): string {
  switch (code) {
    case ExitCode.ok:
      return 'PASSED';
    case ExitCode.thresholdFailed:
      return 'FAILED';
    case ExitCode.invalidRun:
      return 'INVALID';
    case ExitCode.invalidInput:
      return 'INPUT ERROR';
    case ExitCode.unreachable:
      return 'UNREACHABLE';
    case ExitCode.aborted:
      return 'ABORTED';
    default:
      return 'CRASHED';
  }
}

interface Current {
  status: UiRunStatus;
  child: ChildProcess;
  dashboard: string | undefined;
  exited: Promise<void>;
}

/**
 * The UI's runs: each a child `fleetload run` (src/cli/ui-child.ts) in its own process group, with its dashboard
 * on a free loopback port. Why a process and not executeRun in this one: a run that crashes (an uncaught error
 * exits the process, src/cli/main.ts) or is aborted leaves the UI up; Stop is the run's own Ctrl-C path (drain,
 * summary, exit code) sent to its group (a re-exec with a raised file limit included), and the group is killed
 * when the UI goes; a UI that dies anyway closes the IPC channel, on which the run stops itself.
 */
export class ChildRuns implements UiRuns {
  private current: Current | undefined;
  /** finished runs of this UI, newest first */
  private readonly finished: UiRunStatus[] = [];

  constructor(
    private readonly o: {
      cwd: string;
      env: Record<string, string | undefined>;
      out: string;
      log: (line: string) => void;
    },
  ) {}

  start(p: PreparedRun): UiRunStatus | { busy: string } {
    const c = this.current;
    if (c && c.status.state !== 'finished') {
      return {
        busy: `run ${c.status.runId} is still ${c.status.state}: one run at a time; stop it (Stop) or wait for it to end`,
      };
    }
    const entry = fileURLToPath(new URL('./ui-child.js', import.meta.url));
    const child = spawn(process.execPath, [...process.execArgv, entry, ...p.argv.map(String)], {
      cwd: this.o.cwd,
      env: { ...runEnv(this.o.env), ...p.secretEnv, NO_COLOR: '1' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const status: UiRunStatus = {
      runId: p.runId,
      state: 'starting',
      startedAt: new Date().toISOString(),
      command: p.command,
      exitCode: null,
      verdict: null,
      output: [],
      live: false,
    };
    const run: Current = { status, child, dashboard: undefined, exited: Promise.resolve() };
    run.exited = new Promise<void>((done) => {
      child.once('error', (err) => {
        this.line(run, `fleetload ui: the run could not start: ${err.message}`);
        this.finish(run, ExitCode.internal);
        done();
      });
      child.once('exit', (code, signal) => {
        this.finish(run, code ?? (signal === 'SIGINT' ? ExitCode.aborted : 128 + 9));
        done();
      });
    });
    child.channel?.unref();
    this.follow(run, child.stdout);
    this.follow(run, child.stderr);
    this.current = run;
    return { ...status };
  }

  stop(): UiRunStatus | undefined {
    const c = this.current;
    if (!c || c.status.state === 'finished') return undefined;
    if (c.status.state !== 'stopping') {
      c.status.state = 'stopping';
      this.signal(c, 'SIGINT');
      this.o.log(`ui: stopping run ${c.status.runId} (drain, summary)`);
    }
    return { ...c.status };
  }

  status(): UiRunStatus | undefined {
    const c = this.current;
    return c ? { ...c.status, output: [...c.status.output], live: c.dashboard !== undefined } : undefined;
  }

  dashboard(): string | undefined {
    return this.current?.dashboard;
  }

  past(): UiRunStatus[] {
    return this.finished.map((r) => ({ ...r, output: [...r.output], live: false }));
  }

  /** Stops the running test (gracefully; `abort`: at once) and waits until its process group is gone. */
  async shutdown(abort: boolean): Promise<void> {
    const c = this.current;
    if (!c || c.status.state === 'finished') return;
    if (abort) this.signal(c, 'SIGKILL');
    else this.stop();
    await c.exited;
    // what the run started (the embedded broker, workers) goes with its group
    this.signal(c, 'SIGKILL');
  }

  private signal(c: Current, sig: NodeJS.Signals): void {
    const pid = c.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone already
    }
  }

  private follow(run: Current, stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) this.line(run, l);
    });
  }

  private line(run: Current, raw: string): void {
    const l = redactText(raw.replace(/\r/g, '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''));
    if (l.trim() === '') return;
    const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+)\/?$/.exec(l.trim());
    // Stop pressed in the run's own dashboard (or a signal): the run says so
    if (/^stopping\b/.test(l) && run.status.state === 'running') run.status.state = 'stopping';
    if (m && run.status.state !== 'finished') {
      run.dashboard = m[1];
      if (run.status.state === 'starting') run.status.state = 'running';
    }
    run.status.output.push(l);
    if (run.status.output.length > OUTPUT_LINES) run.status.output.shift();
  }

  private finish(run: Current, code: number): void {
    if (run.status.state === 'finished') return;
    run.dashboard = undefined;
    run.status.state = 'finished';
    run.status.exitCode = code;
    run.status.verdict = verdictOfCode(code);
    try {
      const s = JSON.parse(
        readFileSync(join(this.o.out, run.status.runId, 'summary.json'), 'utf8'),
      ) as Summary;
      run.status.verdict = verdictOf(s);
    } catch {
      // no summary: the exit code says what happened
    }
    // the status itself: lines the run printed just before it exited may still come through its pipes
    this.finished.unshift(run.status);
    if (this.finished.length > PAST_RUNS) this.finished.pop();
    this.o.log(`ui: run ${run.status.runId} ended: ${run.status.verdict} (exit ${code})`);
  }
}

/** `fleetload ui`: serves until Ctrl-C/SIGTERM; the running test is stopped (and waited for) first. */
export async function uiCmd(argv: string[], io: CliIo): Promise<number> {
  const settings = parseUiArgs(argv, io.env, io.cwd);
  if (!settings) {
    io.stdout.write(UI_HELP);
    return 0;
  }
  const out = resolve(io.cwd, settings.out);
  const log = (line: string) => io.stderr.write(`${line}\n`);
  const runs = new ChildRuns({ cwd: io.cwd, env: io.env, out, log });
  const { startUiServer } = await import('../web/ui-server.js');
  const server = await startUiServer({
    host: settings.webHost,
    port: settings.webPort,
    token: settings.webToken,
    allowedHosts: settings.webAllowedHosts,
    out,
    cwd: io.cwd,
    env: io.env,
    runs,
    log,
  });
  io.stdout.write(`fleetload ui: ${server.url} (results in ${out}; Ctrl-C to stop)\n`);
  for (const line of server.notices) io.stdout.write(`${line}\n`);
  const signals = io.signals ?? process;
  let count = 0;
  let aborted = false;
  await new Promise<void>((resolveStop) => {
    const onSignal = (): void => {
      count++;
      if (count === 1) {
        io.stderr.write(
          'fleetload ui: stopping (a running test drains and writes its summary; Ctrl-C again to abort)\n',
        );
        runs.shutdown(false).then(resolveStop, resolveStop);
      } else {
        aborted = true;
        runs.shutdown(true).then(resolveStop, resolveStop);
      }
    };
    for (const sig of SIGNALS) signals.on(sig, onSignal);
  });
  // a signal during the close aborts, as while stopping
  await server.close();
  return aborted ? ExitCode.aborted : ExitCode.ok;
}
