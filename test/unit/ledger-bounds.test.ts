import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../src/clock.js';
import { Consumer } from '../../src/consumer/consumer.js';
import { Ledger, MAX_SEQ_JUMP, type Outcome } from '../../src/consumer/ledger.js';
import { Aggregator } from '../../src/stats/aggregate.js';
import { Stats } from '../../src/stats/stats.js';

// Bounded work and memory per arrival, whatever the seqs (issue 12): a seq far outside its device's window is an
// anomaly, counted, never a range to fill. Arrays use size 'large': fast-check's default caps them at ~10 items. "Bounded work" is asserted on state and size, not on wall time: a
// ledger that filled the range up to 2³²−1 would hold hundreds of MB and move its base and maxSeq.

const MAX_U32 = 2 ** 32 - 1;
/** the bitmap of one device at its widest (65,536 bits) plus its side entry */
const EXT_BYTES_MAX = 64 + (1 << 16) / 8;

const EXTREMES = [
  0,
  -0,
  -1,
  -(2 ** 31),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0.5,
  1.5,
  2 ** 31,
  2 ** 31 + 0.5,
  MAX_U32,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_VALUE,
];

const validSeq = (s: number) => Number.isInteger(s) && s >= 1 && s <= MAX_U32;

test('two max-seq messages: anomalous, no device, no range filled, memory and counts unchanged', () => {
  const l = new Ledger();
  for (let s = 1; s <= 10; s++) l.record('d', s);
  const bytes = l.memoryBytes();
  assert.equal(l.record('d', MAX_U32), 'anomalous');
  assert.equal(l.record('d', MAX_U32), 'anomalous');
  // a device never seen before whose first seq is the maximum is not created
  assert.equal(l.record('stranger', MAX_U32), 'anomalous');
  assert.equal(l.anomalousCount, 3);
  assert.equal(l.deviceCount, 1);
  assert.equal(l.memoryBytes(), bytes, 'no bitmap, no growth');
  assert.equal(l.gaps, 0);
  assert.equal(l.uniqueCount, 10);
  assert.equal(l.lost(new Map([['d', 10]])), 0);
  assert.equal(l.lost(), 0);
  // the device goes on exactly where it was
  assert.equal(l.record('d', 11), 'new');
  assert.equal(l.record('d', 5), 'duplicate');
  assert.equal(l.gaps, 0);
  // serialized, the ledger stays small (a filled range would be ~512 MB of bitmap)
  assert.ok(l.serialize().length < 64, `${l.serialize().length} bytes`);
});

test('a jump of exactly MAX_SEQ_JUMP is a real gap: given up at once with one bounded bitmap', () => {
  const l = new Ledger();
  for (let s = 1; s <= 5; s++) l.record('d', s);
  const bytes = l.memoryBytes();
  const far = 5 + MAX_SEQ_JUMP;
  assert.equal(l.record('d', far), 'new');
  assert.ok(l.memoryBytes() - bytes <= EXT_BYTES_MAX, `${l.memoryBytes() - bytes} bytes more`);
  assert.equal(l.gaps, MAX_SEQ_JUMP - 1);
  assert.equal(l.lost(new Map([['d', far]])), MAX_SEQ_JUMP - 1);
  // one more than the bound above the new maximum is anomalous; the bound moves with the device
  assert.equal(l.record('d', far + MAX_SEQ_JUMP + 1), 'anomalous');
  assert.equal(l.record('d', far + 1), 'new');
  // a straggler from the given-up range is late, one from the window is still exact
  assert.equal(l.record('d', 6), 'late');
  assert.equal(l.record('d', far - 10), 'reordered');
  assert.equal(l.record('d', far - 10), 'duplicate');
  assert.ok(l.memoryBytes() - bytes <= EXT_BYTES_MAX);
  // a producer that wrote fewer seqs than the consumer saw: loss stays within [0, last], computed without a walk
  const lostTo100 = l.lost(new Map([['d', 100]]));
  assert.ok(lostTo100 >= 0 && lostTo100 <= 100, String(lostTo100));
  assert.equal(lostTo100, 95);
});

test('a device first seen at a high seq within the bound is accepted (a consumer attached late)', () => {
  const l = new Ledger();
  assert.equal(l.record('d', 1_000_000), 'new');
  assert.equal(l.record('d', 1_000_001), 'new');
  assert.equal(l.gaps, 999_999);
  assert.equal(l.record('d', MAX_SEQ_JUMP + 1), 'new'); // within the bound of 1,000,001
  assert.ok(l.memoryBytes() <= new Ledger().memoryBytes() + EXT_BYTES_MAX);
});

test('the anomaly bound is per ledger (constructor option), never below one window', () => {
  const l = new Ledger(16, 100_000);
  l.record('d', 1);
  assert.equal(l.record('d', 100_002), 'anomalous');
  assert.equal(l.record('d', 100_001), 'new');
  const tiny = new Ledger(16, 10); // clamped to the window (65,536): a merge never meets the bound
  assert.equal(tiny.record('d', 60_000), 'new');
});

test('serialize keeps the anomaly count; merge adds them and is unaffected by the bound', () => {
  const a = new Ledger();
  const b = new Ledger();
  for (let s = 1; s <= 100; s += 2) a.record('d', s);
  for (let s = 2; s <= 100; s += 2) b.record('d', s);
  a.record('d', MAX_U32);
  b.record('x', MAX_U32);
  b.record('d', MAX_U32 - 1);
  const ra = Ledger.deserialize(a.serialize());
  assert.equal(ra.anomalousCount, 1);
  const { overlap } = ra.merge(Ledger.deserialize(b.serialize()));
  assert.equal(overlap, 0);
  assert.equal(ra.anomalousCount, 3);
  assert.equal(ra.deviceCount, 1, 'no device from an anomaly in either instance');
  assert.equal(ra.uniqueCount, 100);
  assert.equal(ra.gaps, 0);
  assert.equal(ra.inexact, false);
  assert.ok(ra.memoryBytes() <= new Ledger().memoryBytes() + EXT_BYTES_MAX);
});

test('deserialize refuses a file whose sizes exceed its bytes (no huge allocation from a crafted ledger.bin)', () => {
  const b = new Ledger().serialize();
  b.writeUInt32BE(0xffffffff, 4); // claims 4 billion devices
  assert.throws(() => Ledger.deserialize(b), /corrupt/);
  const l = new Ledger();
  l.record('d', 1);
  l.record('d', 3);
  const c = l.serialize();
  c.writeUInt32BE(0x7fffffff, 24 + 17 + 16); // bitmap length of 2³¹ words
  assert.throws(() => Ledger.deserialize(c), /corrupt/);
});

/** Reference: per device the set of accepted seqs and the highest; anomalies by the documented rule. */
class Reference {
  readonly seen = new Map<string, Set<number>>();
  readonly max = new Map<string, number>();
  anomalous = 0;
  outcome(id: string, seq: number): 'anomalous' | 'duplicate' | 'new' | 'reordered' {
    const max = this.max.get(id) ?? 0;
    if (!validSeq(seq) || seq - max > MAX_SEQ_JUMP) {
      this.anomalous++;
      return 'anomalous';
    }
    let set = this.seen.get(id);
    if (!set) {
      set = new Set();
      this.seen.set(id, set);
    }
    if (set.has(seq)) return 'duplicate';
    set.add(seq);
    if (seq > max) this.max.set(id, seq);
    return seq < max ? 'reordered' : 'new';
  }
}

test('property: extreme seqs among normal traffic are anomalies; the rest stays exact (loss, dups, reorders)', () => {
  const seqArb = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 3000 }) },
    { weight: 1, arbitrary: fc.constantFrom(...EXTREMES) },
    // any double, except integers that would be accepted above the 3000 range (a real gap: the next property)
    {
      weight: 1,
      arbitrary: fc.double().filter((x) => !(Number.isInteger(x) && x > 3000 && x <= 3000 + MAX_SEQ_JUMP)),
    },
    { weight: 1, arbitrary: fc.integer({ min: 3000 + MAX_SEQ_JUMP + 1, max: MAX_U32 }) },
  );
  fc.assert(
    fc.property(
      fc.array(fc.record({ dev: fc.integer({ min: 0, max: 3 }), seq: seqArb }), {
        maxLength: 1500,
        size: 'large',
      }),
      fc.integer({ min: 1, max: 3000 }),
      (arrivals, last) => {
        const l = new Ledger();
        const ref = new Reference();
        for (const { dev, seq } of arrivals) {
          const id = `d${dev}`;
          const want = ref.outcome(id, seq);
          assert.equal(l.record(id, seq), want, `d${dev} seq ${seq}`);
        }
        assert.equal(l.anomalousCount, ref.anomalous);
        assert.equal(l.deviceCount, ref.seen.size, 'an anomaly creates no device');
        let unique = 0;
        let sumMax = 0;
        for (const [id, set] of ref.seen) {
          unique += set.size;
          sumMax += ref.max.get(id) ?? 0;
        }
        assert.equal(l.uniqueCount, unique);
        assert.equal(l.gaps, sumMax - unique);
        const expected = new Map<string, number>();
        let missing = 0;
        for (let d = 0; d < 4; d++) {
          expected.set(`d${d}`, last);
          const set = ref.seen.get(`d${d}`);
          for (let s = 1; s <= last; s++) if (!set?.has(s)) missing++;
        }
        assert.equal(l.lost(expected), missing);
        assert.ok(l.memoryBytes() <= new Ledger().memoryBytes() + ref.seen.size * EXT_BYTES_MAX);
      },
    ),
    { numRuns: 150 },
  );
});

test('property: huge jumps, repeats and revisits keep memory bounded and counts consistent', () => {
  const JUMPS = [
    1,
    2,
    31,
    32,
    33,
    1000,
    65_535,
    65_536,
    65_537,
    2 ** 20,
    MAX_SEQ_JUMP,
    MAX_SEQ_JUMP + 1,
    2 ** 31,
  ];
  const op = fc.oneof(
    fc.record({ kind: fc.constant('jump' as const), d: fc.constantFrom(...JUMPS) }),
    fc.record({ kind: fc.constant('back' as const), d: fc.integer({ min: 0, max: 2 ** 24 }) }),
    fc.record({ kind: fc.constant('raw' as const), d: fc.constantFrom(...EXTREMES) }),
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ dev: fc.integer({ min: 0, max: 2 }), op, times: fc.integer({ min: 1, max: 3 }) }),
        {
          maxLength: 300,
          size: 'large',
        },
      ),
      (ops) => {
        const l = new Ledger();
        const maxAccepted = new Map<string, number>();
        const outcomes: Record<Outcome, number> = {
          new: 0,
          reordered: 0,
          duplicate: 0,
          late: 0,
          anomalous: 0,
        };
        let anomalies = 0;
        for (const { dev, op: o, times } of ops) {
          const id = `d${dev}`;
          const max = maxAccepted.get(id) ?? 0;
          const seq = o.kind === 'jump' ? max + o.d : o.kind === 'back' ? max - o.d : o.d;
          for (let k = 0; k < times; k++) {
            const cur = maxAccepted.get(id) ?? 0;
            const isAnomaly = !validSeq(seq) || seq - cur > MAX_SEQ_JUMP;
            const got = l.record(id, seq);
            outcomes[got]++;
            assert.equal(got === 'anomalous', isAnomaly, `${id} seq ${seq} max ${cur}: ${got}`);
            if (isAnomaly) anomalies++;
            else if (seq > cur) {
              assert.equal(got, 'new');
              maxAccepted.set(id, seq);
            } else if (k > 0) assert.ok(got === 'duplicate' || got === 'late', got);
          }
        }
        assert.equal(l.anomalousCount, anomalies);
        assert.equal(l.deviceCount, maxAccepted.size);
        assert.equal(l.uniqueCount, outcomes.new + outcomes.reordered);
        assert.equal(l.lateCount, outcomes.late);
        let sumMax = 0;
        for (const m of maxAccepted.values()) sumMax += m;
        assert.equal(l.gaps, sumMax - l.uniqueCount);
        assert.ok(l.gaps >= 0);
        // loss against the highest accepted seqs is the gaps; against a smaller expectation it stays in [0, last]
        assert.equal(l.lost(maxAccepted), l.gaps);
        const half = new Map([...maxAccepted].map(([id, m]) => [id, Math.floor(m / 2)] as [string, number]));
        const lostHalf = l.lost(half);
        let halfSum = 0;
        for (const m of half.values()) halfSum += m;
        assert.ok(lostHalf >= 0 && lostHalf <= halfSum, `${lostHalf} of ${halfSum}`);
        // bounded memory: fixed tables plus at most one widest bitmap per device
        assert.ok(l.memoryBytes() <= new Ledger().memoryBytes() + maxAccepted.size * EXT_BYTES_MAX);
        const r = Ledger.deserialize(l.serialize());
        assert.equal(r.gaps, l.gaps);
        assert.equal(r.uniqueCount, l.uniqueCount);
        assert.equal(r.anomalousCount, l.anomalousCount);
        assert.ok(l.serialize().length <= 24 + maxAccepted.size * (17 + 20 + (1 << 16) / 8));
      },
    ),
    { numRuns: 200 },
  );
});

test('consumer: a max-seq message is counted outOfWindow and foreign, records no delay; summary error listed', () => {
  const clock = new FakeClock(1_000_000);
  const stats = new Stats(clock.now());
  const c = new Consumer({ stats, clock, runId: 'r' });
  const msg = (seq: number) => Buffer.from(JSON.stringify({ deviceId: 'd', seq, ts: 999_990, runId: 'r' }));
  c.onMessage(msg(1), 1_000_000);
  c.onMessage(msg(MAX_U32), 1_000_000);
  c.onMessage(msg(MAX_U32), 1_000_000);
  c.onMessage(msg(2), 1_000_000);
  const a = new Aggregator();
  const m = a.merge([stats.snapshot(clock.now())]);
  assert.equal(m.counters.received, 4);
  assert.equal(m.counters.outOfWindow, 2);
  assert.equal(m.counters.foreign, 2, 'counted foreign: received − duplicated − foreign stays ≤ sent');
  assert.equal(m.counters.received - m.counters.duplicated - m.counters.foreign, 2);
  assert.equal(m.histograms.e2e.totalCount, 2, 'no delay recorded for the anomalies');
  assert.equal(c.ledger.gaps, 0);
  assert.equal(c.ledger.deviceCount, 1);
  assert.equal(c.foreignSamples.length, 2);
  const e = a.errors().find((x) => x.code === 'seq-out-of-window');
  assert.ok(e && e.kind === 'measurement' && e.count === 2, JSON.stringify(a.errors()));
});
