// The addresses of one subnet in one address space: an in-memory index of the taken ones (loaded from the
// store at start) and the three ways to take or give one back. The store stays the authority: creating the
// address key is the reservation, so a second writer on the same store (a future cluster store) can never
// be handed the same address; the index only lets us guess right the first time. Callers serialise the
// operations on one subnet (src/ipam/ipam.ts holds a lock per subnet), so the index and cursors are never
// changed by two operations at once.
import { MacnetError } from '../errors';
import type { Store } from '../store/types';
import { formatAddress, usableRange, type Subnet } from './cidr';
import { IntervalSet } from './intervals';
import { addressKey, type AddressRecord } from './keys';

/** The part of a pool the allocator needs: where dynamic addresses come from and where the cursor is. */
export interface DynamicRange {
  readonly poolId: string;
  /** Lowest and highest address a dynamic allocation may return (range ∩ usable part of the subnet). */
  readonly lo: bigint;
  readonly hi: bigint;
  /** How the range is named in messages: "ip-range 198.18.4.0/22 of subnet 198.18.0.0/16". */
  readonly label: string;
  readonly cursorKey: string;
  /** The last address handed out dynamically through this pool; undefined before the first. */
  cursor: bigint | undefined;
}

export class SubnetSpace {
  readonly taken = new IntervalSet();

  constructor(readonly space: string, readonly subnet: Subnet, private readonly store: Store) {}

  private key(v: bigint): string {
    return addressKey(this.space, this.subnet, formatAddress(v, this.subnet.family));
  }

  private async holder(v: bigint): Promise<AddressRecord | undefined> {
    const e = await this.store.get(this.key(v));
    if (!e) return undefined;
    try {
      return JSON.parse(e.value) as AddressRecord;
    } catch {
      return { owner: 'unknown', pool: 'unknown' };
    }
  }

  private inUse(v: bigint, holder: AddressRecord | undefined): MacnetError {
    const address = formatAddress(v, this.subnet.family);
    const who = holder?.owner ?? 'another writer';
    return new MacnetError('IPAM_ADDRESS_IN_USE',
      `address ${address} is already in use in subnet ${this.subnet.text} (held by ${who})`,
      { address, subnet: this.subnet.text, space: this.space, owner: who, pool: holder?.pool });
  }

  /**
   * Takes the given address (static --ip, --gateway, --aux-address) or fails naming who holds it. A gateway
   * may be named by several networks on the same subnet (several parents or ip-ranges on one LAN, one router):
   * it is then shared and counted, and goes back to the pool with its last network.
   */
  async reserve(v: bigint, owner: string, poolId: string): Promise<void> {
    if (owner === 'gateway' && this.taken.has(v)) {
      const e = await this.store.get(this.key(v));
      const rec = e && (JSON.parse(e.value) as AddressRecord);
      if (e && rec?.owner === 'gateway') {
        if (await this.store.update(e.key, JSON.stringify({ ...rec, refs: (rec.refs ?? 1) + 1 }), e.revision)) return;
      }
    }
    if (this.taken.has(v)) {
      const h = await this.holder(v);
      if (h) throw this.inUse(v, h);
      // The index was stale (released by another writer of the store): the store decides below.
      this.taken.delete(v);
    }
    const record: AddressRecord = { owner, pool: poolId };
    if (!(await this.store.create(this.key(v), JSON.stringify(record)))) {
      this.taken.add(v);
      throw this.inUse(v, await this.holder(v));
    }
    this.taken.add(v);
  }

  /**
   * Next-fit: the first free address after the pool's cursor, wrapping once at the end of the range. An address
   * released just now comes back only after every other free address of the range has been handed out since,
   * which gives the LAN's ARP/NDP caches (still pointing at the old container's MAC) time to expire.
   */
  async allocate(r: DynamicRange, owner: string): Promise<bigint> {
    const record = JSON.stringify({ owner, pool: r.poolId } satisfies AddressRecord);
    let from = r.cursor !== undefined && r.cursor >= r.lo && r.cursor < r.hi ? r.cursor + 1n : r.lo;
    for (;;) {
      const v = this.taken.firstFree(from, r.hi) ?? this.taken.firstFree(r.lo, from - 1n);
      if (v === undefined) throw this.exhausted(r);
      const text = formatAddress(v, this.subnet.family);
      // One transaction: the reservation and the cursor are persisted together or not at all.
      const ok = await this.store.txn([
        { op: 'create', key: addressKey(this.space, this.subnet, text), value: record },
        { op: 'put', key: r.cursorKey, value: text },
      ]);
      this.taken.add(v);
      if (ok) {
        r.cursor = v;
        return v;
      }
      // Taken by another writer behind our index's back: it is in the index now; look further.
      from = v < r.hi ? v + 1n : r.lo;
    }
  }

  private exhausted(r: DynamicRange): MacnetError {
    const count = r.hi - r.lo + 1n;
    return new MacnetError('IPAM_POOL_EXHAUSTED',
      `no free address in ${r.label}: all ${count} usable addresses are allocated`,
      { pool: r.poolId, range: r.label, addresses: count.toString() });
  }

  /** Gives the address back; releasing one that is not allocated is not an error (Docker may retry). */
  async release(v: bigint): Promise<void> {
    const e = await this.store.get(this.key(v));
    const rec = e && (JSON.parse(e.value) as AddressRecord);
    if (e && rec && (rec.refs ?? 1) > 1 && (await this.store.update(e.key, JSON.stringify({ ...rec, refs: rec.refs! - 1 }), e.revision))) return;
    await this.store.delete(this.key(v));
    this.taken.delete(v);
  }

  /** The bounds of dynamic allocation for a pool on this subnet with the given ip-range (or none). */
  dynamicBounds(range: Subnet | undefined): { lo: bigint; hi: bigint } {
    const u = usableRange(this.subnet);
    const lo = range && range.base > u.first ? range.base : u.first;
    const hi = range && range.last < u.last ? range.last : u.last;
    return { lo, hi };
  }
}
