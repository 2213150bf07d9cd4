// The warm set of a subnet: addresses known to be free on the LAN right now, so that a container start takes
// one without waiting on a probe window (docs/lan.md). An address gets there two ways:
// - a probe found it free (a refill, or the other free candidates of a start's probe batch);
// - macnet released it: its container answered for it until a moment ago, so nothing else on the LAN did, and
//   nobody else may take it meanwhile (the probe link defends it, src/lan/lan.ts). A restarted container
//   (dockerd releases the address at stop and asks again at start) gets its own address back without a probe.
// Both count for WARM_TTL_MS. The set is per subnet, not per pool: what the LAN says about an address does
// not depend on the ip-range it was asked through.

/** How many of the lowest free addresses of a pool a refill keeps verified. */
export const WARM_SIZE = 3;
/** How long a verification counts; the addresses are defended meanwhile. */
export const WARM_TTL_MS = 20_000;
/** A refill probes an address again once its verification is this old, before it runs out. */
export const WARM_REPROBE_MS = WARM_TTL_MS / 2;

export class WarmSet {
  /** Address → when it was verified (ms epoch). */
  private readonly at = new Map<bigint, number>();

  /** Verified free within the last WARM_TTL_MS. */
  fresh(v: bigint, now = Date.now()): boolean {
    return now - (this.at.get(v) ?? -Infinity) < WARM_TTL_MS;
  }

  /** Verified long enough ago (or never) that a refill should probe it again. */
  due(v: bigint, now = Date.now()): boolean {
    return now - (this.at.get(v) ?? -Infinity) >= WARM_REPROBE_MS;
  }

  verified(v: bigint, at = Date.now()): void {
    this.at.set(v, at);
  }

  /** Taken (or found in use): not warm any more. */
  forget(v: bigint): void {
    this.at.delete(v);
  }

  /** Drops what ran out or what `taken` says is no longer free. */
  prune(taken: (v: bigint) => boolean, now = Date.now()): void {
    for (const v of this.at.keys()) if (!this.fresh(v, now) || taken(v)) this.at.delete(v);
  }

  /** The fresh addresses, ascending. */
  addresses(now = Date.now()): bigint[] {
    return [...this.at.keys()].filter((v) => this.fresh(v, now)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
