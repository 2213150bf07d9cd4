// On a store shared by hosts (etcd, docs/cluster.md), each host's index of a subnet follows the other hosts'
// reservations and releases as they happen, through a watch on the address records (Store.watch), instead of
// learning them only when a reservation runs into one. Without it, an address another host released stayed
// "taken" here until this daemon restarted (fragmentation), and this host's first picks ran into the addresses the
// others took since its start (lost creates, each one more round trip to etcd).
//
// Every change is applied, this host's own too, in the order etcd applied them: the index then ends where the
// store is, key by key, whatever the interleaving with this host's own calls. The index stays a hint: a reservation
// is still a create-if-absent in the store, so an event that comes late can cost a retry, never a duplicate. The
// changes are applied at once, without the subnet's lock: each is one synchronous step on the index.
import type { Change, Store, StoreWatch } from '../store/types';
import { parseAddress } from '../types/address';
import { ADDRESSES, splitAddressKey, subnetAddressPrefix } from './keys';
import type { SubnetIndex } from './allocator';

export class Follower {
  private watch: StoreWatch | undefined;
  private closed = false;
  /** Changes that arrived while the indexes were being loaded: applied after the load, in order. */
  private buffered: Change[] | undefined = [];

  constructor(
    private readonly store: Store,
    /** The indexes as they are now (the table replaces them at load, adds and drops them with pools). */
    private readonly indexes: () => Iterable<SubnetIndex>,
  ) {}

  /** Starts the watch; changes are held until loaded() (a load started after this call sees the store's state). */
  async start(): Promise<void> {
    if (this.watch) return; // a load tried again after a failure: the watch (and its buffer) goes on
    const w = await this.store.watch(ADDRESSES, {
      onChanges: (cs) => (this.buffered ? this.buffered.push(...cs) : this.apply(cs)),
      onReset: () => void this.resync().catch(() => undefined),
    });
    if (this.closed) await w.close();
    else this.watch = w;
  }

  /** The indexes are loaded: what arrived meanwhile is applied now, in order, and then every change at once. */
  loaded(): void {
    const held = this.buffered ?? [];
    this.buffered = undefined;
    this.apply(held);
  }

  /**
   * A subnet this host did not have before (its first pool there): the records the other hosts hold on it now.
   * Changes after the watch started are applied too, so a record listed here and deleted meanwhile is gone again
   * once the delete's change is applied... unless the delete came before the list: then it stays (a hint too many).
   */
  async learn(index: SubnetIndex): Promise<void> {
    for (const e of await this.store.list(subnetAddressPrefix(index.space, index.subnet))) {
      const k = splitAddressKey(e.key);
      if (k) index.taken.add(parseAddress(k.address).value);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.watch;
    this.watch = undefined;
    await w?.close();
  }

  private apply(changes: readonly Change[]): void {
    if (changes.length === 0) return;
    const byPrefix = new Map<string, SubnetIndex>();
    for (const s of this.indexes()) byPrefix.set(subnetAddressPrefix(s.space, s.subnet), s);
    for (const c of changes) {
      const k = splitAddressKey(c.key);
      const s = k && byPrefix.get(k.prefix);
      if (!s || !k) continue;
      let v: bigint;
      try {
        v = parseAddress(k.address).value;
      } catch {
        continue; // not an address key macnet wrote
      }
      if (c.type === 'put') {
        s.taken.add(v);
        s.warm.forget(v);
      } else {
        s.taken.delete(v);
        s.inherited.delete(v);
      }
    }
  }

  /** Changes were missed: what the store holds now is taken (a release missed stays taken: a hint too many). */
  private async resync(): Promise<void> {
    for (const s of [...this.indexes()]) await this.learn(s);
  }
}
