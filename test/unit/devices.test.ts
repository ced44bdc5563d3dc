import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/clock.js';
import { Consumer } from '../../src/consumer/consumer.js';
import { Ledger } from '../../src/consumer/ledger.js';
import { devicesSection } from '../../src/report/devices.js';
import { deviceFiles, mergeDevices } from '../../src/run/devices.js';
import {
  DEVICES_CSV_HEADER,
  decodeDevices,
  deviceReport,
  devicesCsv,
  encodeDevices,
} from '../../src/stats/device-report.js';
import {
  bucketOf,
  DeviceTable,
  LAT_BUCKETS,
  liveTop,
  MAX_RANGES,
  p99FromBuckets,
  SMALL_FLEET,
  TOP_N,
} from '../../src/stats/devices.js';
import { Stats } from '../../src/stats/stats.js';
import type { Summary } from '../../src/stats/summary.js';

/**
 * Per-device accounting (src/stats/devices.ts, device-report.ts, src/run/devices.ts) on fake data through the real
 * Consumer and Ledger: counts, loss and its seq ranges with scheduled times, top lists, devices.csv, and a merge of
 * split consumers that equals one consumer.
 */

const RUN = 'dev-run';
const T0 = 1_800_000_000_000;
const INTERVAL = 100;

/** seq n of a device is scheduled at T0 + n × INTERVAL (+ a per-device phase) */
const tsOf = (dev: number, seq: number) => T0 + dev * 7 + seq * INTERVAL;

function consumer(clock = new FakeClock(T0)): { c: Consumer; clock: FakeClock } {
  const stats = new Stats(clock.now());
  return { c: new Consumer({ stats, clock, runId: RUN }), clock };
}

function send(c: Consumer, dev: number, seq: number, delayMs = 5): void {
  const ts = tsOf(dev, seq);
  const payload = Buffer.from(JSON.stringify({ deviceId: `dev-${dev}`, seq, ts, runId: RUN }));
  c.onMessage(payload, ts + delayMs);
}

/**
 * The story: dev-0 clean 1..20; dev-1 loses 5..8 and 15; dev-2 loses its tail 18..20 (producer wrote 20);
 * dev-3 gets 3 twice and 10 before 9 (one reordered); dev-4 never heard from (producer wrote 20); dev-5 slow.
 */
function story(deliver: (dev: number, seq: number, delayMs?: number) => void): void {
  for (let s = 1; s <= 20; s++) {
    deliver(0, s);
    if (!(s >= 5 && s <= 8) && s !== 15) deliver(1, s);
    if (s <= 17) deliver(2, s);
    if (s !== 9 && s !== 10) deliver(3, s);
    if (s === 10) {
      deliver(3, 10);
      deliver(3, 9);
    }
    if (s === 3) deliver(3, 3);
    deliver(5, s, 300);
  }
}

const expectedLast = new Map([0, 1, 2, 3, 4, 5].map((d) => [`dev-${d}`, 20] as [string, number]));

describe('per-device accounting', () => {
  test('counts, loss, lost ranges with their scheduled times, top lists', () => {
    const { c } = consumer();
    story((d, s, ms) => send(c, d, s, ms));
    const r = deviceReport({
      consumer: c.devices.state(),
      ledger: c.ledger,
      expectedLast,
      connectFailures: new Map([['dev-4', 3]]),
      intervalMs: INTERVAL,
    });
    const row = (id: string) => r.all.find((x) => x.deviceId === id);
    assert.deepEqual(
      r.all.map((x) => [
        x.deviceId,
        x.sent,
        x.received,
        x.lost,
        x.duplicated,
        x.reordered,
        x.connectFailures,
      ]),
      [
        ['dev-0', 20, 20, 0, 0, 0, 0],
        ['dev-1', 20, 15, 5, 0, 0, 0],
        ['dev-2', 20, 17, 3, 0, 0, 0],
        ['dev-3', 20, 21, 0, 1, 1, 0],
        ['dev-4', 20, 0, 20, 0, 0, 3],
        ['dev-5', 20, 20, 0, 0, 0, 0],
      ],
    );
    // the per-device loss adds up to the run's
    assert.equal(
      r.all.reduce((n, x) => n + (x.lost ?? 0), 0),
      c.ledger.lost(expectedLast),
    );
    // inner holes: times interpolated between the received neighbours (exact at a steady interval)
    assert.deepEqual(row('dev-1')?.lostRanges, [
      { fromSeq: 5, toSeq: 8, fromTs: tsOf(1, 5), toTs: tsOf(1, 8) },
      { fromSeq: 15, toSeq: 15, fromTs: tsOf(1, 15), toTs: tsOf(1, 15) },
    ]);
    // the tail: extrapolated from the last message at the interval
    assert.deepEqual(row('dev-2')?.lostRanges, [
      { fromSeq: 18, toSeq: 20, fromTs: tsOf(2, 18), toTs: tsOf(2, 20) },
    ]);
    // never heard from: the whole range, no times
    assert.deepEqual(row('dev-4')?.lostRanges, [{ fromSeq: 1, toSeq: 20, fromTs: null, toTs: null }]);
    // latency: 5 ms → bucket [4, 8) → p99 upper edge 8, capped at the max (5)
    assert.equal(row('dev-0')?.e2eP99Ms, 5);
    assert.equal(row('dev-5')?.e2eP99Ms, 300);
    assert.deepEqual(
      r.top.lost.map((t) => [t.deviceId, t.value]),
      [
        ['dev-4', 20],
        ['dev-1', 5],
        ['dev-2', 3],
      ],
    );
    assert.equal(r.top.lost[1]?.ranges?.length, 2);
    assert.deepEqual(r.top.duplicated, [{ deviceId: 'dev-3', value: 1 }]);
    assert.deepEqual(r.top.reordered, [{ deviceId: 'dev-3', value: 1 }]);
    assert.deepEqual(r.top.connectFailures, [{ deviceId: 'dev-4', value: 3 }]);
    assert.equal(r.top.e2eP99[0]?.deviceId, 'dev-5');
    assert.deepEqual(r.top.counts, { lost: 3, duplicated: 1, reordered: 1, e2eP99: 5, connectFailures: 1 });
    // a small fleet lists every device
    assert.equal(r.listed.length, 6);
  });

  test('without a producer side: loss is the holes below each device’s highest seq, sent and connect failures empty', () => {
    const { c } = consumer();
    story((d, s, ms) => send(c, d, s, ms));
    c.ledger.finalize();
    const r = deviceReport({ consumer: c.devices.state(), ledger: c.ledger, intervalMs: INTERVAL });
    assert.deepEqual(
      r.all.map((x) => [x.deviceId, x.sent, x.lost, x.connectFailures]),
      [
        ['dev-0', null, 0, null],
        ['dev-1', null, 5, null],
        ['dev-2', null, 0, null],
        ['dev-3', null, 0, null],
        ['dev-5', null, 0, null],
      ],
    );
    const csv = devicesCsv(r.listed).split('\n');
    assert.equal(csv[0], DEVICES_CSV_HEADER);
    assert.match(csv[2] as string, /^dev-1,,15,5,0,0,,5,5,5-8@\S+\/\S+ 15@\S+$/);
  });

  test('devices.csv: the columns, ISO times, bounded ranges (+N more)', () => {
    const { c } = consumer();
    // dev-7 loses every other seq from 2 to 20: 10 ranges, MAX_RANGES kept
    for (let s = 1; s <= 21; s += 2) send(c, 7, s);
    const r = deviceReport({
      consumer: c.devices.state(),
      ledger: c.ledger,
      expectedLast: new Map([['dev-7', 21]]),
      intervalMs: INTERVAL,
    });
    const row = r.all[0];
    assert.equal(row?.lost, 10);
    assert.equal(row?.lostRanges.length, MAX_RANGES);
    assert.equal(row?.lostRangesMore, 10 - MAX_RANGES);
    const line = devicesCsv(r.listed).split('\n')[1] as string;
    const iso = new Date(tsOf(7, 2)).toISOString();
    assert.ok(line.startsWith(`dev-7,21,11,10,0,0,,`), line);
    assert.ok(line.includes(`2@${iso} `), line);
    assert.ok(line.endsWith(` +${10 - MAX_RANGES} more`), line);
  });

  test('a large fleet lists only devices with something to report; the top lists keep TOP_N', () => {
    const { c } = consumer();
    const n = SMALL_FLEET + 5;
    const last = new Map<string, number>();
    for (let d = 0; d < n; d++) {
      last.set(`dev-${d}`, 3);
      send(c, d, 1);
      if (d % 50 !== 0) send(c, d, 2);
      send(c, d, 3);
    }
    const r = deviceReport({
      consumer: c.devices.state(),
      ledger: c.ledger,
      expectedLast: last,
      intervalMs: 1,
    });
    const lossy = [...last.keys()].filter((_, d) => d % 50 === 0).sort();
    assert.deepEqual(
      r.listed.map((x) => x.deviceId),
      lossy,
    );
    assert.equal(r.top.lost.length, TOP_N);
    assert.equal(r.top.counts.lost, lossy.length);
    // each listed device lost its one message (the printed lines: test/unit/console.test.ts)
    assert.deepEqual(
      r.top.lost.map((t) => t.value),
      new Array(TOP_N).fill(1),
    );
  });

  test('split consumers (one delivery seen by both) merge to what one consumer reports', () => {
    // one consumer sees everything, including a redelivery of dev-0 seq 4
    const one = consumer().c;
    story((d, s, ms) => send(one, d, s, ms));
    send(one, 0, 4);
    // two instances: even devices on A, odd on B; the redelivery of dev-0 seq 4 went to B
    const a = consumer().c;
    const b = consumer().c;
    story((d, s, ms) => send(d % 2 === 0 ? a : b, d, s, ms));
    send(b, 0, 4);
    const single = deviceReport({
      consumer: one.devices.state(),
      ledger: one.ledger,
      expectedLast,
      connectFailures: new Map([['dev-4', 2]]),
      intervalMs: INTERVAL,
    });
    // through the files a results folder holds: devices.json and ledger.bin
    const viaFile = (c: Consumer) => ({
      devices: decodeDevices(encodeDevices({ consumer: c.devices.state() })),
      ledger: Ledger.deserialize(c.ledger.serialize()),
    });
    const parts = [viaFile(a), viaFile(b)];
    const union = new Ledger();
    for (const p of parts) union.merge(p.ledger);
    const merged = mergeDevices({
      producers: [
        decodeDevices(encodeDevices({ connectFailures: new Map([['dev-4', 2]]) })),
        decodeDevices(encodeDevices({ connectFailures: new Map() })),
      ],
      consumers: parts,
      ledger: union,
      lastSeq: expectedLast,
      intervalMs: INTERVAL,
    });
    assert.ok(merged);
    const csv = devicesCsv(merged.report.listed);
    assert.equal(csv, devicesCsv(single.listed));
    assert.match(csv, /^dev-0,20,21,0,1,0,0,/m);
    assert.deepEqual(merged.report.top, single.top);
    // and the merged folder's devices.json merges again to the same (a merge of merges)
    const files = Object.fromEntries(deviceFiles(merged));
    const again = decodeDevices(files['devices.json'] as string);
    assert.equal(again.consumer?.devices.length, 5);
    assert.equal(again.connectFailures?.get('dev-4'), 2);
  });

  test('devices.json refuses damaged input with a reason', () => {
    assert.throws(() => decodeDevices('{'), /not valid JSON/);
    assert.throws(() => decodeDevices('{"format":"x"}'), /not a fleetload devices file/);
    assert.throws(() => decodeDevices('{"format":"fleetload-devices","version":9}'), /version 9/);
    assert.throws(
      () =>
        decodeDevices(
          '{"format":"fleetload-devices","version":1,"consumer":{"gapsDropped":0,"gaps":[],"devices":[[1,2]]}}',
        ),
      /device row damaged/,
    );
  });
});

describe('the device table', () => {
  test('buckets: log₂ from 1 ms, the last one open; p99 is the bucket’s upper edge, at most the max', () => {
    assert.deepEqual([0, 0.99, 1, 1.5, 2, 3.9, 4, 1000, 1e9].map(bucketOf), [
      0,
      0,
      1,
      1,
      2,
      2,
      3,
      10,
      LAT_BUCKETS - 1,
    ]);
    const b = new Array<number>(LAT_BUCKETS).fill(0);
    b[bucketOf(10)] = 99; // [8, 16)
    b[bucketOf(1000)] = 1; // [512, 1024)
    assert.equal(p99FromBuckets(b, 1000), 16);
    b[bucketOf(1000)] = 2;
    assert.equal(p99FromBuckets(b, 1000), 1000);
    assert.equal(p99FromBuckets(new Array(LAT_BUCKETS).fill(0), 0), 0);
  });

  test('memory stays small per device (100k devices) and grows with the fleet', () => {
    const t = new DeviceTable(16);
    for (let i = 0; i < 100_000; i++) t.record(i, `dev-${i}`, 1, T0, 'new', 3);
    assert.equal(t.size, 100_000);
    const perSlot = (t.memoryBytes() - 65_536 * 28) / 131_072;
    assert.ok(perSlot <= 96, `${perSlot} bytes per device slot`);
  });

  test('the gap log is bounded; gaps past it are counted, not kept', () => {
    const t = new DeviceTable(16, 4);
    for (let d = 0; d < 6; d++) {
      t.record(d, `d${d}`, 1, T0, 'new', 1);
      t.record(d, `d${d}`, 5, T0 + 400, 'new', 1);
    }
    assert.equal(t.gapList().length, 4);
    assert.equal(t.gapsDropped, 2);
    assert.deepEqual(t.gapList()[0], {
      deviceId: 'd0',
      prevSeq: 1,
      prevTs: T0,
      nextSeq: 5,
      nextTs: T0 + 400,
    });
  });

  test('the live top lists: holes so far, duplicates, reorders, p99, connect failures', () => {
    const { c } = consumer();
    story((d, s, ms) => send(c, d, s, ms));
    const live = liveTop(c.devices, (i) => c.ledger.gapsAt(i), new Map([['dev-9', 4]]));
    // dev-2's lost tail is not known yet (no producer's last seq while running)
    assert.deepEqual(live.lost, [{ deviceId: 'dev-1', value: 5 }]);
    assert.deepEqual(live.duplicated, [{ deviceId: 'dev-3', value: 1 }]);
    assert.deepEqual(live.reordered, [{ deviceId: 'dev-3', value: 1 }]);
    assert.deepEqual(live.connectFailures, [{ deviceId: 'dev-9', value: 4 }]);
    assert.equal(live.e2eP99[0]?.deviceId, 'dev-5');
    assert.equal(live.counts.e2eP99, 5);
  });

  test('the ledger gives each device a stable dense number, in order of first sight', () => {
    const l = new Ledger();
    l.record('b', 1);
    assert.equal(l.lastDevice, 0);
    l.record('a', 1);
    assert.equal(l.lastDevice, 1);
    l.record('b', 2);
    assert.equal(l.lastDevice, 0);
    l.record('b', 2 ** 33);
    assert.equal(l.lastDevice, -1);
    // holes so far by number: b has 1, 2; a jump to 5 leaves 3 and 4
    l.record('b', 5);
    assert.deepEqual([l.gapsAt(0), l.gapsAt(1), l.gapsAt(2), l.gapsAt(-1)], [2, 0, 0, 0]);
  });
});

describe('the report’s Devices section', () => {
  test('lists the lost devices with their ranges and times from the start; nothing for an older summary', () => {
    const { c } = consumer();
    story((d, s, ms) => send(c, d, s, ms));
    const r = deviceReport({
      consumer: c.devices.state(),
      ledger: c.ledger,
      expectedLast,
      intervalMs: INTERVAL,
    });
    const summary = { startedAt: new Date(T0).toISOString(), devicesTop: r.top } as Summary;
    const html = devicesSection(summary);
    assert.match(html, /<h2>Devices<\/h2>/);
    assert.match(
      html,
      /<code>dev-1<\/code><\/th><td class="n">5<\/td><td>seqs 5–8 <span[^>]*>at \+0:00\.\d–\+0:00\.\d<\/span>/,
    );
    assert.match(html, /<code>dev-4<\/code><\/th><td class="n">20<\/td><td>seqs 1–20<\/td>/);
    assert.equal(devicesSection({ startedAt: summary.startedAt } as Summary), '');
  });
});

describe('merging merged breakdowns', () => {
  test('a merge of merges equals one merge (three split consumers, cross duplicates)', () => {
    const parts = [consumer().c, consumer().c, consumer().c];
    story((d, s, ms) => send(parts[d % 3] as Consumer, d, s, ms));
    // dev-1 seq 2 delivered to a second instance too, dev-5 seq 9 to a third
    send(parts[2] as Consumer, 1, 2);
    send(parts[0] as Consumer, 5, 9);
    const file = (c: Consumer) => ({
      devices: decodeDevices(encodeDevices({ consumer: c.devices.state() })),
      ledger: Ledger.deserialize(c.ledger.serialize()),
    });
    const union = (ls: Ledger[]) => {
      const u = new Ledger();
      for (const l of ls) u.merge(Ledger.deserialize(l.serialize()));
      return u;
    };
    const [a, b, c] = parts.map(file) as [
      ReturnType<typeof file>,
      ReturnType<typeof file>,
      ReturnType<typeof file>,
    ];
    const flat = mergeDevices({
      producers: [],
      consumers: [a, b, c],
      ledger: union([a.ledger, b.ledger, c.ledger]),
      lastSeq: expectedLast,
      intervalMs: INTERVAL,
    });
    const abLedger = union([a.ledger, b.ledger]);
    const ab = mergeDevices({
      producers: [],
      consumers: [a, b],
      ledger: abLedger,
      lastSeq: expectedLast,
      intervalMs: INTERVAL,
    });
    assert.ok(flat && ab);
    const abFile = {
      devices: decodeDevices(Object.fromEntries(deviceFiles(ab))['devices.json'] as string),
      ledger: abLedger,
    };
    const nested = mergeDevices({
      producers: [],
      consumers: [abFile, c],
      ledger: union([abLedger, c.ledger]),
      lastSeq: expectedLast,
      intervalMs: INTERVAL,
    });
    assert.ok(nested);
    assert.equal(devicesCsv(nested.report.listed), devicesCsv(flat.report.listed));
    assert.match(devicesCsv(flat.report.listed), /^dev-1,20,16,5,1,0,,/m);
    assert.match(devicesCsv(flat.report.listed), /^dev-5,20,21,0,1,0,,/m);
  });
});

test('without an interval (fleetload consume) only holes inside logged gaps get times', () => {
  const t = new DeviceTable(16, 1);
  // d0: a gap 1 → 5 (logged); d1: a gap 1 → 4 (the log is full); d1 tail known to nobody
  t.record(0, 'd0', 1, T0, 'new', 1);
  t.record(0, 'd0', 5, T0 + 400, 'new', 1);
  t.record(1, 'd1', 1, T0, 'new', 1);
  t.record(1, 'd1', 4, T0 + 300, 'new', 1);
  const l = new Ledger();
  for (const [id, s] of [
    ['d0', 1],
    ['d0', 5],
    ['d1', 1],
    ['d1', 4],
  ] as Array<[string, number]>)
    l.record(id, s);
  const rows = deviceReport({ consumer: t.state(), ledger: l, intervalMs: 0 }).all;
  assert.deepEqual(
    rows.map((r) => r.lostRanges),
    [
      [{ fromSeq: 2, toSeq: 4, fromTs: T0 + 100, toTs: T0 + 300 }],
      [{ fromSeq: 2, toSeq: 3, fromTs: null, toTs: null }],
    ],
  );
  // with an interval, the hole the log missed is estimated from the highest seq
  const est = deviceReport({ consumer: t.state(), ledger: l, intervalMs: 100 }).all[1];
  assert.deepEqual(est?.lostRanges, [{ fromSeq: 2, toSeq: 3, fromTs: T0 + 100, toTs: T0 + 200 }]);
});
