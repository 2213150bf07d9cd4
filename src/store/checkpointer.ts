// Keeps the WAL short without syncing on the event loop. The store turns SQLite's automatic checkpoint off (it
// runs inside a commit and fsyncs the WAL and the database file there, on the daemon's thread) and asks this
// for a passive checkpoint every CHECKPOINT_EVERY commits instead; a worker thread with its own connection runs
// it (checkpoint-worker.ts), started at the first request, so a short-lived store (the CLI, a test) starts none.
// Should the worker fail, checkpoints run on the caller's connection: the event loop then stalls for their
// fsyncs, which is better than a WAL that grows without bound.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CheckpointReply } from './checkpoint-worker';

/** Commits between checkpoints: an allocation writes about three pages, so near SQLite's default of 1000 pages. */
export const CHECKPOINT_EVERY = 300;

export class Checkpointer {
  private worker: Worker | undefined;
  private running = false;
  private again = false;
  private broken = false;
  private closed = false;
  /** Checkpoints done and the last one's WAL frames (for tests). */
  done = 0;
  last: CheckpointReply | undefined;

  /** `inline` runs a checkpoint on the store's own connection: the fallback when the worker is unusable. */
  constructor(
    private readonly file: string,
    private readonly inline: () => void,
  ) {}

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
    try {
      this.start().postMessage('checkpoint');
    } catch {
      this.fail();
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(path.join(__dirname, 'checkpoint-worker.js'), { workerData: { file: this.file } });
    w.unref(); // never what keeps the process alive
    w.on('message', (r: CheckpointReply) => {
      this.running = false;
      this.last = r;
      if (r.error) this.fail();
      else this.done++;
      if (this.again) {
        this.again = false;
        this.request();
      }
    });
    w.on('error', () => this.fail());
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
      if (!this.closed && this.running) this.fail();
    });
    return (this.worker = w);
  }

  private fail(): void {
    this.running = false;
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
