// The writes of `macnet store migrate` (src/cli/migrate-write.ts) when a transaction fails without an answer: the
// chunk's marker tells whether it was applied, and the undo leaves nothing either way; when even the marker cannot
// be read, what could not be told apart is named. The last step (the SQLite delete) failing undoes everything. A
// store that fails on cue stands for etcd (the real-etcd cases, a refused condition among them, are
// test/cli/store-migrate.test.ts's).
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
  present: undefined,
  markers: [],
};
const SEG = 'LocalDefault/198.18.40.0_24';
const done = () => Promise.resolve();

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
    const r = await applyPlan(failing(store, 2, how), 'me-1', plan.steps, plan.stickies, done);
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
  const r = await applyPlan(failing(store, 2, 'lost'), 'me-1', plan.steps, plan.stickies, done);
  assert.equal(r.ok, false);
  assert.deepEqual(r.leftover, []);
  assert.deepEqual(await store.list(''), []);
});

test('unanswered and etcd gone: what could not be undone is named by key', async () => {
  const plan = planMigration(local(150), EMPTY, 'me-1');
  const store = new MemoryStore();
  const r = await applyPlan(failing(store, 2, 'applied', true), 'me-1', plan.steps, plan.stickies, done);
  assert.equal(r.ok, false);
  const left = new Set(r.leftover);
  for (const e of await store.list('')) assert.ok(left.has(e.key), `${e.key} is in etcd and not named`);
  assert.ok(left.has(`ipam/pools/${SEG}`), 'the pool, written by the first chunk, is named');
});

test('success: every record in place with this host named, no marker left', async () => {
  const plan = planMigration(local(150), EMPTY, 'me-1');
  const store = new MemoryStore();
  let lastRan = 0;
  const r = await applyPlan(store, 'me-1', plan.steps, plan.stickies, async () => {
    lastRan++;
    // The markers are still there when the last step runs: a crash in it leaves them for the next migrate.
    assert.equal((await store.list('migrating/me-1/')).length, 2);
  });
  assert.equal(r.ok, true);
  assert.equal(lastRan, 1);
  assert.equal(r.transactions, 4, 'two chunks of steps, the names, the markers');
  assert.deepEqual(await store.list('migrating/'), []);
  assert.equal(JSON.parse((await store.get(`ipam/addresses/${SEG}/198.18.40.151`))!.value).host, 'me-1');
  assert.equal((await store.get(`ipam/sticky/${SEG}/c0`))!.value, '198.18.40.2');
  // This host's own records stay in SQLite; hosts/ is the presence keys' (src/store/presence.ts).
  assert.deepEqual(await store.list('hosts/'), []);
  assert.deepEqual(await store.list('driver/'), []);
  assert.equal(plan.counts.networks, 1, 'counted for the plan');
});

test('the last step (the SQLite delete) failing: everything written to etcd is undone, markers too', async () => {
  const plan = planMigration(local(150), EMPTY, 'me-1');
  const store = new MemoryStore();
  const r = await applyPlan(store, 'me-1', plan.steps, plan.stickies, () =>
    Promise.reject(new Error('SQLITE_FULL: database or disk is full')),
  );
  assert.equal(r.ok, false);
  assert.equal(r.lastFailed, true);
  assert.match(String(r.error), /SQLITE_FULL/);
  assert.deepEqual(r.leftover, []);
  assert.deepEqual(await store.list(''), []);
});

test('done, but the markers cannot be deleted: ok, and they are named', async () => {
  const plan = planMigration(local(3), EMPTY, 'me-1');
  const store = new MemoryStore();
  // The steps' chunk, the names, then the markers' delete fails.
  const r = await applyPlan(failing(store, 3, 'lost'), 'me-1', plan.steps, plan.stickies, done);
  assert.equal(r.ok, true);
  assert.deepEqual(r.markersLeft, ['migrating/me-1/0']);
  assert.ok(await store.get(`ipam/pools/${SEG}`), 'nothing undone');
});
