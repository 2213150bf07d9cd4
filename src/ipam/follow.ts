// On a store shared by hosts (etcd, docs/cluster.md), this host's index of a subnet holds the other hosts'
// addresses as it met them (a refused create learns its neighbours, spread.ts), and never hears when they are
// released. That costs nothing while the range has room (the create in etcd decides every reservation), but a range
// that looked full stayed full for this host until its daemon restarted. So when a dynamic request finds no free
// address here, the index is brought in line with the store once (one range read), and the request tries again.
//
// A continuous watch of every host's reservations did the same as they happened, and cost the cluster bench a
// third of its rate (each host decoding every other host's writes): not worth it for addresses that matter only
// when the range is full.
import type { Store } from '../store/types';
import { formatAddress, parseAddress } from '../types/address';
import { splitAddressKey, subnetAddressPrefix } from './keys';
import type { SubnetIndex } from './allocator';

/**
 * The subnet's records as the store holds them now: an address taken here without a record is free again (another
 * host released it), unless this host's own reservation of it is still on its way (batch.ts); an address with a
 * record is taken. Returns how many were freed. The caller holds the subnet's lock.
 */
export async function refreshTaken(index: SubnetIndex, store: Store): Promise<number> {
  const prefix = subnetAddressPrefix(index.space, index.subnet);
  const held = await stored(index, store);
  let freed = 0;
  const taken: bigint[] = [];
  for (const [lo, hi] of index.taken.intervals()) for (let v = lo; v <= hi; v++) taken.push(v);
  for (const v of taken) {
    if (held.has(v) || index.batch.has(prefix + formatAddress(v, index.subnet.family))) continue;
    index.taken.delete(v);
    index.inherited.delete(v);
    freed++;
  }
  for (const v of held) index.taken.add(v);
  return freed;
}

/** A subnet this host did not have before (its first pool there): the records the other hosts hold on it now. */
export async function learnSubnet(index: SubnetIndex, store: Store): Promise<void> {
  for (const v of await stored(index, store)) index.taken.add(v);
}

/** The addresses the store holds records of on the index's subnet (one range read). */
async function stored(index: SubnetIndex, store: Store): Promise<Set<bigint>> {
  const held = new Set<bigint>();
  for (const e of await store.list(subnetAddressPrefix(index.space, index.subnet))) {
    const k = splitAddressKey(e.key);
    if (k) held.add(parseAddress(k.address).value);
  }
  return held;
}
