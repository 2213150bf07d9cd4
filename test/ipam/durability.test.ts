// No IPAM answer before the writes behind it are durable (Store.sync), and concurrent allocations on one subnet
// share the wait instead of each holding the subnet's lock through its own fsync. The store here holds every
// sync() until the test releases it, so "answered" and "durable" can be told apart; test/vm/power-cut shows the
// same with a real disk and a real power cut. The gate is a MemoryStore's (fault injection of that fake); the
// restart is SQLite's own (its durability), so neither runs on etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../src/ipam';
import { MemoryStore } from '../../src/store/memory';
import { SqliteStore } from '../../src/store/sqlite';

const L = 'LocalDefault';

/** A MemoryStore whose sync() waits for release(): what each sync was asked after is recorded. */
class GatedStore extends MemoryStore {
  private gates: (() => void)[] = [];
  syncs = 0;
  override async sync(): Promise<void> {
    await super.sync();
    this.syncs++;
    await new Promise<void>((r) => this.gates.push(r));
  }
  release(): void {
    const g = this.gates;
    this.gates = [];
    for (const r of g) r();
  }
  get waiting(): number {
    return this.gates.length;
  }
}

const settled = async <T>(p: Promise<T>): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
};

test('RequestAddress answers only after the store made its allocation durable', async () => {
  const store = new GatedStore();
  const ipam = new Ipam(store);
  const pool = ipam.requestPool({ addressSpace: L, pool: '198.18.15.0/24', v6: false });
  assert.equal(await settled(pool), false, 'RequestPool answered before sync');
  store.release();
  const { poolId } = await pool;

  const a = ipam.requestAddress({ poolId });
  assert.equal(await settled(a), false, 'RequestAddress answered before its allocation was durable');
  assert.ok(await store.get(`ipam/addresses/${L}/198.18.15.0_24/198.18.15.1`), 'the reservation is written first');
  store.release();
  assert.equal((await a).address, '198.18.15.1/24');

  const r = ipam.releaseAddress(poolId, '198.18.15.1');
  assert.equal(await settled(r), false, 'ReleaseAddress answered before sync');
  store.release();
  await r;
  const rp = ipam.releasePool(poolId);
  assert.equal(await settled(rp), false, 'ReleasePool answered before sync');
  store.release();
  await rp;
});

test('concurrent allocations on one subnet are all written while the first still waits to be durable', async () => {
  const store = new GatedStore();
  const ipam = new Ipam(store);
  const p = ipam.requestPool({ addressSpace: L, pool: '198.18.15.0/24', v6: false });
  await settled(p);
  store.release();
  const { poolId } = await p;
  const answers = Array.from({ length: 20 }, () => ipam.requestAddress({ poolId }));
  for (let i = 0; i < 20 && store.waiting < 20; i++) await new Promise((r) => setImmediate(r));
  // The subnet's lock is not held across sync(): all 20 reservations are in the store, none answered yet.
  assert.equal(store.waiting, 20, 'allocations queued behind a sync instead of sharing it');
  assert.equal((await store.list(`ipam/addresses/${L}/198.18.15.0_24/`)).length, 20);
  for (const a of answers) assert.equal(await settled(a), false);
  store.release();
  const got = (await Promise.all(answers)).map((a) => a.address);
  assert.equal(new Set(got).size, 20, 'every answer is a different address');
});

test('on SQLite, 100 concurrent allocations share a few fsyncs, and all are there after reopening', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-ipam-durable-'));
  try {
    const file = path.join(dir, 'state.db');
    const store = SqliteStore.open(file);
    const ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/16', v6: false });
    const before = store.group!.fsyncs;
    const got = await Promise.all(Array.from({ length: 100 }, () => ipam.requestAddress({ poolId })));
    const fsyncs = store.group!.fsyncs - before;
    assert.ok(fsyncs <= 25, `100 concurrent allocations used ${fsyncs} fsyncs`);
    await store.close();
    const again = SqliteStore.open(file);
    try {
      const reopened = new Ipam(again);
      const held = new Set((await reopened.allocations(poolId)).map((a) => a.address));
      for (const a of got) assert.ok(held.has(a.address.split('/')[0]!), `${a.address} lost`);
    } finally {
      await again.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
