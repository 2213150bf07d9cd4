// Host access (-o host_access=true): the kernel isolates a macvlan/ipvlan parent from its children, so the
// host cannot reach its own containers nor they the host. The host reaches them through a sibling of theirs:
// one host-side link per parent ("mnh" + 10 hex of the parent's name; of the network's kind: LinkKind
// hostLinkSpec), with the host's address on each network as /32 and /128 — no prefix route, so the LAN's
// subnet stays routed through the parent and the host's own LAN traffic does not change — and one /32 or /128
// route per joined container through it. Made with the first network that asks, removed with the last.
//
// State: driver/hostaccess/<parent> (state.ts). The kernel is made to match the records by `converge`, which
// reconcile (daemon start, after a reboot), link/address events (an operator deleted the link or an address)
// and a periodic check (routes deleted by hand, which raise no event we subscribe to) all call.
import { createHash } from 'node:crypto';
import type { EventStream, Kernel, Link } from '../kernel';
import type { Logger } from '../log';
import { parseCidr } from '../types/address';
import { HOST_LINK_MAC_SIGNATURE, signedMac } from '../types/mac';
import type { NetworkConfig } from './network-config';
import { kindNamed, kindOf } from './kinds';
import { hostAddresses, type AddressDeps } from './host-address';
import { type DriverState, type EndpointRecord, type HostAccessRecord, hostAccessKey, putJson } from './state';

export const HOST_LINK_PATTERN = /^mnh[0-9a-f]{10}$/;
export const hostLinkName = (parent: string): string =>
  `mnh${createHash('sha1').update(parent).digest('hex').slice(0, 10)}`;

/** How often routes and addresses are checked against the records while host access is in use. */
export const CHECK_INTERVAL_MS = 30_000;

const hostCidr = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`;
const famOf = (ip: string) => (ip.includes(':') ? 6 : 4);

export class HostAccess {
  private events: EventStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  /** Parents with a host-side link: a link event naming one of them (it came back) triggers a repair. */
  private parents = new Set<string>();

  /** `serialize` runs background repairs under the driver's lock. */
  constructor(
    private readonly d: AddressDeps,
    private readonly log: Logger,
    private readonly serialize: (fn: () => Promise<void>) => Promise<void>,
  ) {}

  private get k(): Kernel {
    return this.d.k;
  }
  private get state(): DriverState {
    return this.d.state;
  }

  /** CreateNetwork, after the network's own setup: the host's addresses chosen and recorded, the link made. */
  async attach(c: NetworkConfig): Promise<void> {
    if (!c.hostAccess) return;
    const old = await this.state.hostAccess(c.parent.name);
    const shared = [
      ...new Set(
        Object.entries(old?.networks ?? {})
          .filter(([n]) => n !== c.id)
          .flatMap(([, a]) => a),
      ),
    ];
    const addresses = await hostAddresses(this.d, c, shared);
    const rec: HostAccessRecord = old
      ? { ...old, networks: { ...old.networks, [c.id]: addresses } }
      : {
          parent: c.parent.name,
          link: hostLinkName(c.parent.name),
          ...kindOf(c).hostLinkFields(c),
          networks: { [c.id]: addresses },
        };
    // Recorded before the kernel work: a crash in between leaves a record that reconcile completes.
    await this.state.commit('host access', [putJson(hostAccessKey(rec.parent), rec)]);
    this.parents.add(rec.parent);
    await this.converge(rec);
    this.watch();
  }

  /** DeleteNetwork (and undo of a failed create): only what this network needed goes. Idempotent. */
  async detach(networkId: string, parent: string): Promise<void> {
    const rec = await this.state.hostAccess(parent);
    if (!rec || !(networkId in rec.networks)) return;
    const { [networkId]: _, ...rest } = rec.networks;
    await this.state.commit('host access', [putJson(hostAccessKey(parent), { ...rec, networks: rest })]);
    await this.converge({ ...rec, networks: rest });
  }

  /** Join: the container's /32 and /128 through the host-side link. */
  async join(c: NetworkConfig, ep: EndpointRecord): Promise<void> {
    if (!c.hostAccess) return;
    const rec = await this.state.hostAccess(c.parent.name);
    const mine = rec?.networks[c.id];
    if (!rec || !mine) return;
    const link = (await this.k.links.find(rec.link)) ?? (await this.converge(rec));
    if (!link) return;
    const have = new Set((await this.k.routes.list()).filter((r) => r.oif === link.index).map((r) => r.dst));
    for (const r of routesOf(ep, mine)) {
      if (have.has(r.dst)) continue;
      await this.k.routes.add({ dst: r.dst, dev: link.index, prefsrc: r.src });
      this.log.info('host access: route added', {
        link: rec.link,
        route: r.dst,
        src: r.src,
        endpoint: ep.endpointId.slice(0, 12),
      });
    }
  }

  /** Leave and DeleteEndpoint: the container's routes go. Idempotent. */
  async leave(c: NetworkConfig | undefined, ep: EndpointRecord | undefined): Promise<void> {
    if (!c?.hostAccess || !ep) return;
    const rec = await this.state.hostAccess(c.parent.name);
    const link = rec && (await this.k.links.find(rec.link));
    if (!link) return;
    for (const r of routesOf(ep, rec.networks[c.id] ?? [])) {
      if (await this.k.routes.deleteIfExists({ dst: r.dst, dev: link.index }))
        this.log.info('host access: route removed', {
          link: rec.link,
          route: r.dst,
          endpoint: ep.endpointId.slice(0, 12),
        });
    }
  }

  /** An endpoint must not take the host's own address on the network. */
  async hostAddressOf(c: NetworkConfig): Promise<readonly string[]> {
    return c.hostAccess ? ((await this.state.hostAccess(c.parent.name))?.networks[c.id] ?? []) : [];
  }

  /** Daemon start and repairs: every record's link, addresses and routes as recorded; stale entries dropped. */
  async reconcile(): Promise<void> {
    const live = new Set((await this.state.networks()).map((n) => n.config.id));
    const recs = await this.state.hostAccesses();
    this.parents = new Set(recs.map((r) => r.parent));
    for (const rec of recs) {
      const networks = Object.fromEntries(Object.entries(rec.networks).filter(([n]) => live.has(n)));
      const fixed = { ...rec, networks };
      if (Object.keys(networks).length !== Object.keys(rec.networks).length)
        await this.state.commit('host access', [putJson(hostAccessKey(rec.parent), fixed)]);
      try {
        await this.converge(fixed);
      } catch (e) {
        this.log.error('host access: could not restore the host-side link (retried on the next check)', {
          parent: rec.parent,
          link: rec.link,
          error: e,
        });
      }
    }
    if ((await this.state.hostAccesses()).length) this.watch();
    else this.unwatch();
  }

  /**
   * Makes the kernel match `rec`: link up with exactly the recorded addresses and exactly the routes of the
   * joined endpoints of its networks; no networks left: link and record go. Returns the link (if any).
   */
  private async converge(rec: HostAccessRecord): Promise<Link | undefined> {
    const nets = Object.keys(rec.networks);
    if (nets.length === 0) {
      if (await this.k.links.deleteIfExists(rec.link))
        this.log.info('host access: link removed (its last network is gone)', { parent: rec.parent, link: rec.link });
      await this.state.deleteHostAccess(rec.parent);
      return undefined;
    }
    let link = await this.k.links.find(rec.link);
    if (!link) link = await this.createLink(rec);
    const wanted = [...new Set(Object.values(rec.networks).flat())];
    const have = (await this.k.addresses.list({ link: link.index })).filter(
      (a) => !(a.family === 6 && a.address.startsWith('fe80:')),
    );
    for (const a of have) {
      if (wanted.includes(a.address) && a.prefix === (a.family === 4 ? 32 : 128)) continue;
      await this.k.addresses.delete(link.index, `${a.address}/${a.prefix}`);
      this.log.info('host access: address removed', { link: rec.link, address: `${a.address}/${a.prefix}` });
    }
    for (const ip of wanted) {
      if (have.some((a) => a.address === ip)) continue;
      await this.k.addresses.add(link.index, hostCidr(ip), { nodad: true, noprefixroute: true });
      this.log.info('host access: address added', { link: rec.link, address: hostCidr(ip) });
    }
    const routes = new Map<string, string>();
    for (const n of nets) {
      for (const ep of await this.state.endpoints(n))
        if (ep.sandboxKey) for (const r of routesOf(ep, rec.networks[n]!)) routes.set(r.dst, r.src);
    }
    // Only host routes on our own link are ours: the kernel's fe80::/64 and anything else stay.
    const present = (await this.k.routes.list()).filter(
      (r) => r.oif === link!.index && !r.gateway && /\/(32|128)$/.test(r.dst) && r.type === 'unicast',
    );
    for (const r of present) {
      if (routes.get(r.dst) === r.prefsrc) continue;
      await this.k.routes.deleteIfExists({ dst: r.dst, dev: link.index });
      this.log.info('host access: route removed', { link: rec.link, route: r.dst });
    }
    for (const [dst, src] of routes) {
      if (present.some((r) => r.dst === dst && r.prefsrc === src)) continue;
      await this.k.routes.add({ dst, dev: link.index, prefsrc: src });
      this.log.info('host access: route added', { link: rec.link, route: dst, src });
    }
    return link;
  }

  private async createLink(rec: HostAccessRecord): Promise<Link> {
    // Derived from the parent's own MAC (unique per host) and its name: the same MAC whenever the link is made again.
    const parentMac = (await this.k.links.find(rec.parent))?.mac ?? '';
    const mac = signedMac(HOST_LINK_MAC_SIGNATURE, `host-access|${parentMac}|${rec.parent}`);
    const spec = kindNamed(rec.kind).hostLinkSpec(rec.link, rec.parent, rec, mac);
    const link = await this.k.links.create(spec);
    try {
      // Answer ARP only for requests the host would answer through this link (from its own containers, to
      // which the /32 routes point): the LAN's router asking for the host's address keeps getting the
      // parent's MAC alone. IPv6 answers only for addresses on the link anyway (RFC 4861 7.2.3 as Linux
      // does it). No router advertisements: a default route or SLAAC address here would move LAN traffic.
      await this.k.setLinkSysctl('ipv4', rec.link, 'arp_filter', 1);
      for (const [name, v] of [
        ['accept_ra', 0],
        ['autoconf', 0],
      ] as const) {
        await this.k
          .setLinkSysctl('ipv6', rec.link, name, v)
          .catch((e) =>
            this.log.warn('host access: IPv6 sysctl not set (IPv6 disabled?)', { link: rec.link, name, error: e }),
          );
      }
      await this.k.links.setUp(link.index);
    } catch (e) {
      await this.k.links.deleteIfExists(link.index);
      throw e;
    }
    this.log.info('host access: link created', {
      parent: rec.parent,
      link: rec.link,
      kind: spec.kind,
      mode: 'mode' in spec ? spec.mode : undefined,
      networks: Object.keys(rec.networks).map((n) => n.slice(0, 12)),
    });
    return this.k.links.get(link.index);
  }

  /** Starts watching link and address events and the periodic check (once; stopped when unused). */
  private watch(): void {
    if (this.events) return;
    this.events = this.k.subscribe(['link', 'ipv4-address', 'ipv6-address']);
    this.events.on('error', (e: Error) => this.log.debug('host access: event stream', { error: e }));
    this.events.on('overrun', () => this.schedule());
    this.events.on('event', (e) => {
      // Deletions of our links or addresses, and a parent that (re)appears: converge soon.
      if (
        e.type === 'link' &&
        (HOST_LINK_PATTERN.test(e.link.name) ? e.action === 'del' : e.action === 'new' && this.parents.has(e.link.name))
      )
        this.schedule();
      else if (e.type === 'address' && e.action === 'del') this.schedule();
    });
    this.timer = setInterval(() => this.schedule(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  private unwatch(): void {
    this.events?.close();
    this.events = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
  }

  /** Coalesces bursts of events (a network's teardown) into one repair. */
  private schedule(): void {
    if (this.pending || !this.events) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void this.serialize(() => this.reconcile()).catch((e: unknown) =>
        this.log.error('host access: repair failed', { error: e }),
      );
    }, 100);
  }

  close(): void {
    this.unwatch();
  }
}

/** The routes to an endpoint's addresses, each with the host's address of the same family as source. */
function routesOf(ep: EndpointRecord, host: readonly string[]): { dst: string; src: string }[] {
  const out: { dst: string; src: string }[] = [];
  for (const a of [ep.ipv4, ep.ipv6]) {
    if (!a) continue;
    const ip = parseCidr(a).address;
    const src = host.find((h) => famOf(h) === famOf(ip));
    if (src) out.push({ dst: hostCidr(ip), src });
  }
  return out;
}
