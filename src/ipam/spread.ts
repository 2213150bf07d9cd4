// Where a host's dynamic search starts on a store shared by several hosts (docs/cluster.md), and how it learns
// the other hosts' addresses when they meet. Lowest-free-first on every host makes the hosts that reserve at once
// race for the same lowest address: all but one lose the create, and a host that falls behind learns the others'
// addresses one lost create at a time (bench cluster: 1.5-1.9 lost creates per reservation, waits of 23 s). So
// each host starts at a point of the range of its own (a hash of its id, then a random point after it met
// another host's addresses), and a refused create reads the records around it in one range read.
import type { Store } from '../store/types';
import { parseAddress, usableRange, type Subnet } from '../types/address';
import type { IntervalSet } from './intervals';
import type { Holder } from '../lan';

/** The part of a pool the allocator needs: where dynamic addresses come from. */
export interface DynamicRange {
  readonly poolId: string;
  /** Lowest and highest address a dynamic allocation may return (range ∩ usable part of the subnet). */
  readonly lo: bigint;
  readonly hi: bigint;
  /** How the range is named in messages: "ip-range 198.18.4.0/22 of subnet 198.18.0.0/16". */
  readonly label: string;
}

/** Checks candidate addresses on the LAN; returns those in use. */
export type ProbeCandidates = (candidates: readonly bigint[]) => Promise<ReadonlyMap<bigint, Holder>>;

/** The bounds of dynamic allocation for a pool on `subnet` with the given ip-range (or none). */
export function dynamicBounds(subnet: Subnet, range: Subnet | undefined): { lo: bigint; hi: bigint } {
  const u = usableRange(subnet);
  const lo = range && range.base > u.first ? range.base : u.first;
  const hi = range && range.last < u.last ? range.last : u.last;
  return { lo, hi };
}

/** The start point of `host` as a fraction of the range: 0 without a host (one writer: lowest free first). */
export function hostSpread(host: string | undefined): number {
  if (host === undefined) return 0;
  // FNV-1a: stable across restarts and Node versions, so a host keeps its part of the range.
  let h = 0x811c9dc5;
  for (let i = 0; i < host.length; i++) h = Math.imul(h ^ host.charCodeAt(i), 0x01000193) >>> 0;
  return h / 2 ** 32;
}

/**
 * The first `n` free addresses of [lo, hi] in allocation order: ascending from the point `spread` of the range,
 * then from `lo` up to that point.
 */
export function freeFrom(taken: IntervalSet, lo: bigint, hi: bigint, spread: number, n: number): bigint[] {
  const start = spread === 0 ? lo : lo + ((hi - lo + 1n) * BigInt(Math.floor(spread * 2 ** 32))) / 2n ** 32n;
  if (n === 1) {
    // The common case (one allocation, no probe window), without the generators' garbage.
    const v = taken.firstFree(start, hi) ?? taken.firstFree(lo, start - 1n);
    return v === undefined ? [] : [v];
  }
  const out: bigint[] = [];
  for (const [from, to] of [
    [start, hi],
    [lo, start - 1n],
  ] as const) {
    if (from > to) continue;
    for (const v of taken.free(from, to)) {
      if (out.length >= n) return out;
      out.push(v);
    }
  }
  return out;
}

/**
 * Refused creates of address `keys`: returns those that exist, and adds to `taken` every address record around
 * them in the same read (each one's /24 for IPv4: one range read per block, not one lost create per address).
 */
export async function learnAround(
  store: Store,
  subnet: Subnet,
  taken: IntervalSet,
  keys: readonly string[],
): Promise<Set<string>> {
  const present = new Set<string>();
  const learn = (key: string) => {
    present.add(key);
    try {
      const a = parseAddress(key.slice(key.lastIndexOf('/') + 1));
      if (a.family === subnet.family && a.value >= subnet.base && a.value <= subnet.last) taken.add(a.value);
    } catch {
      /* no address key of this subnet */
    }
  };
  if (subnet.family === 4) {
    const blocks = new Set(keys.map((k) => k.slice(0, k.lastIndexOf('.') + 1)));
    for (const list of await Promise.all([...blocks].map((b) => store.list(b)))) for (const e of list) learn(e.key);
  } else {
    // An IPv6 text prefix is no block (zeros are compressed): the batch's own keys only.
    for (const e of await Promise.all(keys.map((k) => store.get(k)))) if (e) learn(e.key);
  }
  return present;
}
