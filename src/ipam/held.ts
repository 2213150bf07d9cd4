// This host's containers' addresses against a cluster store, when the host comes back (src/docker/own-addresses.ts):
// while it was gone, other hosts may have reclaimed an address (src/ipam/lost-hosts.ts) and even handed it out.
import { addressKey, readAddressRecord, type AddressRecord } from './keys';
import { encodeRecord } from '../store/records';
import type { Store } from '../store/types';
import { formatAddress, parseAddress } from '../types/address';
import type { KeyedMutex } from '../types/mutex';
import { indexKey, type PoolTable } from './pool-table';
import type { SubnetIndex } from './allocator';

/** 'held': the record is this host's; 'restored': it was gone and is this host's again; 'other': someone else's. */
export type Held =
  | { readonly state: 'held' }
  | { readonly state: 'restored' }
  | { readonly state: 'other'; readonly holder: AddressRecord };

/** Makes sure the store holds `v` for this host (`host`); the caller holds the subnet's lock. */
export async function holdOwn(
  index: SubnetIndex,
  store: Store,
  host: string,
  poolId: string,
  v: bigint,
): Promise<Held> {
  const key = addressKey(index.space, index.subnet, formatAddress(v, index.subnet.family));
  index.taken.add(v);
  for (;;) {
    const e = await store.get(key);
    if (e) {
      const rec = readAddressRecord(e.value);
      return rec.host === host ? { state: 'held' } : { state: 'other', holder: rec };
    }
    // Not 'verified': the LAN check did not run for it now, so it is not warm when released.
    if (await store.create(key, encodeRecord({ owner: 'restored', pool: poolId, host } satisfies AddressRecord)))
      return { state: 'restored' };
  }
}

/**
 * holdOwn for `ip` of `subnet`, under the subnet's lock; undefined when no pool here is on that subnet, or the
 * store is not shared (no host id).
 */
export async function holdOwnAddress(table: PoolTable, locks: KeyedMutex, store: Store, subnet: string, ip: string) {
  const host = table.host;
  if (host === undefined) return undefined;
  const v = parseAddress(ip).value;
  for (const s of table.indexesOf(subnet)) {
    const pool = table.poolsOf(s)[0];
    if (pool) return locks.run(indexKey(s.space, s.subnet), () => holdOwn(s, store, host, pool.poolId, v));
  }
  return undefined;
}

/** Another host's address, reclaimed (lost-hosts.ts): this host's index of the subnet lets it go too. */
export async function forgetAddress(table: PoolTable, locks: KeyedMutex, subnet: string, ip: string): Promise<void> {
  const v = parseAddress(ip).value;
  for (const s of [...table.indexesOf(subnet)])
    await locks.run(indexKey(s.space, s.subnet), async () => {
      s.taken.delete(v);
      s.inherited.delete(v);
    });
}
