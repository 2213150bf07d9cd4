// A view of a store under a key prefix: what one host of a cluster keeps to itself (src/cli/store-open.ts) lives in
// the shared store under hosts/<host id>/, and the code that owns those records (the driver, the DHCP leases) reads
// and writes its usual keys, unaware of the prefix.
import type { Entry, Store, TxnOp } from './types';

export function scoped(store: Store, prefix: string): Store {
  const inner = (key: string) => prefix + key;
  const outer = (e: Entry): Entry => ({ key: e.key.slice(prefix.length), value: e.value, revision: e.revision });
  return {
    get: async (key) => {
      const e = await store.get(inner(key));
      return e && outer(e);
    },
    list: async (p) => (await store.list(inner(p))).map(outer),
    create: (key, value) => store.create(inner(key), value),
    update: (key, value, revision) => store.update(inner(key), value, revision),
    put: (key, value) => store.put(inner(key), value),
    delete: (key, revision) => store.delete(inner(key), revision),
    txn: (ops: readonly TxnOp[]) => store.txn(ops.map((o) => ({ ...o, key: inner(o.key) }))),
    sync: () => store.sync(),
    // The view owns nothing: whoever opened the store closes it.
    close: async () => undefined,
  };
}
