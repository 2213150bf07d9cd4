// Addresses a crash left allocated (src/docker/reclaim.ts): the IPAM side on a real SQLite store reopened as
// after a restart, the driver's side as a table of networks (what NetworkDriver.subnetUse reports).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../src/ipam';
import { SqliteStore } from '../../src/store/sqlite';
import { findOrphans, reclaimOrphans, type ReclaimDeps } from '../../src/docker/reclaim';
import { silentLogger } from '../../src/log';

const L = 'LocalDefault';
const GW = { RequestAddressType: 'com.docker.network.gateway' };
let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-reclaim-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What the driver reports per subnet: its networks on it and the addresses they use. */
type Use = Record<string, { networks: number; addresses: string[] }>;

function deps(ipam: Ipam, use: Use): ReclaimDeps {
  return {
    ipam,
    log: silentLogger,
    driver: {
      subnetUse: async (subnet, same) => {
        const k = Object.keys(use).find((s) => same(s, subnet));
        return k
          ? { networks: use[k]!.networks, addresses: new Set(use[k]!.addresses) }
          : { networks: 0, addresses: new Set() };
      },
    },
  };
}

/** A store with one network's pool: gateway .1, containers at .2 and .3, .4 whose answer was lost, aux .250. */
async function crashed(name: string): Promise<{ file: string; poolId: string }> {
  const file = path.join(tmp, name, 'state.db');
  const store = SqliteStore.open(file);
  const ipam = new Ipam(store);
  const { poolId } = await ipam.requestPool({ addressSpace: L, pool: '198.18.7.0/24', v6: false });
  await ipam.requestAddress({ poolId, options: GW });
  await ipam.requestAddress({ poolId, address: '198.18.7.250' });
  for (let i = 0; i < 3; i++) await ipam.requestAddress({ poolId });
  await store.close();
  return { file, poolId };
}

const allocated = async (ipam: Ipam, poolId: string) => (await ipam.allocations(poolId)).map((a) => a.address);

/** The store of `crashed(name)` reopened, as by the next daemon: `fn` gets a fresh Ipam on it. */
async function afterRestart(name: string, fn: (ipam: Ipam, poolId: string) => Promise<void>): Promise<void> {
  const { file, poolId } = await crashed(name);
  const store = SqliteStore.open(file);
  try {
    await fn(new Ipam(store), poolId);
  } finally {
    await store.close();
  }
}

test('an address allocated before the start that no endpoint uses is given back after two looks; nothing else is', async () => {
  await afterRestart('basic', async (ipam, poolId) => {
    const use: Use = {
      '198.18.7.0/24': { networks: 1, addresses: ['198.18.7.1', '198.18.7.250', '198.18.7.2', '198.18.7.3'] },
    };
    assert.deepEqual(
      (await findOrphans(deps(ipam, use))).map((o) => o.address),
      ['198.18.7.4'],
    );
    // Allocated by this daemon, without an endpoint yet (a start in progress): never a candidate.
    await ipam.requestAddress({ poolId });
    assert.deepEqual(await reclaimOrphans(deps(ipam, use), 10), ['198.18.7.4']);
    assert.deepEqual(await allocated(ipam, poolId), [
      '198.18.7.1',
      '198.18.7.2',
      '198.18.7.3',
      '198.18.7.5',
      '198.18.7.250',
    ]);
    assert.deepEqual(await reclaimOrphans(deps(ipam, use), 10), [], 'idempotent');
  });
});

test('an endpoint that appears between the two looks keeps its address; the gateway is never taken', async () => {
  await afterRestart('late', async (ipam, poolId) => {
    // The driver's answer leaves the gateway (.1) out, so the gateway is a candidate of both looks: reclaim
    // still keeps it, because a gateway's record is never given back this way.
    const use: Use = { '198.18.7.0/24': { networks: 1, addresses: ['198.18.7.250', '198.18.7.2'] } };
    const d = deps(ipam, use);
    const run = reclaimOrphans(d, 200);
    await new Promise((r) => setTimeout(r, 50));
    use['198.18.7.0/24']!.addresses.push('198.18.7.3'); // its CreateEndpoint arrived late
    assert.deepEqual(await run, ['198.18.7.4']);
    assert.deepEqual(await allocated(ipam, poolId), ['198.18.7.1', '198.18.7.2', '198.18.7.3', '198.18.7.250']);
  });
});

test("a subnet whose pool another driver's network shares, or no network of macnet uses, is left alone", async () => {
  await afterRestart('shared', async (ipam, poolId) => {
    await ipam.requestPool({ addressSpace: L, pool: '198.18.7.0/24', v6: false }); // a second network (refs 2)
    const one: Use = { '198.18.7.0/24': { networks: 1, addresses: ['198.18.7.1', '198.18.7.250'] } };
    assert.deepEqual(
      await reclaimOrphans(deps(ipam, one), 10),
      [],
      'refs 2, one macnet network: the other is not ours',
    );
    assert.deepEqual(await reclaimOrphans(deps(ipam, {}), 10), [], 'no macnet network on the subnet');
    const two: Use = { '198.18.7.0/24': { networks: 2, addresses: ['198.18.7.1', '198.18.7.250', '198.18.7.2'] } };
    assert.deepEqual(await reclaimOrphans(deps(ipam, two), 10), ['198.18.7.3', '198.18.7.4']);
    assert.deepEqual(await allocated(ipam, poolId), ['198.18.7.1', '198.18.7.2', '198.18.7.250']);
  });
});

test("an inherited address released and handed out again is this daemon's: never reclaimed", async () => {
  await afterRestart('again', async (ipam, poolId) => {
    await ipam.releaseAddress(poolId, '198.18.7.4');
    assert.equal((await ipam.requestAddress({ poolId, address: '198.18.7.4' })).address, '198.18.7.4/24');
    const use: Use = {
      '198.18.7.0/24': { networks: 1, addresses: ['198.18.7.1', '198.18.7.250', '198.18.7.2', '198.18.7.3'] },
    };
    assert.deepEqual(await reclaimOrphans(deps(ipam, use), 10), []);
    assert.ok((await allocated(ipam, poolId)).includes('198.18.7.4'));
  });
});
