// Watches of a store that only this process writes (SQLite, memory): each committed transaction's changes are
// handed to the watches whose prefix they touch, after the commit, in commit order.
import type { Change, StoreWatch, WatchHandlers } from './types';

interface Registered {
  readonly prefix: string;
  readonly handlers: WatchHandlers;
}

export class Watchers {
  private readonly list = new Set<Registered>();

  /** Whether a write of `key` would be seen: the store looks at what a txn changes only then. */
  wants(key: string): boolean {
    for (const w of this.list) if (key.startsWith(w.prefix)) return true;
    return false;
  }

  get empty(): boolean {
    return this.list.size === 0;
  }

  add(prefix: string, handlers: WatchHandlers): StoreWatch {
    const w = { prefix, handlers };
    this.list.add(w);
    return { close: async () => void this.list.delete(w) };
  }

  /**
   * Delivers on the next turn of the event loop, never inside the writer's call: a watcher that writes back
   * must not run inside the store's transaction or its caller's lock.
   */
  notify(changes: readonly Change[]): void {
    if (changes.length === 0 || this.list.size === 0) return;
    const targets = [...this.list];
    setImmediate(() => {
      for (const w of targets) {
        if (!this.list.has(w)) continue;
        const mine = changes.filter((c) => c.key.startsWith(w.prefix));
        if (mine.length > 0) w.handlers.onChanges(mine);
      }
    });
  }

  clear(): void {
    this.list.clear();
  }
}
