// RequestAddress / ReleaseAddress: gateway, aux and static addresses, next-fit order, exhaustion, concurrency; each
// test on both real stores, SQLite and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam';
import { eachStore } from '../lab/test-stores';

const L = 'LocalDefault';
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const name = (n: string) => ({ 'com.docker.network.endpoint.name': n });

eachStore('IPAM address tests', __filename, (kind, stores) => {
  async function pool(subnet: string, range?: string) {
    const { store } = await stores.open(kind);
    const ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({
      addressSpace: L,
      pool: subnet,
      ...(range ? { subPool: range } : {}),
      v6: subnet.includes(':'),
    });
    const next = async (options?: Record<string, string>) =>
      (await ipam.requestAddress({ poolId, ...(options ? { options } : {}) })).address;
    return { ipam, poolId, store, next };
  }

  test('dynamic address: CIDR with the subnet prefix, owner from the endpoint name', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/24');
    assert.deepEqual(await ipam.requestAddress({ poolId, options: name('web1') }), {
      address: '198.18.15.1/24',
      data: {},
    });
    assert.equal(await next(), '198.18.15.2/24');
    assert.deepEqual(await ipam.allocations(poolId), [
      { address: '198.18.15.1', owner: 'web1' },
      { address: '198.18.15.2', owner: 'dynamic' },
    ]);
  });

  test('gateway without an address is the first usable address of the subnet, even with an ip-range', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/24', '198.18.15.128/25');
    assert.equal((await ipam.requestAddress({ poolId, options: GW })).address, '198.18.15.1/24');
    assert.equal(await next(), '198.18.15.128/24', 'dynamic addresses come from the ip-range');
    assert.deepEqual((await ipam.allocations(poolId))[0], { address: '198.18.15.1', owner: 'gateway' });
    await assert.rejects(ipam.requestAddress({ poolId, address: '198.18.15.1' }), {
      code: 'IPAM_ADDRESS_IN_USE',
      message: 'address 198.18.15.1 is already in use in subnet 198.18.15.0/24 (held by gateway)',
    });
  });

  test('a gateway named by several networks on one subnet is shared, and freed with the last of them', async () => {
    const { ipam, poolId } = await pool('198.18.15.0/24', '198.18.15.128/25');
    const other = (
      await ipam.requestPool({ addressSpace: '', pool: '198.18.15.0/24', subPool: '198.18.15.64/26', v6: false })
    ).poolId;
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '198.18.15.1', options: GW })).address,
      '198.18.15.1/24',
    );
    assert.equal(
      (await ipam.requestAddress({ poolId: other, address: '198.18.15.1', options: GW })).address,
      '198.18.15.1/24',
    );
    await ipam.releaseAddress(poolId, '198.18.15.1');
    assert.deepEqual(
      (await ipam.allocations(other)).map((a) => a.address),
      ['198.18.15.1'],
      'still held by the other network',
    );
    await ipam.releaseAddress(other, '198.18.15.1');
    assert.deepEqual(await ipam.allocations(other), []);
  });

  test('gateway, aux and static addresses are never handed out dynamically; network and broadcast neither', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/29');
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '198.18.15.1', options: GW })).address,
      '198.18.15.1/29',
    );
    assert.equal((await ipam.requestAddress({ poolId, address: '198.18.15.3' })).address, '198.18.15.3/29'); // --aux-address
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '198.18.15.5', options: name('db') })).address,
      '198.18.15.5/29',
    );
    assert.deepEqual(
      [await next(), await next(), await next()],
      ['198.18.15.2/29', '198.18.15.4/29', '198.18.15.6/29'],
    );
    await assert.rejects(next(), {
      code: 'IPAM_POOL_EXHAUSTED',
      message: 'no free address in subnet 198.18.15.0/29: all 6 usable addresses are allocated',
    });
    assert.deepEqual(
      (await ipam.allocations(poolId)).map((a) => `${a.address}=${a.owner}`),
      [
        '198.18.15.1=gateway',
        '198.18.15.2=dynamic',
        '198.18.15.3=static',
        '198.18.15.4=dynamic',
        '198.18.15.5=db',
        '198.18.15.6=dynamic',
      ],
    );
  });

  test('a static address already allocated is IPAM_ADDRESS_IN_USE naming the address, subnet and holder', async () => {
    const { ipam, poolId } = await pool('198.18.15.0/24');
    await ipam.requestAddress({ poolId, address: '198.18.15.5', options: name('web1') });
    await assert.rejects(ipam.requestAddress({ poolId, address: '198.18.15.5', options: name('web2') }), {
      code: 'IPAM_ADDRESS_IN_USE',
      message: 'address 198.18.15.5 is already in use in subnet 198.18.15.0/24 (held by web1)',
    });
    await ipam.requestAddress({ poolId, address: '198.18.15.6' });
    await assert.rejects(ipam.requestAddress({ poolId, address: '198.18.15.6', options: GW }), {
      code: 'IPAM_ADDRESS_IN_USE',
      message: 'address 198.18.15.6 is already in use in subnet 198.18.15.0/24 (held by static)',
    });
  });

  test('addresses outside the subnet, or its network or broadcast address, are IPAM_ADDRESS_OUT_OF_POOL', async () => {
    const { ipam, poolId } = await pool('198.18.15.0/24', '198.18.15.0/25');
    const cases: [string, string][] = [
      [
        '198.18.16.1',
        'RequestAddress: address 198.18.16.1 is outside subnet 198.18.15.0/24 (pool LocalDefault/198.18.15.0/24/198.18.15.0/25)',
      ],
      [
        '198.18.15.0',
        'RequestAddress: address 198.18.15.0 is the network address of 198.18.15.0/24 (pool LocalDefault/198.18.15.0/24/198.18.15.0/25)',
      ],
      [
        '198.18.15.255',
        'RequestAddress: address 198.18.15.255 is the broadcast address of 198.18.15.0/24 (pool LocalDefault/198.18.15.0/24/198.18.15.0/25)',
      ],
      [
        '2001:db8::1',
        'RequestAddress: address 2001:db8::1 is outside subnet 198.18.15.0/24 (pool LocalDefault/198.18.15.0/24/198.18.15.0/25)',
      ],
    ];
    for (const [address, message] of cases)
      await assert.rejects(ipam.requestAddress({ poolId, address }), { code: 'IPAM_ADDRESS_OUT_OF_POOL', message });
    // Static addresses may lie outside the ip-range (only dynamic ones come from it).
    assert.equal((await ipam.requestAddress({ poolId, address: '198.18.15.200' })).address, '198.18.15.200/24');
    await assert.rejects(ipam.requestAddress({ poolId, address: 'web1' }), {
      code: 'INVALID_ARGUMENT',
      message: 'RequestAddress: "web1" is not an IP address',
    });
    await assert.rejects(ipam.requestAddress({ poolId: 'LocalDefault/10.0.0.0/8' }), { code: 'IPAM_POOL_NOT_FOUND' });
  });

  test("lowest free first, as Docker's IPAM: a released address is the next one handed out", async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/29'); // usable .1 to .6
    const ip = (n: number) => `198.18.15.${n}/29`;
    assert.deepEqual([await next(), await next(), await next()], [ip(1), ip(2), ip(3)]);
    await ipam.releaseAddress(poolId, '198.18.15.2');
    assert.equal(await next(), ip(2), 'the just-released .2: a container stopped and started gets its own back');
    await ipam.releaseAddress(poolId, '198.18.15.3');
    await ipam.releaseAddress(poolId, '198.18.15.1');
    assert.deepEqual(
      [await next(), await next(), await next(), await next(), await next()],
      [ip(1), ip(3), ip(4), ip(5), ip(6)],
    );
    await assert.rejects(next(), { code: 'IPAM_POOL_EXHAUSTED' });
    await ipam.releaseAddress(poolId, '198.18.15.4');
    assert.equal(await next(), ip(4), 'the only free address');
  });

  test('dynamic allocations skip static ones', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/24');
    assert.equal(await next(), '198.18.15.1/24');
    await ipam.requestAddress({ poolId, address: '198.18.15.2' });
    await ipam.requestAddress({ poolId, address: '198.18.15.100' });
    assert.equal(await next(), '198.18.15.3/24');
  });

  test('ReleaseAddress is idempotent and tolerant of addresses it never gave out', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/24');
    await next();
    await ipam.releaseAddress(poolId, '198.18.15.1');
    await ipam.releaseAddress(poolId, '198.18.15.1');
    await ipam.releaseAddress(poolId, '198.18.15.77');
    await ipam.releaseAddress(poolId, '10.1.1.1');
    await ipam.releaseAddress(poolId, '198.18.15.1/24');
    await ipam.releaseAddress('no/such/pool', '198.18.15.1');
    await assert.rejects(ipam.releaseAddress(poolId, 'bogus'), { code: 'INVALID_ARGUMENT' });
    assert.deepEqual(await ipam.allocations(poolId), []);
  });

  test('concurrent requests on one pool get distinct addresses', async () => {
    const { ipam, poolId } = await pool('198.18.15.0/24');
    const got = await Promise.all(
      Array.from({ length: 200 }, (_, i) => ipam.requestAddress({ poolId, options: name(`c${i}`) })),
    );
    const addrs = got.map((g) => g.address);
    assert.equal(new Set(addrs).size, 200);
    assert.deepEqual(
      addrs,
      Array.from({ length: 200 }, (_, i) => `198.18.15.${i + 1}/24`),
      'FIFO per subnet',
    );
    // Mixed: statics and dynamics racing for the same addresses never both win.
    const race = await Promise.allSettled([
      ipam.requestAddress({ poolId }),
      ipam.requestAddress({ poolId, address: '198.18.15.201' }),
      ipam.requestAddress({ poolId, address: '198.18.15.202' }),
      ipam.requestAddress({ poolId }),
    ]);
    assert.deepEqual(
      race.map((r) => (r.status === 'fulfilled' ? r.value.address : 'rejected')),
      ['198.18.15.201/24', 'rejected', '198.18.15.202/24', '198.18.15.203/24'],
    );
    assert.equal((await ipam.allocations(poolId)).length, 203);
  });

  test('a /22 is exhausted after exactly its 1022 usable addresses', async () => {
    const { next } = await pool('198.18.4.0/22');
    const seen = new Set<string>();
    for (let i = 0; i < 1022; i++) seen.add(await next());
    assert.equal(seen.size, 1022);
    assert.ok(!seen.has('198.18.4.0/22') && !seen.has('198.18.7.255/22'));
    assert.ok(seen.has('198.18.4.1/22') && seen.has('198.18.7.254/22'));
    await assert.rejects(next(), {
      code: 'IPAM_POOL_EXHAUSTED',
      message: 'no free address in subnet 198.18.4.0/22: all 1022 usable addresses are allocated',
    });
  });

  test('an ip-range is exhausted on its own; the message names the range and its size', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/24', '198.18.15.252/30');
    assert.deepEqual(
      [await next(), await next(), await next()],
      ['198.18.15.252/24', '198.18.15.253/24', '198.18.15.254/24'],
    );
    await assert.rejects(next(), {
      code: 'IPAM_POOL_EXHAUSTED',
      message:
        'no free address in ip-range 198.18.15.252/30 of subnet 198.18.15.0/24: all 3 usable addresses are allocated',
    });
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '198.18.15.9' })).address,
      '198.18.15.9/24',
      'static still works',
    );
  });

  test('IPv6: gateway, static --ip6, dynamic, and a /120 exhausted after 255', async () => {
    const { ipam, poolId, next } = await pool('2001:db8:15::/64');
    assert.equal((await ipam.requestAddress({ poolId, options: GW })).address, '2001:db8:15::1/64');
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '2001:DB8:15:0::5', options: name('web') })).address,
      '2001:db8:15::5/64',
    );
    assert.equal(await next(), '2001:db8:15::2/64');
    await assert.rejects(ipam.requestAddress({ poolId, address: '2001:db8:15::5' }), {
      code: 'IPAM_ADDRESS_IN_USE',
      message: 'address 2001:db8:15::5 is already in use in subnet 2001:db8:15::/64 (held by web)',
    });
    await assert.rejects(ipam.requestAddress({ poolId, address: '2001:db8:15::' }), {
      code: 'IPAM_ADDRESS_OUT_OF_POOL',
      message:
        'RequestAddress: address 2001:db8:15:: is the network address of 2001:db8:15::/64 (pool LocalDefault/2001:db8:15::/64)',
    });
    // The last address of an IPv6 subnet is usable: there is no broadcast.
    assert.equal(
      (await ipam.requestAddress({ poolId, address: '2001:db8:15::ffff:ffff:ffff:ffff' })).address,
      '2001:db8:15:0:ffff:ffff:ffff:ffff/64',
    );

    const small = await pool('2001:db8:16::/120');
    const seen = new Set<string>();
    for (let i = 0; i < 255; i++) seen.add(await small.next());
    assert.equal(seen.size, 255);
    assert.ok(seen.has('2001:db8:16::1/120') && seen.has('2001:db8:16::ff/120'));
    await assert.rejects(small.next(), {
      code: 'IPAM_POOL_EXHAUSTED',
      message: 'no free address in subnet 2001:db8:16::/120: all 255 usable addresses are allocated',
    });
  });

  test('point-to-point /31: both addresses go to endpoints; a gateway without address is named, not reserved', async () => {
    const { ipam, poolId, next } = await pool('198.18.15.0/31');
    assert.equal((await ipam.requestAddress({ poolId, options: GW })).address, '198.18.15.0/31');
    assert.equal(await next(), '198.18.15.0/31');
    assert.equal(await next(), '198.18.15.1/31');
    await assert.rejects(next(), { code: 'IPAM_POOL_EXHAUSTED' });
  });

  test('the store decides: an address created by another writer is skipped, a stale index entry is corrected', async () => {
    const { ipam, poolId, store, next } = await pool('198.18.15.0/24');
    // Another writer of the same store reserves .1 and .2 behind this Ipam's index.
    await store.create(
      'ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.1',
      JSON.stringify({ owner: 'node-b', pool: poolId }),
    );
    await store.create(
      'ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.2',
      JSON.stringify({ owner: 'node-b', pool: poolId }),
    );
    assert.equal(await next(), '198.18.15.3/24');
    await assert.rejects(ipam.requestAddress({ poolId, address: '198.18.15.2' }), { message: /held by node-b/ });
    // ... and releases .3 behind its back: a static request for .3 still succeeds.
    await store.delete('ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.3');
    assert.equal((await ipam.requestAddress({ poolId, address: '198.18.15.3' })).address, '198.18.15.3/24');
  });

  test('store failures surface as STORE_ERROR', async () => {
    const { ipam, poolId, store } = await pool('198.18.15.0/24');
    await store.close();
    await assert.rejects(ipam.requestAddress({ poolId }), { code: 'STORE_ERROR' });
  });
});
