// Sticky records are bounded (docs/ipam.md, "Sticky addresses"): an address is remembered for the last name
// that had it only, so there are never more records than addresses in the pool. Each test on both real stores,
// SQLite and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam/ipam';
import { eachStore } from '../lab/test-stores';

const NAME = 'com.docker.network.endpoint.name';

eachStore('IPAM sticky prune tests', __filename, (kind, stores) => {
  test('3,000 cycles of new names on a small range leave at most one sticky record per address', async () => {
    const { store } = await stores.open(kind);
    const ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({
      addressSpace: '',
      pool: '198.18.15.0/24',
      subPool: '198.18.15.16/28',
      v6: false,
    });
    for (let i = 0; i < 3000; i++) {
      const a = (await ipam.requestAddress({ poolId, options: { [NAME]: `run-${i}` } })).address;
      await ipam.releaseAddress(poolId, a.split('/')[0]!);
    }
    const rows = await store.list('ipam/sticky/');
    assert.ok(rows.length <= 16, `${rows.length} sticky records for a range of 16 addresses`);
    // The most recent names still get their address back.
    const last = rows.find((r) => r.key.endsWith('/run-2999'));
    assert.ok(last, 'the last name is remembered');
    assert.equal((await ipam.requestAddress({ poolId, options: { [NAME]: 'run-2999' } })).address, `${last.value}/24`);
  });

  test('at load, records of one address that an older macnet left are pruned to the newest', async () => {
    const { store } = await stores.open(kind);
    let ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({ addressSpace: '', pool: '198.18.16.0/24', v6: false });
    const a = (await ipam.requestAddress({ poolId, options: { [NAME]: 'new' } })).address.split('/')[0]!;
    // Older records of the same address, as an older macnet left them.
    const prefix = (await store.list('ipam/sticky/'))[0]!.key.replace(/new$/, '');
    for (let i = 0; i < 50; i++) await store.put(`${prefix}old-${i}`, a);
    ipam = new Ipam(store);
    await ipam.load();
    const left = await store.list('ipam/sticky/');
    assert.deepEqual(
      left.map((e) => e.key.slice(prefix.length)),
      ['old-49'],
      'the newest record of the address stays',
    );
  });
});
