// Stores that fail as EtcdStore does when etcd loses its quorum (src/store/etcd.ts), for the IPAM's tests of a
// store shared by hosts: one that answers nothing while down, one whose next transaction is applied but answered
// as lost. Both are MemoryStores otherwise.
import { fail } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory';

const LOST = {
  endpoints: ['http://198.18.15.11:2379'],
  timeoutMs: 2000,
  reason: 'etcd did not confirm the write, which may or may not have been applied',
  lastError: 'deadline exceeded',
  unconfirmed: true,
};

/** A store whose next write is applied but answered as lost (etcd losing its quorum after it received it). */
export class LosingStore extends MemoryStore {
  loseNext = false;
  /** The writes of the transaction answered as lost (applied all the same). */
  lost: { key: string; value?: string }[] = [];
  override async txn(ops: Parameters<MemoryStore['txn']>[0]): Promise<boolean> {
    const ok = await super.txn(ops);
    if (!this.loseNext) return ok;
    this.loseNext = false;
    this.lost = ops.map((o) => ({ key: o.key, ...('value' in o && { value: o.value }) }));
    throw fail('STORE_UNAVAILABLE', { op: 'txn', key: ops[0]!.key, ...LOST });
  }
}

/**
 * A store that answers nothing while `down` (etcd unreachable or without quorum), as EtcdStore fails then.
 * `loseUpdates`: that many next compare-and-set updates are applied but answered as lost.
 */
export class OutageStore extends MemoryStore {
  down = false;
  loseUpdates = 0;
  private lose(op: string, key: string): void {
    if (this.loseUpdates === 0) return;
    this.loseUpdates--;
    throw fail('STORE_UNAVAILABLE', { op, key, ...LOST });
  }
  override async create(key: string, value: string): Promise<boolean> {
    this.outage('create', key);
    return super.create(key, value);
  }
  override async update(key: string, value: string, revision: number): Promise<boolean> {
    this.outage('update', key);
    const ok = await super.update(key, value, revision);
    this.lose('update', key);
    return ok;
  }
  private outage(op: string, key: string): void {
    if (!this.down) return;
    throw fail('STORE_UNAVAILABLE', {
      op,
      key,
      endpoints: ['http://198.18.15.11:2379'],
      timeoutMs: 2000,
      reason: 'no answer within 2000 ms (etcd unreachable or without quorum)',
      lastError: 'deadline exceeded',
    });
  }
  override async get(key: string) {
    this.outage('get', key);
    return super.get(key);
  }
  override async list(prefix: string) {
    this.outage('list', prefix);
    return super.list(prefix);
  }
  override async txn(ops: Parameters<MemoryStore['txn']>[0]): Promise<boolean> {
    this.outage('txn', ops[0]!.key);
    return super.txn(ops);
  }
  override async delete(key: string, revision?: number): Promise<boolean> {
    this.outage('delete', key);
    return super.delete(key, revision);
  }
}
