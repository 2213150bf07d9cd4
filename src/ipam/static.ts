// A static address (--ip, --ip6) before it is reserved: the LAN is asked whether something already answers for it.
import { fail } from '../errors';
import type { Store } from '../store/types';
import { formatAddress } from '../types/address';
import type { IpamLan } from './lan-probe';
import { addressKey } from './keys';
import { isProbeLinkMac } from '../types/mac';
import type { Pool } from './pool-table';

/**
 * Whether the LAN found `v` free (then it is warm again when released). The gateway is the LAN's router and answers
 * by design, so callers ask only for other static addresses. (Aux addresses are requested before the network
 * exists, when no LAN is known: they are not probed.) An address macnet itself has allocated is
 * IPAM_ADDRESS_IN_USE (from reserve, naming its holder), not a LAN conflict: its holder is one of our containers
 * and would answer the probe. Throws ADDRESS_CONFLICT when something answers, unless the network says
 * conflict=warn.
 */
export async function checkStatic(store: Store, lan: IpamLan | undefined, live: Pool, v: bigint): Promise<boolean> {
  const ip = formatAddress(v, live.subnet.family);
  if (!lan || (await store.get(addressKey(live.space, live.subnet, ip)))) return false;
  const found = await lan.inUse(live.subnet.text, [ip]);
  const h = found?.get(ip);
  // A macnet probe link (another host's, on a shared store) answers for an address it keeps warm for its next
  // start, or probes it right now: it is not using it, and the store's record, created atomically below, decides
  // between the hosts. Refusing would make a free address unusable with --ip for as long as some host keeps it warm.
  if (h && isProbeLinkMac(h.mac)) return false;
  if (h && (await lan.conflictPolicy(live.subnet.text)) === 'refuse') {
    throw fail('ADDRESS_CONFLICT', { address: ip, mac: h.mac, reason: h.reason, subnet: live.subnet.text });
  }
  return found !== undefined && !h;
}
