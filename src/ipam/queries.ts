// What others ask of the IPAM without changing it: the driver (through AddressBook, src/lan/segment.ts), the
// start-up reclaim (src/docker/reclaim.ts), and tests and tools that show a pool's allocations.
import type { Store } from '../store/types';
import { formatAddress, parseAddress } from '../types/address';
import { addressKey, splitAddressKey, subnetAddressPrefix, type AddressRecord } from './keys';
import type { PoolTable } from './pool-table';
import { decodeRecord } from '../store/records';

/** Owners that are no container name (keys.ts, AddressRecord.owner). */
const NO_NAME = ['dynamic', 'static', 'gateway'];

/** Whether `ip` of `subnet` is allocated here (then it was probed when handed out); a LAN answer is no allocation. */
export function allocatedHere(t: PoolTable, subnet: string, ip: string): boolean {
  for (const s of t.indexesOf(subnet)) {
    const a = parseAddress(ip);
    if (a.family === s.subnet.family && s.taken.has(a.value) && !s.answered.has(a.value)) return true;
  }
  return false;
}

/** The container name an allocated address was requested for, if the engine sent one. */
export async function requestedName(
  t: PoolTable,
  store: Store,
  subnet: string,
  ip: string,
): Promise<string | undefined> {
  for (const s of t.indexesOf(subnet)) {
    const a = parseAddress(ip);
    if (a.family !== s.subnet.family || !s.taken.has(a.value)) continue;
    const e = await store.get(addressKey(s.space, s.subnet, ip));
    const owner = e && decodeRecord<AddressRecord>(e.key, e.value, 'IPAM name').owner;
    if (owner && !NO_NAME.includes(owner)) return owner;
  }
  return undefined;
}

export interface InheritedAllocations {
  readonly space: string;
  readonly subnet: string;
  /** How many networks use the subnet: its pools' reference counts (on a shared store, this host's part only). */
  readonly refs: number;
  readonly addresses: string[];
}

/**
 * Per subnet, the addresses allocated before this daemon started that still are (on a shared store: its own
 * records, on subnets whose pool records count references per host): what reclaim checks.
 */
export function inheritedAllocations(t: PoolTable): InheritedAllocations[] {
  const out: InheritedAllocations[] = [];
  for (const s of t.indexes.values()) {
    if (s.inherited.size === 0) continue;
    // On a shared store, this host's references: another host's networks are not in this host's driver.
    const pools = t.poolsOf(s);
    if (t.host !== undefined && pools.some((p) => p.hostRefs === undefined)) continue; // unknown: not looked at
    out.push({
      space: s.space,
      subnet: s.subnet.text,
      refs: pools.reduce((n, p) => n + (t.host === undefined ? p.refs : p.hostRefs!), 0),
      addresses: [...s.inherited].map((v) => formatAddress(v, s.subnet.family)),
    });
  }
  return out;
}

export interface Answered {
  readonly address: string;
  readonly mac: string;
  readonly reason: string;
  readonly seen: string;
  readonly until: string;
}

/** Addresses of the pool's subnet that answered on the LAN and are skipped for now, with who answered. */
export function answered(t: PoolTable, poolId: string): Answered[] {
  const p = t.pool(poolId, 'answered');
  return [...(t.indexOf(p)?.answered ?? new Map())]
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
export async function allocations(
  t: PoolTable,
  store: Store,
  poolId: string,
): Promise<{ address: string; owner: string }[]> {
  const p = t.pool(poolId, 'allocations');
  const rows = (await store.list(subnetAddressPrefix(p.space, p.subnet))).map((e) => {
    const address = splitAddressKey(e.key)!.address;
    return {
      v: parseAddress(address).value,
      address,
      owner: decodeRecord<AddressRecord>(e.key, e.value, 'IPAM allocations').owner,
    };
  });
  rows.sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0));
  return rows.map(({ address, owner }) => ({ address, owner }));
}
