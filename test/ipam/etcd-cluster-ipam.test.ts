// The two cluster-mode gaps closed in src/ipam on a real etcd (a one-member cluster started for this file, in a
// network namespace of its own): a release accepted while etcd is down is kept in the host's SQLite and settled
// by the daemon restarted before etcd came back (outbox-journal.ts); and crash residue on a subnet two hosts
// share is given back by its own host only (src/docker/reclaim.ts with per-host pool references); and a
// network removed while etcd is down leaves the pool's and the gateway's counts right (pool-release.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../src/ipam';
import { EtcdStore } from '../../src/store/etcd';
import { SqliteStore } from '../../src/store/sqlite';
import { OUTBOX } from '../../src/ipam/outbox-journal';
import type { AddressRecord, PoolRecord } from '../../src/ipam/keys';
import { reclaimOrphans, type ReclaimDeps } from '../../src/docker/reclaim';
import { silentLogger } from '../../src/log';
import { EtcdCluster } from '../lab/etcd';
import { inOwnNetns } from '../lab/etcd-netns';

const ADDRS = ['198.18.21.1'];
/** The stores' bound here: short, so that the outage's failures are quick; the default is 2000 ms. */
const TIMEOUT_MS = 1000;
const SUBNET = '198.18.22.0/24';
const POOL = { addressSpace: 'LocalDefault', pool: SUBNET, v6: false };
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const key = (ip: string) => `ipam/addresses/LocalDefault/198.18.22.0_24/${ip}`;
const ip = (r: { address: string }) => r.address.split('/')[0]!;

if (inOwnNetns('IPAM on etcd tests', __filename, ADDRS)) inner();

function inner(): void {
  let seq = 0;
  let cluster: EtcdCluster;
  let tmp: string;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-etcd-ipam-'));
    cluster = await EtcdCluster.start({ members: 1 });
  });
  after(async () => {
    await cluster?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const open = (prefix: string) =>
    EtcdStore.open({ endpoints: cluster.endpoints, prefix, requestTimeoutMs: TIMEOUT_MS });
  async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
    const t0 = Date.now();
    while (!(await cond().catch(() => false))) {
      if (Date.now() - t0 > ms) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  }

  describe('IPAM on a one-member etcd', () => {
    test('a release while etcd is stopped is kept in SQLite and settled by the daemon started again after etcd is back', async () => {
      const prefix = `outbox-${seq++}/`;
      const file = path.join(tmp, 'outbox', 'state.db');
      let local = SqliteStore.open(file);
      let shared = await open(prefix);
      let a = new Ipam(shared, { host: 'a', local });
      try {
        await a.load();
        const pa = await a.requestPool(POOL);
        const x = ip(await a.requestAddress({ poolId: pa.poolId }));
        const y = ip(await a.requestAddress({ poolId: pa.poolId }));
        await cluster.stopMember(0);
        await a.releaseAddress(pa.poolId, x); // accepted within the store's bound
        assert.deepEqual(
          (await local.list(OUTBOX)).map((e) => e.key.split('#')[0]), // a release's key ends in its id
          [OUTBOX + key(x)],
          'kept on disk before it returned',
        );
        // The daemon stops while etcd is still down; etcd comes back; the daemon starts again.
        a.close();
        await shared.close();
        await local.close();
        cluster.startMember(0);
        await cluster.waitHealthy(cluster.endpoints);
        local = SqliteStore.open(file);
        shared = await open(prefix);
        a = new Ipam(shared, { host: 'a', local });
        await a.load();
        assert.ok(await until(async () => !(await shared.get(key(x)))), `${x}'s record deleted in etcd`);
        assert.ok(await until(async () => (await local.list(OUTBOX)).length === 0), 'the kept entry is gone');
        assert.ok(await shared.get(key(y)), 'the other address stays');
      } finally {
        a.close();
        await shared.close();
        await local.close();
      }
    });

    test('a network removed while etcd is stopped: its pool and gateway counts are one lower once etcd is back', async () => {
      const prefix = `poolrelease-${seq++}/`;
      const file = path.join(tmp, 'poolrelease', 'state.db');
      let local = SqliteStore.open(file);
      let sa = await open(prefix);
      const sb = await open(prefix);
      let a = new Ipam(sa, { host: 'a', local });
      const b = new Ipam(sb, { host: 'b' });
      const counts = async () => {
        const p = JSON.parse((await sb.get('ipam/pools/LocalDefault/198.18.22.0_24'))!.value) as PoolRecord;
        const g = JSON.parse((await sb.get(key('198.18.22.1')))!.value) as AddressRecord;
        return { refs: p.refs, refsByHost: p.refsByHost, gateway: g.refs ?? 1 };
      };
      try {
        const pa = await a.requestPool(POOL);
        const pb = await b.requestPool(POOL);
        await a.requestAddress({ poolId: pa.poolId, options: GW });
        await b.requestAddress({ poolId: pb.poolId, options: GW });
        const x = ip(await a.requestAddress({ poolId: pa.poolId }));
        const y = ip(await b.requestAddress({ poolId: pb.poolId }));
        assert.deepEqual(await counts(), { refs: 2, refsByHost: { a: 1, b: 1 }, gateway: 2 });

        await cluster.stopMember(0);
        // `docker network rm` on host a: each call answered (accepted), as dockerd removes the network anyway.
        await a.releaseAddress(pa.poolId, x);
        await a.releaseAddress(pa.poolId, '198.18.22.1');
        await a.releasePool(pa.poolId);
        assert.equal((await local.list(OUTBOX)).length, 3, 'the three releases kept on disk');
        await assert.rejects(a.requestPool(POOL), { code: 'STORE_UNAVAILABLE' }, 'made again meanwhile: refused');
        // Host a's daemon restarted before etcd is back.
        a.close();
        await sa.close();
        await local.close();
        cluster.startMember(0);
        await cluster.waitHealthy(cluster.endpoints);
        local = SqliteStore.open(file);
        sa = await open(prefix);
        a = new Ipam(sa, { host: 'a', local });
        await a.load();
        assert.ok(await until(async () => (await local.list(OUTBOX)).length === 0), 'every kept release settled');
        assert.deepEqual(await counts(), { refs: 1, refsByHost: { b: 1 }, gateway: 1 });
        const left = (await sb.list('ipam/addresses/')).map((e) => e.key.split('/').pop()).sort();
        assert.deepEqual(left, ['198.18.22.1', y].sort(), "a's address is gone, b's and the gateway stay");
        // Host b removes its network too: nothing of the subnet is left in etcd.
        await b.releaseAddress(pb.poolId, y);
        await b.releaseAddress(pb.poolId, '198.18.22.1');
        await b.releasePool(pb.poolId);
        assert.deepEqual(await sb.list('ipam/'), []);
      } finally {
        a.close();
        b.close();
        await sa.close();
        await sb.close();
        await local.close();
      }
    });

    test("crash residue on a subnet two hosts share: host a gives back its own, never host b's", async () => {
      const prefix = `reclaim-${seq++}/`;
      const [sa0, sb] = [await open(prefix), await open(prefix)];
      const a0 = new Ipam(sa0, { host: 'a' });
      const b = new Ipam(sb, { host: 'b' });
      let sa: EtcdStore | undefined;
      let a: Ipam | undefined;
      try {
        const pa = await a0.requestPool(POOL);
        const pb = await b.requestPool(POOL);
        await a0.requestAddress({ poolId: pa.poolId, options: GW });
        await b.requestAddress({ poolId: pb.poolId, options: GW });
        const x1 = ip(await a0.requestAddress({ poolId: pa.poolId }));
        const y1 = ip(await b.requestAddress({ poolId: pb.poolId }));
        const x2 = ip(await a0.requestAddress({ poolId: pa.poolId })); // its answer lost in a crash of host a
        a0.close();
        await sa0.close();
        sa = await open(prefix);
        a = new Ipam(sa, { host: 'a' });
        const d: ReclaimDeps = {
          ipam: a,
          log: silentLogger,
          driver: {
            subnetUse: async (subnet, same) =>
              same(SUBNET, subnet)
                ? { networks: 1, addresses: new Set(['198.18.22.1', x1]) }
                : { networks: 0, addresses: new Set() },
          },
        };
        assert.deepEqual(await reclaimOrphans(d, 10), [x2]);
        const left = (await sb.list('ipam/addresses/')).map((e) => e.key.split('/').pop()).sort();
        assert.deepEqual(left, ['198.18.22.1', x1, y1].sort(), "host b's container keeps its address");
        const pool = JSON.parse((await sb.get('ipam/pools/LocalDefault/198.18.22.0_24'))!.value) as object;
        assert.deepEqual(pool, { ...pool, refs: 2, refsByHost: { a: 1, b: 1 } });
      } finally {
        a?.close();
        b.close();
        a0.close();
        await sa?.close();
        await sa0.close();
        await sb.close();
      }
    });
  });
}
