import type { Ledger } from '../consumer/ledger.js';
import {
  type DeviceReport,
  type DevicesFile,
  deviceReport,
  devicesCsv,
  encodeDevices,
} from '../stats/device-report.js';
import { type ConsumerDevices, liveTop, mergeConsumerDevices } from '../stats/devices.js';
import type { ConsumerSide, GeneratorSide } from './pipeline.js';

/**
 * The per-device breakdown of a run or a consume (src/stats/devices.ts, device-report.ts) at the pipeline's end and,
 * for the dashboard, while it runs. devices.csv is what people read; devices.json is what `fleetload merge` reads.
 */

export interface FinalDevices {
  report: DeviceReport;
  file: DevicesFile;
}

/** After the drain: loss and its ranges from the ledger, against the producers' last seqs when there are. */
export function finalDevices(
  g: GeneratorSide | undefined,
  c: ConsumerSide | undefined,
  intervalMs: number,
): FinalDevices | undefined {
  if (!g && !c) return undefined;
  const consumer = c?.consumer.devices.state();
  const connectFailures = g ? (g.connectFailuresByDevice?.() ?? new Map<string, number>()) : undefined;
  const report = deviceReport({
    consumer,
    ledger: c?.consumer.ledger,
    expectedLast: g?.expectedLast(),
    connectFailures,
    intervalMs,
  });
  return {
    report,
    file: { ...(consumer ? { consumer } : {}), ...(connectFailures ? { connectFailures } : {}) },
  };
}

/** devices.csv and devices.json, for the results folder. */
export function deviceFiles(d: FinalDevices): Array<[string, string]> {
  return [
    ['devices.csv', devicesCsv(d.report.listed)],
    ['devices.json', encodeDevices(d.file)],
  ];
}

/** how often the live top lists are recomputed (an O(devices) scan) */
export const LIVE_DEVICES_EVERY_MS = 5000;

/** The live top lists: loss so far = holes below each device's highest seq. */
export function liveDevices(
  g: GeneratorSide | undefined,
  c: ConsumerSide | undefined,
): ReturnType<typeof liveTop> | undefined {
  if (!c) return undefined;
  const ledger = c.consumer.ledger;
  // the table counts on the ledger's device numbers: the same i in both
  return liveTop(c.consumer.devices, (i) => ledger.gapsAt(i), g?.connectFailuresByDevice?.());
}

/** What `fleetload merge` has of the folders' devices (devices.json, the ledgers, the last seqs). */
export interface MergeDevicesInput {
  producers: ReadonlyArray<DevicesFile | undefined>;
  consumers: ReadonlyArray<{ devices: DevicesFile | undefined; ledger: Ledger }>;
  /** the union of the consumers' ledgers */
  ledger: Ledger | undefined;
  lastSeq: ReadonlyMap<string, number> | undefined;
  intervalMs: number;
}

/**
 * The breakdown of merged folders, as one process would have made it: consumer figures add (a seq two consumers
 * both saw is one more duplicate of its device: Σ unique per instance − unique in the union), connect failures
 * add, loss and ranges come from the union ledger against the union of last seqs. Undefined when a folder has no
 * devices.json (written by an older fleetload).
 */
export function mergeDevices(i: MergeDevicesInput): FinalDevices | undefined {
  if (i.producers.some((p) => p === undefined) || i.consumers.some((c) => c.devices === undefined))
    return undefined;
  let connectFailures: Map<string, number> | undefined;
  if (i.producers.length > 0) {
    connectFailures = new Map();
    for (const p of i.producers)
      for (const [id, n] of p?.connectFailures ?? [])
        connectFailures.set(id, (connectFailures.get(id) ?? 0) + n);
  }
  let consumer: ConsumerDevices | undefined;
  if (i.consumers.length > 0) {
    consumer = mergeConsumerDevices(
      i.consumers.map((c) => c.devices?.consumer ?? { devices: [], gaps: [], gapsDropped: 0 }),
    );
    if (i.consumers.length > 1 && i.ledger) {
      const union = i.ledger;
      for (const d of consumer.devices) {
        let unique = 0;
        for (const c of i.consumers) unique += c.ledger.uniqueOf(d.deviceId);
        d.duplicated += unique - union.uniqueOf(d.deviceId);
      }
    }
  }
  const report = deviceReport({
    consumer,
    ledger: i.ledger,
    expectedLast: i.lastSeq,
    connectFailures,
    intervalMs: i.intervalMs,
  });
  return {
    report,
    file: { ...(consumer ? { consumer } : {}), ...(connectFailures ? { connectFailures } : {}) },
  };
}
