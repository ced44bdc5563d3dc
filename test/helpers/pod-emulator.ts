import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath } from './cli.js';
import type { K8sObject } from './k8s.js';
import { killQuietly, onExit, tmpDir } from './process.js';

/**
 * Runs a rendered pod's containers as local processes, the way the kubelet would: env resolved from values,
 * ConfigMap keys, Secret keys and the completion-index annotation; `$(VAR)` in command and args expanded from the
 * container's env (Kubernetes rules: unknown references stay as written, `$$` is a `$`); the image's ENTRYPOINT
 * (`fleetload`) when the container has no command; volumes as local folders (ConfigMap volumes filled with their
 * keys). The only substitutions: mount paths → local folders, and `brokerFrom` → `brokerTo` in env values.
 */

export interface EmulatorWorld {
  configMaps: Map<string, Record<string, string>>;
  secrets: Map<string, Record<string, string>>;
  /** one local folder per PVC, shared by every pod that claims it (ReadWriteMany) */
  pvcs: Map<string, string>;
  brokerFrom: string;
  brokerTo: string;
  /** a folder with a `fleetload` executable: the image's ENTRYPOINT, and `fleetload` on the PATH of sh -c */
  binDir: string;
}

export function newWorld(objects: K8sObject[], brokerFrom: string, brokerTo: string): EmulatorWorld {
  const configMaps = new Map<string, Record<string, string>>();
  const pvcs = new Map<string, string>();
  for (const o of objects) {
    const name = String((o.metadata as { name: string }).name);
    if (o.kind === 'ConfigMap') configMaps.set(name, (o.data ?? {}) as Record<string, string>);
    if (o.kind === 'PersistentVolumeClaim') pvcs.set(name, tmpDir(`fleetload-pvc-${name}-`));
  }
  const binDir = tmpDir('fleetload-image-bin-');
  const shim = join(binDir, 'fleetload');
  writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`);
  chmodSync(shim, 0o755);
  return { configMaps, secrets: new Map(), pvcs, brokerFrom, brokerTo, binDir };
}

type Env = {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
};

/** The container's environment as the kubelet builds it (index: the pod's completion index). */
export function resolveEnv(container: Record<string, unknown>, world: EmulatorWorld, index?: number) {
  const env: Record<string, string> = {};
  for (const e of (container.env as Env[]) ?? []) {
    let value: string | undefined;
    const from = e.valueFrom;
    if (e.value !== undefined) value = e.value;
    else if (from?.fieldRef) {
      if (from.fieldRef.fieldPath !== "metadata.annotations['batch.kubernetes.io/job-completion-index']") {
        throw new Error(`emulator: fieldRef ${from.fieldRef.fieldPath} not emulated`);
      }
      if (index === undefined) throw new Error(`emulator: ${e.name} needs a completion index`);
      value = String(index);
    } else {
      const ref = from?.configMapKeyRef ?? from?.secretKeyRef;
      const store = from?.configMapKeyRef ? world.configMaps : world.secrets;
      if (!ref) throw new Error(`emulator: env ${e.name} has no value`);
      value = store.get(ref.name)?.[ref.key];
      if (value === undefined && ref.optional !== true) {
        throw new Error(
          `emulator: env ${e.name}: ${ref.name}/${ref.key} does not exist (the pod would not start)`,
        );
      }
    }
    if (value === undefined) continue;
    env[e.name] = value === world.brokerFrom ? world.brokerTo : value;
  }
  return env;
}

/** Kubernetes' $(VAR) expansion of command and args. */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && name in env ? (env[name] as string) : m;
  });
}

export interface Started {
  name: string;
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/** Starts one container of a pod (volumes: the pod's). Returns at once. */
export function startContainer(
  label: string,
  container: Record<string, unknown>,
  podSpec: Record<string, unknown>,
  world: EmulatorWorld,
  index?: number,
): Started {
  const volumes = new Map<string, string>();
  for (const v of (podSpec.volumes as Record<string, Record<string, string>>[]) ?? []) {
    const name = String(v.name);
    if (v.persistentVolumeClaim) {
      const dir = world.pvcs.get(v.persistentVolumeClaim.claimName as string);
      if (!dir) throw new Error(`emulator: no PVC ${v.persistentVolumeClaim.claimName}`);
      volumes.set(name, dir);
    } else if (v.configMap) {
      const dir = tmpDir(`fleetload-cm-${name}-`);
      const data = world.configMaps.get(v.configMap.name as string);
      if (!data) throw new Error(`emulator: no ConfigMap ${v.configMap.name}`);
      for (const [k, text] of Object.entries(data)) writeFileSync(join(dir, k), text);
      volumes.set(name, dir);
    } else if (v.emptyDir) {
      volumes.set(name, tmpDir(`fleetload-empty-${name}-`));
    } else throw new Error(`emulator: volume ${name} not emulated`);
  }
  const mounts = ((container.volumeMounts as { name: string; mountPath: string }[]) ?? []).map((m) => {
    const dir = volumes.get(m.name);
    if (!dir) throw new Error(`emulator: mount of undeclared volume ${m.name}`);
    return { path: m.mountPath, dir };
  });
  // longest mount path first, so /results/x never matches a /results mount before a /results/x one
  mounts.sort((a, b) => b.path.length - a.path.length);
  const local = (s: string): string => {
    for (const m of mounts) {
      if (s === m.path || s.startsWith(`${m.path}/`)) return m.dir + s.slice(m.path.length);
      // inside an sh -c script or a flag value
      s = s.split(`${m.path}/`).join(`${m.dir}/`);
    }
    return s;
  };
  const env = resolveEnv(container, world, index);
  const argv = [
    ...((container.command as string[]) ?? ['fleetload']),
    ...((container.args as string[]) ?? []),
  ].map((a) => local(expand(a, env)));
  const program = argv[0] === 'fleetload' ? join(world.binDir, 'fleetload') : (argv[0] as string);
  const cwd = tmpDir('fleetload-pod-');
  mkdirSync(cwd, { recursive: true });
  const child = spawn(program, argv.slice(1), {
    cwd,
    env: { ...env, PATH: `${world.binDir}:/usr/local/bin:/usr/bin:/bin`, HOME: cwd, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    text += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    text += s;
  });
  const pid = child.pid;
  const unregister = pid !== undefined ? onExit(() => killQuietly(pid, 'SIGKILL')) : () => {};
  const exit = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      unregister();
      resolve(code);
    });
  });
  return { name: label, child, output: () => text, exit };
}

/** A pod: its init containers one after the other, then its containers; resolves to the first container's exit. */
export async function runPod(
  label: string,
  podSpec: Record<string, unknown>,
  world: EmulatorWorld,
  index?: number,
  onStart?: (s: Started) => void,
): Promise<{ code: number | null; output: string }> {
  let output = '';
  for (const c of (podSpec.initContainers as Record<string, unknown>[]) ?? []) {
    const s = startContainer(`${label}/${String(c.name)}`, c, podSpec, world, index);
    const code = await s.exit;
    output += s.output();
    if (code !== 0) return { code, output };
  }
  const main = ((podSpec.containers as Record<string, unknown>[]) ?? [])[0];
  if (!main) throw new Error(`emulator: ${label} has no container`);
  const s = startContainer(`${label}/${String(main.name)}`, main, podSpec, world, index);
  onStart?.(s);
  const code = await s.exit;
  return { code, output: output + s.output() };
}
