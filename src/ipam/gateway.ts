// A gateway named by several networks: the LAN's router, one record counted by the networks naming it (several
// parents or ip-ranges on one subnet, or the same network on several hosts of one cluster store).
import { MacnetError } from '../errors';
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

/**
 * Counts `n` fewer networks naming the gateway record at `key`, deleting it at its last (compare-and-set, tried
 * again when another writer changed it meanwhile). `tag`: a release kept during an outage (outbox.ts), written
 * into the record with the decrement so that a settle whose answer was lost, or a restart before its entry was
 * deleted, finds it applied rather than applying it twice. Returns whether the record is gone.
 */
export async function releaseGateway(
  store: Store,
  key: string,
  n = 1,
  tag?: { host: string; id: string },
): Promise<boolean> {
  for (let i = 0; i < GATEWAY_RETRIES; i++) {
    const e = await store.get(key);
    const rec = e && readAddressRecord(e.value);
    if (!e || !rec) return true;
    if (tag && rec.settled?.[tag.host] === tag.id) return false;
    const refs = (rec.refs ?? 1) - n;
    if (refs <= 0) {
      if (await store.delete(key, e.revision)) return true;
      continue;
    }
    const settled = tag ? { settled: { ...rec.settled, [tag.host]: tag.id } } : {};
    if (await store.update(key, encodeRecord({ ...rec, refs, ...settled }), e.revision)) return false;
  }
  throw new MacnetError('STORE_ERROR', `gateway ${key}: its record kept changing under ${GATEWAY_RETRIES} attempts`, {
    key,
  });
}
