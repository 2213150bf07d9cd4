// Group commit of a subnet's dynamic reservations (issue 19). On etcd one reservation is one transaction through
// the quorum (1.5-5 ms); sent one at a time under the subnet's lock, 16 callers queued on a host wait 16 of them.
// So the allocator picks each caller's address under the lock, in memory only (marked taken: no two callers pick
// the same), and hands the create to this batcher outside the lock: the creates of every caller that picked
// meanwhile go to the store together, in ONE transaction of creates, each conditional on its key's absence (with
// each caller's sticky-name record). Up to TXNS_IN_FLIGHT transactions per subnet are in flight: a caller that
// picks while one is out goes in the next one at once instead of waiting a round trip for it (that wait was most
// of a reservation's p99 on etcd); the transactions after those collect meanwhile.
//
// A transaction is all or nothing, so a key another host created first refuses the whole batch: the keys that
// exist are found by one read (allocator.ts's `lost`, which also learns the other hosts' records around them),
// the callers whose address was lost pick again, and the others go in the next transaction with the addresses
// they have. Every address handed out has its own record before its caller answers dockerd.
import type { Store, TxnOp } from '../store/types';
import type { Outbox } from './outbox';

export interface Reservation {
  readonly v: bigint;
  /** The address key and record (keys.ts) created by the transaction. */
  readonly key: string;
  readonly value: string;
  /** The name's sticky record (sticky.ts): its key, put to the address text in the same transaction. */
  readonly remember?: { readonly key: string; readonly text: string };
}

/**
 * Reservations per transaction: each is up to two operations (the create and the sticky put), and etcd refuses a
 * transaction of more than 128 operations (--max-txn-ops' default), stale sticky deletes included.
 */
export const MAX_RESERVATIONS = 32;
const MAX_STALE = 32;
/**
 * Transactions of one subnet out at once. Two: the next batch need not wait for the one in flight; more would only
 * split the callers of one moment into more, smaller transactions, each a quorum round (etcd) or an fsync (SQLite).
 */
export const TXNS_IN_FLIGHT = 2;

interface Waiting {
  readonly r: Reservation;
  outcome?: Promise<boolean>;
  readonly done: (reserved: boolean) => void;
  readonly fail: (e: unknown) => void;
}

export class Batcher {
  private readonly queue: Waiting[] = [];
  /** Resolves when nothing is queued or in flight; set while something is. */
  private idle: Promise<void> | undefined;
  private becameIdle: (() => void) | undefined;
  /** The transactions in flight: each one's callers, and the stale sticky records it deletes. */
  private readonly sending = new Map<readonly Waiting[], readonly string[]>();
  /** A collecting turn is scheduled (run() waits one turn of the event loop before sending). */
  private turn = false;
  /**
   * Sticky records made stale by committed reservations (sticky-prune.ts), deleted by a later transaction, before
   * its own puts: a name whose old record went stale may be re-created in the very next batch, and its new record
   * must outlive the delete of the old one. Two transactions in flight may be applied in either order, so a key
   * deleted by one is never put by another in flight (pump() holds back the one that comes second).
   */
  private stale: string[] = [];
  /** A transaction of stale deletes alone was sent since the last submit (one per quiet spell: hints only). */
  private staleOnlySent = false;
  /** Transactions sent, and those refused because a key existed (for diagnosis: how often the hosts meet). */
  txns = 0;
  refused = 0;

  constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    /** The keys of `rs` that exist in the store now (their creates were refused); learns them into the index. */
    private readonly lost: (rs: readonly Reservation[]) => Promise<ReadonlySet<string>>,
    /** A reservation is in the store: the sticky records it makes stale (StickyNames.set), to delete. */
    private readonly committed: (r: Reservation) => readonly string[],
  ) {}

  /**
   * How long the last transaction took (ms): a store that answers at once is not worth waiting a turn for. Slow
   * until measured: a first transaction sent without the callers right behind it would split them into two
   * batches that then alternate (each caller waiting for the other batch's round trip too).
   */
  private lastMs = Infinity;
  /** A submitter said that more reservations are being picked right behind it. */
  private more = false;
  /** Reservations in the last transaction: several mean concurrent callers, worth a turn on any store. */
  private lastSize = 0;

  /**
   * True when `r` is reserved in the store; false when another writer holds its key (pick another). `more`: other
   * requests wait for the subnet's lock, and will submit in a moment.
   */
  submit(r: Reservation, more = false): Promise<boolean> {
    this.more ||= more;
    let w: Waiting | undefined;
    const outcome = new Promise<boolean>((done, fail) => this.queue.push((w = { r, done, fail })));
    w!.outcome = outcome;
    this.schedule();
    return outcome;
  }

  /**
   * Resolves once a reservation of `key` queued or in flight has its answer: a static request for an address a
   * dynamic one picked a moment ago is decided by the store after it, in the order the requests came.
   */
  async landed(key: string): Promise<void> {
    const w = this.find(key);
    await w?.outcome?.catch(() => undefined);
  }

  /** Whether a reservation of `key` is queued or in flight (its record may not be in the store yet). */
  has(key: string): boolean {
    return this.find(key) !== undefined;
  }

  private find(key: string): Waiting | undefined {
    for (const b of this.sending.keys()) {
      const w = b.find((x) => x.r.key === key);
      if (w) return w;
    }
    return this.queue.find((x) => x.r.key === key);
  }

  /** Resolves when nothing is queued or in flight (the subnet's last pool is going). */
  async drain(): Promise<void> {
    while (this.idle) await this.idle;
  }

  /** Sends what can go now, after one collecting turn when worth it. */
  private schedule(): void {
    this.idle ??= new Promise<void>((resolve) => (this.becameIdle = resolve));
    this.staleOnlySent = false;
    if (this.turn) return;
    // One turn of the event loop first, so that the callers picking in the same turn share the transaction: when
    // some are known to follow, when the last transaction carried several (concurrent callers), or when a
    // transaction costs more than a turn (etcd's quorum). Not for one caller at a time on SQLite: the turn would
    // cost more than its transaction.
    if (this.more || this.lastSize > 1 || this.lastMs >= 1) {
      this.turn = true;
      setImmediate(() => {
        this.turn = false;
        this.more = false;
        this.pump();
      });
    } else this.pump();
  }

  private pump(): void {
    while (this.sending.size < TXNS_IN_FLIGHT) {
      const deleting = new Set([...this.sending.values()].flat());
      const putting = new Set([...this.sending.keys()].flat().map((w) => w.r.remember?.key));
      const batch: Waiting[] = [];
      for (let i = 0; i < this.queue.length && batch.length < MAX_RESERVATIONS;) {
        const key = this.queue[i]!.r.remember?.key;
        if (key !== undefined && deleting.has(key)) i++;
        else batch.push(...this.queue.splice(i, 1));
      }
      const deletes: string[] = [];
      if (batch.length > 0 || !this.staleOnlySent)
        for (let i = 0; i < this.stale.length && deletes.length < MAX_STALE;) {
          if (putting.has(this.stale[i])) i++;
          else deletes.push(...this.stale.splice(i, 1));
        }
      if (batch.length === 0 && deletes.length === 0) break;
      if (batch.length === 0) this.staleOnlySent = true;
      this.sending.set(batch, deletes);
      void this.send(batch, deletes).finally(() => {
        this.sending.delete(batch);
        this.pump();
      });
    }
    if (this.sending.size === 0) {
      const resolve = this.becameIdle;
      this.idle = undefined;
      this.becameIdle = undefined;
      resolve?.();
    }
  }

  private async send(batch: Waiting[], stale: string[]): Promise<void> {
    this.lastSize = batch.length;
    const ops: TxnOp[] = stale.map((key) => ({ op: 'delete', key }));
    for (const { r } of batch) {
      ops.push({ op: 'create', key: r.key, value: r.value });
      if (r.remember) ops.push({ op: 'put', key: r.remember.key, value: r.remember.text });
    }
    let ok: boolean;
    try {
      this.txns++;
      // A failure that may or may not have been applied puts every create of the batch in the outbox (outbox.ts).
      const t = performance.now();
      ok = await this.outbox.writeAll(
        batch.map((w) => w.r),
        () => this.store.txn(ops),
      );
      this.lastMs = performance.now() - t;
    } catch (e) {
      this.stale.unshift(...stale); // hints only: tried again with a later transaction
      for (const w of batch) w.fail(e);
      return;
    }
    if (ok) {
      for (const w of batch) {
        this.stale.push(...this.committed(w.r));
        w.done(true);
      }
      return;
    }
    this.refused++;
    this.stale.unshift(...stale);
    let present: ReadonlySet<string>;
    try {
      present = await this.lost(batch.map((w) => w.r));
    } catch (e) {
      for (const w of batch) w.fail(e);
      return;
    }
    // Those whose key is free still (or again) keep their address and go first in the next transaction.
    const again: Waiting[] = [];
    for (const w of batch) {
      if (present.has(w.r.key)) w.done(false);
      else again.push(w);
    }
    this.queue.unshift(...again);
  }
}

/** A dynamic address picked under its subnet's lock (allocator.ts), to be reserved outside it. */
export interface Picked {
  readonly index: { commit(r: Reservation, more: boolean): Promise<boolean> };
  readonly res: Reservation;
  /** Other requests waited for the subnet's lock when it was picked (Batcher.submit). */
  readonly more: boolean;
}

/** Reserves `got`'s address; while another writer holds the address picked, picks again (`again`) and retries. */
export async function reserved(got: Picked, again: () => Promise<Picked>): Promise<bigint> {
  for (let g = got; ; g = await again()) if (await g.index.commit(g.res, g.more)) return g.res.v;
}
