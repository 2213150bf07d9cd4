// A link kind's strategy: everything that differs between macvlan and ipvlan networks, so that the rest of the
// driver asks the kind instead of testing its name. One file per kind (macvlan.ts, ipvlan.ts); index.ts lists them.
import type { CreateLinkSpec, IpvlanMode } from '../../kernel';
import type { DriverKind, KindModes, NetworkConfig, ParentSpec } from '../network-config';

/** A Join static route (Docker's remote API: RouteType 1 is a device route, without a next hop). */
export interface StaticRoute {
  Destination: string;
  RouteType: number;
  NextHop?: string;
}

/** An endpoint's addresses, as its record holds them (CIDR). */
export interface EndpointAddresses {
  readonly ipv4?: string;
  readonly ipv6?: string;
}

/**
 * Where a container's MAC comes from. 'own': its own (given, else random or stable); 'own-if-given': the
 * parent's unless the user gives one (passthru: setting one changes the parent's); 'parent': always the
 * parent's, a given one is ignored (ipvlan).
 */
export type MacSource = 'own' | 'own-if-given' | 'parent';

/**
 * Where LAN probes and DHCP go out from before a container has its link. 'probe-link': a macvlan child of the
 * parent that macnet keeps for it; 'parent': the parent itself (its MAC is every container's); 'none': no
 * link to probe from (the parent takes no second child).
 */
export type LanVantage = 'probe-link' | 'parent' | 'none';

/** The host-access record's kind-specific fields (state.ts HostAccessRecord). */
export interface HostLinkFields {
  readonly kind: DriverKind;
  readonly ipvlanMode?: IpvlanMode;
}

export interface LinkKind {
  readonly name: DriverKind;
  /** Its own -o keys with the values each takes (OPTION_UNKNOWN messages list them). */
  readonly options: Readonly<Record<string, string>>;
  /** Whether one of its own options given without -o kind chooses it (ipvlan_mode → ipvlan). */
  readonly impliedByOptions: boolean;
  /** The prefix of the parent macnet creates for a network without one (Docker's dm-/di- convention). */
  readonly implicitPrefix: string;
  /** The netlink kinds of the children macnet makes on a parent for it (endpoint and host-access links). */
  readonly childLinkKinds: readonly string[];

  /** Its modes from the -o options (the other kind's at their defaults); refuses the other kinds' options. */
  parseModes(opts: Readonly<Record<string, string>>): KindModes;
  /** Refuses a -o mac value the kind cannot honour (checked right after mac itself). */
  checkMac(mac: 'random' | 'stable'): void;
  /** Refuses modes the parent cannot carry (passthru needs a real parent). */
  checkParent(modes: KindModes, parent: ParentSpec): void;
  /** Why these modes cannot have host access (the OPTION_INVALID's "valid" text), or undefined when they can. */
  hostAccessRefusal(modes: KindModes): string | undefined;

  /** The network takes the whole parent (passthru): one container at a time, no probe or host-side link. */
  wholeParent(c: NetworkConfig): boolean;
  /** EndpointOperInfo's mode: 'bridge' (macvlan), 'l2/bridge' (ipvlan mode/flag). */
  operMode(c: NetworkConfig): string;
  macSource(c: NetworkConfig): MacSource;
  /** A DHCP lease's chaddr becomes the container's MAC (false: the container carries the parent's). */
  leaseMacIsContainers(c: NetworkConfig): boolean;
  lanVantage(c: NetworkConfig): LanVantage;

  /** An endpoint's link on the parent (before Docker moves it into the container). */
  childSpec(c: NetworkConfig, name: string, mac?: string): CreateLinkSpec;
  /** Try a throwaway child at CreateNetwork, so that a mode the kernel or parent refuses fails there. */
  readonly trialChildAtCreate: boolean;
  /**
   * Join's routes when the kind routes itself (ipvlan l3/l3s: device routes, no gateway); undefined: the
   * subnets' gateways (unless internal).
   */
  joinRoutes(c: NetworkConfig, ep: EndpointAddresses): { StaticRoutes?: StaticRoute[] } | undefined;

  /** The host-access record fields for a network of this kind (the first on its parent). */
  hostLinkFields(c: NetworkConfig): HostLinkFields;
  /** The host-side link of a parent's host access (a sibling the containers can reach). */
  hostLinkSpec(name: string, parent: string, fields: HostLinkFields, mac: string): CreateLinkSpec;

  /**
   * Sharing a parent with `held`, another network already on it, in three steps (index.ts checkSharing):
   * `refuseBeside` is asked of the held network's kind, `refuseOnto` and then, when both are of one kind,
   * `refuseSameKind` of the new network's. Each throws PARENT_IN_USE; `who` names the held network.
   */
  refuseBeside(held: NetworkConfig, c: NetworkConfig, who: string): void;
  refuseOnto(c: NetworkConfig, held: NetworkConfig, who: string): void;
  refuseSameKind(c: NetworkConfig, held: NetworkConfig, who: string): void;
}
