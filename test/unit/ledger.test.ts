import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Ledger } from '../../src/consumer/ledger.js';

test('in-order arrivals: nothing lost, no bitmap needed', () => {
  const l = new Ledger();
  for (let s = 1; s <= 100; s++) assert.equal(l.record('a', s), 'new');
  assert.equal(l.gaps, 0);
  assert.equal(l.lost(new Map([['a', 100]])), 0);
});

test('loss, duplicates and reorders are counted exactly', () => {
  const l = new Ledger();
  const out = [1, 2, 4, 3, 3, 6, 1, 8].map((s) => l.record('d', s));
  assert.deepEqual(out, ['new', 'new', 'new', 'reordered', 'duplicate', 'new', 'duplicate', 'new']);
  assert.equal(l.gaps, 2); // 5 and 7 missing below max 8
  // the producer sent up to 10: 5, 7, 9, 10 never arrived
  assert.equal(l.lost(new Map([['d', 10]])), 4);
  // a device the consumer never heard from counts whole
  assert.equal(
    l.lost(
      new Map([
        ['d', 10],
        ['silent', 3],
      ]),
    ),
    7,
  );
});

test('a gap wider than the window is given up: holes lost, stragglers late', () => {
  const l = new Ledger();
  l.record('d', 1);
  l.record('d', 3);
  l.record('d', 200_000); // far beyond the 65536-bit window
  assert.equal(l.record('d', 2), 'late');
  assert.equal(l.lateCount, 1);
  assert.equal(l.lost(new Map([['d', 200_000]])), 200_000 - 3);
});

test('property: unique count and loss match a reference Set for any arrival order with repeats', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 2000, size: 'large' }),
      fc.integer({ min: 1, max: 3000 }),
      (seqs, last) => {
        const l = new Ledger();
        const ref = new Set<number>();
        let dups = 0;
        for (const s of seqs) {
          const o = l.record('x', s);
          if (ref.has(s)) {
            dups++;
            assert.equal(o, 'duplicate');
          } else assert.notEqual(o, 'duplicate');
          ref.add(s);
        }
        let missing = 0;
        for (let s = 1; s <= last; s++) if (!ref.has(s)) missing++;
        assert.equal(l.lost(new Map([['x', last]])), missing);
        assert.equal(dups, seqs.length - ref.size);
      },
    ),
    { numRuns: 200 },
  );
});
