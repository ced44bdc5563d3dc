/**
 * The labels every time-series point carries besides `run_id` (InfluxDB tags, Prometheus labels), so the live
 * views of a run split over processes (segments, workers, consumers) can be summed, or filtered to one process:
 * - `segment`: `i/N`, the process's share of the fleet (`0/1` for a whole run; a consumer: its partition);
 * - `role`: what the process does: `producer` (a run with --consumer none), `consumer` (fleetload consume), or
 *   `run` (a run with its own consumer: both).
 */

export type SinkRole = 'producer' | 'consumer' | 'run';

export interface SegmentRef {
  index: number;
  count: number;
}

/** `i/N`; `0/1` without a segment (the whole run). */
export function segmentLabel(segment: SegmentRef | undefined): string {
  return segment === undefined ? '0/1' : `${segment.index}/${segment.count}`;
}

/** The role of a `fleetload run` process: a producer only with --consumer none, else producer and consumer. */
export function runRole(consumer: string): SinkRole {
  return consumer === 'none' ? 'producer' : 'run';
}
