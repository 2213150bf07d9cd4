// The Store contract, run against MemoryStore and SqliteStore alike: what the IPAM and the drivers rely on.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { isMacnetError } from '../../src/errors';
import { MemoryStore, compareKeys } from '../../src/store/memory';
import { SqliteStore, prefixEnd } from '../../src/store/sqlite';
import type { Store } from '../../src/store/types';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-store-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
const kinds: [string, () => Store][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => SqliteStore.open(path.join(tmp, `s${seq++}`, 'state.db'))],
];

for (const [kind, make] of kinds) {
  describe(`Store contract: ${kind}`, () => {
    const withStore = (fn: (s: Store) => Promise<void>) => async () => {
      const s = make();
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

    test('operations after close fail with STORE_ERROR', async () => {
      const s = make();
      await s.put('k', 'v');
      await s.close();
      await s.close();
      await assert.rejects(s.get('k'), (e) => isMacnetError(e, 'STORE_ERROR'));
      await assert.rejects(s.put('k', 'w'), (e) => isMacnetError(e, 'STORE_ERROR'));
    });
  });
}

describe('SqliteStore specifics', () => {
  test('state persists across close and reopen, revisions keep growing', async () => {
    const file = path.join(tmp, 'persist', 'state.db');
    const a = SqliteStore.open(file);
    await a.create('ipam/x', 'one');
    await a.put('ipam/y', 'two');
    await a.txn([{ op: 'create', key: 'ipam/z', value: 'three' }]);
    const ry = (await a.get('ipam/y'))!.revision;
    await a.delete('ipam/z');
    await a.close();
    const b = SqliteStore.open(file);
    try {
      assert.deepEqual(
        (await b.list('ipam/')).map((e) => [e.key, e.value, e.revision]),
        [
          ['ipam/x', 'one', (await b.get('ipam/x'))!.revision],
          ['ipam/y', 'two', ry],
        ],
      );
      assert.equal(await b.create('ipam/x', 'again'), false);
      await b.put('ipam/w', 'four');
      assert.ok((await b.get('ipam/w'))!.revision > ry + 1, 'the deleted ipam/z revision is not handed out again');
    } finally {
      await b.close();
    }
  });

  test('creates the state dir with mode 0700, WAL journal', async () => {
    const dir = path.join(tmp, 'fresh', 'state');
    const s = SqliteStore.open(path.join(dir, 'state.db'));
    try {
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      await s.put('k', 'v');
      assert.ok(fs.existsSync(path.join(dir, 'state.db-wal')));
    } finally {
      await s.close();
    }
  });

  test('two handles on one file see each other and create stays atomic between them', async () => {
    const file = path.join(tmp, 'shared', 'state.db');
    const a = SqliteStore.open(file);
    const b = SqliteStore.open(file);
    try {
      assert.equal(await a.create('k', 'a'), true);
      assert.equal(await b.create('k', 'b'), false);
      await b.put('j', 'b');
      assert.ok((await a.get('j'))!.revision > (await a.get('k'))!.revision, 'one revision counter for both');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('an unusable path is STORE_ERROR naming the operation and the path', () => {
    const file = path.join(tmp, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    assert.throws(
      () => SqliteStore.open(path.join(file, 'state.db')),
      (e) => isMacnetError(e, 'STORE_ERROR') && e.message.startsWith('store open in ') && e.message.includes(file),
    );
    const garbage = path.join(tmp, 'garbage.db');
    fs.writeFileSync(garbage, 'this is not a database, just enough bytes to be read as a header '.repeat(10));
    assert.throws(
      () => SqliteStore.open(garbage),
      (e) => isMacnetError(e, 'STORE_ERROR') && e.message.includes(garbage) && /SQLITE_NOTADB/.test(e.message),
    );
  });

  test('a failing write is STORE_ERROR naming the operation, the key and the path, with the SQLite code', async () => {
    const file = path.join(tmp, 'failing', 'state.db');
    const s = SqliteStore.open(file);
    // A trigger stands in for a full disk or an I/O error: SQLite aborts the statement with this message.
    const raw = new Database(file);
    raw.exec(
      "CREATE TRIGGER no_boom BEFORE INSERT ON kv WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'simulated failure'); END",
    );
    raw.close();
    try {
      await assert.rejects(s.create('boom', 'x'), {
        code: 'STORE_ERROR',
        message: `store create "boom" in ${file}: SQLITE_CONSTRAINT_TRIGGER: simulated failure`,
      });
      await assert.rejects(
        s.txn([
          { op: 'put', key: 'ok', value: '1' },
          { op: 'create', key: 'boom', value: 'x' },
        ]),
        { code: 'STORE_ERROR' },
      );
      assert.equal(await s.get('ok'), undefined, 'rolled back');
    } finally {
      await s.close();
    }
    await assert.rejects(s.put('k', 'v'), {
      code: 'STORE_ERROR',
      message: `store put "k" in ${file}: the store is closed`,
    });
  });

  test('prefixEnd bounds a prefix scan in code point order', () => {
    assert.equal(prefixEnd(''), undefined);
    assert.equal(prefixEnd('ipam/'), 'ipam0');
    assert.equal(prefixEnd('a\u{10FFFF}'), 'b');
    assert.equal(prefixEnd('a\uD7FF'), 'a\uE000');
  });

  test('MemoryStore orders keys like SQLite: by code point, not UTF-16 unit', () => {
    assert.ok(compareKeys('\uFFFD', '\u{1F600}') < 0);
    assert.ok(compareKeys('a', 'ab') < 0);
    assert.equal(compareKeys('x', 'x'), 0);
  });
});
