// Keeps the WAL short without syncing on the event loop. The store turns SQLite's automatic checkpoint off (it
// runs inside a commit and fsyncs the WAL and the database file there, on the daemon's thread) and asks this
// for a checkpoint every CHECKPOINT_EVERY commits instead; a worker thread with its own connection runs it
// (checkpoint-worker.ts), started at the first request, so a short-lived store (the CLI, a test) starts none.
//
// A checkpoint only lets the WAL start over from its beginning when it has copied every frame: the next writer
// then restarts it. Under a steady stream of allocations a passive checkpoint never gets there (frames arrive
// while it copies), and the WAL grew until the disk was full (seen in the power-cut test's VM). So each
// checkpoint runs twice: once while writes go on, copying nearly everything, then again with the store's writes
// held back (`exclusive`), copying the few frames written meanwhile and starting the WAL over; the pause is that
// short copy and two fsyncs (the database file, the new WAL header), and the event loop is free throughout (the
// writes wait in the store's queue).
//
// Should the worker fail, checkpoints run on the caller's connection: the event loop then stalls for their
// fsyncs, which is better than a WAL that grows without bound.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CheckpointReply } from './checkpoint-worker';

/** Commits between checkpoints: an allocation writes about three pages, so near SQLite's default of 1000 pages. */
export const CHECKPOINT_EVERY = 300;
/**
 * A worker idle this long is stopped (and started again at the next request): a thread is a V8 isolate and a
 * connection of its own, about 8 MB of resident memory that an idle daemon should not keep (bench "footprint").
 */
export const WORKER_IDLE_MS = 1000;

export class Checkpointer {
  private worker: Worker | undefined;
  private running = false;
  private again = false;
  private broken = false;
  private closed = false;
  private idle: NodeJS.Timeout | undefined;
  /** Checkpoints done and the last one's WAL frames (for tests). */
  done = 0;
  last: CheckpointReply | undefined;

  /**
   * `inline` runs a checkpoint on the store's own connection: the fallback when the worker is unusable.
   * `exclusive` runs its argument with the store's writes held back until it settles.
   */
  constructor(
    private readonly file: string,
    private readonly inline: () => void,
    private readonly exclusive: (run: () => Promise<void>) => Promise<void>,
  ) {}

  private reply: ((r: CheckpointReply) => void) | undefined;

  /** One checkpoint by the worker ('restart': and the write that starts the WAL over, checkpoint-worker.ts). */
  private ask(what: 'checkpoint' | 'restart'): Promise<CheckpointReply> {
    clearTimeout(this.idle);
    return new Promise((resolve) => {
      this.reply = resolve;
      this.start().postMessage(what);
    });
  }

  /** Asks for a checkpoint; one runs at a time, and a request during one runs another after it. */
  request(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.broken) {
      this.runInline();
      return;
    }
    this.running = true;
    void this.twice().then(
      () => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.request();
        } else {
          this.idle = setTimeout(() => this.retire(), WORKER_IDLE_MS).unref();
        }
      },
      () => this.fail(),
    );
  }

  /** Copies nearly everything while writes go on, then the rest with writes held back (see the top). */
  private async twice(): Promise<void> {
    const first = await this.ask('checkpoint');
    if (first.error) throw new Error(first.error);
    if (this.closed) return;
    let second: CheckpointReply | undefined;
    await this.exclusive(async () => {
      if (!this.closed) second = await this.ask('restart');
    });
    if (second?.error) throw new Error(second.error);
    if (second) {
      this.last = second;
      this.done++;
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(path.join(__dirname, 'checkpoint-worker.js'), { workerData: { file: this.file } });
    w.unref(); // never what keeps the process alive
    w.on('message', (r: CheckpointReply) => {
      const reply = this.reply;
      this.reply = undefined;
      reply?.(r);
    });
    // A worker that dies answers whoever waits with an error: twice() then falls back (fail()).
    const died = (why: string) => {
      if (this.worker !== w) return; // retired, replaced or closed: nobody waits on this one
      this.worker = undefined;
      const reply = this.reply;
      this.reply = undefined;
      reply?.({ error: why });
    };
    w.on('error', (e) => died(e.message));
    w.on('exit', (code) => died(`the checkpoint thread exited (${code})`));
    return (this.worker = w);
  }

  /** Stops an idle worker; the next request starts another. */
  private retire(): void {
    const w = this.worker;
    if (this.running || !w) return;
    this.worker = undefined; // its exit is no failure: nobody waits on it
    w.postMessage('close');
  }

  private fail(): void {
    this.running = false;
    this.again = false;
    this.broken = true;
    void this.worker?.terminate();
    this.worker = undefined;
    if (!this.closed) this.runInline();
  }

  private runInline(): void {
    try {
      this.inline();
      this.done++;
    } catch {
      // SQLITE_BUSY (a reader or the CLI) and the like: the next request tries again.
    }
  }

  /** Stops the worker; a checkpoint in progress finishes first (SQLite cannot be interrupted mid-copy). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idle);
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    w.ref(); // until it has closed its connection
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.postMessage('close');
    });
  }
}
