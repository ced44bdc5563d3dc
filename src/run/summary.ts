import { createHash } from 'node:crypto';
import { redactUrl } from '../consumer/source.js';
import type { Scenario } from '../scenario/schema.js';
import type { Aggregator } from '../stats/aggregate.js';
import { summarize } from '../stats/histogram.js';
import type { Summary } from '../stats/summary.js';
import { evaluateThresholds, type Threshold } from '../stats/thresholds.js';
import { FLEETLOAD_VERSION } from '../version.js';
import type { OutputFailure } from './guard.js';
import { judge, type ValidityOptions } from './verdict.js';

/**
 * summary.json, built the same way for every kind of run: `run` (a generator and a consumer), `run --consumer
 * none` (a generator only) and `consume` (a consumer only; the producer fields are 0).
 */
export interface SummaryInput {
  runId: string;
  startedAt: Date;
  endedAt: Date;
  /** the scenario block of summary.json (host not yet redacted) */
  scenario: Summary['scenario'];
  /** devices this run was to connect (a segment's share of scenario.devices); default scenario.devices */
  devicesTarget?: number;
  aggregator: Aggregator;
  /**
   * `saturated`: the verdict of the run's one saturation rule (src/stats/events.ts SaturationRule), interval by
   * interval — this process's as its events saw it, or any worker's on its own intervals; a merge of folders: any
   * part's summary.
   */
  generator: { cpuPercentPeak: number; eventLoopLagP99: number; saturated: boolean };
  /** sequence numbers never received by the end of the grace period (0 without a consumer) */
  lost: number;
  /** time the load was offered (producer) or read (consumer), for the rates */
  activeMs: number;
  interrupted: boolean;
  thresholds: readonly Threshold[];
  /** which sides this run has: a consumer's figures mean nothing without one, and the other way round */
  sides: { generator: boolean; consumer: boolean };
  validity: ValidityOptions;
  outputFailures: readonly OutputFailure[];
  /** parts of the fleet lost on the way (a worker that died): the run is incomplete and never passes */
  lostParts: readonly string[];
}

export function buildSummary(i: SummaryInput): Summary {
  const t = i.aggregator.total;
  const h = i.aggregator.histograms;
  const scheduleLag = summarize(h.scheduleLag);
  const perSec = (n: number) => Math.round((n / Math.max(1, i.activeMs)) * 1000 * 10) / 10;
  const summary: Summary = {
    runId: i.runId,
    startedAt: i.startedAt.toISOString(),
    endedAt: i.endedAt.toISOString(),
    fleetloadVersion: FLEETLOAD_VERSION,
    ...(i.interrupted ? { interrupted: true } : {}),
    ...(i.lostParts.length > 0
      ? { incomplete: { reason: 'a part of the fleet was lost', lost: [...i.lostParts] } }
      : {}),
    scenario: { ...i.scenario, host: redactUrl(i.scenario.host) },
    devices: {
      target: i.devicesTarget ?? i.scenario.devices,
      connectedPeak: i.aggregator.connectedPeak,
      connectFailures: t.connectFailures,
      reconnects: t.reconnects,
      ...(t.tlsFull + t.tlsResumed > 0
        ? { tls: { handshakes: t.tlsFull + t.tlsResumed, resumed: t.tlsResumed } }
        : {}),
    },
    messages: {
      scheduled: t.scheduled,
      sent: t.sent,
      acked: t.acked,
      failed: t.failed,
      unconfirmed: t.sent - t.acked - t.failed,
      received: t.received,
      lost: i.lost,
      duplicated: t.duplicated,
      reordered: t.reordered,
      foreign: t.foreign,
    },
    latency: {
      e2e: summarize(h.e2e),
      publishAck: summarize(h.publishAck),
      connect: summarize(h.connect),
      scheduleLag,
    },
    rates: { sentPerSec: perSec(t.sent), receivedPerSec: perSec(t.received) },
    bytes: {
      sent: t.bytesSent,
      received: t.bytesReceived,
      sentPerSec: perSec(t.bytesSent),
      receivedPerSec: perSec(t.bytesReceived),
    },
    generator: {
      cpuPercentPeak: i.generator.cpuPercentPeak,
      eventLoopLagP99: i.generator.eventLoopLagP99,
      saturated: i.generator.saturated,
    },
    errors: [
      ...i.aggregator.errors(),
      ...i.outputFailures.map((f) => ({
        kind: 'output',
        code: f.output,
        reason: `failed in ${f.during}(): ${f.reason}`,
        count: 1,
      })),
    ],
    thresholds: [],
    passed: true,
  };
  summary.thresholds = evaluateThresholds(i.thresholds, summary);
  const verdict = judge(summary, i.sides, i.validity);
  summary.valid = verdict.valid;
  if (!verdict.valid) summary.invalid = verdict.reasons;
  // an interrupted or invalid run did not complete what it planned: it never passes, whatever its thresholds say
  summary.passed =
    verdict.valid && !i.interrupted && i.lostParts.length === 0 && summary.thresholds.every((r) => r.passed);
  return summary;
}

/**
 * What each message of a run looked like and where it went, for summary.json's scenario: `compare` tells two runs
 * apart by these (a payload twice the size explains a slower run). Only what a run sets; never secrets.
 */
export function scenarioShape(s: Scenario): Partial<Summary['scenario']> {
  return {
    topic: s.topic,
    encoding: s.encoding,
    ...(s.payloadTemplate === undefined
      ? { payloadSizeBytes: s.payloadSizeBytes }
      : { payloadTemplate: createHash('sha256').update(s.payloadTemplate).digest('hex').slice(0, 12) }),
    ...(s.stages ? { stages: s.stages.map((st) => `${st.durationMs}:${st.devices}`) } : {}),
    jitterMs: s.jitterMs,
    ...(s.messagesPerDevice !== undefined ? { messagesPerDevice: s.messagesPerDevice } : {}),
    consumer: s.consumer,
    consumerQos: s.consumerQos,
  };
}
