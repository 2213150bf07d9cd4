// One probe link per parent: a macvlan in bridge mode (so that it also hears sibling macvlan containers of other
// networks on this host) with AF_PACKET sockets for ARP and IPv6, made at the first probe and removed with the
// parent's last network; for ipvlan, sockets on the parent itself. A probe link deleted by someone else is made
// again at once, defending what the lost one defended.
import { createHash } from 'node:crypto';
import { ETH_P_ARP, ETH_P_IPV6, type EventStream, type Kernel, type PacketSocket } from '../kernel';
import type { Logger } from '../log';
import { LinkProber } from '../probe/prober';
import { PROBE_MAC_SIGNATURE, signedMac } from '../types/mac';
import type { Segment } from './segment';

/** 'mnp' + 10 hex digits of the parent's name: stable per parent, recognisable when reconciling. */
export const PROBE_LINK_PATTERN = /^mnp[0-9a-f]{10}$/;
export const probeLinkName = (parent: string): string =>
  `mnp${createHash('sha1').update(parent).digest('hex').slice(0, 10)}`;

/** A link of this host is a probe link (of this daemon or a killed one): its name and its kind, a macvlan. */
export const isProbeLink = (l: { name: string; kind?: string }): boolean =>
  PROBE_LINK_PATTERN.test(l.name) && l.kind === PROBE_LINK_KIND;
const PROBE_LINK_KIND = 'macvlan';

export interface ProbeLink {
  readonly name: string;
  /** ifindex of the probe macvlan (undefined when probing from the parent). */
  readonly index?: number;
  readonly prober: LinkProber;
  readonly sockets: PacketSocket[];
}

export class ProbeLinks {
  private readonly links = new Map<string, Promise<ProbeLink>>();
  /** Link events: a probe link deleted by someone else (an operator's `ip link del`) is re-created. */
  private events: EventStream | undefined;
  private closed = false;

  constructor(
    private readonly k: Kernel,
    private readonly log: Logger,
    /** The addresses this host defends on `parent` now: a re-made probe link defends them again. */
    private readonly defended: (parent: string) => readonly string[],
  ) {}

  /** The segment's probe link (made on first use). */
  get(s: Segment): Promise<ProbeLink> {
    // A probe still running when the daemon stops (a warm-set refill) must not make a link, or subscribe to link
    // events, after close(): the link would outlive the daemon, and the subscription keep its process alive.
    if (this.closed) return Promise.reject(new Error('probe links are closed (the daemon is stopping)'));
    let p = this.links.get(s.parent);
    if (!p) {
      p = s.probeFrom === 'parent' ? this.openOnParent(s.parent) : this.open(s.parent);
      this.links.set(s.parent, p);
      p.catch(() => this.links.delete(s.parent));
    }
    return p;
  }

  /** The parent's probe link if one is made or being made; never makes one. */
  existing(parent: string): Promise<ProbeLink> | undefined {
    return this.links.get(parent);
  }

  /**
   * Runs `fn` on the segment's probe link; when it fails because the link is gone (deleted before its link
   * event arrived: sends fail with ENXIO), the link is re-created and `fn` runs once more.
   */
  async use<T>(s: Segment, fn: (link: ProbeLink) => Promise<T>): Promise<T> {
    const p = this.get(s);
    const link = await p;
    try {
      return await fn(link);
    } catch (e) {
      if (link.index === undefined || (await this.k.links.find(link.name))?.index === link.index) throw e;
      this.log.warn('probe link gone: re-created', { parent: s.parent, link: link.name });
      this.forget(s.parent, p, link);
      return fn(await this.get(s));
    }
  }

  /** Removes the parent's probe link (its last network is gone). Idempotent. */
  async release(parent: string): Promise<void> {
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
    this.closed = true;
    this.events?.close();
    this.events = undefined;
    for (const parent of [...this.links.keys()]) await this.release(parent);
  }

  /** Drops a probe link that no longer exists (sockets closed); the next use, or `reopen`, makes it again. */
  private forget(parent: string, p: Promise<ProbeLink>, link: ProbeLink): void {
    if (this.links.get(parent) === p) this.links.delete(parent);
    link.prober.close();
    for (const s of link.sockets) s.close();
  }

  /** Link events: a deleted probe link of ours is re-created at once, with the addresses it defended. */
  private watch(): void {
    if (this.events || this.closed) return;
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
    if (this.links.has(parent) || this.closed) return; // a probe re-created it already
    const p = this.open(parent);
    this.links.set(parent, p);
    p.catch((e: unknown) => {
      if (this.links.get(parent) === p) this.links.delete(parent);
      this.log.error('probe link could not be re-created (retried at the next probe)', { parent, error: e });
    });
  }

  private async open(parent: string): Promise<ProbeLink> {
    const name = probeLinkName(parent);
    this.watch();
    await this.k.links.deleteIfExists(name); // a leftover of a killed daemon: its sockets are gone with it
    const link = await this.k.links.create({
      kind: PROBE_LINK_KIND,
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
      for (const ip of this.defended(parent)) prober.defend(ip);
      return { name, index: link.index, prober, sockets: [arp, nd] };
    } catch (e) {
      await this.k.links.deleteIfExists(name);
      throw e;
    }
  }

  /**
   * ipvlan: the probes go out from the parent itself (sockets bound to it, the parent's MAC as sender). Replies to
   * a probe come unicast to that MAC; ipvlan finds no child for them and passes them to the parent, where the
   * socket sees them. The parent is the user's link: nothing of it is changed (no allmulti, so another host's
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
}
