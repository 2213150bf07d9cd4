// Every host's container names as the DNS answers them (src/dns/names.ts), kept from the store's name records
// through a watch (Store.watch): started before the first read, so nothing written in between is lost, and read
// again from scratch when the watch says it missed changes.
import type { Change, Store, StoreWatch } from '../store/types';
import { Names } from '../dns/names';
import { NAMES, readNameEntry } from './records';

export class NameView {
  readonly names = new Names();
  private watch: StoreWatch | undefined;
  private held: Change[] | undefined = [];

  constructor(private readonly store: Store) {}

  async start(): Promise<void> {
    this.watch = await this.store.watch(NAMES, {
      onChanges: (cs) => (this.held ? this.held.push(...cs) : this.apply(cs)),
      onReset: () => void this.load().catch(() => undefined),
    });
    await this.load();
  }

  async close(): Promise<void> {
    await this.watch?.close();
    this.watch = undefined;
  }

  private async load(): Promise<void> {
    this.held ??= [];
    const entries = await this.store.list(NAMES);
    this.names.clear();
    for (const e of entries) this.names.set(e.key, readNameEntry(e.key, e.value));
    const held = this.held;
    this.held = undefined;
    this.apply(held);
  }

  private apply(changes: readonly Change[]): void {
    for (const c of changes) this.names.set(c.key, c.type === 'put' ? readNameEntry(c.key, c.value) : undefined);
  }
}
