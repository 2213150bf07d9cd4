// Sticky identity: the last address each container name had on a subnet (keys.ts, STICKY), for engines that
// send the name with RequestAddress (com.docker.network.endpoint.name, Docker 29+; 20.10 to 28
// send none). A re-created container of that name gets its address back when it is free; `macnet scan`
// names a stopped container's silent address from the same records.
import type { Store } from '../store/types';
import type { DynamicRange, ProbeCandidates, SubnetIndex } from './allocator';
import { parseAddress } from '../types/address';
import { STICKY } from './keys';
import { pruneAtLoad, staleStickies } from './sticky-prune';

/**
 * The records in memory, kept in step with the store's: no store read, and no address text to parse, per
 * request (an IPv6 parse costs more than the rest of an allocation).
 */
export class StickyNames {
  private readonly last = new Map<string, bigint>();

  /** Reads the records, bounded as sticky-prune.ts says; returns the keys the caller deletes from the store. */
  async load(store: Store): Promise<string[]> {
    this.last.clear();
    const { keep, drop } = pruneAtLoad(await store.list(STICKY), (e) => {
      try {
        return String(parseAddress(e.value).value);
      } catch {
        return undefined; // an unreadable hint is no hint
      }
    });
    for (const e of keep) this.last.set(e.key, parseAddress(e.value).value);
    return drop;
  }

  /**
   * The allocator wrote `key` = v in the allocation's transaction. Returns the records that go with it (another
   * name's record of the same address, the oldest beyond the cap), forgotten here; the caller deletes them.
   */
  set(key: string, v: bigint): string[] {
    this.last.delete(key); // the map's order is age: the newest last
    this.last.set(key, v);
    const stale = staleStickies(this.last, key, v);
    for (const k of stale) this.last.delete(k);
    return stale;
  }

  /** Forgets the records under `prefix` (the subnet's last pool went; the store's are deleted by the caller). */
  purge(prefix: string): void {
    for (const k of this.last.keys()) if (k.startsWith(prefix)) this.last.delete(k);
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
    const v = this.last.get(key);
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
