// The network driver behind every front end (the Docker plugin now, a CLI and CNI later): one object per
// host namespace, operations serialized (network changes are rare; serializing them makes the
// validate → setup sequence free of races between two creates on one parent).
import { fail, MacnetError } from '../errors';
import type { Kernel } from '../kernel';
import type { AddressBook, DhcpLeases, Lan, LeaseRecord } from '../lan';
import type { Logger } from '../log';
import type { Store } from '../store/types';
import { cidrContains, parseCidr } from '../types/address';
import { Mutex } from '../types/mutex';
import { type CreateNetworkRequest, type NetworkConfig, parseNetworkRequest } from './config';
import { type CreateEndpointInput, type JoinResult, createEndpoint, forgetEndpoint, joinEndpoint } from './endpoint';
import { HostAccess } from './host-access';
import { kindOf } from './kinds';
import { setupNetwork, teardownNetwork, validateNetwork } from './network';
import { LinkReaper } from './reaper';
import { reconcile } from './reconcile';
import { type ScanResult, scanNetwork } from './scan';
import { segmentOf } from './segment';
import { DriverState, type EndpointRecord } from './state';
import { subnetUse } from './subnet-use';
import { isolateEndpoint, ownAddresses, type OwnAddress } from './own-addresses';

/** The services the driver uses, each made once by the daemon (src/cli/daemon.ts). */
export interface DriverServices {
  /** The LAN: probes, claims, announcements, DHCP sockets (src/lan). */
  readonly lan: Lan;
  /** DHCP leases of mode=dhcp pools: a lease's MAC and router (absent: no DHCP). */
  readonly leases?: DhcpLeases;
  /** What macnet's IPAM allocated (absent in tests that run the driver alone). */
  readonly addresses?: AddressBook;
}

export class NetworkDriver {
  readonly state: DriverState;
  private readonly lock = new Mutex();
  private readonly lan: Lan;
  private readonly reaper: LinkReaper;
  /** -o host_access=true: the host-side links, their addresses and routes (host-access.ts). */
  readonly hostAccess: HostAccess;

  constructor(
    private readonly k: Kernel,
    store: Store,
    private readonly log: Logger,
    private readonly services: DriverServices,
  ) {
    this.state = new DriverState(store);
    this.lan = services.lan;
    this.reaper = new LinkReaper(k, log);
    this.hostAccess = new HostAccess(
      { k, state: this.state, lan: this.lan, addresses: services.addresses },
      log,
      (fn) => this.lock.run(fn),
    );
  }

  /** The subnet of `c` that holds `cidr` (an address, with or without its prefix). */
  private subnetOf(c: NetworkConfig, cidr: string): { subnet: string; ip: string } | undefined {
    const ip = parseCidr(cidr).address;
    const subnet = c.subnets.find((s) => cidrContains(s.subnet, ip))?.subnet;
    return subnet === undefined ? undefined : { subnet, ip };
  }

  /**
   * With Docker's own IPAM nobody probed the address: check it here and refuse a conflict the same way
   * macnet's IPAM does (ADDRESS_CONFLICT naming the MAC), unless the network says conflict=warn.
   */
  private async checkUnprobed(c: NetworkConfig, input: CreateEndpointInput): Promise<void> {
    if (!this.lan.probing) return;
    for (const cidr of [input.address, input.addressIPv6]) {
      const at = cidr ? this.subnetOf(c, cidr) : undefined;
      if (!at || (await this.services.addresses?.allocatedHere(at.subnet, at.ip))) continue;
      const h = (await this.lan.check(c.id, [at.ip])).get(at.ip);
      if (h && (c.conflict ?? 'refuse') === 'refuse') {
        throw fail('ADDRESS_CONFLICT', { address: at.ip, mac: h.mac, reason: h.reason, subnet: at.subnet });
      }
    }
  }

  private leaseFor(c: NetworkConfig, cidr: string | undefined): LeaseRecord | undefined {
    const at = cidr && this.services.leases ? this.subnetOf(c, cidr) : undefined;
    return at && this.services.leases?.leaseOf(at.subnet, at.ip);
  }

  private async config(networkId: string, call: string): Promise<NetworkConfig> {
    const rec = await this.state.network(networkId);
    if (!rec) {
      throw fail('NETWORK_NOT_FOUND', { call, network: networkId });
    }
    return rec.config;
  }

  createNetwork(req: CreateNetworkRequest): Promise<NetworkConfig> {
    return this.lock.run(async () => {
      const c = parseNetworkRequest(req);
      await this.reaper.settled();
      const existing = await this.state.network(c.id);
      if (existing?.state === 'ready') return existing.config; // Docker retried: already done
      const plan = await validateNetwork(this.k, this.state, c);
      await setupNetwork(this.k, this.state, c, plan, this.log);
      this.lan.attach(segmentOf(c));
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
        await this.lan.detach(c.id);
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
      await this.reaper.settled();
      await teardownNetwork(this.k, this.state, networkId, this.log);
      await this.lan.detach(networkId);
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
      // Where containers carry the parent's MAC (ipvlan), so is the lease's: nothing to take from it.
      if (lease && kindOf(c).leaseMacIsContainers(c)) {
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
      if (c.mac === 'stable' && !input.macAddress && this.services.addresses) {
        for (const cidr of [input.address, input.addressIPv6]) {
          const at = cidr && !name ? this.subnetOf(c, cidr) : undefined;
          if (at) name = await this.services.addresses.requestedName(at.subnet, at.ip);
        }
      }
      return createEndpoint(this.state, c, { ...input, ...(name && { name }) }, this.log);
    });
  }

  join(networkId: string, endpointId: string, sandboxKey: string): Promise<JoinResult> {
    return this.lock.run(async () => {
      const c = await this.config(networkId, 'Join');
      const ep = await this.state.endpoint(networkId, endpointId);
      if (!ep) throw fail('ENDPOINT_NOT_FOUND', { call: 'Join', endpoint: endpointId, network: networkId });
      if (kindOf(c).wholeParent(c)) await this.reaper.settled(); // one child per parent: the last must be gone
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
        await this.state.putEndpoint(ep);
        throw e;
      }
      const ips = addressesOf(ep);
      this.lan.endpointJoined(ips, { sandboxKey, ...(ep.mac && { mac: ep.mac }) });
      this.lan.announce(sandboxKey, ips);
      return res;
    });
  }

  /** Idempotent. dockerd moves the link back to the host (or the kernel deletes it with the namespace). */
  leave(networkId: string, endpointId: string): Promise<void> {
    return this.lock.run(async () => {
      const ep = await this.state.endpoint(networkId, endpointId);
      await this.hostAccess.leave((await this.state.network(networkId))?.config, ep);
      if (ep) this.lan.endpointLeft(addressesOf(ep));
      if (ep?.sandboxKey) {
        const { sandboxKey: _, ...rest } = ep;
        await this.state.putEndpoint(rest);
      }
    });
  }

  /** The record goes now, the link right after the answer (reaper.ts says why). */
  deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    return this.lock.run(async () => {
      const ep = await this.state.endpoint(networkId, endpointId);
      await this.hostAccess.leave((await this.state.network(networkId))?.config, ep);
      if (ep) this.lan.endpointLeft(addressesOf(ep));
      this.reaper.delete(await forgetEndpoint(this.state, networkId, endpointId));
    });
  }

  async endpointInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>> {
    const c = await this.config(networkId, 'EndpointOperInfo');
    const ep = await this.state.endpoint(networkId, endpointId);
    if (!ep) return {};
    return {
      kind: c.kind,
      parent: c.parent.name,
      mode: kindOf(c).operMode(c),
      link: ep.linkName,
      ...(ep.mac && { mac: ep.mac }),
      ...dhcpInfo(this.leaseFor(c, ep.ipv4)),
    };
  }

  /** `macnet scan` (scan.ts): not serialized with the other calls, a sweep takes a second or more. */
  scan(network: string): Promise<ScanResult> {
    const addresses = this.services.addresses ?? { lastAddresses: async () => [] };
    return scanNetwork({ state: this.state, lan: this.lan, addresses }, network);
  }

  /** What macnet's networks on `subnet` account for (subnet-use.ts), for the start-up reclaim. */
  subnetUse(subnet: string, same: (a: string, b: string) => boolean) {
    return subnetUse(this.state, subnet, same);
  }

  /** Every address this host's endpoints hold (own-addresses.ts), for a cluster host coming back. */
  ownAddresses(): Promise<OwnAddress[]> {
    return ownAddresses(this.state);
  }

  /** The ids of macnet's networks on this host (the names follower writes names for these only). */
  async networkIds(): Promise<ReadonlySet<string>> {
    return new Set((await this.state.networks()).map((n) => n.config.id));
  }

  /** The host's addresses on its host-access links: where the names' DNS listens (docs/names.md). */
  async hostAccessAddresses(): Promise<string[]> {
    const all = (await this.state.hostAccesses()).flatMap((r) => Object.values(r.networks).flat());
    return [...new Set(all)].sort();
  }

  /** Takes the endpoint's container off the LAN for `address`, another machine's now (own-addresses.ts). */
  isolate(networkId: string, endpointId: string, address: string): Promise<string | undefined> {
    return this.lock.run(() => isolateEndpoint(this.state, networkId, endpointId, address));
  }

  /** Ends pending announcements, stops host-access repairs, waits for link deletions. The LAN is the daemon's. */
  async close(): Promise<void> {
    this.hostAccess.close();
    await this.lock.run(() => this.reaper.close());
  }

  /** At daemon start, before serving: the kernel and the LAN layer brought in line with the records (reconcile.ts). */
  reconcile(): Promise<void> {
    return this.lock.run(() =>
      reconcile({ k: this.k, state: this.state, lan: this.lan, hostAccess: this.hostAccess, log: this.log }),
    );
  }
}

const addressesOf = (ep: EndpointRecord): string[] =>
  [ep.ipv4, ep.ipv6].filter((a): a is string => !!a).map((a) => parseCidr(a).address);

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
