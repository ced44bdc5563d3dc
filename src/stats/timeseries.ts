import type { TimeseriesRow } from './summary.js';

/** timeseries.csv (DESIGN.md columns, then the appended ones): its header and one line per second. */
export const TIMESERIES_HEADER =
  'time,devices_connected,sent,acked,failed,received,lost,e2e_p50,e2e_p95,e2e_p99,ack_p50,ack_p99,bytes_sent,bytes_received';

export function timeseriesLine(r: TimeseriesRow): string {
  const time = /[",\r\n]/.test(r.time) ? `"${r.time.replace(/"/g, '""')}"` : r.time;
  return (
    [
      time,
      r.devicesConnected,
      r.sent,
      r.acked,
      r.failed,
      r.received,
      r.lost,
      r.e2eP50,
      r.e2eP95,
      r.e2eP99,
      r.ackP50,
      r.ackP99,
      r.bytesSent ?? 0,
      r.bytesReceived ?? 0,
    ].join(',') + '\n'
  );
}
