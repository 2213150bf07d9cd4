// A restart: a new Ipam on the reopened store (the SQLite file, or the same etcd prefix) sees the same pools,
// reference counts, allocations and names' last addresses. dockerd does not replay RequestPool/RequestAddress
// (RequiresRequestReplay is false), so anything not in the store is lost. Each test on both real stores
// (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam';
import { eachStore } from '../lab/test-stores';

const L = 'LocalDefault';

eachStore('IPAM persistence tests', __filename, (kind, stores) => {
  test('restart: pools, refcounts and allocations survive on a reopened store', async () => {
    const state = await stores.open(kind);
    let store = state.store;
    let ipam = new Ipam(store);
    await ipam.load();
    const shared = { addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.0/25', v6: false };
    const a = await ipam.requestPool(shared);
    await ipam.requestPool(shared); // refcount 2
    const b = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.128/25', v6: false });
    const v6 = await ipam.requestPool({ addressSpace: L, v6: true });
    await ipam.requestAddress({ poolId: a.poolId, options: { RequestAddressType: 'com.docker.network.gateway' } });
    await ipam.requestAddress({ poolId: a.poolId, options: { 'com.docker.network.endpoint.name': 'web1' } }); // .2 (.1 is the gateway)
    await ipam.requestAddress({ poolId: a.poolId }); // .3
    await ipam.requestAddress({
      poolId: b.poolId,
      address: '198.18.0.200',
      options: { 'com.docker.network.endpoint.name': 'db' },
    });
    await ipam.requestAddress({ poolId: v6.poolId });
    await ipam.releaseAddress(a.poolId, '198.18.0.3');
    const before = { a: await ipam.allocations(a.poolId), v6: await ipam.allocations(v6.poolId) };
    ipam.close();
    const reopened = await state.reopen();
    store = reopened.store;
    try {
      ipam = new Ipam(store);
      await ipam.load();
      assert.deepEqual(await ipam.allocations(a.poolId), before.a);
      assert.deepEqual(await ipam.allocations(v6.poolId), before.v6);
      assert.deepEqual(before.a, [
        { address: '198.18.0.1', owner: 'gateway' },
        { address: '198.18.0.2', owner: 'web1' },
        { address: '198.18.0.200', owner: 'db' },
      ]);
      // The index survived: .3 was released, so it is the lowest free address again.
      assert.equal((await ipam.requestAddress({ poolId: a.poolId })).address, '198.18.0.3/24');
      assert.equal((await ipam.requestAddress({ poolId: v6.poolId })).address, '2001:db8:ff00::2/64');
      // The index survived: held addresses are refused with their holder.
      await assert.rejects(ipam.requestAddress({ poolId: b.poolId, address: '198.18.0.2' }), {
        code: 'IPAM_ADDRESS_IN_USE',
        message: /held by web1/,
      });
      // Same PoolID for the same request; the default pool is not handed out twice; overlap still detected.
      assert.equal((await ipam.requestPool(shared)).poolId, a.poolId); // refcount 3
      assert.equal((await ipam.requestPool({ addressSpace: L, v6: true })).pool, '2001:db8:ff00:1::/64');
      await assert.rejects(ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/16', v6: false }), {
        code: 'IPAM_POOL_OVERLAP',
      });
      // The refcount survived: it takes three releases to remove the pool.
      await ipam.releasePool(a.poolId);
      await ipam.releasePool(a.poolId);
      assert.equal((await ipam.requestAddress({ poolId: a.poolId })).address, '198.18.0.4/24');
      await ipam.releasePool(a.poolId);
      await assert.rejects(ipam.requestAddress({ poolId: a.poolId }), { code: 'IPAM_POOL_NOT_FOUND' });
    } finally {
      await reopened.close();
    }
  });

  test('calls before load() load first; concurrent loads read the store once', async () => {
    const { store } = await stores.open(kind);
    const first = new Ipam(store);
    const { poolId } = await first.requestPool({ addressSpace: L, pool: '198.18.0.0/24', v6: false });
    await first.requestAddress({ poolId });
    let lists = 0;
    const counting = new Proxy(store, {
      get(target, prop) {
        if (prop === 'list')
          return (prefix: string) => {
            lists++;
            return target.list(prefix);
          };
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const second = new Ipam(counting);
    await Promise.all([second.load(), second.load(), second.requestAddress({ poolId })]);
    assert.equal(lists, 3, "pools, addresses, names' last addresses: once each");
    assert.deepEqual(
      (await second.allocations(poolId)).map((x) => x.address),
      ['198.18.0.1', '198.18.0.2'],
    );
  });

  test("residue of a crash inside ReleasePool (addresses without a pool, an old version's cursor) is ignored and purged", async () => {
    const { store } = await stores.open(kind);
    await store.put(
      'ipam/addresses/LocalDefault/198.18.0.0_24/198.18.0.1',
      JSON.stringify({ owner: 'old', pool: 'x' }),
    );
    await store.put('ipam/cursors/LocalDefault/198.18.0.0_24', '198.18.0.9');
    const ipam = new Ipam(store);
    await ipam.load();
    const { poolId } = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', v6: false });
    assert.deepEqual(await ipam.allocations(poolId), []);
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.0.1/24');
    assert.deepEqual(
      (await store.list('ipam/cursors/')).map((e) => e.key),
      [],
      'the cursor went with the new pool',
    );
  });

  test('the store holds the documented keys', async () => {
    const { store } = await stores.open(kind);
    const ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({
      addressSpace: L,
      pool: '198.18.0.0/24',
      subPool: '198.18.0.128/25',
      v6: false,
    });
    await ipam.requestAddress({ poolId, options: { 'com.docker.network.endpoint.name': 'web1' } });
    assert.deepEqual(
      (await store.list('ipam/')).map((e) => [e.key, e.value]),
      [
        [
          'ipam/addresses/LocalDefault/198.18.0.0_24/198.18.0.128',
          '{"owner":"web1","pool":"LocalDefault/198.18.0.0/24/198.18.0.128/25"}',
        ],
        [
          'ipam/pools/LocalDefault/198.18.0.0_24/198.18.0.128_25',
          '{"id":"LocalDefault/198.18.0.0/24/198.18.0.128/25","space":"LocalDefault","subnet":"198.18.0.0/24","range":"198.18.0.128/25","refs":1}',
        ],
        ['ipam/sticky/LocalDefault/198.18.0.0_24/web1', '198.18.0.128'],
      ],
    );
  });

  test('an unreadable record is STORE_ERROR naming its key, and load can be retried', async () => {
    const { store } = await stores.open(kind);
    await store.put('ipam/pools/LocalDefault/198.18.0.0_24', '{"id":');
    const ipam = new Ipam(store);
    await assert.rejects(ipam.load(), {
      code: 'STORE_ERROR',
      message: /^IPAM load: unreadable record ipam\/pools\/LocalDefault\/198\.18\.0\.0_24: /,
    });
    await store.delete('ipam/pools/LocalDefault/198.18.0.0_24');
    await ipam.load();
  });
});
