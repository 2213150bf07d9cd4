// DHCP leases as the store keeps them, and the pure rules around them: which MAC and client-id an endpoint's
// lease is asked with, its hostname option, and the keys lease records live under (owned by src/lan/leases.ts).
import type { DhcpLease } from '../dhcp';
import type { FrameSocket } from '../types/socket';
import { MAC_SIGNATURE, macToBytes, signedMac } from '../types/mac';
import { parseAddress, type Subnet } from '../types/address';

/** Lease records (until schema version 2 the IPAM's, under ipam/leases/: src/store/schema.ts moves them). */
export const LEASES = 'lan/leases/';
const seg = (subnet: string): string => subnet.replace('/', '_');
export const leasePrefix = (space: string, subnet: Subnet): string => `${LEASES}${space}/${seg(subnet.text)}/`;
export const leaseKey = (space: string, subnet: Subnet, address: string): string =>
  `${leasePrefix(space, subnet)}${address}`;

/** Where DHCP frames go out: sockets on the right links (src/lan/lan.ts knows them; tests give fakes). */
export interface DhcpSockets {
  /**
   * A socket (SOCK_DGRAM, IPv4) on the probe link of the parent of the network that uses `subnet` (ipvlan: on
   * the parent), how to name it in messages, and for ipvlan the MAC every container of the network carries (the
   * parent's); throws a clear error when DHCP cannot run there (no network, passthru).
   */
  probeSocket(subnet: string): Promise<{ sock: FrameSocket; where: string; sharedMac?: string }>;
  /** A socket on the container's own interface in its namespace, once the endpoint with `ip` has joined. */
  containerSocket(subnet: string, ip: string): Promise<FrameSocket | undefined>;
}

/** 'parked': its container stopped (or was removed); the next start takes it (see above). */
export type LeaseState = 'bound' | 'expired' | 'changed' | 'parked';

/** A lease as stored: the client's lease plus what happened to it since. */
export interface LeaseRecord {
  readonly lease: DhcpLease;
  readonly state: LeaseState;
  /** 'changed': the address the server moved the lease to (the container keeps the old one until re-created). */
  readonly changedTo?: string;
  readonly poolId: string;
  /** 'parked': when it is released to the server unless a container takes it again (ms epoch). */
  readonly parkedUntil?: number;
}

export interface DhcpOptions {
  /** Bound of acquiring a lease (DHCP_NO_ANSWER after it), default 5000 ms. */
  timeoutMs?: number;
  /** How long a released lease stays parked for the next start (default DHCP_KEEP_MS; 0: released at once). */
  keepMs?: number;
}

/** Long enough for a restart, a dockerd restart or a host's reboot; short enough not to drain a server's range. */
export const DHCP_KEEP_MS = 10 * 60_000;

export type Held = LeaseRecord & { space: string; subnet: Subnet };

/**
 * The MAC a DHCP endpoint gets: derived from the subnet and the container's name when the engine sends the
 * name (so the server, which keys leases on client-id and MAC, gives a re-created container its address
 * back), otherwise random; first octet 0x0a like every MAC macnet makes (locally administered, unicast).
 */
export const dhcpMac = (subnet: string, name?: string): string =>
  signedMac(MAC_SIGNATURE, name === undefined ? undefined : `macnet-dhcp|${subnet}|${name}`);

/**
 * Option 61 (RFC 2132 9.14). macvlan: hardware type 1 + the container's MAC, which servers show and match as the
 * MAC everyone knows. ipvlan: every container carries the parent's MAC (the chaddr), so the client-id alone tells
 * their leases apart: type 0 (not a hardware address) + the 6 bytes macvlan would have used as the MAC.
 */
export const clientIdOf = (own: string, sharedMac: string | undefined): Buffer =>
  Buffer.from([sharedMac ? 0 : 1, ...macToBytes(own)]);

export function inSubnet(ip: string, subnet: Subnet): boolean {
  try {
    const a = parseAddress(ip);
    return a.family === subnet.family && a.value >= subnet.base && a.value <= subnet.last;
  } catch {
    return false;
  }
}

/** Option 12 must be a hostname: Docker's names may hold '_' and '.', which servers reject or mangle. */
export const hostnameOf = (name: string): string =>
  name
    .replace(/^\//, '')
    .replace(/[^A-Za-z0-9-]/g, '-')
    .slice(0, 63);
