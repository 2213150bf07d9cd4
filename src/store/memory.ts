// An in-memory Store with exactly the semantics of the SQLite store, never a daemon's: nothing is persisted, so a
// daemon running on it would forget every network at restart. Tests of the IPAM allocator and the drivers use it
// to run without a state dir; test/store/store.test.ts runs the same contract suite against both. Outside tests,
// `macnet store migrate` migrates the key layout of a copy of the SQLite state in it, so that the file is only read.
import type { Change, Entry, Store, StoreWatch, TxnOp, WatchHandlers } from './types';
import { Watchers } from './watchers';
import { MacnetError } from '../errors';

interface Slot {
  value: string;
  revision: number;
}

/**
 * Key order as SQLite's BINARY collation sees it: UTF-8 bytes, i.e. code points. Plain `<` compares UTF-16
 * code units, which differs for characters above U+FFFF versus U+E000..U+FFFF; both stores must list alike.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const surrogate = (c: number) => c >= 0xd800 && c <= 0xdfff;
    if (surrogate(x) !== surrogate(y)) return surrogate(x) ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export class MemoryStore implements Store {
  private readonly map = new Map<string, Slot>();
  /** Global like etcd's: a deleted key's revision is never handed out again. */
  private revision = 0;
  private closed = false;
  private readonly watchers = new Watchers();

  private check(op: string): void {
    if (this.closed) throw new MacnetError('STORE_ERROR', `store ${op}: the memory store is closed`, { op });
  }

  async get(key: string): Promise<Entry | undefined> {
    this.check('get');
    const s = this.map.get(key);
    return s && { key, value: s.value, revision: s.revision };
  }

  async list(prefix: string): Promise<Entry[]> {
    this.check('list');
    const out: Entry[] = [];
    for (const [key, s] of this.map)
      if (key.startsWith(prefix)) out.push({ key, value: s.value, revision: s.revision });
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async create(key: string, value: string): Promise<boolean> {
    this.check('create');
    return this.txnSync([{ op: 'create', key, value }]);
  }

  async update(key: string, value: string, revision: number): Promise<boolean> {
    this.check('update');
    return this.txnSync([{ op: 'update', key, value, revision }]);
  }

  async put(key: string, value: string): Promise<void> {
    this.check('put');
    this.txnSync([{ op: 'put', key, value }]);
  }

  async delete(key: string, revision?: number): Promise<boolean> {
    this.check('delete');
    const existed = this.map.has(key);
    const ok = this.txnSync([revision === undefined ? { op: 'delete', key } : { op: 'delete', key, revision }]);
    return ok && existed;
  }

  async txn(ops: readonly TxnOp[]): Promise<boolean> {
    this.check('txn');
    return this.txnSync(ops);
  }

  /**
   * Conditions are checked in order against the state as the earlier operations of the same txn left it (as
   * SQLite does inside one transaction); only when all hold is anything written.
   */
  private txnSync(ops: readonly TxnOp[]): boolean {
    const staged = new Map<string, Slot | undefined>();
    const current = (key: string) => (staged.has(key) ? staged.get(key) : this.map.get(key));
    // One new revision for every write of the txn, as the SQLite store (and etcd) do.
    const rev = this.revision + 1;
    let wrote = false;
    for (const o of ops) {
      const cur = current(o.key);
      switch (o.op) {
        case 'create':
          if (cur) return false;
          staged.set(o.key, { value: o.value, revision: rev });
          wrote = true;
          break;
        case 'update':
          if (!cur || cur.revision !== o.revision) return false;
          staged.set(o.key, { value: o.value, revision: rev });
          wrote = true;
          break;
        case 'put':
          staged.set(o.key, { value: o.value, revision: rev });
          wrote = true;
          break;
        case 'delete':
          if (o.revision !== undefined && (!cur || cur.revision !== o.revision)) return false;
          staged.set(o.key, undefined);
          break;
      }
    }
    const changes: Change[] = [];
    for (const [key, slot] of staged) {
      const before = this.map.get(key);
      if (slot) this.map.set(key, slot);
      else this.map.delete(key);
      if (slot) changes.push({ type: 'put', key, value: slot.value });
      else if (before) changes.push({ type: 'delete', key, value: undefined });
    }
    this.watchers.notify(changes);
    if (wrote) this.revision = rev;
    return true;
  }

  /** Nothing is persisted: nothing to wait for. */
  async sync(): Promise<void> {
    this.check('sync');
  }

  async watch(prefix: string, handlers: WatchHandlers): Promise<StoreWatch> {
    this.check('watch');
    return this.watchers.add(prefix, handlers);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
  }
}
