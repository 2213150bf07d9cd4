// What macnet's networks on a subnet account for, asked by the start-up reclaim (src/docker/reclaim.ts): an IPAM
// allocation outside that set is held by no network of this host.
import { parseCidr } from '../types/address';
import type { DriverState } from './state';

/**
 * How many networks use `subnet` (as `same` matches subnet texts), and the addresses they use: gateways, aux
 * addresses, endpoints'.
 */
export async function subnetUse(
  state: DriverState,
  subnet: string,
  same: (a: string, b: string) => boolean,
): Promise<{ networks: number; addresses: Set<string> }> {
  const addresses = new Set<string>();
  let networks = 0;
  for (const n of await state.networks()) {
    const mine = n.config.subnets.filter((s) => same(s.subnet, subnet));
    if (mine.length === 0) continue;
    networks++;
    for (const s of mine) {
      if (s.gateway) addresses.add(s.gateway);
      for (const a of Object.values(s.auxAddresses)) addresses.add(a);
    }
    for (const ep of await state.endpoints(n.config.id))
      for (const a of [ep.ipv4, ep.ipv6]) if (a) addresses.add(parseCidr(a).address);
  }
  return { networks, addresses };
}
