// The embedded state store: one SQLite file in the state dir, through better-sqlite3.
//
// Schema: kv(key TEXT PRIMARY KEY, value TEXT, revision INTEGER) holds every entry; meta holds the global
// revision counter and the tables' layout version (the keys' layout has its own, schema.ts). The counter lives
// in the database rather than in this process because revisions must never repeat, not even after the entry
// holding the highest one is deleted and the daemon restarts (a stale compare-and-set would otherwise
// succeed), and a second process (the CLI) may write the same file. Every write runs in a BEGIN IMMEDIATE
// transaction that bumps the counter once.
//
// Durability (docs/ipam.md, "Durability"): WAL with synchronous=NORMAL, so a commit is a few write() calls and
// no fsync, durable against a crash of the process; sync() then makes every write that resolved before it
// durable against power loss too, with one fsync of the WAL for all the writes of all its callers (group-sync.ts,
// on the thread pool). SQLite's own checkpoints, which fsync inside a commit, are replaced by passive ones on a
// worker thread (checkpointer.ts). So no fsync ever runs on the event loop. better-sqlite3 is synchronous; each
// call blocks the event loop for the few microseconds one local transaction takes, which is cheaper than a
// thread hop. Never longer: busy_timeout is 0 once open, so a write that finds another process's lock (the CLI,
// an operator's sqlite3 in a transaction) fails at once with SQLITE_BUSY and is retried after a timer, up to
// BUSY_WAIT_MS, while other calls go on; writes keep their order (a queue) while one waits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { MacnetError } from '../errors';
import { CHECKPOINT_EVERY, Checkpointer } from './checkpointer';
import { GroupSync } from './group-sync';
import { checkTables, ConditionFailed, createTables, prefixEnd, prepare, type Statements } from './sqlite-tables';
import type { Change, Entry, Store, StoreWatch, TxnOp, WatchHandlers } from './types';
import { Watchers } from './watchers';

export interface SqliteOptions {
  /**
   * 'group' (the default): sync() makes writes durable against power loss, as described above. 'none': sync()
   * resolves at once and SQLite checkpoints on its own, inside commits: the store as it was before it had
   * sync(), durable against a crash of the process only; for the bench's comparison and the power-cut test's
   * control run, never for a daemon.
   */
  durability?: 'group' | 'none';
}

/** How long a write waits for another process's lock before STORE_ERROR (in timer steps, not blocking). */
const BUSY_WAIT_MS = 5000;
/** At open only (nothing is served yet): SQLite's own blocking wait for a lock. */
const OPEN_BUSY_TIMEOUT_MS = 5000;
const MAX_RETRY_STEP_MS = 50;

const isBusy = (e: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: string }).code ?? ''));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The database, its WAL and its shared-memory index readable by root only, whatever the state dir's mode, the
 * umask or an older version left: SQLite creates -wal and -shm with the mode of the database file.
 */
function restrictFiles(file: string): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
  for (const f of [`${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly sql: Statements;
  private closed = false;
  /** Writes in call order, also while one waits for another process's lock. */
  private writes: Promise<unknown> = Promise.resolve();
  /** Absent with durability 'none'. */
  readonly group: GroupSync | undefined;
  readonly checkpointer: Checkpointer | undefined;
  private sinceCheckpoint = 0;
  private readonly watchers = new Watchers();

  private constructor(
    readonly file: string,
    db: Database.Database,
    walFd: number | undefined,
  ) {
    this.db = db;
    this.sql = prepare(db);
    if (walFd !== undefined) {
      this.group = new GroupSync(walFd);
      this.checkpointer = new Checkpointer(
        file,
        () => db.pragma('wal_checkpoint(PASSIVE)'),
        (run) => this.queued(run),
      );
    }
  }

  /** Opens (creating if missing) the database file at `file`; its directory is created with mode 0700. */
  static open(file: string, opts: SqliteOptions = {}): SqliteStore {
    const dir = path.dirname(path.resolve(file));
    let db: Database.Database | undefined;
    let walFd: number | undefined;
    try {
      // The state holds every network's addresses and options: readable by root only.
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      restrictFiles(file);
      db = new Database(file, { timeout: OPEN_BUSY_TIMEOUT_MS });
      checkTables(db, file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      createTables(db);
      restrictFiles(file); // -wal and -shm exist now
      if ((opts.durability ?? 'group') === 'group') {
        db.pragma('wal_autocheckpoint = 0');
        walFd = fs.openSync(`${file}-wal`, fs.constants.O_RDONLY);
        // The database and WAL files' directory entries: without them on disk a synced WAL can vanish.
        const dfd = fs.openSync(dir, fs.constants.O_RDONLY);
        try {
          fs.fsyncSync(dfd);
        } finally {
          fs.closeSync(dfd);
        }
      }
      db.pragma('busy_timeout = 0');
      return new SqliteStore(file, db, walFd);
    } catch (e) {
      if (walFd !== undefined) fs.closeSync(walFd);
      db?.close();
      throw storeError('open', file, undefined, e);
    }
  }

  async get(key: string): Promise<Entry | undefined> {
    return this.run('get', key, () => {
      const r = this.sql.get.get(key);
      return r && { key, value: r.value, revision: r.revision };
    });
  }

  async list(prefix: string): Promise<Entry[]> {
    return this.run('list', prefix, () => {
      const end = prefixEnd(prefix);
      const rows = end === undefined ? this.sql.listFrom.all(prefix) : this.sql.listRange.all(prefix, end);
      return rows.map((r) => ({ key: r.key, value: r.value, revision: r.revision }));
    });
  }

  async create(key: string, value: string): Promise<boolean> {
    return this.write('create', key, [{ op: 'create', key, value }]);
  }

  async update(key: string, value: string, revision: number): Promise<boolean> {
    return this.write('update', key, [{ op: 'update', key, value, revision }]);
  }

  async put(key: string, value: string): Promise<void> {
    await this.write('put', key, [{ op: 'put', key, value }]);
  }

  async delete(key: string, revision?: number): Promise<boolean> {
    return this.queued(() =>
      this.run('delete', key, () => {
        const n = revision === undefined ? this.sql.del.run(key).changes : this.sql.delAt.run(key, revision).changes;
        if (n > 0) {
          this.wrote();
          this.watchers.notify([{ type: 'delete', key, value: undefined }]);
        }
        return n > 0;
      }),
    );
  }

  async txn(ops: readonly TxnOp[]): Promise<boolean> {
    return this.write('txn', ops.length === 1 ? ops[0]!.key : `${ops.length} operations`, ops);
  }

  /**
   * Resolves once every write that resolved before the call is on disk, durable against power loss (one fsync
   * for the writes of every caller waiting meanwhile); with durability 'none', at once.
   */
  async sync(): Promise<void> {
    if (this.closed) throw this.closedError('sync');
    try {
      await this.group?.sync();
    } catch (e) {
      throw storeError('sync', this.file, undefined, e);
    }
  }

  /** A commit that wrote: counted for the next sync(), and every CHECKPOINT_EVERY of them a checkpoint. */
  private wrote(): void {
    if (!this.group) return;
    this.group.wrote();
    if (++this.sinceCheckpoint >= CHECKPOINT_EVERY) {
      this.sinceCheckpoint = 0;
      this.checkpointer!.request();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchers.clear();
    try {
      await this.checkpointer?.close();
      await this.group?.close();
      this.db.close();
    } catch (e) {
      throw storeError('close', this.file, undefined, e);
    }
  }

  /** Applies `ops` in order in one immediate transaction; any failed condition rolls all of them back. */
  private write(op: string, what: string, ops: readonly TxnOp[]): Promise<boolean> {
    return this.queued(() =>
      this.run(op, what, () => {
        try {
          const changes = this.watchers.empty ? [] : this.changesOf(ops);
          this.sql.apply.immediate(ops);
          this.wrote();
          this.watchers.notify(changes);
          return true;
        } catch (e) {
          if (e instanceof ConditionFailed) return false;
          throw e;
        }
      }),
    );
  }

  /**
   * What `ops` will change, read before they apply (only this process writes, and the caller runs it in the same
   * turn as the transaction): a key's last write wins, a delete of a missing key changes nothing.
   */
  private changesOf(ops: readonly TxnOp[]): Change[] {
    const last = new Map<string, TxnOp>();
    for (const o of ops) if (this.watchers.wants(o.key)) last.set(o.key, o);
    const out: Change[] = [];
    for (const [key, o] of last) {
      if (o.op !== 'delete') out.push({ type: 'put', key, value: o.value });
      // A key that is not there: nothing deleted, nothing to tell.
      else if (this.sql.get.get(key)) out.push({ type: 'delete', key, value: undefined });
    }
    return out;
  }

  async watch(prefix: string, handlers: WatchHandlers): Promise<StoreWatch> {
    if (this.closed) throw this.closedError('watch', prefix);
    return this.watchers.add(prefix, handlers);
  }

  private queued<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.writes.then(fn, fn);
    this.writes = p.catch(() => undefined);
    return p;
  }

  private closedError(op: string, what?: string): MacnetError {
    const subject = what === undefined ? '' : ` ${JSON.stringify(what)}`;
    return new MacnetError('STORE_ERROR', `store ${op}${subject} in ${this.file}: the store is closed`, {
      op,
      path: this.file,
    });
  }

  /** Runs `fn`; SQLITE_BUSY (another process's lock) is retried after timers, never by blocking. */
  private async run<T>(op: string, what: string, fn: () => T): Promise<T> {
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (let step = 1; ; step = Math.min(step * 2, MAX_RETRY_STEP_MS)) {
      if (this.closed) throw this.closedError(op, what);
      try {
        return fn();
      } catch (e) {
        if (!isBusy(e) || Date.now() + step > deadline) throw storeError(op, this.file, what, e, BUSY_WAIT_MS);
      }
      await sleep(step);
    }
  }
}

function storeError(op: string, file: string, what: string | undefined, e: unknown, waited?: number): MacnetError {
  if (e instanceof MacnetError) return e;
  const code = (e as { code?: string }).code;
  const msg =
    (e instanceof Error ? e.message : String(e)) +
    (isBusy(e) && waited ? ` (another process held the database's write lock for over ${waited} ms)` : '');
  const subject = what === undefined ? '' : ` ${JSON.stringify(what)}`;
  return new MacnetError(
    'STORE_ERROR',
    `store ${op}${subject} in ${file}: ${code ? `${code}: ` : ''}${msg}`,
    { op, path: file, ...(what === undefined ? {} : { key: what }), ...(code ? { sqlite: code } : {}) },
    e,
  );
}
