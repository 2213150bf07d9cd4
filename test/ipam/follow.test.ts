// Hosts sharing a store learn each other's releases (src/ipam/follow.ts), on a MemoryStore and on a real etcd
// member: an address another host released is free for this host when its range looks full, without a restart.
// Before, a host that had run into the other's addresses kept them "taken" until it restarted, and a full range
// stayed full for it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam';
import { MemoryStore } from '../../src/store/memory';
import { EtcdStore } from '../../src/store/etcd';
import { isMacnetError } from '../../src/errors';
import type { Store } from '../../src/store/types';
import { EtcdCluster } from '../lab/etcd';
import { inOwnNetns } from '../lab/etcd-netns';

const L = 'LocalDefault';
const GW = { RequestAddressType: 'com.docker.network.gateway' };
/** .1 the gateway, .2-.6 the five addresses to hand out. */
const POOL = { addressSpace: L, pool: '198.18.15.0/29', v6: false };

async function scenario(stores: [Store, Store]): Promise<void> {
  const [a, b] = [new Ipam(stores[0], { host: 'host-a' }), new Ipam(stores[1], { host: 'host-b' })];
  try {
    const [pa, pb] = [await a.requestPool(POOL), await b.requestPool(POOL)];
    await a.requestAddress({ poolId: pa.poolId, address: '198.18.15.1', options: GW });
    await b.requestAddress({ poolId: pb.poolId, address: '198.18.15.1', options: GW });
    const held = [];
    for (let i = 0; i < 5; i++) held.push((await a.requestAddress({ poolId: pa.poolId })).address.split('/')[0]!);
    assert.equal(new Set(held).size, 5);
    // Host b asks: everything is taken, and it learns so.
    await assert.rejects(b.requestAddress({ poolId: pb.poolId }), (e) => isMacnetError(e, 'IPAM_POOL_EXHAUSTED'));
    // Host a's container goes: its address is free for b, which never restarted.
    const freed = held[2]!;
    await a.releaseAddress(pa.poolId, freed);
    let got: string | undefined;
    let last: unknown;
    for (let i = 0; i < 100 && got === undefined; i++) {
      try {
        got = (await b.requestAddress({ poolId: pb.poolId })).address;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(got, `${freed}/29`, `b gets the released address (last error: ${String(last)})`);
  } finally {
    a.close();
    b.close();
  }
}

test('memory store: an address another host released is free for this host, whose range looked full', async () => {
  const store = new MemoryStore();
  await scenario([store, store]);
});

const ADDRS = ['198.18.19.9'];
if (inOwnNetns('IPAM follow tests on etcd', __filename, ADDRS)) {
  describe('on a real etcd member', () => {
    let cluster: EtcdCluster;
    before(async () => {
      cluster = await EtcdCluster.start({ members: 1 });
    });
    after(() => cluster?.close());
    test('etcd: an address another host released is free for this host, whose range looked full (two clients, as two hosts)', async () => {
      const open = () => EtcdStore.open({ endpoints: cluster.endpoints, prefix: 'follow/' });
      const stores: [Store, Store] = [await open(), await open()];
      try {
        await scenario(stores);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });
  });
}
