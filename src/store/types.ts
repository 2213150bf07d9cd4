// The state store behind every part of macnet that must survive a restart. A key/value interface with
// revisions and compare-and-set, shaped after etcd's so that the cluster store can implement it without
// changing callers; SQLite (sqlite.ts) is the embedded default, memory.ts a fake for unit tests only.
//
// Keys are '/'-separated paths, namespaced by owner: "ipam/...", "driver/networks/<id>", ... Values are
// strings (callers store JSON). Every write bumps the entry's revision; revisions only grow.

export interface Entry {
  readonly key: string;
  readonly value: string;
  /** Changes with every write of this key; compare it to detect a concurrent change. */
  readonly revision: number;
}

export type TxnOp =
  | { readonly op: 'create'; readonly key: string; readonly value: string }
  | { readonly op: 'update'; readonly key: string; readonly value: string; readonly revision: number }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string; readonly revision?: number };

/** One write seen by a watch (Store.watch), in the order the store applied them. */
export interface Change {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** put: the new value; delete: undefined (asking etcd for deleted values too costs its watchers' throughput). */
  readonly value: string | undefined;
}

export interface StoreWatch {
  close(): Promise<void>;
}

export interface WatchHandlers {
  /** Writes under the prefix in the order applied (a transaction's together, maybe with others); never twice. */
  onChanges(changes: readonly Change[]): void;
  /**
   * Changes may have been missed (etcd compacted its history while the watch was cut off): the watcher reads the
   * prefix again. The watch goes on by itself.
   */
  onReset(): void;
}

export interface Store {
  get(key: string): Promise<Entry | undefined>;
  /** Every entry whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<Entry[]>;
  /** Creates `key` only if it does not exist: the atomic reservation primitive. False if it existed. */
  create(key: string, value: string): Promise<boolean>;
  /** Compare-and-set: writes only if the entry is at `revision`. False if it changed or is gone. */
  update(key: string, value: string, revision: number): Promise<boolean>;
  /** Unconditional write. */
  put(key: string, value: string): Promise<void>;
  /** Deletes `key` (only at `revision` when given). True if something was deleted. */
  delete(key: string, revision?: number): Promise<boolean>;
  /** All operations or none: every create/update/delete condition must hold, then every write applies. */
  txn(ops: readonly TxnOp[]): Promise<boolean>;
  /**
   * Resolves once every write that resolved before the call survives a power loss. A write resolves when it is
   * applied (later reads and conditions see it) and, for SQLite, durable against a crash of the process only: a
   * caller that must not answer before its writes are on disk (an allocation, before dockerd learns it) awaits
   * this, outside its locks, so that the writes of concurrent callers share one fsync (group commit). A store
   * whose writes are durable when they resolve (a cluster store after consensus) resolves at once.
   */
  sync(): Promise<void>;
  /**
   * Follows the writes under `prefix` from the moment the promise resolves: every write after that is delivered,
   * by whatever process made it (on SQLite and in memory only this process writes). Closed with the store too.
   */
  watch(prefix: string, handlers: WatchHandlers): Promise<StoreWatch>;
  close(): Promise<void>;
}
