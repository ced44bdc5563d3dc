import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';

/**
 * Offline checks of rendered Kubernetes manifests. `kubectl apply --dry-run=client` needs an API server for
 * discovery even with --validate=false (verified: "couldn't get current server API group list"), and no schema
 * package is installed, so the fields of the kinds fleetload uses are written down here from the Kubernetes API
 * reference (batch/v1 Job, core/v1 PodSpec, Container, EnvVar, Volume, ConfigMap, PersistentVolumeClaim):
 * an unknown key, a wrong type or a missing required field anywhere is an error with its path. `checkFleetload`
 * adds what no schema catches (segments, restart policy, secrets in plain env, $(VAR) references, subdomain).
 */

export type K8sObject = Record<string, unknown>;

/** `kubectl kustomize DIR` parsed into objects; throws with kubectl's message when it fails. */
export function kustomize(dir: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseManifests(text);
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
      return d.toJS() as unknown;
    })
    .filter((o): o is K8sObject => typeof o === 'object' && o !== null);
}

// ---- a small schema language ----

type Shape =
  | 'string'
  | 'int'
  | 'bool'
  | 'quantity'
  | { enum: readonly string[] }
  | { arrayOf: Shape }
  | { mapOf: Shape }
  | { fields: Record<string, Shape>; required?: readonly string[]; oneOf?: readonly string[] };

const str = 'string' as const;
const int = 'int' as const;
const bool = 'bool' as const;
const strs: Shape = { arrayOf: str };
const strMap: Shape = { mapOf: str };

const objectMeta: Shape = {
  fields: { name: str, generateName: str, namespace: str, labels: strMap, annotations: strMap },
};
const labelSelector: Shape = {
  fields: {
    matchLabels: strMap,
    matchExpressions: {
      arrayOf: {
        fields: { key: str, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: strs },
        required: ['key', 'operator'],
      },
    },
  },
};
const keyRef: Shape = { fields: { name: str, key: str, optional: bool }, required: ['key'] };
const envVar: Shape = {
  fields: {
    name: str,
    value: str,
    valueFrom: {
      fields: {
        fieldRef: { fields: { fieldPath: str, apiVersion: str }, required: ['fieldPath'] },
        resourceFieldRef: {
          fields: { resource: str, containerName: str, divisor: 'quantity' },
          required: ['resource'],
        },
        configMapKeyRef: keyRef,
        secretKeyRef: keyRef,
      },
      oneOf: ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'],
    },
  },
  required: ['name'],
};
const resources: Shape = { fields: { requests: { mapOf: 'quantity' }, limits: { mapOf: 'quantity' } } };
const container: Shape = {
  fields: {
    name: str,
    image: str,
    imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
    command: strs,
    args: strs,
    workingDir: str,
    env: { arrayOf: envVar },
    envFrom: {
      arrayOf: {
        fields: {
          prefix: str,
          configMapRef: { fields: { name: str, optional: bool } },
          secretRef: { fields: { name: str, optional: bool } },
        },
      },
    },
    ports: {
      arrayOf: {
        fields: { name: str, containerPort: int, protocol: { enum: ['TCP', 'UDP', 'SCTP'] } },
        required: ['containerPort'],
      },
    },
    resources,
    securityContext: {
      fields: {
        allowPrivilegeEscalation: bool,
        readOnlyRootFilesystem: bool,
        privileged: bool,
        runAsNonRoot: bool,
        runAsUser: int,
        runAsGroup: int,
        capabilities: { fields: { add: strs, drop: strs } },
        seccompProfile: { fields: { type: str, localhostProfile: str }, required: ['type'] },
      },
    },
    volumeMounts: {
      arrayOf: {
        fields: { name: str, mountPath: str, readOnly: bool, subPath: str, subPathExpr: str },
        required: ['name', 'mountPath'],
      },
    },
  },
  required: ['name', 'image'],
};
const volume: Shape = {
  fields: {
    name: str,
    configMap: {
      fields: {
        name: str,
        defaultMode: int,
        optional: bool,
        items: { arrayOf: { fields: { key: str, path: str, mode: int }, required: ['key', 'path'] } },
      },
    },
    secret: { fields: { secretName: str, defaultMode: int, optional: bool } },
    persistentVolumeClaim: { fields: { claimName: str, readOnly: bool }, required: ['claimName'] },
    emptyDir: { fields: { medium: str, sizeLimit: 'quantity' } },
  },
  required: ['name'],
  oneOf: ['configMap', 'secret', 'persistentVolumeClaim', 'emptyDir'],
};
const podSpec: Shape = {
  fields: {
    restartPolicy: { enum: ['Always', 'OnFailure', 'Never'] },
    automountServiceAccountToken: bool,
    serviceAccountName: str,
    subdomain: str,
    hostname: str,
    terminationGracePeriodSeconds: int,
    activeDeadlineSeconds: int,
    priorityClassName: str,
    nodeSelector: strMap,
    tolerations: {
      arrayOf: {
        fields: {
          key: str,
          operator: { enum: ['Exists', 'Equal'] },
          value: str,
          effect: { enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] },
          tolerationSeconds: int,
        },
      },
    },
    securityContext: {
      fields: {
        runAsNonRoot: bool,
        runAsUser: int,
        runAsGroup: int,
        fsGroup: int,
        fsGroupChangePolicy: { enum: ['OnRootMismatch', 'Always'] },
        supplementalGroups: { arrayOf: int },
        sysctls: { arrayOf: { fields: { name: str, value: str }, required: ['name', 'value'] } },
        seccompProfile: { fields: { type: str, localhostProfile: str }, required: ['type'] },
      },
    },
    topologySpreadConstraints: {
      arrayOf: {
        fields: {
          maxSkew: int,
          topologyKey: str,
          whenUnsatisfiable: { enum: ['DoNotSchedule', 'ScheduleAnyway'] },
          labelSelector,
          matchLabelKeys: strs,
          minDomains: int,
          nodeAffinityPolicy: { enum: ['Honor', 'Ignore'] },
          nodeTaintsPolicy: { enum: ['Honor', 'Ignore'] },
        },
        required: ['maxSkew', 'topologyKey', 'whenUnsatisfiable'],
      },
    },
    initContainers: { arrayOf: container },
    containers: { arrayOf: container },
    volumes: { arrayOf: volume },
  },
  required: ['containers'],
};
const job: Shape = {
  fields: {
    apiVersion: str,
    kind: str,
    metadata: objectMeta,
    spec: {
      fields: {
        completions: int,
        parallelism: int,
        completionMode: { enum: ['NonIndexed', 'Indexed'] },
        backoffLimit: int,
        backoffLimitPerIndex: int,
        maxFailedIndexes: int,
        activeDeadlineSeconds: int,
        ttlSecondsAfterFinished: int,
        suspend: bool,
        podReplacementPolicy: { enum: ['TerminatingOrFailed', 'Failed'] },
        template: { fields: { metadata: objectMeta, spec: podSpec }, required: ['spec'] },
      },
      required: ['template'],
    },
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
};
const configMap: Shape = {
  fields: {
    apiVersion: str,
    kind: str,
    metadata: objectMeta,
    data: strMap,
    binaryData: strMap,
    immutable: bool,
  },
  required: ['apiVersion', 'kind', 'metadata'],
};
const pvc: Shape = {
  fields: {
    apiVersion: str,
    kind: str,
    metadata: objectMeta,
    spec: {
      fields: {
        accessModes: {
          arrayOf: { enum: ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] },
        },
        storageClassName: str,
        volumeMode: { enum: ['Filesystem', 'Block'] },
        volumeName: str,
        selector: labelSelector,
        resources,
      },
      required: ['accessModes', 'resources'],
    },
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
};

/** apiVersion/kind → schema; any other kind is an error (we ship no other). */
const kinds: Record<string, Shape> = {
  'batch/v1/Job': job,
  'v1/ConfigMap': configMap,
  'v1/PersistentVolumeClaim': pvc,
};

const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[+-]?\d+)?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function checkShape(value: unknown, shape: Shape, path: string, errors: string[]): void {
  if (shape === 'string') {
    if (typeof value !== 'string') errors.push(`${path}: must be a string, is ${JSON.stringify(value)}`);
  } else if (shape === 'int') {
    if (!Number.isInteger(value)) errors.push(`${path}: must be an integer, is ${JSON.stringify(value)}`);
  } else if (shape === 'bool') {
    if (typeof value !== 'boolean')
      errors.push(`${path}: must be true or false, is ${JSON.stringify(value)}`);
  } else if (shape === 'quantity') {
    if (!(typeof value === 'string' && QUANTITY.test(value)) && !Number.isFinite(value)) {
      errors.push(`${path}: not a quantity: ${JSON.stringify(value)}`);
    }
  } else if ('enum' in shape) {
    if (typeof value !== 'string' || !shape.enum.includes(value)) {
      errors.push(`${path}: must be one of ${shape.enum.join(', ')}, is ${JSON.stringify(value)}`);
    }
  } else if ('arrayOf' in shape) {
    if (!Array.isArray(value)) errors.push(`${path}: must be a list`);
    else for (const [i, v] of value.entries()) checkShape(v, shape.arrayOf, `${path}[${i}]`, errors);
  } else if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push(`${path}: must be an object`);
  } else if ('mapOf' in shape) {
    for (const [k, v] of Object.entries(value)) checkShape(v, shape.mapOf, `${path}.${k}`, errors);
  } else {
    const obj = value as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      const field = shape.fields[k];
      if (field === undefined) errors.push(`${path}.${k}: unknown field`);
      else checkShape(v, field, `${path}.${k}`, errors);
    }
    for (const k of shape.required ?? []) {
      if (!(k in obj)) errors.push(`${path}.${k}: required`);
    }
    if (shape.oneOf) {
      const set = shape.oneOf.filter((k) => k in obj);
      if (set.length !== 1)
        errors.push(`${path}: exactly one of ${shape.oneOf.join(', ')} (has ${set.length})`);
    }
  }
}

export function describeObject(o: K8sObject): string {
  const meta = (o.metadata ?? {}) as { name?: string };
  return `${String(o.kind)}/${meta.name ?? '?'}`;
}

/** Schema errors of one object, each with its path (empty: valid). */
export function schemaErrors(o: K8sObject): string[] {
  const key = `${String(o.apiVersion)}/${String(o.kind)}`;
  const shape = kinds[key];
  const where = describeObject(o);
  if (shape === undefined) return [`${where}: ${key} is not a kind fleetload ships (Job, ConfigMap, PVC)`];
  const errors: string[] = [];
  checkShape(o, shape, where, errors);
  const name = (o.metadata as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string' || !DNS1123_SUBDOMAIN.test(name))
    errors.push(`${where}: name must be DNS-1123`);
  return errors;
}

// ---- fleetload's own rules ----

export interface PodView {
  job: K8sObject;
  spec: Record<string, unknown>;
  containers: Record<string, unknown>[];
}

type Env = { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> };

export function byKindName(objects: K8sObject[], kind: string, prefix: string): K8sObject {
  const found = objects.filter(
    (o) => o.kind === kind && String((o.metadata as { name?: string }).name).startsWith(prefix),
  );
  if (found.length !== 1) throw new Error(`expected one ${kind} ${prefix}*, found ${found.length}`);
  return found[0] as K8sObject;
}

export function podSpecOf(job: K8sObject): Record<string, unknown> {
  return (((job.spec as Record<string, unknown>).template as Record<string, unknown>).spec ?? {}) as Record<
    string,
    unknown
  >;
}

export function containersOf(job: K8sObject): Record<string, unknown>[] {
  const spec = podSpecOf(job);
  return [...((spec.initContainers as unknown[]) ?? []), ...((spec.containers as unknown[]) ?? [])] as Record<
    string,
    unknown
  >[];
}

/** Names of variables that hold secrets: `fleetload run --help` and `consume --help` call these "a secret". */
export const SECRET_ENV = /PASSWORD|TOKEN|KEY|CONNECTION_STRING|SECRET/;

/** The rules no schema knows; every message names the object and the field. */
export function fleetloadErrors(objects: K8sObject[]): string[] {
  const errors: string[] = [];
  const configMaps = new Map<string, Record<string, string>>();
  for (const o of objects) {
    if (o.kind === 'Secret')
      errors.push(`${describeObject(o)}: a Secret in the manifests (secrets are created apart)`);
    if (o.kind === 'ConfigMap') {
      configMaps.set(String((o.metadata as { name: string }).name), (o.data ?? {}) as Record<string, string>);
    }
  }
  const runCm = [...configMaps.entries()].find(([n]) => n.startsWith('fleetload-run'));
  const segments = runCm ? Number(runCm[1].SEGMENTS) : Number.NaN;
  if (!Number.isInteger(segments) || segments < 1)
    errors.push(`ConfigMap fleetload-run: SEGMENTS must be ≥ 1`);
  const pvcNames = new Set(
    objects
      .filter((o) => o.kind === 'PersistentVolumeClaim')
      .map((o) => (o.metadata as { name: string }).name),
  );
  const services = new Map(objects.filter((o) => o.kind === 'Service').map((o) => [describeObject(o), o]));

  for (const job of objects.filter((o) => o.kind === 'Job')) {
    const where = describeObject(job);
    const spec = job.spec as Record<string, unknown>;
    const pod = podSpecOf(job);
    if (pod.restartPolicy !== 'Never')
      errors.push(`${where}: restartPolicy must be Never (a restart re-sends)`);
    if (pod.subdomain !== undefined) {
      const svc = services.get(`Service/${String(pod.subdomain)}`);
      if (!svc || (svc.spec as { clusterIP?: string }).clusterIP !== 'None') {
        errors.push(
          `${where}: subdomain ${String(pod.subdomain)} names no headless Service in the manifests`,
        );
      }
    }
    const volumes = new Map(
      ((pod.volumes as Record<string, unknown>[]) ?? []).map((v) => [String(v.name), v]),
    );
    for (const v of volumes.values()) {
      const claim = (v.persistentVolumeClaim as { claimName?: string } | undefined)?.claimName;
      if (claim !== undefined && !pvcNames.has(claim))
        errors.push(`${where}: volume claims unknown PVC ${claim}`);
      const cm = (v.configMap as { name?: string } | undefined)?.name;
      if (cm !== undefined && !configMaps.has(cm))
        errors.push(`${where}: volume mounts unknown ConfigMap ${cm}`);
    }
    for (const c of containersOf(job)) {
      const cw = `${where} container ${String(c.name)}`;
      const env = (c.env as Env[]) ?? [];
      const names = new Set(env.map((e) => e.name));
      for (const e of env) {
        if (SECRET_ENV.test(e.name) && (e.value !== undefined || !e.valueFrom?.secretKeyRef)) {
          errors.push(
            `${cw}: env ${e.name} holds a secret: it must come from valueFrom.secretKeyRef, never a value`,
          );
        }
        const ref = e.valueFrom?.configMapKeyRef;
        if (ref) {
          const data = configMaps.get(String(ref.name));
          if (!data) errors.push(`${cw}: env ${e.name} refers to unknown ConfigMap ${String(ref.name)}`);
          else if (!(String(ref.key) in data) && ref.optional !== true) {
            errors.push(
              `${cw}: env ${e.name} refers to missing key ${String(ref.key)} of ${String(ref.name)}`,
            );
          }
        }
      }
      // Kubernetes leaves an unknown $(VAR) as it is: a silent typo
      for (const arg of [...((c.command as string[]) ?? []), ...((c.args as string[]) ?? [])]) {
        for (const m of arg.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!names.has(m[1] as string)) errors.push(`${cw}: $(${m[1]}) is not one of its env variables`);
        }
      }
      for (const m of (c.volumeMounts as { name: string }[]) ?? []) {
        if (!volumes.has(m.name)) errors.push(`${cw}: mounts undeclared volume ${m.name}`);
      }
      const requests = (c.resources as Record<string, Record<string, unknown>> | undefined)?.requests;
      if (!(requests?.cpu && requests?.memory))
        errors.push(`${cw}: resources.requests.cpu and memory are required`);
      if (
        !/^[^\s]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/.test(String(c.image)) ||
        String(c.image).endsWith(':latest')
      ) {
        errors.push(`${cw}: image ${String(c.image)} needs a tag (not latest) or a digest`);
      }
    }
    if (spec.completionMode === 'Indexed') {
      const gen = containersOf(job).find((c) => c.name === 'fleetload');
      const segEnv = ((gen?.env as Env[]) ?? []).find((e) => e.name === 'FLEETLOAD_SEGMENTS');
      const idxEnv = ((gen?.env as Env[]) ?? []).find((e) => e.name === 'JOB_COMPLETION_INDEX');
      if (spec.completions !== spec.parallelism || spec.completions !== segments) {
        errors.push(
          `${where}: completions (${String(spec.completions)}), parallelism (${String(spec.parallelism)}) and SEGMENTS (${segments}) must be equal`,
        );
      }
      if (segEnv?.value !== String(segments)) {
        errors.push(
          `${where}: FLEETLOAD_SEGMENTS (${String(segEnv?.value)}) must equal SEGMENTS (${segments})`,
        );
      }
      if (
        idxEnv?.valueFrom?.fieldRef?.fieldPath !==
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
      ) {
        errors.push(`${where}: JOB_COMPLETION_INDEX must come from the job-completion-index annotation`);
      }
      if (spec.backoffLimitPerIndex !== 0)
        errors.push(`${where}: backoffLimitPerIndex must be 0 (no segment retried)`);
      if (spec.backoffLimit !== undefined)
        errors.push(`${where}: backoffLimit with backoffLimitPerIndex: leave it out`);
      if (!Array.isArray(pod.topologySpreadConstraints) || pod.topologySpreadConstraints.length === 0) {
        errors.push(`${where}: generator pods need topologySpreadConstraints (spread over nodes)`);
      }
    } else if (spec.backoffLimit !== 0) {
      errors.push(`${where}: backoffLimit must be 0`);
    }
  }
  return errors;
}

/** Every error of a rendered set: schema per object, then fleetload's rules. */
export function manifestErrors(objects: K8sObject[]): string[] {
  return [...objects.flatMap(schemaErrors), ...fleetloadErrors(objects)];
}
