// The SQLite store's tables and statements: the layout (kv and meta, versioned in meta.schema), the prepared
// queries, and a transaction of TxnOps applied with one new revision (sqlite.ts says why the counter is a row).
import type Database from 'better-sqlite3';
import { tooNew } from './schema';
import type { TxnOp } from './types';

/** The tables' layout (meta.schema): kv and meta as below. The keys' layout is versioned apart (schema.ts). */
const TABLES_VERSION = 1;

/** Before anything is written: a database whose tables a newer macnet laid out is not this code's to change. */
export function checkTables(db: Database.Database, file: string): void {
  const tables = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  const found = tables
    ? db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get()
    : undefined;
  if (found && found.value > TABLES_VERSION) throw tooNew(file, `table layout ${found.value}`, `${TABLES_VERSION}`);
}

export function createTables(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, revision INTEGER NOT NULL)
      WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ${TABLES_VERSION}), ('revision', 0);
  `);
}

/** Thrown inside a transaction when a condition fails, so that better-sqlite3 rolls it back. */
export class ConditionFailed extends Error {}

interface Row {
  key: string;
  value: string;
  revision: number;
}

/**
 * The smallest string greater than every string that starts with `prefix`, in SQLite's BINARY (UTF-8 byte,
 * i.e. code point) order, so that a prefix scan is an index range `key >= prefix AND key < end`.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (cps.length) {
    const last = cps.pop()!;
    if (last === 0x10ffff) continue;
    // Surrogate code points have no UTF-8 form; the next encodable one follows them.
    return String.fromCodePoint(...cps, last + 1 === 0xd800 ? 0xe000 : last + 1);
  }
  return undefined;
}

export type Statements = ReturnType<typeof prepare>;

export function prepare(db: Database.Database) {
  const get = db.prepare<[string], { value: string; revision: number }>('SELECT value, revision FROM kv WHERE key = ?');
  const listFrom = db.prepare<[string], Row>('SELECT key, value, revision FROM kv WHERE key >= ? ORDER BY key');
  const listRange = db.prepare<[string, string], Row>(
    'SELECT key, value, revision FROM kv WHERE key >= ? AND key < ? ORDER BY key',
  );
  const nextRevision = db.prepare<[], { value: number }>(
    "UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value",
  );
  // A plain INSERT: the primary key's unique constraint is what makes create an atomic reservation.
  const insert = db.prepare<[string, string, number]>('INSERT INTO kv (key, value, revision) VALUES (?, ?, ?)');
  const update = db.prepare<[string, number, string, number]>(
    'UPDATE kv SET value = ?, revision = ? WHERE key = ? AND revision = ?',
  );
  const upsert = db.prepare<[string, string, number]>(
    'INSERT INTO kv (key, value, revision) VALUES (?, ?, ?) ON CONFLICT ' +
      '(key) DO UPDATE SET value = excluded.value, revision = excluded.revision',
  );
  const del = db.prepare<[string]>('DELETE FROM kv WHERE key = ?');
  const delAt = db.prepare<[string, number]>('DELETE FROM kv WHERE key = ? AND revision = ?');

  const apply = db.transaction((ops: readonly TxnOp[]) => {
    // As in etcd, every write of one transaction gets the same new revision; taken only if something is written.
    let revision: number | undefined;
    const rev = () => (revision ??= nextRevision.get()!.value);
    for (const o of ops) {
      switch (o.op) {
        case 'create':
          try {
            insert.run(o.key, o.value, rev());
          } catch (e) {
            if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new ConditionFailed();
            throw e;
          }
          break;
        case 'update':
          if (update.run(o.value, rev(), o.key, o.revision).changes === 0) throw new ConditionFailed();
          break;
        case 'put':
          upsert.run(o.key, o.value, rev());
          break;
        case 'delete':
          if (o.revision === undefined) del.run(o.key);
          else if (delAt.run(o.key, o.revision).changes === 0) throw new ConditionFailed();
          break;
      }
    }
  });
  return { get, listFrom, listRange, del, delAt, apply };
}
