// The IPAM's store schema (docs/ipam.md describes it for operators). Everything lives under "ipam/":
//
//   ipam/pools/<space>/<subnet>[/<range>]        PoolRecord (JSON): one per PoolID, with its reference count
//   ipam/cursors/<space>/<subnet>[/<range>]      no longer written (next-fit's cursor); deleted with the pool
//   ipam/addresses/<space>/<subnet>/<address>    AddressRecord (JSON): one per allocated address
//
// CIDRs are written with '_' for '/' ("198.18.0.0_16") so that a key's '/'s separate exactly its fields.
// Addresses are keyed per address space + subnet, not per pool: pools on the same subnet with different
// ip-ranges share one set of addresses, and creating the address key is the atomic reservation.
import type { Subnet } from '../types/address';
import { decodeRecord } from '../store/records';

export const POOLS = 'ipam/pools/';
export const CURSORS = 'ipam/cursors/';
export const ADDRESSES = 'ipam/addresses/';
/** The last address each container name had on a subnet: a re-created container gets it back when free. */
export const STICKY = 'ipam/sticky/';

export interface PoolRecord {
  /** The PoolID as given to Docker. */
  id: string;
  space: string;
  subnet: string;
  /** The --ip-range (SubPool), or null for the whole subnet. */
  range: string | null;
  refs: number;
  /**
   * On a store shared by hosts: `refs` per host id, changed in the same compare-and-set. Absent in records of
   * earlier versions (or moved by `macnet store migrate`): then unknown, and no host reclaims crash residue on the
   * subnet (src/docker/reclaim.ts) until the record is made again.
   */
  refsByHost?: Record<string, number>;
  /** --ipam-opt mode=dhcp: addresses are leased from the LAN's DHCP server (absent: macnet's own pool). */
  mode?: 'dhcp';
  /** Per host id: its last release made during an outage and applied since (pool-release.ts), so it is applied once. */
  settled?: Record<string, string>;
}

/** Whether a pool record's per-host counts are there and add up to its total (else: unknown, never trusted). */
export const countsAddUp = (rec: PoolRecord): boolean =>
  !!rec.refsByHost && Object.values(rec.refsByHost).reduce((a, b) => a + b, 0) === rec.refs;

/**
 * `rec` with `delta` more networks of `host` (fewer when negative): the total and this host's count move together;
 * counts that did not add up before, or would go below 0, are dropped for good (unknown).
 */
export function countHost(rec: PoolRecord, host: string, delta: number): PoolRecord {
  const refs = rec.refs + delta;
  if (!countsAddUp(rec)) {
    const { refsByHost: _, ...rest } = rec;
    return { ...rest, refs };
  }
  const n = (rec.refsByHost![host] ?? 0) + delta;
  if (n < 0) {
    const { refsByHost: _, ...rest } = rec;
    return { ...rest, refs };
  }
  const byHost = { ...rec.refsByHost };
  if (n > 0) byHost[host] = n;
  else delete byHost[host];
  return { ...rec, refs, refsByHost: byHost };
}

export interface AddressRecord {
  /** The endpoint (container) name, 'gateway', 'static' or 'dynamic'. */
  owner: string;
  /** The PoolID it was requested through. */
  pool: string;
  /** Gateways only: how many networks on this subnet name it (the LAN's router serves them all). */
  refs?: number;
  /**
   * The LAN check found the address free when it was handed out: released, it is warm at once (no probe for
   * the next start). Absent for the gateway, addresses taken despite a conflict, and without probing.
   */
  verified?: true;
  /** On a store shared by several hosts (docs/cluster.md): the host id of the daemon that wrote it. */
  host?: string;
  /** Gateways only, as PoolRecord.settled: each host's last outage release applied to `refs` (outbox.ts). */
  settled?: Record<string, string>;
}

const seg = (cidr: string): string => cidr.replace('/', '_');

/** A DHCP pool has no ip-range (the server decides); its path ends in /dhcp so that it differs from the plain pool. */
function poolPath(space: string, subnet: Subnet, range?: Subnet, dhcp = false): string {
  return `${space}/${seg(subnet.text)}${range ? `/${seg(range.text)}` : ''}${dhcp ? '/dhcp' : ''}`;
}

export const poolKey = (space: string, subnet: Subnet, range?: Subnet, dhcp = false): string =>
  POOLS + poolPath(space, subnet, range, dhcp);
/** Next-fit's cursor of earlier versions: ignored, and deleted with its pool so that old stores get clean. */
export const cursorKey = (space: string, subnet: Subnet, range?: Subnet, dhcp = false): string =>
  CURSORS + poolPath(space, subnet, range, dhcp);
// DHCP lease records (ipam/leases/...) are src/lan/lease-records.ts's.

/** Prefix of every address key of one subnet of one address space. */
export const subnetAddressPrefix = (space: string, subnet: Subnet): string =>
  `${ADDRESSES}${space}/${seg(subnet.text)}/`;

export const stickyPrefix = (space: string, subnet: Subnet): string => `${STICKY}${space}/${seg(subnet.text)}/`;
export const stickyKey = (space: string, subnet: Subnet, name: string): string =>
  stickyPrefix(space, subnet) + encodeURIComponent(name);
export const addressKey = (space: string, subnet: Subnet, address: string): string =>
  subnetAddressPrefix(space, subnet) + address;

/** Splits an address key into the prefix of its subnet and the address; undefined if it is not one. */
export function splitAddressKey(key: string): { prefix: string; address: string } | undefined {
  const cut = key.lastIndexOf('/');
  if (!key.startsWith(ADDRESSES) || cut < ADDRESSES.length) return undefined;
  return { prefix: key.slice(0, cut + 1), address: key.slice(cut + 1) };
}

/** Docker's own form of a PoolID ("LocalDefault/198.18.0.0/16/198.18.1.0/24"), which users recognise in logs. */
export const poolIdOf = (space: string, subnet: Subnet, range?: Subnet, dhcp = false): string =>
  `${space}/${subnet.text}${range ? `/${range.text}` : ''}${dhcp ? '/dhcp' : ''}`;

/** An address record as stored; one macnet cannot read still says the address is taken (never STORE_ERROR). */
export function readAddressRecord(value: string): AddressRecord {
  try {
    return decodeRecord<AddressRecord>('', value, 'allocator');
  } catch {
    return { owner: 'unknown', pool: 'unknown' };
  }
}
