// Reservations whose answer was lost. A cluster store that goes away after it received a create (etcd losing its
// quorum mid-request) fails the call as "may or may not have been applied" (STORE_UNAVAILABLE); the caller has
// already failed the RequestAddress, so dockerd never learns the address, and a record that did get applied would
// hold it for ever. Each such record is remembered here and settled before the subnet's next reservation (under
// the subnet's lock, so this host cannot have made the same record again meanwhile): deleted if it is there with
// exactly the value this daemon wrote (the value names the host, so another host's record never matches).
import { isMacnetError } from '../errors';
import type { Store } from '../store/types';

export class Unconfirmed {
  private readonly pending = new Map<string, string>();

  /** Runs the reservation `write` of `key` = `value`; a store failure is remembered, then rethrown. */
  async write<T>(key: string, value: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (e) {
      if (isMacnetError(e) && e.code === 'STORE_UNAVAILABLE') this.pending.set(key, value);
      throw e;
    }
  }

  /** Deletes the remembered records that were applied after all; throws while the store still fails. */
  async settle(store: Store): Promise<void> {
    for (const [key, value] of this.pending) {
      const e = await store.get(key);
      if (e && e.value === value) await store.delete(key, e.revision);
      this.pending.delete(key);
    }
  }
}
