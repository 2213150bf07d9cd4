// macnet's IPAM driver: the state behind Docker's IpamDriver calls (docs/ipam.md has the rules and the store
// schema). The Docker plugin's handlers translate JSON to these calls one to one; pools and the subnets' indexes
// are pool-table.ts's, read-only questions queries.ts's.
//
// Locking: pool operations hold a lock per address space (the overlap check looks at every subnet of the
// space); address operations hold a lock per subnet; ReleasePool takes the space's and then the subnet's,
// always in that order, so two operations can never wait for each other.
//
// Durability: every call that writes awaits store.sync() after its locks are released and before it answers,
// so no answer reaches dockerd before the writes behind it would survive a power loss, while concurrent calls
// (on one subnet too) share one fsync instead of queueing one each behind the subnet's lock.
import type { AddressBook, DhcpLeases } from '../lan';
import type { Store } from '../store/types';
import { KeyedMutex } from '../types/mutex';
import { isMacnetError } from '../errors';
import { formatAddress, overlaps, parseAddress, usableRange } from '../types/address';
import { addressKey, poolIdOf, stickyKey, type AddressRecord } from './keys';
import { indexKey, PoolTable } from './pool-table';
import { reserved, type Picked } from './batch';
import { dhcpWithoutGateway, poolOverlap } from './index-errors';
import {
  DEFAULT_POOLS,
  ENDPOINT_NAME,
  GATEWAY_REQUEST_TYPE,
  GLOBAL_SPACE,
  LOCAL_SPACE,
  REQUEST_ADDRESS_TYPE,
  defaultSubnet,
  parseDefaultPools,
  validatePoolRequest,
  type DefaultPool,
  type PoolRequest,
} from './pools';
import { parseIp, usableAddress } from './requests';
import { allocatedHere, allocations, answered, inheritedAllocations, requestedName } from './queries';
import { lastAddresses, StickyNames } from './sticky';
import { Warmer } from './warmer';
import { settleEvery } from './outbox';
import { PoolReleases } from './pool-release';
import { learnSubnet, refreshTaken } from './follow';
import { lanProbe, type IpamLan } from './lan-probe';
import { forgetAddress, holdOwnAddress, type Held } from './held';
import { requestLease } from './leased';
import { checkStatic } from './static';
import { decodeRecord } from '../store/records';
export type { IpamLan } from './lan-probe';

/** The pool releases' place among the subnets in settleEvery. */
const POOL_RELEASES = 'pool releases';

export interface IpamOptions {
  /** Leases for --ipam-opt mode=dhcp pools (src/lan/leases.ts); without, such pools are refused. */
  leases?: DhcpLeases;
  /** Where subnets come from when Docker sends no Pool; default DEFAULT_POOLS (198.18.128.0/17 → /24s, ...). */
  defaultPools?: { base: string; size: number }[];
  lan?: IpamLan;
  /**
   * On a store shared by hosts (etcd, docs/cluster.md): this daemon's id in its address records (tells a lost
   * reservation from another host's); `local`, its own store, keeps the outbox across restarts (outbox-journal.ts).
   */
  host?: string;
  local?: Store;
}

export interface AddressRequest {
  poolId: string;
  /** A plain IP for --ip/--ip6, --gateway, --aux-address; absent or "" for a dynamic address. */
  address?: string;
  options?: Record<string, string>;
}

export class Ipam implements AddressBook {
  private readonly defaults: DefaultPool[];
  private readonly stickies = new StickyNames();
  private readonly table: PoolTable;
  private readonly spaceLocks = new KeyedMutex();
  private readonly subnetLocks = new KeyedMutex();
  /** ReleasePool, and the pool releases made during a cluster store's outage (pool-release.ts). */
  private readonly releases: PoolReleases;
  private loading: Promise<void> | undefined;
  private readonly lan: IpamLan | undefined;
  private readonly dhcp: DhcpLeases | undefined;
  /** Releases made during a cluster store's outage, applied when it answers again (outbox.ts). */
  private readonly stopSettling: () => void;
  private readonly warmer = new Warmer((poolId) => {
    const p = this.table.pools.get(poolId);
    const lan = this.lan;
    const probe = p && lanProbe(this.lan, p.subnet);
    const index = p && this.table.indexOf(p);
    if (!p || !lan || !probe || !index || p.dhcp) return undefined;
    return { range: p, index, probe, defend: (v) => lan.claim(p.subnet.text, formatAddress(v, p.subnet.family)) };
  });

  constructor(
    private readonly store: Store,
    opts: IpamOptions = {},
  ) {
    this.defaults = parseDefaultPools(opts.defaultPools ?? DEFAULT_POOLS);
    this.table = new PoolTable(store, this.stickies, opts.host, opts.local);
    this.lan = opts.lan;
    this.dhcp = opts.leases;
    const { table, spaceLocks, subnetLocks } = this;
    this.releases = new PoolReleases({ table, store, spaceLocks, subnetLocks, dhcp: this.dhcp });
    // Only a store shared by hosts (etcd) leaves anything to settle: no timer on a single host.
    this.stopSettling =
      opts.host === undefined
        ? () => undefined
        : settleEvery(
            () => [...this.table.indexes, [POOL_RELEASES, this.releases]],
            // The pool releases take their own locks (space, then subnet); theirs is a key no subnet has.
            (sk, fn) => (sk === POOL_RELEASES ? fn() : this.subnetLocks.run(sk, fn)),
          );
  }

  /** Reads pools, allocations, sticky names and leases from the store. Idempotent; every other call waits for it. */
  load(): Promise<void> {
    this.loading ??= this.loadOnce().catch((e: unknown) => {
      this.loading = undefined;
      throw e;
    });
    return this.loading;
  }

  private async loadOnce(): Promise<void> {
    await this.table.load(() => this.releases.settleLoaded());
    await this.table.deleteKeys(await this.stickies.load(this.store));
    await this.dhcp?.load((space, subnet) => this.table.indexes.get(`${space}|${subnet}`)?.subnet);
  }

  capabilities(): { RequiresMACAddress: boolean; RequiresRequestReplay: boolean } {
    // State is persisted, so dockerd need not replay pools and addresses after its restart.
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  defaultAddressSpaces(): { LocalDefaultAddressSpace: string; GlobalDefaultAddressSpace: string } {
    return { LocalDefaultAddressSpace: LOCAL_SPACE, GlobalDefaultAddressSpace: GLOBAL_SPACE };
  }

  async requestPool(r: PoolRequest): Promise<{ poolId: string; pool: string; data: Record<string, string> }> {
    const req = validatePoolRequest(r);
    await this.load();
    // Pool releases kept during an outage first: a network made again here then joins where the store is.
    if (this.releases.unsettled > 0) await this.releases.settle();
    return this.spaceLocks
      .run(req.space, async () => {
        const inSpace = [...this.table.indexes.values()].filter((s) => s.space === req.space).map((s) => s.subnet);
        let subnet = req.subnet;
        if (subnet) {
          const clash = inSpace.find((s) => s.text !== subnet!.text && overlaps(s, subnet!));
          if (clash) throw poolOverlap(subnet, clash, req.space);
        } else subnet = defaultSubnet(this.defaults, req.space, r.v6 ? 6 : 4, inSpace);
        const id = poolIdOf(req.space, subnet, req.range, req.dhcp);
        const existing = this.table.pools.get(id);
        const newSubnet = !this.table.indexes.has(indexKey(req.space, subnet));
        if (existing) await this.table.changeRefs(existing, +1);
        else await this.table.create(req.space, subnet, req.range, req.dhcp ?? false);
        // Other hosts may use the subnet already: their addresses, so that the first picks do not run into them.
        const index = this.table.indexes.get(indexKey(req.space, subnet));
        if (newSubnet && index && this.table.host !== undefined) await learnSubnet(index, this.store);
        return { poolId: id, pool: subnet.text, data: {} };
      })
      .then(durable(this.store));
  }

  async releasePool(poolId: string): Promise<void> {
    await this.load();
    await this.releases.release(poolId);
  }

  async requestAddress(r: AddressRequest): Promise<{ address: string; data: Record<string, string> }> {
    await this.load();
    const p = this.table.pool(r.poolId, 'RequestAddress');
    const opts = r.options ?? {};
    const gateway = opts[REQUEST_ADDRESS_TYPE] === GATEWAY_REQUEST_TYPE;
    const name = opts[ENDPOINT_NAME] || undefined;
    const wanted = r.address ? usableAddress(p, r.address) : undefined;
    if (p.dhcp && !gateway) {
      const deps = { table: this.table, store: this.store, leases: this.dhcp, locks: this.subnetLocks };
      return requestLease(deps, p, wanted, name);
    }
    if (p.dhcp && wanted === undefined) throw dhcpWithoutGateway(p.poolId);
    const sk = indexKey(p.space, p.subnet);
    const got = await this.subnetLocks.run(sk, async (): Promise<bigint | Picked> => {
      // Looked up again under the lock: the pool may have been released (and even re-created) meanwhile. The
      // same PoolID always means the same subnet, so the lock and the checked address are still the right ones.
      const live = this.table.pool(r.poolId, 'RequestAddress');
      const index = this.table.indexOf(live)!;
      if (gateway && wanted === undefined && live.subnet.bits - live.subnet.prefix <= 1) {
        // A point-to-point prefix (/31, /127, RFC 3021/6164) has room for the two ends and no router. Engines
        // before v28 still ask for a gateway: name the first address, but leave it to an endpoint.
        return usableRange(live.subnet).first;
      }
      if (wanted !== undefined || gateway) {
        // Without an address, the gateway is the subnet's first usable address, as Docker's own IPAM does,
        // even when an ip-range is given.
        const v = wanted ?? usableRange(live.subnet).first;
        // The gateway is the LAN's router and answers by design; every other static address must be unused.
        // (Aux addresses are requested before the network exists, when no LAN is known: they are not probed.)
        // An address macnet itself has allocated is IPAM_ADDRESS_IN_USE (from reserve, naming its holder), not a
        // LAN conflict: its holder is one of our containers and would answer the probe.
        const verified = !gateway && (await checkStatic(this.store, this.lan, live, v));
        await index.reserve(v, gateway ? 'gateway' : (name ?? 'static'), live.poolId, verified);
        return v;
      }
      const probe = lanProbe(this.lan, live.subnet);
      const sticky = name ? stickyKey(live.space, live.subnet, name) : undefined;
      if (name && sticky) {
        const again = await this.stickies.takePrevious(live, index, name, sticky, probe);
        if (again !== undefined) return again;
      }
      return this.pick(r.poolId, sk, name);
    });
    // Reserved outside the lock, with the addresses picked meanwhile (batch.ts); lost to another host: again.
    const v =
      typeof got === 'bigint'
        ? got
        : await reserved(got, () => this.subnetLocks.run(sk, () => this.pick(r.poolId, sk, name)));
    if (!gateway) this.lan?.claim(p.subnet.text, formatAddress(v, p.subnet.family));
    if (wanted === undefined && !gateway) this.warmer.kick(r.poolId);
    // Outside the lock: the allocations of concurrent callers share one fsync (docs/ipam.md, "Durability").
    await this.store.sync();
    return { address: `${formatAddress(v, p.subnet.family)}/${p.subnet.prefix}`, data: {} };
  }

  /** A dynamic address for `name` picked in the pool's index (allocator.ts), under the subnet's lock. */
  private async pick(poolId: string, sk: string, name: string | undefined): Promise<Picked> {
    const live = this.table.pool(poolId, 'RequestAddress');
    const index = this.table.indexOf(live)!;
    const sticky = name ? stickyKey(live.space, live.subnet, name) : undefined;
    const probe = lanProbe(this.lan, live.subnet);
    const pick = () => index.pick(live, name ?? 'dynamic', probe, sticky, () => this.subnetLocks.waiting(sk));
    const res = await pick().catch(async (e: unknown) => {
      // Shared by hosts: the others' releases are learned when the range looks full here (follow.ts).
      const shared = this.table.host !== undefined && isMacnetError(e, 'IPAM_POOL_EXHAUSTED');
      if (!shared || (await refreshTaken(index, this.store)) === 0) throw e;
      return pick();
    });
    return { index, res, more: this.subnetLocks.waiting(sk) > 0 };
  }

  async releaseAddress(poolId: string, address: string): Promise<void> {
    await this.load();
    const p = this.table.pools.get(poolId);
    if (!p) return;
    const a = parseIp(address, 'ReleaseAddress');
    if (a.family !== p.subnet.family || a.value < p.subnet.base || a.value > p.subnet.last) return;
    const sk = indexKey(p.space, p.subnet);
    const warm = await this.subnetLocks.run(sk, async () => this.table.indexes.get(sk)?.release(a.value));
    // Free on the LAN a moment ago and nobody else's: the next start takes it without a probe (warm.ts), and the
    // probe link defends it meanwhile. Only where a dynamic allocation can take it.
    const dynamic = [...this.table.pools.values()].some(
      (o) => indexKey(o.space, o.subnet) === sk && !o.dhcp && a.value >= o.lo && a.value <= o.hi,
    );
    if (warm && dynamic) this.lan?.claim(p.subnet.text, formatAddress(a.value, p.subnet.family));
    if (p.dhcp) await this.dhcp?.release(p.space, p.subnet, formatAddress(a.value, p.subnet.family));
    await this.store.sync();
  }

  /**
   * Gives back `ip`, allocated before this daemon started, if it still is, is no gateway nor another host's, and
   * `stillOrphan` (asked under the subnet's lock, so that no RequestAddress or ReleaseAddress on the subnet runs
   * between the check and the release) confirms that nothing uses it. Returns whether it did.
   */
  async reclaim(space: string, subnet: string, ip: string, stillOrphan: () => Promise<boolean>): Promise<boolean> {
    await this.load();
    const s = [...this.table.indexesOf(subnet)].find((x) => x.space === space);
    if (!s) return false;
    const v = parseAddress(ip).value;
    return this.subnetLocks.run(indexKey(space, s.subnet), async () => {
      if (this.table.indexes.get(indexKey(space, s.subnet)) !== s || !s.inherited.has(v)) return false;
      const e = await this.store.get(addressKey(space, s.subnet, ip));
      const rec = e && decodeRecord<AddressRecord>(e.key, e.value, 'IPAM reclaim');
      if (!rec || rec.owner === 'gateway' || rec.host !== this.table.host || !(await stillOrphan())) return false;
      await s.release(v);
      s.warm.forget(v); // crash residue: no container had it, and no probe saw it free lately
      if (this.table.pools.get(rec.pool)?.dhcp) await this.dhcp?.release(space, s.subnet, ip);
      return true;
    });
  }

  /** This host's container holds `ip` (its driver's record): makes sure the shared store agrees (held.ts). */
  async holdOwn(subnet: string, ip: string): Promise<Held | undefined> {
    await this.load();
    return holdOwnAddress(this.table, this.subnetLocks, this.store, subnet, ip);
  }

  /** Another host's address, reclaimed in the store (lost-hosts.ts): this host's index lets it go too. */
  forget(subnet: string, ip: string): Promise<void> {
    return forgetAddress(this.table, this.subnetLocks, subnet, ip);
  }

  /**
   * Applies now what waits for a shared store (releases kept through an outage: outbox.ts, pool-release.ts), for
   * `macnet uninstall`, which goes for good. Throws while the store still fails.
   */
  async settleAll(): Promise<void> {
    await this.load();
    for (const [sk, s] of [...this.table.indexes])
      if (s.unsettled > 0) await this.subnetLocks.run(sk, () => s.settle());
    if (this.releases.unsettled > 0) await this.releases.settle();
  }

  /** Stops the warm set's refills (the daemon is stopping). DHCP renewals are the leases' own to stop. */
  close(): void {
    this.warmer.close();
    this.stopSettling();
  }

  // Questions (queries.ts), each after the load.

  async allocatedHere(subnet: string, ip: string): Promise<boolean> {
    await this.load();
    return allocatedHere(this.table, subnet, ip);
  }

  async requestedName(subnet: string, ip: string): Promise<string | undefined> {
    await this.load();
    return requestedName(this.table, this.store, subnet, ip);
  }

  /** Stopped containers' last addresses on `subnet`, by name (sticky.ts), for `macnet scan`. */
  async lastAddresses(subnet: string): Promise<{ name: string; address: string }[]> {
    return lastAddresses(this.store, subnet);
  }

  async inheritedAllocations(): Promise<ReturnType<typeof inheritedAllocations>> {
    await this.load();
    return inheritedAllocations(this.table);
  }

  async answered(poolId: string): Promise<ReturnType<typeof answered>> {
    await this.load();
    return answered(this.table, poolId);
  }

  async allocations(poolId: string): Promise<{ address: string; owner: string }[]> {
    await this.load();
    return allocations(this.table, this.store, poolId);
  }
}

/** Passes a result on once the store has made every write before it durable (Store.sync). */
const durable =
  (store: Store) =>
  async <T>(result: T): Promise<T> => {
    await store.sync();
    return result;
  };
