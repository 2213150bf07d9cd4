// The kernel layer: every netlink and packet-socket access of macnet goes through here. Product code never
// spawns `ip`. A Kernel is bound to one network namespace for its whole life.
import { Addresses } from './addresses';
import { type EventGroup, EventStream } from './events';
import { Links, type LinkRef } from './links';
import { Neighbours } from './neighbours';
import { netnsPath, type NetnsRef } from './netns';
import { NetlinkSocket } from './nl/socket';
import { PacketSocket, type PacketSocketOptions } from './packet';
import { Routes } from './routes';
import { setLinkSysctl, type SysctlFamily } from './sysctl';

export class Kernel {
  readonly links: Links;
  readonly addresses: Addresses;
  readonly routes: Routes;
  readonly neighbours: Neighbours;
  private readonly nsPath: string | null;

  private constructor(private readonly sock: NetlinkSocket) {
    this.nsPath = sock.netns;
    this.links = new Links(sock);
    this.addresses = new Addresses(sock, this.links);
    this.routes = new Routes(sock, this.links);
    this.neighbours = new Neighbours(sock, this.links);
  }

  /** A handle on the namespace `netns` (a path such as /run/netns/x or a Docker SandboxKey, or {pid}); none: ours. */
  static open(netns?: NetnsRef): Kernel {
    return new Kernel(NetlinkSocket.open(netns === undefined ? null : netnsPath(netns)));
  }

  /** Runs fn with a handle on `netns` and closes it afterwards, also when fn throws. */
  static async with<T>(netns: NetnsRef | undefined, fn: (k: Kernel) => Promise<T>): Promise<T> {
    const k = Kernel.open(netns);
    try {
      return await fn(k);
    } finally {
      await k.close();
    }
  }

  /**
   * Another handle on the same namespace with its own netlink socket: requests on one socket are answered in
   * order, so a slow one (deleting a macvlan waits for an RCU grace period, 10 to 30 ms) does not hold up
   * requests sent on the other.
   */
  sibling(): Kernel {
    return new Kernel(NetlinkSocket.open(this.nsPath));
  }

  subscribe(groups?: readonly EventGroup[]): EventStream {
    return new EventStream(this.nsPath, groups);
  }

  async openPacketSocket(link: LinkRef, opts: Omit<PacketSocketOptions, 'ifindex'>): Promise<PacketSocket> {
    const ifindex =
      typeof link === 'number'
        ? link
        : (await this.links.get(link, `open packet socket on link ${JSON.stringify(link)}`)).index;
    return new PacketSocket(this.nsPath, { ...opts, ifindex });
  }

  /** Sets the per-interface sysctl net.<family>.conf.<ifname>.<name> in this namespace. */
  setLinkSysctl(family: SysctlFamily, ifname: string, name: string, value: number): Promise<void> {
    return setLinkSysctl(this.nsPath, family, ifname, name, value);
  }

  close(): Promise<void> {
    return this.sock.close();
  }
}

export type { Address } from './nl/addr-codec';
export type { Link, KindData, MacvlanMode, IpvlanMode, IpvlanFlag, Operstate } from './nl/link-codec';
export type { Neighbour, NeighState } from './nl/neigh-codec';
export type { Route } from './nl/route-codec';
export type { CreateLinkSpec, LinkChangeSpec, LinkRef } from './links';
export type { NetnsRef } from './netns';
export { checkNetnsFile } from './netns';
export type { KernelEvent, EventGroup, EventStream } from './events';
export { PacketSocket, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_P_ALL, type Packet } from './packet';
export { KernelError } from './errors';
export { useProcSysNet } from './sysctl';
export { ScratchNetns } from './scratch-netns';
