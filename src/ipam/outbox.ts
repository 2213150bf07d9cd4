// Deletes of this host's own address records that a cluster store could not take when they were due. Both cases
// happen on etcd only (SQLite never fails this way):
// - A reservation whose answer was lost: etcd lost its quorum after it received the create, and the call failed
//   as "may or may not have been applied" (STORE_UNAVAILABLE). The RequestAddress has failed, so dockerd never
//   learns the address, and a record that was applied after all would hold it for ever: it is deleted if it is
//   there with exactly the value this daemon wrote (the value names the host: another host's never matches).
// - A release while etcd is unreachable or without quorum (a container removed during an outage). dockerd does
//   not retry a ReleaseAddress that failed (it logs it and removes the container), so the release is accepted,
//   the address stays taken in this host's index meanwhile, and the record is deleted once etcd answers, if it
//   still names this host and is no gateway. A gateway's record (counted by the networks naming it, on every
//   host) loses one count instead, and is deleted at its last (gateway.ts). Each release kept has an id of its
//   own, written into the gateway's record with the decrement, so that it is applied once even if the answer
//   was lost or the daemon restarted before its entry was deleted.
// Both are settled before the subnet's next reservation, under the subnet's lock (so this host cannot have made
// the same record again meanwhile), and every SETTLE_MS in the background (settleEvery), so that other hosts
// see a release without waiting for a reservation here.
// With a journal (outbox-journal.ts, this host's SQLite) the entries also outlive a restart: kept before the
// call that made them answers, deleted once settled, and taken back by the subnet's index at the next load.
import { randomUUID } from 'node:crypto';
import { isMacnetError, type MacnetError } from '../errors';
import type { Store } from '../store/types';
import { parseAddress } from '../types/address';
import { readAddressRecord } from './keys';
import { releaseGateway } from './gateway';
import type { OutboxJournal } from './outbox-journal';

/** How often records that wait for the store are tried in the background. */
export const SETTLE_MS = 1000;

interface Pending {
  /** The address key in the shared store (the map's key, without a release's `#<id>`). */
  readonly key: string;
  readonly v: bigint;
  /** A reservation's: whether the record found (its value) is the one to delete. A release has none. */
  readonly match?: (value: string) => boolean;
  /** A release's id: its gateway decrement is applied once (gateway.ts). */
  readonly id?: string;
}

/** A kept release's key in the outbox and its journal: several releases of one gateway may wait at once. */
const releaseKey = (key: string, id: string): string => `${key}#${id}`;

const unavailable = (e: unknown): boolean => isMacnetError(e) && e.code === 'STORE_UNAVAILABLE';
/**
 * A write etcd received and did not confirm (src/store/etcd.ts). Any other STORE_UNAVAILABLE of a write means it
 * was never sent: nothing to read back or settle, and the caller fails within the store's deadline.
 */
const unconfirmed = (e: unknown): boolean => unavailable(e) && (e as MacnetError).details['applied'] === 'unknown';

export class Outbox {
  private readonly pending = new Map<string, Pending>();

  /**
   * `host`: this daemon's id in the records of a shared store (undefined on SQLite). `journal`: where the
   * entries are kept across restarts; those it loaded under `prefix` (this subnet's address keys) wait here again.
   */
  constructor(
    private readonly host: string | undefined,
    private readonly journal?: OutboxJournal,
    prefix?: string,
  ) {
    for (const [jkey, kept] of prefix === undefined ? [] : (journal?.take(prefix) ?? [])) {
      const key = jkey.split('#')[0]!;
      const v = parseAddress(key.slice(prefix!.length)).value;
      const { value } = kept;
      // A release kept by an earlier version has no id: one is made now (its decrement was never tried).
      const id = value === undefined ? (jkey.split('#')[1] ?? randomUUID()) : undefined;
      this.pending.set(jkey, value === undefined ? { key, v, id } : { key, v, match: (f) => f === value });
    }
  }

  /** Records waiting for the store. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Runs the reservation `write` of `key` = `value`. A write etcd received and did not confirm is remembered (the
   * background settle deletes it within a second of etcd answering again, if it was applied), then the failure is
   * rethrown: the start fails within the store's deadline. (Reading the key back at once would keep a reservation
   * that was applied, but costs a second deadline when etcd has no quorum: the bound matters more.)
   */
  write<T>(key: string, v: bigint, value: string, write: () => Promise<T>): Promise<T> {
    return this.writeAll([{ key, v, value }], write);
  }

  /** The same for a transaction of several reservations (batch.ts): each of them may or may not be applied. */
  async writeAll<T>(items: readonly { key: string; v: bigint; value: string }[], write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (e) {
      if (!unconfirmed(e)) throw e;
      for (const i of items) this.pending.set(i.key, { key: i.key, v: i.v, match: (found) => found === i.value });
      // Queued now, before any settle can delete the entries (OutboxJournal.keep); a failing journal leaves the
      // store's error to the caller, which is what it must see.
      await this.journal?.keep(items).catch(() => undefined);
      throw e;
    }
  }

  /** Whether the record of `key` waits here (its reservation may have been applied). */
  has(key: string): boolean {
    return this.pending.has(key);
  }

  /**
   * Runs `release` with an id of its own (a gateway's decrement is tagged with it, gateway.ts); while the store
   * is unavailable, keeps the release for later under that id (tried already, it may have been applied: the tag
   * tells) and returns false.
   */
  async release(key: string, v: bigint, release: (id: string) => Promise<void>): Promise<boolean> {
    const id = randomUUID();
    try {
      await release(id);
      return true;
    } catch (e) {
      if (!unavailable(e)) throw e;
      this.pending.set(releaseKey(key, id), { key, v, id });
      // Kept on disk before the release is answered: dockerd never asks again.
      await this.journal?.keep([{ key: releaseKey(key, id) }]);
      return false;
    }
  }

  private mine(value: string): boolean {
    try {
      const rec = readAddressRecord(value);
      return rec.host === this.host && rec.owner !== 'gateway';
    } catch {
      return false; // not a record this daemon wrote
    }
  }

  /**
   * Deletes the remembered records that are still this host's; returns the addresses whose records are gone
   * now (free in the store). Throws while the store still fails; what is left waits for the next try.
   */
  async settle(store: Store): Promise<bigint[]> {
    const gone: bigint[] = [];
    const done: string[] = [];
    try {
      for (const [jkey, p] of this.pending) {
        const e = await store.get(p.key);
        const gateway = e && !p.match && readAddressRecord(e.value).owner === 'gateway';
        if (gateway && this.host !== undefined) {
          if (await releaseGateway(store, p.key, 1, { host: this.host, id: p.id! })) gone.push(p.v);
        } else if (e && (p.match ?? ((f) => this.mine(f)))(e.value)) {
          // Changed meanwhile (a compare-and-set lost): looked at again at the next try.
          if (!(await store.delete(p.key, e.revision))) continue;
          gone.push(p.v);
        } else if (!e) gone.push(p.v);
        this.pending.delete(jkey);
        done.push(jkey);
        // A gateway's tag names this host's last decrement only: its entry goes before the next one is applied.
        if (gateway) await this.journal?.settled(done.splice(0));
      }
    } finally {
      // Before the caller frees the addresses: a kept entry must not outlive its settle (outbox-journal.ts).
      await this.journal?.settled(done);
    }
    return gone;
  }
}

/** What settleEvery needs of a subnet's index (allocator.ts's SubnetIndex). */
export interface Settles {
  readonly unsettled: number;
  settle(): Promise<void>;
}

/**
 * Settles every index with records waiting, each under its subnet's lock (`locked`), every SETTLE_MS until the
 * returned stop is called. A store that still fails is tried again at the next tick.
 */
export function settleEvery(
  indexes: () => Iterable<[string, Settles]>,
  locked: (subnetKey: string, fn: () => Promise<void>) => Promise<void>,
): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    const due = [...indexes()].filter(([, s]) => s.unsettled > 0);
    if (due.length === 0) return;
    running = true;
    void (async () => {
      for (const [sk, s] of due) await locked(sk, () => s.settle()).catch(() => undefined);
    })().finally(() => (running = false));
  }, SETTLE_MS).unref();
  return () => clearInterval(timer);
}
