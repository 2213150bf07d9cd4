// How long the allocator skips an address something on the LAN answered for (SubnetIndex.answered, allocator.ts).
import { PROBE_MAC_SIGNATURE, macFirstOctet } from '../types/mac';

/** How long an address that answered a probe is skipped before it is probed again. */
export const SKIP_MS = 10 * 60_000;
/**
 * How long an address that another macnet host's probe link answered for is skipped. That host found it free
 * moments ago: it hands it out within seconds (the container then answers itself, and the next probe holds
 * the address for SKIP_MS) or keeps it warm, or lets it go; the other free candidates of its probe batch are
 * defended for a few seconds too. A full SKIP_MS would keep those unused addresses from this host for ten
 * minutes.
 */
export const DEFENDED_SKIP_MS = 30_000;

/** How long an address `mac` answered for is skipped: a macnet probe link's MAC (src/types/mac.ts) gets less. */
export function skipMs(mac: string): number {
  return macFirstOctet(mac) === PROBE_MAC_SIGNATURE ? DEFENDED_SKIP_MS : SKIP_MS;
}
