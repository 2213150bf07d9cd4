// The network driver behind every front end (the Docker plugin now, a CLI and CNI later): one object per
// host namespace, operations serialized (network changes are rare; serializing them makes the
// validate → setup sequence free of races between two creates on one parent).
import { MacnetError } from '../errors';
import { checkNetnsFile, ETH_P_IP, Kernel } from '../kernel';
import type { Logger } from '../log';
import type { Store } from '../store/types';
import { type CreateNetworkRequest, type NetworkConfig, parseNetworkRequest } from './config';
import {
  type CreateEndpointInput,
  ENDPOINT_LINK_PATTERN,
  type JoinResult,
  createEndpoint,
  forgetEndpoint,
  joinEndpoint,
} from './endpoint';
import { createParent, setupNetwork, teardownNetwork, validateNetwork } from './network';
import { DriverState, type EndpointRecord, endpointKey } from './state';
import { announceWhenUp } from './announce';
import { LanGuard, PROBE_LINK_PATTERN } from './lan';
import { cidrContains, parseCidr } from '../types/address';
import type { DhcpLinks, LeaseRecord } from '../ipam/dhcp';
import { HOST_LINK_PATTERN, HostAccess } from './host-access';

export interface DriverOptions {
  /** Probe addresses on the LAN before use and announce them after Join (default true). */
  probe?: boolean;
  /** Bounded window of a cold probe (default 300 ms). */
  probeWindowMs?: number;
  /** Whether macnet's IPAM handed out (and so already probed) an address; absent: Docker's IPAM did. */
  ipamHolds?: (subnet: string, ip: string) => Promise<boolean>;
  /** The container name macnet's IPAM got with the address (engines that send it), for -o mac=stable. */
  ipamName?: (subnet: string, ip: string) => Promise<string | undefined>;
  /** The DHCP lease behind an address of a mode=dhcp pool: its MAC, router and state. */
  ipamLease?: (subnet: string, ip: string) => LeaseRecord | undefined;
}

export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

export class NetworkDriver {
  readonly state: DriverState;
  private readonly lock = new Mutex();

  /** The LAN check IPAM and the driver share; undefined when probing is off. */
  readonly lan: LanGuard | undefined;
  private readonly announcing = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  /** Endpoint links being deleted after DeleteEndpoint returned, on their own netlink socket. */
  private readonly reaping = new Set<Promise<void>>();
  private reaper: Kernel | undefined;
  /** -o host_access=true: the host-side links, their addresses and routes (host-access.ts). */
  readonly hostAccess: HostAccess;

  constructor(
    private readonly k: Kernel,
    store: Store,
    private readonly log: Logger,
    private readonly opts: DriverOptions = {},
  ) {
    this.state = new DriverState(store);
    this.lan =
      opts.probe === false
        ? undefined
        : new LanGuard(k, this.state, log, {
            ...(opts.probeWindowMs !== undefined && { windowMs: opts.probeWindowMs }),
          });
    this.hostAccess = new HostAccess({ k, state: this.state, lan: this.lan, ipamHolds: opts.ipamHolds }, log, (fn) =>
      this.lock.run(fn),
    );
  }

  /**
   * With Docker's own IPAM nobody probed the address: check it here and refuse a conflict the same way
   * macnet's IPAM does (ADDRESS_CONFLICT naming the MAC), unless the network says conflict=warn.
   */
  private async checkUnprobed(c: NetworkConfig, input: CreateEndpointInput): Promise<void> {
    if (!this.lan) return;
    for (const cidr of [input.address, input.addressIPv6]) {
      if (!cidr) continue;
      const ip = parseCidr(cidr).address;
      const subnet = c.subnets.find((s) => cidrContains(s.subnet, ip))?.subnet;
      if (!subnet || (await this.opts.ipamHolds?.(subnet, ip))) continue;
      const h = (await this.lan.check(c, [ip])).get(ip);
      if (h && (c.conflict ?? 'refuse') === 'refuse') {
        throw new MacnetError(
          'ADDRESS_CONFLICT',
          `address ${ip} is in use on the LAN by ${h.mac} (` +
            `${h.reason === 'answered' ? 'it answered a probe' : 'it is probing for the address right now'}` +
            '); pick another address, or create the network with -o conflict=warn to use it anyway',
          { address: ip, mac: h.mac, subnet },
        );
      }
    }
  }

  private leaseFor(c: NetworkConfig, cidr: string | undefined): LeaseRecord | undefined {
    if (!cidr || !this.opts.ipamLease) return undefined;
    const ip = parseCidr(cidr).address;
    const subnet = c.subnets.find((s) => cidrContains(s.subnet, ip))?.subnet;
    return subnet ? this.opts.ipamLease(subnet, ip) : undefined;
  }

  /** Sockets for the IPAM's DHCP client: the probe link before Join, the container's own interface after. */
  readonly dhcpLinks: DhcpLinks = {
    probeSocket: async (subnet) => {
      if (!this.lan)
        throw new MacnetError(
          'OPTION_INVALID',
          "--ipam-opt mode=dhcp needs the daemon's LAN link: start it without --no-probe",
          { option: 'mode' },
        );
      return this.lan.dhcpSocket(subnet);
    },
    containerSocket: async (subnet, ip) => {
      const ep = (await this.state.endpoints()).find(
        (e) => e.sandboxKey && e.ipv4 && parseCidr(e.ipv4).address === ip && cidrContains(subnet, ip),
      );
      if (!ep?.sandboxKey) return undefined;
      await checkNetnsFile(ep.sandboxKey);
      const k = Kernel.open(ep.sandboxKey);
      try {
        // ipvlan endpoints record no MAC (they carry the parent's): their interface is the one with the address.
        const index = ep.mac
          ? (await k.links.list()).find((l) => l.mac === ep.mac)?.index
          : (await k.addresses.list()).find((a) => a.address === ip)?.index;
        return index === undefined ? undefined : await k.openPacketSocket(index, { protocol: ETH_P_IP });
      } finally {
        await k.close();
      }
    },
  };

  private async config(networkId: string, call: string): Promise<NetworkConfig> {
    const rec = await this.state.network(networkId);
    if (!rec) {
      throw new MacnetError(
        'NETWORK_NOT_FOUND',
        `${call}: network ${networkId.slice(0, 12)} is not known to macnet (was its state dir removed?)`,
        { network: networkId },
      );
    }
    return rec.config;
  }

  createNetwork(req: CreateNetworkRequest): Promise<NetworkConfig> {
    return this.lock.run(async () => {
      const c = parseNetworkRequest(req);
      await this.awaitReaped();
      const existing = await this.state.network(c.id);
      if (existing?.state === 'ready') return existing.config; // Docker retried: already done
      const plan = await validateNetwork(this.k, this.state, c);
      await setupNetwork(this.k, this.state, c, plan, this.log);
      try {
        await this.hostAccess.attach(c);
      } catch (e) {
        // All or nothing: a network whose host access failed is not left half made.
        await this.hostAccess
          .detach(c.id, c.parent.name)
          .catch((u) => this.log.error('undo: host access', { network: c.id, error: u }));
        await teardownNetwork(this.k, this.state, c.id, this.log).catch((u) =>
          this.log.error('undo: network', { network: c.id, error: u }),
        );
        if (this.lan && !(await this.state.networks()).some((n) => n.config.parent.name === c.parent.name))
          await this.lan.releaseParent(c.parent.name);
        throw e;
      }
      this.log.info('network created', {
        network: c.id,
        kind: c.kind,
        parent: c.parent.name,
        subnets: c.subnets.map((s) => s.subnet),
        ...(c.hostAccess && { hostAccess: await this.hostAccess.hostAddressOf(c) }),
      });
      return c;
    });
  }

  deleteNetwork(networkId: string): Promise<void> {
    return this.lock.run(async () => {
      const parent = (await this.state.network(networkId))?.config.parent.name;
      if (parent) await this.hostAccess.detach(networkId, parent);
      await this.awaitReaped();
      await teardownNetwork(this.k, this.state, networkId, this.log);
      if (parent && this.lan && !(await this.state.networks()).some((n) => n.config.parent.name === parent))
        await this.lan.releaseParent(parent);
      this.log.info('network deleted', { network: networkId });
    });
  }

  createEndpoint(input: CreateEndpointInput): Promise<EndpointRecord> {
    return this.lock.run(async () => {
      const c = await this.config(input.networkId, 'CreateEndpoint');
      if (!(await this.state.endpoint(input.networkId, input.endpointId))) {
        const mine = await this.hostAccess.hostAddressOf(c);
        for (const a of [input.address, input.addressIPv6]) {
          const ip = a && parseCidr(a).address;
          if (ip && mine.includes(ip)) {
            throw new MacnetError(
              'ENDPOINT_INVALID',
              `endpoint address ${ip} is the host's own address on this ` +
                'network (host access); give the container another address',
              { value: a },
            );
          }
        }
        await this.checkUnprobed(c, input);
      }
      const lease = this.leaseFor(c, input.address);
      // ipvlan: the lease's MAC is the parent's, which the container carries anyway (createEndpoint).
      if (lease && c.kind === 'macvlan') {
        // The lease was taken for this MAC before Docker told anyone the container's own: use it.
        if (input.macAddress && input.macAddress.toLowerCase() !== lease.lease.mac) {
          throw new MacnetError(
            'ENDPOINT_INVALID',
            `--mac-address ${input.macAddress} cannot be used with --ipam-opt mode=dhcp: ` +
              `the address ${lease.lease.address} was leased for MAC ${lease.lease.mac} ` +
              "before Docker passed the container's MAC to the driver; leave --mac-address " +
              "out (macnet's MAC for a container name is stable when the engine sends names)",
            { option: 'mac-address', value: input.macAddress },
          );
        }
        return createEndpoint(this.state, c, { ...input, macAddress: lease.lease.mac }, this.log);
      }
      let name: string | undefined;
      if (c.mac === 'stable' && !input.macAddress && this.opts.ipamName) {
        for (const cidr of [input.address, input.addressIPv6]) {
          if (!cidr || name) continue;
          const ip = parseCidr(cidr).address;
          const subnet = c.subnets.find((s) => cidrContains(s.subnet, ip))?.subnet;
          if (subnet) name = await this.opts.ipamName(subnet, ip);
        }
      }
      return createEndpoint(this.state, c, { ...input, ...(name && { name }) }, this.log);
    });
  }

  join(networkId: string, endpointId: string, sandboxKey: string): Promise<JoinResult> {
    return this.lock.run(async () => {
      const c = await this.config(networkId, 'Join');
      const ep = await this.state.endpoint(networkId, endpointId);
      if (!ep)
        throw new MacnetError(
          'ENDPOINT_NOT_FOUND',
          `Join: endpoint ${endpointId.slice(0, 12)} of network ${networkId.slice(0, 12)} is not known to macnet`,
          { endpoint: endpointId },
        );
      if (c.kind === 'macvlan' && c.macvlanMode === 'passthru') await this.awaitReaped();
      const res = await joinEndpoint(this.k, this.state, c, ep, sandboxKey, this.log);
      // DHCP: the router the lease names (the LAN's own answer) rather than the --gateway given at create, when
      // the network has a gateway at all (not internal) and the router is on the container's subnet.
      const router = this.leaseFor(c, ep.ipv4)?.lease.router;
      const own =
        ep.ipv4 && c.subnets.find((s) => s.family === 4 && cidrContains(s.subnet, parseCidr(ep.ipv4!).address));
      if (router && res.Gateway && own && cidrContains(own.subnet, router)) res.Gateway = router;
      try {
        await this.hostAccess.join(c, { ...ep, sandboxKey });
      } catch (e) {
        await this.k.links.deleteIfExists(ep.linkName).catch(() => undefined);
        await this.state.store.put(endpointKey(networkId, endpointId), JSON.stringify(ep));
        throw e;
      }
      if (this.lan) {
        const p = announceWhenUp(
          sandboxKey,
          [ep.ipv4, ep.ipv6].filter((a): a is string => !!a),
          this.log,
          this.stopping.signal,
        );
        this.announcing.add(p);
        void p.finally(() => this.announcing.delete(p));
      }
      return res;
    });
  }

  /** Idempotent. dockerd moves the link back to the host (or the kernel deletes it with the namespace). */
  leave(networkId: string, endpointId: string): Promise<void> {
    return this.lock.run(async () => {
      const ep = await this.state.endpoint(networkId, endpointId);
      await this.hostAccess.leave((await this.state.network(networkId))?.config, ep);
      if (ep?.sandboxKey) {
        const { sandboxKey: _, ...rest } = ep;
        await this.state.store.put(endpointKey(networkId, endpointId), JSON.stringify(rest));
      }
    });
  }

  /**
   * Deleting a macvlan or ipvlan link waits in the kernel for an RCU grace period (10 to 30 ms here, the
   * largest part of a container's network teardown), and nothing Docker does next depends on the link being
   * gone: its name is unique and dockerd moved it out of the container already. So the record goes now and the
   * link right after the answer, on a netlink socket of its own so that the next Join does not queue behind it.
   * What must not overlap a deletion waits for it (awaitReaped): network create/delete, a passthru Join (one
   * child per parent), shutdown. A daemon killed in between leaves the link for reconcile() at the next start.
   */
  deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    return this.lock.run(async () => {
      await this.hostAccess.leave(
        (await this.state.network(networkId))?.config,
        await this.state.endpoint(networkId, endpointId),
      );
      const link = await forgetEndpoint(this.state, networkId, endpointId);
      this.reaper ??= this.k.sibling();
      const p = this.reaper.links.deleteIfExists(link).then(
        () => undefined,
        (e: unknown) =>
          this.log.error('could not delete an endpoint link; it is removed at the next start', { link, error: e }),
      );
      this.reaping.add(p);
      void p.finally(() => this.reaping.delete(p));
    });
  }

  private async awaitReaped(): Promise<void> {
    await Promise.allSettled([...this.reaping]);
  }

  async endpointInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>> {
    const c = await this.config(networkId, 'EndpointOperInfo');
    const ep = await this.state.endpoint(networkId, endpointId);
    if (!ep) return {};
    return {
      kind: c.kind,
      parent: c.parent.name,
      mode: c.kind === 'macvlan' ? c.macvlanMode : `${c.ipvlanMode}/${c.ipvlanFlag}`,
      link: ep.linkName,
      ...(ep.mac && { mac: ep.mac }),
      ...dhcpInfo(this.leaseFor(c, ep.ipv4)),
    };
  }

  /**
   * What macnet's networks on `subnet` (as `same` matches subnet texts) account for: how many networks use it,
   * and the addresses they use (gateways, aux addresses, endpoints'). An IPAM allocation outside that set is
   * held by no network of this host.
   */
  async subnetUse(
    subnet: string,
    same: (a: string, b: string) => boolean,
  ): Promise<{ networks: number; addresses: Set<string> }> {
    const addresses = new Set<string>();
    let networks = 0;
    for (const n of await this.state.networks()) {
      const mine = n.config.subnets.filter((s) => same(s.subnet, subnet));
      if (mine.length === 0) continue;
      networks++;
      for (const s of mine) {
        if (s.gateway) addresses.add(s.gateway);
        for (const a of Object.values(s.auxAddresses)) addresses.add(a);
      }
      for (const ep of await this.state.endpoints(n.config.id))
        for (const a of [ep.ipv4, ep.ipv6]) if (a) addresses.add(parseCidr(a).address);
    }
    return { networks, addresses };
  }

  /** Stops probing (removes probe links) and ends pending announcements. */
  async close(): Promise<void> {
    this.stopping.abort();
    this.hostAccess.close();
    await Promise.allSettled([...this.announcing]);
    await this.lock.run(async () => {
      await this.awaitReaped();
      await this.reaper?.close();
      this.reaper = undefined;
      await this.lan?.close();
    });
  }

  /**
   * At daemon start: networks whose create was interrupted are torn down; parents macnet created are
   * re-created if missing (after a reboot); host access links, addresses and routes restored from their
   * records; endpoint links without an endpoint record are removed.
   */
  reconcile(): Promise<void> {
    return this.lock.run(async () => {
      for (const n of await this.state.networks()) {
        if (n.state === 'creating') {
          this.log.warn('removing a network whose creation was interrupted', { network: n.config.id });
          await teardownNetwork(this.k, this.state, n.config.id, this.log);
        }
      }
      for (const p of await this.state.parents()) {
        if (await this.k.links.find(p.name)) continue;
        try {
          await createParent(this.k, p, this.log);
          this.log.info('re-created a parent macnet manages', { parent: p.name, kind: p.kind });
        } catch (e) {
          this.log.error('could not re-create a parent macnet manages', { parent: p.name, error: e });
        }
      }
      await this.hostAccess.reconcile();
      const hostLinks = new Set((await this.state.hostAccesses()).map((h) => h.link));
      const known = new Set((await this.state.endpoints()).map((e) => e.linkName));
      for (const l of await this.k.links.list()) {
        if (PROBE_LINK_PATTERN.test(l.name) && l.kind === 'macvlan') {
          await this.k.links.deleteIfExists(l.index); // a killed daemon's probe link; made again on demand
          continue;
        }
        if (HOST_LINK_PATTERN.test(l.name) && (l.kind === 'macvlan' || l.kind === 'ipvlan') && !hostLinks.has(l.name)) {
          await this.k.links.deleteIfExists(l.index); // a crash between removing the record and the link
          this.log.info('removed a host access link without a record', { link: l.name });
          continue;
        }
        if (ENDPOINT_LINK_PATTERN.test(l.name) && (l.kind === 'macvlan' || l.kind === 'ipvlan') && !known.has(l.name)) {
          await this.k.links.deleteIfExists(l.index);
          this.log.info('removed an endpoint link without an endpoint', { link: l.name });
        }
      }
    });
  }
}

/** What `docker network inspect -v` and `docker inspect` show of a DHCP lease (EndpointOperInfo). */
function dhcpInfo(r: LeaseRecord | undefined): Record<string, string> {
  if (!r) return {};
  const until = new Date(r.lease.obtainedAt + r.lease.leaseSeconds * 1000).toISOString();
  return {
    dhcp_state: r.state,
    dhcp_server: r.lease.serverId,
    dhcp_lease_until: until,
    ...(r.lease.router && { dhcp_router: r.lease.router }),
    ...(r.lease.dns.length && { dhcp_dns: r.lease.dns.join(',') }),
    ...(r.changedTo && { dhcp_changed_to: r.changedTo }),
  };
}
