import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { outputTail, retry, spawnService, tmpDir } from './process.js';
import { freePort, requireService, waitForHttp } from './services.js';

/**
 * A real Prometheus per test: web/API on a free loopback port, TSDB in a temp dir, scraping `targets`
 * (host:port of /metrics endpoints) every second. It has no other listener. Killed at exit (and by the kernel when
 * the test process dies, via setpriv --pdeathsig).
 */

export interface PrometheusServer {
  /** `http://127.0.0.1:port` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** /api/v1/query (instant); `time` in ms since epoch. Throws unless status is success. */
  query(promql: string, timeMs?: number): Promise<PromResult>;
  /** /api/v1/query_range; times in ms, step in seconds. */
  queryRange(promql: string, startMs: number, endMs: number, stepS?: number): Promise<PromResult>;
  /**
   * Resolves once Prometheus has tried to scrape every target at least once (up or not). Its service discovery
   * hands new targets to the scraper only every 5 s, so a test that wants samples from a short run waits for this
   * before starting the run.
   */
  waitForScrapeAttempts(timeoutMs?: number): Promise<void>;
  /** GET an API path (e.g. /api/v1/label/run_id/values) and return `data`. */
  api<T = unknown>(path: string): Promise<T>;
  stop(): Promise<void>;
  output(): string;
}

export interface PromResult {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: Array<{
    metric: Record<string, string>;
    value?: [number, string];
    values?: Array<[number, string]>;
  }>;
}

const TAIL_LINES = 50;

function config(targets: readonly string[], bearer?: string): string {
  return `# written by test/helpers/prometheus.ts
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fleetload
    scrape_interval: 1s
    scrape_timeout: 1s
${bearer === undefined ? '' : `    authorization:\n      credentials: '${bearer}'\n`}    static_configs:
      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]
`;
}

export async function startPrometheus(opts: {
  targets: readonly string[];
  /** sent as `Authorization: Bearer` with every scrape (scrape config `authorization: credentials:`) */
  bearer?: string;
  startTimeoutMs?: number;
}): Promise<PrometheusServer> {
  const binary = requireService('prometheus');
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const tail = outputTail(TAIL_LINES);
  const output = tail.text;
  // A free port can be taken before prometheus binds it: retry with a new port (and a new data dir).
  return retry('could not start prometheus', async () => {
    const dir = tmpDir('fleetload-prometheus-');
    const port = await freePort();
    const configPath = join(dir, 'prometheus.yml');
    writeFileSync(configPath, config(opts.targets, opts.bearer));
    const url = `http://127.0.0.1:${port}`;
    const run = [
      binary,
      `--config.file=${configPath}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--log.level=warn',
    ];
    const service = await spawnService('prometheus', run, {
      tail,
      ready: (abort) => waitForHttp(`${url}/-/ready`, 200, { timeoutMs: startTimeoutMs, abort }),
    });
    const api = async <T>(path: string, params?: URLSearchParams): Promise<T> => {
      const res = await fetch(`${url}${path}`, {
        method: params ? 'POST' : 'GET',
        ...(params ? { body: params } : {}),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      const json = JSON.parse(text) as { status: string; data: T; error?: string };
      if (json.status !== 'success')
        throw new Error(`prometheus ${path} ${params ?? ''}: ${json.error ?? text}`);
      return json.data;
    };
    const server: PrometheusServer = {
      url,
      port,
      pid: service.pid,
      query: (promql, timeMs) =>
        api<PromResult>(
          '/api/v1/query',
          new URLSearchParams({
            query: promql,
            ...(timeMs !== undefined ? { time: String(timeMs / 1000) } : {}),
          }),
        ),
      queryRange: (promql, startMs, endMs, stepS = 1) =>
        api<PromResult>(
          '/api/v1/query_range',
          new URLSearchParams({
            query: promql,
            start: String(startMs / 1000),
            end: String(endMs / 1000),
            step: String(stepS),
          }),
        ),
      api: (path) => api(path),
      waitForScrapeAttempts: async (timeoutMs = 20_000) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const data = await api<{ activeTargets: Array<{ lastScrape: string }> }>(
            '/api/v1/targets?state=active',
          );
          const tried = data.activeTargets.filter((t) => !t.lastScrape.startsWith('0001-'));
          if (data.activeTargets.length === opts.targets.length && tried.length === opts.targets.length)
            return;
          if (Date.now() > deadline) {
            throw new Error(`prometheus did not scrape its targets within ${timeoutMs} ms:\n${output()}`);
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      stop: () => service.stop(),
      output,
    };
    return server;
  });
}
