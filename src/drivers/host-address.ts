// The host's own address on a network with host access (-o host_access=true): given, shared with another
// network on the same parent and subnet, or chosen from the top of the subnet. The rule (docs/driver.md):
// Docker creates the network after IPAM has its pools, and the driver cannot call IPAM to reserve an address,
// so it takes the highest usable address that nothing uses yet — not the gateway, an aux address, a container's
// (IPAM's, one IPAM keeps warm, or an endpoint's), the host's own or another host's (a LAN probe, when probing
// is on) — and IPAM leaves it alone afterwards because it never hands out an address the host has (the probe
// sees the host's own addresses). Docker's default IPAM allocates from the bottom of the subnet, so the top is
// the last it reaches; an endpoint that gets the host's address anyway is refused at CreateEndpoint.
import { MacnetError } from '../errors';
import type { Kernel } from '../kernel';
import { type Family, cidrContains, formatAddress, parseCidr, parseCidrBig, usableRange } from '../types/address';
import type { NetworkConfig } from './config';
import type { AddressBook, Lan } from '../lan';
import type { DriverState } from './state';

/** How far down from the top of a subnet to look before giving up. */
const MAX_CANDIDATES = 64;
/** Candidates probed together (one bounded probe window per batch). */
const BATCH = 8;

export interface AddressDeps {
  readonly k: Kernel;
  readonly state: DriverState;
  readonly lan: Lan;
  /** The IPAM that allocated the network's addresses, when it is macnet's (absent: Docker's). */
  readonly addresses: AddressBook | undefined;
}

/** Addresses something on this host already uses or that the network reserves. */
async function taken(d: AddressDeps, c: NetworkConfig): Promise<Set<string>> {
  const out = new Set<string>();
  for (const s of c.subnets) {
    if (s.gateway) out.add(s.gateway);
    for (const a of Object.values(s.auxAddresses)) out.add(a);
  }
  for (const ep of await d.state.endpoints()) for (const a of [ep.ipv4, ep.ipv6]) if (a) out.add(parseCidr(a).address);
  for (const a of await d.k.addresses.list()) out.add(a.address);
  for (const r of await d.state.hostAccesses())
    for (const ips of Object.values(r.networks)) for (const ip of ips) out.add(ip);
  // IPAM's warm set and just-allocated addresses: free on the LAN, but promised to this host's containers.
  for (const ip of d.lan.claimedAddresses()) out.add(ip);
  return out;
}

/**
 * Whether a LAN machine or macnet's IPAM uses `ips`; the in-use ones, with who holds them. `probing`: another
 * host is probing the address right now (it may be choosing its own host address at the same instant).
 */
async function inUse(
  d: AddressDeps,
  c: NetworkConfig,
  subnet: string,
  ips: readonly string[],
): Promise<Map<string, { who: string; probing: boolean }>> {
  const out = new Map<string, { who: string; probing: boolean }>();
  for (const ip of ips)
    if (await d.addresses?.allocatedHere(subnet, ip)) out.set(ip, { who: 'a container (macnet IPAM)', probing: false });
  const rest = ips.filter((ip) => !out.has(ip));
  if (rest.length)
    for (const [ip, h] of await d.lan.check(c.id, rest, { exclusive: true }))
      out.set(ip, { who: `${h.mac} on the LAN`, probing: h.reason === 'probing' });
  return out;
}

/**
 * The host's addresses on network `c` (one per family the network has). `shared`: addresses the host-side
 * link has already for other networks on the parent; one inside this network's subnet is reused.
 */
export async function hostAddresses(d: AddressDeps, c: NetworkConfig, shared: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const families = [...new Set(c.subnets.map((s) => s.family))];
  for (const fam of families) {
    const subnets = c.subnets.filter((s) => s.family === fam);
    const given = (c.hostAccessAddresses ?? []).find((a) => (a.includes(':') ? 6 : 4) === fam);
    if (given) {
      const subnet = subnets.find((s) => cidrContains(s.subnet, given))!.subnet;
      if (!shared.includes(given)) {
        const ep = (await d.state.endpoints()).find((e) =>
          [e.ipv4, e.ipv6].some((a) => a && parseCidr(a).address === given),
        );
        const own = (await d.k.addresses.list()).some((a) => a.address === given);
        const holder = ep
          ? `container endpoint ${ep.endpointId.slice(0, 12)}`
          : own
            ? 'this host (an address of its own)'
            : (await inUse(d, c, subnet, [given])).get(given)?.who;
        if (holder && c.conflict !== 'warn') {
          throw new MacnetError(
            'HOST_ACCESS_ADDRESS_UNAVAILABLE',
            `option host_access_address: ${given} is in use by ${holder}; give a ` +
              `free address of ${subnet}, or leave the option out and macnet picks one`,
            { option: 'host_access_address', value: given, subnet },
          );
        }
      }
      out.push(given);
      continue;
    }
    const reuse = shared.find((a) => subnets.some((s) => cidrContains(s.subnet, a)));
    if (reuse) {
      out.push(reuse);
      continue;
    }
    out.push(await pick(d, c, subnets[0]!.subnet, fam));
  }
  return out;
}

async function pick(d: AddressDeps, c: NetworkConfig, subnet: string, fam: Family): Promise<string> {
  const s = parseCidrBig(subnet).subnet;
  const { first, last } = usableRange(s);
  const skip = await taken(d, c);
  const candidates: string[] = [];
  for (let v = last; v >= first && candidates.length < MAX_CANDIDATES; v--) {
    const ip = formatAddress(v, fam);
    if (!skip.has(ip)) candidates.push(ip);
  }
  const busy: string[] = [];
  for (let i = 0; i < candidates.length; i += BATCH) {
    const batch = candidates.slice(i, i + BATCH);
    const used = await inUse(d, c, subnet, batch);
    const free = batch.find((ip) => !used.has(ip));
    if (free) return free;
    busy.push(...used.keys());
    // Two hosts choosing at the same instant probe the same candidates, each hears the other and both move on
    // in step, batch after batch. As RFC 5227 2.1.1 has it, back off for a random while so that one goes first.
    if ([...used.values()].some((u) => u.probing)) await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
  }
  throw new MacnetError(
    'HOST_ACCESS_ADDRESS_UNAVAILABLE',
    `host access: no free address among the ${candidates.length} highest of ${subnet}` +
      `${busy.length ? ` (in use: ${busy.slice(0, 4).join(', ')}${busy.length > 4 ? ', ...' : ''})` : ''}` +
      '; give one with -o host_access_address=IP',
    { option: 'host_access_address', subnet },
  );
}
