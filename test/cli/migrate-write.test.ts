// The writes of `macnet store migrate` (src/cli/migrate-write.ts) when a transaction fails without an answer: the
// chunk's marker tells whether it was applied, and the undo leaves nothing either way; when even the marker cannot
// be read, what could not be told apart is named. A store that fails on cue stands for etcd (the real-etcd cases,
// a refused condition among them, are test/cli/store-migrate.test.ts's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPlan } from '../../src/cli/migrate-write';
import { planMigration, type ClusterSnapshot } from '../../src/cli/migrate-plan';
import { MemoryStore } from '../../src/store/memory';
import type { Entry, Store, TxnOp } from '../../src/store/types';

const EMPTY: ClusterSnapshot = {
  schema: undefined,
  keysWithoutSchema: 0,
  pools: [],
  addresses: [],
  stickies: [],
  hostKeys: [],
};
const SEG = 'LocalDefault/198.18.40.0_24';

/** A SQLite state's entries: a pool with `n` addresses, the gateway, a network record, a sticky name. */
function local(n: number): Entry[] {
  const pool = {
    id: 'LocalDefault/198.18.40.0/24',
    space: 'LocalDefault',
    subnet: '198.18.40.0/24',
    range: null,
    refs: 1,
  };
  const e = (key: string, value: unknown): Entry => ({
    key,
    value: typeof value === 'string' ? value : JSON.stringify(value),
    revision: 1,
  });
  return [
    e('meta/schema', '2'),
    e(`ipam/pools/${SEG}`, pool),
    e(`ipam/addresses/${SEG}/198.18.40.1`, { owner: 'gateway', pool: pool.id }),
    ...Array.from({ length: n }, (_, i) =>
      e(`ipam/addresses/${SEG}/198.18.40.${i + 2}`, { owner: `c${i}`, pool: pool.id }),
    ),
    e(`ipam/sticky/${SEG}/c0`, '198.18.40.2'),
    e('driver/networks/net1', { config: { id: 'net1' }, state: 'ready' }),
  ];
}

/** Fails the `nth` txn (1-based): after applying it ('applied') or before ('lost'); `blind`: reads fail after it. */
function failing(inner: Store, nth: number, how: 'applied' | 'lost', blind = false): Store {
  let txns = 0;
  let dark = false;
  const lostAnswer = () => new Error('etcd did not confirm the write');
  return {
    ...inner,
    get: (key) => (dark ? Promise.reject(new Error('no answer')) : inner.get(key)),
    list: (p) => inner.list(p),
    create: (k, v) => inner.create(k, v),
    update: (k, v, r) => inner.update(k, v, r),
    put: (k, v) => inner.put(k, v),
    delete: (k, r) => (dark ? Promise.reject(new Error('no answer')) : inner.delete(k, r)),
    sync: () => inner.sync(),
    close: () => inner.close(),
    txn: async (ops: readonly TxnOp[]) => {
      if (++txns !== nth) return inner.txn(ops);
      if (how === 'applied') await inner.txn(ops);
      dark = blind;
      throw lostAnswer();
    },
  };
}

test('a transaction applied but unanswered: its marker says so, and it is undone with the chunks before it', async () => {
  const plan = planMigration(local(150), EMPTY, 'me-1');
  for (const how of ['applied', 'lost'] as const) {
    const store = new MemoryStore();
    const r = await applyPlan(failing(store, 2, how), 'me-1', plan.steps, plan.stickies);
    assert.equal(r.ok, false, how);
    assert.match(String(r.error), /did not confirm/);
    assert.deepEqual(r.leftover, [], how);
    assert.deepEqual(await store.list(''), [], `${how}: nothing left`);
  }
});

test('a failure among the sticky names undoes everything, markers too', async () => {
  const plan = planMigration(local(3), EMPTY, 'me-1');
  const store = new MemoryStore();
  // One chunk of steps, then the names' transaction fails.
  const r = await applyPlan(failing(store, 2, 'lost'), 'me-1', plan.steps, plan.stickies);
  assert.equal(r.ok, false);
  assert.deepEqual(r.leftover, []);
  assert.deepEqual(await store.list(''), []);
});

test('unanswered and etcd gone: what could not be undone is named by key', async () => {
  const plan = planMigration(local(150), EMPTY, 'me-1');
  const store = new MemoryStore();
  const r = await applyPlan(failing(store, 2, 'applied', true), 'me-1', plan.steps, plan.stickies);
  assert.equal(r.ok, false);
  const left = new Set(r.leftover);
  for (const e of await store.list('')) assert.ok(left.has(e.key), `${e.key} is in etcd and not named`);
  assert.ok(left.has(`ipam/pools/${SEG}`), 'the pool, written by the first chunk, is named');
});

test('success: every record in place with this host named, no marker left', async () => {
  const plan = planMigration(local(150), EMPTY, 'me-1');
  const store = new MemoryStore();
  const r = await applyPlan(store, 'me-1', plan.steps, plan.stickies);
  assert.equal(r.ok, true);
  assert.equal(r.transactions, 4, 'two chunks of steps, the names, the markers');
  assert.deepEqual(await store.list('hosts/me-1/migrating/'), []);
  assert.equal(JSON.parse((await store.get(`ipam/addresses/${SEG}/198.18.40.151`))!.value).host, 'me-1');
  assert.equal((await store.get(`ipam/sticky/${SEG}/c0`))!.value, '198.18.40.2');
  assert.ok(await store.get('hosts/me-1/driver/networks/net1'));
});
