// Daemons on one store (the hosts of a cluster on etcd, docs/cluster.md): the same network created on several, at
// once, shares the pool record and the gateway; a host's first pool on a subnet leaves the other host's addresses
// alone; dynamic addresses are never handed out twice. On etcd each host is a daemon of its own (its connection,
// state dir and host id) on one prefix; on SQLite (one host only) Ipams on one file (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam';
import type { Store } from '../../src/store/types';
import { eachStore, memoryStoreOnly } from '../lab/test-stores';
import { LosingStore, OutageStore } from './fake-stores';

const L = 'LocalDefault';
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const POOL = { addressSpace: L, pool: '198.18.15.0/24', v6: false };

eachStore('IPAM shared store tests', __filename, (kind, stores) => {
  async function hosts(n: number): Promise<{ store: Store; ipams: Ipam[] }> {
    const first = await stores.open(kind);
    const states = [first];
    for (let i = 1; i < n; i++) states.push(await first.peer());
    const ipams = states.map((h) => new Ipam(h.store, h.host));
    for (const i of ipams) await i.load();
    return { store: first.store, ipams };
  }

  test('the same network on three hosts at once: one pool record counting 3, one gateway record counting 3', async () => {
    const { store, ipams } = await hosts(3);
    const pools = await Promise.all(ipams.map((i) => i.requestPool(POOL)));
    const gws = await Promise.all(
      ipams.map((i, k) => i.requestAddress({ poolId: pools[k]!.poolId, address: '198.18.15.1', options: GW })),
    );
    assert.deepEqual(
      gws.map((g) => g.address),
      ['198.18.15.1/24', '198.18.15.1/24', '198.18.15.1/24'],
    );
    const pool = JSON.parse((await store.get('ipam/pools/LocalDefault/198.18.15.0_24'))!.value) as { refs: number };
    assert.equal(pool.refs, 3);
    const gw = JSON.parse((await store.get('ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.1'))!.value) as {
      owner: string;
      refs: number;
    };
    assert.deepEqual([gw.owner, gw.refs], ['gateway', 3]);
    // Released by two hosts: still held for the third.
    for (const k of [0, 1]) {
      await ipams[k]!.releaseAddress(pools[k]!.poolId, '198.18.15.1');
      await ipams[k]!.releasePool(pools[k]!.poolId);
    }
    assert.ok(await store.get('ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.1'));
    assert.equal(JSON.parse((await store.get('ipam/pools/LocalDefault/198.18.15.0_24'))!.value).refs, 1);
  });

  test("a host's first pool on a subnet does not purge the addresses another host's pool holds", async () => {
    const { store, ipams } = await hosts(2);
    const [a, b] = ipams as [Ipam, Ipam];
    const pa = await a.requestPool(POOL);
    const x = await a.requestAddress({ poolId: pa.poolId });
    const pb = await b.requestPool(POOL);
    assert.ok(await store.get(`ipam/addresses/LocalDefault/198.18.15.0_24/${x.address.split('/')[0]}`));
    const y = await b.requestAddress({ poolId: pb.poolId });
    assert.notEqual(y.address, x.address);
  });

  test('residue of a subnet without any pool is still purged by the first pool', async () => {
    const { store, ipams } = await hosts(1);
    await store.put(
      'ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.7',
      JSON.stringify({ owner: 'x', pool: 'p' }),
    );
    await ipams[0]!.requestPool(POOL);
    assert.equal(await store.get('ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.7'), undefined);
  });

  test('dynamic addresses requested on three hosts at once are all distinct', async () => {
    const { ipams } = await hosts(3);
    const pools = await Promise.all(ipams.map((i) => i.requestPool(POOL)));
    const got = await Promise.all(
      ipams.flatMap((i, k) => Array.from({ length: 20 }, () => i.requestAddress({ poolId: pools[k]!.poolId }))),
    );
    const addrs = got.map((g) => g.address);
    assert.equal(new Set(addrs).size, 60, addrs.join(' '));
  });
});

// The store's faults injected by MemoryStores of their own (a write applied but answered as lost, an outage): about
// that fake, so on it only, once.
memoryStoreOnly(() => {
  test("a reservation applied but answered as lost is deleted in the background, and before the next one on its subnet; no other host's record is", async () => {
    const store = new LosingStore();
    const [a, b] = [new Ipam(store, { host: 'a' }), new Ipam(store, { host: 'b' })];
    try {
      await a.load();
      await b.load();
      const pa = await a.requestPool(POOL);
      const pb = await b.requestPool(POOL);
      const key = (ip: string) => `ipam/addresses/LocalDefault/198.18.15.0_24/${ip}`;
      store.loseNext = true;
      const opts = { 'com.docker.network.endpoint.name': 'web-1' };
      await assert.rejects(a.requestAddress({ poolId: pa.poolId, options: opts }), { code: 'STORE_UNAVAILABLE' });
      const lostKey = store.lost.find((o) => o.key.startsWith('ipam/addresses/'))!;
      assert.deepEqual(JSON.parse(lostKey.value!), { owner: 'web-1', pool: pa.poolId, host: 'a' }, 'applied after all');
      // The background settle deletes it within a second or so, with no request on the subnet.
      const t0 = Date.now();
      while ((await store.get(lostKey.key)) && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await store.get(lostKey.key), undefined, 'the lost reservation is gone');
      // Lost again, then host b's web-1 gets another address; host a's next reservation first deletes its own.
      store.loseNext = true;
      await assert.rejects(a.requestAddress({ poolId: pa.poolId, options: opts }), { code: 'STORE_UNAVAILABLE' });
      const other = await b.requestAddress({ poolId: pb.poolId, options: opts });
      const next = await a.requestAddress({ poolId: pa.poolId });
      const left = (await store.list('ipam/addresses/')).map((e) => [e.key, JSON.parse(e.value) as unknown]);
      const want = [
        [key(next.address.split('/')[0]!), { owner: 'dynamic', pool: pa.poolId, host: 'a' }],
        [key(other.address.split('/')[0]!), { owner: 'web-1', pool: pb.poolId, host: 'b' }],
      ];
      assert.deepEqual(
        left.sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
        want.sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
        'the lost reservation is gone; the records of both hosts are there',
      );
    } finally {
      a.close();
      b.close();
    }
  });

  test('a release during an outage is accepted, kept, and applied when the store answers again, with no request', async () => {
    const store = new OutageStore();
    const [a, b] = [new Ipam(store, { host: 'a' }), new Ipam(store, { host: 'b' })];
    try {
      await a.load();
      await b.load();
      const pa = await a.requestPool(POOL);
      const pb = await b.requestPool(POOL);
      await a.requestAddress({ poolId: pa.poolId, address: '198.18.15.1', options: GW });
      await b.requestAddress({ poolId: pb.poolId, address: '198.18.15.1', options: GW });
      const x = (await a.requestAddress({ poolId: pa.poolId })).address.split('/')[0]!;
      const held = async () => (await store.list('ipam/addresses/')).map((e) => e.key.split('/').pop()).sort();
      assert.deepEqual(await held(), ['198.18.15.1', x]);

      store.down = true;
      // dockerd does not retry a failed ReleaseAddress: the release must be accepted now.
      await a.releaseAddress(pa.poolId, x);
      await a.releaseAddress(pa.poolId, '198.18.15.1'); // the gateway, counted by b's network too
      await assert.rejects(a.requestAddress({ poolId: pa.poolId }), { code: 'STORE_UNAVAILABLE' });
      store.down = false;
      assert.deepEqual(await held(), ['198.18.15.1', x], 'nothing was applied during the outage');

      // Back: applied in the background, without any request on the subnet.
      const t0 = Date.now();
      while ((await held()).includes(x) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(
        await held(),
        ['198.18.15.1'],
        "the released address is gone; the shared gateway's record stays",
      );
      const gw = await store.get('ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.1');
      // The gateway's release is applied too, once: counted by b's network alone now (src/ipam/outbox.ts).
      assert.equal((JSON.parse(gw!.value) as { refs: number }).refs, 1, "counted by b's network alone");
      // The other host can take it now, and this host's index has let it go too.
      assert.equal((await b.requestAddress({ poolId: pb.poolId, address: x })).address, `${x}/24`);
      await b.releaseAddress(pb.poolId, x);
      assert.equal((await a.requestAddress({ poolId: pa.poolId })).address, `${x}/24`);
    } finally {
      a.close();
      b.close();
    }
  });
});
