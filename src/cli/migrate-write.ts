// `macnet store migrate --to etcd`, the writes: the plan's steps (migrate-plan.ts) in etcd transactions, then
// the caller's last step (deleting the moved keys from SQLite): all of them or, after a failure, none.
//
// etcd bounds the operations of one transaction (--max-txn-ops, 128 by default), so the steps go in chunks. Each
// chunk is one transaction whose conditions were read before the plan was made: an address is created only if
// its key is absent, a merged pool or gateway is updated only at the revision read. A chunk refused on a
// condition (another host wrote meanwhile) applied nothing; the chunks before it are undone and the caller plans
// again from a fresh read, which names the conflict if there is one now.
//
// Undo, in reverse order: a key this migration created is deleted if it still holds what was written (at that
// revision, so that another host's later write is never deleted); a count it added (a pool's or the gateway's
// networks) is subtracted again by compare-and-set, and the record deleted when no network is left.
//
// A chunk whose transaction failed without an answer (etcd lost its quorum, the deadline passed) may or may not
// have been applied: each chunk also creates a marker key, migrating/<host id>/<n>, so that whether it was is
// read back rather than guessed (a count subtracted that was never added would take another host's network's).
// Not under hosts/: hosts/<id> is a running daemon's presence key (src/store/presence.ts), which the other hosts
// read as "this host is alive". The markers go once the last step is done too; until then a migrate of this host
// id refuses to start (its writes may be in etcd). What cannot be undone (etcd gone meanwhile) is returned by key.
import type { Store, TxnOp } from '../store/types';
import { decodeRecord, encodeRecord } from '../store/records';
import type { Step, Undo } from './migrate-plan';
import { countHost, type PoolRecord } from '../ipam/keys';

/** Operations per transaction: under etcd's default limit of 128, with room for the chunk's marker. */
export const CHUNK = 100;
/** The markers of one host's migration: nothing else is ever under migrating/. */
export const markerPrefix = (host: string): string => `migrating/${host}/`;
const CAS_RETRIES = 10;

export interface Applied {
  /** Every step and sticky name is in etcd, and the last step was done. */
  readonly ok: boolean;
  /** Ok, but the markers could not be deleted (etcd failed at the very end): their keys. */
  readonly markersLeft?: readonly string[];
  /** Not ok because the last step failed (everything in etcd undone, as far as `leftover` does not say). */
  readonly lastFailed?: boolean;
  /** Not ok: a condition failed (etcd changed since it was read); everything written was undone. */
  readonly changed?: boolean;
  /** Not ok after an error: the error, and the keys that could not be undone (empty when all were). */
  readonly error?: unknown;
  readonly leftover: readonly string[];
  /** Sticky names written, and those etcd held already (kept). */
  readonly stickies: number;
  readonly stickiesKept: number;
  readonly transactions: number;
}

export async function applyPlan(
  store: Store,
  host: string,
  steps: readonly Step[],
  stickies: readonly { key: string; value: string }[],
  last: () => Promise<void>,
): Promise<Applied> {
  const done: Undo[] = [];
  const markers: string[] = [];
  const stamp = new Date().toISOString();
  let transactions = 0;
  let written = 0;
  let kept = 0;
  const result = (extra: Partial<Applied> & { ok: boolean }): Applied => ({
    leftover: [],
    stickies: written,
    stickiesKept: kept,
    transactions,
    ...extra,
  });
  const fail = async (extra: Partial<Applied>): Promise<Applied> =>
    result({ ok: false, ...extra, leftover: await undo(store, done) });

  for (let i = 0; i < steps.length; i += CHUNK - 1) {
    const chunk = steps.slice(i, i + CHUNK - 1);
    const marker = `${markerPrefix(host)}${markers.length}`;
    const ops: TxnOp[] = [...chunk.map((s) => s.op), { op: 'create', key: marker, value: stamp }];
    let ok: boolean;
    try {
      transactions++;
      ok = await store.txn(ops);
    } catch (error) {
      // Applied or not: the marker says.
      let applied: boolean | undefined;
      try {
        applied = (await store.get(marker))?.value === stamp;
      } catch {
        applied = undefined;
      }
      let unknown: string[] = [];
      if (applied) {
        done.push(...chunk.map((s) => s.undo));
        markers.push(marker);
      } else if (applied === undefined) {
        // Unknown: what it created is told apart by its value and undone; a count cannot be, and is named.
        done.push(...chunk.map((s) => s.undo).filter((u) => u.kind === 'created'), markerUndo(marker, stamp));
        unknown = chunk.filter((s) => s.undo.kind === 'counted').map((s) => s.op.key);
      }
      done.push(...markers.map((key) => markerUndo(key, stamp)));
      return result({ ok: false, error, leftover: [...(await undo(store, done)), ...unknown] });
    }
    if (!ok) {
      done.push(...markers.map((key) => markerUndo(key, stamp)));
      return fail({ changed: true });
    }
    done.push(...chunk.map((s) => s.undo));
    markers.push(marker);
  }

  // Sticky names last: etcd's own record of a name wins, so a name another host wrote meanwhile is no failure.
  try {
    for (let i = 0; i < stickies.length; i += CHUNK) {
      const chunk = stickies.slice(i, i + CHUNK);
      transactions++;
      if (await store.txn(chunk.map((s): TxnOp => ({ op: 'create', key: s.key, value: s.value })))) {
        done.push(...chunk.map((s): Undo => ({ kind: 'created', ...s })));
        written += chunk.length;
        continue;
      }
      for (const s of chunk) {
        transactions++;
        if (await store.create(s.key, s.value)) {
          done.push({ kind: 'created', ...s });
          written++;
        } else kept++;
      }
    }
  } catch (error) {
    done.push(...markers.map((key) => markerUndo(key, stamp)));
    return fail({ error });
  }
  try {
    await last();
  } catch (error) {
    done.push(...markers.map((key) => markerUndo(key, stamp)));
    return fail({ error, lastFailed: true });
  }
  // Done: from here nothing is undone (SQLite no longer has the moved keys); markers left behind only make the
  // next migrate of this host id refuse, and are named.
  try {
    transactions++;
    if (markers.length) await store.txn(markers.map((key): TxnOp => ({ op: 'delete', key })));
  } catch {
    return result({ ok: true, markersLeft: markers });
  }
  return result({ ok: true });
}

const markerUndo = (key: string, value: string): Undo => ({ kind: 'created', key, value });

/** Takes back `done`, last first; returns the keys it could not (etcd failed meanwhile). */
export async function undo(store: Store, done: readonly Undo[]): Promise<string[]> {
  const left: string[] = [];
  for (const u of [...done].reverse()) {
    try {
      if (u.kind === 'created') {
        const e = await store.get(u.key);
        if (e && e.value === u.value) await store.delete(u.key, e.revision);
      } else if (!(await uncount(store, u.key, u.delta, u.host))) left.push(u.key);
    } catch {
      left.push(u.key);
    }
  }
  return left;
}

/** Subtracts `delta` from the networks counted in a pool's or the gateway's record; deletes it at none. */
async function uncount(store: Store, key: string, delta: number, host?: string): Promise<boolean> {
  for (let i = 0; i < CAS_RETRIES; i++) {
    const e = await store.get(key);
    if (!e) return true;
    const rec = decodeRecord<{ refs?: number }>(e.key, e.value, 'store migrate undo');
    const counted = { ...rec, refs: rec.refs ?? 1 };
    const next =
      host === undefined ? { ...counted, refs: counted.refs - delta } : countHost(counted as PoolRecord, host, -delta);
    const ok =
      next.refs > 0 ? await store.update(key, encodeRecord(next), e.revision) : await store.delete(key, e.revision);
    if (ok) return true;
  }
  return false;
}
