// IPAM with a LAN check: addresses that answer on the LAN are never handed out. The LAN is a fake here
// (pure logic); test/docker/lan.test.ts runs the real probe on the lab LAN. Each test on both real stores, SQLite
// and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam, type IpamLan } from '../../src/ipam/ipam';
import { eachStore } from '../lab/test-stores';

function fakeLan(
  answers: Record<string, { mac: string; reason: 'answered' | 'probing' }>,
  policy: 'refuse' | 'warn' = 'refuse',
) {
  const asked: string[][] = [];
  const claimed: string[] = [];
  const lan: IpamLan = {
    claim(_subnet, ip) {
      claimed.push(ip);
    },
    async inUse(_subnet, candidates) {
      asked.push([...candidates]);
      return new Map(candidates.filter((c) => answers[c]).map((c) => [c, answers[c]!]));
    },
    async conflictPolicy() {
      return policy;
    },
  };
  return { lan, asked, claimed };
}

eachStore('IPAM LAN tests', __filename, (kind, stores) => {
  async function setup(lan: IpamLan) {
    const ipam = new Ipam((await stores.open(kind)).store, { lan });
    const { poolId } = await ipam.requestPool({ addressSpace: '', pool: '198.18.15.0/24', v6: false });
    return { ipam, poolId };
  }

  test('dynamic: addresses that answer are skipped and held with their MAC; candidates are probed four at a time', async () => {
    const { lan, asked, claimed } = fakeLan({
      '198.18.15.2': { mac: '02:00:00:00:00:02', reason: 'answered' },
      '198.18.15.3': { mac: '02:00:00:00:00:03', reason: 'answered' },
    });
    const { ipam, poolId } = await setup(lan);
    assert.equal(
      (
        await ipam.requestAddress({
          poolId,
          address: '198.18.15.1',
          options: { RequestAddressType: 'com.docker.network.gateway' },
        })
      ).address,
      '198.18.15.1/24',
    );
    assert.equal(asked.length, 0, 'the gateway is the router: not probed');
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.4/24');
    assert.deepEqual(asked[0], ['198.18.15.2', '198.18.15.3', '198.18.15.4', '198.18.15.5']);
    assert.deepEqual(
      (await ipam.answered(poolId)).map((h) => [h.address, h.mac, h.reason]),
      [
        ['198.18.15.2', '02:00:00:00:00:02', 'answered'],
        ['198.18.15.3', '02:00:00:00:00:03', 'answered'],
      ],
    );
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.5/24');
    assert.equal(await ipam.allocatedHere('198.18.15.0/24', '198.18.15.4'), true);
    assert.equal(await ipam.allocatedHere('198.18.15.0/24', '198.18.15.2'), false, 'held is not allocated');
    assert.ok(
      claimed.includes('198.18.15.4') && claimed.includes('198.18.15.5') && !claimed.includes('198.18.15.1'),
      'handed-out addresses are defended; the gateway is not',
    );
  });

  test("an address another macnet host's probe link (MAC 0e:...) defends is held for 30 s, a LAN device's for 10 minutes", async () => {
    const { lan } = fakeLan({
      '198.18.15.1': { mac: '0e:12:34:56:78:9a', reason: 'answered' },
      '198.18.15.2': { mac: '02:00:00:00:00:02', reason: 'answered' },
    });
    const { ipam, poolId } = await setup(lan);
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.3/24');
    const held = await ipam.answered(poolId);
    const span = (a: string) => {
      const h = held.find((x) => x.address === a)!;
      return Date.parse(h.until) - Date.parse(h.seen);
    };
    assert.deepEqual(
      held.map((h) => [h.address, h.mac]),
      [
        ['198.18.15.1', '0e:12:34:56:78:9a'],
        ['198.18.15.2', '02:00:00:00:00:02'],
      ],
    );
    assert.equal(span('198.18.15.1'), 30_000);
    assert.equal(span('198.18.15.2'), 600_000);
  });

  test('an address another host is probing right now is skipped this time only, not held', async () => {
    const { lan } = fakeLan({ '198.18.15.1': { mac: '02:00:00:00:00:bb', reason: 'probing' } });
    const { ipam, poolId } = await setup(lan);
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.2/24');
    assert.deepEqual(await ipam.answered(poolId), []);
    assert.equal(await ipam.allocatedHere('198.18.15.0/24', '198.18.15.1'), false, 'back in the free set');
  });

  test('static: an address in use is ADDRESS_CONFLICT naming the MAC; conflict=warn allows it', async () => {
    const answers = { '198.18.15.9': { mac: '02:00:00:00:00:09', reason: 'answered' as const } };
    const { ipam, poolId } = await setup(fakeLan(answers).lan);
    await assert.rejects(ipam.requestAddress({ poolId, address: '198.18.15.9' }), {
      code: 'ADDRESS_CONFLICT',
      message:
        'address 198.18.15.9 is in use on the LAN by 02:00:00:00:00:09 (it answered a probe); pick another address, or create the network with -o conflict=warn to use it anyway',
    });
    assert.deepEqual(await ipam.allocations(poolId), [], 'nothing reserved');
    const warn = await setup(fakeLan(answers, 'warn').lan);
    assert.equal(
      (await warn.ipam.requestAddress({ poolId: warn.poolId, address: '198.18.15.9' })).address,
      '198.18.15.9/24',
    );
  });

  test('no LAN known for the subnet (no network yet): nothing is probed, everything is free', async () => {
    const lan: IpamLan = {
      inUse: async () => undefined,
      conflictPolicy: async () => 'refuse',
      claim: () => undefined,
    };
    const { ipam, poolId } = await setup(lan);
    assert.equal((await ipam.requestAddress({ poolId, address: '198.18.15.7' })).address, '198.18.15.7/24');
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.1/24');
  });

  test('a range where every candidate answers ends in IPAM_POOL_EXHAUSTED that says so', async () => {
    const answers: Record<string, { mac: string; reason: 'answered' }> = {};
    for (let i = 1; i < 7; i++) answers[`198.18.15.${i}`] = { mac: '02:00:00:00:00:01', reason: 'answered' };
    const ipam = new Ipam((await stores.open(kind)).store, { lan: fakeLan(answers).lan });
    const { poolId } = await ipam.requestPool({ addressSpace: '', pool: '198.18.15.0/29', v6: false });
    await assert.rejects(
      ipam.requestAddress({ poolId }),
      (e: Error & { code?: string }) =>
        e.code === 'IPAM_POOL_EXHAUSTED' &&
        /all 6 usable addresses are allocated or in use on the LAN \(6 answered a probe\)/.test(e.message),
    );
  });

  test('warm set: after a cold allocation the next addresses are verified in the background and taken without a probe', async () => {
    const { lan, asked, claimed } = fakeLan({});
    const { ipam, poolId } = await setup(lan);
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.1/24');
    assert.equal(asked.length, 1, 'the cold allocation probed one batch');
    await new Promise((r) => setTimeout(r, 20)); // the background refill
    // A run of starts, each shortly after the last: every one finds its address warm (refilled after each).
    for (let i = 2; i <= 8; i++) {
      const seen: number = asked.length;
      assert.equal((await ipam.requestAddress({ poolId })).address, `198.18.15.${i}/24`);
      assert.equal(asked.slice(seen).filter((a) => a.includes(`198.18.15.${i}`)).length, 0, `198.18.15.${i} was warm`);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(claimed.includes('198.18.15.9'), 'warm addresses are defended before they are handed out');
    await ipam.releasePool(poolId);
  });

  test('a LAN with 40 devices at the bottom of the range: the search widens (4, 8, 16, 32 at a time) instead of giving up', async () => {
    const devices: Record<string, { mac: string; reason: 'answered' }> = {};
    for (let i = 1; i <= 40; i++)
      devices[`198.18.15.${i}`] = { mac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`, reason: 'answered' };
    const { lan, asked } = fakeLan(devices);
    const { ipam, poolId } = await setup(lan);
    assert.equal((await ipam.requestAddress({ poolId })).address, '198.18.15.41/24');
    assert.deepEqual(
      asked.slice(0, 4).map((a) => a.length),
      [4, 8, 16, 32],
      'one window each, twice as wide each time',
    );
    assert.equal((await ipam.answered(poolId)).length, 40, 'every device is held with its MAC');
  });

  test('30 allocations at once wait one probe window together: the first cold window probes for those queued behind it', async () => {
    let windows = 0;
    const probed: number[] = [];
    const lan: IpamLan = {
      claim() {},
      async inUse(_subnet, candidates) {
        windows++;
        probed.push(candidates.length);
        await new Promise((r) => setTimeout(r, 30)); // a probe window
        return new Map();
      },
      async conflictPolicy() {
        return 'refuse';
      },
    };
    const { ipam, poolId } = await setup(lan);
    const got = await Promise.all(Array.from({ length: 30 }, () => ipam.requestAddress({ poolId })));
    const addrs = got.map((g) => g.address);
    assert.equal(new Set(addrs).size, 30, 'thirty distinct addresses');
    assert.deepEqual(
      [...addrs].sort((a, b) => parseInt(a.split('.')[3]!) - parseInt(b.split('.')[3]!)),
      Array.from({ length: 30 }, (_, i) => `198.18.15.${i + 1}/24`),
      'the lowest thirty, as one at a time would give',
    );
    // Allocation windows: the first probes 30 (itself and the 29 queued); the background refill may add one.
    assert.ok(probed[0]! >= 30, `the first window probed ${probed[0]} candidates`);
    assert.ok(windows <= 3, `${windows} probe windows for 30 allocations at once (${probed.join(', ')})`);
    ipam.close?.();
  });
});
