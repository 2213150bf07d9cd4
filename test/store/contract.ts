// The Store contract: what the IPAM and the drivers rely on, as one suite that every implementation runs
// (MemoryStore and SqliteStore in store.test.ts, EtcdStore in etcd.test.ts). `make` returns a fresh, empty store.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isMacnetError } from '../../src/errors';
import type { Change, Store } from '../../src/store/types';

const sortByKey = (cs: Change[]) => [...cs].sort((a, b) => (a.key < b.key ? -1 : 1));

/** Waits (at most 10 s) until `done`; the failure shows `state`. */
async function until(done: () => boolean, state: () => string): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(done(), `not within 10 s: ${state()}`);
}

export function storeContract(kind: string, make: () => Store | Promise<Store>): void {
  describe(`Store contract: ${kind}`, () => {
    const withStore = (fn: (s: Store) => Promise<void>) => async () => {
      const s = await make();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    };

    test(
      'get of a missing key is undefined; put then get returns the value',
      withStore(async (s) => {
        assert.equal(await s.get('a/b'), undefined);
        await s.put('a/b', 'v1');
        const e = await s.get('a/b');
        assert.equal(e?.key, 'a/b');
        assert.equal(e?.value, 'v1');
        assert.ok(e!.revision > 0);
      }),
    );

    test(
      'create succeeds once: the second create of a key is false and leaves the value alone',
      withStore(async (s) => {
        assert.equal(await s.create('k', 'first'), true);
        assert.equal(await s.create('k', 'second'), false);
        assert.equal((await s.get('k'))?.value, 'first');
      }),
    );

    test(
      'concurrent creates of one key: exactly one wins',
      withStore(async (s) => {
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.create('race', `w${i}`)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal((await s.get('race'))?.value, `w${results.indexOf(true)}`);
      }),
    );

    test(
      'update is compare-and-set on the revision',
      withStore(async (s) => {
        await s.create('k', 'a');
        const r1 = (await s.get('k'))!.revision;
        assert.equal(await s.update('k', 'b', r1), true);
        const r2 = (await s.get('k'))!.revision;
        assert.ok(r2 > r1, 'every write bumps the revision');
        assert.equal(await s.update('k', 'c', r1), false, 'stale revision');
        assert.equal((await s.get('k'))?.value, 'b');
        assert.equal(await s.update('missing', 'x', 1), false, 'missing key');
        assert.equal(await s.get('missing'), undefined);
      }),
    );

    test(
      'revisions are global and never reused, even after deleting the newest entry',
      withStore(async (s) => {
        await s.put('x', '1');
        await s.put('y', '1');
        const ry = (await s.get('y'))!.revision;
        assert.ok(ry > (await s.get('x'))!.revision);
        await s.delete('y');
        await s.put('y', '2');
        assert.ok((await s.get('y'))!.revision > ry);
      }),
    );

    test(
      'delete: true only when something was deleted; with a revision only at that revision',
      withStore(async (s) => {
        assert.equal(await s.delete('nope'), false);
        await s.put('k', 'v');
        const r = (await s.get('k'))!.revision;
        assert.equal(await s.delete('k', r + 1000), false);
        assert.equal((await s.get('k'))?.value, 'v');
        assert.equal(await s.delete('k', r), true);
        assert.equal(await s.get('k'), undefined);
        await s.put('k', 'v');
        assert.equal(await s.delete('k'), true);
      }),
    );

    test(
      'list returns exactly the keys with the prefix, in key order',
      withStore(async (s) => {
        for (const k of [
          'ipam/b',
          'ipam/a/2',
          'ipam/a/10',
          'ipam/a/1',
          'ipamx',
          'driver/x',
          'ipam/',
          'ipam/\u00e9',
          'ipam/\u{1F600}',
          'ipam/\uFFFD',
        ]) {
          await s.put(k, k.toUpperCase());
        }
        assert.deepEqual(
          (await s.list('ipam/a/')).map((e) => e.key),
          ['ipam/a/1', 'ipam/a/10', 'ipam/a/2'],
        );
        assert.deepEqual(
          (await s.list('ipam/')).map((e) => e.key),
          ['ipam/', 'ipam/a/1', 'ipam/a/10', 'ipam/a/2', 'ipam/b', 'ipam/\u00e9', 'ipam/\uFFFD', 'ipam/\u{1F600}'],
        );
        assert.equal((await s.list('')).length, 10);
        assert.deepEqual(await s.list('zzz'), []);
        const e = (await s.list('ipam/b'))[0]!;
        assert.equal(e.value, 'IPAM/B');
        assert.equal(e.revision, (await s.get('ipam/b'))!.revision);
      }),
    );

    test(
      'txn applies every operation when all conditions hold',
      withStore(async (s) => {
        await s.put('u', 'old');
        await s.put('d', 'x');
        const ru = (await s.get('u'))!.revision;
        const rd = (await s.get('d'))!.revision;
        assert.equal(
          await s.txn([
            { op: 'create', key: 'c', value: 'new' },
            { op: 'update', key: 'u', value: 'updated', revision: ru },
            { op: 'put', key: 'p', value: 'put' },
            { op: 'delete', key: 'd', revision: rd },
            { op: 'delete', key: 'never-existed' },
          ]),
          true,
        );
        const after = await s.list('');
        assert.deepEqual(
          after.map((e) => [e.key, e.value]),
          [
            ['c', 'new'],
            ['p', 'put'],
            ['u', 'updated'],
          ],
        );
        assert.equal(
          new Set(after.map((e) => e.revision)).size,
          1,
          'one revision for every write of a txn, as in etcd',
        );
        assert.ok(after[0]!.revision > Math.max(ru, rd));
      }),
    );

    test(
      'txn is all or nothing: one failed condition and nothing is written',
      withStore(async (s) => {
        await s.put('u', 'old');
        await s.put('taken', 'x');
        const ru = (await s.get('u'))!.revision;
        const failing = [
          { op: 'create', key: 'taken', value: 'y' },
          { op: 'update', key: 'u', value: 'z', revision: ru + 99 },
          { op: 'update', key: 'missing', value: 'z', revision: 1 },
          { op: 'delete', key: 'u', revision: ru + 99 },
          { op: 'delete', key: 'missing', revision: 1 },
        ] as const;
        for (const bad of failing) {
          const before = await s.list('');
          assert.equal(
            await s.txn([
              { op: 'put', key: 'p', value: 'p' },
              { op: 'create', key: 'c', value: 'c' },
              { op: 'update', key: 'u', value: 'changed', revision: ru },
              bad,
            ]),
            false,
            JSON.stringify(bad),
          );
          assert.deepEqual(await s.list(''), before, `nothing written after ${JSON.stringify(bad)}`);
        }
      }),
    );

    test(
      'txn checks each condition against the earlier operations of the same txn',
      withStore(async (s) => {
        assert.equal(
          await s.txn([
            { op: 'create', key: 'k', value: '1' },
            { op: 'create', key: 'k', value: '2' },
          ]),
          false,
        );
        assert.equal(await s.get('k'), undefined);
        assert.equal(
          await s.txn([
            { op: 'put', key: 'k', value: '1' },
            { op: 'delete', key: 'k' },
            { op: 'create', key: 'k', value: '3' },
          ]),
          true,
        );
        assert.equal((await s.get('k'))?.value, '3');
        assert.equal(await s.txn([]), true);
      }),
    );

    test(
      'watch delivers every later write under its prefix in order, until closed',
      withStore(async (s) => {
        await s.put('w/before', 'old');
        const seen: Change[] = [];
        let resets = 0;
        const w = await s.watch('w/', { onChanges: (cs) => seen.push(...cs), onReset: () => resets++ });
        await s.put('other/x', 'not watched');
        assert.equal(await s.create('w/a', '1'), true);
        assert.equal(await s.create('w/a', 'refused'), false);
        const ra = (await s.get('w/a'))!.revision;
        assert.equal(await s.update('w/a', '2', ra), true);
        assert.equal(await s.delete('w/missing'), false);
        assert.equal(
          await s.txn([
            { op: 'delete', key: 'w/before' },
            { op: 'put', key: 'w/b', value: '3' },
            { op: 'put', key: 'other/y', value: 'not watched' },
          ]),
          true,
        );
        assert.equal(await s.delete('w/a'), true);
        const want: Change[] = [
          { type: 'put', key: 'w/a', value: '1' },
          { type: 'put', key: 'w/a', value: '2' },
          { type: 'delete', key: 'w/before', value: undefined },
          { type: 'put', key: 'w/b', value: '3' },
          { type: 'delete', key: 'w/a', value: undefined },
        ];
        await until(
          () => seen.length >= want.length,
          () => JSON.stringify(seen),
        );
        // The txn's two changes may come in either key order within it (etcd sorts them; SQLite in op order).
        const txnPart = (cs: Change[]) => [...cs.slice(0, 2), ...sortByKey(cs.slice(2, 4)), ...cs.slice(4)];
        assert.deepEqual(txnPart(seen), txnPart(want));
        await w.close();
        await s.put('w/after', 'unseen');
        await s.put('marker', 'x'); // a write after it, so that a late delivery would have arrived
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(seen.length, want.length, 'nothing delivered after close');
        assert.equal(resets, 0);
      }),
    );

    test('operations after close fail with STORE_ERROR', async () => {
      const s = await make();
      await s.put('k', 'v');
      await s.close();
      await s.close();
      await assert.rejects(s.get('k'), (e) => isMacnetError(e, 'STORE_ERROR'));
      await assert.rejects(s.put('k', 'w'), (e) => isMacnetError(e, 'STORE_ERROR'));
    });
  });
}
