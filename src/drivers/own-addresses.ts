// This host's containers' addresses, for a host of a cluster store coming back (src/docker/own-addresses.ts): the
// addresses its endpoints hold, by subnet, and taking a container off the LAN whose address is another host's now.
import { Kernel } from '../kernel';
import { cidrContains, parseCidr } from '../types/address';
import type { DriverState } from './state';

export interface OwnAddress {
  readonly networkId: string;
  readonly endpointId: string;
  /** The network's subnet (CIDR text) that holds it. */
  readonly subnet: string;
  readonly address: string;
}

/** Every address an endpoint of this host holds (gateways and aux addresses are the networks', not listed). */
export async function ownAddresses(state: DriverState): Promise<OwnAddress[]> {
  const out: OwnAddress[] = [];
  for (const n of await state.networks())
    for (const ep of await state.endpoints(n.config.id))
      for (const a of [ep.ipv4, ep.ipv6]) {
        if (!a) continue;
        const address = parseCidr(a).address;
        const s = n.config.subnets.find((x) => cidrContains(x.subnet, address));
        if (s) out.push({ networkId: n.config.id, endpointId: ep.endpointId, subnet: s.subnet, address });
      }
  return out;
}

/**
 * Sets the container's interface that holds `address` down, in its namespace: it stops answering for an address
 * that is another machine's now. Returns the interface's name, or undefined when the endpoint has no container
 * (not joined) or its namespace or interface is gone.
 */
export async function isolateEndpoint(
  state: DriverState,
  networkId: string,
  endpointId: string,
  address: string,
): Promise<string | undefined> {
  const ep = await state.endpoint(networkId, endpointId);
  if (!ep?.sandboxKey) return undefined;
  try {
    return await Kernel.with({ path: ep.sandboxKey }, async (k) => {
      const held = (await k.addresses.list()).find((a) => a.address === address);
      if (!held) return undefined;
      const link = (await k.links.list()).find((l) => l.index === held.index);
      await k.links.setDown(held.index);
      return link?.name ?? `index ${held.index}`;
    });
  } catch {
    return undefined; // the container went meanwhile
  }
}
