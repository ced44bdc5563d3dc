import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DueQueue } from '../../src/engine/due-queue.js';

test('pops entries in due-time order, growing past its capacity', () => {
  const q = new DueQueue(4);
  const due: Array<[number, number]> = [];
  let x = 12345;
  for (let i = 0; i < 1000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const t = x % 10_000;
    due.push([t, i]);
    q.push(t, i);
  }
  assert.equal(q.size, 1000);
  const times: number[] = [];
  const seen = new Set<number>();
  while (q.size > 0) {
    times.push(q.peekTime());
    seen.add(q.pop());
  }
  assert.equal(seen.size, 1000);
  for (let i = 1; i < times.length; i++) assert.ok((times[i - 1] as number) <= (times[i] as number));
  assert.equal(q.peekTime(), Number.POSITIVE_INFINITY);
});
