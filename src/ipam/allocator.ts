// The addresses of one subnet in one address space: an in-memory index of the taken ones (loaded from the
// store at start) and the three ways to take or give one back. The store stays the authority: creating the
// address key is the reservation, so a second writer on the same store (another host on etcd) can never
// be handed the same address; the index only lets us guess right the first time. Callers serialise the
// operations on one subnet (src/ipam/ipam.ts holds a lock per subnet), so the index and the warm set are never
// changed by two operations at once; the one exception is a dynamic reservation's create, sent by batch.ts
// outside the lock once its address is picked (and marked taken) under it.
import type { Store } from '../store/types';
import { formatAddress, type Subnet } from '../types/address';
import { IntervalSet } from './intervals';
import { readAddressRecord, subnetAddressPrefix, type AddressRecord } from './keys';
import { releaseGateway, shareGateway } from './gateway';
import { Outbox } from './outbox';
import type { OutboxJournal } from './outbox-journal';
import { addressInUse, poolExhausted } from './index-errors';
import { encodeRecord } from '../store/records';
import { skipMs } from './holds';
import { WARM_SIZE, WarmSet } from './warm';
import type { Holder } from '../lan';
import { Batcher, type Reservation } from './batch';
import { freeFrom, hostSpread, learnAround } from './spread';

import type { DynamicRange, ProbeCandidates } from './spread';
export type { DynamicRange, ProbeCandidates } from './spread';

export { DEFENDED_SKIP_MS, SKIP_MS, skipMs } from './holds';
/**
 * Candidates probed together in the first window; each further window of the same allocation probes twice as
 * many. Lowest-first meets every LAN device and every other host's container at the bottom of the range, so the
 * search widens instead of giving up: a LAN with 40 devices at .2-.41 (or a second host's 100 containers) costs a
 * start 4 windows, a whole /24 in use 6, and "exhausted" means that every free address answered.
 */
const BATCH = 4;
/** The widest window: 256 probes (frames at once; the prober waits one window for all). */
const MAX_BATCH = 256;
/** Dynamic allocations of a subnet within this span count as one burst when sizing a cold window. */
const BURST_MS = 2000;

export class SubnetIndex {
  readonly taken = new IntervalSet();
  /** When this subnet's recent dynamic allocations began (ms epoch), oldest first, within BURST_MS. */
  private readonly recent: number[] = [];
  /**
   * Addresses that were allocated when this daemon loaded the store and are still: only these can be left over
   * by a crash (src/docker/reclaim.ts). An address released since leaves the set, so handing it out again
   * makes it this daemon's.
   */
  readonly inherited = new Set<bigint>();

  /** Deletes of this host's records that a cluster store could not take yet (outbox.ts). */
  private readonly outbox: Outbox;

  constructor(
    readonly space: string,
    readonly subnet: Subnet,
    private readonly store: Store,
    /** This daemon among the writers of a shared store (docs/cluster.md): named in its address records. */
    private readonly host?: string,
    /** A name's sticky record was written with an address (StickyNames.set): the records it makes stale. */
    remembered: (key: string, v: bigint) => readonly string[] = () => [],
    journal?: OutboxJournal, // keeps the outbox's entries across restarts (outbox-journal.ts)
  ) {
    this.outbox = new Outbox(host, journal, subnetAddressPrefix(space, subnet));
    this.spread = hostSpread(host);
    this.prefix = subnetAddressPrefix(space, subnet);
    const stale = (r: Reservation) => (r.remember ? remembered(r.remember.key, r.v) : []);
    this.batch = new Batcher(store, this.outbox, (rs) => this.lost(rs), stale);
  }

  /** The subnet's address keys' prefix (keys.ts), computed once: a key is made per allocation. */
  private readonly prefix: string;
  /** Dynamic reservations committed together (batch.ts). */
  readonly batch: Batcher;
  /** Where this host's search starts in a range, as a fraction of it (spread.ts): 0 with one host. */
  private spread: number;

  /** Records waiting for the store (outbox.ts). */
  get unsettled(): number {
    return this.outbox.size;
  }

  /** Applies what waits for the store; the caller holds the subnet's lock. Throws while the store still fails. */
  async settle(): Promise<void> {
    for (const v of await this.outbox.settle(this.store)) {
      this.taken.delete(v);
      this.inherited.delete(v);
    }
  }

  private record(owner: string, pool: string, verified: boolean): AddressRecord {
    return { owner, pool, ...(verified && { verified: true }), ...(this.host !== undefined && { host: this.host }) };
  }

  private key(v: bigint): string {
    return this.prefix + formatAddress(v, this.subnet.family);
  }

  private async holder(v: bigint): Promise<AddressRecord | undefined> {
    const e = await this.store.get(this.key(v));
    if (!e) return undefined;
    return readAddressRecord(e.value);
  }

  /**
   * Takes the given address (static --ip, --gateway, --aux-address) or fails naming who holds it. A gateway
   * may be named by several networks on the same subnet (several parents or ip-ranges on one LAN, one router):
   * it is then shared and counted, and goes back to the pool with its last network. `verified`: the LAN check
   * found the address free (then it is warm again when released).
   */
  async reserve(v: bigint, owner: string, poolId: string, verified = false): Promise<void> {
    await this.settle();
    // Asked of the store, not the index: on a shared store another host's network may have named it first.
    if (owner === 'gateway' && (await shareGateway(this.store, this.key(v)))) {
      this.taken.add(v);
      return;
    }
    if (this.taken.has(v)) {
      await this.batch.landed(this.key(v));
      const h = await this.holder(v);
      if (h) throw addressInUse(this.space, this.subnet, v, h);
      // The index was stale (released by another writer of the store), or the address was held after a probe
      // and is now taken on purpose (conflict=warn): the store decides below.
      this.taken.delete(v);
      this.answered.delete(v);
      this.inherited.delete(v); // whatever is created below is this daemon's
    }
    const record = encodeRecord(this.record(owner, poolId, verified));
    this.warm.forget(v);
    const key = this.key(v);
    if (!(await this.outbox.write(key, v, record, () => this.store.create(key, record)))) {
      this.taken.add(v);
      // Another host's network named the same gateway a moment ago.
      if (owner === 'gateway' && (await shareGateway(this.store, this.key(v)))) return;
      throw addressInUse(this.space, this.subnet, v, await this.holder(v));
    }
    this.taken.add(v);
  }

  /**
   * Addresses something on the LAN answered for (never allocated in the store): skipped until `until` (SKIP_MS
   * after they were seen, DEFENDED_SKIP_MS for another macnet host's probe link), then probed again rather than
   * blocked forever. In memory only: after a restart they are learned again by probing.
   */
  readonly answered = new Map<bigint, Holder & { seen: number; until: number }>();

  private hold(v: bigint, h: Holder): void {
    const seen = Date.now();
    this.answered.set(v, { mac: h.mac, reason: h.reason, seen, until: seen + skipMs(h.mac) });
    this.taken.add(v);
  }

  private expireHolds(now: number): void {
    for (const [v, h] of this.answered) {
      if (now >= h.until) {
        this.answered.delete(v);
        this.taken.delete(v);
      }
    }
  }

  /**
   * Picks a dynamic allocation's address, under the subnet's lock; commit() reserves it, outside. Lowest free
   * first (from the host's start point on a shared store, spread.ts), as Docker's own IPAM: the first address
   * that nobody holds and the LAN does not answer for. A container that stops and starts again (dockerd releases
   * its address in between) gets its own address back, unless a lower one was freed meanwhile.
   *
   * The first free address is picked without a probe when it is warm (verified or released by macnet moments
   * ago, warm.ts). Otherwise the BATCH first free addresses are probed in one window; those that answer are
   * held (skipped) and the first quiet one is picked, so one cold allocation costs one window unless a whole
   * window is in use (then the next probes twice as many). `remember`: a key whose value becomes the allocated
   * address in the same transaction (a name's sticky record).
   *
   * A burst (50 containers started at once) would otherwise wait one window per few starts in turn, the
   * allocations queueing on the subnet's lock. So a cold first window probes for the burst too: for every
   * allocation `queued()` says waits behind this one, and for as many as this subnet made in the last
   * BURST_MS (those still arriving); its quiet candidates become warm for them.
   */
  async pick(
    r: DynamicRange,
    owner: string,
    probe?: ProbeCandidates,
    remember?: string,
    queued: () => number = () => 0,
  ): Promise<Reservation> {
    await this.settle();
    this.expireHolds(Date.now());
    // Addresses another host is probing right now are skipped by this allocation only (that host will take one
    // of them or back off too); they go back into the free set afterwards.
    const skipped: bigint[] = [];
    let v: bigint;
    try {
      v = await this.choose(r, skipped, probe, queued);
    } finally {
      for (const s of skipped) this.taken.delete(s);
    }
    // Taken from now on, though its create is still to be sent: no other caller picks it meanwhile.
    this.taken.add(v);
    this.warm.forget(v);
    const text = formatAddress(v, this.subnet.family);
    const value = encodeRecord(this.record(owner, r.poolId, !!probe));
    return { v, key: this.prefix + text, value, ...(remember !== undefined && { remember: { key: remember, text } }) };
  }

  /**
   * Creates the picked address's record (with the others picked meanwhile, batch.ts); called outside the subnet's
   * lock. False: another host created it first (learned now); the caller picks again.
   */
  async commit(res: Reservation, more = false): Promise<boolean> {
    try {
      return await this.batch.submit(res, more);
    } catch (e) {
      // Not applied: free again; an answer lost on the way (outbox.ts) keeps it taken until it is settled.
      if (!this.outbox.has(res.key)) this.taken.delete(res.v);
      throw e;
    }
  }

  /** Creates refused (batch.ts): which keys exist, learned with their neighbours; hosts that met part (spread.ts). */
  private async lost(rs: readonly Reservation[]): Promise<ReadonlySet<string>> {
    const keys = rs.map((r) => r.key);
    const present = await learnAround(this.store, this.subnet, this.taken, keys);
    if (this.host !== undefined) this.spread = Math.random();
    return present;
  }

  /** The address a dynamic allocation gets (docs/ipam.md, "Order of dynamic allocation"); not yet taken. */
  private async choose(
    r: DynamicRange,
    skipped: bigint[],
    probe?: ProbeCandidates,
    queued: () => number = () => 0,
  ): Promise<bigint> {
    const first = this.lowest(r, 1)[0];
    this.recent.push(Date.now());
    if (first !== undefined && (!probe || this.warm.fresh(first))) return first;
    const exhausted = () => poolExhausted(r, [...this.answered.keys()].filter((v) => v >= r.lo && v <= r.hi).length);
    if (!probe) throw exhausted();
    // One turn of the event loop before a cold window: requests that arrived together queue up and count.
    await new Promise((resolve) => setImmediate(resolve));
    const firstBatch = Math.min(Math.max(BATCH, queued() + 1, this.burst()), MAX_BATCH);
    for (let batch = 0; ; batch++) {
      // Every candidate of a window ends up chosen, held, skipped or warm (the first three in `taken`), so the
      // next window starts after them.
      const candidates = this.lowest(r, Math.min(firstBatch * 2 ** Math.min(batch, 6), MAX_BATCH));
      if (candidates.length === 0) throw exhausted();
      const holders = await probe(candidates);
      let chosen: bigint | undefined;
      for (const v of candidates) {
        const h = holders.get(v);
        if (h) {
          this.warm.forget(v);
          if (h.reason === 'answered') this.hold(v, h);
          else {
            skipped.push(v);
            this.taken.add(v);
          }
        } else if (this.taken.has(v))
          continue; // learned from another host during the probe
        else if (chosen === undefined) chosen = v;
        else this.warm.verified(v); // verified just now: warm for the next start
      }
      if (chosen !== undefined) return chosen;
    }
  }

  /** The first `n` free addresses of the range in allocation order (spread.ts). */
  private lowest(r: DynamicRange, n: number): bigint[] {
    return freeFrom(this.taken, r.lo, r.hi, this.spread, n);
  }

  /**
   * Takes v for `owner` if it is free here and in the store (a container name getting its previous address
   * back). `verified`: the LAN check found it free.
   */
  async claim(v: bigint, owner: string, poolId: string, verified = false): Promise<boolean> {
    if (this.taken.has(v)) return false;
    await this.settle();
    const key = this.key(v);
    const rec = encodeRecord(this.record(owner, poolId, verified));
    const ok = await this.outbox.write(key, v, rec, () => this.store.create(key, rec));
    this.taken.add(v);
    this.warm.forget(v);
    return ok;
  }

  /** Free addresses verified on the LAN moments ago (warm.ts). */
  readonly warm = new WarmSet();

  /** Dynamic allocations of this subnet within the last BURST_MS. */
  private burst(now = Date.now()): number {
    while (this.recent.length && now - this.recent[0]! > BURST_MS) this.recent.shift();
    return this.recent.length;
  }

  /**
   * Keeps the WARM_SIZE lowest free addresses of the range verified, or during a burst of starts as many as the
   * subnet allocated in the last BURST_MS (so the set stays ahead of the starts): probes those whose verification is
   * missing or half run out (outside any lock: the probe window is long, and a concurrent allocation is safe
   * because taking an address re-checks the index and creates its key atomically). Returns the addresses
   * verified now.
   */
  async refill(r: DynamicRange, probe: ProbeCandidates): Promise<bigint[]> {
    const now = Date.now();
    this.expireHolds(now);
    this.warm.prune((v) => this.taken.has(v), now);
    const want = Math.min(Math.max(WARM_SIZE, this.burst(now)), MAX_BATCH);
    const candidates = this.lowest(r, want).filter((v) => this.warm.due(v, now));
    if (candidates.length === 0) return [];
    const holders = await probe(candidates);
    const added: bigint[] = [];
    for (const v of candidates) {
      const h = holders.get(v);
      if (h?.reason === 'answered' && !this.taken.has(v)) {
        this.warm.forget(v);
        this.hold(v, h);
      } else if (!h && !this.taken.has(v)) {
        this.warm.verified(v);
        added.push(v);
      }
    }
    return added;
  }

  /**
   * Gives the address back; releasing one that is not allocated is not an error (Docker may retry). Returns
   * whether it is warm now: an address the LAN check had found free when it was handed out (no gateway, no
   * address taken despite a conflict) was its container's until a moment ago, so it is free on the LAN too.
   */
  async release(v: bigint): Promise<boolean> {
    const key = this.key(v);
    let rec: AddressRecord | undefined;
    let counted = false;
    // During a cluster store's outage the delete waits in the outbox, and v stays taken here until it is done.
    const now = await this.outbox.release(key, v, async (id) => {
      const e = await this.store.get(key);
      rec = e && readAddressRecord(e.value);
      const tag = this.host === undefined ? undefined : { host: this.host, id };
      if (rec?.owner === 'gateway') counted = !(await releaseGateway(this.store, key, 1, tag));
      else await this.store.delete(key);
    });
    if (!now || counted) return false;
    this.taken.delete(v);
    this.inherited.delete(v);
    if (rec?.verified !== true || rec.owner === 'gateway') return false;
    this.warm.verified(v);
    return true;
  }
}
