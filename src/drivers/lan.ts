// The LAN behind each parent, as IPAM and the driver need it: which addresses something already uses.
// One probe link per parent (a macvlan in bridge mode, so that it also hears sibling macvlan containers of
// other networks on this host), with AF_PACKET sockets for ARP and IPv6, created at the first probe and
// removed with the parent's last network.
import { createHash } from 'node:crypto';
import { MacnetError } from '../errors';
import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, type EventStream, type Kernel, type PacketSocket } from '../kernel';
import type { Logger } from '../log';
import { LinkProber, type ProbeResult, type SweepOptions } from '../probe/prober';
import type { NetworkConfig } from './config';
import type { DriverState } from './state';
import { PROBE_MAC_SIGNATURE, signedMac } from '../types/mac';

/** How long a just-allocated address is defended by the probe link (its container answers long before). */
const CLAIM_MS = 30_000;

export type Holder = { readonly mac: string; readonly reason: 'answered' | 'probing' };

/** 'mnp' + 10 hex digits of the parent's name: stable per parent, recognisable when reconciling. */
export const PROBE_LINK_PATTERN = /^mnp[0-9a-f]{10}$/;
export const probeLinkName = (parent: string): string =>
  `mnp${createHash('sha1').update(parent).digest('hex').slice(0, 10)}`;

/**
 * First octet of a probe link's MAC: locally administered unicast like containers' 0a (endpoint.ts), but its
 * own value, because a probe link answers other hosts' probes for addresses it defends; `macnet scan` on
 * another host then says "reserved by macnet" rather than "container".
 */
export { PROBE_MAC_SIGNATURE } from '../types/mac';

/** An address of this host, on any of its links (parent, host-access link, others). */
export interface HostAddress {
  readonly address: string;
  readonly link: string;
  readonly mac: string;
}

interface ProbeLink {
  readonly name: string;
  /** ifindex of the probe macvlan (undefined for ipvlan, which probes from the parent). */
  readonly index?: number;
  readonly prober: LinkProber;
  readonly sockets: PacketSocket[];
}

export interface LanGuardOptions {
  /** The bounded probe window of a cold check (default 300 ms). */
  windowMs?: number;
}

export class LanGuard {
  private readonly links = new Map<string, Promise<ProbeLink>>();
  /** Defended addresses: until when, and on which parent's probe link. */
  private readonly claims = new Map<string, { until: number; parent: string }>();
  /** Link events: a probe link deleted by someone else (an operator's `ip link del`) is re-created. */
  private events: EventStream | undefined;

  constructor(
    private readonly k: Kernel,
    private readonly state: DriverState,
    private readonly log: Logger,
    private readonly opts: LanGuardOptions = {},
  ) {}

  private async networkFor(subnet: string): Promise<NetworkConfig | undefined> {
    return (await this.state.networks()).find(
      (n) => n.state === 'ready' && n.config.subnets.some((s) => s.subnet === subnet),
    )?.config;
  }

  async conflictPolicy(subnet: string): Promise<'refuse' | 'warn'> {
    return (await this.networkFor(subnet))?.conflict ?? 'refuse';
  }

  /** Which candidates answer on the LAN of `subnet`; undefined when no network here uses the subnet yet. */
  async inUse(subnet: string, candidates: readonly string[]): Promise<Map<string, Holder> | undefined> {
    const c = await this.networkFor(subnet);
    if (!c) return undefined;
    return this.check(c, candidates);
  }

  /** `exclusive`: the caller takes a free address for the host, not for IPAM (ProbeOptions.exclusive). */
  async check(
    c: NetworkConfig,
    candidates: readonly string[],
    opts: { exclusive?: boolean } = {},
  ): Promise<Map<string, Holder>> {
    const out = new Map<string, Holder>();
    // The host's own addresses: macvlan isolates a parent from its children, so the host would not answer.
    for (const a of await this.hostAddresses())
      if (candidates.includes(a.address)) out.set(a.address, { mac: a.mac, reason: 'answered' });
    const rest = candidates.filter((a) => !out.has(a));
    if (rest.length && probeable(c)) {
      const found = await this.withLink(c, (link) =>
        link.prober.probe(rest, { windowMs: this.opts.windowMs ?? 300, ...(opts.exclusive && { exclusive: true }) }),
      );
      for (const [a, r] of found) if (!r.free) out.set(a, holder(r));
    }
    for (const [address, h] of out)
      this.log.warn('address in use on the LAN: skipped', {
        address,
        mac: h.mac,
        reason: h.reason,
        network: c.id,
        parent: c.parent.name,
      });
    return out;
  }

  /**
   * A socket for DHCP (IPv4 datagrams) on the probe link of the network that uses `subnet`: the DHCP client
   * sends there on behalf of a container that has no interface yet (docs/dhcp.md).
   */
  async dhcpSocket(subnet: string): Promise<{ sock: PacketSocket; where: string; sharedMac?: string }> {
    const c = await this.networkFor(subnet);
    if (!c) {
      throw new MacnetError(
        'NETWORK_NOT_FOUND',
        `DHCP: no macnet network on this host uses subnet ${subnet} (is the network being created or removed?)`,
        { subnet },
      );
    }
    if (c.kind === 'macvlan' && c.macvlanMode === 'passthru') {
      throw new MacnetError(
        'OPTION_INVALID',
        '--ipam-opt mode=dhcp needs a macvlan network in bridge, vepa or private mode, or an ipvlan network: ' +
          'a passthru network has no link to ask from before the container starts',
        { option: 'mode', kind: c.kind },
      );
    }
    if (c.kind === 'ipvlan') {
      // From the parent, as the probes (openOnParent): its MAC is every container's, so it is the chaddr, and the
      // server's broadcast OFFER and ACK (the client sets the broadcast flag) reach the parent as well as the
      // children. Renewals come from the container's own ipvlan child, which the server's unicast reaches by IP.
      const parent = await this.k.links.get(c.parent.name, `DHCP on parent ${JSON.stringify(c.parent.name)}`);
      const sock = await this.k.openPacketSocket(parent.index, { protocol: ETH_P_IP });
      return { sock, where: `parent ${c.parent.name} (ipvlan)`, sharedMac: parent.mac! };
    }
    const link = await this.link(c);
    const sock = await this.k.openPacketSocket(link.name, { protocol: ETH_P_IP });
    return { sock, where: `probe link ${link.name} on parent ${c.parent.name}` };
  }

  /** Every address of this host's links, from netlink (the probe link cannot hear its own parent). */
  async hostAddresses(): Promise<HostAddress[]> {
    const links = new Map((await this.k.links.list()).map((l) => [l.index, l]));
    return (await this.k.addresses.list()).map((a) => {
      const l = links.get(a.index);
      return { address: a.address, link: l?.name ?? `index ${a.index}`, mac: l?.mac ?? '00:00:00:00:00:00' };
    });
  }

  /**
   * `macnet scan`: who answers for each address on the network's LAN (LinkProber.sweep), from the probe link
   * (ipvlan: from the parent), and the MAC the requests went out with.
   */
  async sweep(
    c: NetworkConfig,
    addresses: readonly string[],
    opts: SweepOptions = {},
  ): Promise<{ replies: Map<string, string[]>; from: string }> {
    if (c.kind === 'macvlan' && c.macvlanMode === 'passthru') {
      throw new MacnetError(
        'INVALID_ARGUMENT',
        `scan: network ${c.id.slice(0, 12)} is macvlan passthru (the parent takes no second child for ` +
          'a probe link); scan works on macvlan bridge, vepa and private networks and on ipvlan networks',
        { network: c.id, kind: c.kind },
      );
    }
    return this.withLink(c, async ({ prober }) => ({ replies: await prober.sweep(addresses, opts), from: prober.mac }));
  }

  /**
   * Runs `fn` on the network's probe link; when it fails because the link is gone (deleted before its link
   * event arrived: sends fail with ENXIO), the link is re-created and `fn` runs once more.
   */
  private async withLink<T>(c: NetworkConfig, fn: (link: ProbeLink) => Promise<T>): Promise<T> {
    const p = this.link(c);
    const link = await p;
    try {
      return await fn(link);
    } catch (e) {
      if (link.index === undefined || (await this.k.links.find(link.name))?.index === link.index) throw e;
      this.log.warn('probe link gone: re-created', { parent: c.parent.name, link: link.name });
      this.forget(c.parent.name, p, link);
      return fn(await this.link(c));
    }
  }

  /** Drops a probe link that no longer exists (sockets closed); the next use, or `reopen`, makes it again. */
  private forget(parent: string, p: Promise<ProbeLink>, link: ProbeLink): void {
    if (this.links.get(parent) === p) this.links.delete(parent);
    link.prober.close();
    for (const s of link.sockets) s.close();
  }

  /** Link events: a deleted probe link of ours is re-created at once, with the addresses it defended. */
  private watch(): void {
    if (this.events) return;
    this.events = this.k.subscribe(['link']);
    this.events.on('error', (e: Error) => this.log.debug('probe links: event stream', { error: e }));
    this.events.on('event', (e) => {
      if (e.type !== 'link' || e.action !== 'del' || !PROBE_LINK_PATTERN.test(e.link.name)) return;
      for (const [parent, p] of this.links) {
        void p.then(
          (l) => {
            if (l.index !== e.link.index || l.name !== e.link.name || this.links.get(parent) !== p) return;
            this.log.warn('probe link deleted by someone else: re-created', { parent, link: l.name });
            this.forget(parent, p, l);
            this.reopen(parent);
          },
          () => undefined,
        );
      }
    });
  }

  private reopen(parent: string): void {
    if (this.links.has(parent)) return; // a probe re-created it already
    const p = this.open(parent);
    this.links.set(parent, p);
    p.catch((e: unknown) => {
      if (this.links.get(parent) === p) this.links.delete(parent);
      this.log.error('probe link could not be re-created (retried at the next probe)', { parent, error: e });
    });
  }

  private link(c: NetworkConfig): Promise<ProbeLink> {
    const parent = c.parent.name;
    let p = this.links.get(parent);
    if (!p) {
      p = c.kind === 'ipvlan' ? this.openOnParent(parent) : this.open(parent);
      this.links.set(parent, p);
      p.catch(() => this.links.delete(parent));
    }
    return p;
  }

  private async open(parent: string): Promise<ProbeLink> {
    const name = probeLinkName(parent);
    this.watch();
    await this.k.links.deleteIfExists(name); // a leftover of a killed daemon: its sockets are gone with it
    const link = await this.k.links.create({
      kind: 'macvlan',
      name,
      parent,
      mode: 'bridge',
      mac: signedMac(PROBE_MAC_SIGNATURE),
    });
    try {
      // Other hosts' DAD probes go to solicited-node groups this link has not joined. arp_ignore 1: a link in
      // the host namespace would otherwise answer ARP for the host's own addresses too, with its own MAC, and
      // the LAN would see the host's address at two MACs. No link-local address: the link only listens and
      // probes, it never speaks IPv6 for itself (no DAD, no router solicitations of its own).
      await this.k.links.set(name, { allmulti: true, arpIgnore: 1, ipv6LinkLocal: false });
      await this.k.links.setUp(name);
      const arp = await this.k.openPacketSocket(link.index, { protocol: ETH_P_ARP });
      const nd = await this.k.openPacketSocket(link.index, { protocol: ETH_P_IPV6 });
      for (const sock of [arp, nd])
        sock.on('error', (e: Error) => this.log.debug('probe socket', { parent, error: e }));
      this.log.info('probe link up', { parent, link: name });
      const prober = new LinkProber(link.mac!, arp, nd);
      // Re-created: what the lost link defended, this one does.
      for (const [ip, cl] of this.claims) if (cl.parent === parent) prober.defend(ip);
      return { name, index: link.index, prober, sockets: [arp, nd] };
    } catch (e) {
      await this.k.links.deleteIfExists(name);
      throw e;
    }
  }

  /**
   * ipvlan: no macvlan can sit beside ipvlan children, and every child carries the parent's MAC anyway, so the
   * probes go out from the parent itself (sockets bound to it, the parent's MAC as sender). Replies to a probe
   * come unicast to that MAC; ipvlan finds no child for them and passes them to the parent, where the socket
   * sees them. The parent is the user's link: nothing of it is changed (no allmulti, so another host's
   * concurrent IPv6 DAD probe to a solicited-node group may go unheard; answers to ours arrive).
   */
  private async openOnParent(parent: string): Promise<ProbeLink> {
    const link = await this.k.links.get(parent, `probe on parent ${JSON.stringify(parent)}`);
    const arp = await this.k.openPacketSocket(link.index, { protocol: ETH_P_ARP });
    const nd = await this.k.openPacketSocket(link.index, { protocol: ETH_P_IPV6 });
    for (const sock of [arp, nd]) sock.on('error', (e: Error) => this.log.debug('probe socket', { parent, error: e }));
    this.log.info('probing from the parent (ipvlan)', { parent });
    return { name: parent, prober: new LinkProber(link.mac!, arp, nd), sockets: [arp, nd] };
  }

  /**
   * Defends a just-allocated address for CLAIM_MS: the container's interface comes up half a second or so
   * later, and until it answers for itself another host probing the address must see it taken.
   */
  claimed(subnet: string, ip: string): void {
    void (async () => {
      const c = await this.networkFor(subnet);
      if (!c || !probeable(c)) return;
      const link = await this.link(c);
      link.prober.defend(ip);
      const fresh = !this.claims.has(ip);
      this.claims.set(ip, { until: Date.now() + CLAIM_MS, parent: c.parent.name });
      if (fresh) this.expire(ip);
    })().catch((e: unknown) => this.log.debug('could not defend a claimed address', { subnet, ip, error: e }));
  }

  /**
   * Addresses this host's IPAM handed out or keeps warm (claimed and defended now). The probe link does not
   * hear itself, so a probe from this host finds them free: the host-access address choice must skip them.
   */
  claimedAddresses(): string[] {
    const now = Date.now();
    return [...this.claims].filter(([, c]) => c.until > now).map(([ip]) => ip);
  }

  /** Stops defending `ip` once its claim has run out (claims are renewed by the warm set's refreshes). */
  private expire(ip: string): void {
    const claim = this.claims.get(ip);
    const left = (claim?.until ?? 0) - Date.now();
    if (claim && left > 0) {
      setTimeout(() => this.expire(ip), left).unref();
      return;
    }
    this.claims.delete(ip);
    // The parent's link of now: it may have been re-created since the claim.
    if (claim)
      void this.links.get(claim.parent)?.then(
        (l) => l.prober.release(ip),
        () => undefined,
      );
  }

  /** Removes the parent's probe link (its last network is gone). Idempotent. */
  async releaseParent(parent: string): Promise<void> {
    const p = this.links.get(parent);
    this.links.delete(parent);
    if (p) {
      const l = await p.catch(() => undefined);
      l?.prober.close();
      for (const s of l?.sockets ?? []) s.close();
    }
    await this.k.links.deleteIfExists(probeLinkName(parent));
  }

  async close(): Promise<void> {
    this.events?.close();
    this.events = undefined;
    for (const parent of [...this.links.keys()]) await this.releaseParent(parent);
  }
}

const holder = (r: ProbeResult): Holder =>
  r.free ? { mac: '', reason: 'answered' } : { mac: r.mac, reason: r.reason };

/**
 * Where probing makes sense: a LAN behind the parent (not the dummy or bridge macnet makes for a network
 * without one), and a link to probe from: a probe macvlan beside macvlan children, the parent itself for
 * ipvlan; a passthru parent takes no second child and its one container owns the parent's MAC.
 */
function probeable(c: NetworkConfig): boolean {
  return !c.parent.implicit && (c.kind === 'ipvlan' || c.macvlanMode !== 'passthru');
}
