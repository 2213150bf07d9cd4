// The IPAM's view of the LAN layer (src/lan), and the LAN check of a subnet in the allocator's terms.
import type { Holder, Lan } from '../lan';
import { formatAddress, type Subnet } from '../types/address';
import type { ProbeCandidates } from './allocator';

/**
 * What the IPAM asks of the LAN (src/lan): which candidates answer, whether a static address that answers is
 * refused, and which just-allocated addresses to defend. Addresses someone on the LAN already uses are never
 * handed out; a static one is refused unless the network says conflict=warn.
 */
export type IpamLan = Pick<Lan, 'inUse' | 'conflictPolicy' | 'claim'>;

/** The LAN check of `subnet` in the allocator's terms (bigint candidates); none without a LAN. */
export function lanProbe(lan: IpamLan | undefined, subnet: Subnet): ProbeCandidates | undefined {
  if (!lan) return undefined;
  return async (candidates) => {
    const texts = candidates.map((v) => formatAddress(v, subnet.family));
    const found = await lan.inUse(subnet.text, texts);
    const out = new Map<bigint, Holder>();
    candidates.forEach((v, i) => {
      const h = found?.get(texts[i]!);
      if (h) out.set(v, h);
    });
    return out;
  };
}
