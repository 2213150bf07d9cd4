// Crash residue on a subnet shared by hosts (src/docker/reclaim.ts on a cluster store, docs/cluster.md): two
// daemons on one store, host a restarted as after a crash. Host a gives back its own addresses that none of its
// endpoints uses, on a subnet whose references on host a are all macnet networks (the pool record counts them per
// host: refsByHost); host b's addresses are never candidates; a subnet with another driver's network on host a,
// or whose pool record has no per-host counts (an earlier version's), is left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam';
import { MemoryStore } from '../../src/store/memory';
import { findOrphans, reclaimOrphans, type ReclaimDeps } from '../../src/docker/reclaim';
import { silentLogger } from '../../src/log';

const L = 'LocalDefault';
const SUBNET = '198.18.17.0/24';
const POOL = { addressSpace: L, pool: SUBNET, v6: false };
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const POOL_KEY = 'ipam/pools/LocalDefault/198.18.17.0_24';
const key = (ip: string) => `ipam/addresses/LocalDefault/198.18.17.0_24/${ip}`;
const ip = (r: { address: string }) => r.address.split('/')[0]!;

/** Host a's driver: its macnet networks on the subnet and the addresses their endpoints and gateway use. */
function deps(ipam: Ipam, networks: number, addresses: string[]): ReclaimDeps {
  return {
    ipam,
    log: silentLogger,
    driver: {
      subnetUse: async (subnet, same) =>
        same(SUBNET, subnet) ? { networks, addresses: new Set(addresses) } : { networks: 0, addresses: new Set() },
    },
  };
}

interface Cluster {
  store: MemoryStore;
  poolId: string;
  /** Host a's: x1 held by a container, x2 left by a crash (its RequestAddress answer was lost). */
  x1: string;
  x2: string;
  /** Host b's containers, which host a's driver knows nothing of. */
  y1: string;
  y2: string;
  /** Host a, restarted. */
  a: Ipam;
  b: Ipam;
}

/** The network on both hosts; `aNetworks` pool references from host a (a second: another driver's network). */
async function cluster(aNetworks = 1): Promise<Cluster> {
  const store = new MemoryStore();
  const a0 = new Ipam(store, { host: 'a' });
  const b = new Ipam(store, { host: 'b' });
  let poolId = '';
  for (let i = 0; i < aNetworks; i++) poolId = (await a0.requestPool(POOL)).poolId;
  const pb = await b.requestPool(POOL);
  await a0.requestAddress({ poolId, options: GW });
  await b.requestAddress({ poolId: pb.poolId, options: GW });
  const x1 = ip(await a0.requestAddress({ poolId }));
  const y1 = ip(await b.requestAddress({ poolId: pb.poolId }));
  const x2 = ip(await a0.requestAddress({ poolId }));
  const y2 = ip(await b.requestAddress({ poolId: pb.poolId }));
  a0.close();
  const a = new Ipam(store, { host: 'a' });
  await a.load();
  return { store, poolId, x1, x2, y1, y2, a, b };
}

const held = async (store: MemoryStore) =>
  (await store.list('ipam/addresses/')).map((e) => e.key.split('/').pop()!).sort();

test("the pool record counts each host's references beside the total, in the same write", async () => {
  const c = await cluster(2);
  try {
    const rec = () => c.store.get(POOL_KEY).then((e) => JSON.parse(e!.value) as Record<string, unknown>);
    assert.deepEqual([(await rec()).refs, (await rec()).refsByHost], [3, { a: 2, b: 1 }]);
    await c.a.releasePool(c.poolId);
    assert.deepEqual([(await rec()).refs, (await rec()).refsByHost], [2, { a: 1, b: 1 }]);
    await c.b.releasePool(c.poolId);
    assert.deepEqual([(await rec()).refs, (await rec()).refsByHost], [1, { a: 1 }]);
  } finally {
    c.a.close();
    c.b.close();
  }
});

test("host a gives back its own orphan on a shared subnet; host b's addresses are never candidates", async () => {
  const c = await cluster();
  try {
    const d = deps(c.a, 1, ['198.18.17.1', c.x1]);
    assert.deepEqual(
      (await findOrphans(d)).map((o) => o.address),
      [c.x2],
      "only host a's own record that its driver does not use",
    );
    assert.deepEqual(await reclaimOrphans(d, 10), [c.x2]);
    assert.deepEqual(await held(c.store), ['198.18.17.1', c.x1, c.y1, c.y2].sort());
    // Asked directly for host b's address, with nothing that says it is in use: still refused.
    assert.equal(await c.a.reclaim(L, SUBNET, c.y1, async () => true), false);
    assert.ok(await c.store.get(key(c.y1)));
    // Host b's view: the address is free on the store, and host b can take it.
    assert.equal(ip(await c.b.requestAddress({ poolId: c.poolId, address: c.x2 })), c.x2);
  } finally {
    c.a.close();
    c.b.close();
  }
});

test("a subnet with another driver's network on host a is left alone, and so is one whose per-host counts are missing or do not add up", async () => {
  const c = await cluster(2); // host a: one macnet network and one -d macvlan --ipam-driver macnet on the pool
  try {
    assert.deepEqual(await reclaimOrphans(deps(c.a, 1, ['198.18.17.1', c.x1]), 10), [], 'one of its 2 is not ours');
    assert.deepEqual(await held(c.store), ['198.18.17.1', c.x1, c.x2, c.y1, c.y2].sort());
  } finally {
    c.a.close();
    c.b.close();
  }
  const old = await cluster();
  try {
    // The pool record as an earlier version wrote it: the total only.
    const e = (await old.store.get(POOL_KEY))!;
    const { refsByHost: _, ...rec } = JSON.parse(e.value) as Record<string, unknown>;
    await old.store.put(POOL_KEY, JSON.stringify(rec));
    const a = new Ipam(old.store, { host: 'a' });
    await a.load();
    assert.deepEqual(await reclaimOrphans(deps(a, 1, ['198.18.17.1', old.x1]), 10), [], 'unknown: not looked at');
    assert.ok(await old.store.get(key(old.x2)));
    // Joined again by host b: the record still has no per-host counts (none is guessed).
    await old.b.requestPool(POOL);
    assert.equal((JSON.parse((await old.store.get(POOL_KEY))!.value) as Record<string, unknown>).refsByHost, undefined);
    a.close();
  } finally {
    old.a.close();
    old.b.close();
  }
  const merged = await cluster();
  try {
    // Host a's reference added to the total alone (as `macnet store migrate` merges a pool): counts that do not
    // add up are unknown, and the next change of the record drops them for good.
    const e = (await merged.store.get(POOL_KEY))!;
    await merged.store.put(POOL_KEY, JSON.stringify({ ...JSON.parse(e.value), refsByHost: { b: 1 } }));
    const a = new Ipam(merged.store, { host: 'a' });
    await a.load();
    assert.deepEqual(await reclaimOrphans(deps(a, 1, ['198.18.17.1', merged.x1]), 10), [], 'refs 2, counted 1');
    await a.requestPool(POOL);
    const rec = JSON.parse((await merged.store.get(POOL_KEY))!.value) as Record<string, unknown>;
    assert.deepEqual([rec.refs, rec.refsByHost], [3, undefined]);
    a.close();
  } finally {
    merged.a.close();
    merged.b.close();
  }
});
