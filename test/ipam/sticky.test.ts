// Sticky identity: a container re-created with the same name gets its previous address back when it is still
// free (here, in the pool and on a fake LAN; test/docker/protocol.test.ts sends the engine's real option). Each
// test on both real stores, SQLite and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam, type IpamLan } from '../../src/ipam/ipam';
import type { Store } from '../../src/store/types';
import { eachStore } from '../lab/test-stores';

const NAME = 'com.docker.network.endpoint.name';

function lanWith(answers: Set<string>): IpamLan {
  return {
    claim() {},
    async inUse(_s, candidates) {
      return new Map(
        candidates
          .filter((c) => answers.has(c))
          .map((c) => [c, { mac: '02:00:00:00:00:99', reason: 'answered' as const }]),
      );
    },
    async conflictPolicy() {
      return 'refuse';
    },
  };
}

eachStore('IPAM sticky tests', __filename, (kind, stores) => {
  async function setup(lan?: IpamLan, given?: Store) {
    const store = given ?? (await stores.open(kind)).store;
    const ipam = new Ipam(store, lan ? { lan } : {});
    const { poolId } = await ipam.requestPool({ addressSpace: '', pool: '198.18.15.0/24', v6: false });
    return { ipam, poolId, store };
  }

  test('a name gets its previous address back after release, before any lower free address', async () => {
    const { ipam, poolId } = await setup();
    const web = (await ipam.requestAddress({ poolId, options: { [NAME]: 'web' } })).address;
    const db = (await ipam.requestAddress({ poolId, options: { [NAME]: 'db' } })).address;
    assert.deepEqual([web, db], ['198.18.15.1/24', '198.18.15.2/24']);
    await ipam.releaseAddress(poolId, '198.18.15.2');
    await ipam.releaseAddress(poolId, '198.18.15.1');
    assert.equal(
      (await ipam.requestAddress({ poolId, options: { [NAME]: 'db' } })).address,
      db,
      'db again, although .1 is lower',
    );
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.1/24', 'no name: the lowest free');
    assert.equal(
      (await ipam.requestAddress({ poolId, options: { [NAME]: 'web' } })).address,
      '198.18.15.3/24',
      "web's is taken",
    );
    assert.equal(await ipam.requestedName('198.18.15.0/24', '198.18.15.3'), 'web');
    assert.equal(await ipam.requestedName('198.18.15.0/24', '198.18.15.1'), undefined, 'no name sent');
  });

  test('the previous address is not given back when another container has it or the LAN answers for it', async () => {
    const answers = new Set<string>();
    const state = await stores.open(kind);
    const { ipam, poolId } = await setup(lanWith(answers), state.store);
    assert.equal((await ipam.requestAddress({ poolId, options: { [NAME]: 'a' } })).address, '198.18.15.1/24');
    await ipam.releaseAddress(poolId, '198.18.15.1');
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '198.18.15.1' })).address,
      '198.18.15.1/24',
      'taken by a static --ip',
    );
    assert.equal(
      (await ipam.requestAddress({ poolId, options: { [NAME]: 'a' } })).address,
      '198.18.15.2/24',
      'the lowest free instead',
    );
    await ipam.releaseAddress(poolId, '198.18.15.2');
    // A LAN device took it while the daemon was restarted (a just-released address is not probed: warm.ts).
    answers.add('198.18.15.2');
    ipam.close();
    const restarted = new Ipam((await state.reopen()).store, { lan: lanWith(answers) });
    const again = (await restarted.requestAddress({ poolId, options: { [NAME]: 'a' } })).address;
    assert.notEqual(again, '198.18.15.2/24', 'a LAN device answers for it now');
  });

  test('previous addresses survive a restart (store) and go with the pool', async () => {
    const state = await stores.open(kind);
    const first = await setup(undefined, state.store);
    await first.ipam.requestAddress({ poolId: first.poolId, options: { [NAME]: 'x' } });
    await first.ipam.requestAddress({ poolId: first.poolId, options: { [NAME]: 'y' } });
    await first.ipam.releaseAddress(first.poolId, '198.18.15.1');
    const { store } = await state.reopen();
    const restarted = new Ipam(store);
    assert.equal(
      (await restarted.requestAddress({ poolId: first.poolId, options: { [NAME]: 'x' } })).address,
      '198.18.15.1/24',
    );
    await restarted.releaseAddress(first.poolId, '198.18.15.1');
    await restarted.releaseAddress(first.poolId, '198.18.15.2');
    await restarted.releasePool(first.poolId);
    assert.deepEqual(
      (await store.list('ipam/')).map((e) => e.key),
      [],
      'nothing of the pool remains, names included',
    );
  });
});
