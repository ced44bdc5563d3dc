import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Ledger } from '../../src/consumer/ledger.js';

test('memory: ≤ 32 bytes per device for 1M devices', () => {
  const l = new Ledger();
  const n = 1_000_000;
  for (let i = 0; i < n; i++) l.record(`dev-${i}`, 1);
  for (let i = 0; i < n; i += 3) l.record(`dev-${i}`, 2);
  assert.equal(l.deviceCount, n);
  const perDevice = l.memoryBytes() / n;
  assert.ok(perDevice <= 32, `${perDevice.toFixed(1)} bytes per device`);
  assert.equal(l.gaps, 0);
  assert.equal(l.record('dev-999999', 1), 'duplicate');
});

test('finalize: loss is final, later arrivals are late and change nothing', () => {
  const l = new Ledger();
  for (const s of [1, 2, 4, 6]) l.record('d', s);
  assert.equal(l.finalize(new Map([['d', 7]])), 3);
  assert.equal(l.record('d', 3), 'late');
  assert.equal(l.record('d', 4), 'duplicate');
  assert.equal(l.record('d', 7), 'late');
  assert.equal(l.lateCount, 2);
  assert.equal(l.lost(new Map([['d', 7]])), 3);
});

test('serialize → deserialize keeps everything', () => {
  const l = new Ledger();
  for (const s of [1, 2, 5, 9, 3]) l.record('a', s);
  for (let s = 1; s <= 50; s++) l.record('b', s);
  l.record('c', 200_000); // window overflow
  const r = Ledger.deserialize(l.serialize());
  assert.equal(r.deviceCount, 3);
  assert.equal(r.gaps, l.gaps);
  assert.equal(
    r.lost(
      new Map([
        ['a', 10],
        ['b', 50],
      ]),
    ),
    l.lost(
      new Map([
        ['a', 10],
        ['b', 50],
      ]),
    ),
  );
  assert.equal(r.record('a', 5), 'duplicate');
  assert.equal(r.record('a', 4), 'reordered');
  assert.throws(() => Ledger.deserialize(Buffer.from('nope')));
});

test('property: two instances splitting a stream merge to exactly one ledger of all arrivals', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          dev: fc.integer({ min: 0, max: 5 }),
          seq: fc.integer({ min: 1, max: 400 }),
          to: fc.integer({ min: 0, max: 2 }),
        }),
        { maxLength: 1500, size: 'large' },
      ),
      (arrivals) => {
        // to: 0 → instance A, 1 → B, 2 → both (a redelivery to the other instance)
        const a = new Ledger();
        const b = new Ledger();
        const all = new Ledger();
        const seenA = new Set<string>();
        const seenB = new Set<string>();
        for (const { dev, seq, to } of arrivals) {
          const id = `d${dev}`;
          all.record(id, seq);
          if (to !== 1) {
            a.record(id, seq);
            seenA.add(`${id}:${seq}`);
          }
          if (to !== 0) {
            b.record(id, seq);
            seenB.add(`${id}:${seq}`);
          }
        }
        const merged = Ledger.deserialize(a.serialize());
        const { overlap } = merged.merge(Ledger.deserialize(b.serialize()));
        let both = 0;
        for (const k of seenA) if (seenB.has(k)) both++;
        assert.equal(overlap, both);
        assert.equal(merged.uniqueCount, all.uniqueCount);
        assert.equal(merged.gaps, all.gaps);
        const expected = new Map(Array.from({ length: 6 }, (_, d) => [`d${d}`, 400] as [string, number]));
        assert.equal(merged.lost(expected), all.lost(expected));
        assert.equal(merged.inexact, false);
      },
    ),
    { numRuns: 150 },
  );
});
