// RequestAddress on a DHCP pool (--ipam-opt mode=dhcp): the address comes from the LAN's DHCP server
// (src/lan/leases.ts) and is then reserved in the subnet's index like any other allocation.
import { fail, MacnetError } from '../errors';
import type { DhcpLeases } from '../lan';
import type { Store } from '../store/types';
import type { KeyedMutex } from '../types/mutex';
import { formatAddress, parseAddress } from '../types/address';
import type { SubnetIndex } from './allocator';
import { addressKey } from './keys';
import { indexKey, type Pool, type PoolTable } from './pool-table';
import { allocations } from './queries';

export interface LeaseDeps {
  readonly table: PoolTable;
  readonly store: Store;
  readonly leases: DhcpLeases | undefined;
  /** The IPAM's per-subnet locks (ipam.ts): the reservation runs under the subnet's. */
  readonly locks: KeyedMutex;
}

/**
 * A DHCP pool's endpoint address: leased outside the subnet lock (a server may take seconds to offer, e.g.
 * dnsmasq pings the address first), then reserved in the subnet's index like any other allocation.
 */
export async function requestLease(
  d: LeaseDeps,
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
  if (!d.leases) {
    throw new MacnetError(
      'IPAM_POOL_INVALID',
      'RequestAddress: --ipam-opt mode=dhcp is not available: this ' +
        'daemon runs without its LAN link (started with --no-probe?)',
      { pool: p.poolId },
    );
  }
  const lease = await d.leases.acquire(p.poolId, p.space, p.subnet, name);
  const v = parseAddress(lease.address).value;
  const ok = await d.locks.run(indexKey(p.space, p.subnet), async () => {
    const index = d.table.indexOf(p);
    if (!index) return false;
    if (d.table.host !== undefined && index.taken.has(v)) await forgetIfReleased(d.store, index, v, lease.address);
    return await index.claim(v, name ?? 'dhcp', p.poolId);
  });
  if (!ok) {
    const holder =
      (await allocations(d.table, d.store, p.poolId)).find((a) => a.address === lease.address)?.owner ??
      'another allocation';
    await d.leases.giveBack(p.space, p.subnet, lease);
    throw fail('ADDRESS_CONFLICT', { address: lease.address, server: lease.serverId, holder });
  }
  await d.store.sync();
  return { address: `${lease.address}/${p.subnet.prefix}`, data: {} };
}

/**
 * On a store shared by hosts, this host's index keeps another host's address as taken after that host released it
 * (no watch: docs/cluster.md). An address the DHCP server offers is free by the server's word; if the store holds
 * no record of it either, the index's entry is stale and goes. A record in the store (another host's container, or
 * this host's release still waiting for the store) is a conflict, as before. The caller holds the subnet's lock.
 */
async function forgetIfReleased(store: Store, index: SubnetIndex, v: bigint, address: string): Promise<void> {
  if (await store.get(addressKey(index.space, index.subnet, address))) return;
  index.taken.delete(v);
  index.inherited.delete(v);
}
