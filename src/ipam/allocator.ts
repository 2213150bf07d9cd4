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
import { PROBE_MAC_SIGNATURE, macFirstOctet } from '../types/ip';

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

/** Who answered a probe for an address. */
export interface Holder {
  readonly mac: string;
  readonly reason: 'answered' | 'probing';
}

/** Checks candidate addresses on the LAN; returns those in use. */
export type LanProbe = (candidates: readonly bigint[]) => Promise<ReadonlyMap<bigint, Holder>>;

/** How long an address that answered a probe is skipped before it is probed again. */
export const HOLD_MS = 10 * 60_000;
/**
 * How long an address that another macnet host's probe link answered for is skipped. That host found it free
 * moments ago: it hands it out within seconds (the container then answers itself, and the next probe holds
 * the address for HOLD_MS) or keeps it warm, or lets it go; the other free candidates of its probe batch are
 * defended for a few seconds too. A full HOLD_MS would keep those unused addresses from this host for ten
 * minutes.
 */
export const DEFENDED_HOLD_MS = 30_000;

/** The hold for an address `mac` answered for: a macnet probe link's MAC (src/types/ip.ts) gets the short one. */
export function holdMs(mac: string): number {
  return macFirstOctet(mac) === PROBE_MAC_SIGNATURE ? DEFENDED_HOLD_MS : HOLD_MS;
}
/** Verified-free addresses kept per pool, and how long a verification counts (they are defended meanwhile). */
export const WARM_SIZE = 3;
export const WARM_TTL_MS = 20_000;
/** Candidates probed together in one window. */
const BATCH = 4;
/** A range where this many batches in a row all answered is treated as full (each batch is one probe window). */
const MAX_PROBE_BATCHES = 8;

export class SubnetSpace {
  readonly taken = new IntervalSet();
  /**
   * Addresses that were allocated when this daemon loaded the store and are still: only these can be left over
   * by a crash (src/docker/reclaim.ts). An address released since leaves the set, so handing it out again
   * makes it this daemon's.
   */
  readonly inherited = new Set<bigint>();

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
      // The index was stale (released by another writer of the store), or the address was held after a probe
      // and is now taken on purpose (conflict=warn): the store decides below.
      this.taken.delete(v);
      this.held.delete(v);
      this.inherited.delete(v); // whatever is created below is this daemon's
    }
    const record: AddressRecord = { owner, pool: poolId };
    if (!(await this.store.create(this.key(v), JSON.stringify(record)))) {
      this.taken.add(v);
      throw this.inUse(v, await this.holder(v));
    }
    this.taken.add(v);
  }

  /**
   * Addresses something on the LAN answered for (never allocated in the store): skipped until `until` (HOLD_MS
   * after they were seen, DEFENDED_HOLD_MS for another macnet host's probe link), then probed again rather than
   * blocked forever. In memory only: after a restart they are learned again by probing.
   */
  readonly held = new Map<bigint, Holder & { seen: number; until: number }>();

  private hold(v: bigint, h: Holder): void {
    const seen = Date.now();
    this.held.set(v, { mac: h.mac, reason: h.reason, seen, until: seen + holdMs(h.mac) });
    this.taken.add(v);
  }

  private expireHolds(now: number): void {
    for (const [v, h] of this.held) {
      if (now >= h.until) {
        this.held.delete(v);
        this.taken.delete(v);
      }
    }
  }

  /**
   * Next-fit: the first free address after the pool's cursor, wrapping once at the end of the range. An address
   * released just now comes back only after every other free address of the range has been handed out since,
   * which gives the LAN's ARP/NDP caches (still pointing at the old container's MAC) time to expire.
   *
   * With `probe`, candidates are checked on the LAN first, BATCH at a time in one probe window; an address that
   * answers is held (skipped) and the next free one is taken, so one cold allocation costs one window unless a
   * whole batch is in use.
   */
  /** `remember`: a key whose value becomes the allocated address in the same transaction (a name's sticky record). */
  async allocate(r: DynamicRange, owner: string, probe?: LanProbe, remember?: string): Promise<bigint> {
    this.expireHolds(Date.now());
    const record = JSON.stringify({ owner, pool: r.poolId } satisfies AddressRecord);
    const from = r.cursor !== undefined && r.cursor >= r.lo && r.cursor < r.hi ? r.cursor + 1n : r.lo;
    // Addresses another host is probing right now are skipped by this allocation only (that host will take one
    // of them or back off too); they go back into the free set afterwards.
    const skipped: bigint[] = [];
    try {
      return await this.nextFit(r, record, from, skipped, probe, remember);
    } finally {
      for (const v of skipped) this.taken.delete(v);
    }
  }

  private async nextFit(r: DynamicRange, record: string, from: bigint, skipped: bigint[], probe?: LanProbe, remember?: string): Promise<bigint> {
    // The warm set: when the next address in next-fit order was verified free moments ago (and is defended by
    // the probe link since), it is taken without waiting on a probe window.
    const warm = this.warm.get(r.poolId);
    const first = this.taken.firstFree(from, r.hi) ?? this.taken.firstFree(r.lo, from - 1n);
    if (probe && warm && first !== undefined && Date.now() - (warm.get(first) ?? -Infinity) < WARM_TTL_MS) {
      warm.delete(first);
      if (await this.take(r, record, first, remember)) return first;
    }
    for (let batch = 0; ; batch++) {
      const candidates: bigint[] = [];
      let cur = from;
      while (candidates.length < (probe ? BATCH : 1)) {
        const v = this.taken.firstFree(cur, r.hi) ?? this.taken.firstFree(r.lo, cur - 1n);
        if (v === undefined || candidates.includes(v)) break;
        candidates.push(v);
        cur = v < r.hi ? v + 1n : r.lo;
      }
      if (candidates.length === 0) throw this.exhausted(r);
      if (probe && batch >= MAX_PROBE_BATCHES) throw this.exhausted(r);
      const holders = probe ? await probe(candidates) : undefined;
      for (const v of candidates) {
        const h = holders?.get(v);
        if (h) {
          if (h.reason === 'answered') this.hold(v, h);
          else {
            skipped.push(v);
            this.taken.add(v);
          }
          continue;
        }
        if (await this.take(r, record, v, remember)) {
          // The other free candidates of this batch were just verified: keep them warm for the next start.
          if (holders) for (const w of candidates) if (w > v && !holders.has(w) && !this.taken.has(w)) this.warmSet(r.poolId).set(w, Date.now());
          return v;
        }
        // Taken by another writer behind our index's back: it is in the index now; look further.
      }
      from = cur;
    }
  }

  /**
   * Takes v for `owner` if it is free here and in the store, without moving the pool's cursor: a container
   * name getting its previous address back must not change where next-fit continues for everyone else.
   */
  async claim(v: bigint, owner: string, poolId: string): Promise<boolean> {
    if (this.taken.has(v)) return false;
    const ok = await this.store.create(this.key(v), JSON.stringify({ owner, pool: poolId } satisfies AddressRecord));
    this.taken.add(v);
    for (const w of this.warm.values()) w.delete(v);
    return ok;
  }

  /** Reserves v for a dynamic allocation; the reservation and the cursor are persisted together or not at all. */
  private async take(r: DynamicRange, record: string, v: bigint, remember?: string): Promise<boolean> {
    const text = formatAddress(v, this.subnet.family);
    const ok = await this.store.txn([
      { op: 'create', key: addressKey(this.space, this.subnet, text), value: record },
      { op: 'put', key: r.cursorKey, value: text },
      ...(remember ? [{ op: 'put' as const, key: remember, value: text }] : []),
    ]);
    this.taken.add(v);
    if (ok) r.cursor = v;
    return ok;
  }

  /** Verified-free addresses per pool: PoolID → address → when it was verified. */
  readonly warm = new Map<string, Map<bigint, number>>();

  private warmSet(poolId: string): Map<bigint, number> {
    let w = this.warm.get(poolId);
    if (!w) this.warm.set(poolId, (w = new Map()));
    return w;
  }

  /**
   * Tops up the pool's warm set to WARM_SIZE: probes the next free addresses after the cursor that are not
   * warm yet (outside any lock: the probe window is long, and a concurrent allocation is safe because taking
   * an address re-checks the index and creates its key atomically). Returns the addresses added.
   */
  async refill(r: DynamicRange, probe: LanProbe): Promise<bigint[]> {
    const now = Date.now();
    const w = this.warmSet(r.poolId);
    for (const [v, t] of w) if (now - t >= WARM_TTL_MS || this.taken.has(v)) w.delete(v);
    const want = WARM_SIZE - w.size;
    if (want <= 0) return [];
    const candidates: bigint[] = [];
    let cur = r.cursor !== undefined && r.cursor >= r.lo && r.cursor < r.hi ? r.cursor + 1n : r.lo;
    for (let guard = 0; candidates.length < want && guard < WARM_SIZE * 4; guard++) {
      const v = this.taken.firstFree(cur, r.hi) ?? this.taken.firstFree(r.lo, cur - 1n);
      if (v === undefined || candidates.includes(v)) break;
      if (!w.has(v)) candidates.push(v);
      cur = v < r.hi ? v + 1n : r.lo;
    }
    if (candidates.length === 0) return [];
    const holders = await probe(candidates);
    const added: bigint[] = [];
    for (const v of candidates) {
      const h = holders.get(v);
      if (h?.reason === 'answered' && !this.taken.has(v)) {
        this.hold(v, h);
      } else if (!h && !this.taken.has(v)) {
        w.set(v, Date.now());
        added.push(v);
      }
    }
    return added;
  }

  private exhausted(r: DynamicRange): MacnetError {
    const count = r.hi - r.lo + 1n;
    const held = [...this.held.keys()].filter((v) => v >= r.lo && v <= r.hi).length;
    return new MacnetError('IPAM_POOL_EXHAUSTED',
      `no free address in ${r.label}: all ${count} usable addresses are allocated` + `${held ? ` or in use on the LAN (${held} answered a probe)` : ''}`,
      { pool: r.poolId, range: r.label, addresses: count.toString() });
  }

  /** Gives the address back; releasing one that is not allocated is not an error (Docker may retry). */
  async release(v: bigint): Promise<void> {
    const e = await this.store.get(this.key(v));
    const rec = e && (JSON.parse(e.value) as AddressRecord);
    if (e && rec && (rec.refs ?? 1) > 1 && (await this.store.update(e.key, JSON.stringify({ ...rec, refs: rec.refs! - 1 }), e.revision))) return;
    await this.store.delete(this.key(v));
    this.taken.delete(v);
    this.inherited.delete(v);
  }

  /** The bounds of dynamic allocation for a pool on this subnet with the given ip-range (or none). */
  dynamicBounds(range: Subnet | undefined): { lo: bigint; hi: bigint } {
    const u = usableRange(this.subnet);
    const lo = range && range.base > u.first ? range.base : u.first;
    const hi = range && range.last < u.last ? range.last : u.last;
    return { lo, hi };
  }
}
