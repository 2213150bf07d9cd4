// ReleasePool, and pool releases made while a cluster store does not answer. dockerd removes a network although
// its ReleasePool failed, and never asks again (measured on Docker 20.10 and 28): a release refused during an
// etcd outage would leave the pool's counts in the store one too high for ever. So, as a ReleaseAddress is
// (outbox.ts), a ReleasePool that the store answers with STORE_UNAVAILABLE is accepted: the pool leaves this
// host's table at once (its count here is one lower), and the decrement is kept in this host's own store
// (outbox-journal.ts, synced before the call answers), then applied when the store answers again: in the
// background on the outbox's cadence (settleEvery), before the next pool operation, and at the next start.
//
// Applied once: each release has an id, written into the pool record with the decrement (PoolRecord.settled,
// one per host, in the same compare-and-set), so that an answer lost on the way, or a restart after the
// decrement and before the entry's delete, finds it applied. At the record's last count it is deleted, and the
// subnet's address and sticky records with it if no pool on the subnet is left in the store.
//
// A subnet whose last pool here goes during an outage keeps its index while releases of its addresses wait
// (the gateway's among them): it is dropped once they are settled. A RequestPool meanwhile settles first, and
// while the store does not answer it fails with the store's STORE_UNAVAILABLE, as any pool change does.
import { randomUUID } from 'node:crypto';
import { isMacnetError, MacnetError } from '../errors';
import type { DhcpLeases } from '../lan';
import type { Store } from '../store/types';
import type { KeyedMutex } from '../types/mutex';
import { parseCidrBig } from '../types/address';
import { decodeRecord, encodeRecord } from '../store/records';
import { CURSORS, POOLS, countsAddUp, type PoolRecord } from './keys';
import { indexKey, type Pool, type PoolTable } from './pool-table';
import type { Settles } from './outbox';

/** Compare-and-set attempts on a pool record before the settle is tried again at the next tick. */
const CAS_RETRIES = 10;

interface Kept {
  readonly key: string;
  readonly id: string;
  readonly poolId: string;
  readonly space: string;
  readonly sk: string;
}

export interface PoolDeps {
  readonly table: PoolTable;
  readonly store: Store;
  readonly spaceLocks: KeyedMutex;
  readonly subnetLocks: KeyedMutex;
  readonly dhcp: DhcpLeases | undefined;
}

const unavailable = (e: unknown): boolean => isMacnetError(e) && e.code === 'STORE_UNAVAILABLE';

export class PoolReleases implements Settles {
  /** By journal key (`<pool key>#<id>`). */
  private readonly pending = new Map<string, Kept>();

  constructor(private readonly deps: PoolDeps) {}

  /** Releases waiting for the store, and subnets whose index is kept only for their waiting address releases. */
  get unsettled(): number {
    return this.pending.size + this.orphans().length;
  }

  private orphans(): string[] {
    const t = this.deps.table;
    return [...t.indexes].filter(([, s]) => t.poolsOf(s).length === 0).map(([sk]) => sk);
  }

  /** Applies the releases kept through a restart, before the pools are read (PoolTable.load's `settleKept`). */
  async settleLoaded(): Promise<void> {
    const journal = this.deps.table.journal;
    for (const jkey of journal?.takePools() ?? []) {
      const cut = jkey.lastIndexOf('#');
      await this.apply(jkey.slice(0, cut), jkey.slice(cut + 1));
      await journal!.settled([jkey]);
    }
  }

  /** ReleasePool (docs/ipam.md): one network fewer on the pool; at none, the pool and its subnet's records go. */
  async release(poolId: string): Promise<void> {
    const { table, spaceLocks, subnetLocks, store } = this.deps;
    // Releases kept earlier go first, so that this one counts from where the store is (skipped while it is down).
    if (this.unsettled > 0) await this.settle().catch((e: unknown) => ignoreUnavailable(e));
    const p = table.pools.get(poolId);
    if (!p) return;
    await spaceLocks.run(p.space, () =>
      subnetLocks.run(indexKey(p.space, p.subnet), async () => {
        // Re-check under the locks: a concurrent ReleasePool may have removed it while we waited.
        if (table.pools.get(poolId) !== p) return;
        const kept = await this.decrement(p);
        if (p.refs > 0) return;
        table.pools.delete(poolId);
        if (table.poolsOf(table.indexOf(p)!).length > 0) return;
        // The subnet's last pool here. Reservations still in flight land before the purge (none should be:
        // dockerd releases every address first).
        const index = table.indexOf(p)!;
        await index.batch.drain();
        // Kept while releases of its addresses wait (the gateway's too): dropped once they are settled.
        if (!kept || index.unsettled === 0) table.indexes.delete(indexKey(p.space, p.subnet));
        // Docker releases every address before the pool; whatever is left (a crashed container's) goes too, unless
        // a pool on the subnet is left in the store (another host's, on another ip-range).
        if (!kept && !(await table.poolInStore(p.space, p.subnet))) await table.purgeAddresses(p.space, p.subnet);
        await this.deps.dhcp?.purge(p.space, p.subnet);
      }),
    );
    await store.sync();
  }

  /** changeRefs(-1), or while the store does not answer, the release kept for later. Returns whether it was kept. */
  private async decrement(p: Pool): Promise<boolean> {
    const id = randomUUID();
    try {
      await this.deps.table.changeRefs(p, -1, id);
      return false;
    } catch (e) {
      const journal = this.deps.table.journal;
      if (!unavailable(e) || this.deps.table.host === undefined) throw e;
      const jkey = `${p.key}#${id}`;
      this.pending.set(jkey, { key: p.key, id, poolId: p.poolId, space: p.space, sk: indexKey(p.space, p.subnet) });
      // On disk before the release is answered: dockerd never asks again.
      await journal?.keep([{ key: jkey }]);
      p.refs -= 1;
      if (p.hostRefs !== undefined) p.hostRefs = Math.max(p.hostRefs - 1, 0);
      return true;
    }
  }

  /**
   * Applies the kept releases, each under its space's and subnet's locks, and drops the indexes kept for their
   * address releases once those are settled. Throws while the store still fails; what is left waits.
   */
  async settle(): Promise<void> {
    const { table, spaceLocks, subnetLocks } = this.deps;
    for (const [jkey, k] of this.pending) {
      await spaceLocks.run(k.space, () =>
        subnetLocks.run(k.sk, async () => {
          const rec = await this.apply(k.key, k.id);
          this.pending.delete(jkey);
          await table.journal?.settled([jkey]);
          // This host's view follows the store's (another host may have joined or left meanwhile).
          const p = table.pools.get(k.poolId);
          if (p && rec) {
            p.refs = rec.refs;
            p.hostRefs = table.hostRefs(rec);
          } else if (p) table.pools.delete(k.poolId);
        }),
      );
    }
    for (const sk of this.orphans()) {
      const s = table.indexes.get(sk)!;
      await spaceLocks.run(s.space, () =>
        subnetLocks.run(sk, async () => {
          if (table.indexes.get(sk) !== s || table.poolsOf(s).length > 0) return;
          await s.settle();
          if (s.unsettled === 0) table.indexes.delete(sk);
        }),
      );
    }
  }

  /** Applies one kept release to the pool record at `key`; returns the record after it (undefined: gone). */
  private async apply(key: string, id: string): Promise<PoolRecord | undefined> {
    const { table, store } = this.deps;
    const host = table.host!; // only a store shared by hosts keeps releases
    for (let i = 0; i < CAS_RETRIES; i++) {
      const e = await store.get(key);
      if (!e) return undefined;
      const rec = decodeRecord<PoolRecord>(e.key, e.value, 'IPAM pool release');
      if (rec.settled?.[host] === id) return rec; // applied already (its answer lost, or a restart since)
      // This host counts nothing in the record: its last decrement deleted it, and another host made it anew.
      if (countsAddUp(rec) && !(rec.refsByHost![host]! > 0)) return rec;
      table.count(rec, -1, id);
      if (rec.refs > 0) {
        if (await store.update(key, encodeRecord(rec), e.revision)) return rec;
        continue;
      }
      const cursor = CURSORS + key.slice(POOLS.length);
      if (
        !(await store.txn([
          { op: 'delete', key, revision: e.revision },
          { op: 'delete', key: cursor },
        ]))
      )
        continue;
      const subnet = parseCidrBig(rec.subnet).subnet;
      if (!(await table.poolInStore(rec.space, subnet))) await table.purgeAddresses(rec.space, subnet, key);
      return undefined;
    }
    throw new MacnetError('STORE_ERROR', `pool record ${key}: it kept changing under ${CAS_RETRIES} attempts`, {
      key,
    });
  }
}

function ignoreUnavailable(e: unknown): void {
  if (!unavailable(e)) throw e;
}
