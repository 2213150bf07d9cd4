// A network removed during a cluster store's outage (src/ipam/pool-release.ts, outbox.ts): dockerd removes it
// although the store does not answer, and never asks again, so macnet accepts its gateway's ReleaseAddress and
// its ReleasePool, keeps both in this host's SQLite before answering, and applies each once when the store
// answers: the pool's `refs` and this host's `refsByHost` one lower (the record and the subnet's records gone at
// the last), the gateway's `refs` one lower (gone at the last). The shared store is a MemoryStore failing as etcd
// does (fake-stores.ts), the local one a real SqliteStore, reopened as after a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../src/ipam';
import { SqliteStore } from '../../src/store/sqlite';
import { OUTBOX } from '../../src/ipam/outbox-journal';
import { OutageStore } from './fake-stores';
import { until } from '../lab/until';

const L = 'LocalDefault';
const POOL = { addressSpace: L, pool: '198.18.17.0/24', v6: false };
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const POOL_KEY = 'ipam/pools/LocalDefault/198.18.17.0_24';
const GW_KEY = 'ipam/addresses/LocalDefault/198.18.17.0_24/198.18.17.1';
const ip = (r: { address: string }) => r.address.split('/')[0]!;

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-poolrelease-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const kept = async (local: SqliteStore) => (await local.list(OUTBOX)).map((e) => e.key.slice(OUTBOX.length));
const json = async (store: OutageStore, key: string) => {
  const e = await store.get(key);
  return e && (JSON.parse(e.value) as { refs: number; refsByHost?: Record<string, number> });
};
const counts = async (store: OutageStore) => {
  const [p, g] = [await json(store, POOL_KEY), await json(store, GW_KEY)];
  // A gateway named by one network has no count in its record: 1.
  return { pool: p && { refs: p.refs, byHost: p.refsByHost }, gateway: g && (g.refs ?? 1) };
};

/** Host a (with its SQLite) and host b, each with the network, its gateway and one container. */
async function twoHosts(shared: OutageStore, local: SqliteStore) {
  const a = new Ipam(shared, { host: 'a', local });
  const b = new Ipam(shared, { host: 'b' });
  const pa = await a.requestPool(POOL);
  const pb = await b.requestPool(POOL);
  await a.requestAddress({ poolId: pa.poolId, options: GW });
  await b.requestAddress({ poolId: pb.poolId, options: GW });
  const x = ip(await a.requestAddress({ poolId: pa.poolId }));
  const y = ip(await b.requestAddress({ poolId: pb.poolId }));
  assert.deepEqual(await counts(shared), { pool: { refs: 2, byHost: { a: 1, b: 1 } }, gateway: 2 });
  return { a, b, pa, pb, x, y };
}

/** `docker network rm` as dockerd does it: the container's address, the gateway, the pool. */
async function removeNetwork(ipam: Ipam, poolId: string, container: string) {
  await ipam.releaseAddress(poolId, container);
  await ipam.releaseAddress(poolId, '198.18.17.1');
  await ipam.releasePool(poolId);
}

test('a network removed during an outage: the counts are one lower once the store answers, with no request', async () => {
  const shared = new OutageStore();
  const local = SqliteStore.open(path.join(tmp, 'bg', 'state.db'));
  const { a, b, pa, pb, x, y } = await twoHosts(shared, local);
  try {
    shared.down = true;
    await removeNetwork(a, pa.poolId, x); // every call accepted: dockerd removes the network and never asks again
    assert.equal((await kept(local)).length, 3, 'the three releases are on disk when the calls return');
    assert.ok(
      (await kept(local)).some((k) => k.startsWith(`${POOL_KEY}#`)),
      "the pool's among them",
    );
    // Made again on this host during the outage: refused with the store's error, as any pool change is.
    await assert.rejects(a.requestPool(POOL), { code: 'STORE_UNAVAILABLE' });
    shared.down = false;
    assert.deepEqual(await counts(shared), { pool: { refs: 2, byHost: { a: 1, b: 1 } }, gateway: 2 });

    assert.ok(await until(async () => (await kept(local)).length === 0), 'settled in the background');
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { b: 1 } }, gateway: 1 });
    assert.equal(await shared.get(`ipam/addresses/LocalDefault/198.18.17.0_24/${x}`), undefined);
    assert.ok(await shared.get(`ipam/addresses/LocalDefault/198.18.17.0_24/${y}`), "b's container keeps its record");

    // The same network made again on a: a fresh join, counted once more.
    const again = await a.requestPool(POOL);
    await a.requestAddress({ poolId: again.poolId, options: GW });
    assert.deepEqual(await counts(shared), { pool: { refs: 2, byHost: { a: 1, b: 1 } }, gateway: 2 });
    await a.releaseAddress(again.poolId, '198.18.17.1');
    await a.releasePool(again.poolId);
    // b's network goes normally: nothing of the subnet is left in the store.
    await removeNetwork(b, pb.poolId, y);
    assert.deepEqual(await shared.list('ipam/'), [], 'no pool, gateway or address record left');
  } finally {
    a.close();
    b.close();
    await local.close();
  }
});

test('the last network on a subnet removed during an outage: pool and records gone, then made anew', async () => {
  const shared = new OutageStore();
  const local = SqliteStore.open(path.join(tmp, 'last', 'state.db'));
  const a = new Ipam(shared, { host: 'a', local });
  try {
    const p = await a.requestPool(POOL);
    await a.requestAddress({ poolId: p.poolId, options: GW });
    const x = ip(await a.requestAddress({ poolId: p.poolId }));
    shared.down = true;
    await removeNetwork(a, p.poolId, x);
    shared.down = false;
    assert.ok(await until(async () => (await kept(local)).length === 0), 'settled in the background');
    assert.deepEqual(await shared.list('ipam/'), [], 'the pool, the gateway and the address are gone');
    // A new network on the subnet starts from scratch: its first dynamic address is the one x had.
    const q = await a.requestPool(POOL);
    await a.requestAddress({ poolId: q.poolId, options: GW });
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { a: 1 } }, gateway: 1 });
    assert.equal(ip(await a.requestAddress({ poolId: q.poolId })), x);
  } finally {
    a.close();
    await local.close();
  }
});

test('a restart before settling applies each kept release once, also when its first answer was lost', async () => {
  const shared = new OutageStore();
  const file = path.join(tmp, 'restart', 'state.db');
  let local = SqliteStore.open(file);
  const { a: first, b, pa, x } = await twoHosts(shared, local);
  let a = first;
  try {
    shared.down = true;
    await removeNetwork(a, pa.poolId, x);
    a.close();
    await local.close();
    // Restarted while the store is down: no start, the entries kept.
    local = SqliteStore.open(file);
    a = new Ipam(shared, { host: 'a', local });
    await assert.rejects(a.load(), { code: 'STORE_UNAVAILABLE' });
    assert.equal((await kept(local)).length, 3);
    a.close();
    await local.close();

    // The store answers; the next daemon's first decrement (the pool's, at load) is applied but answered as
    // lost, and the daemon dies before it deletes the entry.
    shared.down = false;
    shared.loseUpdates = 1;
    local = SqliteStore.open(file);
    a = new Ipam(shared, { host: 'a', local });
    await assert.rejects(a.load(), { code: 'STORE_UNAVAILABLE' });
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { b: 1 } }, gateway: 2 }, 'pool applied');
    assert.equal((await kept(local)).length, 3, 'its entry is still there');
    a.close();
    await local.close();

    // The next start finds it applied (its id is in the record) and does not apply it again; the gateway's
    // decrement, answered as lost once too, is applied once as well.
    shared.loseUpdates = 0;
    local = SqliteStore.open(file);
    a = new Ipam(shared, { host: 'a', local });
    await a.load();
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { b: 1 } }, gateway: 2 });
    shared.loseUpdates = 1; // the gateway's decrement in the background
    assert.ok(await until(async () => (await kept(local)).length === 0), 'settled in the background');
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { b: 1 } }, gateway: 1 });
    a.close();
    await local.close();
    local = SqliteStore.open(file);
    a = new Ipam(shared, { host: 'a', local });
    await a.load();
    await new Promise((r) => setTimeout(r, 1500)); // a background tick: nothing left to apply
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { b: 1 } }, gateway: 1 });
  } finally {
    a.close();
    b.close();
    await local.close();
  }
});

test('two networks on one pool and gateway removed during one outage: two decrements of each', async () => {
  const shared = new OutageStore();
  const local = SqliteStore.open(path.join(tmp, 'two', 'state.db'));
  const { a, b, pa, x } = await twoHosts(shared, local);
  try {
    await a.requestPool(POOL); // a second network here on the same subnet and router (another parent)
    await a.requestAddress({ poolId: pa.poolId, options: GW });
    assert.deepEqual(await counts(shared), { pool: { refs: 3, byHost: { a: 2, b: 1 } }, gateway: 3 });
    shared.down = true;
    await removeNetwork(a, pa.poolId, x);
    await a.releaseAddress(pa.poolId, '198.18.17.1');
    await a.releasePool(pa.poolId);
    shared.down = false;
    assert.ok(await until(async () => (await kept(local)).length === 0), 'settled in the background');
    assert.deepEqual(await counts(shared), { pool: { refs: 1, byHost: { b: 1 } }, gateway: 1 });
  } finally {
    a.close();
    b.close();
    await local.close();
  }
});

test('a ReleasePool failing otherwise than by an outage still fails', async () => {
  const shared = new OutageStore();
  const local = SqliteStore.open(path.join(tmp, 'other', 'state.db'));
  const a = new Ipam(shared, { host: 'a', local });
  try {
    const p = await a.requestPool(POOL);
    await shared.put(POOL_KEY, '{not json');
    await assert.rejects(a.releasePool(p.poolId), { code: 'STORE_ERROR' });
    assert.deepEqual(await kept(local), [], 'nothing kept');
  } finally {
    a.close();
    await local.close();
  }
});
