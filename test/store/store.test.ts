// The Store contract (contract.ts) run against MemoryStore and SqliteStore, and what is SQLite's own.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { isMacnetError } from '../../src/errors';
import { MemoryStore, compareKeys } from '../../src/store/memory';
import { SqliteStore } from '../../src/store/sqlite';
import { prefixEnd } from '../../src/store/sqlite-tables';
import type { Store } from '../../src/store/types';
import { storeContract } from './contract';

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

for (const [kind, make] of kinds) storeContract(kind, make);

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
