// The shape of a network's configuration, apart from its parsing (config.ts), so that the link kinds
// (kinds/) can work on it while config.ts asks them to parse their part.
import type { IpvlanFlag, IpvlanMode, MacvlanMode } from '../kernel';
import type { Family } from '../types/address';

export type DriverKind = 'macvlan' | 'ipvlan';

export interface SubnetConfig {
  readonly family: Family;
  /** Network address and prefix, canonical: "198.18.15.0/24". */
  readonly subnet: string;
  /** Plain IP, when Docker's IP data has one. */
  readonly gateway?: string;
  readonly auxAddresses: Readonly<Record<string, string>>;
}

export interface ParentSpec {
  /** The interface the children hang off; for "eth0.50" the vlan link itself. */
  readonly name: string;
  /** Set when the parent is an 802.1q sub-interface written as base.vid (created if missing). */
  readonly vlan?: { readonly base: string; readonly id: number };
  /** No parent given: macnet creates one for this network alone (an internal network). */
  readonly implicit: boolean;
}

/**
 * Every kind's modes are in every record (the other kind's at their defaults): records written before the
 * kinds had their own files keep their shape.
 */
export interface KindModes {
  readonly macvlanMode: MacvlanMode;
  readonly ipvlanMode: IpvlanMode;
  readonly ipvlanFlag: IpvlanFlag;
}

export interface NetworkConfig extends KindModes {
  readonly id: string;
  readonly kind: DriverKind;
  readonly parent: ParentSpec;
  readonly mtu?: number;
  readonly internal: boolean;
  readonly ipv6: boolean;
  /** What a static address that answers on the LAN gets: refused (default) or a warning in the log. */
  readonly conflict?: 'refuse' | 'warn';
  /** Container MACs: random (default) or derived from the network and the container (-o mac=stable). */
  readonly mac?: 'random' | 'stable';
  readonly subnets: readonly SubnetConfig[];
  /** -o host_access=true: the host and its own containers reach each other (docs/driver.md, "Host access"). */
  readonly hostAccess?: boolean;
  /** -o host_access_address: the host's address on this network, at most one per family; absent: chosen. */
  readonly hostAccessAddresses?: readonly string[];
}
