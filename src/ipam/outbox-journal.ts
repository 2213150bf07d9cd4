// The outbox's entries (outbox.ts) kept in this host's own store, so that a daemon restarted before etcd answers
// again still settles them. With --store etcd that store is the state dir's SQLite (src/cli/store-open.ts): it
// answers while etcd does not, and it is this host's alone, as the entries are (each deletes a record of this
// host). Keys: `ipam-outbox/<the address key in the shared store>`, outside `ipam/` so that `macnet store
// migrate`, which moves and deletes the `ipam/` keys of the state dir, never takes them for pool state.
//
// An entry is written, and synced, before the call that made it answers (a release is answered to dockerd then:
// it never asks again), and deleted, and synced, before its address can be handed out again here: a kept entry
// that outlived its settle would delete the next record this host writes for that address.
//
// A release's key ends in `#<its id>` (several releases of one gateway may wait at once: outbox.ts). A pool
// release kept during an outage (pool-release.ts) is `ipam-outbox/<the pool key>#<its id>`.
import type { Store, TxnOp } from '../store/types';
import { decodeRecord, encodeRecord } from '../store/records';
import { POOLS } from './keys';

export const OUTBOX = 'ipam-outbox/';

/**
 * What a kept entry deletes in the shared store: the record with exactly `value` (a reservation etcd may or may
 * not have applied), or, without it, the record if it still names this host and is no gateway (a release).
 */
export interface KeptEntry {
  readonly value?: string;
}

export class OutboxJournal {
  /** Read at load, until each subnet's outbox takes its own. */
  private readonly loaded = new Map<string, KeptEntry>();
  /** The pool releases read at load (keys under the pools' prefix), until the pool releases take them. */
  private readonly pools: string[] = [];

  constructor(private readonly local: Store) {}

  /** Reads the kept entries; called before the pools are loaded, whose indexes then take theirs (take). */
  async load(): Promise<void> {
    this.loaded.clear();
    this.pools.length = 0;
    for (const e of await this.local.list(OUTBOX)) {
      const key = e.key.slice(OUTBOX.length);
      if (key.startsWith(POOLS)) this.pools.push(key);
      else this.loaded.set(key, decodeRecord<KeptEntry>(e.key, e.value, 'IPAM outbox load'));
    }
  }

  /** The loaded pool releases' keys (`<pool key>#<id>`), handed over once. */
  takePools(): string[] {
    return this.pools.splice(0);
  }

  /** The loaded entries of one subnet (the prefix of its address keys), handed over once. */
  take(prefix: string): [string, KeptEntry][] {
    const out = [...this.loaded].filter(([key]) => key.startsWith(prefix));
    for (const [key] of out) this.loaded.delete(key);
    return out;
  }

  /**
   * Deletes the loaded entries no subnet took: their pool is gone from the shared store, and with it every
   * address record of the subnet (purged with the last pool, or residue that the next pool purges).
   */
  async dropUntaken(): Promise<void> {
    const keys = [...this.loaded.keys()];
    this.loaded.clear();
    await this.settled(keys);
  }

  /**
   * Keeps `entries` durably. The write is queued when this is called (SqliteStore runs writes in call order),
   * so that a settle started later deletes it after it is written.
   */
  async keep(entries: readonly { key: string; value?: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.local.txn(
      entries.map((e): TxnOp => {
        const rec: KeptEntry = e.value === undefined ? {} : { value: e.value };
        return { op: 'put', key: OUTBOX + e.key, value: encodeRecord(rec) };
      }),
    );
    await this.local.sync();
  }

  /** Deletes the entries of `keys` (settled), durably. */
  async settled(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.local.txn(keys.map((key): TxnOp => ({ op: 'delete', key: OUTBOX + key })));
    await this.local.sync();
  }
}
