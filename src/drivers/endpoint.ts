// Endpoints: the record at CreateEndpoint, the link at Join (as Docker's built-in drivers do, so that an
// endpoint that never joins leaves no link), the link's removal at DeleteEndpoint.
import { MacnetError } from '../errors';
import type { Kernel } from '../kernel';
import type { Logger } from '../log';
import { cidrContains, parseCidr } from '../types/address';
import { MAC_SIGNATURE, macFirstOctet, signedMac } from '../types/mac';
import type { NetworkConfig } from './network-config';
import { type StaticRoute, kindOf } from './kinds';
import type { DriverState, EndpointRecord } from './state';

/**
 * Endpoint links are named from the endpoint id: unique per host (ids are random 256-bit), found again after a
 * restart without a lookup table, and recognisable when reconciling. 'mn' + 11 hex = 13 of 15 characters.
 */
export const ENDPOINT_LINK_PATTERN = /^mn[0-9a-f]{11}$/;
export const endpointLinkName = (endpointId: string): string => `mn${endpointId.slice(0, 11).toLowerCase()}`;

export { MAC_SIGNATURE } from '../types/mac';

/** A random MAC with macnet's signature as first octet. */
export const randomMac = (): string => signedMac(MAC_SIGNATURE);

/**
 * -o mac=stable: a locally administered unicast MAC from the network and the container's identity (its name
 * when the engine sends it, otherwise its address), so that a re-created container keeps its MAC and DHCP
 * reservations, switch port security and neighbours' caches stay right.
 */
export const stableMac = (networkId: string, identity: string): string =>
  signedMac(MAC_SIGNATURE, `macnet|${networkId}|${identity}`);

export interface CreateEndpointInput {
  networkId: string;
  endpointId: string;
  address?: string;
  addressIPv6?: string;
  macAddress?: string;
  /** The container's name, when known (macnet's IPAM got it from the engine): for -o mac=stable. */
  name?: string;
  /** `--driver-opt com.docker.network.endpoint.ifname=NAME` (in CreateEndpoint's Options from Docker 20.10 on). */
  ifname?: string;
}

/** The endpoint option that names the container's interface (Docker's built-in drivers honour it from v28). */
export const IFNAME_OPTION = 'com.docker.network.endpoint.ifname';

/**
 * The Join prefix that gives the interface the name the user asked for. Docker's plugin API carries no interface
 * name: dockerd names a plugin's interface DstPrefix + a counter per prefix and container that starts at 0
 * (libnetwork's remote driver passes no name to osl AddInterface; Docker 28 and 29 alike). So a name that ends in
 * a single 0 after a non-digit (lan0, iot0, eth-mgmt0) comes out exactly; any other name cannot, and is refused
 * before anything exists rather than silently renamed.
 */
export function ifnamePrefix(name: unknown): string {
  const valid =
    'a Linux interface name of at most 15 bytes that ends in 0 after a letter or "-", such as lan0 or iot0 ' +
    "(Docker gives a plugin's interface a prefix and numbers it from 0; it cannot take any other name)";
  const shown = JSON.stringify(String(name).slice(0, 40));
  if (typeof name !== 'string' || Buffer.byteLength(name) > 15 || !/^[A-Za-z0-9_.-]*[A-Za-z_.-]0$/.test(name)) {
    throw new MacnetError('ENDPOINT_INVALID', `--driver-opt ${IFNAME_OPTION}=${shown.slice(1, -1)}: give ${valid}`, {
      option: IFNAME_OPTION,
      value: String(name).slice(0, 40),
    });
  }
  return name.slice(0, -1);
}

export async function createEndpoint(
  state: DriverState,
  c: NetworkConfig,
  input: CreateEndpointInput,
  log: Logger,
): Promise<EndpointRecord> {
  if (!/^[0-9a-f]{12,}$/i.test(input.endpointId)) {
    throw new MacnetError(
      'PLUGIN_REQUEST_INVALID',
      `CreateEndpoint: EndpointID ${JSON.stringify(input.endpointId)} is not a Docker endpoint id`,
      {},
    );
  }
  const existing = await state.endpoint(input.networkId, input.endpointId);
  if (existing) return existing;
  const dstPrefix = input.ifname === undefined ? undefined : ifnamePrefix(input.ifname);
  let mac: string | undefined;
  if (input.macAddress) {
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(input.macAddress)) {
      throw new MacnetError(
        'ENDPOINT_INVALID',
        `--mac-address ${JSON.stringify(input.macAddress)} is not ` +
          'a MAC address: use six hex pairs such as 02:42:c6:12:0f:05',
        { option: 'mac-address', value: input.macAddress },
      );
    }
    if (macFirstOctet(input.macAddress) & 1) {
      throw new MacnetError(
        'ENDPOINT_INVALID',
        `--mac-address ${input.macAddress} is a multicast address: a container ` +
          'needs a unicast MAC (first octet even), e.g. 02:42:c6:12:0f:05',
        { option: 'mac-address', value: input.macAddress },
      );
    }
    mac = input.macAddress.toLowerCase();
  }
  const source = kindOf(c).macSource(c);
  if (source === 'parent') {
    if (mac)
      log.warn(`${c.kind} endpoints use the parent's MAC: --mac-address ignored`, { endpoint: input.endpointId, mac });
    mac = undefined;
  } else if (!mac && source === 'own') {
    const identity = input.name
      ? `name:${input.name}`
      : input.address
        ? `ip:${parseCidr(input.address).address}`
        : input.addressIPv6
          ? `ip:${parseCidr(input.addressIPv6).address}`
          : undefined;
    if (c.mac === 'stable' && identity) mac = stableMac(c.id, identity);
    else {
      if (c.mac === 'stable')
        log.warn(
          'mac=stable: the endpoint has neither a name nor an address to derive a MAC from; a random one is used',
          { endpoint: input.endpointId },
        );
      mac = randomMac();
    }
  }
  for (const [addr, fam] of [
    [input.address, 4],
    [input.addressIPv6, 6],
  ] as const) {
    if (!addr) continue;
    let ip: string;
    try {
      const p = parseCidr(addr);
      if (p.family !== fam) throw new Error('family');
      ip = p.address;
    } catch {
      throw new MacnetError(
        'ENDPOINT_INVALID',
        `endpoint address ${JSON.stringify(addr)} is not an IPv${fam} address in CIDR form`,
        { value: addr },
      );
    }
    if (!c.subnets.some((s) => s.family === fam && cidrContains(s.subnet, ip))) {
      throw new MacnetError(
        'ENDPOINT_INVALID',
        `endpoint address ${ip} is in none of the network's IPv${fam} subnets (${
          c.subnets
            .filter((s) => s.family === fam)
            .map((s) => s.subnet)
            .join(', ') || 'none'
        })`,
        { value: addr },
      );
    }
  }
  const rec: EndpointRecord = {
    networkId: input.networkId,
    endpointId: input.endpointId,
    linkName: endpointLinkName(input.endpointId),
    ...(mac && { mac }),
    ...(input.address && { ipv4: input.address }),
    ...(input.addressIPv6 && { ipv6: input.addressIPv6 }),
    ...(dstPrefix && { dstPrefix }),
  };
  await state.putEndpoint(rec);
  return rec;
}

export interface JoinResult {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: StaticRoute[];
  DisableGatewayService: boolean;
}

/** Creates the endpoint's link on the parent, in the host namespace; dockerd moves it into the container. */
export async function joinEndpoint(
  k: Kernel,
  state: DriverState,
  c: NetworkConfig,
  ep: EndpointRecord,
  sandboxKey: string,
  log: Logger,
): Promise<JoinResult> {
  const kind = kindOf(c);
  const spec = kind.childSpec(c, ep.linkName, ep.mac);
  const withMtu = c.mtu !== undefined ? { ...spec, mtu: c.mtu } : spec;
  try {
    await k.links.create(withMtu);
  } catch (e) {
    // A link of this name can only be a leftover of this endpoint (an earlier Join that crashed before
    // answering, or a container that died without Leave): replace it.
    if ((e as { errno?: string }).errno !== 'EEXIST') throw e;
    log.warn('replacing a leftover endpoint link', { link: ep.linkName });
    await k.links.deleteIfExists(ep.linkName);
    await k.links.create(withMtu);
  }
  await state.putEndpoint({ ...ep, sandboxKey });
  const res: JoinResult = {
    InterfaceName: { SrcName: ep.linkName, DstPrefix: ep.dstPrefix ?? 'eth' },
    DisableGatewayService: true,
  };
  const routed = kind.joinRoutes(c, ep);
  if (routed) return { ...res, ...routed };
  if (c.internal) return res;
  const gw = (addr: string | undefined, fam: 4 | 6) => {
    if (!addr) return undefined;
    const ip = parseCidr(addr).address;
    const g = c.subnets.find((s) => s.family === fam && cidrContains(s.subnet, ip))?.gateway;
    // On a point-to-point subnet the "gateway" may be this endpoint's own address: no route via oneself.
    return g === ip ? undefined : g;
  };
  const g4 = gw(ep.ipv4, 4);
  const g6 = gw(ep.ipv6, 6);
  if (g4) res.Gateway = g4;
  if (g6) res.GatewayIPv6 = g6;
  return res;
}

/** Idempotent: the link (if still in the host namespace) and the record go. */
/**
 * Forgets the endpoint and returns the name of its link, which the caller deletes (in the background: see
 * NetworkDriver.deleteEndpoint). The record goes first: a link without a record is removed at the next start.
 */
export async function forgetEndpoint(state: DriverState, networkId: string, endpointId: string): Promise<string> {
  const ep = await state.endpoint(networkId, endpointId);
  await state.deleteEndpoint(networkId, endpointId);
  return ep?.linkName ?? endpointLinkName(endpointId);
}
