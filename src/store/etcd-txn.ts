// How a Store txn becomes one etcd transaction. The Store contract checks each condition against the state the
// earlier operations of the same txn left (as SQLite does inside BEGIN ... COMMIT), but an etcd transaction
// evaluates every compare against the state before it, and refuses two writes of one key ("duplicate key given
// in txn request"). So the ops are folded here, in order, key by key: a condition on a key this txn has not
// written yet becomes an etcd compare; a condition on a key it has written is decided now, from what it wrote;
// the writes collapse to the last one per key. The result is the same all-or-nothing outcome with one etcd
// transaction: compares, then at most one put or delete per key.
import type { TxnOp } from './types';

export interface EtcdCompare {
  readonly key: string;
  /** create: the key must not exist (create_revision == 0). mod: its mod_revision must equal `revision`. */
  readonly target: 'create' | 'mod';
  readonly revision: number;
}

export interface EtcdPlan {
  /** False when a condition fails inside the txn itself: nothing to send, the txn is refused. */
  readonly possible: boolean;
  readonly compares: readonly EtcdCompare[];
  /** The final write per key, in the order of each key's first write: a value to put, or null to delete. */
  readonly writes: ReadonlyMap<string, string | null>;
}

const IMPOSSIBLE: EtcdPlan = { possible: false, compares: [], writes: new Map() };

export function planTxn(ops: readonly TxnOp[]): EtcdPlan {
  const compares: EtcdCompare[] = [];
  const writes = new Map<string, string | null>();
  for (const o of ops) {
    // What this txn wrote to the key so far: a value (it exists, at the txn's own revision, not yet known),
    // null (deleted), or undefined (untouched: the state before the txn decides, through a compare).
    const mine = writes.get(o.key);
    const untouched = !writes.has(o.key);
    switch (o.op) {
      case 'create':
        if (untouched) compares.push({ key: o.key, target: 'create', revision: 0 });
        else if (mine !== null) return IMPOSSIBLE;
        writes.set(o.key, o.value);
        break;
      case 'update':
        // A key written earlier in this txn has the txn's revision, which no caller can know beforehand; and an
        // existing key never has revision 0 or less, so such an update cannot hold (etcd's mod_revision of a
        // missing key is 0: the compare alone would let it through).
        if (!untouched || o.revision <= 0) return IMPOSSIBLE;
        compares.push({ key: o.key, target: 'mod', revision: o.revision });
        writes.set(o.key, o.value);
        break;
      case 'put':
        writes.set(o.key, o.value);
        break;
      case 'delete':
        if (o.revision !== undefined) {
          if (!untouched || o.revision <= 0) return IMPOSSIBLE;
          compares.push({ key: o.key, target: 'mod', revision: o.revision });
        }
        writes.set(o.key, null);
        break;
    }
  }
  return { possible: true, compares, writes };
}
