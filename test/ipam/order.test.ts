// The allocation order with a LAN check (issue 13): lowest free address first, as Docker's IPAM, so that a
// container that stops and starts again gets its own address back; what a LAN device answers for is skipped;
// an address macnet just released is taken again without a probe. The LAN is a fake (pure logic);
// test/docker/restart-address.test.ts compares with Docker's built-in driver on the lab LAN. Each test on both real
// stores, SQLite and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam, type IpamLan } from '../../src/ipam/ipam';
import { eachStore } from '../lab/test-stores';
import { WARM_TTL_MS } from '../../src/ipam/warm';

type Answer = { mac: string; reason: 'answered' | 'probing' };

function fakeLan(answers: Map<string, Answer> = new Map(), policy: 'refuse' | 'warn' = 'refuse') {
  const asked: string[] = [];
  const claimed: string[] = [];
  const lan: IpamLan = {
    claim(_subnet, ip) {
      claimed.push(ip);
    },
    async inUse(_subnet, candidates) {
      asked.push(...candidates);
      return new Map(candidates.filter((c) => answers.has(c)).map((c) => [c, answers.get(c)!]));
    },
    async conflictPolicy() {
      return policy;
    },
  };
  return { lan, asked, claimed, answers };
}

const DEVICE: Answer = { mac: '02:00:00:00:00:60', reason: 'answered' };
const settle = () => new Promise((r) => setTimeout(r, 20)); // background refills

eachStore('IPAM order tests', __filename, (kind, stores) => {
  async function setup(lan: IpamLan, range = '198.18.15.96/28') {
    const ipam = new Ipam((await stores.open(kind)).store, { lan });
    const { poolId } = await ipam.requestPool({ addressSpace: '', pool: '198.18.15.0/24', subPool: range, v6: false });
    const gateway = { RequestAddressType: 'com.docker.network.gateway' };
    await ipam.requestAddress({ poolId, address: '198.18.15.1', options: gateway });
    const next = async () => (await ipam.requestAddress({ poolId })).address.replace('/24', '');
    return { ipam, poolId, next };
  }

  test('restart: the released address is the lowest free one, and comes back without a probe', async (t) => {
    const f = fakeLan();
    const { ipam, poolId, next } = await setup(f.lan);
    t.after(() => ipam.close());
    assert.deepEqual([await next(), await next()], ['198.18.15.96', '198.18.15.97']);
    await settle();
    for (let i = 0; i < 3; i++) {
      f.claimed.length = 0;
      await ipam.releaseAddress(poolId, '198.18.15.96');
      assert.deepEqual(f.claimed, ['198.18.15.96'], 'defended from its release on');
      const asked = f.asked.length;
      assert.equal(await next(), '198.18.15.96', `restart ${i + 1}: its own address`);
      assert.equal(f.asked.slice(asked).includes('198.18.15.96'), false, 'no probe for it');
    }
    await ipam.releasePool(poolId);
  });

  test('four containers restarted at once get the same four addresses, none probed', async (t) => {
    const f = fakeLan();
    const { ipam, poolId, next } = await setup(f.lan);
    t.after(() => ipam.close());
    const four = [await next(), await next(), await next(), await next(), await next()].slice(1); // .97 to .100
    await settle();
    await Promise.all(four.map((a) => ipam.releaseAddress(poolId, a)));
    const asked = f.asked.length;
    const again = await Promise.all(four.map(() => next()));
    assert.deepEqual(again.sort(), four.sort());
    assert.deepEqual(
      f.asked.slice(asked).filter((a) => four.includes(a)),
      [],
      'just released: not probed',
    );
  });

  test('a LAN device at the lowest free address is skipped; the container after it keeps its own', async (t) => {
    const f = fakeLan(new Map([['198.18.15.96', DEVICE]]));
    const { ipam, poolId, next } = await setup(f.lan);
    t.after(() => ipam.close());
    assert.equal(await next(), '198.18.15.97', "Docker's IPAM would take .96");
    assert.deepEqual(
      (await ipam.answered(poolId)).map((h) => [h.address, h.mac]),
      [['198.18.15.96', DEVICE.mac]],
    );
    for (let i = 0; i < 2; i++) {
      await ipam.releaseAddress(poolId, '198.18.15.97');
      assert.equal(await next(), '198.18.15.97');
    }
  });

  test('a released address counts as verified for WARM_TTL_MS; after that it is probed again', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const f = fakeLan();
    const { ipam, poolId, next } = await setup(f.lan);
    t.after(() => ipam.close());
    assert.equal(await next(), '198.18.15.96');
    await settle();
    await ipam.releaseAddress(poolId, '198.18.15.96');
    t.mock.timers.tick(WARM_TTL_MS + 1);
    f.answers.set('198.18.15.96', DEVICE); // a LAN device took it while no container had it
    const asked = f.asked.length;
    assert.equal(await next(), '198.18.15.97');
    assert.ok(f.asked.slice(asked).includes('198.18.15.96'), 'probed: the verification ran out');
  });

  test('not warm on release: the gateway, a static address taken despite a conflict, one never checked', async (t) => {
    const f = fakeLan(new Map([['198.18.15.98', DEVICE]]), 'warn');
    const { ipam, poolId, next } = await setup(f.lan);
    t.after(() => ipam.close());
    const forced = await ipam.requestAddress({ poolId, address: '198.18.15.98' });
    assert.equal(forced.address, '198.18.15.98/24', 'conflict=warn');
    await ipam.releaseAddress(poolId, '198.18.15.98');
    f.claimed.length = 0;
    await ipam.releaseAddress(poolId, '198.18.15.1');
    assert.deepEqual(f.claimed, [], 'the gateway is not defended after release');
    // .96 and .97 are free and were never verified: the first start probes a batch, which holds .98 again.
    const asked = f.asked.length;
    assert.equal(await next(), '198.18.15.96');
    assert.deepEqual(f.asked.slice(asked, asked + 4), ['198.18.15.96', '198.18.15.97', '198.18.15.98', '198.18.15.99']);
    assert.deepEqual(
      (await ipam.answered(poolId)).map((h) => h.address),
      ['198.18.15.98'],
    );
  });

  test('the warm set holds the lowest free addresses: a start after the refill waits on no probe', async (t) => {
    const f = fakeLan(new Map([['198.18.15.97', DEVICE]]));
    const { ipam, next } = await setup(f.lan);
    t.after(() => ipam.close());
    assert.equal(await next(), '198.18.15.96');
    await settle();
    // The cold batch verified .98 and .99 (.97 answered); the refill added .100.
    for (const want of ['198.18.15.98', '198.18.15.99', '198.18.15.100']) {
      const asked = f.asked.length;
      assert.equal(await next(), want);
      assert.equal(f.asked.slice(asked).includes(want), false, `${want} was warm`);
      await settle();
    }
  });

  test('with a name (Docker 29) the sticky address wins over a lower free one; just released, no probe', async (t) => {
    const f = fakeLan();
    const { ipam, poolId } = await setup(f.lan);
    t.after(() => ipam.close());
    const named = async (n: string) =>
      (await ipam.requestAddress({ poolId, options: { 'com.docker.network.endpoint.name': n } })).address;
    assert.deepEqual([await named('a'), await named('b')], ['198.18.15.96/24', '198.18.15.97/24']);
    await settle();
    await ipam.releaseAddress(poolId, '198.18.15.96');
    await ipam.releaseAddress(poolId, '198.18.15.97');
    const asked = f.asked.length;
    assert.equal(await named('b'), '198.18.15.97/24', "b's own, though .96 is lower");
    assert.equal(await named('a'), '198.18.15.96/24');
    assert.deepEqual(
      f.asked.slice(asked).filter((a) => a === '198.18.15.96' || a === '198.18.15.97'),
      [],
    );
  });
});
