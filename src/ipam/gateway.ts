// A gateway named by several networks: the LAN's router, one record counted by the networks naming it (several
// parents or ip-ranges on one subnet, or the same network on several hosts of one cluster store).
import type { Store } from '../store/types';
import { readAddressRecord } from './keys';
import { encodeRecord } from '../store/records';

/** Compare-and-set attempts on a shared gateway's record before the reservation is refused as in use. */
const GATEWAY_RETRIES = 10;

/**
 * Counts one more network naming the gateway at `key` if a gateway record holds it; false if none does (or another
 * owner does). Asked of the store, not an index: on a shared store another host's network may have named it first,
 * and hosts creating the same network at once race on the record (compare-and-set, tried again).
 */
export async function shareGateway(store: Store, key: string): Promise<boolean> {
  for (let i = 0; i < GATEWAY_RETRIES; i++) {
    const e = await store.get(key);
    const rec = e && readAddressRecord(e.value);
    if (!e || rec?.owner !== 'gateway') return false;
    if (await store.update(e.key, encodeRecord({ ...rec, refs: (rec.refs ?? 1) + 1 }), e.revision)) return true;
  }
  return false;
}
