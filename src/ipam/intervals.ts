// A set of bigints kept as sorted, disjoint, non-adjacent closed intervals: the in-memory index of the taken
// addresses of one subnet. Allocation hands out the lowest free addresses, in ascending runs, so a /16 full of
// containers is usually one or a few intervals, and "first free address at or after x" is one binary search
// (O(log n)) instead of a walk over taken addresses. An IPv6 /64 cannot be a bitmap; this works for both.

export class IntervalSet {
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];
  private members = 0n;

  /** How many values are in the set. */
  get size(): bigint {
    return this.members;
  }

  /** How many intervals the set is made of (for tests and the benchmark's memory figure). */
  get intervalCount(): number {
    return this.starts.length;
  }

  /** Index of the last interval starting at or before `x`, or -1. */
  private find(x: bigint): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= x) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  has(x: bigint): boolean {
    const i = this.find(x);
    return i >= 0 && this.ends[i]! >= x;
  }

  /** Adds `x`; false if it was already there. */
  add(x: bigint): boolean {
    const i = this.find(x);
    if (i >= 0 && this.ends[i]! >= x) return false;
    const joinsLeft = i >= 0 && this.ends[i]! === x - 1n;
    const joinsRight = i + 1 < this.starts.length && this.starts[i + 1]! === x + 1n;
    if (joinsLeft && joinsRight) {
      this.ends[i] = this.ends[i + 1]!;
      this.starts.splice(i + 1, 1);
      this.ends.splice(i + 1, 1);
    } else if (joinsLeft) {
      this.ends[i] = x;
    } else if (joinsRight) {
      this.starts[i + 1] = x;
    } else {
      this.starts.splice(i + 1, 0, x);
      this.ends.splice(i + 1, 0, x);
    }
    this.members++;
    return true;
  }

  /** Removes `x`; false if it was not there. */
  delete(x: bigint): boolean {
    const i = this.find(x);
    if (i < 0 || this.ends[i]! < x) return false;
    const s = this.starts[i]!;
    const e = this.ends[i]!;
    if (s === e) {
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    } else if (x === s) {
      this.starts[i] = x + 1n;
    } else if (x === e) {
      this.ends[i] = x - 1n;
    } else {
      this.ends[i] = x - 1n;
      this.starts.splice(i + 1, 0, x + 1n);
      this.ends.splice(i + 1, 0, e);
    }
    this.members--;
    return true;
  }

  /** The smallest value in [from, to] that is not in the set, or undefined if all are. */
  firstFree(from: bigint, to: bigint): bigint | undefined {
    if (from > to) return undefined;
    const i = this.find(from);
    // Intervals never touch, so the value right after the one covering `from` is free.
    const v = i >= 0 && this.ends[i]! >= from ? this.ends[i]! + 1n : from;
    return v <= to ? v : undefined;
  }

  /** The values of [from, to] that are not in the set, ascending (lazily: a /64 has 2^64 of them). */
  *free(from: bigint, to: bigint): IterableIterator<bigint> {
    for (let v = this.firstFree(from, to); v !== undefined; v = v < to ? this.firstFree(v + 1n, to) : undefined) {
      yield v;
    }
  }

  /** How many values of [from, to] are in the set. */
  countIn(from: bigint, to: bigint): bigint {
    let n = 0n;
    for (let i = Math.max(0, this.find(from)); i < this.starts.length && this.starts[i]! <= to; i++) {
      const s = this.starts[i]! > from ? this.starts[i]! : from;
      const e = this.ends[i]! < to ? this.ends[i]! : to;
      if (e >= s) n += e - s + 1n;
    }
    return n;
  }

  /** The intervals in ascending order, as [start, end] pairs. */
  *intervals(): IterableIterator<[bigint, bigint]> {
    for (let i = 0; i < this.starts.length; i++) yield [this.starts[i]!, this.ends[i]!];
  }
}
