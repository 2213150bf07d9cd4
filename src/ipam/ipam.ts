// macnet's IPAM driver: the state behind Docker's IpamDriver calls (docs/ipam.md has the rules and the store
// schema). The Docker plugin's handlers translate JSON to these calls one to one.
//
// Locking: pool operations hold a lock per address space (the overlap check looks at every subnet of the
// space); address operations hold a lock per subnet; ReleasePool takes the space's and then the subnet's,
// always in that order, so two operations can never wait for each other.
//
// Durability: every call that writes awaits store.sync() after its locks are released and before it answers,
// so no answer reaches dockerd before the writes behind it would survive a power loss, while concurrent calls
// (on one subnet too) share one fsync instead of queueing one each behind the subnet's lock.
import { clip, MacnetError } from '../errors';
import type { Store } from '../store/types';
import { SubnetSpace, type DynamicRange, type Holder, type LanProbe } from './allocator';
import {
  formatAddress,
  overlaps,
  parseAddress,
  parseCidrBig,
  unusableReason,
  usableRange,
  type Address,
  type Subnet,
} from './cidr';
import {
  ADDRESSES,
  POOLS,
  addressKey,
  stickyKey,
  stickyPrefix,
  cursorKey,
  poolIdOf,
  poolKey,
  splitAddressKey,
  subnetAddressPrefix,
  type AddressRecord,
  type PoolRecord,
} from './keys';
import { KeyedMutex } from '../types/mutex';
import { StickyNames } from './sticky';
import { Warmer } from './warmer';
import type { DhcpLeases } from '../lan/leases';
import type { AddressBook, Lan } from '../lan';
import { lastAddresses } from './sticky';
import {
  DEFAULT_POOLS,
  ENDPOINT_NAME,
  GATEWAY_REQUEST_TYPE,
  GLOBAL_SPACE,
  LOCAL_SPACE,
  REQUEST_ADDRESS_TYPE,
  chooseDefaultSubnet,
  parseDefaultPools,
  validatePoolRequest,
  type DefaultPool,
  type PoolRequest,
} from './pools';

/**
 * What the IPAM asks of the LAN (src/lan): which candidates answer, whether a static address that answers is
 * refused, and which just-allocated addresses to defend. Addresses someone on the LAN already uses are never
 * handed out; a static one is refused unless the network says conflict=warn.
 */
export type IpamLan = Pick<Lan, 'inUse' | 'conflictPolicy' | 'claim'>;

export interface IpamOptions {
  /** Leases for --ipam-opt mode=dhcp pools (src/lan/leases.ts); without, such pools are refused. */
  leases?: DhcpLeases;
  /** Where subnets come from when Docker sends no Pool; default DEFAULT_POOLS (198.18.128.0/17 → /24s, ...). */
  defaultPools?: { base: string; size: number }[];
  lan?: IpamLan;
}

export interface AddressRequest {
  poolId: string;
  /** A plain IP for --ip/--ip6, --gateway, --aux-address; absent or "" for a dynamic address. */
  address?: string;
  options?: Record<string, string>;
}

interface Pool extends DynamicRange {
  readonly key: string;
  /** Next-fit's cursor of earlier versions: deleted with the pool. */
  readonly cursorKey: string;
  /** --ipam-opt mode=dhcp: endpoint addresses are leased from the LAN's DHCP server (dhcp.ts). */
  readonly dhcp: boolean;
  readonly space: string;
  readonly subnet: Subnet;
  readonly range: Subnet | undefined;
  refs: number;
}

/** Delete address keys in chunks: a cluster store bounds the operations per transaction (etcd: 128). */
const DELETE_CHUNK = 100;
/** Compare-and-set retries on a pool record before giving up (only another writer of the store can race). */
const CAS_RETRIES = 10;

const spaceKey = (space: string, subnet: Subnet) => `${space}|${subnet.text}`;

export class Ipam implements AddressBook {
  private readonly defaults: DefaultPool[];
  private readonly pools = new Map<string, Pool>();
  private readonly subnets = new Map<string, SubnetSpace>();
  private readonly spaceLocks = new KeyedMutex();
  private readonly subnetLocks = new KeyedMutex();
  private loading: Promise<void> | undefined;

  private readonly lan: IpamLan | undefined;

  private readonly dhcp: DhcpLeases | undefined;
  private readonly stickies = new StickyNames();
  private readonly warmer = new Warmer((poolId) => {
    const p = this.pools.get(poolId);
    const lan = this.lan;
    const probe = p && this.lanProbe(p.subnet);
    const space = p && this.subnets.get(spaceKey(p.space, p.subnet));
    if (!p || !lan || !probe || !space || p.dhcp) return undefined;
    return { range: p, space, probe, defend: (v) => lan.claim(p.subnet.text, formatAddress(v, p.subnet.family)) };
  });

  constructor(
    private readonly store: Store,
    opts: IpamOptions = {},
  ) {
    this.defaults = parseDefaultPools(opts.defaultPools ?? DEFAULT_POOLS);
    this.lan = opts.lan;
    this.dhcp = opts.leases;
  }

  private lanProbe(subnet: Subnet): LanProbe | undefined {
    const lan = this.lan;
    if (!lan) return undefined;
    return async (candidates) => {
      const texts = candidates.map((v) => formatAddress(v, subnet.family));
      const found = await lan.inUse(subnet.text, texts);
      const out = new Map<bigint, Holder>();
      candidates.forEach((v, i) => {
        const h = found?.get(texts[i]!);
        if (h) out.set(v, h);
      });
      return out;
    };
  }

  /** Reads pools, cursors and allocations from the store. Idempotent; every other call waits for it. */
  load(): Promise<void> {
    this.loading ??= this.loadOnce().catch((e: unknown) => {
      this.loading = undefined;
      throw e;
    });
    return this.loading;
  }

  private async loadOnce(): Promise<void> {
    // From scratch, so that a retry after a failed load does not keep half of the first attempt.
    this.pools.clear();
    this.subnets.clear();
    for (const e of await this.store.list(POOLS)) {
      readRecord(e.key, () => {
        const rec = JSON.parse(e.value) as PoolRecord;
        const subnet = parseCidrBig(rec.subnet).subnet;
        const range = rec.range === null ? undefined : parseCidrBig(rec.range).subnet;
        if (!Number.isInteger(rec.refs) || rec.refs < 1) throw new Error(`reference count ${rec.refs}`);
        this.addPool(rec.space, subnet, range, rec.refs, rec.mode === 'dhcp');
      });
    }
    // Address keys of a subnet without a pool are the residue of a crash inside ReleasePool; they are ignored
    // here and purged when a pool on that subnet is created again.
    const byPrefix = new Map([...this.subnets.values()].map((s) => [subnetAddressPrefix(s.space, s.subnet), s]));
    for (const e of await this.store.list(ADDRESSES)) {
      const k = splitAddressKey(e.key);
      const s = k && byPrefix.get(k.prefix);
      if (!s || !k) continue;
      const v = readRecord(e.key, () => parseAddress(k.address).value);
      s.taken.add(v);
      s.inherited.add(v);
    }
    await this.dropStickies(await this.stickies.load(this.store));
    await this.dhcp?.load((space, subnet) => this.subnets.get(`${space}|${subnet}`)?.subnet);
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
    return this.spaceLocks
      .run(req.space, async () => {
        const inSpace = [...this.subnets.values()].filter((s) => s.space === req.space).map((s) => s.subnet);
        let subnet = req.subnet;
        if (subnet) {
          const clash = inSpace.find((s) => s.text !== subnet!.text && overlaps(s, subnet!));
          if (clash) {
            throw new MacnetError(
              'IPAM_POOL_OVERLAP',
              `RequestPool: subnet ${subnet.text} overlaps subnet ` +
                `${clash.text}, already in use in address space ${req.space}`,
              { subnet: subnet.text, existing: clash.text, space: req.space },
            );
          }
        } else {
          subnet = chooseDefaultSubnet(this.defaults, r.v6 ? 6 : 4, inSpace);
          if (!subnet) {
            const bases = this.defaults
              .filter((d) => d.base.family === (r.v6 ? 6 : 4))
              .map((d) => `${d.base.text} (/${d.size} each)`);
            throw new MacnetError(
              'IPAM_NO_DEFAULT_POOL',
              `RequestPool: no --subnet given and no free IPv${r.v6 ? 6 : 4} subnet ` +
                `left in the default pools: ${bases.join(', ') || 'none configured'}`,
              { space: req.space, v6: r.v6, defaultPools: bases },
            );
          }
        }
        const id = poolIdOf(req.space, subnet, req.range, req.dhcp);
        const existing = this.pools.get(id);
        if (existing) await this.changeRefs(existing, +1);
        else await this.createPool(req.space, subnet, req.range, req.dhcp ?? false);
        return { poolId: id, pool: subnet.text, data: {} };
      })
      .then(durable(this.store));
  }

  async releasePool(poolId: string): Promise<void> {
    await this.load();
    const p = this.pools.get(poolId);
    if (!p) return;
    await this.spaceLocks.run(p.space, () =>
      this.subnetLocks.run(spaceKey(p.space, p.subnet), async () => {
        // Re-check under the locks: a concurrent ReleasePool may have removed it while we waited.
        if (this.pools.get(poolId) !== p) return;
        await this.changeRefs(p, -1);
        if (p.refs > 0) return;
        this.pools.delete(poolId);
        const last = ![...this.pools.values()].some((o) => o.space === p.space && o.subnet.text === p.subnet.text);
        if (last) {
          this.subnets.delete(spaceKey(p.space, p.subnet));
          // Docker releases every address before the pool; whatever is left (a crashed container's) goes too.
          await this.purgeAddresses(p.space, p.subnet);
          await this.dhcp?.purge(p.space, p.subnet);
        }
      }),
    );
    await this.store.sync();
  }

  async requestAddress(r: AddressRequest): Promise<{ address: string; data: Record<string, string> }> {
    await this.load();
    const p = this.pool(r.poolId, 'RequestAddress');
    const opts = r.options ?? {};
    const gateway = opts[REQUEST_ADDRESS_TYPE] === GATEWAY_REQUEST_TYPE;
    const name = opts[ENDPOINT_NAME] || undefined;
    const wanted = r.address ? this.usableAddress(p, r.address) : undefined;
    if (p.dhcp && !gateway) return this.requestLease(p, wanted, name);
    if (p.dhcp && wanted === undefined) {
      throw new MacnetError(
        'IPAM_POOL_INVALID',
        "RequestAddress: --ipam-opt mode=dhcp needs --gateway, the LAN router's address: " +
          "Docker asks for the network's gateway before macnet knows the network's parent, so it " +
          'cannot ask the DHCP server yet (each container still gets the router its lease names)',
        { option: 'gateway', pool: p.poolId },
      );
    }
    const v = await this.subnetLocks.run(spaceKey(p.space, p.subnet), async () => {
      // Looked up again under the lock: the pool may have been released (and even re-created) meanwhile. The
      // same PoolID always means the same subnet, so the lock and the checked address are still the right ones.
      const live = this.pool(r.poolId, 'RequestAddress');
      const space = this.subnets.get(spaceKey(live.space, live.subnet))!;
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
        let verified = false;
        if (
          !gateway &&
          this.lan &&
          !(await this.store.get(addressKey(live.space, live.subnet, formatAddress(v, live.subnet.family))))
        ) {
          const ip = formatAddress(v, live.subnet.family);
          const found = await this.lan.inUse(live.subnet.text, [ip]);
          const h = found?.get(ip);
          verified = found !== undefined && !h;
          if (h && (await this.lan.conflictPolicy(live.subnet.text)) === 'refuse') {
            throw new MacnetError(
              'ADDRESS_CONFLICT',
              `address ${ip} is in use on the LAN by ${h.mac} (` +
                `${h.reason === 'answered' ? 'it answered a probe' : 'it is probing for the address right now'}` +
                '); pick another address, or create the network with -o conflict=warn to use it anyway',
              { address: ip, mac: h.mac, subnet: live.subnet.text },
            );
          }
        }
        await space.reserve(v, gateway ? 'gateway' : (name ?? 'static'), live.poolId, verified);
        return v;
      }
      const probe = this.lanProbe(live.subnet);
      const sticky = name ? stickyKey(live.space, live.subnet, name) : undefined;
      if (name && sticky) {
        const again = await this.stickies.takePrevious(live, space, name, sticky, probe);
        if (again !== undefined) return again;
      }
      const sk = spaceKey(live.space, live.subnet);
      const v = await space.allocate(live, name ?? 'dynamic', probe, sticky, () => this.subnetLocks.waiting(sk));
      if (sticky) await this.dropStickies(this.stickies.set(sticky, v));
      return v;
    });
    if (!gateway) this.lan?.claim(p.subnet.text, formatAddress(v, p.subnet.family));
    if (wanted === undefined && !gateway) this.warmer.kick(r.poolId);
    // Outside the lock: the allocations of concurrent callers share one fsync (docs/ipam.md, "Durability").
    await this.store.sync();
    return { address: `${formatAddress(v, p.subnet.family)}/${p.subnet.prefix}`, data: {} };
  }

  /** Deletes the sticky records StickyNames dropped (sticky-prune.ts), in chunks; a crash in between: next load. */
  private async dropStickies(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
      await this.store.txn(keys.slice(i, i + DELETE_CHUNK).map((key) => ({ op: 'delete' as const, key })));
    }
  }

  /** The container name an allocated address was requested for, if the engine sent one. */
  async requestedName(subnet: string, ip: string): Promise<string | undefined> {
    await this.load();
    for (const space of this.subnets.values()) {
      if (space.subnet.text !== subnet) continue;
      const a = parseAddress(ip);
      if (a.family !== space.subnet.family || !space.taken.has(a.value)) continue;
      const e = await this.store.get(addressKey(space.space, space.subnet, ip));
      const owner = e && (JSON.parse(e.value) as AddressRecord).owner;
      if (owner && !['dynamic', 'static', 'gateway'].includes(owner)) return owner;
    }
    return undefined;
  }

  /**
   * A DHCP pool's endpoint address: leased outside the subnet lock (a server may take seconds to offer, e.g.
   * dnsmasq pings the address first), then reserved in the subnet's index like any other allocation.
   */
  private async requestLease(
    p: Pool,
    wanted: bigint | undefined,
    name: string | undefined,
  ): Promise<{ address: string; data: Record<string, string> }> {
    if (wanted !== undefined) {
      throw new MacnetError(
        'IPAM_POOL_INVALID',
        `RequestAddress: --ip ${formatAddress(wanted, p.subnet.family)} with ` +
          "--ipam-opt mode=dhcp: addresses come from the LAN's DHCP server; reserve " +
          'the address for the container there, or use a network without mode=dhcp',
        { option: 'ip', pool: p.poolId },
      );
    }
    if (!this.dhcp) {
      throw new MacnetError(
        'IPAM_POOL_INVALID',
        'RequestAddress: --ipam-opt mode=dhcp is not available: this ' +
          'daemon runs without its LAN link (started with --no-probe?)',
        { pool: p.poolId },
      );
    }
    const lease = await this.dhcp.acquire(p.poolId, p.space, p.subnet, name);
    const v = parseAddress(lease.address).value;
    const ok = await this.subnetLocks.run(spaceKey(p.space, p.subnet), async () => {
      const space = this.subnets.get(spaceKey(p.space, p.subnet));
      return !!space && (await space.claim(v, name ?? 'dhcp', p.poolId));
    });
    if (!ok) {
      const holder =
        (await this.allocations(p.poolId)).find((a) => a.address === lease.address)?.owner ?? 'another allocation';
      await this.dhcp.giveBack(p.space, p.subnet, lease);
      throw new MacnetError(
        'ADDRESS_CONFLICT',
        `the DHCP server ${lease.serverId} offered ${lease.address}, which ${holder} ` +
          "on this host already uses (a static --ip or the gateway inside the server's " +
          "range?); declined it: keep static addresses out of the server's range",
        { address: lease.address, server: lease.serverId },
      );
    }
    await this.store.sync();
    return { address: `${lease.address}/${p.subnet.prefix}`, data: {} };
  }

  /** Stopped containers' last addresses on `subnet`, by name (src/ipam/sticky.ts), for `macnet scan`. */
  async lastAddresses(subnet: string): Promise<{ name: string; address: string }[]> {
    return lastAddresses(this.store, subnet);
  }

  /** Stops the warm set's refills (the daemon is stopping). DHCP renewals are the leases' own to stop. */
  close(): void {
    this.warmer.close();
  }

  async releaseAddress(poolId: string, address: string): Promise<void> {
    await this.load();
    const p = this.pools.get(poolId);
    if (!p) return;
    const a = parseIp(address, 'ReleaseAddress');
    if (a.family !== p.subnet.family || a.value < p.subnet.base || a.value > p.subnet.last) return;
    const sk = spaceKey(p.space, p.subnet);
    const warm = await this.subnetLocks.run(sk, async () => this.subnets.get(sk)?.release(a.value));
    // Free on the LAN a moment ago and nobody else's: the next start takes it without a probe (warm.ts), and the
    // probe link defends it meanwhile. Only where a dynamic allocation can take it.
    const dynamic = [...this.pools.values()].some(
      (o) => spaceKey(o.space, o.subnet) === sk && !o.dhcp && a.value >= o.lo && a.value <= o.hi,
    );
    if (warm && dynamic) this.lan?.claim(p.subnet.text, formatAddress(a.value, p.subnet.family));
    if (p.dhcp) await this.dhcp?.release(p.space, p.subnet, formatAddress(a.value, p.subnet.family));
    await this.store.sync();
  }

  /** Whether this IPAM has `ip` of `subnet` allocated (then it was probed when handed out). */
  async allocatedHere(subnet: string, ip: string): Promise<boolean> {
    await this.load();
    for (const space of this.subnets.values()) {
      if (space.subnet.text !== subnet) continue;
      const a = parseAddress(ip);
      if (a.family === space.subnet.family && space.taken.has(a.value) && !space.held.has(a.value)) return true;
    }
    return false;
  }

  /**
   * Per subnet, the addresses allocated before this daemon started that still are, with the subnet's pools'
   * total reference count (how many networks use it): the candidates src/docker/reclaim.ts checks.
   */
  async inheritedAllocations(): Promise<{ space: string; subnet: string; refs: number; addresses: string[] }[]> {
    await this.load();
    const out: { space: string; subnet: string; refs: number; addresses: string[] }[] = [];
    for (const s of this.subnets.values()) {
      if (s.inherited.size === 0) continue;
      let refs = 0;
      for (const p of this.pools.values()) if (p.space === s.space && p.subnet.text === s.subnet.text) refs += p.refs;
      out.push({
        space: s.space,
        subnet: s.subnet.text,
        refs,
        addresses: [...s.inherited].map((v) => formatAddress(v, s.subnet.family)),
      });
    }
    return out;
  }

  /**
   * Gives back `ip`, allocated before this daemon started, if it still is, is no gateway, and `stillOrphan`
   * (asked under the subnet's lock, so that no RequestAddress or ReleaseAddress on the subnet runs between the
   * check and the release) confirms that nothing uses it. Returns whether it did.
   */
  async reclaim(space: string, subnet: string, ip: string, stillOrphan: () => Promise<boolean>): Promise<boolean> {
    await this.load();
    const s = [...this.subnets.values()].find((x) => x.space === space && x.subnet.text === subnet);
    if (!s) return false;
    const v = parseAddress(ip).value;
    return this.subnetLocks.run(spaceKey(space, s.subnet), async () => {
      if (this.subnets.get(spaceKey(space, s.subnet)) !== s || !s.inherited.has(v)) return false;
      const e = await this.store.get(addressKey(space, s.subnet, ip));
      const rec = e && readRecord(e.key, () => JSON.parse(e.value) as AddressRecord, 'reclaim');
      if (!rec || rec.owner === 'gateway' || !(await stillOrphan())) return false;
      await s.release(v);
      s.warm.forget(v); // crash residue: no container had it, and no probe saw it free lately
      if (this.pools.get(rec.pool)?.dhcp) await this.dhcp?.release(space, s.subnet, ip);
      return true;
    });
  }

  /** Addresses of the pool's subnet that answered on the LAN and are skipped for now, with who answered. */
  async held(poolId: string): Promise<{ address: string; mac: string; reason: string; seen: string; until: string }[]> {
    await this.load();
    const p = this.pool(poolId, 'held');
    const space = this.subnets.get(spaceKey(p.space, p.subnet));
    return [...(space?.held ?? new Map())]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([v, h]) => ({
        address: formatAddress(v, p.subnet.family),
        mac: h.mac,
        reason: h.reason,
        seen: new Date(h.seen).toISOString(),
        until: new Date(h.until).toISOString(),
      }));
  }

  /** Every allocated address of the pool's subnet (shared by all pools on it), in address order. */
  async allocations(poolId: string): Promise<{ address: string; owner: string }[]> {
    await this.load();
    const p = this.pool(poolId, 'allocations');
    const rows = (await this.store.list(subnetAddressPrefix(p.space, p.subnet))).map((e) => {
      const address = splitAddressKey(e.key)!.address;
      return {
        v: parseAddress(address).value,
        address,
        owner: readRecord(e.key, () => (JSON.parse(e.value) as AddressRecord).owner, 'allocations'),
      };
    });
    rows.sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0));
    return rows.map(({ address, owner }) => ({ address, owner }));
  }

  private pool(poolId: string, call: string): Pool {
    const p = this.pools.get(poolId);
    if (!p) {
      throw new MacnetError(
        'IPAM_POOL_NOT_FOUND',
        `${call}: no pool with ID ${clip(poolId)} (was its network removed?)`,
        { poolId: clip(poolId) },
      );
    }
    return p;
  }

  private usableAddress(p: Pool, text: string): bigint {
    const a = parseIp(text, 'RequestAddress');
    const why = unusableReason(p.subnet, a);
    if (why) {
      throw new MacnetError(
        'IPAM_ADDRESS_OUT_OF_POOL',
        `RequestAddress: address ${formatAddress(a.value, a.family)} ${why} (pool ${p.poolId})`,
        { address: text, subnet: p.subnet.text, poolId: p.poolId },
      );
    }
    return a.value;
  }

  private addPool(space: string, subnet: Subnet, range: Subnet | undefined, refs: number, dhcp = false): Pool {
    const sk = spaceKey(space, subnet);
    let s = this.subnets.get(sk);
    if (!s) this.subnets.set(sk, (s = new SubnetSpace(space, subnet, this.store)));
    const { lo, hi } = s.dynamicBounds(range);
    const p: Pool = {
      poolId: poolIdOf(space, subnet, range, dhcp),
      key: poolKey(space, subnet, range, dhcp),
      cursorKey: cursorKey(space, subnet, range, dhcp),
      space,
      subnet,
      range,
      refs,
      lo,
      hi,
      dhcp,
      label: dhcp
        ? `subnet ${subnet.text} (DHCP)`
        : range
          ? `ip-range ${range.text} of subnet ${subnet.text}`
          : `subnet ${subnet.text}`,
    };
    this.pools.set(p.poolId, p);
    return p;
  }

  private async createPool(space: string, subnet: Subnet, range: Subnet | undefined, dhcp: boolean): Promise<void> {
    const firstOnSubnet = !this.subnets.has(spaceKey(space, subnet));
    if (firstOnSubnet) await this.purgeAddresses(space, subnet);
    const rec: PoolRecord = {
      id: poolIdOf(space, subnet, range, dhcp),
      space,
      subnet: subnet.text,
      range: range?.text ?? null,
      refs: 1,
      ...(dhcp && { mode: 'dhcp' as const }),
    };
    const key = poolKey(space, subnet, range, dhcp);
    // A cursor of an earlier version (next-fit) is residue: gone with the pool.
    if (
      await this.store.txn([
        { op: 'create', key, value: JSON.stringify(rec) },
        { op: 'delete', key: cursorKey(space, subnet, range, dhcp) },
      ])
    ) {
      this.addPool(space, subnet, range, 1, dhcp);
      return;
    }
    // Created meanwhile by another writer of the store: join it.
    const p = this.addPool(space, subnet, range, 0, dhcp);
    await this.changeRefs(p, +1);
  }

  /** Adds `delta` to the pool's reference count in the store (compare-and-set); deletes the pool at 0. */
  private async changeRefs(p: Pool, delta: number): Promise<void> {
    for (let i = 0; i < CAS_RETRIES; i++) {
      const e = await this.store.get(p.key);
      const rec: PoolRecord = e
        ? readRecord(e.key, () => JSON.parse(e.value) as PoolRecord, 'pool update')
        : {
            id: p.poolId,
            space: p.space,
            subnet: p.subnet.text,
            range: p.range?.text ?? null,
            refs: 0,
            ...(p.dhcp && { mode: 'dhcp' as const }),
          };
      rec.refs += delta;
      let ok: boolean;
      if (rec.refs > 0) {
        ok = e
          ? await this.store.update(p.key, JSON.stringify(rec), e.revision)
          : await this.store.create(p.key, JSON.stringify(rec));
      } else {
        ok =
          !e ||
          (await this.store.txn([
            { op: 'delete', key: p.key, revision: e.revision },
            { op: 'delete', key: p.cursorKey },
          ]));
      }
      if (ok) {
        p.refs = Math.max(rec.refs, 0);
        return;
      }
    }
    throw new MacnetError(
      'STORE_ERROR',
      `pool ${p.poolId}: its record kept changing under ${CAS_RETRIES} compare-and-set attempts`,
      { poolId: p.poolId, key: p.key },
    );
  }

  private async purgeAddresses(space: string, subnet: Subnet): Promise<void> {
    // The names' previous addresses go too: a network made again later is a new network.
    const keys = [
      ...(await this.store.list(subnetAddressPrefix(space, subnet))),
      ...(await this.store.list(stickyPrefix(space, subnet))),
    ].map((e) => e.key);
    this.stickies.purge(stickyPrefix(space, subnet));
    for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
      await this.store.txn(keys.slice(i, i + DELETE_CHUNK).map((key) => ({ op: 'delete' as const, key })));
    }
  }
}

/** Passes a result on once the store has made every write before it durable (Store.sync). */
const durable =
  (store: Store) =>
  async <T>(result: T): Promise<T> => {
    await store.sync();
    return result;
  };

/** Runs `fn` on a stored record; a record macnet cannot read is a STORE_ERROR naming its key. */
function readRecord<T>(key: string, fn: () => T, call = 'load'): T {
  try {
    return fn();
  } catch (e) {
    throw new MacnetError('STORE_ERROR', `IPAM ${call}: unreadable record ${key}: ${(e as Error).message}`, { key }, e);
  }
}

/** A plain IP as Docker sends it; a CIDR's address part is accepted too (some clients send "ip/len"). */
function parseIp(text: string, call: string): Address {
  const slash = text.indexOf('/');
  try {
    return parseAddress(slash < 0 ? text : text.slice(0, slash));
  } catch {
    throw new MacnetError('INVALID_ARGUMENT', `${call}: ${clip(text)} is not an IP address`, { address: clip(text) });
  }
}
