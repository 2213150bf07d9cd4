import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalSet } from '../../src/ipam/intervals';
import { KeyedMutex } from '../../src/types/mutex';

const pairs = (s: IntervalSet) => [...s.intervals()].map(([a, b]) => [Number(a), Number(b)]);

test('adding neighbours merges intervals, deleting inside splits them', () => {
  const s = new IntervalSet();
  assert.equal(s.add(5n), true);
  assert.equal(s.add(5n), false);
  s.add(7n);
  assert.deepEqual(pairs(s), [
    [5, 5],
    [7, 7],
  ]);
  s.add(6n);
  assert.deepEqual(pairs(s), [[5, 7]]);
  s.add(4n);
  s.add(8n);
  assert.deepEqual(pairs(s), [[4, 8]]);
  assert.equal(s.size, 5n);
  assert.equal(s.delete(6n), true);
  assert.equal(s.delete(6n), false);
  assert.deepEqual(pairs(s), [
    [4, 5],
    [7, 8],
  ]);
  s.delete(4n);
  s.delete(8n);
  assert.deepEqual(pairs(s), [
    [5, 5],
    [7, 7],
  ]);
  s.delete(5n);
  assert.deepEqual(pairs(s), [[7, 7]]);
  assert.equal(s.size, 1n);
  assert.ok(s.has(7n) && !s.has(6n) && !s.has(8n));
});

test('firstFree skips a covering interval in one step and respects the upper bound', () => {
  const s = new IntervalSet();
  for (let i = 10n; i <= 20n; i++) s.add(i);
  s.add(22n);
  assert.equal(s.firstFree(0n, 100n), 0n);
  assert.equal(s.firstFree(10n, 100n), 21n);
  assert.equal(s.firstFree(15n, 100n), 21n);
  assert.equal(s.firstFree(22n, 100n), 23n);
  assert.equal(s.firstFree(10n, 20n), undefined);
  assert.equal(s.firstFree(5n, 4n), undefined);
  assert.equal(s.countIn(0n, 100n), 12n);
  assert.equal(s.countIn(15n, 22n), 7n);
  assert.equal(s.countIn(21n, 21n), 0n);
});

test('agrees with a plain Set under random operations', () => {
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const s = new IntervalSet();
  const ref = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const x = rnd(200);
    if (rnd(3)) {
      assert.equal(s.add(BigInt(x)), !ref.has(x));
      ref.add(x);
    } else {
      assert.equal(s.delete(BigInt(x)), ref.has(x));
      ref.delete(x);
    }
    if (i % 97 === 0) {
      const from = rnd(200);
      let expect: number | undefined;
      for (let v = from; v < 200; v++)
        if (!ref.has(v)) {
          expect = v;
          break;
        }
      assert.equal(s.firstFree(BigInt(from), 199n), expect === undefined ? undefined : BigInt(expect));
      assert.equal(s.size, BigInt(ref.size));
    }
  }
  // Intervals stay disjoint and never touch.
  const iv = pairs(s);
  for (let i = 1; i < iv.length; i++) assert.ok(iv[i]![0] > iv[i - 1]![1] + 1);
});

test('KeyedMutex runs one operation per key at a time, in order, and keys independently', async () => {
  const m = new KeyedMutex();
  const log: string[] = [];
  const step = (key: string, name: string, ms: number) =>
    m.run(key, async () => {
      log.push(`${name}+`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`${name}-`);
      return name;
    });
  const failing = m.run('a', async () => {
    throw new Error('boom');
  });
  const results = await Promise.allSettled([
    step('a', 'a1', 20),
    step('a', 'a2', 1),
    step('b', 'b1', 5),
    failing,
    step('a', 'a3', 1),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  );
  assert.deepEqual(
    log.filter((x) => x.startsWith('a')),
    ['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-'],
  );
  assert.ok(log.indexOf('b1-') < log.indexOf('a1-'), 'b does not wait for a');
  assert.deepEqual(m.busyKeys, []);
});
