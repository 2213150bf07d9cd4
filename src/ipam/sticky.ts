// Sticky identity: the last address each container name had on a subnet (keys.ts, STICKY), for engines that
// send the name with RequestAddress (com.docker.network.endpoint.name, Docker 29+; 20.10 to 28
// send none). A re-created container of that name gets its address back when it is free; `macnet scan`
// names a stopped container's silent address from the same records.
import type { Store } from '../store/types';
import type { DynamicRange, ProbeCandidates, SubnetIndex } from './allocator';
import { parseAddress } from '../types/address';
import { STICKY } from './keys';
import { MAX_STICKY_PER_SUBNET, prefixOf, pruneAtLoad } from './sticky-prune';

/**
 * The records in memory, kept in step with the store's: no store read, and no address text to parse, per
 * request (an IPv6 parse costs more than the rest of an allocation).
 */
export class StickyNames {
  /**
   * Per subnet (the keys' prefix), each name's address, in age order (the newest last); and which name has an
   * address, so that a reservation finds the records it makes stale without a walk over the subnet's (up to
   * MAX_STICKY_PER_SUBNET at every reservation was most of a cluster host's CPU in bench cluster).
   */
  private readonly bySubnet = new Map<string, Map<string, bigint>>();
  private readonly byAddress = new Map<string, string>();

  private get(key: string): bigint | undefined {
    return this.bySubnet.get(prefixOf(key))?.get(key);
  }

  private forget(key: string): void {
    const prefix = prefixOf(key);
    const names = this.bySubnet.get(prefix);
    const v = names?.get(key);
    if (v === undefined) return;
    names!.delete(key);
    if (this.byAddress.get(prefix + v) === key) this.byAddress.delete(prefix + v);
  }

  /** Reads the records, bounded as sticky-prune.ts says; returns the keys the caller deletes from the store. */
  async load(store: Store): Promise<string[]> {
    this.bySubnet.clear();
    this.byAddress.clear();
    const { keep, drop } = pruneAtLoad(await store.list(STICKY), (e) => {
      try {
        return String(parseAddress(e.value).value);
      } catch {
        return undefined; // an unreadable hint is no hint
      }
    });
    for (const e of keep) this.set(e.key, parseAddress(e.value).value);
    return drop;
  }

  /**
   * The allocator wrote `key` = v in the allocation's transaction. Returns the records that go with it (another
   * name's record of the same address, the oldest beyond the cap), forgotten here; the caller deletes them.
   */
  set(key: string, v: bigint): string[] {
    const prefix = prefixOf(key);
    const stale: string[] = [];
    this.forget(key); // re-inserted below: the newest last
    const other = this.byAddress.get(prefix + v);
    if (other !== undefined) {
      this.forget(other);
      stale.push(other);
    }
    let names = this.bySubnet.get(prefix);
    if (!names) this.bySubnet.set(prefix, (names = new Map()));
    names.set(key, v);
    this.byAddress.set(prefix + v, key);
    for (const oldest of names.keys()) {
      if (names.size <= MAX_STICKY_PER_SUBNET) break;
      this.forget(oldest);
      stale.push(oldest);
    }
    return stale;
  }

  /** Forgets the records under `prefix` (the subnet's last pool went; the store's are deleted by the caller). */
  purge(prefix: string): void {
    for (const [p, names] of this.bySubnet) {
      if (!p.startsWith(prefix)) continue;
      for (const key of [...names.keys()]) this.forget(key);
      this.bySubnet.delete(p);
    }
  }

  /**
   * The name's previous address, taken again, when it lies in the pool's range, nobody here holds it, and the
   * LAN does not answer for it (no probe when it is warm: released or verified moments ago). Undefined
   * otherwise: then the allocation order decides.
   */
  async takePrevious(
    r: DynamicRange,
    index: SubnetIndex,
    name: string,
    key: string,
    probe?: ProbeCandidates,
  ): Promise<bigint | undefined> {
    const v = this.get(key);
    if (v === undefined || v < r.lo || v > r.hi || index.taken.has(v)) return undefined;
    if (probe && !index.warm.fresh(v) && (await probe([v])).get(v)) return undefined; // someone on the LAN has it now
    return (await index.claim(v, name, r.poolId, probe !== undefined)) ? v : undefined;
  }
}

/** The last address of every container name on `subnet` ("198.18.15.0/24"), in any address space. */
export async function lastAddresses(store: Store, subnet: string): Promise<{ name: string; address: string }[]> {
  const seg = subnet.replace('/', '_');
  const out: { name: string; address: string }[] = [];
  for (const e of await store.list(STICKY)) {
    // ipam/sticky/<space>/<subnet with _>/<name, URI-encoded>
    const parts = e.key.slice(STICKY.length).split('/');
    if (parts.length < 3 || parts[parts.length - 2] !== seg) continue;
    out.push({ name: decodeURIComponent(parts[parts.length - 1]!), address: e.value });
  }
  return out;
}
