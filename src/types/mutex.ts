// Serialisation inside the process, per key (KeyedMutex) or for one object (Mutex). dockerd calls the plugin
// concurrently (several containers starting at once); the IPAM's in-memory index and warm set of a subnet must see
// one operation at a time while different subnets proceed independently, and the driver runs one call at a time.

export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, number>();

  /** Callers of `run` with this key that wait behind the one running (0 when idle or only one runs). */
  waiting(key: string): number {
    return this.queued.get(key) ?? 0;
  }

  /** Runs `fn` after every earlier `run` with the same key has settled; FIFO per key. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    // `mine` never rejects, so the chain never carries an earlier caller's error into a later one.
    const tail = prev ? prev.then(() => mine) : mine;
    this.tails.set(key, tail);
    try {
      if (prev) {
        this.queued.set(key, (this.queued.get(key) ?? 0) + 1);
        try {
          await prev;
        } finally {
          const n = (this.queued.get(key) ?? 1) - 1;
          if (n > 0) this.queued.set(key, n);
          else this.queued.delete(key);
        }
      }
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with an operation running or queued (for tests: empty when idle). */
  get busyKeys(): string[] {
    return [...this.tails.keys()];
  }
}

/** One queue: operations run one at a time, in call order; a failed one does not stop those behind it. */
export class Mutex {
  private readonly m = new KeyedMutex();
  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.m.run('', fn);
  }
}
