// Sticky records are bounded (docs/ipam.md, "Sticky addresses"): an address is remembered for the last name
// that had it only (an older name's record would point at an address that is someone else's by now), and a
// subnet keeps at most MAX_STICKY_PER_SUBNET records, the oldest dropped first (IPv6 next-fit rarely repeats
// an address, so the first rule alone would not bound a /64). Without this, 30k container runs under fresh
// names left 10,000 rows behind.
import type { Entry } from '../store/types';

export const MAX_STICKY_PER_SUBNET = 4096;

/** ipam/sticky/<space>/<subnet>/ of a record's key. */
export const prefixOf = (key: string): string => key.slice(0, key.lastIndexOf('/') + 1);

/**
 * At load: the records to keep, oldest first (by revision), and those to drop by the same two rules; a store
 * written by a macnet without pruning is bounded at its next start.
 */
export function pruneAtLoad(
  entries: readonly Entry[],
  addressOf: (e: Entry) => string | undefined,
): { keep: Entry[]; drop: string[] } {
  const newestFirst = [...entries].sort((a, b) => b.revision - a.revision);
  const seen = new Set<string>();
  const perPrefix = new Map<string, number>();
  const keep: Entry[] = [];
  const drop: string[] = [];
  for (const e of newestFirst) {
    const prefix = prefixOf(e.key);
    const a = addressOf(e);
    const n = perPrefix.get(prefix) ?? 0;
    if (a === undefined || seen.has(`${prefix}${a}`) || n >= MAX_STICKY_PER_SUBNET) {
      drop.push(e.key);
      continue;
    }
    seen.add(`${prefix}${a}`);
    perPrefix.set(prefix, n + 1);
    keep.push(e);
  }
  return { keep: keep.reverse(), drop };
}
