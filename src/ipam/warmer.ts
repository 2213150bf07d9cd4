// Keeps each pool's warm set (warm.ts) topped up in the background: after every dynamic allocation, and every
// WARM_REPROBE_MS while the pool lives, so that a container start does not wait on a probe window. One refill
// per pool at a time; a request during one runs another after it. The addresses found free are defended on
// the LAN (`defend`) until they are handed out or run out.
import type { DynamicRange, ProbeCandidates, SubnetIndex } from './allocator';
import { WARM_REPROBE_MS } from './warm';

/** What a refill of one pool needs; undefined when the pool is gone or nothing is probed. */
export interface WarmTarget {
  readonly range: DynamicRange;
  readonly index: SubnetIndex;
  readonly probe: ProbeCandidates;
  defend(v: bigint): void;
}

export class Warmer {
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly target: (poolId: string) => WarmTarget | undefined) {}

  /** Refills the pool's warm set soon (now, or after the refill that runs). */
  kick(poolId: string): void {
    const t = this.target(poolId);
    if (!t) return;
    if (this.running.has(poolId)) {
      this.again.add(poolId);
      return;
    }
    this.running.add(poolId);
    void t.index
      .refill(t.range, t.probe)
      .then(() => {
        // Every fresh one, not only those verified now: a defence runs out unless renewed (src/lan/lan.ts).
        for (const v of t.index.warm.addresses()) if (v >= t.range.lo && v <= t.range.hi) t.defend(v);
      })
      .catch(() => undefined) // a failed probe only leaves the set cold: the next start probes itself
      .finally(() => {
        this.running.delete(poolId);
        if (this.again.delete(poolId)) this.kick(poolId);
        if (!this.timers.has(poolId)) {
          this.timers.set(
            poolId,
            setInterval(() => {
              if (this.target(poolId)) this.kick(poolId);
              else {
                clearInterval(this.timers.get(poolId));
                this.timers.delete(poolId);
              }
            }, WARM_REPROBE_MS).unref(),
          );
        }
      });
  }

  close(): void {
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
  }
}
