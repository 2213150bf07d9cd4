// A write etcd did not confirm (the call timed out after it was sent: a leader that died with the proposal, an
// election under way, a quorum lost) may or may not have been applied. For a transaction that creates keys, etcd
// itself can say which: its creates are all there with the values written (applied: a transaction is all or
// nothing), or none of them is (not applied: nothing else deletes a key whose reservation was never answered), or
// one holds another writer's value (its condition would fail: refused). EtcdStore asks this of etcd once it answers
// again, within the write's budget, and sends the transaction again only when it was not applied: so a reservation
// made while one member of three dies (the leader, say) succeeds instead of failing the container's start.
import { isMacnetError } from '../errors';
import type { EtcdPlan } from './etcd-txn';

export type Verdict = 'applied' | 'not-applied' | 'refused';

/** The keys a plan creates, with the value each ends with (a key the same txn deletes again is not one). */
export function createdValues(plan: EtcdPlan): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of plan.compares) {
    const v = plan.writes.get(c.key);
    if (c.target === 'create' && typeof v === 'string') out.set(c.key, v);
  }
  return out;
}

/** What etcd holds for the created keys says what became of the transaction; undefined when it cannot tell. */
export function judge(
  created: ReadonlyMap<string, string>,
  held: ReadonlyMap<string, string | undefined>,
): Verdict | undefined {
  let ours = 0;
  let absent = 0;
  for (const [key, value] of created) {
    const now = held.get(key);
    if (now === undefined) absent++;
    else if (now === value) ours++;
    else return 'refused';
  }
  if (ours === created.size) return 'applied';
  if (absent === created.size) return 'not-applied';
  return undefined;
}

/** A STORE_UNAVAILABLE for a write that was sent and not confirmed (details.applied 'unknown'). */
export const unconfirmedError = (e: unknown): boolean =>
  isMacnetError(e) && e.code === 'STORE_UNAVAILABLE' && e.details['applied'] === 'unknown';
