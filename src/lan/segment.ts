// What the LAN layer knows of a network, and what it answers. The driver attaches a Segment for each of its
// networks (at create and at start) and detaches it at delete: the LAN layer never reads the driver's state, and
// the IPAM asks the LAN by subnet without knowing parents.

/**
 * Where probes and DHCP go out from, as the network's link kind decides (src/drivers/kinds): a probe macvlan
 * beside macvlan children; the parent itself for ipvlan (no macvlan can sit beside ipvlan children, and every
 * child carries the parent's MAC anyway); nowhere for passthru (the parent takes no second child and its one
 * container owns the parent's MAC).
 */
export type ProbeFrom = 'probe-link' | 'parent' | 'none';

export interface Segment {
  /** The network's id (logs, details). */
  readonly network: string;
  /** The link kind, for messages only: the behaviour comes from `probeFrom`. */
  readonly kind: string;
  readonly parent: string;
  /** False for the dummy or bridge macnet makes as the parent of an internal network: no LAN to ask. */
  readonly lanBehind: boolean;
  readonly probeFrom: ProbeFrom;
  /** Canonical subnet texts ("198.18.15.0/24"). */
  readonly subnets: readonly string[];
  /** What a static address that answers on the LAN gets (-o conflict). */
  readonly conflict: 'refuse' | 'warn';
}

/** Who answered for an address: its MAC, and whether it answered a probe or is probing for it itself. */
export interface Holder {
  readonly mac: string;
  readonly reason: 'answered' | 'probing';
}

/**
 * What the driver and `macnet scan` may ask of the IPAM that allocated a network's addresses, wired once in the
 * daemon: the IPAM implements it; the driver never reads the IPAM's records.
 */
export interface AddressBook {
  /** Whether macnet's IPAM allocated `ip` of `subnet` (and so probed it when it handed it out). */
  allocatedHere(subnet: string, ip: string): Promise<boolean>;
  /** The container name the engine sent with the request for `ip`, if it sent one (-o mac=stable). */
  requestedName(subnet: string, ip: string): Promise<string | undefined>;
  /** Stopped containers' last addresses on `subnet`, by the name the engine sent (scan names them). */
  lastAddresses(subnet: string): Promise<{ name: string; address: string }[]>;
}

/** Whether probing `s` makes sense: a LAN behind the parent and a link to probe from. */
export const probeable = (s: Segment): boolean => s.lanBehind && s.probeFrom !== 'none';
