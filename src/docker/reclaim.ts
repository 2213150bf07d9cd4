// Addresses a crash left allocated. When macnet dies while a RequestAddress is in flight (after the allocation
// is stored, before the answer), dockerd re-sends the call with an empty body (moby/moby#39331), never learns
// the address and so never releases it. Such an address is held by no endpoint, and it was allocated by an
// earlier daemon. Some time after start (dockerd has finished its retries by then), macnet looks for
// addresses that were allocated before this start and that no endpoint, gateway or aux address of its networks
// uses. It looks twice, `confirmMs` apart, and gives back only those found both times.
//
// Only subnets whose every pool reference belongs to one of macnet's networks are looked at: a pool shared
// with another driver's network (-d macvlan --ipam-driver macnet) has endpoints this daemon cannot see, and a
// network being created or removed has its pool and its driver record out of step for a moment.
import type { NetworkDriver } from '../drivers/driver';
import type { Ipam } from '../ipam/ipam';
import { formatAddress, parseAddress, parseCidrBig } from '../types/address';
import type { Logger } from '../log';

export interface ReclaimDeps {
  readonly ipam: Pick<Ipam, 'inheritedAllocations' | 'reclaim'>;
  readonly driver: Pick<NetworkDriver, 'subnetUse'>;
  readonly log: Logger;
}

interface Orphan {
  readonly space: string;
  readonly subnet: string;
  readonly address: string;
}

/** The second look's delay: an endpoint being removed right now has its address released within it. */
export const RECLAIM_CONFIRM_MS = 15_000;

const keyOf = (o: Orphan) => `${o.space}|${o.subnet}|${o.address}`;
const sameSubnet = (a: string, b: string) => parseCidrBig(a).subnet.text === parseCidrBig(b).subnet.text;
const canonical = (ip: string) => {
  const a = parseAddress(ip);
  return formatAddress(a.value, a.family);
};

/** Allocated before this start, on a subnet only macnet's networks use, and used by none of them. */
export async function findOrphans(d: ReclaimDeps, only?: { space: string; subnet: string }): Promise<Orphan[]> {
  const out: Orphan[] = [];
  for (const g of await d.ipam.inheritedAllocations()) {
    if (only && (only.space !== g.space || only.subnet !== g.subnet)) continue;
    const use = await d.driver.subnetUse(g.subnet, sameSubnet);
    if (use.networks === 0 || use.networks !== g.refs) continue;
    const used = new Set([...use.addresses].map(canonical));
    for (const address of g.addresses) if (!used.has(address)) out.push({ space: g.space, subnet: g.subnet, address });
  }
  return out;
}

/** Two looks `confirmMs` apart; gives back what both found. Returns the addresses given back. */
export async function reclaimOrphans(d: ReclaimDeps, confirmMs: number, signal?: AbortSignal): Promise<string[]> {
  const first = await findOrphans(d);
  if (first.length > 0) await sleep(confirmMs, signal);
  if (signal?.aborted) return [];
  const again = new Set((await findOrphans(d)).map(keyOf));
  const given: string[] = [];
  for (const o of first) {
    if (!again.has(keyOf(o))) continue;
    const still = async () => (await findOrphans(d, o)).some((x) => x.address === o.address);
    if (await d.ipam.reclaim(o.space, o.subnet, o.address, still)) {
      given.push(o.address);
      d.log.warn(
        'gave back an address no container uses: a docker command ' +
          'was interrupted by a macnet restart (moby/moby#39331)',
        { address: o.address, subnet: o.subnet },
      );
    }
  }
  d.log.info('looked for addresses left allocated by a crash', { candidates: first.length, gaveBack: given.length });
  return given;
}

/** Runs reclaimOrphans once, `afterMs` after now (0: never). Returns a stop function. */
export function scheduleReclaim(d: ReclaimDeps, afterMs: number, confirmMs: number): () => void {
  if (afterMs <= 0) return () => undefined;
  const stop = new AbortController();
  const timer = setTimeout(() => {
    reclaimOrphans(d, confirmMs, stop.signal).catch((e: unknown) =>
      d.log.error('could not look for addresses left by a crash', { error: e }),
    );
  }, afterMs);
  timer.unref();
  return () => {
    clearTimeout(timer);
    stop.abort();
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (the daemon is stopping). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
