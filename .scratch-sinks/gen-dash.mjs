// generates deploy/grafana/*.json (scratch; the JSON files are the product)
import { writeFileSync } from 'node:fs';

const W = 24;
let id = 0;
const ds = (type) => ({ type, uid: '${datasource}' });

function panel(kind, title, gridPos, targets, extra = {}) {
  return { id: ++id, type: kind, title, gridPos, datasource: targets.datasource, targets: targets.list, ...extra };
}

function influxDashboard() {
  id = 0;
  const D = ds('influxdb');
  const where = `WHERE "run_id" =~ /^$run_id$/ AND $timeFilter`;
  const q = (refId, query, more = {}) => ({ refId, datasource: D, rawQuery: true, resultFormat: 'time_series', query, ...more });
  const ts = (title, x, y, w, h, list, unit, desc, more = {}) =>
    panel('timeseries', title, { x, y, w, h }, { datasource: D, list }, {
      description: desc,
      interval: '1s',
      fieldConfig: { defaults: { unit, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, spanNulls: true } }, overrides: [] },
      options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['max', 'mean', 'lastNotNull'] }, tooltip: { mode: 'multi' } },
      ...more,
    });
  const stat = (title, x, list, unit, desc, more = {}) =>
    panel('stat', title, { x, y: 0, w: 4, h: 4 }, { datasource: D, list }, {
      description: desc,
      fieldConfig: { defaults: { unit, decimals: unit === 'percent' ? 2 : undefined }, overrides: [] },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'value' },
      ...more,
    });
  const panels = [
    stat('Telemetries sent', 0, [q('A', `SELECT sum("sent") AS "sent" FROM "fleetload_producer" ${where}`)], 'short', 'Messages written to the broker (all workers).'),
    stat('Telemetries received', 4, [q('A', `SELECT sum("received") AS "received" FROM "fleetload_consumer" ${where}`)], 'short', 'Messages the consumer received (duplicates included).'),
    stat(
      'Received %',
      8,
      [
        q('A', `SELECT sum("sent") AS "sent" FROM "fleetload_producer" ${where}`, { hide: true }),
        q('B', `SELECT sum("received") - sum("duplicated") - sum("foreign") AS "received" FROM "fleetload_consumer" ${where}`, { hide: true }),
        { refId: 'C', datasource: { type: '__expr__', uid: '__expr__' }, type: 'math', expression: '$B / $A * 100', hide: false },
      ],
      'percent',
      'Unique fleetload messages received / sent, in percent (a Grafana math expression over the two queries).',
    ),
    stat('Lost (final)', 12, [q('A', `SELECT last("lost") AS "lost" FROM "fleetload_summary" ${where}`)], 'short', 'Sequence numbers never received by the end of the grace period (written when the run finishes).'),
    stat('Duplicated', 16, [q('A', `SELECT sum("duplicated") AS "duplicated" FROM "fleetload_consumer" ${where}`)], 'short', 'Messages received more than once.'),
    stat('E2E delay p99 (max of seconds)', 20, [q('A', `SELECT max("e2e_p99") AS "p99" FROM "fleetload_consumer" ${where}`)], 'ms', 'Highest per-second p99 of the end-to-end delay. The exact run-wide p99 is in summary.json.'),
    ts(
      'Event ingestion delay percentiles (ms)',
      0, 4, 12, 9,
      [q('A', `SELECT max("e2e_p50") AS "p50", max("e2e_p90") AS "p90", max("e2e_p95") AS "p95", max("e2e_p99") AS "p99", max("e2e_max") AS "max" FROM "fleetload_consumer" ${where} GROUP BY time($__interval) fill(none)`)],
      'ms',
      'Arrival minus scheduled send time. Each point is the highest per-second percentile in the bucket (per-second percentiles come from merged HDR histograms).',
    ),
    ts(
      'Devices connected',
      12, 4, 12, 9,
      [q('A', `SELECT last("devices_connected") AS "devices" FROM "fleetload_producer" ${where} GROUP BY time($__interval), "worker" fill(previous)`, { alias: 'worker $tag_worker' })],
      'short',
      'Connected devices per worker (stacked: the fleet).',
      { fieldConfig: { defaults: { unit: 'short', custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 30, stacking: { mode: 'normal', group: 'A' } } }, overrides: [] } },
    ),
    ts(
      'Telemetries per minute (sent vs received)',
      0, 13, 12, 8,
      [
        q('A', `SELECT sum("sent") AS "sent" FROM "fleetload_producer" ${where} GROUP BY time(1m) fill(0)`),
        q('B', `SELECT sum("received") AS "received" FROM "fleetload_consumer" ${where} GROUP BY time(1m) fill(0)`),
      ],
      'short',
      'Messages per minute.',
      { fieldConfig: { defaults: { unit: 'short', custom: { drawStyle: 'bars', fillOpacity: 60 } }, overrides: [] } },
    ),
    ts(
      'Throughput (messages/s)',
      12, 13, 12, 8,
      [
        q('A', `SELECT sum("sent") * 1000 / $__interval_ms AS "sent", sum("acked") * 1000 / $__interval_ms AS "acked" FROM "fleetload_producer" ${where} GROUP BY time($__interval) fill(0)`),
        q('B', `SELECT sum("received") * 1000 / $__interval_ms AS "received" FROM "fleetload_consumer" ${where} GROUP BY time($__interval) fill(0)`),
      ],
      'short',
      'Sent, acknowledged and received per second.',
    ),
    ts(
      'Loss and duplicates',
      0, 21, 12, 8,
      [
        q('A', `SELECT last("lost") AS "lost (holes so far)" FROM "fleetload_consumer" ${where} GROUP BY time($__interval) fill(previous)`),
        q('B', `SELECT sum("duplicated") AS "duplicated", sum("reordered") AS "reordered", sum("foreign") AS "foreign" FROM "fleetload_consumer" ${where} GROUP BY time($__interval) fill(0)`),
      ],
      'short',
      'lost: sequence holes seen so far (a late message may still fill one; the final figure is in "Lost (final)"). Duplicated, reordered, foreign: per interval.',
    ),
    ts(
      'Publish-ack latency (ms)',
      12, 21, 12, 8,
      [q('A', `SELECT max("ack_p50") AS "ack p50", max("ack_p99") AS "ack p99", max("connect_p99") AS "connect p99" FROM "fleetload_producer" ${where} GROUP BY time($__interval) fill(none)`)],
      'ms',
      'Publish write to PUBACK (QoS 1) / PUBCOMP (QoS 2); TCP connect to CONNACK.',
    ),
    ts(
      'Errors: failed, skipped, connect failures, reconnects',
      0, 29, 12, 8,
      [q('A', `SELECT sum("failed") AS "failed", sum("skipped") AS "skipped", sum("connect_failures") AS "connect failures", sum("reconnects") AS "reconnects" FROM "fleetload_producer" ${where} GROUP BY time($__interval) fill(0)`)],
      'short',
      'failed: refused by the broker or in flight when a connection dropped; skipped: due while offline or with a full in-flight window. Error codes by name are in summary.json.',
      { fieldConfig: { defaults: { unit: 'short', custom: { drawStyle: 'bars', fillOpacity: 60 } }, overrides: [] } },
    ),
    ts(
      'Generator health: CPU (% of one core)',
      12, 29, 6, 8,
      [q('A', `SELECT max("cpu_percent") AS "cpu" FROM "fleetload_producer" ${where} GROUP BY time($__interval), "worker" fill(none)`, { alias: 'worker $tag_worker' })],
      'percent',
      'CPU of each fleetload worker. Sustained ≥ 90% marks the run saturated: the figures describe the generator more than the system under test.',
    ),
    ts(
      'Generator health: event-loop and schedule lag p99 (ms)',
      18, 29, 6, 8,
      [q('A', `SELECT max("event_loop_lag_p99") AS "event-loop lag p99", max("lag_p99") AS "schedule lag p99" FROM "fleetload_producer" ${where} GROUP BY time($__interval) fill(none)`)],
      'ms',
      'Above 100 ms the run is marked saturated.',
    ),
    panel('table', 'Run summary (final figures)', { x: 0, y: 37, w: 24, h: 5 }, {
      datasource: D,
      list: [q('A', `SELECT "sent", "acked", "failed", "received", "lost", "duplicated", "reordered", "e2e_p50", "e2e_p99", "ack_p99", "passed" FROM "fleetload_summary" ${where}`, { resultFormat: 'table' })],
    }, { description: 'One row per finished run (written at the end of the run).' }),
  ];
  return dashboard('fleetload-influxdb', 'fleetload (InfluxDB)', 'influxdb', 'InfluxDB', panels, {
    name: 'run_id',
    label: 'run',
    type: 'query',
    datasource: D,
    query: 'SHOW TAG VALUES FROM "fleetload_producer" WITH KEY = "run_id"',
    refresh: 2,
    sort: 0,
    includeAll: false,
    multi: false,
    options: [],
    current: {},
    hide: 0,
  });
}

function promDashboard() {
  id = 0;
  const D = ds('prometheus');
  const sel = `run_id=~"$run_id"`;
  const q = (refId, expr, legendFormat, more = {}) => ({ refId, datasource: D, expr, legendFormat: legendFormat ?? '__auto', range: true, instant: false, ...more });
  const qi = (refId, expr, legendFormat) => q(refId, expr, legendFormat, { range: false, instant: true });
  const ts = (title, x, y, w, h, list, unit, desc, more = {}) =>
    panel('timeseries', title, { x, y, w, h }, { datasource: D, list }, {
      description: desc,
      fieldConfig: { defaults: { unit, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, spanNulls: true } }, overrides: [] },
      options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['max', 'mean', 'lastNotNull'] }, tooltip: { mode: 'multi' } },
      ...more,
    });
  const stat = (title, x, list, unit, desc) =>
    panel('stat', title, { x, y: 0, w: 4, h: 4 }, { datasource: D, list }, {
      description: desc,
      fieldConfig: { defaults: { unit, decimals: unit === 'percent' ? 2 : undefined }, overrides: [] },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'value' },
    });
  const total = (m) => `sum(max_over_time(${m}{${sel}}[$__range]))`;
  const quantile = (p, m, window = '$__rate_interval') => `1000 * histogram_quantile(${p}, sum by (le) (rate(${m}_bucket{${sel}}[${window}])))`;
  const panels = [
    stat('Telemetries sent', 0, [qi('A', total('fleetload_messages_sent_total'), 'sent')], 'short', 'Messages written to the broker in the time range.'),
    stat('Telemetries received', 4, [qi('A', total('fleetload_messages_received_total'), 'received')], 'short', 'Messages the consumer received (duplicates included).'),
    stat(
      'Received %',
      8,
      [qi('A', `100 * (${total('fleetload_messages_received_total')} - ${total('fleetload_messages_duplicated_total')} - ${total('fleetload_messages_foreign_total')}) / ${total('fleetload_messages_sent_total')}`, 'received %')],
      'percent',
      'Unique fleetload messages received / sent.',
    ),
    stat('Lost', 12, [qi('A', `sum(last_over_time(fleetload_messages_lost{${sel}}[$__range]))`, 'lost')], 'short', 'Holes seen so far; once fleetload_run_finished is 1, the final loss.'),
    stat('Duplicated', 16, [qi('A', total('fleetload_messages_duplicated_total'), 'duplicated')], 'short', 'Messages received more than once.'),
    stat('E2E delay p99 (run)', 20, [qi('A', `1000 * histogram_quantile(0.99, sum by (le) (max_over_time(fleetload_e2e_delay_seconds_bucket{${sel}}[$__range])))`, 'p99')], 'ms', 'p99 of the whole run so far, from the cumulative Prometheus histogram (bucket interpolation); the exact p99 is in summary.json.'),
    ts(
      'Event ingestion delay percentiles (ms)',
      0, 4, 12, 9,
      [
        q('A', quantile(0.5, 'fleetload_e2e_delay_seconds'), 'p50'),
        q('B', quantile(0.9, 'fleetload_e2e_delay_seconds'), 'p90'),
        q('C', quantile(0.95, 'fleetload_e2e_delay_seconds'), 'p95'),
        q('D', quantile(0.99, 'fleetload_e2e_delay_seconds'), 'p99'),
      ],
      'ms',
      'Arrival minus scheduled send time, from fleetload_e2e_delay_seconds (buckets 0.5 ms … 60 s).',
    ),
    ts('Devices connected', 12, 4, 12, 9, [q('A', `sum by (worker) (fleetload_devices_connected{${sel}})`, 'worker {{worker}}')], 'short', 'Connected devices per worker (stacked: the fleet).', {
      fieldConfig: { defaults: { unit: 'short', custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 30, stacking: { mode: 'normal', group: 'A' } } }, overrides: [] },
    }),
    ts(
      'Telemetries per minute (sent vs received)',
      0, 13, 12, 8,
      [
        q('A', `60 * sum(rate(fleetload_messages_sent_total{${sel}}[$__rate_interval]))`, 'sent'),
        q('B', `60 * sum(rate(fleetload_messages_received_total{${sel}}[$__rate_interval]))`, 'received'),
      ],
      'short',
      'Messages per minute (rate × 60).',
    ),
    ts(
      'Throughput (messages/s)',
      12, 13, 12, 8,
      [
        q('A', `sum(rate(fleetload_messages_sent_total{${sel}}[$__rate_interval]))`, 'sent'),
        q('B', `sum(rate(fleetload_messages_acked_total{${sel}}[$__rate_interval]))`, 'acked'),
        q('C', `sum(rate(fleetload_messages_received_total{${sel}}[$__rate_interval]))`, 'received'),
      ],
      'short',
      'Sent, acknowledged and received per second.',
    ),
    ts(
      'Loss and duplicates',
      0, 21, 12, 8,
      [
        q('A', `sum(fleetload_messages_lost{${sel}})`, 'lost (holes so far)'),
        q('B', `sum(fleetload_messages_duplicated_total{${sel}})`, 'duplicated'),
        q('C', `sum(fleetload_messages_reordered_total{${sel}})`, 'reordered'),
        q('D', `sum(fleetload_messages_foreign_total{${sel}})`, 'foreign'),
      ],
      'short',
      'Cumulative counts. lost: holes seen so far, the final loss once the run has finished.',
    ),
    ts(
      'Publish-ack and connect latency (ms)',
      12, 21, 12, 8,
      [
        q('A', quantile(0.5, 'fleetload_publish_ack_seconds'), 'ack p50'),
        q('B', quantile(0.99, 'fleetload_publish_ack_seconds'), 'ack p99'),
        // connects happen mostly during the ramp, often between two scrapes: the cumulative histogram, not a rate
        q('C', `1000 * histogram_quantile(0.99, sum by (le) (fleetload_connect_seconds_bucket{${sel}}))`, 'connect p99 (run so far)'),
      ],
      'ms',
      'Publish write to PUBACK/PUBCOMP; TCP connect to CONNACK.',
    ),
    ts(
      'Errors: failed, skipped, connect failures, reconnects',
      0, 29, 12, 8,
      [
        q('A', `sum(fleetload_messages_failed_total{${sel}})`, 'failed'),
        q('B', `sum(fleetload_messages_skipped_total{${sel}})`, 'skipped'),
        q('C', `sum(fleetload_connect_failures_total{${sel}})`, 'connect failures'),
        q('D', `sum(fleetload_reconnects_total{${sel}})`, 'reconnects'),
      ],
      'short',
      'Cumulative counts. Error codes by name are in summary.json.',
    ),
    ts('Generator health: CPU (% of one core)', 12, 29, 6, 8, [q('A', `max by (worker) (fleetload_generator_cpu_percent{${sel}})`, 'worker {{worker}}')], 'percent', 'Sustained ≥ 90% marks the run saturated.'),
    ts(
      'Generator health: event-loop and schedule lag p99 (ms)',
      18, 29, 6, 8,
      [
        q('A', `1000 * max(fleetload_generator_event_loop_lag_seconds{${sel}})`, 'event-loop lag p99'),
        q('B', quantile(0.99, 'fleetload_schedule_lag_seconds'), 'schedule lag p99'),
      ],
      'ms',
      'Above 100 ms the run is marked saturated.',
    ),
  ];
  return dashboard('fleetload-prometheus', 'fleetload (Prometheus)', 'prometheus', 'Prometheus', panels, {
    name: 'run_id',
    label: 'run',
    type: 'query',
    datasource: D,
    query: { query: 'label_values(fleetload_run_info, run_id)', refId: 'run_id' },
    definition: 'label_values(fleetload_run_info, run_id)',
    refresh: 2,
    sort: 0,
    includeAll: false,
    multi: false,
    options: [],
    current: {},
    hide: 0,
  });
}

function dashboard(uid, title, dsType, dsName, panels, runVar) {
  return {
    uid,
    title,
    description: 'fleetload load test: delivery, delay, loss, errors and generator health. Pick a run in "run".',
    tags: ['fleetload', 'mqtt', 'iot', 'load-test'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '5s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'data source', type: 'datasource', query: dsType, current: { text: dsName, value: `fleetload-${dsType}` }, hide: 0, refresh: 1, regex: '', options: [] },
        runVar,
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

writeFileSync('/work/main/deploy/grafana/influxdb-dashboard.json', `${JSON.stringify(influxDashboard(), null, 2)}\n`);
writeFileSync('/work/main/deploy/grafana/prometheus-dashboard.json', `${JSON.stringify(promDashboard(), null, 2)}\n`);
