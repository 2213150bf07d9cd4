// --ipam-opt mode=dhcp: endpoint addresses leased from the LAN's own DHCP server (docs/dhcp.md). The lease is
// taken at RequestAddress, before the container exists, for the MAC the container will get (the driver asks
// for it at CreateEndpoint); it is kept (renewed at T1, rebound at T2) for as long as the address is
// allocated, also across daemon restarts (leases live in the store).
//
// Released with the address, it is parked rather than given back at once: dockerd releases a container's
// address when the container stops and asks for one, without saying which container, when it starts again
// (restart, stop/start, dockerd restart; the lab's engines send no name). The next start takes the lowest
// parked lease, with its MAC and client-id, so the server hands out the same address again: a restarted
// container keeps its lease, as a restarted machine does. A lease nobody takes within `keepMs` (or before it
// ends) is released to the server then. With engines that send the name, the name's own lease is taken.
//
// The IPAM asks for leases and gives them back with its addresses (src/ipam/leased.ts); this file owns their
// records (lan/leases/...) and renewals, and the driver reads a lease's MAC and router from it.
import { acquire, decline, type DhcpLease, LeaseKeeper, release, times } from '../dhcp';
import type { FrameSocket } from '../types/socket';
import { MacnetError } from '../errors';
import type { Logger } from '../log';
import type { Store } from '../store/types';
import { parseAddress, type Subnet } from '../types/address';
import {
  DHCP_KEEP_MS,
  LEASES,
  clientIdOf,
  dhcpMac,
  hostnameOf,
  inSubnet,
  leaseKey,
  leasePrefix,
  type DhcpOptions,
  type DhcpSockets,
  type Held,
  type LeaseRecord,
} from './lease-records';
import { decodeRecord, encodeRecord } from '../store/records';

export class DhcpLeases {
  private readonly keeper: LeaseKeeper;
  /** Lease key (space|subnet|address) → the stored record, in memory for the driver's questions. */
  private readonly records = new Map<string, Held>();
  private readonly parkTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: Store,
    private readonly sockets: DhcpSockets,
    private readonly log: Logger,
    private readonly opts: DhcpOptions = {},
  ) {
    this.keeper = new LeaseKeeper({
      socketFor: async (key, lease) => {
        const r = this.records.get(key);
        const own = r && (await this.sockets.containerSocket(r.subnet.text, lease.address).catch(() => undefined));
        // Before Join (or after Leave) the container has no interface: the probe link still reaches the server.
        return own ?? (await this.sockets.probeSocket(r?.subnet.text ?? '')).sock;
      },
      where: (key) => `the lease of ${this.records.get(key)?.lease.address ?? key}`,
    });
    this.keeper.on('renewed', (key: string, lease: DhcpLease) => {
      this.log.debug('DHCP lease renewed', {
        address: lease.address,
        leaseSeconds: lease.leaseSeconds,
        server: lease.serverId,
      });
      void this.save(key, { lease, state: 'bound' });
    });
    this.keeper.on('changed', (key: string, lease: DhcpLease, prev: DhcpLease) => {
      this.log.error(
        'DHCP server moved a lease to another address: the container keeps the old one until it is re-created',
        { address: prev.address, newAddress: lease.address, mac: lease.mac, server: lease.serverId },
      );
      void this.save(key, { lease: prev, state: 'changed', changedTo: lease.address });
    });
    this.keeper.on('expired', (key: string, lease: DhcpLease, reason: string) => {
      this.log.error(
        reason === 'nak'
          ? "DHCP server refused to extend a lease (DHCPNAK): the container's address is no longer leased"
          : "DHCP lease expired without renewal: the container's address is no longer leased",
        { address: lease.address, mac: lease.mac, server: lease.serverId },
      );
      void this.save(key, { lease, state: 'expired' });
    });
    this.keeper.on('error', (key: string, e: unknown) =>
      this.log.warn('DHCP renewal attempt failed; retrying', { lease: key, error: e }),
    );
  }

  private key(space: string, subnet: Subnet, address: string): string {
    return `${space}|${subnet.text}|${address}`;
  }

  private async save(key: string, patch: Pick<LeaseRecord, 'lease' | 'state'> & { changedTo?: string }): Promise<void> {
    const r = this.records.get(key);
    if (!r) return;
    const next = { ...r, ...patch };
    this.records.set(key, next);
    const { space, subnet, ...stored } = next;
    await this.store
      .put(leaseKey(space, subnet, r.lease.address), encodeRecord(stored))
      .catch((e: unknown) => this.log.error('could not store a DHCP lease', { error: e }));
  }

  /** At start: leases of DHCP pools are kept again from where they were (renewals continue on schedule). */
  async load(subnetOf: (space: string, subnet: string) => Subnet | undefined): Promise<void> {
    for (const e of await this.store.list(LEASES)) {
      const [space, seg] = e.key.slice(LEASES.length).split('/');
      const subnet = space && seg ? subnetOf(space, seg.replace('_', '/')) : undefined;
      if (!space || !subnet) continue;
      const rec = decodeRecord<LeaseRecord>(e.key, e.value, 'DHCP leases load');
      const key = this.key(space, subnet, rec.lease.address);
      this.records.set(key, { ...rec, space, subnet });
      if (rec.state === 'parked') this.schedulePark(key);
      else if (rec.state !== 'expired') this.keeper.add(key, rec.lease);
    }
  }

  /**
   * A lease for a new endpoint: DISCOVER from the parent's probe link with the container's future MAC. The
   * caller reserves the address in the subnet's index and gives it back with `decline` if it cannot.
   */
  async acquire(poolId: string, space: string, subnet: Subnet, name?: string): Promise<DhcpLease> {
    const own = dhcpMac(subnet.text, name);
    const { sock, where, sharedMac } = await this.sockets.probeSocket(subnet.text);
    // Taken out of the parked set before any further await: two starts at once never share one.
    const parked = this.unpark(space, subnet, name === undefined ? undefined : clientIdOf(own, sharedMac));
    const mac = parked?.mac ?? sharedMac ?? own;
    const clientId = parked ? Buffer.from(parked.clientId, 'hex') : clientIdOf(own, sharedMac);
    const hostname = name ? hostnameOf(name) : parked?.hostname;
    let lease: DhcpLease;
    try {
      lease = await acquire(sock, {
        mac,
        clientId,
        ...(hostname && { hostname }),
        ...(parked && { requestedAddress: parked.address }),
        timeoutMs: this.opts.timeoutMs ?? 5000,
        where,
      });
      if (!inSubnet(lease.address, subnet)) {
        this.decline(sock, lease, subnet);
        throw new MacnetError(
          'IPAM_POOL_INVALID',
          `the DHCP server ${lease.serverId} on ${where} leased ${lease.address}/${lease.prefixLength}, which is ` +
            `outside the network's subnet ${subnet.text}: create the network with --subnet set to the LAN's subnet`,
          { address: lease.address, subnet: subnet.text, server: lease.serverId },
        );
      }
    } finally {
      sock.close();
    }
    const key = this.key(space, subnet, lease.address);
    this.records.set(key, { lease, state: 'bound', poolId, space, subnet });
    const { space: _s, subnet: _n, ...stored } = this.records.get(key)!;
    await this.store.put(leaseKey(space, subnet, lease.address), encodeRecord(stored));
    this.keeper.add(key, lease);
    this.log.info('DHCP lease', {
      address: lease.address,
      mac,
      server: lease.serverId,
      router: lease.router,
      leaseSeconds: lease.leaseSeconds,
      ...(name && { name }),
      ...(parked && { parked: parked.address }),
    });
    return lease;
  }

  /**
   * The parked lease the next start takes: the one of `clientId` (a name's), else the lowest address's, as
   * Docker's IPAM hands out the lowest free address (its container's own, when one container stopped and starts).
   * By client-id, not MAC: ipvlan containers share one MAC.
   */
  private unpark(space: string, subnet: Subnet, clientId?: Buffer): DhcpLease | undefined {
    let best: [string, Held, bigint] | undefined;
    for (const [k, r] of this.records) {
      if (r.state !== 'parked' || r.space !== space || r.subnet.text !== subnet.text) continue;
      if (clientId !== undefined && r.lease.clientId !== clientId.toString('hex')) continue;
      const v = parseAddress(r.lease.address).value;
      if (!best || v < best[2]) best = [k, r, v];
    }
    if (!best) return undefined;
    const [key, r] = best;
    this.forget(key);
    void this.store
      .delete(leaseKey(space, subnet, r.lease.address))
      .catch((e: unknown) => this.log.error('could not delete a DHCP lease', { error: e }));
    return r.lease;
  }

  private forget(key: string): void {
    clearTimeout(this.parkTimers.get(key));
    this.parkTimers.delete(key);
    this.keeper.remove(key);
    this.records.delete(key);
  }

  /** Releases a parked lease to the server when its time is up (nobody started with it). */
  private schedulePark(key: string): void {
    const r = this.records.get(key);
    if (!r || r.state !== 'parked') return;
    clearTimeout(this.parkTimers.get(key));
    const ms = Math.max(0, (r.parkedUntil ?? 0) - Date.now());
    this.parkTimers.set(
      key,
      setTimeout(
        () => {
          if (this.records.get(key) !== r) return;
          this.forget(key);
          void this.releaseNow(r.space, r.subnet, r.lease.address, r);
        },
        Math.min(ms, 2 ** 31 - 1),
      ).unref(),
    );
  }

  /** The address could not be used after all (macnet holds it already): tell the server (DHCPDECLINE). */
  async giveBack(space: string, subnet: Subnet, lease: DhcpLease): Promise<void> {
    const key = this.key(space, subnet, lease.address);
    this.keeper.remove(key);
    this.records.delete(key);
    await this.store.delete(leaseKey(space, subnet, lease.address));
    const { sock } = await this.sockets.probeSocket(subnet.text);
    try {
      this.decline(sock, lease, subnet);
    } finally {
      sock.close();
    }
  }

  private decline(sock: FrameSocket, lease: DhcpLease, subnet: Subnet): void {
    try {
      decline(sock, lease);
    } catch (e) {
      this.log.warn('could not send DHCPDECLINE', { address: lease.address, subnet: subnet.text, error: e });
    }
  }

  /**
   * ReleaseAddress: the lease is parked for the next start (see the top of this file) until `keepMs` has
   * passed or the lease ends, whichever comes first; then, or at once with keepMs 0, DHCPRELEASE.
   */
  async release(space: string, subnet: Subnet, address: string): Promise<void> {
    const key = this.key(space, subnet, address);
    const r = this.records.get(key);
    this.forget(key);
    const until = r ? Math.min(Date.now() + (this.opts.keepMs ?? DHCP_KEEP_MS), times(r.lease).expiry) : 0;
    if (r && r.state === 'bound' && until > Date.now()) {
      const parked: Held = { ...r, state: 'parked', parkedUntil: until };
      this.records.set(key, parked);
      const { space: _s, subnet: _n, ...stored } = parked;
      await this.store.put(leaseKey(space, subnet, address), encodeRecord(stored));
      this.schedulePark(key);
      this.log.info('DHCP lease parked for the next start', {
        address,
        mac: r.lease.mac,
        until: new Date(until).toISOString(),
      });
      return;
    }
    await this.releaseNow(space, subnet, address, r);
  }

  /** DHCPRELEASE (from the probe link: the container is gone by now) and forget the lease. */
  private async releaseNow(space: string, subnet: Subnet, address: string, r: LeaseRecord | undefined): Promise<void> {
    await this.store.delete(leaseKey(space, subnet, address));
    if (!r || r.state === 'expired') return;
    try {
      const { sock } = await this.sockets.probeSocket(subnet.text);
      try {
        release(sock, r.lease);
      } finally {
        sock.close();
      }
      this.log.info('DHCP lease released', { address, mac: r.lease.mac, server: r.lease.serverId });
    } catch (e) {
      // The network may be gone already; the server's lease then runs out on its own.
      this.log.warn("could not send DHCPRELEASE; the server's lease runs out on its own", { address, error: e });
    }
  }

  /** The lease behind an allocated address (for the driver: MAC, router, inspect output). */
  leaseOf(subnet: string, address: string): LeaseRecord | undefined {
    for (const r of this.records.values()) {
      if (r.subnet.text === subnet && r.lease.address === address && r.state !== 'parked') return r;
    }
    return undefined;
  }

  /** Forgets every lease of a subnet whose last pool went (the addresses were released before). */
  async purge(space: string, subnet: Subnet): Promise<void> {
    // Parked leases are not released from here: the network, and with it the probe link, is gone by now; the
    // server's leases run out on their own.
    for (const [k, r] of this.records) if (r.space === space && r.subnet.text === subnet.text) this.forget(k);
    for (const e of await this.store.list(leasePrefix(space, subnet))) await this.store.delete(e.key);
  }

  /** Stops renewals and parking timers; the store keeps both for the next start. */
  stop(): void {
    this.keeper.stop();
    for (const t of this.parkTimers.values()) clearTimeout(t);
    this.parkTimers.clear();
  }
}
