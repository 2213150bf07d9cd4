// The LAN behind each parent, as the IPAM and the driver need it: which addresses something already uses, the
// addresses this host defends until their containers answer, and the sockets DHCP goes out on. One object per
// daemon, wired once (src/cli/daemon.ts); it knows networks only as the Segments the driver attaches.
import { checkNetnsFile, ETH_P_IP, Kernel } from '../kernel';
import { fail, MacnetError } from '../errors';
import type { Logger } from '../log';
import type { ProbeResult, SweepOptions } from '../probe/prober';
import type { FrameSocket } from '../types/socket';
import { cidrContains } from '../types/address';
import type { DhcpSockets } from './lease-records';
import { announceWhenUp } from './announce';
import { ProbeLinks } from './probe-links';
import { type Holder, probeable, type Segment } from './segment';

/** How long a just-allocated address is defended by the probe link (its container answers long before). */
const CLAIM_MS = 30_000;

/** An address of this host, on any of its links (parent, host-access link, others). */
export interface HostAddress {
  readonly address: string;
  readonly link: string;
  readonly mac: string;
}

export interface LanOptions {
  /** Probe addresses and defend claims (default true; `--no-probe` turns it off, and with it DHCP). */
  probe?: boolean;
  /** The bounded probe window of a cold check (default 300 ms). */
  windowMs?: number;
}

/** Where a joined endpoint's interface is: DHCP renewals go out from the container's own interface. */
interface Joined {
  readonly sandboxKey: string;
  /** Absent for ipvlan endpoints (they carry the parent's MAC): their interface is the one with the address. */
  readonly mac?: string;
}

export class Lan implements DhcpSockets {
  /** False with --no-probe: nothing is probed, defended or announced, and DHCP is refused. */
  readonly probing: boolean;
  private readonly segments = new Map<string, Segment>();
  private readonly links: ProbeLinks;
  /** Defended addresses: until when, and on which parent's probe link. */
  private readonly claims = new Map<string, { until: number; parent: string }>();
  private readonly joined = new Map<string, Joined>();
  private readonly announcing = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly k: Kernel,
    private readonly log: Logger,
    private readonly opts: LanOptions = {},
  ) {
    this.probing = opts.probe !== false;
    this.links = new ProbeLinks(k, log, (parent) =>
      [...this.claims].filter(([, c]) => c.parent === parent).map(([ip]) => ip),
    );
  }

  /** The driver's network `s` is ready (created, or found at start). Replaces an earlier one of the same id. */
  attach(s: Segment): void {
    this.segments.set(s.network, Object.freeze({ ...s, subnets: Object.freeze([...s.subnets]) }));
  }

  /** The network is gone (or its create undone); the parent's probe link goes with its last network. Idempotent. */
  async detach(network: string): Promise<void> {
    const s = this.segments.get(network);
    this.segments.delete(network);
    if (s && ![...this.segments.values()].some((o) => o.parent === s.parent)) await this.links.release(s.parent);
  }

  /** The endpoint with addresses `ips` joined its container (`sandboxKey`), or is found joined at start. */
  endpointJoined(ips: readonly string[], where: Joined): void {
    for (const ip of ips) this.joined.set(ip, where);
  }

  endpointLeft(ips: readonly string[]): void {
    for (const ip of ips) this.joined.delete(ip);
  }

  private segmentFor(subnet: string): Segment | undefined {
    for (const s of this.segments.values()) if (s.subnets.includes(subnet)) return s;
    return undefined;
  }

  private segment(network: string): Segment {
    const s = this.segments.get(network);
    if (!s) {
      throw new MacnetError(
        'NETWORK_NOT_FOUND',
        `network ${network.slice(0, 12)} is not known to macnet's LAN layer (is it being created or removed?)`,
        { network },
      );
    }
    return s;
  }

  async conflictPolicy(subnet: string): Promise<'refuse' | 'warn'> {
    return this.segmentFor(subnet)?.conflict ?? 'refuse';
  }

  /**
   * Whether inUse can ask the LAN of `subnet` itself: a network here uses it, probing is on, and its kind has a
   * vantage on the LAN (a probe link or the parent). Reclaiming another host's addresses needs a real "silent".
   */
  canProbe(subnet: string): boolean {
    const s = this.segmentFor(subnet);
    return s !== undefined && this.probing && probeable(s);
  }

  /** Which candidates answer on the LAN of `subnet`; undefined when no network here uses it or probing is off. */
  async inUse(subnet: string, candidates: readonly string[]): Promise<Map<string, Holder> | undefined> {
    const s = this.segmentFor(subnet);
    if (!s || !this.probing) return undefined;
    return this.check(s.network, candidates);
  }

  /**
   * Which candidates something on network `network`'s LAN or this host uses. `exclusive`: the caller takes a free
   * address for the host, not for the IPAM (ProbeOptions.exclusive).
   */
  async check(
    network: string,
    candidates: readonly string[],
    opts: { exclusive?: boolean } = {},
  ): Promise<Map<string, Holder>> {
    const s = this.segment(network);
    const out = new Map<string, Holder>();
    if (!this.probing) return out;
    // The host's own addresses: macvlan isolates a parent from its children, so the host would not answer.
    for (const a of await this.hostAddresses())
      if (candidates.includes(a.address)) out.set(a.address, { mac: a.mac, reason: 'answered' });
    const rest = candidates.filter((a) => !out.has(a));
    if (rest.length && probeable(s)) {
      const found = await this.links.use(s, (link) =>
        link.prober.probe(rest, { windowMs: this.opts.windowMs ?? 300, ...(opts.exclusive && { exclusive: true }) }),
      );
      for (const [a, r] of found) if (!r.free) out.set(a, holder(r));
    }
    for (const [address, h] of out)
      this.log.warn('address in use on the LAN: skipped', {
        address,
        mac: h.mac,
        reason: h.reason,
        network: s.network,
        parent: s.parent,
      });
    return out;
  }

  /**
   * A socket for DHCP (IPv4 datagrams) on the probe link of the network that uses `subnet`: the DHCP client
   * sends there on behalf of a container that has no interface yet (docs/dhcp.md).
   */
  async probeSocket(subnet: string): Promise<{ sock: FrameSocket; where: string; sharedMac?: string }> {
    if (!this.probing) {
      throw new MacnetError(
        'OPTION_INVALID',
        "--ipam-opt mode=dhcp needs the daemon's LAN link: start it without --no-probe",
        { option: 'mode' },
      );
    }
    const s = this.segmentFor(subnet);
    if (!s) {
      throw fail('NETWORK_NOT_FOUND', { call: 'DHCP', subnet });
    }
    if (s.probeFrom === 'none') {
      throw new MacnetError(
        'OPTION_INVALID',
        '--ipam-opt mode=dhcp needs a macvlan network in bridge, vepa or private mode, or an ipvlan network: ' +
          'a passthru network has no link to ask from before the container starts',
        { option: 'mode', kind: s.kind },
      );
    }
    if (s.probeFrom === 'parent') {
      // From the parent, as the probes: its MAC is every container's, so it is the chaddr, and the server's
      // broadcast OFFER and ACK (the client sets the broadcast flag) reach the parent as well as the children.
      // Renewals come from the container's own ipvlan child, which the server's unicast reaches by IP.
      const parent = await this.k.links.get(s.parent, `DHCP on parent ${JSON.stringify(s.parent)}`);
      const sock = await this.k.openPacketSocket(parent.index, { protocol: ETH_P_IP });
      return { sock, where: `parent ${s.parent} (${s.kind})`, sharedMac: parent.mac! };
    }
    const link = await this.links.get(s);
    const sock = await this.k.openPacketSocket(link.name, { protocol: ETH_P_IP });
    return { sock, where: `probe link ${link.name} on parent ${s.parent}` };
  }

  /** A socket on the container's own interface in its namespace, once the endpoint with `ip` has joined. */
  async containerSocket(subnet: string, ip: string): Promise<FrameSocket | undefined> {
    const j = this.joined.get(ip);
    if (!j || !cidrContains(subnet, ip)) return undefined;
    await checkNetnsFile(j.sandboxKey);
    const k = Kernel.open(j.sandboxKey);
    try {
      const index = j.mac
        ? (await k.links.list()).find((l) => l.mac === j.mac)?.index
        : (await k.addresses.list()).find((a) => a.address === ip)?.index;
      return index === undefined ? undefined : await k.openPacketSocket(index, { protocol: ETH_P_IP });
    } finally {
      await k.close();
    }
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
    network: string,
    addresses: readonly string[],
    opts: SweepOptions = {},
  ): Promise<{ replies: Map<string, string[]>; from: string }> {
    const s = this.segment(network);
    if (s.probeFrom === 'none') {
      throw new MacnetError(
        'INVALID_ARGUMENT',
        `scan: network ${s.network.slice(0, 12)} is macvlan passthru (the parent takes no second child for ` +
          'a probe link); scan works on macvlan bridge, vepa and private networks and on ipvlan networks',
        { network: s.network, kind: s.kind },
      );
    }
    return this.links.use(s, async ({ prober }) => ({
      replies: await prober.sweep(addresses, opts),
      from: prober.mac,
    }));
  }

  /**
   * Defends a just-allocated address for CLAIM_MS: the container's interface comes up half a second or so
   * later, and until it answers for itself another host probing the address must see it taken.
   */
  claim(subnet: string, ip: string): void {
    const s = this.segmentFor(subnet);
    if (!s || !this.probing || !probeable(s)) return;
    void (async () => {
      const link = await this.links.get(s);
      link.prober.defend(ip);
      const fresh = !this.claims.has(ip);
      this.claims.set(ip, { until: Date.now() + CLAIM_MS, parent: s.parent });
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
      void this.links.existing(claim.parent)?.then(
        (l) => l.prober.release(ip),
        () => undefined,
      );
  }

  /**
   * After Join: announces the endpoint's addresses (gratuitous ARP, unsolicited NA) once dockerd has brought its
   * interface up, in the background (announce.ts).
   */
  announce(sandboxKey: string, ips: readonly string[]): void {
    if (!this.probing || ips.length === 0) return;
    const p = announceWhenUp(sandboxKey, ips, this.log, this.stopping.signal);
    this.announcing.add(p);
    void p.finally(() => this.announcing.delete(p));
  }

  /** Ends pending announcements and removes every probe link. */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.announcing]);
    await this.links.close();
  }
}

const holder = (r: ProbeResult): Holder =>
  r.free ? { mac: '', reason: 'answered' } : { mac: r.mac, reason: r.reason };
