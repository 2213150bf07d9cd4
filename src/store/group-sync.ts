// Group commit for the SQLite store: makes committed transactions durable with one fsync for many of them, off
// the event loop.
//
// The store commits with synchronous=NORMAL (sqlite.ts): a commit appends its frames to the WAL with write() and
// returns, durable against a crash of the process but not against power loss. A caller that must not answer
// before its writes survive a power cut (an allocation before dockerd learns it) then asks for sync(): one
// fdatasync of the WAL file covers every commit whose write() returned before it started, so all syncs asked for
// while one runs share the next. No window or timer: a lone caller waits for one fsync, a burst of callers
// shares one per fsync time. The fsync runs on libuv's thread pool (fs.fdatasync), so the event loop keeps
// serving meanwhile.
//
// Why syncing the WAL file alone suffices: SQLite's WAL recovery replays every frame up to the last valid
// commit frame, and frames are only ever appended or, after a checkpoint that has synced the database file
// (synchronous=NORMAL does that), rewritten from the start of the file; an fsync of the WAL therefore makes
// every commit made before it recoverable. The file descriptor is our own, on the -wal file only: SQLite keeps
// its POSIX locks on the database and -shm files, which closing another descriptor of those would drop.
import * as fs from 'node:fs';

interface Waiter {
  /** The write count the caller's writes are covered by. */
  readonly upTo: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export class GroupSync {
  /** fsyncs done so far; with `writes`, how many commits each covered (tests and the bench read them). */
  fsyncs = 0;
  /** Commits counted by wrote(). */
  writes = 0;
  private synced = 0;
  private running: Promise<void> | undefined;
  private waiters: Waiter[] = [];
  /**
   * Once an fsync failed, the kernel may have dropped the dirty pages it could not write (and a later fsync of
   * the same file can succeed without them): nothing written through this descriptor is known durable any more.
   */
  private failure: Error | undefined;

  constructor(private readonly fd: number) {}

  /** Counts a commit: called right after each transaction that wrote. */
  wrote(): void {
    this.writes++;
  }

  /** Resolves once every commit counted before the call is on disk; one fsync serves every caller waiting. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.synced >= this.writes) return Promise.resolve();
    const upTo = this.writes;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ upTo, resolve, reject });
      this.start();
    });
  }

  private start(): void {
    if (this.running || this.waiters.length === 0) return;
    // Every commit counted so far has returned from write(): the fsync below starts after all of them.
    const upTo = this.writes;
    this.running = new Promise<void>((done) => {
      fs.fdatasync(this.fd, (err) => {
        this.running = undefined;
        this.fsyncs++;
        if (err) {
          this.failure = err;
          const all = this.waiters;
          this.waiters = [];
          for (const w of all) w.reject(err);
        } else {
          this.synced = upTo;
          const ready = this.waiters.filter((w) => w.upTo <= upTo);
          this.waiters = this.waiters.filter((w) => w.upTo > upTo);
          for (const w of ready) w.resolve();
        }
        done();
        this.start(); // the callers that arrived during this fsync
      });
    });
  }

  /** Waits for the fsync in flight (its callers get their answer), then closes the descriptor. */
  async close(): Promise<void> {
    while (this.running) await this.running;
    fs.closeSync(this.fd);
  }
}
