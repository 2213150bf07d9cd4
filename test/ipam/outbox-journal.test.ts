// The outbox kept in this host's own SQLite (src/ipam/outbox-journal.ts): a release accepted while the shared
// store answers nothing, or a reservation answered as lost, is on disk before the call returns, and a daemon
// restarted on the same state file settles it once the shared store answers, without any request; another
// host's records are never touched. The shared store is a MemoryStore that fails as etcd does (fake-stores.ts),
// the local one a real SqliteStore reopened as after a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../src/ipam';
import { SqliteStore } from '../../src/store/sqlite';
import { OUTBOX } from '../../src/ipam/outbox-journal';
import { LosingStore, OutageStore } from './fake-stores';
import { until } from '../lab/until';

const L = 'LocalDefault';
const POOL = { addressSpace: L, pool: '198.18.16.0/24', v6: false };
const key = (ip: string) => `ipam/addresses/LocalDefault/198.18.16.0_24/${ip}`;
const ip = (r: { address: string }) => r.address.split('/')[0]!;

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-outbox-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A kept release's key ends in its id (`#<id>`): the address key is what the tests look at.
const kept = async (local: SqliteStore) =>
  (await local.list(OUTBOX)).map((e) => e.key.slice(OUTBOX.length).split('#')[0]!);

test('a release during an outage is kept in SQLite; a daemon restarted before the store is back settles it', async () => {
  const file = path.join(tmp, 'release', 'state.db');
  const shared = new OutageStore();
  let local = SqliteStore.open(file);
  let a = new Ipam(shared, { host: 'a', local });
  const b = new Ipam(shared, { host: 'b' });
  try {
    await a.load();
    await b.load();
    const pa = await a.requestPool(POOL);
    const pb = await b.requestPool(POOL);
    const x = ip(await a.requestAddress({ poolId: pa.poolId }));
    const y = ip(await b.requestAddress({ poolId: pb.poolId }));
    const z = ip(await a.requestAddress({ poolId: pa.poolId }));

    shared.down = true;
    await a.releaseAddress(pa.poolId, x); // accepted: dockerd never asks again
    assert.deepEqual(await kept(local), [key(x)], 'kept on disk before the release returned');
    // The daemon stops (or dies) while the store is still down.
    a.close();
    await local.close();

    local = SqliteStore.open(file);
    a = new Ipam(shared, { host: 'a', local });
    await assert.rejects(a.load(), { code: 'STORE_UNAVAILABLE' }, 'no start without the shared store');
    assert.deepEqual(await kept(local), [key(x)], 'a failed start keeps the entry');
    shared.down = false;
    await a.load();
    // Settled in the background, with no request on the subnet.
    assert.ok(await until(async () => !(await shared.get(key(x)))), `${x} released once the store answers`);
    assert.ok(await until(async () => (await kept(local)).length === 0), 'the entry is gone once settled');
    assert.ok(await shared.get(key(y)), "the other host's record stays");
    assert.ok(await shared.get(key(z)), "this host's other record stays");
    // Free again for both hosts; this host's index has let it go too.
    assert.equal(ip(await b.requestAddress({ poolId: pb.poolId, address: x })), x);
    await b.releaseAddress(pb.poolId, x);
    assert.equal(ip(await a.requestAddress({ poolId: pa.poolId })), x);
  } finally {
    a.close();
    b.close();
    await local.close();
  }
});

test('a release kept through a restart is settled before the next reservation on its subnet', async () => {
  const file = path.join(tmp, 'next', 'state.db');
  const shared = new OutageStore();
  let local = SqliteStore.open(file);
  let a = new Ipam(shared, { host: 'a', local });
  try {
    await a.load();
    const pa = await a.requestPool(POOL);
    const x = ip(await a.requestAddress({ poolId: pa.poolId }));
    shared.down = true;
    await a.releaseAddress(pa.poolId, x);
    a.close();
    await local.close();
    shared.down = false;
    local = SqliteStore.open(file);
    a = new Ipam(shared, { host: 'a', local });
    // The lowest address again, at once: the kept release is applied first, under the subnet's lock.
    assert.equal(ip(await a.requestAddress({ poolId: pa.poolId })), x);
    assert.deepEqual(await kept(local), [], 'settled, and the new record is not deleted by a stale entry');
    a.close();
    local = await reopen(local, file);
    a = new Ipam(shared, { host: 'a', local });
    await a.load();
    await new Promise((r) => setTimeout(r, 1500)); // a background settle's tick
    assert.ok(await shared.get(key(x)), 'the new allocation stays through another restart');
  } finally {
    a.close();
    await local.close();
  }
});

test("a released subnet's kept entries are dropped at the next start", async () => {
  const file = path.join(tmp, 'gone', 'state.db');
  const shared = new OutageStore();
  let local = SqliteStore.open(file);
  let a = new Ipam(shared, { host: 'a', local });
  try {
    await a.load();
    const pa = await a.requestPool(POOL);
    const x = ip(await a.requestAddress({ poolId: pa.poolId }));
    shared.down = true;
    await a.releaseAddress(pa.poolId, x);
    shared.down = false;
    a.close();
    // The network is removed on another host's orders meanwhile: the pool record and its addresses are gone.
    await shared.delete(`ipam/pools/LocalDefault/198.18.16.0_24`);
    await shared.delete(key(x));
    local = await reopen(local, file);
    a = new Ipam(shared, { host: 'a', local });
    await a.load();
    assert.deepEqual(await kept(local), [], 'dropped: no pool holds the subnet now');
  } finally {
    a.close();
    await local.close();
  }
});

test('a reservation answered as lost is kept in SQLite and deleted by the restarted daemon if it was applied', async () => {
  const file = path.join(tmp, 'lost', 'state.db');
  const shared = new LosingStore();
  let local = SqliteStore.open(file);
  let a = new Ipam(shared, { host: 'a', local });
  const b = new Ipam(shared, { host: 'b' });
  try {
    await a.load();
    await b.load();
    const pa = await a.requestPool(POOL);
    const pb = await b.requestPool(POOL);
    const y = ip(await b.requestAddress({ poolId: pb.poolId }));
    shared.loseNext = true;
    await assert.rejects(a.requestAddress({ poolId: pa.poolId }), { code: 'STORE_UNAVAILABLE' });
    const lost = shared.lost.find((o) => o.key.startsWith('ipam/addresses/'))!;
    assert.ok(await shared.get(lost.key), 'applied after all');
    assert.deepEqual(await kept(local), [lost.key], 'kept before the failure was answered');
    a.close(); // before the background settle's first tick
    local = await reopen(local, file);
    a = new Ipam(shared, { host: 'a', local });
    await a.load();
    assert.ok(await until(async () => !(await shared.get(lost.key))), 'deleted by the restarted daemon');
    assert.ok(await until(async () => (await kept(local)).length === 0), 'and the entry with it');
    assert.ok(await shared.get(key(y)), "the other host's record stays");
  } finally {
    a.close();
    b.close();
    await local.close();
  }
});

async function reopen(local: SqliteStore, file: string): Promise<SqliteStore> {
  await local.close();
  return SqliteStore.open(file);
}
