import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { outputTail, retry, spawnService, tmpDir } from './process.js';
import { freePort, requireService, waitForHttp } from './services.js';

/**
 * A real InfluxDB 1.x (Debian's influxd) per test, on free loopback ports, with its data in a temp dir. Every
 * listener it has is either disabled or bound to 127.0.0.1: HTTP on `port`, the backup/restore RPC on `rpcPort`;
 * graphite, collectd, opentsdb, udp, ifql, the unix socket, pprof, usage reporting and the _internal monitor
 * store are off. Killed at exit (and by the kernel when the test process dies, via setpriv --pdeathsig).
 */

export interface InfluxDb {
  /** `http://127.0.0.1:port` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Runs InfluxQL over /query (POST); returns the parsed JSON answer. Throws on an HTTP error or `error`. */
  query(q: string, db?: string): Promise<InfluxQueryResult>;
  stop(): Promise<void>;
  output(): string;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export interface InfluxQueryResult {
  results: Array<{ statement_id: number; series?: InfluxSeries[]; error?: string }>;
}

const TAIL_LINES = 50;

function config(dir: string, port: number, rpcPort: number): string {
  return `# written by test/helpers/influxdb.ts
reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  index-version = "inmem"
  query-log-enabled = false
  wal-fsync-delay = "0s"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false
  flux-enabled = false

[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
`;
}

export async function startInfluxDb(opts: { startTimeoutMs?: number } = {}): Promise<InfluxDb> {
  const binary = requireService('influxd');
  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  const tail = outputTail(TAIL_LINES);
  // A free port can be taken before influxd binds it: retry with new ports (and a new data dir).
  return retry('could not start influxd', async () => {
    const dir = tmpDir('fleetload-influxdb-');
    const port = await freePort();
    const rpcPort = await freePort();
    const configPath = join(dir, 'influxdb.conf');
    writeFileSync(configPath, config(dir, port, rpcPort));
    const url = `http://127.0.0.1:${port}`;
    const service = await spawnService('influxd', [binary, '-config', configPath], {
      tail,
      ready: (abort) => waitForHttp(`${url}/ping`, 204, { timeoutMs, abort }),
    });
    const query = async (q: string, db?: string): Promise<InfluxQueryResult> => {
      const body = new URLSearchParams({ q, epoch: 'ms' });
      if (db !== undefined) body.set('db', db);
      const res = await fetch(`${url}/query`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`InfluxQL ${q}: HTTP ${res.status} ${text}`);
      const json = JSON.parse(text) as InfluxQueryResult & { error?: string };
      if (json.error) throw new Error(`InfluxQL ${q}: ${json.error}`);
      for (const r of json.results) if (r.error) throw new Error(`InfluxQL ${q}: ${r.error}`);
      return json;
    };
    return { url, port, pid: service.pid, query, stop: () => service.stop(), output: tail.text };
  });
}
