// RequestPool / ReleasePool: validation, identity and reference counting, overlap, default pools; each test on both
// real stores, SQLite and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam';
import { eachStore } from '../lab/test-stores';

const L = 'LocalDefault';
eachStore('IPAM pool tests', __filename, (kind, stores) => {
  const fresh = async (opts?: ConstructorParameters<typeof Ipam>[1]) => new Ipam((await stores.open(kind)).store, opts);

  test('capabilities and default address spaces', async () => {
    const ipam = await fresh();
    assert.deepEqual(ipam.capabilities(), { RequiresMACAddress: false, RequiresRequestReplay: false });
    assert.deepEqual(ipam.defaultAddressSpaces(), {
      LocalDefaultAddressSpace: 'LocalDefault',
      GlobalDefaultAddressSpace: 'GlobalDefault',
    });
  });

  test('identical requests give the same PoolID, reference counted; the last ReleasePool removes it', async () => {
    const ipam = await fresh();
    const req = { addressSpace: L, pool: '198.18.0.0/16', subPool: '198.18.1.0/24', v6: false };
    const a = await ipam.requestPool(req);
    assert.deepEqual(a, { poolId: 'LocalDefault/198.18.0.0/16/198.18.1.0/24', pool: '198.18.0.0/16', data: {} });
    assert.deepEqual(await ipam.requestPool(req), a);
    await ipam.releasePool(a.poolId);
    assert.equal(
      (await ipam.requestAddress({ poolId: a.poolId })).address,
      '198.18.1.0/16',
      'still there after one release',
    );
    await ipam.releasePool(a.poolId);
    await assert.rejects(ipam.requestAddress({ poolId: a.poolId }), {
      code: 'IPAM_POOL_NOT_FOUND',
      message: 'RequestAddress: no pool with ID "LocalDefault/198.18.0.0/16/198.18.1.0/24" (was its network removed?)',
    });
    await ipam.releasePool(a.poolId);
    await ipam.releasePool('no/such/pool');
  });

  test('same subnet, different ip-ranges: separate pools sharing one set of addresses', async () => {
    const ipam = await fresh();
    const a = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.0/25', v6: false });
    const b = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.128/25', v6: false });
    const c = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', v6: false });
    assert.equal(new Set([a.poolId, b.poolId, c.poolId]).size, 3);
    assert.equal(c.poolId, 'LocalDefault/198.18.0.0/24');
    assert.equal(
      (
        await ipam.requestAddress({
          poolId: a.poolId,
          address: '198.18.0.1',
          options: { RequestAddressType: 'com.docker.network.gateway' },
        })
      ).address,
      '198.18.0.1/24',
    );
    // The same router as gateway of another network on the subnet is shared (counted); as a container address it is
    // taken.
    assert.equal(
      (
        await ipam.requestAddress({
          poolId: b.poolId,
          address: '198.18.0.1',
          options: { RequestAddressType: 'com.docker.network.gateway' },
        })
      ).address,
      '198.18.0.1/24',
    );
    await assert.rejects(ipam.requestAddress({ poolId: b.poolId, address: '198.18.0.1' }), {
      code: 'IPAM_ADDRESS_IN_USE',
      message: 'address 198.18.0.1 is already in use in subnet 198.18.0.0/24 (held by gateway)',
    });
    // The whole-subnet pool's dynamic allocation skips what the range pools hold.
    assert.equal((await ipam.requestAddress({ poolId: c.poolId })).address, '198.18.0.2/24');
    assert.equal((await ipam.requestAddress({ poolId: b.poolId })).address, '198.18.0.128/24');
    assert.deepEqual(
      (await ipam.allocations(a.poolId)).map((x) => x.address),
      ['198.18.0.1', '198.18.0.2', '198.18.0.128'],
    );
    // Releasing one range pool leaves the shared addresses alone.
    await ipam.releasePool(b.poolId);
    assert.equal((await ipam.allocations(a.poolId)).length, 3);
  });

  test('a different subnet that overlaps is refused in the same address space, allowed in another', async () => {
    const ipam = await fresh();
    await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/16', v6: false });
    await assert.rejects(ipam.requestPool({ addressSpace: L, pool: '198.18.5.0/24', v6: false }), {
      code: 'IPAM_POOL_OVERLAP',
      message:
        'RequestPool: subnet 198.18.5.0/24 overlaps subnet 198.18.0.0/16, already in use in address space LocalDefault',
    });
    await assert.rejects(ipam.requestPool({ addressSpace: L, pool: '198.0.0.0/8', v6: false }), {
      code: 'IPAM_POOL_OVERLAP',
    });
    await ipam.requestPool({ addressSpace: 'GlobalDefault', pool: '198.18.5.0/24', v6: false });
    await ipam.requestPool({ addressSpace: L, pool: '198.19.0.0/16', v6: false });
    assert.equal(
      (await ipam.requestPool({ addressSpace: '', pool: '198.19.0.0/16', v6: false })).poolId,
      'LocalDefault/198.19.0.0/16',
      'no space: LocalDefault',
    );
    await ipam.requestPool({ addressSpace: L, pool: '2001:db8::/64', v6: true });
    await assert.rejects(ipam.requestPool({ addressSpace: L, pool: '2001:db8::/48', v6: true }), {
      code: 'IPAM_POOL_OVERLAP',
      message:
        'RequestPool: subnet 2001:db8::/48 overlaps subnet 2001:db8::/64, already in use in address space LocalDefault',
    });
  });

  test('invalid pool requests are IPAM_POOL_INVALID with a message naming the values', async () => {
    const ipam = await fresh();
    const cases: [Parameters<Ipam['requestPool']>[0], string][] = [
      [
        { addressSpace: L, pool: '198.18.0.0/16', subPool: '198.19.0.0/24', v6: false },
        "invalid ip-range 198.19.0.0/24: parent subnet 198.18.0.0/16 doesn't contain ip-range",
      ],
      [
        { addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.0/23', v6: false },
        "invalid ip-range 198.18.0.0/23: parent subnet 198.18.0.0/24 doesn't contain ip-range",
      ],
      [
        { addressSpace: L, pool: '198.18.15.5/24', v6: false },
        'invalid subnet 198.18.15.5/24: it has host bits set, it should be 198.18.15.0/24',
      ],
      [
        { addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.8/28', v6: false },
        'invalid ip-range 198.18.0.8/28: it has host bits set, it should be 198.18.0.0/28',
      ],
      [
        { addressSpace: L, pool: '198.18.0.0/33', v6: false },
        'invalid subnet "198.18.0.0/33": prefix length in "198.18.0.0/33" must be 0 to 32',
      ],
      [{ addressSpace: L, pool: 'lan', v6: false }, 'invalid subnet "lan": not a CIDR (address/prefix): "lan"'],
      [
        { addressSpace: L, pool: '198.18.0.0/24', v6: true },
        'invalid subnet 198.18.0.0/24: an IPv4 subnet in a request for IPv6',
      ],
      [
        { addressSpace: L, pool: '2001:db8::/64', v6: false },
        'invalid subnet 2001:db8::/64: an IPv6 subnet in a request for IPv4',
      ],
      [
        { addressSpace: L, subPool: '198.18.0.0/24', v6: false },
        'invalid ip-range 198.18.0.0/24: an ip-range needs a subnet (--subnet)',
      ],
      [
        { addressSpace: L, pool: '198.18.0.0/24', subPool: '198.18.0.255/32', v6: false },
        'invalid ip-range 198.18.0.255/32: it holds no usable address of subnet 198.18.0.0/24 (only its network or broadcast address)',
      ],
      [
        { addressSpace: 'Mine', pool: '198.18.0.0/24', v6: false },
        'RequestPool: unknown address space "Mine"; macnet\'s IPAM has LocalDefault and GlobalDefault',
      ],
    ];
    for (const [req, message] of cases) {
      await assert.rejects(ipam.requestPool(req), { code: 'IPAM_POOL_INVALID', message }, JSON.stringify(req));
    }
  });

  test('--ipam-opt: com.docker.* keys pass, anything else is OPTION_UNKNOWN', async () => {
    const ipam = await fresh();
    await ipam.requestPool({
      addressSpace: L,
      pool: '198.18.0.0/24',
      v6: false,
      options: { 'com.docker.network.ipam.serial': 'true' },
    });
    await assert.rejects(
      ipam.requestPool({
        addressSpace: L,
        pool: '198.18.1.0/24',
        v6: false,
        options: { 'com.docker.x': '1', sequential: 'yes' },
      }),
      {
        code: 'OPTION_UNKNOWN',
        message: 'RequestPool: unknown --ipam-opt "sequential"; macnet\'s IPAM options: mode (pool | dhcp)',
      },
    );
  });

  test('no subnet: the first free block of the default pools, per family, skipping used subnets', async () => {
    const ipam = await fresh();
    const v4 = { addressSpace: L, v6: false };
    assert.equal((await ipam.requestPool(v4)).pool, '198.18.128.0/24');
    assert.equal(
      (await ipam.requestPool(v4)).pool,
      '198.18.129.0/24',
      'a second network gets a new subnet, not the same pool',
    );
    await ipam.requestPool({ addressSpace: L, pool: '198.18.130.0/23', v6: false });
    await ipam.requestPool({ addressSpace: L, pool: '198.18.132.128/25', v6: false });
    assert.equal((await ipam.requestPool(v4)).pool, '198.18.133.0/24');
    const first6 = await ipam.requestPool({ addressSpace: L, v6: true });
    assert.deepEqual(first6, { poolId: 'LocalDefault/2001:db8:ff00::/64', pool: '2001:db8:ff00::/64', data: {} });
    assert.equal((await ipam.requestPool({ addressSpace: L, v6: true })).pool, '2001:db8:ff00:1::/64');
    // Released blocks are taken again, lowest first.
    await ipam.releasePool('LocalDefault/198.18.128.0/24');
    assert.equal((await ipam.requestPool(v4)).pool, '198.18.128.0/24');
    // The other address space has its own.
    assert.equal((await ipam.requestPool({ addressSpace: 'GlobalDefault', v6: false })).pool, '198.18.128.0/24');
  });

  test('default pools run out: IPAM_NO_DEFAULT_POOL naming them', async () => {
    const ipam = await fresh({
      defaultPools: [
        { base: '198.18.0.0/23', size: 24 },
        { base: '198.18.8.0/24', size: 25 },
      ],
    });
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await ipam.requestPool({ addressSpace: L, v6: false })).pool);
    assert.deepEqual(got, ['198.18.0.0/24', '198.18.1.0/24', '198.18.8.0/25', '198.18.8.128/25']);
    await assert.rejects(ipam.requestPool({ addressSpace: L, v6: false }), {
      code: 'IPAM_NO_DEFAULT_POOL',
      message:
        'RequestPool: no --subnet given and no free IPv4 subnet left in the default pools: 198.18.0.0/23 (/24 each), 198.18.8.0/24 (/25 each)',
    });
    await assert.rejects(ipam.requestPool({ addressSpace: L, v6: true }), {
      code: 'IPAM_NO_DEFAULT_POOL',
      message: 'RequestPool: no --subnet given and no free IPv6 subnet left in the default pools: none configured',
    });
  });

  test('a bad default pool is refused when the Ipam is made', async () => {
    const { store } = await stores.open(kind);
    assert.throws(() => new Ipam(store, { defaultPools: [{ base: '198.18.0.0/16', size: 8 }] }), {
      code: 'INVALID_ARGUMENT',
      message: 'default pool 198.18.0.0/16: size /8 must be a prefix length from 16 to 32',
    });
    assert.throws(() => new Ipam(store, { defaultPools: [{ base: '198.18.0.1/16', size: 24 }] }), {
      code: 'INVALID_ARGUMENT',
    });
  });

  test('the last ReleasePool on a subnet drops its leftover addresses; a new pool starts afresh', async () => {
    const { store } = await stores.open(kind);
    const ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', v6: false });
    for (let i = 0; i < 3; i++) await ipam.requestAddress({ poolId });
    await ipam.releasePool(poolId);
    assert.deepEqual(
      (await store.list('ipam/')).map((e) => e.key),
      [],
    );
    await ipam.requestPool({ addressSpace: L, pool: '198.18.0.0/24', v6: false });
    assert.deepEqual(await ipam.allocations(poolId), []);
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.0.1/24');
  });
});
