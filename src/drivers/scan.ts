// `macnet scan`, the daemon's side: gathers what macnet knows about a network's LAN (its records, the
// kernel's addresses, the IPAM's stopped containers' last addresses), sweeps the LAN from the parent's probe link
// (ipvlan: from the parent itself), and classifies (inventory.ts). IPv4: every address of the subnet is asked.
// IPv6: a /64 cannot be swept, so only the addresses macnet knows (containers, gateway, host addresses, stopped
// containers' last ones) are asked.
import { MacnetError } from '../errors';
import type { AddressBook, Lan } from '../lan';
import { cidrContains, formatAddress, parseCidr, parseCidrBig, usableRange } from '../types/address';
import { type Known, type Row, classify } from './inventory';
import type { DriverState } from './state';
import type { NetworkConfig } from './network-config';
import { kindOf } from './kinds';

/** The largest IPv4 subnet swept: a /20 is 4094 requests, about 1 s of sending in bursts plus the window. */
export const SCAN_MAX_IPV4_PREFIX = 20;
/** How long replies are collected after the last request. */
export const SCAN_WINDOW_MS = 1000;

/** Networks being scanned now: one scan per network at a time (frames per second: probe/pacer.ts). */
const scanning = new Set<string>();

export interface ScanDeps {
  readonly state: DriverState;
  readonly lan: Lan;
  /** Stopped containers' last addresses (the IPAM's sticky names). */
  readonly addresses: Pick<AddressBook, 'lastAddresses'>;
}

export interface ScanResult {
  readonly network: string;
  readonly parent: string;
  readonly subnets: readonly string[];
  /** How many addresses were asked, per family. */
  readonly asked: { readonly ipv4: number; readonly ipv6: number };
  readonly ms: number;
  readonly rows: readonly Row[];
}

/** Every host address of an IPv4 subnet (all of a /31 or /32: no network or broadcast address there). */
export function hostsOf(subnet: string): string[] {
  const { first, last } = usableRange(parseCidrBig(subnet).subnet);
  const out: string[] = [];
  for (let v = first; v <= last; v++) out.push(formatAddress(v, 4));
  return out;
}

export async function scanNetwork(d: ScanDeps, network: string): Promise<ScanResult> {
  const started = performance.now();
  const all = (await d.state.networks()).filter((n) => n.state === 'ready');
  const matches = all.filter((n) => n.config.id.startsWith(network.toLowerCase()));
  if (!network || matches.length === 0) {
    throw new MacnetError(
      'NETWORK_NOT_FOUND',
      `scan: no macnet network with id ${JSON.stringify(network)} (or an id starting so) on this ` +
        'daemon; `docker network ls --filter driver=macnet` lists the networks macnet serves',
      { network },
    );
  }
  if (matches.length > 1) {
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `scan: network id prefix ${JSON.stringify(network)} matches ${matches.length} networks (` +
        `${matches.map((n) => n.config.id.slice(0, 12)).join(', ')}); give more of the id, or the name`,
      { network },
    );
  }
  const c = matches[0]!.config;
  if (scanning.has(c.id)) {
    throw new MacnetError(
      'SCAN_BUSY',
      `scan: network ${c.id.slice(0, 12)} is being scanned already: one scan per ` +
        'network at a time; run it again when that one has answered (a /24 takes about 1.3 s)',
      { network: c.id },
    );
  }
  scanning.add(c.id);
  try {
    return await sweepNetwork(d, c, all, started);
  } finally {
    scanning.delete(c.id);
  }
}

async function sweepNetwork(
  d: ScanDeps,
  c: NetworkConfig,
  all: readonly { config: NetworkConfig }[],
  started: number,
): Promise<ScanResult> {
  if (!d.lan.probing)
    throw new MacnetError(
      'INVALID_ARGUMENT',
      'scan: the daemon runs with --no-probe, so it has no probe link to sweep the LAN from; ' +
        'restart it without --no-probe',
      {},
    );
  for (const s of c.subnets) {
    if (s.family === 4 && parseCidr(s.subnet).prefix < SCAN_MAX_IPV4_PREFIX) {
      throw new MacnetError(
        'SCAN_TOO_LARGE',
        `scan: subnet ${s.subnet} of network ${c.id.slice(0, 12)} has more addresses than ` +
          `scan sweeps: at most a /${SCAN_MAX_IPV4_PREFIX} (` +
          `${2 ** (32 - SCAN_MAX_IPV4_PREFIX) - 2} addresses) is asked, one ARP request each`,
        { subnet: s.subnet, limit: `/${SCAN_MAX_IPV4_PREFIX}` },
      );
    }
  }
  const inSubnets = (ip: string) => c.subnets.some((s) => cidrContains(s.subnet, ip));
  // Endpoints of every network on this parent: two networks may share a subnet (split by --ip-range).
  const sameParent = new Set(all.filter((n) => n.config.parent.name === c.parent.name).map((n) => n.config.id));
  const records = (await d.state.endpoints()).filter((e) => sameParent.has(e.networkId));
  const toRows = (parentMac?: string) =>
    records
      .flatMap((e) =>
        [e.ipv4, e.ipv6]
          .filter((a): a is string => !!a)
          .map((a) => {
            const mac = e.mac ?? parentMac;
            return { address: parseCidr(a).address, ...(mac && { mac }), endpointId: e.endpointId, link: e.linkName };
          }),
      )
      .filter((e) => inSubnets(e.address));
  let endpoints = toRows();
  const hostAll = await d.lan.hostAddresses();
  const host = hostAll.filter((h) => inSubnets(h.address));
  const now = new Set([...endpoints, ...host].map((e) => e.address));
  const stopped = (await Promise.all(c.subnets.map((s) => d.addresses.lastAddresses(s.subnet))))
    .flat()
    .filter((s) => !now.has(s.address));
  const gateways = c.subnets.map((s) => s.gateway).filter((g): g is string => !!g);
  const v4 = c.subnets.filter((s) => s.family === 4).flatMap((s) => hostsOf(s.subnet));
  const v6 = [
    ...new Set(
      [...endpoints, ...host, ...stopped]
        .map((e) => e.address)
        .concat(gateways)
        .filter((a) => a.includes(':')),
    ),
  ];
  const { replies, from } = await d.lan.sweep(c.id, [...v4, ...v6], { windowMs: SCAN_WINDOW_MS });
  // From the parent (ipvlan): the requests go out where its own children cannot hear them, and every child carries
  // the parent's MAC: any other MAC answering for one of them is a conflict.
  const fromParent = kindOf(c).lanVantage(c) === 'parent';
  if (fromParent) endpoints = toRows(from);
  const known: Known = {
    endpoints,
    host,
    hostMacs: [...new Set(hostAll.map((h) => h.mac))],
    gateways,
    stopped,
    ...(fromParent && { fromParent: true }),
  };
  return {
    network: c.id,
    parent: c.parent.name,
    subnets: c.subnets.map((s) => s.subnet),
    asked: { ipv4: v4.length, ipv6: v6.length },
    ms: Math.round(performance.now() - started),
    rows: classify(replies, known),
  };
}
